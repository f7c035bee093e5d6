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
/* n random bytes as 2n lower-case hex characters + NUL. out holds 2n+1. */
void clc_rand_hex(char *out, size_t n);

#endif
