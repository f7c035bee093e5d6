/* The emulated CA's hierarchy and what it publishes: a root and an issuing
 * CA made at first start and kept in <work dir>/enterprise-ca (keys 0600),
 * PKCS#7 certs-only bundles, the CRLs, and GET /CertEnroll/{file}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/rand.h"
#include "crypto/x509.h"
#include "emulator/ca.h"
#include "emulator/state.h"

#define ROOT_YEARS 20
#define ISSUING_YEARS 10
#define YEAR_S (365LL * 86400)
#define PATH_LEN 4200

/* ---- certificates ---- */

/* 128 random bits, positive, first octet never zero: always 16 octets. */
static int set_random_serial(X509 *x)
{
    unsigned char b[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    int ok = 0;

    if (clc_rand_bytes(b, sizeof b) != CLC_OK)
        return 0;
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof b, NULL);
    ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

static int add_conf_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

static X509_NAME *ca_name(const char *cn)
{
    X509_NAME *n = X509_NAME_new();

    /* Most significant first, as AD CS names an enterprise CA. */
    if (n == NULL ||
        X509_NAME_add_entry_by_txt(n, "DC", MBSTRING_ASC, (const unsigned char *)"test", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "DC", MBSTRING_ASC, (const unsigned char *)"certlc", -1, -1,
                                   0) != 1 ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) !=
            1) {
        X509_NAME_free(n);
        return NULL;
    }
    return n;
}

static enum clc_err make_ca_cert(const char *cn, const struct clc_signer *key, X509 *issuer,
                                 const struct clc_signer *issuer_key, int64_t nb, int64_t na,
                                 X509 **out, struct clc_errinfo *ei)
{
    X509 *x = X509_new();
    X509_NAME *name = ca_name(cn);
    X509V3_CTX ctx;
    int ok;

    *out = NULL;
    ok = x != NULL && name != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
         set_random_serial(x) && X509_set_subject_name(x, name) == 1 &&
         X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL &&
         X509_set_pubkey(x, clc_signer_pkey(key)) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        ok =
            add_conf_ext(x, &ctx, NID_basic_constraints,
                         issuer ? "critical,CA:TRUE,pathlen:0" : "critical,CA:TRUE") &&
            add_conf_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign,cRLSign") &&
            add_conf_ext(x, &ctx, NID_subject_key_identifier, "hash") &&
            (issuer == NULL ||
             add_conf_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) &&
            X509_sign(x, clc_signer_pkey(issuer_key ? issuer_key : key), EVP_sha256()) > 0;
    }
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_CRYPTO, "making the CA certificate '%s' failed", cn);
    }
    *out = x;
    return CLC_OK;
}

static void path_of(const struct emu_ca *ca, const char *file, char *out)
{
    snprintf(out, PATH_LEN, "%s/%s", ca->dir, file);
}

static enum clc_err create(struct emu_ca *ca, int64_t now, struct clc_errinfo *ei)
{
    char p[PATH_LEN];
    int bits = strcmp(ca->key_type, "RSA") == 0 ? 2048 : 256;
    enum clc_err rc;

    rc = clc_signer_generate(ca->key_type, bits, &ca->root_key, ei);
    if (rc == CLC_OK)
        rc = clc_signer_generate(ca->key_type, bits, &ca->issuing_key, ei);
    if (rc == CLC_OK)
        rc = make_ca_cert("certlc-ROOT-CA", ca->root_key, NULL, NULL, now - 86400,
                          now + ROOT_YEARS * YEAR_S, &ca->root, ei);
    if (rc == CLC_OK)
        rc = make_ca_cert("certlc-ISSUING-CA", ca->issuing_key, ca->root, ca->root_key, now - 86400,
                          now + ISSUING_YEARS * YEAR_S, &ca->issuing, ei);
    if (rc != CLC_OK)
        return rc;
    /* Keys first: a certificate whose key is not on disk is useless. */
    path_of(ca, "root.key", p);
    rc = clc_signer_save_pem(ca->root_key, p, ei);
    path_of(ca, "issuing.key", p);
    if (rc == CLC_OK)
        rc = clc_signer_save_pem(ca->issuing_key, p, ei);
    path_of(ca, "root.crt", p);
    if (rc == CLC_OK)
        rc = clc_x509_save_pem(&ca->root, 1, p, 0644, ei);
    path_of(ca, "issuing.crt", p);
    if (rc == CLC_OK)
        rc = clc_x509_save_pem(&ca->issuing, 1, p, 0644, ei);
    if (rc == CLC_OK)
        clc_log(CLC_LOG_INFO, "emu.ca.created", CLC_LS("dir", ca->dir),
                CLC_LS("key_type", ca->key_type));
    return rc;
}

