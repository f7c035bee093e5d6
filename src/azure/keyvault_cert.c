/* Certificate operations that work on existing versions: get, update
 * attributes/tags/policy, get/update the policy, import, and the soft-delete
 * family (delete, get deleted, recover, purge). */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/json.h"

/* Runs a call answered by a certificate bundle. */
static enum clc_err bundle_call(struct clc_kv *kv, struct kv_call *c, const cJSON *body,
                                struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    cJSON *j = NULL;
    enum clc_err rc = body ? clc_kvi_call_json(kv, c, body, &j, ei) : clc_kvi_call(kv, c, &j, ei);
    if (rc == CLC_OK) {
        rc = j ? clc_kvi_certificate_from_json(j, out, ei)
               : clc_errf(ei, CLC_ERR_PARSE, "empty answer");
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': %s '%s': response", kv->name, c->op, c->object);
            clc_kv_certificate_cleanup(out);
        }
    }
    cJSON_Delete(j);
    return rc;
}

static void clear_bundle(struct clc_kv_certificate *out)
{
    memset(out, 0, sizeof *out);
}

enum clc_err clc_kv_get_certificate(struct clc_kv *kv, const char *name, const char *version,
                                    struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "get certificate",
                        .object = name,
                        .method = "GET",
                        .url = url,
                        .idempotent = 1,
                        .expect = 200};
    clear_bundle(out);
    enum clc_err rc = clc_kvi_check_name(kv, c.op, name, version, ei);
    if (rc != CLC_OK)
        return rc;
    /* Latest is the empty version segment, as the SDKs send it. */
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/%s", name, version ? version : "") !=
        CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    return bundle_call(kv, &c, NULL, out, ei);
}

enum clc_err clc_kv_update_certificate(struct clc_kv *kv, const char *name, const char *version,
                                       const struct clc_kv_update *u,
                                       struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "update certificate",
                        .object = name,
                        .method = "PATCH",
                        .url = url,
                        .idempotent = 1,
                        .expect = 200};
    cJSON *body = NULL, *pol = NULL;
    enum clc_err rc;

    clear_bundle(out);
    if ((rc = clc_kvi_check_name(kv, c.op, name, version, ei)) != CLC_OK)
        return rc;
    if (!u)
        return clc_errf(ei, CLC_ERR_INVALID, "update certificate '%s': nothing to update", name);
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/%s", name, version ? version : "") !=
        CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    body = cJSON_CreateObject();
    if (!body || clc_kvi_attributes_to_json(u->attributes, body, "attributes") != CLC_OK ||
        clc_kvi_tags_to_json(u->tags, body) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (u->policy) {
        if ((rc = clc_kv_policy_to_json(u->policy, &pol, ei)) != CLC_OK)
            goto out;
        cJSON_AddItemToObject(body, "policy", pol);
    }
    rc = bundle_call(kv, &c, body, out, ei);
out:
    cJSON_Delete(body);
    return rc;
}

static enum clc_err policy_call(struct clc_kv *kv, struct kv_call *c, const cJSON *body,
                                struct clc_kv_policy *out, struct clc_errinfo *ei)
{
    cJSON *j = NULL;
    enum clc_err rc = body ? clc_kvi_call_json(kv, c, body, &j, ei) : clc_kvi_call(kv, c, &j, ei);
    if (rc == CLC_OK) {
        rc = clc_kv_policy_from_json(j, out, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': %s '%s': response", kv->name, c->op, c->object);
            clc_kv_policy_cleanup(out);
        }
    }
    cJSON_Delete(j);
    return rc;
}

enum clc_err clc_kv_get_policy(struct clc_kv *kv, const char *name, struct clc_kv_policy *out,
                               struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "get policy",
                        .object = name,
                        .method = "GET",
                        .url = url,
                        .idempotent = 1,
                        .expect = 200};
    clc_kv_policy_init(out);
    enum clc_err rc = clc_kvi_check_name(kv, c.op, name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/policy", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    return policy_call(kv, &c, NULL, out, ei);
}

enum clc_err clc_kv_update_policy(struct clc_kv *kv, const char *name,
                                  const struct clc_kv_policy *policy, struct clc_kv_policy *out,
                                  struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "update policy",
                        .object = name,
                        .method = "PATCH",
                        .url = url,
                        .idempotent = 1,
                        .expect = 200};
    cJSON *body = NULL;
    clc_kv_policy_init(out);
    enum clc_err rc = clc_kvi_check_name(kv, c.op, name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (!policy)
        return clc_errf(ei, CLC_ERR_INVALID, "update policy '%s': no policy given", name);
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/policy", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    if ((rc = clc_kv_policy_to_json(policy, &body, ei)) != CLC_OK)
        return rc;
    rc = policy_call(kv, &c, body, out, ei);
    cJSON_Delete(body);
    return rc;
}

