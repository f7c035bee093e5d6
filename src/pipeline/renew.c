/* The first half of one renewal: decode the message, read the certificate
 * and its policy, decide whether there is anything to do (disabled, left
 * alone, already renewed, not due yet), pick CA and template, and get the
 * pending version whose CSR will go to the CA: ours from an earlier attempt,
 * a new one made with the whole policy, or (after a wait) one nobody owns. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "azure/queue.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "pipeline/renew_int.h"

static const char *const step_names[CLC_RENEW_STEP__COUNT] = {
    "parse", "read", "create", "submit", "merge", "tags", "notify", "complete"};
static const char *const outcome_names[CLC_RENEW__OUTCOMES] = {
    "renewed", "skipped", "waiting", "retry", "poisoned", "notice_retry", "aborted", "lease_lost"};

const char *clc_renew_step_name(enum clc_renew_step s)
{
    return (unsigned)s < CLC_RENEW_STEP__COUNT ? step_names[s] : "unknown";
}

const char *clc_renew_outcome_name(enum clc_renew_outcome o)
{
    return (unsigned)o < CLC_RENEW__OUTCOMES ? outcome_names[o] : "unknown";
}

int renew_finish(struct renew_run *r, enum clc_renew_outcome o, const char *reason, const char *fmt,
                 ...)
{
    va_list ap;
    r->res->outcome = o;
    snprintf(r->res->reason, sizeof r->res->reason, "%s", reason ? reason : "");
    va_start(ap, fmt);
    vsnprintf(r->res->detail, sizeof r->res->detail, fmt, ap);
    va_end(ap);
    return 1;
}

int renew_retry(struct renew_run *r, enum clc_renew_step step, enum clc_err rc,
                const struct clc_errinfo *ei, const char *what)
{
    snprintf(r->st->last_error, sizeof r->st->last_error, "%.60s: %.230s", what,
             ei && ei->msg[0] ? ei->msg : clc_err_name(rc));
    r->res->state_changed = 1;
    renew_log(r, step, "retry", r->st->last_error);
    return renew_finish(r, CLC_RENEW_RETRY, clc_err_name(rc), "%s", r->st->last_error);
}

void renew_log(struct renew_run *r, enum clc_renew_step step, const char *outcome,
               const char *error)
{
    int64_t t = clc_mono_ms();
    const char *version = r->cur.version ? r->cur.version : r->ev->version;
    if (r->env->step_log)
        r->env->step_log(r->env->ctx, r->ev, version, step, outcome, t - r->t0,
                         r->st->request_id[0] ? r->st->request_id : NULL, error);
    clc_log(error ? CLC_LOG_WARN : CLC_LOG_INFO, "renew.step", CLC_LS("vault", r->ev->vault),
            CLC_LS("certificate", r->ev->name), CLC_LS("step", clc_renew_step_name(step)),
            CLC_LS("outcome", outcome), CLC_LI("duration_ms", t - r->t0),
            CLC_LS("request_id", r->st->request_id), CLC_LS("error", error));
    r->t0 = t;
}

int renew_checkpoint(struct renew_run *r, enum clc_renew_step step)
{
    struct clc_errinfo ei = {0};
    if (r->env->abort_after == (int)step)
        return renew_finish(r, CLC_RENEW_ABORTED, "test_abort", "stopped after step %s",
                            clc_renew_step_name(step));
    if (r->env->keepalive && r->env->keepalive(r->env->ctx, &ei) != CLC_OK)
        return renew_finish(r, CLC_RENEW_LEASE_LOST, "lease_lost", "%s", ei.msg);
    return 0;
}

void renew_sha256_hex(const void *data, size_t len, char out[CLC_RENEW_HASH_HEX])
{
    unsigned char md[32];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    out[0] = '\0';
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return;
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* The parsed SubjectPublicKeyInfo re-encoded as it came: i2d_PUBKEY would
 * run the key through OpenSSL 3's encoder for the same bytes (~0.1 ms). */
