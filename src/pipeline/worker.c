/* The worker's threads: drain the queue once with N lanes (certlc renew), or
 * keep draining in the background, woken by clc_worker_wake or the schedule
 * (certlc worker, certlc serve); and the metrics they count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "pipeline/worker_int.h"

enum clc_err clc_worker_new(const struct clc_worker_opts *opts, struct clc_worker **out,
                            struct clc_errinfo *ei)
{
    struct clc_worker *w;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (!opts || !opts->set || !opts->cfg || !opts->cred)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "worker: settings, configuration and queue "
                        "credential are required");
    if (opts->threads < 0 || opts->threads > CLC_WORKER_THREADS_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "worker: threads must be 1..%d",
                        CLC_WORKER_THREADS_MAX);
    if (!(w = calloc(1, sizeof *w)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    w->o = *opts;
    w->nlanes = opts->threads ? opts->threads : 1;
    clc_metrics_snapshot_init(&w->m);
    clc_metrics_hist_init_ca(&w->m.ca_seconds);
    w->m.have_worker = 1;
    w->m.queue_depth = -1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!(w->lanes = calloc((size_t)w->nlanes, sizeof *w->lanes))) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < w->nlanes && rc == CLC_OK; i++)
        rc = worker_lane_init(w, &w->lanes[i], ei);
out:
    if (rc != CLC_OK) {
        clc_worker_free(w);
        return rc;
    }
    *out = w;
    return CLC_OK;
}

void clc_worker_free(struct clc_worker *w)
{
    if (!w)
        return;
    clc_worker_stop(w);
    worker_flush_logs(w);
    for (int i = 0; w->lanes && i < w->nlanes; i++)
        worker_lane_cleanup(&w->lanes[i]);
    free(w->lanes);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    if (w->owns) {
        clc_la_free(w->own_la);
        clc_notify_free(w->own_notify);
        clc_storage_cred_free(w->own_cred);
        clc_auth_free(w->own_auth);
        clc_renew_settings_cleanup(&w->own_set);
    }
    free(w);
}

void worker_count(struct clc_worker *w, const struct clc_renew_result *res, int64_t now)
{
    pthread_mutex_lock(&w->mu);
    if ((unsigned)res->outcome < CLC_RENEW__OUTCOMES)
        (void)clc_metrics_count_add(w->m.renewals, &w->m.nrenewals,
                                    clc_renew_outcome_name(res->outcome), 1);
    if (res->outcome == CLC_RENEW_RENEWED || res->outcome == CLC_RENEW_NOTICE_RETRY)
        w->m.last_success = now;
    if (res->ca_latency_ms >= 0)
        clc_metrics_hist_observe(&w->m.ca_seconds, (double)res->ca_latency_ms / 1000.0);
    pthread_mutex_unlock(&w->mu);
}

void worker_flush_logs(struct clc_worker *w)
{
    struct clc_errinfo ei = {0};
    if (!w->o.la)
        return;
    /* clc_la is thread-safe: no worker lock across its network I/O. */
    if (clc_la_buffered(w->o.la) > 0 && clc_la_flush(w->o.la, &ei) != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.log_flush", CLC_LS("error", ei.msg),
                CLC_LI("buffered", clc_la_buffered(w->o.la)));
}

void worker_flush_logs_batch(struct clc_worker *w)
{
    if (w->o.la && clc_la_buffered(w->o.la) >= WORKER_LOG_BATCH_ROWS)
        worker_flush_logs(w);
}

static void read_depth(struct clc_worker *w, struct worker_lane *l)
{
    struct clc_queue_props p;
    struct clc_errinfo ei = {0};
    memset(&p, 0, sizeof p);
    if (clc_queue_get_metadata(l->q, w->o.set->queue_name, &p, &ei) == CLC_OK) {
        pthread_mutex_lock(&w->mu);
        w->m.queue_depth = p.approximate_count;
        pthread_mutex_unlock(&w->mu);
    }
    clc_queue_props_cleanup(&p);
}

