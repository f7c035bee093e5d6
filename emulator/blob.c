/* The emulated Blob service ("blob", HTTPS), as much as Event Grid's
 * dead-letter destination and its readers need: containers (create, get
 * properties, delete, list), block blobs (put, get, delete, list with prefix)
 * on Azurite's path-style URLs, with the Storage auth schemes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "emulator/blob.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define LIST_MAX_RESULTS 5000
#define XML_MAX ((size_t)16 * 1024 * 1024)
#define BLOB_NAME_MAX 1024

struct blob_svc {
    struct emu *e;
    struct emu_storage_accounts accounts;
    struct emu_blob_store *store;
};

/* Found by other emulated services (Event Grid) through the core. */
#define COMPONENT "blob"

struct breq {
    struct emu_req *r;
    struct blob_svc *s;
    struct emu_storage_query q;
    char version[16];
    const struct emu_storage_account *acct;
    char *container; /* NULL at account level */
    char *blob;      /* NULL at container level */
    int64_t now;
};

static const char XML_DECL[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

static void internal_error(struct breq *x, const char *what)
{
    clc_log(CLC_LOG_ERROR, "emu.blob.internal", CLC_LS("reason", what),
            CLC_LS("request_id", x->r->request_id));
    emu_storage_error(x->r, x->version, 500, "InternalError",
                      "The server encountered an internal error. Please retry the request.");
}

static void container_not_found(struct breq *x)
{
    emu_storage_error(x->r, x->version, 404, "ContainerNotFound",
                      "The specified container does not exist.");
}

static int authorize(struct breq *x, char rtype, const char *acct_perms, const char *svc_perms)
{
    struct emu_storage_op op = {'b', rtype, acct_perms, svc_perms, x->container, x->blob};
    return emu_storage_authorize(x->r, x->acct, &x->q, &op, x->version);
}

static int maxresults(struct breq *x, long long *out)
{
    const char *v = emu_storage_query_get(&x->q, "maxresults");
    char *end = NULL;

    *out = LIST_MAX_RESULTS;
    if (v == NULL)
        return 1;
    *out = strtoll(v, &end, 10);
    if (v[0] == '\0' || *end != '\0') {
        emu_storage_bad_query(x->r, x->version, "maxresults", v, "The value is not an integer.");
        return 0;
    }
    if (*out < 1 || *out > LIST_MAX_RESULTS) {
        emu_storage_out_of_range(x->r, x->version, "maxresults", v, 1, LIST_MAX_RESULTS);
        return 0;
    }
    return 1;
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

static enum clc_err list_head(struct breq *x, struct clc_buf *b, const char *extra_attr,
                              long long maxr)
{
    const char *host = emu_req_header(x->r, "Host");
    const char *prefix = emu_storage_query_get(&x->q, "prefix");
    const char *marker = emu_storage_query_get(&x->q, "marker");
    enum clc_err rc;

    host = host ? host : "127.0.0.1";
    rc = clc_buf_appendf(b, "%s<EnumerationResults ServiceEndpoint=\"https://", XML_DECL);
    if (rc == CLC_OK)
        rc = emu_storage_xml_escape(b, host, strlen(host));
    if (rc == CLC_OK)
        rc = clc_buf_appendf(b, "/%s/\"%s>", x->acct->name, extra_attr);
    if (rc == CLC_OK && prefix != NULL)
        rc = elem(b, "Prefix", prefix);
    if (rc == CLC_OK && marker != NULL)
        rc = elem(b, "Marker", marker);
    if (rc == CLC_OK && emu_storage_query_get(&x->q, "maxresults") != NULL)
        rc = clc_buf_appendf(b, "<MaxResults>%lld</MaxResults>", maxr);
    return rc;
}

static enum clc_err meta_xml(struct clc_buf *b, const struct emu_storage_meta *m)
{
    enum clc_err rc = clc_buf_append_str(b, "<Metadata>");

    for (size_t i = 0; i < m->n && rc == CLC_OK; i++)
        rc = elem(b, m->name[i], m->value[i]);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(b, "</Metadata>");
    return rc;
}

static int include_metadata(struct breq *x)
{
    const char *inc = emu_storage_query_get(&x->q, "include");
    return inc != NULL && strstr(inc, "metadata") != NULL;
}

/* ---- account level ---- */

static void list_containers(struct breq *x)
{
    const char *prefix = emu_storage_query_get(&x->q, "prefix");
    const char *marker = emu_storage_query_get(&x->q, "marker");
    long long maxr;
    struct clc_buf b;
    enum clc_err rc;
    const char *next = NULL;
    char t[40];
    long long k = 0;

    if (!maxresults(x, &maxr) || !authorize(x, 's', "l", NULL))
        return;
    clc_buf_init(&b, XML_MAX);
    rc = list_head(x, &b, "", maxr);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&b, "<Containers>");
    pthread_mutex_lock(&x->s->store->mu);
    for (struct emu_container *c = x->s->store->containers; c && rc == CLC_OK; c = c->next) {
        if (strcmp(c->account, x->acct->name) != 0 ||
            (prefix && strncmp(c->name, prefix, strlen(prefix)) != 0) ||
            (marker && strcmp(c->name, marker) < 0))
            continue;
        if (k++ == maxr) {
            next = c->name;
            break;
        }
        emu_storage_time(c->created, t);
        rc = clc_buf_appendf(&b,
                             "<Container><Name>%s</Name><Properties><Last-Modified>%s"
                             "</Last-Modified><Etag>\"%s\"</Etag><LeaseStatus>unlocked"
                             "</LeaseStatus><LeaseState>available</LeaseState></Properties>",
                             c->name, t, c->etag);
        if (rc == CLC_OK && include_metadata(x))
            rc = meta_xml(&b, &c->meta);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&b, "</Container>");
    }
    if (rc == CLC_OK)
        rc = next ? clc_buf_appendf(&b, "</Containers><NextMarker>%s</NextMarker>", next)
                  : clc_buf_append_str(&b, "</Containers><NextMarker />");
    pthread_mutex_unlock(&x->s->store->mu);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&b, "</EnumerationResults>");
    if (rc == CLC_OK)
        emu_storage_reply(x->r, x->version, 200, clc_buf_str(&b), b.len, NULL);
    else
        internal_error(x, "list too large");
    clc_buf_cleanup(&b);
}

