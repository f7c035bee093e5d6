/* Verified-token cache: a fixed table keyed by the token's SHA-256, replaced
 * round-robin, under one mutex. A hit proves the bytes are a token the
 * emulator signed; the caller still checks audience, time and identity. */
#include "emulator/token_cache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#define SLOTS 128

struct slot {
    int used;
    unsigned char key[SHA256_DIGEST_LENGTH];
    struct emu_token_facts facts;
};

struct emu_token_cache {
    pthread_mutex_t mu;
    struct slot slots[SLOTS];
    size_t next;
};

struct emu_token_cache *emu_token_cache_new(void)
{
    struct emu_token_cache *c = calloc(1, sizeof *c);

    if (c != NULL && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        c = NULL;
    }
    return c;
}

void emu_token_cache_free(struct emu_token_cache *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int emu_token_cache_get(struct emu_token_cache *c, const char *jwt, struct emu_token_facts *out)
{
    unsigned char key[SHA256_DIGEST_LENGTH];
    int hit = 0;

    SHA256((const unsigned char *)jwt, strlen(jwt), key);
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < SLOTS && !hit; i++) {
        if (c->slots[i].used && CRYPTO_memcmp(c->slots[i].key, key, sizeof key) == 0) {
            *out = c->slots[i].facts;
            hit = 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void emu_token_cache_put(struct emu_token_cache *c, const char *jwt,
                         const struct emu_token_facts *facts)
{
    unsigned char key[SHA256_DIGEST_LENGTH];

    SHA256((const unsigned char *)jwt, strlen(jwt), key);
    pthread_mutex_lock(&c->mu);
    struct slot *s = &c->slots[c->next];
    c->next = (c->next + 1) % SLOTS;
    s->used = 1;
    memcpy(s->key, key, sizeof key);
    s->facts = *facts;
    pthread_mutex_unlock(&c->mu);
}
