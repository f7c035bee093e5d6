/* The emulated SMTP sink at the protocol level: STARTTLS, implicit TLS and
 * the plaintext relay, AUTH PLAIN and LOGIN, the mail transaction with
 * dot-unstuffing, every limit, commands out of order and abrupt disconnects
 * (after each of which the sink still serves), and the mailbox API. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/b64.h"
#include "core/clock.h"
#include "emulator/smtp.h"
#include "smtp_fixture.h"

#define CONFIG                                                                                     \
    "{\"smtp\": {\"max_message_bytes\": 8192, \"max_connections\": 4, \"max_recipients\": 5,"      \
    " \"accounts\": [{\"username\": \"certlc\"}, {\"username\": \"ops\", \"password\": "           \
    "\"ops-secret-1\"}]}}"

static int setup(void **state)
{
    (void)state;
    return sfx_start(CONFIG);
}

static int teardown(void **state)
{
    (void)state;
    sfx_stop();
    return 0;
}

static int reset(void **state)
{
    long st;
    cJSON *j = sfx_mailbox("DELETE", "/messages", &st);

    (void)state;
    cJSON_Delete(j);
    emu_smtp_set_down(sfx.emu, 0);
    return st == 200 ? 0 : -1;
}

/* One full session that must work: proves the sink is still up. */
static void assert_sink_serves(void)
{
    struct rawc c;

    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_cmd(&c, "NOOP"), 250);
    assert_int_equal(rawc_cmd(&c, "QUIT"), 221);
    rawc_close(&c);
}

static void send_message(struct rawc *c, const char *to, const char *body)
{
    char cmd[512];

    assert_int_equal(rawc_cmd(c, "MAIL FROM:<certlc@example.com>"), 250);
    snprintf(cmd, sizeof cmd, "RCPT TO:<%s>", to);
    assert_int_equal(rawc_cmd(c, cmd), 250);
    assert_int_equal(rawc_cmd(c, "DATA"), 354);
    assert_int_equal(rawc_send(c, body, strlen(body)), 0);
    assert_int_equal(rawc_cmd(c, "."), 250);
}

static void test_endpoints_document(void **state)
{
    const cJSON *smtp = cJSON_GetObjectItem(sfx.endpoints, "smtp");
    const cJSON *acc = cJSON_GetObjectItem(sfx.endpoints, "smtp_accounts");

    (void)state;
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(smtp, "url")),
                        emu_smtp_url(sfx.emu, "smtp"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(smtp, "smtps_url")),
                        emu_smtp_url(sfx.emu, "smtps"));
    assert_non_null(sfx.password);
    assert_true(strlen(sfx.password) >= 16); /* generated */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(acc, "ops")), "ops-secret-1");
    assert_non_null(strstr(emu_service_url(sfx.emu, "mailbox"), "https://127.0.0.1:"));
}

static void test_starttls_required(void **state)
{
    struct rawc c;

    (void)state;
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_non_null(strstr(c.last, "STARTTLS"));
    assert_null(strstr(c.last, "AUTH")); /* not offered before TLS */
    assert_non_null(strstr(c.last, "SIZE 8192"));
    assert_int_equal(rawc_cmd(&c, "AUTH PLAIN AGNlcnRsYwB4"), 538);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 530);
    assert_int_equal(rawc_cmd(&c, "STARTTLS now"), 501);
    assert_int_equal(rawc_cmd(&c, "STARTTLS"), 220);
    assert_int_equal(rawc_tls(&c), 0);
    /* After TLS the client starts over: MAIL before EHLO is out of order. */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 503);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_null(strstr(c.last, "STARTTLS"));
    assert_non_null(strstr(c.last, "AUTH PLAIN LOGIN"));
    assert_int_equal(rawc_cmd(&c, "STARTTLS"), 503);
    /* TLS alone is not enough: AUTH is required. */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 530);
    rawc_close(&c);
}

static void test_auth_plain_and_delivery(void **state)
{
    struct rawc c;
    long st;
    cJSON *list, *m, *detail;
    char path[64];

    (void)state;
    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_cmd(&c, "AUTH PLAIN AGNlcnRsYwB4"), 503); /* already */
    send_message(&c, "alice@example.com",
                 "Subject: =?UTF-8?B?SMOpbGxv?= world\r\nFrom: x@example.com\r\n\r\n"
                 "line one\r\n..leading dot\r\n");
    assert_int_equal(rawc_cmd(&c, "QUIT"), 221);
    rawc_close(&c);

    list = sfx_mailbox("GET", "/messages", &st);
    assert_int_equal(st, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "messages")), 1);
    m = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "messages"), 0);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "subject")),
                        "H\xc3\xa9llo world");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "envelope_from")),
                        "certlc@example.com");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "auth_user")), "certlc");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "auth_mechanism")), "PLAIN");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "tls")));
    snprintf(path, sizeof path, "/messages/%s", cJSON_GetStringValue(cJSON_GetObjectItem(m, "id")));
    detail = sfx_mailbox("GET", path, &st);
    assert_int_equal(st, 200);
    /* Dot-unstuffed, and the terminating dot is not content. */
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(detail, "text")),
                        "line one\n.leading dot\n");
    cJSON_Delete(detail);
    cJSON_Delete(list);
}

