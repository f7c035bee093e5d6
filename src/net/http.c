/* HTTP client on one reused libcurl easy handle: per-request options (with
 * libcurl's HTTP authentication and the TLS client certificate), bounded
 * response capture, CURLcode to clc_err mapping, and the retry loop. Which
 * credential may go where is decided in http_rules.c. */
#include "net/http.h"
#include "net/http_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "core/log.h"
#include "core/rand.h"

#ifndef CLC_VERSION
#define CLC_VERSION "0"
#endif

#define HTTP_DEFAULT_CONNECT_MS 10000L
#define HTTP_DEFAULT_TIMEOUT_MS 60000L
#define HTTP_DEFAULT_MAX_RESPONSE ((size_t)16 * 1024 * 1024)
/* Longest URL we echo in messages and logs; longer ones are cut. */
#define HTTP_SAFE_URL_MAX 256
/* Hard ceiling on tries whatever the policy says: every loop is bounded. */
#define HTTP_MAX_ATTEMPTS 50

struct clc_http {
    CURL *curl;
    char *ca_bundle;
    char *proxy;
    char *user_agent;
    char *client_cert;
    char *client_key;
    int no_request_id;
    long connect_timeout_ms;
    long timeout_ms;
    size_t max_response_bytes;
    struct clc_clock clock;
    int has_clock;
    char errbuf[CURL_ERROR_SIZE];
    struct clc_uuid_pool rids; /* request ids (a handle is used by one thread at a time) */
};

/* State shared with the curl callbacks during one transfer. */
struct xfer {
    struct clc_http_resp *resp;
    int overflow;
    int nomem;
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d = NULL;

    if (s) {
        d = strdup(s);
        if (!d)
            *failed = 1;
    }
    return d;
}

enum clc_err clc_http_new(const struct clc_http_opts *opts, struct clc_http **out,
                          struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_http *h = NULL;
    struct clc_http_opts none;
    int failed = 0;

    *out = NULL;
    if (!opts) {
        memset(&none, 0, sizeof none);
        opts = &none;
    }
    if (opts->connect_timeout_ms < 0 || opts->timeout_ms < 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "http: timeouts must not be negative");
        goto out;
    }
    if (opts->client_key && !opts->client_cert) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "http: a client key without a client certificate");
        goto out;
    }
    if (opts->ca_bundle && access(opts->ca_bundle, R_OK) != 0) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "http: CA bundle %s is not readable", opts->ca_bundle);
        goto out;
    }
    h = calloc(1, sizeof *h);
    if (!h) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    h->ca_bundle = dup_or_null(opts->ca_bundle, &failed);
    h->proxy = dup_or_null(opts->proxy, &failed);
    h->client_cert = dup_or_null(opts->client_cert, &failed);
    h->client_key = dup_or_null(opts->client_key, &failed);
    h->user_agent =
        dup_or_null(opts->user_agent ? opts->user_agent : "certlc/" CLC_VERSION, &failed);
    if (failed) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    h->connect_timeout_ms =
        opts->connect_timeout_ms ? opts->connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS;
    h->timeout_ms = opts->timeout_ms ? opts->timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
    h->max_response_bytes =
        opts->max_response_bytes ? opts->max_response_bytes : HTTP_DEFAULT_MAX_RESPONSE;
    h->no_request_id = opts->no_request_id;
    if (opts->clock) {
        h->clock = *opts->clock;
        h->has_clock = 1;
    }
    *out = h;
    h = NULL;
out:
    clc_http_free(h);
    return rc;
}

void clc_http_free(struct clc_http *h)
{
    if (!h)
        return;
    if (h->curl)
        curl_easy_cleanup(h->curl);
    free(h->ca_bundle);
    free(h->proxy);
    free(h->user_agent);
    free(h->client_cert);
    free(h->client_key);
    OPENSSL_cleanse(&h->rids, sizeof h->rids);
    free(h);
}

/* Each header's name and value share one allocation, owned by name. */
static void free_headers(struct clc_http_resp *r)
{
    for (size_t i = 0; i < r->nheaders && i < CLC_HTTP_MAX_HEADERS; i++) {
        free(r->headers[i].name);
        r->headers[i].name = NULL;
        r->headers[i].value = NULL;
    }
    r->nheaders = 0;
}

