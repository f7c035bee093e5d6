/* The emulator's KQL subset: tokenizer and parser (each operator, precedence,
 * errors with line and position), binding (unknown columns, wrong types) and
 * evaluation over a small in-memory table, plus the date-time text forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emulator/kql.h"

#define NOW 1700000000000LL /* 2023-11-14T22:13:20Z */
#define HOUR 3600000LL
#define DAY (24 * HOUR)

static const struct emu_kql_col cols[] = {
    {"TimeGenerated", EMU_KQL_DATETIME},
    {"Name", EMU_KQL_STRING},
    {"N", EMU_KQL_LONG},
    {"R", EMU_KQL_REAL},
    {"Ok", EMU_KQL_BOOL},
    {"Vault", EMU_KQL_STRING},
};

static cJSON *rows_doc;
static cJSON *rows[8];
static size_t nrows;
static struct emu_kql_table table = {"T", cols, sizeof cols / sizeof cols[0], rows, 0};

static const struct emu_kql_table *lookup(const char *name, void *ctx)
{
    (void)ctx;
    return strcmp(name, "T") == 0 ? &table : NULL;
}

static int setup(void **state)
{
    (void)state;
    char text[1024];
    snprintf(text, sizeof text,
             "[[%lld,\"alpha-one\",1,1.5,true,\"v1\"],"
             "[%lld,\"Beta two\",2,null,false,\"v2\"],"
             "[%lld,\"gamma\",3,2.5,true,\"v1\"],"
             "[%lld,null,null,0.5,null,\"v2\"],"
             "[%lld,\"delta.alpha\",5,-1,false,\"v1\"]]",
             NOW - 2 * DAY, NOW - HOUR, NOW - 10 * 60000, NOW, NOW - 3 * DAY);
    rows_doc = cJSON_Parse(text);
    if (rows_doc == NULL)
        return -1;
    nrows = 0;
    cJSON *r;
    cJSON_ArrayForEach(r, rows_doc) rows[nrows++] = r;
    table.nrows = nrows;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    cJSON_Delete(rows_doc);
    return 0;
}

/* Runs q and returns the rows as compact JSON (caller frees), or NULL with
 * err filled; *cols_out gets the columns as "Name:type,..." when not NULL. */
static char *run(const char *q, struct emu_kql_error *err, char *cols_out, size_t cols_len,
                 enum clc_err *rc_out)
{
    struct emu_kql_query *query = NULL;
    cJSON *out = NULL;
    enum clc_err rc = emu_kql_parse(q, &query, err);
    char *text = NULL;

    if (rc == CLC_OK)
        rc = emu_kql_run(query, lookup, NULL, NOW, 0, &out, err);
    if (rc_out)
        *rc_out = rc;
    if (rc == CLC_OK) {
        text = cJSON_PrintUnformatted(cJSON_GetObjectItem(out, "rows"));
        assert_string_equal(cJSON_GetObjectItem(out, "name")->valuestring, "PrimaryResult");
        if (cols_out) {
            const cJSON *c;
            cols_out[0] = '\0';
            cJSON_ArrayForEach(c, cJSON_GetObjectItem(out, "columns"))
            {
                snprintf(cols_out + strlen(cols_out), cols_len - strlen(cols_out), "%s%s:%s",
                         cols_out[0] ? "," : "", cJSON_GetObjectItem(c, "name")->valuestring,
                         cJSON_GetObjectItem(c, "type")->valuestring);
            }
        }
    }
    cJSON_Delete(out);
    emu_kql_free(query);
    return text;
}

static void expect_rows(const char *q, const char *want)
{
    struct emu_kql_error err;
    char *got = run(q, &err, NULL, 0, NULL);
    if (got == NULL)
        fail_msg("%s: %s %s: %s", q, err.code, err.inner_code, err.message);
    if (strcmp(got, want) != 0)
        fail_msg("%s\n got  %s\n want %s", q, got, want);
    free(got);
}

