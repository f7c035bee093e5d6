/* JWT in compact JWS form: signing with a signer, strict verification against
 * one expected algorithm (never "none"), time checks, and an unverified
 * decoder for display. Errors say which part (header, payload, signature). */
#include "crypto/jwt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "core/b64.h"
#include "core/json.h"

/* One compact token split in place: three ranges of the caller's text. */
struct parts {
    const char *p[3];
    size_t n[3];
};

static enum clc_err split(const char *jwt, struct parts *pt, struct clc_errinfo *ei)
{
    size_t len = 0;
    const char *start = jwt;
    int k = 0;

    if (!jwt)
        return clc_errf(ei, CLC_ERR_INVALID, "jwt: no token given");
    len = strnlen(jwt, CLC_JWT_MAX_BYTES + 1);
    if (len > CLC_JWT_MAX_BYTES)
        return clc_errf(ei, CLC_ERR_LIMIT, "jwt: longer than %d bytes", CLC_JWT_MAX_BYTES);
    for (const char *c = jwt;; c++) {
        if (*c == '.' || *c == '\0') {
            if (k == 3)
                return clc_errf(ei, CLC_ERR_PARSE, "jwt: more than three parts");
            pt->p[k] = start;
            pt->n[k] = (size_t)(c - start);
            k++;
            start = c + 1;
            if (*c == '\0')
                break;
        }
    }
    if (k != 3)
        return clc_errf(ei, CLC_ERR_PARSE, "jwt: %d part%s, expected three", k, k == 1 ? "" : "s");
    return CLC_OK;
}

/* Decodes one base64url part into a JSON object. */
static enum clc_err decode_obj(const char *p, size_t n, const char *what, cJSON **out,
                               struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    unsigned char *raw = NULL;
    size_t raw_len = 0;

    *out = NULL;
    if (n == 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "jwt %s: empty", what);
        goto out;
    }
    rc = clc_b64url_decode(p, n, &raw, &raw_len);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "jwt %s: not base64url", what);
        goto out;
    }
    rc = clc_json_parse((const char *)raw, raw_len, CLC_JWT_MAX_BYTES, out, ei);
    if (rc != CLC_OK) {
        clc_err_wrap(ei, CLC_ERR_PARSE, "jwt %s", what);
        rc = CLC_ERR_PARSE;
        goto out;
    }
    if (!cJSON_IsObject(*out)) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "jwt %s: not a JSON object", what);
        goto out;
    }
out:
    if (rc != CLC_OK) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    free(raw);
    return rc;
}

static enum clc_err b64url_json(const cJSON *v, char **out)
{
    enum clc_err rc = CLC_OK;
    char *txt = clc_json_print(v);

    *out = NULL;
    if (!txt)
        return CLC_ERR_NOMEM;
    rc = clc_b64url_encode(txt, strlen(txt), out, NULL);
    free(txt);
    return rc;
}

enum clc_err clc_jwt_sign(const struct clc_signer *s, const cJSON *header, const cJSON *claims,
                          char **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    cJSON *h = NULL;
    char *h64 = NULL;
    char *p64 = NULL;
    char *s64 = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    char *input = NULL;
    size_t in_len = 0;
    size_t total = 0;

    *out = NULL;
    if ((header && !cJSON_IsObject(header)) || !cJSON_IsObject(claims)) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "jwt: header and claims must be JSON objects");
        goto out;
    }
    /* alg and typ first, then the caller's extras (theirs never override). */
    h = cJSON_CreateObject();
    if (!h || !cJSON_AddStringToObject(h, "alg", clc_signer_alg(s)) ||
        !cJSON_AddStringToObject(h, "typ", "JWT")) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (const cJSON *m = header ? header->child : NULL; m; m = m->next) {
        cJSON *dup = NULL;
        if (!m->string || strcmp(m->string, "alg") == 0 || strcmp(m->string, "typ") == 0)
            continue;
        dup = cJSON_Duplicate(m, 1);
        if (!dup || !cJSON_AddItemToObject(h, m->string, dup)) {
            cJSON_Delete(dup);
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
    rc = b64url_json(h, &h64);
    if (rc == CLC_OK)
        rc = b64url_json(claims, &p64);
    if (rc != CLC_OK)
        goto out;
    in_len = strlen(h64) + 1 + strlen(p64);
    input = malloc(in_len + 1);
    if (!input) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    snprintf(input, in_len + 1, "%s.%s", h64, p64);
    rc = clc_signer_sign(s, input, in_len, &sig, &sig_len, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_b64url_encode(sig, sig_len, &s64, NULL);
    if (rc != CLC_OK)
        goto out;
    total = in_len + 1 + strlen(s64);
    if (total > CLC_JWT_MAX_BYTES) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "jwt: token of %zu bytes exceeds %d", total,
                      CLC_JWT_MAX_BYTES);
        goto out;
    }
    *out = malloc(total + 1);
    if (!*out) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    snprintf(*out, total + 1, "%s.%s", input, s64);
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "jwt: out of memory");
    cJSON_Delete(h);
    free(h64);
    free(p64);
    free(s64);
    free(sig);
    free(input);
    return rc;
}

