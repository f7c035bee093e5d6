/* AD CS Web Enrollment as clients scrape it (/certsrv): certfnsh.asp form
 * submission and pending checks, answered with pages carrying AD CS's markers
 * (ReqID links, "Your Request Id is", disposition messages, tab-indented
 * status lines), and certnew.cer / certnew.p7b by request id or CACert. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>

#include "core/buf.h"
#include "core/log.h"
#include "emulator/ca.h"
#include "emulator/state.h"

#define PAGE_MAX ((size_t)16 * 1024)
#define ATTRIB_MAX 4096
#define SMALL_FIELD 64

void ca_html_escape(const char *in, char *out, size_t n)
{
    size_t k = 0;

    if (n == 0)
        return;
    for (; *in; in++) {
        const char *rep = NULL;
        char one[2] = {*in, '\0'};
        switch (*in) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            rep = one;
            break;
        }
        if (k + strlen(rep) + 1 > n)
            break;
        memcpy(out + k, rep, strlen(rep));
        k += strlen(rep);
    }
    out[k] = '\0';
}

/* ---- pages ---- */

static void send_page(struct emu_req *r, int status, struct clc_buf *b, enum clc_err rc)
{
    if (rc != CLC_OK)
        emu_reply(r, 500, "text/plain", "page too large\n", 15, NULL);
    else
        emu_reply(r, status, "text/html", b->data, b->len, NULL);
    clc_buf_cleanup(b);
}

static enum clc_err head(struct clc_buf *b, const char *title)
{
    return clc_buf_appendf(
        b,
        "<HTML>\r\n<Head>\r\n<Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; "
        "charset=UTF-8\">\r\n<Title>Microsoft Active Directory Certificate Services</Title>\r\n"
        "</Head>\r\n<Body BgColor=#FFFFFF LINK=#0000FF VLINK=#0000FF ALINK=#0000FF>\r\n"
        "<Table Border=0 CellSpacing=0 CellPadding=4 Width=100%%>\r\n<TR><TD BgColor=#008080>"
        "<Font Color=#FFFFFF><I>Microsoft</I> Active Directory Certificate Services"
        "&nbsp;--&nbsp;certlc-ISSUING-CA&nbsp;</Font></TD></TR>\r\n</Table>\r\n"
        "<P ID=locPageTitle><Font Size=+1><B>%s</B></Font>\r\n",
        title);
}

static const char tail[] = "</Body>\r\n</HTML>\r\n";

static void page_issued(struct emu_req *r, int64_t id)
{
    struct clc_buf b;
    long long n = (long long)id;
    enum clc_err rc;

    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Certificate Issued");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(
            &b,
            "<P ID=locPageDesc>The certificate you requested was issued to you.</P>\r\n"
            "<P><Input Type=Radio Name=rbEncoding ID=rbDerEnc>DER encoded or\r\n"
            "<Input Type=Radio Name=rbEncoding ID=rbB64Enc Checked>Base 64 encoded</P>\r\n"
            "<P><A Href=\"certnew.cer?ReqID=%lld&amp;Enc=b64\">Download certificate</A><BR>\r\n"
            "<A Href=\"certnew.p7b?ReqID=%lld&amp;Enc=b64\">Download certificate chain</A>"
            "</P>\r\n<Script Language=\"JavaScript\">\r\n"
            "function getEncoding() { return rbB64Enc.checked ? \"Enc=b64\" : \"Enc=bin\"; }\r\n"
            "var sCert=\"certnew.cer?ReqID=%lld&\"+getEncoding();\r\n"
            "var sPKCS7=\"certnew.p7b?ReqID=%lld&\"+getEncoding();\r\n"
            "function handleGetCert() { location=\"certnew.cer?ReqID=%lld&\"+getEncoding(); }\r\n"
            "function handleGetChain() { location=\"certnew.p7b?ReqID=%lld&\"+getEncoding(); }\r\n"
            "</Script>\r\n%s",
            n, n, n, n, n, n, tail);
    send_page(r, 200, &b, rc);
}

static void page_pending(struct emu_req *r, int64_t id, int still)
{
    struct clc_buf b;
    enum clc_err rc;

    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Certificate Pending");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(
            &b,
            "<P ID=locPageDesc>%s</P>\r\n<P>Your Request Id is %lld.</P>\r\n"
            "<P>Please return to this web site in a day or two to retrieve your "
            "certificate.</P>\r\n%s",
            still ? "Your certificate request is still pending. You must wait for an "
                    "administrator to issue the certificate you requested."
                  : "Your certificate request has been received. However, you must wait for "
                    "an administrator to issue the certificate you requested.",
            (long long)id, tail);
    send_page(r, 200, &b, rc);
}

