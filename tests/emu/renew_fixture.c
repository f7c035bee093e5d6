/* Test support for the renewal worker (see renew_fixture.h). */
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

#include "azure/storage_auth.h"
#include "core/b64.h"
#include "core/file.h"
#include "core/log.h"
#include "renew_fixture.h"
#include "support/emu_admin.h"

struct rf R;

#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static int64_t emu_clock_ms(void *ctx)
{
    (void)ctx;
    return emu_now_ms(R.e);
}

static void no_sleep(int64_t ms, void *ctx)
{
    (void)ms;
    (void)ctx;
}

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(R.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static struct clc_auth *make_auth(const char *identity)
{
    struct clc_secret *sec = NULL;
    struct clc_auth *a = NULL;
    struct clc_errinfo ei = {0};
    const char *s = ep("identities", identity, "client_secret");
    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return NULL;
    struct clc_auth_opts o = {.method = CLC_AUTH_CLIENT_SECRET,
                              .authority_host = ep("services", "entra", NULL),
                              .tenant_id = ep("tenant", NULL, NULL),
                              .client_id = ep("identities", identity, "client_id"),
                              .client_secret = sec};
    if (clc_auth_new(&o, &R.http, &a, &ei) != CLC_OK)
        fprintf(stderr, "auth %s: %s\n", identity, ei.msg);
    clc_secret_free(sec);
    return a;
}

static int write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    size_t n = fwrite(text, 1, len, f);
    fclose(f);
    chmod(path, 0600);
    return n == len ? 0 : -1;
}

/* The CA's root, for trust_anchors (the AIA file needs no auth). */
static int fetch_root(const char *path)
{
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    char url[512];
    int rc = -1;
    snprintf(url, sizeof url, "%s/CertEnroll/certlc-root-ca.crt?Enc=b64",
             emu_service_url(R.e, "ca"));
    struct clc_http_req req = {.method = "GET", .url = url};
    clc_http_resp_init(&resp);
    if (clc_http_do(R.admin_http, &req, &resp, &ei) == CLC_OK && resp.status == 200)
        rc = write_file(path, resp.body.data, resp.body.len);
    else
        fprintf(stderr, "root CA: %ld %s\n", resp.status, ei.msg);
    clc_http_resp_cleanup(&resp);
    return rc;
}

static const struct clc_config_key base_keys[] = {
    {"ca.*", CLC_CFG_OBJ, "CAs"},
};

const char *rf_extra_ca;

