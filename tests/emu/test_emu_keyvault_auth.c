/* The emulated Key Vault's front door: the challenge without side effects,
 * token checks, RBAC per operation (sync reads secrets only, renewer does
 * certificates but not secrets, reader reads metadata only), and bad input,
 * each a clear 400 (or 413) with the vault unchanged. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "emulator/state.h"
#include "test_emu_keyvault_fixture.h"

static const char create_body[] =
    "{\"policy\": {\"key_props\": {\"kty\": \"EC\", \"crv\": \"P-256\"},"
    " \"x509_props\": {\"subject\": \"CN=probe\"}, \"issuer\": {\"name\": \"Unknown\"}}}";

static void test_challenge_has_no_side_effects(void **state)
{
    struct kvr r;
    const char *www;
    char want[512];

    (void)state;
    kv_call(NULL, "POST", "/certificates/probe/create", create_body, &r);
    kv_expect(&r, 401);
    assert_string_equal(kv_errcode(&r), "Unauthorized");
    www = clc_http_resp_header(&r.resp, "WWW-Authenticate");
    assert_non_null(www);
    snprintf(want, sizeof want,
             "Bearer authorization=\"%s/%s\", resource=\"https://vault.azure.net\"",
             emu_service_url(kv.e, "entra"), emu_tenant(kv.e));
    assert_string_equal(www, want);
    assert_non_null(clc_http_resp_header(&r.resp, "x-ms-request-id"));
    assert_non_null(clc_http_resp_header(&r.resp, "Date"));
    kvr_free(&r);
    /* Nothing was created. */
    kv_call("renewer", "GET", "/certificates/probe/pending", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    /* Any path, any method. */
    kv_call(NULL, "GET", "/no/such/path", NULL, &r);
    kv_expect(&r, 401);
    kvr_free(&r);
    kv_call(NULL, "PUT", "/certificates/probe", "{}", &r);
    kv_expect(&r, 401);
    kvr_free(&r);
    /* A token for another audience is no token for the vault. */
    {
        char url[512];
        const char *tok = kvfx_token("admin", "api://certlc-emulator/.default");
        struct clc_http_resp resp;
        struct clc_secret *s = NULL;
        struct clc_http_req req = {.method = "GET", .url = url};
        snprintf(url, sizeof url, "%s/certificates?api-version=7.5", kvfx_vault("certlc"));
        assert_int_equal(clc_secret_new(tok, strlen(tok), &s), CLC_OK);
        req.bearer = s;
        clc_http_resp_init(&resp);
        assert_int_equal(clc_http_do(kv.http, &req, &resp, NULL), CLC_OK);
        assert_int_equal(resp.status, 401);
        assert_non_null(clc_http_resp_header(&resp, "WWW-Authenticate"));
        clc_http_resp_cleanup(&resp);
        clc_secret_free(s);
    }
    /* The challenge echoes the client request id. */
    {
        char url[512];
        struct clc_http_resp resp;
        struct clc_http_req req = {
            .method = "GET", .url = url, .client_request_id = "kvemu-test-1"};
        snprintf(url, sizeof url, "%s/certificates?api-version=7.5", kvfx_vault("certlc"));
        clc_http_resp_init(&resp);
        assert_int_equal(clc_http_do(kv.http, &req, &resp, NULL), CLC_OK);
        assert_int_equal(resp.status, 401);
        assert_string_equal(clc_http_resp_header(&resp, "x-ms-client-request-id"), "kvemu-test-1");
        clc_http_resp_cleanup(&resp);
    }
}

static void expect_forbidden(const char *who, const char *method, const char *path,
                             const char *body)
{
    struct kvr r;

    kv_call(who, method, path, body, &r);
    if (r.status != 403)
        fail_msg("%s %s %s: status %ld, expected 403", who, method, path, r.status);
    assert_string_equal(kv_errcode(&r), "Forbidden");
    assert_string_equal(kv_str(r.json, "error.innererror.code"), "ForbiddenByRbac");
    kvr_free(&r);
}

