/* The one request path of the Key Vault client: the bearer challenge (probe
 * without token and body, authority and resource from WWW-Authenticate,
 * resource checked against the vault host), the token for that scope, one
 * more try after a 401, retries (429 always; 5xx and transport errors only
 * for idempotent calls), and Key Vault's error body turned into errinfo. */
#include "azure/keyvault_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "core/log.h"

#define KV_SERVICE_MSG_MAX 300

static const char *const json_headers[] = {"Accept: application/json", NULL};

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* Value of one challenge parameter ("authorization", ...), unquoted; 0 when
 * absent or the header is not a Bearer challenge. Parameters are split on
 * ',' and then on the first '=', as the Azure SDKs do. */
static int challenge_param(const char *hdr, const char *key, char *out, size_t n)
{
    char buf[2048];
    char *p, *item, *save = NULL;

    while (*hdr == ' ')
        hdr++;
    if (strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\0') ||
        strlen(hdr) >= sizeof buf)
        return 0;
    snprintf(buf, sizeof buf, "%s", hdr + 6);
    for (p = buf; (item = strtok_r(p, ",", &save)) != NULL; p = NULL) {
        char *eq = strchr(item, '=');
        if (!eq)
            continue;
        *eq = '\0';
        char *k = trim(item), *v = trim(eq + 1);
        size_t vl = strlen(v);
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        if (strcasecmp(k, key) == 0 && *v && strlen(v) < n) {
            memcpy(out, v, strlen(v) + 1);
            return 1;
        }
    }
    return 0;
}

/* Host part of an absolute URL, lower-case, without port; "" if none. */
static void host_of(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    size_t i = 0;
    out[0] = '\0';
    if (!p)
        return;
    for (p += 3; *p && *p != '/' && *p != ':' && *p != '?' && i + 1 < n; p++)
        out[i++] = (char)tolower((unsigned char)*p);
    out[i] = '\0';
}

/* Reads the challenge of a 401 into kv->scope / kv->authority. */
static enum clc_err take_challenge(struct clc_kv *kv, const struct clc_http_resp *resp,
                                   struct clc_errinfo *ei)
{
    const char *hdr = clc_http_resp_header(resp, "WWW-Authenticate");
    char authority[KV_SCOPE_MAX] = "", resource[KV_SCOPE_MAX] = "", scope[KV_SCOPE_MAX];
    char rhost[256];

    if (!hdr)
        return clc_errf(ei, CLC_ERR_AUTH,
                        "key vault '%s': 401 without a WWW-Authenticate challenge", kv->name);
    if (!challenge_param(hdr, "authorization", authority, sizeof authority))
        challenge_param(hdr, "authorization_uri", authority, sizeof authority);
    if (challenge_param(hdr, "scope", scope, sizeof scope)) {
        /* already a scope */
    } else if (challenge_param(hdr, "resource", resource, sizeof resource)) {
        size_t rl = strlen(resource);
        while (rl > 0 && resource[rl - 1] == '/')
            resource[--rl] = '\0';
        if (snprintf(scope, sizeof scope, "%s/.default", resource) >= (int)sizeof scope)
            return clc_errf(ei, CLC_ERR_AUTH, "key vault '%s': challenge resource too long",
                            kv->name);
    } else {
        return clc_errf(ei, CLC_ERR_AUTH,
                        "key vault '%s': the challenge names no resource or scope", kv->name);
    }
    if (!authority[0])
        return clc_errf(ei, CLC_ERR_AUTH, "key vault '%s': the challenge names no authority",
                        kv->name);
    host_of(scope, rhost, sizeof rhost);
    if (!rhost[0])
        return clc_errf(ei, CLC_ERR_AUTH, "key vault '%s': challenge scope '%.100s' has no host",
                        kv->name, scope);
    if (kv->verify_resource) {
        size_t hl = strlen(kv->host), rl = strlen(rhost);
        /* The vault host must be a subdomain of the resource's host, so a
         * vault cannot ask for tokens meant for another service. */
        if (!(hl > rl + 1 && kv->host[hl - rl - 1] == '.' &&
              strcmp(kv->host + hl - rl, rhost) == 0))
            return clc_errf(ei, CLC_ERR_AUTH,
                            "key vault '%s': challenge resource '%.100s' is not a domain suffix "
                            "of the vault host %s (set keyvault.verify_challenge_resource=false "
                            "only for test vaults)",
                            kv->name, scope, kv->host);
    }
    if (strcmp(kv->scope, scope) != 0)
        clc_log(CLC_LOG_DEBUG, "keyvault.challenge", CLC_LS("vault", kv->name),
                CLC_LS("authority", authority), CLC_LS("scope", scope));
    snprintf(kv->scope, sizeof kv->scope, "%s", scope);
    snprintf(kv->authority, sizeof kv->authority, "%s", authority);
    return CLC_OK;
}

