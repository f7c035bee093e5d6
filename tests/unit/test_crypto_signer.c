/* Signer: RSA and EC keys sign in JWS form (checked with OpenSSL directly),
 * JWK shapes and the RFC 7638 thumbprint vector, key policy refusals, and
 * PEM save/load (mode 0600, PKCS#8 and traditional, encrypted refused). */
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
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "core/b64.h"
#include "core/json.h"
#include "crypto/signer.h"

static struct clc_signer *rsa;   /* 2048 */
static struct clc_signer *ec[3]; /* P-256, P-384, P-521 */
static char dir[64];

static int group_setup(void **state)
{
    static const int bits[3] = {256, 384, 521};

    (void)state;
    if (clc_signer_generate("RSA", 2048, &rsa, NULL) != CLC_OK)
        return -1;
    for (int i = 0; i < 3; i++)
        if (clc_signer_generate("EC", bits[i], &ec[i], NULL) != CLC_OK)
            return -1;
    snprintf(dir, sizeof dir, "/tmp/clc-signer-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int group_teardown(void **state)
{
    static const char *const names[] = {"k.pem", "trad.pem", "enc.pem", "junk.pem", NULL};
    char p[128];

    (void)state;
    clc_signer_free(rsa);
    for (int i = 0; i < 3; i++)
        clc_signer_free(ec[i]);
    for (int i = 0; names[i]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    return 0;
}

/* Verifies a JWS-form signature with OpenSSL, converting r||s to DER itself. */
static int os_verify(EVP_PKEY *pk, const char *md, const unsigned char *sig, size_t n,
                     const char *data, int ecdsa)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    int der_len = 0;
    int ok = 0;

    if (ecdsa) {
        ECDSA_SIG *es = ECDSA_SIG_new();
        ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)n / 2, NULL),
                       BN_bin2bn(sig + n / 2, (int)n / 2, NULL));
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        sig = der;
        n = (size_t)der_len;
    }
    ok = EVP_DigestVerifyInit_ex(ctx, NULL, md, NULL, NULL, pk, NULL) == 1 &&
         EVP_DigestVerify(ctx, sig, n, (const unsigned char *)data, strlen(data)) == 1;
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return ok;
}

static void test_rsa_sign(void **state)
{
    unsigned char *sig = NULL;
    size_t n = 0;
    struct clc_errinfo ei;

    (void)state;
    assert_string_equal(clc_signer_alg(rsa), "RS256");
    assert_int_equal(clc_signer_sign(rsa, "hello", 5, &sig, &n, &ei), CLC_OK);
    assert_int_equal(n, 256);
    assert_true(os_verify(clc_signer_pkey(rsa), "SHA256", sig, n, "hello", 0));
    assert_false(os_verify(clc_signer_pkey(rsa), "SHA256", sig, n, "hellO", 0));
    /* PKCS#1 v1.5 is deterministic: same input, same signature. */
    unsigned char *sig2 = NULL;
    size_t n2 = 0;
    assert_int_equal(clc_signer_sign(rsa, "hello", 5, &sig2, &n2, &ei), CLC_OK);
    assert_memory_equal(sig, sig2, n);
    free(sig);
    free(sig2);
}

static void test_ec_sign(void **state)
{
    static const char *const algs[3] = {"ES256", "ES384", "ES512"};
    static const char *const mds[3] = {"SHA256", "SHA384", "SHA512"};
    static const size_t lens[3] = {64, 96, 132};
    struct clc_errinfo ei;

    (void)state;
    for (int i = 0; i < 3; i++) {
        /* Several rounds: r or s with leading zero bytes must still come out
         * at full width. */
        for (int round = 0; round < 8; round++) {
            unsigned char *sig = NULL;
            size_t n = 0;
            assert_string_equal(clc_signer_alg(ec[i]), algs[i]);
            assert_int_equal(clc_signer_sign(ec[i], "payload", 7, &sig, &n, &ei), CLC_OK);
            assert_int_equal(n, lens[i]);
            assert_true(os_verify(clc_signer_pkey(ec[i]), mds[i], sig, n, "payload", 1));
            assert_false(os_verify(clc_signer_pkey(ec[i]), mds[i], sig, n, "paylo4d", 1));
            free(sig);
        }
    }
}

