/* The AD CS client's Windows authentication on the wire, against the
 * emulated CA and a real MIT KDC started for the test: NTLM issued, wrong
 * password, no enroll right, pending then fetched; Negotiate (Kerberos)
 * from a client keytab and from a ticket cache filled by kinit, a principal
 * the CA does not map, garbage Negotiate tokens, and a CA that offers only
 * Basic to a client configured for Negotiate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <openssl/x509v3.h>

#include "ca-helpers/ca_test_pki.h"
#include "ca/ca.h"
#include "core/b64.h"
#include "core/config.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "net/http.h"
#include "support/emu_admin.h"
#include "support/kdc.h"

#define REALM "CERTLC.TEST"

static const struct clc_config_key schema[] = {{"ca.*", CLC_CFG_OBJ, "CAs"}};

static struct {
    char dir[256];
    struct test_kdc kdc;
    struct emu *e;
    cJSON *endpoints;
    struct clc_http *http;
    struct clc_clock clock;
    char anchors[300], pw_renewer[300], pw_limited[300], pw_wrong[300];
    char kt_client[300], kt_stranger[300];
    struct clc_signer *key;
    struct clc_ca_csr *csr;
    struct clc_config *cfg;
    struct clc_ca *ca;
    struct clc_ca_result res;
    struct clc_errinfo ei;
} T;

static int64_t emu_clock(void *ctx)
{
    return emu_now_ms(ctx);
}

static const char *svc(const char *name)
{
    return emu_service_url(T.e, name);
}

/* An adcs client "t" of emulator e's CA with the given auth and extra
 * members (JSON text starting with a comma, or ""). */
static enum clc_err make_ca(struct emu *emu, const char *auth, const char *extra)
{
    char text[4096];
    enum clc_err e;

    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    T.ca = NULL;
    T.cfg = NULL;
    clc_errinfo_clear(&T.ei);
    snprintf(text, sizeof text,
             "{\"ca\":{\"t\":{\"type\":\"adcs\",\"url\":\"%s/certsrv\",\"auth\":\"%s\","
             "\"tls_ca_bundle\":\"%s\",\"trust_anchors\":\"%s\",\"timeout_s\":10,"
             "\"connect_timeout_s\":5%s}}}",
             emu_service_url(emu, "ca"), auth, emu_ca_bundle(emu), T.anchors, extra);
    e = clc_config_load_text(text, strlen(text), "test", NULL, schema, 1, &T.cfg, &T.ei);
    if (e == CLC_OK)
        e = clc_ca_from_config(T.cfg, "t", &T.clock, NULL, &T.ca, &T.ei);
    return e;
}

static enum clc_err ntlm(const char *user, const char *pwfile)
{
    char extra[700];
    snprintf(extra, sizeof extra, ",\"username\":\"%s\",\"password_file\":\"%s\"", user, pwfile);
    return make_ca(T.e, "ntlm", extra);
}

/* Negotiate with a keytab and/or a ticket cache (NULL = not configured).
 * The Kerberos variables a previous client set are cleared first, so that
 * only what this one names can be used. */
static enum clc_err negotiate(struct emu *e, const char *keytab, const char *ccache)
{
    char extra[700] = "";
    size_t n = 0;

    unsetenv("KRB5_CLIENT_KTNAME");
    unsetenv("KRB5CCNAME");
    if (keytab)
        n += (size_t)snprintf(extra + n, sizeof extra - n, ",\"keytab\":\"%s\"", keytab);
    if (ccache)
        snprintf(extra + n, sizeof extra - n, ",\"ccache\":\"%s\"", ccache);
    return make_ca(e, "negotiate", extra);
}

static enum clc_err submit(const char *tmpl)
{
    struct clc_ca_req req = {.csr = T.csr, .template_name = tmpl};
    return clc_ca_submit(T.ca, &req, &T.res, &T.ei);
}

static enum clc_err fetch(const char *id)
{
    struct clc_ca_req req = {.csr = T.csr};
    char copy[CLC_CA_ID_MAX];
    snprintf(copy, sizeof copy, "%s", id);
    return clc_ca_fetch(T.ca, &req, copy, &T.res, &T.ei);
}

