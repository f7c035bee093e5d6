/* The CA client front: reads "ca.<name>" from the configuration (every member
 * checked, secrets only from files or the environment), builds the client for
 * its type, and turns each call's outcome into one result shape. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ca/ca_int.h"
#include "core/log.h"
#include "net/retry.h"

#ifndef CLC_VERSION
#define CLC_VERSION "0"
#endif

#define NAME_MAX_LEN 64
#define KEY_MAX 160
#define DEFAULT_MAX_RESPONSE ((size_t)4 * 1024 * 1024)

/* Members of "ca.<name>": the schema the CLI map entry leaves free-form. */
const struct clc_config_key clc_ca_config_keys[] = {
    {"type", CLC_CFG_STR, "adcs | est | command"},
    {"url", CLC_CFG_STR, "adcs: https://host/certsrv; est: https://host/.well-known/est"},
    {"auth", CLC_CFG_STR, "adcs: basic|negotiate|ntlm|cert|none; est: basic|cert|none"},
    {"username", CLC_CFG_STR, "Basic/NTLM user (DOMAIN\\user or UPN)"},
    {"password_file", CLC_CFG_STR, "file holding the password"},
    {"password_env", CLC_CFG_STR, "environment variable holding the password"},
    {"client_cert", CLC_CFG_STR, "PEM certificate for TLS client authentication"},
    {"client_key", CLC_CFG_STR, "PEM private key of client_cert"},
    {"keytab", CLC_CFG_STR, "negotiate: keytab for KRB5_CLIENT_KTNAME"},
    {"ccache", CLC_CFG_STR, "negotiate: ticket cache for KRB5CCNAME"},
    {"trust_anchors", CLC_CFG_STR, "PEM roots the issued chain must verify to (required)"},
    {"tls_ca_bundle", CLC_CFG_STR, "PEM roots for the HTTPS connection (default http.ca_bundle)"},
    {"proxy", CLC_CFG_STR, "proxy URL (default http.proxy)"},
    {"user_agent", CLC_CFG_STR, "User-Agent (adcs default: a browser-like string)"},
    {"command", CLC_CFG_ARR, "command: argv array (no shell)"},
    {"pass_env", CLC_CFG_ARR, "command: names of environment variables passed to it"},
    {"timeout_s", CLC_CFG_INT, "one HTTP exchange or the whole command (60 / 120)"},
    {"connect_timeout_s", CLC_CFG_INT, "TCP+TLS connect timeout (10)"},
    {"poll_interval_s", CLC_CFG_INT, "suggested wait before fetching a pending request (900)"},
    {"max_skew_s", CLC_CFG_INT, "how far notBefore may be in the future (300)"},
};
const size_t clc_ca_config_nkeys = sizeof clc_ca_config_keys / sizeof clc_ca_config_keys[0];

void clc_ca_result_init(struct clc_ca_result *r)
{
    memset(r, 0, sizeof *r);
    r->disposition = CLC_CA_ERROR;
}

void clc_ca_result_cleanup(struct clc_ca_result *r)
{
    if (!r)
        return;
    sk_X509_pop_free(r->chain, X509_free);
    clc_ca_result_init(r);
}

const char *clc_ca_disposition_name(enum clc_ca_disposition d)
{
    switch (d) {
    case CLC_CA_ISSUED:
        return "issued";
    case CLC_CA_PENDING:
        return "pending";
    case CLC_CA_DENIED:
        return "denied";
    case CLC_CA_ERROR:
        return "error";
    }
    return "error";
}

void clc_ca_conf_cleanup(struct clc_ca_conf *c)
{
    free(c->name);
    free(c->url);
    free(c->username);
    clc_secret_free(c->password);
    free(c->client_cert);
    free(c->client_key);
    free(c->keytab);
    free(c->ccache);
    free(c->trust_anchors);
    free(c->tls_ca_bundle);
    free(c->proxy);
    free(c->user_agent);
    for (size_t i = 0; i < c->argc; i++)
        free(c->argv[i]);
    for (size_t i = 0; i < c->npass_env; i++)
        free(c->pass_env[i]);
    memset(c, 0, sizeof *c);
}

int64_t clc_ca_now(const struct clc_ca *ca)
{
    return clc_clock_now(ca->has_clock ? &ca->clock : NULL);
}

static int name_ok(const char *n)
{
    size_t i = 0;
    for (; n[i]; i++)
        if (!isalnum((unsigned char)n[i]) && n[i] != '-' && n[i] != '_')
            return 0;
    return i > 0 && i <= NAME_MAX_LEN;
}

