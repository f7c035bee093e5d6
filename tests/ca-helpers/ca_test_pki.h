/* Test PKI for the CA client tests: a root and an issuing CA made in memory,
 * CSRs and leaves for generated keys, PKCS#7 bundles, and file helpers. */
#ifndef CA_TEST_PKI_H
#define CA_TEST_PKI_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "crypto/signer.h"

struct pki {
    struct clc_signer *root_key, *inter_key;
    X509 *root, *inter;
    int64_t now;
};

/* Root and issuing CA valid from now-1 day for 10 years. 0 on success. */
int pki_make(struct pki *p, int64_t now);
void pki_free(struct pki *p);
/* A PEM CSR for key with CN cn and DNS SANs (NULL-terminated or NULL);
 * malloc'd. */
char *pki_csr_pem(const struct clc_signer *key, const char *cn, const char *const *sans);
/* The same for a raw key (e.g. RSA 1024, which the signer refuses). */
char *pki_csr_pem_pkey(EVP_PKEY *pk, const char *cn, const char *const *sans);
/* DER of the same; malloc'd, *len set. */
unsigned char *pki_csr_der(const struct clc_signer *key, const char *cn, size_t *len);
/* A leaf for key, issued by the issuing CA, valid [nb, na]. */
X509 *pki_leaf(struct pki *p, const struct clc_signer *key, const char *cn, int64_t nb, int64_t na);
/* PKCS#7 certs-only DER of certs in the given order; malloc'd. */
unsigned char *pki_p7(X509 *const *certs, size_t n, size_t *len);
/* PEM of certs concatenated, malloc'd. */
char *pki_pem(X509 *const *certs, size_t n);
/* Writes bytes to path; 0 on success. */
int pki_write(const char *path, const void *data, size_t len, int mode);

#endif
