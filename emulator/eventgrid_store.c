/* Event Grid's run-time state: pending deliveries (one item per event per
 * subscription, bounded), the fan-out of an event to the subscriptions it
 * matches (once per event id per subscription), delivery history, and the
 * persistence document that lets a restarted emulator continue retries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/eventgrid.h"
#include "emulator/state.h"

#define STORE_DOC "eventgrid"

void eg_hist_add(struct eg_sub *s, int64_t t, const char *kind, const char *event_id, int attempt,
                 long status, const char *outcome)
{
    struct eg_hist *h = &s->hist[s->hhead];

    memset(h, 0, sizeof *h);
    h->time = t;
    snprintf(h->kind, sizeof h->kind, "%s", kind);
    snprintf(h->event_id, sizeof h->event_id, "%s", event_id ? event_id : "");
    h->attempt = attempt;
    h->status = status;
    snprintf(h->outcome, sizeof h->outcome, "%s", outcome ? outcome : "");
    s->hhead = (s->hhead + 1) % EG_HIST_MAX;
    if (s->hn < EG_HIST_MAX)
        s->hn++;
}

static int seen_has(const struct eg_sub *s, const char *id)
{
    for (size_t i = 0; i < s->sn; i++)
        if (strcmp(s->seen[(s->shead + EG_SEEN_MAX - 1 - i) % EG_SEEN_MAX], id) == 0)
            return 1;
    return 0;
}

static enum clc_err seen_add(struct eg_sub *s, const char *id)
{
    char *copy = strdup(id);

    if (copy == NULL)
        return CLC_ERR_NOMEM;
    free(s->seen[s->shead]);
    s->seen[s->shead] = copy;
    s->shead = (s->shead + 1) % EG_SEEN_MAX;
    if (s->sn < EG_SEEN_MAX)
        s->sn++;
    return CLC_OK;
}

void eg_item_free(struct eg_item *it)
{
    if (it == NULL)
        return;
    free(it->text);
    free(it);
}

size_t eg_room(const struct eg_svc *svc)
{
    return svc->nitems >= EG_MAX_PENDING ? 0 : EG_MAX_PENDING - svc->nitems;
}

static void item_append(struct eg_svc *svc, struct eg_item *it)
{
    struct eg_item **pp = &svc->items;

    while (*pp != NULL)
        pp = &(*pp)->next;
    it->next = NULL;
    *pp = it;
    svc->nitems++;
}

static const char *str_of(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

enum clc_err eg_fanout(struct eg_svc *svc, const char *topic_id, const cJSON *ev,
                       enum eg_schema schema, int64_t publish_ms, size_t *added,
                       struct clc_errinfo *ei)
{
    struct eg_sub *hit[EG_MAX_SUBS];
    size_t nhit = 0;
    const char *id = str_of(ev, "id", NULL);
    char *text = NULL;
    int64_t now = emu_now(svc->e);

    *added = 0;
    if (id == NULL || strlen(id) > EG_ID_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "event without a usable id");
    for (size_t i = 0; i < svc->nsubs; i++) {
        struct eg_sub *s = svc->subs[i];
        /* Until its handshake succeeds a webhook subscription does not exist
         * for Azure: events published meanwhile are not kept for it. */
        if (s->state != EG_SUB_ACTIVE || !eg_topic_matches(s, topic_id) ||
            !eg_sub_matches(s, ev, schema) || seen_has(s, id))
            continue;
        hit[nhit++] = s;
    }
    if (nhit == 0)
        return CLC_OK;
    if (nhit > eg_room(svc))
        return clc_errf(ei, CLC_ERR_LIMIT, "%zu events are waiting for delivery already",
                        svc->nitems);
    text = clc_json_print(ev);
    if (text == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < nhit; i++) {
        struct eg_item *it = calloc(1, sizeof *it);
        if (it == NULL || (it->text = strdup(text)) == NULL || seen_add(hit[i], id) != CLC_OK) {
            eg_item_free(it);
            free(text);
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        }
        it->id = ++svc->next_item;
        snprintf(it->sub, sizeof it->sub, "%s", hit[i]->name);
        it->schema = schema;
        snprintf(it->event_id, sizeof it->event_id, "%s", id);
        snprintf(it->data_version, sizeof it->data_version, "%s",
                 schema == EG_SCHEMA_EVENTGRID ? str_of(ev, "dataVersion", "") : "");
        it->publish_ms = publish_ms;
        it->due = now;
        item_append(svc, it);
        (*added)++;
    }
    free(text);
    svc->dirty = 1;
    return CLC_OK;
}