void clc_http_resp_init(struct clc_http_resp *r)
{
    memset(r, 0, sizeof *r);
    clc_buf_init(&r->body, HTTP_DEFAULT_MAX_RESPONSE);
}

void clc_http_resp_cleanup(struct clc_http_resp *r)
{
    if (!r)
        return;
    free_headers(r);
    clc_buf_cleanup(&r->body);
    r->status = 0;
    r->attempts = 0;
    r->client_request_id[0] = '\0';
}

const char *clc_http_resp_header(const struct clc_http_resp *r, const char *name)
{
    size_t pos = 0;

    return clc_http_resp_header_next(r, name, &pos);
}

const char *clc_http_resp_header_next(const struct clc_http_resp *r, const char *name, size_t *pos)
{
    for (size_t i = *pos; i < r->nheaders && i < CLC_HTTP_MAX_HEADERS; i++)
        if (r->headers[i].name && strcasecmp(r->headers[i].name, name) == 0) {
            *pos = i + 1;
            return r->headers[i].value;
        }
    *pos = r->nheaders;
    return NULL;
}

enum clc_err clc_http_auth_available(long schemes, struct clc_errinfo *ei)
{
    const curl_version_info_data *v = NULL;

    /* libcurl's features are only known once it is initialised. */
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "http: curl_global_init failed: %s",
                        curl_easy_strerror(global_rc));
    v = curl_version_info(CURLVERSION_NOW);
    if ((schemes & (long)CURLAUTH_NTLM) && !(v->features & CURL_VERSION_NTLM))
        return clc_errf(ei, CLC_ERR_UNSUPPORTED, "this libcurl (%s) has no NTLM support",
                        v->version);
    if ((schemes & (long)CURLAUTH_NEGOTIATE) &&
        !(v->features & (CURL_VERSION_SPNEGO | CURL_VERSION_GSSAPI)))
        return clc_errf(ei, CLC_ERR_UNSUPPORTED,
                        "this libcurl (%s) has no SPNEGO/GSS-API (Kerberos) support", v->version);
    return CLC_OK;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct xfer *x = userdata;
    size_t n = size * nmemb;
    enum clc_err rc = clc_buf_append(&x->resp->body, ptr, n);

    if (rc == CLC_ERR_LIMIT) {
        x->overflow = 1;
        return 0;
    }
    if (rc != CLC_OK) {
        x->nomem = 1;
        return 0;
    }
    return n;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static size_t on_header(char *ptr, size_t size, size_t nitems, void *userdata)
{
    struct xfer *x = userdata;
    struct clc_http_resp *r = x->resp;
    size_t n = size * nitems;
    const char *colon = memchr(ptr, ':', n);
    size_t nlen = 0;
    const char *v = NULL;
    size_t vlen = 0;
    char *mem = NULL;

    /* Each status line starts a new header block (100-continue, a proxy's
     * CONNECT reply); only the final response's headers are kept. */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) {
        free_headers(r);
        return n;
    }
    if (!colon || colon == ptr || r->nheaders >= CLC_HTTP_MAX_HEADERS)
        return n;
    nlen = (size_t)(colon - ptr);
    v = colon + 1;
    vlen = n - nlen - 1;
    while (vlen > 0 && is_ows(*v)) {
        v++;
        vlen--;
    }
    while (vlen > 0 && is_ows(v[vlen - 1]))
        vlen--;
    /* "name\0value\0" in one block: one allocation per header. */
    mem = malloc(nlen + vlen + 2);
    if (!mem) {
        x->nomem = 1;
        return 0;
    }
    memcpy(mem, ptr, nlen);
    mem[nlen] = '\0';
    memcpy(mem + nlen + 1, v, vlen);
    mem[nlen + 1 + vlen] = '\0';
    r->headers[r->nheaders].name = mem;
    r->headers[r->nheaders].value = mem + nlen + 1;
    r->nheaders++;
    return n;
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int method_ok(const char *m)
{
    size_t n = 0;

    for (; m[n]; n++)
        if (m[n] < 'A' || m[n] > 'Z')
            return 0;
    return n > 0 && n <= 16;
}

