/* Emulator start-up: a missing or wrong civetweb compatibility library and
 * bad config files stop emu_start with a clear message and no crash (no
 * emulator runs before these, so nothing loaded can hide a case); then a
 * start without a data dir keeps state in memory and cleans up its files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/state.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/emu-core-start-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];
    (void)state;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_compat_missing(void **state)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    struct emu *e = (struct emu *)1;

    (void)state;
    o.compat_lib = "/nonexistent/certlc/libssl.so";
    o.quiet = 1;
    assert_int_equal(emu_start(&o, &e, &ei), CLC_ERR_CONFIG);
    assert_null(e);
    assert_non_null(strstr(ei.msg, "/nonexistent/certlc/libssl.so"));
    assert_non_null(strstr(ei.msg, "clc_sslcompat"));
}

/* In a child: loading a library with RTLD_GLOBAL cannot be undone, and a
 * wrong one would then be what civetweb's dlopen("libssl.so") finds. */
static void test_compat_wrong_library(void **state)
{
    int fds[2], status = 0;
    char msg[600] = "";
    ssize_t n;
    pid_t pid;

    (void)state;
    assert_int_equal(pipe(fds), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct emu_opts o = {0};
        struct clc_errinfo ei = {0};
        struct emu *e = NULL;
        enum clc_err rc;
        close(fds[0]);
        o.compat_lib = EMU_TEST_NOTCOMPAT;
        o.quiet = 1;
        rc = emu_start(&o, &e, &ei);
        if (write(fds[1], ei.msg, strlen(ei.msg)) < 0)
            _exit(3);
        _exit(rc == CLC_ERR_CONFIG && e == NULL ? 0 : 1);
    }
    close(fds[1]);
    n = read(fds[0], msg, sizeof msg - 1);
    close(fds[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(n > 0);
    msg[n] = '\0';
    assert_non_null(strstr(msg, "SSL_get_peer_certificate"));
    assert_non_null(strstr(msg, EMU_TEST_NOTCOMPAT));
}

static void expect_config_error(const char *text, const char *needle)
{
    char path[300];
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    struct emu *e = NULL;

    snprintf(path, sizeof path, "%s/emu.json", tmpdir);
    write_file(path, text);
    o.config_file = path;
    o.quiet = 1;
    assert_int_equal(emu_start(&o, &e, &ei), CLC_ERR_CONFIG);
    assert_null(e);
    if (strstr(ei.msg, needle) == NULL)
        fail_msg("message '%s' lacks '%s'", ei.msg, needle);
}

static void test_config_refusals(void **state)
{
    (void)state;
    expect_config_error("{\"ports\": {}, \"bogus\": 1}", "unknown key 'bogus'");
    expect_config_error("{\"ports\": {\"entra\": 70000}}", "ports.entra");
    expect_config_error("{\"ports\": {\"entra\": \"x\"}}", "ports.entra");
    expect_config_error("{\"max_body_bytes\": 0}", "max_body_bytes");
    expect_config_error("[1, 2]", "must be a JSON object");
    expect_config_error("{\"ports\": ", "emulator config");
}

static void test_config_missing_file(void **state)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    struct emu *e = NULL;

    (void)state;
    o.config_file = "/nonexistent/emu.json";
    assert_int_equal(emu_start(&o, &e, &ei), CLC_ERR_CONFIG);
    assert_non_null(strstr(ei.msg, "/nonexistent/emu.json"));
}

static void test_in_memory_with_start_time(void **state)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};
    struct emu *e = NULL;
    cJSON *doc = cJSON_CreateObject(), *back = NULL;
    char work[512];

    (void)state;
    o.start_time = 4000000000LL;
    o.quiet = 1;
    if (emu_start(&o, &e, &ei) != CLC_OK)
        fail_msg("emu_start: %s", ei.msg);
    assert_true(emu_now(e) >= 4000000000LL && emu_now(e) <= 4000000002LL);
    assert_null(emu_data_dir(e));
    snprintf(work, sizeof work, "%s", emu_work_dir(e));
    assert_int_equal(access(emu_ca_bundle(e), R_OK), 0);
    assert_int_equal(strncmp(emu_ca_bundle(e), work, strlen(work)), 0);
    /* Without a data dir the store keeps nothing. */
    assert_int_equal(emu_store_save(e, "doc", doc, NULL), CLC_OK);
    assert_int_equal(emu_store_load(e, "doc", &back, NULL), CLC_ERR_NOT_FOUND);
    assert_null(back);
    assert_non_null(emu_service_url(e, "control"));
    emu_stop(e);
    cJSON_Delete(doc);
    assert_int_not_equal(access(work, F_OK), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compat_missing),
        cmocka_unit_test(test_compat_wrong_library),
        cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_in_memory_with_start_time),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
