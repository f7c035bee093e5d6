/* Test support for the Key Vault client tests (see kv_client_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/secret.h"
#include "crypto/csr.h"
#include "crypto/x509.h"
#include "kv_client_fixture.h"
#include "support/emu_admin.h"

struct kvf K;

static void record_sleep(int64_t ms, void *ctx)
{
    struct kvf_sleeps *s = ctx;
    s->n++;
    s->total_ms += ms;
    s->last_ms = ms;
}

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(K.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

const char *kvf_vault_url(void)
{
    return ep("services", "keyvault", KVF_VAULT);
}

static struct clc_auth *make_auth(const char *identity)
{
    struct clc_secret *sec = NULL;
    struct clc_auth *a = NULL;
    struct clc_errinfo ei = {0};
    const char *s = ep("identities", identity, "client_secret");
    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return NULL;
    struct clc_auth_opts o = {
        .method = CLC_AUTH_CLIENT_SECRET,
        .authority_host = ep("services", "entra", NULL),
        .tenant_id = ep("tenant", NULL, NULL),
        .client_id = ep("identities", identity, "client_id"),
        .client_secret = sec,
    };
    if (clc_auth_new(&o, &K.http, &a, &ei) != CLC_OK)
        fprintf(stderr, "auth %s: %s\n", identity, ei.msg);
    clc_secret_free(sec);
    return a;
}

struct clc_auth *kvf_auth(const char *identity)
{
    if (strcmp(identity, "renewer") == 0)
        return K.auth_renewer;
    if (strcmp(identity, "sync") == 0)
        return K.auth_sync;
    if (strcmp(identity, "reader") == 0)
        return K.auth_reader;
    return K.auth_admin;
}

struct clc_kv *kvf_client(struct clc_auth *auth, int verify_resource, int max_pages)
{
    struct clc_kv *kv = NULL;
    struct clc_errinfo ei = {0};
    struct clc_kv_opts o = {
        .vault_url = kvf_vault_url(),
        .vault_name = KVF_VAULT,
        /* The emulator listens on 127.0.0.1 and answers resource
         * https://vault.azure.net, like the SDKs' disable option. */
        .disable_challenge_resource_verification = !verify_resource,
        .max_pages = max_pages,
        .retry = &K.retry,
    };
    if (clc_kv_new(&o, &K.http, auth, &kv, &ei) != CLC_OK)
        fprintf(stderr, "kv client: %s\n", ei.msg);
    return kv;
}

