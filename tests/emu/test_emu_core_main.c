/* certlc-emulator as a program: argument errors exit 2 with usage, --help
 * and --version exit 0, and a real run writes the endpoints file, logs
 * emu.ready, serves verified HTTPS and stops cleanly on SIGTERM (removing
 * its private directory when no --data-dir was given). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"

#define EMULATOR CLC_TEST_BINDIR "/emulator/certlc-emulator"
#define WAIT_MS 15000

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/emu-core-main-XXXXXX");
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    curl_global_cleanup();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Starts the emulator with stdout/stderr to files; returns its pid. */
static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();

    if (pid == 0) {
        int o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || dup2(o, 1) < 0 || dup2(e, 2) < 0)
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

/* Waits (bounded) for the child; returns its exit code, -1 on a signal or
 * the deadline (the child is then killed). */
static int wait_exit(pid_t pid, int timeout_ms)
{
    int64_t end = clc_mono_ms() + timeout_ms;
    int status = 0;

    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (w < 0 || clc_mono_ms() >= end)
            break;
        clc_sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *slurp(const char *path)
{
    char *text = NULL;
    size_t len;

    if (clc_file_read(path, 1 << 20, &text, &len, NULL) != CLC_OK)
        return NULL;
    return text;
}

static int run_args(char *const argv[], char **out, char **err)
{
    char op[300], ep[300];
    int rc;

    snprintf(op, sizeof op, "%s/out.txt", tmpdir);
    snprintf(ep, sizeof ep, "%s/err.txt", tmpdir);
    rc = wait_exit(spawn(argv, op, ep), WAIT_MS);
    *out = slurp(op);
    *err = slurp(ep);
    return rc;
}

static void test_arguments(void **state)
{
    char *const bad1[] = {EMULATOR, "--bogus", NULL};
    char *const bad2[] = {EMULATOR, "--log-format", "xml", NULL};
    char *const bad3[] = {EMULATOR, "stray", NULL};
    char *const bad4[] = {EMULATOR, "--data-dir", NULL};
    char *const *bad[] = {bad1, bad2, bad3, bad4};
    char *const help[] = {EMULATOR, "--help", NULL};
    char *const ver[] = {EMULATOR, "--version", NULL};
    char *out = NULL, *err = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(run_args(bad[i], &out, &err), 2);
        assert_non_null(err);
        assert_non_null(strstr(err, "usage: certlc-emulator"));
        free(out);
        free(err);
    }
    assert_int_equal(run_args(help, &out, &err), 0);
    assert_non_null(strstr(out, "--endpoints-file"));
    free(out);
    free(err);
    assert_int_equal(run_args(ver, &out, &err), 0);
    assert_non_null(strstr(out, "certlc-emulator "));
    free(out);
    free(err);
}

static char *wait_file(const char *path)
{
    int64_t end = clc_mono_ms() + WAIT_MS;
    char *text;

    while ((text = slurp(path)) == NULL && clc_mono_ms() < end)
        clc_sleep_ms(20);
    return text;
}

static size_t discard(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return sz * n;
}

static void test_run_and_stop(void **state)
{
    char data[300], ep[300], op[300], errp[300];
    char *const argv[] = {EMULATOR, "--data-dir",   data,   "--endpoints-file",
                          ep,       "--log-format", "json", NULL};
    char *text, *log;
    cJSON *doc;
    const char *ctl, *bundle;
    struct stat st;
    long status = 0;
    CURL *c;
    pid_t pid;

    (void)state;
    snprintf(data, sizeof data, "%s/data", tmpdir);
    snprintf(ep, sizeof ep, "%s/endpoints.json", tmpdir);
    snprintf(op, sizeof op, "%s/run.out", tmpdir);
    snprintf(errp, sizeof errp, "%s/run.err", tmpdir);
    pid = spawn(argv, op, errp);
    assert_true(pid > 0);
    text = wait_file(ep);
    if (text == NULL) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        fail_msg("no endpoints file: %s", slurp(errp));
    }
    assert_int_equal(stat(ep, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    doc = cJSON_Parse(text);
    free(text);
    assert_non_null(doc);
    ctl =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "services"), "control"));
    bundle = cJSON_GetStringValue(cJSON_GetObjectItem(doc, "ca_bundle"));
    assert_non_null(ctl);
    assert_non_null(bundle);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "services"), "entra"));

    c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, ctl);
    curl_easy_setopt(c, CURLOPT_CAINFO, bundle);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    assert_int_equal(status, 401);
    curl_easy_cleanup(c);
    cJSON_Delete(doc);

    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, WAIT_MS), 0);
    log = slurp(errp);
    assert_non_null(log);
    assert_non_null(strstr(log, "\"event\":\"emu.ready\""));
    assert_non_null(strstr(log, "\"event\":\"emu.access\""));
    assert_non_null(strstr(log, "\"event\":\"emu.stopping\""));
    /* The secrets in the endpoints file never reach the log. */
    assert_null(strstr(log, "client_secret"));
    free(log);
    /* State stays in the data dir. */
    {
        char key[400];
        snprintf(key, sizeof key, "%s/ca.key", data);
        assert_int_equal(access(key, F_OK), 0);
    }
}

static void test_private_dir_removed(void **state)
{
    char op[300], errp[300], dir[512];
    char *const argv[] = {EMULATOR, "--quiet", "--log-format", "json", NULL};
    int64_t end = clc_mono_ms() + WAIT_MS;
    char *log = NULL, *p, *q;
    pid_t pid;

    (void)state;
    snprintf(op, sizeof op, "%s/p.out", tmpdir);
    snprintf(errp, sizeof errp, "%s/p.err", tmpdir);
    pid = spawn(argv, op, errp);
    for (;;) {
        free(log);
        log = slurp(errp);
        if ((log && strstr(log, "emu.ready")) || clc_mono_ms() >= end)
            break;
        clc_sleep_ms(20);
    }
    assert_non_null(log);
    p = strstr(log, "\"endpoints\":\"");
    assert_non_null(p);
    p += strlen("\"endpoints\":\"");
    q = strstr(p, "/endpoints.json\"");
    assert_non_null(q);
    snprintf(dir, sizeof dir, "%.*s", (int)(q - p), p);
    free(log);
    assert_int_equal(access(dir, F_OK), 0);
    assert_int_equal(kill(pid, SIGINT), 0);
    assert_int_equal(wait_exit(pid, WAIT_MS), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments),
        cmocka_unit_test(test_run_and_stop),
        cmocka_unit_test(test_private_dir_removed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