static void test_auth_login_and_failures(void **state)
{
    struct rawc c;
    char b64[256], *e = NULL;

    (void)state;
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_int_equal(rawc_cmd(&c, "STARTTLS"), 220);
    assert_int_equal(rawc_tls(&c), 0);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_int_equal(rawc_cmd(&c, "AUTH CRAM-MD5"), 504);
    /* LOGIN without an initial response: two challenges. */
    assert_int_equal(rawc_cmd(&c, "AUTH LOGIN"), 334);
    assert_non_null(strstr(c.last, "VXNlcm5hbWU6"));
    assert_int_equal(rawc_cmd(&c, "b3Bz"), 334); /* "ops" */
    assert_non_null(strstr(c.last, "UGFzc3dvcmQ6"));
    assert_int_equal(clc_b64_encode("wrong", 5, &e, NULL), CLC_OK);
    assert_int_equal(rawc_cmd(&c, e), 535);
    free(e);
    /* Cancelled exchange and a malformed PLAIN response. */
    assert_int_equal(rawc_cmd(&c, "AUTH LOGIN"), 334);
    assert_int_equal(rawc_cmd(&c, "*"), 501);
    assert_int_equal(rawc_cmd(&c, "AUTH PLAIN !!!"), 501);
    /* A user's password does not open another account. */
    rawc_plain("certlc", "ops-secret-1", b64, sizeof b64);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "AUTH PLAIN %s", b64);
        assert_int_equal(rawc_cmd(&c, cmd), 535);
    }
    /* Now the right one, by LOGIN with an initial response. */
    assert_int_equal(rawc_cmd(&c, "AUTH LOGIN b3Bz"), 334);
    assert_int_equal(clc_b64_encode("ops-secret-1", 12, &e, NULL), CLC_OK);
    assert_int_equal(rawc_cmd(&c, e), 235);
    free(e);
    send_message(&c, "bob@example.com", "Subject: x\r\n\r\nhi\r\n");
    rawc_close(&c);
    assert_int_equal(sfx_count("bob@example.com"), 1);

    /* Three failures close the connection. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtps")), 0);
    assert_int_equal(rawc_tls(&c), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    rawc_plain("certlc", "nope", b64, sizeof b64);
    {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "AUTH PLAIN %s", b64);
        assert_int_equal(rawc_cmd(&c, cmd), 535);
        assert_int_equal(rawc_cmd(&c, cmd), 535);
        assert_int_equal(rawc_cmd(&c, cmd), 535);
        assert_int_equal(rawc_reply(&c), 421);
    }
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    assert_sink_serves();
}

static void test_smtps_and_plain_listeners(void **state)
{
    struct rawc c;
    char b64[256], cmd[300];

    (void)state;
    /* Implicit TLS: the handshake comes first, no STARTTLS offered. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtps")), 0);
    assert_int_equal(rawc_tls(&c), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_null(strstr(c.last, "STARTTLS"));
    assert_non_null(strstr(c.last, "AUTH PLAIN LOGIN"));
    rawc_close(&c);
    /* The plaintext relay: no TLS at all, AUTH still required. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtp-plain")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "EHLO test"), 250);
    assert_null(strstr(c.last, "STARTTLS"));
    assert_int_equal(rawc_cmd(&c, "STARTTLS"), 502);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 530);
    rawc_plain("certlc", sfx.password, b64, sizeof b64);
    snprintf(cmd, sizeof cmd, "AUTH PLAIN %s", b64);
    assert_int_equal(rawc_cmd(&c, cmd), 235);
    send_message(&c, "plain@example.com", "Subject: p\r\n\r\nplain\r\n");
    rawc_close(&c);
    assert_int_equal(sfx_count("plain@example.com"), 1);
}

static void test_out_of_order(void **state)
{
    struct rawc c;

    (void)state;
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 503); /* before EHLO */
    assert_int_equal(rawc_cmd(&c, "AUTH PLAIN"), 503);
    assert_int_equal(rawc_cmd(&c, "EHLO"), 501);
    assert_int_equal(rawc_cmd(&c, "BOGUS"), 500);
    rawc_close(&c);

    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<a@example.com>"), 503);
    assert_int_equal(rawc_cmd(&c, "DATA"), 503);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:a@example.com"), 501);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com> SMTPUTF8"), 555);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com> SIZE=999999"), 552);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 503); /* nested */
    assert_int_equal(rawc_cmd(&c, "DATA"), 503);                      /* no RCPT */
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<bad address@example.com>"), 553);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<noat>"), 553);
    assert_int_equal(rawc_cmd(&c, "AUTH PLAIN x"), 503);
    assert_int_equal(rawc_cmd(&c, "RSET"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<a@example.com>"), 503); /* RSET ended it */
    /* The recipient limit (5). */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<>"), 250);
    for (int i = 0; i < 5; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "RCPT TO:<r%d@example.com>", i);
        assert_int_equal(rawc_cmd(&c, cmd), 250);
    }
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<r0@example.com>"), 250); /* duplicate */
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<r9@example.com>"), 452);
    assert_int_equal(rawc_cmd(&c, "NOOP"), 250);
    assert_int_equal(rawc_cmd(&c, "VRFY x"), 252);
    assert_int_equal(rawc_cmd(&c, "QUIT"), 221);
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    assert_int_equal(sfx_count(NULL), 0);
}

