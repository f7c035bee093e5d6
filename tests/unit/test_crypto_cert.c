/* Certificate reading: every field of a fixture issued with the Microsoft
 * template extensions, a template certificate made here with OpenSSL (minor
 * version absent, UTF8String name), malformed extensions refused, DER in
 * and out, and chains: ordering, two leaves, strangers, validity windows. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "core/clock.h"
#include "core/file.h"
#include "crypto/cert.h"
#include "crypto/x509.h"

#define FX CLC_FIXTURES "/keyvault/"
#define NOW INT64_C(1798000000) /* 2026-12-23 */

static char *read_fixture(const char *name, size_t *len)
{
    char path[512], *text = NULL;
    snprintf(path, sizeof path, FX "%s", name);
    assert_int_equal(clc_file_read(path, 1 << 20, &text, len, NULL), CLC_OK);
    return text;
}

static STACK_OF(X509) * fixture_chain(const char *name)
{
    size_t len = 0;
    char *pem = read_fixture(name, &len);
    STACK_OF(X509) *sk = NULL;
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_cert_chain_from_pem(pem, len, &sk, &ei), CLC_OK);
    free(pem);
    return sk;
}

static void test_fixture_fields(void **state)
{
    (void)state;
    STACK_OF(X509) *sk = fixture_chain("cert-template.pem");
    struct clc_cert_info ci;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_cert_info_get(sk_X509_value(sk, 0), &ci, &ei), CLC_OK);
    assert_string_equal(ci.subject, "O=Corp,CN=web1.corp.example");
    assert_string_equal(ci.issuer, "CN=Corp Issuing CA,DC=corp,DC=example");
    assert_string_equal(ci.serial_hex, "01A2B3C4D5E6F708");
    assert_int_equal(ci.sans.dns.n, 2);
    assert_string_equal(ci.sans.dns.v[0], "web1.corp.example");
    assert_string_equal(ci.sans.dns.v[1], "web1");
    assert_int_equal(ci.sans.ips.n, 1);
    assert_string_equal(ci.sans.ips.v[0], "10.1.2.3");
    assert_int_equal(ci.sans.emails.n, 1);
    assert_string_equal(ci.sans.emails.v[0], "pki@corp.example");
    assert_int_equal(ci.sans.upns.n, 1);
    assert_string_equal(ci.sans.upns.v[0], "web1@corp.example");
    assert_string_equal(ci.key.kty, "RSA");
    assert_int_equal(ci.key.bits, 2048);
    assert_string_equal(ci.key.crv, "");
    assert_int_equal(ci.ekus.n, 1);
    assert_string_equal(ci.ekus.v[0], "1.3.6.1.5.5.7.3.1");
    assert_false(ci.is_ca);
    assert_string_equal(ci.ski_hex, "CEF3FA55730D5DE1DB66D9BCF3217B6EC4BFDC17");
    assert_string_equal(ci.aki_hex, "03D038FC220E91951DC946B1E64E1C1BEFD836A4");
    assert_true(ci.has_template);
    assert_string_equal(ci.template_oid, "1.3.6.1.4.1.311.21.8.16137614.5432.1.2.3");
    assert_int_equal(ci.template_major, 100);
    assert_int_equal(ci.template_minor, 5);
    assert_string_equal(ci.template_name, "WebServerV2");
    assert_string_equal(ci.sha1_hex, "E0ABDA956F566BA0520E00B93AD395A71F662B78");
    assert_string_equal(ci.sha256_hex, "58475CD1F246B0DF6FC2EDEF0618FBBB80E2CB099CB2ED94014702969"
                                       "80EB3DB");
    assert_int_equal(ci.not_after - ci.not_before, INT64_C(36500) * 86400);
    clc_cert_info_cleanup(&ci);

    /* The CA: no template, CA flag, SKI equal to the leaf's AKI. */
    STACK_OF(X509) *ca = fixture_chain("ca-template.pem");
    assert_int_equal(clc_cert_info_get(sk_X509_value(ca, 0), &ci, &ei), CLC_OK);
    assert_true(ci.is_ca);
    assert_false(ci.has_template);
    assert_null(ci.template_name);
    assert_int_equal(ci.template_minor, -1);
    assert_string_equal(ci.ski_hex, "03D038FC220E91951DC946B1E64E1C1BEFD836A4");
    clc_cert_info_cleanup(&ci);
    clc_cert_chain_free(ca);
    clc_cert_chain_free(sk);
}

/* Adds an extension with a raw DER value under a dotted OID. */
static void add_raw_ext(X509 *x, const char *oid, const unsigned char *der, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    assert_non_null(obj);
    assert_non_null(os);
    assert_int_equal(ASN1_OCTET_STRING_set(os, der, len), 1);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
}

