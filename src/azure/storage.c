/* Storage request pipeline shared by the queue and blob clients: builds the
 * URL and x-ms-* headers, authenticates (Shared Key, SAS, bearer), sends with
 * retries when the call is idempotent, and maps Storage errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "azure/storage.h"
#include "azure/storage_xml.h"
#include "core/rand.h"

#define MAX_URL 8192
#define MAX_ERROR_NODES 64

struct clc_storage {
    struct clc_http *http;
    const struct clc_storage_cred *cred;
    struct clc_retry_policy retry;
    struct clc_clock clock;
    int has_clock;
    char *endpoint;  /* without trailing '/' */
    char *base_path; /* URI path of the endpoint without trailing '/'; "" for host-style */
    char *version;
    struct clc_uuid_pool rids; /* request ids (one client per thread) */
};

int clc_storage_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
        if (c == '-' && s[i + 1] == '-')
            return 0;
    }
    return 1;
}

/* Splits the endpoint; refuses what would make URLs ambiguous. */
static enum clc_err parse_endpoint(struct clc_storage *s, const char *endpoint,
                                   struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    CURLU *u = curl_url();
    char *scheme = NULL, *path = NULL, *query = NULL, *frag = NULL;
    size_t n = 0;

    if (!u)
        return CLC_ERR_NOMEM;
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "storage: endpoint '%s' is not an http(s) URL", endpoint);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
        curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0) == CURLUE_OK) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "storage: endpoint '%s' must not have a query or "
                      "fragment (give a SAS as a credential)",
                      endpoint);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    n = strlen(path);
    while (n > 0 && path[n - 1] == '/')
        n--;
    s->base_path = strndup(path, n);
    n = strlen(endpoint);
    while (n > 0 && endpoint[n - 1] == '/')
        n--;
    s->endpoint = strndup(endpoint, n);
    if (!s->base_path || !s->endpoint)
        rc = CLC_ERR_NOMEM;
out:
    curl_free(scheme);
    curl_free(path);
    curl_free(query);
    curl_free(frag);
    curl_url_cleanup(u);
    return rc;
}

enum clc_err clc_storage_new(const struct clc_storage_opts *o, struct clc_storage **out,
                             struct clc_errinfo *ei)
{
    struct clc_storage *s = NULL;
    struct clc_http_opts dflt = {0};
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (!o || !o->endpoint || !o->cred)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: endpoint and credential are required");
    s = calloc(1, sizeof *s);
    if (!s)
        return CLC_ERR_NOMEM;
    s->cred = o->cred;
    if (o->retry)
        s->retry = *o->retry;
    else
        clc_retry_policy_default(&s->retry);
    if (o->clock) {
        s->clock = *o->clock;
        s->has_clock = 1;
    }
    s->version =
        strdup(o->api_version && *o->api_version ? o->api_version : CLC_STORAGE_API_VERSION);
    if (!s->version) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    rc = parse_endpoint(s, o->endpoint, ei);
    if (rc == CLC_OK)
        rc = clc_http_new(o->http ? o->http : &dflt, &s->http, ei);
    if (rc != CLC_OK)
        goto out;
    *out = s;
    s = NULL;
out:
    clc_storage_free(s);
    return rc;
}

void clc_storage_free(struct clc_storage *s)
{
    if (!s)
        return;
    clc_http_free(s->http);
    free(s->endpoint);
    free(s->base_path);
    free(s->version);
    free(s);
}

static enum clc_err build_url(const struct clc_storage *s, const struct clc_storage_call *c,
                              struct clc_buf *url, struct clc_errinfo *ei)
{
    enum clc_err rc = clc_buf_append_str(url, s->endpoint);
    char sep = '?';

