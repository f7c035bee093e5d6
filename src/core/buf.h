/* Bounded growable buffers. Every buffer has a hard maximum fixed at init;
 * exceeding it is CLC_ERR_LIMIT, never an unbounded realloc. Contents are
 * always NUL-terminated so text can be used in place. */
#ifndef CLC_BUF_H
#define CLC_BUF_H

#include <stddef.h>
#include "core/err.h"

struct clc_buf {
    char *data; /* NULL until the first append; NUL-terminated after */
    size_t len; /* bytes used, excluding the terminator */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};

void clc_buf_init(struct clc_buf *b, size_t max);
/* Frees the memory and zeroes the struct (the max is kept). */
void clc_buf_cleanup(struct clc_buf *b);
/* Like cleanup, but wipes the contents first (for buffers that held secrets). */
void clc_buf_cleanse(struct clc_buf *b);
/* Empties the buffer, keeping its memory. */
void clc_buf_reset(struct clc_buf *b);

/* A sizing hint: makes room now, in one allocation of that size, for n more
 * bytes (at most up to max), so that appends up to n do not reallocate.
 * Appends still grow and check max as usual. Fails only with NOMEM. */
enum clc_err clc_buf_reserve(struct clc_buf *b, size_t n);

enum clc_err clc_buf_append(struct clc_buf *b, const void *p, size_t n);
enum clc_err clc_buf_append_str(struct clc_buf *b, const char *s);
enum clc_err clc_buf_append_byte(struct clc_buf *b, char c);
enum clc_err clc_buf_appendf(struct clc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Moves the contents out: returns a malloc'd NUL-terminated string (an empty
 * one if nothing was appended), stores its length in *len if len is not NULL,
 * and leaves the buffer empty. NULL only on allocation failure. */
char *clc_buf_take(struct clc_buf *b, size_t *len);

/* Const view of the contents; "" when empty. */
const char *clc_buf_str(const struct clc_buf *b);

#endif
