/* The Logs Ingestion client against the emulated Log Analytics: rows sent
 * and queried back, large buffers split into calls of at most 1 MB, rows
 * refused by the service dropped and reported while the others arrive, the
 * service down (503) and then up with nothing lost, Retry-After honoured, the
 * bounded buffer, wrong roles and rules, configuration, and rows surviving an
 * emulator restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/loganalytics.h"
#include "core/config.h"
#include "test_emu_loganalytics_fixture.h"

struct sleeps {
    int n;
    int64_t total_ms, last_ms;
};
static struct sleeps S;

static void record_sleep(int64_t ms, void *ctx)
{
    struct sleeps *s = ctx;
    s->n++;
    s->total_ms += ms;
    s->last_ms = ms;
}

static int setup(void **state)
{
    (void)state;
    return laf_setup(NULL); /* the default rules: certlc's renewal log and inventory */
}

static int teardown(void **state)
{
    (void)state;
    laf_teardown();
    return 0;
}

static struct clc_la *client_for(const char *identity, const char *endpoint, const char *dcr,
                                 size_t max_rows)
{
    struct clc_la *la = NULL;
    struct clc_errinfo ei = {0};
    struct clc_retry_policy p;
    struct clc_la_opts o = {
        .endpoint = endpoint ? endpoint : laf_ep("services", "loganalytics"),
        .dcr_id = dcr ? dcr : LAF_RENEWAL_DCR,
        .stream = LAF_RENEWAL_STREAM,
        .max_buffered_rows = max_rows,
    };
    if (clc_la_new(&o, &LF.http_opts, laf_auth(identity), &la, &ei) != CLC_OK)
        fail_msg("clc_la_new: %s", ei.msg);
    clc_retry_policy_default(&p);
    p.sleep_ms = record_sleep;
    p.ctx = &S;
    clc_la_set_retry(la, &p);
    memset(&S, 0, sizeof S);
    return la;
}

static cJSON *row(const char *vault, const char *cert, const char *step, long duration,
                  const char *error)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "TimeGenerated", "2026-02-03T04:05:06Z");
    cJSON_AddStringToObject(r, "Vault", vault);
    cJSON_AddStringToObject(r, "Certificate", cert);
    cJSON_AddStringToObject(r, "Version", "0123abcd");
    cJSON_AddStringToObject(r, "Step", step);
    cJSON_AddStringToObject(r, "Outcome", error ? "failed" : "ok");
    cJSON_AddNumberToObject(r, "DurationMs", (double)duration);
    cJSON_AddStringToObject(r, "CaRequestId", "42");
    cJSON_AddStringToObject(r, "Error", error ? error : "");
    return r;
}

static void add(struct clc_la *la, cJSON *r)
{
    struct clc_errinfo ei = {0};
    if (clc_la_add(la, r, &ei) != CLC_OK)
        fail_msg("clc_la_add: %s", ei.msg);
}

static long count_vault(const char *vault)
{
    char q[256];
    snprintf(q, sizeof q, "CertlcRenewal_CL | where Vault == '%s' | count", vault);
    return laf_query_count(q);
}

static void test_send_and_query(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};
    struct clc_la_stats st;

    add(la, row("kv-a", "web", "create", 15, NULL));
    add(la, row("kv-a", "web", "merge", 40, NULL));
    add(la, row("kv-b", "api", "submit", 7, "CA denied the request"));
    assert_int_equal(clc_la_buffered(la), 3);
    if (clc_la_flush(la, &ei) != CLC_OK)
        fail_msg("flush: %s", ei.msg);
    assert_int_equal(clc_la_buffered(la), 0);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.sent, 3);
    assert_int_equal(st.batches, 1);
    /* An empty flush sends nothing. */
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.batches, 1);

    char *r = laf_query_rows("dashboard", "CertlcRenewal_CL | where Vault startswith 'kv-' | "
                                          "summarize count() by Vault | order by Vault asc");
    assert_string_equal(r, "[[\"kv-a\",2],[\"kv-b\",1]]");
    free(r);
    r = laf_query_rows("dashboard",
                       "CertlcRenewal_CL | where Outcome == 'failed' and Vault == "
                       "'kv-b' | project Certificate, Step, Error, DurationMs | take 1");
    assert_string_equal(r, "[[\"api\",\"submit\",\"CA denied the request\",7]]");
    free(r);
    r = laf_query_rows("admin", "CertlcRenewal_CL | where Vault == 'kv-a' | order by DurationMs "
                                "desc | project Step | take 1");
    assert_string_equal(r, "[[\"merge\"]]");
    free(r);
    clc_la_free(la);
}

