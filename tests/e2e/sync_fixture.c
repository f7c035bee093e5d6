/* The certlc sync e2e fixture (sync_fixture.h): the emulator and its
 * clients, the files a server's administrator writes, and certlc runs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/auth.h"
#include "azure/keyvault.h"
#include "core/file.h"
#include "core/json.h"
#include "emulator/emu.h"
#include "emulator/services.h"
#include "net/http.h"
#include "sync_fixture.h"

#define VAULT_SCOPE "https://vault.azure.net/.default"

struct emu *sfx_emu;
cJSON *sfx_endpoints;
char sfx_dir[] = "/tmp/certlc-test-sync.XXXXXX";
char sfx_cfg[400], sfx_script[400], sfx_counter[400], sfx_arc_keys[400];
struct test_proc_result sfx_R;

static struct clc_http *http;
static struct clc_auth *renewer_auth, *admin_auth;
static struct clc_kv *renewer;

const char *sfx_ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(sfx_endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

const char *sfx_vault(void)
{
    return sfx_ep("services", "keyvault", "certlc");
}

void sfx_renew(const char *name, int pem)
{
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_errinfo ei;
    char cn[64];
    clc_kv_policy_init(&p);
    snprintf(p.kty, sizeof p.kty, "EC");
    snprintf(cn, sizeof cn, "CN=%s.contoso.com", name);
    p.subject = strdup(cn);
    p.issuer_name = strdup("Self");
    p.content_type = strdup(pem ? "application/x-pem-file" : "application/x-pkcs12");
    p.validity_months = 12;
    struct clc_kv_create req = {.policy = &p};
    clc_errinfo_clear(&ei);
    enum clc_err e = clc_kv_create(renewer, name, &req, &op, &ei);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
    if (e != CLC_OK)
        fail_msg("renew %s: %s", name, ei.msg);
}

void sfx_version(const char *name, char *out, size_t n)
{
    struct clc_kv_certificate c;
    assert_int_equal(clc_kv_get_certificate(renewer, name, NULL, &c, NULL), CLC_OK);
    snprintf(out, n, "%s", c.version);
    clc_kv_certificate_cleanup(&c);
}

static enum clc_err client_auth(const char *identity, struct clc_auth **out, struct clc_errinfo *ei)
{
    struct clc_secret *sec = NULL;
    const char *s = sfx_ep("identities", identity, "client_secret");
    struct clc_http_opts ho = {.ca_bundle = sfx_ep("ca_bundle", NULL, NULL)};
    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "no secret of %s", identity);
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = sfx_ep("services", "entra", NULL),
                               .tenant_id = sfx_ep("tenant", NULL, NULL),
                               .client_id = sfx_ep("identities", identity, "client_id"),
                               .client_secret = sec};
    enum clc_err e = clc_auth_new(&ao, &ho, out, ei);
    clc_secret_free(sec);
    return e;
}

int sfx_setup(void **state)
{
    (void)state;
    char *text = NULL, body[1200];
    struct clc_errinfo ei = {0};

    if (!mkdtemp(sfx_dir))
        return -1;
    /* The VM's (and the Arc machine's) identity is `sync`, which holds only
     * Key Vault Secrets User: least privilege for every method. */
    char emu_cfg[400];
    snprintf(sfx_arc_keys, sizeof sfx_arc_keys, "%s/arc-keys", sfx_dir);
    snprintf(emu_cfg, sizeof emu_cfg, "%s/emulator.json", sfx_dir);
    snprintf(body, sizeof body, "{\"managed_identity\": \"sync\", \"arc_key_dir\": \"%s\"}",
             sfx_arc_keys);
    if (clc_file_write_atomic(emu_cfg, body, strlen(body), 0600, NULL) != CLC_OK)
        return -1;
    struct emu_opts o = {.quiet = 1, .config_file = emu_cfg};
    if (emu_start(&o, &sfx_emu, &ei) != CLC_OK ||
        emu_endpoints_json(sfx_emu, &text, &ei) != CLC_OK) {
        fprintf(stderr, "emulator: %s\n", ei.msg);
        return -1;
    }
    sfx_endpoints = cJSON_Parse(text);
    free(text);
    if (!sfx_endpoints || !sfx_vault())
        return -1;
    /* certlc's own configuration: only the CA bundle to trust. */
    snprintf(sfx_cfg, sizeof sfx_cfg, "%s", sfx_config("certlc", ""));
    /* The reload command: counts its runs; fails while <counter>.fail exists. */
    snprintf(sfx_script, sizeof sfx_script, "%s/reload.sh", sfx_dir);
    snprintf(sfx_counter, sizeof sfx_counter, "%s/reloads", sfx_dir);
    const char *sh = "#!/bin/sh\n[ -e \"$1.fail\" ] && exit 4\necho reload >> \"$1\"\n";
    if (clc_file_write_atomic(sfx_script, sh, strlen(sh), 0700, NULL) != CLC_OK)
        return -1;

    struct clc_http_opts ho = {.ca_bundle = sfx_ep("ca_bundle", NULL, NULL)};
    struct clc_kv_opts ko = {.vault_url = sfx_vault(),
                             .disable_challenge_resource_verification = 1};
    enum clc_err e = client_auth("renewer", &renewer_auth, &ei);
    if (e == CLC_OK)
        e = client_auth("admin", &admin_auth, &ei);
    if (e == CLC_OK)
        e = clc_kv_new(&ko, &ho, renewer_auth, &renewer, &ei);
    if (e == CLC_OK)
        e = clc_http_new(&ho, &http, &ei);
    if (e != CLC_OK) {
        fprintf(stderr, "client: %s\n", ei.msg);
        return -1;
    }
    sfx_renew("web", 0);
    sfx_renew("api", 1);
    return 0;
}

