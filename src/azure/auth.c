/* The Entra ID auth client's front: options and configuration, validation
 * of what each method needs, and the per-scope token cache (refreshed ahead
 * of expiry, dropped on 401). The requests themselves are in auth_flows.c. */
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "azure/auth.h"
#include "azure/auth_int.h"
#include "core/log.h"
#include "crypto/x509.h"

#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define DEFAULT_IMDS "http://169.254.169.254/metadata/identity/oauth2/token"
#define DEFAULT_ARC_ENDPOINT "http://localhost:40342/metadata/identity/oauth2/token"
#define DEFAULT_ARC_KEY_DIR "/var/opt/azcmagent/tokens"
#define DEFAULT_MARGIN_S 300

static const char *const method_names[CLC_AUTH__COUNT] = {
    "client_secret", "client_certificate", "managed_identity", "app_service",
    "arc",           "workload_identity",
};

const char *clc_auth_method_name(enum clc_auth_method m)
{
    return (unsigned)m < CLC_AUTH__COUNT ? method_names[m] : "unknown";
}

int clc_auth_method_parse(const char *s)
{
    for (int i = 0; s && i < CLC_AUTH__COUNT; i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}

int64_t clc_auth_now(const struct clc_auth *a)
{
    return clc_clock_now(a->has_clock ? &a->clock : NULL);
}

void clc_auth_set_retry_policy(struct clc_auth *a, const struct clc_retry_policy *p)
{
    pthread_mutex_lock(&a->mu);
    a->retry = *p;
    pthread_mutex_unlock(&a->mu);
}

static enum clc_err dup_opt(const char *s, const char *dflt, char **out)
{
    *out = NULL;
    if (!s || !*s)
        s = dflt;
    if (!s)
        return CLC_OK;
    *out = strdup(s);
    return *out ? CLC_OK : CLC_ERR_NOMEM;
}

/* Tenant ids go into the token URL: a GUID or a domain name, nothing else. */
static int tenant_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 253)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* Loads the key and certificate and checks that they belong together, so a
 * mismatch is a configuration error at start, not an AADSTS700027 later. */
static enum clc_err load_certificate(struct clc_auth *a, const struct clc_auth_opts *o,
                                     struct clc_errinfo *ei)
{
    X509 *cert = NULL;
    enum clc_err err = clc_signer_load_pem(o->key_file, &a->signer, ei);
    if (err)
        goto out;
    if (strcmp(clc_signer_alg(a->signer), "RS256") != 0) {
        err = clc_errf(ei, CLC_ERR_CONFIG, "key_file %s: client assertions need an RSA key",
                       o->key_file);
        goto out;
    }
    err = clc_x509_load_pem_file(o->certificate_file, &cert, ei);
    if (err)
        goto out;
    if (EVP_PKEY_eq(X509_get0_pubkey(cert), clc_signer_pkey(a->signer)) != 1) {
        err = clc_errf(ei, CLC_ERR_CONFIG, "certificate_file %s does not match key_file %s",
                       o->certificate_file, o->key_file);
        goto out;
    }
    if (clc_x509_x5t(cert, &a->x5t))
        err = clc_errf(ei, CLC_ERR_CRYPTO, "certificate_file %s: thumbprint", o->certificate_file);
out:
    X509_free(cert);
    return err;
}

