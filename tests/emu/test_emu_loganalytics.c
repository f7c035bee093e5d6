/* The emulated Log Analytics at the wire level: the Logs Ingestion API
 * (rows checked against the rule's columns and types, Azure's error shape,
 * gzip, 1 MB, roles and audiences), the query API (tables as Azure answers
 * them, errors with positions, reader role), the bound per table, the
 * endpoints document and the control hooks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "azure/loganalytics.h"
#include "core/buf.h"
#include "test_emu_loganalytics_fixture.h"

#define TYPES_DCR "dcr-0000000000000000000000000000ty01"
#define TYPES_STREAM "Custom-Types_CL"

static const char config[] =
    "\"loganalytics\": {\"max_rows_per_table\": 40, \"dcrs\": ["
    "{\"immutable_id\": \"" LAF_RENEWAL_DCR "\", \"stream\": \"" LAF_RENEWAL_STREAM "\","
    " \"table\": \"CertlcRenewal_CL\", \"columns\": ["
    "{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":\"Vault\",\"type\":\"string\"},"
    "{\"name\":\"Certificate\",\"type\":\"string\"},{\"name\":\"Version\",\"type\":\"string\"},"
    "{\"name\":\"Step\",\"type\":\"string\"},{\"name\":\"Outcome\",\"type\":\"string\"},"
    "{\"name\":\"DurationMs\",\"type\":\"long\"},{\"name\":\"CaRequestId\",\"type\":\"string\"},"
    "{\"name\":\"Error\",\"type\":\"string\"}]},"
    "{\"immutable_id\": \"" TYPES_DCR "\", \"stream\": \"" TYPES_STREAM "\", \"table\": "
    "\"Types_CL\", \"columns\": ["
    "{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":\"S\",\"type\":\"string\"},"
    "{\"name\":\"I\",\"type\":\"int\"},{\"name\":\"L\",\"type\":\"long\"},"
    "{\"name\":\"R\",\"type\":\"real\"},{\"name\":\"B\",\"type\":\"boolean\"},"
    "{\"name\":\"G\",\"type\":\"guid\"},{\"name\":\"D\",\"type\":\"dynamic\"}]}]}";

static int setup(void **state)
{
    (void)state;
    return laf_setup(config);
}

static int teardown(void **state)
{
    (void)state;
    laf_teardown();
    return 0;
}

static void expect_error(const struct clc_http_resp *resp, long status, const char *code)
{
    if (resp->status != status || strcmp(laf_err_code(resp), code) != 0)
        fail_msg("expected %ld %s, got %ld: %s", status, code, resp->status,
                 clc_buf_str(&resp->body));
}

static long renewal_count(void)
{
    return laf_query_count("CertlcRenewal_CL | count");
}

static void test_endpoints(void **state)
{
    (void)state;
    assert_non_null(laf_ep("services", "loganalytics"));
    assert_non_null(laf_ep("services", "logquery"));
    assert_string_equal(laf_ep("log_analytics", "workspace_id"), LAF_WORKSPACE);
    const cJSON *dcrs =
        cJSON_GetObjectItem(cJSON_GetObjectItem(LF.endpoints, "log_analytics"), "dcrs");
    assert_string_equal(cJSON_GetObjectItem(dcrs, LAF_RENEWAL_STREAM)->valuestring,
                        LAF_RENEWAL_DCR);
    assert_string_equal(cJSON_GetObjectItem(dcrs, TYPES_STREAM)->valuestring, TYPES_DCR);
}

static void test_ingest_and_query(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    long before = renewal_count();

    assert_int_equal(
        laf_ingest(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM,
                   "[{\"TimeGenerated\":\"2026-01-02T03:04:05Z\",\"Vault\":\"kv1\","
                   "\"Certificate\":\"web\",\"Step\":\"merge\",\"Outcome\":\"ok\",\"DurationMs\":"
                   "120,\"CaRequestId\":\"17\"},"
                   "{\"TimeGenerated\":\"2026-01-02T03:04:06.5Z\",\"Vault\":\"kv1\","
                   "\"Certificate\":\"api\",\"Step\":\"submit\",\"Outcome\":\"failed\","
                   "\"DurationMs\":30,\"Error\":\"CA down\"},"
                   "{\"TimeGenerated\":\"2026-01-02T03:04:07Z\",\"Vault\":\"kv2\","
                   "\"Certificate\":\"mail\",\"Step\":\"merge\",\"Outcome\":\"ok\",\"DurationMs\":"
                   "75}]",
                   &resp),
        204);
    assert_int_equal(resp.body.len, 0);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(renewal_count(), before + 3);

    cJSON *t = laf_query("dashboard", "CertlcRenewal_CL | where Outcome == \"ok\" | project "
                                      "TimeGenerated, Certificate, DurationMs | order by "
                                      "DurationMs asc");
    char *cols = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, "columns"));
    char *rows = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, "rows"));
    assert_string_equal(cJSON_GetObjectItem(t, "name")->valuestring, "PrimaryResult");
    assert_string_equal(cols, "[{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":"
                              "\"Certificate\",\"type\":\"string\"},{\"name\":\"DurationMs\","
                              "\"type\":\"long\"}]");
    assert_string_equal(rows, "[[\"2026-01-02T03:04:07Z\",\"mail\",75],[\"2026-01-02T03:04:05Z\","
                              "\"web\",120]]");
    free(cols);
    free(rows);
    cJSON_Delete(t);

    char *r = laf_query_rows("dashboard",
                             "CertlcRenewal_CL | summarize count() by Vault | order by Vault asc");
    assert_string_equal(r, "[[\"kv1\",2],[\"kv2\",1]]");
    free(r);
    r = laf_query_rows("dashboard", "CertlcRenewal_CL | where Error has \"down\" | project "
                                    "TimeGenerated, Version, Error | take 5");
    /* Missing columns are null; fractions of a second are kept. */
    assert_string_equal(r, "[[\"2026-01-02T03:04:06.500Z\",null,\"CA down\"]]");
    free(r);

    /* The GET form answers the same way. */
    char url[1024];
    snprintf(
        url, sizeof url,
        "%s/v1/workspaces/%s/query?query=CertlcRenewal_CL%%20%%7C%%20where%%20Vault%%20%%3D%%3D"
        "%%20%%22kv2%%22%%20%%7C%%20project%%20Certificate",
        laf_ep("services", "logquery"), LAF_WORKSPACE);
    assert_int_equal(
        laf_request("GET", url, "dashboard", LAF_QUERY_SCOPE, NULL, NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"rows\":[[\"mail\"]]"));
    clc_http_resp_cleanup(&resp);
}

