/* The blob store: containers and block blobs in memory, and with a data dir
 * one JSON file per container and one per blob (content base64), so a write
 * touches only its own file. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "core/b64.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/blob.h"
#include "emulator/state.h"

/* Blobs come through a 4 MiB request limit by default; files allow more. */
#define FILE_MAX ((size_t)96 * 1024 * 1024)
#define BLOB_PREFIX "b-"

static void new_etag(char out[24])
{
    char hex[16];

    clc_rand_hex(hex, 7);
    for (char *p = hex; *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    snprintf(out, 24, "0x8D%.13s", hex);
}

static enum clc_err write_json(const char *dir, const char *file, const cJSON *doc,
                               struct clc_errinfo *ei)
{
    char *path = emu_storage_path_join(dir, file), *text = clc_json_print(doc);
    enum clc_err rc;

    if (path == NULL || text == NULL)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "blob store: out of memory");
    else
        rc = clc_file_write_atomic(path, text, strlen(text), 0600, ei);
    free(path);
    free(text);
    return rc;
}

static int add_meta(cJSON *doc, const struct emu_storage_meta *m)
{
    cJSON *o = cJSON_AddObjectToObject(doc, "metadata");

    for (size_t i = 0; o != NULL && i < m->n; i++)
        if (clc_json_add_str(o, m->name[i], m->value[i]) != CLC_OK)
            return 0;
    return o != NULL;
}

static int read_meta(const cJSON *doc, struct emu_storage_meta *m)
{
    const cJSON *it, *o = cJSON_GetObjectItemCaseSensitive(doc, "metadata");

    cJSON_ArrayForEach(it, o)
    {
        if (!cJSON_IsString(it) || m->n == EMU_STORAGE_MAX_META)
            return 0;
        m->name[m->n] = strdup(it->string);
        m->value[m->n] = strdup(it->valuestring);
        m->n++;
        if (!m->name[m->n - 1] || !m->value[m->n - 1])
            return 0;
    }
    return 1;
}

static enum clc_err save_container(const struct emu_container *c, struct clc_errinfo *ei)
{
    cJSON *doc;
    enum clc_err rc = CLC_ERR_NOMEM;

    if (c->dir == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    if (doc != NULL && clc_json_add_str(doc, "etag", c->etag) == CLC_OK &&
        clc_json_add_int(doc, "created", c->created) == CLC_OK && add_meta(doc, &c->meta))
        rc = write_json(c->dir, "container.json", doc, ei);
    cJSON_Delete(doc);
    return rc == CLC_ERR_NOMEM ? clc_errf(ei, rc, "container: out of memory") : rc;
}

static enum clc_err save_blob(const struct emu_container *c, const struct emu_blob *b,
                              struct clc_errinfo *ei)
{
    cJSON *doc;
    char *b64 = NULL, file[48];
    enum clc_err rc = CLC_ERR_NOMEM;

    if (c->dir == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    if (doc != NULL && clc_b64_encode(b->data, b->len, &b64, NULL) == CLC_OK &&
        !clc_json_add_str(doc, "name", b->name) &&
        !clc_json_add_str(doc, "content_type", b->content_type) &&
        !clc_json_add_str(doc, "etag", b->etag) && !clc_json_add_int(doc, "created", b->created) &&
        !clc_json_add_int(doc, "modified", b->modified) && !clc_json_add_str(doc, "data", b64) &&
        add_meta(doc, &b->meta)) {
        snprintf(file, sizeof file, BLOB_PREFIX "%s.json", b->file);
        rc = write_json(c->dir, file, doc, ei);
    }
    free(b64);
    cJSON_Delete(doc);
    return rc == CLC_ERR_NOMEM ? clc_errf(ei, rc, "blob: out of memory") : rc;
}

static void md5_b64(const void *data, size_t len, char out[32])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    char *b64 = NULL;

