/* Reads AD CS Web Enrollment HTML pages: which disposition a certfnsh.asp or
 * certnew.cer answer carries, the request id, the disposition message and its
 * HRESULT. Matching is by the marker texts every known client uses, loosely
 * (case, spacing, entity or literal quotes), since the pages are not an API. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ca/ca_int.h"

/* Case-insensitive search for needle in hay[0..len). */
static const char *ci_find(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);

    if (n == 0 || n > len)
        return NULL;
    for (size_t i = 0; i + n <= len; i++) {
        size_t j = 0;
        while (j < n && tolower((unsigned char)hay[i + j]) == tolower((unsigned char)needle[j]))
            j++;
        if (j == n)
            return hay + i;
    }
    return NULL;
}

/* Appends text to dst with entities decoded and runs of whitespace
 * collapsed; stops at end or at the first character of `stops` (before
 * decoding). Returns where it stopped. */
static const char *copy_text(const char *p, const char *end, const char *stops, char *dst,
                             size_t dstsz)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&quot;", '"'}, {"&amp;", '&'}, {"&lt;", '<'},   {"&gt;", '>'},
                {"&#39;", '\''}, {"&#34;", '"'}, {"&nbsp;", ' '}, {"&apos;", '\''}};
    size_t o = strlen(dst);
    int space = o > 0 && dst[o - 1] == ' ';

    while (p < end && !strchr(stops, *p)) {
        char c = *p;
        size_t adv = 1;
        if (c == '&') {
            for (size_t i = 0; i < sizeof ents / sizeof ents[0]; i++) {
                size_t el = strlen(ents[i].ent);
                if ((size_t)(end - p) >= el && strncasecmp(p, ents[i].ent, el) == 0) {
                    c = ents[i].c;
                    adv = el;
                    break;
                }
            }
        }
        p += adv;
        if (isspace((unsigned char)c) || (unsigned char)c < 0x20) {
            if (!space && o > 0 && o + 1 < dstsz) {
                dst[o++] = ' ';
                space = 1;
            }
            continue;
        }
        space = 0;
        if (o + 1 < dstsz)
            dst[o++] = c;
    }
    while (o > 0 && dst[o - 1] == ' ')
        o--;
    dst[o] = '\0';
    return p;
}

/* Decimal digits right after marker (spaces allowed between); 1 if found. */
static int digits_after(const char *html, size_t len, const char *marker, char *out, size_t outsz)
{
    const char *end = html + len;
    const char *p = html;

    while (p < end) {
        const char *m = ci_find(p, (size_t)(end - p), marker);
        size_t n = 0;
        if (!m)
            return 0;
        p = m + strlen(marker);
        while (p < end && *p == ' ')
            p++;
        while (p + n < end && isdigit((unsigned char)p[n]) && n + 1 < outsz && n < 19)
            n++;
        if (n > 0 && !(p + n < end && isdigit((unsigned char)p[n]))) {
            memcpy(out, p, n);
            out[n] = '\0';
            return 1;
        }
    }
    return 0;
}

/* First HRESULT-looking "0x8XXXXXXX" in s into code. */
static void find_hresult(const char *s, size_t len, char *code, size_t codesz)
{
    for (size_t i = 0; i + 10 <= len; i++) {
        if (s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X') && s[i + 2] == '8') {
            size_t n = 3;
            while (n < 10 && isxdigit((unsigned char)s[i + n]))
                n++;
            if (n == 10 && !(i + 10 < len && isxdigit((unsigned char)s[i + 10]))) {
                snprintf(code, codesz, "0x%.8s", s + i + 2);
                for (char *c = code + 2; *c; c++)
                    *c = (char)tolower((unsigned char)*c);
                return;
            }
        }
    }
}

static void page_title(const char *html, size_t len, struct clc_adcs_disp *d)
{
    const char *end = html + len;
    const char *t = ci_find(html, len, "<title");
    const char *gt = NULL;

    d->title[0] = '\0';
    if (!t)
        return;
    gt = memchr(t, '>', (size_t)(end - t));
    if (gt)
        copy_text(gt + 1, end, "<", d->title, sizeof d->title);
}

/* The quoted disposition message of a denied page: `... is "<msg>".`, with
 * literal or entity quotes. */
static void denied_message(const char *html, size_t len, struct clc_adcs_disp *d)
{
    const char *end = html + len;
    const char *m = ci_find(html, len, "disposition message is");
    const char *p = NULL;

    if (!m)
        return;
    p = m + strlen("disposition message is");
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p < end && *p == '"') {
        p++;
    } else if ((size_t)(end - p) >= 6 && strncasecmp(p, "&quot;", 6) == 0) {
        p += 6;
    }
    /* Up to the closing quote, whichever form it takes. */
    const char *q = p;
    while (q < end && *q != '"' && *q != '<' &&
           !((size_t)(end - q) >= 6 && strncasecmp(q, "&quot;", 6) == 0))
        q++;
    d->message[0] = '\0';
    copy_text(p, q, "", d->message, sizeof d->message);
}

