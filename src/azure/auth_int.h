/* Inside the Entra ID auth client: the state auth.c (cache, options,
 * configuration) shares with auth_flows.c (one token request per method),
 * and a retry-policy override for tests. */
#ifndef CLC_AUTH_INT_H
#define CLC_AUTH_INT_H

#include <pthread.h>
#include <stdint.h>
#include "azure/auth.h"
#include "core/clock.h"
#include "core/secret.h"
#include "crypto/signer.h"
#include "net/http.h"
#include "net/retry.h"

#define CLC_AUTH_CACHE_MAX 16
#define CLC_AUTH_SCOPE_MAX 1024
/* Arc key files are tiny; azure-identity refuses larger ones too. */
#define CLC_AUTH_ARC_KEY_MAX 4096
#define CLC_AUTH_FED_TOKEN_MAX (16 * 1024)

struct clc_auth_entry {
    char *scope; /* NULL = free slot */
    struct clc_secret *token;
    int64_t expires_on;
};

struct clc_auth {
    enum clc_auth_method method;
    pthread_mutex_t mu; /* guards the cache and the HTTP handle */
    struct clc_http *http;
    struct clc_clock clock;
    int has_clock;
    struct clc_retry_policy retry; /* token endpoint and managed identity retries */
    char *tenant_id;
    char *client_id;
    char *token_url; /* {authority}/{tenant}/oauth2/v2.0/token */
    struct clc_secret *client_secret;
    struct clc_signer *signer; /* client certificate key */
    char *x5t;                 /* of the client certificate */
    char *imds_endpoint;
    char *identity_endpoint;
    struct clc_secret *identity_header;
    char *arc_key_dir;
    char *federated_token_file;
    int64_t refresh_margin_s;
    struct clc_auth_entry cache[CLC_AUTH_CACHE_MAX];
};

/* Unix seconds by the injected clock (clc_http_opts.clock) or the system's. */
int64_t clc_auth_now(const struct clc_auth *a);

/* One token request for scope by a->method, no cache. Caller holds a->mu. */
enum clc_err clc_auth_fetch(struct clc_auth *a, const char *scope, struct clc_secret **token,
                            int64_t *expires_on, struct clc_errinfo *ei);

/* Replaces the retry policy of token requests (tests inject sleep and
 * randomness; the default waits up to about a minute for IMDS). */
void clc_auth_set_retry_policy(struct clc_auth *a, const struct clc_retry_policy *p);

#endif
