/* The renewal half of the client: create a new version (the vault makes the
 * key and, for issuer Unknown, the CSR), read/cancel/delete the pending
 * operation, and merge the issued chain leaf first. */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "core/json.h"

static enum clc_err operation_call(struct clc_kv *kv, struct kv_call *c, const cJSON *body,
                                   struct clc_kv_operation *out, struct clc_errinfo *ei)
{
    cJSON *j = NULL;
    enum clc_err rc = body ? clc_kvi_call_json(kv, c, body, &j, ei) : clc_kvi_call(kv, c, &j, ei);
    if (rc == CLC_OK) {
        rc = clc_kvi_operation_from_json(j, out, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': %s '%s': response", kv->name, c->op, c->object);
            clc_kv_operation_cleanup(out);
        }
    }
    cJSON_Delete(j);
    return rc;
}

enum clc_err clc_kv_create(struct clc_kv *kv, const char *name, const struct clc_kv_create *req,
                           struct clc_kv_operation *out, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    /* A repeated create either makes a second version or meets 409. */
    struct kv_call c = {.op = "create certificate",
                        .object = name,
                        .method = "POST",
                        .url = url,
                        .idempotent = 0,
                        .expect = 202};
    cJSON *body = NULL, *pol = NULL;
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    if ((rc = clc_kvi_check_name(kv, c.op, name, NULL, ei)) != CLC_OK)
        return rc;
    if (!req || !req->policy)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "key vault '%s': create certificate '%s': a policy is required", kv->name,
                        name);
    if (!req->policy->subject && !req->policy->dns_names.n && !req->policy->emails.n &&
        !req->policy->upns.n)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "key vault '%s': create certificate '%s': the policy has neither subject "
                        "nor SANs",
                        kv->name, name);
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/create", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    body = cJSON_CreateObject();
    if (!body || (rc = clc_kv_policy_to_json(req->policy, &pol, ei)) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    cJSON_AddItemToObject(body, "policy", pol);
    if (clc_kvi_attributes_to_json(req->attributes, body, "attributes") != CLC_OK ||
        clc_kvi_tags_to_json(req->tags, body) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = operation_call(kv, &c, body, out, ei);
out:
    cJSON_Delete(body);
    return rc;
}

static enum clc_err pending_call(struct clc_kv *kv, const char *op, const char *method,
                                 const char *name, const cJSON *body, struct clc_kv_operation *out,
                                 struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {
        .op = op, .object = name, .method = method, .url = url, .idempotent = 1, .expect = 200};
    memset(out, 0, sizeof *out);
    enum clc_err rc = clc_kvi_check_name(kv, op, name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/pending", name) != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    return operation_call(kv, &c, body, out, ei);
}

enum clc_err clc_kv_get_operation(struct clc_kv *kv, const char *name, struct clc_kv_operation *out,
                                  struct clc_errinfo *ei)
{
    return pending_call(kv, "get pending operation", "GET", name, NULL, out, ei);
}

enum clc_err clc_kv_cancel_operation(struct clc_kv *kv, const char *name,
                                     struct clc_kv_operation *out, struct clc_errinfo *ei)
{
    cJSON *body = cJSON_CreateObject();
    enum clc_err rc;
    memset(out, 0, sizeof *out);
    if (!body || clc_json_add_bool(body, "cancellation_requested", 1) != CLC_OK)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    else
        rc = pending_call(kv, "cancel pending operation", "PATCH", name, body, out, ei);
    cJSON_Delete(body);
    return rc;
}

enum clc_err clc_kv_delete_operation(struct clc_kv *kv, const char *name,
                                     struct clc_kv_operation *out, struct clc_errinfo *ei)
{
    return pending_call(kv, "delete pending operation", "DELETE", name, NULL, out, ei);
}

/* x5c: standard base64 of each DER certificate, leaf first. */
static enum clc_err add_x5c(cJSON *body, STACK_OF(X509) * ordered, struct clc_errinfo *ei)
{
    cJSON *arr = cJSON_AddArrayToObject(body, "x5c");
    if (!arr)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < sk_X509_num(ordered); i++) {
        unsigned char *der = NULL;
        size_t len = 0;
        char *b64 = NULL;
        enum clc_err rc = clc_cert_to_der(sk_X509_value(ordered, i), &der, &len, ei);
        if (rc == CLC_OK)
            rc = clc_b64_encode(der, len, &b64, NULL);
        free(der);
        cJSON *s = rc == CLC_OK ? cJSON_CreateString(b64) : NULL;
        free(b64);
        if (!s || !cJSON_AddItemToArray(arr, s)) {
            cJSON_Delete(s);
            return clc_errf(ei, rc != CLC_OK ? rc : CLC_ERR_NOMEM, "x5c: encoding failed");
        }
    }
    return CLC_OK;
}

enum clc_err clc_kv_merge(struct clc_kv *kv, const char *name, STACK_OF(X509) * chain,
                          const struct clc_kv_update *u, struct clc_kv_certificate *out,
                          struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    /* A second merge fails once the operation completed: not idempotent. */
    struct kv_call c = {.op = "merge certificate",
                        .object = name,
                        .method = "POST",
                        .url = url,
                        .idempotent = 0,
                        .expect = 201};
    STACK_OF(X509) *ordered = NULL;
    cJSON *body = NULL, *j = NULL;
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    if ((rc = clc_kvi_check_name(kv, c.op, name, NULL, ei)) != CLC_OK)
        return rc;
    if ((rc = clc_cert_chain_order(chain, &ordered, ei)) != CLC_OK) {
        clc_err_wrap(ei, rc, "key vault '%s': merge certificate '%s'", kv->name, name);
        goto out;
    }
    if (clc_kvi_url(kv, url, sizeof url, "/certificates/%s/pending/merge", name) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
        goto out;
    }
    body = cJSON_CreateObject();
    if (!body) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = add_x5c(body, ordered, ei)) != CLC_OK)
        goto out;
    if (u && (clc_kvi_attributes_to_json(u->attributes, body, "attributes") != CLC_OK ||
              clc_kvi_tags_to_json(u->tags, body) != CLC_OK)) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    rc = clc_kvi_call_json(kv, &c, body, &j, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_kvi_certificate_from_json(j, out, ei);
    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc, "key vault '%s': merge certificate '%s': response", kv->name, name);
        clc_kv_certificate_cleanup(out);
    }
out:
    cJSON_Delete(j);
    cJSON_Delete(body);
    clc_cert_chain_free(ordered);
    return rc;
}
