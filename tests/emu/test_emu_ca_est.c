/* The emulated CA over EST (RFC 7030) and its CRL and control API, HTTPS
 * verified: cacerts, simpleenroll (labels, pending 202 + Retry-After,
 * denials), simplereenroll, revocation with a reason in the re-signed CRL,
 * CRL refresh by the emulator clock. Default config (EC CA keys). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

#include "emulator/state.h"
#include "test_emu_ca_fixture.h"

static EVP_PKEY *key1, *key2;

static int setup(void **state)
{
    (void)state;
    key1 = cafx_ec();
    key2 = cafx_ec();
    if (!key1 || !key2)
        return -1;
    return cafx_setup(NULL);
}

static int teardown(void **state)
{
    (void)state;
    cafx_teardown();
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
    return 0;
}

static long est(const char *op, const char *account, const char *body, struct clc_http_resp *resp)
{
    char path[256];

    snprintf(path, sizeof path, "/.well-known/est/%s", op);
    return cafx_req(body ? "POST" : "GET", path, account, NULL, body ? "application/pkcs10" : NULL,
                    body, body ? strlen(body) : 0, resp);
}

/* POSTs a CSR for key/cn/sans to op; returns the status. */
static long enroll(const char *op, const char *account, EVP_PKEY *k, const char *cn,
                   const char *const *sans, struct clc_http_resp *resp)
{
    char *b64 = cafx_csr_b64(k, cn, sans);
    long st;

    assert_non_null(b64);
    st = est(op, account, b64, resp);
    free(b64);
    return st;
}

static X509 *issued(const struct clc_http_resp *resp)
{
    STACK_OF(X509) * sk;
    X509 *c;

    assert_string_equal(clc_http_resp_header(resp, "Content-Type"),
                        "application/pkcs7-mime; smime-type=certs-only");
    sk = cafx_p7_certs(resp->body.data, resp->body.len);
    assert_non_null(sk);
    assert_int_equal(sk_X509_num(sk), 1);
    c = X509_dup(sk_X509_value(sk, 0));
    sk_X509_pop_free(sk, X509_free);
    return c;
}

static int64_t days_left(X509 *c)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(X509_get0_notAfter(c), &tm), 1);
    return ((int64_t)timegm(&tm) - emu_now(cafx.e) + 3600) / 86400;
}

static char *template_oid(X509 *c)
{
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.311.21.7", 1);
    int i = X509_get_ext_by_OBJ(c, o, -1);
    const unsigned char *p;
    ASN1_OCTET_STRING *d;
    STACK_OF(ASN1_TYPE) * seq;
    char txt[160];

    ASN1_OBJECT_free(o);
    assert_true(i >= 0);
    d = X509_EXTENSION_get_data(X509_get_ext(c, i));
    p = ASN1_STRING_get0_data(d);
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(d));
    assert_non_null(seq);
    OBJ_obj2txt(txt, sizeof txt, sk_ASN1_TYPE_value(seq, 0)->value.object, 1);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return strdup(txt);
}

/* The OID the control API lists for a template. */
static char *listed_oid(const char *name)
{
    struct clc_http_resp resp;
    cJSON *j, *it;
    char *oid = NULL;

    assert_int_equal(cafx_admin("GET", "/control/ca/templates", NULL, &resp), 200);
    j = cafx_json(&resp);
    cJSON_ArrayForEach(
        it,
        cJSON_GetObjectItemCaseSensitive(
            j, "templates")) if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "name")->valuestring,
                                        name) == 0) oid =
        strdup(cJSON_GetObjectItemCaseSensitive(it, "oid")->valuestring);
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    assert_non_null(oid);
    return oid;
}

