/* The emulated Event Grid service ("eventgrid", HTTPS): mounts the publish
 * API and the validation URL, reads config "eventgrid", restores state from
 * the data dir, wires the delivery worker to the event log and the clock,
 * and serves the control routes (subscriptions with their delivery history,
 * topics, a forced redelivery pass, dead-letter counts) with reset and dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/events.h"
#include "emulator/eventgrid.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define CONTROL_BODY_MAX ((size_t)64 * 1024)

/* ---- topics a subscription may name ---- */

/* A vault in config "vaults" (or the default "certlc"), or a custom topic. */
static int topic_known(struct eg_svc *svc, const char *name)
{
    const cJSON *vaults = cJSON_GetObjectItemCaseSensitive(emu_config(svc->e), "vaults"), *v;

    if (eg_topic_find(svc, name) != NULL)
        return 1;
    if (vaults == NULL)
        return strcasecmp(name, "certlc") == 0;
    cJSON_ArrayForEach(v, vaults)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(v, "name");
        if (cJSON_IsString(n) && strcasecmp(n->valuestring, name) == 0)
            return 1;
    }
    return 0;
}

/* ---- the service's own routes ---- */

static void route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    eg_reply_error(r, status, code, code, "%s", message);
}

static const struct emu_route eg_routes[] = {
    {"POST", "/topics/{topic}/api/events", eg_h_publish},
    {"GET", "/eventsubscriptions/{name}/validate", eg_h_validate},
};

static const struct emu_service_def eg_def = {
    .name = "eventgrid",
    .routes = eg_routes,
    .nroutes = sizeof eg_routes / sizeof eg_routes[0],
    .error = route_error,
};

/* ---- control routes ---- */

static int parse_body(struct emu_req *r, cJSON **out)
{
    struct clc_errinfo ei = {0};

    if (clc_json_parse(r->body, r->body_len, CONTROL_BODY_MAX, out, &ei) != CLC_OK ||
        !cJSON_IsObject(*out)) {
        emu_reply_azure_error(r, 400, "InvalidRequest", "the body must be a JSON object%s%s",
                              ei.msg[0] ? ": " : "", ei.msg);
        cJSON_Delete(*out);
        *out = NULL;
        return 0;
    }
    return 1;
}

static void reply_doc(struct emu_req *r, int status, cJSON *doc)
{
    if (doc == NULL)
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply_json(r, status, doc, NULL);
    cJSON_Delete(doc);
}

static void h_subs_list(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "subscriptions") : NULL;

    pthread_mutex_lock(&svc->mu);
    for (size_t i = 0; arr != NULL && i < svc->nsubs; i++) {
        cJSON *o = eg_sub_json(svc, svc->subs[i], 1);
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            arr = NULL;
        }
    }
    pthread_mutex_unlock(&svc->mu);
    if (arr == NULL) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_doc(r, 200, doc);
}

static void h_sub_get(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    const char *name = emu_req_param(r, "name");
    struct eg_sub *s;
    cJSON *doc = NULL;

    pthread_mutex_lock(&svc->mu);
    s = eg_sub_find(svc, name);
    if (s != NULL)
        doc = eg_sub_json(svc, s, 1);
    pthread_mutex_unlock(&svc->mu);
    if (s == NULL) {
        emu_reply_azure_error(r, 404, "NotFound", "no subscription named %.80s", name);
        return;
    }
    reply_doc(r, 200, doc);
}

static void h_sub_put(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    const char *name = emu_req_param(r, "name");
    struct clc_errinfo ei = {0};
    struct eg_sub *s = NULL;
    cJSON *body = NULL, *doc = NULL;
    int replaced = 0, known;
    enum clc_err rc;

    if (!parse_body(r, &body))
        return;
    rc = eg_sub_parse(body, name, &s, &ei);
    cJSON_Delete(body);
    if (rc != CLC_OK) {
        emu_reply_azure_error(r, 400, "InvalidRequest", "%s", ei.msg);
        return;
    }
    pthread_mutex_lock(&svc->mu);
    known = topic_known(svc, s->topic);
    if (known) {
        eg_sub_begin(svc, s, emu_now(r->emu));
        rc = eg_sub_put(svc, s, &replaced, &ei);
        if (rc == CLC_OK) {
            doc = eg_sub_json(svc, s, 0);
            s = NULL;
        }
    }
    pthread_mutex_unlock(&svc->mu);
    if (!known) {
        emu_reply_azure_error(r, 400, "InvalidRequest",
                              "topic '%s' is neither a configured vault nor a custom topic",
                              s->topic);
        eg_sub_free(s);
        return;
    }
    eg_sub_free(s);
    if (rc != CLC_OK) {
        emu_reply_azure_error(r, 409, "Conflict", "%s", ei.msg);
        return;
    }
    eg_store_flush(svc);
    eg_wake(svc);
    reply_doc(r, replaced ? 200 : 201, doc);
}

