/* X.509 helpers: PEM in and out, digests and x5t, and the small certificate
 * factory (self-signed CA, CA-signed leaf with SANs, SKI/AKI, key usages)
 * that the emulator and tests build their PKI with. */
#include "crypto/x509.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/file.h"
#include "core/rand.h"

#define X509_PEM_MAX (1024 * 1024)
/* Chains longer than this are not real chains. */
#define X509_CHAIN_MAX 32
/* RFC 5280 upper bound for a common name. */
#define X509_CN_MAX 64

/* First queued OpenSSL error as text, for messages; clears the queue. */
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

enum clc_err clc_x509_parse_pem_chain(const char *pem, size_t len, STACK_OF(X509) * *out,
                                      struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *sk = NULL;
    BIO *bio = NULL;
    X509 *x = NULL;
    unsigned long e = 0;

    *out = NULL;
    if (!pem || len == 0 || len > X509_PEM_MAX) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificates: empty or over %d bytes", X509_PEM_MAX);
        goto out;
    }
    sk = sk_X509_new_null();
    bio = BIO_new_mem_buf(pem, (int)len);
    if (!sk || !bio) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    ERR_clear_error();
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (sk_X509_num(sk) >= X509_CHAIN_MAX) {
            X509_free(x);
            rc = clc_errf(ei, CLC_ERR_LIMIT, "certificates: more than %d", X509_CHAIN_MAX);
            goto out;
        }
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
    /* The loop ends at the end of the text (no further BEGIN line) or at a
     * broken block; only the former is success. */
    e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) != ERR_LIB_PEM || ERR_GET_REASON(e) != PEM_R_NO_START_LINE) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificates: block %d is not a valid certificate",
                      sk_X509_num(sk) + 1);
        goto out;
    }
    if (sk_X509_num(sk) == 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificates: no PEM certificate found");
        goto out;
    }
    *out = sk;
    sk = NULL;
out:
    ERR_clear_error();
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "certificates: out of memory");
    sk_X509_pop_free(sk, X509_free);
    BIO_free(bio);
    return rc;
}

enum clc_err clc_x509_load_pem_file(const char *path, X509 **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *pem = NULL;
    size_t len = 0;
    STACK_OF(X509) *sk = NULL;

    *out = NULL;
    rc = clc_file_read(path, X509_PEM_MAX, &pem, &len, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_x509_parse_pem_chain(pem, len, &sk, ei);
    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc, "%s", path);
        goto out;
    }
    *out = sk_X509_shift(sk);
out:
    sk_X509_pop_free(sk, X509_free);
    free(pem);
    return rc;
}

/* PEM text of certs[0..n) appended to bio. */
static int write_pems(BIO *bio, X509 *const *certs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!certs[i] || PEM_write_bio_X509(bio, certs[i]) != 1)
            return 0;
    return 1;
}

