/* The emulator's internal event log (see events.h): a bounded ring of
 * Event Grid schema events with sequence numbers, the control route that
 * lists them, and the append notification for the future delivery service. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/events.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define MAX_SUBSCRIBERS 8
/* Emulators a process may run at once (tests restart them one after another). */

struct sub {
    emu_events_fn fn;
    void *ctx;
};

struct emu_event_log {
    struct emu *e;
    pthread_mutex_t mu;
    char log_id[37];
    char **ring;      /* printed events; slot = (seq - 1) % RETENTION */
    int64_t next_seq; /* sequence of the next append */
    int64_t oldest;   /* oldest kept sequence (next_seq when empty) */
    struct sub subs[MAX_SUBSCRIBERS];
    size_t nsubs;
};

#define COMPONENT "events"

static struct emu_event_log *log_of(struct emu *e)
{
    return emu_component_get(e, COMPONENT);
}

static void clear_ring(struct emu_event_log *l)
{
    for (int64_t s = l->oldest; s < l->next_seq; s++) {
        size_t slot = (size_t)((s - 1) % EMU_EVENTS_RETENTION);
        free(l->ring[slot]);
        l->ring[slot] = NULL;
    }
    l->oldest = l->next_seq;
}

static void log_free(void *ctx)
{
    struct emu_event_log *l = ctx;

    clear_ring(l);
    free(l->ring);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

/* "2026-11-22T13:50:25.1230000Z": Event Grid writes 7 fractional digits. */
static void event_time(int64_t ms, char out[CLC_TIME_STR_MAX])
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - s * 1000);
    char base[CLC_TIME_STR_MAX];

    if (clc_time_fmt_iso8601(s, base) != CLC_OK || strlen(base) < 2) {
        snprintf(out, CLC_TIME_STR_MAX, "1970-01-01T00:00:00.0000000Z");
        return;
    }
    char fr[16];
    snprintf(fr, sizeof fr, "%03d", frac);
    /* "YYYY-MM-DDTHH:MM:SS" is 19 characters; the Z is dropped. */
    snprintf(out, CLC_TIME_STR_MAX, "%.19s.%.3s0000Z", base, fr);
}

enum clc_err emu_events_publish(struct emu *e, const char *topic, const char *subject,
                                const char *event_type, cJSON *data, int64_t *seq,
                                struct clc_errinfo *ei)
{
    struct emu_event_log *l = log_of(e);
    struct sub subs[MAX_SUBSCRIBERS];
    char id[37], when[CLC_TIME_STR_MAX];
    cJSON *ev = NULL;
    char *text = NULL;
    int64_t s = 0;
    size_t nsubs;
    enum clc_err rc = CLC_OK;

    if (seq != NULL)
        *seq = 0;
    if (l == NULL) {
        cJSON_Delete(data);
        return clc_errf(ei, CLC_ERR_INTERNAL, "the event log is not mounted");
    }
    clc_rand_uuid(id);
    event_time(emu_now_ms(e), when);
    ev = cJSON_CreateObject();
    if (ev == NULL || clc_json_add_str(ev, "id", id) != CLC_OK ||
        clc_json_add_str(ev, "topic", topic) != CLC_OK ||
        clc_json_add_str(ev, "subject", subject) != CLC_OK ||
        clc_json_add_str(ev, "eventType", event_type) != CLC_OK ||
        clc_json_add_str(ev, "eventTime", when) != CLC_OK ||
        !cJSON_AddItemToObject(ev, "data", data)) {
        cJSON_Delete(ev);
        cJSON_Delete(data);
        return clc_errf(ei, CLC_ERR_NOMEM, "event: out of memory");
    }
    data = NULL;
    if (clc_json_add_str(ev, "dataVersion", "1") != CLC_OK ||
        clc_json_add_str(ev, "metadataVersion", "1") != CLC_OK ||
        (text = clc_json_print(ev)) == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "event: out of memory");
        goto out;
    }
    pthread_mutex_lock(&l->mu);
    s = l->next_seq++;
    if (s - l->oldest >= EMU_EVENTS_RETENTION) {
        size_t old = (size_t)((l->oldest - 1) % EMU_EVENTS_RETENTION);
        free(l->ring[old]);
        l->ring[old] = NULL;
        l->oldest++;
    }
    l->ring[(size_t)((s - 1) % EMU_EVENTS_RETENTION)] = text;
    text = NULL;
    nsubs = l->nsubs;
    memcpy(subs, l->subs, nsubs * sizeof subs[0]);
    pthread_mutex_unlock(&l->mu);
    clc_log(CLC_LOG_DEBUG, "emu.event", CLC_LS("type", event_type), CLC_LS("subject", subject),
            CLC_LI("sequence", s));
    for (size_t i = 0; i < nsubs; i++)
        subs[i].fn(e, s, subs[i].ctx);
    if (seq != NULL)
        *seq = s;
