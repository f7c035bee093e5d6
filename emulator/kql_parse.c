/* The KQL parser: recursive descent over the tokens into a table name and a
 * pipeline of operators (where, project, extend, summarize, order/sort by,
 * take/limit, count). Scalar precedence, loosest first: or; and; comparisons
 * (== != < > <= >= =~ !~ contains has startswith and their ! forms); + -;
 * * /; unary minus on literals; literals, columns, calls, parentheses. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/kql_int.h"

#define MAX_DEPTH 64
#define MAX_ITEMS 64

struct parser {
    const char *text;
    struct ktokens toks;
    size_t i;
    int depth;
    struct emu_kql_error *err;
};

static const struct ktoken *peek(const struct parser *p)
{
    return &p->toks.v[p->i];
}

static const struct ktoken *next(struct parser *p)
{
    const struct ktoken *t = &p->toks.v[p->i];
    if (t->t != KT_EOF)
        p->i++;
    return t;
}

static int is_word(const struct ktoken *t, const char *w)
{
    return t->t == KT_IDENT && strcmp(t->s, w) == 0;
}

static enum clc_err syntax(struct parser *p, const struct ktoken *t, const char *what)
{
    char tok[64];
    if (t->t == KT_EOF)
        snprintf(tok, sizeof tok, "<end of query>");
    else
        snprintf(tok, sizeof tok, "%.*s", t->len < 40 ? t->len : 40, p->text + t->off);
    kql_err_at(p->err, p->text, t->off, t->len, "SyntaxError", "SYN0002",
               "Query could not be parsed at '%s': %s", tok, what);
    return CLC_ERR_PARSE;
}

void kql_expr_free(struct kexpr *x)
{
    if (x == NULL)
        return;
    kql_expr_free(x->a);
    kql_expr_free(x->b);
    free(x->lit_s);
    free(x);
}

static struct kexpr *new_expr(enum kx_kind k, const struct ktoken *t)
{
    struct kexpr *x = calloc(1, sizeof *x);
    if (x != NULL) {
        x->kind = k;
        x->off = t->off;
        x->len = t->len;
        x->col = -1;
    }
    return x;
}

static enum clc_err parse_expr(struct parser *p, struct kexpr **out);

static const struct {
    const char *name;
    enum kx_fn fn;
    int nargs;
} functions[] = {
    {"now", KF_NOW, 0},
    {"ago", KF_AGO, 1},
    {"not", KF_NOT, 1},
    {"isnull", KF_ISNULL, 1},
    {"isnotnull", KF_ISNOTNULL, 1},
    {"isempty", KF_ISEMPTY, 1},
    {"isnotempty", KF_ISNOTEMPTY, 1},
    {"count", KF_COUNT, 0},
    {"min", KF_MIN, 1},
    {"max", KF_MAX, 1},
    {"sum", KF_SUM, 1},
};

static enum clc_err parse_call(struct parser *p, const struct ktoken *name, struct kexpr **out)
{
    size_t k;
    struct kexpr *x;
    enum clc_err rc;

    for (k = 0; k < sizeof functions / sizeof functions[0]; k++)
        if (strcmp(functions[k].name, name->s) == 0)
            break;
    if (k == sizeof functions / sizeof functions[0]) {
        kql_err_at(p->err, p->text, name->off, name->len, "SemanticError", "SEM0260",
                   "Unknown function: '%s' (supported: now, ago, not, isnull, isnotnull, "
                   "isempty, isnotempty; in summarize: count, min, max, sum)",
                   name->s);
        return CLC_ERR_PARSE;
    }
    x = new_expr(KX_CALL, name);
    if (x == NULL)
        return CLC_ERR_NOMEM;
    x->fn = functions[k].fn;
    snprintf(x->name, sizeof x->name, "%s", name->s);
    next(p); /* ( */
    if (peek(p)->t != KT_RP) {
        for (;;) {
            struct kexpr *arg = NULL;
            if (x->nargs == 2) {
                kql_expr_free(x);
                return syntax(p, peek(p), "too many arguments");
            }
            rc = parse_expr(p, &arg);
            if (rc != CLC_OK) {
                kql_expr_free(x);
                return rc;
            }
            if (x->nargs == 0)
                x->a = arg;
            else
                x->b = arg;
            x->nargs++;
            if (peek(p)->t != KT_COMMA)
                break;
            next(p);
        }
    }
    if (peek(p)->t != KT_RP) {
        kql_expr_free(x);
        return syntax(p, peek(p), "expected ')' to close the function call");
    }
    next(p);
    if (x->nargs != functions[k].nargs) {
        kql_err_at(p->err, p->text, name->off, name->len, "SemanticError", "SEM0219",
                   "Function '%s' expects %d argument%s, got %d", name->s, functions[k].nargs,
                   functions[k].nargs == 1 ? "" : "s", x->nargs);
        kql_expr_free(x);
        return CLC_ERR_PARSE;
    }
    *out = x;
    return CLC_OK;
}