static enum clc_err check_opts(const struct clc_auth_opts *o, struct clc_errinfo *ei)
{
    const char *m = clc_auth_method_name(o->method);
    int v2 = o->method == CLC_AUTH_CLIENT_SECRET || o->method == CLC_AUTH_CLIENT_CERTIFICATE ||
             o->method == CLC_AUTH_WORKLOAD_IDENTITY;
    if ((unsigned)o->method >= CLC_AUTH__COUNT)
        return clc_errf(ei, CLC_ERR_INVALID, "auth: unknown method %d", (int)o->method);
    if (o->refresh_margin_s < 0 || o->refresh_margin_s > 86400)
        return clc_errf(ei, CLC_ERR_INVALID, "auth: refresh_margin_s must be 0..86400");
    if (v2) {
        if (!o->tenant_id || !tenant_ok(o->tenant_id))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "auth method %s needs a tenant_id (GUID or "
                            "domain)",
                            m);
        if (!o->client_id || !*o->client_id)
            return clc_errf(ei, CLC_ERR_CONFIG, "auth method %s needs a client_id", m);
        if (o->authority_host && strncmp(o->authority_host, "https://", 8) != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "auth: authority_host must be an https URL");
    }
    switch (o->method) {
    case CLC_AUTH_CLIENT_SECRET:
        if (!o->client_secret || clc_secret_len(o->client_secret) == 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "auth method client_secret needs a client secret");
        break;
    case CLC_AUTH_CLIENT_CERTIFICATE:
        if (!o->certificate_file || !o->key_file)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "auth method client_certificate needs certificate_file and key_file");
        break;
    case CLC_AUTH_WORKLOAD_IDENTITY:
        if (!o->federated_token_file || !*o->federated_token_file)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "auth method workload_identity needs federated_token_file");
        break;
    case CLC_AUTH_APP_SERVICE:
        if (!o->identity_endpoint || !o->identity_header)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "auth method app_service needs identity_endpoint and identity_header");
        /* It is sent as a header value: no line breaks or controls. */
        for (size_t i = 0; i < clc_secret_len(o->identity_header); i++) {
            unsigned char c = (unsigned char)clc_secret_reveal(o->identity_header)[i];
            if (c < 0x20 || c == 0x7f)
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "auth: identity_header holds control characters");
        }
        break;
    default:
        break;
    }
    if (o->imds_endpoint && !http_url(o->imds_endpoint))
        return clc_errf(ei, CLC_ERR_CONFIG, "auth: imds_endpoint is not an http(s) URL");
    if (o->identity_endpoint && !http_url(o->identity_endpoint))
        return clc_errf(ei, CLC_ERR_CONFIG, "auth: identity_endpoint is not an http(s) URL");
    return CLC_OK;
}

enum clc_err clc_auth_new(const struct clc_auth_opts *o, const struct clc_http_opts *http_opts,
                          struct clc_auth **out, struct clc_errinfo *ei)
{
    enum clc_err err;
    struct clc_http_opts hdefault = {0};
    *out = NULL;
    if (!o)
        return clc_errf(ei, CLC_ERR_INVALID, "auth: no options");
    err = check_opts(o, ei);
    if (err)
        return err;

    struct clc_auth *a = calloc(1, sizeof *a);
    if (!a)
        return clc_errf(ei, CLC_ERR_NOMEM, "auth client");
    pthread_mutex_init(&a->mu, NULL);
    a->method = o->method;
    a->refresh_margin_s = o->refresh_margin_s ? o->refresh_margin_s : DEFAULT_MARGIN_S;
    if (!http_opts)
        http_opts = &hdefault;
    if (http_opts->clock) {
        a->clock = *http_opts->clock;
        a->has_clock = 1;
    }
    clc_retry_policy_default(&a->retry);