/* ---- container level ---- */

static void create_container(struct breq *x)
{
    struct emu_storage_meta meta;
    struct emu_container *c = NULL;
    struct clc_errinfo ei = {0};
    enum clc_err rc;
    char etag[40], lm[80], t[40];

    if (!authorize(x, 'c', "cw", NULL) || !emu_storage_meta_from_request(x->r, x->version, &meta))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    rc = emu_container_create(x->s->store, x->acct->name, x->container, &meta, x->now, &c, &ei);
    if (rc == CLC_OK) {
        snprintf(etag, sizeof etag, "ETag: \"%s\"", c->etag);
        emu_storage_time(c->created, t);
        snprintf(lm, sizeof lm, "Last-Modified: %s", t);
    }
    pthread_mutex_unlock(&x->s->store->mu);
    emu_storage_meta_cleanup(&meta);
    if (rc == CLC_ERR_CONFLICT) {
        emu_storage_error(x->r, x->version, 409, "ContainerAlreadyExists",
                          "The specified container already exists.");
    } else if (rc != CLC_OK) {
        internal_error(x, ei.msg);
    } else {
        const char *h[] = {etag, lm, NULL};
        emu_storage_reply(x->r, x->version, 201, NULL, 0, h);
    }
}

static void container_properties(struct breq *x)
{
    struct emu_container *c;
    char etag[40], lm[80], t[40], **lines = NULL;
    const char *h[EMU_STORAGE_MAX_META + 6];
    size_t k = 0;

    if (!authorize(x, 'c', "r", NULL))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    if (c != NULL) {
        snprintf(etag, sizeof etag, "ETag: \"%s\"", c->etag);
        emu_storage_time(c->created, t);
        snprintf(lm, sizeof lm, "Last-Modified: %s", t);
        lines = emu_storage_meta_headers(&c->meta);
    }
    pthread_mutex_unlock(&x->s->store->mu);
    if (c == NULL) {
        container_not_found(x);
        return;
    }
    if (lines == NULL) {
        internal_error(x, "out of memory");
        return;
    }
    h[k++] = etag;
    h[k++] = lm;
    h[k++] = "x-ms-lease-status: unlocked";
    h[k++] = "x-ms-lease-state: available";
    for (size_t i = 0; lines[i] != NULL && k < EMU_STORAGE_MAX_META + 5; i++)
        h[k++] = lines[i];
    h[k] = NULL;
    emu_storage_reply(x->r, x->version, 200, NULL, 0, h);
    emu_storage_strv_free(lines);
}

