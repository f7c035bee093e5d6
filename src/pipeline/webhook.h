/* The Event Grid webhook of certlc serve: an HTTPS endpoint (civetweb) that
 * answers the subscription handshakes, checks the shared secret, parses
 * deliveries and only wakes the worker; plus /healthz and /metrics. */
#ifndef CLC_WEBHOOK_H
#define CLC_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "azure/event.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"
#include "pipeline/metrics.h"

#define CLC_WEBHOOK_PATH "/api/events"
/* The header that may carry the shared secret (or the query parameter "code"). */
#define CLC_WEBHOOK_SECRET_HEADER "x-certlc-webhook-secret"
#define CLC_WEBHOOK_SECRET_QUERY "code"
#define CLC_WEBHOOK_DEFAULT_MAX_BODY ((size_t)1024 * 1024)
#define CLC_WEBHOOK_DEFAULT_PORT 8443
/* The origin Event Grid names in the CloudEvents abuse-protection OPTIONS. */
#define CLC_WEBHOOK_EVENTGRID_ORIGIN "eventgrid.azure.net"

/* How a request to the events path ended; the label of
 * certlc_webhook_deliveries_total{result}. */
enum clc_webhook_result {
    CLC_WH_ACCEPTED = 0,   /* certificate events parsed, worker woken (202) */
    CLC_WH_IGNORED,        /* well-formed events certlc does not act on (202) */
    CLC_WH_VALIDATION,     /* SubscriptionValidation answered (200) */
    CLC_WH_ABUSE_CHECK,    /* CloudEvents OPTIONS handshake answered (200) */
    CLC_WH_UNAUTHORIZED,   /* no secret (401) */
    CLC_WH_FORBIDDEN,      /* wrong secret (403) */
    CLC_WH_TOO_LARGE,      /* body over the limit (413) */
    CLC_WH_BAD_MEDIA_TYPE, /* not JSON / CloudEvents JSON (415) */
    CLC_WH_MALFORMED,      /* unparseable or invalid events (400) */
    CLC_WH_BAD_METHOD,     /* (405) */
    CLC_WH__COUNT
};
const char *clc_webhook_result_name(enum clc_webhook_result r);

/* What the webhook calls; ctx is passed back. wake must be thread-safe and
 * return at once (it runs on a request thread). snapshot may be NULL (no
 * worker: /healthz says so and answers 503). */
struct clc_webhook_hooks {
    void (*wake)(void *ctx);
    void (*snapshot)(void *ctx, struct clc_metrics_snapshot *out);
    void *ctx;
};

struct clc_webhook_opts {
    const char *listen;              /* address; NULL = "0.0.0.0" */
    int port;                        /* 0 = any free port (see clc_webhook_port) */
    const char *cert_file;           /* PEM: certificate, then its chain */
    const char *key_file;            /* PEM private key (unencrypted) */
    const struct clc_secret *secret; /* required; copied */
    size_t max_body_bytes;           /* 0 = CLC_WEBHOOK_DEFAULT_MAX_BODY */
    const char *compat_lib;          /* NULL = search (net/civetweb_tls.h) */
    int threads;                     /* 0 = 4 */
    const struct clc_event_filter
        *filter; /* which events wake; NULL = default certificate events */
};

struct clc_webhook;

enum clc_err clc_webhook_start(const struct clc_webhook_opts *o, const struct clc_webhook_hooks *h,
                               struct clc_webhook **out, struct clc_errinfo *ei);
int clc_webhook_port(const struct clc_webhook *w);
/* Stops serving (waits for requests in progress) and frees; NULL is fine. */
void clc_webhook_stop(struct clc_webhook *w);

/* ---- the transport-independent part, for tests and the civetweb glue ---- */

struct clc_webhook_header {
    const char *name;
    const char *value;
};

struct clc_webhook_req {
    const char *method;
    const char *path;  /* without the query */
    const char *query; /* raw, without '?'; NULL when none */
    const struct clc_webhook_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    int body_too_large; /* the transport stopped reading at the limit */
    const char *remote; /* client address, for logs */
};

#define CLC_WEBHOOK_RESP_HEADERS 4
struct clc_webhook_resp {
    int status;
    const char *content_type;                    /* static string or NULL */
    char headers[CLC_WEBHOOK_RESP_HEADERS][160]; /* "Name: value" */
    size_t nheaders;
    struct clc_buf body;
    int close;        /* close the connection after the reply */
    char reason[256]; /* why a request was refused, for the log */
};

/* The request handling state without a server: tests drive it directly. */
struct clc_webhook_core;
enum clc_err clc_webhook_core_new(const struct clc_secret *secret, size_t max_body_bytes,
                                  const struct clc_event_filter *filter,
                                  const struct clc_webhook_hooks *h, struct clc_webhook_core **out,
                                  struct clc_errinfo *ei);
void clc_webhook_core_free(struct clc_webhook_core *c);
size_t clc_webhook_core_max_body(const struct clc_webhook_core *c);
/* resp is initialised here; the caller cleans it with clc_webhook_resp_cleanup. */
void clc_webhook_handle(struct clc_webhook_core *c, const struct clc_webhook_req *req,
                        struct clc_webhook_resp *resp);
void clc_webhook_resp_cleanup(struct clc_webhook_resp *resp);
/* Counts by result so far (thread-safe). */
void clc_webhook_counts(const struct clc_webhook_core *c, uint64_t out[CLC_WH__COUNT]);
struct clc_webhook_core *clc_webhook_core_of(struct clc_webhook *w);

#endif
