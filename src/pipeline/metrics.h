/* What certlc serve shows on /metrics and /healthz: a plain snapshot of the
 * pipeline's counters (filled by whoever owns them, the worker) and the
 * renderer to the Prometheus text exposition format 0.0.4. */
#ifndef CLC_METRICS_H
#define CLC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define CLC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define CLC_METRICS_LABELS_MAX 16
#define CLC_METRICS_LABEL_LEN 32
#define CLC_METRICS_BUCKETS_MAX 16

struct clc_metrics_count {
    char label[CLC_METRICS_LABEL_LEN]; /* [a-z0-9_]; others are skipped */
    uint64_t value;
};

/* A latency histogram: per-bucket counts (not cumulative; the renderer
 * accumulates), bucket upper bounds in seconds in ascending order, and the
 * overflow in count - sum(buckets). */
struct clc_metrics_hist {
    double bounds[CLC_METRICS_BUCKETS_MAX];
    uint64_t buckets[CLC_METRICS_BUCKETS_MAX];
    size_t nbuckets;
    uint64_t count;
    double sum_s;
};

struct clc_metrics_snapshot {
    int have_worker; /* 0: the gauges below are unknown */
    int worker_ok;   /* the worker thread is alive and draining */
    struct clc_metrics_count renewals[CLC_METRICS_LABELS_MAX]; /* by outcome */
    size_t nrenewals;
    int64_t queue_depth; /* last seen (approximate message count); -1 unknown */
    struct clc_metrics_hist ca_seconds;
    int64_t last_success; /* Unix seconds of the last completed renewal; 0 never */
};

void clc_metrics_snapshot_init(struct clc_metrics_snapshot *s);
/* Standard latency buckets for CA requests (0.05 s .. 300 s). */
void clc_metrics_hist_init_ca(struct clc_metrics_hist *h);
/* Records one observation. Not thread-safe: callers hold their own lock. */
void clc_metrics_hist_observe(struct clc_metrics_hist *h, double seconds);
/* Adds to (or creates) the count with that label; CLC_ERR_LIMIT when full. */
enum clc_err clc_metrics_count_add(struct clc_metrics_count *v, size_t *n, const char *label,
                                   uint64_t by);

/* Appends the exposition text: certlc_renewals_total{outcome}, certlc_queue_depth,
 * certlc_ca_request_seconds (histogram), certlc_last_success_timestamp_seconds
 * (only with a worker), then certlc_webhook_deliveries_total{result} from
 * the webhook's own counts, and certlc_up. */
enum clc_err clc_metrics_render(const struct clc_metrics_snapshot *s,
                                const struct clc_metrics_count *webhook, size_t nwebhook,
                                struct clc_buf *out);

#endif
