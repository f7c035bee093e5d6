/* The KQL tokenizer: identifiers, numbers, timespans (1d, 2h, 30m, 10s,
 * 500ms), strings in single or double quotes with backslash escapes,
 * datetime(...) literals and operators; plus the date-time text forms the
 * engine reads and writes and the positioned error helper. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "emulator/kql_int.h"

#define MAX_TOKENS 4096
#define MAX_STRING 4096

void kql_err_at(struct emu_kql_error *err, const char *text, int off, int len, const char *code,
                const char *inner, const char *fmt, ...)
{
    va_list ap;
    int line = 1, pos = 0;

    if (err == NULL)
        return;
    for (int i = 0; text != NULL && i < off && text[i]; i++) {
        if (text[i] == '\n') {
            line++;
            pos = 0;
        } else {
            pos++;
        }
    }
    snprintf(err->code, sizeof err->code, "%s", code);
    snprintf(err->inner_code, sizeof err->inner_code, "%s", inner);
    err->line = line;
    err->pos = pos;
    if (text != NULL && len > 0)
        snprintf(err->token, sizeof err->token, "%.*s", len < 63 ? len : 63, text + off);
    else
        snprintf(err->token, sizeof err->token, "%s", len == 0 ? "<end of query>" : "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* ---- date-time text ---- */

static int digits(const char *s, size_t len, size_t at, size_t n, int *out)
{
    int v = 0;
    if (at + n > len)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[at + i]))
            return 0;
        v = v * 10 + (s[at + i] - '0');
    }
    *out = v;
    return 1;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : d[m - 1];
}

