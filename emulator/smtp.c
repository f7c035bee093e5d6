/* The emulated SMTP sink: configuration and accounts, three TCP listeners on
 * 127.0.0.1 (STARTTLS, implicit TLS, plaintext relay), a bounded accept loop
 * that gives each connection a thread of its own, the message store, and a
 * stop that ends every connection before the state goes away. */
/* accept4 and pipe2 (close-on-exec from the start) are GNU/Linux. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/smtp.h"
#include "emulator/smtp_int.h"
#include "emulator/state.h"

#define ACCOUNTS_DOC "smtp-accounts"
#define PASSWORD_LEN 24
#define DEFAULT_MAX_MESSAGE ((int64_t)1024 * 1024)
#define DEFAULT_MAX_RCPT 100
#define DEFAULT_MAX_CONNS 16
#define DEFAULT_MAX_MESSAGES 1000
#define DEFAULT_TIMEOUT_MS 30000
#define ACCEPT_POLL_MS 1000

static const char *const kind_key[SMTP_NKINDS] = {"smtp", "smtps", "smtp-plain"};

/* ---- configuration ---- */

static enum clc_err parse_accounts(struct emu_smtp *s, const cJSON *arr, struct clc_errinfo *ei)
{
    const cJSON *it;
    const char *name, *pw;

    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > SMTP_MAX_ACCOUNTS)
        return clc_errf(ei, CLC_ERR_CONFIG, "smtp.accounts: an array of up to %d accounts",
                        SMTP_MAX_ACCOUNTS);
    cJSON_ArrayForEach(it, arr)
    {
        struct smtp_account *a = &s->acct[s->nacct];
        if (clc_json_str(it, "username", &name, ei) != CLC_OK || name[0] == '\0' ||
            strlen(name) >= SMTP_NAME_MAX || strpbrk(name, " \t\r\n") != NULL)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "smtp.accounts[%zu].username: 1..63 characters, no blanks", s->nacct);
        if (clc_json_str_opt(it, "password", NULL, &pw, ei) != CLC_OK ||
            (pw != NULL && (pw[0] == '\0' || strpbrk(pw, "\r\n") != NULL)))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "smtp.accounts[%zu].password: a non-empty string, or absent for a "
                            "generated one",
                            s->nacct);
        for (size_t j = 0; j < s->nacct; j++)
            if (strcmp(s->acct[j].name, name) == 0)
                return clc_errf(ei, CLC_ERR_CONFIG, "smtp.accounts: '%s' appears twice", name);
        snprintf(a->name, sizeof a->name, "%s", name);
        s->nacct++;
        if (pw != NULL && clc_secret_new(pw, strlen(pw), &a->password) != CLC_OK)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    return CLC_OK;
}

static enum clc_err int_key(const cJSON *cfg, const char *key, int64_t dflt, int64_t min,
                            int64_t max, int64_t *out, struct clc_errinfo *ei)
{
    if (clc_json_int_opt(cfg, key, dflt, out, ei) != CLC_OK || *out < min || *out > max)
        return clc_errf(ei, CLC_ERR_CONFIG, "smtp.%s: an integer in %lld..%lld", key,
                        (long long)min, (long long)max);
    return CLC_OK;
}

static enum clc_err parse_config(struct emu_smtp *s, struct clc_errinfo *ei)
{
    static const char *const known[] = {"accounts",          "require_auth",   "require_tls",
                                        "max_message_bytes", "max_recipients", "max_connections",
                                        "max_messages",      "timeout_ms"};
    const cJSON *root = emu_config(s->e), *cfg, *it;
    cJSON *none = NULL;
    int64_t v;
    enum clc_err rc = CLC_OK;

