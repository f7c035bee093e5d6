/* Test support for the Key Vault client tests: one emulator per binary, a
 * Key Vault client per identity (renewer, sync, reader) over HTTPS with the
 * emulator's CA, a test CA to sign CSRs, policies, and the control API
 * (fault rules) with an admin token. */
#ifndef TEST_KV_CLIENT_FIXTURE_H
#define TEST_KV_CLIENT_FIXTURE_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include "azure/auth.h"
#include "azure/keyvault.h"
#include "crypto/signer.h"
#include "emulator/emu.h"
#include "net/http.h"

#define KVF_VAULT "certlc"

/* Sleep calls recorded instead of waited (retry tests). */
struct kvf_sleeps {
    int n;
    int64_t total_ms;
    int64_t last_ms;
};

struct kvf {
    struct emu *e;
    cJSON *endpoints;
    struct clc_http_opts http;
    struct clc_auth *auth_renewer, *auth_sync, *auth_reader, *auth_admin;
    struct clc_kv *renewer, *sync, *reader;
    struct clc_http *admin_http;
    struct clc_retry_policy retry; /* records sleeps in sleeps */
    struct kvf_sleeps sleeps;
    struct clc_signer *ca_key;
    X509 *ca;
};

extern struct kvf K;

/* cmocka group setup/teardown. */
int kvf_setup(void **state);
int kvf_teardown(void **state);

const char *kvf_vault_url(void);
struct clc_auth *kvf_auth(const char *identity);
/* A client for identity ("renewer", ...) with opts; caller frees. */
struct clc_kv *kvf_client(struct clc_auth *auth, int verify_resource, int max_pages);

/* A complete policy: issuer Unknown (or Self), key per kty ("RSA"/"EC"),
 * subject CN=<cn>, O=Contoso, DNS cn and www.<cn>, content type. */
void kvf_policy(struct clc_kv_policy *p, const char *cn, const char *issuer, const char *kty,
                int pem);

/* Signs the CSR (DER) with the test CA; not_after = now + days. NULL subject
 * key = the CSR's key; else that key (a chain "for another key"). Returns a
 * chain [leaf, CA] (caller frees). */
STACK_OF(X509) * kvf_sign_csr(const unsigned char *csr, size_t len, struct clc_signer *other_key,
                              int64_t nb_offset, int64_t days);

/* Control API call with an admin token; returns the status. */
long kvf_control(const char *method, const char *path, const char *body);
/* Adds a fault rule for path glob on every vault listener. */
void kvf_fault(const char *method, const char *path, int count, int status, int retry_after);

/* Names unique per call ("<prefix>-<n>"). */
const char *kvf_name(const char *prefix);

#endif
