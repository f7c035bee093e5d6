/* The dropping server of dropper.h: one thread, one connection at a time,
 * every read bounded by a 5 s silence limit. */
#include "support/dropper.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DROPPER_MAX_CONNECTIONS 64

/* Reads until the end of a request head; 0 on EOF, error or 5 s silence. */
static int read_head(int c)
{
    char buf[2048];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        struct pollfd pfd = {.fd = c, .events = POLLIN};
        if (poll(&pfd, 1, 5000) <= 0)
            return 0;
        ssize_t k = recv(c, buf + n, sizeof buf - 1 - n, 0);
        if (k <= 0)
            return 0;
        n += (size_t)k;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            return 1;
    }
    return 0;
}

static void *run(void *arg)
{
    struct test_dropper *d = arg;
    static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             "Content-Length: 2\r\n\r\nok";
    for (int i = 0; i < DROPPER_MAX_CONNECTIONS; i++) {
        int c = accept(d->fd, NULL, NULL);
        if (c < 0)
            break;
        d->accepted++;
        if (read_head(c) && send(c, ok, sizeof ok - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof ok - 1))
            read_head(c); /* the second request: dropped unanswered */
        close(c);
    }
    return NULL;
}

int test_dropper_start(struct test_dropper *d)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;

    memset(d, 0, sizeof *d);
    d->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(d->fd, 8) != 0 ||
        getsockname(d->fd, (struct sockaddr *)&a, &alen) != 0 ||
        pthread_create(&d->thread, NULL, run, d) != 0) {
        if (d->fd >= 0)
            close(d->fd);
        return -1;
    }
    d->port = ntohs(a.sin_port);
    return 0;
}

void test_dropper_stop(struct test_dropper *d)
{
    shutdown(d->fd, SHUT_RDWR); /* ends a blocked accept */
    pthread_join(d->thread, NULL);
    close(d->fd);
}