int renew_spki_hash(const X509_PUBKEY *spki, char out[CLC_RENEW_HASH_HEX])
{
    unsigned char *der = NULL;
    int n = spki ? i2d_X509_PUBKEY(spki, &der) : -1;
    out[0] = '\0';
    if (n <= 0)
        return 0;
    renew_sha256_hex(der, (size_t)n, out);
    OPENSSL_free(der);
    return out[0] != '\0';
}

enum clc_err renew_carry_tags(const struct renew_run *r, const struct clc_kv_tags *from,
                              struct clc_kv_tags *out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    memset(out, 0, sizeof *out);
    for (size_t i = 0; from && i < from->n && rc == CLC_OK; i++)
        if (strcasecmp(from->v[i].name, r->set->pending_tag) != 0)
            rc = clc_kv_tags_set(out, from->v[i].name, from->v[i].value, ei);
    return rc;
}

void renew_claim_token(struct clc_renew_state *st)
{
    if (!st->token[0])
        clc_rand_hex(st->token, (CLC_RENEW_TOKEN_HEX - 1) / 2);
}

void renew_marker(const struct clc_renew_state *st, char out[RENEW_MARKER_MAX])
{
    snprintf(out, RENEW_MARKER_MAX, "%s%s", RENEW_MARKER_PREFIX, st->token);
}

int renew_marker_is_mine(const struct renew_run *r, const struct clc_kv_tags *tags)
{
    char mine[RENEW_MARKER_MAX];
    if (!r->st->token[0])
        return 0;
    renew_marker(r->st, mine);
    for (size_t i = 0; tags && i < tags->n; i++)
        if (strcasecmp(tags->v[i].name, r->set->pending_tag) == 0)
            return strcmp(tags->v[i].value, mine) == 0;
    return 0;
}

/* Tag values are case-insensitive words; an explicit "false"/"no"/"0" turns
 * the skip tag off. */
static int tag_true(const char *v)
{
    return v && *v && strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0 &&
           strcmp(v, "0") != 0;
}

static const char *tag_get(const struct clc_kv_tags *t, const char *name)
{
    for (size_t i = 0; name && i < t->n; i++)
        if (strcasecmp(t->v[i].name, name) == 0)
            return t->v[i].value;
    return NULL;
}

/* When a certificate is due: less than near_expiry left, and for
 * short-lived certificates less than lifetime_percent of their life (else a
 * 5-day certificate would be renewed the moment it is issued, forever). */
static int64_t due_at(const struct renew_run *r, int64_t nbf, int64_t exp)
{
    int64_t lead = r->set->near_expiry_s;
    if (nbf > 0 && exp > nbf) {
        int64_t share = (exp - nbf) / 100 * r->set->lifetime_percent;
        if (share < lead)
            lead = share;
    }
    return exp - lead;
}

static int64_t cur_exp(const struct renew_run *r)
{
    return r->cur.attributes.exp ? r->cur.attributes.exp : r->info.not_after;
}

static int64_t cur_nbf(const struct renew_run *r)
{
    return r->cur.attributes.nbf ? r->cur.attributes.nbf : r->info.not_before;
}

