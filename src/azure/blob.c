/* Blob client for dead-letter containers: list (prefix, paging), get,
 * delete, create container, put block blob (see blob.h), over the shared
 * Storage pipeline. Blob names are percent-encoded in the path, '/' kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "azure/blob.h"
#include "azure/storage_xml.h"
#include "core/clock.h"

#define MAX_NAME 1024
#define MAX_PATH (MAX_NAME * 3 + 128)
#define MAX_LIST_NODES 200000

struct clc_blob {
    struct clc_storage *st;
};

enum clc_err clc_blob_new(const struct clc_storage_opts *o, struct clc_blob **out,
                          struct clc_errinfo *ei)
{
    struct clc_blob *b = NULL;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    b = calloc(1, sizeof *b);
    if (!b)
        return CLC_ERR_NOMEM;
    rc = clc_storage_new(o, &b->st, ei);
    if (rc != CLC_OK) {
        free(b);
        return rc;
    }
    *out = b;
    return CLC_OK;
}

void clc_blob_free(struct clc_blob *b)
{
    if (!b)
        return;
    clc_storage_free(b->st);
    free(b);
}

static enum clc_err container_path(const char *container, struct clc_buf *path,
                                   struct clc_errinfo *ei)
{
    if (!clc_storage_name_ok(container))
        return clc_errf(ei, CLC_ERR_INVALID, "blob: invalid container name '%.64s'",
                        container ? container : "");
    return clc_buf_appendf(path, "/%s", container);
}

/* "/{container}/{name}" with name percent-encoded except '/'. */
static enum clc_err blob_path(const char *container, const char *name, struct clc_buf *path,
                              struct clc_errinfo *ei)
{
    static const char hex[] = "0123456789ABCDEF";
    enum clc_err rc = container_path(container, path, ei);
    size_t n = name ? strlen(name) : 0;

    if (rc != CLC_OK)
        return rc;
    if (n == 0 || n > MAX_NAME || name[0] == '/')
        return clc_errf(ei, CLC_ERR_INVALID,
                        "blob: name empty, over %d bytes or starting "
                        "with '/'",
                        MAX_NAME);
    rc = clc_buf_append_byte(path, '/');
    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return clc_errf(ei, CLC_ERR_INVALID, "blob: name contains a control character");
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
            rc = clc_buf_append_byte(path, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 0x0f]};
            rc = clc_buf_append(path, enc, sizeof enc);
        }
    }
    return rc;
}

void clc_blob_list_cleanup(struct clc_blob_list *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    free(l->next_marker);
    memset(l, 0, sizeof *l);
}

static enum clc_err parse_item(const struct clc_xml *x, const struct clc_xml_node *it,
                               struct clc_blob_item *out, struct clc_errinfo *ei)
{
    const char *name = clc_xml_child_text(x, it, "Name");
    const struct clc_xml_node *props = clc_xml_child(x, it, "Properties");
    const char *len = clc_xml_child_text(x, props, "Content-Length");
    const char *mod = clc_xml_child_text(x, props, "Last-Modified");

    if (!name || !*name)
        return clc_errf(ei, CLC_ERR_PARSE, "blob: list entry without <Name>");
    out->size = -1;
    if (len) {
        char *end = NULL;
        long long v = strtoll(len, &end, 10);
        if (end == len || *end || v < 0)
            return clc_errf(ei, CLC_ERR_PARSE, "blob: <Content-Length> is not a size");
        out->size = v;
    }
    if (mod && clc_time_parse_rfc1123(mod, &out->last_modified) != CLC_OK)
        return clc_errf(ei, CLC_ERR_PARSE, "blob: <Last-Modified> is not an RFC 1123 date");
    out->name = strdup(name);
    return out->name ? CLC_OK : CLC_ERR_NOMEM;
}

static enum clc_err parse_list(const struct clc_http_resp *resp, struct clc_blob_list *out,
                               struct clc_errinfo *ei)
{
    struct clc_xml *x = NULL;
    const struct clc_xml_node *it = NULL;
    const char *next = NULL;
    size_t count = 0;
    enum clc_err rc = clc_xml_enumeration(resp->body.data, resp->body.len, MAX_LIST_NODES, "blob",
                                          "Blobs", "Blob", &x, &it, &count, &next, ei);

    if (rc != CLC_OK)
        goto out;
    out->v = calloc(count ? count : 1, sizeof *out->v);
    if (!out->v) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (; it && rc == CLC_OK; it = clc_xml_next(x, it)) {
        rc = parse_item(x, it, &out->v[out->n], ei);
        out->n++;
    }
    if (rc == CLC_OK && next) {
        out->next_marker = strdup(next);
        if (!out->next_marker)
            rc = CLC_ERR_NOMEM;
    }
out:
    clc_xml_free(x);
    return rc;
}

