/* Internals the queue client's two halves share: the client struct, name
 * checks and the metadata headers. Not for use outside src/azure/queue*.c. */
#ifndef CLC_QUEUE_INT_H
#define CLC_QUEUE_INT_H

#include "azure/queue.h"
#include "azure/storage.h"

struct clc_queue {
    struct clc_storage *st;
};

/* CLC_ERR_INVALID with a message unless queue is a valid queue name. */
enum clc_err clc_queue_check_name(const char *queue, struct clc_errinfo *ei);

#endif
