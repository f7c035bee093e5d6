/* Test support for the emulated CA (see test_emu_ca_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/secret.h"
#include "emulator/state.h"
#include "test_emu_ca_fixture.h"
#include "support/emu_admin.h"

struct cafx cafx;

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return -1;
    ok = fputs(text, f) >= 0;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int start(int64_t at)
{
    struct clc_errinfo ei = {0};
    struct emu_opts o = {.data_dir = cafx.data_dir, .quiet = 1, .start_time = at};
    struct clc_http_opts ho = {0};
    char *text = NULL;

    if (access(cafx.config, F_OK) == 0)
        o.config_file = cafx.config;
    if (emu_start(&o, &cafx.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(cafx.e, &text, &ei) != CLC_OK)
        return -1;
    cJSON_Delete(cafx.endpoints);
    cafx.endpoints = cJSON_Parse(text);
    free(text);
    ho.ca_bundle = emu_ca_bundle(cafx.e);
    ho.timeout_ms = 15000;
    ho.user_agent = "Mozilla/5.0 (certlc tests)";
    clc_http_free(cafx.http);
    cafx.http = NULL;
    if (cafx.endpoints == NULL || clc_http_new(&ho, &cafx.http, &ei) != CLC_OK)
        return -1;
    return 0;
}

int cafx_setup(const char *config_json)
{
    memset(&cafx, 0, sizeof cafx);
    snprintf(cafx.dir, sizeof cafx.dir, "/tmp/clc-emu-ca-XXXXXX");
    if (mkdtemp(cafx.dir) == NULL)
        return -1;
    snprintf(cafx.data_dir, sizeof cafx.data_dir, "%s/data", cafx.dir);
    snprintf(cafx.config, sizeof cafx.config, "%s/config.json", cafx.dir);
    if (mkdir(cafx.data_dir, 0700) != 0)
        return -1;
    if (config_json != NULL && write_file(cafx.config, config_json) != 0)
        return -1;
    return start(0);
}

int cafx_restart(void)
{
    int64_t now = emu_now(cafx.e);

    test_emu_admin_forget(cafx.e);
    emu_stop(cafx.e);
    cafx.e = NULL;
    return start(now);
}

void cafx_teardown(void)
{
    char cmd[400];

    test_emu_admin_forget(cafx.e);
    emu_stop(cafx.e);
    clc_http_free(cafx.http);
    cJSON_Delete(cafx.endpoints);
    if (strncmp(cafx.dir, "/tmp/clc-emu-ca-", 16) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", cafx.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", cafx.dir);
    }
    memset(&cafx, 0, sizeof cafx);
}

const char *cafx_url(void)
{
    return emu_service_url(cafx.e, "ca");
}

const char *cafx_password(const char *account)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cafx.endpoints, "ca_accounts");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(a, account);

    return cJSON_IsString(p) ? p->valuestring : NULL;
}

static long do_req(const char *method, const char *url, const struct clc_secret *basic,
                   const struct clc_secret *bearer, const char *content_type, const char *body,
                   size_t len, struct clc_http_resp *resp)
{
    struct clc_errinfo ei = {0};
    struct clc_http_req req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = len,
        .content_type = content_type,
        .authorization = basic,
        .bearer = bearer,
    };

    clc_http_resp_init(resp);
    if (clc_http_do(cafx.http, &req, resp, &ei) != CLC_OK) {
        fprintf(stderr, "%s %s: %s\n", method, url, ei.msg);
        return 0;
    }
    return resp->status;
}

long cafx_req(const char *method, const char *path, const char *account, const char *password,
              const char *content_type, const char *body, size_t len, struct clc_http_resp *resp)
{
    char url[2048], cred[512], hdr[800];
    char *b64 = NULL;
    struct clc_secret *basic = NULL;
    long st;

    snprintf(url, sizeof url, "%s%s", cafx_url(), path);
    if (account != NULL) {
        snprintf(cred, sizeof cred, "%s:%s", account,
                 password ? password : (cafx_password(account) ? cafx_password(account) : ""));
        if (clc_b64_encode(cred, strlen(cred), &b64, NULL) != CLC_OK)
            return 0;
        snprintf(hdr, sizeof hdr, "Basic %s", b64);
        free(b64);
        if (clc_secret_new(hdr, strlen(hdr), &basic) != CLC_OK)
            return 0;
    }
    st = do_req(method, url, basic, NULL, content_type, body, len, resp);
    clc_secret_free(basic);
    return st;
}

cJSON *cafx_json(const struct clc_http_resp *resp)
{
    cJSON *j = NULL;

    if (clc_json_parse(clc_buf_str(&resp->body), resp->body.len, 1 << 24, &j, NULL) != CLC_OK)
        return NULL;
    return j;
}

long cafx_admin(const char *method, const char *path, const char *body, struct clc_http_resp *resp)
{
    return test_emu_admin_call(cafx.e, cafx.http, method, path, body, resp);
}

/* ---- keys and CSRs ---- */

