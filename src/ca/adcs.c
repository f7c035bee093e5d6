/* AD CS Web Enrollment client: submits the CSR by the certfnsh.asp form,
 * reads the answer page, fetches certnew.cer (the leaf) and certnew.p7b (the
 * chain, ordered here), polls pending requests with certnew.cer?ReqID=n. The
 * pages are the browser UI, so non-certificate answers arrive as HTTP 200. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>

#include "ca/ca_int.h"
#include "core/b64.h"
#include "core/log.h"
#include "net/http.h"

#define FORM_MAX (256 * 1024)
#define URL_MAX 2048

static int is_type(const struct clc_ca_http_resp *r, const char *t)
{
    return strcmp(r->content_type, t) == 0;
}

static enum clc_err make_url(const struct clc_ca *ca, const char *path, char *out, size_t n,
                             struct clc_errinfo *ei)
{
    const char *base = ca->conf.url;
    size_t bl = strlen(base);

    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    if ((size_t)snprintf(out, n, "%.*s/%s", (int)bl, base, path) >= n)
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': url too long", ca->conf.name);
    return CLC_OK;
}

static int id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (!isdigit((unsigned char)id[n]))
            return 0;
    return n > 0 && n <= 19;
}

static enum clc_err get(struct clc_ca *ca, const char *path, struct clc_ca_http_resp *resp,
                        struct clc_errinfo *ei)
{
    char url[URL_MAX];
    enum clc_err rc = make_url(ca, path, url, sizeof url, ei);

    if (rc == CLC_OK)
        rc = clc_ca_http_do(ca->http, "GET", url, NULL, NULL, 0, resp, ei);
    if (rc == CLC_OK && resp->status != 200)
        rc = clc_ca_http_status_error(&ca->conf, resp, path, ei);
    return rc;
}

/* The request's status page answered instead of a certificate. */
static enum clc_err from_status_page(struct clc_ca *ca, const char *id,
                                     const struct clc_ca_http_resp *resp, struct clc_ca_result *res,
                                     struct clc_errinfo *ei)
{
    struct clc_adcs_disp d;

    clc_adcs_parse_status_page(clc_buf_str(&resp->body), resp->body.len, &d);
    switch (d.page) {
    case CLC_ADCS_PAGE_PENDING:
        res->disposition = CLC_CA_PENDING;
        res->retry_after_s = ca->conf.poll_interval_s;
        return CLC_OK;
    case CLC_ADCS_PAGE_DENIED:
        res->disposition = CLC_CA_DENIED;
        snprintf(res->reason, sizeof res->reason, "%s", d.message[0] ? d.message : "denied");
        snprintf(res->code, sizeof res->code, "%s", d.code);
        return CLC_OK;
    case CLC_ADCS_PAGE_NOT_FOUND:
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "CA '%s': AD CS has no request %s (%s%s%s)",
                        ca->conf.name, id, d.message, d.code[0] ? " " : "", d.code);
    case CLC_ADCS_PAGE_ERROR:
        return clc_errf(ei, CLC_ERR_HTTP, "CA '%s': request %s: AD CS answered an error: %s%s%s",
                        ca->conf.name, id, d.message, d.code[0] ? " " : "", d.code);
    default:
        return clc_errf(ei, CLC_ERR_PARSE,
                        "CA '%s': request %s: AD CS answered neither a certificate nor a "
                        "status page (content type '%s', title '%s')",
                        ca->conf.name, id, resp->content_type, d.title);
    }
}

/* The DER of a certnew.cer or certnew.p7b answer (DER, or PEM labelled
 * CERTIFICATE as Enc=b64 gives both) in *owned; 0 when it is neither (then
 * the full parse says why). */
static int cer_der(const struct clc_buf *body, unsigned char **owned, size_t *len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----", end[] = "-----END CERTIFICATE-----";
    const char *s = clc_buf_str(body), *b, *e;

    *owned = NULL;
    if (body->len == 0)
        return 0;
    if ((unsigned char)s[0] == 0x30) {
        *owned = malloc(body->len);
        if (!*owned)
            return 0;
        memcpy(*owned, s, body->len);
        *len = body->len;
        return 1;
    }
    if (!(b = strstr(s, begin)) || !(e = strstr(b, end)))
        return 0;
    b += sizeof begin - 1;
    if (clc_b64_decode(b, (size_t)(e - b), owned, len) != CLC_OK || *len == 0) {
        free(*owned);
        *owned = NULL;
        return 0;
    }
    return 1;
}

