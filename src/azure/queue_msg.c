/* Queue client, message half: put, get, peek, delete by pop receipt, update,
 * clear, the QueueMessagesList reader, and the lease helpers built on them.
 * Only calls that can be repeated without a second effect are retried. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "azure/queue_int.h"
#include "azure/storage_xml.h"
#include "core/clock.h"

/* 32 messages of 64 KiB, escaped, plus the envelope. */
#define MAX_LIST_NODES (CLC_QUEUE_MAX_BATCH * 16 + 8)
/* Text escaped for XML grows at most 6x (a CR becomes "&#xD;"). */
#define MAX_BODY (CLC_QUEUE_MAX_TEXT * 6 + 128)
/* Times at or past this are "never" (Azure writes 31 Dec 9999). */
#define YEAR_9999 253370764800LL

void clc_queue_msg_cleanup(struct clc_queue_msg *m)
{
    if (!m)
        return;
    free(m->text);
    memset(m, 0, sizeof *m);
}

void clc_queue_msgs_cleanup(struct clc_queue_msgs *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        clc_queue_msg_cleanup(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static enum clc_err copy_field(const char *v, char *out, size_t outlen, const char *what,
                               struct clc_errinfo *ei)
{
    size_t n = strlen(v);
    if (n == 0 || n >= outlen)
        return clc_errf(ei, CLC_ERR_PARSE, "queue: <%s> empty or longer than %zu bytes", what,
                        outlen - 1);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= ' ' || (unsigned char)v[i] >= 0x7f)
            return clc_errf(ei, CLC_ERR_PARSE, "queue: <%s> has an unexpected character", what);
    memcpy(out, v, n + 1);
    return CLC_OK;
}

static enum clc_err parse_time(const char *v, int64_t *out, const char *what,
                               struct clc_errinfo *ei)
{
    if (clc_time_parse_rfc1123(v, out) != CLC_OK)
        return clc_errf(ei, CLC_ERR_PARSE, "queue: <%s> is not an RFC 1123 date", what);
    if (*out >= YEAR_9999)
        *out = INT64_MAX;
    return CLC_OK;
}

/* One <QueueMessage>. Which children are required depends on the call:
 * put answers carry no text, peek answers no pop receipt. */
enum want { W_PUT, W_GET, W_PEEK };

static enum clc_err parse_msg(const struct clc_xml *x, const struct clc_xml_node *n, enum want w,
                              struct clc_queue_msg *m, struct clc_errinfo *ei)
{
    const char *id = clc_xml_child_text(x, n, "MessageId");
    const char *ins = clc_xml_child_text(x, n, "InsertionTime");
    const char *exp = clc_xml_child_text(x, n, "ExpirationTime");
    const char *pr = clc_xml_child_text(x, n, "PopReceipt");
    const char *nv = clc_xml_child_text(x, n, "TimeNextVisible");
    const char *dc = clc_xml_child_text(x, n, "DequeueCount");
    const struct clc_xml_node *text = clc_xml_child(x, n, "MessageText");
    enum clc_err rc = CLC_OK;

    if (!id || !ins || !exp)
        return clc_errf(ei, CLC_ERR_PARSE,
                        "queue: message without MessageId, InsertionTime "
                        "or ExpirationTime");
    if (w != W_PEEK && (!pr || !nv))
        return clc_errf(ei, CLC_ERR_PARSE,
                        "queue: message without PopReceipt or "
                        "TimeNextVisible");
    if (w != W_PUT && (!text || !dc))
        return clc_errf(ei, CLC_ERR_PARSE,
                        "queue: message without MessageText or "
                        "DequeueCount");
    rc = copy_field(id, m->id, sizeof m->id, "MessageId", ei);
    if (rc == CLC_OK)
        rc = parse_time(ins, &m->insertion_time, "InsertionTime", ei);
    if (rc == CLC_OK)
        rc = parse_time(exp, &m->expiration_time, "ExpirationTime", ei);
    if (rc == CLC_OK && pr && w != W_PEEK)
        rc = copy_field(pr, m->pop_receipt, sizeof m->pop_receipt, "PopReceipt", ei);
    if (rc == CLC_OK && nv && w != W_PEEK)
        rc = parse_time(nv, &m->next_visible, "TimeNextVisible", ei);
    if (rc == CLC_OK && dc) {
        char *end = NULL;
        errno = 0;
        long long d = strtoll(dc, &end, 10);
        if (errno || end == dc || *end || d < 0)
            rc = clc_errf(ei, CLC_ERR_PARSE, "queue: <DequeueCount> is not a count");
        m->dequeue_count = d;
    }
    if (rc == CLC_OK && text) {
        if (text->text_len > CLC_QUEUE_MAX_TEXT)
            return clc_errf(ei, CLC_ERR_PARSE, "queue: message text over %d bytes",
                            CLC_QUEUE_MAX_TEXT);
        m->text = malloc(text->text_len + 1);
        if (!m->text)
            return CLC_ERR_NOMEM;
        memcpy(m->text, text->text, text->text_len + 1);
        m->text_len = text->text_len;
    }
    return rc;
}

static enum clc_err parse_msgs(const struct clc_http_resp *resp, enum want w, size_t max,
                               struct clc_queue_msgs *out, struct clc_errinfo *ei)
{
    struct clc_xml *x = NULL;
    const struct clc_xml_node *root = NULL, *it = NULL;
    size_t count = 0;
    enum clc_err rc = clc_xml_parse(resp->body.data, resp->body.len, MAX_LIST_NODES, &x, ei);

    if (rc != CLC_OK) {
        clc_err_wrap(ei, rc, "queue: messages answer");
        goto out;
    }
    root = clc_xml_root(x);
    if (strcmp(root->name, "QueueMessagesList") != 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "queue: answer is <%s>, not <QueueMessagesList>",
                      root->name);
        goto out;
    }
    for (it = clc_xml_child(x, root, "QueueMessage"); it; it = clc_xml_next(x, it))
        count++;
    if (count > max) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "queue: %zu messages in the answer, asked for %zu", count,
                      max);
        goto out;
    }
    if (count == 0)
        goto out;
    out->v = calloc(count, sizeof *out->v);
    if (!out->v) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (it = clc_xml_child(x, root, "QueueMessage"); it && rc == CLC_OK;
         it = clc_xml_next(x, it)) {
        rc = parse_msg(x, it, w, &out->v[out->n], ei);
        out->n++;
    }
