/* The webhook's request handling without a server: handshakes, the shared
 * secret, limits and media types, every event fixture, wake counting,
 * /healthz and /metrics (parsed as Prometheus text), and the renderer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "pipeline/metrics.h"
#include "pipeline/webhook.h"

#define DIR_EVENTS CLC_FIXTURES "/events"
#define SECRET "s3cret-Value/with+odd&chars=1"
/* SECRET percent-encoded for a query string. */
#define SECRET_Q "s3cret-Value%2Fwith%2Bodd%26chars%3D1"

static const char *const vaults[] = {"kv-prod", "KV-TEST"};
static const struct clc_event_filter filter = {.vaults = vaults, .nvaults = 2, .max_bytes = 8192};

struct fx {
    struct clc_webhook_core *core;
    int wakes;
    int snapshot_mode; /* 0 none, 1 healthy worker, 2 stopped worker */
};

static void on_wake(void *ctx)
{
    ((struct fx *)ctx)->wakes++;
}

static void on_snapshot(void *ctx, struct clc_metrics_snapshot *s)
{
    struct fx *f = ctx;
    s->have_worker = 1;
    s->worker_ok = f->snapshot_mode == 1;
    s->queue_depth = 7;
    s->last_success = 1700000000;
    clc_metrics_count_add(s->renewals, &s->nrenewals, "renewed", 3);
    clc_metrics_count_add(s->renewals, &s->nrenewals, "failed", 1);
    clc_metrics_hist_observe(&s->ca_seconds, 0.03);
    clc_metrics_hist_observe(&s->ca_seconds, 0.7);
    clc_metrics_hist_observe(&s->ca_seconds, 1000);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    struct clc_secret *s = NULL;
    struct clc_webhook_hooks h = {.wake = on_wake, .snapshot = on_snapshot, .ctx = f};
    struct clc_errinfo ei;

    assert_non_null(f);
    assert_int_equal(clc_secret_new(SECRET, strlen(SECRET), &s), CLC_OK);
    assert_int_equal(clc_webhook_core_new(s, 16384, &filter, &h, &f->core, &ei), CLC_OK);
    clc_secret_free(s);
    f->snapshot_mode = 1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    clc_webhook_core_free(f->core);
    free(f);
    return 0;
}

/* One request; headers as "Name", "value" pairs ending with NULL. */
static int call(struct fx *f, const char *method, const char *path, const char *query,
                const char *body, size_t len, struct clc_webhook_resp *resp, ...)
{
    struct clc_webhook_header h[8];
    struct clc_webhook_req r;
    size_t n = 0;
    va_list ap;
    const char *name;

    va_start(ap, resp);
    while ((name = va_arg(ap, const char *)) != NULL && n < 8) {
        h[n].name = name;
        h[n].value = va_arg(ap, const char *);
        n++;
    }
    va_end(ap);
    memset(&r, 0, sizeof r);
    r.method = method;
    r.path = path;
    r.query = query;
    r.headers = h;
    r.nheaders = n;
    r.body = body ? body : "";
    r.body_len = body ? len : 0;
    r.remote = "127.0.0.1";
    clc_webhook_handle(f->core, &r, resp);
    return resp->status;
}

static int post(struct fx *f, const char *body, struct clc_webhook_resp *resp)
{
    return call(f, "POST", CLC_WEBHOOK_PATH, NULL, body, strlen(body), resp, "Content-Type",
                "application/json; charset=utf-8", CLC_WEBHOOK_SECRET_HEADER, SECRET,
                (const char *)NULL);
}

static const char *resp_header(const struct clc_webhook_resp *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->nheaders; i++)
        if (strncasecmp(r->headers[i], name, n) == 0 && r->headers[i][n] == ':')
            return r->headers[i] + n + 2;
    return NULL;
}

static const char NEAR[] =
    "[{\"id\":\"e1\",\"topic\":\"/subscriptions/x/resourceGroups/r/providers/"
    "Microsoft.KeyVault/vaults/kv-prod\",\"subject\":\"democert\",\"eventType\":"
    "\"Microsoft.KeyVault.CertificateNearExpiry\",\"eventTime\":\"2026-01-01T00:00:00Z\","
    "\"data\":{\"VaultName\":\"kv-prod\",\"ObjectType\":\"Certificate\",\"ObjectName\":"
    "\"democert\",\"Version\":\"v1\",\"NBF\":1,\"EXP\":2},\"dataVersion\":\"1\","
    "\"metadataVersion\":\"1\"}]";

