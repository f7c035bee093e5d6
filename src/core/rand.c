/* Randomness from the kernel's CSPRNG (getrandom(2), which blocks only until
 * the pool is first seeded). Ids built here (UUIDs, pop receipts, nonces) are
 * unguessable, not merely unique. Not OpenSSL's DRBG: a process that only
 * needs an id or a jitter (the sync daemon's supervisor) then never sets up
 * libcrypto, and no generator state is ever duplicated by fork. */
#include "core/rand.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

enum clc_err clc_rand_bytes(void *out, size_t n)
{
    unsigned char *p = out;
    while (n > 0) {
        ssize_t got = getrandom(p, n, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return CLC_ERR_CRYPTO;
        p += got;
        n -= (size_t)got;
    }
    return CLC_OK;
}

/* A CSPRNG that cannot produce bytes leaves no safe way to continue: an id
 * or nonce built from predictable bytes is worse than stopping. */
static void rand_or_abort(void *out, size_t n)
{
    if (clc_rand_bytes(out, n) != CLC_OK)
        abort();
}

uint64_t clc_rand_below(uint64_t bound)
{
    if (bound <= 1)
        return 0;
    /* Values below `limit` fall evenly into bound-sized classes; the few
     * above it would bias the modulo and are drawn again. Each draw is
     * accepted with probability > 1/2, so the loop ends quickly; the cap is
     * only there so that no loop is unbounded. */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % bound + 1) % bound;
    for (int i = 0; i < 1000; i++) {
        uint64_t v;
        rand_or_abort(&v, sizeof v);
        if (v <= limit)
            return v % bound;
    }
    abort();
}

void clc_rand_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t j = 0;
    while (n > 0) {
        size_t chunk = n > sizeof b ? sizeof b : n;
        rand_or_abort(b, chunk);
        for (size_t i = 0; i < chunk; i++) {
            out[j++] = hex[b[i] >> 4];
            out[j++] = hex[b[i] & 0xf];
        }
        n -= chunk;
    }
    out[j] = '\0';
    explicit_bzero(b, sizeof b);
}

void clc_uuid_from_bytes(unsigned char b[16], char out[37])
{
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;

    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 0xf];
    }
    out[j] = '\0';
}

void clc_uuid_pool_next(struct clc_uuid_pool *p, char out[37])
{
    unsigned char *b = NULL;

    if (p->left < 16 || p->left > sizeof p->bytes) {
        rand_or_abort(p->bytes, sizeof p->bytes);
        p->left = sizeof p->bytes;
    }
    b = p->bytes + sizeof p->bytes - p->left;
    p->left -= 16;
    clc_uuid_from_bytes(b, out);
    explicit_bzero(b, 16);
}

void clc_rand_uuid(char out[37])
{
    unsigned char b[16];
    rand_or_abort(b, sizeof b);
    clc_uuid_from_bytes(b, out);
}