static enum clc_err parse_primary(struct parser *p, struct kexpr **out)
{
    const struct ktoken *t = peek(p);
    struct kexpr *x = NULL;
    enum clc_err rc;

    *out = NULL;
    if (++p->depth > MAX_DEPTH) {
        kql_err_at(p->err, p->text, t->off, t->len, "SyntaxError", "SYN0003",
                   "The expression is nested more than %d levels deep", MAX_DEPTH);
        return CLC_ERR_LIMIT;
    }
    switch (t->t) {
    case KT_LP:
        next(p);
        rc = parse_expr(p, &x);
        if (rc != CLC_OK)
            return rc;
        if (peek(p)->t != KT_RP) {
            kql_expr_free(x);
            return syntax(p, peek(p), "expected ')'");
        }
        next(p);
        break;
    case KT_MINUS: {
        next(p);
        const struct ktoken *n = peek(p);
        if (n->t != KT_INT && n->t != KT_REAL && n->t != KT_TIMESPAN)
            return syntax(p, n, "unary '-' applies only to a number or timespan literal");
        rc = parse_primary(p, &x);
        if (rc != CLC_OK)
            return rc;
        x->lit.i = -x->lit.i;
        x->lit.r = -x->lit.r;
        x->off = t->off;
        break;
    }
    case KT_INT:
    case KT_REAL:
    case KT_TIMESPAN:
    case KT_DATETIME:
    case KT_STRING:
        x = new_expr(KX_LIT, t);
        if (x == NULL)
            return CLC_ERR_NOMEM;
        x->lit.t = t->t == KT_INT        ? EMU_KQL_LONG
                   : t->t == KT_REAL     ? EMU_KQL_REAL
                   : t->t == KT_TIMESPAN ? EMU_KQL_TIMESPAN
                   : t->t == KT_DATETIME ? EMU_KQL_DATETIME
                                         : EMU_KQL_STRING;
        x->lit.i = t->i;
        x->lit.r = t->r;
        if (t->t == KT_STRING) {
            x->lit_s = strdup(t->s);
            if (x->lit_s == NULL) {
                kql_expr_free(x);
                return CLC_ERR_NOMEM;
            }
            x->lit.s = x->lit_s;
        }
        next(p);
        break;
    case KT_IDENT:
        if (p->toks.v[p->i + 1].t == KT_LP) {
            next(p);
            rc = parse_call(p, t, &x);
            if (rc != CLC_OK)
                return rc;
            break;
        }
        x = new_expr(KX_LIT, t);
        if (x == NULL)
            return CLC_ERR_NOMEM;
        if (strcmp(t->s, "true") == 0 || strcmp(t->s, "false") == 0) {
            x->lit.t = EMU_KQL_BOOL;
            x->lit.i = t->s[0] == 't';
        } else if (strcmp(t->s, "null") == 0) {
            x->lit.t = EMU_KQL_NULL;
            x->lit.null = 1;
        } else {
            x->kind = KX_COL;
            snprintf(x->name, sizeof x->name, "%s", t->s);
        }
        next(p);
        break;
    default:
        return syntax(p, t, "expected a column, literal, function call or '('");
    }
    p->depth--;
    *out = x;
    return CLC_OK;
}

