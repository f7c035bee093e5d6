/* Queue client cases that hold on Azure, the emulator and Azurite alike:
 * queue lifecycle and metadata, put/get/peek/delete, redelivery and dequeue
 * counts, pop receipts after update, leases, batches, the 64 KiB limit,
 * Shared Key with a wrong key, SAS (valid, expired, scoped), unknown queues.
 * Where Azurite and Azure answer differently the test accepts both and says so. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "queue_client_suite.h"

struct qc_backend qcb;
static struct clc_storage_cred *dev_cred;

int64_t qc_now(void)
{
    return clc_clock_now(&qcb.clock);
}

const struct clc_storage_cred *qc_dev_cred(void)
{
    if (!dev_cred) {
        struct clc_secret *k = NULL;
        assert_int_equal(clc_secret_new(QC_DEV_KEY, strlen(QC_DEV_KEY), &k), CLC_OK);
        assert_int_equal(clc_storage_cred_shared_key(QC_DEV_ACCOUNT, k, &dev_cred, NULL), CLC_OK);
        clc_secret_free(k);
    }
    return dev_cred;
}

const char *qc_queue_name(const char *tag)
{
    static char names[8][64];
    static int n, slot;
    char *out = names[slot++ % 8];
    snprintf(out, 64, "qc-%s-%d", tag, ++n);
    return out;
}

struct clc_queue *qc_client(const struct clc_storage_cred *cred)
{
    struct clc_http_opts ho = {.ca_bundle = qcb.ca_bundle, .timeout_ms = 10000};
    struct clc_retry_policy rp;
    struct clc_storage_opts o = {.endpoint = qcb.endpoint,
                                 .cred = cred ? cred : qc_dev_cred(),
                                 .http = &ho,
                                 .retry = &rp,
                                 .clock = &qcb.clock};
    struct clc_queue *q = NULL;
    struct clc_errinfo ei = {0};
    clc_retry_policy_default(&rp);
    rp.max_total_ms = 5000;
    if (clc_queue_new(&o, &q, &ei) != CLC_OK)
        fail_msg("clc_queue_new: %s", ei.msg);
    return q;
}

void qc_make_queue(struct clc_queue *q, const char *name)
{
    struct clc_errinfo ei = {0};
    int created = 0;
    if (clc_queue_create(q, name, NULL, &created, &ei) != CLC_OK)
        fail_msg("create %s on %s: %s", name, qcb.name, ei.msg);
    assert_true(created);
}

static int64_t count_of(struct clc_queue *q, const char *name)
{
    struct clc_queue_props p = {0};
    struct clc_errinfo ei = {0};
    if (clc_queue_get_metadata(q, name, &p, &ei) != CLC_OK)
        fail_msg("metadata: %s", ei.msg);
    int64_t n = p.approximate_count;
    clc_queue_props_cleanup(&p);
    return n;
}

static void put_text(struct clc_queue *q, const char *name, const char *text,
                     struct clc_queue_msg *out)
{
    struct clc_errinfo ei = {0};
    if (clc_queue_put(q, name, text, strlen(text), 0, 0, out, &ei) != CLC_OK)
        fail_msg("put: %s", ei.msg);
}

static void queue_lifecycle(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("life");
    const char *meta[] = {"owner", "certlc", "purpose", "work list", NULL};
    const char *meta2[] = {"owner", "someone-else", NULL};
    struct clc_errinfo ei = {0};
    int created = -1;

    assert_int_equal(clc_queue_create(q, name, meta, &created, &ei), CLC_OK);
    assert_int_equal(created, 1);
    /* Same metadata again: 204, no error. */
    assert_int_equal(clc_queue_create(q, name, meta, &created, &ei), CLC_OK);
    assert_int_equal(created, 0);
    /* Different metadata: 409 QueueAlreadyExists. */
    assert_int_equal(clc_queue_create(q, name, meta2, &created, &ei), CLC_ERR_CONFLICT);
    assert_string_equal(ei.code, "QueueAlreadyExists");
    assert_int_equal(ei.http_status, 409);

    struct clc_queue_props p = {0};
    assert_int_equal(clc_queue_get_metadata(q, name, &p, &ei), CLC_OK);
    assert_int_equal(p.approximate_count, 0);
    assert_int_equal(p.nmeta, 2);
    for (size_t i = 0; i < p.nmeta; i++) {
        if (strcasecmp(p.meta[i].name, "owner") == 0)
            assert_string_equal(p.meta[i].value, "certlc");
        else
            assert_string_equal(p.meta[i].value, "work list");
    }
    clc_queue_props_cleanup(&p);
    assert_int_equal(clc_queue_set_metadata(q, name, meta2, &ei), CLC_OK);
    assert_int_equal(clc_queue_get_metadata(q, name, &p, &ei), CLC_OK);
    assert_int_equal(p.nmeta, 1);
    assert_string_equal(p.meta[0].value, "someone-else");
    clc_queue_props_cleanup(&p);

    /* List with a prefix, paged one by one. */
    char prefix[32];
    snprintf(prefix, sizeof prefix, "qc-list-%d", rand() % 100000);
    char n1[64], n2[64];
    snprintf(n1, sizeof n1, "%s-a", prefix);
    snprintf(n2, sizeof n2, "%s-b", prefix);
    qc_make_queue(q, n1);
    qc_make_queue(q, n2);
    struct clc_queue_list l = {0};
    assert_int_equal(clc_queue_list(q, prefix, NULL, 1, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], n1);
    assert_non_null(l.next_marker);
    char *marker = strdup(l.next_marker);
    clc_queue_list_cleanup(&l);
    assert_int_equal(clc_queue_list(q, prefix, marker, 1, &l, &ei), CLC_OK);
    free(marker);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], n2);
    assert_null(l.next_marker);
    clc_queue_list_cleanup(&l);
    assert_int_equal(clc_queue_list(q, NULL, NULL, 0, &l, &ei), CLC_OK);
    assert_true(l.n >= 3);
    clc_queue_list_cleanup(&l);

    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    assert_int_equal(clc_queue_get_metadata(q, name, &p, &ei), CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.code, "QueueNotFound");
    assert_int_equal(clc_queue_delete(q, n1, &ei), CLC_OK);
    assert_int_equal(clc_queue_delete(q, n2, &ei), CLC_OK);
    clc_queue_free(q);
}

