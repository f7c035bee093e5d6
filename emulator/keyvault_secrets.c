/* Secrets: the one behind a certificate version (GET /secrets/{name}[/{version}]):
 * the key and chain as a base64 PFX with an empty password or as PEM (key
 * first), per the version's content type; refused for non-exportable keys
 * and absent until a version is complete. And plain secrets: Set Secret
 * (PUT /secrets/{name}), refused for a certificate's name, and their GET. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "emulator/keyvault.h"
#include "emulator/state.h"

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

/* A plain secret's bundle: no "kid", no "managed" (Azure sets them only
 * for a certificate's secret); contentType, nbf, exp, tags only when set. */
static cJSON *plain_json(const struct kv_vault *v, const char *name,
                         const struct kv_plain_version *p)
{
    cJSON *o = cJSON_CreateObject(), *a = NULL;
    char u[KV_BASE_MAX + KV_NAME_MAX + 64];
    int ok = o != NULL;

    snprintf(u, sizeof u, "%s/secrets/%s/%s", v->base, name, p->id);
    ok = ok && clc_json_add_str(o, "value", p->value) == CLC_OK &&
         clc_json_add_str(o, "id", u) == CLC_OK &&
         (p->content_type == NULL ||
          clc_json_add_str(o, "contentType", p->content_type) == CLC_OK) &&
         (a = cJSON_AddObjectToObject(o, "attributes")) != NULL &&
         clc_json_add_bool(a, "enabled", p->enabled) == CLC_OK &&
         (p->nbf < 0 || clc_json_add_int(a, "nbf", p->nbf) == CLC_OK) &&
         (p->exp < 0 || clc_json_add_int(a, "exp", p->exp) == CLC_OK) &&
         clc_json_add_int(a, "created", p->created) == CLC_OK &&
         clc_json_add_int(a, "updated", p->updated) == CLC_OK &&
         clc_json_add_int(a, "recoverableDays", KV_RECOVERABLE_DAYS) == CLC_OK &&
         clc_json_add_str(a, "recoveryLevel", KV_RECOVERY_LEVEL) == CLC_OK;
    if (ok && p->tags != NULL) {
        cJSON *tags = cJSON_Duplicate(p->tags, 1);
        ok = tags != NULL && cJSON_AddItemToObject(o, "tags", tags);
        if (!ok)
            cJSON_Delete(tags);
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

/* GET of a name no certificate holds (caller holds the vault lock). */
static cJSON *plain_get(struct kv_ctx *k, const char *name, const char *version, struct kv_fault *f)
{
    const char *stored = NULL;
    const struct kv_plain_version *p = kv_plain_get(k->v, name, version, &stored);
    cJSON *doc = NULL;

    if (p == NULL)
        secret_nf(f, name, version);
    else if (!p->enabled)
        kv_fault(f, 403, "Forbidden", "SecretDisabled",
                 "Operation get is not allowed on a disabled secret.");
    else if ((doc = plain_json(k->v, stored, p)) == NULL)
        kv_fault(f, 500, "InternalError", NULL, "out of memory");
    return doc;
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
    int plain = 0;

    memset(&snap, 0, sizeof snap);
    if (!kv_name_ok(k->r, name, "secret"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c != NULL)
        ver = version ? kv_cert_version(c, version) : kv_cert_latest(c);
    if (c == NULL) {
        plain = 1;
        doc = plain_get(k, name, version, &f);
    } else if (ver == NULL) {
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
    if (f.status == 0 && !plain &&
        (kv_secret_value(&snap, &value, &ei) != CLC_OK ||
         clc_json_add_str(doc, "value", value) != CLC_OK))
        kv_fault(&f, 500, "InternalError", NULL, "%s", ei.msg[0] ? ei.msg : "out of memory");
    snapshot_free(&snap);
    if (value != NULL) {
        OPENSSL_cleanse(value, strlen(value));
        free(value);
    }
    kv_finish(k->r, &f, 200, doc, NULL);
}

/* The request body of Set Secret as a new version; replies 400 itself. */
static struct kv_plain_version *set_body(struct kv_ctx *k)
{
    cJSON *body = kv_body(k->r);
    const cJSON *val, *ct;
    struct kv_plain_version *p = NULL;
    struct kv_attrs a;

    if (body == NULL)
        return NULL;
    val = cJSON_GetObjectItemCaseSensitive(body, "value");
    ct = cJSON_GetObjectItemCaseSensitive(body, "contentType");
    if (!cJSON_IsString(val)) {
        kv_bad(k->r, "Property 'value' is required and must be a string, not %s.",
               val ? clc_json_type_name(val) : "absent");
    } else if (strlen(val->valuestring) > KV_SECRET_VALUE_MAX) {
        kv_bad(k->r, "The secret value is %zu bytes; at most %d are allowed.",
               strlen(val->valuestring), KV_SECRET_VALUE_MAX);
    } else if (ct != NULL && !cJSON_IsNull(ct) &&
               (!cJSON_IsString(ct) || strlen(ct->valuestring) > KV_CONTENT_TYPE_MAX)) {
        kv_bad(k->r, "Property 'contentType' must be a string of at most %d characters.",
               KV_CONTENT_TYPE_MAX);
    } else if (kv_parse_attrs(k->r, body, &a)) {
        p = calloc(1, sizeof *p);
        if (p != NULL) {
            int64_t now = emu_now(k->r->emu);
            kv_new_id(p->id);
            p->enabled = a.enabled < 0 ? 1 : a.enabled;
            p->nbf = a.nbf;
            p->exp = a.exp;
            p->created = p->updated = now;
            p->value = strdup(val->valuestring);
            if (cJSON_IsString(ct))
                p->content_type = strdup(ct->valuestring);
            if (a.tags != NULL)
                p->tags = cJSON_Duplicate(a.tags, 1);
        }
        if (p == NULL || p->value == NULL || (cJSON_IsString(ct) && p->content_type == NULL) ||
            (a.tags != NULL && p->tags == NULL)) {
            kv_plain_version_free(p);
            p = NULL;
            kv_error(k->r, 500, "InternalError", NULL, "out of memory");
        }
    }
    /* The value was copied (or refused): the parsed one goes now. */
    if (cJSON_IsString(val))
        OPENSSL_cleanse(val->valuestring, strlen(val->valuestring));
    cJSON_Delete(body);
    return p;
}

void kv_h_secret_set(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct clc_errinfo ei = {0};
    struct kv_fault f = {0};
    struct kv_plain_version *p;
    const char *stored = NULL;
    cJSON *doc = NULL;
    char shown[140];
    enum clc_err rc;

    if (!kv_name_ok(k->r, name, "secret") || (p = set_body(k)) == NULL)
        return;
    kv_sanitize(name, shown, sizeof shown);
    pthread_mutex_lock(&k->v->mu);
    /* A certificate's secret belongs to the certificate (Azure: 403
     * SecretManagedByKeyVault); a deleted certificate still holds its name. */
    if (kv_table_get(&k->v->live, name) != NULL) {
        kv_fault(&f, 403, "Forbidden", "SecretManagedByKeyVault",
                 "Operation \"set\" is not allowed as this object's lifetime is managed by Key "
                 "Vault.");
    } else if (kv_table_get(&k->v->deleted, name) != NULL) {
        kv_fault(&f, 409, "Conflict", "ObjectIsDeletedButRecoverable",
                 "Secret %s is currently in a deleted but recoverable state, and its name cannot "
                 "be reused; in this state, the secret can only be recovered or purged.",
                 shown);
    } else if ((rc = kv_plain_add(k->v, name, p, &stored, &ei)) != CLC_OK) {
        if (rc == CLC_ERR_LIMIT)
            kv_fault(&f, 400, "BadParameter", NULL, "%s.", ei.msg);
        else
            kv_fault(&f, 500, "InternalError", NULL, "%s", ei.msg);
    } else {
        const struct kv_plain_version *added = p;
        p = NULL; /* the vault's now */
        if ((doc = plain_json(k->v, stored, added)) == NULL)
            kv_fault(&f, 500, "InternalError", NULL, "out of memory");
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_plain_version_free(p);
    kv_finish(k->r, &f, 200, doc, NULL);
}
