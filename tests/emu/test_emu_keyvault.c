/* The emulated Key Vault at the wire level, over HTTPS with verification:
 * the renewal cycle (create Unknown, CSR, sign, merge, get, versions,
 * secrets as PKCS#12 and PEM, tags), Self issuance, conflicts and
 * cancellation, merge refusals, paging, soft delete, import, several vaults. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/json.h"
#include "crypto/x509.h"
#include "emulator/state.h"
#include "test_emu_keyvault_fixture.h"

static X509 *x509_b64(const char *b64)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509 *x;

    assert_non_null(b64);
    assert_int_equal(clc_b64_decode(b64, strlen(b64), &der, &len), CLC_OK);
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    free(der);
    return x;
}

static X509_REQ *csr_b64(const char *b64)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509_REQ *q;

    assert_non_null(b64);
    assert_int_equal(clc_b64_decode(b64, strlen(b64), &der, &len), CLC_OK);
    p = der;
    q = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(q);
    free(der);
    return q;
}

static char *merge_body(const char *leaf, const char *ca)
{
    size_t n = strlen(leaf) + (ca ? strlen(ca) : 0) + 64;
    char *b = malloc(n);

    assert_non_null(b);
    if (ca)
        snprintf(b, n, "{\"x5c\": [\"%s\", \"%s\"]}", leaf, ca);
    else
        snprintf(b, n, "{\"x5c\": [\"%s\"]}", leaf);
    return b;
}

/* create (Unknown) -> CSR -> sign -> merge -> get -> versions -> secrets -> tags */
static void test_renewal_cycle(void **state)
{
    struct kvr r;
    int64_t now = emu_now(kv.e);
    char *leaf, *ca, *body, *x5t = NULL, *ver1 = NULL, *csr = NULL;
    X509 *x;
    X509_REQ *q;
    EVP_PKEY *pub;
    GENERAL_NAMES *gens;

    (void)state;
    kv_call("renewer", "POST", "/certificates/web1/create",
            "{\"policy\": {\"key_props\": {\"exportable\": true, \"kty\": \"EC\", \"crv\": "
            "\"P-256\", \"reuse_key\": false},"
            " \"secret_props\": {\"contentType\": \"application/x-pkcs12\"},"
            " \"x509_props\": {\"subject\": \"CN=web1.contoso.com, O=Contoso\","
            " \"sans\": {\"dns_names\": [\"web1.contoso.com\", \"www.contoso.com\"],"
            " \"emails\": [\"ops@contoso.com\"], \"upns\": [\"svc@contoso.com\"]},"
            " \"ekus\": [\"1.3.6.1.5.5.7.3.1\"], \"key_usage\": [\"digitalSignature\"],"
            " \"validity_months\": 12},"
            " \"lifetime_actions\": [{\"trigger\": {\"days_before_expiry\": 30},"
            " \"action\": {\"action_type\": \"EmailContacts\"}}],"
            " \"issuer\": {\"name\": \"Unknown\"}},"
            " \"tags\": {\"Recipient\": \"ops@contoso.com\"}}",
            &r);
    kv_expect(&r, 202);
    assert_string_equal(kv_str(r.json, "status"), "inProgress");
    assert_string_equal(kv_str(r.json, "issuer.name"), "Unknown");
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "cancellation_requested")));
    assert_non_null(strstr(kv_str(r.json, "id"), "/certificates/web1/pending"));
    assert_int_equal(strlen(kv_str(r.json, "request_id")), 32);
    csr = strdup(kv_str(r.json, "csr"));
    kvr_free(&r);

    /* The CSR: the policy's subject and SANs, signed by the vault's key. */
    q = csr_b64(csr);
    pub = X509_REQ_get_pubkey(q);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    assert_int_equal(X509_REQ_verify(q, pub), 1);
    {
        char cn[128];
        X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(q), NID_commonName, cn, sizeof cn);
        assert_string_equal(cn, "web1.contoso.com");
        STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(q);
        int found = 0;
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
            X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
            if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) == NID_subject_alt_name) {
                gens = X509V3_EXT_d2i(e);
                assert_int_equal(sk_GENERAL_NAME_num(gens), 4);
                GENERAL_NAMES_free(gens);
                found = 1;
            }
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        assert_true(found);
    }
    X509_REQ_free(q);

    /* The operation is readable; the pending certificate answers without a secret id. */
    kv_call("reader", "GET", "/certificates/web1/pending", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "csr"), csr);
    kvr_free(&r);
    kv_call("renewer", "GET", "/certificates/web1/", NULL, &r);
    kv_expect(&r, 200);
    assert_null(kv_str(r.json, "sid"));
    assert_false(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(r.json, "attributes"), "enabled")));
    kvr_free(&r);
    assert_int_equal(kv_count("reader", "/certificates?api-version=7.5&maxresults=25"), 0);
    assert_int_equal(kv_count("reader", "/certificates?api-version=7.5&includePending=true"), 1);
    kv_call("sync", "GET", "/secrets/web1/", NULL, &r);
    kv_expect(&r, 404);
    assert_string_equal(kv_errcode(&r), "SecretNotFound");
    kvr_free(&r);

    /* Sign and merge leaf + CA. */
    leaf = kv_sign_csr(csr, now - 60, now + 90 * 86400, NULL, NULL);
    ca = kv_b64_der(kv.ca_cert);
    body = merge_body(leaf, ca);
    kv_call("renewer", "POST", "/certificates/web1/pending/merge", body, &r);
    kv_expect(&r, 201);
    free(body);
    x = x509_b64(kv_str(r.json, "cer"));
    assert_string_equal(kv_str(r.json, "cer"), leaf);
    assert_int_equal(clc_x509_x5t(x, &x5t), CLC_OK);
    assert_string_equal(kv_str(r.json, "x5t"), x5t);
    assert_int_equal(kv_int(r.json, "attributes.nbf"), now - 60);
    assert_int_equal(kv_int(r.json, "attributes.exp"), now + 90 * 86400);
    assert_true(kv_int(r.json, "attributes.created") > 0);
    assert_string_equal(kv_str(r.json, "attributes.recoveryLevel"), "Recoverable+Purgeable");
    assert_string_equal(kv_str(r.json, "tags.Recipient"), "ops@contoso.com");
    assert_string_equal(kv_str(r.json, "policy.issuer.name"), "Unknown");
    assert_int_equal(kv_int(r.json, "policy.x509_props.validity_months"), 12);
    {
        const char *id = kv_str(r.json, "id"), *kid = kv_str(r.json, "kid"),
                   *sid = kv_str(r.json, "sid");
        ver1 = strdup(strrchr(id, '/') + 1);
        assert_int_equal(strlen(ver1), 32);
        assert_true(strncmp(id, kvfx_vault("certlc"), strlen(kvfx_vault("certlc"))) == 0);
        assert_non_null(strstr(kid, "/keys/web1/"));
        assert_non_null(strstr(sid, "/secrets/web1/"));
        assert_string_equal(strrchr(kid, '/') + 1, ver1);
        assert_string_equal(strrchr(sid, '/') + 1, ver1);
    }
    kvr_free(&r);
    free(ca);

    /* Get: latest without and with the slash, by version; pending completed. */
    kv_call("reader", "GET", "/certificates/web1", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "x5t"), x5t);
    assert_non_null(kv_str(r.json, "policy.id"));
    kvr_free(&r);
    {
        char p[128];
        snprintf(p, sizeof p, "/certificates/web1/%s", ver1);
        kv_call("reader", "GET", p, NULL, &r);
        kv_expect(&r, 200);
        assert_string_equal(kv_str(r.json, "cer"), leaf);
        kvr_free(&r);
    }
    kv_call("reader", "GET", "/certificates/web1/pending", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "status"), "completed");
    assert_non_null(strstr(kv_str(r.json, "target"), "/certificates/web1"));
    kvr_free(&r);

    /* The secret: a PFX with an empty password holding the vault's key. */
    kv_call("sync", "GET", "/secrets/web1/", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "contentType"), "application/x-pkcs12");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "managed")));
    assert_non_null(strstr(kv_str(r.json, "kid"), ver1));
    {
        const char *v = kv_str(r.json, "value");
        unsigned char *der = NULL;
        const unsigned char *p;
        size_t len = 0;
        PKCS12 *p12;
        EVP_PKEY *k = NULL;
        X509 *c = NULL;
        STACK_OF(X509) *chain = NULL;
        assert_int_equal(clc_b64_decode(v, strlen(v), &der, &len), CLC_OK);
        p = der;
        p12 = d2i_PKCS12(NULL, &p, (long)len);
        assert_non_null(p12);
        assert_int_equal(PKCS12_parse(p12, "", &k, &c, &chain), 1);
        assert_int_equal(X509_check_private_key(x, k), 1);
        assert_int_equal(X509_cmp(c, x), 0);
        assert_int_equal(sk_X509_num(chain), 1);
        EVP_PKEY_free(k);
        X509_free(c);
        sk_X509_pop_free(chain, X509_free);
        PKCS12_free(p12);
        free(der);
    }
    kvr_free(&r);

    /* A second version with PEM secrets; versions lists both. */
    kv_call("renewer", "PATCH", "/certificates/web1/policy",
            "{\"secret_props\": {\"contentType\": \"application/x-pem-file\"}}", &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "secret_props.contentType"), "application/x-pem-file");
    assert_string_equal(kv_str(r.json, "key_props.crv"), "P-256");
    kvr_free(&r);
    kv_call("renewer", "POST", "/certificates/web1/create", "{}", &r);
    kv_expect(&r, 202);
    free(leaf);
    leaf = kv_sign_csr(kv_str(r.json, "csr"), now - 60, now + 400 * 86400, NULL, NULL);
    kvr_free(&r);
    body = merge_body(leaf, NULL);
    kv_call("renewer", "POST", "/certificates/web1/pending/merge", body, &r);
    kv_expect(&r, 201);
    free(body);
    kvr_free(&r);
    assert_int_equal(kv_count("reader", "/certificates/web1/versions?api-version=7.5"), 2);
    kv_call("sync", "GET", "/secrets/web1", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "contentType"), "application/x-pem-file");
    {
        const char *v = kv_str(r.json, "value");
        const char *kpos = strstr(v, "-----BEGIN PRIVATE KEY-----");
        const char *cpos = strstr(v, "-----BEGIN CERTIFICATE-----");
        assert_non_null(kpos);
        assert_non_null(cpos);
        assert_true(kpos < cpos);
    }
    kvr_free(&r);
    {
        char p[128];
        snprintf(p, sizeof p, "/secrets/web1/%s", ver1);
        kv_call("sync", "GET", p, NULL, &r);
        kv_expect(&r, 200);
        assert_string_equal(kv_str(r.json, "contentType"), "application/x-pkcs12");
        kvr_free(&r);
    }

    /* Tags: PATCH replaces the map. */
    kv_call("renewer", "PATCH", "/certificates/web1/",
            "{\"tags\": {\"Recipient\": \"pki@contoso.com\", \"Owner\": \"web\"},"
            " \"attributes\": {\"enabled\": true}}",
            &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/web1/", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "tags.Recipient"), "pki@contoso.com");
    assert_string_equal(kv_str(r.json, "tags.Owner"), "web");
    kvr_free(&r);

    X509_free(x);
    EVP_PKEY_free(pub);
    free(x5t);
    free(ver1);
    free(leaf);
    free(csr);
}

