/* The emulated Log Analytics front ends: the data collection endpoint
 * ("loganalytics", HTTPS: Logs Ingestion API, bearer for monitor.azure.com
 * with Monitoring Metrics Publisher, JSON array bodies, gzip, 1 MB per call,
 * 204) and the query API ("logquery", HTTPS: /v1/workspaces/{id}/query,
 * bearer for api.loganalytics.io with Log Analytics Reader, a KQL subset),
 * plus the control hooks and the endpoints document entry. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "core/json.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/identity.h"
#include "emulator/loganalytics.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define INGEST_AUDIENCE "https://monitor.azure.com"
#define QUERY_AUDIENCE "https://api.loganalytics.io"
#define QUERY_AUDIENCE_ALT "https://api.loganalytics.azure.com"
#define QUERY_BODY_MAX ((size_t)64 * 1024)
#define QUERY_MAX_ROWS 500000

/* ---- ingestion errors: {"error":{"code","message","target"?}} + x-ms-error-code ---- */

static void ingest_error_target(struct emu_req *r, int status, const char *code, const char *target,
                                const char *message)
{
    cJSON *doc = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(doc, "error");
    char hdr[128];
    const char *headers[] = {hdr, NULL};

    snprintf(hdr, sizeof hdr, "x-ms-error-code: %s", code);
    if (err != NULL) {
        cJSON_AddStringToObject(err, "code", code);
        cJSON_AddStringToObject(err, "message", message);
        if (target != NULL && target[0])
            cJSON_AddStringToObject(err, "target", target);
    }
    emu_reply_json(r, status, doc, headers);
    cJSON_Delete(doc);
}

static void ingest_error(struct emu_req *r, int status, const char *code, const char *message)
{
    ingest_error_target(r, status, code, NULL, message);
}

