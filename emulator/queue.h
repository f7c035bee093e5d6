/* The emulated Storage queue's model, shared by its HTTP front end
 * (queue.c), its store (queue_store.c: queues, messages, visibility and TTL
 * by the emulator clock, persistence per message) and the message body
 * parser (queue_xml.c). Other services may put messages in-process. */
#ifndef EMU_QUEUE_H
#define EMU_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/buf.h"
#include "core/err.h"
#include "emulator/storage.h"

struct emu;

#define EMU_QUEUE_MAX_TEXT 65536 /* bytes of message text */
#define EMU_QUEUE_DEFAULT_TTL 604800
#define EMU_QUEUE_MAX_VISIBILITY 604800

struct emu_qmsg {
    struct emu_qmsg *next, *prev;
    uint64_t seq; /* insertion order, kept across restarts */
    char id[37];
    char pop[32];
    int64_t inserted;
    int64_t expires; /* EMU_STORAGE_NEVER for messagettl=-1 */
    int64_t visible_at;
    int64_t dequeue_count;
    char *text;
    size_t len;
};

struct emu_queue {
    struct emu_queue *next;
    char account[25];
    char name[64];
    struct emu_storage_meta meta;
    struct emu_qmsg *head, *tail;
    size_t count;
    int64_t min_expiry; /* no message expires before this */
    char *dir;          /* <data dir>/storage/queue/<account>/<name>, or NULL */
};

struct emu_queue_store {
    pthread_mutex_t mu; /* guards everything below; never held over network I/O */
    struct emu *e;
    char *dir;                /* <data dir>/storage/queue, NULL in memory */
    struct emu_queue *queues; /* sorted by account, then name */
    uint64_t next_seq;
};

enum clc_err emu_queue_store_open(struct emu *e, struct emu_queue_store **out,
                                  struct clc_errinfo *ei);
void emu_queue_store_free(struct emu_queue_store *s);
/* Drops every queue (and its files). Takes the lock. */
void emu_queue_store_reset(struct emu_queue_store *s);
/* {"<account>": [{"name", "messages", "visible"}]}. Takes the lock. */
cJSON *emu_queue_store_dump(struct emu_queue_store *s);

/* The rest run under s->mu. */
struct emu_queue *emu_queue_find(struct emu_queue_store *s, const char *account, const char *name);
/* New queue with meta moved in; CLC_ERR_CONFLICT when it exists. */
enum clc_err emu_queue_create(struct emu_queue_store *s, const char *account, const char *name,
                              struct emu_storage_meta *meta, struct emu_queue **out,
                              struct clc_errinfo *ei);
enum clc_err emu_queue_delete(struct emu_queue_store *s, struct emu_queue *q,
                              struct clc_errinfo *ei);
enum clc_err emu_queue_set_meta(struct emu_queue_store *s, struct emu_queue *q,
                                struct emu_storage_meta *meta, struct clc_errinfo *ei);
/* Removes messages whose time to live has passed. */
void emu_queue_purge(struct emu_queue_store *s, struct emu_queue *q, int64_t now);
/* A new message (text copied); *out stays owned by the queue. */
enum clc_err emu_queue_put(struct emu_queue_store *s, struct emu_queue *q, const char *text,
                           size_t len, int64_t visibility, int64_t ttl, int64_t now,
                           struct emu_qmsg **out, struct clc_errinfo *ei);
/* The same with the text handed over: *text (malloc'd, len bytes plus a
 * NUL) becomes the message's and is set to NULL; on failure it stays. */
enum clc_err emu_queue_put_owned(struct emu_queue_store *s, struct emu_queue *q, char **text,
                                 size_t len, int64_t visibility, int64_t ttl, int64_t now,
                                 struct emu_qmsg **out, struct clc_errinfo *ei);
/* Up to n visible messages, each made invisible for `visibility` seconds
 * with a new pop receipt and one more dequeue; out[] gets them in order. */
size_t emu_queue_dequeue(struct emu_queue_store *s, struct emu_queue *q, size_t n,
                         int64_t visibility, int64_t now, struct emu_qmsg **out);
/* The message with this id whose current pop receipt is pop; NULL otherwise. */
struct emu_qmsg *emu_queue_msg_find(struct emu_queue *q, const char *id, const char *pop);
enum clc_err emu_queue_msg_delete(struct emu_queue_store *s, struct emu_queue *q,
                                  struct emu_qmsg *m, struct clc_errinfo *ei);
/* New visibility, new pop receipt, and new text when text is not NULL. */
enum clc_err emu_queue_msg_update(struct emu_queue_store *s, struct emu_queue *q,
                                  struct emu_qmsg *m, const char *text, size_t len,
                                  int64_t visibility, int64_t now, struct clc_errinfo *ei);
enum clc_err emu_queue_clear(struct emu_queue_store *s, struct emu_queue *q,
                             struct clc_errinfo *ei);

/* Parses <QueueMessage><MessageText>text</MessageText></QueueMessage>;
 * *text is malloc'd (unescaped). CLC_ERR_PARSE with a reason in ei. */
enum clc_err emu_queue_parse_message(const char *body, size_t len, char **text, size_t *text_len,
                                     struct clc_errinfo *ei);

/* Appends one <QueueMessage> element: id and times, then the pop receipt
 * and next-visible time, the dequeue count and the (escaped) text as asked. */
enum clc_err emu_queue_msg_xml(struct clc_buf *b, const struct emu_qmsg *m, int with_receipt,
                               int with_count, int with_text);
/* The List Queues document for account (under s->mu): names in order from
 * marker ("/{account}/{queue}" or a bare name), prefix filter, at most
 * maxresults (0 = 5000, and no <MaxResults> element), metadata if asked. */
enum clc_err emu_queue_list_xml(struct emu_queue_store *s, const char *account, const char *host,
                                const char *prefix, const char *marker, long long maxresults,
                                int with_meta, struct clc_buf *b);

/* In-process put for other emulated services (Event Grid's queue
 * destination): the queue must exist. ttl -1 = never expires.
 * CLC_ERR_NOT_FOUND without the queue, CLC_ERR_LIMIT over 64 KiB. */
enum clc_err emu_queue_put_message(struct emu *e, const char *account, const char *queue,
                                   const char *text, size_t len, int64_t ttl,
                                   struct clc_errinfo *ei);

#endif
