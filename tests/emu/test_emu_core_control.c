/* The emulator's control API over HTTPS: admin-only access (401 without a
 * token, 403 for other identities), the clock (get, set, advance, freeze),
 * fault rules (status with Retry-After, drop, latency, management), reset
 * and state hooks, and routes added by components. One emulator per binary. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "test_emu_core_fixture.h"

static void test_control_auth(void **state)
{
    long connects = -1;
    char auth[8192];
    const char *hdrs[] = {auth, NULL};
    char www[128];
    struct resp r;

    (void)state;
    fx_req("GET", fx_url("control", "/control/health"), NULL, NULL, &r);
    expect_status(&r, 401);
    assert_string_equal(fx_err_code(&r), "Unauthorized");
    assert_true(fx_resp_header(&r, "WWW-Authenticate", www, sizeof www));
    fx_resp_free(&r);
    /* An unknown route answers 401 too: nothing is revealed without a token.
     * The connection stays open after a 401, as clients answer the
     * challenge on it. */
    fx_req("GET", fx_url("control", "/control/nothing"), NULL, NULL, &r);
    expect_status(&r, 401);
    curl_easy_getinfo(fx.curl, CURLINFO_NUM_CONNECTS, &connects);
    assert_int_equal(connects, 0);
    fx_resp_free(&r);

    fx_token("reader", "api://certlc-emulator/.default", auth, sizeof auth);
    fx_req("GET", fx_url("control", "/control/health"), hdrs, NULL, &r);
    expect_status(&r, 403);
    assert_string_equal(fx_err_code(&r), "Forbidden");
    fx_resp_free(&r);

    /* The admin, but a token for another audience. */
    fx_token("admin", "https://vault.azure.net/.default", auth, sizeof auth);
    fx_req("GET", fx_url("control", "/control/health"), hdrs, NULL, &r);
    expect_status(&r, 401);
    fx_resp_free(&r);

    fx_admin("GET", "/control/health", NULL, &r);
    expect_status(&r, 200);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "status")), "ok");
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "services"), "entra")),
        emu_service_url(fx.emu, "entra"));
    fx_resp_free(&r);
    fx_admin("GET", "/control/nothing", NULL, &r);
    expect_status(&r, 404);
    fx_resp_free(&r);
}

static int64_t clock_now_of(const struct resp *r)
{
    return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(r->json, "now"));
}

static void test_control_clock(void **state)
{
    int64_t sys = clc_clock_now(NULL), t1, t2;
    struct resp r;

    (void)state;
    fx_admin("GET", "/control/clock", NULL, &r);
    expect_status(&r, 200);
    assert_true(llabs(clock_now_of(&r) - sys) <= 2);
    assert_non_null(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "now_iso")));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "frozen")));
    fx_resp_free(&r);

    /* Set a time (a fresh token is fetched for each call: they follow the clock). */
    fx_admin("PUT", "/control/clock", "{\"now\": 4000000000}", &r);
    expect_status(&r, 200);
    t1 = clock_now_of(&r);
    assert_true(t1 >= 4000000000 && t1 <= 4000000002);
    fx_resp_free(&r);
    assert_true(emu_now(fx.emu) >= 4000000000);

    /* Frozen: time stands still, and advancing is exact. */
    fx_admin("PUT", "/control/clock", "{\"now\": 4100000000, \"frozen\": true}", &r);
    expect_status(&r, 200);
    assert_int_equal(clock_now_of(&r), 4100000000);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "frozen")));
    fx_resp_free(&r);
    assert_int_equal(emu_now_ms(fx.emu), 4100000000000LL);
    fx_admin("PUT", "/control/clock", "{\"advance_seconds\": 600}", &r);
    assert_int_equal(clock_now_of(&r), 4100000600);
    fx_resp_free(&r);
    fx_admin("GET", "/control/clock", NULL, &r);
    assert_int_equal(clock_now_of(&r), 4100000600);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(r.json, "now_iso")),
                        "2099-12-03T17:03:20Z");
    fx_resp_free(&r);

    /* Unfrozen, it runs on from there. */
    fx_admin("PUT", "/control/clock", "{\"frozen\": false}", &r);
    t2 = clock_now_of(&r);
    assert_true(t2 >= 4100000600 && t2 <= 4100000602);
    fx_resp_free(&r);

    /* Refusals. */
    fx_admin("PUT", "/control/clock", "{\"later\": 5}", &r);
    expect_status(&r, 400);
    fx_resp_free(&r);
    fx_admin("PUT", "/control/clock", "{\"now\": \"soon\"}", &r);
    expect_status(&r, 400);
    fx_resp_free(&r);
    fx_admin("PUT", "/control/clock", "not json", &r);
    expect_status(&r, 400);
    fx_resp_free(&r);

    /* In-process controls agree. */
    emu_clock_advance(fx.emu, -100);
    assert_true(emu_now(fx.emu) >= 4100000500 && emu_now(fx.emu) <= 4100000503);
    emu_clock_set(fx.emu, sys);
    assert_true(llabs(emu_now(fx.emu) - sys) <= 2);
}