/* Binary levels: 0 or, 1 and, 2 comparison, 3 additive, 4 multiplicative. */
static int binop_of(const struct ktoken *t, int level, enum kx_op *op)
{
    static const struct {
        const char *word;
        enum kx_op op;
    } words[] = {
        {"contains", KB_CONTAINS}, {"!contains", KB_NCONTAINS},   {"has", KB_HAS},
        {"!has", KB_NHAS},         {"startswith", KB_STARTSWITH}, {"!startswith", KB_NSTARTSWITH},
    };
    switch (level) {
    case 0:
        *op = KB_OR;
        return is_word(t, "or");
    case 1:
        *op = KB_AND;
        return is_word(t, "and");
    case 2:
        switch (t->t) {
        case KT_EQ:
            *op = KB_EQ;
            return 1;
        case KT_NE:
            *op = KB_NE;
            return 1;
        case KT_LT:
            *op = KB_LT;
            return 1;
        case KT_GT:
            *op = KB_GT;
            return 1;
        case KT_LE:
            *op = KB_LE;
            return 1;
        case KT_GE:
            *op = KB_GE;
            return 1;
        case KT_EQ_CI:
            *op = KB_EQ_CI;
            return 1;
        case KT_NE_CI:
            *op = KB_NE_CI;
            return 1;
        case KT_IDENT:
        case KT_NEGWORD:
            for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
                if (strcmp(t->s, words[k].word) == 0) {
                    *op = words[k].op;
                    return 1;
                }
            return 0;
        default:
            return 0;
        }
    case 3:
        *op = t->t == KT_PLUS ? KB_ADD : KB_SUB;
        return t->t == KT_PLUS || t->t == KT_MINUS;
    default:
        *op = t->t == KT_STAR ? KB_MUL : KB_DIV;
        return t->t == KT_STAR || t->t == KT_SLASH;
    }
}

static enum clc_err parse_level(struct parser *p, int level, struct kexpr **out)
{
    struct kexpr *lhs = NULL;
    enum clc_err rc;
    enum kx_op op;

    *out = NULL;
    rc = level == 5 ? parse_primary(p, &lhs) : parse_level(p, level + 1, &lhs);
    if (rc != CLC_OK)
        return rc;
    while (level < 5 && binop_of(peek(p), level, &op)) {
        const struct ktoken *t = next(p);
        struct kexpr *rhs = NULL, *x;
        rc = parse_level(p, level + 1, &rhs);
        if (rc != CLC_OK) {
            kql_expr_free(lhs);
            return rc;
        }
        x = new_expr(KX_BIN, t);
        if (x == NULL) {
            kql_expr_free(lhs);
            kql_expr_free(rhs);
            return CLC_ERR_NOMEM;
        }
        x->op = op;
        x->a = lhs;
        x->b = rhs;
        lhs = x;
        /* Comparisons do not chain (a < b < c is refused, as in KQL). */
        if (level == 2 && binop_of(peek(p), 2, &op)) {
            kql_expr_free(lhs);
            return syntax(p, peek(p), "comparisons cannot be chained; use 'and'");
        }
    }
    *out = lhs;
    return CLC_OK;
}

static enum clc_err parse_expr(struct parser *p, struct kexpr **out)
{
    return parse_level(p, 0, out);
}

static void items_free(struct kitem *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        kql_expr_free(v[i].e);
    free(v);
}

/* item := [Name '='] expr [asc|desc]; names are required when need_name. */
static enum clc_err parse_items(struct parser *p, const char *opname, int need_name, int order,
                                struct kitem **out, size_t *n)
{
    struct kitem *v = calloc(MAX_ITEMS, sizeof *v);
    enum clc_err rc = CLC_OK;

    *out = NULL;
    *n = 0;
    if (v == NULL)
        return CLC_ERR_NOMEM;
    for (;;) {
        const struct ktoken *t = peek(p);
        struct kitem *it = &v[*n];
        if (*n == MAX_ITEMS) {
            rc = syntax(p, t, "too many items");
            goto fail;
        }
        it->off = t->off;
        if (t->t == KT_IDENT && p->toks.v[p->i + 1].t == KT_ASSIGN) {
            snprintf(it->name, sizeof it->name, "%s", t->s);
            next(p);
            next(p);
        } else if (need_name) {
            char what[96];
            snprintf(what, sizeof what, "'%s' needs 'Name = expression'", opname);
            rc = syntax(p, t, what);
            goto fail;
        }
        rc = parse_expr(p, &it->e);
        if (rc != CLC_OK)
            goto fail;
        (*n)++;
        if (order && (is_word(peek(p), "asc") || is_word(peek(p), "desc")))
            it->desc = strcmp(next(p)->s, "desc") == 0;
        else
            it->desc = 1; /* KQL sorts descending unless told otherwise */
        if (peek(p)->t != KT_COMMA)
            break;
        next(p);
    }
    *out = v;
    return CLC_OK;
fail:
    items_free(v, *n);
    *n = 0;
    return rc;
}

