/* HTTP for the CA clients, on one libcurl handle kept for the client's life
 * (NTLM authenticates a connection, so the submit and the following GETs
 * must reuse it): Basic, Negotiate (Kerberos via GSS-API), NTLM or a TLS
 * client certificate; credentials only over https; no redirects; bounded
 * bodies; the few response headers the CA protocols need. */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "ca/ca_int.h"
#include "core/log.h"

#define SAFE_URL_MAX 256

struct clc_ca_http {
    CURL *curl;
    const struct clc_ca_conf *conf; /* borrowed from the client */
    struct clc_ca_auth_plan plan;
    char errbuf[CURL_ERROR_SIZE];
};

struct xfer {
    struct clc_ca_http_resp *resp;
    int overflow;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

void clc_ca_http_resp_init(struct clc_ca_http_resp *r, size_t max)
{
    memset(r, 0, sizeof *r);
    clc_buf_init(&r->body, max);
}

void clc_ca_http_resp_cleanup(struct clc_ca_http_resp *r)
{
    if (r)
        clc_buf_cleanup(&r->body);
}

static int is_https(const char *url)
{
    return url && strncasecmp(url, "https://", 8) == 0;
}

enum clc_err clc_ca_auth_plan(const struct clc_ca_conf *conf, struct clc_ca_auth_plan *out,
                              struct clc_errinfo *ei)
{
    memset(out, 0, sizeof *out);
    if (!conf->url || (!is_https(conf->url) && strncasecmp(conf->url, "http://", 7) != 0))
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': url must be an http(s) URL", conf->name);
    if (conf->auth != CLC_CA_AUTH_NONE && !is_https(conf->url))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "CA '%s': refusing authentication over plain http (use https)", conf->name);
    switch (conf->auth) {
    case CLC_CA_AUTH_NONE:
        break;
    case CLC_CA_AUTH_BASIC:
    case CLC_CA_AUTH_NTLM:
        if (!conf->username || !conf->password)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "CA '%s': auth %s needs username and password_file or password_env",
                            conf->name, conf->auth == CLC_CA_AUTH_BASIC ? "basic" : "ntlm");
        out->send_password = 1;
        if (conf->auth == CLC_CA_AUTH_BASIC) {
            out->httpauth = (long)CURLAUTH_BASIC;
        } else {
            out->httpauth = (long)CURLAUTH_NTLM;
            out->force_http11 = 1;
        }
        break;
    case CLC_CA_AUTH_NEGOTIATE:
        /* Credentials come from the Kerberos ticket cache (or the client
         * keytab); ":" tells older libcurl to use them. */
        out->httpauth = (long)CURLAUTH_NEGOTIATE;
        out->empty_userpwd = 1;
        break;
    case CLC_CA_AUTH_CERT:
        if (!conf->client_cert || !conf->client_key)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "CA '%s': auth cert needs client_cert and client_key", conf->name);
        out->client_cert = 1;
        break;
    }
    /* A client certificate may accompany any HTTP method (EST allows both). */
    if (conf->client_cert && conf->client_key)
        out->client_cert = 1;
    return CLC_OK;
}

static int feature_ok(long httpauth, struct clc_errinfo *ei, const char *name)
{
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);

    if (httpauth == (long)CURLAUTH_NTLM && !(v->features & CURL_VERSION_NTLM)) {
        clc_errf(ei, CLC_ERR_UNSUPPORTED, "CA '%s': this libcurl (%s) has no NTLM support", name,
                 v->version);
        return 0;
    }
    if (httpauth == (long)CURLAUTH_NEGOTIATE &&
        !(v->features & (CURL_VERSION_SPNEGO | CURL_VERSION_GSSAPI))) {
        clc_errf(ei, CLC_ERR_UNSUPPORTED,
                 "CA '%s': this libcurl (%s) has no SPNEGO/GSS-API (Kerberos) support", name,
                 v->version);
        return 0;
    }
    return 1;
}

