/* JWT: sign/verify round trips (RS256, ES256), tampering, alg "none" and alg
 * confusion refused, malformed tokens named by part, time checks, decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/b64.h"
#include "crypto/jwt.h"

static struct clc_signer *rsa;
static struct clc_signer *es256;
static struct clc_signer *es384;

static int group_setup(void **state)
{
    (void)state;
    if (clc_signer_generate("RSA", 2048, &rsa, NULL) != CLC_OK ||
        clc_signer_generate("EC", 256, &es256, NULL) != CLC_OK ||
        clc_signer_generate("EC", 384, &es384, NULL) != CLC_OK)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    clc_signer_free(rsa);
    clc_signer_free(es256);
    clc_signer_free(es384);
    return 0;
}

static cJSON *claims_sample(void)
{
    cJSON *c = cJSON_CreateObject();

    cJSON_AddStringToObject(c, "iss", "client-1");
    cJSON_AddStringToObject(c, "aud", "https://login.example/token");
    cJSON_AddNumberToObject(c, "exp", 1767229200);
    cJSON_AddNumberToObject(c, "nbf", 1767225600);
    return c;
}

static char *sign_sample(struct clc_signer *s)
{
    cJSON *h = cJSON_CreateObject();
    cJSON *c = claims_sample();
    char *jwt = NULL;
    struct clc_errinfo ei;

    /* The caller's alg and typ must not survive. */
    cJSON_AddStringToObject(h, "alg", "none");
    cJSON_AddStringToObject(h, "typ", "bogus");
    cJSON_AddStringToObject(h, "x5t", "abc");
    assert_int_equal(clc_jwt_sign(s, h, c, &jwt, &ei), CLC_OK);
    cJSON_Delete(h);
    cJSON_Delete(c);
    return jwt;
}

static void check_round_trip(struct clc_signer *s, const char *alg)
{
    char *jwt = sign_sample(s);
    cJSON *h = NULL;
    cJSON *c = NULL;
    struct clc_errinfo ei;

    assert_int_equal(clc_jwt_verify(jwt, clc_signer_pkey(s), alg, &h, &c, &ei), CLC_OK);
    assert_string_equal(cJSON_GetObjectItem(h, "alg")->valuestring, alg);
    assert_string_equal(cJSON_GetObjectItem(h, "typ")->valuestring, "JWT");
    assert_string_equal(cJSON_GetObjectItem(h, "x5t")->valuestring, "abc");
    assert_string_equal(cJSON_GetObjectItem(c, "iss")->valuestring, "client-1");
    assert_int_equal((int64_t)cJSON_GetObjectItem(c, "exp")->valuedouble, 1767229200);
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(jwt);
}

static void test_round_trip(void **state)
{
    (void)state;
    check_round_trip(rsa, "RS256");
    check_round_trip(es256, "ES256");
    check_round_trip(es384, "ES384");
}

static void test_header_first_members(void **state)
{
    char *jwt = sign_sample(es256);
    unsigned char *raw = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(clc_b64url_decode(jwt, strcspn(jwt, "."), &raw, &n), CLC_OK);
    assert_string_equal((char *)raw, "{\"alg\":\"ES256\",\"typ\":\"JWT\",\"x5t\":\"abc\"}");
    free(raw);
    free(jwt);
}

/* Replaces part idx (0..2) of a token with repl; malloc'd. */
static char *with_part(const char *jwt, int idx, const char *repl)
{
    const char *d1 = strchr(jwt, '.');
    const char *d2 = strchr(d1 + 1, '.');
    const char *start[3] = {jwt, d1 + 1, d2 + 1};
    size_t len[3] = {(size_t)(d1 - jwt), (size_t)(d2 - d1 - 1), strlen(d2 + 1)};
    size_t total = strlen(jwt) + strlen(repl) + 1;
    char *out = malloc(total);

    out[0] = '\0';
    for (int i = 0; i < 3; i++) {
        if (i)
            strcat(out, ".");
        if (i == idx)
            strcat(out, repl);
        else
            strncat(out, start[i], len[i]);
    }
    return out;
}

static char *b64url_str(const char *s)
{
    char *o = NULL;

    assert_int_equal(clc_b64url_encode(s, strlen(s), &o, NULL), CLC_OK);
    return o;
}