/* ---- certnew.p7b without parsing the same CA certificates every time ---- */

/* Every certnew.p7b repeats the issuing CA and the root, and an OpenSSL 3
 * certificate parse costs 0.1-0.3 ms: those are parsed once per client
 * (ca->cert_cache). Keyed by the exact DER (the same bytes parse the same),
 * at most CLC_CA_CERT_CACHE entries (the oldest makes room), freed with the
 * client. A client is used by one thread at a time, so no lock. */
#define P7_CERTS_MAX 16

static X509 *parse_der(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x && p != der + len) {
        X509_free(x);
        x = NULL;
    }
    ERR_clear_error();
    return x;
}

/* A CA certificate through the client's cache (a new reference), NULL if
 * unparsable. */
static X509 *ca_cert_cached(struct clc_ca *ca, const unsigned char *der, size_t len)
{
    struct clc_ca_cert_cache *e = NULL;
    X509 *x = NULL;

    for (size_t i = 0; i < CLC_CA_CERT_CACHE; i++) {
        e = &ca->cert_cache[i];
        if (e->x && e->len == len && memcmp(e->der, der, len) == 0 && X509_up_ref(e->x))
            return e->x;
    }
    if (!(x = parse_der(der, len)))
        return NULL;
    unsigned char *copy = malloc(len);
    if (!copy || !X509_up_ref(x)) {
        free(copy);
        return x;
    }
    memcpy(copy, der, len);
    e = &ca->cert_cache[ca->cert_cache_next];
    ca->cert_cache_next = (ca->cert_cache_next + 1) % CLC_CA_CERT_CACHE;
    free(e->der);
    X509_free(e->x);
    e->der = copy;
    e->len = len;
    e->x = x; /* the cache's reference */
    return x;
}

void clc_ca_cert_cache_cleanup(struct clc_ca *ca)
{
    for (size_t i = 0; i < CLC_CA_CERT_CACHE; i++) {
        free(ca->cert_cache[i].der);
        X509_free(ca->cert_cache[i].x);
        ca->cert_cache[i].der = NULL;
        ca->cert_cache[i].len = 0;
        ca->cert_cache[i].x = NULL;
    }
    ca->cert_cache_next = 0;
}

/* One DER element at *p (definite length, within end): its tag, class,
 * constructed bit and content; *p moves past it. 0 on anything else. */
static int der_next(const unsigned char **p, const unsigned char *end, int tag, int cls,
                    const unsigned char **content, long *clen)
{
    const unsigned char *q = *p;
    long n = 0;
    int t = 0, c = 0;
    int r = end > q ? ASN1_get_object(&q, &n, &t, &c, (long)(end - q)) : 0x80;
    if ((r & 0x80) || (r & 0x01) || t != tag || c != cls || n > end - q)
        return 0;
    if (content)
        *content = q;
    if (clen)
        *clen = n;
    *p = q + n;
    return 1;
}

/* The certificates of a certs-only PKCS#7 (RFC 5652 ContentInfo of type
 * signedData: version, digestAlgorithms, encapContentInfo, [0] IMPLICIT
 * certificates, then what follows), as pointers into der. 0 when the
 * layout is anything else: clc_ca_p7_parse then decides. */
