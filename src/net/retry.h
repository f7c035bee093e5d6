/* Retry policy: which failures are worth repeating, how long to wait
 * (exponential backoff with full jitter, or the server's Retry-After), and the
 * bounds (attempts and total time). Sleep and randomness are injectable so
 * tests check the schedule without waiting. */
#ifndef CLC_RETRY_H
#define CLC_RETRY_H

#include <stdint.h>
#include "core/err.h"

struct clc_retry_policy {
    int max_attempts;      /* total tries including the first; >= 1 */
    int64_t base_delay_ms; /* first backoff cap */
    int64_t max_delay_ms;  /* cap on any one wait, Retry-After included */
    int64_t max_total_ms;  /* no new attempt would start past this */
    /* Injection points; NULL = OpenSSL random and clc_sleep_ms. */
    uint64_t (*rand_below)(uint64_t bound, void *ctx);
    void (*sleep_ms)(int64_t ms, void *ctx);
    void *ctx;
};

/* 4 attempts, 500 ms base, 30 s max delay, 120 s total. */
void clc_retry_policy_default(struct clc_retry_policy *p);
/* One attempt, no waiting. */
void clc_retry_policy_none(struct clc_retry_policy *p);

/* 408, 429, 500, 502, 503, 504. */
int clc_retry_status_retryable(long status);
/* CLC_ERR_NET, CLC_ERR_TIMEOUT, CLC_ERR_THROTTLED, CLC_ERR_UNAVAILABLE. */
int clc_retry_err_retryable(enum clc_err e);

/* Full-jitter backoff before retry number `retry` (1 = the first retry):
 * uniform in [0, min(max_delay, base * 2^(retry-1))]. */
int64_t clc_retry_backoff_ms(const struct clc_retry_policy *p, int retry);

/* Parses a Retry-After value: delta-seconds or an HTTP-date (relative to
 * now_s). A date in the past gives 0. CLC_ERR_PARSE if neither form. */
enum clc_err clc_retry_after_parse(const char *value, int64_t now_s, int64_t *delay_ms);

/* Chooses the wait before the next attempt: the server's hint (Retry-After,
 * retry-after-ms, x-ms-retry-after-ms; pass NULL for absent) if present,
 * else backoff; capped by max_delay_ms. */
int64_t clc_retry_delay_ms(const struct clc_retry_policy *p, int retry, const char *retry_after,
                           const char *retry_after_ms, int64_t now_s);

#endif
