/* Randomness from the kernel's CSPRNG: bytes, bounded integers, UUIDs and hex ids
 * (request ids, versions, pop receipts). */
#ifndef CLC_RAND_H
#define CLC_RAND_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

enum clc_err clc_rand_bytes(void *out, size_t n);
/* Uniform in [0, bound) (bound > 0), without modulo bias. */
uint64_t clc_rand_below(uint64_t bound);
/* RFC 4122 version 4, lower case, 36 characters + NUL. */
void clc_rand_uuid(char out[37]);
/* The same from 16 random bytes the caller drew (a batch drawn at once):
 * sets the version and variant bits in b, then formats it. */
void clc_uuid_from_bytes(unsigned char b[16], char out[37]);

/* Request ids in bulk: one CSPRNG call serves CLC_UUID_BATCH UUIDs. A
 * pool belongs to one thread at a time (it lives in a client handle); a
 * zeroed pool is empty and ready. Spent bytes are wiped. */
#define CLC_UUID_BATCH 32
struct clc_uuid_pool {
    unsigned char bytes[16 * CLC_UUID_BATCH];
    size_t left; /* unspent bytes, at the end of bytes[] */
};
/* As clc_rand_uuid (which aborts without a CSPRNG), from the pool. */
void clc_uuid_pool_next(struct clc_uuid_pool *p, char out[37]);
/* n random bytes as 2n lower-case hex characters + NUL. out holds 2n+1. */
void clc_rand_hex(char *out, size_t n);

#endif