/* Reads the latest version, its policy and its certificate. 1 = stop. */
static int read_certificate(struct renew_run *r)
{
    struct clc_errinfo ei = {0};
    enum clc_err rc = clc_kv_get_certificate(r->kv, r->ev->name, NULL, &r->cur, &ei);
    X509 *x = NULL;

    if (rc == CLC_ERR_NOT_FOUND) {
        renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "certificate_gone",
                            "certificate %s is no longer in vault %s", r->ev->name, r->ev->vault);
    }
    if (rc != CLC_OK)
        return renew_retry(r, CLC_RENEW_STEP_READ, rc, &ei, "reading the certificate");
    if (r->cur.policy)
        rc = clc_kv_policy_copy(r->cur.policy, &r->policy, &ei);
    else
        rc = clc_kv_get_policy(r->kv, r->ev->name, &r->policy, &ei);
    if (rc != CLC_OK)
        return renew_retry(r, CLC_RENEW_STEP_READ, rc, &ei, "reading the policy");
    if (!r->cur.cer) {
        renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "not_issued",
                            "certificate %s has no completed version", r->ev->name);
    }
    rc = clc_cert_from_der(r->cur.cer, r->cur.cer_len, &x, &ei);
    if (rc == CLC_OK)
        rc = clc_cert_info_get(x, &r->info, &ei);
    X509_free(x);
    if (rc != CLC_OK) {
        renew_log(r, CLC_RENEW_STEP_READ, "poisoned", ei.msg);
        return renew_finish(r, CLC_RENEW_POISON, "unreadable_certificate", "version %s of %s: %s",
                            r->cur.version, r->ev->name, ei.msg);
    }
    return 0;
}

/* The key hash of the current version (to recognise our own merged one). */
static int cur_key_hash(const struct renew_run *r, char out[CLC_RENEW_HASH_HEX])
{
    X509 *x = NULL;
    int ok = 0;
    if (r->cur.cer && clc_cert_from_der(r->cur.cer, r->cur.cer_len, &x, NULL) == CLC_OK)
        ok = renew_spki_hash(X509_get_X509_PUBKEY(x), out);
    X509_free(x);
    return ok;
}

/* Whether there is anything to do. 1 = stop (res set). */
static int check_wanted(struct renew_run *r)
{
    const struct clc_kv_tags *tags = &r->cur.tags;
    int64_t due = due_at(r, cur_nbf(r), cur_exp(r));

    if (r->cur.attributes.enabled == 0) {
        renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "disabled", "version %s of %s is disabled",
                            r->cur.version, r->ev->name);
    }
    if (tag_true(tag_get(tags, r->set->skip_tag))) {
        renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "left_alone", "%s is tagged %s", r->ev->name,
                            r->set->skip_tag);
    }
    if (r->policy.issuer_name && strcasecmp(r->policy.issuer_name, "Unknown") != 0 &&
        !tag_get(tags, r->set->ca_tag) && !r->st->csr_hash[0]) {
        renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "vault_issuer",
                            "%s has issuer '%s' in its policy: the vault renews it (tag it %s to "
                            "renew through a CA)",
                            r->ev->name, r->policy.issuer_name, r->set->ca_tag);
    }
    if (r->now < due && !r->st->csr_hash[0]) {
        if (r->ev->version[0] && strcasecmp(r->ev->version, r->cur.version) != 0) {
            renew_log(r, CLC_RENEW_STEP_READ, "skipped", NULL);
            return renew_finish(r, CLC_RENEW_SKIPPED, "already_renewed",
                                "%s: version %s replaced %s and is not due before %lld",
                                r->ev->name, r->cur.version, r->ev->version, (long long)due);
        }
        /* The vault warns 30 days ahead whatever the lifetime: keep the
         * message as a timer until the certificate is due. */
        int64_t wait = due - r->now;
        if (wait > CLC_QUEUE_MAX_VISIBILITY)
            wait = CLC_QUEUE_MAX_VISIBILITY;
        r->st->waits++;
        r->res->state_changed = 1;
        r->res->delay_s = wait;
        renew_log(r, CLC_RENEW_STEP_READ, "not_due", NULL);
        return renew_finish(r, CLC_RENEW_WAITING, "not_due", "%s is due at %lld", r->ev->name,
                            (long long)due);
    }
    return 0;
}

/* CA and template: the certificate's template extension, else the template
 * tag, else the default; the CA from the CA tag, else renew.cas, else the
 * default. A renewal keeps what it chose first (its request id is that CA's). */