static void put_get_peek_delete(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("basic");
    struct clc_queue_msg put = {0};
    struct clc_queue_msgs got = {0}, peek = {0};
    struct clc_errinfo ei = {0};
    /* No CR: a raw CR in an answer is folded to LF by any XML parser, and
     * whether Azure entitizes it is unconfirmed (Azurite does, the emulator
     * does not); the client itself sends CR as "&#xD;". */
    const char *text = "hello <queue> & \"friends\"\nline two \xc3\xa9\t'x'";

    qc_make_queue(q, name);
    put_text(q, name, text, &put);
    assert_true(put.id[0] && put.pop_receipt[0]);
    assert_null(put.text);
    assert_true(put.expiration_time > put.insertion_time);
    /* Default TTL is 7 days. */
    assert_int_equal(put.expiration_time - put.insertion_time, 7 * 24 * 3600);

    assert_int_equal(clc_queue_peek(q, name, 32, &peek, &ei), CLC_OK);
    assert_int_equal(peek.n, 1);
    assert_string_equal(peek.v[0].text, text);
    assert_int_equal(peek.v[0].dequeue_count, 0);
    assert_string_equal(peek.v[0].pop_receipt, "");
    clc_queue_msgs_cleanup(&peek);

    assert_int_equal(clc_queue_get(q, name, 1, 30, &got, &ei), CLC_OK);
    assert_int_equal(got.n, 1);
    assert_string_equal(got.v[0].id, put.id);
    assert_string_equal(got.v[0].text, text);
    assert_int_equal(got.v[0].text_len, strlen(text));
    assert_int_equal(got.v[0].dequeue_count, 1);
    assert_true(got.v[0].next_visible >= qc_now() + 25);
    /* Hidden now: neither peek nor get sees it; the count still does. */
    assert_int_equal(clc_queue_peek(q, name, 1, &peek, &ei), CLC_OK);
    assert_int_equal(peek.n, 0);
    struct clc_queue_msgs none = {0};
    assert_int_equal(clc_queue_get(q, name, 1, 30, &none, &ei), CLC_OK);
    assert_int_equal(none.n, 0);
    assert_int_equal(count_of(q, name), 1);

    assert_int_equal(clc_queue_delete_message(q, name, got.v[0].id, got.v[0].pop_receipt, &ei),
                     CLC_OK);
    assert_int_equal(count_of(q, name), 0);
    /* Deleting again: the lease is lost whatever the service calls it. */
    enum clc_err rc = clc_queue_delete_message(q, name, got.v[0].id, got.v[0].pop_receipt, &ei);
    assert_int_equal(rc, CLC_ERR_CONFLICT);
    assert_true(clc_queue_lease_lost(rc, &ei));
    clc_queue_msgs_cleanup(&got);
    clc_queue_msg_cleanup(&put);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void redelivery_and_receipts(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("redeliver");
    struct clc_queue_msgs a = {0}, b = {0};
    struct clc_errinfo ei = {0};
    char first_receipt[CLC_QUEUE_RECEIPT_MAX];

    qc_make_queue(q, name);
    put_text(q, name, "job-1", NULL);
    assert_int_equal(clc_queue_get(q, name, 1, 60, &a, &ei), CLC_OK);
    assert_int_equal(a.n, 1);
    assert_int_equal(a.v[0].dequeue_count, 1);
    memcpy(first_receipt, a.v[0].pop_receipt, sizeof first_receipt);

    /* Update to visible-now: a new pop receipt, the old one is dead. */
    assert_int_equal(clc_queue_update(q, name, &a.v[0], 0, NULL, 0, &ei), CLC_OK);
    assert_string_not_equal(a.v[0].pop_receipt, first_receipt);
    assert_string_equal(a.v[0].text, "job-1");

    /* Redelivered, with the dequeue count going up. */
    assert_int_equal(clc_queue_get(q, name, 1, 60, &b, &ei), CLC_OK);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.v[0].id, a.v[0].id);
    assert_int_equal(b.v[0].dequeue_count, 2);
    assert_string_equal(b.v[0].text, "job-1");

    /* The first consumer's receipts are stale: Azure says 404
     * MessageNotFound, Azurite 400 PopReceiptMismatch; both are a lost lease. */
    enum clc_err rc = clc_queue_delete_message(q, name, a.v[0].id, first_receipt, &ei);
    assert_int_equal(rc, CLC_ERR_CONFLICT);
    assert_true(strcmp(ei.code, "MessageNotFound") == 0 ||
                strcmp(ei.code, "PopReceiptMismatch") == 0);
    rc = clc_queue_update(q, name, &a.v[0], 10, NULL, 0, &ei);
    assert_int_equal(rc, CLC_ERR_CONFLICT);
    assert_true(clc_queue_lease_lost(rc, &ei));

    /* The second consumer updates the content; its new receipt deletes. */
    assert_int_equal(clc_queue_update(q, name, &b.v[0], 0, "job-1 (retry 2)", 15, &ei), CLC_OK);
    assert_string_equal(b.v[0].text, "job-1 (retry 2)");
    struct clc_queue_msgs c = {0};
    assert_int_equal(clc_queue_peek(q, name, 1, &c, &ei), CLC_OK);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.v[0].text, "job-1 (retry 2)");
    assert_int_equal(c.v[0].dequeue_count, 2);
    clc_queue_msgs_cleanup(&c);
    assert_int_equal(clc_queue_delete_message(q, name, b.v[0].id, b.v[0].pop_receipt, &ei), CLC_OK);
    assert_int_equal(count_of(q, name), 0);
    clc_queue_msgs_cleanup(&a);
    clc_queue_msgs_cleanup(&b);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void leases(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("lease");
    struct clc_queue_lease l = {0}, other = {0};
    struct clc_errinfo ei = {0};
    int got = -1;

    qc_make_queue(q, name);
    assert_int_equal(clc_queue_lease_take(q, name, 30, &l, &got, &ei), CLC_OK);
    assert_int_equal(got, 0);
    put_text(q, name, "renew democert", NULL);
    assert_int_equal(clc_queue_lease_take(q, name, 30, &l, &got, &ei), CLC_OK);
    assert_int_equal(got, 1);
    assert_string_equal(l.msg.text, "renew democert");
    int64_t before = l.msg.next_visible;
    char old[CLC_QUEUE_RECEIPT_MAX];
    memcpy(old, l.msg.pop_receipt, sizeof old);
    assert_int_equal(clc_queue_lease_extend(q, &l, 300, &ei), CLC_OK);
    assert_true(l.msg.next_visible >= before + 200);
    assert_string_not_equal(l.msg.pop_receipt, old);
    assert_string_equal(l.msg.text, "renew democert"); /* content kept */
    /* Nobody else gets it while leased. */
    assert_int_equal(clc_queue_lease_take(q, name, 30, &other, &got, &ei), CLC_OK);
    assert_int_equal(got, 0);
    /* Release, then another worker takes it; ours is lost. */
    assert_int_equal(clc_queue_lease_release(q, &l, 0, &ei), CLC_OK);
    assert_int_equal(clc_queue_lease_take(q, name, 30, &other, &got, &ei), CLC_OK);
    assert_int_equal(got, 1);
    assert_int_equal(other.msg.dequeue_count, 2);
    enum clc_err rc = clc_queue_lease_complete(q, &l, &ei);
    assert_true(clc_queue_lease_lost(rc, &ei));
    rc = clc_queue_lease_extend(q, &l, 30, &ei);
    assert_true(clc_queue_lease_lost(rc, &ei));
    assert_int_equal(clc_queue_lease_complete(q, &other, &ei), CLC_OK);
    assert_int_equal(count_of(q, name), 0);
    assert_int_equal(clc_queue_lease_take(q, name, 0, &other, &got, &ei), CLC_ERR_INVALID);
    clc_queue_lease_cleanup(&l);
    clc_queue_lease_cleanup(&other);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void batches_and_clear(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("batch");
    struct clc_queue_msgs m = {0};
    struct clc_errinfo ei = {0};

    qc_make_queue(q, name);
    for (int i = 0; i < 5; i++) {
        char t[16];
        snprintf(t, sizeof t, "m%d", i);
        put_text(q, name, t, NULL);
    }
    assert_int_equal(count_of(q, name), 5);
    assert_int_equal(clc_queue_peek(q, name, 2, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 2);
    clc_queue_msgs_cleanup(&m);
    assert_int_equal(clc_queue_get(q, name, 32, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 5);
    for (size_t i = 0; i < m.n; i++) {
        assert_true(m.v[i].pop_receipt[0]);
        for (size_t k = 0; k < i; k++)
            assert_string_not_equal(m.v[i].id, m.v[k].id);
    }
    clc_queue_msgs_cleanup(&m);
    put_text(q, name, "m5", NULL);
    assert_int_equal(clc_queue_clear(q, name, &ei), CLC_OK);
    assert_int_equal(count_of(q, name), 0);
    assert_int_equal(clc_queue_peek(q, name, 32, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 0);
    /* Bad counts never leave the client. */
    assert_int_equal(clc_queue_get(q, name, 0, 30, &m, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_queue_get(q, name, 33, 30, &m, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_queue_get(q, name, 1, 8 * 24 * 3600, &m, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void size_limit(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL);
    const char *name = qc_queue_name("size");
    struct clc_queue_msgs m = {0};
    struct clc_errinfo ei = {0};
    char *big = malloc(CLC_QUEUE_MAX_TEXT + 2);

    assert_non_null(big);
    qc_make_queue(q, name);
    /* Exactly 64 KiB of base64-alphabet text goes through. */
    for (size_t i = 0; i < CLC_QUEUE_MAX_TEXT + 1; i++)
        big[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[i % 64];
    big[CLC_QUEUE_MAX_TEXT + 1] = '\0';
    assert_int_equal(clc_queue_put(q, name, big, CLC_QUEUE_MAX_TEXT, 0, 0, NULL, &ei), CLC_OK);
    assert_int_equal(clc_queue_get(q, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(m.v[0].text_len, CLC_QUEUE_MAX_TEXT);
    assert_memory_equal(m.v[0].text, big, CLC_QUEUE_MAX_TEXT);
    clc_queue_msgs_cleanup(&m);
    /* One byte more is refused before sending. */
    assert_int_equal(clc_queue_put(q, name, big, CLC_QUEUE_MAX_TEXT + 1, 0, 0, NULL, &ei),
                     CLC_ERR_LIMIT);
    assert_non_null(strstr(ei.msg, "limit"));
    /* Text XML cannot carry is refused with advice. */
    assert_int_equal(clc_queue_put(q, name, "a\x01z", 3, 0, 0, NULL, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "base64"));
    assert_int_equal(clc_queue_put(q, name, "x", 1, 60, 30, NULL, &ei), CLC_ERR_INVALID);
    assert_int_equal(count_of(q, name), 1);
    free(big);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    clc_queue_free(q);
}

static void wrong_key_and_unknown_queue(void **state)
{
    (void)state;
    struct clc_secret *k = NULL;
    struct clc_storage_cred *bad = NULL;
    struct clc_queue *q = NULL, *good = qc_client(NULL);
    struct clc_errinfo ei = {0};
    /* A well-formed key that is not the account's. */
    const char *other = "AAAAvdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTO"
                        "tr/KBHBeksoGMGw==";

    assert_int_equal(clc_secret_new(other, strlen(other), &k), CLC_OK);
    assert_int_equal(clc_storage_cred_shared_key(QC_DEV_ACCOUNT, k, &bad, NULL), CLC_OK);
    q = qc_client(bad);
    const char *name = qc_queue_name("auth");
    assert_int_equal(clc_queue_create(q, name, NULL, NULL, &ei), CLC_ERR_AUTH);
    assert_int_equal(ei.http_status, 403);
    assert_string_equal(ei.code, "AuthenticationFailed");
    assert_null(strstr(ei.msg, other));
    /* Nothing was created. */
    struct clc_queue_props p = {0};
    assert_int_equal(clc_queue_get_metadata(good, name, &p, &ei), CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.code, "QueueNotFound");
    assert_int_equal(clc_queue_put(good, name, "x", 1, 0, 0, NULL, &ei), CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.code, "QueueNotFound");
    assert_true(ei.request_id[0] != '\0');
    /* Bad names never leave the client. */
    assert_int_equal(clc_queue_create(good, "Bad_Name", NULL, NULL, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_queue_create(good, "a--b", NULL, NULL, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_queue_delete_message(good, "abc", "../x", "r", &ei), CLC_ERR_INVALID);
    clc_queue_free(q);
    clc_queue_free(good);
    clc_storage_cred_free(bad);
    clc_secret_free(k);
}

static struct clc_storage_cred *sas_cred(struct clc_secret *token)
{
    struct clc_storage_cred *c = NULL;
    assert_int_equal(clc_storage_cred_sas(token, &c, NULL), CLC_OK);
    clc_secret_free(token);
    return c;
}

static void sas_tokens(void **state)
{
    (void)state;
    struct clc_queue *q = qc_client(NULL), *sq = NULL;
    const char *name = qc_queue_name("sas");
    struct clc_secret *t = NULL;
    struct clc_errinfo ei = {0};
    struct clc_queue_msgs m = {0};
    int64_t now = qc_now();

    qc_make_queue(q, name);
    /* Account SAS, valid for an hour. */
    struct clc_storage_sas_opts ao = {.permissions = "rwdlacup",
                                      .services = "q",
                                      .resource_types = "sco",
                                      .start = now - 300,
                                      .expiry = now + 3600};
    assert_int_equal(clc_storage_sas_account(qc_dev_cred(), &ao, &t, NULL), CLC_OK);
    struct clc_storage_cred *acc = sas_cred(t);
    sq = qc_client(acc);
    put_text(sq, name, "via account sas", NULL);
    assert_int_equal(clc_queue_get(sq, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(clc_queue_delete_message(sq, name, m.v[0].id, m.v[0].pop_receipt, &ei),
                     CLC_OK);
    clc_queue_msgs_cleanup(&m);
    clc_queue_free(sq);
    clc_storage_cred_free(acc);

    /* Queue (service) SAS for this queue: add, read, update, process. */
    struct clc_storage_sas_opts qo = {.permissions = "raup", .expiry = now + 3600};
    assert_int_equal(clc_storage_sas_queue(qc_dev_cred(), name, &qo, &t, NULL), CLC_OK);
    struct clc_storage_cred *qs = sas_cred(t);
    sq = qc_client(qs);
    put_text(sq, name, "via queue sas", NULL);
    assert_int_equal(clc_queue_get(sq, name, 1, 30, &m, &ei), CLC_OK);
    assert_int_equal(m.n, 1);
    assert_int_equal(clc_queue_delete_message(sq, name, m.v[0].id, m.v[0].pop_receipt, &ei),
                     CLC_OK);
    clc_queue_msgs_cleanup(&m);
    /* ... but not another queue. */
    const char *other = qc_queue_name("sas-other");
    qc_make_queue(q, other);
    assert_int_not_equal(clc_queue_put(sq, other, "x", 1, 0, 0, NULL, &ei), CLC_OK);
    assert_int_equal(ei.http_status, 403);
    clc_queue_free(sq);
    clc_storage_cred_free(qs);

    /* Expired an hour ago. */
    ao.start = now - 7200;
    ao.expiry = now - 3600;
    assert_int_equal(clc_storage_sas_account(qc_dev_cred(), &ao, &t, NULL), CLC_OK);
    struct clc_storage_cred *old = sas_cred(t);
    sq = qc_client(old);
    assert_int_equal(clc_queue_put(sq, name, "late", 4, 0, 0, NULL, &ei), CLC_ERR_AUTH);
    assert_int_equal(ei.http_status, 403);
    assert_string_equal(ei.code, "AuthenticationFailed");
    clc_queue_free(sq);
    clc_storage_cred_free(old);
    assert_int_equal(count_of(q, name), 0);
    assert_int_equal(clc_queue_delete(q, name, &ei), CLC_OK);
    assert_int_equal(clc_queue_delete(q, other, &ei), CLC_OK);
    clc_queue_free(q);
}

static const struct CMUnitTest shared_tests[] = {
    cmocka_unit_test(queue_lifecycle),
    cmocka_unit_test(put_get_peek_delete),
    cmocka_unit_test(redelivery_and_receipts),
    cmocka_unit_test(leases),
    cmocka_unit_test(batches_and_clear),
    cmocka_unit_test(size_limit),
    cmocka_unit_test(wrong_key_and_unknown_queue),
    cmocka_unit_test(sas_tokens),
};

int qc_run(const char *group, const struct CMUnitTest *extra, size_t nextra, int (*setup)(void **),
           int (*teardown)(void **))
{
    size_t n = sizeof shared_tests / sizeof shared_tests[0];
    struct CMUnitTest *all = calloc(n + nextra, sizeof *all);
    int rc = 0;
    if (!all)
        return 1;
    memcpy(all, shared_tests, sizeof shared_tests);
    if (nextra)
        memcpy(all + n, extra, nextra * sizeof *extra);
    rc = _cmocka_run_group_tests(group, all, n + nextra, setup, teardown);
    free(all);
    clc_storage_cred_free(dev_cred);
    dev_cred = NULL;
    return rc;
}
