/* Tests for core/config: schema validation of the file (unknown keys, wrong
 * types, maps, inline secrets), environment overrides by type, getters with
 * ranges, enums and required keys, origins, and secrets from file and env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/file.h"

#define P "CLCT_" /* env prefix used by these tests */

static const struct clc_config_key schema[] = {
    {"log.level", CLC_CFG_STR, "level"},
    {"http.timeout_ms", CLC_CFG_INT, "timeout"},
    {"http.verify", CLC_CFG_BOOL, "verify TLS"},
    {"auth.method", CLC_CFG_STR, "method"},
    {"auth.tenant", CLC_CFG_STR, "tenant"},
    {"auth.client_secret_file", CLC_CFG_STR, "secret file"},
    {"auth.client_secret_env", CLC_CFG_STR, "secret variable"},
    {"notify.recipients", CLC_CFG_ARR, "addresses"},
    {"extra", CLC_CFG_OBJ, "free-form"},
    {"tags.*", CLC_CFG_STR, "string map"},
    {"cas.*", CLC_CFG_OBJ, "CA definitions"},
    {"a.b.c", CLC_CFG_INT, "deep"},
};
#define NSCHEMA (sizeof schema / sizeof schema[0])

static const char *env_vars[] = {
    P "LOG__LEVEL",
    P "HTTP__TIMEOUT_MS",
    P "HTTP__VERIFY",
    P "AUTH__METHOD",
    P "AUTH__TENANT",
    P "AUTH__CLIENT_SECRET_FILE",
    P "AUTH__CLIENT_SECRET_ENV",
    P "NOTIFY__RECIPIENTS",
    P "EXTRA",
    P "A__B__C",
    "CLCT_THE_SECRET",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof env_vars / sizeof env_vars[0]; i++)
        unsetenv(env_vars[i]);
    return 0;
}

static struct clc_config *load_ok(const char *text)
{
    struct clc_config *c = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    enum clc_err rc =
        clc_config_load_text(text, strlen(text), "file /x.json", P, schema, NSCHEMA, &c, &ei);
    if (rc != CLC_OK)
        fail_msg("load failed: %s", ei.msg);
    return c;
}

static void expect_load_fail(const char *text, enum clc_err want, const char *msg)
{
    struct clc_config *c = (struct clc_config *)0x1;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    enum clc_err rc =
        clc_config_load_text(text, strlen(text), "file /x.json", P, schema, NSCHEMA, &c, &ei);
    if (rc != want)
        fail_msg("load of %s: got %s (%s)", text, clc_err_name(rc), ei.msg);
    assert_null(c);
    assert_string_equal(ei.msg, msg);
}

static const char *good =
    "{\"log\":{\"level\":\"debug\"},\"http\":{\"timeout_ms\":30000,\"verify\":false},"
    "\"auth\":{\"method\":\"certificate\"},\"notify\":{\"recipients\":[\"a@x\",\"b@x\"]},"
    "\"extra\":{\"anything\":[1,{\"goes\":null}]},\"tags\":{\"team\":\"pki\",\"env\":\"prod\"},"
    "\"cas\":{\"corp\":{\"url\":\"https://ca\",\"nested\":{\"x\":1}}},"
    "\"a\":{\"b\":{\"c\":7}}}";

