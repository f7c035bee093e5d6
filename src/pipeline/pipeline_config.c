/* The renewal pipeline's configuration: the renew.* keys (vaults accepted,
 * the queue and its credentials, poison and dead-letter storage, limits and
 * schedule, template -> CA mapping, the tags that steer a renewal), read and
 * checked once into struct clc_renew_settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure/keyvault.h"
#include "azure/storage.h"
#include "pipeline/renew.h"

const struct clc_config_key clc_renew_config_keys[] = {
    {"renew.vaults", CLC_CFG_ARR,
     "vault names whose events are accepted (default: every vault under keyvault.*)"},
    {"renew.queue.url", CLC_CFG_STR,
     "queue service URL (default https://ACCOUNT.queue.core.windows.net)"},
    {"renew.queue.account", CLC_CFG_STR, "storage account of the queue (shared_key, default URLs)"},
    {"renew.queue.name", CLC_CFG_STR, "the work queue (default certlc)"},
    {"renew.queue.auth", CLC_CFG_STR, "bearer (auth.*, default), shared_key or sas"},
    {"renew.queue.key_file", CLC_CFG_STR, "file holding the storage account key (shared_key)"},
    {"renew.queue.key_env", CLC_CFG_STR, "variable holding the storage account key (shared_key)"},
    {"renew.queue.sas_file", CLC_CFG_STR, "file holding a SAS token (sas)"},
    {"renew.queue.sas_env", CLC_CFG_STR, "variable holding a SAS token (sas)"},
    {"renew.poison_queue", CLC_CFG_STR, "where failed messages go (default certlc-poison)"},
    {"renew.deadletter.url", CLC_CFG_STR,
     "blob service URL of Event Grid's dead-letter container (default from the account)"},
    {"renew.deadletter.container", CLC_CFG_STR,
     "dead-letter container (default certlc-deadletter)"},
    {"renew.max_dequeue", CLC_CFG_INT, "failed attempts before the poison queue (default 5)"},
    {"renew.visibility_timeout_s", CLC_CFG_INT, "lease on a message while working (default 300)"},
    {"renew.schedule_s", CLC_CFG_INT, "certlc worker drains at least this often (default 900)"},
    {"renew.retry_base_s", CLC_CFG_INT, "first backoff after a failure (default 60)"},
    {"renew.retry_max_s", CLC_CFG_INT, "longest backoff (default 3600)"},
    {"renew.pending_poll_s", CLC_CFG_INT, "ask the CA about a pending request after (default 900)"},
    {"renew.conflict_delay_s", CLC_CFG_INT,
     "wait before taking over a pending operation no message owns (default 60)"},
    {"renew.near_expiry_days", CLC_CFG_INT, "renew when fewer days are left (default 30)"},
    {"renew.lifetime_percent", CLC_CFG_INT,
     "...or less than this share of the lifetime (default 33; short-lived certificates)"},
    {"renew.cas", CLC_CFG_OBJ, "template name or OID -> CA name under ca.*"},
    {"renew.default_ca", CLC_CFG_STR, "CA when no mapping applies"},
    {"renew.default_template", CLC_CFG_STR, "template when the certificate names none"},
    {"renew.ca_tag", CLC_CFG_STR, "tag that names the CA (default CertificateAuthority)"},
    {"renew.template_tag", CLC_CFG_STR,
     "tag that names the template (default CertificateTemplate)"},
    {"renew.skip_tag", CLC_CFG_STR, "tag that means leave alone (default CertlcSkip)"},
    {"renew.recipient_tag", CLC_CFG_STR, "tag with the e-mail recipients (default Recipient)"},
    {"renew.pending_tag", CLC_CFG_STR,
     "tag where a pending CA request is shared between messages (default CertlcPendingRequest)"},
    {"renew.admin_recipients", CLC_CFG_STR, "failure notices also go to these addresses"},
};
const size_t clc_renew_config_nkeys =
    sizeof clc_renew_config_keys / sizeof clc_renew_config_keys[0];

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Copies a string setting; *out stays NULL only when absent with no default. */
static enum clc_err str_key(const struct clc_config *cfg, const char *key, const char *dflt,
                            char **out, struct clc_errinfo *ei)
{
    const char *v = NULL;
    enum clc_err rc = clc_config_str(cfg, key, dflt, &v, ei);
    if (rc != CLC_OK)
        return rc;
    if (v && !*v)
        return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s' must not be empty (%s)", key,
                        clc_config_origin(cfg, key));
    *out = dup_or_null(v);
    return v && !*out ? CLC_ERR_NOMEM : CLC_OK;
}