static void h_sub_delete(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    const char *name = emu_req_param(r, "name");
    int gone;

    pthread_mutex_lock(&svc->mu);
    gone = eg_sub_remove(svc, name);
    pthread_mutex_unlock(&svc->mu);
    if (!gone) {
        emu_reply_azure_error(r, 404, "NotFound", "no subscription named %.80s", name);
        return;
    }
    eg_store_flush(svc);
    emu_reply_json(r, 204, NULL, NULL);
}

/* POST /control/eventgrid/redeliver[?subscription=NAME]: every pending
 * event (and handshake) is due now, whatever its schedule said. */
static void h_redeliver(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    char only[EG_NAME_MAX + 2] = "";
    int64_t now = emu_now(r->emu), n = 0;
    cJSON *doc = cJSON_CreateObject();

    emu_req_query(r, "subscription", only, sizeof only);
    pthread_mutex_lock(&svc->mu);
    for (struct eg_item *it = svc->items; it != NULL; it = it->next) {
        if (only[0] != '\0' && strcmp(it->sub, only) != 0)
            continue;
        if (it->due > now) {
            it->due = now;
            n++;
        }
    }
    for (size_t i = 0; i < svc->nsubs; i++)
        if (svc->subs[i]->state == EG_SUB_CREATING &&
            (only[0] == '\0' || strcmp(svc->subs[i]->name, only) == 0))
            svc->subs[i]->vnext = now;
    svc->dirty = 1;
    pthread_mutex_unlock(&svc->mu);
    eg_wake(svc);
    if (doc != NULL && clc_json_add_int(doc, "rescheduled", n) != CLC_OK) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_doc(r, 200, doc);
}

static void h_deadletters(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject();
    cJSON *per = doc ? cJSON_AddObjectToObject(doc, "subscriptions") : NULL;
    int ok = per != NULL;

    pthread_mutex_lock(&svc->mu);
    ok = ok && clc_json_add_int(doc, "written", svc->dl_written) == CLC_OK &&
         clc_json_add_int(doc, "lost", svc->dl_lost) == CLC_OK;
    for (size_t i = 0; ok && i < svc->nsubs; i++) {
        const struct eg_sub *s = svc->subs[i];
        size_t waiting = 0;
        cJSON *o = cJSON_AddObjectToObject(per, s->name);
        for (const struct eg_item *it = svc->items; it != NULL; it = it->next)
            if (it->state == EG_ITEM_DEADLETTER && strcmp(it->sub, s->name) == 0)
                waiting++;
        ok = o != NULL && clc_json_add_int(o, "dead_lettered", s->dead_lettered) == CLC_OK &&
             clc_json_add_int(o, "dropped", s->dropped) == CLC_OK &&
             clc_json_add_int(o, "waiting", (int64_t)waiting) == CLC_OK;
    }
    pthread_mutex_unlock(&svc->mu);
    if (!ok) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_doc(r, 200, doc);
}

static void h_topics_list(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = doc ? cJSON_AddArrayToObject(doc, "topics") : NULL;
    char path[EG_NAME_MAX + 40];
    int ok = arr != NULL;

    pthread_mutex_lock(&svc->mu);
    for (size_t i = 0; ok && i < svc->ntopics; i++) {
        cJSON *o = cJSON_CreateObject();
        snprintf(path, sizeof path, "/topics/%s/api/events", svc->topics[i].name);
        ok = o != NULL && cJSON_AddItemToArray(arr, o);
        if (!ok) {
            cJSON_Delete(o);
            break;
        }
        ok = clc_json_add_str(o, "name", svc->topics[i].name) == CLC_OK &&
             clc_json_add_str(o, "path", path) == CLC_OK &&
             clc_json_add_bool(o, "from_config", svc->topics[i].from_config) == CLC_OK;
    }
    pthread_mutex_unlock(&svc->mu);
    if (!ok) {
        cJSON_Delete(doc);
        doc = NULL;
    }
    reply_doc(r, 200, doc);
}

static void h_topic_put(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    struct clc_errinfo ei = {0};
    struct eg_topic t, *cur;
    cJSON *body = NULL;
    int status = 201;

    if (!parse_body(r, &body))
        return;
    if (eg_topic_parse(body, emu_req_param(r, "name"), &t, &ei) != CLC_OK) {
        cJSON_Delete(body);
        emu_reply_azure_error(r, 400, "InvalidRequest", "%s", ei.msg);
        return;
    }
    cJSON_Delete(body);
    pthread_mutex_lock(&svc->mu);
    cur = eg_topic_find(svc, t.name);
    if (cur != NULL) {
        t.from_config = cur->from_config;
        *cur = t;
        status = 200;
    } else if (svc->ntopics < EG_MAX_TOPICS) {
        svc->topics[svc->ntopics++] = t;
    } else {
        status = 409;
    }
    svc->dirty = 1;
    pthread_mutex_unlock(&svc->mu);
    OPENSSL_cleanse(&t, sizeof t);
    if (status == 409) {
        emu_reply_azure_error(r, 409, "Conflict", "at most %d topics", EG_MAX_TOPICS);
        return;
    }
    eg_store_flush(svc);
    emu_reply_json(r, status, NULL, NULL);
}

