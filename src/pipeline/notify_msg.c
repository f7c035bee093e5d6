/* Composing a renewal notice: RFC 5322 headers (Date, From, To, Subject,
 * Message-ID, MIME-Version) and a multipart/alternative body with a plain
 * text and an HTML part, both UTF-8 in quoted-printable. Every value from a
 * certificate or an error passes a sanitiser first: no control character
 * reaches a header or a body line, and HTML gets entities. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/b64.h"
#include "core/rand.h"
#include "pipeline/notify_int.h"

#define VALUE_MAX 2048  /* longest value shown in a mail */
#define SUBJECT_MAX 256 /* longest subject before encoding */
#define EW_CHUNK                                                                                   \
    42             /* bytes per encoded-word: 56 base64 chars, 68 in all, so                       \
                    * "Subject: " and one word stay within 78 */
#define FOLD_AT 78 /* RFC 5322 §2.1.1 recommended line length */
#define QP_LINE 76 /* RFC 2045 line limit, including a soft break's '=' */
#define PART_MAX ((size_t)64 * 1024)

/* Length of the UTF-8 sequence at p (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned cp;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2, cp = p[0] & 0x1fu;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3, cp = p[0] & 0x0fu;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4, cp = p[0] & 0x07u;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3fu);
    }
    /* Overlong forms, surrogates and values past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Appends s cut to max bytes (at a character boundary) with every control
 * character as a space and every invalid UTF-8 byte as '?'. */
static enum clc_err append_clean(struct clc_buf *b, const char *s, size_t max)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = strlen((const char *)p), used = 0;
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n && rc == CLC_OK;) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0) {
            k = 1;
            if (used + 1 > max)
                break;
            rc = clc_buf_append_byte(b, '?');
        } else if (k == 1 && (p[i] < 0x20 || p[i] == 0x7f)) {
            if (used + 1 > max)
                break;
            rc = clc_buf_append_byte(b, ' ');
        } else {
            if (used + k > max)
                break;
            rc = clc_buf_append(b, p + i, k);
        }
        used += k;
        i += k;
    }
    return rc;
}

enum clc_err clc_notify_html_escape(struct clc_buf *b, const char *s)
{
    struct clc_buf clean;
    enum clc_err rc;

    clc_buf_init(&clean, VALUE_MAX + 1);
    rc = append_clean(&clean, s, VALUE_MAX);
    for (const char *p = clc_buf_str(&clean); rc == CLC_OK && *p != '\0'; p++) {
        switch (*p) {
        case '&':
            rc = clc_buf_append_str(b, "&amp;");
            break;
        case '<':
            rc = clc_buf_append_str(b, "&lt;");
            break;
        case '>':
            rc = clc_buf_append_str(b, "&gt;");
            break;
        case '"':
            rc = clc_buf_append_str(b, "&quot;");
            break;
        case '\'':
            rc = clc_buf_append_str(b, "&#39;");
            break;
        default:
            rc = clc_buf_append_byte(b, *p);
            break;
        }
    }
    clc_buf_cleanup(&clean);
    return rc;
}

static int needs_encoding(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return 1;
    /* A plain value that looks like an encoded-word would be decoded by the
     * reader; encoding it keeps what they see equal to what we meant. */
    return strstr(s, "=?") != NULL;
}

/* Appends value as RFC 2047 "B" encoded-words, whole characters per word,
 * one word per folded line. */
static enum clc_err append_encoded_words(struct clc_buf *b, const char *value)
{
    const unsigned char *p = (const unsigned char *)value;
    size_t n = strlen(value), i = 0;
    enum clc_err rc = CLC_OK;

    while (i < n && rc == CLC_OK) {
        size_t take = 0;
        char *enc = NULL;
        while (i + take < n) {
            size_t k = utf8_len(p + i + take, n - i - take);
            if (k == 0)
                k = 1; /* cannot happen after append_clean; stay safe */
            if (take + k > EW_CHUNK)
                break;
            take += k;
        }
        rc = clc_b64_encode(p + i, take, &enc, NULL);
        if (rc == CLC_OK)
            rc = clc_buf_appendf(b, "%s=?UTF-8?B?%s?=", i > 0 ? "\r\n " : "", enc);
        free(enc);
        i += take;
    }
    return rc;
}

/* Appends printable ASCII v, folding before a blank when the line would pass
 * FOLD_AT (col = characters already on the line). A single word longer than
 * that stays whole: still far below the 998 limit, since values are cut. */
static enum clc_err append_folded(struct clc_buf *b, size_t col, const char *v)
{
    const char *p = v;
    enum clc_err rc = CLC_OK;

