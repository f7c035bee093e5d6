/* Event Grid's delivery worker: one thread, woken by the event log and by
 * clock ticks, that reads new vault events, runs due handshakes and
 * deliveries (webhook POST with the aeg-* headers, or one base64 message per
 * event into a Storage queue), retries on Azure's schedule by the emulator
 * clock, and dead-letters to a blob. Network I/O never happens under mu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/blob.h"
#include "emulator/emu.h"
#include "emulator/events.h"
#include "emulator/eventgrid.h"
#include "emulator/queue.h"
#include "emulator/state.h"
#include "net/http.h"

#define PASS_BUDGET 512
#define RESPONSE_MAX ((size_t)64 * 1024)
#define DL_RETRY_S 60

static const int64_t schedule[] = {10, 30, 60, 300, 600, 1800, 3600, 10800, 21600};

int64_t eg_retry_delay(int attempts)
{
    size_t i = attempts < 1 ? 0 : (size_t)(attempts - 1);
    return i < sizeof schedule / sizeof schedule[0] ? schedule[i] : 12 * 3600;
}

void eg_time_str(int64_t ms, char out[40])
{
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    char base[CLC_TIME_STR_MAX];

    if (clc_time_fmt_iso8601(s, base) != CLC_OK || strlen(base) < 19) {
        snprintf(out, 40, "1970-01-01T00:00:00.0000000Z");
        return;
    }
    /* Event Grid writes 7 fractional digits. */
    snprintf(out, 40, "%.19s.%03d0000Z", base, (int)(ms - s * 1000));
}

void eg_wake(struct eg_svc *svc)
{
    pthread_mutex_lock(&svc->mu);
    svc->wake = 1;
    pthread_cond_signal(&svc->cond);
    pthread_mutex_unlock(&svc->mu);
}

enum clc_err eg_post(struct clc_http *http, const char *url, const char *const *headers,
                     const char *ctype, const char *body, size_t len, long *status,
                     char **resp_body, struct clc_errinfo *ei)
{
    struct clc_http_resp resp;
    struct clc_http_req req = {
        .method = "POST",
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = len,
        .content_type = ctype,
        .no_proxy = 1,
    };
    enum clc_err rc;

    *status = 0;
    if (resp_body != NULL)
        *resp_body = NULL;
    clc_http_resp_init(&resp);
    rc = clc_http_do(http, &req, &resp, ei);
    if (rc == CLC_OK) {
        *status = resp.status;
        if (resp_body != NULL && resp.body.len > 0)
            *resp_body = clc_buf_take(&resp.body, NULL);
    }
    clc_http_resp_cleanup(&resp);
    return rc;
}

/* ---- outcomes ---- */

static const char *outcome_of(long status, enum clc_err rc)
{
    if (rc == CLC_ERR_TIMEOUT)
        return "TimedOut";
    if (rc != CLC_OK)
        return "GenericError";
    if (status >= 200 && status <= 204)
        return "Succeeded";
    switch (status) {
    case 400:
        return "BadRequest";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "NotFound";
    case 408:
        return "TimedOut";
    case 413:
        return "RequestEntityTooLarge";
    case 429:
    case 503:
        return "Busy";
    default:
        return "GenericError";
    }
}

/* ---- one attempt, outside mu ---- */

struct job {
    uint64_t item;
    char sub[EG_NAME_MAX + 1];
    enum eg_dest dest;
    enum eg_item_state state;
    enum eg_schema schema;
    char url[EG_URL_MAX];
    char secret[EG_SECRET_MAX];
    char secret_header[64];
    char account[25], target[64];
    int64_t queue_ttl;
    char *text;
    char event_id[EG_ID_MAX + 1];
    char data_version[32];
    int attempts;
    int64_t publish_ms, last_attempt;
    char last_outcome[40];
    long last_status;
    char dl_reason[64];
    /* results */
    long status;
    enum clc_err rc;
    char outcome[40];
    char why[160];
};