static int stopping(struct clc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    int s = w->stop;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* One lane until the queue shows nothing. Bounded: a message made visible
 * again at once could otherwise keep a drain going forever. */
static enum clc_err lane_drain(struct worker_lane *l, struct clc_errinfo *ei)
{
    enum { DRAIN_MAX = 1000000 };
    int got = 1;
    enum clc_err rc = CLC_OK;
    for (long i = 0; i < DRAIN_MAX && got && !stopping(l->w); i++) {
        rc = worker_lane_one(l, &got, ei);
        if (rc != CLC_OK)
            break;
    }
    return rc;
}

struct drain_arg {
    struct worker_lane *l;
    enum clc_err rc;
    struct clc_errinfo ei;
};

static void *drain_thread(void *p)
{
    struct drain_arg *a = p;
    a->rc = lane_drain(a->l, &a->ei);
    return NULL;
}

enum clc_err clc_worker_drain(struct clc_worker *w, struct clc_worker_summary *sum,
                              struct clc_errinfo *ei)
{
    struct drain_arg args[CLC_WORKER_THREADS_MAX];
    enum clc_err rc = CLC_OK;
    int started = 0;

    memset(sum, 0, sizeof *sum);
    memset(args, 0, sizeof args);
    read_depth(w, &w->lanes[0]);
    for (int i = 0; i < w->nlanes; i++) {
        memset(&w->lanes[i].sum, 0, sizeof w->lanes[i].sum);
        args[i].l = &w->lanes[i];
    }
    if (w->nlanes == 1) {
        drain_thread(&args[0]);
    } else {
        for (; started < w->nlanes; started++)
            if (pthread_create(&w->lanes[started].thread, NULL, drain_thread, &args[started]))
                break;
        if (started == 0)
            return clc_errf(ei, CLC_ERR_INTERNAL, "cannot start worker threads");
        for (int i = 0; i < started; i++)
            pthread_join(w->lanes[i].thread, NULL);
    }
    for (int i = 0; i < w->nlanes; i++) {
        for (int k = 0; k < CLC_RENEW__OUTCOMES; k++)
            sum->outcomes[k] += w->lanes[i].sum.outcomes[k];
        sum->messages += w->lanes[i].sum.messages;
        sum->errors += w->lanes[i].sum.errors;
        if (args[i].rc != CLC_OK && rc == CLC_OK) {
            rc = args[i].rc;
            if (ei)
                *ei = args[i].ei;
        }
    }
    worker_flush_logs(w);
    pthread_mutex_lock(&w->mu);
    w->drained = 1;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* ---- background mode ---- */

static void deadline_in(struct timespec *ts, int64_t seconds)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)seconds;
}

static void *loop_thread(void *p)
{
    struct worker_lane *l = p;
    struct clc_worker *w = l->w;
    struct clc_errinfo ei;
    uint64_t seen;

    for (;;) {
        pthread_mutex_lock(&w->mu);
        seen = w->wake_gen;
        int stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop)
            break;
        clc_errinfo_clear(&ei);
        if (l == &w->lanes[0])
            read_depth(w, l);
        if (lane_drain(l, &ei) != CLC_OK)
            clc_log(CLC_LOG_ERROR, "renew.drain", CLC_LS("error", ei.msg));
        worker_flush_logs(w);
        /* Sleep until woken (a wake during the drain counts: it may have
         * raced the last empty read) or the schedule comes round. */
        struct timespec until;
        deadline_in(&until, w->o.set->schedule_s);
        pthread_mutex_lock(&w->mu);
        w->passes++;
        pthread_cond_broadcast(&w->cv);
        while (!w->stop && w->wake_gen == seen) {
            if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
                break;
        }
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

enum clc_err clc_worker_start(struct clc_worker *w, struct clc_errinfo *ei)
{
    pthread_mutex_lock(&w->mu);
    int running = w->running;
    w->stop = 0;
    w->running = 1;
    pthread_mutex_unlock(&w->mu);
    if (running)
        return clc_errf(ei, CLC_ERR_INVALID, "the worker is already running");
    for (int i = 0; i < w->nlanes; i++) {
        if (pthread_create(&w->lanes[i].thread, NULL, loop_thread, &w->lanes[i]) != 0) {
            clc_worker_stop(w);
            return clc_errf(ei, CLC_ERR_INTERNAL, "cannot start worker thread %d", i);
        }
        w->lanes[i].started = 1;
    }
    return CLC_OK;
}

void clc_worker_wake(struct clc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->wake_gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void clc_worker_stop(struct clc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (int i = 0; w->lanes && i < w->nlanes; i++) {
        if (w->lanes[i].started)
            pthread_join(w->lanes[i].thread, NULL);
        w->lanes[i].started = 0;
    }
    pthread_mutex_lock(&w->mu);
    w->running = 0;
    pthread_mutex_unlock(&w->mu);
}

uint64_t clc_worker_passes(struct clc_worker *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t p = w->passes;
    pthread_mutex_unlock(&w->mu);
    return p;
}

/* ---- metrics ---- */

void clc_worker_get_metrics(struct clc_worker *w, struct clc_metrics_snapshot *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->m;
    out->worker_ok = w->running || w->drained;
    pthread_mutex_unlock(&w->mu);
}