/* Field size in bytes of pub if it is an EC key on the curve alg names,
 * 0 for an RSA key with RS256, -1 when key and alg do not go together. */
static int key_fits_alg(EVP_PKEY *pub, const char *alg)
{
    if (strcmp(alg, "RS256") == 0)
        return EVP_PKEY_is_a(pub, "RSA") ? 0 : -1;
    if (!EVP_PKEY_is_a(pub, "EC"))
        return -1;
    char group[64] = "";
    size_t glen = 0;
    if (!EVP_PKEY_get_utf8_string_param(pub, "group", group, sizeof group, &glen)) {
        ERR_clear_error();
        return -1;
    }
    if (strcmp(alg, "ES256") == 0 && strcmp(group, "prime256v1") == 0)
        return 32;
    if (strcmp(alg, "ES384") == 0 && strcmp(group, "secp384r1") == 0)
        return 48;
    if (strcmp(alg, "ES512") == 0 && strcmp(group, "secp521r1") == 0)
        return 66;
    return -1;
}

static const char *alg_md(const char *alg)
{
    return strcmp(alg, "ES384") == 0 ? "SHA384" : strcmp(alg, "ES512") == 0 ? "SHA512" : "SHA256";
}

/* r||s (JWS) back to a DER ECDSA-Sig-Value for OpenSSL. */
static enum clc_err jws_to_der(const unsigned char *sig, size_t coord, unsigned char **der,
                               int *der_len)
{
    enum clc_err rc = CLC_ERR_CRYPTO;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, (int)coord, NULL);
    BIGNUM *s = BN_bin2bn(sig + coord, (int)coord, NULL);

    *der = NULL;
    if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = NULL;
    s = NULL;
    *der_len = i2d_ECDSA_SIG(es, der);
    if (*der_len <= 0)
        goto out;
    rc = CLC_OK;
out:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