static void upper(char *dst, size_t n, const char *src)
{
    size_t i = 0;

    for (; src[i] && i + 1 < n; i++)
        dst[i] = (src[i] >= 'a' && src[i] <= 'z') ? (char)(src[i] - 32) : src[i];
    dst[i] = '\0';
}

static void attempt_webhook(struct clc_http *http, struct job *j)
{
    struct clc_errinfo ei = {0};
    char h_name[EG_NAME_MAX + 40], h_count[48], h_dv[64], h_secret[EG_SECRET_MAX + 70];
    char up[EG_NAME_MAX + 1];
    const char *headers[8];
    size_t nh = 0, len = strlen(j->text);
    char *body = malloc(len + 3);

    if (body == NULL) {
        j->rc = CLC_ERR_NOMEM;
        snprintf(j->outcome, sizeof j->outcome, "GenericError");
        return;
    }
    upper(up, sizeof up, j->sub);
    snprintf(h_name, sizeof h_name, "aeg-subscription-name: %s", up);
    snprintf(h_count, sizeof h_count, "aeg-delivery-count: %d", j->attempts);
    headers[nh++] = "aeg-event-type: Notification";
    headers[nh++] = h_name;
    headers[nh++] = h_count;
    if (j->schema == EG_SCHEMA_EVENTGRID) {
        snprintf(h_dv, sizeof h_dv, "aeg-data-version: %s", j->data_version);
        headers[nh++] = h_dv;
        headers[nh++] = "aeg-metadata-version: 1";
        /* Event Grid schema: always an array, here of one. */
        body[0] = '[';
        memcpy(body + 1, j->text, len);
        body[len + 1] = ']';
        body[len + 2] = '\0';
        len += 2;
    } else {
        headers[nh++] = "aeg-metadata-version: 1.0";
        memcpy(body, j->text, len + 1);
    }
    if (j->secret[0] != '\0') {
        snprintf(h_secret, sizeof h_secret, "%s: %s", j->secret_header, j->secret);
        headers[nh++] = h_secret;
    }
    headers[nh] = NULL;
    j->rc =
        eg_post(http, j->url, headers,
                j->schema == EG_SCHEMA_EVENTGRID ? "application/json; charset=utf-8"
                                                 : "application/cloudevents+json; charset=utf-8",
                body, len, &j->status, NULL, &ei);
    OPENSSL_cleanse(h_secret, sizeof h_secret);
    free(body);
    snprintf(j->outcome, sizeof j->outcome, "%s", outcome_of(j->status, j->rc));
    if (j->rc != CLC_OK)
        snprintf(j->why, sizeof j->why, "%.150s", ei.msg);
}

static void attempt_queue(struct eg_svc *svc, struct job *j)
{
    struct clc_errinfo ei = {0};
    char *b64 = NULL;
    size_t n = 0;
    int64_t ttl = j->queue_ttl == 0 ? EMU_QUEUE_DEFAULT_TTL : j->queue_ttl;

    /* One message per event: base64 of the single event's JSON. */
    if (clc_b64_encode(j->text, strlen(j->text), &b64, &n) != CLC_OK) {
        j->rc = CLC_ERR_NOMEM;
        j->status = 500;
    } else {
        j->rc = emu_queue_put_message(svc->e, j->account, j->target, b64, n, ttl, &ei);
        j->status = j->rc == CLC_OK              ? 201
                    : j->rc == CLC_ERR_NOT_FOUND ? 404
                    : j->rc == CLC_ERR_LIMIT     ? 413
                                                 : 500;
        if (j->rc != CLC_OK)
            snprintf(j->why, sizeof j->why, "%.150s", ei.msg);
    }
    free(b64);
    /* The status stands for the in-process answer; the outcome follows it. */
    snprintf(j->outcome, sizeof j->outcome, "%s", outcome_of(j->status, CLC_OK));
    j->rc = CLC_OK;
}