static void expect_cols(const char *q, const char *want)
{
    struct emu_kql_error err;
    char c[512];
    char *got = run(q, &err, c, sizeof c, NULL);
    if (got == NULL)
        fail_msg("%s: %s", q, err.message);
    assert_string_equal(c, want);
    free(got);
}

static void expect_error(const char *q, const char *code, int line, int pos, const char *token,
                         const char *in_message)
{
    struct emu_kql_error err;
    enum clc_err rc;
    char *got = run(q, &err, NULL, 0, &rc);
    if (got != NULL)
        fail_msg("%s: expected %s, got rows %s", q, code, got);
    assert_int_not_equal(rc, CLC_OK);
    if (strcmp(err.code, code) != 0 || err.line != line || err.pos != pos ||
        (token && strcmp(err.token, token) != 0) ||
        (in_message && strstr(err.message, in_message) == NULL))
        fail_msg("%s: got %s [%d,%d] '%s': %s", q, err.code, err.line, err.pos, err.token,
                 err.message);
}

/* ---- operators ---- */

static void test_table_only(void **state)
{
    (void)state;
    expect_cols("T", "TimeGenerated:datetime,Name:string,N:long,R:real,Ok:bool,Vault:string");
    expect_rows("T | take 1", "[[\"2023-11-12T22:13:20Z\",\"alpha-one\",1,1.5,true,\"v1\"]]");
}

static void test_where_comparisons(void **state)
{
    (void)state;
    expect_rows("T | where N == 2 | project N", "[[2]]");
    expect_rows("T | where N != 2 | project N", "[[1],[3],[5]]"); /* null != 2 is null */
    expect_rows("T | where N > 2 | project N", "[[3],[5]]");
    expect_rows("T | where N < 2 | project N", "[[1]]");
    expect_rows("T | where N >= 3 | project N", "[[3],[5]]");
    expect_rows("T | where N <= 1 | project N", "[[1]]");
    expect_rows("T | where N <> 1 and N < 3 | project N", "[[2]]");
    expect_rows("T | where R > 1 | project N", "[[1],[3]]");
    expect_rows("T | where N == 1.0 | project N", "[[1]]");
    expect_rows("T | where Ok == true | project N", "[[1],[3]]");
    expect_rows("T | where Ok | project N", "[[1],[3]]");
    expect_rows("T | where Name == 'gamma' | project N", "[[3]]");
    expect_rows("T | where Name == \"Gamma\" | project N", "[]"); /* == is case-sensitive */
    expect_rows("T | where Name =~ \"GAMMA\" | project N", "[[3]]");
    expect_rows("T | where Name !~ \"GAMMA\" | project N", "[[1],[2],[null],[5]]");
    expect_rows("T | where isnull(N) | project R", "[[0.5]]");
    expect_rows("T | where isnotnull(Name) and isnotempty(Name) | count", "[[4]]");
    expect_rows("T | where isempty(Name) | project R", "[[0.5]]");
    expect_rows("T | where not(Ok) | project N", "[[2],[5]]");
}

static void test_where_strings(void **state)
{
    (void)state;
    expect_rows("T | where Name contains \"ALPHA\" | project N", "[[1],[5]]");
    expect_rows("T | where Name !contains \"alpha\" | project N", "[[2],[3],[null]]");
    /* has matches whole terms: "alpha" in "alpha-one" and "delta.alpha",
     * not "alp". */
    expect_rows("T | where Name has \"alpha\" | project N", "[[1],[5]]");
    expect_rows("T | where Name has \"alp\" | project N", "[]");
    expect_rows("T | where Name has \"TWO\" | project N", "[[2]]");
    expect_rows("T | where Name !has \"alpha\" | project N", "[[2],[3],[null]]");
    expect_rows("T | where Name startswith \"be\" | project N", "[[2]]");
    expect_rows("T | where Name !startswith \"be\" | project N", "[[1],[3],[null],[5]]");
    expect_rows("T | where Name == 'it\\'s' | count", "[[0]]");
}