static void test_self_issued_rsa(void **state)
{
    struct kvr r;
    X509 *x;
    int64_t nbf, exp;

    (void)state;
    kv_call("renewer", "POST", "/certificates/selfie/create",
            "{\"policy\": {\"key_props\": {\"kty\": \"RSA\", \"key_size\": 2048},"
            " \"x509_props\": {\"subject\": \"CN=selfie\", \"validity_months\": 6},"
            " \"issuer\": {\"name\": \"Self\"}}}",
            &r);
    kv_expect(&r, 202);
    assert_string_equal(kv_str(r.json, "status"), "completed");
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/selfie/", NULL, &r);
    kv_expect(&r, 200);
    x = x509_b64(kv_str(r.json, "cer"));
    assert_int_equal(EVP_PKEY_get_bits(X509_get0_pubkey(x)), 2048);
    nbf = kv_int(r.json, "attributes.nbf");
    exp = kv_int(r.json, "attributes.exp");
    /* Six calendar months: 181 to 184 days. */
    assert_true(exp - nbf >= 181 * 86400 && exp - nbf <= 184 * 86400);
    /* Self-issued: its own subject as issuer, signed by its own key. */
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_int_equal(X509_verify(x, X509_get0_pubkey(x)), 1);
    X509_free(x);
    kvr_free(&r);
}

