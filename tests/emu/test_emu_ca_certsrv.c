/* The emulated CA over AD CS Web Enrollment (/certsrv), HTTPS verified: the
 * issued certificate field by field, pending then approved or denied,
 * denials with AD CS's codes, Basic auth, CACert downloads. RSA CA keys. */
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

#define WS_OID "1.3.6.1.4.1.311.21.8.100.200.300.400.500.600.1.1"
#define RSAONLY_OID "1.3.6.1.4.1.311.21.8.100.200.300.400.500.600.4.9"

static const char config[] =
    "{\"ca\": {\"key_type\": \"RSA\", \"templates\": ["
    "{\"name\": \"WebServer\", \"oid\": \"" WS_OID "\", \"major\": 100, \"minor\": 5,"
    " \"validity_days\": 365},"
    "{\"name\": \"WebServerShort\", \"validity_days\": 5},"
    "{\"name\": \"WebServerApproval\", \"approval\": true},"
    "{\"name\": \"RsaOnly\", \"oid\": \"" RSAONLY_OID "\", \"major\": 101, \"minor\": 7,"
    " \"key_types\": [\"RSA\"], \"ekus\": [\"serverAuth\", \"clientAuth\"],"
    " \"key_usage\": [\"digitalSignature\"], \"min_key_bits\": 3072}],"
    " \"accounts\": ["
    "{\"name\": \"renewer\", \"password\": \"renewer-password-123\"},"
    "{\"name\": \"limited\", \"templates\": [\"WebServer\", \"WebServerShort\", \"RsaOnly\"]}]}}";

static EVP_PKEY *rsa2048, *rsa3072, *ec256;

static int setup(void **state)
{
    (void)state;
    rsa2048 = cafx_rsa(2048);
    rsa3072 = cafx_rsa(3072);
    ec256 = cafx_ec();
    if (!rsa2048 || !rsa3072 || !ec256)
        return -1;
    return cafx_setup(config);
}

static int teardown(void **state)
{
    (void)state;
    cafx_teardown();
    EVP_PKEY_free(rsa2048);
    EVP_PKEY_free(rsa3072);
    EVP_PKEY_free(ec256);
    return 0;
}

/* Submits and returns the page (the caller frees resp). */
static const char *submit(const char *account, EVP_PKEY *k, const char *cn, const char *const *sans,
                          const char *tmpl, int bad_sig, struct clc_http_resp *resp)
{
    char *csr = cafx_csr(k, cn, sans, bad_sig);

    assert_non_null(csr);
    assert_int_equal(cafx_submit(account, csr, tmpl, resp), 200);
    free(csr);
    assert_string_equal(clc_http_resp_header(resp, "Content-Type"), "text/html");
    return resp->body.data;
}

static int64_t cert_time(const ASN1_TIME *t)
{
    struct tm tm;

    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static X509 *get_ca(int root)
{
    struct clc_http_resp resp;
    STACK_OF(X509) * sk;
    X509 *c = NULL;

    assert_int_equal(cafx_req("GET", "/certsrv/certnew.p7b?ReqID=CACert&Renewal=0&Enc=b64",
                              "renewer", NULL, NULL, NULL, 0, &resp),
                     200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"),
                        "application/x-pkcs7-certificates");
    sk = cafx_p7_certs(resp.body.data, resp.body.len);
    assert_non_null(sk);
    assert_int_equal(sk_X509_num(sk), 2);
    for (int i = 0; i < 2; i++) {
        X509 *x = sk_X509_value(sk, i);
        int self = X509_check_issued(x, x) == X509_V_OK;
        if (self == root)
            c = X509_dup(x);
    }
    sk_X509_pop_free(sk, X509_free);
    clc_http_resp_cleanup(&resp);
    assert_non_null(c);
    return c;
}

/* Path of an absolute emulator URL (it must point at the CA service). */
static const char *ca_path(const char *url)
{
    size_t n = strlen(cafx_url());

    assert_memory_equal(url, cafx_url(), n);
    return url + n;
}

static void check_template_ext(X509 *c, const char *oid, long major, long minor)
{
    ASN1_OBJECT *o = OBJ_txt2obj("1.3.6.1.4.1.311.21.7", 1);
    int i = X509_get_ext_by_OBJ(c, o, -1);
    ASN1_OCTET_STRING *data;
    const unsigned char *p;
    STACK_OF(ASN1_TYPE) * seq;
    char txt[160];

    ASN1_OBJECT_free(o);
    assert_true(i >= 0);
    assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(c, i)), 0);
    data = X509_EXTENSION_get_data(X509_get_ext(c, i));
    p = ASN1_STRING_get0_data(data);
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, ASN1_STRING_length(data));
    assert_non_null(seq);
    assert_int_equal(sk_ASN1_TYPE_num(seq), 3);
    assert_int_equal(sk_ASN1_TYPE_value(seq, 0)->type, V_ASN1_OBJECT);
    OBJ_obj2txt(txt, sizeof txt, sk_ASN1_TYPE_value(seq, 0)->value.object, 1);
    assert_string_equal(txt, oid);
    assert_int_equal(sk_ASN1_TYPE_value(seq, 1)->type, V_ASN1_INTEGER);
    assert_int_equal(ASN1_INTEGER_get(sk_ASN1_TYPE_value(seq, 1)->value.integer), major);
    assert_int_equal(ASN1_INTEGER_get(sk_ASN1_TYPE_value(seq, 2)->value.integer), minor);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
}

