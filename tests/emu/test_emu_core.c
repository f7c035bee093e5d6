/* The emulator core's HTTP layer over real HTTPS (libcurl, verification
 * on): TLS and the CA bundle, the endpoints document, request parsing and
 * routing, body limits, common headers, the access log, the store, and a
 * restart from the same data dir. One emulator per binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/x509.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "test_emu_core_fixture.h"

static void test_tls_verified(void **state)
{
    struct resp r;
    CURL *c = curl_easy_init();

    (void)state;
    fx_req("GET", fx_url("testsvc", "/items/1"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);

    /* The same server against a bundle without the emulator's CA. */
    fx_do_req(c, "GET", fx_url("testsvc", "/items/1"), NULL, NULL, 0, CLC_FIXTURES "/../README.md",
              &r);
    assert_true(r.cc == CURLE_PEER_FAILED_VERIFICATION || r.cc == CURLE_SSL_CACERT_BADFILE);
    fx_resp_free(&r);
    fx_do_req(c, "GET", fx_url("testsvc", "/items/1"), NULL, NULL, 0,
              "/etc/ssl/certs/ca-certificates.crt", &r);
    assert_int_equal(r.cc, CURLE_PEER_FAILED_VERIFICATION);
    fx_resp_free(&r);
    curl_easy_cleanup(c);
}

static void test_plain_http_listener(void **state)
{
    struct resp r;
    const char *u = emu_service_url(fx.emu, "nested/two");

    (void)state;
    assert_non_null(u);
    assert_int_equal(strncmp(u, "http://127.0.0.1:", 17), 0);
    assert_int_equal(strncmp(emu_service_url(fx.emu, "testsvc"), "https://127.0.0.1:", 18), 0);
    fx_req("GET", fx_url("nested/two", "/items/7"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
}

static void test_keep_alive_reused_and_fast(void **state)
{
    long connects = -1;
    int64_t t0;
    struct resp r;

    (void)state;
    fx_req("GET", fx_url("testsvc", "/items/warm"), NULL, NULL, &r);
    fx_resp_free(&r);
    /* Error answers keep the connection too (Key Vault's 401 challenge
     * is answered on the same connection by the SDKs). */
    fx_req("GET", fx_url("testsvc", "/nope"), NULL, NULL, &r);
    expect_status(&r, 404);
    fx_resp_free(&r);
    t0 = clc_mono_ms();
    for (int i = 0; i < 50; i++) {
        fx_req("GET", fx_url("testsvc", "/items/k"), NULL, NULL, &r);
        expect_status(&r, 200);
        curl_easy_getinfo(fx.curl, CURLINFO_NUM_CONNECTS, &connects);
        assert_int_equal(connects, 0);
        fx_resp_free(&r);
    }
    /* With Nagle on, each answer would wait ~44 ms for a delayed ACK. */
    assert_true(clc_mono_ms() - t0 < 1500);
}

static void test_endpoints_file(void **state)
{
    char path[320], *text = NULL;
    struct stat st;
    cJSON *doc = NULL;
    const cJSON *svc, *nested;
    size_t len;

    (void)state;
    snprintf(path, sizeof path, "%s/endpoints.json", fx.dir);
    assert_int_equal(emu_write_endpoints(fx.emu, path, NULL), CLC_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(clc_file_read(path, 1 << 20, &text, &len, NULL), CLC_OK);
    doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    svc = cJSON_GetObjectItem(doc, "services");
    for (const char *const *k =
             (const char *const[]){"control", "entra", "imds", "arc", "testsvc", NULL};
         *k; k++) {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(svc, *k));
        assert_non_null(v);
        assert_string_equal(v, emu_service_url(fx.emu, *k));
    }
    nested = cJSON_GetObjectItem(svc, "nested");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(nested, "one")),
                        emu_service_url(fx.emu, "nested/one"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(nested, "two")),
                        emu_service_url(fx.emu, "nested/two"));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "ca_bundle")),
                        emu_ca_bundle(fx.emu));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(doc, "tenant")),
                        emu_tenant(fx.emu));
    assert_non_null(cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "identities"), "admin"), "client_secret"));
    assert_int_equal(access(emu_ca_bundle(fx.emu), R_OK), 0);
    cJSON_Delete(doc);
    /* Keys that the document could not hold side by side are refused. */
    assert_int_equal(emu_service_add(fx.emu, "nested", &fx_test_def, 0, NULL, NULL),
                     CLC_ERR_CONFLICT);
    assert_int_equal(emu_service_add(fx.emu, "testsvc/x", &fx_test_def, 0, NULL, NULL),
                     CLC_ERR_CONFLICT);
    assert_int_equal(emu_service_add(fx.emu, "testsvc", &fx_test_def, 0, NULL, NULL),
                     CLC_ERR_CONFLICT);
    assert_int_equal(emu_service_add(fx.emu, "Bad Key", &fx_test_def, 0, NULL, NULL),
                     CLC_ERR_INVALID);
}