static void expect_refused(const char *jwt, EVP_PKEY *pk, const char *alg, enum clc_err want,
                           const char *msg_part)
{
    cJSON *h = (cJSON *)1;
    cJSON *c = (cJSON *)1;
    struct clc_errinfo ei;

    assert_int_equal(clc_jwt_verify(jwt, pk, alg, &h, &c, &ei), want);
    assert_null(h);
    assert_null(c);
    if (msg_part && !strstr(ei.msg, msg_part))
        fail_msg("message '%s' lacks '%s'", ei.msg, msg_part);
}

static void test_tampered(void **state)
{
    char *jwt = sign_sample(rsa);
    char *p64 = b64url_str("{\"iss\":\"attacker\",\"exp\":1767229200}");
    char *bad = with_part(jwt, 1, p64);
    char *sig = NULL;

    (void)state;
    expect_refused(bad, clc_signer_pkey(rsa), "RS256", CLC_ERR_AUTH, "signature");
    free(bad);
    /* One flipped character of the signature. */
    sig = strdup(strrchr(jwt, '.') + 1);
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    bad = with_part(jwt, 2, sig);
    expect_refused(bad, clc_signer_pkey(rsa), "RS256", CLC_ERR_AUTH, "signature");
    free(bad);
    free(sig);
    /* Right alg, wrong key. */
    {
        struct clc_signer *other = NULL;
        assert_int_equal(clc_signer_generate("RSA", 2048, &other, NULL), CLC_OK);
        expect_refused(jwt, clc_signer_pkey(other), "RS256", CLC_ERR_AUTH, "signature");
        clc_signer_free(other);
    }
    free(p64);
    free(jwt);

    /* ECDSA: tampered payload and a truncated signature. */
    jwt = sign_sample(es256);
    p64 = b64url_str("{\"iss\":\"x\"}");
    bad = with_part(jwt, 1, p64);
    expect_refused(bad, clc_signer_pkey(es256), "ES256", CLC_ERR_AUTH, "signature");
    free(bad);
    bad = with_part(jwt, 2, "AAAA");
    expect_refused(bad, clc_signer_pkey(es256), "ES256", CLC_ERR_AUTH, "signature");
    free(bad);
    free(p64);
    free(jwt);
}

static void test_alg_none_and_mismatch(void **state)
{
    char *jwt = sign_sample(rsa);
    char *h64 = b64url_str("{\"alg\":\"none\",\"typ\":\"JWT\"}");
    char *none = with_part(jwt, 0, h64);
    char *unsigned_tok = with_part(none, 2, "");

    (void)state;
    expect_refused(unsigned_tok, clc_signer_pkey(rsa), "RS256", CLC_ERR_AUTH, "none");
    expect_refused(none, clc_signer_pkey(rsa), "RS256", CLC_ERR_AUTH, "none");
    expect_refused(jwt, clc_signer_pkey(rsa), "none", CLC_ERR_INVALID, NULL);
    /* Token says RS256, verifier expects ES256: refused before any crypto. */
    expect_refused(jwt, clc_signer_pkey(es256), "ES256", CLC_ERR_AUTH, "alg");
    /* Expected alg fits the token but not the key. */
    expect_refused(jwt, clc_signer_pkey(es256), "RS256", CLC_ERR_INVALID, "key");
    free(unsigned_tok);
    free(none);
    free(h64);
    free(jwt);

    /* An ES256 token checked with an ES384 key. */
    jwt = sign_sample(es256);
    expect_refused(jwt, clc_signer_pkey(es384), "ES256", CLC_ERR_INVALID, "key");
    free(jwt);

    /* crit is refused. */
    jwt = sign_sample(rsa);
    h64 = b64url_str("{\"alg\":\"RS256\",\"crit\":[\"exp\"],\"exp\":1}");
    none = with_part(jwt, 0, h64);
    expect_refused(none, clc_signer_pkey(rsa), "RS256", CLC_ERR_AUTH, "crit");
    free(none);
    free(h64);
    free(jwt);
}

