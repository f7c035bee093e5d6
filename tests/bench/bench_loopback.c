/* Loopback floor for ci/bench.sh queue: what this machine's kernel alone
 * costs for an HTTP-sized request/response over 127.0.0.1 TCP between two
 * processes, with no HTTP, no auth and no queue behind it. N client threads
 * each own a connection to a forked echo process (one thread per connection,
 * as civetweb serves). Prints round trips per second and the mean round trip;
 * a put+get+delete cycle is three round trips, so rate / 3 bounds any queue
 * client and server on this machine. Not run by ctest.
 * usage: bench_loopback [--threads N] [--seconds S] [--request B] [--reply B] */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "core/clock.h"

#define MAX_THREADS 64
#define MAX_MSG 65536

struct pinger {
    pthread_t tid;
    struct sockaddr_in addr;
    size_t request, reply;
    int64_t deadline_ms;
    long trips;
    int failed;
};

static int read_full(int fd, char *buf, size_t n)
{
    size_t got = 0;

    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const char *buf, size_t n)
{
    size_t sent = 0;

    while (sent < n) {
        ssize_t r = send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        sent += (size_t)r;
    }
    return 0;
}

static void nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

struct echo_conn {
    int fd;
    size_t request, reply;
};

/* Server side of one connection: read a request, answer with a reply. */
static void *echo(void *arg)
{
    struct echo_conn *c = arg;
    static char in[MAX_MSG], out[MAX_MSG]; /* contents do not matter */

    while (read_full(c->fd, in, c->request) == 0 && write_full(c->fd, out, c->reply) == 0)
        ;
    close(c->fd);
    return NULL;
}

/* The echo process: one thread per accepted connection until killed. */
static void serve(int ls, int threads, size_t request, size_t reply)
{
    static struct echo_conn conns[MAX_THREADS];
    pthread_t tid[MAX_THREADS];

    for (int i = 0; i < threads; i++) {
        int fd = accept(ls, NULL, NULL);
        if (fd < 0)
            _exit(1);
        nodelay(fd);
        conns[i] = (struct echo_conn){.fd = fd, .request = request, .reply = reply};
        if (pthread_create(&tid[i], NULL, echo, &conns[i]) != 0)
            _exit(1);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    _exit(0);
}

static void *ping(void *arg)
{
    struct pinger *p = arg;
    char *buf = calloc(1, MAX_MSG);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&p->addr, sizeof p->addr) != 0) {
        p->failed = 1;
        goto out;
    }
    nodelay(fd);
    while (clc_mono_ms() < p->deadline_ms) {
        if (write_full(fd, buf, p->request) != 0 || read_full(fd, buf, p->reply) != 0) {
            p->failed = 1;
            break;
        }
        p->trips++;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static long arg_long(const char *s, long lo, long hi, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "bench_loopback: %s must be %ld..%ld, not '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    int threads = 1;
    long seconds = 2;
    size_t request = 700, reply = 700; /* about a queue request and its answer */
    static struct pinger p[MAX_THREADS];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int ls = -1, status = 0, failed = 0;
    long trips = 0;

    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "bench_loopback: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--threads") == 0)
            threads = (int)arg_long(argv[i + 1], 1, MAX_THREADS, "--threads");
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = arg_long(argv[i + 1], 1, 600, "--seconds");
        else if (strcmp(argv[i], "--request") == 0)
            request = (size_t)arg_long(argv[i + 1], 1, MAX_MSG, "--request");
        else if (strcmp(argv[i], "--reply") == 0)
            reply = (size_t)arg_long(argv[i + 1], 1, MAX_MSG, "--reply");
        else {
            fprintf(stderr, "usage: bench_loopback [--threads N] [--seconds S] [--request B] "
                            "[--reply B]\n");
            return 2;
        }
    }
    ls = socket(AF_INET, SOCK_STREAM, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 || listen(ls, threads) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("bench_loopback: listen");
        return 1;
    }
    pid_t child = fork();
    if (child < 0) {
        perror("bench_loopback: fork");
        return 1;
    }
    if (child == 0)
        serve(ls, threads, request, reply);
    close(ls);
    int64_t start = clc_mono_ms();
    for (int i = 0; i < threads; i++) {
        p[i] = (struct pinger){
            .addr = a, .request = request, .reply = reply, .deadline_ms = start + seconds * 1000};
        if (pthread_create(&p[i].tid, NULL, ping, &p[i]) != 0) {
            fprintf(stderr, "bench_loopback: pthread_create failed\n");
            kill(child, SIGKILL);
            waitpid(child, &status, 0);
            return 1;
        }
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(p[i].tid, NULL);
        trips += p[i].trips;
        failed |= p[i].failed;
    }
    double elapsed = (double)(clc_mono_ms() - start) / 1000.0;
    /* The echo threads end when their connections close; after a failure
     * some may never have connected, so the echo process is stopped. */
    if (failed)
        kill(child, SIGKILL);
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        failed = 1;
    if (failed || trips == 0) {
        fprintf(stderr, "bench_loopback: a connection failed\n");
        return 1;
    }
    double rate = (double)trips / elapsed;
    printf("threads=%d trips=%ld seconds=%.2f rate=%.1f rtt_us=%.1f\n", threads, trips, elapsed,
           rate, 1e6 * threads / rate);
    return 0;
}