static void test_where_time(void **state)
{
    (void)state;
    expect_rows("T | where TimeGenerated > ago(1d) | project N", "[[2],[3],[null]]");
    expect_rows("T | where TimeGenerated >= now() - 1h | project N", "[[2],[3],[null]]");
    expect_rows("T | where TimeGenerated < datetime(2023-11-12T00:00:00Z) | project N", "[[5]]");
    expect_error("T | where TimeGenerated > '2023-11-14'", "SemanticError", 1, 24, ">",
                 "datetime and string");
}

static void test_precedence(void **state)
{
    (void)state;
    /* and binds tighter than or. */
    expect_rows("T | where N == 1 or N == 2 and Ok | project N", "[[1]]");
    expect_rows("T | where (N == 1 or N == 2) and Ok | project N", "[[1]]");
    expect_rows("T | where N == 3 or N == 2 and not(Ok) | project N", "[[2],[3]]");
    /* * before +, parentheses first, left to right for - */
    expect_rows("T | take 1 | extend X = 1 + 2 * 3, Y = (1 + 2) * 3, Z = 10 - 4 - 3 | project "
                "X, Y, Z",
                "[[7,9,3]]");
    expect_rows("T | take 1 | extend X = 7 / 2, Y = 7.0 / 2, Z = -3 + 1 | project X, Y, Z",
                "[[3,3.5,-2]]");
}

static void test_project_extend(void **state)
{
    (void)state;
    expect_cols("T | project Name, Total = N + 1", "Name:string,Total:long");
    expect_rows("T | where N == 2 | project Name, Total = N + 1", "[[\"Beta two\",3]]");
    /* extend adds a column, or replaces one of the same name in place. */
    expect_cols("T | extend N = R * 2, Age = now() - TimeGenerated",
                "TimeGenerated:datetime,Name:string,N:real,R:real,Ok:bool,Vault:string,"
                "Age:timespan");
    expect_rows("T | where Name == 'gamma' | extend Age = now() - TimeGenerated | project Age",
                "[[\"00:10:00\"]]");
    expect_rows("T | where N == 1 | extend Age = now() - TimeGenerated | project Age",
                "[[\"2.00:00:00\"]]");
    expect_rows("T | where N == 1 | extend W = TimeGenerated + 1d + 500ms | project W",
                "[[\"2023-11-13T22:13:20.500Z\"]]");
}

static void test_summarize(void **state)
{
    (void)state;
    expect_cols("T | summarize count() by Vault", "Vault:string,count_:long");
    expect_rows("T | summarize count() by Vault", "[[\"v1\",3],[\"v2\",2]]");
    expect_rows("T | summarize Rows = count(), Top = max(N), Low = min(N), S = sum(N) by Vault",
                "[[\"v1\",3,5,1,9],[\"v2\",2,2,2,2]]");
    expect_cols("T | summarize max(TimeGenerated), sum(R)",
                "max_TimeGenerated:datetime,sum_R:real");
    expect_rows("T | summarize max(TimeGenerated), sum(R)", "[[\"2023-11-14T22:13:20Z\",3.5]]");
    expect_rows("T | where N > 100 | summarize count()", "[[0]]");
    expect_rows("T | where N > 100 | summarize count() by Vault", "[]");
    /* nulls form their own group */
    expect_rows("T | summarize count() by Ok | order by count_ desc, Ok asc",
                "[[false,2],[true,2],[null,1]]");
}