    out[0] = '\0';
    if (EVP_Digest(data, len, md, &n, EVP_md5(), NULL) == 1 &&
        clc_b64_encode(md, n, &b64, NULL) == CLC_OK && strlen(b64) < 32)
        snprintf(out, 32, "%s", b64);
    free(b64);
}

static void blob_free(struct emu_blob *b)
{
    if (b == NULL)
        return;
    free(b->name);
    free(b->data);
    emu_storage_meta_cleanup(&b->meta);
    free(b);
}

static void container_free(struct emu_container *c)
{
    if (c == NULL)
        return;
    while (c->blobs != NULL) {
        struct emu_blob *b = c->blobs;
        c->blobs = b->next;
        blob_free(b);
    }
    emu_storage_meta_cleanup(&c->meta);
    free(c->dir);
    free(c);
}

static int cont_cmp(const struct emu_container *c, const char *account, const char *name)
{
    int d = strcmp(c->account, account);
    return d != 0 ? d : strcmp(c->name, name);
}

struct emu_container *emu_container_find(struct emu_blob_store *s, const char *account,
                                         const char *name)
{
    for (struct emu_container *c = s->containers; c != NULL; c = c->next)
        if (cont_cmp(c, account, name) == 0)
            return c;
    return NULL;
}

static enum clc_err container_new(struct emu_blob_store *s, const char *account, const char *name,
                                  struct emu_container **out, struct clc_errinfo *ei)
{
    struct emu_container *c = calloc(1, sizeof *c), **pp;
    char rel[128];

    *out = NULL;
    if (c == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(c->account, sizeof c->account, "%s", account);
    snprintf(c->name, sizeof c->name, "%s", name);
    if (s->dir != NULL) {
        snprintf(rel, sizeof rel, "%s/%s", account, name);
        c->dir = emu_storage_path_join(s->dir, rel);
        if (c->dir == NULL) {
            free(c);
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        }
    }
    for (pp = &s->containers; *pp != NULL && cont_cmp(*pp, account, name) < 0; pp = &(*pp)->next)
        ;
    c->next = *pp;
    *pp = c;
    *out = c;
    return CLC_OK;
}

static void container_unlink(struct emu_blob_store *s, struct emu_container *c)
{
    for (struct emu_container **pp = &s->containers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            return;
        }
    }
}

enum clc_err emu_container_create(struct emu_blob_store *s, const char *account, const char *name,
                                  struct emu_storage_meta *meta, int64_t now,
                                  struct emu_container **out, struct clc_errinfo *ei)
{
    struct emu_container *c;
    enum clc_err rc;

    *out = NULL;
    if (emu_container_find(s, account, name) != NULL)
        return clc_errf(ei, CLC_ERR_CONFLICT, "container %s exists", name);
    rc = container_new(s, account, name, &c, ei);
    if (rc != CLC_OK)
        return rc;
    emu_storage_meta_move(&c->meta, meta);
    c->created = now;
    new_etag(c->etag);
    if (c->dir != NULL) {
        rc = clc_file_mkdirs(c->dir, 0700, ei);
        if (rc == CLC_OK)
            rc = save_container(c, ei);
        if (rc != CLC_OK) {
            container_unlink(s, c);
            emu_storage_remove_dir(c->dir);
            container_free(c);
            return rc;
        }
    }
    *out = c;
    return CLC_OK;
}

void emu_container_delete(struct emu_blob_store *s, struct emu_container *c)
{
    container_unlink(s, c);
    if (c->dir != NULL)
        emu_storage_remove_dir(c->dir);
    container_free(c);
}

struct emu_blob *emu_blob_find(struct emu_container *c, const char *name)
{
    for (struct emu_blob *b = c->blobs; b != NULL; b = b->next)
        if (strcmp(b->name, name) == 0)
            return b;
    return NULL;
}

static void blob_link(struct emu_container *c, struct emu_blob *b)
{
    struct emu_blob **pp;

    for (pp = &c->blobs; *pp != NULL && strcmp((*pp)->name, b->name) < 0; pp = &(*pp)->next)
        ;
    b->next = *pp;
    *pp = b;
    c->nblobs++;
}

static void blob_unlink(struct emu_container *c, struct emu_blob *b)
{
    for (struct emu_blob **pp = &c->blobs; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == b) {
            *pp = b->next;
            c->nblobs--;
            return;
        }
    }
}

enum clc_err emu_blob_write(struct emu_blob_store *s, struct emu_container *c, const char *name,
                            const void *data, size_t len, const char *content_type,
                            struct emu_storage_meta *meta, int64_t now, struct emu_blob **out,
                            struct clc_errinfo *ei)
{
    struct emu_blob *old = emu_blob_find(c, name), *b = calloc(1, sizeof *b);
    enum clc_err rc;

