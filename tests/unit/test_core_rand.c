/* Tests for core/rand: UUID v4 layout, hex ids, the range (and rough
 * spread) of clc_rand_below, including bounds where rejection is frequent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/rand.h"

static void test_bytes(void **state)
{
    (void)state;
    unsigned char a[32] = {0}, b[32] = {0}, zero[32] = {0};
    assert_int_equal(clc_rand_bytes(a, sizeof a), CLC_OK);
    assert_int_equal(clc_rand_bytes(b, sizeof b), CLC_OK);
    assert_memory_not_equal(a, zero, sizeof a);
    assert_memory_not_equal(a, b, sizeof a);
    assert_int_equal(clc_rand_bytes(a, 0), CLC_OK);
}

static void assert_uuid_shape(const char *u)
{
    assert_int_equal(strlen(u), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", u[i]));
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

static void test_uuid(void **state)
{
    (void)state;
    char u[37], v[37];
    for (int k = 0; k < 100; k++) {
        clc_rand_uuid(u);
        assert_uuid_shape(u);
    }
    clc_rand_uuid(v);
    assert_string_not_equal(u, v);
}

/* Formatting fixed bytes: known text, version and variant forced. */
static void test_uuid_from_bytes(void **state)
{
    (void)state;
    unsigned char b[16];
    char u[37];
    memset(b, 0xff, sizeof b);
    clc_uuid_from_bytes(b, u);
    assert_string_equal(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
    memset(b, 0, sizeof b);
    clc_uuid_from_bytes(b, u);
    assert_string_equal(u, "00000000-0000-4000-8000-000000000000");
}

/* A zeroed pool works, ids stay well formed and distinct across refills,
 * and spent bytes do not stay in the pool. */
static void test_uuid_pool(void **state)
{
    (void)state;
    struct clc_uuid_pool p;
    static char ids[3 * CLC_UUID_BATCH + 1][37];
    unsigned char zero[16] = {0};

    memset(&p, 0, sizeof p);
    for (int k = 0; k < 3 * CLC_UUID_BATCH + 1; k++) {
        clc_uuid_pool_next(&p, ids[k]);
        assert_uuid_shape(ids[k]);
        size_t spent = sizeof p.bytes - p.left;
        assert_memory_equal(p.bytes + spent - 16, zero, 16);
        for (int j = 0; j < k; j++)
            assert_string_not_equal(ids[j], ids[k]);
    }
    assert_int_equal(p.left, sizeof p.bytes - 16);
}

static void test_hex(void **state)
{
    (void)state;
    char h[201];
    memset(h, 'X', sizeof h);
    clc_rand_hex(h, 100);
    assert_int_equal(strlen(h), 200);
    for (int i = 0; i < 200; i++)
        assert_non_null(strchr("0123456789abcdef", h[i]));
    char e[1] = {'X'};
    clc_rand_hex(e, 0);
    assert_int_equal(e[0], '\0');
}

static void test_below(void **state)
{
    (void)state;
    assert_int_equal(clc_rand_below(1), 0);
    assert_int_equal(clc_rand_below(0), 0);
    int seen[6] = {0};
    for (int i = 0; i < 6000; i++) {
        uint64_t v = clc_rand_below(6);
        assert_true(v < 6);
        seen[v]++;
    }
    /* Expected 1000 each; 700 is more than 9 standard deviations away. */
    for (int i = 0; i < 6; i++)
        assert_true(seen[i] > 700 && seen[i] < 1300);
    /* Just over half the range: about half of all draws are rejected. */
    uint64_t bound = (UINT64_C(1) << 63) + 1;
    int high = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t v = clc_rand_below(bound);
        assert_true(v < bound);
        if (v >= bound / 2)
            high++;
    }
    assert_true(high > 800 && high < 1200);
    for (int i = 0; i < 100; i++)
        assert_true(clc_rand_below(UINT64_MAX) < UINT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes),
        cmocka_unit_test(test_uuid),
        cmocka_unit_test(test_uuid_from_bytes),
        cmocka_unit_test(test_uuid_pool),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_below),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