static void test_cacerts(void **state)
{
    struct clc_http_resp resp;
    STACK_OF(X509) * sk;

    (void)state;
    /* No authentication for the CA certificates (RFC 7030 4.1.1). */
    assert_int_equal(est("cacerts", NULL, NULL, &resp), 200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "application/pkcs7-mime");
    assert_null(strstr(resp.body.data, "-----BEGIN"));
    sk = cafx_p7_certs(resp.body.data, resp.body.len);
    assert_non_null(sk);
    assert_int_equal(sk_X509_num(sk), 2);
    sk_X509_pop_free(sk, X509_free);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(est("WebServerShort/cacerts", NULL, NULL, &resp), 200);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(est("NoSuchLabel/cacerts", NULL, NULL, &resp), 404);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(est("csrattrs", NULL, NULL, &resp), 204);
    clc_http_resp_cleanup(&resp);
}

static void test_simpleenroll(void **state)
{
    static const char *const sans[] = {"DNS:est.example.test", NULL};
    struct clc_http_resp resp;
    char *oid, *want;
    X509 *c;

    (void)state;
    assert_int_equal(enroll("simpleenroll", "renewer", key1, "est.example.test", sans, &resp), 200);
    c = issued(&resp);
    clc_http_resp_cleanup(&resp);
    assert_true(cafx_same_key(c, key1));
    assert_int_equal(days_left(c), 365);
    oid = template_oid(c);
    want = listed_oid("WebServer");
    assert_string_equal(oid, want);
    free(oid);
    free(want);
    X509_free(c);
    /* A label selects the template. */
    assert_int_equal(
        enroll("WebServerShort/simpleenroll", "renewer", key1, "est.example.test", sans, &resp),
        200);
    c = issued(&resp);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(days_left(c), 5);
    X509_free(c);
    assert_int_equal(enroll("NoSuchLabel/simpleenroll", "renewer", key1, "x", NULL, &resp), 404);
    clc_http_resp_cleanup(&resp);
}

static void test_pending_202(void **state)
{
    struct clc_http_resp resp, ctl;
    char *b64 = cafx_csr_b64(key2, "wait.example.test", NULL);
    char path[96];
    cJSON *j, *it;
    int64_t id = 0;
    int n = 0;
    X509 *c;

    (void)state;
    assert_non_null(b64);
    assert_int_equal(est("WebServerApproval/simpleenroll", "renewer", b64, &resp), 202);
    assert_string_equal(clc_http_resp_header(&resp, "Retry-After"), "60");
    clc_http_resp_cleanup(&resp);
    /* The client repeats the same POST: still one request, still pending. */
    assert_int_equal(est("WebServerApproval/simpleenroll", "renewer", b64, &resp), 202);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("GET", "/control/ca/requests", NULL, &ctl), 200);
    j = cafx_json(&ctl);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "requests"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "template")->valuestring,
                   "WebServerApproval") == 0) {
            n++;
            id = (int64_t)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(it, "status")->valuestring,
                                "pending");
            assert_int_equal(cJSON_GetObjectItemCaseSensitive(it, "disposition")->valueint, 5);
        }
    }
    cJSON_Delete(j);
    clc_http_resp_cleanup(&ctl);
    assert_int_equal(n, 1);
    snprintf(path, sizeof path, "/control/ca/requests/%lld/approve", (long long)id);
    assert_int_equal(cafx_admin("POST", path, NULL, &ctl), 200);
    clc_http_resp_cleanup(&ctl);
    assert_int_equal(est("WebServerApproval/simpleenroll", "renewer", b64, &resp), 200);
    c = issued(&resp);
    assert_true(cafx_same_key(c, key2));
    X509_free(c);
    clc_http_resp_cleanup(&resp);
    free(b64);
}

