/* Runs a child with pipes for stdout/stderr and a poll loop bounded by a
 * deadline, so a hanging program fails the test instead of hanging it. */
#include "support/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drain(int *fd, char *buf, size_t cap, size_t *len)
{
    char tmp[4096];
    ssize_t n = read(*fd, tmp, sizeof tmp);
    if (n <= 0) {
        if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
            close(*fd);
            *fd = -1;
        }
        return;
    }
    size_t room = cap - 1 - *len;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy(buf + *len, tmp, take);
    *len += take;
    buf[*len] = '\0';
}

int test_proc_run(char *const argv[], char *const envp[], int timeout_ms,
                  struct test_proc_result *r)
{
    int po[2], pe[2], status = 0;
    size_t lo = 0, le = 0;
    pid_t pid;

    memset(r, 0, sizeof *r);
    r->exit_code = -1;
    if (pipe(po) != 0)
        return -1;
    if (pipe(pe) != 0) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        execve(argv[0], argv, envp ? envp : environ);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    long long deadline = now_ms() + timeout_ms;
    int fo = po[0], fe = pe[0];
    while (fo >= 0 || fe >= 0) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            r->timed_out = 1;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p[2] = {{fo, POLLIN, 0}, {fe, POLLIN, 0}};
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno != EINTR)
            break;
        if (fo >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            drain(&fo, r->out, sizeof r->out, &lo);
        if (fe >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
            drain(&fe, r->err, sizeof r->err, &le);
    }
    if (fo >= 0)
        close(fo);
    if (fe >= 0)
        close(fe);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!r->timed_out && WIFEXITED(status))
        r->exit_code = WEXITSTATUS(status);
    return 0;
}