static int p7_members(const unsigned char *der, size_t len, const unsigned char **certs,
                      size_t *lens, int *n)
{
    static const unsigned char signed_data[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                                0xf7, 0x0d, 0x01, 0x07, 0x02};
    const unsigned char *p = der, *end = der + len, *ci, *sd, *c, *oid;
    long n_ci, n_sd, n_c;

    *n = 0;
    if (!der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &ci, &n_ci) || p != end)
        return 0;
    p = ci;
    end = ci + n_ci;
    oid = p;
    if (!der_next(&p, end, V_ASN1_OBJECT, V_ASN1_UNIVERSAL, NULL, NULL) ||
        (size_t)(p - oid) != sizeof signed_data || memcmp(oid, signed_data, sizeof signed_data) ||
        !der_next(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &sd, &n_sd) || p != end)
        return 0;
    p = sd;
    end = sd + n_sd;
    if (!der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, &sd, &n_sd) || p != end)
        return 0;
    p = sd;
    end = sd + n_sd;
    if (!der_next(&p, end, V_ASN1_INTEGER, V_ASN1_UNIVERSAL, NULL, NULL) ||
        !der_next(&p, end, V_ASN1_SET, V_ASN1_UNIVERSAL, NULL, NULL) ||
        !der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, NULL, NULL) ||
        !der_next(&p, end, 0, V_ASN1_CONTEXT_SPECIFIC, &c, &n_c))
        return 0;
    /* crls [1] and signerInfos: well-formed, up to the end. */
    while (p < end) {
        const unsigned char *q = p;
        long skip = 0;
        int t = 0, cl = 0;
        int r = ASN1_get_object(&q, &skip, &t, &cl, (long)(end - p));
        if ((r & 0x80) || (r & 0x01) || skip > end - q)
            return 0;
        p = q + skip;
    }
    for (p = c, end = c + n_c; p < end; (*n)++) {
        const unsigned char *start = p;
        if (*n == P7_CERTS_MAX || !der_next(&p, end, V_ASN1_SEQUENCE, V_ASN1_UNIVERSAL, NULL, NULL))
            return 0;
        certs[*n] = start;
        lens[*n] = (size_t)(p - start);
    }
    return *n > 0;
}

/* The certificates of certnew.p7b: the leaf (the one whose DER is leaf_der)
 * parsed, the others through the cache; *leaf up-referenced when found.
 * CLC_ERR_PARSE when the answer is not laid out as AD CS writes it, and the
 * caller falls back to the full parse. */
static enum clc_err p7_set(struct clc_ca *ca, const struct clc_buf *body,
                           const unsigned char *leaf_der, size_t leaf_len, STACK_OF(X509) * *set,
                           X509 **leaf)
{
    const unsigned char *certs[P7_CERTS_MAX];
    size_t lens[P7_CERTS_MAX];
    unsigned char *der = NULL;
    size_t len = 0;
    int n = 0;
    enum clc_err rc = CLC_ERR_PARSE;

    *set = NULL;
    *leaf = NULL;
    if (!cer_der(body, &der, &len) || !p7_members(der, len, certs, lens, &n))
        goto out;
    if (!(*set = sk_X509_new_null())) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        int is_leaf = leaf_der && lens[i] == leaf_len && !memcmp(certs[i], leaf_der, leaf_len);
        X509 *x = is_leaf ? parse_der(certs[i], lens[i]) : ca_cert_cached(ca, certs[i], lens[i]);
        if (!x || !sk_X509_push(*set, x)) {
            X509_free(x);
            goto out;
        }
        if (is_leaf && !*leaf && X509_up_ref(x))
            *leaf = x;
    }
    rc = CLC_OK;
out:
    if (rc != CLC_OK) {
        sk_X509_pop_free(*set, X509_free);
        *set = NULL;
        X509_free(*leaf);
        *leaf = NULL;
    }
    free(der);
    return rc;
}

/* The member of set whose DER is der (up-referenced), or NULL. */
static X509 *member_with_der(STACK_OF(X509) * set, const unsigned char *der, size_t len)
{
    for (int i = 0; i < sk_X509_num(set); i++) {
        X509 *c = sk_X509_value(set, i);
        unsigned char *enc = NULL;
        int n = i2d_X509(c, &enc);
        int same = n > 0 && (size_t)n == len && memcmp(enc, der, len) == 0;
        OPENSSL_free(enc);
        if (same && X509_up_ref(c))
            return c;
    }
    return NULL;
}

/* The certificate and chain of request id; sets res to issued (verified)
 * or, if the request is not issued, to what the status page says. */