static void test_denied(void **state)
{
    struct clc_http_resp resp;
    EVP_PKEY *small = cafx_rsa(1024);

    (void)state;
    assert_non_null(small);
    assert_int_equal(
        enroll("WebServerApproval/simpleenroll", "limited", key1, "x.example.test", NULL, &resp),
        403);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "text/plain");
    assert_non_null(strstr(resp.body.data, "0x80094012"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(enroll("simpleenroll", "renewer", small, "x.example.test", NULL, &resp), 400);
    assert_non_null(strstr(resp.body.data, "0x80094811"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(enroll("simpleenroll", NULL, key1, "x.example.test", NULL, &resp), 401);
    assert_non_null(clc_http_resp_header(&resp, "WWW-Authenticate"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(est("simpleenroll", "renewer", "not base64 at all!", &resp), 400);
    assert_non_null(strstr(resp.body.data, "Error Parsing Request"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_req("POST", "/.well-known/est/simpleenroll", "renewer", NULL,
                              "text/plain", "abc", 3, &resp),
                     415);
    clc_http_resp_cleanup(&resp);
    EVP_PKEY_free(small);
}

static void test_simplereenroll(void **state)
{
    static const char *const sans[] = {"DNS:renew.example.test", NULL};
    static const char *const other[] = {"DNS:other.example.test", NULL};
    struct clc_http_resp resp;
    char *a, *b;
    X509 *c1, *c2;

    (void)state;
    assert_int_equal(
        enroll("WebServerShort/simpleenroll", "renewer", key1, "renew.example.test", sans, &resp),
        200);
    c1 = issued(&resp);
    clc_http_resp_cleanup(&resp);
    /* New key, same names: renewed under the earlier certificate's template. */
    assert_int_equal(enroll("simplereenroll", "renewer", key2, "renew.example.test", sans, &resp),
                     200);
    c2 = issued(&resp);
    clc_http_resp_cleanup(&resp);
    assert_true(cafx_same_key(c2, key2));
    a = template_oid(c1);
    b = template_oid(c2);
    assert_string_equal(a, b);
    assert_int_equal(days_left(c2), 5);
    free(a);
    free(b);
    X509_free(c1);
    X509_free(c2);
    /* Names no earlier certificate had: refused. */
    assert_int_equal(enroll("simplereenroll", "renewer", key2, "renew.example.test", other, &resp),
                     400);
    clc_http_resp_cleanup(&resp);
}

static X509_CRL *get_crl(const char *file)
{
    struct clc_http_resp resp;
    const unsigned char *p;
    X509_CRL *crl;
    char path[128];

    snprintf(path, sizeof path, "/CertEnroll/%s", file);
    assert_int_equal(cafx_req("GET", path, NULL, NULL, NULL, NULL, 0, &resp), 200);
    p = (const unsigned char *)resp.body.data;
    crl = d2i_X509_CRL(NULL, &p, (long)resp.body.len);
    clc_http_resp_cleanup(&resp);
    assert_non_null(crl);
    return crl;
}

static X509 *get_cert(const char *file)
{
    struct clc_http_resp resp;
    const unsigned char *p;
    X509 *c;
    char path[128];

    snprintf(path, sizeof path, "/CertEnroll/%s", file);
    assert_int_equal(cafx_req("GET", path, NULL, NULL, NULL, NULL, 0, &resp), 200);
    p = (const unsigned char *)resp.body.data;
    c = d2i_X509(NULL, &p, (long)resp.body.len);
    clc_http_resp_cleanup(&resp);
    assert_non_null(c);
    return c;
}

static long crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    long v;

    assert_non_null(n);
    v = ASN1_INTEGER_get(n);
    ASN1_INTEGER_free(n);
    return v;
}

static void test_revoke_crl(void **state)
{
    static const char *const sans[] = {"DNS:revoke.example.test", NULL};
    struct clc_http_resp resp;
    X509 *c, *issuing = get_cert("certlc-issuing-ca.crt"), *root = get_cert("certlc-root-ca.crt");
    X509_CRL *before = get_crl("certlc-issuing-ca.crl"), *after, *later, *rcrl;
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *reason;
    cJSON *j;
    char path[96];
    int64_t id;
    struct tm t1, t2;

    (void)state;
    assert_int_equal(X509_CRL_verify(before, X509_get0_pubkey(issuing)), 1);
    assert_int_equal(enroll("simpleenroll", "renewer", key1, "revoke.example.test", sans, &resp),
                     200);
    c = issued(&resp);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(X509_CRL_get0_by_cert(before, &rev, c), 0);
    /* The request id of that certificate, from the control API. */
    assert_int_equal(cafx_admin("GET", "/control/ca/requests", NULL, &resp), 200);
    j = cafx_json(&resp);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "requests");
    id = (int64_t)cJSON_GetObjectItemCaseSensitive(
             cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1), "id")
             ->valuedouble;
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);

    snprintf(path, sizeof path, "/control/ca/requests/%lld/revoke", (long long)id);
    assert_int_equal(cafx_admin("POST", path, "{\"reason\": \"nonsense\"}", &resp), 400);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("POST", path, "{\"reason\": \"keyCompromise\"}", &resp), 200);
    j = cafx_json(&resp);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "status")->valuestring, "revoked");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "revocation_reason")->valuestring,
                        "keyCompromise");
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("POST", path, "{\"reason\": 1}", &resp), 409);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("POST", "/control/ca/requests/999999/revoke", NULL, &resp), 404);
    clc_http_resp_cleanup(&resp);

    after = get_crl("certlc-issuing-ca.crl");
    assert_int_equal(X509_CRL_verify(after, X509_get0_pubkey(issuing)), 1);
    assert_true(crl_number(after) > crl_number(before));
    assert_int_equal(X509_CRL_get0_by_cert(after, &rev, c), 1);
    reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), 1);
    ASN1_ENUMERATED_free(reason);
    /* nextUpdate = thisUpdate + 7 days; a week later the CRL is signed anew. */
    assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(after), &t1), 1);
    assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_nextUpdate(after), &t2), 1);
    assert_int_equal(timegm(&t2) - timegm(&t1), 7 * 86400);
    emu_clock_advance(cafx.e, 7 * 86400);
    later = get_crl("certlc-issuing-ca.crl");
    assert_true(crl_number(later) > crl_number(after));
    assert_int_equal(ASN1_TIME_to_tm(X509_CRL_get0_lastUpdate(later), &t2), 1);
    assert_true(llabs((long long)(timegm(&t2) - emu_now(cafx.e))) <= 5);
    assert_int_equal(X509_CRL_get0_by_cert(later, &rev, c), 1);
    /* PEM variant, and the root's CRL signed by the root. */
    assert_int_equal(cafx_req("GET", "/CertEnroll/certlc-issuing-ca.crl?Enc=b64", NULL, NULL, NULL,
                              NULL, 0, &resp),
                     200);
    assert_memory_equal(resp.body.data, "-----BEGIN X509 CRL-----", 24);
    clc_http_resp_cleanup(&resp);
    rcrl = get_crl("certlc-root-ca.crl");
    assert_int_equal(X509_CRL_verify(rcrl, X509_get0_pubkey(root)), 1);
    assert_int_equal(cafx_req("GET", "/CertEnroll/nothing.crl", NULL, NULL, NULL, NULL, 0, &resp),
                     404);
    clc_http_resp_cleanup(&resp);
    X509_CRL_free(before);
    X509_CRL_free(after);
    X509_CRL_free(later);
    X509_CRL_free(rcrl);
    X509_free(c);
    X509_free(issuing);
    X509_free(root);
}

static void test_control_reset(void **state)
{
    struct clc_http_resp resp;
    cJSON *j;

    (void)state;
    assert_int_equal(cafx_admin("GET", "/control/ca/requests/abc", NULL, &resp), 400);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("GET", "/control/ca/requests/1", NULL, &resp), 200);
    j = cafx_json(&resp);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(j, "certificate")->valuestring,
                           "-----BEGIN CERTIFICATE-----"));
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("POST", "/control/reset", NULL, &resp), 204);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_admin("GET", "/control/ca/requests", NULL, &resp), 200);
    j = cafx_json(&resp);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "requests")), 0);
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacerts),        cmocka_unit_test(test_simpleenroll),
        cmocka_unit_test(test_pending_202),    cmocka_unit_test(test_denied),
        cmocka_unit_test(test_simplereenroll), cmocka_unit_test(test_revoke_crl),
        cmocka_unit_test(test_control_reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