    (void)s;
    *out = NULL;
    if (b == NULL || (b->name = strdup(name)) == NULL || (b->data = malloc(len + 1)) == NULL) {
        blob_free(b);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    memcpy(b->data, data, len);
    b->len = len;
    snprintf(b->content_type, sizeof b->content_type, "%s",
             content_type && content_type[0] ? content_type : "application/octet-stream");
    md5_b64(data, len, b->md5);
    new_etag(b->etag);
    b->created = old ? old->created : now;
    b->modified = now;
    /* A replacement keeps its file, so the rename replaces it atomically. */
    if (old != NULL)
        memcpy(b->file, old->file, sizeof b->file);
    else
        clc_rand_uuid(b->file);
    if (meta != NULL)
        emu_storage_meta_move(&b->meta, meta);
    rc = save_blob(c, b, ei);
    if (rc != CLC_OK) {
        blob_free(b);
        return rc;
    }
    if (old != NULL) {
        blob_unlink(c, old);
        blob_free(old);
    }
    blob_link(c, b);
    *out = b;
    return CLC_OK;
}

enum clc_err emu_blob_delete(struct emu_blob_store *s, struct emu_container *c, struct emu_blob *b,
                             struct clc_errinfo *ei)
{
    char file[48], *path = NULL;
    enum clc_err rc = CLC_OK;

    (void)s;
    if (c->dir != NULL) {
        snprintf(file, sizeof file, BLOB_PREFIX "%s.json", b->file);
        path = emu_storage_path_join(c->dir, file);
        if (path == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        if (unlink(path) != 0 && errno != ENOENT)
            rc = clc_errf(ei, CLC_ERR_IO, "removing %s: %s", path, strerror(errno));
        free(path);
    }
    blob_unlink(c, b);
    blob_free(b);
    return rc;
}

/* ---- loading ---- */

static enum clc_err load_blob(struct emu_container *c, const char *file, struct clc_errinfo *ei)
{
    char *path = emu_storage_path_join(c->dir, file), *text = NULL;
    size_t len = 0, flen = strlen(file);
    cJSON *doc = NULL;
    const char *name, *ct, *etag, *data;
    int64_t created, modified;
    struct emu_blob *b = NULL;
    enum clc_err rc;

    if (path == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = clc_file_read(path, FILE_MAX, &text, &len, ei);
    if (rc == CLC_OK)
        rc = clc_json_parse(text, len, FILE_MAX, &doc, ei);
    if (rc == CLC_OK &&
        (clc_json_str(doc, "name", &name, ei) || clc_json_str(doc, "content_type", &ct, ei) ||
         clc_json_str(doc, "etag", &etag, ei) || clc_json_int(doc, "created", &created, ei) ||
         clc_json_int(doc, "modified", &modified, ei) || clc_json_str(doc, "data", &data, ei)))
        rc = CLC_ERR_PARSE;
    if (rc == CLC_OK && ((b = calloc(1, sizeof *b)) == NULL || (b->name = strdup(name)) == NULL))
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (rc == CLC_OK && (clc_b64_decode(data, strlen(data), &b->data, &b->len) != CLC_OK ||
                         !read_meta(doc, &b->meta) || flen != strlen(BLOB_PREFIX) + 36 + 5))
        rc = clc_errf(ei, CLC_ERR_PARSE, "malformed blob fields");
    if (rc == CLC_OK) {
        snprintf(b->content_type, sizeof b->content_type, "%s", ct);
        snprintf(b->etag, sizeof b->etag, "%s", etag);
        memcpy(b->file, file + strlen(BLOB_PREFIX), 36);
        b->file[36] = '\0';
        b->created = created;
        b->modified = modified;
        md5_b64(b->data, b->len, b->md5);
        blob_link(c, b);
        b = NULL;
    }
    if (rc != CLC_OK)
        rc = clc_err_wrap(ei, rc, "%s", path);
    blob_free(b);
    cJSON_Delete(doc);
    free(text);
    free(path);
    return rc;
}

static enum clc_err load_container(struct emu_blob_store *s, const char *account, const char *name,
                                   struct clc_errinfo *ei)
{
    struct emu_container *c;
    char *cpath = NULL, *text = NULL;
    const char *etag;
    size_t len = 0;
    cJSON *doc = NULL;
    DIR *d = NULL;
    struct dirent *de;
    enum clc_err rc;

