/* The Key Vault data model: certificates in name-sorted tables (binary
 * search, paging by name), their versions and pending operation; and
 * persistence as one JSON document per certificate (mode 0600, keys inside
 * as PKCS#8 PEM) under <data dir>/keyvault/<vault>/, so a request rewrites
 * only the certificate it changed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "core/b64.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "crypto/x509.h"
#include "emulator/keyvault.h"

#define DOC_MAX ((size_t)256 * 1024 * 1024)

/* ---- objects ---- */

void kv_new_id(char out[KV_VERSION_LEN + 1])
{
    clc_rand_hex(out, KV_VERSION_LEN / 2);
}

struct kv_cert *kv_cert_new(const char *name)
{
    struct kv_cert *c = calloc(1, sizeof *c);
    size_t n = strlen(name);

    if (c == NULL || n > KV_NAME_MAX) {
        free(c);
        return NULL;
    }
    memcpy(c->name, name, n + 1);
    for (size_t i = 0; i <= n; i++)
        c->lname[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] - 'A' + 'a' : name[i]);
    return c;
}

void kv_version_free(struct kv_version *v)
{
    if (v == NULL)
        return;
    X509_free(v->cert);
    sk_X509_pop_free(v->chain, X509_free);
    EVP_PKEY_free(v->key);
    free(v->cer);
    cJSON_Delete(v->tags);
    free(v);
}

void kv_pending_free(struct kv_pending *p)
{
    if (p == NULL)
        return;
    EVP_PKEY_free(p->key);
    free(p->csr);
    cJSON_Delete(p->tags);
    free(p);
}

void kv_cert_free(struct kv_cert *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nvers; i++)
        kv_version_free(c->vers[i]);
    free(c->vers);
    kv_pending_free(c->pending);
    cJSON_Delete(c->policy);
    free(c);
}

struct kv_version *kv_cert_latest(const struct kv_cert *c)
{
    return c->nvers > 0 ? c->vers[c->nvers - 1] : NULL;
}

struct kv_version *kv_cert_version(const struct kv_cert *c, const char *id)
{
    /* Version ids are lower-case hex; clients may send them in any case. */
    for (size_t i = c->nvers; i > 0; i--)
        if (strcasecmp(c->vers[i - 1]->id, id) == 0)
            return c->vers[i - 1];
    return NULL;
}

enum clc_err kv_cert_add_version(struct kv_cert *c, struct kv_version *v)
{
    if (c->nvers == c->capvers) {
        size_t cap = c->capvers ? c->capvers * 2 : 4;
        struct kv_version **nv = realloc(c->vers, cap * sizeof nv[0]);
        if (nv == NULL)
            return CLC_ERR_NOMEM;
        c->vers = nv;
        c->capvers = cap;
    }
    c->vers[c->nvers++] = v;
    return CLC_OK;
}

enum clc_err kv_version_make(X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                             struct kv_version **out, struct clc_errinfo *ei)
{
    struct kv_version *v = calloc(1, sizeof *v);
    unsigned char *der = NULL;
    char *x5t = NULL;
    int len;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (v == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    len = i2d_X509(cert, &der);
    if (len <= 0 || clc_b64_encode(der, (size_t)len, &v->cer, NULL) != CLC_OK ||
        clc_x509_x5t(cert, &x5t) != CLC_OK || strlen(x5t) >= sizeof v->x5t ||
        kv_cert_times(cert, &v->nbf, &v->exp) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "cannot encode the certificate");
        goto out;
    }
    memcpy(v->x5t, x5t, strlen(x5t) + 1);
    v->tags = cJSON_CreateObject();
    if (v->tags == NULL || !X509_up_ref(cert) || (key != NULL && !EVP_PKEY_up_ref(key))) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    v->cert = cert;
    v->key = key;
    if (chain != NULL) {
        v->chain = X509_chain_up_ref(chain);
        if (v->chain == NULL) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    v->enabled = 1;
    v->exportable = 1;
    snprintf(v->content_type, sizeof v->content_type, "%s", KV_CT_PKCS12);
    *out = v;
    v = NULL;
out:
    OPENSSL_free(der);
    free(x5t);
    kv_version_free(v);
    return rc;
}

/* ---- tables ---- */

long kv_table_find(const struct kv_table *t, const char *name)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcasecmp(t->items[mid]->lname, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

struct kv_cert *kv_table_get(const struct kv_table *t, const char *name)
{
    long i = kv_table_find(t, name);
    return i >= 0 ? t->items[i] : NULL;
}

enum clc_err kv_table_insert(struct kv_table *t, struct kv_cert *c)
{
    long i = kv_table_find(t, c->lname);
    size_t at;

    if (i >= 0)
        return CLC_ERR_CONFLICT;
    at = (size_t)(-i - 1);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct kv_cert **ni = realloc(t->items, cap * sizeof ni[0]);
        if (ni == NULL)
            return CLC_ERR_NOMEM;
        t->items = ni;
        t->cap = cap;
    }
    memmove(&t->items[at + 1], &t->items[at], (t->n - at) * sizeof t->items[0]);
    t->items[at] = c;
    t->n++;
    return CLC_OK;
}

struct kv_cert *kv_table_remove(struct kv_table *t, const char *name)
{
    long i = kv_table_find(t, name);
    struct kv_cert *c;

