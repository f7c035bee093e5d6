/* The second half of one renewal: the pending version's CSR to the CA
 * (submit, or fetch when the message already holds a request id), every CA
 * outcome (issued, pending, denied, error), the merge of the full chain with
 * its check, the tags on the new version, and the e-mail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/x509.h>

#include "azure/queue.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/log.h"
#include "pipeline/renew_int.h"

static int save_or_stop(struct renew_run *r, int64_t visibility_s, enum clc_renew_step step)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc = r->env->save(r->env->ctx, r->st, visibility_s, &ei);
    if (rc == CLC_OK)
        return 0;
    if (clc_queue_lease_lost(rc, &ei))
        return renew_finish(r, CLC_RENEW_LEASE_LOST, "lease_lost", "%s", ei.msg);
    return renew_retry(r, step, rc, &ei, "saving state");
}

static const char *tag_of(const struct clc_kv_tags *t, const char *name)
{
    for (size_t i = 0; t && name && i < t->n; i++)
        if (strcasecmp(t->v[i].name, name) == 0)
            return t->v[i].value;
    return NULL;
}

/* Shares the pending request on the certificate (best effort), so that
 * another message for it fetches instead of submitting the CSR again. */
static void share_request(struct renew_run *r, int clear)
{
    struct clc_kv_tags tags;
    struct clc_errinfo ei = {0};
    char value[256];
    const char *now = tag_of(&r->cur.tags, r->set->pending_tag);
    enum clc_err rc;

    if (clear && !now)
        return;
    snprintf(value, sizeof value, "%s|%.100s|%.79s", r->st->csr_hash, r->st->ca, r->st->request_id);
    if (!clear && now && strcmp(now, value) == 0)
        return;
    rc = renew_carry_tags(r, &r->cur.tags, &tags, &ei);
    if (rc == CLC_OK && !clear)
        rc = clc_kv_tags_set(&tags, r->set->pending_tag, value, &ei);
    if (rc == CLC_OK) {
        struct clc_kv_update u = {.tags = &tags};
        struct clc_kv_certificate out;
        memset(&out, 0, sizeof out);
        rc = clc_kv_update_certificate(r->kv, r->ev->name, r->cur.version, &u, &out, &ei);
        clc_kv_certificate_cleanup(&out);
    }
    clc_kv_tags_cleanup(&tags);
    if (rc != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.share_request", CLC_LS("certificate", r->ev->name),
                CLC_LS("error", ei.msg));
}

static void failure_notice(struct renew_run *r, const char *what, const char *next)
{
    const char *rcpt = tag_of(&r->cur.tags, r->set->recipient_tag);
    struct clc_errinfo ei = {0};
    char attempted[300];
    snprintf(attempted, sizeof attempted, "renewal through CA %.100s, template %.127s", r->st->ca,
             r->st->template_name);
    struct clc_notify_renewal n = {.success = 0,
                                   .vault = r->ev->vault,
                                   .certificate = r->ev->name,
                                   .old_version = r->cur.version,
                                   .old_thumbprint = r->info.sha1_hex,
                                   .ca = r->st->ca,
                                   .template_name = r->st->template_name,
                                   .request_id = r->st->request_id,
                                   .error = what,
                                   .attempted = attempted,
                                   .next_step = next};
    if (r->env->notify && r->env->notify(r->env->ctx, rcpt, &n, &ei) != CLC_OK && ei.msg[0])
        clc_log(CLC_LOG_WARN, "renew.failure_notice", CLC_LS("certificate", r->ev->name),
                CLC_LS("error", ei.msg));
}

/* The CA refused: cancel the pending version so nothing waits on it, tell
 * the recipients, and park the message in the poison queue. */
