/* The webhook validation handshake: the SubscriptionValidationEvent the
 * worker POSTs (a subscription delivers only after a 200 carrying the right
 * validationResponse), and the validationUrl this service serves for manual
 * validation (a GET within five minutes activates the subscription). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/emu.h"
#include "emulator/eventgrid.h"
#include "emulator/server.h"
#include "emulator/state.h"
#include "net/http.h"

#define VALIDATION_API "2018-05-01-preview"

void eg_sub_begin(struct eg_svc *svc, struct eg_sub *s, int64_t now)
{
    s->vbusy = 0;
    s->vattempts = 0;
    s->vfirst = now;
    s->vnext = now;
    s->vdeadline = 0;
    s->vcode[0] = s->vtoken[0] = '\0';
    if (s->dest != EG_DEST_WEBHOOK) {
        /* Azure resources need no handshake. */
        s->state = EG_SUB_ACTIVE;
    } else {
        s->state = EG_SUB_CREATING;
        clc_rand_uuid(s->vcode);
        clc_rand_hex(s->vtoken, 16);
    }
    svc->dirty = 1;
}

struct hs {
    char name[EG_NAME_MAX + 1];
    char url[EG_URL_MAX];
    char secret[EG_SECRET_MAX];
    char secret_header[64];
    char vcode[37], vtoken[33];
    char topic_id[EG_NAME_MAX + 256];
    int attempts;
};

static void topic_id_of(struct eg_svc *svc, const char *topic, char *out, size_t n)
{
    if (eg_topic_find(svc, topic) != NULL)
        eg_topic_resource(topic, out, n);
    else
        snprintf(out, n,
                 "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
                 "certlc-emulator/providers/Microsoft.KeyVault/vaults/%s",
                 topic);
}

/* Finds a due handshake (and fails manual validations that ran out). */
static int pick(struct eg_svc *svc, int64_t now, struct hs *h)
{
    for (size_t i = 0; i < svc->nsubs; i++) {
        struct eg_sub *s = svc->subs[i];
        if (s->state == EG_SUB_AWAITING_MANUAL && now >= s->vdeadline) {
            s->state = EG_SUB_FAILED;
            eg_hist_add(s, now, "handshake", "", s->vattempts, 0, "ValidationUrlNotVisited");
            svc->dirty = 1;
        }
    }
    for (size_t i = 0; i < svc->nsubs; i++) {
        struct eg_sub *s = svc->subs[i];
        if (s->dest != EG_DEST_WEBHOOK || s->state != EG_SUB_CREATING || s->vbusy || s->vnext > now)
            continue;
        memset(h, 0, sizeof *h);
        snprintf(h->name, sizeof h->name, "%s", s->name);
        snprintf(h->url, sizeof h->url, "%s", s->url);
        snprintf(h->secret, sizeof h->secret, "%s", s->secret);
        snprintf(h->secret_header, sizeof h->secret_header, "%s", s->secret_header);
        snprintf(h->vcode, sizeof h->vcode, "%s", s->vcode);
        snprintf(h->vtoken, sizeof h->vtoken, "%s", s->vtoken);
        topic_id_of(svc, s->topic, h->topic_id, sizeof h->topic_id);
        h->attempts = s->vattempts;
        s->vbusy = 1;
        return 1;
    }
    return 0;
}