static void test_validation_handshake(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    char *body = NULL;
    size_t len = 0;
    cJSON *doc = NULL;
    const char *code = NULL;
    struct clc_errinfo ei;

    assert_int_equal(
        clc_file_read(DIR_EVENTS "/bad-wrong_type-validation.json", 65536, &body, &len, &ei),
        CLC_OK);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=" SECRET_Q, body, len, &resp,
                          "Content-Type", "application/json", "aeg-event-type",
                          "SubscriptionValidation", (const char *)NULL),
                     200);
    assert_int_equal(clc_json_parse(resp.body.data, resp.body.len, 4096, &doc, &ei), CLC_OK);
    assert_int_equal(clc_json_str(doc, "validationResponse", &code, &ei), CLC_OK);
    assert_string_equal(code, "512d38b6-c7b8-40c8-89fe-f46f9e9622b6");
    assert_int_equal(cJSON_GetArraySize(doc), 1);
    assert_int_equal(f->wakes, 0);
    cJSON_Delete(doc);
    clc_webhook_resp_cleanup(&resp);

    /* Handshakes need the secret too. */
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, body, len, &resp, "Content-Type",
                          "application/json", (const char *)NULL),
                     401);
    clc_webhook_resp_cleanup(&resp);
    /* A header claiming a handshake with events inside is refused. */
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=" SECRET_Q, NEAR, strlen(NEAR), &resp,
                          "Content-Type", "application/json", "aeg-event-type",
                          "SubscriptionValidation", (const char *)NULL),
                     400);
    assert_int_equal(f->wakes, 0);
    clc_webhook_resp_cleanup(&resp);
    /* A code that could inject into the answer is refused. */
    assert_int_equal(
        post(f,
             "[{\"id\":\"1\",\"eventType\":\"Microsoft.EventGrid."
             "SubscriptionValidationEvent\",\"data\":{\"validationCode\":\"a\\\"b\"}}]",
             &resp),
        400);
    clc_webhook_resp_cleanup(&resp);
    free(body);
}

static void test_cloudevents_options(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;

    assert_int_equal(call(f, "OPTIONS", CLC_WEBHOOK_PATH, NULL, NULL, 0, &resp,
                          "WebHook-Request-Origin", "eventgrid.azure.net", (const char *)NULL),
                     200);
    assert_string_equal(resp_header(&resp, "WebHook-Allowed-Origin"), "eventgrid.azure.net");
    assert_non_null(resp_header(&resp, "WebHook-Allowed-Rate"));
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "OPTIONS", CLC_WEBHOOK_PATH, NULL, NULL, 0, &resp,
                          "WebHook-Request-Origin", "evil.example", (const char *)NULL),
                     403);
    assert_null(resp_header(&resp, "WebHook-Allowed-Origin"));
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(f->wakes, 0);
}

static void test_secret(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    const char *ct = "application/json";

    /* Right secret, header or query: 202 and one wake each. */
    assert_int_equal(post(f, NEAR, &resp), 202);
    assert_int_equal(f->wakes, 1);
    assert_non_null(strstr(resp.body.data, "\"accepted\":1"));
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "x=1&code=" SECRET_Q "&y", NEAR,
                          strlen(NEAR), &resp, "Content-Type", ct, (const char *)NULL),
                     202);
    assert_int_equal(f->wakes, 2);
    clc_webhook_resp_cleanup(&resp);

    /* Missing: 401; wrong (header, query, prefix, longer, one of two): 403. */
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, (const char *)NULL),
                     401);
    assert_null(strstr(resp.body.data, SECRET));
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, CLC_WEBHOOK_SECRET_HEADER, "nope",
                          (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, CLC_WEBHOOK_SECRET_HEADER, "s3cret-Value",
                          (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, CLC_WEBHOOK_SECRET_HEADER, SECRET "x",
                          (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=wrong", NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=%zz", NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=" SECRET_Q, NEAR, strlen(NEAR), &resp,
                          "Content-Type", ct, CLC_WEBHOOK_SECRET_HEADER, "wrong",
                          (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    /* The unencoded '+' would decode to a space: not the secret. */
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, "code=s3cret-Value/with+odd", NEAR,
                          strlen(NEAR), &resp, "Content-Type", ct, (const char *)NULL),
                     403);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(f->wakes, 2);
}

static void test_limits_and_media(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    struct clc_webhook_header h[2] = {{"Content-Type", "application/json"},
                                      {CLC_WEBHOOK_SECRET_HEADER, SECRET}};
    struct clc_webhook_req r = {.method = "POST",
                                .path = CLC_WEBHOOK_PATH,
                                .headers = h,
                                .nheaders = 2,
                                .body = "",
                                .body_too_large = 1};
    static const char *const bad_ct[] = {"text/plain", "application/xml",
                                         "application/json; charset=latin1", "application/jsonx",
                                         "multipart/form-data; a=b"};

    clc_webhook_handle(f->core, &r, &resp);
    assert_int_equal(resp.status, 413);
    assert_true(resp.close);
    assert_non_null(strstr(resp.body.data, "RequestBodyTooLarge"));
    clc_webhook_resp_cleanup(&resp);

    for (size_t i = 0; i < sizeof bad_ct / sizeof bad_ct[0]; i++) {
        assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                              "Content-Type", bad_ct[i], CLC_WEBHOOK_SECRET_HEADER, SECRET,
                              (const char *)NULL),
                         415);
        clc_webhook_resp_cleanup(&resp);
    }
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          CLC_WEBHOOK_SECRET_HEADER, SECRET, (const char *)NULL),
                     415);
    clc_webhook_resp_cleanup(&resp);
    /* CloudEvents media types and a quoted charset are fine. */
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", "application/cloudevents-batch+json; charset=\"UTF-8\"",
                          CLC_WEBHOOK_SECRET_HEADER, SECRET, (const char *)NULL),
                     202);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(f->wakes, 1);
}

