/* Tests for core/log: both record formats byte for byte, quoting and
 * escaping (no raw control characters ever), redaction of secrets, of
 * credential-named keys and of JWT-looking values, truncation, and the sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/log.h"

#define T0 1795355425123LL /* 2026-11-22T13:50:25.123Z */

static char out[8192];

static const char *fmt(enum clc_log_format f, enum clc_log_level lvl, const char *event,
                       const struct clc_log_field *fields, size_t n)
{
    size_t len = clc_log_format_record(out, sizeof out, f, T0, lvl, event, fields, n);
    assert_int_equal(len, strlen(out));
    return out;
}

/* No byte below 0x20 except the final newline, and no DEL. */
static void assert_no_raw_controls(const char *s)
{
    size_t n = strlen(s);
    assert_true(n > 0);
    assert_int_equal(s[n - 1], '\n');
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            fail_msg("raw control 0x%02x at %zu in %s", c, i, s);
    }
}

static void test_text_format(void **state)
{
    (void)state;
    struct clc_log_field f[] = {CLC_LS("name", "value"), CLC_LS("key2", "quoted value"),
                                CLC_LI("n", -42), CLC_LS("empty", ""), CLC_LS("null", NULL)};
    assert_string_equal(fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "x", f, 5),
                        "ts=2026-11-22T13:50:25.123Z level=info event=x name=value "
                        "key2=\"quoted value\" n=-42 empty=\"\" null=\"\"\n");
    assert_string_equal(fmt(CLC_LOG_TEXT, CLC_LOG_ERROR, "renew.failed", NULL, 0),
                        "ts=2026-11-22T13:50:25.123Z level=error event=renew.failed\n");
    assert_string_equal(fmt(CLC_LOG_TEXT, CLC_LOG_DEBUG, "e", NULL, 0),
                        "ts=2026-11-22T13:50:25.123Z level=debug event=e\n");
    assert_string_equal(fmt(CLC_LOG_TEXT, CLC_LOG_WARN, "e", NULL, 0),
                        "ts=2026-11-22T13:50:25.123Z level=warn event=e\n");
}

static void test_text_escaping(void **state)
{
    (void)state;
    struct clc_log_field f[] = {
        CLC_LS("q", "say \"hi\""),
        CLC_LS("eq", "a=b"),
        CLC_LS("nl", "line1\nlevel=error event=forged"),
        CLC_LS("bs", "C:\\dir"),
        CLC_LS("esc", "\x1b[31mred\x7f"),
        CLC_LS("cr", "a\rb\tc"),
        CLC_LS("utf8", "caf\xc3\xa9"),
        CLC_LS("c1", "x\xc2\x9by"),
        CLC_LS("bad", "\xff\xfe"),
        CLC_LS("bad key!", "v"),
    };
    const char *s = fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "e v", f, sizeof f / sizeof f[0]);
    assert_string_equal(s, "ts=2026-11-22T13:50:25.123Z level=info event=\"e v\" "
                           "q=\"say \\\"hi\\\"\" eq=\"a=b\" "
                           "nl=\"line1\\nlevel=error event=forged\" bs=\"C:\\\\dir\" "
                           "esc=\"\\x1b[31mred\\x7f\" cr=\"a\\rb\\tc\" utf8=\"caf\xc3\xa9\" "
                           "c1=\"x\\u009by\" bad=\"\\xff\\xfe\" bad_key_=v\n");
    assert_no_raw_controls(s);
}

static void test_json_format(void **state)
{
    (void)state;
    struct clc_log_field f[] = {CLC_LS("name", "value"), CLC_LI("ttl", 3599),
                                CLC_LI("big", 9007199254740993LL),
                                CLC_LS("msg", "a \"b\" \\ c\nd\x01\x7f\xff")};
    const char *s = fmt(CLC_LOG_JSON, CLC_LOG_WARN, "token.acquired", f, 4);
    assert_string_equal(s, "{\"ts\":\"2026-11-22T13:50:25.123Z\",\"level\":\"warn\","
                           "\"event\":\"token.acquired\",\"name\":\"value\",\"ttl\":3599,"
                           "\"big\":9007199254740993,"
                           "\"msg\":\"a \\\"b\\\" \\\\ c\\nd\\u0001\\u007f\\ufffd\"}\n");
    assert_no_raw_controls(s);
    /* And it is valid JSON with the values intact. */
    cJSON *v = cJSON_Parse(s);
    assert_non_null(v);
    assert_string_equal(cJSON_GetObjectItem(v, "msg")->valuestring,
                        "a \"b\" \\ c\nd\x01\x7f\xef\xbf\xbd");
    assert_int_equal(cJSON_GetObjectItem(v, "ttl")->valueint, 3599);
    cJSON_Delete(v);
}