static void ingest_errorf(struct emu_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void ingest_errorf(struct emu_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ingest_error(r, status, code, msg);
}

/* Inflates a gzip body into at most max bytes. 0 ok, 1 too large, -1 bad. */
static int gunzip(const char *in, size_t len, size_t max, char **out, size_t *out_len)
{
    z_stream zs;
    char *buf = malloc(max + 1);
    int zr, res = -1;

    *out = NULL;
    if (buf == NULL)
        return -1;
    memset(&zs, 0, sizeof zs);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        free(buf);
        return -1;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = (Bytef *)buf;
    zs.avail_out = (uInt)(max + 1);
    zr = inflate(&zs, Z_FINISH);
    if (zr == Z_STREAM_END && zs.avail_in == 0 && zs.total_out <= max) {
        buf[zs.total_out] = '\0';
        *out = buf;
        *out_len = zs.total_out;
        buf = NULL;
        res = 0;
    } else if (zs.total_out > max || (zr == Z_BUF_ERROR && zs.avail_out == 0)) {
        res = 1;
    }
    inflateEnd(&zs);
    free(buf);
    return res;
}

static struct emu_la_dcr *find_stream(struct emu_la *la, const char *id, const char *stream,
                                      int *dcr_exists)
{
    *dcr_exists = 0;
    for (size_t i = 0; i < la->ndcrs; i++) {
        if (strcmp(la->dcrs[i].immutable_id, id) != 0)
            continue;
        *dcr_exists = 1;
        if (strcmp(la->dcrs[i].stream, stream) == 0)
            return &la->dcrs[i];
    }
    return NULL;
}

static void h_ingest(struct emu_req *r)
{
    struct emu_la *la = r->svc_ctx;
    const char *id = emu_req_param(r, "dcr"), *stream = emu_req_param(r, "stream");
    const char *ctype = emu_req_header(r, "Content-Type");
    const char *cenc = emu_req_header(r, "Content-Encoding");
    struct emu_principal who;
    struct clc_errinfo ei = {0};
    struct emu_la_dcr *dcr;
    char api[32], target[128] = "", *plain = NULL;
    const char *body = r->body;
    size_t body_len = r->body_len;
    cJSON *doc = NULL;
    int exists;

    if (!emu_req_query(r, "api-version", api, sizeof api)) {
        ingest_error(r, 400, "MissingApiVersionParameter",
                     "The api-version query parameter (?api-version=) is required for all "
                     "requests.");
        return;
    }
    if (strcmp(api, "2023-01-01") != 0 && strcmp(api, "2021-11-01-preview") != 0) {
        ingest_errorf(r, 400, "InvalidApiVersionParameter",
                      "The api-version '%.31s' is invalid. The supported versions are "
                      "'2023-01-01,2021-11-01-preview'.",
                      api);
        return;
    }
    if (emu_auth_verify(r->emu, r, INGEST_AUDIENCE, &who, &ei) != CLC_OK) {
        ingest_errorf(r, 401, "InvalidToken",
                      "The authentication token is missing or not valid: %s",
                      ei.msg[0] ? ei.msg : "no bearer token");
        return;
    }
    pthread_mutex_lock(&la->mu);
    dcr = find_stream(la, id, stream, &exists);
    pthread_mutex_unlock(&la->mu);
    if (!exists) {
        ingest_errorf(r, 404, "NotFound",
                      "Data collection rule with immutable Id '%.80s' not found.", id);
        return;
    }
    if (!emu_principal_has(&who, EMU_ROLE_MONITORING_METRICS_PUBLISHER)) {
        ingest_errorf(r, 403, "OperationFailed",
                      "The authentication token provided does not have access to ingest data "
                      "for the data collection rule with immutable Id '%.80s'. Required role: "
                      "Monitoring Metrics Publisher. Caller: appid=%s;oid=%s;name=%s",
                      id, who.client_id, who.object_id, who.name);
        return;
    }
    if (dcr == NULL) {
        ingest_errorf(r, 400, "InvalidStream",
                      "Stream '%.80s' is not declared in data collection rule '%.80s' (stream "
                      "names are case-sensitive).",
                      stream, id);
        return;
    }
    if (ctype == NULL || strncasecmp(ctype, "application/json", 16) != 0 ||
        (ctype[16] != '\0' && ctype[16] != ';' && ctype[16] != ' ')) {
        ingest_errorf(r, 415, "UnsupportedMediaType",
                      "Content-Type '%.64s' is not supported; send application/json.",
                      ctype ? ctype : "(none)");
        return;
    }
    if (body_len > EMU_LA_MAX_BATCH_BYTES) {
        ingest_errorf(r, 413, "ContentLengthLimitExceeded",
                      "The request body is %zu bytes; the limit is %zu bytes (1 MB) per call. "
                      "Split the data into several calls.",
                      body_len, EMU_LA_MAX_BATCH_BYTES);
        return;
    }
    if (cenc != NULL && strcasecmp(cenc, "gzip") == 0) {
        int g = gunzip(r->body, r->body_len, EMU_LA_MAX_BATCH_BYTES, &plain, &body_len);
        if (g == 1) {
            ingest_errorf(r, 413, "ContentLengthLimitExceeded",
                          "The decompressed request body exceeds %zu bytes (1 MB) per call.",
                          EMU_LA_MAX_BATCH_BYTES);
            return;
        }
        if (g != 0) {
            ingest_error(r, 400, "InvalidContentEncoding",
                         "The request body is not valid gzip data.");
            return;
        }
        body = plain;
    } else if (cenc != NULL && strcasecmp(cenc, "identity") != 0) {
        ingest_errorf(r, 415, "UnsupportedContentEncoding",
                      "Content-Encoding '%.32s' is not supported; use gzip or none.", cenc);
        return;
    }
    if (clc_json_parse(body, body_len, EMU_LA_MAX_BATCH_BYTES, &doc, &ei) != CLC_OK) {
        ingest_errorf(r, 400, "InvalidContent", "The request body is not valid JSON: %s", ei.msg);
        goto out;
    }
    pthread_mutex_lock(&la->mu);
    enum clc_err rc = emu_la_ingest(la, dcr, doc, emu_now_ms(r->emu), target, sizeof target, &ei);
    pthread_mutex_unlock(&la->mu);
    if (rc == CLC_ERR_INVALID) {
        ingest_error_target(r, 400, "InvalidContent", target, ei.msg);
    } else if (rc != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.loganalytics.ingest", CLC_LS("reason", ei.msg),
                CLC_LS("request_id", r->request_id));
        ingest_error(r, 500, "InternalServerError", "The rows could not be stored; retry.");
    } else {
        emu_reply(r, 204, NULL, NULL, 0, NULL);
    }
out:
    cJSON_Delete(doc);
    free(plain);
}

static void ingest_def_error(struct emu_req *r, int status, const char *code, const char *message)
{
    /* Bodies over the server's own limit get the same answer as over 1 MB. */
    ingest_error(r, status, status == 413 ? "ContentLengthLimitExceeded" : code, message);
}