static enum clc_err parse_op(struct parser *p, struct kop *op)
{
    const struct ktoken *t = peek(p);
    enum clc_err rc;

    op->off = t->off;
    op->len = t->len;
    if (t->t != KT_IDENT)
        return syntax(p, t,
                      "expected an operator after '|' (where, project, extend, summarize, "
                      "order by, sort by, take, limit, count)");
    if (is_word(t, "where") || is_word(t, "filter")) {
        next(p);
        op->kind = KO_WHERE;
        return parse_expr(p, &op->pred);
    }
    if (is_word(t, "project")) {
        next(p);
        op->kind = KO_PROJECT;
        return parse_items(p, "project", 0, 0, &op->items, &op->nitems);
    }
    if (is_word(t, "extend")) {
        next(p);
        op->kind = KO_EXTEND;
        return parse_items(p, "extend", 1, 0, &op->items, &op->nitems);
    }
    if (is_word(t, "summarize")) {
        next(p);
        op->kind = KO_SUMMARIZE;
        rc = parse_items(p, "summarize", 0, 0, &op->items, &op->nitems);
        if (rc != CLC_OK || !is_word(peek(p), "by"))
            return rc;
        next(p);
        return parse_items(p, "summarize by", 0, 0, &op->by, &op->nby);
    }
    if (is_word(t, "order") || is_word(t, "sort")) {
        next(p);
        if (!is_word(peek(p), "by"))
            return syntax(p, peek(p), "expected 'by'");
        next(p);
        op->kind = KO_ORDER;
        return parse_items(p, "order by", 0, 1, &op->items, &op->nitems);
    }
    if (is_word(t, "take") || is_word(t, "limit")) {
        next(p);
        op->kind = KO_TAKE;
        if (peek(p)->t != KT_INT)
            return syntax(p, peek(p), "expected a whole number of rows");
        op->n = next(p)->i;
        return CLC_OK;
    }
    if (is_word(t, "count")) {
        next(p);
        op->kind = KO_COUNT;
        return CLC_OK;
    }
    return syntax(p, t,
                  "unknown or unsupported operator (supported: where, project, extend, "
                  "summarize, order by, sort by, take, limit, count)");
}

void emu_kql_free(struct emu_kql_query *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; q->ops != NULL && i < q->nops; i++) {
        kql_expr_free(q->ops[i].pred);
        items_free(q->ops[i].items, q->ops[i].nitems);
        items_free(q->ops[i].by, q->ops[i].nby);
    }
    free(q->ops);
    free(q->text);
    free(q);
}

enum clc_err emu_kql_parse(const char *text, struct emu_kql_query **out, struct emu_kql_error *err)
{
    struct parser p = {.text = text, .err = err};
    struct emu_kql_query *q = NULL;
    enum clc_err rc;
    size_t nops = 0;

    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof *err);
    if (strlen(text) > EMU_KQL_QUERY_MAX) {
        kql_err_at(err, NULL, 0, -1, "SyntaxError", "SYN0001",
                   "The query is longer than %d characters", EMU_KQL_QUERY_MAX);
        return CLC_ERR_LIMIT;
    }
    rc = kql_lex(text, &p.toks, err);
    if (rc != CLC_OK)
        return rc;
    q = calloc(1, sizeof *q);
    if (q == NULL || (q->text = strdup(text)) == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < p.toks.n; i++)
        nops += p.toks.v[i].t == KT_PIPE;
    q->ops = calloc(nops + 1, sizeof *q->ops);
    if (q->ops == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (peek(&p)->t != KT_IDENT) {
        rc = syntax(&p, peek(&p), "a query starts with a table name");
        goto out;
    }
    snprintf(q->table, sizeof q->table, "%s", peek(&p)->s);
    q->table_off = peek(&p)->off;
    q->table_len = peek(&p)->len;
    next(&p);
    while (peek(&p)->t == KT_PIPE) {
        next(&p);
        rc = parse_op(&p, &q->ops[q->nops++]);
        if (rc != CLC_OK)
            goto out;
    }
    if (peek(&p)->t != KT_EOF) {
        rc = syntax(&p, peek(&p), "expected '|' or the end of the query");
        goto out;
    }
    *out = q;
    q = NULL;
out:
    kql_tokens_free(&p.toks);
    emu_kql_free(q);
    return rc;
}
