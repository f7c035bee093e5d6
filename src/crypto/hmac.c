/* HMAC-SHA256 built from the digest: H((K0 ^ opad) || H((K0 ^ ipad) || m)),
 * with every intermediate wiped. */
#include "crypto/hmac.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define BLOCK 64

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256; /* lives as long as the process */

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

enum clc_err clc_hmac_sha256(const void *key, size_t keylen, const void *data, size_t n,
                             unsigned char mac[CLC_HMAC_SHA256_LEN])
{
    unsigned char k0[BLOCK], pad[BLOCK], inner[CLC_HMAC_SHA256_LEN];
    unsigned int len = 0;
    EVP_MD_CTX *c = NULL;
    int ok = 1;

    pthread_once(&sha256_once, sha256_fetch);
    if (sha256 == NULL || (c = EVP_MD_CTX_new()) == NULL)
        return CLC_ERR_CRYPTO;
    memset(k0, 0, sizeof k0);
    /* A key longer than the block is replaced by its digest. */
    if (keylen > sizeof k0)
        ok = EVP_Digest(key, keylen, k0, &len, sha256, NULL);
    else if (keylen > 0)
        memcpy(k0, key, keylen);
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)(k0[i] ^ 0x36);
    ok = ok && EVP_DigestInit_ex(c, sha256, NULL) && EVP_DigestUpdate(c, pad, sizeof pad) &&
         EVP_DigestUpdate(c, data, n) && EVP_DigestFinal_ex(c, inner, &len) &&
         len == CLC_HMAC_SHA256_LEN;
    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)(k0[i] ^ 0x5c);
    ok = ok && EVP_DigestInit_ex(c, sha256, NULL) && EVP_DigestUpdate(c, pad, sizeof pad) &&
         EVP_DigestUpdate(c, inner, sizeof inner) && EVP_DigestFinal_ex(c, mac, &len) &&
         len == CLC_HMAC_SHA256_LEN;
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(k0, sizeof k0);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    return ok ? CLC_OK : CLC_ERR_CRYPTO;
}
