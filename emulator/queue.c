/* The emulated Storage queue service ("queue", HTTPS): Azurite's path-style
 * URLs (/{account}/{queue}/messages/{id}), the Queue REST operations with
 * Azure's XML bodies, headers and error codes, SharedKey / SAS / bearer auth,
 * and reset/dump hooks for the control API. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "emulator/queue.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define LIST_MAX_RESULTS 5000
#define XML_MAX ((size_t)16 * 1024 * 1024)
#define MAX_GET 32
#define MAX_PATH_SEGS 5
/* Room for a put's reply, and for each message of a get beside its text. */
#define PUT_REPLY_SIZE 512

struct queue_svc {
    struct emu *e;
    struct emu_storage_accounts accounts;
    struct emu_queue_store *store;
};

/* In-process access for other services: one emulator rarely runs twice in
 * a process, but tests do start several, so the services are found by emu. */
/* Found by other emulated services (Event Grid) through the core. */
#define COMPONENT "queue"

/* Everything a handler needs about the request. */
struct qreq {
    struct emu_req *r;
    struct queue_svc *s;
    struct emu_storage_query q;
    char version[16];
    const struct emu_storage_account *acct;
    char *seg[MAX_PATH_SEGS]; /* point into segbuf */
    size_t nseg;
    char *segbuf;
    int64_t now;
};

#define XML_DECL "<?xml version=\"1.0\" encoding=\"utf-8\"?>"

static void internal_error(struct qreq *x, const char *what)
{
    clc_log(CLC_LOG_ERROR, "emu.queue.internal", CLC_LS("reason", what),
            CLC_LS("request_id", x->r->request_id));
    emu_storage_error(x->r, x->version, 500, "InternalError",
                      "The server encountered an internal error. Please retry the request.");
}

static void queue_not_found(struct qreq *x)
{
    emu_storage_error(x->r, x->version, 404, "QueueNotFound",
                      "The specified queue does not exist.");
}

/* Integer query parameter in [min, max]; 1 = ok (or absent: *out = dflt). */
static int int_param(struct qreq *x, const char *name, long long dflt, long long min, long long max,
                     long long *out)
{
    const char *v = emu_storage_query_get(&x->q, name);
    char *end = NULL;
    long long n;

    *out = dflt;
    if (v == NULL)
        return 1;
    n = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0' || (v[0] == '0' && v[1] != '\0')) {
        emu_storage_bad_query(x->r, x->version, name, v, "The value is not an integer.");
        return 0;
    }
    if (n < min || n > max) {
        emu_storage_out_of_range(x->r, x->version, name, v, min, max);
        return 0;
    }
    *out = n;
    return 1;
}

static int authorize(struct qreq *x, char rtype, const char *acct_perms, const char *svc_perms,
                     const char *queue)
{
    struct emu_storage_op op = {'q', rtype, acct_perms, svc_perms, queue, NULL};
    return emu_storage_authorize(x->r, x->acct, &x->q, &op, x->version);
}

static void reply_xml(struct qreq *x, int status, struct clc_buf *b, const char *const *headers)
{
    emu_storage_reply(x->r, x->version, status, clc_buf_str(b), b->len, headers);
}

/* ---- service level ---- */