void eg_items_drop(struct eg_svc *svc, const char *sub)
{
    struct eg_item **pp = &svc->items;

    while (*pp != NULL) {
        struct eg_item *it = *pp;
        if (!it->busy && (sub == NULL || strcmp(it->sub, sub) == 0)) {
            *pp = it->next;
            eg_item_free(it);
            svc->nitems--;
            svc->dirty = 1;
        } else {
            pp = &it->next;
        }
    }
}

size_t eg_items_count(const struct eg_svc *svc, const char *sub)
{
    size_t n = 0;

    for (const struct eg_item *it = svc->items; it != NULL; it = it->next)
        if (sub == NULL || strcmp(it->sub, sub) == 0)
            n++;
    return n;
}

enum clc_err eg_sub_put(struct eg_svc *svc, struct eg_sub *s, int *replaced, struct clc_errinfo *ei)
{
    *replaced = 0;
    for (size_t i = 0; i < svc->nsubs; i++) {
        if (strcmp(svc->subs[i]->name, s->name) == 0) {
            eg_items_drop(svc, s->name);
            eg_sub_free(svc->subs[i]);
            svc->subs[i] = s;
            *replaced = 1;
            svc->dirty = 1;
            return CLC_OK;
        }
    }
    if (svc->nsubs == EG_MAX_SUBS)
        return clc_errf(ei, CLC_ERR_LIMIT, "at most %d subscriptions", EG_MAX_SUBS);
    svc->subs[svc->nsubs++] = s;
    svc->dirty = 1;
    return CLC_OK;
}

int eg_sub_remove(struct eg_svc *svc, const char *name)
{
    for (size_t i = 0; i < svc->nsubs; i++) {
        if (strcmp(svc->subs[i]->name, name) == 0) {
            eg_items_drop(svc, name);
            eg_sub_free(svc->subs[i]);
            memmove(&svc->subs[i], &svc->subs[i + 1], (svc->nsubs - i - 1) * sizeof svc->subs[0]);
            svc->nsubs--;
            svc->dirty = 1;
            return 1;
        }
    }
    return 0;
}

/* ---- persistence ---- */

