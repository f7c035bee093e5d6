/* The emulated Event Grid's delivery: handshakes, a vault's NearExpiry to a
 * Storage queue and a webhook, the retry schedule by the emulator clock,
 * dead-letter blobs (attempts, TTL, no-retry statuses), filters, webhooks
 * that never validate, and once-per-id delivery. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "emulator/state.h"
#include "test_emu_eventgrid_fixture.h"

#define KEY "custom-topic-key-1"
#define DL "\"dead_letter\": {\"account\": \"devstoreaccount1\", \"container\": \"deadletters\"}"
#define NEAR "Microsoft.KeyVault.CertificateNearExpiry"

static const char config[] =
    "{\"vaults\": [{\"name\": \"certlc\"}],"
    " \"eventgrid\": {\"topics\": [{\"name\": \"custom\", \"key\": \"" KEY "\"}],"
    "  \"subscriptions\": ["
    "   {\"name\": \"kv-queue\", \"topic\": \"certlc\", \"destination\": {\"type\": "
    "\"storagequeue\","
    "     \"account\": \"devstoreaccount1\", \"queue\": \"certlc-events\"},"
    "     \"filter\": {\"included_event_types\": [\"" NEAR "\"]}},"
    "   {\"name\": \"kv-hook\", \"topic\": \"certlc\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/kv\", \"shared_secret\": \"hook-secret-42\"},"
    "     \"filter\": {\"included_event_types\": [\"" NEAR "\"]}},"
    "   {\"name\": \"fail500\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/fail500\"}, \"filter\": {\"subject_begins_with\": \"retry/\"},"
    "     \"retry_policy\": {\"max_delivery_attempts\": 5}, " DL "},"
    "   {\"name\": \"ttl\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/ttl\"}, \"filter\": {\"subject_begins_with\": \"ttl/\"},"
    "     \"retry_policy\": {\"event_ttl_minutes\": 1}, " DL "},"
    "   {\"name\": \"bad400\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/bad400\"}, \"filter\": {\"subject_begins_with\": \"bad/\"}, " DL "},"
    "   {\"name\": \"filtered\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/filtered\"}, \"filter\": {\"included_event_types\": [\"Test.Wanted\"],"
    "     \"subject_begins_with\": \"f/\", \"subject_ends_with\": \".txt\"}},"
    "   {\"name\": \"dupes\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/dupes\"}, \"filter\": {\"subject_begins_with\": \"dup/\"}},"
    "   {\"name\": \"never\", \"topic\": \"custom\", \"destination\": {\"type\": \"webhook\","
    "     \"url\": \"HOOK/never\"}},"
    "   {\"name\": \"never-manual\", \"topic\": \"custom\", \"destination\": {\"type\": "
    "\"webhook\","
    "     \"url\": \"HOOK/never-manual\"}}"
    "  ]}}";

static int setup(void **state)
{
    struct clc_errinfo ei = {0};

    (void)state;
    egfx_hook_mode("fail500", EGFX_VALIDATE_CODE, 500);
    egfx_hook_mode("ttl", EGFX_VALIDATE_CODE, 503);
    egfx_hook_mode("bad400", EGFX_VALIDATE_CODE, 400);
    egfx_hook_mode("never", EGFX_VALIDATE_WRONG, 200);
    egfx_hook_mode("never-manual", EGFX_VALIDATE_MANUAL, 200);
    if (egfx_setup(config) != 0)
        return -1;
    if (clc_queue_create(eg.queue, "certlc-events", NULL, NULL, &ei) != CLC_OK ||
        clc_blob_create_container(eg.blob, "deadletters", NULL, &ei) != CLC_OK) {
        fprintf(stderr, "storage: %s\n", ei.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return egfx_teardown();
}

static void publish_ok(const char *body)
{
    struct egr r;

    egfx_publish("custom", KEY, "application/json", body, &r);
    eg_expect(&r, 200);
    egr_free(&r);
}

/* One Event Grid schema event as a JSON array. */
static void publish_one(const char *id, const char *type, const char *subject)
{
    char body[512];

    snprintf(body, sizeof body,
             "[{\"id\": \"%s\", \"subject\": \"%s\", \"eventType\": \"%s\","
             " \"eventTime\": \"2026-11-22T10:00:00.0000000Z\", \"dataVersion\": \"1\","
             " \"data\": {\"n\": 1}}]",
             id, subject, type);
    publish_ok(body);
}

