/* The CA clients' HTTP, a thin layer over clc_http (net/http.h), which does
 * the transfer on one handle kept for the client's life (NTLM authenticates
 * a connection, so the submit and the following GETs must reuse it), TLS,
 * the client certificate and libcurl's Basic, NTLM and Negotiate. Here: how
 * a CA's auth setting maps onto that, the base-URL check, the few response
 * headers the CA protocols read, and errors for statuses they did not
 * expect. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "ca/ca_int.h"
#include "core/log.h"
#include "net/http.h"

#define SAFE_URL_MAX 256

struct clc_ca_http {
    struct clc_http *http;
    const struct clc_ca_conf *conf; /* borrowed from the client */
    struct clc_ca_auth_plan plan;
    struct clc_http_auth auth; /* sent when plan.httpauth is set */
};

void clc_ca_http_resp_init(struct clc_ca_http_resp *r)
{
    memset(r, 0, sizeof *r);
    clc_buf_init(&r->body, 0);
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

enum clc_err clc_ca_http_new(const struct clc_ca_conf *conf, struct clc_ca_http **out,
                             struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca_http *h = NULL;
    struct clc_http_opts o;
    struct clc_errinfo sub;

    *out = NULL;
    clc_errinfo_clear(&sub);
    h = calloc(1, sizeof *h);
    if (!h)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    h->conf = conf;
    rc = clc_ca_auth_plan(conf, &h->plan, ei);
    if (rc != CLC_OK)
        goto out;
    if (h->plan.httpauth && (rc = clc_http_auth_available(h->plan.httpauth, &sub)) != CLC_OK) {
        rc = clc_errf(ei, rc, "CA '%s': %s", conf->name, sub.msg);
        goto out;
    }
    memset(&o, 0, sizeof o);
    o.ca_bundle = conf->tls_ca_bundle;
    o.connect_timeout_ms = conf->connect_timeout_ms;
    o.timeout_ms = conf->timeout_ms;
    o.max_response_bytes = conf->max_response;
    o.user_agent = conf->user_agent;
    o.proxy = conf->proxy;
    o.client_cert = h->plan.client_cert ? conf->client_cert : NULL;
    o.client_key = h->plan.client_cert ? conf->client_key : NULL;
    /* A CA is not an Azure service: no Azure request id header. */
    o.no_request_id = 1;
    rc = clc_http_new(&o, &h->http, &sub);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "CA '%s': %s", conf->name, sub.msg);
        goto out;
    }
    h->auth.schemes = h->plan.httpauth;
    h->auth.username = h->plan.send_password ? conf->username : NULL;
    h->auth.password = h->plan.send_password ? conf->password : NULL;
    h->auth.default_creds = h->plan.empty_userpwd;
    h->auth.http11 = h->plan.force_http11;
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
    clc_http_free(h->http);
    free(h);
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

/* The headers the CA protocols read, from the final response. */
static void take_headers(const struct clc_http_resp *hr, struct clc_ca_http_resp *r)
{
    const char *v = NULL;
    size_t pos = 0;

    if ((v = clc_http_resp_header(hr, "Content-Type")))
        copy_header_value(r->content_type, sizeof r->content_type, v, strlen(v), 1);
    if ((v = clc_http_resp_header(hr, "Retry-After")))
        copy_header_value(r->retry_after, sizeof r->retry_after, v, strlen(v), 0);
    while ((v = clc_http_resp_header_next(hr, "WWW-Authenticate", &pos)))
        add_scheme(r->www_authenticate, sizeof r->www_authenticate, v, strlen(v));
}

enum clc_err clc_ca_http_do(struct clc_ca_http *h, const char *method, const char *url,
                            const char *content_type, const void *body, size_t len,
                            struct clc_ca_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_http_req req = {.method = method, .url = url};
    struct clc_http_resp hr;
    struct clc_errinfo sub;
    char surl[SAFE_URL_MAX] = "";

    clc_buf_reset(&resp->body);
    resp->status = 0;
    resp->content_type[0] = resp->retry_after[0] = resp->www_authenticate[0] = '\0';
    if (strncmp(url, h->conf->url, strlen(h->conf->url)) != 0) {
        clc_http_safe_url(url, surl, sizeof surl);
        return clc_errf(ei, CLC_ERR_INTERNAL, "CA '%s': url %s is outside the CA's base url",
                        h->conf->name, surl);
    }
    if (strcmp(method, "POST") == 0) {
        /* In memory: libcurl can send it again after an auth round trip. */
        req.body = body ? body : "";
        req.body_len = len;
        req.content_type = content_type;
    }
    if (h->plan.httpauth)
        req.auth = &h->auth;
    clc_errinfo_clear(&sub);
    clc_http_resp_init(&hr);
    rc = clc_http_do(h->http, &req, &hr, &sub);
    resp->status = hr.status;
    take_headers(&hr, resp);
    /* The body moves over: it is capped at the CA's max_response. */
    clc_buf_cleanup(&resp->body);
    resp->body = hr.body;
    clc_buf_init(&hr.body, 0);
    if (rc == CLC_ERR_INVALID) {
        /* What clc_http refuses here came from the CA's configuration: a
         * url curl cannot use. */
        rc = CLC_ERR_CONFIG;
    }
    if (rc != CLC_OK && h->plan.client_cert && hr.status == 0 &&
        (rc == CLC_ERR_NET || rc == CLC_ERR_TLS))
        clc_errf(ei, rc,
                 "%s (the CA may have refused the client certificate: check that its issuer is "
                 "trusted by the CA, that it has the clientAuth usage and that it is valid and "
                 "not revoked)",
                 sub.msg);
    else if (rc != CLC_OK)
        clc_errf(ei, rc, "%s", sub.msg);
    if (clc_log_min_level() <= CLC_LOG_DEBUG) {
        clc_http_safe_url(url, surl, sizeof surl);
        clc_log(CLC_LOG_DEBUG, "ca.http", CLC_LS("ca", h->conf->name), CLC_LS("method", method),
                CLC_LS("url", surl), CLC_LI("status", resp->status),
                CLC_LS("content_type", resp->content_type), CLC_LS("result", clc_err_name(rc)));
    }
    clc_http_resp_cleanup(&hr);
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
