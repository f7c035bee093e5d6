/* certlc sync settings: the Key Vault VM extension's settings JSON, taken as
 * the extension takes it, plus a "certlc" member for what the extension
 * lacks (layout, names, owner, modes, reload command). Every name that ends
 * up in a path is checked here, before anything touches the disk. */
#include <ctype.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/keyvault.h"
#include "core/file.h"
#include "core/json.h"
#include "pipeline/sync.h"
#include "pipeline/sync_int.h"

#define STORE_PATH_MAX 1024
#define ARG_MAX_BYTES 4096
#define DEFAULT_INTERVAL_S 3600
#define DEFAULT_KEEP 5
#define DEFAULT_RELOAD_TIMEOUT_S 60

int clc_sync_name_safe(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || s[0] == '.' || strstr(s, ".."))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

/* Refuses members outside allowed: the extension's own keys and ours. */
static enum clc_err check_members(const cJSON *o, const char *const *allowed, const char *where,
                                  struct clc_errinfo *ei)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, o)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++)
            ok = strcmp(m->string, allowed[i]) == 0;
        if (!ok)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: unknown member '%.60s'", where, m->string);
    }
    return CLC_OK;
}

static enum clc_err want_obj(const cJSON *parent, const char *key, const char *where,
                             const cJSON **out, struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(parent, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (!cJSON_IsObject(v))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.%s: expected an object, got %s", where, key,
                        clc_json_type_name(v));
    *out = v;
    return CLC_OK;
}

static enum clc_err opt_str(const cJSON *o, const char *key, const char *where, const char **out,
                            struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return CLC_OK; /* *out keeps its default */
    if (!cJSON_IsString(v))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.%s: expected a string, got %s", where, key,
                        clc_json_type_name(v));
    *out = v->valuestring;
    return CLC_OK;
}

static enum clc_err opt_bool(const cJSON *o, const char *key, const char *where, int *out,
                             struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    /* The extension's documents show booleans both as JSON and as strings. */
    if (cJSON_IsString(v) &&
        (!strcmp(v->valuestring, "true") || !strcmp(v->valuestring, "false"))) {
        *out = v->valuestring[0] == 't';
        return CLC_OK;
    }
    if (!cJSON_IsBool(v))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.%s: expected true or false, got %s", where, key,
                        clc_json_type_name(v));
    *out = cJSON_IsTrue(v);
    return CLC_OK;
}

/* A number, or a decimal string as the extension writes pollingIntervalInS. */
static enum clc_err opt_int(const cJSON *o, const char *key, const char *where, int64_t min,
                            int64_t max, int64_t *out, struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    int64_t n;
    struct clc_errinfo tmp;
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (clc_json_int_lenient(o, key, &n, &tmp) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.%s: expected a whole number", where, key);
    if (n < min || n > max)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.%s: %lld is outside %lld..%lld", where, key,
                        (long long)n, (long long)min, (long long)max);
    *out = n;
    return CLC_OK;
}

/* "0640": octal text only, so that 416 and 0640 cannot be confused. */
static enum clc_err opt_mode(const cJSON *o, const char *key, mode_t forbidden, mode_t *out,
                             struct clc_errinfo *ei)
{
    const char *s = NULL;
    char *end;
    enum clc_err rc = opt_str(o, key, "certlc", &s, ei);
    if (rc != CLC_OK || !s)
        return rc;
    errno = 0;
    long m = strtol(s, &end, 8);
    if (!*s || *end || errno || m < 0 || m > 0777)
        return clc_errf(ei, CLC_ERR_CONFIG, "certlc.%s: '%.20s' is not an octal mode like \"0600\"",
                        key, s);
    if ((mode_t)m & forbidden)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "certlc.%s: %04lo grants too much (bits %04o are not allowed)", key, m,
                        (unsigned)forbidden);
    *out = (mode_t)m;
    return CLC_OK;
}