out:
    clc_xml_free(x);
    return rc;
}

static enum clc_err msgs_path(const char *queue, char *out, size_t outlen, struct clc_errinfo *ei)
{
    enum clc_err rc = clc_queue_check_name(queue, ei);
    if (rc == CLC_OK)
        snprintf(out, outlen, "/%s/messages", queue);
    return rc;
}

/* Message ids go into the path: the services use GUIDs; refuse anything
 * that would need encoding rather than guess how a peer canonicalises it. */
static enum clc_err msg_path(const char *queue, const char *id, char *out, size_t outlen,
                             struct clc_errinfo *ei)
{
    enum clc_err rc = clc_queue_check_name(queue, ei);
    size_t n = id ? strlen(id) : 0;
    if (rc != CLC_OK)
        return rc;
    if (n == 0 || n >= CLC_QUEUE_ID_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: message id missing or too long");
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "queue: message id has a character outside "
                            "[A-Za-z0-9_-]");
    }
    snprintf(out, outlen, "/%s/messages/%s", queue, id);
    return CLC_OK;
}

static enum clc_err check_seconds(int64_t v, int64_t min, int64_t max, const char *what,
                                  struct clc_errinfo *ei)
{
    if (v < min || v > max)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: %s %lld out of range %lld..%lld", what,
                        (long long)v, (long long)min, (long long)max);
    return CLC_OK;
}

static enum clc_err message_body(const char *text, size_t len, struct clc_buf *body,
                                 struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    if (!text && len > 0)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: message text missing");
    if (len > CLC_QUEUE_MAX_TEXT)
        return clc_errf(ei, CLC_ERR_LIMIT,
                        "queue: message text of %zu bytes is over the "
                        "%d byte limit",
                        len, CLC_QUEUE_MAX_TEXT);
    rc = clc_buf_append_str(body, "<?xml version=\"1.0\" encoding=\"utf-8\"?>"
                                  "<QueueMessage><MessageText>");
    if (rc == CLC_OK && len > 0)
        rc = clc_xml_escape(body, text, len, ei);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(body, "</MessageText></QueueMessage>");
    return rc;
}