static const struct emu_route ingest_routes[] = {
    {"POST", "/dataCollectionRules/{dcr}/streams/{stream}", h_ingest},
};

static const struct emu_service_def ingest_def = {
    .name = "loganalytics",
    .routes = ingest_routes,
    .nroutes = sizeof ingest_routes / sizeof ingest_routes[0],
    .error = ingest_def_error,
};

/* ---- query API ---- */

static void query_error(struct emu_req *r, int status, const char *code, const char *message,
                        const struct emu_kql_error *kerr)
{
    cJSON *doc = cJSON_CreateObject(), *err = cJSON_AddObjectToObject(doc, "error");

    if (err != NULL) {
        cJSON_AddStringToObject(err, "message", message);
        cJSON_AddStringToObject(err, "code", code);
        cJSON_AddStringToObject(err, "correlationId", r->request_id);
        if (kerr != NULL && kerr->code[0]) {
            cJSON *in = cJSON_AddObjectToObject(err, "innererror");
            cJSON *in2 = in ? cJSON_CreateObject() : NULL;
            if (in != NULL) {
                cJSON_AddStringToObject(in, "code", kerr->code);
                cJSON_AddStringToObject(in, "message",
                                        strcmp(kerr->code, "SyntaxError") == 0
                                            ? "A recognition error occurred in the query."
                                            : "A semantic error occurred.");
            }
            if (in2 != NULL && cJSON_AddItemToObject(in, "innererror", in2)) {
                cJSON_AddStringToObject(in2, "code", kerr->inner_code);
                cJSON_AddStringToObject(in2, "message", kerr->message);
                if (kerr->line > 0) {
                    cJSON_AddNumberToObject(in2, "line", kerr->line);
                    cJSON_AddNumberToObject(in2, "pos", kerr->pos);
                    cJSON_AddStringToObject(in2, "token", kerr->token);
                }
            } else {
                cJSON_Delete(in2);
            }
        }
    }
    emu_reply_json(r, status, doc, NULL);
    cJSON_Delete(doc);
}

static void query_def_error(struct emu_req *r, int status, const char *code, const char *message)
{
    query_error(r, status, status == 404 ? "PathNotFoundError" : code, message, NULL);
}

/* ISO 8601 duration "P[nW][nD][T[nH][nM][n[.n]S]]" in ms; 0 on success. */
static int parse_duration(const char *s, size_t len, int64_t *ms)
{
    double total = 0;
    int in_time = 0, any = 0;
    size_t i = 1;

    if (len < 2 || s[0] != 'P')
        return -1;
    while (i < len) {
        if (s[i] == 'T' && !in_time) {
            in_time = 1;
            i++;
            continue;
        }
        char *end = NULL;
        char num[32];
        size_t n = 0;
        while (i + n < len && (isdigit((unsigned char)s[i + n]) || s[i + n] == '.') && n < 31)
            n++;
        if (n == 0 || i + n >= len)
            return -1;
        memcpy(num, s + i, n);
        num[n] = '\0';
        double v = strtod(num, &end);
        char unit = s[i + n];
        double mult = !in_time && unit == 'W'   ? 604800000.0
                      : !in_time && unit == 'D' ? 86400000.0
                      : in_time && unit == 'H'  ? 3600000.0
                      : in_time && unit == 'M'  ? 60000.0
                      : in_time && unit == 'S'  ? 1000.0
                                                : -1;
        if (mult < 0 || *end != '\0')
            return -1;
        total += v * mult;
        any = 1;
        i += n + 1;
    }
    if (!any || total > 9.0e15)
        return -1;
    *ms = (int64_t)total;
    return 0;
}

/* timespan: "DURATION" (ending now), "START/END" or "START/DURATION". */
static int parse_timespan(const char *s, int64_t now, int64_t *from, int64_t *to)
{
    const char *slash = strchr(s, '/');
    int64_t a, b;

    if (slash == NULL) {
        if (parse_duration(s, strlen(s), &a) != 0)
            return -1;
        *from = now - a;
        *to = now;
        return 0;
    }
    if (emu_kql_parse_datetime(s, (size_t)(slash - s), &a) != 0)
        return -1;
    if (emu_kql_parse_datetime(slash + 1, strlen(slash + 1), &b) == 0) {
        *from = a;
        *to = b;
    } else if (parse_duration(slash + 1, strlen(slash + 1), &b) == 0) {
        *from = a;
        *to = a + b;
    } else {
        return -1;
    }
    return *from <= *to ? 0 : -1;
}