static enum clc_err lookup_owner(const char *s, int group, unsigned *out, struct clc_errinfo *ei)
{
    char *end;
    char buf[4096];
    errno = 0;
    unsigned long n = strtoul(s, &end, 10);
    if (*s && !*end && !errno && n < 0x7fffffffUL) {
        *out = (unsigned)n;
        return CLC_OK;
    }
    if (group) {
        struct group g, *r = NULL;
        if (getgrnam_r(s, &g, buf, sizeof buf, &r) == 0 && r) {
            *out = (unsigned)r->gr_gid;
            return CLC_OK;
        }
    } else {
        struct passwd p, *r = NULL;
        if (getpwnam_r(s, &p, buf, sizeof buf, &r) == 0 && r) {
            *out = (unsigned)r->pw_uid;
            return CLC_OK;
        }
    }
    return clc_errf(ei, CLC_ERR_CONFIG, "certlc.%s: no such %s '%.60s'", group ? "group" : "owner",
                    group ? "group" : "user", s);
}

static enum clc_err parse_reload(const cJSON *r, const char *where, struct clc_sync_reload *out,
                                 struct clc_errinfo *ei)
{
    static const char *const keys[] = {"command", "timeoutS", NULL};
    enum clc_err rc;
    int64_t t = DEFAULT_RELOAD_TIMEOUT_S;
    if (!cJSON_IsObject(r))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.reload: expected an object", where);
    if ((rc = check_members(r, keys, "reload", ei)) != CLC_OK ||
        (rc = opt_int(r, "timeoutS", where, 1, 3600, &t, ei)) != CLC_OK)
        return rc;
    const cJSON *cmd = cJSON_GetObjectItemCaseSensitive(r, "command");
    int n = cJSON_GetArraySize(cmd);
    if (!cJSON_IsArray(cmd) || n < 1 || n > CLC_SYNC_ARGV_MAX)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s.reload.command: expected an array of 1 to %d strings (argv; no shell "
                        "is involved)",
                        where, CLC_SYNC_ARGV_MAX);
    const cJSON *a;
    int i = 0;
    cJSON_ArrayForEach(a, cmd)
    {
        if (!cJSON_IsString(a) || strlen(a->valuestring) > ARG_MAX_BYTES)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s.reload.command[%d]: expected a string of at "
                            "most %d bytes",
                            where, i, ARG_MAX_BYTES);
        if (i == 0 && a->valuestring[0] != '/')
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s.reload.command[0]: '%.100s' must be an absolute path (no PATH "
                            "search)",
                            where, a->valuestring);
        if (!(out->argv[i] = strdup(a->valuestring)))
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        i++;
    }
    out->argv[i] = NULL;
    out->timeout_s = (int)t;
    return CLC_OK;
}

static void reload_cleanup(struct clc_sync_reload *r)
{
    for (int i = 0; i < CLC_SYNC_ARGV_MAX && r->argv[i]; i++)
        free(r->argv[i]);
    memset(r, 0, sizeof *r);
}

static enum clc_err reload_copy(const struct clc_sync_reload *src, struct clc_sync_reload *dst)
{
    memset(dst, 0, sizeof *dst);
    dst->timeout_s = src->timeout_s;
    for (int i = 0; i < CLC_SYNC_ARGV_MAX && src->argv[i]; i++)
        if (!(dst->argv[i] = strdup(src->argv[i])))
            return CLC_ERR_NOMEM;
    return CLC_OK;
}

static enum clc_err set_file(const cJSON *files, const char *key, char *dst, size_t n,
                             struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(files, key);
    if (!v)
        return CLC_OK;
    if (cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0])) {
        dst[0] = '\0'; /* not written */
        return CLC_OK;
    }
    if (!cJSON_IsString(v) || !clc_sync_name_safe(v->valuestring, n - 1))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "certlc.files.%s: expected a plain file name ([A-Za-z0-9._-], no '/', "
                        "no '..', not starting with '.')",
                        key);
    snprintf(dst, n, "%s", v->valuestring);
    return CLC_OK;
}