static int choose_ca(struct renew_run *r)
{
    struct clc_renew_state *st = r->st;
    struct clc_errinfo ei = {0};
    const char *tmpl = NULL, *ca = NULL;

    if (!st->template_name[0]) {
        if (r->info.has_template && r->info.template_oid[0])
            tmpl = r->info.template_oid;
        else if (r->info.template_name && *r->info.template_name)
            tmpl = r->info.template_name;
        else if (tag_get(&r->cur.tags, r->set->template_tag))
            tmpl = tag_get(&r->cur.tags, r->set->template_tag);
        else
            tmpl = r->set->default_template;
        if (!tmpl || !*tmpl) {
            renew_log(r, CLC_RENEW_STEP_READ, "poisoned", "no template");
            return renew_finish(r, CLC_RENEW_POISON, "no_template",
                                "%s carries no template extension, no %s tag, and "
                                "renew.default_template is not set",
                                r->ev->name, r->set->template_tag);
        }
        snprintf(st->template_name, sizeof st->template_name, "%s", tmpl);
    }
    if (!st->ca[0]) {
        ca = tag_get(&r->cur.tags, r->set->ca_tag);
        if (!ca || !*ca)
            ca = clc_renew_ca_for(r->set, st->template_name);
        if (!ca || !*ca) {
            renew_log(r, CLC_RENEW_STEP_READ, "poisoned", "no CA");
            return renew_finish(r, CLC_RENEW_POISON, "no_ca",
                                "no CA for template '%s' (renew.cas, renew.default_ca or the %s "
                                "tag)",
                                st->template_name, r->set->ca_tag);
        }
        snprintf(st->ca, sizeof st->ca, "%s", ca);
    }
    enum clc_err rc = r->env->ca(r->env->ctx, st->ca, &r->ca, &ei);
    if (rc == CLC_ERR_CONFIG || rc == CLC_ERR_NOT_FOUND || rc == CLC_ERR_INVALID) {
        renew_log(r, CLC_RENEW_STEP_READ, "poisoned", ei.msg);
        return renew_finish(r, CLC_RENEW_POISON, "unknown_ca", "CA '%s': %s", st->ca, ei.msg);
    }
    if (rc != CLC_OK)
        return renew_retry(r, CLC_RENEW_STEP_READ, rc, &ei, "CA client");
    return 0;
}

/* Forgets the pending operation this message drove (it is gone). */
static void drop_claim(struct clc_renew_state *st)
{
    st->csr_hash[0] = st->key_hash[0] = st->request_id[0] = st->old_version[0] = '\0';
    st->adopted = 0;
}

/* Hashes of r->op's CSR and of its key; parses the CSR into r->csr, which
 * the CA step then submits (one parse and signature check per run). */
static int csr_hashes(struct renew_run *r, char csr[CLC_RENEW_HASH_HEX],
                      char key[CLC_RENEW_HASH_HEX])
{
    clc_ca_csr_free(r->csr);
    r->csr = NULL;
    if (!r->op.csr)
        return 0;
    renew_sha256_hex(r->op.csr, r->op.csr_len, csr);
    if (clc_ca_csr_parse(r->op.csr, r->op.csr_len, &r->csr, NULL) != CLC_OK) {
        r->csr = NULL;
        return 0;
    }
    return renew_spki_hash(X509_REQ_get_X509_PUBKEY(clc_ca_csr_req(r->csr)), key);
}

static int op_in_progress(const struct clc_kv_operation *op)
{
    return op->status && strcmp(op->status, "inProgress") == 0 && !op->cancellation_requested;
}

/* Takes over a pending operation this message did not make. The pending
 * tag, written when a CA answered "pending", says which request it is. */