static void test_missing_time_generated_is_ingestion_time(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    assert_int_equal(laf_ingest(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM,
                                "[{\"Vault\":\"kvnow\",\"Certificate\":\"x\"}]", &resp),
                     204);
    clc_http_resp_cleanup(&resp);
    /* TimeGenerated comes from the emulator clock, so ago() finds it. */
    assert_int_equal(laf_query_count("CertlcRenewal_CL | where Vault == 'kvnow' and "
                                     "TimeGenerated > ago(1m) and TimeGenerated <= now() | count"),
                     1);
}

static void test_gzip(void **state)
{
    (void)state;
    static const char *const gz_headers[] = {"Content-Encoding: gzip", NULL};
    const char body[] = "[{\"Vault\":\"kvgz\",\"Certificate\":\"zipped\",\"DurationMs\":1}]";
    unsigned char out[512];
    z_stream zs;
    struct clc_http_resp resp;

    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)body;
    zs.avail_in = sizeof body - 1;
    zs.next_out = out;
    zs.avail_out = sizeof out;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    size_t n = zs.total_out;
    deflateEnd(&zs);
    assert_int_equal(laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM),
                                 "renewer", LAF_MONITOR_SCOPE, gz_headers, "application/json", out,
                                 n, &resp),
                     204);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(laf_query_count("CertlcRenewal_CL | where Vault == 'kvgz' | count"), 1);

    /* Plain JSON announced as gzip is refused. */
    laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM), "renewer",
                LAF_MONITOR_SCOPE, gz_headers, "application/json", body, sizeof body - 1, &resp);
    expect_error(&resp, 400, "InvalidContentEncoding");
    clc_http_resp_cleanup(&resp);
    static const char *const br[] = {"Content-Encoding: br", NULL};
    laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM), "renewer",
                LAF_MONITOR_SCOPE, br, "application/json", body, sizeof body - 1, &resp);
    expect_error(&resp, 415, "UnsupportedContentEncoding");
    clc_http_resp_cleanup(&resp);
}

