/* Key Vault JSON shapes <-> structs: attributes, tags, certificate bundles
 * and list items, pending operations; and the cleanup of each. Policies are
 * in keyvault_policy.c. Every reader names the member it could not take. */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/b64.h"
#include "core/json.h"

#define TAG_NAME_MAX 512
#define TAG_VALUE_MAX 256

void clc_kv_attributes_init(struct clc_kv_attributes *a)
{
    memset(a, 0, sizeof *a);
    a->enabled = -1;
}

enum clc_err clc_kvi_dup_opt(const cJSON *j, const char *key, char **out, struct clc_errinfo *ei)
{
    const char *s = NULL;
    enum clc_err rc = clc_json_str_opt(j, key, NULL, &s, ei);
    *out = NULL;
    if (rc != CLC_OK || !s)
        return rc;
    if (!(*out = strdup(s)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

enum clc_err clc_kvi_attributes_from_json(const cJSON *j, struct clc_kv_attributes *a,
                                          struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *level = NULL;
    int64_t enabled = 0;

    clc_kv_attributes_init(a);
    if (!j || cJSON_IsNull(j))
        return CLC_OK;
    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "field 'attributes': expected object, got %s",
                        clc_json_type_name(j));
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(j, "enabled");
    if (en && !cJSON_IsNull(en)) {
        if (!cJSON_IsBool(en))
            return clc_errf(ei, CLC_ERR_PARSE, "field 'attributes.enabled': expected boolean");
        enabled = cJSON_IsTrue(en);
        a->enabled = (int)enabled;
    }
    if ((rc = clc_json_int_opt(j, "nbf", 0, &a->nbf, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "exp", 0, &a->exp, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "created", 0, &a->created, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "updated", 0, &a->updated, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "recoverableDays", 0, &a->recoverable_days, ei)) != CLC_OK ||
        (rc = clc_json_str_opt(j, "recoveryLevel", "", &level, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "attributes");
    snprintf(a->recovery_level, sizeof a->recovery_level, "%s", level);
    return CLC_OK;
}

enum clc_err clc_kvi_attributes_to_json(const struct clc_kv_attributes *a, cJSON *obj,
                                        const char *key)
{
    if (!a || (a->enabled < 0 && !a->nbf && !a->exp))
        return CLC_OK;
    cJSON *o = cJSON_AddObjectToObject(obj, key);
    if (!o)
        return CLC_ERR_NOMEM;
    if (a->enabled >= 0 && clc_json_add_bool(o, "enabled", a->enabled) != CLC_OK)
        return CLC_ERR_NOMEM;
    if (a->nbf && clc_json_add_int(o, "nbf", a->nbf) != CLC_OK)
        return CLC_ERR_NOMEM;
    if (a->exp && clc_json_add_int(o, "exp", a->exp) != CLC_OK)
        return CLC_ERR_NOMEM;
    return CLC_OK;
}

void clc_kv_tags_cleanup(struct clc_kv_tags *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].name);
        free(t->v[i].value);
    }
    free(t->v);
    t->v = NULL;
    t->n = 0;
}

const char *clc_kv_tags_get(const struct clc_kv_tags *t, const char *name)
{
    for (size_t i = 0; t && i < t->n; i++)
        if (strcmp(t->v[i].name, name) == 0)
            return t->v[i].value;
    return NULL;
}

enum clc_err clc_kv_tags_set(struct clc_kv_tags *t, const char *name, const char *value,
                             struct clc_errinfo *ei)
{
    if (!name || !*name || strlen(name) > TAG_NAME_MAX || !value || strlen(value) > TAG_VALUE_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "tag '%.40s': names are 1-%d bytes, values at most %d",
                        name ? name : "", TAG_NAME_MAX, TAG_VALUE_MAX);
    char *v = strdup(value);
    if (!v)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->v[i].name, name) == 0) {
            free(t->v[i].value);
            t->v[i].value = v;
            return CLC_OK;
        }
    }
    if (t->n >= CLC_KV_TAGS_MAX) {
        free(v);
        return clc_errf(ei, CLC_ERR_LIMIT, "more than %d tags", CLC_KV_TAGS_MAX);
    }
    struct clc_kv_tag *nv = realloc(t->v, (t->n + 1) * sizeof *nv);
    char *n = strdup(name);
    if (!nv || !n) {
        if (nv)
            t->v = nv;
        free(n);
        free(v);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    t->v = nv;
    nv[t->n].name = n;
    nv[t->n].value = v;
    t->n++;
    return CLC_OK;
}