/* Bodies no fixture covers. */
static void test_malformed_bodies(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    static const char *const bodies[] = {
        "",
        "[]",
        "42",
        "\"text\"",
        "null",
        "[1,2]",
        "{",
        "[{\"id\":\"e1\"",
        NEAR + 1,
        "[{\"id\":\"1\",\"eventType\":\"Microsoft.EventGrid.SubscriptionValidationEvent\","
        "\"data\":{}}]",
    };
    char trunc[sizeof NEAR];

    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        assert_int_equal(post(f, bodies[i], &resp), 400);
        assert_non_null(strstr(resp.body.data, "\"message\":"));
        clc_webhook_resp_cleanup(&resp);
    }
    /* Truncated at every 16th byte. */
    for (size_t n = 1; n + 1 < sizeof NEAR; n += 16) {
        memcpy(trunc, NEAR, n);
        trunc[n] = '\0';
        assert_int_equal(post(f, trunc, &resp), 400);
        clc_webhook_resp_cleanup(&resp);
    }
    /* A batch with one bad event is refused whole, naming the event. */
    {
        char batch[2 * sizeof NEAR + 64];
        snprintf(batch, sizeof batch, "[%.*s,{\"id\":\"x\"}]", (int)strlen(NEAR) - 2, NEAR + 1);
        assert_int_equal(post(f, batch, &resp), 400);
        assert_non_null(strstr(resp.body.data, "event 1"));
        clc_webhook_resp_cleanup(&resp);
    }
    assert_int_equal(f->wakes, 0);
}

static const char *reason_of(const char *name, char *buf, size_t n)
{
    const char *p = name + 4, *dash = strchr(p, '-');
    snprintf(buf, n, "%.*s", (int)(dash ? (size_t)(dash - p) : strlen(p)), p);
    return buf;
}

/* Every .json fixture: ok-* wake; bad-* malformed → 400 naming the reason;
 * well-formed events certlc does not act on → 202 without a wake; a batch
 * (refused by the single-event parser) is a valid delivery here; the
 * validation event is the handshake. */
static void test_fixtures(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(DIR_EVENTS);
    struct dirent *de;
    int seen = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        char path[512], reason[64];
        char *body = NULL;
        size_t len = 0, n = strlen(name);
        struct clc_errinfo ei;
        struct clc_webhook_resp resp;
        int wakes = f->wakes, st, want, want_wake = 0;

        if (n < 6 || strcmp(name + n - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", DIR_EVENTS, name);
        assert_int_equal(clc_file_read(path, 1 << 20, &body, &len, &ei), CLC_OK);
        st = call(f, "POST", CLC_WEBHOOK_PATH, NULL, body, len, &resp, "Content-Type",
                  "application/json", CLC_WEBHOOK_SECRET_HEADER, SECRET, (const char *)NULL);
        if (strncmp(name, "ok-", 3) == 0) {
            want = 202;
            want_wake = 1;
        } else if (strcmp(name, "bad-wrong_type-validation.json") == 0) {
            want = 200;
        } else if (strcmp(name, "bad-bad_envelope-batch.json") == 0) {
            want = 202;
            want_wake = 1;
        } else {
            reason_of(name, reason, sizeof reason);
            if (strcmp(reason, "wrong_type") == 0 || strcmp(reason, "wrong_object") == 0 ||
                strcmp(reason, "vault_not_allowed") == 0) {
                want = 202;
                assert_non_null(strstr(resp.body.data, "\"ignored\":1"));
            } else {
                want = 400;
                if (strstr(resp.body.data, reason) == NULL)
                    fail_msg("%s: the answer does not name %s: %s", name, reason, resp.body.data);
            }
        }
        if (st != want)
            fail_msg("%s: status %d, want %d: %s", name, st, want, clc_buf_str(&resp.body));
        assert_int_equal(f->wakes, wakes + want_wake);
        clc_webhook_resp_cleanup(&resp);
        free(body);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 30);
}

static void test_routes(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;

    assert_int_equal(call(f, "GET", "/nope", NULL, NULL, 0, &resp, (const char *)NULL), 404);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "GET", CLC_WEBHOOK_PATH, NULL, NULL, 0, &resp, (const char *)NULL),
                     405);
    assert_string_equal(resp_header(&resp, "Allow"), "POST, OPTIONS");
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", "/healthz", NULL, "x", 1, &resp, (const char *)NULL), 405);
    clc_webhook_resp_cleanup(&resp);
}

