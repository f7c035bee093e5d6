/* Plain secrets of an emulated vault (what Set Secret stores, as opposed to
 * the secret behind a certificate): their versions, persistence as one JSON
 * document per secret (mode 0600) under <vault dir>/secrets/, and their share
 * of the control API's reset and state dump. Callers hold the vault lock. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/keyvault.h"
#include "emulator/services.h"

/* Bounds of the emulator, not of Azure: they keep a test's memory bounded. */
#define PLAIN_SECRETS_MAX 1024
#define PLAIN_VERSIONS_MAX 256
#define PLAIN_DOC_MAX ((size_t)16 * 1024 * 1024)
#define PLAIN_DUMP_NAMES_MAX 100

struct plain_secret {
    char name[KV_NAME_MAX + 1];     /* as first given */
    char lname[KV_NAME_MAX + 1];    /* lower case: names are case-insensitive */
    struct kv_plain_version **vers; /* oldest first */
    size_t n, cap;
};

struct kv_plain {
    struct plain_secret **items; /* in the order they were first set */
    size_t n, cap;
};

void kv_plain_version_free(struct kv_plain_version *p)
{
    if (p == NULL)
        return;
    if (p->value != NULL) {
        OPENSSL_cleanse(p->value, strlen(p->value));
        free(p->value);
    }
    free(p->content_type);
    cJSON_Delete(p->tags);
    free(p);
}

static void secret_free(struct plain_secret *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        kv_plain_version_free(s->vers[i]);
    free(s->vers);
    free(s);
}

static void plain_clear(struct kv_plain *p)
{
    for (size_t i = 0; p != NULL && i < p->n; i++)
        secret_free(p->items[i]);
    if (p != NULL)
        p->n = 0;
}

void kv_plain_free(struct kv_vault *v)
{
    if (v->plain == NULL)
        return;
    plain_clear(v->plain);
    free(v->plain->items);
    free(v->plain);
    v->plain = NULL;
}

static struct plain_secret *find(const struct kv_vault *v, const char *name)
{
    for (size_t i = 0; v->plain != NULL && i < v->plain->n; i++)
        if (strcasecmp(v->plain->items[i]->name, name) == 0)
            return v->plain->items[i];
    return NULL;
}

const struct kv_plain_version *kv_plain_get(const struct kv_vault *v, const char *name,
                                            const char *version, const char **stored)
{
    const struct plain_secret *s = find(v, name);

    if (s == NULL || s->n == 0)
        return NULL;
    *stored = s->name;
    if (version == NULL)
        return s->vers[s->n - 1];
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->vers[i]->id, version) == 0)
            return s->vers[i];
    return NULL;
}

static struct plain_secret *secret_new(const char *name)
{
    struct plain_secret *s = calloc(1, sizeof *s);
    size_t n = strlen(name);

    if (s == NULL || n > KV_NAME_MAX) {
        free(s);
        return NULL;
    }
    memcpy(s->name, name, n + 1);
    for (size_t i = 0; i <= n; i++)
        s->lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    return s;
}

/* Appends; the caller checks the count bounds. */
static enum clc_err push_version(struct plain_secret *s, struct kv_plain_version *ver)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4;
        struct kv_plain_version **nv = realloc(s->vers, cap * sizeof *nv);
        if (nv == NULL)
            return CLC_ERR_NOMEM;
        s->vers = nv;
        s->cap = cap;
    }
    s->vers[s->n++] = ver;
    return CLC_OK;
}

static enum clc_err push_secret(struct kv_vault *v, struct plain_secret *s)
{
    struct kv_plain *p = v->plain;

    if (p == NULL && (p = v->plain = calloc(1, sizeof *p)) == NULL)
        return CLC_ERR_NOMEM;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct plain_secret **ni = realloc(p->items, cap * sizeof *ni);
        if (ni == NULL)
            return CLC_ERR_NOMEM;
        p->items = ni;
        p->cap = cap;
    }
    p->items[p->n++] = s;
    return CLC_OK;
}

