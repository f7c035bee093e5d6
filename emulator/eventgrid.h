/* The emulated Event Grid's model, shared by its parts: subscriptions and
 * custom topics (eventgrid_sub.c), pending deliveries, history and
 * persistence (eventgrid_store.c), the delivery worker (eventgrid_deliver.c),
 * the webhook handshake (eventgrid_validate.c), the publish API
 * (eventgrid_publish.c) and the service with its control routes (eventgrid.c). */
#ifndef EMU_EVENTGRID_H
#define EMU_EVENTGRID_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

struct emu;
struct emu_req;

#define EG_MAX_SUBS 64
#define EG_MAX_TOPICS 32
#define EG_NAME_MAX 64 /* subscription and topic names: 3-64 of [A-Za-z0-9-] */
#define EG_URL_MAX 1024
#define EG_SECRET_MAX 256
#define EG_ID_MAX 128                      /* event ids (longer ones are refused at publish) */
#define EG_MAX_TYPES 25                    /* included event types per subscription */
#define EG_FILTER_MAX 512                  /* subject prefix / suffix */
#define EG_MAX_PENDING 4096                /* undelivered events over every subscription */
#define EG_HIST_MAX 256                    /* delivery records kept per subscription */
#define EG_SEEN_MAX 2048                   /* event ids remembered per subscription */
#define EG_EVENT_MAX ((size_t)1024 * 1024) /* one event, and one publish request */
#define EG_ATTEMPT_TIMEOUT_MS 5000         /* one delivery attempt */
#define EG_HANDSHAKE_WINDOW_S (24 * 3600)  /* handshake retries before Failed */
#define EG_MANUAL_WINDOW_S 300             /* a validationUrl stays valid */
#define EG_DEADLETTER_WINDOW_S (4 * 3600)  /* dead-letter writes retried this long */
#define EG_DEFAULT_ATTEMPTS 30
#define EG_DEFAULT_TTL_MIN 1440
#define EG_SUB_RESOURCE                                                                            \
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/certlc-emulator/"          \
    "providers/Microsoft.EventGrid/topics/"

enum eg_dest { EG_DEST_WEBHOOK = 1, EG_DEST_QUEUE };

/* Azure's provisioning states, as the control API shows them. */
enum eg_state {
    EG_SUB_CREATING = 0,    /* handshake not yet answered */
    EG_SUB_AWAITING_MANUAL, /* answered 200 without the code: waiting for a GET of validationUrl */
    EG_SUB_ACTIVE,          /* "Succeeded" */
    EG_SUB_FAILED
};

enum eg_schema { EG_SCHEMA_EVENTGRID = 0, EG_SCHEMA_CLOUDEVENTS };

struct eg_hist {
    int64_t time;  /* emulator seconds */
    char kind[16]; /* "handshake", "delivery", "deadletter", "dropped" */
    char event_id[EG_ID_MAX + 1];
    int attempt; /* 1-based; 0 for records that are not attempts */
    long status; /* HTTP status, 0 when none */
    char outcome[40];
};

struct eg_sub {
    char name[EG_NAME_MAX + 1];
    char topic[EG_NAME_MAX + 1]; /* vault name or custom topic name */
    enum eg_dest dest;
    char url[EG_URL_MAX];
    char secret[EG_SECRET_MAX]; /* "" = none; never logged or dumped */
    char secret_header[64];
    char account[25], queue[64];
    int64_t queue_ttl; /* 0 = the queue's default, -1 = never */
    char *types[EG_MAX_TYPES];
    size_t ntypes;
    char begins[EG_FILTER_MAX + 1], ends[EG_FILTER_MAX + 1];
    int case_sensitive;
    int64_t max_attempts, ttl_min;
    char dl_account[25], dl_container[64]; /* dl_account "" = no dead-letter */
    int from_config;
    cJSON *def; /* the definition as given (secret included) */

    /* run time */
    enum eg_state state;
    char vcode[37], vtoken[33];
    int vattempts;
    int64_t vfirst, vnext, vdeadline;
    int vbusy;
    int64_t delivered, dead_lettered, dropped, attempts;
    struct eg_hist hist[EG_HIST_MAX];
    size_t hhead, hn;
    char *seen[EG_SEEN_MAX];
    size_t shead, sn;
};

struct eg_topic {
    char name[EG_NAME_MAX + 1];
    char key[EG_SECRET_MAX]; /* never logged or dumped */
    int from_config;
};

enum eg_item_state { EG_ITEM_DELIVER = 0, EG_ITEM_DEADLETTER };

/* One event waiting for one subscription. */
struct eg_item {
    struct eg_item *next;
    uint64_t id;
    char sub[EG_NAME_MAX + 1];
    enum eg_schema schema;
    char *text; /* the event JSON (one object) */
    char event_id[EG_ID_MAX + 1];
    char data_version[32];
    int64_t publish_ms;
    int attempts;
    int64_t due;          /* next attempt, emulator seconds */
    int64_t last_attempt; /* 0 = none */
    char last_outcome[40];
    long last_status;
    enum eg_item_state state;
    char dl_reason[64];
    int64_t dl_deadline;
    int busy;
};

