/* The signer: owns one private key (RSA >= 2048 or EC P-256/384/521), signs in
 * JWS form (RS256 / ESxxx with fixed-width r||s), describes its public half as
 * a JWK, and saves itself as PKCS#8 PEM. */
#include "crypto/signer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/b64.h"
#include "core/file.h"

/* A PEM private key is a few KiB even for RSA 16384. */
#define SIGNER_PEM_MAX (64 * 1024)
#define SIGNER_RSA_MIN_BITS 2048
#define SIGNER_RSA_MAX_BITS 16384
/* Generating larger keys takes minutes: refuse rather than stall. */
#define SIGNER_RSA_MAX_GEN_BITS 8192

enum signer_alg { ALG_RS256, ALG_ES256, ALG_ES384, ALG_ES512 };

struct clc_signer {
    EVP_PKEY *pkey;
    enum signer_alg alg;
    size_t coord_len; /* EC field size in bytes; 0 for RSA */
};

static const struct {
    const char *jws;
    const char *md;
    const char *group; /* OpenSSL group name */
    const char *crv;   /* JWK curve name */
    size_t coord_len;
} alg_info[] = {
    [ALG_RS256] = {"RS256", "SHA256", NULL, NULL, 0},
    [ALG_ES256] = {"ES256", "SHA256", "prime256v1", "P-256", 32},
    [ALG_ES384] = {"ES384", "SHA384", "secp384r1", "P-384", 48},
    [ALG_ES512] = {"ES512", "SHA512", "secp521r1", "P-521", 66},
};

/* First OpenSSL error as text, for messages; clears the queue. */
static const char *ossl_reason(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();

    if (e)
        ERR_error_string_n(e, buf, n);
    else
        snprintf(buf, n, "no detail");
    ERR_clear_error();
    return buf;
}

/* Classifies pkey; consumes it either way. */
enum clc_err clc_signer_from_pkey(EVP_PKEY *pkey, struct clc_signer **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_signer *s = NULL;
    char group[64] = "";
    size_t glen = 0;
    int bits = 0;
    int alg = -1;

    *out = NULL;
    if (!pkey) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "signer: no key given");
        goto out;
    }
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        bits = EVP_PKEY_get_bits(pkey);
        if (bits < SIGNER_RSA_MIN_BITS || bits > SIGNER_RSA_MAX_BITS) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "signer: RSA key of %d bits refused (%d to %d)",
                          bits, SIGNER_RSA_MIN_BITS, SIGNER_RSA_MAX_BITS);
            goto out;
        }
        alg = ALG_RS256;
    } else if (EVP_PKEY_is_a(pkey, "EC")) {
        if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &glen)) {
            ERR_clear_error();
            rc = clc_errf(ei, CLC_ERR_UNSUPPORTED, "signer: EC key without a named curve");
            goto out;
        }
        for (int i = ALG_ES256; i <= ALG_ES512; i++)
            if (strcmp(group, alg_info[i].group) == 0)
                alg = i;
        if (alg < 0) {
            rc = clc_errf(ei, CLC_ERR_UNSUPPORTED,
                          "signer: EC curve %s refused (P-256, P-384 or P-521)", group);
            goto out;
        }
    } else {
        rc = clc_errf(ei, CLC_ERR_UNSUPPORTED, "signer: key type %s refused (RSA or EC)",
                      EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey) : "?");
        goto out;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    s->pkey = pkey;
    pkey = NULL;
    s->alg = (enum signer_alg)alg;
    s->coord_len = alg_info[alg].coord_len;
    *out = s;
out:
    EVP_PKEY_free(pkey);
    return rc;
}

