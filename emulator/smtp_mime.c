/* Reading a stored message as a mail reader would: headers unfolded, RFC
 * 2047 encoded-words decoded, MIME parts walked (bounded depth and count)
 * and the text/plain and text/html bodies decoded from base64 or
 * quoted-printable, for the mailbox API's JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "emulator/smtp_int.h"

#define MAX_HEADERS 100
#define HEADER_VALUE_MAX (8 * 1024)
#define MAX_DEPTH 4
#define MAX_PARTS 32
#define BOUNDARY_MAX 200

struct hdr {
    char name[80];
    char *value; /* unfolded */
};

struct hdrs {
    struct hdr h[MAX_HEADERS];
    size_t n;
};

static void hdrs_free(struct hdrs *h)
{
    for (size_t i = 0; i < h->n; i++)
        free(h->h[i].value);
    h->n = 0;
}

/* Parses the header block at p; returns the offset of the body (after the
 * empty line, or n when there is none). */
static size_t parse_headers(const char *p, size_t n, struct hdrs *h)
{
    size_t i = 0;

    h->n = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n, next = nl ? end + 1 : n;
        size_t len = end - i;
        if (len > 0 && p[end - 1] == '\r')
            len--;
        if (len == 0)
            return next;
        if ((p[i] == ' ' || p[i] == '\t') && h->n > 0) {
            /* A folded line continues the previous value. */
            struct hdr *last = &h->h[h->n - 1];
            size_t old = strlen(last->value);
            if (old + len < HEADER_VALUE_MAX) {
                char *v = realloc(last->value, old + len + 1);
                if (v != NULL) {
                    memcpy(v + old, p + i, len);
                    v[old + len] = '\0';
                    last->value = v;
                }
            }
        } else {
            const char *colon = memchr(p + i, ':', len);
            size_t nlen = colon ? (size_t)(colon - (p + i)) : 0;
            if (colon != NULL && nlen > 0 && nlen < sizeof h->h[0].name && h->n < MAX_HEADERS) {
                struct hdr *x = &h->h[h->n];
                const char *v = colon + 1;
                size_t vlen = len - nlen - 1;
                while (vlen > 0 && (*v == ' ' || *v == '\t'))
                    v++, vlen--;
                if (vlen >= HEADER_VALUE_MAX)
                    vlen = HEADER_VALUE_MAX - 1;
                memcpy(x->name, p + i, nlen);
                x->name[nlen] = '\0';
                x->value = strndup(v, vlen);
                if (x->value != NULL)
                    h->n++;
            }
        }
        i = next;
    }
    return n;
}

static const char *hdr_get(const struct hdrs *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcasecmp(h->h[i].name, name) == 0)
            return h->h[i].value;
    return NULL;
}

/* A Content-Type parameter (token or quoted-string), copied to out. */
static int ct_param(const char *ct, const char *name, char *out, size_t max)
{
    size_t nl = strlen(name);
    const char *p = strchr(ct, ';');

    while (p != NULL) {
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t n;
            if (*v == '"') {
                const char *q = strchr(v + 1, '"');
                if (q == NULL)
                    return 0;
                v++;
                n = (size_t)(q - v);
            } else {
                n = strcspn(v, "; \t");
            }
            if (n == 0 || n >= max)
                return 0;
            memcpy(out, v, n);
            out[n] = '\0';
            return 1;
        }
        p = strchr(p, ';');
    }
    return 0;
}

static void ct_type(const char *ct, char *out, size_t max)
{
    size_t n = ct ? strcspn(ct, "; \t") : 0;

    if (n == 0 || n >= max) {
        snprintf(out, max, "text/plain"); /* RFC 2045 §5.2 default */
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(ct[i] >= 'A' && ct[i] <= 'Z' ? ct[i] + 32 : ct[i]);
    out[n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static enum clc_err qp_decode(const char *p, size_t n, int header_q, struct clc_buf *out)
{
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        if (p[i] == '=' && i + 1 < n && (p[i + 1] == '\r' || p[i + 1] == '\n')) {
            i += (p[i + 1] == '\r' && i + 2 < n && p[i + 2] == '\n') ? 2 : 1; /* soft break */
        } else if (p[i] == '=' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            rc = clc_buf_append_byte(out, (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2])));
            i += 2;
        } else {
            rc = clc_buf_append_byte(out, header_q && p[i] == '_' ? ' ' : p[i]);
        }
    }
    return rc;
}

