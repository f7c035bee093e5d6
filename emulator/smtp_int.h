/* The SMTP sink's private wiring: its state (accounts, limits, listeners,
 * connection slots, stored messages) shared by the listener (smtp.c), the
 * protocol (smtp_session.c), the MIME reader (smtp_mime.c) and the mailbox
 * API (smtp_mailbox.c). */
#ifndef EMU_SMTP_INT_H
#define EMU_SMTP_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/ssl.h>

#include "core/err.h"
#include "core/secret.h"

struct emu;

enum smtp_kind { SMTP_KIND_STARTTLS = 0, SMTP_KIND_IMPLICIT, SMTP_KIND_PLAIN, SMTP_NKINDS };

#define SMTP_MAX_ACCOUNTS 16
#define SMTP_NAME_MAX 64
#define SMTP_URL_MAX 64

struct smtp_account {
    char name[SMTP_NAME_MAX];
    struct clc_secret *password;
};

/* One accepted message: the envelope as given, the content as received
 * (dot-unstuffed, CRLF line ends). */
struct smtp_msg {
    uint64_t id;
    int64_t received; /* emulator clock, Unix seconds */
    char *mail_from;  /* "" for the null reverse-path */
    char **rcpt;
    size_t nrcpt;
    char *data;
    size_t len;
    char auth_user[SMTP_NAME_MAX]; /* "" when not authenticated */
    char auth_mech[8];             /* "PLAIN", "LOGIN" or "" */
    int tls;
    enum smtp_kind kind;
};

struct emu_smtp;

struct smtp_slot {
    struct emu_smtp *s;
    pthread_t th;
    int fd;
    enum smtp_kind kind;
    int used; /* a thread was started and not yet joined */
    int done; /* the thread has finished (set under s->mu) */
};

struct smtp_listener {
    int fd;
    int port;
    char url[SMTP_URL_MAX];
};

struct emu_smtp {
    struct emu *e;

    /* configuration (fixed after mount) */
    struct smtp_account acct[SMTP_MAX_ACCOUNTS];
    size_t nacct;
    int require_auth;
    int require_tls;
    size_t max_message_bytes;
    size_t max_recipients;
    size_t max_connections;
    size_t max_messages;
    long timeout_ms;
    SSL_CTX *tls;

    struct smtp_listener lis[SMTP_NKINDS];
    int wake[2]; /* self-pipe that ends the accept loop */
    pthread_t acceptor;
    int acceptor_started;

    pthread_mutex_t mu; /* everything below */
    struct smtp_slot *slots;
    struct smtp_msg **msgs; /* oldest first */
    size_t nmsgs;
    uint64_t next_id;
    int down;
    int stopping;
    uint64_t sessions, refused_busy, auth_failures;
};

/* smtp_session.c: serves one connection to the end (runs on its own thread;
 * never closes or shuts down fd: the slot does both). */
void smtp_session_run(struct emu_smtp *s, int fd, enum smtp_kind kind);

/* smtp.c: stores a message (takes ownership), dropping the oldest beyond
 * the limit; returns its id. */
uint64_t smtp_store_add(struct emu_smtp *s, struct smtp_msg *m);
void smtp_msg_free(struct smtp_msg *m);
/* 1 when name/password match a configured account (constant time). */
int smtp_account_check(const struct emu_smtp *s, const char *name, const char *password,
                       size_t pwlen);
/* Conservative envelope address check, as the client's: NULL when fine. */
const char *smtp_addr_problem(const char *a, size_t n);

/* smtp_mime.c: the message as a mail reader sees it. */
/* {id, received, envelope_from, to, from, subject, size} */
cJSON *smtp_msg_summary(const struct smtp_msg *m);
/* summary + headers, date, message_id, text, html, parts, auth_user, tls */
cJSON *smtp_msg_detail(const struct smtp_msg *m);
/* Decodes RFC 2047 encoded-words in a header value (malloc'd). */
char *smtp_mime_decode_words(const char *v, size_t n);

/* smtp_mailbox.c: the "mailbox" HTTPS service and the control routes. */
enum clc_err smtp_mailbox_mount(struct emu_smtp *s, struct clc_errinfo *ei);

#endif
