/* Additions to the emulator contract headers (server.h, state.h,
 * services.h) that services may use: control API routes of their own and a
 * directory for files that must exist even without a data dir. */
#ifndef EMU_EXT_H
#define EMU_EXT_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"
#include "emulator/server.h"

struct emu;

/* Adds routes under "/control/<component>/..." to the control API. Patterns
 * are full paths ("/control/keyvault/{vault}/near-expiry"); handlers run only
 * after the admin token check and get ctx as r->svc_ctx. The routes array is
 * borrowed for the emulator's life. */
enum clc_err emu_control_add_routes(struct emu *e, const char *component,
                                    const struct emu_route *routes, size_t nroutes, void *ctx);

/* The data dir, or without one a private directory removed at stop: for
 * files clients must read (PEM bundles) even when state is in memory. */
const char *emu_work_dir(const struct emu *e);

/* A number unique to the TCP connection the request came on (never reused
 * in this process): for state a protocol binds to a connection (NTLM). */
uint64_t emu_req_conn_id(const struct emu_req *r);
/* Adds a "Name: value" line to the reply the handler will send (at most 4
 * per request, each under EMU_REPLY_HEADER_MAX): an authentication layer's
 * header (WWW-Authenticate with a Negotiate token) on the service's reply. */
#define EMU_REPLY_HEADER_MAX 1024
void emu_req_add_reply_header(struct emu_req *r, const char *line);

#endif
