/* The emulated Blob service, as Event Grid's dead-letter destination uses
 * it: containers, block blobs with slashes in their names, get, list with
 * prefix and paging, delete; each auth scheme; the in-process writers other
 * services call; dump; and a restart from the data dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/secret.h"
#include "emulator/blob.h"
#include "emulator/queue.h"
#include "emulator/state.h"
#include "support/emu_admin.h"
#include "test_emu_queue_client.h"

#define B(path) "/" QT_DEV path
#define DL_NAME "SUB-ONE/2026/11/22/14/6f1c2a7e-0b7d-4c55-9a3e-2f6d1c0b9e41.json"
#define DL_BODY "[{\"id\":\"1\",\"deadLetterReason\":\"MaxDeliveryAttemptsExceeded\"}]"

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

static const char *const JSON_BLOB[] = {"x-ms-blob-type: BlockBlob",
                                        "Content-Type: application/json", NULL};

static long put_blob(const char *target, const char *auth, const char *body,
                     struct clc_http_resp *r)
{
    return qt_req("blob", "PUT", target, auth, JSON_BLOB, body, strlen(body), r);
}

static void expect(long got, struct clc_http_resp *r, long want)
{
    if (got != want)
        fail_msg("status %ld, expected %ld: %s", got, want, clc_buf_str(&r->body));
    clc_http_resp_cleanup(r);
}

static void test_container_lifecycle(void **state)
{
    struct clc_http_resp r;
    (void)state;

    expect(qt_key("blob", "PUT", B("/deadletters?restype=container"), NULL, &r), &r, 201);
    qt_key("blob", "PUT", B("/deadletters?restype=container"), NULL, &r);
    qt_assert_error(&r, 409, "ContainerAlreadyExists");
    clc_http_resp_cleanup(&r);
    qt_key("blob", "GET", B("/deadletters?restype=container"), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(clc_http_resp_header(&r, "ETag"), "\"0x8D"));
    clc_http_resp_cleanup(&r);
    qt_key("blob", "PUT", B("/Bad_Name?restype=container"), NULL, &r);
    qt_assert_error(&r, 400, "InvalidResourceName");
    clc_http_resp_cleanup(&r);
    qt_key("blob", "GET", B("/nosuch?restype=container&comp=list"), NULL, &r);
    qt_assert_error(&r, 404, "ContainerNotFound");
    clc_http_resp_cleanup(&r);

    expect(qt_key("blob", "PUT", B("/gone?restype=container"), NULL, &r), &r, 201);
    qt_key("blob", "GET", B("?comp=list&prefix=g"), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(clc_buf_str(&r.body), "<Container><Name>gone</Name>"));
    assert_null(strstr(clc_buf_str(&r.body), "deadletters"));
    clc_http_resp_cleanup(&r);
    expect(qt_key("blob", "DELETE", B("/gone?restype=container"), NULL, &r), &r, 202);
    qt_key("blob", "DELETE", B("/gone?restype=container"), NULL, &r);
    qt_assert_error(&r, 404, "ContainerNotFound");
    clc_http_resp_cleanup(&r);
}

static void test_put_get_list_delete(void **state)
{
    struct clc_http_resp r;
    char *next;
    const char *no_type[] = {"Content-Type: text/plain", NULL};
    const char *bad_md5[] = {"x-ms-blob-type: BlockBlob",
                             "Content-MD5: AAAAAAAAAAAAAAAAAAAAAA==", NULL};
    (void)state;

    qt_key("blob", "PUT", B("/dlq?restype=container"), NULL, &r);
    clc_http_resp_cleanup(&r);
    put_blob(B("/dlq/" DL_NAME), "key", DL_BODY, &r);
    assert_int_equal(r.status, 201);
    assert_non_null(clc_http_resp_header(&r, "ETag"));
    assert_non_null(clc_http_resp_header(&r, "Content-MD5"));
    clc_http_resp_cleanup(&r);
    expect(put_blob(B("/dlq/SUB-ONE/2026/11/23/1/a.json"), "key", "[]", &r), &r, 201);
    expect(put_blob(B("/dlq/SUB-TWO/2026/11/22/14/b.json"), "key", "[]", &r), &r, 201);

    qt_key("blob", "GET", B("/dlq/" DL_NAME), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), DL_BODY);
    assert_string_equal(clc_http_resp_header(&r, "Content-Type"), "application/json");
    assert_string_equal(clc_http_resp_header(&r, "x-ms-blob-type"), "BlockBlob");
    clc_http_resp_cleanup(&r);

    /* Prefix filtering, in name order, with paging. */
    qt_key("blob", "GET", B("/dlq?restype=container&comp=list&prefix=SUB-ONE/"), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(qt_count(&r, "Blob"), 2);
    assert_non_null(strstr(clc_buf_str(&r.body), "ContainerName=\"dlq\""));
    assert_non_null(strstr(clc_buf_str(&r.body), "<Name>" DL_NAME "</Name>"));
    assert_null(strstr(clc_buf_str(&r.body), "SUB-TWO"));
    assert_non_null(strstr(clc_buf_str(&r.body), "<BlobType>BlockBlob</BlobType>"));
    clc_http_resp_cleanup(&r);
    qt_key("blob", "GET", B("/dlq?restype=container&comp=list&maxresults=2"), NULL, &r);
    assert_int_equal(qt_count(&r, "Blob"), 2);
    next = qt_xml(&r, "NextMarker");
    assert_non_null(next);
    clc_http_resp_cleanup(&r);
    {
        char target[512], *enc = qt_enc(next);
        snprintf(target, sizeof target, B("/dlq?restype=container&comp=list&marker=%s"), enc);
        qt_key("blob", "GET", target, NULL, &r);
        assert_int_equal(qt_count(&r, "Blob"), 1);
        assert_non_null(strstr(clc_buf_str(&r.body), "SUB-TWO"));
        clc_http_resp_cleanup(&r);
        free(enc);
    }
    free(next);

    /* Refusals: no blob type, MD5 mismatch (nothing stored), unknown blob. */
    qt_req("blob", "PUT", B("/dlq/x.txt"), "key", no_type, "x", 1, &r);
    qt_assert_error(&r, 400, "MissingRequiredHeader");
    clc_http_resp_cleanup(&r);
    qt_req("blob", "PUT", B("/dlq/x.txt"), "key", bad_md5, "x", 1, &r);
    qt_assert_error(&r, 400, "Md5Mismatch");
    clc_http_resp_cleanup(&r);
    qt_key("blob", "GET", B("/dlq/x.txt"), NULL, &r);
    qt_assert_error(&r, 404, "BlobNotFound");
    clc_http_resp_cleanup(&r);

    expect(qt_key("blob", "DELETE", B("/dlq/SUB-TWO/2026/11/22/14/b.json"), NULL, &r), &r, 202);
    qt_key("blob", "DELETE", B("/dlq/SUB-TWO/2026/11/22/14/b.json"), NULL, &r);
    qt_assert_error(&r, 404, "BlobNotFound");
    clc_http_resp_cleanup(&r);
    qt_key("blob", "PUT", B("/nosuch/a.json"), "x", &r);
    assert_int_equal(r.status, 400); /* no x-ms-blob-type */
    clc_http_resp_cleanup(&r);
    put_blob(B("/nosuch/a.json"), "key", "[]", &r);
    qt_assert_error(&r, 404, "ContainerNotFound");
    clc_http_resp_cleanup(&r);
}