struct lookup_ctx {
    struct emu_la *la;
    int has_span;
    int64_t from, to;
    cJSON **filtered;
    struct emu_kql_table t;
};

/* Under la->mu. With a timespan, rows outside [from, to) by TimeGenerated
 * are left out, as the service does. */
static const struct emu_kql_table *lookup(const char *name, void *ctx)
{
    struct lookup_ctx *lc = ctx;
    struct emu_la_table *t = emu_la_find_table(lc->la, name);
    int tg = -1;

    if (t == NULL)
        return NULL;
    lc->t.name = t->name;
    lc->t.cols = t->cols;
    lc->t.ncols = t->ncols;
    lc->t.rows = t->rows;
    lc->t.nrows = t->nrows;
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->cols[c].name, "TimeGenerated") == 0 && t->cols[c].type == EMU_KQL_DATETIME)
            tg = (int)c;
    if (!lc->has_span || tg < 0 || lc->filtered != NULL)
        return &lc->t;
    lc->filtered = calloc(t->nrows + 1, sizeof *lc->filtered);
    if (lc->filtered == NULL)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < t->nrows; i++) {
        const cJSON *v = cJSON_GetArrayItem(t->rows[i], tg);
        if (cJSON_IsNumber(v) && (int64_t)v->valuedouble >= lc->from &&
            (int64_t)v->valuedouble < lc->to)
            lc->filtered[n++] = t->rows[i];
    }
    lc->t.rows = lc->filtered;
    lc->t.nrows = n;
    return &lc->t;
}

static int query_auth(struct emu_req *r, struct emu_la *la)
{
    struct emu_principal who;
    struct clc_errinfo ei = {0};

    if (emu_auth_verify(r->emu, r, QUERY_AUDIENCE, &who, &ei) != CLC_OK &&
        emu_auth_verify(r->emu, r, QUERY_AUDIENCE_ALT, &who, NULL) != CLC_OK) {
        char msg[600];
        snprintf(msg, sizeof msg, "Valid authentication was not provided: %s",
                 ei.msg[0] ? ei.msg : "no bearer token");
        query_error(r, 401, "AuthorizationRequiredError", msg, NULL);
        return 0;
    }
    if (strcasecmp(emu_req_param(r, "workspace"), la->workspace_id) != 0) {
        query_error(r, 404, "WorkspaceNotFoundError", "The workspace could not be found", NULL);
        return 0;
    }
    if (!emu_principal_has(&who, EMU_ROLE_LOG_ANALYTICS_READER)) {
        query_error(r, 403, "InsufficientAccessError",
                    "The provided credentials have insufficient access to perform the requested "
                    "operation",
                    NULL);
        return 0;
    }
    return 1;
}

static void run_query(struct emu_req *r, struct emu_la *la, const char *text, const char *span)
{
    struct lookup_ctx lc = {.la = la};
    struct emu_kql_error kerr;
    struct emu_kql_query *q = NULL;
    cJSON *table = NULL, *doc = NULL, *tables;
    int64_t now = emu_now_ms(r->emu);
    enum clc_err rc;

    if (span != NULL && parse_timespan(span, now, &lc.from, &lc.to) != 0) {
        query_error(r, 400, "BadArgumentError",
                    "The timespan is not an ISO 8601 duration or interval (e.g. P1D, "
                    "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z)",
                    NULL);
        return;
    }
    lc.has_span = span != NULL;
    rc = emu_kql_parse(text, &q, &kerr);
    if (rc == CLC_OK) {
        pthread_mutex_lock(&la->mu);
        rc = emu_kql_run(q, lookup, &lc, now, QUERY_MAX_ROWS, &table, &kerr);
        pthread_mutex_unlock(&la->mu);
    }
    if (rc == CLC_ERR_NOMEM) {
        query_error(r, 500, "InternalServerError", "Out of memory running the query", NULL);
    } else if (rc != CLC_OK) {
        query_error(r, 400, "BadArgumentError", "The request had some invalid properties", &kerr);
    } else if ((doc = cJSON_CreateObject()) == NULL ||
               (tables = cJSON_AddArrayToObject(doc, "tables")) == NULL ||
               !cJSON_AddItemToArray(tables, table)) {
        query_error(r, 500, "InternalServerError", "Out of memory", NULL);
    } else {
        table = NULL;
        emu_reply_json(r, 200, doc, NULL);
    }
    cJSON_Delete(table);
    cJSON_Delete(doc);
    free(lc.filtered);
    emu_kql_free(q);
}