static void list_queues(struct qreq *x)
{
    const char *prefix = emu_storage_query_get(&x->q, "prefix");
    const char *marker = emu_storage_query_get(&x->q, "marker");
    const char *include = emu_storage_query_get(&x->q, "include");
    const char *host = emu_req_header(x->r, "Host");
    long long maxr;
    struct clc_buf b;
    enum clc_err rc;
    int with_meta;

    if (!int_param(x, "maxresults", LIST_MAX_RESULTS, 1, LIST_MAX_RESULTS, &maxr))
        return;
    if (include != NULL && strcmp(include, "metadata") != 0 && include[0] != '\0') {
        emu_storage_bad_query(x->r, x->version, "include", include,
                              "Only 'metadata' can be included.");
        return;
    }
    with_meta = include != NULL && strcmp(include, "metadata") == 0;
    if (!authorize(x, 's', "l", NULL, NULL))
        return;
    clc_buf_init(&b, XML_MAX);
    pthread_mutex_lock(&x->s->store->mu);
    rc = emu_queue_list_xml(x->s->store, x->acct->name, host ? host : "127.0.0.1", prefix, marker,
                            emu_storage_query_get(&x->q, "maxresults") ? maxr : 0, with_meta, &b);
    pthread_mutex_unlock(&x->s->store->mu);
    if (rc == CLC_OK)
        reply_xml(x, 200, &b, NULL);
    else
        internal_error(x, "list too large");
    clc_buf_cleanup(&b);
}

/* ---- queue level ---- */

static void create_queue(struct qreq *x, const char *name)
{
    struct emu_storage_meta meta;
    struct emu_queue *q;
    struct clc_errinfo ei = {0};
    int status;

    if (!authorize(x, 'c', "cw", NULL, name) ||
        !emu_storage_meta_from_request(x->r, x->version, &meta))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL)
        status = emu_storage_meta_equal(&q->meta, &meta) ? 204 : 409;
    else
        status = emu_queue_create(x->s->store, x->acct->name, name, &meta, &q, &ei) == CLC_OK ? 201
                                                                                              : 500;
    pthread_mutex_unlock(&x->s->store->mu);
    emu_storage_meta_cleanup(&meta);
    if (status == 409)
        emu_storage_error(x->r, x->version, 409, "QueueAlreadyExists",
                          "The specified queue already exists.");
    else if (status == 500)
        internal_error(x, ei.msg);
    else
        emu_storage_reply(x->r, x->version, status, NULL, 0, NULL);
}

static void delete_queue(struct qreq *x, const char *name)
{
    struct emu_queue *q;

    if (!authorize(x, 'c', "d", NULL, name))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL)
        emu_queue_delete(x->s->store, q, NULL);
    pthread_mutex_unlock(&x->s->store->mu);
    if (q == NULL)
        queue_not_found(x);
    else
        emu_storage_reply(x->r, x->version, 204, NULL, 0, NULL);
}

static void get_metadata(struct qreq *x, const char *name)
{
    struct emu_queue *q;
    char **lines = NULL, count[64];
    const char *h[EMU_STORAGE_MAX_META + 2];
    size_t k = 0;

    if (!authorize(x, 'c', "r", "r", name))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL) {
        emu_queue_purge(x->s->store, q, x->now);
        snprintf(count, sizeof count, "x-ms-approximate-messages-count: %zu", q->count);
        lines = emu_storage_meta_headers(&q->meta);
    }
    pthread_mutex_unlock(&x->s->store->mu);
    if (q == NULL) {
        queue_not_found(x);
        return;
    }
    if (lines == NULL) {
        internal_error(x, "out of memory");
        return;
    }
    h[k++] = count;
    for (size_t i = 0; lines[i] != NULL && k < EMU_STORAGE_MAX_META + 1; i++)
        h[k++] = lines[i];
    h[k] = NULL;
    emu_storage_reply(x->r, x->version, 200, NULL, 0, h);
    emu_storage_strv_free(lines);
}

static void set_metadata(struct qreq *x, const char *name)
{
    struct emu_storage_meta meta;
    struct emu_queue *q;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;

    if (!authorize(x, 'c', "w", NULL, name) ||
        !emu_storage_meta_from_request(x->r, x->version, &meta))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL)
        rc = emu_queue_set_meta(x->s->store, q, &meta, &ei);
    pthread_mutex_unlock(&x->s->store->mu);
    emu_storage_meta_cleanup(&meta);
    if (q == NULL)
        queue_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, ei.msg);
    else
        emu_storage_reply(x->r, x->version, 204, NULL, 0, NULL);
}