static void test_overlong_lines(void **state)
{
    struct rawc c;
    char *big = malloc(5000);

    (void)state;
    assert_non_null(big);
    memset(big, 'A', 4997);
    memcpy(big + 4997, "\r\n", 3);
    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_send(&c, big, strlen(big)), 0);
    assert_int_equal(rawc_reply(&c), 500);
    assert_int_equal(rawc_cmd(&c, "NOOP"), 250); /* the session goes on */
    /* A DATA line over 1000 bytes refuses the message, not the session. */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<long@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "DATA"), 354);
    big[1500] = '\r';
    big[1501] = '\n';
    big[1502] = '\0';
    assert_int_equal(rawc_send(&c, big, strlen(big)), 0);
    assert_int_equal(rawc_cmd(&c, "."), 500);
    /* A bare LF in the data (SMTP smuggling) refuses it too. */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<long@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "DATA"), 354);
    assert_int_equal(rawc_send(&c, "a\n.\nMAIL FROM:<x@example.com>\r\n", 31), 0);
    assert_int_equal(rawc_cmd(&c, "."), 554);
    assert_int_equal(rawc_cmd(&c, "NOOP"), 250);
    rawc_close(&c);
    /* An endless line without LF: the connection is dropped. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    memset(big, 'B', 4999);
    for (int i = 0; i < 20; i++)
        if (rawc_send(&c, big, 4999) != 0)
            break;
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    free(big);
    assert_int_equal(sfx_count("long@example.com"), 0);
    assert_sink_serves();
}

static void test_data_over_limit(void **state)
{
    struct rawc c;
    char line[200];

    (void)state;
    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<big@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "DATA"), 354);
    memset(line, 'x', 98);
    memcpy(line + 98, "\r\n", 3);
    for (int i = 0; i < 100; i++) /* 10 KB > 8 KiB */
        assert_int_equal(rawc_send(&c, line, 100), 0);
    assert_int_equal(rawc_cmd(&c, "."), 552);
    assert_int_equal(rawc_cmd(&c, "NOOP"), 250);
    /* Far past the limit the sink stops reading and closes. */
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<big@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "DATA"), 354);
    for (int i = 0; i < 2000; i++)
        if (rawc_send(&c, line, 100) != 0)
            break;
    assert_true(rawc_closed(&c) || rawc_reply(&c) == 552);
    rawc_close(&c);
    assert_int_equal(sfx_count("big@example.com"), 0);
    assert_sink_serves();
}