/* A typo or an inline secret in "ca.<name>" is an error, as elsewhere. */
static enum clc_err check_members(const cJSON *node, const char *name, struct clc_errinfo *ei)
{
    for (const cJSON *m = node->child; m; m = m->next) {
        int known = 0;
        for (size_t i = 0; i < clc_ca_config_nkeys && !known; i++)
            known = strcmp(m->string, clc_ca_config_keys[i].path) == 0;
        if (known)
            continue;
        if (strcmp(m->string, "password") == 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "config key 'ca.%s.password': secrets are not accepted inline; "
                            "use password_file or password_env",
                            name);
        return clc_errf(ei, CLC_ERR_CONFIG, "config key 'ca.%s.%.64s' is not a known key", name,
                        m->string);
    }
    return CLC_OK;
}

static enum clc_err opt_str(const struct clc_config *cfg, const char *name, const char *key,
                            const char *dflt, char **out, struct clc_errinfo *ei)
{
    char path[KEY_MAX];
    const char *v = NULL;
    enum clc_err rc = CLC_OK;

    snprintf(path, sizeof path, "ca.%s.%s", name, key);
    rc = clc_config_str(cfg, path, dflt, &v, ei);
    if (rc != CLC_OK || !v || !*v)
        return rc;
    *out = strdup(v);
    return *out ? CLC_OK : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
}

static enum clc_err opt_int(const struct clc_config *cfg, const char *name, const char *key,
                            int64_t dflt, int64_t min, int64_t max, int64_t *out,
                            struct clc_errinfo *ei)
{
    char path[KEY_MAX];
    snprintf(path, sizeof path, "ca.%s.%s", name, key);
    return clc_config_int(cfg, path, dflt, min, max, out, ei);
}

/* A string array ("command", "pass_env") into a NULL-terminated vector. */
static enum clc_err opt_strv(const struct clc_config *cfg, const char *name, const char *key,
                             char **v, size_t max, size_t *n, struct clc_errinfo *ei)
{
    char path[KEY_MAX];
    const cJSON *arr = NULL;
    const cJSON *it = NULL;

    snprintf(path, sizeof path, "ca.%s.%s", name, key);
    arr = clc_config_node(cfg, path);
    *n = 0;
    if (!arr)
        return CLC_OK;
    if (!cJSON_IsArray(arr))
        return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': expected an array of strings", path);
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it) || !it->valuestring || !it->valuestring[0])
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "config key '%s': element %zu is not a non-empty string", path, *n);
        if (*n >= max)
            return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': more than %zu elements", path,
                            max);
        v[*n] = strdup(it->valuestring);
        if (!v[*n])
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        (*n)++;
    }
    v[*n] = NULL;
    return CLC_OK;
}

static enum clc_err read_conf(const struct clc_config *cfg, const char *name,
                              const struct clc_http_opts *http, struct clc_ca_conf *c,
                              struct clc_errinfo *ei)
{
    static const char *const types[] = {"adcs", "est", "command"};
    static const char *const auths[] = {"none", "basic", "negotiate", "ntlm", "cert"};
    char path[KEY_MAX];
    const cJSON *node = NULL;
    enum clc_err rc = CLC_OK;
    int t = 0, a = 0;
    int64_t v = 0;

