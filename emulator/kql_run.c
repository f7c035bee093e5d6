/* KQL tabular operators and the run: each operator turns a relation
 * (columns + rows) into the next one; rows the run creates are owned by it
 * and freed at the end, rows of the table are only borrowed. The result is
 * written in the query API's shape, values converted from the stored form. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "emulator/kql_int.h"

#define GROUP_KEY_MAX 8192

struct rel {
    struct emu_kql_col *cols;
    size_t ncols;
    cJSON **rows;
    size_t nrows;
};

struct run {
    const char *text;
    int64_t now;
    struct emu_kql_error *err;
    cJSON **owned;
    size_t nowned, capowned;
};

static void rel_free(struct rel *r)
{
    free(r->cols);
    free(r->rows);
    memset(r, 0, sizeof *r);
}

static enum clc_err own(struct run *r, cJSON *row)
{
    if (row == NULL)
        return CLC_ERR_NOMEM;
    if (r->nowned == r->capowned) {
        size_t nc = r->capowned ? r->capowned * 2 : 64;
        cJSON **v = realloc(r->owned, nc * sizeof *v);
        if (v == NULL) {
            cJSON_Delete(row);
            return CLC_ERR_NOMEM;
        }
        r->owned = v;
        r->capowned = nc;
    }
    r->owned[r->nowned++] = row;
    return CLC_OK;
}

static enum clc_err sem_op(struct run *r, const struct kop *op, const char *inner, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
static enum clc_err sem_op(struct run *r, const struct kop *op, const char *inner, const char *fmt,
                           ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kql_err_at(r->err, r->text, op->off, op->len, "SemanticError", inner, "%s", msg);
    return CLC_ERR_INVALID;
}

static enum clc_err alloc_rel(struct rel *out, size_t ncols, size_t nrows)
{
    memset(out, 0, sizeof *out);
    out->cols = calloc(ncols ? ncols : 1, sizeof *out->cols);
    out->rows = calloc(nrows ? nrows : 1, sizeof *out->rows);
    if (out->cols == NULL || out->rows == NULL) {
        rel_free(out);
        return CLC_ERR_NOMEM;
    }
    out->ncols = ncols;
    return CLC_OK;
}

static int col_index(const struct emu_kql_col *cols, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(cols[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* The output name of an item: its explicit name, else the column it is. */
static enum clc_err item_name(struct run *r, const struct kop *op, const struct kitem *it,
                              const char *opname, char *out)
{
    if (it->name[0])
        snprintf(out, EMU_KQL_NAME_MAX, "%s", it->name);
    else if (it->e->kind == KX_COL)
        snprintf(out, EMU_KQL_NAME_MAX, "%s", it->e->name);
    else
        return sem_op(r, op, "SEM0120",
                      "%s: the expression at position %d needs a name "
                      "(Name = expression)",
                      opname, it->off);
    return CLC_OK;
}

static enum clc_err op_where(struct run *r, struct kop *op, struct rel *in, struct rel *out)
{
    enum clc_err rc = kql_bind(r->text, op->pred, in->cols, in->ncols, 0, r->err);

    if (rc != CLC_OK)
        return rc;
    if (op->pred->type != EMU_KQL_BOOL && op->pred->type != EMU_KQL_NULL)
        return sem_op(r, op, "SEM0024", "'where' expects a bool predicate, got %s",
                      emu_kql_type_name(op->pred->type));
    if ((rc = alloc_rel(out, in->ncols, in->nrows)) != CLC_OK)
        return rc;
    memcpy(out->cols, in->cols, in->ncols * sizeof *in->cols);
    for (size_t i = 0; i < in->nrows; i++) {
        struct kval v = kql_eval(op->pred, in->rows[i], r->now);
        if (kql_truthy(&v))
            out->rows[out->nrows++] = in->rows[i];
    }
    return CLC_OK;
}

/* project (keep replaces nothing) and extend (keep the input columns;
 * an item named like one of them replaces it in place). */
