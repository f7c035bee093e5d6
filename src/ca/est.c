/* EST client (RFC 7030, RFC 8951): simpleenroll / simplereenroll with the
 * CSR as base64 DER, certs-only PKCS#7 answers, 202 + Retry-After as pending
 * (polled by sending the same request again), cacerts for the CA chain. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "ca/ca_int.h"
#include "core/b64.h"
#include "net/retry.h"

#define URL_MAX 2048
#define ID_PREFIX "est-"

static int label_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!isalnum((unsigned char)s[n]) && !strchr("-._~", s[n]))
            return 0;
    return n <= 64;
}

static enum clc_err est_url(const struct clc_ca *ca, const char *label, const char *op, char *out,
                            size_t n, struct clc_errinfo *ei)
{
    const char *base = ca->conf.url;
    size_t bl = strlen(base);
    int w = 0;

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if (label && label[0]) {
        if (!label_ok(label))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "CA '%s': EST label '%.64s' may hold only letters, digits and -._~",
                            ca->conf.name, label);
        w = snprintf(out, n, "%.*s/%s/%s", (int)bl, base, label, op);
    } else {
        w = snprintf(out, n, "%.*s/%s", (int)bl, base, op);
    }
    if (w < 0 || (size_t)w >= n)
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': url too long", ca->conf.name);
    return CLC_OK;
}

/* EST has no request id: pending means "send the same request later". The
 * id we hand out names the CSR, so a fetch with another CSR is caught. */
static enum clc_err csr_id(const struct clc_ca_csr *csr, char out[CLC_CA_ID_MAX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t len = 0;
    const unsigned char *der = clc_ca_csr_der(csr, &len);

    if (!EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL))
        return CLC_ERR_CRYPTO;
    snprintf(out, CLC_CA_ID_MAX, ID_PREFIX);
    for (unsigned i = 0; i < 16 && i < mdlen; i++)
        snprintf(out + strlen(ID_PREFIX) + 2 * i, 3, "%02x", md[i]);
    return CLC_OK;
}

/* Base64 in 64-character lines, as MIME bodies are written. */
static enum clc_err csr_body(const struct clc_ca_csr *csr, struct clc_buf *b)
{
    enum clc_err rc = CLC_OK;
    char *enc = NULL;
    size_t elen = 0;
    size_t len = 0;
    const unsigned char *der = clc_ca_csr_der(csr, &len);

    rc = clc_b64_encode(der, len, &enc, &elen);
    for (size_t i = 0; rc == CLC_OK && i < elen; i += 64) {
        rc = clc_buf_append(b, enc + i, elen - i < 64 ? elen - i : 64);
        if (rc == CLC_OK)
            rc = clc_buf_append(b, "\r\n", 2);
    }
    free(enc);
    return rc;
}

static enum clc_err get_cacerts(struct clc_ca *ca, const char *label, STACK_OF(X509) * *out,
                                struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http_resp resp;
    char url[URL_MAX];

    *out = NULL;
    clc_ca_http_resp_init(&resp);
    rc = est_url(ca, label, "cacerts", url, sizeof url, ei);
    if (rc == CLC_OK)
        rc = clc_ca_http_do(ca->http, "GET", url, NULL, NULL, 0, &resp, ei);
    if (rc == CLC_OK && resp.status != 200)
        rc = clc_ca_http_status_error(&ca->conf, &resp, "cacerts", ei);
    if (rc == CLC_OK) {
        rc = clc_ca_p7_parse(resp.body.data, resp.body.len, out, ei);
        if (rc != CLC_OK)
            clc_err_wrap(ei, rc, "CA '%s': cacerts", ca->conf.name);
    }
    clc_ca_http_resp_cleanup(&resp);
    return rc;
}

/* The issued certificate plus the CA certificates, ordered from the CSR's
 * key. RFC 7030 answers carry the issued certificate; the chain may need
 * cacerts. */
