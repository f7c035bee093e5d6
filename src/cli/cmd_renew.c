/* certlc renew: drains the work queue once and exits. Exit 0 when every
 * message taken was dealt with (renewed, skipped, or waiting on the CA or its
 * due date), 2 when there was nothing to do, 1 when some failed (retried
 * later or moved to the poison queue) or the queue could not be read. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "pipeline/worker.h"

static void renew_usage(FILE *f)
{
    fprintf(f, "usage: certlc renew [--threads N]\n\n"
               "Takes every visible message from the work queue (renew.queue.*) and renews the\n"
               "certificate it names: new version in the vault with the whole policy, CSR to the\n"
               "CA, full chain merged, tags kept, e-mail and Log Analytics records. Messages that\n"
               "fail stay for a later attempt; after renew.max_dequeue failures they go to the\n"
               "poison queue (see 'certlc poison').\n\n"
               "options:\n"
               "  -t, --threads N   messages worked on at once (default 1, at most 64)\n\n"
               "exit status: 0 all done, 1 some failed, 2 nothing to do\n");
}

int clc_cmd_renew(struct clc_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct clc_errinfo ei;
    struct clc_worker *w = NULL;
    struct clc_worker_summary sum;
    int threads = 1, c, rc = CLC_EXIT_ERROR;
    enum clc_err e;

    clc_errinfo_clear(&ei);
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (clc_cli_parse_threads("renew", optarg, CLC_WORKER_THREADS_MAX, &threads) != 0)
                return CLC_EXIT_ERROR;
            break;
        case 'h':
            renew_usage(stdout);
            return CLC_EXIT_OK;
        default:
            renew_usage(stderr);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind != argc) {
        renew_usage(stderr);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if ((e = clc_worker_from_config(cli->config, &cli->http, threads, &w, &ei)) != CLC_OK)
        return clc_cli_fail("renew", e, &ei);
    e = clc_worker_drain(w, &sum, &ei);
    if (e != CLC_OK) {
        rc = clc_cli_fail("reading the work queue", e, &ei);
        goto out;
    }
    uint64_t failed = sum.outcomes[CLC_RENEW_RETRY] + sum.outcomes[CLC_RENEW_POISON] +
                      sum.outcomes[CLC_RENEW_LEASE_LOST] + sum.errors;
    printf("messages %llu: renewed %llu, skipped %llu, waiting %llu, notice owed %llu, "
           "retry later %llu, poisoned %llu\n",
           (unsigned long long)sum.messages, (unsigned long long)sum.outcomes[CLC_RENEW_RENEWED],
           (unsigned long long)sum.outcomes[CLC_RENEW_SKIPPED],
           (unsigned long long)sum.outcomes[CLC_RENEW_WAITING],
           (unsigned long long)sum.outcomes[CLC_RENEW_NOTICE_RETRY],
           (unsigned long long)sum.outcomes[CLC_RENEW_RETRY],
           (unsigned long long)sum.outcomes[CLC_RENEW_POISON]);
    if (sum.messages == 0)
        rc = CLC_EXIT_NOTHING;
    else
        rc = failed ? CLC_EXIT_ERROR : CLC_EXIT_OK;
out:
    clc_worker_free(w);
    return rc;
}
