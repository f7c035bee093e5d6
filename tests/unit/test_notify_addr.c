/* Recipient parsing and address checks of the e-mail notifier: separators,
 * whitespace, CR/LF injection, invalid addresses, duplicates, empty tags,
 * the recipient limit, and the From parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "pipeline/notify_int.h"

static void expect_list(const char *tag, const char *const *want, size_t nwant, size_t want_bad)
{
    char **got = NULL;
    size_t n = 99, bad = 99;

    assert_int_equal(clc_notify_parse_recipients(tag, &got, &n, &bad), CLC_OK);
    if (n != nwant || bad != want_bad)
        fail_msg("tag '%s': %zu valid, %zu rejected; wanted %zu, %zu", tag ? tag : "(null)", n, bad,
                 nwant, want_bad);
    for (size_t i = 0; i < nwant; i++)
        assert_string_equal(got[i], want[i]);
    if (nwant == 0)
        assert_null(got);
    clc_notify_recipients_free(got, n);
}

static void test_separators_and_whitespace(void **state)
{
    const char *three[] = {"a@example.com", "b@example.org", "c@example.net"};

    (void)state;
    expect_list("a@example.com,b@example.org;c@example.net", three, 3, 0);
    expect_list("  a@example.com ;\tb@example.org ,  c@example.net\t", three, 3, 0);
    expect_list("a@example.com;;b@example.org,,;c@example.net;", three, 3, 0);
    expect_list("a@example.com", three, 1, 0);
}

static void test_empty(void **state)
{
    (void)state;
    expect_list(NULL, NULL, 0, 0);
    expect_list("", NULL, 0, 0);
    expect_list(" ,; \t ;", NULL, 0, 0);
}

static void test_duplicates(void **state)
{
    const char *two[] = {"a@example.com", "b@example.org"};

    (void)state;
    expect_list("a@example.com; b@example.org; A@Example.COM; a@example.com", two, 2, 0);
}

static void test_injection_refused_rest_kept(void **state)
{
    const char *two[] = {"ok@example.com", "other@example.org"};
    const char *one[] = {"ok@example.com"};

    (void)state;
    expect_list("ok@example.com, bad@example.com\r\nBcc: evil@example.net; other@example.org", two,
                2, 1);
    /* A lone LF, a CR, a NUL-free control character, DEL. */
    expect_list("ok@example.com;x@example.com\nBcc: y@example.com", one, 1, 1);
    expect_list("ok@example.com;x@example.com\r", one, 1, 1);
    expect_list("ok@example.com;x\x01@example.com", one, 1, 1);
    expect_list("ok@example.com;x\x7f@example.com", one, 1, 1);
    /* A display name or angle brackets are not addresses here. */
    expect_list("ok@example.com;Evil <e@example.com>", one, 1, 1);
}

