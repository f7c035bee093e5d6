/* Tests for core/secret: loading from files and the environment (trailing
 * newline, empty, oversize, non-regular), fingerprints, comparison, and that
 * errors name the path but never the content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "core/secret.h"

struct fx {
    char dir[512];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/tmp-core-secret-XXXXXX", CLC_TEST_BINDIR);
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    const char *names[] = {"a", "b", "c", "d", "e", "big", "max", "fifo"};
    char p[600];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", f->dir, names[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static const char *write_file(struct fx *f, const char *name, const void *data, size_t n)
{
    static char p[600];
    snprintf(p, sizeof p, "%s/%s", f->dir, name);
    FILE *fp = fopen(p, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    fclose(fp);
    return p;
}

static void test_new_reveal(void **state)
{
    (void)state;
    struct clc_secret *s = NULL;
    assert_int_equal(clc_secret_new("hunter2", 7, &s), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "hunter2");
    assert_int_equal(clc_secret_len(s), 7);
    struct clc_secret *d = NULL;
    assert_int_equal(clc_secret_dup(s, &d), CLC_OK);
    assert_ptr_not_equal(clc_secret_reveal(d), clc_secret_reveal(s));
    assert_string_equal(clc_secret_reveal(d), "hunter2");
    clc_secret_free(s);
    clc_secret_free(d);
    clc_secret_free(NULL);
    /* Binary bytes with an embedded NUL keep their length. */
    assert_int_equal(clc_secret_new("a\0b", 3, &s), CLC_OK);
    assert_int_equal(clc_secret_len(s), 3);
    assert_memory_equal(clc_secret_reveal(s), "a\0b\0", 4);
    clc_secret_free(s);
}

static void test_equals(void **state)
{
    (void)state;
    struct clc_secret *s = NULL;
    assert_int_equal(clc_secret_new("correct horse", 13, &s), CLC_OK);
    assert_int_equal(clc_secret_equals(s, "correct horse", 13), 1);
    assert_int_equal(clc_secret_equals(s, "correct horsf", 13), 0);
    assert_int_equal(clc_secret_equals(s, "correct hors", 12), 0);
    assert_int_equal(clc_secret_equals(s, "correct horse!", 14), 0);
    assert_int_equal(clc_secret_equals(NULL, "x", 1), 0);
    clc_secret_free(s);
}

static void test_fingerprint(void **state)
{
    (void)state;
    struct clc_secret *a = NULL, *b = NULL, *c = NULL;
    char fa[CLC_SECRET_FP_LEN], fb[CLC_SECRET_FP_LEN], fc[CLC_SECRET_FP_LEN];
    assert_int_equal(clc_secret_new("abc", 3, &a), CLC_OK);
    assert_int_equal(clc_secret_new("abc", 3, &b), CLC_OK);
    assert_int_equal(clc_secret_new("abd", 3, &c), CLC_OK);
    clc_secret_fingerprint(a, fa);
    clc_secret_fingerprint(b, fb);
    clc_secret_fingerprint(c, fc);
    /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223... (FIPS 180-2). */
    assert_string_equal(fa, "sha256:ba7816bf8f01");
    assert_int_equal(strlen(fa), CLC_SECRET_FP_LEN - 1);
    assert_string_equal(fa, fb);
    assert_string_not_equal(fa, fc);
    clc_secret_free(a);
    clc_secret_free(b);
    clc_secret_free(c);
}

static void test_secure_heap(void **state)
{
    (void)state;
    /* With the secure heap up, secrets live there. */
    if (CRYPTO_secure_malloc_init(32768, 32) == 0)
        skip();
    struct clc_secret *s = NULL;
    assert_int_equal(clc_secret_new("in the secure heap", 18, &s), CLC_OK);
    assert_true(CRYPTO_secure_allocated(clc_secret_reveal(s)));
    assert_string_equal(clc_secret_reveal(s), "in the secure heap");
    size_t used = CRYPTO_secure_used();
    assert_true(used > 0);
    clc_secret_free(s);
    assert_true(CRYPTO_secure_used() < used);
    CRYPTO_secure_malloc_done();
}

