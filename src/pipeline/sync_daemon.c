/* The sync daemon's schedule: a pass every polling interval with jitter (so
 * a fleet does not poll the vault in step), exponential backoff after
 * failures, and requireInitialSync's bounded wait for a first success. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "pipeline/sync.h"

#define BACKOFF_BASE_MS 30000
#define SLEEP_SLICE_MS 200
#define MIN_DELAY_MS 100

int64_t clc_sync_next_delay_ms(const struct clc_sync_settings *s, int failures)
{
    int64_t interval = s->polling_interval_s * 1000;
    int64_t d = interval;
    if (failures > 0) {
        int64_t cap = (s->max_backoff_s > 0 ? s->max_backoff_s : s->polling_interval_s) * 1000;
        int shift = failures - 1 < 20 ? failures - 1 : 20;
        d = (int64_t)BACKOFF_BASE_MS << shift;
        if (d > cap)
            d = cap;
    }
    int64_t j = d * s->jitter_percent / 100;
    if (j > 0)
        d = d - j + (int64_t)clc_rand_below((uint64_t)(2 * j + 1));
    return d < MIN_DELAY_MS ? MIN_DELAY_MS : d;
}

static void sleep_until_stop(volatile sig_atomic_t *stop, int64_t ms)
{
    int64_t end = clc_mono_ms() + ms;
    for (int64_t left = ms; left > 0 && !(stop && *stop); left = end - clc_mono_ms())
        clc_sleep_ms(left < SLEEP_SLICE_MS ? left : SLEEP_SLICE_MS);
}

enum clc_err clc_sync_daemon(struct clc_sync *sy, const struct clc_sync_daemon_opts *o,
                             struct clc_errinfo *ei)
{
    const struct clc_sync_settings *s = clc_sync_settings_of(sy);
    int failures = 0, passes = 0, ready = 0;
    int64_t start = clc_mono_ms();
    struct clc_sync_result res;

    clc_log(CLC_LOG_INFO, "sync.daemon_start", CLC_LI("certificates", s->ncerts),
            CLC_LI("interval_s", s->polling_interval_s),
            CLC_LI("require_initial_sync", s->require_initial_sync));
    while (!(o->stop && *o->stop)) {
        struct clc_errinfo pe;
        clc_errinfo_clear(&pe);
        enum clc_err rc = o->isolate_passes ? clc_sync_pass_isolated(sy, s->pass_timeout_s * 1000,
                                                                     o->stop, &res, &pe)
                                            : clc_sync_pass(sy, &res, &pe);
        passes++;
        if (rc == CLC_OK) {
            failures = 0;
        } else {
            failures++;
            if (!ready && s->require_initial_sync &&
                (failures >= s->initial_sync_attempts ||
                 clc_mono_ms() - start >= s->initial_sync_timeout_s * 1000)) {
                *ei = pe;
                return clc_err_wrap(ei, rc,
                                    "requireInitialSync: no successful sync after %d "
                                    "attempts",
                                    failures);
            }
        }
        if (!ready && (rc == CLC_OK || !s->require_initial_sync)) {
            ready = 1;
            if (o->on_ready)
                o->on_ready(o->ready_ctx);
        }
        if (o->max_passes && passes >= o->max_passes)
            break;
        int64_t d = clc_sync_next_delay_ms(s, failures);
        if (!ready) {
            int64_t left = s->initial_sync_timeout_s * 1000 - (clc_mono_ms() - start);
            if (d > left)
                d = left > MIN_DELAY_MS ? left : MIN_DELAY_MS;
        }
        clc_log(CLC_LOG_DEBUG, "sync.sleep", CLC_LI("ms", d), CLC_LI("failures", failures));
        if (o->sleep_ms)
            o->sleep_ms(o->sleep_ctx, d);
        else
            sleep_until_stop(o->stop, d);
    }
    clc_log(CLC_LOG_INFO, "sync.daemon_stop", CLC_LI("passes", passes));
    return CLC_OK;
}
