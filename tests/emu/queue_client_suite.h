/* The queue client test suite, run unchanged against two backends: the
 * in-process emulator (test_queue_client_emu.c) and a real Azurite
 * (test_queue_client_azurite.c). A backend fills qc_backend and adds its own
 * cases (clock-driven ones need the emulator). */
#ifndef TEST_QUEUE_CLIENT_SUITE_H
#define TEST_QUEUE_CLIENT_SUITE_H

#include <stddef.h>
#include <stdint.h>
#include "azure/queue.h"
#include "core/clock.h"

#define QC_DEV_ACCOUNT "devstoreaccount1"
#define QC_DEV_KEY                                                                                 \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

struct qc_backend {
    const char *name;       /* "emulator", "azurite" */
    char endpoint[256];     /* queue service URL, path-style with the account */
    const char *ca_bundle;  /* NULL for plain http */
    struct clc_clock clock; /* the backend's clock */
    int is_azurite;
};

extern struct qc_backend qcb;

/* A fresh queue name per call ("qc-<tag>-<n>"), in a static rotating buffer. */
const char *qc_queue_name(const char *tag);
/* A client on qcb with cred (NULL = the development account's Shared Key). */
struct clc_queue *qc_client(const struct clc_storage_cred *cred);
/* The development account's Shared Key credential (shared, do not free). */
const struct clc_storage_cred *qc_dev_cred(void);
/* Creates the queue (fails the test on error). */
void qc_make_queue(struct clc_queue *q, const char *name);
int64_t qc_now(void);

/* Runs the shared cases plus extra (may be NULL/0) with group setup/teardown
 * hooks of the backend; returns the cmocka result. */
struct CMUnitTest;
int qc_run(const char *group, const struct CMUnitTest *extra, size_t nextra, int (*setup)(void **),
           int (*teardown)(void **));

#endif
