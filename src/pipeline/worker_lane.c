/* One worker thread's share of the work: its own queue, Key Vault and CA
 * clients, the lease on the message in hand (extended between steps), and
 * what each renewal outcome means for the message: delete, keep with its
 * state for later, or move to the poison queue with a failure notice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "pipeline/worker_int.h"

static int64_t now_s(const struct clc_worker *w)
{
    return clc_clock_now(w->o.clock);
}

enum clc_err worker_queue_client(struct clc_worker *w, struct clc_queue **out,
                                 struct clc_errinfo *ei)
{
    struct clc_storage_opts so = {.endpoint = w->o.set->queue_url,
                                  .cred = w->o.cred,
                                  .http = w->o.http,
                                  .retry = w->o.retry,
                                  .clock = w->o.clock};
    return clc_queue_new(&so, out, ei);
}

enum clc_err worker_lane_init(struct clc_worker *w, struct worker_lane *l, struct clc_errinfo *ei)
{
    memset(l, 0, sizeof *l);
    l->w = w;
    l->kv = calloc(w->o.set->nvaults ? w->o.set->nvaults : 1, sizeof *l->kv);
    if (!l->kv)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return worker_queue_client(w, &l->q, ei);
}

void worker_lane_cleanup(struct worker_lane *l)
{
    if (!l->w)
        return;
    for (size_t i = 0; l->kv && i < l->w->o.set->nvaults; i++)
        clc_kv_free(l->kv[i]);
    free(l->kv);
    for (size_t i = 0; i < l->ncas; i++)
        clc_ca_free(l->cas[i].ca);
    free(l->cas);
    clc_queue_free(l->q);
    clc_queue_lease_cleanup(&l->lease);
    memset(l, 0, sizeof *l);
}

/* ---- what clc_renew_run asks of the worker ---- */

static enum clc_err env_kv(void *ctx, const struct clc_renew_vault *v, struct clc_kv **out,
                           struct clc_errinfo *ei)
{
    struct worker_lane *l = ctx;
    const struct clc_renew_settings *set = l->w->o.set;
    size_t i = (size_t)(v - set->vaults);
    if (i >= set->nvaults)
        return clc_errf(ei, CLC_ERR_INTERNAL, "vault outside the settings");
    if (!l->kv[i]) {
        struct clc_kv_opts o = {.vault_url = v->url,
                                .vault_name = v->name,
                                .api_version = set->kv_api_version,
                                .disable_challenge_resource_verification = !set->kv_verify_resource,
                                .retry = l->w->o.retry};
        enum clc_err rc = clc_kv_new(&o, l->w->o.http, l->w->o.auth, &l->kv[i], ei);
        if (rc != CLC_OK)
            return rc;
    }
    *out = l->kv[i];
    return CLC_OK;
}

static enum clc_err env_ca(void *ctx, const char *name, struct clc_ca **out, struct clc_errinfo *ei)
{
    struct worker_lane *l = ctx;
    for (size_t i = 0; i < l->ncas; i++)
        if (strcmp(l->cas[i].name, name) == 0) {
            *out = l->cas[i].ca;
            return CLC_OK;
        }
    if (l->ncas >= 64)
        return clc_errf(ei, CLC_ERR_LIMIT, "more than 64 CAs in use");
    struct worker_ca *c = realloc(l->cas, (l->ncas + 1) * sizeof *c);
    if (!c)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    l->cas = c;
    c = &l->cas[l->ncas];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    enum clc_err rc =
        clc_ca_from_config(l->w->o.cfg, name, l->w->o.clock, l->w->o.http, &c->ca, ei);
    if (rc != CLC_OK)
        return rc;
    l->ncas++;
    *out = c->ca;
    return CLC_OK;
}

static enum clc_err env_keepalive(void *ctx, struct clc_errinfo *ei)
{
    struct worker_lane *l = ctx;
    int64_t now = now_s(l->w), vis = l->w->o.set->visibility_s;
    if (now - l->lease_since < vis / 2)
        return CLC_OK;
    enum clc_err rc = clc_queue_lease_extend(l->q, &l->lease, vis, ei);
    if (rc == CLC_OK)
        l->lease_since = now;
    return rc;
}

