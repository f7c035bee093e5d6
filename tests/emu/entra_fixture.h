/* Test support for the Entra ID tests: an emulator with a known set of
 * identities (one with a registered client certificate), an HTTPS client
 * that trusts its CA, and small request and JWT helpers. */
#ifndef TEST_ENTRA_FIXTURE_H
#define TEST_ENTRA_FIXTURE_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "core/clock.h"
#include "crypto/signer.h"
#include "emulator/emu.h"
#include "net/http.h"

#define FX_RENEWER_SECRET "renewer-secret-0123456789abcdefABCDEF"
#define FX_ADMIN_SECRET "admin-secret-0123456789abcdefABCDEF"
#define FX_VAULT_SCOPE "https://vault.azure.net/.default"
#define FX_VAULT_AUD "https://vault.azure.net"

struct fx {
    char dir[256]; /* temp root: data/, config.json, certapp key and cert */
    char data_dir[300];
    char config[300];
    char cert_file[300]; /* certapp's registered certificate */
    char key_file[300];
    char other_key_file[300]; /* an unregistered key */
    char other_cert_file[300];
    struct emu *e;
    struct clc_http *http;
    struct clc_clock clock; /* follows the emulator's clock */
    struct clc_signer *cert_key;
    struct clc_signer *other_key;
    char x5t[64]; /* of cert_file */
    char other_x5t[64];
    cJSON *ids; /* emu_directory_endpoints */
};

/* Makes the files and starts the emulator; 0 on success. */
int fx_setup(struct fx *f);
/* Stops and starts the emulator on the same data dir at the same time. */
int fx_restart(struct fx *f);
void fx_teardown(struct fx *f);

const char *fx_url(struct fx *f, const char *service);
const char *fx_tenant(struct fx *f);
/* Field of an identity in the endpoints document ("client_id", ...). */
const char *fx_id(struct fx *f, const char *name, const char *field);

/* One HTTP exchange; resp is initialised here, the caller cleans it up.
 * headers is a NULL-terminated list or NULL. Returns the status (0 on a
 * transport error). */
long fx_http(struct fx *f, const char *method, const char *url, const char *const *headers,
             const char *content_type, const char *body, size_t len, struct clc_http_resp *resp);
/* POST form to the tenant's token endpoint. */
long fx_token_post(struct fx *f, const char *form, struct clc_http_resp *resp);
/* An access token by client secret (NULL when refused); caller frees. */
char *fx_token(struct fx *f, const char *name, const char *secret, const char *scope);

/* Parsed body (caller frees); NULL when not JSON. */
cJSON *fx_json(const struct clc_http_resp *resp);
/* Asserts Entra's error shape: status, error, AADSTS code in error_codes and
 * at the start of error_description, trace and correlation ids. */
void fx_assert_entra_error(const struct clc_http_resp *resp, long status, const char *error,
                           long code);
/* Verifies jwt against the JWKS the emulator publishes; returns claims. */
cJSON *fx_verify_jwks(struct fx *f, const char *jwt);
/* Signs a client assertion with key and header x5t; aud NULL = the token
 * endpoint; times relative to the emulator clock. */
char *fx_assertion(struct fx *f, const struct clc_signer *key, const char *x5t,
                   const char *client_id, const char *aud, int64_t nbf_off, int64_t exp_off);
/* Writes text to path (0600). */
int fx_write(const char *path, const char *text);

#endif
