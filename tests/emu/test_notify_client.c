/* The e-mail client against the emulated sink: STARTTLS with AUTH PLAIN and
 * LOGIN, implicit TLS, wrong password, plaintext refused unless allowed, TLS
 * verification, three recipients each receiving the message once with both
 * parts, a Recipient tag with an injected header, hostile certificate
 * names, the failure notice, a server that is down, and the config path. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/config.h"
#include "core/secret.h"
#include "emulator/smtp.h"
#include "pipeline/notify.h"
#include "smtp_fixture.h"

#define FROM "certlc <certlc@example.com>"

static int setup(void **state)
{
    (void)state;
    return sfx_start("{\"smtp\": {\"accounts\": [{\"username\": \"certlc\"}]}}");
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

static const struct clc_notify_renewal renewed = {
    .success = 1,
    .vault = "vault1",
    .certificate = "web-frontend",
    .old_version = "0a1b2c",
    .new_version = "3d4e5f",
    .old_thumbprint = "1111111111111111111111111111111111111111",
    .new_thumbprint = "2222222222222222222222222222222222222222",
    .serial = "5A0000001F",
    .not_after = 1830297600, /* 2028-01-01 */
    .ca = "enterprise-ca",
    .template_name = "WebServer",
    .request_id = "42",
};

/* A client for the given listener; password NULL = the account's. */
static struct clc_notify *client(const char *kind, const char *password, int plaintext,
                                 const char *mech, enum clc_err *rc, struct clc_errinfo *ei)
{
    struct clc_secret *pw = NULL;
    struct clc_notify *n = NULL;
    struct clc_notify_opts o = {0};
    const char *p = password ? password : sfx.password;

    assert_int_equal(clc_secret_new(p, strlen(p), &pw), CLC_OK);
    o.url = emu_smtp_url(sfx.emu, kind);
    o.from = FROM;
    o.username = "certlc";
    o.password = pw;
    o.allow_plaintext = plaintext;
    o.ca_bundle = emu_ca_bundle(sfx.emu);
    o.timeout_ms = 10000;
    *rc = clc_notify_new(&o, &n, ei);
    clc_secret_free(pw);
    if (*rc == CLC_OK && mech != NULL)
        *rc = clc_notify_set_auth_mechanism(n, mech, ei);
    return n;
}

static enum clc_err send_to(struct clc_notify *n, const char *const *to, size_t nto,
                            const struct clc_notify_renewal *r, struct clc_errinfo *ei)
{
    return clc_notify_send_renewal(n, to, nto, r, ei);
}

/* The single message for addr, parsed; fails unless there is exactly one. */
static cJSON *only_message(const char *addr)
{
    char path[512];
    long st;
    cJSON *list, *detail;
    const cJSON *m;

    snprintf(path, sizeof path, "/messages?to=%s", addr);
    list = sfx_mailbox("GET", path, &st);
    assert_int_equal(st, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(list, "messages")), 1);
    m = cJSON_GetArrayItem(cJSON_GetObjectItem(list, "messages"), 0);
    snprintf(path, sizeof path, "/messages/%s", cJSON_GetStringValue(cJSON_GetObjectItem(m, "id")));
    cJSON_Delete(list);
    detail = sfx_mailbox("GET", path, &st);
    assert_int_equal(st, 200);
    return detail;
}

static const char *field(const cJSON *o, const char *k)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(o, k));
    assert_non_null(v);
    return v;
}

static int header_count(const cJSON *m, const char *name)
{
    const cJSON *h;
    int n = 0;

    cJSON_ArrayForEach(h, cJSON_GetObjectItem(m, "headers")) n +=
        strcasecmp(field(h, "name"), name) == 0;
    return n;
}

static void test_starttls_auth_plain(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, "plain", &rc, &ei);
    const char *to[] = {"alice@example.com"};
    cJSON *m;

    (void)state;
    assert_int_equal(rc, CLC_OK);
    rc = send_to(n, to, 1, &renewed, &ei);
    if (rc != CLC_OK)
        fail_msg("send: %s", ei.msg);
    clc_notify_free(n);
    m = only_message("alice@example.com");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "tls")));
    assert_string_equal(field(m, "auth_user"), "certlc");
    assert_string_equal(field(m, "auth_mechanism"), "PLAIN");
    assert_string_equal(field(m, "envelope_from"), "certlc@example.com");
    assert_string_equal(field(m, "subject"), "Certificate web-frontend renewed (Key Vault vault1)");
    assert_string_equal(field(m, "from"), "\"certlc\" <certlc@example.com>");
    cJSON_Delete(m);
}

