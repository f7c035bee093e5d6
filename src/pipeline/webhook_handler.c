/* The webhook's request handling without a server: routing, the shared
 * secret (constant time), body and media-type limits, the Event Grid and
 * CloudEvents handshakes, event parsing, waking the worker, /healthz and
 * /metrics. The civetweb glue is in webhook.c. */
#include <ctype.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "pipeline/webhook.h"

#define RESP_BODY_MAX ((size_t)256 * 1024)
#define SECRET_ARG_MAX 1024
#define BATCH_MAX 5000 /* Event Grid's maxEventsPerBatch upper bound */
#define VALIDATION_CODE_MAX 128
#define VALIDATION_TYPE "Microsoft.EventGrid.SubscriptionValidationEvent"

struct clc_webhook_core {
    struct clc_secret *secret;
    size_t max_body;
    struct clc_event_filter filter;
    struct clc_webhook_hooks hooks;
    int64_t started_ms;
    _Atomic uint64_t counts[CLC_WH__COUNT];
};

static const char *const result_names[CLC_WH__COUNT] = {
    "accepted",  "ignored",   "validation",     "abuse_check", "unauthorized",
    "forbidden", "too_large", "bad_media_type", "malformed",   "bad_method",
};

const char *clc_webhook_result_name(enum clc_webhook_result r)
{
    return (unsigned)r < CLC_WH__COUNT ? result_names[r] : "unknown";
}

enum clc_err clc_webhook_core_new(const struct clc_secret *secret, size_t max_body_bytes,
                                  const struct clc_event_filter *filter,
                                  const struct clc_webhook_hooks *h, struct clc_webhook_core **out,
                                  struct clc_errinfo *ei)
{
    struct clc_webhook_core *c;

    *out = NULL;
    if (secret == NULL || clc_secret_len(secret) == 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "the webhook needs a shared secret (webhook.secret_file or "
                        "webhook.secret_env)");
    if (clc_secret_len(secret) < 16)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "the webhook's shared secret is shorter than 16 characters; use a long "
                        "random value (e.g. openssl rand -hex 32)");
    if (h == NULL || h->wake == NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "the webhook needs a wake hook");
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (clc_secret_dup(secret, &c->secret) != CLC_OK) {
        free(c);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    c->max_body = max_body_bytes ? max_body_bytes : CLC_WEBHOOK_DEFAULT_MAX_BODY;
    if (filter != NULL)
        c->filter = *filter;
    c->hooks = *h;
    c->started_ms = clc_mono_ms();
    for (size_t i = 0; i < CLC_WH__COUNT; i++)
        atomic_init(&c->counts[i], 0);
    *out = c;
    return CLC_OK;
}

void clc_webhook_core_free(struct clc_webhook_core *c)
{
    if (c == NULL)
        return;
    clc_secret_free(c->secret);
    free(c);
}

size_t clc_webhook_core_max_body(const struct clc_webhook_core *c)
{
    return c->max_body;
}

void clc_webhook_counts(const struct clc_webhook_core *c, uint64_t out[CLC_WH__COUNT])
{
    for (size_t i = 0; i < CLC_WH__COUNT; i++)
        out[i] = atomic_load(&((struct clc_webhook_core *)c)->counts[i]);
}

void clc_webhook_resp_cleanup(struct clc_webhook_resp *resp)
{
    clc_buf_cleanup(&resp->body);
}

/* ---- small helpers ---- */