/* ---- messages ---- */

/* Parses the body's message text and checks the 64 KiB limit; replies and
 * returns 0 on error. */
static int message_text(struct qreq *x, char **text, size_t *len)
{
    struct clc_errinfo ei = {0};

    if (emu_queue_parse_message(x->r->body, x->r->body_len, text, len, &ei) != CLC_OK) {
        const char *d[] = {"Reason", ei.msg, NULL};
        emu_storage_error_ex(x->r, x->version, 400, "InvalidXmlDocument",
                             "XML specified is not syntactically valid.", d, NULL);
        return 0;
    }
    if (*len > EMU_QUEUE_MAX_TEXT) {
        const char *d[] = {"MaxLimit", "65536", NULL};
        free(*text);
        *text = NULL;
        emu_storage_error_ex(x->r, x->version, 413, "RequestBodyTooLarge",
                             "The request body is too large and exceeds the maximum permissible "
                             "limit.",
                             d, NULL);
        return 0;
    }
    return 1;
}

static void put_message(struct qreq *x, const char *name)
{
    long long vis, ttl;
    char *text = NULL;
    size_t len = 0;
    struct emu_queue *q;
    struct emu_qmsg *m = NULL;
    struct clc_errinfo ei = {0};
    struct clc_buf b;
    enum clc_err rc = CLC_OK;

    if (!int_param(x, "messagettl", EMU_QUEUE_DEFAULT_TTL, -1, INT32_MAX, &ttl))
        return;
    if (ttl == 0) {
        emu_storage_out_of_range(x->r, x->version, "messagettl", "0", 1, INT32_MAX);
        return;
    }
    /* The message must become visible before it expires. */
    if (!int_param(x, "visibilitytimeout", 0, 0,
                   ttl < 0 || ttl > EMU_QUEUE_MAX_VISIBILITY ? EMU_QUEUE_MAX_VISIBILITY : ttl - 1,
                   &vis))
        return;
    if (!authorize(x, 'o', "a", "a", name) || !message_text(x, &text, &len))
        return;
    clc_buf_init(&b, XML_MAX);
    if (clc_buf_reserve(&b, PUT_REPLY_SIZE) != CLC_OK) {
        free(text);
        internal_error(x, "out of memory");
        return;
    }
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL)
        rc = emu_queue_put_owned(x->s->store, q, &text, len, vis, ttl, x->now, &m, &ei);
    if (m != NULL) {
        rc = clc_buf_append_str(&b, XML_DECL "<QueueMessagesList>");
        if (rc == CLC_OK)
            rc = emu_queue_msg_xml(&b, m, 1, 0, 0);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&b, "</QueueMessagesList>");
    }
    pthread_mutex_unlock(&x->s->store->mu);
    free(text);
    if (q == NULL)
        queue_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, ei.msg[0] ? ei.msg : "out of memory");
    else
        reply_xml(x, 201, &b, NULL);
    clc_buf_cleanup(&b);
}

