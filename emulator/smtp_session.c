/* One SMTP connection of the sink, start to end: greeting, EHLO/HELO,
 * STARTTLS (buffered input dropped at the switch), AUTH PLAIN and LOGIN,
 * MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT. Every line, message
 * and count is bounded; bad input gets a reply code, never a crash, and
 * enough of it closes the connection. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/log.h"
#include "emulator/smtp_int.h"

#define CMD_LINE_MAX 2048       /* AUTH with an initial response is the longest */
#define DATA_LINE_MAX 1000      /* RFC 5321 §4.5.3.1.6, CRLF included */
#define DISCARD_MAX (64 * 1024) /* an endless line ends the connection */
#define RBUF_SIZE 8192
#define MAX_ERRORS 20 /* as Postfix smtpd_hard_error_limit */
#define MAX_COMMANDS 500
#define MAX_AUTH_FAILURES 3
#define REPLY_MAX 1024

struct sess {
    struct emu_smtp *s;
    int fd;
    SSL *ssl;
    enum smtp_kind kind;
    char rbuf[RBUF_SIZE];
    size_t rpos, rlen;
    int helo, tls, authed;
    char user[SMTP_NAME_MAX];
    const char *mech; /* of the successful AUTH */
    int in_tx;
    char *from;
    char **rcpt;
    size_t nrcpt;
    int errors, auth_failures, quit;
};

/* ---- I/O ---- */

static int fill(struct sess *c)
{
    int n;

    if (c->ssl != NULL) {
        n = SSL_read(c->ssl, c->rbuf, sizeof c->rbuf);
        if (n <= 0)
            ERR_clear_error();
    } else {
        do
            n = (int)recv(c->fd, c->rbuf, sizeof c->rbuf, 0);
        while (n < 0 && errno == EINTR);
    }
    if (n <= 0)
        return 0;
    c->rpos = 0;
    c->rlen = (size_t)n;
    return 1;
}

/* Reads one line ending in LF into out (at most max-1 bytes, NUL added,
 * CR LF or LF removed). *crlf tells whether the end was CR LF; *too_long
 * that bytes were dropped. 0 on end of stream, error, timeout, or a line
 * beyond DISCARD_MAX. */
static int read_line(struct sess *c, char *out, size_t max, size_t *len, int *crlf, int *too_long)
{
    size_t n = 0, seen = 0;

    *too_long = 0;
    *crlf = 0;
    for (;;) {
        if (c->rpos == c->rlen && !fill(c))
            return 0;
        char ch = c->rbuf[c->rpos++];
        if (ch == '\n')
            break;
        if (++seen > DISCARD_MAX)
            return 0;
        if (n + 1 < max)
            out[n++] = ch;
        else
            *too_long = 1;
    }
    if (n > 0 && out[n - 1] == '\r' && !*too_long) {
        n--;
        *crlf = 1;
    } else if (*too_long) {
        *crlf = 1; /* the end was dropped anyway */
    }
    out[n] = '\0';
    *len = n;
    return 1;
}

static int write_all(struct sess *c, const char *p, size_t n)
{
    while (n > 0) {
        int w;
        if (c->ssl != NULL) {
            w = SSL_write(c->ssl, p, (int)n);
            if (w <= 0)
                ERR_clear_error();
        } else {
            do
                w = (int)send(c->fd, p, n, MSG_NOSIGNAL);
            while (w < 0 && errno == EINTR);
        }
        if (w <= 0)
            return 0;
        p += w;
        n -= (size_t)w;
    }
    return 1;
}

static void reply(struct sess *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct sess *c, const char *fmt, ...)
{
    char line[REPLY_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof line - 3)
        n = (int)(sizeof line - 3);
    line[n++] = '\r';
    line[n++] = '\n';
    if (!write_all(c, line, (size_t)n))
        c->quit = 1;
}

/* A refusal that counts towards the error limit. */
#define refuse(c, ...)                                                                             \
    do {                                                                                           \
        (c)->errors++;                                                                             \
        reply((c), __VA_ARGS__);                                                                   \
    } while (0)

static int start_tls(struct sess *c)
{
    c->ssl = SSL_new(c->s->tls);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1) {
        clc_log(CLC_LOG_INFO, "emu.smtp.tls_failed", CLC_LI("kind", c->kind));
        ERR_clear_error();
        SSL_free(c->ssl);
        c->ssl = NULL;
        return 0;
    }
    c->tls = 1;
    return 1;
}

/* ---- transaction state ---- */

