/* One token request per auth method: the v2 token endpoint (client secret,
 * client certificate assertion, workload identity federated token), IMDS,
 * the App Service identity endpoint and Arc's HIMDS challenge. Parses the
 * answers and turns Entra's error bodies into errinfo. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include "azure/auth_int.h"
#include "core/buf.h"
#include "core/file.h"
#include "core/json.h"
#include "core/rand.h"
#include "crypto/jwt.h"

#define FORM_MAX (64 * 1024)
#define URL_MAX 8192
#define TOKEN_RESP_MAX (256 * 1024)
#define ASSERTION_LIFETIME_S 600
#define JWT_BEARER "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

/* ---- responses ---- */

/* Entra {"error","error_description","error_codes"}, IMDS {"error",
 * "error_description"}, App Service {"statusCode","message"}: whichever is
 * there goes into ei, on one line and shortened. */
static enum clc_err resp_error(const struct clc_http_resp *resp, const char *what,
                               struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    const char *code = NULL, *desc = NULL;
    char line[360];
    enum clc_err err;

    if (clc_json_parse(clc_buf_str(&resp->body), resp->body.len, TOKEN_RESP_MAX, &doc, NULL) ==
            CLC_OK &&
        cJSON_IsObject(doc)) {
        clc_json_str_opt(doc, "error", NULL, &code, NULL);
        clc_json_str_opt(doc, "error_description", NULL, &desc, NULL);
        if (!desc)
            clc_json_str_opt(doc, "message", NULL, &desc, NULL);
    }
    snprintf(line, sizeof line, "%s", desc ? desc : "");
    for (char *p = line; *p; p++)
        if ((unsigned char)*p < ' ')
            *p = ' ';
    switch (resp->status) {
    case 400:
    case 401:
        err = CLC_ERR_AUTH;
        break;
    default:
        err = clc_err_from_http(resp->status);
        if (err == CLC_OK)
            err = CLC_ERR_HTTP;
        break;
    }
    clc_errf(ei, err, "%s: HTTP %ld%s%s%s%s", what, resp->status, code ? " " : "", code ? code : "",
             line[0] ? ": " : "", line);
    clc_errinfo_set_http(ei, resp->status, code);
    const char *rid = clc_http_resp_header(resp, "x-ms-request-id");
    if (ei && rid)
        snprintf(ei->request_id, sizeof ei->request_id, "%s", rid);
    cJSON_Delete(doc);
    return err;
}

/* access_token plus expires_in (number or string) or expires_on (epoch
 * seconds, number or string). The expiry is taken relative to our clock
 * when expires_in is there, so a skewed host clock does not matter. */
static enum clc_err parse_token(const struct clc_auth *a, const struct clc_http_resp *resp,
                                const char *what, struct clc_secret **token, int64_t *expires_on,
                                struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    const char *tok = NULL;
    int64_t in = 0, on = 0;
    enum clc_err err =
        clc_json_parse(clc_buf_str(&resp->body), resp->body.len, TOKEN_RESP_MAX, &doc, ei);
    if (err)
        goto bad;
    if ((err = clc_json_str(doc, "access_token", &tok, ei)))
        goto bad;
    if (!*tok) {
        err = clc_errf(ei, CLC_ERR_PARSE, "field 'access_token': empty");
        goto bad;
    }
    if (cJSON_GetObjectItemCaseSensitive(doc, "expires_in")) {
        if ((err = clc_json_int_lenient(doc, "expires_in", &in, ei)))
            goto bad;
        if (in <= 0 || in > 10 * 365 * 86400) {
            err = clc_errf(ei, CLC_ERR_PARSE, "field 'expires_in': %lld is out of range",
                           (long long)in);
            goto bad;
        }
        *expires_on = clc_auth_now(a) + in;
    } else {
        if ((err = clc_json_int_lenient(doc, "expires_on", &on, ei)))
            goto bad;
        *expires_on = on;
    }
    if (clc_secret_new(tok, strlen(tok), token)) {
        err = clc_errf(ei, CLC_ERR_NOMEM, "token copy");
        goto out;
    }
    goto out;
bad:
    clc_err_wrap(ei, CLC_ERR_PARSE, "%s: token response", what);
    err = err == CLC_ERR_NOMEM ? err : CLC_ERR_PARSE;
out:
    if (doc) {
        /* The token text is in the tree: wipe it before freeing. */
        cJSON *t = cJSON_GetObjectItemCaseSensitive(doc, "access_token");
        if (cJSON_IsString(t) && t->valuestring)
            OPENSSL_cleanse(t->valuestring, strlen(t->valuestring));
        cJSON_Delete(doc);
    }
    if (resp->body.data)
        OPENSSL_cleanse(resp->body.data, resp->body.len);
    return err;
}

