/* Azure Blob storage client, as much as Event Grid dead-letters need: list a
 * container (prefix, paging), read a blob, delete it; plus create container
 * and put block blob for tools and tests. Same credentials and pipeline as
 * the queue client. One client per thread. */
#ifndef CLC_BLOB_H
#define CLC_BLOB_H

#include <stddef.h>
#include <stdint.h>
#include "azure/storage.h"

struct clc_blob;

/* o->endpoint is the blob service URL ("https://{account}.blob.core.windows.net"
 * or path-style "http://127.0.0.1:10000/devstoreaccount1"). */
enum clc_err clc_blob_new(const struct clc_storage_opts *o, struct clc_blob **out,
                          struct clc_errinfo *ei);
void clc_blob_free(struct clc_blob *b);

struct clc_blob_item {
    char *name;
    int64_t size;          /* Content-Length; -1 when not given */
    int64_t last_modified; /* Unix seconds; 0 when not given */
};

struct clc_blob_list {
    struct clc_blob_item *v;
    size_t n;
    char *next_marker; /* NULL on the last page */
};
void clc_blob_list_cleanup(struct clc_blob_list *l);

/* One page of blobs whose names start with prefix (NULL = all); marker from
 * the previous page or NULL; maxresults 0 = the service default (5000). */
enum clc_err clc_blob_list(struct clc_blob *b, const char *container, const char *prefix,
                           const char *marker, int maxresults, struct clc_blob_list *out,
                           struct clc_errinfo *ei);

/* Reads a blob of at most max_bytes (CLC_ERR_LIMIT beyond). *data is
 * malloc'd and NUL-terminated. */
enum clc_err clc_blob_get(struct clc_blob *b, const char *container, const char *name,
                          size_t max_bytes, char **data, size_t *len, struct clc_errinfo *ei);

enum clc_err clc_blob_delete(struct clc_blob *b, const char *container, const char *name,
                             struct clc_errinfo *ei);

/* *created = 0 when it already existed (409 ContainerAlreadyExists). */
enum clc_err clc_blob_create_container(struct clc_blob *b, const char *container, int *created,
                                       struct clc_errinfo *ei);
enum clc_err clc_blob_put(struct clc_blob *b, const char *container, const char *name,
                          const void *data, size_t len, const char *content_type,
                          struct clc_errinfo *ei);

#endif
