/* Internals shared by the two halves of the renewal state machine: renew.c
 * (event, certificate, checks, the pending version) and renew_issue.c (the
 * CA, merge, tags, notice). */
#ifndef CLC_RENEW_INT_H
#define CLC_RENEW_INT_H

#include <openssl/x509.h>
#include "pipeline/renew.h"

struct renew_run {
    const struct clc_renew_env *env;
    const struct clc_renew_settings *set;
    struct clc_renew_state *st;
    struct clc_renew_result *res;
    struct clc_event *ev;
    struct clc_kv *kv;
    struct clc_kv_certificate cur; /* the latest version when we looked */
    struct clc_kv_policy policy;
    struct clc_cert_info info; /* of cur */
    struct clc_kv_operation op;
    struct clc_ca_csr *csr; /* op's CSR: parsed, its signature checked, once per run */
    struct clc_ca *ca;
    int64_t now;
    int64_t t0; /* start of the current step (monotonic ms) */
};

/* Result setters; they return 1 so that callers can `return finish(...)`. */
int renew_finish(struct renew_run *r, enum clc_renew_outcome o, const char *reason, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));
/* A failure that may pass: RETRY, remembering the error for the poison queue. */
int renew_retry(struct renew_run *r, enum clc_renew_step step, enum clc_err rc,
                const struct clc_errinfo *ei, const char *what);
/* Logs the step's row (duration since r->t0) and restarts the step clock. */
void renew_log(struct renew_run *r, enum clc_renew_step step, const char *outcome,
               const char *error);
/* After a step: the test hook and the lease. 1 = stop here (res is set). */
int renew_checkpoint(struct renew_run *r, enum clc_renew_step step);

/* SHA-256 of data / of a SubjectPublicKeyInfo, lower-case hex. */
void renew_sha256_hex(const void *data, size_t len, char out[CLC_RENEW_HASH_HEX]);
int renew_spki_hash(const X509_PUBKEY *spki, char out[CLC_RENEW_HASH_HEX]);

/* The tags to carry to a new version: the old ones minus certlc's own. */
enum clc_err renew_carry_tags(const struct renew_run *r, const struct clc_kv_tags *from,
                              struct clc_kv_tags *out, struct clc_errinfo *ei);

/* The merge marker: the pending tag on a new version, "merged|<token>",
 * written by the merge itself (atomically with the version) and removed
 * once the success notice is out. */
#define RENEW_MARKER_PREFIX "merged|"
#define RENEW_MARKER_MAX (sizeof RENEW_MARKER_PREFIX + CLC_RENEW_TOKEN_HEX)
/* Gives the message its token if it has none yet (saved with the state). */
void renew_claim_token(struct clc_renew_state *st);
void renew_marker(const struct clc_renew_state *st, char out[RENEW_MARKER_MAX]);
/* 1 when tags hold this message's marker. */
int renew_marker_is_mine(const struct renew_run *r, const struct clc_kv_tags *tags);

/* From the pending operation on: CA, merge, tags, notice (renew_issue.c). */
void renew_issue(struct renew_run *r);
/* The renewal already landed as version `merged`: tags, notice, done. */
void renew_after_merge(struct renew_run *r, const struct clc_kv_certificate *merged,
                       const struct clc_kv_tags *old_tags, const char *old_thumbprint);

#endif