static char *validation_body(struct eg_svc *svc, const struct hs *h, int64_t now_ms)
{
    cJSON *arr = cJSON_CreateArray(), *ev = cJSON_CreateObject(), *data = NULL;
    char id[37], when[40], t[40], url[EG_NAME_MAX + 400];
    char *out = NULL;

    if (arr == NULL || ev == NULL || !cJSON_AddItemToArray(arr, ev)) {
        cJSON_Delete(ev);
        goto out;
    }
    clc_rand_uuid(id);
    eg_time_str(now_ms, when);
    snprintf(t, sizeof t, "%.19sZ", when);
    snprintf(url, sizeof url, "%s/eventsubscriptions/%s/validate?id=%s&t=%s&apiVersion=%s&token=%s",
             svc->base_url, h->name, h->vcode, t, VALIDATION_API, h->vtoken);
    data = cJSON_AddObjectToObject(ev, "data");
    if (data == NULL || clc_json_add_str(ev, "id", id) != CLC_OK ||
        clc_json_add_str(ev, "topic", h->topic_id) != CLC_OK ||
        clc_json_add_str(ev, "subject", "") != CLC_OK ||
        clc_json_add_str(ev, "eventType", "Microsoft.EventGrid.SubscriptionValidationEvent") !=
            CLC_OK ||
        clc_json_add_str(ev, "eventTime", when) != CLC_OK ||
        clc_json_add_str(ev, "metadataVersion", "1") != CLC_OK ||
        clc_json_add_str(ev, "dataVersion", "1") != CLC_OK ||
        clc_json_add_str(data, "validationCode", h->vcode) != CLC_OK ||
        clc_json_add_str(data, "validationUrl", url) != CLC_OK)
        goto out;
    out = clc_json_print(arr);
out:
    cJSON_Delete(arr);
    return out;
}

/* 1 = the right code, -1 = a validationResponse with another code, 0 = none. */
static int check_answer(const char *body, const char *code)
{
    cJSON *j = NULL;
    const cJSON *v;
    int r = 0;

    if (body == NULL || clc_json_parse(body, strlen(body), 64 * 1024, &j, NULL) != CLC_OK)
        return 0;
    v = cJSON_GetObjectItemCaseSensitive(j, "validationResponse");
    if (cJSON_IsString(v))
        r = strcasecmp(v->valuestring, code) == 0 ? 1 : -1;
    cJSON_Delete(j);
    return r;
}

static void apply(struct eg_svc *svc, const struct hs *h, enum clc_err rc, long status,
                  const char *body, int64_t now)
{
    struct eg_sub *s = eg_sub_find(svc, h->name);
    int answer;

    if (s == NULL || strcmp(s->vcode, h->vcode) != 0)
        return; /* replaced or deleted meanwhile */
    s->vbusy = 0;
    if (s->state != EG_SUB_CREATING)
        return; /* validated through the URL while we waited */
    s->vattempts++;
    svc->dirty = 1;
    answer = rc == CLC_OK && status == 200 ? check_answer(body, h->vcode) : 0;
    if (answer == 1) {
        s->state = EG_SUB_ACTIVE;
        eg_hist_add(s, now, "handshake", "", s->vattempts, status, "Succeeded");
        clc_log(CLC_LOG_INFO, "emu.eventgrid.validated", CLC_LS("subscription", s->name));
    } else if (answer == -1) {
        s->state = EG_SUB_FAILED;
        eg_hist_add(s, now, "handshake", "", s->vattempts, status, "InvalidValidationResponse");
    } else if (rc == CLC_OK && status == 200) {
        s->state = EG_SUB_AWAITING_MANUAL;
        s->vdeadline = now + EG_MANUAL_WINDOW_S;
        eg_hist_add(s, now, "handshake", "", s->vattempts, status, "AwaitingManualAction");
    } else {
        /* Azure fails the creation here; the emulator keeps trying so that a
         * receiver started after the emulator still gets validated. */
        const char *o = rc == CLC_ERR_TIMEOUT ? "TimedOut"
                        : rc != CLC_OK        ? "GenericError"
                                              : "UnexpectedStatus";
        eg_hist_add(s, now, "handshake", "", s->vattempts, status, o);
        if (now - s->vfirst >= EG_HANDSHAKE_WINDOW_S)
            s->state = EG_SUB_FAILED;
        else
            s->vnext = now + eg_retry_delay(s->vattempts);
    }
}