EVP_PKEY *cafx_rsa(int bits)
{
    return EVP_RSA_gen((unsigned)bits);
}

EVP_PKEY *cafx_ec(void)
{
    return EVP_EC_gen("P-256");
}

static X509_REQ *make_req(EVP_PKEY *key, const char *cn, const char *const *sans)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    char list[2048] = "";
    int ok = req && name && exts && X509_REQ_set_version(req, 0) == 1;

    if (ok && cn != NULL)
        ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                        -1, 0) == 1;
    ok = ok && X509_REQ_set_subject_name(req, name) == 1 && X509_REQ_set_pubkey(req, key) == 1;
    for (size_t i = 0; ok && sans && sans[i]; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? "," : "", sans[i]);
    if (ok && list[0]) {
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, list);
        ok =
            ext && sk_X509_EXTENSION_push(exts, ext) > 0 && X509_REQ_add_extensions(req, exts) == 1;
        if (ext && !ok && sk_X509_EXTENSION_num(exts) == 0)
            X509_EXTENSION_free(ext);
    }
    ok = ok && X509_REQ_sign(req, key, EVP_sha256()) > 0;
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(name);
    if (!ok) {
        X509_REQ_free(req);
        return NULL;
    }
    return req;
}

static unsigned char *req_der(EVP_PKEY *key, const char *cn, const char *const *sans, int bad_sig,
                              int *len)
{
    X509_REQ *req = make_req(key, cn, sans);
    unsigned char *der = NULL;

    *len = req ? i2d_X509_REQ(req, &der) : -1;
    X509_REQ_free(req);
    if (*len <= 0)
        return NULL;
    if (bad_sig)
        der[*len - 1] ^= 0x01; /* last octet of the signature value */
    return der;
}

char *cafx_csr(EVP_PKEY *key, const char *cn, const char *const *sans, int bad_sig)
{
    int len;
    unsigned char *der = req_der(key, cn, sans, bad_sig, &len);
    char *b64 = NULL, *pem;
    size_t n, bl;

    if (der == NULL || clc_b64_encode(der, (size_t)len, &b64, &bl) != CLC_OK) {
        OPENSSL_free(der);
        return NULL;
    }
    OPENSSL_free(der);
    n = bl + bl / 64 + 128;
    pem = malloc(n);
    if (pem != NULL) {
        size_t k = (size_t)snprintf(pem, n, "-----BEGIN CERTIFICATE REQUEST-----\n");
        for (size_t i = 0; i < bl; i += 64)
            k += (size_t)snprintf(pem + k, n - k, "%.64s\n", b64 + i);
        snprintf(pem + k, n - k, "-----END CERTIFICATE REQUEST-----\n");
    }
    free(b64);
    return pem;
}

char *cafx_csr_b64(EVP_PKEY *key, const char *cn, const char *const *sans)
{
    int len;
    unsigned char *der = req_der(key, cn, sans, 0, &len);
    char *b64 = NULL;

    if (der != NULL)
        clc_b64_encode(der, (size_t)len, &b64, NULL);
    OPENSSL_free(der);
    return b64;
}

long cafx_submit(const char *account, const char *csr_pem, const char *tmpl,
                 struct clc_http_resp *resp)
{
    struct clc_buf b;
    char attrib[256];
    long st;

