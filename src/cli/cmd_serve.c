/* certlc serve: the Event Grid webhook (HTTPS) and the renewal worker in one
 * process. The webhook only wakes the worker; the worker drains the queue on
 * that signal and on its schedule. SIGTERM or SIGINT stops both cleanly. */
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "pipeline/metrics.h"
#include "pipeline/renew.h"
#include "pipeline/webhook.h"
#include "pipeline/worker.h"

struct serve {
    struct clc_worker *worker;
    int worker_started;
    /* What the webhook's threads see: NULL until the worker runs and again
     * once it is stopping. */
    _Atomic(struct clc_worker *) live;
    struct clc_renew_settings set; /* for the webhook's vault filter */
    const char **vault_names;
};

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: certlc serve [--threads N]\n\n"
               "Runs the Event Grid webhook (HTTPS, webhook.*) and the renewal worker (renew.*)\n"
               "in one process until SIGTERM or SIGINT. Deliveries (and SIGUSR1) only wake the\n"
               "worker; it renews from the queue. Also serves /healthz and /metrics.\n\n"
               "options:\n"
               "      --threads N   worker threads (default 1)\n\n"
               "exit status: 0 stopped by a signal, 1 error (configuration, TLS, port)\n"
               "see docs/configuration.md (webhook, renew)\n");
}

/* ---- the webhook's hooks into the worker ---- */

/* Before the worker runs there is nothing to wake: it drains when it starts. */
static void hook_wake(void *ctx)
{
    struct clc_worker *w = atomic_load(&((struct serve *)ctx)->live);

    if (w != NULL)
        clc_worker_wake(w);
}

/* The worker keeps its counters in the renderer's own snapshot shape. */
static void hook_snapshot(void *ctx, struct clc_metrics_snapshot *s)
{
    struct clc_worker *w = atomic_load(&((struct serve *)ctx)->live);

    if (w != NULL) {
        clc_worker_get_metrics(w, s);
        /* Every outcome as a series from the start, 0 until it happens:
         * Prometheus' rate() needs the series before the first event. */
        for (int o = 0; o < CLC_RENEW__OUTCOMES; o++)
            (void)clc_metrics_count_add(s->renewals, &s->nrenewals,
                                        clc_renew_outcome_name((enum clc_renew_outcome)o), 0);
    } else {
        s->have_worker = 1; /* starting or stopping: not healthy */
        s->worker_ok = 0;
    }
}

/* ---- configuration ---- */

struct serve_cfg {
    struct clc_webhook_opts o;
    struct clc_secret *secret;
    struct clc_event_filter filter;
};

static enum clc_err read_webhook_cfg(const struct clc_config *c, struct serve *sv,
                                     struct serve_cfg *sc, struct clc_errinfo *ei)
{
    int64_t port, max_body, threads;
    enum clc_err rc;

    memset(sc, 0, sizeof *sc);
    if ((rc = clc_config_str(c, "webhook.listen", "0.0.0.0", &sc->o.listen, ei)) != CLC_OK ||
        (rc = clc_config_int(c, "webhook.port", CLC_WEBHOOK_DEFAULT_PORT, 0, 65535, &port, ei)) !=
            CLC_OK ||
        (rc = clc_config_str_req(c, "webhook.certificate_file", &sc->o.cert_file, ei)) != CLC_OK ||
        (rc = clc_config_str_req(c, "webhook.key_file", &sc->o.key_file, ei)) != CLC_OK ||
        (rc = clc_config_int(c, "webhook.max_body_bytes", (int64_t)CLC_WEBHOOK_DEFAULT_MAX_BODY,
                             1024, 64 * 1024 * 1024, &max_body, ei)) != CLC_OK ||
        (rc = clc_config_int(c, "webhook.threads", 4, 1, 64, &threads, ei)) != CLC_OK ||
        (rc = clc_config_str(c, "webhook.tls_compat_library", NULL, &sc->o.compat_lib, ei)) !=
            CLC_OK)
        return rc;
    rc = clc_config_secret(c, "webhook.secret", &sc->secret, ei);
    if (rc == CLC_ERR_NOT_FOUND)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "the webhook needs a shared secret: set webhook.secret_file or "
                        "webhook.secret_env");
    if (rc != CLC_OK)
        return rc;
    sc->o.port = (int)port;
    sc->o.max_body_bytes = (size_t)max_body;
    sc->o.threads = (int)threads;
    sc->o.secret = sc->secret;
    /* Events for vaults the worker would refuse wake nobody. */
    sv->vault_names = calloc(sv->set.nvaults ? sv->set.nvaults : 1, sizeof *sv->vault_names);
    if (sv->vault_names == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < sv->set.nvaults; i++)
        sv->vault_names[i] = sv->set.vaults[i].name;
    sc->filter.vaults = sv->vault_names;
    sc->filter.nvaults = sv->set.nvaults;
    sc->o.filter = &sc->filter;
    return CLC_OK;
}