static void test_auth_login(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, "login", &rc, &ei);
    const char *to[] = {"bob@example.com"};
    cJSON *m;

    (void)state;
    assert_int_equal(rc, CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    clc_notify_free(n);
    m = only_message("bob@example.com");
    assert_string_equal(field(m, "auth_mechanism"), "LOGIN");
    cJSON_Delete(m);
}

static void test_smtps(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtps", NULL, 0, NULL, &rc, &ei);
    const char *to[] = {"carol@example.com"};
    cJSON *m;

    (void)state;
    assert_int_equal(rc, CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    clc_notify_free(n);
    m = only_message("carol@example.com");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "tls")));
    cJSON_Delete(m);
}

static void test_wrong_password(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", "not-the-password", 0, NULL, &rc, &ei);
    const char *to[] = {"alice@example.com"};

    (void)state;
    assert_int_equal(rc, CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_ERR_AUTH);
    assert_int_equal(ei.http_status, 535);
    assert_null(strstr(ei.msg, "not-the-password"));
    clc_notify_free(n);
    assert_int_equal(sfx_count(NULL), 0);
}

static void test_plaintext_refused_unless_allowed(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp-plain", NULL, 0, NULL, &rc, &ei);
    const char *to[] = {"dave@example.com"};
    cJSON *m;

    (void)state;
    assert_int_equal(rc, CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_ERR_TLS);
    assert_non_null(strstr(ei.msg, "STARTTLS"));
    clc_notify_free(n);
    assert_int_equal(sfx_count(NULL), 0);

    n = client("smtp-plain", NULL, 1, NULL, &rc, &ei);
    assert_int_equal(rc, CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    clc_notify_free(n);
    m = only_message("dave@example.com");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(m, "tls")));
    cJSON_Delete(m);

    /* Allowed plaintext still uses STARTTLS when the server offers it. */
    n = client("smtp", NULL, 1, NULL, &rc, &ei);
    to[0] = "erin@example.com";
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    clc_notify_free(n);
    m = only_message("erin@example.com");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "tls")));
    cJSON_Delete(m);
}

static void test_tls_verified(void **state)
{
    struct clc_errinfo ei = {0};
    struct clc_secret *pw = NULL;
    struct clc_notify *n = NULL;
    struct clc_notify_opts o = {0};
    const char *to[] = {"alice@example.com"};

    (void)state;
    /* The system store does not trust the emulator's CA. */
    assert_int_equal(clc_secret_new(sfx.password, strlen(sfx.password), &pw), CLC_OK);
    o.url = emu_smtp_url(sfx.emu, "smtps");
    o.from = FROM;
    o.username = "certlc";
    o.password = pw;
    o.ca_bundle = NULL;
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_ERR_TLS);
    clc_notify_free(n);
    o.url = emu_smtp_url(sfx.emu, "smtp");
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_ERR_TLS);
    clc_notify_free(n);
    clc_secret_free(pw);
    assert_int_equal(sfx_count(NULL), 0);
}

static void test_three_recipients(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    const char *addrs[] = {"ops@example.com", "pki@example.org", "owner@example.net"};
    char **to = NULL;
    size_t nto = 0, bad = 0;

    (void)state;
    assert_int_equal(clc_notify_parse_recipients(
                         " ops@example.com; pki@example.org ,owner@example.net", &to, &nto, &bad),
                     CLC_OK);
    assert_int_equal(nto, 3);
    assert_int_equal(bad, 0);
    assert_int_equal(send_to(n, (const char *const *)to, nto, &renewed, &ei), CLC_OK);
    clc_notify_recipients_free(to, nto);
    clc_notify_free(n);
    assert_int_equal(sfx_count(NULL), 1); /* one transaction */
    for (size_t i = 0; i < 3; i++) {
        cJSON *m = only_message(addrs[i]);
        const char *text = field(m, "text"), *html = field(m, "html");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "to")), 3);
        assert_non_null(strstr(field(m, "to_header"), addrs[i]));
        assert_int_equal(header_count(m, "To"), 1);
        assert_int_equal(header_count(m, "Date"), 1);
        assert_int_equal(header_count(m, "Message-ID"), 1);
        assert_int_equal(header_count(m, "MIME-Version"), 1);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "parts")), 2);
        /* What recipients read: every fact of the renewal, in both parts. */
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
        for (size_t k = 0; k < sizeof facts / sizeof facts[0]; k++) {
            if (strstr(text, facts[k]) == NULL || strstr(html, facts[k]) == NULL)
                fail_msg("'%s' missing from a part", facts[k]);
        }
        assert_non_null(strstr(html, "<table"));
        cJSON_Delete(m);
    }
}

