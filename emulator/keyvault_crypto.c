/* The vault's cryptography: keys for a policy, subject names, the X.509
 * extensions a policy asks for (SANs with DNS, e-mail and UPN, EKUs, key
 * usage), CSRs, self-signed and CA-signed certificates, the secret behind a
 * version (PKCS#12 or PEM), and parsing of imported PFX and PEM input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "crypto/x509.h"
#include "emulator/keyvault.h"

#define DN_MAX 1024
#define DN_PARTS 32
#define UPN_OID "1.3.6.1.4.1.311.20.2.3"

/* ---- subject names ---- */

struct dn_part {
    char type[32];
    char value[256];
};

/* Azure's and Windows' short names for the attributes OpenSSL names otherwise. */
static const char *dn_type(const char *t)
{
    if (strcasecmp(t, "E") == 0 || strcasecmp(t, "EMAIL") == 0)
        return "emailAddress";
    if (strcasecmp(t, "S") == 0)
        return "ST";
    if (strcasecmp(t, "STREET") == 0)
        return "street";
    if (strcasecmp(t, "SERIALNUMBER") == 0)
        return "serialNumber";
    return t;
}

/* "CN=a, O=b\, c": RDNs split on unescaped ',' or ';', "\x" escapes a
 * character, double quotes protect separators. */
static int dn_split(const char *s, struct dn_part *parts, size_t *nparts, char *why, size_t wl)
{
    size_t n = 0;

    if (strlen(s) > DN_MAX) {
        snprintf(why, wl, "longer than %d characters", DN_MAX);
        return 0;
    }
    while (*s) {
        struct dn_part *p;
        size_t tl = 0, vl = 0;
        int quoted = 0;

        while (*s == ' ')
            s++;
        if (n == DN_PARTS) {
            snprintf(why, wl, "more than %d attributes", DN_PARTS);
            return 0;
        }
        p = &parts[n];
        while (*s && *s != '=' && tl + 1 < sizeof p->type)
            p->type[tl++] = *s++;
        while (tl > 0 && p->type[tl - 1] == ' ')
            tl--;
        p->type[tl] = '\0';
        if (*s != '=' || tl == 0) {
            snprintf(why, wl, "attribute %zu is not TYPE=value", n + 1);
            return 0;
        }
        s++;
        while (*s == ' ')
            s++;
        while (*s && (quoted || (*s != ',' && *s != ';'))) {
            char c = *s++;
            if (c == '"') {
                quoted = !quoted;
                continue;
            }
            if (c == '\\' && *s)
                c = *s++;
            if (vl + 1 >= sizeof p->value) {
                snprintf(why, wl, "value of %s is too long", p->type);
                return 0;
            }
            p->value[vl++] = c;
        }
        while (vl > 0 && p->value[vl - 1] == ' ' && !quoted)
            vl--;
        p->value[vl] = '\0';
        if (quoted) {
            snprintf(why, wl, "unterminated quote");
            return 0;
        }
        if (vl == 0) {
            snprintf(why, wl, "empty value for %s", p->type);
            return 0;
        }
        n++;
        if (*s == ',' || *s == ';') {
            s++;
            if (*s == '\0') {
                snprintf(why, wl, "trailing separator");
                return 0;
            }
        }
    }
    *nparts = n;
    return 1;
}

static X509_NAME *dn_build(const char *subject, char *why, size_t wl)
{
    struct dn_part parts[DN_PARTS];
    size_t n = 0;
    X509_NAME *name = X509_NAME_new();

    if (name == NULL) {
        snprintf(why, wl, "out of memory");
        return NULL;
    }
    if (!dn_split(subject, parts, &n, why, wl)) {
        X509_NAME_free(name);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = dn_type(parts[i].type);
        if (OBJ_txt2nid(t) == NID_undef ||
            X509_NAME_add_entry_by_txt(name, t, MBSTRING_UTF8,
                                       (const unsigned char *)parts[i].value, -1, -1, 0) != 1) {
            ERR_clear_error();
            snprintf(why, wl, "attribute '%.31s' is unknown or its value is not allowed",
                     parts[i].type);
            X509_NAME_free(name);
            return NULL;
        }
    }
    return name;
}

int kv_dn_check(const char *subject, char *why, size_t whylen)
{
    X509_NAME *n = dn_build(subject, why, whylen);

    X509_NAME_free(n);
    return n != NULL;
}

/* ---- extensions from a policy ---- */

static int push_ext(STACK_OF(X509_EXTENSION) * sk, X509_EXTENSION *ext)
{
    if (ext == NULL)
        return 0;
    if (!sk_X509_EXTENSION_push(sk, ext)) {
        X509_EXTENSION_free(ext);
        return 0;
    }
    return 1;
}