static void reset_tx(struct sess *c)
{
    free(c->from);
    c->from = NULL;
    for (size_t i = 0; i < c->nrcpt; i++)
        free(c->rcpt[i]);
    c->nrcpt = 0;
    c->in_tx = 0;
}

static int auth_allowed(const struct sess *c)
{
    return c->tls || c->kind == SMTP_KIND_PLAIN || !c->s->require_tls;
}

/* "FROM:<a@b> PARAMS" -> the path and the parameters. 0 on bad syntax. */
static int parse_path(const char *arg, const char *prefix, char *path, size_t max,
                      const char **params)
{
    size_t pl = strlen(prefix);
    const char *lt, *gt;

    if (strncasecmp(arg, prefix, pl) != 0)
        return 0;
    lt = arg + pl;
    while (*lt == ' ')
        lt++;
    if (*lt != '<' || (gt = strchr(lt, '>')) == NULL || (size_t)(gt - lt - 1) >= max)
        return 0;
    memcpy(path, lt + 1, (size_t)(gt - lt - 1));
    path[gt - lt - 1] = '\0';
    *params = gt + 1;
    if (**params != '\0' && **params != ' ')
        return 0;
    while (**params == ' ')
        (*params)++;
    return 1;
}

/* ---- commands ---- */

static void do_ehlo(struct sess *c, const char *arg, int extended)
{
    if (arg[0] == '\0') {
        refuse(c, "501 5.5.4 Syntax: %s hostname", extended ? "EHLO" : "HELO");
        return;
    }
    reset_tx(c);
    c->helo = 1;
    if (!extended) {
        reply(c, "250 127.0.0.1");
        return;
    }
    reply(c, "250-127.0.0.1 greets %.64s", arg);
    reply(c, "250-SIZE %zu", c->s->max_message_bytes);
    reply(c, "250-8BITMIME");
    if (c->kind == SMTP_KIND_STARTTLS && !c->tls)
        reply(c, "250-STARTTLS");
    if (auth_allowed(c))
        reply(c, "250-AUTH PLAIN LOGIN");
    reply(c, "250 ENHANCEDSTATUSCODES");
}

static void do_starttls(struct sess *c, const char *arg)
{
    if (c->tls) {
        refuse(c, "503 5.5.1 TLS already active");
    } else if (c->kind != SMTP_KIND_STARTTLS) {
        refuse(c, "502 5.5.1 STARTTLS not offered here");
    } else if (arg[0] != '\0') {
        refuse(c, "501 5.5.4 Syntax: STARTTLS");
    } else {
        reply(c, "220 2.0.0 Ready to start TLS");
        /* Anything sent before the handshake was not protected by it: a
         * man in the middle may have added it (CVE-2011-0411). */
        c->rpos = c->rlen = 0;
        if (!start_tls(c)) {
            c->quit = 1;
            return;
        }
        /* RFC 3207 §4.2: the client starts over with EHLO. */
        reset_tx(c);
        c->helo = 0;
        c->authed = 0;
    }
}

/* Reads one SASL response line and decodes it; "*" cancels. */
static int sasl_response(struct sess *c, const char *challenge, unsigned char **out, size_t *n)
{
    char line[CMD_LINE_MAX];
    size_t len;
    int crlf, too_long;

    reply(c, "334 %s", challenge);
    if (c->quit || !read_line(c, line, sizeof line, &len, &crlf, &too_long)) {
        c->quit = 1;
        return 0;
    }
    if (too_long || strcmp(line, "*") == 0 || clc_b64_decode(line, len, out, n) != CLC_OK) {
        OPENSSL_cleanse(line, sizeof line);
        refuse(c, "501 5.5.2 Authentication cancelled or not base64");
        return 0;
    }
    OPENSSL_cleanse(line, sizeof line);
    return 1;
}

static int decode_initial(struct sess *c, const char *ir, unsigned char **out, size_t *n)
{
    if (strcmp(ir, "=") == 0) { /* RFC 4954: an empty initial response */
        *out = (unsigned char *)strdup("");
        *n = 0;
        return *out != NULL;
    }
    if (clc_b64_decode(ir, strlen(ir), out, n) != CLC_OK) {
        refuse(c, "501 5.5.2 Initial response is not base64");
        return 0;
    }
    return 1;
}

