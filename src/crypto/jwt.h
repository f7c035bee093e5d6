/* JSON Web Tokens (RFC 7519) in compact JWS form: sign with a signer, verify
 * with a public key, decode without verifying (for display only). */
#ifndef CLC_JWT_H
#define CLC_JWT_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "core/err.h"
#include "crypto/signer.h"

#define CLC_JWT_MAX_BYTES (16 * 1024)

/* header may be NULL or hold extra members (kid, x5t); "alg" (from the
 * signer) and "typ":"JWT" are set by this function. *out is malloc'd. */
enum clc_err clc_jwt_sign(const struct clc_signer *s, const cJSON *header, const cJSON *claims,
                          char **out, struct clc_errinfo *ei);

/* Checks structure and signature. The header's alg must equal expected_alg
 * ("RS256", ...); "none" is always refused. On success returns the parsed
 * header and claims (caller frees with cJSON_Delete). Time and audience checks
 * are the caller's, with clc_jwt_check_times. */
enum clc_err clc_jwt_verify(const char *jwt, EVP_PKEY *pub, const char *expected_alg,
                            cJSON **header, cJSON **claims, struct clc_errinfo *ei);

/* exp must be present and > now - leeway; nbf (if present) <= now + leeway. */
enum clc_err clc_jwt_check_times(const cJSON *claims, int64_t now, int64_t leeway_s,
                                 struct clc_errinfo *ei);

/* Splits and decodes without verifying: for showing a token to a person. */
enum clc_err clc_jwt_decode(const char *jwt, cJSON **header, cJSON **claims,
                            struct clc_errinfo *ei);

#endif
