/* The Key Vault client against the emulated vault: import (PKCS#12 with a
 * password, PEM), soft delete / recover / purge, RBAC per identity (sync,
 * renewer, reader) with Forbidden and its code, and retries driven by the
 * emulator's fault rules: 429 and 503 on reads, 429 but not 503 on create,
 * one fresh token after a 401. Sleeps are recorded, not waited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "core/b64.h"
#include "crypto/x509.h"
#include "kv_client_fixture.h"

/* A key and a leaf for it from the test CA. */
static void make_leaf(const char *cn, struct clc_signer **key, X509 **leaf)
{
    int64_t now = emu_now_ms(K.e) / 1000;
    char san[200];
    snprintf(san, sizeof san, "DNS:%s", cn);
    const char *sans[] = {san, NULL};
    struct clc_x509_spec spec = {.subject_cn = cn,
                                 .sans = sans,
                                 .not_before = now - 60,
                                 .not_after = now + 86400 * 30,
                                 .server_auth = 1};
    assert_int_equal(clc_signer_generate("EC", 256, key, NULL), CLC_OK);
    assert_int_equal(clc_x509_make(&spec, *key, K.ca, K.ca_key, leaf, NULL), CLC_OK);
}

static void create_self(const char *name)
{
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    kvf_policy(&p, "self.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    if (clc_kv_create(K.renewer, name, &req, &op, &ei) != CLC_OK)
        fail_msg("create %s: %s", name, ei.msg);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
}

static void test_import_pkcs12_and_pem(void **state)
{
    (void)state;
    struct clc_signer *key = NULL;
    X509 *leaf = NULL;
    struct clc_errinfo ei = {0};
    struct clc_kv_certificate c;
    char *x5t = NULL;

    make_leaf("imported.contoso.com", &key, &leaf);
    assert_int_equal(clc_x509_x5t(leaf, &x5t), CLC_OK);
    STACK_OF(X509) *ca = sk_X509_new_null();
    sk_X509_push(ca, K.ca);
    PKCS12 *p12 =
        PKCS12_create("pfx-pass", "imported", clc_signer_pkey(key), leaf, ca, 0, 0, 0, 0, 0);
    assert_non_null(p12);
    unsigned char *der = NULL;
    int len = i2d_PKCS12(p12, &der);
    assert_true(len > 0);
    struct clc_secret *value = NULL, *pwd = NULL, *wrong = NULL;
    assert_int_equal(clc_secret_new(der, (size_t)len, &value), CLC_OK);
    assert_int_equal(clc_secret_new("pfx-pass", 8, &pwd), CLC_OK);
    assert_int_equal(clc_secret_new("nope", 4, &wrong), CLC_OK);

    struct clc_kv_import imp = {.value = value, .password = wrong};
    assert_int_equal(clc_kv_import(K.renewer, "imported-pfx", &imp, &c, &ei), CLC_ERR_INVALID);
    assert_int_equal(ei.http_status, 400);
    imp.password = pwd;
    if (clc_kv_import(K.renewer, "imported-pfx", &imp, &c, &ei) != CLC_OK)
        fail_msg("import: %s", ei.msg);
    assert_string_equal(c.x5t, x5t);
    assert_string_equal(c.name, "imported-pfx");
    clc_kv_certificate_cleanup(&c);

    /* PEM: PKCS#8 key and the certificate. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey(bio, clc_signer_pkey(key), NULL, NULL, 0, NULL, NULL),
                     1);
    assert_int_equal(PEM_write_bio_X509(bio, leaf), 1);
    char *pem = NULL;
    long plen = BIO_get_mem_data(bio, &pem);
    struct clc_secret *pemsec = NULL;
    assert_int_equal(clc_secret_new(pem, (size_t)plen, &pemsec), CLC_OK);
    struct clc_kv_import pi = {.value = pemsec, .pem = 1};
    if (clc_kv_import(K.renewer, "imported-pem", &pi, &c, &ei) != CLC_OK)
        fail_msg("import PEM: %s", ei.msg);
    assert_string_equal(c.x5t, x5t);
    clc_kv_certificate_cleanup(&c);
    struct clc_kv_secret_bundle sec;
    assert_int_equal(clc_kv_get_secret(K.sync, "imported-pem", NULL, &sec, &ei), CLC_OK);
    assert_string_equal(sec.content_type, "application/x-pem-file");
    assert_non_null(strstr(clc_secret_reveal(sec.value), "BEGIN PRIVATE KEY"));
    clc_kv_secret_bundle_cleanup(&sec);

    BIO_free(bio);
    clc_secret_free(pemsec);
    clc_secret_free(value);
    clc_secret_free(pwd);
    clc_secret_free(wrong);
    OPENSSL_free(der);
    PKCS12_free(p12);
    sk_X509_free(ca);
    free(x5t);
    X509_free(leaf);
    clc_signer_free(key);
}

static void test_soft_delete_recover_purge(void **state)
{
    (void)state;
    struct clc_kv_certificate d, c;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    const char *name = "to-delete";

    create_self(name);
    assert_int_equal(clc_kv_delete_certificate(K.renewer, name, &d, &ei), CLC_OK);
    assert_non_null(d.recovery_id);
    assert_non_null(strstr(d.recovery_id, "/deletedcertificates/to-delete"));
    assert_true(d.deleted_date > 0);
    assert_true(d.scheduled_purge_date > d.deleted_date);
    clc_kv_certificate_cleanup(&d);
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, NULL, &c, &ei), CLC_ERR_NOT_FOUND);
    assert_int_equal(clc_kv_get_deleted(K.renewer, name, &d, &ei), CLC_OK);
    assert_string_equal(d.name, name);
    clc_kv_certificate_cleanup(&d);

    /* Listed among the deleted. */
    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *item;
    int found = 0;
    assert_int_equal(clc_kv_list_deleted(K.renewer, 0, &it, &ei), CLC_OK);
    while (clc_kv_iter_next(it, &item, &ei) == CLC_OK && item)
        found |= strcmp(item->name, name) == 0;
    clc_kv_iter_free(it);
    assert_true(found);

    /* The name is taken until purged. */
    struct clc_kv_policy p;
    kvf_policy(&p, "self.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    assert_int_equal(clc_kv_create(K.renewer, name, &req, &op, &ei), CLC_ERR_CONFLICT);

    assert_int_equal(clc_kv_recover_deleted(K.renewer, name, &c, &ei), CLC_OK);
    assert_string_equal(c.name, name);
    clc_kv_certificate_cleanup(&c);
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, NULL, &c, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&c);

    assert_int_equal(clc_kv_delete_certificate(K.renewer, name, &d, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&d);
    assert_int_equal(clc_kv_purge_deleted(K.renewer, name, &ei), CLC_OK);
    assert_int_equal(clc_kv_get_deleted(K.renewer, name, &d, &ei), CLC_ERR_NOT_FOUND);
    assert_int_equal(clc_kv_create(K.renewer, name, &req, &op, &ei), CLC_OK);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
}

static void expect_forbidden(enum clc_err e, const struct clc_errinfo *ei, const char *op)
{
    if (e != CLC_ERR_FORBIDDEN)
        fail_msg("%s: %s (%s), wanted forbidden", op, clc_err_name(e), ei->msg);
    if (strcmp(ei->code, "Forbidden") != 0)
        fail_msg("%s: code '%s': %s", op, ei->code, ei->msg);
    assert_int_equal(ei->http_status, 403);
    assert_string_equal(ei->code, "Forbidden");
    assert_non_null(strstr(ei->msg, "key vault 'certlc'"));
}

static void test_rbac(void **state)
{
    (void)state;
    const char *name = "rbac-cert";
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_kv_certificate c;
    struct clc_kv_secret_bundle s;
    struct clc_errinfo ei = {0};

    kvf_policy(&p, "rbac.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    /* renewer creates (and merges, see test_kv_client) but gets no secret. */
    assert_int_equal(clc_kv_create(K.renewer, name, &req, &op, &ei), CLC_OK);
    clc_kv_operation_cleanup(&op);
    expect_forbidden(clc_kv_get_secret(K.renewer, name, NULL, &s, &ei), &ei, "renewer secret");

    /* sync gets the secret but cannot create. */
    assert_int_equal(clc_kv_get_secret(K.sync, name, NULL, &s, &ei), CLC_OK);
    clc_kv_secret_bundle_cleanup(&s);
    expect_forbidden(clc_kv_create(K.sync, "rbac-sync", &req, &op, &ei), &ei, "sync create");

    /* reader lists and nothing else. */
    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *item = NULL;
    assert_int_equal(clc_kv_list_certificates(K.reader, 0, 0, &it, &ei), CLC_OK);
    assert_int_equal(clc_kv_iter_next(it, &item, &ei), CLC_OK);
    assert_non_null(item);
    clc_kv_iter_free(it);
    expect_forbidden(clc_kv_create(K.reader, "rbac-reader", &req, &op, &ei), &ei, "reader create");
    expect_forbidden(clc_kv_get_secret(K.reader, name, NULL, &s, &ei), &ei, "reader secret");
    struct clc_kv_tags t = {0};
    assert_int_equal(clc_kv_tags_set(&t, "k", "v", &ei), CLC_OK);
    struct clc_kv_update u = {.tags = &t};
    expect_forbidden(clc_kv_update_certificate(K.reader, name, NULL, &u, &c, &ei), &ei,
                     "reader tags");
    clc_kv_tags_cleanup(&t);
    clc_kv_policy_cleanup(&p);
}

static void reset_sleeps(void)
{
    memset(&K.sleeps, 0, sizeof K.sleeps);
}

static void test_retries(void **state)
{
    (void)state;
    struct clc_kv_certificate c;
    struct clc_kv_operation op;
    struct clc_errinfo ei = {0};
    struct clc_kv_policy p;

    create_self("retry-read");
    /* Reads: 429 twice with Retry-After, then 503 once. */
    reset_sleeps();
    kvf_fault("GET", "/certificates/retry-read*", 2, 429, 1);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&c);
    assert_int_equal(K.sleeps.n, 2);
    assert_int_equal(K.sleeps.last_ms, 1000);
    reset_sleeps();
    kvf_fault("GET", "/certificates/retry-read*", 1, 503, 0);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&c);
    assert_int_equal(K.sleeps.n, 1);

    /* Create is not idempotent: 503 is returned as it is... */
    kvf_policy(&p, "retry.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    reset_sleeps();
    kvf_fault("POST", "/certificates/retry-create*", 1, 503, 0);
    assert_int_equal(clc_kv_create(K.renewer, "retry-create", &req, &op, &ei), CLC_ERR_UNAVAILABLE);
    assert_int_equal(ei.http_status, 503);
    assert_int_equal(K.sleeps.n, 0);
    /* ...while 429 (not acted on) is retried. */
    kvf_fault("POST", "/certificates/retry-create*", 1, 429, 2);
    assert_int_equal(clc_kv_create(K.renewer, "retry-create", &req, &op, &ei), CLC_OK);
    clc_kv_operation_cleanup(&op);
    assert_int_equal(K.sleeps.n, 1);
    assert_int_equal(K.sleeps.last_ms, 2000);

    /* Throttled past the attempts: the error says so. */
    reset_sleeps();
    kvf_fault("GET", "/certificates/retry-read*", 10, 429, 1);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei),
                     CLC_ERR_THROTTLED);
    assert_int_equal(ei.http_status, 429);
    assert_int_equal(K.sleeps.n, K.retry.max_attempts - 1);
    assert_int_equal(kvf_control("DELETE", "/control/faults", NULL) / 100, 2);

    /* Dropped connections: a read is repeated, a create is not. Two drops,
     * because libcurl itself resends once when a reused connection closes
     * without an answer. */
    reset_sleeps();
    assert_int_equal(kvf_control("POST", "/control/faults",
                                 "{\"service\":\"*\",\"method\":\"GET\",\"path\":"
                                 "\"/certificates/retry-read*\",\"count\":2,\"drop\":true}") /
                         100,
                     2);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&c);
    assert_int_equal(K.sleeps.n, 1);
    reset_sleeps();
    assert_int_equal(kvf_control("POST", "/control/faults",
                                 "{\"service\":\"*\",\"method\":\"POST\",\"path\":"
                                 "\"/certificates/retry-drop*\",\"count\":2,\"drop\":true}") /
                         100,
                     2);
    assert_int_equal(clc_kv_create(K.renewer, "retry-drop", &req, &op, &ei), CLC_ERR_NET);
    assert_int_equal(K.sleeps.n, 0);
    assert_non_null(strstr(ei.msg, "create certificate 'retry-drop'"));

    /* A 401 gets one fresh token; two in a row are an auth error. */
    kvf_fault("GET", "/certificates/retry-read*", 1, 401, 0);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&c);
    kvf_fault("GET", "/certificates/retry-read*", 2, 401, 0);
    assert_int_equal(clc_kv_get_certificate(K.renewer, "retry-read", NULL, &c, &ei), CLC_ERR_AUTH);
    assert_int_equal(kvf_control("DELETE", "/control/faults", NULL) / 100, 2);
    clc_kv_policy_cleanup(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_import_pkcs12_and_pem),
        cmocka_unit_test(test_soft_delete_recover_purge),
        cmocka_unit_test(test_rbac),
        cmocka_unit_test(test_retries),
    };
    return cmocka_run_group_tests(tests, kvf_setup, kvf_teardown);
}
