/* The queue's XML: the one document it accepts, parsed strictly
 * (<QueueMessage><MessageText>text</MessageText></QueueMessage> with an
 * optional declaration, comments, entity and character references and CDATA,
 * UTF-8 checked), and the message and queue lists it answers with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "emulator/queue.h"

struct px {
    const char *p, *end;
    struct clc_errinfo *ei;
};

static int at(const struct px *x, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(x->end - x->p) >= n && memcmp(x->p, lit, n) == 0;
}

static void skip_misc(struct px *x)
{
    for (;;) {
        while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n'))
            x->p++;
        if (!at(x, "<!--"))
            return;
        const char *e = x->p + 4;
        while (e + 3 <= x->end && memcmp(e, "-->", 3) != 0)
            e++;
        if (e + 3 > x->end)
            return; /* unterminated: the element check below reports it */
        x->p = e + 3;
    }
}

/* Expects "<name>" (or "<name/>" when empty_ok, setting *empty). */
static int open_tag(struct px *x, const char *name, int *empty)
{
    size_t n = strlen(name);

    if (!at(x, "<") || (size_t)(x->end - x->p - 1) < n || memcmp(x->p + 1, name, n) != 0)
        return 0;
    x->p += 1 + n;
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n'))
        x->p++;
    if (at(x, "/>") && empty != NULL) {
        *empty = 1;
        x->p += 2;
        return 1;
    }
    if (!at(x, ">"))
        return 0;
    x->p++;
    return 1;
}

static int close_tag(struct px *x, const char *name)
{
    size_t n = strlen(name);

    if (!at(x, "</") || (size_t)(x->end - x->p - 2) < n || memcmp(x->p + 2, name, n) != 0)
        return 0;
    x->p += 2 + n;
    while (x->p < x->end && (*x->p == ' ' || *x->p == '\t' || *x->p == '\r' || *x->p == '\n'))
        x->p++;
    if (!at(x, ">"))
        return 0;
    x->p++;
    return 1;
}

static enum clc_err put_utf8(struct clc_buf *b, unsigned long cp)
{
    char u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return clc_buf_append(b, u, n);
}