static void test_handshakes(void **state)
{
    static const char *const active[] = {"kv-hook", "fail500",  "ttl",
                                         "bad400",  "filtered", "dupes"};
    struct egfx_rec rec;
    cJSON *arr = NULL, *s;

    (void)state;
    for (size_t i = 0; i < sizeof active / sizeof active[0]; i++)
        egfx_wait_state(active[i], "Succeeded");
    egfx_wait_state("kv-queue", "Succeeded"); /* no handshake for a queue */
    egfx_wait_state("never", "Failed");
    egfx_wait_state("never-manual", "AwaitingManualAction");

    /* The handshake as Event Grid sends it. */
    egfx_get("kv", "SubscriptionValidation", 0, &rec);
    assert_string_equal(rec.sub_name, "KV-HOOK");
    assert_string_equal(rec.secret, "hook-secret-42");
    assert_int_equal(rec.delivery_count, 0);
    assert_non_null(strstr(rec.content_type, "application/json"));
    assert_int_equal(clc_json_parse(rec.body, strlen(rec.body), 1 << 20, &arr, NULL), CLC_OK);
    assert_true(cJSON_IsArray(arr) && cJSON_GetArraySize(arr) == 1);
    assert_string_equal(egfx_str(arr, "0.eventType"),
                        "Microsoft.EventGrid.SubscriptionValidationEvent");
    assert_string_equal(egfx_str(arr, "0.subject"), "");
    assert_string_equal(egfx_str(arr, "0.dataVersion"), "1");
    assert_non_null(
        strstr(egfx_str(arr, "0.topic"), "/providers/Microsoft.KeyVault/vaults/certlc"));
    assert_int_equal(strlen(egfx_str(arr, "0.data.validationCode")), 36);
    assert_non_null(
        strstr(egfx_str(arr, "0.data.validationUrl"), "/eventsubscriptions/kv-hook/validate?id="));
    cJSON_Delete(arr);
    egfx_rec_free(&rec);

    /* The history names the handshake's outcome. */
    s = egfx_sub("never");
    assert_string_equal(egfx_str(s, "history.0.kind"), "handshake");
    assert_string_equal(egfx_str(s, "history.0.outcome"), "InvalidValidationResponse");
    assert_null(egfx_str(s, "destination.shared_secret"));
    cJSON_Delete(s);
    s = egfx_sub("kv-hook");
    assert_string_equal(egfx_str(s, "destination.shared_secret"), "***");
    cJSON_Delete(s);
}

