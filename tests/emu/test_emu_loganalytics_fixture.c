/* Test support for the Log Analytics tests (see test_emu_loganalytics_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "azure/loganalytics.h"
#include "core/secret.h"
#include "test_emu_loganalytics_fixture.h"
#include "support/emu_admin.h"

struct laf LF;

static const char identities[] =
    "\"identities\": {"
    "\"renewer\": {\"roles\": [\"Monitoring Metrics Publisher\", \"Storage Queue Data "
    "Contributor\"]},"
    "\"dashboard\": {\"roles\": [\"Log Analytics Reader\"]},"
    "\"reader\": {\"roles\": [\"Key Vault Reader\"]},"
    "\"admin\": {\"roles\": [\"admin\"]}}";

const char *laf_ep(const char *a, const char *b)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(LF.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static struct clc_auth *make_auth(const char *identity)
{
    struct clc_secret *sec = NULL;
    struct clc_auth *a = NULL;
    struct clc_errinfo ei = {0};
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(LF.endpoints, "identities"), identity);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(id, "client_secret");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(id, "client_id");
    if (!cJSON_IsString(s) || !cJSON_IsString(c) ||
        clc_secret_new(s->valuestring, strlen(s->valuestring), &sec) != CLC_OK)
        return NULL;
    struct clc_auth_opts o = {
        .method = CLC_AUTH_CLIENT_SECRET,
        .authority_host = laf_ep("services", "entra"),
        .tenant_id = laf_ep("tenant", NULL),
        .client_id = c->valuestring,
        .client_secret = sec,
    };
    if (clc_auth_new(&o, &LF.http_opts, &a, &ei) != CLC_OK)
        fprintf(stderr, "auth %s: %s\n", identity, ei.msg);
    clc_secret_free(sec);
    return a;
}

struct clc_auth *laf_auth(const char *identity)
{
    if (strcmp(identity, "renewer") == 0)
        return LF.renewer;
    if (strcmp(identity, "dashboard") == 0)
        return LF.dashboard;
    if (strcmp(identity, "reader") == 0)
        return LF.reader;
    return LF.admin;
}

static void free_clients(void)
{
    clc_auth_free(LF.renewer);
    clc_auth_free(LF.dashboard);
    clc_auth_free(LF.reader);
    clc_auth_free(LF.admin);
    clc_http_free(LF.http);
    cJSON_Delete(LF.endpoints);
    LF.renewer = LF.dashboard = LF.reader = LF.admin = NULL;
    LF.http = NULL;
    LF.endpoints = NULL;
}

static int start(int64_t start_time)
{
    struct emu_opts o = {
        .quiet = 1, .data_dir = LF.data_dir, .config_file = LF.config, .start_time = start_time};
    struct clc_errinfo ei = {0};
    char *text = NULL;

    if (emu_start(&o, &LF.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(LF.e, &text, &ei) != CLC_OK)
        return -1;
    LF.endpoints = cJSON_Parse(text);
    free(text);
    LF.http_opts.ca_bundle = emu_ca_bundle(LF.e);
    LF.http_opts.timeout_ms = 20000;
    LF.renewer = make_auth("renewer");
    LF.dashboard = make_auth("dashboard");
    LF.reader = make_auth("reader");
    LF.admin = make_auth("admin");
    if (!LF.renewer || !LF.dashboard || !LF.reader || !LF.admin ||
        clc_http_new(&LF.http_opts, &LF.http, &ei) != CLC_OK)
        return -1;
    return 0;
}

int laf_setup(const char *extra)
{
    FILE *f;

    memset(&LF, 0, sizeof LF);
    snprintf(LF.dir, sizeof LF.dir, "/tmp/clc-la-XXXXXX");
    if (!mkdtemp(LF.dir))
        return -1;
    snprintf(LF.data_dir, sizeof LF.data_dir, "%s/data", LF.dir);
    snprintf(LF.config, sizeof LF.config, "%s/config.json", LF.dir);
    f = fopen(LF.config, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "{%s%s%s}\n", identities, extra ? ", " : "", extra ? extra : "");
    fclose(f);
    return start(0);
}

int laf_restart(void)
{
    int64_t now = emu_now_ms(LF.e) / 1000;
    test_emu_admin_forget(LF.e);
    emu_stop(LF.e);
    LF.e = NULL;
    free_clients();
    return start(now);
}

void laf_teardown(void)
{
    char cmd[400];
    free_clients();
    test_emu_admin_forget(LF.e);
    emu_stop(LF.e);
    LF.e = NULL;
    /* Only our own mkdtemp directory. */
    if (strncmp(LF.dir, "/tmp/clc-la-", 12) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", LF.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", LF.dir);
    }
}

