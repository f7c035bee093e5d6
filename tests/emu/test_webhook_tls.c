/* The webhook over real HTTPS (civetweb, the compatibility library, a server
 * certificate from clc_x509_make signed by the emulator's CA): secret,
 * limits and malformed bodies leave the server up; then the emulated Event
 * Grid validates a subscription and delivers a vault's near-expiry event. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/json.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "pipeline/webhook.h"
#include "test_emu_keyvault_fixture.h"

#define SECRET "eventgrid-shared-secret-0123456789"
#define MAX_BODY 16384
#define WAIT_MS 20000

static struct {
    struct clc_webhook *w;
    char base[128];
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int wakes;
} wh = {.mu = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void on_wake(void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&wh.mu);
    wh.wakes++;
    pthread_cond_broadcast(&wh.cond);
    pthread_mutex_unlock(&wh.mu);
}

static int wakes(void)
{
    int n;
    pthread_mutex_lock(&wh.mu);
    n = wh.wakes;
    pthread_mutex_unlock(&wh.mu);
    return n;
}

/* Waits (bounded, on the wall clock: the delivery runs on the emulator's
 * thread) until at least n wakes were seen. */
static int wait_wakes(int n, int ms)
{
    struct timespec ts;
    int got;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    pthread_mutex_lock(&wh.mu);
    while (wh.wakes < n)
        if (pthread_cond_timedwait(&wh.cond, &wh.mu, &ts) != 0)
            break;
    got = wh.wakes;
    pthread_mutex_unlock(&wh.mu);
    return got;
}

/* A server certificate for 127.0.0.1 signed by the emulator's own CA (its
 * data dir holds ca.pem and ca.key): Event Grid's deliveries verify TLS
 * against that CA. */
static void make_server_files(const char *cert_path, const char *key_path)
{
    static const char *const sans[] = {"IP:127.0.0.1", "DNS:localhost", NULL};
    char ca_pem[400], ca_key[400];
    struct clc_signer *ca_signer = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    struct clc_x509_spec spec;
    struct clc_errinfo ei = {0};
    int64_t now = (int64_t)time(NULL);

    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", kv.data_dir);
    snprintf(ca_key, sizeof ca_key, "%s/ca.key", kv.data_dir);
    assert_int_equal(clc_x509_load_pem_file(ca_pem, &ca, &ei), CLC_OK);
    assert_int_equal(clc_signer_load_pem(ca_key, &ca_signer, &ei), CLC_OK);
    assert_int_equal(clc_signer_generate("EC", 256, &key, &ei), CLC_OK);
    memset(&spec, 0, sizeof spec);
    spec.subject_cn = "certlc webhook test";
    spec.sans = sans;
    spec.not_before = now - 3600;
    spec.not_after = now + 86400;
    spec.server_auth = 1;
    assert_int_equal(clc_x509_make(&spec, key, ca, ca_signer, &leaf, &ei), CLC_OK);
    assert_int_equal(clc_x509_save_pem(&leaf, 1, cert_path, 0644, &ei), CLC_OK);
    assert_int_equal(clc_signer_save_pem(key, key_path, &ei), CLC_OK);
    X509_free(leaf);
    X509_free(ca);
    clc_signer_free(key);
    clc_signer_free(ca_signer);
}

static int setup(void **state)
{
    char cert[400], key[400];
    struct clc_secret *s = NULL;
    struct clc_errinfo ei = {0};
    struct clc_webhook_hooks h = {.wake = on_wake};
    struct clc_webhook_opts o = {
        .listen = "127.0.0.1", .port = 0, .max_body_bytes = MAX_BODY, .threads = 4};

    if (kvfx_setup(state) != 0)
        return -1;
    snprintf(cert, sizeof cert, "%s/webhook.pem", kv.dir);
    snprintf(key, sizeof key, "%s/webhook.key", kv.dir);
    make_server_files(cert, key);
    if (clc_secret_new(SECRET, strlen(SECRET), &s) != CLC_OK)
        return -1;
    o.cert_file = cert;
    o.key_file = key;
    o.secret = s;
    if (clc_webhook_start(&o, &h, &wh.w, &ei) != CLC_OK) {
        fprintf(stderr, "clc_webhook_start: %s\n", ei.msg);
        clc_secret_free(s);
        return -1;
    }
    clc_secret_free(s);
    snprintf(wh.base, sizeof wh.base, "https://127.0.0.1:%d", clc_webhook_port(wh.w));
    return 0;
}

