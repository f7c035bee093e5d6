/* End to end through the certlc binary: an emulator runs in this process,
 * certlc runs as a child with a configuration pointing at it, and the tests
 * check exit codes, what it printed, and what it must never print. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/file.h"
#include "emulator/emu.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

static struct emu *emu;
static cJSON *endpoints;
static char dir[] = "/tmp/certlc-test-cli.XXXXXX";
static char renewer_secret_file[256];

static const char *ep_str(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static void write_file(const char *path, const char *text)
{
    assert_int_equal(clc_file_write_atomic(path, text, strlen(text), 0600, NULL), CLC_OK);
}

/* Writes a certlc config for the client secret flow; returns its path. */
static const char *config_client_secret(const char *name, const char *client_id,
                                        const char *secret_file)
{
    static char path[512];
    cJSON *c = cJSON_CreateObject(), *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON *http = cJSON_AddObjectToObject(c, "http");
    cJSON_AddStringToObject(http, "ca_bundle", ep_str("ca_bundle", NULL, NULL));
    cJSON_AddStringToObject(auth, "method", "client_secret");
    cJSON_AddStringToObject(auth, "authority_host", ep_str("services", "entra", NULL));
    cJSON_AddStringToObject(auth, "tenant_id", ep_str("tenant", NULL, NULL));
    cJSON_AddStringToObject(auth, "client_id", client_id);
    cJSON_AddStringToObject(auth, "client_secret_file", secret_file);
    char *text = cJSON_Print(c);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    write_file(path, text);
    free(text);
    cJSON_Delete(c);
    return path;
}

static int setup(void **state)
{
    (void)state;
    struct emu_opts o = {0};
    struct clc_errinfo ei;
    char *text = NULL;

    if (!mkdtemp(dir))
        return -1;
    o.quiet = 1;
    if (emu_start(&o, &emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(emu, &text, &ei) != CLC_OK)
        return -1;
    endpoints = cJSON_Parse(text);
    free(text);
    if (!endpoints)
        return -1;
    snprintf(renewer_secret_file, sizeof renewer_secret_file, "%s/renewer.secret", dir);
    const char *secret = ep_str("identities", "renewer", "client_secret");
    if (!secret ||
        clc_file_write_atomic(renewer_secret_file, secret, strlen(secret), 0600, NULL) != CLC_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    cJSON_Delete(endpoints);
    emu_stop(emu);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void run(struct test_proc_result *r, char *const argv[], char *const envp[])
{
    assert_int_equal(test_proc_run(argv, envp, 30000, r), 0);
    assert_false(r->timed_out);
}

static void test_help_and_version(void **state)
{
    (void)state;
    static struct test_proc_result r;
    char *help[] = {CERTLC, "--help", NULL};
    run(&r, help, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "token"));
    assert_non_null(strstr(r.out, "exit status"));
    char *version[] = {CERTLC, "--version", NULL};
    run(&r, version, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "certlc "));
}

static void test_usage_errors(void **state)
{
    (void)state;
    static struct test_proc_result r;
    char *none[] = {CERTLC, NULL};
    run(&r, none, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "usage:"));
    char *unknown[] = {CERTLC, "frobnicate", NULL};
    run(&r, unknown, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "unknown command 'frobnicate'"));
    char *badopt[] = {CERTLC, "--no-such-option", "token", NULL};
    run(&r, badopt, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "unknown option"));
    char *badlevel[] = {CERTLC, "--log-level", "loud", "config", "keys", NULL};
    run(&r, badlevel, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "unknown log level 'loud'"));
}

/* Each malformed configuration is refused with its key or cause named. */
static void test_bad_configs(void **state)
{
    (void)state;
    static struct test_proc_result r;
    static const struct {
        const char *file;
        const char *expect;
    } cases[] = {
        {"unknown-key.json", "auth.methd"},   {"wrong-type.json", "http.timeout_ms"},
        {"truncated.json", "truncated.json"}, {"secret-inline.json", "auth.client_secret"},
        {"unknown-method.json", "kerberos"},  {"does-not-exist.json", "does-not-exist.json"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/config/%s", CLC_FIXTURES, cases[i].file);
        char *argv[] = {CERTLC, "--config", path, "config", "check", NULL};
        run(&r, argv, NULL);
        if (r.exit_code != 1 || !strstr(r.err, cases[i].expect))
            fail_msg("%s: exit %d, stderr: %s", cases[i].file, r.exit_code, r.err);
    }
}

static void test_config_keys_and_check(void **state)
{
    (void)state;
    static struct test_proc_result r;
    char *keys[] = {CERTLC, "config", "keys", NULL};
    run(&r, keys, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "auth.method"));
    assert_non_null(strstr(r.out, "http.ca_bundle"));
    const char *cfg = config_client_secret("check", ep_str("identities", "renewer", "client_id"),
                                           renewer_secret_file);
    char *check[] = {CERTLC, "--config", (char *)cfg, "config", "check", NULL};
    run(&r, check, NULL);
    assert_int_equal(r.exit_code, 0);
    assert_non_null(strstr(r.out, "client_secret"));
}