static void test_bad_rows(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *target;
        const char *words;
    } cases[] = {
        {"[{\"Vault\":\"a\"},{\"Vault\":\"b\",\"DurationMs\":\"slow\"}]", "$[1].DurationMs",
         "declared as long"},
        {"[{\"Vault\":\"a\",\"DurationMs\":1.5}]", "$[0].DurationMs", "not an integer"},
        {"[{\"Vault\":\"a\",\"Unknown\":1}]", "$[0].Unknown", "not declared"},
        {"[{\"vault\":\"a\"}]", "$[0].vault", "not declared"}, /* names are case-sensitive */
        {"[{\"Vault\":\"a\",\"TimeGenerated\":\"yesterday\"}]", "$[0].TimeGenerated", "ISO 8601"},
        {"[{\"Vault\":true}]", "$[0].Vault", "declared as string"},
        {"[{\"Vault\":\"a\"}, 7]", "$[1]", "not a JSON object"},
        {"{\"Vault\":\"a\"}", "", "JSON array"},
        {"[{\"Vault\":\"a\"", "", "not valid JSON"},
    };
    long before = renewal_count();

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct clc_http_resp resp;
        laf_ingest(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM, cases[i].body, &resp);
        expect_error(&resp, 400, "InvalidContent");
        assert_string_equal(clc_http_resp_header(&resp, "x-ms-error-code"), "InvalidContent");
        cJSON *j = cJSON_Parse(clc_buf_str(&resp.body));
        const cJSON *err = cJSON_GetObjectItem(j, "error");
        const cJSON *target = cJSON_GetObjectItem(err, "target");
        const char *msg = cJSON_GetObjectItem(err, "message")->valuestring;
        if (strstr(msg, cases[i].words) == NULL)
            fail_msg("case %zu: message '%s' lacks '%s'", i, msg, cases[i].words);
        if (cases[i].target[0])
            assert_string_equal(target ? target->valuestring : "", cases[i].target);
        else
            assert_null(target);
        cJSON_Delete(j);
        clc_http_resp_cleanup(&resp);
    }
    /* A refused call stores nothing, not even its valid rows. */
    assert_int_equal(renewal_count(), before);
}

static void test_types(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    assert_int_equal(
        laf_ingest(TYPES_DCR, TYPES_STREAM,
                   "[{\"TimeGenerated\":\"2026-03-04T05:06:07+01:00\",\"S\":\"s\",\"I\":-7,"
                   "\"L\":999999999999999,\"R\":2.25,\"B\":true,"
                   "\"G\":\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"D\":{\"a\":[1,2]}},"
                   "{\"TimeGenerated\":\"2026-03-04T05:06:08Z\",\"B\":false,\"D\":\"text\"}]",
                   &resp),
        204);
    clc_http_resp_cleanup(&resp);
    cJSON *t = laf_query("admin", "Types_CL | order by TimeGenerated asc");
    char *cols = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, "columns"));
    char *rows = cJSON_PrintUnformatted(cJSON_GetObjectItem(t, "rows"));
    assert_string_equal(
        cols, "[{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":\"S\",\"type\":"
              "\"string\"},{\"name\":\"I\",\"type\":\"int\"},{\"name\":\"L\",\"type\":\"long\"},"
              "{\"name\":\"R\",\"type\":\"real\"},{\"name\":\"B\",\"type\":\"bool\"},{\"name\":"
              "\"G\",\"type\":\"guid\"},{\"name\":\"D\",\"type\":\"dynamic\"}]");
    /* dynamic values come back JSON-encoded in a string, as Azure sends them */
    assert_string_equal(rows, "[[\"2026-03-04T04:06:07Z\",\"s\",-7,999999999999999,2.25,true,"
                              "\"0f8fad5b-d9cb-469f-a165-70867728950e\",\"{\\\"a\\\":[1,2]}\"],"
                              "[\"2026-03-04T05:06:08Z\",null,null,null,null,false,null,"
                              "\"\\\"text\\\"\"]]");
    free(cols);
    free(rows);
    cJSON_Delete(t);
    static const char *const bad[] = {
        "[{\"I\":2147483648}]", "[{\"G\":\"not-a-guid\"}]", "[{\"R\":\"1.5\"}]",
        "[{\"B\":1}]",          "[{\"L\":1e300}]",          "[{\"L\":1000000000000000}]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        laf_ingest(TYPES_DCR, TYPES_STREAM, bad[i], &resp);
        expect_error(&resp, 400, "InvalidContent");
        clc_http_resp_cleanup(&resp);
    }
}