enum clc_err clc_jwt_verify(const char *jwt, EVP_PKEY *pub, const char *expected_alg,
                            cJSON **header, cJSON **claims, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct parts pt;
    cJSON *h = NULL;
    cJSON *c = NULL;
    const cJSON *alg = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    unsigned char *der = NULL;
    int der_len = 0;
    EVP_MD_CTX *ctx = NULL;
    int coord = 0;
    int ok = 0;

    *header = NULL;
    *claims = NULL;
    if (!pub || !expected_alg || strcasecmp(expected_alg, "none") == 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "jwt: a key and a real expected algorithm are needed");
        goto out;
    }
    rc = split(jwt, &pt, ei);
    if (rc != CLC_OK)
        goto out;
    rc = decode_obj(pt.p[0], pt.n[0], "header", &h, ei);
    if (rc != CLC_OK)
        goto out;
    alg = cJSON_GetObjectItemCaseSensitive(h, "alg");
    if (!cJSON_IsString(alg)) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "jwt header: alg missing or not a string");
        goto out;
    }
    if (strcasecmp(alg->valuestring, "none") == 0) {
        rc = clc_errf(ei, CLC_ERR_AUTH, "jwt header: alg 'none' refused");
        goto out;
    }
    if (strcmp(alg->valuestring, expected_alg) != 0) {
        rc = clc_errf(ei, CLC_ERR_AUTH, "jwt header: alg '%.32s' where '%.32s' is expected",
                      alg->valuestring, expected_alg);
        goto out;
    }
    /* RFC 7515 §4.1.11: extensions we do not understand must be refused. */
    if (cJSON_GetObjectItemCaseSensitive(h, "crit")) {
        rc = clc_errf(ei, CLC_ERR_AUTH, "jwt header: crit extensions are not supported");
        goto out;
    }
    coord = key_fits_alg(pub, expected_alg);
    if (coord < 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "jwt: the key does not fit algorithm %.32s",
                      expected_alg);
        goto out;
    }
    if (pt.n[2] == 0 || clc_b64url_decode(pt.p[2], pt.n[2], &sig, &sig_len) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "jwt signature: empty or not base64url");
        goto out;
    }
    if (coord > 0) {
        if (sig_len != 2 * (size_t)coord) {
            rc = clc_errf(ei, CLC_ERR_AUTH, "jwt signature: %zu bytes, expected %d", sig_len,
                          2 * coord);
            goto out;
        }
        rc = jws_to_der(sig, (size_t)coord, &der, &der_len);
        if (rc != CLC_OK) {
            rc = clc_errf(ei, rc, "jwt signature: cannot be converted to DER");
            goto out;
        }
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "jwt: out of memory");
        goto out;
    }
    /* The signing input is header "." payload exactly as received. */
    ok = EVP_DigestVerifyInit_ex(ctx, NULL, alg_md(expected_alg), NULL, NULL, pub, NULL) == 1 &&
         EVP_DigestVerify(ctx, der ? der : sig, der ? (size_t)der_len : sig_len,
                          (const unsigned char *)pt.p[0], pt.n[0] + 1 + pt.n[1]) == 1;
    ERR_clear_error();
    if (!ok) {
        rc = clc_errf(ei, CLC_ERR_AUTH, "jwt signature: does not verify");
        goto out;
    }
    rc = decode_obj(pt.p[1], pt.n[1], "payload", &c, ei);
    if (rc != CLC_OK)
        goto out;
    *header = h;
    *claims = c;
    h = NULL;
    c = NULL;
out:
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(sig);
    OPENSSL_free(der);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* Integer NumericDate claim; 0 absent, 1 present, -1 present but not an
 * integer within the range a double holds exactly. */
static int int_claim(const cJSON *claims, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    double d = 0;

    if (!v)
        return 0;
    if (!cJSON_IsNumber(v))
        return -1;
    d = v->valuedouble;
    if (!isfinite(d) || d > 9007199254740992.0 || d < -9007199254740992.0 ||
        d != (double)(int64_t)d)
        return -1;
    *out = (int64_t)d;
    return 1;
}

enum clc_err clc_jwt_check_times(const cJSON *claims, int64_t now, int64_t leeway_s,
                                 struct clc_errinfo *ei)
{
    int64_t exp = 0;
    int64_t nbf = 0;
    int has = 0;

    if (leeway_s < 0)
        leeway_s = 0;
    has = int_claim(claims, "exp", &exp);
    if (has == 0)
        return clc_errf(ei, CLC_ERR_AUTH, "jwt payload: exp missing");
    if (has < 0)
        return clc_errf(ei, CLC_ERR_PARSE, "jwt payload: exp is not an integer");
    if (exp <= now - leeway_s)
        return clc_errf(ei, CLC_ERR_AUTH, "jwt payload: expired at %lld (now %lld)", (long long)exp,
                        (long long)now);
    has = int_claim(claims, "nbf", &nbf);
    if (has < 0)
        return clc_errf(ei, CLC_ERR_PARSE, "jwt payload: nbf is not an integer");
    if (has > 0 && nbf > now + leeway_s)
        return clc_errf(ei, CLC_ERR_AUTH, "jwt payload: not valid before %lld (now %lld)",
                        (long long)nbf, (long long)now);
    return CLC_OK;
}

enum clc_err clc_jwt_decode(const char *jwt, cJSON **header, cJSON **claims, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct parts pt;
    cJSON *h = NULL;
    cJSON *c = NULL;

    *header = NULL;
    *claims = NULL;
    rc = split(jwt, &pt, ei);
    if (rc == CLC_OK)
        rc = decode_obj(pt.p[0], pt.n[0], "header", &h, ei);
    if (rc == CLC_OK)
        rc = decode_obj(pt.p[1], pt.n[1], "payload", &c, ei);
    if (rc != CLC_OK)
        goto out;
    *header = h;
    *claims = c;
    h = NULL;
    c = NULL;
out:
    cJSON_Delete(h);
    cJSON_Delete(c);
    return rc;
}
