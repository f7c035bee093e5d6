/* Tests for core/err: names, HTTP mapping, message formatting and the
 * bounded prefixing done by clc_err_wrap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/err.h"

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(clc_err_name(CLC_OK), "ok");
    assert_string_equal(clc_err_name(CLC_ERR_NOT_FOUND), "not_found");
    assert_string_equal(clc_err_name(CLC_ERR_UNAVAILABLE), "unavailable");
    assert_string_equal(clc_err_name(CLC_ERR_INTERNAL), "internal");
    /* Every value has its own distinct name. */
    for (int i = 0; i < CLC_ERR__COUNT; i++) {
        const char *a = clc_err_name((enum clc_err)i);
        assert_non_null(a);
        assert_string_not_equal(a, "unknown");
        for (int j = 0; j < i; j++)
            assert_string_not_equal(a, clc_err_name((enum clc_err)j));
    }
    assert_string_equal(clc_err_name(CLC_ERR__COUNT), "unknown");
    assert_string_equal(clc_err_name((enum clc_err) - 1), "unknown");
}

static void test_from_http(void **state)
{
    (void)state;
    assert_int_equal(clc_err_from_http(200), CLC_OK);
    assert_int_equal(clc_err_from_http(202), CLC_OK);
    assert_int_equal(clc_err_from_http(204), CLC_OK);
    assert_int_equal(clc_err_from_http(400), CLC_ERR_INVALID);
    assert_int_equal(clc_err_from_http(401), CLC_ERR_AUTH);
    assert_int_equal(clc_err_from_http(403), CLC_ERR_FORBIDDEN);
    assert_int_equal(clc_err_from_http(404), CLC_ERR_NOT_FOUND);
    assert_int_equal(clc_err_from_http(408), CLC_ERR_TIMEOUT);
    assert_int_equal(clc_err_from_http(409), CLC_ERR_CONFLICT);
    assert_int_equal(clc_err_from_http(413), CLC_ERR_LIMIT);
    assert_int_equal(clc_err_from_http(429), CLC_ERR_THROTTLED);
    assert_int_equal(clc_err_from_http(500), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_err_from_http(502), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_err_from_http(503), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_err_from_http(599), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_err_from_http(405), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(412), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(301), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(304), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(100), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(0), CLC_ERR_HTTP);
    assert_int_equal(clc_err_from_http(600), CLC_ERR_HTTP);
}

static void test_errf(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    assert_string_equal(ei.msg, "");
    assert_int_equal(clc_errf(&ei, CLC_ERR_PARSE, "field '%s': missing", "kid"), CLC_ERR_PARSE);
    assert_string_equal(ei.msg, "field 'kid': missing");
    /* A later message replaces the earlier one. */
    clc_errf(&ei, CLC_ERR_IO, "second %d", 2);
    assert_string_equal(ei.msg, "second 2");
    /* NULL detail is allowed and still returns the code. */
    assert_int_equal(clc_errf(NULL, CLC_ERR_NET, "x"), CLC_ERR_NET);
    assert_int_equal(clc_err_wrap(NULL, CLC_ERR_NET, "x"), CLC_ERR_NET);
    /* Newlines from a peer's text do not split the message. */
    clc_errf(&ei, CLC_ERR_HTTP, "peer said: %s", "bad\r\nX-Injected: 1");
    assert_null(strchr(ei.msg, '\n'));
    assert_null(strchr(ei.msg, '\r'));
    assert_string_equal(ei.msg, "peer said: bad  X-Injected: 1");
}

static void test_errf_truncates(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    clc_errinfo_clear(&ei);
    clc_errf(&ei, CLC_ERR_LIMIT, "%s", big);
    assert_int_equal(strlen(ei.msg), CLC_ERRINFO_MSG_MAX - 1);
}

static void test_wrap(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    clc_errf(&ei, CLC_ERR_PARSE, "bad byte at 3");
    assert_int_equal(clc_err_wrap(&ei, CLC_ERR_CONFIG, "reading %s", "config"), CLC_ERR_CONFIG);
    assert_string_equal(ei.msg, "reading config: bad byte at 3");
    clc_err_wrap(&ei, CLC_ERR_CONFIG, "startup");
    assert_string_equal(ei.msg, "startup: reading config: bad byte at 3");

    /* Wrapping an empty message gives the prefix alone. */
    clc_errinfo_clear(&ei);
    clc_err_wrap(&ei, CLC_ERR_IO, "context");
    assert_string_equal(ei.msg, "context");
}

static void test_wrap_bounded(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    char big[CLC_ERRINFO_MSG_MAX * 2];
    memset(big, 'p', sizeof big - 1);
    big[sizeof big - 1] = '\0';

    /* Old message full, short prefix: the tail of the old one is cut. */
    clc_errinfo_clear(&ei);
    memset(ei.msg, 'o', sizeof ei.msg - 1);
    clc_err_wrap(&ei, CLC_ERR_IO, "ctx");
    assert_int_equal(strlen(ei.msg), CLC_ERRINFO_MSG_MAX - 1);
    assert_memory_equal(ei.msg, "ctx: ooo", 8);

    /* Prefix longer than the buffer: only prefix, still terminated. */
    clc_errf(&ei, CLC_ERR_IO, "old");
    clc_err_wrap(&ei, CLC_ERR_IO, "%s", big);
    assert_int_equal(strlen(ei.msg), CLC_ERRINFO_MSG_MAX - 1);
    assert_int_equal(ei.msg[0], 'p');
    assert_int_equal(ei.msg[CLC_ERRINFO_MSG_MAX - 2], 'p');

    /* Not terminated old content (caller scribbled) is still safe. */
    memset(ei.msg, 'z', sizeof ei.msg);
    clc_err_wrap(&ei, CLC_ERR_IO, "c");
    assert_int_equal(strlen(ei.msg), CLC_ERRINFO_MSG_MAX - 1);
    assert_memory_equal(ei.msg, "c: zz", 5);
}

static void test_set_http(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    clc_errinfo_set_http(&ei, 403, "Forbidden");
    assert_int_equal(ei.http_status, 403);
    assert_string_equal(ei.code, "Forbidden");
    clc_errinfo_set_http(&ei, 500, NULL);
    assert_int_equal(ei.http_status, 500);
    assert_string_equal(ei.code, "");
    char longcode[300];
    memset(longcode, 'C', sizeof longcode - 1);
    longcode[sizeof longcode - 1] = '\0';
    clc_errinfo_set_http(&ei, 400, longcode);
    assert_int_equal(strlen(ei.code), sizeof ei.code - 1);
    clc_errinfo_set_http(NULL, 400, "x");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),    cmocka_unit_test(test_from_http),
        cmocka_unit_test(test_errf),     cmocka_unit_test(test_errf_truncates),
        cmocka_unit_test(test_wrap),     cmocka_unit_test(test_wrap_bounded),
        cmocka_unit_test(test_set_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