/* The value after a definition-list label ("Disposition message:"): tags and
 * whitespace (real AD CS puts "\r\n\t\t" there) skipped, then up to the end
 * of the line or the next tag. */
static int label_value(const char *html, size_t len, const char *label, char *out, size_t outsz)
{
    const char *end = html + len;
    const char *m = ci_find(html, len, label);
    const char *p = NULL;

    out[0] = '\0';
    if (!m)
        return 0;
    p = m + strlen(label);
    for (;;) {
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p < end && *p == '<') {
            const char *gt = memchr(p, '>', (size_t)(end - p));
            if (!gt)
                return 0;
            p = gt + 1;
            continue;
        }
        break;
    }
    copy_text(p, end, "\r\n<", out, outsz);
    return out[0] != '\0';
}

void clc_adcs_parse_submit_page(const char *html, size_t len, struct clc_adcs_disp *d)
{
    memset(d, 0, sizeof *d);
    if (!html)
        return;
    page_title(html, len, d);
    digits_after(html, len, "Your Request Id is", d->request_id, sizeof d->request_id);

    /* Denied first: a denied page has no certificate link, but its message can
     * mention anything. */
    if (ci_find(html, len, "Certificate Request Denied") ||
        ci_find(html, len, "request was denied")) {
        d->page = CLC_ADCS_PAGE_DENIED;
        denied_message(html, len, d);
        find_hresult(d->message, strlen(d->message), d->code, sizeof d->code);
        if (!d->code[0])
            find_hresult(html, len, d->code, sizeof d->code);
        return;
    }
    /* Issued: the link to the certificate carries the request id (entity or
     * script form). */
    if (digits_after(html, len, "certnew.cer?ReqID=", d->request_id, sizeof d->request_id) ||
        digits_after(html, len, "certnew.p7b?ReqID=", d->request_id, sizeof d->request_id)) {
        d->page = CLC_ADCS_PAGE_ISSUED;
        return;
    }
    if (ci_find(html, len, "Certificate Pending") ||
        ci_find(html, len, "wait for an administrator") ||
        ci_find(html, len, "taken under submission")) {
        /* Without an id there is nothing to poll: the page is not usable. */
        d->page = d->request_id[0] ? CLC_ADCS_PAGE_PENDING : CLC_ADCS_PAGE_UNKNOWN;
        return;
    }
    if (ci_find(html, len, "Error Parsing Request") || ci_find(html, len, "Certificate Services")) {
        const char *e = ci_find(html, len, "Error Parsing Request");
        d->page = CLC_ADCS_PAGE_ERROR;
        if (e)
            copy_text(e, html + len, "<\r\n", d->message, sizeof d->message);
        else if (!label_value(html, len, "LastStatus:", d->message, sizeof d->message))
            snprintf(d->message, sizeof d->message, "%s", d->title);
        find_hresult(html, len, d->code, sizeof d->code);
        if (!e && !d->message[0] && !d->code[0])
            d->page = CLC_ADCS_PAGE_UNKNOWN;
        return;
    }
    d->page = CLC_ADCS_PAGE_UNKNOWN;
}

void clc_adcs_parse_status_page(const char *html, size_t len, struct clc_adcs_disp *d)
{
    char disp[32];
    char last[CLC_CA_REASON_MAX];
    long num = -1;

    memset(d, 0, sizeof *d);
    if (!html)
        return;
    page_title(html, len, d);
    if (ci_find(html, len, "requested property value is empty")) {
        d->page = CLC_ADCS_PAGE_NOT_FOUND;
        snprintf(d->message, sizeof d->message, "%s", "The requested property value is empty");
        find_hresult(html, len, d->code, sizeof d->code);
        return;
    }
    label_value(html, len, "Disposition message:", d->message, sizeof d->message);
    label_value(html, len, "LastStatus:", last, sizeof last);
    if (label_value(html, len, "Disposition:", disp, sizeof disp) &&
        isdigit((unsigned char)disp[0]))
        num = strtol(disp, NULL, 10);
    find_hresult(last, strlen(last), d->code, sizeof d->code);
    if (!d->code[0])
        find_hresult(html, len, d->code, sizeof d->code);
    if (ci_find(d->message, strlen(d->message), "Taken Under Submission") || num == 5) {
        d->page = CLC_ADCS_PAGE_PENDING;
        return;
    }
    if (strncasecmp(d->message, "Denied by", 9) == 0 || num == 2 ||
        strcmp(d->code, "0x80094014") == 0) {
        d->page = CLC_ADCS_PAGE_DENIED;
        if (!d->message[0])
            snprintf(d->message, sizeof d->message, "%s", last);
        return;
    }
    if (d->message[0] || last[0]) {
        d->page = CLC_ADCS_PAGE_ERROR;
        if (!d->message[0])
            snprintf(d->message, sizeof d->message, "%s", last);
        return;
    }
    d->page = CLC_ADCS_PAGE_UNKNOWN;
}