int emu_kql_parse_datetime(const char *s, size_t len, int64_t *ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
    int64_t frac_ms = 0;
    size_t i = 10;

    if (!digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' || !digits(s, len, 5, 2, &mo) ||
        s[7] != '-' || !digits(s, len, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 ||
        d > days_in_month(y, mo))
        return -1;
    if (i < len && (s[i] == 'T' || s[i] == ' ')) {
        if (!digits(s, len, i + 1, 2, &h) || i + 3 >= len || s[i + 3] != ':' ||
            !digits(s, len, i + 4, 2, &mi))
            return -1;
        i += 6;
        if (i < len && s[i] == ':') {
            if (!digits(s, len, i + 1, 2, &sec))
                return -1;
            i += 3;
            if (i < len && s[i] == '.') {
                int64_t scale = 100;
                size_t start = ++i;
                for (; i < len && isdigit((unsigned char)s[i]); i++) {
                    frac_ms += (s[i] - '0') * scale;
                    scale /= 10;
                }
                if (i == start)
                    return -1;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return -1;
        if (i < len && s[i] == 'Z') {
            i++;
        } else if (i < len && (s[i] == '+' || s[i] == '-')) {
            sign = s[i] == '+' ? 1 : -1;
            if (!digits(s, len, i + 1, 2, &oh) || i + 3 >= len || s[i + 3] != ':' ||
                !digits(s, len, i + 4, 2, &om) || oh > 23 || om > 59)
                return -1;
            i += 6;
        }
    }
    if (i != len)
        return -1;
    *ms = (clc_time_from_utc(y, mo, d, h, mi, sec) - (int64_t)sign * (oh * 3600 + om * 60)) * 1000 +
          frac_ms;
    return 0;
}

/* Copies bounded text into a fixed-size output (the formats fit; years
 * beyond 9999 are cut rather than overflow). */
static void put(char out[EMU_KQL_TIME_MAX], const char *s)
{
    size_t n = strlen(s);
    if (n >= EMU_KQL_TIME_MAX)
        n = EMU_KQL_TIME_MAX - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

void emu_kql_fmt_datetime(int64_t ms, char out[EMU_KQL_TIME_MAX])
{
    char buf[128];
    int64_t s = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int frac = (int)(ms - s * 1000);
    time_t t = (time_t)s;
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL) {
        put(out, "invalid");
        return;
    }
    if (frac)
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    else
        snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    put(out, buf);
}

void emu_kql_fmt_timespan(int64_t ms, char out[EMU_KQL_TIME_MAX])
{
    const char *sign = ms < 0 ? "-" : "";
    uint64_t a = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    uint64_t days = a / 86400000u, rest = a % 86400000u;
    unsigned h = (unsigned)(rest / 3600000u), m = (unsigned)(rest / 60000u % 60u),
             s = (unsigned)(rest / 1000u % 60u), f = (unsigned)(rest % 1000u);
    char d[32] = "", fr[16] = "", buf[128];

    if (days)
        snprintf(d, sizeof d, "%llu.", (unsigned long long)days);
    /* .NET's constant format: seven fractional digits when there are any. */
    if (f)
        snprintf(fr, sizeof fr, ".%03u0000", f);
    snprintf(buf, sizeof buf, "%s%s%02u:%02u:%02u%s", sign, d, h, m, s, fr);
    put(out, buf);
}

/* ---- tokenizer ---- */

struct lexer {
    const char *text;
    size_t pos;
    struct ktokens *out;
    size_t cap;
    struct emu_kql_error *err;
};

static enum clc_err push(struct lexer *lx, const struct ktoken *t)
{
    if (lx->out->n >= MAX_TOKENS) {
        kql_err_at(lx->err, lx->text, t->off, t->len, "SyntaxError", "SYN0001",
                   "The query has more than %d tokens", MAX_TOKENS);
        return CLC_ERR_LIMIT;
    }
    if (lx->out->n == lx->cap) {
        size_t nc = lx->cap ? lx->cap * 2 : 32;
        struct ktoken *v = realloc(lx->out->v, nc * sizeof *v);
        if (v == NULL)
            return CLC_ERR_NOMEM;
        lx->out->v = v;
        lx->cap = nc;
    }
    lx->out->v[lx->out->n++] = *t;
    return CLC_OK;
}

static enum clc_err lex_error(struct lexer *lx, size_t off, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum clc_err lex_error(struct lexer *lx, size_t off, size_t len, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kql_err_at(lx->err, lx->text, (int)off, (int)len, "SyntaxError", "SYN0002", "%s", msg);
    return CLC_ERR_PARSE;
}

static enum clc_err lex_string(struct lexer *lx, struct ktoken *t)
{
    const char *p = lx->text;
    char q = p[lx->pos];
    char *buf = malloc(MAX_STRING + 1);
    size_t n = 0, i = lx->pos + 1;

    if (buf == NULL)
        return CLC_ERR_NOMEM;
    for (;; i++) {
        char c = p[i];
        if (c == '\0' || c == '\n') {
            free(buf);
            return lex_error(lx, lx->pos, 1, "Unterminated string literal starting with %c", q);
        }
        if (c == q)
            break;
        if (c == '\\') {
            char e = p[++i];
            switch (e) {
            case '\\':
                c = '\\';
                break;
            case '\'':
                c = '\'';
                break;
            case '"':
                c = '"';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            default:
                free(buf);
                return lex_error(lx, i - 1, 2, "Unknown escape sequence '\\%c' in a string literal",
                                 e ? e : ' ');
            }
        }
        if (n == MAX_STRING) {
            free(buf);
            return lex_error(lx, lx->pos, 1, "String literal longer than %d characters",
                             MAX_STRING);
        }
        buf[n++] = c;
    }
    buf[n] = '\0';
    t->t = KT_STRING;
    t->s = buf;
    t->len = (int)(i + 1 - lx->pos);
    lx->pos = i + 1;
    return CLC_OK;
}

/* A number, or a timespan when a unit follows at once (1.5h). */
static enum clc_err lex_number(struct lexer *lx, struct ktoken *t)
{
    const char *p = lx->text + lx->pos;
    size_t n = 0, u;
    int is_real = 0;
    char num[64], tok[48];

    while (isdigit((unsigned char)p[n]))
        n++;
    if (p[n] == '.' && isdigit((unsigned char)p[n + 1])) {
        is_real = 1;
        for (n++; isdigit((unsigned char)p[n]); n++)
            ;
    }
    if ((p[n] == 'e' || p[n] == 'E') &&
        (isdigit((unsigned char)p[n + 1]) ||
         ((p[n + 1] == '+' || p[n + 1] == '-') && isdigit((unsigned char)p[n + 2])))) {
        is_real = 1;
        for (n += 2; isdigit((unsigned char)p[n]); n++)
            ;
    }
    for (u = n; isalnum((unsigned char)p[u]) || p[u] == '_'; u++)
        ;
    snprintf(tok, sizeof tok, "%.*s", (int)(u < 40 ? u : 40), p);
    if (n >= sizeof num)
        return lex_error(lx, lx->pos, u, "Number '%s' is too long", tok);
    memcpy(num, p, n);
    num[n] = '\0';
    t->len = (int)u;
    if (u > n) {
        static const struct {
            const char *unit;
            double ms;
        } units[] = {
            {"d", 86400000.0}, {"h", 3600000.0}, {"m", 60000.0}, {"s", 1000.0}, {"ms", 1.0}};
        size_t k;
        for (k = 0; k < sizeof units / sizeof units[0]; k++)
            if (strlen(units[k].unit) == u - n && memcmp(p + n, units[k].unit, u - n) == 0)
                break;
        if (k == sizeof units / sizeof units[0] || p[n] == 'e' || p[n] == 'E')
            return lex_error(lx, lx->pos, u,
                             "'%s' is neither a number nor a timespan (units: d, h, m, s, ms)",
                             tok);
        double v = strtod(num, NULL) * units[k].ms;
        if (!isfinite(v) || v > 9.2e18)
            return lex_error(lx, lx->pos, u, "Timespan %s is out of range", tok);
        t->t = KT_TIMESPAN;
        t->i = (int64_t)llround(v);
    } else if (is_real) {
        t->t = KT_REAL;
        t->r = strtod(num, NULL);
        if (!isfinite(t->r))
            return lex_error(lx, lx->pos, n, "Real number %s is out of range", tok);
    } else {
        errno = 0;
        t->t = KT_INT;
        t->i = strtoll(num, NULL, 10);
        if (errno == ERANGE)
            return lex_error(lx, lx->pos, n, "Integer %s does not fit in a long", tok);
    }
    lx->pos += u;
    return CLC_OK;
}

/* datetime(2026-01-02T03:04:05Z): the text between the parentheses, which
 * may also be quoted. */
static enum clc_err lex_datetime(struct lexer *lx, struct ktoken *t, size_t ident_end)
{
    const char *p = lx->text;
    size_t open = ident_end, i = open + 1, start, end;

    while (p[i] == ' ')
        i++;
    start = i;
    while (p[i] && p[i] != ')' && p[i] != '\n')
        i++;
    if (p[i] != ')')
        return lex_error(lx, lx->pos, open + 1 - lx->pos, "Unterminated datetime(...) literal");
    end = i;
    while (end > start && p[end - 1] == ' ')
        end--;
    if (end - start >= 2 && (p[start] == '"' || p[start] == '\'') && p[end - 1] == p[start]) {
        start++;
        end--;
    }
    if (emu_kql_parse_datetime(p + start, end - start, &t->i) != 0)
        return lex_error(lx, lx->pos, i + 1 - lx->pos,
                         "'%.*s' is not a valid datetime (expected ISO 8601, e.g. "
                         "datetime(2026-01-02T03:04:05Z))",
                         (int)(end - start < 40 ? end - start : 40), p + start);
    t->t = KT_DATETIME;
    t->len = (int)(i + 1 - lx->pos);
    lx->pos = i + 1;
    return CLC_OK;
}

static enum clc_err lex_word(struct lexer *lx, struct ktoken *t, int neg)
{
    const char *p = lx->text;
    size_t s = lx->pos + (size_t)neg, i = s;

    while (isalnum((unsigned char)p[i]) || p[i] == '_')
        i++;
    if (i - s >= EMU_KQL_NAME_MAX)
        return lex_error(lx, lx->pos, i - lx->pos, "Name longer than %d characters",
                         EMU_KQL_NAME_MAX - 1);
    if (!neg && i - s == 8 && memcmp(p + s, "datetime", 8) == 0 && p[i] == '(')
        return lex_datetime(lx, t, i);
    t->t = neg ? KT_NEGWORD : KT_IDENT;
    t->s = strndup(p + lx->pos, i - lx->pos);
    if (t->s == NULL)
        return CLC_ERR_NOMEM;
    t->len = (int)(i - lx->pos);
    lx->pos = i;
    return CLC_OK;
}

static enum clc_err lex_op(struct lexer *lx, struct ktoken *t)
{
    static const struct {
        const char *text;
        enum ktok t;
    } ops[] = {
        {"==", KT_EQ},    {"!=", KT_NE},    {"<>", KT_NE},   {"<=", KT_LE},   {">=", KT_GE},
        {"=~", KT_EQ_CI}, {"!~", KT_NE_CI}, {"|", KT_PIPE},  {",", KT_COMMA}, {"(", KT_LP},
        {")", KT_RP},     {"=", KT_ASSIGN}, {"<", KT_LT},    {">", KT_GT},    {"+", KT_PLUS},
        {"-", KT_MINUS},  {"*", KT_STAR},   {"/", KT_SLASH},
    };
    const char *p = lx->text + lx->pos;

    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        size_t n = strlen(ops[k].text);
        if (strncmp(p, ops[k].text, n) == 0) {
            t->t = ops[k].t;
            t->len = (int)n;
            lx->pos += n;
            return CLC_OK;
        }
    }
    char what[8];
    unsigned char c = (unsigned char)*p;
    if (c >= 0x20 && c < 0x7f)
        snprintf(what, sizeof what, "'%c'", c);
    else
        snprintf(what, sizeof what, "0x%02x", c);
    return lex_error(lx, lx->pos, 1, "Unexpected character %s", what);
}

enum clc_err kql_lex(const char *text, struct ktokens *out, struct emu_kql_error *err)
{
    struct lexer lx = {.text = text, .out = out, .err = err};
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    for (;;) {
        struct ktoken t = {0};
        char c;

        while (text[lx.pos] == ' ' || text[lx.pos] == '\t' || text[lx.pos] == '\n' ||
               text[lx.pos] == '\r')
            lx.pos++;
        /* // comments run to the end of the line, as in KQL. */
        if (text[lx.pos] == '/' && text[lx.pos + 1] == '/') {
            while (text[lx.pos] && text[lx.pos] != '\n')
                lx.pos++;
            continue;
        }
        t.off = (int)lx.pos;
        c = text[lx.pos];
        if (c == '\0') {
            t.t = KT_EOF;
            rc = push(&lx, &t);
            break;
        }
        if (c == '\'' || c == '"')
            rc = lex_string(&lx, &t);
        else if (isdigit((unsigned char)c))
            rc = lex_number(&lx, &t);
        else if (isalpha((unsigned char)c) || c == '_')
            rc = lex_word(&lx, &t, 0);
        else if (c == '!' && isalpha((unsigned char)text[lx.pos + 1]))
            rc = lex_word(&lx, &t, 1);
        else
            rc = lex_op(&lx, &t);
        if (rc == CLC_OK)
            rc = push(&lx, &t);
        if (rc != CLC_OK) {
            free(t.s);
            break;
        }
    }
    if (rc != CLC_OK)
        kql_tokens_free(out);
    return rc;
}

void kql_tokens_free(struct ktokens *t)
{
    for (size_t i = 0; t->v != NULL && i < t->n; i++)
        free(t->v[i].s);
    free(t->v);
    t->v = NULL;
    t->n = 0;
}