static void check_sans(X509 *c)
{
    int crit = -1;
    GENERAL_NAMES *g = X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL);
    int dns = 0, ip = 0;

    assert_non_null(g);
    assert_int_equal(crit, 0);
    /* The CSR named www twice (different case): one entry, lower-cased. */
    assert_int_equal(sk_GENERAL_NAME_num(g), 3);
    for (int i = 0; i < 3; i++) {
        GENERAL_NAME *n = sk_GENERAL_NAME_value(g, i);
        if (n->type == GEN_DNS) {
            const char *s = (const char *)ASN1_STRING_get0_data(n->d.dNSName);
            assert_true(strcmp(s, "www.example.test") == 0 || strcmp(s, "alt.example.test") == 0);
            dns++;
        } else if (n->type == GEN_IPADD) {
            static const unsigned char want[4] = {10, 1, 2, 3};
            assert_int_equal(ASN1_STRING_length(n->d.iPAddress), 4);
            assert_memory_equal(ASN1_STRING_get0_data(n->d.iPAddress), want, 4);
            ip++;
        }
    }
    assert_int_equal(dns, 2);
    assert_int_equal(ip, 1);
    GENERAL_NAMES_free(g);
}

static void check_aia_cdp(X509 *c, X509 *issuing)
{
    AUTHORITY_INFO_ACCESS *aia = X509_get_ext_d2i(c, NID_info_access, NULL, NULL);
    CRL_DIST_POINTS *cdp = X509_get_ext_d2i(c, NID_crl_distribution_points, NULL, NULL);
    struct clc_http_resp resp;
    const char *url;
    const unsigned char *p;
    X509 *got;
    X509_CRL *crl;

    assert_non_null(aia);
    assert_int_equal(sk_ACCESS_DESCRIPTION_num(aia), 1);
    ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, 0);
    assert_int_equal(OBJ_obj2nid(ad->method), NID_ad_ca_issuers);
    assert_int_equal(ad->location->type, GEN_URI);
    url = (const char *)ASN1_STRING_get0_data(ad->location->d.uniformResourceIdentifier);
    assert_int_equal(cafx_req("GET", ca_path(url), NULL, NULL, NULL, NULL, 0, &resp), 200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "application/pkix-cert");
    p = (const unsigned char *)resp.body.data;
    got = d2i_X509(NULL, &p, (long)resp.body.len);
    assert_non_null(got);
    assert_int_equal(X509_cmp(got, issuing), 0);
    X509_free(got);
    clc_http_resp_cleanup(&resp);

    assert_non_null(cdp);
    assert_int_equal(sk_DIST_POINT_num(cdp), 1);
    DIST_POINT *dp = sk_DIST_POINT_value(cdp, 0);
    assert_int_equal(dp->distpoint->type, 0);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, 0);
    assert_int_equal(gn->type, GEN_URI);
    url = (const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier);
    assert_int_equal(cafx_req("GET", ca_path(url), NULL, NULL, NULL, NULL, 0, &resp), 200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "application/pkix-crl");
    p = (const unsigned char *)resp.body.data;
    crl = d2i_X509_CRL(NULL, &p, (long)resp.body.len);
    assert_non_null(crl);
    assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(issuing)), 1);
    X509_CRL_free(crl);
    clc_http_resp_cleanup(&resp);
    AUTHORITY_INFO_ACCESS_free(aia);
    CRL_DIST_POINTS_free(cdp);
}

