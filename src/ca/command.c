/* The "command" CA: runs a configured program (argv from the configuration,
 * no shell) with the CSR PEM on stdin and reads its answer from stdout and its
 * exit code: 0 issued (PEM chain), 3 pending (request id), 2 denied (reason),
 * 75 try again later, anything else an error. Bounded output, a deadline that
 * kills the whole process group, stderr to the log, secrets only on fd 3. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca/ca_int.h"
#include "core/log.h"
#include "crypto/x509.h"

#define EXIT_ISSUED 0
#define EXIT_DENIED 2
#define EXIT_PENDING 3
#define EXIT_TEMPFAIL 75
#define OUT_MAX (1024 * 1024)
#define ERR_MAX (64 * 1024)
#define PW_MAX 4096
#define ENV_MAX 48
#define KILL_GRACE_MS 1000

/* Passed through when set: what programs need to run, and Kerberos
 * locations (paths, not secrets) for tools like certreq wrappers. */
static const char *const base_env[] = {"PATH",       "HOME",        "LANG",
                                       "LC_ALL",     "TZ",          "TMPDIR",
                                       "KRB5CCNAME", "KRB5_CONFIG", "KRB5_CLIENT_KTNAME"};

struct run {
    struct clc_buf out;
    struct clc_buf err;
    int exit_code; /* -1 when it did not exit normally */
    int signal;
    int timed_out;
};

static int secret_like(const char *name)
{
    static const char *const words[] = {"PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strcasestr(name, words[i]))
            return 1;
    return 0;
}

static enum clc_err env_add(char **envp, size_t *n, const char *name, const char *val)
{
    size_t len = strlen(name) + strlen(val) + 2;
    char *s = NULL;

    if (*n >= ENV_MAX)
        return CLC_ERR_LIMIT;
    s = malloc(len);
    if (!s)
        return CLC_ERR_NOMEM;
    snprintf(s, len, "%s=%s", name, val);
    envp[(*n)++] = s;
    envp[*n] = NULL;
    return CLC_OK;
}

static enum clc_err build_env(const struct clc_ca *ca, const char *op, const char *tmpl,
                              const char *id, char **envp, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    size_t n = 0;

    envp[0] = NULL;
    for (size_t i = 0; rc == CLC_OK && i < sizeof base_env / sizeof base_env[0]; i++) {
        const char *v = getenv(base_env[i]);
        if (v)
            rc = env_add(envp, &n, base_env[i], v);
    }
    for (size_t i = 0; rc == CLC_OK && i < ca->conf.npass_env; i++) {
        const char *v = getenv(ca->conf.pass_env[i]);
        if (secret_like(ca->conf.pass_env[i]))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "CA '%s': pass_env '%s' looks like a secret; secrets go to the "
                            "command on fd 3 (password_file/password_env), never in its "
                            "environment",
                            ca->conf.name, ca->conf.pass_env[i]);
        if (v)
            rc = env_add(envp, &n, ca->conf.pass_env[i], v);
    }
    if (rc == CLC_OK)
        rc = env_add(envp, &n, "CERTLC_CA_NAME", ca->conf.name);
    if (rc == CLC_OK)
        rc = env_add(envp, &n, "CERTLC_CA_OPERATION", op);
    if (rc == CLC_OK && tmpl && tmpl[0])
        rc = env_add(envp, &n, "CERTLC_CA_TEMPLATE", tmpl);
    if (rc == CLC_OK && id)
        rc = env_add(envp, &n, "CERTLC_CA_REQUEST_ID", id);
    if (rc == CLC_OK && ca->conf.password)
        rc = env_add(envp, &n, "CERTLC_PASSWORD_FD", "3");
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "CA '%s': building the command's environment failed",
                        ca->conf.name);
    return CLC_OK;
}

static void free_env(char **envp)
{
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
}

/* The program to exec: as given when it has a '/', else found on PATH. */
static enum clc_err resolve(const char *prog, char *out, size_t n, struct clc_errinfo *ei)
{
    const char *path = getenv("PATH");

    if (strchr(prog, '/')) {
        if (access(prog, X_OK) != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "command %s is not executable: %s", prog,
                            strerror(errno));
        snprintf(out, n, "%s", prog);
        return CLC_OK;
    }
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin";
    while (*path) {
        size_t dl = strcspn(path, ":");
        if (dl > 0 && (size_t)snprintf(out, n, "%.*s/%s", (int)dl, path, prog) < n &&
            access(out, X_OK) == 0)
            return CLC_OK;
        path += dl;
        if (*path == ':')
            path++;
    }
    return clc_errf(ei, CLC_ERR_CONFIG, "command '%s' not found on PATH", prog);
}