static void test_blob_auth(void **state)
{
    struct clc_http_resp r;
    int64_t now = emu_now(QT.e);
    char target[1024], auth[4096];
    char *blobber = qt_token("blobber", NULL), *queuer = qt_token("queuer", NULL);
    char *acct = qt_account_sas(QT_DEV, QT_DEV_KEY, "b", "sco", "rwdlc", 0, now + 600);
    char *qonly = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "sco", "rwdlc", 0, now + 600);
    char *list = qt_blob_sas(QT_DEV, QT_DEV_KEY, "authc", NULL, "rl", now + 600);
    char *one = qt_blob_sas(QT_DEV, QT_DEV_KEY, "authc", "one.json", "r", now + 600);
    (void)state;

    snprintf(auth, sizeof auth, "bearer:%s", blobber);
    expect(qt_req("blob", "PUT", B("/authc?restype=container"), auth, NULL, NULL, 0, &r), &r, 201);
    expect(put_blob(B("/authc/one.json"), auth, "{}", &r), &r, 201);
    expect(put_blob(B("/authc/two.json"), "lite", "{}", &r), &r, 201);
    snprintf(auth, sizeof auth, "bearer:%s", queuer);
    qt_req("blob", "GET", B("/authc/one.json"), auth, NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthorizationPermissionMismatch");
    clc_http_resp_cleanup(&r);

    snprintf(target, sizeof target, B("/authc/three.json?%s"), acct);
    expect(put_blob(target, "none", "{}", &r), &r, 201);
    snprintf(target, sizeof target, B("/authc?restype=container&comp=list&%s"), acct);
    expect(qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r), &r, 200);
    snprintf(target, sizeof target, B("/authc/three.json?%s"), qonly);
    qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthorizationServiceMismatch");
    clc_http_resp_cleanup(&r);

    /* Container SAS (read, list): reading and listing, not writing. */
    snprintf(target, sizeof target, B("/authc?restype=container&comp=list&%s"), list);
    expect(qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r), &r, 200);
    snprintf(target, sizeof target, B("/authc/two.json?%s"), list);
    expect(qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r), &r, 200);
    snprintf(target, sizeof target, B("/authc/four.json?%s"), list);
    put_blob(target, "none", "{}", &r);
    qt_assert_error(&r, 403, "AuthorizationPermissionMismatch");
    clc_http_resp_cleanup(&r);
    /* Blob SAS: that blob only. */
    snprintf(target, sizeof target, B("/authc/one.json?%s"), one);
    expect(qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r), &r, 200);
    snprintf(target, sizeof target, B("/authc/two.json?%s"), one);
    qt_req("blob", "GET", target, "none", NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthenticationFailed");
    clc_http_resp_cleanup(&r);

    qt_req("blob", "GET", B("/authc/one.json"), "key:" QT_WRONG_KEY, NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthenticationFailed");
    clc_http_resp_cleanup(&r);
    qt_req("blob", "GET", B("/authc/one.json"), "none", NULL, NULL, 0, &r);
    qt_assert_error(&r, 401, "NoAuthenticationInformation");
    clc_http_resp_cleanup(&r);
    free(blobber);
    free(queuer);
    free(acct);
    free(qonly);
    free(list);
    free(one);
}

static void test_in_process_writers(void **state)
{
    struct clc_http_resp r;
    struct clc_errinfo ei = {0};
    char *big = calloc(1, 65537);
    (void)state;

    /* Event Grid writes dead-letters and queue messages this way. */
    assert_int_equal(emu_blob_put(QT.e, QT_DEV, "dlq", "SUB-ONE/2026/1/2/3/x.json", "[1]", 3,
                                  "application/json", &ei),
                     CLC_OK);
    qt_key("blob", "GET", B("/dlq/SUB-ONE/2026/1/2/3/x.json"), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), "[1]");
    clc_http_resp_cleanup(&r);
    assert_int_equal(emu_blob_put(QT.e, QT_DEV, "nosuch", "a", "x", 1, NULL, &ei),
                     CLC_ERR_NOT_FOUND);

    qt_key("queue", "PUT", B("/events"), NULL, &r);
    clc_http_resp_cleanup(&r);
    assert_int_equal(emu_queue_put_message(QT.e, QT_DEV, "events", "eyJhIjoxfQ==", 12, -1, &ei),
                     CLC_OK);
    qt_key("queue", "GET", B("/events/messages"), NULL, &r);
    assert_non_null(strstr(clc_buf_str(&r.body), "<MessageText>eyJhIjoxfQ==</MessageText>"));
    assert_non_null(strstr(clc_buf_str(&r.body), "Fri, 31 Dec 9999 23:59:59 GMT"));
    clc_http_resp_cleanup(&r);
    memset(big, 'x', 65536);
    assert_int_equal(emu_queue_put_message(QT.e, QT_DEV, "events", big, 65537, -1, &ei),
                     CLC_ERR_LIMIT);
    assert_int_equal(emu_queue_put_message(QT.e, QT_DEV, "nosuch", "x", 1, -1, &ei),
                     CLC_ERR_NOT_FOUND);
    free(big);
}

