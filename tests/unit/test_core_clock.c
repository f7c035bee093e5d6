/* Tests for core/clock: injected clocks, civil-date arithmetic against known
 * Unix times, the three HTTP date forms, ISO 8601 offsets and fractions, and
 * refusal of garbage and out-of-range fields. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/clock.h"

static int64_t fake_now(void *ctx)
{
    return *(int64_t *)ctx;
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t t = 1795355425123LL;
    struct clc_clock c = {fake_now, &t};
    assert_int_equal(clc_clock_now_ms(&c), 1795355425123LL);
    assert_int_equal(clc_clock_now(&c), 1795355425);
    t = -1;
    assert_int_equal(clc_clock_now(&c), -1); /* floor, not truncation */

    /* The system clock is somewhere after 2020 and before 2200. */
    int64_t now = clc_clock_now_ms(NULL);
    assert_true(now > 1577836800000LL && now < 7258118400000LL);
    struct clc_clock empty = {NULL, NULL};
    int64_t d = clc_clock_now_ms(&empty) - now;
    assert_true(d >= 0 && d < 60000);

    int64_t m1 = clc_mono_ms();
    clc_sleep_ms(0);
    clc_sleep_ms(-5);
    clc_sleep_ms(2); /* the one short real sleep: clc_sleep_ms itself */
    int64_t m2 = clc_mono_ms();
    assert_true(m2 - m1 >= 2);
    assert_true(m2 - m1 < 5000);
}

static void test_from_utc(void **state)
{
    (void)state;
    assert_int_equal(clc_time_from_utc(1970, 1, 1, 0, 0, 0), 0);
    assert_int_equal(clc_time_from_utc(2026, 11, 22, 13, 50, 25), 1795355425);
    assert_int_equal(clc_time_from_utc(1994, 11, 6, 8, 49, 37), 784111777);
    assert_int_equal(clc_time_from_utc(2000, 2, 29, 0, 0, 0), 951782400);
    assert_int_equal(clc_time_from_utc(2024, 2, 29, 12, 0, 0), 1709208000);
    assert_int_equal(clc_time_from_utc(2100, 3, 1, 0, 0, 0), 4107542400LL);
    assert_int_equal(clc_time_from_utc(1969, 12, 31, 23, 59, 59), -1);
    assert_int_equal(clc_time_from_utc(1900, 1, 1, 0, 0, 0), -2208988800LL);
    assert_int_equal(clc_time_from_utc(1, 1, 1, 0, 0, 0), -62135596800LL);
    assert_int_equal(clc_time_from_utc(9999, 12, 31, 23, 59, 59), 253402300799LL);
    /* Months past December carry into the year. */
    assert_int_equal(clc_time_from_utc(2025, 23, 22, 13, 50, 25), 1795355425);
    assert_int_equal(clc_time_from_utc(2027, -1, 22, 13, 50, 25), 1795355425);
}

