/* Key Vault emulator test fixture (see test_emu_keyvault_fixture.h): the
 * emulator, HTTPS requests with tokens, the control API and a test CA. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/secret.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "test_emu_keyvault_fixture.h"

struct kvfx kv;

static int64_t fx_now_ms(void *ctx)
{
    (void)ctx;
    return emu_now_ms(kv.e);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t n = strlen(text);
    int ok;

    if (fd < 0)
        return -1;
    ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static void drop_tokens(void)
{
    for (size_t i = 0; i < kv.ntoks; i++)
        free(kv.toks[i].token);
    kv.ntoks = 0;
}

static int start(int64_t start_time)
{
    struct clc_errinfo ei = {0};
    struct emu_opts o = {
        .data_dir = kv.data_dir[0] ? kv.data_dir : NULL,
        .config_file = kv.config,
        .quiet = 1,
        .start_time = start_time,
    };
    struct clc_http_opts ho = {0};

    if (emu_start(&o, &kv.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    cJSON_Delete(kv.ids);
    kv.ids = emu_directory_endpoints(emu_directory_of(kv.e));
    clc_http_free(kv.http);
    kv.http = NULL;
    kv.clock.now_ms = fx_now_ms;
    ho.ca_bundle = emu_ca_bundle(kv.e);
    ho.timeout_ms = 20000;
    ho.clock = &kv.clock;
    if (kv.ids == NULL || clc_http_new(&ho, &kv.http, &ei) != CLC_OK) {
        fprintf(stderr, "http: %s\n", ei.msg);
        return -1;
    }
    drop_tokens();
    return 0;
}

const char *kvfx_config_extra;

int kvfx_setup(void **state)
{
    char cfg[4096];

    (void)state;
    memset(&kv, 0, sizeof kv);
    snprintf(kv.dir, sizeof kv.dir, "/tmp/clc-kvemu-XXXXXX");
    if (mkdtemp(kv.dir) == NULL)
        return -1;
    snprintf(kv.data_dir, sizeof kv.data_dir, "%s/data", kv.dir);
    snprintf(kv.config, sizeof kv.config, "%s/config.json", kv.dir);
    snprintf(cfg, sizeof cfg,
             "{\"vaults\": [{\"name\": \"certlc\"}, {\"name\": \"second\", \"port\": 0}],"
             " \"max_body_bytes\": %d%s}",
             KVFX_MAX_BODY, kvfx_config_extra ? kvfx_config_extra : "");
    if (mkdir(kv.data_dir, 0700) != 0 || write_file(kv.config, cfg) != 0)
        return -1;
    kv_make_ca("certlc test CA", &kv.ca_key, &kv.ca_cert);
    return start(0);
}

int kvfx_restart(void)
{
    int64_t now = emu_now(kv.e);

    emu_stop(kv.e);
    kv.e = NULL;
    return start(now);
}

int kvfx_teardown(void **state)
{
    char cmd[400];

    (void)state;
    emu_stop(kv.e);
    clc_http_free(kv.http);
    cJSON_Delete(kv.ids);
    drop_tokens();
    EVP_PKEY_free(kv.ca_key);
    X509_free(kv.ca_cert);
    if (strncmp(kv.dir, "/tmp/clc-kvemu-", 15) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", kv.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", kv.dir);
    }
    memset(&kv, 0, sizeof kv);
    return 0;
}

const char *kvfx_vault(const char *name)
{
    char key[64];

    snprintf(key, sizeof key, "keyvault/%s", name);
    return emu_service_url(kv.e, key);
}

static const char *id_field(const char *name, const char *field)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(kv.ids, name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long raw(const char *method, const char *url, const char *bearer, const char *ctype,
                const char *body, size_t len, struct clc_http_resp *resp)
{
    struct clc_errinfo ei = {0};
    struct clc_secret *s = NULL;
    struct clc_http_req req = {
        .method = method,
        .url = url,
        .body = body,
        .body_len = len,
        .content_type = ctype,
    };

    if (bearer != NULL) {
        assert_int_equal(clc_secret_new(bearer, strlen(bearer), &s), CLC_OK);
        req.bearer = s;
    }
    clc_http_resp_init(resp);
    if (clc_http_do(kv.http, &req, resp, &ei) != CLC_OK) {
        clc_secret_free(s);
        fail_msg("%s %s: %s", method, url, ei.msg);
    }
    clc_secret_free(s);
    return resp->status;
}

const char *kvfx_token(const char *identity, const char *scope)
{
    int64_t now = emu_now(kv.e);
    struct clc_buf b;
    struct clc_http_resp resp;
    char url[512];
    cJSON *j = NULL;
    const cJSON *t;

    for (size_t i = 0; i < kv.ntoks; i++)
        if (strcmp(kv.toks[i].name, identity) == 0 && strcmp(kv.toks[i].scope, scope) == 0) {
            /* Tokens live an hour of emulator time. */
            if (now >= kv.toks[i].at && now - kv.toks[i].at < 3000)
                return kv.toks[i].token;
            free(kv.toks[i].token);
            kv.toks[i] = kv.toks[--kv.ntoks];
            break;
        }
    assert_true(kv.ntoks < sizeof kv.toks / sizeof kv.toks[0]);
    clc_buf_init(&b, 8192);
    clc_buf_appendf(&b, "grant_type=client_credentials&client_id=%s&client_secret=",
                    id_field(identity, "client_id"));
    clc_http_urlencode(&b, id_field(identity, "client_secret"));
    clc_buf_append_str(&b, "&scope=");
    clc_http_urlencode(&b, scope);
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", emu_service_url(kv.e, "entra"),
             emu_tenant(kv.e));
    assert_int_equal(
        raw("POST", url, NULL, "application/x-www-form-urlencoded", clc_buf_str(&b), b.len, &resp),
        200);
    clc_buf_cleanup(&b);
    assert_int_equal(clc_json_parse(clc_buf_str(&resp.body), resp.body.len, 1 << 20, &j, NULL),
                     CLC_OK);
    t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
    assert_true(cJSON_IsString(t));
    snprintf(kv.toks[kv.ntoks].name, sizeof kv.toks[0].name, "%s", identity);
    snprintf(kv.toks[kv.ntoks].scope, sizeof kv.toks[0].scope, "%s", scope);
    kv.toks[kv.ntoks].token = strdup(t->valuestring);
    kv.toks[kv.ntoks].at = now;
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    return kv.toks[kv.ntoks++].token;
}