static void test_order_take_count(void **state)
{
    (void)state;
    expect_rows("T | order by N asc | project N", "[[null],[1],[2],[3],[5]]");
    expect_rows("T | order by N desc | project N", "[[5],[3],[2],[1],[null]]");
    expect_rows("T | sort by N | project N", "[[5],[3],[2],[1],[null]]"); /* desc by default */
    expect_rows("T | order by Vault asc, N desc | project Vault, N",
                "[[\"v1\",5],[\"v1\",3],[\"v1\",1],[\"v2\",2],[\"v2\",null]]");
    expect_rows("T | order by Name asc | take 2 | project Name", "[[null],[\"Beta two\"]]");
    expect_rows("T | limit 0", "[]");
    expect_rows("T | take 100 | count", "[[5]]");
    expect_rows("T\n| where N > 1 // a comment\n| count", "[[3]]");
}

/* ---- errors ---- */

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_error("T | wher N == 1", "SyntaxError", 1, 4, "wher", "unknown or unsupported");
    expect_error("T | where N ==", "SyntaxError", 1, 14, "<end of query>", "expected a column");
    expect_error("T | where Name == 'abc", "SyntaxError", 1, 18, "'", "Unterminated string");
    expect_error("T | project", "SyntaxError", 1, 11, NULL, "expected a column");
    expect_error("T | order N", "SyntaxError", 1, 10, "N", "expected 'by'");
    expect_error("T | take x", "SyntaxError", 1, 9, "x", "whole number");
    expect_error("T | extend 1 + 2", "SyntaxError", 1, 11, "1", "Name = expression");
    expect_error("T | where N == 1 N", "SyntaxError", 1, 17, "N", "expected '|'");
    expect_error("T | where N < 2 < 3", "SyntaxError", 1, 16, "<", "cannot be chained");
    expect_error("T | where N == 1 ; drop", "SyntaxError", 1, 17, ";", "Unexpected character");
    expect_error("| where N == 1", "SyntaxError", 1, 0, "|", "starts with a table name");
    expect_error("T | where N == 12abc", "SyntaxError", 1, 15, "12abc", "timespan");
    expect_error("T | where TimeGenerated > datetime(2023-13-01)", "SyntaxError", 1, 26, NULL,
                 "not a valid datetime");
    expect_error("T\n| where N ==\n  )", "SyntaxError", 3, 2, ")", NULL);
    expect_error("T | where Name == 'a\\q'", "SyntaxError", 1, 20, "\\q", "escape");
    expect_error("T | where - Name == 1", "SyntaxError", 1, 12, "Name", "unary");
    expect_error("T | where foo(N)", "SemanticError", 1, 10, "foo", "Unknown function");
    expect_error("T | where ago()", "SemanticError", 1, 10, "ago", "expects 1 argument");
}

static void test_semantic_errors(void **state)
{
    (void)state;
    expect_error("Nope | take 1", "SemanticError", 1, 0, "Nope", "table");
    expect_error("T | where Missing == 1", "SemanticError", 1, 10, "Missing",
                 "Failed to resolve scalar expression named 'Missing'");
    expect_error("T | where Name == 1", "SemanticError", 1, 15, "==", "string and long");
    expect_error("T | where N contains 'x'", "SemanticError", 1, 12, "contains", NULL);
    expect_error("T | where N", "SemanticError", 1, 4, "where", "bool predicate");
    expect_error("T | where TimeGenerated > ago(5)", "SemanticError", 1, 26, "ago", "timespan");
    expect_error("T | where count() > 1", "SemanticError", 1, 10, "count", "only allowed");
    expect_error("T | summarize N by Vault", "SemanticError", 1, 4, "summarize",
                 "not an aggregate");
    expect_error("T | project N, N", "SemanticError", 1, 4, "project", "appears twice");
    expect_error("T | project N + 1", "SemanticError", 1, 4, "project", "needs a name");
    /* a column dropped by project is gone for the next operator */
    expect_error("T | project N | where Name == 'x'", "SemanticError", 1, 22, "Name", NULL);
    expect_error("T | where Ok < true", "SemanticError", 1, 13, "<", NULL);
}

