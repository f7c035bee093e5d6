/* The operator's tools for what the pipeline could not do: the poison queue
 * (records the worker wrote: why, the last error, the original message) and
 * Event Grid's dead-letter blobs (events it could not deliver). Listing
 * reads; replaying puts the message or event back on the work queue and only
 * then removes it from where it was parked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "azure/blob.h"
#include "azure/event.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "pipeline/worker_int.h"

#define DEADLETTER_BLOB_MAX (1024 * 1024)
#define REPLAY_MAX 100000

void clc_poison_list_cleanup(struct clc_poison_list *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}

static enum clc_err list_add(struct clc_poison_list *l, struct clc_poison_item **it)
{
    if (l->n >= REPLAY_MAX)
        return CLC_ERR_LIMIT;
    struct clc_poison_item *v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return CLC_ERR_NOMEM;
    l->v = v;
    *it = &v[l->n++];
    memset(*it, 0, sizeof **it);
    return CLC_OK;
}

static void copy_str(const cJSON *o, const char *key, char *dst, size_t n)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    snprintf(dst, n, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

static int64_t get_int(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* A poison record (base64 JSON written by the worker). */
static cJSON *poison_json(const struct clc_queue_msg *m)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    cJSON *j = NULL;
    if (clc_b64_decode(m->text, m->text_len, &raw, &n) == CLC_OK)
        (void)clc_json_parse((const char *)raw, n, CLC_QUEUE_MAX_TEXT, &j, NULL);
    free(raw);
    if (j && !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "certlc_poison"))) {
        cJSON_Delete(j);
        j = NULL;
    }
    return j;
}

static void poison_item(const struct clc_queue_msg *m, struct clc_poison_item *it)
{
    cJSON *j = poison_json(m);
    snprintf(it->id, sizeof it->id, "%s", m->id);
    if (!j) {
        snprintf(it->reason, sizeof it->reason, "unknown");
        snprintf(it->detail, sizeof it->detail, "not a certlc poison record");
        it->when = m->insertion_time;
        return;
    }
    copy_str(j, "reason", it->reason, sizeof it->reason);
    copy_str(j, "detail", it->detail, sizeof it->detail);
    copy_str(j, "vault", it->vault, sizeof it->vault);
    copy_str(j, "certificate", it->certificate, sizeof it->certificate);
    it->attempts = get_int(j, "dequeue_count");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(j, "poisoned_at");
    if (!cJSON_IsString(when) || clc_time_parse_iso8601(when->valuestring, &it->when) != CLC_OK)
        it->when = m->insertion_time;
    cJSON_Delete(j);
}

enum clc_err clc_poison_list(struct clc_worker *w, struct clc_poison_list *out,
                             struct clc_errinfo *ei)
{
    struct worker_lane *l = &w->lanes[0];
    struct clc_queue_msgs msgs = {0};
    struct clc_queue_props p;
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    memset(&p, 0, sizeof p);
    rc = clc_queue_get_metadata(l->q, w->o.set->poison_queue, &p, ei);
    if (rc == CLC_ERR_NOT_FOUND)
        return CLC_OK; /* no poison queue yet: nothing was ever poisoned */
    if (rc != CLC_OK)
        return rc;
    out->approximate = p.approximate_count;
    clc_queue_props_cleanup(&p);
    rc = clc_queue_peek(l->q, w->o.set->poison_queue, CLC_QUEUE_MAX_BATCH, &msgs, ei);
    for (size_t i = 0; rc == CLC_OK && i < msgs.n; i++) {
        struct clc_poison_item *it;
        if ((rc = list_add(out, &it)) == CLC_OK)
            poison_item(&msgs.v[i], it);
    }
    clc_queue_msgs_cleanup(&msgs);
    if (rc != CLC_OK)
        clc_poison_list_cleanup(out);
    return rc;
}

/* The original message of a poison record, with the state it carried minus
 * the failure count (a replay starts the count afresh). */
static enum clc_err original_text(const struct clc_queue_msg *m, char **text, size_t *len,
                                  struct clc_errinfo *ei)
{
    cJSON *j = poison_json(m);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    unsigned char *raw = NULL;
    size_t n = 0;
    enum clc_err rc;

