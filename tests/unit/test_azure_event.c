/* Key Vault event parser over every fixture in fixtures/events (ok-* must
 * parse to the same certificate, bad-<reason>-* must be rejected with that
 * reason), plus the filter options and bounds not expressible as files. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "azure/event.h"
#include "core/file.h"

#define DIR_EVENTS CLC_FIXTURES "/events"
#define LIMIT 8192

static const char *const vaults[] = {"kv-prod", "KV-TEST"};
static const struct clc_event_filter filter = {.vaults = vaults, .nvaults = 2, .max_bytes = LIMIT};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n = 0;
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    assert_true(n >= 0 && n < 1024 * 1024);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static enum clc_err run(const char *name, const char *text, size_t len,
                        const struct clc_event_filter *f, struct clc_event *ev,
                        enum clc_event_reason *r, struct clc_errinfo *ei)
{
    if (ends_with(name, ".msg"))
        return clc_event_parse_queue_message(text, len, f, ev, r, ei);
    return clc_event_parse(text, len, f, ev, r, ei);
}

static void check_ok(const char *name, const struct clc_event *ev)
{
    assert_string_equal(ev->vault, "kv-prod");
    assert_string_equal(ev->name, "democert");
    assert_string_equal(ev->version, "2f014e1c698b4896869b6b66c9143d28");
    assert_string_equal(ev->object_id, "https://kv-prod.vault.azure.net/certificates/democert/"
                                       "2f014e1c698b4896869b6b66c9143d28");
    assert_string_equal(ev->object_type, "Certificate");
    assert_string_equal(ev->subject, "democert");
    assert_non_null(strstr(ev->source, "/vaults/kv-prod"));
    assert_true(ev->id[0] != '\0');
    assert_int_equal(ev->time, 1700754796); /* 2023-11-23T15:53:16Z */
    assert_non_null(strstr(ev->type, "Microsoft.KeyVault.Certificate"));
    assert_int_equal(ev->schema, strstr(name, "cloudevents") ? CLC_EVENT_SCHEMA_CLOUDEVENTS
                                                             : CLC_EVENT_SCHEMA_EVENTGRID);
    if (strstr(name, "null-times")) {
        assert_false(ev->has_nbf);
        assert_false(ev->has_exp);
    } else {
        assert_true(ev->has_nbf && ev->has_exp);
        assert_int_equal(ev->nbf, 1700753990);
        assert_int_equal(ev->exp, 1701185990);
    }
}

static void every_fixture(void **state)
{
    (void)state;
    DIR *d = opendir(DIR_EVENTS);
    struct dirent *de = NULL;
    int nok = 0, nbad = 0;
    int seen[CLC_EVENT__COUNT] = {0};

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[1024];
        const char *name = de->d_name;
        if (!ends_with(name, ".json") && !ends_with(name, ".msg"))
            continue;
        snprintf(path, sizeof path, "%s/%s", DIR_EVENTS, name);
        size_t len = 0;
        char *text = slurp(path, &len);
        struct clc_event ev;
        struct clc_errinfo ei = {0};
        enum clc_event_reason r = CLC_EVENT__COUNT;
        enum clc_err rc = run(name, text, len, &filter, &ev, &r, &ei);
        if (strncmp(name, "ok-", 3) == 0) {
            if (rc != CLC_OK)
                fail_msg("%s: %s", name, ei.msg);
            assert_int_equal(r, CLC_EVENT_OK);
            check_ok(name, &ev);
            nok++;
        } else {
            assert_int_equal(strncmp(name, "bad-", 4), 0);
            char want[64] = "";
            const char *dash = strchr(name + 4, '-');
            const char *dot = strchr(name + 4, '.');
            const char *end = dash && dash < dot ? dash : dot;
            snprintf(want, sizeof want, "%.*s", (int)(end - name - 4), name + 4);
            if (rc == CLC_OK)
                fail_msg("%s: accepted", name);
            if (strcmp(clc_event_reason_name(r), want) != 0)
                fail_msg("%s: rejected as %s (%s)", name, clc_event_reason_name(r), ei.msg);
            assert_non_null(strstr(ei.msg, want));
            /* Error class follows the reason. */
            if (r == CLC_EVENT_TOO_LARGE)
                assert_int_equal(rc, CLC_ERR_LIMIT);
            else if (r == CLC_EVENT_WRONG_TYPE || r == CLC_EVENT_WRONG_OBJECT ||
                     r == CLC_EVENT_VAULT_NOT_ALLOWED)
                assert_int_equal(rc, CLC_ERR_INVALID);
            else
                assert_int_equal(rc, CLC_ERR_PARSE);
            /* A rejected event leaves nothing half-filled behind. */
            assert_string_equal(ev.vault, "");
            seen[r]++;
            nbad++;
        }
        free(text);
    }
    closedir(d);
    assert_true(nok >= 10);
    assert_true(nbad >= 20);
    for (int r = CLC_EVENT_OK + 1; r < CLC_EVENT__COUNT; r++)
        if (!seen[r])
            fail_msg("no fixture for reason %s", clc_event_reason_name((enum clc_event_reason)r));
}