static void auth_result(struct sess *c, const char *mech, const char *user, size_t ulen,
                        const char *pw, size_t pwlen)
{
    int ok = ulen > 0 && ulen < SMTP_NAME_MAX && memchr(user, '\0', ulen) == NULL;
    char name[SMTP_NAME_MAX] = "";

    if (ok) {
        memcpy(name, user, ulen);
        name[ulen] = '\0';
        ok = smtp_account_check(c->s, name, pw, pwlen);
    }
    if (ok) {
        c->authed = 1;
        c->mech = mech;
        snprintf(c->user, sizeof c->user, "%s", name);
        reply(c, "235 2.7.0 Authentication successful");
        return;
    }
    pthread_mutex_lock(&c->s->mu);
    c->s->auth_failures++;
    pthread_mutex_unlock(&c->s->mu);
    clc_log(CLC_LOG_INFO, "emu.smtp.auth_failed", CLC_LS("user", name));
    refuse(c, "535 5.7.8 Authentication credentials invalid");
    if (++c->auth_failures >= MAX_AUTH_FAILURES) {
        reply(c, "421 4.7.0 Too many failed authentications");
        c->quit = 1;
    }
}

static void auth_plain(struct sess *c, const char *ir)
{
    unsigned char *d = NULL;
    size_t n = 0;
    const unsigned char *z1, *z2;

    if (ir != NULL ? !decode_initial(c, ir, &d, &n) : !sasl_response(c, "", &d, &n))
        return;
    /* authzid NUL authcid NUL password; authzid empty or equal to authcid. */
    z1 = memchr(d, '\0', n);
    z2 = z1 ? memchr(z1 + 1, '\0', n - (size_t)(z1 + 1 - d)) : NULL;
    if (z1 == NULL || z2 == NULL ||
        (z1 != d &&
         ((size_t)(z1 - d) != (size_t)(z2 - z1 - 1) || memcmp(d, z1 + 1, (size_t)(z1 - d)) != 0)))
        refuse(c, "501 5.5.2 Malformed PLAIN response");
    else
        auth_result(c, "PLAIN", (const char *)z1 + 1, (size_t)(z2 - z1 - 1), (const char *)z2 + 1,
                    n - (size_t)(z2 + 1 - d));
    OPENSSL_cleanse(d, n);
    free(d);
}

static void auth_login(struct sess *c, const char *ir)
{
    unsigned char *u = NULL, *p = NULL;
    size_t un = 0, pn = 0;

    /* "Username:" and "Password:" in base64, as every server sends them. */
    if (ir != NULL ? !decode_initial(c, ir, &u, &un) : !sasl_response(c, "VXNlcm5hbWU6", &u, &un))
        return;
    if (sasl_response(c, "UGFzc3dvcmQ6", &p, &pn)) {
        auth_result(c, "LOGIN", (const char *)u, un, (const char *)p, pn);
        OPENSSL_cleanse(p, pn);
    }
    free(u);
    free(p);
}

static void do_auth(struct sess *c, char *arg)
{
    char *ir = strchr(arg, ' ');

    if (ir != NULL) {
        *ir++ = '\0';
        while (*ir == ' ')
            ir++;
        if (*ir == '\0')
            ir = NULL;
    }
    if (!c->helo)
        refuse(c, "503 5.5.1 Send EHLO first");
    else if (c->authed)
        refuse(c, "503 5.5.1 Already authenticated");
    else if (c->in_tx)
        refuse(c, "503 5.5.1 AUTH not allowed during a mail transaction");
    else if (!auth_allowed(c))
        refuse(c, "538 5.7.11 Encryption required for requested authentication mechanism");
    else if (strcasecmp(arg, "PLAIN") == 0)
        auth_plain(c, ir);
    else if (strcasecmp(arg, "LOGIN") == 0)
        auth_login(c, ir);
    else
        refuse(c, "504 5.5.4 Unrecognized authentication type");
}