long laf_request(const char *method, const char *url, const char *identity, const char *scope,
                 const char *const *headers, const char *content_type, const void *body, size_t len,
                 struct clc_http_resp *resp)
{
    struct clc_secret *tok = NULL;
    struct clc_errinfo ei = {0};

    clc_http_resp_init(resp);
    if (identity != NULL && clc_auth_token(laf_auth(identity), scope, &tok, NULL, &ei) != CLC_OK)
        fail_msg("token for %s (%s): %s", identity, scope, ei.msg);
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .headers = headers,
                               .body = body,
                               .body_len = len,
                               .content_type = content_type,
                               .bearer = tok};
    if (clc_http_do(LF.http, &req, resp, &ei) != CLC_OK)
        fail_msg("%s %s: %s", method, url, ei.msg);
    clc_secret_free(tok);
    return resp->status;
}

const char *laf_ingest_url(const char *dcr, const char *stream)
{
    static char url[4][512];
    static int k;
    char *u = url[k++ % 4];
    snprintf(u, 512, "%s/dataCollectionRules/%s/streams/%s?api-version=2023-01-01",
             laf_ep("services", "loganalytics"), dcr, stream);
    return u;
}

long laf_ingest(const char *dcr, const char *stream, const char *body, struct clc_http_resp *resp)
{
    return laf_request("POST", laf_ingest_url(dcr, stream), "renewer", LAF_MONITOR_SCOPE, NULL,
                       "application/json", body, strlen(body), resp);
}

cJSON *laf_query(const char *identity, const char *query)
{
    struct clc_errinfo ei = {0};
    cJSON *t = NULL;
    if (clc_la_query(laf_ep("services", "logquery"), LAF_WORKSPACE, query, &LF.http_opts,
                     laf_auth(identity), &t, &ei) != CLC_OK)
        fail_msg("query '%s': %s", query, ei.msg);
    return t;
}

char *laf_query_rows(const char *identity, const char *query)
{
    cJSON *t = laf_query(identity, query);
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(t, "rows"));
    cJSON_Delete(t);
    assert_non_null(s);
    return s;
}

long laf_query_count(const char *query)
{
    cJSON *t = laf_query("admin", query);
    cJSON *cell = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "rows"), 0), 0);
    long n = cJSON_IsNumber(cell) ? (long)cell->valuedouble : -1;
    cJSON_Delete(t);
    return n;
}

long laf_control(const char *method, const char *path, const char *body)
{
    return test_emu_admin_call(LF.e, LF.http, method, path, body, NULL);
}

void laf_fault(const char *service, const char *path, int count, int status, int retry_after)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"service\":\"%s\",\"path\":\"%s\",\"count\":%d,\"status\":%d,\"retry_after\":%d}",
             service, path, count < 0 ? 0 : count, status, retry_after > 0 ? retry_after : -1);
    long st = laf_control("POST", "/control/faults", body);
    assert_true(st >= 200 && st < 300);
}

void laf_faults_clear(void)
{
    long st = laf_control("DELETE", "/control/faults", NULL);
    assert_true(st >= 200 && st < 300);
}

const char *laf_err_code(const struct clc_http_resp *resp)
{
    static char code[96];
    cJSON *j = cJSON_ParseWithLength(resp->body.data ? resp->body.data : "", resp->body.len);
    const cJSON *c =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
    snprintf(code, sizeof code, "%s", cJSON_IsString(c) ? c->valuestring : "");
    cJSON_Delete(j);
    return code;
}