struct eg_svc {
    struct emu *e;
    pthread_mutex_t mu; /* everything below; never held over network I/O */
    pthread_cond_t cond;
    pthread_t worker;
    int worker_running, stop, wake;
    struct eg_sub *subs[EG_MAX_SUBS];
    size_t nsubs;
    struct eg_topic topics[EG_MAX_TOPICS];
    size_t ntopics;
    struct eg_item *items;
    size_t nitems;
    uint64_t next_item;
    int64_t log_after;  /* event log cursor */
    int dirty;          /* persistence is behind */
    char base_url[128]; /* the "eventgrid" listener */
    int64_t dl_written, dl_lost, log_lost;
};

/* ---- eventgrid_sub.c ---- */
/* Parses one subscription definition (the config shape); name may come from
 * the path (then def's "name" must be absent or equal). */
enum clc_err eg_sub_parse(const cJSON *def, const char *name, struct eg_sub **out,
                          struct clc_errinfo *ei);
void eg_sub_free(struct eg_sub *s);
/* 1 when the event (EG or CloudEvents object) passes the filter. */
int eg_sub_matches(const struct eg_sub *s, const cJSON *ev, enum eg_schema schema);
/* The control API's view: definition (secret masked), state, counters,
 * pending count, history. */
cJSON *eg_sub_json(const struct eg_svc *svc, const struct eg_sub *s, int with_history);
const char *eg_state_name(enum eg_state st);
int eg_name_ok(const char *s);
/* Reads config "eventgrid"; subscriptions and topics marked from_config. */
enum clc_err eg_config_load(struct eg_svc *svc, const cJSON *cfg, struct clc_errinfo *ei);
enum clc_err eg_topic_parse(const cJSON *def, const char *name, struct eg_topic *out,
                            struct clc_errinfo *ei);
/* Under mu. */
struct eg_sub *eg_sub_find(struct eg_svc *svc, const char *name);
struct eg_topic *eg_topic_find(struct eg_svc *svc, const char *name);
/* The topic resource id events of a custom topic carry. */
void eg_topic_resource(const char *name, char *out, size_t n);
/* The subscription's topic matches the topic an event came from (a vault's
 * resource id or a custom topic's). */
int eg_topic_matches(const struct eg_sub *s, const char *topic_id);

/* ---- eventgrid_store.c (all under mu) ---- */
void eg_hist_add(struct eg_sub *s, int64_t t, const char *kind, const char *event_id, int attempt,
                 long status, const char *outcome);
/* Offers one event to every matching active subscription (dedupe by id).
 * CLC_ERR_LIMIT when the pending queue has no room (nothing added). */
enum clc_err eg_fanout(struct eg_svc *svc, const char *topic_id, const cJSON *ev,
                       enum eg_schema schema, int64_t publish_ms, size_t *added,
                       struct clc_errinfo *ei);
size_t eg_room(const struct eg_svc *svc);
void eg_item_free(struct eg_item *it);
/* Unlinks and frees every item of a subscription (or all when sub NULL)
 * that is not in flight. */
void eg_items_drop(struct eg_svc *svc, const char *sub);
size_t eg_items_count(const struct eg_svc *svc, const char *sub);
/* Adds or replaces; takes s. The old one's pending items go. */
enum clc_err eg_sub_put(struct eg_svc *svc, struct eg_sub *s, int *replaced,
                        struct clc_errinfo *ei);
int eg_sub_remove(struct eg_svc *svc, const char *name);
/* The persistence document, and loading it back (subscriptions whose
 * definition equals the config keep their state). */
cJSON *eg_store_doc(struct eg_svc *svc);
enum clc_err eg_store_restore(struct eg_svc *svc, const cJSON *doc, struct clc_errinfo *ei);
/* Writes the document when dirty; takes mu itself. */
void eg_store_flush(struct eg_svc *svc);

/* ---- eventgrid_deliver.c ---- */
enum clc_err eg_worker_start(struct eg_svc *svc, struct clc_errinfo *ei);
void eg_worker_stop(struct eg_svc *svc);
void eg_wake(struct eg_svc *svc);
/* Seconds from an attempt to the next one, after `attempts` tries. */
int64_t eg_retry_delay(int attempts);
/* "2026-11-22T13:50:25.1230000Z" */
void eg_time_str(int64_t ms, char out[40]);

/* ---- eventgrid_validate.c ---- */
/* Runs every handshake that is due (network I/O outside mu) and expires
 * manual validations whose window has passed. */
struct clc_http;
void eg_handshakes_run(struct eg_svc *svc, struct clc_http *http);
/* Webhook POST shared by handshakes and deliveries: *status (0 when no
 * answer), the body (max 64 KiB) in *resp_body (malloc'd, may be NULL). */
enum clc_err eg_post(struct clc_http *http, const char *url, const char *const *headers,
                     const char *ctype, const char *body, size_t len, long *status,
                     char **resp_body, struct clc_errinfo *ei);
void eg_h_validate(struct emu_req *r);
/* Starts (or restarts) validation: webhook → CREATING, queue → ACTIVE. */
void eg_sub_begin(struct eg_svc *svc, struct eg_sub *s, int64_t now);

/* ---- eventgrid_publish.c ---- */
void eg_h_publish(struct emu_req *r);
/* Event Grid's error shape with one detail. */
void eg_reply_error(struct emu_req *r, int status, const char *code, const char *detail_code,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
