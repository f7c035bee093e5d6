/* The secret behind a certificate version (GET /secrets/{name}[/{version}]):
 * the key and chain as a base64 PFX with an empty password or as PEM (key
 * first), per the version's content type; refused for non-exportable keys
 * and absent until a version is complete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "emulator/keyvault.h"

static void secret_nf(struct kv_fault *f, const char *name, const char *version)
{
    char shown[140], sv[40];

    kv_sanitize(name, shown, sizeof shown);
    kv_sanitize(version ? version : "", sv, sizeof sv);
    kv_fault(f, 404, "SecretNotFound", NULL,
             "A secret with (name/id) %s%s%s was not found in this key vault. If you recently "
             "deleted this secret you may be able to recover it using the correct recovery "
             "command.",
             shown, sv[0] ? "/" : "", sv);
}

/* The bundle without its value (added after the lock is released). */
static cJSON *secret_json(const struct kv_vault *v, const struct kv_cert *c,
                          const struct kv_version *ver)
{
    cJSON *o = cJSON_CreateObject(), *a;
    char u[KV_BASE_MAX + KV_NAME_MAX + 64];
    int ok = o != NULL;

    snprintf(u, sizeof u, "%s/secrets/%s/%s", v->base, c->name, ver->id);
    ok = ok && clc_json_add_str(o, "id", u) == CLC_OK &&
         clc_json_add_str(o, "contentType", ver->content_type) == CLC_OK &&
         (a = cJSON_AddObjectToObject(o, "attributes")) != NULL &&
         clc_json_add_bool(a, "enabled", ver->enabled) == CLC_OK &&
         clc_json_add_int(a, "nbf", ver->nbf) == CLC_OK &&
         clc_json_add_int(a, "exp", ver->exp) == CLC_OK &&
         clc_json_add_int(a, "created", ver->created) == CLC_OK &&
         clc_json_add_int(a, "updated", ver->updated) == CLC_OK &&
         clc_json_add_int(a, "recoverableDays", KV_RECOVERABLE_DAYS) == CLC_OK &&
         clc_json_add_str(a, "recoveryLevel", KV_RECOVERY_LEVEL) == CLC_OK;
    if (ok) {
        cJSON *tags = cJSON_Duplicate(ver->tags, 1);
        ok = tags != NULL && cJSON_AddItemToObject(o, "tags", tags);
        if (!ok)
            cJSON_Delete(tags);
    }
    snprintf(u, sizeof u, "%s/keys/%s/%s", v->base, c->name, ver->id);
    ok = ok && clc_json_add_str(o, "kid", u) == CLC_OK &&
         clc_json_add_bool(o, "managed", 1) == CLC_OK;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* A private copy of what the value is made of: building a PFX takes
 * milliseconds, too long to hold the vault lock for. */
static int snapshot(const struct kv_version *ver, struct kv_version *snap)
{
    memset(snap, 0, sizeof *snap);
    snprintf(snap->content_type, sizeof snap->content_type, "%s", ver->content_type);
    if (!X509_up_ref(ver->cert))
        return 0;
    snap->cert = ver->cert;
    if (!EVP_PKEY_up_ref(ver->key))
        return 0;
    snap->key = ver->key;
    if (ver->chain != NULL && (snap->chain = X509_chain_up_ref(ver->chain)) == NULL)
        return 0;
    return 1;
}

static void snapshot_free(struct kv_version *snap)
{
    X509_free(snap->cert);
    EVP_PKEY_free(snap->key);
    sk_X509_pop_free(snap->chain, X509_free);
}

void kv_h_secret_get(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    const char *version = emu_req_param(k->r, "version");
    struct clc_errinfo ei = {0};
    struct kv_fault f = {0};
    struct kv_cert *c;
    struct kv_version *ver = NULL, snap;
    char *value = NULL;
    cJSON *doc = NULL;

    memset(&snap, 0, sizeof snap);
    if (!kv_name_ok(k->r, name, "secret"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c != NULL)
        ver = version ? kv_cert_version(c, version) : kv_cert_latest(c);
    if (ver == NULL) {
        secret_nf(&f, name, version);
    } else if (!ver->exportable || ver->key == NULL) {
        kv_fault(&f, 403, "Forbidden", "KeyNotExportable",
                 "The private key of certificate %s is not exportable, so its secret cannot be "
                 "read.",
                 c->name);
    } else if (!ver->enabled) {
        kv_fault(&f, 403, "Forbidden", "SecretDisabled",
                 "Operation get is not allowed on a disabled secret.");
    } else if (!snapshot(ver, &snap) || (doc = secret_json(k->v, c, ver)) == NULL) {
        kv_fault(&f, 500, "InternalError", NULL, "out of memory");
    }
    pthread_mutex_unlock(&k->v->mu);
    if (f.status == 0 && (kv_secret_value(&snap, &value, &ei) != CLC_OK ||
                          clc_json_add_str(doc, "value", value) != CLC_OK))
        kv_fault(&f, 500, "InternalError", NULL, "%s", ei.msg[0] ? ei.msg : "out of memory");
    snapshot_free(&snap);
    if (value != NULL) {
        OPENSSL_cleanse(value, strlen(value));
        free(value);
    }
    if (f.status) {
        cJSON_Delete(doc);
        kv_fault_send(k->r, &f);
    } else {
        kv_reply(k->r, 200, doc);
    }
}
