/* Tests for core/json: bounded parsing (size, depth, trailing data, byte
 * offsets in messages) and the exact error text of every getter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static cJSON *parse_ok(const char *s)
{
    cJSON *v = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    enum clc_err rc = clc_json_parse(s, strlen(s), 1 << 20, &v, &ei);
    if (rc != CLC_OK)
        fail_msg("parse of %s failed: %s", s, ei.msg);
    return v;
}

static void expect_parse_fail(const char *s, size_t len, enum clc_err want, const char *msg)
{
    cJSON *v = (cJSON *)0x1;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    enum clc_err rc = clc_json_parse(s, len, 1 << 20, &v, &ei);
    if (rc != want)
        fail_msg("parse of '%.40s': got %s, want %s (%s)", s, clc_err_name(rc), clc_err_name(want),
                 ei.msg);
    assert_null(v);
    if (msg != NULL)
        assert_string_equal(ei.msg, msg);
}

static void test_parse_basic(void **state)
{
    (void)state;
    cJSON *v = parse_ok(" {\"a\": [1, 2, {\"b\": null}], \"s\": \"x\\ny\"}\n\t ");
    assert_true(cJSON_IsObject(v));
    cJSON_Delete(v);
    v = parse_ok("42");
    assert_true(cJSON_IsNumber(v));
    cJSON_Delete(v);

    /* Input need not be NUL-terminated: only len bytes are read. */
    const char text[] = {'[', '1', ']', 'x', 'x'};
    cJSON *w = NULL;
    assert_int_equal(clc_json_parse(text, 3, 100, &w, NULL), CLC_OK);
    assert_true(cJSON_IsArray(w));
    assert_int_equal(cJSON_GetArraySize(w), 1);
    cJSON_Delete(w);
}

static void test_parse_errors(void **state)
{
    (void)state;
    expect_parse_fail("{\"a\": 1} x", 10, CLC_ERR_PARSE, "JSON: syntax error near byte 9");
    expect_parse_fail("{\"a\": 1}{}", 10, CLC_ERR_PARSE, "JSON: syntax error near byte 8");
    expect_parse_fail("{\"a\": tru}", 10, CLC_ERR_PARSE, NULL);
    expect_parse_fail("{\"a\": 1", 7, CLC_ERR_PARSE, "JSON: syntax error near byte 7");
    expect_parse_fail("", 0, CLC_ERR_PARSE, "JSON: empty document");
    expect_parse_fail(" \n\t ", 4, CLC_ERR_PARSE, "JSON: empty document");
    expect_parse_fail("[1,]", 4, CLC_ERR_PARSE, "JSON: syntax error near byte 3");
    /* An embedded NUL must not hide what follows it. */
    expect_parse_fail("{}\0{", 4, CLC_ERR_PARSE, "JSON: invalid character at byte 2");
    /* Raw control characters: not whitespace, not allowed in strings. */
    expect_parse_fail("{\x01}", 3, CLC_ERR_PARSE, "JSON: invalid character at byte 1");
    expect_parse_fail("\"a\nb\"", 5, CLC_ERR_PARSE, "JSON: control character in string at byte 2");
    expect_parse_fail(NULL, 0, CLC_ERR_INVALID, NULL);
}

static void test_parse_limits(void **state)
{
    (void)state;
    cJSON *v = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_json_parse("[1,2,3]", 7, 6, &v, &ei), CLC_ERR_LIMIT);
    assert_string_equal(ei.msg, "JSON: 7 bytes exceeds the limit of 6");
    assert_null(v);
    assert_int_equal(clc_json_parse("[1,2,3]", 7, 7, &v, &ei), CLC_OK);
    cJSON_Delete(v);

    /* Exactly the maximum depth is fine, one more is refused. */
    char deep[2 * CLC_JSON_MAX_DEPTH + 8];
    size_t n = 0;
    for (int i = 0; i < CLC_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < CLC_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    assert_int_equal(clc_json_parse(deep, n, 1000, &v, &ei), CLC_OK);
    cJSON_Delete(v);
    n = 0;
    for (int i = 0; i <= CLC_JSON_MAX_DEPTH; i++)
        deep[n++] = i % 2 ? '[' : '{';
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_json_parse(deep, n, 1000, &v, &ei), CLC_ERR_LIMIT);
    assert_string_equal(ei.msg, "JSON: nesting deeper than 64 at byte 64");
    /* Brackets inside strings (even after escaped quotes) do not count. */
    char str[400];
    n = 0;
    str[n++] = '"';
    str[n++] = '\\';
    str[n++] = '"';
    for (int i = 0; i < 200; i++)
        str[n++] = '[';
    str[n++] = '"';
    assert_int_equal(clc_json_parse(str, n, 1000, &v, &ei), CLC_OK);
    assert_true(cJSON_IsString(v));
    cJSON_Delete(v);
}

