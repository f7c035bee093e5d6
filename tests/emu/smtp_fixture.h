/* Shared fixture of the SMTP sink tests: one emulator per binary with an
 * "smtp" config, the mailbox API over libcurl, an admin token for the
 * control API, and a raw SMTP client (plain or TLS, verified against the
 * emulator's CA) for protocol-level tests. */
#ifndef TEST_SMTP_FIXTURE_H
#define TEST_SMTP_FIXTURE_H

#include <stddef.h>
#include <cjson/cJSON.h>
#include <openssl/ssl.h>
#include "emulator/emu.h"

struct smtpfx {
    struct emu *emu;
    char dir[64];
    char config[128];
    cJSON *endpoints;
    const char *password; /* of the "certlc" account, from the endpoints document */
};

extern struct smtpfx sfx;

/* Starts the emulator with the given config JSON (NULL = defaults). */
int sfx_start(const char *config_json);
void sfx_stop(void);
/* Port of a sink listener ("smtp", "smtps", "smtp-plain"). */
int sfx_port(const char *kind);

/* A mailbox API call: status and parsed JSON body (NULL if none). */
cJSON *sfx_mailbox(const char *method, const char *path, long *status);
/* A control API call with an admin token; returns the status. */
long sfx_control(const char *method, const char *path, const char *body);
/* Messages whose envelope includes addr (NULL = all). */
int sfx_count(const char *to);

/* ---- raw SMTP client ---- */
struct rawc {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[16384];
    size_t len;
    char last[16384]; /* the last full reply, lines joined by "\n" */
};

int rawc_connect(struct rawc *c, int port);
void rawc_close(struct rawc *c);
/* TLS handshake on the connection, verifying 127.0.0.1 against the CA. */
int rawc_tls(struct rawc *c);
int rawc_send(struct rawc *c, const char *data, size_t n);
/* Reads one reply (all its lines); returns its code, -1 on close/timeout. */
int rawc_reply(struct rawc *c);
/* Sends a line with CR LF appended and reads the reply code. */
int rawc_cmd(struct rawc *c, const char *line);
/* 1 when the peer has closed (read gives end of stream within 5 s). */
int rawc_closed(struct rawc *c);
/* base64 of "\0user\0pass" into out. */
void rawc_plain(const char *user, const char *pass, char *out, size_t outlen);
/* EHLO, STARTTLS, EHLO, AUTH PLAIN as "certlc": 1 when all went well. */
int rawc_login(struct rawc *c, int port);

#endif