/* ---- sending ---- */

static int retry_mi_status(long s)
{
    /* IMDS answers 404 while updating and 410 for up to 70 s after boot. */
    return s == 404 || s == 410 || s == 429 || (s >= 500 && s <= 599);
}

/* Sends req, repeating under a->retry on transport errors and on the
 * statuses retry_status says; the waits follow Retry-After when given. */
static enum clc_err send_retry(struct clc_auth *a, const struct clc_http_req *req,
                               int (*retry_status)(long), struct clc_http_resp *resp,
                               struct clc_errinfo *ei)
{
    const struct clc_retry_policy *p = &a->retry;
    int64_t start = clc_mono_ms();
    enum clc_err err = CLC_OK;
    for (int attempt = 1;; attempt++) {
        err = clc_http_do(a->http, req, resp, ei);
        int again = err ? clc_retry_err_retryable(err) : retry_status(resp->status);
        if (!again || attempt >= p->max_attempts)
            break;
        int64_t delay =
            clc_retry_delay_ms(p, attempt, err ? NULL : clc_http_resp_header(resp, "Retry-After"),
                               NULL, clc_auth_now(a));
        if (clc_mono_ms() - start + delay > p->max_total_ms)
            break;
        if (p->sleep_ms)
            p->sleep_ms(delay, p->ctx);
        else
            clc_sleep_ms(delay);
    }
    return err;
}

static int retry_v2_status(long s)
{
    return clc_retry_status_retryable(s);
}

/* ---- v2 token endpoint ---- */

static enum clc_err make_assertion(struct clc_auth *a, char **out, struct clc_errinfo *ei)
{
    char jti[37];
    int64_t now = clc_auth_now(a);
    enum clc_err err;
    clc_rand_uuid(jti);
    cJSON *h = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    if (!h || !c || clc_json_add_str(h, "x5t", a->x5t) ||
        clc_json_add_str(c, "aud", a->token_url) || clc_json_add_str(c, "iss", a->client_id) ||
        clc_json_add_str(c, "sub", a->client_id) || clc_json_add_str(c, "jti", jti) ||
        clc_json_add_int(c, "nbf", now) || clc_json_add_int(c, "iat", now) ||
        clc_json_add_int(c, "exp", now + ASSERTION_LIFETIME_S))
        err = clc_errf(ei, CLC_ERR_NOMEM, "client assertion");
    else
        err = clc_jwt_sign(a->signer, h, c, out, ei);
    cJSON_Delete(h);
    cJSON_Delete(c);
    return err;
}