static void test_secret_field(void **state)
{
    (void)state;
    struct clc_secret *sec = NULL;
    assert_int_equal(clc_secret_new("abc", 3, &sec), CLC_OK);
    struct clc_log_field f[] = {CLC_LSECRET("client", sec)};
    /* SHA-256("abc") starts ba7816bf8f01. */
    const char *s = fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "e", f, 1);
    assert_string_equal(s, "ts=2026-11-22T13:50:25.123Z level=info event=e "
                           "client=\"[redacted sha256:ba7816bf8f01]\"\n");
    s = fmt(CLC_LOG_JSON, CLC_LOG_INFO, "e", f, 1);
    assert_non_null(strstr(s, "\"client\":\"[redacted sha256:ba7816bf8f01]\""));
    clc_secret_free(sec);
}

static void expect_redacted(const char *key, const char *value)
{
    struct clc_log_field f[] = {CLC_LS(key, value)};
    const char *s = fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "e", f, 1);
    char want[256];
    snprintf(want, sizeof want, " %s=[redacted]\n", key);
    if (strstr(s, want) == NULL)
        fail_msg("not redacted: %s", s);
    if (value != NULL && value[0] != '\0' && strstr(s, value) != NULL)
        fail_msg("value leaked: %s", s);
    s = fmt(CLC_LOG_JSON, CLC_LOG_INFO, "e", f, 1);
    snprintf(want, sizeof want, "\"%s\":\"[redacted]\"}", key);
    if (strstr(s, want) == NULL)
        fail_msg("not redacted (json): %s", s);
}

static void expect_shown(const char *key, const char *value)
{
    struct clc_log_field f[] = {CLC_LS(key, value)};
    const char *s = fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "e", f, 1);
    if (strstr(s, "[redacted]") != NULL)
        fail_msg("wrongly redacted: %s", s);
}

static void test_redaction_by_key(void **state)
{
    (void)state;
    expect_redacted("password", "hunter2");
    expect_redacted("db_Password", "hunter2");
    expect_redacted("client_secret", "xyz");
    expect_redacted("SECRET", "xyz");
    expect_redacted("access_token", "opaque");
    expect_redacted("tokenValue", "opaque");
    expect_redacted("Authorization", "Bearer abc");
    expect_redacted("client_assertion", "abc.def");
    expect_redacted("api_key", "k1");
    expect_redacted("accountKey", "k1");
    expect_redacted("key", "k1");
    expect_redacted("password", "");
    expect_redacted("password", NULL);
    /* "key" only as a suffix: key properties are not secrets. */
    expect_shown("key_type", "RSA");
    expect_shown("keysize", "2048");
    expect_shown("kid", "https://vault/keys/k/1");
    expect_shown("subject", "CN=example");
    /* Integers are never redacted (sizes and counts are not credentials). */
    struct clc_log_field f[] = {CLC_LI("token_ttl", 3599)};
    assert_non_null(strstr(fmt(CLC_LOG_TEXT, CLC_LOG_INFO, "e", f, 1), " token_ttl=3599\n"));
}

