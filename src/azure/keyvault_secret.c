/* The one call that fetches key material: the secret behind a certificate
 * version (PFX as base64, or PEM key and chain). The value goes straight into
 * a struct clc_secret; every copy on the way (response body, JSON tree) is
 * wiped before it is freed. */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/json.h"

void clc_kv_secret_bundle_cleanup(struct clc_kv_secret_bundle *s)
{
    if (!s)
        return;
    free(s->id);
    free(s->name);
    free(s->version);
    free(s->kid);
    free(s->content_type);
    clc_secret_free(s->value);
    clc_kv_tags_cleanup(&s->tags);
    memset(s, 0, sizeof *s);
}

static enum clc_err read_secret(const cJSON *j, struct clc_kv_secret_bundle *out,
                                struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *id = NULL;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");

    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "secret: expected object");
    if (!cJSON_IsString(v))
        return clc_errf(ei, CLC_ERR_PARSE, "secret: field 'value' missing or not a string");
    if ((rc = clc_json_str(j, "id", &id, ei)) != CLC_OK ||
        (rc = clc_kvi_split_id(id, &out->name, &out->version, ei)) != CLC_OK)
        return rc;
    if (!(out->id = strdup(id)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if ((rc = clc_kvi_dup_opt(j, "kid", &out->kid, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(j, "contentType", &out->content_type, ei)) != CLC_OK ||
        (rc = clc_json_bool_opt(j, "managed", 0, &out->managed, ei)) != CLC_OK ||
        (rc = clc_kvi_attributes_from_json(cJSON_GetObjectItemCaseSensitive(j, "attributes"),
                                           &out->attributes, ei)) != CLC_OK ||
        (rc = clc_kvi_tags_from_json(cJSON_GetObjectItemCaseSensitive(j, "tags"), &out->tags,
                                     ei)) != CLC_OK)
        return rc;
    if (strlen(v->valuestring) == 0 || strlen(v->valuestring) > CLC_SECRET_MAX * 4)
        return clc_errf(ei, CLC_ERR_PARSE, "secret: value empty or too large");
    if (clc_secret_new(v->valuestring, strlen(v->valuestring), &out->value) != CLC_OK)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

enum clc_err clc_kv_get_secret(struct clc_kv *kv, const char *name, const char *version,
                               struct clc_kv_secret_bundle *out, struct clc_errinfo *ei)
{
    char url[KV_URL_MAX];
    struct kv_call c = {.op = "get secret",
                        .object = name,
                        .method = "GET",
                        .url = url,
                        .idempotent = 1,
                        .expect = 200,
                        .secret_response = 1};
    cJSON *j = NULL;
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    clc_kv_attributes_init(&out->attributes);
    if ((rc = clc_kvi_check_name(kv, c.op, name, version, ei)) != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, url, sizeof url, "/secrets/%s/%s", name, version ? version : "") != CLC_OK)
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    rc = clc_kvi_call(kv, &c, &j, ei);
    if (rc == CLC_OK) {
        rc = read_secret(j, out, ei);
        if (rc != CLC_OK) {
            clc_err_wrap(ei, rc, "key vault '%s': get secret '%s': response", kv->name, name);
            clc_kv_secret_bundle_cleanup(out);
        }
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (cJSON_IsString(v))
        OPENSSL_cleanse(v->valuestring, strlen(v->valuestring));
    cJSON_Delete(j);
    return rc;
}
