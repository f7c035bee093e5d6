/* A small cache of access tokens whose signature the emulator has already
 * verified: services check every request's token, and an RS256 verification
 * plus JSON parsing costs more than the rest of a Key Vault GET. Entries keep
 * only what the per-request checks need; times and audience are still
 * checked on every use. */
#ifndef EMU_TOKEN_CACHE_H
#define EMU_TOKEN_CACHE_H

#include <stdint.h>

struct emu_token_cache;

struct emu_token_facts {
    char aud[128];
    char appid[40];
    int64_t nbf; /* 0 when absent */
    int64_t exp;
};

struct emu_token_cache *emu_token_cache_new(void);
void emu_token_cache_free(struct emu_token_cache *c);
/* 1 and the facts when this exact token was verified before. */
int emu_token_cache_get(struct emu_token_cache *c, const char *jwt, struct emu_token_facts *out);
void emu_token_cache_put(struct emu_token_cache *c, const char *jwt,
                         const struct emu_token_facts *facts);

#endif
