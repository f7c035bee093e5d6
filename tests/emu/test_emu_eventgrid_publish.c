/* The emulated Event Grid's custom topic publish API (keys, bearer tokens,
 * both schemas, every malformed body in fixtures/eventgrid), manual webhook
 * validation through validationUrl, the control API, and retries that
 * continue across a restart on the same data dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "emulator/state.h"
#include "test_emu_eventgrid_fixture.h"

#define KEY "pub-topic-key-123456"

static const char config[] =
    "{\"vaults\": [{\"name\": \"certlc\"}],"
    " \"eventgrid\": {\"topics\": [{\"name\": \"pub\", \"key\": \"" KEY "\"}],"
    "  \"subscriptions\": ["
    "   {\"name\": \"all\", \"topic\": \"pub\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/all\"}, \"filter\": {\"subject_begins_with\": \"p/\"}},"
    "   {\"name\": \"down\", \"topic\": \"pub\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/down\"}, \"filter\": {\"subject_begins_with\": \"down/\"}}"
    "  ]}}";

static int setup(void **state)
{
    (void)state;
    egfx_hook_mode("down", EGFX_VALIDATE_CODE, 500);
    egfx_hook_mode("manual", EGFX_VALIDATE_MANUAL, 200);
    return egfx_setup(config);
}

static int teardown(void **state)
{
    (void)state;
    return egfx_teardown();
}

static char *eg_event(const char *id, const char *subject)
{
    char *b = malloc(512);

    assert_non_null(b);
    snprintf(b, 512,
             "[{\"id\": \"%s\", \"subject\": \"%s\", \"eventType\": \"Test.Published\","
             " \"eventTime\": \"2026-11-22T10:00:00.1234567Z\", \"dataVersion\": \"3\","
             " \"data\": {\"k\": \"v\"}}]",
             id, subject);
    return b;
}

static void publish_url(const char *query, const char *const *headers, const char *bearer,
                        const char *body, struct egr *r)
{
    char url[512];

    snprintf(url, sizeof url, "%s/topics/pub/api/events%s", emu_service_url(eg.e, "eventgrid"),
             query);
    egfx_call("POST", url, headers, "application/json", body, strlen(body), bearer, r);
}

static void test_auth(void **state)
{
    static const char *const sas[] = {"aeg-sas-token: r=x&e=y&s=z", NULL};
    struct egr r;
    struct egfx_rec rec;
    char *b;
    cJSON *arr = NULL;

    (void)state;
    egfx_wait_state("all", "Succeeded");
    b = eg_event("a1", "p/1");
    egfx_publish("pub", KEY, "application/json; charset=utf-8", b, &r);
    eg_expect(&r, 200);
    assert_int_equal(r.resp.body.len, 0);
    egr_free(&r);
    free(b);

    b = eg_event("a2", "p/2");
    publish_url("?api-version=2018-01-01&aeg-sas-key=" KEY, NULL, NULL, b, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    free(b);

    b = eg_event("a3", "p/3");
    publish_url("?api-version=2018-01-01", NULL,
                egfx_token("admin", "https://eventgrid.azure.net/.default"), b, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    /* renewer does not hold EventGrid Data Sender. */
    publish_url("?api-version=2018-01-01", NULL,
                egfx_token("renewer", "https://eventgrid.azure.net/.default"), b, &r);
    eg_expect(&r, 403);
    assert_string_equal(egfx_str(r.json, "error.code"), "Forbidden");
    egr_free(&r);
    /* A token for another audience. */
    publish_url("?api-version=2018-01-01", NULL,
                egfx_token("admin", "https://vault.azure.net/.default"), b, &r);
    eg_expect(&r, 401);
    assert_string_equal(egfx_errdetail(&r), "InvalidToken");
    egr_free(&r);

    egfx_publish("pub", "not-the-key", "application/json", b, &r);
    eg_expect(&r, 401);
    assert_string_equal(egfx_str(r.json, "error.code"), "Unauthorized");
    assert_string_equal(egfx_errdetail(&r), "InvalidSasKey");
    assert_null(strstr(clc_buf_str(&r.resp.body), "not-the-key"));
    egr_free(&r);
    egfx_publish("pub", NULL, "application/json", b, &r);
    eg_expect(&r, 401);
    assert_string_equal(egfx_errdetail(&r), "MissingCredentials");
    egr_free(&r);
    publish_url("?api-version=2018-01-01", sas, NULL, b, &r);
    eg_expect(&r, 401);
    assert_string_equal(egfx_errdetail(&r), "SasTokenNotSupported");
    egr_free(&r);
    egfx_publish("nosuchtopic", KEY, "application/json", b, &r);
    eg_expect(&r, 404);
    egr_free(&r);
    {
        char h[64];
        const char *hk[] = {h, NULL};
        snprintf(h, sizeof h, "aeg-sas-key: %s", KEY);
        publish_url("", hk, NULL, b, &r);
        eg_expect(&r, 400);
        assert_string_equal(egfx_errdetail(&r), "MissingApiVersion");
        egr_free(&r);
    }
    free(b);

    /* Only the three accepted events arrive, each as an array of one with
     * the topic and metadataVersion Event Grid stamps. */
    egfx_wait("all", "Notification", 3);
    egfx_wait_settled("all", 3);
    egfx_get("all", "Notification", 0, &rec);
    assert_string_equal(rec.data_version, "3");
    assert_int_equal(clc_json_parse(rec.body, strlen(rec.body), 1 << 20, &arr, NULL), CLC_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(egfx_str(arr, "0.id"), "a1");
    assert_string_equal(egfx_str(arr, "0.metadataVersion"), "1");
    assert_string_equal(egfx_str(arr, "0.eventTime"), "2026-11-22T10:00:00.1234567Z");
    assert_non_null(strstr(egfx_str(arr, "0.topic"), "/providers/Microsoft.EventGrid/topics/pub"));
    cJSON_Delete(arr);
    egfx_rec_free(&rec);
}

