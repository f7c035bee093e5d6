/* The emulated Log Analytics workspace, shared by its two front ends — the
 * data collection endpoint ("loganalytics": Logs Ingestion API) and the query
 * API ("logquery") in loganalytics.c — and its store (loganalytics_store.c:
 * data collection rules and tables from the emulator config, rows checked
 * against the rule's columns, kept per table in memory with a bound and
 * appended to <data dir>/loganalytics/<table>.jsonl). */
#ifndef EMU_LOGANALYTICS_H
#define EMU_LOGANALYTICS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "emulator/kql.h"

struct emu;

#define EMU_LA_MAX_BATCH_BYTES ((size_t)1024 * 1024) /* the service's 1 MB per call */
#define EMU_LA_MAX_COLS 64
#define EMU_LA_MAX_DCRS 32
#define EMU_LA_DEFAULT_MAX_ROWS 100000
#define EMU_LA_ID_MAX 80

struct emu_la_table {
    char name[EMU_KQL_NAME_MAX];
    struct emu_kql_col cols[EMU_LA_MAX_COLS];
    size_t ncols;
    cJSON **rows; /* stored format (kql.h), oldest first */
    size_t nrows, cap;
    int64_t dropped; /* rows removed by the bound */
};

struct emu_la_dcr {
    char immutable_id[EMU_LA_ID_MAX];
    char stream[EMU_KQL_NAME_MAX + 8];
    struct emu_la_table *table;
};

struct emu_la {
    pthread_mutex_t mu; /* guards everything below; never held over network I/O */
    struct emu *e;
    char workspace_id[EMU_LA_ID_MAX];
    struct emu_la_dcr dcrs[EMU_LA_MAX_DCRS];
    size_t ndcrs;
    struct emu_la_table *tables[EMU_LA_MAX_DCRS];
    size_t ntables;
    size_t max_rows; /* per table */
    char dir[512];   /* <data dir>/loganalytics, "" in memory */
};

/* Reads config "loganalytics" (or the defaults: certlc's renewal and
 * inventory rules), then the rows kept in the data dir. */
enum clc_err emu_la_open(struct emu *e, struct emu_la **out, struct clc_errinfo *ei);
void emu_la_free(struct emu_la *la);

/* The rest run under la->mu. */
struct emu_la_dcr *emu_la_find_dcr(struct emu_la *la, const char *immutable_id);
struct emu_la_table *emu_la_find_table(struct emu_la *la, const char *name);

/* Checks every row of body (a JSON array of objects) against the rule's
 * columns and, only if all fit, stores them (missing TimeGenerated = now).
 * CLC_ERR_INVALID with ei->msg naming the row and column, and *target set
 * to "$[i].Column" (static buffer owned by the caller, 128 bytes). */
enum clc_err emu_la_ingest(struct emu_la *la, struct emu_la_dcr *dcr, const cJSON *body,
                           int64_t now_ms, char *target, size_t target_len, struct clc_errinfo *ei);
/* Drops every row (memory and files). Takes the lock. */
void emu_la_reset(struct emu_la *la);
/* {"workspace_id", "dcrs": [{"immutable_id","stream","table"}], "tables": {name: rows}}.
 * Takes the lock. */
cJSON *emu_la_dump(struct emu_la *la);

#endif
