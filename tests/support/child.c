/* A child process with its stderr drained into a log by a thread. */
#include "support/child.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"

static void *read_stderr(void *arg)
{
    struct test_child *c = arg;
    char buf[4096];
    ssize_t n;

    while ((n = read(c->err_fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&c->mu);
        size_t room = sizeof c->log - 1 - c->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(c->log + c->len, buf, take);
        c->len += take;
        c->log[c->len] = '\0';
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

int test_child_start(struct test_child *c, char *const argv[])
{
    int pe[2];

    c->len = 0;
    c->log[0] = '\0';
    if (pthread_mutex_init(&c->mu, NULL) != 0 || pipe(pe) != 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        /* A failed or killed test leaves no child behind. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(pe[1], 2);
        close(pe[0]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pe[1]);
    c->err_fd = pe[0];
    if (pthread_create(&c->reader, NULL, read_stderr, c) != 0) {
        kill(c->pid, SIGKILL);
        waitpid(c->pid, NULL, 0);
        close(c->err_fd);
        return -1;
    }
    return 0;
}

int test_child_port(struct test_child *c, const char *event, int ms)
{
    int64_t t0 = clc_mono_ms();
    int port = 0, status;

    while (clc_mono_ms() - t0 < ms) {
        pthread_mutex_lock(&c->mu);
        const char *p = strstr(c->log, event);
        const char *q = p ? strstr(p, " port=") : NULL;
        if (q != NULL)
            port = atoi(q + 6);
        pthread_mutex_unlock(&c->mu);
        if (port > 0)
            return port;
        if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
            c->pid = -1;
            return 0;
        }
        clc_sleep_ms(20);
    }
    return 0;
}

char *test_child_log(struct test_child *c)
{
    pthread_mutex_lock(&c->mu);
    char *copy = strdup(c->log);
    pthread_mutex_unlock(&c->mu);
    return copy;
}

int test_child_wait(struct test_child *c, int ms)
{
    int64_t t0 = clc_mono_ms();
    int status = 0, rc = -2;

    if (c->pid > 0) {
        for (;;) {
            pid_t got = waitpid(c->pid, &status, WNOHANG);
            if (got == c->pid) {
                rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
                break;
            }
            if (clc_mono_ms() - t0 > ms) {
                kill(c->pid, SIGKILL);
                waitpid(c->pid, &status, 0);
                break;
            }
            clc_sleep_ms(20);
        }
        c->pid = -1;
    }
    pthread_join(c->reader, NULL);
    close(c->err_fd);
    pthread_mutex_destroy(&c->mu);
    return rc;
}
