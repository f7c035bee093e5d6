/* Retry policy: backoff bounds with a scripted random source, Retry-After in
 * its forms, hint precedence and caps, and which failures are retryable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "net/retry.h"

/* Random source that answers either the lowest or the highest legal value,
 * and records the bound it was asked for. */
struct fake_rand {
    int high;
    uint64_t last_bound;
    int calls;
};

static uint64_t fake_rand_below(uint64_t bound, void *ctx)
{
    struct fake_rand *f = ctx;

    f->last_bound = bound;
    f->calls++;
    return f->high ? bound - 1 : 0;
}

static void policy_with(struct clc_retry_policy *p, struct fake_rand *f)
{
    clc_retry_policy_default(p);
    p->rand_below = fake_rand_below;
    p->ctx = f;
}

/* 2026-01-01T00:00:00Z, the reference "now" for dates below. */
#define NOW INT64_C(1767225600)

static void test_defaults(void **state)
{
    struct clc_retry_policy p;

    (void)state;
    clc_retry_policy_default(&p);
    assert_int_equal(p.max_attempts, 4);
    assert_int_equal(p.base_delay_ms, 500);
    assert_int_equal(p.max_delay_ms, 30000);
    assert_int_equal(p.max_total_ms, 120000);
    assert_null(p.rand_below);
    assert_null(p.sleep_ms);
    clc_retry_policy_none(&p);
    assert_int_equal(p.max_attempts, 1);
}

static void test_backoff_bounds(void **state)
{
    struct fake_rand f = {0};
    struct clc_retry_policy p;

    (void)state;
    policy_with(&p, &f);
    /* Lowest draw: always zero (full jitter). */
    for (int r = 1; r <= 6; r++)
        assert_int_equal(clc_retry_backoff_ms(&p, r), 0);
    /* Highest draw: base * 2^(retry-1), inclusive. */
    f.high = 1;
    assert_int_equal(clc_retry_backoff_ms(&p, 1), 500);
    assert_int_equal(f.last_bound, 501);
    assert_int_equal(clc_retry_backoff_ms(&p, 2), 1000);
    assert_int_equal(clc_retry_backoff_ms(&p, 3), 2000);
    assert_int_equal(clc_retry_backoff_ms(&p, 4), 4000);
    /* Capped by max_delay_ms, even for absurd retry numbers. */
    assert_int_equal(clc_retry_backoff_ms(&p, 7), 30000);
    assert_int_equal(clc_retry_backoff_ms(&p, 1000), 30000);
    assert_int_equal(f.last_bound, 30001);
    p.max_delay_ms = 700;
    assert_int_equal(clc_retry_backoff_ms(&p, 2), 700);
}

static void test_backoff_degenerate(void **state)
{
    struct fake_rand f = {.high = 1};
    struct clc_retry_policy p;

    (void)state;
    policy_with(&p, &f);
    assert_int_equal(clc_retry_backoff_ms(&p, 0), 0);
    p.base_delay_ms = 0;
    assert_int_equal(clc_retry_backoff_ms(&p, 3), 0);
    assert_int_equal(f.calls, 0);
}

static void test_backoff_real_rand_in_range(void **state)
{
    struct clc_retry_policy p;

    (void)state;
    clc_retry_policy_default(&p);
    for (int i = 0; i < 200; i++) {
        int64_t d = clc_retry_backoff_ms(&p, 3);
        assert_true(d >= 0 && d <= 2000);
    }
}

