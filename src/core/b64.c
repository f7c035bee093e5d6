/* Base64 (RFC 4648 §4) and base64url (§5) codecs. The decoders are strict
 * because their input is often signed (JWS) or hashed: accepting two
 * spellings of the same bytes would let a peer vary what we compare. */
#include "core/b64.h"

#include <stdint.h>
#include <stdlib.h>

static const char std_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static enum clc_err encode(const unsigned char *in, size_t n, const char *alpha, int pad,
                           char **out, size_t *out_len)
{
    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (n > (SIZE_MAX - 1) / 4 * 3 - 3)
        return CLC_ERR_LIMIT;
    size_t cap = (n + 2) / 3 * 4 + 1;
    char *o = malloc(cap);
    if (o == NULL)
        return CLC_ERR_NOMEM;
    size_t j = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        o[j++] = alpha[v >> 18 & 63];
        o[j++] = alpha[v >> 12 & 63];
        o[j++] = alpha[v >> 6 & 63];
        o[j++] = alpha[v & 63];
    }
    size_t rest = n - i;
    if (rest > 0) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (rest == 2)
            v |= (uint32_t)in[i + 1] << 8;
        o[j++] = alpha[v >> 18 & 63];
        o[j++] = alpha[v >> 12 & 63];
        if (rest == 2)
            o[j++] = alpha[v >> 6 & 63];
        else if (pad)
            o[j++] = '=';
        if (pad)
            o[j++] = '=';
    }
    o[j] = '\0';
    *out = o;
    if (out_len != NULL)
        *out_len = j;
    return CLC_OK;
}

enum clc_err clc_b64_encode(const void *in, size_t n, char **out, size_t *out_len)
{
    return encode(in, n, std_alpha, 1, out, out_len);
}

enum clc_err clc_b64url_encode(const void *in, size_t n, char **out, size_t *out_len)
{
    return encode(in, n, url_alpha, 0, out, out_len);
}

static int sym_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

static int is_b64_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Shared strict decoder. The standard form requires padding to a multiple of
 * four; the url form takes it or leaves it, but if present it must be exactly
 * right. Whitespace is skipped only for the standard form (PEM bodies). */
static enum clc_err decode(const char *in, size_t n, int url, unsigned char **out, size_t *out_len)
{
    enum clc_err rc = CLC_OK;
    unsigned char *o = NULL;
    size_t j = 0;
    uint32_t acc = 0;
    size_t nsym = 0; /* alphabet symbols seen */
    size_t npad = 0;

    *out = NULL;
    if (out_len != NULL)
        *out_len = 0;
    if (n == SIZE_MAX) {
        rc = CLC_ERR_LIMIT;
        goto out;
    }
    o = malloc(n / 4 * 3 + 3 + 1);
    if (o == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!url && is_b64_space(c))
            continue;
        if (c == '=') {
            npad++;
            continue;
        }
        /* Anything after padding started ('=' in the middle) is refused. */
        if (npad > 0) {
            rc = CLC_ERR_PARSE;
            goto out;
        }
        int v = sym_value(c, url);
        if (v < 0) {
            rc = CLC_ERR_PARSE;
            goto out;
        }
        acc = acc << 6 | (uint32_t)v;
        nsym++;
        if (nsym % 4 == 0) {
            o[j++] = (unsigned char)(acc >> 16);
            o[j++] = (unsigned char)(acc >> 8);
            o[j++] = (unsigned char)acc;
            acc = 0;
        }
    }

    size_t rem = nsym % 4;
    if (rem == 1) {
        rc = CLC_ERR_PARSE; /* six bits cannot encode a byte */
        goto out;
    }
    size_t want_pad = rem == 0 ? 0 : 4 - rem;
    if (npad != 0 || !url) {
        if (npad != want_pad) {
            rc = CLC_ERR_PARSE;
            goto out;
        }
    }
    if (rem == 2) {
        if (acc & 0xf) {
            rc = CLC_ERR_PARSE; /* non-canonical: trailing bits must be zero */
            goto out;
        }
        o[j++] = (unsigned char)(acc >> 4);
    } else if (rem == 3) {
        if (acc & 0x3) {
            rc = CLC_ERR_PARSE;
            goto out;
        }
        o[j++] = (unsigned char)(acc >> 10);
        o[j++] = (unsigned char)(acc >> 2);
    }
    o[j] = '\0';
    *out = o;
    o = NULL;
    if (out_len != NULL)
        *out_len = j;
out:
    free(o);
    return rc;
}

enum clc_err clc_b64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len)
{
    return decode(in, n, 0, out, out_len);
}

enum clc_err clc_b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len)
{
    return decode(in, n, 1, out, out_len);
}
