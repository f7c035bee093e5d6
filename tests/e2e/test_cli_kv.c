/* certlc kv through the binary: an emulator with two vaults runs in this
 * process (one seeded with certificates through the client library, one
 * empty), certlc runs as a child with a configuration naming both, and the
 * tests check exit codes (0/1/2), the table, and the --json output parsed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "azure/keyvault.h"
#include "core/file.h"
#include "emulator/emu.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

static struct emu *emu;
static cJSON *endpoints;
static char dir[] = "/tmp/certlc-test-cli-kv.XXXXXX";
static char cfg_reader[512], cfg_renewer[512], cfg_strict[512];

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* A certlc configuration for identity; verify = keyvault.verify_challenge_resource. */
static int write_config(const char *identity, int verify, char *path, size_t n)
{
    char secret_file[400];
    const char *secret = ep("identities", identity, "client_secret");
    snprintf(secret_file, sizeof secret_file, "%s/%s.secret", dir, identity);
    if (!secret || clc_file_write_atomic(secret_file, secret, strlen(secret), 0600, NULL) != CLC_OK)
        return -1;
    cJSON *c = cJSON_CreateObject();
    cJSON *http = cJSON_AddObjectToObject(c, "http");
    cJSON_AddStringToObject(http, "ca_bundle", ep("ca_bundle", NULL, NULL));
    cJSON *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON_AddStringToObject(auth, "method", "client_secret");
    cJSON_AddStringToObject(auth, "authority_host", ep("services", "entra", NULL));
    cJSON_AddStringToObject(auth, "tenant_id", ep("tenant", NULL, NULL));
    cJSON_AddStringToObject(auth, "client_id", ep("identities", identity, "client_id"));
    cJSON_AddStringToObject(auth, "client_secret_file", secret_file);
    cJSON *kv = cJSON_AddObjectToObject(c, "keyvault");
    cJSON *vaults = cJSON_AddObjectToObject(kv, "vaults");
    cJSON_AddStringToObject(vaults, "certlc", ep("services", "keyvault", "certlc"));
    cJSON_AddStringToObject(vaults, "empty", ep("services", "keyvault", "empty"));
    cJSON_AddStringToObject(kv, "default_vault", "certlc");
    cJSON_AddBoolToObject(kv, "verify_challenge_resource", verify);
    char *text = cJSON_Print(c);
    snprintf(path, n, "%s/%s-%d.json", dir, identity, verify);
    int rc = clc_file_write_atomic(path, text, strlen(text), 0600, NULL) == CLC_OK ? 0 : -1;
    free(text);
    cJSON_Delete(c);
    return rc;
}

