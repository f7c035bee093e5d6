/* E-mail notifications by SMTP (libcurl): smtp:// with STARTTLS required by
 * default, or smtps://; AUTH from a secret; configurable From. Recipients
 * come from a certificate's Recipient tag, split on ',' and ';'; each address
 * is validated and anything that could inject a header is refused and
 * logged while the rest are still sent. Messages are multipart plain text +
 * HTML. */
#ifndef CLC_NOTIFY_H
#define CLC_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include "core/config.h"
#include "core/err.h"
#include "core/secret.h"
#include "net/http.h"

struct clc_notify;

struct clc_notify_opts {
    const char *url;                   /* smtp://host:port or smtps://host:port */
    const char *from;                  /* "certlc <certlc@example.com>" */
    const char *username;              /* NULL = no AUTH */
    const struct clc_secret *password; /* copied */
    int allow_plaintext;               /* 1 = smtp:// without STARTTLS (never by default) */
    const char *ca_bundle;             /* NULL = system store */
    long timeout_ms;                   /* 0 = 30 s */
};

enum clc_err clc_notify_new(const struct clc_notify_opts *opts, struct clc_notify **out,
                            struct clc_errinfo *ei);
/* From config keys "smtp.*" (clc_notify_config_keys); CLC_ERR_NOT_FOUND when
 * e-mail is not configured. */
enum clc_err clc_notify_from_config(const struct clc_config *cfg,
                                    const struct clc_http_opts *http_opts, struct clc_notify **out,
                                    struct clc_errinfo *ei);
extern const struct clc_config_key clc_notify_config_keys[];
extern const size_t clc_notify_config_nkeys;
void clc_notify_free(struct clc_notify *n);

/* Splits a Recipient tag value into valid addresses. Invalid ones (bad
 * syntax, CR/LF or other control characters, over 254 bytes) are logged and
 * skipped. *out is a malloc'd array of malloc'd strings; free with
 * clc_notify_recipients_free. */
enum clc_err clc_notify_parse_recipients(const char *tag, char ***out, size_t *n, size_t *rejected);
void clc_notify_recipients_free(char **list, size_t n);

/* What a renewal produced, for the message text. Strings may be NULL/empty. */
struct clc_notify_renewal {
    int success; /* 1 renewed, 0 failed */
    const char *vault;
    const char *certificate;
    const char *old_version, *new_version;
    const char *old_thumbprint, *new_thumbprint; /* SHA-1 hex */
    const char *serial;                          /* new certificate's serial, hex */
    int64_t not_after;                           /* new certificate's expiry */
    const char *ca;                              /* CA name from configuration */
    const char *template_name;
    const char *request_id; /* CA request id */
    const char *error;      /* failure: what failed */
    const char *attempted;  /* failure: what was tried */
    const char *next_step;  /* failure: what happens next */
};

/* Sends one message to every recipient (one SMTP transaction). */
enum clc_err clc_notify_send_renewal(struct clc_notify *n, const char *const *to, size_t nto,
                                     const struct clc_notify_renewal *r, struct clc_errinfo *ei);

/* Additions to the contract. */
/* SASL mechanism: "plain", "login", or NULL/"auto" for libcurl's choice
 * among what the server offers (config smtp.auth_mechanism). */
enum clc_err clc_notify_set_auth_mechanism(struct clc_notify *n, const char *mech,
                                           struct clc_errinfo *ei);
/* Clock for the Date header (borrowed; NULL = system clock). */
void clc_notify_set_clock(struct clc_notify *n, const struct clc_clock *clock);

#endif
