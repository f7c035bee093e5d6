/* The sync store writer: every version is written completely under a
 * temporary O_EXCL name in the store directory, synced and renamed; then the
 * stable symlink is switched with one rename, so a reader (or a crash) sees
 * the old set or the new set, never a mix. All file operations are relative
 * to the opened, checked directory (no path races). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "core/rand.h"
#include "pipeline/sync_int.h"

#define LOCK_NAME ".certlc-sync.lock"
#define LOCK_WAIT_MS 30000
#define ENTRY_READ_MAX (1024 * 1024)
#define PRUNE_MAX 256
#define DIR_FILES_MAX 64

void (*clc_sync_store_hook)(const char *step) = NULL;

struct clc_sync_store {
    struct clc_sync_store_opts o;
    char *path;
    int dfd;
    int lockfd;
};

static void step(const char *name)
{
    if (clc_sync_store_hook)
        clc_sync_store_hook(name);
}

const char *clc_sync_store_path(const struct clc_sync_store *st)
{
    return st->path;
}

static enum clc_err set_owner(const struct clc_sync_store *st, int fd, const char *what,
                              struct clc_errinfo *ei)
{
    if (!st->o.has_owner && !st->o.has_group)
        return CLC_OK;
    if (fchown(fd, st->o.has_owner ? st->o.owner : (uid_t)-1,
               st->o.has_group ? st->o.group : (gid_t)-1) != 0)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: chown: %s", st->path, what, strerror(errno));
    return CLC_OK;
}

static enum clc_err sync_dir(int fd, const char *path, struct clc_errinfo *ei)
{
    /* Some file systems cannot sync a directory (EINVAL); the rename stands. */
    if (fsync(fd) != 0 && errno != EINVAL)
        return clc_errf(ei, CLC_ERR_IO, "%s: syncing the directory: %s", path, strerror(errno));
    return CLC_OK;
}

static enum clc_err create_dir(const struct clc_sync_store_opts *o, struct clc_errinfo *ei)
{
    char parent[PATH_MAX];
    enum clc_err rc;
    const char *slash = strrchr(o->path, '/');
    if (slash && slash != o->path) {
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - o->path), o->path);
        if ((rc = clc_file_mkdirs(parent, 0755, ei)) != CLC_OK)
            return rc;
    }
    if (mkdir(o->path, 0700) != 0 && errno != EEXIST)
        return clc_errf(ei, CLC_ERR_IO, "creating store %s: %s", o->path, strerror(errno));
    return CLC_OK;
}