static enum clc_err fetch_issued(struct clc_ca *ca, const struct clc_ca_req *req, const char *id,
                                 struct clc_ca_result *res, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http_resp resp;
    char path[128];
    X509 *leaf = NULL;
    STACK_OF(X509) *set = NULL;
    STACK_OF(X509) *chain = NULL;
    unsigned char *leaf_der = NULL;
    size_t leaf_len = 0;

    clc_ca_http_resp_init(&resp);
    snprintf(path, sizeof path, "certnew.cer?ReqID=%s&Enc=b64", id);
    rc = get(ca, path, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (strstr(resp.content_type, "html")) {
        rc = from_status_page(ca, id, &resp, res, ei);
        goto out;
    }
    /* certnew.p7b holds the leaf too: keep certnew.cer's bytes and take the
     * p7b's parse of them (a certificate parse costs ~0.1 ms in OpenSSL 3);
     * parse it here only when it is not plain DER or PEM. */
    if (!cer_der(&resp.body, &leaf_der, &leaf_len))
        rc = clc_ca_cert_parse(resp.body.data, resp.body.len, &leaf, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, CLC_ERR_PARSE, "CA '%s': certnew.cer for request %s (%s)",
                          ca->conf.name, id, resp.content_type);
        goto out;
    }
    snprintf(path, sizeof path, "certnew.p7b?ReqID=%s&Enc=b64", id);
    rc = get(ca, path, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (leaf || p7_set(ca, &resp.body, leaf_der, leaf_len, &set, &leaf) != CLC_OK)
        rc = clc_ca_p7_parse(resp.body.data, resp.body.len, &set, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, rc, "CA '%s': certnew.p7b for request %s", ca->conf.name, id);
        goto out;
    }
    if (!leaf && !(leaf = member_with_der(set, leaf_der, leaf_len))) {
        rc = clc_ca_cert_parse(leaf_der, leaf_len, &leaf, ei);
        if (rc != CLC_OK) {
            rc = clc_err_wrap(ei, CLC_ERR_PARSE, "CA '%s': certnew.cer for request %s",
                              ca->conf.name, id);
            goto out;
        }
    }
    rc = clc_ca_chain_order(leaf, set, NULL, &chain, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_ca_finish_issued(ca, req, chain, res, ei);
    chain = NULL;
out:
    free(leaf_der);
    X509_free(leaf);
    sk_X509_pop_free(set, X509_free);
    sk_X509_pop_free(chain, X509_free);
    clc_ca_http_resp_cleanup(&resp);
    return rc;
}

static enum clc_err build_form(const struct clc_ca_req *req, struct clc_buf *f)
{
    enum clc_err rc = clc_buf_append_str(f, "Mode=newreq&CertRequest=");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(f, clc_ca_csr_pem(req->csr));
    if (rc == CLC_OK)
        rc = clc_buf_append_str(f, "&CertAttrib=");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(f, "CertificateTemplate:");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(f, req->template_name);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(f, "&TargetStoreFlags=0&SaveCert=yes&FriendlyType=");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(f, "Saved-Request Certificate");
    if (rc == CLC_OK)
        rc = clc_buf_append_str(f, "&ThumbPrint=");
    return rc;
}

/* A denied page often carries only "Denied by Policy Module"; the HRESULT is
 * on the request's status page (as Certipy reads it). Best effort. */
static void denied_code(struct clc_ca *ca, const char *id, struct clc_ca_result *res)
{
    struct clc_ca_http_resp resp;
    struct clc_errinfo ign;
    struct clc_adcs_disp d;
    char path[128];

    if (!id_ok(id))
        return;
    clc_errinfo_clear(&ign);
    clc_ca_http_resp_init(&resp);
    snprintf(path, sizeof path, "certnew.cer?ReqID=%s&Enc=b64", id);
    if (get(ca, path, &resp, &ign) == CLC_OK && strstr(resp.content_type, "html")) {
        clc_adcs_parse_status_page(clc_buf_str(&resp.body), resp.body.len, &d);
        if (d.code[0])
            snprintf(res->code, sizeof res->code, "%s", d.code);
    }
    clc_ca_http_resp_cleanup(&resp);
}

static enum clc_err adcs_submit(struct clc_ca *ca, const struct clc_ca_req *req,
                                struct clc_ca_result *res, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http_resp resp;
    struct clc_adcs_disp d;
    struct clc_buf form;
    char url[URL_MAX];
    STACK_OF(X509) *chain = NULL;
    X509 *leaf = NULL;

    clc_buf_init(&form, FORM_MAX);
    clc_ca_http_resp_init(&resp);
    if (!req->template_name || !req->template_name[0]) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "CA '%s': AD CS needs a template (name or OID)",
                      ca->conf.name);
        goto out;
    }
    rc = build_form(req, &form);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "CA '%s': the request form is too large", ca->conf.name);
        goto out;
    }
    rc = make_url(ca, "certfnsh.asp", url, sizeof url, ei);
    if (rc == CLC_OK)
        rc = clc_ca_http_do(ca->http, "POST", url, "application/x-www-form-urlencoded", form.data,
                            form.len, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (resp.status != 200) {
        rc = clc_ca_http_status_error(&ca->conf, &resp, "certfnsh.asp", ei);
        goto out;
    }
    if (is_type(&resp, "application/pkix-cert")) {
        /* Not seen from IIS, but some CAs answer the certificate directly;
         * the chain then comes from the trust anchors alone. */
        rc = clc_ca_cert_parse(resp.body.data, resp.body.len, &leaf, ei);
        if (rc == CLC_OK && ((chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, leaf)))
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        if (rc != CLC_OK)
            goto out;
        leaf = NULL;
        rc = clc_ca_finish_issued(ca, req, chain, res, ei);
        chain = NULL;
        goto out;
    }
    clc_adcs_parse_submit_page(clc_buf_str(&resp.body), resp.body.len, &d);
    snprintf(res->request_id, sizeof res->request_id, "%s", d.request_id);
    switch (d.page) {
    case CLC_ADCS_PAGE_ISSUED:
        rc = fetch_issued(ca, req, d.request_id, res, ei);
        break;
    case CLC_ADCS_PAGE_PENDING:
        res->disposition = CLC_CA_PENDING;
        res->retry_after_s = ca->conf.poll_interval_s;
        break;
    case CLC_ADCS_PAGE_DENIED:
        res->disposition = CLC_CA_DENIED;
        snprintf(res->reason, sizeof res->reason, "%s",
                 d.message[0] ? d.message : "denied (the page gave no message)");
        snprintf(res->code, sizeof res->code, "%s", d.code);
        if (!res->code[0])
            denied_code(ca, d.request_id, res);
        break;
    case CLC_ADCS_PAGE_ERROR:
        rc = clc_errf(ei, CLC_ERR_INVALID, "CA '%s': AD CS could not process the request: %s%s%s",
                      ca->conf.name, d.message, d.code[0] ? " " : "", d.code);
        break;
    default:
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "CA '%s': certfnsh.asp answered a page that is neither issued, pending "
                      "nor denied (content type '%s', title '%s')",
                      ca->conf.name, resp.content_type, d.title);
        break;
    }