static void delete_container(struct breq *x)
{
    struct emu_container *c;

    if (!authorize(x, 'c', "d", NULL))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    if (c != NULL)
        emu_container_delete(x->s->store, c);
    pthread_mutex_unlock(&x->s->store->mu);
    if (c == NULL)
        container_not_found(x);
    else
        emu_storage_reply(x->r, x->version, 202, NULL, 0, NULL);
}

static void list_blobs(struct breq *x)
{
    const char *prefix = emu_storage_query_get(&x->q, "prefix");
    const char *marker = emu_storage_query_get(&x->q, "marker");
    struct emu_container *c;
    long long maxr, k = 0;
    struct clc_buf b;
    enum clc_err rc;
    char attr[128], ct[40], lm[40];
    const char *next = NULL;

    if (!maxresults(x, &maxr) || !authorize(x, 'c', "l", "l"))
        return;
    snprintf(attr, sizeof attr, " ContainerName=\"%s\"", x->container);
    clc_buf_init(&b, XML_MAX);
    rc = list_head(x, &b, attr, maxr);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&b, "<Blobs>");
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    for (struct emu_blob *bl = c ? c->blobs : NULL; bl != NULL && rc == CLC_OK; bl = bl->next) {
        if ((prefix && strncmp(bl->name, prefix, strlen(prefix)) != 0) ||
            (marker && strcmp(bl->name, marker) < 0))
            continue;
        if (k++ == maxr) {
            next = bl->name;
            break;
        }
        emu_storage_time(bl->created, ct);
        emu_storage_time(bl->modified, lm);
        rc = clc_buf_append_str(&b, "<Blob>");
        if (rc == CLC_OK)
            rc = elem(&b, "Name", bl->name);
        if (rc == CLC_OK)
            rc = clc_buf_appendf(&b,
                                 "<Properties><Creation-Time>%s</Creation-Time><Last-Modified>%s"
                                 "</Last-Modified><Etag>\"%s\"</Etag><Content-Length>%zu"
                                 "</Content-Length><Content-Type>",
                                 ct, lm, bl->etag, bl->len);
        if (rc == CLC_OK)
            rc = emu_storage_xml_escape(&b, bl->content_type, strlen(bl->content_type));
        if (rc == CLC_OK)
            rc = clc_buf_appendf(&b,
                                 "</Content-Type><Content-MD5>%s</Content-MD5><BlobType>BlockBlob"
                                 "</BlobType><AccessTier>Hot</AccessTier><LeaseStatus>unlocked"
                                 "</LeaseStatus><LeaseState>available</LeaseState>"
                                 "<ServerEncrypted>true</ServerEncrypted></Properties>",
                                 bl->md5);
        if (rc == CLC_OK && include_metadata(x))
            rc = meta_xml(&b, &bl->meta);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(&b, "</Blob>");
    }
    if (rc == CLC_OK && next != NULL) {
        rc = clc_buf_append_str(&b, "</Blobs>");
        if (rc == CLC_OK)
            rc = elem(&b, "NextMarker", next);
    } else if (rc == CLC_OK) {
        rc = clc_buf_append_str(&b, "</Blobs><NextMarker />");
    }
    pthread_mutex_unlock(&x->s->store->mu);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&b, "</EnumerationResults>");
    if (c == NULL)
        container_not_found(x);
    else if (rc != CLC_OK)
        internal_error(x, "list too large");
    else
        emu_storage_reply(x->r, x->version, 200, clc_buf_str(&b), b.len, NULL);
    clc_buf_cleanup(&b);
}

/* ---- blob level ---- */