static enum clc_err op_project(struct run *r, struct kop *op, struct rel *in, struct rel *out,
                               int extend)
{
    const char *opname = extend ? "extend" : "project";
    int target[64];
    size_t ncols = extend ? in->ncols : 0;
    enum clc_err rc;

    if (op->nitems > 64)
        return sem_op(r, op, "SEM0001", "%s: too many columns", opname);
    if ((rc = alloc_rel(out, in->ncols + op->nitems, in->nrows)) != CLC_OK)
        return rc;
    if (extend)
        memcpy(out->cols, in->cols, in->ncols * sizeof *in->cols);
    for (size_t k = 0; k < op->nitems; k++) {
        struct kitem *it = &op->items[k];
        char name[EMU_KQL_NAME_MAX];
        if ((rc = kql_bind(r->text, it->e, in->cols, in->ncols, 0, r->err)) != CLC_OK ||
            (rc = item_name(r, op, it, opname, name)) != CLC_OK)
            return rc;
        int at = col_index(out->cols, ncols, name);
        if (at >= 0 && (!extend || at >= (int)in->ncols))
            return sem_op(r, op, "SEM0102", "%s: column '%s' appears twice", opname, name);
        if (at < 0)
            at = (int)ncols++;
        snprintf(out->cols[at].name, sizeof out->cols[at].name, "%s", name);
        /* A literal null column is a string column of nulls. */
        out->cols[at].type = it->e->type == EMU_KQL_NULL ? EMU_KQL_STRING : it->e->type;
        target[k] = at;
    }
    out->ncols = ncols;
    for (size_t i = 0; i < in->nrows; i++) {
        cJSON *row = extend ? cJSON_Duplicate(in->rows[i], 1) : cJSON_CreateArray();
        for (size_t c = 0; row != NULL && !extend && c < ncols; c++)
            cJSON_AddItemToArray(row, cJSON_CreateNull());
        if ((rc = own(r, row)) != CLC_OK)
            return rc;
        for (size_t k = 0; k < op->nitems; k++) {
            struct kval v = kql_eval(op->items[k].e, in->rows[i], r->now);
            cJSON *item = kql_to_stored(&v, out->cols[target[k]].type);
            if (item == NULL)
                return CLC_ERR_NOMEM;
            if (target[k] < cJSON_GetArraySize(row))
                cJSON_ReplaceItemInArray(row, target[k], item);
            else
                cJSON_AddItemToArray(row, item);
        }
        out->rows[out->nrows++] = row;
    }
    return CLC_OK;
}

/* ---- summarize ---- */

struct agg {
    int64_t count;
    int has;
    struct kval v; /* min, max, or the running sum */
};

struct group {
    char *key;
    const cJSON *first; /* a row of the group, for its by-values */
    struct agg *aggs;
};

struct groups {
    struct group *v;
    size_t n, cap;
    size_t *slots; /* open addressing: index + 1, 0 = empty */
    size_t nslots;
};

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void groups_free(struct groups *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->v[i].key);
        free(g->v[i].aggs);
    }
    free(g->v);
    free(g->slots);
}

static enum clc_err groups_rehash(struct groups *g)
{
    size_t ns = g->nslots ? g->nslots * 2 : 64;
    size_t *s = calloc(ns, sizeof *s);
    if (s == NULL)
        return CLC_ERR_NOMEM;
    for (size_t i = 0; i < g->n; i++) {
        size_t h = (size_t)hash(g->v[i].key) & (ns - 1);
        while (s[h])
            h = (h + 1) & (ns - 1);
        s[h] = i + 1;
    }
    free(g->slots);
    g->slots = s;
    g->nslots = ns;
    return CLC_OK;
}

