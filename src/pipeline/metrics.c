/* The Prometheus text exposition (format 0.0.4) of certlc's pipeline
 * metrics, and the small histogram/counter helpers the snapshot is built
 * with. Pure functions: no locks, no I/O. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline/metrics.h"

void clc_metrics_snapshot_init(struct clc_metrics_snapshot *s)
{
    memset(s, 0, sizeof *s);
    s->queue_depth = -1;
    clc_metrics_hist_init_ca(&s->ca_seconds);
}

void clc_metrics_hist_init_ca(struct clc_metrics_hist *h)
{
    /* A CA answers in milliseconds when local, seconds when a policy module
     * runs, minutes when it is overloaded: cover all three. */
    static const double b[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};

    memset(h, 0, sizeof *h);
    h->nbuckets = sizeof b / sizeof b[0];
    memcpy(h->bounds, b, sizeof b);
}

void clc_metrics_hist_observe(struct clc_metrics_hist *h, double seconds)
{
    if (!(seconds >= 0)) /* NaN and negatives say nothing about latency */
        seconds = 0;
    h->count++;
    h->sum_s += seconds;
    for (size_t i = 0; i < h->nbuckets && i < CLC_METRICS_BUCKETS_MAX; i++) {
        if (seconds <= h->bounds[i]) {
            h->buckets[i]++;
            return;
        }
    }
}

/* Prometheus label values may hold anything escaped, but ours are fixed
 * words: anything else is a bug upstream and is left out rather than
 * escaped into a surprise series. */
static int label_ok(const char *s)
{
    if (s[0] == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

enum clc_err clc_metrics_count_add(struct clc_metrics_count *v, size_t *n, const char *label,
                                   uint64_t by)
{
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(v[i].label, label) == 0) {
            v[i].value += by;
            return CLC_OK;
        }
    }
    if (*n >= CLC_METRICS_LABELS_MAX || strlen(label) >= CLC_METRICS_LABEL_LEN)
        return CLC_ERR_LIMIT;
    snprintf(v[*n].label, sizeof v[*n].label, "%s", label);
    v[*n].value = by;
    (*n)++;
    return CLC_OK;
}

/* Shortest text that reads back as the same double ("0.05", "1", "+Inf"). */
static void fmt_double(double d, char out[32])
{
    if (isinf(d)) {
        snprintf(out, 32, "%s", d > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (isnan(d)) {
        snprintf(out, 32, "NaN");
        return;
    }
    if (fabs(d) < 1e15 && d == (double)(long long)d) {
        snprintf(out, 32, "%lld", (long long)d);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(out, 32, "%.*g", prec, d);
        double back;
        if (sscanf(out, "%lf", &back) == 1 && back == d)
            return;
    }
}

static enum clc_err header(struct clc_buf *b, const char *name, const char *type, const char *help)
{
    return clc_buf_appendf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static enum clc_err counts(struct clc_buf *b, const char *name, const char *label,
                           const struct clc_metrics_count *v, size_t n)
{
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; rc == CLC_OK && i < n && i < CLC_METRICS_LABELS_MAX; i++)
        if (label_ok(v[i].label))
            rc = clc_buf_appendf(b, "%s{%s=\"%s\"} %llu\n", name, label, v[i].label,
                                 (unsigned long long)v[i].value);
    return rc;
}

static enum clc_err histogram(struct clc_buf *b, const char *name, const struct clc_metrics_hist *h)
{
    char num[32];
    uint64_t cum = 0;
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; rc == CLC_OK && i < h->nbuckets && i < CLC_METRICS_BUCKETS_MAX; i++) {
        cum += h->buckets[i];
        fmt_double(h->bounds[i], num);
        rc = clc_buf_appendf(b, "%s_bucket{le=\"%s\"} %llu\n", name, num, (unsigned long long)cum);
    }
    if (rc == CLC_OK)
        rc =
            clc_buf_appendf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    fmt_double(h->sum_s, num);
    if (rc == CLC_OK)
        rc = clc_buf_appendf(b, "%s_sum %s\n%s_count %llu\n", name, num, name,
                             (unsigned long long)h->count);
    return rc;
}

enum clc_err clc_metrics_render(const struct clc_metrics_snapshot *s,
                                const struct clc_metrics_count *webhook, size_t nwebhook,
                                struct clc_buf *out)
{
    enum clc_err rc = CLC_OK;

    if (s->have_worker) {
        rc = header(out, "certlc_renewals_total", "counter",
                    "Certificate renewals finished, by outcome.");
        if (rc == CLC_OK)
            rc = counts(out, "certlc_renewals_total", "outcome", s->renewals, s->nrenewals);
        if (rc == CLC_OK && s->queue_depth >= 0) {
            rc = header(out, "certlc_queue_depth", "gauge",
                        "Messages in the renewal queue when the worker last looked.");
            if (rc == CLC_OK)
                rc = clc_buf_appendf(out, "certlc_queue_depth %lld\n", (long long)s->queue_depth);
        }
        if (rc == CLC_OK)
            rc = header(out, "certlc_ca_request_seconds", "histogram",
                        "Time taken by requests to the CA (submit and retrieve).");
        if (rc == CLC_OK)
            rc = histogram(out, "certlc_ca_request_seconds", &s->ca_seconds);
        if (rc == CLC_OK)
            rc = header(out, "certlc_last_success_timestamp_seconds", "gauge",
                        "Unix time of the last completed renewal (0: none yet).");
        if (rc == CLC_OK)
            rc = clc_buf_appendf(out, "certlc_last_success_timestamp_seconds %lld\n",
                                 (long long)s->last_success);
    }
    if (rc == CLC_OK)
        rc = header(out, "certlc_webhook_deliveries_total", "counter",
                    "Requests to the Event Grid webhook, by result.");
    if (rc == CLC_OK)
        rc = counts(out, "certlc_webhook_deliveries_total", "result", webhook, nwebhook);
    if (rc == CLC_OK)
        rc = header(out, "certlc_up", "gauge", "1 when the worker is running and draining.");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(out, "certlc_up %d\n", s->have_worker && s->worker_ok ? 1 : 0);
    return rc;
}
