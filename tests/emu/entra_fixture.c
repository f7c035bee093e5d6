/* Test support for the Entra ID tests: emulator with known identities,
 * trusted HTTPS client, request and JWT helpers (see entra_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include "core/b64.h"
#include "core/buf.h"
#include "core/json.h"
#include "core/rand.h"
#include "crypto/jwt.h"
#include "crypto/x509.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "entra_fixture.h"

static int64_t fx_now_ms(void *ctx)
{
    struct fx *f = ctx;
    return emu_now_ms(f->e);
}

int fx_write(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    size_t n = strlen(text);
    int ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static int make_cert(struct clc_signer *key, const char *cn, const char *path, char *x5t_out)
{
    X509 *cert = NULL;
    char *x5t = NULL;
    int64_t now = clc_clock_now(NULL);
    struct clc_x509_spec spec = {
        .subject_cn = cn,
        .not_before = now - 86400,
        .not_after = now + 86400 * 30,
        .client_auth = 1,
    };
    int rc = -1;
    if (clc_x509_make(&spec, key, NULL, key, &cert, NULL) ||
        clc_x509_save_pem(&cert, 1, path, 0644, NULL) || clc_x509_x5t(cert, &x5t) ||
        strlen(x5t) >= 64)
        goto out;
    memcpy(x5t_out, x5t, strlen(x5t) + 1);
    rc = 0;
out:
    X509_free(cert);
    free(x5t);
    return rc;
}

static int fx_start(struct fx *f, int64_t start_time)
{
    struct clc_errinfo ei = {0};
    struct emu_opts o = {
        .data_dir = f->data_dir,
        .config_file = f->config,
        .quiet = 1,
        .start_time = start_time,
    };
    if (emu_start(&o, &f->e, &ei)) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    cJSON_Delete(f->ids);
    f->ids = emu_directory_endpoints(emu_directory_of(f->e));
    clc_http_free(f->http);
    f->http = NULL;
    f->clock.now_ms = fx_now_ms;
    f->clock.ctx = f;
    struct clc_http_opts ho = {
        .ca_bundle = emu_ca_bundle(f->e), .timeout_ms = 10000, .clock = &f->clock};
    if (!f->ids || clc_http_new(&ho, &f->http, &ei)) {
        fprintf(stderr, "http: %s\n", ei.msg);
        return -1;
    }
    return 0;
}

int fx_setup(struct fx *f)
{
    char cfg[4096];
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/clc-entra-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->data_dir, sizeof f->data_dir, "%s/data", f->dir);
    snprintf(f->config, sizeof f->config, "%s/config.json", f->dir);
    snprintf(f->cert_file, sizeof f->cert_file, "%s/certapp.crt", f->dir);
    snprintf(f->key_file, sizeof f->key_file, "%s/certapp.key", f->dir);
    snprintf(f->other_cert_file, sizeof f->other_cert_file, "%s/other.crt", f->dir);
    snprintf(f->other_key_file, sizeof f->other_key_file, "%s/other.key", f->dir);
    if (mkdir(f->data_dir, 0700) != 0)
        return -1;
    if (clc_signer_generate("RSA", 2048, &f->cert_key, NULL) ||
        clc_signer_generate("RSA", 2048, &f->other_key, NULL) ||
        clc_signer_save_pem(f->cert_key, f->key_file, NULL) ||
        clc_signer_save_pem(f->other_key, f->other_key_file, NULL) ||
        make_cert(f->cert_key, "certapp", f->cert_file, f->x5t) ||
        make_cert(f->other_key, "other", f->other_cert_file, f->other_x5t))
        return -1;
    snprintf(
        cfg, sizeof cfg,
        "{\"managed_identity\": \"renewer\", \"identities\": ["
        "{\"name\": \"renewer\", \"client_secret\": \"" FX_RENEWER_SECRET "\","
        " \"federated_subject\": \"system:serviceaccount:certlc:renewer\","
        " \"roles\": [\"Key Vault Certificates Officer\", \"Storage Queue Data Contributor\"]},"
        "{\"name\": \"sync\", \"roles\": [\"Key Vault Secrets User\"],"
        " \"federated_subject\": \"system:serviceaccount:certlc:sync\"},"
        "{\"name\": \"certapp\", \"roles\": [\"Key Vault Reader\"],"
        " \"certificate_file\": \"%s\"},"
        "{\"name\": \"regapp\", \"roles\": [\"Key Vault Reader\"]},"
        "{\"name\": \"admin\", \"client_secret\": \"" FX_ADMIN_SECRET "\","
        " \"roles\": [\"admin\"]}]}",
        f->cert_file);
    if (fx_write(f->config, cfg))
        return -1;
    return fx_start(f, 0);
}

int fx_restart(struct fx *f)
{
    int64_t now = emu_now(f->e);
    emu_stop(f->e);
    f->e = NULL;
    return fx_start(f, now);
}

static void rm_tree(const char *dir)
{
    char cmd[600];
    /* Only our own mkdtemp directory. */
    if (strncmp(dir, "/tmp/clc-entra-", 15) != 0)
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", dir);
}