void kvr_free(struct kvr *r)
{
    cJSON_Delete(r->json);
    r->json = NULL;
    clc_http_resp_cleanup(&r->resp);
}

void kv_call_url(const char *who, const char *method, const char *url, const char *body,
                 struct kvr *r)
{
    const char *tok = who ? kvfx_token(who, "https://vault.azure.net/.default") : NULL;

    memset(r, 0, sizeof *r);
    r->status = raw(method, url, tok, body ? "application/json" : NULL, body,
                    body ? strlen(body) : 0, &r->resp);
    if (r->resp.body.len > 0)
        clc_json_parse(clc_buf_str(&r->resp.body), r->resp.body.len, 64 << 20, &r->json, NULL);
}

void kv_call(const char *who, const char *method, const char *path, const char *body, struct kvr *r)
{
    char *url;
    size_t n = strlen(path) + 256;

    url = malloc(n);
    assert_non_null(url);
    snprintf(url, n, "%s%s%s", kvfx_vault("certlc"), path,
             strchr(path, '?') ? "" : "?api-version=" KV_API);
    kv_call_url(who, method, url, body, r);
    free(url);
}

void kv_admin(const char *method, const char *path, const char *body, struct kvr *r)
{
    char url[512];
    const char *tok = kvfx_token("admin", "api://certlc-emulator/.default");

    snprintf(url, sizeof url, "%s%s", emu_service_url(kv.e, "control"), path);
    memset(r, 0, sizeof *r);
    r->status = raw(method, url, tok, body ? "application/json" : NULL, body,
                    body ? strlen(body) : 0, &r->resp);
    if (r->resp.body.len > 0)
        clc_json_parse(clc_buf_str(&r->resp.body), r->resp.body.len, 64 << 20, &r->json, NULL);
}

const char *kv_errcode(const struct kvr *r)
{
    const char *c = kv_str(r->json, "error.code");
    return c ? c : "";
}

static const cJSON *walk(const cJSON *o, const char *path)
{
    char part[64];

    while (o != NULL && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = cJSON_GetObjectItemCaseSensitive(o, part);
        path += n + (path[n] == '.');
    }
    return o;
}

const char *kv_str(const cJSON *o, const char *path)
{
    const cJSON *v = walk(o, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t kv_int(const cJSON *o, const char *path)
{
    const cJSON *v = walk(o, path);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", path);
    return (int64_t)v->valuedouble;
}

/* ---- the test CA ---- */

static void set_serial(X509 *x)
{
    unsigned char raw16[16];
    BIGNUM *bn;

    assert_int_equal(RAND_bytes(raw16, sizeof raw16), 1);
    raw16[0] &= 0x7f;
    bn = BN_bin2bn(raw16, sizeof raw16, NULL);
    assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
    BN_free(bn);
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

void kv_make_ca(const char *cn, EVP_PKEY **key, X509 **cert)
{
    X509 *x = X509_new();
    X509_NAME *n = X509_NAME_new();
    int64_t now = clc_clock_now(NULL);

    *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    assert_non_null(*key);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    X509_set_version(x, X509_VERSION_3);
    set_serial(x);
    X509_set_subject_name(x, n);
    X509_set_issuer_name(x, n);
    /* Wide enough for every clock advance the tests make. */
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - 20 * 365 * 86400LL));
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(now + 20 * 365 * 86400LL));
    X509_set_pubkey(x, *key);
    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(x, x, NID_subject_key_identifier, "hash");
    assert_true(X509_sign(x, *key, EVP_sha256()) > 0);
    X509_NAME_free(n);
    *cert = x;
}

