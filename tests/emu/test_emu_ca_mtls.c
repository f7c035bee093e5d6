/* The emulated CA with TLS client certificates: a certificate the CA issued
 * stands for the account that requested it (EST and /certsrv), one of a
 * configured client-auth CA for the configured account or its CN's, EST
 * simplereenroll renews exactly the certificate that authenticated it;
 * refused: none and no Basic, an unknown CA, a serverAuth-only or revoked
 * certificate, one expired by the emulator clock, bad client_auth config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca-helpers/ca_test_pki.h"
#include "crypto/x509.h"
#include "emulator/state.h"
#include "test_emu_ca_fixture.h"

#define BODY_MAX 16384

/* A certificate and key as PEM files, for libcurl. */
struct ident {
    char crt[400], key[400];
    X509 *cert;
};

static struct pki ext, stranger;
static struct clc_signer *ext_key, *stranger_key;
static EVP_PKEY *k_client, *k_limited, *k_other, *k_server, *k_short;
static struct ident id_client, id_limited, id_server, id_short, id_ext, id_ext_cn, id_ext_none,
    id_stranger;

struct mresp {
    long status;
    CURLcode cc;
    char body[BODY_MAX];
    size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct mresp *r = ud;
    size_t len = size * n;

    if (r->len + len >= sizeof r->body)
        return 0;
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

/* One request to the CA with a client certificate (id NULL = none) and
 * Basic credentials of account (NULL = none), on a fresh connection. */
static long mreq(const char *method, const char *path, const struct ident *id, const char *account,
                 const char *body, struct mresp *r)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[1024], user[256];