/* The output members, shared by the certlc object and per-certificate ones. */
static enum clc_err parse_output(const cJSON *c, const char *where, struct clc_sync_output *o,
                                 struct clc_errinfo *ei)
{
    enum clc_err rc;
    const char *layout = NULL, *pwf = NULL;
    const cJSON *files = NULL, *reload;
    if (!c)
        return CLC_OK;
    if ((rc = opt_str(c, "layout", where, &layout, ei)) != CLC_OK ||
        (rc = opt_bool(c, "pkcs12", where, &o->pkcs12, ei)) != CLC_OK ||
        (rc = opt_str(c, "pkcs12PasswordFile", where, &pwf, ei)) != CLC_OK ||
        (rc = want_obj(c, "files", where, &files, ei)) != CLC_OK)
        return rc;
    if (layout && !strcmp(layout, "extension"))
        o->layout = CLC_SYNC_LAYOUT_EXTENSION;
    else if (layout && !strcmp(layout, "separate"))
        o->layout = CLC_SYNC_LAYOUT_SEPARATE;
    else if (layout)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.layout: '%.40s' is not extension or separate",
                        where, layout);
    if (pwf) {
        if (pwf[0] != '/')
            return clc_errf(ei, CLC_ERR_CONFIG, "%s.pkcs12PasswordFile: expected an absolute path",
                            where);
        free(o->pkcs12_pw_file);
        if (!(o->pkcs12_pw_file = strdup(pwf)))
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    if (files) {
        static const char *const keys[] = {"cert", "chain", "fullchain", "key", "pkcs12", NULL};
        if ((rc = check_members(files, keys, "certlc.files", ei)) != CLC_OK ||
            (rc = set_file(files, "cert", o->files.cert, sizeof o->files.cert, ei)) != CLC_OK ||
            (rc = set_file(files, "chain", o->files.chain, sizeof o->files.chain, ei)) != CLC_OK ||
            (rc = set_file(files, "fullchain", o->files.fullchain, sizeof o->files.fullchain,
                           ei)) != CLC_OK ||
            (rc = set_file(files, "key", o->files.key, sizeof o->files.key, ei)) != CLC_OK ||
            (rc = set_file(files, "pkcs12", o->files.pkcs12, sizeof o->files.pkcs12, ei)) != CLC_OK)
            return rc;
    }
    if ((reload = cJSON_GetObjectItemCaseSensitive(c, "reload")) && !cJSON_IsNull(reload)) {
        reload_cleanup(&o->reload);
        if ((rc = parse_reload(reload, where, &o->reload, ei)) != CLC_OK)
            return rc;
    }
    return CLC_OK;
}

/* The separate layout writes only distinct, meaningful names. */
static enum clc_err check_files(const struct clc_sync_output *o, const char *where,
                                struct clc_errinfo *ei)
{
    if (o->layout != CLC_SYNC_LAYOUT_SEPARATE)
        return CLC_OK;
    const char *n[] = {o->files.cert, o->files.chain, o->files.fullchain, o->files.key,
                       o->pkcs12 ? o->files.pkcs12 : ""};
    if (!o->files.key[0] && !(o->pkcs12 && o->files.pkcs12[0]))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: the separate layout needs files.key (or pkcs12)",
                        where);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            if (n[i][0] && !strcmp(n[i], n[j]))
                return clc_errf(ei, CLC_ERR_CONFIG, "%s: file name '%s' is used twice", where,
                                n[i]);
    return CLC_OK;
}

static enum clc_err output_copy(const struct clc_sync_output *src, struct clc_sync_output *dst)
{
    *dst = *src;
    dst->pkcs12_pw_file = NULL;
    memset(&dst->reload, 0, sizeof dst->reload);
    if (src->pkcs12_pw_file && !(dst->pkcs12_pw_file = strdup(src->pkcs12_pw_file)))
        return CLC_ERR_NOMEM;
    return reload_copy(&src->reload, &dst->reload);
}

static void output_cleanup(struct clc_sync_output *o)
{
    free(o->pkcs12_pw_file);
    reload_cleanup(&o->reload);
}

static enum clc_err check_store(const char *p, const char *where, struct clc_errinfo *ei)
{
    size_t n = strlen(p);
    if (p[0] != '/' || n > STORE_PATH_MAX)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: '%.100s' is not an absolute path", where, p);
    for (const char *s = p; (s = strstr(s, "/..")) != NULL; s += 3)
        if (s[3] == '/' || s[3] == '\0')
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: '%.100s' contains '..'", where, p);
    return CLC_OK;
}