static void test_cloudevents(void **state)
{
    static const char batch[] =
        "[{\"specversion\": \"1.0\", \"id\": \"c1\", \"source\": \"/certlc/tests\","
        "  \"type\": \"Test.Cloud\", \"subject\": \"p/c1\", \"time\": \"2026-11-22T10:00:00Z\","
        "  \"data\": {\"n\": 1}},"
        " {\"specversion\": \"1.0\", \"id\": \"c2\", \"source\": \"/certlc/tests\","
        "  \"type\": \"Test.Cloud\", \"subject\": \"p/c2\", \"data_base64\": \"AAEC\"}]";
    static const char single[] =
        "{\"specversion\": \"1.0\", \"id\": \"c3\", \"source\": \"/certlc/tests\","
        " \"type\": \"Test.Cloud\", \"subject\": \"p/c3\"}";
    struct egr r;
    struct egfx_rec rec;
    cJSON *ev = NULL;

    (void)state;
    egfx_publish("pub", KEY, "application/cloudevents-batch+json; charset=utf-8", batch, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    egfx_publish("pub", KEY, "application/cloudevents+json", single, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    egfx_wait("all", "Notification", 6);
    egfx_wait_settled("all", 6);
    egfx_get("all", "Notification", 3, &rec);
    assert_non_null(strstr(rec.content_type, "application/cloudevents+json"));
    assert_string_equal(rec.metadata_version, "1.0");
    assert_int_equal(clc_json_parse(rec.body, strlen(rec.body), 1 << 20, &ev, NULL), CLC_OK);
    /* One CloudEvent per request, as an object, untouched. */
    assert_true(cJSON_IsObject(ev));
    assert_string_equal(egfx_str(ev, "id"), "c1");
    assert_string_equal(egfx_str(ev, "source"), "/certlc/tests");
    cJSON_Delete(ev);
    egfx_rec_free(&rec);
}

static void test_malformed(void **state)
{
    static const struct {
        const char *file, *ctype, *detail;
    } cases[] = {
        {"eg-truncated.json", "application/json", "InputJsonInvalid"},
        {"eg-object-not-array.json", "application/json", "InvalidEventsFormat"},
        {"eg-empty-array.json", "application/json", "InvalidEventsFormat"},
        {"eg-not-an-object.json", "application/json", "InvalidEventsFormat"},
        {"eg-missing-id.json", "application/json", "MissingRequiredProperty"},
        {"eg-number-id.json", "application/json", "InvalidPropertyValue"},
        {"eg-missing-subject.json", "application/json", "MissingRequiredProperty"},
        {"eg-missing-eventtype.json", "application/json", "MissingRequiredProperty"},
        {"eg-bad-eventtime.json", "application/json", "InvalidPropertyValue"},
        {"eg-missing-dataversion.json", "application/json", "MissingRequiredProperty"},
        {"eg-missing-data.json", "application/json", "MissingRequiredProperty"},
        {"eg-wrong-topic.json", "application/json", "InvalidPropertyValue"},
        {"eg-bad-metadataversion.json", "application/json", "InvalidPropertyValue"},
        {"eg-long-id.json", "application/json", "InvalidPropertyValue"},
        {"eg-second-event-bad.json", "application/json", "InvalidPropertyValue"},
        {"ce-missing-source.json", "application/cloudevents-batch+json", "MissingRequiredProperty"},
        {"ce-bad-specversion.json", "application/cloudevents-batch+json", "InvalidPropertyValue"},
        {"ce-data-and-base64.json", "application/cloudevents-batch+json", "InvalidPropertyValue"},
        {"ce-bad-time.json", "application/cloudevents-batch+json", "InvalidPropertyValue"},
        {"ce1-array-for-single.json", "application/cloudevents+json", "InvalidEventsFormat"},
        {"eg-missing-id.json", "text/plain", "UnsupportedContentType"},
    };
    struct egr r;
    char path[512], *big;
    cJSON *s;
    size_t before = egfx_count("all", "Notification");

    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/eventgrid/%s", CLC_FIXTURES, cases[i].file);
        assert_int_equal(clc_file_read(path, 1 << 20, &text, &len, NULL), CLC_OK);
        egfx_publish("pub", KEY, cases[i].ctype, text, &r);
        if (r.status != 400 || strcmp(egfx_errdetail(&r), cases[i].detail) != 0)
            fail_msg("%s: %ld %s, expected 400 %s", cases[i].file, r.status,
                     clc_buf_str(&r.resp.body), cases[i].detail);
        assert_string_equal(egfx_str(r.json, "error.code"), "BadRequest");
        assert_non_null(egfx_str(r.json, "error.message"));
        egr_free(&r);
        free(text);
    }
    /* Over 1 MB. */
    big = malloc(1100 * 1024 + 1);
    assert_non_null(big);
    memset(big, ' ', 1100 * 1024);
    big[0] = '[';
    big[1100 * 1024 - 1] = ']';
    big[1100 * 1024] = '\0';
    egfx_publish("pub", KEY, "application/json", big, &r);
    eg_expect(&r, 413);
    egr_free(&r);
    free(big);

    /* Nothing of a refused request was kept (not even ok-1 of a bad batch). */
    s = egfx_sub("all");
    assert_int_equal(egfx_int(s, "pending"), 0);
    assert_int_equal(egfx_int(s, "delivered"), 6);
    cJSON_Delete(s);
    assert_int_equal(egfx_count("all", "Notification"), before);
}

static void test_manual_validation_and_control(void **state)
{
    static const char def[] = "{\"topic\": \"pub\", \"destination\": {\"type\": \"webhook\","
                              " \"url\": \"HOOK/manual\"}, \"filter\": {\"subject_begins_with\":"
                              " \"m/\"}}";
    struct egr r;
    struct egfx_rec rec;
    cJSON *arr = NULL;
    char body[512], url[600], *b;
    const char *vurl, *p;

    (void)state;
    /* The control API takes the config shape; HOOK is the test's to fill. */
    p = strstr(def, "HOOK");
    snprintf(body, sizeof body, "%.*s%s%s", (int)(p - def), def, eg.hook, p + 4);
    egfx_admin("PUT", "/control/eventgrid/subscriptions/manual-sub", body, &r);
    eg_expect(&r, 201);
    egr_free(&r);
    egfx_wait_state("manual-sub", "AwaitingManualAction");

    egfx_get("manual", "SubscriptionValidation", 0, &rec);
    assert_int_equal(clc_json_parse(rec.body, strlen(rec.body), 1 << 20, &arr, NULL), CLC_OK);
    vurl = egfx_str(arr, "0.data.validationUrl");
    assert_non_null(vurl);
    /* A forged token is refused. */
    snprintf(url, sizeof url, "%.*sforged", (int)(strstr(vurl, "token=") + 6 - vurl), vurl);
    egfx_call("GET", url, NULL, NULL, NULL, 0, NULL, &r);
    eg_expect(&r, 404);
    egr_free(&r);
    egfx_call("GET", vurl, NULL, NULL, NULL, 0, NULL, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    cJSON_Delete(arr);
    egfx_rec_free(&rec);
    egfx_wait_state("manual-sub", "Succeeded");
    b = eg_event("m1", "m/1");
    egfx_publish("pub", KEY, "application/json", b, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    free(b);
    egfx_wait("manual", "Notification", 1);

    /* Bad definitions. */
    egfx_admin("PUT", "/control/eventgrid/subscriptions/x-sub", "{\"topic\": \"pub\", \"typo\": 1}",
               &r);
    eg_expect(&r, 400);
    egr_free(&r);
    egfx_admin("PUT", "/control/eventgrid/subscriptions/x-sub",
               "{\"topic\": \"novault\", \"destination\": {\"type\": \"storagequeue\","
               " \"account\": \"devstoreaccount1\", \"queue\": \"q1\"}}",
               &r);
    eg_expect(&r, 400);
    egr_free(&r);
    egfx_admin(
        "PUT", "/control/eventgrid/subscriptions/x-sub",
        "{\"topic\": \"pub\", \"destination\": {\"type\": \"webhook\", \"url\": \"ftp://x\"}}", &r);
    eg_expect(&r, 400);
    egr_free(&r);

    egfx_admin("GET", "/control/eventgrid/subscriptions", NULL, &r);
    eg_expect(&r, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "subscriptions")), 3);
    egr_free(&r);
    egfx_admin("DELETE", "/control/eventgrid/subscriptions/manual-sub", NULL, &r);
    eg_expect(&r, 204);
    egr_free(&r);
    egfx_admin("DELETE", "/control/eventgrid/subscriptions/manual-sub", NULL, &r);
    eg_expect(&r, 404);
    egr_free(&r);

    /* Topics at run time. */
    egfx_admin("PUT", "/control/eventgrid/topics/extra", "{\"key\": \"extra-key-1234\"}", &r);
    eg_expect(&r, 201);
    egr_free(&r);
    b = eg_event("x1", "p/x");
    egfx_publish("extra", "extra-key-1234", "application/json", b, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    egfx_admin("GET", "/control/eventgrid/topics", NULL, &r);
    eg_expect(&r, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "topics")), 2);
    assert_null(strstr(clc_buf_str(&r.resp.body), "extra-key-1234"));
    egr_free(&r);
    egfx_admin("DELETE", "/control/eventgrid/topics/extra", NULL, &r);
    eg_expect(&r, 204);
    egr_free(&r);
    egfx_publish("extra", "extra-key-1234", "application/json", b, &r);
    eg_expect(&r, 404);
    egr_free(&r);
    free(b);
}

