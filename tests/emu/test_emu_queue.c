/* The emulated Storage queue over HTTPS with SharedKey: queue lifecycle and
 * listing, message semantics (visibility, redelivery, dequeue counts, pop
 * receipts, update, TTL by the emulator clock, 64 KiB), XML shapes, bad
 * input, the control API hooks and a restart from the data dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/json.h"
#include "core/secret.h"
#include "support/emu_admin.h"
#include "test_emu_queue_client.h"

#define Q(path) "/" QT_DEV path

static int group_setup(void **state)
{
    (void)state;
    return qt_setup();
}

static int group_teardown(void **state)
{
    (void)state;
    qt_teardown();
    return 0;
}

static void expect_status(struct clc_http_resp *r, long want)
{
    if (r->status != want)
        fail_msg("status %ld, expected %ld: %s", r->status, want, clc_buf_str(&r->body));
}

/* key request with expected status; the response is freed. */
static void ok(const char *method, const char *target, const char *body, long want)
{
    struct clc_http_resp r;
    qt_key("queue", method, target, body, &r);
    expect_status(&r, want);
    clc_http_resp_cleanup(&r);
}

static long approx_count(const char *queue)
{
    struct clc_http_resp r;
    char target[128];
    long n;

    snprintf(target, sizeof target, Q("/%s?comp=metadata"), queue);
    qt_key("queue", "GET", target, NULL, &r);
    expect_status(&r, 200);
    n = strtol(clc_http_resp_header(&r, "x-ms-approximate-messages-count"), NULL, 10);
    clc_http_resp_cleanup(&r);
    return n;
}

static void put_text(const char *queue, const char *query, const char *text)
{
    char target[256], *body = qt_msg_body(text);
    snprintf(target, sizeof target, Q("/%s/messages%s"), queue, query);
    ok("POST", target, body, 201);
    free(body);
}