static int add_gn_string(GENERAL_NAMES *gens, int type, const char *s)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();

    if (gn == NULL || ia5 == NULL || !ASN1_STRING_set(ia5, s, -1)) {
        GENERAL_NAME_free(gn);
        ASN1_IA5STRING_free(ia5);
        return 0;
    }
    GENERAL_NAME_set0_value(gn, type, ia5);
    if (!sk_GENERAL_NAME_push(gens, gn)) {
        GENERAL_NAME_free(gn);
        return 0;
    }
    return 1;
}

static int add_gn_upn(GENERAL_NAMES *gens, const char *s)
{
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(UPN_OID, 1);
    ASN1_TYPE *val = ASN1_TYPE_new();
    ASN1_UTF8STRING *u = ASN1_UTF8STRING_new();

    if (gn == NULL || oid == NULL || val == NULL || u == NULL || !ASN1_STRING_set(u, s, -1))
        goto fail;
    ASN1_TYPE_set(val, V_ASN1_UTF8STRING, u);
    u = NULL;
    if (!GENERAL_NAME_set0_othername(gn, oid, val))
        goto fail;
    oid = NULL;
    val = NULL;
    if (!sk_GENERAL_NAME_push(gens, gn))
        goto fail;
    return 1;
fail:
    GENERAL_NAME_free(gn);
    ASN1_OBJECT_free(oid);
    ASN1_TYPE_free(val);
    ASN1_UTF8STRING_free(u);
    return 0;
}

static int sans_ext(STACK_OF(X509_EXTENSION) * sk, const cJSON *sans)
{
    static const struct {
        const char *key;
        int type; /* GEN_DNS, GEN_EMAIL, or -1 for UPN */
    } kinds[] = {{"dns_names", GEN_DNS}, {"emails", GEN_EMAIL}, {"upns", -1}};
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    const cJSON *it;
    int ok = gens != NULL;

    for (size_t k = 0; ok && k < 3; k++) {
        cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(sans, kinds[k].key))
        {
            ok = ok && (kinds[k].type < 0 ? add_gn_upn(gens, it->valuestring)
                                          : add_gn_string(gens, kinds[k].type, it->valuestring));
        }
    }
    if (ok && sk_GENERAL_NAME_num(gens) > 0)
        ok = push_ext(sk, X509V3_EXT_i2d(NID_subject_alt_name, 0, gens));
    GENERAL_NAMES_free(gens);
    return ok;
}

static int eku_ext(STACK_OF(X509_EXTENSION) * sk, const cJSON *ekus)
{
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    const cJSON *it;
    int ok = eku != NULL;

    cJSON_ArrayForEach(it, ekus)
    {
        ASN1_OBJECT *o = ok ? OBJ_txt2obj(it->valuestring, 1) : NULL;
        if (o == NULL || !sk_ASN1_OBJECT_push(eku, o)) {
            ASN1_OBJECT_free(o);
            ok = 0;
        }
    }
    if (ok && sk_ASN1_OBJECT_num(eku) > 0)
        ok = push_ext(sk, X509V3_EXT_i2d(NID_ext_key_usage, 0, eku));
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

static const char *const ku_names[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};

static int ku_ext(STACK_OF(X509_EXTENSION) * sk, const cJSON *kus, int is_ca)
{
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    const cJSON *it;
    int ok = bs != NULL, any = 0;

    cJSON_ArrayForEach(it, kus)
    {
        for (int b = 0; ok && b < 9; b++)
            if (strcmp(it->valuestring, ku_names[b]) == 0) {
                ok = ASN1_BIT_STRING_set_bit(bs, b, 1);
                any = 1;
            }
    }
    if (is_ca) {
        ok = ok && ASN1_BIT_STRING_set_bit(bs, 5, 1) && ASN1_BIT_STRING_set_bit(bs, 6, 1);
        any = 1;
    }
    if (ok && any)
        ok = push_ext(sk, X509V3_EXT_i2d(NID_key_usage, 1, bs));
    ASN1_BIT_STRING_free(bs);
    return ok;
}

/* SANs, EKUs and key usage of the policy's x509_props. */
static STACK_OF(X509_EXTENSION) * policy_exts(const cJSON *pol, int is_ca)
{
    const cJSON *xp = cJSON_GetObjectItemCaseSensitive(pol, "x509_props");
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();

    if (sk == NULL || !sans_ext(sk, cJSON_GetObjectItemCaseSensitive(xp, "sans")) ||
        (!is_ca && !eku_ext(sk, cJSON_GetObjectItemCaseSensitive(xp, "ekus"))) ||
        !ku_ext(sk, cJSON_GetObjectItemCaseSensitive(xp, "key_usage"), is_ca)) {
        sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
        return NULL;
    }
    return sk;
}

static X509_NAME *policy_subject(const cJSON *pol, struct clc_errinfo *ei, enum clc_err *rc)
{
    const cJSON *xp = cJSON_GetObjectItemCaseSensitive(pol, "x509_props");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(xp, "subject");
    char why[160];
    X509_NAME *n;

    if (!cJSON_IsString(s) || s->valuestring[0] == '\0')
        n = X509_NAME_new(); /* SANs only: an empty subject, as RFC 5280 allows */
    else
        n = dn_build(s->valuestring, why, sizeof why);
    if (n == NULL)
        *rc = clc_errf(ei, CLC_ERR_INVALID, "subject: %s", why);
    return n;
}

static const EVP_MD *md_for(EVP_PKEY *key)
{
    int bits = EVP_PKEY_get_bits(key);

    if (EVP_PKEY_is_a(key, "EC"))
        return bits > 384 ? EVP_sha512() : bits > 256 ? EVP_sha384() : EVP_sha256();
    return EVP_sha256();
}

/* ---- keys ---- */

static const char *group_of(const char *crv)
{
    if (strcmp(crv, "P-384") == 0)
        return "secp384r1";
    if (strcmp(crv, "P-521") == 0)
        return "secp521r1";
    return "prime256v1";
}

enum clc_err kv_key_generate(const cJSON *pol, EVP_PKEY **out, struct clc_errinfo *ei)
{
    const cJSON *kp = cJSON_GetObjectItemCaseSensitive(pol, "key_props");
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(kp, "kty");
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(kp, "crv");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(kp, "key_size");

    if (cJSON_IsString(kty) && strncmp(kty->valuestring, "EC", 2) == 0)
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC",
                                 group_of(cJSON_IsString(crv) ? crv->valuestring : "P-256"));
    else
        *out = EVP_PKEY_Q_keygen(NULL, NULL, "RSA",
                                 (size_t)(cJSON_IsNumber(size) ? size->valueint : 2048));
    if (*out == NULL) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_CRYPTO, "key generation failed");
    }
    return CLC_OK;
}