    clc_buf_init(&b, 1 << 20);
    clc_buf_append_str(&b, "Mode=newreq&CertRequest=");
    clc_http_urlencode(&b, csr_pem);
    if (tmpl != NULL) {
        snprintf(attrib, sizeof attrib, "CertificateTemplate:%s\r\n", tmpl);
        clc_buf_append_str(&b, "&CertAttrib=");
        clc_http_urlencode(&b, attrib);
    }
    clc_buf_append_str(&b, "&TargetStoreFlags=0&SaveCert=yes&ThumbPrint=");
    st = cafx_req("POST", "/certsrv/certfnsh.asp", account, NULL,
                  "application/x-www-form-urlencoded", b.data, b.len, resp);
    clc_buf_cleanup(&b);
    return st;
}

/* ---- scraping ---- */

static int64_t digits_after(const char *page, const char *marker)
{
    const char *p = strstr(page, marker);

    if (p == NULL)
        return -1;
    p += strlen(marker);
    if (*p < '0' || *p > '9')
        return -1;
    return strtoll(p, NULL, 10);
}

int64_t cafx_page_cert_id(const char *page)
{
    return digits_after(page, "certnew.cer?ReqID=");
}

int64_t cafx_page_request_id(const char *page)
{
    return digits_after(page, "Your Request Id is ");
}

int cafx_page_disposition(const char *page, char *out, size_t n)
{
    const char *p = strstr(page, "The disposition message is \"");
    size_t len;

    if (p == NULL)
        return 0;
    p += strlen("The disposition message is \"");
    len = strcspn(p, "\"");
    snprintf(out, n, "%.*s", (int)len, p);
    return 1;
}

int cafx_page_line(const char *page, const char *label, char *out, size_t n)
{
    const char *p = strstr(page, label), *tabs;

    if (p == NULL)
        return 0;
    /* label, then at least one non-tab character, then two tabs. */
    tabs = strstr(p + strlen(label), "\t\t");
    if (tabs == NULL || tabs == p + strlen(label) ||
        memchr(p + strlen(label), '\t', (size_t)(tabs - p - strlen(label))) != NULL)
        return 0;
    tabs += 2;
    snprintf(out, n, "%.*s", (int)strcspn(tabs, "\r\n"), tabs);
    return 1;
}

X509 *cafx_fetch_cert(const char *account, int64_t id)
{
    struct clc_http_resp resp;
    char path[128];
    const unsigned char *p;
    const char *ct;
    X509 *c = NULL;

    snprintf(path, sizeof path, "/certsrv/certnew.cer?ReqID=%lld&Enc=bin", (long long)id);
    if (cafx_req("GET", path, account, NULL, NULL, NULL, 0, &resp) == 200) {
        ct = clc_http_resp_header(&resp, "Content-Type");
        p = (const unsigned char *)resp.body.data;
        if (ct != NULL && strcmp(ct, "application/pkix-cert") == 0)
            c = d2i_X509(NULL, &p, (long)resp.body.len);
    }
    clc_http_resp_cleanup(&resp);
    return c;
}

STACK_OF(X509) * cafx_p7_certs(const char *data, size_t len)
{
    unsigned char *der = NULL;
    size_t dl = 0;
    const unsigned char *p;
    const char *b = data, *e;
    PKCS7 *p7 = NULL;
    STACK_OF(X509) *out = NULL;

    if (len > 0 && (unsigned char)data[0] == 0x30) {
        p = (const unsigned char *)data;
        p7 = d2i_PKCS7(NULL, &p, (long)len);
    } else {
        const char *begin = strstr(data, "-----BEGIN");
        if (begin != NULL) {
            b = strchr(begin, '\n');
            e = strstr(data, "-----END");
            if (b == NULL || e == NULL)
                return NULL;
            len = (size_t)(e - ++b);
        }
        if (clc_b64_decode(b, len, &der, &dl) != CLC_OK)
            return NULL;
        p = der;
        p7 = d2i_PKCS7(NULL, &p, (long)dl);
    }
    if (p7 != NULL && PKCS7_type_is_signed(p7) && p7->d.sign->cert != NULL)
        out = X509_chain_up_ref(p7->d.sign->cert);
    PKCS7_free(p7);
    free(der);
    return out;
}

int cafx_same_key(X509 *c, EVP_PKEY *k)
{
    return EVP_PKEY_eq(X509_get0_pubkey(c), k) == 1;
}
