/* Emulator start-up and shutdown: reads the config, brings up state, TLS,
 * the directory and every service in the order services.h gives, checks one
 * verified TLS handshake, and produces the endpoints document. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/directory.h"
#include "emulator/emu_internal.h"
#include "emulator/events.h"
#include "emulator/state.h"

/* Top-level config keys; anything else is refused so a typo is an error.
 * Services that read their own section add its key here. */
static const char *const config_keys[] = {
    "ports",   "identities", "tenant", "managed_identity", "arc_key_dir", "max_body_bytes",
    "storage", "ca",         "vaults", "eventgrid",        "smtp",        "loganalytics",
};

#define MAX_BODY_LIMIT ((int64_t)1024 * 1024 * 1024)

/* Services mounted after the directory, in this order. Later services
 * append their mount function. */
static enum clc_err (*const mounts[])(struct emu *, struct clc_errinfo *) = {
    emu_control_mount, emu_entra_mount,        emu_events_mount, emu_keyvault_mount,
    emu_queue_mount,   emu_blob_mount,         emu_ca_mount,     emu_eventgrid_mount,
    emu_smtp_mount,    emu_loganalytics_mount,
};

const cJSON *emu_config(const struct emu *e)
{
    return e->config;
}

int emu_config_port(const struct emu *e, const char *service)
{
    const cJSON *ports = cJSON_GetObjectItemCaseSensitive(e->config, "ports");
    const cJSON *p = ports ? cJSON_GetObjectItemCaseSensitive(ports, service) : NULL;

    /* Validated at load: an integer in 0..65535 when present. */
    return cJSON_IsNumber(p) ? (int)p->valuedouble : 0;
}

struct emu_directory *emu_directory_of(const struct emu *e)
{
    return e->dir;
}

const char *emu_ca_bundle(const struct emu *e)
{
    return e->ca_bundle;
}

const char *emu_tenant(const struct emu *e)
{
    return e->dir != NULL ? emu_directory_tenant(e->dir) : NULL;
}

static enum clc_err check_config(const cJSON *cfg, const char *origin, struct clc_errinfo *ei)
{
    const cJSON *it, *ports;
    int64_t v;

    if (!cJSON_IsObject(cfg))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: the emulator config must be a JSON object",
                        origin);
    cJSON_ArrayForEach(it, cfg)
    {
        size_t i;
        for (i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++)
            if (strcmp(it->string, config_keys[i]) == 0)
                break;
        if (i == sizeof config_keys / sizeof config_keys[0])
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s: unknown key '%.64s' (known: ports, identities, tenant, "
                            "managed_identity, arc_key_dir, max_body_bytes, storage, ca, vaults, "
                            "eventgrid, smtp, loganalytics)",
                            origin, it->string);
    }
    ports = cJSON_GetObjectItemCaseSensitive(cfg, "ports");
    if (ports != NULL) {
        if (!cJSON_IsObject(ports))
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: 'ports' must be an object", origin);
        cJSON_ArrayForEach(it, ports)
        {
            if (clc_json_int(ports, it->string, &v, ei) != CLC_OK || v < 0 || v > 65535)
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "%s: 'ports.%.64s' must be an integer port in 0..65535", origin,
                                it->string);
        }
    }
    if (cJSON_GetObjectItemCaseSensitive(cfg, "max_body_bytes") != NULL &&
        (clc_json_int(cfg, "max_body_bytes", &v, ei) != CLC_OK || v < 1 || v > MAX_BODY_LIMIT))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: 'max_body_bytes' must be an integer in 1..%lld",
                        origin, (long long)MAX_BODY_LIMIT);
    return CLC_OK;
}

static enum clc_err load_config(struct emu *e, const struct emu_opts *opts, struct clc_errinfo *ei)
{
    char *text = NULL;
    size_t len = 0;
    int64_t mb = 0;
    enum clc_err rc;

    if (opts->config_file == NULL) {
        e->config = cJSON_CreateObject();
        rc = e->config ? CLC_OK : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    } else {
        rc = clc_file_read(opts->config_file, EMU_CONFIG_MAX_BYTES, &text, &len, ei);
        if (rc != CLC_OK) {
            rc = clc_err_wrap(ei, rc == CLC_ERR_NOT_FOUND ? CLC_ERR_CONFIG : rc, "emulator config");
            goto out;
        }
        rc = clc_json_parse(text, len, EMU_CONFIG_MAX_BYTES, &e->config, ei);
        if (rc != CLC_OK) {
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "emulator config %s", opts->config_file);
            goto out;
        }
        rc = check_config(e->config, opts->config_file, ei);
        if (rc != CLC_OK)
            goto out;
    }
    if (rc == CLC_OK)
        clc_json_int_opt(e->config, "max_body_bytes", 0, &mb, NULL);
    e->max_body_bytes = opts->max_body_bytes ? opts->max_body_bytes
                        : mb > 0             ? (size_t)mb
                                             : EMU_DEFAULT_MAX_BODY;
