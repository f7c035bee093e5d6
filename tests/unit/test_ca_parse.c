/* Parsers of the CA clients, without a network: AD CS pages (saved fixtures
 * of every disposition and garbage), PKCS#7 in each encoding, chain ordering
 * whatever order the CA sends, CSR input, and how each auth method is wired
 * onto libcurl (the Kerberos and NTLM paths the emulator cannot exercise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/pem.h>

#include "ca-helpers/ca_test_pki.h"
#include "ca/ca_int.h"
#include "core/b64.h"
#include "core/config.h"
#include "core/file.h"
#include "core/log.h"

static struct pki P;

static char *fixture(const char *name, size_t *len)
{
    char path[512];
    char *s = NULL;
    snprintf(path, sizeof path, "%s/ca-client/%s", CLC_FIXTURES, name);
    if (clc_file_read(path, 1024 * 1024, &s, len, NULL) != CLC_OK)
        fail_msg("cannot read fixture %s", path);
    return s;
}

static void submit_page(const char *name, struct clc_adcs_disp *d)
{
    size_t len = 0;
    char *s = fixture(name, &len);
    clc_adcs_parse_submit_page(s, len, d);
    free(s);
}

static void status_page(const char *name, struct clc_adcs_disp *d)
{
    size_t len = 0;
    char *s = fixture(name, &len);
    clc_adcs_parse_status_page(s, len, d);
    free(s);
}

static void test_submit_pages(void **state)
{
    struct clc_adcs_disp d;
    (void)state;
    submit_page("submit-issued.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_ISSUED);
    assert_string_equal(d.request_id, "42");

    submit_page("submit-pending.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_PENDING);
    assert_string_equal(d.request_id, "43");

    submit_page("submit-denied-template.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_DENIED);
    assert_string_equal(d.request_id, "44");
    assert_string_equal(d.code, "0x80094800");
    assert_non_null(strstr(d.message, "not supported by the Active Directory Certificate "
                                      "Services policy: NoSuchTemplate."));
    assert_int_equal(strncmp(d.message, "Denied by Policy Module 0x80094800", 34), 0);

    submit_page("submit-denied-enroll.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_DENIED);
    assert_string_equal(d.request_id, "45");
    assert_string_equal(d.message, "Denied by Policy Module");
    assert_string_equal(d.code, "");

    submit_page("submit-denied-entity.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_DENIED);
    assert_string_equal(d.code, "0x80094811");
    assert_non_null(strstr(d.message, "minimum size required"));
    assert_null(strchr(d.message, '&'));

    submit_page("submit-error-parsing.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_ERROR);
    assert_string_equal(d.code, "0x80094001");
    assert_int_equal(strncmp(d.message, "Error Parsing Request", 21), 0);

    submit_page("garbage-login.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
    assert_string_equal(d.title, "Sign in");
    submit_page("garbage-pending-no-id.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
    submit_page("garbage-binary.bin", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
    clc_adcs_parse_submit_page("", 0, &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
    /* A link whose id is not a number is no link. */
    const char *odd = "<a href=\"certnew.cer?ReqID=abc&amp;Enc=b64\">x</a>";
    clc_adcs_parse_submit_page(odd, strlen(odd), &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
}