void fx_teardown(struct fx *f)
{
    emu_stop(f->e);
    clc_http_free(f->http);
    clc_signer_free(f->cert_key);
    clc_signer_free(f->other_key);
    cJSON_Delete(f->ids);
    if (f->dir[0])
        rm_tree(f->dir);
    memset(f, 0, sizeof *f);
}

const char *fx_url(struct fx *f, const char *service)
{
    return emu_service_url(f->e, service);
}

const char *fx_tenant(struct fx *f)
{
    return emu_directory_tenant(emu_directory_of(f->e));
}

const char *fx_id(struct fx *f, const char *name, const char *field)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(f->ids, name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

long fx_http(struct fx *f, const char *method, const char *url, const char *const *headers,
             const char *content_type, const char *body, size_t len, struct clc_http_resp *resp)
{
    struct clc_errinfo ei = {0};
    struct clc_http_req req = {
        .method = method,
        .url = url,
        .headers = headers,
        .body = body,
        .body_len = len,
        .content_type = content_type,
    };
    clc_http_resp_init(resp);
    if (clc_http_do(f->http, &req, resp, &ei)) {
        fprintf(stderr, "%s %s: %s\n", method, url, ei.msg);
        return 0;
    }
    return resp->status;
}

long fx_token_post(struct fx *f, const char *form, struct clc_http_resp *resp)
{
    char url[512];
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", fx_url(f, "entra"), fx_tenant(f));
    return fx_http(f, "POST", url, NULL, "application/x-www-form-urlencoded", form, strlen(form),
                   resp);
}

char *fx_token(struct fx *f, const char *name, const char *secret, const char *scope)
{
    struct clc_buf b;
    struct clc_http_resp resp;
    char *tok = NULL;
    clc_buf_init(&b, 8192);
    clc_buf_appendf(&b, "grant_type=client_credentials&client_id=%s&client_secret=",
                    fx_id(f, name, "client_id"));
    clc_http_urlencode(&b, secret ? secret : fx_id(f, name, "client_secret"));
    clc_buf_append_str(&b, "&scope=");
    clc_http_urlencode(&b, scope);
    if (fx_token_post(f, clc_buf_str(&b), &resp) == 200) {
        cJSON *j = fx_json(&resp);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "access_token");
        if (cJSON_IsString(t))
            tok = strdup(t->valuestring);
        cJSON_Delete(j);
    }
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);
    return tok;
}

cJSON *fx_json(const struct clc_http_resp *resp)
{
    cJSON *j = NULL;
    if (clc_json_parse(clc_buf_str(&resp->body), resp->body.len, 1 << 20, &j, NULL))
        return NULL;
    return j;
}