    snprintf(path, sizeof path, "ca.%s", name);
    node = clc_config_node(cfg, path);
    if (!node)
        return clc_errf(ei, CLC_ERR_CONFIG, "no CA named '%s' in the configuration (ca.%s)", name,
                        name);
    if (!cJSON_IsObject(node))
        return clc_errf(ei, CLC_ERR_CONFIG, "config key 'ca.%s': expected an object", name);
    if ((rc = check_members(node, name, ei)) != CLC_OK)
        return rc;
    c->name = strdup(name);
    if (!c->name)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(path, sizeof path, "ca.%s.type", name);
    if ((rc = clc_config_enum(cfg, path, NULL, types, 3, &t, ei)) != CLC_OK)
        return rc;
    c->type = (enum clc_ca_type)t;
    snprintf(path, sizeof path, "ca.%s.auth", name);
    if ((rc = clc_config_enum(cfg, path, c->type == CLC_CA_COMMAND ? "none" : "basic", auths, 5, &a,
                              ei)) != CLC_OK)
        return rc;
    c->auth = (enum clc_ca_auth)a;
    if ((rc = opt_str(cfg, name, "url", NULL, &c->url, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "username", NULL, &c->username, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "client_cert", NULL, &c->client_cert, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "client_key", NULL, &c->client_key, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "keytab", NULL, &c->keytab, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "ccache", NULL, &c->ccache, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "trust_anchors", NULL, &c->trust_anchors, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "tls_ca_bundle", http ? http->ca_bundle : NULL, &c->tls_ca_bundle,
                      ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "proxy", http ? http->proxy : NULL, &c->proxy, ei)) != CLC_OK ||
        (rc = opt_str(cfg, name, "user_agent",
                      c->type == CLC_CA_ADCS ? "Mozilla/5.0 (compatible; certlc/" CLC_VERSION ")"
                                             : "certlc/" CLC_VERSION,
                      &c->user_agent, ei)) != CLC_OK ||
        (rc = opt_strv(cfg, name, "command", c->argv, CLC_CA_MAX_ARGV, &c->argc, ei)) != CLC_OK ||
        (rc = opt_strv(cfg, name, "pass_env", c->pass_env, CLC_CA_MAX_PASS_ENV, &c->npass_env,
                       ei)) != CLC_OK)
        return rc;
    snprintf(path, sizeof path, "ca.%s.password", name);
    rc = clc_config_secret(cfg, path, &c->password, ei);
    if (rc == CLC_ERR_NOT_FOUND) {
        clc_errinfo_clear(ei);
        rc = CLC_OK;
    }
    if (rc != CLC_OK)
        return rc;
    if ((rc = opt_int(cfg, name, "timeout_s", c->type == CLC_CA_COMMAND ? 120 : 60, 1, 3600, &v,
                      ei)) != CLC_OK)
        return rc;
    c->timeout_ms = (long)v * 1000;
    if ((rc = opt_int(cfg, name, "connect_timeout_s", 10, 1, 600, &v, ei)) != CLC_OK)
        return rc;
    c->connect_timeout_ms = (long)v * 1000;
    if ((rc = opt_int(cfg, name, "poll_interval_s", 900, 1, 7 * 86400, &c->poll_interval_s, ei)) !=
            CLC_OK ||
        (rc = opt_int(cfg, name, "max_skew_s", 300, 0, 86400, &c->max_skew_s, ei)) != CLC_OK)
        return rc;
    c->max_response =
        http && http->max_response_bytes && http->max_response_bytes < DEFAULT_MAX_RESPONSE
            ? http->max_response_bytes
            : DEFAULT_MAX_RESPONSE;
    return CLC_OK;
}

/* Type-specific requirements, each named after the key to fix. */
static enum clc_err check_conf(const struct clc_ca_conf *c, struct clc_errinfo *ei)
{
    if (c->type == CLC_CA_COMMAND) {
        if (c->argc == 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': type command needs ca.%s.command",
                            c->name, c->name);
        if (c->auth != CLC_CA_AUTH_NONE)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "CA '%s': auth does not apply to a command (give it password_file "
                            "instead: it is passed on fd 3)",
                            c->name);
        return CLC_OK;
    }
    if (!c->url)
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': ca.%s.url is required", c->name, c->name);
    if (c->argc || c->npass_env)
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': command and pass_env are for type command",
                        c->name);
    if (c->type == CLC_CA_EST && (c->auth == CLC_CA_AUTH_NEGOTIATE || c->auth == CLC_CA_AUTH_NTLM))
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': EST supports auth basic, cert or none",
                        c->name);
    if (c->auth == CLC_CA_AUTH_NEGOTIATE) {
        if (c->keytab && access(c->keytab, R_OK) != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': keytab %s is not readable", c->name,
                            c->keytab);
    } else if (c->keytab || c->ccache) {
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': keytab and ccache are for auth negotiate",
                        c->name);
    }
    return CLC_OK;
}

/* GSS-API reads the keytab and ticket cache from the process environment
 * (they are paths, not secrets); set only when configured, so an operator's
 * kinit works. setenv is not safe while other threads may read the
 * environment: programs with threads call clc_ca_kerberos_env first, and
 * then this finds the values in place and changes nothing. */
static enum clc_err set_env_once(const char *var, const char *value, struct clc_errinfo *ei)
{
    const char *cur = getenv(var);
    if (!value || (cur && strcmp(cur, value) == 0))
        return CLC_OK;
    if (setenv(var, value, 1) != 0)
        return clc_errf(ei, CLC_ERR_NOMEM, "setting %s failed", var);
    return CLC_OK;
}

static enum clc_err kerberos_env(const struct clc_ca_conf *c, struct clc_errinfo *ei)
{
    enum clc_err rc = set_env_once("KRB5_CLIENT_KTNAME", c->keytab, ei);
    return rc == CLC_OK ? set_env_once("KRB5CCNAME", c->ccache, ei) : rc;
}

