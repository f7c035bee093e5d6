/* Tests for core/file: atomic writes (mode exact despite umask, old content
 * replaced, no temp file left), bounded reads, mkdir -p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"

struct fx {
    char dir[512];
};

/* Removes the test directory tree (shallow enough to do by hand). */
static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            struct stat st;
            if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
                rm_tree(p);
            else
                unlink(p);
        }
        closedir(d);
    }
    rmdir(path);
}

static int count_entries(const char *path)
{
    int n = 0;
    DIR *d = opendir(path);
    if (d == NULL)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    }
    closedir(d);
    return n;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/tmp-core-file-XXXXXX", CLC_TEST_BINDIR);
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
    rm_tree(f->dir);
    free(f);
    return 0;
}

static void test_write_atomic_mode(void **state)
{
    struct fx *f = *state;
    char p[600];
    struct stat st;
    struct clc_errinfo ei;
    snprintf(p, sizeof p, "%s/key.pem", f->dir);
    clc_errinfo_clear(&ei);

    /* A permissive umask must not widen 0600, a strict one must not narrow
     * 0644: the mode is exactly what was asked. */
    mode_t old = umask(0);
    assert_int_equal(clc_file_write_atomic(p, "secret-key\n", 11, 0600, &ei), CLC_OK);
    umask(old);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(st.st_size, 11);

    old = umask(077);
    assert_int_equal(clc_file_write_atomic(p, "replaced", 8, 0644, &ei), CLC_OK);
    umask(old);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);

    char *data = NULL;
    size_t n = 0;
    assert_int_equal(clc_file_read(p, 100, &data, &n, &ei), CLC_OK);
    assert_int_equal(n, 8);
    assert_string_equal(data, "replaced");
    free(data);
    /* No temporary file is left behind. */
    assert_int_equal(count_entries(f->dir), 1);

    /* Empty content is a valid file. */
    assert_int_equal(clc_file_write_atomic(p, "", 0, 0600, &ei), CLC_OK);
    assert_int_equal(clc_file_read(p, 100, &data, &n, &ei), CLC_OK);
    assert_int_equal(n, 0);
    assert_string_equal(data, "");
    free(data);
}

static void test_write_atomic_failure(void **state)
{
    struct fx *f = *state;
    char p[600];
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    /* Directory missing: a clear error naming the target. */
    snprintf(p, sizeof p, "%s/no/such/dir/file", f->dir);
    assert_int_equal(clc_file_write_atomic(p, "x", 1, 0600, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, p));
    assert_non_null(strstr(ei.msg, "No such file or directory"));

    /* The target is a directory: rename fails, and the temp file is removed. */
    snprintf(p, sizeof p, "%s/adir", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_file_write_atomic(p, "x", 1, 0600, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, "rename"));
    assert_int_equal(count_entries(f->dir), 1);
}

static void test_read_limits(void **state)
{
    struct fx *f = *state;
    char p[600];
    struct clc_errinfo ei;
    char *data = (char *)0x1;
    size_t n = 7;
    snprintf(p, sizeof p, "%s/ten", f->dir);
    assert_int_equal(clc_file_write_atomic(p, "0123456789", 10, 0600, NULL), CLC_OK);

    clc_errinfo_clear(&ei);
    assert_int_equal(clc_file_read(p, 10, &data, &n, &ei), CLC_OK);
    assert_int_equal(n, 10);
    assert_string_equal(data, "0123456789");
    free(data);

    char want[700];
    assert_int_equal(clc_file_read(p, 9, &data, &n, &ei), CLC_ERR_LIMIT);
    assert_null(data);
    assert_int_equal(n, 0);
    snprintf(want, sizeof want, "reading %s: larger than the limit of 9 bytes", p);
    assert_string_equal(ei.msg, want);

    /* Files whose size stat cannot tell are still bounded while reading. */
    assert_int_equal(clc_file_read("/proc/self/status", 16, &data, &n, &ei), CLC_ERR_LIMIT);
    assert_null(data);
    assert_int_equal(clc_file_read("/proc/self/status", 1 << 20, &data, NULL, &ei), CLC_OK);
    assert_non_null(strstr(data, "Name:"));
    free(data);

    snprintf(p, sizeof p, "%s/missing", f->dir);
    assert_int_equal(clc_file_read(p, 10, &data, &n, &ei), CLC_ERR_NOT_FOUND);
    snprintf(want, sizeof want, "reading %s: No such file or directory", p);
    assert_string_equal(ei.msg, want);
    assert_int_equal(clc_file_read(f->dir, 10, &data, &n, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, "Is a directory"));
}

static void test_mkdirs(void **state)
{
    struct fx *f = *state;
    char p[600];
    struct stat st;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    snprintf(p, sizeof p, "%s/a/b//c/", f->dir);
    mode_t old = umask(0);
    assert_int_equal(clc_file_mkdirs(p, 0750, &ei), CLC_OK);
    umask(old);
    snprintf(p, sizeof p, "%s/a/b/c", f->dir);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0750);
    /* Existing directories are fine. */
    assert_int_equal(clc_file_mkdirs(p, 0750, &ei), CLC_OK);
    /* A file in the way is an error naming it. */
    char file[600];
    snprintf(file, sizeof file, "%s/a/file", f->dir);
    assert_int_equal(clc_file_write_atomic(file, "x", 1, 0600, NULL), CLC_OK);
    snprintf(p, sizeof p, "%s/a/file/sub", f->dir);
    assert_int_equal(clc_file_mkdirs(p, 0750, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, file));
    assert_int_equal(clc_file_mkdirs("", 0750, &ei), CLC_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_atomic_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_atomic_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