static void test_status_pages(void **state)
{
    struct clc_adcs_disp d;
    (void)state;
    status_page("status-pending.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_PENDING);
    assert_string_equal(d.message, "Taken Under Submission");

    status_page("status-denied-officer.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_DENIED);
    assert_string_equal(d.code, "0x80094014");
    assert_string_equal(d.message, "Denied by sec\\admin");

    status_page("status-denied-enroll.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_DENIED);
    assert_string_equal(d.code, "0x80094012");

    status_page("status-not-found.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_NOT_FOUND);
    assert_string_equal(d.code, "0x80094004");

    status_page("garbage-login.html", &d);
    assert_int_equal(d.page, CLC_ADCS_PAGE_UNKNOWN);
}

static void test_p7_encodings(void **state)
{
    X509 *certs[2] = {P.root, P.inter};
    size_t len = 0, blen = 0;
    unsigned char *der = pki_p7(certs, 2, &len);
    char *b64 = NULL;
    STACK_OF(X509) *sk = NULL;
    (void)state;

    assert_int_equal(clc_ca_p7_parse(der, len, &sk, NULL), CLC_OK);
    assert_int_equal(sk_X509_num(sk), 2);
    sk_X509_pop_free(sk, X509_free);

    /* EST: bare base64 with line breaks. */
    assert_int_equal(clc_b64_encode(der, len, &b64, &blen), CLC_OK);
    char *folded = calloc(1, blen * 2 + 8);
    for (size_t i = 0, o = 0; i < blen; i++) {
        folded[o++] = b64[i];
        if (i % 64 == 63) {
            folded[o++] = '\r';
            folded[o++] = '\n';
        }
    }
    assert_int_equal(clc_ca_p7_parse(folded, strlen(folded), &sk, NULL), CLC_OK);
    assert_int_equal(sk_X509_num(sk), 2);
    sk_X509_pop_free(sk, X509_free);

    /* AD CS: PKCS#7 armoured as CERTIFICATE, CRLF. */
    char *armoured = calloc(1, strlen(folded) + 128);
    sprintf(armoured, "-----BEGIN CERTIFICATE-----\r\n%s\r\n-----END CERTIFICATE-----\r\n", folded);
    assert_int_equal(clc_ca_p7_parse(armoured, strlen(armoured), &sk, NULL), CLC_OK);
    assert_int_equal(sk_X509_num(sk), 2);
    sk_X509_pop_free(sk, X509_free);

    /* Garbage in each form. */
    assert_int_equal(clc_ca_p7_parse("hello world!", 12, &sk, NULL), CLC_ERR_PARSE);
    assert_int_equal(clc_ca_p7_parse("aGVsbG8=", 8, &sk, NULL), CLC_ERR_PARSE);
    assert_int_equal(clc_ca_p7_parse("\x30\x03\x02\x01\x01", 5, &sk, NULL), CLC_ERR_PARSE);
    assert_int_equal(clc_ca_p7_parse("", 0, &sk, NULL), CLC_ERR_PARSE);
    assert_null(sk);
    /* A certificate is not a PKCS#7. */
    X509 *one[1] = {P.root};
    char *pem = pki_pem(one, 1);
    assert_int_equal(clc_ca_p7_parse(pem, strlen(pem), &sk, NULL), CLC_ERR_PARSE);
    X509 *x = NULL;
    assert_int_equal(clc_ca_cert_parse(pem, strlen(pem), &x, NULL), CLC_OK);
    assert_int_equal(X509_cmp(x, P.root), 0);
    X509_free(x);
    assert_int_equal(clc_ca_cert_parse(armoured, strlen(armoured), &x, NULL), CLC_ERR_PARSE);
    free(pem);
    free(armoured);
    free(folded);
    free(b64);
    free(der);
}

static void test_chain_order(void **state)
{
    struct clc_signer *k = NULL, *k2 = NULL;
    STACK_OF(X509) *set = sk_X509_new_null();
    STACK_OF(X509) *chain = NULL;
    struct clc_errinfo ei;
    (void)state;

    assert_int_equal(clc_signer_generate("EC", 256, &k, NULL), CLC_OK);
    assert_int_equal(clc_signer_generate("EC", 256, &k2, NULL), CLC_OK);
    X509 *leaf = pki_leaf(&P, k, "leaf", P.now - 60, P.now + 86400);
    X509 *other = pki_leaf(&P, k2, "other", P.now - 60, P.now + 86400);
    /* Root first, leaf last: the order AD CS p7b may use. */
    sk_X509_push(set, P.root);
    sk_X509_push(set, P.inter);
    sk_X509_push(set, leaf);
    assert_int_equal(clc_ca_chain_order(NULL, set, NULL, &chain, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(chain), 3);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 1), P.inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 2), P.root), 0);
    sk_X509_pop_free(chain, X509_free);

    /* Two leaves: ambiguous by structure, decided by the key or the hint. */
    sk_X509_push(set, other);
    assert_int_equal(clc_ca_chain_order(NULL, set, NULL, &chain, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "cannot tell the leaf"));
    assert_int_equal(clc_ca_chain_order(NULL, set, clc_signer_pkey(k2), &chain, &ei), CLC_OK);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), other), 0);
    assert_int_equal(sk_X509_num(chain), 3); /* the unrelated leaf is dropped */
    sk_X509_pop_free(chain, X509_free);
    assert_int_equal(clc_ca_chain_order(leaf, set, NULL, &chain, &ei), CLC_OK);
    assert_int_equal(X509_cmp(sk_X509_value(chain, 0), leaf), 0);
    sk_X509_pop_free(chain, X509_free);

    /* Leaf only (no issuer in the set). */
    STACK_OF(X509) *one = sk_X509_new_null();
    sk_X509_push(one, leaf);
    assert_int_equal(clc_ca_chain_order(NULL, one, NULL, &chain, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(chain), 1);
    sk_X509_pop_free(chain, X509_free);
    sk_X509_free(one);
    sk_X509_free(set);
    X509_free(leaf);
    X509_free(other);
    clc_signer_free(k);
    clc_signer_free(k2);
}