static void fill(struct clc_la *la, const char *vault, int n)
{
    char err[1001];
    memset(err, 'e', 1000);
    err[1000] = '\0';
    for (int i = 0; i < n; i++)
        add(la, row(vault, "bulk", "merge", i, err));
}

static void test_large_buffer_split(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 5000);
    struct clc_errinfo ei = {0};
    struct clc_la_stats st;

    /* About 1.2 KB per row: 2600 rows are some 3 MB, so three calls. */
    fill(la, "kv-split", 2600);
    if (clc_la_flush(la, &ei) != CLC_OK)
        fail_msg("flush: %s", ei.msg);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.sent, 2600);
    assert_int_equal(st.batches, 3);
    assert_int_equal(count_vault("kv-split"), 2600);
    /* Order is kept within and across calls. */
    char *r = laf_query_rows("admin", "CertlcRenewal_CL | where Vault == 'kv-split' | summarize "
                                      "min(DurationMs), max(DurationMs)");
    assert_string_equal(r, "[[0,2599]]");
    free(r);

    /* Without gzip the same split applies (1 MB is counted before compression). */
    clc_la_set_gzip(la, 0);
    fill(la, "kv-plain", 1000);
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.batches, 5);
    assert_int_equal(count_vault("kv-plain"), 1000);
    clc_la_free(la);
}

static void test_row_over_limit(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};
    char *big = malloc(CLC_LA_BATCH_MAX_BYTES + 1);

    memset(big, 'x', CLC_LA_BATCH_MAX_BYTES);
    big[CLC_LA_BATCH_MAX_BYTES] = '\0';
    cJSON *r = row("kv-big", "big", "merge", 1, NULL);
    cJSON_ReplaceItemInObject(r, "Error", cJSON_CreateString(big));
    free(big);
    assert_int_equal(clc_la_add(la, r, &ei), CLC_ERR_LIMIT);
    assert_non_null(strstr(ei.msg, "exceeds"));
    assert_int_equal(clc_la_buffered(la), 0);
    assert_int_equal(clc_la_add(la, cJSON_CreateArray(), &ei), CLC_ERR_INVALID);
    clc_la_free(la);
}

