/* Certificate requests: fixtures parsed (PEM and DER), a flipped signature
 * bit refused, garbage refused, every field read, the policy check (subject
 * in any RDN order and with quotes, SAN sets, key type/size/curve) with each
 * difference named, and the leaf-key match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "crypto/csr.h"

#define FX CLC_FIXTURES "/keyvault/"

static char *read_fixture(const char *name, size_t *len)
{
    char path[512], *text = NULL;
    snprintf(path, sizeof path, FX "%s", name);
    assert_int_equal(clc_file_read(path, 1 << 20, &text, len, NULL), CLC_OK);
    return text;
}

static X509_REQ *fixture_csr(const char *name)
{
    size_t len = 0;
    char *pem = read_fixture(name, &len);
    X509_REQ *r = NULL;
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_csr_from_pem(pem, len, &r, &ei), CLC_OK);
    free(pem);
    return r;
}

static void test_parse_fields(void **state)
{
    (void)state;
    X509_REQ *r = fixture_csr("csr-rsa2048.pem");
    struct clc_csr_info ci;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_csr_info_get(r, &ci, &ei), CLC_OK);
    assert_string_equal(ci.subject, "CN=host.contoso.com,O=Contoso");
    assert_int_equal(ci.sans.dns.n, 2);
    assert_string_equal(ci.sans.dns.v[0], "host.contoso.com");
    assert_string_equal(ci.sans.dns.v[1], "www.contoso.com");
    assert_int_equal(ci.sans.emails.n, 1);
    assert_string_equal(ci.sans.upns.v[0], "svc@contoso.com");
    assert_string_equal(ci.key.kty, "RSA");
    assert_int_equal(ci.key.bits, 2048);
    assert_int_equal(ci.ekus.n, 2);
    assert_string_equal(ci.ekus.v[0], "1.3.6.1.5.5.7.3.1");
    assert_string_equal(ci.ekus.v[1], "1.3.6.1.5.5.7.3.2");
    assert_int_equal(ci.key_usage.n, 2);
    assert_string_equal(ci.key_usage.v[0], "digitalSignature");
    assert_string_equal(ci.key_usage.v[1], "keyEncipherment");
    clc_csr_info_cleanup(&ci);

    /* The same request in DER. */
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);
    X509_REQ *r2 = NULL;
    assert_true(n > 0);
    assert_int_equal(clc_csr_from_der(der, (size_t)n, &r2, &ei), CLC_OK);
    assert_int_equal(X509_REQ_get_subject_name(r2) != NULL, 1);
    OPENSSL_free(der);
    X509_REQ_free(r2);
    X509_REQ_free(r);

    r = fixture_csr("csr-ec-p384.pem");
    assert_int_equal(clc_csr_info_get(r, &ci, &ei), CLC_OK);
    assert_string_equal(ci.key.kty, "EC");
    assert_string_equal(ci.key.crv, "P-384");
    assert_int_equal(ci.key_usage.n, 0);
    clc_csr_info_cleanup(&ci);
    X509_REQ_free(r);
}