int kvf_setup(void **state)
{
    (void)state;
    struct emu_opts o = {.quiet = 1};
    struct clc_errinfo ei = {0};
    char *text = NULL;

    memset(&K, 0, sizeof K);
    if (emu_start(&o, &K.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(K.e, &text, &ei) != CLC_OK)
        return -1;
    K.endpoints = cJSON_Parse(text);
    free(text);
    if (!K.endpoints || !kvf_vault_url()) {
        fprintf(stderr, "no vault '%s' in the endpoints\n", KVF_VAULT);
        return -1;
    }
    K.http.ca_bundle = emu_ca_bundle(K.e);
    K.http.timeout_ms = 20000;
    clc_retry_policy_default(&K.retry);
    K.retry.sleep_ms = record_sleep;
    K.retry.ctx = &K.sleeps;
    K.auth_renewer = make_auth("renewer");
    K.auth_sync = make_auth("sync");
    K.auth_reader = make_auth("reader");
    K.auth_admin = make_auth("admin");
    if (!K.auth_renewer || !K.auth_sync || !K.auth_reader || !K.auth_admin)
        return -1;
    K.renewer = kvf_client(K.auth_renewer, 0, 0);
    K.sync = kvf_client(K.auth_sync, 0, 0);
    K.reader = kvf_client(K.auth_reader, 0, 0);
    struct clc_http_opts ho = K.http;
    if (!K.renewer || !K.sync || !K.reader || clc_http_new(&ho, &K.admin_http, &ei) != CLC_OK)
        return -1;
    int64_t now = emu_now_ms(K.e) / 1000;
    struct clc_x509_spec cs = {.subject_cn = "certlc test issuing CA",
                               .not_before = now - 86400,
                               .not_after = now + 86400 * 3650,
                               .is_ca = 1};
    if (clc_signer_generate("EC", 256, &K.ca_key, &ei) != CLC_OK ||
        clc_x509_make(&cs, K.ca_key, NULL, K.ca_key, &K.ca, &ei) != CLC_OK) {
        fprintf(stderr, "test CA: %s\n", ei.msg);
        return -1;
    }
    return 0;
}

int kvf_teardown(void **state)
{
    (void)state;
    clc_kv_free(K.renewer);
    clc_kv_free(K.sync);
    clc_kv_free(K.reader);
    clc_auth_free(K.auth_renewer);
    clc_auth_free(K.auth_sync);
    clc_auth_free(K.auth_reader);
    clc_auth_free(K.auth_admin);
    clc_http_free(K.admin_http);
    clc_signer_free(K.ca_key);
    X509_free(K.ca);
    cJSON_Delete(K.endpoints);
    test_emu_admin_forget(K.e);
    emu_stop(K.e);
    memset(&K, 0, sizeof K);
    return 0;
}

static void add(struct clc_cert_strs *l, const char *s)
{
    assert_int_equal(clc_cert_strs_add(l, s, 100), CLC_OK);
}

void kvf_policy(struct clc_kv_policy *p, const char *cn, const char *issuer, const char *kty,
                int pem)
{
    char buf[300];
    clc_kv_policy_init(p);
    snprintf(p->kty, sizeof p->kty, "%s", kty);
    if (strcmp(kty, "RSA") == 0)
        p->key_size = 2048;
    else
        snprintf(p->crv, sizeof p->crv, "P-256");
    p->exportable = 1;
    p->reuse_key = 0;
    p->content_type = strdup(pem ? "application/x-pem-file" : "application/x-pkcs12");
    snprintf(buf, sizeof buf, "CN=%s, O=Contoso", cn);
    p->subject = strdup(buf);
    add(&p->dns_names, cn);
    snprintf(buf, sizeof buf, "www.%s", cn);
    add(&p->dns_names, buf);
    add(&p->ekus, "1.3.6.1.5.5.7.3.1");
    add(&p->key_usage, "digitalSignature");
    add(&p->key_usage, strcmp(kty, "RSA") == 0 ? "keyEncipherment" : "keyAgreement");
    p->validity_months = 12;
    p->nactions = 1;
    p->actions = calloc(1, sizeof *p->actions);
    p->actions[0].lifetime_percentage = 80;
    snprintf(p->actions[0].action_type, sizeof p->actions[0].action_type, "EmailContacts");
    p->issuer_name = strdup(issuer);
    assert_non_null(p->content_type);
    assert_non_null(p->subject);
    assert_non_null(p->issuer_name);
}

STACK_OF(X509) * kvf_sign_csr(const unsigned char *csr, size_t len, struct clc_signer *other_key,
                              int64_t nb_offset, int64_t days)
{
    X509_REQ *req = NULL;
    struct clc_errinfo ei = {0};
    struct clc_csr_info ci;
    struct clc_signer *subject = other_key;
    X509 *leaf = NULL;
    const char *sans[8] = {0};
    char buf[8][300];
    int64_t now = emu_now_ms(K.e) / 1000;

    assert_int_equal(clc_csr_from_der(csr, len, &req, &ei), CLC_OK);
    assert_int_equal(clc_csr_info_get(req, &ci, &ei), CLC_OK);
    for (size_t i = 0; i < ci.sans.dns.n && i < 7; i++) {
        snprintf(buf[i], sizeof buf[i], "DNS:%s", ci.sans.dns.v[i]);
        sans[i] = buf[i];
    }
    if (!subject) {
        /* The CA only ever sees the public half. */
        assert_int_equal(clc_signer_from_pkey(X509_REQ_get_pubkey(req), &subject, &ei), CLC_OK);
    }
    struct clc_x509_spec spec = {.subject_cn = ci.sans.dns.n ? ci.sans.dns.v[0] : "leaf",
                                 .sans = sans,
                                 .not_before = now + nb_offset - 60,
                                 .not_after = now + days * 86400,
                                 .server_auth = 1};
    if (clc_x509_make(&spec, subject, K.ca, K.ca_key, &leaf, &ei) != CLC_OK)
        fail_msg("signing: %s", ei.msg);
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_up_ref(K.ca);
    sk_X509_push(chain, leaf);
    sk_X509_push(chain, K.ca);
    if (subject != other_key)
        clc_signer_free(subject);
    clc_csr_info_cleanup(&ci);
    X509_REQ_free(req);
    return chain;
}

long kvf_control(const char *method, const char *path, const char *body)
{
    return test_emu_admin_call(K.e, K.admin_http, method, path, body, NULL);
}

void kvf_fault(const char *method, const char *path, int count, int status, int retry_after)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"service\":\"*\",\"method\":\"%s\",\"path\":\"%s\",\"count\":%d,\"status\":%d%s",
             method, path, count, status, retry_after ? ",\"retry_after\":" : "}");
    if (retry_after)
        snprintf(body + strlen(body), sizeof body - strlen(body), "%d}", retry_after);
    long st = kvf_control("POST", "/control/faults", body);
    assert_true(st >= 200 && st < 300);
}

const char *kvf_name(const char *prefix)
{
    static char names[8][64];
    static int n;
    char *out = names[n % 8];
    snprintf(out, 64, "%s-%d", prefix, ++n);
    return out;
}