int kv_key_matches(const cJSON *pol, EVP_PKEY *key)
{
    const cJSON *kp = cJSON_GetObjectItemCaseSensitive(pol, "key_props");
    const cJSON *kty = cJSON_GetObjectItemCaseSensitive(kp, "kty");
    const cJSON *crv = cJSON_GetObjectItemCaseSensitive(kp, "crv");
    const cJSON *size = cJSON_GetObjectItemCaseSensitive(kp, "key_size");
    char group[64] = "";
    size_t gl = 0;

    if (!cJSON_IsString(kty))
        return 0;
    if (strncmp(kty->valuestring, "EC", 2) == 0) {
        if (!EVP_PKEY_is_a(key, "EC") ||
            !EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &gl)) {
            ERR_clear_error();
            return 0;
        }
        return cJSON_IsString(crv) && strcmp(group, group_of(crv->valuestring)) == 0;
    }
    return EVP_PKEY_is_a(key, "RSA") && cJSON_IsNumber(size) &&
           EVP_PKEY_get_bits(key) == size->valueint;
}

enum clc_err kv_key_to_pem(EVP_PKEY *key, char **out)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long n;
    enum clc_err rc = CLC_ERR_CRYPTO;

    *out = NULL;
    if (b != NULL && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) == 1) {
        n = BIO_get_mem_data(b, &data);
        *out = malloc((size_t)n + 1);
        if (*out != NULL) {
            memcpy(*out, data, (size_t)n);
            (*out)[n] = '\0';
            rc = CLC_OK;
        } else {
            rc = CLC_ERR_NOMEM;
        }
        OPENSSL_cleanse(data, (size_t)n);
    }
    BIO_free(b);
    return rc;
}

enum clc_err kv_key_from_pem(const char *pem, EVP_PKEY **out)
{
    BIO *b = BIO_new_mem_buf(pem, -1);

    *out = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    ERR_clear_error();
    return *out ? CLC_OK : CLC_ERR_PARSE;
}

static enum clc_err x509_from_der(const unsigned char *der, size_t len, X509 **out)
{
    const unsigned char *p = der;

    *out = d2i_X509(NULL, &p, (long)len);
    /* Trailing bytes mean this was not one certificate. */
    if (*out != NULL && p != der + len) {
        X509_free(*out);
        *out = NULL;
    }
    ERR_clear_error();
    return *out ? CLC_OK : CLC_ERR_PARSE;
}

enum clc_err kv_x509_from_b64(const char *b64, X509 **out)
{
    unsigned char *der = NULL;
    size_t len = 0;
    enum clc_err rc;