/* Wipes every list entry that held a credential, then frees the list. */
static void free_slist_wiping(struct curl_slist *l)
{
    for (struct curl_slist *p = l; p; p = p->next)
        if (p->data && strncasecmp(p->data, "Authorization:", 14) == 0)
            OPENSSL_cleanse(p->data, strlen(p->data));
    curl_slist_free_all(l);
}

static enum clc_err slist_add(struct curl_slist **l, const char *line)
{
    struct curl_slist *n = curl_slist_append(*l, line);

    if (!n)
        return CLC_ERR_NOMEM;
    *l = n;
    return CLC_OK;
}

/* Authorization line for the request, built in a buffer the caller wipes;
 * *sent says whether there is one. */
static enum clc_err auth_line(const struct clc_http_req *req, struct clc_buf *line, int *sent)
{
    enum clc_err rc = CLC_OK;

    *sent = 0;
    if (req->bearer) {
        rc = clc_buf_append_str(line, "Authorization: Bearer ");
        if (rc == CLC_OK)
            rc = clc_buf_append(line, clc_secret_reveal(req->bearer), clc_secret_len(req->bearer));
        *sent = 1;
    } else if (req->authorization) {
        rc = clc_buf_append_str(line, "Authorization: ");
        if (rc == CLC_OK)
            rc = clc_buf_append(line, clc_secret_reveal(req->authorization),
                                clc_secret_len(req->authorization));
        *sent = 1;
    }
    return rc;
}

static int caller_has_header(const struct clc_http_req *req, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; req->headers && req->headers[i]; i++)
        if (strncasecmp(req->headers[i], name, n) == 0 && req->headers[i][n] == ':')
            return 1;
    return 0;
}

static enum clc_err build_headers(const struct clc_http_req *req, const char *request_id,
                                  struct curl_slist **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct curl_slist *l = NULL;
    struct clc_buf line;
    int with_auth = 0;

    clc_buf_init(&line, CLC_SECRET_MAX + 64);
    *out = NULL;
    if (request_id[0]) {
        rc = clc_buf_append_str(&line, "x-ms-client-request-id: ");
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&line, request_id);
        if (rc == CLC_OK)
            rc = slist_add(&l, clc_buf_str(&line));
    }
    /* curl would otherwise wait for 100-continue on larger bodies. */
    if (rc == CLC_OK)
        rc = slist_add(&l, "Expect:");
    /* curl labels any POSTFIELDS body as a form unless told otherwise; a
     * body we were not told the type of goes out without one. */
    if (rc == CLC_OK && !req->content_type && !caller_has_header(req, "Content-Type"))
        rc = slist_add(&l, "Content-Type:");
    if (rc == CLC_OK && req->body && req->content_type) {
        if (has_crlf(req->content_type)) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "http: content type contains a line break");
            goto out;
        }
        clc_buf_reset(&line);
        rc = clc_buf_append_str(&line, "Content-Type: ");
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&line, req->content_type);
        if (rc == CLC_OK)
            rc = slist_add(&l, clc_buf_str(&line));
    }
    for (size_t i = 0; rc == CLC_OK && req->headers && req->headers[i]; i++) {
        if (has_crlf(req->headers[i]) || !strchr(req->headers[i], ':')) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "http: header %zu is not one 'Name: value' line", i);
            goto out;
        }
        rc = slist_add(&l, req->headers[i]);
    }
    if (rc != CLC_OK)
        goto out;
    clc_buf_reset(&line);
    rc = auth_line(req, &line, &with_auth);
    if (rc == CLC_OK && with_auth) {
        if (has_crlf(clc_buf_str(&line)) || strlen(clc_buf_str(&line)) != line.len) {
            /* Message must not quote the credential. */
            rc = clc_errf(ei, CLC_ERR_INVALID, "http: credential contains a line break or NUL");
            goto out;
        }
        rc = slist_add(&l, clc_buf_str(&line));
    }
    if (rc != CLC_OK)
        goto out;
    *out = l;
    l = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "http: out of memory building headers");
    clc_buf_cleanse(&line);
    free_slist_wiping(l);
    return rc;
}

