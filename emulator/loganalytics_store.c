/* The emulated workspace's store: data collection rules and their tables
 * from the emulator config (defaults: certlc's renewal log and inventory),
 * rows checked against a rule's declared columns and types, kept per table
 * with a bound (oldest dropped), and persisted as one JSON array per line in
 * <data dir>/loganalytics/<table>.jsonl (appended per call, rewritten when
 * the bound drops rows). */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/loganalytics.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define FILE_MAX ((size_t)512 * 1024 * 1024)

/* The rules certlc itself writes to; a config "dcrs" list replaces them. */
static const char default_config[] =
    "{\"workspace_id\":\"c3e71c00-0000-4000-8000-00000000c371\",\"dcrs\":["
    "{\"immutable_id\":\"dcr-c371c0000000000000000000000000a1\","
    "\"stream\":\"Custom-CertlcRenewal_CL\",\"table\":\"CertlcRenewal_CL\",\"columns\":["
    "{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":\"Vault\",\"type\":\"string\"},"
    "{\"name\":\"Certificate\",\"type\":\"string\"},{\"name\":\"Version\",\"type\":\"string\"},"
    "{\"name\":\"Step\",\"type\":\"string\"},{\"name\":\"Outcome\",\"type\":\"string\"},"
    "{\"name\":\"DurationMs\",\"type\":\"long\"},{\"name\":\"CaRequestId\",\"type\":\"string\"},"
    "{\"name\":\"Error\",\"type\":\"string\"}]},"
    "{\"immutable_id\":\"dcr-c371c0000000000000000000000000b2\","
    "\"stream\":\"Custom-CertlcInventory_CL\",\"table\":\"CertlcInventory_CL\",\"columns\":["
    "{\"name\":\"TimeGenerated\",\"type\":\"datetime\"},{\"name\":\"Vault\",\"type\":\"string\"},"
    "{\"name\":\"Certificate\",\"type\":\"string\"},{\"name\":\"Version\",\"type\":\"string\"},"
    "{\"name\":\"Subject\",\"type\":\"string\"},{\"name\":\"Expires\",\"type\":\"datetime\"},"
    "{\"name\":\"DaysLeft\",\"type\":\"long\"},{\"name\":\"State\",\"type\":\"string\"},"
    "{\"name\":\"Issuer\",\"type\":\"string\"},{\"name\":\"Template\",\"type\":\"string\"}]}]}";

/* ---- config ---- */

static int name_ok(const char *s, size_t max, int allow_dash)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (allow_dash && s[i] == '-')))
            return 0;
    return 1;
}

static enum clc_err only_keys(const cJSON *o, const char *where, const char *const *keys,
                              struct clc_errinfo *ei)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, o)
    {
        size_t k;
        for (k = 0; keys[k] != NULL; k++)
            if (strcmp(it->string, keys[k]) == 0)
                break;
        if (keys[k] == NULL)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: unknown key '%.64s'", where, it->string);
    }
    return CLC_OK;
}

static enum clc_err parse_columns(const cJSON *arr, const char *where, struct emu_kql_col *cols,
                                  size_t *n, struct clc_errinfo *ei)
{
    static const char *const keys[] = {"name", "type", NULL};
    const cJSON *c;
    *n = 0;
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: 'columns' must be a non-empty array", where);
    cJSON_ArrayForEach(c, arr)
    {
        const char *name = NULL, *type = NULL;
        int t;
        if (*n == EMU_LA_MAX_COLS)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: more than %d columns", where, EMU_LA_MAX_COLS);
        if (!cJSON_IsObject(c) || only_keys(c, where, keys, ei) != CLC_OK ||
            clc_json_str(c, "name", &name, ei) != CLC_OK ||
            clc_json_str(c, "type", &type, ei) != CLC_OK)
            return clc_err_wrap(ei, CLC_ERR_CONFIG, "%s: column %zu", where, *n + 1);
        t = emu_kql_type_parse(type);
        if (!name_ok(name, EMU_KQL_NAME_MAX, 0))
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: column name '%.64s' is not valid", where,
                            name);
        if (t < 0 || t == EMU_KQL_TIMESPAN)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s: column '%s': type '%.32s' is not one of string, int, long, "
                            "real, bool, datetime, guid, dynamic",
                            where, name, type);
        for (size_t i = 0; i < *n; i++)
            if (strcmp(cols[i].name, name) == 0)
                return clc_errf(ei, CLC_ERR_CONFIG, "%s: column '%s' declared twice", where, name);
        snprintf(cols[*n].name, sizeof cols[*n].name, "%s", name);
        cols[*n].type = (enum emu_kql_type)t;
        (*n)++;
    }
    return CLC_OK;
}

