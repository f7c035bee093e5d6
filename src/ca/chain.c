/* Certificates as CAs send them: PKCS#7 certs-only bundles (DER, bare base64
 * as EST sends, or PEM armour, which AD CS labels CERTIFICATE), single
 * certificates in PEM or DER, and the ordering of an unordered set into a
 * path, leaf first. */
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "core/b64.h"
#include "core/file.h"
#include "crypto/x509.h"

/* A PKCS#7 bundle or chain longer than this is not a certificate chain. */
#define CHAIN_MAX 16
#define PEM_BUF_MAX (2 * 1024 * 1024)

/* Finds "-----BEGIN <anything>-----" ... "-----END": the base64 between
 * (headers are not used by these formats). 1 when found. */
static int pem_body(const char *s, size_t len, const char **b, size_t *blen)
{
    const char *end = s + len;
    const char *p = NULL;
    const char *q = NULL;

    for (p = s; p + 11 <= end; p++)
        if (memcmp(p, "-----BEGIN ", 11) == 0)
            break;
    if (p + 11 > end)
        return 0;
    p = memchr(p, '\n', (size_t)(end - p));
    if (!p)
        return 0;
    p++;
    for (q = p; q + 9 <= end; q++)
        if (memcmp(q, "-----END ", 9) == 0)
            break;
    if (q + 9 > end)
        return 0;
    *b = p;
    *blen = (size_t)(q - p);
    return 1;
}

static int looks_base64(const unsigned char *p, size_t len)
{
    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '=' || c == '\r' || c == '\n' || c == ' ' || c == '\t'))
            return 0;
    }
    return 1;
}

/* DER bytes of data given as DER, PEM or bare base64. *der is either data
 * itself (*owned NULL) or a decoded copy (*owned = it). */
static enum clc_err to_der(const void *data, size_t len, const unsigned char **der, size_t *der_len,
                           unsigned char **owned, const char *what, struct clc_errinfo *ei)
{
    const unsigned char *u = data;
    const char *b = NULL;
    size_t blen = 0;

    *owned = NULL;
    if (len == 0)
        return clc_errf(ei, CLC_ERR_PARSE, "%s: empty", what);
    if (u[0] == 0x30) {
        *der = u;
        *der_len = len;
        return CLC_OK;
    }
    if (!pem_body(data, len, &b, &blen)) {
        if (!looks_base64(u, len))
            return clc_errf(ei, CLC_ERR_PARSE, "%s: neither DER, PEM nor base64", what);
        b = data;
        blen = len;
    }
    if (clc_b64_decode(b, blen, owned, der_len) != CLC_OK || *der_len == 0) {
        free(*owned);
        *owned = NULL;
        return clc_errf(ei, CLC_ERR_PARSE, "%s: the base64 does not decode", what);
    }
    *der = *owned;
    return CLC_OK;
}

enum clc_err clc_ca_p7_parse(const void *data, size_t len, STACK_OF(X509) * *out,
                             struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    const unsigned char *der = NULL;
    const unsigned char *p = NULL;
    unsigned char *owned = NULL;
    size_t der_len = 0;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *certs = NULL;
    STACK_OF(X509) *res = NULL;

    *out = NULL;
    rc = to_der(data, len, &der, &der_len, &owned, "PKCS#7", ei);
    if (rc != CLC_OK)
        goto out;
    p = der;
    p7 = d2i_PKCS7(NULL, &p, (long)der_len);
    if (!p7 || p != der + der_len) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "PKCS#7: not a PKCS#7 structure%s",
                      p7 ? " (trailing bytes)" : "");
        goto out;
    }
    if (OBJ_obj2nid(p7->type) == NID_pkcs7_signed && p7->d.sign)
        certs = p7->d.sign->cert;
    else if (OBJ_obj2nid(p7->type) == NID_pkcs7_signedAndEnveloped && p7->d.signed_and_enveloped)
        certs = p7->d.signed_and_enveloped->cert;
    if (!certs || sk_X509_num(certs) == 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "PKCS#7: holds no certificates");
        goto out;
    }
    if (sk_X509_num(certs) > CHAIN_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "PKCS#7: %d certificates (at most %d)", sk_X509_num(certs),
                      CHAIN_MAX);
        goto out;
    }
    res = sk_X509_new_null();
    if (!res) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        X509 *c = sk_X509_value(certs, i);
        if (!X509_up_ref(c) || !sk_X509_push(res, c)) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
    *out = res;
    res = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "PKCS#7: out of memory");
    ERR_clear_error();
    sk_X509_pop_free(res, X509_free);
    PKCS7_free(p7);
    free(owned);
    return rc;
}