/* A stale pop receipt, told either way, becomes a lost lease. */
static enum clc_err lease_error(enum clc_err rc, struct clc_errinfo *ei)
{
    if ((rc == CLC_ERR_NOT_FOUND && strcmp(ei->code, "MessageNotFound") == 0) ||
        (rc == CLC_ERR_INVALID && strcmp(ei->code, "PopReceiptMismatch") == 0))
        return clc_err_wrap(ei, CLC_ERR_CONFLICT, "queue: lease lost");
    return rc;
}

int clc_queue_lease_lost(enum clc_err rc, const struct clc_errinfo *ei)
{
    if (rc != CLC_ERR_CONFLICT)
        return 0;
    return !ei || strcmp(ei->code, "MessageNotFound") == 0 ||
           strcmp(ei->code, "PopReceiptMismatch") == 0;
}

enum clc_err clc_queue_put(struct clc_queue *q, const char *queue, const char *text, size_t len,
                           int64_t visibility_s, int64_t ttl_s, struct clc_queue_msg *out,
                           struct clc_errinfo *ei)
{
    struct clc_storage_param qp[2];
    size_t nq = 0;
    char path[96], vis[24], ttl[24];
    struct clc_buf body;
    struct clc_http_resp resp;
    struct clc_queue_msgs got = {0};
    enum clc_err rc = CLC_OK;

    if (out)
        memset(out, 0, sizeof *out);
    clc_buf_init(&body, MAX_BODY);
    clc_http_resp_init(&resp);
    rc = msgs_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = check_seconds(visibility_s, 0, CLC_QUEUE_MAX_VISIBILITY, "visibilitytimeout", ei);
    if (rc == CLC_OK && ttl_s != CLC_QUEUE_TTL_INFINITE)
        rc = check_seconds(ttl_s, 0, INT32_MAX, "messagettl", ei);
    /* The service refuses a message that would expire before it shows. */
    if (rc == CLC_OK && ttl_s > 0 && visibility_s >= ttl_s)
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "queue: visibilitytimeout must be less than "
                      "messagettl");
    if (rc == CLC_OK)
        rc = message_body(text, len, &body, ei);
    if (rc != CLC_OK)
        goto out;
    if (visibility_s > 0) {
        snprintf(vis, sizeof vis, "%lld", (long long)visibility_s);
        qp[nq++] = (struct clc_storage_param){"visibilitytimeout", vis};
    }
    if (ttl_s != 0) {
        snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s);
        qp[nq++] = (struct clc_storage_param){"messagettl", ttl};
    }
    struct clc_storage_call c = {.method = "POST",
                                 .path = path,
                                 .query = qp,
                                 .nquery = nq,
                                 .body = body.data,
                                 .body_len = body.len,
                                 .content_type = "application/xml",
                                 .idempotent = 0};
    rc = clc_storage_send(q->st, &c, &resp, ei);
    if (rc == CLC_OK && out) {
        rc = parse_msgs(&resp, W_PUT, 1, &got, ei);
        if (rc == CLC_OK && got.n != 1)
            rc = clc_errf(ei, CLC_ERR_PARSE, "queue: put answered %zu messages", got.n);
        if (rc == CLC_OK) {
            *out = got.v[0];
            memset(&got.v[0], 0, sizeof got.v[0]);
        }
    }
out:
    clc_queue_msgs_cleanup(&got);
    clc_buf_cleanup(&body);
    clc_http_resp_cleanup(&resp);
    return rc;
}