static void test_refusals(void **state)
{
    (void)state;
    size_t len = 0;
    char *der = read_fixture("csr-bad-signature.der", &len);
    X509_REQ *r = NULL;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_csr_from_der((unsigned char *)der, len, &r, &ei), CLC_ERR_INVALID);
    assert_null(r);
    assert_non_null(strstr(ei.msg, "signature"));
    free(der);
    der = read_fixture("garbage.der", &len);
    assert_int_equal(clc_csr_from_der((unsigned char *)der, len, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(clc_csr_from_pem(der, len, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(clc_csr_from_der(NULL, 0, &r, &ei), CLC_ERR_PARSE);
    free(der);
}

static void strs(struct clc_cert_strs *l, const char *a, const char *b)
{
    memset(l, 0, sizeof *l);
    if (a)
        assert_int_equal(clc_cert_strs_add(l, a, 10), CLC_OK);
    if (b)
        assert_int_equal(clc_cert_strs_add(l, b, 10), CLC_OK);
}

static void test_policy_check(void **state)
{
    (void)state;
    X509_REQ *r = fixture_csr("csr-rsa2048.pem");
    struct clc_errinfo ei = {0};
    struct clc_cert_strs dns, emails, upns, one_dns;
    strs(&dns, "WWW.contoso.com", "host.contoso.com");
    strs(&emails, "ops@contoso.com", NULL);
    strs(&upns, "svc@contoso.com", NULL);
    strs(&one_dns, "host.contoso.com", NULL);
    struct clc_csr_expect w = {.subject = "CN=host.contoso.com, O=Contoso",
                               .dns_names = &dns,
                               .emails = &emails,
                               .upns = &upns,
                               .kty = "RSA",
                               .key_size = 2048};

    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_OK);
    w.subject = "O = Contoso ; CN=\"host.contoso.com\"";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_OK);
    w.kty = "RSA-HSM";
    w.key_size = 0; /* Key Vault's default is 2048 */
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_OK);

    w.subject = "CN=host.contoso.com";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "does not match policy subject 'CN=host.contoso.com'"));
    w.subject = "CN=host.contoso.com, O=Contoso, OU=Web";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    w.subject = "CN=other.contoso.com, O=Contoso";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    w.subject = "no equals sign";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "NAME=value"));
    w.subject = "XX=1";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "unknown attribute 'XX'"));
    w.subject = NULL;

    w.dns_names = &one_dns;
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "DNS names"));
    w.dns_names = &dns;
    w.upns = NULL;
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "UPN"));
    w.upns = &upns;

    w.kty = "RSA";
    w.key_size = 3072;
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "RSA 3072"));
    w.kty = "EC";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_INVALID);
    w.kty = "oct";
    assert_int_equal(clc_csr_check(r, &w, &ei), CLC_ERR_UNSUPPORTED);
    X509_REQ_free(r);

    r = fixture_csr("csr-ec-p384.pem");
    struct clc_cert_strs api;
    strs(&api, "api.contoso.com", NULL);
    struct clc_csr_expect e = {
        .subject = "CN=api.contoso.com", .dns_names = &api, .kty = "EC", .crv = "P-384"};
    assert_int_equal(clc_csr_check(r, &e, &ei), CLC_OK);
    e.crv = NULL; /* default P-256 */
    assert_int_equal(clc_csr_check(r, &e, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "EC P-256"));
    X509_REQ_free(r);
    clc_cert_strs_cleanup(&api);
    clc_cert_strs_cleanup(&dns);
    clc_cert_strs_cleanup(&emails);
    clc_cert_strs_cleanup(&upns);
    clc_cert_strs_cleanup(&one_dns);
}

static void test_leaf_match(void **state)
{
    (void)state;
    X509_REQ *r = fixture_csr("csr-rsa2048.pem");
    X509_REQ *other = fixture_csr("csr-ec-p384.pem");
    size_t len = 0;
    char *pem = read_fixture("chain-template.pem", &len);
    STACK_OF(X509) *chain = NULL;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_cert_chain_from_pem(pem, len, &chain, &ei), CLC_OK);
    /* The fixture leaf was issued for the key of csr-rsa2048.pem. */
    assert_int_equal(clc_csr_check_leaf(r, sk_X509_value(chain, 0), &ei), CLC_OK);
    assert_int_equal(clc_csr_check_leaf(r, sk_X509_value(chain, 1), &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "another key"));
    assert_int_equal(clc_csr_check_leaf(other, sk_X509_value(chain, 0), &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_csr_check_leaf(NULL, sk_X509_value(chain, 0), &ei), CLC_ERR_INVALID);
    clc_cert_chain_free(chain);
    free(pem);
    X509_REQ_free(r);
    X509_REQ_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_policy_check),
        cmocka_unit_test(test_leaf_match),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