enum clc_err clc_ca_http_new(const struct clc_ca_conf *conf, struct clc_ca_http **out,
                             struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http *h = NULL;

    *out = NULL;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "curl_global_init failed");
    h = calloc(1, sizeof *h);
    if (!h)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    h->conf = conf;
    rc = clc_ca_auth_plan(conf, &h->plan, ei);
    if (rc != CLC_OK)
        goto out;
    if (!feature_ok(h->plan.httpauth, ei, conf->name)) {
        rc = CLC_ERR_UNSUPPORTED;
        goto out;
    }
    h->curl = curl_easy_init();
    if (!h->curl) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "curl_easy_init failed");
        goto out;
    }
    *out = h;
    h = NULL;
out:
    clc_ca_http_free(h);
    return rc;
}

void clc_ca_http_free(struct clc_ca_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h);
}

/* The URL without query or user info, cut short, for messages. */
static void safe_url(const char *url, char out[SAFE_URL_MAX])
{
    size_t n = strcspn(url, "?#");
    const char *at = memchr(url, '@', n);
    const char *scheme_end = strstr(url, "://");

    if (at && scheme_end && scheme_end < at) {
        snprintf(out, SAFE_URL_MAX, "%.*s%.*s", (int)(scheme_end + 3 - url), url,
                 (int)(n - (size_t)(at + 1 - url)), at + 1);
        return;
    }
    snprintf(out, SAFE_URL_MAX, "%.*s", (int)n, url);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;

    if (clc_buf_append(&x->resp->body, ptr, n) != CLC_OK) {
        x->overflow = 1;
        return 0;
    }
    return n;
}

static void copy_header_value(char *dst, size_t dstsz, const char *v, size_t n, int media_only)
{
    size_t o = 0;

    while (n > 0 && isspace((unsigned char)*v)) {
        v++;
        n--;
    }
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    for (size_t i = 0; i < n && o + 1 < dstsz; i++) {
        if (media_only && (v[i] == ';' || isspace((unsigned char)v[i])))
            break;
        dst[o++] = media_only ? (char)tolower((unsigned char)v[i]) : v[i];
    }
    dst[o] = '\0';
}

/* Appends the scheme of one WWW-Authenticate value ("Negotiate", "NTLM",
 * "Basic"; IIS sends one header per scheme) to list: what the server
 * offers, for the message when the configured scheme is not among them. */
