/* The emulated Blob storage's model (enough for Event Grid's dead-letter
 * container): containers of block blobs, shared by the HTTP front end
 * (blob.c) and the store (blob_store.c: memory, one file per blob with a data
 * dir). Other services may write blobs in-process. */
#ifndef EMU_BLOB_H
#define EMU_BLOB_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "emulator/storage.h"

struct emu;

struct emu_blob {
    struct emu_blob *next; /* sorted by name */
    char *name;
    unsigned char *data;
    size_t len;
    char content_type[128];
    char md5[32];  /* base64 of the MD5 of data */
    char etag[24]; /* "0x8D..." without quotes */
    int64_t created, modified;
    char file[37]; /* file id under the container's directory */
    struct emu_storage_meta meta;
};

struct emu_container {
    struct emu_container *next; /* sorted by account, then name */
    char account[25];
    char name[64];
    char etag[24];
    int64_t created;
    struct emu_storage_meta meta;
    struct emu_blob *blobs;
    size_t nblobs;
    char *dir; /* NULL in memory */
};

struct emu_blob_store {
    pthread_mutex_t mu; /* guards everything below */
    struct emu *e;
    char *dir; /* <data dir>/storage/blob, or NULL */
    struct emu_container *containers;
};

enum clc_err emu_blob_store_open(struct emu *e, struct emu_blob_store **out,
                                 struct clc_errinfo *ei);
void emu_blob_store_free(struct emu_blob_store *s);
void emu_blob_store_reset(struct emu_blob_store *s);
/* {"<account>": [{"name", "blobs": [names]}]}. Takes the lock. */
cJSON *emu_blob_store_dump(struct emu_blob_store *s);

/* The rest run under s->mu. */
struct emu_container *emu_container_find(struct emu_blob_store *s, const char *account,
                                         const char *name);
/* meta is moved in. CLC_ERR_CONFLICT when it exists. */
enum clc_err emu_container_create(struct emu_blob_store *s, const char *account, const char *name,
                                  struct emu_storage_meta *meta, int64_t now,
                                  struct emu_container **out, struct clc_errinfo *ei);
void emu_container_delete(struct emu_blob_store *s, struct emu_container *c);
struct emu_blob *emu_blob_find(struct emu_container *c, const char *name);
/* Creates or replaces a block blob; data copied, meta moved in. */
enum clc_err emu_blob_write(struct emu_blob_store *s, struct emu_container *c, const char *name,
                            const void *data, size_t len, const char *content_type,
                            struct emu_storage_meta *meta, int64_t now, struct emu_blob **out,
                            struct clc_errinfo *ei);
enum clc_err emu_blob_delete(struct emu_blob_store *s, struct emu_container *c, struct emu_blob *b,
                             struct clc_errinfo *ei);

/* In-process write for other services (Event Grid's dead-letter): the
 * container must exist (CLC_ERR_NOT_FOUND otherwise). */
enum clc_err emu_blob_put(struct emu *e, const char *account, const char *container,
                          const char *name, const void *data, size_t len, const char *content_type,
                          struct clc_errinfo *ei);

#endif