static void do_mail(struct sess *c, const char *arg)
{
    char path[CMD_LINE_MAX];
    const char *params, *p;

    if (!c->helo) {
        refuse(c, "503 5.5.1 Send EHLO first");
        return;
    }
    if (c->in_tx) {
        refuse(c, "503 5.5.1 Nested MAIL command");
        return;
    }
    if (c->kind == SMTP_KIND_STARTTLS && c->s->require_tls && !c->tls) {
        refuse(c, "530 5.7.0 Must issue a STARTTLS command first");
        return;
    }
    if (c->s->require_auth && !c->authed) {
        refuse(c, "530 5.7.0 Authentication required");
        return;
    }
    if (!parse_path(arg, "FROM:", path, sizeof path, &params)) {
        refuse(c, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    if (path[0] != '\0' && smtp_addr_problem(path, strlen(path)) != NULL) {
        refuse(c, "553 5.1.7 Bad sender address syntax");
        return;
    }
    for (p = params; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n > 5 && strncasecmp(p, "SIZE=", 5) == 0) {
            unsigned long long v = strtoull(p + 5, NULL, 10);
            if (v > c->s->max_message_bytes) {
                refuse(c, "552 5.3.4 Message size exceeds fixed maximum message size");
                return;
            }
        } else if (!(n > 5 && strncasecmp(p, "BODY=", 5) == 0) &&
                   !(n > 5 && strncasecmp(p, "AUTH=", 5) == 0)) {
            refuse(c, "555 5.5.4 Unsupported MAIL parameter");
            return;
        }
        p += n;
        while (*p == ' ')
            p++;
    }
    c->from = strdup(path);
    c->rcpt = c->rcpt ? c->rcpt : calloc(c->s->max_recipients, sizeof *c->rcpt);
    if (c->from == NULL || c->rcpt == NULL) {
        reset_tx(c);
        reply(c, "451 4.3.0 Out of memory");
        return;
    }
    c->in_tx = 1;
    reply(c, "250 2.1.0 Ok");
}

static void do_rcpt(struct sess *c, const char *arg)
{
    char path[CMD_LINE_MAX];
    const char *params;

    if (!c->in_tx) {
        refuse(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (!parse_path(arg, "TO:", path, sizeof path, &params)) {
        refuse(c, "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (params[0] != '\0') {
        refuse(c, "555 5.5.4 Unsupported RCPT parameter");
        return;
    }
    if (smtp_addr_problem(path, strlen(path)) != NULL) {
        refuse(c, "553 5.1.3 Bad recipient address syntax");
        return;
    }
    for (size_t i = 0; i < c->nrcpt; i++)
        if (strcasecmp(c->rcpt[i], path) == 0) {
            reply(c, "250 2.1.5 Ok (duplicate)");
            return;
        }
    if (c->nrcpt == c->s->max_recipients) {
        reply(c, "452 4.5.3 Too many recipients");
        return;
    }
    c->rcpt[c->nrcpt] = strdup(path);
    if (c->rcpt[c->nrcpt] == NULL) {
        reply(c, "451 4.3.0 Out of memory");
        return;
    }
    c->nrcpt++;
    reply(c, "250 2.1.5 Ok");
}

/* Stores what DATA received; takes the envelope out of the session. */
static void deliver(struct sess *c, struct clc_buf *data)
{
    struct smtp_msg *m = calloc(1, sizeof *m);
    uint64_t id;

    if (m == NULL || (m->data = clc_buf_take(data, &m->len)) == NULL) {
        free(m);
        reply(c, "451 4.3.0 Out of memory");
        return;
    }
    m->mail_from = c->from;
    m->rcpt = c->rcpt;
    m->nrcpt = c->nrcpt;
    c->from = NULL;
    c->rcpt = NULL;
    c->nrcpt = 0;
    snprintf(m->auth_user, sizeof m->auth_user, "%s", c->authed ? c->user : "");
    snprintf(m->auth_mech, sizeof m->auth_mech, "%s", c->authed ? c->mech : "");
    m->tls = c->tls;
    m->kind = c->kind;
    id = smtp_store_add(c->s, m);
    clc_log(CLC_LOG_INFO, "emu.smtp.accepted", CLC_LI("id", (long long)id),
            CLC_LI("recipients", (long long)m->nrcpt), CLC_LI("bytes", (long long)m->len));
    reply(c, "250 2.0.0 Ok: queued as %llu", (unsigned long long)id);
}

static void do_data(struct sess *c, const char *arg)
{
    char line[DATA_LINE_MAX + 1];
    struct clc_buf data;
    size_t len, total = 0;
    int crlf, too_long, big = 0, long_line = 0, bare_lf = 0, ended = 0;

    if (arg[0] != '\0') {
        refuse(c, "501 5.5.4 Syntax: DATA");
        return;
    }
    if (!c->in_tx) {
        refuse(c, "503 5.5.1 Need MAIL command");
        return;
    }
    if (c->nrcpt == 0) {
        refuse(c, "503 5.5.1 Need RCPT command");
        return;
    }
    reply(c, "354 End data with <CR><LF>.<CR><LF>");
    clc_buf_init(&data, c->s->max_message_bytes);
    while (!c->quit && read_line(c, line, sizeof line, &len, &crlf, &too_long)) {
        const char *p = line;
        if (crlf && len == 1 && line[0] == '.') {
            ended = 1;
            break;
        }
        /* Only CR LF . CR LF ends the data: a bare LF is refused, as it is
         * what SMTP smuggling hides a second message behind. */
        bare_lf |= !crlf;
        long_line |= too_long;
        total += len + 2;
        if (total > 4 * c->s->max_message_bytes + DISCARD_MAX)
            break; /* far past the limit: stop reading, close below */
        if (p[0] == '.')
            p++, len--;
        if (!big &&
            (clc_buf_append(&data, p, len) != CLC_OK || clc_buf_append(&data, "\r\n", 2) != CLC_OK))
            big = 1;
    }
    if (!ended) {
        if (!c->quit && total > 4 * c->s->max_message_bytes)
            reply(c, "552 5.3.4 Message size exceeds fixed limit; closing");
        c->quit = 1;
    } else if (big) {
        refuse(c, "552 5.3.4 Message size exceeds fixed maximum message size");
    } else if (long_line) {
        refuse(c, "500 5.5.2 Line too long (limit %d bytes)", DATA_LINE_MAX);
    } else if (bare_lf) {
        refuse(c, "554 5.5.2 Bare LF not allowed; lines end in CR LF");
    } else {
        deliver(c, &data);
    }
    clc_buf_cleanup(&data);
    reset_tx(c);
}

static void dispatch(struct sess *c, char *cmd)
{
    char *arg = strchr(cmd, ' ');

    if (arg != NULL) {
        *arg++ = '\0';
        while (*arg == ' ')
            arg++;
    } else {
        arg = cmd + strlen(cmd);
    }
    if (strcasecmp(cmd, "EHLO") == 0 || strcasecmp(cmd, "HELO") == 0) {
        do_ehlo(c, arg, strcasecmp(cmd, "EHLO") == 0);
    } else if (strcasecmp(cmd, "STARTTLS") == 0) {
        do_starttls(c, arg);
    } else if (strcasecmp(cmd, "AUTH") == 0) {
        do_auth(c, arg);
    } else if (strcasecmp(cmd, "MAIL") == 0) {
        do_mail(c, arg);
    } else if (strcasecmp(cmd, "RCPT") == 0) {
        do_rcpt(c, arg);
    } else if (strcasecmp(cmd, "DATA") == 0) {
        do_data(c, arg);
    } else if (strcasecmp(cmd, "RSET") == 0) {
        if (arg[0] != '\0') {
            refuse(c, "501 5.5.4 Syntax: RSET");
        } else {
            reset_tx(c);
            reply(c, "250 2.0.0 Ok");
        }
    } else if (strcasecmp(cmd, "NOOP") == 0) {
        reply(c, "250 2.0.0 Ok");
    } else if (strcasecmp(cmd, "QUIT") == 0) {
        reply(c, "221 2.0.0 Bye");
        c->quit = 1;
    } else if (strcasecmp(cmd, "VRFY") == 0) {
        reply(c, "252 2.5.0 Cannot VRFY user, but will accept message");
    } else if (strcasecmp(cmd, "HELP") == 0) {
        reply(c, "214 2.0.0 EHLO HELO STARTTLS AUTH MAIL RCPT DATA RSET NOOP QUIT");
    } else {
        refuse(c, "500 5.5.2 Command not recognized");
    }
}

void smtp_session_run(struct emu_smtp *s, int fd, enum smtp_kind kind)
{
    struct sess *c = calloc(1, sizeof *c);
    char line[CMD_LINE_MAX];
    size_t len;
    int crlf, too_long, down;

    if (c == NULL)
        return;
    c->s = s;
    c->fd = fd;
    c->kind = kind;
    if (kind == SMTP_KIND_IMPLICIT && !start_tls(c))
        goto out;
    pthread_mutex_lock(&s->mu);
    down = s->down;
    pthread_mutex_unlock(&s->mu);
    if (down) {
        reply(c, "421 4.3.2 Service not available, closing transmission channel");
        goto out;
    }
    reply(c, "220 127.0.0.1 ESMTP certlc emulator sink");
    for (int n = 0; !c->quit; n++) {
        if (n == MAX_COMMANDS) {
            reply(c, "421 4.7.0 Too many commands, closing");
            break;
        }
        if (!read_line(c, line, sizeof line, &len, &crlf, &too_long))
            break;
        if (too_long)
            refuse(c, "500 5.5.2 Line too long");
        else if (strlen(line) != len)
            refuse(c, "500 5.5.2 NUL in command");
        else
            dispatch(c, line);
        OPENSSL_cleanse(line, sizeof line);
        if (!c->quit && c->errors >= MAX_ERRORS) {
            reply(c, "421 4.7.0 Too many errors, closing");
            break;
        }
    }
out:
    reset_tx(c);
    free(c->rcpt);
    if (c->ssl != NULL) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    ERR_clear_error();
    free(c);
}
