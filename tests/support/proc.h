/* Test support: run a program with arguments and environment, capture its
 * stdout and stderr (bounded), and kill it if it outlives a deadline. */
#ifndef CLC_TEST_PROC_H
#define CLC_TEST_PROC_H

#include <stddef.h>

struct test_proc_result {
    int exit_code; /* -1 when killed by a signal or the deadline */
    int timed_out;
    char out[65536]; /* NUL-terminated, truncated */
    char err[65536];
};

/* argv[0] is the program path. envp NULL = inherit. Returns 0 when the
 * program ran (whatever its exit code), -1 if it could not be started. */
int test_proc_run(char *const argv[], char *const envp[], int timeout_ms,
                  struct test_proc_result *r);

#endif
