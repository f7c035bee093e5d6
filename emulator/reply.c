/* Replies of the emulator's HTTP layer: the head with Azure's common
 * headers (Date, x-ms-request-id, the echoed x-ms-client-request-id) built
 * in one allocation with a small body alongside, JSON and Azure error
 * bodies, dropped requests, and the access log. */
#include <civetweb.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/emu_internal.h"
#include "emulator/request.h"
#include "emulator/state.h"

#define HEAD_MAX 16384
/* Bodies up to this size go out in the same write as the head: one send
 * (one TCP segment, one wake-up of the client) instead of two. */
#define INLINE_BODY_MAX ((size_t)64 * 1024)
#define CLIENT_REQ_ID_MAX 256
/* Each extra header line needs at least "a:" and CRLF, so no more than
 * this many fit in HEAD_MAX. */
#define MAX_EXTRA_HEADERS (HEAD_MAX / 4)

static int header_line_ok(const char *h)
{
    const char *colon = strchr(h, ':');

    if (colon == NULL || colon == h || strlen(h) > 8192)
        return 0;
    for (const char *p = h; *p; p++)
        if (*p == '\r' || *p == '\n')
            return 0;
    return 1;
}

/* Written before the reply's first byte, so that a client that has its
 * answer can rely on the line being there. */
static void access_log(const struct emu_req_priv *pr, int status)
{
    const struct emu_req *r = &pr->pub;

    if (pr->l->emu->quiet)
        return;
    clc_log(CLC_LOG_INFO, "emu.access", CLC_LS("service", pr->l->key),
            CLC_LS("request_id", r->request_id), CLC_LS("method", r->method),
            CLC_LS("path", pr->raw_path ? pr->raw_path : "-"), CLC_LI("status", status),
            CLC_LI("duration_ms", clc_mono_ms() - pr->t0));
}

void emu_req_add_reply_header(struct emu_req *r, const char *line)
{
    struct emu_req_priv *pr = emu_priv(r);

    if (pr->ncore_headers < EMU_MAX_CORE_HEADERS && header_line_ok(line))
        snprintf(pr->core_headers[pr->ncore_headers++], EMU_CORE_HEADER_MAX, "%s", line);
}

void emu_req_drop(struct emu_req *r)
{
    struct emu_req_priv *pr = emu_priv(r);

    /* Nothing is written; civetweb closes the connection when the handler
     * returns instead of waiting for another request on it. */
    if (pr->dropped || r->status != 0)
        return;
    mg_disable_keep_alive(pr->conn);
    pr->dropped = 1;
    access_log(pr, 0);
}

static int client_req_id_ok(const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n > CLIENT_REQ_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
            return 0;
    return 1;
}

/* The Date header's value: formatting is cached per thread for the second
 * it was made in (the emulator clock can move either way; any other second
 * formats anew). */
static const char *reply_date(const struct emu *e)
{
    static _Thread_local int64_t cached_t;
    static _Thread_local char cached[CLC_TIME_STR_MAX];
    int64_t t = emu_now(e);

    if (cached[0] == '\0' || t != cached_t) {
        if (clc_time_fmt_rfc1123(t, cached) != CLC_OK)
            snprintf(cached, sizeof cached, "Thu, 01 Jan 1970 00:00:00 GMT");
        cached_t = t;
    }
    return cached;
}

/* What a reply's head is made of. */
struct head {
    int status;
    const char *reason, *date, *request_id, *crid, *content_type;
    size_t len;
    int close;
    char (*core)[EMU_CORE_HEADER_MAX];
    size_t ncore;
    const char *const *extra;
    const unsigned char *extra_ok; /* per extra header: passes header_line_ok */
};

/* Copies s[0..n) to out + at unless out is NULL (measuring); the new end. */
static size_t put(char *out, size_t at, const char *s, size_t n)
{
    if (out != NULL)
        memcpy(out + at, s, n);
    return at + n;
}

static size_t put_line(char *out, size_t at, const char *name, const char *value)
{
    at = put(out, at, name, strlen(name));
    at = put(out, at, value, strlen(value));
    return put(out, at, "\r\n", 2);
}

/* Writes the head to out, or only measures it when out is NULL: two passes
 * of plain copies instead of a printf and a growing buffer. Its length. */
static size_t write_head(const struct head *h, char *out)
{
    char num[24], *p = num + sizeof num;
    size_t at = 0, v = h->len;

    at = put(out, at, "HTTP/1.1 ", 9);
    num[0] = (char)('0' + h->status / 100);
    num[1] = (char)('0' + h->status / 10 % 10);
    num[2] = (char)('0' + h->status % 10);
    num[3] = ' ';
    at = put(out, at, num, 4);
    at = put_line(out, at, h->reason, "");
    at = put_line(out, at, "Date: ", h->date);
    at = put_line(out, at, "x-ms-request-id: ", h->request_id);
    if (h->crid != NULL)
        at = put_line(out, at, "x-ms-client-request-id: ", h->crid);
    if (h->content_type != NULL)
        at = put_line(out, at, "Content-Type: ", h->content_type);
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    at = put(out, at, "Content-Length: ", 16);
    at = put(out, at, p, (size_t)(num + sizeof num - p));
    at = put(out, at, "\r\n", 2);
    if (h->close)
        at = put(out, at, "Connection: close\r\n", 19);
    for (size_t i = 0; i < h->ncore; i++)
        at = put_line(out, at, h->core[i], "");
    for (size_t i = 0; h->extra != NULL && h->extra[i] != NULL; i++)
        if (h->extra_ok[i])
            at = put_line(out, at, h->extra[i], "");
    return put(out, at, "\r\n", 2);
}

