/* Bad input and the operator's tools, against the emulator: every malformed
 * message in fixtures/queue-messages/ goes to the poison queue with the
 * reason its name gives while the worker carries on; a message that keeps
 * failing is poisoned after renew.max_dequeue attempts with its last error;
 * poison list/replay; Event Grid dead-letter blobs listed and replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "renew_fixture.h"

#define MSG_DIR CLC_FIXTURES "/queue-messages"

static int setup(void **state)
{
    (void)state;
    return rf_setup_with("\"max_dequeue\":3");
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    if (!f)
        return NULL;
    buf = malloc(70000);
    *len = buf ? fread(buf, 1, 69999, f) : 0;
    if (buf)
        buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void malformed_messages_poisoned(void **state)
{
    (void)state;
    DIR *d = opendir(MSG_DIR);
    struct dirent *de;
    char names[64][128];
    int n = 0;
    struct rf_version v;

    assert_non_null(d);
    rf_reset();
    while ((de = readdir(d)) != NULL && n < 64) {
        size_t l = strlen(de->d_name);
        if (l > 4 && strcmp(de->d_name + l - 4, ".msg") == 0)
            snprintf(names[n++], sizeof names[0], "%.120s", de->d_name);
    }
    closedir(d);
    assert_true(n >= 15);
    /* A good message among the bad ones: the worker keeps going. */
    rf_seed("among-bad", NULL, &v);
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX + 128];
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%.200s", MSG_DIR, names[i]);
        char *text = read_all(path, &len);
        assert_non_null(text);
        rf_put_raw(text, len);
        free(text);
        if (i == n / 2)
            rf_event("among-bad", &v);
    }
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.messages, n + 1);
    assert_int_equal(s.outcomes[CLC_RENEW_POISON], n);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);

    /* Each record names the reason the file name gives. */
    struct clc_worker *w = rf_worker(1, -1);
    struct clc_poison_list l;
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_poison_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, n);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "%.60s", names[i]);
        *strchr(want, '-') = '\0';
        int found = 0;
        for (size_t k = 0; k < l.n; k++)
            found += strcmp(l.v[k].reason, want) == 0;
        if (!found)
            fail_msg("%s: no poison record with reason %s", names[i], want);
        assert_true(l.v[i].detail[0] != '\0');
    }
    clc_poison_list_cleanup(&l);
    clc_worker_free(w);
}

static void too_many_failures_then_replay(void **state)
{
    (void)state;
    struct rf_version v;
    struct clc_errinfo ei = {0};
    rf_reset();
    rf_seed("always-failing", NULL, &v);
    rf_event("always-failing", &v);
    rf_fault("ca", "*", "/certsrv/*", 0, 503);
    /* max_dequeue 3: three failed attempts, the fourth dequeue poisons. */
    int64_t wait = 61;
    for (int i = 0; i < 3; i++) {
        struct clc_worker_summary s = rf_drain(-1);
        assert_int_equal(s.outcomes[CLC_RENEW_RETRY], 1);
        rf_advance(wait);
        wait *= 2;
    }
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_POISON], 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);

    struct clc_worker *w = rf_worker(1, -1);
    struct clc_poison_list l;
    assert_int_equal(clc_poison_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].reason, "max_dequeue");
    assert_non_null(strstr(l.v[0].detail, "503"));
    assert_string_equal(l.v[0].certificate, "always-failing");
    char id[128];
    snprintf(id, sizeof id, "%s", l.v[0].id);
    clc_poison_list_cleanup(&l);

    /* Fixed: replayed by id, renewed with the pending version made before. */
    rf_faults_clear();
    size_t n = 0;
    assert_int_equal(clc_poison_replay(w, "no-such-id", &n, &ei), CLC_ERR_NOT_FOUND);
    assert_int_equal(clc_poison_replay(w, id, &n, &ei), CLC_OK);
    assert_int_equal(n, 1);
    clc_worker_free(w);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
    int ca0 = rf_ca_requests();
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("always-failing"), 2);
    assert_int_equal(rf_ca_requests() - ca0, 1);
}