static const char *doc =
    "{\"s\":\"text\",\"i\":42,\"neg\":-7,\"f\":1.5,\"big\":1e300,\"max\":9007199254740992,"
    "\"over\":9007199254740994,\"t\":true,\"n\":null,\"o\":{\"k\":1},\"a\":[1],"
    "\"si\":\"3599\",\"sneg\":\"-12\",\"sbad\":\"12a\",\"splus\":\"+1\",\"sempty\":\"\","
    "\"shuge\":\"99999999999999999999\"}";

#define EXPECT_ERR(call, want)                                                                     \
    do {                                                                                           \
        clc_errinfo_clear(&ei);                                                                    \
        assert_int_equal((call), CLC_ERR_PARSE);                                                   \
        assert_string_equal(ei.msg, (want));                                                       \
    } while (0)

static void test_getters_ok(void **state)
{
    (void)state;
    cJSON *v = parse_ok(doc);
    struct clc_errinfo ei;
    const char *s = NULL;
    int64_t i = 0;
    int b = 0;
    const cJSON *node = NULL;
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_json_str(v, "s", &s, &ei), CLC_OK);
    assert_string_equal(s, "text");
    assert_int_equal(clc_json_int(v, "i", &i, &ei), CLC_OK);
    assert_int_equal(i, 42);
    assert_int_equal(clc_json_int(v, "neg", &i, &ei), CLC_OK);
    assert_int_equal(i, -7);
    assert_int_equal(clc_json_int(v, "max", &i, &ei), CLC_OK);
    assert_int_equal(i, 9007199254740992LL);
    assert_int_equal(clc_json_bool(v, "t", &b, &ei), CLC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(clc_json_obj(v, "o", &node, &ei), CLC_OK);
    assert_true(cJSON_IsObject(node));
    assert_int_equal(clc_json_arr(v, "a", &node, &ei), CLC_OK);
    assert_true(cJSON_IsArray(node));
    assert_int_equal(clc_json_int_lenient(v, "si", &i, &ei), CLC_OK);
    assert_int_equal(i, 3599);
    assert_int_equal(clc_json_int_lenient(v, "sneg", &i, &ei), CLC_OK);
    assert_int_equal(i, -12);
    assert_int_equal(clc_json_int_lenient(v, "i", &i, &ei), CLC_OK);
    assert_int_equal(i, 42);

    /* Optional getters: absent and null give the default. */
    assert_int_equal(clc_json_str_opt(v, "nope", "d", &s, &ei), CLC_OK);
    assert_string_equal(s, "d");
    assert_int_equal(clc_json_str_opt(v, "n", "d", &s, &ei), CLC_OK);
    assert_string_equal(s, "d");
    assert_int_equal(clc_json_str_opt(v, "s", "d", &s, &ei), CLC_OK);
    assert_string_equal(s, "text");
    assert_int_equal(clc_json_int_opt(v, "nope", 5, &i, &ei), CLC_OK);
    assert_int_equal(i, 5);
    assert_int_equal(clc_json_int_opt(v, "n", 6, &i, &ei), CLC_OK);
    assert_int_equal(i, 6);
    assert_int_equal(clc_json_int_opt(v, "i", 6, &i, &ei), CLC_OK);
    assert_int_equal(i, 42);
    assert_int_equal(clc_json_bool_opt(v, "nope", 1, &b, &ei), CLC_OK);
    assert_int_equal(b, 1);
    assert_int_equal(clc_json_bool_opt(v, "t", 0, &b, &ei), CLC_OK);
    assert_int_equal(b, 1);
    cJSON_Delete(v);
}