static void test_injected_recipient_tag(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    char **to = NULL;
    size_t nto = 0, bad = 0;
    cJSON *m;

    (void)state;
    assert_int_equal(clc_notify_parse_recipients("ok@example.com, bad@example.com\r\nBcc: "
                                                 "evil@example.net; other@example.org",
                                                 &to, &nto, &bad),
                     CLC_OK);
    assert_int_equal(nto, 2);
    assert_int_equal(bad, 1);
    assert_int_equal(send_to(n, (const char *const *)to, nto, &renewed, &ei), CLC_OK);
    clc_notify_recipients_free(to, nto);
    clc_notify_free(n);
    assert_int_equal(sfx_count("evil@example.net"), 0);
    assert_int_equal(sfx_count("bad@example.com"), 0);
    m = only_message("other@example.org");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "to")), 2);
    assert_int_equal(header_count(m, "Bcc"), 0);
    assert_null(strstr(field(m, "to_header"), "evil"));
    cJSON_Delete(m);
}

static void test_hostile_values(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    struct clc_notify_renewal r = renewed;
    const char *to[] = {"alice@example.com", "bad\r\nBcc: x@example.com"};
    const cJSON *h;
    cJSON *m;

    (void)state;
    r.certificate = "evil\r\nBcc: spy@example.net\r\n\r\n<script>alert(1)</script>";
    r.vault = "v\xc3\xa4ult"; /* UTF-8 in the subject */
    /* Invalid entries of the list are dropped, the valid one still gets it. */
    assert_int_equal(send_to(n, to, 2, &r, &ei), CLC_OK);
    clc_notify_free(n);
    assert_int_equal(sfx_count("spy@example.net"), 0);
    m = only_message("alice@example.com");
    cJSON_ArrayForEach(h, cJSON_GetObjectItem(m, "headers"))
    {
        const char *name = field(h, "name");
        const char *ok[] = {"Date",       "From",         "To",           "Subject",
                            "Message-ID", "MIME-Version", "Content-Type", "Auto-Submitted"};
        int known = 0;
        for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
            known |= strcmp(name, ok[i]) == 0;
        if (!known)
            fail_msg("unexpected header '%s'", name);
    }
    assert_string_equal(field(m, "subject"),
                        "Certificate evil  Bcc: spy@example.net    <script>alert(1)</script> "
                        "renewed (Key Vault v\xc3\xa4ult)");
    assert_null(strstr(field(m, "html"), "<script>"));
    assert_non_null(strstr(field(m, "html"), "&lt;script&gt;"));
    cJSON_Delete(m);
}

static void test_failure_notice(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    struct clc_notify_renewal r = {
        .success = 0,
        .vault = "vault1",
        .certificate = "api",
        .old_version = "0a1b2c",
        .ca = "enterprise-ca",
        .template_name = "WebServer",
        .request_id = "77",
        .error = "the CA denied request 77: template not allowed",
        .attempted = "created a new version with the full policy; submitted the CSR",
        .next_step = "the pending operation was cancelled; the event is in certlc-poison",
    };
    const char *to[] = {"owner@example.net"};
    cJSON *m;

    (void)state;
    assert_int_equal(send_to(n, to, 1, &r, &ei), CLC_OK);
    clc_notify_free(n);
    m = only_message("owner@example.net");
    assert_string_equal(field(m, "subject"), "Renewal of api failed (Key Vault vault1)");
    assert_non_null(strstr(field(m, "text"), "What failed:"));
    assert_non_null(strstr(field(m, "text"), "template not allowed"));
    assert_non_null(strstr(field(m, "text"), "submitted the CSR"));
    assert_non_null(strstr(field(m, "text"), "certlc-poison"));
    assert_non_null(strstr(field(m, "html"), "<h3>What happens next</h3>"));
    cJSON_Delete(m);
}

/* Messages in a row share one SMTP session (TLS and AUTH done once). */
static void test_connection_reused(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    const char *to[] = {"reuse@example.com"};

    (void)state;
    assert_int_equal(rc, CLC_OK);
    size_t before = emu_smtp_sessions(sfx.emu);
    for (int i = 0; i < 3; i++)
        assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    assert_int_equal(emu_smtp_sessions(sfx.emu) - before, 1);
    assert_int_equal(sfx_count("reuse@example.com"), 3);
    clc_notify_free(n);
}

