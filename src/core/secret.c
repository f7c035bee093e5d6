/* Secrets: bytes kept in OpenSSL's secure heap when it is set up, wiped on
 * free, readable only through clc_secret_reveal. Loaders name where a secret
 * came from in errors, never what it contains. */
#include "core/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

struct clc_secret {
    size_t len;
    int secure; /* 1 when data came from the secure heap */
    char *data; /* len bytes + NUL */
};

static char *secret_alloc(size_t n, int *secure)
{
    if (CRYPTO_secure_malloc_initialized()) {
        char *p = OPENSSL_secure_malloc(n);
        if (p != NULL) {
            *secure = 1;
            return p;
        }
        /* The secure heap is small and fixed; when it is full a wiped
         * ordinary allocation is better than failing the operation. */
    }
    *secure = 0;
    return malloc(n);
}

enum clc_err clc_secret_new(const void *p, size_t n, struct clc_secret **out)
{
    *out = NULL;
    if (n == SIZE_MAX)
        return CLC_ERR_LIMIT;
    struct clc_secret *s = calloc(1, sizeof *s);
    if (s == NULL)
        return CLC_ERR_NOMEM;
    s->data = secret_alloc(n + 1, &s->secure);
    if (s->data == NULL) {
        free(s);
        return CLC_ERR_NOMEM;
    }
    if (n > 0)
        memcpy(s->data, p, n);
    s->data[n] = '\0';
    s->len = n;
    *out = s;
    return CLC_OK;
}

void clc_secret_free(struct clc_secret *s)
{
    if (s == NULL)
        return;
    if (s->data != NULL) {
        OPENSSL_cleanse(s->data, s->len + 1);
        if (s->secure)
            OPENSSL_secure_free(s->data);
        else
            free(s->data);
    }
    OPENSSL_cleanse(s, sizeof *s);
    free(s);
}

/* Strips one trailing "\n" or "\r\n": editors and `echo` add it, and it is
 * never part of a credential. */
static size_t strip_newline(const char *p, size_t n)
{
    if (n > 0 && p[n - 1] == '\n') {
        n--;
        if (n > 0 && p[n - 1] == '\r')
            n--;
    }
    return n;
}

enum clc_err clc_secret_from_file(const char *path, struct clc_secret **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    int fd = -1;
    int secure = 0;
    char *tmp = NULL;
    size_t got = 0;

    *out = NULL;
    /* O_NONBLOCK so that a FIFO named by mistake cannot block the open; the
     * fstat below refuses it anyway. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "secret file %s: %s", path, strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "secret file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "secret file %s: not a regular file", path);
        goto out;
    }
    if (st.st_size > CLC_SECRET_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "secret file %s: larger than %d bytes", path,
                      CLC_SECRET_MAX);
        goto out;
    }
    /* Read into the secure buffer directly, one byte past the limit so that a
     * file that grew after fstat is still caught. */
    tmp = secret_alloc(CLC_SECRET_MAX + 1, &secure);
    if (tmp == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        if (got > CLC_SECRET_MAX)
            break;
        ssize_t r = read(fd, tmp + got, CLC_SECRET_MAX + 1 - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = clc_errf(ei, CLC_ERR_IO, "secret file %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got > CLC_SECRET_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "secret file %s: larger than %d bytes", path,
                      CLC_SECRET_MAX);
        goto out;
    }
    size_t n = strip_newline(tmp, got);
    if (n == 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "secret file %s: empty", path);
        goto out;
    }
    rc = clc_secret_new(tmp, n, out);
    if (rc != CLC_OK)
        clc_errf(ei, rc, "secret file %s: out of memory", path);
out:
    if (tmp != NULL) {
        OPENSSL_cleanse(tmp, CLC_SECRET_MAX + 1);
        if (secure)
            OPENSSL_secure_free(tmp);
        else
            free(tmp);
    }
    if (fd >= 0)
        close(fd);
    return rc;
}

enum clc_err clc_secret_from_env(const char *name, struct clc_secret **out, struct clc_errinfo *ei)
{
    *out = NULL;
    const char *v = getenv(name);
    if (v == NULL || v[0] == '\0')
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "environment variable %s is not set", name);
    size_t n = strlen(v);
    if (n > CLC_SECRET_MAX)
        return clc_errf(ei, CLC_ERR_LIMIT, "environment variable %s: longer than %d bytes", name,
                        CLC_SECRET_MAX);
    enum clc_err rc = clc_secret_new(v, n, out);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "environment variable %s: out of memory", name);
    return CLC_OK;
}

enum clc_err clc_secret_dup(const struct clc_secret *s, struct clc_secret **out)
{
    *out = NULL;
    if (s == NULL)
        return CLC_ERR_INVALID;
    return clc_secret_new(s->data, s->len, out);
}

const char *clc_secret_reveal(const struct clc_secret *s)
{
    return s != NULL ? s->data : "";
}

size_t clc_secret_len(const struct clc_secret *s)
{
    return s != NULL ? s->len : 0;
}

int clc_secret_equals(const struct clc_secret *s, const void *p, size_t n)
{
    if (s == NULL || p == NULL)
        return 0;
    /* Lengths are not treated as secret (a token's length shows on the
     * wire); only the bytes are compared in constant time. */
    if (s->len != n)
        return 0;
    if (n == 0)
        return 1;
    return CRYPTO_memcmp(s->data, p, n) == 0;
}

void clc_secret_fingerprint(const struct clc_secret *s, char out[CLC_SECRET_FP_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    const char *p = s != NULL ? s->data : "";
    size_t n = s != NULL ? s->len : 0;

    memcpy(out, "sha256:", 7);
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 6) {
        /* Never fall back to anything derived from the bytes themselves. */
        memcpy(out + 7, "????????????", 12);
    } else {
        for (int i = 0; i < 6; i++) {
            out[7 + 2 * i] = hex[md[i] >> 4];
            out[7 + 2 * i + 1] = hex[md[i] & 0xf];
        }
    }
    out[19] = '\0';
    OPENSSL_cleanse(md, sizeof md);
}