/* XML 1.0 Char production. */
static int xml_char_ok(unsigned long cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

/* Decodes one UTF-8 sequence at s (n bytes available); its length, 0 if bad. */
static size_t utf8_next(const unsigned char *s, size_t n, unsigned long *cp)
{
    size_t len;
    unsigned long min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return *cp < min ? 0 : len;
}

static enum clc_err fail(struct px *x, const char *reason)
{
    return clc_errf(x->ei, CLC_ERR_PARSE, "%s", reason);
}

static enum clc_err entity(struct px *x, struct clc_buf *b)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    unsigned long cp = 0;
    const char *p = x->p + 1;

    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t n = strlen(named[i].name);
        if ((size_t)(x->end - p) >= n && memcmp(p, named[i].name, n) == 0) {
            x->p = p + n;
            return clc_buf_append_byte(b, named[i].c);
        }
    }
    if (p >= x->end || *p != '#')
        return fail(x, "unknown entity reference");
    p++;
    int hex = p < x->end && *p == 'x';
    const char *digits = p += hex;
    while (p < x->end && cp <= 0x10FFFF &&
           ((*p >= '0' && *p <= '9') ||
            (hex && ((*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F'))))) {
        int d = *p <= '9' ? *p - '0' : (*p | 0x20) - 'a' + 10;
        cp = cp * (hex ? 16 : 10) + (unsigned long)d;
        p++;
    }
    if (p == digits || p >= x->end || *p != ';' || !xml_char_ok(cp))
        return fail(x, "invalid character reference");
    x->p = p + 1;
    return put_utf8(b, cp);
}

static enum clc_err text_content(struct px *x, struct clc_buf *b)
{
    enum clc_err rc = CLC_OK;

    while (rc == CLC_OK && x->p < x->end && !at(x, "</")) {
        unsigned long cp;
        size_t n;

        if (at(x, "<![CDATA[")) {
            const char *s = x->p + 9, *e = s;
            while (e + 3 <= x->end && memcmp(e, "]]>", 3) != 0)
                e++;
            if (e + 3 > x->end)
                return fail(x, "unterminated CDATA section");
            for (const char *c = s; c < e; c += n) {
                n = utf8_next((const unsigned char *)c, (size_t)(e - c), &cp);
                if (n == 0 || !xml_char_ok(cp))
                    return fail(x, "invalid character in CDATA");
            }
            rc = clc_buf_append(b, s, (size_t)(e - s));
            x->p = e + 3;
            continue;
        }
        /* Plain ASCII goes over in runs: most messages are base64 or JSON. */
        const char *run = x->p;
        while (run < x->end && (unsigned char)*run < 0x80 &&
               ((unsigned char)*run >= 0x20 || *run == '\t' || *run == '\n' || *run == '\r') &&
               *run != '<' && *run != '&')
            run++;
        if (run > x->p) {
            rc = clc_buf_append(b, x->p, (size_t)(run - x->p));
            x->p = run;
            continue;
        }
        if (*x->p == '<')
            return fail(x, "unexpected element inside MessageText");
        if (*x->p == '&') {
            rc = entity(x, b);
            continue;
        }
        n = utf8_next((const unsigned char *)x->p, (size_t)(x->end - x->p), &cp);
        if (n == 0 || !xml_char_ok(cp))
            return fail(x, "invalid character (not UTF-8 or not allowed in XML)");
        rc = clc_buf_append(b, x->p, n);
        x->p += n;
    }
    return rc;
}

enum clc_err emu_queue_parse_message(const char *body, size_t len, char **text, size_t *text_len,
                                     struct clc_errinfo *ei)
{
    struct px x = {body, body + len, ei};
    struct clc_buf b;
    enum clc_err rc;
    int empty = 0;

    *text = NULL;
    *text_len = 0;
    /* The text may be 64 KiB; escaping can make the document bigger, and
     * the caller compares the unescaped size with the limit itself. */
    clc_buf_init(&b, len + 1);
    /* The text is never longer than the document it came in. */
    if (clc_buf_reserve(&b, len) != CLC_OK)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (at(&x, "\xEF\xBB\xBF"))
        x.p += 3;
    if (at(&x, "<?xml")) {
        const char *e = strstr(x.p, "?>");
        if (e == NULL || e >= x.end) {
            rc = fail(&x, "unterminated XML declaration");
            goto out;
        }
        x.p = e + 2;
    }
    skip_misc(&x);
    if (x.p == x.end) {
        rc = fail(&x, "the request body is empty");
        goto out;
    }
    if (!open_tag(&x, "QueueMessage", NULL)) {
        rc = fail(&x, "the root element must be <QueueMessage>");
        goto out;
    }
    skip_misc(&x);
    if (!open_tag(&x, "MessageText", &empty)) {
        rc = fail(&x, "<QueueMessage> must hold one <MessageText> element");
        goto out;
    }
    if (!empty) {
        rc = text_content(&x, &b);
        if (rc != CLC_OK)
            goto out;
        if (!close_tag(&x, "MessageText")) {
            rc = fail(&x, "<MessageText> is not closed");
            goto out;
        }
    }
    skip_misc(&x);
    if (!close_tag(&x, "QueueMessage")) {
        rc = fail(&x, "<QueueMessage> is not closed or holds more than <MessageText>");
        goto out;
    }
    skip_misc(&x);
    if (x.p != x.end) {
        rc = fail(&x, "content after the root element");
        goto out;
    }
    *text = clc_buf_take(&b, text_len);
    rc = *text ? CLC_OK : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
out:
    clc_buf_cleanup(&b);
    return rc;
}

/* ---- documents the queue writes ---- */

/* v in decimal. */
static void decimal(int64_t v, char out[24])
{
    char tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    if (v < 0)
        out[k++] = '-';
    while (n > 0)
        out[k++] = tmp[--n];
    out[k] = '\0';
}

/* Appends each string of a NULL-terminated list. */
static enum clc_err cat(struct clc_buf *b, const char *const *parts)
{
    enum clc_err rc = CLC_OK;

    for (; *parts != NULL && rc == CLC_OK; parts++)
        rc = clc_buf_append_str(b, *parts);
    return rc;
}

enum clc_err emu_queue_msg_xml(struct clc_buf *b, const struct emu_qmsg *m, int with_receipt,
                               int with_count, int with_text)
{
    char ins[40], exp[40], vis[40], count[24];
    enum clc_err rc;

    /* Plain copies, no printf: this runs for every message put and got. */
    emu_storage_time(m->inserted, ins);
    emu_storage_time(m->expires, exp);
    rc = cat(b, (const char *const[]){
                    "<QueueMessage><MessageId>", m->id, "</MessageId><InsertionTime>", ins,
                    "</InsertionTime><ExpirationTime>", exp, "</ExpirationTime>", NULL});
    if (rc == CLC_OK && with_receipt) {
        emu_storage_time(m->visible_at, vis);
        rc = cat(b, (const char *const[]){"<PopReceipt>", m->pop, "</PopReceipt><TimeNextVisible>",
                                          vis, "</TimeNextVisible>", NULL});
    }
    if (rc == CLC_OK && with_count) {
        decimal(m->dequeue_count, count);
        rc = cat(b, (const char *const[]){"<DequeueCount>", count, "</DequeueCount>", NULL});
    }
    if (rc == CLC_OK && with_text) {
        rc = clc_buf_append_str(b, "<MessageText>");
        if (rc == CLC_OK)
            rc = emu_storage_xml_escape(b, m->text, m->len);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(b, "</MessageText>");
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "</QueueMessage>");
    return rc;
}

static enum clc_err elem(struct clc_buf *b, const char *name, const char *value)
{
    enum clc_err rc = clc_buf_appendf(b, "<%s>", name);
    if (rc == CLC_OK)
        rc = emu_storage_xml_escape(b, value, strlen(value));
    if (rc == CLC_OK)
        rc = clc_buf_appendf(b, "</%s>", name);
    return rc;
}

enum clc_err emu_queue_list_xml(struct emu_queue_store *s, const char *account, const char *host,
                                const char *prefix, const char *marker, long long maxresults,
                                int with_meta, struct clc_buf *b)
{
    long long max = maxresults > 0 ? maxresults : 5000, k = 0;
    size_t al = strlen(account);
    const char *mname = marker, *next = NULL;
    enum clc_err rc;

    /* Markers are "/{account}/{queue}" as Azure's; a bare name works too. */
    if (marker != NULL && marker[0] == '/' && strncmp(marker + 1, account, al) == 0 &&
        marker[al + 1] == '/')
        mname = marker + al + 2;
    rc = clc_buf_append_str(b, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                               "<EnumerationResults ServiceEndpoint=\"https://");
    if (rc == CLC_OK)
        rc = emu_storage_xml_escape(b, host, strlen(host));
    if (rc == CLC_OK)
        rc = clc_buf_appendf(b, "/%s/\">", account);
    if (rc == CLC_OK && prefix != NULL)
        rc = elem(b, "Prefix", prefix);
    if (rc == CLC_OK && marker != NULL)
        rc = elem(b, "Marker", marker);
    if (rc == CLC_OK && maxresults > 0)
        rc = clc_buf_appendf(b, "<MaxResults>%lld</MaxResults>", maxresults);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "<Queues>");
    for (struct emu_queue *q = s->queues; q != NULL && rc == CLC_OK; q = q->next) {
        if (strcmp(q->account, account) != 0 ||
            (prefix != NULL && strncmp(q->name, prefix, strlen(prefix)) != 0) ||
            (mname != NULL && strcmp(q->name, mname) < 0))
            continue;
        if (k++ == max) {
            next = q->name;
            break;
        }
        rc = clc_buf_appendf(b, "<Queue><Name>%s</Name>", q->name);
        if (rc == CLC_OK && with_meta) {
            rc = clc_buf_append_str(b, "<Metadata>");
            for (size_t i = 0; i < q->meta.n && rc == CLC_OK; i++)
                rc = elem(b, q->meta.name[i], q->meta.value[i]);
            if (rc == CLC_OK)
                rc = clc_buf_append_str(b, "</Metadata>");
        }
        if (rc == CLC_OK)
            rc = clc_buf_append_str(b, "</Queue>");
    }
    if (rc == CLC_OK && next != NULL)
        rc = clc_buf_appendf(b, "</Queues><NextMarker>/%s/%s</NextMarker>", account, next);
    else if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "</Queues><NextMarker />");
    if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "</EnumerationResults>");
    return rc;
}