static void expect_issued(void)
{
    if (T.res.disposition != CLC_CA_ISSUED)
        fail_msg("not issued: %s: %s %s", clc_ca_disposition_name(T.res.disposition), T.res.reason,
                 T.res.code);
    assert_true(sk_X509_num(T.res.chain) >= 2);
    assert_true(T.res.key_checked);
}

/* POST to the control API with an admin token; the status. */
static long control(const char *path)
{
    return test_emu_admin_call(T.e, T.http, "POST", path, "{}", NULL);
}

static int write_file(const char *path, const char *text)
{
    return pki_write(path, text, strlen(text), 0600);
}

/* Trust anchors: the self-signed certificate among the CA's own (cacerts,
 * over Basic). */
static int save_anchors(void)
{
    char extra[700];
    STACK_OF(X509) *cas = NULL;
    struct clc_errinfo ei = {0};

    snprintf(extra, sizeof extra, ",\"username\":\"renewer\",\"password_file\":\"%s\"",
             T.pw_renewer);
    if (make_ca(T.e, "basic", extra) != CLC_OK || clc_ca_cacerts(T.ca, &cas, &ei) != CLC_OK) {
        fprintf(stderr, "cacerts: %s%s\n", T.ei.msg, ei.msg);
        return -1;
    }
    for (int i = 0; i < sk_X509_num(cas); i++) {
        X509 *c = sk_X509_value(cas, i);
        if (X509_check_issued(c, c) == X509_V_OK) {
            char *pem = pki_pem(&c, 1);
            pki_write(T.anchors, pem, strlen(pem), 0644);
            free(pem);
        }
    }
    sk_X509_pop_free(cas, X509_free);
    return access(T.anchors, R_OK) == 0 ? 0 : -1;
}

static int setup_all(void **state)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    char kt_http[300], cfg_path[300], cfg[2048], *text = NULL;
    (void)state;

    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    snprintf(T.dir, sizeof T.dir, "/tmp/clc-ca-auth-XXXXXX");
    if (!mkdtemp(T.dir))
        return -1;
    /* The realm first: the emulator's acceptor and libcurl read KRB5_CONFIG. */
    if (test_kdc_start(&T.kdc, REALM) != 0)
        return -1;
    snprintf(kt_http, sizeof kt_http, "%s/http.keytab", T.dir);
    snprintf(T.kt_client, sizeof T.kt_client, "%s/svc-certlc.keytab", T.dir);
    snprintf(T.kt_stranger, sizeof T.kt_stranger, "%s/stranger.keytab", T.dir);
    /* libcurl asks for HTTP@<host of the URL>: HTTP/127.0.0.1 here. */
    if (test_kdc_add_principal(&T.kdc, "HTTP/127.0.0.1", kt_http) != 0 ||
        test_kdc_add_principal(&T.kdc, "svc-certlc", T.kt_client) != 0 ||
        test_kdc_add_principal(&T.kdc, "stranger", T.kt_stranger) != 0)
        return -1;

    snprintf(cfg_path, sizeof cfg_path, "%s/emulator.json", T.dir);
    snprintf(cfg, sizeof cfg,
             "{\"ca\":{\"kerberos\":{\"keytab\":\"%s\",\"service\":\"HTTP\"},"
             "\"accounts\":[{\"name\":\"renewer\",\"ntlm\":true,"
             "\"kerberos\":\"svc-certlc@" REALM "\"},"
             "{\"name\":\"limited\",\"ntlm\":true,\"templates\":[\"WebServer\"]}]}}",
             kt_http);
    if (write_file(cfg_path, cfg) != 0)
        return -1;
    o.quiet = 1;
    o.config_file = cfg_path;
    if (emu_start(&o, &T.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(T.e, &text, &ei) != CLC_OK)
        return -1;
    T.endpoints = cJSON_Parse(text);
    free(text);
    const cJSON *acc = cJSON_GetObjectItem(T.endpoints, "ca_accounts");
    const char *pr = cJSON_GetStringValue(cJSON_GetObjectItem(acc, "renewer"));
    const char *pl = cJSON_GetStringValue(cJSON_GetObjectItem(acc, "limited"));
    if (!pr || !pl)
        return -1;
    snprintf(T.pw_renewer, sizeof T.pw_renewer, "%s/renewer.pw", T.dir);
    snprintf(T.pw_limited, sizeof T.pw_limited, "%s/limited.pw", T.dir);
    snprintf(T.pw_wrong, sizeof T.pw_wrong, "%s/wrong.pw", T.dir);
    snprintf(T.anchors, sizeof T.anchors, "%s/anchors.pem", T.dir);
    pki_write(T.pw_renewer, pr, strlen(pr), 0600);
    pki_write(T.pw_limited, pl, strlen(pl), 0600);
    pki_write(T.pw_wrong, "not-the-password", 16, 0600);
    struct clc_http_opts ho = {.ca_bundle = emu_ca_bundle(T.e)};
    if (clc_http_new(&ho, &T.http, &ei) != CLC_OK)
        return -1;
    T.clock.now_ms = emu_clock;
    T.clock.ctx = T.e;
    if (clc_signer_generate("EC", 256, &T.key, NULL) != CLC_OK)
        return -1;
    static const char *const sans[] = {"www.example.test", NULL};
    char *pem = pki_csr_pem_pkey(clc_signer_pkey(T.key), "www.example.test", sans);
    if (clc_ca_csr_parse(pem, strlen(pem), &T.csr, NULL) != CLC_OK)
        return -1;
    free(pem);
    clc_ca_result_init(&T.res);
    return save_anchors();
}