    if (i < 0)
        return NULL;
    c = t->items[i];
    memmove(&t->items[i], &t->items[i + 1], (t->n - (size_t)i - 1) * sizeof t->items[0]);
    t->n--;
    return c;
}

void kv_table_clear(struct kv_table *t)
{
    for (size_t i = 0; i < t->n; i++)
        kv_cert_free(t->items[i]);
    t->n = 0;
}

/* ---- persistence: to JSON ---- */

static enum clc_err add_b64_der(cJSON *arr, X509 *x)
{
    unsigned char *der = NULL;
    char *b64 = NULL;
    int len = i2d_X509(x, &der);
    enum clc_err rc = CLC_ERR_NOMEM;

    if (len > 0 && clc_b64_encode(der, (size_t)len, &b64, NULL) == CLC_OK &&
        cJSON_AddItemToArray(arr, cJSON_CreateString(b64)))
        rc = CLC_OK;
    OPENSSL_free(der);
    free(b64);
    return rc;
}

static enum clc_err add_key(cJSON *o, EVP_PKEY *key)
{
    char *pem = NULL;
    enum clc_err rc;

    if (key == NULL)
        return CLC_OK;
    rc = kv_key_to_pem(key, &pem);
    if (rc == CLC_OK)
        rc = clc_json_add_str(o, "key", pem);
    if (pem != NULL) {
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
    }
    return rc;
}

static int add_dup(cJSON *o, const char *k, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);
    return d != NULL && cJSON_AddItemToObject(o, k, d);
}

