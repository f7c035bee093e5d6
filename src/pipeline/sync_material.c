/* The secret behind a Key Vault certificate turned into a key and a chain
 * (PKCS#12 or PEM, as the vault's content type says), checked (one leaf, the
 * key is the leaf's), and written back out as the files a server reads. Key
 * bytes only ever live in clc_secret buffers or OpenSSL's secure heap. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "core/b64.h"
#include "crypto/cert.h"
#include "crypto/x509.h"
#include "pipeline/sync_int.h"

#define PKCS12_MAX (256 * 1024)

void clc_sync_material_cleanup(struct clc_sync_material *m)
{
    EVP_PKEY_free(m->key);
    clc_cert_chain_free(m->chain);
    memset(m, 0, sizeof *m);
}

static enum clc_err bio_to_secret(BIO *b, struct clc_secret **out, struct clc_errinfo *ei)
{
    char *p = NULL;
    long n = BIO_get_mem_data(b, &p);
    if (n <= 0 || clc_secret_new(p, (size_t)n, out) != CLC_OK)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

/* Orders leaf + others into one path and checks the key is the leaf's. */
static enum clc_err finish(EVP_PKEY *key, STACK_OF(X509) * certs, struct clc_sync_material *out,
                           struct clc_errinfo *ei)
{
    enum clc_err rc;
    STACK_OF(X509) *ordered = NULL;
    unsigned char md[64];
    size_t mdlen = 0;

    if (sk_X509_num(certs) < 1)
        return clc_errf(ei, CLC_ERR_PARSE, "the secret holds no certificate");
    if ((rc = clc_cert_chain_order(certs, &ordered, ei)) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_PARSE, "the secret's certificates");
    X509 *leaf = sk_X509_value(ordered, 0);
    if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
        clc_cert_chain_free(ordered);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID,
                        "the private key in the secret does not match its certificate");
    }
    if (clc_x509_digest(leaf, "SHA256", md, &mdlen) != CLC_OK || mdlen != 32) {
        clc_cert_chain_free(ordered);
        return clc_errf(ei, CLC_ERR_CRYPTO, "hashing the certificate failed");
    }
    for (size_t i = 0; i < 32; i++)
        snprintf(out->sha256_hex + 2 * i, 3, "%02X", md[i]);
    if (!EVP_PKEY_up_ref(key)) {
        clc_cert_chain_free(ordered);
        return clc_errf(ei, CLC_ERR_CRYPTO, "out of memory");
    }
    out->key = key;
    out->chain = ordered;
    return CLC_OK;
}

static enum clc_err parse_pkcs12(const unsigned char *der, size_t len,
                                 struct clc_sync_material *out, struct clc_errinfo *ei)
{
    enum clc_err rc;
    const unsigned char *p = der;
    PKCS12 *p12 = NULL;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *ca = NULL;

    if (len > PKCS12_MAX || !(p12 = d2i_PKCS12(NULL, &p, (long)len)) || p != der + len) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "the secret is not a PKCS#12 (PFX) file");
        goto out;
    }
    /* Key Vault's PFX has an empty password; older tools meant "none". */
    if (!PKCS12_parse(p12, "", &key, &leaf, &ca) && !PKCS12_parse(p12, NULL, &key, &leaf, &ca)) {
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "the PKCS#12 secret cannot be read without a password (Key Vault's have "
                      "none)");
        goto out;
    }
    if (!key) {
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "the PKCS#12 secret holds no private key (is the key exportable?)");
        goto out;
    }
    if (!ca && !(ca = sk_X509_new_null())) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (leaf) {
        if (!sk_X509_insert(ca, leaf, 0)) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
        leaf = NULL;
    }
    rc = finish(key, ca, out, ei);
out:
    ERR_clear_error();
    PKCS12_free(p12);
    EVP_PKEY_free(key);
    X509_free(leaf);
    sk_X509_pop_free(ca, X509_free);
    return rc;
}

static enum clc_err parse_pem(const char *pem, size_t len, struct clc_sync_material *out,
                              struct clc_errinfo *ei)
{
    enum clc_err rc;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *certs = NULL;
    BIO *b = NULL;
    int nkeys = 0;
    const char *s = pem, *end = pem + len;

    /* Exactly one key block: two would leave it ambiguous which one serves. */
    while ((s = strstr(s, "-----BEGIN ")) != NULL && s < end) {
        if (!strncmp(s + 11, "PRIVATE KEY-----", 16) ||
            !strncmp(s + 11, "EC PRIVATE KEY-----", 19) ||
            !strncmp(s + 11, "RSA PRIVATE KEY-----", 20))
            nkeys++;
        s += 11;
    }
    if (nkeys != 1) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "the PEM secret holds %d private keys (expected one)",
                      nkeys);
        goto out;
    }
    if (!(b = BIO_new_mem_buf(pem, (int)len)) ||
        !(key = PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)""))) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "the PEM secret's private key cannot be read");
        goto out;
    }
    if ((rc = clc_x509_parse_pem_chain(pem, len, &certs, ei)) != CLC_OK) {
        clc_err_wrap(ei, CLC_ERR_PARSE, "the PEM secret's certificates");
        rc = CLC_ERR_PARSE;
        goto out;
    }
    rc = finish(key, certs, out, ei);
out:
    ERR_clear_error();
    BIO_free(b);
    EVP_PKEY_free(key);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

