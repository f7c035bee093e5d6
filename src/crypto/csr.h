/* PKCS#10 certificate requests as Key Vault makes them: parse and verify the
 * self-signature, read what they ask for, check that against what the
 * certificate's policy says, and check that an issued chain belongs to the
 * request's key. The key stays in the vault; we only ever see its public half. */
#ifndef CLC_CSR_H
#define CLC_CSR_H

#include <stddef.h>
#include <openssl/x509.h>
#include "core/err.h"
#include "crypto/cert.h"

#define CLC_CSR_DER_MAX (64 * 1024)

/* Parses DER (no trailing bytes) or PEM ("CERTIFICATE REQUEST") and verifies
 * the request's signature with its own key: a request that fails is
 * CLC_ERR_INVALID, unreadable input CLC_ERR_PARSE. */
enum clc_err clc_csr_from_der(const unsigned char *der, size_t len, X509_REQ **out,
                              struct clc_errinfo *ei);
enum clc_err clc_csr_from_pem(const char *pem, size_t len, X509_REQ **out, struct clc_errinfo *ei);

struct clc_csr_info {
    char *subject; /* RFC 2253 */
    struct clc_cert_sans sans;
    struct clc_cert_key key;
    struct clc_cert_strs ekus;      /* dotted OIDs from the extension request */
    struct clc_cert_strs key_usage; /* Key Vault's words: "digitalSignature", ... */
};
enum clc_err clc_csr_info_get(X509_REQ *req, struct clc_csr_info *info, struct clc_errinfo *ei);
void clc_csr_info_cleanup(struct clc_csr_info *info);

/* What the request must ask for (a Key Vault policy's view). NULL subject:
 * not checked; lists: NULL counts as empty, and the request must carry
 * exactly these names of that kind (any order; DNS names ignore case).
 * kty "RSA"/"RSA-HSM" or "EC"/"EC-HSM" (NULL: not checked); key_size 0 means
 * Key Vault's default 2048 for RSA; crv NULL/"" means P-256 for EC. */
struct clc_csr_expect {
    const char *subject; /* "CN=host, O=Org": RDNs compared as a set */
    const struct clc_cert_strs *dns_names;
    const struct clc_cert_strs *emails;
    const struct clc_cert_strs *upns;
    const char *kty;
    int key_size;
    const char *crv;
};

/* CLC_ERR_INVALID with the first difference named ("CSR subject ... does
 * not match policy subject ..."). */
enum clc_err clc_csr_check(X509_REQ *req, const struct clc_csr_expect *want,
                           struct clc_errinfo *ei);
/* CLC_ERR_INVALID unless the certificate's public key is the request's. */
enum clc_err clc_csr_check_leaf(X509_REQ *req, X509 *leaf, struct clc_errinfo *ei);

#endif