    *text = NULL;
    if (!cJSON_IsString(msg)) {
        cJSON_Delete(j);
        return clc_errf(ei, CLC_ERR_PARSE, "poison message %s is not a certlc record", m->id);
    }
    rc = clc_b64_decode(msg->valuestring, strlen(msg->valuestring), &raw, &n);
    cJSON_Delete(j);
    if (rc != CLC_OK)
        return clc_errf(ei, CLC_ERR_PARSE, "poison message %s: bad original message", m->id);
    struct clc_event ev;
    struct clc_renew_state st;
    if (clc_renew_msg_parse((const char *)raw, n, NULL, &ev, &st, NULL, 0, NULL) == CLC_OK &&
        (st.waits || st.last_error[0] || st.foreign_since)) {
        char *again = NULL;
        size_t alen = 0;
        st.waits = 0;
        st.last_error[0] = '\0';
        st.foreign_since = 0;
        st.foreign_hash[0] = '\0';
        if (clc_renew_msg_build((const char *)raw, n, &st, &again, &alen, NULL) == CLC_OK) {
            free(raw);
            *text = again;
            *len = alen;
            return CLC_OK;
        }
    }
    *text = (char *)raw;
    *len = n;
    return CLC_OK;
}

enum clc_err clc_poison_replay(struct clc_worker *w, const char *id, size_t *n,
                               struct clc_errinfo *ei)
{
    struct worker_lane *l = &w->lanes[0];
    const char *pq = w->o.set->poison_queue;
    enum clc_err rc = CLC_OK;
    int found = 0;

    *n = 0;
    /* Batches taken for a minute; those not replayed are made visible again. */
    for (int round = 0; round < REPLAY_MAX / CLC_QUEUE_MAX_BATCH && rc == CLC_OK; round++) {
        struct clc_queue_msgs msgs = {0};
        rc = clc_queue_get(l->q, pq, CLC_QUEUE_MAX_BATCH, 60, &msgs, ei);
        if (rc == CLC_ERR_NOT_FOUND && round == 0)
            return id ? clc_errf(ei, CLC_ERR_NOT_FOUND, "the poison queue %s does not exist", pq)
                      : CLC_OK;
        if (rc != CLC_OK || msgs.n == 0) {
            clc_queue_msgs_cleanup(&msgs);
            break;
        }
        for (size_t i = 0; i < msgs.n; i++) {
            struct clc_queue_msg *m = &msgs.v[i];
            struct clc_errinfo e2 = {0};
            if (id && strcmp(m->id, id) != 0) {
                (void)clc_queue_update(l->q, pq, m, 0, NULL, 0, &e2);
                continue;
            }
            char *text = NULL;
            size_t len = 0;
            enum clc_err r2 = original_text(m, &text, &len, &e2);
            if (r2 == CLC_OK)
                r2 = clc_queue_put(l->q, w->o.set->queue_name, text, len, 0, CLC_QUEUE_TTL_INFINITE,
                                   NULL, &e2);
            if (r2 == CLC_OK)
                r2 = clc_queue_delete_message(l->q, pq, m->id, m->pop_receipt, &e2);
            free(text);
            if (r2 != CLC_OK) {
                clc_log(CLC_LOG_ERROR, "poison.replay", CLC_LS("message_id", m->id),
                        CLC_LS("error", e2.msg));
                if (rc == CLC_OK) {
                    rc = r2;
                    if (ei)
                        *ei = e2;
                }
                continue;
            }
            clc_log(CLC_LOG_INFO, "poison.replayed", CLC_LS("message_id", m->id));
            (*n)++;
            found = 1;
        }
        clc_queue_msgs_cleanup(&msgs);
        if (id && found)
            break;
    }
    if (rc == CLC_OK && id && !found)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "no message %s in the poison queue %s", id, pq);
    return rc;
}

/* ---- Event Grid dead-letters ---- */

static enum clc_err blob_client(struct clc_worker *w, struct clc_blob **out, struct clc_errinfo *ei)
{
    if (!w->o.set->blob_url)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "dead-letters need renew.deadletter.url (or renew.queue.account)");
    struct clc_storage_opts so = {.endpoint = w->o.set->blob_url,
                                  .cred = w->o.cred,
                                  .http = w->o.http,
                                  .retry = w->o.retry,
                                  .clock = w->o.clock};
    return clc_blob_new(&so, out, ei);
}