int rf_setup_with(const char *extra_renew)
{
    struct emu_opts o = {.quiet = 1};
    struct clc_errinfo ei = {0};
    char *text = NULL, path[300], pw[300], anchors[300], key[300];
    static char cfgtext[8192];

    memset(&R, 0, sizeof R);
    /* RF_LOG=info shows every renewal step when a test needs explaining. */
    const char *lv = getenv("RF_LOG");
    int level = lv ? clc_log_level_parse(lv) : -1;
    clc_log_setup(level >= 0 ? (enum clc_log_level)level : CLC_LOG_WARN, CLC_LOG_TEXT, stderr);
    snprintf(R.dir, sizeof R.dir, "/tmp/certlc-renew-XXXXXX");
    if (!mkdtemp(R.dir))
        return -1;
    if (emu_start(&o, &R.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(R.e, &text, &ei) != CLC_OK)
        return -1;
    R.endpoints = cJSON_Parse(text);
    free(text);
    R.http.ca_bundle = emu_ca_bundle(R.e);
    R.http.timeout_ms = 20000;
    R.clock.now_ms = emu_clock_ms;
    R.http.clock = &R.clock;
    clc_retry_policy_default(&R.retry);
    R.retry.sleep_ms = no_sleep;
    R.renewer = make_auth("renewer");
    R.admin = make_auth("admin");
    if (!R.renewer || !R.admin || clc_http_new(&R.http, &R.admin_http, &ei) != CLC_OK)
        return -1;

    snprintf(pw, sizeof pw, "%s/ca-password", R.dir);
    snprintf(anchors, sizeof anchors, "%s/root.pem", R.dir);
    snprintf(key, sizeof key, "%s/queue-key", R.dir);
    const char *capw = ep("ca_accounts", "renewer", NULL);
    if (!capw || write_file(pw, capw, strlen(capw)) || fetch_root(anchors) ||
        write_file(key, DEV_KEY, strlen(DEV_KEY)))
        return -1;
    snprintf(cfgtext, sizeof cfgtext,
             "{\"keyvault\":{\"vaults\":{\"%s\":\"%s\"},\"verify_challenge_resource\":false},"
             "\"ca\":{\"corp\":{\"type\":\"adcs\",\"url\":\"%s/certsrv\",\"auth\":\"basic\","
             "\"username\":\"renewer\",\"password_file\":\"%s\",\"trust_anchors\":\"%s\","
             "\"tls_ca_bundle\":\"%s\",\"timeout_s\":10},"
             "\"est\":{\"type\":\"est\",\"url\":\"%s/.well-known/est\",\"auth\":\"basic\","
             "\"username\":\"renewer\",\"password_file\":\"%s\",\"trust_anchors\":\"%s\","
             "\"tls_ca_bundle\":\"%s\",\"timeout_s\":10}%s%s},"
             "\"renew\":{\"queue\":{\"url\":\"%s/%s\",\"auth\":\"shared_key\",\"account\":\"%s\","
             "\"key_file\":\"%s\"},\"deadletter\":{\"url\":\"%s/%s\"},"
             "\"default_ca\":\"corp\",\"default_template\":\"WebServer\"%s%s}}",
             RF_VAULT, ep("services", "keyvault", RF_VAULT), emu_service_url(R.e, "ca"), pw,
             anchors, emu_ca_bundle(R.e), emu_service_url(R.e, "ca"), pw, anchors,
             emu_ca_bundle(R.e), rf_extra_ca ? "," : "", rf_extra_ca ? rf_extra_ca : "",
             emu_service_url(R.e, "queue"), RF_ACCOUNT, RF_ACCOUNT, key,
             emu_service_url(R.e, "blob"), RF_ACCOUNT, extra_renew ? "," : "",
             extra_renew ? extra_renew : "");
    size_t n = 1 + clc_kv_config_nkeys + clc_renew_config_nkeys;
    static struct clc_config_key schema[128];
    if (n > 128)
        return -1;
    memcpy(schema, base_keys, sizeof base_keys);
    memcpy(schema + 1, clc_kv_config_keys, clc_kv_config_nkeys * sizeof *schema);
    memcpy(schema + 1 + clc_kv_config_nkeys, clc_renew_config_keys,
           clc_renew_config_nkeys * sizeof *schema);
    if (clc_config_load_text(cfgtext, strlen(cfgtext), "test", NULL, schema, n, &R.cfg, &ei) !=
            CLC_OK ||
        clc_renew_settings_from_config(R.cfg, &R.set, &ei) != CLC_OK) {
        fprintf(stderr, "config: %s\n", ei.msg);
        return -1;
    }
    struct clc_secret *k = NULL;
    if (clc_secret_new(DEV_KEY, strlen(DEV_KEY), &k) != CLC_OK ||
        clc_storage_cred_shared_key(RF_ACCOUNT, k, &R.cred, &ei) != CLC_OK)
        return -1;
    clc_secret_free(k);
    struct clc_storage_opts so = {
        .endpoint = R.set.queue_url, .cred = R.cred, .http = &R.http, .clock = &R.clock};
    if (clc_queue_new(&so, &R.q, &ei) != CLC_OK)
        return -1;
    so.endpoint = R.set.blob_url;
    if (clc_blob_new(&so, &R.blob, &ei) != CLC_OK)
        return -1;
    if (clc_queue_create(R.q, R.set.queue_name, NULL, NULL, &ei) != CLC_OK ||
        clc_queue_create(R.q, R.set.poison_queue, NULL, NULL, &ei) != CLC_OK) {
        fprintf(stderr, "queues: %s\n", ei.msg);
        return -1;
    }
    struct clc_kv_opts ko = {.vault_url = ep("services", "keyvault", RF_VAULT),
                             .vault_name = RF_VAULT,
                             .disable_challenge_resource_verification = 1,
                             .retry = &R.retry};
    if (clc_kv_new(&ko, &R.http, R.renewer, &R.kv, &ei) != CLC_OK)
        return -1;
    (void)path;
    return 0;
}

int rf_setup(void **state)
{
    (void)state;
    return rf_setup_with(NULL);
}

int rf_teardown(void **state)
{
    (void)state;
    char cmd[300];
    clc_kv_free(R.kv);
    clc_queue_free(R.q);
    clc_blob_free(R.blob);
    clc_storage_cred_free(R.cred);
    clc_renew_settings_cleanup(&R.set);
    clc_config_free(R.cfg);
    clc_http_free(R.admin_http);
    clc_auth_free(R.renewer);
    clc_auth_free(R.admin);
    cJSON_Delete(R.endpoints);
    test_emu_admin_forget(R.e);
    emu_stop(R.e);
    if (R.dir[0]) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", R.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", R.dir);
    }
    memset(&R, 0, sizeof R);
    return 0;
}

