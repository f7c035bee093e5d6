/* Files: bounded whole-file reads and crash-safe replacement. A key or state
 * file is written under a fresh O_EXCL name, synced, then renamed over the
 * old one, so readers see the old bytes or the new, never a mix. */
#include "core/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/rand.h"

#define READ_CHUNK 16384
#define TMP_ATTEMPTS 16

enum clc_err clc_file_read(const char *path, size_t max, char **out, size_t *len,
                           struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_buf b;
    int fd = -1;
    char chunk[READ_CHUNK];

    clc_buf_init(&b, max);
    *out = NULL;
    if (len != NULL)
        *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        /* A missing file is often expected (optional config, first run), so
         * it gets its own code. */
        rc = clc_errf(ei, errno == ENOENT ? CLC_ERR_NOT_FOUND : CLC_ERR_IO, "reading %s: %s", path,
                      strerror(errno));
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uintmax_t)st.st_size > max) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "reading %s: larger than the limit of %zu bytes", path,
                      max);
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof chunk);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = clc_errf(ei, CLC_ERR_IO, "reading %s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        rc = clc_buf_append(&b, chunk, (size_t)r);
        if (rc == CLC_ERR_LIMIT) {
            rc = clc_errf(ei, rc, "reading %s: larger than the limit of %zu bytes", path, max);
            goto out;
        }
        if (rc != CLC_OK) {
            rc = clc_errf(ei, rc, "reading %s: out of memory", path);
            goto out;
        }
    }
    size_t n = 0;
    *out = clc_buf_take(&b, &n);
    if (*out == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "reading %s: out of memory", path);
        goto out;
    }
    if (len != NULL)
        *len = n;
out:
    if (fd >= 0)
        close(fd);
    clc_buf_cleanup(&b);
    return rc;
}

/* The directory part of path, for the fsync that makes a rename durable. */
static void dir_of(const char *path, char *dir, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

static enum clc_err write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return CLC_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return CLC_OK;
}

enum clc_err clc_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                                   struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char tmp[PATH_MAX];
    char dir[PATH_MAX];
    int fd = -1;
    int dfd = -1;
    int have_tmp = 0;

    if (strlen(path) + sizeof ".tmp.XXXXXX" > sizeof tmp) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "writing %s: path too long", path);
        goto out;
    }
    /* Our own O_EXCL loop rather than mkstemp: mkstemp fixes the mode to 0600
     * and we want the caller's mode from the first instant. */
    for (int i = 0; i < TMP_ATTEMPTS && fd < 0; i++) {
        char suffix[7];
        clc_rand_hex(suffix, 3);
        snprintf(tmp, sizeof tmp, "%s.tmp.%s", path, suffix);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && errno != EEXIST) {
            rc = clc_errf(ei, CLC_ERR_IO, "writing %s: creating temporary file: %s", path,
                          strerror(errno));
            goto out;
        }
    }
    if (fd < 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: no free temporary name", path);
        goto out;
    }
    have_tmp = 1;
    /* The umask may have narrowed the mode (or, for a permissive umask, the
     * caller's explicit mode still wins): set it exactly. */
    if (fchmod(fd, mode) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: chmod: %s", path, strerror(errno));
        goto out;
    }
    if (write_all(fd, data, len) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: %s", path, strerror(errno));
        goto out;
    }
    if (fsync(fd) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: fsync: %s", path, strerror(errno));
        goto out;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: close: %s", path, strerror(errno));
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: rename: %s", path, strerror(errno));
        goto out;
    }
    have_tmp = 0;
    dir_of(path, dir, sizeof dir);
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    /* Some file systems cannot sync a directory (EINVAL); the rename has
     * happened either way and the new content is complete. */
    if (dfd < 0 || (fsync(dfd) != 0 && errno != EINVAL)) {
        rc = clc_errf(ei, CLC_ERR_IO, "writing %s: syncing directory %s: %s", path, dir,
                      strerror(errno));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    if (have_tmp)
        unlink(tmp);
    return rc;
}

enum clc_err clc_file_mkdirs(const char *path, mode_t mode, struct clc_errinfo *ei)
{
    char p[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0)
        return clc_errf(ei, CLC_ERR_INVALID, "mkdir: empty path");
    if (n >= sizeof p)
        return clc_errf(ei, CLC_ERR_INVALID, "mkdir %s: path too long", path);
    memcpy(p, path, n + 1);
    /* Each prefix ending before a '/' is created in turn, then the whole. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && p[i] != '/')
            continue;
        if (i < n && p[i - 1] == '/')
            continue; /* repeated slashes */
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) != 0) {
            int e = errno;
            struct stat st;
            if (e != EEXIST || stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
                if (e == EEXIST)
                    return clc_errf(ei, CLC_ERR_IO, "mkdir %s: exists and is not a directory", p);
                return clc_errf(ei, CLC_ERR_IO, "mkdir %s: %s", p, strerror(e));
            }
        }
        p[i] = saved;
    }
    return CLC_OK;
}