/* https://HOST[:PORT]/secrets/NAME[/] -> vault base and name. */
static enum clc_err split_url(const char *url, char **base, char **name, char *host, size_t hn,
                              struct clc_errinfo *ei)
{
    const char *p, *slash;
    *base = *name = NULL;
    if (strlen(url) > 512 || strncasecmp(url, "https://", 8) != 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "observed certificate '%.100s': expected https://VAULT/secrets/NAME", url);
    p = url + 8;
    slash = strchr(p, '/');
    if (!slash || slash == p || (size_t)(slash - p) >= hn)
        return clc_errf(ei, CLC_ERR_CONFIG, "observed certificate '%.100s': no vault host", url);
    for (const char *h = p; h < slash; h++)
        if (!isalnum((unsigned char)*h) && *h != '.' && *h != '-' && *h != ':')
            return clc_errf(ei, CLC_ERR_CONFIG, "observed certificate '%.100s': bad host", url);
    snprintf(host, hn, "%.*s", (int)(slash - p), p);
    if (strncmp(slash, "/secrets/", 9) != 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "observed certificate '%.100s': the URL must be a /secrets/NAME URL "
                        "(/certificates/ URLs carry no private key)",
                        url);
    const char *n = slash + 9;
    size_t nl = strcspn(n, "/?#");
    const char *rest = n + nl;
    if (*rest == '/' && rest[1] != '\0')
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "observed certificate '%.100s': give the versionless URL (a version "
                        "would never be renewed)",
                        url);
    if (*rest == '?' || *rest == '#')
        return clc_errf(ei, CLC_ERR_CONFIG, "observed certificate '%.100s': no query expected",
                        url);
    *name = strndup(n, nl);
    if (*name && !clc_kv_name_valid(*name)) {
        free(*name);
        *name = NULL;
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "observed certificate '%.100s': the name must be 1-127 characters of "
                        "A-Z, a-z, 0-9 and '-' (no '/', no '..')",
                        url);
    }
    if (*name && (*base = malloc((size_t)(slash - url) + 1)) != NULL)
        snprintf(*base, (size_t)(slash - url) + 1, "%s", url);
    if (!*name || !*base) {
        free(*name);
        *name = NULL;
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    return CLC_OK;
}

/* The vault's name in file names: certlc.vaultNames, else the host's first
 * label (myvault.vault.azure.net -> myvault), an address whole. */
