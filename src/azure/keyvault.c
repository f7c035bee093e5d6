/* Key Vault client lifecycle: options checked and copied, URLs built for
 * operations, names validated before anything is sent, and which vault a
 * configuration means (keyvault.* keys). */
#include "azure/keyvault_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

const struct clc_config_key clc_kv_config_keys[] = {
    {"keyvault.url", CLC_CFG_STR,
     "URL of the vault when only one is used (https://NAME.vault.azure.net)"},
    {"keyvault.vaults.*", CLC_CFG_STR,
     "named vaults: keyvault.vaults.NAME = URL (choose with --vault)"},
    {"keyvault.default_vault", CLC_CFG_STR, "name under keyvault.vaults used when none is chosen"},
    {"keyvault.api_version", CLC_CFG_STR, "Key Vault REST api-version: 7.5 (default) or 7.4"},
    {"keyvault.verify_challenge_resource", CLC_CFG_BOOL,
     "the challenge's resource must be a DNS suffix of the vault host (default true)"},
};
const size_t clc_kv_config_nkeys = sizeof clc_kv_config_keys / sizeof clc_kv_config_keys[0];

int clc_kv_name_valid(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > CLC_KV_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!(c < 0x80 && (isalnum(c) || c == '-')))
            return 0;
    }
    return 1;
}

enum clc_err clc_kvi_check_name(const struct clc_kv *kv, const char *op, const char *name,
                                const char *version, struct clc_errinfo *ei)
{
    if (!clc_kv_name_valid(name))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "key vault '%s': %s: certificate name '%.40s%s' is not valid (1-%d "
                        "letters, digits and '-')",
                        kv->name, op, name ? name : "", name && strlen(name) > 40 ? "..." : "",
                        CLC_KV_NAME_MAX);
    if (version && *version) {
        size_t n = strlen(version);
        int ok = n <= 64;
        for (size_t i = 0; ok && i < n; i++)
            ok = (unsigned char)version[i] < 0x80 && isalnum((unsigned char)version[i]);
        if (!ok)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "key vault '%s': %s '%s': version '%.40s' is not valid", kv->name, op,
                            name, version);
    }
    return CLC_OK;
}

/* Host (lower-case) and port of an https URL; 0 unless https with a host. */
static int url_host_port(const char *url, char *host, size_t hostlen, long *port, int *has_path)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *h = NULL, *p = NULL, *path = NULL;
    int ok = 0;

    if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &p, CURLU_DEFAULT_PORT) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK)
        goto out;
    if (strcasecmp(scheme, "https") != 0 || strlen(h) >= hostlen)
        goto out;
    for (size_t i = 0; h[i]; i++)
        host[i] = (char)tolower((unsigned char)h[i]);
    host[strlen(h)] = '\0';
    *port = strtol(p, NULL, 10);
    if (has_path)
        *has_path = !(path[0] == '\0' || strcmp(path, "/") == 0);
    ok = 1;
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(p);
    curl_free(path);
    curl_url_cleanup(u);
    return ok;
}

int clc_kvi_same_vault(const struct clc_kv *kv, const char *url)
{
    char host[256];
    long port = 0;
    return url && url_host_port(url, host, sizeof host, &port, NULL) &&
           strcmp(host, kv->host) == 0 && port == kv->port;
}