char *kv_b64_der(X509 *x)
{
    unsigned char *der = NULL;
    char *b64 = NULL;
    int len = i2d_X509(x, &der);

    assert_true(len > 0);
    assert_int_equal(clc_b64_encode(der, (size_t)len, &b64, NULL), CLC_OK);
    OPENSSL_free(der);
    return b64;
}

char *kv_sign_csr(const char *csr_b64, int64_t nbf, int64_t naf, EVP_PKEY *ca_key, X509 *ca_cert)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    size_t len = 0;
    X509_REQ *req;
    X509 *x = X509_new();
    STACK_OF(X509_EXTENSION) * exts;
    EVP_PKEY *pub;
    char *out;

    if (ca_key == NULL) {
        ca_key = kv.ca_key;
        ca_cert = kv.ca_cert;
    }
    assert_int_equal(clc_b64_decode(csr_b64, strlen(csr_b64), &der, &len), CLC_OK);
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    pub = X509_REQ_get_pubkey(req);
    assert_non_null(pub);
    /* The vault signed its CSR with the key it keeps. */
    assert_int_equal(X509_REQ_verify(req, pub), 1);
    X509_set_version(x, X509_VERSION_3);
    set_serial(x);
    X509_set_subject_name(x, X509_REQ_get_subject_name(req));
    X509_set_issuer_name(x, X509_get_subject_name(ca_cert));
    ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nbf);
    ASN1_TIME_set(X509_getm_notAfter(x), (time_t)naf);
    X509_set_pubkey(x, pub);
    exts = X509_REQ_get_extensions(req);
    for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++)
        X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    add_ext(x, ca_cert, NID_authority_key_identifier, "keyid:always");
    assert_true(X509_sign(x, ca_key, EVP_sha256()) > 0);
    out = kv_b64_der(x);
    EVP_PKEY_free(pub);
    X509_REQ_free(req);
    X509_free(x);
    free(der);
    return out;
}

char *kv_issue(const char *name, const char *extra_policy_json)
{
    char path[256], body[2048];
    char *leaf, *ca, *ver;
    struct kvr r;
    int64_t now = emu_now(kv.e);

    snprintf(path, sizeof path, "/certificates/%s/create", name);
    snprintf(body, sizeof body,
             "{\"policy\": {\"key_props\": {\"kty\": \"EC\", \"crv\": \"P-256\"%s},"
             " \"x509_props\": {\"subject\": \"CN=%s.example.com\","
             " \"sans\": {\"dns_names\": [\"%s.example.com\"]}},"
             " \"issuer\": {\"name\": \"Unknown\"}}}",
             extra_policy_json ? extra_policy_json : "", name, name);
    kv_call("renewer", "POST", path, body, &r);
    kv_expect(&r, 202);
    leaf = kv_sign_csr(kv_str(r.json, "csr"), now - 60, now + 365 * 86400LL, NULL, NULL);
    kvr_free(&r);
    ca = kv_b64_der(kv.ca_cert);
    snprintf(path, sizeof path, "/certificates/%s/pending/merge", name);
    {
        size_t n = strlen(leaf) + strlen(ca) + 64;
        char *mb = malloc(n);
        assert_non_null(mb);
        snprintf(mb, n, "{\"x5c\": [\"%s\", \"%s\"]}", leaf, ca);
        kv_call("renewer", "POST", path, mb, &r);
        free(mb);
    }
    kv_expect(&r, 201);
    {
        const char *id = kv_str(r.json, "id");
        assert_non_null(id);
        ver = strdup(strrchr(id, '/') + 1);
    }
    kvr_free(&r);
    free(leaf);
    free(ca);
    return ver;
}

int kv_count(const char *who, const char *query)
{
    struct kvr r;
    char *next = NULL;
    int n = 0, pages = 0;

    kv_call(who, "GET", query, NULL, &r);
    for (;;) {
        const cJSON *v, *nl;
        kv_expect(&r, 200);
        v = cJSON_GetObjectItemCaseSensitive(r.json, "value");
        assert_true(cJSON_IsArray(v));
        n += cJSON_GetArraySize(v);
        nl = cJSON_GetObjectItemCaseSensitive(r.json, "nextLink");
        free(next);
        next = cJSON_IsString(nl) ? strdup(nl->valuestring) : NULL;
        kvr_free(&r);
        if (next == NULL)
            break;
        assert_true(++pages < 1000);
        kv_call_url(who, "GET", next, NULL, &r);
    }
    return n;
}
