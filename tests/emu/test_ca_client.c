/* The AD CS and EST clients against the emulated CA over HTTPS with Basic
 * auth: issued (chain ordered and verified to the CA's root, fetched as trust
 * anchors with cacerts), pending then approved or denied through the control
 * API, denied at once (unknown template, key too small, no enroll right),
 * wrong password, CA unreachable, a 503 from fault injection, a certificate
 * for another key, and Basic over plain http refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "ca-helpers/ca_test_pki.h"
#include "ca/ca.h"
#include "core/config.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "net/http.h"
#include "support/emu_admin.h"

static const struct clc_config_key schema[] = {{"ca.*", CLC_CFG_OBJ, "CAs"}};

static struct {
    char dir[256];
    struct emu *e;
    cJSON *endpoints;
    struct clc_http *http;
    struct clc_clock clock;
    char anchors[300];
    char pw_renewer[300], pw_limited[300], pw_wrong[300];
    struct clc_signer *key, *key2;
    struct clc_ca_csr *csr, *csr2, *csr_small;
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

/* Builds client `name` of type with url, account and password file. */
static enum clc_err make_ca(const char *type, const char *url, const char *user, const char *pwfile,
                            const char *anchors)
{
    char text[4096];
    enum clc_err e;

    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    T.ca = NULL;
    T.cfg = NULL;
    snprintf(text, sizeof text,
             "{\"ca\":{\"t\":{\"type\":\"%s\",\"url\":\"%s\",\"auth\":\"basic\","
             "\"username\":\"%s\",\"password_file\":\"%s\",\"tls_ca_bundle\":\"%s\""
             "%s%s%s,\"timeout_s\":10,\"connect_timeout_s\":5}}}",
             type, url, user, pwfile, emu_ca_bundle(T.e), anchors ? ",\"trust_anchors\":\"" : "",
             anchors ? anchors : "", anchors ? "\"" : "");
    e = clc_config_load_text(text, strlen(text), "test", NULL, schema, 1, &T.cfg, &T.ei);
    if (e == CLC_OK)
        e = clc_ca_from_config(T.cfg, "t", &T.clock, NULL, &T.ca, &T.ei);
    return e;
}

static enum clc_err adcs(const char *user, const char *pwfile)
{
    char url[300];
    snprintf(url, sizeof url, "%s/certsrv", svc("ca"));
    return make_ca("adcs", url, user, pwfile, T.anchors);
}

static enum clc_err est(const char *user, const char *pwfile)
{
    char url[300];
    snprintf(url, sizeof url, "%s/.well-known/est", svc("ca"));
    return make_ca("est", url, user, pwfile, T.anchors);
}

static enum clc_err submit(const struct clc_ca_csr *csr, const char *tmpl)
{
    struct clc_ca_req req = {.csr = csr, .template_name = tmpl};
    return clc_ca_submit(T.ca, &req, &T.res, &T.ei);
}

static enum clc_err fetch(const struct clc_ca_csr *csr, const char *tmpl, const char *id)
{
    struct clc_ca_req req = {.csr = csr, .template_name = tmpl};
    char copy[CLC_CA_ID_MAX];
    snprintf(copy, sizeof copy, "%s", id); /* id may live in T.res, which is reset */
    return clc_ca_fetch(T.ca, &req, copy, &T.res, &T.ei);
}

/* A control API call with an admin token; returns the status and, when out
 * is given, the body (malloc'd). */
static long control_body(const char *method, const char *path, const char *body, char **out)
{
    struct clc_http_resp r;
    long st = test_emu_admin_call(T.e, T.http, method, path, body, &r);

    if (out)
        *out = strdup(clc_buf_str(&r.body));
    clc_http_resp_cleanup(&r);
    return st;
}

static long control(const char *method, const char *path, const char *body)
{
    return control_body(method, path, body, NULL);
}

