/* certlc sync through the binary against the emulator: the extension's
 * settings with the VM's managed identity (IMDS, the `sync` identity), the
 * first sync with its modes, nothing rewritten when nothing changed, a
 * renewal switching the link, the reload command once per change and a
 * failed one retried, a missing role, unsafe input, an unreachable vault,
 * and the daemon (a renewal picked up on the next poll; requireInitialSync). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "azure/keyvault.h"
#include "core/clock.h"
#include "core/file.h"
#include "emulator/emu.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

static struct emu *emu;
static cJSON *endpoints;
static struct clc_auth *renewer_auth;
static struct clc_kv *renewer;
static char dir[] = "/tmp/certlc-test-sync.XXXXXX";
static char cfg[400], script[400], counter[400];
static struct test_proc_result R;

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static const char *vault(void)
{
    return ep("services", "keyvault", "certlc");
}

/* A new version of name (issuer Self: completed at once); pem = PEM secret. */
static void renew(const char *name, int pem)
{
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_errinfo ei;
    char cn[64];
    clc_kv_policy_init(&p);
    snprintf(p.kty, sizeof p.kty, "EC");
    snprintf(cn, sizeof cn, "CN=%s.contoso.com", name);
    p.subject = strdup(cn);
    p.issuer_name = strdup("Self");
    p.content_type = strdup(pem ? "application/x-pem-file" : "application/x-pkcs12");
    p.validity_months = 12;
    struct clc_kv_create req = {.policy = &p};
    clc_errinfo_clear(&ei);
    enum clc_err e = clc_kv_create(renewer, name, &req, &op, &ei);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
    if (e != CLC_OK)
        fail_msg("renew %s: %s", name, ei.msg);
}

static void current_version(const char *name, char *out, size_t n)
{
    struct clc_kv_certificate c;
    assert_int_equal(clc_kv_get_certificate(renewer, name, NULL, &c, NULL), CLC_OK);
    snprintf(out, n, "%s", c.version);
    clc_kv_certificate_cleanup(&c);
}