static enum clc_err map_curl(CURLcode cc, const struct xfer *x)
{
    if (x->overflow)
        return CLC_ERR_LIMIT;
    if (x->nomem)
        return CLC_ERR_NOMEM;
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
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return CLC_ERR_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return CLC_ERR_INVALID;
    case CURLE_OUT_OF_MEMORY:
        return CLC_ERR_NOMEM;
    case CURLE_LOGIN_DENIED:
        return CLC_ERR_AUTH;
    default:
        /* Resolve, connect, send, receive, empty reply, truncated body,
         * HTTP/2 stream and proxy failures: the network let us down. */
        return CLC_ERR_NET;
    }
}

/* Under TLS 1.3 a server refuses a client certificate after the client's
 * side of the handshake is done, so libcurl reports a send or receive
 * failure; its text then names the alert. Without that we cannot tell. */
static int cert_refused(const char *why)
{
    return strstr(why, "alert") != NULL || strstr(why, "certificate") != NULL;
}

static enum clc_err set_method(CURL *c, const struct clc_http_req *req)
{
    CURLcode cc = CURLE_OK;
    int has_body = req->body != NULL || strcmp(req->method, "POST") == 0 ||
                   strcmp(req->method, "PUT") == 0 || strcmp(req->method, "PATCH") == 0;

    if (strcmp(req->method, "HEAD") == 0) {
        cc = curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!has_body) {
        cc = curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        if (cc == CURLE_OK && strcmp(req->method, "GET") != 0)
            cc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    } else {
        /* POSTFIELDS with an explicit size sends bytes as they are (binary
         * safe, Content-Length set); the method name is overridden after. */
        cc = curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                              (curl_off_t)(req->body ? req->body_len : 0));
        if (cc == CURLE_OK)
            cc = curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
        if (cc == CURLE_OK && strcmp(req->method, "POST") != 0)
            cc = curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method);
    }
    return cc == CURLE_OK ? CLC_OK : CLC_ERR_INTERNAL;
}

#define HTTP_SET(opt, val)                                                                         \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(c, (opt), (val));                                                \
    } while (0)

/* The curl handle is made at the first request, not in clc_http_new: a
 * process that only sets up clients (the sync daemon's supervisor, which
 * runs each pass in a child) never loads libcurl's TLS state. */
static enum clc_err ensure_curl(struct clc_http *h, struct clc_errinfo *ei)
{
    if (h->curl)
        return CLC_OK;
    pthread_once(&global_once, global_init);
    if (global_rc != CURLE_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "http: curl_global_init failed: %s",
                        curl_easy_strerror(global_rc));
    if (!(h->curl = curl_easy_init()))
        return clc_errf(ei, CLC_ERR_NOMEM, "http: curl_easy_init failed");
    return CLC_OK;
}

/* Every option, set afresh for each request after curl_easy_reset. The
 * reset is needed, not only tidy: it also clears per-transfer state that
 * libcurl 7.88 otherwise carries over, such as the count of retries on a
 * reused connection that died (after five over the handle's life, every
 * later one failed with "Connection died, tried 5 times"). It keeps the
 * connection cache, so keep-alive connections are still reused. */
static enum clc_err set_options(struct clc_http *h, const struct clc_http_req *req,
                                struct curl_slist *hdrs, struct xfer *x, int force_no_proxy)
{
    CURL *c = h->curl;
    CURLcode cc = CURLE_OK;