static void test_ingest_auth(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    const char *url = laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM);
    const char body[] = "[{\"Vault\":\"x\"}]";

    laf_request("POST", url, NULL, NULL, NULL, "application/json", body, sizeof body - 1, &resp);
    expect_error(&resp, 401, "InvalidToken");
    clc_http_resp_cleanup(&resp);
    /* A token for another audience (Key Vault) is refused. */
    laf_request("POST", url, "renewer", "https://vault.azure.net/.default", NULL,
                "application/json", body, sizeof body - 1, &resp);
    expect_error(&resp, 401, "InvalidToken");
    assert_non_null(strstr(clc_buf_str(&resp.body), "audience"));
    clc_http_resp_cleanup(&resp);
    /* A valid token without Monitoring Metrics Publisher. */
    laf_request("POST", url, "reader", LAF_MONITOR_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 403, "OperationFailed");
    assert_non_null(strstr(clc_buf_str(&resp.body), LAF_RENEWAL_DCR));
    clc_http_resp_cleanup(&resp);
    laf_request("POST", url, "dashboard", LAF_MONITOR_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 403, "OperationFailed");
    clc_http_resp_cleanup(&resp);

    laf_ingest("dcr-00000000000000000000000000000bad", LAF_RENEWAL_STREAM, body, &resp);
    expect_error(&resp, 404, "NotFound");
    clc_http_resp_cleanup(&resp);
    laf_ingest(LAF_RENEWAL_DCR, "Custom-certlcrenewal_CL", body, &resp);
    expect_error(&resp, 400, "InvalidStream");
    clc_http_resp_cleanup(&resp);

    char u2[512];
    snprintf(u2, sizeof u2, "%s/dataCollectionRules/%s/streams/%s",
             laf_ep("services", "loganalytics"), LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM);
    laf_request("POST", u2, "renewer", LAF_MONITOR_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 400, "MissingApiVersionParameter");
    clc_http_resp_cleanup(&resp);
    strcat(u2, "?api%2Dversion=2016-04-01");
    laf_request("POST", u2, "renewer", LAF_MONITOR_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 400, "InvalidApiVersionParameter");
    clc_http_resp_cleanup(&resp);
    laf_request("POST", url, "renewer", LAF_MONITOR_SCOPE, NULL, "text/plain", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 415, "UnsupportedMediaType");
    clc_http_resp_cleanup(&resp);
    laf_request("GET", url, "renewer", LAF_MONITOR_SCOPE, NULL, NULL, NULL, 0, &resp);
    assert_int_equal(resp.status, 405);
    clc_http_resp_cleanup(&resp);
}

