/* The custom topic publish API: POST /topics/{topic}/api/events with an
 * aeg-sas-key (header or query) or a bearer token (audience
 * https://eventgrid.azure.net, role EventGrid Data Sender), in the Event Grid
 * schema (a JSON array) or CloudEvents 1.0 (batch array or one object);
 * malformed input is refused with Event Grid's error shape and nothing of it
 * is kept. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/eventgrid.h"
#include "emulator/identity.h"
#include "emulator/server.h"
#include "emulator/state.h"

#define EG_AUDIENCE "https://eventgrid.azure.net"

void eg_reply_error(struct emu_req *r, int status, const char *code, const char *detail_code,
                    const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    cJSON *doc = cJSON_CreateObject(), *err, *details, *d;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err = doc ? cJSON_AddObjectToObject(doc, "error") : NULL;
    details = err ? cJSON_AddArrayToObject(err, "details") : NULL;
    d = cJSON_CreateObject();
    if (details == NULL || d == NULL || !cJSON_AddItemToArray(details, d)) {
        cJSON_Delete(d);
        cJSON_Delete(doc);
        emu_reply_azure_error(r, status, code, "%s", msg);
        return;
    }
    if (clc_json_add_str(err, "code", code) != CLC_OK ||
        clc_json_add_str(err, "message", msg) != CLC_OK ||
        clc_json_add_str(d, "code", detail_code) != CLC_OK ||
        clc_json_add_str(d, "message", msg) != CLC_OK) {
        cJSON_Delete(doc);
        emu_reply_azure_error(r, status, code, "%s", msg);
        return;
    }
    emu_reply_json(r, status, doc, NULL);
    cJSON_Delete(doc);
}

/* ---- auth ---- */

static int key_ok(const struct eg_topic *t, const char *given)
{
    size_t n = strlen(given);
    return n == strlen(t->key) && CRYPTO_memcmp(given, t->key, n) == 0;
}

/* 1 when allowed; otherwise the reply has been sent. */
static int authorize(struct emu_req *r, struct eg_svc *svc, const char *topic)
{
    const char *hkey = emu_req_header(r, "aeg-sas-key");
    const char *auth = emu_req_header(r, "Authorization");
    char qkey[EG_SECRET_MAX + 1];
    int have_q = emu_req_query(r, "aeg-sas-key", qkey, sizeof qkey);
    struct emu_principal who;
    struct clc_errinfo ei = {0};
    int ok = 0;

    if (hkey != NULL || have_q) {
        struct eg_topic *t;
        pthread_mutex_lock(&svc->mu);
        t = eg_topic_find(svc, topic);
        ok = t != NULL && key_ok(t, hkey != NULL ? hkey : qkey);
        pthread_mutex_unlock(&svc->mu);
        OPENSSL_cleanse(qkey, sizeof qkey);
        if (!ok)
            eg_reply_error(r, 401, "Unauthorized", "InvalidSasKey",
                           "The request authorization key is not authorized for %s.", topic);
        return ok;
    }
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        if (emu_auth_verify(r->emu, r, EG_AUDIENCE, &who, &ei) != CLC_OK) {
            eg_reply_error(r, 401, "Unauthorized", "InvalidToken", "%s", ei.msg);
            return 0;
        }
        if (!emu_principal_has(&who, EMU_ROLE_EVENTGRID_DATA_SENDER)) {
            eg_reply_error(r, 403, "Forbidden", "AuthorizationFailed",
                           "The principal %s does not hold 'EventGrid Data Sender' on topic %s.",
                           who.name, topic);
            return 0;
        }
        return 1;
    }
    if (emu_req_header(r, "aeg-sas-token") != NULL ||
        (auth != NULL && strncasecmp(auth, "SharedAccessSignature ", 22) == 0)) {
        eg_reply_error(r, 401, "Unauthorized", "SasTokenNotSupported",
                       "the emulator takes aeg-sas-key or a bearer token, not SAS tokens");
        return 0;
    }
    eg_reply_error(r, 401, "Unauthorized", "MissingCredentials",
                   "the request carries neither aeg-sas-key nor a bearer token");
    return 0;
}

/* ---- validation ---- */

struct bad {
    const char *code;
    char msg[400];
};

static int req_str(const cJSON *ev, const char *key, size_t idx, struct bad *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, key);

    if (v == NULL || cJSON_IsNull(v)) {
        b->code = "MissingRequiredProperty";
        snprintf(b->msg, sizeof b->msg, "Required property '%s' was not set (event %zu).", key,
                 idx);
        return 0;
    }
    if (!cJSON_IsString(v) || v->valuestring[0] == '\0') {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "Property '%s' must be a non-empty string (event %zu).",
                 key, idx);
        return 0;
    }
    return 1;
}

static int time_ok(const cJSON *ev, const char *key, size_t idx, struct bad *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ev, key);
    int64_t t;

    if (v == NULL)
        return 1;
    if (!cJSON_IsString(v) || clc_time_parse_iso8601(v->valuestring, &t) != CLC_OK) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "Property '%s' is not an ISO 8601 time (event %zu).", key,
                 idx);
        return 0;
    }
    return 1;
}