enum clc_err clc_sync_material_parse(const char *content_type, const struct clc_secret *value,
                                     struct clc_sync_material *out, struct clc_errinfo *ei)
{
    const char *v = clc_secret_reveal(value);
    size_t n = clc_secret_len(value);
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    while (n > 0 && (*v == ' ' || *v == '\n' || *v == '\r' || *v == '\t')) {
        v++;
        n--;
    }
    if (n == 0)
        return clc_errf(ei, CLC_ERR_PARSE, "the secret is empty");
    int pem_ct = content_type && !strcmp(content_type, "application/x-pem-file");
    if (!strncmp(v, "-----BEGIN", 10))
        return parse_pem(v, n, out, ei);
    /* Not PEM text: base64, of a PFX or (older SDKs) of PEM text. */
    if (clc_b64_decode(v, n, &raw, &rawlen) != CLC_OK)
        return clc_errf(ei, CLC_ERR_PARSE, "the secret (%s) is neither PEM nor base64",
                        content_type ? content_type : "no content type");
    if (rawlen >= 10 && !memcmp(raw, "-----BEGIN", 10))
        rc = parse_pem((const char *)raw, rawlen, out, ei);
    else if (pem_ct)
        rc = clc_errf(ei, CLC_ERR_PARSE, "the secret says application/x-pem-file but is not PEM");
    else
        rc = parse_pkcs12(raw, rawlen, out, ei);
    OPENSSL_cleanse(raw, rawlen);
    free(raw);
    return rc;
}

enum clc_err clc_sync_pem_certs(STACK_OF(X509) * chain, int from, int to, char **out, size_t *len,
                                struct clc_errinfo *ei)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL;
    *out = NULL;
    *len = 0;
    if (!b)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (int i = from; i < to && i < sk_X509_num(chain); i++)
        if (!PEM_write_bio_X509(b, sk_X509_value(chain, i))) {
            BIO_free(b);
            return clc_errf(ei, CLC_ERR_CRYPTO, "writing a certificate as PEM failed");
        }
    long n = BIO_get_mem_data(b, &p);
    *out = malloc((size_t)n + 1);
    if (*out) {
        if (n > 0)
            memcpy(*out, p, (size_t)n);
        (*out)[n] = '\0';
        *len = (size_t)n;
    }
    BIO_free(b);
    return *out ? CLC_OK : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
}

enum clc_err clc_sync_pem_key(EVP_PKEY *key, struct clc_secret **out, struct clc_errinfo *ei)
{
    /* The secure-heap BIO is wiped on free. */
    BIO *b = BIO_new(BIO_s_secmem());
    enum clc_err rc;
    *out = NULL;
    if (!b)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (!PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL))
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "writing the private key as PEM failed");
    else
        rc = bio_to_secret(b, out, ei);
    BIO_free(b);
    return rc;
}

enum clc_err clc_sync_pem_bundle(const struct clc_sync_material *m, struct clc_secret **out,
                                 struct clc_errinfo *ei)
{
    BIO *b = BIO_new(BIO_s_secmem());
    enum clc_err rc = CLC_OK;
    *out = NULL;
    if (!b)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    /* The extension's order: leaf, intermediates, root, then the key. */
    for (int i = 0; i < sk_X509_num(m->chain) && rc == CLC_OK; i++)
        if (!PEM_write_bio_X509(b, sk_X509_value(m->chain, i)))
            rc = clc_errf(ei, CLC_ERR_CRYPTO, "writing a certificate as PEM failed");
    if (rc == CLC_OK && !PEM_write_bio_PrivateKey(b, m->key, NULL, NULL, 0, NULL, NULL))
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "writing the private key as PEM failed");
    if (rc == CLC_OK)
        rc = bio_to_secret(b, out, ei);
    BIO_free(b);
    return rc;
}

enum clc_err clc_sync_pkcs12(const struct clc_sync_material *m, const struct clc_secret *pw,
                             struct clc_secret **out, struct clc_errinfo *ei)
{
    STACK_OF(X509) *ca = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    BIO *b = NULL;
    enum clc_err rc;

    *out = NULL;
    for (int i = 1; ca && i < sk_X509_num(m->chain); i++)
        if (!sk_X509_push(ca, sk_X509_value(m->chain, i))) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    if (!ca) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* OpenSSL 3 defaults: AES-256-CBC, PBKDF2, SHA-256 MAC. */
    p12 = PKCS12_create(pw ? clc_secret_reveal(pw) : NULL, NULL, m->key, sk_X509_value(m->chain, 0),
                        ca, 0, 0, 0, 0, 0);
    if (!p12 || !(b = BIO_new(BIO_s_secmem())) || i2d_PKCS12_bio(b, p12) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "making the PKCS#12 file failed");
        goto out;
    }
    rc = bio_to_secret(b, out, ei);
out:
    ERR_clear_error();
    sk_X509_free(ca); /* borrowed references */
    PKCS12_free(p12);
    BIO_free(b);
    return rc;
}

enum clc_err clc_sync_pem_leaf_sha256(const char *pem, size_t len, char out[65],
                                      struct clc_errinfo *ei)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    unsigned char md[64];
    size_t mdlen = 0;
    enum clc_err rc = CLC_OK;
    out[0] = '\0';
    if (!x || clc_x509_digest(x, "SHA256", md, &mdlen) != CLC_OK || mdlen != 32)
        rc = clc_errf(ei, CLC_ERR_PARSE, "no readable certificate");
    else
        for (size_t i = 0; i < 32; i++)
            snprintf(out + 2 * i, 3, "%02X", md[i]);
    ERR_clear_error();
    X509_free(x);
    BIO_free(b);
    return rc;
}