    if (rc == CLC_OK)
        rc = clc_buf_append_str(url, c->path && *c->path ? c->path : (*s->base_path ? "" : "/"));
    for (size_t i = 0; i < c->nquery && rc == CLC_OK; i++) {
        rc = clc_buf_append_byte(url, sep);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(url, c->query[i].name);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(url, '=');
        if (rc == CLC_OK)
            rc = clc_http_urlencode(url, c->query[i].value);
        sep = '&';
    }
    if (rc == CLC_OK && s->cred && clc_storage_cred_kind(s->cred) == CLC_STORAGE_SAS) {
        const struct clc_secret *sas = clc_storage_cred_sas_token(s->cred);
        /* A SAS is a bearer credential: same rule as for tokens. */
        if (!clc_http_bearer_allowed(clc_buf_str(url)))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "storage: refusing to send a SAS over plain "
                            "http to a remote host");
        rc = clc_buf_append_byte(url, sep);
        if (rc == CLC_OK)
            rc = clc_buf_append(url, clc_secret_reveal(sas), clc_secret_len(sas));
    }
    if (rc == CLC_ERR_LIMIT)
        return clc_errf(ei, rc, "storage: request URL over %d bytes", MAX_URL);
    return rc;
}

/* "Name: " and a value into an empty buffer. */
static enum clc_err header_line(struct clc_buf *b, const char *name_colon, const char *value)
{
    enum clc_err rc = clc_buf_append_str(b, name_colon);
    return rc == CLC_OK ? clc_buf_append_str(b, value) : rc;
}

/* Fills ei from a non-2xx answer; returns the error to report. */
static enum clc_err map_error(const struct clc_http_resp *r, const char *method, const char *path,
                              struct clc_errinfo *ei)
{
    const char *code = clc_http_resp_header(r, "x-ms-error-code");
    const char *rid = clc_http_resp_header(r, "x-ms-request-id");
    struct clc_xml *x = NULL;
    const char *msg = NULL;
    char first[200] = "";
    enum clc_err e = clc_err_from_http(r->status);

    if (r->body.len > 0 &&
        clc_xml_parse(r->body.data, r->body.len, MAX_ERROR_NODES, &x, NULL) == CLC_OK) {
        const struct clc_xml_node *root = clc_xml_root(x);
        if (strcmp(root->name, "Error") == 0) {
            if (!code)
                code = clc_xml_child_text(x, root, "Code");
            msg = clc_xml_child_text(x, root, "Message");
        }
    }
    if (msg) {
        /* The first line; the rest is RequestId and Time. */
        size_t n = strcspn(msg, "\r\n");
        if (n >= sizeof first)
            n = sizeof first - 1;
        memcpy(first, msg, n);
        first[n] = '\0';
    }
    if (code && strcmp(code, "AuthenticationFailed") == 0)
        e = CLC_ERR_AUTH;
    else if (code &&
             (strcmp(code, "MessageTooLarge") == 0 || strcmp(code, "RequestBodyTooLarge") == 0))
        e = CLC_ERR_LIMIT;
    if (e == CLC_OK)
        e = CLC_ERR_HTTP;
    clc_errf(ei, e, "storage: %s %s: HTTP %ld %s%s%s", method, path, r->status,
             code ? code : "(no error code)", first[0] ? ": " : "", first);
    clc_errinfo_set_http(ei, r->status, code);
    if (ei && rid)
        snprintf(ei->request_id, sizeof ei->request_id, "%s", rid);
    clc_xml_free(x);
    return e;
}