    memset(r, 0, sizeof *r);
    assert_non_null(c);
    snprintf(url, sizeof url, "%s%s", cafx_url(), path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CAINFO, emu_ca_bundle(cafx.e));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (id != NULL) {
        curl_easy_setopt(c, CURLOPT_SSLCERT, id->crt);
        curl_easy_setopt(c, CURLOPT_SSLKEY, id->key);
    }
    if (account != NULL) {
        snprintf(user, sizeof user, "%s:%s", account, cafx_password(account));
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERPWD, user);
    }
    if (strcmp(method, "POST") == 0) {
        h = curl_slist_append(NULL, "Content-Type: application/pkcs10");
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    r->cc = curl_easy_perform(c);
    if (r->cc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r->status;
}

/* EST enrollment of a CSR for k/cn/sans at label (NULL = none). */
static long est(const char *op, const char *label, const struct ident *id, const char *account,
                EVP_PKEY *k, const char *cn, const char *const *sans, struct mresp *r)
{
    char path[256];
    char *b64 = cafx_csr_b64(k, cn, sans);
    long st;

    assert_non_null(b64);
    if (label != NULL)
        snprintf(path, sizeof path, "/.well-known/est/%s/%s", label, op);
    else
        snprintf(path, sizeof path, "/.well-known/est/%s", op);
    st = mreq("POST", path, id, account, b64, r);
    free(b64);
    return st;
}

static X509 *issued(const struct mresp *r)
{
    STACK_OF(X509) *sk = cafx_p7_certs(r->body, r->len);
    X509 *c;

    assert_non_null(sk);
    c = X509_dup(sk_X509_value(sk, 0));
    sk_X509_pop_free(sk, X509_free);
    assert_non_null(c);
    return c;
}

static void save_ident(struct ident *id, const char *name, X509 *cert, EVP_PKEY *k)
{
    FILE *f;

    snprintf(id->crt, sizeof id->crt, "%s/%s.crt", cafx.dir, name);
    snprintf(id->key, sizeof id->key, "%s/%s.key", cafx.dir, name);
    f = fopen(id->crt, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, cert), 1);
    fclose(f);
    f = fopen(id->key, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    id->cert = cert;
}

/* Enrolls over Basic as account and keeps the certificate as an identity. */
static void enroll_ident(struct ident *id, const char *name, const char *account, const char *label,
                         EVP_PKEY *k, const char *cn)
{
    const char *sans[] = {"DNS:client.example.test", NULL};
    struct mresp r;

    assert_int_equal(est("simpleenroll", label, NULL, account, k, cn, sans, &r), 200);
    save_ident(id, name, issued(&r), k);
}

/* A clientAuth leaf of a test PKI, for key (a signer) as identity files. */
static void pki_ident(struct ident *id, const char *name, struct pki *p, struct clc_signer *key,
                      const char *cn)
{
    struct clc_x509_spec s = {.subject_cn = cn,
                              .not_before = (int64_t)time(NULL) - 3600,
                              .not_after = (int64_t)time(NULL) + 86400,
                              .client_auth = 1};
    X509 *x = NULL;

    assert_int_equal(clc_x509_make(&s, key, p->inter, p->inter_key, &x, NULL), CLC_OK);
    save_ident(id, name, x, clc_signer_pkey(key));
}

static void write_config(const char *account_member)
{
    char path[400], cfg[2048];
    X509 *certs[2] = {ext.inter, ext.root};
    char *pem = pki_pem(certs, 2);
    FILE *f;

    snprintf(path, sizeof path, "%s/ext-ca.pem", cafx.dir);
    assert_int_equal(pki_write(path, pem, strlen(pem), 0644), 0);
    free(pem);
    snprintf(cfg, sizeof cfg,
             "{\"ca\":{\"templates\":["
             "{\"name\":\"ClientServer\",\"ekus\":[\"serverAuth\",\"clientAuth\"]},"
             "{\"name\":\"ServerOnly\"},"
             "{\"name\":\"Short\",\"validity_seconds\":3600,\"ekus\":[\"clientAuth\"]},"
             "{\"name\":\"Approval\",\"approval\":true,\"ekus\":[\"clientAuth\"]}],"
             "\"accounts\":[{\"name\":\"renewer\"},"
             "{\"name\":\"limited\",\"templates\":[\"ClientServer\",\"ServerOnly\"]},"
             "{\"name\":\"partner\",\"templates\":[\"ClientServer\"]}],"
             "\"client_auth\":{\"ca_file\":\"%s\"%s}}}",
             path, account_member);
    f = fopen(cafx.config, "w");
    assert_non_null(f);
    fputs(cfg, f);
    fclose(f);
}

static int setup(void **state)
{
    int64_t now = (int64_t)time(NULL);

    (void)state;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (pki_make(&ext, now) != 0 || pki_make(&stranger, now) != 0 ||
        clc_signer_generate("EC", 256, &ext_key, NULL) != CLC_OK ||
        clc_signer_generate("EC", 256, &stranger_key, NULL) != CLC_OK)
        return -1;
    k_client = cafx_ec();
    k_limited = cafx_ec();
    k_other = cafx_ec();
    k_server = cafx_ec();
    k_short = cafx_ec();
    if (cafx_setup(NULL) != 0)
        return -1;
    /* The config names files in the fixture's dir: write it, then restart. */
    write_config(",\"account\":\"partner\"");
    return cafx_restart();
}

static void free_ident(struct ident *id)
{
    X509_free(id->cert);
    id->cert = NULL;
}

static int teardown(void **state)
{
    (void)state;
    cafx_teardown();
    free_ident(&id_client);
    free_ident(&id_limited);
    free_ident(&id_server);
    free_ident(&id_short);
    free_ident(&id_ext);
    free_ident(&id_ext_cn);
    free_ident(&id_ext_none);
    free_ident(&id_stranger);
    EVP_PKEY_free(k_client);
    EVP_PKEY_free(k_limited);
    EVP_PKEY_free(k_other);
    EVP_PKEY_free(k_server);
    EVP_PKEY_free(k_short);
    clc_signer_free(ext_key);
    clc_signer_free(stranger_key);
    pki_free(&ext);
    pki_free(&stranger);
    curl_global_cleanup();
    return 0;
}

/* The requester the CA recorded for request id. */
static void assert_requester(int64_t id, const char *want)
{
    struct clc_http_resp resp;
    char path[64];
    cJSON *j;

    snprintf(path, sizeof path, "/control/ca/requests/%lld", (long long)id);
    assert_int_equal(cafx_admin("GET", path, NULL, &resp), 200);
    j = cafx_json(&resp);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "requester")),
                        want);
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
}

static int64_t last_request_id(void)
{
    struct clc_http_resp resp;
    const cJSON *arr, *last;
    cJSON *j;
    int64_t id;

    assert_int_equal(cafx_admin("GET", "/control/ca/requests", NULL, &resp), 200);
    j = cafx_json(&resp);
    arr = cJSON_GetObjectItemCaseSensitive(j, "requests");
    last = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
    id = (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(last, "id"));
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    return id;
}