static void page_denied(struct emu_req *r, int64_t id, const char *message)
{
    struct clc_buf b;
    char esc[CA_MSG_MAX * 2];
    enum clc_err rc;

    ca_html_escape(message, esc, sizeof esc);
    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Certificate Request Denied");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(&b,
                             "<P ID=locPageDesc>Your certificate request was denied.</P>\r\n"
                             "<P ID=locInfo>Your Request Id is %lld. The disposition message is "
                             "\"%s\".</P>\r\n<P>Contact your administrator for further "
                             "information.</P>\r\n%s",
                             (long long)id, message[0] ? esc : "Denied", tail);
    send_page(r, 200, &b, rc);
}

/* certnew.cer without a certificate: AD CS's error page; clients read the
 * value after the two tabs of each line. */
static void page_status(struct emu_req *r, const char *disposition, const char *message,
                        uint32_t hr)
{
    struct clc_buf b;
    char st[256], esc[CA_MSG_MAX * 2];
    enum clc_err rc;

    ca_hr_status(hr, st, sizeof st);
    ca_html_escape(message, esc, sizeof esc);
    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Error");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(
            &b,
            "<P ID=locPageDesc>An unexpected error has occurred:</P>\r\n<DL>\r\n"
            "<DT ID=locDispLabel><Font Size=-1><B>Disposition:</B></Font></DT><DD>\r\n\t\t%s\r\n"
            "</DD>\r\n<DT ID=locDispMsgLabel><Font Size=-1><B>Disposition message:</B></Font>"
            "</DT><DD>\r\n\t\t%s\r\n</DD>\r\n<DT ID=locLastStatLabel><Font Size=-1><B>"
            "LastStatus:</B></Font></DT><DD>\r\n\t\t%s\r\n</DD>\r\n</DL>\r\n%s",
            disposition, esc, st, tail);
    send_page(r, 200, &b, rc);
}

static void page_bad_request(struct emu_req *r, int status, const char *why)
{
    struct clc_buf b;
    char esc[512];
    enum clc_err rc;

    ca_html_escape(why, esc, sizeof esc);
    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Error");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(&b, "<P ID=locPageDesc>%s</P>\r\n%s", esc, tail);
    send_page(r, status, &b, rc);
}

/* ---- handlers ---- */

static void h_home(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct clc_buf b;
    enum clc_err rc;

    if (ca_auth(ca, r, 1) == NULL)
        return;
    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Welcome");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(&b,
                             "<P>Use this Web site to request a certificate for your Web browser, "
                             "e-mail client, or other program.</P>\r\n"
                             "<P><A Href=\"certrqus.asp\">Request a certificate</A><BR>\r\n"
                             "<A Href=\"certckpn.asp\">View the status of a pending certificate "
                             "request</A><BR>\r\n<A Href=\"certcarc.asp\">Download a CA "
                             "certificate, certificate chain, or CRL</A></P>\r\n%s",
                             tail);
    send_page(r, 200, &b, rc);
}

/* The CA has never been renewed: renewal index 0 is the current one. */
static void h_certcarc(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct clc_buf b;
    enum clc_err rc;

    if (ca_auth(ca, r, 1) == NULL)
        return;
    clc_buf_init(&b, PAGE_MAX);
    rc = head(&b, "Download a CA Certificate, Certificate Chain, or CRL");
    if (rc == CLC_OK)
        rc = clc_buf_appendf(&b,
                             "<Script Language=\"JavaScript\">\r\nvar nRenewals=0;\r\n</Script>\r\n"
                             "<P><A Href=\"certnew.cer?ReqID=CACert&amp;Renewal=0&amp;Enc=b64\">"
                             "Download CA certificate</A><BR>\r\n<A Href=\"certnew.p7b?ReqID="
                             "CACert&amp;Renewal=0&amp;Enc=b64\">Download CA certificate chain"
                             "</A></P>\r\n%s",
                             tail);
    send_page(r, 200, &b, rc);
}

/* CertificateTemplate:<name> among "Name:Value" lines (\r\n or \n). */
static void attrib_template(const char *attrib, char *out, size_t n)
{
    const char *p = attrib;

    out[0] = '\0';
    while (*p) {
        size_t len = strcspn(p, "\r\n");
        const char *colon = memchr(p, ':', len);
        if (colon != NULL && (size_t)(colon - p) == 19 &&
            strncasecmp(p, "CertificateTemplate", 19) == 0) {
            const char *v = colon + 1;
            size_t vl = len - (size_t)(v - p);
            while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
                vl--;
            snprintf(out, n, "%.*s", (int)(vl < n ? vl : n - 1), v);
            return;
        }
        p += len;
        p += strspn(p, "\r\n");
    }
}