/* Seeds vault certlc: "web" (two versions, tag Recipient), "api". */
static int seed(void)
{
    struct clc_auth *auth = NULL;
    struct clc_kv *kv = NULL;
    struct clc_secret *sec = NULL;
    struct clc_errinfo ei = {0};
    struct clc_http_opts ho = {.ca_bundle = ep("ca_bundle", NULL, NULL)};
    const char *s = ep("identities", "renewer", "client_secret");
    int rc = -1;

    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return -1;
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = ep("services", "entra", NULL),
                               .tenant_id = ep("tenant", NULL, NULL),
                               .client_id = ep("identities", "renewer", "client_id"),
                               .client_secret = sec};
    struct clc_kv_opts ko = {.vault_url = ep("services", "keyvault", "certlc"),
                             .disable_challenge_resource_verification = 1};
    if (clc_auth_new(&ao, &ho, &auth, &ei) != CLC_OK || clc_kv_new(&ko, &ho, auth, &kv, &ei))
        goto out;
    const char *names[] = {"web", "web", "api"};
    for (int i = 0; i < 3; i++) {
        struct clc_kv_policy p;
        struct clc_kv_tags tags = {0};
        struct clc_kv_operation op;
        char cn[64];
        clc_kv_policy_init(&p);
        snprintf(p.kty, sizeof p.kty, "EC");
        snprintf(cn, sizeof cn, "CN=%s.contoso.com", names[i]);
        p.subject = strdup(cn);
        p.issuer_name = strdup("Self");
        p.validity_months = 12;
        clc_kv_tags_set(&tags, "Recipient", "ops@contoso.com", &ei);
        struct clc_kv_create req = {.policy = &p, .tags = &tags};
        enum clc_err e = clc_kv_create(kv, names[i], &req, &op, &ei);
        clc_kv_operation_cleanup(&op);
        clc_kv_tags_cleanup(&tags);
        clc_kv_policy_cleanup(&p);
        if (e != CLC_OK)
            goto out;
    }
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "seed: %s\n", ei.msg);
    clc_kv_free(kv);
    clc_auth_free(auth);
    clc_secret_free(sec);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    char emu_cfg[400], *text = NULL;
    struct clc_errinfo ei = {0};

    if (!mkdtemp(dir))
        return -1;
    snprintf(emu_cfg, sizeof emu_cfg, "%s/emu.json", dir);
    const char *cfg = "{\"vaults\": [{\"name\": \"certlc\", \"port\": 0},"
                      " {\"name\": \"empty\", \"port\": 0}]}";
    if (clc_file_write_atomic(emu_cfg, cfg, strlen(cfg), 0600, NULL) != CLC_OK)
        return -1;
    struct emu_opts o = {.quiet = 1, .config_file = emu_cfg};
    if (emu_start(&o, &emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(emu, &text, &ei) != CLC_OK)
        return -1;
    endpoints = cJSON_Parse(text);
    free(text);
    if (!endpoints || !ep("services", "keyvault", "empty"))
        return -1;
    if (write_config("reader", 0, cfg_reader, sizeof cfg_reader) ||
        write_config("renewer", 0, cfg_renewer, sizeof cfg_renewer) ||
        write_config("reader", 1, cfg_strict, sizeof cfg_strict))
        return -1;
    return seed();
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

static struct test_proc_result R;

/* Runs certlc --config cfg kv ARGS...; returns the exit code. */
static int kv(const char *cfg, ...)
{
    char *argv[16] = {CERTLC, "--config", (char *)cfg, "kv"};
    int n = 4;
    va_list ap;
    va_start(ap, cfg);
    for (char *a; n < 15 && (a = va_arg(ap, char *)) != NULL;)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    assert_int_equal(test_proc_run(argv, NULL, 30000, &R), 0);
    assert_false(R.timed_out);
    return R.exit_code;
}

static cJSON *out_json(void)
{
    cJSON *j = cJSON_Parse(R.out);
    if (!j)
        fail_msg("not JSON: %s", R.out);
    return j;
}

static void test_list(void **state)
{
    (void)state;
    assert_int_equal(kv(cfg_reader, "list", "--json", NULL), 0);
    cJSON *j = out_json();
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 2);
    int web = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(it, "name");
        assert_true(cJSON_IsString(name));
        if (strcmp(name->valuestring, "web") == 0) {
            web = 1;
            const cJSON *tags = cJSON_GetObjectItemCaseSensitive(it, "tags");
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(tags, "Recipient")->valuestring,
                                "ops@contoso.com");
            assert_true(cJSON_GetObjectItemCaseSensitive(it, "exp")->valuedouble > 0);
        }
    }
    assert_true(web);
    cJSON_Delete(j);

    assert_int_equal(kv(cfg_reader, "list", NULL), 0);
    assert_non_null(strstr(R.out, "NAME"));
    assert_non_null(strstr(R.out, "EXPIRES"));
    assert_non_null(strstr(R.out, "Recipient=ops@contoso.com"));

    /* An empty vault: nothing found. */
    assert_int_equal(kv(cfg_reader, "--vault", "empty", "list", "--json", NULL), 2);
    j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), 0);
    cJSON_Delete(j);
    assert_int_equal(kv(cfg_reader, "list", "--vault", "nosuch", NULL), 1);
    assert_non_null(strstr(R.err, "'nosuch' is not configured"));
}