static enum clc_err add_vault(struct clc_renew_settings *s, const char *name, const char *url)
{
    struct clc_renew_vault *v = realloc(s->vaults, (s->nvaults + 1) * sizeof *v);
    if (!v)
        return CLC_ERR_NOMEM;
    s->vaults = v;
    v[s->nvaults].name = strdup(name);
    v[s->nvaults].url = strdup(url);
    s->nvaults++;
    return v[s->nvaults - 1].name && v[s->nvaults - 1].url ? CLC_OK : CLC_ERR_NOMEM;
}

/* The first DNS label of a URL's host ("kv1" of https://kv1.vault.azure.net). */
static int host_label(const char *url, char *out, size_t n)
{
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    size_t k = 0;
    while (p[k] && p[k] != '.' && p[k] != ':' && p[k] != '/' && k + 1 < n) {
        out[k] = p[k];
        k++;
    }
    out[k] = '\0';
    /* An IP address (a test vault on 127.0.0.1) has no name to offer. */
    return k > 0 && strspn(out, "0123456789") != k;
}

/* Every vault under keyvault.*: named entries under their names (and their
 * host's first label, which is what events call them in Azure), the single
 * keyvault.url under its label. */
struct known_vault {
    char name[128];
    const char *url;
};

static size_t known_vaults(const struct clc_config *cfg, struct known_vault *out, size_t max)
{
    size_t n = 0;
    const cJSON *vaults = clc_config_node(cfg, "keyvault.vaults");
    const cJSON *m;
    const char *single = NULL;

    cJSON_ArrayForEach(m, vaults)
    {
        if (!cJSON_IsString(m) || !m->string || n + 2 > max)
            continue;
        snprintf(out[n].name, sizeof out[n].name, "%s", m->string);
        out[n++].url = m->valuestring;
        if (host_label(m->valuestring, out[n].name, sizeof out[n].name) &&
            strcasecmp(out[n].name, m->string) != 0)
            out[n++].url = m->valuestring;
    }
    if (clc_config_str(cfg, "keyvault.url", NULL, &single, NULL) == CLC_OK && single && n < max &&
        host_label(single, out[n].name, sizeof out[n].name))
        out[n++].url = single;
    return n;
}

static enum clc_err read_vaults(const struct clc_config *cfg, struct clc_renew_settings *s,
                                struct clc_errinfo *ei)
{
    enum { KMAX = 64 };
    struct known_vault known[KMAX];
    size_t nk = known_vaults(cfg, known, KMAX);
    const cJSON *allow = clc_config_node(cfg, "renew.vaults");
    const cJSON *m;
    enum clc_err rc;

    if (!allow) {
        if (nk == 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "no vault configured: set keyvault.url or keyvault.vaults");
        for (size_t i = 0; i < nk; i++)
            if (!clc_renew_vault_find(s, known[i].name) &&
                (rc = add_vault(s, known[i].name, known[i].url)) != CLC_OK)
                return rc;
        return CLC_OK;
    }
    cJSON_ArrayForEach(m, allow)
    {
        if (!cJSON_IsString(m) || !*m->valuestring)
            return clc_errf(ei, CLC_ERR_CONFIG, "config key 'renew.vaults': expected vault names");
        size_t i = 0;
        while (i < nk && strcasecmp(known[i].name, m->valuestring) != 0)
            i++;
        if (i == nk)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "renew.vaults: vault '%.60s' has no URL under keyvault.vaults or "
                            "keyvault.url",
                            m->valuestring);
        if (!clc_renew_vault_find(s, m->valuestring) &&
            (rc = add_vault(s, m->valuestring, known[i].url)) != CLC_OK)
            return rc;
    }
    if (s->nvaults == 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "renew.vaults is empty: no event would be accepted");
    return CLC_OK;
}

static int ca_configured(const struct clc_config *cfg, const char *name)
{
    const cJSON *cas = clc_config_node(cfg, "ca");
    return cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(cas, name));
}