static void get_messages(struct qreq *x, const char *name)
{
    const char *peek = emu_storage_query_get(&x->q, "peekonly");
    long long n, vis;
    int peekonly = peek != NULL && strcasecmp(peek, "true") == 0;
    struct emu_queue *q;
    struct emu_qmsg *got[MAX_GET];
    struct clc_buf b;
    enum clc_err rc = CLC_OK;
    size_t k = 0, size = PUT_REPLY_SIZE;

    if (peek != NULL && !peekonly && strcasecmp(peek, "false") != 0) {
        emu_storage_bad_query(x->r, x->version, "peekonly", peek, "Expected true or false.");
        return;
    }
    if (!int_param(x, "numofmessages", 1, 1, MAX_GET, &n))
        return;
    if (peekonly ? !authorize(x, 'o', "r", "r", name)
                 : !int_param(x, "visibilitytimeout", 30, 1, EMU_QUEUE_MAX_VISIBILITY, &vis) ||
                       !authorize(x, 'o', "p", "p", name))
        return;
    clc_buf_init(&b, XML_MAX);
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL && peekonly) {
        emu_queue_purge(x->s->store, q, x->now);
        for (struct emu_qmsg *m = q->head; m != NULL && k < (size_t)n; m = m->next)
            if (m->visible_at <= x->now)
                got[k++] = m;
    } else if (q != NULL) {
        k = emu_queue_dequeue(x->s->store, q, (size_t)n, vis, x->now, got);
    }
    for (size_t i = 0; i < k; i++)
        size += PUT_REPLY_SIZE + got[i]->len;
    if (clc_buf_reserve(&b, size) != CLC_OK)
        rc = CLC_ERR_NOMEM;
    if (q != NULL && k == 0 && rc == CLC_OK)
        rc = clc_buf_append_str(&b, XML_DECL "<QueueMessagesList />");
    else if (q != NULL && rc == CLC_OK)
        rc = clc_buf_append_str(&b, XML_DECL "<QueueMessagesList>");
    for (size_t i = 0; i < k && rc == CLC_OK; i++)
        rc = emu_queue_msg_xml(&b, got[i], !peekonly, 1, 1);
    if (q != NULL && k > 0 && rc == CLC_OK)
        rc = clc_buf_append_str(&b, "</QueueMessagesList>");
    pthread_mutex_unlock(&x->s->store->mu);
    if (q == NULL)
        queue_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, "response too large");
    else
        reply_xml(x, 200, &b, NULL);
    clc_buf_cleanup(&b);
}

static void clear_messages(struct qreq *x, const char *name)
{
    struct emu_queue *q;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;

    if (!authorize(x, 'o', "d", "p", name))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL)
        rc = emu_queue_clear(x->s->store, q, &ei);
    pthread_mutex_unlock(&x->s->store->mu);
    if (q == NULL)
        queue_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, ei.msg);
    else
        emu_storage_reply(x->r, x->version, 204, NULL, 0, NULL);
}

/* A pop receipt is required and must look like one we hand out. */
static const char *pop_param(struct qreq *x)
{
    const char *pop = emu_storage_query_get(&x->q, "popreceipt");

    if (pop == NULL) {
        const char *d[] = {"QueryParameterName", "popreceipt", NULL};
        emu_storage_error_ex(x->r, x->version, 400, "MissingRequiredQueryParameter",
                             "A query parameter that's mandatory for this request is not "
                             "specified.",
                             d, NULL);
        return NULL;
    }
    if (pop[0] == '\0' || strlen(pop) > 64) {
        emu_storage_bad_query(x->r, x->version, "popreceipt", pop, "Invalid pop receipt format.");
        return NULL;
    }
    return pop;
}

static void message_not_found(struct qreq *x)
{
    /* Azure answers 404 for an unknown id and for a stale pop receipt alike
     * (Azurite says 400 PopReceiptMismatch for the latter). */
    emu_storage_error(x->r, x->version, 404, "MessageNotFound",
                      "The specified message does not exist.");
}

static void delete_message(struct qreq *x, const char *name, const char *id)
{
    const char *pop = pop_param(x);
    struct emu_queue *q;
    struct emu_qmsg *m = NULL;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;

    if (pop == NULL || !authorize(x, 'o', "p", "p", name))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL) {
        emu_queue_purge(x->s->store, q, x->now);
        m = emu_queue_msg_find(q, id, pop);
        if (m != NULL)
            rc = emu_queue_msg_delete(x->s->store, q, m, &ei);
    }
    pthread_mutex_unlock(&x->s->store->mu);
    if (q == NULL)
        queue_not_found(x);
    else if (m == NULL)
        message_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, ei.msg);
    else
        emu_storage_reply(x->r, x->version, 204, NULL, 0, NULL);
}

