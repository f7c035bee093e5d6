/* Certificate routes that read or change stored certificates: get (latest
 * or a version), list with paging, versions, update of attributes, tags and
 * policy, soft delete, and the deleted-certificate list, get, recover and
 * purge. JSON is built under the vault lock and sent after it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "emulator/keyvault.h"
#include "emulator/state.h"

#define URL_MAX (KV_BASE_MAX + KV_NAME_MAX + 64)

/* ---- JSON shapes ---- */

static int add_attrs(cJSON *o, int enabled, int64_t nbf, int64_t exp, int64_t created,
                     int64_t updated, int with_times)
{
    cJSON *a = cJSON_AddObjectToObject(o, "attributes");

    return a != NULL && clc_json_add_bool(a, "enabled", enabled) == CLC_OK &&
           (!with_times || (clc_json_add_int(a, "nbf", nbf) == CLC_OK &&
                            clc_json_add_int(a, "exp", exp) == CLC_OK)) &&
           clc_json_add_int(a, "created", created) == CLC_OK &&
           clc_json_add_int(a, "updated", updated) == CLC_OK &&
           clc_json_add_int(a, "recoverableDays", KV_RECOVERABLE_DAYS) == CLC_OK &&
           clc_json_add_str(a, "recoveryLevel", KV_RECOVERY_LEVEL) == CLC_OK;
}

static int add_tags(cJSON *o, const cJSON *tags)
{
    cJSON *d = tags ? cJSON_Duplicate(tags, 1) : cJSON_CreateObject();
    return d != NULL && cJSON_AddItemToObject(o, "tags", d);
}

static int add_url(cJSON *o, const char *k, const struct kv_vault *v, const char *coll,
                   const char *name, const char *version)
{
    char u[URL_MAX];

    snprintf(u, sizeof u, "%s/%s/%s%s%s", v->base, coll, name, version ? "/" : "",
             version ? version : "");
    return clc_json_add_str(o, k, u) == CLC_OK;
}