static void verify_chain(X509 *leaf, X509 *issuing, X509 *root)
{
    X509_STORE *st = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();

    assert_true(st && ctx && untrusted);
    sk_X509_push(untrusted, issuing);
    assert_int_equal(X509_STORE_add_cert(st, root), 1);
    assert_int_equal(X509_STORE_CTX_init(ctx, st, leaf, untrusted), 1);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)emu_now(cafx.e));
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
    if (X509_verify_cert(ctx) != 1)
        fail_msg("chain: %s", X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(st);
}

static void test_issued_fields(void **state)
{
    static const char *const sans[] = {"DNS:www.example.test", "DNS:WWW.Example.TEST",
                                       "DNS:alt.example.test", "IP:10.1.2.3", NULL};
    struct clc_http_resp resp;
    const char *page;
    int64_t id, now;
    X509 *c, *issuing = get_ca(0), *root = get_ca(1);
    const ASN1_INTEGER *serial;
    const ASN1_OCTET_STRING *aki, *ski;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    int crit = -1;
    BASIC_CONSTRAINTS *bc;

    (void)state;
    page = submit("renewer", rsa2048, "www.example.test", sans, "WebServer", 0, &resp);
    assert_non_null(strstr(page, "Certificate Issued"));
    assert_non_null(strstr(page, "The certificate you requested was issued to you."));
    id = cafx_page_cert_id(page);
    assert_true(id > 0);
    assert_non_null(strstr(page, "certnew.cer?ReqID="));
    assert_non_null(strstr(page, "&amp;Enc=b64"));
    assert_non_null(strstr(page, "location=\"certnew.cer?ReqID="));
    clc_http_resp_cleanup(&resp);
    now = emu_now(cafx.e);

    c = cafx_fetch_cert("renewer", id);
    assert_non_null(c);
    assert_true(cafx_same_key(c, rsa2048));
    assert_int_equal(X509_get_version(c), X509_VERSION_3);
    /* Serial: 16 octets, positive. */
    serial = X509_get0_serialNumber(c);
    assert_int_equal(ASN1_STRING_type(serial), V_ASN1_INTEGER);
    assert_int_equal(ASN1_STRING_length(serial), 16);
    assert_true(ASN1_STRING_get0_data(serial)[0] != 0);
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(c), X509_get_subject_name(issuing)), 0);
    /* AKI = issuer SKI; SKI = SHA-1 of the public key. */
    aki = X509_get0_authority_key_id(c);
    ski = X509_get0_subject_key_id(issuing);
    assert_non_null(aki);
    assert_non_null(ski);
    assert_int_equal(ASN1_OCTET_STRING_cmp(aki, ski), 0);
    assert_int_equal(X509_pubkey_digest(c, EVP_sha1(), md, &mdlen), 1);
    assert_non_null(X509_get0_subject_key_id(c));
    assert_int_equal(ASN1_STRING_length(X509_get0_subject_key_id(c)), (int)mdlen);
    assert_memory_equal(ASN1_STRING_get0_data(X509_get0_subject_key_id(c)), md, mdlen);
    bc = X509_get_ext_d2i(c, NID_basic_constraints, &crit, NULL);
    assert_non_null(bc);
    assert_int_equal(bc->ca, 0);
    assert_int_equal(crit, 1);
    BASIC_CONSTRAINTS_free(bc);
    /* Template: digitalSignature + keyEncipherment (critical), serverAuth only. */
    assert_int_equal(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    ASN1_BIT_STRING_free(X509_get_ext_d2i(c, NID_key_usage, &crit, NULL));
    assert_int_equal(crit, 1);
    assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_SERVER);
    check_sans(c);
    check_template_ext(c, WS_OID, 100, 5);
    /* Validity from the template by the emulator clock (AD CS backdates 10 min). */
    assert_true(llabs(cert_time(X509_get0_notBefore(c)) - (now - 600)) <= 5);
    assert_true(llabs(cert_time(X509_get0_notAfter(c)) - (now + 365 * 86400)) <= 5);
    check_aia_cdp(c, issuing);
    verify_chain(c, issuing, root);
    /* The same certificate as PEM, with CRLF lines. */
    char path[128];
    snprintf(path, sizeof path, "/certsrv/certnew.cer?ReqID=%lld&Enc=b64", (long long)id);
    assert_int_equal(cafx_req("GET", path, "renewer", NULL, NULL, NULL, 0, &resp), 200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "application/pkix-cert");
    assert_memory_equal(resp.body.data, "-----BEGIN CERTIFICATE-----\r\n", 29);
    clc_http_resp_cleanup(&resp);
    /* The chain: leaf, issuing and root in a base64 PKCS#7. */
    snprintf(path, sizeof path, "/certsrv/certnew.p7b?ReqID=%lld&Enc=b64", (long long)id);
    assert_int_equal(cafx_req("GET", path, "renewer", NULL, NULL, NULL, 0, &resp), 200);
    STACK_OF(X509) *sk = cafx_p7_certs(resp.body.data, resp.body.len);
    assert_non_null(sk);
    assert_int_equal(sk_X509_num(sk), 3);
    int found = 0;
    for (int i = 0; i < 3; i++)
        found += X509_cmp(sk_X509_value(sk, i), c) == 0;
    assert_int_equal(found, 1);
    sk_X509_pop_free(sk, X509_free);
    clc_http_resp_cleanup(&resp);
    X509_free(c);
    X509_free(issuing);
    X509_free(root);
}