static void filter_options(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = slurp(DIR_EVENTS "/bad-wrong_type-secret.json", &len);
    struct clc_event ev;
    enum clc_event_reason r;

    /* A configured type set replaces the default one. */
    static const char *const types[] = {"microsoft.keyvault.secretnearexpiry"};
    struct clc_event_filter f = {.types = types, .ntypes = 1};
    assert_int_equal(clc_event_parse(text, len, &f, &ev, &r, NULL), CLC_OK);
    assert_int_equal(r, CLC_EVENT_OK);
    /* ... and the default set is gone. */
    char *cert = slurp(DIR_EVENTS "/ok-eventgrid-object.json", &len);
    assert_int_equal(clc_event_parse(cert, len, &f, &ev, &r, NULL), CLC_ERR_INVALID);
    assert_int_equal(r, CLC_EVENT_WRONG_TYPE);
    free(cert);
    free(text);

    text = slurp(DIR_EVENTS "/bad-vault_not_allowed-other.json", &len);
    /* No vault list: any vault. */
    assert_int_equal(clc_event_parse(text, len, NULL, &ev, &r, NULL), CLC_OK);
    assert_string_equal(ev.vault, "kv-other");
    /* Case-insensitive vault match. */
    static const char *const other[] = {"KV-Other"};
    struct clc_event_filter g = {.vaults = other, .nvaults = 1};
    assert_int_equal(clc_event_parse(text, len, &g, &ev, &r, NULL), CLC_OK);
    /* The limit applies before parsing. */
    struct clc_event_filter h = {.max_bytes = 64};
    assert_int_equal(clc_event_parse(text, len, &h, &ev, &r, NULL), CLC_ERR_LIMIT);
    assert_int_equal(r, CLC_EVENT_TOO_LARGE);
    free(text);
}

static void edge_inputs(void **state)
{
    (void)state;
    struct clc_event ev;
    enum clc_event_reason r;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_event_parse(NULL, 0, NULL, &ev, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(r, CLC_EVENT_NOT_JSON);
    assert_int_equal(clc_event_parse_queue_message("", 0, NULL, &ev, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(r, CLC_EVENT_NOT_JSON);
    assert_int_equal(clc_event_parse_queue_message("  \n", 3, NULL, &ev, &r, &ei), CLC_ERR_PARSE);
    /* Embedded NUL: not one JSON value. */
    assert_int_equal(clc_event_parse("{}\0{}", 5, NULL, &ev, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(r, CLC_EVENT_NOT_JSON);
    /* Deep nesting is refused by the JSON layer, not by a crash. */
    char deep[2100];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    assert_int_equal(clc_event_parse(deep, 2000, NULL, &ev, &r, &ei), CLC_ERR_PARSE);
    assert_int_equal(r, CLC_EVENT_NOT_JSON);
    /* Reason names are stable. */
    assert_string_equal(clc_event_reason_name(CLC_EVENT_VAULT_NOT_ALLOWED), "vault_not_allowed");
    assert_string_equal(clc_event_reason_name(CLC_EVENT__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_fixture),
        cmocka_unit_test(filter_options),
        cmocka_unit_test(edge_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
