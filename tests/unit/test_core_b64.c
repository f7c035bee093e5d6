/* Tests for core/b64: RFC 4648 §10 vectors in both alphabets, round trips
 * of every byte value, and the strict decoder's refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/b64.h"

struct vec {
    const char *plain;
    const char *std;
    const char *url; /* unpadded */
};

/* RFC 4648 §10. */
static const struct vec vectors[] = {
    {"", "", ""},
    {"f", "Zg==", "Zg"},
    {"fo", "Zm8=", "Zm8"},
    {"foo", "Zm9v", "Zm9v"},
    {"foob", "Zm9vYg==", "Zm9vYg"},
    {"fooba", "Zm9vYmE=", "Zm9vYmE"},
    {"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof vectors / sizeof vectors[0]; i++) {
        const struct vec *v = &vectors[i];
        char *e = NULL;
        size_t elen = 99;
        assert_int_equal(clc_b64_encode(v->plain, strlen(v->plain), &e, &elen), CLC_OK);
        assert_string_equal(e, v->std);
        assert_int_equal(elen, strlen(v->std));
        free(e);
        assert_int_equal(clc_b64url_encode(v->plain, strlen(v->plain), &e, &elen), CLC_OK);
        assert_string_equal(e, v->url);
        assert_int_equal(elen, strlen(v->url));
        free(e);

        unsigned char *d = NULL;
        size_t dlen = 99;
        assert_int_equal(clc_b64_decode(v->std, strlen(v->std), &d, &dlen), CLC_OK);
        assert_int_equal(dlen, strlen(v->plain));
        assert_string_equal((char *)d, v->plain); /* NUL appended */
        free(d);
        /* base64url accepts both unpadded and correctly padded input. */
        assert_int_equal(clc_b64url_decode(v->url, strlen(v->url), &d, &dlen), CLC_OK);
        assert_int_equal(dlen, strlen(v->plain));
        assert_string_equal((char *)d, v->plain);
        free(d);
        assert_int_equal(clc_b64url_decode(v->std, strlen(v->std), &d, &dlen), CLC_OK);
        assert_string_equal((char *)d, v->plain);
        free(d);
    }
}

static void test_alphabets(void **state)
{
    (void)state;
    /* 0xfb 0xff 0xbf exercises symbols 62 and 63 in both alphabets. */
    const unsigned char in[] = {0xfb, 0xff, 0xbf, 0xfe};
    char *e = NULL;
    assert_int_equal(clc_b64_encode(in, sizeof in, &e, NULL), CLC_OK);
    assert_string_equal(e, "+/+//g==");
    free(e);
    assert_int_equal(clc_b64url_encode(in, sizeof in, &e, NULL), CLC_OK);
    assert_string_equal(e, "-_-__g");
    free(e);
    unsigned char *d = NULL;
    size_t n = 0;
    assert_int_equal(clc_b64url_decode("-_-__g", 6, &d, &n), CLC_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(d, in, 4);
    free(d);
    /* Each decoder refuses the other alphabet's symbols. */
    assert_int_equal(clc_b64_decode("-_-__g==", 8, &d, &n), CLC_ERR_PARSE);
    assert_null(d);
    assert_int_equal(n, 0);
    assert_int_equal(clc_b64url_decode("+/+//g", 6, &d, &n), CLC_ERR_PARSE);
    assert_null(d);
}

static void test_round_trip_all_bytes(void **state)
{
    (void)state;
    unsigned char in[259];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)i;
    for (size_t len = 0; len <= sizeof in; len++) {
        char *e = NULL;
        unsigned char *d = NULL;
        size_t n = 0;
        assert_int_equal(clc_b64_encode(in, len, &e, NULL), CLC_OK);
        assert_int_equal(clc_b64_decode(e, strlen(e), &d, &n), CLC_OK);
        assert_int_equal(n, len);
        assert_memory_equal(d, in, len);
        free(e);
        free(d);
        assert_int_equal(clc_b64url_encode(in, len, &e, NULL), CLC_OK);
        assert_null(strchr(e, '='));
        assert_int_equal(clc_b64url_decode(e, strlen(e), &d, &n), CLC_OK);
        assert_int_equal(n, len);
        assert_memory_equal(d, in, len);
        free(e);
        free(d);
    }
}

static void test_whitespace(void **state)
{
    (void)state;
    unsigned char *d = NULL;
    size_t n = 0;
    const char *pem = "Zm9v\nYmFy\r\n  Zm9v\tYg==\n";
    assert_int_equal(clc_b64_decode(pem, strlen(pem), &d, &n), CLC_OK);
    assert_int_equal(n, 10);
    assert_string_equal((char *)d, "foobarfoob");
    free(d);
    /* The url form is used in JWS, where whitespace is never valid. */
    assert_int_equal(clc_b64url_decode("Zm9v YmFy", 9, &d, &n), CLC_ERR_PARSE);
    /* Length-bounded: bytes past n are not read. */
    assert_int_equal(clc_b64_decode("Zm9v!!!!", 4, &d, &n), CLC_OK);
    assert_string_equal((char *)d, "foo");
    free(d);
}

static void expect_reject_std(const char *s)
{
    unsigned char *d = (unsigned char *)"sentinel";
    size_t n = 7;
    if (clc_b64_decode(s, strlen(s), &d, &n) != CLC_ERR_PARSE)
        fail_msg("std decoder accepted \"%s\"", s);
    assert_null(d);
    assert_int_equal(n, 0);
}

static void expect_reject_url(const char *s)
{
    unsigned char *d = NULL;
    size_t n = 0;
    if (clc_b64url_decode(s, strlen(s), &d, &n) != CLC_ERR_PARSE)
        fail_msg("url decoder accepted \"%s\"", s);
    assert_null(d);
}

static void test_rejections(void **state)
{
    (void)state;
    /* characters outside the alphabet */
    expect_reject_std("Zm9v!");
    expect_reject_std("Zm9\x80");
    expect_reject_std("Zm9v\x01Yg==");
    /* missing, short and excess padding */
    expect_reject_std("Zg");
    expect_reject_std("Zg=");
    expect_reject_std("Zm8");
    expect_reject_std("Zm8==");
    expect_reject_std("Zm9v=");
    expect_reject_std("Zm9v====");
    expect_reject_std("====");
    expect_reject_std("=");
    /* a lone symbol carries six bits, less than a byte */
    expect_reject_std("Zm9vY===");
    expect_reject_url("Zm9vY");
    /* non-zero trailing bits (non-canonical spellings of "f", "fo") */
    expect_reject_std("Zh==");
    expect_reject_std("Zm9=");
    expect_reject_url("Zh");
    expect_reject_url("Zm9");
    /* '=' in the middle */
    expect_reject_std("Zg==Zm9v");
    expect_reject_std("Zm=9v");
    expect_reject_url("Zg==Zg");
    expect_reject_url("Z=g");
    /* url decoder: padding, if given, must be right */
    expect_reject_url("Zg=");
    expect_reject_url("Zm8==");
    expect_reject_url("Zm9v=");
    expect_reject_url("Zm9v/");
    expect_reject_url("Zm9v+");
    /* standard decoder refuses url symbols */
    expect_reject_std("Zm9-");
    expect_reject_std("Zm9_");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc4648_vectors),      cmocka_unit_test(test_alphabets),
        cmocka_unit_test(test_round_trip_all_bytes), cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_rejections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
