/* Internal wiring between emu.c (start-up, shared state) and the components
 * it starts. Each component owns its state; emu.c only holds the pointer and
 * calls the hooks in order: config, data dir and clock, TLS, directory,
 * control API, Entra ID (entra, imds, arc), then later services. */
#ifndef EMU_SERVICES_H
#define EMU_SERVICES_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

struct emu;
struct emu_directory;

/* The emulator config document (the --config JSON, or an empty object). */
const cJSON *emu_config(const struct emu *e);
/* Port for a service from config "ports": {"entra": 0, ...}; 0 when absent. */
int emu_config_port(const struct emu *e, const char *service);

/* Directory (identity.c): identities, roles, tenant, token signing key.
 * Loaded from the data dir when present, else made from config "identities"
 * (or the default set: renewer, sync, reader, admin) and saved. */
enum clc_err emu_directory_new(struct emu *e, struct emu_directory **out, struct clc_errinfo *ei);
void emu_directory_free(struct emu_directory *d);
struct emu_directory *emu_directory_of(const struct emu *e);
const char *emu_directory_tenant(const struct emu_directory *d);
/* {"renewer": {"client_id": .., "client_secret": ..}, ...} for the endpoints file. */
cJSON *emu_directory_endpoints(const struct emu_directory *d);

/* Audience of tokens for the control API (scope: EMU_CONTROL_AUDIENCE "/.default"). */
#define EMU_CONTROL_AUDIENCE "api://certlc-emulator"

/* Services. Each adds its listeners with emu_service_add. */
enum clc_err emu_control_mount(struct emu *e, struct clc_errinfo *ei);   /* "control" (https) */
enum clc_err emu_entra_mount(struct emu *e, struct clc_errinfo *ei);     /* "entra" (https),
                                                                            "imds", "arc" (http) */
enum clc_err emu_queue_mount(struct emu *e, struct clc_errinfo *ei);     /* "queue" (https) */
enum clc_err emu_blob_mount(struct emu *e, struct clc_errinfo *ei);      /* "blob" (https) */
enum clc_err emu_ca_mount(struct emu *e, struct clc_errinfo *ei);        /* "ca" (https) */
enum clc_err emu_keyvault_mount(struct emu *e, struct clc_errinfo *ei);  /* "keyvault/<vault>" */
enum clc_err emu_eventgrid_mount(struct emu *e, struct clc_errinfo *ei); /* "eventgrid" (https) */
enum clc_err emu_smtp_mount(struct emu *e, struct clc_errinfo *ei);      /* SMTP sink, "mailbox" */
enum clc_err emu_loganalytics_mount(struct emu *e, struct clc_errinfo *ei); /* "loganalytics",
                                                                             "logquery" */
/* {"renewer": "<password>", ...}: the CA accounts for the endpoints file;
 * NULL when the CA is not mounted. */

/* Control API extension point: later services register handlers for
 * "/control/<component>/..." (e.g. "keyvault") and for reset/dump. */
typedef void (*emu_control_reset_fn)(struct emu *e, void *ctx);
typedef cJSON *(*emu_control_dump_fn)(struct emu *e, void *ctx);
enum clc_err emu_control_register(struct emu *e, const char *component, emu_control_reset_fn reset,
                                  emu_control_dump_fn dump, void *ctx);

/* Named components: a part others call into (the event log) registers its
 * state under a name at mount; callers look it up. NULL when absent. */
enum clc_err emu_component_set(struct emu *e, const char *name, void *ptr);
void *emu_component_get(const struct emu *e, const char *name);

/* Additions to the endpoints document: fn returns a new cJSON value that is
 * placed under key (e.g. "ca_accounts"), or NULL for none. */
typedef cJSON *(*emu_endpoints_fn)(const struct emu *e, void *ctx);
enum clc_err emu_endpoints_add(struct emu *e, const char *key, emu_endpoints_fn fn, void *ctx);

/* Time-driven work: fn runs after every clock change (control API or
 * emu_clock_*) and about once a second of real time, never concurrently with
 * itself or other tick hooks, and never under the store lock (it may take it).
 * now is emu_now(). Register from the service's mount function. */
typedef void (*emu_tick_fn)(struct emu *e, int64_t now, void *ctx);
enum clc_err emu_on_tick(struct emu *e, emu_tick_fn fn, void *ctx);
/* Runs every tick hook now (the clock functions call it). */
void emu_tick(struct emu *e);

/* Frees a service's state at emu_stop, after every listener and the ticker
 * have stopped; hooks run in the reverse order of registration. */
typedef void (*emu_stop_fn)(void *ctx);
enum clc_err emu_at_stop(struct emu *e, emu_stop_fn fn, void *ctx);

#endif
