/* Structured logging: an event name plus typed key/value fields, written as
 * key=value text for people or JSON lines for machines. Secret fields print
 * only a fingerprint; string fields whose key names a credential (password,
 * secret, token, authorization, assertion, key) or whose value looks like a
 * JWT are redacted too, as a second line of defence. */
#ifndef CLC_LOG_H
#define CLC_LOG_H

#include <stdio.h>
#include <stdint.h>
#include "core/secret.h"

enum clc_log_level { CLC_LOG_DEBUG = 0, CLC_LOG_INFO, CLC_LOG_WARN, CLC_LOG_ERROR };
enum clc_log_format { CLC_LOG_TEXT = 0, CLC_LOG_JSON };

enum clc_log_ftype { CLC_LF_STR, CLC_LF_INT, CLC_LF_SECRET };

struct clc_log_field {
    const char *key;
    enum clc_log_ftype type;
    const char *s;                   /* CLC_LF_STR (NULL prints as empty) */
    long long i;                     /* CLC_LF_INT */
    const struct clc_secret *secret; /* CLC_LF_SECRET */
};

#define CLC_LS(k, v) ((struct clc_log_field){.key = (k), .type = CLC_LF_STR, .s = (v)})
#define CLC_LI(k, v) ((struct clc_log_field){.key = (k), .type = CLC_LF_INT, .i = (long long)(v)})
#define CLC_LSECRET(k, v) ((struct clc_log_field){.key = (k), .type = CLC_LF_SECRET, .secret = (v)})

/* Process-wide settings. Defaults: INFO, TEXT, stderr. Thread-safe writes:
 * each record is emitted with a single fwrite under a lock. */
void clc_log_setup(enum clc_log_level min, enum clc_log_format fmt, FILE *out);
enum clc_log_level clc_log_min_level(void);
/* Parses "debug|info|warn|error" and "text|json"; -1 when unknown. */
int clc_log_level_parse(const char *s);
int clc_log_format_parse(const char *s);

void clc_log_fields(enum clc_log_level lvl, const char *event, const struct clc_log_field *f,
                    size_t n);

/* Formats one record into buf (for tests and for callers with their own
 * sink); returns the length written, truncated to size-1. */
size_t clc_log_format_record(char *buf, size_t size, enum clc_log_format fmt, int64_t unix_ms,
                             enum clc_log_level lvl, const char *event,
                             const struct clc_log_field *f, size_t n);

/* clc_log(CLC_LOG_INFO, "token.acquired", CLC_LS("scope", s), CLC_LI("ttl", 3599)); */
#define clc_log(lvl, event, ...)                                                                   \
    do {                                                                                           \
        if ((lvl) >= clc_log_min_level()) {                                                        \
            const struct clc_log_field clc_lf_[] = {CLC_LS(NULL, NULL), __VA_ARGS__};              \
            clc_log_fields((lvl), (event), clc_lf_ + 1, sizeof clc_lf_ / sizeof clc_lf_[0] - 1);   \
        }                                                                                          \
    } while (0)
#define clc_log0(lvl, event) clc_log_fields((lvl), (event), NULL, 0)

#endif
