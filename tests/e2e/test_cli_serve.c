/* certlc serve through the binary: an emulator (Entra, Key Vault, Storage
 * queue) runs in this process; certlc serve runs as a child. A delivery to
 * its webhook wakes the worker, which drains a message put on the queue
 * (the schedule is an hour away, so only the wake can explain the drain);
 * /healthz and /metrics answer; SIGTERM stops it with exit 0. Also the
 * start-up errors (no secret, no compatibility library) and that neither
 * the secret nor the query string reaches the log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "azure/queue.h"
#include "azure/storage.h"
#include "azure/storage_auth.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "emulator/emu.h"
#include "emulator/queue.h"
#include "net/http.h"
#include "support/child.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"
#define SECRET "serve-e2e-shared-secret-4f2a9c"
#define ACCOUNT "devstoreaccount1"
/* Azurite's published development key, which the emulator also accepts. */
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define START_MS 15000
#define WAIT_MS 15000
#define STOP_MS 15000

static struct emu *emu;
static cJSON *endpoints;
static char dir[] = "/tmp/certlc-test-cli-serve.XXXXXX";
static char data_dir[400], cfg_ok[400], cfg_nosecret[400], cfg_nocompat[400];
static struct clc_http *http;

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* ---- the child ---- */

static void child_start(struct test_child *c, const char *config)
{
    char *argv[] = {CERTLC, "--config", (char *)config, "serve", NULL};
    assert_int_equal(test_child_start(c, argv), 0);
}

/* ---- set-up ---- */

static int write_text(const char *path, const char *text)
{
    return clc_file_write_atomic(path, text, strlen(text), 0600, NULL) == CLC_OK ? 0 : -1;
}

/* The webhook's certificate, signed by the emulator's CA (its data dir has
 * ca.pem and ca.key), so the test's client can verify it. */
static int make_webhook_cert(const char *cert_path, const char *key_path)
{
    static const char *const sans[] = {"IP:127.0.0.1", "DNS:localhost", NULL};
    char p[500];
    struct clc_signer *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    struct clc_x509_spec spec = {.subject_cn = "certlc serve e2e", .sans = sans, .server_auth = 1};
    struct clc_errinfo ei = {0};
    int rc = -1;

    spec.not_before = (int64_t)time(NULL) - 3600;
    spec.not_after = (int64_t)time(NULL) + 86400;
    snprintf(p, sizeof p, "%s/ca.pem", data_dir);
    if (clc_x509_load_pem_file(p, &ca, &ei) != CLC_OK)
        goto out;
    snprintf(p, sizeof p, "%s/ca.key", data_dir);
    if (clc_signer_load_pem(p, &ca_key, &ei) != CLC_OK ||
        clc_signer_generate("EC", 256, &key, &ei) != CLC_OK ||
        clc_x509_make(&spec, key, ca, ca_key, &leaf, &ei) != CLC_OK ||
        clc_x509_save_pem(&leaf, 1, cert_path, 0644, &ei) != CLC_OK ||
        clc_signer_save_pem(key, key_path, &ei) != CLC_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "webhook certificate: %s\n", ei.msg);
    X509_free(leaf);
    X509_free(ca);
    clc_signer_free(key);
    clc_signer_free(ca_key);
    return rc;
}

/* A full certlc configuration; secret 0 leaves the webhook secret out,
 * compat non-NULL names the compatibility library. */
