/* The emulator's per-request state inside the core (server.c and
 * router.c): the public emu_req plus what civetweb and the reply path need.
 * Services never see it. */
#ifndef EMU_REQUEST_H
#define EMU_REQUEST_H

#include <stddef.h>
#include <stdint.h>
#include "core/buf.h"
#include "emulator/emu_ext.h"
#include "emulator/emu_internal.h"
#include "emulator/server.h"

struct mg_connection;
struct mg_request_info;

#define EMU_MAX_CORE_HEADERS 4
#define EMU_CORE_HEADER_MAX EMU_REPLY_HEADER_MAX

/* Parameter names cut out of "{name}" in a pattern. */
struct emu_pname {
    char s[48];
};

/* Everything server.c keeps per request beyond the public emu_req. */
struct emu_req_priv {
    struct emu_req pub; /* first: emu_req pointers convert back */
    struct emu_listener *l;
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    const char *raw_path;
    char *path_buf;
    struct clc_buf body;
    size_t ncore_headers;
    int64_t t0;
    int close_after;
    int dropped;
    /* Last and left uninitialised (4 KiB cleared for every request showed
     * in the profile): only entries below ncore_headers / nparams are read. */
    char core_headers[EMU_MAX_CORE_HEADERS][EMU_CORE_HEADER_MAX];
    struct emu_pname names[EMU_MAX_PARAMS];
};

static inline struct emu_req_priv *emu_priv(struct emu_req *r)
{
    return (struct emu_req_priv *)(void *)r;
}

static inline const struct emu_req_priv *emu_cpriv(const struct emu_req *r)
{
    return (const struct emu_req_priv *)(const void *)r;
}

/* Percent-decodes n bytes (strictly: bad escapes and %00 fail); malloc'd,
 * NULL on failure. plus_is_space for form and query values. */
char *emu_pct_decode_dup(const char *in, size_t n, int plus_is_space);
/* Frees the path parameters of the last route match. */
void emu_req_clear_params(struct emu_req *r);

#endif