static enum clc_err issued(struct clc_ca *ca, const struct clc_ca_req *req,
                           const struct clc_ca_http_resp *resp, struct clc_ca_result *res,
                           struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *set = NULL;
    STACK_OF(X509) *cas = NULL;
    STACK_OF(X509) *chain = NULL;

    rc = clc_ca_p7_parse(resp->body.data, resp->body.len, &set, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, CLC_ERR_PARSE, "CA '%s': enrollment answer", ca->conf.name);
        goto out;
    }
    if (sk_X509_num(set) == 1) {
        rc = get_cacerts(ca, req->template_name, &cas, ei);
        if (rc != CLC_OK)
            goto out;
        while (sk_X509_num(cas) > 0) {
            X509 *c = sk_X509_shift(cas);
            if (!sk_X509_push(set, c)) {
                X509_free(c);
                rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    rc = clc_ca_chain_order(NULL, set, X509_REQ_get0_pubkey(clc_ca_csr_req(req->csr)), &chain, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_ca_finish_issued(ca, req, chain, res, ei);
    chain = NULL;
out:
    sk_X509_pop_free(set, X509_free);
    sk_X509_pop_free(cas, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static enum clc_err enroll(struct clc_ca *ca, const struct clc_ca_req *req,
                           struct clc_ca_result *res, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http_resp resp;
    struct clc_buf body;
    char url[URL_MAX];
    const char *op = req->renewal ? "simplereenroll" : "simpleenroll";

    clc_buf_init(&body, 256 * 1024);
    clc_ca_http_resp_init(&resp);
    rc = csr_id(req->csr, res->request_id);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "CSR digest failed");
        goto out;
    }
    rc = est_url(ca, req->template_name, op, url, sizeof url, ei);
    if (rc != CLC_OK)
        goto out;
    rc = csr_body(req->csr, &body);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "CA '%s': encoding the CSR failed", ca->conf.name);
        goto out;
    }
    rc =
        clc_ca_http_do(ca->http, "POST", url, "application/pkcs10", body.data, body.len, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (resp.status == 200) {
        rc = issued(ca, req, &resp, res, ei);
    } else if (resp.status == 202) {
        int64_t ms = 0;
        res->disposition = CLC_CA_PENDING;
        if (resp.retry_after[0] &&
            clc_retry_after_parse(resp.retry_after, clc_ca_now(ca), &ms) == CLC_OK)
            res->retry_after_s = (ms + 999) / 1000;
        else
            res->retry_after_s = ca->conf.poll_interval_s;
    } else if (resp.status >= 400 && resp.status < 500 && resp.status != 401 &&
               resp.status != 404 && resp.status != 408 && resp.status != 429) {
        /* RFC 7030 §4.2.3: a rejected request gets a 4xx with a text body. */
        res->disposition = CLC_CA_DENIED;
        clc_ca_set_text(res->reason, sizeof res->reason, clc_buf_str(&resp.body), resp.body.len);
        if (!res->reason[0])
            snprintf(res->reason, sizeof res->reason, "rejected without a message");
        snprintf(res->code, sizeof res->code, "HTTP %ld", resp.status);
    } else {
        rc = clc_ca_http_status_error(&ca->conf, &resp, op, ei);
    }
out:
    clc_buf_cleanup(&body);
    clc_ca_http_resp_cleanup(&resp);
    return rc;
}

static enum clc_err est_submit(struct clc_ca *ca, const struct clc_ca_req *req,
                               struct clc_ca_result *res, struct clc_errinfo *ei)
{
    return enroll(ca, req, res, ei);
}

static enum clc_err est_fetch(struct clc_ca *ca, const struct clc_ca_req *req, const char *id,
                              struct clc_ca_result *res, struct clc_errinfo *ei)
{
    char want[CLC_CA_ID_MAX];

    if (csr_id(req->csr, want) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CRYPTO, "CSR digest failed");
    if (strcmp(want, id) != 0)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "CA '%s': request id %s does not belong to this CSR (its id is %s)",
                        ca->conf.name, id, want);
    return enroll(ca, req, res, ei);
}

static enum clc_err est_cacerts(struct clc_ca *ca, STACK_OF(X509) * *out, struct clc_errinfo *ei)
{
    return get_cacerts(ca, NULL, out, ei);
}

const struct clc_ca_ops clc_ca_est_ops = {
    .submit = est_submit,
    .fetch = est_fetch,
    .cacerts = est_cacerts,
};