enum clc_err clc_kvi_tags_from_json(const cJSON *j, struct clc_kv_tags *t, struct clc_errinfo *ei)
{
    memset(t, 0, sizeof *t);
    if (!j || cJSON_IsNull(j))
        return CLC_OK;
    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "field 'tags': expected object, got %s",
                        clc_json_type_name(j));
    for (const cJSON *m = j->child; m; m = m->next) {
        if (!cJSON_IsString(m))
            return clc_errf(ei, CLC_ERR_PARSE, "field 'tags.%.40s': expected string, got %s",
                            m->string ? m->string : "", clc_json_type_name(m));
        enum clc_err rc = clc_kv_tags_set(t, m->string ? m->string : "", m->valuestring, ei);
        if (rc != CLC_OK)
            return clc_err_wrap(ei, rc == CLC_ERR_NOMEM ? rc : CLC_ERR_PARSE, "field 'tags'");
    }
    return CLC_OK;
}

enum clc_err clc_kvi_tags_to_json(const struct clc_kv_tags *t, cJSON *obj)
{
    if (!t)
        return CLC_OK;
    cJSON *o = cJSON_AddObjectToObject(obj, "tags");
    if (!o)
        return CLC_ERR_NOMEM;
    for (size_t i = 0; i < t->n; i++)
        if (clc_json_add_str(o, t->v[i].name, t->v[i].value) != CLC_OK)
            return CLC_ERR_NOMEM;
    return CLC_OK;
}

enum clc_err clc_kvi_split_id(const char *id, char **name, char **version, struct clc_errinfo *ei)
{
    const char *p = strstr(id, "://");
    *name = *version = NULL;
    if (!p || !(p = strchr(p + 3, '/')))
        goto bad;
    /* p = "/{collection}/{name}[/{version}]" */
    const char *n = strchr(p + 1, '/');
    if (!n || !n[1])
        goto bad;
    n++;
    size_t nl = strcspn(n, "/?");
    const char *v = n[nl] == '/' ? n + nl + 1 : "";
    size_t vl = strcspn(v, "/?");
    if (nl == 0 || nl > CLC_KV_NAME_MAX || vl > 64)
        goto bad;
    *name = strndup(n, nl);
    *version = strndup(v, vl);
    if (!*name || !*version) {
        free(*name);
        free(*version);
        *name = *version = NULL;
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    return CLC_OK;
bad:
    return clc_errf(ei, CLC_ERR_PARSE, "id '%.120s' is not {vault}/{collection}/{name}[/{version}]",
                    id);
}

/* "cer" decoded, and checked against "x5t" when both are present. */
static enum clc_err read_cer(const cJSON *j, struct clc_kv_certificate *c, struct clc_errinfo *ei)
{
    const char *cer = NULL;
    enum clc_err rc = clc_json_str_opt(j, "cer", NULL, &cer, ei);
    if (rc != CLC_OK || !cer)
        return rc;
    if (clc_b64_decode(cer, strlen(cer), &c->cer, &c->cer_len) != CLC_OK || c->cer_len == 0 ||
        c->cer_len > CLC_CERT_DER_MAX)
        return clc_errf(ei, CLC_ERR_PARSE, "field 'cer': not base64 of a certificate");
    if (c->x5t) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        char *x5t = NULL;
        if (EVP_Digest(c->cer, c->cer_len, md, &n, EVP_sha1(), NULL) != 1 ||
            clc_b64url_encode(md, n, &x5t, NULL) != CLC_OK)
            return clc_errf(ei, CLC_ERR_CRYPTO, "field 'cer': SHA-1 failed");
        int same = strcmp(x5t, c->x5t) == 0;
        free(x5t);
        if (!same)
            return clc_errf(ei, CLC_ERR_PARSE, "field 'x5t' is not the SHA-1 of 'cer'");
    }
    return CLC_OK;
}