static enum clc_err add_dcr(struct emu_la *la, const cJSON *d, size_t idx, struct clc_errinfo *ei)
{
    static const char *const keys[] = {"immutable_id", "stream", "table", "columns", NULL};
    const char *id = NULL, *stream = NULL, *table = NULL;
    struct emu_kql_col cols[EMU_LA_MAX_COLS];
    size_t ncols = 0;
    char where[64];
    enum clc_err rc;

    snprintf(where, sizeof where, "loganalytics.dcrs[%zu]", idx);
    if (!cJSON_IsObject(d))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: must be an object", where);
    if ((rc = only_keys(d, where, keys, ei)) != CLC_OK)
        return rc;
    if (clc_json_str(d, "immutable_id", &id, ei) != CLC_OK ||
        clc_json_str(d, "stream", &stream, ei) != CLC_OK ||
        clc_json_str(d, "table", &table, ei) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "%s", where);
    if (strncmp(id, "dcr-", 4) != 0 || !name_ok(id, EMU_LA_ID_MAX, 1))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: immutable_id '%.80s' is not dcr-<letters/digits>",
                        where, id);
    if (strncmp(stream, "Custom-", 7) != 0 || !name_ok(stream + 7, EMU_KQL_NAME_MAX, 0))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: stream '%.80s' is not Custom-<name>", where,
                        stream);
    if (!name_ok(table, EMU_KQL_NAME_MAX, 0))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: table '%.80s' is not a valid name", where, table);
    if ((rc = parse_columns(cJSON_GetObjectItemCaseSensitive(d, "columns"), where, cols, &ncols,
                            ei)) != CLC_OK)
        return rc;
    for (size_t i = 0; i < la->ndcrs; i++)
        if (strcmp(la->dcrs[i].immutable_id, id) == 0 && strcmp(la->dcrs[i].stream, stream) == 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: rule %s already declares stream %s", where, id,
                            stream);
    struct emu_la_table *t = emu_la_find_table(la, table);
    if (t != NULL) {
        /* Two rules may feed one table, but it has one schema. */
        if (t->ncols != ncols || memcmp(t->cols, cols, ncols * sizeof *cols) != 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s: table %s is declared with other columns by another rule", where,
                            table);
    } else {
        t = calloc(1, sizeof *t);
        if (t == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        snprintf(t->name, sizeof t->name, "%s", table);
        memcpy(t->cols, cols, sizeof cols);
        t->ncols = ncols;
        la->tables[la->ntables++] = t;
    }
    struct emu_la_dcr *r = &la->dcrs[la->ndcrs++];
    snprintf(r->immutable_id, sizeof r->immutable_id, "%s", id);
    snprintf(r->stream, sizeof r->stream, "%s", stream);
    r->table = t;
    return CLC_OK;
}

static enum clc_err parse_config(struct emu_la *la, const cJSON *cfg, struct clc_errinfo *ei)
{
    static const char *const keys[] = {"workspace_id", "dcrs", "max_rows_per_table", NULL};
    const char *ws = NULL;
    int64_t max_rows = 0;
    const cJSON *dcrs, *d;
    enum clc_err rc;
    size_t i = 0;

