/* The emulated Key Vault's plain secrets at the wire level: Set Secret (PUT
 * /secrets/{name}) with its versions and GET of each, the roles (Secrets
 * Officer sets; Secrets User only reads), a certificate's name refused as
 * Azure refuses it (403 SecretManagedByKeyVault, 409 while soft-deleted),
 * malformed and oversized bodies, and persistence, reset and state dump. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/json.h"
#include "test_emu_keyvault_fixture.h"

/* The roles an application would get; "officer" sets secrets. */
static const char identities[] =
    ", \"identities\": ["
    "{\"name\": \"renewer\", \"roles\": [\"Key Vault Certificates Officer\"]},"
    "{\"name\": \"sync\", \"roles\": [\"Key Vault Secrets User\"]},"
    "{\"name\": \"reader\", \"roles\": [\"Key Vault Reader\"]},"
    "{\"name\": \"officer\", \"roles\": [\"Key Vault Secrets Officer\"]},"
    "{\"name\": \"admin\", \"roles\": [\"admin\"]}]";

static int setup(void **state)
{
    kvfx_config_extra = identities;
    return kvfx_setup(state);
}

static const char *inner(const struct kvr *r)
{
    const char *c = kv_str(r->json, "error.innererror.code");
    return c ? c : "";
}

/* The version id at the end of a secret id. */
static char *version_of(const struct kvr *r)
{
    const char *id = kv_str(r->json, "id");
    assert_non_null(id);
    const char *slash = strrchr(id, '/');
    assert_non_null(slash);
    assert_int_equal(strlen(slash + 1), 32);
    return strdup(slash + 1);
}

static void expect_absent(const char *name)
{
    struct kvr r;
    char path[300];
    snprintf(path, sizeof path, "/secrets/%s", name);
    kv_call("sync", "GET", path, NULL, &r);
    kv_expect(&r, 404);
    assert_string_equal(kv_errcode(&r), "SecretNotFound");
    kvr_free(&r);
}

/* Versions of plain secret name in the state dump; -1 when absent. */
static int versions_in_state(const char *name)
{
    struct kvr r;
    const cJSON *it, *o;
    int n = -1;

    kv_admin("GET", "/control/state", NULL, &r);
    kv_expect(&r, 200);
    o = cJSON_GetObjectItemCaseSensitive(r.json, "keyvault-secrets");
    o = cJSON_GetObjectItemCaseSensitive(o, "certlc");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(o, "secrets"))
    {
        if (strcmp(kv_str(it, "name"), name) == 0)
            n = (int)kv_int(it, "versions");
    }
    kvr_free(&r);
    return n;
}

static void test_set_versions_and_get(void **state)
{
    struct kvr r;
    char path[200];
    char *v1, *v2;

    (void)state;
    kv_call("officer", "PUT", "/secrets/db-password",
            "{\"value\": \"first value\", \"contentType\": \"text/plain\","
            " \"tags\": {\"env\": \"test\"}}",
            &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "value"), "first value");
    assert_string_equal(kv_str(r.json, "contentType"), "text/plain");
    assert_string_equal(kv_str(r.json, "tags.env"), "test");
    assert_non_null(strstr(kv_str(r.json, "id"), "/secrets/db-password/"));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r.json, "attributes"), "enabled")));
    assert_int_equal(kv_int(r.json, "attributes.created"), kv_int(r.json, "attributes.updated"));
    assert_string_equal(kv_str(r.json, "attributes.recoveryLevel"), "Recoverable+Purgeable");
    /* Not a certificate's secret: no kid, no managed. */
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "kid"));
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "managed"));
    v1 = version_of(&r);
    kvr_free(&r);

    /* A second set is a second version; the latest is served. */
    kv_call("officer", "PUT", "/secrets/db-password", "{\"value\": \"second value\"}", &r);
    kv_expect(&r, 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "contentType"));
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "tags"));
    v2 = version_of(&r);
    assert_string_not_equal(v1, v2);
    kvr_free(&r);

    kv_call("sync", "GET", "/secrets/db-password/", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "value"), "second value");
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "kid"));
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "managed"));
    kvr_free(&r);
    snprintf(path, sizeof path, "/secrets/db-password/%s", v1);
    kv_call("sync", "GET", path, NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "value"), "first value");
    assert_string_equal(kv_str(r.json, "contentType"), "text/plain");
    kvr_free(&r);
    /* Names are case-insensitive; ids keep the name as first given. The
     * Secrets Officer reads too. */
    kv_call("officer", "GET", "/secrets/DB-Password", NULL, &r);
    kv_expect(&r, 200);
    assert_non_null(strstr(kv_str(r.json, "id"), "/secrets/db-password/"));
    assert_non_null(strstr(kv_str(r.json, "id"), v2));
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/db-password/00000000000000000000000000000000", NULL, &r);
    kv_expect(&r, 404);
    assert_string_equal(kv_errcode(&r), "SecretNotFound");
    kvr_free(&r);

    /* A disabled version is not served. */
    kv_call("officer", "PUT", "/secrets/off",
            "{\"value\": \"x\", \"attributes\": {\"enabled\": false, \"exp\": 4102444800}}", &r);
    kv_expect(&r, 200);
    assert_int_equal(kv_int(r.json, "attributes.exp"), 4102444800);
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/off", NULL, &r);
    kv_expect(&r, 403);
    assert_string_equal(inner(&r), "SecretDisabled");
    kvr_free(&r);
    free(v1);
    free(v2);
}

