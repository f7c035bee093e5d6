/* Time: an injectable clock (so tests never wait on wall time), and the wire
 * formats certlc meets: RFC 1123 (HTTP Date, Retry-After), ISO 8601 / RFC 3339
 * (JSON), Unix seconds. All times are UTC Unix seconds unless named _ms. */
#ifndef CLC_CLOCK_H
#define CLC_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

/* A clock is a function; NULL means the system clock. Tests pass their own. */
struct clc_clock {
    int64_t (*now_ms)(void *ctx); /* Unix milliseconds */
    void *ctx;
};

int64_t clc_clock_now_ms(const struct clc_clock *c);
int64_t clc_clock_now(const struct clc_clock *c); /* seconds */

/* Monotonic milliseconds, for measuring durations and bounding waits. */
int64_t clc_mono_ms(void);
/* Sleeps, restarting after signals, until ms have passed. */
void clc_sleep_ms(int64_t ms);

#define CLC_TIME_STR_MAX 40

/* "Sun, 22 Nov 2026 13:50:25 GMT" */
enum clc_err clc_time_fmt_rfc1123(int64_t t, char out[CLC_TIME_STR_MAX]);
/* Accepts RFC 1123 (and the obsolete RFC 850 / asctime forms HTTP allows). */
enum clc_err clc_time_parse_rfc1123(const char *s, int64_t *out);
/* "2026-11-22T13:50:25Z" */
enum clc_err clc_time_fmt_iso8601(int64_t t, char out[CLC_TIME_STR_MAX]);
/* Accepts fractional seconds (truncated) and Z or ±hh:mm offsets. */
enum clc_err clc_time_parse_iso8601(const char *s, int64_t *out);

/* timegm without relying on the TZ environment. */
int64_t clc_time_from_utc(int year, int mon /*1-12*/, int day, int hour, int min, int sec);

#endif