    curl_easy_reset(c);
    h->errbuf[0] = '\0';
    HTTP_SET(CURLOPT_ERRORBUFFER, h->errbuf);
    HTTP_SET(CURLOPT_NOSIGNAL, 1L);
    HTTP_SET(CURLOPT_URL, req->url);
    HTTP_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    HTTP_SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    HTTP_SET(CURLOPT_FOLLOWLOCATION, 0L);
    HTTP_SET(CURLOPT_SSL_VERIFYPEER, 1L);
    HTTP_SET(CURLOPT_SSL_VERIFYHOST, 2L);
    HTTP_SET(CURLOPT_PROXY_SSL_VERIFYPEER, 1L);
    HTTP_SET(CURLOPT_PROXY_SSL_VERIFYHOST, 2L);
    if (h->ca_bundle)
        HTTP_SET(CURLOPT_CAINFO, h->ca_bundle);
    HTTP_SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
    HTTP_SET(CURLOPT_TIMEOUT_MS, h->timeout_ms);
    HTTP_SET(CURLOPT_TCP_NODELAY, 1L);
    HTTP_SET(CURLOPT_USERAGENT, h->user_agent);
    HTTP_SET(CURLOPT_HTTPHEADER, hdrs);
    HTTP_SET(CURLOPT_WRITEFUNCTION, on_body);
    HTTP_SET(CURLOPT_WRITEDATA, x);
    HTTP_SET(CURLOPT_HEADERFUNCTION, on_header);
    HTTP_SET(CURLOPT_HEADERDATA, x);
    if (h->proxy)
        HTTP_SET(CURLOPT_PROXY, h->proxy);
    if (req->no_proxy || force_no_proxy)
        HTTP_SET(CURLOPT_NOPROXY, "*");
    if (h->client_cert) {
        HTTP_SET(CURLOPT_SSLCERT, h->client_cert);
        HTTP_SET(CURLOPT_SSLCERTTYPE, "PEM");
        HTTP_SET(CURLOPT_SSLKEY, h->client_key ? h->client_key : h->client_cert);
        HTTP_SET(CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (req->auth) {
        HTTP_SET(CURLOPT_HTTPAUTH, req->auth->schemes);
        if (req->auth->http11)
            HTTP_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        if (req->auth->default_creds) {
            /* An empty user and password: libcurl then lets GSS-API pick
             * its default credentials (older libcurl needs them set). */
            HTTP_SET(CURLOPT_USERPWD, ":");
        } else {
            HTTP_SET(CURLOPT_USERNAME, req->auth->username);
            HTTP_SET(CURLOPT_PASSWORD, clc_secret_reveal(req->auth->password));
        }
    }
    if (cc != CURLE_OK)
        return CLC_ERR_INTERNAL;
    return set_method(c, req);
}
#undef HTTP_SET

enum clc_err clc_http_do(struct clc_http *h, const struct clc_http_req *req,
                         struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct curl_slist *hdrs = NULL;
    struct xfer x = {.resp = resp};
    char url[HTTP_SAFE_URL_MAX] = "";
    CURLcode cc = CURLE_OK;
    int plain_cred = 0;
    long status = 0;

    free_headers(resp);
    clc_buf_cleanup(&resp->body);
    clc_buf_init(&resp->body, h->max_response_bytes);
    resp->status = 0;
    resp->attempts = 1;
    resp->client_request_id[0] = '\0';
    if (!req->method || !method_ok(req->method) || !req->url) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "http: request needs an upper-case method and a url");
        goto out;
    }
    rc = clc_http_check_credentials(req, &plain_cred, ei);
    if (rc != CLC_OK)
        goto out;
    if (req->client_request_id) {
        if (strlen(req->client_request_id) >= sizeof resp->client_request_id ||
            has_crlf(req->client_request_id) || !req->client_request_id[0]) {
            rc = clc_errf(ei, CLC_ERR_INVALID, "http: client request id must be one short line");
            goto out;
        }
        snprintf(resp->client_request_id, sizeof resp->client_request_id, "%s",
                 req->client_request_id);
    } else if (!h->no_request_id) {
        clc_uuid_pool_next(&h->rids, resp->client_request_id);
    }
    if ((rc = ensure_curl(h, ei)) != CLC_OK)
        goto out;
    rc = build_headers(req, resp->client_request_id, &hdrs, ei);
    if (rc != CLC_OK)
        goto out;
    /* A proxy on a plain http hop would see the credential. */
    rc = set_options(h, req, hdrs, &x, plain_cred);
    if (rc != CLC_OK) {
        clc_http_safe_url(req->url, url, sizeof url);
        rc = clc_errf(ei, rc, "%s %s: setting curl options failed", req->method, url);
        goto out;
    }
    cc = curl_easy_perform(h->curl);
    curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    resp->status = status;
    rc = map_curl(cc, &x);
    if (rc == CLC_ERR_NET && h->client_cert && status == 0 &&
        cert_refused(h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc)))
        rc = CLC_ERR_TLS;
    /* The log-safe URL costs a parse: made only when a message or the
     * debug record will show it. */
    if (rc != CLC_OK || clc_log_min_level() <= CLC_LOG_DEBUG)
        clc_http_safe_url(req->url, url, sizeof url);
    if (rc == CLC_ERR_LIMIT) {
        rc = clc_errf(ei, rc, "%s %s: response larger than %zu bytes", req->method, url,
                      h->max_response_bytes);
    } else if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "%s %s: %s", req->method, url,
                      h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
    }
    clc_log(CLC_LOG_DEBUG, "http.request", CLC_LS("method", req->method), CLC_LS("url", url),
            CLC_LI("status", status), CLC_LS("result", clc_err_name(rc)),
            CLC_LS("client_request_id", resp->client_request_id));