static void test_not_found_and_method(void **state)
{
    struct resp r;

    (void)state;
    fx_req("GET", fx_url("testsvc", "/nope/x"), NULL, NULL, &r);
    expect_status(&r, 404);
    assert_string_equal(fx_err_code(&r), "NotFound");
    fx_resp_free(&r);
    fx_req("DELETE", fx_url("testsvc", "/items/1"), NULL, NULL, &r);
    expect_status(&r, 405);
    assert_string_equal(fx_err_code(&r), "MethodNotAllowed");
    fx_resp_free(&r);
    /* A handler that forgets to reply still answers. */
    fx_req("GET", fx_url("testsvc", "/noreply"), NULL, NULL, &r);
    expect_status(&r, 500);
    fx_resp_free(&r);
}

static void test_routing_params(void **state)
{
    struct resp r;

    (void)state;
    /* An encoded "/" stays inside its segment; names in the query are decoded. */
    fx_req("GET", fx_url("testsvc", "/items/a%2Fb%20c?api%2Dversion=7.4&x=1"), NULL, NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "id")), "a/b c");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "path")), "/items/a/b c");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "api_version")), "7.4");
    fx_resp_free(&r);
    /* A trailing slash is ignored when the pattern has none... */
    fx_req("GET", fx_url("testsvc", "/items/abc/"), NULL, NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "id")), "abc");
    fx_resp_free(&r);
    /* ...and required when it has one. */
    fx_req("GET", fx_url("testsvc", "/slash"), NULL, NULL, &r);
    expect_status(&r, 404);
    fx_resp_free(&r);
    fx_req("GET", fx_url("testsvc", "/slash/"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    fx_req("GET", fx_url("testsvc", "/items/k/sub/x/y%2Fz/"), NULL, NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "rest")), "x/y/z/");
    fx_resp_free(&r);
    fx_req("GET", fx_url("testsvc", "/items/k/sub"), NULL, NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "rest")), "");
    fx_resp_free(&r);
    /* An empty segment is not a parameter. */
    fx_req("GET", fx_url("testsvc", "/items//"), NULL, NULL, &r);
    expect_status(&r, 404);
    fx_resp_free(&r);
}

static void test_bad_percent_encoding(void **state)
{
    static const char *const bad[] = {"/items/a%zz", "/items/a%00b", "/items/a%4", "/items/%"};
    struct resp r;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_req("GET", fx_url("testsvc", bad[i]), NULL, NULL, &r);
        expect_status(&r, 400);
        assert_string_equal(fx_err_code(&r), "InvalidUri");
        fx_resp_free(&r);
    }
}