enum clc_err clc_storage_send(struct clc_storage *s, const struct clc_storage_call *c,
                              struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_buf url, path, h_ver, h_date, h_rid, h_ct, h_auth;
    const char *sign_hdrs[72];
    const char *send_hdrs[72];
    size_t ns = 0, nh = 0;
    char date[CLC_TIME_STR_MAX], rid[37];
    struct clc_secret *auth = NULL, *token = NULL;
    struct clc_retry_policy once;
    enum clc_storage_auth_kind kind = clc_storage_cred_kind(s->cred);

    clc_buf_init(&url, MAX_URL);
    clc_buf_init(&path, MAX_URL);
    clc_buf_init(&h_ver, 128);
    clc_buf_init(&h_date, 128);
    clc_buf_init(&h_rid, 128);
    clc_buf_init(&h_ct, 256);
    clc_buf_init(&h_auth, 1024);
    clc_http_resp_cleanup(resp);
    clc_http_resp_init(resp);
    if (!c->method || !c->path || (*c->path && c->path[0] != '/'))
        return clc_errf(ei, CLC_ERR_INTERNAL, "storage: malformed call");
    rc = build_url(s, c, &url, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_buf_append_str(&path, s->base_path);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&path, c->path);
    if (rc == CLC_OK && path.len == 0)
        rc = clc_buf_append_byte(&path, '/');
    if (rc == CLC_OK)
        rc = clc_time_fmt_rfc1123(clc_clock_now(s->has_clock ? &s->clock : NULL), date);
    clc_uuid_pool_next(&s->rids, rid);
    if (rc == CLC_OK)
        rc = header_line(&h_ver, "x-ms-version: ", s->version);
    if (rc == CLC_OK)
        rc = header_line(&h_date, "x-ms-date: ", date);
    /* The HTTP layer sends this header; Shared Key must sign it too. */
    if (rc == CLC_OK)
        rc = header_line(&h_rid, "x-ms-client-request-id: ", rid);
    if (rc == CLC_OK && c->body && c->content_type)
        rc = header_line(&h_ct, "Content-Type: ", c->content_type);
    if (rc != CLC_OK)
        goto out;
    send_hdrs[nh++] = h_ver.data;
    send_hdrs[nh++] = h_date.data;
    for (size_t i = 0; c->headers && c->headers[i]; i++) {
        if (nh + 2 >= sizeof send_hdrs / sizeof send_hdrs[0]) {
            rc = clc_errf(ei, CLC_ERR_LIMIT, "storage: too many request headers");
            goto out;
        }
        send_hdrs[nh++] = c->headers[i];
    }
    memcpy(sign_hdrs, send_hdrs, nh * sizeof send_hdrs[0]);
    ns = nh;
    send_hdrs[nh] = NULL;
    sign_hdrs[ns++] = h_rid.data;
    if (h_ct.len > 0)
        sign_hdrs[ns++] = h_ct.data;
    sign_hdrs[ns] = NULL;

    if (kind == CLC_STORAGE_SHARED_KEY) {
        struct clc_storage_sign_input in = {
            .method = c->method,
            .path = path.data,
            .query = c->query,
            .nquery = c->nquery,
            .headers = sign_hdrs,
            .content_length = c->body ? c->body_len : 0,
        };
        rc = clc_storage_shared_key_auth(s->cred, &in, &auth, ei);
        if (rc != CLC_OK)
            goto out;
        /* A Shared Key signature is a per-request MAC, not a reusable
         * credential: it may travel over http to Azurite-style hosts. */
        rc = clc_buf_append_str(&h_auth, "Authorization: ");
        if (rc == CLC_OK)
            rc = clc_buf_append(&h_auth, clc_secret_reveal(auth), clc_secret_len(auth));
        if (rc != CLC_OK)
            goto out;
        send_hdrs[nh++] = h_auth.data;
        send_hdrs[nh] = NULL;
    } else if (kind == CLC_STORAGE_BEARER) {
        rc = clc_storage_cred_token(s->cred, 0, &token, ei);
        if (rc != CLC_OK)
            goto out;
    }

    struct clc_http_req req = {
        .method = c->method,
        .url = url.data,
        .headers = send_hdrs,
        .body = c->body,
        .body_len = c->body ? c->body_len : 0,
        .content_type = c->body ? c->content_type : NULL,
        .bearer = token,
        .idempotent = c->idempotent,
        .client_request_id = rid,
    };
    clc_retry_policy_none(&once);
    rc = clc_http_send(s->http, &req, c->idempotent ? &s->retry : &once, resp, ei);
    if (rc == CLC_OK && resp->status == 401 && kind == CLC_STORAGE_BEARER) {
        /* A token revoked or expired early: one fresh token, one more try;
         * a 401 means the request was not acted on, so this is safe. */
        clc_secret_free(token);
        token = NULL;
        rc = clc_storage_cred_token(s->cred, 1, &token, ei);
        req.bearer = token;
        if (rc == CLC_OK)
            rc = clc_http_send(s->http, &req, c->idempotent ? &s->retry : &once, resp, ei);
    }
    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc, "storage: %s %s", c->method, path.data);
        goto out;
    }
    if (resp->status < 200 || resp->status > 299)
        rc = map_error(resp, c->method, path.data, ei);
out:
    clc_secret_free(auth);
    clc_secret_free(token);
    clc_buf_cleanse(&url); /* may hold a SAS */
    clc_buf_cleanup(&path);
    clc_buf_cleanup(&h_ver);
    clc_buf_cleanup(&h_date);
    clc_buf_cleanup(&h_rid);
    clc_buf_cleanup(&h_ct);
    clc_buf_cleanse(&h_auth);
    return rc;
}
