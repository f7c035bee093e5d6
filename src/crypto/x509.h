/* X.509 helpers: load certificates, thumbprints, and the small certificate
 * factory the emulator and tests use (self-signed CA, CA-signed leaf).
 * Later issues add chain and CSR parsing here. */
#ifndef CLC_X509_H
#define CLC_X509_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "core/err.h"
#include "crypto/signer.h"

/* First certificate of a PEM file. */
enum clc_err clc_x509_load_pem_file(const char *path, X509 **out, struct clc_errinfo *ei);
/* All certificates of a PEM text, in order. *out is a new stack. */
enum clc_err clc_x509_parse_pem_chain(const char *pem, size_t len, STACK_OF(X509) * *out,
                                      struct clc_errinfo *ei);
/* PEM text of one certificate (malloc'd). */
enum clc_err clc_x509_to_pem(X509 *cert, char **out, struct clc_errinfo *ei);

/* Digest of the DER encoding; md = "SHA1" or "SHA256". out holds 64 bytes. */
enum clc_err clc_x509_digest(X509 *cert, const char *md, unsigned char out[64], size_t *len);
/* base64url(SHA-1(DER)) without padding: JWT/Key Vault "x5t". malloc'd. */
enum clc_err clc_x509_x5t(X509 *cert, char **out);

/* Certificate factory. not_before/not_after are Unix seconds. sans is a
 * NULL-terminated list of "DNS:name" / "IP:addr" entries, or NULL. */
struct clc_x509_spec {
    const char *subject_cn;
    const char *const *sans;
    int64_t not_before;
    int64_t not_after;
    int is_ca;       /* basicConstraints CA:TRUE, keyCertSign, cRLSign */
    int server_auth; /* EKU serverAuth (leaf) */
    int client_auth; /* EKU clientAuth (leaf) */
};
/* Signs the subject key (its public half) with issuer_key; issuer NULL means
 * self-signed. Serial: 128 random bits, positive. Adds SKI and AKI. */
enum clc_err clc_x509_make(const struct clc_x509_spec *spec, const struct clc_signer *subject_key,
                           X509 *issuer, const struct clc_signer *issuer_key, X509 **out,
                           struct clc_errinfo *ei);

/* Writes PEM text atomically (temp file, fsync, rename) with the given mode. */
enum clc_err clc_x509_save_pem(X509 *const *certs, size_t n, const char *path, int mode,
                               struct clc_errinfo *ei);

/* Sets dst (the key of a certificate or request being built) to key's SubjectPublicKeyInfo,
 * the same bytes X509_set_pubkey writes, without decoding them back into a key: dst then
 * carries no EVP_PKEY (X509_get0_pubkey gives NULL). 1 on success. */
int clc_x509_pubkey_set(X509_PUBKEY *dst, EVP_PKEY *key);

#endif