out:
    free(text);
    cJSON_Delete(ev);
    return rc;
}

enum clc_err emu_events_list(struct emu *e, int64_t after, size_t max, cJSON **out, int64_t *last,
                             int64_t *oldest, struct clc_errinfo *ei)
{
    struct emu_event_log *l = log_of(e);
    cJSON *arr = NULL;
    int64_t s, got = after;
    size_t n = 0;

    *out = NULL;
    if (l == NULL)
        return clc_errf(ei, CLC_ERR_INTERNAL, "the event log is not mounted");
    if (max == 0 || max > EMU_EVENTS_LIST_MAX)
        max = EMU_EVENTS_LIST_MAX;
    arr = cJSON_CreateArray();
    if (arr == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "events: out of memory");
    pthread_mutex_lock(&l->mu);
    if (oldest != NULL)
        *oldest = l->oldest;
    s = after < l->oldest - 1 ? l->oldest : after + 1;
    for (; s < l->next_seq && n < max; s++, n++) {
        cJSON *item = cJSON_CreateObject();
        cJSON *ev = cJSON_Parse(l->ring[(size_t)((s - 1) % EMU_EVENTS_RETENTION)]);
        if (item == NULL || ev == NULL || clc_json_add_int(item, "sequence", s) != CLC_OK ||
            !cJSON_AddItemToObject(item, "event", ev) || !cJSON_AddItemToArray(arr, item)) {
            pthread_mutex_unlock(&l->mu);
            cJSON_Delete(ev);
            cJSON_Delete(item);
            cJSON_Delete(arr);
            return clc_errf(ei, CLC_ERR_NOMEM, "events: out of memory");
        }
        got = s;
    }
    pthread_mutex_unlock(&l->mu);
    if (last != NULL)
        *last = got;
    *out = arr;
    return CLC_OK;
}

const char *emu_events_log_id(struct emu *e)
{
    struct emu_event_log *l = log_of(e);
    return l != NULL ? l->log_id : NULL;
}

enum clc_err emu_events_subscribe(struct emu *e, emu_events_fn fn, void *ctx)
{
    struct emu_event_log *l = log_of(e);
    enum clc_err rc = CLC_OK;

