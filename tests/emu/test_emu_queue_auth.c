/* Storage queue authorization: SharedKey (both keys, wrong key, wrong
 * account, SharedKeyLite), account and service SAS (permissions, services,
 * resource types, start and expiry by the emulator clock, tampering), Entra
 * bearer tokens with and without the Storage Queue Data role, and requests
 * without credentials. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "emulator/state.h"
#include "emulator/storage.h"
#include "test_emu_queue_client.h"

#define Q(path) "/" QT_DEV path

static int group_setup(void **state)
{
    (void)state;
    if (qt_setup() != 0)
        return -1;
    /* The queues every test uses. */
    struct clc_http_resp r;
    long a = qt_key("queue", "PUT", Q("/authq"), NULL, &r);
    clc_http_resp_cleanup(&r);
    long b = qt_key("queue", "PUT", Q("/otherq"), NULL, &r);
    clc_http_resp_cleanup(&r);
    long c = qt_key("queue", "PUT", "/" QT_ACCT2 "/authq", NULL, &r);
    clc_http_resp_cleanup(&r);
    return a == 201 && b == 201 && c == 201 ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    qt_teardown();
    return 0;
}

static const char MSG[] = "<QueueMessage><MessageText>m</MessageText></QueueMessage>";

static long with(const char *method, const char *target, const char *auth, const char *body,
                 struct clc_http_resp *r)
{
    return qt_req("queue", method, target, auth, NULL, body, body ? strlen(body) : 0, r);
}

static void expect(const char *method, const char *target, const char *auth, const char *body,
                   long status)
{
    struct clc_http_resp r;
    if (with(method, target, auth, body, &r) != status)
        fail_msg("%s %s (%.20s): %ld, expected %ld: %s", method, target, auth, r.status, status,
                 clc_buf_str(&r.body));
    clc_http_resp_cleanup(&r);
}

static void expect_error(const char *method, const char *target, const char *auth, const char *body,
                         long status, const char *code)
{
    struct clc_http_resp r;
    with(method, target, auth, body, &r);
    qt_assert_error(&r, status, code);
    clc_http_resp_cleanup(&r);
}

static void test_shared_key(void **state)
{
    struct clc_http_resp r;
    char *detail;
    (void)state;

    expect("POST", Q("/authq/messages"), "key", MSG, 201);
    expect("GET", Q("/authq/messages?peekonly=true"), "lite", NULL, 200);
    expect("GET", Q("/authq?comp=metadata"), "lite", NULL, 200);
    /* The second account, with either of its keys. */
    expect("POST", "/" QT_ACCT2 "/authq/messages", "key", MSG, 201);
    expect("POST", "/" QT_ACCT2 "/authq/messages", "key2", MSG, 201);

    /* A wrong key: 403 with the string Azure signed, and no side effect. */
    with("POST", Q("/authq/messages"), "key:" QT_WRONG_KEY, MSG, &r);
    qt_assert_error(&r, 403, "AuthenticationFailed");
    detail = qt_xml(&r, "AuthenticationErrorDetail");
    assert_non_null(detail);
    assert_non_null(strstr(detail, "/devstoreaccount1/devstoreaccount1/authq/messages"));
    free(detail);
    clc_http_resp_cleanup(&r);
    expect_error("GET", Q("/authq?comp=metadata"), "key:" QT_WRONG_KEY, NULL, 403,
                 "AuthenticationFailed");
    /* One account's key does not open another's queues. */
    expect_error("GET", "/" QT_ACCT2 "/authq?comp=metadata", "key:" QT_DEV_KEY, NULL, 403,
                 "AuthenticationFailed");
    /* Extra x-ms-* headers are part of what is signed. */
    {
        const char *h[] = {"x-ms-meta-extra: signed", NULL};
        qt_req("queue", "GET", Q("/authq?comp=metadata"), "key", h, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        clc_http_resp_cleanup(&r);
    }
    expect_error("GET", Q("/authq?comp=metadata"), "none", NULL, 401,
                 "NoAuthenticationInformation");
}

/* The emulator's own HMAC-SHA256 (on a prefetched digest) agrees with
 * OpenSSL's HMAC() for keys shorter than, equal to and longer than the
 * SHA-256 block, the last being hashed first. */
static void test_hmac_matches_openssl(void **state)
{
    static const size_t keylens[] = {1, 32, 63, 64, 65, 128};
    static const char *const texts[] = {"", "GET\n\n\n", "x-ms-date:Sun, 22 Nov 2026\n/a/b"};
    unsigned char key[128], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    (void)state;

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 37 + 11);
    for (size_t k = 0; k < sizeof keylens / sizeof keylens[0]; k++) {
        for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
            char got[64], *want = NULL;
            assert_non_null(HMAC(EVP_sha256(), key, (int)keylens[k],
                                 (const unsigned char *)texts[t], strlen(texts[t]), mac, &maclen));
            assert_int_equal(clc_b64_encode(mac, maclen, &want, NULL), CLC_OK);
            assert_true(emu_storage_hmac_b64(key, keylens[k], texts[t], got));
            assert_string_equal(got, want);
            free(want);
        }
    }
}

