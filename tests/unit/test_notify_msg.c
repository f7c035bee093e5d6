/* Message composition of the e-mail notifier: the headers (each once, CRLF,
 * nothing a value can add), both MIME parts with every fact of the renewal,
 * HTML escaping, encoded subjects, quoted-printable line rules, the failure
 * notice, and the client's refusal of bad options. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/b64.h"
#include "core/buf.h"
#include "pipeline/notify_int.h"

static const char *const to2[] = {"ops@example.com", "pki@example.org"};

static const struct clc_notify_renewal ok_renewal = {
    .success = 1,
    .vault = "vault1",
    .certificate = "web-frontend",
    .old_version = "0a1b2c",
    .new_version = "3d4e5f",
    .old_thumbprint = "1111111111111111111111111111111111111111",
    .new_thumbprint = "2222222222222222222222222222222222222222",
    .serial = "5A0000001F",
    .not_after = 1830297600,
    .ca = "enterprise-ca",
    .template_name = "WebServer",
    .request_id = "42",
};

static void compose(const struct clc_notify_renewal *r, const char *display, struct clc_buf *out)
{
    struct clc_notify_compose_in in = {
        .from_display = display,
        .from_addr = "certlc@example.com",
        .to = to2,
        .nto = 2,
        .date = 1767225600, /* Thu, 01 Jan 2026 00:00:00 */
        .boundary = "B",
        .msgid_left = "m1",
    };
    struct clc_errinfo ei = {0};

    clc_buf_init(out, CLC_NOTIFY_MSG_MAX);
    if (clc_notify_compose(&in, r, out, &ei) != CLC_OK)
        fail_msg("compose: %s", ei.msg);
}

/* The header block (up to the blank line), as a copy. */
static char *headers_of(const char *msg)
{
    const char *end = strstr(msg, "\r\n\r\n");

    assert_non_null(end);
    return strndup(msg, (size_t)(end - msg) + 2);
}

/* RFC 5322 unfolding, in place: CR LF before a blank is removed. */
static void unfold(char *h)
{
    char *w = h;

    for (const char *r = h; *r != '\0'; r++) {
        if (r[0] == '\r' && r[1] == '\n' && (r[2] == ' ' || r[2] == '\t')) {
            r++;
            continue;
        }
        *w++ = *r;
    }
    *w = '\0';
}

/* Number of header fields with this name (at a line start). */
static int header_count(const char *hdrs, const char *name)
{
    size_t nl = strlen(name);
    int n = 0;

    for (const char *p = hdrs; p != NULL && *p != '\0';) {
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
            n++;
        p = strstr(p, "\r\n");
        if (p != NULL)
            p += 2;
    }
    return n;
}

