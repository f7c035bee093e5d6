/* Internals of the worker shared by its files: worker.c (threads, drain,
 * metrics), worker_lane.c (one message: lease, outcome, poison),
 * worker_setup.c (from configuration) and worker_poison.c (the tools). */
#ifndef CLC_WORKER_INT_H
#define CLC_WORKER_INT_H

#include <pthread.h>
#include "azure/queue.h"
#include "pipeline/worker.h"

struct worker_ca {
    char name[CLC_RENEW_NAME_MAX];
    struct clc_ca *ca;
};

/* One thread's clients (none of them is thread-safe) and its lease. */
struct worker_lane {
    struct clc_worker *w;
    struct clc_queue *q;
    struct clc_kv **kv; /* per settings vault, made on first use */
    struct worker_ca *cas;
    size_t ncas;
    struct clc_queue_lease lease;
    int64_t lease_since; /* when the lease was last taken, extended or updated */
    struct clc_worker_summary sum;
    pthread_t thread;
    int started;
};

struct clc_worker {
    struct clc_worker_opts o;
    struct worker_lane *lanes;
    int nlanes;
    pthread_mutex_t mu; /* metrics and wake state */
    pthread_cond_t cv;
    uint64_t wake_gen, passes;
    int stop, running;
    struct clc_metrics_snapshot m;
    int drained; /* a drain completed (certlc renew) */
    /* owned when built from configuration */
    struct clc_renew_settings own_set;
    int owns;
    struct clc_auth *own_auth;
    struct clc_storage_cred *own_cred;
    struct clc_notify *own_notify;
    struct clc_la *own_la;
};

enum clc_err worker_lane_init(struct clc_worker *w, struct worker_lane *l, struct clc_errinfo *ei);
void worker_lane_cleanup(struct worker_lane *l);
/* Takes and processes one message; *got = 0 when none was visible. */
enum clc_err worker_lane_one(struct worker_lane *l, int *got, struct clc_errinfo *ei);
/* A queue client for another queue name on the same account. */
enum clc_err worker_queue_client(struct clc_worker *w, struct clc_queue **out,
                                 struct clc_errinfo *ei);

/* Records one outcome in the metrics (under w->mu). */
void worker_count(struct clc_worker *w, const struct clc_renew_result *res, int64_t now);
/* Sends buffered Log Analytics rows (under w->mu); failures are logged. */
void worker_flush_logs(struct clc_worker *w);
/* Rows are sent as soon as this many wait, so a long drain neither holds
 * them back nor grows the buffer; the rest go at the end of the drain. */
#define WORKER_LOG_BATCH_ROWS 200
void worker_flush_logs_batch(struct clc_worker *w);

/* The poison queue's record for a message (base64 JSON); malloc'd. */
enum clc_err worker_poison_record(const struct clc_queue_msg *m, const struct clc_event *ev,
                                  const char *reason, const char *detail, int64_t now, char **out,
                                  size_t *len, struct clc_errinfo *ei);

#endif