static int parse_reqid(const char *s, int64_t *id)
{
    char *end;
    long long v;

    if (s[0] < '0' || s[0] > '9' || strlen(s) > 18)
        return 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 1)
        return 0;
    *id = v;
    return 1;
}

static void newreq(struct emu_req *r, struct emu_ca *ca, const struct ca_account *a)
{
    char *csr = malloc(r->body_len + 1), *attrib = malloc(r->body_len + 1);
    char tmpl[CA_NAME_MAX * 2];
    struct ca_submit s = {0};
    struct ca_result res;
    struct clc_errinfo ei = {0};
    enum clc_err rc;

    if (csr == NULL || attrib == NULL) {
        page_bad_request(r, 500, "out of memory");
        goto out;
    }
    if (!emu_req_form(r, "CertRequest", csr, r->body_len + 1) || csr[0] == '\0') {
        page_bad_request(r, 400,
                         "The form field CertRequest is missing, empty or not form-encoded "
                         "(percent escapes must be valid).");
        goto out;
    }
    if (strlen(csr) > CA_CSR_TEXT_MAX) {
        page_bad_request(r, 413, "The certificate request is too large (more than 32 KiB).");
        goto out;
    }
    if (!emu_req_form(r, "CertAttrib", attrib, r->body_len + 1))
        attrib[0] = '\0';
    if (strlen(attrib) > ATTRIB_MAX) {
        page_bad_request(r, 400, "CertAttrib is too long.");
        goto out;
    }
    attrib_template(attrib, tmpl, sizeof tmpl);
    s.account = a;
    s.template_ref = tmpl;
    s.csr_text = csr;
    s.csr_len = strlen(csr);
    s.source = "certsrv";
    rc = ca_submit(ca, &s, &res, &ei);
    if (rc == CLC_ERR_LIMIT) {
        page_bad_request(r, 503, "The CA database is full.");
        goto out;
    }
    if (rc != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.ca.submit_failed", CLC_LS("reason", ei.msg));
        page_bad_request(r, 500, "The CA could not process the request.");
        goto out;
    }
    if (res.disposition == CA_DISP_ISSUED)
        page_issued(r, res.id);
    else if (res.disposition == CA_DISP_PENDING)
        page_pending(r, res.id, 0);
    else
        page_denied(r, res.id, res.message);
    ca_result_cleanup(&res);
out:
    free(csr);
    free(attrib);
}

/* Copies the row the account may read; 0 when there is none. */
static int own_row(struct emu_ca *ca, const struct ca_account *a, int64_t id, struct ca_result *res)
{
    struct ca_request *q;
    int ok = 0;

    pthread_mutex_lock(&ca->mu);
    q = ca_store_get(ca, id);
    /* A requester reads its own requests only. */
    if (q != NULL && strcasecmp(q->requester, a->name) == 0)
        ok = ca_result_from(q, res) == CLC_OK;
    pthread_mutex_unlock(&ca->mu);
    return ok;
}

static void chkpnd(struct emu_req *r, struct emu_ca *ca, const struct ca_account *a)
{
    char s[SMALL_FIELD];
    struct ca_result res;
    int64_t id = 0;

    if (!emu_req_form(r, "ReqID", s, sizeof s) || !parse_reqid(s, &id) ||
        !own_row(ca, a, id, &res)) {
        page_status(r, "0", ca_hr_text(CA_HR_PROPERTY_EMPTY), CA_HR_PROPERTY_EMPTY);
        return;
    }
    if (res.disposition == CA_DISP_ISSUED || res.disposition == CA_DISP_REVOKED)
        page_issued(r, res.id);
    else if (res.disposition == CA_DISP_PENDING)
        page_pending(r, res.id, 1);
    else
        page_denied(r, res.id, res.message);
    ca_result_cleanup(&res);
}

static void h_certfnsh(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    const struct ca_account *a = ca_auth(ca, r, 1);
    const char *ct = emu_req_header(r, "Content-Type");
    char mode[SMALL_FIELD];

    if (a == NULL)
        return;
    if (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0) {
        page_bad_request(r, 415, "certfnsh.asp takes an application/x-www-form-urlencoded form.");
        return;
    }
    if (!emu_req_form(r, "Mode", mode, sizeof mode)) {
        page_bad_request(r, 400, "The form field Mode is missing (newreq or chkpnd).");
        return;
    }
    if (strcmp(mode, "newreq") == 0)
        newreq(r, ca, a);
    else if (strcmp(mode, "chkpnd") == 0)
        chkpnd(r, ca, a);
    else
        page_bad_request(r, 400, "Unknown Mode (expected newreq or chkpnd).");
}

