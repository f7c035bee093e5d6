/* HMAC-SHA256 (RFC 2104), the MAC of Storage Shared Key and SAS signatures,
 * on a digest fetched once per process: OpenSSL 3's HMAC() looks the digest
 * and the MAC up in the provider store on every call, which showed as a
 * tenth of a queue request's CPU. */
#ifndef CLC_HMAC_H
#define CLC_HMAC_H

#include <stddef.h>
#include "core/err.h"

#define CLC_HMAC_SHA256_LEN 32

enum clc_err clc_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                             unsigned char mac[CLC_HMAC_SHA256_LEN]);

#endif