static void test_healthz(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    cJSON *doc = NULL;
    const char *s = NULL;
    int64_t depth = 0;
    struct clc_errinfo ei;

    assert_int_equal(call(f, "GET", "/healthz", NULL, NULL, 0, &resp, (const char *)NULL), 200);
    assert_string_equal(resp.content_type, "application/json; charset=utf-8");
    assert_int_equal(clc_json_parse(resp.body.data, resp.body.len, 4096, &doc, &ei), CLC_OK);
    assert_int_equal(clc_json_str(doc, "status", &s, &ei), CLC_OK);
    assert_string_equal(s, "ok");
    assert_int_equal(clc_json_str(doc, "worker", &s, &ei), CLC_OK);
    assert_string_equal(s, "running");
    assert_int_equal(clc_json_int(doc, "queue_depth", &depth, &ei), CLC_OK);
    assert_int_equal(depth, 7);
    cJSON_Delete(doc);
    clc_webhook_resp_cleanup(&resp);

    f->snapshot_mode = 2;
    assert_int_equal(call(f, "GET", "/healthz", NULL, NULL, 0, &resp, (const char *)NULL), 503);
    assert_non_null(strstr(resp.body.data, "\"degraded\""));
    clc_webhook_resp_cleanup(&resp);
}

/* The value of the sample line "name{labels} value" (labels exactly as
 * given, "" for none); fails when absent or duplicated. */
static double sample(const char *text, const char *series)
{
    const char *p = text, *hit = NULL;
    size_t n = strlen(series);
    double v = -1;

    while ((p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ') {
            if (hit != NULL)
                fail_msg("%s appears twice", series);
            hit = p;
        }
        p += n;
    }
    if (hit == NULL)
        fail_msg("no sample %s in:\n%s", series, text);
    assert_int_equal(sscanf(hit + n + 1, "%lf", &v), 1);
    return v;
}

/* Prometheus text format 0.0.4: every line is a comment (# HELP / # TYPE
 * name type) or "name{label="value",...} number". */
static void check_exposition(const char *text)
{
    const char *line = text;

    assert_true(text[strlen(text) - 1] == '\n');
    while (*line) {
        const char *end = strchr(line, '\n');
        char buf[512];
        size_t n = (size_t)(end - line);

        assert_non_null(end);
        assert_true(n > 0 && n < sizeof buf);
        memcpy(buf, line, n);
        buf[n] = '\0';
        if (buf[0] == '#') {
            char name[128], type[32];
            if (strncmp(buf, "# TYPE ", 7) == 0) {
                assert_int_equal(sscanf(buf, "# TYPE %127s %31s", name, type), 2);
                assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                            strcmp(type, "histogram") == 0);
            } else {
                assert_int_equal(strncmp(buf, "# HELP certlc_", 14), 0);
            }
        } else {
            char *sp = strrchr(buf, ' '), *endp = NULL;
            assert_non_null(sp);
            assert_int_equal(strncmp(buf, "certlc_", 7), 0);
            for (char *c = buf; c < sp && *c != '{'; c++)
                assert_true((*c >= 'a' && *c <= 'z') || *c == '_');
            if (strcmp(sp + 1, "+Inf") != 0) {
                strtod(sp + 1, &endp);
                assert_true(endp != NULL && *endp == '\0');
            }
        }
        line = end + 1;
    }
}

