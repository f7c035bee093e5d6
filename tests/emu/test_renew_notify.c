/* The worker's e-mail and Log Analytics records, against the emulator's SMTP
 * sink (read back through its mailbox API) and Logs Ingestion / query API:
 * one mail per renewal to each recipient of the Recipient tag, a row per
 * step; the SMTP server down (renewed anyway, the notice sent on a later
 * attempt, no second version) and Log Analytics down (rows kept and sent
 * once it is back); a denial mails the failure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/loganalytics.h"
#include "pipeline/notify.h"
#include "renew_fixture.h"

static struct clc_notify *notify;
static struct clc_la *la;

static const char *ep(const char *a, const char *b)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(R.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static int setup(void **state)
{
    struct clc_errinfo ei = {0};
    struct clc_secret *pw = NULL;
    if (rf_setup(state) != 0)
        return -1;
    const char *p = ep("smtp_accounts", "certlc");
    if (!p || clc_secret_new(p, strlen(p), &pw) != CLC_OK)
        return -1;
    struct clc_notify_opts no = {.url = ep("smtp", "smtps_url"),
                                 .from = "certlc <certlc@certlc.test>",
                                 .username = "certlc",
                                 .password = pw,
                                 .ca_bundle = emu_ca_bundle(R.e),
                                 .timeout_ms = 10000};
    enum clc_err rc = clc_notify_new(&no, &notify, &ei);
    clc_secret_free(pw);
    if (rc != CLC_OK) {
        fprintf(stderr, "notify: %s\n", ei.msg);
        return -1;
    }
    const cJSON *dcrs =
        cJSON_GetObjectItem(cJSON_GetObjectItem(R.endpoints, "log_analytics"), "dcrs");
    struct clc_la_opts lo = {
        .endpoint = emu_service_url(R.e, "loganalytics"),
        .dcr_id = cJSON_GetStringValue(cJSON_GetObjectItem(dcrs, "Custom-CertlcRenewal_CL")),
        .stream = "Custom-CertlcRenewal_CL"};
    if (clc_la_new(&lo, &R.http, R.renewer, &la, &ei) != CLC_OK) {
        fprintf(stderr, "la: %s\n", ei.msg);
        return -1;
    }
    clc_la_set_retry(la, &R.retry); /* no real waiting between attempts */
    return 0;
}

static int teardown(void **state)
{
    clc_notify_free(notify);
    clc_la_free(la);
    return rf_teardown(state);
}

static struct clc_worker_summary drain(void)
{
    struct clc_worker_summary s;
    struct clc_errinfo ei = {0};
    struct clc_worker *w = rf_worker_with(1, -1, notify, la);
    if (clc_worker_drain(w, &s, &ei) != CLC_OK)
        fail_msg("drain: %s", ei.msg);
    clc_worker_free(w);
    return s;
}

/* Messages in the mailbox for addr; subject of the last one into subj. */
static int mails_to(const char *addr, char *subj, size_t n)
{
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    char url[512];
    snprintf(url, sizeof url, "%s/messages?to=%s", emu_service_url(R.e, "mailbox"), addr);
    struct clc_http *h = NULL;
    assert_int_equal(clc_http_new(&R.http, &h, &ei), CLC_OK);
    struct clc_http_req req = {.method = "GET", .url = url};
    clc_http_resp_init(&resp);
    assert_int_equal(clc_http_do(h, &req, &resp, &ei), CLC_OK);
    assert_int_equal(resp.status, 200);
    cJSON *j = cJSON_Parse(clc_buf_str(&resp.body));
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages");
    int count = cJSON_GetArraySize(msgs);
    if (subj && count)
        snprintf(subj, n, "%s",
                 cJSON_GetStringValue(
                     cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, count - 1), "subject")));
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    clc_http_free(h);
    return count;
}

