/* The emulated Key Vault's events and persistence: NewVersionCreated on
 * merge, NearExpiry once per version 30 days before exp and Expired at exp
 * as the emulator clock advances (GET /control/events), seeding with any
 * validity window, and a restart from the data dir keeping everything. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "emulator/events.h"
#include "emulator/state.h"
#include "test_emu_keyvault_fixture.h"

static int64_t last_seq;

/* Events since the last call, of one type and subject. */
static int events_of(const char *type, const char *subject, cJSON **first)
{
    struct kvr r;
    char path[128];
    const cJSON *it;
    int n = 0;

    if (first != NULL)
        *first = NULL;
    snprintf(path, sizeof path, "/control/events?after=%lld", (long long)last_seq);
    kv_admin("GET", path, NULL, &r);
    kv_expect(&r, 200);
    last_seq = kv_int(r.json, "last");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "events"))
    {
        const cJSON *ev = cJSON_GetObjectItemCaseSensitive(it, "event");
        if (strcmp(kv_str(ev, "eventType"), type) == 0 &&
            strcmp(kv_str(ev, "subject"), subject) == 0) {
            if (n++ == 0 && first != NULL)
                *first = cJSON_Duplicate(ev, 1);
        }
    }
    kvr_free(&r);
    return n;
}

static void advance(int64_t seconds)
{
    char body[64];
    struct kvr r;

    snprintf(body, sizeof body, "{\"advance_seconds\": %lld}", (long long)seconds);
    kv_admin("PUT", "/control/clock", body, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
}

static void test_new_version_event(void **state)
{
    cJSON *ev = NULL;
    char *ver;
    char id[512];

    (void)state;
    events_of("-", "-", NULL);
    ver = kv_issue("evt", NULL);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNewVersionCreated", "evt", &ev), 1);
    snprintf(id, sizeof id, "%s/certificates/evt/%s", kvfx_vault("certlc"), ver);
    assert_string_equal(kv_str(ev, "data.Id"), id);
    assert_string_equal(kv_str(ev, "data.VaultName"), "certlc");
    assert_string_equal(kv_str(ev, "data.ObjectType"), "Certificate");
    assert_string_equal(kv_str(ev, "data.ObjectName"), "evt");
    assert_string_equal(kv_str(ev, "data.Version"), ver);
    assert_true(kv_int(ev, "data.NBF") > 0);
    assert_true(kv_int(ev, "data.EXP") > kv_int(ev, "data.NBF"));
    assert_string_equal(kv_str(ev, "dataVersion"), "1");
    assert_string_equal(kv_str(ev, "metadataVersion"), "1");
    assert_non_null(strstr(kv_str(ev, "topic"), "/providers/Microsoft.KeyVault/vaults/certlc"));
    assert_int_equal(strlen(kv_str(ev, "id")), 36);
    /* "2026-11-22T13:50:25.1230000Z" */
    assert_int_equal(strlen(kv_str(ev, "eventTime")), 28);
    cJSON_Delete(ev);
    free(ver);
}

static void test_near_expiry_and_expired(void **state)
{
    struct kvr r;
    char body[256];
    int64_t now = emu_now(kv.e);
    cJSON *ev = NULL;

    (void)state;
    events_of("-", "-", NULL);
    snprintf(body, sizeof body,
             "{\"name\": \"soon\", \"subject\": \"CN=soon.example.com\", \"sans\": "
             "[\"soon.example.com\"], \"not_before\": %lld, \"not_after\": %lld}",
             (long long)(now - 300 * 86400), (long long)(now + 40 * 86400));
    kv_admin("POST", "/control/keyvault/certlc/seed", body, &r);
    kv_expect(&r, 201);
    assert_int_equal(kv_int(r.json, "attributes.exp"), now + 40 * 86400);
    kvr_free(&r);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNewVersionCreated", "soon", NULL), 1);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 0);
    advance(9 * 86400);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 0);
    advance(2 * 86400); /* 29 days left */
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", &ev), 1);
    assert_int_equal(kv_int(ev, "data.EXP"), now + 40 * 86400);
    cJSON_Delete(ev);
    advance(86400);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 0);
    advance(30 * 86400);
    last_seq = 0;
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 1);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateExpired", "soon", NULL), 0);
    last_seq = 0;
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateExpired", "soon", NULL), 1);
    advance(86400);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateExpired", "soon", NULL), 0);

    /* A renewal (a new version) has its own horizon: nothing until it nears. */
    now = emu_now(kv.e);
    snprintf(body, sizeof body, "{\"name\": \"soon\", \"not_before\": %lld, \"not_after\": %lld}",
             (long long)(now - 60), (long long)(now + 10 * 86400));
    kv_admin("POST", "/control/keyvault/certlc/seed", body, &r);
    kv_expect(&r, 201);
    kvr_free(&r);
    /* Ten days left: due at once, and only once. */
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 1);
    advance(60);
    assert_int_equal(events_of("Microsoft.KeyVault.CertificateNearExpiry", "soon", NULL), 0);
}

