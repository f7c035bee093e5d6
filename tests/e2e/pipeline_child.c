/* certlc serve as a child process for the pipeline tests: started with the
 * fixture's configuration, its stderr read continuously (so it never blocks
 * on a full pipe) and kept for failure messages, its port taken from the
 * "webhook.listening" log line, stopped with SIGTERM under a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "pipeline_fixture.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"
#define START_MS 15000
#define STOP_MS 15000
#define LOG_MAX (512 * 1024)

struct pf_child {
    struct pf_child *next; /* the running ones, for pf_serve_stop_all */
    pid_t pid;
    int err_fd;
    int port;
    pthread_t reader;
    pthread_mutex_t mu;
    char *log;
    size_t len;
};

static struct pf_child *running;

static void *read_stderr(void *arg)
{
    struct pf_child *c = arg;
    char buf[4096];
    ssize_t n;

    while ((n = read(c->err_fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        pthread_mutex_lock(&c->mu);
        size_t room = LOG_MAX - 1 - c->len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(c->log + c->len, buf, take);
        c->len += take;
        c->log[c->len] = '\0';
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* The port from "event=webhook.listening ... port=N"; 0 when the child
 * exited or the deadline passed first. */
static int wait_port(struct pf_child *c)
{
    int64_t t0 = clc_mono_ms();
    int port = 0, status;

    while (clc_mono_ms() - t0 < START_MS) {
        pthread_mutex_lock(&c->mu);
        const char *p = strstr(c->log, "event=webhook.listening");
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

/* Reaps the child (bounded), joins the reader; the exit code. */
static int reap(struct pf_child *c, int ms)
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
    return rc;
}

static void child_free(struct pf_child *c)
{
    pthread_mutex_destroy(&c->mu);
    free(c->log);
    free(c);
}

struct pf_child *pf_serve_start(void)
{
    int pe[2];
    char *argv[] = {CERTLC, "--config", pf_config, "serve", NULL};
    struct pf_child *c = calloc(1, sizeof *c);

    assert_non_null(c);
    c->log = calloc(1, LOG_MAX);
    assert_non_null(c->log);
    pthread_mutex_init(&c->mu, NULL);
    assert_int_equal(pipe(pe), 0);
    c->pid = fork();
    assert_true(c->pid >= 0);
    if (c->pid == 0) {
        /* A test that fails (or a test binary that is killed) leaves no
         * certlc serve behind. */
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
    assert_int_equal(pthread_create(&c->reader, NULL, read_stderr, c), 0);
    c->port = wait_port(c);
    if (c->port == 0) {
        reap(c, STOP_MS);
        fprintf(stderr, "%s\n", c->log);
        child_free(c);
        fail_msg("certlc serve did not start (log above)");
    }
    c->next = running;
    running = c;
    return c;
}

int pf_serve_port(const struct pf_child *c)
{
    return c->port;
}

void pf_serve_wake(struct pf_child *c)
{
    assert_int_equal(kill(c->pid, SIGUSR1), 0);
}

int pf_serve_stop(struct pf_child *c)
{
    if (c == NULL)
        return 0;
    for (struct pf_child **l = &running; *l; l = &(*l)->next)
        if (*l == c) {
            *l = c->next;
            break;
        }
    if (c->pid > 0)
        kill(c->pid, SIGTERM);
    int rc = reap(c, STOP_MS);
    if (rc != 0)
        fprintf(stderr, "certlc serve exited %d:\n%s\n", rc, c->log);
    child_free(c);
    return rc;
}

void pf_serve_stop_all(void)
{
    while (running)
        pf_serve_stop(running);
}

const char *pf_serve_log(struct pf_child *c)
{
    static char copy[LOG_MAX];

    pthread_mutex_lock(&c->mu);
    memcpy(copy, c->log, c->len + 1);
    pthread_mutex_unlock(&c->mu);
    return copy;
}

long pf_serve_get(struct pf_child *c, const char *path, char **body)
{
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    char url[300];
    long st;

    snprintf(url, sizeof url, "https://127.0.0.1:%d%s", c->port, path);
    struct clc_http_req req = {.method = "GET", .url = url};
    clc_http_resp_init(&resp);
    if (clc_http_do(R.admin_http, &req, &resp, &ei) != CLC_OK)
        fail_msg("GET %s: %s", path, ei.msg);
    st = resp.status;
    *body = clc_buf_take(&resp.body, NULL);
    clc_http_resp_cleanup(&resp);
    return st;
}

double pf_metric(const char *text, const char *series)
{
    const char *p = text;
    size_t n = strlen(series);

    while (p && (p = strstr(p, series)) != NULL) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
        p += n;
    }
    return -1;
}
