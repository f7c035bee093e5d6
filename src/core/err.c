/* Error names, HTTP status mapping and the caller-supplied error detail.
 * Messages are built in a fixed buffer: every write is bounded and a too-long
 * message is truncated, never overflowed. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[CLC_ERR__COUNT] = {
    [CLC_OK] = "ok",
    [CLC_ERR_NOMEM] = "nomem",
    [CLC_ERR_INVALID] = "invalid",
    [CLC_ERR_PARSE] = "parse",
    [CLC_ERR_LIMIT] = "limit",
    [CLC_ERR_IO] = "io",
    [CLC_ERR_CONFIG] = "config",
    [CLC_ERR_NET] = "net",
    [CLC_ERR_TLS] = "tls",
    [CLC_ERR_TIMEOUT] = "timeout",
    [CLC_ERR_HTTP] = "http",
    [CLC_ERR_AUTH] = "auth",
    [CLC_ERR_FORBIDDEN] = "forbidden",
    [CLC_ERR_NOT_FOUND] = "not_found",
    [CLC_ERR_CONFLICT] = "conflict",
    [CLC_ERR_THROTTLED] = "throttled",
    [CLC_ERR_UNAVAILABLE] = "unavailable",
    [CLC_ERR_CRYPTO] = "crypto",
    [CLC_ERR_UNSUPPORTED] = "unsupported",
    [CLC_ERR_INTERNAL] = "internal",
};

const char *clc_err_name(enum clc_err e)
{
    /* Cast first: an out-of-range value from a bad cast must not index past
     * the table. */
    unsigned idx = (unsigned)e;
    if (idx >= CLC_ERR__COUNT || err_names[idx] == NULL)
        return "unknown";
    return err_names[idx];
}

enum clc_err clc_err_from_http(long status)
{
    if (status >= 200 && status <= 299)
        return CLC_OK;
    switch (status) {
    case 400:
        return CLC_ERR_INVALID;
    case 401:
        return CLC_ERR_AUTH;
    case 403:
        return CLC_ERR_FORBIDDEN;
    case 404:
        return CLC_ERR_NOT_FOUND;
    case 408:
        return CLC_ERR_TIMEOUT;
    case 409:
        return CLC_ERR_CONFLICT;
    case 413:
        return CLC_ERR_LIMIT;
    case 429:
        return CLC_ERR_THROTTLED;
    default:
        break;
    }
    if (status >= 500 && status <= 599)
        return CLC_ERR_UNAVAILABLE;
    return CLC_ERR_HTTP;
}

void clc_errinfo_clear(struct clc_errinfo *ei)
{
    if (ei != NULL)
        memset(ei, 0, sizeof *ei);
}

/* vsnprintf truncates safely; a negative return (encoding error) leaves a
 * placeholder rather than whatever was in the buffer before. */
static void format_into(char *dst, size_t size, const char *fmt, va_list ap)
{
    int n = vsnprintf(dst, size, fmt, ap);
    if (n < 0)
        snprintf(dst, size, "(unformattable message)");
}

/* Keeps messages on one line: a peer's error text with newlines must not
 * split a log record or an e-mail header. */
static void flatten(char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f)
            *s = ' ';
    }
}

enum clc_err clc_errf(struct clc_errinfo *ei, enum clc_err e, const char *fmt, ...)
{
    if (ei == NULL)
        return e;
    va_list ap;
    va_start(ap, fmt);
    format_into(ei->msg, sizeof ei->msg, fmt, ap);
    va_end(ap);
    flatten(ei->msg);
    return e;
}

enum clc_err clc_err_wrap(struct clc_errinfo *ei, enum clc_err e, const char *fmt, ...)
{
    if (ei == NULL)
        return e;
    char prefix[CLC_ERRINFO_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    format_into(prefix, sizeof prefix, fmt, ap);
    va_end(ap);

    char old[CLC_ERRINFO_MSG_MAX];
    memcpy(old, ei->msg, sizeof old);
    old[sizeof old - 1] = '\0';

    /* Assembled by hand, each piece clipped to the room left, so a long
     * prefix shortens the old message instead of overflowing. */
    size_t room = sizeof ei->msg - 1;
    size_t n = 0;
    const char *parts[3] = {prefix, old[0] != '\0' ? ": " : "", old};
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(parts[i]);
        if (k > room - n)
            k = room - n;
        memcpy(ei->msg + n, parts[i], k);
        n += k;
    }
    ei->msg[n] = '\0';
    flatten(ei->msg);
    return e;
}

void clc_errinfo_set_http(struct clc_errinfo *ei, long status, const char *code)
{
    if (ei == NULL)
        return;
    ei->http_status = status;
    if (code != NULL)
        snprintf(ei->code, sizeof ei->code, "%s", code);
    else
        ei->code[0] = '\0';
    flatten(ei->code);
}
