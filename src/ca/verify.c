/* The CSR a client submits (parsed once, self-signature checked) and the
 * checks every issued result must pass before it is called issued: the
 * leaf's key is the CSR's, the chain verifies to the configured trust
 * anchors, and each certificate is within its validity at the CA's clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca/ca_int.h"
#include "core/file.h"
#include "crypto/csr.h"

#define CSR_FILE_MAX (64 * 1024)

struct clc_ca_csr {
    X509_REQ *req;
    unsigned char *der;
    size_t der_len;
    char *pem;
};

void clc_ca_csr_free(struct clc_ca_csr *c)
{
    if (!c)
        return;
    X509_REQ_free(c->req);
    free(c->der);
    free(c->pem);
    free(c);
}

X509_REQ *clc_ca_csr_req(const struct clc_ca_csr *c)
{
    return c->req;
}

const unsigned char *clc_ca_csr_der(const struct clc_ca_csr *c, size_t *len)
{
    *len = c->der_len;
    return c->der;
}

const char *clc_ca_csr_pem(const struct clc_ca_csr *c)
{
    return c->pem;
}

static int has_text(const char *s, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(s + i, needle, n) == 0)
            return 1;
    return 0;
}

enum clc_err clc_ca_csr_parse(const void *data, size_t len, struct clc_ca_csr **out,
                              struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_csr *c = NULL;
    BIO *bio = NULL;
    BIO *mem = NULL;
    EVP_PKEY *pub = NULL;
    unsigned char *der = NULL;
    BUF_MEM *bm = NULL;
    int n = 0;

    *out = NULL;
    if (!data || len == 0 || len > CSR_FILE_MAX) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "CSR: empty or larger than %d bytes", CSR_FILE_MAX);
        goto out;
    }
    c = calloc(1, sizeof *c);
    bio = BIO_new_mem_buf(data, (int)len);
    if (!c || !bio) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (((const unsigned char *)data)[0] == 0x30) {
        const unsigned char *p = data;
        c->req = d2i_X509_REQ(NULL, &p, (long)len);
        if (c->req && p != (const unsigned char *)data + len) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "CSR: trailing bytes after the DER request");
            goto out;
        }
    } else if (has_text(data, len, "-----BEGIN CERTIFICATE REQUEST-----") ||
               has_text(data, len, "-----BEGIN NEW CERTIFICATE REQUEST-----")) {
        c->req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    } else {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "CSR: not a certificate request (expected PEM 'BEGIN CERTIFICATE "
                      "REQUEST' or DER)");
        goto out;
    }
    if (!c->req) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "CSR: the PKCS#10 structure does not parse");
        goto out;
    }
    pub = X509_REQ_get0_pubkey(c->req);
    if (!pub) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "CSR: its public key is missing or unsupported");
        goto out;
    }
    if (X509_REQ_verify(c->req, pub) != 1) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "CSR: its signature does not verify");
        goto out;
    }
    n = i2d_X509_REQ(c->req, &der);
    if (n <= 0) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "CSR: cannot encode it");
        goto out;
    }
    c->der = malloc((size_t)n);
    mem = BIO_new(BIO_s_mem());
    if (!c->der || !mem) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    memcpy(c->der, der, (size_t)n);
    c->der_len = (size_t)n;
    if (!PEM_write_bio_X509_REQ(mem, c->req)) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "CSR: cannot write PEM");
        goto out;
    }
    BIO_get_mem_ptr(mem, &bm);
    c->pem = malloc(bm->length + 1);
    if (!c->pem) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    memcpy(c->pem, bm->data, bm->length);
    c->pem[bm->length] = '\0';
    *out = c;
    c = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "CSR: out of memory");
    ERR_clear_error();
    OPENSSL_free(der);
    BIO_free(bio);
    BIO_free(mem);
    clc_ca_csr_free(c);
    return rc;
}

enum clc_err clc_ca_csr_from_file(const char *path, struct clc_ca_csr **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *data = NULL;
    size_t len = 0;

    *out = NULL;
    rc = clc_file_read(path, CSR_FILE_MAX, &data, &len, ei);
    if (rc == CLC_OK) {
        rc = clc_ca_csr_parse(data, len, out, ei);
        if (rc != CLC_OK)
            clc_err_wrap(ei, rc, "%s", path);
    }
    free(data);
    return rc;
}

static void name_of(X509 *x, char *buf, size_t n)
{
    buf[0] = '\0';
    X509_NAME_oneline(X509_get_subject_name(x), buf, (int)n);
}

static int64_t asn1_to_unix(const ASN1_TIME *t, int *ok)
{
    struct tm tm;

    memset(&tm, 0, sizeof tm);
    *ok = t && ASN1_TIME_to_tm(t, &tm) == 1;
    if (!*ok)
        return 0;
    return clc_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec);
}

static enum clc_err check_validity(X509 *x, int64_t now, int64_t skew, const char *role,
                                   struct clc_errinfo *ei)
{
    char subj[256];
    char a[CLC_TIME_STR_MAX];
    char b[CLC_TIME_STR_MAX];
    int ok1 = 0, ok2 = 0;
    int64_t nb = asn1_to_unix(X509_get0_notBefore(x), &ok1);
    int64_t na = asn1_to_unix(X509_get0_notAfter(x), &ok2);

    name_of(x, subj, sizeof subj);
    if (!ok1 || !ok2)
        return clc_errf(ei, CLC_ERR_CRYPTO, "%s certificate %s: validity dates do not parse", role,
                        subj);
    clc_time_fmt_iso8601(now, b);
    if (nb > now + skew) {
        clc_time_fmt_iso8601(nb, a);
        return clc_errf(ei, CLC_ERR_CRYPTO,
                        "%s certificate %s: notBefore %s is in the future (now %s, allowed skew "
                        "%lld s)",
                        role, subj, a, b, (long long)skew);
    }
    if (na <= now) {
        clc_time_fmt_iso8601(na, a);
        return clc_errf(ei, CLC_ERR_CRYPTO, "%s certificate %s: expired at notAfter %s (now %s)",
                        role, subj, a, b);
    }
    if (na <= nb)
        return clc_errf(ei, CLC_ERR_CRYPTO, "%s certificate %s: notAfter is not after notBefore",
                        role, subj);
    return CLC_OK;
}

enum clc_err clc_ca_verify(struct clc_ca *ca, const struct clc_ca_csr *csr, STACK_OF(X509) * chain,
                           struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    X509_STORE_CTX *ctx = NULL;
    STACK_OF(X509) *untrusted = NULL;
    STACK_OF(X509) *path = NULL;
    X509 *leaf = NULL;
    char subj[256];
    int64_t now = clc_ca_now(ca);

    if (!chain || sk_X509_num(chain) == 0)
        return clc_errf(ei, CLC_ERR_PARSE, "the CA returned no certificate");
    leaf = sk_X509_value(chain, 0);
    name_of(leaf, subj, sizeof subj);
    if (csr && clc_csr_check_leaf(csr->req, leaf, NULL) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO,
                      "the CA returned a certificate (%s) whose public key is not the CSR's", subj);
        goto out;
    }
    if (!ca->anchors) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "CA '%s': no trust_anchors configured to verify the "
                      "chain against",
                      ca->conf.name);
        goto out;
    }
    ctx = X509_STORE_CTX_new();
    untrusted = sk_X509_new_null();
    if (!ctx || !untrusted) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (int i = 1; i < sk_X509_num(chain); i++)
        if (!sk_X509_push(untrusted, sk_X509_value(chain, i))) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    if (!X509_STORE_CTX_init(ctx, ca->anchors, leaf, untrusted)) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "chain: cannot set up verification");
        goto out;
    }
    /* Time is checked below against the CA's clock, with skew for notBefore;
     * OpenSSL would compare with the system time and no skew. */
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_NO_CHECK_TIME);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        int depth = X509_STORE_CTX_get_error_depth(ctx);
        X509 *bad = X509_STORE_CTX_get_current_cert(ctx);
        char bsubj[256] = "";
        if (bad)
            name_of(bad, bsubj, sizeof bsubj);
        rc = clc_errf(ei, CLC_ERR_CRYPTO,
                      "the chain of %s does not verify to the trust anchors of CA '%s': %s "
                      "(depth %d%s%s)",
                      subj, ca->conf.name, X509_verify_cert_error_string(err), depth,
                      bsubj[0] ? ", " : "", bsubj);
        goto out;
    }
    path = X509_STORE_CTX_get0_chain(ctx);
    for (int i = 0; path && i < sk_X509_num(path); i++) {
        rc = check_validity(sk_X509_value(path, i), now, ca->conf.max_skew_s,
                            i == 0 ? "issued" : "CA", ei);
        if (rc != CLC_OK)
            goto out;
    }
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "verify: out of memory");
    ERR_clear_error();
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    return rc;
}

enum clc_err clc_ca_finish_issued(struct clc_ca *ca, const struct clc_ca_req *req,
                                  STACK_OF(X509) * chain, struct clc_ca_result *res,
                                  struct clc_errinfo *ei)
{
    const struct clc_ca_csr *csr = req ? req->csr : NULL;
    enum clc_err rc = clc_ca_verify(ca, csr, chain, ei);

    if (rc != CLC_OK) {
        sk_X509_pop_free(chain, X509_free);
        return rc;
    }
    res->disposition = CLC_CA_ISSUED;
    res->chain = chain;
    res->key_checked = csr != NULL;
    return CLC_OK;
}

void clc_ca_set_text(char *dst, size_t dstsz, const char *src, size_t n)
{
    size_t o = 0;

    /* Peer text goes into messages and logs: printable ASCII only, one line. */
    for (size_t i = 0; i < n && src[i] && o + 1 < dstsz; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : ' ';
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
}