out:
    free(text);
    return rc;
}

static struct emu *emu_alloc(void)
{
    struct emu *e = calloc(1, sizeof *e);

    if (e == NULL)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    pthread_mutex_init(&e->clock_mu, NULL);
    pthread_mutex_init(&e->clock_save_mu, NULL);
    pthread_mutex_init(&e->listeners_mu, NULL);
    pthread_mutex_init(&e->hooks_mu, NULL);
    return e;
}

static int first_https_port(struct emu *e)
{
    int port = 0;

    pthread_mutex_lock(&e->listeners_mu);
    for (size_t i = 0; i < e->nlisteners && port == 0; i++)
        if (!e->listeners[i]->def->plain_http)
            port = e->listeners[i]->port;
    pthread_mutex_unlock(&e->listeners_mu);
    return port;
}

enum clc_err emu_start(const struct emu_opts *opts, struct emu **out, struct clc_errinfo *ei)
{
    static const struct emu_opts defaults = {0};
    struct emu *e;
    enum clc_err rc;
    int port;

    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    e = emu_alloc();
    if (e == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    e->quiet = opts->quiet;

    rc = emu_ticker_init(e);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "cannot initialise the ticker");
        goto out;
    }
    rc = load_config(e, opts, ei);
    if (rc != CLC_OK)
        goto out;
    rc = emu_state_init(e, opts, ei);
    if (rc != CLC_OK)
        goto out;
    rc = emu_faults_new(&e->faults);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "out of memory");
        goto out;
    }
    rc = emu_tls_init_library(e, opts->compat_lib, ei);
    if (rc != CLC_OK)
        goto out;
    rc = emu_tls_setup(e, ei);
    if (rc != CLC_OK)
        goto out;
    rc = emu_directory_new(e, &e->dir, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, rc, "directory");
        goto out;
    }
    for (size_t i = 0; i < sizeof mounts / sizeof mounts[0]; i++) {
        rc = mounts[i](e, ei);
        if (rc != CLC_OK)
            goto out;
    }
    port = first_https_port(e);
    if (port == 0) {
        rc = clc_errf(ei, CLC_ERR_INTERNAL, "no HTTPS listener to check");
        goto out;
    }
    rc = emu_tls_selfcheck(e->ca_bundle, port, ei);
    if (rc == CLC_OK)
        rc = emu_ticker_start(e, ei);
out:
    if (rc != CLC_OK) {
        emu_stop(e);
        return rc;
    }
    *out = e;
    return CLC_OK;
}