static void update_message(struct qreq *x, const char *name, const char *id)
{
    const char *pop = pop_param(x);
    long long vis;
    char *text = NULL, popline[64], visline[80], when[40];
    size_t len = 0;
    struct emu_queue *q;
    struct emu_qmsg *m = NULL;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;
    int too_late = 0;

    if (pop == NULL)
        return;
    if (emu_storage_query_get(&x->q, "visibilitytimeout") == NULL) {
        const char *d[] = {"QueryParameterName", "visibilitytimeout", NULL};
        emu_storage_error_ex(x->r, x->version, 400, "MissingRequiredQueryParameter",
                             "A query parameter that's mandatory for this request is not "
                             "specified.",
                             d, NULL);
        return;
    }
    if (!int_param(x, "visibilitytimeout", 0, 0, EMU_QUEUE_MAX_VISIBILITY, &vis) ||
        !authorize(x, 'o', "u", "u", name))
        return;
    /* The body is optional: without one only the visibility changes. */
    if (x->r->body_len > 0 && !message_text(x, &text, &len))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    q = emu_queue_find(x->s->store, x->acct->name, name);
    if (q != NULL) {
        emu_queue_purge(x->s->store, q, x->now);
        m = emu_queue_msg_find(q, id, pop);
        if (m != NULL && m->expires != EMU_STORAGE_NEVER && x->now + vis > m->expires)
            too_late = 1;
        else if (m != NULL)
            rc = emu_queue_msg_update(x->s->store, q, m, text, len, vis, x->now, &ei);
        if (m != NULL && !too_late) {
            snprintf(popline, sizeof popline, "x-ms-popreceipt: %s", m->pop);
            emu_storage_time(m->visible_at, when);
            snprintf(visline, sizeof visline, "x-ms-time-next-visible: %s", when);
        }
    }
    pthread_mutex_unlock(&x->s->store->mu);
    free(text);
    if (q == NULL) {
        queue_not_found(x);
    } else if (m == NULL) {
        message_not_found(x);
    } else if (too_late) {
        const char *d[] = {"QueryParameterName", "visibilitytimeout", "Reason",
                           "The message would become visible after it expires.", NULL};
        emu_storage_error_ex(x->r, x->version, 400, "OutOfRangeQueryParameterValue",
                             "One of the query parameters specified in the request URI is outside "
                             "the permissible range.",
                             d, NULL);
    } else if (rc != CLC_OK) {
        internal_error(x, ei.msg);
    } else {
        const char *h[] = {popline, visline, NULL};
        emu_storage_reply(x->r, x->version, 204, NULL, 0, h);
    }
}

/* ---- dispatch ---- */

/* Cuts a copy of the path into segments in place. */
static int split_path(struct qreq *x)
{
    char *p;

    x->segbuf = strdup(x->r->path);
    if (x->segbuf == NULL)
        return 0;
    p = x->segbuf;
    while (*p == '/')
        p++;
    while (*p != '\0') {
        size_t n = strcspn(p, "/");
        if (x->nseg == MAX_PATH_SEGS)
            return 0;
        x->seg[x->nseg++] = p;
        p += n;
        if (*p == '/') {
            *p++ = '\0';
            /* Only a final "/" may be empty ("/account/"). */
            if (*p == '/')
                return 0;
        }
    }
    return 1;
}