    rc = container_new(s, account, name, &c, ei);
    if (rc != CLC_OK)
        return rc;
    cpath = emu_storage_path_join(c->dir, "container.json");
    rc = cpath ? clc_file_read(cpath, FILE_MAX, &text, &len, ei)
               : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (rc == CLC_OK)
        rc = clc_json_parse(text, len, FILE_MAX, &doc, ei);
    if (rc == CLC_OK &&
        (clc_json_str(doc, "etag", &etag, ei) || clc_json_int(doc, "created", &c->created, ei) ||
         !read_meta(doc, &c->meta)))
        rc = clc_err_wrap(ei, CLC_ERR_PARSE, "%s", cpath);
    if (rc == CLC_OK) {
        snprintf(c->etag, sizeof c->etag, "%s", etag);
        d = opendir(c->dir);
        if (d == NULL)
            rc = clc_errf(ei, CLC_ERR_IO, "%s: %s", c->dir, strerror(errno));
    }
    while (rc == CLC_OK && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, BLOB_PREFIX, strlen(BLOB_PREFIX)) == 0)
            rc = load_blob(c, de->d_name, ei);
    if (d != NULL)
        closedir(d);
    cJSON_Delete(doc);
    free(text);
    free(cpath);
    return rc;
}

enum clc_err emu_blob_store_open(struct emu *e, struct emu_blob_store **out, struct clc_errinfo *ei)
{
    struct emu_blob_store *s = calloc(1, sizeof *s);
    const char *data = emu_data_dir(e);
    enum clc_err rc = CLC_OK;
    DIR *top = NULL;

    *out = NULL;
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->e = e;
    if (data != NULL) {
        s->dir = emu_storage_path_join(data, "storage/blob");
        rc = s->dir ? clc_file_mkdirs(s->dir, 0700, ei)
                    : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        if (rc == CLC_OK && (top = opendir(s->dir)) == NULL)
            rc = clc_errf(ei, CLC_ERR_IO, "%s: %s", s->dir, strerror(errno));
    }
    for (struct dirent *a; rc == CLC_OK && top != NULL && (a = readdir(top)) != NULL;) {
        char *ap = a->d_name[0] != '.' ? emu_storage_path_join(s->dir, a->d_name) : NULL;
        DIR *acct = ap ? opendir(ap) : NULL;
        for (struct dirent *cd; rc == CLC_OK && acct && (cd = readdir(acct)) != NULL;)
            if (strlen(a->d_name) < 25 && emu_storage_name_ok(cd->d_name))
                rc = load_container(s, a->d_name, cd->d_name, ei);
        if (acct != NULL)
            closedir(acct);
        free(ap);
    }
    if (top != NULL)
        closedir(top);
    if (rc != CLC_OK) {
        emu_blob_store_free(s);
        return clc_err_wrap(ei, rc, "blob store");
    }
    *out = s;
    return CLC_OK;
}

void emu_blob_store_free(struct emu_blob_store *s)
{
    if (s == NULL)
        return;
    while (s->containers != NULL) {
        struct emu_container *c = s->containers;
        s->containers = c->next;
        container_free(c);
    }
    free(s->dir);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void emu_blob_store_reset(struct emu_blob_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->containers != NULL)
        emu_container_delete(s, s->containers);
    pthread_mutex_unlock(&s->mu);
}

cJSON *emu_blob_store_dump(struct emu_blob_store *s)
{
    cJSON *doc = cJSON_CreateObject();
    int ok = doc != NULL;

    pthread_mutex_lock(&s->mu);
    for (struct emu_container *c = s->containers; ok && c != NULL; c = c->next) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, c->account), *item, *names;
        if (list == NULL)
            list = cJSON_AddArrayToObject(doc, c->account);
        item = cJSON_CreateObject();
        ok = list != NULL && item != NULL && cJSON_AddItemToArray(list, item) &&
             clc_json_add_str(item, "name", c->name) == CLC_OK;
        names = ok ? cJSON_AddArrayToObject(item, "blobs") : NULL;
        ok = names != NULL;
        for (struct emu_blob *b = c->blobs; ok && b != NULL; b = b->next)
            ok = cJSON_AddItemToArray(names, cJSON_CreateString(b->name));
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}