/* Body bytes decoded by Content-Transfer-Encoding, CR LF turned into LF. */
static char *decode_body(const char *cte, const char *p, size_t n, size_t max)
{
    struct clc_buf raw, out;
    unsigned char *bin = NULL;
    size_t binlen = 0;
    const char *src = p;
    char *res = NULL;

    clc_buf_init(&raw, max);
    clc_buf_init(&out, max);
    if (cte != NULL && strncasecmp(cte, "base64", 6) == 0) {
        if (clc_b64_decode(p, n, &bin, &binlen) != CLC_OK)
            goto out;
        src = (const char *)bin;
        n = binlen;
    } else if (cte != NULL && strncasecmp(cte, "quoted-printable", 16) == 0) {
        if (qp_decode(p, n, 0, &raw) != CLC_OK)
            goto out;
        src = clc_buf_str(&raw);
        n = raw.len;
    }
    for (size_t i = 0; i < n; i++)
        if (!(src[i] == '\r' && i + 1 < n && src[i + 1] == '\n') &&
            clc_buf_append_byte(&out, src[i]) != CLC_OK)
            goto out;
    res = clc_buf_take(&out, NULL);
out:
    free(bin);
    clc_buf_cleanup(&raw);
    clc_buf_cleanup(&out);
    return res;
}

char *smtp_mime_decode_words(const char *v, size_t n)
{
    struct clc_buf out;
    size_t i = 0, pending_ws = 0, ws_start = 0;
    int last_was_word = 0;

    clc_buf_init(&out, HEADER_VALUE_MAX * 2);
    while (i < n) {
        const char *q1, *q2, *end;
        if (v[i] == '=' && i + 1 < n && v[i + 1] == '?' &&
            (q1 = memchr(v + i + 2, '?', n - i - 2)) != NULL && q1 + 2 < v + n && q1[2] == '?' &&
            (end = strstr(q1 + 3, "?=")) != NULL && end < v + n) {
            char enc = q1[1];
            struct clc_buf dec;
            int ok;
            clc_buf_init(&dec, HEADER_VALUE_MAX);
            q2 = q1 + 3;
            if (enc == 'B' || enc == 'b') {
                unsigned char *b = NULL;
                size_t bl = 0;
                ok = clc_b64_decode(q2, (size_t)(end - q2), &b, &bl) == CLC_OK &&
                     clc_buf_append(&dec, b, bl) == CLC_OK;
                free(b);
            } else if (enc == 'Q' || enc == 'q') {
                ok = qp_decode(q2, (size_t)(end - q2), 1, &dec) == CLC_OK;
            } else {
                ok = 0;
            }
            if (ok) {
                /* Whitespace between two encoded-words is not part of the text. */
                if (!last_was_word && pending_ws > 0)
                    clc_buf_append(&out, v + ws_start, pending_ws);
                clc_buf_append(&out, dec.data ? dec.data : "", dec.len);
                pending_ws = 0;
                last_was_word = 1;
                i = (size_t)(end - v) + 2;
                clc_buf_cleanup(&dec);
                continue;
            }
            clc_buf_cleanup(&dec);
        }
        if (v[i] == ' ' || v[i] == '\t') {
            if (pending_ws == 0)
                ws_start = i;
            pending_ws++;
            i++;
            continue;
        }
        if (pending_ws > 0)
            clc_buf_append(&out, v + ws_start, pending_ws);
        pending_ws = 0;
        last_was_word = 0;
        clc_buf_append_byte(&out, v[i]);
        i++;
    }
    if (pending_ws > 0 && !last_was_word)
        clc_buf_append(&out, v + ws_start, pending_ws);
    return clc_buf_take(&out, NULL);
}

/* ---- MIME walk ---- */

struct walk {
    char *text;
    char *html;
    cJSON *parts;
    size_t nparts;
    size_t max;
};

static const char *find_delim(const char *start, const char *p, const char *end, const char *b,
                              size_t bl)
{
    while (p != NULL && p + 2 + bl <= end) {
        if ((p == start || p[-1] == '\n') && p[0] == '-' && p[1] == '-' &&
            memcmp(p + 2, b, bl) == 0)
            return p;
        p = memchr(p, '\n', (size_t)(end - p));
        if (p != NULL)
            p++;
    }
    return NULL;
}

static void walk_part(struct walk *w, const char *p, size_t n, int depth);

static void walk_multipart(struct walk *w, const char *body, size_t n, const char *b, int depth)
{
    const char *end = body + n, *d, *next;
    size_t bl = strlen(b);

    d = find_delim(body, body, end, b, bl);
    while (d != NULL && w->nparts < MAX_PARTS) {
        const char *after = d + 2 + bl, *start, *stop;
        if (after + 1 < end && after[0] == '-' && after[1] == '-')
            return; /* the close delimiter */
        start = memchr(after, '\n', (size_t)(end - after));
        if (start == NULL)
            return;
        start++;
        next = find_delim(body, start, end, b, bl);
        stop = next ? next : end;
        /* The CR LF before a delimiter belongs to the delimiter. */
        if (stop > start && stop[-1] == '\n')
            stop--;
        if (stop > start && stop[-1] == '\r')
            stop--;
        walk_part(w, start, (size_t)(stop - start), depth + 1);
        d = next;
    }
}