static const char *req_header(const struct clc_webhook_req *r, const char *name)
{
    for (size_t i = 0; i < r->nheaders; i++)
        if (r->headers[i].name != NULL && strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

static void add_header(struct clc_webhook_resp *resp, const char *name, const char *value)
{
    if (resp->nheaders < CLC_WEBHOOK_RESP_HEADERS)
        snprintf(resp->headers[resp->nheaders++], sizeof resp->headers[0], "%s: %s", name, value);
}

static void count(struct clc_webhook_core *c, enum clc_webhook_result r)
{
    atomic_fetch_add(&c->counts[r], 1);
}

/* Azure's error shape; the message never quotes request data that could
 * be a secret (only our own words, parser reasons and event ids). */
static void reply_error(struct clc_webhook_resp *resp, int status, const char *code,
                        const char *msg)
{
    cJSON *doc = cJSON_CreateObject(), *err = doc ? cJSON_AddObjectToObject(doc, "error") : NULL;
    char *text = NULL;

    resp->status = status;
    snprintf(resp->reason, sizeof resp->reason, "%s", msg);
    clc_buf_reset(&resp->body);
    if (err != NULL && clc_json_add_str(err, "code", code) == CLC_OK &&
        clc_json_add_str(err, "message", msg) == CLC_OK)
        text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (text == NULL || clc_buf_append_str(&resp->body, text) != CLC_OK) {
        resp->status = 500;
        resp->content_type = "text/plain; charset=utf-8";
        clc_buf_reset(&resp->body);
        clc_buf_append_str(&resp->body, "out of memory\n");
    } else {
        resp->content_type = "application/json; charset=utf-8";
        clc_buf_append_byte(&resp->body, '\n');
    }
    free(text);
}

static void reply_json(struct clc_webhook_resp *resp, int status, cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;

    if (text == NULL || clc_buf_append_str(&resp->body, text) != CLC_OK ||
        clc_buf_append_byte(&resp->body, '\n') != CLC_OK) {
        reply_error(resp, 500, "InternalError", "out of memory");
    } else {
        resp->status = status;
        resp->content_type = "application/json; charset=utf-8";
    }
    free(text);
    cJSON_Delete(doc);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch = (char)tolower((unsigned char)ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decodes (and '+' → space, as forms encode) into out; 0 when the
 * encoding is broken or the value does not fit. */
static int url_decode(const char *s, size_t n, char *out, size_t outsz, size_t *outlen)
{
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return 0;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return 0;
            ch = (char)(hi * 16 + lo);
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (k + 1 >= outsz)
            return 0;
        out[k++] = ch;
    }
    out[k] = '\0';
    *outlen = k;
    return 1;
}

/* The secret check. Every secret the request offers (the header and the
 * query parameter) must match; none offered is 401, a wrong one 403. The
 * comparison is clc_secret_equals (CRYPTO_memcmp over equal lengths). */
static enum clc_webhook_result check_secret(const struct clc_webhook_core *c,
                                            const struct clc_webhook_req *r)
{
    char buf[SECRET_ARG_MAX];
    size_t len = 0;
    int offered = 0, bad = 0;
    const char *hv = req_header(r, CLC_WEBHOOK_SECRET_HEADER);

    if (hv != NULL) {
        offered = 1;
        if (!clc_secret_equals(c->secret, hv, strlen(hv)))
            bad = 1;
    }
    for (const char *q = r->query; q != NULL && *q != '\0';) {
        const char *amp = strchr(q, '&'), *end = amp ? amp : q + strlen(q);
        const char *eq = memchr(q, '=', (size_t)(end - q));
        size_t nlen = eq ? (size_t)(eq - q) : (size_t)(end - q);

        if (nlen == strlen(CLC_WEBHOOK_SECRET_QUERY) &&
            memcmp(q, CLC_WEBHOOK_SECRET_QUERY, nlen) == 0) {
            offered = 1;
            if (eq == NULL || !url_decode(eq + 1, (size_t)(end - eq - 1), buf, sizeof buf, &len) ||
                !clc_secret_equals(c->secret, buf, len))
                bad = 1;
            OPENSSL_cleanse(buf, sizeof buf);
        }
        q = amp ? amp + 1 : end;
    }
    if (!offered)
        return CLC_WH_UNAUTHORIZED;
    return bad ? CLC_WH_FORBIDDEN : CLC_WH_ACCEPTED;
}

/* application/json, application/cloudevents+json or
 * application/cloudevents-batch+json, with at most a charset=utf-8. */
static int media_type_ok(const char *ct)
{
    static const char *const ok[] = {"application/json", "application/cloudevents+json",
                                     "application/cloudevents-batch+json"};
    size_t n, i;
    const char *p;

    if (ct == NULL)
        return 0;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    n = strcspn(ct, "; \t");
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strlen(ok[i]) == n && strncasecmp(ct, ok[i], n) == 0)
            break;
    if (i == sizeof ok / sizeof ok[0])
        return 0;
    /* Parameters: only charset, and only UTF-8 (JSON's encoding). */
    for (p = ct + n; *p != '\0';) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        if (*p == '\0')
            break;
        if (strncasecmp(p, "charset=", 8) != 0)
            return 0;
        p += 8;
        if (*p == '"')
            p++;
        if (strncasecmp(p, "utf-8", 5) != 0)
            return 0;
        p += 5;
        if (*p == '"')
            p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != '\0' && *p != ';')
            return 0;
    }
    return 1;
}