static void deadletter_list_and_replay(void **state)
{
    (void)state;
    struct rf_version v1, v2;
    struct clc_errinfo ei = {0};
    char blob[4096];
    int created = 0;
    rf_reset();
    rf_seed("dead-1", NULL, &v1);
    rf_seed("dead-2", NULL, &v2);
    assert_int_equal(clc_blob_create_container(R.blob, R.set.deadletter_container, &created, &ei),
                     CLC_OK);
    /* As Event Grid writes them: an array of events with the delivery facts. */
    snprintf(blob, sizeof blob,
             "[{\"id\":\"dl-event-1\",\"topic\":\"/subscriptions/0/resourceGroups/rg/providers/"
             "Microsoft.KeyVault/vaults/certlc\",\"subject\":\"dead-1\",\"eventType\":"
             "\"Microsoft.KeyVault.CertificateNearExpiry\",\"eventTime\":\"2026-01-01T00:00:00Z\","
             "\"data\":{\"Id\":\"x\",\"VaultName\":\"certlc\",\"ObjectType\":\"Certificate\","
             "\"ObjectName\":\"dead-1\",\"Version\":\"%s\",\"NBF\":%lld,\"EXP\":%lld},"
             "\"dataVersion\":\"1\",\"metadataVersion\":\"1\",\"deadLetterReason\":"
             "\"MaxDeliveryAttemptsExceeded\",\"deliveryAttempts\":30,\"lastDeliveryOutcome\":"
             "\"TimedOut\",\"publishTime\":\"2026-01-01T00:00:01Z\",\"lastDeliveryAttemptTime\":"
             "\"2026-01-02T00:00:00Z\"},"
             "{\"id\":\"dl-event-2\",\"topic\":\"t\",\"subject\":\"dead-2\",\"eventType\":"
             "\"Microsoft.KeyVault.CertificateNearExpiry\",\"eventTime\":\"2026-01-01T00:00:00Z\","
             "\"data\":{\"VaultName\":\"certlc\",\"ObjectType\":\"Certificate\",\"ObjectName\":"
             "\"dead-2\",\"Version\":\"%s\"},\"dataVersion\":\"1\",\"metadataVersion\":\"1\","
             "\"deadLetterReason\":\"TimeToLiveExceeded\",\"deliveryAttempts\":12}]",
             v1.version, (long long)v1.nbf, (long long)v1.exp, v2.version);
    assert_int_equal(clc_blob_put(R.blob, R.set.deadletter_container,
                                  "CERTLC-QUEUE/2026/1/2/0/0b1c.json", blob, strlen(blob),
                                  "application/json", &ei),
                     CLC_OK);

    struct clc_worker *w = rf_worker(1, -1);
    struct clc_poison_list l;
    assert_int_equal(clc_deadletter_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].id, "dl-event-1");
    assert_string_equal(l.v[0].reason, "MaxDeliveryAttemptsExceeded");
    assert_int_equal(l.v[0].attempts, 30);
    assert_string_equal(l.v[0].certificate, "dead-1");
    assert_string_equal(l.v[1].reason, "TimeToLiveExceeded");
    clc_poison_list_cleanup(&l);

    /* One by id: the other stays in the blob. */
    size_t n = 0;
    assert_int_equal(clc_deadletter_replay(w, "dl-event-2", &n, &ei), CLC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(clc_deadletter_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].id, "dl-event-1");
    clc_poison_list_cleanup(&l);
    /* Then the rest: the blob is gone. */
    assert_int_equal(clc_deadletter_replay(w, NULL, &n, &ei), CLC_OK);
    assert_int_equal(n, 1);
    assert_int_equal(clc_deadletter_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 0);
    clc_poison_list_cleanup(&l);
    clc_worker_free(w);

    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 2);
    assert_int_equal(rf_versions("dead-1"), 2);
    assert_int_equal(rf_versions("dead-2"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(malformed_messages_poisoned),
        cmocka_unit_test(too_many_failures_then_replay),
        cmocka_unit_test(deadletter_list_and_replay),
    };
    return cmocka_run_group_tests(tests, setup, rf_teardown);
}
