/* Reading certificates: what a renewal needs to know about one (subject,
 * SANs, serial, key, AKI/SKI, the Microsoft template extensions, validity,
 * thumbprints) and about a chain (order it leaf first, check its links and
 * validity window). Nothing here makes or signs certificates (see x509.h). */
#ifndef CLC_CERT_H
#define CLC_CERT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "core/err.h"

/* Bounds on what one certificate may carry before we call it malformed. */
#define CLC_CERT_DER_MAX (64 * 1024)
#define CLC_CERT_SANS_MAX 1000
#define CLC_CERT_CHAIN_MAX 16

/* A list of owned strings. */
struct clc_cert_strs {
    char **v;
    size_t n;
};
void clc_cert_strs_cleanup(struct clc_cert_strs *s);
/* Appends a copy of s (CLC_ERR_LIMIT past max entries). */
enum clc_err clc_cert_strs_add(struct clc_cert_strs *l, const char *s, size_t max);
/* 1 when both hold the same strings in any order (duplicates count once);
 * nocase compares ASCII case-insensitively (DNS names). */
int clc_cert_strs_same_set(const struct clc_cert_strs *a, const struct clc_cert_strs *b,
                           int nocase);

/* Subject alternative names by kind. UPNs are the Microsoft otherName
 * 1.3.6.1.4.1.311.20.2.3; IPs are printed (dotted quad or RFC 5952 IPv6). */
struct clc_cert_sans {
    struct clc_cert_strs dns;
    struct clc_cert_strs emails;
    struct clc_cert_strs upns;
    struct clc_cert_strs ips;
    struct clc_cert_strs uris;
};
void clc_cert_sans_cleanup(struct clc_cert_sans *s);
/* Fills s from a GeneralNames value (the SAN extension of a certificate or
 * of a CSR's extension request). Unknown kinds are ignored. */
enum clc_err clc_cert_sans_from_names(const GENERAL_NAMES *names, struct clc_cert_sans *s,
                                      struct clc_errinfo *ei);

/* The public key: kty "RSA" or "EC" (else the OpenSSL name), bits, and for EC
 * the curve as Key Vault names it ("P-256", "P-384", "P-521", "P-256K"). */
struct clc_cert_key {
    char kty[16];
    int bits;
    char crv[16]; /* "" for RSA */
};
enum clc_err clc_cert_key_describe(const EVP_PKEY *pkey, struct clc_cert_key *out,
                                   struct clc_errinfo *ei);

/* X.509 name in RFC 2253 order and escaping ("CN=a,O=b"); malloc'd. */
enum clc_err clc_cert_name_text(const X509_NAME *name, char **out, struct clc_errinfo *ei);

struct clc_cert_info {
    char *subject;    /* RFC 2253 */
    char *issuer;     /* RFC 2253 */
    char *serial_hex; /* upper-case hex, no leading zeros beyond one byte */
    int64_t not_before, not_after;
    struct clc_cert_sans sans;
    struct clc_cert_key key;
    struct clc_cert_strs ekus; /* dotted OIDs */
    int is_ca;
    char *ski_hex; /* subject key identifier, upper-case hex; NULL when absent */
    char *aki_hex; /* authority key identifier's keyIdentifier; NULL when absent */
    /* 1.3.6.1.4.1.311.21.7 (certificate template information) */
    int has_template;
    char template_oid[128];
    long template_major;
    long template_minor; /* -1 when absent (it is optional) */
    /* 1.3.6.1.4.1.311.20.2 (certificate type / template name, V1 templates) */
    char *template_name; /* UTF-8; NULL when absent */
    unsigned char sha1[20];
    unsigned char sha256[32];
    char sha1_hex[41];   /* upper-case, as Windows shows thumbprints */
    char sha256_hex[65]; /* upper-case */
};

/* Parses DER (at most CLC_CERT_DER_MAX bytes, no trailing bytes). */
enum clc_err clc_cert_from_der(const unsigned char *der, size_t len, X509 **out,
                               struct clc_errinfo *ei);
/* DER encoding, malloc'd. */
enum clc_err clc_cert_to_der(X509 *cert, unsigned char **out, size_t *len, struct clc_errinfo *ei);
/* Reads everything above out of cert. info is cleared first; clean it up
 * with clc_cert_info_cleanup whatever the result. A malformed extension is
 * CLC_ERR_PARSE naming it. */
enum clc_err clc_cert_info_get(X509 *cert, struct clc_cert_info *info, struct clc_errinfo *ei);
void clc_cert_info_cleanup(struct clc_cert_info *info);

/* Chains. from_pem accepts any order; order returns a new stack (extra
 * references) leaf first, each certificate followed by its issuer, and
 * refuses sets that are not one path (two leaves, a certificate that belongs
 * nowhere, a loop). The root may be absent. */
enum clc_err clc_cert_chain_from_pem(const char *pem, size_t len, STACK_OF(X509) * *out,
                                     struct clc_errinfo *ei);
enum clc_err clc_cert_chain_order(STACK_OF(X509) * certs, STACK_OF(X509) * *out,
                                  struct clc_errinfo *ei);
/* Checks an ordered chain: each certificate is signed by the next one's key
 * (the last one, if self-issued, by its own), and each is valid at now.
 * CLC_ERR_INVALID naming the position and subject of the first failure. */
enum clc_err clc_cert_chain_check(STACK_OF(X509) * chain, int64_t now, struct clc_errinfo *ei);

void clc_cert_chain_free(STACK_OF(X509) * chain);

#endif