static void h_query_get(struct emu_req *r)
{
    struct emu_la *la = r->svc_ctx;
    char *text = malloc(EMU_KQL_QUERY_MAX + 1), span[128];

    if (text == NULL) {
        query_error(r, 500, "InternalServerError", "Out of memory", NULL);
        return;
    }
    if (query_auth(r, la)) {
        if (!emu_req_query(r, "query", text, EMU_KQL_QUERY_MAX + 1))
            query_error(r, 400, "BadArgumentError",
                        "The 'query' parameter is missing or longer than 16384 characters", NULL);
        else
            run_query(r, la, text, emu_req_query(r, "timespan", span, sizeof span) ? span : NULL);
    }
    free(text);
}

static void h_query_post(struct emu_req *r)
{
    struct emu_la *la = r->svc_ctx;
    struct clc_errinfo ei = {0};
    const char *text = NULL, *span = NULL;
    cJSON *doc = NULL;
    char msg[600];

    if (!query_auth(r, la))
        return;
    if (clc_json_parse(r->body, r->body_len, QUERY_BODY_MAX, &doc, &ei) != CLC_OK ||
        !cJSON_IsObject(doc) || clc_json_str(doc, "query", &text, &ei) != CLC_OK ||
        clc_json_str_opt(doc, "timespan", NULL, &span, &ei) != CLC_OK) {
        snprintf(msg, sizeof msg, "The request body must be {\"query\": \"...\"}: %s",
                 ei.msg[0] ? ei.msg : "not a JSON object");
        query_error(r, 400, "BadArgumentError", msg, NULL);
    } else {
        run_query(r, la, text, span);
    }
    cJSON_Delete(doc);
}

static const struct emu_route query_routes[] = {
    {"GET", "/v1/workspaces/{workspace}/query", h_query_get},
    {"POST", "/v1/workspaces/{workspace}/query", h_query_post},
};

static const struct emu_service_def query_def = {
    .name = "logquery",
    .routes = query_routes,
    .nroutes = sizeof query_routes / sizeof query_routes[0],
    .error = query_def_error,
};

/* ---- wiring ---- */

static void la_reset(struct emu *e, void *ctx)
{
    (void)e;
    emu_la_reset(ctx);
}

static cJSON *la_dump(struct emu *e, void *ctx)
{
    (void)e;
    return emu_la_dump(ctx);
}

/* "log_analytics": {"workspace_id", "dcrs": {stream: immutable_id}}; the
 * service URLs are under "services" ("loganalytics", "logquery"). */
static cJSON *la_endpoints(const struct emu *e, void *ctx)
{
    struct emu_la *la = ctx;
    cJSON *doc = cJSON_CreateObject(), *dcrs;
    (void)e;

    if (doc == NULL)
        return NULL;
    pthread_mutex_lock(&la->mu);
    if (cJSON_AddStringToObject(doc, "workspace_id", la->workspace_id) == NULL ||
        (dcrs = cJSON_AddObjectToObject(doc, "dcrs")) == NULL) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    for (size_t i = 0; doc != NULL && i < la->ndcrs; i++)
        cJSON_AddStringToObject(dcrs, la->dcrs[i].stream, la->dcrs[i].immutable_id);
    pthread_mutex_unlock(&la->mu);
    return doc;
}

static void la_stop(void *ctx)
{
    emu_la_free(ctx);
}

enum clc_err emu_loganalytics_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_la *la = NULL;
    enum clc_err rc = emu_la_open(e, &la, ei);

    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "loganalytics");
    rc = emu_at_stop(e, la_stop, la);
    if (rc != CLC_OK) {
        emu_la_free(la);
        return clc_errf(ei, rc, "loganalytics: cannot register the stop hook");
    }
    if ((rc = emu_control_register(e, "loganalytics", la_reset, la_dump, la)) != CLC_OK ||
        (rc = emu_endpoints_add(e, "log_analytics", la_endpoints, la)) != CLC_OK)
        return clc_errf(ei, rc, "loganalytics: control and endpoints hooks");
    rc =
        emu_service_add(e, "loganalytics", &ingest_def, emu_config_port(e, "loganalytics"), la, ei);
    if (rc == CLC_OK)
        rc = emu_service_add(e, "logquery", &query_def, emu_config_port(e, "logquery"), la, ei);
    return rc;
}
