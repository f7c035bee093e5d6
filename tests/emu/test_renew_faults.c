/* The renewal worker when things go wrong, against the emulator: the CA down
 * then back (renewed on a later attempt, one CA request), a request pending
 * then approved (fetched, never submitted again; a duplicate message fetches
 * the shared request too), denied (pending version cancelled, poison queue),
 * Key Vault answering 429 and 503, a worker killed
 * after each step and a fresh one resuming (no second version, no second CA
 * request), and four threads on 200 certificates (each renewed once). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "renew_fixture.h"

static void ca_down_then_up(void **state)
{
    (void)state;
    struct rf_version v;
    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("ca-down", NULL, &v);
    rf_event("ca-down", &v);
    rf_fault("ca", "*", "/certsrv/*", 0, 503);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RETRY], 1);
    assert_int_equal(rf_versions("ca-down"), 1);
    /* Hidden for the backoff, then tried again: still down. */
    assert_int_equal(rf_drain(-1).messages, 0);
    rf_advance(61);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RETRY], 1);
    rf_faults_clear();
    rf_advance(121);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("ca-down"), 2);
    /* The pending version made on the first attempt was reused. */
    assert_int_equal(rf_ca_requests() - ca0, 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
}

static void pending_then_approved(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed s0 = {.tags = "{\"CertificateTemplate\":\"WebServerApproval\"}"};
    char id[32], path[128];
    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("approval", &s0, &v);
    rf_event("approval", &v);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1);
    assert_int_equal(rf_ca_requests() - ca0, 1);
    rf_ca_pending_id(id, sizeof id);
    assert_true(id[0]);
    /* Polled while pending: asked again, never submitted again. */
    rf_advance(R.set.pending_poll_s + 1);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1);
    assert_int_equal(rf_ca_requests() - ca0, 1);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(rf_control("POST", path, NULL, NULL), 200);
    rf_advance(R.set.pending_poll_s + 1);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("approval"), 2);
    assert_int_equal(rf_ca_requests() - ca0, 1);
    /* The shared request tag is not carried to the new version. */
    struct clc_kv_certificate c;
    memset(&c, 0, sizeof c);
    rf_latest("approval", &c);
    assert_null(clc_kv_tags_get(&c.tags, R.set.pending_tag));
    assert_string_equal(clc_kv_tags_get(&c.tags, "CertificateTemplate"), "WebServerApproval");
    clc_kv_certificate_cleanup(&c);
}

static void denied_goes_to_poison(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed s0 = {.tags = "{\"CertificateTemplate\":\"WebServerApproval\"}"};
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    char id[32], path[128];
    rf_reset();
    rf_seed("denied", &s0, &v);
    rf_event("denied", &v);
    assert_int_equal(rf_drain(-1).outcomes[CLC_RENEW_WAITING], 1);
    rf_ca_pending_id(id, sizeof id);
    snprintf(path, sizeof path, "/control/ca/requests/%s/deny", id);
    assert_int_equal(rf_control("POST", path, NULL, NULL), 200);
    rf_advance(R.set.pending_poll_s + 1);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_POISON], 1);
    assert_int_equal(rf_versions("denied"), 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 1);
    memset(&op, 0, sizeof op);
    assert_int_equal(clc_kv_get_operation(R.kv, "denied", &op, &ei), CLC_OK);
    assert_string_equal(op.status, "cancelled");
    clc_kv_operation_cleanup(&op);

    /* The poison queue says why. */
    struct clc_worker *w = rf_worker(1, -1);
    struct clc_poison_list l;
    assert_int_equal(clc_poison_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].reason, "ca_denied");
    assert_string_equal(l.v[0].certificate, "denied");
    assert_non_null(strstr(l.v[0].detail, "denied"));
    clc_poison_list_cleanup(&l);
    clc_worker_free(w);
}

static void keyvault_429_and_503(void **state)
{
    (void)state;
    struct rf_version v1, v2;
    rf_reset();
    rf_seed("kv-throttled", NULL, &v1);
    rf_seed("kv-down", NULL, &v2);
    /* Reads and the 429 on create are retried by the client at once. */
    rf_fault("keyvault", "GET", "/certificates/kv-throttled", 2, 429);
    rf_fault("keyvault", "POST", "/certificates/kv-throttled/create", 1, 429);
    rf_fault("keyvault", "GET", "/certificates/kv-down", 1, 503);
    rf_event("kv-throttled", &v1);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("kv-throttled"), 2);

    /* A 503 on create or merge is not repeated blindly (not idempotent):
     * the message is tried again later and the renewal completes. */
    rf_fault("keyvault", "POST", "/certificates/kv-down/create", 1, 503);
    rf_fault("keyvault", "POST", "/certificates/kv-down/pending/merge", 1, 503);
    rf_event("kv-down", &v2);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RETRY], 1);
    rf_advance(61);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RETRY], 1); /* the merge's 503 */
    rf_advance(121);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("kv-down"), 2);
}