static int teardown(void **state)
{
    clc_webhook_stop(wh.w);
    wh.w = NULL;
    return kvfx_teardown(state);
}

/* One request to the webhook over HTTPS, verified against the emulator's CA. */
static long req(const char *method, const char *path, const char *ctype, const char *body,
                size_t len, const char *secret_header, struct clc_http_resp *resp)
{
    char url[512], hdr[128];
    const char *headers[2] = {NULL, NULL};
    struct clc_errinfo ei = {0};
    struct clc_http_req r = {.method = method,
                             .url = url,
                             .headers = headers,
                             .body = body,
                             .body_len = len,
                             .content_type = ctype};

    snprintf(url, sizeof url, "%s%s", wh.base, path);
    if (secret_header != NULL) {
        snprintf(hdr, sizeof hdr, "%s: %s", CLC_WEBHOOK_SECRET_HEADER, secret_header);
        headers[0] = hdr;
    }
    clc_http_resp_init(resp);
    if (clc_http_do(kv.http, &r, resp, &ei) != CLC_OK)
        fail_msg("%s %s: %s", method, path, ei.msg);
    return resp->status;
}

static const char NEAR[] =
    "[{\"id\":\"e1\",\"topic\":\"/subscriptions/x/resourceGroups/r/providers/"
    "Microsoft.KeyVault/vaults/certlc\",\"subject\":\"democert\",\"eventType\":"
    "\"Microsoft.KeyVault.CertificateNearExpiry\",\"eventTime\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"VaultName\":\"certlc\",\"ObjectType\":\"Certificate\",\"ObjectName\":"
    "\"democert\",\"Version\":\"v1\",\"NBF\":1,\"EXP\":2},\"dataVersion\":\"1\","
    "\"metadataVersion\":\"1\"}]";

static void healthy(void)
{
    struct clc_http_resp resp;
    assert_int_equal(req("GET", "/healthz", NULL, NULL, 0, NULL, &resp), 200);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"status\":\"ok\""));
    clc_http_resp_cleanup(&resp);
}

static void test_direct_posts(void **state)
{
    struct clc_http_resp resp;
    const char *json = "application/json";
    int w0 = wakes();
    char *big;

    (void)state;
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, NEAR, strlen(NEAR), SECRET, &resp), 202);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(wakes(), w0 + 1);
    assert_int_equal(
        req("POST", CLC_WEBHOOK_PATH "?code=" SECRET, json, NEAR, strlen(NEAR), NULL, &resp), 202);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(wakes(), w0 + 2);

    /* Refused without a wake, and the server stays up after each. */
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, NEAR, strlen(NEAR), NULL, &resp), 401);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, NEAR, strlen(NEAR), "wrong", &resp), 403);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, "text/plain", NEAR, strlen(NEAR), SECRET, &resp),
                     415);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, NEAR, 40, SECRET, &resp), 400);
    assert_non_null(strstr(clc_buf_str(&resp.body), "not_json"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, "\x01\xff\xfe garbage", 12, SECRET, &resp),
                     400);
    clc_http_resp_cleanup(&resp);
    healthy();

    /* Oversized: a little over (read and dropped) and far over (not read). */
    big = malloc(4 * MAX_BODY);
    assert_non_null(big);
    memset(big, ' ', 4 * MAX_BODY);
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, big, MAX_BODY + 1, SECRET, &resp), 413);
    clc_http_resp_cleanup(&resp);
    healthy();
    assert_int_equal(req("POST", CLC_WEBHOOK_PATH, json, big, 4 * MAX_BODY, SECRET, &resp), 413);
    clc_http_resp_cleanup(&resp);
    free(big);
    healthy();
    assert_int_equal(wakes(), w0 + 2);

    /* The counts show on /metrics. */
    assert_int_equal(req("GET", "/metrics", NULL, NULL, 0, NULL, &resp), 200);
    assert_non_null(strstr(clc_buf_str(&resp.body),
                           "\ncertlc_webhook_deliveries_total{result=\"too_large\"} 2\n"));
    assert_non_null(strstr(clc_buf_str(&resp.body),
                           "\ncertlc_webhook_deliveries_total{result=\"forbidden\"} 1\n"));
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"),
                        "text/plain; version=0.0.4; charset=utf-8");
    clc_http_resp_cleanup(&resp);
}