static void put_blob(struct breq *x)
{
    const char *type = emu_req_header(x->r, "x-ms-blob-type");
    const char *ct = emu_req_header(x->r, "x-ms-blob-content-type");
    const char *md5 = emu_req_header(x->r, "Content-MD5");
    struct emu_storage_meta meta;
    struct emu_container *c;
    struct emu_blob *b = NULL;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;
    char etag[40], lm[80], cmd5[64], t[40];
    int mismatch = 0;

    if (type == NULL || strcmp(type, "BlockBlob") != 0) {
        const char *d[] = {"HeaderName", "x-ms-blob-type", NULL};
        emu_storage_error_ex(x->r, x->version, 400,
                             type ? "InvalidHeaderValue" : "MissingRequiredHeader",
                             type ? "The emulator stores only BlockBlob blobs."
                                  : "An HTTP header that's mandatory for this request is not "
                                    "specified.",
                             d, NULL);
        return;
    }
    if (ct == NULL)
        ct = emu_req_header(x->r, "Content-Type");
    if (!authorize(x, 'o', "cw", "cw") || !emu_storage_meta_from_request(x->r, x->version, &meta))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    if (c != NULL) {
        rc = emu_blob_write(x->s->store, c, x->blob, x->r->body, x->r->body_len, ct, &meta, x->now,
                            &b, &ei);
        /* The check runs on what was stored; a mismatch takes the blob back. */
        if (rc == CLC_OK && md5 != NULL && strcmp(md5, b->md5) != 0) {
            mismatch = 1;
            emu_blob_delete(x->s->store, c, b, &ei);
            b = NULL;
        }
        if (b != NULL) {
            snprintf(etag, sizeof etag, "ETag: \"%s\"", b->etag);
            emu_storage_time(b->modified, t);
            snprintf(lm, sizeof lm, "Last-Modified: %s", t);
            snprintf(cmd5, sizeof cmd5, "Content-MD5: %s", b->md5);
        }
    }
    pthread_mutex_unlock(&x->s->store->mu);
    emu_storage_meta_cleanup(&meta);
    if (c == NULL) {
        container_not_found(x);
    } else if (mismatch) {
        emu_storage_error(x->r, x->version, 400, "Md5Mismatch",
                          "The MD5 value specified in the request did not match with the MD5 "
                          "value calculated by the server.");
    } else if (rc != CLC_OK) {
        internal_error(x, ei.msg);
    } else {
        const char *h[] = {etag, lm, cmd5, "x-ms-request-server-encrypted: true", NULL};
        emu_storage_reply(x->r, x->version, 201, NULL, 0, h);
    }
}

static void get_blob(struct breq *x)
{
    struct emu_container *c;
    struct emu_blob *b = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    char etag[40], lm[80], ct[160], cr[80], cmd5[64], t[40], **lines = NULL;
    const char *h[EMU_STORAGE_MAX_META + 10];
    size_t k = 0;

    if (!authorize(x, 'o', "r", "r"))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    b = c ? emu_blob_find(c, x->blob) : NULL;
    if (b != NULL && (data = malloc(b->len + 1)) != NULL &&
        (lines = emu_storage_meta_headers(&b->meta)) != NULL) {
        memcpy(data, b->data, b->len);
        len = b->len;
        snprintf(etag, sizeof etag, "ETag: \"%s\"", b->etag);
        emu_storage_time(b->modified, t);
        snprintf(lm, sizeof lm, "Last-Modified: %s", t);
        emu_storage_time(b->created, t);
        snprintf(cr, sizeof cr, "x-ms-creation-time: %s", t);
        snprintf(cmd5, sizeof cmd5, "Content-MD5: %s", b->md5);
        snprintf(ct, sizeof ct, "%s", b->content_type);
    }
    pthread_mutex_unlock(&x->s->store->mu);
    if (c == NULL) {
        container_not_found(x);
    } else if (b == NULL) {
        emu_storage_error(x->r, x->version, 404, "BlobNotFound",
                          "The specified blob does not exist.");
    } else if (data == NULL || lines == NULL) {
        internal_error(x, "out of memory");
    } else {
        const char *vline = NULL;
        char vbuf[48];
        h[k++] = etag;
        h[k++] = lm;
        h[k++] = cr;
        h[k++] = cmd5;
        h[k++] = "x-ms-blob-type: BlockBlob";
        h[k++] = "x-ms-lease-status: unlocked";
        h[k++] = "x-ms-server-encrypted: true";
        for (size_t i = 0; lines[i] != NULL && k < EMU_STORAGE_MAX_META + 8; i++)
            h[k++] = lines[i];
        snprintf(vbuf, sizeof vbuf, "x-ms-version: %s", x->version);
        vline = vbuf;
        h[k++] = vline;
        h[k] = NULL;
        /* Not emu_storage_reply: the body is the blob, with its own type. */
        emu_reply(x->r, 200, ct, data, len, h);
    }
    emu_storage_strv_free(lines);
    free(data);
}