static void test_down_then_up_nothing_lost(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};

    laf_fault("loganalytics", "*", -1, 503, 0);
    for (int i = 0; i < 5; i++)
        add(la, row("kv-down", "c", "merge", i, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_UNAVAILABLE);
    assert_non_null(strstr(ei.msg, "5 rows kept"));
    assert_int_equal(ei.http_status, 503);
    assert_int_equal(clc_la_buffered(la), 5);
    assert_int_equal(S.n, 3); /* 4 attempts, 3 waits, none of them real */
    /* More rows arrive while it is down; a second flush fails the same way. */
    add(la, row("kv-down", "c", "merge", 5, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_la_buffered(la), 6);

    laf_faults_clear();
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    assert_int_equal(clc_la_buffered(la), 0);
    assert_int_equal(count_vault("kv-down"), 6);
    char *r = laf_query_rows("admin", "CertlcRenewal_CL | where Vault == 'kv-down' | summarize "
                                      "min(DurationMs), max(DurationMs)");
    assert_string_equal(r, "[[0,5]]");
    free(r);
    clc_la_free(la);
}

static void test_retry_after(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};

    laf_fault("loganalytics", "*", 1, 429, 7);
    add(la, row("kv-429", "c", "merge", 1, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    assert_int_equal(S.n, 1);
    assert_int_equal(S.last_ms, 7000);
    assert_int_equal(count_vault("kv-429"), 1);
    laf_faults_clear();
    clc_la_free(la);
}

static void test_bounded_buffer(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 5);
    struct clc_errinfo ei = {0};
    struct clc_la_stats st;
    char name[16];

    laf_fault("loganalytics", "*", -1, 503, 0);
    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof name, "c%d", i);
        add(la, row("kv-bound", name, "merge", i, NULL));
    }
    assert_int_equal(clc_la_buffered(la), 5);
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_UNAVAILABLE);
    assert_int_equal(clc_la_buffered(la), 5);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.dropped, 3);
    laf_faults_clear();
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    /* The newest five are kept, the oldest dropped. */
    char *r = laf_query_rows("admin", "CertlcRenewal_CL | where Vault == 'kv-bound' | order by "
                                      "DurationMs asc | project Certificate");
    assert_string_equal(r, "[[\"c3\"],[\"c4\"],[\"c5\"],[\"c6\"],[\"c7\"]]");
    free(r);
    clc_la_free(la);
}

static void test_refused_rows_reported(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};
    struct clc_la_stats st;

    add(la, row("kv-refuse", "good1", "merge", 1, NULL));
    cJSON *bad = row("kv-refuse", "bad", "merge", 2, NULL);
    cJSON_ReplaceItemInObject(bad, "DurationMs", cJSON_CreateString("slow"));
    add(la, bad);
    add(la, row("kv-refuse", "good2", "merge", 3, NULL));
    add(la, row("kv-refuse", "good3", "merge", 4, NULL));
    cJSON *unknown = row("kv-refuse", "bad2", "merge", 5, NULL);
    cJSON_AddStringToObject(unknown, "Colour", "blue");
    add(la, unknown);
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "2 rows refused"));
    assert_non_null(strstr(ei.msg, "DurationMs"));
    assert_int_equal(clc_la_buffered(la), 0);
    clc_la_get_stats(la, &st);
    assert_int_equal(st.refused, 2);
    assert_int_equal(st.sent, 3);
    char *r = laf_query_rows("admin", "CertlcRenewal_CL | where Vault == 'kv-refuse' | order by "
                                      "DurationMs asc | project Certificate");
    assert_string_equal(r, "[[\"good1\"],[\"good2\"],[\"good3\"]]");
    free(r);
    clc_la_free(la);
}