static enum clc_err read_cas(const struct clc_config *cfg, struct clc_renew_settings *s,
                             struct clc_errinfo *ei)
{
    const cJSON *map = clc_config_node(cfg, "renew.cas");
    const cJSON *m;
    size_t n = (size_t)cJSON_GetArraySize(map);

    if (n > 1000)
        return clc_errf(ei, CLC_ERR_CONFIG, "renew.cas: more than 1000 entries");
    if (n) {
        s->cas = calloc(n, sizeof *s->cas);
        if (!s->cas)
            return CLC_ERR_NOMEM;
    }
    cJSON_ArrayForEach(m, map)
    {
        if (!cJSON_IsString(m) || !*m->valuestring || !m->string || !*m->string)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "renew.cas: each member maps a template to a CA name (string)");
        if (!ca_configured(cfg, m->valuestring))
            return clc_errf(ei, CLC_ERR_CONFIG, "renew.cas.%.60s: CA '%.60s' is not under ca.*",
                            m->string, m->valuestring);
        struct clc_renew_camap *c = &s->cas[s->ncas++];
        c->template_name = strdup(m->string);
        c->ca = strdup(m->valuestring);
        if (!c->template_name || !c->ca)
            return CLC_ERR_NOMEM;
    }
    if (s->default_ca && !ca_configured(cfg, s->default_ca))
        return clc_errf(ei, CLC_ERR_CONFIG, "renew.default_ca: CA '%.60s' is not under ca.*",
                        s->default_ca);
    return CLC_OK;
}

static enum clc_err read_storage(const struct clc_config *cfg, struct clc_renew_settings *s,
                                 struct clc_errinfo *ei)
{
    static const char *const kinds[] = {"bearer", "shared_key", "sas"};
    enum clc_err rc;
    int kind = 0;
    char url[300];

    if ((rc = str_key(cfg, "renew.queue.account", NULL, &s->account, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.queue.url", NULL, &s->queue_url, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.queue.name", "certlc", &s->queue_name, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.poison_queue", "certlc-poison", &s->poison_queue, ei)) !=
            CLC_OK ||
        (rc = str_key(cfg, "renew.deadletter.url", NULL, &s->blob_url, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.deadletter.container", "certlc-deadletter",
                      &s->deadletter_container, ei)) != CLC_OK ||
        (rc = clc_config_enum(cfg, "renew.queue.auth", "bearer", kinds, 3, &kind, ei)) != CLC_OK)
        return rc;
    s->queue_auth = (enum clc_renew_queue_auth)kind;
    if (!s->queue_url) {
        if (!s->account)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "the work queue needs renew.queue.url or renew.queue.account");
        snprintf(url, sizeof url, "https://%s.queue.core.windows.net", s->account);
        if (!(s->queue_url = strdup(url)))
            return CLC_ERR_NOMEM;
    }
    if (!s->blob_url && s->account) {
        snprintf(url, sizeof url, "https://%s.blob.core.windows.net", s->account);
        if (!(s->blob_url = strdup(url)))
            return CLC_ERR_NOMEM;
    }
    if (s->queue_auth == CLC_RENEW_QAUTH_SHARED_KEY && !s->account)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "renew.queue.auth shared_key needs renew.queue.account");
    if (!clc_storage_name_ok(s->queue_name) || !clc_storage_name_ok(s->poison_queue))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "renew.queue.name / renew.poison_queue: 3-63 of a-z, 0-9, '-'");
    if (strcmp(s->queue_name, s->poison_queue) == 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "the poison queue must not be the work queue");
    if (!clc_storage_name_ok(s->deadletter_container))
        return clc_errf(ei, CLC_ERR_CONFIG, "renew.deadletter.container: not a container name");
    return CLC_OK;
}

enum clc_err clc_renew_settings_from_config(const struct clc_config *cfg,
                                            struct clc_renew_settings *s, struct clc_errinfo *ei)
{
    enum clc_err rc;
    int64_t days = 0;

