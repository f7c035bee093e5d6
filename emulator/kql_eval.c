/* KQL scalars: type names, binding of expressions to a schema (columns
 * resolved, operand types checked so that a wrong query fails even on an
 * empty table), evaluation on one stored row, and the order used to sort. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emulator/kql_int.h"

static const char *const type_names[] = {
    [EMU_KQL_NULL] = "null",         [EMU_KQL_BOOL] = "bool", [EMU_KQL_DATETIME] = "datetime",
    [EMU_KQL_DYNAMIC] = "dynamic",   [EMU_KQL_GUID] = "guid", [EMU_KQL_INT] = "int",
    [EMU_KQL_LONG] = "long",         [EMU_KQL_REAL] = "real", [EMU_KQL_STRING] = "string",
    [EMU_KQL_TIMESPAN] = "timespan",
};

const char *emu_kql_type_name(enum emu_kql_type t)
{
    return (size_t)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?";
}

int emu_kql_type_parse(const char *s)
{
    if (s == NULL)
        return -1;
    if (strcmp(s, "boolean") == 0)
        return EMU_KQL_BOOL;
    if (strcmp(s, "double") == 0)
        return EMU_KQL_REAL;
    for (size_t i = 1; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcmp(s, type_names[i]) == 0)
            return (int)i;
    return -1;
}

static int is_num(enum emu_kql_type t)
{
    return t == EMU_KQL_INT || t == EMU_KQL_LONG || t == EMU_KQL_REAL;
}

static int is_text(enum emu_kql_type t)
{
    return t == EMU_KQL_STRING || t == EMU_KQL_GUID || t == EMU_KQL_DYNAMIC;
}

static const char *op_text(enum kx_op op)
{
    static const char *const t[] = {
        [KB_OR] = "or",
        [KB_AND] = "and",
        [KB_EQ] = "==",
        [KB_NE] = "!=",
        [KB_LT] = "<",
        [KB_GT] = ">",
        [KB_LE] = "<=",
        [KB_GE] = ">=",
        [KB_EQ_CI] = "=~",
        [KB_NE_CI] = "!~",
        [KB_CONTAINS] = "contains",
        [KB_NCONTAINS] = "!contains",
        [KB_HAS] = "has",
        [KB_NHAS] = "!has",
        [KB_STARTSWITH] = "startswith",
        [KB_NSTARTSWITH] = "!startswith",
        [KB_ADD] = "+",
        [KB_SUB] = "-",
        [KB_MUL] = "*",
        [KB_DIV] = "/",
    };
    return t[op];
}

static enum clc_err sem(const char *text, const struct kexpr *x, struct emu_kql_error *err,
                        const char *inner, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum clc_err sem(const char *text, const struct kexpr *x, struct emu_kql_error *err,
                        const char *inner, const char *fmt, ...)
{
    char msg[300];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    kql_err_at(err, text, x->off, x->len, "SemanticError", inner, "%s", msg);
    return CLC_ERR_INVALID;
}

/* Result type of a binary operator, or -1 when the operands do not fit. */
static int bin_type(enum kx_op op, enum emu_kql_type a, enum emu_kql_type b)
{
    int an = a == EMU_KQL_NULL, bn = b == EMU_KQL_NULL;

    switch (op) {
    case KB_OR:
    case KB_AND:
        return (a == EMU_KQL_BOOL || an) && (b == EMU_KQL_BOOL || bn) ? EMU_KQL_BOOL : -1;
    case KB_EQ:
    case KB_NE:
    case KB_LT:
    case KB_GT:
    case KB_LE:
    case KB_GE:
        if (an || bn || (is_num(a) && is_num(b)) || (is_text(a) && is_text(b)) || a == b)
            return (a == EMU_KQL_BOOL || b == EMU_KQL_BOOL) && op != KB_EQ && op != KB_NE
                       ? -1
                       : EMU_KQL_BOOL;
        return -1;
    case KB_EQ_CI:
    case KB_NE_CI:
    case KB_CONTAINS:
    case KB_NCONTAINS:
    case KB_HAS:
    case KB_NHAS:
    case KB_STARTSWITH:
    case KB_NSTARTSWITH:
        return (is_text(a) || an) && (is_text(b) || bn) ? EMU_KQL_BOOL : -1;
    case KB_ADD:
    case KB_SUB:
        if (a == EMU_KQL_DATETIME && b == EMU_KQL_TIMESPAN)
            return EMU_KQL_DATETIME;
        if (op == KB_ADD && a == EMU_KQL_TIMESPAN && b == EMU_KQL_DATETIME)
            return EMU_KQL_DATETIME;
        if (op == KB_SUB && a == EMU_KQL_DATETIME && b == EMU_KQL_DATETIME)
            return EMU_KQL_TIMESPAN;
        if (a == EMU_KQL_TIMESPAN && b == EMU_KQL_TIMESPAN)
            return EMU_KQL_TIMESPAN;
        /* fall through */
    case KB_MUL:
    case KB_DIV:
        if (is_num(a) && is_num(b))
            return a == EMU_KQL_REAL || b == EMU_KQL_REAL ? EMU_KQL_REAL : EMU_KQL_LONG;
        return -1;
    }
    return -1;
}