static void send_cert(struct emu_req *r, const unsigned char *der, size_t len, int p7, int b64)
{
    const char *ct = p7 ? "application/x-pkcs7-certificates" : "application/pkix-cert";
    char *text;

    if (!b64) {
        emu_reply(r, 200, ct, der, len, NULL);
        return;
    }
    /* AD CS armours the base64 PKCS#7 as CERTIFICATE too. */
    text = ca_b64_lines(der, len, "CERTIFICATE");
    if (text == NULL)
        emu_reply(r, 500, "text/plain", "out of memory\n", 14, NULL);
    else
        emu_reply(r, 200, ct, text, strlen(text), NULL);
    free(text);
}

/* A DER tag and definite length for n content bytes (n < 16 MiB); its size. */
static size_t der_head(unsigned char tag, size_t n, unsigned char out[5])
{
    size_t k = 0;
    out[k++] = tag;
    if (n >= 0x10000)
        out[k++] = 0x83, out[k++] = (unsigned char)(n >> 16);
    else if (n >= 0x100)
        out[k++] = 0x82;
    else if (n >= 0x80)
        out[k++] = 0x81;
    if (n >= 0x100)
        out[k++] = (unsigned char)(n >> 8);
    out[k++] = (unsigned char)n;
    return k;
}

/* 1 when der is one DER element spanning exactly len bytes (a stored
 * certificate the store file may have mangled). */
static int der_whole(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    long n = 0;
    int tag = 0, cls = 0;
    int r = len > 0 && len < (1u << 24) ? ASN1_get_object(&p, &n, &tag, &cls, (long)len) : 0x80;
    return (r & 0x80) == 0 && tag == V_ASN1_SEQUENCE && p + n == der + len;
}

/* The certs-only PKCS#7 ca_pkcs7 writes (a degenerate SignedData, RFC 5652
 * 5.2: version 1, no digest algorithms, content type data without content,
 * the certificates in this order, no signers), made from their DER: the
 * issued certificate is served without being parsed again. */
static enum clc_err p7_from_der(const unsigned char *const *ders, const size_t *lens, size_t n,
                                struct clc_buf *out)
{
    static const unsigned char oid_signed[] = {0x06, 0x09, 0x2a, 0x86, 0x48, 0x86,
                                               0xf7, 0x0d, 0x01, 0x07, 0x02};
    static const unsigned char head[] = {0x02, 0x01, 0x01, 0x31, 0x00, 0x30, 0x0b, 0x06, 0x09,
                                         0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01};
    static const unsigned char no_signers[] = {0x31, 0x00};
    unsigned char h_certs[5], h_sd[5], h_exp[5], h_ci[5];
    size_t certs = 0;

    for (size_t i = 0; i < n; i++)
        certs += lens[i];
    if (certs >= (1u << 23))
        return CLC_ERR_LIMIT;
    size_t l_certs = der_head(0xa0, certs, h_certs);
    size_t sd = sizeof head + l_certs + certs + sizeof no_signers;
    size_t l_sd = der_head(0x30, sd, h_sd);
    size_t l_exp = der_head(0xa0, l_sd + sd, h_exp);
    size_t ci = sizeof oid_signed + l_exp + l_sd + sd;
    size_t l_ci = der_head(0x30, ci, h_ci);
    enum clc_err rc = clc_buf_append(out, h_ci, l_ci);
    struct {
        const void *p;
        size_t n;
    } parts[] = {{oid_signed, sizeof oid_signed},
                 {h_exp, l_exp},
                 {h_sd, l_sd},
                 {head, sizeof head},
                 {h_certs, l_certs}};
    for (size_t i = 0; rc == CLC_OK && i < sizeof parts / sizeof parts[0]; i++)
        rc = clc_buf_append(out, parts[i].p, parts[i].n);
    for (size_t i = 0; rc == CLC_OK && i < n; i++)
        rc = clc_buf_append(out, ders[i], lens[i]);
    return rc == CLC_OK ? clc_buf_append(out, no_signers, sizeof no_signers) : rc;
}

/* An issued request's certificate (.cer) or it with the CA chain (.p7b),
 * from the stored DER. */