static void test_limits(void **state)
{
    (void)state;
    struct emu_kql_query *q = NULL;
    struct emu_kql_error err;
    char *big = malloc(EMU_KQL_QUERY_MAX + 10);
    assert_non_null(big);
    memset(big, ' ', EMU_KQL_QUERY_MAX + 5);
    big[0] = 'T';
    big[EMU_KQL_QUERY_MAX + 5] = '\0';
    assert_int_equal(emu_kql_parse(big, &q, &err), CLC_ERR_LIMIT);
    assert_null(q);
    /* deep nesting is refused, not a stack overflow */
    size_t n = 0;
    n += (size_t)sprintf(big, "T | where ");
    for (int i = 0; i < 200; i++)
        big[n++] = '(';
    big[n++] = '1';
    for (int i = 0; i < 200; i++)
        big[n++] = ')';
    big[n] = '\0';
    assert_int_equal(emu_kql_parse(big, &q, &err), CLC_ERR_LIMIT);
    assert_string_equal(err.code, "SyntaxError");
    free(big);
    assert_int_equal(emu_kql_parse("T | where N == 99999999999999999999", &q, &err), CLC_ERR_PARSE);
    assert_non_null(strstr(err.message, "does not fit"));
}

/* ---- date-time text ---- */

static void test_datetime_text(void **state)
{
    (void)state;
    int64_t ms;
    char buf[EMU_KQL_TIME_MAX];

    assert_int_equal(emu_kql_parse_datetime("2023-11-14T22:13:20Z", 20, &ms), 0);
    assert_int_equal(ms, NOW);
    assert_int_equal(emu_kql_parse_datetime("2023-11-14T22:13:20.3658314Z", 28, &ms), 0);
    assert_int_equal(ms, NOW + 365);
    assert_int_equal(emu_kql_parse_datetime("2023-11-15T00:13:20+02:00", 25, &ms), 0);
    assert_int_equal(ms, NOW);
    assert_int_equal(emu_kql_parse_datetime("2023-11-14 22:13", 16, &ms), 0);
    assert_int_equal(ms, NOW - 20000);
    assert_int_equal(emu_kql_parse_datetime("2023-11-14", 10, &ms), 0);
    assert_int_equal(emu_kql_parse_datetime("2023-02-29", 10, &ms), -1);
    assert_int_equal(emu_kql_parse_datetime("2024-02-29", 10, &ms), 0);
    assert_int_equal(emu_kql_parse_datetime("2023-11-14T25:00:00Z", 20, &ms), -1);
    assert_int_equal(emu_kql_parse_datetime("2023-11-14T22:13:20Zx", 21, &ms), -1);
    assert_int_equal(emu_kql_parse_datetime("yesterday", 9, &ms), -1);
    emu_kql_fmt_datetime(NOW, buf);
    assert_string_equal(buf, "2023-11-14T22:13:20Z");
    emu_kql_fmt_datetime(NOW + 5, buf);
    assert_string_equal(buf, "2023-11-14T22:13:20.005Z");
    emu_kql_fmt_datetime(-1, buf);
    assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
    emu_kql_fmt_timespan(90061001, buf);
    assert_string_equal(buf, "1.01:01:01.0010000");
    emu_kql_fmt_timespan(-60000, buf);
    assert_string_equal(buf, "-00:01:00");
    assert_int_equal(emu_kql_type_parse("boolean"), EMU_KQL_BOOL);
    assert_int_equal(emu_kql_type_parse("null"), -1);
    assert_string_equal(emu_kql_type_name(EMU_KQL_TIMESPAN), "timespan");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_only),    cmocka_unit_test(test_where_comparisons),
        cmocka_unit_test(test_where_strings), cmocka_unit_test(test_where_time),
        cmocka_unit_test(test_precedence),    cmocka_unit_test(test_project_extend),
        cmocka_unit_test(test_summarize),     cmocka_unit_test(test_order_take_count),
        cmocka_unit_test(test_syntax_errors), cmocka_unit_test(test_semantic_errors),
        cmocka_unit_test(test_limits),        cmocka_unit_test(test_datetime_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
