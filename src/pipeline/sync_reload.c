/* Runs a sync reload command: argv as configured (no shell, so nothing in
 * the settings is interpreted), a minimal environment (no credentials of
 * ours reach it), its own process group so a timeout kills all of it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "pipeline/sync_int.h"

#define POLL_MS 10
#define FD_CLOSE_MAX 65536

static void child(char *const argv[])
{
    static char *const env[] = {"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                                "LANG=C", NULL};
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    int null = open("/dev/null", O_RDONLY);
    if (null >= 0 && null != 0) {
        dup2(null, 0);
        close(null);
    }
    /* Its output joins our log stream (stderr), never our stdout. */
    dup2(2, 1);
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > FD_CLOSE_MAX)
        max = FD_CLOSE_MAX;
    for (int fd = 3; fd < max; fd++)
        close(fd);
    execve(argv[0], argv, env);
    _exit(127);
}

enum clc_err clc_sync_run(char *const argv[], int timeout_s, struct clc_errinfo *ei)
{
    int status = 0;
    if (!argv || !argv[0])
        return clc_errf(ei, CLC_ERR_INVALID, "no command");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s: fork: %s", argv[0], strerror(errno));
    if (pid == 0)
        child(argv);
    setpgid(pid, pid); /* also here: no race with the kill below */
    int64_t deadline = clc_mono_ms() + (int64_t)timeout_s * 1000;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return clc_errf(ei, CLC_ERR_IO, "%s: wait: %s", argv[0], strerror(errno));
        if (clc_mono_ms() >= deadline) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
            return clc_errf(ei, CLC_ERR_TIMEOUT, "%s: killed after %d s", argv[0], timeout_s);
        }
        clc_sleep_ms(POLL_MS);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return CLC_OK;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        return clc_errf(ei, CLC_ERR_IO, "%s: exit status 127 (not found or not executable?)",
                        argv[0]);
    if (WIFEXITED(status))
        return clc_errf(ei, CLC_ERR_IO, "%s: exit status %d", argv[0], WEXITSTATUS(status));
    return clc_errf(ei, CLC_ERR_IO, "%s: killed by signal %d", argv[0],
                    WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}
