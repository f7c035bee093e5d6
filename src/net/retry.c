/* Retry policy: classifies failures as worth repeating or not, and computes the
 * wait before the next try (the server's hint when it gives one, else
 * exponential backoff with full jitter), always within the policy's caps. */
#include "net/retry.h"

#include <string.h>

#include "core/clock.h"
#include "core/rand.h"

/* A server asking for more than a day is treated as asking for a day; the
 * policy's max_delay_ms caps it further. Keeps every product below overflow. */
#define RETRY_HINT_CAP_S INT64_C(86400)
#define RETRY_HINT_CAP_MS (RETRY_HINT_CAP_S * 1000)

void clc_retry_policy_default(struct clc_retry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->max_attempts = 4;
    p->base_delay_ms = 500;
    p->max_delay_ms = 30000;
    p->max_total_ms = 120000;
}

void clc_retry_policy_none(struct clc_retry_policy *p)
{
    memset(p, 0, sizeof *p);
    p->max_attempts = 1;
}

int clc_retry_status_retryable(long status)
{
    switch (status) {
    case 408:
    case 429:
    case 500:
    case 502:
    case 503:
    case 504:
        return 1;
    default:
        return 0;
    }
}

int clc_retry_err_retryable(enum clc_err e)
{
    return e == CLC_ERR_NET || e == CLC_ERR_TIMEOUT || e == CLC_ERR_THROTTLED ||
           e == CLC_ERR_UNAVAILABLE;
}

int64_t clc_retry_backoff_ms(const struct clc_retry_policy *p, int retry)
{
    int64_t cap = p->base_delay_ms;
    int64_t max = p->max_delay_ms;

    if (cap <= 0 || max <= 0 || retry < 1)
        return 0;
    /* Doubling stops as soon as the cap is reached, so the shift never
     * overflows whatever retry number is asked for. */
    for (int i = 1; i < retry && cap < max; i++)
        cap = cap > INT64_MAX / 2 ? INT64_MAX : cap * 2;
    if (cap > max)
        cap = max;
    uint64_t bound = (uint64_t)cap + 1; /* the range is inclusive of cap */
    uint64_t r = p->rand_below ? p->rand_below(bound, p->ctx) : clc_rand_below(bound);
    if (r >= bound) /* a misbehaving injected source must not break the bound */
        r = bound - 1;
    return (int64_t)r;
}

/* Non-empty run of ASCII digits and nothing else; value saturates at cap. */
static int parse_digits(const char *s, size_t n, int64_t cap, int64_t *out)
{
    int64_t v = 0;

    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v < cap)
            v = v * 10 + (s[i] - '0');
    }
    *out = v > cap ? cap : v;
    return 0;
}

/* Bounds of s without surrounding optional whitespace (SP / HTAB). */
static void trim_ows(const char **s, size_t *n)
{
    const char *p = *s;
    size_t len = strlen(p);

    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    *s = p;
    *n = len;
}

enum clc_err clc_retry_after_parse(const char *value, int64_t now_s, int64_t *delay_ms)
{
    enum clc_err rc = CLC_ERR_PARSE;
    const char *s = value;
    size_t n = 0;
    int64_t secs = 0;
    int64_t when = 0;
    char date[64];

    *delay_ms = 0;
    if (!value)
        goto out;
    trim_ows(&s, &n);
    if (n > 0 && s[0] >= '0' && s[0] <= '9') {
        if (parse_digits(s, n, RETRY_HINT_CAP_S, &secs) != 0)
            goto out;
        *delay_ms = secs * 1000;
        rc = CLC_OK;
        goto out;
    }
    /* Copy out so the date parser sees exactly the trimmed value. */
    if (n == 0 || n >= sizeof date)
        goto out;
    memcpy(date, s, n);
    date[n] = '\0';
    if (clc_time_parse_rfc1123(date, &when) != CLC_OK)
        goto out;
    if (when > now_s) {
        int64_t d = when - now_s;
        *delay_ms = (d > RETRY_HINT_CAP_S ? RETRY_HINT_CAP_S : d) * 1000;
    }
    rc = CLC_OK;
out:
    return rc;
}

/* retry-after-ms / x-ms-retry-after-ms: integer milliseconds. */
static int parse_ms_hint(const char *value, int64_t *ms)
{
    const char *s = value;
    size_t n = 0;

    if (!value)
        return -1;
    trim_ows(&s, &n);
    return parse_digits(s, n, RETRY_HINT_CAP_MS, ms);
}

int64_t clc_retry_delay_ms(const struct clc_retry_policy *p, int retry, const char *retry_after,
                           const char *retry_after_ms, int64_t now_s)
{
    int64_t d = 0;
    int64_t max = p->max_delay_ms > 0 ? p->max_delay_ms : 0;

    /* The millisecond hints are the more precise form of the same advice, so
     * they win (as in the Azure SDKs). An unreadable hint is ignored rather
     * than obeyed: backoff is the safe fallback. */
    if (parse_ms_hint(retry_after_ms, &d) != 0 &&
        clc_retry_after_parse(retry_after, now_s, &d) != CLC_OK)
        d = clc_retry_backoff_ms(p, retry);
    if (d > max)
        d = max;
    if (d < 0)
        d = 0;
    return d;
}
