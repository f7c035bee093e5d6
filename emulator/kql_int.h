/* Inside the KQL engine: tokens (kql_lex.c), the syntax tree the parser
 * builds (kql_parse.c), scalar values and expression binding/evaluation
 * (kql_eval.c), and the tabular operators (kql_run.c). */
#ifndef EMU_KQL_INT_H
#define EMU_KQL_INT_H

#include <stdarg.h>
#include "emulator/kql.h"

/* ---- tokens ---- */

enum ktok {
    KT_EOF = 0,
    KT_IDENT,
    KT_NEGWORD, /* "!contains", "!has", "!startswith" */
    KT_INT,
    KT_REAL,
    KT_TIMESPAN,
    KT_STRING,
    KT_DATETIME, /* datetime(...) literal; value in i (ms) */
    KT_PIPE,
    KT_COMMA,
    KT_LP,
    KT_RP,
    KT_ASSIGN, /* = */
    KT_EQ,     /* == */
    KT_NE,     /* != or <> */
    KT_LT,
    KT_GT,
    KT_LE,
    KT_GE,
    KT_EQ_CI, /* =~ */
    KT_NE_CI, /* !~ */
    KT_PLUS,
    KT_MINUS,
    KT_STAR,
    KT_SLASH,
};

struct ktoken {
    enum ktok t;
    int off; /* byte offset in the query */
    int len;
    int64_t i; /* KT_INT, KT_TIMESPAN (ms), KT_DATETIME (ms) */
    double r;  /* KT_REAL */
    char *s;   /* KT_STRING value (decoded), KT_IDENT/KT_NEGWORD text; owned */
};

struct ktokens {
    struct ktoken *v;
    size_t n;
};

/* Tokenizes text (NUL-terminated); the last token is KT_EOF. */
enum clc_err kql_lex(const char *text, struct ktokens *out, struct emu_kql_error *err);
void kql_tokens_free(struct ktokens *t);
/* Fills err with code/inner code, the line and position of byte offset off
 * in text, the token text (len bytes at off) and a message. */
void kql_err_at(struct emu_kql_error *err, const char *text, int off, int len, const char *code,
                const char *inner, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* ---- values ---- */

struct kval {
    enum emu_kql_type t; /* EMU_KQL_NULL: untyped null */
    int null;            /* typed null */
    int64_t i;           /* bool, int, long, datetime, timespan */
    double r;            /* real */
    const char *s;       /* string, guid, dynamic (JSON text); borrowed */
};

/* ---- syntax tree ---- */

enum kx_kind { KX_LIT, KX_COL, KX_BIN, KX_CALL };

enum kx_op {
    KB_OR,
    KB_AND,
    KB_EQ,
    KB_NE,
    KB_LT,
    KB_GT,
    KB_LE,
    KB_GE,
    KB_EQ_CI,
    KB_NE_CI,
    KB_CONTAINS,
    KB_NCONTAINS,
    KB_HAS,
    KB_NHAS,
    KB_STARTSWITH,
    KB_NSTARTSWITH,
    KB_ADD,
    KB_SUB,
    KB_MUL,
    KB_DIV,
};

enum kx_fn {
    KF_NOW,
    KF_AGO,
    KF_NOT,
    KF_ISNULL,
    KF_ISNOTNULL,
    KF_ISEMPTY,
    KF_ISNOTEMPTY,
    KF_COUNT, /* aggregates from here on */
    KF_MIN,
    KF_MAX,
    KF_SUM,
};
#define KF_FIRST_AGG KF_COUNT

struct kexpr {
    enum kx_kind kind;
    int off, len; /* source span of the head token, for errors */
    struct kval lit;
    char *lit_s; /* owned text behind lit.s */
    char name[EMU_KQL_NAME_MAX];
    enum kx_op op;
    enum kx_fn fn;
    struct kexpr *a, *b; /* operands / arguments */
    int nargs;
    /* set by binding */
    enum emu_kql_type type;
    int col;
};

struct kitem {
    char name[EMU_KQL_NAME_MAX]; /* "" = derived from the expression */
    struct kexpr *e;
    int desc; /* order by */
    int off;
};

enum kop_kind { KO_WHERE, KO_PROJECT, KO_EXTEND, KO_SUMMARIZE, KO_ORDER, KO_TAKE, KO_COUNT };

struct kop {
    enum kop_kind kind;
    int off, len;
    struct kexpr *pred;  /* where */
    struct kitem *items; /* project, extend, summarize aggregates, order keys */
    size_t nitems;
    struct kitem *by; /* summarize */
    size_t nby;
    int64_t n; /* take */
};

struct emu_kql_query {
    char *text;
    char table[EMU_KQL_NAME_MAX];
    int table_off, table_len;
    struct kop *ops;
    size_t nops;
};

void kql_expr_free(struct kexpr *x);

/* ---- binding and evaluation (kql_eval.c) ---- */

/* Resolves columns against cols and computes types; aggregates are allowed
 * only when allow_agg (summarize). CLC_ERR_INVALID with a SemanticError. */
enum clc_err kql_bind(const char *text, struct kexpr *x, const struct emu_kql_col *cols,
                      size_t ncols, int allow_agg, struct emu_kql_error *err);
/* Evaluates a bound scalar expression on one row. */
struct kval kql_eval(const struct kexpr *x, const cJSON *row, int64_t now_ms);
/* The value of column i (of type t) in a stored row. */
struct kval kql_cell(const cJSON *row, size_t i, enum emu_kql_type t);
/* A stored-format cJSON item for v (as type t); NULL on allocation failure. */
cJSON *kql_to_stored(const struct kval *v, enum emu_kql_type t);
/* Total order for sorting and grouping: nulls first; <0, 0, >0. */
int kql_compare(const struct kval *a, const struct kval *b);
/* 1 when the value is "true" for where. */
int kql_truthy(const struct kval *v);

#endif
