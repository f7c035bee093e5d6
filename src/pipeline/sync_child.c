/* One sync pass in a child process, for the daemon: the pass's heap, TLS
 * state and the library pages it touches leave with the child, so the idle
 * daemon stays as small as it started, and a pass that hangs is killed at a
 * deadline instead of stalling every later poll. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "pipeline/sync.h"
#include "pipeline/sync_int.h"

#define STOP_GRACE_MS 10000 /* after a stop: time the pass has to finish */
#define WAIT_SLICE_MS 200

/* What the child reports through the pipe: fixed size, plain data. */
struct pass_report {
    int rc;
    struct clc_sync_result res;
    struct clc_errinfo ei;
};

static void child_run(struct clc_sync *sy, int fd)
{
    struct pass_report rep;
    memset(&rep, 0, sizeof rep);
    /* A stop signal ends the child at once: every install step is atomic
     * and a reload it interrupts is marked and run again next pass. */
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    rep.rc = (int)clc_sync_pass(sy, &rep.res, &rep.ei);
    const char *p = (const char *)&rep;
    size_t left = sizeof rep;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        p += n;
        left -= (size_t)n;
    }
    fflush(NULL);
    /* _exit: the parent owns everything the child inherited. */
    _exit(left == 0 ? 0 : 3);
}

/* Reads the report until it is complete, EOF, or the deadline; on a stop or
 * at the deadline the child is told to end (SIGTERM, then SIGKILL). */
static size_t read_report(int fd, pid_t pid, struct pass_report *rep, int64_t timeout_ms,
                          volatile sig_atomic_t *stop, int *timed_out)
{
    char *p = (char *)rep;
    size_t got = 0;
    int64_t deadline = clc_mono_ms() + timeout_ms;
    int termed = 0;

    while (got < sizeof *rep) {
        int64_t now = clc_mono_ms();
        if (stop && *stop && !termed) {
            kill(pid, SIGTERM);
            termed = 1;
            if (deadline - now > STOP_GRACE_MS)
                deadline = now + STOP_GRACE_MS;
        }
        if (now >= deadline) {
            *timed_out = !termed;
            break;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int64_t slice = deadline - now < WAIT_SLICE_MS ? deadline - now : WAIT_SLICE_MS;
        int r = poll(&pfd, 1, (int)slice);
        if (r < 0 && errno != EINTR)
            break;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, p + got, sizeof *rep - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: the child ended without a whole report */
        got += (size_t)n;
    }
    return got;
}

enum clc_err clc_sync_pass_isolated(struct clc_sync *sy, int64_t timeout_ms,
                                    volatile sig_atomic_t *stop, struct clc_sync_result *res,
                                    struct clc_errinfo *ei)
{
    int fds[2];
    struct pass_report rep;
    int timed_out = 0, status = 0;

    memset(res, 0, sizeof *res);
    memset(&rep, 0, sizeof rep);
    if (pipe(fds) != 0)
        return clc_errf(ei, CLC_ERR_IO, "sync pass: pipe: %s", strerror(errno));
    fflush(NULL); /* nothing buffered is written twice */
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return clc_errf(ei, CLC_ERR_IO, "sync pass: fork: %s", strerror(e));
    }
    if (pid == 0) {
        close(fds[0]);
        child_run(sy, fds[1]);
    }
    close(fds[1]);
    size_t got = read_report(fds[0], pid, &rep, timeout_ms, stop, &timed_out);
    close(fds[0]);
    if (got < sizeof rep)
        kill(pid, SIGKILL); /* no report coming: do not wait on a hung child */
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == sizeof rep) {
        *res = rep.res;
        if (rep.rc != CLC_OK)
            *ei = rep.ei;
        return (enum clc_err)rep.rc;
    }
    if (timed_out)
        return clc_errf(ei, CLC_ERR_TIMEOUT,
                        "sync pass did not finish within %lld s (passTimeoutS); it was killed "
                        "and the installed files are unchanged or wholly new",
                        (long long)(timeout_ms / 1000));
    if (WIFSIGNALED(status))
        return clc_errf(ei, CLC_ERR_INTERNAL, "sync pass process ended by signal %d",
                        WTERMSIG(status));
    return clc_errf(ei, CLC_ERR_INTERNAL, "sync pass process exited (status %d) without a report",
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
