/* The emulator as a library: start every service on its own HTTPS listener
 * on 127.0.0.1 (port 0 = chosen by the kernel), share one store and one clock,
 * stop cleanly. certlc-emulator (main.c) and the tests are its users. */
#ifndef EMU_H
#define EMU_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

struct emu;

struct emu_opts {
    const char *data_dir;    /* NULL = state in memory only */
    const char *config_file; /* emulator config JSON (identities, roles, ports); NULL = defaults */
    const char *compat_lib; /* OpenSSL 3 compatibility library for civetweb; NULL = built-in path */
    size_t max_body_bytes;  /* request body limit; 0 = 4 MiB */
    int64_t start_time;     /* initial clock, Unix seconds; 0 = system time */
    int quiet;              /* 1 = no access log */
};

enum clc_err emu_start(const struct emu_opts *opts, struct emu **out, struct clc_errinfo *ei);
/* Stops every listener and frees everything; accepts NULL. */
void emu_stop(struct emu *e);

/* Base URL of a service ("https://127.0.0.1:40123"), NULL when unknown.
 * IMDS is plain http, as on Azure. */
const char *emu_service_url(const struct emu *e, const char *service);
/* PEM file with the emulator's test root CA, for clients to trust. */
const char *emu_ca_bundle(const struct emu *e);
const char *emu_tenant(const struct emu *e);

/* The endpoints document (services, ca_bundle, tenant, identities), as JSON
 * text (malloc'd), and written atomically to a file (mode 0600). */
enum clc_err emu_endpoints_json(const struct emu *e, char **out, struct clc_errinfo *ei);
enum clc_err emu_write_endpoints(const struct emu *e, const char *path, struct clc_errinfo *ei);

/* Clock, for in-process tests (the control API does the same over HTTP). */
int64_t emu_now_ms(const struct emu *e);
void emu_clock_set(struct emu *e, int64_t unix_s);
void emu_clock_advance(struct emu *e, int64_t seconds);

#endif