static void dispatch(struct qreq *x)
{
    const char *m = x->r->method, *comp = emu_storage_query_get(&x->q, "comp");
    const char *name = x->nseg > 1 ? x->seg[1] : NULL;

    if (x->nseg == 1) {
        if (strcmp(m, "GET") == 0 && comp != NULL && strcmp(comp, "list") == 0)
            list_queues(x);
        else
            emu_storage_error(x->r, x->version, 400, "InvalidQueryParameterValue",
                              "This emulator serves only comp=list at the account level.");
        return;
    }
    if (!emu_storage_name_ok(name)) {
        emu_storage_error(x->r, x->version, 400, "InvalidResourceName",
                          "The specifed resource name contains invalid characters.");
        return;
    }
    if (x->nseg == 2) {
        int is_meta = comp != NULL && strcmp(comp, "metadata") == 0;
        if (comp != NULL && !is_meta)
            emu_storage_bad_query(x->r, x->version, "comp", comp,
                                  "The emulator supports comp=metadata on a queue.");
        else if (strcmp(m, "PUT") == 0)
            is_meta ? set_metadata(x, name) : create_queue(x, name);
        else if (strcmp(m, "DELETE") == 0 && !is_meta)
            delete_queue(x, name);
        else if ((strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) && is_meta)
            get_metadata(x, name);
        else
            emu_storage_error(x->r, x->version, 405, "UnsupportedHttpVerb",
                              "The resource doesn't support specified Http Verb.");
        return;
    }
    if (strcmp(x->seg[2], "messages") != 0 || x->nseg > 4) {
        emu_storage_error(x->r, x->version, 400, "InvalidUri",
                          "The requested URI does not represent any resource on the server.");
        return;
    }
    if (x->nseg == 3 && strcmp(m, "POST") == 0)
        put_message(x, name);
    else if (x->nseg == 3 && strcmp(m, "GET") == 0)
        get_messages(x, name);
    else if (x->nseg == 3 && strcmp(m, "DELETE") == 0)
        clear_messages(x, name);
    else if (x->nseg == 4 && strcmp(m, "PUT") == 0)
        update_message(x, name, x->seg[3]);
    else if (x->nseg == 4 && strcmp(m, "DELETE") == 0)
        delete_message(x, name, x->seg[3]);
    else
        emu_storage_error(x->r, x->version, 405, "UnsupportedHttpVerb",
                          "The resource doesn't support specified Http Verb.");
}

static void h_queue(struct emu_req *r)
{
    struct qreq x;
    int bad = 0;
    enum clc_err rc;

    memset(&x, 0, sizeof x);
    x.r = r;
    x.s = r->svc_ctx;
    x.now = emu_now(r->emu);
    rc = emu_storage_query_parse(r->query, &x.q);
    emu_storage_version(r, rc == CLC_OK ? &x.q : NULL, x.version, &bad);
    if (rc != CLC_OK) {
        emu_storage_error(r, x.version, 400, "InvalidQueryParameterValue",
                          rc == CLC_ERR_LIMIT ? "Too many query parameters."
                                              : "A query parameter is not percent-encoded "
                                                "correctly.");
        goto out;
    }
    if (bad) {
        const char *d[] = {"HeaderName", "x-ms-version", "HeaderValue",
                           emu_req_header(r, "x-ms-version"), NULL};
        emu_storage_error_ex(r, x.version, 400, "InvalidHeaderValue",
                             "The value for one of the HTTP headers is not in the correct format.",
                             d, NULL);
        goto out;
    }
    if (!split_path(&x) || x.nseg == 0) {
        emu_storage_error(r, x.version, 400, "InvalidUri",
                          "The requested URI does not represent any resource on the server.");
        goto out;
    }
    x.acct = emu_storage_account_find(&x.s->accounts, x.seg[0]);
    if (x.acct == NULL) {
        emu_storage_error(r, x.version, 404, "ResourceNotFound",
                          "The specified resource does not exist (unknown storage account).");
        goto out;
    }
    dispatch(&x);
out:
    free(x.segbuf);
    emu_storage_query_cleanup(&x.q);
}

/* Unknown routes, wrong methods, oversized bodies (server.c calls this). */
static void queue_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    char v[16];
    int bad;

    emu_storage_version(r, NULL, v, &bad);
    if (status == 413)
        emu_storage_error(r, v, 413, "RequestBodyTooLarge",
                          "The request body is too large and exceeds the maximum permissible "
                          "limit.");
    else
        emu_storage_error(r, v, status, code, message);
}

