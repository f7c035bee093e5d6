/* Structured logging: typed fields as key=value text or JSON lines. Every
 * value passes one escaper (no forged records, no terminal escapes) and the
 * redaction checks (credentials print only as "[redacted]"). */
#include "core/log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/clock.h"

/* A value longer than this is cut: a log line is for people and log
 * pipelines, not for shipping response bodies. */
#define LOG_VALUE_MAX 4096
#define LOG_STACK_BUF 2048
#define LOG_RECORD_MAX (256 * 1024)

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int log_min = CLC_LOG_INFO;
static enum clc_log_format log_fmt = CLC_LOG_TEXT;
static FILE *log_out = NULL; /* NULL means stderr, resolved at write time */

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void clc_log_setup(enum clc_log_level min, enum clc_log_format fmt, FILE *out)
{
    pthread_mutex_lock(&log_lock);
    atomic_store(&log_min, (int)min);
    log_fmt = fmt;
    log_out = out;
    pthread_mutex_unlock(&log_lock);
}

enum clc_log_level clc_log_min_level(void)
{
    return (enum clc_log_level)atomic_load(&log_min);
}

int clc_log_level_parse(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    }
    if (strcasecmp(s, "warning") == 0)
        return CLC_LOG_WARN;
    return -1;
}

int clc_log_format_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcasecmp(s, "text") == 0)
        return CLC_LOG_TEXT;
    if (strcasecmp(s, "json") == 0)
        return CLC_LOG_JSON;
    return -1;
}

static const char *level_name(enum clc_log_level lvl)
{
    unsigned i = (unsigned)lvl;
    return i < 4 ? level_names[i] : "unknown";
}

/* A writer over a fixed buffer that keeps counting past the end, like
 * snprintf, so the caller learns the size a complete record needs. */
struct wr {
    char *buf;
    size_t size;
    size_t len;
};

static void put(struct wr *w, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (w->len + 1 < w->size)
            w->buf[w->len] = p[i];
        w->len++;
    }
}

static void puts_(struct wr *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_hex_escape(struct wr *w, const char *prefix, unsigned v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[8];
    puts_(w, prefix);
    for (int i = digits - 1; i >= 0; i--)
        tmp[digits - 1 - i] = hex[(v >> (4 * i)) & 0xf];
    put(w, tmp, (size_t)digits);
}

/* Decodes one UTF-8 sequence. Returns its length, or 0 when the bytes are
 * not well-formed UTF-8 (overlong forms, surrogates and values past U+10FFFF
 * included); the caller then escapes a single byte. */
static size_t u8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v;
    uint32_t min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Code points that must never appear raw: C0 and C1 controls, DEL, and the
 * Unicode line and paragraph separators (which some viewers treat as line
 * breaks). */
static int cp_is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029;
}

static int text_needs_quotes(const char *s, size_t n)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            return 1;
    }
    return 0;
}

static void put_text_value(struct wr *w, const char *s, size_t n)
{
    if (!text_needs_quotes(s, n)) {
        put(w, s, n);
        return;
    }
    put(w, "\"", 1);
    size_t i = 0;
    while (i < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        uint32_t cp = 0;
        size_t len = u8_decode(p, n - i, &cp);
        if (len == 0) {
            put_hex_escape(w, "\\x", p[0], 2);
            i++;
            continue;
        }
        i += len;
        switch (cp) {
        case '"':
            puts_(w, "\\\"");
            continue;
        case '\\':
            puts_(w, "\\\\");
            continue;
        case '\n':
            puts_(w, "\\n");
            continue;
        case '\r':
            puts_(w, "\\r");
            continue;
        case '\t':
            puts_(w, "\\t");
            continue;
        default:
            break;
        }
        if (cp < 0x80 && cp_is_control(cp))
            put_hex_escape(w, "\\x", cp, 2);
        else if (cp_is_control(cp))
            put_hex_escape(w, "\\u", cp, 4);
        else
            put(w, (const char *)p, len);
    }
    put(w, "\"", 1);
}

/* A JSON string literal (RFC 8259 §7). Invalid UTF-8 becomes U+FFFD so the
 * line stays valid JSON whatever bytes a peer sent. */