/* The account's keyed HMAC (both key pads absorbed once, copied for each
 * signature) agrees with OpenSSL's HMAC() for the same key lengths, with
 * either key slot, and keeps agreeing when used again. */
static void test_account_hmac_matches_openssl(void **state)
{
    static const size_t keylens[] = {1, 32, 63, 64, 65, 128};
    static const char *const texts[] = {"", "GET\n\n\n", "x-ms-date:Sun, 22 Nov 2026\n/a/b"};
    unsigned char key[128], mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    (void)state;

    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (unsigned char)(i * 53 + 7);
    for (size_t k = 0; k < sizeof keylens / sizeof keylens[0]; k++) {
        struct emu_storage_accounts *all = calloc(1, sizeof *all);
        struct emu_storage_account *a;
        char *b64 = NULL;

        assert_non_null(all);
        a = &all->a[0];
        all->n = 1;
        assert_int_equal(clc_b64_encode(key, keylens[k], &b64, NULL), CLC_OK);
        for (int slot = 0; slot < 2; slot++)
            assert_int_equal(emu_storage_account_set_key(a, slot, b64, NULL), CLC_OK);
        free(b64);
        assert_int_equal(a->nkeys, 2);
        for (size_t t = 0; t < 2 * sizeof texts / sizeof texts[0]; t++) {
            const char *text = texts[t % (sizeof texts / sizeof texts[0])];
            char got[64], *want = NULL;
            assert_non_null(HMAC(EVP_sha256(), key, (int)keylens[k], (const unsigned char *)text,
                                 strlen(text), mac, &maclen));
            assert_int_equal(clc_b64_encode(mac, maclen, &want, NULL), CLC_OK);
            assert_true(emu_storage_account_mac_b64(a, (int)(t % 2), text, strlen(text), got));
            assert_string_equal(got, want);
            free(want);
        }
        emu_storage_accounts_cleanup(all);
        free(all);
    }
}

static void test_no_or_bad_credentials(void **state)
{
    struct clc_http_resp r;
    const char *www;
    const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
    (void)state;

    with("GET", Q("/authq/messages"), "none", NULL, &r);
    qt_assert_error(&r, 401, "NoAuthenticationInformation");
    www = clc_http_resp_header(&r, "WWW-Authenticate");
    assert_non_null(www);
    assert_non_null(strstr(www, "Bearer authorization_uri=https://127.0.0.1:"));
    assert_non_null(strstr(www, "/oauth2/authorize resource_id=https://storage.azure.com"));
    clc_http_resp_cleanup(&r);

    qt_req("queue", "GET", Q("/authq/messages"), "none", basic, NULL, 0, &r);
    qt_assert_error(&r, 400, "InvalidAuthenticationInfo");
    clc_http_resp_cleanup(&r);
    expect_error("GET", Q("/authq/messages"), "bearer:not.a.jwt", NULL, 401,
                 "InvalidAuthenticationInfo");
}