    if (!cJSON_IsObject(cfg))
        return clc_errf(ei, CLC_ERR_CONFIG, "'loganalytics' must be an object");
    if ((rc = only_keys(cfg, "loganalytics", keys, ei)) != CLC_OK ||
        (rc = clc_json_str_opt(cfg, "workspace_id", "c3e71c00-0000-4000-8000-00000000c371", &ws,
                               ei)) != CLC_OK ||
        (rc = clc_json_int_opt(cfg, "max_rows_per_table", EMU_LA_DEFAULT_MAX_ROWS, &max_rows,
                               ei)) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "loganalytics");
    for (const char *p = ws; *p || p == ws; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-') || p - ws >= EMU_LA_ID_MAX - 1)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "loganalytics.workspace_id '%.80s' is not letters, digits and '-'", ws);
    if (max_rows < 1 || max_rows > 10000000)
        return clc_errf(ei, CLC_ERR_CONFIG, "loganalytics.max_rows_per_table must be 1..10000000");
    snprintf(la->workspace_id, sizeof la->workspace_id, "%s", ws);
    la->max_rows = (size_t)max_rows;
    dcrs = cJSON_GetObjectItemCaseSensitive(cfg, "dcrs");
    if (dcrs == NULL)
        return CLC_OK;
    if (!cJSON_IsArray(dcrs) || cJSON_GetArraySize(dcrs) > EMU_LA_MAX_DCRS)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "loganalytics.dcrs must be an array of at most %d rules", EMU_LA_MAX_DCRS);
    cJSON_ArrayForEach(d, dcrs)
    {
        if ((rc = add_dcr(la, d, i++, ei)) != CLC_OK)
            return rc;
    }
    return CLC_OK;
}

struct emu_la_dcr *emu_la_find_dcr(struct emu_la *la, const char *immutable_id)
{
    for (size_t i = 0; i < la->ndcrs; i++)
        if (strcmp(la->dcrs[i].immutable_id, immutable_id) == 0)
            return &la->dcrs[i];
    return NULL;
}

struct emu_la_table *emu_la_find_table(struct emu_la *la, const char *name)
{
    for (size_t i = 0; i < la->ntables; i++)
        if (strcmp(la->tables[i]->name, name) == 0)
            return la->tables[i];
    return NULL;
}

/* ---- rows in memory and on disk ---- */

static void table_path(const struct emu_la *la, const struct emu_la_table *t, char *out, size_t n)
{
    snprintf(out, n, "%s/%s.jsonl", la->dir, t->name);
}

static enum clc_err rows_text(cJSON *const *rows, size_t n, struct clc_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        char *line = cJSON_PrintUnformatted(rows[i]);
        enum clc_err rc = line ? clc_buf_append_str(b, line) : CLC_ERR_NOMEM;
        free(line);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(b, '\n');
        if (rc != CLC_OK)
            return rc;
    }
    return CLC_OK;
}

static enum clc_err append_file(const struct emu_la *la, const struct emu_la_table *t,
                                const struct clc_buf *b, struct clc_errinfo *ei)
{
    char path[700];
    size_t done = 0;
    int fd;

    if (la->dir[0] == '\0' || b->len == 0)
        return CLC_OK;
    table_path(la, t, path, sizeof path);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return clc_errf(ei, CLC_ERR_IO, "%s: %s", path, strerror(errno));
    while (done < b->len) {
        ssize_t w = write(fd, b->data + done, b->len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int en = errno;
            /* Cut a partial line so the next load does not read it as a row. */
            if (ftruncate(fd, lseek(fd, 0, SEEK_END) - (off_t)done) != 0)
                en = errno;
            close(fd);
            return clc_errf(ei, CLC_ERR_IO, "%s: %s", path, strerror(en));
        }
        done += (size_t)w;
    }
    close(fd);
    return CLC_OK;
}

static void rewrite_file(struct emu_la *la, struct emu_la_table *t)
{
    struct clc_buf b;
    struct clc_errinfo ei = {0};
    char path[700];

    if (la->dir[0] == '\0')
        return;
    clc_buf_init(&b, FILE_MAX);
    table_path(la, t, path, sizeof path);
    if (rows_text(t->rows, t->nrows, &b) != CLC_OK ||
        clc_file_write_atomic(path, clc_buf_str(&b), b.len, 0600, &ei) != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.loganalytics.persist", CLC_LS("table", t->name),
                CLC_LS("reason", ei.msg[0] ? ei.msg : "out of memory"));
    clc_buf_cleanup(&b);
}

/* Drops the oldest rows beyond the bound (a tenth more, so that the file
 * is not rewritten on every call once full). */