static void test_too_large(void **state)
{
    (void)state;
    struct clc_buf b;
    struct clc_http_resp resp;
    long before = renewal_count();

    /* One row making the body exactly 1 MB is accepted; one byte more is not. */
    static const char head[] = "[{\"Vault\":\"big\",\"Error\":\"", tail[] = "\"}]";
    clc_buf_init(&b, 2 * 1024 * 1024);
    assert_int_equal(clc_buf_append_str(&b, head), CLC_OK);
    while (b.len < 1024 * 1024 - (sizeof tail - 1))
        clc_buf_append_byte(&b, 'x');
    assert_int_equal(clc_buf_append_str(&b, tail), CLC_OK);
    assert_int_equal(b.len, 1024 * 1024);
    assert_int_equal(laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM),
                                 "renewer", LAF_MONITOR_SCOPE, NULL, "application/json", b.data,
                                 b.len, &resp),
                     204);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(renewal_count(), before + 1);
    before++;
    clc_buf_reset(&b);
    assert_int_equal(clc_buf_append_str(&b, head), CLC_OK);
    while (b.len < 1024 * 1024 + 1 - (sizeof tail - 1))
        clc_buf_append_byte(&b, 'x');
    assert_int_equal(clc_buf_append_str(&b, tail), CLC_OK);
    assert_int_equal(b.len, 1024 * 1024 + 1);
    laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM), "renewer",
                LAF_MONITOR_SCOPE, NULL, "application/json", b.data, b.len, &resp);
    expect_error(&resp, 413, "ContentLengthLimitExceeded");
    clc_http_resp_cleanup(&resp);
    assert_int_equal(renewal_count(), before);

    /* The limit counts decompressed bytes: a small gzip of a large body. */
    unsigned char *gz = malloc(b.len);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    assert_int_equal(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    zs.next_in = (Bytef *)b.data;
    zs.avail_in = (uInt)b.len;
    zs.next_out = gz;
    zs.avail_out = (uInt)b.len;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_true(zs.total_out < 64 * 1024);
    static const char *const gz_headers[] = {"Content-Encoding: gzip", NULL};
    laf_request("POST", laf_ingest_url(LAF_RENEWAL_DCR, LAF_RENEWAL_STREAM), "renewer",
                LAF_MONITOR_SCOPE, gz_headers, "application/json", gz, zs.total_out, &resp);
    expect_error(&resp, 413, "ContentLengthLimitExceeded");
    deflateEnd(&zs);
    free(gz);
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);
}

static void test_query_errors(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    char url[512];
    const char body[] = "{\"query\":\"CertlcRenewal_CL | take 1\"}";

    snprintf(url, sizeof url, "%s/v1/workspaces/%s/query", laf_ep("services", "logquery"),
             LAF_WORKSPACE);
    /* renewer publishes but may not read */
    laf_request("POST", url, "renewer", LAF_QUERY_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 403, "InsufficientAccessError");
    clc_http_resp_cleanup(&resp);
    laf_request("POST", url, "dashboard", LAF_MONITOR_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 401, "AuthorizationRequiredError");
    clc_http_resp_cleanup(&resp);
    laf_request("POST", url, NULL, NULL, NULL, "application/json", body, sizeof body - 1, &resp);
    expect_error(&resp, 401, "AuthorizationRequiredError");
    clc_http_resp_cleanup(&resp);
    char other[512];
    snprintf(other, sizeof other, "%s/v1/workspaces/00000000-0000-0000-0000-000000000000/query",
             laf_ep("services", "logquery"));
    laf_request("POST", other, "dashboard", LAF_QUERY_SCOPE, NULL, "application/json", body,
                sizeof body - 1, &resp);
    expect_error(&resp, 404, "WorkspaceNotFoundError");
    clc_http_resp_cleanup(&resp);

    /* A syntax error: BadArgumentError with SyntaxError and where it is. */
    const char bad[] = "{\"query\":\"CertlcRenewal_CL\\n| where Vault === 1\"}";
    laf_request("POST", url, "dashboard", LAF_QUERY_SCOPE, NULL, "application/json", bad,
                sizeof bad - 1, &resp);
    expect_error(&resp, 400, "BadArgumentError");
    cJSON *j = cJSON_Parse(clc_buf_str(&resp.body));
    const cJSON *in = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "innererror");
    assert_string_equal(cJSON_GetObjectItem(in, "code")->valuestring, "SyntaxError");
    const cJSON *in2 = cJSON_GetObjectItem(in, "innererror");
    assert_int_equal(cJSON_GetObjectItem(in2, "line")->valueint, 2);
    assert_int_equal(cJSON_GetObjectItem(in2, "pos")->valueint, 16);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "correlationId"));
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);

    /* Semantic errors come back the same way through the client. */
    struct clc_errinfo ei = {0};
    cJSON *t = NULL;
    assert_int_equal(clc_la_query(laf_ep("services", "logquery"), LAF_WORKSPACE,
                                  "CertlcRenewal_CL | where Vaul == 'x'", &LF.http_opts,
                                  laf_auth("dashboard"), &t, &ei),
                     CLC_ERR_INVALID);
    assert_null(t);
    assert_non_null(strstr(ei.msg, "Vaul"));
    assert_non_null(strstr(ei.msg, "position 25"));
    assert_int_equal(clc_la_query(laf_ep("services", "logquery"), LAF_WORKSPACE, "Nope_CL",
                                  &LF.http_opts, laf_auth("dashboard"), &t, &ei),
                     CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "Nope_CL"));

    const char notjson[] = "{\"q\":1}";
    laf_request("POST", url, "dashboard", LAF_QUERY_SCOPE, NULL, "application/json", notjson,
                sizeof notjson - 1, &resp);
    expect_error(&resp, 400, "BadArgumentError");
    clc_http_resp_cleanup(&resp);
    const char span[] = "{\"query\":\"CertlcRenewal_CL | count\",\"timespan\":\"yesterday\"}";
    laf_request("POST", url, "dashboard", LAF_QUERY_SCOPE, NULL, "application/json", span,
                sizeof span - 1, &resp);
    expect_error(&resp, 400, "BadArgumentError");
    clc_http_resp_cleanup(&resp);
}