static void test_template_by_oid_and_ec(void **state)
{
    static const char *const sans[] = {"DNS:ec.example.test", NULL};
    struct clc_http_resp resp;
    int64_t id;
    X509 *c;

    (void)state;
    /* An OID names the template as well as its name (MS-WCCE). */
    id = cafx_page_cert_id(
        submit("renewer", rsa3072, "svc.example.test", NULL, RSAONLY_OID, 0, &resp));
    clc_http_resp_cleanup(&resp);
    assert_true(id > 0);
    c = cafx_fetch_cert("renewer", id);
    assert_non_null(c);
    check_template_ext(c, RSAONLY_OID, 101, 7);
    assert_int_equal(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_extended_key_usage(c), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    /* No SANs asked, none given. */
    assert_null(X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL));
    X509_free(c);
    /* EC key: no keyEncipherment; signed by the RSA CA with sha256WithRSA. */
    id =
        cafx_page_cert_id(submit("renewer", ec256, "ec.example.test", sans, "WebServer", 0, &resp));
    clc_http_resp_cleanup(&resp);
    c = cafx_fetch_cert("renewer", id);
    assert_non_null(c);
    assert_int_equal(X509_get_key_usage(c), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_signature_nid(c), NID_sha256WithRSAEncryption);
    X509_free(c);
    /* An empty subject is allowed with a SAN, which then is critical. */
    id = cafx_page_cert_id(submit("renewer", ec256, NULL, sans, "WebServerShort", 0, &resp));
    clc_http_resp_cleanup(&resp);
    c = cafx_fetch_cert("renewer", id);
    assert_non_null(c);
    int crit = -1;
    GENERAL_NAMES_free(X509_get_ext_d2i(c, NID_subject_alt_name, &crit, NULL));
    assert_int_equal(crit, 1);
    assert_true(cert_time(X509_get0_notAfter(c)) - emu_now(cafx.e) <= 5 * 86400);
    assert_true(cert_time(X509_get0_notAfter(c)) - emu_now(cafx.e) > 5 * 86400 - 10);
    X509_free(c);
}

static int64_t pending(const char *account)
{
    struct clc_http_resp resp;
    const char *page =
        submit(account, rsa2048, "hold.example.test", NULL, "WebServerApproval", 0, &resp);
    int64_t id;

    assert_non_null(strstr(page, "Certificate Pending"));
    assert_non_null(strstr(page, "Your certificate request has been received. However, you must "
                                 "wait for an administrator to issue the certificate you "
                                 "requested."));
    assert_int_equal(cafx_page_cert_id(page), -1);
    id = cafx_page_request_id(page);
    assert_true(id > 0);
    clc_http_resp_cleanup(&resp);
    return id;
}

static void status_page(int64_t id, const char *account, char *msg, size_t mn, char *last,
                        size_t ln)
{
    struct clc_http_resp resp;
    char path[128];

    snprintf(path, sizeof path, "/certsrv/certnew.cer?ReqID=%lld&Enc=b64", (long long)id);
    assert_int_equal(cafx_req("GET", path, account, NULL, NULL, NULL, 0, &resp), 200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "text/html");
    assert_true(cafx_page_line(resp.body.data, "Disposition message:", msg, mn));
    assert_true(cafx_page_line(resp.body.data, "LastStatus:", last, ln));
    clc_http_resp_cleanup(&resp);
}

