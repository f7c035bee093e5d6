/* Queue client, queue-level half: the client itself and create, delete,
 * list and metadata (with the approximate message count). Message
 * operations and leases are in queue_msg.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "azure/queue_int.h"
#include "azure/storage_xml.h"

#define MAX_META 64
#define MAX_META_VALUE 4096
#define MAX_LIST_NODES 200000

enum clc_err clc_queue_new(const struct clc_storage_opts *o, struct clc_queue **out,
                           struct clc_errinfo *ei)
{
    struct clc_queue *q = NULL;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    q = calloc(1, sizeof *q);
    if (!q)
        return CLC_ERR_NOMEM;
    rc = clc_storage_new(o, &q->st, ei);
    if (rc != CLC_OK) {
        free(q);
        return rc;
    }
    *out = q;
    return CLC_OK;
}

void clc_queue_free(struct clc_queue *q)
{
    if (!q)
        return;
    clc_storage_free(q->st);
    free(q);
}

enum clc_err clc_queue_check_name(const char *queue, struct clc_errinfo *ei)
{
    if (!clc_storage_name_ok(queue))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "queue: invalid queue name '%.64s' (3-63 of a-z, 0-9, '-')",
                        queue ? queue : "");
    return CLC_OK;
}

/* Metadata names are C identifiers (Azure's rule); values one line of
 * printable ASCII, as HTTP headers carry them. */
static int meta_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return 0;
    return 1;
}

static int meta_value_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > MAX_META_VALUE || (n > 0 && (s[0] == ' ' || s[n - 1] == ' ')))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

/* Header lines "x-ms-meta-k: v" in bufs[], pointers in lines[] (NULL-ended). */
static enum clc_err meta_headers(const char *const *metadata, struct clc_buf *bufs,
                                 const char **lines, struct clc_errinfo *ei)
{
    size_t n = 0;
    for (size_t i = 0; metadata && metadata[i]; i += 2) {
        if (!metadata[i + 1])
            return clc_errf(ei, CLC_ERR_INVALID, "queue: metadata '%.64s' has no value",
                            metadata[i]);
        if (n == MAX_META)
            return clc_errf(ei, CLC_ERR_LIMIT, "queue: more than %d metadata entries", MAX_META);
        if (!meta_name_ok(metadata[i]))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "queue: metadata name '%.64s' is not an "
                            "identifier",
                            metadata[i]);
        if (!meta_value_ok(metadata[i + 1]))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "queue: metadata '%.64s' value must be "
                            "printable ASCII without outer spaces",
                            metadata[i]);
        clc_buf_init(&bufs[n], MAX_META_VALUE + 256);
        if (clc_buf_appendf(&bufs[n], "x-ms-meta-%s: %s", metadata[i], metadata[i + 1]) != CLC_OK)
            return CLC_ERR_NOMEM;
        lines[n] = bufs[n].data;
        n++;
    }
    lines[n] = NULL;
    return CLC_OK;
}

static void meta_bufs_cleanup(struct clc_buf *bufs)
{
    for (size_t i = 0; i < MAX_META; i++)
        clc_buf_cleanup(&bufs[i]);
}

static enum clc_err queue_path(const char *queue, char *out, size_t outlen, struct clc_errinfo *ei)
{
    enum clc_err rc = clc_queue_check_name(queue, ei);
    if (rc == CLC_OK)
        snprintf(out, outlen, "/%s", queue);
    return rc;
}

enum clc_err clc_queue_create(struct clc_queue *q, const char *queue, const char *const *metadata,
                              int *created, struct clc_errinfo *ei)
{
    struct clc_buf bufs[MAX_META] = {0};
    const char *lines[MAX_META + 1];
    struct clc_http_resp resp;
    char path[80];
    enum clc_err rc = CLC_OK;

    if (created)
        *created = 0;
    clc_http_resp_init(&resp);
    rc = queue_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = meta_headers(metadata, bufs, lines, ei);
    if (rc != CLC_OK)
        goto out;
    /* Create is idempotent on the service (204 when it exists alike). */
    struct clc_storage_call c = {.method = "PUT", .path = path, .headers = lines, .idempotent = 1};
    rc = clc_storage_send(q->st, &c, &resp, ei);
    if (rc == CLC_OK && created)
        *created = resp.status == 201;
out:
    meta_bufs_cleanup(bufs);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_queue_delete(struct clc_queue *q, const char *queue, struct clc_errinfo *ei)
{
    struct clc_http_resp resp;
    char path[80];
    enum clc_err rc = CLC_OK;

    clc_http_resp_init(&resp);
    rc = queue_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK) {
        struct clc_storage_call c = {.method = "DELETE", .path = path, .idempotent = 1};
        rc = clc_storage_send(q->st, &c, &resp, ei);
    }
    clc_http_resp_cleanup(&resp);
    return rc;
}

void clc_queue_props_cleanup(struct clc_queue_props *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nmeta; i++) {
        free(p->meta[i].name);
        free(p->meta[i].value);
    }
    free(p->meta);
    memset(p, 0, sizeof *p);
}

static enum clc_err parse_count(const char *v, int64_t *out)
{
    char *end = NULL;
    long long n = 0;
    if (!v || !*v)
        return CLC_ERR_PARSE;
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || *end || n < 0)
        return CLC_ERR_PARSE;
    *out = n;
    return CLC_OK;
}

