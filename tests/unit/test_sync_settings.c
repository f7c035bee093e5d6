/* certlc sync settings: the extension's documents as people have them (v2,
 * v3, an ARM resource), certlc's own member, the auth options they imply,
 * and one refusal per malformed or unsafe setting (fixtures/sync/bad-*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "pipeline/sync.h"
#include "pipeline/sync_int.h"

#define FIX CLC_FIXTURES "/sync/"

static void load_ok(const char *file, struct clc_sync_settings *s)
{
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    enum clc_err e = clc_sync_settings_load(file, s, &ei);
    if (e != CLC_OK)
        fail_msg("%s: %s", file, ei.msg);
}

static void test_v2_strings(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    load_ok(FIX "v2-strings.json", &s);
    assert_int_equal(s.ncerts, 2);
    assert_int_equal(s.polling_interval_s, 3600);
    assert_int_equal(s.require_initial_sync, 0);
    assert_string_equal(s.certs[0].vault_url, "https://contoso-kv.vault.azure.net");
    assert_string_equal(s.certs[0].vault_name, "contoso-kv");
    assert_string_equal(s.certs[0].name, "web");
    assert_string_equal(s.certs[1].name, "api");
    assert_string_equal(s.certs[0].link, "contoso-kv.web");
    assert_string_equal(s.certs[0].store, "/var/lib/waagent/Microsoft.Azure.KeyVault/certs");
    assert_int_equal(s.certs[0].out.layout, CLC_SYNC_LAYOUT_EXTENSION);
    assert_null(s.certs[0].out.reload.argv[0]);
    assert_int_equal(s.dir_mode, 0700);
    assert_int_equal(s.key_mode, 0600);
    assert_int_equal(s.keep_versions, 5);
    assert_int_equal(s.verify_challenge_resource, 1);
    /* No authenticationSettings: the certlc configuration decides. */
    struct clc_auth_opts ao;
    char buf[300];
    assert_int_equal(clc_sync_auth_opts(&s, buf, sizeof buf, &ao, NULL), CLC_ERR_NOT_FOUND);
    clc_sync_settings_cleanup(&s);
}

static void test_v3_objects(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    struct clc_auth_opts ao;
    char buf[300];
    load_ok(FIX "v3-objects.json", &s);
    assert_int_equal(s.ncerts, 2);
    assert_int_equal(s.polling_interval_s, 600);
    assert_int_equal(s.require_initial_sync, 1);
    assert_string_equal(s.certs[0].store, "/etc/nginx/certs");
    assert_string_equal(s.certs[0].link, "web.pem");
    assert_string_equal(s.certs[1].store, CLC_SYNC_DEFAULT_STORE);
    assert_string_equal(s.certs[1].link, "other-kv.mail");
    assert_int_equal(clc_sync_auth_opts(&s, buf, sizeof buf, &ao, NULL), CLC_OK);
    assert_int_equal(ao.method, CLC_AUTH_MANAGED_IDENTITY);
    assert_string_equal(ao.imds_endpoint, "http://169.254.169.254/metadata/identity/oauth2/token");
    assert_string_equal(ao.client_id, "3c2f4f2e-7e8a-4c1d-9a51-5f5c7a3b2d10");
    clc_sync_settings_cleanup(&s);
}

static void test_arm_resource_arc(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    struct clc_auth_opts ao;
    char buf[300];
    load_ok(FIX "arm-resource.json", &s);
    assert_int_equal(s.ncerts, 1);
    assert_int_equal(clc_sync_auth_opts(&s, buf, sizeof buf, &ao, NULL), CLC_OK);
    assert_int_equal(ao.method, CLC_AUTH_ARC);
    assert_string_equal(ao.identity_endpoint,
                        "http://localhost:40342/metadata/identity/oauth2/token");
    clc_sync_settings_cleanup(&s);
}

static void test_certlc_member(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    load_ok(FIX "certlc-separate.json", &s);
    assert_int_equal(s.ncerts, 2);
    const struct clc_sync_cert *web = &s.certs[0], *smtp = &s.certs[1];
    assert_string_equal(web->vault_name, "contoso");
    assert_string_equal(web->link, "contoso.web");
    assert_int_equal(web->out.layout, CLC_SYNC_LAYOUT_SEPARATE);
    assert_string_equal(web->out.files.key, "key.pem");
    assert_string_equal(web->out.files.pkcs12, "cert.pfx");
    assert_int_equal(web->out.pkcs12, 1);
    assert_string_equal(web->out.reload.argv[0], "/usr/bin/systemctl");
    assert_string_equal(web->out.reload.argv[2], "nginx");
    assert_null(web->out.reload.argv[3]);
    assert_int_equal(web->out.reload.timeout_s, 20);
    /* Per-certificate overrides. */
    assert_int_equal(smtp->out.layout, CLC_SYNC_LAYOUT_EXTENSION);
    assert_string_equal(smtp->out.reload.argv[2], "postfix");
    assert_int_equal(smtp->out.reload.timeout_s, 60);
    /* A group makes the defaults group-readable. */
    assert_int_equal(s.has_group, 1);
    assert_int_equal(s.group, 0);
    assert_int_equal(s.dir_mode, 0750);
    assert_int_equal(s.key_mode, 0640);
    assert_int_equal(s.keep_versions, 3);
    assert_int_equal(s.jitter_percent, 20);
    assert_int_equal(s.max_backoff_s, 300);
    clc_sync_settings_cleanup(&s);
}