static void test_body_limit(void **state)
{
    char *big = malloc(MAX_BODY + 1025);
    const char *chunked[] = {"Transfer-Encoding: chunked", NULL};
    const char *expect[] = {"Expect: 100-continue", NULL};
    const char *form[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    struct resp r;

    (void)state;
    assert_non_null(big);
    memset(big, 'x', MAX_BODY + 1024);
    big[MAX_BODY + 1024] = '\0';
    /* Exactly at the limit: accepted and NUL-terminated. */
    fx_do_req(fx.curl, "POST", fx_url("testsvc", "/echo"), NULL, big, MAX_BODY, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    expect_status(&r, 200);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "len")), MAX_BODY);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "nul_terminated")));
    fx_resp_free(&r);
    /* Over it by Content-Length: refused before reading. */
    fx_do_req(fx.curl, "POST", fx_url("testsvc", "/echo"), NULL, big, MAX_BODY + 1024, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    expect_status(&r, 413);
    assert_string_equal(fx_err_code(&r), "RequestBodyTooLarge");
    fx_resp_free(&r);
    /* Over it in chunks: counted as read. */
    fx_do_req(fx.curl, "POST", fx_url("testsvc", "/echo"), chunked, big, MAX_BODY + 1024, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    expect_status(&r, 413);
    fx_resp_free(&r);
    /* A client waiting for "100 Continue" never has to send the body. */
    fx_do_req(fx.curl, "POST", fx_url("testsvc", "/echo"), expect, big, MAX_BODY + 1024, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    expect_status(&r, 413);
    fx_resp_free(&r);
    free(big);
    /* Still answering, and form bodies decode. */
    fx_do_req(fx.curl, "POST", fx_url("testsvc", "/echo"), form, "b=1&a=x%20y+z", 13, NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "a")), "x y z");
    fx_resp_free(&r);
}

static void test_common_headers(void **state)
{
    const char *hdrs[] = {"x-ms-client-request-id: my-id-123", NULL};
    char rid[64], crid[64], date[64];
    int64_t t = 0;
    struct resp r;

    (void)state;
    fx_req("GET", fx_url("testsvc", "/items/1"), hdrs, NULL, &r);
    assert_true(fx_resp_header(&r, "x-ms-request-id", rid, sizeof rid));
    assert_int_equal(strlen(rid), 36);
    assert_int_equal(rid[14], '4');
    assert_true(fx_resp_header(&r, "x-ms-client-request-id", crid, sizeof crid));
    assert_string_equal(crid, "my-id-123");
    assert_true(fx_resp_header(&r, "Date", date, sizeof date));
    assert_int_equal(clc_time_parse_rfc1123(date, &t), CLC_OK);
    assert_true(llabs(t - emu_now(fx.emu)) <= 2);
    fx_resp_free(&r);
    /* Request ids are fresh per request. */
    fx_req("GET", fx_url("testsvc", "/items/1"), NULL, NULL, &r);
    assert_true(fx_resp_header(&r, "x-ms-request-id", crid, sizeof crid));
    assert_string_not_equal(crid, rid);
    assert_false(fx_resp_header(&r, "x-ms-client-request-id", crid, sizeof crid));
    fx_resp_free(&r);
}

static void test_date_follows_emulator_clock(void **state)
{
    char date[64];
    int64_t t = 0, target = 4102444800; /* 2100-01-01 */
    struct resp r;

    (void)state;
    emu_clock_set(fx.emu, target);
    fx_req("GET", fx_url("testsvc", "/items/1"), NULL, NULL, &r);
    assert_true(fx_resp_header(&r, "Date", date, sizeof date));
    assert_int_equal(clc_time_parse_rfc1123(date, &t), CLC_OK);
    assert_true(t >= target && t <= target + 2);
    fx_resp_free(&r);
    emu_clock_set(fx.emu, clc_clock_now(NULL));
}