enum clc_err clc_blob_list(struct clc_blob *b, const char *container, const char *prefix,
                           const char *marker, int maxresults, struct clc_blob_list *out,
                           struct clc_errinfo *ei)
{
    struct clc_storage_param qp[5] = {{"restype", "container"}, {"comp", "list"}};
    size_t nq = 2;
    char maxs[16];
    struct clc_buf path;
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    clc_buf_init(&path, MAX_PATH);
    clc_http_resp_init(&resp);
    if (maxresults < 0 || maxresults > 5000) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "blob: maxresults must be 0..5000");
        goto out;
    }
    rc = container_path(container, &path, ei);
    if (rc != CLC_OK)
        goto out;
    if (prefix && *prefix)
        qp[nq++] = (struct clc_storage_param){"prefix", prefix};
    if (marker && *marker)
        qp[nq++] = (struct clc_storage_param){"marker", marker};
    if (maxresults > 0) {
        snprintf(maxs, sizeof maxs, "%d", maxresults);
        qp[nq++] = (struct clc_storage_param){"maxresults", maxs};
    }
    struct clc_storage_call c = {
        .method = "GET", .path = path.data, .query = qp, .nquery = nq, .idempotent = 1};
    rc = clc_storage_send(b->st, &c, &resp, ei);
    if (rc == CLC_OK)
        rc = parse_list(&resp, out, ei);
    if (rc != CLC_OK)
        clc_blob_list_cleanup(out);
out:
    clc_buf_cleanup(&path);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_blob_get(struct clc_blob *b, const char *container, const char *name,
                          size_t max_bytes, char **data, size_t *len, struct clc_errinfo *ei)
{
    struct clc_buf path;
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    *data = NULL;
    if (len)
        *len = 0;
    clc_buf_init(&path, MAX_PATH);
    clc_http_resp_init(&resp);
    rc = blob_path(container, name, &path, ei);
    if (rc != CLC_OK)
        goto out;
    struct clc_storage_call c = {.method = "GET", .path = path.data, .idempotent = 1};
    rc = clc_storage_send(b->st, &c, &resp, ei);
    if (rc != CLC_OK)
        goto out;
    if (resp.body.len > max_bytes) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "blob: %s/%s is %zu bytes, over the %zu byte limit",
                      container, name, resp.body.len, max_bytes);
        goto out;
    }
    *data = clc_buf_take(&resp.body, len);
    if (!*data)
        rc = CLC_ERR_NOMEM;
out:
    clc_buf_cleanup(&path);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_blob_delete(struct clc_blob *b, const char *container, const char *name,
                             struct clc_errinfo *ei)
{
    struct clc_buf path;
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    clc_buf_init(&path, MAX_PATH);
    clc_http_resp_init(&resp);
    rc = blob_path(container, name, &path, ei);
    if (rc == CLC_OK) {
        struct clc_storage_call c = {.method = "DELETE", .path = path.data, .idempotent = 1};
        rc = clc_storage_send(b->st, &c, &resp, ei);
    }
    clc_buf_cleanup(&path);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_blob_create_container(struct clc_blob *b, const char *container, int *created,
                                       struct clc_errinfo *ei)
{
    static const struct clc_storage_param qp[] = {{"restype", "container"}};
    struct clc_buf path;
    struct clc_http_resp resp;
    struct clc_errinfo local;
    enum clc_err rc = CLC_OK;

    /* The error code tells "exists" from other conflicts. */
    if (!ei) {
        clc_errinfo_clear(&local);
        ei = &local;
    }
    if (created)
        *created = 0;
    clc_buf_init(&path, MAX_PATH);
    clc_http_resp_init(&resp);
    rc = container_path(container, &path, ei);
    if (rc == CLC_OK) {
        struct clc_storage_call c = {
            .method = "PUT", .path = path.data, .query = qp, .nquery = 1, .idempotent = 1};
        rc = clc_storage_send(b->st, &c, &resp, ei);
        if (rc == CLC_OK && created)
            *created = 1;
        else if (rc == CLC_ERR_CONFLICT && strcmp(ei->code, "ContainerAlreadyExists") == 0)
            rc = CLC_OK;
    }
    clc_buf_cleanup(&path);
    clc_http_resp_cleanup(&resp);
    return rc;
}

enum clc_err clc_blob_put(struct clc_blob *b, const char *container, const char *name,
                          const void *data, size_t len, const char *content_type,
                          struct clc_errinfo *ei)
{
    static const char *const hdrs[] = {"x-ms-blob-type: BlockBlob", NULL};
    struct clc_buf path;
    struct clc_http_resp resp;
    enum clc_err rc = CLC_OK;

    clc_buf_init(&path, MAX_PATH);
    clc_http_resp_init(&resp);
    rc = blob_path(container, name, &path, ei);
    if (rc == CLC_OK) {
        /* Put Blob replaces the whole blob: repeating it is harmless. */
        struct clc_storage_call c = {.method = "PUT",
                                     .path = path.data,
                                     .headers = hdrs,
                                     .body = data ? data : "",
                                     .body_len = data ? len : 0,
                                     .content_type =
                                         content_type ? content_type : "application/octet-stream",
                                     .idempotent = 1};
        rc = clc_storage_send(b->st, &c, &resp, ei);
    }
    clc_buf_cleanup(&path);
    clc_http_resp_cleanup(&resp);
    return rc;
}