static const char *chkpnd(int64_t id, struct clc_http_resp *resp)
{
    char form[128];

    snprintf(form, sizeof form, "Mode=chkpnd&ReqID=%lld&SaveCert=yes&TargetStoreFlags=0",
             (long long)id);
    assert_int_equal(cafx_req("POST", "/certsrv/certfnsh.asp", "renewer", NULL,
                              "application/x-www-form-urlencoded", form, strlen(form), resp),
                     200);
    return resp->body.data;
}

static void test_pending_then_approved(void **state)
{
    struct clc_http_resp resp;
    char msg[256], last[256], path[96];
    int64_t id = pending("renewer");
    X509 *c;

    (void)state;
    status_page(id, "renewer", msg, sizeof msg, last, sizeof last);
    assert_string_equal(msg, "Taken Under Submission");
    assert_string_equal(last, "The operation completed successfully. 0x0 (WIN32: 0)");
    assert_non_null(strstr(chkpnd(id, &resp), "still pending"));
    clc_http_resp_cleanup(&resp);
    assert_null(cafx_fetch_cert("renewer", id));

    snprintf(path, sizeof path, "/control/ca/requests/%lld/approve", (long long)id);
    assert_int_equal(cafx_admin("POST", path, NULL, &resp), 200);
    clc_http_resp_cleanup(&resp);
    c = cafx_fetch_cert("renewer", id);
    assert_non_null(c);
    assert_true(cafx_same_key(c, rsa2048));
    X509_free(c);
    assert_non_null(strstr(chkpnd(id, &resp), "The certificate you requested was issued to you"));
    clc_http_resp_cleanup(&resp);
    /* Approving twice is a conflict. */
    assert_int_equal(cafx_admin("POST", path, NULL, &resp), 409);
    clc_http_resp_cleanup(&resp);
}

static void test_pending_then_denied(void **state)
{
    struct clc_http_resp resp;
    char msg[256], last[256], path[96];
    int64_t id = pending("renewer");

    (void)state;
    snprintf(path, sizeof path, "/control/ca/requests/%lld/deny", (long long)id);
    assert_int_equal(cafx_admin("POST", path, NULL, &resp), 200);
    clc_http_resp_cleanup(&resp);
    status_page(id, "renewer", msg, sizeof msg, last, sizeof last);
    assert_memory_equal(msg, "Denied by", 9);
    assert_string_equal(last, "The request was denied by a certificate manager or CA "
                              "administrator. 0x80094014 (-2146877420 "
                              "CERTSRV_E_ADMIN_DENIED_REQUEST)");
    assert_non_null(strstr(chkpnd(id, &resp), "Certificate Request Denied"));
    clc_http_resp_cleanup(&resp);
    assert_null(cafx_fetch_cert("renewer", id));
    snprintf(path, sizeof path, "/control/ca/requests/%lld/approve", (long long)id);
    assert_int_equal(cafx_admin("POST", path, NULL, &resp), 409);
    clc_http_resp_cleanup(&resp);
}

/* A denied page; returns its request id and copies the disposition message. */
static int64_t denied(const char *account, EVP_PKEY *k, const char *tmpl, int bad_sig, char *msg,
                      size_t n)
{
    struct clc_http_resp resp;
    const char *page = submit(account, k, "deny.example.test", NULL, tmpl, bad_sig, &resp);
    int64_t id;

    assert_non_null(strstr(page, "Certificate Request Denied"));
    assert_non_null(strstr(page, "Your certificate request was denied."));
    assert_int_equal(cafx_page_cert_id(page), -1);
    id = cafx_page_request_id(page);
    assert_true(cafx_page_disposition(page, msg, n));
    clc_http_resp_cleanup(&resp);
    return id;
}

