/* certlc serve as a child process for the pipeline tests: started with the
 * fixture's configuration, its stderr read continuously (so it never blocks
 * on a full pipe) and kept for failure messages, its port taken from the
 * "webhook.listening" log line, stopped with SIGTERM under a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "pipeline_fixture.h"
#include "support/child.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"
#define START_MS 15000
#define STOP_MS 15000

struct pf_child {
    struct pf_child *next; /* the running ones, for pf_serve_stop_all */
    int port;
    struct test_child ch;
};

static struct pf_child *running;

struct pf_child *pf_serve_start(void)
{
    char *argv[] = {CERTLC, "--config", pf_config, "serve", NULL};
    struct pf_child *c = calloc(1, sizeof *c);

    assert_non_null(c);
    assert_int_equal(test_child_start(&c->ch, argv), 0);
    c->port = test_child_port(&c->ch, "event=webhook.listening", START_MS);
    if (c->port == 0) {
        test_child_wait(&c->ch, STOP_MS);
        fprintf(stderr, "%s\n", c->ch.log);
        free(c);
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
    assert_int_equal(kill(c->ch.pid, SIGUSR1), 0);
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
    if (c->ch.pid > 0)
        kill(c->ch.pid, SIGTERM);
    int rc = test_child_wait(&c->ch, STOP_MS);
    if (rc != 0)
        fprintf(stderr, "certlc serve exited %d:\n%s\n", rc, c->ch.log);
    free(c);
    return rc;
}

void pf_serve_stop_all(void)
{
    while (running)
        pf_serve_stop(running);
}

const char *pf_serve_log(struct pf_child *c)
{
    static char copy[TEST_CHILD_LOG_MAX];

    pthread_mutex_lock(&c->ch.mu);
    memcpy(copy, c->ch.log, c->ch.len + 1);
    pthread_mutex_unlock(&c->ch.mu);
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