static int id_ok(const cJSON *ev, size_t idx, struct bad *b)
{
    if (!req_str(ev, "id", idx, b))
        return 0;
    if (strlen(cJSON_GetObjectItemCaseSensitive(ev, "id")->valuestring) > EG_ID_MAX) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "Property 'id' is longer than %d characters (event %zu).",
                 EG_ID_MAX, idx);
        return 0;
    }
    return 1;
}

/* Checks one Event Grid schema event and sets topic and metadataVersion. */
static int check_eg(cJSON *ev, size_t idx, const char *topic_id, struct bad *b)
{
    const cJSON *topic, *mv;

    if (!cJSON_IsObject(ev)) {
        b->code = "InvalidEventsFormat";
        snprintf(b->msg, sizeof b->msg, "Event %zu is not a JSON object.", idx);
        return 0;
    }
    if (!id_ok(ev, idx, b) || !req_str(ev, "subject", idx, b) ||
        !req_str(ev, "eventType", idx, b) || !req_str(ev, "eventTime", idx, b) ||
        !time_ok(ev, "eventTime", idx, b) || !req_str(ev, "dataVersion", idx, b))
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(ev, "data") == NULL) {
        b->code = "MissingRequiredProperty";
        snprintf(b->msg, sizeof b->msg, "Required property 'data' was not set (event %zu).", idx);
        return 0;
    }
    topic = cJSON_GetObjectItemCaseSensitive(ev, "topic");
    if (topic != NULL &&
        !(cJSON_IsString(topic) && strcasecmp(topic->valuestring, topic_id) == 0)) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg,
                 "Property 'topic' of event %zu does not name this topic (%s).", idx, topic_id);
        return 0;
    }
    mv = cJSON_GetObjectItemCaseSensitive(ev, "metadataVersion");
    if (mv != NULL && !(cJSON_IsString(mv) && strcmp(mv->valuestring, "1") == 0)) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "Property 'metadataVersion' must be \"1\" (event %zu).",
                 idx);
        return 0;
    }
    /* Event Grid stamps both on the way in. */
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "topic");
    cJSON_DeleteItemFromObjectCaseSensitive(ev, "metadataVersion");
    if (clc_json_add_str(ev, "topic", topic_id) != CLC_OK ||
        clc_json_add_str(ev, "metadataVersion", "1") != CLC_OK) {
        b->code = "InternalError";
        snprintf(b->msg, sizeof b->msg, "out of memory");
        return 0;
    }
    return 1;
}

static int check_ce(const cJSON *ev, size_t idx, struct bad *b)
{
    const cJSON *sv, *subj, *d64;

    if (!cJSON_IsObject(ev)) {
        b->code = "InvalidEventsFormat";
        snprintf(b->msg, sizeof b->msg, "Event %zu is not a JSON object.", idx);
        return 0;
    }
    if (!req_str(ev, "specversion", idx, b))
        return 0;
    sv = cJSON_GetObjectItemCaseSensitive(ev, "specversion");
    if (strcmp(sv->valuestring, "1.0") != 0) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "'specversion' must be \"1.0\" (event %zu).", idx);
        return 0;
    }
    if (!id_ok(ev, idx, b) || !req_str(ev, "source", idx, b) || !req_str(ev, "type", idx, b) ||
        !time_ok(ev, "time", idx, b))
        return 0;
    subj = cJSON_GetObjectItemCaseSensitive(ev, "subject");
    d64 = cJSON_GetObjectItemCaseSensitive(ev, "data_base64");
    if ((subj != NULL && !cJSON_IsString(subj)) || (d64 != NULL && !cJSON_IsString(d64))) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "'subject' and 'data_base64' must be strings (event %zu).",
                 idx);
        return 0;
    }
    if (d64 != NULL && cJSON_GetObjectItemCaseSensitive(ev, "data") != NULL) {
        b->code = "InvalidPropertyValue";
        snprintf(b->msg, sizeof b->msg, "Event %zu has both 'data' and 'data_base64'.", idx);
        return 0;
    }
    return 1;
}

/* The media type without parameters, lower-cased. */
static void media_type(const char *ct, char *out, size_t n)
{
    size_t i = 0;

    for (; ct != NULL && ct[i] && ct[i] != ';' && i + 1 < n; i++)
        out[i] = (ct[i] >= 'A' && ct[i] <= 'Z') ? (char)(ct[i] + 32) : ct[i];
    while (i > 0 && out[i - 1] == ' ')
        i--;
    out[i] = '\0';
}