static void denied(struct renew_run *r, const struct clc_ca_result *res)
{
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    char what[CLC_RENEW_ERR_MAX];

    snprintf(what, sizeof what, "CA %.60s denied request %.40s: %.40s %.100s", r->st->ca,
             res->request_id[0] ? res->request_id : "(no id)", res->code, res->reason);
    memset(&op, 0, sizeof op);
    if (clc_kv_cancel_operation(r->kv, r->ev->name, &op, &ei) != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.cancel", CLC_LS("certificate", r->ev->name),
                CLC_LS("error", ei.msg));
    clc_kv_operation_cleanup(&op);
    share_request(r, 1);
    snprintf(r->st->last_error, sizeof r->st->last_error, "%s", what);
    renew_log(r, CLC_RENEW_STEP_SUBMIT, "denied", what);
    failure_notice(r, what,
                   "nothing is retried; fix the request or template, then replay it "
                   "with 'certlc poison replay'");
    r->st->csr_hash[0] = r->st->key_hash[0] = r->st->request_id[0] = '\0';
    r->res->state_changed = 1;
    renew_finish(r, CLC_RENEW_POISON, "ca_denied", "%s", what);
}

/* Asks the CA (fetch when a request id is known). Returns the chain on
 * ISSUED, NULL with res set otherwise. */
static STACK_OF(X509) * ask_ca(struct renew_run *r)
{
    struct clc_renew_state *st = r->st;
    struct clc_ca_csr *csr = r->csr;
    struct clc_ca_result res;
    struct clc_errinfo ei = {0};
    struct clc_csr_expect want;
    STACK_OF(X509) *chain = NULL;
    enum clc_err rc;

    clc_ca_result_init(&res);
    /* Parsed when the pending operation was identified; here only if not. */
    rc = csr ? CLC_OK : clc_ca_csr_parse(r->op.csr, r->op.csr_len, &csr, &ei);
    if (rc == CLC_OK)
        r->csr = csr;
    if (rc != CLC_OK) {
        renew_log(r, CLC_RENEW_STEP_SUBMIT, "poisoned", ei.msg);
        renew_finish(r, CLC_RENEW_POISON, "bad_pending_csr", "the vault's CSR: %s", ei.msg);
        goto out;
    }
    /* The vault made the CSR from the policy we sent: check it asks for
     * what the certificate had (subject, SANs, key), as the original did not. */
    clc_kv_policy_csr_expect(&r->policy, &want);
    if (!st->adopted && (rc = clc_csr_check(clc_ca_csr_req(csr), &want, &ei)) != CLC_OK) {
        renew_log(r, CLC_RENEW_STEP_SUBMIT, "poisoned", ei.msg);
        renew_finish(r, CLC_RENEW_POISON, "csr_mismatch", "%s", ei.msg);
        goto out;
    }
    /* EST simplereenroll would need TLS client authentication with the old
     * certificate's key, which never leaves the vault: enroll afresh. */
    struct clc_ca_req req = {.csr = csr, .template_name = st->template_name, .renewal = 0};
    int64_t t = clc_mono_ms();
    if (st->request_id[0])
        rc = clc_ca_fetch(r->ca, &req, st->request_id, &res, &ei);
    else
        rc = clc_ca_submit(r->ca, &req, &res, &ei);
    r->res->ca_latency_ms = clc_mono_ms() - t;
    if (rc != CLC_OK || res.disposition == CLC_CA_ERROR) {
        if (res.retryable || clc_retry_err_retryable(rc)) {
            renew_retry(r, CLC_RENEW_STEP_SUBMIT, rc != CLC_OK ? rc : res.err, &ei,
                        st->request_id[0] ? "fetching from the CA" : "submitting to the CA");
            goto out;
        }
        snprintf(st->last_error, sizeof st->last_error, "CA %.60s: %.220s", st->ca,
                 ei.msg[0] ? ei.msg : res.reason);
        renew_log(r, CLC_RENEW_STEP_SUBMIT, "poisoned", st->last_error);
        failure_notice(r, st->last_error,
                       "not retried automatically; the pending version is "
                       "kept; replay with 'certlc poison replay' once fixed");
        r->res->state_changed = 1;
        renew_finish(r, CLC_RENEW_POISON, "ca_error", "%s", st->last_error);
        goto out;
    }
    if (res.request_id[0])
        snprintf(st->request_id, sizeof st->request_id, "%s", res.request_id);
    switch (res.disposition) {
    case CLC_CA_ISSUED:
        chain = res.chain;
        res.chain = NULL;
        st->last_error[0] = '\0';
        renew_log(r, CLC_RENEW_STEP_SUBMIT, "issued", NULL);
        /* The request id goes into the message before the merge: a restart
         * fetches the certificate instead of asking for another. */
        if ((st->request_id[0] && save_or_stop(r, r->set->visibility_s, CLC_RENEW_STEP_SUBMIT)) ||
            renew_checkpoint(r, CLC_RENEW_STEP_SUBMIT)) {
            clc_cert_chain_free(chain);
            chain = NULL;
        }
        break;
    case CLC_CA_PENDING: {
        int64_t delay = res.retry_after_s > 0 ? res.retry_after_s : r->set->pending_poll_s;
        if (delay < 10)
            delay = 10;
        if (delay > r->set->pending_poll_s)
            delay = r->set->pending_poll_s;
        st->waits++;
        st->last_error[0] = '\0';
        share_request(r, 0);
        renew_log(r, CLC_RENEW_STEP_SUBMIT, "pending", NULL);
        r->res->delay_s = delay;
        if (save_or_stop(r, delay, CLC_RENEW_STEP_SUBMIT) ||
            renew_checkpoint(r, CLC_RENEW_STEP_SUBMIT))
            break;
        renew_finish(r, CLC_RENEW_WAITING, "ca_pending", "CA %s holds request %s", st->ca,
                     st->request_id);
        break;
    }
    case CLC_CA_DENIED:
        denied(r, &res);
        break;
    default:
        renew_retry(r, CLC_RENEW_STEP_SUBMIT, CLC_ERR_INTERNAL, NULL, "unknown CA disposition");
        break;
    }
out:
    clc_ca_result_cleanup(&res);
    return chain;
}