static int adopt(struct renew_run *r, const char *csr, const char *key, const char *request_id,
                 const char *ca)
{
    struct clc_errinfo ei = {0};
    struct clc_renew_state *st = r->st;
    snprintf(st->csr_hash, sizeof st->csr_hash, "%s", csr);
    snprintf(st->key_hash, sizeof st->key_hash, "%s", key);
    snprintf(st->old_version, sizeof st->old_version, "%s", r->cur.version);
    snprintf(st->request_id, sizeof st->request_id, "%s", request_id ? request_id : "");
    if (ca && *ca)
        snprintf(st->ca, sizeof st->ca, "%s", ca);
    st->adopted = 1;
    st->foreign_hash[0] = '\0';
    st->foreign_since = 0;
    renew_claim_token(st);
    clc_log(CLC_LOG_INFO, "renew.adopt", CLC_LS("certificate", r->ev->name),
            CLC_LS("request_id", st->request_id));
    enum clc_err rc = r->env->save(r->env->ctx, st, r->set->visibility_s, &ei);
    if (rc != CLC_OK)
        return clc_queue_lease_lost(rc, &ei)
                   ? renew_finish(r, CLC_RENEW_LEASE_LOST, "lease_lost", "%s", ei.msg)
                   : renew_retry(r, CLC_RENEW_STEP_CREATE, rc, &ei, "saving state");
    return 0;
}

/* An operation in progress that this message did not make: another message
 * for the same certificate is working on it, or a worker died right after
 * creating it. Fetch the request it shared; else wait, then take it over. */
static int foreign_operation(struct renew_run *r)
{
    char csr[CLC_RENEW_HASH_HEX], key[CLC_RENEW_HASH_HEX];
    struct clc_renew_state *st = r->st;
    const char *shared = tag_get(&r->cur.tags, r->set->pending_tag);

    if (!csr_hashes(r, csr, key)) {
        renew_log(r, CLC_RENEW_STEP_CREATE, "poisoned", "unreadable pending CSR");
        return renew_finish(r, CLC_RENEW_POISON, "bad_pending_csr",
                            "the pending operation of %s has no readable CSR", r->ev->name);
    }
    /* "<csr hash>|<ca>|<request id>" */
    if (shared && strncmp(shared, csr, 64) == 0 && shared[64] == '|') {
        char ca[CLC_RENEW_NAME_MAX] = "";
        const char *bar = strchr(shared + 65, '|');
        if (bar && (size_t)(bar - shared - 65) < sizeof ca) {
            memcpy(ca, shared + 65, (size_t)(bar - shared - 65));
            ca[bar - shared - 65] = '\0';
            return adopt(r, csr, key, bar + 1, ca);
        }
    }
    if (strcmp(st->foreign_hash, csr) == 0 &&
        r->now - st->foreign_since >= r->set->conflict_delay_s)
        return adopt(r, csr, key, NULL, NULL);
    if (strcmp(st->foreign_hash, csr) != 0) {
        snprintf(st->foreign_hash, sizeof st->foreign_hash, "%s", csr);
        st->foreign_since = r->now;
    }
    st->waits++;
    r->res->state_changed = 1;
    r->res->delay_s = r->set->conflict_delay_s;
    renew_log(r, CLC_RENEW_STEP_CREATE, "conflict_wait", NULL);
    return renew_finish(r, CLC_RENEW_WAITING, "pending_elsewhere",
                        "%s has a pending operation this message did not start; waiting",
                        r->ev->name);
}

/* After our create: 1 (res set) when the latest version is no longer the
 * one we read; our pending version is then withdrawn. */