static enum clc_err vault_name(const cJSON *names, const char *base, const char *hostport,
                               char **out, struct clc_errinfo *ei)
{
    char host[256];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(names, base);
    snprintf(host, sizeof host, "%.*s", (int)strcspn(hostport, ":"), hostport);
    size_t hl = strlen(host);
    if (v && !cJSON_IsString(v))
        return clc_errf(ei, CLC_ERR_CONFIG, "certlc.vaultNames: '%.100s' is not a string", base);
    const char *n = v ? v->valuestring : host;
    size_t len = v                                              ? strlen(n)
                 : (hl && isalpha((unsigned char)host[hl - 1])) ? strcspn(host, ".")
                                                                : hl;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 127 ? len : 127), n);
    if (len > 63 || !clc_sync_name_safe(tmp, 63))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "vault name '%.63s' (of %.100s) is not usable in a file name", tmp, base);
    if (!(*out = strdup(tmp)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

static void cert_cleanup(struct clc_sync_cert *c)
{
    free(c->url);
    free(c->vault_url);
    free(c->vault_name);
    free(c->name);
    free(c->store);
    free(c->link);
    output_cleanup(&c->out);
}

static enum clc_err parse_cert(const cJSON *item, size_t idx, const char *default_store,
                               const struct clc_sync_output *dflt, const cJSON *vault_names,
                               struct clc_sync_cert *c, struct clc_errinfo *ei)
{
    static const char *const keys[] = {
        "url", "certificateStoreLocation", "customSymbolicLinkName", "acls", "certlc", NULL};
    enum clc_err rc;
    const char *url = NULL, *store = default_store, *link = NULL;
    const cJSON *own = NULL;
    char where[64], host[256], linkbuf[300];

    snprintf(where, sizeof where, "observedCertificates[%zu]", idx);
    if ((rc = output_copy(dflt, &c->out)) != CLC_OK)
        return clc_errf(ei, rc, "out of memory");
    if (cJSON_IsString(item)) {
        url = item->valuestring; /* v2: a plain URL */
    } else if (cJSON_IsObject(item)) {
        if ((rc = check_members(item, keys, where, ei)) != CLC_OK ||
            (rc = opt_str(item, "url", where, &url, ei)) != CLC_OK ||
            (rc = opt_str(item, "certificateStoreLocation", where, &store, ei)) != CLC_OK ||
            (rc = opt_str(item, "customSymbolicLinkName", where, &link, ei)) != CLC_OK ||
            (rc = want_obj(item, "certlc", where, &own, ei)) != CLC_OK)
            return rc;
        const cJSON *acls = cJSON_GetObjectItemCaseSensitive(item, "acls");
        if (cJSON_GetArraySize(acls) > 0)
            return clc_errf(ei, CLC_ERR_UNSUPPORTED,
                            "%s.acls: ACLs are not supported; give read access with certlc.group "
                            "and certlc.keyMode \"0640\"",
                            where);
        if (own) {
            static const char *const okeys[] = {"layout", "files", "pkcs12", "pkcs12PasswordFile",
                                                "reload", NULL};
            if ((rc = check_members(own, okeys, where, ei)) != CLC_OK ||
                (rc = parse_output(own, where, &c->out, ei)) != CLC_OK)
                return rc;
        }
    } else {
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: expected a URL string or an object", where);
    }
    if (!url)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: url is required", where);
    if ((rc = check_files(&c->out, where, ei)) != CLC_OK ||
        (rc = check_store(store, where, ei)) != CLC_OK ||
        (rc = split_url(url, &c->vault_url, &c->name, host, sizeof host, ei)) != CLC_OK ||
        (rc = vault_name(vault_names, c->vault_url, host, &c->vault_name, ei)) != CLC_OK)
        return rc;
    if (link && !clc_sync_name_safe(link, CLC_SYNC_NAME_MAX))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s.customSymbolicLinkName: '%.100s' is not a plain file name "
                        "([A-Za-z0-9._-], no '/', no '..', not starting with '.')",
                        where, link);
    snprintf(linkbuf, sizeof linkbuf, "%s.%s", c->vault_name, c->name);
    /* A link named like one of its own versions would be pruned. */
    if (link && !strncmp(link, linkbuf, strlen(linkbuf)) && link[strlen(linkbuf)] == '.')
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s.customSymbolicLinkName: '%.100s' looks like a version file of %s",
                        where, link, linkbuf);
    c->url = strdup(url);
    c->store = strdup(store);
    c->link = strdup(link ? link : linkbuf);
    if (!c->url || !c->store || !c->link)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

static enum clc_err parse_certlc(const cJSON *c, struct clc_sync_settings *s,
                                 struct clc_sync_output *dflt, const cJSON **vault_names,
                                 struct clc_errinfo *ei)
{
    static const char *const keys[] = {"layout",
                                       "files",
                                       "pkcs12",
                                       "pkcs12PasswordFile",
                                       "reload",
                                       "owner",
                                       "group",
                                       "dirMode",
                                       "keyMode",
                                       "certMode",
                                       "keepVersions",
                                       "verifyChallengeResource",
                                       "vaultNames",
                                       "authMethod",
                                       "initialSyncTimeoutS",
                                       "initialSyncAttempts",
                                       "maxBackoffS",
                                       "jitterPercent",
                                       "passTimeoutS",
                                       NULL};
    enum clc_err rc;
    const char *owner = NULL, *group = NULL, *method = NULL;
    int64_t keep = DEFAULT_KEEP, t = s->initial_sync_timeout_s, att = s->initial_sync_attempts;
    int64_t backoff = s->max_backoff_s, jitter = s->jitter_percent, pass_t = s->pass_timeout_s;
    unsigned id;

    if (!c)
        return CLC_OK;
    if ((rc = check_members(c, keys, "certlc", ei)) != CLC_OK ||
        (rc = parse_output(c, "certlc", dflt, ei)) != CLC_OK ||
        (rc = opt_str(c, "owner", "certlc", &owner, ei)) != CLC_OK ||
        (rc = opt_str(c, "group", "certlc", &group, ei)) != CLC_OK ||
        (rc = opt_str(c, "authMethod", "certlc", &method, ei)) != CLC_OK ||
        (rc = opt_int(c, "keepVersions", "certlc", 1, 100, &keep, ei)) != CLC_OK ||
        (rc = opt_int(c, "initialSyncTimeoutS", "certlc", 1, 7 * 86400, &t, ei)) != CLC_OK ||
        (rc = opt_int(c, "initialSyncAttempts", "certlc", 1, 1000, &att, ei)) != CLC_OK ||
        (rc = opt_int(c, "maxBackoffS", "certlc", 1, 7 * 86400, &backoff, ei)) != CLC_OK ||
        (rc = opt_int(c, "jitterPercent", "certlc", 0, 50, &jitter, ei)) != CLC_OK ||
        (rc = opt_int(c, "passTimeoutS", "certlc", 10, 86400, &pass_t, ei)) != CLC_OK ||
        (rc = opt_bool(c, "verifyChallengeResource", "certlc", &s->verify_challenge_resource,
                       ei)) != CLC_OK ||
        (rc = want_obj(c, "vaultNames", "certlc", vault_names, ei)) != CLC_OK)
        return rc;
    if (owner) {
        if ((rc = lookup_owner(owner, 0, &id, ei)) != CLC_OK)
            return rc;
        s->owner = (uid_t)id;
        s->has_owner = 1;
    }
    if (group) {
        if ((rc = lookup_owner(group, 1, &id, ei)) != CLC_OK)
            return rc;
        s->group = (gid_t)id;
        s->has_group = 1;
        s->dir_mode = 0750; /* defaults that let the group read */
        s->key_mode = 0640;
    }
    if ((rc = opt_mode(c, "dirMode", 0022, &s->dir_mode, ei)) != CLC_OK ||
        (rc = opt_mode(c, "keyMode", 0137, &s->key_mode, ei)) != CLC_OK ||
        (rc = opt_mode(c, "certMode", 0133, &s->cert_mode, ei)) != CLC_OK)
        return rc;
    if ((s->dir_mode & 0700) != 0700)
        return clc_errf(ei, CLC_ERR_CONFIG, "certlc.dirMode: the owner needs rwx (0700)");
    if (!(s->key_mode & 0400))
        return clc_errf(ei, CLC_ERR_CONFIG, "certlc.keyMode: the owner must be able to read");
    if (method) {
        if (strcmp(method, "managed_identity") != 0 && strcmp(method, "arc") != 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "certlc.authMethod: '%.40s' is not managed_identity or arc (other "
                            "methods come from the certlc configuration's auth.*)",
                            method);
        if (!(s->auth_method = strdup(method)))
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    s->keep_versions = (int)keep;
    s->initial_sync_timeout_s = t;
    s->initial_sync_attempts = (int)att;
    s->max_backoff_s = backoff;
    s->jitter_percent = (int)jitter;
    s->pass_timeout_s = pass_t;
    return CLC_OK;
}

static enum clc_err parse_auth(const cJSON *a, struct clc_sync_settings *s, struct clc_errinfo *ei)
{
    static const char *const keys[] = {"msiEndpoint", "msiClientId", NULL};
    const char *ep = NULL, *id = NULL;
    enum clc_err rc;
    if (!a)
        return CLC_OK;
    if ((rc = check_members(a, keys, "authenticationSettings", ei)) != CLC_OK ||
        (rc = opt_str(a, "msiEndpoint", "authenticationSettings", &ep, ei)) != CLC_OK ||
        (rc = opt_str(a, "msiClientId", "authenticationSettings", &id, ei)) != CLC_OK)
        return rc;
    if (ep && strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "authenticationSettings.msiEndpoint: '%.100s' is not an http URL", ep);
    if ((ep && !(s->msi_endpoint = strdup(ep))) || (id && *id && !(s->msi_client_id = strdup(id))))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    return CLC_OK;
}

/* Finds the settings object inside the wrappers people copy from ARM. */
static const cJSON *settings_root(const cJSON *doc)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(doc, "properties");
    if (cJSON_IsObject(p))
        doc = p;
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(doc, "settings");
    return cJSON_IsObject(s) ? s : doc;
}

static enum clc_err parse_doc(const cJSON *root, struct clc_sync_settings *s,
                              struct clc_errinfo *ei)
{
    static const char *const top_keys[] = {"secretsManagementSettings", "authenticationSettings",
                                           "loggingSettings", "certlc", NULL};
    static const char *const sms_keys[] = {
        "pollingIntervalInS", "certificateStoreName", "certificateStoreLocation", "linkOnRenewal",
        "requireInitialSync", "aclEnabled",           "observedCertificates",     NULL};
    enum clc_err rc;
    const cJSON *sms, *auth, *own, *names = NULL;
    const char *store = CLC_SYNC_DEFAULT_STORE;
    int link_on_renewal = 0, acl = 0;
    struct clc_sync_output dflt;

    memset(&dflt, 0, sizeof dflt);
    snprintf(dflt.files.cert, sizeof dflt.files.cert, "cert.pem");
    snprintf(dflt.files.chain, sizeof dflt.files.chain, "chain.pem");
    snprintf(dflt.files.fullchain, sizeof dflt.files.fullchain, "fullchain.pem");
    snprintf(dflt.files.key, sizeof dflt.files.key, "privkey.pem");
    snprintf(dflt.files.pkcs12, sizeof dflt.files.pkcs12, "cert.pfx");
    if (!cJSON_IsObject(root))
        return clc_errf(ei, CLC_ERR_CONFIG, "expected a JSON object");
    if ((rc = check_members(root, top_keys, "settings", ei)) != CLC_OK ||
        (rc = want_obj(root, "secretsManagementSettings", "settings", &sms, ei)) != CLC_OK ||
        (rc = want_obj(root, "authenticationSettings", "settings", &auth, ei)) != CLC_OK ||
        (rc = want_obj(root, "certlc", "settings", &own, ei)) != CLC_OK)
        goto out;
    if (!sms) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "secretsManagementSettings is required");
        goto out;
    }
    if ((rc = check_members(sms, sms_keys, "secretsManagementSettings", ei)) != CLC_OK ||
        (rc = opt_int(sms, "pollingIntervalInS", "secretsManagementSettings", 1, 7 * 86400,
                      &s->polling_interval_s, ei)) != CLC_OK ||
        (rc = opt_str(sms, "certificateStoreLocation", "secretsManagementSettings", &store, ei)) !=
            CLC_OK ||
        (rc = opt_bool(sms, "requireInitialSync", "secretsManagementSettings",
                       &s->require_initial_sync, ei)) != CLC_OK ||
        (rc = opt_bool(sms, "linkOnRenewal", "secretsManagementSettings", &link_on_renewal, ei)) !=
            CLC_OK ||
        (rc = opt_bool(sms, "aclEnabled", "secretsManagementSettings", &acl, ei)) != CLC_OK)
        goto out;
    if (acl) {
        rc = clc_errf(ei, CLC_ERR_UNSUPPORTED,
                      "secretsManagementSettings.aclEnabled: ACLs are not supported; give read "
                      "access with certlc.group and certlc.keyMode \"0640\"");
        goto out;
    }
    /* linkOnRenewal is a Windows certificate-store feature: accepted, ignored. */
    s->max_backoff_s = s->polling_interval_s;
    if ((rc = parse_certlc(own, s, &dflt, &names, ei)) != CLC_OK ||
        (rc = parse_auth(auth, s, ei)) != CLC_OK ||
        (rc = check_files(&dflt, "certlc", ei)) != CLC_OK)
        goto out;
    const cJSON *obs = cJSON_GetObjectItemCaseSensitive(sms, "observedCertificates");
    int n = cJSON_GetArraySize(obs);
    if (!cJSON_IsArray(obs) || n < 1) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "secretsManagementSettings.observedCertificates: expected a non-empty array");
        goto out;
    }
    if (n > CLC_SYNC_CERTS_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "observedCertificates: more than %d entries",
                      CLC_SYNC_CERTS_MAX);
        goto out;
    }
    if (!(s->certs = calloc((size_t)n, sizeof *s->certs))) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, obs)
    {
        rc = parse_cert(it, s->ncerts, store, &dflt, names, &s->certs[s->ncerts], ei);
        s->ncerts++;
        if (rc != CLC_OK)
            goto out;
        const struct clc_sync_cert *c = &s->certs[s->ncerts - 1];
        for (size_t j = 0; j + 1 < s->ncerts; j++)
            if (!strcmp(s->certs[j].store, c->store) && !strcmp(s->certs[j].link, c->link)) {
                rc = clc_errf(ei, CLC_ERR_CONFIG,
                              "observedCertificates[%zu]: %s/%s is already used by "
                              "observedCertificates[%zu]",
                              s->ncerts - 1, c->store, c->link, j);
                goto out;
            }
    }
