/* Paging through the Key Vault client: 250 certificates listed with
 * maxresults=25 (every one exactly once, at least ten pages, nextLink
 * followed verbatim), the page bound enforced, and pending-only certificates
 * listed only when asked for. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_client_fixture.h"

#define NCERTS 250

static void test_paging_250(void **state)
{
    (void)state;
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    static unsigned char seen[NCERTS];
    char name[32];

    kvf_policy(&p, "many.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    for (int i = 0; i < NCERTS; i++) {
        snprintf(name, sizeof name, "many-%03d", i);
        if (clc_kv_create(K.renewer, name, &req, &op, &ei) != CLC_OK)
            fail_msg("create %s: %s", name, ei.msg);
        clc_kv_operation_cleanup(&op);
    }
    clc_kv_policy_cleanup(&p);

    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *item;
    int n = 0;
    assert_int_equal(clc_kv_list_certificates(K.reader, 25, 0, &it, &ei), CLC_OK);
    for (;;) {
        if (clc_kv_iter_next(it, &item, &ei) != CLC_OK)
            fail_msg("page %d: %s", clc_kv_iter_pages(it), ei.msg);
        if (!item)
            break;
        int k = -1;
        assert_int_equal(sscanf(item->name, "many-%d", &k), 1);
        assert_true(k >= 0 && k < NCERTS);
        assert_false(seen[k]);
        seen[k] = 1;
        /* List items carry versionless ids. */
        assert_string_equal(item->version, "");
        assert_non_null(item->x5t);
        n++;
    }
    assert_int_equal(n, NCERTS);
    assert_true(clc_kv_iter_pages(it) >= NCERTS / 25);
    clc_kv_iter_free(it);

    /* The page bound holds. */
    struct clc_kv *small = kvf_client(kvf_auth("reader"), 0, 3);
    assert_int_equal(clc_kv_list_certificates(small, 25, 0, &it, &ei), CLC_OK);
    enum clc_err e = CLC_OK;
    n = 0;
    while ((e = clc_kv_iter_next(it, &item, &ei)) == CLC_OK && item)
        n++;
    assert_int_equal(e, CLC_ERR_LIMIT);
    assert_int_equal(n, 75);
    assert_non_null(strstr(ei.msg, "more than 3 pages"));
    clc_kv_iter_free(it);
    clc_kv_free(small);
}

static void test_include_pending(void **state)
{
    (void)state;
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *item;
    int with = 0, without = 0;

    kvf_policy(&p, "pending.contoso.com", "Unknown", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    assert_int_equal(clc_kv_create(K.renewer, "only-pending", &req, &op, &ei), CLC_OK);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(clc_kv_list_certificates(K.reader, 25, pass, &it, &ei), CLC_OK);
        while (clc_kv_iter_next(it, &item, &ei) == CLC_OK && item)
            if (strcmp(item->name, "only-pending") == 0)
                *(pass ? &with : &without) += 1;
        clc_kv_iter_free(it);
    }
    assert_int_equal(without, 0);
    assert_int_equal(with, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paging_250),
        cmocka_unit_test(test_include_pending),
    };
    return cmocka_run_group_tests(tests, kvf_setup, kvf_teardown);
}