static void test_roles(void **state)
{
    static const char *const refused[] = {"renewer", "sync", "reader"};
    struct kvr r;

    (void)state;
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        kv_call(refused[i], "PUT", "/secrets/not-mine", "{\"value\": \"v\"}", &r);
        kv_expect(&r, 403);
        assert_string_equal(inner(&r), "ForbiddenByRbac");
        assert_non_null(strstr(kv_str(r.json, "error.message"), "secrets/setSecret/action"));
        kvr_free(&r);
    }
    kv_call(NULL, "PUT", "/secrets/not-mine", "{\"value\": \"v\"}", &r);
    kv_expect(&r, 401);
    kvr_free(&r);
    expect_absent("not-mine");
    /* Secrets Officer is about secrets only. */
    kv_call("officer", "GET", "/certificates", NULL, &r);
    kv_expect(&r, 403);
    kvr_free(&r);
    kv_call("admin", "PUT", "/secrets/by-admin", "{\"value\": \"v\"}", &r);
    kv_expect(&r, 200);
    kvr_free(&r);
}

static void test_certificate_names(void **state)
{
    struct kvr r;
    char *ver = kv_issue("certsec", NULL);

    (void)state;
    kv_call("officer", "PUT", "/secrets/certsec", "{\"value\": \"garbage\"}", &r);
    kv_expect(&r, 403);
    assert_string_equal(kv_errcode(&r), "Forbidden");
    assert_string_equal(inner(&r), "SecretManagedByKeyVault");
    kvr_free(&r);
    kv_call("admin", "PUT", "/secrets/CERTSEC", "{\"value\": \"garbage\"}", &r);
    kv_expect(&r, 403);
    assert_string_equal(inner(&r), "SecretManagedByKeyVault");
    kvr_free(&r);
    /* The certificate's secret is unchanged. */
    kv_call("sync", "GET", "/secrets/certsec", NULL, &r);
    kv_expect(&r, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "managed")));
    assert_non_null(strstr(kv_str(r.json, "id"), ver));
    assert_string_not_equal(kv_str(r.json, "value"), "garbage");
    kvr_free(&r);

    /* Soft-deleted, the name is still taken. */
    kv_call("renewer", "DELETE", "/certificates/certsec", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("officer", "PUT", "/secrets/certsec", "{\"value\": \"garbage\"}", &r);
    kv_expect(&r, 409);
    assert_string_equal(kv_errcode(&r), "Conflict");
    assert_string_equal(inner(&r), "ObjectIsDeletedButRecoverable");
    kvr_free(&r);
    expect_absent("certsec");
    /* Purged, the name is free. */
    kv_call("renewer", "DELETE", "/deletedcertificates/certsec", NULL, &r);
    kv_expect(&r, 204);
    kvr_free(&r);
    kv_call("officer", "PUT", "/secrets/certsec", "{\"value\": \"now plain\"}", &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    free(ver);
}

static void put_expect(const char *name, const char *body, int status, const char *code)
{
    struct kvr r;
    char path[300];
    snprintf(path, sizeof path, "/secrets/%s", name);
    kv_call("officer", "PUT", path, body, &r);
    kv_expect(&r, status);
    if (code != NULL)
        assert_string_equal(kv_errcode(&r), code);
    kvr_free(&r);
}

static void test_bad_bodies(void **state)
{
    char *big, ct[300];
    struct kvr r;

    (void)state;
    put_expect("bad", "{\"value\": ", 400, "BadParameter");
    put_expect("bad", "[\"value\"]", 400, "BadParameter");
    put_expect("bad", "{}", 400, "BadParameter");
    put_expect("bad", "{\"value\": 42}", 400, "BadParameter");
    put_expect("bad", "{\"value\": \"v\", \"contentType\": 7}", 400, "BadParameter");
    put_expect("bad", "{\"value\": \"v\", \"tags\": {\"n\": 1}}", 400, "BadParameter");
    put_expect("bad", "{\"value\": \"v\", \"attributes\": {\"enabled\": \"yes\"}}", 400,
               "BadParameter");
    memset(ct, 'a', 256);
    ct[256] = '\0';
    big = malloc(400);
    snprintf(big, 400, "{\"value\": \"v\", \"contentType\": \"%s\"}", ct);
    put_expect("bad", big, 400, "BadParameter");
    free(big);
    kv_call("officer", "PUT", "/secrets/bad_name", "{\"value\": \"v\"}", &r);
    kv_expect(&r, 400);
    kvr_free(&r);
    kv_call("officer", "PUT", "/secrets/bad?api-version=1.0", "{\"value\": \"v\"}", &r);
    kv_expect(&r, 400);
    kvr_free(&r);
    expect_absent("bad");

    /* 25 KB is Azure's limit for a value; the body limit is larger. */
    big = malloc(KVFX_MAX_BODY + 64);
    memcpy(big, "{\"value\": \"", 11);
    memset(big + 11, 'x', 25600);
    memcpy(big + 11 + 25600, "\"}", 3);
    put_expect("big", big, 200, NULL);
    memset(big + 11, 'x', 25601);
    memcpy(big + 11 + 25601, "\"}", 3);
    kv_call("officer", "PUT", "/secrets/big", big, &r);
    kv_expect(&r, 400);
    assert_non_null(strstr(kv_str(r.json, "error.message"), "25600"));
    kvr_free(&r);
    memset(big + 11, 'x', KVFX_MAX_BODY);
    memcpy(big + 11 + KVFX_MAX_BODY, "\"}", 3);
    kv_call("officer", "PUT", "/secrets/big", big, &r);
    kv_expect(&r, 413);
    kvr_free(&r);
    free(big);
    /* Only the first, valid one was stored. */
    assert_int_equal(versions_in_state("big"), 1);
}

static void test_persistence_and_reset(void **state)
{
    struct kvr r;
    char path[600], vpath[200];
    struct stat sb;
    char *v1, *v2;

    (void)state;
    kv_call("officer", "PUT", "/secrets/kept",
            "{\"value\": \"one\", \"contentType\": \"text/plain\"}", &r);
    kv_expect(&r, 200);
    v1 = version_of(&r);
    kvr_free(&r);
    kv_call("officer", "PUT", "/secrets/kept", "{\"value\": \"two\", \"tags\": {\"a\": \"b\"}}",
            &r);
    kv_expect(&r, 200);
    v2 = version_of(&r);
    kvr_free(&r);
    put_expect("kept", "{\"value\": \"three\"}", 200, NULL);
    snprintf(path, sizeof path, "%s/keyvault/certlc/secrets/kept.json", kv.data_dir);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(versions_in_state("kept"), 3);

    assert_int_equal(kvfx_restart(), 0);

    /* Every version came back, with its attributes. */
    assert_int_equal(versions_in_state("kept"), 3);
    kv_call("sync", "GET", "/secrets/kept", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "value"), "three");
    kvr_free(&r);
    snprintf(vpath, sizeof vpath, "/secrets/kept/%s", v1);
    kv_call("sync", "GET", vpath, NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "value"), "one");
    assert_string_equal(kv_str(r.json, "contentType"), "text/plain");
    kvr_free(&r);
    snprintf(vpath, sizeof vpath, "/secrets/kept/%s", v2);
    kv_call("sync", "GET", vpath, NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "tags.a"), "b");
    kvr_free(&r);
    put_expect("kept", "{\"value\": \"four\"}", 200, NULL);
    assert_int_equal(versions_in_state("kept"), 4);

    kv_admin("POST", "/control/reset", NULL, &r);
    kv_expect(&r, 204);
    kvr_free(&r);
    expect_absent("kept");
    assert_int_not_equal(stat(path, &sb), 0);
    assert_int_equal(versions_in_state("kept"), -1);
    kv_admin("GET", "/control/state", NULL, &r);
    kv_expect(&r, 200);
    assert_int_equal(kv_int(r.json, "keyvault-secrets.certlc.count"), 0);
    kvr_free(&r);
    free(v1);
    free(v2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_versions_and_get),  cmocka_unit_test(test_roles),
        cmocka_unit_test(test_certificate_names),     cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_persistence_and_reset),
    };
    return cmocka_run_group_tests(tests, setup, kvfx_teardown);
}