static void test_csr_input(void **state)
{
    struct clc_signer *k = NULL;
    struct clc_ca_csr *c = NULL;
    struct clc_errinfo ei;
    size_t dlen = 0;
    (void)state;

    assert_int_equal(clc_signer_generate("EC", 256, &k, NULL), CLC_OK);
    char *pem = pki_csr_pem(k, "x.example.test", NULL);
    unsigned char *der = pki_csr_der(k, "x.example.test", &dlen);
    assert_int_equal(clc_ca_csr_parse(pem, strlen(pem), &c, &ei), CLC_OK);
    assert_non_null(strstr(clc_ca_csr_pem(c), "BEGIN CERTIFICATE REQUEST"));
    clc_ca_csr_free(c);
    assert_int_equal(clc_ca_csr_parse(der, dlen, &c, &ei), CLC_OK);
    size_t l2 = 0;
    assert_int_equal(l2 = 0, 0);
    clc_ca_csr_der(c, &l2);
    assert_int_equal(l2, dlen);
    clc_ca_csr_free(c);

    /* certreq writes the "NEW" variant. */
    char *nw = calloc(1, strlen(pem) + 16);
    const char *body = strchr(pem, '\n') + 1;
    size_t blen = (size_t)(strstr(pem, "-----END") - body);
    sprintf(nw,
            "-----BEGIN NEW CERTIFICATE REQUEST-----\n%.*s-----END NEW CERTIFICATE "
            "REQUEST-----\n",
            (int)blen, body);
    assert_int_equal(clc_ca_csr_parse(nw, strlen(nw), &c, &ei), CLC_OK);
    clc_ca_csr_free(c);

    /* Not a CSR: a certificate, text, empty, trailing bytes. */
    X509 *one[1] = {P.root};
    char *cert = pki_pem(one, 1);
    assert_int_equal(clc_ca_csr_parse(cert, strlen(cert), &c, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "not a certificate request"));
    assert_int_equal(clc_ca_csr_parse("hello", 5, &c, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_ca_csr_parse("", 0, &c, &ei), CLC_ERR_INVALID);
    unsigned char *longer = malloc(dlen + 1);
    memcpy(longer, der, dlen);
    longer[dlen] = 0;
    assert_int_equal(clc_ca_csr_parse(longer, dlen + 1, &c, &ei), CLC_ERR_INVALID);
    /* A tampered request: its signature no longer verifies. */
    der[dlen - 5] ^= 0x01;
    assert_int_equal(clc_ca_csr_parse(der, dlen, &c, &ei), CLC_ERR_INVALID);
    assert_null(c);
    /* Unreadable file. */
    assert_int_equal(clc_ca_csr_from_file("/nonexistent/req.csr", &c, &ei), CLC_ERR_NOT_FOUND);
    assert_non_null(strstr(ei.msg, "/nonexistent/req.csr"));

    free(longer);
    free(cert);
    free(nw);
    free(pem);
    free(der);
    clc_signer_free(k);
}

static void test_auth_wiring(void **state)
{
    struct clc_ca_conf c;
    struct clc_ca_auth_plan p;
    struct clc_errinfo ei;
    struct clc_secret *pw = NULL;
    (void)state;

    assert_int_equal(clc_secret_new("pw", 2, &pw), CLC_OK);
    memset(&c, 0, sizeof c);
    c.name = "corp";
    c.url = "https://ca.corp.example/certsrv";

    c.auth = CLC_CA_AUTH_NEGOTIATE;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_OK);
    assert_int_equal(p.httpauth, (long)CURLAUTH_NEGOTIATE);
    assert_true(p.empty_userpwd);
    assert_false(p.send_password);

    c.auth = CLC_CA_AUTH_NTLM;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_ERR_CONFIG); /* no credentials */
    c.username = "CORP\\svc-certlc";
    c.password = pw;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_OK);
    assert_int_equal(p.httpauth, (long)CURLAUTH_NTLM);
    assert_true(p.force_http11);
    assert_true(p.send_password);

    c.auth = CLC_CA_AUTH_BASIC;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_OK);
    assert_int_equal(p.httpauth, (long)CURLAUTH_BASIC);
    assert_false(p.force_http11);

    /* Never credentials over plain http; anonymous is allowed. */
    c.url = "http://ca.corp.example/certsrv";
    for (int a = CLC_CA_AUTH_BASIC; a <= CLC_CA_AUTH_CERT; a++) {
        c.auth = (enum clc_ca_auth)a;
        assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_ERR_CONFIG);
    }
    assert_non_null(strstr(ei.msg, "plain http"));
    c.auth = CLC_CA_AUTH_NONE;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_OK);
    assert_int_equal(p.httpauth, 0);

    c.url = "https://ca.corp.example/certsrv";
    c.auth = CLC_CA_AUTH_CERT;
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_ERR_CONFIG);
    c.client_cert = "/etc/certlc/client.pem";
    c.client_key = "/etc/certlc/client.key";
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_OK);
    assert_true(p.client_cert);
    assert_int_equal(p.httpauth, 0);
    c.url = "ftp://x";
    assert_int_equal(clc_ca_auth_plan(&c, &p, &ei), CLC_ERR_CONFIG);
    clc_secret_free(pw);
}