    memset(s, 0, sizeof *s);
    if ((rc = clc_config_str(cfg, "keyvault.api_version", "7.5", &s->kv_api_version, ei)) !=
            CLC_OK ||
        (rc = clc_config_bool(cfg, "keyvault.verify_challenge_resource", 1, &s->kv_verify_resource,
                              ei)) != CLC_OK ||
        (rc = read_vaults(cfg, s, ei)) != CLC_OK || (rc = read_storage(cfg, s, ei)) != CLC_OK ||
        (rc = clc_config_int(cfg, "renew.max_dequeue", 5, 1, 1000, &s->max_dequeue, ei)) !=
            CLC_OK ||
        (rc = clc_config_int(cfg, "renew.visibility_timeout_s", 300, 30, 24 * 3600,
                             &s->visibility_s, ei)) != CLC_OK ||
        (rc = clc_config_int(cfg, "renew.schedule_s", 900, 1, 7 * 86400, &s->schedule_s, ei)) !=
            CLC_OK ||
        (rc = clc_config_int(cfg, "renew.retry_base_s", 60, 1, 86400, &s->retry_base_s, ei)) !=
            CLC_OK ||
        (rc = clc_config_int(cfg, "renew.retry_max_s", 3600, 1, 7 * 86400, &s->retry_max_s, ei)) !=
            CLC_OK ||
        (rc = clc_config_int(cfg, "renew.pending_poll_s", 900, 10, 7 * 86400, &s->pending_poll_s,
                             ei)) != CLC_OK ||
        (rc = clc_config_int(cfg, "renew.conflict_delay_s", 60, 1, 86400, &s->conflict_delay_s,
                             ei)) != CLC_OK ||
        (rc = clc_config_int(cfg, "renew.near_expiry_days", 30, 1, 3650, &days, ei)) != CLC_OK ||
        (rc = clc_config_int(cfg, "renew.lifetime_percent", 33, 1, 100, &s->lifetime_percent,
                             ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.default_ca", NULL, &s->default_ca, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.default_template", NULL, &s->default_template, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.ca_tag", "CertificateAuthority", &s->ca_tag, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.template_tag", "CertificateTemplate", &s->template_tag, ei)) !=
            CLC_OK ||
        (rc = str_key(cfg, "renew.skip_tag", "CertlcSkip", &s->skip_tag, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.recipient_tag", "Recipient", &s->recipient_tag, ei)) != CLC_OK ||
        (rc = str_key(cfg, "renew.pending_tag", "CertlcPendingRequest", &s->pending_tag, ei)) !=
            CLC_OK ||
        (rc = str_key(cfg, "renew.admin_recipients", NULL, &s->admin_recipients, ei)) != CLC_OK ||
        (rc = read_cas(cfg, s, ei)) != CLC_OK)
        goto out;
    s->near_expiry_s = days * 86400;
    if (s->retry_max_s < s->retry_base_s)
        s->retry_max_s = s->retry_base_s;
out:
    if (rc != CLC_OK)
        clc_renew_settings_cleanup(s);
    return rc;
}

void clc_renew_settings_cleanup(struct clc_renew_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nvaults; i++) {
        free(s->vaults[i].name);
        free(s->vaults[i].url);
    }
    free(s->vaults);
    for (size_t i = 0; i < s->ncas; i++) {
        free(s->cas[i].template_name);
        free(s->cas[i].ca);
    }
    free(s->cas);
    free(s->queue_url);
    free(s->queue_name);
    free(s->poison_queue);
    free(s->blob_url);
    free(s->deadletter_container);
    free(s->account);
    free(s->default_ca);
    free(s->default_template);
    free(s->ca_tag);
    free(s->template_tag);
    free(s->skip_tag);
    free(s->recipient_tag);
    free(s->pending_tag);
    free(s->admin_recipients);
    memset(s, 0, sizeof *s);
}

const struct clc_renew_vault *clc_renew_vault_find(const struct clc_renew_settings *s,
                                                   const char *name)
{
    for (size_t i = 0; name && i < s->nvaults; i++)
        if (strcasecmp(s->vaults[i].name, name) == 0)
            return &s->vaults[i];
    return NULL;
}

const char *clc_renew_ca_for(const struct clc_renew_settings *s, const char *template_name)
{
    for (size_t i = 0; template_name && i < s->ncas; i++)
        if (strcasecmp(s->cas[i].template_name, template_name) == 0)
            return s->cas[i].ca;
    return s->default_ca;
}
