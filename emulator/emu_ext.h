/* Additions to the emulator contract headers (server.h, state.h,
 * services.h) that services may use: control API routes of their own and a
 * directory for files that must exist even without a data dir. */
#ifndef EMU_EXT_H
#define EMU_EXT_H

#include <stddef.h>
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

#endif
