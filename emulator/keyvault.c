/* The emulated Key Vault: one HTTPS listener per configured vault, the
 * route table, the authentication challenge, token and RBAC checks per
 * operation, api-version checks, and the reply helpers in Azure's shape. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/keyvault.h"
#include "emulator/services.h"
#include "emulator/state.h"

/* Body limit for JSON requests: the server's own limit still applies. */
#define KV_JSON_MAX ((size_t)16 * 1024 * 1024)

/* ---- replies ---- */

static const char *const kv_headers[] = {
    "Cache-Control: no-cache",
    "Pragma: no-cache",
    "Expires: -1",
    "x-ms-keyvault-service-version: 1.9.0.0",
    "x-ms-keyvault-region: emulator",
    "Strict-Transport-Security: max-age=31536000;includeSubDomains",
    NULL,
};

void kv_reply_hdrs(struct emu_req *r, int status, cJSON *doc, const char *extra)
{
    const char *hdrs[sizeof kv_headers / sizeof kv_headers[0] + 1];
    size_t n = 0;

    if (doc == NULL && status != 204) {
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    for (; kv_headers[n] != NULL; n++)
        hdrs[n] = kv_headers[n];
    if (extra != NULL)
        hdrs[n++] = extra;
    hdrs[n] = NULL;
    emu_reply_json(r, status, doc, hdrs);
    cJSON_Delete(doc);
}

void kv_finish(struct emu_req *r, const struct kv_fault *f, int status, cJSON *doc,
               const char *extra)
{
    if (f->status) {
        cJSON_Delete(doc);
        kv_fault_send(r, f);
    } else {
        kv_reply_hdrs(r, status, doc, extra);
    }
}

void kv_reply(struct emu_req *r, int status, cJSON *doc)
{
    kv_reply_hdrs(r, status, doc, NULL);
}

static void kv_error_v(struct emu_req *r, int status, const char *code, const char *inner,
                       const char *extra_header, const char *fmt, va_list ap)
{
    char msg[1024];
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = doc ? cJSON_AddObjectToObject(doc, "error") : NULL;
    cJSON *in = NULL;

    vsnprintf(msg, sizeof msg, fmt, ap);
    if (err == NULL || clc_json_add_str(err, "code", code) != CLC_OK ||
        clc_json_add_str(err, "message", msg) != CLC_OK) {
        cJSON_Delete(doc);
        kv_reply(r, 500, NULL);
        return;
    }
    if (inner != NULL) {
        in = cJSON_AddObjectToObject(err, "innererror");
        if (in == NULL || clc_json_add_str(in, "code", inner) != CLC_OK) {
            cJSON_Delete(doc);
            kv_reply(r, 500, NULL);
            return;
        }
    }
    kv_reply_hdrs(r, status, doc, extra_header);
}

void kv_error(struct emu_req *r, int status, const char *code, const char *inner, const char *fmt,
              ...)
{
    va_list ap;

    va_start(ap, fmt);
    kv_error_v(r, status, code, inner, NULL, fmt, ap);
    va_end(ap);
}

void kv_bad(struct emu_req *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kv_error_v(r, 400, "BadParameter", NULL, NULL, fmt, ap);
    va_end(ap);
}

static void kv_error_hdr(struct emu_req *r, int status, const char *code, const char *hdr,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void kv_error_hdr(struct emu_req *r, int status, const char *code, const char *hdr,
                         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    kv_error_v(r, status, code, NULL, hdr, fmt, ap);
    va_end(ap);
}

/* 401 with the challenge SDKs read the authority and resource from. */
static void kv_challenge(struct emu_req *r, const char *why)
{
    const char *entra = emu_service_url(r->emu, "entra");
    const char *tenant = emu_tenant(r->emu);
    char hdr[256];

    snprintf(hdr, sizeof hdr,
             "WWW-Authenticate: Bearer authorization=\"%s/%s\", resource=\"" KV_AUDIENCE "\"",
             entra ? entra : "https://login.microsoftonline.com", tenant ? tenant : "common");
    kv_error_hdr(r, 401, "Unauthorized", hdr, "AKV10000: %s", why);
}

void kv_sanitize(const char *s, char *out, size_t outlen)
{
    size_t o = 0;

    if (outlen == 0)
        return;
    for (; s != NULL && *s != '\0' && o + 4 < outlen; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (s != NULL && *s != '\0' && o + 3 < outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

int kv_name_ok(struct emu_req *r, const char *name, const char *what)
{
    size_t n = name ? strlen(name) : 0;
    char shown[80];

    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-')) {
            n = 0;
            break;
        }
    }
    if (n >= 1 && n <= KV_NAME_MAX)
        return 1;
    kv_sanitize(name, shown, sizeof shown);
    kv_bad(r,
           "The %s name '%s' is invalid: a name is 1 to %d characters of 0-9, a-z, A-Z and "
           "'-'.",
           what, shown, KV_NAME_MAX);
    return 0;
}

cJSON *kv_body(struct emu_req *r)
{
    struct clc_errinfo ei = {0};
    cJSON *doc = NULL;

    if (r->body_len == 0) {
        kv_bad(r, "The request body is empty; a JSON object is required.");
        return NULL;
    }
    if (clc_json_parse(r->body, r->body_len, KV_JSON_MAX, &doc, &ei) != CLC_OK) {
        kv_bad(r, "The request body is not valid JSON: %s", ei.msg);
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        kv_bad(r, "The request body must be a JSON object, not %s.", clc_json_type_name(doc));
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

void kv_fault(struct kv_fault *f, int status, const char *code, const char *inner, const char *fmt,
              ...)
{
    va_list ap;

    f->status = status;
    f->code = code;
    f->inner = inner;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
}

void kv_fault_nf(struct kv_fault *f, const char *name, const char *version)
{
    char shown[140], sv[40];

    kv_sanitize(name, shown, sizeof shown);
    kv_sanitize(version ? version : "", sv, sizeof sv);
    kv_fault(f, 404, "CertificateNotFound", NULL,
             "A certificate with (name/id) %s%s%s was not found in this key vault. If you "
             "recently deleted this certificate you may be able to recover it using the "
             "correct recovery command.",
             shown, sv[0] ? "/" : "", sv);
}

void kv_fault_send(struct emu_req *r, const struct kv_fault *f)
{
    kv_error(r, f->status ? f->status : 500, f->code ? f->code : "InternalError", f->inner, "%s",
             f->msg);
}

/* ---- authentication, roles, api-version ---- */

static const char *const api_versions[] = {
    "7.0", "7.1", "7.2", "7.3", "7.4", "7.5", "7.6", "2025-07-01",
};

/* Roles per kind of operation. "Nothing else implied": the Certificates
 * Officer cannot read secrets, the Secrets User cannot read certificates. */
#define ROLES_READ (EMU_ROLE_KV_CERTIFICATES_OFFICER | EMU_ROLE_KV_READER)
#define ROLES_WRITE EMU_ROLE_KV_CERTIFICATES_OFFICER
#define ROLES_SECRET (EMU_ROLE_KV_SECRETS_USER | EMU_ROLE_KV_SECRETS_OFFICER)
#define ROLES_SECRET_SET EMU_ROLE_KV_SECRETS_OFFICER

struct kv_op {
    const char *action; /* Azure data action, for the 403 message */
    unsigned roles;
    void (*fn)(struct kv_ctx *k);
};

/* Token, then role, then api-version: an unauthenticated request learns
 * nothing and changes nothing, whatever its body. */
static int kv_auth(struct emu_req *r, struct emu_principal *who)
{
    struct clc_errinfo ei = {0};

    if (emu_auth_verify(r->emu, r, KV_AUDIENCE, who, &ei) == CLC_OK)
        return 1;
    if (emu_req_header(r, "Authorization") == NULL)
        kv_challenge(r, "Request is missing a Bearer or PoP token.");
    else
        kv_challenge(r, ei.msg[0] ? ei.msg : "The access token is invalid.");
    return 0;
}

static void kv_enter(struct emu_req *r, const struct kv_op *op)
{
    struct kv_ctx k;
    char av[64];
    size_t i;

    memset(&k, 0, sizeof k);
    k.v = r->svc_ctx;
    k.r = r;
    if (!kv_auth(r, &k.who))
        return;
    if (!emu_principal_has(&k.who, op->roles)) {
        kv_error(r, 403, "Forbidden", "ForbiddenByRbac",
                 "Caller is not authorized to perform action on resource. If role assignments "
                 "were recently changed, please wait several minutes for role assignments to "
                 "become effective. Caller: appid=%s;oid=%s;name=%s Action: '%s' Vault: %s",
                 k.who.client_id, k.who.object_id, k.who.name, op->action, k.v->name);
        return;
    }
    if (!emu_req_query(r, "api-version", av, sizeof av)) {
        kv_bad(r, "The api-version query parameter is missing (use one of 7.0 to 7.6 or "
                  "2025-07-01).");
        return;
    }
    for (i = 0; i < sizeof api_versions / sizeof api_versions[0]; i++)
        if (strcmp(av, api_versions[i]) == 0)
            break;
    if (i == sizeof api_versions / sizeof api_versions[0]) {
        char shown[40];
        kv_sanitize(av, shown, sizeof shown);
        kv_bad(r,
               "The specified version (%s) is not recognized. Consider using the latest "
               "supported version (7.6).",
               shown);
        return;
    }
    snprintf(k.api_version, sizeof k.api_version, "%s", api_versions[i]);
    op->fn(&k);
}

#define KV_OP(name, roles, action)                                                                 \
    static const struct kv_op op_##name = {action, roles, kv_h_##name};                            \
    static void r_##name(struct emu_req *r)                                                        \
    {                                                                                              \
        kv_enter(r, &op_##name);                                                                   \
    }

#define ACT "Microsoft.KeyVault/vaults/"
KV_OP(list, ROLES_READ, ACT "certificates/read")
KV_OP(get, ROLES_READ, ACT "certificates/read")
KV_OP(update, ROLES_WRITE, ACT "certificates/update/action")
KV_OP(delete, ROLES_WRITE, ACT "certificates/delete")
KV_OP(versions, ROLES_READ, ACT "certificates/read")
KV_OP(policy_get, ROLES_READ, ACT "certificates/read")
KV_OP(policy_update, ROLES_WRITE, ACT "certificates/update/action")
KV_OP(create, ROLES_WRITE, ACT "certificates/create/action")
KV_OP(import, ROLES_WRITE, ACT "certificates/import/action")
KV_OP(pending_get, ROLES_READ, ACT "certificates/read")
KV_OP(pending_update, ROLES_WRITE, ACT "certificates/update/action")
KV_OP(pending_delete, ROLES_WRITE, ACT "certificates/delete")
KV_OP(merge, ROLES_WRITE, ACT "certificates/create/action")
KV_OP(deleted_list, ROLES_READ, ACT "deletedcertificates/read")
KV_OP(deleted_get, ROLES_READ, ACT "deletedcertificates/read")
KV_OP(deleted_purge, ROLES_WRITE, ACT "deletedcertificates/delete")
KV_OP(deleted_recover, ROLES_WRITE, ACT "deletedcertificates/recover/action")
KV_OP(secret_get, ROLES_SECRET, ACT "secrets/getSecret/action")
KV_OP(secret_set, ROLES_SECRET_SET, ACT "secrets/setSecret/action")

/* Literal segments before "{version}": the first match wins. A trailing "/"
 * in the request is ignored by patterns without one, so "/certificates/x/"
 * (the SDKs' "latest") reaches "/certificates/{name}". */
static const struct emu_route kv_routes[] = {
    {"GET", "/certificates", r_list},
    {"GET", "/certificates/{name}/versions", r_versions},
    {"GET", "/certificates/{name}/policy", r_policy_get},
    {"PATCH", "/certificates/{name}/policy", r_policy_update},
    {"POST", "/certificates/{name}/create", r_create},
    {"POST", "/certificates/{name}/import", r_import},
    {"GET", "/certificates/{name}/pending", r_pending_get},
    {"PATCH", "/certificates/{name}/pending", r_pending_update},
    {"DELETE", "/certificates/{name}/pending", r_pending_delete},
    {"POST", "/certificates/{name}/pending/merge", r_merge},
    {"GET", "/certificates/{name}", r_get},
    {"PATCH", "/certificates/{name}", r_update},
    {"DELETE", "/certificates/{name}", r_delete},
    {"GET", "/certificates/{name}/{version}", r_get},
    {"PATCH", "/certificates/{name}/{version}", r_update},
    {"GET", "/deletedcertificates", r_deleted_list},
    {"GET", "/deletedcertificates/{name}", r_deleted_get},
    {"DELETE", "/deletedcertificates/{name}", r_deleted_purge},
    {"POST", "/deletedcertificates/{name}/recover", r_deleted_recover},
    {"GET", "/secrets/{name}", r_secret_get},
    {"PUT", "/secrets/{name}", r_secret_set},
    {"GET", "/secrets/{name}/{version}", r_secret_get},
};

/* Unknown routes and wrong methods: the challenge first (Key Vault answers
 * 401 on any path), then an empty name segment as a parameter error. */
static void kv_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    struct emu_principal who;

    if (status == 404 || status == 405) {
        if (!kv_auth(r, &who))
            return;
        if (status == 404 && r->path != NULL &&
            (strncmp(r->path, "/certificates//", 15) == 0 ||
             strncmp(r->path, "/secrets//", 10) == 0 ||
             strncmp(r->path, "/deletedcertificates//", 22) == 0)) {
            kv_bad(r,
                   "The object name is empty: a name is 1 to %d characters of 0-9, a-z, A-Z "
                   "and '-'.",
                   KV_NAME_MAX);
            return;
        }
    }
    kv_error(r, status, status == 413 ? "RequestBodyTooLarge" : code, NULL, "%s", message);
}

static const struct emu_service_def kv_def = {
    .name = "keyvault",
    .routes = kv_routes,
    .nroutes = sizeof kv_routes / sizeof kv_routes[0],
    .plain_http = 0,
    .error = kv_route_error,
};

/* ---- mount ---- */

/* Vault names become service keys and URL-free ids: Azure's rule (3-24
 * characters, letters, digits, '-', starting with a letter), lower case. */
static int vault_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > KV_VAULT_NAME_MAX || !(s[0] >= 'a' && s[0] <= 'z') || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
    return 1;
}

static void vault_free(struct kv_vault *v)
{
    if (v == NULL)
        return;
    kv_table_clear(&v->live);
    kv_table_clear(&v->deleted);
    kv_plain_free(v);
    free(v->live.items);
    free(v->deleted.items);
    free(v->dir);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static void service_free(void *ctx)
{
    struct kv_service *s = ctx;

    for (size_t i = 0; i < s->nvaults; i++)
        vault_free(s->vaults[i]);
    X509_free(s->issuer_cert);
    EVP_PKEY_free(s->issuer_key);
    free(s->issuer_pem);
    kv_x5c_cache_cleanup(&s->x5c);
    free(s);
}

static enum clc_err vault_add(struct kv_service *s, const char *name, int port,
                              struct clc_errinfo *ei)
{
    struct kv_vault *v;
    char key[64];
    const char *url, *dd = emu_data_dir(s->e);
    enum clc_err rc;

    if (s->nvaults == KV_MAX_VAULTS)
        return clc_errf(ei, CLC_ERR_CONFIG, "vaults: at most %d", KV_MAX_VAULTS);
    v = calloc(1, sizeof *v);
    if (v == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&v->mu, NULL);
    v->svc = s;
    snprintf(v->name, sizeof v->name, "%s", name);
    snprintf(v->topic, sizeof v->topic,
             "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/"
             "certlc-emulator/providers/Microsoft.KeyVault/vaults/%s",
             name);
    if (dd != NULL) {
        size_t n = strlen(dd) + strlen(name) + 16;
        v->dir = malloc(n);
        if (v->dir == NULL) {
            vault_free(v);
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        }
        snprintf(v->dir, n, "%s/keyvault/%s", dd, name);
    }
    rc = kv_load(v, ei);
    if (rc == CLC_OK)
        rc = kv_plain_load(v, ei);
    if (rc != CLC_OK) {
        vault_free(v);
        return clc_err_wrap(ei, rc, "vault %s", name);
    }
    /* Registered before it listens: requests may come at once. */
    s->vaults[s->nvaults++] = v;
    snprintf(key, sizeof key, "keyvault/%s", name);
    rc = emu_service_add(s->e, key, &kv_def, port, v, ei);
    if (rc != CLC_OK)
        return rc;
    url = emu_service_url(s->e, key);
    snprintf(v->base, sizeof v->base, "%s", url ? url : "");
    return CLC_OK;
}

static enum clc_err mount_vaults(struct kv_service *s, struct clc_errinfo *ei)
{
    const cJSON *vaults = cJSON_GetObjectItemCaseSensitive(emu_config(s->e), "vaults");
    const cJSON *it;

    if (vaults == NULL)
        return vault_add(s, "certlc", emu_config_port(s->e, "keyvault"), ei);
    if (!cJSON_IsArray(vaults) || cJSON_GetArraySize(vaults) == 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "'vaults' must be a non-empty array of {\"name\": ..., \"port\": ...}");
    cJSON_ArrayForEach(it, vaults)
    {
        const char *name = NULL;
        int64_t port = 0;
        const cJSON *f;
        if (!cJSON_IsObject(it) || clc_json_str(it, "name", &name, ei) != CLC_OK ||
            clc_json_int_opt(it, "port", 0, &port, ei) != CLC_OK)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "'vaults': each entry is {\"name\": string, \"port\": integer}");
        cJSON_ArrayForEach(f, it)
        {
            if (strcmp(f->string, "name") != 0 && strcmp(f->string, "port") != 0)
                return clc_errf(ei, CLC_ERR_CONFIG, "'vaults': unknown key '%.64s'", f->string);
        }
        if (!vault_name_ok(name))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "'vaults': name '%.64s' must be 3-24 characters of a-z, 0-9 and "
                            "'-', starting with a letter",
                            name);
        if (port < 0 || port > 65535)
            return clc_errf(ei, CLC_ERR_CONFIG, "'vaults': port of '%s' out of range", name);
        for (size_t i = 0; i < s->nvaults; i++)
            if (strcmp(s->vaults[i]->name, name) == 0)
                return clc_errf(ei, CLC_ERR_CONFIG, "'vaults': '%s' given twice", name);
        enum clc_err rc = vault_add(s, name, (int)port, ei);
        if (rc != CLC_OK)
            return rc;
    }
    return CLC_OK;
}

enum clc_err emu_keyvault_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct kv_service *s = calloc(1, sizeof *s);
    enum clc_err rc;

    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "keyvault: out of memory");
    s->e = e;
    pthread_mutex_init(&s->x5c.mu, NULL);
    rc = emu_at_stop(e, service_free, s);
    if (rc != CLC_OK) {
        free(s);
        return clc_errf(ei, rc, "keyvault: cannot register its stop hook");
    }
    rc = mount_vaults(s, ei);
    if (rc == CLC_OK)
        rc = kv_control_mount(s, ei);
    if (rc == CLC_OK)
        rc = kv_plain_mount(s, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "keyvault");
    return CLC_OK;
}