/* ---- persistence ---- */

static cJSON *version_doc(const struct kv_plain_version *p)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && clc_json_add_str(o, "id", p->id) == CLC_OK &&
             clc_json_add_str(o, "value", p->value) == CLC_OK &&
             clc_json_add_bool(o, "enabled", p->enabled) == CLC_OK &&
             clc_json_add_int(o, "nbf", p->nbf) == CLC_OK &&
             clc_json_add_int(o, "exp", p->exp) == CLC_OK &&
             clc_json_add_int(o, "created", p->created) == CLC_OK &&
             clc_json_add_int(o, "updated", p->updated) == CLC_OK;
    if (ok && p->content_type != NULL)
        ok = clc_json_add_str(o, "contentType", p->content_type) == CLC_OK;
    if (ok && p->tags != NULL) {
        cJSON *t = cJSON_Duplicate(p->tags, 1);
        ok = t != NULL && cJSON_AddItemToObject(o, "tags", t);
        if (!ok)
            cJSON_Delete(t);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *secret_path(const struct kv_vault *v, const char *lname)
{
    size_t n = strlen(v->dir) + strlen(lname) + 16;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/secrets/%s.json", v->dir, lname);
    return p;
}

static enum clc_err persist(struct kv_vault *v, const struct plain_secret *s,
                            struct clc_errinfo *ei)
{
    cJSON *doc, *vers;
    char *text = NULL, *path = NULL;
    enum clc_err rc = CLC_OK;

    if (v->dir == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    vers = doc ? cJSON_AddArrayToObject(doc, "versions") : NULL;
    int ok = vers != NULL && clc_json_add_str(doc, "name", s->name) == CLC_OK;
    for (size_t i = 0; ok && i < s->n; i++) {
        cJSON *o = version_doc(s->vers[i]);
        ok = o != NULL && cJSON_AddItemToArray(vers, o);
        if (!ok)
            cJSON_Delete(o);
    }
    text = ok ? clc_json_print(doc) : NULL;
    path = secret_path(v, s->lname);
    if (text == NULL || path == NULL)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "saving secret %s: out of memory", s->name);
    else
        rc = clc_file_write_atomic(path, text, strlen(text), 0600, ei);
    if (rc != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.keyvault.save_failed", CLC_LS("vault", v->name),
                CLC_LS("secret", s->name), CLC_LS("reason", ei ? ei->msg : ""));
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    free(path);
    cJSON_Delete(doc);
    return rc;
}

static void unpersist(struct kv_vault *v, const char *lname)
{
    char *path;

    if (v->dir == NULL)
        return;
    path = secret_path(v, lname);
    if (path != NULL && unlink(path) != 0 && errno != ENOENT)
        clc_log(CLC_LOG_ERROR, "emu.keyvault.unlink_failed", CLC_LS("path", path),
                CLC_LS("reason", strerror(errno)));
    free(path);
}

enum clc_err kv_plain_add(struct kv_vault *v, const char *name, struct kv_plain_version *ver,
                          const char **stored, struct clc_errinfo *ei)
{
    struct plain_secret *s = find(v, name), *fresh = NULL;
    enum clc_err rc;

    if (s == NULL) {
        if (v->plain != NULL && v->plain->n >= PLAIN_SECRETS_MAX)
            return clc_errf(ei, CLC_ERR_LIMIT,
                            "the emulator keeps at most %d plain secrets per vault",
                            PLAIN_SECRETS_MAX);
        if ((s = fresh = secret_new(name)) == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    } else if (s->n >= PLAIN_VERSIONS_MAX) {
        return clc_errf(ei, CLC_ERR_LIMIT, "the emulator keeps at most %d versions of a secret",
                        PLAIN_VERSIONS_MAX);
    }
    if (push_version(s, ver) != CLC_OK) {
        secret_free(fresh);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    /* Saved before it counts: a secret the disk refused is not served. */
    rc = persist(v, s, ei);
    if (rc == CLC_OK && fresh != NULL && push_secret(v, fresh) != CLC_OK)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (rc != CLC_OK) {
        /* A failed write left the previous document (renamed into place or
         * not at all); only a new secret that did reach the disk is removed. */
        s->n--; /* the caller keeps ver */
        if (fresh != NULL && rc == CLC_ERR_NOMEM)
            unpersist(v, fresh->lname);
        secret_free(fresh);
        return rc;
    }
    *stored = s->name;
    return CLC_OK;
}

static enum clc_err load_version(const cJSON *o, struct kv_plain_version **out)
{
    struct kv_plain_version *p = calloc(1, sizeof *p);
    const char *id = NULL, *value = NULL, *ct = NULL;
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(o, "tags");
    struct clc_errinfo ei = {0};
    int en = 1;

    *out = NULL;
    if (p == NULL || !cJSON_IsObject(o) || clc_json_str(o, "id", &id, &ei) != CLC_OK ||
        clc_json_str(o, "value", &value, &ei) != CLC_OK ||
        clc_json_str_opt(o, "contentType", NULL, &ct, &ei) != CLC_OK ||
        clc_json_bool_opt(o, "enabled", 1, &en, &ei) != CLC_OK ||
        clc_json_int_opt(o, "nbf", -1, &p->nbf, &ei) != CLC_OK ||
        clc_json_int_opt(o, "exp", -1, &p->exp, &ei) != CLC_OK ||
        clc_json_int_opt(o, "created", 0, &p->created, &ei) != CLC_OK ||
        clc_json_int_opt(o, "updated", 0, &p->updated, &ei) != CLC_OK ||
        strlen(id) != KV_VERSION_LEN || strlen(value) > KV_SECRET_VALUE_MAX ||
        (ct != NULL && strlen(ct) > KV_CONTENT_TYPE_MAX) || (tags != NULL && !cJSON_IsObject(tags)))
        goto fail;
    memcpy(p->id, id, KV_VERSION_LEN + 1);
    p->enabled = en;
    if ((p->value = strdup(value)) == NULL ||
        (ct != NULL && (p->content_type = strdup(ct)) == NULL) ||
        (tags != NULL && (p->tags = cJSON_Duplicate(tags, 1)) == NULL))
        goto fail;
    *out = p;
    return CLC_OK;
fail:
    kv_plain_version_free(p);
    return CLC_ERR_PARSE;
}

static enum clc_err load_secret(struct kv_vault *v, const cJSON *doc, const char *file)
{
    const char *name = NULL;
    const cJSON *vers = cJSON_GetObjectItemCaseSensitive(doc, "versions"), *it;
    struct plain_secret *s = NULL;
    struct clc_errinfo ei = {0};
    size_t n = 0;

    if (clc_json_str(doc, "name", &name, &ei) != CLC_OK || !cJSON_IsArray(vers) ||
        (s = secret_new(name)) == NULL)
        goto fail;
    /* The file is named after the secret: anything else was not written by us. */
    n = strlen(s->lname);
    if (strncmp(file, s->lname, n) != 0 || strcmp(file + n, ".json") != 0 || find(v, name) != NULL)
        goto fail;
    if (v->plain != NULL && v->plain->n >= PLAIN_SECRETS_MAX)
        goto fail;
    cJSON_ArrayForEach(it, vers)
    {
        struct kv_plain_version *p = NULL;
        if (s->n >= PLAIN_VERSIONS_MAX || load_version(it, &p) != CLC_OK)
            goto fail;
        if (push_version(s, p) != CLC_OK) {
            kv_plain_version_free(p);
            goto fail;
        }
    }
    if (s->n == 0 || push_secret(v, s) != CLC_OK)
        goto fail;
    return CLC_OK;
fail:
    secret_free(s);
    return CLC_ERR_PARSE;
}

enum clc_err kv_plain_load(struct kv_vault *v, struct clc_errinfo *ei)
{
    char dir[4200];
    DIR *d;
    struct dirent *de;
    enum clc_err rc = CLC_OK;

    if (v->dir == NULL)
        return CLC_OK;
    if ((size_t)snprintf(dir, sizeof dir, "%s/secrets", v->dir) >= sizeof dir)
        return clc_errf(ei, CLC_ERR_LIMIT, "%s: path too long", v->dir);
    if ((rc = clc_file_mkdirs(dir, 0700, ei)) != CLC_OK)
        return rc;
    if ((d = opendir(dir)) == NULL)
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", dir, strerror(errno));
    while (rc == CLC_OK && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name), len = 0;
        char path[4500], *text = NULL;
        cJSON *doc = NULL;

        /* Temporary files of an interrupted write start with the name and
         * do not end in .json; dot files are not ours. */
        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        rc = clc_file_read(path, PLAIN_DOC_MAX, &text, &len, ei);
        if (rc == CLC_OK)
            rc = clc_json_parse(text, len, PLAIN_DOC_MAX, &doc, ei);
        if (rc == CLC_OK && load_secret(v, doc, de->d_name) != CLC_OK)
            rc = clc_errf(ei, CLC_ERR_PARSE, "%s: not a secret document of this vault", path);
        cJSON_Delete(doc);
        if (text != NULL) {
            OPENSSL_cleanse(text, len);
            free(text);
        }
    }
    closedir(d);
    if (rc != CLC_OK)
        kv_plain_free(v);
    return rc;
}

/* ---- control API: reset and dump ---- */

static void reset_plain(struct emu *e, void *ctx)
{
    struct kv_service *s = ctx;

    (void)e;
    for (size_t i = 0; i < s->nvaults; i++) {
        struct kv_vault *v = s->vaults[i];
        pthread_mutex_lock(&v->mu);
        for (size_t j = 0; v->plain != NULL && j < v->plain->n; j++)
            unpersist(v, v->plain->items[j]->lname);
        kv_plain_free(v);
        pthread_mutex_unlock(&v->mu);
    }
}

static cJSON *dump_plain(struct emu *e, void *ctx)
{
    struct kv_service *s = ctx;
    cJSON *all = cJSON_CreateObject();

    (void)e;
    for (size_t i = 0; all != NULL && i < s->nvaults; i++) {
        struct kv_vault *v = s->vaults[i];
        cJSON *o = cJSON_AddObjectToObject(all, v->name);
        cJSON *names = o ? cJSON_AddArrayToObject(o, "secrets") : NULL;
        int ok = names != NULL;
        pthread_mutex_lock(&v->mu);
        size_t n = v->plain != NULL ? v->plain->n : 0;
        ok = ok && clc_json_add_int(o, "count", (int64_t)n) == CLC_OK;
        for (size_t j = 0; ok && j < n && j < PLAIN_DUMP_NAMES_MAX; j++) {
            const struct plain_secret *p = v->plain->items[j];
            cJSON *it = cJSON_CreateObject();
            ok = it != NULL && cJSON_AddItemToArray(names, it) &&
                 clc_json_add_str(it, "name", p->name) == CLC_OK &&
                 clc_json_add_int(it, "versions", (int64_t)p->n) == CLC_OK;
        }
        pthread_mutex_unlock(&v->mu);
        if (!ok) {
            cJSON_Delete(all);
            all = NULL;
        }
    }
    return all;
}

enum clc_err kv_plain_mount(struct kv_service *s, struct clc_errinfo *ei)
{
    enum clc_err rc = emu_control_register(s->e, "keyvault-secrets", reset_plain, dump_plain, s);

    if (rc != CLC_OK)
        return clc_errf(ei, rc, "keyvault: cannot register the plain secrets' control hooks");
    return CLC_OK;
}