static cJSON *sub_doc(const struct eg_sub *s)
{
    cJSON *o = cJSON_CreateObject(), *seen;
    cJSON *def = cJSON_Duplicate(s->def, 1);

    if (o == NULL || def == NULL || !cJSON_AddItemToObject(o, "def", def)) {
        cJSON_Delete(def);
        cJSON_Delete(o);
        return NULL;
    }
    seen = cJSON_AddArrayToObject(o, "seen");
    if (seen == NULL || clc_json_add_bool(o, "from_config", s->from_config) != CLC_OK ||
        clc_json_add_int(o, "state", s->state) != CLC_OK ||
        clc_json_add_str(o, "vcode", s->vcode) != CLC_OK ||
        clc_json_add_str(o, "vtoken", s->vtoken) != CLC_OK ||
        clc_json_add_int(o, "vattempts", s->vattempts) != CLC_OK ||
        clc_json_add_int(o, "vfirst", s->vfirst) != CLC_OK ||
        clc_json_add_int(o, "vnext", s->vnext) != CLC_OK ||
        clc_json_add_int(o, "vdeadline", s->vdeadline) != CLC_OK ||
        clc_json_add_int(o, "delivered", s->delivered) != CLC_OK ||
        clc_json_add_int(o, "dead_lettered", s->dead_lettered) != CLC_OK ||
        clc_json_add_int(o, "dropped", s->dropped) != CLC_OK ||
        clc_json_add_int(o, "attempts", s->attempts) != CLC_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    for (size_t i = 0; i < s->sn; i++) {
        cJSON *id = cJSON_CreateString(s->seen[(s->shead + EG_SEEN_MAX - s->sn + i) % EG_SEEN_MAX]);
        if (id == NULL || !cJSON_AddItemToArray(seen, id)) {
            cJSON_Delete(id);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

static cJSON *item_doc(const struct eg_item *it)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL || clc_json_add_str(o, "sub", it->sub) != CLC_OK ||
        clc_json_add_int(o, "schema", it->schema) != CLC_OK ||
        clc_json_add_str(o, "text", it->text) != CLC_OK ||
        clc_json_add_str(o, "event_id", it->event_id) != CLC_OK ||
        clc_json_add_str(o, "data_version", it->data_version) != CLC_OK ||
        clc_json_add_int(o, "publish_ms", it->publish_ms) != CLC_OK ||
        clc_json_add_int(o, "attempts", it->attempts) != CLC_OK ||
        clc_json_add_int(o, "next", it->due) != CLC_OK ||
        clc_json_add_int(o, "last_attempt", it->last_attempt) != CLC_OK ||
        clc_json_add_str(o, "last_outcome", it->last_outcome) != CLC_OK ||
        clc_json_add_int(o, "last_status", it->last_status) != CLC_OK ||
        clc_json_add_int(o, "state", it->state) != CLC_OK ||
        clc_json_add_str(o, "dl_reason", it->dl_reason) != CLC_OK ||
        clc_json_add_int(o, "dl_deadline", it->dl_deadline) != CLC_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *eg_store_doc(struct eg_svc *svc)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *subs = doc ? cJSON_AddArrayToObject(doc, "subscriptions") : NULL;
    cJSON *items = doc ? cJSON_AddArrayToObject(doc, "items") : NULL;
    cJSON *topics = doc ? cJSON_AddArrayToObject(doc, "topics") : NULL;

    if (subs == NULL || items == NULL || topics == NULL ||
        clc_json_add_int(doc, "next_item", (int64_t)svc->next_item) != CLC_OK)
        goto fail;
    for (size_t i = 0; i < svc->nsubs; i++) {
        cJSON *o = sub_doc(svc->subs[i]);
        if (o == NULL || !cJSON_AddItemToArray(subs, o)) {
            cJSON_Delete(o);
            goto fail;
        }
    }
    for (const struct eg_item *it = svc->items; it != NULL; it = it->next) {
        cJSON *o = item_doc(it);
        if (o == NULL || !cJSON_AddItemToArray(items, o)) {
            cJSON_Delete(o);
            goto fail;
        }
    }
    /* Topics made at run time; the config's come from the config. */
    for (size_t i = 0; i < svc->ntopics; i++) {
        cJSON *o;
        if (svc->topics[i].from_config)
            continue;
        o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(topics, o)) {
            cJSON_Delete(o);
            goto fail;
        }
        if (clc_json_add_str(o, "name", svc->topics[i].name) != CLC_OK ||
            clc_json_add_str(o, "key", svc->topics[i].key) != CLC_OK)
            goto fail;
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

static int64_t num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void restore_state(struct eg_sub *s, const cJSON *o)
{
    const cJSON *seen = cJSON_GetObjectItemCaseSensitive(o, "seen"), *it;
    int64_t st = num(o, "state");

    s->state = st >= EG_SUB_CREATING && st <= EG_SUB_FAILED ? (enum eg_state)st : EG_SUB_CREATING;
    snprintf(s->vcode, sizeof s->vcode, "%s", str_of(o, "vcode", ""));
    snprintf(s->vtoken, sizeof s->vtoken, "%s", str_of(o, "vtoken", ""));
    s->vattempts = (int)num(o, "vattempts");
    s->vfirst = num(o, "vfirst");
    s->vnext = num(o, "vnext");
    s->vdeadline = num(o, "vdeadline");
    s->delivered = num(o, "delivered");
    s->dead_lettered = num(o, "dead_lettered");
    s->dropped = num(o, "dropped");
    s->attempts = num(o, "attempts");
    cJSON_ArrayForEach(it, seen)
    {
        if (cJSON_IsString(it) && seen_add(s, it->valuestring) != CLC_OK)
            break;
    }
}

static void restore_sub(struct eg_svc *svc, const cJSON *o)
{
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(o, "def");
    const char *name = str_of(def, "name", "");
    struct eg_sub *cur = eg_sub_find(svc, name), *s = NULL;
    struct clc_errinfo ei = {0};
    const cJSON *fc = cJSON_GetObjectItemCaseSensitive(o, "from_config");

    if (cur != NULL) {
        /* The config still has it: keep its state only if unchanged. */
        if (cJSON_Compare(cur->def, def, 1))
            restore_state(cur, o);
        return;
    }
    if (cJSON_IsTrue(fc))
        return; /* removed from the config since */
    if (eg_sub_parse(def, NULL, &s, &ei) != CLC_OK) {
        clc_log(CLC_LOG_WARN, "emu.eventgrid.restore_skipped", CLC_LS("subscription", name),
                CLC_LS("reason", ei.msg));
        return;
    }
    restore_state(s, o);
    if (svc->nsubs < EG_MAX_SUBS)
        svc->subs[svc->nsubs++] = s;
    else
        eg_sub_free(s);
}

static void restore_item(struct eg_svc *svc, const cJSON *o)
{
    const char *sub = str_of(o, "sub", ""), *text = str_of(o, "text", NULL);
    struct eg_sub *s = eg_sub_find(svc, sub);
    struct eg_item *it;
    int64_t st = num(o, "state"), schema = num(o, "schema");

    if (s == NULL || text == NULL || eg_room(svc) == 0)
        return;
    it = calloc(1, sizeof *it);
    if (it == NULL || (it->text = strdup(text)) == NULL) {
        eg_item_free(it);
        return;
    }
    it->id = ++svc->next_item;
    snprintf(it->sub, sizeof it->sub, "%s", sub);
    it->schema = schema == EG_SCHEMA_CLOUDEVENTS ? EG_SCHEMA_CLOUDEVENTS : EG_SCHEMA_EVENTGRID;
    snprintf(it->event_id, sizeof it->event_id, "%s", str_of(o, "event_id", ""));
    snprintf(it->data_version, sizeof it->data_version, "%s", str_of(o, "data_version", ""));
    it->publish_ms = num(o, "publish_ms");
    it->attempts = (int)num(o, "attempts");
    it->due = num(o, "next");
    it->last_attempt = num(o, "last_attempt");
    snprintf(it->last_outcome, sizeof it->last_outcome, "%s", str_of(o, "last_outcome", ""));
    it->last_status = (long)num(o, "last_status");
    it->state = st == EG_ITEM_DEADLETTER ? EG_ITEM_DEADLETTER : EG_ITEM_DELIVER;
    snprintf(it->dl_reason, sizeof it->dl_reason, "%s", str_of(o, "dl_reason", ""));
    it->dl_deadline = num(o, "dl_deadline");
    item_append(svc, it);
}

enum clc_err eg_store_restore(struct eg_svc *svc, const cJSON *doc, struct clc_errinfo *ei)
{
    const cJSON *it;
    uint64_t next = (uint64_t)num(doc, "next_item");

    if (!cJSON_IsObject(doc))
        return clc_errf(ei, CLC_ERR_PARSE, "the eventgrid document is not an object");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "topics"))
    {
        struct eg_topic t;
        struct clc_errinfo tei = {0};
        if (eg_topic_parse(it, NULL, &t, &tei) == CLC_OK && eg_topic_find(svc, t.name) == NULL &&
            svc->ntopics < EG_MAX_TOPICS)
            svc->topics[svc->ntopics++] = t;
        OPENSSL_cleanse(&t, sizeof t);
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "subscriptions"))
        restore_sub(svc, it);
    if (next > svc->next_item)
        svc->next_item = next;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(doc, "items")) restore_item(svc, it);
    return CLC_OK;
}

void eg_store_flush(struct eg_svc *svc)
{
    struct clc_errinfo ei = {0};
    cJSON *doc = NULL;

    if (emu_data_dir(svc->e) == NULL)
        return;
    pthread_mutex_lock(&svc->mu);
    if (svc->dirty) {
        doc = eg_store_doc(svc);
        if (doc != NULL)
            svc->dirty = 0;
    }
    /* Saving under mu keeps an older snapshot from overwriting a newer one;
     * it is local file I/O, never network. */
    if (doc != NULL && emu_store_save(svc->e, STORE_DOC, doc, &ei) != CLC_OK) {
        svc->dirty = 1;
        clc_log(CLC_LOG_ERROR, "emu.eventgrid.persist_failed", CLC_LS("reason", ei.msg));
    }
    pthread_mutex_unlock(&svc->mu);
    cJSON_Delete(doc);
}