enum clc_err clc_x509_to_pem(X509 *cert, char **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len = 0;

    *out = NULL;
    if (!bio || !write_pems(bio, &cert, 1)) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: PEM encoding failed");
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    *out = malloc((size_t)len + 1);
    if (!*out) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    memcpy(*out, data, (size_t)len);
    (*out)[len] = '\0';
out:
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

enum clc_err clc_x509_digest(X509 *cert, const char *md, unsigned char out[64], size_t *len)
{
    const EVP_MD *m = NULL;
    unsigned int n = 0;

    *len = 0;
    if (!cert || !md)
        return CLC_ERR_INVALID;
    if (strcmp(md, "SHA1") == 0)
        m = EVP_sha1();
    else if (strcmp(md, "SHA256") == 0)
        m = EVP_sha256();
    else
        return CLC_ERR_INVALID;
    if (X509_digest(cert, m, out, &n) != 1) {
        ERR_clear_error();
        return CLC_ERR_CRYPTO;
    }
    *len = n;
    return CLC_OK;
}

enum clc_err clc_x509_x5t(X509 *cert, char **out)
{
    unsigned char d[64];
    size_t n = 0;
    enum clc_err rc = clc_x509_digest(cert, "SHA1", d, &n);

    *out = NULL;
    if (rc != CLC_OK)
        return rc;
    return clc_b64url_encode(d, n, out, NULL);
}

/* SHA-1 of the subjectPublicKey BIT STRING content (RFC 5280 §4.2.1.2 (1)). */
static ASN1_OCTET_STRING *key_id(X509 *x)
{
    const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(x);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    ASN1_OCTET_STRING *id = NULL;

    if (!bits || EVP_Digest(bits->data, (size_t)bits->length, md, &n, EVP_sha1(), NULL) != 1)
        return NULL;
    id = ASN1_OCTET_STRING_new();
    if (id && ASN1_OCTET_STRING_set(id, md, (int)n) != 1) {
        ASN1_OCTET_STRING_free(id);
        id = NULL;
    }
    return id;
}

static int add_ski_aki(X509 *x, X509 *issuer)
{
    ASN1_OCTET_STRING *ski = key_id(x);
    ASN1_OCTET_STRING *issuer_id = NULL;
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    int ok = 0;

    if (!ski || !aki || X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0, 0) != 1)
        goto out;
    if (!issuer) {
        issuer_id = ASN1_OCTET_STRING_dup(ski);
    } else if (X509_get0_subject_key_id(issuer)) {
        issuer_id = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(issuer));
    } else {
        /* An issuer without SKI: derive the id the same way. */
        issuer_id = key_id(issuer);
    }
    if (!issuer_id)
        goto out;
    aki->keyid = issuer_id;
    ok = X509_add1_ext_i2d(x, NID_authority_key_identifier, aki, 0, 0) == 1;
out:
    ASN1_OCTET_STRING_free(ski);
    AUTHORITY_KEYID_free(aki);
    return ok;
}

/* One "DNS:name" or "IP:addr" entry; NULL when malformed. */
static GENERAL_NAME *make_san(const char *entry)
{
    GENERAL_NAME *gn = NULL;

    if (strncmp(entry, "DNS:", 4) == 0) {
        const char *name = entry + 4;
        size_t n = strlen(name);
        ASN1_IA5STRING *ia5 = NULL;
        if (n == 0 || n > 253 ||
            strspn(name, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-*_") != n)
            return NULL;
        ia5 = ASN1_IA5STRING_new();
        if (!ia5 || ASN1_STRING_set(ia5, name, (int)n) != 1) {
            ASN1_IA5STRING_free(ia5);
            return NULL;
        }
        gn = GENERAL_NAME_new();
        if (!gn) {
            ASN1_IA5STRING_free(ia5);
            return NULL;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    } else if (strncmp(entry, "IP:", 3) == 0) {
        unsigned char addr[16];
        int n = 0;
        ASN1_OCTET_STRING *os = NULL;
        if (inet_pton(AF_INET, entry + 3, addr) == 1)
            n = 4;
        else if (inet_pton(AF_INET6, entry + 3, addr) == 1)
            n = 16;
        else
            return NULL;
        os = ASN1_OCTET_STRING_new();
        if (!os || ASN1_OCTET_STRING_set(os, addr, n) != 1) {
            ASN1_OCTET_STRING_free(os);
            return NULL;
        }
        gn = GENERAL_NAME_new();
        if (!gn) {
            ASN1_OCTET_STRING_free(os);
            return NULL;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, os);
    }
    return gn;
}

static enum clc_err add_sans(X509 *x, const char *const *sans, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    GENERAL_NAMES *gens = NULL;

    if (!sans || !sans[0])
        return CLC_OK;
    gens = sk_GENERAL_NAME_new_null();
    if (!gens) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; sans[i]; i++) {
        GENERAL_NAME *gn = make_san(sans[i]);
        if (!gn) {
            rc = clc_errf(ei, CLC_ERR_INVALID,
                          "certificate: SAN %zu is not 'DNS:name' or 'IP:address'", i);
            goto out;
        }
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
    if (X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0) != 1)
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: adding SANs failed");
out:
    GENERAL_NAMES_free(gens);
    return rc;
}

static int add_constraints_and_usage(X509 *x, const struct clc_x509_spec *spec, int rsa)
{
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = NULL;
    int ok = 0;

    if (!bc || !ku)
        goto out;
    bc->ca = spec->is_ca ? 0xFF : 0;
    if (X509_add1_ext_i2d(x, NID_basic_constraints, bc, 1, 0) != 1)
        goto out;
    /* Bit numbers from RFC 5280 §4.2.1.3. */
    if (spec->is_ca) {
        ok = ASN1_BIT_STRING_set_bit(ku, 5, 1) && ASN1_BIT_STRING_set_bit(ku, 6, 1);
    } else {
        ok = ASN1_BIT_STRING_set_bit(ku, 0, 1);
        if (ok && rsa)
            ok = ASN1_BIT_STRING_set_bit(ku, 2, 1);
    }
    if (!ok || X509_add1_ext_i2d(x, NID_key_usage, ku, 1, 0) != 1) {
        ok = 0;
        goto out;
    }
    if (spec->server_auth || spec->client_auth) {
        eku = sk_ASN1_OBJECT_new_null();
        ok = eku != NULL;
        if (ok && spec->server_auth)
            ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_server_auth)) > 0;
        if (ok && spec->client_auth)
            ok = sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth)) > 0;
        if (ok)
            ok = X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, 0) == 1;
    }