static void delete_blob(struct breq *x)
{
    struct emu_container *c;
    struct emu_blob *b = NULL;
    struct clc_errinfo ei = {0};
    enum clc_err rc = CLC_OK;

    if (!authorize(x, 'o', "d", "d"))
        return;
    pthread_mutex_lock(&x->s->store->mu);
    c = emu_container_find(x->s->store, x->acct->name, x->container);
    b = c ? emu_blob_find(c, x->blob) : NULL;
    if (b != NULL)
        rc = emu_blob_delete(x->s->store, c, b, &ei);
    pthread_mutex_unlock(&x->s->store->mu);
    if (c == NULL)
        container_not_found(x);
    else if (b == NULL)
        emu_storage_error(x->r, x->version, 404, "BlobNotFound",
                          "The specified blob does not exist.");
    else if (rc != CLC_OK)
        internal_error(x, ei.msg);
    else
        emu_storage_reply(x->r, x->version, 202, NULL, 0, NULL);
}

/* ---- dispatch ---- */

/* "/account[/container[/blob/name...]]" from the decoded path. */
static int split_path(struct breq *x, char **account)
{
    const char *p = x->r->path, *s;

    while (*p == '/')
        p++;
    s = p + strcspn(p, "/");
    *account = strndup(p, (size_t)(s - p));
    if (*account == NULL)
        return 0;
    if (*s == '/')
        s++;
    if (*s == '\0')
        return 1;
    p = s;
    s = p + strcspn(p, "/");
    x->container = strndup(p, (size_t)(s - p));
    if (x->container == NULL)
        return 0;
    if (*s == '/' && s[1] != '\0') {
        x->blob = strdup(s + 1);
        if (x->blob == NULL)
            return 0;
    }
    return 1;
}

static void dispatch(struct breq *x)
{
    const char *m = x->r->method;
    const char *restype = emu_storage_query_get(&x->q, "restype");
    const char *comp = emu_storage_query_get(&x->q, "comp");
    int get = strcmp(m, "GET") == 0, head = strcmp(m, "HEAD") == 0;

    if (x->container == NULL) {
        if (get && comp != NULL && strcmp(comp, "list") == 0)
            list_containers(x);
        else
            emu_storage_error(x->r, x->version, 400, "InvalidQueryParameterValue",
                              "This emulator serves only comp=list at the account level.");
        return;
    }
    if (!emu_storage_name_ok(x->container)) {
        emu_storage_error(x->r, x->version, 400, "InvalidResourceName",
                          "The specifed resource name contains invalid characters.");
        return;
    }
    if (x->blob == NULL) {
        if (restype == NULL || strcmp(restype, "container") != 0)
            emu_storage_bad_query(x->r, x->version, "restype", restype ? restype : "",
                                  "Container requests need restype=container.");
        else if (comp != NULL && strcmp(comp, "list") == 0 && get)
            list_blobs(x);
        else if (comp != NULL)
            emu_storage_bad_query(x->r, x->version, "comp", comp,
                                  "The emulator supports comp=list on a container.");
        else if (strcmp(m, "PUT") == 0)
            create_container(x);
        else if (get || head)
            container_properties(x);
        else if (strcmp(m, "DELETE") == 0)
            delete_container(x);
        else
            emu_storage_error(x->r, x->version, 405, "UnsupportedHttpVerb",
                              "The resource doesn't support specified Http Verb.");
        return;
    }
    if (strlen(x->blob) > BLOB_NAME_MAX) {
        emu_storage_error(x->r, x->version, 400, "InvalidResourceName",
                          "The specifed resource name length is not within the permissible "
                          "limits.");
        return;
    }
    if (comp != NULL)
        emu_storage_bad_query(x->r, x->version, "comp", comp,
                              "The emulator does not support this operation on a blob.");
    else if (strcmp(m, "PUT") == 0)
        put_blob(x);
    else if (get || head)
        get_blob(x);
    else if (strcmp(m, "DELETE") == 0)
        delete_blob(x);
    else
        emu_storage_error(x->r, x->version, 405, "UnsupportedHttpVerb",
                          "The resource doesn't support specified Http Verb.");
}