static int add_dl_fields(cJSON *ev, const struct job *j)
{
    int ce = j->schema == EG_SCHEMA_CLOUDEVENTS;
    char pub[40], last[40];

    eg_time_str(j->publish_ms, pub);
    eg_time_str(j->last_attempt * 1000, last);
    return clc_json_add_str(ev, ce ? "deadletterreason" : "deadLetterReason", j->dl_reason) ==
               CLC_OK &&
           clc_json_add_int(ev, ce ? "deliveryattempts" : "deliveryAttempts", j->attempts) ==
               CLC_OK &&
           clc_json_add_str(ev, ce ? "lastdeliveryoutcome" : "lastDeliveryOutcome",
                            j->last_outcome) == CLC_OK &&
           clc_json_add_int(ev, ce ? "lasthttpstatuscode" : "lastHttpStatusCode", j->last_status) ==
               CLC_OK &&
           clc_json_add_str(ev, ce ? "publishtime" : "publishTime", pub) == CLC_OK &&
           clc_json_add_str(ev, ce ? "lastdeliveryattempttime" : "lastDeliveryAttemptTime",
                            j->last_attempt ? last : "") == CLC_OK;
}

/* {SUBSCRIPTION-NAME-UPPER}/{yyyy}/{M}/{d}/{H}/{guid}.json, UTC, no padding. */
static void dl_blob_name(const char *sub, int64_t now, char *out, size_t n)
{
    time_t t = (time_t)now;
    struct tm tm;
    char up[EG_NAME_MAX + 1], id[37];

    gmtime_r(&t, &tm);
    upper(up, sizeof up, sub);
    clc_rand_uuid(id);
    snprintf(out, n, "%s/%d/%d/%d/%d/%s.json", up, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, id);
}

static void attempt_deadletter(struct eg_svc *svc, struct job *j)
{
    struct clc_errinfo ei = {0};
    cJSON *arr = cJSON_CreateArray(), *ev = NULL;
    char name[EG_NAME_MAX + 96];
    char *text = NULL;

    j->rc = CLC_ERR_NOMEM;
    if (arr == NULL ||
        clc_json_parse(j->text, strlen(j->text), EG_EVENT_MAX * 2, &ev, &ei) != CLC_OK) {
        snprintf(j->why, sizeof j->why, "the event does not parse back: %.120s", ei.msg);
        goto out;
    }
    if (!add_dl_fields(ev, j) || !cJSON_AddItemToArray(arr, ev))
        goto out;
    ev = NULL;
    text = clc_json_print(arr);
    if (text == NULL)
        goto out;
    dl_blob_name(j->sub, emu_now(svc->e), name, sizeof name);
    j->rc = emu_blob_put(svc->e, j->account, j->target, name, text, strlen(text),
                         "application/json", &ei);
    if (j->rc != CLC_OK)
        snprintf(j->why, sizeof j->why, "%.150s", ei.msg);
    else
        snprintf(j->why, sizeof j->why, "%s", name);
out:
    free(text);
    cJSON_Delete(ev);
    cJSON_Delete(arr);
}

/* ---- decisions, under mu ---- */

static struct eg_item *item_by_id(struct eg_svc *svc, uint64_t id, struct eg_item ***link)
{
    struct eg_item **pp = &svc->items;

    for (; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            if (link != NULL)
                *link = pp;
            return *pp;
        }
    return NULL;
}

static void item_remove(struct eg_svc *svc, struct eg_item **link)
{
    struct eg_item *it = *link;

    *link = it->next;
    eg_item_free(it);
    svc->nitems--;
    svc->dirty = 1;
}

/* The event leaves delivery: to the dead-letter container when there is
 * one, else it is dropped (Azure drops what it cannot dead-letter). */
static void to_deadletter(struct eg_svc *svc, struct eg_sub *s, struct eg_item **link,
                          const char *reason, int64_t now)
{
    struct eg_item *it = *link;

    if (s->dl_account[0] == '\0') {
        s->dropped++;
        eg_hist_add(s, now, "dropped", it->event_id, 0, it->last_status, reason);
        clc_log(CLC_LOG_INFO, "emu.eventgrid.dropped", CLC_LS("subscription", s->name),
                CLC_LS("event", it->event_id), CLC_LS("reason", reason));
        item_remove(svc, link);
        return;
    }
    it->state = EG_ITEM_DEADLETTER;
    snprintf(it->dl_reason, sizeof it->dl_reason, "%s", reason);
    it->dl_deadline = now + EG_DEADLETTER_WINDOW_S;
    /* Azure writes about five minutes later; the emulator writes at once so
     * tests need not advance the clock for it. */
    it->due = now;
    svc->dirty = 1;
}