out:
    BASIC_CONSTRAINTS_free(bc);
    ASN1_BIT_STRING_free(ku);
    /* The objects are OpenSSL's static table entries: free only the stack. */
    sk_ASN1_OBJECT_free(eku);
    return ok;
}

static enum clc_err set_serial(X509 *x)
{
    unsigned char r[16];
    BIGNUM *bn = NULL;
    enum clc_err rc = clc_rand_bytes(r, sizeof r);

    if (rc != CLC_OK)
        return rc;
    r[0] &= 0x7f; /* positive in DER's two's complement */
    r[0] |= 0x40; /* and always 16 octets long */
    bn = BN_bin2bn(r, sizeof r, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
        rc = CLC_ERR_CRYPTO;
    BN_free(bn);
    return rc;
}

static enum clc_err check_spec(const struct clc_x509_spec *spec,
                               const struct clc_signer *subject_key, X509 *issuer,
                               const struct clc_signer *issuer_key, struct clc_errinfo *ei)
{
    if (!spec || !subject_key)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: spec and subject key are required");
    if (!spec->subject_cn || !spec->subject_cn[0] || strlen(spec->subject_cn) > X509_CN_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: subject CN must be 1 to %d bytes",
                        X509_CN_MAX);
    if (spec->not_after <= spec->not_before)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: not_after must follow not_before");
    if (issuer && !issuer_key)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: issuer given without its key");
    if (issuer && X509_check_private_key(issuer, clc_signer_pkey(issuer_key)) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: issuer key does not match issuer");
    }
    if (!issuer && issuer_key &&
        EVP_PKEY_eq(clc_signer_pkey(issuer_key), clc_signer_pkey(subject_key)) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID,
                        "certificate: a self-signed certificate is signed by its own key");
    }
    return CLC_OK;
}

enum clc_err clc_x509_make(const struct clc_x509_spec *spec, const struct clc_signer *subject_key,
                           X509 *issuer, const struct clc_signer *issuer_key, X509 **out,
                           struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    X509 *x = NULL;
    X509_NAME *name = NULL;
    EVP_PKEY *signing = NULL;
    char why[160];

    *out = NULL;
    rc = check_spec(spec, subject_key, issuer, issuer_key, ei);
    if (rc != CLC_OK)
        goto out;
    signing = clc_signer_pkey(issuer ? issuer_key : subject_key);
    x = X509_new();
    name = X509_NAME_new();
    if (!x || !name) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   (const unsigned char *)spec->subject_cn, -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)spec->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)spec->not_after) ||
        X509_set_pubkey(x, clc_signer_pkey(subject_key)) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: setting fields failed: %s",
                      ossl_reason(why, sizeof why));
        goto out;
    }
    rc = set_serial(x);
    if (rc != CLC_OK) {
        clc_errf(ei, rc, "certificate: serial number failed");
        goto out;
    }
    rc = add_sans(x, spec->sans, ei);
    if (rc != CLC_OK)
        goto out;
    if (!add_ski_aki(x, issuer) ||
        !add_constraints_and_usage(x, spec, EVP_PKEY_is_a(clc_signer_pkey(subject_key), "RSA"))) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: adding extensions failed");
        goto out;
    }
    if (X509_sign(x, signing, EVP_sha256()) <= 0) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: signing failed: %s",
                      ossl_reason(why, sizeof why));
        goto out;
    }
    *out = x;
    x = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "certificate: out of memory");
    ERR_clear_error();
    X509_NAME_free(name);
    X509_free(x);
    return rc;
}