static void test_rbac(void **state)
{
    struct kvr r;
    char *ver = kv_issue("rbac", NULL);

    (void)state;
    /* sync: secrets only. */
    kv_call("sync", "GET", "/secrets/rbac/", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    expect_forbidden("sync", "POST", "/certificates/rbac2/create", create_body);
    expect_forbidden("sync", "GET", "/certificates/rbac", NULL);
    expect_forbidden("sync", "GET", "/certificates", NULL);
    /* renewer: certificates, not secrets. */
    expect_forbidden("renewer", "GET", "/secrets/rbac/", NULL);
    {
        char p[128];
        snprintf(p, sizeof p, "/secrets/rbac/%s", ver);
        expect_forbidden("renewer", "GET", p, NULL);
    }
    kv_call("renewer", "PATCH", "/certificates/rbac", "{\"tags\": {\"a\": \"b\"}}", &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    /* reader: metadata only. */
    kv_call("reader", "GET", "/certificates", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/rbac/versions", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/rbac/policy", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    expect_forbidden("reader", "GET", "/secrets/rbac/", NULL);
    expect_forbidden("reader", "POST", "/certificates/rbac3/create", create_body);
    expect_forbidden("reader", "PATCH", "/certificates/rbac", "{\"tags\": {}}");
    expect_forbidden("reader", "DELETE", "/certificates/rbac", NULL);
    expect_forbidden("reader", "POST", "/certificates/rbac/pending/merge", "{\"x5c\": []}");
    expect_forbidden("reader", "PATCH", "/certificates/rbac/policy", "{}");
    /* admin: everything. */
    kv_call("admin", "GET", "/secrets/rbac", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    /* Nothing the refused callers tried happened. */
    kv_call("reader", "GET", "/certificates/rbac2/pending", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/rbac", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "tags.a"), "b");
    kvr_free(&r);
    free(ver);
}

/* The state the bad requests below must leave alone. */
struct snap {
    int count;
    char csr[4096];
};

static void take(struct snap *s)
{
    struct kvr r;

    s->count = kv_count("reader", "/certificates?api-version=7.5&includePending=true");
    kv_call("reader", "GET", "/certificates/steady/pending", NULL, &r);
    kv_expect(&r, 200);
    snprintf(s->csr, sizeof s->csr, "%s", kv_str(r.json, "csr"));
    kvr_free(&r);
}

static void bad(const char *method, const char *path, const char *body, long status,
                const char *code, const char *msg_part)
{
    struct kvr r;

    kv_call("admin", method, path, body, &r);
    if (r.status != status)
        fail_msg("%s %s: status %ld, expected %ld: %s", method, path, r.status, status,
                 clc_buf_str(&r.resp.body));
    assert_string_equal(kv_errcode(&r), code);
    if (msg_part != NULL && strstr(kv_str(r.json, "error.message"), msg_part) == NULL)
        fail_msg("%s %s: message '%s' lacks '%s'", method, path, kv_str(r.json, "error.message"),
                 msg_part);
    kvr_free(&r);
}

static void test_bad_input(void **state)
{
    struct snap before, after;
    struct kvr r;
    char name128[160], path[256];
    char *big;

    (void)state;
    kv_call("renewer", "POST", "/certificates/steady/create",
            "{\"policy\": {\"key_props\": {\"kty\": \"EC\"}, \"x509_props\": {\"subject\": "
            "\"CN=steady\"}, \"issuer\": {\"name\": \"Unknown\"}}}",
            &r);
    kv_expect(&r, 202);
    kvr_free(&r);
    take(&before);

    bad("POST", "/certificates/fresh/create", "{\"policy\": {", 400, "BadParameter", "JSON");
    bad("POST", "/certificates/fresh/create", "[1, 2]", 400, "BadParameter", "object");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"key_props\": {\"kty\": \"RSA\", \"key_size\": \"2048\"},"
        " \"x509_props\": {\"subject\": \"CN=x\"}}}",
        400, "BadParameter", "key_size");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"key_props\": {\"kty\": \"RSA\", \"key_size\": 1024},"
        " \"x509_props\": {\"subject\": \"CN=x\"}}}",
        400, "BadParameter", "1024");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"x509_props\": {\"subject\": \"CN=x\"}}, \"tags\": {\"a\": 1}}", 400,
        "BadParameter", "Tag 'a'");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"x509_props\": {\"subject\": \"CN=x\"}}, \"attributes\": {\"enabled\": "
        "\"yes\"}}",
        400, "BadParameter", "enabled");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"x509_props\": {\"subject\": \"NOTADN\"}}}", 400, "BadParameter",
        "subject");
    bad("POST", "/certificates/fresh/create",
        "{\"policy\": {\"x509_props\": {\"subject\": \"CN=x\"}, \"issuer\": {\"name\": "
        "\"DigiCert\"}}}",
        400, "BadParameter", "DigiCert");
    bad("POST", "/certificates/fresh/create", "{}", 400, "BadParameter", "policy");
    bad("GET", "/certificates?api-version=1999-01-01", NULL, 400, "BadParameter", "1999-01-01");
    bad("GET", "/certificates?maxresults=5", NULL, 400, "BadParameter", "api-version");
    /* Names: empty, 128 characters, "../x", non-ASCII. */
    bad("POST", "/certificates//create", create_body, 400, "BadParameter", "empty");
    memset(name128, 'a', 128);
    name128[128] = '\0';
    snprintf(path, sizeof path, "/certificates/%s/create", name128);
    bad("POST", path, create_body, 400, "BadParameter", "invalid");
    bad("POST", "/certificates/%2E%2E%2Fx/create", create_body, 400, "BadParameter", "../x");
    bad("POST", "/certificates/caf%C3%A9/create", create_body, 400, "BadParameter", "invalid");
    bad("GET", "/secrets/%2E%2E%2Fx", NULL, 400, "BadParameter", "invalid");
    /* Merge input. */
    bad("POST", "/certificates/steady/pending/merge", "{\"x5c\": [\"@@@@\"]}", 400, "BadParameter",
        "base64");
    bad("POST", "/certificates/steady/pending/merge", "{\"x5c\": [\"aGVsbG8=\"]}", 400,
        "BadParameter", "DER");
    bad("POST", "/certificates/steady/pending/merge", "{\"x5c\": \"abc\"}", 400, "BadParameter",
        "x5c");
    bad("POST", "/certificates/steady/pending/merge", "{\"x5c\": [42]}", 400, "BadParameter",
        "x5c");
    bad("PATCH", "/certificates/steady/pending", "{\"cancellation_requested\": \"yes\"}", 400,
        "BadParameter", "cancellation_requested");
    bad("POST", "/certificates/fresh/import", "{\"value\": \"!!!\"}", 400, "BadParameter",
        "base64");
    /* Oversized body: 413 before anything is parsed. */
    big = malloc(KVFX_MAX_BODY + 1024);
    assert_non_null(big);
    memset(big, ' ', KVFX_MAX_BODY + 1023);
    big[0] = '{';
    big[KVFX_MAX_BODY + 1022] = '}';
    big[KVFX_MAX_BODY + 1023] = '\0';
    bad("POST", "/certificates/fresh/create", big, 413, "RequestBodyTooLarge", NULL);
    free(big);

    take(&after);
    assert_int_equal(before.count, after.count);
    assert_string_equal(before.csr, after.csr);
    kv_call("reader", "GET", "/certificates/fresh", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
}

static void test_api_versions(void **state)
{
    static const char *const ok[] = {"7.0", "7.4", "7.5", "7.6", "2025-07-01"};
    struct kvr r;
    char path[128];

    (void)state;
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(path, sizeof path, "/certificates?api-version=%s", ok[i]);
        kv_call("reader", "GET", path, NULL, &r);
        kv_expect(&r, 200);
        kvr_free(&r);
    }
    /* The name encoded, as the JS SDK sends it. */
    kv_call("reader", "GET", "/certificates?api%2Dversion=7.5", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(clc_http_resp_header(&r.resp, "Content-Type"),
                        "application/json; charset=utf-8");
    kvr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_challenge_has_no_side_effects),
        cmocka_unit_test(test_rbac),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_api_versions),
    };
    return cmocka_run_group_tests(tests, kvfx_setup, kvfx_teardown);
}
