/* The emulated directory's inside, shared by identity.c (identities, keys,
 * tokens, persistence), entra.c (the v2 token endpoint and discovery) and
 * entra_mi.c (IMDS, App Service and Arc endpoints). Not for other services:
 * they use identity.h. */
#ifndef EMU_DIRECTORY_H
#define EMU_DIRECTORY_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "core/err.h"
#include "crypto/signer.h"
#include "emulator/identity.h"

struct emu;
struct emu_directory;

/* Access tokens live this long (Entra's default, as expires_in 3599 shows). */
#define EMU_TOKEN_LIFETIME_S 3600
/* Audience of federated tokens (Kubernetes projected service account tokens). */
#define EMU_FEDERATION_AUDIENCE "api://AzureADTokenExchange"

/* The App Service style identity endpoint's shared secret (the value of
 * IDENTITY_HEADER); the lead adds it to the endpoints document. */
const char *emu_directory_identity_header(const struct emu_directory *d);
/* Directory where the Arc endpoint writes its challenge key files. */
const char *emu_directory_arc_key_dir(const struct emu_directory *d);
struct emu *emu_directory_emu(const struct emu_directory *d);
/* Tokens whose signature was verified (token_cache.h). */
struct emu_token_cache *emu_directory_token_cache(struct emu_directory *d);
/* The token signing key, its kid (RFC 7638 thumbprint) and the issuer
 * "https://sts.windows.net/{tenant}/". */
const struct clc_signer *emu_directory_key(const struct emu_directory *d);
const char *emu_directory_kid(const struct emu_directory *d);
const char *emu_directory_issuer(const struct emu_directory *d);

/* Lookups fill a copy of the principal (identities can change at run time). */
int emu_directory_find(struct emu_directory *d, const char *client_id, struct emu_principal *out);
/* The managed identity the IMDS-like endpoints hand out: selected by
 * client_id, object_id or msi_res_id (at most one non-NULL), else the
 * configured default. 0 when no identity matches. */
int emu_directory_find_mi(struct emu_directory *d, const char *client_id, const char *object_id,
                          const char *msi_res_id, struct emu_principal *out);
/* Constant-time check of a client secret; 0 for unknown clients too. */
int emu_directory_secret_ok(struct emu_directory *d, const char *client_id, const char *secret,
                            size_t len);
/* The public key of the client's registered certificate if its SHA-1
 * thumbprint (base64url) equals x5t; a new reference, or NULL.
 * *registered says whether the client has a certificate at all. */
EVP_PKEY *emu_directory_cert_key(struct emu_directory *d, const char *client_id, const char *x5t,
                                 int *registered);
/* The client's federated credential subject; 0 when it has none. */
int emu_directory_fed_subject(struct emu_directory *d, const char *client_id, char *out,
                              size_t outlen);
/* Registers (replaces) the client's certificate from PEM text and saves the
 * directory. CLC_ERR_NOT_FOUND for unknown clients, CLC_ERR_PARSE for bad PEM. */
enum clc_err emu_directory_register_cert(struct emu_directory *d, const char *client_id,
                                         const char *pem, size_t len, struct clc_errinfo *ei);

/* Tokens (entra_token.c). Access token for p with audience aud (an RS256 JWT, iat = emu_now).
 * *jwt is malloc'd; iat/exp are optional. */
enum clc_err emu_directory_mint(struct emu_directory *d, const struct emu_principal *p,
                                const char *aud, char **jwt, int64_t *iat, int64_t *exp,
                                struct clc_errinfo *ei);
/* A federated token as the emulator's OIDC issuer hands one to a workload:
 * iss = issuer, sub = the identity's federated subject, aud
 * EMU_FEDERATION_AUDIENCE, one hour. CLC_ERR_NOT_FOUND without a subject. */
enum clc_err emu_directory_mint_federated(struct emu_directory *d, const struct emu_principal *p,
                                          const char *issuer, char **jwt, struct clc_errinfo *ei);
/* Signature check of a token the emulator signed (any issuer). */
enum clc_err emu_directory_verify_sig(struct emu_directory *d, const char *jwt, cJSON **header,
                                      cJSON **claims, struct clc_errinfo *ei);
/* emu_auth_verify without the HTTP part: the whole access token check. */
enum clc_err emu_directory_verify_token(struct emu_directory *d, const char *jwt,
                                        const char *audience, struct emu_principal *out,
                                        struct clc_errinfo *ei);
/* {"keys":[{kty,n,e,kid,use,alg}]} */
cJSON *emu_directory_jwks(struct emu_directory *d);

/* The plain-http managed identity listeners (entra_mi.c): "imds" (IMDS and
 * the App Service style /msi/token) and "arc". Called by emu_entra_mount. */
enum clc_err emu_entra_mi_mount(struct emu *e, struct emu_directory *d, struct clc_errinfo *ei);

/* Arc challenge keys (entra_mi.c): a fresh key file, and its single use. */
struct emu_arc;
enum clc_err emu_arc_new(struct emu *e, struct emu_arc **out, struct clc_errinfo *ei);
void emu_arc_free(struct emu_arc *a);
struct emu_arc *emu_directory_arc(struct emu_directory *d);
const char *emu_arc_key_dir(const struct emu_arc *a);
/* Writes <dir>/<uuid>.key (0600) holding a random key; path is the realm. */
enum clc_err emu_arc_challenge(struct emu_arc *a, char *path, size_t pathlen,
                               struct clc_errinfo *ei);
/* 1 when key is an outstanding challenge key; it is consumed (file deleted). */
int emu_arc_redeem(struct emu_arc *a, const char *key, size_t len);

#endif