static void test_abrupt_disconnects(void **state)
{
    struct rawc c;

    (void)state;
    /* Gone at once, before the greeting is read. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    rawc_close(&c);
    /* Gone in the middle of DATA: nothing is stored. */
    assert_true(rawc_login(&c, sfx_port("smtp")));
    assert_int_equal(rawc_cmd(&c, "MAIL FROM:<a@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "RCPT TO:<cut@example.com>"), 250);
    assert_int_equal(rawc_cmd(&c, "DATA"), 354);
    assert_int_equal(rawc_send(&c, "Subject: half\r\n\r\nhal", 21), 0);
    rawc_close(&c);
    /* Garbage instead of a TLS handshake, on both TLS listeners. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtps")), 0);
    assert_int_equal(rawc_send(&c, "EHLO plaintext\r\n", 16), 0);
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    assert_int_equal(rawc_cmd(&c, "STARTTLS"), 220);
    assert_int_equal(rawc_send(&c, "\x16\x03\x01\x00\x05hello", 10), 0);
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    /* Gone in the middle of a TLS handshake. */
    assert_int_equal(rawc_connect(&c, sfx_port("smtps")), 0);
    assert_int_equal(rawc_send(&c, "\x16\x03\x01", 3), 0);
    rawc_close(&c);
    assert_int_equal(sfx_count("cut@example.com"), 0);
    assert_sink_serves();
}

static void test_error_limit(void **state)
{
    struct rawc c;
    int code = 0;

    (void)state;
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 220);
    for (int i = 0; i < 20; i++)
        code = rawc_cmd(&c, "XYZZY");
    assert_int_equal(code, 500);
    assert_int_equal(rawc_reply(&c), 421);
    assert_true(rawc_closed(&c));
    rawc_close(&c);
}

static void test_connection_limit(void **state)
{
    struct rawc c[5], extra;
    int ok = 0;

    (void)state;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rawc_connect(&c[i], sfx_port("smtp")), 0);
        assert_int_equal(rawc_reply(&c[i]), 220);
    }
    assert_int_equal(rawc_connect(&c[4], sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c[4]), 421);
    rawc_close(&c[4]);
    for (int i = 0; i < 4; i++)
        rawc_close(&c[i]);
    /* The slots come back once the sessions have seen the close. */
    for (int i = 0; i < 50 && !ok; i++) {
        assert_int_equal(rawc_connect(&extra, sfx_port("smtp")), 0);
        ok = rawc_reply(&extra) == 220;
        rawc_close(&extra);
        if (!ok)
            clc_sleep_ms(100);
    }
    assert_true(ok);
}

static void test_down_switch(void **state)
{
    struct rawc c;

    (void)state;
    assert_int_equal(sfx_control("PUT", "/control/smtp/down", "{\"down\": true}"), 200);
    assert_int_equal(rawc_connect(&c, sfx_port("smtp")), 0);
    assert_int_equal(rawc_reply(&c), 421);
    assert_true(rawc_closed(&c));
    rawc_close(&c);
    assert_int_equal(sfx_control("PUT", "/control/smtp/down", "{\"down\": 3}"), 400);
    assert_int_equal(sfx_control("PUT", "/control/smtp/down", "{\"down\": false}"), 200);
    assert_sink_serves();
}

static void test_mailbox_api(void **state)
{
    struct rawc c;
    long st;
    cJSON *j, *m;
    char path[64], id[24];

    (void)state;
    assert_true(rawc_login(&c, sfx_port("smtp")));
    send_message(&c, "one@example.com", "Subject: first\r\n\r\n1\r\n");
    send_message(&c, "two@example.com", "Subject: second\r\n\r\n2\r\n");
    rawc_close(&c);
    assert_int_equal(sfx_count(NULL), 2);
    assert_int_equal(sfx_count("ONE@example.com"), 1);
    assert_int_equal(sfx_count("three@example.com"), 0);

    j = sfx_mailbox("GET", "/messages?to=two%40example.com", &st);
    m = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0);
    snprintf(id, sizeof id, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(m, "id")));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(m, "subject")), "second");
    cJSON_Delete(j);

    snprintf(path, sizeof path, "/messages/%s/raw", id);
    j = sfx_mailbox("GET", path, &st); /* not JSON */
    assert_int_equal(st, 200);
    cJSON_Delete(j);
    j = sfx_mailbox("GET", "/messages/999999", &st);
    assert_int_equal(st, 404);
    cJSON_Delete(j);
    j = sfx_mailbox("GET", "/messages/abc", &st);
    assert_int_equal(st, 404);
    cJSON_Delete(j);
    snprintf(path, sizeof path, "/messages/%s", id);
    j = sfx_mailbox("DELETE", path, &st);
    assert_int_equal(st, 204);
    cJSON_Delete(j);
    j = sfx_mailbox("DELETE", path, &st);
    assert_int_equal(st, 404);
    cJSON_Delete(j);
    assert_int_equal(sfx_count(NULL), 1);
    j = sfx_mailbox("DELETE", "/messages", &st);
    assert_int_equal(st, 200);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "deleted")), 1);
    cJSON_Delete(j);
    assert_int_equal(sfx_count(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_endpoints_document, reset),
        cmocka_unit_test_setup(test_starttls_required, reset),
        cmocka_unit_test_setup(test_auth_plain_and_delivery, reset),
        cmocka_unit_test_setup(test_auth_login_and_failures, reset),
        cmocka_unit_test_setup(test_smtps_and_plain_listeners, reset),
        cmocka_unit_test_setup(test_out_of_order, reset),
        cmocka_unit_test_setup(test_overlong_lines, reset),
        cmocka_unit_test_setup(test_data_over_limit, reset),
        cmocka_unit_test_setup(test_abrupt_disconnects, reset),
        cmocka_unit_test_setup(test_error_limit, reset),
        cmocka_unit_test_setup(test_connection_limit, reset),
        cmocka_unit_test_setup(test_down_switch, reset),
        cmocka_unit_test_setup(test_mailbox_api, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