/* POST /topics/{topic}/api/events?api-version=2018-01-01 */
void eg_h_publish(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    const char *topic = emu_req_param(r, "topic");
    char ver[32], mt[80], topic_id[EG_NAME_MAX + 160];
    struct clc_errinfo ei = {0};
    struct bad b = {0};
    enum eg_schema schema = EG_SCHEMA_EVENTGRID;
    cJSON *doc = NULL, *batch = NULL;
    const cJSON *ev;
    size_t idx = 0, total = 0, n;
    int exists, single = 0, full = 0;
    int64_t now_ms = emu_now_ms(r->emu);

    pthread_mutex_lock(&svc->mu);
    exists = topic != NULL && eg_topic_find(svc, topic) != NULL;
    pthread_mutex_unlock(&svc->mu);
    if (!exists) {
        eg_reply_error(r, 404, "NotFound", "TopicNotFound", "No topic named '%.80s'.",
                       topic ? topic : "");
        return;
    }
    if (!authorize(r, svc, topic))
        return;
    if (!emu_req_query(r, "api-version", ver, sizeof ver)) {
        eg_reply_error(r, 400, "BadRequest", "MissingApiVersion",
                       "The api-version query parameter is required (2018-01-01).");
        return;
    }
    if (r->body_len > EG_EVENT_MAX) {
        eg_reply_error(r, 413, "RequestEntityTooLarge", "PayloadTooLarge",
                       "The request of %zu bytes is over the 1 MB limit.", r->body_len);
        return;
    }
    media_type(emu_req_header(r, "Content-Type"), mt, sizeof mt);
    if (strcmp(mt, "application/cloudevents-batch+json") == 0) {
        schema = EG_SCHEMA_CLOUDEVENTS;
    } else if (strcmp(mt, "application/cloudevents+json") == 0) {
        schema = EG_SCHEMA_CLOUDEVENTS;
        single = 1;
    } else if (mt[0] != '\0' && strcmp(mt, "application/json") != 0) {
        eg_reply_error(r, 400, "BadRequest", "UnsupportedContentType",
                       "Content-Type '%.60s' is not supported: use application/json or the "
                       "CloudEvents media types.",
                       mt);
        return;
    }
    if (clc_json_parse(r->body, r->body_len, EG_EVENT_MAX, &doc, &ei) != CLC_OK) {
        eg_reply_error(r, 400, "BadRequest", "InputJsonInvalid", "The input is not valid JSON: %s",
                       ei.msg);
        return;
    }
    if (single) {
        batch = cJSON_CreateArray();
        if (batch == NULL || !cJSON_AddItemToArray(batch, doc)) {
            cJSON_Delete(batch);
            cJSON_Delete(doc);
            eg_reply_error(r, 500, "InternalServerError", "InternalError", "out of memory");
            return;
        }
        doc = NULL;
        if (!cJSON_IsObject(cJSON_GetArrayItem(batch, 0))) {
            eg_reply_error(r, 400, "BadRequest", "InvalidEventsFormat",
                           "application/cloudevents+json carries one event object.");
            goto out;
        }
    } else {
        batch = doc;
        doc = NULL;
        if (!cJSON_IsArray(batch)) {
            eg_reply_error(r, 400, "BadRequest", "InvalidEventsFormat",
                           "The request body must be a JSON array of events.");
            goto out;
        }
    }
    if (cJSON_GetArraySize(batch) == 0) {
        eg_reply_error(r, 400, "BadRequest", "InvalidEventsFormat", "The batch has no events.");
        goto out;
    }
    eg_topic_resource(topic, topic_id, sizeof topic_id);
    cJSON_ArrayForEach(ev, batch)
    {
        int ok = schema == EG_SCHEMA_EVENTGRID ? check_eg((cJSON *)ev, idx, topic_id, &b)
                                               : check_ce(ev, idx, &b);
        if (!ok) {
            eg_reply_error(r, 400, "BadRequest", b.code, "%s", b.msg);
            goto out;
        }
        idx++;
    }
    /* All valid: hand them over. A full queue refuses the rest; the
     * publisher's retry of the whole batch is safe, delivery being once per
     * event id per subscription. */
    pthread_mutex_lock(&svc->mu);
    cJSON_ArrayForEach(ev, batch)
    {
        if (eg_fanout(svc, topic_id, ev, schema, now_ms, &n, &ei) != CLC_OK) {
            full = 1;
            break;
        }
        total += n;
    }
    pthread_mutex_unlock(&svc->mu);
    if (total > 0)
        eg_wake(svc);
    if (full) {
        static const char *const retry[] = {"Retry-After: 10", NULL};
        cJSON *e503 = cJSON_CreateObject();
        cJSON *eo = e503 ? cJSON_AddObjectToObject(e503, "error") : NULL;
        if (eo != NULL && clc_json_add_str(eo, "code", "ServiceUnavailable") == CLC_OK &&
            clc_json_add_str(eo, "message", ei.msg) == CLC_OK)
            emu_reply_json(r, 503, e503, retry);
        else
            emu_reply_azure_error(r, 503, "ServiceUnavailable", "%s", ei.msg);
        cJSON_Delete(e503);
        goto out;
    }
    clc_log(CLC_LOG_DEBUG, "emu.eventgrid.published", CLC_LS("topic", topic),
            CLC_LI("events", (int64_t)idx), CLC_LI("deliveries", (int64_t)total));
    emu_reply(r, 200, "application/json; charset=utf-8", "", 0, NULL);
out:
    cJSON_Delete(batch);
}