static int write_config(const char *path, int secret, const char *compat)
{
    char p[500];
    cJSON *c = cJSON_CreateObject();
    char *text;
    int rc;

    snprintf(p, sizeof p, "%s/renewer.secret", dir);
    if (write_text(p, ep("identities", "renewer", "client_secret")) != 0)
        return -1;
    cJSON *log = cJSON_AddObjectToObject(c, "log");
    cJSON_AddStringToObject(log, "level", "debug");
    cJSON *h = cJSON_AddObjectToObject(c, "http");
    cJSON_AddStringToObject(h, "ca_bundle", ep("ca_bundle", NULL, NULL));
    cJSON *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON_AddStringToObject(auth, "method", "client_secret");
    cJSON_AddStringToObject(auth, "authority_host", ep("services", "entra", NULL));
    cJSON_AddStringToObject(auth, "tenant_id", ep("tenant", NULL, NULL));
    cJSON_AddStringToObject(auth, "client_id", ep("identities", "renewer", "client_id"));
    cJSON_AddStringToObject(auth, "client_secret_file", p);
    cJSON *kv = cJSON_AddObjectToObject(c, "keyvault");
    cJSON *vaults = cJSON_AddObjectToObject(kv, "vaults");
    cJSON_AddStringToObject(vaults, "certlc", ep("services", "keyvault", "certlc"));
    cJSON_AddBoolToObject(kv, "verify_challenge_resource", 0);
    cJSON *renew = cJSON_AddObjectToObject(c, "renew");
    cJSON *queue = cJSON_AddObjectToObject(renew, "queue");
    char qurl[300];
    snprintf(qurl, sizeof qurl, "%s/%s", ep("services", "queue", NULL), ACCOUNT);
    cJSON_AddStringToObject(queue, "url", qurl);
    cJSON_AddStringToObject(queue, "auth", "shared_key");
    cJSON_AddStringToObject(queue, "account", ACCOUNT);
    char kf[500];
    snprintf(kf, sizeof kf, "%s/storage.key", dir);
    if (write_text(kf, DEV_KEY) != 0)
        return -1;
    cJSON_AddStringToObject(queue, "key_file", kf);
    /* Only a wake can make it drain within the test. */
    cJSON_AddNumberToObject(renew, "schedule_s", 3600);
    cJSON *wh = cJSON_AddObjectToObject(c, "webhook");
    cJSON_AddStringToObject(wh, "listen", "127.0.0.1");
    cJSON_AddNumberToObject(wh, "port", 0);
    snprintf(p, sizeof p, "%s/webhook.pem", dir);
    cJSON_AddStringToObject(wh, "certificate_file", p);
    snprintf(p, sizeof p, "%s/webhook.key", dir);
    cJSON_AddStringToObject(wh, "key_file", p);
    if (secret) {
        snprintf(p, sizeof p, "%s/webhook.secret", dir);
        if (write_text(p, SECRET "\n") != 0)
            return -1;
        cJSON_AddStringToObject(wh, "secret_file", p);
    }
    if (compat)
        cJSON_AddStringToObject(wh, "tls_compat_library", compat);
    text = cJSON_Print(c);
    rc = text && write_text(path, text) == 0 ? 0 : -1;
    free(text);
    cJSON_Delete(c);
    return rc;
}

/* The work and poison queues, through the queue client. */
static int make_queues(void)
{
    struct clc_secret *key = NULL;
    struct clc_storage_cred *cred = NULL;
    struct clc_queue *q = NULL;
    struct clc_http_opts ho = {.ca_bundle = ep("ca_bundle", NULL, NULL)};
    char url[300];
    struct clc_storage_opts so = {.endpoint = url, .http = &ho};
    struct clc_errinfo ei = {0};
    int rc = -1;

    snprintf(url, sizeof url, "%s/%s", ep("services", "queue", NULL), ACCOUNT);
    if (clc_secret_new(DEV_KEY, strlen(DEV_KEY), &key) != CLC_OK ||
        clc_storage_cred_shared_key(ACCOUNT, key, &cred, &ei) != CLC_OK)
        goto out;
    so.cred = cred;
    if (clc_queue_new(&so, &q, &ei) != CLC_OK ||
        clc_queue_create(q, "certlc", NULL, NULL, &ei) != CLC_OK ||
        clc_queue_create(q, "certlc-poison", NULL, NULL, &ei) != CLC_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "queues: %s\n", ei.msg);
    clc_queue_free(q);
    clc_storage_cred_free(cred);
    clc_secret_free(key);
    return rc;
}