static const char *no_retry_reason(enum eg_dest dest, long status)
{
    switch (status) {
    case 400:
        return "UndeliverableDueToHttpBadRequest";
    case 401:
        return dest == EG_DEST_WEBHOOK ? "UndeliverableDueToHttpUnauthorized" : NULL;
    case 403:
        return "UndeliverableDueToHttpForbidden";
    case 413:
        return "UndeliverableDueToHttpRequestEntityTooLarge";
    default:
        return NULL;
    }
}

static void apply_delivery(struct eg_svc *svc, struct job *j, int64_t now)
{
    struct eg_item **link = NULL, *it = item_by_id(svc, j->item, &link);
    struct eg_sub *s = eg_sub_find(svc, j->sub);
    const char *reason;
    int64_t deadline;

    if (it == NULL)
        return; /* reset or the subscription went away meanwhile */
    it->busy = 0;
    if (s == NULL) {
        item_remove(svc, link);
        return;
    }
    it->attempts++;
    it->last_attempt = now;
    it->last_status = j->status;
    snprintf(it->last_outcome, sizeof it->last_outcome, "%s", j->outcome);
    s->attempts++;
    eg_hist_add(s, now, "delivery", it->event_id, it->attempts, j->status, j->outcome);
    svc->dirty = 1;
    if (j->rc == CLC_OK && j->status >= 200 && j->status <= 204) {
        s->delivered++;
        item_remove(svc, link);
        return;
    }
    clc_log(CLC_LOG_DEBUG, "emu.eventgrid.attempt_failed", CLC_LS("subscription", s->name),
            CLC_LS("event", it->event_id), CLC_LI("status", j->status),
            CLC_LS("outcome", j->outcome), CLC_LS("detail", j->why));
    reason = j->rc == CLC_OK ? no_retry_reason(s->dest, j->status) : NULL;
    if (reason != NULL) {
        to_deadletter(svc, s, link, reason, now);
        return;
    }
    if (it->attempts >= s->max_attempts) {
        to_deadletter(svc, s, link, "MaxDeliveryAttemptsExceeded", now);
        return;
    }
    deadline = it->publish_ms / 1000 + s->ttl_min * 60;
    it->due = now + eg_retry_delay(it->attempts);
    /* The TTL ends delivery when it comes first. */
    if (it->due > deadline)
        it->due = deadline;
}

static void apply_deadletter(struct eg_svc *svc, struct job *j, int64_t now)
{
    struct eg_item **link = NULL, *it = item_by_id(svc, j->item, &link);
    struct eg_sub *s = eg_sub_find(svc, j->sub);

    if (it == NULL)
        return;
    it->busy = 0;
    if (s == NULL) {
        item_remove(svc, link);
        return;
    }
    if (j->rc == CLC_OK) {
        s->dead_lettered++;
        svc->dl_written++;
        eg_hist_add(s, now, "deadletter", it->event_id, it->attempts, it->last_status,
                    it->dl_reason);
        clc_log(CLC_LOG_INFO, "emu.eventgrid.dead_lettered", CLC_LS("subscription", s->name),
                CLC_LS("event", it->event_id), CLC_LS("reason", it->dl_reason),
                CLC_LS("blob", j->why));
        item_remove(svc, link);
    } else if (now >= it->dl_deadline) {
        s->dropped++;
        svc->dl_lost++;
        eg_hist_add(s, now, "dropped", it->event_id, it->attempts, it->last_status,
                    "DeadLetterDestinationUnavailable");
        clc_log(CLC_LOG_WARN, "emu.eventgrid.dead_letter_lost", CLC_LS("subscription", s->name),
                CLC_LS("event", it->event_id), CLC_LS("reason", j->why));
        item_remove(svc, link);
    } else {
        it->due = now + DL_RETRY_S;
        svc->dirty = 1;
    }
}