static void test_metrics(void **state)
{
    struct fx *f = *state;
    struct clc_webhook_resp resp;
    const char *t;

    /* One accepted, one unauthorized, one malformed. */
    assert_int_equal(post(f, NEAR, &resp), 202);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(call(f, "POST", CLC_WEBHOOK_PATH, NULL, NEAR, strlen(NEAR), &resp,
                          "Content-Type", "application/json", (const char *)NULL),
                     401);
    clc_webhook_resp_cleanup(&resp);
    assert_int_equal(post(f, "{", &resp), 400);
    clc_webhook_resp_cleanup(&resp);

    assert_int_equal(call(f, "GET", "/metrics", NULL, NULL, 0, &resp, (const char *)NULL), 200);
    assert_string_equal(resp.content_type, "text/plain; version=0.0.4; charset=utf-8");
    t = resp.body.data;
    check_exposition(t);
    assert_true(sample(t, "certlc_renewals_total{outcome=\"renewed\"}") == 3);
    assert_true(sample(t, "certlc_renewals_total{outcome=\"failed\"}") == 1);
    assert_true(sample(t, "certlc_queue_depth") == 7);
    assert_true(sample(t, "certlc_last_success_timestamp_seconds") == 1700000000);
    assert_true(sample(t, "certlc_ca_request_seconds_bucket{le=\"0.05\"}") == 1);
    assert_true(sample(t, "certlc_ca_request_seconds_bucket{le=\"1\"}") == 2);
    assert_true(sample(t, "certlc_ca_request_seconds_bucket{le=\"300\"}") == 2);
    assert_true(sample(t, "certlc_ca_request_seconds_bucket{le=\"+Inf\"}") == 3);
    assert_true(sample(t, "certlc_ca_request_seconds_count") == 3);
    assert_true(sample(t, "certlc_ca_request_seconds_sum") > 1000.7 &&
                sample(t, "certlc_ca_request_seconds_sum") < 1000.74);
    assert_true(sample(t, "certlc_webhook_deliveries_total{result=\"accepted\"}") == 1);
    assert_true(sample(t, "certlc_webhook_deliveries_total{result=\"unauthorized\"}") == 1);
    assert_true(sample(t, "certlc_webhook_deliveries_total{result=\"malformed\"}") == 1);
    assert_true(sample(t, "certlc_webhook_deliveries_total{result=\"forbidden\"}") == 0);
    assert_true(sample(t, "certlc_up") == 1);
    assert_non_null(strstr(t, "# TYPE certlc_ca_request_seconds histogram\n"));
    assert_non_null(strstr(t, "# TYPE certlc_renewals_total counter\n"));
    clc_webhook_resp_cleanup(&resp);
}

static void test_render_without_worker(void **state)
{
    struct clc_metrics_snapshot s;
    struct clc_metrics_count wh[2] = {{"accepted", 2}, {"Bad Label", 9}};
    struct clc_buf b;

    (void)state;
    clc_metrics_snapshot_init(&s);
    clc_buf_init(&b, 65536);
    assert_int_equal(clc_metrics_render(&s, wh, 2, &b), CLC_OK);
    check_exposition(b.data);
    assert_null(strstr(b.data, "certlc_renewals_total"));
    assert_null(strstr(b.data, "Bad Label"));
    assert_true(sample(b.data, "certlc_webhook_deliveries_total{result=\"accepted\"}") == 2);
    assert_true(sample(b.data, "certlc_up") == 0);
    clc_buf_cleanup(&b);
    /* A renderer that cannot fit says so. */
    clc_buf_init(&b, 64);
    assert_int_equal(clc_metrics_render(&s, wh, 2, &b), CLC_ERR_LIMIT);
    clc_buf_cleanup(&b);
}

static void test_core_refuses(void **state)
{
    struct clc_secret *s = NULL;
    struct clc_webhook_core *c = NULL;
    struct clc_webhook_hooks h = {.wake = on_wake};
    struct clc_webhook_hooks nowake = {0};
    struct clc_errinfo ei;

    (void)state;
    assert_int_equal(clc_webhook_core_new(NULL, 0, NULL, &h, &c, &ei), CLC_ERR_CONFIG);
    assert_int_equal(clc_secret_new("short", 5, &s), CLC_OK);
    assert_int_equal(clc_webhook_core_new(s, 0, NULL, &h, &c, &ei), CLC_ERR_CONFIG);
    assert_non_null(strstr(ei.msg, "16"));
    clc_secret_free(s);
    assert_int_equal(clc_secret_new(SECRET, strlen(SECRET), &s), CLC_OK);
    assert_int_equal(clc_webhook_core_new(s, 0, NULL, &nowake, &c, &ei), CLC_ERR_INVALID);
    assert_null(c);
    clc_secret_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_validation_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cloudevents_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits_and_media, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_bodies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test(test_render_without_worker),
        cmocka_unit_test(test_core_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