static enum clc_err load(struct emu_ca *ca, struct clc_errinfo *ei)
{
    char p[PATH_LEN];
    enum clc_err rc;

    path_of(ca, "root.crt", p);
    rc = clc_x509_load_pem_file(p, &ca->root, ei);
    path_of(ca, "issuing.crt", p);
    if (rc == CLC_OK)
        rc = clc_x509_load_pem_file(p, &ca->issuing, ei);
    path_of(ca, "root.key", p);
    if (rc == CLC_OK)
        rc = clc_signer_load_pem(p, &ca->root_key, ei);
    path_of(ca, "issuing.key", p);
    if (rc == CLC_OK)
        rc = clc_signer_load_pem(p, &ca->issuing_key, ei);
    if (rc != CLC_OK)
        return rc;
    if (X509_check_private_key(ca->root, clc_signer_pkey(ca->root_key)) != 1 ||
        X509_check_private_key(ca->issuing, clc_signer_pkey(ca->issuing_key)) != 1 ||
        X509_verify(ca->issuing, X509_get0_pubkey(ca->root)) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_CRYPTO,
                        "the CA files in %s do not belong together (remove the directory to "
                        "make a new CA)",
                        ca->dir);
    }
    return CLC_OK;
}

enum clc_err ca_pki_init(struct emu_ca *ca, int64_t now, struct clc_errinfo *ei)
{
    static const char *const files[] = {"root.crt", "root.key", "issuing.crt", "issuing.key"};
    char p[PATH_LEN];
    size_t present = 0;

    for (size_t i = 0; i < 4; i++) {
        path_of(ca, files[i], p);
        present += access(p, F_OK) == 0;
    }
    if (present == 4)
        return load(ca, ei);
    if (present != 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s holds only some of root.crt, root.key, issuing.crt, issuing.key; "
                        "refusing to replace a CA key (remove the directory to start over)",
                        ca->dir);
    return create(ca, now, ei);
}

void ca_pki_cleanup(struct emu_ca *ca)
{
    X509_free(ca->root);
    X509_free(ca->issuing);
    clc_signer_free(ca->root_key);
    clc_signer_free(ca->issuing_key);
    free(ca->crl);
    free(ca->root_crl);
    ca->root = ca->issuing = NULL;
    ca->root_key = ca->issuing_key = NULL;
    ca->crl = ca->root_crl = NULL;
}

/* ---- PKCS#7 and base64 ---- */

enum clc_err ca_pkcs7(X509 *const *certs, size_t n, unsigned char **der, size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    unsigned char *out = NULL;
    int ok, dl = 0;

    *der = NULL;
    *len = 0;
    /* A degenerate SignedData: no signers, the certificates only, and an
     * encapsulated content of type data with no content at all (RFC 5652
     * 5.2, as "openssl crl2pkcs7 -nocrl" writes it). */
    ok = p7 != NULL && PKCS7_set_type(p7, NID_pkcs7_signed) == 1;
    if (ok)
        p7->d.sign->contents->type = OBJ_nid2obj(NID_pkcs7_data);
    for (size_t i = 0; ok && i < n; i++)
        ok = PKCS7_add_certificate(p7, certs[i]) == 1;
    if (ok) {
        dl = i2d_PKCS7(p7, &out);
        ok = dl > 0;
    }
    PKCS7_free(p7);
    ERR_clear_error();
    if (!ok)
        return CLC_ERR_CRYPTO;
    *der = out;
    *len = (size_t)dl;
    return CLC_OK;
}