static enum clc_err env_save(void *ctx, const struct clc_renew_state *st, int64_t visibility_s,
                             struct clc_errinfo *ei)
{
    struct worker_lane *l = ctx;
    char *text = NULL;
    size_t len = 0;
    struct clc_queue_msg *m = &l->lease.msg;
    enum clc_err rc = clc_renew_msg_build(m->text, m->text_len, st, &text, &len, ei);
    if (rc == CLC_OK)
        rc = clc_queue_update(l->q, l->lease.queue, m, visibility_s, text, len, ei);
    if (rc == CLC_OK)
        l->lease_since = now_s(l->w);
    free(text);
    return rc;
}

static void env_step_log(void *ctx, const struct clc_event *ev, const char *version,
                         enum clc_renew_step step, const char *outcome, int64_t duration_ms,
                         const char *request_id, const char *error)
{
    struct worker_lane *l = ctx;
    struct clc_worker *w = l->w;
    char when[CLC_TIME_STR_MAX];
    struct clc_errinfo ei = {0};
    if (!w->o.la)
        return;
    cJSON *row = cJSON_CreateObject();
    if (!row || clc_time_fmt_iso8601(now_s(w), when) != CLC_OK ||
        clc_json_add_str(row, "TimeGenerated", when) != CLC_OK ||
        clc_json_add_str(row, "Vault", ev->vault) != CLC_OK ||
        clc_json_add_str(row, "Certificate", ev->name) != CLC_OK ||
        clc_json_add_str(row, "Version", version ? version : "") != CLC_OK ||
        clc_json_add_str(row, "Step", clc_renew_step_name(step)) != CLC_OK ||
        clc_json_add_str(row, "Outcome", outcome) != CLC_OK ||
        clc_json_add_int(row, "DurationMs", duration_ms) != CLC_OK ||
        clc_json_add_str(row, "CaRequestId", request_id ? request_id : "") != CLC_OK ||
        clc_json_add_str(row, "Error", error ? error : "") != CLC_OK) {
        cJSON_Delete(row);
        return;
    }
    /* The client is thread-safe and keeps rows while the service is down; a
     * failure here is a full buffer, which it reports itself. */
    if (clc_la_add(w->o.la, row, &ei) != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.log_row", CLC_LS("error", ei.msg));
}

/* The Recipient tag plus renew.admin_recipients for failures. */
static enum clc_err env_notify(void *ctx, const char *tag, const struct clc_notify_renewal *r,
                               struct clc_errinfo *ei)
{
    struct worker_lane *l = ctx;
    struct clc_worker *w = l->w;
    char joined[2048];
    char **to = NULL;
    size_t n = 0, rejected = 0;
    enum clc_err rc;

    if (!w->o.notify)
        return CLC_ERR_NOT_FOUND;
    snprintf(joined, sizeof joined, "%s%s%s", tag ? tag : "",
             !r->success && w->o.set->admin_recipients ? ";" : "",
             !r->success && w->o.set->admin_recipients ? w->o.set->admin_recipients : "");
    if (!joined[0])
        return CLC_ERR_NOT_FOUND;
    rc = clc_notify_parse_recipients(joined, &to, &n, &rejected);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "recipients: %s", clc_err_name(rc));
    if (n == 0) {
        clc_notify_recipients_free(to, n);
        return CLC_ERR_NOT_FOUND;
    }
    /* No lock: the notifier is read-only after creation and each send has its
     * own connection, so lanes mail in parallel. */
    rc = clc_notify_send_renewal(w->o.notify, (const char *const *)to, n, r, ei);
    clc_notify_recipients_free(to, n);
    return rc;
}

static void make_env(struct worker_lane *l, struct clc_renew_env *env)
{
    memset(env, 0, sizeof *env);
    env->set = l->w->o.set;
    env->clock = l->w->o.clock;
    env->ctx = l;
    env->kv = env_kv;
    env->ca = env_ca;
    env->keepalive = env_keepalive;
    env->save = env_save;
    env->step_log = env_step_log;
    env->notify = env_notify;
    env->abort_after = l->w->o.abort_after;
}

/* ---- outcomes ---- */