static int renewed_meanwhile(struct renew_run *r)
{
    struct clc_kv_certificate now;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    int stale;

    memset(&now, 0, sizeof now);
    memset(&op, 0, sizeof op);
    enum clc_err rc = clc_kv_get_certificate(r->kv, r->ev->name, NULL, &now, &ei);
    stale = rc == CLC_OK && now.version && strcmp(now.version, r->cur.version) != 0;
    if (rc == CLC_OK && !stale) {
        clc_kv_certificate_cleanup(&now);
        return 0;
    }
    enum clc_err wrc = clc_kv_cancel_operation(r->kv, r->ev->name, &op, &ei);
    clc_kv_operation_cleanup(&op);
    if (wrc == CLC_OK)
        wrc = clc_kv_delete_operation(r->kv, r->ev->name, &op, &ei);
    clc_kv_operation_cleanup(&op);
    if (wrc != CLC_OK)
        clc_log(CLC_LOG_WARN, "renew.withdraw", CLC_LS("certificate", r->ev->name),
                CLC_LS("error", ei.msg));
    if (!stale) {
        /* Could not tell: withdrawn, and the next attempt looks again. */
        clc_kv_certificate_cleanup(&now);
        return renew_retry(r, CLC_RENEW_STEP_CREATE, rc, &ei, "re-reading after create");
    }
    renew_log(r, CLC_RENEW_STEP_CREATE, "skipped", NULL);
    renew_finish(r, CLC_RENEW_SKIPPED, "already_renewed",
                 "%s was renewed as %s while this message was being read", r->ev->name,
                 now.version);
    clc_kv_certificate_cleanup(&now);
    return 1;
}

/* Creates the new version with the whole policy and issuer Unknown. */
static int create_version(struct renew_run *r)
{
    struct clc_errinfo ei = {0};
    struct clc_kv_policy p;
    struct clc_renew_state *st = r->st;
    enum clc_err rc;

    clc_kv_policy_init(&p);
    rc = clc_kv_policy_copy(&r->policy, &p, &ei);
    if (rc == CLC_OK) {
        free(p.issuer_name);
        p.issuer_name = strdup("Unknown");
        free(p.issuer_cty);
        p.issuer_cty = NULL;
        rc = p.issuer_name ? CLC_OK : CLC_ERR_NOMEM;
    }
    if (rc == CLC_OK) {
        struct clc_kv_create req = {.policy = &p};
        rc = clc_kv_create(r->kv, r->ev->name, &req, &r->op, &ei);
    }
    clc_kv_policy_cleanup(&p);
    if (rc == CLC_ERR_CONFLICT) {
        /* 409: an operation is in progress (or the name is soft-deleted). */
        clc_kv_operation_cleanup(&r->op);
        rc = clc_kv_get_operation(r->kv, r->ev->name, &r->op, &ei);
        if (rc == CLC_OK && op_in_progress(&r->op))
            return foreign_operation(r);
        return renew_retry(r, CLC_RENEW_STEP_CREATE, rc == CLC_OK ? CLC_ERR_CONFLICT : rc, &ei,
                           "creating the new version (409)");
    }
    if (rc != CLC_OK)
        return renew_retry(r, CLC_RENEW_STEP_CREATE, rc, &ei, "creating the new version");
    /* The pending operation is the lock; what we read before taking it may
     * be stale (another message renewed it between our read and our
     * create). Check again now that nobody else can. */
    if (renewed_meanwhile(r))
        return 1;
    if (!csr_hashes(r, st->csr_hash, st->key_hash)) {
        drop_claim(st);
        return renew_retry(r, CLC_RENEW_STEP_CREATE, CLC_ERR_PARSE, NULL,
                           "the vault's CSR is unreadable");
    }
    snprintf(st->old_version, sizeof st->old_version, "%s", r->cur.version);
    st->adopted = 0;
    st->foreign_hash[0] = '\0';
    st->foreign_since = 0;
    renew_claim_token(st);
    /* Written before anything goes to the CA, so a restart knows this
     * pending version is this message's own. */
    rc = r->env->save(r->env->ctx, st, r->set->visibility_s, &ei);
    if (rc != CLC_OK)
        return clc_queue_lease_lost(rc, &ei)
                   ? renew_finish(r, CLC_RENEW_LEASE_LOST, "lease_lost", "%s", ei.msg)
                   : renew_retry(r, CLC_RENEW_STEP_CREATE, rc, &ei, "saving state");
    renew_log(r, CLC_RENEW_STEP_CREATE, "ok", NULL);
    return renew_checkpoint(r, CLC_RENEW_STEP_CREATE);
}

