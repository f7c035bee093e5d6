/* HTTP client on libcurl: one reused handle per client (connection reuse),
 * TLS always verified (system store or a given CA bundle), connect and total
 * timeouts, HTTPS_PROXY/NO_PROXY, a hard cap on response size, a request id
 * on every request, response headers kept for the caller, and a refusal to
 * send bearer tokens over plain http except to managed identity endpoints.
 * A client is not thread-safe: use one per thread. */
#ifndef CLC_HTTP_H
#define CLC_HTTP_H

#include <stddef.h>
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/secret.h"
#include "net/retry.h"

struct clc_http;

struct clc_http_opts {
    const char *ca_bundle;         /* PEM file; NULL = system store */
    long connect_timeout_ms;       /* 0 = 10 s */
    long timeout_ms;               /* whole transfer; 0 = 60 s */
    size_t max_response_bytes;     /* 0 = 16 MiB */
    const char *user_agent;        /* NULL = "certlc/<version>" */
    const char *proxy;             /* NULL = libcurl's HTTPS_PROXY/NO_PROXY handling */
    const struct clc_clock *clock; /* for Retry-After dates; NULL = system */
};

#define CLC_HTTP_MAX_HEADERS 64

struct clc_http_header {
    char *name;  /* as received; compare case-insensitively. Owns the
                    allocation that also holds value: free name only */
    char *value; /* leading/trailing whitespace removed; inside name's block */
};

struct clc_http_req {
    const char *method; /* "GET", "POST", ... */
    const char *url;
    const char *const *headers; /* NULL-terminated "Name: value" list, or NULL */
    const void *body;           /* may be NULL */
    size_t body_len;
    const char *content_type;               /* sets Content-Type when body is given */
    const struct clc_secret *bearer;        /* sent as "Authorization: Bearer ..." */
    const struct clc_secret *authorization; /* raw Authorization value (e.g. "Basic ...") */
    int idempotent;                         /* 1 = safe to repeat (retry allowed) */
    int no_proxy;                           /* 1 = never through a proxy (IMDS) */
    const char *client_request_id;          /* NULL = a fresh UUID */
};

struct clc_http_resp {
    long status;
    struct clc_buf body;
    struct clc_http_header headers[CLC_HTTP_MAX_HEADERS];
    size_t nheaders;
    char client_request_id[40]; /* the id we sent */
    int attempts;               /* tries made by clc_http_send */
};

enum clc_err clc_http_new(const struct clc_http_opts *opts, struct clc_http **out,
                          struct clc_errinfo *ei);
void clc_http_free(struct clc_http *h);

void clc_http_resp_init(struct clc_http_resp *r);
void clc_http_resp_cleanup(struct clc_http_resp *r);
/* First header with that name (case-insensitive), or NULL. */
const char *clc_http_resp_header(const struct clc_http_resp *r, const char *name);

/* One attempt. CLC_OK means a response arrived (any status: check
 * resp->status). Transport failures map to CLC_ERR_NET / _TLS / _TIMEOUT /
 * _LIMIT (response over the cap) with the reason in ei. resp is reset first. */
enum clc_err clc_http_do(struct clc_http *h, const struct clc_http_req *req,
                         struct clc_http_resp *resp, struct clc_errinfo *ei);

/* With retries under policy (NULL = default) when req->idempotent: repeats on
 * retryable transport errors and retryable statuses, honouring Retry-After.
 * Returns CLC_OK with the last response, whatever its status, or the last
 * transport error. */
enum clc_err clc_http_send(struct clc_http *h, const struct clc_http_req *req,
                           const struct clc_retry_policy *policy, struct clc_http_resp *resp,
                           struct clc_errinfo *ei);

/* 1 if a bearer token may be sent to this URL: https, or plain http to a
 * managed identity endpoint (169.254.169.254, localhost, 127.0.0.1). */
int clc_http_bearer_allowed(const char *url);

/* Percent-encoding for query strings and form bodies (RFC 3986 unreserved
 * kept). Appends to b. */
enum clc_err clc_http_urlencode(struct clc_buf *b, const char *s);

#endif