/* Never prompt on a terminal for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

enum clc_err clc_signer_load_pem(const char *path, struct clc_signer **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *pem = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    EVP_PKEY *pkey = NULL;

    *out = NULL;
    rc = clc_file_read(path, SIGNER_PEM_MAX, &pem, &len, ei);
    if (rc != CLC_OK)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!bio) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!pkey) {
        ERR_clear_error();
        rc =
            clc_errf(ei, CLC_ERR_PARSE, "private key %s: not an unencrypted PEM private key", path);
        goto out;
    }
    rc = clc_signer_from_pkey(pkey, out, ei);
    pkey = NULL;
    if (rc != CLC_OK)
        clc_err_wrap(ei, rc, "private key %s", path);
out:
    BIO_free(bio);
    if (pem) {
        OPENSSL_cleanse(pem, len);
        free(pem);
    }
    return rc;
}

enum clc_err clc_signer_generate(const char *kty, int bits, struct clc_signer **out,
                                 struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    EVP_PKEY *pkey = NULL;
    char why[160];

    *out = NULL;
    if (kty && strcmp(kty, "RSA") == 0) {
        if (bits < SIGNER_RSA_MIN_BITS || bits > SIGNER_RSA_MAX_GEN_BITS) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "signer: RSA size %d refused (%d to %d)", bits,
                          SIGNER_RSA_MIN_BITS, SIGNER_RSA_MAX_GEN_BITS);
            goto out;
        }
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
    } else if (kty && strcmp(kty, "EC") == 0) {
        const char *curve = bits == 256   ? "P-256"
                            : bits == 384 ? "P-384"
                            : bits == 521 ? "P-521"
                                          : NULL;
        if (!curve) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "signer: EC size %d refused (256, 384, 521)", bits);
            goto out;
        }
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
    } else {
        rc = clc_errf(ei, CLC_ERR_INVALID, "signer: key type %s refused (RSA or EC)",
                      kty ? kty : "(none)");
        goto out;
    }
    if (!pkey) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "signer: key generation failed: %s",
                      ossl_reason(why, sizeof why));
        goto out;
    }
    rc = clc_signer_from_pkey(pkey, out, ei);
out:
    return rc;
}

const char *clc_signer_alg(const struct clc_signer *s)
{
    return alg_info[s->alg].jws;
}

EVP_PKEY *clc_signer_pkey(const struct clc_signer *s)
{
    return s->pkey;
}

/* DER ECDSA-Sig-Value to r||s, each left-padded to the field size. */
static enum clc_err der_to_jws(const unsigned char *der, size_t der_len, size_t coord,
                               unsigned char **out, size_t *out_len)
{
    enum clc_err rc = CLC_ERR_CRYPTO;
    const unsigned char *p = der;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    unsigned char *buf = NULL;
    const BIGNUM *r = NULL;
    const BIGNUM *s = NULL;

    if (!es)
        goto out;
    ECDSA_SIG_get0(es, &r, &s);
    buf = malloc(2 * coord);
    if (!buf) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (BN_bn2binpad(r, buf, (int)coord) != (int)coord ||
        BN_bn2binpad(s, buf + coord, (int)coord) != (int)coord)
        goto out;
    *out = buf;
    *out_len = 2 * coord;
    buf = NULL;
    rc = CLC_OK;
out:
    free(buf);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    return rc;
}

enum clc_err clc_signer_sign(const struct clc_signer *s, const void *data, size_t n,
                             unsigned char **sig, size_t *sig_len, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    EVP_MD_CTX *ctx = NULL;
    unsigned char *raw = NULL;
    size_t raw_len = 0;
    char why[160];

    *sig = NULL;
    *sig_len = 0;
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    /* RSA keys default to PKCS#1 v1.5 padding, which is what RS256 means. */
    if (EVP_DigestSignInit_ex(ctx, NULL, alg_info[s->alg].md, NULL, NULL, s->pkey, NULL) != 1 ||
        EVP_DigestSign(ctx, NULL, &raw_len, data, n) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "signer: %s init failed: %s", alg_info[s->alg].jws,
                      ossl_reason(why, sizeof why));
        goto out;
    }
    raw = malloc(raw_len);
    if (!raw) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (EVP_DigestSign(ctx, raw, &raw_len, data, n) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "signer: %s signing failed: %s", alg_info[s->alg].jws,
                      ossl_reason(why, sizeof why));
        goto out;
    }
    if (s->alg == ALG_RS256) {
        *sig = raw;
        *sig_len = raw_len;
        raw = NULL;
    } else {
        rc = der_to_jws(raw, raw_len, s->coord_len, sig, sig_len);
        if (rc != CLC_OK)
            clc_errf(ei, rc, "signer: ECDSA signature conversion failed");
    }