static void test_seed_with_own_issuer(void **state)
{
    struct kvr r;
    cJSON *o;
    char *body;

    (void)state;
    kv_admin("GET", "/control/keyvault/issuer", NULL, &r);
    kv_expect(&r, 200);
    assert_non_null(strstr(kv_str(r.json, "certificate_pem"), "BEGIN CERTIFICATE"));
    kvr_free(&r);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", "bad-issuer");
    cJSON_AddStringToObject(o, "issuer_cert_pem", "-----BEGIN CERTIFICATE-----\nAAAA\n");
    cJSON_AddStringToObject(o, "issuer_key_pem", "nope");
    body = cJSON_PrintUnformatted(o);
    kv_admin("POST", "/control/keyvault/certlc/seed", body, &r);
    kv_expect(&r, 400);
    kvr_free(&r);
    free(body);
    cJSON_Delete(o);
    kv_admin("POST", "/control/keyvault/nosuch/seed", "{\"name\": \"x\"}", &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    kv_admin("POST", "/control/keyvault/certlc/seed",
             "{\"name\": \"rsa-seed\", \"key\": {\"kty\": \"RSA\", \"key_size\": 2048},"
             " \"tags\": {\"Recipient\": \"a@b.c\"}, \"content_type\": \"application/x-pem-file\"}",
             &r);
    kv_expect(&r, 201);
    assert_string_equal(kv_str(r.json, "policy.key_props.kty"), "RSA");
    assert_string_equal(kv_str(r.json, "tags.Recipient"), "a@b.c");
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/rsa-seed", NULL, &r);
    kv_expect(&r, 200);
    /* Key, leaf, then the issuer. */
    {
        const char *v = kv_str(r.json, "value");
        const char *c1 = strstr(v, "-----BEGIN CERTIFICATE-----");
        assert_non_null(c1);
        assert_non_null(strstr(c1 + 10, "-----BEGIN CERTIFICATE-----"));
    }
    kvr_free(&r);
}

static void test_restart_keeps_everything(void **state)
{
    struct kvr r;
    char *ver = kv_issue("durable", NULL), *csr, *leaf, *body, *secret;
    int64_t now = emu_now(kv.e);
    int count;

    (void)state;
    kv_call("renewer", "POST", "/certificates/durable/create", "{}", &r);
    kv_expect(&r, 202);
    csr = strdup(kv_str(r.json, "csr"));
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/durable", NULL, &r);
    kv_expect(&r, 200);
    secret = strdup(kv_str(r.json, "value"));
    kvr_free(&r);
    free(kv_issue("doomed", NULL));
    kv_call("renewer", "DELETE", "/certificates/doomed", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    count = kv_count("reader", "/certificates?api-version=7.5&includePending=true");

    assert_int_equal(kvfx_restart(), 0);

    assert_int_equal(kv_count("reader", "/certificates?api-version=7.5&includePending=true"),
                     count);
    kv_call("reader", "GET", "/certificates/durable/", NULL, &r);
    kv_expect(&r, 200);
    assert_non_null(strstr(kv_str(r.json, "id"), ver));
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/durable", NULL, &r);
    kv_expect(&r, 200);
    assert_string_not_equal(kv_str(r.json, "value"), ""); /* a new PFX, same key */
    kvr_free(&r);
    kv_call("reader", "GET", "/deletedcertificates/doomed", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    /* The pending operation and its key survived: the CSR merges. */
    kv_call("reader", "GET", "/certificates/durable/pending", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "csr"), csr);
    kvr_free(&r);
    leaf = kv_sign_csr(csr, now - 60, now + 86400 * 30, NULL, NULL);
    body = malloc(strlen(leaf) + 32);
    sprintf(body, "{\"x5c\": [\"%s\"]}", leaf);
    kv_call("renewer", "POST", "/certificates/durable/pending/merge", body, &r);
    kv_expect(&r, 201);
    kvr_free(&r);
    assert_int_equal(kv_count("reader", "/certificates/durable/versions?api-version=7.5"), 2);
    free(body);
    free(leaf);
    free(csr);
    free(secret);
    free(ver);
}

static void test_reset(void **state)
{
    struct kvr r;

    (void)state;
    free(kv_issue("wiped", NULL));
    kv_admin("POST", "/control/reset", NULL, &r);
    kv_expect(&r, 204);
    kvr_free(&r);
    assert_int_equal(kv_count("reader", "/certificates?api-version=7.5&includePending=true"), 0);
    assert_int_equal(kv_count("reader", "/deletedcertificates?api-version=7.5"), 0);
    kv_admin("GET", "/control/state", NULL, &r);
    kv_expect(&r, 200);
    assert_int_equal(kv_int(r.json, "keyvault.certlc.count"), 0);
    kvr_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_version_event),
        cmocka_unit_test(test_near_expiry_and_expired),
        cmocka_unit_test(test_seed_with_own_issuer),
        cmocka_unit_test(test_restart_keeps_everything),
        cmocka_unit_test(test_reset),
    };
    return cmocka_run_group_tests(tests, kvfx_setup, kvfx_teardown);
}