/* 1 when the bundle's x5t is the SHA-1 of leaf. */
static int x5t_matches(const struct clc_kv_certificate *b, X509 *leaf)
{
    unsigned char md[20];
    unsigned int n = 0;
    char *want = NULL;
    int ok;
    if (!b->x5t || !X509_digest(leaf, EVP_sha1(), md, &n) ||
        clc_b64url_encode(md, n, &want, NULL) != CLC_OK)
        return 0;
    ok = strcmp(want, b->x5t) == 0;
    free(want);
    return ok;
}

static void after_merge(struct renew_run *r, const struct clc_kv_certificate *merged,
                        const struct clc_kv_tags *old_tags, const char *old_thumbprint,
                        X509 *issued);

static void merge(struct renew_run *r, STACK_OF(X509) * chain)
{
    struct clc_kv_certificate merged, latest;
    struct clc_kv_tags tags;
    struct clc_errinfo ei = {0};
    char marker[RENEW_MARKER_MAX];
    enum clc_err rc;

    memset(&merged, 0, sizeof merged);
    memset(&latest, 0, sizeof latest);
    memset(&tags, 0, sizeof tags);
    /* A message from before tokens existed: one now, saved before the merge
     * names it. */
    if (!r->st->token[0]) {
        renew_claim_token(r->st);
        if (save_or_stop(r, r->set->visibility_s, CLC_RENEW_STEP_MERGE))
            goto out;
    }
    /* The marker goes in with the merge itself: whatever happens next, the
     * new version says which message merged it. */
    renew_marker(r->st, marker);
    rc = renew_carry_tags(r, &r->cur.tags, &tags, &ei);
    if (rc == CLC_OK)
        rc = clc_kv_tags_set(&tags, r->set->pending_tag, marker, &ei);
    if (rc == CLC_OK) {
        struct clc_kv_update u = {.tags = &tags};
        rc = clc_kv_merge(r->kv, r->ev->name, chain, &u, &merged, &ei);
    }
    if (rc == CLC_ERR_FORBIDDEN || rc == CLC_ERR_CONFLICT) {
        /* Not in progress any more: merged by an earlier attempt whose
         * answer was lost, or by another message. Decide on a fresh read. */
        renew_retry(r, CLC_RENEW_STEP_MERGE, rc, &ei, "merging (operation not in progress)");
        goto out;
    }
    if (rc == CLC_ERR_INVALID || rc == CLC_ERR_PARSE || rc == CLC_ERR_HTTP) {
        snprintf(r->st->last_error, sizeof r->st->last_error, "merge refused: %.280s", ei.msg);
        renew_log(r, CLC_RENEW_STEP_MERGE, "poisoned", r->st->last_error);
        failure_notice(r, r->st->last_error,
                       "not retried automatically; the pending version is "
                       "kept for an operator");
        r->res->state_changed = 1;
        renew_finish(r, CLC_RENEW_POISON, "merge_refused", "%s", r->st->last_error);
        goto out;
    }
    if (rc != CLC_OK) {
        renew_retry(r, CLC_RENEW_STEP_MERGE, rc, &ei, "merging");
        goto out;
    }
    /* The version that landed must be the one the CA issued, and new. */
    if (!x5t_matches(&merged, sk_X509_value(chain, 0)) || !merged.version ||
        strcmp(merged.version, r->cur.version) == 0) {
        snprintf(r->st->last_error, sizeof r->st->last_error,
                 "the merged version %s is not the certificate the CA issued",
                 merged.version ? merged.version : "?");
        renew_log(r, CLC_RENEW_STEP_MERGE, "poisoned", r->st->last_error);
        r->res->state_changed = 1;
        renew_finish(r, CLC_RENEW_POISON, "merge_mismatch", "%s", r->st->last_error);
        goto out;
    }
    if (clc_kv_get_certificate(r->kv, r->ev->name, NULL, &latest, &ei) == CLC_OK &&
        latest.version && strcmp(latest.version, merged.version) != 0)
        clc_log(CLC_LOG_WARN, "renew.superseded", CLC_LS("certificate", r->ev->name),
                CLC_LS("merged", merged.version), CLC_LS("latest", latest.version));
    snprintf(r->st->merged_version, sizeof r->st->merged_version, "%s", merged.version);
    renew_log(r, CLC_RENEW_STEP_MERGE, "ok", NULL);
    if (renew_checkpoint(r, CLC_RENEW_STEP_MERGE))
        goto out;
    after_merge(r, &merged, &r->cur.tags, r->info.sha1_hex, sk_X509_value(chain, 0));
out:
    clc_kv_tags_cleanup(&tags);
    clc_kv_certificate_cleanup(&merged);
    clc_kv_certificate_cleanup(&latest);
}