static void test_server_down_and_unreachable(void **state)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    struct clc_notify *n = client("smtp", NULL, 0, NULL, &rc, &ei);
    struct clc_notify_opts o = {.url = "smtp://127.0.0.1:1", .from = FROM, .timeout_ms = 5000};
    const char *to[] = {"alice@example.com"};

    (void)state;
    emu_smtp_set_down(sfx.emu, 1);
    rc = send_to(n, to, 1, &renewed, &ei);
    assert_int_equal(rc, CLC_ERR_UNAVAILABLE);
    assert_int_equal(ei.http_status, 421);
    emu_smtp_set_down(sfx.emu, 0);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK); /* the retry works */
    clc_notify_free(n);
    assert_int_equal(clc_notify_new(&o, &n, &ei), CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_ERR_NET);
    clc_notify_free(n);
    assert_int_equal(sfx_count(NULL), 1);
}

static void test_from_config(void **state)
{
    static const struct clc_config_key extra[] = {{"http.ca_bundle", CLC_CFG_STR, ""}};
    struct clc_config_key keys[32];
    struct clc_config *cfg = NULL;
    struct clc_errinfo ei = {0};
    struct clc_http_opts ho = {.ca_bundle = emu_ca_bundle(sfx.emu)};
    struct clc_notify *n = NULL;
    char path[128], text[1024];
    const char *to[] = {"cfg@example.com"};
    FILE *f;
    cJSON *m;
    size_t nk = clc_notify_config_nkeys;

    (void)state;
    memcpy(keys, clc_notify_config_keys, nk * sizeof keys[0]);
    keys[nk++] = extra[0];
    /* Not configured: NOT_FOUND, so callers simply send nothing. */
    assert_int_equal(clc_config_load_text("{}", 2, "test", NULL, keys, nk, &cfg, &ei), CLC_OK);
    assert_int_equal(clc_notify_from_config(cfg, &ho, &n, &ei), CLC_ERR_NOT_FOUND);
    clc_config_free(cfg);

    snprintf(path, sizeof path, "%s/smtp-password", sfx.dir);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "%s\n", sfx.password);
    fclose(f);
    snprintf(text, sizeof text,
             "{\"smtp\": {\"url\": \"%s\", \"from\": \"Renewals <renew@example.com>\", "
             "\"username\": \"certlc\", \"password_file\": \"%s\", \"auth_mechanism\": \"login\"}}",
             emu_smtp_url(sfx.emu, "smtp"), path);
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, keys, nk, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_notify_from_config(cfg, &ho, &n, &ei), CLC_OK);
    assert_int_equal(send_to(n, to, 1, &renewed, &ei), CLC_OK);
    clc_notify_free(n);
    clc_config_free(cfg);
    unlink(path);
    m = only_message("cfg@example.com");
    assert_string_equal(field(m, "envelope_from"), "renew@example.com");
    assert_string_equal(field(m, "auth_mechanism"), "LOGIN");
    cJSON_Delete(m);

    /* A user name without a password is a configuration error. */
    snprintf(text, sizeof text,
             "{\"smtp\": {\"url\": \"smtp://127.0.0.1:25\", \"from\": \"a@example.com\", "
             "\"username\": \"x\"}}");
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, keys, nk, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_notify_from_config(cfg, &ho, &n, &ei), CLC_ERR_CONFIG);
    clc_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_reused),
        cmocka_unit_test_setup(test_starttls_auth_plain, reset),
        cmocka_unit_test_setup(test_auth_login, reset),
        cmocka_unit_test_setup(test_smtps, reset),
        cmocka_unit_test_setup(test_wrong_password, reset),
        cmocka_unit_test_setup(test_plaintext_refused_unless_allowed, reset),
        cmocka_unit_test_setup(test_tls_verified, reset),
        cmocka_unit_test_setup(test_three_recipients, reset),
        cmocka_unit_test_setup(test_injected_recipient_tag, reset),
        cmocka_unit_test_setup(test_hostile_values, reset),
        cmocka_unit_test_setup(test_failure_notice, reset),
        cmocka_unit_test_setup(test_server_down_and_unreachable, reset),
        cmocka_unit_test_setup(test_from_config, reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