enum clc_err clc_kvi_certificate_from_json(const cJSON *j, struct clc_kv_certificate *c,
                                           struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *id = NULL;

    memset(c, 0, sizeof *c);
    clc_kv_attributes_init(&c->attributes);
    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "certificate: expected object, got %s",
                        clc_json_type_name(j));
    if ((rc = clc_json_str(j, "id", &id, ei)) != CLC_OK ||
        (rc = clc_kvi_split_id(id, &c->name, &c->version, ei)) != CLC_OK)
        return rc;
    if (!(c->id = strdup(id)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if ((rc = clc_kvi_dup_opt(j, "kid", &c->kid, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "sid", &c->sid, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "x5t", &c->x5t, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "contentType", &c->content_type, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "recoveryId", &c->recovery_id, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "deletedDate", 0, &c->deleted_date, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(j, "scheduledPurgeDate", 0, &c->scheduled_purge_date, ei)) !=
            CLC_OK ||
        (rc = read_cer(j, c, ei)) != CLC_OK ||
        (rc = clc_kvi_attributes_from_json(cJSON_GetObjectItemCaseSensitive(j, "attributes"),
                                           &c->attributes, ei)) != CLC_OK ||
        (rc = clc_kvi_tags_from_json(cJSON_GetObjectItemCaseSensitive(j, "tags"), &c->tags, ei)) !=
            CLC_OK)
        return rc;
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "policy");
    if (pol && !cJSON_IsNull(pol)) {
        if (!(c->policy = malloc(sizeof *c->policy)))
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        if ((rc = clc_kv_policy_from_json(pol, c->policy, ei)) != CLC_OK)
            return clc_err_wrap(ei, rc, "policy");
    }
    return CLC_OK;
}

void clc_kv_certificate_cleanup(struct clc_kv_certificate *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->name);
    free(c->version);
    free(c->kid);
    free(c->sid);
    free(c->x5t);
    free(c->cer);
    free(c->content_type);
    free(c->recovery_id);
    clc_kv_tags_cleanup(&c->tags);
    if (c->policy) {
        clc_kv_policy_cleanup(c->policy);
        free(c->policy);
    }
    memset(c, 0, sizeof *c);
}

enum clc_err clc_kvi_operation_from_json(const cJSON *j, struct clc_kv_operation *op,
                                         struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *csr = NULL;
    const cJSON *issuer, *err;

    memset(op, 0, sizeof *op);
    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "certificate operation: expected object, got %s",
                        clc_json_type_name(j));
    if ((rc = clc_kvi_dup_opt(j, "id", &op->id, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "status", &op->status, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "status_details", &op->status_details, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "target", &op->target, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "request_id", &op->request_id, ei)) != CLC_OK ||
        (rc = clc_json_bool_opt(j, "cancellation_requested", 0, &op->cancellation_requested, ei)) !=
            CLC_OK ||
        (rc = clc_json_str_opt(j, "csr", NULL, &csr, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "certificate operation");
    if (!op->id || !op->status)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate operation: 'id' or 'status' missing");
    if ((rc = clc_json_obj(j, "issuer", &issuer, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(issuer, "name", &op->issuer_name, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "certificate operation");
    err = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (err && !cJSON_IsNull(err)) {
        if (!cJSON_IsObject(err) ||
            (rc = clc_kvi_dup_opt(err, "code", &op->error_code, ei)) != CLC_OK ||
            (rc = clc_kvi_dup_opt(err, "message", &op->error_message, ei)) != CLC_OK)
            return clc_errf(ei, CLC_ERR_PARSE, "certificate operation: 'error' malformed");
    }
    if (csr && (clc_b64_decode(csr, strlen(csr), &op->csr, &op->csr_len) != CLC_OK ||
                op->csr_len == 0 || op->csr_len > 64 * 1024))
        return clc_errf(ei, CLC_ERR_PARSE, "certificate operation: 'csr' is not base64 DER");
    return CLC_OK;
}

void clc_kv_operation_cleanup(struct clc_kv_operation *op)
{
    if (!op)
        return;
    free(op->id);
    free(op->issuer_name);
    free(op->csr);
    free(op->status);
    free(op->status_details);
    free(op->error_code);
    free(op->error_message);
    free(op->target);
    free(op->request_id);
    memset(op, 0, sizeof *op);
}