out:
    output_cleanup(&dflt);
    return rc;
}

enum clc_err clc_sync_settings_parse(const char *text, size_t len, const char *origin,
                                     struct clc_sync_settings *s, struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    enum clc_err rc;

    memset(s, 0, sizeof *s);
    s->polling_interval_s = DEFAULT_INTERVAL_S;
    s->dir_mode = 0700;
    s->key_mode = 0600;
    s->cert_mode = 0644;
    s->keep_versions = DEFAULT_KEEP;
    s->verify_challenge_resource = 1;
    s->initial_sync_timeout_s = 600;
    s->initial_sync_attempts = 25;
    s->jitter_percent = 10;
    s->pass_timeout_s = 900;
    rc = clc_json_parse(text, len, CLC_SYNC_SETTINGS_MAX, &doc, ei);
    if (rc == CLC_OK)
        rc = parse_doc(settings_root(doc), s, ei);
    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc == CLC_ERR_PARSE ? CLC_ERR_CONFIG : rc, "sync settings %s",
                     origin ? origin : "");
        clc_sync_settings_cleanup(s);
        rc = rc == CLC_ERR_PARSE ? CLC_ERR_CONFIG : rc;
    }
    cJSON_Delete(doc);
    return rc;
}

enum clc_err clc_sync_settings_load(const char *path, struct clc_sync_settings *out,
                                    struct clc_errinfo *ei)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof *out);
    enum clc_err rc = clc_file_read(path, CLC_SYNC_SETTINGS_MAX, &text, &len, ei);
    if (rc != CLC_OK)
        return rc == CLC_ERR_NOT_FOUND ? CLC_ERR_CONFIG : rc;
    rc = clc_sync_settings_parse(text, len, path, out, ei);
    free(text);
    return rc;
}

