/* The queue client suite against the in-process emulator, plus what only
 * the emulator can show: visibility timeouts and TTL expiry by advancing its
 * clock, SAS expiry by the clock, Entra bearer auth with and without the
 * Storage Queue Data role, and the blob client on the dead-letter service. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "azure/auth.h"
#include "azure/blob.h"
#include "emulator/emu.h"
#include "emulator/services.h"
#include "queue_client_suite.h"

static struct emu *emu;

static int64_t emu_clock_ms(void *ctx)
{
    (void)ctx;
    return emu_now_ms(emu);
}

static int setup(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct emu_opts o = {.quiet = 1};
    if (emu_start(&o, &emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    const char *url = emu_service_url(emu, "queue");
    if (!url) {
        fprintf(stderr, "the emulator has no queue service\n");
        return -1;
    }
    qcb.name = "emulator";
    snprintf(qcb.endpoint, sizeof qcb.endpoint, "%s/%s", url, QC_DEV_ACCOUNT);
    qcb.ca_bundle = emu_ca_bundle(emu);
    qcb.clock.now_ms = emu_clock_ms;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    emu_stop(emu);
    emu = NULL;
    return 0;
}

static void visibility_by_clock(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("clock");
    struct clc_queue_msgs m = {0};
    struct clc_errinfo ei = {0};

    qc_make_queue(q, name);
    assert_int_equal(clc_queue_put(q, name, "a", 1, 0, 0, NULL, &ei), CLC_OK);
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    clc_queue_msgs_cleanup(&m);
    emu_clock_advance(emu, 29);
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 0);
    emu_clock_advance(emu, 2);
    /* The timeout ran out: redelivered with the count up. */
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.v[0].dequeue_count, 2);
    clc_queue_msgs_cleanup(&m);

    /* Put with an initial visibility delay. */
    assert_int_equal(clc_queue_put(q, name, "later", 5, 120, 0, NULL, &ei), CLC_OK);
    assert_int_equal(clc_queue_peek(q, name, 32, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 0);
    emu_clock_advance(emu, 121);
    assert_int_equal(clc_queue_peek(q, name, 32, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 2);
    clc_queue_msgs_cleanup(&m);

    /* A lease extended past the original timeout holds. */
    struct clc_queue_lease l = {0};
    int got = 0;
    assert_int_equal(clc_queue_clear(q, name, &ei), CLC_OK);
    assert_int_equal(clc_queue_put(q, name, "job", 3, 0, 0, NULL, &ei), CLC_OK);
    assert_int_equal(clc_queue_lease_take(q, name, 30, &l, &got, &ei), CLC_OK);
    assert_int_equal(got, 1);
    emu_clock_advance(emu, 20);
    assert_int_equal(clc_queue_lease_extend(q, &l, 60, &ei), CLC_OK);
    emu_clock_advance(emu, 40);
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 0);
    assert_int_equal(clc_queue_lease_complete(q, &l, &ei), CLC_OK);
    clc_queue_lease_cleanup(&l);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void ttl_by_clock(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("ttl");
    struct clc_queue_msg put = {0};
    struct clc_queue_msgs m = {0};
    struct clc_errinfo ei = {0};

    qc_make_queue(q, name);
    assert_int_equal(clc_queue_put(q, name, "short", 5, 0, 60, &put, &ei), CLC_OK);
    assert_int_equal(put.expiration_time - put.insertion_time, 60);
    assert_int_equal(clc_queue_put(q, name, "forever", 7, 0, CLC_QUEUE_TTL_INFINITE, &put, &ei),
                     CLC_OK);
    assert_true(put.expiration_time == INT64_MAX);
    assert_int_equal(clc_queue_put(q, name, "week", 4, 0, 0, NULL, &ei), CLC_OK);
    emu_clock_advance(emu, 61);
    assert_int_equal(clc_queue_peek(q, name, 32, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 2);
    clc_queue_msgs_cleanup(&m);
    emu_clock_advance(emu, 7 * 24 * 3600);
    assert_int_equal(clc_queue_peek(q, name, 32, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_string_equal(m.v[0].text, "forever");
    clc_queue_msgs_cleanup(&m);
    clc_queue_msg_cleanup(&put);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void sas_expires_by_clock(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL), *sq = NULL;
    const char *name = qc_queue_name("sasclock");
    struct clc_secret *t = NULL;
    struct clc_storage_cred *c = NULL;
    struct clc_errinfo ei = {0};

    qc_make_queue(q, name);
    struct clc_storage_sas_opts o = {.permissions = "raup", .expiry = qc_now() + 600};
    assert_int_equal(clc_storage_sas_queue(qc_dev_cred(), name, &o, &t, NULL), CLC_OK);
    assert_int_equal(clc_storage_cred_sas(t, &c, NULL), CLC_OK);
    clc_secret_free(t);
    sq = qc_client(c);
    assert_int_equal(clc_queue_put(sq, name, "a", 1, 0, 0, NULL, &ei), CLC_OK);
    emu_clock_advance(emu, 601);
    assert_int_equal(clc_queue_put(sq, name, "b", 1, 0, 0, NULL, &ei), CLC_ERR_AUTH);
    assert_string_equal(ei.code, "AuthenticationFailed");
    clc_queue_free(sq);
    clc_storage_cred_free(c);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

/* An auth client for a default identity by client secret. */
static struct clc_auth *auth_for(const char *identity)
{
    cJSON *ids = emu_directory_endpoints(emu_directory_of(emu));
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ids, identity);
    const cJSON *cid = cJSON_GetObjectItemCaseSensitive(id, "client_id");
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(id, "client_secret");
    struct clc_secret *s = NULL;
    struct clc_auth *a = NULL;
    struct clc_errinfo ei = {0};
    assert_true(cJSON_IsString(cid) && cJSON_IsString(sec));
    assert_int_equal(clc_secret_new(sec->valuestring, strlen(sec->valuestring), &s), CLC_OK);
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = emu_service_url(emu, "entra"),
                               .tenant_id = emu_tenant(emu),
                               .client_id = cid->valuestring,
                               .client_secret = s};
    struct clc_http_opts ho = {.ca_bundle = emu_ca_bundle(emu), .clock = &qcb.clock};
    if (clc_auth_new(&ao, &ho, &a, &ei) != CLC_OK)
        fail_msg("auth: %s", ei.msg);
    clc_secret_free(s);
    cJSON_Delete(ids);
    return a;
}

static void bearer_auth(void **state)
{
    (void)state;
    struct clc_auth *renewer = auth_for("renewer"), *reader = auth_for("reader");
    struct clc_storage_cred *c = NULL, *rc_cred = NULL;
    struct clc_queue *q = NULL, *rq = NULL;
    struct clc_queue_msgs m = {0};
    struct clc_errinfo ei = {0};
    const char *name = qc_queue_name("bearer");

    assert_int_equal(clc_storage_cred_bearer(renewer, NULL, &c, NULL), CLC_OK);
    q = qc_client(c);
    qc_make_queue(q, name);
    assert_int_equal(clc_queue_put(q, name, "token", 5, 0, 0, NULL, &ei), CLC_OK);
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(clc_queue_delete_message(q, name, m.v[0].id, m.v[0].pop_receipt, &ei), CLC_OK);
    clc_queue_msgs_cleanup(&m);

    /* A valid token without a Storage Queue Data role: 403, not 401. */
    assert_int_equal(clc_storage_cred_bearer(reader, NULL, &rc_cred, NULL), CLC_OK);
    rq = qc_client(rc_cred);
    enum clc_err rc = clc_queue_put(rq, name, "x", 1, 0, 0, NULL, &ei);
    assert_int_equal(rc, CLC_ERR_FORBIDDEN);
    assert_int_equal(ei.http_status, 403);
    assert_string_equal(ei.code, "AuthorizationPermissionMismatch");

    /* A token for another audience is refused. */
    struct clc_storage_cred *wrong = NULL;
    struct clc_queue *wq = NULL;
    assert_int_equal(
        clc_storage_cred_bearer(renewer, "https://vault.azure.net/.default", &wrong, NULL), CLC_OK);
    wq = qc_client(wrong);
    rc = clc_queue_put(wq, name, "x", 1, 0, 0, NULL, &ei);
    assert_true(rc == CLC_ERR_AUTH || rc == CLC_ERR_FORBIDDEN);
    clc_queue_free(wq);
    clc_storage_cred_free(wrong);

    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
    clc_queue_free(rq);
    clc_storage_cred_free(c);
    clc_storage_cred_free(rc_cred);
    clc_auth_free(renewer);
    clc_auth_free(reader);
}

static void blob_dead_letters(void **state)
{
    (void)state;
    char endpoint[256];
    struct clc_http_opts ho = {.ca_bundle = emu_ca_bundle(emu), .timeout_ms = 10000};
    struct clc_blob *b = NULL;
    struct clc_errinfo ei = {0};
    int created = -1;

    snprintf(endpoint, sizeof endpoint, "%s/%s", emu_service_url(emu, "blob"), QC_DEV_ACCOUNT);
    struct clc_storage_opts o = {
        .endpoint = endpoint, .cred = qc_dev_cred(), .http = &ho, .clock = &qcb.clock};
    assert_int_equal(clc_blob_new(&o, &b, &ei), CLC_OK);
    assert_int_equal(clc_blob_create_container(b, "deadletters", &created, &ei), CLC_OK);
    assert_int_equal(created, 1);
    assert_int_equal(clc_blob_create_container(b, "deadletters", &created, &ei), CLC_OK);
    assert_int_equal(created, 0);

    const char *names[] = {"SUB-A/2024/1/2/3/one.json", "SUB-A/2024/1/2/4/two.json",
                           "SUB-B/2024/1/2/3/three.json"};
    for (size_t i = 0; i < 3; i++) {
        char body[64];
        snprintf(body, sizeof body, "[{\"n\":%zu}]", i);
        assert_int_equal(
            clc_blob_put(b, "deadletters", names[i], body, strlen(body), "application/json", &ei),
            CLC_OK);
    }
    struct clc_blob_list l = {0};
    assert_int_equal(clc_blob_list(b, "deadletters", "SUB-A/", NULL, 1, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].name, names[0]);
    assert_int_equal(l.v[0].size, 9);
    assert_true(l.v[0].last_modified > 0);
    assert_non_null(l.next_marker);
    char *marker = strdup(l.next_marker);
    clc_blob_list_cleanup(&l);
    assert_int_equal(clc_blob_list(b, "deadletters", "SUB-A/", marker, 1, &l, &ei), CLC_OK);
    free(marker);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].name, names[1]);
    assert_null(l.next_marker);
    clc_blob_list_cleanup(&l);

    char *data = NULL;
    size_t len = 0;
    assert_int_equal(clc_blob_get(b, "deadletters", names[2], 1024, &data, &len, &ei), CLC_OK);
    assert_string_equal(data, "[{\"n\":2}]");
    assert_int_equal(len, 9);
    free(data);
    assert_int_equal(clc_blob_get(b, "deadletters", names[2], 4, &data, &len, &ei), CLC_ERR_LIMIT);
    assert_null(data);
    assert_int_equal(clc_blob_delete(b, "deadletters", names[2], &ei), CLC_OK);
    assert_int_equal(clc_blob_get(b, "deadletters", names[2], 1024, &data, &len, &ei),
                     CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.code, "BlobNotFound");
    assert_int_equal(clc_blob_list(b, "nosuchcontainer", NULL, NULL, 0, &l, &ei),
                     CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.code, "ContainerNotFound");
    assert_int_equal(clc_blob_list(b, "Bad_Name", NULL, NULL, 0, &l, &ei), CLC_ERR_INVALID);
    clc_blob_free(b);
}

int main(void)
{
    const struct CMUnitTest extra[] = {
        cmocka_unit_test(visibility_by_clock),  cmocka_unit_test(ttl_by_clock),
        cmocka_unit_test(sas_expires_by_clock), cmocka_unit_test(bearer_auth),
        cmocka_unit_test(blob_dead_letters),
    };
    return qc_run("queue_client_emulator", extra, sizeof extra / sizeof extra[0], setup, teardown);
}