static void test_retry_after_seconds(void **state)
{
    int64_t ms = -1;

    (void)state;
    assert_int_equal(clc_retry_after_parse("1", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 1000);
    assert_int_equal(clc_retry_after_parse("0", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 0);
    assert_int_equal(clc_retry_after_parse(" 120 ", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 120000);
    /* Huge values saturate instead of overflowing. */
    assert_int_equal(clc_retry_after_parse("99999999999999999999999999", NOW, &ms), CLC_OK);
    assert_int_equal(ms, INT64_C(86400) * 1000);
}

static void test_retry_after_dates(void **state)
{
    int64_t ms = -1;

    (void)state;
    /* IMF-fixdate, RFC 850 and asctime forms of NOW + 30 s. */
    assert_int_equal(clc_retry_after_parse("Thu, 01 Jan 2026 00:00:30 GMT", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 30000);
    ms = -1;
    assert_int_equal(clc_retry_after_parse("Thursday, 01-Jan-26 00:00:30 GMT", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 30000);
    ms = -1;
    assert_int_equal(clc_retry_after_parse("Thu Jan  1 00:00:30 2026", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 30000);
    /* A date in the past means no wait. */
    ms = -1;
    assert_int_equal(clc_retry_after_parse("Wed, 31 Dec 2025 23:59:00 GMT", NOW, &ms), CLC_OK);
    assert_int_equal(ms, 0);
}

static void test_retry_after_garbage(void **state)
{
    static const char *const bad[] = {
        "", "   ", "soon", "-5", "1.5", "12abc", "0x10", "Thu, 99 Foo 2026 00:00:30 GMT", NULL};
    int64_t ms = 0;

    (void)state;
    for (size_t i = 0; bad[i]; i++) {
        ms = 77;
        assert_int_equal(clc_retry_after_parse(bad[i], NOW, &ms), CLC_ERR_PARSE);
        assert_int_equal(ms, 0);
    }
    assert_int_equal(clc_retry_after_parse(NULL, NOW, &ms), CLC_ERR_PARSE);
}

static void test_delay_precedence(void **state)
{
    struct fake_rand f = {.high = 1};
    struct clc_retry_policy p;

    (void)state;
    policy_with(&p, &f);
    /* The millisecond hint beats Retry-After. */
    assert_int_equal(clc_retry_delay_ms(&p, 1, "10", "250", NOW), 250);
    /* Retry-After when no ms hint, without consulting randomness. */
    f.calls = 0;
    assert_int_equal(clc_retry_delay_ms(&p, 1, "2", NULL, NOW), 2000);
    assert_int_equal(f.calls, 0);
    /* A garbage ms hint falls back to Retry-After; garbage both, to backoff. */
    assert_int_equal(clc_retry_delay_ms(&p, 1, "3", "soon", NOW), 3000);
    assert_int_equal(clc_retry_delay_ms(&p, 2, "later", "x", NOW), 1000);
    /* No hint: backoff. */
    assert_int_equal(clc_retry_delay_ms(&p, 3, NULL, NULL, NOW), 2000);
    /* Every hint is capped by max_delay_ms. */
    assert_int_equal(clc_retry_delay_ms(&p, 1, "3600", NULL, NOW), 30000);
    assert_int_equal(clc_retry_delay_ms(&p, 1, NULL, "9999999", NOW), 30000);
    assert_int_equal(clc_retry_delay_ms(&p, 1, "Thu, 01 Jan 2026 01:00:00 GMT", NULL, NOW), 30000);
    /* A past date: no wait at all. */
    assert_int_equal(clc_retry_delay_ms(&p, 1, "Thu, 01 Jan 2015 01:00:00 GMT", NULL, NOW), 0);
}

static void test_classification(void **state)
{
    static const long yes[] = {408, 429, 500, 502, 503, 504};
    static const long no[] = {200, 201, 204, 301, 400, 401, 403, 404, 409, 412, 501, 505};

    (void)state;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        assert_true(clc_retry_status_retryable(yes[i]));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        assert_false(clc_retry_status_retryable(no[i]));
    assert_true(clc_retry_err_retryable(CLC_ERR_NET));
    assert_true(clc_retry_err_retryable(CLC_ERR_TIMEOUT));
    assert_true(clc_retry_err_retryable(CLC_ERR_THROTTLED));
    assert_true(clc_retry_err_retryable(CLC_ERR_UNAVAILABLE));
    assert_false(clc_retry_err_retryable(CLC_OK));
    assert_false(clc_retry_err_retryable(CLC_ERR_TLS));
    assert_false(clc_retry_err_retryable(CLC_ERR_LIMIT));
    assert_false(clc_retry_err_retryable(CLC_ERR_INVALID));
    assert_false(clc_retry_err_retryable(CLC_ERR_AUTH));
    assert_false(clc_retry_err_retryable(CLC_ERR_NOT_FOUND));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_backoff_bounds),
        cmocka_unit_test(test_backoff_degenerate),
        cmocka_unit_test(test_backoff_real_rand_in_range),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_dates),
        cmocka_unit_test(test_retry_after_garbage),
        cmocka_unit_test(test_delay_precedence),
        cmocka_unit_test(test_classification),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