enum clc_err clc_x509_save_pem(X509 *const *certs, size_t n, const char *path, int mode,
                               struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    BIO *bio = NULL;
    char *data = NULL;
    long len = 0;

    if (!certs || n == 0 || mode < 0 || mode > 07777) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "certificate file %s: nothing to write or bad mode",
                      path);
        goto out;
    }
    bio = BIO_new(BIO_s_mem());
    if (!bio || !write_pems(bio, certs, n)) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate file %s: PEM encoding failed", path);
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    rc = clc_file_write_atomic(path, data, (size_t)len, (mode_t)mode, ei);
out:
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

/* Dup of an AlgorithmIdentifier parameter as X509_ALGOR_set0 takes it; 0 on a kind it does not
 * know (the RSA and EC keys in use have none or an OID). */
static int param_dup(int ptype, const void *pval, void **out)
{
    *out = NULL;
    if (ptype == V_ASN1_UNDEF || ptype == V_ASN1_NULL)
        return 1;
    if (ptype == V_ASN1_OBJECT)
        *out = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        *out = ASN1_STRING_dup(pval);
    return *out != NULL;
}

/* X509_set_pubkey / X509_REQ_set_pubkey on a provider key encode the SubjectPublicKeyInfo, decode
 * it back into a new key and throw that away (about 0.4 ms). A certificate or request being built
 * only needs the encoded form, so copy the algorithm and key bits of the key's own DER instead:
 * the bytes that get signed and sent are the same. */
int clc_x509_pubkey_set(X509_PUBKEY *dst, EVP_PKEY *key)
{
    unsigned char *der = NULL, *enc = NULL;
    const unsigned char *p;
    const unsigned char *end;
    X509_ALGOR *alg = NULL;
    ASN1_BIT_STRING *bits = NULL;
    const ASN1_OBJECT *aobj = NULL;
    const void *pval = NULL;
    ASN1_OBJECT *obj = NULL;
    void *param = NULL;
    long seqlen = 0;
    int len, tag = 0, cls = 0, ptype = V_ASN1_UNDEF, ok = 0;

    len = dst && key ? i2d_PUBKEY(key, &der) : -1;
    if (len <= 0)
        goto out;
    p = der;
    if ((ASN1_get_object(&p, &seqlen, &tag, &cls, len) & 0x80) != 0 || tag != V_ASN1_SEQUENCE ||
        cls != V_ASN1_UNIVERSAL || p + seqlen != der + len)
        goto out;
    end = p + seqlen;
    alg = d2i_X509_ALGOR(NULL, &p, end - p);
    bits = alg ? d2i_ASN1_BIT_STRING(NULL, &p, end - p) : NULL;
    if (bits == NULL || p != end || bits->length <= 0)
        goto out;
    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
    obj = OBJ_dup(aobj);
    enc = OPENSSL_memdup(bits->data, (size_t)bits->length);
    if (obj == NULL || enc == NULL || !param_dup(ptype, pval, &param))
        goto out;
    /* On success set0 owns obj, param and enc; it fails only before taking any of them. */
    if (X509_PUBKEY_set0_param(dst, obj, ptype, param, enc, bits->length) != 1)
        goto out;
    obj = NULL;
    param = NULL;
    enc = NULL;
    ok = 1;
out:
    if (param != NULL)
        ptype == V_ASN1_OBJECT ? ASN1_OBJECT_free(param) : ASN1_STRING_free(param);
    ASN1_OBJECT_free(obj);
    OPENSSL_free(enc);
    ASN1_BIT_STRING_free(bits);
    X509_ALGOR_free(alg);
    OPENSSL_free(der);
    return ok;
}
