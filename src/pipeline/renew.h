/* Renewing one certificate from one queue message: a resumable, idempotent
 * state machine (parse the event, read the certificate, create the pending
 * version with the whole policy, submit or fetch at the CA, merge the chain,
 * keep the tags, notify). What it has done so far travels in the message
 * itself, so any worker can pick it up where another one stopped. */
#ifndef CLC_RENEW_H
#define CLC_RENEW_H

#include <stddef.h>
#include <stdint.h>
#include "azure/event.h"
#include "azure/keyvault.h"
#include "ca/ca.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "pipeline/notify.h"

/* ---- settings (config keys "renew.*", see docs/configuration.md) ---- */

#define CLC_RENEW_NAME_MAX 128

struct clc_renew_vault {
    char *name; /* as events name it (data.VaultName), compared case-insensitively */
    char *url;
};

struct clc_renew_camap {
    char *template_name; /* template short name or OID */
    char *ca;            /* name under ca.* */
};

enum clc_renew_queue_auth {
    CLC_RENEW_QAUTH_BEARER = 0,
    CLC_RENEW_QAUTH_SHARED_KEY,
    CLC_RENEW_QAUTH_SAS
};

struct clc_renew_settings {
    struct clc_renew_vault *vaults; /* the vaults whose events are accepted */
    size_t nvaults;
    const char *kv_api_version;
    int kv_verify_resource;

    /* queue and dead-letter storage */
    char *queue_url;    /* queue service URL */
    char *queue_name;   /* default "certlc" */
    char *poison_queue; /* default "certlc-poison" */
    char *blob_url;     /* blob service URL for dead-letters; NULL = not configured */
    char *deadletter_container;
    enum clc_renew_queue_auth queue_auth;
    char *account; /* shared key account; NULL otherwise */

    int64_t max_dequeue;      /* failed attempts before the poison queue (5) */
    int64_t visibility_s;     /* lease length (300) */
    int64_t schedule_s;       /* worker: drain at least this often (900) */
    int64_t retry_base_s;     /* backoff after a failure: base * 2^(n-1) (60) */
    int64_t retry_max_s;      /* cap on that backoff (3600) */
    int64_t pending_poll_s;   /* ask the CA again after (900) unless it says */
    int64_t conflict_delay_s; /* wait before adopting a foreign pending operation (60) */
    int64_t near_expiry_s;    /* renew when less than this is left (30 days) */
    int64_t lifetime_percent; /* ...or less than this share of the lifetime (33) */

    struct clc_renew_camap *cas; /* renew.cas */
    size_t ncas;
    char *default_ca;
    char *default_template;
    char *ca_tag;           /* tag naming the CA ("CertificateAuthority") */
    char *template_tag;     /* tag naming the template ("CertificateTemplate") */
    char *skip_tag;         /* tag that means "leave alone" ("CertlcSkip") */
    char *recipient_tag;    /* "Recipient" */
    char *pending_tag;      /* where a CA request id is shared ("CertlcPendingRequest") */
    char *admin_recipients; /* failure notices also go here; NULL = none */
};

extern const struct clc_config_key clc_renew_config_keys[];
extern const size_t clc_renew_config_nkeys;

/* Reads and checks every renew.* key (and the vaults of keyvault.*): a CA
 * named in renew.cas or as default must be configured under ca.*, every
 * allowed vault must have a URL. */
enum clc_err clc_renew_settings_from_config(const struct clc_config *cfg,
                                            struct clc_renew_settings *out, struct clc_errinfo *ei);
void clc_renew_settings_cleanup(struct clc_renew_settings *s);
/* The configured vault named like an event's VaultName, or NULL. */
const struct clc_renew_vault *clc_renew_vault_find(const struct clc_renew_settings *s,
                                                   const char *name);
/* The CA for a template (renew.cas by name or OID), else the default; NULL = none. */
const char *clc_renew_ca_for(const struct clc_renew_settings *s, const char *template_name);

/* ---- state carried in the message ---- */

#define CLC_RENEW_HASH_HEX 65
#define CLC_RENEW_TOKEN_HEX 33
#define CLC_RENEW_ERR_MAX 300

struct clc_renew_state {
    char ca[CLC_RENEW_NAME_MAX];
    char template_name[CLC_RENEW_NAME_MAX];
    char csr_hash[CLC_RENEW_HASH_HEX]; /* SHA-256 of the pending CSR this message drives */
    char key_hash[CLC_RENEW_HASH_HEX]; /* SHA-256 of that CSR's public key (SPKI) */
    char old_version[64];              /* version current when the renewal began */
    char request_id[CLC_CA_ID_MAX];    /* the CA's id while it holds the request */
    int adopted;                       /* 1 = the pending operation was someone else's */
    int notice_pending;                /* 1 = renewed; the success notice is still owed */
    char merged_version[64];
    /* Random id of this message, made when it claims a pending operation;
     * its merge names it in the marker tag, so that after a crash the one
     * that merged knows the notice is its own (and a duplicate that it is
     * not). */
    char token[CLC_RENEW_TOKEN_HEX];
    int64_t waits;                         /* deliberate waits (pending, not due): not failures */
    char foreign_hash[CLC_RENEW_HASH_HEX]; /* a pending operation we did not make ... */
    int64_t foreign_since;                 /* ... first seen then */
    char last_error[CLC_RENEW_ERR_MAX];
};