int sfx_teardown(void **state)
{
    (void)state;
    char cmd[600];
    clc_kv_free(renewer);
    clc_auth_free(renewer_auth);
    clc_auth_free(admin_auth);
    clc_http_free(http);
    cJSON_Delete(sfx_endpoints);
    emu_stop(sfx_emu);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", sfx_dir);
    return system(cmd) == 0 ? 0 : -1;
}

const char *sfx_settings(const char *name, const struct sfx_opts *o)
{
    static char path[400];
    char text[8192], msi[300], client[120] = "";
    const char *v = o->vault_url ? o->vault_url : sfx_vault();
    if (o->msi_endpoint)
        snprintf(msi, sizeof msi, "%s", o->msi_endpoint);
    else
        snprintf(msi, sizeof msi, "%s/metadata/identity", sfx_ep("services", "imds", NULL));
    if (!o->no_client_id)
        snprintf(client, sizeof client, ", \"msiClientId\": \"%s\"",
                 sfx_ep("identities", o->identity ? o->identity : "sync", "client_id"));
    int n = snprintf(
        text, sizeof text,
        "{\"secretsManagementSettings\": {\"pollingIntervalInS\": \"3600\","
        " \"certificateStoreLocation\": \"%s\", \"observedCertificates\": "
        "[\"%s/secrets/web\"%s%s%s%s]%s},"
        " \"authenticationSettings\": {\"msiEndpoint\": \"%s\"%s},"
        " \"certlc\": {\"verifyChallengeResource\": false, \"vaultNames\": {\"%s\": \"certlc\"},"
        " \"reload\": {\"command\": [\"/bin/sh\", \"%s\", \"%s\"], \"timeoutS\": 10}%s}}",
        o->store, v, o->api ? ", {\"url\": \"" : "", o->api ? v : "",
        o->api ? "/secrets/api\", \"certlc\": {\"layout\": \"separate\"}}" : "",
        o->extra_obs ? o->extra_obs : "", o->extra_sms ? o->extra_sms : "", msi, client, v,
        sfx_script, sfx_counter, o->extra_own ? o->extra_own : "");
    assert_true(n > 0 && (size_t)n < sizeof text);
    snprintf(path, sizeof path, "%s/%s.json", sfx_dir, name);
    assert_int_equal(clc_file_write_atomic(path, text, strlen(text), 0600, NULL), CLC_OK);
    return path;
}