    while (*p != '\0' && rc == CLC_OK) {
        const char *sp = strchr(p + 1, ' ');
        size_t wl = sp ? (size_t)(sp - p) : strlen(p);
        /* Never fold before blanks alone: a line of only blanks is not allowed. */
        if (*p == ' ' && col + wl > FOLD_AT && col > 1 && strspn(p, " ") < wl) {
            rc = clc_buf_append_str(b, "\r\n");
            col = 0;
        }
        if (rc == CLC_OK)
            rc = clc_buf_append(b, p, wl);
        col += wl;
        p += wl;
    }
    return rc;
}

enum clc_err clc_notify_header_text(struct clc_buf *b, const char *name, const char *value)
{
    struct clc_buf clean;
    enum clc_err rc;

    clc_buf_init(&clean, SUBJECT_MAX + 1);
    rc = append_clean(&clean, value, SUBJECT_MAX);
    if (rc == CLC_OK)
        rc = clc_buf_appendf(b, "%s: ", name);
    if (rc == CLC_OK)
        rc = needs_encoding(clc_buf_str(&clean))
                 ? append_encoded_words(b, clc_buf_str(&clean))
                 : append_folded(b, strlen(name) + 2, clc_buf_str(&clean));
    if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "\r\n");
    clc_buf_cleanup(&clean);
    return rc;
}

enum clc_err clc_notify_qp(struct clc_buf *b, const char *text, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        unsigned char c = (unsigned char)text[i];
        int eol = i + 1 == n || text[i + 1] == '\n';
        char tok[4];
        size_t t;

        if (c == '\n') {
            rc = clc_buf_append_str(b, "\r\n");
            col = 0;
            continue;
        }
        if ((c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol)) {
            tok[0] = (char)c;
            t = 1;
        } else {
            tok[0] = '=';
            tok[1] = hex[c >> 4];
            tok[2] = hex[c & 15];
            t = 3;
        }
        /* Room for the token and, unless the line ends here, a soft break. */
        if (col + t > QP_LINE - (eol ? 0 : 1)) {
            rc = clc_buf_append_str(b, "=\r\n");
            col = 0;
        }
        if (rc == CLC_OK)
            rc = clc_buf_append(b, tok, t);
        col += t;
    }
    if (rc == CLC_OK && n > 0 && text[n - 1] != '\n')
        rc = clc_buf_append_str(b, "\r\n");
    return rc;
}

/* ---- headers ---- */

static enum clc_err append_date(struct clc_buf *b, int64_t t)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t tt = (time_t)t;
    struct tm tm;

    /* Day and month names by hand: strftime would follow the locale. */
    if (gmtime_r(&tt, &tm) == NULL)
        return CLC_ERR_INVALID;
    return clc_buf_appendf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday],
                           tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                           tm.tm_sec);
}

static enum clc_err append_from(struct clc_buf *b, const char *display, const char *addr)
{
    enum clc_err rc;

    if (display == NULL || display[0] == '\0')
        return clc_buf_appendf(b, "From: %s\r\n", addr);
    rc = clc_buf_append_str(b, "From: ");
    if (rc != CLC_OK)
        return rc;
    if (needs_encoding(display)) {
        rc = append_encoded_words(b, display);
    } else {
        /* A quoted-string: only '\' needs escaping ('"' was refused). */
        rc = clc_buf_append_byte(b, '"');
        for (const char *p = display; rc == CLC_OK && *p != '\0'; p++)
            rc = *p == '\\' ? clc_buf_append_str(b, "\\\\") : clc_buf_append_byte(b, *p);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(b, '"');
    }
    return rc == CLC_OK ? clc_buf_appendf(b, " <%s>\r\n", addr) : rc;
}

static enum clc_err append_to(struct clc_buf *b, const char *const *to, size_t nto)
{
    enum clc_err rc = clc_buf_append_str(b, "To: ");

    for (size_t i = 0; i < nto && rc == CLC_OK; i++)
        rc = clc_buf_appendf(b, "%s%s", i > 0 ? ",\r\n " : "", to[i]);
    return rc == CLC_OK ? clc_buf_append_str(b, "\r\n") : rc;
}

/* ---- the two parts ---- */

struct row {
    const char *label;
    const char *value;
};

static size_t rows_of(const struct clc_notify_renewal *r, char *expiry, size_t explen,
                      struct row *rows)
{
    size_t n = 0;