/* Copies text for a message: printable ASCII only, bounded. */
static void clean_text(char *out, size_t n, const char *in)
{
    size_t i = 0;
    for (; in && *in && i + 1 < n; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
}

/* Turns a non-success answer into an error naming vault, operation, object,
 * HTTP status, the service's code and message, and the request id. */
static enum clc_err answer_error(const struct clc_kv *kv, const struct kv_call *c,
                                 const struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err e = clc_err_from_http(resp->status);
    cJSON *j = NULL;
    char code[96] = "", inner[96] = "", msg[KV_SERVICE_MSG_MAX] = "";
    const char *rid = clc_http_resp_header(resp, "x-ms-request-id");

    /* A 2xx other than the one this call expects; for a secret its body
     * may hold the value, so it is not read. */
    int body_ok = e != CLC_OK || !c->secret_response;
    if (e == CLC_OK)
        e = CLC_ERR_HTTP;
    if (body_ok && resp->body.len > 0 &&
        clc_json_parse(resp->body.data, resp->body.len, 64 * 1024, &j, NULL) == CLC_OK) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(err, "code");
        if (cJSON_IsString(v))
            clean_text(code, sizeof code, v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(err, "message");
        if (cJSON_IsString(v))
            clean_text(msg, sizeof msg, v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(err, "innererror"),
                                             "code");
        if (cJSON_IsString(v))
            clean_text(inner, sizeof inner, v->valuestring);
    }
    cJSON_Delete(j);
    clc_errf(ei, e, "key vault '%s': %s%s%s%s: HTTP %ld%s%s%s%s%s%s%s", kv->name, c->op,
             c->object ? " '" : "", c->object ? c->object : "", c->object ? "'" : "", resp->status,
             code[0] ? " " : "", code, inner[0] ? " (" : "", inner, inner[0] ? ")" : "",
             msg[0] ? ": " : "", msg);
    clc_errinfo_set_http(ei, resp->status, code[0] ? code : NULL);
    if (ei && rid)
        snprintf(ei->request_id, sizeof ei->request_id, "%s", rid);
    return e;
}

/* One send under the retry policy. Idempotent calls go through
 * clc_http_send's full policy; others are repeated only on 429, which means
 * the service did not act on the request. */
static enum clc_err send_retrying(struct clc_kv *kv, const struct clc_http_req *req,
                                  struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc;
    int64_t start = clc_mono_ms();

    for (int attempt = 1;; attempt++) {
        rc = clc_http_send(kv->http, req, &kv->retry, resp, ei);
        if (rc != CLC_OK || req->idempotent || resp->status != 429 ||
            attempt >= kv->retry.max_attempts)
            return rc;
        const char *ms = clc_http_resp_header(resp, "retry-after-ms");
        int64_t delay = clc_retry_delay_ms(
            &kv->retry, attempt, clc_http_resp_header(resp, "Retry-After"),
            ms ? ms : clc_http_resp_header(resp, "x-ms-retry-after-ms"), clc_clock_now(NULL));
        if (kv->retry.max_total_ms > 0 && clc_mono_ms() - start + delay > kv->retry.max_total_ms)
            return rc;
        clc_log(CLC_LOG_INFO, "keyvault.throttled", CLC_LS("vault", kv->name),
                CLC_LS("method", req->method), CLC_LI("attempt", attempt),
                CLC_LI("delay_ms", delay));
        if (kv->retry.sleep_ms)
            kv->retry.sleep_ms(delay, kv->retry.ctx);
        else
            clc_sleep_ms(delay);
    }
}

/* The unauthenticated probe: no token, no body (Content-Length: 0). The
 * answer is the challenge; a vault that answers anything else to a bodiless
 * request has answered that request. *done says resp is final. */
static enum clc_err probe(struct clc_kv *kv, const struct kv_call *c, struct clc_http_resp *resp,
                          int *done, struct clc_errinfo *ei)
{
    struct clc_http_req req = {
        .method = c->method,
        .url = c->url,
        .headers = json_headers,
        .idempotent = 1, /* nothing happens without a token */
    };
    enum clc_err rc = send_retrying(kv, &req, resp, ei);

    *done = 0;
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "key vault '%s': %s", kv->name, c->op);
    if (resp->status == 401)
        return take_challenge(kv, resp, ei);
    if (!c->body) {
        *done = 1;
        return CLC_OK;
    }
    return clc_errf(ei, CLC_ERR_AUTH,
                    "key vault '%s': %s: expected a 401 challenge to an unauthenticated request, "
                    "got HTTP %ld",
                    kv->name, c->op, resp->status);
}