    const char *ident_dflt = o->method == CLC_AUTH_ARC ? DEFAULT_ARC_ENDPOINT : NULL;
    if (dup_opt(o->tenant_id, NULL, &a->tenant_id) || dup_opt(o->client_id, NULL, &a->client_id) ||
        dup_opt(o->imds_endpoint, DEFAULT_IMDS, &a->imds_endpoint) ||
        dup_opt(o->identity_endpoint, ident_dflt, &a->identity_endpoint) ||
        dup_opt(o->arc_key_dir, DEFAULT_ARC_KEY_DIR, &a->arc_key_dir) ||
        dup_opt(o->federated_token_file, NULL, &a->federated_token_file) ||
        (o->client_secret && clc_secret_dup(o->client_secret, &a->client_secret)) ||
        (o->identity_header && clc_secret_dup(o->identity_header, &a->identity_header))) {
        err = clc_errf(ei, CLC_ERR_NOMEM, "auth options");
        goto out;
    }
    if (a->tenant_id) {
        const char *host =
            o->authority_host && *o->authority_host ? o->authority_host : DEFAULT_AUTHORITY;
        size_t hl = strlen(host);
        while (hl > 0 && host[hl - 1] == '/')
            hl--;
        size_t n = hl + strlen(a->tenant_id) + 32;
        a->token_url = malloc(n);
        if (!a->token_url) {
            err = clc_errf(ei, CLC_ERR_NOMEM, "auth options");
            goto out;
        }
        snprintf(a->token_url, n, "%.*s/%s/oauth2/v2.0/token", (int)hl, host, a->tenant_id);
    }
    if (o->method == CLC_AUTH_CLIENT_CERTIFICATE) {
        err = load_certificate(a, o, ei);
        if (err)
            goto out;
    }
    err = clc_http_new(http_opts, &a->http, ei);
    if (err)
        goto out;
    *out = a;
    a = NULL;
out:
    clc_auth_free(a);
    return err;
}

enum clc_auth_method clc_auth_method_of(const struct clc_auth *a)
{
    return a->method;
}

static void entry_clear(struct clc_auth_entry *en)
{
    free(en->scope);
    clc_secret_free(en->token);
    en->scope = NULL;
    en->token = NULL;
    en->expires_on = 0;
}

static struct clc_auth_entry *cache_find(struct clc_auth *a, const char *scope)
{
    for (size_t i = 0; i < CLC_AUTH_CACHE_MAX; i++)
        if (a->cache[i].scope && strcmp(a->cache[i].scope, scope) == 0)
            return &a->cache[i];
    return NULL;
}

/* A free slot, else the one that expires first. */
static struct clc_auth_entry *cache_slot(struct clc_auth *a)
{
    struct clc_auth_entry *best = &a->cache[0];
    for (size_t i = 0; i < CLC_AUTH_CACHE_MAX; i++) {
        if (!a->cache[i].scope)
            return &a->cache[i];
        if (a->cache[i].expires_on < best->expires_on)
            best = &a->cache[i];
    }
    entry_clear(best);
    return best;
}