static void walk_part(struct walk *w, const char *p, size_t n, int depth)
{
    struct hdrs h;
    size_t off;
    const char *ct, *cte;
    char type[64], boundary[BOUNDARY_MAX];
    cJSON *info;

    if (depth > MAX_DEPTH || w->nparts >= MAX_PARTS)
        return;
    off = parse_headers(p, n, &h);
    ct = hdr_get(&h, "Content-Type");
    cte = hdr_get(&h, "Content-Transfer-Encoding");
    ct_type(ct, type, sizeof type);
    if (strncmp(type, "multipart/", 10) == 0 &&
        ct_param(ct, "boundary", boundary, sizeof boundary)) {
        walk_multipart(w, p + off, n - off, boundary, depth);
        hdrs_free(&h);
        return;
    }
    w->nparts++;
    info = cJSON_CreateObject();
    if (info != NULL) {
        clc_json_add_str(info, "content_type", type);
        clc_json_add_str(info, "transfer_encoding", cte ? cte : "7bit");
        clc_json_add_int(info, "bytes", (int64_t)(n - off));
        cJSON_AddItemToArray(w->parts, info);
    }
    if (strcmp(type, "text/plain") == 0 && w->text == NULL)
        w->text = decode_body(cte, p + off, n - off, w->max);
    else if (strcmp(type, "text/html") == 0 && w->html == NULL)
        w->html = decode_body(cte, p + off, n - off, w->max);
    hdrs_free(&h);
}

/* ---- JSON ---- */

static enum clc_err add_decoded(cJSON *o, const char *key, const char *v)
{
    char *d = v ? smtp_mime_decode_words(v, strlen(v)) : NULL;
    enum clc_err rc = clc_json_add_str(o, key, d ? d : "");

    free(d);
    return rc;
}

static cJSON *summary_of(const struct smtp_msg *m, const struct hdrs *h)
{
    cJSON *o = cJSON_CreateObject(), *to = cJSON_CreateArray();
    char when[CLC_TIME_STR_MAX] = "", id[24];
    int ok = o != NULL && to != NULL;

    clc_time_fmt_iso8601(m->received, when);
    for (size_t i = 0; ok && i < m->nrcpt; i++)
        ok = cJSON_AddItemToArray(to, cJSON_CreateString(m->rcpt[i]));
    snprintf(id, sizeof id, "%llu", (unsigned long long)m->id);
    ok = ok && clc_json_add_str(o, "id", id) == CLC_OK;
    ok = ok && clc_json_add_str(o, "received", when) == CLC_OK &&
         clc_json_add_str(o, "envelope_from", m->mail_from) == CLC_OK &&
         cJSON_AddItemToObject(o, "to", to);
    if (ok)
        to = NULL;
    ok = ok && add_decoded(o, "from", hdr_get(h, "From")) == CLC_OK &&
         add_decoded(o, "subject", hdr_get(h, "Subject")) == CLC_OK &&
         clc_json_add_int(o, "size", (int64_t)m->len) == CLC_OK &&
         clc_json_add_bool(o, "tls", m->tls) == CLC_OK &&
         clc_json_add_str(o, "auth_user", m->auth_user) == CLC_OK &&
         clc_json_add_str(o, "auth_mechanism", m->auth_mech) == CLC_OK;
    cJSON_Delete(to);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *smtp_msg_summary(const struct smtp_msg *m)
{
    struct hdrs h;
    cJSON *o;

    parse_headers(m->data, m->len, &h);
    o = summary_of(m, &h);
    hdrs_free(&h);
    return o;
}

cJSON *smtp_msg_detail(const struct smtp_msg *m)
{
    struct hdrs h;
    struct walk w = {.max = m->len + 1};
    cJSON *o, *hs = cJSON_CreateArray();
    int ok;

    w.parts = cJSON_CreateArray();
    parse_headers(m->data, m->len, &h);
    o = summary_of(m, &h);
    ok = o != NULL && hs != NULL && w.parts != NULL;
    for (size_t i = 0; ok && i < h.n; i++) {
        cJSON *x = cJSON_CreateObject();
        ok = x != NULL && clc_json_add_str(x, "name", h.h[i].name) == CLC_OK &&
             clc_json_add_str(x, "value", h.h[i].value) == CLC_OK && cJSON_AddItemToArray(hs, x);
        if (!ok)
            cJSON_Delete(x);
    }
    if (ok)
        walk_part(&w, m->data, m->len, 0);
    ok = ok &&
         clc_json_add_str(o, "date", hdr_get(&h, "Date") ? hdr_get(&h, "Date") : "") == CLC_OK &&
         clc_json_add_str(o, "message_id",
                          hdr_get(&h, "Message-ID") ? hdr_get(&h, "Message-ID") : "") == CLC_OK &&
         add_decoded(o, "to_header", hdr_get(&h, "To")) == CLC_OK &&
         clc_json_add_str(o, "text", w.text ? w.text : "") == CLC_OK &&
         clc_json_add_str(o, "html", w.html ? w.html : "") == CLC_OK &&
         cJSON_AddItemToObject(o, "headers", hs);
    if (ok)
        hs = NULL;
    ok = ok && cJSON_AddItemToObject(o, "parts", w.parts);
    if (ok)
        w.parts = NULL;
    cJSON_Delete(hs);
    cJSON_Delete(w.parts);
    free(w.text);
    free(w.html);
    hdrs_free(&h);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
