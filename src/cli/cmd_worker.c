/* certlc worker: keeps draining the work queue: at start, every
 * renew.schedule_s, and whenever woken (SIGUSR1, or in-process by certlc
 * serve's webhook). SIGTERM or SIGINT stops it cleanly after the messages in
 * hand (exit 0). */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "core/log.h"
#include "pipeline/worker.h"

static void worker_usage(FILE *f)
{
    fprintf(f, "usage: certlc worker [--threads N]\n\n"
               "Runs the renewal worker until stopped: drains the work queue now, then every\n"
               "renew.schedule_s seconds (default 900) and whenever it receives SIGUSR1.\n"
               "SIGTERM or SIGINT: finishes the messages in hand and exits 0.\n\n"
               "options:\n"
               "  -t, --threads N   messages worked on at once (default 1, at most 64)\n");
}

int clc_cmd_worker(struct clc_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"threads", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    struct clc_errinfo ei;
    struct clc_worker *w = NULL;
    int threads = 1, c, sig = 0;
    enum clc_err e;
    sigset_t set;

    clc_errinfo_clear(&ei);
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (clc_cli_parse_threads("worker", optarg, CLC_WORKER_THREADS_MAX, &threads) != 0)
                return CLC_EXIT_ERROR;
            break;
        case 'h':
            worker_usage(stdout);
            return CLC_EXIT_OK;
        default:
            worker_usage(stderr);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind != argc) {
        worker_usage(stderr);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    /* The signals are taken by this thread with sigwait; the worker's
     * threads inherit the mask and never see them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if ((e = clc_worker_from_config(cli->config, &cli->http, threads, &w, &ei)) != CLC_OK)
        return clc_cli_fail("worker", e, &ei);
    if ((e = clc_worker_start(w, &ei)) != CLC_OK) {
        clc_worker_free(w);
        return clc_cli_fail("worker", e, &ei);
    }
    clc_log(CLC_LOG_INFO, "worker.started", CLC_LI("threads", threads));
    for (;;) {
        if (sigwait(&set, &sig) != 0)
            continue;
        if (sig == SIGUSR1) {
            clc_worker_wake(w);
            continue;
        }
        break;
    }
    clc_log(CLC_LOG_INFO, "worker.stopping", CLC_LI("signal", sig));
    clc_worker_stop(w);
    clc_worker_free(w);
    clc_log0(CLC_LOG_INFO, "worker.stopped");
    return CLC_EXIT_OK;
}