/* Gets one message; fills id and pop (URL-encoded), returns its text. */
static char *get_one(const char *queue, const char *query, char id[64], char **pop_enc,
                     long *dequeues)
{
    struct clc_http_resp r;
    char target[256], *t, *p, *c;

    snprintf(target, sizeof target, Q("/%s/messages%s"), queue, query);
    qt_key("queue", "GET", target, NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(qt_count(&r, "QueueMessage"), 1);
    t = qt_xml(&r, "MessageText");
    c = qt_xml(&r, "MessageId");
    p = qt_xml(&r, "PopReceipt");
    assert_non_null(t);
    assert_non_null(c);
    assert_non_null(p);
    snprintf(id, 64, "%s", c);
    *pop_enc = qt_enc(p);
    free(c);
    free(p);
    c = qt_xml(&r, "DequeueCount");
    *dequeues = strtol(c, NULL, 10);
    free(c);
    clc_http_resp_cleanup(&r);
    return t;
}

static int empty_get(const char *queue)
{
    struct clc_http_resp r;
    char target[128];
    int empty;

    snprintf(target, sizeof target, Q("/%s/messages"), queue);
    qt_key("queue", "GET", target, NULL, &r);
    expect_status(&r, 200);
    empty = strstr(clc_buf_str(&r.body), "<QueueMessagesList />") != NULL;
    clc_http_resp_cleanup(&r);
    return empty;
}

static void test_queue_lifecycle(void **state)
{
    struct clc_http_resp r;
    const char *meta1[] = {"x-ms-meta-owner: certlc", NULL};
    const char *meta2[] = {"x-ms-meta-owner: someone-else", NULL};
    (void)state;

    qt_req("queue", "PUT", Q("/life"), "key", meta1, NULL, 0, &r);
    expect_status(&r, 201);
    assert_string_equal(clc_http_resp_header(&r, "x-ms-version"), "2021-12-02");
    assert_non_null(clc_http_resp_header(&r, "x-ms-request-id"));
    assert_string_equal(clc_http_resp_header(&r, "x-ms-client-request-id"),
                        "0d5c3d7e-6f0a-4d55-9b8e-8d2b4f1c0a11");
    clc_http_resp_cleanup(&r);
    /* Same metadata: 204; different: 409. */
    qt_req("queue", "PUT", Q("/life"), "key", meta1, NULL, 0, &r);
    expect_status(&r, 204);
    clc_http_resp_cleanup(&r);
    qt_req("queue", "PUT", Q("/life"), "key", meta2, NULL, 0, &r);
    qt_assert_error(&r, 409, "QueueAlreadyExists");
    clc_http_resp_cleanup(&r);

    qt_key("queue", "GET", Q("/life?comp=metadata"), NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(clc_http_resp_header(&r, "x-ms-meta-owner"), "certlc");
    assert_string_equal(clc_http_resp_header(&r, "x-ms-approximate-messages-count"), "0");
    clc_http_resp_cleanup(&r);
    qt_req("queue", "PUT", Q("/life?comp=metadata"), "key", meta2, NULL, 0, &r);
    expect_status(&r, 204);
    clc_http_resp_cleanup(&r);
    qt_key("queue", "HEAD", Q("/life?comp=metadata"), NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(clc_http_resp_header(&r, "x-ms-meta-owner"), "someone-else");
    clc_http_resp_cleanup(&r);

    ok("DELETE", Q("/life"), NULL, 204);
    qt_key("queue", "DELETE", Q("/life"), NULL, &r);
    qt_assert_error(&r, 404, "QueueNotFound");
    clc_http_resp_cleanup(&r);
    qt_key("queue", "GET", Q("/life?comp=metadata"), NULL, &r);
    qt_assert_error(&r, 404, "QueueNotFound");
    clc_http_resp_cleanup(&r);

    /* Names: 3-63 of [a-z0-9-], no leading/trailing/double dash. */
    const char *bad[] = {Q("/ab"),     Q("/Upper"),    Q("/-lead"),
                         Q("/trail-"), Q("/dou--ble"), Q("/under_score")};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        qt_key("queue", "PUT", bad[i], NULL, &r);
        qt_assert_error(&r, 400, "InvalidResourceName");
        clc_http_resp_cleanup(&r);
    }
    /* An account that is not configured. */
    qt_req("queue", "GET", "/nosuchacct/q1/messages", "none", NULL, NULL, 0, &r);
    qt_assert_error(&r, 404, "ResourceNotFound");
    clc_http_resp_cleanup(&r);
}

static void test_list_queues(void **state)
{
    struct clc_http_resp r;
    const char *meta[] = {"x-ms-meta-k: v&1", NULL};
    char *next;
    (void)state;

    qt_req("queue", "PUT", Q("/list-a"), "key", meta, NULL, 0, &r);
    clc_http_resp_cleanup(&r);
    ok("PUT", Q("/list-b"), NULL, 201);
    ok("PUT", Q("/list-c"), NULL, 201);
    ok("PUT", Q("/other"), NULL, 201);

    qt_key("queue", "GET", Q("?comp=list&prefix=list-&maxresults=2&include=metadata"), NULL, &r);
    expect_status(&r, 200);
    assert_non_null(strstr(clc_buf_str(&r.body), "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                                 "<EnumerationResults ServiceEndpoint=\"https://"));
    assert_int_equal(qt_count(&r, "Queue"), 2);
    assert_non_null(
        strstr(clc_buf_str(&r.body),
               "<Queue><Name>list-a</Name><Metadata><k>v&amp;1</k></Metadata></Queue>"));
    assert_non_null(strstr(clc_buf_str(&r.body), "<Prefix>list-</Prefix>"));
    assert_non_null(strstr(clc_buf_str(&r.body), "<MaxResults>2</MaxResults>"));
    next = qt_xml(&r, "NextMarker");
    assert_non_null(next);
    clc_http_resp_cleanup(&r);

    char target[256], *enc = qt_enc(next);
    snprintf(target, sizeof target, Q("?comp=list&prefix=list-&marker=%s"), enc);
    qt_key("queue", "GET", target, NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(qt_count(&r, "Queue"), 1);
    assert_non_null(strstr(clc_buf_str(&r.body), "<Name>list-c</Name>"));
    assert_non_null(strstr(clc_buf_str(&r.body), "<NextMarker />"));
    clc_http_resp_cleanup(&r);
    free(enc);
    free(next);

    /* The other account sees none of these. */
    qt_key("queue", "GET", "/" QT_ACCT2 "?comp=list", NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(qt_count(&r, "Queue"), 0);
    clc_http_resp_cleanup(&r);

    qt_key("queue", "GET", Q("?comp=list&maxresults=0"), NULL, &r);
    qt_assert_error(&r, 400, "OutOfRangeQueryParameterValue");
    clc_http_resp_cleanup(&r);
}

static void test_put_get_delete(void **state)
{
    struct clc_http_resp r;
    char id[64], target[256], *pop, *text, *body;
    long dq;
    (void)state;

    ok("PUT", Q("/basic"), NULL, 201);
    assert_true(empty_get("basic"));

    body = qt_msg_body("hello");
    qt_key("queue", "POST", Q("/basic/messages"), body, &r);
    free(body);
    expect_status(&r, 201);
    assert_non_null(strstr(clc_buf_str(&r.body),
                           "<?xml version=\"1.0\" encoding=\"utf-8\"?><QueueMessagesList>"
                           "<QueueMessage><MessageId>"));
    text = qt_xml(&r, "TimeNextVisible");
    assert_non_null(text);
    assert_non_null(strstr(text, " GMT"));
    free(text);
    assert_int_equal(qt_count(&r, "PopReceipt"), 1);
    assert_int_equal(qt_count(&r, "MessageText"), 0);
    clc_http_resp_cleanup(&r);
    assert_int_equal(approx_count("basic"), 1);

    /* Peek: text and count, no receipt, nothing changes. */
    qt_key("queue", "GET", Q("/basic/messages?peekonly=true"), NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(qt_count(&r, "PopReceipt"), 0);
    assert_int_equal(qt_count(&r, "TimeNextVisible"), 0);
    text = qt_xml(&r, "DequeueCount");
    assert_string_equal(text, "0");
    free(text);
    clc_http_resp_cleanup(&r);

    text = get_one("basic", "", id, &pop, &dq);
    assert_string_equal(text, "hello");
    assert_int_equal(dq, 1);
    free(text);
    /* Default visibility 30 s: hidden now. */
    assert_true(empty_get("basic"));
    snprintf(target, sizeof target, Q("/basic/messages/%s?popreceipt=%s"), id, pop);
    ok("DELETE", target, NULL, 204);
    qt_key("queue", "DELETE", target, NULL, &r);
    qt_assert_error(&r, 404, "MessageNotFound");
    clc_http_resp_cleanup(&r);
    free(pop);
    assert_int_equal(approx_count("basic"), 0);

    /* Several at once, in order; numofmessages caps. */
    for (int i = 0; i < 5; i++) {
        char t[16];
        snprintf(t, sizeof t, "m%d", i);
        put_text("basic", "", t);
    }
    qt_key("queue", "GET", Q("/basic/messages?numofmessages=3&visibilitytimeout=5"), NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(qt_count(&r, "QueueMessage"), 3);
    assert_non_null(strstr(clc_buf_str(&r.body), "<MessageText>m0</MessageText>"));
    assert_non_null(strstr(clc_buf_str(&r.body), "<MessageText>m2</MessageText>"));
    clc_http_resp_cleanup(&r);
    qt_key("queue", "GET", Q("/basic/messages?numofmessages=32"), NULL, &r);
    assert_int_equal(qt_count(&r, "QueueMessage"), 2);
    clc_http_resp_cleanup(&r);

    ok("DELETE", Q("/basic/messages"), NULL, 204);
    assert_int_equal(approx_count("basic"), 0);
    qt_key("queue", "POST", Q("/nosuch/messages"),
           "<QueueMessage><MessageText>x</MessageText>"
           "</QueueMessage>",
           &r);
    qt_assert_error(&r, 404, "QueueNotFound");
    clc_http_resp_cleanup(&r);
    qt_key("queue", "GET", Q("/nosuch/messages"), NULL, &r);
    qt_assert_error(&r, 404, "QueueNotFound");
    clc_http_resp_cleanup(&r);
}

static void test_visibility_and_redelivery(void **state)
{
    struct clc_http_resp r;
    char id[64], id2[64], target[256], *pop, *pop2, *text;
    long dq;
    (void)state;

    ok("PUT", Q("/vis"), NULL, 201);
    /* Invisible for 20 s after the put. */
    put_text("vis", "?visibilitytimeout=20", "later");
    assert_true(empty_get("vis"));
    emu_clock_advance(QT.e, 21);

    text = get_one("vis", "?visibilitytimeout=10", id, &pop, &dq);
    assert_string_equal(text, "later");
    assert_int_equal(dq, 1);
    free(text);
    assert_true(empty_get("vis"));
    emu_clock_advance(QT.e, 11);

    /* Redelivered: same id, dequeue count 2, a new pop receipt. */
    text = get_one("vis", "?visibilitytimeout=10", id2, &pop2, &dq);
    assert_string_equal(id, id2);
    assert_int_equal(dq, 2);
    assert_string_not_equal(pop, pop2);
    free(text);

    /* The first receipt is stale now: Azure's 404 MessageNotFound. */
    snprintf(target, sizeof target, Q("/vis/messages/%s?popreceipt=%s"), id, pop);
    qt_key("queue", "DELETE", target, NULL, &r);
    qt_assert_error(&r, 404, "MessageNotFound");
    clc_http_resp_cleanup(&r);
    snprintf(target, sizeof target, Q("/vis/messages/%s?popreceipt=%s"), id, pop2);
    ok("DELETE", target, NULL, 204);
    free(pop);
    free(pop2);
    /* Without the receipt. */
    snprintf(target, sizeof target, Q("/vis/messages/%s"), id);
    qt_key("queue", "DELETE", target, NULL, &r);
    qt_assert_error(&r, 400, "MissingRequiredQueryParameter");
    clc_http_resp_cleanup(&r);
}

static void test_update(void **state)
{
    struct clc_http_resp r;
    char id[64], target[512], *pop, *text, *newpop, *body;
    const char *h;
    long dq;
    (void)state;

    ok("PUT", Q("/upd"), NULL, 201);
    put_text("upd", "", "v1");
    text = get_one("upd", "?visibilitytimeout=60", id, &pop, &dq);
    free(text);

    body = qt_msg_body("v2 &amp; more");
    snprintf(target, sizeof target, Q("/upd/messages/%s?popreceipt=%s&visibilitytimeout=0"), id,
             pop);
    qt_key("queue", "PUT", target, body, &r);
    free(body);
    expect_status(&r, 204);
    h = clc_http_resp_header(&r, "x-ms-popreceipt");
    assert_non_null(h);
    newpop = qt_enc(h);
    assert_non_null(strstr(clc_http_resp_header(&r, "x-ms-time-next-visible"), " GMT"));
    clc_http_resp_cleanup(&r);

    /* The old receipt no longer works, for delete or update. */
    qt_key("queue", "DELETE", target, NULL, &r);
    qt_assert_error(&r, 404, "MessageNotFound");
    clc_http_resp_cleanup(&r);

    /* Visible at once, with the new text, escaped on the way out. */
    qt_key("queue", "GET", Q("/upd/messages?peekonly=true"), NULL, &r);
    expect_status(&r, 200);
    assert_non_null(strstr(clc_buf_str(&r.body), "<MessageText>v2 &amp; more</MessageText>"));
    clc_http_resp_cleanup(&r);

    /* Extend the lease without a body. */
    snprintf(target, sizeof target, Q("/upd/messages/%s?popreceipt=%s&visibilitytimeout=30"), id,
             newpop);
    qt_key("queue", "PUT", target, NULL, &r);
    expect_status(&r, 204);
    free(newpop);
    newpop = qt_enc(clc_http_resp_header(&r, "x-ms-popreceipt"));
    clc_http_resp_cleanup(&r);
    assert_true(empty_get("upd"));

    /* visibilitytimeout is required on update. */
    snprintf(target, sizeof target, Q("/upd/messages/%s?popreceipt=%s"), id, newpop);
    qt_key("queue", "PUT", target, NULL, &r);
    qt_assert_error(&r, 400, "MissingRequiredQueryParameter");
    clc_http_resp_cleanup(&r);
    snprintf(target, sizeof target, Q("/upd/messages/%s?popreceipt=%s"), id, newpop);
    ok("DELETE", target, NULL, 204);
    free(newpop);
    free(pop);
}

static void test_ttl(void **state)
{
    struct clc_http_resp r;
    char *exp, *body = qt_msg_body("forever");
    (void)state;

    ok("PUT", Q("/ttl"), NULL, 201);
    put_text("ttl", "?messagettl=60", "short");
    put_text("ttl", "", "default");
    qt_key("queue", "POST", Q("/ttl/messages?messagettl=-1"), body, &r);
    free(body);
    expect_status(&r, 201);
    exp = qt_xml(&r, "ExpirationTime");
    assert_string_equal(exp, "Fri, 31 Dec 9999 23:59:59 GMT");
    free(exp);
    clc_http_resp_cleanup(&r);
    assert_int_equal(approx_count("ttl"), 3);

    emu_clock_advance(QT.e, 61);
    assert_int_equal(approx_count("ttl"), 2);
    /* The default time to live is 7 days. */
    emu_clock_advance(QT.e, 7 * 86400);
    assert_int_equal(approx_count("ttl"), 1);
    emu_clock_advance(QT.e, 365 * 86400);
    qt_key("queue", "GET", Q("/ttl/messages?peekonly=true&numofmessages=32"), NULL, &r);
    assert_int_equal(qt_count(&r, "QueueMessage"), 1);
    assert_non_null(strstr(clc_buf_str(&r.body), "<MessageText>forever</MessageText>"));
    clc_http_resp_cleanup(&r);
}

static void test_size_limit(void **state)
{
    struct clc_http_resp r;
    char *text = malloc(65538), *body, *got;
    char id[64], *pop;
    long dq;
    (void)state;

    ok("PUT", Q("/big"), NULL, 201);
    memset(text, 'a', 65536);
    text[65536] = '\0';
    body = qt_msg_body(text);
    qt_key("queue", "POST", Q("/big/messages"), body, &r);
    expect_status(&r, 201);
    clc_http_resp_cleanup(&r);
    free(body);
    got = get_one("big", "", id, &pop, &dq);
    assert_int_equal(strlen(got), 65536);
    free(got);
    free(pop);

    text[65536] = 'a';
    text[65537] = '\0';
    body = qt_msg_body(text);
    qt_key("queue", "POST", Q("/big/messages"), body, &r);
    qt_assert_error(&r, 413, "RequestBodyTooLarge");
    clc_http_resp_cleanup(&r);
    free(body);
    free(text);
    assert_int_equal(approx_count("big"), 1);
}

static void test_bad_query_values(void **state)
{
    struct clc_http_resp r;
    char *body = qt_msg_body("x");
    static const struct {
        const char *method, *target;
        const char *code;
    } cases[] = {
        {"GET", Q("/badq/messages?numofmessages=0"), "OutOfRangeQueryParameterValue"},
        {"GET", Q("/badq/messages?numofmessages=33"), "OutOfRangeQueryParameterValue"},
        {"GET", Q("/badq/messages?numofmessages=abc"), "InvalidQueryParameterValue"},
        {"GET", Q("/badq/messages?visibilitytimeout=0"), "OutOfRangeQueryParameterValue"},
        {"GET", Q("/badq/messages?visibilitytimeout=604801"), "OutOfRangeQueryParameterValue"},
        {"GET", Q("/badq/messages?peekonly=maybe"), "InvalidQueryParameterValue"},
        {"POST", Q("/badq/messages?messagettl=0"), "OutOfRangeQueryParameterValue"},
        {"POST", Q("/badq/messages?messagettl=-2"), "OutOfRangeQueryParameterValue"},
        {"POST", Q("/badq/messages?visibilitytimeout=-1"), "OutOfRangeQueryParameterValue"},
        {"POST", Q("/badq/messages?messagettl=10&visibilitytimeout=10"),
         "OutOfRangeQueryParameterValue"},
        {"POST", Q("/badq/messages?visibilitytimeout=1.5"), "InvalidQueryParameterValue"},
        {"GET", Q("/badq/messages?numofmessages=%zz"), "InvalidQueryParameterValue"},
    };
    (void)state;

    ok("PUT", Q("/badq"), NULL, 201);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        qt_key("queue", cases[i].method, cases[i].target,
               strcmp(cases[i].method, "POST") == 0 ? body : NULL, &r);
        if (r.status != 400)
            fail_msg("%s %s: %ld", cases[i].method, cases[i].target, r.status);
        qt_assert_error(&r, 400, cases[i].code);
        clc_http_resp_cleanup(&r);
    }
    free(body);
    assert_int_equal(approx_count("badq"), 0);
    /* A malformed x-ms-version. */
    const char *h[] = {"x-ms-version: yesterday", NULL};
    qt_req("queue", "GET", Q("/badq/messages"), "key", h, NULL, 0, &r);
    qt_assert_error(&r, 400, "InvalidHeaderValue");
    clc_http_resp_cleanup(&r);
}

static void test_malformed_xml(void **state)
{
    static const char *const files[] = {
        "not-xml.xml",        "wrong-root.xml",         "unclosed-text.xml",
        "unclosed-root.xml",  "unknown-entity.xml",     "raw-ampersand.xml",
        "nested-element.xml", "trailing-element.xml",   "bad-utf8.xml",
        "control-char.xml",   "nul-charref.xml",        "two-texts.xml",
        "no-text.xml",        "unterminated-cdata.xml", "unterminated-declaration.xml",
        "empty.xml",
    };
    struct clc_http_resp r;
    char path[512], *text = NULL, *got, id[64], *pop;
    size_t len = 0;
    long dq;
    (void)state;

    ok("PUT", Q("/xml"), NULL, 201);
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/queue/%s", CLC_FIXTURES, files[i]);
        assert_int_equal(clc_file_read(path, 1 << 20, &text, &len, NULL), CLC_OK);
        qt_req("queue", "POST", Q("/xml/messages"), "key", NULL, text, len, &r);
        if (r.status != 400)
            fail_msg("%s: %ld %s", files[i], r.status, clc_buf_str(&r.body));
        qt_assert_error(&r, 400, "InvalidXmlDocument");
        clc_http_resp_cleanup(&r);
        free(text);
    }
    assert_int_equal(approx_count("xml"), 0);

    snprintf(path, sizeof path, "%s/queue/valid-mixed.xml", CLC_FIXTURES);
    assert_int_equal(clc_file_read(path, 1 << 20, &text, &len, NULL), CLC_OK);
    qt_req("queue", "POST", Q("/xml/messages"), "key", NULL, text, len, &r);
    expect_status(&r, 201);
    clc_http_resp_cleanup(&r);
    free(text);
    got = get_one("xml", "", id, &pop, &dq);
    /* Stored as the text it means, returned escaped. */
    assert_string_equal(got, "a &lt;b&gt; &amp; \xE2\x98\xBA &lt;raw &amp; text&gt;");
    free(got);
    free(pop);
}

static void test_control_hooks(void **state)
{
    struct clc_http_resp r;
    cJSON *doc = NULL;
    const cJSON *q, *it;
    int found = 0;
    (void)state;

    ok("PUT", Q("/dumped"), NULL, 201);
    put_text("dumped", "", "one");
    test_emu_admin_call(QT.e, QT.http, "GET", "/control/state", NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(clc_json_parse(clc_buf_str(&r.body), r.body.len, 1 << 20, &doc, NULL), CLC_OK);
    q = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "queue"), QT_DEV);
    cJSON_ArrayForEach(it, q)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        if (cJSON_IsString(n) && strcmp(n->valuestring, "dumped") == 0) {
            found = 1;
            assert_int_equal(cJSON_GetObjectItemCaseSensitive(it, "messages")->valueint, 1);
        }
    }
    assert_true(found);
    cJSON_Delete(doc);
    clc_http_resp_cleanup(&r);

    /* Reset drops every queue. */
    test_emu_admin_call(QT.e, QT.http, "POST", "/control/reset", NULL, &r);
    assert_true(r.status == 200 || r.status == 204);
    clc_http_resp_cleanup(&r);
    qt_key("queue", "GET", Q("/dumped?comp=metadata"), NULL, &r);
    qt_assert_error(&r, 404, "QueueNotFound");
    clc_http_resp_cleanup(&r);
}

static void test_restart_keeps_state(void **state)
{
    char id[64], id2[64], target[256], *pop, *pop2, *text;
    long dq;
    (void)state;

    ok("PUT", Q("/durable"), NULL, 201);
    put_text("durable", "", "first");
    put_text("durable", "", "second");
    put_text("durable", "?visibilitytimeout=100", "hidden");
    text = get_one("durable", "?visibilitytimeout=50", id, &pop, &dq);
    assert_string_equal(text, "first");
    free(text);

    assert_int_equal(qt_restart(), 0);
    assert_int_equal(approx_count("durable"), 3);
    /* Order, lease and dequeue count survive; the old receipt still works. */
    text = get_one("durable", "?visibilitytimeout=50", id2, &pop2, &dq);
    assert_string_equal(text, "second");
    assert_int_equal(dq, 1);
    free(text);
    snprintf(target, sizeof target, Q("/durable/messages/%s?popreceipt=%s"), id, pop);
    ok("DELETE", target, NULL, 204);
    free(pop);
    free(pop2);
    /* After both leases run out: "second" again (dequeue 2), then "hidden". */
    emu_clock_advance(QT.e, 101);
    text = get_one("durable", "", id, &pop, &dq);
    assert_string_equal(text, "second");
    assert_int_equal(dq, 2);
    free(text);
    free(pop);
    text = get_one("durable", "", id, &pop, &dq);
    assert_string_equal(text, "hidden");
    free(text);
    free(pop);
    assert_int_equal(approx_count("durable"), 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue_lifecycle),
        cmocka_unit_test(test_list_queues),
        cmocka_unit_test(test_put_get_delete),
        cmocka_unit_test(test_visibility_and_redelivery),
        cmocka_unit_test(test_update),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_bad_query_values),
        cmocka_unit_test(test_malformed_xml),
        cmocka_unit_test(test_restart_keeps_state),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_control_hooks),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