static void test_conflict_cancel_and_refusals(void **state)
{
    struct kvr r;
    char *csr, *leaf, *body, *ca;
    EVP_PKEY *okey;
    X509 *ocert;
    int64_t now = emu_now(kv.e);

    (void)state;
    kv_call("renewer", "POST", "/certificates/busy/create",
            "{\"policy\": {\"key_props\": {\"kty\": \"EC\", \"crv\": \"P-384\"},"
            " \"x509_props\": {\"subject\": \"CN=busy\"}, \"issuer\": {\"name\": \"Unknown\"}}}",
            &r);
    kv_expect(&r, 202);
    csr = strdup(kv_str(r.json, "csr"));
    kvr_free(&r);
    kv_call("renewer", "POST", "/certificates/busy/create", "{}", &r);
    kv_expect(&r, 409);
    assert_string_equal(kv_errcode(&r), "Conflict");
    kvr_free(&r);

    /* A chain for another key. */
    kv_make_ca("other", &okey, &ocert);
    ca = kv_b64_der(ocert);
    body = merge_body(ca, NULL);
    kv_call("renewer", "POST", "/certificates/busy/pending/merge", body, &r);
    kv_expect(&r, 400);
    assert_string_equal(kv_errcode(&r), "BadParameter");
    assert_non_null(strstr(kv_str(r.json, "error.message"), "doesn't match"));
    kvr_free(&r);
    free(body);
    free(ca);
    EVP_PKEY_free(okey);
    X509_free(ocert);

    /* Expired and not-yet-valid leaves, by the emulator clock. */
    leaf = kv_sign_csr(csr, now - 400 * 86400, now - 86400, NULL, NULL);
    body = merge_body(leaf, NULL);
    kv_call("renewer", "POST", "/certificates/busy/pending/merge", body, &r);
    kv_expect(&r, 400);
    assert_non_null(strstr(kv_str(r.json, "error.message"), "expired"));
    kvr_free(&r);
    free(body);
    free(leaf);
    leaf = kv_sign_csr(csr, now + 86400, now + 400 * 86400, NULL, NULL);
    body = merge_body(leaf, NULL);
    kv_call("renewer", "POST", "/certificates/busy/pending/merge", body, &r);
    kv_expect(&r, 400);
    assert_non_null(strstr(kv_str(r.json, "error.message"), "not yet valid"));
    kvr_free(&r);
    free(body);
    free(leaf);
    kv_call("renewer", "POST", "/certificates/busy/pending/merge",
            "{\"x5c\": [\"MIIB!!notbase64\"]}", &r);
    kv_expect(&r, 400);
    assert_non_null(strstr(kv_str(r.json, "error.message"), "base64"));
    kvr_free(&r);

    /* Nothing changed: the same operation, still in progress. */
    kv_call("renewer", "GET", "/certificates/busy/pending", NULL, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "status"), "inProgress");
    assert_string_equal(kv_str(r.json, "csr"), csr);
    kvr_free(&r);

    /* Cancel, then a second cancel is refused; a new create is allowed. */
    kv_call("renewer", "PATCH", "/certificates/busy/pending", "{\"cancellation_requested\": true}",
            &r);
    kv_expect(&r, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "cancellation_requested")));
    assert_string_equal(kv_str(r.json, "status"), "cancelled");
    kvr_free(&r);
    kv_call("renewer", "PATCH", "/certificates/busy/pending", "{\"cancellation_requested\": true}",
            &r);
    kv_expect(&r, 403);
    kvr_free(&r);
    leaf = kv_sign_csr(csr, now - 60, now + 86400, NULL, NULL);
    body = merge_body(leaf, NULL);
    kv_call("renewer", "POST", "/certificates/busy/pending/merge", body, &r);
    kv_expect(&r, 403);
    kvr_free(&r);
    free(body);
    free(leaf);
    kv_call("renewer", "POST", "/certificates/busy/create", "{}", &r);
    kv_expect(&r, 202);
    assert_string_not_equal(kv_str(r.json, "csr"), csr);
    kvr_free(&r);

    /* Deleting the operation of a never-completed certificate removes it. */
    kv_call("renewer", "DELETE", "/certificates/busy/pending", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("renewer", "GET", "/certificates/busy/pending", NULL, &r);
    kv_expect(&r, 404);
    assert_string_equal(kv_errcode(&r), "PendingCertificateNotFound");
    kvr_free(&r);
    kv_call("renewer", "GET", "/certificates/busy", NULL, &r);
    kv_expect(&r, 404);
    assert_string_equal(kv_errcode(&r), "CertificateNotFound");
    kvr_free(&r);
    free(csr);
}