static void test_from_file(void **state)
{
    struct fx *f = *state;
    struct clc_secret *s = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);

    assert_int_equal(clc_secret_from_file(write_file(f, "a", "s3cr3t\n", 7), &s, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "s3cr3t");
    clc_secret_free(s);
    assert_int_equal(clc_secret_from_file(write_file(f, "b", "s3cr3t\r\n", 8), &s, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "s3cr3t");
    clc_secret_free(s);
    /* Only one trailing newline is removed; inner ones stay. */
    assert_int_equal(clc_secret_from_file(write_file(f, "c", "l1\nl2\n\n", 7), &s, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "l1\nl2\n");
    clc_secret_free(s);
    assert_int_equal(clc_secret_from_file(write_file(f, "d", "nonl", 4), &s, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "nonl");
    clc_secret_free(s);

    /* Exactly the maximum is accepted. */
    char *big = malloc(CLC_SECRET_MAX + 1);
    memset(big, 'k', CLC_SECRET_MAX + 1);
    assert_int_equal(clc_secret_from_file(write_file(f, "max", big, CLC_SECRET_MAX), &s, &ei),
                     CLC_OK);
    assert_int_equal(clc_secret_len(s), CLC_SECRET_MAX);
    clc_secret_free(s);
    free(big);
}

static void test_from_file_refusals(void **state)
{
    struct fx *f = *state;
    struct clc_secret *s = (struct clc_secret *)0x1;
    struct clc_errinfo ei;
    char want[700];

    /* empty, and a lone newline (empty after stripping) */
    const char *p = write_file(f, "e", "", 0);
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_secret_from_file(p, &s, &ei), CLC_ERR_INVALID);
    assert_null(s);
    snprintf(want, sizeof want, "secret file %s: empty", p);
    assert_string_equal(ei.msg, want);
    p = write_file(f, "e", "\n", 1);
    assert_int_equal(clc_secret_from_file(p, &s, &ei), CLC_ERR_INVALID);

    /* one byte over the limit; the content is not in the message */
    char *big = malloc(CLC_SECRET_MAX + 1);
    memset(big, 'Q', CLC_SECRET_MAX + 1);
    p = write_file(f, "big", big, CLC_SECRET_MAX + 1);
    free(big);
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_secret_from_file(p, &s, &ei), CLC_ERR_LIMIT);
    assert_null(s);
    assert_non_null(strstr(ei.msg, p));
    assert_non_null(strstr(ei.msg, "larger than 65536 bytes"));
    assert_null(strstr(ei.msg, "QQ"));

    /* missing file: named, with the reason */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope", f->dir);
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_secret_from_file(missing, &s, &ei), CLC_ERR_IO);
    snprintf(want, sizeof want, "secret file %s: No such file or directory", missing);
    assert_string_equal(ei.msg, want);

    /* a directory and a FIFO are not regular files (and the FIFO must not
     * block the open) */
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_secret_from_file(f->dir, &s, &ei), CLC_ERR_INVALID);
    snprintf(want, sizeof want, "secret file %s: not a regular file", f->dir);
    assert_string_equal(ei.msg, want);
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/fifo", f->dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(clc_secret_from_file(fifo, &s, &ei), CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "not a regular file"));
    assert_int_equal(clc_secret_from_file("/dev/null", &s, &ei), CLC_ERR_INVALID);
}

static void test_from_env(void **state)
{
    (void)state;
    struct clc_secret *s = NULL;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    setenv("CLC_TEST_SECRET_X", "from-env", 1);
    assert_int_equal(clc_secret_from_env("CLC_TEST_SECRET_X", &s, &ei), CLC_OK);
    assert_string_equal(clc_secret_reveal(s), "from-env");
    clc_secret_free(s);
    setenv("CLC_TEST_SECRET_X", "", 1);
    assert_int_equal(clc_secret_from_env("CLC_TEST_SECRET_X", &s, &ei), CLC_ERR_NOT_FOUND);
    assert_null(s);
    unsetenv("CLC_TEST_SECRET_X");
    assert_int_equal(clc_secret_from_env("CLC_TEST_SECRET_X", &s, &ei), CLC_ERR_NOT_FOUND);
    assert_string_equal(ei.msg, "environment variable CLC_TEST_SECRET_X is not set");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_reveal),
        cmocka_unit_test(test_equals),
        cmocka_unit_test(test_fingerprint),
        cmocka_unit_test(test_secure_heap),
        cmocka_unit_test_setup_teardown(test_from_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_from_file_refusals, setup, teardown),
        cmocka_unit_test(test_from_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