static void close_pair(int p[2])
{
    for (int i = 0; i < 2; i++)
        if (p[i] >= 0) {
            close(p[i]);
            p[i] = -1;
        }
}

/* In the child, between fork and exec: async-signal-safe calls only. */
static void child(const char *path, char *const argv[], char *const envp[], int in, int out,
                  int err, int pw)
{
    struct sigaction sa;

    setpgid(0, 0);
    if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    if (pw >= 0) {
        if (dup2(pw, 3) < 0)
            _exit(127);
    }
    if (close_range(pw >= 0 ? 4 : 3, ~0U, 0) != 0) {
        for (int fd = pw >= 0 ? 4 : 3; fd < 4096; fd++)
            close(fd);
    }
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(SIGPIPE, &sa, NULL);
    execve(path, argv, envp);
    _exit(127);
}

static void drain_line_log(const struct clc_ca *ca, const struct clc_buf *err)
{
    const char *s = clc_buf_str(err);
    int lines = 0;

    while (*s && lines < 50) {
        char line[512];
        size_t n = strcspn(s, "\n");
        clc_ca_set_text(line, sizeof line, s, n);
        if (line[0])
            clc_log(CLC_LOG_INFO, "ca.command.stderr", CLC_LS("ca", ca->conf.name),
                    CLC_LS("line", line));
        s += n;
        if (*s == '\n')
            s++;
        lines++;
    }
}

/* Kills the group and reaps the child: SIGTERM, a short grace, SIGKILL. */
static void kill_group(pid_t pid, int *status)
{
    int64_t until = clc_mono_ms() + KILL_GRACE_MS;

    kill(-pid, SIGTERM);
    while (clc_mono_ms() < until) {
        if (waitpid(pid, status, WNOHANG) == pid) {
            kill(-pid, SIGKILL); /* anything left in the group */
            return;
        }
        poll(NULL, 0, 20);
    }
    kill(-pid, SIGKILL);
    while (waitpid(pid, status, 0) < 0 && errno == EINTR) {
    }
}