static void test_restart_continues_retries(void **state)
{
    struct egr r;
    struct egfx_rec rec;
    cJSON *s;
    char *b;

    (void)state;
    egfx_wait_state("down", "Succeeded");
    egfx_freeze();
    b = eg_event("r1", "down/1");
    egfx_publish("pub", KEY, "application/json", b, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    free(b);
    egfx_wait("down", "Notification", 1);
    s = egfx_sub("down");
    assert_int_equal(egfx_int(s, "pending"), 1);
    cJSON_Delete(s);

    assert_int_equal(egfx_restart(), 0);
    /* Validated before: no new handshake; the event is still pending. */
    s = egfx_sub("down");
    assert_string_equal(egfx_str(s, "provisioning_state"), "Succeeded");
    assert_int_equal(egfx_int(s, "pending"), 1);
    cJSON_Delete(s);
    assert_int_equal(egfx_count("down", "SubscriptionValidation"), 1);

    egfx_hook_mode("down", EGFX_VALIDATE_CODE, 200);
    egfx_admin("POST", "/control/eventgrid/redeliver", NULL, &r);
    eg_expect(&r, 200);
    egr_free(&r);
    egfx_wait("down", "Notification", 2);
    egfx_wait_settled("down", 1);
    egfx_get("down", "Notification", 1, &rec);
    assert_int_equal(rec.delivery_count, 1);
    assert_non_null(strstr(rec.body, "\"id\":\"r1\""));
    egfx_rec_free(&rec);

    egfx_admin("GET", "/control/eventgrid/deadletters", NULL, &r);
    eg_expect(&r, 200);
    assert_int_equal(egfx_int(r.json, "subscriptions.down.dead_lettered"), 0);
    egr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_cloudevents),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_manual_validation_and_control),
        cmocka_unit_test(test_restart_continues_retries),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