/* The projected token is rotated by the platform: read it every time. */
static enum clc_err read_federated(struct clc_auth *a, char **out, struct clc_errinfo *ei)
{
    size_t len = 0;
    enum clc_err err =
        clc_file_read(a->federated_token_file, CLC_AUTH_FED_TOKEN_MAX, out, &len, ei);
    if (err)
        return clc_err_wrap(ei, err, "federated token file");
    while (len > 0 &&
           ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r' || (*out)[len - 1] == ' '))
        (*out)[--len] = '\0';
    if (len == 0) {
        free(*out);
        *out = NULL;
        return clc_errf(ei, CLC_ERR_CONFIG, "federated token file %s is empty",
                        a->federated_token_file);
    }
    return CLC_OK;
}

static enum clc_err add_field(struct clc_buf *b, const char *name, const char *value)
{
    enum clc_err err = CLC_OK;
    if (b->len)
        err = clc_buf_append_byte(b, '&');
    if (!err)
        err = clc_buf_append_str(b, name);
    if (!err)
        err = clc_buf_append_byte(b, '=');
    if (!err)
        err = clc_http_urlencode(b, value);
    return err;
}

static enum clc_err fetch_v2(struct clc_auth *a, const char *scope, struct clc_secret **token,
                             int64_t *expires_on, struct clc_errinfo *ei)
{
    enum clc_err err;
    struct clc_buf form;
    struct clc_http_resp resp;
    char *assertion = NULL;
    clc_buf_init(&form, FORM_MAX);
    clc_http_resp_init(&resp);

    err = add_field(&form, "client_id", a->client_id);
    if (!err)
        err = add_field(&form, "scope", scope);
    if (!err)
        err = add_field(&form, "grant_type", "client_credentials");
    if (!err && a->method == CLC_AUTH_CLIENT_SECRET) {
        err = add_field(&form, "client_secret", clc_secret_reveal(a->client_secret));
    } else if (!err) {
        err = a->method == CLC_AUTH_CLIENT_CERTIFICATE ? make_assertion(a, &assertion, ei)
                                                       : read_federated(a, &assertion, ei);
        if (err)
            goto out;
        err = add_field(&form, "client_assertion_type", JWT_BEARER);
        if (!err)
            err = add_field(&form, "client_assertion", assertion);
    }
    if (err) {
        err = clc_errf(ei, err, "token request body over %d bytes", FORM_MAX);
        goto out;
    }

    struct clc_http_req req = {
        .method = "POST",
        .url = a->token_url,
        .body = form.data,
        .body_len = form.len,
        .content_type = "application/x-www-form-urlencoded",
        .idempotent = 1,
    };
    err = send_retry(a, &req, retry_v2_status, &resp, ei);
    if (err) {
        clc_err_wrap(ei, err, "token request to %s", a->token_url);
        goto out;
    }
    if (resp.status != 200)
        err = resp_error(&resp, "token request", ei);
    else
        err = parse_token(a, &resp, "token request", token, expires_on, ei);
out:
    if (assertion) {
        OPENSSL_cleanse(assertion, strlen(assertion));
        free(assertion);
    }
    clc_buf_cleanse(&form);
    clc_http_resp_cleanup(&resp);
    return err;
}

/* ---- managed identity endpoints ---- */

/* endpoint?api-version=..&resource=..[&client_id=..]; resource is the scope
 * without "/.default". */
static enum clc_err mi_url(const char *endpoint, const char *api_version, const char *scope,
                           const char *client_id, struct clc_buf *u)
{
    static const char dflt[] = "/.default";
    size_t n = strlen(scope), dl = sizeof dflt - 1;
    char *resource = strdup(scope);
    enum clc_err err;
    if (!resource)
        return CLC_ERR_NOMEM;
    if (n > dl && strcmp(scope + n - dl, dflt) == 0)
        resource[n - dl] = '\0';
    err = clc_buf_append_str(u, endpoint);
    if (!err)
        err = clc_buf_appendf(u, "%sapi-version=%s&resource=", strchr(endpoint, '?') ? "&" : "?",
                              api_version);
    if (!err)
        err = clc_http_urlencode(u, resource);
    if (!err && client_id && *client_id) {
        err = clc_buf_append_str(u, "&client_id=");
        if (!err)
            err = clc_http_urlencode(u, client_id);
    }
    free(resource);
    return err;
}

static enum clc_err fetch_imds(struct clc_auth *a, const char *scope, struct clc_secret **token,
                               int64_t *expires_on, struct clc_errinfo *ei)
{
    struct clc_buf u;
    struct clc_http_resp resp;
    enum clc_err err;
    static const char *const hdrs[] = {"Metadata: true", NULL};
    clc_buf_init(&u, URL_MAX);
    clc_http_resp_init(&resp);
    err = mi_url(a->imds_endpoint, "2018-02-01", scope, a->client_id, &u);
    if (err) {
        err = clc_errf(ei, err, "IMDS URL over %d bytes", URL_MAX);
        goto out;
    }
    struct clc_http_req req = {
        .method = "GET",
        .url = clc_buf_str(&u),
        .headers = hdrs,
        .idempotent = 1,
        .no_proxy = 1,
    };
    err = send_retry(a, &req, retry_mi_status, &resp, ei);
    if (err)
        clc_err_wrap(ei, err, "IMDS token request");
    else if (resp.status != 200)
        err = resp_error(&resp, "IMDS token request", ei);
    else
        err = parse_token(a, &resp, "IMDS", token, expires_on, ei);
out:
    clc_buf_cleanup(&u);
    clc_http_resp_cleanup(&resp);
    return err;
}

static enum clc_err fetch_app_service(struct clc_auth *a, const char *scope,
                                      struct clc_secret **token, int64_t *expires_on,
                                      struct clc_errinfo *ei)
{
    struct clc_buf u, h;
    struct clc_http_resp resp;
    enum clc_err err;
    clc_buf_init(&u, URL_MAX);
    clc_buf_init(&h, CLC_SECRET_MAX + 64);
    clc_http_resp_init(&resp);
    err = mi_url(a->identity_endpoint, "2019-08-01", scope, a->client_id, &u);
    if (!err)
        err = clc_buf_appendf(&h, "X-IDENTITY-HEADER: %s", clc_secret_reveal(a->identity_header));
    if (err) {
        err = clc_errf(ei, err, "identity endpoint request too large");
        goto out;
    }
    const char *hdrs[] = {h.data, NULL};
    struct clc_http_req req = {
        .method = "GET",
        .url = clc_buf_str(&u),
        .headers = hdrs,
        .idempotent = 1,
        .no_proxy = 1,
    };
    err = send_retry(a, &req, retry_mi_status, &resp, ei);
    if (err)
        clc_err_wrap(ei, err, "identity endpoint token request");
    else if (resp.status != 200)
        err = resp_error(&resp, "identity endpoint token request", ei);
    else
        err = parse_token(a, &resp, "identity endpoint", token, expires_on, ei);
out:
    clc_buf_cleanup(&u);
    clc_buf_cleanse(&h);
    clc_http_resp_cleanup(&resp);
    return err;
}

/* The realm of "Basic realm=<path>" must name a regular .key file of at most
 * CLC_AUTH_ARC_KEY_MAX bytes directly in arc_key_dir (after resolving links):
 * anything else could make us read and send an arbitrary file. */
static enum clc_err arc_read_key(struct clc_auth *a, const char *challenge, char **key,
                                 size_t *keylen, struct clc_errinfo *ei)
{
    enum clc_err err;
    char *path = NULL, *real = NULL, *dir = NULL;
    struct stat st;
    *key = NULL;

    const char *r = challenge ? strchr(challenge, '=') : NULL;
    if (!challenge || strncasecmp(challenge, "Basic ", 6) != 0 || !r || !r[1]) {
        err = clc_errf(ei, CLC_ERR_PARSE, "Arc: 401 without a 'Basic realm=<path>' challenge");
        goto out;
    }
    r++;
    size_t n = strlen(r);
    if (n >= 2 && r[0] == '"' && r[n - 1] == '"') {
        r++;
        n -= 2;
    }
    if (n == 0 || n >= PATH_MAX) {
        err = clc_errf(ei, CLC_ERR_PARSE, "Arc: realm path empty or too long");
        goto out;
    }
    path = strndup(r, n);
    if (!path) {
        err = clc_errf(ei, CLC_ERR_NOMEM, "Arc realm");
        goto out;
    }
    dir = realpath(a->arc_key_dir, NULL);
    real = realpath(path, NULL);
    if (!dir) {
        err = clc_errf(ei, CLC_ERR_CONFIG, "Arc: key directory %s: %s", a->arc_key_dir,
                       strerror(errno));
        goto out;
    }
    char *slash = real ? strrchr(real, '/') : NULL;
    if (!slash || (size_t)(slash - real) != strlen(dir) || strncmp(real, dir, strlen(dir)) != 0) {
        err = clc_errf(ei, CLC_ERR_AUTH, "Arc: realm %.200s is not a file in %s", path, dir);
        goto out;
    }
    size_t rl = strlen(real);
    if (rl < 5 || strcmp(real + rl - 4, ".key") != 0) {
        err = clc_errf(ei, CLC_ERR_AUTH, "Arc: realm %.200s is not a .key file", path);
        goto out;
    }
    if (stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
        err = clc_errf(ei, CLC_ERR_AUTH, "Arc: realm %.200s is not a regular file", path);
        goto out;
    }
    if (st.st_size > CLC_AUTH_ARC_KEY_MAX) {
        err = clc_errf(ei, CLC_ERR_AUTH, "Arc: key file %.200s is over %d bytes", path,
                       CLC_AUTH_ARC_KEY_MAX);
        goto out;
    }
    err = clc_file_read(real, CLC_AUTH_ARC_KEY_MAX, key, keylen, ei);
    if (err) {
        clc_err_wrap(ei, err, "Arc key file");
        goto out;
    }
    /* The content goes into a header line: no line breaks or controls. */
    for (size_t i = 0; i < *keylen; i++) {
        unsigned char c = (unsigned char)(*key)[i];
        if (c < 0x20 || c == 0x7f) {
            OPENSSL_cleanse(*key, *keylen);
            free(*key);
            *key = NULL;
            err = clc_errf(ei, CLC_ERR_AUTH, "Arc: key file %.200s holds control characters", path);
            goto out;
        }
    }
out:
    free(path);
    free(real);
    free(dir);
    return err;
}

static enum clc_err fetch_arc(struct clc_auth *a, const char *scope, struct clc_secret **token,
                              int64_t *expires_on, struct clc_errinfo *ei)
{
    struct clc_buf u;
    struct clc_http_resp resp;
    struct clc_secret *basic = NULL;
    char *key = NULL;
    size_t keylen = 0;
    enum clc_err err;
    static const char *const hdrs[] = {"Metadata: true", NULL};
    clc_buf_init(&u, URL_MAX);
    clc_http_resp_init(&resp);
    err = mi_url(a->identity_endpoint, "2020-06-01", scope, a->client_id, &u);
    if (err) {
        err = clc_errf(ei, err, "Arc URL over %d bytes", URL_MAX);
        goto out;
    }
    struct clc_http_req req = {
        .method = "GET",
        .url = clc_buf_str(&u),
        .headers = hdrs,
        .idempotent = 1,
        .no_proxy = 1,
    };
    err = send_retry(a, &req, retry_mi_status, &resp, ei);
    if (err) {
        clc_err_wrap(ei, err, "Arc token request");
        goto out;
    }
    if (resp.status != 401) {
        err = resp.status == 200
                  ? clc_errf(ei, CLC_ERR_PARSE, "Arc: answered 200 without the challenge")
                  : resp_error(&resp, "Arc token request", ei);
        goto out;
    }
    err = arc_read_key(a, clc_http_resp_header(&resp, "WWW-Authenticate"), &key, &keylen, ei);
    if (err)
        goto out;
    char *val = malloc(keylen + 7);
    if (!val) {
        err = clc_errf(ei, CLC_ERR_NOMEM, "Arc key");
        goto out;
    }
    memcpy(val, "Basic ", 6);
    memcpy(val + 6, key, keylen + 1);
    err = clc_secret_new(val, keylen + 6, &basic);
    OPENSSL_cleanse(val, keylen + 6);
    free(val);
    if (err) {
        err = clc_errf(ei, err, "Arc key");
        goto out;
    }
    req.authorization = basic;
    /* The key is single use: no retry of this request. */
    err = clc_http_do(a->http, &req, &resp, ei);
    if (err)
        clc_err_wrap(ei, err, "Arc token request");
    else if (resp.status != 200)
        err = resp_error(&resp, "Arc token request", ei);
    else
        err = parse_token(a, &resp, "Arc", token, expires_on, ei);
out:
    if (key) {
        OPENSSL_cleanse(key, keylen);
        free(key);
    }
    clc_secret_free(basic);
    clc_buf_cleanup(&u);
    clc_http_resp_cleanup(&resp);
    return err;
}

enum clc_err clc_auth_fetch(struct clc_auth *a, const char *scope, struct clc_secret **token,
                            int64_t *expires_on, struct clc_errinfo *ei)
{
    *token = NULL;
    *expires_on = 0;
    switch (a->method) {
    case CLC_AUTH_CLIENT_SECRET:
    case CLC_AUTH_CLIENT_CERTIFICATE:
    case CLC_AUTH_WORKLOAD_IDENTITY:
        return fetch_v2(a, scope, token, expires_on, ei);
    case CLC_AUTH_MANAGED_IDENTITY:
        return fetch_imds(a, scope, token, expires_on, ei);
    case CLC_AUTH_APP_SERVICE:
        return fetch_app_service(a, scope, token, expires_on, ei);
    case CLC_AUTH_ARC:
        return fetch_arc(a, scope, token, expires_on, ei);
    default:
        return clc_errf(ei, CLC_ERR_INTERNAL, "auth: unknown method");
    }
}
