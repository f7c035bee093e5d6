/* A small KQL engine for the emulated Log Analytics query API: a tokenizer and
 * parser for a documented subset (docs/emulator.md), a binder that checks
 * columns and types against the tables' schemas, and an evaluator over rows
 * kept as cJSON arrays. Anything outside the subset is refused with a
 * positioned error, never guessed at. */
#ifndef EMU_KQL_H
#define EMU_KQL_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

#define EMU_KQL_NAME_MAX 64
#define EMU_KQL_TIME_MAX 40
#define EMU_KQL_QUERY_MAX 16384 /* characters of query text */

/* Column types as the query API names them. EMU_KQL_NULL is only the type
 * of the literal null (never a column's). */
enum emu_kql_type {
    EMU_KQL_NULL = 0,
    EMU_KQL_BOOL,
    EMU_KQL_DATETIME,
    EMU_KQL_DYNAMIC,
    EMU_KQL_GUID,
    EMU_KQL_INT,
    EMU_KQL_LONG,
    EMU_KQL_REAL,
    EMU_KQL_STRING,
    EMU_KQL_TIMESPAN,
};

/* "bool", "datetime", ... ("null" for EMU_KQL_NULL). */
const char *emu_kql_type_name(enum emu_kql_type t);
/* A column type name ("boolean" is accepted for bool, "double" for real);
 * -1 when unknown or "null". */
int emu_kql_type_parse(const char *s);

struct emu_kql_col {
    char name[EMU_KQL_NAME_MAX];
    enum emu_kql_type type;
};

/* Stored row format, shared with ingestion: a cJSON array, one item per
 * column in order; bool as true/false, int/long/real as numbers, datetime
 * and timespan as numbers of milliseconds (Unix epoch / duration), string,
 * guid and dynamic (its JSON text) as strings, null for a missing value. */
struct emu_kql_table {
    const char *name;
    const struct emu_kql_col *cols;
    size_t ncols;
    cJSON *const *rows; /* borrowed for the run */
    size_t nrows;
};

/* The table named name (case-sensitive), or NULL. */
typedef const struct emu_kql_table *(*emu_kql_lookup_fn)(const char *name, void *ctx);

/* Detail of a refused query. code is "SyntaxError" (tokenizer, parser) or
 * "SemanticError" (unknown table or column, wrong types); line is 1-based
 * and pos the 0-based character offset within that line (0/0: none). */
struct emu_kql_error {
    char code[32];
    char inner_code[16]; /* "SYN0002", "SEM0100", ... */
    char message[384];
    int line;
    int pos;
    char token[64];
};

struct emu_kql_query;

/* Parses text. CLC_ERR_PARSE with err filled when it is not in the subset;
 * CLC_ERR_LIMIT when over EMU_KQL_QUERY_MAX; CLC_ERR_NOMEM. */
enum clc_err emu_kql_parse(const char *text, struct emu_kql_query **out, struct emu_kql_error *err);
void emu_kql_free(struct emu_kql_query *q);

/* Runs a parsed query: binds it (CLC_ERR_INVALID with a SemanticError when a
 * table, column or type does not fit) and evaluates it with now_ms as now().
 * *out is Azure's table object {"name":"PrimaryResult","columns":[{"name",
 * "type"}],"rows":[[...]]} with at most max_rows rows (0 = no cap beyond
 * the input). The query is annotated while it runs; run it from one thread. */
enum clc_err emu_kql_run(struct emu_kql_query *q, emu_kql_lookup_fn lookup, void *ctx,
                         int64_t now_ms, size_t max_rows, cJSON **out, struct emu_kql_error *err);

/* ISO 8601 date-time ("2026-01-02", "2026-01-02T03:04:05.678Z", offsets
 * ±hh:mm, a space for the T) to Unix milliseconds; 0 on success. */
int emu_kql_parse_datetime(const char *s, size_t len, int64_t *ms);
/* "2026-01-02T03:04:05Z", or with ".678Z" when there are milliseconds. */
void emu_kql_fmt_datetime(int64_t ms, char out[EMU_KQL_TIME_MAX]);
/* KQL's timespan text: "[-][d.]hh:mm:ss[.fff]". */
void emu_kql_fmt_timespan(int64_t ms, char out[EMU_KQL_TIME_MAX]);

#endif