/* ---- the handshakes ---- */

static int code_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > VALIDATION_CODE_MAX)
        return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '-')
            return 0;
    return 1;
}

/* The first event when it is a SubscriptionValidationEvent, else NULL. */
static const cJSON *validation_event(const cJSON *root)
{
    const cJSON *ev = cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(ev, "eventType");

    if (!cJSON_IsObject(ev))
        return NULL;
    if (!cJSON_IsString(type))
        type = cJSON_GetObjectItemCaseSensitive(ev, "type"); /* CloudEvents spelling */
    if (cJSON_IsString(type) && strcmp(type->valuestring, VALIDATION_TYPE) == 0)
        return ev;
    return NULL;
}

static enum clc_webhook_result answer_validation(const cJSON *root, const cJSON *ev,
                                                 struct clc_webhook_resp *resp)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(ev, "data");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(data, "validationCode");
    cJSON *doc;

    if (cJSON_IsArray(root) && cJSON_GetArraySize(root) != 1) {
        reply_error(resp, 400, "InvalidValidationEvent",
                    "a SubscriptionValidationEvent must come alone in its array");
        return CLC_WH_MALFORMED;
    }
    if (!cJSON_IsString(code) || !code_ok(code->valuestring)) {
        reply_error(resp, 400, "InvalidValidationEvent",
                    "the SubscriptionValidationEvent has no usable data.validationCode (1-128 "
                    "letters, digits and '-')");
        return CLC_WH_MALFORMED;
    }
    doc = cJSON_CreateObject();
    if (doc != NULL && clc_json_add_str(doc, "validationResponse", code->valuestring) != CLC_OK) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_json(resp, 200, doc);
    return CLC_WH_VALIDATION;
}

/* CloudEvents webhook abuse protection (the HTTP 1.1 Web Hooks for Event
 * Delivery spec, §4): allow Event Grid's origin, refuse others. */
static enum clc_webhook_result answer_options(const struct clc_webhook_req *r,
                                              struct clc_webhook_resp *resp)
{
    const char *origin = req_header(r, "WebHook-Request-Origin");

    if (origin == NULL) {
        /* A plain OPTIONS: say what is allowed, count nothing. */
        resp->status = 204;
        add_header(resp, "Allow", "POST, OPTIONS");
        return CLC_WH__COUNT;
    }
    if (strcasecmp(origin, CLC_WEBHOOK_EVENTGRID_ORIGIN) != 0) {
        reply_error(resp, 403, "OriginNotAllowed",
                    "only eventgrid.azure.net may deliver to this webhook");
        return CLC_WH_FORBIDDEN;
    }
    resp->status = 200;
    add_header(resp, "WebHook-Allowed-Origin", CLC_WEBHOOK_EVENTGRID_ORIGIN);
    add_header(resp, "WebHook-Allowed-Rate", "*");
    add_header(resp, "Allow", "POST, OPTIONS");
    return CLC_WH_ABUSE_CHECK;
}