/* Killed right after each step, then a fresh worker: one new version, one
 * CA request, message gone. */
static void killed_at_each_step(void **state)
{
    (void)state;
    static const enum clc_renew_step steps[] = {CLC_RENEW_STEP_READ,   CLC_RENEW_STEP_CREATE,
                                                CLC_RENEW_STEP_SUBMIT, CLC_RENEW_STEP_MERGE,
                                                CLC_RENEW_STEP_TAGS,   CLC_RENEW_STEP_NOTIFY};
    struct rf_seed s0 = {.tags = "{\"Owner\":\"kill-test\"}"};
    rf_reset();
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char name[64];
        struct rf_version v;
        snprintf(name, sizeof name, "killed-after-%s", clc_renew_step_name(steps[i]));
        int ca0 = rf_ca_requests();
        rf_seed(name, &s0, &v);
        rf_event(name, &v);
        struct clc_worker_summary s = rf_drain((int)steps[i]);
        assert_int_equal(s.outcomes[CLC_RENEW_ABORTED], 1);
        rf_advance(R.set.visibility_s + 1);
        s = rf_drain(-1);
        if (s.outcomes[CLC_RENEW_RENEWED] != 1)
            fail_msg("after %s: %llu renewed, %llu waiting, %llu retry", name,
                     (unsigned long long)s.outcomes[CLC_RENEW_RENEWED],
                     (unsigned long long)s.outcomes[CLC_RENEW_WAITING],
                     (unsigned long long)s.outcomes[CLC_RENEW_RETRY]);
        assert_int_equal(rf_versions(name), 2);
        assert_int_equal(rf_ca_requests() - ca0, 1);
        assert_int_equal(rf_queue_count(R.set.queue_name), 0);
        struct clc_kv_certificate c;
        memset(&c, 0, sizeof c);
        rf_latest(name, &c);
        assert_string_equal(clc_kv_tags_get(&c.tags, "Owner"), "kill-test");
        clc_kv_certificate_cleanup(&c);
    }
}

/* Two messages for one certificate, the first worker killed after create:
 * the duplicate waits instead of submitting the CSR itself; the original
 * resumes and renews; the duplicate then finds nothing to do. */
static void duplicate_waits_for_owner(void **state)
{
    (void)state;
    struct rf_version v;
    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("dup-owner", NULL, &v);
    rf_event("dup-owner", &v);
    struct clc_worker_summary s = rf_drain(CLC_RENEW_STEP_CREATE);
    assert_int_equal(s.outcomes[CLC_RENEW_ABORTED], 1);
    rf_event("dup-owner", &v);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1);
    assert_int_equal(rf_ca_requests() - ca0, 0);
    rf_advance(R.set.visibility_s + 1);
    s = rf_drain(-1);
    assert_int_equal(s.messages, 2);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(s.outcomes[CLC_RENEW_SKIPPED], 1);
    assert_int_equal(rf_versions("dup-owner"), 2);
    assert_int_equal(rf_ca_requests() - ca0, 1);
}

/* Approves the CA's last pending request, then lets the poll come due. */
static void approve_last(void)
{
    char id[32], path[128];
    rf_ca_pending_id(id, sizeof id);
    assert_true(id[0]);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(rf_control("POST", path, NULL, NULL), 200);
    rf_advance(R.set.pending_poll_s + 1);
}

/* After the renewal: one new version, neither message left anywhere, and
 * the shared request tag not on the new version. */