enum clc_err clc_auth_token(struct clc_auth *a, const char *scope, struct clc_secret **token,
                            int64_t *expires_on, struct clc_errinfo *ei)
{
    enum clc_err err = CLC_OK;
    struct clc_secret *fresh = NULL;
    int64_t exp = 0;
    *token = NULL;
    if (expires_on)
        *expires_on = 0;
    if (!a || !scope || !*scope || strlen(scope) > CLC_AUTH_SCOPE_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "auth: scope missing or over %d bytes",
                        CLC_AUTH_SCOPE_MAX);
    for (const char *p = scope; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return clc_errf(ei, CLC_ERR_INVALID, "auth: one scope, without spaces, per token");

    pthread_mutex_lock(&a->mu);
    int64_t now = clc_auth_now(a);
    struct clc_auth_entry *en = cache_find(a, scope);
    if (en && now < en->expires_on - a->refresh_margin_s) {
        if (clc_secret_dup(en->token, token))
            err = clc_errf(ei, CLC_ERR_NOMEM, "auth: token copy");
        else if (expires_on)
            *expires_on = en->expires_on;
        goto out;
    }
    err = clc_auth_fetch(a, scope, &fresh, &exp, ei);
    if (err)
        goto out;
    if (!en)
        en = cache_slot(a);
    else
        entry_clear(en);
    en->scope = strdup(scope);
    if (!en->scope || clc_secret_dup(fresh, token)) {
        entry_clear(en);
        err = clc_errf(ei, CLC_ERR_NOMEM, "auth: token cache");
        goto out;
    }
    en->token = fresh;
    en->expires_on = exp;
    fresh = NULL;
    if (expires_on)
        *expires_on = exp;
    clc_log(CLC_LOG_DEBUG, "auth.token_acquired", CLC_LS("method", clc_auth_method_name(a->method)),
            CLC_LS("scope", scope), CLC_LI("expires_on", exp), CLC_LSECRET("token", *token));
out:
    pthread_mutex_unlock(&a->mu);
    clc_secret_free(fresh);
    return err;
}

void clc_auth_invalidate(struct clc_auth *a, const char *scope)
{
    if (!a || !scope)
        return;
    pthread_mutex_lock(&a->mu);
    struct clc_auth_entry *en = cache_find(a, scope);
    if (en)
        entry_clear(en);
    pthread_mutex_unlock(&a->mu);
}

void clc_auth_free(struct clc_auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < CLC_AUTH_CACHE_MAX; i++)
        entry_clear(&a->cache[i]);
    clc_http_free(a->http);
    free(a->tenant_id);
    free(a->client_id);
    free(a->token_url);
    clc_secret_free(a->client_secret);
    clc_signer_free(a->signer);
    free(a->x5t);
    free(a->imds_endpoint);
    free(a->identity_endpoint);
    clc_secret_free(a->identity_header);
    free(a->arc_key_dir);
    free(a->federated_token_file);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* ---- configuration ---- */

const struct clc_config_key clc_auth_config_keys[] = {
    {"auth.method", CLC_CFG_STR,
     "auto|client_secret|client_certificate|managed_identity|app_service|arc|workload_identity"},
    {"auth.authority_host", CLC_CFG_STR,
     "Entra ID host (default https://login.microsoftonline.com)"},
    {"auth.tenant_id", CLC_CFG_STR, "directory (tenant) id"},
    {"auth.client_id", CLC_CFG_STR, "application id; user-assigned identity for managed identity"},
    {"auth.client_secret_file", CLC_CFG_STR, "file holding the client secret"},
    {"auth.client_secret_env", CLC_CFG_STR, "environment variable holding the client secret"},
    {"auth.certificate_file", CLC_CFG_STR, "PEM certificate registered on the application"},
    {"auth.key_file", CLC_CFG_STR, "PEM private key of that certificate"},
    {"auth.imds_endpoint", CLC_CFG_STR, "IMDS token URL (Azure VM managed identity)"},
    {"auth.identity_endpoint", CLC_CFG_STR, "App Service or Arc identity endpoint"},
    {"auth.identity_header_file", CLC_CFG_STR, "file holding the App Service identity header"},
    {"auth.identity_header_env", CLC_CFG_STR, "environment variable holding that header"},
    {"auth.arc_key_dir", CLC_CFG_STR, "directory of Arc challenge key files"},
    {"auth.federated_token_file", CLC_CFG_STR, "workload identity token file (re-read each time)"},
    {"auth.refresh_margin_s", CLC_CFG_INT, "refresh tokens this long before expiry (300)"},
};
const size_t clc_auth_config_nkeys = sizeof clc_auth_config_keys / sizeof clc_auth_config_keys[0];

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Configuration first, the standard environment variable second. */
static enum clc_err cfg_str(const struct clc_config *cfg, const char *key, const char *env,
                            const char **out, struct clc_errinfo *ei)
{
    enum clc_err err = clc_config_str(cfg, key, NULL, out, ei);
    if (!err && (!*out || !**out))
        *out = env ? env_nonempty(env) : NULL;
    return err;
}

/* A secret from <key>_file / <key>_env, else the standard variable; absent
 * leaves *out NULL without error. */
static enum clc_err cfg_secret(const struct clc_config *cfg, const char *key, const char *env,
                               struct clc_secret **out, struct clc_errinfo *ei)
{
    enum clc_err err = clc_config_secret(cfg, key, out, ei);
    if (err != CLC_ERR_NOT_FOUND)
        return err;
    if (env && env_nonempty(env)) {
        clc_errinfo_clear(ei);
        return clc_secret_from_env(env, out, ei);
    }
    clc_errinfo_clear(ei);
    return CLC_OK;
}

enum clc_err clc_auth_from_config(const struct clc_config *cfg,
                                  const struct clc_http_opts *http_opts, struct clc_auth **out,
                                  struct clc_errinfo *ei)
{
    static const char *const methods[] = {
        "auto",        "client_secret", "client_certificate", "managed_identity",
        "app_service", "arc",           "workload_identity"};
    enum clc_err err;
    struct clc_auth_opts o = {0};
    struct clc_secret *secret = NULL, *header = NULL;
    const char *imds_env = env_nonempty("IMDS_ENDPOINT");
    int m = 0;
    int64_t margin = 0;
    *out = NULL;

    if ((err = clc_config_enum(cfg, "auth.method", "auto", methods, 7, &m, ei)) ||
        (err =
             cfg_str(cfg, "auth.authority_host", "AZURE_AUTHORITY_HOST", &o.authority_host, ei)) ||
        (err = cfg_str(cfg, "auth.tenant_id", "AZURE_TENANT_ID", &o.tenant_id, ei)) ||
        (err = cfg_str(cfg, "auth.client_id", "AZURE_CLIENT_ID", &o.client_id, ei)) ||
        (err = cfg_str(cfg, "auth.certificate_file", NULL, &o.certificate_file, ei)) ||
        (err = cfg_str(cfg, "auth.key_file", NULL, &o.key_file, ei)) ||
        (err = cfg_str(cfg, "auth.imds_endpoint", NULL, &o.imds_endpoint, ei)) ||
        (err = cfg_str(cfg, "auth.identity_endpoint", "IDENTITY_ENDPOINT", &o.identity_endpoint,
                       ei)) ||
        (err = cfg_str(cfg, "auth.arc_key_dir", NULL, &o.arc_key_dir, ei)) ||
        (err = cfg_str(cfg, "auth.federated_token_file", "AZURE_FEDERATED_TOKEN_FILE",
                       &o.federated_token_file, ei)) ||
        (err = clc_config_int(cfg, "auth.refresh_margin_s", 0, 0, 86400, &margin, ei)) ||
        (err = cfg_secret(cfg, "auth.client_secret", NULL, &secret, ei)) ||
        (err = cfg_secret(cfg, "auth.identity_header", "IDENTITY_HEADER", &header, ei)))
        goto out;
    o.client_secret = secret;
    o.identity_header = header;
    o.refresh_margin_s = margin;

    if (m > 0) {
        o.method = (enum clc_auth_method)(m - 1);
    } else if (o.federated_token_file && o.tenant_id && o.client_id) {
        o.method = CLC_AUTH_WORKLOAD_IDENTITY;
    } else if (secret) {
        o.method = CLC_AUTH_CLIENT_SECRET;
    } else if (o.certificate_file && o.key_file) {
        o.method = CLC_AUTH_CLIENT_CERTIFICATE;
    } else if (o.identity_endpoint && !header && (imds_env || o.arc_key_dir)) {
        /* Arc sets IDENTITY_ENDPOINT and IMDS_ENDPOINT, but no header. */
        o.method = CLC_AUTH_ARC;
    } else if (o.identity_endpoint && header) {
        o.method = CLC_AUTH_APP_SERVICE;
    } else {
        o.method = CLC_AUTH_MANAGED_IDENTITY;
    }
    err = clc_auth_new(&o, http_opts, out, ei);
    if (err)
        clc_err_wrap(ei, err, "auth (method %s)", clc_auth_method_name(o.method));
out:
    clc_secret_free(secret);
    clc_secret_free(header);
    return err;
}
