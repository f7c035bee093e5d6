/* The Key Vault client against the emulated vault over HTTPS: the whole
 * renewal cycle (create with issuer Unknown, CSR read and checked against
 * the policy, signed by a test CA, merged, read back, versions, the secret as
 * PKCS#12 and as PEM, tags round trip), a second renewal, 409 while pending,
 * cancel and delete of the operation, a chain for another key refused,
 * policy and attribute updates, errors that name vault, certificate and
 * code, and the challenge's resource check. */
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
#include "core/file.h"
#include "core/json.h"
#include "crypto/csr.h"
#include "kv_client_fixture.h"

/* create (Unknown) -> pending CSR checked against the policy. */
static void start_renewal(struct clc_kv *kv, const char *name, const struct clc_kv_policy *p,
                          const struct clc_kv_tags *tags, struct clc_kv_operation *op)
{
    struct clc_errinfo ei = {0};
    struct clc_kv_create req = {.policy = p, .tags = tags};
    X509_REQ *csr = NULL;
    struct clc_csr_expect want;

    if (clc_kv_create(kv, name, &req, op, &ei) != CLC_OK)
        fail_msg("create %s: %s", name, ei.msg);
    assert_string_equal(op->status, "inProgress");
    assert_string_equal(op->issuer_name, "Unknown");
    assert_non_null(op->csr);
    assert_int_equal(clc_csr_from_der(op->csr, op->csr_len, &csr, &ei), CLC_OK);
    clc_kv_policy_csr_expect(p, &want);
    if (clc_csr_check(csr, &want, &ei) != CLC_OK)
        fail_msg("CSR vs policy: %s", ei.msg);
    X509_REQ_free(csr);
}

static void merge_ok(struct clc_kv *kv, const char *name, const struct clc_kv_operation *op,
                     struct clc_kv_certificate *out)
{
    struct clc_errinfo ei = {0};
    STACK_OF(X509) *chain = kvf_sign_csr(op->csr, op->csr_len, NULL, 0, 90);
    X509_REQ *csr = NULL;
    /* What the pipeline checks before merging. */
    assert_int_equal(clc_csr_from_der(op->csr, op->csr_len, &csr, &ei), CLC_OK);
    assert_int_equal(clc_csr_check_leaf(csr, sk_X509_value(chain, 0), &ei), CLC_OK);
    /* Given root first: the client sends leaf first. */
    STACK_OF(X509) *rev = sk_X509_new_null();
    sk_X509_push(rev, sk_X509_value(chain, 1));
    sk_X509_push(rev, sk_X509_value(chain, 0));
    if (clc_kv_merge(kv, name, rev, NULL, out, &ei) != CLC_OK)
        fail_msg("merge %s: %s", name, ei.msg);
    unsigned char *der = NULL;
    size_t len = 0;
    assert_int_equal(clc_cert_to_der(sk_X509_value(chain, 0), &der, &len, &ei), CLC_OK);
    assert_int_equal(out->cer_len, len);
    assert_memory_equal(out->cer, der, len);
    free(der);
    sk_X509_free(rev);
    clc_cert_chain_free(chain);
    X509_REQ_free(csr);
}

static void check_pkcs12(const struct clc_kv_secret_bundle *s, const struct clc_kv_certificate *c)
{
    unsigned char *pfx = NULL;
    size_t len = 0;
    const unsigned char *p;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL, *leaf = NULL;
    STACK_OF(X509) *ca = NULL;

    assert_string_equal(s->content_type, "application/x-pkcs12");
    assert_int_equal(
        clc_b64_decode(clc_secret_reveal(s->value), clc_secret_len(s->value), &pfx, &len), CLC_OK);
    p = pfx;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    assert_non_null(p12);
    /* Key Vault's PFX has an empty password. */
    assert_int_equal(PKCS12_parse(p12, "", &key, &cert, &ca), 1);
    assert_non_null(key);
    assert_non_null(cert);
    assert_int_equal(clc_cert_from_der(c->cer, c->cer_len, &leaf, NULL), CLC_OK);
    assert_int_equal(X509_cmp(cert, leaf), 0);
    assert_int_equal(EVP_PKEY_eq(key, X509_get0_pubkey(leaf)), 1);
    OPENSSL_cleanse(pfx, len);
    free(pfx);
    PKCS12_free(p12);
    EVP_PKEY_free(key);
    X509_free(cert);
    X509_free(leaf);
    sk_X509_pop_free(ca, X509_free);
}