out:
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    clc_buf_cleanse(&form);
    clc_ca_http_resp_cleanup(&resp);
    return rc;
}

static enum clc_err adcs_fetch(struct clc_ca *ca, const struct clc_ca_req *req, const char *id,
                               struct clc_ca_result *res, struct clc_errinfo *ei)
{
    if (!id_ok(id))
        return clc_errf(ei, CLC_ERR_INVALID, "CA '%s': an AD CS request id is a number",
                        ca->conf.name);
    return fetch_issued(ca, req, id, res, ei);
}

static enum clc_err adcs_cacerts(struct clc_ca *ca, STACK_OF(X509) * *out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http_resp resp;
    char path[128];
    long renewals = 0;

    clc_ca_http_resp_init(&resp);
    /* The newest CA certificate is Renewal = nRenewals (0 if never renewed). */
    rc = get(ca, "certcarc.asp", &resp, ei);
    if (rc != CLC_OK)
        goto out;
    const char *m = strstr(clc_buf_str(&resp.body), "nRenewals=");
    if (m)
        renewals = strtol(m + strlen("nRenewals="), NULL, 10);
    if (renewals < 0 || renewals > 1000)
        renewals = 0;
    snprintf(path, sizeof path, "certnew.p7b?ReqID=CACert&Renewal=%ld&Enc=b64", renewals);
    rc = get(ca, path, &resp, ei);
    if (rc == CLC_OK)
        rc = clc_ca_p7_parse(resp.body.data, resp.body.len, out, ei);
    if (rc != CLC_OK)
        clc_err_wrap(ei, rc, "CA '%s': CA chain", ca->conf.name);
out:
    clc_ca_http_resp_cleanup(&resp);
    return rc;
}

const struct clc_ca_ops clc_ca_adcs_ops = {
    .submit = adcs_submit,
    .fetch = adcs_fetch,
    .cacerts = adcs_cacerts,
};
