/* Azure Storage queue client: queues (create, delete, list, metadata with
 * the approximate message count), messages (put, get, peek, delete by pop
 * receipt, update, clear) and lease helpers for a worker (take a message for
 * a while, extend, complete, release). A stale pop receipt is reported as a
 * lost lease (CLC_ERR_CONFLICT), whichever way the service says it. One
 * client per thread; the credential may be shared. */
#ifndef CLC_QUEUE_H
#define CLC_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "azure/storage.h"

/* Largest message text Azure accepts (bytes, after any base64). */
#define CLC_QUEUE_MAX_TEXT (64 * 1024)
#define CLC_QUEUE_MAX_BATCH 32
/* Visibility timeouts and TTLs are bounded by Azure at 7 days. */
#define CLC_QUEUE_MAX_VISIBILITY (7 * 24 * 3600)
/* messagettl = -1: the message never expires. */
#define CLC_QUEUE_TTL_INFINITE (-1)

struct clc_queue;

/* o->endpoint is the queue service URL (see clc_storage_opts). */
enum clc_err clc_queue_new(const struct clc_storage_opts *o, struct clc_queue **out,
                           struct clc_errinfo *ei);
void clc_queue_free(struct clc_queue *q);

/* ---- queues ---- */

/* Metadata as a NULL-terminated list of alternating names and values
 * ({"k1", "v1", "k2", "v2", NULL}); names are C identifiers. */
enum clc_err clc_queue_create(struct clc_queue *q, const char *queue, const char *const *metadata,
                              int *created, struct clc_errinfo *ei); /* created: 201 vs 204 */
enum clc_err clc_queue_delete(struct clc_queue *q, const char *queue, struct clc_errinfo *ei);

struct clc_queue_meta_item {
    char *name;
    char *value;
};

struct clc_queue_props {
    int64_t approximate_count;
    struct clc_queue_meta_item *meta;
    size_t nmeta;
};
void clc_queue_props_cleanup(struct clc_queue_props *p);

enum clc_err clc_queue_get_metadata(struct clc_queue *q, const char *queue,
                                    struct clc_queue_props *out, struct clc_errinfo *ei);
enum clc_err clc_queue_set_metadata(struct clc_queue *q, const char *queue,
                                    const char *const *metadata, struct clc_errinfo *ei);

struct clc_queue_list {
    char **names;
    size_t n;
    char *next_marker; /* NULL when this was the last page */
};
void clc_queue_list_cleanup(struct clc_queue_list *l);

/* One page; prefix and marker may be NULL; maxresults 0 = the service's
 * default (5000). */
enum clc_err clc_queue_list(struct clc_queue *q, const char *prefix, const char *marker,
                            int maxresults, struct clc_queue_list *out, struct clc_errinfo *ei);

/* ---- messages ---- */

#define CLC_QUEUE_ID_MAX 128
#define CLC_QUEUE_RECEIPT_MAX 256

struct clc_queue_msg {
    char id[CLC_QUEUE_ID_MAX];
    char pop_receipt[CLC_QUEUE_RECEIPT_MAX]; /* empty after peek */
    int64_t insertion_time;                  /* Unix seconds */
    int64_t expiration_time;                 /* INT64_MAX when it never expires */
    int64_t next_visible;                    /* 0 after peek */
    int64_t dequeue_count;                   /* 0 in a put answer */
    char *text;                              /* owned; NULL in a put answer */
    size_t text_len;
};
void clc_queue_msg_cleanup(struct clc_queue_msg *m);

struct clc_queue_msgs {
    struct clc_queue_msg *v;
    size_t n;
};
void clc_queue_msgs_cleanup(struct clc_queue_msgs *l);

/* visibility_s 0..7 d (0 = visible at once); ttl_s 0 = the service default
 * (7 days), CLC_QUEUE_TTL_INFINITE, or 1..; out (optional) gets the id,
 * pop receipt and times. Not retried (a retry could enqueue twice). Text over
 * CLC_QUEUE_MAX_TEXT is CLC_ERR_LIMIT before anything is sent. */
enum clc_err clc_queue_put(struct clc_queue *q, const char *queue, const char *text, size_t len,
                           int64_t visibility_s, int64_t ttl_s, struct clc_queue_msg *out,
                           struct clc_errinfo *ei);

/* Dequeues up to n (1..32) messages, hiding them for visibility_s (0 = the
 * service default of 30 s). An empty queue gives out->n == 0. Not retried
 * (a lost answer would leave messages hidden, not lost). */
enum clc_err clc_queue_get(struct clc_queue *q, const char *queue, int n, int64_t visibility_s,
                           struct clc_queue_msgs *out, struct clc_errinfo *ei);
/* Like get, without hiding or counting a dequeue. */
enum clc_err clc_queue_peek(struct clc_queue *q, const char *queue, int n,
                            struct clc_queue_msgs *out, struct clc_errinfo *ei);

/* CLC_ERR_CONFLICT (lost lease) when the pop receipt is stale or the message
 * is gone: Azure answers 404 MessageNotFound, Azurite 400 PopReceiptMismatch;
 * ei->code keeps the service's code. Use clc_queue_lease_lost() to test. */
enum clc_err clc_queue_delete_message(struct clc_queue *q, const char *queue, const char *id,
                                      const char *pop_receipt, struct clc_errinfo *ei);

/* New visibility (0..7 d) and, when text is not NULL, new content. On success
 * m->pop_receipt and m->next_visible are replaced (the old receipt is dead)
 * and, with text, m->text too. Lost lease as for delete. */
enum clc_err clc_queue_update(struct clc_queue *q, const char *queue, struct clc_queue_msg *m,
                              int64_t visibility_s, const char *text, size_t len,
                              struct clc_errinfo *ei);

enum clc_err clc_queue_clear(struct clc_queue *q, const char *queue, struct clc_errinfo *ei);

/* 1 when (rc, ei) from a message operation means the pop receipt no longer
 * holds: someone else may have the message, or it is already gone. */
int clc_queue_lease_lost(enum clc_err rc, const struct clc_errinfo *ei);

/* ---- leases: at-least-once processing ---- */

struct clc_queue_lease {
    char queue[64];
    struct clc_queue_msg msg;
};
void clc_queue_lease_cleanup(struct clc_queue_lease *l);

/* Takes one message for visibility_s seconds. *got = 0 when the queue is
 * empty (lease untouched). */
enum clc_err clc_queue_lease_take(struct clc_queue *q, const char *queue, int64_t visibility_s,
                                  struct clc_queue_lease *lease, int *got, struct clc_errinfo *ei);
/* Keeps the message hidden visibility_s more seconds from now; the content
 * stays. CLC_ERR_CONFLICT when the lease was lost. */
enum clc_err clc_queue_lease_extend(struct clc_queue *q, struct clc_queue_lease *lease,
                                    int64_t visibility_s, struct clc_errinfo *ei);
/* Deletes the message: processing succeeded. */
enum clc_err clc_queue_lease_complete(struct clc_queue *q, struct clc_queue_lease *lease,
                                      struct clc_errinfo *ei);
/* Makes the message visible again after delay_s (0 = now), for a retry. */
enum clc_err clc_queue_lease_release(struct clc_queue *q, struct clc_queue_lease *lease,
                                     int64_t delay_s, struct clc_errinfo *ei);

#endif