static enum clc_err send_call(struct clc_kv *kv, const struct kv_call *c,
                              struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_secret *token = NULL;
    int done = 0;

    if (!kv->scope[0]) {
        rc = probe(kv, c, resp, &done, ei);
        if (rc != CLC_OK || done)
            return rc;
    }
    /* A token, then at most one fresh token after a 401 (revoked, expired
     * early, or a changed challenge). */
    for (int round = 0; round < 2; round++) {
        struct clc_http_req req = {
            .method = c->method,
            .url = c->url,
            .headers = json_headers,
            .body = c->body,
            .body_len = c->body_len,
            .content_type = c->body ? "application/json" : NULL,
            .idempotent = c->idempotent,
        };
        clc_secret_free(token);
        token = NULL;
        rc = clc_auth_token(kv->auth, kv->scope, &token, NULL, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': %s: token for %s", kv->name, c->op, kv->scope);
            goto out;
        }
        req.bearer = token;
        rc = send_retrying(kv, &req, resp, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': %s%s%s%s", kv->name, c->op, c->object ? " '" : "",
                         c->object ? c->object : "", c->object ? "'" : "");
            goto out;
        }
        if (resp->status != 401)
            goto out;
        clc_auth_invalidate(kv->auth, kv->scope);
        /* A new challenge may name another scope; without one, the same
         * scope is tried with a fresh token. */
        if (round == 0 && clc_http_resp_header(resp, "WWW-Authenticate") &&
            (rc = take_challenge(kv, resp, ei)) != CLC_OK)
            goto out;
    }
out:
    clc_secret_free(token);
    return rc;
}

enum clc_err clc_kvi_call(struct clc_kv *kv, const struct kv_call *c, cJSON **json,
                          struct clc_errinfo *ei)
{
    enum clc_err rc;
    struct clc_http_resp resp;

    if (json)
        *json = NULL;
    clc_http_resp_init(&resp);
    rc = send_call(kv, c, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    int ok = c->expect ? resp.status == c->expect : resp.status >= 200 && resp.status < 300;
    if (!ok) {
        rc = answer_error(kv, c, &resp, ei);
        goto out;
    }
    if (json && resp.body.len > 0) {
        rc = clc_json_parse(resp.body.data, resp.body.len, kv->max_resp, json, ei);
        if (rc != CLC_OK)
            clc_err_wrap(ei, rc, "key vault '%s': %s%s%s%s: response", kv->name, c->op,
                         c->object ? " '" : "", c->object ? c->object : "", c->object ? "'" : "");
    }
out:
    if (c->secret_response)
        clc_buf_cleanse(&resp.body);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_kvi_call_json(struct clc_kv *kv, struct kv_call *c, const cJSON *body,
                               cJSON **json, struct clc_errinfo *ei)
{
    char *text = clc_json_print(body);
    if (!text)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    c->body = text;
    c->body_len = strlen(text);
    enum clc_err rc = clc_kvi_call(kv, c, json, ei);
    /* Import bodies carry key material and its password. */
    OPENSSL_cleanse(text, c->body_len);
    free(text);
    c->body = NULL;
    return rc;
}