static void put_json_string(struct wr *w, const char *s, size_t n)
{
    put(w, "\"", 1);
    size_t i = 0;
    while (i < n) {
        const unsigned char *p = (const unsigned char *)s + i;
        uint32_t cp = 0;
        size_t len = u8_decode(p, n - i, &cp);
        if (len == 0) {
            puts_(w, "\\ufffd");
            i++;
            continue;
        }
        i += len;
        switch (cp) {
        case '"':
            puts_(w, "\\\"");
            continue;
        case '\\':
            puts_(w, "\\\\");
            continue;
        case '\n':
            puts_(w, "\\n");
            continue;
        case '\r':
            puts_(w, "\\r");
            continue;
        case '\t':
            puts_(w, "\\t");
            continue;
        case '\b':
            puts_(w, "\\b");
            continue;
        case '\f':
            puts_(w, "\\f");
            continue;
        default:
            break;
        }
        if (cp_is_control(cp))
            put_hex_escape(w, "\\u", cp, 4);
        else
            put(w, (const char *)p, len);
    }
    put(w, "\"", 1);
}

/* Keys come from code, but a computed key must not break the format either:
 * anything outside [A-Za-z0-9_.-] becomes '_'. */
static void put_key(struct wr *w, const char *key)
{
    if (key == NULL || key[0] == '\0') {
        put(w, "_", 1);
        return;
    }
    for (const char *k = key; *k != '\0'; k++) {
        char c = *k;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        put(w, ok ? &c : "_", 1);
    }
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (const char *h = hay; *h != '\0'; h++) {
        if (strncasecmp(h, needle, n) == 0)
            return 1;
    }
    return 0;
}

/* Key names that announce a credential. "key" only as a suffix: api_key and
 * storage_account_key are secrets, key_type and key_size are not. */
static int key_is_sensitive(const char *key)
{
    static const char *const words[] = {"password", "secret", "token", "authorization",
                                        "assertion"};
    if (key == NULL)
        return 0;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        if (contains_ci(key, words[i]))
            return 1;
    }
    size_t n = strlen(key);
    return n >= 3 && strcasecmp(key + n - 3, "key") == 0;
}

static int is_b64url_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* A JWT anywhere in the value ("Bearer eyJ...", a URL with ?token=eyJ...):
 * a base64url run starting "eyJ" (the encoding of '{"'), a dot, another
 * non-empty run and a second dot. The signature may be empty (alg none). */
static int has_jwt(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i + 3 <= n; i++) {
        /* No word-boundary test before "eyJ": a token glued to other text
         * ("Bearer%20eyJ...") must still be caught. */
        if (memcmp(s + i, "eyJ", 3) != 0)
            continue;
        size_t j = i + 3;
        while (j < n && is_b64url_char(u[j]))
            j++;
        if (j >= n || u[j] != '.')
            continue;
        size_t k = ++j;
        while (k < n && is_b64url_char(u[k]))
            k++;
        if (k > j && k < n && u[k] == '.')
            return 1;
    }
    return 0;
}

static void put_value(struct wr *w, enum clc_log_format fmt, const char *s, size_t n)
{
    if (fmt == CLC_LOG_JSON)
        put_json_string(w, s, n);
    else
        put_text_value(w, s, n);
}

static void put_field(struct wr *w, enum clc_log_format fmt, const struct clc_log_field *f)
{
    char tmp[64];
    if (fmt == CLC_LOG_JSON) {
        put(w, ",\"", 2);
        put_key(w, f->key);
        put(w, "\":", 2);
    } else {
        put(w, " ", 1);
        put_key(w, f->key);
        put(w, "=", 1);
    }
    switch (f->type) {
    case CLC_LF_INT: {
        int m = snprintf(tmp, sizeof tmp, "%lld", f->i);
        put(w, tmp, m > 0 ? (size_t)m : 0);
        return;
    }
    case CLC_LF_SECRET: {
        char fp[CLC_SECRET_FP_LEN];
        clc_secret_fingerprint(f->secret, fp);
        snprintf(tmp, sizeof tmp, "[redacted %s]", fp);
        put_value(w, fmt, tmp, strlen(tmp));
        return;
    }
    case CLC_LF_STR: {
        const char *s = f->s != NULL ? f->s : "";
        size_t n = strlen(s);
        if (key_is_sensitive(f->key) || has_jwt(s, n)) {
            put_value(w, fmt, "[redacted]", 10);
            return;
        }
        if (n > LOG_VALUE_MAX) {
            /* Cut, and say so, rather than emit a partial value silently. */
            char cut[LOG_VALUE_MAX + 32];
            memcpy(cut, s, LOG_VALUE_MAX);
            int m = snprintf(cut + LOG_VALUE_MAX, 32, "...[%zu bytes]", n);
            put_value(w, fmt, cut, LOG_VALUE_MAX + (m > 0 ? (size_t)m : 0));
            return;
        }
        put_value(w, fmt, s, n);
        return;
    }
    }
    put_value(w, fmt, "?", 1);
}