void rf_reset(void)
{
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_queue_clear(R.q, R.set.queue_name, &ei), CLC_OK);
    assert_int_equal(clc_queue_clear(R.q, R.set.poison_queue, &ei), CLC_OK);
    rf_faults_clear();
}

struct clc_worker *rf_worker(int threads, int abort_after)
{
    return rf_worker_with(threads, abort_after, NULL, NULL);
}

struct clc_worker *rf_worker_with(int threads, int abort_after, struct clc_notify *notify,
                                  struct clc_la *la)
{
    struct clc_worker *w = NULL;
    struct clc_errinfo ei = {0};
    struct clc_worker_opts o = {.cfg = R.cfg,
                                .notify = notify,
                                .la = la,
                                .set = &R.set,
                                .http = &R.http,
                                .auth = R.renewer,
                                .cred = R.cred,
                                .clock = &R.clock,
                                .retry = &R.retry,
                                .threads = threads,
                                .abort_after = abort_after};
    if (clc_worker_new(&o, &w, &ei) != CLC_OK)
        fail_msg("worker: %s", ei.msg);
    return w;
}

struct clc_worker_summary rf_drain(int abort_after)
{
    struct clc_worker_summary s;
    struct clc_errinfo ei = {0};
    struct clc_worker *w = rf_worker(1, abort_after);
    if (clc_worker_drain(w, &s, &ei) != CLC_OK)
        fail_msg("drain: %s", ei.msg);
    clc_worker_free(w);
    return s;
}

long rf_control(const char *method, const char *path, const char *body, char **out)
{
    struct clc_http_resp resp;
    long status = test_emu_admin_call(R.e, R.admin_http, method, path, body, &resp);

    if (out)
        *out = clc_buf_take(&resp.body, NULL);
    clc_http_resp_cleanup(&resp);
    return status;
}

void rf_fault(const char *service, const char *method, const char *path, int count, int status)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"service\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"count\":%d,\"status\":%d%s}",
             service, method, path, count, status, status == 429 ? ",\"retry_after\":1" : "");
    long st = rf_control("POST", "/control/faults", body, NULL);
    assert_true(st >= 200 && st < 300);
}

void rf_faults_clear(void)
{
    long st = rf_control("DELETE", "/control/faults", NULL, NULL);
    assert_true(st >= 200 && st < 300);
}

void rf_advance(int64_t seconds)
{
    emu_clock_advance(R.e, seconds);
}

void rf_seed(const char *name, const struct rf_seed *s, struct rf_version *out)
{
    cJSON *b = cJSON_CreateObject(), *sans = cJSON_CreateArray();
    int64_t now = emu_now_ms(R.e) / 1000;
    int64_t life = s && s->lifetime_s ? s->lifetime_s : 365 * 86400;
    int64_t left = s && s->left_s ? s->left_s : 10 * 86400;
    char path[200], *resp = NULL;

    cJSON_AddStringToObject(b, "name", name);
    for (size_t i = 0; s && s->sans && s->sans[i]; i++)
        cJSON_AddItemToArray(sans, cJSON_CreateString(s->sans[i]));
    cJSON_AddItemToObject(b, "sans", sans);
    cJSON *key = cJSON_AddObjectToObject(b, "key");
    if (s && s->kty && strcmp(s->kty, "RSA") == 0) {
        cJSON_AddStringToObject(key, "kty", "RSA");
        cJSON_AddNumberToObject(key, "key_size", 2048);
    } else {
        cJSON_AddStringToObject(key, "kty", "EC");
        cJSON_AddStringToObject(key, "crv", "P-256");
    }
    cJSON_AddNumberToObject(b, "not_after", (double)(now + left));
    cJSON_AddNumberToObject(b, "not_before", (double)(now + left - life));
    if (s && s->tags)
        cJSON_AddItemToObject(b, "tags", cJSON_Parse(s->tags));
    char *body = cJSON_PrintUnformatted(b);
    snprintf(path, sizeof path, "/control/keyvault/%s/seed", RF_VAULT);
    assert_int_equal(rf_control("POST", path, body, &resp), 201);
    cJSON *j = cJSON_Parse(resp);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
    assert_non_null(id);
    const char *slash = strrchr(id, '/');
    snprintf(out->version, sizeof out->version, "%s", slash + 1);
    cJSON *attrs = cJSON_GetObjectItem(j, "attributes");
    out->nbf = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(attrs, "nbf"));
    out->exp = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(attrs, "exp"));
    cJSON_Delete(j);
    cJSON_Delete(b);
    free(body);
    free(resp);
}