void fx_assert_entra_error(const struct clc_http_resp *resp, long status, const char *error,
                           long code)
{
    char prefix[32];
    cJSON *j = fx_json(resp);
    assert_non_null(j);
    assert_int_equal(resp->status, status);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "error_description");
    const cJSON *codes = cJSON_GetObjectItemCaseSensitive(j, "error_codes");
    assert_true(cJSON_IsString(e));
    assert_string_equal(e->valuestring, error);
    assert_true(cJSON_IsString(d));
    snprintf(prefix, sizeof prefix, "AADSTS%ld: ", code);
    if (strncmp(d->valuestring, prefix, strlen(prefix)) != 0)
        fail_msg("description '%s' does not start with '%s'", d->valuestring, prefix);
    assert_true(cJSON_IsArray(codes));
    assert_int_equal(cJSON_GetArraySize(codes), 1);
    assert_int_equal((long)cJSON_GetArrayItem(codes, 0)->valuedouble, code);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "trace_id")));
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "correlation_id")));
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "timestamp")));
    cJSON_Delete(j);
}

static EVP_PKEY *jwk_rsa(const cJSON *jwk)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(jwk, "n");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(jwk, "e");
    unsigned char *nb = NULL, *eb = NULL;
    size_t nl = 0, el = 0;
    EVP_PKEY *pk = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    BIGNUM *bn_n = NULL, *bn_e = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (!cJSON_IsString(n) || !cJSON_IsString(e) ||
        clc_b64url_decode(n->valuestring, strlen(n->valuestring), &nb, &nl) ||
        clc_b64url_decode(e->valuestring, strlen(e->valuestring), &eb, &el))
        goto out;
    bn_n = BN_bin2bn(nb, (int)nl, NULL);
    bn_e = BN_bin2bn(eb, (int)el, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pk = NULL;
out:
    free(nb);
    free(eb);
    BN_free(bn_n);
    BN_free(bn_e);
    OSSL_PARAM_BLD_free(bld);
    OSSL_PARAM_free(params);
    EVP_PKEY_CTX_free(ctx);
    return pk;
}

cJSON *fx_verify_jwks(struct fx *f, const char *jwt)
{
    char url[512];
    struct clc_http_resp resp;
    cJSON *hdr = NULL, *claims = NULL;
    struct clc_errinfo ei = {0};
    snprintf(url, sizeof url, "%s/%s/discovery/v2.0/keys", fx_url(f, "entra"), fx_tenant(f));
    assert_int_equal(fx_http(f, "GET", url, NULL, NULL, NULL, 0, &resp), 200);
    cJSON *jwks = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(jwks, "keys");
    assert_true(cJSON_IsArray(keys));
    assert_int_equal(cJSON_GetArraySize(keys), 1);
    const cJSON *k = cJSON_GetArrayItem(keys, 0);
    EVP_PKEY *pk = jwk_rsa(k);
    assert_non_null(pk);
    if (clc_jwt_verify(jwt, pk, "RS256", &hdr, &claims, &ei))
        fail_msg("token does not verify with the JWKS key: %s", ei.msg);
    /* The header names the key it was signed with. */
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(hdr, "kid");
    assert_true(cJSON_IsString(kid));
    assert_string_equal(kid->valuestring, cJSON_GetObjectItemCaseSensitive(k, "kid")->valuestring);
    EVP_PKEY_free(pk);
    cJSON_Delete(hdr);
    cJSON_Delete(jwks);
    return claims;
}

char *fx_assertion(struct fx *f, const struct clc_signer *key, const char *x5t,
                   const char *client_id, const char *aud, int64_t nbf_off, int64_t exp_off)
{
    char url[512], jti[37];
    char *jwt = NULL;
    int64_t now = emu_now(f->e);
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", fx_url(f, "entra"), fx_tenant(f));
    clc_rand_uuid(jti);
    cJSON *h = cJSON_CreateObject();
    cJSON *c = cJSON_CreateObject();
    if (x5t)
        clc_json_add_str(h, "x5t", x5t);
    clc_json_add_str(c, "aud", aud ? aud : url);
    clc_json_add_str(c, "iss", client_id);
    clc_json_add_str(c, "sub", client_id);
    clc_json_add_str(c, "jti", jti);
    clc_json_add_int(c, "nbf", now + nbf_off);
    clc_json_add_int(c, "iat", now + nbf_off);
    clc_json_add_int(c, "exp", now + exp_off);
    if (clc_jwt_sign(key, h, c, &jwt, NULL))
        jwt = NULL;
    cJSON_Delete(h);
    cJSON_Delete(c);
    return jwt;
}