enum clc_err kql_bind(const char *text, struct kexpr *x, const struct emu_kql_col *cols,
                      size_t ncols, int allow_agg, struct emu_kql_error *err)
{
    enum clc_err rc;
    int t;

    switch (x->kind) {
    case KX_LIT:
        x->type = x->lit.t;
        return CLC_OK;
    case KX_COL:
        for (size_t i = 0; i < ncols; i++)
            if (strcmp(cols[i].name, x->name) == 0) {
                x->col = (int)i;
                x->type = cols[i].type;
                return CLC_OK;
            }
        return sem(text, x, err, "SEM0100", "Failed to resolve scalar expression named '%s'",
                   x->name);
    case KX_BIN:
        if ((rc = kql_bind(text, x->a, cols, ncols, 0, err)) != CLC_OK ||
            (rc = kql_bind(text, x->b, cols, ncols, 0, err)) != CLC_OK)
            return rc;
        t = bin_type(x->op, x->a->type, x->b->type);
        if (t < 0)
            return sem(text, x, err, "SEM0025",
                       "Cannot apply operator '%s' to operands of types %s and %s", op_text(x->op),
                       emu_kql_type_name(x->a->type), emu_kql_type_name(x->b->type));
        x->type = (enum emu_kql_type)t;
        return CLC_OK;
    case KX_CALL:
        if (x->fn >= KF_FIRST_AGG && !allow_agg)
            return sem(text, x, err, "SEM0221",
                       "Aggregate function '%s' is only allowed directly in summarize", x->name);
        if (x->a && (rc = kql_bind(text, x->a, cols, ncols, 0, err)) != CLC_OK)
            return rc;
        switch (x->fn) {
        case KF_NOW:
            x->type = EMU_KQL_DATETIME;
            return CLC_OK;
        case KF_AGO:
            if (x->a->type != EMU_KQL_TIMESPAN)
                return sem(text, x, err, "SEM0219", "ago() expects a timespan, got %s",
                           emu_kql_type_name(x->a->type));
            x->type = EMU_KQL_DATETIME;
            return CLC_OK;
        case KF_NOT:
            if (x->a->type != EMU_KQL_BOOL && x->a->type != EMU_KQL_NULL)
                return sem(text, x, err, "SEM0219", "not() expects a bool, got %s",
                           emu_kql_type_name(x->a->type));
            x->type = EMU_KQL_BOOL;
            return CLC_OK;
        case KF_ISNULL:
        case KF_ISNOTNULL:
        case KF_ISEMPTY:
        case KF_ISNOTEMPTY:
            x->type = EMU_KQL_BOOL;
            return CLC_OK;
        case KF_COUNT:
            x->type = EMU_KQL_LONG;
            return CLC_OK;
        case KF_MIN:
        case KF_MAX:
            if (x->a->type == EMU_KQL_DYNAMIC || x->a->type == EMU_KQL_NULL)
                return sem(text, x, err, "SEM0219", "%s() cannot order values of type %s", x->name,
                           emu_kql_type_name(x->a->type));
            x->type = x->a->type;
            return CLC_OK;
        case KF_SUM:
            if (!is_num(x->a->type) && x->a->type != EMU_KQL_TIMESPAN)
                return sem(text, x, err, "SEM0219", "sum() expects a number, got %s",
                           emu_kql_type_name(x->a->type));
            x->type = x->a->type == EMU_KQL_INT ? EMU_KQL_LONG : x->a->type;
            return CLC_OK;
        }
    }
    return sem(text, x, err, "SEM0001", "Unsupported expression");
}

