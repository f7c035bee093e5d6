/* Errors as values: one enum for every fallible function in certlc, and an
 * optional caller-supplied detail (human message, HTTP status, service error
 * code, request id) filled where the cause is known. */
#ifndef CLC_ERR_H
#define CLC_ERR_H

#include <stddef.h>

enum clc_err {
    CLC_OK = 0,
    CLC_ERR_NOMEM,       /* allocation failed */
    CLC_ERR_INVALID,     /* bad argument or input from the caller/user */
    CLC_ERR_PARSE,       /* malformed data from a file or peer */
    CLC_ERR_LIMIT,       /* a size or count limit was hit */
    CLC_ERR_IO,          /* file system or process I/O */
    CLC_ERR_CONFIG,      /* configuration missing or wrong */
    CLC_ERR_NET,         /* connection refused, reset, DNS */
    CLC_ERR_TLS,         /* TLS handshake or verification failed */
    CLC_ERR_TIMEOUT,     /* a connect, transfer or wait bound expired */
    CLC_ERR_HTTP,        /* the peer answered with an unexpected status */
    CLC_ERR_AUTH,        /* credentials refused (401) or missing */
    CLC_ERR_FORBIDDEN,   /* authenticated but not allowed (403) */
    CLC_ERR_NOT_FOUND,   /* the object does not exist (404) */
    CLC_ERR_CONFLICT,    /* the object is in a conflicting state (409) */
    CLC_ERR_THROTTLED,   /* the peer asked us to slow down (429) */
    CLC_ERR_UNAVAILABLE, /* the peer is temporarily unavailable (5xx) */
    CLC_ERR_CRYPTO,      /* an OpenSSL operation failed */
    CLC_ERR_UNSUPPORTED, /* a feature or variant we do not implement */
    CLC_ERR_INTERNAL,    /* a bug: an invariant did not hold */
    CLC_ERR__COUNT
};

#define CLC_ERRINFO_MSG_MAX 512

/* Detail about the last error. Every field is optional; all are plain text
 * and never contain secrets (callers must not format secrets into them). */
struct clc_errinfo {
    char msg[CLC_ERRINFO_MSG_MAX]; /* human-readable, one line */
    long http_status;              /* 0 when not an HTTP error */
    char code[96];                 /* service error code, e.g. "Forbidden" */
    char request_id[96];           /* x-ms-request-id or similar, if known */
};

/* Stable lower-case name of an error ("not_found"). Never NULL. */
const char *clc_err_name(enum clc_err e);

/* Maps an HTTP status to the closest error (2xx -> CLC_OK). */
enum clc_err clc_err_from_http(long status);

void clc_errinfo_clear(struct clc_errinfo *ei);

/* Sets ei->msg (if ei is not NULL) and returns e, so that callers can write
 * `return clc_errf(ei, CLC_ERR_PARSE, "field '%s': missing", key);`.
 * An existing message is replaced. */
enum clc_err clc_errf(struct clc_errinfo *ei, enum clc_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context: "reading config: <old msg>". */
enum clc_err clc_err_wrap(struct clc_errinfo *ei, enum clc_err e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the HTTP status and service code (code may be NULL). */
void clc_errinfo_set_http(struct clc_errinfo *ei, long status, const char *code);

#endif