static void test_format(void **state)
{
    (void)state;
    char s[CLC_TIME_STR_MAX];
    assert_int_equal(clc_time_fmt_rfc1123(1795355425, s), CLC_OK);
    assert_string_equal(s, "Sun, 22 Nov 2026 13:50:25 GMT");
    assert_int_equal(clc_time_fmt_iso8601(1795355425, s), CLC_OK);
    assert_string_equal(s, "2026-11-22T13:50:25Z");
    assert_int_equal(clc_time_fmt_rfc1123(0, s), CLC_OK);
    assert_string_equal(s, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_int_equal(clc_time_fmt_rfc1123(-1, s), CLC_OK);
    assert_string_equal(s, "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_int_equal(clc_time_fmt_iso8601(951782400, s), CLC_OK);
    assert_string_equal(s, "2000-02-29T00:00:00Z");
    assert_int_equal(clc_time_fmt_rfc1123(-62135596800LL, s), CLC_OK);
    assert_string_equal(s, "Mon, 01 Jan 0001 00:00:00 GMT");
    assert_int_equal(clc_time_fmt_iso8601(253402300799LL, s), CLC_OK);
    assert_string_equal(s, "9999-12-31T23:59:59Z");
    /* Years that do not fit four digits are refused, not mangled. */
    assert_int_equal(clc_time_fmt_iso8601(253402300800LL, s), CLC_ERR_INVALID);
    assert_string_equal(s, "");
    assert_int_equal(clc_time_fmt_rfc1123(INT64_MAX, s), CLC_ERR_INVALID);
    assert_int_equal(clc_time_fmt_rfc1123(INT64_MIN, s), CLC_ERR_INVALID);
}

static void test_round_trips(void **state)
{
    (void)state;
    /* A spread of instants from 1601 to 2400, including leap days. */
    for (int64_t t = -11644473600LL; t < 13569465600LL; t += 86400LL * 37 + 3671) {
        char s[CLC_TIME_STR_MAX];
        int64_t back = 0;
        assert_int_equal(clc_time_fmt_rfc1123(t, s), CLC_OK);
        assert_int_equal(clc_time_parse_rfc1123(s, &back), CLC_OK);
        assert_int_equal(back, t);
        assert_int_equal(clc_time_fmt_iso8601(t, s), CLC_OK);
        assert_int_equal(clc_time_parse_iso8601(s, &back), CLC_OK);
        assert_int_equal(back, t);
    }
}

static void test_http_date_forms(void **state)
{
    (void)state;
    int64_t t = 0;
    /* RFC 9110 §5.6.7's example in its three forms. */
    assert_int_equal(clc_time_parse_rfc1123("Sun, 06 Nov 1994 08:49:37 GMT", &t), CLC_OK);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(clc_time_parse_rfc1123("Sunday, 06-Nov-94 08:49:37 GMT", &t), CLC_OK);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(clc_time_parse_rfc1123("Sun Nov  6 08:49:37 1994", &t), CLC_OK);
    assert_int_equal(t, 784111777);
    t = 0;
    assert_int_equal(clc_time_parse_rfc1123("Sun Nov 06 08:49:37 1994", &t), CLC_OK);
    assert_int_equal(t, 784111777);
    /* Two-digit years: one not more than 50 years ahead is in this century. */
    assert_int_equal(clc_time_parse_rfc1123("Sunday, 22-Nov-26 13:50:25 GMT", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_rfc1123("Sun Nov 22 13:50:25 2026", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    /* A leap second reads as the next second. */
    assert_int_equal(clc_time_parse_rfc1123("Sat, 31 Dec 2016 23:59:60 GMT", &t), CLC_OK);
    assert_int_equal(t, clc_time_from_utc(2017, 1, 1, 0, 0, 0));
}

static void expect_bad_http(const char *s)
{
    int64_t t = 123;
    if (clc_time_parse_rfc1123(s, &t) != CLC_ERR_PARSE)
        fail_msg("accepted HTTP date \"%s\"", s);
    assert_int_equal(t, 0);
}

static void test_http_date_rejections(void **state)
{
    (void)state;
    expect_bad_http("");
    expect_bad_http("garbage");
    expect_bad_http("Sun, 06 Nov 1994 08:49:37");      /* no zone */
    expect_bad_http("Sun, 06 Nov 1994 08:49:37 UTC");  /* only GMT */
    expect_bad_http("Sun, 06 Nov 1994 08:49:37 GMT "); /* trailing */
    expect_bad_http(" Sun, 06 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 6 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 06 nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 06 Foo 1994 08:49:37 GMT");
    expect_bad_http("Xyz, 06 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 32 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 31 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 29 Feb 1900 08:49:37 GMT");
    expect_bad_http("Sun, 00 Nov 1994 08:49:37 GMT");
    expect_bad_http("Sun, 06 Nov 1994 24:00:00 GMT");
    expect_bad_http("Sun, 06 Nov 1994 08:60:00 GMT");
    expect_bad_http("Sun, 06 Nov 1994 08:49:61 GMT");
    expect_bad_http("Sun, 06 Nov 94 08:49:37 GMT");
    expect_bad_http("Sun, 06 Nov 1994 8:49:37 GMT");
    expect_bad_http("Sun, 06 Nov 1994 08:49 GMT");
    expect_bad_http("Sunday, 06-Nov-1994 08:49:37 GMT");
    expect_bad_http("Sun, 06-Nov-94 08:49:37 GMT");
    expect_bad_http("Sun Nov  6 08:49:37 94");
    expect_bad_http("Sun Nov 6 08:49:37 1994");
    expect_bad_http("Sun Nov  6 08:49:37 1994 GMT");
    expect_bad_http("1795355425");
    int64_t t = 5;
    assert_int_equal(clc_time_parse_rfc1123(NULL, &t), CLC_ERR_PARSE);
}

static void test_iso8601(void **state)
{
    (void)state;
    int64_t t = 0;
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T13:50:25Z", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    t = 0;
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T13:50:25.123456Z", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    t = 0;
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T13:50:25.9999999Z", &t), CLC_OK);
    assert_int_equal(t, 1795355425); /* truncated, not rounded */
    /* Local time with its offset: 14:50:25+01:00 is 13:50:25Z. */
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T14:50:25+01:00", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T08:20:25-05:30", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T13:50:25+00:00", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_iso8601("2026-11-22T13:50:25.5-00:00", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    /* Offsets can cross the date line. */
    assert_int_equal(clc_time_parse_iso8601("2026-11-23T00:50:25+11:00", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_iso8601("2026-11-21T23:50:25-14:00", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    /* RFC 3339 allows lower-case t and z. */
    assert_int_equal(clc_time_parse_iso8601("2026-11-22t13:50:25z", &t), CLC_OK);
    assert_int_equal(t, 1795355425);
    assert_int_equal(clc_time_parse_iso8601("2024-02-29T00:00:00Z", &t), CLC_OK);
    assert_int_equal(t, clc_time_from_utc(2024, 2, 29, 0, 0, 0));
}

static void expect_bad_iso(const char *s)
{
    int64_t t = 123;
    if (clc_time_parse_iso8601(s, &t) != CLC_ERR_PARSE)
        fail_msg("accepted ISO 8601 \"%s\"", s);
    assert_int_equal(t, 0);
}

static void test_iso8601_rejections(void **state)
{
    (void)state;
    expect_bad_iso("");
    expect_bad_iso("garbage");
    expect_bad_iso("2026-11-22");
    expect_bad_iso("2026-11-22T13:50:25");  /* no offset */
    expect_bad_iso("2026-11-22 13:50:25Z"); /* space separator */
    expect_bad_iso("2026-13-22T13:50:25Z"); /* month 13 */
    expect_bad_iso("2026-00-22T13:50:25Z");
    expect_bad_iso("2026-11-32T13:50:25Z"); /* day 32 */
    expect_bad_iso("2026-11-31T13:50:25Z"); /* November has 30 */
    expect_bad_iso("2025-02-29T13:50:25Z"); /* not a leap year */
    expect_bad_iso("2026-11-00T13:50:25Z");
    expect_bad_iso("2026-11-22T24:00:00Z"); /* hour 24 */
    expect_bad_iso("2026-11-22T13:60:25Z");
    expect_bad_iso("2026-11-22T13:50:61Z");
    expect_bad_iso("2026-11-22T13:50:25.Z");              /* empty fraction */
    expect_bad_iso("2026-11-22T13:50:25.1234567890123Z"); /* runaway fraction */
    expect_bad_iso("2026-11-22T13:50:25+1:00");
    expect_bad_iso("2026-11-22T13:50:25+0100");
    expect_bad_iso("2026-11-22T13:50:25+24:00");
    expect_bad_iso("2026-11-22T13:50:25+01:60");
    expect_bad_iso("2026-11-22T13:50:25ZZ");
    expect_bad_iso("2026-11-22T13:50:25Z ");
    expect_bad_iso("+2026-11-22T13:50:25Z");
    expect_bad_iso("26-11-22T13:50:25Z");
    expect_bad_iso("2026-1-22T13:50:25Z");
    expect_bad_iso("2026-11-22T13:5:25Z");
    expect_bad_iso("2026/11/22T13:50:25Z");
    expect_bad_iso("Sun, 22 Nov 2026 13:50:25 GMT");
    int64_t t = 5;
    assert_int_equal(clc_time_parse_iso8601(NULL, &t), CLC_ERR_PARSE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clocks),          cmocka_unit_test(test_from_utc),
        cmocka_unit_test(test_format),          cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_http_date_forms), cmocka_unit_test(test_http_date_rejections),
        cmocka_unit_test(test_iso8601),         cmocka_unit_test(test_iso8601_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
