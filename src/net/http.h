/* The one HTTP client of certlc, on libcurl: one reused handle per client
 * (connection reuse), TLS always verified (system store or a given CA bundle),
 * an optional TLS client certificate, connect and total timeouts,
 * HTTPS_PROXY/NO_PROXY, a hard cap on response size, a request id on every
 * request, response headers kept for the caller, HTTP authentication done by
 * libcurl (Basic, NTLM, Negotiate) over https only, and a refusal to send
 * bearer tokens over plain http except to managed identity endpoints.
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
    const char *client_cert;       /* PEM certificate for TLS client auth; NULL = none */
    const char *client_key;        /* PEM key of client_cert; NULL = in client_cert's file */
    int no_request_id;             /* 1 = no x-ms-client-request-id (a peer that is not Azure) */
};

/* HTTP authentication that libcurl carries out: a challenge scheme's 401
 * and the answer to it happen inside one clc_http_do, on one connection.
 * Only ever sent over https. */
struct clc_http_auth {
    long schemes;                      /* CURLAUTH_* bits (<curl/curl.h>); not 0 */
    const char *username;              /* with password (Basic, NTLM) */
    const struct clc_secret *password; /* never logged or put in messages */
    int default_creds;                 /* instead of username: GSS-API's own credentials (the
                                          Kerberos ticket cache or client keytab) */
    int http11;                        /* HTTP/1.1 only: NTLM authenticates the connection */
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
    const struct clc_http_auth *auth;       /* libcurl's HTTP authentication; excludes the two
                                               above */
    int idempotent;                         /* 1 = safe to repeat (retry allowed) */
    int no_proxy;                           /* 1 = never through a proxy (IMDS) */
    const char *client_request_id;          /* NULL = a fresh UUID */
};

struct clc_http_resp {
    long status;
    struct clc_buf body;
    struct clc_http_header headers[CLC_HTTP_MAX_HEADERS]; /* final response's, repeats kept */
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
/* Every header with that name in the order received (WWW-Authenticate comes
 * once per scheme): start with *pos = 0; NULL after the last. */
const char *clc_http_resp_header_next(const struct clc_http_resp *r, const char *name, size_t *pos);

/* One attempt. CLC_OK means a response arrived (any status: check
 * resp->status; with req->auth, the status after libcurl's auth exchange).
 * Transport failures map to CLC_ERR_NET / _TLS / _TIMEOUT / _LIMIT (response
 * over the cap) / _AUTH (libcurl's login denied) with "METHOD safe-url:
 * reason" in ei. A failure with no status while a client certificate is set
 * is _TLS when libcurl's reason names an alert or a certificate (under TLS
 * 1.3 a server refuses the certificate after the client thinks the
 * handshake done, so libcurl sees a send or receive failure). resp is reset
 * first. */
enum clc_err clc_http_do(struct clc_http *h, const struct clc_http_req *req,
                         struct clc_http_resp *resp, struct clc_errinfo *ei);

/* With retries under policy (NULL = default) when req->idempotent: repeats on
 * retryable transport errors and retryable statuses, honouring Retry-After.
 * Returns CLC_OK with the last response, whatever its status, or the last
 * transport error. */
enum clc_err clc_http_send(struct clc_http *h, const struct clc_http_req *req,
                           const struct clc_retry_policy *policy, struct clc_http_resp *resp,
                           struct clc_errinfo *ei);

/* CLC_OK if this libcurl can do the CURLAUTH_* schemes (NTLM needs its NTLM
 * feature, Negotiate SPNEGO or GSS-API); CLC_ERR_UNSUPPORTED saying which
 * is missing otherwise. clc_http_do checks it too. */
enum clc_err clc_http_auth_available(long schemes, struct clc_errinfo *ei);

/* The URL as messages and logs may show it: no user info, query or fragment
 * (SAS tokens and codes live there), cut to outsz - 1 bytes. */
void clc_http_safe_url(const char *url, char *out, size_t outsz);

/* 1 if a bearer token may be sent to this URL: https, or plain http to a
 * managed identity endpoint (169.254.169.254, localhost, 127.0.0.1). */
int clc_http_bearer_allowed(const char *url);

/* Percent-encoding for query strings and form bodies (RFC 3986 unreserved
 * kept). Appends to b. */
enum clc_err clc_http_urlencode(struct clc_buf *b, const char *s);

#endif