static void test_timespan(void **state)
{
    (void)state;
    struct clc_http_resp resp;
    char url[512];
    /* Rows from test_ingest_and_query are dated 2026-01-02T03:04:05..07Z. */
    const char body[] = "{\"query\":\"CertlcRenewal_CL | where Vault startswith 'kv' | count\","
                        "\"timespan\":\"2026-01-02T03:04:06Z/2026-01-02T03:04:07Z\"}";
    snprintf(url, sizeof url, "%s/v1/workspaces/%s/query", laf_ep("services", "logquery"),
             LAF_WORKSPACE);
    assert_int_equal(laf_request("POST", url, "dashboard", LAF_QUERY_SCOPE, NULL,
                                 "application/json", body, sizeof body - 1, &resp),
                     200);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"rows\":[[1]]"));
    clc_http_resp_cleanup(&resp);
    const char recent[] = "{\"query\":\"CertlcRenewal_CL | where Vault == 'kvnow' | count\","
                          "\"timespan\":\"PT5M\"}";
    assert_int_equal(laf_request("POST", url, "dashboard", LAF_QUERY_SCOPE, NULL,
                                 "application/json", recent, sizeof recent - 1, &resp),
                     200);
    assert_non_null(strstr(clc_buf_str(&resp.body), "\"rows\":[[1]]"));
    clc_http_resp_cleanup(&resp);
}

static void test_bound_per_table(void **state)
{
    (void)state;
    char body[256];
    struct clc_http_resp resp;
    for (int i = 0; i < 50; i++) {
        snprintf(body, sizeof body, "[{\"S\":\"bound\",\"L\":%d}]", i);
        assert_int_equal(laf_ingest(TYPES_DCR, TYPES_STREAM, body, &resp), 204);
        clc_http_resp_cleanup(&resp);
    }
    /* At most 40 rows: over the bound, the oldest go (a tenth more at once). */
    long n = laf_query_count("Types_CL | count");
    assert_true(n <= 40 && n >= 30);
    char *r = laf_query_rows("admin", "Types_CL | where S == 'bound' | summarize min(L), max(L)");
    char want[64];
    snprintf(want, sizeof want, "[[%ld,49]]", 50 - n);
    assert_string_equal(r, want);
    free(r);
    assert_int_equal(laf_control("GET", "/control/state", NULL), 200);
}

static void test_restart_and_reset(void **state)
{
    (void)state;
    long before = renewal_count();
    assert_true(before > 0);
    assert_int_equal(laf_restart(), 0);
    assert_int_equal(renewal_count(), before);
    assert_int_equal(laf_control("POST", "/control/reset", NULL), 204);
    assert_int_equal(renewal_count(), 0);
    assert_int_equal(laf_query_count("Types_CL | count"), 0);
    /* and the files are gone too */
    assert_int_equal(laf_restart(), 0);
    assert_int_equal(renewal_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_ingest_and_query),
        cmocka_unit_test(test_missing_time_generated_is_ingestion_time),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_ingest_auth),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_timespan),
        cmocka_unit_test(test_bound_per_table),
        cmocka_unit_test(test_restart_and_reset),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
