/* The queue client suite against a real Azurite (npm azurite, queue service
 * only, in memory, plain http, Shared Key checked), started here on a free
 * port and stopped at the end. Clock-driven cases are emulator-only: Azurite
 * runs on wall time. Skipped (77) when node or the npm package is missing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "queue_client_suite.h"

#define AZURITE CLC_SOURCE_DIR "/tests/interop/node_modules/.bin/azurite-queue"

extern char **environ;
static pid_t azurite_pid = -1;

static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd < 0)
        return -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int can_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
    if (fd < 0)
        return 0;
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void stop_azurite(void)
{
    if (azurite_pid <= 0)
        return;
    kill(azurite_pid, SIGTERM);
    for (int i = 0; i < 50; i++) {
        if (waitpid(azurite_pid, NULL, WNOHANG) == azurite_pid) {
            azurite_pid = -1;
            return;
        }
        usleep(100 * 1000);
    }
    kill(azurite_pid, SIGKILL);
    waitpid(azurite_pid, NULL, 0);
    azurite_pid = -1;
}

static int setup(void **state)
{
    (void)state;
    char portstr[16];
    int port = free_port();
    posix_spawn_file_actions_t fa;

    if (port <= 0)
        return -1;
    snprintf(portstr, sizeof portstr, "%d", port);
    char *argv[] = {(char *)AZURITE,
                    "--queueHost",
                    "127.0.0.1",
                    "--queuePort",
                    portstr,
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--disableTelemetry",
                    "--silent",
                    "--extentMemoryLimit",
                    "64",
                    NULL};
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (posix_spawn(&azurite_pid, AZURITE, &fa, NULL, argv, environ) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        fprintf(stderr, "could not start %s\n", AZURITE);
        return -1;
    }
    posix_spawn_file_actions_destroy(&fa);
    /* Node takes a second or two to listen; bounded at 20 s. */
    for (int i = 0; i < 200 && !can_connect(port); i++) {
        if (waitpid(azurite_pid, NULL, WNOHANG) == azurite_pid) {
            fprintf(stderr, "azurite exited before listening\n");
            azurite_pid = -1;
            return -1;
        }
        usleep(100 * 1000);
    }
    if (!can_connect(port)) {
        fprintf(stderr, "azurite did not listen on %d within 20 s\n", port);
        stop_azurite();
        return -1;
    }
    qcb.name = "azurite";
    snprintf(qcb.endpoint, sizeof qcb.endpoint, "http://127.0.0.1:%d/%s", port, QC_DEV_ACCOUNT);
    qcb.ca_bundle = NULL;
    qcb.clock.now_ms = NULL; /* wall time */
    qcb.is_azurite = 1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    stop_azurite();
    return 0;
}

int main(void)
{
    struct stat st;
    if (stat(AZURITE, &st) != 0 || system("node --version >/dev/null 2>&1") != 0) {
        printf("SKIP: azurite or node missing (npm ci in tests/interop)\n");
        return 77;
    }
    return qc_run("queue_client_azurite", NULL, 0, setup, teardown);
}