static void add_fault(const char *rule, int64_t *id)
{
    struct resp r;

    fx_admin("POST", "/control/faults", rule, &r);
    if (r.status != 201)
        fail_msg("adding fault %s: %ld %s", rule, r.status, clc_buf_str(&r.body));
    *id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItem(r.json, "id"));
    assert_true(*id > 0);
    fx_resp_free(&r);
}

static void test_fault_status(void **state)
{
    char ra[32];
    int64_t id;
    struct resp r;

    (void)state;
    add_fault("{\"service\": \"testsvc\", \"method\": \"GET\", \"path\": \"/items/*\", "
              "\"count\": 2, \"status\": 503, \"retry_after\": 7, \"code\": \"ServerBusy\"}",
              &id);
    /* Other services and methods are untouched. */
    fx_req("POST", fx_url("testsvc", "/echo"), NULL, "", &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    for (int i = 0; i < 2; i++) {
        fx_req("GET", fx_url("testsvc", "/items/9"), NULL, NULL, &r);
        expect_status(&r, 503);
        assert_string_equal(fx_err_code(&r), "ServerBusy");
        assert_true(fx_resp_header(&r, "Retry-After", ra, sizeof ra));
        assert_string_equal(ra, "7");
        fx_resp_free(&r);
    }
    fx_req("GET", fx_url("testsvc", "/items/9"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    fx_admin("GET", "/control/faults", NULL, &r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "faults")), 0);
    fx_resp_free(&r);
}

static void test_fault_drop(void **state)
{
    int64_t id, t0;
    struct resp r;
    CURL *c = curl_easy_init();

    (void)state;
    add_fault("{\"service\": \"testsvc\", \"path\": \"/items/drop\", \"drop\": true}", &id);
    t0 = clc_mono_ms();
    fx_do_req(c, "GET", fx_url("testsvc", "/items/drop"), NULL, NULL, 0, NULL, &r);
    assert_true(r.cc == CURLE_GOT_NOTHING || r.cc == CURLE_RECV_ERROR);
    expect_status(&r, 0);
    assert_true(clc_mono_ms() - t0 < 1500);
    fx_resp_free(&r);
    fx_do_req(c, "GET", fx_url("testsvc", "/items/drop"), NULL, NULL, 0, NULL, &r);
    assert_int_equal(r.cc, CURLE_OK);
    expect_status(&r, 200);
    fx_resp_free(&r);
    curl_easy_cleanup(c);
}

static void test_fault_latency_and_management(void **state)
{
    int64_t id, id2, t0;
    char path[64];
    struct resp r;

    (void)state;
    add_fault("{\"service\": \"testsvc\", \"path\": \"/items/slow\", \"latency_ms\": 300}", &id);
    t0 = clc_mono_ms();
    fx_req("GET", fx_url("testsvc", "/items/slow"), NULL, NULL, &r);
    expect_status(&r, 200);
    assert_true(clc_mono_ms() - t0 >= 300);
    fx_resp_free(&r);

    /* count 0 = until deleted; "*" never reaches the control API. */
    add_fault("{\"service\": \"*\", \"path\": \"/items/forever\", \"count\": 0, \"status\": 500}",
              &id);
    add_fault("{\"service\": \"*\", \"path\": \"/control/*\", \"status\": 500}", &id2);
    for (int i = 0; i < 3; i++) {
        fx_req("GET", fx_url("testsvc", "/items/forever"), NULL, NULL, &r);
        expect_status(&r, 500);
        assert_string_equal(fx_err_code(&r), "InjectedFault");
        fx_resp_free(&r);
    }
    fx_admin("GET", "/control/faults", NULL, &r);
    expect_status(&r, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "faults")), 2);
    fx_resp_free(&r);
    snprintf(path, sizeof path, "/control/faults/%lld", (long long)id);
    fx_admin("DELETE", path, NULL, &r);
    expect_status(&r, 204);
    fx_resp_free(&r);
    fx_admin("DELETE", path, NULL, &r);
    expect_status(&r, 404);
    fx_resp_free(&r);
    fx_req("GET", fx_url("testsvc", "/items/forever"), NULL, NULL, &r);
    expect_status(&r, 200);
    fx_resp_free(&r);
    fx_admin("DELETE", "/control/faults", NULL, &r);
    expect_status(&r, 204);
    fx_resp_free(&r);

    /* Bad rules are refused with the reason. */
    fx_admin("POST", "/control/faults", "{\"service\": \"testsvc\", \"status\": 503, \"x\": 1}",
             &r);
    expect_status(&r, 400);
    assert_string_equal(fx_err_code(&r), "InvalidFaultRule");
    fx_resp_free(&r);
    fx_admin("POST", "/control/faults", "{\"service\": \"testsvc\"}", &r);
    expect_status(&r, 400);
    fx_resp_free(&r);
    fx_admin("POST", "/control/faults", "{\"service\": \"testsvc\", \"status\": 42}", &r);
    expect_status(&r, 400);
    fx_resp_free(&r);
}