/* 250 certificates (seeded in the second vault) in pages of 25. */
static void test_paging(void **state)
{
    struct kvr r;
    char body[256], url[512], *next = NULL;
    int pages = 0, total = 0;
    char prev[64] = "";

    (void)state;
    for (int i = 0; i < 250; i++) {
        snprintf(body, sizeof body, "{\"name\": \"page-%03d\"}", i);
        kv_admin("POST", "/control/keyvault/second/seed", body, &r);
        kv_expect(&r, 201);
        kvr_free(&r);
    }
    snprintf(url, sizeof url, "%s/certificates?api-version=7.5&maxresults=25",
             kvfx_vault("second"));
    kv_call_url("reader", "GET", url, NULL, &r);
    for (;;) {
        const cJSON *v, *it, *nl;
        kv_expect(&r, 200);
        v = cJSON_GetObjectItemCaseSensitive(r.json, "value");
        assert_int_equal(cJSON_GetArraySize(v), 25);
        cJSON_ArrayForEach(it, v)
        {
            const char *id = kv_str(it, "id");
            const char *n = strrchr(id, '/') + 1;
            /* Versionless ids, in name order, each once. */
            assert_true(strcmp(n, prev) > 0);
            snprintf(prev, sizeof prev, "%s", n);
            assert_non_null(kv_str(it, "x5t"));
            total++;
        }
        pages++;
        nl = cJSON_GetObjectItemCaseSensitive(r.json, "nextLink");
        free(next);
        next = cJSON_IsString(nl) ? strdup(nl->valuestring) : NULL;
        if (next == NULL)
            assert_true(cJSON_IsNull(nl));
        kvr_free(&r);
        if (next == NULL)
            break;
        assert_true(strncmp(next, kvfx_vault("second"), strlen(kvfx_vault("second"))) == 0);
        assert_non_null(strstr(next, "api-version=7.5"));
        assert_true(pages < 20);
        kv_call_url("reader", "GET", next, NULL, &r);
    }
    assert_int_equal(pages, 10);
    assert_int_equal(total, 250);
    /* The first vault does not see them. */
    kv_call("reader", "GET", "/certificates/page-001", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates?api-version=7.5&maxresults=26", NULL, &r);
    kv_expect(&r, 400);
    kvr_free(&r);
}

static void test_soft_delete(void **state)
{
    struct kvr r;
    char *ver = kv_issue("gone", NULL);
    int64_t now = emu_now(kv.e);

    (void)state;
    kv_call("renewer", "DELETE", "/certificates/gone", NULL, &r);
    kv_expect(&r, 200);
    assert_non_null(strstr(kv_str(r.json, "recoveryId"), "/deletedcertificates/gone"));
    assert_true(kv_int(r.json, "deletedDate") >= now);
    assert_int_equal(kv_int(r.json, "scheduledPurgeDate") - kv_int(r.json, "deletedDate"),
                     90 * 86400);
    assert_non_null(strstr(kv_str(r.json, "id"), ver));
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/gone/", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    kv_call("sync", "GET", "/secrets/gone/", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    assert_int_equal(kv_count("reader", "/deletedcertificates?api-version=7.5"), 1);
    kv_call("reader", "GET", "/deletedcertificates/gone", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("renewer", "POST", "/certificates/gone/create",
            "{\"policy\": {\"x509_props\": {\"subject\": \"CN=gone\"}}}", &r);
    kv_expect(&r, 409);
    assert_string_equal(kv_errcode(&r), "Conflict");
    kvr_free(&r);
    kv_call("renewer", "POST", "/deletedcertificates/gone/recover", NULL, &r);
    kv_expect(&r, 200);
    assert_non_null(strstr(kv_str(r.json, "id"), ver));
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/gone/", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("renewer", "DELETE", "/certificates/gone", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);
    kv_call("renewer", "DELETE", "/deletedcertificates/gone", NULL, &r);
    kv_expect(&r, 204);
    kvr_free(&r);
    kv_call("reader", "GET", "/deletedcertificates/gone", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    free(ver);
    ver = kv_issue("gone", NULL);
    free(ver);
}

static char *pem_of(EVP_PKEY *k, X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL, *out;
    long n;

    if (k != NULL)
        assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    n = BIO_get_mem_data(b, &data);
    /* The BIO's memory is not NUL-terminated. */
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

static void test_import(void **state)
{
    struct kvr r;
    EVP_PKEY *k;
    X509 *x;
    PKCS12 *p12;
    unsigned char *der = NULL;
    char *b64 = NULL, *pem, *body;
    cJSON *o;
    int len;

    (void)state;
    kv_make_ca("imported.example.com", &k, &x);
    /* PFX with a password. */
    p12 = PKCS12_create("s3cret", NULL, k, x, NULL, 0, 0, 0, 0, 0);
    len = i2d_PKCS12(p12, &der);
    assert_int_equal(clc_b64_encode(der, (size_t)len, &b64, NULL), CLC_OK);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "value", b64);
    cJSON_AddStringToObject(o, "pwd", "wrong");
    body = cJSON_PrintUnformatted(o);
    kv_call("renewer", "POST", "/certificates/imp1/import", body, &r);
    kv_expect(&r, 400);
    kvr_free(&r);
    free(body);
    cJSON_ReplaceItemInObject(o, "pwd", cJSON_CreateString("s3cret"));
    body = cJSON_PrintUnformatted(o);
    kv_call("renewer", "POST", "/certificates/imp1/import", body, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "policy.key_props.kty"), "EC");
    assert_string_equal(kv_str(r.json, "contentType"), "application/x-pkcs12");
    kvr_free(&r);
    free(body);
    cJSON_Delete(o);
    PKCS12_free(p12);
    OPENSSL_free(der);
    free(b64);
    kv_call("sync", "GET", "/secrets/imp1", NULL, &r);
    kv_expect(&r, 200);
    kvr_free(&r);

    /* PEM text: key (PKCS#8) and certificate; a certificate alone is refused. */
    pem = pem_of(k, x);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "value", pem);
    cJSON_AddItemToObject(o, "policy",
                          cJSON_Parse("{\"secret_props\":{\"contentType\":"
                                      "\"application/x-pem-file\"}}"));
    body = cJSON_PrintUnformatted(o);
    kv_call("renewer", "POST", "/certificates/imp2/import", body, &r);
    kv_expect(&r, 200);
    assert_string_equal(kv_str(r.json, "contentType"), "application/x-pem-file");
    kvr_free(&r);
    free(body);
    cJSON_Delete(o);
    free(pem);
    pem = pem_of(NULL, x);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "value", pem);
    body = cJSON_PrintUnformatted(o);
    kv_call("renewer", "POST", "/certificates/imp3/import", body, &r);
    kv_expect(&r, 400);
    assert_non_null(strstr(kv_str(r.json, "error.message"), "PKCS#8"));
    kvr_free(&r);
    kv_call("reader", "GET", "/certificates/imp3", NULL, &r);
    kv_expect(&r, 404);
    kvr_free(&r);
    free(body);
    cJSON_Delete(o);
    free(pem);
    EVP_PKEY_free(k);
    X509_free(x);
}

