/* The renewal worker: takes messages from the work queue under a
 * visibility-timeout lease (extended while it works), renews with
 * clc_renew_run, and acts on the outcome (delete, keep for later with the
 * state in the message, or move to the poison queue with a failure notice).
 * One or more threads; drains once (certlc renew) or keeps draining, woken by
 * clc_worker_wake and a schedule (certlc worker, certlc serve). Counts
 * metrics for /metrics. Also the poison and dead-letter tools. */
#ifndef CLC_WORKER_H
#define CLC_WORKER_H

#include <stddef.h>
#include <stdint.h>
#include "azure/auth.h"
#include "azure/loganalytics.h"
#include "azure/storage_auth.h"
#include "core/buf.h"
#include "core/config.h"
#include "net/http.h"
#include "net/retry.h"
#include "pipeline/metrics.h"
#include "pipeline/notify.h"
#include "pipeline/renew.h"

#define CLC_WORKER_THREADS_MAX 64

struct clc_worker;

struct clc_worker_opts {
    const struct clc_config *cfg;         /* CA clients are built from its ca.* */
    const struct clc_renew_settings *set; /* borrowed */
    const struct clc_http_opts *http;     /* NULL = defaults */
    struct clc_auth *auth;                /* Key Vault tokens (thread-safe) */
    const struct clc_storage_cred *cred;  /* the queue's credential */
    struct clc_notify *notify;            /* NULL = no e-mail */
    struct clc_la *la;                    /* NULL = no Log Analytics */
    const struct clc_clock *clock;        /* NULL = system clock */
    const struct clc_retry_policy *retry; /* HTTP retries; NULL = default */
    int threads;                          /* 1..CLC_WORKER_THREADS_MAX; 0 = 1 */
    int abort_after;                      /* test hook (enum clc_renew_step), -1 = never */
};

/* Everything borrowed from opts must outlive the worker. */
enum clc_err clc_worker_new(const struct clc_worker_opts *opts, struct clc_worker **out,
                            struct clc_errinfo *ei);
/* Builds settings, auth, queue credential, e-mail and Log Analytics (both
 * optional) from the configuration; the worker owns them. threads 0 = 1. */
enum clc_err clc_worker_from_config(const struct clc_config *cfg, const struct clc_http_opts *http,
                                    int threads, struct clc_worker **out, struct clc_errinfo *ei);
void clc_worker_free(struct clc_worker *w);

struct clc_worker_summary {
    uint64_t outcomes[CLC_RENEW__OUTCOMES];
    uint64_t messages;
    uint64_t errors; /* queue failures outside any message */
};

/* Takes messages until the queue has none visible (certlc renew). Fails only
 * when the queue cannot be read at all. */
enum clc_err clc_worker_drain(struct clc_worker *w, struct clc_worker_summary *sum,
                              struct clc_errinfo *ei);

/* Background mode: the threads drain, then sleep until woken or until the
 * schedule (renew.schedule_s) comes round. */
enum clc_err clc_worker_start(struct clc_worker *w, struct clc_errinfo *ei);
/* Asks for a drain now (the webhook's signal); any thread, never blocks long. */
void clc_worker_wake(struct clc_worker *w);
/* Finishes the message in hand, then stops and joins the threads. */
void clc_worker_stop(struct clc_worker *w);
/* Completed drain passes since start (tests wait on it). */
uint64_t clc_worker_passes(struct clc_worker *w);

/* The counters certlc serve renders on /metrics (pipeline/metrics.h):
 * renewals by outcome, the queue depth last seen, CA latency, the last
 * success. have_worker is 1; worker_ok says whether the threads run (or a
 * drain completed). */
void clc_worker_get_metrics(struct clc_worker *w, struct clc_metrics_snapshot *out);

/* ---- poison queue and Event Grid dead-letters (certlc poison / deadletter) ---- */

struct clc_poison_item {
    char id[128];    /* queue message id (poison) or event id (dead-letter) */
    char reason[64]; /* "ca_denied", "max_dequeue", or Event Grid's deadLetterReason */
    char detail[512];
    char vault[64], certificate[128];
    int64_t when;     /* poisoned / last delivery attempt (Unix seconds) */
    int64_t attempts; /* dequeue count / delivery attempts */
    char where[300];  /* dead-letter: the blob */
};

struct clc_poison_list {
    struct clc_poison_item *v;
    size_t n;
    int64_t approximate; /* poison: the queue's approximate count */
};
void clc_poison_list_cleanup(struct clc_poison_list *l);

/* Reads without taking (the first 32 messages: Azure's peek limit). */
enum clc_err clc_poison_list(struct clc_worker *w, struct clc_poison_list *out,
                             struct clc_errinfo *ei);
/* Puts poisoned messages back on the work queue (id NULL = all) and removes
 * them from the poison queue. *n = how many. */
enum clc_err clc_poison_replay(struct clc_worker *w, const char *id, size_t *n,
                               struct clc_errinfo *ei);

enum clc_err clc_deadletter_list(struct clc_worker *w, struct clc_poison_list *out,
                                 struct clc_errinfo *ei);
/* Puts dead-lettered events back on the work queue (event_id NULL = all) and
 * removes them from their blobs (a blob left empty is deleted). */
enum clc_err clc_deadletter_replay(struct clc_worker *w, const char *event_id, size_t *n,
                                   struct clc_errinfo *ei);

#endif