/* ---- deliveries ---- */

struct tally {
    size_t accepted, ignored;
    char first[300]; /* vault/name of the first accepted event, for the log */
    char why[128];   /* reason of the first ignored event */
};

/* One event: CLC_OK with t updated, or an error already answered. */
static enum clc_err one_event(struct clc_webhook_core *c, const char *text, size_t len, size_t idx,
                              struct tally *t, struct clc_webhook_resp *resp)
{
    struct clc_event ev;
    struct clc_errinfo ei;
    enum clc_event_reason reason = CLC_EVENT_OK;
    enum clc_err rc;
    char msg[700];

    clc_errinfo_clear(&ei);
    rc = clc_event_parse(text, len, &c->filter, &ev, &reason, &ei);
    if (rc == CLC_OK) {
        if (t->accepted++ == 0)
            snprintf(t->first, sizeof t->first, "%s/%s", ev.vault, ev.name);
        return CLC_OK;
    }
    if (rc == CLC_ERR_INVALID) {
        /* Well-formed but not for certlc (another event type, object or
         * vault): answered 202 so Event Grid does not dead-letter it. */
        if (t->ignored++ == 0)
            snprintf(t->why, sizeof t->why, "%s", clc_event_reason_name(reason));
        return CLC_OK;
    }
    if (rc == CLC_ERR_NOMEM) {
        reply_error(resp, 500, "InternalError", "out of memory");
        return rc;
    }
    snprintf(msg, sizeof msg, "event %zu: %s (%s)", idx, ei.msg, clc_event_reason_name(reason));
    reply_error(resp, 400, "InvalidEvent", msg);
    return rc;
}

static enum clc_webhook_result deliver(struct clc_webhook_core *c, const struct clc_webhook_req *r,
                                       struct clc_webhook_resp *resp)
{
    struct clc_errinfo ei;
    struct tally t;
    cJSON *root = NULL, *doc;
    const cJSON *ev;
    enum clc_webhook_result res;
    char msg[700];
    const char *aeg = req_header(r, "aeg-event-type");

