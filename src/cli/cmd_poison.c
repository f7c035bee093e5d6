/* certlc poison list|replay and certlc deadletter list|replay: what the
 * pipeline parked (messages that failed too often or can never work, and
 * events Event Grid could not deliver), and putting them back on the work
 * queue once the cause is fixed. Exit 0 done, 1 error, 2 nothing there. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/clock.h"
#include "core/json.h"
#include "pipeline/worker.h"

static void usage(FILE *f, const char *cmd)
{
    int dl = strcmp(cmd, "deadletter") == 0;
    fprintf(f,
            "usage: certlc %s list [--json]\n"
            "       certlc %s replay [--id %s]\n\n"
            "%s\n\n"
            "replay puts %s back on the work queue (renew.queue.name) and only then removes it;\n"
            "without --id, everything is replayed.\n\n"
            "exit status: 0 done, 1 error, 2 nothing there\n",
            cmd, cmd, dl ? "EVENT_ID" : "MESSAGE_ID",
            dl ? "Event Grid's dead-lettered events, from the blobs in renew.deadletter.container."
               : "Messages the worker gave up on (renew.poison_queue): why, the last error, the "
                 "certificate.",
            dl ? "an event" : "the original message (with the renewal state it carried)");
}

static void print_items(const struct clc_poison_list *l, int json, int dl)
{
    char when[CLC_TIME_STR_MAX];
    if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < l->n; i++) {
            const struct clc_poison_item *it = &l->v[i];
            cJSON *o = cJSON_CreateObject();
            if (!o)
                break;
            cJSON_AddItemToArray(arr, o);
            cJSON_AddStringToObject(o, "id", it->id);
            cJSON_AddStringToObject(o, "reason", it->reason);
            cJSON_AddStringToObject(o, "detail", it->detail);
            cJSON_AddStringToObject(o, "vault", it->vault);
            cJSON_AddStringToObject(o, "certificate", it->certificate);
            cJSON_AddNumberToObject(o, "attempts", (double)it->attempts);
            if (it->when && clc_time_fmt_iso8601(it->when, when) == CLC_OK)
                cJSON_AddStringToObject(o, "time", when);
            if (dl)
                cJSON_AddStringToObject(o, "blob", it->where);
        }
        char *s = arr ? clc_json_print(arr) : NULL;
        if (s)
            printf("%s\n", s);
        cJSON_free(s);
        cJSON_Delete(arr);
        return;
    }
    for (size_t i = 0; i < l->n; i++) {
        const struct clc_poison_item *it = &l->v[i];
        if (!it->when || clc_time_fmt_iso8601(it->when, when) != CLC_OK)
            snprintf(when, sizeof when, "-");
        printf("%s  %s  %s/%s  attempts=%lld  %s\n    %s%s%s\n", it->id, when,
               it->vault[0] ? it->vault : "-", it->certificate[0] ? it->certificate : "-",
               (long long)it->attempts, it->reason, it->detail, dl ? "  blob=" : "",
               dl ? it->where : "");
    }
    if (!dl && l->approximate > (int64_t)l->n)
        printf("(showing %zu of about %lld)\n", l->n, (long long)l->approximate);
}

static int run(struct clc_cli *cli, int argc, char **argv, int dl)
{
    static const struct option opts[] = {{"id", required_argument, NULL, 'i'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *cmd = dl ? "deadletter" : "poison";
    const char *id = NULL;
    int json = 0, c, rc = CLC_EXIT_ERROR;
    struct clc_errinfo ei;
    struct clc_worker *w = NULL;
    enum clc_err e;

    clc_errinfo_clear(&ei);
    while ((c = getopt_long(argc, argv, "i:jh", opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            id = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            usage(stdout, cmd);
            return CLC_EXIT_OK;
        default:
            usage(stderr, cmd);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind + 1 != argc ||
        (strcmp(argv[optind], "list") != 0 && strcmp(argv[optind], "replay") != 0)) {
        usage(stderr, cmd);
        return CLC_EXIT_ERROR;
    }
    int replay = strcmp(argv[optind], "replay") == 0;
    if ((replay && json) || (!replay && id)) {
        usage(stderr, cmd);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if ((e = clc_worker_from_config(cli->config, &cli->http, 1, &w, &ei)) != CLC_OK)
        return clc_cli_fail(cmd, e, &ei);
    if (replay) {
        size_t n = 0;
        e = dl ? clc_deadletter_replay(w, id, &n, &ei) : clc_poison_replay(w, id, &n, &ei);
        if (e == CLC_ERR_NOT_FOUND) {
            clc_cli_fail(cmd, e, &ei);
            rc = CLC_EXIT_NOTHING;
        } else if (e != CLC_OK) {
            rc = clc_cli_fail(cmd, e, &ei);
        } else {
            printf("replayed %zu\n", n);
            rc = n ? CLC_EXIT_OK : CLC_EXIT_NOTHING;
        }
    } else {
        struct clc_poison_list l;
        e = dl ? clc_deadletter_list(w, &l, &ei) : clc_poison_list(w, &l, &ei);
        if (e != CLC_OK) {
            rc = clc_cli_fail(cmd, e, &ei);
        } else {
            print_items(&l, json, dl);
            rc = l.n ? CLC_EXIT_OK : CLC_EXIT_NOTHING;
            clc_poison_list_cleanup(&l);
        }
    }
    clc_worker_free(w);
    return rc;
}

int clc_cmd_poison(struct clc_cli *cli, int argc, char **argv)
{
    return run(cli, argc, argv, 0);
}

int clc_cmd_deadletter(struct clc_cli *cli, int argc, char **argv)
{
    return run(cli, argc, argv, 1);
}