const char *sfx_config(const char *name, const char *auth_json)
{
    static char path[400];
    char text[4096];
    int n = snprintf(text, sizeof text, "{\"http\": {\"ca_bundle\": \"%s\"}%s}",
                     sfx_ep("ca_bundle", NULL, NULL), auth_json);
    assert_true(n > 0 && (size_t)n < sizeof text);
    snprintf(path, sizeof path, "%s/%s-config.json", sfx_dir, name);
    assert_int_equal(clc_file_write_atomic(path, text, strlen(text), 0600, NULL), CLC_OK);
    return path;
}

int sfx_sync_cfg(const char *config, const char *settings_path)
{
    char *argv[] = {CERTLC,   "--config",   (char *)config,
                    "sync",   "--settings", (char *)settings_path,
                    "--once", NULL};
    assert_int_equal(test_proc_run(argv, NULL, 60000, &sfx_R), 0);
    assert_false(sfx_R.timed_out);
    return sfx_R.exit_code;
}

int sfx_sync(const char *settings_path)
{
    return sfx_sync_cfg(sfx_cfg, settings_path);
}

int sfx_reloads(void)
{
    char *text = NULL;
    int n = 0;
    if (clc_file_read(sfx_counter, 4096, &text, NULL, NULL) != CLC_OK)
        return 0;
    for (char *p = text; (p = strstr(p, "reload")) != NULL; p++)
        n++;
    free(text);
    return n;
}

void sfx_reset_counter(void)
{
    unlink(sfx_counter);
}

void sfx_link(const char *store, const char *link, char *out, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", store, link);
    ssize_t k = readlink(p, out, n - 1);
    out[k > 0 ? k : 0] = '\0';
}

mode_t sfx_mode(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        fail_msg("%s missing", path);
    return sb.st_mode & 07777;
}

/* An admin request: token for scope, JSON body or none; the parsed answer. */
static cJSON *admin_call(const char *method, const char *url, const char *scope, const char *body,
                         long want)
{
    struct clc_secret *tok = NULL;
    struct clc_errinfo ei = {0};
    struct clc_http_resp resp;
    cJSON *j = NULL;
    if (clc_auth_token(admin_auth, scope, &tok, NULL, &ei) != CLC_OK)
        fail_msg("admin token: %s", ei.msg);
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .content_type = body ? "application/json" : NULL,
                               .bearer = tok};
    clc_http_resp_init(&resp);
    enum clc_err e = clc_http_do(http, &req, &resp, &ei);
    clc_secret_free(tok);
    if (e != CLC_OK)
        fail_msg("%s %s: %s", method, url, ei.msg);
    if (resp.status != want)
        fail_msg("%s %s: HTTP %ld: %s", method, url, resp.status, clc_buf_str(&resp.body));
    j = cJSON_Parse(clc_buf_str(&resp.body));
    clc_http_resp_cleanup(&resp);
    assert_non_null(j);
    return j;
}

char *sfx_set_secret(const char *name, const char *value, const char *content_type)
{
    char url[400];
    cJSON *b = cJSON_CreateObject();
    assert_int_equal(clc_json_add_str(b, "value", value), CLC_OK);
    if (content_type)
        assert_int_equal(clc_json_add_str(b, "contentType", content_type), CLC_OK);
    char *body = clc_json_print(b);
    cJSON_Delete(b);
    snprintf(url, sizeof url, "%s/secrets/%s?api-version=7.5", sfx_vault(), name);
    cJSON *j = admin_call("PUT", url, VAULT_SCOPE, body, 200);
    free(body);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    assert_true(cJSON_IsString(id));
    char *version = strdup(strrchr(id->valuestring, '/') + 1);
    cJSON_Delete(j);
    return version;
}

void sfx_write_federated(const char *identity, const char *path)
{
    char url[600];
    snprintf(url, sizeof url, "%s/%s/federation/token?client_id=%s",
             sfx_ep("services", "entra", NULL), sfx_ep("tenant", NULL, NULL),
             sfx_ep("identities", identity, "client_id"));
    cJSON *j = admin_call("GET", url, EMU_CONTROL_AUDIENCE "/.default", NULL, 200);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    assert_true(cJSON_IsString(t));
    assert_int_equal(
        clc_file_write_atomic(path, t->valuestring, strlen(t->valuestring), 0600, NULL), CLC_OK);
    cJSON_Delete(j);
}
