/* Secrets as a type of their own: passwords, client secrets, tokens, key
 * material. The bytes are wiped on free, the logger refuses to print them,
 * and the only way to read them is the explicitly named clc_secret_reveal. */
#ifndef CLC_SECRET_H
#define CLC_SECRET_H

#include <stddef.h>
#include "core/err.h"

struct clc_secret;

/* Largest secret accepted from a file or the environment. */
#define CLC_SECRET_MAX (64 * 1024)

/* Copies n bytes (a NUL is appended internally). */
enum clc_err clc_secret_new(const void *p, size_t n, struct clc_secret **out);
/* Reads a file; one trailing "\n" or "\r\n" is removed. Refuses files over
 * CLC_SECRET_MAX and empty files. The path may be named in errors; the
 * content never is. */
enum clc_err clc_secret_from_file(const char *path, struct clc_secret **out,
                                  struct clc_errinfo *ei);
/* Reads an environment variable; CLC_ERR_NOT_FOUND if unset or empty. */
enum clc_err clc_secret_from_env(const char *name, struct clc_secret **out, struct clc_errinfo *ei);
enum clc_err clc_secret_dup(const struct clc_secret *s, struct clc_secret **out);

/* The bytes, NUL-terminated. Use only at the point where the secret is sent. */
const char *clc_secret_reveal(const struct clc_secret *s);
size_t clc_secret_len(const struct clc_secret *s);
/* Constant-time comparison with other bytes; 1 when equal. */
int clc_secret_equals(const struct clc_secret *s, const void *p, size_t n);

/* "sha256:" + first 12 hex digits of the SHA-256 of the bytes, for logs:
 * lets two log lines be matched without revealing the secret. */
#define CLC_SECRET_FP_LEN 20
void clc_secret_fingerprint(const struct clc_secret *s, char out[CLC_SECRET_FP_LEN]);

/* Wipes and frees; accepts NULL. */
void clc_secret_free(struct clc_secret *s);

#endif