static void test_malformed(void **state)
{
    EVP_PKEY *pk = clc_signer_pkey(rsa);
    char *jwt = sign_sample(rsa);
    char *bad = NULL;
    char *txt = NULL;

    (void)state;
    expect_refused("abc.def", pk, "RS256", CLC_ERR_PARSE, "2 parts");
    expect_refused("a.b.c.d", pk, "RS256", CLC_ERR_PARSE, "more than three");
    expect_refused("", pk, "RS256", CLC_ERR_PARSE, NULL);
    bad = with_part(jwt, 0, "!!!");
    expect_refused(bad, pk, "RS256", CLC_ERR_PARSE, "header");
    free(bad);
    txt = b64url_str("[1,2]");
    bad = with_part(jwt, 0, txt);
    expect_refused(bad, pk, "RS256", CLC_ERR_PARSE, "header");
    free(bad);
    free(txt);
    txt = b64url_str("{\"alg\":\"RS256\"");
    bad = with_part(jwt, 0, txt);
    expect_refused(bad, pk, "RS256", CLC_ERR_PARSE, "header");
    free(bad);
    free(txt);
    bad = with_part(jwt, 2, "***");
    expect_refused(bad, pk, "RS256", CLC_ERR_PARSE, "signature");
    free(bad);
    /* Oversized token. */
    bad = calloc(1, CLC_JWT_MAX_BYTES + 10);
    memset(bad, 'a', CLC_JWT_MAX_BYTES + 5);
    expect_refused(bad, pk, "RS256", CLC_ERR_LIMIT, NULL);
    free(bad);
    free(jwt);
}

/* A correctly signed token whose payload is not an object is refused. */
static void test_payload_not_object(void **state)
{
    cJSON *arr = cJSON_CreateArray();
    char *jwt = NULL;
    struct clc_errinfo ei;

    (void)state;
    assert_int_equal(clc_jwt_sign(rsa, NULL, arr, &jwt, &ei), CLC_ERR_INVALID);
    assert_null(jwt);
    cJSON_Delete(arr);
}

static void test_times(void **state)
{
    cJSON *c = claims_sample(); /* nbf 1767225600, exp 1767229200 */
    struct clc_errinfo ei;
    const int64_t nbf = 1767225600;
    const int64_t exp = 1767229200;

    (void)state;
    assert_int_equal(clc_jwt_check_times(c, nbf, 0, &ei), CLC_OK);
    assert_int_equal(clc_jwt_check_times(c, exp - 1, 0, &ei), CLC_OK);
    assert_int_equal(clc_jwt_check_times(c, exp, 0, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "expired"));
    assert_int_equal(clc_jwt_check_times(c, exp + 30, 60, &ei), CLC_OK);
    assert_int_equal(clc_jwt_check_times(c, exp + 60, 60, &ei), CLC_ERR_AUTH);
    assert_int_equal(clc_jwt_check_times(c, nbf - 1, 0, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "not valid before"));
    assert_int_equal(clc_jwt_check_times(c, nbf - 60, 60, &ei), CLC_OK);
    cJSON_ReplaceItemInObject(c, "exp", cJSON_CreateString("1767229200"));
    assert_int_equal(clc_jwt_check_times(c, nbf, 0, &ei), CLC_ERR_PARSE);
    cJSON_ReplaceItemInObject(c, "exp", cJSON_CreateNumber(1767229200.5));
    assert_int_equal(clc_jwt_check_times(c, nbf, 0, &ei), CLC_ERR_PARSE);
    cJSON_DeleteItemFromObject(c, "exp");
    assert_int_equal(clc_jwt_check_times(c, nbf, 0, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "exp missing"));
    cJSON_Delete(c);
}

static void test_decode(void **state)
{
    char *jwt = sign_sample(es256);
    char *bad = with_part(jwt, 2, "garbage-but-present");
    cJSON *h = NULL;
    cJSON *c = NULL;
    struct clc_errinfo ei;

    (void)state;
    /* Decoding does not look at the signature. */
    assert_int_equal(clc_jwt_decode(bad, &h, &c, &ei), CLC_OK);
    assert_string_equal(cJSON_GetObjectItem(h, "alg")->valuestring, "ES256");
    assert_string_equal(cJSON_GetObjectItem(c, "aud")->valuestring, "https://login.example/token");
    cJSON_Delete(h);
    cJSON_Delete(c);
    free(bad);
    bad = with_part(jwt, 1, "e30x");
    assert_int_equal(clc_jwt_decode(bad, &h, &c, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "payload"));
    assert_null(h);
    assert_null(c);
    free(bad);
    free(jwt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip), cmocka_unit_test(test_header_first_members),
        cmocka_unit_test(test_tampered),   cmocka_unit_test(test_alg_none_and_mismatch),
        cmocka_unit_test(test_malformed),  cmocka_unit_test(test_payload_not_object),
        cmocka_unit_test(test_times),      cmocka_unit_test(test_decode),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