static void add_scheme(char *list, size_t max, const char *v, size_t n)
{
    size_t used = strlen(list), k = 0;

    while (n > 0 && isspace((unsigned char)*v)) {
        v++;
        n--;
    }
    while (k < n && k < 32 && isalnum((unsigned char)v[k]))
        k++;
    if (k == 0 || used + k + 3 > max)
        return;
    snprintf(list + used, max - used, "%s%.*s", used ? ", " : "", (int)k, v);
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    struct clc_ca_http_resp *r = x->resp;
    size_t n = size * nitems;
    const char *colon = memchr(ptr, ':', n);
    size_t nl = colon ? (size_t)(colon - ptr) : 0;
    const char *v = colon ? colon + 1 : NULL;
    size_t vl = colon ? n - nl - 1 : 0;

    /* Each response (a 401 before the authenticated one) starts afresh. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        r->content_type[0] = '\0';
        r->retry_after[0] = '\0';
        r->www_authenticate[0] = '\0';
        return n;
    }
    if (!colon)
        return n;
    if (nl == 12 && strncasecmp(ptr, "Content-Type", 12) == 0)
        copy_header_value(r->content_type, sizeof r->content_type, v, vl, 1);
    else if (nl == 11 && strncasecmp(ptr, "Retry-After", 11) == 0)
        copy_header_value(r->retry_after, sizeof r->retry_after, v, vl, 0);
    else if (nl == 16 && strncasecmp(ptr, "WWW-Authenticate", 16) == 0)
        add_scheme(r->www_authenticate, sizeof r->www_authenticate, v, vl);
    return n;
}

static enum clc_err map_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_OK:
        return CLC_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CLC_ERR_TIMEOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return CLC_ERR_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return CLC_ERR_CONFIG;
    case CURLE_OUT_OF_MEMORY:
        return CLC_ERR_NOMEM;
    case CURLE_LOGIN_DENIED:
        return CLC_ERR_AUTH;
    default:
        return CLC_ERR_NET;
    }
}

static CURLcode set_common(struct clc_ca_http *h)
{
    const struct clc_ca_conf *c = h->conf;
    CURL *k = h->curl;
    CURLcode cc = CURLE_OK;
#define SET(opt, val)                                                                              \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(k, (opt), (val));                                                \
    } while (0)
    SET(CURLOPT_ERRORBUFFER, h->errbuf);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->tls_ca_bundle)
        SET(CURLOPT_CAINFO, c->tls_ca_bundle);
    if (c->proxy)
        SET(CURLOPT_PROXY, c->proxy);
    SET(CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, c->timeout_ms);
    SET(CURLOPT_USERAGENT, c->user_agent);
    if (h->plan.force_http11)
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    if (h->plan.httpauth)
        SET(CURLOPT_HTTPAUTH, h->plan.httpauth);
    if (h->plan.send_password) {
        SET(CURLOPT_USERNAME, c->username);
        SET(CURLOPT_PASSWORD, clc_secret_reveal(c->password));
    }
    if (h->plan.empty_userpwd)
        SET(CURLOPT_USERPWD, ":");
    if (h->plan.client_cert) {
        SET(CURLOPT_SSLCERT, c->client_cert);
        SET(CURLOPT_SSLCERTTYPE, "PEM");
        SET(CURLOPT_SSLKEY, c->client_key);
        SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
#undef SET
    return cc;
}

enum clc_err clc_ca_http_do(struct clc_ca_http *h, const char *method, const char *url,
                            const char *content_type, const void *body, size_t len,
                            struct clc_ca_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct curl_slist *hdrs = NULL;
    struct curl_slist *t = NULL;
    struct xfer x = {.resp = resp};
    char surl[SAFE_URL_MAX];
    char ct[160];
    CURLcode cc = CURLE_OK;
    int post = strcmp(method, "POST") == 0;

    safe_url(url, surl);
    clc_buf_reset(&resp->body);
    resp->status = 0;
    resp->content_type[0] = resp->retry_after[0] = resp->www_authenticate[0] = '\0';
    if (strncmp(url, h->conf->url, strlen(h->conf->url)) != 0)
        return clc_errf(ei, CLC_ERR_INTERNAL, "CA '%s': url %s is outside the CA's base url",
                        h->conf->name, surl);
    /* Every option is set again after curl_easy_reset, which keeps the
     * connection cache (an NTLM-authenticated connection stays one: NTLM's
     * state is the connection's) and clears per-transfer state that libcurl
     * 7.88 otherwise carries over, such as its count of retries on reused
     * connections that died (after five over the handle's life, every later
     * one failed). */
    curl_easy_reset(h->curl);
    cc = set_common(h);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_URL, url);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_body);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &x);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_HEADERFUNCTION, on_header);
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, &x);
    t = curl_slist_append(NULL, "Expect:");
    if (t)
        hdrs = t;
    if (hdrs && post && content_type) {
        snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
        t = curl_slist_append(hdrs, ct);
        hdrs = t ? t : hdrs;
        if (!t)
            cc = CURLE_OUT_OF_MEMORY;
    }
    if (!hdrs)
        cc = CURLE_OUT_OF_MEMORY;
    if (cc == CURLE_OK)
        cc = curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, hdrs);
    if (cc == CURLE_OK && post) {
        /* In-memory body: libcurl can send it again after an auth round trip. */
        cc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, body ? body : "");
    } else if (cc == CURLE_OK) {
        cc = curl_easy_setopt(h->curl, CURLOPT_HTTPGET, 1L);
    }
    if (cc != CURLE_OK) {
        rc = clc_errf(ei, cc == CURLE_OUT_OF_MEMORY ? CLC_ERR_NOMEM : CLC_ERR_INTERNAL,
                      "%s %s: setting curl options failed: %s", method, surl,
                      curl_easy_strerror(cc));
        goto out;
    }
    h->errbuf[0] = '\0';
    cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    if (x.overflow) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "%s %s: response larger than %zu bytes", method, surl,
                      resp->body.max);
    } else if (cc != CURLE_OK) {
        const char *why = h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc);
        enum clc_err e = map_curl(cc);
        /* Under TLS 1.3 a server refuses a client certificate after the
         * client's side of the handshake is done, so libcurl reports a send
         * or receive failure. An alert in the text is a refusal, not a
         * network fault; without one we cannot tell, so say what to check. */
        int refused = h->plan.client_cert && resp->status == 0 &&
                      (strstr(why, "alert") != NULL || strstr(why, "certificate") != NULL);
        if (refused)
            e = CLC_ERR_TLS;
        if (h->plan.client_cert && resp->status == 0 && e != CLC_ERR_TIMEOUT)
            rc = clc_errf(ei, e,
                          "%s %s: %s (the CA may have refused the client certificate: check "
                          "that its issuer is trusted by the CA, that it has the clientAuth "
                          "usage and that it is valid and not revoked)",
                          method, surl, why);
        else
            rc = clc_errf(ei, e, "%s %s: %s", method, surl, why);
    }
    clc_log(CLC_LOG_DEBUG, "ca.http", CLC_LS("ca", h->conf->name), CLC_LS("method", method),
            CLC_LS("url", surl), CLC_LI("status", resp->status),
            CLC_LS("content_type", resp->content_type), CLC_LS("result", clc_err_name(rc)));
