/* Tests for core/buf: the hard maximum (exactly at, one past), appendf
 * growth across the cap, take/reset/cleanup semantics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

static void test_empty(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 10);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_string_equal(clc_buf_str(&b), "");
    size_t n = 99;
    char *s = clc_buf_take(&b, &n);
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(n, 0);
    free(s);
    clc_buf_cleanup(&b);
}

static void test_append_and_limit(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 8);
    assert_int_equal(clc_buf_append_str(&b, "abcd"), CLC_OK);
    assert_int_equal(clc_buf_append(&b, "efg", 3), CLC_OK);
    assert_int_equal(clc_buf_append_byte(&b, 'h'), CLC_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal(clc_buf_str(&b), "abcdefgh");
    /* One byte past the maximum is refused and the content is unchanged. */
    assert_int_equal(clc_buf_append_byte(&b, 'i'), CLC_ERR_LIMIT);
    assert_int_equal(clc_buf_append(&b, "", 0), CLC_OK);
    assert_int_equal(b.len, 8);
    assert_string_equal(clc_buf_str(&b), "abcdefgh");
    assert_true(b.cap <= 9);
    /* A huge length cannot wrap the size arithmetic. */
    assert_int_equal(clc_buf_append(&b, "x", SIZE_MAX), CLC_ERR_LIMIT);
    assert_int_equal(clc_buf_append(&b, "x", SIZE_MAX - 4), CLC_ERR_LIMIT);
    clc_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_string_equal(clc_buf_str(&b), "");
    assert_int_equal(clc_buf_append_str(&b, "12345678"), CLC_OK);
    clc_buf_cleanup(&b);
    assert_null(b.data);
    assert_int_equal(b.max, 8);
}

static void test_zero_max(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 0);
    assert_int_equal(clc_buf_append_byte(&b, 'a'), CLC_ERR_LIMIT);
    assert_int_equal(clc_buf_appendf(&b, "%s", ""), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "");
    clc_buf_cleanup(&b);
}

static void test_growth(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 100000);
    for (int i = 0; i < 10000; i++)
        assert_int_equal(clc_buf_append(&b, "0123456789", 10), CLC_OK);
    assert_int_equal(b.len, 100000);
    assert_int_equal(clc_buf_append_byte(&b, 'x'), CLC_ERR_LIMIT);
    assert_true(b.cap <= 100001);
    for (size_t i = 0; i < b.len; i++)
        assert_int_equal(b.data[i], '0' + (int)(i % 10));
    assert_int_equal(b.data[b.len], '\0');
    clc_buf_cleanup(&b);
}

static void test_appendf(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 200);
    assert_int_equal(clc_buf_appendf(&b, "n=%d s=%s", 42, "x"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "n=42 s=x");
    /* Growth from a small capacity to a long formatted record. */
    char long_s[150];
    memset(long_s, 'q', sizeof long_s - 1);
    long_s[sizeof long_s - 1] = '\0';
    assert_int_equal(clc_buf_appendf(&b, "[%s]", long_s), CLC_OK);
    assert_int_equal(b.len, 8 + 151);
    assert_int_equal(b.data[8], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    /* Crossing the cap: refused whole, nothing half-written. */
    size_t before = b.len;
    assert_int_equal(clc_buf_appendf(&b, "%s", long_s), CLC_ERR_LIMIT);
    assert_int_equal(b.len, before);
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(b.data[b.len - 1], ']');
    /* Exactly up to the cap succeeds. */
    size_t room = b.max - b.len;
    assert_int_equal(clc_buf_appendf(&b, "%.*s", (int)room, long_s), CLC_OK);
    assert_int_equal(b.len, 200);
    assert_int_equal(clc_buf_appendf(&b, "%c", 'z'), CLC_ERR_LIMIT);
    clc_buf_cleanup(&b);
}

/* appendf writes into the spare room when the record fits and grows when
 * it does not, including a record exactly as long as the spare room (the
 * terminator then needs one more byte). */
static void test_appendf_spare_edges(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 1000);
    assert_int_equal(clc_buf_append_str(&b, "x"), CLC_OK);
    size_t spare = b.cap - b.len;
    char s[200];
    memset(s, 'a', sizeof s);
    assert_true(spare > 2 && spare < sizeof s);
    assert_int_equal(clc_buf_appendf(&b, "%.*s", (int)(spare - 1), s), CLC_OK); /* fits */
    assert_int_equal(b.len, spare);
    assert_int_equal(b.cap - b.len, 1);
    assert_int_equal(clc_buf_appendf(&b, "%s", "bc"), CLC_OK); /* needs growth */
    assert_int_equal(b.len, spare + 2);
    assert_int_equal(b.data[b.len - 2], 'b');
    assert_int_equal(b.data[b.len], '\0');
    spare = b.cap - b.len;
    assert_int_equal(clc_buf_appendf(&b, "%.*s", (int)spare, s), CLC_OK); /* exactly spare */
    assert_int_equal(b.data[b.len - 1], 'a');
    assert_int_equal(b.data[b.len], '\0');
    assert_int_equal(strlen(b.data), b.len);
    clc_buf_cleanup(&b);
}