struct kval kql_cell(const cJSON *row, size_t i, enum emu_kql_type t)
{
    const cJSON *c = cJSON_GetArrayItem(row, (int)i);
    struct kval v = {.t = t};

    if (c == NULL || cJSON_IsNull(c)) {
        v.null = 1;
        return v;
    }
    switch (t) {
    case EMU_KQL_BOOL:
        v.i = cJSON_IsTrue(c);
        break;
    case EMU_KQL_INT:
    case EMU_KQL_LONG:
    case EMU_KQL_DATETIME:
    case EMU_KQL_TIMESPAN:
        v.i = (int64_t)c->valuedouble;
        break;
    case EMU_KQL_REAL:
        v.r = c->valuedouble;
        break;
    default:
        v.s = cJSON_IsString(c) ? c->valuestring : "";
        break;
    }
    return v;
}

cJSON *kql_to_stored(const struct kval *v, enum emu_kql_type t)
{
    if (v->null || v->t == EMU_KQL_NULL)
        return cJSON_CreateNull();
    switch (t) {
    case EMU_KQL_BOOL:
        return cJSON_CreateBool(v->i != 0);
    case EMU_KQL_REAL:
        return cJSON_CreateNumber(v->t == EMU_KQL_REAL ? v->r : (double)v->i);
    case EMU_KQL_INT:
    case EMU_KQL_LONG:
    case EMU_KQL_DATETIME:
    case EMU_KQL_TIMESPAN:
        return cJSON_CreateNumber((double)v->i);
    default:
        return cJSON_CreateString(v->s ? v->s : "");
    }
}

static double num(const struct kval *v)
{
    return v->t == EMU_KQL_REAL ? v->r : (double)v->i;
}

int kql_compare(const struct kval *a, const struct kval *b)
{
    int an = a->null || a->t == EMU_KQL_NULL, bn = b->null || b->t == EMU_KQL_NULL;

    if (an || bn)
        return an - bn ? (an ? -1 : 1) : 0;
    if (a->t == EMU_KQL_REAL || b->t == EMU_KQL_REAL) {
        double x = num(a), y = num(b);
        return x < y ? -1 : x > y;
    }
    if (is_text(a->t))
        return strcmp(a->s, b->s);
    return a->i < b->i ? -1 : a->i > b->i;
}

int kql_truthy(const struct kval *v)
{
    return v->t == EMU_KQL_BOOL && !v->null && v->i;
}

/* Case-insensitive substring search; with whole_term the match must start
 * and end at term boundaries (anything not a letter or digit), like has. */
static int find_ci(const char *hay, const char *needle, int whole_term)
{
    size_t hn = strlen(hay), nn = strlen(needle);

    if (nn == 0)
        return !whole_term;
    for (size_t i = 0; i + nn <= hn; i++) {
        if (strncasecmp(hay + i, needle, nn) != 0)
            continue;
        if (whole_term && ((i > 0 && isalnum((unsigned char)hay[i - 1])) ||
                           (i + nn < hn && isalnum((unsigned char)hay[i + nn]))))
            continue;
        return 1;
    }
    return 0;
}

static struct kval bool_val(int b)
{
    struct kval v = {.t = EMU_KQL_BOOL, .i = b != 0};
    return v;
}

static struct kval null_of(enum emu_kql_type t)
{
    struct kval v = {.t = t, .null = 1};
    return v;
}

static struct kval eval_bin(const struct kexpr *x, const cJSON *row, int64_t now)
{
    struct kval a = kql_eval(x->a, row, now), b;
    int an, bn;