static void test_denied_at_once(void **state)
{
    char msg[512], last[256], dmsg[256];
    EVP_PKEY *small = cafx_rsa(1024);
    int64_t id;

    (void)state;
    assert_non_null(small);
    denied("renewer", rsa2048, "NoSuchTemplate", 0, msg, sizeof msg);
    assert_string_equal(msg, "Denied by Policy Module  0x80094800, The request was for a "
                             "certificate template that is not supported by the Active "
                             "Directory Certificate Services policy: NoSuchTemplate.");
    denied("renewer", rsa2048, NULL, 0, msg, sizeof msg);
    assert_memory_equal(msg, "Denied by Policy Module  0x80094800,", 36);
    denied("renewer", small, "WebServer", 0, msg, sizeof msg);
    assert_string_equal(msg, "Denied by Policy Module  0x80094811, The public key does not meet "
                             "the minimum size required by the specified certificate template.");
    /* RsaOnly wants 3072 bits and RSA. */
    denied("renewer", rsa2048, "RsaOnly", 0, msg, sizeof msg);
    assert_memory_equal(msg, "Denied by Policy Module  0x80094811,", 36);
    denied("renewer", ec256, "RsaOnly", 0, msg, sizeof msg);
    assert_string_equal(msg, "Denied by Policy Module  0x80090008, Invalid algorithm specified.");
    denied("renewer", rsa2048, "WebServer", 1, msg, sizeof msg);
    assert_string_equal(msg, "Error Verifying Request Signature or Signing Certificate  Invalid "
                             "Signature. 0x80090006 (-2146893818 NTE_BAD_SIGNATURE)");
    /* No enroll right: the page says only this; the code is on certnew.cer. */
    id = denied("limited", rsa2048, "WebServerApproval", 0, msg, sizeof msg);
    assert_string_equal(msg, "Denied by Policy Module");
    status_page(id, "limited", dmsg, sizeof dmsg, last, sizeof last);
    assert_string_equal(dmsg, "Denied by Policy Module");
    assert_non_null(strstr(last, "0x80094012 (-2146877422 CERTSRV_E_TEMPLATE_DENIED)"));
    EVP_PKEY_free(small);
}

static void test_auth(void **state)
{
    struct clc_http_resp resp;
    const char *www;
    char msg[256], last[256];
    int64_t id;

    (void)state;
    assert_int_equal(cafx_req("GET", "/certsrv/", NULL, NULL, NULL, NULL, 0, &resp), 401);
    www = clc_http_resp_header(&resp, "WWW-Authenticate");
    assert_non_null(www);
    assert_memory_equal(www, "Basic realm=", 12);
    assert_non_null(strstr(resp.body.data, "401 - Unauthorized"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(
        cafx_req("GET", "/certsrv/", "renewer", "wrong-password", NULL, NULL, 0, &resp), 401);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(
        cafx_req("GET", "/certsrv/", "nobody", "renewer-password-123", NULL, NULL, 0, &resp), 401);
    clc_http_resp_cleanup(&resp);
    /* The configured password, and the DOMAIN\user and UPN forms. */
    assert_int_equal(
        cafx_req("GET", "/certsrv/", "renewer", "renewer-password-123", NULL, NULL, 0, &resp), 200);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_req("GET", "/certsrv/", "CERTLC\\renewer", "renewer-password-123", NULL,
                              NULL, 0, &resp),
                     200);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_req("GET", "/certsrv/", "renewer@certlc.test", "renewer-password-123",
                              NULL, NULL, 0, &resp),
                     200);
    clc_http_resp_cleanup(&resp);
    /* A submission without credentials never reaches the CA. */
    assert_int_equal(cafx_req("POST", "/certsrv/certfnsh.asp", NULL, NULL,
                              "application/x-www-form-urlencoded", "Mode=newreq", 11, &resp),
                     401);
    clc_http_resp_cleanup(&resp);
    /* Another account cannot read renewer's request. */
    id = pending("renewer");
    status_page(id, "limited", msg, sizeof msg, last, sizeof last);
    assert_non_null(strstr(last, "The requested property value is empty. 0x80094004"));
}

static void test_cacert(void **state)
{
    struct clc_http_resp resp;
    const unsigned char *p;
    X509 *c, *issuing = get_ca(0);

    (void)state;
    assert_int_equal(cafx_req("GET", "/certsrv/certnew.cer?ReqID=CACert&Renewal=0&Enc=bin",
                              "limited", NULL, NULL, NULL, 0, &resp),
                     200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "application/pkix-cert");
    p = (const unsigned char *)resp.body.data;
    c = d2i_X509(NULL, &p, (long)resp.body.len);
    assert_non_null(c);
    assert_int_equal(X509_cmp(c, issuing), 0);
    X509_free(c);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(
        cafx_req("GET", "/certsrv/certcarc.asp", "renewer", NULL, NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp.body.data, "var nRenewals=0;"));
    clc_http_resp_cleanup(&resp);
    X509_free(issuing);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_issued_fields),
        cmocka_unit_test(test_template_by_oid_and_ec),
        cmocka_unit_test(test_pending_then_approved),
        cmocka_unit_test(test_pending_then_denied),
        cmocka_unit_test(test_denied_at_once),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_cacert),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
