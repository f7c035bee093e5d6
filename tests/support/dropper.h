/* A local HTTP server that answers the first request on each connection and
 * closes the connection on reading the second, unanswered: what a keep-alive
 * timeout racing a request looks like to a client, which then retries the
 * request on a new connection. For tests of long-lived client handles. */
#ifndef TEST_DROPPER_H
#define TEST_DROPPER_H

#include <pthread.h>

struct test_dropper {
    int fd;
    int port;
    int accepted; /* connections taken; read after test_dropper_stop */
    pthread_t thread;
};

/* Listens on 127.0.0.1, port 0. 0 on success. */
int test_dropper_start(struct test_dropper *d);
void test_dropper_stop(struct test_dropper *d);

#endif