static void test_non_exportable(void **state)
{
    struct kvr r;
    char *ver = kv_issue("locked", ", \"exportable\": false");

    (void)state;
    kv_call("sync", "GET", "/secrets/locked/", NULL, &r);
    kv_expect(&r, 403);
    kvr_free(&r);
    free(ver);
}

static void test_endpoints_document(void **state)
{
    char *text = NULL;
    cJSON *doc = NULL;

    (void)state;
    assert_int_equal(emu_endpoints_json(kv.e, &text, NULL), CLC_OK);
    doc = cJSON_Parse(text);
    assert_string_equal(kv_str(doc, "services.keyvault.certlc"), kvfx_vault("certlc"));
    assert_string_equal(kv_str(doc, "services.keyvault.second"), kvfx_vault("second"));
    cJSON_Delete(doc);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoints_document),
        cmocka_unit_test(test_renewal_cycle),
        cmocka_unit_test(test_self_issued_rsa),
        cmocka_unit_test(test_conflict_cancel_and_refusals),
        cmocka_unit_test(test_paging),
        cmocka_unit_test(test_soft_delete),
        cmocka_unit_test(test_import),
        cmocka_unit_test(test_non_exportable),
    };
    return cmocka_run_group_tests(tests, kvfx_setup, kvfx_teardown);
}