static void test_own_cert_is_its_requester(void **state)
{
    const char *sans[] = {"DNS:svc.example.test", NULL};
    struct mresp r;
    X509 *c;

    (void)state;
    enroll_ident(&id_client, "client", "renewer", "ClientServer", k_client, "client.example.test");
    enroll_ident(&id_limited, "limited", "limited", "ClientServer", k_limited, "lim.example.test");
    /* No Basic credentials: the certificate alone authenticates. */
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_client, NULL, k_other, "svc.example.test", sans, &r),
        200);
    c = issued(&r);
    assert_true(cafx_same_key(c, k_other));
    X509_free(c);
    assert_requester(last_request_id(), "renewer");
    /* The enroll right is the mapped account's: renewer may, limited may not. */
    assert_int_equal(
        est("simpleenroll", "Approval", &id_client, NULL, k_other, "svc.example.test", sans, &r),
        202);
    assert_int_equal(
        est("simpleenroll", "Approval", &id_limited, NULL, k_other, "svc.example.test", sans, &r),
        403);
    assert_requester(last_request_id(), "limited");
}

static void test_certsrv_with_cert(void **state)
{
    struct mresp r;

    (void)state;
    assert_int_equal(mreq("GET", "/certsrv/", &id_client, NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "Welcome"));
    assert_int_equal(mreq("GET", "/certsrv/", NULL, NULL, NULL, &r), 401);
}

static void test_refused(void **state)
{
    const char *sans[] = {"DNS:x.example.test", NULL};
    struct mresp r;

    (void)state;
    /* Neither a certificate nor Basic credentials. */
    assert_int_equal(est("simpleenroll", NULL, NULL, NULL, k_other, "x.example.test", sans, &r),
                     401);
    assert_non_null(strstr(r.body, "Basic credentials"));
    /* A certificate of a CA the listener does not trust: no handshake. */
    pki_ident(&id_stranger, "stranger", &stranger, stranger_key, "renewer");
    assert_int_equal(
        est("simpleenroll", NULL, &id_stranger, NULL, k_other, "x.example.test", sans, &r), 0);
    assert_int_not_equal(r.cc, CURLE_OK);
    /* A certificate of this CA without clientAuth: OpenSSL's TLS server
     * refuses it as a client certificate. */
    enroll_ident(&id_server, "server", "renewer", "ServerOnly", k_server, "srv.example.test");
    assert_int_equal(
        est("simpleenroll", NULL, &id_server, NULL, k_other, "x.example.test", sans, &r), 0);
    assert_int_not_equal(r.cc, CURLE_OK);
}

static void test_revoked_cert(void **state)
{
    const char *sans[] = {"DNS:x.example.test", NULL};
    struct clc_http_resp resp;
    struct ident id_rev = {0};
    EVP_PKEY *k = cafx_ec();
    char path[80];
    struct mresp r;
    int64_t id;

    (void)state;
    enroll_ident(&id_rev, "revoked", "renewer", "ClientServer", k, "rev.example.test");
    id = last_request_id();
    snprintf(path, sizeof path, "/control/ca/requests/%lld/revoke", (long long)id);
    assert_int_equal(cafx_admin("POST", path, "{\"reason\":\"keyCompromise\"}", &resp), 200);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(est("simpleenroll", NULL, &id_rev, NULL, k_other, "x.example.test", sans, &r),
                     401);
    assert_non_null(strstr(r.body, "revoked"));
    /* Valid Basic credentials still decide when the certificate does not. */
    assert_int_equal(
        est("simpleenroll", NULL, &id_rev, "limited", k_other, "x.example.test", sans, &r), 200);
    assert_requester(last_request_id(), "limited");
    free_ident(&id_rev);
    EVP_PKEY_free(k);
}

static void test_configured_ca_account(void **state)
{
    const char *sans[] = {"DNS:p.example.test", NULL};
    struct mresp r;

    (void)state;
    pki_ident(&id_ext, "ext", &ext, ext_key, "whatever");
    assert_int_equal(
        est("simpleenroll", "ClientServer", &id_ext, NULL, k_other, "p.example.test", sans, &r),
        200);
    assert_requester(last_request_id(), "partner");
    /* partner has no right on ServerOnly. */
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_ext, NULL, k_other, "p.example.test", sans, &r), 403);
    /* Nothing of partner's to renew: an outside certificate renews nothing. */
    assert_int_equal(est("simplereenroll", NULL, &id_ext, NULL, k_other, "whatever", NULL, &r),
                     400);
    assert_non_null(strstr(r.body, "No certificate of this requester"));
}