static BIGNUM *jwk_bn(const cJSON *jwk, const char *key, size_t want_len)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(jwk, key);
    unsigned char *raw = NULL;
    size_t n = 0;
    BIGNUM *bn = NULL;

    assert_true(cJSON_IsString(v));
    assert_null(strchr(v->valuestring, '='));
    assert_int_equal(clc_b64url_decode(v->valuestring, strlen(v->valuestring), &raw, &n), CLC_OK);
    if (want_len)
        assert_int_equal(n, want_len);
    bn = BN_bin2bn(raw, (int)n, NULL);
    free(raw);
    return bn;
}

static void test_jwk_rsa(void **state)
{
    cJSON *jwk = NULL;
    struct clc_errinfo ei;
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    BIGNUM *kn = NULL;
    char *txt = NULL;

    (void)state;
    assert_int_equal(clc_signer_public_jwk(rsa, &jwk, &ei), CLC_OK);
    txt = clc_json_print(jwk);
    /* Lexicographic member order, no private members. */
    assert_int_equal(strncmp(txt, "{\"e\":\"AQAB\",\"kty\":\"RSA\",\"n\":\"", 29), 0);
    assert_null(strstr(txt, "\"d\""));
    assert_int_equal(cJSON_GetArraySize(jwk), 3);
    n = jwk_bn(jwk, "n", 256);
    e = jwk_bn(jwk, "e", 3);
    assert_int_equal(EVP_PKEY_get_bn_param(clc_signer_pkey(rsa), OSSL_PKEY_PARAM_RSA_N, &kn), 1);
    assert_int_equal(BN_cmp(n, kn), 0);
    assert_int_equal(BN_get_word(e), 65537);
    BN_free(n);
    BN_free(e);
    BN_free(kn);
    free(txt);
    cJSON_Delete(jwk);
}

static void test_jwk_ec(void **state)
{
    static const char *const crv[3] = {"P-256", "P-384", "P-521"};
    static const size_t coord[3] = {32, 48, 66};
    struct clc_errinfo ei;
    char prefix[64];

    (void)state;
    for (int i = 0; i < 3; i++) {
        cJSON *jwk = NULL;
        BIGNUM *x = NULL;
        BIGNUM *kx = NULL;
        char *txt = NULL;
        assert_int_equal(clc_signer_public_jwk(ec[i], &jwk, &ei), CLC_OK);
        txt = clc_json_print(jwk);
        snprintf(prefix, sizeof prefix, "{\"crv\":\"%s\",\"kty\":\"EC\",\"x\":\"", crv[i]);
        assert_int_equal(strncmp(txt, prefix, strlen(prefix)), 0);
        assert_non_null(strstr(txt, "\",\"y\":\""));
        assert_int_equal(cJSON_GetArraySize(jwk), 4);
        /* Coordinates padded to the field size. */
        x = jwk_bn(jwk, "x", coord[i]);
        BN_free(jwk_bn(jwk, "y", coord[i]));
        assert_int_equal(
            EVP_PKEY_get_bn_param(clc_signer_pkey(ec[i]), OSSL_PKEY_PARAM_EC_PUB_X, &kx), 1);
        assert_int_equal(BN_cmp(x, kx), 0);
        BN_free(x);
        BN_free(kx);
        free(txt);
        cJSON_Delete(jwk);
    }
}

