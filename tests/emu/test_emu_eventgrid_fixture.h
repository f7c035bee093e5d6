/* Shared fixture of the Event Grid emulator tests: a webhook receiver (a
 * plain-http raw socket server on 127.0.0.1:0, per-path behaviour, every
 * request recorded), one emulator per binary started from a config that
 * points at it, the control API, the publish API, and Storage clients to
 * read the queue and the dead-letter container. */
#ifndef TEST_EMU_EVENTGRID_FIXTURE_H
#define TEST_EMU_EVENTGRID_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "azure/blob.h"
#include "azure/queue.h"
#include "emulator/emu.h"
#include "net/http.h"

#define EGFX_ACCOUNT "devstoreaccount1"
#define EGFX_WAIT_MS 8000

/* How a receiver path answers. */
enum egfx_validate {
    EGFX_VALIDATE_CODE = 0, /* 200 {"validationResponse": code} */
    EGFX_VALIDATE_MANUAL,   /* 200 without a body (the test GETs validationUrl) */
    EGFX_VALIDATE_WRONG,    /* 200 with another code */
    EGFX_VALIDATE_FAIL      /* 500 */
};

struct egfx_rec {
    char path[128];
    char event_type[64]; /* aeg-event-type */
    char sub_name[80];   /* aeg-subscription-name */
    int delivery_count;  /* aeg-delivery-count, -1 when absent */
    char data_version[32];
    char metadata_version[32];
    char content_type[96];
    char secret[128]; /* x-certlc-webhook-secret */
    char *body;
};

struct egfx {
    char dir[256], data_dir[300], config[300];
    struct emu *e;
    struct clc_http *http;
    struct clc_clock clock;
    cJSON *ids;
    int port;      /* the receiver */
    char hook[64]; /* "http://127.0.0.1:PORT/hook" */
    struct clc_storage_cred *cred;
    struct clc_queue *queue;
    struct clc_blob *blob;
    char *toks[8][2];
    int64_t tok_at[8];
    size_t ntoks;
};

extern struct egfx eg;

/* Starts the receiver, writes config_json with every "HOOK" replaced by the
 * receiver's base URL, starts the emulator with a data dir. */
int egfx_setup(const char *config_json);
int egfx_teardown(void);
/* Stops and starts the emulator on the same data dir (the receiver stays). */
int egfx_restart(void);

/* Behaviour of /hook/<name>: handshake answer and status for deliveries. */
void egfx_hook_mode(const char *name, enum egfx_validate v, int status);
/* Requests recorded for /hook/<name> with that aeg-event-type (NULL = any). */
size_t egfx_count(const char *name, const char *type);
/* Waits (bounded) until egfx_count reaches want; fails the test otherwise. */
void egfx_wait(const char *name, const char *type, size_t want);
/* A copy of the idx-th such record (body malloc'd: egfx_rec_free). */
void egfx_get(const char *name, const char *type, size_t idx, struct egfx_rec *out);
void egfx_rec_free(struct egfx_rec *r);

struct egr {
    long status;
    cJSON *json;
    struct clc_http_resp resp;
};
void egr_free(struct egr *r);

/* A token for identity and scope (cached). */
const char *egfx_token(const char *identity, const char *scope);
/* The control API as admin. */
void egfx_admin(const char *method, const char *path, const char *body, struct egr *r);
/* Any request to a URL with extra headers (NULL-terminated) and a bearer token. */
void egfx_call(const char *method, const char *url, const char *const *headers, const char *ctype,
               const char *body, size_t len, const char *bearer, struct egr *r);
/* POST to /topics/<topic>/api/events?api-version=2018-01-01 with aeg-sas-key
 * (NULL = none). */
void egfx_publish(const char *topic, const char *key, const char *ctype, const char *body,
                  struct egr *r);

/* Clock control through the control API. */
void egfx_freeze(void);
void egfx_advance(int64_t seconds);

/* The control API's view of a subscription (caller frees), and waits. */
cJSON *egfx_sub(const char *name);
void egfx_wait_state(const char *name, const char *state);
/* Waits until the subscription has no pending events and `delivered` +
 * `dead_lettered` + `dropped` reaches want. */
void egfx_wait_settled(const char *name, int64_t want);

const char *egfx_str(const cJSON *o, const char *path);
int64_t egfx_int(const cJSON *o, const char *path);
const char *egfx_errdetail(const struct egr *r);

/* Blob names under prefix in a container (caller frees the list). */
void egfx_blobs(const char *container, const char *prefix, struct clc_blob_list *out);
/* Waits until exactly n blobs exist under prefix. */
void egfx_wait_blobs(const char *container, const char *prefix, size_t n);

#define eg_expect(r, want)                                                                         \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("%s:%d: status %ld, expected %d: %s", __FILE__, __LINE__, (r)->status,        \
                     (int)(want), clc_buf_str(&(r)->resp.body));                                   \
    } while (0)

#endif