    memset(&t, 0, sizeof t);
    clc_errinfo_clear(&ei);
    if (r->body_len == 0) {
        reply_error(resp, 400, "EmptyBody",
                    "the request has no body; Event Grid sends a JSON "
                    "array of events");
        return CLC_WH_MALFORMED;
    }
    if (clc_json_parse(r->body, r->body_len, c->max_body, &root, &ei) != CLC_OK) {
        snprintf(msg, sizeof msg, "the body is not one JSON value (not_json): %s", ei.msg);
        reply_error(resp, 400, "InvalidJson", msg);
        return CLC_WH_MALFORMED;
    }
    ev = validation_event(root);
    if (ev != NULL) {
        res = answer_validation(root, ev, resp);
        goto out;
    }
    if (aeg != NULL && strcasecmp(aeg, "SubscriptionValidation") == 0) {
        reply_error(resp, 400, "InvalidValidationEvent",
                    "aeg-event-type is SubscriptionValidation but the body holds no "
                    "Microsoft.EventGrid.SubscriptionValidationEvent");
        res = CLC_WH_MALFORMED;
        goto out;
    }
    res = CLC_WH_MALFORMED;
    if (cJSON_IsArray(root)) {
        int n = cJSON_GetArraySize(root);
        if (n == 0 || n > BATCH_MAX) {
            snprintf(msg, sizeof msg,
                     "the event array holds %d events, 1 to %d expected (bad_envelope)", n,
                     BATCH_MAX);
            reply_error(resp, 400, "InvalidEvent", msg);
            goto out;
        }
        if (n == 1) {
            /* The parser takes a one-event array as sent: no re-encoding. */
            if (one_event(c, r->body, r->body_len, 0, &t, resp) != CLC_OK)
                goto out;
        } else {
            size_t idx = 0;
            const cJSON *it;
            cJSON_ArrayForEach(it, root)
            {
                char *text = cJSON_PrintUnformatted(it);
                enum clc_err rc;
                if (text == NULL) {
                    reply_error(resp, 500, "InternalError", "out of memory");
                    goto out;
                }
                rc = one_event(c, text, strlen(text), idx++, &t, resp);
                free(text);
                if (rc != CLC_OK)
                    goto out;
            }
        }
    } else if (cJSON_IsObject(root)) {
        if (one_event(c, r->body, r->body_len, 0, &t, resp) != CLC_OK)
            goto out;
    } else {
        snprintf(msg, sizeof msg,
                 "the body is a JSON %s; expected an array of events or one "
                 "CloudEvents object (bad_envelope)",
                 clc_json_type_name(root));
        reply_error(resp, 400, "InvalidEvent", msg);
        goto out;
    }
    /* Only a wake: the queue holds the same events and the worker drains it
     * (the renewal never runs on this thread). */
    if (t.accepted > 0)
        c->hooks.wake(c->hooks.ctx);
    doc = cJSON_CreateObject();
    if (doc != NULL && (clc_json_add_int(doc, "accepted", (int64_t)t.accepted) != CLC_OK ||
                        clc_json_add_int(doc, "ignored", (int64_t)t.ignored) != CLC_OK)) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_json(resp, 202, doc);
    res = t.accepted > 0 ? CLC_WH_ACCEPTED : CLC_WH_IGNORED;
    if (t.accepted > 0)
        clc_log(CLC_LOG_INFO, "webhook.delivery", CLC_LI("events", t.accepted),
                CLC_LI("ignored", t.ignored), CLC_LS("first", t.first));
    else
        clc_log(CLC_LOG_INFO, "webhook.ignored", CLC_LI("events", t.ignored),
                CLC_LS("reason", t.why));
out:
    cJSON_Delete(root);
    return res;
}

/* ---- /healthz and /metrics ---- */

static void healthz(struct clc_webhook_core *c, struct clc_webhook_resp *resp)
{
    struct clc_metrics_snapshot s;
    cJSON *doc = cJSON_CreateObject();
    int ok = 1;

    clc_metrics_snapshot_init(&s);
    if (c->hooks.snapshot != NULL)
        c->hooks.snapshot(c->hooks.ctx, &s);
    if (doc == NULL)
        goto fail;
    if (s.have_worker)
        ok = s.worker_ok;
    if (clc_json_add_str(doc, "status", ok ? "ok" : "degraded") != CLC_OK ||
        clc_json_add_str(doc, "worker",
                         !s.have_worker ? "none" : (s.worker_ok ? "running" : "stopped")) !=
            CLC_OK ||
        clc_json_add_int(doc, "uptime_s", (clc_mono_ms() - c->started_ms) / 1000) != CLC_OK)
        goto fail;
    if (s.have_worker &&
        ((s.queue_depth >= 0 && clc_json_add_int(doc, "queue_depth", s.queue_depth) != CLC_OK) ||
         clc_json_add_int(doc, "last_success", s.last_success) != CLC_OK))
        goto fail;
    reply_json(resp, ok ? 200 : 503, doc);
    return;
fail:
    cJSON_Delete(doc);
    reply_error(resp, 500, "InternalError", "out of memory");
}

static void metrics(struct clc_webhook_core *c, struct clc_webhook_resp *resp)
{
    struct clc_metrics_snapshot s;
    struct clc_metrics_count wh[CLC_WH__COUNT];
    uint64_t n[CLC_WH__COUNT];

    clc_metrics_snapshot_init(&s);
    if (c->hooks.snapshot != NULL)
        c->hooks.snapshot(c->hooks.ctx, &s);
    clc_webhook_counts(c, n);
    for (size_t i = 0; i < CLC_WH__COUNT; i++) {
        snprintf(wh[i].label, sizeof wh[i].label, "%s", result_names[i]);
        wh[i].value = n[i];
    }
    if (clc_metrics_render(&s, wh, CLC_WH__COUNT, &resp->body) != CLC_OK) {
        reply_error(resp, 500, "InternalError", "the metrics did not fit");
        return;
    }
    resp->status = 200;
    resp->content_type = CLC_METRICS_CONTENT_TYPE;
}