/* Two Negotiate CAs must agree on a value GSS-API takes once per process. */
static enum clc_err same_krb_path(const char *what, const char *have, const char *have_ca,
                                  const char *want, const char *want_ca, struct clc_errinfo *ei)
{
    if (!have || !want || strcmp(have, want) == 0)
        return CLC_OK;
    return clc_errf(ei, CLC_ERR_CONFIG,
                    "CAs '%s' and '%s' name different Kerberos %ss (%s, %s): GSS-API takes one "
                    "per process",
                    have_ca, want_ca, what, have, want);
}

enum clc_err clc_ca_kerberos_env(const struct clc_config *cfg, struct clc_errinfo *ei)
{
    const cJSON *all = clc_config_node(cfg, "ca"), *it = NULL;
    struct clc_ca_conf first, c;
    enum clc_err rc = CLC_OK;

    memset(&first, 0, sizeof first);
    if (!cJSON_IsObject(all))
        return CLC_OK;
    cJSON_ArrayForEach(it, all)
    {
        memset(&c, 0, sizeof c);
        if (!it->string || !name_ok(it->string)) {
            rc = clc_errf(ei, CLC_ERR_CONFIG, "ca.%.40s: not a valid CA name",
                          it->string ? it->string : "");
            break;
        }
        if ((rc = read_conf(cfg, it->string, NULL, &c, ei)) != CLC_OK ||
            c.auth != CLC_CA_AUTH_NEGOTIATE) {
            clc_ca_conf_cleanup(&c);
            if (rc != CLC_OK)
                break;
            continue;
        }
        if (!first.name) {
            first = c;
            continue;
        }
        rc = same_krb_path("keytab", first.keytab, first.name, c.keytab, c.name, ei);
        if (rc == CLC_OK)
            rc = same_krb_path("ticket cache", first.ccache, first.name, c.ccache, c.name, ei);
        if (rc == CLC_OK && (!first.keytab || !first.ccache)) {
            /* A CA that names only one of them lends it to the pair. */
            if (!first.keytab && c.keytab) {
                first.keytab = c.keytab;
                c.keytab = NULL;
            }
            if (!first.ccache && c.ccache) {
                first.ccache = c.ccache;
                c.ccache = NULL;
            }
        }
        clc_ca_conf_cleanup(&c);
        if (rc != CLC_OK)
            break;
    }
    if (rc == CLC_OK && first.name)
        rc = kerberos_env(&first, ei);
    clc_ca_conf_cleanup(&first);
    return rc;
}

enum clc_err clc_ca_from_config(const struct clc_config *cfg, const char *name,
                                const struct clc_clock *clock, const struct clc_http_opts *http,
                                struct clc_ca **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_ca *ca = NULL;

    *out = NULL;
    if (!name || !name_ok(name))
        return clc_errf(ei, CLC_ERR_INVALID, "CA name must be 1-%d letters, digits, '-' or '_'",
                        NAME_MAX_LEN);
    ca = calloc(1, sizeof *ca);
    if (!ca)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (clock) {
        ca->clock = *clock;
        ca->has_clock = 1;
    }
    rc = read_conf(cfg, name, http, &ca->conf, ei);
    if (rc == CLC_OK)
        rc = check_conf(&ca->conf, ei);
    if (rc != CLC_OK)
        goto out;
    if (ca->conf.trust_anchors) {
        /* A missing file is reported at submit, so that `certlc ca cacerts`
         * can fetch the certificates an operator checks and saves there. */
        struct clc_errinfo aei;
        clc_errinfo_clear(&aei);
        if (clc_ca_anchors_load(ca->conf.trust_anchors, &ca->anchors, &aei) != CLC_OK)
            snprintf(ca->anchors_err, sizeof ca->anchors_err, "%s", aei.msg);
    }
    switch (ca->conf.type) {
    case CLC_CA_ADCS:
        ca->ops = &clc_ca_adcs_ops;
        break;
    case CLC_CA_EST:
        ca->ops = &clc_ca_est_ops;
        break;
    case CLC_CA_COMMAND:
        ca->ops = &clc_ca_command_ops;
        break;
    }
    if (ca->conf.type != CLC_CA_COMMAND) {
        rc = clc_ca_http_new(&ca->conf, &ca->http, ei);
        if (rc != CLC_OK)
            goto out;
    }
    if (ca->conf.auth == CLC_CA_AUTH_NEGOTIATE && (rc = kerberos_env(&ca->conf, ei)) != CLC_OK)
        goto out;
    *out = ca;
    ca = NULL;
out:
    clc_ca_free(ca);
    return rc;
}

void clc_ca_free(struct clc_ca *ca)
{
    if (!ca)
        return;
    clc_ca_http_free(ca->http);
    clc_ca_cert_cache_cleanup(ca);
    X509_STORE_free(ca->anchors);
    clc_ca_conf_cleanup(&ca->conf);
    free(ca);
}