    cfg = root ? cJSON_GetObjectItemCaseSensitive(root, "smtp") : NULL;
    if (cfg == NULL) {
        none = cJSON_CreateObject();
        if (none == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        cfg = none;
    }
    if (!cJSON_IsObject(cfg)) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "smtp: must be an object");
        goto out;
    }
    cJSON_ArrayForEach(it, cfg)
    {
        size_t i;
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(it->string, known[i]) == 0)
                break;
        if (i == sizeof known / sizeof known[0]) {
            rc = clc_errf(ei, CLC_ERR_CONFIG, "smtp: unknown key '%.64s'", it->string);
            goto out;
        }
    }
    it = cJSON_GetObjectItemCaseSensitive(cfg, "accounts");
    if (it != NULL) {
        rc = parse_accounts(s, it, ei);
    } else {
        snprintf(s->acct[0].name, sizeof s->acct[0].name, "certlc");
        s->nacct = 1;
    }
    if (rc == CLC_OK && (clc_json_bool_opt(cfg, "require_auth", 1, &s->require_auth, ei) ||
                         clc_json_bool_opt(cfg, "require_tls", 1, &s->require_tls, ei)))
        rc = clc_errf(ei, CLC_ERR_CONFIG, "smtp.require_auth/require_tls: true or false");
    if (rc == CLC_OK && (rc = int_key(cfg, "max_message_bytes", DEFAULT_MAX_MESSAGE, 1024,
                                      64 * 1024 * 1024, &v, ei)) == CLC_OK)
        s->max_message_bytes = (size_t)v;
    if (rc == CLC_OK &&
        (rc = int_key(cfg, "max_recipients", DEFAULT_MAX_RCPT, 1, 1000, &v, ei)) == CLC_OK)
        s->max_recipients = (size_t)v;
    if (rc == CLC_OK &&
        (rc = int_key(cfg, "max_connections", DEFAULT_MAX_CONNS, 1, 256, &v, ei)) == CLC_OK)
        s->max_connections = (size_t)v;
    if (rc == CLC_OK &&
        (rc = int_key(cfg, "max_messages", DEFAULT_MAX_MESSAGES, 1, 100000, &v, ei)) == CLC_OK)
        s->max_messages = (size_t)v;
    if (rc == CLC_OK &&
        (rc = int_key(cfg, "timeout_ms", DEFAULT_TIMEOUT_MS, 100, 600000, &v, ei)) == CLC_OK)
        s->timeout_ms = (long)v;
out:
    cJSON_Delete(none);
    return rc;
}

/* Accounts without a configured password get a random one, kept in the
 * data dir so the endpoints document stays valid across restarts. */
static enum clc_err account_passwords(struct emu_smtp *s, struct clc_errinfo *ei)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    cJSON *saved = NULL, *doc = cJSON_CreateObject();
    struct clc_errinfo lei = {0};
    char pw[PASSWORD_LEN + 1];
    enum clc_err rc;

    if (doc == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = emu_store_load(s->e, ACCOUNTS_DOC, &saved, &lei);
    if (rc == CLC_ERR_NOT_FOUND) {
        rc = CLC_OK;
    } else if (rc != CLC_OK || !cJSON_IsObject(saved)) {
        rc = clc_errf(ei, rc != CLC_OK ? rc : CLC_ERR_PARSE, "SMTP accounts document: %s",
                      rc != CLC_OK ? lei.msg : "not a JSON object");
        goto out;
    }
    for (size_t i = 0; i < s->nacct && rc == CLC_OK; i++) {
        struct smtp_account *a = &s->acct[i];
        const cJSON *old = saved ? cJSON_GetObjectItemCaseSensitive(saved, a->name) : NULL;
        if (a->password == NULL) {
            if (cJSON_IsString(old) && strlen(old->valuestring) >= 8) {
                rc = clc_secret_new(old->valuestring, strlen(old->valuestring), &a->password);
            } else {
                for (size_t k = 0; k < PASSWORD_LEN; k++)
                    pw[k] = alpha[clc_rand_below(sizeof alpha - 1)];
                pw[PASSWORD_LEN] = '\0';
                rc = clc_secret_new(pw, PASSWORD_LEN, &a->password);
            }
        }
        if (rc == CLC_OK)
            rc = clc_json_add_str(doc, a->name, clc_secret_reveal(a->password));
        if (rc != CLC_OK)
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    if (rc == CLC_OK)
        rc = emu_store_save(s->e, ACCOUNTS_DOC, doc, ei);
out:
    OPENSSL_cleanse(pw, sizeof pw);
    cJSON_Delete(saved);
    cJSON_Delete(doc);
    return rc;
}

int smtp_account_check(const struct emu_smtp *s, const char *name, const char *password,
                       size_t pwlen)
{
    int ok = 0;

    /* Every account is compared so the time does not tell which names exist. */
    for (size_t i = 0; i < s->nacct; i++) {
        int match = strcmp(s->acct[i].name, name) == 0;
        int pw = clc_secret_equals(s->acct[i].password, password, pwlen);
        ok |= match & pw;
    }
    return ok;
}

const char *smtp_addr_problem(const char *a, size_t n)
{
    const char *at = NULL;

    if (n == 0)
        return "empty address";
    if (n > 254)
        return "address over 254 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c <= 0x20 || c >= 0x7f || c == '<' || c == '>' || c == ',' || c == ';' || c == '"')
            return "character not allowed in an address";
        if (c == '@')
            at = a + i;
    }
    if (at == NULL || at == a || at == a + n - 1 || memchr(at + 1, '@', n - (size_t)(at - a) - 1))
        return "not local@domain";
    return NULL;
}