/* Fields Event Grid adds to a dead-lettered event (both schemas' spellings). */
static const char *const dl_fields[] = {"deadLetterReason",    "deliveryAttempts",
                                        "lastDeliveryOutcome", "lastHttpStatusCode",
                                        "publishTime",         "lastDeliveryAttemptTime"};

static const cJSON *field_nocase(const cJSON *o, const char *key)
{
    return cJSON_GetObjectItem(o, key); /* cJSON_GetObjectItem ignores case */
}

static void event_item(const cJSON *ev, const char *blob, struct clc_poison_item *it)
{
    const cJSON *data = field_nocase(ev, "data");
    const cJSON *v;
    copy_str(ev, "id", it->id, sizeof it->id);
    v = field_nocase(ev, "deadLetterReason");
    snprintf(it->reason, sizeof it->reason, "%s", cJSON_IsString(v) ? v->valuestring : "unknown");
    v = field_nocase(ev, "lastDeliveryOutcome");
    const cJSON *st = field_nocase(ev, "lastHttpStatusCode");
    if (cJSON_IsString(v) && cJSON_IsNumber(st))
        snprintf(it->detail, sizeof it->detail, "last outcome %.200s, HTTP %d", v->valuestring,
                 st->valueint);
    else if (cJSON_IsString(v))
        snprintf(it->detail, sizeof it->detail, "last outcome %.200s", v->valuestring);
    v = field_nocase(data, "VaultName");
    snprintf(it->vault, sizeof it->vault, "%s", cJSON_IsString(v) ? v->valuestring : "");
    v = field_nocase(data, "ObjectName");
    snprintf(it->certificate, sizeof it->certificate, "%s",
             cJSON_IsString(v) ? v->valuestring : "");
    v = field_nocase(ev, "deliveryAttempts");
    it->attempts = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
    v = field_nocase(ev, "lastDeliveryAttemptTime");
    if (!cJSON_IsString(v) || clc_time_parse_iso8601(v->valuestring, &it->when) != CLC_OK)
        it->when = 0;
    snprintf(it->where, sizeof it->where, "%s", blob);
}

/* Calls fn for every dead-letter blob (parsed JSON array of events). */
typedef enum clc_err (*blob_fn)(struct clc_worker *w, struct clc_blob *b, const char *name,
                                cJSON *events, void *ctx, struct clc_errinfo *ei);

static enum clc_err each_blob(struct clc_worker *w, blob_fn fn, void *ctx, struct clc_errinfo *ei)
{
    struct clc_blob *b = NULL;
    char *marker = NULL;
    const char *cont = w->o.set->deadletter_container;
    enum clc_err rc = blob_client(w, &b, ei);

    for (int page = 0; rc == CLC_OK && page < 1000; page++) {
        struct clc_blob_list bl = {0};
        rc = clc_blob_list(b, cont, NULL, marker, 0, &bl, ei);
        free(marker);
        marker = NULL;
        if (rc == CLC_ERR_NOT_FOUND && page == 0) {
            rc = CLC_OK; /* no container: nothing was ever dead-lettered */
            clc_blob_list_cleanup(&bl);
            break;
        }
        for (size_t i = 0; rc == CLC_OK && i < bl.n; i++) {
            char *data = NULL;
            size_t len = 0;
            cJSON *j = NULL;
            struct clc_errinfo e2 = {0};
            if (clc_blob_get(b, cont, bl.v[i].name, DEADLETTER_BLOB_MAX, &data, &len, &e2) !=
                    CLC_OK ||
                clc_json_parse(data, len, DEADLETTER_BLOB_MAX, &j, &e2) != CLC_OK) {
                clc_log(CLC_LOG_WARN, "deadletter.unreadable", CLC_LS("blob", bl.v[i].name),
                        CLC_LS("error", e2.msg));
            } else {
                if (cJSON_IsObject(j)) { /* one event rather than an array */
                    cJSON *arr = cJSON_CreateArray();
                    if (arr)
                        cJSON_AddItemToArray(arr, j);
                    j = arr;
                }
                if (j)
                    rc = fn(w, b, bl.v[i].name, j, ctx, ei);
            }
            cJSON_Delete(j);
            free(data);
        }
        if (rc == CLC_OK && bl.next_marker)
            marker = strdup(bl.next_marker);
        int more = marker != NULL;
        clc_blob_list_cleanup(&bl);
        if (!more)
            break;
    }
    free(marker);
    clc_blob_free(b);
    return rc;
}