static void test_account_sas(void **state)
{
    int64_t now = emu_now(QT.e);
    char target[1024];
    char *all = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "sco", "rwdlacup", 0, now + 600);
    char *read = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "sco", "rl", 0, now + 600);
    char *blob = qt_account_sas(QT_DEV, QT_DEV_KEY, "b", "sco", "rwdlacup", 0, now + 600);
    char *objonly = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "o", "rwdlacup", 0, now + 600);
    char *future = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "sco", "rwdlacup", now + 300, now + 600);
    char *wrongkey = qt_account_sas(QT_DEV, QT_WRONG_KEY, "q", "sco", "rwdlacup", 0, now + 600);
    (void)state;

    snprintf(target, sizeof target, Q("/sasq?%s"), all);
    expect("PUT", target, "none", NULL, 201);
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), all);
    expect("POST", target, "none", MSG, 201);
    snprintf(target, sizeof target, Q("/sasq/messages?numofmessages=1&%s"), all);
    expect("GET", target, "none", NULL, 200);
    snprintf(target, sizeof target, Q("?comp=list&%s"), all);
    expect("GET", target, "none", NULL, 200);

    /* Read and list only: no put, no get (process). */
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), read);
    expect_error("POST", target, "none", MSG, 403, "AuthorizationPermissionMismatch");
    expect_error("GET", target, "none", NULL, 403, "AuthorizationPermissionMismatch");
    snprintf(target, sizeof target, Q("/sasq/messages?peekonly=true&%s"), read);
    expect("GET", target, "none", NULL, 200);
    /* The blob service only. */
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), blob);
    expect_error("POST", target, "none", MSG, 403, "AuthorizationServiceMismatch");
    /* Objects only: no queue creation. */
    snprintf(target, sizeof target, Q("/sasq2?%s"), objonly);
    expect_error("PUT", target, "none", NULL, 403, "AuthorizationResourceTypeMismatch");
    /* Not yet valid; signed with a wrong key; tampered permissions. */
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), future);
    expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), wrongkey);
    expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
    {
        char *tampered = strdup(read), *sp = strstr(tampered, "sp=rl");
        sp[3] = 'a';
        sp[4] = 'p';
        snprintf(target, sizeof target, Q("/sasq/messages?%s"), tampered);
        expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
        free(tampered);
    }
    /* Expiry by the emulator clock. */
    emu_clock_advance(QT.e, 601);
    snprintf(target, sizeof target, Q("/sasq/messages?%s"), all);
    expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
    free(all);
    free(read);
    free(blob);
    free(objonly);
    free(future);
    free(wrongkey);
}

static void test_service_sas(void **state)
{
    int64_t now = emu_now(QT.e);
    char target[1024];
    char *add = qt_queue_sas(QT_DEV, QT_DEV_KEY, "authq", "a", 0, now + 300);
    char *proc = qt_queue_sas(QT_DEV, QT_DEV_KEY, "authq", "rp", now - 10, now + 300);
    (void)state;

    snprintf(target, sizeof target, Q("/authq/messages?%s"), add);
    expect("POST", target, "none", MSG, 201);
    expect_error("GET", target, "none", NULL, 403, "AuthorizationPermissionMismatch");
    /* Signed for authq: another queue does not match the signature. */
    snprintf(target, sizeof target, Q("/otherq/messages?%s"), add);
    expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
    snprintf(target, sizeof target, Q("/authq/messages?numofmessages=32&%s"), proc);
    expect("GET", target, "none", NULL, 200);
    /* A service SAS never creates or deletes queues. */
    snprintf(target, sizeof target, Q("/authq?%s"), proc);
    expect_error("DELETE", target, "none", NULL, 403, "AuthorizationPermissionMismatch");
    emu_clock_advance(QT.e, 301);
    snprintf(target, sizeof target, Q("/authq/messages?%s"), add);
    expect_error("POST", target, "none", MSG, 403, "AuthenticationFailed");
    free(add);
    free(proc);
}