static void test_show_and_versions(void **state)
{
    (void)state;
    assert_int_equal(kv(cfg_reader, "show", "web", "--json", NULL), 0);
    cJSON *j = out_json();
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "x509");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "subject")->valuestring,
                        "CN=web.contoso.com");
    assert_int_equal(strlen(cJSON_GetObjectItemCaseSensitive(x, "sha1")->valuestring), 40);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "key_type")->valuestring, "EC");
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(j, "policy");
    assert_non_null(pol);
    char version[64];
    snprintf(version, sizeof version, "%s",
             cJSON_GetObjectItemCaseSensitive(j, "version")->valuestring);
    cJSON_Delete(j);

    assert_int_equal(kv(cfg_reader, "show", "web", "--version", version, NULL), 0);
    assert_non_null(strstr(R.out, version));
    assert_non_null(strstr(R.out, "CN=web.contoso.com"));

    assert_int_equal(kv(cfg_reader, "versions", "web", "--json", NULL), 0);
    j = out_json();
    assert_int_equal(cJSON_GetArraySize(j), 2);
    cJSON_Delete(j);
    assert_int_equal(kv(cfg_reader, "versions", "web", NULL), 0);
    assert_non_null(strstr(R.out, "VERSION"));

    /* Unknown certificate: nothing found, the service's code shown. */
    assert_int_equal(kv(cfg_reader, "show", "nope", NULL), 2);
    assert_non_null(strstr(R.err, "CertificateNotFound"));
    assert_non_null(strstr(R.err, "'nope'"));
    assert_int_equal(kv(cfg_reader, "versions", "nope", NULL), 2);
}

static void test_tags(void **state)
{
    (void)state;
    assert_int_equal(kv(cfg_renewer, "tags", "api", "--set", "Env=prod", "--set", "Owner=team-a",
                        "--json", NULL),
                     0);
    cJSON *j = out_json();
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(j, "tags");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tags, "Env")->valuestring, "prod");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tags, "Owner")->valuestring, "team-a");
    /* Existing tags are kept. */
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(tags, "Recipient")->valuestring,
                        "ops@contoso.com");
    cJSON_Delete(j);

    assert_int_equal(kv(cfg_reader, "tags", "api", NULL), 0);
    assert_non_null(strstr(R.out, "Env=prod\n"));
    /* The reader may not write. */
    assert_int_equal(kv(cfg_reader, "tags", "api", "--set", "Env=dev", NULL), 1);
    assert_non_null(strstr(R.err, "Forbidden"));
    assert_int_equal(kv(cfg_renewer, "tags", "api", "--set", "novalue", NULL), 1);
    assert_non_null(strstr(R.err, "KEY=VALUE"));
}

static void test_usage_and_refusals(void **state)
{
    (void)state;
    assert_int_equal(kv(cfg_reader, "frob", NULL), 1);
    assert_non_null(strstr(R.err, "unknown command 'frob'"));
    assert_int_equal(kv(cfg_reader, "show", NULL), 1);
    assert_non_null(strstr(R.err, "name is needed"));
    assert_int_equal(kv(cfg_reader, "show", "../x", NULL), 1);
    assert_int_equal(kv(cfg_reader, "list", "--set", "a=b", NULL), 1);
    assert_int_equal(kv(cfg_reader, "--help", NULL), 0);
    assert_non_null(strstr(R.out, "exit status"));
    /* Verification on (the default): the emulator's challenge is refused. */
    assert_int_equal(kv(cfg_strict, "list", NULL), 1);
    assert_non_null(strstr(R.err, "not a domain suffix"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_show_and_versions),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_usage_and_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
