/* EST (RFC 7030, with RFC 8951) on the emulated CA: /.well-known/est/ and
 * /.well-known/est/<label>/ where the label names a template. cacerts,
 * simpleenroll, simplereenroll (202 + Retry-After while pending), csrattrs.
 * Clients authenticate with a TLS client certificate or HTTP Basic as a CA
 * account; a re-enrollment authenticated by one of this CA's certificates
 * renews exactly that certificate (RFC 7030 3.3.2, 4.2.2). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "emulator/ca.h"

#define TEXT_MAX 1024

static void text_reply(struct emu_req *r, int status, const char *const *hdrs, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void text_reply(struct emu_req *r, int status, const char *const *hdrs, const char *fmt, ...)
{
    char body[TEXT_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(body, sizeof body - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof body - 2)
        n = (int)sizeof body - 2;
    body[n++] = '\n';
    emu_reply(r, status, "text/plain", body, (size_t)n, hdrs);
}

/* The template a label selects; NULL after answering 404. */
static int label_template(struct emu_req *r, struct emu_ca *ca, const char **ref)
{
    const char *label = emu_req_param(r, "label");
    const struct ca_template *t;

    *ref = NULL;
    if (label == NULL)
        return 1;
    t = ca_template_find(ca, label);
    if (t == NULL) {
        text_reply(r, 404, NULL, "unknown EST label '%.64s' (labels are template names)", label);
        return 0;
    }
    *ref = t->name;
    return 1;
}

static void send_p7(struct emu_req *r, X509 *const *certs, size_t n, const char *ct)
{
    unsigned char *der = NULL;
    size_t len = 0;
    char *text = NULL;

    /* RFC 8951: the body is base64, whatever Content-Transfer-Encoding says. */
    if (ca_pkcs7(certs, n, &der, &len) == CLC_OK)
        text = ca_b64_lines(der, len, NULL);
    if (text == NULL)
        text_reply(r, 500, NULL, "PKCS#7 encoding failed");
    else
        emu_reply(r, 200, ct, text, strlen(text), NULL);
    free(text);
    OPENSSL_free(der);
}

static void h_cacerts(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    const char *ref;
    X509 *certs[2];

    /* RFC 7030 4.1.1: the CA certificates are given without authentication. */
    if (!label_template(r, ca, &ref))
        return;
    certs[0] = ca->issuing;
    certs[1] = ca->root;
    send_p7(r, certs, 2, "application/pkcs7-mime");
}

static void h_csrattrs(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    const char *ref;

    /* RFC 8951 allows 204 when the CA asks for no particular attributes. */
    if (label_template(r, ca, &ref))
        emu_reply(r, 204, NULL, NULL, 0, NULL);
}

static int denial_status(uint32_t hr)
{
    return hr == CA_HR_TEMPLATE_DENIED || hr == CA_HR_ADMIN_DENIED ? 403 : 400;
}

static void enroll(struct emu_req *r, int reenroll)
{
    struct emu_ca *ca = r->svc_ctx;
    const struct ca_account *a;
    const char *ct = emu_req_header(r, "Content-Type"), *ref = NULL;
    struct ca_submit s = {0};
    struct ca_result res;
    struct clc_errinfo ei = {0};
    char st[256], retry[48];
    const char *hdrs[2] = {retry, NULL};
    enum clc_err rc;
    X509 *cert;
    const unsigned char *p;
    int64_t cert_row = 0;

    a = ca_auth_row(ca, r, 0, &cert_row);
    if (a == NULL || !label_template(r, ca, &ref))
        return;
    if (ct == NULL || strncasecmp(ct, "application/pkcs10", 18) != 0) {
        text_reply(r, 415, NULL,
                   "the body must be a base64 PKCS#10 request (Content-Type "
                   "application/pkcs10)");
        return;
    }
    if (r->body_len == 0 || r->body_len > CA_CSR_TEXT_MAX) {
        text_reply(r, r->body_len ? 413 : 400, NULL,
                   "the request body must hold 1 byte to "
                   "32 KiB of base64");
        return;
    }
    s.account = a;
    s.template_ref = ref ? ref : reenroll ? NULL : ca->est_template;
    s.csr_text = r->body;
    s.csr_len = r->body_len;
    s.source = "est";
    s.est_retry = 1;
    s.est_reenroll = reenroll;
    s.renew_row = reenroll ? cert_row : 0;
    rc = ca_submit(ca, &s, &res, &ei);
    if (rc == CLC_ERR_LIMIT) {
        text_reply(r, 503, NULL, "the CA database is full");
        return;
    }
    if (rc != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.ca.submit_failed", CLC_LS("reason", ei.msg));
        text_reply(r, 500, NULL, "the CA could not process the request");
        return;
    }
    if (res.disposition == CA_DISP_PENDING) {
        snprintf(retry, sizeof retry, "Retry-After: %lld", (long long)ca->retry_after_s);
        text_reply(r, 202, hdrs,
                   "request %lld is pending CA manager approval; repeat the same "
                   "request later",
                   (long long)res.id);
    } else if (res.cert != NULL && res.disposition == CA_DISP_ISSUED) {
        p = res.cert;
        cert = d2i_X509(NULL, &p, (long)res.cert_len);
        if (cert == NULL)
            text_reply(r, 500, NULL, "stored certificate unreadable");
        else
            send_p7(r, &cert, 1, "application/pkcs7-mime; smime-type=certs-only");
        X509_free(cert);
    } else {
        ca_hr_status(res.status, st, sizeof st);
        text_reply(r, denial_status(res.status), NULL, "request %lld denied: %s (%s)",
                   (long long)res.id, res.message, st);
    }
    ca_result_cleanup(&res);
}

static void h_simpleenroll(struct emu_req *r)
{
    enroll(r, 0);
}

static void h_simplereenroll(struct emu_req *r)
{
    enroll(r, 1);
}

static const struct emu_route est_routes[] = {
    {"GET", "/.well-known/est/cacerts", h_cacerts},
    {"GET", "/.well-known/est/csrattrs", h_csrattrs},
    {"POST", "/.well-known/est/simpleenroll", h_simpleenroll},
    {"POST", "/.well-known/est/simplereenroll", h_simplereenroll},
    {"GET", "/.well-known/est/{label}/cacerts", h_cacerts},
    {"GET", "/.well-known/est/{label}/csrattrs", h_csrattrs},
    {"POST", "/.well-known/est/{label}/simpleenroll", h_simpleenroll},
    {"POST", "/.well-known/est/{label}/simplereenroll", h_simplereenroll},
};

enum clc_err ca_est_routes(const struct emu_route **routes, size_t *n)
{
    *routes = est_routes;
    *n = sizeof est_routes / sizeof est_routes[0];
    return CLC_OK;
}