enum clc_err clc_ca_cert_parse(const void *data, size_t len, X509 **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    const unsigned char *der = NULL;
    const unsigned char *p = NULL;
    unsigned char *owned = NULL;
    size_t der_len = 0;
    X509 *x = NULL;

    *out = NULL;
    rc = to_der(data, len, &der, &der_len, &owned, "certificate", ei);
    if (rc != CLC_OK)
        goto out;
    p = der;
    x = d2i_X509(NULL, &p, (long)der_len);
    if (!x || p != der + der_len) {
        X509_free(x);
        x = NULL;
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificate: not an X.509 certificate");
        goto out;
    }
    *out = x;
out:
    ERR_clear_error();
    free(owned);
    return rc;
}

static int issues(X509 *issuer, X509 *subject)
{
    return X509_check_issued(issuer, subject) == X509_V_OK;
}

static int self_signed(X509 *x)
{
    return issues(x, x);
}

static X509 *pick_leaf(STACK_OF(X509) * set, EVP_PKEY *key, struct clc_errinfo *ei,
                       enum clc_err *rc)
{
    X509 *leaf = NULL;
    int candidates = 0;

    if (key) {
        for (int i = 0; i < sk_X509_num(set); i++)
            if (EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(set, i)), key) == 1)
                return sk_X509_value(set, i);
        /* No certificate for the key: the leaf-matches-CSR check will say so
         * precisely; order by structure meanwhile. */
    }
    for (int i = 0; i < sk_X509_num(set); i++) {
        X509 *c = sk_X509_value(set, i);
        int issues_other = 0;
        for (int j = 0; j < sk_X509_num(set) && !issues_other; j++)
            if (j != i && issues(c, sk_X509_value(set, j)) &&
                X509_cmp(c, sk_X509_value(set, j)) != 0)
                issues_other = 1;
        if (!issues_other) {
            leaf = c;
            candidates++;
        }
    }
    if (candidates != 1) {
        *rc = clc_errf(ei, CLC_ERR_PARSE,
                       "chain: cannot tell the leaf among %d certificates (%d candidates)",
                       sk_X509_num(set), candidates);
        return NULL;
    }
    return leaf;
}

enum clc_err clc_ca_chain_order(X509 *leaf, STACK_OF(X509) * set, EVP_PKEY *key,
                                STACK_OF(X509) * *out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *chain = NULL;
    X509 *cur = leaf;
    int n = set ? sk_X509_num(set) : 0;

    *out = NULL;
    if (n > CHAIN_MAX)
        return clc_errf(ei, CLC_ERR_LIMIT, "chain: %d certificates (at most %d)", n, CHAIN_MAX);
    if (!cur) {
        if (n == 0)
            return clc_errf(ei, CLC_ERR_PARSE, "chain: no certificates");
        cur = pick_leaf(set, key, ei, &rc);
        if (!cur)
            return rc;
    }
    chain = sk_X509_new_null();
    if (!chain || !X509_up_ref(cur)) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (!sk_X509_push(chain, cur)) {
        X509_free(cur);
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    /* At most one step per certificate in the set: always ends. */
    for (int step = 0; step < n && !self_signed(cur); step++) {
        X509 *next = NULL;
        for (int i = 0; i < n && !next; i++) {
            X509 *c = sk_X509_value(set, i);
            int used = 0;
            for (int j = 0; j < sk_X509_num(chain) && !used; j++)
                used = X509_cmp(c, sk_X509_value(chain, j)) == 0;
            if (!used && issues(c, cur))
                next = c;
        }
        if (!next)
            break;
        if (!X509_up_ref(next)) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        if (!sk_X509_push(chain, next)) {
            X509_free(next);
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        cur = next;
    }
    *out = chain;
    chain = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "chain: out of memory");
    ERR_clear_error();
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

enum clc_err clc_ca_anchors_load(const char *path, X509_STORE **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *certs = NULL;
    X509_STORE *st = NULL;
    char *text = NULL;
    size_t len = 0;

    *out = NULL;
    rc = clc_file_read(path, PEM_BUF_MAX, &text, &len, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "trust anchors");
        goto out;
    }
    rc = clc_x509_parse_pem_chain(text, len, &certs, ei);
    if (rc != CLC_OK || !certs || sk_X509_num(certs) == 0) {
        rc =
            clc_errf(ei, CLC_ERR_CONFIG, "trust anchors %s: no PEM certificates in the file", path);
        goto out;
    }
    st = X509_STORE_new();
    if (!st) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < sk_X509_num(certs); i++) {
        if (!X509_STORE_add_cert(st, sk_X509_value(certs, i))) {
            rc = clc_errf(ei, CLC_ERR_CRYPTO, "trust anchors %s: certificate %d not accepted", path,
                          i + 1);
            goto out;
        }
    }
    *out = st;
    st = NULL;
out:
    ERR_clear_error();
    X509_STORE_free(st);
    sk_X509_pop_free(certs, X509_free);
    free(text);
    return rc;
}