static void test_access_log(void **state)
{
    char *text = NULL;
    size_t len;
    struct resp r;

    (void)state;
    fx_req("GET", fx_url("testsvc", "/items/logme?sig=topsecretquery"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    fflush(fx.log);
    assert_int_equal(clc_file_read(fx.log_path, 16 << 20, &text, &len, NULL), CLC_OK);
    assert_non_null(strstr(text, "event=emu.access"));
    assert_non_null(strstr(text, "service=testsvc"));
    assert_non_null(strstr(text, "path=/items/logme "));
    assert_non_null(strstr(text, "duration_ms="));
    assert_null(strstr(text, "topsecretquery"));
    free(text);
}

static void test_store(void **state)
{
    cJSON *doc = cJSON_CreateObject(), *back = NULL;
    char path[400];
    struct stat st;

    (void)state;
    cJSON_AddNumberToObject(doc, "n", 5);
    assert_int_equal(emu_store_save(fx.emu, "test-doc-1", doc, NULL), CLC_OK);
    snprintf(path, sizeof path, "%s/test-doc-1.json", emu_data_dir(fx.emu));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(emu_store_load(fx.emu, "test-doc-1", &back, NULL), CLC_OK);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(back, "n")), 5);
    cJSON_Delete(back);
    back = NULL;
    assert_int_equal(emu_store_load(fx.emu, "never-saved", &back, NULL), CLC_ERR_NOT_FOUND);
    assert_null(back);
    assert_int_equal(emu_store_save(fx.emu, "../escape", doc, NULL), CLC_ERR_INVALID);
    assert_int_equal(emu_store_save(fx.emu, "Upper", doc, NULL), CLC_ERR_INVALID);
    assert_int_equal(emu_store_save(fx.emu, "", doc, NULL), CLC_ERR_INVALID);
    assert_int_equal(emu_store_load(fx.emu, "a/b", &back, NULL), CLC_ERR_INVALID);
    cJSON_Delete(doc);
    /* Keys are private. */
    snprintf(path, sizeof path, "%s/ca.key", emu_data_dir(fx.emu));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/server.pem", emu_data_dir(fx.emu));
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void ca_fingerprint(unsigned char out[64], size_t *len)
{
    X509 *ca = NULL;

    assert_int_equal(clc_x509_load_pem_file(emu_ca_bundle(fx.emu), &ca, NULL), CLC_OK);
    assert_int_equal(clc_x509_digest(ca, "SHA256", out, len), CLC_OK);
    X509_free(ca);
}

/* Last: it replaces the group's emulator with a restarted one. */
static void test_restart_keeps_ca_and_clock(void **state)
{
    unsigned char fp1[64], fp2[64];
    size_t l1 = 0, l2 = 0;
    int64_t target = clc_clock_now(NULL) + 30 * 86400, t0, elapsed;
    struct resp r;

    (void)state;
    ca_fingerprint(fp1, &l1);
    emu_clock_set(fx.emu, target);
    t0 = clc_mono_ms();
    emu_stop(fx.emu);
    fx.emu = NULL;
    assert_int_equal(fx_start_emu(), 0);
    assert_int_equal(fx_load_endpoints(), 0);
    elapsed = (clc_mono_ms() - t0) / 1000;
    ca_fingerprint(fp2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(fp1, fp2, l1);
    assert_true(emu_now(fx.emu) >= target && emu_now(fx.emu) <= target + elapsed + 2);
    /* The new listeners serve with the same trust. */
    fx_req("GET", fx_url("testsvc", "/items/again"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    emu_clock_set(fx.emu, clc_clock_now(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_verified),
        cmocka_unit_test(test_plain_http_listener),
        cmocka_unit_test(test_keep_alive_reused_and_fast),
        cmocka_unit_test(test_endpoints_file),
        cmocka_unit_test(test_not_found_and_method),
        cmocka_unit_test(test_routing_params),
        cmocka_unit_test(test_bad_percent_encoding),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_common_headers),
        cmocka_unit_test(test_date_follows_emulator_clock),
        cmocka_unit_test(test_access_log),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_restart_keeps_ca_and_clock),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