void eg_handshakes_run(struct eg_svc *svc, struct clc_http *http)
{
    for (int guard = 0; guard < EG_MAX_SUBS; guard++) {
        struct clc_errinfo ei = {0};
        struct hs h;
        char up[EG_NAME_MAX + 1], h_name[EG_NAME_MAX + 40], h_count[48];
        char h_secret[EG_SECRET_MAX + 70];
        const char *headers[8];
        size_t nh = 0;
        char *body = NULL, *answer = NULL;
        long status = 0;
        enum clc_err rc;
        int64_t now = emu_now(svc->e);
        int got;

        pthread_mutex_lock(&svc->mu);
        got = !svc->stop && pick(svc, now, &h);
        pthread_mutex_unlock(&svc->mu);
        if (!got)
            return;
        for (size_t i = 0; i < sizeof up - 1 && h.name[i]; i++)
            up[i] = (h.name[i] >= 'a' && h.name[i] <= 'z') ? (char)(h.name[i] - 32) : h.name[i];
        up[strlen(h.name) < sizeof up ? strlen(h.name) : sizeof up - 1] = '\0';
        snprintf(h_name, sizeof h_name, "aeg-subscription-name: %s", up);
        snprintf(h_count, sizeof h_count, "aeg-delivery-count: %d", h.attempts);
        headers[nh++] = "aeg-event-type: SubscriptionValidation";
        headers[nh++] = h_name;
        headers[nh++] = h_count;
        headers[nh++] = "aeg-data-version: 1";
        headers[nh++] = "aeg-metadata-version: 1";
        if (h.secret[0] != '\0') {
            snprintf(h_secret, sizeof h_secret, "%s: %s", h.secret_header, h.secret);
            headers[nh++] = h_secret;
        }
        headers[nh] = NULL;
        body = validation_body(svc, &h, emu_now_ms(svc->e));
        rc = body == NULL ? clc_errf(&ei, CLC_ERR_NOMEM, "out of memory")
                          : eg_post(http, h.url, headers, "application/json; charset=utf-8", body,
                                    strlen(body), &status, &answer, &ei);
        if (h.secret[0] != '\0')
            OPENSSL_cleanse(h_secret, sizeof h_secret);
        OPENSSL_cleanse(h.secret, sizeof h.secret);
        pthread_mutex_lock(&svc->mu);
        apply(svc, &h, rc, status, answer, now);
        pthread_mutex_unlock(&svc->mu);
        free(body);
        free(answer);
    }
}

/* GET /eventsubscriptions/{name}/validate?id=..&t=..&apiVersion=..&token=.. */
void eg_h_validate(struct emu_req *r)
{
    struct eg_svc *svc = r->svc_ctx;
    const char *name = emu_req_param(r, "name");
    char id[64], token[64];
    struct eg_sub *s;
    int64_t now = emu_now(r->emu);
    int status = 200;
    const char *msg = "Webhook successfully validated as a part of the Event Grid subscription "
                      "creation";

    if (!emu_req_query(r, "id", id, sizeof id) || !emu_req_query(r, "token", token, sizeof token)) {
        eg_reply_error(r, 400, "BadRequest", "InvalidValidationRequest",
                       "the validation URL needs 'id' and 'token'");
        return;
    }
    pthread_mutex_lock(&svc->mu);
    s = name ? eg_sub_find(svc, name) : NULL;
    if (s == NULL || strlen(token) != strlen(s->vtoken) || s->vtoken[0] == '\0' ||
        CRYPTO_memcmp(token, s->vtoken, strlen(token)) != 0 || strcasecmp(id, s->vcode) != 0) {
        status = 404;
        msg = "no pending validation matches this URL";
    } else if (s->state == EG_SUB_ACTIVE) {
        /* A repeated GET of a used URL changes nothing. */
    } else if (s->state == EG_SUB_FAILED ||
               (s->state == EG_SUB_AWAITING_MANUAL && now >= s->vdeadline)) {
        status = 400;
        msg = "the validation URL has expired";
    } else {
        s->state = EG_SUB_ACTIVE;
        eg_hist_add(s, now, "handshake", "", s->vattempts, 200, "ValidatedByUrl");
        svc->dirty = 1;
        clc_log(CLC_LOG_INFO, "emu.eventgrid.validated", CLC_LS("subscription", s->name),
                CLC_LS("by", "validationUrl"));
    }
    pthread_mutex_unlock(&svc->mu);
    if (status != 200) {
        eg_reply_error(r, status, status == 404 ? "NotFound" : "BadRequest",
                       status == 404 ? "ValidationNotFound" : "ValidationExpired", "%s", msg);
        return;
    }
    eg_store_flush(svc);
    emu_reply(r, 200, "text/plain; charset=utf-8", msg, strlen(msg), NULL);
}