    if (l == NULL || fn == NULL)
        return CLC_ERR_INVALID;
    pthread_mutex_lock(&l->mu);
    if (l->nsubs == MAX_SUBSCRIBERS) {
        rc = CLC_ERR_LIMIT;
    } else {
        l->subs[l->nsubs].fn = fn;
        l->subs[l->nsubs].ctx = ctx;
        l->nsubs++;
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* ---- control API ---- */

static int parse_i64(const char *s, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (s[0] == '\0' || s[0] == '-' || s[0] == '+')
        return 0;
    v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || v < 0)
        return 0;
    *out = v;
    return 1;
}

/* GET /control/events?after=N&max=M (the pattern's rest must be empty). */
static void h_events(struct emu_req *r)
{
    const char *rest = emu_req_param(r, "rest");
    struct clc_errinfo ei = {0};
    char q[32];
    int64_t after = 0, max = 0, last = 0, oldest = 0;
    cJSON *events = NULL, *doc = NULL;

    if (rest != NULL && rest[0] != '\0') {
        emu_reply_azure_error(r, 404, "NotFound", "no such control resource");
        return;
    }
    if (strcmp(r->method, "GET") != 0) {
        emu_reply_azure_error(r, 405, "MethodNotAllowed", "method %.16s is not allowed here",
                              r->method);
        return;
    }
    if ((emu_req_query(r, "after", q, sizeof q) && !parse_i64(q, &after)) ||
        (emu_req_query(r, "max", q, sizeof q) && !parse_i64(q, &max))) {
        emu_reply_azure_error(r, 400, "InvalidRequest",
                              "'after' and 'max' must be non-negative integers");
        return;
    }
    if (emu_events_list(r->emu, after, (size_t)max, &events, &last, &oldest, &ei) != CLC_OK) {
        emu_reply_azure_error(r, 500, "InternalError", "%s", ei.msg);
        return;
    }
    doc = cJSON_CreateObject();
    if (doc == NULL || !cJSON_AddItemToObject(doc, "events", events)) {
        cJSON_Delete(events);
        cJSON_Delete(doc);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    if (clc_json_add_int(doc, "last", last) != CLC_OK ||
        clc_json_add_int(doc, "oldest", oldest) != CLC_OK ||
        clc_json_add_str(doc, "log_id", emu_events_log_id(r->emu)) != CLC_OK) {
        cJSON_Delete(doc);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    emu_reply_json(r, 200, doc, NULL);
    cJSON_Delete(doc);
}

static const struct emu_route event_routes[] = {
    /* "{rest*}" also matches "/control/events" itself (rest empty). */
    {"*", "/control/events/{rest*}", h_events},
};

static void events_reset(struct emu *e, void *ctx)
{
    struct emu_event_log *l = ctx;

    (void)e;
    pthread_mutex_lock(&l->mu);
    clear_ring(l);
    pthread_mutex_unlock(&l->mu);
}

static cJSON *events_dump(struct emu *e, void *ctx)
{
    struct emu_event_log *l = ctx;
    cJSON *d = cJSON_CreateObject();
    int64_t next, oldest;

    (void)e;
    pthread_mutex_lock(&l->mu);
    next = l->next_seq;
    oldest = l->oldest;
    pthread_mutex_unlock(&l->mu);
    if (d == NULL || clc_json_add_str(d, "log_id", l->log_id) != CLC_OK ||
        clc_json_add_int(d, "kept", next - oldest) != CLC_OK ||
        clc_json_add_int(d, "last", next - 1) != CLC_OK) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

enum clc_err emu_events_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_event_log *l = calloc(1, sizeof *l);
    enum clc_err rc;

    if (l == NULL || (l->ring = calloc(EMU_EVENTS_RETENTION, sizeof l->ring[0])) == NULL) {
        free(l);
        return clc_errf(ei, CLC_ERR_NOMEM, "event log: out of memory");
    }
    l->e = e;
    pthread_mutex_init(&l->mu, NULL);
    clc_rand_uuid(l->log_id);
    l->next_seq = 1;
    l->oldest = 1;
    rc = emu_component_set(e, COMPONENT, l);
    if (rc != CLC_OK) {
        free(l->ring);
        pthread_mutex_destroy(&l->mu);
        free(l);
        return clc_errf(ei, rc, "event log: cannot register it");
    }
    rc = emu_at_stop(e, log_free, l);
    if (rc != CLC_OK) {
        log_free(l);
        return clc_errf(ei, rc, "event log: cannot register its stop hook");
    }
    rc = emu_control_add_routes(e, "events", event_routes,
                                sizeof event_routes / sizeof event_routes[0], l);
    if (rc == CLC_OK)
        rc = emu_control_register(e, "events", events_reset, events_dump, l);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "event log: cannot add its control routes");
    return CLC_OK;
}