static int setup(void **state)
{
    (void)state;
    char *text = NULL;
    struct clc_errinfo ei = {0};
    struct clc_secret *sec = NULL;

    if (!mkdtemp(dir))
        return -1;
    struct emu_opts o = {.quiet = 1};
    if (emu_start(&o, &emu, &ei) != CLC_OK || emu_endpoints_json(emu, &text, &ei) != CLC_OK) {
        fprintf(stderr, "emulator: %s\n", ei.msg);
        return -1;
    }
    endpoints = cJSON_Parse(text);
    free(text);
    if (!endpoints || !vault())
        return -1;
    /* certlc's own configuration: only the CA bundle to trust. */
    snprintf(cfg, sizeof cfg, "%s/certlc.json", dir);
    char body[600];
    snprintf(body, sizeof body, "{\"http\": {\"ca_bundle\": \"%s\"}}", ep("ca_bundle", NULL, NULL));
    if (clc_file_write_atomic(cfg, body, strlen(body), 0600, NULL) != CLC_OK)
        return -1;
    /* The reload command: counts its runs; fails while <counter>.fail exists. */
    snprintf(script, sizeof script, "%s/reload.sh", dir);
    snprintf(counter, sizeof counter, "%s/reloads", dir);
    const char *sh = "#!/bin/sh\n[ -e \"$1.fail\" ] && exit 4\necho reload >> \"$1\"\n";
    if (clc_file_write_atomic(script, sh, strlen(sh), 0700, NULL) != CLC_OK)
        return -1;

    const char *s = ep("identities", "renewer", "client_secret");
    struct clc_http_opts ho = {.ca_bundle = ep("ca_bundle", NULL, NULL)};
    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return -1;
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = ep("services", "entra", NULL),
                               .tenant_id = ep("tenant", NULL, NULL),
                               .client_id = ep("identities", "renewer", "client_id"),
                               .client_secret = sec};
    struct clc_kv_opts ko = {.vault_url = vault(), .disable_challenge_resource_verification = 1};
    enum clc_err e = clc_auth_new(&ao, &ho, &renewer_auth, &ei);
    if (e == CLC_OK)
        e = clc_kv_new(&ko, &ho, renewer_auth, &renewer, &ei);
    clc_secret_free(sec);
    if (e != CLC_OK) {
        fprintf(stderr, "client: %s\n", ei.msg);
        return -1;
    }
    renew("web", 0);
    renew("api", 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[600];
    clc_kv_free(renewer);
    clc_auth_free(renewer_auth);
    cJSON_Delete(endpoints);
    emu_stop(emu);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

struct sopts {
    const char *store;
    const char *identity;  /* sync (default), reader */
    const char *vault_url; /* default: the emulator's vault */
    const char *extra_sms; /* more secretsManagementSettings members (",..." JSON) */
    const char *extra_own; /* more certlc members */
    int api;               /* also observe "api" (separate layout, group) */
};

/* Writes an extension settings file; returns its path (static buffer). */
static const char *settings(const char *name, const struct sopts *o)
{
    static char path[400];
    char text[4096], imds[300];
    const char *v = o->vault_url ? o->vault_url : vault();
    snprintf(imds, sizeof imds, "%s/metadata/identity", ep("services", "imds", NULL));
    int n = snprintf(
        text, sizeof text,
        "{\"secretsManagementSettings\": {\"pollingIntervalInS\": \"3600\","
        " \"certificateStoreLocation\": \"%s\", \"observedCertificates\": "
        "[\"%s/secrets/web\"%s%s%s]%s},"
        " \"authenticationSettings\": {\"msiEndpoint\": \"%s\", \"msiClientId\": \"%s\"},"
        " \"certlc\": {\"verifyChallengeResource\": false, \"vaultNames\": {\"%s\": \"certlc\"},"
        " \"reload\": {\"command\": [\"/bin/sh\", \"%s\", \"%s\"], \"timeoutS\": 10}%s}}",
        o->store, v, o->api ? ", {\"url\": \"" : "", o->api ? v : "",
        o->api ? "/secrets/api\", \"certlc\": {\"layout\": \"separate\"}}" : "",
        o->extra_sms ? o->extra_sms : "", imds,
        ep("identities", o->identity ? o->identity : "sync", "client_id"), v, script, counter,
        o->extra_own ? o->extra_own : "");
    assert_true(n > 0 && (size_t)n < sizeof text);
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    assert_int_equal(clc_file_write_atomic(path, text, strlen(text), 0600, NULL), CLC_OK);
    return path;
}

static int sync_once(const char *settings_path)
{
    char *argv[] = {CERTLC,   "--config", cfg, "sync", "--settings", (char *)settings_path,
                    "--once", NULL};
    assert_int_equal(test_proc_run(argv, NULL, 60000, &R), 0);
    assert_false(R.timed_out);
    return R.exit_code;
}

static int reloads(void)
{
    char *text = NULL;
    int n = 0;
    if (clc_file_read(counter, 4096, &text, NULL, NULL) != CLC_OK)
        return 0;
    for (char *p = text; (p = strstr(p, "reload")) != NULL; p++)
        n++;
    free(text);
    return n;
}

static void reset_counter(void)
{
    unlink(counter);
}

static void link_target(const char *store, const char *link, char *out, size_t n)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", store, link);
    ssize_t k = readlink(p, out, n - 1);
    out[k > 0 ? k : 0] = '\0';
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        fail_msg("%s missing", path);
    return sb.st_mode & 07777;
}