static enum clc_err get_or_peek(struct clc_queue *q, const char *queue, int n, int64_t visibility_s,
                                int peek, struct clc_queue_msgs *out, struct clc_errinfo *ei)
{
    struct clc_storage_param qp[2];
    size_t nq = 0;
    char path[96], num[16], vis[24];
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    clc_http_resp_init(&resp);
    rc = msgs_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = check_seconds(n, 1, CLC_QUEUE_MAX_BATCH, "numofmessages", ei);
    if (rc == CLC_OK && !peek)
        rc = check_seconds(visibility_s, 0, CLC_QUEUE_MAX_VISIBILITY, "visibilitytimeout", ei);
    if (rc != CLC_OK)
        goto out;
    snprintf(num, sizeof num, "%d", n);
    if (peek)
        qp[nq++] = (struct clc_storage_param){"peekonly", "true"};
    qp[nq++] = (struct clc_storage_param){"numofmessages", num};
    if (!peek && visibility_s > 0) {
        snprintf(vis, sizeof vis, "%lld", (long long)visibility_s);
        qp[nq++] = (struct clc_storage_param){"visibilitytimeout", vis};
    }
    /* Get hides what it returns: repeating it after a lost answer would
     * hide more. Peek has no effect and may be repeated. */
    struct clc_storage_call c = {
        .method = "GET", .path = path, .query = qp, .nquery = nq, .idempotent = peek};
    rc = clc_storage_send(q->st, &c, &resp, ei);
    if (rc == CLC_OK)
        rc = parse_msgs(&resp, peek ? W_PEEK : W_GET, (size_t)n, out, ei);
    if (rc != CLC_OK)
        clc_queue_msgs_cleanup(out);
out:
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_queue_get(struct clc_queue *q, const char *queue, int n, int64_t visibility_s,
                           struct clc_queue_msgs *out, struct clc_errinfo *ei)
{
    return get_or_peek(q, queue, n, visibility_s, 0, out, ei);
}

enum clc_err clc_queue_peek(struct clc_queue *q, const char *queue, int n,
                            struct clc_queue_msgs *out, struct clc_errinfo *ei)
{
    return get_or_peek(q, queue, n, 0, 1, out, ei);
}

static enum clc_err check_receipt(const char *r, struct clc_errinfo *ei)
{
    if (!r || !*r || strlen(r) >= CLC_QUEUE_RECEIPT_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: pop receipt missing or too long");
    return CLC_OK;
}

enum clc_err clc_queue_delete_message(struct clc_queue *q, const char *queue, const char *id,
                                      const char *pop_receipt, struct clc_errinfo *ei)
{
    char path[CLC_QUEUE_ID_MAX + 96];
    struct clc_http_resp resp;
    struct clc_errinfo local;
    enum clc_err rc = CLC_OK;

    /* The service's code decides lease lost vs. not found. */
    if (!ei) {
        clc_errinfo_clear(&local);
        ei = &local;
    }
    clc_http_resp_init(&resp);
    rc = msg_path(queue, id, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = check_receipt(pop_receipt, ei);
    if (rc == CLC_OK) {
        struct clc_storage_param qp[] = {{"popreceipt", pop_receipt}};
        /* Repeatable: a retry after a lost answer at worst reports the
         * lease lost, and the message is gone either way. */
        struct clc_storage_call c = {
            .method = "DELETE", .path = path, .query = qp, .nquery = 1, .idempotent = 1};
        rc = lease_error(clc_storage_send(q->st, &c, &resp, ei), ei);
    }
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_queue_update(struct clc_queue *q, const char *queue, struct clc_queue_msg *m,
                              int64_t visibility_s, const char *text, size_t len,
                              struct clc_errinfo *ei)
{
    char path[CLC_QUEUE_ID_MAX + 96], vis[24], receipt[CLC_QUEUE_RECEIPT_MAX];
    struct clc_buf body;
    struct clc_http_resp resp;
    const char *pr = NULL, *nv = NULL;
    int64_t next = 0;
    char *newtext = NULL;
    struct clc_errinfo local;
    enum clc_err rc = CLC_OK;

    if (!ei) {
        clc_errinfo_clear(&local);
        ei = &local;
    }
    clc_buf_init(&body, MAX_BODY);
    clc_http_resp_init(&resp);
    rc = msg_path(queue, m ? m->id : NULL, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = check_receipt(m->pop_receipt, ei);
    if (rc == CLC_OK)
        rc = check_seconds(visibility_s, 0, CLC_QUEUE_MAX_VISIBILITY, "visibilitytimeout", ei);
    if (rc == CLC_OK && text)
        rc = message_body(text, len, &body, ei);
    if (rc == CLC_OK && text) {
        newtext = malloc(len + 1);
        if (!newtext)
            rc = CLC_ERR_NOMEM;
        else {
            memcpy(newtext, text, len);
            newtext[len] = '\0';
        }
    }
    if (rc != CLC_OK)
        goto out;
    snprintf(vis, sizeof vis, "%lld", (long long)visibility_s);
    struct clc_storage_param qp[] = {{"popreceipt", m->pop_receipt}, {"visibilitytimeout", vis}};
    /* Not repeatable: the first try, if it landed, spent the receipt. */
    struct clc_storage_call c = {.method = "PUT",
                                 .path = path,
                                 .query = qp,
                                 .nquery = 2,
                                 .body = text ? body.data : NULL,
                                 .body_len = text ? body.len : 0,
                                 .content_type = text ? "application/xml" : NULL,
                                 .idempotent = 0};
    rc = lease_error(clc_storage_send(q->st, &c, &resp, ei), ei);
    if (rc != CLC_OK)
        goto out;
    pr = clc_http_resp_header(&resp, "x-ms-popreceipt");
    nv = clc_http_resp_header(&resp, "x-ms-time-next-visible");
    if (!pr || !nv) {
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "queue: update answer without x-ms-popreceipt or "
                      "x-ms-time-next-visible");
        goto out;
    }
    rc = copy_field(pr, receipt, sizeof receipt, "x-ms-popreceipt", ei);
    if (rc == CLC_OK)
        rc = parse_time(nv, &next, "x-ms-time-next-visible", ei);
    if (rc != CLC_OK)
        goto out;
    memcpy(m->pop_receipt, receipt, sizeof receipt);
    m->next_visible = next;
    if (text) {
        free(m->text);
        m->text = newtext;
        m->text_len = len;
        newtext = NULL;
    }
out:
    free(newtext);
    clc_buf_cleanup(&body);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_queue_clear(struct clc_queue *q, const char *queue, struct clc_errinfo *ei)
{
    char path[96];
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    clc_http_resp_init(&resp);
    rc = msgs_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK) {
        struct clc_storage_call c = {.method = "DELETE", .path = path, .idempotent = 1};
        rc = clc_storage_send(q->st, &c, &resp, ei);
    }
    clc_http_resp_cleanup(&resp);
    return rc;
}

/* ---- leases ---- */

void clc_queue_lease_cleanup(struct clc_queue_lease *l)
{
    if (!l)
        return;
    clc_queue_msg_cleanup(&l->msg);
    memset(l, 0, sizeof *l);
}

enum clc_err clc_queue_lease_take(struct clc_queue *q, const char *queue, int64_t visibility_s,
                                  struct clc_queue_lease *lease, int *got, struct clc_errinfo *ei)
{
    struct clc_queue_msgs msgs = {0};
    enum clc_err rc = CLC_OK;

    *got = 0;
    if (visibility_s < 1)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: a lease needs a visibility of at least 1 s");
    rc = clc_queue_get(q, queue, 1, visibility_s, &msgs, ei);
    if (rc != CLC_OK || msgs.n == 0)
        goto out;
    clc_queue_lease_cleanup(lease);
    snprintf(lease->queue, sizeof lease->queue, "%s", queue);
    lease->msg = msgs.v[0];
    memset(&msgs.v[0], 0, sizeof msgs.v[0]);
    *got = 1;
out:
    clc_queue_msgs_cleanup(&msgs);
    return rc;
}

enum clc_err clc_queue_lease_extend(struct clc_queue *q, struct clc_queue_lease *lease,
                                    int64_t visibility_s, struct clc_errinfo *ei)
{
    if (visibility_s < 1)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: extend a lease by at least 1 s");
    /* No body: the service keeps the content. */
    return clc_queue_update(q, lease->queue, &lease->msg, visibility_s, NULL, 0, ei);
}

enum clc_err clc_queue_lease_complete(struct clc_queue *q, struct clc_queue_lease *lease,
                                      struct clc_errinfo *ei)
{
    return clc_queue_delete_message(q, lease->queue, lease->msg.id, lease->msg.pop_receipt, ei);
}

enum clc_err clc_queue_lease_release(struct clc_queue *q, struct clc_queue_lease *lease,
                                     int64_t delay_s, struct clc_errinfo *ei)
{
    return clc_queue_update(q, lease->queue, &lease->msg, delay_s, NULL, 0, ei);
}