/* The pending operation to submit: ours (still there), a new one, or a
 * foreign one taken over. 1 = stop. */
static int pending_version(struct renew_run *r)
{
    struct clc_errinfo ei = {0};
    struct clc_renew_state *st = r->st;
    char csr[CLC_RENEW_HASH_HEX], key[CLC_RENEW_HASH_HEX];

    if (!st->csr_hash[0])
        return create_version(r);
    enum clc_err rc = clc_kv_get_operation(r->kv, r->ev->name, &r->op, &ei);
    if (rc != CLC_OK && rc != CLC_ERR_NOT_FOUND)
        return renew_retry(r, CLC_RENEW_STEP_CREATE, rc, &ei, "reading the pending operation");
    if (rc == CLC_ERR_NOT_FOUND || !op_in_progress(&r->op)) {
        /* Cancelled or deleted by someone: start over on the next attempt
         * (the certificate is read again then). */
        clc_log(CLC_LOG_WARN, "renew.pending_gone", CLC_LS("certificate", r->ev->name),
                CLC_LS("status", r->op.status));
        drop_claim(st);
        return renew_retry(r, CLC_RENEW_STEP_CREATE, CLC_ERR_CONFLICT, NULL,
                           "the pending operation this message started is gone");
    }
    if (!csr_hashes(r, csr, key) || strcmp(csr, st->csr_hash) != 0) {
        drop_claim(st);
        return foreign_operation(r);
    }
    renew_log(r, CLC_RENEW_STEP_CREATE, "resumed", NULL);
    return 0;
}

/* The renewal of the pending operation this message drove already landed
 * (the current version has its key). Several messages can drive one
 * operation (a duplicate adopts the shared request), and only the one whose
 * merge landed tells the recipients: its merge wrote the marker naming it.
 * Ours: a crash or a lost answer after our merge, so tags, notice, done.
 * Another's, or none (removed once that notice went out): a duplicate,
 * deleted without a word to the recipients. */
static int already_merged(struct renew_run *r)
{
    char key[CLC_RENEW_HASH_HEX];
    struct clc_renew_state *st = r->st;
    if (!st->key_hash[0] || !st->old_version[0] || strcmp(r->cur.version, st->old_version) == 0 ||
        !cur_key_hash(r, key) || strcmp(key, st->key_hash) != 0)
        return 0;
    if (!renew_marker_is_mine(r, &r->cur.tags)) {
        renew_log(r, CLC_RENEW_STEP_MERGE, "duplicate", NULL);
        return renew_finish(r, CLC_RENEW_SKIPPED, "duplicate",
                            "%s was renewed as %s by another message for the same request (or "
                            "this one, whose notice is out)",
                            r->ev->name, r->cur.version);
    }
    struct clc_kv_certificate old;
    struct clc_errinfo ei = {0};
    memset(&old, 0, sizeof old);
    enum clc_err rc = clc_kv_get_certificate(r->kv, r->ev->name, st->old_version, &old, &ei);
    if (rc != CLC_OK && rc != CLC_ERR_NOT_FOUND) {
        clc_kv_certificate_cleanup(&old);
        return renew_retry(r, CLC_RENEW_STEP_MERGE, rc, &ei, "reading the old version");
    }
    renew_after_merge(r, &r->cur, rc == CLC_OK ? &old.tags : &r->cur.tags, NULL);
    clc_kv_certificate_cleanup(&old);
    return 1;
}