void renew_issue(struct renew_run *r)
{
    STACK_OF(X509) *chain = ask_ca(r);
    if (!chain)
        return;
    merge(r, chain);
    clc_cert_chain_free(chain);
}

/* The tags the new version keeps: the old version's without certlc's own,
 * plus our marker while the notice is not out (marker = 1). */
static enum clc_err wanted_tags(struct renew_run *r, const struct clc_kv_tags *old_tags, int marker,
                                struct clc_kv_tags *out, struct clc_errinfo *ei)
{
    char m[RENEW_MARKER_MAX];
    enum clc_err rc = renew_carry_tags(r, old_tags, out, ei);
    if (rc == CLC_OK && marker) {
        renew_marker(r->st, m);
        rc = clc_kv_tags_set(out, r->set->pending_tag, m, ei);
    }
    return rc;
}

static enum clc_err put_tags(struct renew_run *r, const char *version,
                             const struct clc_kv_tags *tags, struct clc_errinfo *ei)
{
    struct clc_kv_update u = {.tags = tags};
    struct clc_kv_certificate out;
    memset(&out, 0, sizeof out);
    enum clc_err rc = clc_kv_update_certificate(r->kv, r->ev->name, version, &u, &out, ei);
    clc_kv_certificate_cleanup(&out);
    return rc;
}