    /* and/or: false and null is false, true or null is true, as in KQL. */
    if (x->op == KB_AND || x->op == KB_OR) {
        int want = x->op == KB_OR;
        if (!a.null && a.t == EMU_KQL_BOOL && a.i == want)
            return bool_val(want);
        b = kql_eval(x->b, row, now);
        if (!b.null && b.t == EMU_KQL_BOOL && b.i == want)
            return bool_val(want);
        if (a.null || a.t == EMU_KQL_NULL || b.null || b.t == EMU_KQL_NULL)
            return null_of(EMU_KQL_BOOL);
        return bool_val(!want);
    }
    b = kql_eval(x->b, row, now);
    an = a.null || a.t == EMU_KQL_NULL;
    bn = b.null || b.t == EMU_KQL_NULL;
    switch (x->op) {
    case KB_EQ:
        if (an || bn)
            return an && bn ? bool_val(1) : null_of(EMU_KQL_BOOL);
        return bool_val(kql_compare(&a, &b) == 0);
    case KB_NE:
        if (an || bn)
            return an && bn ? bool_val(0) : null_of(EMU_KQL_BOOL);
        return bool_val(kql_compare(&a, &b) != 0);
    case KB_LT:
    case KB_GT:
    case KB_LE:
    case KB_GE: {
        if (an || bn)
            return null_of(EMU_KQL_BOOL);
        int c = kql_compare(&a, &b);
        return bool_val(x->op == KB_LT   ? c < 0
                        : x->op == KB_GT ? c > 0
                        : x->op == KB_LE ? c <= 0
                                         : c >= 0);
    }
    default:
        break;
    }
    if (x->op >= KB_EQ_CI && x->op <= KB_NSTARTSWITH) {
        /* String operators treat a null string as empty, as KQL does. */
        const char *s = an ? "" : a.s, *n = bn ? "" : b.s;
        switch (x->op) {
        case KB_EQ_CI:
            return bool_val(strcasecmp(s, n) == 0);
        case KB_NE_CI:
            return bool_val(strcasecmp(s, n) != 0);
        case KB_CONTAINS:
            return bool_val(find_ci(s, n, 0));
        case KB_NCONTAINS:
            return bool_val(!find_ci(s, n, 0));
        case KB_HAS:
            return bool_val(find_ci(s, n, 1));
        case KB_NHAS:
            return bool_val(!find_ci(s, n, 1));
        case KB_STARTSWITH:
            return bool_val(strncasecmp(s, n, strlen(n)) == 0);
        default:
            return bool_val(strncasecmp(s, n, strlen(n)) != 0);
        }
    }
    /* Arithmetic. */
    if (an || bn)
        return null_of(x->type);
    struct kval v = {.t = x->type};
    if (x->type == EMU_KQL_REAL) {
        double p = num(&a), q = num(&b);
        v.r = x->op == KB_ADD ? p + q : x->op == KB_SUB ? p - q : x->op == KB_MUL ? p * q : p / q;
        if (!isfinite(v.r))
            v.null = 1;
        return v;
    }
    switch (x->op) {
    case KB_ADD:
        v.null = __builtin_add_overflow(a.i, b.i, &v.i);
        break;
    case KB_SUB:
        v.null = __builtin_sub_overflow(a.i, b.i, &v.i);
        break;
    case KB_MUL:
        v.null = __builtin_mul_overflow(a.i, b.i, &v.i);
        break;
    default:
        if (b.i == 0 || (a.i == INT64_MIN && b.i == -1))
            v.null = 1;
        else
            v.i = a.i / b.i;
        break;
    }
    return v;
}

struct kval kql_eval(const struct kexpr *x, const cJSON *row, int64_t now)
{
    struct kval a;

    switch (x->kind) {
    case KX_LIT:
        return x->lit;
    case KX_COL:
        return kql_cell(row, (size_t)x->col, x->type);
    case KX_BIN:
        return eval_bin(x, row, now);
    case KX_CALL:
        break;
    }
    switch (x->fn) {
    case KF_NOW: {
        struct kval v = {.t = EMU_KQL_DATETIME, .i = now};
        return v;
    }
    case KF_AGO: {
        a = kql_eval(x->a, row, now);
        struct kval v = {.t = EMU_KQL_DATETIME};
        v.null = a.null || __builtin_sub_overflow(now, a.i, &v.i);
        return v;
    }
    case KF_NOT:
        a = kql_eval(x->a, row, now);
        return a.null || a.t == EMU_KQL_NULL ? null_of(EMU_KQL_BOOL) : bool_val(!a.i);
    case KF_ISNULL:
    case KF_ISNOTNULL:
        a = kql_eval(x->a, row, now);
        return bool_val((a.null || a.t == EMU_KQL_NULL) == (x->fn == KF_ISNULL));
    case KF_ISEMPTY:
    case KF_ISNOTEMPTY: {
        a = kql_eval(x->a, row, now);
        int empty = a.null || a.t == EMU_KQL_NULL || (is_text(a.t) && a.s[0] == '\0');
        return bool_val(empty == (x->fn == KF_ISEMPTY));
    }
    default:
        /* Aggregates are computed by summarize, never here. */
        return null_of(x->type);
    }
}
