/* Queue benchmark: put + get + delete cycles per second through the
 * project's queue client against one queue service, with N threads each
 * owning a client (one keep-alive connection) and a queue; also the client's
 * own CPU per cycle. Built by CMake, run by ci/bench.sh (not ctest).
 * usage: bench_queue --endpoint URL [--ca-bundle PEM] [--threads N] [--seconds S] */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "azure/queue.h"
#include "core/clock.h"

#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define MAX_THREADS 64

struct worker {
    pthread_t tid;
    int index;
    const char *endpoint;
    const char *ca_bundle;
    const struct clc_storage_cred *cred;
    int64_t deadline_ms; /* monotonic */
    long cycles;
    int failed;
    char error[CLC_ERRINFO_MSG_MAX];
};

static void *run(void *arg)
{
    struct worker *w = arg;
    struct clc_http_opts ho = {.ca_bundle = w->ca_bundle, .timeout_ms = 10000};
    struct clc_storage_opts o = {.endpoint = w->endpoint, .cred = w->cred, .http = &ho};
    struct clc_queue *q = NULL;
    struct clc_errinfo ei = {0};
    char name[64];
    /* Roughly what Event Grid writes: base64 of a ~400 byte event. */
    char text[544];

    memset(text, 'A', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    snprintf(name, sizeof name, "bench-%d-%d", (int)getpid(), w->index);
    if (clc_queue_new(&o, &q, &ei) != CLC_OK ||
        clc_queue_create(q, name, NULL, NULL, &ei) != CLC_OK)
        goto fail;
    while (clc_mono_ms() < w->deadline_ms) {
        struct clc_queue_msgs m = {0};
        if (clc_queue_put(q, name, text, sizeof text - 1, 0, 0, NULL, &ei) != CLC_OK ||
            clc_queue_get(q, name, 1, 30, &m, &ei) != CLC_OK)
            goto fail;
        if (m.n != 1) {
            clc_errf(&ei, CLC_ERR_INTERNAL, "get returned %zu messages", m.n);
            clc_queue_msgs_cleanup(&m);
            goto fail;
        }
        enum clc_err rc = clc_queue_delete_message(q, name, m.v[0].id, m.v[0].pop_receipt, &ei);
        clc_queue_msgs_cleanup(&m);
        if (rc != CLC_OK)
            goto fail;
        w->cycles++;
    }
    clc_queue_delete(q, name, &ei);
    clc_queue_free(q);
    return NULL;
fail:
    w->failed = 1;
    snprintf(w->error, sizeof w->error, "%s", ei.msg);
    clc_queue_free(q);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *endpoint = NULL, *ca = NULL;
    int threads = 1;
    double seconds = 5;
    struct worker w[MAX_THREADS];
    struct clc_secret *key = NULL;
    struct clc_storage_cred *cred = NULL;
    long total = 0;
    struct rusage ru0, ru1;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--ca-bundle") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "--threads") == 0)
            threads = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
    }
    if (!endpoint || threads < 1 || threads > MAX_THREADS || seconds <= 0 || seconds > 600) {
        fprintf(stderr,
                "usage: bench_queue --endpoint URL [--ca-bundle PEM] [--threads 1..%d] "
                "[--seconds S]\n",
                MAX_THREADS);
        return 2;
    }
    if (clc_secret_new(DEV_KEY, strlen(DEV_KEY), &key) != CLC_OK ||
        clc_storage_cred_shared_key(DEV_ACCOUNT, key, &cred, NULL) != CLC_OK)
        return 1;
    getrusage(RUSAGE_SELF, &ru0);
    int64_t start = clc_mono_ms();
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.index = i,
                               .endpoint = endpoint,
                               .ca_bundle = ca,
                               .cred = cred,
                               .deadline_ms = start + (int64_t)(seconds * 1000)};
        if (pthread_create(&w[i].tid, NULL, run, &w[i]) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    int failed = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].tid, NULL);
        total += w[i].cycles;
        if (w[i].failed) {
            fprintf(stderr, "thread %d: %s\n", i, w[i].error);
            failed = 1;
        }
    }
    double elapsed = (double)(clc_mono_ms() - start) / 1000.0;
    getrusage(RUSAGE_SELF, &ru1);
    /* User plus system time of this process: on a small machine the client
     * competes with the server for the same cores. */
    double cpu_us = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                             ru0.ru_stime.tv_sec) *
                        1e6 +
                    (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                             ru0.ru_stime.tv_usec);
    printf("threads=%d cycles=%ld seconds=%.2f rate=%.1f client_cpu_us_per_cycle=%.0f\n", threads,
           total, elapsed, (double)total / elapsed, total > 0 ? cpu_us / (double)total : 0.0);
    clc_storage_cred_free(cred);
    clc_secret_free(key);
    return failed;
}