static void test_reenroll_by_cert(void **state)
{
    const char *sans[] = {"DNS:client.example.test", NULL};
    const char *other[] = {"DNS:svc.example.test", NULL};
    EVP_PKEY *k = cafx_ec();
    ASN1_OBJECT *tmpl = OBJ_txt2obj("1.3.6.1.4.1.311.21.7", 1);
    ASN1_OCTET_STRING *t_old, *t_new;
    int loc;
    struct mresp r;
    X509 *c;

    (void)state;
    /* Same subject and SANs as the authenticating certificate, new key. */
    assert_int_equal(
        est("simplereenroll", NULL, &id_client, NULL, k, "client.example.test", sans, &r), 200);
    c = issued(&r);
    assert_true(cafx_same_key(c, k));
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(c), X509_get_subject_name(id_client.cert)),
                     0);
    /* The template is the renewed certificate's (ClientServer). */
    loc = X509_get_ext_by_OBJ(c, tmpl, -1);
    assert_true(loc >= 0);
    t_new = X509_EXTENSION_get_data(X509_get_ext(c, loc));
    loc = X509_get_ext_by_OBJ(id_client.cert, tmpl, -1);
    t_old = X509_EXTENSION_get_data(X509_get_ext(id_client.cert, loc));
    assert_int_equal(ASN1_OCTET_STRING_cmp(t_old, t_new), 0);
    assert_requester(last_request_id(), "renewer");
    X509_free(c);
    /* renewer holds svc.example.test (issued above), but the certificate that
     * authenticates is client.example.test's: RFC 7030 4.2.2 refuses. */
    assert_int_equal(
        est("simplereenroll", NULL, &id_client, NULL, k, "svc.example.test", other, &r), 400);
    assert_non_null(strstr(r.body, "the certificate that authenticated"));
    /* With Basic alone, any certificate of renewer's with those names will do. */
    assert_int_equal(est("simplereenroll", NULL, NULL, "renewer", k, "svc.example.test", other, &r),
                     200);
    ASN1_OBJECT_free(tmpl);
    EVP_PKEY_free(k);
}

static void test_cn_names_account(void **state)
{
    const char *sans[] = {"DNS:n.example.test", NULL};
    struct mresp r;

    (void)state;
    write_config("");
    assert_int_equal(cafx_restart(), 0);
    pki_ident(&id_ext_cn, "ext-cn", &ext, ext_key, "limited");
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_ext_cn, NULL, k_other, "n.example.test", sans, &r),
        200);
    assert_requester(last_request_id(), "limited");
    pki_ident(&id_ext_none, "ext-none", &ext, ext_key, "nobody");
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_ext_none, NULL, k_other, "n.example.test", sans, &r),
        401);
    assert_non_null(strstr(r.body, "no account is named by the certificate's CN 'nobody'"));
    /* Certificates issued before the restart still stand for their requester. */
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_client, NULL, k_other, "n.example.test", sans, &r),
        200);
    assert_requester(last_request_id(), "renewer");
}

/* Last: moves the emulator clock past a certificate's end. */
static void test_expired_by_emulator_clock(void **state)
{
    const char *sans[] = {"DNS:e.example.test", NULL};
    struct mresp r;

    (void)state;
    enroll_ident(&id_short, "short", "renewer", "Short", k_short, "short.example.test");
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_short, NULL, k_other, "e.example.test", sans, &r),
        200);
    emu_clock_advance(cafx.e, 7200);
    assert_int_equal(
        est("simpleenroll", "ServerOnly", &id_short, NULL, k_other, "e.example.test", sans, &r),
        401);
    assert_non_null(strstr(r.body, "expired"));
}

static void bad_config(const char *client_auth, const char *want)
{
    char dir[] = "/tmp/clc-emu-ca-mtls-XXXXXX", path[300], cmd[400], text[1024];
    struct clc_errinfo ei = {0};
    struct emu_opts o = {.quiet = 1};
    struct emu *e = NULL;
    FILE *f;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(text, sizeof text, "{\"ca\":{\"client_auth\":%s}}", client_auth);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    o.config_file = path;
    assert_int_not_equal(emu_start(&o, &e, &ei), CLC_OK);
    assert_null(e);
    if (strstr(ei.msg, want) == NULL)
        fail_msg("'%s' does not say '%s'", ei.msg, want);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_bad_config(void **state)
{
    (void)state;
    bad_config("{\"account\":\"renewer\"}", "needs ca.client_auth.ca_file");
    bad_config("{\"ca_file\":\"/nonexistent/ca.pem\"}", "ca.client_auth.ca_file");
    bad_config("{\"ca_file\":\"/etc/hostname\",\"account\":\"nobody\"}", "not an account");
    bad_config("{\"cafile\":\"x\"}", "unknown key 'cafile'");
    bad_config("[]", "must be an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_own_cert_is_its_requester),
        cmocka_unit_test(test_certsrv_with_cert),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_revoked_cert),
        cmocka_unit_test(test_configured_ca_account),
        cmocka_unit_test(test_reenroll_by_cert),
        cmocka_unit_test(test_cn_names_account),
        cmocka_unit_test(test_expired_by_emulator_clock),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
