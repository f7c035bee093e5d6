/* Test support: a throwaway MIT Kerberos realm (see kdc.h). */
#include "support/kdc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define KRB5KDC "/usr/sbin/krb5kdc"
#define KDB5_UTIL "/usr/sbin/kdb5_util"
#define KADMIN_LOCAL "/usr/sbin/kadmin.local"
#define KINIT "/usr/bin/kinit"
#define TOOL_TIMEOUT_MS 20000
#define READY_TIMEOUT_MS 5000
#define STOP_TIMEOUT_MS 3000
#define PORT_TRIES 5

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

int test_kdc_available(void)
{
    return access(KRB5KDC, X_OK) == 0 && access(KDB5_UTIL, X_OK) == 0 &&
           access(KADMIN_LOCAL, X_OK) == 0;
}

/* The children's environment: nothing from ours but PATH, and the realm. */
static void child_env(const struct test_kdc *k, char *store, size_t n, char *envp[4])
{
    int a = snprintf(store, n, "KRB5_CONFIG=%s", k->krb5_conf);
    int b = snprintf(store + a + 1, n - (size_t)a - 1, "KRB5_KDC_PROFILE=%s", k->kdc_conf);

    snprintf(store + a + b + 2, n - (size_t)(a + b) - 2, "PATH=/usr/sbin:/usr/bin:/sbin:/bin");
    envp[0] = store;
    envp[1] = store + a + 1;
    envp[2] = store + a + b + 2;
    envp[3] = NULL;
}

/* Forks argv with stdout and stderr appended to log, stdin from a pipe
 * (returned in *in_fd, or /dev/null when in_fd is NULL). */
static pid_t spawn(const struct test_kdc *k, char *const argv[], const char *log, int *in_fd)
{
    char store[1024];
    char *envp[4];
    int p[2] = {-1, -1};
    pid_t pid;

    child_env(k, store, sizeof store, envp);
    if (in_fd != NULL && pipe(p) != 0)
        return -1;
    pid = fork();
    if (pid == 0) {
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int in = in_fd != NULL ? p[0] : open("/dev/null", O_RDONLY);
        if (out < 0 || in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(127);
        if (in_fd != NULL)
            close(p[1]);
        setpgid(0, 0);
        execve(argv[0], argv, envp);
        _exit(127);
    }
    if (in_fd != NULL) {
        close(p[0]);
        if (pid < 0)
            close(p[1]);
        else
            *in_fd = p[1];
    }
    return pid;
}

/* Waits up to ms for pid: its exit code, -1 after a signal, -2 when it was
 * killed at the deadline. */
static int wait_for(pid_t pid, int ms)
{
    long long end = now_ms() + ms;
    int st = 0;

    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_ms() >= end) {
            kill(-pid, SIGKILL);
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -2;
        }
        pause_ms(10);
    }
}

static void show_log(const char *log)
{
    char buf[4096];
    FILE *f = fopen(log, "r");
    size_t n;

    if (f == NULL)
        return;
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "--- %s ---\n%s\n", log, buf);
}

/* Runs a tool to its end, feeding stdin_text (may be NULL). 0 when it exits 0. */
static int run_tool(const struct test_kdc *k, char *const argv[], const char *stdin_text)
{
    char log[256];
    int in = -1, rc;
    pid_t pid;

    snprintf(log, sizeof log, "%s/tools.log", k->dir);
    pid = spawn(k, argv, log, stdin_text ? &in : NULL);
    if (pid < 0) {
        fprintf(stderr, "kdc: cannot start %s: %s\n", argv[0], strerror(errno));
        return -1;
    }
    if (in >= 0) {
        size_t len = strlen(stdin_text), off = 0;
        while (off < len) {
            ssize_t w = write(in, stdin_text + off, len - off);
            if (w <= 0 && errno != EINTR)
                break;
            if (w > 0)
                off += (size_t)w;
        }
        close(in);
    }
    rc = wait_for(pid, TOOL_TIMEOUT_MS);
    if (rc != 0) {
        fprintf(stderr, "kdc: %s exited with %d\n", argv[0], rc);
        show_log(log);
        return -1;
    }
    return 0;
}