static void test_getter_errors(void **state)
{
    (void)state;
    cJSON *v = parse_ok(doc);
    struct clc_errinfo ei;
    const char *s = NULL;
    int64_t i = 0;
    int b = 0;
    const cJSON *node = NULL;

    EXPECT_ERR(clc_json_str(v, "zz", &s, &ei), "field 'zz': missing");
    assert_null(s);
    EXPECT_ERR(clc_json_str(v, "i", &s, &ei), "field 'i': expected string, got number");
    EXPECT_ERR(clc_json_str(v, "n", &s, &ei), "field 'n': expected string, got null");
    EXPECT_ERR(clc_json_str(v, "o", &s, &ei), "field 'o': expected string, got object");
    EXPECT_ERR(clc_json_int(v, "zz", &i, &ei), "field 'zz': missing");
    EXPECT_ERR(clc_json_int(v, "s", &i, &ei), "field 's': expected integer, got string");
    EXPECT_ERR(clc_json_int(v, "f", &i, &ei), "field 'f': expected integer, got number");
    EXPECT_ERR(clc_json_int(v, "t", &i, &ei), "field 't': expected integer, got boolean");
    EXPECT_ERR(clc_json_int(v, "big", &i, &ei), "field 'big': integer out of range");
    EXPECT_ERR(clc_json_int(v, "over", &i, &ei), "field 'over': integer out of range");
    assert_int_equal(i, 0);
    EXPECT_ERR(clc_json_bool(v, "zz", &b, &ei), "field 'zz': missing");
    EXPECT_ERR(clc_json_bool(v, "s", &b, &ei), "field 's': expected boolean, got string");
    EXPECT_ERR(clc_json_obj(v, "zz", &node, &ei), "field 'zz': missing");
    EXPECT_ERR(clc_json_obj(v, "a", &node, &ei), "field 'a': expected object, got array");
    assert_null(node);
    EXPECT_ERR(clc_json_arr(v, "zz", &node, &ei), "field 'zz': missing");
    EXPECT_ERR(clc_json_arr(v, "o", &node, &ei), "field 'o': expected array, got object");

    /* Optional getters still refuse a present value of the wrong type. */
    EXPECT_ERR(clc_json_str_opt(v, "i", "d", &s, &ei), "field 'i': expected string, got number");
    assert_string_equal(s, "d");
    EXPECT_ERR(clc_json_int_opt(v, "s", 3, &i, &ei), "field 's': expected integer, got string");
    assert_int_equal(i, 3);
    EXPECT_ERR(clc_json_int_opt(v, "f", 3, &i, &ei), "field 'f': expected integer, got number");
    EXPECT_ERR(clc_json_bool_opt(v, "i", 0, &b, &ei), "field 'i': expected boolean, got number");

    /* Lenient integers: decimal strings only. */
    EXPECT_ERR(clc_json_int_lenient(v, "zz", &i, &ei), "field 'zz': missing");
    EXPECT_ERR(clc_json_int_lenient(v, "sbad", &i, &ei),
               "field 'sbad': expected integer, got string");
    EXPECT_ERR(clc_json_int_lenient(v, "splus", &i, &ei),
               "field 'splus': expected integer, got string");
    EXPECT_ERR(clc_json_int_lenient(v, "sempty", &i, &ei),
               "field 'sempty': expected integer, got string");
    EXPECT_ERR(clc_json_int_lenient(v, "shuge", &i, &ei), "field 'shuge': integer out of range");
    EXPECT_ERR(clc_json_int_lenient(v, "f", &i, &ei), "field 'f': expected integer, got number");
    EXPECT_ERR(clc_json_int_lenient(v, "a", &i, &ei), "field 'a': expected integer, got array");

    /* A non-object parent (or none) reads as missing. */
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(v, "a");
    EXPECT_ERR(clc_json_str(arr, "x", &s, &ei), "field 'x': missing");
    EXPECT_ERR(clc_json_str(NULL, "x", &s, &ei), "field 'x': missing");
    /* Keys are case-sensitive. */
    EXPECT_ERR(clc_json_str(v, "S", &s, &ei), "field 'S': missing");
    cJSON_Delete(v);
}

static void test_print_and_add(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    assert_int_equal(clc_json_add_str(o, "s", "a\"b"), CLC_OK);
    assert_int_equal(clc_json_add_int(o, "i", 1700000000123LL), CLC_OK);
    assert_int_equal(clc_json_add_int(o, "neg", -5), CLC_OK);
    assert_int_equal(clc_json_add_bool(o, "b", 7), CLC_OK);
    assert_int_equal(clc_json_add_int(o, "huge", INT64_MAX), CLC_ERR_LIMIT);
    assert_int_equal(clc_json_add_str(o, "nul", NULL), CLC_ERR_INVALID);
    assert_int_equal(clc_json_add_str(NULL, "x", "y"), CLC_ERR_INVALID);
    char *p = clc_json_print(o);
    assert_string_equal(p, "{\"s\":\"a\\\"b\",\"i\":1700000000123,\"neg\":-5,\"b\":true}");
    /* And what we print, we parse back to the same integers. */
    cJSON *back = parse_ok(p);
    int64_t i = 0;
    assert_int_equal(clc_json_int(back, "i", &i, NULL), CLC_OK);
    assert_int_equal(i, 1700000000123LL);
    cJSON_Delete(back);
    free(p);
    cJSON_Delete(o);
    assert_null(clc_json_print(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_basic),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_parse_limits),  cmocka_unit_test(test_getters_ok),
        cmocka_unit_test(test_getter_errors), cmocka_unit_test(test_print_and_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