static void h_topic_delete(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    struct eg_topic *t;
    int gone = 0;

    pthread_mutex_lock(&svc->mu);
    t = eg_topic_find(svc, emu_req_param(r, "name"));
    if (t != NULL) {
        size_t i = (size_t)(t - svc->topics);
        OPENSSL_cleanse(t, sizeof *t);
        memmove(&svc->topics[i], &svc->topics[i + 1],
                (svc->ntopics - i - 1) * sizeof svc->topics[0]);
        svc->ntopics--;
        svc->dirty = 1;
        gone = 1;
    }
    pthread_mutex_unlock(&svc->mu);
    if (!gone) {
        emu_reply_azure_error(r, 404, "NotFound", "no such topic");
        return;
    }
    eg_store_flush(svc);
    emu_reply_json(r, 204, NULL, NULL);
}

static const struct emu_route control_routes[] = {
    {"GET", "/control/eventgrid/subscriptions", h_subs_list},
    {"GET", "/control/eventgrid/subscriptions/{name}", h_sub_get},
    {"PUT", "/control/eventgrid/subscriptions/{name}", h_sub_put},
    {"DELETE", "/control/eventgrid/subscriptions/{name}", h_sub_delete},
    {"POST", "/control/eventgrid/redeliver", h_redeliver},
    {"GET", "/control/eventgrid/deadletters", h_deadletters},
    {"GET", "/control/eventgrid/topics", h_topics_list},
    {"PUT", "/control/eventgrid/topics/{name}", h_topic_put},
    {"DELETE", "/control/eventgrid/topics/{name}", h_topic_delete},
};

/* ---- reset, dump, hooks ---- */

static void clear_runtime(struct eg_sub *s)
{
    s->delivered = s->dead_lettered = s->dropped = s->attempts = 0;
    s->hhead = s->hn = 0;
    for (size_t i = 0; i < EG_SEEN_MAX; i++) {
        free(s->seen[i]);
        s->seen[i] = NULL;
    }
    s->shead = s->sn = 0;
}

/* Back to the configuration: run-time subscriptions and topics go, the
 * configured ones start over (webhooks validate again). */
static void eg_reset(struct emu *e, void *ctx)
{
    struct eg_svc *svc = ctx;
    int64_t now = emu_now(e);

    pthread_mutex_lock(&svc->mu);
    eg_items_drop(svc, NULL);
    for (size_t i = svc->nsubs; i > 0; i--) {
        struct eg_sub *s = svc->subs[i - 1];
        if (!s->from_config) {
            eg_sub_remove(svc, s->name);
            continue;
        }
        clear_runtime(s);
        eg_sub_begin(svc, s, now);
    }
    for (size_t i = svc->ntopics; i > 0; i--) {
        if (svc->topics[i - 1].from_config)
            continue;
        OPENSSL_cleanse(&svc->topics[i - 1], sizeof svc->topics[0]);
        memmove(&svc->topics[i - 1], &svc->topics[i], (svc->ntopics - i) * sizeof svc->topics[0]);
        svc->ntopics--;
    }
    svc->dl_written = svc->dl_lost = 0;
    svc->dirty = 1;
    pthread_mutex_unlock(&svc->mu);
    eg_store_flush(svc);
    eg_wake(svc);
}