char *ca_b64_lines(const unsigned char *der, size_t len, const char *label)
{
    struct clc_buf b;
    char *flat = NULL;
    size_t flen = 0;
    enum clc_err rc;

    if (clc_b64_encode(der, len, &flat, &flen) != CLC_OK)
        return NULL;
    clc_buf_init(&b, flen + flen / 32 + 256);
    rc = label ? clc_buf_appendf(&b, "-----BEGIN %s-----\r\n", label) : CLC_OK;
    for (size_t i = 0; rc == CLC_OK && i < flen; i += 64) {
        rc = clc_buf_append(&b, flat + i, flen - i < 64 ? flen - i : 64);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&b, "\r\n");
    }
    if (rc == CLC_OK && label)
        rc = clc_buf_appendf(&b, "-----END %s-----\r\n", label);
    free(flat);
    if (rc != CLC_OK) {
        clc_buf_cleanup(&b);
        return NULL;
    }
    return clc_buf_take(&b, NULL);
}

/* ---- CRLs ---- */

static int add_revoked(X509_CRL *crl, const struct ca_request *q)
{
    X509_REVOKED *rev = X509_REVOKED_new();
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = NULL;
    ASN1_ENUMERATED *reason = NULL;
    int ok;

    ok = rev != NULL && BN_hex2bn(&bn, q->serial) > 0 &&
         (serial = BN_to_ASN1_INTEGER(bn, NULL)) != NULL &&
         X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
         (when = ASN1_TIME_set(NULL, (time_t)q->revoked_at)) != NULL &&
         X509_REVOKED_set_revocationDate(rev, when) == 1;
    /* RFC 5280 5.3.1: "unspecified" is expressed by leaving the reason out. */
    if (ok && q->revocation_reason != 0)
        ok = (reason = ASN1_ENUMERATED_new()) != NULL &&
             ASN1_ENUMERATED_set(reason, q->revocation_reason) == 1 &&
             X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0, 0) == 1;
    if (ok && X509_CRL_add0_revoked(crl, rev) == 1)
        rev = NULL;
    else
        ok = 0;
    ASN1_ENUMERATED_free(reason);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    X509_REVOKED_free(rev);
    return ok;
}

static enum clc_err sign_crl(struct emu_ca *ca, X509 *issuer, const struct clc_signer *key,
                             int with_rows, int64_t now, unsigned char **der, size_t *len)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)now);
    ASN1_TIME *t2 = ASN1_TIME_set(NULL, (time_t)(now + ca->crl_period_s));
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    X509V3_CTX ctx;
    X509_EXTENSION *aki = NULL;
    unsigned char *out = NULL;
    int ok, dl = 0;

    ok = crl && t1 && t2 && num && X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
         X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1 &&
         X509_CRL_set1_lastUpdate(crl, t1) == 1 && X509_CRL_set1_nextUpdate(crl, t2) == 1 &&
         ASN1_INTEGER_set_int64(num, ca->crl_number) == 1;
    for (size_t i = 0; ok && with_rows && i < ca->nreq; i++)
        if (ca->req[i].disposition == CA_DISP_REVOKED)
            ok = add_revoked(crl, &ca->req[i]);
    if (ok) {
        X509V3_set_ctx(&ctx, issuer, NULL, NULL, crl, 0);
        aki = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
        ok = aki != NULL && X509_CRL_add_ext(crl, aki, -1) == 1 &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1 &&
             X509_CRL_sort(crl) == 1 && X509_CRL_sign(crl, clc_signer_pkey(key), EVP_sha256()) > 0;
    }
    if (ok) {
        dl = i2d_X509_CRL(crl, &out);
        ok = dl > 0;
    }
    X509_EXTENSION_free(aki);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    ERR_clear_error();
    if (!ok)
        return CLC_ERR_CRYPTO;
    *der = out;
    *len = (size_t)dl;
    return CLC_OK;
}

