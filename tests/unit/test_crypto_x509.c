/* X.509: CA + leaf from the factory verified with X509_verify_cert at a fixed
 * time, extensions (SKI/AKI, constraints, usages, SANs, serial), digests and
 * x5t, PEM chains in and out, atomic save with mode, and refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "crypto/x509.h"

#define NOW INT64_C(1767225600) /* 2026-01-01T00:00:00Z */

static struct clc_signer *ca_key;   /* EC P-384 */
static struct clc_signer *leaf_key; /* RSA 2048 */
static struct clc_signer *ec_leaf_key;
static X509 *ca;
static X509 *leaf;
static char dir[64];

static int group_setup(void **state)
{
    const char *const sans[] = {"DNS:app.example", "DNS:*.app.example", "IP:127.0.0.1", "IP:::1",
                                NULL};
    struct clc_x509_spec cs = {.subject_cn = "certlc test CA",
                               .not_before = NOW - 3600,
                               .not_after = NOW + 86400 * 365,
                               .is_ca = 1};
    struct clc_x509_spec ls = {.subject_cn = "app.example",
                               .sans = sans,
                               .not_before = NOW - 60,
                               .not_after = NOW + 86400 * 30,
                               .server_auth = 1,
                               .client_auth = 1};
    struct clc_errinfo ei;

    (void)state;
    if (clc_signer_generate("EC", 384, &ca_key, &ei) != CLC_OK ||
        clc_signer_generate("RSA", 2048, &leaf_key, &ei) != CLC_OK ||
        clc_signer_generate("EC", 256, &ec_leaf_key, &ei) != CLC_OK)
        return -1;
    if (clc_x509_make(&cs, ca_key, NULL, NULL, &ca, &ei) != CLC_OK ||
        clc_x509_make(&ls, leaf_key, ca, ca_key, &leaf, &ei) != CLC_OK) {
        fprintf(stderr, "setup: %s\n", ei.msg);
        return -1;
    }
    snprintf(dir, sizeof dir, "/tmp/clc-x509-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    char p[128];

    (void)state;
    snprintf(p, sizeof p, "%s/chain.pem", dir);
    unlink(p);
    rmdir(dir);
    X509_free(ca);
    X509_free(leaf);
    clc_signer_free(ca_key);
    clc_signer_free(leaf_key);
    clc_signer_free(ec_leaf_key);
    return 0;
}

/* X509_verify_cert at time t with ca as the only trust anchor. */
static int verify_at(X509 *cert, X509 *anchor, int64_t t, int purpose)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int ok = 0;

    X509_STORE_add_cert(store, anchor);
    X509_STORE_CTX_init(ctx, store, cert, NULL);
    X509_STORE_CTX_set_time(ctx, 0, (time_t)t);
    if (purpose)
        X509_STORE_CTX_set_purpose(ctx, purpose);
    ok = X509_verify_cert(ctx) == 1;
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return ok;
}

static void test_chain_verifies(void **state)
{
    (void)state;
    assert_true(verify_at(leaf, ca, NOW, X509_PURPOSE_SSL_SERVER));
    assert_true(verify_at(leaf, ca, NOW, X509_PURPOSE_SSL_CLIENT));
    assert_true(verify_at(ca, ca, NOW, 0));
    /* Outside the validity window, and against the wrong anchor. */
    assert_false(verify_at(leaf, ca, NOW + 86400 * 31, X509_PURPOSE_SSL_SERVER));
    assert_false(verify_at(leaf, ca, NOW - 3600, X509_PURPOSE_SSL_SERVER));
    assert_false(verify_at(leaf, leaf, NOW, X509_PURPOSE_SSL_SERVER));
}