/* Renewal-log rows for a certificate (and step, or NULL for all). */
static int rows_for(const char *cert, const char *step)
{
    char q[512];
    cJSON *table = NULL;
    struct clc_errinfo ei = {0};
    if (step)
        snprintf(q, sizeof q, "CertlcRenewal_CL | where Certificate == '%s' | where Step == '%s'",
                 cert, step);
    else
        snprintf(q, sizeof q, "CertlcRenewal_CL | where Certificate == '%s'", cert);
    if (clc_la_query(emu_service_url(R.e, "logquery"), ep("log_analytics", "workspace_id"), q,
                     &R.http, R.admin, &table, &ei) != CLC_OK)
        fail_msg("query: %s", ei.msg);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(table, "rows"));
    cJSON_Delete(table);
    return n;
}

static void mail_and_rows_per_renewal(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed s0 = {.tags = "{\"Recipient\":\"alice@contoso.test; bob@contoso.test\"}"};
    char subj[300] = "";
    rf_reset();
    rf_seed("mail-1", &s0, &v);
    rf_event("mail-1", &v);
    struct clc_worker_summary s = drain();
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(mails_to("alice@contoso.test", subj, sizeof subj), 1);
    assert_non_null(strstr(subj, "mail-1"));
    assert_int_equal(mails_to("bob@contoso.test", NULL, 0), 1);
    assert_int_equal(rows_for("mail-1", "merge"), 1);
    assert_int_equal(rows_for("mail-1", "submit"), 1);
    assert_true(rows_for("mail-1", NULL) >= 6);
}

static void smtp_down_then_up(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed s0 = {.tags = "{\"Recipient\":\"carol@contoso.test\"}"};
    rf_reset();
    rf_seed("mail-down", &s0, &v);
    rf_event("mail-down", &v);
    assert_int_equal(rf_control("PUT", "/control/smtp/down", "{\"down\":true}", NULL), 200);
    struct clc_worker_summary s = drain();
    /* Renewed all the same; only the notice is owed. */
    assert_int_equal(s.outcomes[CLC_RENEW_NOTICE_RETRY], 1);
    assert_int_equal(rf_versions("mail-down"), 2);
    assert_int_equal(mails_to("carol@contoso.test", NULL, 0), 0);
    assert_int_equal(rf_control("PUT", "/control/smtp/down", "{\"down\":false}", NULL), 200);
    rf_advance(61);
    s = drain();
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(mails_to("carol@contoso.test", NULL, 0), 1);
    assert_int_equal(rf_versions("mail-down"), 2);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
}

static void log_analytics_down_then_up(void **state)
{
    (void)state;
    struct rf_version v;
    rf_reset();
    rf_seed("la-down", NULL, &v);
    rf_event("la-down", &v);
    rf_fault("loganalytics", "POST", "/dataCollectionRules/*", 0, 503);
    struct clc_worker *w = rf_worker_with(1, -1, notify, la);
    struct clc_worker_summary s;
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_worker_drain(w, &s, &ei), CLC_OK);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rows_for("la-down", NULL), 0);
    assert_true(clc_la_buffered(la) > 0);
    rf_faults_clear();
    /* The next drain (nothing to do) sends what was kept. */
    assert_int_equal(clc_worker_drain(w, &s, &ei), CLC_OK);
    clc_worker_free(w);
    assert_int_equal(clc_la_buffered(la), 0);
    assert_int_equal(rows_for("la-down", "merge"), 1);
}

static void denial_mails_the_failure(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed s0 = {.tags = "{\"Recipient\":\"dave@contoso.test\","
                                 "\"CertificateTemplate\":\"NoSuchTemplate\"}"};
    char subj[300] = "";
    rf_reset();
    rf_seed("mail-denied", &s0, &v);
    rf_event("mail-denied", &v);
    struct clc_worker_summary s = drain();
    assert_int_equal(s.outcomes[CLC_RENEW_POISON], 1);
    assert_int_equal(mails_to("dave@contoso.test", subj, sizeof subj), 1);
    assert_non_null(strstr(subj, "mail-denied"));
    assert_int_equal(rows_for("mail-denied", "submit"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mail_and_rows_per_renewal),
        cmocka_unit_test(smtp_down_then_up),
        cmocka_unit_test(log_analytics_down_then_up),
        cmocka_unit_test(denial_mails_the_failure),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
