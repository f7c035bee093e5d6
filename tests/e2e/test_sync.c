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

#include "core/clock.h"
#include "core/file.h"
#include "sync_fixture.h"

static void test_first_sync_then_unchanged(void **state)
{
    (void)state;
    char store[400], p[700], want[200], version[64], api_version[64], target[300];
    snprintf(store, sizeof store, "%s/store-first/certs", sfx_dir);
    struct sfx_opts o = {.store = store, .api = 1};
    const char *sp = sfx_settings("first", &o);
    sfx_reset_counter();

    if (sfx_sync(sp) != 0)
        fail_msg("exit %d: %s", sfx_R.exit_code, sfx_R.err);
    sfx_version("web", version, sizeof version);
    sfx_version("api", api_version, sizeof api_version);
    assert_int_equal(sfx_mode(store), 0700);
    sfx_link(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", version);
    assert_string_equal(target, want);
    snprintf(p, sizeof p, "%s/%s", store, want);
    assert_int_equal(sfx_mode(p), 0600);
    char *text = NULL;
    assert_int_equal(clc_file_read(p, 1 << 20, &text, NULL, NULL), CLC_OK);
    assert_non_null(strstr(text, "-----BEGIN CERTIFICATE-----"));
    assert_non_null(strstr(text, "-----BEGIN PRIVATE KEY-----"));
    free(text);
    /* The PEM-content-type certificate, separate layout. */
    snprintf(p, sizeof p, "%s/certlc.api/privkey.pem", store);
    assert_int_equal(sfx_mode(p), 0600);
    snprintf(p, sizeof p, "%s/certlc.api/fullchain.pem", store);
    assert_int_equal(sfx_mode(p), 0644);
    sfx_link(store, "certlc.api", target, sizeof target);
    snprintf(want, sizeof want, "certlc.api.%s", api_version);
    assert_string_equal(target, want);
    /* One reload for the pass, though two certificates changed. */
    assert_int_equal(sfx_reloads(), 1);
    assert_non_null(strstr(sfx_R.err, "sync.installed"));

    /* Nothing changed: exit 2, nothing rewritten, no reload. */
    struct stat before, after;
    snprintf(p, sizeof p, "%s/certlc.web.%s", store, version);
    assert_int_equal(stat(p, &before), 0);
    assert_int_equal(sfx_sync(sp), 2);
    assert_int_equal(stat(p, &after), 0);
    assert_int_equal(before.st_ino, after.st_ino);
    assert_int_equal(before.st_mtim.tv_nsec, after.st_mtim.tv_nsec);
    assert_int_equal(sfx_reloads(), 1);
}

static void test_renewal_switches_link(void **state)
{
    (void)state;
    char store[400], old[64], fresh[64], target[300], want[200], p[700];
    snprintf(store, sizeof store, "%s/store-renew", sfx_dir);
    struct sfx_opts o = {.store = store};
    const char *sp = sfx_settings("renew", &o);
    sfx_reset_counter();
    assert_int_equal(sfx_sync(sp), 0);
    sfx_version("web", old, sizeof old);
    sfx_renew("web", 0);
    sfx_version("web", fresh, sizeof fresh);
    assert_string_not_equal(old, fresh);
    assert_int_equal(sfx_sync(sp), 0);
    sfx_link(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", fresh);
    assert_string_equal(target, want);
    snprintf(p, sizeof p, "%s/certlc.web.%s", store, old);
    assert_int_equal(sfx_mode(p), 0600); /* the previous version stays */
    assert_int_equal(sfx_reloads(), 2);
    assert_int_equal(sfx_sync(sp), 2);
    assert_int_equal(sfx_reloads(), 2);
}

static void test_failed_reload_retried(void **state)
{
    (void)state;
    char store[400], flag[450], fresh[64], target[300], want[200];
    snprintf(store, sizeof store, "%s/store-reload", sfx_dir);
    snprintf(flag, sizeof flag, "%s.fail", sfx_counter);
    struct sfx_opts o = {.store = store};
    const char *sp = sfx_settings("reload", &o);
    sfx_reset_counter();
    assert_int_equal(sfx_sync(sp), 0);
    assert_int_equal(sfx_reloads(), 1);

    assert_int_equal(clc_file_write_atomic(flag, "", 0, 0600, NULL), CLC_OK);
    sfx_renew("web", 0);
    sfx_version("web", fresh, sizeof fresh);
    assert_int_equal(sfx_sync(sp), 1);
    assert_non_null(strstr(sfx_R.err, "sync.reload_failed"));
    assert_non_null(strstr(sfx_R.err, "exit status 4"));
    sfx_link(store, "certlc.web", target, sizeof target);
    snprintf(want, sizeof want, "certlc.web.%s", fresh);
    assert_string_equal(target, want); /* installed; only the reload is owed */
    assert_int_equal(sfx_reloads(), 1);
    /* Still failing: retried, still an error. */
    assert_int_equal(sfx_sync(sp), 1);
    unlink(flag);
    /* Retried on the next pass although nothing new arrived. */
    assert_int_equal(sfx_sync(sp), 0);
    assert_int_equal(sfx_reloads(), 2);
    assert_int_equal(sfx_sync(sp), 2);
    assert_int_equal(sfx_reloads(), 2);
}

static void test_missing_role(void **state)
{
    (void)state;
    char store[400], p[600];
    snprintf(store, sizeof store, "%s/store-reader", sfx_dir);
    struct sfx_opts o = {.store = store, .identity = "reader"};
    assert_int_equal(sfx_sync(sfx_settings("reader", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "Key Vault Secrets User"));
    assert_non_null(strstr(sfx_R.err, "403"));
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
    snprintf(real, sizeof real, "%s/elsewhere", sfx_dir);
    snprintf(store, sizeof store, "%s/store-link", sfx_dir);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, store), 0);
    struct sfx_opts o = {.store = store};
    assert_int_equal(sfx_sync(sfx_settings("unsafe-link", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "symbolic link"));
    snprintf(p, sizeof p, "%s/certlc.web", real);
    assert_int_not_equal(lstat(p, &sb), 0);
    /* World-writable. */
    snprintf(store, sizeof store, "%s/store-ww", sfx_dir);
    assert_int_equal(mkdir(store, 0700), 0);
    assert_int_equal(chmod(store, 0777), 0);
    o.store = store;
    assert_int_equal(sfx_sync(sfx_settings("unsafe-ww", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "world-writable"));
    snprintf(p, sizeof p, "%s/certlc.web", store);
    assert_int_not_equal(lstat(p, &sb), 0);
    /* A name with "..", a malformed file, a missing file. */
    snprintf(p, sizeof p, "%s/dotdot.json", sfx_dir);
    snprintf(body, sizeof body,
             "{\"secretsManagementSettings\": {\"observedCertificates\": [\"%s/secrets/..\"]}}",
             sfx_vault());
    assert_int_equal(clc_file_write_atomic(p, body, strlen(body), 0600, NULL), CLC_OK);
    assert_int_equal(sfx_sync(p), 1);
    assert_non_null(strstr(sfx_R.err, "no '..'"));
    assert_int_equal(sfx_sync(CLC_FIXTURES "/sync/bad-not-json.json"), 1);
    assert_non_null(strstr(sfx_R.err, "certlc: settings:"));
    assert_int_equal(sfx_sync(CLC_FIXTURES "/sync/bad-versioned-url.json"), 1);
    assert_non_null(strstr(sfx_R.err, "versionless"));
    assert_int_equal(sfx_sync("/nonexistent/settings.json"), 1);
    /* --check shows the plan without touching anything. */
    char *argv[] = {CERTLC,    "sync", "--settings", CLC_FIXTURES "/sync/v3-objects.json",
                    "--check", NULL};
    assert_int_equal(test_proc_run(argv, NULL, 10000, &sfx_R), 0);
    assert_non_null(strstr(sfx_R.out, "/etc/nginx/certs/web.pem"));
}

static void test_unreachable_vault_keeps_files(void **state)
{
    (void)state;
    char store[400], before[300], after[300];
    snprintf(store, sizeof store, "%s/store-down", sfx_dir);
    struct sfx_opts o = {.store = store};
    assert_int_equal(sfx_sync(sfx_settings("up", &o)), 0);
    sfx_link(store, "certlc.web", before, sizeof before);
    sfx_renew("web", 0); /* a renewal the server cannot reach */
    o.vault_url = "https://127.0.0.1:1";
    int64_t t0 = clc_mono_ms();
    assert_int_equal(sfx_sync(sfx_settings("down", &o)), 1);
    assert_true(clc_mono_ms() - t0 < 15000);
    assert_non_null(strstr(sfx_R.err, "sync.failed"));
    sfx_link(store, "certlc.web", after, sizeof after);
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
        execl(CERTLC, CERTLC, "--config", sfx_cfg, "--log-level", "debug", "sync", "--settings",
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
        sfx_link(store, "certlc.web", target, sizeof target);
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
    snprintf(store, sizeof store, "%s/store-daemon", sfx_dir);
    snprintf(errfile, sizeof errfile, "%s/daemon.log", sfx_dir);
    struct sfx_opts o = {.store = store, .extra_own = ", \"jitterPercent\": 0"};
    const char *sp = sfx_settings("daemon", &o);
    /* One-second polls: the interval is in the settings, as in production. */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(clc_file_read(sp, 1 << 16, &text, &len, NULL), CLC_OK);
    char *at = strstr(text, "\"3600\"");
    memcpy(at, "\"1\"   ", 6);
    assert_int_equal(clc_file_write_atomic(sp, text, len, 0600, NULL), CLC_OK);
    free(text);

    sfx_version("web", version, sizeof version);
    snprintf(want, sizeof want, "certlc.web.%s", version);
    pid_t pid = spawn(sp, errfile);
    assert_true(pid > 0);
    int ok = wait_link(store, want, 15000);
    if (ok) {
        sfx_renew("web", 0);
        sfx_version("web", version, sizeof version);
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
    snprintf(store, sizeof store, "%s/store-initial", sfx_dir);
    snprintf(errfile, sizeof errfile, "%s/initial.log", sfx_dir);
    struct sfx_opts o = {
        .store = store,
        .vault_url = "https://127.0.0.1:1",
        .extra_sms = ", \"requireInitialSync\": true",
        .extra_own = ", \"initialSyncAttempts\": 2, \"maxBackoffS\": 1, \"jitterPercent\": 0"};
    pid_t pid = spawn(sfx_settings("initial", &o), errfile);
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
    return cmocka_run_group_tests(tests, sfx_setup, sfx_teardown);
}