static void test_bearer(void **state)
{
    char *queuer = qt_token("queuer", NULL), *nobody = qt_token("nobody", NULL);
    char *blobber = qt_token("blobber", NULL), *admin = qt_token("admin", NULL);
    char *acctaud = qt_token("queuer", "https://devstoreaccount1.queue.core.windows.net");
    char *vault = qt_token("queuer", "https://vault.azure.net");
    char auth[4096];
    (void)state;

    assert_non_null(queuer);
    snprintf(auth, sizeof auth, "bearer:%s", queuer);
    expect("POST", Q("/authq/messages"), auth, MSG, 201);
    expect("GET", Q("/authq/messages"), auth, NULL, 200);
    expect("PUT", Q("/bearerq"), auth, NULL, 201);
    snprintf(auth, sizeof auth, "bearer:%s", acctaud);
    expect("GET", Q("/authq/messages?peekonly=true"), auth, NULL, 200);
    snprintf(auth, sizeof auth, "bearer:%s", admin);
    expect("GET", Q("/authq/messages?peekonly=true"), auth, NULL, 200);

    /* Valid tokens without the queue role. */
    snprintf(auth, sizeof auth, "bearer:%s", nobody);
    expect_error("POST", Q("/authq/messages"), auth, MSG, 403, "AuthorizationPermissionMismatch");
    snprintf(auth, sizeof auth, "bearer:%s", blobber);
    expect_error("GET", Q("/authq/messages"), auth, NULL, 403, "AuthorizationPermissionMismatch");
    /* A token for another resource. */
    snprintf(auth, sizeof auth, "bearer:%s", vault);
    expect_error("GET", Q("/authq/messages"), auth, NULL, 401, "InvalidAuthenticationInfo");
    /* Expired by the emulator clock. */
    emu_clock_advance(QT.e, 2 * 3600);
    snprintf(auth, sizeof auth, "bearer:%s", queuer);
    expect_error("GET", Q("/authq/messages"), auth, NULL, 401, "InvalidAuthenticationInfo");
    free(queuer);
    free(nobody);
    free(blobber);
    free(admin);
    free(acctaud);
    free(vault);
}

static void test_plain_http(void **state)
{
    struct clc_http_resp r;
    char *tok = qt_token("queuer", NULL), auth[4096], target[1024];
    int64_t now = emu_now(QT.e);
    char *sas = qt_account_sas(QT_DEV, QT_DEV_KEY, "q", "sco", "rwdlacup", 0, now + 600);
    (void)state;

    assert_non_null(strstr(emu_service_url(QT.e, "queue-http"), "http://127.0.0.1:"));
    /* SharedKey over http, as with Azurite. */
    qt_req("queue-http", "POST", Q("/authq/messages"), "key", NULL, MSG, strlen(MSG), &r);
    assert_int_equal(r.status, 201);
    clc_http_resp_cleanup(&r);
    /* Bearer tokens never over http. */
    snprintf(auth, sizeof auth, "bearer:%s", tok);
    qt_req("queue-http", "GET", Q("/authq/messages"), auth, NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthenticationFailed");
    assert_non_null(strstr(clc_buf_str(&r.body), "not allowed with HTTP"));
    clc_http_resp_cleanup(&r);
    /* A SAS signed for https only. */
    snprintf(target, sizeof target, Q("/authq/messages?%s"), sas);
    qt_req("queue-http", "GET", target, "none", NULL, NULL, 0, &r);
    qt_assert_error(&r, 403, "AuthorizationProtocolMismatch");
    clc_http_resp_cleanup(&r);
    free(tok);
    free(sas);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shared_key),
        cmocka_unit_test(test_hmac_matches_openssl),
        cmocka_unit_test(test_account_hmac_matches_openssl),
        cmocka_unit_test(test_no_or_bad_credentials),
        cmocka_unit_test(test_account_sas),
        cmocka_unit_test(test_service_sas),
        cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_plain_http),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