/* Puts the old version's tags on the new one if the vault did not (keeping
 * the marker). *patched = 1 when it wrote them. */
static int ensure_tags(struct renew_run *r, const struct clc_kv_certificate *merged,
                       const struct clc_kv_tags *old_tags, int *patched)
{
    struct clc_kv_tags want;
    struct clc_errinfo ei = {0};
    enum clc_err rc = wanted_tags(r, old_tags, 1, &want, &ei);
    int missing = 0;

    for (size_t i = 0; rc == CLC_OK && i < want.n; i++) {
        const char *have = tag_of(&merged->tags, want.v[i].name);
        missing |= !have || strcmp(have, want.v[i].value) != 0;
    }
    if (rc == CLC_OK && missing)
        rc = put_tags(r, merged->version, &want, &ei);
    clc_kv_tags_cleanup(&want);
    if (rc != CLC_OK)
        return renew_retry(r, CLC_RENEW_STEP_TAGS, rc, &ei, "tagging the new version");
    *patched = missing;
    renew_log(r, CLC_RENEW_STEP_TAGS, missing ? "ok" : "kept", NULL);
    return renew_checkpoint(r, CLC_RENEW_STEP_TAGS);
}

/* The notice is out: the marker has done its job, and the new version keeps
 * exactly the old one's tags. Best effort: a marker left behind still names
 * this message (a later duplicate stays quiet) and is not carried to the
 * next version. */
static void drop_marker(struct renew_run *r, const struct clc_kv_certificate *merged,
                        const struct clc_kv_tags *old_tags, int patched)
{
    struct clc_kv_tags want;
    struct clc_errinfo ei = {0};
    if (!patched && !tag_of(&merged->tags, r->set->pending_tag))
        return;
    enum clc_err rc = wanted_tags(r, old_tags, 0, &want, &ei);
    if (rc == CLC_OK)
        rc = put_tags(r, merged->version, &want, &ei);
    clc_kv_tags_cleanup(&want);
    if (rc != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.drop_marker", CLC_LS("certificate", r->ev->name),
                CLC_LS("version", merged->version), CLC_LS("error", ei.msg));
}

/* Whether the vault's DER of the new version is byte for byte the certificate
 * already parsed (the CA's leaf): then that parse serves and the key is not
 * decoded a second time. */
static int same_der(X509 *x, const unsigned char *der, size_t len)
{
    unsigned char *mine = NULL;
    /* Past the size limit the vault's copy would not parse: keep that outcome. */
    int n = x && der && len <= CLC_CERT_DER_MAX ? i2d_X509(x, &mine) : -1;
    int same = n > 0 && (size_t)n == len && memcmp(mine, der, len) == 0;

    OPENSSL_free(mine);
    return same;
}

void renew_after_merge(struct renew_run *r, const struct clc_kv_certificate *merged,
                       const struct clc_kv_tags *old_tags, const char *old_thumbprint)
{
    after_merge(r, merged, old_tags, old_thumbprint, NULL);
}