out:
    /* Drop curl's pointer to the list before it is freed. */
    if (hdrs && h->curl)
        curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    free_slist_wiping(hdrs);
    return rc;
}

enum clc_err clc_http_send(struct clc_http *h, const struct clc_http_req *req,
                           const struct clc_retry_policy *policy, struct clc_http_resp *resp,
                           struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_retry_policy dflt;
    const struct clc_retry_policy *p = policy;
    int max_attempts = 1;
    int64_t spent_ms = 0; /* time in transfers plus the waits we asked for */
    char url[HTTP_SAFE_URL_MAX] = "";

    if (!p) {
        clc_retry_policy_default(&dflt);
        p = &dflt;
    }
    if (req->idempotent && p->max_attempts > 1)
        max_attempts = p->max_attempts < HTTP_MAX_ATTEMPTS ? p->max_attempts : HTTP_MAX_ATTEMPTS;
    for (int attempt = 1;; attempt++) {
        int64_t t0 = clc_mono_ms();
        int64_t delay = 0;
        int retry = 0;

        if (ei)
            clc_errinfo_clear(ei);
        rc = clc_http_do(h, req, resp, ei);
        resp->attempts = attempt;
        spent_ms += clc_mono_ms() - t0;
        if (rc != CLC_OK)
            retry = clc_retry_err_retryable(rc);
        else
            retry = clc_retry_status_retryable(resp->status);
        if (!retry || attempt >= max_attempts)
            break;
        if (rc == CLC_OK)
            delay = clc_retry_delay_ms(p, attempt, clc_http_resp_header(resp, "Retry-After"),
                                       clc_http_resp_header(resp, "retry-after-ms")
                                           ? clc_http_resp_header(resp, "retry-after-ms")
                                           : clc_http_resp_header(resp, "x-ms-retry-after-ms"),
                                       clc_clock_now(h->has_clock ? &h->clock : NULL));
        else
            delay = clc_retry_delay_ms(p, attempt, NULL, NULL, 0);
        /* A policy without a total bound is bounded by its attempts. */
        if (p->max_total_ms > 0 && spent_ms + delay > p->max_total_ms)
            break;
        /* Only retries log the URL: it is parsed on the first one. */
        if (!url[0])
            clc_http_safe_url(req->url, url, sizeof url);
        if (rc == CLC_OK)
            clc_log(CLC_LOG_INFO, "http.retry", CLC_LS("method", req->method), CLC_LS("url", url),
                    CLC_LI("status", resp->status), CLC_LI("attempt", attempt),
                    CLC_LI("delay_ms", delay));
        else
            clc_log(CLC_LOG_INFO, "http.retry", CLC_LS("method", req->method), CLC_LS("url", url),
                    CLC_LS("error", clc_err_name(rc)), CLC_LI("attempt", attempt),
                    CLC_LI("delay_ms", delay));
        if (p->sleep_ms)
            p->sleep_ms(delay, p->ctx);
        else
            clc_sleep_ms(delay);
        spent_ms += delay;
    }
    return rc;
}