/* A queue message's text: the event (base64 of the JSON, or the JSON, as
 * Event Grid writes it) or certlc's envelope {"certlc": state, "event": ...}
 * in base64. Parsing fills both; a message without envelope gives an empty
 * state. On rejection *reason says why (an event reason name, or
 * "bad_state"). */
enum clc_err clc_renew_msg_parse(const char *text, size_t len, const struct clc_event_filter *f,
                                 struct clc_event *ev, struct clc_renew_state *st, char *reason,
                                 size_t reason_len, struct clc_errinfo *ei);
/* The envelope text for (event JSON of the original message, state);
 * malloc'd, base64. */
enum clc_err clc_renew_msg_build(const char *text, size_t len, const struct clc_renew_state *st,
                                 char **out, size_t *out_len, struct clc_errinfo *ei);

/* ---- one renewal ---- */

enum clc_renew_step {
    CLC_RENEW_STEP_PARSE = 0,
    CLC_RENEW_STEP_READ,
    CLC_RENEW_STEP_CREATE,
    CLC_RENEW_STEP_SUBMIT,
    CLC_RENEW_STEP_MERGE,
    CLC_RENEW_STEP_TAGS,
    CLC_RENEW_STEP_NOTIFY,
    CLC_RENEW_STEP_COMPLETE,
    CLC_RENEW_STEP__COUNT
};
const char *clc_renew_step_name(enum clc_renew_step s);

enum clc_renew_outcome {
    CLC_RENEW_RENEWED = 0,  /* merged (and notified): delete the message */
    CLC_RENEW_SKIPPED,      /* nothing to do (reason says why): delete */
    CLC_RENEW_WAITING,      /* CA pending, or not due yet: keep, visible after delay_s */
    CLC_RENEW_RETRY,        /* failed for now: keep, visible after a backoff */
    CLC_RENEW_POISON,       /* never going to work as is: poison queue */
    CLC_RENEW_NOTICE_RETRY, /* renewed, the e-mail failed: keep for the notice */
    CLC_RENEW_ABORTED,      /* the test hook stopped it: touch nothing */
    CLC_RENEW_LEASE_LOST,   /* another worker has the message now */
    CLC_RENEW__OUTCOMES
};
const char *clc_renew_outcome_name(enum clc_renew_outcome o);

struct clc_renew_result {
    enum clc_renew_outcome outcome;
    int64_t delay_s;                /* WAITING, RETRY, NOTICE_RETRY */
    int state_changed;              /* the message content must be rewritten */
    char reason[64];                /* POISON/SKIPPED: a stable word ("ca_denied") */
    char detail[CLC_RENEW_ERR_MAX]; /* human-readable */
    int64_t ca_latency_ms;          /* -1 when the CA was not asked */
    int notify_failure;             /* send the failure notice (POISON after a denial) */
};

/* What a renewal needs from its worker; every call borrows. */
struct clc_renew_env {
    const struct clc_renew_settings *set;
    const struct clc_clock *clock;
    void *ctx;
    /* A client for a configured vault / CA (cached by the worker). */
    enum clc_err (*kv)(void *ctx, const struct clc_renew_vault *v, struct clc_kv **out,
                       struct clc_errinfo *ei);
    enum clc_err (*ca)(void *ctx, const char *name, struct clc_ca **out, struct clc_errinfo *ei);
    /* Called between steps: keeps the lease (CLC_ERR_CONFLICT when lost). */
    enum clc_err (*keepalive)(void *ctx, struct clc_errinfo *ei);
    /* Writes the state into the message now (before an irreversible next
     * step); visibility_s is the new lease. */
    enum clc_err (*save)(void *ctx, const struct clc_renew_state *st, int64_t visibility_s,
                         struct clc_errinfo *ei);
    /* One Log Analytics row per step (never fails the renewal). */
    void (*step_log)(void *ctx, const struct clc_event *ev, const char *version,
                     enum clc_renew_step step, const char *outcome, int64_t duration_ms,
                     const char *request_id, const char *error);
    /* E-mail; CLC_ERR_NOT_FOUND when there is nobody to tell. */
    enum clc_err (*notify)(void *ctx, const char *recipients_tag,
                           const struct clc_notify_renewal *r, struct clc_errinfo *ei);
    /* Test hook: stop right after this step completed (-1 = never). */
    int abort_after;
};

/* Processes one message's text: decodes the event and the state (ev, st are
 * filled as far as parsing got; st is what the worker writes back). Never
 * fails: every result is an outcome for the worker. */
void clc_renew_run(const struct clc_renew_env *env, const char *text, size_t len,
                   struct clc_event *ev, struct clc_renew_state *st, struct clc_renew_result *res);

/* The failure notice for a message the worker gives up on (too many
 * attempts): the certificate's recipients (read now, best effort) and
 * renew.admin_recipients. */
void clc_renew_failure_notice(const struct clc_renew_env *env, const struct clc_event *ev,
                              const struct clc_renew_state *st, const char *what, const char *next);

#endif