static void h_blob(struct emu_req *r)
{
    struct breq x;
    char *account = NULL;
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
        const char *d[] = {"HeaderName", "x-ms-version", NULL};
        emu_storage_error_ex(r, x.version, 400, "InvalidHeaderValue",
                             "The value for one of the HTTP headers is not in the correct format.",
                             d, NULL);
        goto out;
    }
    if (!split_path(&x, &account) || account[0] == '\0') {
        emu_storage_error(r, x.version, 400, "InvalidUri",
                          "The requested URI does not represent any resource on the server.");
        goto out;
    }
    x.acct = emu_storage_account_find(&x.s->accounts, account);
    if (x.acct == NULL) {
        emu_storage_error(r, x.version, 404, "ResourceNotFound",
                          "The specified resource does not exist (unknown storage account).");
        goto out;
    }
    dispatch(&x);
out:
    free(account);
    free(x.container);
    free(x.blob);
    emu_storage_query_cleanup(&x.q);
}

static void blob_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    char v[16];
    int bad;

    emu_storage_version(r, NULL, v, &bad);
    emu_storage_error(r, v, status, status == 413 ? "RequestBodyTooLarge" : code,
                      status == 413 ? "The request body is too large and exceeds the maximum "
                                      "permissible limit."
                                    : message);
}

static const struct emu_route blob_routes[] = {
    {"*", "/{path*}", h_blob},
};

static const struct emu_service_def blob_def = {
    .name = "blob",
    .routes = blob_routes,
    .nroutes = sizeof blob_routes / sizeof blob_routes[0],
    .error = blob_route_error,
};

static void blob_reset(struct emu *e, void *ctx)
{
    struct blob_svc *s = ctx;
    (void)e;
    emu_blob_store_reset(s->store);
}

static cJSON *blob_dump(struct emu *e, void *ctx)
{
    struct blob_svc *s = ctx;
    (void)e;
    return emu_blob_store_dump(s->store);
}

static void blob_svc_free(void *ctx)
{
    struct blob_svc *s = ctx;

    emu_blob_store_free(s->store);
    emu_storage_accounts_cleanup(&s->accounts);
    free(s);
}

enum clc_err emu_blob_put(struct emu *e, const char *account, const char *container,
                          const char *name, const void *data, size_t len, const char *content_type,
                          struct clc_errinfo *ei)
{
    struct blob_svc *s = NULL;
    struct emu_container *c;
    struct emu_blob *b;
    enum clc_err rc;

    if (name == NULL || name[0] == '\0' || strlen(name) > BLOB_NAME_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "blob name must be 1..%d characters", BLOB_NAME_MAX);
    s = emu_component_get(e, COMPONENT);
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "the blob service is not running");
    pthread_mutex_lock(&s->store->mu);
    c = emu_container_find(s->store, account, container);
    rc = c ? emu_blob_write(s->store, c, name, data, len, content_type, NULL, emu_now(e), &b, ei)
           : clc_errf(ei, CLC_ERR_NOT_FOUND, "container %s/%s does not exist", account, container);
    pthread_mutex_unlock(&s->store->mu);
    return rc;
}

enum clc_err emu_blob_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct blob_svc *s = calloc(1, sizeof *s);
    enum clc_err rc;

    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    s->e = e;
    rc = emu_storage_accounts_load(e, &s->accounts, ei);
    if (rc == CLC_OK)
        rc = emu_blob_store_open(e, &s->store, ei);
    if (rc == CLC_OK)
        rc = emu_at_stop(e, blob_svc_free, s) == CLC_OK
                 ? CLC_OK
                 : clc_errf(ei, CLC_ERR_LIMIT, "blob: too many stop hooks");
    if (rc != CLC_OK) {
        emu_blob_store_free(s->store);
        emu_storage_accounts_cleanup(&s->accounts);
        free(s);
        return clc_err_wrap(ei, rc, "blob service");
    }
    if (emu_component_set(e, COMPONENT, s) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "blob: cannot register the component");
    if (emu_control_register(e, "blob", blob_reset, blob_dump, s) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INTERNAL, "blob: cannot register control hooks");
    return emu_service_add(e, "blob", &blob_def, emu_config_port(e, "blob"), s, ei);
}