/* Picks the earliest due item and copies what the attempt needs. */
static int pick(struct eg_svc *svc, int64_t now, struct job *j)
{
    struct eg_item *best = NULL;
    struct eg_sub *s = NULL;

    for (struct eg_item *it = svc->items; it != NULL; it = it->next) {
        if (it->busy || it->due > now || (best != NULL && it->due >= best->due))
            continue;
        best = it;
    }
    while (best != NULL) {
        struct eg_item **link = NULL;
        s = eg_sub_find(svc, best->sub);
        if (s == NULL) {
            item_by_id(svc, best->id, &link);
            item_remove(svc, link);
            return pick(svc, now, j);
        }
        if (best->state == EG_ITEM_DELIVER && now >= best->publish_ms / 1000 + s->ttl_min * 60) {
            item_by_id(svc, best->id, &link);
            to_deadletter(svc, s, link, "TimeToLiveExceeded", now);
            return pick(svc, now, j);
        }
        break;
    }
    if (best == NULL)
        return 0;
    memset(j, 0, sizeof *j);
    j->text = strdup(best->text);
    if (j->text == NULL)
        return 0;
    best->busy = 1;
    j->item = best->id;
    snprintf(j->sub, sizeof j->sub, "%s", s->name);
    j->dest = s->dest;
    j->state = best->state;
    j->schema = best->schema;
    snprintf(j->url, sizeof j->url, "%s", s->url);
    snprintf(j->secret, sizeof j->secret, "%s", s->secret);
    snprintf(j->secret_header, sizeof j->secret_header, "%s", s->secret_header);
    if (best->state == EG_ITEM_DEADLETTER) {
        snprintf(j->account, sizeof j->account, "%s", s->dl_account);
        snprintf(j->target, sizeof j->target, "%s", s->dl_container);
    } else {
        snprintf(j->account, sizeof j->account, "%s", s->account);
        snprintf(j->target, sizeof j->target, "%s", s->queue);
    }
    j->queue_ttl = s->queue_ttl;
    snprintf(j->event_id, sizeof j->event_id, "%s", best->event_id);
    snprintf(j->data_version, sizeof j->data_version, "%s", best->data_version);
    j->attempts = best->attempts;
    j->publish_ms = best->publish_ms;
    j->last_attempt = best->last_attempt;
    snprintf(j->last_outcome, sizeof j->last_outcome, "%s", best->last_outcome);
    j->last_status = best->last_status;
    snprintf(j->dl_reason, sizeof j->dl_reason, "%s", best->dl_reason);
    return 1;
}

/* ---- the event log ---- */

static void ingest_log(struct eg_svc *svc)
{
    struct clc_errinfo ei = {0};

    for (int round = 0; round < 20; round++) {
        cJSON *arr = NULL;
        const cJSON *it;
        int64_t last = 0, oldest = 0, after;
        int n = 0, full = 0;

        pthread_mutex_lock(&svc->mu);
        after = svc->log_after;
        pthread_mutex_unlock(&svc->mu);
        if (emu_events_list(svc->e, after, EMU_EVENTS_LIST_MAX, &arr, &last, &oldest, &ei) !=
            CLC_OK) {
            clc_log(CLC_LOG_ERROR, "emu.eventgrid.log_read_failed", CLC_LS("reason", ei.msg));
            return;
        }
        pthread_mutex_lock(&svc->mu);
        if (oldest > after + 1 && svc->log_after == after) {
            svc->log_lost += oldest - after - 1;
            clc_log(CLC_LOG_WARN, "emu.eventgrid.log_events_lost",
                    CLC_LI("count", oldest - after - 1));
        }
        cJSON_ArrayForEach(it, arr)
        {
            const cJSON *seq = cJSON_GetObjectItemCaseSensitive(it, "sequence");
            const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "event");
            const cJSON *topic = cJSON_GetObjectItemCaseSensitive(ev, "topic");
            size_t added = 0;
            n++;
            if (eg_fanout(svc, cJSON_IsString(topic) ? topic->valuestring : NULL, ev,
                          EG_SCHEMA_EVENTGRID, emu_now_ms(svc->e), &added, &ei) == CLC_ERR_LIMIT) {
                /* Left in the log: read again once deliveries make room. */
                full = 1;
                break;
            }
            svc->log_after = (int64_t)seq->valuedouble;
        }
        pthread_mutex_unlock(&svc->mu);
        cJSON_Delete(arr);
        if (full || n < EMU_EVENTS_LIST_MAX)
            return;
    }
}