static enum clc_err run(struct clc_ca *ca, const char *op, const char *arg, const char *tmpl,
                        const char *id, const struct clc_ca_csr *csr, struct run *r,
                        struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *argv[CLC_CA_MAX_ARGV + 3];
    char *envp[ENV_MAX + 1];
    char path[1024];
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1}, pw[2] = {-1, -1};
    const char *stdin_data = csr ? clc_ca_csr_pem(csr) : "";
    size_t in_len = strlen(stdin_data), in_off = 0;
    pid_t pid = -1;
    int status = 0;
    int64_t deadline = clc_mono_ms() + ca->conf.timeout_ms;
    size_t na = 0;

    envp[0] = NULL;
    for (; na < ca->conf.argc; na++)
        argv[na] = ca->conf.argv[na];
    argv[na++] = (char *)op;
    if (arg && arg[0])
        argv[na++] = (char *)arg;
    argv[na] = NULL;
    rc = resolve(argv[0], path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = build_env(ca, op, tmpl, id, envp, ei);
    if (rc != CLC_OK)
        goto out;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
        pipe2(err, O_CLOEXEC) != 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "command: pipes: %s", strerror(errno));
        goto out;
    }
    if (ca->conf.password) {
        size_t pl = clc_secret_len(ca->conf.password);
        /* Written whole before the child starts: fits the pipe buffer. */
        if (pl > PW_MAX) {
            rc = clc_errf(ei, CLC_ERR_CONFIG, "CA '%s': password longer than %d bytes",
                          ca->conf.name, PW_MAX);
            goto out;
        }
        if (pipe2(pw, O_CLOEXEC) != 0 ||
            write(pw[1], clc_secret_reveal(ca->conf.password), pl) != (ssize_t)pl) {
            rc = clc_errf(ei, CLC_ERR_IO, "command: password pipe: %s", strerror(errno));
            goto out;
        }
        close(pw[1]);
        pw[1] = -1;
    }
    pid = fork();
    if (pid < 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "command: fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0)
        child(path, argv, envp, in[1], out[1], err[1], pw[0]);
    setpgid(pid, pid); /* also done by the child; whichever runs first */
    close(in[1]);
    close(out[1]);
    close(err[1]);
    in[1] = out[1] = err[1] = -1;
    close_pair(pw);
    fcntl(in[0], F_SETFL, O_NONBLOCK);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    if (in_len == 0)
        shutdown(in[0], SHUT_WR);

    /* Until both outputs end; every wait is bounded by the deadline. */
    while (out[0] >= 0 || err[0] >= 0) {
        struct pollfd fds[3];
        int nf = 0;
        int64_t left = deadline - clc_mono_ms();
        if (left <= 0) {
            r->timed_out = 1;
            break;
        }
        fds[nf++] = (struct pollfd){.fd = out[0], .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = err[0], .events = POLLIN};
        fds[nf++] = (struct pollfd){.fd = in_off < in_len ? in[0] : -1, .events = POLLOUT};
        if (poll(fds, (nfds_t)nf, (int)(left > 1000 ? 1000 : left)) < 0 && errno != EINTR) {
            rc = clc_errf(ei, CLC_ERR_IO, "command: poll: %s", strerror(errno));
            break;
        }
        if (fds[2].revents & (POLLOUT | POLLERR | POLLHUP)) {
            ssize_t w =
                send(in[0], stdin_data + in_off, in_len - in_off, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                in_off += (size_t)w;
            /* A program that does not read its input is its own business. */
            if (w < 0 && errno != EAGAIN && errno != EINTR)
                in_off = in_len;
            if (in_off >= in_len)
                shutdown(in[0], SHUT_WR);
        }
        for (int i = 0; i < 2; i++) {
            int *fd = i == 0 ? &out[0] : &err[0];
            struct clc_buf *b = i == 0 ? &r->out : &r->err;
            char chunk[4096];
            if (*fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t got = read(*fd, chunk, sizeof chunk);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                close(*fd);
                *fd = -1;
            } else if (got > 0 && clc_buf_append(b, chunk, (size_t)got) != CLC_OK && i == 0) {
                rc = clc_errf(ei, CLC_ERR_LIMIT,
                              "CA '%s': the command wrote more than %d bytes to stdout",
                              ca->conf.name, OUT_MAX);
                goto reap;
            }
            /* stderr past its cap is read and dropped, so the child never blocks. */
        }
    }
    if (!r->timed_out && rc == CLC_OK) {
        /* Outputs closed: wait for the exit, still within the deadline. */
        for (;;) {
            pid_t w = waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                pid = -1;
                break;
            }
            if (clc_mono_ms() >= deadline) {
                r->timed_out = 1;
                break;
            }
            poll(NULL, 0, 10);
        }
    }
reap:
    if (pid > 0) {
        kill_group(pid, &status);
        pid = -1;
    }
    if (r->timed_out) {
        rc = clc_errf(ei, CLC_ERR_TIMEOUT,
                      "CA '%s': the command did not finish within %ld s "
                      "(its process group was killed)",
                      ca->conf.name, ca->conf.timeout_ms / 1000);
    } else if (WIFEXITED(status)) {
        r->exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        r->exit_code = -1;
        r->signal = WTERMSIG(status);
    }
    drain_line_log(ca, &r->err);
out:
    close_pair(in);
    close_pair(out);
    close_pair(err);
    close_pair(pw);
    free_env(envp);
    return rc;
}

/* First non-empty line of b, made printable. */
static void first_line(const struct clc_buf *b, char *dst, size_t n)
{
    const char *s = clc_buf_str(b);

    dst[0] = '\0';
    while (*s) {
        size_t l = strcspn(s, "\r\n");
        clc_ca_set_text(dst, n, s, l);
        if (dst[0])
            return;
        s += l;
        s += strspn(s, "\r\n");
    }
}

static int id_ok(const char *id)
{
    size_t n = 0;
    if (id[0] == '-')
        return 0;
    for (; id[n]; n++)
        if ((unsigned char)id[n] <= 0x20 || (unsigned char)id[n] >= 0x7f)
            return 0;
    return n > 0 && n < CLC_CA_ID_MAX;
}