enum clc_err clc_kv_import(struct clc_kv *kv, const char *name, const struct clc_kv_import *imp,
                           struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    /* A repeated import makes another version: not idempotent. */
    struct kv_call c = {.op = "import certificate",
                        .object = name,
                        .method = "POST",
                        .url = url,
                        .idempotent = 0,
                        .expect = 200};
    cJSON *body = NULL, *pol = NULL;
    char *b64 = NULL;
    size_t b64_len = 0;
    enum clc_err rc;

    clear_bundle(out);
    if ((rc = clc_kvi_check_name(kv, c.op, name, NULL, ei)) != CLC_OK)
        return rc;
    if (!imp || !imp->value || clc_secret_len(imp->value) == 0)
        return clc_errf(ei, CLC_ERR_INVALID, "import certificate '%s': nothing to import", name);
    if (imp->pem && imp->password)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "import certificate '%s': a password applies to PKCS#12 only", name);
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/import", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    body = cJSON_CreateObject();
    if (!body) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (imp->pem) {
        /* PEM text goes as it is (what the Azure CLI sends). */
        rc = clc_json_add_str(body, "value", clc_secret_reveal(imp->value));
    } else {
        rc = clc_b64_encode(clc_secret_reveal(imp->value), clc_secret_len(imp->value), &b64,
                            &b64_len);
        if (rc == CLC_OK)
            rc = clc_json_add_str(body, "value", b64);
    }
    if (rc == CLC_OK && imp->password)
        rc = clc_json_add_str(body, "pwd", clc_secret_reveal(imp->password));
    if (rc == CLC_OK && imp->policy)
        rc = clc_kv_policy_to_json(imp->policy, &pol, ei);
    if (rc == CLC_OK && !pol && !(pol = cJSON_CreateObject()))
        rc = CLC_ERR_NOMEM;
    if (rc == CLC_OK) {
        cJSON_AddItemToObject(body, "policy", pol);
        /* The content type says how to read value; make it explicit. */
        cJSON *sp = cJSON_GetObjectItemCaseSensitive(pol, "secret_props");
        if (!sp)
            sp = cJSON_AddObjectToObject(pol, "secret_props");
        cJSON_DeleteItemFromObjectCaseSensitive(sp, "contentType");
        rc = sp ? clc_json_add_str(sp, "contentType",
                                   imp->pem ? "application/x-pem-file" : "application/x-pkcs12")
                : CLC_ERR_NOMEM;
    }
    if (rc == CLC_OK && (clc_kvi_attributes_to_json(imp->attributes, body, "attributes") ||
                         clc_kvi_tags_to_json(imp->tags, body)))
        rc = CLC_ERR_NOMEM;
    if (rc != CLC_OK) {
        clc_errf(ei, rc, "import certificate '%s': building the request failed", name);
        goto out;
    }
    rc = bundle_call(kv, &c, body, out, ei);
out:
    if (b64) {
        OPENSSL_cleanse(b64, b64_len);
        free(b64);
    }
    /* The tree holds the key material and password: wipe before freeing. */
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, "value");
    if (cJSON_IsString(v))
        OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
    v = cJSON_GetObjectItemCaseSensitive(body, "pwd");
    if (cJSON_IsString(v))
        OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
    cJSON_Delete(body);
    return rc;
}

/* {collection}/{name}{suffix} answered by a bundle. */
static enum clc_err simple_bundle(struct clc_kv *kv, const char *op, const char *method,
                                  const char *collection, const char *name, const char *suffix,
                                  int idempotent, struct clc_kv_certificate *out,
                                  struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = op,
                        .object = name,
                        .method = method,
                        .url = url,
                        .idempotent = idempotent,
                        .expect = 200};
    clear_bundle(out);
    enum clc_err rc = clc_kvi_check_name(kv, op, name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, url, sizeof url, "/%s/%s%s", collection, name, suffix) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    return bundle_call(kv, &c, NULL, out, ei);
}

enum clc_err clc_kv_delete_certificate(struct clc_kv *kv, const char *name,
                                       struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    /* DELETE is idempotent in intent; a repeat after a lost answer gets 404,
     * which tells the caller the certificate is gone. */
    return simple_bundle(kv, "delete certificate", "DELETE", "certificates", name, "", 1, out, ei);
}

enum clc_err clc_kv_get_deleted(struct clc_kv *kv, const char *name, struct clc_kv_certificate *out,
                                struct clc_errinfo *ei)
{
    return simple_bundle(kv, "get deleted certificate", "GET", "deletedcertificates", name, "", 1,
                         out, ei);
}

enum clc_err clc_kv_recover_deleted(struct clc_kv *kv, const char *name,
                                    struct clc_kv_certificate *out, struct clc_errinfo *ei)
{
    return simple_bundle(kv, "recover deleted certificate", "POST", "deletedcertificates", name,
                         "/recover", 1, out, ei);
}

enum clc_err clc_kv_purge_deleted(struct clc_kv *kv, const char *name, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "purge deleted certificate",
                        .object = name,
                        .method = "DELETE",
                        .url = url,
                        .idempotent = 1,
                        .expect = 204};
    enum clc_err rc = clc_kvi_check_name(kv, c.op, name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, url, sizeof url, "/deletedcertificates/%s", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    return clc_kvi_call(kv, &c, NULL, ei);
}