static void enforce_bound(struct emu_la *la, struct emu_la_table *t, int persist)
{
    if (t->nrows <= la->max_rows)
        return;
    size_t drop = t->nrows - la->max_rows + la->max_rows / 10;
    if (drop > t->nrows)
        drop = t->nrows;
    for (size_t i = 0; i < drop; i++)
        cJSON_Delete(t->rows[i]);
    memmove(t->rows, t->rows + drop, (t->nrows - drop) * sizeof *t->rows);
    t->nrows -= drop;
    t->dropped += (int64_t)drop;
    clc_log(CLC_LOG_WARN, "emu.loganalytics.rows_dropped", CLC_LS("table", t->name),
            CLC_LI("dropped", drop), CLC_LI("kept", t->nrows));
    if (persist)
        rewrite_file(la, t);
}

static enum clc_err table_push(struct emu_la_table *t, cJSON *row)
{
    if (t->nrows == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 256;
        cJSON **v = realloc(t->rows, nc * sizeof *v);
        if (v == NULL)
            return CLC_ERR_NOMEM;
        t->rows = v;
        t->cap = nc;
    }
    t->rows[t->nrows++] = row;
    return CLC_OK;
}

static enum clc_err load_table(struct emu_la *la, struct emu_la_table *t, struct clc_errinfo *ei)
{
    char path[700], *text = NULL, *p, *nl;
    size_t len = 0, bad = 0;
    enum clc_err rc;

    table_path(la, t, path, sizeof path);
    if (access(path, F_OK) != 0)
        return CLC_OK;
    rc = clc_file_read(path, FILE_MAX, &text, &len, ei);
    if (rc != CLC_OK)
        return rc;
    for (p = text; rc == CLC_OK && p < text + len; p = nl + 1) {
        nl = memchr(p, '\n', (size_t)(text + len - p));
        if (nl == NULL) {
            bad++; /* a line cut by a crash */
            break;
        }
        cJSON *row = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != (int)t->ncols) {
            cJSON_Delete(row);
            bad++;
            continue;
        }
        rc = table_push(t, row);
        if (rc != CLC_OK)
            cJSON_Delete(row);
    }
    free(text);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "%s: out of memory", path);
    if (bad)
        clc_log(CLC_LOG_WARN, "emu.loganalytics.load_skipped", CLC_LS("table", t->name),
                CLC_LI("lines", bad));
    enforce_bound(la, t, bad > 0 || t->nrows > la->max_rows);
    if (bad && t->nrows <= la->max_rows)
        rewrite_file(la, t);
    return CLC_OK;
}

enum clc_err emu_la_open(struct emu *e, struct emu_la **out, struct clc_errinfo *ei)
{
    struct emu_la *la = calloc(1, sizeof *la);
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(emu_config(e), "loganalytics");
    cJSON *defaults = cJSON_Parse(default_config);
    enum clc_err rc;

    *out = NULL;
    if (la == NULL || defaults == NULL) {
        free(la);
        cJSON_Delete(defaults);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    pthread_mutex_init(&la->mu, NULL);
    la->e = e;
    rc = parse_config(la, cfg ? cfg : defaults, ei);
    if (rc == CLC_OK && la->ndcrs == 0) {
        /* A config without its own rules keeps its workspace id and bound
         * and gets the default rules. */
        const cJSON *d;
        size_t i = 0;
        cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(defaults, "dcrs"))
        {
            if (rc == CLC_OK)
                rc = add_dcr(la, d, i++, ei);
        }
    }
    cJSON_Delete(defaults);
    if (rc == CLC_OK && emu_data_dir(e) != NULL) {
        snprintf(la->dir, sizeof la->dir, "%s/loganalytics", emu_data_dir(e));
        rc = clc_file_mkdirs(la->dir, 0700, ei);
        for (size_t i = 0; rc == CLC_OK && i < la->ntables; i++)
            rc = load_table(la, la->tables[i], ei);
    }
    if (rc != CLC_OK) {
        emu_la_free(la);
        return rc;
    }
    *out = la;
    return CLC_OK;
}

void emu_la_free(struct emu_la *la)
{
    if (la == NULL)
        return;
    for (size_t i = 0; i < la->ntables; i++) {
        for (size_t j = 0; j < la->tables[i]->nrows; j++)
            cJSON_Delete(la->tables[i]->rows[j]);
        free(la->tables[i]->rows);
        free(la->tables[i]);
    }
    pthread_mutex_destroy(&la->mu);
    free(la);
}

/* ---- ingestion ---- */