/* RFC 7638 §3.1: the example RSA key and its published thumbprint. */
static void test_jwk_thumbprint_vector(void **state)
{
    static const char n64[] =
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJ"
        "ECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW"
        "2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQ"
        "Fh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    unsigned char *nraw = NULL;
    size_t nlen = 0;
    BIGNUM *n = NULL;
    BIGNUM *e = BN_new();
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    EVP_PKEY *pk = NULL;
    struct clc_signer *s = NULL;
    struct clc_errinfo ei;
    cJSON *jwk = NULL;
    char *txt = NULL;
    unsigned char md[32];
    char *thumb = NULL;

    (void)state;
    assert_int_equal(clc_b64url_decode(n64, strlen(n64), &nraw, &nlen), CLC_OK);
    n = BN_bin2bn(nraw, (int)nlen, NULL);
    BN_set_word(e, 65537);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    params = OSSL_PARAM_BLD_to_param(bld);
    assert_int_equal(EVP_PKEY_fromdata_init(pctx), 1);
    assert_int_equal(EVP_PKEY_fromdata(pctx, &pk, EVP_PKEY_PUBLIC_KEY, params), 1);
    assert_int_equal(clc_signer_from_pkey(pk, &s, &ei), CLC_OK);
    assert_int_equal(clc_signer_public_jwk(s, &jwk, &ei), CLC_OK);
    txt = clc_json_print(jwk);
    assert_int_equal(EVP_Digest(txt, strlen(txt), md, NULL, EVP_sha256(), NULL), 1);
    assert_int_equal(clc_b64url_encode(md, sizeof md, &thumb, NULL), CLC_OK);
    assert_string_equal(thumb, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    free(thumb);
    free(txt);
    cJSON_Delete(jwk);
    clc_signer_free(s);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(pctx);
    BN_free(n);
    BN_free(e);
    free(nraw);
}

static void test_key_policy(void **state)
{
    struct clc_signer *s = NULL;
    struct clc_errinfo ei;
    EVP_PKEY *pk = NULL;

    (void)state;
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    assert_non_null(pk);
    assert_int_equal(clc_signer_from_pkey(pk, &s, &ei), CLC_ERR_INVALID);
    assert_null(s);
    assert_non_null(strstr(ei.msg, "1024"));
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-224");
    assert_non_null(pk);
    assert_int_equal(clc_signer_from_pkey(pk, &s, &ei), CLC_ERR_UNSUPPORTED);
    assert_non_null(strstr(ei.msg, "secp224r1"));
    pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(pk);
    assert_int_equal(clc_signer_from_pkey(pk, &s, &ei), CLC_ERR_UNSUPPORTED);
    assert_int_equal(clc_signer_generate("RSA", 1024, &s, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_signer_generate("EC", 255, &s, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_signer_generate("DSA", 2048, &s, &ei), CLC_ERR_INVALID);
    assert_null(s);
}

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void test_save_load_pem(void **state)
{
    char p[128];
    struct stat st;
    struct clc_signer *back = NULL;
    struct clc_errinfo ei;
    char buf[64] = "";
    FILE *f = NULL;

    (void)state;
    for (int i = 0; i < 2; i++) {
        struct clc_signer *orig = i == 0 ? rsa : ec[2];
        path_in(p, sizeof p, "k.pem");
        unlink(p);
        assert_int_equal(clc_signer_save_pem(orig, p, &ei), CLC_OK);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        f = fopen(p, "r");
        assert_non_null(f);
        assert_non_null(fgets(buf, sizeof buf, f));
        fclose(f);
        assert_string_equal(buf, "-----BEGIN PRIVATE KEY-----\n");
        assert_int_equal(clc_signer_load_pem(p, &back, &ei), CLC_OK);
        assert_string_equal(clc_signer_alg(back), clc_signer_alg(orig));
        assert_int_equal(EVP_PKEY_eq(clc_signer_pkey(back), clc_signer_pkey(orig)), 1);
        clc_signer_free(back);
        back = NULL;
    }
}

static void test_load_variants(void **state)
{
    char p[128];
    struct clc_signer *back = NULL;
    struct clc_errinfo ei;
    FILE *f = NULL;

    (void)state;
    /* Traditional "EC PRIVATE KEY" form. */
    path_in(p, sizeof p, "trad.pem");
    BIO *bio = BIO_new_file(p, "w");
    assert_non_null(bio);
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, clc_signer_pkey(ec[0]), NULL, NULL,
                                                          0, NULL, NULL),
                     1);
    BIO_free(bio);
    assert_int_equal(clc_signer_load_pem(p, &back, &ei), CLC_OK);
    assert_string_equal(clc_signer_alg(back), "ES256");
    clc_signer_free(back);
    back = NULL;

    /* Encrypted: refused without prompting for a passphrase. */
    path_in(p, sizeof p, "enc.pem");
    f = fopen(p, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PKCS8PrivateKey(f, clc_signer_pkey(ec[0]), EVP_aes_128_cbc(), "pw",
                                               2, NULL, NULL),
                     1);
    fclose(f);
    assert_int_equal(clc_signer_load_pem(p, &back, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, p));
    assert_null(back);

    path_in(p, sizeof p, "junk.pem");
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("-----BEGIN PRIVATE KEY-----\nnot base64 !!\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(clc_signer_load_pem(p, &back, &ei), CLC_ERR_PARSE);

    path_in(p, sizeof p, "missing.pem");
    assert_int_not_equal(clc_signer_load_pem(p, &back, &ei), CLC_OK);
    assert_non_null(strstr(ei.msg, "missing.pem"));
    assert_null(back);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa_sign),
        cmocka_unit_test(test_ec_sign),
        cmocka_unit_test(test_jwk_rsa),
        cmocka_unit_test(test_jwk_ec),
        cmocka_unit_test(test_jwk_thumbprint_vector),
        cmocka_unit_test(test_key_policy),
        cmocka_unit_test(test_save_load_pem),
        cmocka_unit_test(test_load_variants),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
