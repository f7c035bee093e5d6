/* Test support for the pipeline end to end through the certlc binary: the
 * renewal fixture's emulator (tests/emu/renew_fixture.h) with its clock set
 * behind the system clock, a full certlc configuration (queue, CA, webhook,
 * SMTP, Log Analytics), certlc serve as a child process, Event Grid
 * subscriptions through the control API, and readers for the mailbox and
 * the Log Analytics query API. */
#ifndef TEST_PIPELINE_FIXTURE_H
#define TEST_PIPELINE_FIXTURE_H

#include <stdint.h>
#include <cjson/cJSON.h>

#include "azure/keyvault.h"
#include "emu/renew_fixture.h"
#include "support/proc.h"

/* The shared secret Event Grid presents to certlc serve. */
#define PF_SECRET "pipeline-e2e-webhook-secret-7c41d2"
/* The emulator runs this far behind the system clock (see pf_setup). */
#define PF_LAG_S (12 * 3600)
#define PF_WAIT_MS 15000
#define PF_DAY (86400)
#define PF_SUB_QUEUE "certlc-queue"
#define PF_SUB_SERVE "certlc-serve"
#define PF_DL_CONTAINER "certlc-deadletter"

/* certlc's configuration file (the binary's --config). */
extern char pf_config[400];
/* The last pf_certlc run's output. */
extern struct test_proc_result pf_res;

/* cmocka group setup/teardown. */
int pf_setup(void **state);
int pf_teardown(void **state);

/* ---- certificates ---- */

struct pf_cert {
    const char *name;
    const char *kty;          /* "RSA" or "EC" */
    int size;                 /* RSA bits */
    const char *crv;          /* EC curve */
    const char *subject;      /* NULL = CN=name */
    const char *const *sans;  /* NULL-terminated DNS names */
    const char *tags;         /* JSON object text or NULL */
    const char *content_type; /* NULL = PKCS#12 */
    int64_t left_s;           /* time to expiry from the emulator's now */
    /* filled by pf_seed */
    char version[64];
    struct clc_kv_policy policy; /* as the vault holds it after seeding */
    struct clc_kv_tags tags_before;
};
/* Seeds a completed 365-day version through the Key Vault control route
 * and reads back its policy and tags. */
void pf_seed(struct pf_cert *c);
void pf_cert_cleanup(struct pf_cert *c);

/* ---- certlc serve ---- */

struct pf_child;
/* Starts certlc serve; returns once it listens (fails the test if not). */
struct pf_child *pf_serve_start(void);
int pf_serve_port(const struct pf_child *c);
/* SIGUSR1: the documented way to make it drain now. */
void pf_serve_wake(struct pf_child *c);
/* SIGTERM and a bounded wait: the exit code (-1 signal, -2 killed at the
 * deadline); frees c. NULL is fine (returns 0). */
int pf_serve_stop(struct pf_child *c);
/* Stops every one still running (a test failed before it could). */
void pf_serve_stop_all(void);
/* Its stderr so far (for failure messages). */
const char *pf_serve_log(struct pf_child *c);
/* GET on its HTTPS listener (/metrics, /healthz): the status; *body malloc'd. */
long pf_serve_get(struct pf_child *c, const char *path, char **body);
/* A sample's value in Prometheus text, -1 when absent. */
double pf_metric(const char *text, const char *series);

/* ---- the binary ---- */

/* Runs certlc --config pf_config a1 [a2 [a3]] (NULL ends); the exit code,
 * output in pf_res. */
int pf_certlc(const char *a1, const char *a2, const char *a3);

/* ---- Event Grid ---- */

/* PUT /control/eventgrid/subscriptions/{name} with the config shape. */
void pf_sub_put(const char *name, const char *json);
void pf_sub_delete(const char *name);
/* The subscription's integer field (delivered, attempts, dead_lettered, ...). */
int64_t pf_sub_int(const char *name, const char *field);
/* Polls until provisioning_state is state. */
void pf_sub_wait_state(const char *name, const char *state);
/* Polls until the integer field reaches at least want; returns it. */
int64_t pf_sub_wait_int(const char *name, const char *field, int64_t want);
/* A storage queue subscription to the work queue for NearExpiry events. */
void pf_sub_queue(void);
/* A webhook subscription to certlc serve on port (secret in the header) for
 * NearExpiry events; extra is JSON members added to the definition (NULL =
 * none). Waits until Event Grid has validated it. */
void pf_sub_webhook(const char *name, int port, const char *extra);

/* ---- what recipients and operators see ---- */

/* Messages in the mailbox to addr (all when NULL); their subjects joined
 * by '\n' into *subjects when given (malloc'd). */
int pf_mails(const char *addr, char **subjects);
/* Renewal-log rows for a certificate, filtered by step and outcome when not NULL. */
int pf_rows(const char *cert, const char *step, const char *outcome);

/* Polls fn(arg) every 20 ms until it returns nonzero or PF_WAIT_MS pass;
 * returns its last value. */
int pf_wait(int (*fn)(void *arg), void *arg);

#endif