    expiry[0] = '\0';
    if (r->not_after > 0) {
        time_t tt = (time_t)r->not_after;
        struct tm tm;
        if (gmtime_r(&tt, &tm) != NULL)
            snprintf(expiry, explen, "%04d-%02d-%02d %02d:%02d:%02d UTC", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    }
    rows[n++] = (struct row){"Certificate", r->certificate};
    rows[n++] = (struct row){"Key Vault", r->vault};
    if (r->success) {
        rows[n++] = (struct row){"New version", r->new_version};
        rows[n++] = (struct row){"Previous version", r->old_version};
        rows[n++] = (struct row){"New thumbprint", r->new_thumbprint};
        rows[n++] = (struct row){"Old thumbprint", r->old_thumbprint};
        rows[n++] = (struct row){"Serial number", r->serial};
    } else {
        rows[n++] = (struct row){"Current version", r->old_version};
        rows[n++] = (struct row){"Current thumbprint", r->old_thumbprint};
    }
    rows[n++] = (struct row){"Expires", expiry};
    rows[n++] = (struct row){"CA", r->ca};
    rows[n++] = (struct row){"Template", r->template_name};
    rows[n++] = (struct row){"CA request id", r->request_id};
    return n;
}

static int empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

static const char *next_step_of(const struct clc_notify_renewal *r)
{
    return empty(r->next_step) ? "No further attempt is scheduled; see the certlc logs."
                               : r->next_step;
}

static enum clc_err text_part(const struct clc_notify_renewal *r, const struct row *rows,
                              size_t nrows, struct clc_buf *t)
{
    enum clc_err rc;

    rc = clc_buf_append_str(t, r->success ? "The certificate \"" : "certlc could not renew \"");
    if (rc == CLC_OK)
        rc = append_clean(t, r->certificate, VALUE_MAX);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(t, "\" in Key Vault \"");
    if (rc == CLC_OK)
        rc = append_clean(t, r->vault, VALUE_MAX);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(t, r->success ? "\" was renewed by certlc.\n\n" : "\".\n\n");
    for (size_t i = 0; i < nrows && rc == CLC_OK; i++) {
        if (empty(rows[i].value))
            continue;
        rc = clc_buf_appendf(t, "%-20s", rows[i].label);
        if (rc == CLC_OK)
            rc = append_clean(t, rows[i].value, VALUE_MAX);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(t, '\n');
    }
    if (rc == CLC_OK && !r->success) {
        const char *titles[] = {"What failed", "What was tried", "What happens next"};
        const char *vals[] = {empty(r->error) ? "(no detail recorded)" : r->error,
                              empty(r->attempted) ? "(no detail recorded)" : r->attempted,
                              next_step_of(r)};
        for (size_t i = 0; i < 3 && rc == CLC_OK; i++) {
            rc = clc_buf_appendf(t, "\n%s:\n  ", titles[i]);
            if (rc == CLC_OK)
                rc = append_clean(t, vals[i], VALUE_MAX);
            if (rc == CLC_OK)
                rc = clc_buf_append_byte(t, '\n');
        }
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_str(t, r->success ? "\nApplications that read the certificate from Key "
                                                "Vault pick up the new version; nothing else is "
                                                "needed.\n\n-- \ncertlc\n"
                                              : "\n-- \ncertlc\n");
    return rc;
}

static enum clc_err html_part(const struct clc_notify_renewal *r, const char *subject,
                              const struct row *rows, size_t nrows, struct clc_buf *h)
{
    enum clc_err rc;

    rc = clc_buf_append_str(h, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    if (rc == CLC_OK)
        rc = clc_notify_html_escape(h, subject);
    if (rc == CLC_OK)
        rc = clc_buf_appendf(h,
                             "</title></head>\n<body style=\"font-family:sans-serif\">\n"
                             "<h2>%s</h2>\n<table style=\"border-collapse:collapse\">\n",
                             r->success ? "Certificate renewed" : "Certificate renewal failed");
    for (size_t i = 0; i < nrows && rc == CLC_OK; i++) {
        if (empty(rows[i].value))
            continue;
        rc = clc_buf_appendf(h,
                             "<tr><th style=\"text-align:left;padding:2px 16px 2px 0\">%s"
                             "</th><td style=\"font-family:monospace\">",
                             rows[i].label);
        if (rc == CLC_OK)
            rc = clc_notify_html_escape(h, rows[i].value);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(h, "</td></tr>\n");
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_str(h, "</table>\n");
    if (rc == CLC_OK && !r->success) {
        const char *titles[] = {"What failed", "What was tried", "What happens next"};
        const char *vals[] = {empty(r->error) ? "(no detail recorded)" : r->error,
                              empty(r->attempted) ? "(no detail recorded)" : r->attempted,
                              next_step_of(r)};
        for (size_t i = 0; i < 3 && rc == CLC_OK; i++) {
            rc = clc_buf_appendf(h, "<h3>%s</h3>\n<p>", titles[i]);
            if (rc == CLC_OK)
                rc = clc_notify_html_escape(h, vals[i]);
            if (rc == CLC_OK)
                rc = clc_buf_append_str(h, "</p>\n");
        }
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_str(h, "<p style=\"color:#666\">Sent by certlc.</p>\n</body></html>\n");
    return rc;
}

/* ---- the message ---- */

static enum clc_err subject_of(const struct clc_notify_renewal *r, struct clc_buf *s)
{
    enum clc_err rc = clc_buf_append_str(s, r->success ? "Certificate " : "Renewal of ");

    if (rc == CLC_OK)
        rc = append_clean(s, empty(r->certificate) ? "(unnamed)" : r->certificate, 128);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(s, r->success ? " renewed" : " failed");
    if (rc == CLC_OK && !empty(r->vault)) {
        rc = clc_buf_append_str(s, " (Key Vault ");
        if (rc == CLC_OK)
            rc = append_clean(s, r->vault, 64);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(s, ')');
    }
    return rc;
}

static enum clc_err append_part(struct clc_buf *out, const char *boundary, const char *type,
                                const struct clc_buf *content)
{
    enum clc_err rc = clc_buf_appendf(out,
                                      "--%s\r\nContent-Type: %s; charset=utf-8\r\n"
                                      "Content-Transfer-Encoding: quoted-printable\r\n\r\n",
                                      boundary, type);
    return rc == CLC_OK ? clc_notify_qp(out, content->data ? content->data : "", content->len) : rc;
}

enum clc_err clc_notify_compose(const struct clc_notify_compose_in *in,
                                const struct clc_notify_renewal *r, struct clc_buf *out,
                                struct clc_errinfo *ei)
{
    char rnd[33], boundary[64], left[80], expiry[40];
    const char *domain = strchr(in->from_addr, '@');
    struct clc_buf subj, text, html;
    struct row rows[16];
    size_t nrows;
    enum clc_err rc;

    clc_buf_init(&subj, SUBJECT_MAX + 64);
    clc_buf_init(&text, PART_MAX);
    clc_buf_init(&html, PART_MAX);
    if (in->nto == 0 || domain == NULL) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "a message needs a From address and a recipient");
        goto out;
    }
    clc_rand_hex(rnd, 16);
    snprintf(boundary, sizeof boundary, "=_certlc_%s", in->boundary ? in->boundary : rnd);
    clc_rand_hex(rnd, 16);
    snprintf(left, sizeof left, "%s", in->msgid_left ? in->msgid_left : rnd);
    nrows = rows_of(r, expiry, sizeof expiry, rows);
    rc = subject_of(r, &subj);
    if (rc == CLC_OK)
        rc = text_part(r, rows, nrows, &text);
    if (rc == CLC_OK)
        rc = html_part(r, clc_buf_str(&subj), rows, nrows, &html);
    if (rc == CLC_OK)
        rc = append_date(out, in->date);
    if (rc == CLC_OK)
        rc = append_from(out, in->from_display, in->from_addr);
    if (rc == CLC_OK)
        rc = append_to(out, in->to, in->nto);
    if (rc == CLC_OK)
        rc = clc_notify_header_text(out, "Subject", clc_buf_str(&subj));
    if (rc == CLC_OK)
        rc = clc_buf_appendf(out,
                             "Message-ID: <%s@%s>\r\nMIME-Version: 1.0\r\n"
                             "Auto-Submitted: auto-generated\r\n"
                             "Content-Type: multipart/alternative; boundary=\"%s\"\r\n\r\n"
                             "This is a multi-part message in MIME format.\r\n\r\n",
                             left, domain + 1, boundary);
    if (rc == CLC_OK)
        rc = append_part(out, boundary, "text/plain", &text);
    if (rc == CLC_OK)
        rc = append_part(out, boundary, "text/html", &html);
    if (rc == CLC_OK)
        rc = clc_buf_appendf(out, "--%s--\r\n", boundary);
    if (rc != CLC_OK)
        rc = clc_errf(ei, rc, "composing the message: %s", clc_err_name(rc));
out:
    clc_buf_cleanup(&subj);
    clc_buf_cleanup(&text);
    clc_buf_cleanup(&html);
    return rc;
}