static void test_restart_and_dump(void **state)
{
    struct clc_http_resp r;
    cJSON *doc = NULL;
    const cJSON *list, *it;
    int found = 0;
    (void)state;

    assert_int_equal(qt_restart(), 0);
    qt_key("blob", "GET", B("/dlq/" DL_NAME), NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), DL_BODY);
    clc_http_resp_cleanup(&r);
    qt_key("blob", "GET", B("/dlq?restype=container&comp=list"), NULL, &r);
    assert_int_equal(qt_count(&r, "Blob"), 3);
    clc_http_resp_cleanup(&r);

    assert_int_equal(test_emu_admin_call(QT.e, QT.http, "GET", "/control/state", NULL, &r), 200);
    assert_int_equal(clc_json_parse(clc_buf_str(&r.body), r.body.len, 1 << 20, &doc, NULL), CLC_OK);
    list = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "blob"), QT_DEV);
    cJSON_ArrayForEach(it, list)
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(it, "name");
        const cJSON *blobs = cJSON_GetObjectItemCaseSensitive(it, "blobs");
        if (strcmp(n->valuestring, "dlq") == 0) {
            found = 1;
            assert_int_equal(cJSON_GetArraySize(blobs), 3);
            assert_string_equal(cJSON_GetArrayItem(blobs, 0)->valuestring,
                                "SUB-ONE/2026/1/2/3/x.json");
        }
    }
    assert_true(found);
    cJSON_Delete(doc);
    clc_http_resp_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_container_lifecycle), cmocka_unit_test(test_put_get_list_delete),
        cmocka_unit_test(test_blob_auth),           cmocka_unit_test(test_in_process_writers),
        cmocka_unit_test(test_restart_and_dump),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