/* ---- the command ---- */

static int parse_args(int argc, char **argv, int *threads)
{
    static const struct option opts[] = {
        {"threads", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (clc_cli_parse_threads("serve", optarg, CLC_WORKER_THREADS_MAX, threads) != 0)
                return -1;
            break;
        case 'h':
            serve_usage(stdout);
            return 1;
        default:
            serve_usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "certlc serve: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

int clc_cmd_serve(struct clc_cli *cli, int argc, char **argv)
{
    struct serve sv;
    struct serve_cfg sc;
    struct clc_webhook *wh = NULL;
    struct clc_webhook_hooks hooks;
    struct clc_errinfo ei;
    sigset_t sigs;
    int threads = 1, sig = 0, rc = CLC_EXIT_ERROR, a;
    enum clc_err e;

    memset(&sv, 0, sizeof sv);
    atomic_init(&sv.live, NULL);
    memset(&sc, 0, sizeof sc);
    clc_errinfo_clear(&ei);
    a = parse_args(argc, argv, &threads);
    if (a != 0)
        return a > 0 ? CLC_EXIT_OK : CLC_EXIT_ERROR;
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if ((e = clc_renew_settings_from_config(cli->config, &sv.set, &ei)) != CLC_OK) {
        clc_cli_fail("configuration", e, &ei);
        goto out;
    }
    if ((e = read_webhook_cfg(cli->config, &sv, &sc, &ei)) != CLC_OK) {
        clc_cli_fail("configuration", e, &ei);
        goto out;
    }

    /* Every thread started from here on (worker, civetweb) inherits the
     * mask, so the signals reach only sigwait below. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    /* The webhook first: its errors (certificate, key, TLS library, port)
     * come before anything talks to Azure. */
    memset(&hooks, 0, sizeof hooks);
    hooks.wake = hook_wake;
    hooks.snapshot = hook_snapshot;
    hooks.ctx = &sv;
    if ((e = clc_webhook_start(&sc.o, &hooks, &wh, &ei)) != CLC_OK) {
        clc_cli_fail("webhook", e, &ei);
        goto out;
    }
    if ((e = clc_worker_from_config(cli->config, &cli->http, threads, &sv.worker, &ei)) != CLC_OK) {
        clc_cli_fail("worker", e, &ei);
        goto out;
    }
    if ((e = clc_worker_start(sv.worker, &ei)) != CLC_OK) {
        clc_cli_fail("worker", e, &ei);
        goto out;
    }
    sv.worker_started = 1;
    atomic_store(&sv.live, sv.worker);
    clc_log(CLC_LOG_INFO, "serve.started", CLC_LI("port", clc_webhook_port(wh)),
            CLC_LI("worker_threads", threads));

    /* SIGUSR1 wakes the worker, as for certlc worker. */
    for (;;) {
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig != SIGUSR1)
            break;
        clc_worker_wake(sv.worker);
    }
    clc_log(CLC_LOG_INFO, "serve.stopping", CLC_LS("signal", sig == SIGTERM ? "TERM" : "INT"));
    rc = CLC_EXIT_OK;
out:
    /* The webhook first, so no wake arrives for a stopped worker. */
    clc_webhook_stop(wh);
    atomic_store(&sv.live, NULL);
    if (sv.worker_started)
        clc_worker_stop(sv.worker);
    clc_worker_free(sv.worker);
    clc_secret_free(sc.secret);
    free(sv.vault_names);
    clc_renew_settings_cleanup(&sv.set);
    if (rc == CLC_EXIT_OK)
        clc_log0(CLC_LOG_INFO, "serve.stopped");
    return rc;
}