out:
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hdrs);
    return rc;
}

static const char *scheme_name(enum clc_ca_auth a)
{
    switch (a) {
    case CLC_CA_AUTH_BASIC:
        return "Basic";
    case CLC_CA_AUTH_NEGOTIATE:
        return "Negotiate";
    case CLC_CA_AUTH_NTLM:
        return "NTLM";
    default:
        return NULL;
    }
}

/* 1 unless the 401 listed schemes and the configured one is not among them
 * (a list we could not read, or a method with no scheme, says nothing). */
static int scheme_offered(enum clc_ca_auth a, const char *list)
{
    const char *want = scheme_name(a), *p = list;
    size_t wl;

    if (want == NULL || list[0] == '\0')
        return 1;
    wl = strlen(want);
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == wl && strncasecmp(p, want, wl) == 0)
            return 1;
        p += n;
        while (*p == ',' || *p == ' ')
            p++;
    }
    return 0;
}

enum clc_err clc_ca_http_status_error(const struct clc_ca_conf *conf,
                                      const struct clc_ca_http_resp *resp, const char *what,
                                      struct clc_errinfo *ei)
{
    char snippet[160];
    enum clc_err e = clc_err_from_http(resp->status);
    long st = resp->status;

    /* Bodies are peer text: printable, one line, short. Skip leading markup. */
    const char *b = clc_buf_str(&resp->body);
    if (strncmp(b, "<", 1) == 0 || resp->content_type[0] == '\0' ||
        strstr(resp->content_type, "html"))
        snippet[0] = '\0';
    else
        clc_ca_set_text(snippet, sizeof snippet, b, resp->body.len);
    if (st == 401 && !scheme_offered(conf->auth, resp->www_authenticate)) {
        e = CLC_ERR_AUTH;
        clc_errf(ei, e,
                 "CA '%s': %s: the CA does not offer %s authentication (HTTP 401; it offers %s): "
                 "check ca.%s.auth",
                 conf->name, what, scheme_name(conf->auth), resp->www_authenticate, conf->name);
    } else if (st == 401) {
        e = CLC_ERR_AUTH;
        clc_errf(ei, e, "CA '%s': %s: credentials refused (HTTP 401%s%s)", conf->name, what,
                 resp->www_authenticate[0] ? "; server offers " : "", resp->www_authenticate);
    } else if (st == 404) {
        e = CLC_ERR_CONFIG;
        clc_errf(ei, e, "CA '%s': %s: not found (HTTP 404): check ca.%s.url", conf->name, what,
                 conf->name);
    } else {
        if (st == 408)
            e = CLC_ERR_TIMEOUT;
        else if (e == CLC_OK || e == CLC_ERR_INVALID || e == CLC_ERR_NOT_FOUND)
            e = CLC_ERR_HTTP;
        clc_errf(ei, e, "CA '%s': %s: unexpected HTTP %ld%s%s", conf->name, what, st,
                 snippet[0] ? ": " : "", snippet);
    }
    clc_errinfo_set_http(ei, st, NULL);
    return e;
}