static void put_timestamp(struct wr *w, enum clc_log_format fmt, int64_t unix_ms)
{
    char iso[CLC_TIME_STR_MAX];
    char ts[CLC_TIME_STR_MAX + 8];
    int64_t ms = unix_ms % 1000;
    int64_t secs = unix_ms / 1000;
    if (ms < 0) {
        ms += 1000;
        secs--;
    }
    if (clc_time_fmt_iso8601(secs, iso) != CLC_OK) {
        snprintf(ts, sizeof ts, "%lld", (long long)unix_ms);
    } else {
        size_t n = strlen(iso); /* ends in 'Z' */
        snprintf(ts, sizeof ts, "%.*s.%03dZ", (int)(n - 1), iso, (int)ms);
    }
    if (fmt == CLC_LOG_JSON)
        put_json_string(w, ts, strlen(ts));
    else
        puts_(w, ts);
}

/* Returns the full length the record needs (without the NUL), which may be
 * more than fits in w. */
static size_t format_into(struct wr *w, enum clc_log_format fmt, int64_t unix_ms,
                          enum clc_log_level lvl, const char *event, const struct clc_log_field *f,
                          size_t n)
{
    const char *ev = event != NULL ? event : "";
    if (fmt == CLC_LOG_JSON) {
        puts_(w, "{\"ts\":");
        put_timestamp(w, fmt, unix_ms);
        puts_(w, ",\"level\":\"");
        puts_(w, level_name(lvl));
        puts_(w, "\",\"event\":");
        put_json_string(w, ev, strlen(ev));
        for (size_t i = 0; i < n; i++)
            put_field(w, fmt, &f[i]);
        puts_(w, "}\n");
    } else {
        puts_(w, "ts=");
        put_timestamp(w, fmt, unix_ms);
        puts_(w, " level=");
        puts_(w, level_name(lvl));
        puts_(w, " event=");
        put_text_value(w, ev, strlen(ev));
        for (size_t i = 0; i < n; i++)
            put_field(w, fmt, &f[i]);
        puts_(w, "\n");
    }
    if (w->size > 0)
        w->buf[w->len < w->size ? w->len : w->size - 1] = '\0';
    return w->len;
}

size_t clc_log_format_record(char *buf, size_t size, enum clc_log_format fmt, int64_t unix_ms,
                             enum clc_log_level lvl, const char *event,
                             const struct clc_log_field *f, size_t n)
{
    struct wr w = {buf, size, 0};
    size_t need = format_into(&w, fmt, unix_ms, lvl, event, f, n);
    if (size == 0)
        return 0;
    return need < size ? need : size - 1;
}

void clc_log_fields(enum clc_log_level lvl, const char *event, const struct clc_log_field *f,
                    size_t n)
{
    char stack[LOG_STACK_BUF];
    char *heap = NULL;

    if ((int)lvl < atomic_load(&log_min))
        return;
    int64_t now = clc_clock_now_ms(NULL);

    pthread_mutex_lock(&log_lock);
    enum clc_log_format fmt = log_fmt;
    FILE *out = log_out != NULL ? log_out : stderr;

    struct wr w = {stack, sizeof stack, 0};
    size_t need = format_into(&w, fmt, now, lvl, event, f, n);
    char *rec = stack;
    if (need >= sizeof stack) {
        /* Rare long record: format again at its full size (bounded), so the
         * line is complete rather than cut mid-field. */
        size_t size = need + 1 <= LOG_RECORD_MAX ? need + 1 : LOG_RECORD_MAX;
        heap = malloc(size);
        if (heap != NULL) {
            struct wr hw = {heap, size, 0};
            format_into(&hw, fmt, now, lvl, event, f, n);
            rec = heap;
            need = size - 1 < need ? size - 1 : need;
        } else {
            need = sizeof stack - 1;
        }
        /* A truncated record still ends its line. */
        if (rec[need - 1] != '\n')
            rec[need - 1] = '\n';
    }
    fwrite(rec, 1, need, out);
    fflush(out);
    pthread_mutex_unlock(&log_lock);
    free(heap);
}