/* ---- message store ---- */

void smtp_msg_free(struct smtp_msg *m)
{
    if (m == NULL)
        return;
    free(m->mail_from);
    for (size_t i = 0; i < m->nrcpt; i++)
        free(m->rcpt[i]);
    free(m->rcpt);
    free(m->data);
    free(m);
}

uint64_t smtp_store_add(struct emu_smtp *s, struct smtp_msg *m)
{
    uint64_t id;

    pthread_mutex_lock(&s->mu);
    if (s->nmsgs == s->max_messages) {
        smtp_msg_free(s->msgs[0]);
        memmove(s->msgs, s->msgs + 1, (s->nmsgs - 1) * sizeof s->msgs[0]);
        s->nmsgs--;
    }
    id = m->id = ++s->next_id;
    m->received = emu_now(s->e);
    s->msgs[s->nmsgs++] = m;
    pthread_mutex_unlock(&s->mu);
    return id;
}

static void clear_messages(struct emu_smtp *s)
{
    for (size_t i = 0; i < s->nmsgs; i++)
        smtp_msg_free(s->msgs[i]);
    s->nmsgs = 0;
}

/* ---- listeners and connections ---- */

static enum clc_err listen_on(struct emu_smtp *s, enum smtp_kind k, struct clc_errinfo *ei)
{
    struct sockaddr_in sa = {0};
    socklen_t sl = sizeof sa;
    int one = 1, port = emu_config_port(s->e, kind_key[k]);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return clc_errf(ei, CLC_ERR_IO, "smtp: socket: %s", strerror(errno));
    s->lis[k].fd = fd;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 32) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return clc_errf(ei, CLC_ERR_IO, "smtp: cannot listen on 127.0.0.1:%d (%s): %s", port,
                        kind_key[k], strerror(errno));
    s->lis[k].port = ntohs(sa.sin_port);
    snprintf(s->lis[k].url, sizeof s->lis[k].url, "%s://127.0.0.1:%d",
             k == SMTP_KIND_IMPLICIT ? "smtps" : "smtp", s->lis[k].port);
    return CLC_OK;
}