/* The template information value: SEQUENCE { OID, INTEGER [, INTEGER] }. */
static int template_der(const char *oid, long major, long minor, unsigned char **out)
{
    STACK_OF(ASN1_TYPE) *seq = sk_ASN1_TYPE_new_null();
    ASN1_TYPE *t = ASN1_TYPE_new();
    ASN1_TYPE_set(t, V_ASN1_OBJECT, OBJ_txt2obj(oid, 1));
    sk_ASN1_TYPE_push(seq, t);
    long vals[2] = {major, minor};
    for (int i = 0; i < (minor >= 0 ? 2 : 1); i++) {
        ASN1_INTEGER *n = ASN1_INTEGER_new();
        ASN1_INTEGER_set(n, vals[i]);
        t = ASN1_TYPE_new();
        ASN1_TYPE_set(t, V_ASN1_INTEGER, n);
        sk_ASN1_TYPE_push(seq, t);
    }
    *out = NULL;
    int len = i2d_ASN1_SEQUENCE_ANY(seq, out);
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    return len;
}

/* A self-signed EC certificate with the template extensions made with the
 * OpenSSL API; tmpl_der/name_der NULL = left out. */
static X509 *make_template_cert(const unsigned char *tmpl_der, int tmpl_len,
                                const unsigned char *name_der, int name_len)
{
    struct clc_signer *key = NULL;
    struct clc_x509_spec spec = {
        .subject_cn = "ec.example", .not_before = NOW - 60, .not_after = NOW + 86400};
    X509 *x = NULL;
    assert_int_equal(clc_signer_generate("EC", 256, &key, NULL), CLC_OK);
    assert_int_equal(clc_x509_make(&spec, key, NULL, key, &x, NULL), CLC_OK);
    if (tmpl_der)
        add_raw_ext(x, "1.3.6.1.4.1.311.21.7", tmpl_der, tmpl_len);
    if (name_der)
        add_raw_ext(x, "1.3.6.1.4.1.311.20.2", name_der, name_len);
    assert_true(X509_sign(x, clc_signer_pkey(key), EVP_sha256()) > 0);
    clc_signer_free(key);
    return x;
}

static void test_made_template(void **state)
{
    (void)state;
    unsigned char *tmpl = NULL;
    int tlen = template_der("1.3.6.1.4.1.311.21.8.1.2.3.4", 7, -1, &tmpl);
    /* UTF8String "Machine" */
    const unsigned char name[] = {0x0c, 0x07, 'M', 'a', 'c', 'h', 'i', 'n', 'e'};
    X509 *x = make_template_cert(tmpl, tlen, name, sizeof name);
    struct clc_cert_info ci;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_cert_info_get(x, &ci, &ei), CLC_OK);
    assert_true(ci.has_template);
    assert_string_equal(ci.template_oid, "1.3.6.1.4.1.311.21.8.1.2.3.4");
    assert_int_equal(ci.template_major, 7);
    assert_int_equal(ci.template_minor, -1);
    assert_string_equal(ci.template_name, "Machine");
    assert_string_equal(ci.key.kty, "EC");
    assert_string_equal(ci.key.crv, "P-256");
    assert_int_equal(ci.not_after - ci.not_before, 86400 + 60);
    clc_cert_info_cleanup(&ci);

    /* DER in and out gives the same certificate. */
    unsigned char *der = NULL;
    size_t len = 0;
    X509 *back = NULL;
    assert_int_equal(clc_cert_to_der(x, &der, &len, &ei), CLC_OK);
    assert_int_equal(clc_cert_from_der(der, len, &back, &ei), CLC_OK);
    assert_int_equal(X509_cmp(x, back), 0);
    /* Trailing bytes and truncation are refused. */
    X509 *bad = NULL;
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    assert_int_equal(clc_cert_from_der(longer, len + 1, &bad, &ei), CLC_ERR_PARSE);
    assert_int_equal(clc_cert_from_der(der, len - 1, &bad, &ei), CLC_ERR_PARSE);
    assert_null(bad);
    free(longer);
    free(der);
    X509_free(back);
    X509_free(x);
    OPENSSL_free(tmpl);
}