static void test_bad_files(void **state)
{
    (void)state;
    static const struct {
        const char *file, *want;
    } cases[] = {
        {"bad-not-json.json", "sync settings"},
        {"bad-no-sms.json", "secretsManagementSettings is required"},
        {"bad-empty-observed.json", "non-empty array"},
        {"bad-certificates-url.json", "/secrets/NAME URL"},
        {"bad-versioned-url.json", "versionless"},
        {"bad-dotdot-name.json", "no '..'"},
        {"bad-encoded-slash.json", "no '/'"},
        {"bad-http-url.json", "expected https://"},
        {"bad-unknown-member.json", "unknown member 'observedCertificate'"},
        {"bad-relative-store.json", "not an absolute path"},
        {"bad-dotdot-store.json", "contains '..'"},
        {"bad-link-slash.json", "customSymbolicLinkName"},
        {"bad-world-readable-key.json", "keyMode: 0644 grants too much"},
        {"bad-world-writable-dir.json", "dirMode: 0777 grants too much"},
        {"bad-reload-relative.json", "must be an absolute path"},
        {"bad-reload-string.json", "expected an array"},
        {"bad-acl-enabled.json", "ACLs are not supported"},
        {"bad-duplicate-link.json", "already used"},
        {"bad-same-file-twice.json", "used twice"},
        {"bad-interval.json", "pollingIntervalInS: expected a whole number"},
        {"bad-unknown-owner.json", "no such user"},
        {"bad-vault-name-slash.json", "not usable in a file name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[512];
        struct clc_sync_settings s;
        struct clc_errinfo ei;
        clc_errinfo_clear(&ei);
        snprintf(path, sizeof path, FIX "%s", cases[i].file);
        enum clc_err e = clc_sync_settings_load(path, &s, &ei);
        if (e == CLC_OK)
            fail_msg("%s: accepted", cases[i].file);
        if (!strstr(ei.msg, cases[i].want))
            fail_msg("%s: message '%s' lacks '%s'", cases[i].file, ei.msg, cases[i].want);
        assert_int_equal(s.ncerts, 0); /* cleaned up */
    }
}

static void test_inline_cases(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    struct clc_errinfo ei;
    /* Booleans as strings (seen in the extension's docs), IP hosts whole. */
    const char *t = "{\"settings\":{\"secretsManagementSettings\":{\"requireInitialSync\":\"true\","
                    "\"observedCertificates\":[\"https://127.0.0.1:8443/secrets/web\"]}}}";
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_sync_settings_parse(t, strlen(t), "inline", &s, &ei), CLC_OK);
    assert_int_equal(s.require_initial_sync, 1);
    assert_string_equal(s.certs[0].vault_name, "127.0.0.1");
    assert_string_equal(s.certs[0].vault_url, "https://127.0.0.1:8443");
    clc_sync_settings_cleanup(&s);
    /* A link named like its own versions would be pruned. */
    t = "{\"secretsManagementSettings\":{\"observedCertificates\":[{\"url\":"
        "\"https://kv.vault.azure.net/secrets/web\",\"customSymbolicLinkName\":\"kv.web.old\"}]}}";
    assert_int_not_equal(clc_sync_settings_parse(t, strlen(t), "inline", &s, &ei), CLC_OK);
    assert_non_null(strstr(ei.msg, "looks like a version file"));
    /* Missing file: a clear error, not a crash. */
    assert_int_not_equal(clc_sync_settings_load("/nonexistent/settings.json", &s, &ei), CLC_OK);
    assert_non_null(strstr(ei.msg, "/nonexistent/settings.json"));
}

static void test_names(void **state)
{
    (void)state;
    assert_true(clc_sync_name_safe("contoso.web", 200));
    assert_true(clc_sync_name_safe("web_1-a.pem", 200));
    assert_false(clc_sync_name_safe("", 200));
    assert_false(clc_sync_name_safe(".hidden", 200));
    assert_false(clc_sync_name_safe("a/b", 200));
    assert_false(clc_sync_name_safe("a..b", 200));
    assert_false(clc_sync_name_safe("a b", 200));
    assert_false(clc_sync_name_safe("abcdef", 5));
}

static void test_delays(void **state)
{
    (void)state;
    struct clc_sync_settings s;
    memset(&s, 0, sizeof s);
    s.polling_interval_s = 3600;
    s.max_backoff_s = 3600;
    s.jitter_percent = 10;
    for (int i = 0; i < 50; i++) {
        int64_t d = clc_sync_next_delay_ms(&s, 0);
        assert_true(d >= 3240000 && d <= 3960000);
    }
    s.jitter_percent = 0;
    assert_int_equal(clc_sync_next_delay_ms(&s, 1), 30000);
    assert_int_equal(clc_sync_next_delay_ms(&s, 2), 60000);
    assert_int_equal(clc_sync_next_delay_ms(&s, 3), 120000);
    assert_int_equal(clc_sync_next_delay_ms(&s, 8), 3600000); /* capped */
    assert_int_equal(clc_sync_next_delay_ms(&s, 500), 3600000);
    s.max_backoff_s = 300;
    assert_int_equal(clc_sync_next_delay_ms(&s, 6), 300000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_strings),
        cmocka_unit_test(test_v3_objects),
        cmocka_unit_test(test_arm_resource_arc),
        cmocka_unit_test(test_certlc_member),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_inline_cases),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_delays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