static void assert_no_secrets(const struct test_proc_result *r)
{
    const char *secret = ep_str("identities", "renewer", "client_secret");
    assert_null(strstr(r->out, secret));
    assert_null(strstr(r->err, secret));
    /* A raw JWT starts with the base64url of '{"': never printed. */
    assert_null(strstr(r->out, "eyJ"));
    assert_null(strstr(r->err, "eyJ"));
}

static void test_token_client_secret(void **state)
{
    (void)state;
    static struct test_proc_result r;
    const char *client_id = ep_str("identities", "renewer", "client_id");
    const char *cfg = config_client_secret("renewer", client_id, renewer_secret_file);
    char *argv[] = {CERTLC, "--config", (char *)cfg, "token", "--json", NULL};
    run(&r, argv, NULL);
    if (r.exit_code != 0)
        fail_msg("exit %d: %s", r.exit_code, r.err);
    assert_no_secrets(&r);
    cJSON *doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    cJSON *claims = cJSON_GetObjectItemCaseSensitive(doc, "claims");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(claims, "appid")->valuestring, client_id);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(claims, "aud")->valuestring,
                        "https://vault.azure.net");
    cJSON *roles = cJSON_GetObjectItemCaseSensitive(claims, "roles");
    int officer = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, roles) officer |=
        cJSON_IsString(it) && strcmp(it->valuestring, "Key Vault Certificates Officer") == 0;
    assert_true(officer);
    cJSON *hdr = cJSON_GetObjectItemCaseSensitive(doc, "header");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(hdr, "alg")->valuestring, "RS256");
    cJSON_Delete(doc);
}

static void test_token_wrong_secret(void **state)
{
    (void)state;
    static struct test_proc_result r;
    char bad[512];
    snprintf(bad, sizeof bad, "%s/wrong.secret", dir);
    write_file(bad, "not-the-right-secret-0123456789abcdef");
    const char *cfg =
        config_client_secret("wrong", ep_str("identities", "renewer", "client_id"), bad);
    char *argv[] = {CERTLC, "--config", (char *)cfg, "token", NULL};
    run(&r, argv, NULL);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "AADSTS7000215"));
    assert_null(strstr(r.err, "not-the-right-secret"));
    assert_no_secrets(&r);
}

/* Environment overrides win over the file: an unknown client id is refused. */
static void test_env_override(void **state)
{
    (void)state;
    static struct test_proc_result r;
    const char *cfg = config_client_secret("env", ep_str("identities", "renewer", "client_id"),
                                           renewer_secret_file);
    char *argv[] = {CERTLC, "--config", (char *)cfg, "token", NULL};
    char *envp[] = {"CERTLC_AUTH__CLIENT_ID=99999999-9999-9999-9999-999999999999", NULL};
    run(&r, argv, envp);
    assert_int_equal(r.exit_code, 1);
    assert_non_null(strstr(r.err, "AADSTS700016"));
}

/* The VM managed identity path: IMDS over plain http, no secret at all. */
static void test_token_managed_identity(void **state)
{
    (void)state;
    static struct test_proc_result r;
    char url[512], path[512];
    snprintf(url, sizeof url, "%s/metadata/identity/oauth2/token",
             ep_str("services", "imds", NULL));
    cJSON *c = cJSON_CreateObject(), *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON_AddStringToObject(auth, "method", "managed_identity");
    cJSON_AddStringToObject(auth, "imds_endpoint", url);
    char *text = cJSON_Print(c);
    snprintf(path, sizeof path, "%s/mi.json", dir);
    write_file(path, text);
    free(text);
    cJSON_Delete(c);
    char *argv[] = {CERTLC, "--config", path, "token", "--json", NULL};
    run(&r, argv, NULL);
    if (r.exit_code != 0)
        fail_msg("exit %d: %s", r.exit_code, r.err);
    cJSON *doc = cJSON_Parse(r.out);
    assert_non_null(doc);
    cJSON *claims = cJSON_GetObjectItemCaseSensitive(doc, "claims");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(claims, "appid")->valuestring,
                        ep_str("identities", "renewer", "client_id"));
    cJSON_Delete(doc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help_and_version),    cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_bad_configs),         cmocka_unit_test(test_config_keys_and_check),
        cmocka_unit_test(test_token_client_secret), cmocka_unit_test(test_token_wrong_secret),
        cmocka_unit_test(test_env_override),        cmocka_unit_test(test_token_managed_identity),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