static int teardown_all(void **state)
{
    char cmd[400];
    (void)state;
    clc_ca_result_cleanup(&T.res);
    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    clc_ca_csr_free(T.csr);
    clc_signer_free(T.key);
    clc_http_free(T.http);
    cJSON_Delete(T.endpoints);
    test_emu_admin_forget(T.e);
    emu_stop(T.e);
    test_kdc_stop(&T.kdc);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_ntlm_issued(void **state)
{
    (void)state;
    assert_int_equal(ntlm("CERTLC\\\\renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_OK);
    expect_issued();
    /* Without a domain in the user name too. */
    assert_int_equal(ntlm("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit("WebServerShort"), CLC_OK);
    expect_issued();
}

static void test_ntlm_wrong_password(void **state)
{
    (void)state;
    assert_int_equal(ntlm("CERTLC\\\\renewer", T.pw_wrong), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_ERR_AUTH);
    assert_int_equal(T.res.disposition, CLC_CA_ERROR);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "credentials refused (HTTP 401; server offers Negotiate, "
                                     "NTLM, Basic)"));
    assert_null(strstr(T.ei.msg, "not-the-password"));
}

static void test_ntlm_no_enroll_right(void **state)
{
    (void)state;
    assert_int_equal(ntlm("CERTLC\\\\limited", T.pw_limited), CLC_OK);
    assert_int_equal(submit("WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "0x80094012");
}

static void test_ntlm_pending_then_fetch(void **state)
{
    char id[CLC_CA_ID_MAX], path[128];
    (void)state;
    assert_int_equal(ntlm("CERTLC\\\\renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit("WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    assert_int_equal(fetch(id), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(control(path), 200);
    /* A new client: a new connection, so a new NTLM handshake. */
    assert_int_equal(ntlm("CERTLC\\\\renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(fetch(id), CLC_OK);
    expect_issued();
}

static void test_negotiate_keytab(void **state)
{
    (void)state;
    /* The client keytab alone: MIT krb5 gets the ticket itself into the
     * realm's default cache. */
    assert_int_equal(negotiate(T.e, T.kt_client, NULL), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_OK);
    expect_issued();
    /* With a ticket cache of its own as well; then a pending request
     * fetched on the same client. */
    char cc[400], id[CLC_CA_ID_MAX], path[128];
    snprintf(cc, sizeof cc, "FILE:%s/keytab.ccache", T.dir);
    assert_int_equal(negotiate(T.e, T.kt_client, cc), CLC_OK);
    assert_int_equal(submit("WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(control(path), 200);
    assert_int_equal(fetch(id), CLC_OK);
    expect_issued();
    assert_int_equal(access(cc + 5, R_OK), 0);
}

static void test_negotiate_ccache(void **state)
{
    char cc[400];
    int rc;
    (void)state;
    snprintf(cc, sizeof cc, "FILE:%s/kinit.ccache", T.dir);
    rc = test_kdc_kinit(&T.kdc, "svc-certlc@" REALM, T.kt_client, cc);
    if (rc == 1) {
        print_message("kinit not installed (Debian krb5-user): ticket cache case not run\n");
        skip();
    }
    assert_int_equal(rc, 0);
    /* Only the cache: no keytab for GSS-API to fall back on. */
    assert_int_equal(negotiate(T.e, NULL, cc), CLC_OK);
    assert_null(getenv("KRB5_CLIENT_KTNAME"));
    assert_int_equal(submit("WebServer"), CLC_OK);
    expect_issued();
}

static void test_negotiate_unmapped_principal(void **state)
{
    char cc[400];
    (void)state;
    snprintf(cc, sizeof cc, "FILE:%s/stranger.ccache", T.dir);
    assert_int_equal(negotiate(T.e, T.kt_stranger, cc), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_ERR_AUTH);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "credentials refused (HTTP 401"));
}

/* GET /certsrv/ with a raw Authorization header; the status. */
static long raw_get(const char *auth)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    char url[256], line[8192];
    long st = 0;

    assert_non_null(h);
    snprintf(url, sizeof url, "%s/certsrv/", svc("ca"));
    snprintf(line, sizeof line, "Authorization: %s", auth);
    hl = curl_slist_append(NULL, line);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CAINFO, emu_ca_bundle(T.e));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_NOBODY, 0L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, NULL);
    FILE *sink = fopen("/dev/null", "w");
    curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
    if (curl_easy_perform(h) == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
    fclose(sink);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return st;
}

static void test_negotiate_garbage(void **state)
{
    char big[14000], *b64 = NULL;
    unsigned char junk[300];
    (void)state;
    assert_int_equal(raw_get("Negotiate !!!"), 400);
    assert_int_equal(raw_get("Negotiate "), 400);
    /* Base64 of bytes that are no GSS-API token, short and long. */
    assert_int_equal(raw_get("Negotiate AAAA"), 401);
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    assert_int_equal(clc_b64_encode(junk, sizeof junk, &b64, NULL), CLC_OK);
    snprintf(big, sizeof big, "Negotiate %s", b64);
    free(b64);
    assert_int_equal(raw_get(big), 401);
    /* A SPNEGO header with nonsense inside. */
    assert_int_equal(raw_get("Negotiate YIIBAAYGKwYBBQUCoA8wDaALBgkqhkiG9xIBAgI="), 401);
    /* Oversized (past what a ticket with a PAC needs). */
    memcpy(big, "Negotiate ", 10);
    memset(big + 10, 'A', sizeof big - 11);
    big[sizeof big - 1] = '\0';
    assert_int_equal(raw_get(big), 400);
    /* The CA still works after all of it. */
    assert_int_equal(negotiate(T.e, T.kt_client, NULL), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_OK);
    expect_issued();
}

/* A CA with the default configuration offers Basic only. */
static void test_negotiate_basic_only_ca(void **state)
{
    struct emu_opts o = {.quiet = 1};
    struct clc_errinfo ei = {0};
    struct emu *plain = NULL;
    (void)state;

    assert_int_equal(emu_start(&o, &plain, &ei), CLC_OK);
    assert_int_equal(negotiate(plain, T.kt_client, NULL), CLC_OK);
    assert_int_equal(submit("WebServer"), CLC_ERR_AUTH);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "the CA does not offer Negotiate authentication (HTTP 401; "
                                     "it offers Basic): check ca.t.auth"));
    clc_ca_free(T.ca);
    T.ca = NULL;
    emu_stop(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ntlm_issued),
        cmocka_unit_test(test_ntlm_wrong_password),
        cmocka_unit_test(test_ntlm_no_enroll_right),
        cmocka_unit_test(test_ntlm_pending_then_fetch),
        cmocka_unit_test(test_negotiate_keytab),
        cmocka_unit_test(test_negotiate_ccache),
        cmocka_unit_test(test_negotiate_unmapped_principal),
        cmocka_unit_test(test_negotiate_garbage),
        cmocka_unit_test(test_negotiate_basic_only_ca),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
