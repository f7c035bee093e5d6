/* Logs Ingestion API client: rows are serialised when added and kept in a
 * bounded ring (oldest dropped with a warning); a flush sends them in order
 * as JSON arrays of at most 1 MB (gzip'd by default), with a bearer token for
 * https://monitor.azure.com, retries on 429/5xx/transport errors (repeating
 * an ingestion call at worst duplicates rows, which logs tolerate), and puts
 * the rows back when the service stays unavailable. */
#include "azure/loganalytics.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"

#define LA_SCOPE "https://monitor.azure.com/.default"
#define LA_DEFAULT_ROWS 10000
#define LA_MAX_ROWS 10000000
#define LA_URL_MAX 2048
/* 400/413 answers a flush may spend finding the refused rows by halving. */
#define LA_BISECT_BUDGET 64

const struct clc_config_key clc_la_config_keys[] = {
    {"loganalytics.endpoint", CLC_CFG_STR,
     "Logs Ingestion endpoint: the data collection endpoint or the DCR's own "
     "(https://NAME.REGION-1.ingest.monitor.azure.com); unset = no Log Analytics"},
    {"loganalytics.dcr_id", CLC_CFG_STR, "immutable id of the data collection rule (dcr-...)"},
    {"loganalytics.stream", CLC_CFG_STR,
     "stream declared in the rule (default Custom-CertlcRenewal_CL)"},
    {"loganalytics.api_version", CLC_CFG_STR, "Logs Ingestion api-version (default 2023-01-01)"},
    {"loganalytics.max_buffered_rows", CLC_CFG_INT,
     "rows kept while the service is unreachable; the oldest are dropped beyond (default 10000)"},
    {"loganalytics.gzip", CLC_CFG_BOOL, "compress each call with gzip (default true)"},
};
const size_t clc_la_config_nkeys = sizeof clc_la_config_keys / sizeof clc_la_config_keys[0];

struct la_row {
    char *json;
    size_t len;
};

struct clc_la {
    char url[LA_URL_MAX];
    char stream[256];
    pthread_mutex_t mu;      /* the ring and the counters */
    pthread_mutex_t send_mu; /* one flush at a time: the HTTP handle is not shared */
    struct la_row *ring;
    size_t cap, head, count;
    struct clc_la_stats stats;
    struct clc_http *http;
    struct clc_auth *auth; /* borrowed */
    struct clc_retry_policy retry;
    int gzip;
};

static int id_ok(const char *s, size_t max, const char *extra)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || strchr(extra, s[i]) != NULL))
            return 0;
    return 1;
}

enum clc_err clc_la_new(const struct clc_la_opts *opts, const struct clc_http_opts *http_opts,
                        struct clc_auth *auth, struct clc_la **out, struct clc_errinfo *ei)
{
    struct clc_la *la = NULL;
    const char *api;
    size_t elen;
    enum clc_err rc;