enum clc_err worker_poison_record(const struct clc_queue_msg *m, const struct clc_event *ev,
                                  const char *reason, const char *detail, int64_t now, char **out,
                                  size_t *len, struct clc_errinfo *ei)
{
    char when[CLC_TIME_STR_MAX];
    char *msg64 = NULL, *printed = NULL;
    cJSON *o = cJSON_CreateObject();
    enum clc_err rc = CLC_ERR_NOMEM;

    *out = NULL;
    if (!o || clc_b64_encode(m->text ? m->text : "", m->text_len, &msg64, NULL) != CLC_OK ||
        clc_time_fmt_iso8601(now, when) != CLC_OK)
        goto out;
    if (clc_json_add_int(o, "certlc_poison", 1) != CLC_OK ||
        clc_json_add_str(o, "reason", reason) != CLC_OK ||
        clc_json_add_str(o, "detail", detail) != CLC_OK ||
        clc_json_add_str(o, "message_id", m->id) != CLC_OK ||
        clc_json_add_int(o, "dequeue_count", m->dequeue_count) != CLC_OK ||
        clc_json_add_str(o, "poisoned_at", when) != CLC_OK ||
        clc_json_add_str(o, "vault", ev ? ev->vault : "") != CLC_OK ||
        clc_json_add_str(o, "certificate", ev ? ev->name : "") != CLC_OK ||
        clc_json_add_str(o, "message", msg64) != CLC_OK || !(printed = clc_json_print(o)))
        goto out;
    /* base64 keeps whatever the bad message held out of the queue's XML. */
    rc = clc_b64_encode(printed, strlen(printed), out, len);
    if (rc == CLC_OK && *len > CLC_QUEUE_MAX_TEXT) {
        free(*out);
        *out = NULL;
        rc = clc_errf(ei, CLC_ERR_LIMIT, "poison record over the queue's message limit");
    }
out:
    cJSON_Delete(o);
    free(msg64);
    free(printed);
    return rc;
}

/* Parks the message in the poison queue, then deletes it from the work
 * queue. If the poison queue cannot take it, the message stays where it is. */
static enum clc_err poison(struct worker_lane *l, const struct clc_event *ev, const char *reason,
                           const char *detail, struct clc_errinfo *ei)
{
    struct clc_worker *w = l->w;
    char *rec = NULL;
    size_t len = 0;
    enum clc_err rc =
        worker_poison_record(&l->lease.msg, ev, reason, detail, now_s(w), &rec, &len, ei);
    if (rc == CLC_OK)
        rc = clc_queue_put(l->q, w->o.set->poison_queue, rec, len, 0, CLC_QUEUE_TTL_INFINITE, NULL,
                           ei);
    if (rc == CLC_ERR_NOT_FOUND) {
        /* The first poisoned message of a new deployment: make the queue. */
        rc = clc_queue_create(l->q, w->o.set->poison_queue, NULL, NULL, ei);
        if (rc == CLC_OK)
            rc = clc_queue_put(l->q, w->o.set->poison_queue, rec, len, 0, CLC_QUEUE_TTL_INFINITE,
                               NULL, ei);
    }
    free(rec);
    clc_log(rc == CLC_OK ? CLC_LOG_WARN : CLC_LOG_ERROR, "renew.poison",
            CLC_LS("message_id", l->lease.msg.id), CLC_LS("vault", ev ? ev->vault : ""),
            CLC_LS("certificate", ev ? ev->name : ""), CLC_LS("reason", reason),
            CLC_LS("detail", detail), CLC_LS("error", rc == CLC_OK ? NULL : ei->msg));
    if (rc != CLC_OK)
        return rc;
    return clc_queue_lease_complete(l->q, &l->lease, ei);
}

static int64_t backoff(const struct clc_renew_settings *set, int64_t attempt)
{
    int64_t d = set->retry_base_s;
    for (int64_t i = 1; i < attempt && d < set->retry_max_s; i++)
        d *= 2;
    return d < set->retry_max_s ? d : set->retry_max_s;
}