static void test_names(void **state)
{
    char cn[128];

    (void)state;
    assert_int_equal(X509_get_version(leaf), X509_VERSION_3);
    X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "app.example");
    X509_NAME_get_text_by_NID(X509_get_issuer_name(leaf), NID_commonName, cn, sizeof cn);
    assert_string_equal(cn, "certlc test CA");
    assert_int_equal(X509_check_host(leaf, "app.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "x.app.example", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "other.example", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "::1", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "10.0.0.1", 0), 0);
}

static void expect_key_id(X509 *x, const ASN1_OCTET_STRING *id)
{
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
    unsigned char md[20];

    assert_non_null(id);
    assert_int_equal(EVP_Digest(bits->data, (size_t)bits->length, md, NULL, EVP_sha1(), NULL), 1);
    assert_int_equal(ASN1_STRING_length(id), 20);
    assert_memory_equal(ASN1_STRING_get0_data(id), md, 20);
}

static void test_key_identifiers(void **state)
{
    (void)state;
    expect_key_id(ca, X509_get0_subject_key_id(ca));
    expect_key_id(leaf, X509_get0_subject_key_id(leaf));
    /* AKI: the issuer's SKI; the CA's own for the self-signed CA. */
    expect_key_id(ca, X509_get0_authority_key_id(leaf));
    expect_key_id(ca, X509_get0_authority_key_id(ca));
}

static int ext_critical(X509 *x, int nid)
{
    int i = X509_get_ext_by_NID(x, nid, -1);

    assert_true(i >= 0);
    return X509_EXTENSION_get_critical(X509_get_ext(x, i));
}

static void test_constraints_and_usages(void **state)
{
    struct clc_x509_spec es = {.subject_cn = "ec leaf", .not_before = NOW, .not_after = NOW + 60};
    X509 *ecx = NULL;
    struct clc_errinfo ei;

    (void)state;
    assert_true(X509_get_extension_flags(ca) & EXFLAG_CA);
    assert_false(X509_get_extension_flags(leaf) & EXFLAG_CA);
    assert_true(ext_critical(ca, NID_basic_constraints));
    assert_true(ext_critical(leaf, NID_basic_constraints));
    assert_true(ext_critical(leaf, NID_key_usage));
    assert_int_equal(X509_get_key_usage(ca), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    assert_int_equal(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE | KU_KEY_ENCIPHERMENT);
    assert_int_equal(X509_get_extended_key_usage(leaf), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    assert_int_equal(X509_get_ext_by_NID(ca, NID_ext_key_usage, -1), -1);
    /* EC leaf: no key encipherment; no EKU asked, none present. */
    assert_int_equal(clc_x509_make(&es, ec_leaf_key, ca, ca_key, &ecx, &ei), CLC_OK);
    assert_int_equal(X509_get_key_usage(ecx), KU_DIGITAL_SIGNATURE);
    assert_int_equal(X509_get_ext_by_NID(ecx, NID_ext_key_usage, -1), -1);
    assert_int_equal(X509_get_ext_by_NID(ecx, NID_subject_alt_name, -1), -1);
    X509_free(ecx);
}

static void test_serial_and_signature(void **state)
{
    const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    BIGNUM *bn2 = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);

    (void)state;
    assert_false(BN_is_negative(bn));
    assert_int_equal(BN_num_bytes(bn), 16);
    assert_int_not_equal(BN_cmp(bn, bn2), 0);
    assert_int_equal(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
    BN_free(bn);
    BN_free(bn2);
}

static void test_digests_and_x5t(void **state)
{
    unsigned char *der = NULL;
    int der_len = i2d_X509(leaf, &der);
    unsigned char sha1[20];
    unsigned char d[64];
    size_t n = 0;
    char *want = NULL;
    char *x5t = NULL;

    (void)state;
    assert_true(der_len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)der_len, sha1, NULL, EVP_sha1(), NULL), 1);
    assert_int_equal(clc_b64url_encode(sha1, sizeof sha1, &want, NULL), CLC_OK);
    assert_int_equal(clc_x509_x5t(leaf, &x5t), CLC_OK);
    assert_string_equal(x5t, want);
    assert_int_equal(strlen(x5t), 27);
    assert_int_equal(clc_x509_digest(leaf, "SHA1", d, &n), CLC_OK);
    assert_int_equal(n, 20);
    assert_memory_equal(d, sha1, 20);
    assert_int_equal(clc_x509_digest(leaf, "SHA256", d, &n), CLC_OK);
    assert_int_equal(n, 32);
    assert_int_equal(clc_x509_digest(leaf, "MD5", d, &n), CLC_ERR_INVALID);
    free(want);
    free(x5t);
    OPENSSL_free(der);
}

static void test_pem_chain(void **state)
{
    char *a = NULL;
    char *b = NULL;
    char *both = NULL;
    STACK_OF(X509) *sk = NULL;
    struct clc_errinfo ei;
    size_t n = 0;

    (void)state;
    assert_int_equal(clc_x509_to_pem(leaf, &a, &ei), CLC_OK);
    assert_int_equal(clc_x509_to_pem(ca, &b, &ei), CLC_OK);
    assert_int_equal(strncmp(a, "-----BEGIN CERTIFICATE-----\n", 28), 0);
    n = strlen(a) + strlen(b) + 64;
    both = malloc(n);
    snprintf(both, n, "leading text\n%s%s", a, b);
    assert_int_equal(clc_x509_parse_pem_chain(both, strlen(both), &sk, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(sk), 2);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 0), leaf), 0);
    assert_int_equal(X509_cmp(sk_X509_value(sk, 1), ca), 0);
    sk_X509_pop_free(sk, X509_free);
    sk = NULL;

    /* Damage the second certificate's body: the whole parse fails. */
    {
        char *body = strstr(both, b) + 40;
        body[0] = '!';
        body[1] = '!';
    }
    assert_int_equal(clc_x509_parse_pem_chain(both, strlen(both), &sk, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "block 2"));
    assert_null(sk);
    assert_int_equal(clc_x509_parse_pem_chain("no pem here", 11, &sk, &ei), CLC_ERR_PARSE);
    assert_null(sk);
    free(a);
    free(b);
    free(both);
}