static void test_wrong_role_and_rule_keep_rows(void **state)
{
    (void)state;
    struct clc_la *la = client_for("reader", NULL, NULL, 0);
    struct clc_errinfo ei = {0};

    add(la, row("kv-role", "c", "merge", 1, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_FORBIDDEN);
    assert_int_equal(ei.http_status, 403);
    assert_string_equal(ei.code, "OperationFailed");
    assert_int_equal(clc_la_buffered(la), 1);
    assert_int_equal(S.n, 0); /* not retried */
    clc_la_free(la);

    la = client_for("renewer", NULL, "dcr-00000000000000000000000000000bad", 0);
    add(la, row("kv-role", "c", "merge", 1, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_NOT_FOUND);
    assert_int_equal(clc_la_buffered(la), 1);
    clc_la_free(la);
    assert_int_equal(count_vault("kv-role"), 0);
}

static void test_unreachable(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", "https://127.0.0.1:1", NULL, 0);
    struct clc_errinfo ei = {0};

    add(la, row("kv-net", "c", "merge", 1, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_ERR_NET);
    assert_int_equal(clc_la_buffered(la), 1);
    assert_int_equal(S.n, 3);
    clc_la_free(la);
}

static void test_options_and_config(void **state)
{
    (void)state;
    struct clc_la *la = NULL;
    struct clc_errinfo ei = {0};
    struct clc_config *cfg = NULL;
    char text[1024];
    struct clc_la_opts bad[] = {
        {.endpoint = "http://127.0.0.1:1", .dcr_id = LAF_RENEWAL_DCR, .stream = "Custom-X"},
        {.endpoint = "https://h/?q=1", .dcr_id = LAF_RENEWAL_DCR, .stream = "Custom-X"},
        {.endpoint = "https://h", .dcr_id = "0123", .stream = "Custom-X"},
        {.endpoint = "https://h", .dcr_id = LAF_RENEWAL_DCR, .stream = "Custom X"},
        {.endpoint = "https://h", .dcr_id = LAF_RENEWAL_DCR, .stream = NULL},
        {.endpoint = "https://h", .dcr_id = LAF_RENEWAL_DCR, .stream = "S", .api_version = "1 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(clc_la_new(&bad[i], &LF.http_opts, LF.renewer, &la, &ei), CLC_ERR_CONFIG);
        assert_null(la);
    }

    const char *none = "{}";
    assert_int_equal(clc_config_load_text(none, strlen(none), "test", NULL, clc_la_config_keys,
                                          clc_la_config_nkeys, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_la_from_config(cfg, &LF.http_opts, LF.renewer, &la, &ei),
                     CLC_ERR_NOT_FOUND);
    clc_config_free(cfg);
    snprintf(text, sizeof text, "{\"loganalytics\":{\"endpoint\":\"%s\"}}",
             laf_ep("services", "loganalytics"));
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_la_config_keys,
                                          clc_la_config_nkeys, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_la_from_config(cfg, &LF.http_opts, LF.renewer, &la, &ei), CLC_ERR_CONFIG);
    assert_non_null(strstr(ei.msg, "dcr_id"));
    clc_config_free(cfg);

    snprintf(text, sizeof text,
             "{\"loganalytics\":{\"endpoint\":\"%s/\",\"dcr_id\":\"%s\",\"gzip\":false,"
             "\"max_buffered_rows\":3}}",
             laf_ep("services", "loganalytics"), LAF_RENEWAL_DCR);
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_la_config_keys,
                                          clc_la_config_nkeys, &cfg, &ei),
                     CLC_OK);
    if (clc_la_from_config(cfg, &LF.http_opts, LF.renewer, &la, &ei) != CLC_OK)
        fail_msg("from config: %s", ei.msg);
    for (int i = 0; i < 4; i++)
        add(la, row("kv-cfg", "c", "merge", i, NULL));
    assert_int_equal(clc_la_buffered(la), 3);
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    assert_int_equal(count_vault("kv-cfg"), 3);
    clc_la_free(la);
    clc_config_free(cfg);
}

static void test_restart_keeps_rows(void **state)
{
    (void)state;
    struct clc_la *la = client_for("renewer", NULL, NULL, 0);
    struct clc_errinfo ei = {0};

    add(la, row("kv-restart", "c", "merge", 1, NULL));
    add(la, row("kv-restart", "d", "merge", 2, NULL));
    assert_int_equal(clc_la_flush(la, &ei), CLC_OK);
    clc_la_free(la); /* it borrows the fixture's credentials, which a restart replaces */
    long total = laf_query_count("CertlcRenewal_CL | count");
    assert_int_equal(laf_restart(), 0);
    assert_int_equal(count_vault("kv-restart"), 2);
    assert_int_equal(laf_query_count("CertlcRenewal_CL | count"), total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_send_and_query),
        cmocka_unit_test(test_large_buffer_split),
        cmocka_unit_test(test_row_over_limit),
        cmocka_unit_test(test_down_then_up_nothing_lost),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_bounded_buffer),
        cmocka_unit_test(test_refused_rows_reported),
        cmocka_unit_test(test_wrong_role_and_rule_keep_rows),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_options_and_config),
        cmocka_unit_test(test_restart_keeps_rows),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