static enum clc_err list_fn(struct clc_worker *w, struct clc_blob *b, const char *name,
                            cJSON *events, void *ctx, struct clc_errinfo *ei)
{
    (void)w;
    (void)b;
    (void)ei;
    struct clc_poison_list *out = ctx;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        struct clc_poison_item *it;
        enum clc_err rc = list_add(out, &it);
        if (rc != CLC_OK)
            return rc;
        event_item(ev, name, it);
    }
    return CLC_OK;
}

enum clc_err clc_deadletter_list(struct clc_worker *w, struct clc_poison_list *out,
                                 struct clc_errinfo *ei)
{
    memset(out, 0, sizeof *out);
    enum clc_err rc = each_blob(w, list_fn, out, ei);
    if (rc != CLC_OK)
        clc_poison_list_cleanup(out);
    else
        out->approximate = (int64_t)out->n;
    return rc;
}

struct replay_ctx {
    const char *event_id;
    size_t n;
};

static enum clc_err replay_fn(struct clc_worker *w, struct clc_blob *b, const char *name,
                              cJSON *events, void *ctx, struct clc_errinfo *ei)
{
    struct replay_ctx *rc_ = ctx;
    struct worker_lane *l = &w->lanes[0];
    enum clc_err rc = CLC_OK;
    int changed = 0;
    cJSON *ev = events->child;

    while (ev && rc == CLC_OK) {
        cJSON *next = ev->next;
        const cJSON *id = field_nocase(ev, "id");
        if (rc_->event_id && !(cJSON_IsString(id) && strcmp(id->valuestring, rc_->event_id) == 0)) {
            ev = next;
            continue;
        }
        cJSON *copy = cJSON_Duplicate(ev, 1);
        char *printed = NULL, *b64 = NULL;
        size_t blen = 0;
        for (size_t k = 0; copy && k < sizeof dl_fields / sizeof dl_fields[0]; k++)
            cJSON_DeleteItemFromObject(copy, dl_fields[k]);
        /* As Event Grid writes to a queue: base64 of the event JSON. */
        if (!copy || !(printed = clc_json_print(copy)) ||
            clc_b64_encode(printed, strlen(printed), &b64, &blen) != CLC_OK)
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        else
            rc = clc_queue_put(l->q, w->o.set->queue_name, b64, blen, 0, CLC_QUEUE_TTL_INFINITE,
                               NULL, ei);
        cJSON_Delete(copy);
        free(printed);
        free(b64);
        if (rc == CLC_OK) {
            clc_log(CLC_LOG_INFO, "deadletter.replayed", CLC_LS("blob", name),
                    CLC_LS("event_id", cJSON_IsString(id) ? id->valuestring : ""));
            cJSON_Delete(cJSON_DetachItemViaPointer(events, ev));
            changed = 1;
            rc_->n++;
        }
        ev = next;
    }
    /* Only what went back on the queue leaves the blob. */
    if (changed) {
        struct clc_errinfo e2 = {0};
        enum clc_err r2;
        if (cJSON_GetArraySize(events) == 0) {
            r2 = clc_blob_delete(b, w->o.set->deadletter_container, name, &e2);
        } else {
            char *rest = clc_json_print(events);
            r2 = rest ? clc_blob_put(b, w->o.set->deadletter_container, name, rest, strlen(rest),
                                     "application/json", &e2)
                      : CLC_ERR_NOMEM;
            free(rest);
        }
        if (r2 != CLC_OK && rc == CLC_OK) {
            rc = r2;
            if (ei)
                *ei = e2;
        }
    }
    return rc;
}

enum clc_err clc_deadletter_replay(struct clc_worker *w, const char *event_id, size_t *n,
                                   struct clc_errinfo *ei)
{
    struct replay_ctx c = {.event_id = event_id};
    enum clc_err rc = each_blob(w, replay_fn, &c, ei);
    *n = c.n;
    if (rc == CLC_OK && event_id && c.n == 0)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "no dead-lettered event %s in %s", event_id,
                        w->o.set->deadletter_container);
    return rc;
}