static void *slot_main(void *arg)
{
    struct smtp_slot *sl = arg;
    struct emu_smtp *s = sl->s;
    sigset_t pipe_set;

    /* OpenSSL writes with write(2): a peer gone mid-reply must give EPIPE
     * on this thread, not kill the process. */
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    smtp_session_run(s, sl->fd, sl->kind);
    /* done before the FIN: a client that saw the close finds the slot
     * free. The reaper joins before it closes fd, so fd is still ours. */
    pthread_mutex_lock(&s->mu);
    sl->done = 1;
    pthread_mutex_unlock(&s->mu);
    shutdown(sl->fd, SHUT_RDWR);
    return NULL;
}

/* Joins finished connection threads and closes their sockets. */
static void reap(struct emu_smtp *s)
{
    for (size_t i = 0; i < s->max_connections; i++) {
        struct smtp_slot *sl = &s->slots[i];
        int done;
        pthread_mutex_lock(&s->mu);
        done = sl->used && sl->done;
        pthread_mutex_unlock(&s->mu);
        if (!done)
            continue;
        pthread_join(sl->th, NULL);
        close(sl->fd);
        pthread_mutex_lock(&s->mu);
        sl->used = sl->done = 0;
        sl->fd = -1;
        pthread_mutex_unlock(&s->mu);
    }
}

static void set_timeouts(int fd, long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static void take_connection(struct emu_smtp *s, enum smtp_kind k)
{
    static const char busy[] = "421 4.3.2 Too many connections, try again later\r\n";
    struct smtp_slot *free_slot = NULL;
    int fd = accept4(s->lis[k].fd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    /* Without it each reply waits for the client's delayed ACK (~40 ms). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeouts(fd, s->timeout_ms);
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->max_connections && free_slot == NULL; i++)
        if (!s->slots[i].used)
            free_slot = &s->slots[i];
    if (free_slot == NULL) {
        s->refused_busy++;
    } else {
        s->sessions++;
        free_slot->used = 1;
        free_slot->done = 0;
        free_slot->s = s;
        free_slot->fd = fd;
        free_slot->kind = k;
    }
    pthread_mutex_unlock(&s->mu);
    if (free_slot == NULL) {
        /* A TLS client would not understand a plaintext reply; it just sees
         * the connection close. */
        if (k != SMTP_KIND_IMPLICIT)
            (void)!send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL);
        close(fd);
        return;
    }
    if (pthread_create(&free_slot->th, NULL, slot_main, free_slot) != 0) {
        pthread_mutex_lock(&s->mu);
        free_slot->used = 0;
        free_slot->fd = -1;
        pthread_mutex_unlock(&s->mu);
        close(fd);
    }
}

static void *accept_main(void *arg)
{
    struct emu_smtp *s = arg;
    struct pollfd pfd[SMTP_NKINDS + 1];

    for (;;) {
        int stopping;
        pthread_mutex_lock(&s->mu);
        stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping)
            break;
        for (int k = 0; k < SMTP_NKINDS; k++)
            pfd[k] = (struct pollfd){.fd = s->lis[k].fd, .events = POLLIN};
        pfd[SMTP_NKINDS] = (struct pollfd){.fd = s->wake[0], .events = POLLIN};
        if (poll(pfd, SMTP_NKINDS + 1, ACCEPT_POLL_MS) < 0 && errno != EINTR)
            break;
        reap(s);
        if (pfd[SMTP_NKINDS].revents != 0)
            break;
        for (int k = 0; k < SMTP_NKINDS; k++)
            if (pfd[k].revents & POLLIN)
                take_connection(s, (enum smtp_kind)k);
    }
    return NULL;
}

/* ---- mount and stop ---- */