enum clc_ca_type clc_ca_get_type(const struct clc_ca *ca)
{
    return ca->conf.type;
}

const char *clc_ca_name(const struct clc_ca *ca)
{
    return ca->conf.name;
}

/* One place where every outcome is shaped and logged. */
static enum clc_err conclude(struct clc_ca *ca, const char *op, enum clc_err rc,
                             struct clc_ca_result *res, struct clc_errinfo *lei,
                             struct clc_errinfo *ei)
{
    if (rc != CLC_OK) {
        sk_X509_pop_free(res->chain, X509_free);
        res->chain = NULL;
        res->disposition = CLC_CA_ERROR;
        res->err = rc;
        res->retryable = clc_retry_err_retryable(rc);
        snprintf(res->reason, sizeof res->reason, "%s", lei->msg[0] ? lei->msg : clc_err_name(rc));
        clc_log(CLC_LOG_WARN, "ca.error", CLC_LS("ca", ca->conf.name), CLC_LS("op", op),
                CLC_LS("error", clc_err_name(rc)), CLC_LI("retryable", res->retryable),
                CLC_LS("request_id", res->request_id), CLC_LS("detail", res->reason));
    } else {
        res->err = CLC_OK;
        clc_log(CLC_LOG_INFO, "ca.result", CLC_LS("ca", ca->conf.name), CLC_LS("op", op),
                CLC_LS("disposition", clc_ca_disposition_name(res->disposition)),
                CLC_LS("request_id", res->request_id), CLC_LS("code", res->code),
                CLC_LS("reason", res->reason));
    }
    if (ei)
        *ei = *lei;
    return rc;
}

static enum clc_err precheck(struct clc_ca *ca, const struct clc_ca_req *req, int need_csr,
                             struct clc_errinfo *ei)
{
    if (!ca->anchors && ca->anchors_err[0])
        return clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': ca.%s.trust_anchors: %s", ca->conf.name,
                        ca->conf.name, ca->anchors_err);
    if (!ca->anchors)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "CA '%s': ca.%s.trust_anchors is required to verify what the CA issues",
                        ca->conf.name, ca->conf.name);
    if (need_csr && (!req || !req->csr))
        return clc_errf(ei, CLC_ERR_INVALID, "CA '%s': no CSR given", ca->conf.name);
    if (req && req->template_name && strpbrk(req->template_name, "\r\n"))
        return clc_errf(ei, CLC_ERR_INVALID, "template name contains a line break");
    return CLC_OK;
}

enum clc_err clc_ca_submit(struct clc_ca *ca, const struct clc_ca_req *req,
                           struct clc_ca_result *res, struct clc_errinfo *ei)
{
    struct clc_errinfo lei;
    enum clc_err rc = CLC_OK;

    clc_errinfo_clear(&lei);
    clc_ca_result_cleanup(res);
    rc = precheck(ca, req, 1, &lei);
    if (rc == CLC_OK)
        rc = ca->ops->submit(ca, req, res, &lei);
    return conclude(ca, "submit", rc, res, &lei, ei);
}

enum clc_err clc_ca_fetch(struct clc_ca *ca, const struct clc_ca_req *req, const char *request_id,
                          struct clc_ca_result *res, struct clc_errinfo *ei)
{
    struct clc_errinfo lei;
    enum clc_err rc = CLC_OK;

    clc_errinfo_clear(&lei);
    clc_ca_result_cleanup(res);
    rc = precheck(ca, req, ca->conf.type == CLC_CA_EST, &lei);
    if (rc == CLC_OK && (!request_id || !request_id[0] || strlen(request_id) >= CLC_CA_ID_MAX))
        rc = clc_errf(&lei, CLC_ERR_INVALID, "a request id of 1-%d characters is needed",
                      CLC_CA_ID_MAX - 1);
    if (rc == CLC_OK) {
        snprintf(res->request_id, sizeof res->request_id, "%s", request_id);
        rc = ca->ops->fetch(ca, req, request_id, res, &lei);
    }
    return conclude(ca, "fetch", rc, res, &lei, ei);
}

enum clc_err clc_ca_cacerts(struct clc_ca *ca, STACK_OF(X509) * *out, struct clc_errinfo *ei)
{
    *out = NULL;
    if (!ca->ops->cacerts)
        return clc_errf(ei, CLC_ERR_UNSUPPORTED, "CA '%s': a command CA has no cacerts operation",
                        ca->conf.name);
    return ca->ops->cacerts(ca, out, ei);
}