static void test_near_expiry_to_queue_and_webhook(void **state)
{
    struct clc_errinfo ei = {0};
    struct clc_queue_msgs msgs = {0};
    struct egfx_rec rec;
    struct egr r;
    char body[256];
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    cJSON *ev = NULL, *arr = NULL;
    int64_t now = emu_now(eg.e);

    (void)state;
    snprintf(body, sizeof body,
             "{\"name\": \"democert\", \"not_before\": %lld, \"not_after\": %lld}",
             (long long)(now - 86400), (long long)(now + 40 * 86400));
    egfx_admin("POST", "/control/keyvault/certlc/seed", body, &r);
    eg_expect(&r, 201);
    egr_free(&r);
    /* NewVersionCreated is filtered out by both subscriptions. */
    egfx_wait_settled("kv-hook", 0);
    assert_int_equal(egfx_count("kv", "Notification"), 0);

    /* exp - 30 d is passed. */
    egfx_advance(11 * 86400);
    egfx_wait("kv", "Notification", 1);
    egfx_wait_settled("kv-queue", 1);
    egfx_wait_settled("kv-hook", 1);

    egfx_get("kv", "Notification", 0, &rec);
    assert_string_equal(rec.sub_name, "KV-HOOK");
    assert_int_equal(rec.delivery_count, 0);
    assert_string_equal(rec.data_version, "1");
    assert_string_equal(rec.metadata_version, "1");
    assert_string_equal(rec.secret, "hook-secret-42");
    assert_int_equal(clc_json_parse(rec.body, strlen(rec.body), 1 << 20, &arr, NULL), CLC_OK);
    assert_int_equal(cJSON_GetArraySize(arr), 1);
    assert_string_equal(egfx_str(arr, "0.eventType"), NEAR);
    assert_string_equal(egfx_str(arr, "0.subject"), "democert");
    assert_string_equal(egfx_str(arr, "0.data.ObjectName"), "democert");
    assert_int_equal(egfx_int(arr, "0.data.EXP"), now + 40 * 86400);

    /* One message: base64 of the single event, not an array. */
    assert_int_equal(clc_queue_peek(eg.queue, "certlc-events", 32, &msgs, &ei), CLC_OK);
    assert_int_equal(msgs.n, 1);
    assert_int_equal(clc_b64_decode(msgs.v[0].text, msgs.v[0].text_len, &raw, &rawlen), CLC_OK);
    assert_int_equal(clc_json_parse((const char *)raw, rawlen, 1 << 20, &ev, NULL), CLC_OK);
    assert_true(cJSON_IsObject(ev));
    assert_string_equal(egfx_str(ev, "eventType"), NEAR);
    assert_string_equal(egfx_str(ev, "id"), egfx_str(arr, "0.id"));
    assert_string_equal(egfx_str(ev, "data.VaultName"), "certlc");
    /* The storage default TTL: seven days. */
    assert_int_equal(msgs.v[0].expiration_time - msgs.v[0].insertion_time, 7 * 86400);
    clc_queue_msgs_cleanup(&msgs);
    free(raw);
    cJSON_Delete(ev);
    cJSON_Delete(arr);
    egfx_rec_free(&rec);
}

static int64_t iso_s(const char *s)
{
    int64_t t = 0;
    assert_non_null(s);
    assert_int_equal(clc_time_parse_iso8601(s, &t), CLC_OK);
    return t;
}

/* Reads the only blob under prefix and checks its path layout. */
static cJSON *dead_letter(const char *prefix, int64_t when)
{
    struct clc_errinfo ei = {0};
    struct clc_blob_list l;
    char *data = NULL, want[128];
    size_t len = 0;
    cJSON *doc = NULL;
    time_t t = (time_t)when;
    struct tm tm;

    egfx_wait_blobs("deadletters", prefix, 1);
    egfx_blobs("deadletters", prefix, &l);
    gmtime_r(&t, &tm);
    snprintf(want, sizeof want, "%s%d/%d/%d/%d/", prefix, tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour);
    if (strncmp(l.v[0].name, want, strlen(want)) != 0)
        fail_msg("blob %s, expected under %s", l.v[0].name, want);
    assert_non_null(strstr(l.v[0].name + strlen(want), ".json"));
    assert_int_equal(strlen(l.v[0].name + strlen(want)), 36 + 5);
    assert_int_equal(clc_blob_get(eg.blob, "deadletters", l.v[0].name, 1 << 20, &data, &len, &ei),
                     CLC_OK);
    assert_int_equal(clc_json_parse(data, len, 1 << 20, &doc, NULL), CLC_OK);
    assert_true(cJSON_IsArray(doc) && cJSON_GetArraySize(doc) == 1);
    free(data);
    clc_blob_list_cleanup(&l);
    return doc;
}

static void step(const char *hook, int64_t seconds, size_t attempts)
{
    /* One second short first: nothing may happen before the schedule. */
    egfx_advance(seconds - 1);
    egfx_advance(1);
    egfx_wait(hook, "Notification", attempts);
}