/* The Kerberos environment is set once for the process from every Negotiate
 * CA; two that disagree are a configuration error naming both. */
static void test_kerberos_env(void **state)
{
    static const struct clc_config_key schema[] = {{"ca.*", CLC_CFG_OBJ, "CAs"}};
    struct clc_config *cfg = NULL;
    struct clc_errinfo ei;
    const char *same = "{\"ca\": {"
                       "\"a\": {\"type\": \"adcs\", \"url\": \"https://a.example/certsrv\","
                       " \"auth\": \"negotiate\", \"keytab\": \"/etc/certlc/svc.keytab\"},"
                       "\"b\": {\"type\": \"adcs\", \"url\": \"https://b.example/certsrv\","
                       " \"auth\": \"negotiate\", \"keytab\": \"/etc/certlc/svc.keytab\","
                       " \"ccache\": \"FILE:/run/certlc/krb5cc\"},"
                       "\"c\": {\"type\": \"est\", \"url\": \"https://c.example/.well-known/est\","
                       " \"auth\": \"none\"}}}";
    const char *differ = "{\"ca\": {"
                         "\"a\": {\"type\": \"adcs\", \"url\": \"https://a.example/certsrv\","
                         " \"auth\": \"negotiate\", \"keytab\": \"/etc/certlc/one.keytab\"},"
                         "\"b\": {\"type\": \"adcs\", \"url\": \"https://b.example/certsrv\","
                         " \"auth\": \"negotiate\", \"keytab\": \"/etc/certlc/two.keytab\"}}}";
    (void)state;
    unsetenv("KRB5_CLIENT_KTNAME");
    unsetenv("KRB5CCNAME");
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_config_load_text(same, strlen(same), "t", NULL, schema, 1, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_ca_kerberos_env(cfg, &ei), CLC_OK);
    assert_string_equal(getenv("KRB5_CLIENT_KTNAME"), "/etc/certlc/svc.keytab");
    assert_string_equal(getenv("KRB5CCNAME"), "FILE:/run/certlc/krb5cc");
    clc_config_free(cfg);
    cfg = NULL;
    unsetenv("KRB5_CLIENT_KTNAME");
    unsetenv("KRB5CCNAME");
    assert_int_equal(clc_config_load_text(differ, strlen(differ), "t", NULL, schema, 1, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_ca_kerberos_env(cfg, &ei), CLC_ERR_CONFIG);
    assert_non_null(strstr(ei.msg, "'a' and 'b'"));
    assert_non_null(strstr(ei.msg, "one per process"));
    assert_null(getenv("KRB5_CLIENT_KTNAME")); /* nothing half set */
    clc_config_free(cfg);
}

static int setup(void **state)
{
    (void)state;
    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    return pki_make(&P, clc_clock_now(NULL));
}

static int teardown(void **state)
{
    (void)state;
    pki_free(&P);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_pages), cmocka_unit_test(test_status_pages),
        cmocka_unit_test(test_p7_encodings), cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_csr_input),    cmocka_unit_test(test_auth_wiring),
        cmocka_unit_test(test_kerberos_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