/* Keeps the message for later: with its state when that changed. */
static enum clc_err keep(struct worker_lane *l, const struct clc_renew_state *st, int changed,
                         int64_t delay, struct clc_errinfo *ei)
{
    if (changed) {
        enum clc_err rc = env_save(l, st, delay, ei);
        if (rc != CLC_ERR_LIMIT && rc != CLC_ERR_PARSE)
            return rc;
        /* A message that cannot carry state (not JSON) is kept as it is. */
    }
    return clc_queue_lease_release(l->q, &l->lease, delay, ei);
}

/* A message that failed too often: what the renewal learnt goes along. */
static void too_many(struct clc_renew_env *env, struct clc_renew_state *st, struct clc_event *ev,
                     struct clc_renew_result *res, int64_t attempts)
{
    const char *reason = st->notice_pending ? "notice_undeliverable" : "max_dequeue";
    res->outcome = CLC_RENEW_POISON;
    snprintf(res->reason, sizeof res->reason, "%s", reason);
    snprintf(res->detail, sizeof res->detail, "%lld failed attempts; last error: %.200s",
             (long long)attempts, st->last_error[0] ? st->last_error : "(none recorded)");
    if (!st->notice_pending)
        clc_renew_failure_notice(env, ev, st, res->detail,
                                 "the message is in the poison queue; replay it with 'certlc "
                                 "poison replay' once the cause is fixed");
}

enum clc_err worker_lane_one(struct worker_lane *l, int *got, struct clc_errinfo *ei)
{
    struct clc_worker *w = l->w;
    const struct clc_renew_settings *set = w->o.set;
    struct clc_renew_env env;
    struct clc_renew_state st;
    struct clc_renew_result res;
    struct clc_event ev;
    char reason[32];
    enum clc_err rc;

    *got = 0;
    clc_queue_lease_cleanup(&l->lease);
    rc = clc_queue_lease_take(l->q, set->queue_name, set->visibility_s, &l->lease, got, ei);
    if (rc != CLC_OK || !*got)
        return rc;
    l->lease_since = now_s(w);
    make_env(l, &env);
    struct clc_queue_msg *m = &l->lease.msg;

    /* Deliberate waits (CA pending, not due) are not failures; crashes are,
     * since they never get to write the count. */
    (void)clc_renew_msg_parse(m->text, m->text_len, NULL, &ev, &st, reason, sizeof reason, NULL);
    int64_t attempts = m->dequeue_count - st.waits;
    if (attempts > set->max_dequeue) {
        memset(&res, 0, sizeof res);
        too_many(&env, &st, &ev, &res, attempts - 1);
    } else {
        clc_renew_run(&env, m->text, m->text_len, &ev, &st, &res);
    }

    switch (res.outcome) {
    case CLC_RENEW_RENEWED:
    case CLC_RENEW_SKIPPED:
        if (res.outcome == CLC_RENEW_SKIPPED)
            clc_log(CLC_LOG_INFO, "renew.skip", CLC_LS("vault", ev.vault),
                    CLC_LS("certificate", ev.name), CLC_LS("reason", res.reason),
                    CLC_LS("detail", res.detail));
        rc = clc_queue_lease_complete(l->q, &l->lease, ei);
        break;
    case CLC_RENEW_WAITING:
        rc = res.state_changed ? keep(l, &st, 1, res.delay_s, ei) : CLC_OK;
        break;
    case CLC_RENEW_RETRY:
    case CLC_RENEW_NOTICE_RETRY:
        res.delay_s = backoff(set, attempts);
        rc = keep(l, &st, 1, res.delay_s, ei);
        break;
    case CLC_RENEW_POISON:
        rc = poison(l, &ev, res.reason, res.detail, ei);
        break;
    default: /* ABORTED (a simulated crash) and LEASE_LOST leave it alone */
        rc = CLC_OK;
        break;
    }
    if (rc != CLC_OK) {
        clc_log(clc_queue_lease_lost(rc, ei) ? CLC_LOG_WARN : CLC_LOG_ERROR, "renew.queue",
                CLC_LS("message_id", m->id), CLC_LS("outcome", clc_renew_outcome_name(res.outcome)),
                CLC_LS("error", ei->msg));
        l->sum.errors++;
    }
    l->sum.outcomes[res.outcome]++;
    l->sum.messages++;
    worker_count(w, &res, now_s(w));
    worker_flush_logs_batch(w);
    return CLC_OK;
}