enum clc_err ca_crl_sign(struct emu_ca *ca, int64_t now, struct clc_errinfo *ei)
{
    unsigned char *crl = NULL, *root_crl = NULL;
    size_t len = 0, root_len = 0;
    enum clc_err rc;

    ca->crl_number++;
    rc = sign_crl(ca, ca->issuing, ca->issuing_key, 1, now, &crl, &len);
    if (rc == CLC_OK)
        rc = sign_crl(ca, ca->root, ca->root_key, 0, now, &root_crl, &root_len);
    if (rc != CLC_OK) {
        free(crl);
        return clc_errf(ei, rc, "signing the CRL failed");
    }
    free(ca->crl);
    free(ca->root_crl);
    ca->crl = crl;
    ca->crl_len = len;
    ca->root_crl = root_crl;
    ca->root_crl_len = root_len;
    ca->crl_this = now;
    ca->crl_next = now + ca->crl_period_s;
    /* The CRL number must keep growing across restarts. */
    return ca_store_save(ca, ei);
}

void ca_crl_refresh(struct emu_ca *ca, int64_t now)
{
    struct clc_errinfo ei = {0};

    /* Publish ahead of nextUpdate (the last tenth of the period), as a CA
     * does so that relying parties never hold an expired CRL; and anew when
     * the clock was set back before thisUpdate. */
    if (ca->crl != NULL && now < ca->crl_next - ca->crl_period_s / 10 && now >= ca->crl_this)
        return;
    if (ca_crl_sign(ca, now, &ei) != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.ca.crl_failed", CLC_LS("reason", ei.msg));
}

/* ---- /CertEnroll ---- */

void ca_h_certenroll(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    const char *file = emu_req_param(r, "file");
    unsigned char *der = NULL, *copy = NULL;
    size_t len = 0;
    char enc[8] = "";
    int is_crl = 0, pem;
    char *text;

    pem = emu_req_query(r, "Enc", enc, sizeof enc) && strcmp(enc, "b64") == 0;
    pthread_mutex_lock(&ca->mu);
    ca_crl_refresh(ca, emu_now(r->emu));
    if (strcmp(file, CA_FILE_ISSUING_CRT) == 0 || strcmp(file, CA_FILE_ROOT_CRT) == 0) {
        X509 *c = strcmp(file, CA_FILE_ROOT_CRT) == 0 ? ca->root : ca->issuing;
        int n = i2d_X509(c, &der);
        len = n > 0 ? (size_t)n : 0;
    } else if (strcmp(file, CA_FILE_ISSUING_CRL) == 0 || strcmp(file, CA_FILE_ROOT_CRL) == 0) {
        int root = strcmp(file, CA_FILE_ROOT_CRL) == 0;
        is_crl = 1;
        len = root ? ca->root_crl_len : ca->crl_len;
        copy = malloc(len ? len : 1);
        if (copy != NULL)
            memcpy(copy, root ? ca->root_crl : ca->crl, len);
        der = copy;
    } else {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_error(r, 404, "NotFound", "no such file under /CertEnroll");
        return;
    }
    pthread_mutex_unlock(&ca->mu);
    if (der == NULL || len == 0) {
        OPENSSL_free(is_crl ? NULL : der);
        free(copy);
        emu_reply_error(r, 500, "Internal", "encoding failed");
        return;
    }
    if (pem) {
        text = ca_b64_lines(der, len, is_crl ? "X509 CRL" : "CERTIFICATE");
        if (text != NULL)
            emu_reply(r, 200, "application/x-pem-file", text, strlen(text), NULL);
        else
            emu_reply_error(r, 500, "Internal", "out of memory");
        free(text);
    } else {
        emu_reply(r, 200, is_crl ? "application/pkix-crl" : "application/pkix-cert", der, len,
                  NULL);
    }
    if (is_crl)
        free(copy);
    else
        OPENSSL_free(der);
}