/* The group for key, created (with naggs zeroed aggregates) if new. */
static struct group *group_get(struct groups *g, const char *key, const cJSON *row, size_t naggs)
{
    if (g->nslots == 0 || (g->n + 1) * 2 > g->nslots)
        if (groups_rehash(g) != CLC_OK)
            return NULL;
    size_t h = (size_t)hash(key) & (g->nslots - 1);
    while (g->slots[h]) {
        struct group *x = &g->v[g->slots[h] - 1];
        if (strcmp(x->key, key) == 0)
            return x;
        h = (h + 1) & (g->nslots - 1);
    }
    if (g->n == g->cap) {
        size_t nc = g->cap ? g->cap * 2 : 16;
        struct group *v = realloc(g->v, nc * sizeof *v);
        if (v == NULL)
            return NULL;
        g->v = v;
        g->cap = nc;
    }
    struct group *x = &g->v[g->n];
    x->key = strdup(key);
    x->aggs = calloc(naggs ? naggs : 1, sizeof *x->aggs);
    x->first = row;
    if (x->key == NULL || x->aggs == NULL) {
        free(x->key);
        free(x->aggs);
        return NULL;
    }
    g->slots[h] = ++g->n;
    return x;
}

/* A key text that tells values (and nulls) apart. */
static enum clc_err key_append(struct clc_buf *b, const struct kval *v)
{
    if (v->null || v->t == EMU_KQL_NULL)
        return clc_buf_append(b, "N\x1f", 2);
    if (v->t == EMU_KQL_REAL)
        return clc_buf_appendf(b, "R%.17g\x1f", v->r);
    if (v->s != NULL && v->t != EMU_KQL_BOOL && v->t != EMU_KQL_INT && v->t != EMU_KQL_LONG &&
        v->t != EMU_KQL_DATETIME && v->t != EMU_KQL_TIMESPAN)
        return clc_buf_appendf(b, "S%zu:%s\x1f", strlen(v->s), v->s);
    return clc_buf_appendf(b, "I%lld\x1f", (long long)v->i);
}

static void agg_add(struct agg *a, const struct kexpr *x, const cJSON *row, int64_t now)
{
    if (x->fn == KF_COUNT) {
        a->count++;
        return;
    }
    struct kval v = kql_eval(x->a, row, now);
    if (v.null || v.t == EMU_KQL_NULL)
        return;
    if (!a->has) {
        a->v = v;
        a->v.t = x->type;
        if (x->fn == KF_SUM && x->type == EMU_KQL_REAL)
            a->v.r = v.t == EMU_KQL_REAL ? v.r : (double)v.i;
        a->has = 1;
        return;
    }
    if (x->fn == KF_SUM) {
        if (x->type == EMU_KQL_REAL)
            a->v.r += v.t == EMU_KQL_REAL ? v.r : (double)v.i;
        else if (__builtin_add_overflow(a->v.i, v.i, &a->v.i))
            a->v.null = 1;
        return;
    }
    int c = kql_compare(&v, &a->v);
    if ((x->fn == KF_MIN && c < 0) || (x->fn == KF_MAX && c > 0)) {
        a->v = v;
        a->v.t = x->type;
    }
}

static enum clc_err op_summarize(struct run *r, struct kop *op, struct rel *in, struct rel *out)
{
    struct groups g = {0};
    struct clc_buf key;
    enum clc_err rc;
    size_t nby = op->nby, nagg = op->nitems;