static void test_save_and_load(void **state)
{
    X509 *const chain[2] = {leaf, ca};
    char p[128];
    struct stat st;
    X509 *back = NULL;
    struct clc_errinfo ei;

    (void)state;
    snprintf(p, sizeof p, "%s/chain.pem", dir);
    assert_int_equal(clc_x509_save_pem(chain, 2, p, 0600, &ei), CLC_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(clc_x509_load_pem_file(p, &back, &ei), CLC_OK);
    assert_int_equal(X509_cmp(back, leaf), 0);
    X509_free(back);
    back = NULL;
    /* Replacing keeps the requested mode. */
    assert_int_equal(clc_x509_save_pem(chain + 1, 1, p, 0644, &ei), CLC_OK);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(clc_x509_load_pem_file(p, &back, &ei), CLC_OK);
    assert_int_equal(X509_cmp(back, ca), 0);
    X509_free(back);
    assert_int_equal(clc_x509_save_pem(chain, 0, p, 0600, &ei), CLC_ERR_INVALID);
}

static void test_make_refusals(void **state)
{
    const char *const bad_san[] = {"URI:https://x", NULL};
    const char *const bad_ip[] = {"IP:300.1.1.1", NULL};
    const char *const bad_dns[] = {"DNS:a b", NULL};
    struct clc_x509_spec s = {.subject_cn = "x", .not_before = NOW, .not_after = NOW + 60};
    X509 *x = NULL;
    struct clc_errinfo ei;

    (void)state;
    s.sans = bad_san;
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, ca_key, &x, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "SAN 0"));
    s.sans = bad_ip;
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, ca_key, &x, &ei), CLC_ERR_INVALID);
    s.sans = bad_dns;
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, ca_key, &x, &ei), CLC_ERR_INVALID);
    s.sans = NULL;
    /* Issuer certificate with a key that is not its own. */
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, leaf_key, &x, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "issuer key"));
    /* Self-signed but signed by another key. */
    assert_int_equal(clc_x509_make(&s, leaf_key, NULL, ca_key, &x, &ei), CLC_ERR_INVALID);
    s.not_after = s.not_before;
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, ca_key, &x, &ei), CLC_ERR_INVALID);
    s.not_after = NOW + 60;
    s.subject_cn = "";
    assert_int_equal(clc_x509_make(&s, leaf_key, ca, ca_key, &x, &ei), CLC_ERR_INVALID);
    assert_null(x);
}

/* clc_x509_pubkey_set writes the same SubjectPublicKeyInfo bytes as
 * X509_REQ_set_pubkey, for EC and RSA keys. */
static void test_pubkey_set_same_bytes(void **state)
{
    static const struct {
        const char *kty;
        int bits;
    } kinds[] = {{"EC", 256}, {"EC", 384}, {"RSA", 2048}};

    (void)state;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        struct clc_signer *k = NULL;
        X509_REQ *a = X509_REQ_new(), *b = X509_REQ_new();
        unsigned char *da = NULL, *db = NULL;
        int la, lb;

        assert_int_equal(clc_signer_generate(kinds[i].kty, kinds[i].bits, &k, NULL), CLC_OK);
        assert_int_equal(X509_REQ_set_pubkey(a, clc_signer_pkey(k)), 1);
        assert_int_equal(clc_x509_pubkey_set(X509_REQ_get_X509_PUBKEY(b), clc_signer_pkey(k)), 1);
        la = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(a), &da);
        lb = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(b), &db);
        assert_true(la > 0);
        assert_int_equal(la, lb);
        assert_memory_equal(da, db, (size_t)la);
        OPENSSL_free(da);
        OPENSSL_free(db);
        X509_REQ_free(a);
        X509_REQ_free(b);
        clc_signer_free(k);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain_verifies),
        cmocka_unit_test(test_pubkey_set_same_bytes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_key_identifiers),
        cmocka_unit_test(test_constraints_and_usages),
        cmocka_unit_test(test_serial_and_signature),
        cmocka_unit_test(test_digests_and_x5t),
        cmocka_unit_test(test_pem_chain),
        cmocka_unit_test(test_save_and_load),
        cmocka_unit_test(test_make_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