void emu_stop(struct emu *e)
{
    if (e == NULL)
        return;
    /* Listeners first: no handler may run while the state goes away. */
    emu_listeners_stop(e);
    emu_ticker_stop(e);
    emu_ticker_cleanup(e);
    emu_directory_free(e->dir);
    e->dir = NULL;
    emu_faults_free(e->faults);
    emu_tls_exit_library(e);
    free(e->ca_bundle);
    free(e->server_pem);
    emu_state_cleanup(e);
    cJSON_Delete(e->config);
    pthread_mutex_destroy(&e->hooks_mu);
    pthread_mutex_destroy(&e->listeners_mu);
    pthread_mutex_destroy(&e->clock_save_mu);
    pthread_mutex_destroy(&e->clock_mu);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

/* ---- components and endpoints contributions ---- */

static enum clc_err named_add(struct emu *e, struct emu_named *arr, size_t *n, const char *name,
                              void *ptr, emu_endpoints_fn fn)
{
    enum clc_err rc = CLC_OK;

    if (name == NULL || name[0] == '\0' || strlen(name) >= EMU_KEY_MAX)
        return CLC_ERR_INVALID;
    pthread_mutex_lock(&e->hooks_mu);
    for (size_t i = 0; i < *n && rc == CLC_OK; i++)
        if (strcmp(arr[i].name, name) == 0)
            rc = CLC_ERR_CONFLICT;
    if (rc == CLC_OK && *n == EMU_MAX_HOOKS)
        rc = CLC_ERR_LIMIT;
    if (rc == CLC_OK) {
        snprintf(arr[*n].name, sizeof arr[*n].name, "%s", name);
        arr[*n].ptr = ptr;
        arr[*n].fn = fn;
        (*n)++;
    }
    pthread_mutex_unlock(&e->hooks_mu);
    return rc;
}

enum clc_err emu_component_set(struct emu *e, const char *name, void *ptr)
{
    return named_add(e, e->components, &e->ncomponents, name, ptr, NULL);
}

void *emu_component_get(const struct emu *e, const char *name)
{
    struct emu *me = (struct emu *)e;
    void *ptr = NULL;

    pthread_mutex_lock(&me->hooks_mu);
    for (size_t i = 0; i < me->ncomponents && ptr == NULL; i++)
        if (strcmp(me->components[i].name, name) == 0)
            ptr = me->components[i].ptr;
    pthread_mutex_unlock(&me->hooks_mu);
    return ptr;
}

enum clc_err emu_endpoints_add(struct emu *e, const char *key, emu_endpoints_fn fn, void *ctx)
{
    return fn == NULL ? CLC_ERR_INVALID : named_add(e, e->endpoints, &e->nendpoints, key, ctx, fn);
}

/* Each contribution under its key; a key the core already wrote is refused. */
static enum clc_err add_contributions(const struct emu *e, cJSON *doc)
{
    struct emu *me = (struct emu *)e;
    struct emu_named list[EMU_MAX_HOOKS];
    size_t n;

    pthread_mutex_lock(&me->hooks_mu);
    n = me->nendpoints;
    memcpy(list, me->endpoints, n * sizeof list[0]);
    pthread_mutex_unlock(&me->hooks_mu);
    for (size_t i = 0; i < n; i++) {
        if (cJSON_GetObjectItemCaseSensitive(doc, list[i].name) != NULL)
            return CLC_ERR_CONFLICT;
        cJSON *v = list[i].fn(e, list[i].ptr);
        if (v != NULL)
            cJSON_AddItemToObject(doc, list[i].name, v);
    }
    return CLC_OK;
}

/* ---- endpoints ---- */

cJSON *emu_services_json(const struct emu *e)
{
    struct emu *me = (struct emu *)e;
    cJSON *svc = cJSON_CreateObject();

    if (svc == NULL)
        return NULL;
    pthread_mutex_lock(&me->listeners_mu);
    for (size_t i = 0; i < me->nlisteners; i++) {
        const struct emu_listener *l = me->listeners[i];
        const char *slash = strchr(l->key, '/');
        cJSON *parent = svc, *item;
        char head[EMU_KEY_MAX];

        if (l->url[0] == '\0')
            continue;
        if (slash != NULL) {
            /* "keyvault/vault1" -> {"keyvault": {"vault1": url}} */
            snprintf(head, sizeof head, "%.*s", (int)(slash - l->key), l->key);
            parent = cJSON_GetObjectItemCaseSensitive(svc, head);
            if (parent == NULL)
                parent = cJSON_AddObjectToObject(svc, head);
            if (!cJSON_IsObject(parent))
                continue; /* a plain service of that name exists; keep it */
        }
        item = cJSON_CreateString(l->url);
        if (item == NULL || !cJSON_AddItemToObject(parent, slash ? slash + 1 : l->key, item)) {
            cJSON_Delete(item);
            cJSON_Delete(svc);
            svc = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&me->listeners_mu);
    return svc;
}

enum clc_err emu_endpoints_json(const struct emu *e, char **out, struct clc_errinfo *ei)
{
    cJSON *doc = cJSON_CreateObject(), *svc = emu_services_json(e), *ids = NULL;
    const char *tenant = emu_tenant(e);
    enum clc_err rc = CLC_ERR_NOMEM;

    *out = NULL;
    if (doc == NULL || svc == NULL)
        goto out;
    cJSON_AddItemToObject(doc, "services", svc);
    svc = NULL;
    if (clc_json_add_str(doc, "ca_bundle", e->ca_bundle ? e->ca_bundle : "") != CLC_OK ||
        clc_json_add_str(doc, "tenant", tenant ? tenant : "") != CLC_OK)
        goto out;
    if (e->dir != NULL) {
        ids = emu_directory_endpoints(e->dir);
        if (ids == NULL)
            goto out;
        cJSON_AddItemToObject(doc, "identities", ids);
        /* App Service style managed identity: clients send it as X-IDENTITY-HEADER. */
        const char *hdr = emu_directory_identity_header(e->dir);
        if (hdr != NULL && clc_json_add_str(doc, "identity_header", hdr) != CLC_OK)
            goto out;
    }
    if (add_contributions(e, doc) != CLC_OK)
        goto out;
    *out = clc_json_print(doc);
    if (*out != NULL)
        rc = CLC_OK;
out:
    cJSON_Delete(svc);
    cJSON_Delete(doc);
    return rc == CLC_OK ? rc : clc_errf(ei, rc, "endpoints document: out of memory");
}

enum clc_err emu_write_endpoints(const struct emu *e, const char *path, struct clc_errinfo *ei)
{
    char *text = NULL;
    enum clc_err rc;

    rc = emu_endpoints_json(e, &text, ei);
    if (rc != CLC_OK)
        return rc;
    /* 0600: the document holds the identities' client secrets. */
    rc = clc_file_write_atomic(path, text, strlen(text), 0600, ei);
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    return rc;
}