static int guid_ok(const char *s)
{
    static const char pat[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    if (strlen(s) != sizeof pat - 1)
        return 0;
    for (size_t i = 0; pat[i]; i++)
        if (pat[i] == '-' ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* The stored form of v for a column of type t, or NULL with *why set. */
static cJSON *convert(const cJSON *v, enum emu_kql_type t, const char **why)
{
    double d;
    int64_t ms;

    *why = NULL;
    if (cJSON_IsNull(v))
        return cJSON_CreateNull();
    switch (t) {
    case EMU_KQL_STRING:
        if (cJSON_IsString(v))
            return cJSON_CreateString(v->valuestring);
        break;
    case EMU_KQL_GUID:
        if (cJSON_IsString(v) && guid_ok(v->valuestring))
            return cJSON_CreateString(v->valuestring);
        break;
    case EMU_KQL_INT:
    case EMU_KQL_LONG:
        if (!cJSON_IsNumber(v))
            break;
        d = v->valuedouble;
        /* Rows are kept and written as cJSON numbers, exact up to 15
         * digits: refuse larger integers rather than store another number. */
        if (d != (double)(int64_t)d || d >= 1e15 || d <= -1e15 ||
            (t == EMU_KQL_INT && (d > 2147483647.0 || d < -2147483648.0))) {
            *why =
                t == EMU_KQL_INT ? "not a 32-bit integer" : "not an integer of at most 15 digits";
            return NULL;
        }
        return cJSON_CreateNumber(d);
    case EMU_KQL_REAL:
        if (cJSON_IsNumber(v))
            return cJSON_CreateNumber(v->valuedouble);
        break;
    case EMU_KQL_BOOL:
        if (cJSON_IsBool(v))
            return cJSON_CreateBool(cJSON_IsTrue(v));
        break;
    case EMU_KQL_DATETIME:
        if (cJSON_IsString(v) &&
            emu_kql_parse_datetime(v->valuestring, strlen(v->valuestring), &ms) == 0)
            return cJSON_CreateNumber((double)ms);
        if (cJSON_IsString(v)) {
            *why = "not an ISO 8601 date-time";
            return NULL;
        }
        break;
    case EMU_KQL_DYNAMIC: {
        char *text = cJSON_PrintUnformatted(v);
        cJSON *s = text ? cJSON_CreateString(text) : NULL;
        free(text);
        if (s == NULL)
            *why = "out of memory";
        return s;
    }
    default:
        break;
    }
    *why = "of the wrong JSON type";
    return NULL;
}

static const char *json_kind(const cJSON *v)
{
    return clc_json_type_name(v);
}

enum clc_err emu_la_ingest(struct emu_la *la, struct emu_la_dcr *dcr, const cJSON *body,
                           int64_t now_ms, char *target, size_t target_len, struct clc_errinfo *ei)
{
    struct emu_la_table *t = dcr->table;
    cJSON *batch = cJSON_CreateArray();
    struct clc_buf text;
    enum clc_err rc = CLC_OK;
    const cJSON *item;
    size_t i = 0;
    int tg = -1;

    target[0] = '\0';
    clc_buf_init(&text, EMU_LA_MAX_BATCH_BYTES * 4);
    if (batch == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t c = 0; c < t->ncols; c++)
        if (strcmp(t->cols[c].name, "TimeGenerated") == 0 && t->cols[c].type == EMU_KQL_DATETIME)
            tg = (int)c;
    if (!cJSON_IsArray(body)) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "The request body must be a JSON array of objects, "
                      "not %s.",
                      json_kind(body));
        goto out;
    }
    cJSON_ArrayForEach(item, body)
    {
        const cJSON *m;
        cJSON *row = cJSON_CreateArray();
        if (row == NULL || !cJSON_AddItemToArray(batch, row)) {
            cJSON_Delete(row);
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (!cJSON_IsObject(item)) {
            snprintf(target, target_len, "$[%zu]", i);
            rc = clc_errf(ei, CLC_ERR_INVALID, "Record %zu is %s, not a JSON object.", i,
                          json_kind(item));
            goto out;
        }
        for (size_t c = 0; c < t->ncols; c++)
            cJSON_AddItemToArray(row, cJSON_CreateNull());
        cJSON_ArrayForEach(m, item)
        {
            size_t c;
            const char *why = NULL;
            for (c = 0; c < t->ncols; c++)
                if (strcmp(t->cols[c].name, m->string) == 0)
                    break;
            snprintf(target, target_len, "$[%zu].%.64s", i, m->string);
            if (c == t->ncols) {
                rc = clc_errf(ei, CLC_ERR_INVALID,
                              "Record %zu: column '%.64s' is not declared in stream '%s' of "
                              "data collection rule '%s'.",
                              i, m->string, dcr->stream, dcr->immutable_id);
                goto out;
            }
            cJSON *v = convert(m, t->cols[c].type, &why);
            if (v == NULL) {
                rc = clc_errf(ei, CLC_ERR_INVALID,
                              "Record %zu: column '%s' is declared as %s; the value (%s) is %s.", i,
                              t->cols[c].name, emu_kql_type_name(t->cols[c].type), json_kind(m),
                              why ? why : "not valid");
                goto out;
            }
            cJSON_ReplaceItemInArray(row, (int)c, v);
        }
        if (tg >= 0 && cJSON_IsNull(cJSON_GetArrayItem(row, tg)))
            cJSON_ReplaceItemInArray(row, tg, cJSON_CreateNumber((double)now_ms));
        if (cJSON_GetArraySize(row) != (int)t->ncols) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
        i++;
    }
    target[0] = '\0';
    /* Disk first: a row is in memory only once it is also on disk. */
    if (la->dir[0] != '\0') {
        cJSON *r;
        cJSON_ArrayForEach(r, batch)
        {
            char *line = cJSON_PrintUnformatted(r);
            rc = line ? clc_buf_append_str(&text, line) : CLC_ERR_NOMEM;
            free(line);
            if (rc == CLC_OK)
                rc = clc_buf_append_byte(&text, '\n');
            if (rc != CLC_OK) {
                clc_errf(ei, rc, "out of memory");
                goto out;
            }
        }
        if ((rc = append_file(la, t, &text, ei)) != CLC_OK)
            goto out;
    }
    while (cJSON_GetArraySize(batch) > 0) {
        cJSON *r = cJSON_DetachItemFromArray(batch, 0);
        if (table_push(t, r) != CLC_OK) {
            cJSON_Delete(r);
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    enforce_bound(la, t, 1);
out:
    cJSON_Delete(batch);
    clc_buf_cleanup(&text);
    return rc;
}

void emu_la_reset(struct emu_la *la)
{
    char path[700];

    pthread_mutex_lock(&la->mu);
    for (size_t i = 0; i < la->ntables; i++) {
        struct emu_la_table *t = la->tables[i];
        for (size_t j = 0; j < t->nrows; j++)
            cJSON_Delete(t->rows[j]);
        t->nrows = 0;
        t->dropped = 0;
        if (la->dir[0] != '\0') {
            table_path(la, t, path, sizeof path);
            unlink(path);
        }
    }
    pthread_mutex_unlock(&la->mu);
}

cJSON *emu_la_dump(struct emu_la *la)
{
    cJSON *doc = cJSON_CreateObject(), *dcrs, *tables;

    if (doc == NULL)
        return NULL;
    pthread_mutex_lock(&la->mu);
    cJSON_AddStringToObject(doc, "workspace_id", la->workspace_id);
    dcrs = cJSON_AddArrayToObject(doc, "dcrs");
    tables = cJSON_AddObjectToObject(doc, "tables");
    for (size_t i = 0; dcrs != NULL && i < la->ndcrs; i++) {
        cJSON *d = cJSON_CreateObject();
        if (d == NULL || !cJSON_AddItemToArray(dcrs, d))
            break;
        cJSON_AddStringToObject(d, "immutable_id", la->dcrs[i].immutable_id);
        cJSON_AddStringToObject(d, "stream", la->dcrs[i].stream);
        cJSON_AddStringToObject(d, "table", la->dcrs[i].table->name);
    }
    for (size_t i = 0; tables != NULL && i < la->ntables; i++) {
        cJSON *o = cJSON_AddObjectToObject(tables, la->tables[i]->name);
        if (o == NULL)
            break;
        cJSON_AddNumberToObject(o, "rows", (double)la->tables[i]->nrows);
        cJSON_AddNumberToObject(o, "dropped", (double)la->tables[i]->dropped);
    }
    pthread_mutex_unlock(&la->mu);
    return doc;
}
