/* Bounded growable buffers: geometric growth up to a hard maximum fixed at
 * init, so no input can make certlc allocate without limit. */
#include "core/buf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define BUF_MIN_CAP 64

void clc_buf_init(struct clc_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void clc_buf_cleanup(struct clc_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void clc_buf_cleanse(struct clc_buf *b)
{
    if (b == NULL)
        return;
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    clc_buf_cleanup(b);
}

void clc_buf_reset(struct clc_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

/* Makes room for extra bytes plus the terminator. Growth doubles but never
 * past max + 1, and the size arithmetic is checked before it can wrap. */
static enum clc_err reserve(struct clc_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return CLC_ERR_LIMIT;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CLC_OK;
    size_t ncap = b->cap < BUF_MIN_CAP ? BUF_MIN_CAP : b->cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            ncap = need;
            break;
        }
        ncap *= 2;
    }
    if (b->max < SIZE_MAX && ncap > b->max + 1)
        ncap = b->max + 1;
    char *p = realloc(b->data, ncap);
    if (p == NULL)
        return CLC_ERR_NOMEM;
    b->data = p;
    b->cap = ncap;
    return CLC_OK;
}

enum clc_err clc_buf_reserve(struct clc_buf *b, size_t n)
{
    size_t room = b->max >= b->len ? b->max - b->len : 0;
    size_t need = 0;
    char *p = NULL;

    if (n > room)
        n = room;
    if (n >= SIZE_MAX - b->len) /* only an unbounded buffer: left to grow as it goes */
        return CLC_OK;
    need = b->len + n + 1;
    if (need <= b->cap)
        return CLC_OK;
    p = realloc(b->data, need);
    if (p == NULL)
        return CLC_ERR_NOMEM;
    if (b->data == NULL)
        p[0] = '\0';
    b->data = p;
    b->cap = need;
    return CLC_OK;
}

enum clc_err clc_buf_append(struct clc_buf *b, const void *p, size_t n)
{
    enum clc_err rc = reserve(b, n);
    if (rc != CLC_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CLC_OK;
}

enum clc_err clc_buf_append_str(struct clc_buf *b, const char *s)
{
    return clc_buf_append(b, s, strlen(s));
}

enum clc_err clc_buf_append_byte(struct clc_buf *b, char c)
{
    return clc_buf_append(b, &c, 1);
}

enum clc_err clc_buf_appendf(struct clc_buf *b, const char *fmt, ...)
{
    va_list ap;
    size_t spare = b->data != NULL ? b->cap - b->len : 0;
    char probe[1];
    char *dst = spare > 0 ? b->data + b->len : probe;

    /* Formatted straight into the spare room when it fits (one pass, the
     * common case); otherwise that pass measured it and a second writes. */
    va_start(ap, fmt);
    int n = vsnprintf(dst, spare > 0 ? spare : sizeof probe, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->data != NULL)
            b->data[b->len] = '\0';
        return CLC_ERR_INVALID;
    }
    /* A record that would cross the cap is refused whole rather than left
     * half-appended. */
    if ((size_t)n > b->max || b->len > b->max - (size_t)n) {
        if (b->data != NULL)
            b->data[b->len] = '\0';
        return CLC_ERR_LIMIT;
    }
    if ((size_t)n < spare) {
        b->len += (size_t)n;
        return CLC_OK;
    }
    if (b->data != NULL)
        b->data[b->len] = '\0';
    enum clc_err rc = reserve(b, (size_t)n);
    if (rc != CLC_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return CLC_OK;
}

char *clc_buf_take(struct clc_buf *b, size_t *len)
{
    char *p = b->data;
    size_t n = b->len;
    if (p == NULL) {
        p = malloc(1);
        if (p == NULL)
            return NULL;
        p[0] = '\0';
        n = 0;
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    if (len != NULL)
        *len = n;
    return p;
}

const char *clc_buf_str(const struct clc_buf *b)
{
    return b->data != NULL ? b->data : "";
}