/* A port free for both TCP and UDP on 127.0.0.1 just now (krb5kdc cannot
 * take port 0; a clash later is retried by the caller). */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    int t = socket(AF_INET, SOCK_STREAM, 0), u = -1, port = 0;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (t >= 0 && bind(t, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(t, (struct sockaddr *)&sa, &sl) == 0) {
        u = socket(AF_INET, SOCK_DGRAM, 0);
        if (u >= 0 && bind(u, (struct sockaddr *)&sa, sizeof sa) == 0)
            port = ntohs(sa.sin_port);
    }
    if (t >= 0)
        close(t);
    if (u >= 0)
        close(u);
    return port;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    int ok;

    if (f == NULL)
        return -1;
    ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int write_confs(struct test_kdc *k)
{
    char text[2048];

    snprintf(text, sizeof text,
             "[kdcdefaults]\n kdc_listen = 127.0.0.1:%d\n kdc_tcp_listen = 127.0.0.1:%d\n"
             "[realms]\n %s = {\n  database_name = %s/principal\n"
             "  key_stash_file = %s/stash\n  acl_file = %s/kadm5.acl\n"
             "  kdc_listen = 127.0.0.1:%d\n  kdc_tcp_listen = 127.0.0.1:%d\n"
             "  max_life = 10h 0m 0s\n }\n"
             "[logging]\n kdc = FILE:%s/kdc.log\n admin_server = FILE:%s/kadmin.log\n"
             " default = FILE:%s/krb5.log\n",
             k->port, k->port, k->realm, k->dir, k->dir, k->dir, k->port, k->port, k->dir, k->dir,
             k->dir);
    if (write_text(k->kdc_conf, text) != 0)
        return -1;
    /* No DNS, no reverse lookups: the SPN for https://127.0.0.1:port is
     * HTTP/127.0.0.1, and 127.0.0.1 maps to the realm. TCP first. */
    snprintf(text, sizeof text,
             "[libdefaults]\n default_realm = %s\n dns_lookup_kdc = false\n"
             " dns_lookup_realm = false\n dns_canonicalize_hostname = false\n rdns = false\n"
             " udp_preference_limit = 1\n default_ccache_name = FILE:%s/default.ccache\n"
             " default_client_keytab_name = FILE:%s/no-client.keytab\n"
             "[realms]\n %s = {\n  kdc = 127.0.0.1:%d\n }\n"
             "[domain_realm]\n 127.0.0.1 = %s\n localhost = %s\n",
             k->realm, k->dir, k->dir, k->realm, k->port, k->realm, k->realm);
    if (write_text(k->krb5_conf, text) != 0)
        return -1;
    snprintf(text, sizeof text, "%s/kadm5.acl", k->dir);
    return write_text(text, "");
}

/* The master password: random, only ever on kdb5_util's stdin. */
static int create_db(struct test_kdc *k)
{
    static const char alpha[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char rnd[24];
    char pw[sizeof rnd + 1], input[2 * sizeof rnd + 4];
    char *argv[] = {KDB5_UTIL, "create", "-s", "-r", k->realm, NULL};
    int rc;

    if (RAND_bytes(rnd, sizeof rnd) != 1)
        return -1;
    for (size_t i = 0; i < sizeof rnd; i++)
        pw[i] = alpha[rnd[i] % (sizeof alpha - 1)];
    pw[sizeof rnd] = '\0';
    snprintf(input, sizeof input, "%s\n%s\n", pw, pw);
    rc = run_tool(k, argv, input);
    OPENSSL_cleanse(pw, sizeof pw);
    OPENSSL_cleanse(input, sizeof input);
    OPENSSL_cleanse(rnd, sizeof rnd);
    return rc;
}

/* Starts krb5kdc and waits for its TCP port: 0 ready, 1 it exited (a port
 * clash, say), -1 it did not come up in time. */
static int start_kdc(struct test_kdc *k)
{
    char log[256];
    char *argv[] = {KRB5KDC, "-n", "-r", k->realm, NULL};
    long long end = now_ms() + READY_TIMEOUT_MS;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    int st;

    snprintf(log, sizeof log, "%s/krb5kdc.out", k->dir);
    k->pid = spawn(k, argv, log, NULL);
    if (k->pid < 0) {
        k->pid = 0;
        return -1;
    }
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((unsigned short)k->port);
    while (now_ms() < end) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        int ok = s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (s >= 0)
            close(s);
        if (waitpid(k->pid, &st, WNOHANG) == k->pid) {
            k->pid = 0;
            show_log(log);
            return 1;
        }
        if (ok)
            return 0;
        pause_ms(20);
    }
    show_log(log);
    return -1;
}

int test_kdc_start(struct test_kdc *k, const char *realm)
{
    int rc = 1;

    memset(k, 0, sizeof *k);
    if (!test_kdc_available()) {
        fprintf(stderr, "kdc: krb5kdc/kdb5_util/kadmin.local not installed "
                        "(Debian krb5-kdc, krb5-admin-server; ci/install-deps.sh)\n");
        return -1;
    }
    snprintf(k->realm, sizeof k->realm, "%s", realm);
    snprintf(k->dir, sizeof k->dir, "/tmp/clc-kdc-XXXXXX");
    if (mkdtemp(k->dir) == NULL)
        return -1;
    snprintf(k->krb5_conf, sizeof k->krb5_conf, "%s/krb5.conf", k->dir);
    snprintf(k->kdc_conf, sizeof k->kdc_conf, "%s/kdc.conf", k->dir);
    for (int i = 0; i < PORT_TRIES && rc == 1; i++) {
        k->port = free_port();
        if (k->port == 0 || write_confs(k) != 0)
            return -1;
        if (i == 0 && create_db(k) != 0)
            return -1;
        rc = start_kdc(k);
    }
    if (rc != 0)
        return -1;
    /* GSS-API in this process (libcurl, the emulator's acceptor) reads it. */
    return setenv("KRB5_CONFIG", k->krb5_conf, 1) == 0 ? 0 : -1;
}

int test_kdc_add_principal(struct test_kdc *k, const char *principal, const char *keytab)
{
    char q1[384], q2[640];
    char *add[] = {KADMIN_LOCAL, "-r", k->realm, "-q", q1, NULL};
    char *kt[] = {KADMIN_LOCAL, "-r", k->realm, "-q", q2, NULL};

    snprintf(q1, sizeof q1, "addprinc -randkey %s", principal);
    snprintf(q2, sizeof q2, "ktadd -k %s %s", keytab, principal);
    if (run_tool(k, add, NULL) != 0 || run_tool(k, kt, NULL) != 0)
        return -1;
    return access(keytab, R_OK) == 0 ? 0 : -1;
}

int test_kdc_kinit(struct test_kdc *k, const char *principal, const char *keytab,
                   const char *ccache)
{
    char *argv[] = {KINIT, "-k", "-t", (char *)keytab, "-c", (char *)ccache, (char *)principal,
                    NULL};

    if (access(KINIT, X_OK) != 0)
        return 1;
    return run_tool(k, argv, NULL);
}

void test_kdc_stop(struct test_kdc *k)
{
    char cmd[300];

    if (k->pid > 0) {
        kill(k->pid, SIGTERM);
        if (wait_for(k->pid, STOP_TIMEOUT_MS) == -2)
            fprintf(stderr, "kdc: krb5kdc did not stop on SIGTERM\n");
        k->pid = 0;
    }
    if (strncmp(k->dir, "/tmp/clc-kdc-", 13) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", k->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "kdc: could not remove %s\n", k->dir);
    }
    k->dir[0] = '\0';
}