/* ---- the worker ---- */

static void run_pass(struct eg_svc *svc, struct clc_http *http)
{
    struct job j;
    int budget = PASS_BUDGET;

    ingest_log(svc);
    eg_handshakes_run(svc, http);
    while (budget-- > 0) {
        int64_t now = emu_now(svc->e);
        int got;

        pthread_mutex_lock(&svc->mu);
        got = !svc->stop && pick(svc, now, &j);
        pthread_mutex_unlock(&svc->mu);
        if (!got)
            return;
        if (j.state == EG_ITEM_DEADLETTER)
            attempt_deadletter(svc, &j);
        else if (j.dest == EG_DEST_WEBHOOK)
            attempt_webhook(http, &j);
        else
            attempt_queue(svc, &j);
        /* The attempt's time is when it was made, by the emulator clock. */
        pthread_mutex_lock(&svc->mu);
        if (j.state == EG_ITEM_DEADLETTER)
            apply_deadletter(svc, &j, now);
        else
            apply_delivery(svc, &j, now);
        pthread_mutex_unlock(&svc->mu);
        free(j.text);
        OPENSSL_cleanse(j.secret, sizeof j.secret);
    }
    /* More is due than one pass takes: go round again. */
    eg_wake(svc);
}

static void *worker_main(void *arg)
{
    struct eg_svc *svc = arg;
    struct clc_errinfo ei = {0};
    struct clc_http *http = NULL;
    struct clc_http_opts ho = {
        .ca_bundle = emu_ca_bundle(svc->e),
        .connect_timeout_ms = EG_ATTEMPT_TIMEOUT_MS,
        .timeout_ms = EG_ATTEMPT_TIMEOUT_MS,
        .max_response_bytes = RESPONSE_MAX,
        .user_agent = "certlc-emulator-eventgrid",
    };

    if (clc_http_new(&ho, &http, &ei) != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.eventgrid.worker_failed", CLC_LS("reason", ei.msg));
        return NULL;
    }
    pthread_mutex_lock(&svc->mu);
    while (!svc->stop) {
        if (!svc->wake) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += 1;
            /* Ticks wake it too; the timeout only bounds a lost wake-up. */
            pthread_cond_timedwait(&svc->cond, &svc->mu, &until);
        }
        if (svc->stop)
            break;
        svc->wake = 0;
        pthread_mutex_unlock(&svc->mu);
        run_pass(svc, http);
        eg_store_flush(svc);
        pthread_mutex_lock(&svc->mu);
    }
    pthread_mutex_unlock(&svc->mu);
    clc_http_free(http);
    return NULL;
}

enum clc_err eg_worker_start(struct eg_svc *svc, struct clc_errinfo *ei)
{
    if (pthread_create(&svc->worker, NULL, worker_main, svc) != 0)
        return clc_errf(ei, CLC_ERR_INTERNAL, "eventgrid: cannot start the delivery thread");
    svc->worker_running = 1;
    return CLC_OK;
}

void eg_worker_stop(struct eg_svc *svc)
{
    if (!svc->worker_running)
        return;
    pthread_mutex_lock(&svc->mu);
    svc->stop = 1;
    pthread_cond_signal(&svc->cond);
    pthread_mutex_unlock(&svc->mu);
    pthread_join(svc->worker, NULL);
    svc->worker_running = 0;
}