static void test_renewal_cycle(void **state)
{
    (void)state;
    const char *name = "web-contoso";
    struct clc_kv_policy p;
    struct clc_kv_tags tags = {0};
    struct clc_kv_operation op, op2;
    struct clc_kv_certificate merged, got, byver, merged2;
    struct clc_kv_secret_bundle sec;
    struct clc_errinfo ei = {0};

    kvf_policy(&p, "web.contoso.com", "Unknown", "RSA", 0);
    assert_int_equal(clc_kv_tags_set(&tags, "Recipient", "ops@contoso.com", &ei), CLC_OK);
    start_renewal(K.renewer, name, &p, &tags, &op);

    /* The pending operation gives the same CSR. */
    assert_int_equal(clc_kv_get_operation(K.renewer, name, &op2, &ei), CLC_OK);
    assert_int_equal(op2.csr_len, op.csr_len);
    assert_memory_equal(op2.csr, op.csr, op.csr_len);
    clc_kv_operation_cleanup(&op2);

    /* A second create while pending: 409 Conflict, named. */
    struct clc_kv_create again = {.policy = &p};
    assert_int_equal(clc_kv_create(K.renewer, name, &again, &op2, &ei), CLC_ERR_CONFLICT);
    assert_int_equal(ei.http_status, 409);
    assert_string_equal(ei.code, "Conflict");
    assert_non_null(strstr(ei.msg, "key vault 'certlc'"));
    assert_non_null(strstr(ei.msg, "'web-contoso'"));

    merge_ok(K.renewer, name, &op, &merged);
    assert_string_equal(merged.name, name);
    assert_int_equal(strlen(merged.version), 32);
    assert_non_null(merged.sid);
    assert_non_null(merged.kid);
    assert_non_null(merged.x5t);
    assert_true(merged.attributes.exp > merged.attributes.nbf);
    assert_string_equal(clc_kv_tags_get(&merged.tags, "Recipient"), "ops@contoso.com");

    /* Latest and by version. */
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, NULL, &got, &ei), CLC_OK);
    assert_string_equal(got.version, merged.version);
    assert_string_equal(got.x5t, merged.x5t);
    assert_non_null(got.policy);
    assert_string_equal(got.policy->issuer_name, "Unknown");
    assert_string_equal(got.policy->subject, p.subject);
    assert_int_equal(got.policy->key_size, 2048);
    assert_true(clc_cert_strs_same_set(&got.policy->dns_names, &p.dns_names, 1));
    assert_int_equal(got.policy->nactions, 1);
    assert_int_equal(got.policy->actions[0].lifetime_percentage, 80);
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, merged.version, &byver, &ei), CLC_OK);
    assert_string_equal(byver.x5t, merged.x5t);
    clc_kv_certificate_cleanup(&byver);

    /* The operation is completed and points at the certificate. */
    assert_int_equal(clc_kv_get_operation(K.renewer, name, &op2, &ei), CLC_OK);
    assert_string_equal(op2.status, "completed");
    assert_non_null(op2.target);
    clc_kv_operation_cleanup(&op2);

    /* The secret: PKCS#12 with the key, for the sync identity only. */
    assert_int_equal(clc_kv_get_secret(K.sync, name, merged.version, &sec, &ei), CLC_OK);
    assert_true(sec.managed);
    check_pkcs12(&sec, &merged);
    clc_kv_secret_bundle_cleanup(&sec);

    /* Tags round trip (the whole map is replaced). */
    struct clc_kv_tags t2 = {0};
    struct clc_kv_certificate upd;
    assert_int_equal(clc_kv_tags_set(&t2, "Recipient", "pki@contoso.com", &ei), CLC_OK);
    assert_int_equal(clc_kv_tags_set(&t2, "Env", "prod", &ei), CLC_OK);
    struct clc_kv_update u = {.tags = &t2};
    assert_int_equal(clc_kv_update_certificate(K.renewer, name, NULL, &u, &upd, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&upd);
    clc_kv_certificate_cleanup(&got);
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, NULL, &got, &ei), CLC_OK);
    assert_int_equal(got.tags.n, 2);
    assert_string_equal(clc_kv_tags_get(&got.tags, "Recipient"), "pki@contoso.com");
    assert_string_equal(clc_kv_tags_get(&got.tags, "Env"), "prod");
    clc_kv_tags_cleanup(&t2);

    /* A second renewal with the policy read back: two versions. */
    struct clc_kv_operation op3;
    start_renewal(K.renewer, name, got.policy, NULL, &op3);
    merge_ok(K.renewer, name, &op3, &merged2);
    assert_string_not_equal(merged2.version, merged.version);
    struct clc_kv_iter *it = NULL;
    const struct clc_kv_certificate *item;
    int n = 0, seen1 = 0, seen2 = 0;
    assert_int_equal(clc_kv_list_versions(K.reader, name, 25, &it, &ei), CLC_OK);
    while (clc_kv_iter_next(it, &item, &ei) == CLC_OK && item) {
        n++;
        seen1 |= strcmp(item->version, merged.version) == 0;
        seen2 |= strcmp(item->version, merged2.version) == 0;
    }
    assert_int_equal(n, 2);
    assert_true(seen1 && seen2);
    clc_kv_iter_free(it);

    clc_kv_operation_cleanup(&op);
    clc_kv_operation_cleanup(&op3);
    clc_kv_certificate_cleanup(&merged);
    clc_kv_certificate_cleanup(&merged2);
    clc_kv_certificate_cleanup(&got);
    clc_kv_tags_cleanup(&tags);
    clc_kv_policy_cleanup(&p);
}