/* ---- the entry point ---- */

static int method_is(const struct clc_webhook_req *r, const char *m)
{
    return strcmp(r->method, m) == 0;
}

static void not_allowed(struct clc_webhook_resp *resp, const char *allow)
{
    reply_error(resp, 405, "MethodNotAllowed", "method not allowed here");
    add_header(resp, "Allow", allow);
}

void clc_webhook_handle(struct clc_webhook_core *c, const struct clc_webhook_req *r,
                        struct clc_webhook_resp *resp)
{
    enum clc_webhook_result res = CLC_WH__COUNT;
    int64_t t0 = clc_mono_ms();

    memset(resp, 0, sizeof *resp);
    clc_buf_init(&resp->body, RESP_BODY_MAX);
    if (strcmp(r->path, "/healthz") == 0) {
        if (method_is(r, "GET") || method_is(r, "HEAD"))
            healthz(c, resp);
        else
            not_allowed(resp, "GET, HEAD");
    } else if (strcmp(r->path, "/metrics") == 0) {
        if (method_is(r, "GET") || method_is(r, "HEAD"))
            metrics(c, resp);
        else
            not_allowed(resp, "GET, HEAD");
    } else if (strcmp(r->path, CLC_WEBHOOK_PATH) == 0) {
        if (method_is(r, "OPTIONS")) {
            res = answer_options(r, resp);
        } else if (!method_is(r, "POST")) {
            not_allowed(resp, "POST, OPTIONS");
            res = CLC_WH_BAD_METHOD;
        } else if ((res = check_secret(c, r)) != CLC_WH_ACCEPTED) {
            if (res == CLC_WH_UNAUTHORIZED)
                reply_error(resp, 401, "Unauthorized",
                            "no shared secret: send it in the '" CLC_WEBHOOK_SECRET_QUERY
                            "' query parameter or the " CLC_WEBHOOK_SECRET_HEADER " header");
            else
                reply_error(resp, 403, "Forbidden", "the shared secret does not match");
            /* An unread body may still be on the wire. */
            resp->close = r->body_too_large;
        } else if (r->body_too_large) {
            char msg[128];
            snprintf(msg, sizeof msg, "the body exceeds %zu bytes (webhook.max_body_bytes)",
                     c->max_body);
            reply_error(resp, 413, "RequestBodyTooLarge", msg);
            resp->close = 1;
            res = CLC_WH_TOO_LARGE;
        } else if (!media_type_ok(req_header(r, "Content-Type"))) {
            reply_error(resp, 415, "UnsupportedMediaType",
                        "Content-Type must be application/json, application/cloudevents+json "
                        "or application/cloudevents-batch+json (charset utf-8)");
            res = CLC_WH_BAD_MEDIA_TYPE;
        } else {
            res = deliver(c, r, resp);
        }
    } else {
        reply_error(resp, 404, "NotFound", "no such path; events go to " CLC_WEBHOOK_PATH);
    }
    if (res != CLC_WH__COUNT)
        count(c, res);
    /* The path only: the query may hold the secret. */
    clc_log(resp->status >= 400 ? CLC_LOG_WARN : CLC_LOG_DEBUG, "webhook.request",
            CLC_LS("method", r->method), CLC_LS("path", r->path), CLC_LI("status", resp->status),
            CLC_LS("result", res != CLC_WH__COUNT ? result_names[res] : "-"),
            CLC_LS("remote", r->remote ? r->remote : "-"), CLC_LI("bytes", r->body_len),
            CLC_LI("duration_ms", clc_mono_ms() - t0), CLC_LS("reason", resp->reason));
}