static cJSON *version_doc(const struct kv_version *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *chain = o ? cJSON_AddArrayToObject(o, "chain") : NULL;
    int ok = chain != NULL;

    ok = ok && clc_json_add_str(o, "id", v->id) == CLC_OK &&
         clc_json_add_str(o, "cer", v->cer) == CLC_OK && add_key(o, v->key) == CLC_OK &&
         clc_json_add_bool(o, "enabled", v->enabled) == CLC_OK &&
         clc_json_add_int(o, "nbf", v->nbf) == CLC_OK &&
         clc_json_add_int(o, "exp", v->exp) == CLC_OK &&
         clc_json_add_int(o, "created", v->created) == CLC_OK &&
         clc_json_add_int(o, "updated", v->updated) == CLC_OK && add_dup(o, "tags", v->tags) &&
         clc_json_add_str(o, "content_type", v->content_type) == CLC_OK &&
         clc_json_add_bool(o, "exportable", v->exportable) == CLC_OK &&
         clc_json_add_int(o, "events", v->events) == CLC_OK;
    for (int i = 0; ok && v->chain != NULL && i < sk_X509_num(v->chain); i++)
        ok = add_b64_der(chain, sk_X509_value(v->chain, i)) == CLC_OK;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *pending_doc(const struct kv_pending *p)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL && clc_json_add_str(o, "version", p->version) == CLC_OK &&
             clc_json_add_str(o, "request_id", p->request_id) == CLC_OK &&
             clc_json_add_str(o, "issuer", p->issuer) == CLC_OK &&
             clc_json_add_int(o, "status", p->status) == CLC_OK &&
             clc_json_add_bool(o, "cancellation_requested", p->cancellation_requested) == CLC_OK &&
             add_key(o, p->key) == CLC_OK && clc_json_add_str(o, "csr", p->csr) == CLC_OK &&
             add_dup(o, "tags", p->tags) && clc_json_add_bool(o, "enabled", p->enabled) == CLC_OK &&
             clc_json_add_int(o, "created", p->created) == CLC_OK;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *cert_doc(const struct kv_cert *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *vers = o ? cJSON_AddArrayToObject(o, "versions") : NULL;
    int ok = vers != NULL && clc_json_add_str(o, "name", c->name) == CLC_OK &&
             add_dup(o, "policy", c->policy) &&
             clc_json_add_int(o, "policy_created", c->policy_created) == CLC_OK &&
             clc_json_add_int(o, "policy_updated", c->policy_updated) == CLC_OK;

    if (ok && c->deleted_date != 0)
        ok = clc_json_add_int(o, "deleted_date", c->deleted_date) == CLC_OK &&
             clc_json_add_int(o, "purge_date", c->purge_date) == CLC_OK;
    for (size_t i = 0; ok && i < c->nvers; i++) {
        cJSON *vd = version_doc(c->vers[i]);
        ok = vd != NULL && cJSON_AddItemToArray(vers, vd);
        if (!ok)
            cJSON_Delete(vd);
    }
    if (ok && c->pending != NULL) {
        cJSON *pd = pending_doc(c->pending);
        ok = pd != NULL && cJSON_AddItemToObject(o, "pending", pd);
        if (!ok)
            cJSON_Delete(pd);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* Temporary file (0600, O_EXCL) then rename: a reader or a restart sees the
 * old document or the new one. No fsync: the emulator's state survives
 * restarts of the process, not power loss, and a renewal benchmark with a
 * data dir would otherwise measure the disk. */
static enum clc_err write_doc(const char *path, const char *text, size_t len,
                              struct clc_errinfo *ei)
{
    char tmp[4200], rnd[17];
    int fd;
    size_t off = 0;

    clc_rand_hex(rnd, 8);
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%s", path, rnd) >= sizeof tmp)
        return clc_errf(ei, CLC_ERR_LIMIT, "%s: path too long", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", tmp, strerror(errno));
    while (off < len) {
        ssize_t n = write(fd, text + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int err = errno;
            close(fd);
            unlink(tmp);
            return clc_errf(ei, CLC_ERR_IO, "%s: %s", tmp, strerror(err));
        }
        off += (size_t)n;
    }
    if (close(fd) != 0 || rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", path, strerror(err));
    }
    return CLC_OK;
}

static char *doc_path(const struct kv_vault *v, const char *lname)
{
    size_t n = strlen(v->dir) + strlen(lname) + 8;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s.json", v->dir, lname);
    return p;
}

enum clc_err kv_persist(struct kv_vault *v, const struct kv_cert *c, struct clc_errinfo *ei)
{
    cJSON *doc;
    char *text = NULL, *path = NULL;
    enum clc_err rc;

    if (v->dir == NULL)
        return CLC_OK;
    doc = cert_doc(c);
    text = doc ? clc_json_print(doc) : NULL;
    path = doc_path(v, c->lname);
    if (text == NULL || path == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "saving certificate %s: out of memory", c->name);
    } else {
        rc = write_doc(path, text, strlen(text), ei);
    }
    if (rc != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.keyvault.save_failed", CLC_LS("vault", v->name),
                CLC_LS("certificate", c->name), CLC_LS("reason", ei ? ei->msg : ""));
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    free(path);
    cJSON_Delete(doc);
    return rc;
}

void kv_unpersist(struct kv_vault *v, const char *lname)
{
    char *path;

    if (v->dir == NULL)
        return;
    path = doc_path(v, lname);
    if (path != NULL && unlink(path) != 0 && errno != ENOENT)
        clc_log(CLC_LOG_ERROR, "emu.keyvault.unlink_failed", CLC_LS("path", path),
                CLC_LS("reason", strerror(errno)));
    free(path);
}

/* ---- persistence: from JSON ---- */

static enum clc_err load_key(const cJSON *o, EVP_PKEY **key)
{
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");

    *key = NULL;
    if (k == NULL)
        return CLC_OK;
    if (!cJSON_IsString(k))
        return CLC_ERR_PARSE;
    return kv_key_from_pem(k->valuestring, key);
}

static enum clc_err load_version(const cJSON *o, struct kv_version **out)
{
    const char *id = NULL, *cer = NULL, *ct = NULL;
    const cJSON *tags = NULL, *chain = NULL, *it;
    X509 *x = NULL;
    EVP_PKEY *key = NULL;
    STACK_OF(X509) *sk = NULL;
    struct kv_version *v = NULL;
    int64_t ex = 0;
    enum clc_err rc = CLC_ERR_PARSE;

    *out = NULL;
    if (clc_json_str(o, "id", &id, NULL) != CLC_OK || strlen(id) != KV_VERSION_LEN ||
        clc_json_str(o, "cer", &cer, NULL) != CLC_OK ||
        clc_json_str(o, "content_type", &ct, NULL) != CLC_OK ||
        clc_json_obj(o, "tags", &tags, NULL) != CLC_OK ||
        clc_json_arr(o, "chain", &chain, NULL) != CLC_OK || kv_x509_from_b64(cer, &x) != CLC_OK ||
        load_key(o, &key) != CLC_OK)
        goto out;
    sk = sk_X509_new_null();
    if (sk == NULL)
        goto out;
    cJSON_ArrayForEach(it, chain)
    {
        X509 *c = NULL;
        if (!cJSON_IsString(it) || kv_x509_from_b64(it->valuestring, &c) != CLC_OK)
            goto out;
        if (!sk_X509_push(sk, c)) {
            X509_free(c);
            goto out;
        }
    }
    if (kv_version_make(x, sk, key, &v, NULL) != CLC_OK)
        goto out;
    memcpy(v->id, id, KV_VERSION_LEN + 1);
    cJSON_Delete(v->tags);
    v->tags = cJSON_Duplicate(tags, 1);
    snprintf(v->content_type, sizeof v->content_type, "%s", ct);
    if (v->tags == NULL || clc_json_bool(o, "enabled", &v->enabled, NULL) != CLC_OK ||
        clc_json_int(o, "nbf", &v->nbf, NULL) != CLC_OK ||
        clc_json_int(o, "exp", &v->exp, NULL) != CLC_OK ||
        clc_json_int(o, "created", &v->created, NULL) != CLC_OK ||
        clc_json_int(o, "updated", &v->updated, NULL) != CLC_OK ||
        clc_json_bool(o, "exportable", &v->exportable, NULL) != CLC_OK ||
        clc_json_int(o, "events", &ex, NULL) != CLC_OK)
        goto out;
    v->events = (unsigned)ex;
    *out = v;
    v = NULL;
    rc = CLC_OK;
out:
    kv_version_free(v);
    X509_free(x);
    EVP_PKEY_free(key);
    sk_X509_pop_free(sk, X509_free);
    return rc;
}

static enum clc_err load_pending(const cJSON *o, struct kv_pending **out)
{
    struct kv_pending *p = calloc(1, sizeof *p);
    const char *ver = NULL, *rid = NULL, *iss = NULL, *csr = NULL;
    const cJSON *tags = NULL;
    int64_t st = 0;
    enum clc_err rc = CLC_ERR_PARSE;

    *out = NULL;
    if (p == NULL)
        return CLC_ERR_NOMEM;
    if (clc_json_str(o, "version", &ver, NULL) != CLC_OK || strlen(ver) != KV_VERSION_LEN ||
        clc_json_str(o, "request_id", &rid, NULL) != CLC_OK || strlen(rid) > KV_VERSION_LEN ||
        clc_json_str(o, "issuer", &iss, NULL) != CLC_OK || strlen(iss) >= sizeof p->issuer ||
        clc_json_str(o, "csr", &csr, NULL) != CLC_OK ||
        clc_json_obj(o, "tags", &tags, NULL) != CLC_OK ||
        clc_json_int(o, "status", &st, NULL) != CLC_OK || st < 0 || st > KV_OP_CANCELLED ||
        clc_json_bool(o, "cancellation_requested", &p->cancellation_requested, NULL) != CLC_OK ||
        clc_json_bool(o, "enabled", &p->enabled, NULL) != CLC_OK ||
        clc_json_int(o, "created", &p->created, NULL) != CLC_OK || load_key(o, &p->key) != CLC_OK)
        goto out;
    memcpy(p->version, ver, KV_VERSION_LEN + 1);
    memcpy(p->request_id, rid, strlen(rid) + 1);
    memcpy(p->issuer, iss, strlen(iss) + 1);
    p->status = (enum kv_op_status)st;
    p->csr = strdup(csr);
    p->tags = cJSON_Duplicate(tags, 1);
    if (p->csr == NULL || p->tags == NULL || (p->status == KV_OP_IN_PROGRESS && p->key == NULL))
        goto out;
    *out = p;
    p = NULL;
    rc = CLC_OK;
out:
    kv_pending_free(p);
    return rc;
}

static enum clc_err load_cert(const cJSON *doc, struct kv_cert **out)
{
    const char *name = NULL;
    const cJSON *vers = NULL, *pol = NULL, *pend, *it;
    struct kv_cert *c = NULL;
    enum clc_err rc = CLC_ERR_PARSE;

    *out = NULL;
    if (clc_json_str(doc, "name", &name, NULL) != CLC_OK || strlen(name) == 0 ||
        strlen(name) > KV_NAME_MAX || clc_json_obj(doc, "policy", &pol, NULL) != CLC_OK ||
        clc_json_arr(doc, "versions", &vers, NULL) != CLC_OK)
        return CLC_ERR_PARSE;
    c = kv_cert_new(name);
    if (c == NULL)
        return CLC_ERR_NOMEM;
    c->policy = cJSON_Duplicate(pol, 1);
    if (c->policy == NULL ||
        clc_json_int(doc, "policy_created", &c->policy_created, NULL) != CLC_OK ||
        clc_json_int(doc, "policy_updated", &c->policy_updated, NULL) != CLC_OK ||
        clc_json_int_opt(doc, "deleted_date", 0, &c->deleted_date, NULL) != CLC_OK ||
        clc_json_int_opt(doc, "purge_date", 0, &c->purge_date, NULL) != CLC_OK)
        goto out;
    cJSON_ArrayForEach(it, vers)
    {
        struct kv_version *v = NULL;
        if (load_version(it, &v) != CLC_OK)
            goto out;
        if (kv_cert_add_version(c, v) != CLC_OK) {
            kv_version_free(v);
            goto out;
        }
    }
    pend = cJSON_GetObjectItemCaseSensitive(doc, "pending");
    if (pend != NULL && load_pending(pend, &c->pending) != CLC_OK)
        goto out;
    *out = c;
    c = NULL;
    rc = CLC_OK;
out:
    kv_cert_free(c);
    return rc;
}

enum clc_err kv_load(struct kv_vault *v, struct clc_errinfo *ei)
{
    DIR *d;
    struct dirent *de;
    enum clc_err rc;

    if (v->dir == NULL)
        return CLC_OK;
    rc = clc_file_mkdirs(v->dir, 0700, ei);
    if (rc != CLC_OK)
        return rc;
    d = opendir(v->dir);
    if (d == NULL)
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", v->dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char *path, *text = NULL;
        size_t len = 0;
        cJSON *doc = NULL;
        struct kv_cert *c = NULL;

        if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        path = malloc(strlen(v->dir) + n + 2);
        if (path == NULL) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            break;
        }
        sprintf(path, "%s/%s", v->dir, de->d_name);
        rc = clc_file_read(path, DOC_MAX, &text, &len, ei);
        if (rc == CLC_OK)
            rc = clc_json_parse(text, len, DOC_MAX, &doc, ei);
        if (rc == CLC_OK && load_cert(doc, &c) != CLC_OK)
            rc = clc_errf(ei, CLC_ERR_PARSE, "%s: not a certificate document", path);
        if (rc == CLC_OK && kv_table_insert(c->deleted_date ? &v->deleted : &v->live, c) != CLC_OK)
            rc = clc_errf(ei, CLC_ERR_PARSE, "%s: certificate %s appears twice", path, c->name);
        else if (rc == CLC_OK)
            c = NULL;
        kv_cert_free(c);
        cJSON_Delete(doc);
        if (text != NULL) {
            OPENSSL_cleanse(text, len);
            free(text);
        }
        free(path);
        if (rc != CLC_OK)
            break;
    }
    closedir(d);
    return rc;
}