/* The emulator's id of the newest pending request. */
static long long newest_pending(void)
{
    long long best = -1;
    const cJSON *it = NULL;
    char *text = NULL;

    assert_int_equal(control_body("GET", "/control/ca/requests", NULL, &text), 200);
    cJSON *doc = cJSON_Parse(text);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(doc, "requests"))
    {
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(it, "status"));
        const cJSON *n = cJSON_GetObjectItem(it, "id");
        if (d && strcmp(d, "pending") == 0 && cJSON_IsNumber(n) && n->valuedouble > best)
            best = (long long)n->valuedouble;
    }
    cJSON_Delete(doc);
    free(text);
    return best;
}

static void write_text(const char *path, const char *s)
{
    assert_int_equal(pki_write(path, s, strlen(s), 0600), 0);
}

static struct clc_ca_csr *csr_for(EVP_PKEY *pk, const char *cn)
{
    static const char *const sans[] = {"www.example.test", NULL};
    char *pem = pki_csr_pem_pkey(pk, cn, sans);
    struct clc_ca_csr *c = NULL;
    assert_int_equal(clc_ca_csr_parse(pem, strlen(pem), &c, NULL), CLC_OK);
    free(pem);
    return c;
}

static int setup_all(void **state)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    char *text = NULL;
    (void)state;

    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    snprintf(T.dir, sizeof T.dir, "/tmp/clc-ca-emu-XXXXXX");
    if (!mkdtemp(T.dir))
        return -1;
    o.quiet = 1;
    if (emu_start(&o, &T.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(T.e, &text, &ei) != CLC_OK) {
        fprintf(stderr, "endpoints: %s\n", ei.msg);
        return -1;
    }
    T.endpoints = cJSON_Parse(text);
    free(text);
    const cJSON *acc = cJSON_GetObjectItem(T.endpoints, "ca_accounts");
    const char *pr = cJSON_GetStringValue(cJSON_GetObjectItem(acc, "renewer"));
    const char *pl = cJSON_GetStringValue(cJSON_GetObjectItem(acc, "limited"));
    if (!pr || !pl) {
        fprintf(stderr, "no ca_accounts in the endpoints document\n");
        return -1;
    }
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
    if (clc_signer_generate("EC", 256, &T.key, NULL) != CLC_OK ||
        clc_signer_generate("EC", 256, &T.key2, NULL) != CLC_OK)
        return -1;
    T.csr = csr_for(clc_signer_pkey(T.key), "www.example.test");
    T.csr2 = csr_for(clc_signer_pkey(T.key2), "other.example.test");
    EVP_PKEY *small = EVP_RSA_gen(1024);
    T.csr_small = csr_for(small, "small.example.test");
    EVP_PKEY_free(small);

    /* Trust anchors: the CA's own chain from cacerts, self-signed one kept. */
    clc_ca_result_init(&T.res);
    char url[300];
    snprintf(url, sizeof url, "%s/certsrv", svc("ca"));
    if (make_ca("adcs", url, "renewer", T.pw_renewer, NULL) != CLC_OK) {
        fprintf(stderr, "adcs client: %s\n", T.ei.msg);
        return -1;
    }
    STACK_OF(X509) *cas = NULL;
    if (clc_ca_cacerts(T.ca, &cas, &ei) != CLC_OK) {
        fprintf(stderr, "cacerts: %s\n", ei.msg);
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
    if (access(T.anchors, R_OK) != 0) {
        fprintf(stderr, "cacerts gave no self-signed certificate\n");
        return -1;
    }
    return 0;
}

static int teardown_all(void **state)
{
    char cmd[400];
    (void)state;
    clc_ca_result_cleanup(&T.res);
    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    clc_ca_csr_free(T.csr);
    clc_ca_csr_free(T.csr2);
    clc_ca_csr_free(T.csr_small);
    clc_signer_free(T.key);
    clc_signer_free(T.key2);
    clc_http_free(T.http);
    cJSON_Delete(T.endpoints);
    test_emu_admin_forget(T.e);
    emu_stop(T.e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void expect_issued_for(const struct clc_ca_csr *csr)
{
    if (T.res.disposition != CLC_CA_ISSUED)
        fail_msg("not issued: %s %s %s", clc_ca_disposition_name(T.res.disposition), T.res.reason,
                 T.res.code);
    assert_true(sk_X509_num(T.res.chain) >= 2);
    X509 *leaf = sk_X509_value(T.res.chain, 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), X509_REQ_get0_pubkey(clc_ca_csr_req(csr))),
                     1);
    for (int i = 1; i < sk_X509_num(T.res.chain); i++)
        assert_int_equal(
            X509_check_issued(sk_X509_value(T.res.chain, i), sk_X509_value(T.res.chain, i - 1)),
            X509_V_OK);
    assert_true(T.res.key_checked);
}

static void test_adcs_issued(void **state)
{
    (void)state;
    assert_int_equal(adcs("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_OK);
    expect_issued_for(T.csr);
    assert_true(T.res.request_id[0] != '\0');
    /* The same request fetched again, with the wrong CSR: refused. */
    assert_int_equal(fetch(T.csr2, NULL, T.res.request_id), CLC_ERR_CRYPTO);
    assert_non_null(strstr(T.ei.msg, "public key is not the CSR's"));
    assert_null(T.res.chain);
}

static void test_adcs_pending_approved_and_denied(void **state)
{
    char id[CLC_CA_ID_MAX];
    char path[128];
    (void)state;
    assert_int_equal(adcs("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    assert_true(T.res.retry_after_s > 0);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    assert_int_equal(fetch(T.csr, NULL, id), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(control("POST", path, "{}"), 200);
    assert_int_equal(fetch(T.csr, NULL, id), CLC_OK);
    expect_issued_for(T.csr);

    assert_int_equal(submit(T.csr, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    snprintf(path, sizeof path, "/control/ca/requests/%s/deny", id);
    assert_int_equal(control("POST", path, "{}"), 200);
    assert_int_equal(fetch(T.csr, NULL, id), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "0x80094014");

    /* An id the CA never gave. */
    assert_int_equal(fetch(T.csr, NULL, "999999"), CLC_ERR_NOT_FOUND);
    assert_false(T.res.retryable);
}

static void test_adcs_denied_at_once(void **state)
{
    (void)state;
    assert_int_equal(adcs("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, "NoSuchTemplate"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "0x80094800");
    assert_non_null(strstr(T.res.reason, "NoSuchTemplate"));

    assert_int_equal(submit(T.csr_small, "WebServer"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "0x80094811");

    assert_int_equal(adcs("limited", T.pw_limited), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "0x80094012");
}

static void test_adcs_wrong_password_unreachable_503(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    char url[128];
    (void)state;

    assert_int_equal(adcs("renewer", T.pw_wrong), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_ERR_AUTH);
    assert_int_equal(T.res.disposition, CLC_CA_ERROR);
    assert_false(T.res.retryable);
    assert_null(strstr(T.ei.msg, "not-the-password"));

    /* A port nobody listens on: bind, read the port, close. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/certsrv", ntohs(sa.sin_port));
    assert_int_equal(make_ca("adcs", url, "renewer", T.pw_renewer, T.anchors), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_ERR_NET);
    assert_true(T.res.retryable);

    /* The CA says 503 once (fault injection): retryable, then fine. */
    assert_int_equal(control("POST", "/control/faults",
                             "{\"service\":\"ca\",\"method\":\"POST\",\"path\":\"/certsrv/*\","
                             "\"status\":503,\"count\":1}") /
                         100,
                     2);
    assert_int_equal(adcs("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_ERR_UNAVAILABLE);
    assert_true(T.res.retryable);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_OK);
    expect_issued_for(T.csr);

    /* Basic over plain http is refused before anything is sent. */
    snprintf(url, sizeof url, "http://127.0.0.1:%d/certsrv", ntohs(sa.sin_port));
    assert_int_equal(make_ca("adcs", url, "renewer", T.pw_renewer, T.anchors), CLC_ERR_CONFIG);
    assert_non_null(strstr(T.ei.msg, "plain http"));
}

static void test_adcs_untrusted_anchor(void **state)
{
    struct pki other;
    char path[300];
    (void)state;
    /* Anchors of another CA: the chain does not verify, nothing is issued. */
    assert_int_equal(pki_make(&other, clc_clock_now(NULL)), 0);
    char *pem = pki_pem(&other.root, 1);
    snprintf(path, sizeof path, "%s/other-root.pem", T.dir);
    write_text(path, pem);
    free(pem);
    char url[300];
    snprintf(url, sizeof url, "%s/certsrv", svc("ca"));
    assert_int_equal(make_ca("adcs", url, "renewer", T.pw_renewer, path), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServer"), CLC_ERR_CRYPTO);
    assert_non_null(strstr(T.ei.msg, "does not verify to the trust anchors"));
    assert_null(T.res.chain);
    pki_free(&other);
}

static void test_est(void **state)
{
    char id[CLC_CA_ID_MAX];
    char path[128];
    long long rid = 0;
    (void)state;
    assert_int_equal(est("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, NULL), CLC_OK);
    expect_issued_for(T.csr);
    assert_int_equal(submit(T.csr, "WebServerShort"), CLC_OK);
    expect_issued_for(T.csr);

    /* Pending with Retry-After, then approved. */
    assert_int_equal(submit(T.csr2, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    assert_true(T.res.retry_after_s > 0);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    assert_int_equal(fetch(T.csr2, "WebServerApproval", id), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    /* The id names the CSR: another CSR cannot use it. */
    assert_int_equal(fetch(T.csr, "WebServerApproval", id), CLC_ERR_INVALID);
    rid = newest_pending();
    assert_true(rid > 0);
    snprintf(path, sizeof path, "/control/ca/requests/%lld/approve", rid);
    assert_int_equal(control("POST", path, "{}"), 200);
    assert_int_equal(fetch(T.csr2, "WebServerApproval", id), CLC_OK);
    expect_issued_for(T.csr2);

    /* Pending, then denied by the officer. */
    struct clc_ca_csr *c3 = NULL;
    struct clc_signer *k3 = NULL;
    assert_int_equal(clc_signer_generate("EC", 256, &k3, NULL), CLC_OK);
    c3 = csr_for(clc_signer_pkey(k3), "third.example.test");
    assert_int_equal(submit(c3, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    snprintf(id, sizeof id, "%s", T.res.request_id);
    rid = newest_pending();
    snprintf(path, sizeof path, "/control/ca/requests/%lld/deny", rid);
    assert_int_equal(control("POST", path, "{}"), 200);
    assert_int_equal(fetch(c3, "WebServerApproval", id), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_true(strncmp(T.res.code, "HTTP 4", 6) == 0);
    clc_ca_csr_free(c3);
    clc_signer_free(k3);

    /* Denied at once: key too small; no enroll right. */
    assert_int_equal(submit(T.csr_small, NULL), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_non_null(strstr(T.res.reason, "0x80094811"));
    assert_int_equal(est("limited", T.pw_limited), CLC_OK);
    assert_int_equal(submit(T.csr, "WebServerApproval"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.code, "HTTP 403");

    /* Wrong password; unknown label (a configuration error, not a denial). */
    assert_int_equal(est("renewer", T.pw_wrong), CLC_OK);
    assert_int_equal(submit(T.csr, NULL), CLC_ERR_AUTH);
    assert_int_equal(est("renewer", T.pw_renewer), CLC_OK);
    assert_int_equal(submit(T.csr, "NoSuchLabel"), CLC_ERR_CONFIG);
    /* cacerts works without credentials being checked. */
    STACK_OF(X509) *cas = NULL;
    assert_int_equal(clc_ca_cacerts(T.ca, &cas, &T.ei), CLC_OK);
    assert_true(sk_X509_num(cas) >= 1);
    sk_X509_pop_free(cas, X509_free);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adcs_issued),
        cmocka_unit_test(test_adcs_pending_approved_and_denied),
        cmocka_unit_test(test_adcs_denied_at_once),
        cmocka_unit_test(test_adcs_wrong_password_unreachable_503),
        cmocka_unit_test(test_adcs_untrusted_anchor),
        cmocka_unit_test(test_est),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
