/* E-mail addresses for notifications: a conservative addr-spec check, the
 * Recipient tag split into valid, unique addresses (everything else logged
 * and dropped), and the configured From parsed into name and address. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "pipeline/notify_int.h"

#define LOCAL_MAX 64
#define DOMAIN_MAX 253
#define LABEL_MAX 63
/* How much of a refused entry the log shows (escaped by the logger). */
#define LOG_SNIPPET 80
#define DISPLAY_MAX 128

static int is_atext(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

static const char *local_problem(const char *s, size_t n)
{
    if (n == 0)
        return "empty local part";
    if (n > LOCAL_MAX)
        return "local part over 64 bytes";
    if (s[0] == '.' || s[n - 1] == '.')
        return "local part starts or ends with a dot";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (s[i + 1] == '.')
                return "two dots in a row";
        } else if (!is_atext(c)) {
            return "character not allowed in the local part";
        }
    }
    return NULL;
}

static const char *domain_problem(const char *s, size_t n)
{
    size_t label = 0, labels = 0;

    if (n == 0)
        return "empty domain";
    if (n > DOMAIN_MAX)
        return "domain over 253 bytes";
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (label == 0)
                return "empty domain label";
            if (s[i - 1] == '-' || s[i - label] == '-')
                return "domain label starts or ends with '-'";
            labels++;
            label = 0;
            continue;
        }
        if (!is_ldh((unsigned char)s[i]))
            return "character not allowed in the domain";
        if (++label > LABEL_MAX)
            return "domain label over 63 bytes";
    }
    /* A dotless domain cannot be delivered on the public Internet; such a
     * value is far more likely a typo than an intranet host. */
    return labels < 2 ? "domain has no dot" : NULL;
}

const char *clc_notify_addr_problem(const char *s, size_t n)
{
    const char *at = NULL, *why;

    if (s == NULL || n == 0)
        return "empty";
    /* Control characters first: they are the injection risk, and the reason
     * the log should show. */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r' || c == '\n')
            return "contains CR or LF";
        if (c < 0x20 || c == 0x7f)
            return "contains a control character";
        if (c >= 0x80)
            return "contains a non-ASCII byte";
    }
    if (n > CLC_NOTIFY_ADDR_MAX)
        return "longer than 254 bytes";
    for (size_t i = 0; i < n; i++)
        if (s[i] == '@') {
            if (at != NULL)
                return "more than one '@'";
            at = s + i;
        }
    if (at == NULL)
        return "no '@'";
    why = local_problem(s, (size_t)(at - s));
    if (why == NULL)
        why = domain_problem(at + 1, n - (size_t)(at - s) - 1);
    return why;
}

static void log_refused(const char *entry, size_t n, const char *why)
{
    char snip[LOG_SNIPPET + 1];
    size_t k = n < LOG_SNIPPET ? n : LOG_SNIPPET;

    memcpy(snip, entry, k);
    snip[k] = '\0';
    /* The logger escapes control characters, so the entry cannot forge a
     * record; it is cut so a huge tag cannot flood the log. */
    clc_log(CLC_LOG_WARN, "notify.recipient_refused", CLC_LS("entry", snip), CLC_LS("reason", why),
            CLC_LI("length", (long long)n));
}

void clc_notify_recipients_free(char **list, size_t n)
{
    if (list == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static int already(char *const *list, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(list[i]) == len && strncasecmp(list[i], s, len) == 0)
            return 1;
    return 0;
}

enum clc_err clc_notify_parse_recipients(const char *tag, char ***out, size_t *n, size_t *rejected)
{
    char **list = NULL;
    size_t count = 0, bad = 0;
    const char *p = tag;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    *n = 0;
    if (rejected != NULL)
        *rejected = 0;
    if (tag == NULL)
        return CLC_OK;
    list = calloc(CLC_NOTIFY_MAX_RCPT, sizeof *list);
    if (list == NULL)
        return CLC_ERR_NOMEM;
    while (*p != '\0') {
        const char *start = p, *end;
        size_t len;
        const char *why;

        while (*p != '\0' && *p != ',' && *p != ';')
            p++;
        end = p;
        if (*p != '\0')
            p++;
        /* Only blanks are trimmed: a CR or LF stays inside the entry so the
         * check below refuses it instead of quietly repairing it. */
        while (start < end && (*start == ' ' || *start == '\t'))
            start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        len = (size_t)(end - start);
        if (len == 0)
            continue; /* "a@x.org;;b@y.org" or a trailing separator */
        why = clc_notify_addr_problem(start, len);
        if (why == NULL && already(list, count, start, len)) {
            clc_log(CLC_LOG_DEBUG, "notify.recipient_duplicate", CLC_LI("length", (long long)len));
            continue;
        }
        if (why == NULL && count == CLC_NOTIFY_MAX_RCPT)
            why = "more than 100 recipients";
        if (why != NULL) {
            log_refused(start, len, why);
            bad++;
            continue;
        }
        list[count] = strndup(start, len);
        if (list[count] == NULL) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        count++;
    }
out:
    if (rc != CLC_OK || count == 0) {
        clc_notify_recipients_free(list, count);
        list = NULL;
        if (rc != CLC_OK)
            count = 0;
    }
    *out = list;
    *n = count;
    if (rejected != NULL)
        *rejected = bad;
    return rc;
}

static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t'))
        (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t'))
        (*e)--;
}

/* The display name may be any UTF-8 text without control characters; the
 * composer quotes or encodes it. Surrounding double quotes are removed. */
static const char *display_problem(const char *s, size_t n)
{
    if (n > DISPLAY_MAX)
        return "display name over 128 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return "display name contains a control character";
        if (c == '<' || c == '>')
            return "display name contains '<' or '>'";
    }
    return NULL;
}

enum clc_err clc_notify_parse_from(const char *from, char **display, char **addr,
                                   struct clc_errinfo *ei)
{
    const char *lt, *gt, *ds, *de, *as, *ae, *why;

    *display = NULL;
    *addr = NULL;
    if (from == NULL || from[0] == '\0')
        return clc_errf(ei, CLC_ERR_INVALID, "the From address is empty");
    lt = strchr(from, '<');
    if (lt == NULL) {
        ds = de = from;
        as = from;
        ae = from + strlen(from);
    } else {
        gt = strchr(lt, '>');
        if (gt == NULL || gt[1 + strspn(gt + 1, " \t")] != '\0')
            return clc_errf(ei, CLC_ERR_INVALID,
                            "From: expected 'Name <address>' with nothing after '>'");
        ds = from;
        de = lt;
        as = lt + 1;
        ae = gt;
    }
    trim(&ds, &de);
    trim(&as, &ae);
    if (de - ds >= 2 && ds[0] == '"' && de[-1] == '"') {
        ds++;
        de--;
    }
    why = display_problem(ds, (size_t)(de - ds));
    if (why == NULL && memchr(ds, '"', (size_t)(de - ds)) != NULL)
        why = "display name contains '\"'";
    if (why != NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "From: %s", why);
    why = clc_notify_addr_problem(as, (size_t)(ae - as));
    if (why != NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "From address: %s", why);
    *display = strndup(ds, (size_t)(de - ds));
    *addr = strndup(as, (size_t)(ae - as));
    if (*display == NULL || *addr == NULL) {
        free(*display);
        free(*addr);
        *display = *addr = NULL;
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    return CLC_OK;
}