    clc_buf_init(&key, GROUP_KEY_MAX);
    if ((rc = alloc_rel(out, nby + nagg, 0)) != CLC_OK)
        return rc;
    for (size_t k = 0; k < nby; k++) {
        struct kitem *it = &op->by[k];
        if ((rc = kql_bind(r->text, it->e, in->cols, in->ncols, 0, r->err)) != CLC_OK ||
            (rc = item_name(r, op, it, "summarize by", out->cols[k].name)) != CLC_OK)
            goto out;
        out->cols[k].type = it->e->type == EMU_KQL_NULL ? EMU_KQL_STRING : it->e->type;
    }
    for (size_t k = 0; k < nagg; k++) {
        struct kitem *it = &op->items[k];
        struct emu_kql_col *c = &out->cols[nby + k];
        if (it->e->kind != KX_CALL || it->e->fn < KF_FIRST_AGG) {
            rc = sem_op(r, op, "SEM0222",
                        "summarize: item %zu is not an aggregate (count(), min(), max(), "
                        "sum())",
                        k + 1);
            goto out;
        }
        if ((rc = kql_bind(r->text, it->e, in->cols, in->ncols, 1, r->err)) != CLC_OK)
            goto out;
        if (it->name[0])
            snprintf(c->name, sizeof c->name, "%s", it->name);
        else if (it->e->a != NULL && it->e->a->kind == KX_COL)
            snprintf(c->name, sizeof c->name, "%.8s_%.50s", it->e->name, it->e->a->name);
        else
            snprintf(c->name, sizeof c->name, "%.8s_", it->e->name);
        c->type = it->e->type;
    }
    for (size_t k = 0; k < nby + nagg; k++)
        if (col_index(out->cols, k, out->cols[k].name) >= 0) {
            rc =
                sem_op(r, op, "SEM0102", "summarize: column '%s' appears twice", out->cols[k].name);
            goto out;
        }
    for (size_t i = 0; i < in->nrows; i++) {
        clc_buf_reset(&key);
        clc_buf_append(&key, "", 0);
        for (size_t k = 0; k < nby; k++) {
            struct kval v = kql_eval(op->by[k].e, in->rows[i], r->now);
            if ((rc = key_append(&key, &v)) != CLC_OK) {
                rc = sem_op(r, op, "SEM0001", "summarize: group key longer than %d bytes",
                            GROUP_KEY_MAX);
                goto out;
            }
        }
        struct group *grp = group_get(&g, clc_buf_str(&key), in->rows[i], nagg);
        if (grp == NULL) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        for (size_t k = 0; k < nagg; k++)
            agg_add(&grp->aggs[k], op->items[k].e, in->rows[i], r->now);
    }
    /* Without "by", one row even for no input (count_ = 0). */
    if (nby == 0 && g.n == 0 && group_get(&g, "", NULL, nagg) == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    free(out->rows);
    out->rows = calloc(g.n ? g.n : 1, sizeof *out->rows);
    if (out->rows == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < g.n; i++) {
        cJSON *row = cJSON_CreateArray();
        if ((rc = own(r, row)) != CLC_OK)
            goto out;
        for (size_t k = 0; k < nby; k++) {
            struct kval v = kql_eval(op->by[k].e, g.v[i].first, r->now);
            cJSON_AddItemToArray(row, kql_to_stored(&v, out->cols[k].type));
        }
        for (size_t k = 0; k < nagg; k++) {
            struct agg *a = &g.v[i].aggs[k];
            struct kval v = a->v;
            if (op->items[k].e->fn == KF_COUNT) {
                v.t = EMU_KQL_LONG;
                v.null = 0;
                v.i = a->count;
            } else if (!a->has) {
                v.null = 1;
            }
            cJSON_AddItemToArray(row, kql_to_stored(&v, out->cols[nby + k].type));
        }
        if (cJSON_GetArraySize(row) != (int)(nby + nagg)) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        out->rows[out->nrows++] = row;
    }
out:
    groups_free(&g);
    clc_buf_cleanup(&key);
    if (rc != CLC_OK)
        rel_free(out);
    return rc;
}

/* ---- order by: a stable merge sort on precomputed keys ---- */

struct sort_ctx {
    const struct kval *keys; /* nrows x nkeys */
    const struct kitem *items;
    size_t nkeys;
};

static int sort_cmp(const struct sort_ctx *s, size_t a, size_t b)
{
    for (size_t k = 0; k < s->nkeys; k++) {
        int c = kql_compare(&s->keys[a * s->nkeys + k], &s->keys[b * s->nkeys + k]);
        /* KQL: nulls first ascending, last descending. */
        if (c != 0)
            return s->items[k].desc ? -c : c;
    }
    return 0;
}

static void merge_sort(const struct sort_ctx *s, size_t *v, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2, i = 0, j = h, k = 0;
    merge_sort(s, v, tmp, h);
    merge_sort(s, v + h, tmp, n - h);
    while (i < h && j < n)
        tmp[k++] = sort_cmp(s, v[j], v[i]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

static enum clc_err op_order(struct run *r, struct kop *op, struct rel *in, struct rel *out)
{
    enum clc_err rc;
    size_t n = in->nrows, nk = op->nitems;
    struct kval *keys = NULL;
    size_t *idx = NULL, *tmp = NULL;

    for (size_t k = 0; k < nk; k++) {
        if ((rc = kql_bind(r->text, op->items[k].e, in->cols, in->ncols, 0, r->err)) != CLC_OK)
            return rc;
        if (op->items[k].e->type == EMU_KQL_DYNAMIC)
            return sem_op(r, op, "SEM0219", "order by: cannot sort by a dynamic value");
    }
    if ((rc = alloc_rel(out, in->ncols, n)) != CLC_OK)
        return rc;
    memcpy(out->cols, in->cols, in->ncols * sizeof *in->cols);
    keys = calloc(n * nk + 1, sizeof *keys);
    idx = calloc(n + 1, sizeof *idx);
    tmp = calloc(n + 1, sizeof *tmp);
    if (keys == NULL || idx == NULL || tmp == NULL) {
        rc = CLC_ERR_NOMEM;
        rel_free(out);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        for (size_t k = 0; k < nk; k++)
            keys[i * nk + k] = kql_eval(op->items[k].e, in->rows[i], r->now);
    }
    struct sort_ctx s = {keys, op->items, nk};
    merge_sort(&s, idx, tmp, n);
    for (size_t i = 0; i < n; i++)
        out->rows[i] = in->rows[idx[i]];
    out->nrows = n;
out:
    free(keys);
    free(idx);
    free(tmp);
    return rc;
}

static enum clc_err op_take(struct kop *op, struct rel *in, struct rel *out)
{
    enum clc_err rc = alloc_rel(out, in->ncols, in->nrows);
    if (rc != CLC_OK)
        return rc;
    memcpy(out->cols, in->cols, in->ncols * sizeof *in->cols);
    out->nrows = (uint64_t)op->n < in->nrows ? (size_t)op->n : in->nrows;
    memcpy(out->rows, in->rows, out->nrows * sizeof *out->rows);
    return CLC_OK;
}

static enum clc_err op_count(struct run *r, struct rel *in, struct rel *out)
{
    enum clc_err rc = alloc_rel(out, 1, 1);
    cJSON *row = cJSON_CreateArray();

    if (rc != CLC_OK) {
        cJSON_Delete(row);
        return rc;
    }
    snprintf(out->cols[0].name, sizeof out->cols[0].name, "Count");
    out->cols[0].type = EMU_KQL_LONG;
    if ((rc = own(r, row)) != CLC_OK)
        return rc;
    cJSON_AddItemToArray(row, cJSON_CreateNumber((double)in->nrows));
    out->rows[0] = row;
    out->nrows = 1;
    return CLC_OK;
}

/* ---- output ---- */

static cJSON *output_value(const cJSON *c, enum emu_kql_type t)
{
    char buf[EMU_KQL_TIME_MAX];

    if (c == NULL || cJSON_IsNull(c))
        return cJSON_CreateNull();
    if (t == EMU_KQL_DATETIME) {
        emu_kql_fmt_datetime((int64_t)c->valuedouble, buf);
        return cJSON_CreateString(buf);
    }
    if (t == EMU_KQL_TIMESPAN) {
        emu_kql_fmt_timespan((int64_t)c->valuedouble, buf);
        return cJSON_CreateString(buf);
    }
    return cJSON_Duplicate(c, 0);
}

static cJSON *output(const struct rel *rel, size_t max_rows)
{
    cJSON *t = cJSON_CreateObject(), *cols, *rows;

    if (t == NULL || cJSON_AddStringToObject(t, "name", "PrimaryResult") == NULL ||
        (cols = cJSON_AddArrayToObject(t, "columns")) == NULL ||
        (rows = cJSON_AddArrayToObject(t, "rows")) == NULL)
        goto fail;
    for (size_t c = 0; c < rel->ncols; c++) {
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(cols, o) ||
            cJSON_AddStringToObject(o, "name", rel->cols[c].name) == NULL ||
            cJSON_AddStringToObject(o, "type", emu_kql_type_name(rel->cols[c].type)) == NULL)
            goto fail;
    }
    for (size_t i = 0; i < rel->nrows && (max_rows == 0 || i < max_rows); i++) {
        cJSON *row = cJSON_CreateArray();
        if (row == NULL || !cJSON_AddItemToArray(rows, row))
            goto fail;
        for (size_t c = 0; c < rel->ncols; c++) {
            cJSON *v = output_value(cJSON_GetArrayItem(rel->rows[i], (int)c), rel->cols[c].type);
            if (v == NULL || !cJSON_AddItemToArray(row, v))
                goto fail;
        }
    }
    return t;
fail:
    cJSON_Delete(t);
    return NULL;
}

enum clc_err emu_kql_run(struct emu_kql_query *q, emu_kql_lookup_fn lookup, void *ctx,
                         int64_t now_ms, size_t max_rows, cJSON **out, struct emu_kql_error *err)
{
    struct run r = {.text = q->text, .now = now_ms, .err = err};
    const struct emu_kql_table *t = lookup(q->table, ctx);
    struct rel cur = {0}, nxt;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof *err);
    if (t == NULL) {
        kql_err_at(err, q->text, q->table_off, q->table_len, "SemanticError", "SEM0100",
                   "Failed to resolve table or column expression named '%s'", q->table);
        return CLC_ERR_INVALID;
    }
    if ((rc = alloc_rel(&cur, t->ncols, t->nrows)) != CLC_OK)
        return rc;
    memcpy(cur.cols, t->cols, t->ncols * sizeof *t->cols);
    if (t->nrows > 0)
        memcpy(cur.rows, t->rows, t->nrows * sizeof *t->rows);
    cur.nrows = t->nrows;
    for (size_t i = 0; i < q->nops && rc == CLC_OK; i++) {
        struct kop *op = &q->ops[i];
        memset(&nxt, 0, sizeof nxt);
        switch (op->kind) {
        case KO_WHERE:
            rc = op_where(&r, op, &cur, &nxt);
            break;
        case KO_PROJECT:
            rc = op_project(&r, op, &cur, &nxt, 0);
            break;
        case KO_EXTEND:
            rc = op_project(&r, op, &cur, &nxt, 1);
            break;
        case KO_SUMMARIZE:
            rc = op_summarize(&r, op, &cur, &nxt);
            break;
        case KO_ORDER:
            rc = op_order(&r, op, &cur, &nxt);
            break;
        case KO_TAKE:
            rc = op_take(op, &cur, &nxt);
            break;
        case KO_COUNT:
            rc = op_count(&r, &cur, &nxt);
            break;
        }
        rel_free(&cur);
        cur = nxt;
    }
    if (rc == CLC_OK) {
        *out = output(&cur, max_rows);
        if (*out == NULL)
            rc = CLC_ERR_NOMEM;
    }
    if (rc == CLC_ERR_NOMEM && err != NULL && err->message[0] == '\0')
        kql_err_at(err, NULL, 0, -1, "InternalError", "", "Out of memory running the query");
    rel_free(&cur);
    for (size_t i = 0; i < r.nowned; i++)
        cJSON_Delete(r.owned[i]);
    free(r.owned);
    return rc;
}
