/* AD CS Web Enrollment client: submits the CSR by the certfnsh.asp form,
 * reads the answer page, fetches certnew.cer (the leaf) and certnew.p7b (the
 * chain, ordered here), polls pending requests with certnew.cer?ReqID=n. The
 * pages are the browser UI, so non-certificate answers arrive as HTTP 200. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca/ca_int.h"
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

    clc_ca_http_resp_init(&resp, ca->conf.max_response);
    snprintf(path, sizeof path, "certnew.cer?ReqID=%s&Enc=b64", id);
    rc = get(ca, path, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (strstr(resp.content_type, "html")) {
        rc = from_status_page(ca, id, &resp, res, ei);
        goto out;
    }
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
    rc = clc_ca_p7_parse(resp.body.data, resp.body.len, &set, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, rc, "CA '%s': certnew.p7b for request %s", ca->conf.name, id);
        goto out;
    }
    rc = clc_ca_chain_order(leaf, set, NULL, &chain, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_ca_finish_issued(ca, req, chain, res, ei);
    chain = NULL;
out:
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
    clc_ca_http_resp_init(&resp, ca->conf.max_response);
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
    clc_ca_http_resp_init(&resp, ca->conf.max_response);
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

    clc_ca_http_resp_init(&resp, ca->conf.max_response);
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