static void test_malformed_extensions(void **state)
{
    (void)state;
    struct clc_cert_info ci;
    struct clc_errinfo ei = {0};
    const unsigned char not_seq[] = {0x04, 0x02, 0x01, 0x02}; /* OCTET STRING */
    const unsigned char int_name[] = {0x02, 0x01, 0x05};      /* INTEGER as a name */
    unsigned char *tmpl = NULL;
    int tlen = template_der("1.2.3", 1, 2, &tmpl);

    X509 *x = make_template_cert(not_seq, sizeof not_seq, NULL, 0);
    assert_int_equal(clc_cert_info_get(x, &ci, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "1.3.6.1.4.1.311.21.7"));
    clc_cert_info_cleanup(&ci);
    X509_free(x);

    x = make_template_cert(tmpl, tlen, int_name, sizeof int_name);
    assert_int_equal(clc_cert_info_get(x, &ci, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "1.3.6.1.4.1.311.20.2"));
    clc_cert_info_cleanup(&ci);
    X509_free(x);

    /* Trailing bytes after the template sequence. */
    unsigned char *padded = malloc((size_t)tlen + 2);
    memcpy(padded, tmpl, (size_t)tlen);
    padded[tlen] = 0x05;
    padded[tlen + 1] = 0x00;
    x = make_template_cert(padded, tlen + 2, NULL, 0);
    assert_int_equal(clc_cert_info_get(x, &ci, &ei), CLC_ERR_PARSE);
    clc_cert_info_cleanup(&ci);
    X509_free(x);
    free(padded);
    OPENSSL_free(tmpl);

    size_t len = 0;
    char *garbage = read_fixture("garbage.der", &len);
    assert_int_equal(clc_cert_from_der((unsigned char *)garbage, len, &x, &ei), CLC_ERR_PARSE);
    free(garbage);
}

static void test_chain_order_and_check(void **state)
{
    (void)state;
    STACK_OF(X509) *chain = fixture_chain("chain-template.pem");
    STACK_OF(X509) *rev = sk_X509_new_null(), *ordered = NULL;
    struct clc_errinfo ei = {0};

    /* Given root first, ordering puts the leaf first. */
    sk_X509_push(rev, sk_X509_value(chain, 1));
    sk_X509_push(rev, sk_X509_value(chain, 0));
    assert_int_equal(clc_cert_chain_order(rev, &ordered, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(ordered), 2);
    assert_ptr_equal(sk_X509_value(ordered, 0), sk_X509_value(chain, 0));
    assert_ptr_equal(sk_X509_value(ordered, 1), sk_X509_value(chain, 1));
    int64_t nb = 0;
    struct clc_cert_info ci;
    assert_int_equal(clc_cert_info_get(sk_X509_value(chain, 0), &ci, &ei), CLC_OK);
    nb = ci.not_before;
    int64_t na = ci.not_after;
    clc_cert_info_cleanup(&ci);
    assert_int_equal(clc_cert_chain_check(ordered, nb + 10, &ei), CLC_OK);
    assert_int_equal(clc_cert_chain_check(ordered, nb - 10, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "not valid yet"));
    assert_int_equal(clc_cert_chain_check(ordered, na + 10, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "expired"));
    /* Wrong order is named. */
    assert_int_equal(clc_cert_chain_check(rev, nb + 10, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "leaf first"));
    clc_cert_chain_free(ordered);

    /* A stranger (a second, unrelated leaf) is refused. */
    X509 *stranger = make_template_cert(NULL, 0, NULL, 0);
    sk_X509_push(rev, stranger);
    assert_int_equal(clc_cert_chain_order(rev, &ordered, &ei), CLC_ERR_INVALID);
    assert_null(ordered);
    assert_non_null(strstr(ei.msg, "two end certificates"));
    X509_free(stranger);
    sk_X509_free(rev);

    /* A self-signed certificate alone is a one-element chain. */
    STACK_OF(X509) *one = sk_X509_new_null();
    sk_X509_push(one, sk_X509_value(chain, 1));
    assert_int_equal(clc_cert_chain_order(one, &ordered, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(ordered), 1);
    assert_int_equal(clc_cert_chain_check(ordered, nb + 10, &ei), CLC_OK);
    clc_cert_chain_free(ordered);
    sk_X509_free(one);

    STACK_OF(X509) *empty = sk_X509_new_null();
    assert_int_equal(clc_cert_chain_order(empty, &ordered, &ei), CLC_ERR_INVALID);
    sk_X509_free(empty);
    clc_cert_chain_free(chain);
}

static void test_string_sets(void **state)
{
    (void)state;
    struct clc_cert_strs a = {0}, b = {0};
    assert_true(clc_cert_strs_same_set(&a, &b, 0));
    assert_int_equal(clc_cert_strs_add(&a, "A.example", 4), CLC_OK);
    assert_int_equal(clc_cert_strs_add(&a, "b.example", 4), CLC_OK);
    assert_int_equal(clc_cert_strs_add(&b, "b.example", 4), CLC_OK);
    assert_false(clc_cert_strs_same_set(&a, &b, 1));
    assert_int_equal(clc_cert_strs_add(&b, "a.example", 4), CLC_OK);
    assert_true(clc_cert_strs_same_set(&a, &b, 1));
    assert_false(clc_cert_strs_same_set(&a, &b, 0));
    assert_int_equal(clc_cert_strs_add(&b, "c", 2), CLC_ERR_LIMIT);
    clc_cert_strs_cleanup(&a);
    clc_cert_strs_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_fields),       cmocka_unit_test(test_made_template),
        cmocka_unit_test(test_malformed_extensions), cmocka_unit_test(test_chain_order_and_check),
        cmocka_unit_test(test_string_sets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