static int hexv(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes the quoted-printable part whose Content-Type line starts type. */
static char *part(const char *msg, const char *type)
{
    char marker[128];
    const char *p, *end;
    struct clc_buf out;

    snprintf(marker, sizeof marker,
             "Content-Type: %s; charset=utf-8\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
             type);
    p = strstr(msg, marker);
    assert_non_null(p);
    p += strlen(marker);
    end = strstr(p, "\r\n--=_certlc_B");
    assert_non_null(end);
    clc_buf_init(&out, 1024 * 1024);
    while (p < end) {
        if (p[0] == '=' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
        } else if (p[0] == '=') {
            assert_true(hexv(p[1]) >= 0 && hexv(p[2]) >= 0);
            clc_buf_append_byte(&out, (char)(hexv(p[1]) * 16 + hexv(p[2])));
            p += 3;
        } else if (p[0] == '\r' && p[1] == '\n') {
            clc_buf_append_byte(&out, '\n');
            p += 2;
        } else {
            clc_buf_append_byte(&out, *p++);
        }
    }
    return clc_buf_take(&out, NULL);
}

static void assert_wire_format(const char *msg)
{
    /* CRLF only, and every line within RFC 5322's 78 recommended. */
    size_t col = 0;

    for (const char *p = msg; *p != '\0'; p++) {
        if (*p == '\n') {
            assert_true(p > msg && p[-1] == '\r');
            col = 0;
            continue;
        }
        if (*p == '\r')
            assert_true(p[1] == '\n');
        else if (++col > 78)
            fail_msg("line over 78 characters near '%.40s'", p - 40);
        assert_true((unsigned char)*p < 0x80); /* 7-bit on the wire */
    }
}

static void test_success_headers(void **state)
{
    struct clc_buf m;
    char *h;

    (void)state;
    compose(&ok_renewal, "certlc", &m);
    assert_wire_format(clc_buf_str(&m));
    h = headers_of(clc_buf_str(&m));
    assert_non_null(strstr(h, "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\n"));
    assert_non_null(strstr(h, "From: \"certlc\" <certlc@example.com>\r\n"));
    assert_non_null(strstr(h, "To: ops@example.com,\r\n pki@example.org\r\n"));
    assert_non_null(strstr(h, "Subject: Certificate web-frontend renewed (Key Vault vault1)\r\n"));
    assert_non_null(strstr(h, "Message-ID: <m1@example.com>\r\n"));
    assert_non_null(strstr(h, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(h, "Content-Type: multipart/alternative; boundary=\"=_certlc_B\"\r\n"));
    const char *names[] = {"Date",       "From",         "To",           "Subject",
                           "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(header_count(h, names[i]), 1);
    assert_non_null(strstr(clc_buf_str(&m), "\r\n--=_certlc_B--\r\n"));
    free(h);
    clc_buf_cleanup(&m);
}

static void test_success_parts(void **state)
{
    struct clc_buf m;
    char *text, *html;
    const char *facts[] = {"web-frontend",
                           "vault1",
                           "3d4e5f",
                           "0a1b2c",
                           "1111111111111111111111111111111111111111",
                           "2222222222222222222222222222222222222222",
                           "5A0000001F",
                           "2028-01-01 00:00:00 UTC",
                           "enterprise-ca",
                           "WebServer",
                           "42"};

    (void)state;
    compose(&ok_renewal, "", &m);
    assert_non_null(strstr(clc_buf_str(&m), "From: certlc@example.com\r\n"));
    text = part(clc_buf_str(&m), "text/plain");
    html = part(clc_buf_str(&m), "text/html");
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
        if (!strstr(text, facts[i]) || !strstr(html, facts[i]))
            fail_msg("'%s' missing", facts[i]);
    }
    assert_non_null(strstr(text, "New thumbprint      2222222222222222222222222222222222222222\n"));
    assert_non_null(strstr(text, "Serial number       5A0000001F\n"));
    assert_non_null(strstr(html, "<th style=\"text-align:left;padding:2px 16px 2px 0\">CA</th>"));
    assert_null(strstr(text, "What failed"));
    free(text);
    free(html);
    clc_buf_cleanup(&m);
}

static void test_escaping_and_injection(void **state)
{
    struct clc_notify_renewal r = ok_renewal;
    struct clc_buf m;
    char *h, *text, *html;

    (void)state;
    r.certificate = "a<b>&\"c'\r\nBcc: spy@example.net\r\n\r\nbody";
    r.template_name = "<img src=x onerror=alert(1)>";
    compose(&r, "certlc", &m);
    assert_wire_format(clc_buf_str(&m));
    h = headers_of(clc_buf_str(&m));
    assert_int_equal(header_count(h, "Bcc"), 0);
    assert_null(strstr(h, "\nBcc"));
    /* The CR/LF became spaces: still one Subject line. */
    unfold(h);
    assert_non_null(strstr(h, "Subject: Certificate a<b>&\"c'  Bcc: spy@example.net    body "
                              "renewed (Key Vault vault1)\r\n"));
    assert_int_equal(header_count(h, "Subject"), 1);
    text = part(clc_buf_str(&m), "text/plain");
    html = part(clc_buf_str(&m), "text/html");
    assert_null(strstr(text, "\r"));
    assert_null(strstr(html, "<img"));
    assert_non_null(strstr(html, "&lt;img src=x onerror=alert(1)&gt;"));
    assert_non_null(strstr(html, "a&lt;b&gt;&amp;&quot;c&#39;  Bcc:"));
    assert_non_null(strstr(html, "<title>Certificate a&lt;b&gt;"));
    free(h);
    free(text);
    free(html);
    clc_buf_cleanup(&m);
}

static void test_encoded_subject_and_from(void **state)
{
    struct clc_notify_renewal r = ok_renewal;
    struct clc_buf m, dec;
    const char *p;
    char *h;

    (void)state;
    r.certificate = "z\xc3\xbcrich-\xe6\x97\xa5\xe6\x9c\xac-"
                    "a-rather-long-certificate-name-that-needs-several-encoded-words";
    compose(&r, "Z\xc3\xbcrich PKI", &m);
    assert_wire_format(clc_buf_str(&m));
    h = headers_of(clc_buf_str(&m));
    assert_non_null(strstr(h, "From: =?UTF-8?B?WsO8cmljaCBQS0k=?= <certlc@example.com>\r\n"));
    /* Decode the folded encoded-words back and compare. */
    clc_buf_init(&dec, 4096);
    p = strstr(h, "Subject: ");
    assert_non_null(p);
    p += 9;
    for (;;) {
        const char *s = strstr(p, "=?UTF-8?B?"), *e;
        unsigned char *bin = NULL;
        size_t n = 0;
        if (s == NULL || s > strstr(p, "\r\n") + 3)
            break;
        s += 10;
        e = strstr(s, "?=");
        assert_true(e - s <= 60); /* at most 75 characters per word */
        assert_int_equal(clc_b64_decode(s, (size_t)(e - s), &bin, &n), CLC_OK);
        clc_buf_append(&dec, bin, n);
        free(bin);
        p = e + 2;
        if (strncmp(p, "\r\n ", 3) != 0)
            break;
        p += 3;
    }
    assert_string_equal(clc_buf_str(&dec),
                        "Certificate z\xc3\xbcrich-\xe6\x97\xa5\xe6\x9c\xac-a-rather-long-"
                        "certificate-name-that-needs-several-encoded-words renewed (Key Vault "
                        "vault1)");
    clc_buf_cleanup(&dec);
    free(h);
    clc_buf_cleanup(&m);
}

static void test_header_text(void **state)
{
    struct clc_buf b;

    (void)state;
    clc_buf_init(&b, 4096);
    assert_int_equal(clc_notify_header_text(&b, "Subject", "plain text"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "Subject: plain text\r\n");
    clc_buf_reset(&b);
    /* Looks like an encoded-word: encoded, so readers see it verbatim. */
    assert_int_equal(clc_notify_header_text(&b, "Subject", "=?x?"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "Subject: =?UTF-8?B?PT94Pw==?=\r\n");
    clc_buf_reset(&b);
    /* Invalid UTF-8 becomes '?', control characters spaces. */
    assert_int_equal(clc_notify_header_text(&b, "Subject", "a\xff\tb\x1b"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "Subject: a? b \r\n");
    clc_buf_reset(&b);
    /* Folded before a blank; unfolding gives the value back. */
    assert_int_equal(clc_notify_header_text(&b, "Subject",
                                            "word word word word word word word word word word "
                                            "word word word word word word"),
                     CLC_OK);
    assert_string_equal(clc_buf_str(&b), "Subject: word word word word word word word word word "
                                         "word word word word word\r\n word word\r\n");
    clc_buf_cleanup(&b);
}

static void test_quoted_printable(void **state)
{
    struct clc_buf b;
    char longline[300];
    const char *p;

    (void)state;
    clc_buf_init(&b, 8192);
    assert_int_equal(clc_notify_qp(&b, "a=b \nend\t\n", 10), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "a=3Db=20\r\nend=09\r\n");
    clc_buf_reset(&b);
    assert_int_equal(clc_notify_qp(&b, "caf\xc3\xa9", 5), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "caf=C3=A9\r\n");
    clc_buf_reset(&b);
    memset(longline, 'x', 250);
    memcpy(longline + 250, "==========", 10);
    longline[260] = '\0';
    assert_int_equal(clc_notify_qp(&b, longline, 260), CLC_OK);
    for (p = clc_buf_str(&b); *p != '\0';) {
        const char *e = strstr(p, "\r\n");
        assert_non_null(e);
        assert_true(e - p <= 76);
        /* Every '=' starts a whole =XX escape or is the soft break at the
         * end: a break never splits an escape. */
        for (const char *q = p; q < e; q++)
            if (*q == '=' && q + 1 != e) {
                assert_true(q + 2 < e && hexv(q[1]) >= 0 && hexv(q[2]) >= 0);
                q += 2;
            }
        p = e + 2;
    }
    clc_buf_cleanup(&b);
}

static void test_failure_notice(void **state)
{
    struct clc_notify_renewal r = {
        .success = 0,
        .vault = "vault1",
        .certificate = "api",
        .old_version = "0a1b2c",
        .old_thumbprint = "1111111111111111111111111111111111111111",
        .request_id = "77",
        .error = "CA denied request 77",
        .attempted = "submitted the CSR <twice>",
    };
    struct clc_buf m;
    char *text, *html;

    (void)state;
    compose(&r, "certlc", &m);
    assert_non_null(
        strstr(clc_buf_str(&m), "Subject: Renewal of api failed (Key Vault vault1)\r\n"));
    text = part(clc_buf_str(&m), "text/plain");
    html = part(clc_buf_str(&m), "text/html");
    assert_non_null(strstr(text, "What failed:\n  CA denied request 77\n"));
    assert_non_null(strstr(text, "What was tried:\n  submitted the CSR <twice>\n"));
    /* No next step given: the mail says so instead of leaving it out. */
    assert_non_null(strstr(text, "What happens next:\n  No further attempt is scheduled"));
    assert_non_null(strstr(text, "Current thumbprint  1111111111111111111111111111111111111111"));
    assert_null(strstr(text, "New version"));
    assert_non_null(strstr(html, "<p>submitted the CSR &lt;twice&gt;</p>"));
    free(text);
    free(html);
    clc_buf_cleanup(&m);
}

static void test_client_options(void **state)
{
    struct clc_notify *n = NULL;
    struct clc_errinfo ei = {0};
    struct clc_notify_opts o = {.url = "smtp://mail.example.com:587", .from = "a@example.com"};
    const char *to[] = {"x@example.com"};
    struct clc_notify_renewal r = ok_renewal;

    (void)state;
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_OK);
    assert_int_equal(clc_notify_set_auth_mechanism(n, "cram-md5", &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_notify_set_auth_mechanism(n, "LOGIN", &ei), CLC_OK);
    /* No valid recipient: refused before any connection. */
    to[0] = "x@example.com\r\nBcc: y@example.com";
    assert_int_equal(clc_notify_send_renewal(n, to, 1, &r, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_notify_send_renewal(n, to, 0, &r, &ei), CLC_ERR_INVALID);
    clc_notify_free(n);
    n = NULL;
    o.url = "http://mail.example.com";
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_ERR_INVALID);
    o.url = "smtp://mail.example.com\r\n";
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_ERR_INVALID);
    o.url = "smtps://mail.example.com";
    o.from = "not an address";
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_ERR_INVALID);
    o.from = "a@example.com";
    o.username = "user"; /* without a password */
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_ERR_INVALID);
    assert_null(n);
    clc_notify_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_success_headers),
        cmocka_unit_test(test_success_parts),
        cmocka_unit_test(test_escaping_and_injection),
        cmocka_unit_test(test_encoded_subject_and_from),
        cmocka_unit_test(test_header_text),
        cmocka_unit_test(test_quoted_printable),
        cmocka_unit_test(test_failure_notice),
        cmocka_unit_test(test_client_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
