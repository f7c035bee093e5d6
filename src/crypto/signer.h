/* The one place a private key we hold is used: load it (into OpenSSL's secure
 * heap where available), sign bytes in JWS form, describe its public half.
 * Network code gets a signer, never the key. */
#ifndef CLC_SIGNER_H
#define CLC_SIGNER_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include "core/err.h"

struct clc_signer;

/* Loads an unencrypted PEM private key (PKCS#8 or traditional; RSA >= 2048 or
 * EC P-256/P-384/P-521). The file's content is wiped from memory after use. */
enum clc_err clc_signer_load_pem(const char *path, struct clc_signer **out, struct clc_errinfo *ei);
/* Takes over one reference to pkey (the caller's reference is consumed). */
enum clc_err clc_signer_from_pkey(EVP_PKEY *pkey, struct clc_signer **out, struct clc_errinfo *ei);
/* Generates a fresh key: "RSA" with bits, or "EC" with bits 256/384/521. */
enum clc_err clc_signer_generate(const char *kty, int bits, struct clc_signer **out,
                                 struct clc_errinfo *ei);

/* "RS256", "ES256", "ES384" or "ES512". */
const char *clc_signer_alg(const struct clc_signer *s);

/* Signs data with the signer's JWS algorithm. ECDSA signatures come out in
 * JWS form (fixed-size r||s), not DER. *sig is malloc'd. */
enum clc_err clc_signer_sign(const struct clc_signer *s, const void *data, size_t n,
                             unsigned char **sig, size_t *sig_len, struct clc_errinfo *ei);

/* Public key as a JWK object (RSA: kty,n,e; EC: kty,crv,x,y) with members in
 * RFC 7638 order, so that printing it compactly gives the thumbprint input. */
enum clc_err clc_signer_public_jwk(const struct clc_signer *s, cJSON **out, struct clc_errinfo *ei);

/* Borrowed public/private key, for code that must hand it to OpenSSL (e.g.
 * building a certificate in the emulator). */
EVP_PKEY *clc_signer_pkey(const struct clc_signer *s);

/* Writes the private key as PKCS#8 PEM: 0600, O_EXCL temp file, fsync, rename. */
enum clc_err clc_signer_save_pem(const struct clc_signer *s, const char *path,
                                 struct clc_errinfo *ei);

void clc_signer_free(struct clc_signer *s);

#endif