static void test_retry_schedule_then_dead_letter(void **state)
{
    static const int64_t at[] = {0, 10, 40, 100, 400};
    int64_t t0;
    cJSON *s, *doc;

    (void)state;
    egfx_freeze();
    t0 = emu_now(eg.e);
    publish_one("retry-1", "Test.Retry", "retry/one");
    egfx_wait("fail500", "Notification", 1);
    step("fail500", 10, 2);
    step("fail500", 30, 3);
    step("fail500", 60, 4);
    step("fail500", 300, 5);
    egfx_wait_settled("fail500", 1);
    assert_int_equal(egfx_count("fail500", "Notification"), 5);

    s = egfx_sub("fail500");
    assert_int_equal(egfx_int(s, "dead_lettered"), 1);
    assert_int_equal(egfx_int(s, "attempts"), 5);
    for (int i = 0; i < 5; i++) {
        char p[64];
        struct egfx_rec rec;
        snprintf(p, sizeof p, "history.%d.time", i + 1); /* history.0 is the handshake */
        assert_int_equal(egfx_int(s, p), t0 + at[i]);
        snprintf(p, sizeof p, "history.%d.status", i + 1);
        assert_int_equal(egfx_int(s, p), 500);
        egfx_get("fail500", "Notification", (size_t)i, &rec);
        assert_int_equal(rec.delivery_count, i);
        egfx_rec_free(&rec);
    }
    assert_string_equal(egfx_str(s, "history.6.kind"), "deadletter");
    cJSON_Delete(s);

    doc = dead_letter("FAIL500/", t0 + 400);
    assert_string_equal(egfx_str(doc, "0.id"), "retry-1");
    assert_string_equal(egfx_str(doc, "0.subject"), "retry/one");
    assert_string_equal(egfx_str(doc, "0.deadLetterReason"), "MaxDeliveryAttemptsExceeded");
    assert_int_equal(egfx_int(doc, "0.deliveryAttempts"), 5);
    assert_string_equal(egfx_str(doc, "0.lastDeliveryOutcome"), "GenericError");
    assert_int_equal(egfx_int(doc, "0.lastHttpStatusCode"), 500);
    assert_int_equal(iso_s(egfx_str(doc, "0.publishTime")), t0);
    assert_int_equal(iso_s(egfx_str(doc, "0.lastDeliveryAttemptTime")), t0 + 400);
    assert_non_null(
        strstr(egfx_str(doc, "0.topic"), "/providers/Microsoft.EventGrid/topics/custom"));
    cJSON_Delete(doc);
}

static void test_ttl_ends_delivery(void **state)
{
    int64_t t0 = emu_now(eg.e);
    cJSON *doc;

    (void)state;
    publish_one("ttl-1", "Test.Ttl", "ttl/one");
    egfx_wait("ttl", "Notification", 1);
    step("ttl", 10, 2);
    step("ttl", 30, 3);
    /* The next try would be at +100 s; the one-minute TTL comes first. */
    egfx_advance(20);
    egfx_wait_settled("ttl", 1);
    assert_int_equal(egfx_count("ttl", "Notification"), 3);
    doc = dead_letter("TTL/", t0 + 60);
    assert_string_equal(egfx_str(doc, "0.deadLetterReason"), "TimeToLiveExceeded");
    assert_int_equal(egfx_int(doc, "0.deliveryAttempts"), 3);
    assert_string_equal(egfx_str(doc, "0.lastDeliveryOutcome"), "Busy");
    assert_int_equal(egfx_int(doc, "0.lastHttpStatusCode"), 503);
    assert_int_equal(iso_s(egfx_str(doc, "0.lastDeliveryAttemptTime")), t0 + 40);
    cJSON_Delete(doc);
}

static void test_400_dead_letters_at_once(void **state)
{
    int64_t t0 = emu_now(eg.e);
    cJSON *doc;

    (void)state;
    publish_one("bad-1", "Test.Bad", "bad/one");
    egfx_wait_settled("bad400", 1);
    assert_int_equal(egfx_count("bad400", "Notification"), 1);
    doc = dead_letter("BAD400/", t0);
    assert_string_equal(egfx_str(doc, "0.deadLetterReason"), "UndeliverableDueToHttpBadRequest");
    assert_int_equal(egfx_int(doc, "0.deliveryAttempts"), 1);
    assert_string_equal(egfx_str(doc, "0.lastDeliveryOutcome"), "BadRequest");
    assert_int_equal(egfx_int(doc, "0.lastHttpStatusCode"), 400);
    cJSON_Delete(doc);
}