static void test_pem_secret(void **state)
{
    (void)state;
    const char *name = "api-pem";
    struct clc_kv_policy p;
    struct clc_kv_operation op;
    struct clc_kv_certificate merged;
    struct clc_kv_secret_bundle sec;
    struct clc_errinfo ei = {0};

    kvf_policy(&p, "api.contoso.com", "Unknown", "EC", 1);
    start_renewal(K.renewer, name, &p, NULL, &op);
    merge_ok(K.renewer, name, &op, &merged);
    assert_int_equal(clc_kv_get_secret(K.sync, name, NULL, &sec, &ei), CLC_OK);
    assert_string_equal(sec.content_type, "application/x-pem-file");
    const char *pem = clc_secret_reveal(sec.value);
    /* Key first (PKCS#8), then the certificates leaf first. */
    assert_true(strncmp(pem, "-----BEGIN PRIVATE KEY-----", 27) == 0);
    STACK_OF(X509) *certs = NULL;
    assert_int_equal(clc_cert_chain_from_pem(pem, strlen(pem), &certs, &ei), CLC_OK);
    X509 *leaf = NULL;
    assert_int_equal(clc_cert_from_der(merged.cer, merged.cer_len, &leaf, &ei), CLC_OK);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), leaf), 0);
    BIO *bio = BIO_new_mem_buf(pem, (int)strlen(pem));
    EVP_PKEY *key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    assert_non_null(key);
    assert_int_equal(EVP_PKEY_eq(key, X509_get0_pubkey(leaf)), 1);
    EVP_PKEY_free(key);
    BIO_free(bio);
    X509_free(leaf);
    clc_cert_chain_free(certs);
    clc_kv_secret_bundle_cleanup(&sec);
    clc_kv_certificate_cleanup(&merged);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
}