static void test_invalid_addresses(void **state)
{
    const char *bad[] = {
        "plainaddress",
        "@example.com",
        "a@",
        "a@@example.com",
        "a@b@example.com",
        ".a@example.com",
        "a.@example.com",
        "a..b@example.com",
        "a b@example.com",
        "a@example",
        "a@-example.com",
        "a@example-.com",
        "a@exa_mple.com",
        "a@example..com",
        "a@.example.com",
        "\"quoted\"@example.com",
        "a@[127.0.0.1]",
        "caf\xc3\xa9@example.com",
        "a(comment)@example.com",
    };
    const char *good[] = {
        "a@example.com",
        "first.last+tag@sub.example.co.uk",
        "x!#$%&'*+/=?^_`{|}~-@example.com",
        "a@xn--bcher-kva.example",
        "1@2.example",
    };
    char longlocal[80], longaddr[300], longlabel[90];

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (clc_notify_addr_problem(bad[i], strlen(bad[i])) == NULL)
            fail_msg("'%s' accepted", bad[i]);
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (clc_notify_addr_problem(good[i], strlen(good[i])) != NULL)
            fail_msg("'%s' refused: %s", good[i],
                     clc_notify_addr_problem(good[i], strlen(good[i])));
    memset(longlocal, 'a', 65);
    snprintf(longlocal + 65, sizeof longlocal - 65, "@example.com");
    assert_non_null(clc_notify_addr_problem(longlocal, strlen(longlocal)));
    memset(longlabel, 'b', 64);
    snprintf(longlabel + 64, sizeof longlabel - 64, ".com");
    snprintf(longaddr, sizeof longaddr, "a@%s", longlabel);
    assert_non_null(clc_notify_addr_problem(longaddr, strlen(longaddr)));
    /* 255 bytes: each label fine, the whole too long. */
    snprintf(longaddr, sizeof longaddr, "a@");
    while (strlen(longaddr) < 250)
        strcat(longaddr, "abcdefghi.");
    strcat(longaddr, "com");
    assert_true(strlen(longaddr) > 254);
    assert_non_null(clc_notify_addr_problem(longaddr, strlen(longaddr)));
    assert_string_equal(clc_notify_addr_problem("a@b.com\r\n", 9), "contains CR or LF");
    /* The tag keeps the good ones only. */
    {
        const char *one[] = {"good@example.com"};
        expect_list("plainaddress; good@example.com, a@example", one, 1, 2);
    }
}

static void test_recipient_limit(void **state)
{
    struct clc_buf tag;
    char **got = NULL;
    size_t n = 0, bad = 0;

    (void)state;
    clc_buf_init(&tag, 64 * 1024);
    for (int i = 0; i < CLC_NOTIFY_MAX_RCPT + 3; i++)
        assert_int_equal(clc_buf_appendf(&tag, "user%d@example.com;", i), CLC_OK);
    assert_int_equal(clc_notify_parse_recipients(clc_buf_str(&tag), &got, &n, &bad), CLC_OK);
    assert_int_equal(n, CLC_NOTIFY_MAX_RCPT);
    assert_int_equal(bad, 3);
    assert_string_equal(got[99], "user99@example.com");
    clc_notify_recipients_free(got, n);
    clc_buf_cleanup(&tag);
}

static void test_from_parser(void **state)
{
    char *d = NULL, *a = NULL;
    struct clc_errinfo ei = {0};
    const char *bad[] = {
        "",
        "certlc",
        "certlc <>",
        "certlc <a@example.com",
        "certlc <a@example.com> x",
        "cert\r\nBcc: x@example.com <a@example.com>",
        "certlc <a@example.com\r\n>",
        "a\"b <a@example.com>",
        "x <y> <a@example.com>",
    };

    (void)state;
    assert_int_equal(clc_notify_parse_from("certlc <certlc@example.com>", &d, &a, &ei), CLC_OK);
    assert_string_equal(d, "certlc");
    assert_string_equal(a, "certlc@example.com");
    free(d);
    free(a);
    assert_int_equal(clc_notify_parse_from("  \"Cert LC\"   < x@example.com > ", &d, &a, &ei),
                     CLC_OK);
    assert_string_equal(d, "Cert LC");
    assert_string_equal(a, "x@example.com");
    free(d);
    free(a);
    assert_int_equal(clc_notify_parse_from("x@example.com", &d, &a, &ei), CLC_OK);
    assert_string_equal(d, "");
    assert_string_equal(a, "x@example.com");
    free(d);
    free(a);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (clc_notify_parse_from(bad[i], &d, &a, &ei) != CLC_ERR_INVALID)
            fail_msg("From '%s' accepted", bad[i]);
        assert_null(d);
        assert_null(a);
    }
    assert_int_equal(clc_notify_parse_from(NULL, &d, &a, &ei), CLC_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_separators_and_whitespace),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_injection_refused_rest_kept),
        cmocka_unit_test(test_invalid_addresses),
        cmocka_unit_test(test_recipient_limit),
        cmocka_unit_test(test_from_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
