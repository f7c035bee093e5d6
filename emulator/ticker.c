/* Time-driven work for services (NearExpiry events, message TTLs, Event Grid
 * retries): tick hooks run after every clock change and once a second of real
 * time, serialised, so a test that advances the clock sees the consequences
 * before the control API answers. Also the stop hooks that free services. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "emulator/emu_internal.h"
#include "emulator/state.h"

enum clc_err emu_on_tick(struct emu *e, emu_tick_fn fn, void *ctx)
{
    enum clc_err rc = CLC_OK;

    pthread_mutex_lock(&e->tick_mu);
    if (e->nticks == EMU_MAX_HOOKS) {
        rc = CLC_ERR_LIMIT;
    } else {
        e->ticks[e->nticks].fn = fn;
        e->ticks[e->nticks].ctx = ctx;
        e->nticks++;
    }
    pthread_mutex_unlock(&e->tick_mu);
    return rc;
}

enum clc_err emu_at_stop(struct emu *e, emu_stop_fn fn, void *ctx)
{
    enum clc_err rc = CLC_OK;

    pthread_mutex_lock(&e->tick_mu);
    if (e->nstops == EMU_MAX_HOOKS) {
        rc = CLC_ERR_LIMIT;
    } else {
        e->stops[e->nstops].fn = fn;
        e->stops[e->nstops].ctx = ctx;
        e->nstops++;
    }
    pthread_mutex_unlock(&e->tick_mu);
    return rc;
}

void emu_tick(struct emu *e)
{
    /* tick_run_mu orders whole rounds; hooks may take the store lock. */
    pthread_mutex_lock(&e->tick_run_mu);
    pthread_mutex_lock(&e->tick_mu);
    size_t n = e->nticks;
    struct emu_tick_hook hooks[EMU_MAX_HOOKS];
    memcpy(hooks, e->ticks, n * sizeof hooks[0]);
    pthread_mutex_unlock(&e->tick_mu);
    int64_t now = emu_now(e);
    for (size_t i = 0; i < n; i++)
        hooks[i].fn(e, now, hooks[i].ctx);
    pthread_mutex_unlock(&e->tick_run_mu);
}

static void *ticker_main(void *arg)
{
    struct emu *e = arg;

    pthread_mutex_lock(&e->tick_mu);
    while (!e->ticker_stop) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += 1;
        int rc = 0;
        while (!e->ticker_stop && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&e->tick_cond, &e->tick_mu, &until);
        if (e->ticker_stop)
            break;
        pthread_mutex_unlock(&e->tick_mu);
        emu_tick(e);
        pthread_mutex_lock(&e->tick_mu);
    }
    pthread_mutex_unlock(&e->tick_mu);
    return NULL;
}

enum clc_err emu_ticker_init(struct emu *e)
{
    pthread_condattr_t attr;

    if (pthread_mutex_init(&e->tick_mu, NULL) != 0)
        return CLC_ERR_NOMEM;
    if (pthread_mutex_init(&e->tick_run_mu, NULL) != 0)
        return CLC_ERR_NOMEM;
    if (pthread_condattr_init(&attr) != 0)
        return CLC_ERR_NOMEM;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&e->tick_cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0)
        return CLC_ERR_NOMEM;
    e->ticker_inited = 1;
    return CLC_OK;
}

enum clc_err emu_ticker_start(struct emu *e, struct clc_errinfo *ei)
{
    if (pthread_create(&e->ticker, NULL, ticker_main, e) != 0)
        return clc_errf(ei, CLC_ERR_INTERNAL, "cannot start the ticker thread");
    e->ticker_running = 1;
    return CLC_OK;
}

void emu_ticker_stop(struct emu *e)
{
    if (e->ticker_running) {
        pthread_mutex_lock(&e->tick_mu);
        e->ticker_stop = 1;
        pthread_cond_signal(&e->tick_cond);
        pthread_mutex_unlock(&e->tick_mu);
        pthread_join(e->ticker, NULL);
        e->ticker_running = 0;
    }
}

void emu_ticker_cleanup(struct emu *e)
{
    if (!e->ticker_inited)
        return;
    /* Services go in the reverse order of their start. */
    for (size_t i = e->nstops; i > 0; i--)
        e->stops[i - 1].fn(e->stops[i - 1].ctx);
    e->nstops = 0;
    pthread_cond_destroy(&e->tick_cond);
    pthread_mutex_destroy(&e->tick_run_mu);
    pthread_mutex_destroy(&e->tick_mu);
    e->ticker_inited = 0;
}