static const struct emu_route queue_routes[] = {
    {"*", "/{path*}", h_queue},
};

static const struct emu_service_def queue_def = {
    .name = "queue",
    .routes = queue_routes,
    .nroutes = sizeof queue_routes / sizeof queue_routes[0],
    .error = queue_route_error,
};

/* The same service over plain http, as Azurite serves it: SharedKey and SAS
 * (spr=https,http) work, bearer tokens are refused as Azure refuses them. */
static const struct emu_service_def queue_http_def = {
    .name = "queue",
    .routes = queue_routes,
    .nroutes = sizeof queue_routes / sizeof queue_routes[0],
    .plain_http = 1,
    .error = queue_route_error,
};

/* ---- hooks ---- */

static void queue_reset(struct emu *e, void *ctx)
{
    struct queue_svc *s = ctx;
    (void)e;
    emu_queue_store_reset(s->store);
}

static cJSON *queue_dump(struct emu *e, void *ctx)
{
    struct queue_svc *s = ctx;
    (void)e;
    return emu_queue_store_dump(s->store);
}

static void queue_svc_free(void *ctx)
{
    struct queue_svc *s = ctx;

    emu_queue_store_free(s->store);
    emu_storage_accounts_cleanup(&s->accounts);
    free(s);
}

enum clc_err emu_queue_put_message(struct emu *e, const char *account, const char *queue,
                                   const char *text, size_t len, int64_t ttl,
                                   struct clc_errinfo *ei)
{
    struct queue_svc *s = NULL;
    struct emu_queue *q;
    struct emu_qmsg *m;
    enum clc_err rc;

    if (len > EMU_QUEUE_MAX_TEXT)
        return clc_errf(ei, CLC_ERR_LIMIT, "message of %zu bytes is over 64 KiB", len);
    if (ttl == 0 || ttl < -1)
        return clc_errf(ei, CLC_ERR_INVALID, "message ttl must be -1 or positive");
    s = emu_component_get(e, COMPONENT);
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "the queue service is not running");
    pthread_mutex_lock(&s->store->mu);
    q = emu_queue_find(s->store, account, queue);
    rc = q ? emu_queue_put(s->store, q, text, len, 0, ttl, emu_now(e), &m, ei)
           : clc_errf(ei, CLC_ERR_NOT_FOUND, "queue %s/%s does not exist", account, queue);
    pthread_mutex_unlock(&s->store->mu);
    return rc;
}

enum clc_err emu_queue_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct queue_svc *s = calloc(1, sizeof *s);
    enum clc_err rc;

    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    s->e = e;
    rc = emu_storage_accounts_load(e, &s->accounts, ei);
    if (rc == CLC_OK)
        rc = emu_queue_store_open(e, &s->store, ei);
    if (rc == CLC_OK)
        rc = emu_at_stop(e, queue_svc_free, s) == CLC_OK
                 ? CLC_OK
                 : clc_errf(ei, CLC_ERR_LIMIT, "queue: too many stop hooks");
    if (rc != CLC_OK) {
        emu_queue_store_free(s->store);
        emu_storage_accounts_cleanup(&s->accounts);
        free(s);
        return clc_err_wrap(ei, rc, "queue service");
    }
    /* From here s is freed by the stop hook. */
    if (emu_component_set(e, COMPONENT, s) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "queue: cannot register the component");
    if (emu_control_register(e, "queue", queue_reset, queue_dump, s) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "queue: cannot register control hooks");
    rc = emu_service_add(e, "queue", &queue_def, emu_config_port(e, "queue"), s, ei);
    if (rc == CLC_OK)
        rc = emu_service_add(e, "queue-http", &queue_http_def, emu_config_port(e, "queue-http"), s,
                             ei);
    return rc;
}