static void test_redaction_of_jwts(void **state)
{
    (void)state;
    const char *jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl";
    char buf[256];
    expect_redacted("value", jwt);
    snprintf(buf, sizeof buf, "Bearer %s", jwt);
    expect_redacted("header", buf);
    snprintf(buf, sizeof buf, "https://x/cb?code=%s&s=1", jwt);
    expect_redacted("url", buf);
    expect_redacted("unsigned", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.");
    /* Not JWTs: one dot, no eyJ part, too few parts after eyJ. */
    expect_shown("a", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0");
    expect_shown("b", "abc.def.ghi");
    expect_redacted("glued", "Bearer%20eyJhbGci.eyJzdWIi.sig");
    expect_shown("c", "abc.eyJ.def");
    expect_shown("d", "eyJ..");
    expect_shown("e", "version 1.2.3");
}

static void test_truncation(void **state)
{
    (void)state;
    char small[40];
    struct clc_log_field f[] = {CLC_LS("k", "v")};
    size_t n =
        clc_log_format_record(small, sizeof small, CLC_LOG_TEXT, T0, CLC_LOG_INFO, "e", f, 1);
    assert_int_equal(n, sizeof small - 1);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, "ts=2026-11-22T13:50:25.123Z level=info", 38);
    assert_int_equal(clc_log_format_record(small, 0, CLC_LOG_TEXT, T0, CLC_LOG_INFO, "e", f, 1), 0);

    /* A very long value is cut and says how long it was. */
    char *big = malloc(10001);
    memset(big, 'v', 10000);
    big[10000] = '\0';
    struct clc_log_field g[] = {CLC_LS("body", big)};
    char *rec = malloc(20000);
    size_t len = clc_log_format_record(rec, 20000, CLC_LOG_JSON, T0, CLC_LOG_INFO, "e", g, 1);
    assert_true(len < 4300);
    assert_non_null(strstr(rec, "...[10000 bytes]\"}\n"));
    free(rec);
    free(big);
}

static void test_parse_names(void **state)
{
    (void)state;
    assert_int_equal(clc_log_level_parse("debug"), CLC_LOG_DEBUG);
    assert_int_equal(clc_log_level_parse("INFO"), CLC_LOG_INFO);
    assert_int_equal(clc_log_level_parse("warn"), CLC_LOG_WARN);
    assert_int_equal(clc_log_level_parse("error"), CLC_LOG_ERROR);
    assert_int_equal(clc_log_level_parse("verbose"), -1);
    assert_int_equal(clc_log_level_parse(NULL), -1);
    assert_int_equal(clc_log_format_parse("text"), CLC_LOG_TEXT);
    assert_int_equal(clc_log_format_parse("json"), CLC_LOG_JSON);
    assert_int_equal(clc_log_format_parse("xml"), -1);
}

static void test_sink(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    clc_log_setup(CLC_LOG_WARN, CLC_LOG_JSON, fp);
    assert_int_equal(clc_log_min_level(), CLC_LOG_WARN);
    clc_log(CLC_LOG_INFO, "dropped", CLC_LS("a", "b"));
    clc_log(CLC_LOG_ERROR, "kept", CLC_LS("a", "b"), CLC_LI("n", 1));
    clc_log0(CLC_LOG_WARN, "bare");
    clc_log0(CLC_LOG_DEBUG, "bare.dropped");
    /* A record longer than the logger's stack buffer is written whole. */
    char *big = malloc(3001);
    memset(big, 'z', 3000);
    big[3000] = '\0';
    clc_log(CLC_LOG_ERROR, "long", CLC_LS("v", big));
    free(big);
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, NULL);

    char buf[8192];
    rewind(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    assert_null(strstr(buf, "dropped"));
    char *line1 = buf;
    char *line2 = strchr(line1, '\n') + 1;
    char *line3 = strchr(line2, '\n') + 1;
    assert_non_null(strstr(line1, "\"level\":\"error\",\"event\":\"kept\",\"a\":\"b\",\"n\":1}\n"));
    assert_true(strncmp(line2, "{\"ts\":\"", 7) == 0);
    assert_non_null(strstr(line2, "\"event\":\"bare\"}\n"));
    assert_non_null(strstr(line3, "\"event\":\"long\""));
    cJSON *v = cJSON_Parse(line3);
    assert_non_null(v);
    assert_int_equal(strlen(cJSON_GetObjectItem(v, "v")->valuestring), 3000);
    cJSON_Delete(v);
    assert_int_equal(clc_log_min_level(), CLC_LOG_INFO);
}

static void *log_worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < 200; i++)
        clc_log(CLC_LOG_INFO, "worker", CLC_LI("id", id), CLC_LI("i", i),
                CLC_LS("pad", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    return NULL;
}

/* Records from concurrent threads never interleave: each line is whole. */
static void test_concurrent_records(void **state)
{
    (void)state;
    FILE *fp = tmpfile();
    assert_non_null(fp);
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, fp);
    pthread_t th[4];
    for (long t = 0; t < 4; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_worker, (void *)(intptr_t)t), 0);
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, NULL);

    rewind(fp);
    char line[512];
    int count[4] = {0};
    while (fgets(line, sizeof line, fp) != NULL) {
        long id = -1;
        int i = -1;
        const char *p = strstr(line, " event=worker id=");
        assert_non_null(p);
        assert_int_equal(sscanf(p, " event=worker id=%ld i=%d", &id, &i), 2);
        assert_true(id >= 0 && id < 4);
        assert_int_equal(i, count[id]); /* in order per thread, none lost */
        count[id]++;
        assert_non_null(
            strstr(line, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n"));
    }
    fclose(fp);
    for (int t = 0; t < 4; t++)
        assert_int_equal(count[t], 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_format),
        cmocka_unit_test(test_text_escaping),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_secret_field),
        cmocka_unit_test(test_redaction_by_key),
        cmocka_unit_test(test_redaction_of_jwts),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_parse_names),
        cmocka_unit_test(test_sink),
        cmocka_unit_test(test_concurrent_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