void rf_put_raw(const char *text, size_t len)
{
    struct clc_errinfo ei = {0};
    if (clc_queue_put(R.q, R.set.queue_name, text, len, 0, 0, NULL, &ei) != CLC_OK)
        fail_msg("put: %s", ei.msg);
}

void rf_event(const char *name, const struct rf_version *v)
{
    char json[2048], *b64 = NULL;
    size_t n = 0;
    const char *url = ep("services", "keyvault", RF_VAULT);
    snprintf(json, sizeof json,
             "{\"id\":\"%08x-0000-4000-8000-%012x\",\"topic\":\"/subscriptions/0/resourceGroups/"
             "rg/providers/Microsoft.KeyVault/vaults/%s\",\"subject\":\"%s\","
             "\"eventType\":\"Microsoft.KeyVault.CertificateNearExpiry\","
             "\"eventTime\":\"2026-01-01T00:00:00Z\",\"data\":{\"Id\":\"%s/certificates/%s/%s\","
             "\"VaultName\":\"%s\",\"ObjectType\":\"Certificate\",\"ObjectName\":\"%s\","
             "\"Version\":\"%s\",\"NBF\":%lld,\"EXP\":%lld},\"dataVersion\":\"1\","
             "\"metadataVersion\":\"1\"}",
             (unsigned)rand(), (unsigned)rand(), RF_VAULT, name, url, name, v->version, RF_VAULT,
             name, v->version, (long long)v->nbf, (long long)v->exp);
    assert_int_equal(clc_b64_encode(json, strlen(json), &b64, &n), CLC_OK);
    rf_put_raw(b64, n);
    free(b64);
}

int rf_versions(const char *name)
{
    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *c = NULL;
    struct clc_errinfo ei = {0};
    int n = 0;
    assert_int_equal(clc_kv_list_versions(R.kv, name, 25, &it, &ei), CLC_OK);
    while (clc_kv_iter_next(it, &c, &ei) == CLC_OK && c)
        n++;
    clc_kv_iter_free(it);
    return n;
}

void rf_latest(const char *name, struct clc_kv_certificate *out)
{
    struct clc_errinfo ei = {0};
    if (clc_kv_get_certificate(R.kv, name, NULL, out, &ei) != CLC_OK)
        fail_msg("get %s: %s", name, ei.msg);
}

int rf_queue_count(const char *queue)
{
    char *body = NULL;
    int n = -1;
    assert_int_equal(rf_control("GET", "/control/state", NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    const cJSON *acc = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "queue"), RF_ACCOUNT);
    const cJSON *q;
    cJSON_ArrayForEach(q, acc)
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(q, "name")), queue) == 0)
            n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(q, "messages"));
    }
    cJSON_Delete(j);
    free(body);
    return n < 0 ? 0 : n;
}

static cJSON *ca_requests(void)
{
    char *body = NULL;
    assert_int_equal(rf_control("GET", "/control/ca/requests", NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    free(body);
    assert_non_null(j);
    return j;
}

int rf_ca_requests(void)
{
    cJSON *j = ca_requests();
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(j, "requests"));
    cJSON_Delete(j);
    return n;
}

void rf_ca_pending_id(char *out, size_t n)
{
    cJSON *j = ca_requests();
    const cJSON *list = cJSON_GetObjectItem(j, "requests");
    const cJSON *it;
    out[0] = '\0';
    cJSON_ArrayForEach(it, list)
    {
        const char *d = cJSON_GetStringValue(cJSON_GetObjectItem(it, "status"));
        const cJSON *id = cJSON_GetObjectItem(it, "id");
        if (d && strcmp(d, "pending") == 0)
            snprintf(out, n, "%lld", (long long)cJSON_GetNumberValue(id));
    }
    cJSON_Delete(j);
}