void clc_sync_settings_cleanup(struct clc_sync_settings *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->ncerts; i++)
        cert_cleanup(&s->certs[i]);
    free(s->certs);
    free(s->msi_endpoint);
    free(s->msi_client_id);
    free(s->auth_method);
    memset(s, 0, sizeof *s);
}

enum clc_err clc_sync_auth_opts(const struct clc_sync_settings *s, char *buf, size_t bufsize,
                                struct clc_auth_opts *out, struct clc_errinfo *ei)
{
    memset(out, 0, sizeof *out);
    if (!s->msi_endpoint && !s->msi_client_id && !s->auth_method)
        return CLC_ERR_NOT_FOUND;
    const char *ep = s->msi_endpoint ? s->msi_endpoint : "http://169.254.169.254/metadata/identity";
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/')
        n--;
    /* The extension takes ".../metadata/identity"; the token path follows. */
    const char *tail = "/oauth2/token";
    if (n >= 13 && !strncmp(ep + n - 13, tail, 13))
        tail = "";
    int k = snprintf(buf, bufsize, "%.*s%s", (int)n, ep, tail);
    if (k < 0 || (size_t)k >= bufsize)
        return clc_errf(ei, CLC_ERR_LIMIT, "msiEndpoint too long");
    /* HIMDS listens on localhost:40342 (the extension requires msiEndpoint
     * there on Arc); anything else is the VM's IMDS. */
    int arc = s->auth_method ? !strcmp(s->auth_method, "arc")
                             : (strstr(buf, "://localhost:40342/") != NULL ||
                                strstr(buf, "://127.0.0.1:40342/") != NULL);
    if (arc) {
        out->method = CLC_AUTH_ARC;
        out->identity_endpoint = buf;
    } else {
        out->method = CLC_AUTH_MANAGED_IDENTITY;
        out->imds_endpoint = buf;
        out->client_id = s->msi_client_id;
    }
    return CLC_OK;
}