/* The emulated Event Grid: a webhook subscription on the vault "certlc"
 * (handshake with our secret header), then a certificate seeded to expire
 * within 30 days: its CertificateNearExpiry event reaches the webhook. */
static void test_eventgrid_delivery(void **state)
{
    struct kvr r;
    char body[1024];
    int64_t now = emu_now_ms(kv.e) / 1000, t0;
    const char *st = NULL;
    int w0 = wakes(), delivered = 0;

    (void)state;
    snprintf(
        body, sizeof body,
        "{\"topic\":\"certlc\",\"destination\":{\"type\":\"webhook\",\"url\":\"%s%s\","
        "\"shared_secret\":\"%s\",\"shared_secret_header\":\"%s\"},"
        "\"filter\":{\"included_event_types\":[\"Microsoft.KeyVault.CertificateNearExpiry\"]}}",
        wh.base, CLC_WEBHOOK_PATH, SECRET, CLC_WEBHOOK_SECRET_HEADER);
    kv_admin("PUT", "/control/eventgrid/subscriptions/certlc-webhook", body, &r);
    if (r.status != 200 && r.status != 201)
        fail_msg("PUT subscription: %ld %s", r.status, clc_buf_str(&r.resp.body));
    kvr_free(&r);

    /* The handshake runs on Event Grid's thread: bounded wait. */
    t0 = clc_mono_ms();
    for (;;) {
        kv_admin("GET", "/control/eventgrid/subscriptions/certlc-webhook", NULL, &r);
        kv_expect(&r, 200);
        st = kv_str(r.json, "provisioning_state");
        if (st != NULL && strcmp(st, "Creating") != 0)
            break;
        kvr_free(&r);
        if (clc_mono_ms() - t0 > WAIT_MS)
            fail_msg("the subscription is still being validated");
        clc_sleep_ms(50);
    }
    if (strcmp(st, "Succeeded") != 0)
        fail_msg("validation: %s", clc_buf_str(&r.resp.body));
    kvr_free(&r);
    assert_int_equal(wakes(), w0); /* a handshake wakes nobody */

    snprintf(body, sizeof body,
             "{\"name\":\"webhook-demo\",\"not_before\":%lld,\"not_after\":%lld}",
             (long long)(now - 300 * 86400), (long long)(now + 10 * 86400));
    kv_admin("POST", "/control/keyvault/certlc/seed", body, &r);
    kv_expect(&r, 201);
    kvr_free(&r);
    /* Nudges the emulator's time hooks (NearExpiry is checked on clock changes). */
    emu_clock_advance(kv.e, 1);
    if (wait_wakes(w0 + 1, WAIT_MS) < w0 + 1)
        fail_msg("no delivery reached the webhook");

    /* Event Grid recorded a successful (202) delivery. */
    t0 = clc_mono_ms();
    while (!delivered && clc_mono_ms() - t0 < WAIT_MS) {
        const cJSON *h, *it;
        kv_admin("GET", "/control/eventgrid/subscriptions/certlc-webhook", NULL, &r);
        kv_expect(&r, 200);
        h = cJSON_GetObjectItemCaseSensitive(r.json, "history");
        cJSON_ArrayForEach(it, h)
        {
            const char *kind = kv_str(it, "kind");
            if (kind && strcmp(kind, "delivery") == 0 && kv_int(it, "status") == 202)
                delivered = 1;
        }
        if (!delivered && h == NULL)
            fail_msg("no history in %s", clc_buf_str(&r.resp.body));
        kvr_free(&r);
        if (!delivered)
            clc_sleep_ms(50);
    }
    assert_true(delivered);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_posts),
        cmocka_unit_test(test_eventgrid_delivery),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