static void test_filters(void **state)
{
    struct egfx_rec rec;
    cJSON *s;

    (void)state;
    publish_ok("["
               "{\"id\": \"f1\", \"subject\": \"f/a.txt\", \"eventType\": \"Test.Wanted\","
               " \"eventTime\": \"2026-11-22T10:00:00Z\", \"dataVersion\": \"2\", \"data\": 1},"
               "{\"id\": \"f2\", \"subject\": \"f/a.txt\", \"eventType\": \"Test.Other\","
               " \"eventTime\": \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": 2},"
               "{\"id\": \"f3\", \"subject\": \"g/a.txt\", \"eventType\": \"Test.Wanted\","
               " \"eventTime\": \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": 3},"
               "{\"id\": \"f4\", \"subject\": \"f/a.pdf\", \"eventType\": \"Test.Wanted\","
               " \"eventTime\": \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": 4},"
               "{\"id\": \"f5\", \"subject\": \"F/B.TXT\", \"eventType\": \"test.wanted\","
               " \"eventTime\": \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": 5}"
               "]");
    /* Fan-out happens before the publish answers: the count is final. */
    egfx_wait_settled("filtered", 2);
    egfx_wait("filtered", "Notification", 2);
    egfx_get("filtered", "Notification", 0, &rec);
    assert_non_null(strstr(rec.body, "\"id\":\"f1\""));
    assert_string_equal(rec.data_version, "2");
    egfx_rec_free(&rec);
    egfx_get("filtered", "Notification", 1, &rec);
    assert_non_null(strstr(rec.body, "\"id\":\"f5\""));
    egfx_rec_free(&rec);
    s = egfx_sub("filtered");
    assert_int_equal(egfx_int(s, "delivered"), 2);
    cJSON_Delete(s);
}

static void test_never_validated_receives_nothing(void **state)
{
    cJSON *s;

    (void)state;
    publish_one("n-1", "Test.Never", "anything");
    s = egfx_sub("never");
    assert_string_equal(egfx_str(s, "provisioning_state"), "Failed");
    assert_int_equal(egfx_int(s, "pending"), 0);
    cJSON_Delete(s);
    /* The manual one's validation URL was never visited. */
    s = egfx_sub("never-manual");
    assert_int_equal(egfx_int(s, "pending"), 0);
    assert_int_equal(egfx_int(s, "delivered"), 0);
    cJSON_Delete(s);
    assert_int_equal(egfx_count("never", "Notification"), 0);
    assert_int_equal(egfx_count("never-manual", "Notification"), 0);
    assert_int_equal(egfx_count("never", "SubscriptionValidation"), 1);
}

static void test_duplicates_once_per_id(void **state)
{
    static const char batch[] =
        "[{\"id\": \"d1\", \"subject\": \"dup/x\", \"eventType\": \"T\", \"eventTime\":"
        " \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": null},"
        " {\"id\": \"d1\", \"subject\": \"dup/x\", \"eventType\": \"T\", \"eventTime\":"
        " \"2026-11-22T10:00:00Z\", \"dataVersion\": \"1\", \"data\": null}]";
    cJSON *s;

    (void)state;
    publish_ok(batch);
    publish_ok(batch);
    publish_one("d2", "T", "dup/y");
    egfx_wait_settled("dupes", 2);
    egfx_wait("dupes", "Notification", 2);
    s = egfx_sub("dupes");
    assert_int_equal(egfx_int(s, "delivered"), 2);
    cJSON_Delete(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handshakes),
        cmocka_unit_test(test_near_expiry_to_queue_and_webhook),
        cmocka_unit_test(test_retry_schedule_then_dead_letter),
        cmocka_unit_test(test_ttl_ends_delivery),
        cmocka_unit_test(test_400_dead_letters_at_once),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_never_validated_receives_nothing),
        cmocka_unit_test(test_duplicates_once_per_id),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