static enum clc_err take_lock(struct clc_sync_store *st, struct clc_errinfo *ei)
{
    st->lockfd = openat(st->dfd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (st->lockfd < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: %s", st->path, LOCK_NAME, strerror(errno));
    int64_t deadline = clc_mono_ms() + LOCK_WAIT_MS;
    while (flock(st->lockfd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR)
            return clc_errf(ei, CLC_ERR_IO, "%s: lock: %s", st->path, strerror(errno));
        if (clc_mono_ms() >= deadline)
            return clc_errf(ei, CLC_ERR_TIMEOUT,
                            "%s: another certlc sync has held the store for %d s", st->path,
                            LOCK_WAIT_MS / 1000);
        clc_sleep_ms(100);
    }
    return CLC_OK;
}

enum clc_err clc_sync_store_open(const struct clc_sync_store_opts *o, struct clc_sync_store **out,
                                 struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_sync_store *st = NULL;
    struct stat sb;
    int created = 0;

    *out = NULL;
    if (!o->path || o->path[0] != '/')
        return clc_errf(ei, CLC_ERR_CONFIG, "store: an absolute path is needed");
    if (lstat(o->path, &sb) != 0) {
        if (errno != ENOENT)
            return clc_errf(ei, CLC_ERR_IO, "store %s: %s", o->path, strerror(errno));
        if ((rc = create_dir(o, ei)) != CLC_OK)
            return rc;
        created = 1;
        if (lstat(o->path, &sb) != 0)
            return clc_errf(ei, CLC_ERR_IO, "store %s: %s", o->path, strerror(errno));
    }
    if (S_ISLNK(sb.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(o->path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        return clc_errf(ei, CLC_ERR_INVALID,
                        "store %s is a symbolic link (to %.200s); refusing it: point "
                        "certificateStoreLocation at the real directory",
                        o->path, target);
    }
    if (!S_ISDIR(sb.st_mode))
        return clc_errf(ei, CLC_ERR_INVALID, "store %s is not a directory", o->path);
    if (!(st = calloc(1, sizeof *st)) || !(st->path = strdup(o->path))) {
        free(st);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    st->o = *o;
    st->o.path = st->path;
    st->lockfd = -1;
    st->dfd = open(o->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (st->dfd < 0 || fstat(st->dfd, &sb) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "store %s: %s", o->path, strerror(errno));
        goto out;
    }
    if (created) {
        /* New: exactly the configured owner and mode (umask aside). */
        if ((rc = set_owner(st, st->dfd, ".", ei)) != CLC_OK)
            goto out;
        if (fchmod(st->dfd, o->dir_mode) != 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "store %s: chmod: %s", o->path, strerror(errno));
            goto out;
        }
        sb.st_mode = S_IFDIR | o->dir_mode;
    }
    if (sb.st_mode & S_IWOTH) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "store %s is world-writable (mode %04o); refusing to put keys there", o->path,
                      (unsigned)(sb.st_mode & 07777));
        goto out;
    }
    if (sb.st_uid != geteuid() && sb.st_uid != 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "store %s belongs to uid %u, neither us nor root; refusing it", o->path,
                      (unsigned)sb.st_uid);
        goto out;
    }
    if ((rc = take_lock(st, ei)) != CLC_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    clc_sync_store_close(st);
    return rc;
}

void clc_sync_store_close(struct clc_sync_store *st)
{
    if (!st)
        return;
    if (st->lockfd >= 0)
        close(st->lockfd); /* releases the lock */
    if (st->dfd >= 0)
        close(st->dfd);
    free(st->path);
    free(st);
}

/* "<prefix>.<version>" with version 1-64 alphanumerics (+ ".pfx" if pfx). */
static const char *version_of(const char *entry, const char *prefix, int allow_pfx)
{
    size_t pl = strlen(prefix);
    if (strncmp(entry, prefix, pl) != 0 || entry[pl] != '.')
        return NULL;
    const char *v = entry + pl + 1;
    size_t n = 0;
    while ((v[n] >= '0' && v[n] <= '9') || (v[n] >= 'a' && v[n] <= 'z') ||
           (v[n] >= 'A' && v[n] <= 'Z'))
        n++;
    if (n == 0 || n > 64)
        return NULL;
    if (v[n] == '\0' || (allow_pfx && !strcmp(v + n, ".pfx")))
        return v;
    return NULL;
}

enum clc_err clc_sync_store_installed(struct clc_sync_store *st, const char *link,
                                      const char *prefix, enum clc_sync_layout layout,
                                      struct clc_sync_installed *out, struct clc_errinfo *ei)
{
    char target[300];
    struct stat sb;
    memset(out, 0, sizeof *out);
    ssize_t n = readlinkat(st->dfd, link, target, sizeof target - 1);
    if (n < 0) {
        if (errno == ENOENT)
            return CLC_OK;
        if (errno == EINVAL)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "%s/%s exists and is not a symbolic link; certlc will not replace "
                            "a file it did not write",
                            st->path, link);
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: %s", st->path, link, strerror(errno));
    }
    target[n] = '\0';
    const char *v = version_of(target, prefix, 0);
    if (!v)
        return CLC_OK; /* not ours: replaced by the next install */
    if (fstatat(st->dfd, target, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return CLC_OK;
    if (layout == CLC_SYNC_LAYOUT_EXTENSION ? !S_ISREG(sb.st_mode) || sb.st_size == 0
                                            : !S_ISDIR(sb.st_mode))
        return CLC_OK;
    snprintf(out->entry, sizeof out->entry, "%s", target);
    snprintf(out->version, sizeof out->version, "%s", v);
    return CLC_OK;
}

static enum clc_err read_at(int dfd, const char *name, char **out, size_t *len,
                            struct clc_errinfo *ei)
{
    char buf[8192];
    size_t used = 0, cap = 0;
    char *p = NULL;
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    *out = NULL;
    if (fd < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", name, strerror(errno));
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        if (used + (size_t)r + 1 > ENTRY_READ_MAX)
            break;
        if (used + (size_t)r + 1 > cap) {
            size_t nc = (used + (size_t)r + 1) * 2;
            char *np = malloc(nc);
            if (!np)
                break;
            if (p) {
                memcpy(np, p, used);
                OPENSSL_cleanse(p, cap);
                free(p);
            }
            p = np;
            cap = nc;
        }
        memcpy(p + used, buf, (size_t)r);
        used += (size_t)r;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    close(fd);
    if (!p)
        return clc_errf(ei, CLC_ERR_IO, "%s: empty or unreadable", name);
    p[used] = '\0';
    *out = p;
    *len = used;
    return CLC_OK;
}

enum clc_err clc_sync_store_installed_sha256(struct clc_sync_store *st,
                                             const struct clc_sync_installed *in,
                                             enum clc_sync_layout layout,
                                             const struct clc_sync_files *files, char out[65],
                                             struct clc_errinfo *ei)
{
    char name[600];
    char *text = NULL;
    size_t len = 0;
    enum clc_err rc;
    out[0] = '\0';
    if (!in->entry[0])
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "nothing installed");
    const char *f = files->cert[0] ? files->cert : files->fullchain;
    if (layout == CLC_SYNC_LAYOUT_SEPARATE && !f[0])
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "no certificate file configured");
    if (layout == CLC_SYNC_LAYOUT_SEPARATE)
        snprintf(name, sizeof name, "%s/%s", in->entry, f);
    else
        snprintf(name, sizeof name, "%s", in->entry);
    if ((rc = read_at(st->dfd, name, &text, &len, ei)) != CLC_OK)
        return rc;
    rc = clc_sync_pem_leaf_sha256(text, len, out, ei);
    OPENSSL_cleanse(text, len);
    free(text);
    return rc;
}

/* Creates name in dfd with O_EXCL: 0600 first, then owner, then the mode,
 * so no one else can read it before it is ours. Synced and closed. */
static enum clc_err write_file_at(struct clc_sync_store *st, int dfd, const char *name,
                                  const void *data, size_t len, mode_t mode, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    const char *p = data;
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: creating: %s", st->path, name, strerror(errno));
    if ((rc = set_owner(st, fd, name, ei)) != CLC_OK)
        goto out;
    if (fchmod(fd, mode) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: chmod: %s", st->path, name, strerror(errno));
        goto out;
    }
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: writing: %s", st->path, name,
                          w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: fsync: %s", st->path, name, strerror(errno));
out:
    if (close(fd) != 0 && rc == CLC_OK)
        rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: close: %s", st->path, name, strerror(errno));
    if (rc != CLC_OK)
        unlinkat(dfd, name, 0);
    return rc;
}

/* Removes an entry: a file, or one of our version directories (flat). */
static void remove_entry(int dfd, const char *name)
{
    struct stat sb;
    if (fstatat(dfd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (!S_ISDIR(sb.st_mode)) {
        unlinkat(dfd, name, 0);
        return;
    }
    int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = sub >= 0 ? fdopendir(sub) : NULL;
    if (!d) {
        if (sub >= 0)
            close(sub);
        return;
    }
    struct dirent *de;
    for (int i = 0; i < DIR_FILES_MAX && (de = readdir(d)) != NULL; i++)
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

/* Separate layout: the version directory's files, in tmp (inside the store). */
static enum clc_err write_dir_entry(struct clc_sync_store *st, const char *tmp,
                                    const struct clc_sync_install *in, const struct clc_secret *p12,
                                    struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    const struct clc_sync_files *f = &in->out->files;
    struct clc_secret *key = NULL;
    char *pem = NULL;
    size_t len = 0;
    int n = sk_X509_num(in->m->chain);
    int fd = -1;

    if (mkdirat(st->dfd, tmp, 0700) != 0)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: mkdir: %s", st->path, tmp, strerror(errno));
    fd = openat(st->dfd, tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: %s", st->path, tmp, strerror(errno));
        goto out;
    }
    if ((rc = set_owner(st, fd, tmp, ei)) != CLC_OK)
        goto out;
    if (fchmod(fd, st->o.dir_mode) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: chmod: %s", st->path, tmp, strerror(errno));
        goto out;
    }
    struct {
        const char *name;
        int from, to;
    } parts[] = {{f->cert, 0, 1}, {f->chain, 1, n}, {f->fullchain, 0, n}};
    for (size_t i = 0; i < 3; i++) {
        if (!parts[i].name[0])
            continue;
        if ((rc = clc_sync_pem_certs(in->m->chain, parts[i].from, parts[i].to, &pem, &len, ei)) !=
                CLC_OK ||
            (rc = write_file_at(st, fd, parts[i].name, pem, len, st->o.cert_mode, ei)) != CLC_OK)
            goto out;
        free(pem);
        pem = NULL;
    }
    if (f->key[0] && ((rc = clc_sync_pem_key(in->m->key, &key, ei)) != CLC_OK ||
                      (rc = write_file_at(st, fd, f->key, clc_secret_reveal(key),
                                          clc_secret_len(key), st->o.key_mode, ei)) != CLC_OK))
        goto out;
    if (p12 && f->pkcs12[0] &&
        (rc = write_file_at(st, fd, f->pkcs12, clc_secret_reveal(p12), clc_secret_len(p12),
                            st->o.key_mode, ei)) != CLC_OK)
        goto out;
    rc = sync_dir(fd, tmp, ei);
out:
    if (fd >= 0)
        close(fd);
    if (rc != CLC_OK)
        remove_entry(st->dfd, tmp);
    free(pem);
    clc_secret_free(key);
    return rc;
}

/* Points link at target: a symlink under a temporary name renamed over it. */
static enum clc_err switch_link(struct clc_sync_store *st, const char *link, const char *target,
                                struct clc_errinfo *ei)
{
    char tmp[400], rnd[17];
    clc_rand_hex(rnd, 8);
    snprintf(tmp, sizeof tmp, ".%s.tmp.%s", link, rnd);
    if (symlinkat(target, st->dfd, tmp) != 0)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: symlink: %s", st->path, tmp, strerror(errno));
    if ((st->o.has_owner || st->o.has_group) &&
        fchownat(st->dfd, tmp, st->o.has_owner ? st->o.owner : (uid_t)-1,
                 st->o.has_group ? st->o.group : (gid_t)-1, AT_SYMLINK_NOFOLLOW) != 0) {
        unlinkat(st->dfd, tmp, 0);
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: chown: %s", st->path, tmp, strerror(errno));
    }
    step("link_temp");
    if (renameat(st->dfd, tmp, st->dfd, link) != 0) {
        int e = errno;
        unlinkat(st->dfd, tmp, 0);
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: switching the link: %s", st->path, link,
                        strerror(e));
    }
    return CLC_OK;
}

struct old_entry {
    char name[300];
    struct timespec mtime;
};

static int newest_first(const void *a, const void *b)
{
    const struct old_entry *x = a, *y = b;
    if (x->mtime.tv_sec != y->mtime.tv_sec)
        return x->mtime.tv_sec < y->mtime.tv_sec ? 1 : -1;
    if (x->mtime.tv_nsec != y->mtime.tv_nsec)
        return x->mtime.tv_nsec < y->mtime.tv_nsec ? 1 : -1;
    return strcmp(x->name, y->name);
}

/* Keeps the newest `keep` versions of prefix (the current one always) and
 * removes what a crash may have left: our temporary names. */
static void prune(struct clc_sync_store *st, const char *prefix, const char *link,
                  const char *current, int keep)
{
    struct old_entry *list = calloc(PRUNE_MAX, sizeof *list);
    size_t n = 0, pl = strlen(prefix), ll = strlen(link);
    int dfd2 = dup(st->dfd);
    DIR *d = dfd2 >= 0 ? fdopendir(dfd2) : NULL;
    struct dirent *de;
    if (!d || !list) {
        if (dfd2 >= 0 && !d)
            close(dfd2);
        if (d)
            closedir(d);
        free(list);
        return;
    }
    rewinddir(d);
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        struct stat sb;
        /* ".<prefix>.<version>.tmp.*" and ".<link>.tmp.*" from a crash. */
        if (nm[0] == '.' &&
            ((!strncmp(nm + 1, prefix, pl) && nm[1 + pl] == '.' && strstr(nm + 1 + pl, ".tmp.")) ||
             (!strncmp(nm + 1, link, ll) && !strncmp(nm + 1 + ll, ".tmp.", 5)))) {
            remove_entry(st->dfd, nm);
            continue;
        }
        const char *v = version_of(nm, prefix, 1);
        if (!v || n >= PRUNE_MAX || strlen(nm) >= sizeof list[0].name)
            continue;
        if (fstatat(st->dfd, nm, &sb, AT_SYMLINK_NOFOLLOW) != 0 || S_ISLNK(sb.st_mode))
            continue;
        snprintf(list[n].name, sizeof list[n].name, "%s", nm);
        list[n].mtime = sb.st_mtim;
        n++;
    }
    closedir(d);
    qsort(list, n, sizeof *list, newest_first);
    /* Count versions, not files: "<entry>" and "<entry>.pfx" are one. */
    char kept[100][80];
    int nkept = 0;
    size_t cl = strlen(current);
    for (size_t i = 0; i < n; i++) {
        const char *v = list[i].name + pl + 1;
        size_t vl = strcspn(v, ".");
        int is_current = !strncmp(list[i].name, current, cl) &&
                         (list[i].name[cl] == '\0' || !strcmp(list[i].name + cl, ".pfx"));
        int seen = 0;
        for (int k = 0; k < nkept && !seen; k++)
            seen = strlen(kept[k]) == vl && !strncmp(kept[k], v, vl);
        if (seen || is_current)
            continue;
        if (nkept < keep - 1 && nkept < 100) {
            snprintf(kept[nkept++], sizeof kept[0], "%.*s", (int)vl, v);
            continue;
        }
        clc_log(CLC_LOG_INFO, "sync.pruned", CLC_LS("store", st->path),
                CLC_LS("entry", list[i].name));
        remove_entry(st->dfd, list[i].name);
    }
    free(list);
}

#define MARK_FMT ".%s.reload-pending"

enum clc_err clc_sync_store_install(struct clc_sync_store *st, const struct clc_sync_install *in,
                                    struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char entry[300], tmp[400], rnd[17], name[400];
    struct clc_secret *bundle = NULL, *p12 = NULL;
    int ext = in->out->layout == CLC_SYNC_LAYOUT_EXTENSION;
    int want_p12 = in->out->pkcs12 && (ext || in->out->files.pkcs12[0]);

    if (snprintf(entry, sizeof entry, "%s.%s", in->prefix, in->version) >= (int)sizeof entry - 5 ||
        !version_of(entry, in->prefix, 0))
        return clc_errf(ei, CLC_ERR_INVALID, "version '%.80s' is not usable in a file name",
                        in->version);
    clc_rand_hex(rnd, 8);
    snprintf(tmp, sizeof tmp, ".%s.tmp.%s", entry, rnd);
    if (want_p12 && (rc = clc_sync_pkcs12(in->m, in->pkcs12_pw, &p12, ei)) != CLC_OK)
        goto out;
    if (ext) {
        if ((rc = clc_sync_pem_bundle(in->m, &bundle, ei)) != CLC_OK ||
            (rc = write_file_at(st, st->dfd, tmp, clc_secret_reveal(bundle), clc_secret_len(bundle),
                                st->o.key_mode, ei)) != CLC_OK)
            goto out;
        step("temp_written");
        if (renameat(st->dfd, tmp, st->dfd, entry) != 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: rename: %s", st->path, entry, strerror(errno));
            unlinkat(st->dfd, tmp, 0);
            goto out;
        }
        if (p12) {
            snprintf(tmp, sizeof tmp, ".%s.pfx.tmp.%s", entry, rnd);
            snprintf(name, sizeof name, "%s.pfx", entry);
            if ((rc = write_file_at(st, st->dfd, tmp, clc_secret_reveal(p12), clc_secret_len(p12),
                                    st->o.key_mode, ei)) != CLC_OK)
                goto out;
            if (renameat(st->dfd, tmp, st->dfd, name) != 0) {
                rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: rename: %s", st->path, name, strerror(errno));
                unlinkat(st->dfd, tmp, 0);
                goto out;
            }
        }
    } else {
        if ((rc = write_dir_entry(st, tmp, in, p12, ei)) != CLC_OK)
            goto out;
        step("temp_written");
        /* A leftover directory of this version (a broken earlier install)
         * is not what the link serves, or we would not be installing. */
        remove_entry(st->dfd, entry);
        if (renameat(st->dfd, tmp, st->dfd, entry) != 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: rename: %s", st->path, entry, strerror(errno));
            remove_entry(st->dfd, tmp);
            goto out;
        }
    }
    if ((rc = sync_dir(st->dfd, st->path, ei)) != CLC_OK)
        goto out;
    step("entry_renamed");
    if (in->mark_reload) {
        snprintf(name, sizeof name, MARK_FMT, in->link);
        int fd = openat(st->dfd, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 || fsync(fd) != 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "%s/%s: %s", st->path, name, strerror(errno));
            if (fd >= 0)
                close(fd);
            goto out;
        }
        close(fd);
        if ((rc = sync_dir(st->dfd, st->path, ei)) != CLC_OK)
            goto out;
        step("marker_written");
    }
    if ((rc = switch_link(st, in->link, entry, ei)) != CLC_OK)
        goto out;
    if (ext && p12) {
        char plink[400];
        snprintf(plink, sizeof plink, "%s.pfx", in->link);
        snprintf(name, sizeof name, "%s.pfx", entry);
        if ((rc = switch_link(st, plink, name, ei)) != CLC_OK)
            goto out;
    }
    if ((rc = sync_dir(st->dfd, st->path, ei)) != CLC_OK)
        goto out;
    step("link_switched");
    prune(st, in->prefix, in->link, entry, in->keep);
    step("pruned");
out:
    clc_secret_free(bundle);
    clc_secret_free(p12);
    return rc;
}

int clc_sync_store_reload_pending(struct clc_sync_store *st, const char *link)
{
    char name[400];
    struct stat sb;
    snprintf(name, sizeof name, MARK_FMT, link);
    return fstatat(st->dfd, name, &sb, AT_SYMLINK_NOFOLLOW) == 0;
}

enum clc_err clc_sync_store_reload_done(struct clc_sync_store *st, const char *link,
                                        struct clc_errinfo *ei)
{
    char name[400];
    snprintf(name, sizeof name, MARK_FMT, link);
    if (unlinkat(st->dfd, name, 0) != 0 && errno != ENOENT)
        return clc_errf(ei, CLC_ERR_IO, "%s/%s: %s", st->path, name, strerror(errno));
    return sync_dir(st->dfd, st->path, ei);
}