static enum clc_err interpret(struct clc_ca *ca, const struct clc_ca_req *req, struct run *r,
                              struct clc_ca_result *res, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *set = NULL;
    STACK_OF(X509) *chain = NULL;
    char line[CLC_CA_REASON_MAX];
    const struct clc_ca_csr *csr = req ? req->csr : NULL;

    switch (r->exit_code) {
    case EXIT_ISSUED:
        rc = clc_x509_parse_pem_chain(clc_buf_str(&r->out), r->out.len, &set, ei);
        if (rc != CLC_OK || sk_X509_num(set) == 0) {
            snprintf(line, sizeof line, "%s",
                     rc != CLC_OK && ei && ei->msg[0] ? ei->msg : "no certificates");
            rc = clc_errf(ei, CLC_ERR_PARSE,
                          "CA '%s': the command exited 0 but its stdout is not a PEM "
                          "certificate chain (%s)",
                          ca->conf.name, line);
            break;
        }
        rc = clc_ca_chain_order(NULL, set, csr ? X509_REQ_get0_pubkey(clc_ca_csr_req(csr)) : NULL,
                                &chain, ei);
        if (rc == CLC_OK) {
            rc = clc_ca_finish_issued(ca, req, chain, res, ei);
            chain = NULL;
        }
        break;
    case EXIT_PENDING: {
        const char *ra = strstr(clc_buf_str(&r->out), "retry-after:");
        first_line(&r->out, line, sizeof line);
        if (!id_ok(line)) {
            rc = clc_errf(ei, CLC_ERR_PARSE,
                          "CA '%s': the command exited %d (pending) without a request id on "
                          "the first line of stdout",
                          ca->conf.name, EXIT_PENDING);
            break;
        }
        res->disposition = CLC_CA_PENDING;
        memcpy(res->request_id, line, strlen(line) + 1); /* id_ok: shorter than the field */
        res->retry_after_s = ca->conf.poll_interval_s;
        if (ra) {
            long v = strtol(ra + strlen("retry-after:"), NULL, 10);
            if (v > 0 && v <= 7 * 86400)
                res->retry_after_s = v;
        }
        break;
    }
    case EXIT_DENIED:
        res->disposition = CLC_CA_DENIED;
        first_line(&r->out, res->reason, sizeof res->reason);
        if (!res->reason[0])
            first_line(&r->err, res->reason, sizeof res->reason);
        if (!res->reason[0])
            snprintf(res->reason, sizeof res->reason, "denied (the command gave no reason)");
        snprintf(res->code, sizeof res->code, "exit %d", EXIT_DENIED);
        break;
    default:
        first_line(&r->err, line, sizeof line);
        if (r->exit_code < 0)
            rc = clc_errf(ei, CLC_ERR_IO, "CA '%s': the command was killed by signal %d",
                          ca->conf.name, r->signal);
        else
            rc = clc_errf(ei, r->exit_code == EXIT_TEMPFAIL ? CLC_ERR_UNAVAILABLE : CLC_ERR_IO,
                          "CA '%s': the command exited %d%s%s", ca->conf.name, r->exit_code,
                          line[0] ? ": " : "", line);
        break;
    }
    sk_X509_pop_free(set, X509_free);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static enum clc_err cmd_do(struct clc_ca *ca, const struct clc_ca_req *req, const char *op,
                           const char *arg, const char *id, struct clc_ca_result *res,
                           struct clc_errinfo *ei)
{
    struct run r;
    enum clc_err rc = CLC_OK;

    memset(&r, 0, sizeof r);
    clc_buf_init(&r.out, OUT_MAX);
    clc_buf_init(&r.err, ERR_MAX);
    rc = run(ca, op, arg, req ? req->template_name : NULL, id, req ? req->csr : NULL, &r, ei);
    if (rc == CLC_OK)
        rc = interpret(ca, req, &r, res, ei);
    clc_buf_cleanup(&r.out);
    clc_buf_cleanup(&r.err);
    return rc;
}

static enum clc_err command_submit(struct clc_ca *ca, const struct clc_ca_req *req,
                                   struct clc_ca_result *res, struct clc_errinfo *ei)
{
    return cmd_do(ca, req, "submit", req->template_name, NULL, res, ei);
}

static enum clc_err command_fetch(struct clc_ca *ca, const struct clc_ca_req *req, const char *id,
                                  struct clc_ca_result *res, struct clc_errinfo *ei)
{
    if (!id_ok(id))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "CA '%s': request id must be printable, without spaces, and not start "
                        "with '-'",
                        ca->conf.name);
    return cmd_do(ca, req, "fetch", id, id, res, ei);
}

const struct clc_ca_ops clc_ca_command_ops = {
    .submit = command_submit,
    .fetch = command_fetch,
    .cacerts = NULL,
};