static int setup(void **state)
{
    char emu_cfg[400], *text = NULL, p1[500], p2[500];
    struct clc_errinfo ei = {0};
    struct clc_http_opts ho = {.timeout_ms = 10000};

    (void)state;
    if (!mkdtemp(dir))
        return -1;
    snprintf(data_dir, sizeof data_dir, "%s/emu", dir);
    snprintf(emu_cfg, sizeof emu_cfg, "%s/emu.json", dir);
    if (write_text(emu_cfg, "{\"vaults\": [{\"name\": \"certlc\", \"port\": 0}]}") != 0)
        return -1;
    struct emu_opts o = {.quiet = 1, .config_file = emu_cfg, .data_dir = data_dir};
    if (emu_start(&o, &emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(emu, &text, &ei) != CLC_OK)
        return -1;
    endpoints = cJSON_Parse(text);
    free(text);
    snprintf(p1, sizeof p1, "%s/webhook.pem", dir);
    snprintf(p2, sizeof p2, "%s/webhook.key", dir);
    snprintf(cfg_ok, sizeof cfg_ok, "%s/serve.json", dir);
    snprintf(cfg_nosecret, sizeof cfg_nosecret, "%s/serve-nosecret.json", dir);
    snprintf(cfg_nocompat, sizeof cfg_nocompat, "%s/serve-nocompat.json", dir);
    ho.ca_bundle = ep("ca_bundle", NULL, NULL);
    if (!endpoints || make_webhook_cert(p1, p2) != 0 || make_queues() != 0 ||
        write_config(cfg_ok, 1, NULL) != 0 || write_config(cfg_nosecret, 0, NULL) != 0 ||
        write_config(cfg_nocompat, 1, "/nonexistent/libssl.so") != 0 ||
        clc_http_new(&ho, &http, &ei) != CLC_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    (void)state;
    clc_http_free(http);
    emu_stop(emu);
    cJSON_Delete(endpoints);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
    return 0;
}

/* ---- requests ---- */

static long webhook(int port, const char *method, const char *path, const char *body,
                    struct clc_http_resp *resp)
{
    char url[600];
    const char *hdrs[] = {"x-certlc-webhook-secret: " SECRET, NULL};
    struct clc_http_req r = {.method = method,
                             .url = url,
                             .headers = hdrs,
                             .body = body,
                             .body_len = body ? strlen(body) : 0,
                             .content_type = body ? "application/json" : NULL};
    struct clc_errinfo ei = {0};

    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
    clc_http_resp_init(resp);
    if (clc_http_do(http, &r, resp, &ei) != CLC_OK)
        fail_msg("%s %s: %s", method, path, ei.msg);
    return resp->status;
}

static const char NEAR[] =
    "[{\"id\":\"e2e-1\",\"topic\":\"/subscriptions/x/resourceGroups/r/providers/"
    "Microsoft.KeyVault/vaults/certlc\",\"subject\":\"app\",\"eventType\":"
    "\"Microsoft.KeyVault.CertificateNearExpiry\",\"eventTime\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"VaultName\":\"certlc\",\"ObjectType\":\"Certificate\",\"ObjectName\":"
    "\"app\",\"Version\":\"v1\",\"NBF\":1,\"EXP\":2},\"dataVersion\":\"1\","
    "\"metadataVersion\":\"1\"}]";

/* A sample's value from the /metrics text, -1 when absent. */
static double metric(const char *text, const char *series)
{
    const char *p = text;
    size_t n = strlen(series);

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
        p += n;
    }
    return -1;
}

static void test_serve_delivery_and_sigterm(void **state)
{
    static struct test_child c;
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    int port, code;
    int64_t t0;
    double drained = -1;

    (void)state;
    child_start(&c, cfg_ok);
    port = test_child_port(&c, "event=webhook.listening", START_MS);
    if (port == 0) {
        test_child_wait(&c, STOP_MS);
        fail_msg("certlc serve did not start:\n%s", c.log);
    }
    assert_int_equal(webhook(port, "GET", "/healthz", NULL, &resp), 200);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"worker\":\"running\""));
    clc_http_resp_cleanup(&resp);

    /* The start-up pass has read the queue once the depth shows; after
     * it the worker sleeps for the hour-long schedule. A message put now
     * stays untouched until the delivery wakes the worker. */
    t0 = clc_mono_ms();
    while (drained < 0 && clc_mono_ms() - t0 < WAIT_MS) {
        assert_int_equal(webhook(port, "GET", "/metrics", NULL, &resp), 200);
        drained = metric(clc_buf_str(&resp.body), "certlc_queue_depth");
        clc_http_resp_cleanup(&resp);
        if (drained < 0)
            clc_sleep_ms(50);
    }
    assert_true(drained == 0);
    clc_sleep_ms(300);
    assert_int_equal(emu_queue_put_message(emu, ACCOUNT, "certlc", "not an event", 12, -1, &ei),
                     CLC_OK);
    clc_sleep_ms(500);
    assert_int_equal(webhook(port, "GET", "/metrics", NULL, &resp), 200);
    /* Absent (-1) or 0: nothing was taken. */
    if (metric(clc_buf_str(&resp.body), "certlc_renewals_total{outcome=\"poisoned\"}") > 0)
        fail_msg("drained without a wake:\n%s", clc_buf_str(&resp.body));
    clc_http_resp_cleanup(&resp);
    drained = -1;
    assert_int_equal(webhook(port, "POST", "/api/events?code=" SECRET, NEAR, &resp), 202);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"accepted\":1"));
    clc_http_resp_cleanup(&resp);

    t0 = clc_mono_ms();
    while (clc_mono_ms() - t0 < WAIT_MS) {
        assert_int_equal(webhook(port, "GET", "/metrics", NULL, &resp), 200);
        drained = metric(clc_buf_str(&resp.body), "certlc_renewals_total{outcome=\"poisoned\"}");
        if (drained >= 1) {
            assert_true(metric(clc_buf_str(&resp.body),
                               "certlc_webhook_deliveries_total{result=\"accepted\"}") == 1);
            assert_true(metric(clc_buf_str(&resp.body), "certlc_up") == 1);
        }
        clc_http_resp_cleanup(&resp);
        if (drained >= 1)
            break;
        clc_sleep_ms(50);
    }
    if (drained < 1) {
        kill(c.pid, SIGTERM);
        test_child_wait(&c, STOP_MS);
        fail_msg("the woken worker did not take the message:\n%s", c.log);
    }

    assert_int_equal(kill(c.pid, SIGTERM), 0);
    code = test_child_wait(&c, STOP_MS);
    if (code != 0)
        fail_msg("exit %d after SIGTERM:\n%s", code, c.log);
    assert_non_null(strstr(c.log, "event=serve.stopped"));
    /* The secret (in the URL and the header) and the query never reach the log. */
    assert_null(strstr(c.log, SECRET));
    assert_null(strstr(c.log, "code="));
}

static void test_serve_refuses_bad_setup(void **state)
{
    char *argv1[] = {CERTLC, "--config", cfg_nosecret, "serve", NULL};
    char *argv2[] = {CERTLC, "--config", cfg_nocompat, "serve", NULL};
    char *argv3[] = {CERTLC, "serve", "--threads", "0", NULL};
    struct test_proc_result *r = malloc(sizeof *r);

    (void)state;
    assert_non_null(r);
    assert_int_equal(test_proc_run(argv1, NULL, 20000, r), 0);
    assert_int_equal(r->exit_code, 1);
    assert_non_null(strstr(r->err, "webhook.secret_file"));

    assert_int_equal(test_proc_run(argv2, NULL, 20000, r), 0);
    assert_int_equal(r->exit_code, 1);
    assert_non_null(strstr(r->err, "/nonexistent/libssl.so"));

    assert_int_equal(test_proc_run(argv3, NULL, 20000, r), 0);
    assert_int_equal(r->exit_code, 1);
    assert_non_null(strstr(r->err, "--threads"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_serve_delivery_and_sigterm),
        cmocka_unit_test(test_serve_refuses_bad_setup),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
