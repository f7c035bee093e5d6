/* The emulator core's private wiring: the struct emu every core file shares,
 * and the functions emu.c, server.c, state.c, faults.c, control.c and tls.c
 * call on each other. Services never include this; they use server.h,
 * state.h, services.h and emu_ext.h. */
#ifndef EMU_INTERNAL_H
#define EMU_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "emulator/emu.h"
#include "emulator/server.h"
#include "emulator/services.h"

#define EMU_MAX_LISTENERS 64
#define EMU_MAX_HOOKS 32
#define EMU_MAX_CONTROL_ROUTESETS 32
#define EMU_KEY_MAX 64
#define EMU_URL_MAX 64
#define EMU_DEFAULT_MAX_BODY ((size_t)4 * 1024 * 1024)
#define EMU_CONFIG_MAX_BYTES ((size_t)1024 * 1024)

struct mg_context;
struct emu_faults;

struct emu_listener {
    struct emu *emu;
    char key[EMU_KEY_MAX];
    char url[EMU_URL_MAX];
    const struct emu_service_def *def;
    void *ctx;
    struct mg_context *mg;
    int port;
};

struct emu_tick_hook {
    emu_tick_fn fn;
    void *ctx;
};

struct emu_stop_hook {
    emu_stop_fn fn;
    void *ctx;
};

struct emu_named {
    char name[EMU_KEY_MAX];
    void *ptr;
    emu_endpoints_fn fn; /* endpoints contributions only */
};

struct emu_hook {
    char component[EMU_KEY_MAX];
    emu_control_reset_fn reset;
    emu_control_dump_fn dump;
    void *ctx;
};

struct emu_control_routeset {
    char component[EMU_KEY_MAX];
    const struct emu_route *routes;
    size_t nroutes;
    void *ctx;
};

struct emu_clock_state {
    int64_t offset_ms; /* added to system time when running */
    int frozen;
    int64_t frozen_at_ms; /* the time while frozen */
};

struct emu {
    pthread_mutex_t lock; /* the store lock (emu_lock) */

    /* configuration */
    cJSON *config;
    size_t max_body_bytes;
    int quiet;

    /* files: data_dir is the user's (NULL = in memory); work_dir always
     * exists (data_dir, or a private temporary directory removed at stop) */
    char *data_dir;
    char *work_dir;
    int work_dir_is_temp;

    /* clock (its own leaf lock, so emu_now works under the store lock) */
    pthread_mutex_t clock_mu;
    pthread_mutex_t clock_save_mu; /* orders snapshots written to disk */
    struct emu_clock_state clock;

    /* TLS */
    char *ca_bundle;  /* <work_dir>/ca-bundle.pem */
    char *server_pem; /* <work_dir>/server.pem (certificate + key) */
    int mg_inited;

    /* listeners (their own lock: services may add one at run time) */
    pthread_mutex_t listeners_mu;
    struct emu_listener *listeners[EMU_MAX_LISTENERS];
    size_t nlisteners;

    struct emu_directory *dir;
    struct emu_faults *faults;

    /* control API extension points (guarded by hooks_mu) */
    pthread_mutex_t hooks_mu;
    struct emu_hook hooks[EMU_MAX_HOOKS];
    size_t nhooks;
    struct emu_control_routeset routesets[EMU_MAX_CONTROL_ROUTESETS];
    size_t nroutesets;

    /* components and endpoints contributions (guarded by hooks_mu) */
    struct emu_named components[EMU_MAX_HOOKS];
    size_t ncomponents;
    struct emu_named endpoints[EMU_MAX_HOOKS];
    size_t nendpoints;

    /* ticker.c: tick and stop hooks (tick_mu), rounds (tick_run_mu) */
    pthread_mutex_t tick_mu;
    pthread_mutex_t tick_run_mu;
    pthread_cond_t tick_cond;
    pthread_t ticker;
    int ticker_inited, ticker_running, ticker_stop;
    struct emu_tick_hook ticks[EMU_MAX_HOOKS];
    size_t nticks;
    struct emu_stop_hook stops[EMU_MAX_HOOKS];
    size_t nstops;
};

/* ticker.c */
enum clc_err emu_ticker_init(struct emu *e);
enum clc_err emu_ticker_start(struct emu *e, struct clc_errinfo *ei);
void emu_ticker_stop(struct emu *e);
/* Runs the stop hooks (reverse order) and frees the ticker's resources. */
void emu_ticker_cleanup(struct emu *e);

/* state.c */
enum clc_err emu_state_init(struct emu *e, const struct emu_opts *opts, struct clc_errinfo *ei);
void emu_state_cleanup(struct emu *e);
void emu_clock_get(const struct emu *e, struct emu_clock_state *out, int64_t *now_ms);
void emu_clock_freeze(struct emu *e, int frozen);
/* Writes the clock document (a no-op without a data dir). */
enum clc_err emu_clock_persist(struct emu *e, struct clc_errinfo *ei);
/* 1 when name is a valid store document name ([a-z0-9-], 1..64). */
int emu_store_name_ok(const char *name);
/* <work_dir>/<name>, malloc'd. */
char *emu_work_path(const struct emu *e, const char *name);

/* tls.c */
/* Loads the civetweb compatibility library and initialises civetweb's TLS. */
enum clc_err emu_tls_init_library(struct emu *e, const char *compat_lib, struct clc_errinfo *ei);
void emu_tls_exit_library(struct emu *e);
/* Makes or reuses the test root CA and server certificate in work_dir. */
enum clc_err emu_tls_setup(struct emu *e, struct clc_errinfo *ei);
/* One real TLS handshake to 127.0.0.1:port verified against the bundle. */
enum clc_err emu_tls_selfcheck(const char *ca_bundle, int port, struct clc_errinfo *ei);

/* server.c */
void emu_listeners_stop(struct emu *e);
/* Matches r->path against routes; fills r's params on success.
 * Returns 200 (found, *out set), 404 or 405. */
int emu_route_find(struct emu_req *r, const struct emu_route *routes, size_t n,
                   const struct emu_route **out);
/* Adds a header line to the next reply (used by faults for Retry-After). */
void emu_req_add_reply_header(struct emu_req *r, const char *line);
/* Closes the connection at once without a response. */
void emu_req_drop(struct emu_req *r);

/* faults.c */
enum clc_err emu_faults_new(struct emu_faults **out);
void emu_faults_free(struct emu_faults *f);
void emu_faults_clear(struct emu_faults *f);
/* Parses and adds a rule; *id receives its number. */
enum clc_err emu_faults_add(struct emu_faults *f, const cJSON *rule, int64_t *id,
                            struct clc_errinfo *ei);
/* 1 when the rule existed. */
int emu_faults_delete(struct emu_faults *f, int64_t id);
cJSON *emu_faults_dump(struct emu_faults *f);

enum emu_fault_action { EMU_FAULT_NONE = 0, EMU_FAULT_STATUS, EMU_FAULT_DROP, EMU_FAULT_DELAY };
struct emu_fault_hit {
    enum emu_fault_action action;
    int status;
    int64_t retry_after_s; /* < 0 = no Retry-After */
    int64_t latency_ms;
    char code[64];
    char message[160];
};
/* Consumes one use of the first rule matching (service, method, path). */
void emu_faults_match(struct emu_faults *f, const char *service, const char *method,
                      const char *path, struct emu_fault_hit *hit);

/* control.c */
void emu_control_reset_all(struct emu *e);

/* emu.c */
/* Every registered service URL as {"key": url, "parent": {"child": url}}. */
cJSON *emu_services_json(const struct emu *e);

#endif