static void test_file_values(void **state)
{
    (void)state;
    struct clc_config *c = load_ok(good);
    struct clc_errinfo ei;
    const char *s = NULL;
    int64_t i = 0;
    int b = -1;
    clc_errinfo_clear(&ei);

    assert_int_equal(clc_config_str(c, "log.level", "info", &s, &ei), CLC_OK);
    assert_string_equal(s, "debug");
    assert_int_equal(clc_config_int(c, "http.timeout_ms", 1, 1, 600000, &i, &ei), CLC_OK);
    assert_int_equal(i, 30000);
    assert_int_equal(clc_config_bool(c, "http.verify", 1, &b, &ei), CLC_OK);
    assert_int_equal(b, 0);
    assert_int_equal(clc_config_int(c, "a.b.c", 0, 0, 10, &i, &ei), CLC_OK);
    assert_int_equal(i, 7);
    assert_int_equal(clc_config_str(c, "tags.team", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "pki");
    assert_int_equal(clc_config_str(c, "tags.none", "dflt", &s, &ei), CLC_OK);
    assert_string_equal(s, "dflt");
    assert_int_equal(clc_config_str(c, "cas.corp.url", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "https://ca");

    /* Absent keys give the defaults. */
    assert_int_equal(clc_config_str(c, "auth.tenant", "t0", &s, &ei), CLC_OK);
    assert_string_equal(s, "t0");
    assert_int_equal(clc_config_str(c, "auth.tenant", NULL, &s, &ei), CLC_OK);
    assert_null(s);

    /* Subtrees. */
    const cJSON *n = clc_config_node(c, "notify.recipients");
    assert_true(cJSON_IsArray(n));
    assert_int_equal(cJSON_GetArraySize(n), 2);
    assert_true(cJSON_IsObject(clc_config_node(c, "extra")));
    assert_true(cJSON_IsObject(clc_config_node(c, "cas.corp")));
    assert_true(cJSON_IsObject(clc_config_node(c, "auth")));
    assert_null(clc_config_node(c, "auth.tenant"));
    assert_null(clc_config_node(c, "not.declared"));

    assert_string_equal(clc_config_origin(c, "log.level"), "file /x.json");
    assert_string_equal(clc_config_origin(c, "auth.tenant"), "default");
    clc_config_free(c);
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_load_fail("{\"auth\":{\"methd\":\"x\"}}", CLC_ERR_CONFIG,
                     "config key 'auth.methd' is not a known key (file /x.json)");
    expect_load_fail("{\"bogus\":1}", CLC_ERR_CONFIG,
                     "config key 'bogus' is not a known key (file /x.json)");
    expect_load_fail("{\"a\":{\"b\":{\"c\":1,\"d\":2}}}", CLC_ERR_CONFIG,
                     "config key 'a.b.d' is not a known key (file /x.json)");
    expect_load_fail("{\"http\":{\"timeout_ms\":\"30\"}}", CLC_ERR_CONFIG,
                     "config key 'http.timeout_ms': expected integer, got string (file /x.json)");
    expect_load_fail("{\"http\":{\"timeout_ms\":1.5}}", CLC_ERR_CONFIG,
                     "config key 'http.timeout_ms': expected integer, got number (file /x.json)");
    expect_load_fail("{\"http\":{\"verify\":\"yes\"}}", CLC_ERR_CONFIG,
                     "config key 'http.verify': expected boolean, got string (file /x.json)");
    expect_load_fail("{\"log\":{\"level\":null}}", CLC_ERR_CONFIG,
                     "config key 'log.level': expected string, got null (file /x.json)");
    expect_load_fail("{\"notify\":{\"recipients\":\"a@x\"}}", CLC_ERR_CONFIG,
                     "config key 'notify.recipients': expected array, got string (file /x.json)");
    expect_load_fail("{\"extra\":[]}", CLC_ERR_CONFIG,
                     "config key 'extra': expected object, got array (file /x.json)");
    expect_load_fail("{\"auth\":\"secret\"}", CLC_ERR_CONFIG,
                     "config key 'auth': expected object, got string (file /x.json)");
    expect_load_fail("{\"tags\":{\"ok\":\"x\",\"n\":1}}", CLC_ERR_CONFIG,
                     "config key 'tags.n': expected string, got number (file /x.json)");
    expect_load_fail("{\"cas\":{\"corp\":\"https://ca\"}}", CLC_ERR_CONFIG,
                     "config key 'cas.corp': expected object, got string (file /x.json)");
    expect_load_fail("{\"log\":{\"level\":\"a\",\"level\":\"b\"}}", CLC_ERR_CONFIG,
                     "config key 'log.level' appears twice (file /x.json)");
    /* An inline secret is refused with the way to do it, and not echoed. */
    expect_load_fail("{\"auth\":{\"client_secret\":\"p4ss\"}}", CLC_ERR_CONFIG,
                     "config key 'auth.client_secret': secrets are not accepted inline; set "
                     "'auth.client_secret_file' or 'auth.client_secret_env' (file /x.json)");
    expect_load_fail("[1]", CLC_ERR_CONFIG,
                     "config (file /x.json): expected a JSON object, got array");
    expect_load_fail("{\"log\":{\"level\":\"x\"},}", CLC_ERR_CONFIG,
                     "config (file /x.json): JSON: syntax error near byte 22");
    expect_load_fail("", CLC_ERR_CONFIG, "config (file /x.json): JSON: empty document");
}

static void test_load_file_and_env_only(void **state)
{
    (void)state;
    char dir[512], path[600], want[800];
    snprintf(dir, sizeof dir, "%s/tmp-core-config-XXXXXX", CLC_TEST_BINDIR);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/certlc.json", dir);
    const char *text = "{\"auth\":{\"tenant\":\"contoso\"}}";
    assert_int_equal(clc_file_write_atomic(path, text, strlen(text), 0600, NULL), CLC_OK);

    struct clc_config *c = NULL;
    struct clc_errinfo ei;
    const char *s = NULL;
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_config_load(path, P, schema, NSCHEMA, &c, &ei), CLC_OK);
    assert_int_equal(clc_config_str(c, "auth.tenant", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "contoso");
    snprintf(want, sizeof want, "file %s", path);
    assert_string_equal(clc_config_origin(c, "auth.tenant"), want);
    clc_config_free(c);

    /* Unknown key message names this file. */
    const char *bad = "{\"auth\":{\"tennant\":\"x\"}}";
    assert_int_equal(clc_file_write_atomic(path, bad, strlen(bad), 0600, NULL), CLC_OK);
    assert_int_equal(clc_config_load(path, P, schema, NSCHEMA, &c, &ei), CLC_ERR_CONFIG);
    assert_null(c);
    snprintf(want, sizeof want, "config key 'auth.tennant' is not a known key (file %s)", path);
    assert_string_equal(ei.msg, want);
    unlink(path);

    /* Missing file. */
    assert_int_equal(clc_config_load(path, P, schema, NSCHEMA, &c, &ei), CLC_ERR_CONFIG);
    snprintf(want, sizeof want, "config: reading %s: No such file or directory", path);
    assert_string_equal(ei.msg, want);
    rmdir(dir);

    /* No file at all: environment only. */
    setenv(P "AUTH__TENANT", "from-env", 1);
    assert_int_equal(clc_config_load(NULL, P, schema, NSCHEMA, &c, &ei), CLC_OK);
    assert_int_equal(clc_config_str(c, "auth.tenant", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "from-env");
    assert_string_equal(clc_config_origin(c, "auth.tenant"), "environment " P "AUTH__TENANT");
    clc_config_free(c);
    /* A NULL prefix disables overrides. */
    assert_int_equal(clc_config_load(NULL, NULL, schema, NSCHEMA, &c, &ei), CLC_OK);
    assert_int_equal(clc_config_str(c, "auth.tenant", NULL, &s, &ei), CLC_OK);
    assert_null(s);
    clc_config_free(c);
}

static void test_env_overrides(void **state)
{
    (void)state;
    setenv(P "HTTP__TIMEOUT_MS", "5000", 1);
    setenv(P "HTTP__VERIFY", "YES", 1);
    setenv(P "LOG__LEVEL", "warn with spaces = ok", 1);
    setenv(P "NOTIFY__RECIPIENTS", "[\"ops@x\"]", 1);
    setenv(P "EXTRA", "{\"k\":{\"v\":1}}", 1);
    setenv(P "A__B__C", "-3", 1);
    setenv(P "AUTH__TENANT", "", 1); /* empty: left alone */
    struct clc_config *c = load_ok("{\"http\":{\"timeout_ms\":30000,\"verify\":false},"
                                   "\"auth\":{\"tenant\":\"file-tenant\"}}");
    struct clc_errinfo ei;
    const char *s = NULL;
    int64_t i = 0;
    int b = 0;
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_config_int(c, "http.timeout_ms", 1, 1, 600000, &i, &ei), CLC_OK);
    assert_int_equal(i, 5000);
    assert_string_equal(clc_config_origin(c, "http.timeout_ms"),
                        "environment " P "HTTP__TIMEOUT_MS");
    assert_int_equal(clc_config_bool(c, "http.verify", 0, &b, &ei), CLC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(clc_config_str(c, "log.level", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "warn with spaces = ok");
    assert_int_equal(cJSON_GetArraySize(clc_config_node(c, "notify.recipients")), 1);
    assert_string_equal(clc_config_origin(c, "extra.k.v"), "environment " P "EXTRA");
    assert_int_equal(clc_config_int(c, "a.b.c", 0, -10, 10, &i, &ei), CLC_OK);
    assert_int_equal(i, -3);
    assert_int_equal(clc_config_str(c, "auth.tenant", NULL, &s, &ei), CLC_OK);
    assert_string_equal(s, "file-tenant");
    assert_string_equal(clc_config_origin(c, "auth.tenant"), "file /x.json");
    clc_config_free(c);

    const char *bools[][2] = {{"true", "1"}, {"1", "1"}, {"no", "0"}, {"False", "0"}, {"0", "0"}};
    for (size_t k = 0; k < 5; k++) {
        setenv(P "HTTP__VERIFY", bools[k][0], 1);
        c = load_ok("{}");
        assert_int_equal(clc_config_bool(c, "http.verify", 7, &b, &ei), CLC_OK);
        assert_int_equal(b, bools[k][1][0] - '0');
        clc_config_free(c);
    }
}

static void expect_env_fail(const char *var, const char *val, const char *msg)
{
    clear_env(NULL);
    setenv(var, val, 1);
    expect_load_fail("{}", CLC_ERR_CONFIG, msg);
    unsetenv(var);
}

static void test_env_errors(void **state)
{
    (void)state;
    expect_env_fail(P "HTTP__TIMEOUT_MS", "5s",
                    "config key 'http.timeout_ms': expected integer (decimal, within +-2^53) "
                    "(environment " P "HTTP__TIMEOUT_MS)");
    expect_env_fail(P "HTTP__TIMEOUT_MS", " 5",
                    "config key 'http.timeout_ms': expected integer (decimal, within +-2^53) "
                    "(environment " P "HTTP__TIMEOUT_MS)");
    expect_env_fail(P "HTTP__TIMEOUT_MS", "99999999999999999999",
                    "config key 'http.timeout_ms': expected integer (decimal, within +-2^53) "
                    "(environment " P "HTTP__TIMEOUT_MS)");
    expect_env_fail(P "HTTP__VERIFY", "maybe",
                    "config key 'http.verify': expected boolean (true/false/1/0/yes/no) "
                    "(environment " P "HTTP__VERIFY)");
    expect_env_fail(P "NOTIFY__RECIPIENTS", "{\"a\":1}",
                    "config key 'notify.recipients': expected array, got object "
                    "(environment " P "NOTIFY__RECIPIENTS)");
    expect_env_fail(P "EXTRA", "{\"a\":",
                    "config key 'extra': JSON: syntax error near byte 5 "
                    "(environment " P "EXTRA)");
}

static void test_getter_checks(void **state)
{
    (void)state;
    struct clc_config *c = load_ok(good);
    struct clc_errinfo ei;
    const char *s = NULL;
    int64_t i = 0;
    int b = 0;
    int idx = -2;
    static const char *const methods[] = {"secret", "certificate", "managed_identity"};

    clc_errinfo_clear(&ei);
    assert_int_equal(clc_config_int(c, "http.timeout_ms", 1, 1, 1000, &i, &ei), CLC_ERR_CONFIG);
    assert_string_equal(
        ei.msg, "config key 'http.timeout_ms': 30000 is out of range [1, 1000] (file /x.json)");
    assert_int_equal(clc_config_int(c, "http.timeout_ms", 1, 30000, 30000, &i, &ei), CLC_OK);
    assert_int_equal(i, 30000);

    assert_int_equal(clc_config_enum(c, "auth.method", "secret", methods, 3, &idx, &ei), CLC_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(clc_config_enum(c, "auth.tenant", "managed_identity", methods, 3, &idx, &ei),
                     CLC_OK);
    assert_int_equal(idx, 2);
    assert_int_equal(clc_config_enum(c, "log.level", "secret", methods, 3, &idx, &ei),
                     CLC_ERR_CONFIG);
    assert_string_equal(ei.msg, "config key 'log.level': 'debug' is not one of: secret, "
                                "certificate, managed_identity (file /x.json)");
    assert_int_equal(clc_config_enum(c, "auth.tenant", "bogus", methods, 3, &idx, &ei),
                     CLC_ERR_INTERNAL);
    assert_int_equal(clc_config_enum(c, "auth.tenant", NULL, methods, 3, &idx, &ei),
                     CLC_ERR_CONFIG);
    assert_string_equal(ei.msg, "config key 'auth.tenant' is required");

    assert_int_equal(clc_config_str_req(c, "auth.method", &s, &ei), CLC_OK);
    assert_string_equal(s, "certificate");
    assert_int_equal(clc_config_str_req(c, "auth.tenant", &s, &ei), CLC_ERR_CONFIG);
    assert_string_equal(ei.msg, "config key 'auth.tenant' is required");

    /* Programming errors: undeclared key, intermediate, wrong getter type. */
    assert_int_equal(clc_config_str(c, "auth.nope", NULL, &s, &ei), CLC_ERR_INTERNAL);
    assert_string_equal(ei.msg, "config key 'auth.nope' is not in the schema");
    assert_int_equal(clc_config_str(c, "auth", NULL, &s, &ei), CLC_ERR_INTERNAL);
    assert_int_equal(clc_config_int(c, "log.level", 0, 0, 1, &i, &ei), CLC_ERR_INTERNAL);
    assert_string_equal(ei.msg, "config key 'log.level' is declared string, read as integer");
    assert_int_equal(clc_config_bool(c, "tags.team", 0, &b, &ei), CLC_ERR_CONFIG);
    assert_string_equal(ei.msg,
                        "config key 'tags.team': expected boolean, got string (file /x.json)");
    clc_config_free(c);
}

static void test_secrets(void **state)
{
    (void)state;
    char dir[512], path[600], text[1024];
    snprintf(dir, sizeof dir, "%s/tmp-core-config-XXXXXX", CLC_TEST_BINDIR);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/secret", dir);
    assert_int_equal(clc_file_write_atomic(path, "file-s3cret\n", 12, 0600, NULL), CLC_OK);

    struct clc_secret *sec = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);

    /* From a file; the file wins over the variable. */
    setenv("CLCT_THE_SECRET", "env-s3cret", 1);
    snprintf(text, sizeof text,
             "{\"auth\":{\"client_secret_file\":\"%s\",\"client_secret_env\":\"CLCT_THE_SECRET\"}}",
             path);
    struct clc_config *c = load_ok(text);
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(sec), "file-s3cret");
    clc_secret_free(sec);
    clc_config_free(c);

    /* From the variable the config names. */
    c = load_ok("{\"auth\":{\"client_secret_env\":\"CLCT_THE_SECRET\"}}");
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(sec), "env-s3cret");
    clc_secret_free(sec);
    /* The named variable unset: an error naming key and variable. */
    unsetenv("CLCT_THE_SECRET");
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_ERR_CONFIG);
    assert_null(sec);
    assert_string_equal(ei.msg, "config key 'auth.client_secret_env' (file /x.json): environment "
                                "variable CLCT_THE_SECRET is not set");
    clc_config_free(c);

    /* The file path itself can come from the environment. */
    setenv(P "AUTH__CLIENT_SECRET_FILE", path, 1);
    c = load_ok("{}");
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(sec), "file-s3cret");
    clc_secret_free(sec);
    clc_config_free(c);
    unsetenv(P "AUTH__CLIENT_SECRET_FILE");

    /* An unreadable file: the key and path are named, the content never. */
    unlink(path);
    snprintf(text, sizeof text, "{\"auth\":{\"client_secret_file\":\"%s\"}}", path);
    c = load_ok(text);
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_ERR_CONFIG);
    char want[1024];
    snprintf(want, sizeof want,
             "config key 'auth.client_secret_file' (file /x.json): secret file %s: No such file "
             "or directory",
             path);
    assert_string_equal(ei.msg, want);
    clc_config_free(c);
    rmdir(dir);

    /* Neither set. */
    c = load_ok("{}");
    assert_int_equal(clc_config_secret(c, "auth.client_secret", &sec, &ei), CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.msg, "config: neither 'auth.client_secret_file' nor "
                                "'auth.client_secret_env' is set");
    /* A secret whose _file/_env keys are not declared is a bug. */
    assert_int_equal(clc_config_secret(c, "auth.password", &sec, &ei), CLC_ERR_INTERNAL);
    clc_config_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_values, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_file_errors, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_load_file_and_env_only, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_env_overrides, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_env_errors, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_getter_checks, clear_env, clear_env),
        cmocka_unit_test_setup_teardown(test_secrets, clear_env, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