static void test_chain_for_another_key(void **state)
{
    (void)state;
    const char *name = "wrong-key";
    struct clc_kv_policy p;
    struct clc_kv_operation op, cur;
    struct clc_kv_certificate out;
    struct clc_signer *other = NULL;
    struct clc_errinfo ei = {0};

    kvf_policy(&p, "wrong.contoso.com", "Unknown", "EC", 0);
    start_renewal(K.renewer, name, &p, NULL, &op);
    /* Expired and not-yet-valid chains for the right key are refused too. */
    int64_t windows[2][2] = {{-30 * 86400, -1}, {2 * 86400, 90}};
    for (int i = 0; i < 2; i++) {
        STACK_OF(X509) *bad = kvf_sign_csr(op.csr, op.csr_len, NULL, windows[i][0], windows[i][1]);
        assert_int_equal(clc_kv_merge(K.renewer, name, bad, NULL, &out, &ei), CLC_ERR_INVALID);
        assert_int_equal(ei.http_status, 400);
        clc_cert_chain_free(bad);
    }
    assert_int_equal(clc_signer_generate("EC", 256, &other, &ei), CLC_OK);
    STACK_OF(X509) *chain = kvf_sign_csr(op.csr, op.csr_len, other, 0, 90);
    X509_REQ *csr = NULL;
    /* Caught before sending... */
    assert_int_equal(clc_csr_from_der(op.csr, op.csr_len, &csr, &ei), CLC_OK);
    assert_int_equal(clc_csr_check_leaf(csr, sk_X509_value(chain, 0), &ei), CLC_ERR_INVALID);
    /* ...and refused by the vault, which stays pending. */
    assert_int_equal(clc_kv_merge(K.renewer, name, chain, NULL, &out, &ei), CLC_ERR_INVALID);
    assert_int_equal(ei.http_status, 400);
    assert_true(ei.code[0] != '\0');
    assert_non_null(strstr(ei.msg, "merge certificate 'wrong-key'"));
    assert_int_equal(clc_kv_get_operation(K.renewer, name, &cur, &ei), CLC_OK);
    assert_string_equal(cur.status, "inProgress");
    clc_kv_operation_cleanup(&cur);

    /* Cancel, then delete the operation: it is gone. */
    assert_int_equal(clc_kv_cancel_operation(K.renewer, name, &cur, &ei), CLC_OK);
    assert_true(cur.cancellation_requested);
    clc_kv_operation_cleanup(&cur);
    assert_int_equal(clc_kv_delete_operation(K.renewer, name, &cur, &ei), CLC_OK);
    clc_kv_operation_cleanup(&cur);
    assert_int_equal(clc_kv_get_operation(K.renewer, name, &cur, &ei), CLC_ERR_NOT_FOUND);
    assert_int_equal(ei.http_status, 404);

    X509_REQ_free(csr);
    clc_cert_chain_free(chain);
    clc_signer_free(other);
    clc_kv_operation_cleanup(&op);
    clc_kv_policy_cleanup(&p);
}