    *out = NULL;
    rc = clc_b64_decode(b64, strlen(b64), &der, &len);
    if (rc == CLC_OK)
        rc = x509_from_der(der, len, out);
    free(der);
    return rc;
}

/* ---- CSR and certificates ---- */

/* The request's SubjectPublicKeyInfo. An EC key's is built from its
 * parameters (named curve, the point as encoded), the bytes i2d_PUBKEY
 * writes, without OpenSSL 3's encoder (~0.1 ms a call); other keys go
 * through clc_x509_pubkey_set. */
static int spki_set(X509_PUBKEY *dst, EVP_PKEY *key)
{
    char group[64];
    unsigned char pt[200], *enc = NULL;
    size_t gl = 0, pl = 0;
    int nid;

    if (!EVP_PKEY_is_a(key, "EC") ||
        EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &gl) !=
            1 ||
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof pt,
                                        &pl) != 1 ||
        pl == 0 || pt[0] != 0x04 || (nid = OBJ_sn2nid(group)) == NID_undef) {
        ERR_clear_error();
        return clc_x509_pubkey_set(dst, key);
    }
    enc = OPENSSL_memdup(pt, pl);
    /* set0 owns enc on success; the objects are OpenSSL's static ones. */
    if (enc == NULL || X509_PUBKEY_set0_param(dst, OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                                              V_ASN1_OBJECT, OBJ_nid2obj(nid), enc, (int)pl) != 1) {
        OPENSSL_free(enc);
        return 0;
    }
    return 1;
}

enum clc_err kv_csr_make(const cJSON *pol, EVP_PKEY *key, char **b64, struct clc_errinfo *ei)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    unsigned char *der = NULL;
    int len;
    enum clc_err rc = CLC_OK;

    *b64 = NULL;
    if (req == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    name = policy_subject(pol, ei, &rc);
    if (name == NULL)
        goto out;
    exts = policy_exts(pol, 0);
    if (exts == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, name) != 1 ||
        !spki_set(X509_REQ_get_X509_PUBKEY(req), key) ||
        (sk_X509_EXTENSION_num(exts) > 0 && X509_REQ_add_extensions(req, exts) != 1) ||
        X509_REQ_sign(req, key, md_for(key)) <= 0 || (len = i2d_X509_REQ(req, &der)) <= 0 ||
        clc_b64_encode(der, (size_t)len, b64, NULL) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "building the CSR failed");
        goto out;
    }
out:
    ERR_clear_error();
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_REQ_free(req);
    return rc;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

static int set_serial(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn;
    int ok;

    if (RAND_bytes(raw, sizeof raw) != 1)
        return 0;
    raw[0] &= 0x7f; /* positive */
    raw[0] |= 0x01; /* and a full 16 bytes long */
    bn = BN_bin2bn(raw, sizeof raw, NULL);
    ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

enum clc_err kv_cert_make(const cJSON *pol, EVP_PKEY *key, int64_t not_before, int64_t not_after,
                          X509 *issuer, EVP_PKEY *issuer_key, int is_ca, X509 **out,
                          struct clc_errinfo *ei)
{
    X509 *x = X509_new();
    X509_NAME *name = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509V3_CTX ctx;
    enum clc_err rc = CLC_OK;
    int ok;

    *out = NULL;
    if (x == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    name = policy_subject(pol, ei, &rc);
    if (name == NULL)
        goto out;
    exts = policy_exts(pol, is_ca);
    ok = exts != NULL && X509_set_version(x, X509_VERSION_3) == 1 && set_serial(x) &&
         X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(x), (time_t)not_before) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(x), (time_t)not_after) != NULL &&
         X509_set_pubkey(x, key) == 1;
    for (int i = 0; ok && i < sk_X509_EXTENSION_num(exts); i++)
        ok = X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        ok = add_conf_ext(x, &ctx, NID_basic_constraints,
                          is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") &&
             add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
             add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
    }
    if (!ok ||
        X509_sign(x, issuer_key ? issuer_key : key, md_for(issuer_key ? issuer_key : key)) <= 0) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "building the certificate failed");
        goto out;
    }
    *out = x;
    x = NULL;
out:
    ERR_clear_error();
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

static int64_t asn1_time_unix(const ASN1_TIME *t, int *ok)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    if (ASN1_TIME_to_tm(t, &tm) != 1) {
        *ok = 0;
        return 0;
    }
    return clc_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec);
}

enum clc_err kv_cert_times(X509 *cert, int64_t *nbf, int64_t *exp)
{
    int ok = 1;

    *nbf = asn1_time_unix(X509_get0_notBefore(cert), &ok);
    *exp = asn1_time_unix(X509_get0_notAfter(cert), &ok);
    return ok ? CLC_OK : CLC_ERR_PARSE;
}
