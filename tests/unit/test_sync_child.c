/* A sync pass in a child process (clc_sync_pass_isolated): its report comes
 * back whole, a pass that hangs is killed at the deadline, a stop ends it.
 * The "vault" here is a local socket that accepts connections and never
 * answers (its TLS handshake hangs), or a closed port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "azure/auth.h"
#include "core/clock.h"
#include "pipeline/sync.h"

struct fx {
    char dir[64];
    int silent_fd; /* listens, never accepts: a peer that never answers */
    int silent_port;
    int closed_port;
};

static int listen_local(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/clc-sync-child-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    f->silent_fd = listen_local(&f->silent_port);
    int fd = listen_local(&f->closed_port); /* a port known free once closed */
    if (f->silent_fd < 0 || fd < 0)
        return -1;
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    close(f->silent_fd);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Settings for one certificate in a vault at 127.0.0.1:port. */
struct run {
    struct clc_sync_settings s;
    struct clc_auth *auth;
    struct clc_sync *sy;
};

static void run_open(struct fx *f, int port, struct run *r)
{
    char text[1024];
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    memset(r, 0, sizeof *r);
    snprintf(text, sizeof text,
             "{\"secretsManagementSettings\":{\"observedCertificates\":"
             "[\"https://127.0.0.1:%d/secrets/web\"],\"certificateStoreLocation\":\"%s\"}}",
             port, f->dir);
    assert_int_equal(clc_sync_settings_parse(text, strlen(text), "test", &r->s, &ei), CLC_OK);
    struct clc_auth_opts ao = {.method = CLC_AUTH_MANAGED_IDENTITY};
    struct clc_http_opts ho = {.connect_timeout_ms = 5000, .timeout_ms = 60000};
    assert_int_equal(clc_auth_new(&ao, &ho, &r->auth, &ei), CLC_OK);
    assert_int_equal(clc_sync_new(&r->s, r->auth, &ho, &r->sy, &ei), CLC_OK);
}

static void run_close(struct run *r)
{
    clc_sync_free(r->sy);
    clc_auth_free(r->auth);
    clc_sync_settings_cleanup(&r->s);
}

static void test_hung_pass_is_killed(void **state)
{
    struct fx *f = *state;
    struct run r;
    struct clc_sync_result res;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    run_open(f, f->silent_port, &r);
    int64_t t0 = clc_mono_ms();
    enum clc_err e = clc_sync_pass_isolated(r.sy, 400, NULL, &res, &ei);
    int64_t took = clc_mono_ms() - t0;
    assert_int_equal(e, CLC_ERR_TIMEOUT);
    assert_non_null(strstr(ei.msg, "passTimeoutS"));
    assert_true(took < 10000); /* the http timeout (60 s) did not decide it */
    run_close(&r);
}

static void test_stop_ends_pass(void **state)
{
    struct fx *f = *state;
    struct run r;
    struct clc_sync_result res;
    struct clc_errinfo ei;
    volatile sig_atomic_t stop = 1;
    clc_errinfo_clear(&ei);
    run_open(f, f->silent_port, &r);
    int64_t t0 = clc_mono_ms();
    enum clc_err e = clc_sync_pass_isolated(r.sy, 60000, &stop, &res, &ei);
    assert_int_not_equal(e, CLC_OK);
    assert_non_null(strstr(ei.msg, "signal"));
    assert_true(clc_mono_ms() - t0 < 15000);
    run_close(&r);
}

/* A failing pass: its error comes back from the child as it was. */
static void test_report_carries_error(void **state)
{
    struct fx *f = *state;
    struct run r;
    struct clc_sync_result res;
    struct clc_errinfo ei, direct;
    clc_errinfo_clear(&ei);
    clc_errinfo_clear(&direct);
    run_open(f, f->closed_port, &r);
    enum clc_err e = clc_sync_pass_isolated(r.sy, 60000, NULL, &res, &ei);
    assert_int_not_equal(e, CLC_OK);
    assert_int_equal(res.failed, 1);
    /* The same pass in this process fails the same way. */
    enum clc_err d = clc_sync_pass(r.sy, &res, &direct);
    assert_int_equal(e, d);
    assert_string_equal(ei.msg, direct.msg);
    assert_non_null(strstr(ei.msg, "127.0.0.1"));
    run_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hung_pass_is_killed),
        cmocka_unit_test(test_stop_ends_pass),
        cmocka_unit_test(test_report_carries_error),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