static void test_policy_and_attributes(void **state)
{
    (void)state;
    const char *name = "self-signed";
    struct clc_kv_policy p, got, upd;
    struct clc_kv_operation op;
    struct clc_kv_certificate c, after;
    struct clc_errinfo ei = {0};

    kvf_policy(&p, "self.contoso.com", "Self", "EC", 0);
    struct clc_kv_create req = {.policy = &p};
    assert_int_equal(clc_kv_create(K.renewer, name, &req, &op, &ei), CLC_OK);
    clc_kv_operation_cleanup(&op);
    assert_int_equal(clc_kv_get_certificate(K.renewer, name, NULL, &c, &ei), CLC_OK);
    assert_non_null(c.cer);

    assert_int_equal(clc_kv_get_policy(K.renewer, name, &got, &ei), CLC_OK);
    assert_string_equal(got.kty, "EC");
    assert_string_equal(got.crv, "P-256");
    assert_int_equal(got.validity_months, 12);
    assert_non_null(got.id);
    got.validity_months = 6;
    assert_int_equal(clc_kv_update_policy(K.renewer, name, &got, &upd, &ei), CLC_OK);
    assert_int_equal(upd.validity_months, 6);
    clc_kv_policy_cleanup(&upd);

    struct clc_kv_attributes a;
    clc_kv_attributes_init(&a);
    a.enabled = 0;
    struct clc_kv_update u = {.attributes = &a};
    assert_int_equal(clc_kv_update_certificate(K.renewer, name, c.version, &u, &after, &ei),
                     CLC_OK);
    assert_int_equal(after.attributes.enabled, 0);
    clc_kv_certificate_cleanup(&after);

    clc_kv_certificate_cleanup(&c);
    clc_kv_policy_cleanup(&got);
    clc_kv_policy_cleanup(&p);
}

static void test_errors_name_things(void **state)
{
    (void)state;
    struct clc_kv_certificate c;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_kv_get_certificate(K.reader, "no-such-cert", NULL, &c, &ei),
                     CLC_ERR_NOT_FOUND);
    assert_int_equal(ei.http_status, 404);
    assert_string_equal(ei.code, "CertificateNotFound");
    assert_non_null(strstr(ei.msg, "key vault 'certlc': get certificate 'no-such-cert'"));
    assert_true(ei.request_id[0] != '\0');

    /* Refused before anything is sent. */
    const char *bad[] = {"", "../x", "a b", "caf\xc3\xa9", NULL};
    for (int i = 0; bad[i]; i++) {
        assert_int_equal(clc_kv_get_certificate(K.reader, bad[i], NULL, &c, &ei), CLC_ERR_INVALID);
        assert_non_null(strstr(ei.msg, "not valid"));
    }
    char longname[130];
    memset(longname, 'a', 128);
    longname[128] = '\0';
    assert_int_equal(clc_kv_get_certificate(K.reader, longname, NULL, &c, &ei), CLC_ERR_INVALID);
    assert_int_equal(clc_kv_get_certificate(K.reader, "ok", "../v", &c, &ei), CLC_ERR_INVALID);
    struct clc_kv_iter *it = NULL;
    assert_int_equal(clc_kv_list_certificates(K.reader, 26, 0, &it, &ei), CLC_ERR_INVALID);
    assert_null(it);
}

static void test_challenge_resource_verified(void **state)
{
    (void)state;
    /* The emulator answers resource https://vault.azure.net on 127.0.0.1:
     * with verification on (the default) the client refuses the challenge. */
    struct clc_kv *kv = kvf_client(kvf_auth("reader"), 1, 0);
    struct clc_kv_certificate c;
    struct clc_errinfo ei = {0};
    assert_non_null(kv);
    assert_int_equal(clc_kv_get_certificate(kv, "anything", NULL, &c, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "not a domain suffix"));
    clc_kv_free(kv);

    /* Only https vault URLs. */
    struct clc_kv_opts o = {.vault_url = "http://127.0.0.1:1"};
    assert_int_equal(clc_kv_new(&o, &K.http, kvf_auth("reader"), &kv, &ei), CLC_ERR_CONFIG);
    o.vault_url = "https://v.vault.azure.net/path";
    assert_int_equal(clc_kv_new(&o, &K.http, kvf_auth("reader"), &kv, &ei), CLC_ERR_CONFIG);
    o.vault_url = "https://v.vault.azure.net";
    o.api_version = "2016-10-01";
    assert_int_equal(clc_kv_new(&o, &K.http, kvf_auth("reader"), &kv, &ei), CLC_ERR_CONFIG);
}