enum clc_err clc_queue_get_metadata(struct clc_queue *q, const char *queue,
                                    struct clc_queue_props *out, struct clc_errinfo *ei)
{
    static const struct clc_storage_param qp[] = {{"comp", "metadata"}};
    struct clc_http_resp resp;
    char path[80];
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    clc_http_resp_init(&resp);
    rc = queue_path(queue, path, sizeof path, ei);
    if (rc != CLC_OK)
        goto out;
    struct clc_storage_call c = {
        .method = "GET", .path = path, .query = qp, .nquery = 1, .idempotent = 1};
    rc = clc_storage_send(q->st, &c, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (parse_count(clc_http_resp_header(&resp, "x-ms-approximate-messages-count"),
                    &out->approximate_count) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "queue: metadata of '%s' without a valid "
                      "x-ms-approximate-messages-count",
                      queue);
        goto out;
    }
    out->meta = calloc(CLC_HTTP_MAX_HEADERS, sizeof *out->meta);
    if (!out->meta) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < resp.nheaders; i++) {
        const struct clc_http_header *h = &resp.headers[i];
        if (strncasecmp(h->name, "x-ms-meta-", 10) != 0 || !h->name[10])
            continue;
        struct clc_queue_meta_item *m = &out->meta[out->nmeta];
        m->name = strdup(h->name + 10);
        m->value = strdup(h->value);
        out->nmeta++;
        if (!m->name || !m->value) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
out:
    if (rc != CLC_OK)
        clc_queue_props_cleanup(out);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_queue_set_metadata(struct clc_queue *q, const char *queue,
                                    const char *const *metadata, struct clc_errinfo *ei)
{
    static const struct clc_storage_param qp[] = {{"comp", "metadata"}};
    struct clc_buf bufs[MAX_META] = {0};
    const char *lines[MAX_META + 1];
    struct clc_http_resp resp;
    char path[80];
    enum clc_err rc = CLC_OK;

    clc_http_resp_init(&resp);
    rc = queue_path(queue, path, sizeof path, ei);
    if (rc == CLC_OK)
        rc = meta_headers(metadata, bufs, lines, ei);
    if (rc == CLC_OK) {
        /* Replaces the whole set: repeating it gives the same state. */
        struct clc_storage_call c = {.method = "PUT",
                                     .path = path,
                                     .query = qp,
                                     .nquery = 1,
                                     .headers = lines,
                                     .idempotent = 1};
        rc = clc_storage_send(q->st, &c, &resp, ei);
    }
    meta_bufs_cleanup(bufs);
    clc_http_resp_cleanup(&resp);
    return rc;
}

void clc_queue_list_cleanup(struct clc_queue_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->next_marker);
    memset(l, 0, sizeof *l);
}

static enum clc_err parse_list(const struct clc_http_resp *resp, struct clc_queue_list *out,
                               struct clc_errinfo *ei)
{
    struct clc_xml *x = NULL;
    const struct clc_xml_node *it = NULL;
    const char *next = NULL;
    size_t count = 0;
    enum clc_err rc = clc_xml_enumeration(resp->body.data, resp->body.len, MAX_LIST_NODES, "queue",
                                          "Queues", "Queue", &x, &it, &count, &next, ei);

    if (rc != CLC_OK)
        goto out;
    out->names = calloc(count ? count : 1, sizeof *out->names);
    if (!out->names) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (; it; it = clc_xml_next(x, it)) {
        const char *name = clc_xml_child_text(x, it, "Name");
        if (!name || !*name) {
            rc = clc_errf(ei, CLC_ERR_PARSE, "queue: list entry without <Name>");
            goto out;
        }
        out->names[out->n] = strdup(name);
        if (!out->names[out->n]) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        out->n++;
    }
    if (next) {
        out->next_marker = strdup(next);
        if (!out->next_marker)
            rc = CLC_ERR_NOMEM;
    }
out:
    clc_xml_free(x);
    return rc;
}

enum clc_err clc_queue_list(struct clc_queue *q, const char *prefix, const char *marker,
                            int maxresults, struct clc_queue_list *out, struct clc_errinfo *ei)
{
    struct clc_storage_param qp[4] = {{"comp", "list"}};
    size_t nq = 1;
    char maxs[16];
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    clc_http_resp_init(&resp);
    if (maxresults < 0 || maxresults > 5000)
        return clc_errf(ei, CLC_ERR_INVALID, "queue: maxresults must be 0..5000");
    if (prefix && *prefix)
        qp[nq++] = (struct clc_storage_param){"prefix", prefix};
    if (marker && *marker)
        qp[nq++] = (struct clc_storage_param){"marker", marker};
    if (maxresults > 0) {
        snprintf(maxs, sizeof maxs, "%d", maxresults);
        qp[nq++] = (struct clc_storage_param){"maxresults", maxs};
    }
    struct clc_storage_call c = {
        .method = "GET", .path = "", .query = qp, .nquery = nq, .idempotent = 1};
    rc = clc_storage_send(q->st, &c, &resp, ei);
    if (rc == CLC_OK)
        rc = parse_list(&resp, out, ei);
    if (rc != CLC_OK)
        clc_queue_list_cleanup(out);
    clc_http_resp_cleanup(&resp);
    return rc;
}
