/* The emulator's HTTP layer over civetweb: one listener per service, a route
 * table per service, request parsing (bounded body, headers, query, path
 * parameters), reply helpers, fault injection and the access log. Services
 * see only this interface, never civetweb. */
#ifndef EMU_SERVER_H
#define EMU_SERVER_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <openssl/types.h>
#include "core/err.h"

struct emu;
struct emu_req;

typedef void (*emu_handler_fn)(struct emu_req *r);

/* Pattern syntax: literal segments, "{name}" matches one non-empty segment,
 * a final "{name*}" matches the rest (possibly empty). A trailing "/" in the
 * request path is significant only if the pattern has one. */
struct emu_route {
    const char *method; /* "GET", ... or "*" for any */
    const char *pattern;
    emu_handler_fn fn;
};

struct emu_service_def {
    const char *name; /* "entra", "keyvault", ... (fault and log key) */
    const struct emu_route *routes;
    size_t nroutes;
    int plain_http; /* 1 = http (IMDS, Arc); default https */
    /* Replies in the service's own error shape for unknown routes (404),
     * wrong methods (405) and oversized bodies (413); NULL = JSON default. */
    void (*error)(struct emu_req *r, int status, const char *code, const char *message);
    /* TLS client certificates (https only). 0 = never asked for (default);
     * 1 = asked for and optional: a client may send none, but one it sends
     * must verify to the PEM bundle client_ca_file(ctx) names (not the
     * system store) or the handshake fails. Handlers get it from
     * emu_req_peer_cert. */
    int client_cert;
    const char *(*client_ca_file)(void *ctx);
};

/* Starts a listener for the service on 127.0.0.1:port (0 = any) and records
 * its base URL under key (usually def->name; "keyvault/<vault>" for vaults).
 * ctx is passed to handlers as r->svc_ctx. */
enum clc_err emu_service_add(struct emu *e, const char *key, const struct emu_service_def *def,
                             int port, void *ctx, struct clc_errinfo *ei);

#define EMU_MAX_PARAMS 8

struct emu_req {
    struct emu *emu;
    const struct emu_service_def *svc;
    void *svc_ctx;
    void *conn; /* civetweb connection (server.c only) */
    const char *method;
    const char *path;  /* decoded, without query */
    const char *query; /* raw query string, NULL if none */
    const char *body;  /* NUL-terminated copy; "" when none */
    size_t body_len;
    char request_id[37];
    const char *param_names[EMU_MAX_PARAMS];
    char *param_values[EMU_MAX_PARAMS];
    size_t nparams;
    int status; /* set by the reply helpers, for the access log */
};

const char *emu_req_header(const struct emu_req *r, const char *name);
/* Path parameter captured by "{name}"; NULL when absent. */
const char *emu_req_param(const struct emu_req *r, const char *name);
/* Decoded query parameter (names are decoded too: "api%2Dversion" matches
 * "api-version"). Returns 1 and fills out (NUL-terminated, truncated never:
 * 0 if it would not fit), 0 when absent. */
int emu_req_query(const struct emu_req *r, const char *name, char *out, size_t outlen);
/* Decoded value of an application/x-www-form-urlencoded body field. */
int emu_req_form(const struct emu_req *r, const char *name, char *out, size_t outlen);
/* Every request header, in arrival order: fills up to max name/value pairs
 * (borrowed, valid during the request) and returns how many. For signatures
 * that canonicalise all headers (Storage SharedKey) and x-ms-meta-*. */
size_t emu_req_headers(const struct emu_req *r, const char **names, const char **values,
                       size_t max);
/* The path as sent, still percent-encoded (signatures cover it). */
const char *emu_req_raw_path(const struct emu_req *r);
/* Remote peer's address ("127.0.0.1"). */
const char *emu_req_remote(const struct emu_req *r);
/* The TLS client certificate the handshake verified, borrowed for the
 * request; NULL when none was sent or the service does not ask for one. */
X509 *emu_req_peer_cert(const struct emu_req *r);

/* Sends status, Content-Type, Content-Length, Date, x-ms-request-id, echo of
 * x-ms-client-request-id, the extra "Name: value" headers (NULL-terminated
 * list or NULL) and the body. Exactly one reply per request. */
void emu_reply(struct emu_req *r, int status, const char *content_type, const void *body,
               size_t len, const char *const *extra_headers);
/* JSON body ("application/json; charset=utf-8"); body NULL = empty. */
void emu_reply_json(struct emu_req *r, int status, const cJSON *body,
                    const char *const *extra_headers);
/* Azure's usual {"error":{"code":..,"message":..}}. */
void emu_reply_azure_error(struct emu_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The service's error shape (def->error) or the Azure default. */
void emu_reply_error(struct emu_req *r, int status, const char *code, const char *message);

#endif