    *out = NULL;
    if (opts == NULL || auth == NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "log analytics: options and credentials are needed");
    api = opts->api_version ? opts->api_version : "2023-01-01";
    elen = opts->endpoint ? strlen(opts->endpoint) : 0;
    while (elen > 0 && opts->endpoint[elen - 1] == '/')
        elen--;
    if (elen < 9 || elen > 512 || strncasecmp(opts->endpoint, "https://", 8) != 0 ||
        strpbrk(opts->endpoint, "?# ") != NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "log analytics: endpoint '%.200s' is not https://HOST[:PORT][/PATH] "
                        "(tokens only go over https; the HTTP Data Collector API is not "
                        "supported)",
                        opts->endpoint ? opts->endpoint : "");
    if (strncmp(opts->dcr_id ? opts->dcr_id : "", "dcr-", 4) != 0 || !id_ok(opts->dcr_id, 128, "-"))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "log analytics: data collection rule id '%.80s' is not dcr-<letters and "
                        "digits> (the rule's immutable id)",
                        opts->dcr_id ? opts->dcr_id : "");
    if (!id_ok(opts->stream, 200, "-_"))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "log analytics: stream '%.80s' is not letters, digits, '-' and '_' "
                        "(e.g. Custom-CertlcRenewal_CL)",
                        opts->stream ? opts->stream : "");
    if (!id_ok(api, 32, "-."))
        return clc_errf(ei, CLC_ERR_CONFIG, "log analytics: api-version '%.40s' is not valid", api);
    if (opts->max_buffered_rows > LA_MAX_ROWS)
        return clc_errf(ei, CLC_ERR_CONFIG, "log analytics: max_buffered_rows above %d",
                        LA_MAX_ROWS);
    la = calloc(1, sizeof *la);
    if (la == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(la->url, sizeof la->url, "%.*s/dataCollectionRules/%s/streams/%s?api-version=%s",
             (int)elen, opts->endpoint, opts->dcr_id, opts->stream, api);
    snprintf(la->stream, sizeof la->stream, "%s", opts->stream);
    la->cap = opts->max_buffered_rows ? opts->max_buffered_rows : LA_DEFAULT_ROWS;
    la->ring = calloc(la->cap, sizeof *la->ring);
    la->auth = auth;
    la->gzip = 1;
    clc_retry_policy_default(&la->retry);
    pthread_mutex_init(&la->mu, NULL);
    pthread_mutex_init(&la->send_mu, NULL);
    if (la->ring == NULL) {
        clc_la_free(la);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    rc = clc_http_new(http_opts, &la->http, ei);
    if (rc != CLC_OK) {
        clc_la_free(la);
        return clc_err_wrap(ei, rc, "log analytics");
    }
    *out = la;
    return CLC_OK;
}

enum clc_err clc_la_from_config(const struct clc_config *cfg, const struct clc_http_opts *http_opts,
                                struct clc_auth *auth, struct clc_la **out, struct clc_errinfo *ei)
{
    struct clc_la_opts o = {0};
    int64_t rows = 0;
    int gzip = 1;
    enum clc_err rc;

    *out = NULL;
    if ((rc = clc_config_str(cfg, "loganalytics.endpoint", NULL, &o.endpoint, ei)) != CLC_OK)
        return rc;
    if (o.endpoint == NULL)
        return clc_errf(ei, CLC_ERR_NOT_FOUND,
                        "log analytics is not configured "
                        "(loganalytics.endpoint is not set)");
    if ((rc = clc_config_str_req(cfg, "loganalytics.dcr_id", &o.dcr_id, ei)) != CLC_OK ||
        (rc = clc_config_str(cfg, "loganalytics.stream", "Custom-CertlcRenewal_CL", &o.stream,
                             ei)) != CLC_OK ||
        (rc = clc_config_str(cfg, "loganalytics.api_version", NULL, &o.api_version, ei)) !=
            CLC_OK ||
        (rc = clc_config_int(cfg, "loganalytics.max_buffered_rows", LA_DEFAULT_ROWS, 1, LA_MAX_ROWS,
                             &rows, ei)) != CLC_OK ||
        (rc = clc_config_bool(cfg, "loganalytics.gzip", 1, &gzip, ei)) != CLC_OK)
        return rc;
    o.max_buffered_rows = (size_t)rows;
    rc = clc_la_new(&o, http_opts, auth, out, ei);
    if (rc == CLC_OK)
        clc_la_set_gzip(*out, gzip);
    return rc;
}

void clc_la_set_retry(struct clc_la *la, const struct clc_retry_policy *p)
{
    pthread_mutex_lock(&la->send_mu);
    if (p != NULL)
        la->retry = *p;
    else
        clc_retry_policy_default(&la->retry);
    pthread_mutex_unlock(&la->send_mu);
}

void clc_la_set_gzip(struct clc_la *la, int on)
{
    pthread_mutex_lock(&la->send_mu);
    la->gzip = on != 0;
    pthread_mutex_unlock(&la->send_mu);
}

void clc_la_get_stats(struct clc_la *la, struct clc_la_stats *out)
{
    pthread_mutex_lock(&la->mu);
    *out = la->stats;
    pthread_mutex_unlock(&la->mu);
}

size_t clc_la_buffered(const struct clc_la *la)
{
    struct clc_la *m = (struct clc_la *)la;
    pthread_mutex_lock(&m->mu);
    size_t n = m->count;
    pthread_mutex_unlock(&m->mu);
    return n;
}

/* ---- the ring (under mu) ---- */

static struct la_row *slot(struct clc_la *la, size_t i)
{
    return &la->ring[(la->head + i) % la->cap];
}

static void drop_oldest(struct clc_la *la)
{
    struct la_row *r = slot(la, 0);
    free(r->json);
    r->json = NULL;
    la->head = (la->head + 1) % la->cap;
    la->count--;
    la->stats.dropped++;
    /* Every drop is counted; the log says so at 1, 10, 100, ... and then
     * every 1000, so a long outage does not flood it. */
    uint64_t d = la->stats.dropped;
    int say = d % 1000 == 0;
    for (uint64_t p = 1; p < 1000 && !say; p *= 10)
        say = d == p;
    if (say)
        clc_log(CLC_LOG_WARN, "loganalytics.rows_dropped", CLC_LS("stream", la->stream),
                CLC_LI("dropped_total", d), CLC_LI("max_buffered_rows", la->cap),
                CLC_LS("why", "buffer full (max_buffered_rows) before a flush; oldest dropped"));
}

enum clc_err clc_la_add(struct clc_la *la, cJSON *row, struct clc_errinfo *ei)
{
    char *text;
    size_t len;

    if (!cJSON_IsObject(row)) {
        cJSON_Delete(row);
        return clc_errf(ei, CLC_ERR_INVALID, "log analytics: a row must be a JSON object");
    }
    text = cJSON_PrintUnformatted(row);
    cJSON_Delete(row);
    if (text == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    len = strlen(text);
    if (len + 2 > CLC_LA_BATCH_MAX_BYTES) {
        free(text);
        return clc_errf(ei, CLC_ERR_LIMIT,
                        "log analytics: a row of %zu bytes exceeds the %d-byte limit of one "
                        "call; it is not sent",
                        len, CLC_LA_BATCH_MAX_BYTES);
    }
    pthread_mutex_lock(&la->mu);
    if (la->count == la->cap)
        drop_oldest(la);
    *slot(la, la->count) = (struct la_row){text, len};
    la->count++;
    pthread_mutex_unlock(&la->mu);
    return CLC_OK;
}

/* Moves up to max_rows oldest rows (at most one call's worth) out of the ring. */
static size_t take_batch(struct clc_la *la, struct la_row *out, size_t max_rows)
{
    size_t n = 0, bytes = 2; /* "[" and "]" */

    pthread_mutex_lock(&la->mu);
    while (n < la->count && n < max_rows) {
        struct la_row *r = slot(la, n);
        if (bytes + r->len + (n > 0) > CLC_LA_BATCH_MAX_BYTES)
            break;
        bytes += r->len + (n > 0);
        out[n++] = *r;
        r->json = NULL;
    }
    la->head = (la->head + n) % la->cap;
    la->count -= n;
    pthread_mutex_unlock(&la->mu);
    return n;
}

/* Puts rows back in front, in order. Rows added meanwhile may have filled
 * the ring: then the oldest of those put back are dropped. */
static void put_back(struct clc_la *la, struct la_row *rows, size_t n)
{
    pthread_mutex_lock(&la->mu);
    for (size_t i = n; i-- > 0;) {
        if (la->count == la->cap) {
            for (size_t j = 0; j <= i; j++) {
                free(rows[j].json);
                la->stats.dropped++;
            }
            clc_log(CLC_LOG_WARN, "loganalytics.rows_dropped", CLC_LS("stream", la->stream),
                    CLC_LI("dropped", i + 1), CLC_LI("dropped_total", la->stats.dropped));
            break;
        }
        la->head = (la->head + la->cap - 1) % la->cap;
        la->count++;
        *slot(la, 0) = rows[i];
    }
    pthread_mutex_unlock(&la->mu);
}

/* ---- one call ---- */

static enum clc_err gzip_body(const char *in, size_t len, unsigned char **out, size_t *out_len)
{
    z_stream zs;
    unsigned char *buf;
    uLong bound;

    memset(&zs, 0, sizeof zs);
    if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return CLC_ERR_NOMEM;
    bound = deflateBound(&zs, (uLong)len);
    buf = malloc(bound);
    if (buf == NULL) {
        deflateEnd(&zs);
        return CLC_ERR_NOMEM;
    }
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = buf;
    zs.avail_out = (uInt)bound;
    if (deflate(&zs, Z_FINISH) != Z_STREAM_END) {
        deflateEnd(&zs);
        free(buf);
        return CLC_ERR_INTERNAL;
    }
    *out_len = zs.total_out;
    *out = buf;
    deflateEnd(&zs);
    return CLC_OK;
}

/* Copies printable ASCII for a message. */
static void clean(char *out, size_t n, const char *in)
{
    size_t i = 0;
    for (; in && *in && i + 1 < n; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
}

/* The service's answer as an error naming status, code and message. */
static enum clc_err answer_error(const struct clc_la *la, const struct clc_http_resp *resp,
                                 size_t rows, struct clc_errinfo *ei)
{
    char code[96] = "", msg[400] = "";
    const char *hc = clc_http_resp_header(resp, "x-ms-error-code");
    cJSON *j = NULL;
    enum clc_err e = clc_err_from_http(resp->status);

    if (e == CLC_OK)
        e = CLC_ERR_HTTP;
    if (hc)
        clean(code, sizeof code, hc);
    if (resp->body.len > 0 &&
        clc_json_parse(resp->body.data, resp->body.len, 64 * 1024, &j, NULL) == CLC_OK) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(err, "message");
        if (cJSON_IsString(c))
            clean(code, sizeof code, c->valuestring);
        if (cJSON_IsString(m))
            clean(msg, sizeof msg, m->valuestring);
    }
    cJSON_Delete(j);
    clc_errf(ei, e, "log analytics: stream %s: %zu row%s: HTTP %ld%s%s%s%s", la->stream, rows,
             rows == 1 ? "" : "s", resp->status, code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
    clc_errinfo_set_http(ei, resp->status, code[0] ? code : NULL);
    const char *rid = clc_http_resp_header(resp, "x-ms-request-id");
    if (ei && rid)
        snprintf(ei->request_id, sizeof ei->request_id, "%s", rid);
    return e;
}

/* Sends one batch; *status is the final HTTP status (0 after a transport
 * failure). CLC_OK only for 2xx. */
static enum clc_err send_batch(struct clc_la *la, const struct la_row *rows, size_t n, long *status,
                               struct clc_errinfo *ei)
{
    static const char *const plain_headers[] = {"Accept: application/json", NULL};
    static const char *const gzip_headers[] = {"Accept: application/json", "Content-Encoding: gzip",
                                               NULL};
    struct clc_buf body;
    struct clc_http_resp resp;
    struct clc_secret *token = NULL;
    unsigned char *gz = NULL;
    size_t gz_len = 0;
    enum clc_err rc;

    *status = 0;
    clc_buf_init(&body, CLC_LA_BATCH_MAX_BYTES);
    clc_http_resp_init(&resp);
    rc = clc_buf_append_byte(&body, '[');
    for (size_t i = 0; rc == CLC_OK && i < n; i++) {
        if (i > 0)
            rc = clc_buf_append_byte(&body, ',');
        if (rc == CLC_OK)
            rc = clc_buf_append(&body, rows[i].json, rows[i].len);
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_byte(&body, ']');
    if (rc == CLC_OK && la->gzip)
        rc = gzip_body(body.data, body.len, &gz, &gz_len);
    if (rc != CLC_OK) {
        clc_errf(ei, rc, "log analytics: building a batch of %zu rows", n);
        goto out;
    }
    /* A token, then one fresh token after a 401 (revoked or expired early). */
    for (int round = 0; round < 2; round++) {
        struct clc_http_req req = {
            .method = "POST",
            .url = la->url,
            .headers = la->gzip ? gzip_headers : plain_headers,
            .body = gz ? (const void *)gz : (const void *)body.data,
            .body_len = gz ? gz_len : body.len,
            .content_type = "application/json",
            .idempotent = 1, /* a repeat only duplicates rows */
        };
        clc_secret_free(token);
        token = NULL;
        rc = clc_auth_token(la->auth, LA_SCOPE, &token, NULL, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "log analytics: token for %s", LA_SCOPE);
            goto out;
        }
        req.bearer = token;
        rc = clc_http_send(la->http, &req, &la->retry, &resp, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "log analytics: stream %s: %zu row%s", la->stream, n,
                         n == 1 ? "" : "s");
            goto out;
        }
        if (resp.status != 401)
            break;
        clc_auth_invalidate(la->auth, LA_SCOPE);
    }
    *status = resp.status;
    if (resp.status < 200 || resp.status >= 300)
        rc = answer_error(la, &resp, n, ei);
out:
    clc_secret_free(token);
    free(gz);
    clc_buf_cleanup(&body);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_la_flush(struct clc_la *la, struct clc_errinfo *ei)
{
    struct la_row *batch = NULL;
    size_t limit = SIZE_MAX, refused = 0, sent = 0;
    int budget = LA_BISECT_BUDGET;
    char first_refusal[CLC_ERRINFO_MSG_MAX] = "";
    enum clc_err rc = CLC_OK;

    pthread_mutex_lock(&la->send_mu);
    /* One call holds at most the whole ring, and at most a row per 3 bytes
     * of the 1 MB ("{}" and a comma). */
    batch =
        calloc(la->cap < CLC_LA_BATCH_MAX_BYTES / 3 + 1 ? la->cap : CLC_LA_BATCH_MAX_BYTES / 3 + 1,
               sizeof *batch);
    if (batch == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        struct clc_errinfo one = {0};
        long status = 0;
        size_t room =
            la->cap < CLC_LA_BATCH_MAX_BYTES / 3 + 1 ? la->cap : CLC_LA_BATCH_MAX_BYTES / 3 + 1;
        size_t n = take_batch(la, batch, limit < room ? limit : room);
        if (n == 0)
            break;
        rc = send_batch(la, batch, n, &status, &one);
        if (rc == CLC_OK) {
            for (size_t i = 0; i < n; i++)
                free(batch[i].json);
            sent += n;
            pthread_mutex_lock(&la->mu);
            la->stats.sent += n;
            la->stats.batches++;
            pthread_mutex_unlock(&la->mu);
            /* After a success, widen again what halving narrowed. */
            if (limit != SIZE_MAX)
                limit = limit > SIZE_MAX / 4 ? SIZE_MAX : limit * 4;
            continue;
        }
        if ((status == 400 || status == 413) && n > 1 && budget > 0) {
            /* Some row is refused (or the service's limit is lower than
             * ours): halve until the culprit is alone. */
            budget--;
            limit = n / 2;
            put_back(la, batch, n);
            continue;
        }
        if (status == 400 || status == 413) {
            for (size_t i = 0; i < n; i++)
                free(batch[i].json);
            refused += n;
            pthread_mutex_lock(&la->mu);
            la->stats.refused += n;
            pthread_mutex_unlock(&la->mu);
            clc_log(CLC_LOG_ERROR, "loganalytics.rows_refused", CLC_LS("stream", la->stream),
                    CLC_LI("rows", n), CLC_LS("error", one.msg));
            if (!first_refusal[0])
                snprintf(first_refusal, sizeof first_refusal, "%s", one.msg);
            limit = SIZE_MAX;
            rc = CLC_OK;
            continue;
        }
        /* Unavailable, throttled past the retries, or refused for reasons
         * that are not the rows' (token, role, rule): keep them. */
        put_back(la, batch, n);
        if (ei) {
            *ei = one;
            clc_err_wrap(ei, rc, "%zu rows kept for the next flush", clc_la_buffered(la));
        }
        clc_log(CLC_LOG_WARN, "loganalytics.flush_failed", CLC_LS("stream", la->stream),
                CLC_LI("buffered", clc_la_buffered(la)), CLC_LI("sent", sent),
                CLC_LS("error", one.msg));
        goto out;
    }
    if (refused > 0)
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "log analytics: %zu row%s refused by the service and dropped (%zu sent); "
                      "first: %s",
                      refused, refused == 1 ? "" : "s", sent, first_refusal);
out:
    free(batch);
    pthread_mutex_unlock(&la->send_mu);
    return rc;
}

void clc_la_free(struct clc_la *la)
{
    if (la == NULL)
        return;
    for (size_t i = 0; la->ring != NULL && i < la->count; i++)
        free(slot(la, i)->json);
    free(la->ring);
    clc_http_free(la->http);
    pthread_mutex_destroy(&la->mu);
    pthread_mutex_destroy(&la->send_mu);
    free(la);
}