static void test_take(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 64);
    clc_buf_append_str(&b, "hello");
    size_t n = 0;
    char *s = clc_buf_take(&b, &n);
    assert_string_equal(s, "hello");
    assert_int_equal(n, 5);
    /* The buffer is empty and reusable, with its maximum kept. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 64);
    assert_int_equal(clc_buf_append_str(&b, "again"), CLC_OK);
    char *t = clc_buf_take(&b, NULL);
    assert_string_equal(t, "again");
    free(s);
    free(t);
    clc_buf_cleanup(&b);
}

static void test_binary_and_cleanse(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 16);
    assert_int_equal(clc_buf_append(&b, "a\0b", 3), CLC_OK);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "a\0b", 4);
    clc_buf_cleanse(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    clc_buf_cleanse(&b);
    clc_buf_cleanup(NULL);
    clc_buf_cleanse(NULL);
}

/* The sizing hint: one allocation of the asked size, clamped to max, and
 * appends within it keep the same memory. */
static void test_reserve(void **state)
{
    (void)state;
    struct clc_buf b;
    clc_buf_init(&b, 1000);
    assert_int_equal(clc_buf_reserve(&b, 300), CLC_OK);
    assert_non_null(b.data);
    assert_int_equal(b.cap, 301);
    assert_string_equal(clc_buf_str(&b), "");
    char *before = b.data;
    char chunk[100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 3; i++)
        assert_int_equal(clc_buf_append(&b, chunk, sizeof chunk), CLC_OK);
    assert_ptr_equal(b.data, before);
    assert_int_equal(b.len, 300);
    /* More than max allows: room up to max, not past it. */
    assert_int_equal(clc_buf_reserve(&b, 5000), CLC_OK);
    assert_int_equal(b.cap, 1001);
    assert_int_equal(b.len, 300);
    assert_int_equal(b.data[300], '\0');
    /* Already room: nothing changes. */
    assert_int_equal(clc_buf_reserve(&b, 10), CLC_OK);
    assert_int_equal(b.cap, 1001);
    assert_int_equal(clc_buf_append(&b, chunk, 100), CLC_OK);
    clc_buf_cleanup(&b);
    /* An unbounded buffer asked for everything is left as it is. */
    clc_buf_init(&b, SIZE_MAX);
    assert_int_equal(clc_buf_reserve(&b, SIZE_MAX), CLC_OK);
    assert_null(b.data);
    clc_buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),    cmocka_unit_test(test_append_and_limit),
        cmocka_unit_test(test_zero_max), cmocka_unit_test(test_growth),
        cmocka_unit_test(test_appendf),  cmocka_unit_test(test_appendf_spare_edges),
        cmocka_unit_test(test_take),     cmocka_unit_test(test_binary_and_cleanse),
        cmocka_unit_test(test_reserve),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
