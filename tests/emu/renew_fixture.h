/* Test support for the renewal worker: one emulator per binary (Key Vault,
 * the AD CS-like CA, Storage queue and blob), a configuration pointing the
 * worker at them (Shared Key on the queue, Basic on the CA, the emulator's
 * clock), seeding certificates, putting NearExpiry events on the queue, and
 * the control API (faults, CA approve/deny, requests). */
#ifndef TEST_RENEW_FIXTURE_H
#define TEST_RENEW_FIXTURE_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include "azure/auth.h"
#include "azure/blob.h"
#include "azure/keyvault.h"
#include "azure/queue.h"
#include "core/config.h"
#include "emulator/emu.h"
#include "pipeline/renew.h"
#include "pipeline/worker.h"

#define RF_VAULT "certlc"
#define RF_ACCOUNT "devstoreaccount1"

struct rf {
    struct emu *e;
    cJSON *endpoints;
    char dir[256];
    struct clc_http_opts http;
    struct clc_clock clock;
    struct clc_retry_policy retry; /* no real sleeping */
    struct clc_config *cfg;
    struct clc_renew_settings set;
    struct clc_auth *renewer, *admin;
    struct clc_storage_cred *cred;
    struct clc_queue *q;
    struct clc_blob *blob;
    struct clc_kv *kv;
    struct clc_http *admin_http;
};

extern struct rf R;

/* cmocka group setup/teardown; extra_renew is JSON members added to "renew"
 * (may be NULL), e.g. "\"max_dequeue\":3". */
int rf_setup_with(const char *extra_renew);
/* Set before setup: more CAs for the "ca" object ("\"name\":{...}"). */
extern const char *rf_extra_ca;
int rf_setup(void **state);
int rf_teardown(void **state);

/* Empties the work and poison queues and removes fault rules. */
void rf_reset(void);

/* A worker with n threads (abort_after -1 = never). */
struct clc_worker *rf_worker(int threads, int abort_after);
/* Same, with e-mail and Log Analytics (borrowed; NULL = none). */
struct clc_worker *rf_worker_with(int threads, int abort_after, struct clc_notify *notify,
                                  struct clc_la *la);
/* One drain with a fresh one-thread worker; returns the summary. */
struct clc_worker_summary rf_drain(int abort_after);

struct rf_seed {
    const char *kty;         /* "EC" (default) or "RSA" */
    const char *const *sans; /* NULL-terminated DNS names */
    const char *tags;        /* JSON object text, or NULL */
    int64_t lifetime_s;      /* default 365 d */
    int64_t left_s;          /* time left before expiry (default 10 d: due) */
};
struct rf_version {
    char version[64];
    int64_t nbf, exp;
};
/* Seeds a completed version of certificate name; fills out. */
void rf_seed(const char *name, const struct rf_seed *s, struct rf_version *out);
/* Puts a CertificateNearExpiry event for that version on the work queue
 * (base64, as Event Grid writes). */
void rf_event(const char *name, const struct rf_version *v);
/* Raw text onto the work queue. */
void rf_put_raw(const char *text, size_t len);

int rf_versions(const char *name);
/* The latest version (caller cleans up). */
void rf_latest(const char *name, struct clc_kv_certificate *out);
/* Messages in a queue (visible or not: the control state). */
int rf_queue_count(const char *queue);

/* Control API: status, and the body when out is given (malloc'd). */
long rf_control(const char *method, const char *path, const char *body, char **out);
/* A fault rule on the given service ("keyvault/certlc", "ca", "*"). */
void rf_fault(const char *service, const char *method, const char *path, int count, int status);
void rf_faults_clear(void);
/* How many requests the CA has received so far. */
int rf_ca_requests(void);
/* Id of the last pending CA request ("" when none). */
void rf_ca_pending_id(char *out, size_t n);

void rf_advance(int64_t seconds);

#endif