void emu_reply(struct emu_req *r, int status, const char *content_type, const void *body,
               size_t len, const char *const *extra_headers)
{
    struct emu_req_priv *pr = emu_priv(r);
    unsigned char extra_ok[MAX_EXTRA_HEADERS];
    struct head h;
    char *buf = NULL;
    size_t inline_len, head_len, nextra = 0;
    int ok = 1;

    if (r->status != 0 || pr->dropped) {
        clc_log(CLC_LOG_ERROR, "emu.reply.twice", CLC_LS("service", pr->l->key),
                CLC_LS("request_id", r->request_id), CLC_LI("status", status));
        return;
    }
    if (status < 100 || status > 599)
        status = 500;
    r->status = status;
    inline_len = strcmp(r->method, "HEAD") != 0 && len <= INLINE_BODY_MAX ? len : 0;
    for (; extra_headers != NULL && extra_headers[nextra] != NULL; nextra++) {
        if (nextra == MAX_EXTRA_HEADERS) {
            ok = 0; /* more than any head can hold */
            break;
        }
        extra_ok[nextra] = (unsigned char)header_line_ok(extra_headers[nextra]);
        if (!extra_ok[nextra])
            clc_log(CLC_LOG_ERROR, "emu.reply.bad_header", CLC_LS("service", pr->l->key),
                    CLC_LS("request_id", r->request_id));
    }
    h.status = status;
    h.reason = mg_get_response_code_text(pr->conn, status);
    h.date = reply_date(r->emu);
    h.request_id = r->request_id;
    h.crid = emu_req_header(r, "x-ms-client-request-id");
    if (h.crid != NULL && !client_req_id_ok(h.crid))
        h.crid = NULL;
    h.content_type = content_type;
    h.len = len;
    h.close = pr->close_after;
    h.core = pr->core_headers;
    h.ncore = pr->ncore_headers;
    h.extra = ok ? extra_headers : NULL;
    h.extra_ok = extra_ok;
    head_len = write_head(&h, NULL);
    if (ok && head_len <= HEAD_MAX) {
        /* One allocation of the final size; the body rides along when small. */
        buf = malloc(head_len + inline_len);
        if (buf == NULL && inline_len > 0) {
            inline_len = 0; /* the body follows in a second write */
            buf = malloc(head_len);
        }
    }
    access_log(pr, buf != NULL ? status : 500);
    if (buf == NULL) {
        /* An oversized header set (a bug in a service) or no memory. */
        clc_log(CLC_LOG_ERROR, "emu.reply.head_too_large", CLC_LS("service", pr->l->key),
                CLC_LS("request_id", r->request_id));
        mg_disable_keep_alive(pr->conn);
        pr->dropped = 1;
        r->status = 500;
        return;
    }
    write_head(&h, buf);
    if (inline_len > 0)
        memcpy(buf + head_len, body, inline_len);
    mg_write(pr->conn, buf, head_len + inline_len);
    if (inline_len == 0 && len > 0 && strcmp(r->method, "HEAD") != 0)
        mg_write(pr->conn, body, len);
    free(buf);
}

void emu_reply_json(struct emu_req *r, int status, const cJSON *body,
                    const char *const *extra_headers)
{
    char *text;

    if (body == NULL) {
        emu_reply(r, status, NULL, "", 0, extra_headers);
        return;
    }
    text = clc_json_print(body);
    if (text == NULL) {
        emu_reply(r, 500, "text/plain", "out of memory\n", 14, NULL);
        return;
    }
    emu_reply(r, status, "application/json; charset=utf-8", text, strlen(text), extra_headers);
    free(text);
}

static void azure_error(struct emu_req *r, int status, const char *code, const char *message)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *err = doc ? cJSON_AddObjectToObject(doc, "error") : NULL;

    if (err == NULL || clc_json_add_str(err, "code", code) != CLC_OK ||
        clc_json_add_str(err, "message", message) != CLC_OK) {
        cJSON_Delete(doc);
        emu_reply(r, 500, "text/plain", "out of memory\n", 14, NULL);
        return;
    }
    emu_reply_json(r, status, doc, NULL);
    cJSON_Delete(doc);
}

void emu_reply_azure_error(struct emu_req *r, int status, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    azure_error(r, status, code, msg);
}

void emu_reply_error(struct emu_req *r, int status, const char *code, const char *message)
{
    if (r->svc != NULL && r->svc->error != NULL)
        r->svc->error(r, status, code, message);
    else
        azure_error(r, status, code, message);
}