static void renewed_once(const char *name, int ca0)
{
    assert_int_equal(rf_versions(name), 2);
    assert_int_equal(rf_ca_requests() - ca0, 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
    struct clc_kv_certificate c;
    memset(&c, 0, sizeof c);
    rf_latest(name, &c);
    assert_null(clc_kv_tags_get(&c.tags, R.set.pending_tag));
    const char *tmpl = clc_kv_tags_get(&c.tags, "CertificateTemplate");
    assert_non_null(tmpl);
    assert_string_equal(tmpl, "WebServerApproval");
    clc_kv_certificate_cleanup(&c);
}

/* Two messages for one certificate whose CA request is pending: the second
 * finds the request shared in the pending tag and fetches it instead of
 * submitting the CSR again, whether both arrive together or the second only
 * after the first has submitted. Renewed once, both messages gone. */
static void duplicate_fetches_pending(void **state)
{
    (void)state;
    struct rf_seed s0 = {.tags = "{\"CertificateTemplate\":\"WebServerApproval\"}"};
    static const char *const names[] = {"dup-pending-together", "dup-pending-later"};
    rf_reset();
    for (int later = 0; later < 2; later++) {
        const char *name = names[later];
        struct rf_version v;
        struct clc_worker_summary s;
        int ca0 = rf_ca_requests();
        rf_seed(name, &s0, &v);
        rf_event(name, &v);
        if (!later) {
            rf_event(name, &v);
            s = rf_drain(-1);
        } else {
            s = rf_drain(-1);
            assert_int_equal(s.messages, 1);
            assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1);
            assert_int_equal(rf_ca_requests() - ca0, 1);
            /* The request is shared on the current version. */
            struct clc_kv_certificate c;
            memset(&c, 0, sizeof c);
            rf_latest(name, &c);
            assert_string_equal(c.version, v.version);
            const char *tag = clc_kv_tags_get(&c.tags, R.set.pending_tag);
            assert_non_null(tag);
            char id[32];
            rf_ca_pending_id(id, sizeof id);
            const char *bar = strrchr(tag, '|');
            assert_non_null(bar);
            assert_string_equal(bar + 1, id);
            clc_kv_certificate_cleanup(&c);
            rf_event(name, &v);
            s = rf_drain(-1); /* only the new message is visible */
            assert_int_equal(s.messages, 1);
        }
        /* The duplicate adopted the shared request: waiting, no second CSR. */
        assert_int_equal(s.outcomes[CLC_RENEW_WAITING], (uint64_t)(later ? 1 : 2));
        assert_int_equal(rf_ca_requests() - ca0, 1);
        assert_int_equal(rf_versions(name), 1);
        assert_int_equal(rf_queue_count(R.set.queue_name), 2);
        /* Both asked the CA (hidden for its poll interval); the duplicate is
         * not merely waiting out a foreign operation (conflict_delay_s),
         * after which it would take it over and submit the CSR itself. */
        assert_true(R.set.conflict_delay_s + 1 < R.set.pending_poll_s);
        rf_advance(R.set.conflict_delay_s + 1);
        assert_int_equal(rf_drain(-1).messages, 0);

        /* Polled while still pending: both ask, neither submits. */
        rf_advance(R.set.pending_poll_s + 1);
        s = rf_drain(-1);
        assert_int_equal(s.messages, 2);
        assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 2);
        assert_int_equal(rf_ca_requests() - ca0, 1);

        approve_last();
        s = rf_drain(-1);
        assert_int_equal(s.messages, 2);
        assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
        assert_int_equal(s.outcomes[CLC_RENEW_SKIPPED], 1);
        renewed_once(name, ca0);
    }
}

#define MANY 200

static void four_threads_many_certificates(void **state)
{
    (void)state;
    static struct rf_version v[MANY];
    char name[64];
    rf_reset();
    int ca0 = rf_ca_requests();
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%03d", i);
        rf_seed(name, NULL, &v[i]);
    }
    /* Every event, and a quarter of them twice. */
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%03d", i);
        rf_event(name, &v[i]);
        if (i % 4 == 0)
            rf_event(name, &v[i]);
    }
    struct clc_worker *w = rf_worker(4, -1);
    struct clc_worker_summary s;
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_worker_drain(w, &s, &ei), CLC_OK);
    clc_worker_free(w);
    /* Duplicates racing the original wait; let them come back. */
    for (int round = 0; round < 3 && rf_queue_count(R.set.queue_name) > 0; round++) {
        rf_advance(R.set.conflict_delay_s + 1);
        w = rf_worker(4, -1);
        struct clc_worker_summary s2;
        assert_int_equal(clc_worker_drain(w, &s2, &ei), CLC_OK);
        clc_worker_free(w);
        for (int k = 0; k < CLC_RENEW__OUTCOMES; k++)
            s.outcomes[k] += s2.outcomes[k];
    }
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], MANY);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
    for (int i = 0; i < MANY; i++) {
        snprintf(name, sizeof name, "many-%03d", i);
        assert_int_equal(rf_versions(name), 2);
    }
    assert_int_equal(rf_ca_requests() - ca0, MANY);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(ca_down_then_up),
        cmocka_unit_test(pending_then_approved),
        cmocka_unit_test(denied_goes_to_poison),
        cmocka_unit_test(keyvault_429_and_503),
        cmocka_unit_test(killed_at_each_step),
        cmocka_unit_test(duplicate_waits_for_owner),
        cmocka_unit_test(duplicate_fetches_pending),
        cmocka_unit_test(four_threads_many_certificates),
    };
    return cmocka_run_group_tests(tests, rf_setup, rf_teardown);
}