out:
    free(raw);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* Adds key: base64url of bn as big-endian bytes, padded to pad bytes (0 =
 * minimal length, as RFC 7518 wants for RSA n and e). */
static enum clc_err add_bn(cJSON *obj, const char *key, const BIGNUM *bn, size_t pad)
{
    enum clc_err rc = CLC_OK;
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    unsigned char *bytes = NULL;
    char *enc = NULL;

    if (n == 0)
        n = 1; /* zero is one octet, never empty */
    bytes = calloc(1, n);
    if (!bytes) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (BN_bn2binpad(bn, bytes, (int)n) != (int)n) {
        rc = CLC_ERR_CRYPTO;
        goto out;
    }
    rc = clc_b64url_encode(bytes, n, &enc, NULL);
    if (rc != CLC_OK)
        goto out;
    if (!cJSON_AddStringToObject(obj, key, enc))
        rc = CLC_ERR_NOMEM;
out:
    free(enc);
    free(bytes);
    return rc;
}

static int add_str(cJSON *obj, const char *key, const char *val)
{
    return cJSON_AddStringToObject(obj, key, val) != NULL;
}

enum clc_err clc_signer_public_jwk(const struct clc_signer *s, cJSON **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    cJSON *jwk = cJSON_CreateObject();
    BIGNUM *a = NULL;
    BIGNUM *b = NULL;
    int ok = 0;

    *out = NULL;
    if (!jwk) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    /* Members in lexicographic order (RFC 7638 §3.2), so the compact print is
     * the thumbprint input. */
    if (s->alg == ALG_RS256) {
        ok = EVP_PKEY_get_bn_param(s->pkey, OSSL_PKEY_PARAM_RSA_N, &a) == 1 &&
             EVP_PKEY_get_bn_param(s->pkey, OSSL_PKEY_PARAM_RSA_E, &b) == 1;
        if (!ok) {
            rc = CLC_ERR_CRYPTO;
            goto out;
        }
        rc = add_bn(jwk, "e", b, 0);
        if (rc == CLC_OK && !add_str(jwk, "kty", "RSA"))
            rc = CLC_ERR_NOMEM;
        if (rc == CLC_OK)
            rc = add_bn(jwk, "n", a, 0);
    } else {
        ok = EVP_PKEY_get_bn_param(s->pkey, OSSL_PKEY_PARAM_EC_PUB_X, &a) == 1 &&
             EVP_PKEY_get_bn_param(s->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &b) == 1;
        if (!ok) {
            rc = CLC_ERR_CRYPTO;
            goto out;
        }
        rc = add_str(jwk, "crv", alg_info[s->alg].crv) ? CLC_OK : CLC_ERR_NOMEM;
        if (rc == CLC_OK && !add_str(jwk, "kty", "EC"))
            rc = CLC_ERR_NOMEM;
        if (rc == CLC_OK)
            rc = add_bn(jwk, "x", a, s->coord_len);
        if (rc == CLC_OK)
            rc = add_bn(jwk, "y", b, s->coord_len);
    }
    if (rc != CLC_OK)
        goto out;
    *out = jwk;
    jwk = NULL;
out:
    if (rc != CLC_OK)
        clc_errf(ei, rc, "signer: building the public JWK failed");
    ERR_clear_error();
    BN_free(a);
    BN_free(b);
    cJSON_Delete(jwk);
    return rc;
}

enum clc_err clc_signer_save_pem(const struct clc_signer *s, const char *path,
                                 struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    BIO *bio = BIO_new(BIO_s_secmem());
    char *data = NULL;
    long len = 0;
    char why[160];

    if (!bio) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (PEM_write_bio_PKCS8PrivateKey(bio, s->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "signer: PKCS#8 encoding failed: %s",
                      ossl_reason(why, sizeof why));
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    if (len <= 0 || !data) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "signer: PKCS#8 encoding gave nothing");
        goto out;
    }
    rc = clc_file_write_atomic(path, data, (size_t)len, 0600, ei);
out:
    if (data && len > 0)
        OPENSSL_cleanse(data, (size_t)len);
    BIO_free(bio);
    return rc;
}

void clc_signer_free(struct clc_signer *s)
{
    if (!s)
        return;
    EVP_PKEY_free(s->pkey);
    free(s);
}