static cJSON *eg_dump(struct emu *e, void *ctx)
{
    struct eg_svc *svc = ctx;
    cJSON *d = cJSON_CreateObject();
    cJSON *subs = d ? cJSON_AddArrayToObject(d, "subscriptions") : NULL;
    cJSON *topics = d ? cJSON_AddArrayToObject(d, "topics") : NULL;
    int ok = subs != NULL && topics != NULL;

    (void)e;
    pthread_mutex_lock(&svc->mu);
    for (size_t i = 0; ok && i < svc->nsubs; i++) {
        cJSON *o = eg_sub_json(svc, svc->subs[i], 0);
        ok = o != NULL && cJSON_AddItemToArray(subs, o);
        if (!ok)
            cJSON_Delete(o);
    }
    for (size_t i = 0; ok && i < svc->ntopics; i++) {
        cJSON *n = cJSON_CreateString(svc->topics[i].name);
        ok = n != NULL && cJSON_AddItemToArray(topics, n);
        if (!ok)
            cJSON_Delete(n);
    }
    ok = ok && clc_json_add_int(d, "pending", (int64_t)svc->nitems) == CLC_OK &&
         clc_json_add_int(d, "dead_letters_written", svc->dl_written) == CLC_OK &&
         clc_json_add_int(d, "dead_letters_lost", svc->dl_lost) == CLC_OK &&
         clc_json_add_int(d, "log_events_lost", svc->log_lost) == CLC_OK &&
         clc_json_add_str(d, "url", svc->base_url) == CLC_OK;
    pthread_mutex_unlock(&svc->mu);
    if (!ok) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static void on_event(struct emu *e, int64_t seq, void *ctx)
{
    (void)e;
    (void)seq;
    eg_wake(ctx);
}

static void on_tick(struct emu *e, int64_t now, void *ctx)
{
    (void)e;
    (void)now;
    eg_wake(ctx);
}

static void svc_free(void *ctx)
{
    struct eg_svc *svc = ctx;

    eg_worker_stop(svc);
    eg_store_flush(svc);
    /* The worker is gone: nothing is in flight any more. */
    while (svc->items != NULL) {
        struct eg_item *it = svc->items;
        svc->items = it->next;
        eg_item_free(it);
    }
    for (size_t i = 0; i < svc->nsubs; i++)
        eg_sub_free(svc->subs[i]);
    OPENSSL_cleanse(svc->topics, sizeof svc->topics);
    pthread_cond_destroy(&svc->cond);
    pthread_mutex_destroy(&svc->mu);
    free(svc);
}

static enum clc_err svc_new(struct emu *e, struct eg_svc **out)
{
    struct eg_svc *svc = calloc(1, sizeof *svc);
    pthread_condattr_t attr;
    int rc;

    *out = NULL;
    if (svc == NULL)
        return CLC_ERR_NOMEM;
    svc->e = e;
    pthread_mutex_init(&svc->mu, NULL);
    if (pthread_condattr_init(&attr) != 0) {
        pthread_mutex_destroy(&svc->mu);
        free(svc);
        return CLC_ERR_NOMEM;
    }
    /* The worker's bounded wait is measured on the monotonic clock. */
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    rc = pthread_cond_init(&svc->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        pthread_mutex_destroy(&svc->mu);
        free(svc);
        return CLC_ERR_NOMEM;
    }
    *out = svc;
    return CLC_OK;
}

static enum clc_err load_state(struct eg_svc *svc, struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    enum clc_err rc = emu_store_load(svc->e, "eventgrid", &doc, ei);
    int64_t now = emu_now(svc->e);

    if (rc == CLC_ERR_NOT_FOUND) {
        rc = CLC_OK;
    } else if (rc == CLC_OK) {
        rc = eg_store_restore(svc, doc, ei);
    }
    cJSON_Delete(doc);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "eventgrid state");
    for (size_t i = 0; i < svc->nsubs; i++) {
        struct eg_sub *s = svc->subs[i];
        if (s->from_config && !topic_known(svc, s->topic))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "eventgrid: subscription %s names topic '%s', neither a configured "
                            "vault nor a custom topic",
                            s->name, s->topic);
        /* A handshake cut short by a stop starts over. */
        if (s->state == EG_SUB_CREATING)
            eg_sub_begin(svc, s, now);
    }
    return CLC_OK;
}

enum clc_err emu_eventgrid_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct eg_svc *svc = NULL;
    const char *url;
    enum clc_err rc;

    if (svc_new(e, &svc) != CLC_OK)
        return clc_errf(ei, CLC_ERR_NOMEM, "eventgrid: out of memory");
    rc = emu_at_stop(e, svc_free, svc);
    if (rc != CLC_OK) {
        svc_free(svc);
        return clc_errf(ei, rc, "eventgrid: cannot register its stop hook");
    }
    /* From here the stop hook frees svc. */
    rc = eg_config_load(svc, emu_config(e), ei);
    if (rc != CLC_OK)
        return rc;
    rc = load_state(svc, ei);
    if (rc == CLC_OK)
        rc = emu_service_add(e, "eventgrid", &eg_def, emu_config_port(e, "eventgrid"), svc, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "eventgrid");
    url = emu_service_url(e, "eventgrid");
    snprintf(svc->base_url, sizeof svc->base_url, "%s", url ? url : "");
    rc = emu_control_add_routes(e, "eventgrid", control_routes,
                                sizeof control_routes / sizeof control_routes[0], svc);
    if (rc == CLC_OK)
        rc = emu_control_register(e, "eventgrid", eg_reset, eg_dump, svc);
    if (rc == CLC_OK)
        rc = emu_events_subscribe(e, on_event, svc);
    if (rc == CLC_OK)
        rc = emu_on_tick(e, on_tick, svc);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "eventgrid: cannot register its routes and hooks");
    return eg_worker_start(svc, ei);
}