static void test_first_sync_then_unchanged(void **state)
{
    (void)state;
    char store[400], p[700], want[200], version[64], api_version[64], target[300];
    snprintf(store, sizeof store, "%s/store-first/certs", dir);
    struct sopts o = {.store = store, .api = 1};
    const char *sp = settings("first", &o);
    reset_counter();

    if (sync_once(sp) != 0)
        fail_msg("exit %d: %s", R.exit_code, R.err);
    current_version("web", version, sizeof version);
    current_version("api", api_version, sizeof api_version);
    assert_int_equal(mode_of(store), 0700);
    link_target(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", version);
    assert_string_equal(target, want);
    snprintf(p, sizeof p, "%s/%s", store, want);
    assert_int_equal(mode_of(p), 0600);
    char *text = NULL;
    assert_int_equal(clc_file_read(p, 1 << 20, &text, NULL, NULL), CLC_OK);
    assert_non_null(strstr(text, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(text, "-----BEGIN PRIVATE KEY-----"));
    free(text);
    /* The PEM-content-type certificate, separate layout. */
    snprintf(p, sizeof p, "%s/certlc.api/privkey.pem", store);
    assert_int_equal(mode_of(p), 0600);
    snprintf(p, sizeof p, "%s/certlc.api/fullchain.pem", store);
    assert_int_equal(mode_of(p), 0644);
    link_target(store, "certlc.api", target, sizeof target);
    snprintf(want, sizeof want, "certlc.api.%s", api_version);
    assert_string_equal(target, want);
    /* One reload for the pass, though two certificates changed. */
    assert_int_equal(reloads(), 1);
    assert_non_null(strstr(R.err, "sync.installed"));

    /* Nothing changed: exit 2, nothing rewritten, no reload. */
    struct stat before, after;
    snprintf(p, sizeof p, "%s/certlc.web.%s", store, version);
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(sync_once(sp), 2);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(reloads(), 1);
}

static void test_renewal_switches_link(void **state)
{
    (void)state;
    char store[400], old[64], fresh[64], target[300], want[200], p[700];
    snprintf(store, sizeof store, "%s/store-renew", dir);
    struct sopts o = {.store = store};
    const char *sp = settings("renew", &o);
    reset_counter();
    assert_int_equal(sync_once(sp), 0);
    current_version("web", old, sizeof old);
    renew("web", 0);
    current_version("web", fresh, sizeof fresh);
    assert_string_not_equal(old, fresh);
    assert_int_equal(sync_once(sp), 0);
    link_target(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", fresh);
    assert_string_equal(target, want);
    snprintf(p, sizeof p, "%s/certlc.web.%s", store, old);
    assert_int_equal(mode_of(p), 0600); /* the previous version stays */
    assert_int_equal(reloads(), 2);
    assert_int_equal(sync_once(sp), 2);
    assert_int_equal(reloads(), 2);
}

static void test_failed_reload_retried(void **state)
{
    (void)state;
    char store[400], flag[450], fresh[64], target[300], want[200];
    snprintf(store, sizeof store, "%s/store-reload", dir);
    snprintf(flag, sizeof flag, "%s.fail", counter);
    struct sopts o = {.store = store};
    const char *sp = settings("reload", &o);
    reset_counter();
    assert_int_equal(sync_once(sp), 0);
    assert_int_equal(reloads(), 1);

    assert_int_equal(clc_file_write_atomic(flag, "", 0, 0600, NULL), CLC_OK);
    renew("web", 0);
    current_version("web", fresh, sizeof fresh);
    assert_int_equal(sync_once(sp), 1);
    assert_non_null(strstr(R.err, "sync.reload_failed"));
    assert_non_null(strstr(R.err, "exit status 4"));
    link_target(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", fresh);
    assert_string_equal(target, want); /* installed; only the reload is owed */
    assert_int_equal(reloads(), 1);
    /* Still failing: retried, still an error. */
    assert_int_equal(sync_once(sp), 1);
    unlink(flag);
    /* Retried on the next pass although nothing new arrived. */
    assert_int_equal(sync_once(sp), 0);
    assert_int_equal(reloads(), 2);
    assert_int_equal(sync_once(sp), 2);
    assert_int_equal(reloads(), 2);
}

static void test_missing_role(void **state)
{
    (void)state;
    char store[400], p[600];
    snprintf(store, sizeof store, "%s/store-reader", dir);
    struct sopts o = {.store = store, .identity = "reader"};
    assert_int_equal(sync_once(settings("reader", &o)), 1);
    assert_non_null(strstr(R.err, "Key Vault Secrets User"));
    assert_non_null(strstr(R.err, "403"));
    snprintf(p, sizeof p, "%s/certlc.web", store);
    struct stat sb;
    assert_int_not_equal(lstat(p, &sb), 0);
}

static void test_unsafe_input(void **state)
{
    (void)state;
    char store[400], real[400], p[700], body[600];
    struct stat sb;
    /* A store that is a symlink to elsewhere: refused, the target untouched. */
    snprintf(real, sizeof real, "%s/elsewhere", dir);
    snprintf(store, sizeof store, "%s/store-link", dir);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, store), 0);
    struct sopts o = {.store = store};
    assert_int_equal(sync_once(settings("unsafe-link", &o)), 1);
    assert_non_null(strstr(R.err, "symbolic link"));
    snprintf(p, sizeof p, "%s/certlc.web", real);
    assert_int_not_equal(lstat(p, &sb), 0);
    /* World-writable. */
    snprintf(store, sizeof store, "%s/store-ww", dir);
    assert_int_equal(mkdir(store, 0700), 0);
    assert_int_equal(chmod(store, 0777), 0);
    o.store = store;
    assert_int_equal(sync_once(settings("unsafe-ww", &o)), 1);
    assert_non_null(strstr(R.err, "world-writable"));
    snprintf(p, sizeof p, "%s/certlc.web", store);
    assert_int_not_equal(lstat(p, &sb), 0);
    /* A name with "..", a malformed file, a missing file. */
    snprintf(p, sizeof p, "%s/dotdot.json", dir);
    snprintf(body, sizeof body,
             "{\"secretsManagementSettings\": {\"observedCertificates\": [\"%s/secrets/..\"]}}",
             vault());
    assert_int_equal(clc_file_write_atomic(p, body, strlen(body), 0600, NULL), CLC_OK);
    assert_int_equal(sync_once(p), 1);
    assert_non_null(strstr(R.err, "no '..'"));
    assert_int_equal(sync_once(CLC_FIXTURES "/sync/bad-not-json.json"), 1);
    assert_non_null(strstr(R.err, "certlc: settings:"));
    assert_int_equal(sync_once(CLC_FIXTURES "/sync/bad-versioned-url.json"), 1);
    assert_non_null(strstr(R.err, "versionless"));
    assert_int_equal(sync_once("/nonexistent/settings.json"), 1);
    /* --check shows the plan without touching anything. */
    char *argv[] = {CERTLC,    "sync", "--settings", CLC_FIXTURES "/sync/v3-objects.json",
                    "--check", NULL};
    assert_int_equal(test_proc_run(argv, NULL, 10000, &R), 0);
    assert_non_null(strstr(R.out, "/etc/nginx/certs/web.pem"));
}

static void test_unreachable_vault_keeps_files(void **state)
{
    (void)state;
    char store[400], before[300], after[300];
    snprintf(store, sizeof store, "%s/store-down", dir);
    struct sopts o = {.store = store};
    assert_int_equal(sync_once(settings("up", &o)), 0);
    link_target(store, "certlc.web", before, sizeof before);
    renew("web", 0); /* a renewal the server cannot reach */
    o.vault_url = "https://127.0.0.1:1";
    int64_t t0 = clc_mono_ms();
    assert_int_equal(sync_once(settings("down", &o)), 1);
    assert_true(clc_mono_ms() - t0 < 15000);
    assert_non_null(strstr(R.err, "sync.failed"));
    link_target(store, "certlc.web", after, sizeof after);
    assert_string_equal(before, after);
}

/* ---- daemon */

static pid_t spawn(const char *settings_path, const char *errfile)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(errfile, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 2);
            dup2(fd, 1);
        }
        execl(CERTLC, CERTLC, "--config", cfg, "--log-level", "debug", "sync", "--settings",
              settings_path, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits (bounded) until the link points at want; 1 when it did. */
static int wait_link(const char *store, const char *want, int ms)
{
    char target[300];
    for (int64_t end = clc_mono_ms() + ms; clc_mono_ms() < end; clc_sleep_ms(50)) {
        link_target(store, "certlc.web", target, sizeof target);
        if (!strcmp(target, want))
            return 1;
    }
    return 0;
}

static int wait_exit(pid_t pid, int ms, int *status)
{
    for (int64_t end = clc_mono_ms() + ms; clc_mono_ms() < end; clc_sleep_ms(20))
        if (waitpid(pid, status, WNOHANG) == pid)
            return 1;
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
    return 0;
}

static void test_daemon_picks_up_renewal(void **state)
{
    (void)state;
    char store[400], errfile[400], version[64], want[200];
    int status = 0;
    snprintf(store, sizeof store, "%s/store-daemon", dir);
    snprintf(errfile, sizeof errfile, "%s/daemon.log", dir);
    struct sopts o = {.store = store, .extra_own = ", \"jitterPercent\": 0"};
    const char *sp = settings("daemon", &o);
    /* One-second polls: the interval is in the settings, as in production. */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(clc_file_read(sp, 1 << 16, &text, &len, NULL), CLC_OK);
    char *at = strstr(text, "\"3600\"");
    memcpy(at, "\"1\"   ", 6);
    assert_int_equal(clc_file_write_atomic(sp, text, len, 0600, NULL), CLC_OK);
    free(text);

    current_version("web", version, sizeof version);
    snprintf(want, sizeof want, "certlc.web.%s", version);
    pid_t pid = spawn(sp, errfile);
    assert_true(pid > 0);
    int ok = wait_link(store, want, 15000);
    if (ok) {
        renew("web", 0);
        current_version("web", version, sizeof version);
        snprintf(want, sizeof want, "certlc.web.%s", version);
        ok = wait_link(store, want, 15000);
    }
    kill(pid, SIGTERM);
    int exited = wait_exit(pid, 5000, &status);
    if (!ok) {
        char *log = NULL;
        clc_file_read(errfile, 1 << 20, &log, NULL, NULL);
        fail_msg("daemon did not install %s:\n%s", want, log ? log : "");
    }
    assert_true(exited);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char *log = NULL;
    assert_int_equal(clc_file_read(errfile, 1 << 20, &log, NULL, NULL), CLC_OK);
    assert_non_null(strstr(log, "sync.daemon_stop"));
    free(log);
}

static void test_require_initial_sync(void **state)
{
    (void)state;
    char store[400], errfile[400];
    int status = 0;
    snprintf(store, sizeof store, "%s/store-initial", dir);
    snprintf(errfile, sizeof errfile, "%s/initial.log", dir);
    struct sopts o = {.store = store,
                      .vault_url = "https://127.0.0.1:1",
                      .extra_sms = ", \"requireInitialSync\": true",
                      .extra_own =
                          ", \"initialSyncAttempts\": 2, \"maxBackoffS\": 1, \"jitterPercent\": 0"};
    pid_t pid = spawn(settings("initial", &o), errfile);
    assert_true(wait_exit(pid, 15000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    char *log = NULL;
    assert_int_equal(clc_file_read(errfile, 1 << 20, &log, NULL, NULL), CLC_OK);
    assert_non_null(strstr(log, "requireInitialSync: no successful sync after 2 attempts"));
    /* Backed off between the attempts. */
    assert_non_null(strstr(log, "event=sync.sleep ms=1000 failures=1"));
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_sync_then_unchanged),
        cmocka_unit_test(test_renewal_switches_link),
        cmocka_unit_test(test_failed_reload_retried),
        cmocka_unit_test(test_missing_role),
        cmocka_unit_test(test_unsafe_input),
        cmocka_unit_test(test_unreachable_vault_keeps_files),
        cmocka_unit_test(test_daemon_picks_up_renewal),
        cmocka_unit_test(test_require_initial_sync),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