static void test_reset_state_and_routes(void **state)
{
    int64_t id;
    struct resp r;
    const cJSON *comp;

    (void)state;
    add_fault("{\"service\": \"testsvc\", \"path\": \"/x\", \"status\": 500}", &id);
    fx.resets = 0;
    fx_admin("POST", "/control/reset", NULL, &r);
    expect_status(&r, 204);
    fx_resp_free(&r);
    assert_int_equal(fx.resets, 1);

    fx_admin("GET", "/control/state", NULL, &r);
    expect_status(&r, 200);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "clock"), "now"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "faults")), 0);
    comp = cJSON_GetObjectItem(r.json, "testcomp");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(comp, "resets")), 1);
    fx_resp_free(&r);

    fx_admin("GET", "/control/testcomp/ping", NULL, &r);
    expect_status(&r, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "ctx_ok")));
    fx_resp_free(&r);
    fx_req("GET", fx_url("control", "/control/testcomp/ping"), NULL, NULL, &r);
    expect_status(&r, 401);
    fx_resp_free(&r);

    assert_int_equal(emu_control_register(fx.emu, "testcomp", NULL, NULL, NULL), CLC_ERR_CONFLICT);
    assert_int_equal(emu_control_register(fx.emu, "Bad Name", NULL, NULL, NULL), CLC_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_control_auth),
        cmocka_unit_test(test_control_clock),
        cmocka_unit_test(test_fault_status),
        cmocka_unit_test(test_fault_drop),
        cmocka_unit_test(test_fault_latency_and_management),
        cmocka_unit_test(test_reset_state_and_routes),
    };
    return cmocka_run_group_tests(tests, fx_setup, fx_teardown);
}