/* A success notice owed from an earlier attempt. */
static void owed_notice(struct renew_run *r)
{
    struct clc_kv_certificate v;
    struct clc_errinfo ei = {0};
    memset(&v, 0, sizeof v);
    enum clc_err rc = clc_kv_get_certificate(r->kv, r->ev->name, r->st->merged_version, &v, &ei);
    if (rc == CLC_ERR_NOT_FOUND) {
        renew_finish(r, CLC_RENEW_SKIPPED, "certificate_gone",
                     "version %s is gone; the notice is dropped", r->st->merged_version);
    } else if (rc != CLC_OK) {
        renew_retry(r, CLC_RENEW_STEP_NOTIFY, rc, &ei, "reading the renewed version");
    } else {
        r->cur.version = strdup(v.version);
        renew_after_merge(r, &v, &v.tags, NULL);
    }
    clc_kv_certificate_cleanup(&v);
}

static void run_steps(struct renew_run *r, const char *text, size_t len)
{
    const struct clc_renew_settings *set = r->set;
    struct clc_errinfo ei = {0};
    char reason[32];
    const char *names[64];
    size_t nv = set->nvaults < 64 ? set->nvaults : 64;

    for (size_t i = 0; i < nv; i++)
        names[i] = set->vaults[i].name;
    struct clc_event_filter f = {.vaults = names, .nvaults = nv, .max_bytes = CLC_QUEUE_MAX_TEXT};
    if (clc_renew_msg_parse(text, len, &f, r->ev, r->st, reason, sizeof reason, &ei) != CLC_OK) {
        renew_log(r, CLC_RENEW_STEP_PARSE, "poisoned", ei.msg);
        renew_finish(r, CLC_RENEW_POISON, reason, "%s", ei.msg);
        return;
    }
    if (strcmp(r->ev->type, "Microsoft.KeyVault.CertificateNewVersionCreated") == 0) {
        renew_log(r, CLC_RENEW_STEP_PARSE, "skipped", NULL);
        renew_finish(r, CLC_RENEW_SKIPPED, "not_a_renewal_event", "%s for %s needs no renewal",
                     r->ev->type, r->ev->name);
        return;
    }
    const struct clc_renew_vault *v = clc_renew_vault_find(set, r->ev->vault);
    enum clc_err rc = v ? r->env->kv(r->env->ctx, v, &r->kv, &ei) : CLC_ERR_CONFIG;
    if (rc != CLC_OK) {
        renew_log(r, CLC_RENEW_STEP_PARSE, "poisoned", ei.msg);
        renew_finish(r, CLC_RENEW_POISON, "vault_not_allowed", "vault %s: %s", r->ev->vault,
                     v ? ei.msg : "not configured");
        return;
    }
    renew_log(r, CLC_RENEW_STEP_PARSE, "ok", NULL);
    if (r->st->notice_pending && r->st->merged_version[0]) {
        owed_notice(r);
        return;
    }
    if (read_certificate(r) || already_merged(r) || check_wanted(r))
        return;
    renew_log(r, CLC_RENEW_STEP_READ, "ok", NULL);
    if (renew_checkpoint(r, CLC_RENEW_STEP_READ) || choose_ca(r) || pending_version(r))
        return;
    renew_issue(r);
}

void clc_renew_run(const struct clc_renew_env *env, const char *text, size_t len,
                   struct clc_event *ev, struct clc_renew_state *st, struct clc_renew_result *res)
{
    struct renew_run r;

    memset(res, 0, sizeof *res);
    res->ca_latency_ms = -1;
    memset(&r, 0, sizeof r);
    r.env = env;
    r.set = env->set;
    r.st = st;
    r.res = res;
    r.ev = ev;
    r.now = clc_clock_now(env->clock);
    r.t0 = clc_mono_ms();
    clc_kv_policy_init(&r.policy);
    run_steps(&r, text, len);
    clc_kv_certificate_cleanup(&r.cur);
    clc_kv_policy_cleanup(&r.policy);
    clc_cert_info_cleanup(&r.info);
    clc_kv_operation_cleanup(&r.op);
    clc_ca_csr_free(r.csr);
}