static cJSON *fixture_json(const char *name)
{
    char path[512], *text = NULL;
    size_t len = 0;
    cJSON *j = NULL;
    snprintf(path, sizeof path, CLC_FIXTURES "/keyvault/%s", name);
    assert_int_equal(clc_file_read(path, 1 << 20, &text, &len, NULL), CLC_OK);
    assert_int_equal(clc_json_parse(text, len, 1 << 20, &j, NULL), CLC_OK);
    free(text);
    return j;
}

/* Policy JSON -> struct -> JSON keeps every writable member. */
static void test_policy_json_round_trip(void **state)
{
    (void)state;
    cJSON *in = fixture_json("policy-full.json"), *out = NULL;
    struct clc_kv_policy p, copy;
    struct clc_errinfo ei = {0};

    assert_int_equal(clc_kv_policy_from_json(in, &p, &ei), CLC_OK);
    assert_string_equal(p.kty, "RSA");
    assert_int_equal(p.key_size, 3072);
    assert_int_equal(p.reuse_key, 1);
    assert_string_equal(p.content_type, "application/x-pem-file");
    assert_int_equal(p.upns.n, 1);
    assert_int_equal(p.nactions, 2);
    assert_int_equal(p.actions[1].days_before_expiry, 30);
    assert_string_equal(p.actions[1].action_type, "AutoRenew");
    assert_string_equal(p.issuer_cty, "OV-SSL");
    assert_int_equal(p.cert_transparency, 0);
    assert_int_equal(p.attributes.created, 1493938289);
    assert_int_equal(clc_kv_policy_to_json(&p, &out, &ei), CLC_OK);
    /* Read-only members are not sent; everything else is. */
    assert_null(cJSON_GetObjectItemCaseSensitive(out, "id"));
    cJSON_DeleteItemFromObjectCaseSensitive(in, "id");
    cJSON *attrs = cJSON_GetObjectItemCaseSensitive(in, "attributes");
    cJSON_DeleteItemFromObjectCaseSensitive(attrs, "created");
    cJSON_DeleteItemFromObjectCaseSensitive(attrs, "updated");
    assert_true(cJSON_Compare(in, out, 1));
    assert_int_equal(clc_kv_policy_copy(&p, &copy, &ei), CLC_OK);
    assert_string_equal(copy.subject, p.subject);
    assert_null(copy.id);
    clc_kv_policy_cleanup(&copy);
    clc_kv_policy_cleanup(&p);
    cJSON_Delete(out);
    cJSON_Delete(in);

    in = fixture_json("policy-wrong-types.json");
    assert_int_equal(clc_kv_policy_from_json(in, &p, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "key_size"));
    clc_kv_policy_cleanup(&p);
    cJSON_Delete(in);
}

/* A response over the client's bound is refused, not buffered. */
static void test_response_bound(void **state)
{
    (void)state;
    struct clc_kv *kv = NULL;
    struct clc_kv_certificate c;
    struct clc_errinfo ei = {0};
    struct clc_kv_opts o = {.vault_url = kvf_vault_url(),
                            .disable_challenge_resource_verification = 1,
                            .max_response_bytes = 600};
    assert_int_equal(clc_kv_new(&o, &K.http, kvf_auth("reader"), &kv, &ei), CLC_OK);
    assert_int_equal(clc_kv_get_certificate(kv, "web-contoso", NULL, &c, &ei), CLC_ERR_LIMIT);
    assert_non_null(strstr(ei.msg, "key vault '127.0.0.1'"));
    clc_kv_free(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_renewal_cycle),
        cmocka_unit_test(test_pem_secret),
        cmocka_unit_test(test_chain_for_another_key),
        cmocka_unit_test(test_policy_and_attributes),
        cmocka_unit_test(test_errors_name_things),
        cmocka_unit_test(test_challenge_resource_verified),
        cmocka_unit_test(test_policy_json_round_trip),
        cmocka_unit_test(test_response_bound),
    };
    return cmocka_run_group_tests(tests, kvf_setup, kvf_teardown);
}