static void send_issued(struct emu_req *r, struct emu_ca *ca, const struct ca_result *res, int p7,
                        int b64)
{
    unsigned char *issuing = NULL, *root = NULL;
    struct clc_buf b;

    if (!der_whole(res->cert, res->cert_len)) {
        emu_reply(r, 500, "text/plain", "stored certificate unreadable\n", 30, NULL);
        return;
    }
    if (!p7) {
        send_cert(r, res->cert, res->cert_len, 0, b64);
        return;
    }
    clc_buf_init(&b, 1u << 24);
    int li = i2d_X509(ca->issuing, &issuing), lr = i2d_X509(ca->root, &root);
    const unsigned char *ders[3] = {res->cert, issuing, root};
    size_t lens[3] = {res->cert_len, (size_t)li, (size_t)lr};
    if (li > 0 && lr > 0 && p7_from_der(ders, lens, 3, &b) == CLC_OK)
        send_cert(r, (const unsigned char *)b.data, b.len, 1, b64);
    else
        emu_reply(r, 500, "text/plain", "PKCS#7 encoding failed\n", 23, NULL);
    OPENSSL_free(issuing);
    OPENSSL_free(root);
    clc_buf_cleanup(&b);
}

static void certnew(struct emu_req *r, int p7)
{
    struct emu_ca *ca = r->svc_ctx;
    const struct ca_account *a = ca_auth(ca, r, 1);
    char s[SMALL_FIELD], enc[SMALL_FIELD], disp[64];
    struct ca_result res = {0};
    unsigned char *der = NULL;
    size_t len = 0;
    X509 *certs[2] = {NULL, NULL};
    size_t n = 0;
    int64_t id = 0;
    int b64;

    if (a == NULL)
        return;
    b64 = emu_req_query(r, "Enc", enc, sizeof enc) && strcmp(enc, "b64") == 0;
    if (!emu_req_query(r, "ReqID", s, sizeof s)) {
        page_status(r, "0", ca_hr_text(CA_HR_INVALID_PARAMETER), CA_HR_INVALID_PARAMETER);
        return;
    }
    if (strcmp(s, "CACert") != 0) {
        if (!parse_reqid(s, &id) || !own_row(ca, a, id, &res)) {
            page_status(r, "0", ca_hr_text(CA_HR_PROPERTY_EMPTY), CA_HR_PROPERTY_EMPTY);
        } else if (res.cert == NULL) {
            snprintf(disp, sizeof disp, "%d", res.disposition);
            page_status(r, disp, res.message, res.status);
        } else {
            send_issued(r, ca, &res, p7, b64);
        }
        ca_result_cleanup(&res);
        return;
    }
    /* The CA hierarchy is fixed after mount: no lock needed to read it. */
    certs[n++] = ca->issuing;
    if (p7)
        certs[n++] = ca->root;
    if (p7) {
        if (ca_pkcs7(certs, n, &der, &len) == CLC_OK)
            send_cert(r, der, len, 1, b64);
        else
            emu_reply(r, 500, "text/plain", "PKCS#7 encoding failed\n", 23, NULL);
        OPENSSL_free(der);
    } else {
        int dl = i2d_X509(certs[0], &der);
        if (dl > 0)
            send_cert(r, der, (size_t)dl, 0, b64);
        else
            emu_reply(r, 500, "text/plain", "encoding failed\n", 16, NULL);
        OPENSSL_free(der);
    }
}

static void h_certnew_cer(struct emu_req *r)
{
    certnew(r, 0);
}

static void h_certnew_p7b(struct emu_req *r)
{
    certnew(r, 1);
}

/* IIS paths are case-insensitive; clients use both spellings. */
static const struct emu_route certsrv_routes[] = {
    {"GET", "/certsrv/", h_home},
    {"GET", "/certsrv", h_home},
    {"GET", "/CertSrv/", h_home},
    {"GET", "/CertSrv", h_home},
    {"POST", "/certsrv/certfnsh.asp", h_certfnsh},
    {"POST", "/CertSrv/certfnsh.asp", h_certfnsh},
    {"GET", "/certsrv/certnew.cer", h_certnew_cer},
    {"GET", "/CertSrv/certnew.cer", h_certnew_cer},
    {"GET", "/certsrv/certnew.p7b", h_certnew_p7b},
    {"GET", "/CertSrv/certnew.p7b", h_certnew_p7b},
    {"GET", "/certsrv/certcarc.asp", h_certcarc},
    {"GET", "/CertSrv/certcarc.asp", h_certcarc},
};

enum clc_err ca_certsrv_routes(const struct emu_route **routes, size_t *n)
{
    *routes = certsrv_routes;
    *n = sizeof certsrv_routes / sizeof certsrv_routes[0];
    return CLC_OK;
}
