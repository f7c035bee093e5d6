/* Test support: a long-running child process (certlc serve, certlc worker)
 * whose stderr a thread keeps reading into a bounded log, so the child never
 * blocks on a full pipe and the test can wait for log lines and show the log
 * when something fails. Every wait has a deadline. */
#ifndef CLC_TEST_CHILD_H
#define CLC_TEST_CHILD_H

#include <pthread.h>
#include <stddef.h>
#include <sys/types.h>

#define TEST_CHILD_LOG_MAX (512 * 1024)

struct test_child {
    pid_t pid;
    int err_fd;
    pthread_t reader;
    pthread_mutex_t mu;
    char log[TEST_CHILD_LOG_MAX]; /* NUL-terminated; read under mu or after wait */
    size_t len;
};

/* Starts argv[0] with stdin/stdout on /dev/null and stderr collected. The
 * child gets SIGTERM if the test process dies. 0 on success. */
int test_child_start(struct test_child *c, char *const argv[]);
/* The number after " port=" on the first log line holding `event`
 * ("event=webhook.listening"); 0 when the child exited or ms passed first. */
int test_child_port(struct test_child *c, const char *event, int ms);
/* A copy of the log so far (malloc'd). */
char *test_child_log(struct test_child *c);
/* Waits up to ms for the child to exit (SIGKILL after that), then joins the
 * reader: the exit code, -1 when killed by a signal, -2 when killed at the
 * deadline. Frees what start took; call exactly once. */
int test_child_wait(struct test_child *c, int ms);

#endif