static void smtp_free(void *ctx)
{
    struct emu_smtp *s = ctx;

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    pthread_mutex_unlock(&s->mu);
    if (s->acceptor_started) {
        (void)!write(s->wake[1], "x", 1);
        pthread_join(s->acceptor, NULL);
    }
    /* Wake every session blocked in a read; each then ends on its own. */
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; s->slots != NULL && i < s->max_connections; i++)
        if (s->slots[i].used)
            shutdown(s->slots[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    for (size_t i = 0; s->slots != NULL && i < s->max_connections; i++)
        if (s->slots[i].used) {
            pthread_join(s->slots[i].th, NULL);
            close(s->slots[i].fd);
        }
    for (int k = 0; k < SMTP_NKINDS; k++)
        if (s->lis[k].fd >= 0)
            close(s->lis[k].fd);
    for (int i = 0; i < 2; i++)
        if (s->wake[i] >= 0)
            close(s->wake[i]);
    clear_messages(s);
    free(s->msgs);
    free(s->slots);
    for (size_t i = 0; i < s->nacct; i++)
        clc_secret_free(s->acct[i].password);
    SSL_CTX_free(s->tls);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static enum clc_err make_tls(struct emu_smtp *s, struct clc_errinfo *ei)
{
    char path[1024];
    const char *wd = emu_work_dir(s->e);
    unsigned long err;
    char reason[256] = "";

    /* server.pem (certificate then key) is written by the TLS set-up
     * before any service mounts; the HTTPS listeners use the same file. */
    if (wd == NULL || (size_t)snprintf(path, sizeof path, "%s/server.pem", wd) >= sizeof path)
        return clc_errf(ei, CLC_ERR_CONFIG, "smtp: no usable work directory");
    s->tls = SSL_CTX_new(TLS_server_method());
    if (s->tls != NULL && SSL_CTX_set_min_proto_version(s->tls, TLS1_2_VERSION) == 1 &&
        SSL_CTX_use_certificate_chain_file(s->tls, path) == 1 &&
        SSL_CTX_use_PrivateKey_file(s->tls, path, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(s->tls) == 1)
        return CLC_OK;
    err = ERR_get_error();
    if (err != 0)
        ERR_error_string_n(err, reason, sizeof reason);
    ERR_clear_error();
    return clc_errf(ei, CLC_ERR_TLS, "smtp: loading %s: %s", path, reason);
}

static cJSON *endpoints_accounts(const struct emu *e, void *ctx)
{
    const struct emu_smtp *s = ctx;
    cJSON *o = cJSON_CreateObject();

    (void)e;
    for (size_t i = 0; o != NULL && i < s->nacct; i++)
        if (clc_json_add_str(o, s->acct[i].name, clc_secret_reveal(s->acct[i].password)) !=
            CLC_OK) {
            cJSON_Delete(o);
            o = NULL;
        }
    return o;
}

static cJSON *endpoints_urls(const struct emu *e, void *ctx)
{
    const struct emu_smtp *s = ctx;
    cJSON *o = cJSON_CreateObject();

    (void)e;
    if (o != NULL && (clc_json_add_str(o, "url", s->lis[SMTP_KIND_STARTTLS].url) != CLC_OK ||
                      clc_json_add_str(o, "smtps_url", s->lis[SMTP_KIND_IMPLICIT].url) != CLC_OK ||
                      clc_json_add_str(o, "plain_url", s->lis[SMTP_KIND_PLAIN].url) != CLC_OK ||
                      clc_json_add_bool(o, "require_auth", s->require_auth) != CLC_OK ||
                      clc_json_add_bool(o, "require_tls", s->require_tls) != CLC_OK)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

const char *emu_smtp_url(const struct emu *e, const char *kind)
{
    const struct emu_smtp *s = emu_component_get(e, "smtp");

    for (int k = 0; s != NULL && kind != NULL && k < SMTP_NKINDS; k++)
        if (strcmp(kind, kind_key[k]) == 0)
            return s->lis[k].url;
    return NULL;
}

void emu_smtp_set_down(struct emu *e, int down)
{
    struct emu_smtp *s = emu_component_get(e, "smtp");

    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->down = down != 0;
    /* A server that goes down takes its open sessions with it: clients
     * holding a connection for their next message must see the outage too. */
    for (size_t i = 0; down && s->slots != NULL && i < s->max_connections; i++)
        if (s->slots[i].used && !s->slots[i].done)
            shutdown(s->slots[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->mu);
    clc_log(CLC_LOG_INFO, "emu.smtp.down", CLC_LI("down", down != 0));
}

size_t emu_smtp_sessions(struct emu *e)
{
    struct emu_smtp *s = emu_component_get(e, "smtp");
    size_t n = 0;

    if (s != NULL) {
        pthread_mutex_lock(&s->mu);
        n = (size_t)s->sessions;
        pthread_mutex_unlock(&s->mu);
    }
    return n;
}

static void smtp_reset(struct emu *e, void *ctx)
{
    struct emu_smtp *s = ctx;

    (void)e;
    pthread_mutex_lock(&s->mu);
    clear_messages(s);
    s->down = 0;
    pthread_mutex_unlock(&s->mu);
}

static cJSON *smtp_dump(struct emu *e, void *ctx)
{
    struct emu_smtp *s = ctx;
    cJSON *o = cJSON_CreateObject();

    (void)e;
    pthread_mutex_lock(&s->mu);
    if (o != NULL && (clc_json_add_int(o, "messages", (int64_t)s->nmsgs) != CLC_OK ||
                      clc_json_add_int(o, "sessions", (int64_t)s->sessions) != CLC_OK ||
                      clc_json_add_int(o, "refused_busy", (int64_t)s->refused_busy) != CLC_OK ||
                      clc_json_add_int(o, "auth_failures", (int64_t)s->auth_failures) != CLC_OK ||
                      clc_json_add_bool(o, "down", s->down) != CLC_OK)) {
        cJSON_Delete(o);
        o = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return o;
}

enum clc_err emu_smtp_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_smtp *s = calloc(1, sizeof *s);
    enum clc_err rc;

    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    s->e = e;
    s->wake[0] = s->wake[1] = -1;
    for (int k = 0; k < SMTP_NKINDS; k++)
        s->lis[k].fd = -1;
    pthread_mutex_init(&s->mu, NULL);
    /* From here on the stop hook frees s, also when mounting fails. */
    rc = emu_at_stop(e, smtp_free, s);
    if (rc != CLC_OK) {
        smtp_free(s);
        return clc_errf(ei, rc, "smtp: cannot register the stop hook");
    }
    rc = parse_config(s, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "emulator config");
    s->slots = calloc(s->max_connections, sizeof *s->slots);
    s->msgs = calloc(s->max_messages, sizeof *s->msgs);
    if (s->slots == NULL || s->msgs == NULL || pipe2(s->wake, O_CLOEXEC) != 0)
        return clc_errf(ei, CLC_ERR_NOMEM, "smtp: out of memory or descriptors");
    rc = account_passwords(s, ei);
    if (rc == CLC_OK)
        rc = make_tls(s, ei);
    for (int k = 0; rc == CLC_OK && k < SMTP_NKINDS; k++)
        rc = listen_on(s, (enum smtp_kind)k, ei);
    if (rc == CLC_OK)
        rc = emu_component_set(e, "smtp", s);
    if (rc == CLC_OK)
        rc = emu_endpoints_add(e, "smtp", endpoints_urls, s);
    if (rc == CLC_OK)
        rc = emu_endpoints_add(e, "smtp_accounts", endpoints_accounts, s);
    if (rc == CLC_OK)
        rc = emu_control_register(e, "smtp", smtp_reset, smtp_dump, s);
    if (rc == CLC_OK)
        rc = smtp_mailbox_mount(s, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "smtp");
    if (pthread_create(&s->acceptor, NULL, accept_main, s) != 0)
        return clc_errf(ei, CLC_ERR_INTERNAL, "smtp: cannot start the accept thread");
    s->acceptor_started = 1;
    clc_log(CLC_LOG_INFO, "emu.smtp.listening", CLC_LS("starttls", s->lis[0].url),
            CLC_LS("smtps", s->lis[1].url), CLC_LS("plain", s->lis[2].url));
    return CLC_OK;
}