enum clc_err clc_kv_new(const struct clc_kv_opts *opts, const struct clc_http_opts *http_opts,
                        struct clc_auth *auth, struct clc_kv **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_kv *kv = NULL;
    struct clc_http_opts ho;
    int has_path = 0;

    *out = NULL;
    if (!opts || !opts->vault_url || !auth)
        return clc_errf(ei, CLC_ERR_INVALID, "key vault: a vault URL and credentials are needed");
    const char *api = opts->api_version ? opts->api_version : "7.5";
    if (strcmp(api, "7.5") != 0 && strcmp(api, "7.4") != 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "key vault: api-version '%.20s' is not 7.5 or 7.4",
                        api);
    kv = calloc(1, sizeof *kv);
    if (!kv)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (strlen(opts->vault_url) > 512 ||
        !url_host_port(opts->vault_url, kv->host, sizeof kv->host, &kv->port, &has_path) ||
        has_path || strchr(opts->vault_url, '?')) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "key vault: URL '%.200s' is not https://HOST[:PORT] (tokens only go over "
                      "https, and the URL has no path)",
                      opts->vault_url);
        goto out;
    }
    kv->url = strdup(opts->vault_url);
    if (kv->url && kv->url[strlen(kv->url) - 1] == '/')
        kv->url[strlen(kv->url) - 1] = '\0';
    if (opts->vault_name) {
        kv->name = strdup(opts->vault_name);
    } else {
        /* myvault.vault.azure.net -> "myvault"; an address stays whole. */
        size_t hl = strlen(kv->host);
        int named = hl > 0 && isalpha((unsigned char)kv->host[hl - 1]);
        kv->name = strndup(kv->host, named ? strcspn(kv->host, ".") : hl);
    }
    if (!kv->url || !kv->name) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    snprintf(kv->api_version, sizeof kv->api_version, "%s", api);
    kv->verify_resource = !opts->disable_challenge_resource_verification;
    kv->max_resp = opts->max_response_bytes ? opts->max_response_bytes : CLC_KV_RESPONSE_MAX;
    kv->max_pages = opts->max_pages > 0 ? opts->max_pages : KV_DEFAULT_PAGES;
    if (opts->retry)
        kv->retry = *opts->retry;
    else
        clc_retry_policy_default(&kv->retry);
    kv->auth = auth;
    memset(&ho, 0, sizeof ho);
    if (http_opts)
        ho = *http_opts;
    if (!ho.max_response_bytes || ho.max_response_bytes > kv->max_resp)
        ho.max_response_bytes = kv->max_resp;
    rc = clc_http_new(&ho, &kv->http, ei);
    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc, "key vault '%s'", kv->name);
        goto out;
    }
    *out = kv;
    kv = NULL;
out:
    clc_kv_free(kv);
    return rc;
}

void clc_kv_free(struct clc_kv *kv)
{
    if (!kv)
        return;
    clc_http_free(kv->http);
    free(kv->url);
    free(kv->name);
    free(kv);
}

const char *clc_kv_vault_name(const struct clc_kv *kv)
{
    return kv->name;
}

const char *clc_kv_vault_url(const struct clc_kv *kv)
{
    return kv->url;
}

enum clc_err clc_kvi_url(const struct clc_kv *kv, char *out, size_t n, const char *fmt, ...)
{
    char path[KV_URL_MAX];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof path)
        return CLC_ERR_LIMIT;
    k = snprintf(out, n, "%s%s%capi-version=%s", kv->url, path, strchr(path, '?') ? '&' : '?',
                 kv->api_version);
    return k < 0 || (size_t)k >= n ? CLC_ERR_LIMIT : CLC_OK;
}

/* Resolves which vault URL the configuration means; *label names it. */
static enum clc_err pick_vault(const struct clc_config *cfg, const char *name, const char **url,
                               const char **label, struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *dflt = NULL, *single = NULL;
    const cJSON *vaults = clc_config_node(cfg, "keyvault.vaults");

    *url = *label = NULL;
    if ((rc = clc_config_str(cfg, "keyvault.default_vault", NULL, &dflt, ei)) != CLC_OK ||
        (rc = clc_config_str(cfg, "keyvault.url", NULL, &single, ei)) != CLC_OK)
        return rc;
    if (!name && !dflt && single) {
        *url = single;
        return CLC_OK;
    }
    if (!name)
        name = dflt;
    if (!name && cJSON_GetArraySize(vaults) == 1)
        name = vaults->child->string;
    if (!name)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "no vault chosen: set keyvault.url, or keyvault.vaults with "
                        "keyvault.default_vault, or pass --vault NAME");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(vaults, name);
    if (!cJSON_IsString(v))
        return clc_errf(ei, CLC_ERR_CONFIG, "vault '%.60s' is not configured under keyvault.vaults",
                        name);
    *url = v->valuestring;
    *label = name;
    return CLC_OK;
}

enum clc_err clc_kv_from_config(const struct clc_config *cfg, const char *name,
                                const struct clc_http_opts *http_opts, struct clc_auth *auth,
                                struct clc_kv **out, struct clc_errinfo *ei)
{
    enum clc_err rc;
    struct clc_kv_opts o;
    int verify = 1;

    *out = NULL;
    memset(&o, 0, sizeof o);
    if ((rc = pick_vault(cfg, name, &o.vault_url, &o.vault_name, ei)) != CLC_OK ||
        (rc = clc_config_str(cfg, "keyvault.api_version", "7.5", &o.api_version, ei)) != CLC_OK ||
        (rc = clc_config_bool(cfg, "keyvault.verify_challenge_resource", 1, &verify, ei)) != CLC_OK)
        return rc;
    o.disable_challenge_resource_verification = !verify;
    return clc_kv_new(&o, http_opts, auth, out, ei);
}