cJSON *kv_bundle_json(const struct kv_vault *v, const struct kv_cert *c,
                      const struct kv_version *ver, int with_policy)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;

    if (ver != NULL) {
        ok = ok && add_url(o, "id", v, "certificates", c->name, ver->id) &&
             add_url(o, "kid", v, "keys", c->name, ver->id) &&
             add_url(o, "sid", v, "secrets", c->name, ver->id) &&
             clc_json_add_str(o, "x5t", ver->x5t) == CLC_OK &&
             clc_json_add_str(o, "cer", ver->cer) == CLC_OK &&
             clc_json_add_str(o, "contentType", ver->content_type) == CLC_OK &&
             add_attrs(o, ver->enabled, ver->nbf, ver->exp, ver->created, ver->updated, 1) &&
             add_tags(o, ver->tags);
    } else if (c->pending != NULL) {
        /* Created, not yet merged: the version exists, disabled, without a
         * certificate or secret (clients poll this while pending). */
        const struct kv_pending *p = c->pending;
        ok = ok && add_url(o, "id", v, "certificates", c->name, p->version) &&
             add_url(o, "kid", v, "keys", c->name, p->version) &&
             clc_json_add_str(o, "contentType", kv_policy_content_type(c->policy)) == CLC_OK &&
             add_attrs(o, 0, 0, 0, p->created, p->created, 0) && add_tags(o, p->tags);
    } else {
        ok = 0;
    }
    if (ok && with_policy) {
        cJSON *pol = kv_policy_json(v, c);
        ok = pol != NULL && cJSON_AddItemToObject(o, "policy", pol);
        if (!ok)
            cJSON_Delete(pol);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* List item: versionless id (or versioned for version lists). */
static cJSON *item_json(const struct kv_vault *v, const struct kv_cert *c,
                        const struct kv_version *ver, int versioned)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;

    if (ver != NULL)
        ok = ok && add_url(o, "id", v, "certificates", c->name, versioned ? ver->id : NULL) &&
             clc_json_add_str(o, "x5t", ver->x5t) == CLC_OK &&
             add_attrs(o, ver->enabled, ver->nbf, ver->exp, ver->created, ver->updated, 1) &&
             add_tags(o, ver->tags);
    else if (c->pending != NULL)
        ok = ok && add_url(o, "id", v, "certificates", c->name, NULL) &&
             add_attrs(o, 0, 0, 0, c->pending->created, c->pending->created, 0) &&
             add_tags(o, c->pending->tags);
    else
        ok = 0;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *kv_deleted_json(const struct kv_vault *v, const struct kv_cert *c, int item)
{
    const struct kv_version *ver = kv_cert_latest(c);
    cJSON *o = item ? item_json(v, c, ver, 0) : kv_bundle_json(v, c, ver, 1);

    if (o != NULL && (!add_url(o, "recoveryId", v, "deletedcertificates", c->name, NULL) ||
                      clc_json_add_int(o, "deletedDate", c->deleted_date) != CLC_OK ||
                      clc_json_add_int(o, "scheduledPurgeDate", c->purge_date) != CLC_OK)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* ---- paging ---- */

int kv_page_args(struct kv_ctx *k, int *max, char *skip, size_t skiplen)
{
    char q[32];
    char *end = NULL;
    long n;

    *max = KV_PAGE_MAX;
    if (emu_req_query(k->r, "maxresults", q, sizeof q)) {
        n = strtol(q, &end, 10);
        if (end == q || *end != '\0' || n < 1 || n > KV_PAGE_MAX) {
            kv_bad(k->r, "The value of 'maxresults' must be an integer between 1 and %d.",
                   KV_PAGE_MAX);
            return 0;
        }
        *max = (int)n;
    }
    /* Absent, or too long for any token we hand out. */
    if (!emu_req_query(k->r, "$skiptoken", skip, skiplen) && k->r->query != NULL &&
        strstr(k->r->query, "skiptoken") != NULL) {
        kv_bad(k->r, "The value of '$skiptoken' is invalid.");
        return 0;
    }
    return 1;
}

cJSON *kv_page_json(struct kv_ctx *k, const char *path, cJSON *items, const char *next_token,
                    int max, const char *extra_query)
{
    cJSON *o = cJSON_CreateObject();
    char u[URL_MAX + 160];

    if (o == NULL || !cJSON_AddItemToObject(o, "value", items)) {
        cJSON_Delete(items);
        cJSON_Delete(o);
        return NULL;
    }
    if (next_token != NULL) {
        snprintf(u, sizeof u, "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d%s", k->v->base, path,
                 k->api_version, next_token, max, extra_query ? extra_query : "");
        if (clc_json_add_str(o, "nextLink", u) != CLC_OK) {
            cJSON_Delete(o);
            return NULL;
        }
    } else if (!cJSON_AddItemToObject(o, "nextLink", cJSON_CreateNull())) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A skip token is the lower-case name of the last item sent: valid names only. */
static int token_ok(const char *t)
{
    for (; *t; t++)
        if (!((*t >= 'a' && *t <= 'z') || (*t >= '0' && *t <= '9') || *t == '-'))
            return 0;
    return 1;
}

static cJSON *list_table(struct kv_ctx *k, const struct kv_table *t, int include_pending,
                         int deleted, const char *path, const char *extra)
{
    char skip[KV_NAME_MAX + 2];
    char last[KV_NAME_MAX + 1] = "";
    int max, more = 0;
    size_t i = 0, n = 0;
    long at;
    cJSON *items = NULL;

    if (!kv_page_args(k, &max, skip, sizeof skip))
        return NULL;
    if (!token_ok(skip)) {
        kv_bad(k->r, "The value of '$skiptoken' is invalid.");
        return NULL;
    }
    items = cJSON_CreateArray();
    if (items == NULL) {
        kv_reply(k->r, 500, NULL);
        return NULL;
    }
    pthread_mutex_lock(&k->v->mu);
    if (skip[0] != '\0') {
        at = kv_table_find(t, skip);
        i = at >= 0 ? (size_t)at + 1 : (size_t)(-at - 1);
    }
    for (; i < t->n; i++) {
        const struct kv_cert *c = t->items[i];
        cJSON *it;
        if (!deleted && !include_pending && c->nvers == 0)
            continue;
        if (n == (size_t)max) {
            more = 1;
            break;
        }
        it = deleted ? kv_deleted_json(k->v, c, 1) : item_json(k->v, c, kv_cert_latest(c), 0);
        if (it == NULL || !cJSON_AddItemToArray(items, it)) {
            cJSON_Delete(it);
            cJSON_Delete(items);
            items = NULL;
            break;
        }
        memcpy(last, c->lname, strlen(c->lname) + 1);
        n++;
    }
    pthread_mutex_unlock(&k->v->mu);
    if (items == NULL) {
        kv_reply(k->r, 500, NULL);
        return NULL;
    }
    return kv_page_json(k, path, items, more ? last : NULL, max, extra);
}

void kv_h_list(struct kv_ctx *k)
{
    char q[16];
    int inc = emu_req_query(k->r, "includePending", q, sizeof q) && strcmp(q, "true") == 0;
    cJSON *doc =
        list_table(k, &k->v->live, inc, 0, "/certificates", inc ? "&includePending=true" : NULL);

    if (doc != NULL || k->r->status == 0)
        kv_reply(k->r, 200, doc);
}

void kv_h_deleted_list(struct kv_ctx *k)
{
    cJSON *doc = list_table(k, &k->v->deleted, 0, 1, "/deletedcertificates", NULL);

    if (doc != NULL || k->r->status == 0)
        kv_reply(k->r, 200, doc);
}

void kv_h_versions(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    char skip[24], path[KV_NAME_MAX + 32], tok[24];
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *items = NULL;
    size_t start = 0;
    int max, more = 0;

    if (!kv_name_ok(k->r, name, "certificate") || !kv_page_args(k, &max, skip, sizeof skip))
        return;
    if (skip[0] != '\0') {
        char *end = NULL;
        long long v = strtoll(skip, &end, 10);
        if (end == skip || *end != '\0' || v < 0) {
            kv_bad(k->r, "The value of '$skiptoken' is invalid.");
            return;
        }
        start = (size_t)v;
    }
    items = cJSON_CreateArray();
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL || (c->nvers == 0 && c->pending == NULL)) {
        kv_fault_nf(&f, name, NULL);
    } else {
        size_t i;
        for (i = start; items != NULL && i < c->nvers && i < start + (size_t)max; i++) {
            cJSON *it = item_json(k->v, c, c->vers[i], 1);
            if (it == NULL || !cJSON_AddItemToArray(items, it)) {
                cJSON_Delete(it);
                cJSON_Delete(items);
                items = NULL;
            }
        }
        more = i < c->nvers;
        snprintf(tok, sizeof tok, "%zu", i);
        snprintf(path, sizeof path, "/certificates/%s/versions", c->name);
    }
    pthread_mutex_unlock(&k->v->mu);
    if (f.status) {
        cJSON_Delete(items);
        kv_fault_send(k->r, &f);
        return;
    }
    kv_reply(k->r, 200, items ? kv_page_json(k, path, items, more ? tok : NULL, max, NULL) : NULL);
}

/* ---- get and update ---- */

void kv_h_get(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    const char *version = emu_req_param(k->r, "version");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL) {
        kv_fault_nf(&f, name, version);
    } else if (version == NULL) {
        if (c->nvers == 0 && c->pending == NULL)
            kv_fault_nf(&f, name, NULL);
        else
            doc = kv_bundle_json(k->v, c, kv_cert_latest(c), 1);
    } else {
        const struct kv_version *ver = kv_cert_version(c, version);
        if (ver != NULL)
            doc = kv_bundle_json(k->v, c, ver, 0);
        else if (c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS &&
                 strcmp(c->pending->version, version) == 0)
            doc = kv_bundle_json(k->v, c, NULL, 0);
        else
            kv_fault_nf(&f, name, version);
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

void kv_h_update(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    const char *version = emu_req_param(k->r, "version");
    const cJSON *pin;
    struct clc_errinfo ei = {0};
    struct kv_attrs at;
    struct kv_fault f = {0};
    struct kv_cert *c;
    struct kv_version *ver = NULL;
    cJSON *body, *pol = NULL, *tags = NULL, *doc = NULL;
    int64_t now = emu_now(k->r->emu);

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    if (!kv_parse_attrs(k->r, body, &at))
        goto out;
    pin = cJSON_GetObjectItemCaseSensitive(body, "policy");
    if (at.tags != NULL && (tags = cJSON_Duplicate(at.tags, 1)) == NULL) {
        kv_reply(k->r, 500, NULL);
        goto out;
    }
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    ver = c == NULL ? NULL : version ? kv_cert_version(c, version) : kv_cert_latest(c);
    if (ver == NULL) {
        kv_fault_nf(&f, name, version);
    } else if (pin != NULL && !cJSON_IsNull(pin) &&
               kv_policy_parse(pin, c->policy, &pol, &ei) != CLC_OK) {
        kv_fault(&f, 400, "BadParameter", NULL, "Property 'policy' is invalid: %s", ei.msg);
    } else {
        if (at.enabled >= 0)
            ver->enabled = at.enabled;
        if (at.nbf >= 0)
            ver->nbf = at.nbf;
        if (at.exp >= 0)
            ver->exp = at.exp;
        if (tags != NULL) {
            cJSON_Delete(ver->tags);
            ver->tags = tags;
            tags = NULL;
        }
        ver->updated = now;
        if (pol != NULL) {
            cJSON_Delete(c->policy);
            c->policy = pol;
            c->policy_updated = now;
            pol = NULL;
        }
        kv_persist(k->v, c, NULL);
        doc = kv_bundle_json(k->v, c, ver, 1);
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
out:
    cJSON_Delete(tags);
    cJSON_Delete(pol);
    cJSON_Delete(body);
}

/* ---- policy ---- */

void kv_h_policy_get(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL)
        kv_fault_nf(&f, name, NULL);
    else
        doc = kv_policy_json(k->v, c);
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

void kv_h_policy_update(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct clc_errinfo ei = {0};
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *body, *pol = NULL, *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL) {
        kv_fault_nf(&f, name, NULL);
    } else if (kv_policy_parse(body, c->policy, &pol, &ei) != CLC_OK) {
        kv_fault(&f, 400, "BadParameter", NULL, "The policy is invalid: %s", ei.msg);
    } else {
        cJSON_Delete(c->policy);
        c->policy = pol;
        c->policy_updated = emu_now(k->r->emu);
        kv_persist(k->v, c, NULL);
        doc = kv_policy_json(k->v, c);
    }
    pthread_mutex_unlock(&k->v->mu);
    cJSON_Delete(body);
    kv_finish(k->r, &f, 200, doc, NULL);
}

/* ---- soft delete ---- */

void kv_h_delete(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;
    int64_t now = emu_now(k->r->emu);

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_remove(&k->v->live, name);
    if (c == NULL) {
        kv_fault_nf(&f, name, NULL);
    } else {
        c->deleted_date = now;
        c->purge_date = now + (int64_t)KV_RECOVERABLE_DAYS * 86400;
        if (kv_table_insert(&k->v->deleted, c) != CLC_OK) {
            /* Only memory can fail here: keep the certificate where it was. */
            c->deleted_date = 0;
            kv_table_insert(&k->v->live, c);
            kv_fault(&f, 500, "InternalError", NULL, "out of memory");
        } else {
            kv_persist(k->v, c, NULL);
            doc = kv_deleted_json(k->v, c, 0);
        }
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

static void deleted_nf(struct kv_fault *f, const char *name)
{
    char shown[140];

    kv_sanitize(name, shown, sizeof shown);
    kv_fault(f, 404, "CertificateNotFound", NULL, "Deleted Certificate not found: %s", shown);
}

void kv_h_deleted_get(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->deleted, name);
    if (c == NULL)
        deleted_nf(&f, name);
    else
        doc = kv_deleted_json(k->v, c, 0);
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

void kv_h_deleted_purge(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_remove(&k->v->deleted, name);
    if (c == NULL)
        deleted_nf(&f, name);
    else
        kv_unpersist(k->v, c->lname);
    pthread_mutex_unlock(&k->v->mu);
    kv_cert_free(c);
    kv_finish(k->r, &f, 204, NULL, NULL);
}

void kv_h_deleted_recover(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_remove(&k->v->deleted, name);
    if (c == NULL) {
        deleted_nf(&f, name);
    } else if (kv_table_insert(&k->v->live, c) != CLC_OK) {
        kv_table_insert(&k->v->deleted, c);
        kv_fault(&f, 409, "Conflict", NULL, "Certificate %s cannot be recovered now.", c->name);
    } else {
        c->deleted_date = 0;
        c->purge_date = 0;
        kv_persist(k->v, c, NULL);
        doc = kv_bundle_json(k->v, c, kv_cert_latest(c), 1);
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}