/* issued: the certificate the CA answered with, or NULL when not at hand. */
static void after_merge(struct renew_run *r, const struct clc_kv_certificate *merged,
                        const struct clc_kv_tags *old_tags, const char *old_thumbprint,
                        X509 *issued)
{
    struct clc_cert_info info;
    struct clc_errinfo ei = {0};
    X509 *x = NULL;
    int patched = 0;
    enum clc_err rc;

    memset(&info, 0, sizeof info);
    snprintf(r->st->merged_version, sizeof r->st->merged_version, "%s", merged->version);
    if (!r->st->notice_pending && ensure_tags(r, merged, old_tags, &patched))
        return;
    if (same_der(issued, merged->cer, merged->cer_len))
        (void)clc_cert_info_get(issued, &info, NULL);
    else if (merged->cer && clc_cert_from_der(merged->cer, merged->cer_len, &x, NULL) == CLC_OK)
        (void)clc_cert_info_get(x, &info, NULL);
    X509_free(x);
    struct clc_notify_renewal n = {.success = 1,
                                   .vault = r->ev->vault,
                                   .certificate = r->ev->name,
                                   .old_version = r->st->old_version,
                                   .new_version = merged->version,
                                   .old_thumbprint = old_thumbprint,
                                   .new_thumbprint = info.sha1_hex[0] ? info.sha1_hex : NULL,
                                   .serial = info.serial_hex,
                                   .not_after = info.not_after,
                                   .ca = r->st->ca,
                                   .template_name = r->st->template_name,
                                   .request_id = r->st->request_id};
    rc = r->env->notify
             ? r->env->notify(r->env->ctx, tag_of(old_tags, r->set->recipient_tag), &n, &ei)
             : CLC_ERR_NOT_FOUND;
    clc_cert_info_cleanup(&info);
    if (rc != CLC_OK && rc != CLC_ERR_NOT_FOUND) {
        /* The renewal stands; only the e-mail is owed. */
        r->st->notice_pending = 1;
        snprintf(r->st->last_error, sizeof r->st->last_error, "e-mail: %.280s", ei.msg);
        r->res->state_changed = 1;
        renew_log(r, CLC_RENEW_STEP_NOTIFY, "retry", r->st->last_error);
        renew_finish(r, CLC_RENEW_NOTICE_RETRY, "notice_failed", "%s", r->st->last_error);
        return;
    }
    r->st->notice_pending = 0;
    renew_log(r, CLC_RENEW_STEP_NOTIFY, rc == CLC_OK ? "ok" : "none", NULL);
    /* A stop here (before the marker goes) sends the notice again on the
     * next attempt: the one duplicate mail a crash can still cause. */
    if (renew_checkpoint(r, CLC_RENEW_STEP_NOTIFY))
        return;
    drop_marker(r, merged, old_tags, patched);
    renew_finish(r, CLC_RENEW_RENEWED, "renewed", "%s renewed as version %s", r->ev->name,
                 merged->version);
}

void clc_renew_failure_notice(const struct clc_renew_env *env, const struct clc_event *ev,
                              const struct clc_renew_state *st, const char *what, const char *next)
{
    const struct clc_renew_vault *v = clc_renew_vault_find(env->set, ev->vault);
    struct clc_kv_certificate cur;
    struct clc_kv *kv = NULL;
    struct clc_errinfo ei = {0};
    char attempted[300];

    memset(&cur, 0, sizeof cur);
    if (v && ev->name[0] && env->kv(env->ctx, v, &kv, &ei) == CLC_OK)
        (void)clc_kv_get_certificate(kv, ev->name, NULL, &cur, &ei);
    snprintf(attempted, sizeof attempted, "renewal through CA %.100s, template %.127s",
             st->ca[0] ? st->ca : "(not chosen)",
             st->template_name[0] ? st->template_name : "(not chosen)");
    struct clc_notify_renewal n = {.success = 0,
                                   .vault = ev->vault,
                                   .certificate = ev->name,
                                   .old_version = cur.version,
                                   .ca = st->ca,
                                   .template_name = st->template_name,
                                   .request_id = st->request_id,
                                   .error = what,
                                   .attempted = attempted,
                                   .next_step = next};
    clc_errinfo_clear(&ei);
    if (env->notify &&
        env->notify(env->ctx, tag_of(&cur.tags, env->set->recipient_tag), &n, &ei) != CLC_OK &&
        ei.msg[0])
        clc_log(CLC_LOG_WARN, "renew.failure_notice", CLC_LS("certificate", ev->name),
                CLC_LS("error", ei.msg));
    clc_kv_certificate_cleanup(&cur);
}
