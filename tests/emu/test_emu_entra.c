/* The emulated Entra ID over HTTPS with verification: every token flow, the
 * tokens' signature (by the published JWKS) and claims, refusals in Entra's
 * shape with its AADSTS codes, bad input, and a restart from the data dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "core/buf.h"
#include "core/json.h"
#include "emulator/directory.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "entra_fixture.h"

static struct fx F;

static int group_setup(void **state)
{
    (void)state;
    return fx_setup(&F);
}

static int group_teardown(void **state)
{
    (void)state;
    fx_teardown(&F);
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jint(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_true(cJSON_IsNumber(v));
    return (int64_t)v->valuedouble;
}

static int has_role(const cJSON *claims, const char *role)
{
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(
                              claims, "roles")) if (cJSON_IsString(r) &&
                                                    strcmp(r->valuestring, role) == 0) return 1;
    return 0;
}

/* Token response -> access token (strdup'd), checking the v2 shape. */
static char *v2_token(const struct clc_http_resp *resp)
{
    cJSON *j = fx_json(resp);
    assert_non_null(j);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_int_equal(jint(j, "expires_in"), 3599);
    assert_int_equal(jint(j, "ext_expires_in"), 3599);
    char *tok = strdup(jstr(j, "access_token"));
    cJSON_Delete(j);
    return tok;
}

static void form_assertion(struct clc_buf *b, const char *client_id, const char *jwt)
{
    clc_buf_init(b, 64 * 1024);
    clc_buf_appendf(b, "grant_type=client_credentials&client_id=%s&scope=", client_id);
    clc_http_urlencode(b, FX_VAULT_SCOPE);
    clc_buf_append_str(b, "&client_assertion_type=");
    clc_http_urlencode(b, "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    clc_buf_append_str(b, "&client_assertion=");
    clc_http_urlencode(b, jwt);
}

/* Posts form and asserts the refusal. */
static void expect_refusal(const char *form, long status, const char *error, long code)
{
    struct clc_http_resp resp;
    assert_int_equal(fx_token_post(&F, form, &resp), status);
    fx_assert_entra_error(&resp, status, error, code);
    clc_http_resp_cleanup(&resp);
}

static void expect_assertion_refused(const char *client_id, char *jwt, const char *error, long code)
{
    struct clc_buf b;
    assert_non_null(jwt);
    form_assertion(&b, client_id, jwt);
    expect_refusal(clc_buf_str(&b), 401, error, code);
    clc_buf_cleanup(&b);
    free(jwt);
}

static void still_answers(void)
{
    char *tok = fx_token(&F, "renewer", FX_RENEWER_SECRET, FX_VAULT_SCOPE);
    assert_non_null(tok);
    free(tok);
}

static void test_client_secret(void **state)
{
    (void)state;
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    char iss[128];
    char *tok = fx_token(&F, "renewer", FX_RENEWER_SECRET, FX_VAULT_SCOPE);
    assert_non_null(tok);
    cJSON *c = fx_verify_jwks(&F, tok);
    snprintf(iss, sizeof iss, "https://sts.windows.net/%s/", fx_tenant(&F));
    assert_string_equal(jstr(c, "aud"), FX_VAULT_AUD);
    assert_string_equal(jstr(c, "iss"), iss);
    assert_string_equal(jstr(c, "tid"), fx_tenant(&F));
    assert_string_equal(jstr(c, "appid"), fx_id(&F, "renewer", "client_id"));
    assert_string_equal(jstr(c, "oid"), fx_id(&F, "renewer", "object_id"));
    assert_string_equal(jstr(c, "sub"), fx_id(&F, "renewer", "object_id"));
    assert_non_null(jstr(c, "uti"));
    assert_true(has_role(c, "Key Vault Certificates Officer"));
    assert_true(has_role(c, "Storage Queue Data Contributor"));
    assert_false(has_role(c, "Key Vault Secrets User"));
    int64_t iat = jint(c, "iat");
    assert_int_equal(jint(c, "nbf"), iat);
    assert_int_equal(jint(c, "exp"), iat + 3600);
    assert_true(iat - emu_now(F.e) <= 0 && iat - emu_now(F.e) > -30);
    cJSON_Delete(c);

    /* What services call: the principal comes from the directory. */
    struct emu_directory *d = emu_directory_of(F.e);
    assert_int_equal(emu_directory_verify_token(d, tok, "https://vault.azure.net/", &p, &ei),
                     CLC_OK);
    assert_string_equal(p.name, "renewer");
    assert_true(emu_principal_has(&p, EMU_ROLE_KV_CERTIFICATES_OFFICER));
    assert_false(emu_principal_has(&p, EMU_ROLE_KV_SECRETS_USER));
    assert_int_equal(emu_directory_verify_token(d, tok, "https://storage.azure.com", &p, &ei),
                     CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "audience"));
    /* One flipped signature character. */
    tok[strlen(tok) - 3] = tok[strlen(tok) - 3] == 'A' ? 'B' : 'A';
    assert_int_equal(emu_directory_verify_token(d, tok, FX_VAULT_AUD, &p, &ei), CLC_ERR_AUTH);
    free(tok);
}

static void test_discovery(void **state)
{
    (void)state;
    char url[512], want[512];
    struct clc_http_resp resp;
    const char *base = fx_url(&F, "entra");
    snprintf(url, sizeof url, "%s/%s/v2.0/.well-known/openid-configuration", base, fx_tenant(&F));
    assert_int_equal(fx_http(&F, "GET", url, NULL, NULL, NULL, 0, &resp), 200);
    cJSON *j = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    snprintf(want, sizeof want, "%s/%s/oauth2/v2.0/token", base, fx_tenant(&F));
    assert_string_equal(jstr(j, "token_endpoint"), want);
    snprintf(want, sizeof want, "%s/%s/discovery/v2.0/keys", base, fx_tenant(&F));
    assert_string_equal(jstr(j, "jwks_uri"), want);
    snprintf(want, sizeof want, "%s/%s/v2.0", base, fx_tenant(&F));
    assert_string_equal(jstr(j, "issuer"), want);
    assert_non_null(jstr(j, "authorization_endpoint"));
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(j, "response_types_supported")));
    cJSON_Delete(j);

    snprintf(url, sizeof url, "%s/common/discovery/instance?api-version=1.1", base);
    assert_int_equal(fx_http(&F, "GET", url, NULL, NULL, NULL, 0, &resp), 200);
    j = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    snprintf(want, sizeof want, "%s/%s/v2.0/.well-known/openid-configuration", base, fx_tenant(&F));
    assert_string_equal(jstr(j, "tenant_discovery_endpoint"), want);
    cJSON_Delete(j);

    snprintf(url, sizeof url, "%s/not-our-tenant/v2.0/.well-known/openid-configuration", base);
    assert_int_equal(fx_http(&F, "GET", url, NULL, NULL, NULL, 0, &resp), 400);
    fx_assert_entra_error(&resp, 400, "invalid_request", 90002);
    clc_http_resp_cleanup(&resp);
}

static void test_client_assertion(void **state)
{
    (void)state;
    struct clc_buf b;
    struct clc_http_resp resp;
    const char *cid = fx_id(&F, "certapp", "client_id");
    char *jwt = fx_assertion(&F, F.cert_key, F.x5t, cid, NULL, 0, 300);
    assert_non_null(jwt);
    form_assertion(&b, cid, jwt);
    assert_int_equal(fx_token_post(&F, clc_buf_str(&b), &resp), 200);
    char *tok = v2_token(&resp);
    cJSON *c = fx_verify_jwks(&F, tok);
    assert_string_equal(jstr(c, "appid"), cid);
    assert_true(has_role(c, "Key Vault Reader"));
    cJSON_Delete(c);
    free(tok);
    free(jwt);
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);
}

static void test_assertion_refusals(void **state)
{
    (void)state;
    char aud[512];
    const char *cid = fx_id(&F, "certapp", "client_id");
    /* Signed by another key under the registered certificate's thumbprint. */
    expect_assertion_refused(cid, fx_assertion(&F, F.other_key, F.x5t, cid, NULL, 0, 300),
                             "invalid_client", 700027);
    /* A thumbprint that is not registered. */
    expect_assertion_refused(cid, fx_assertion(&F, F.other_key, F.other_x5t, cid, NULL, 0, 300),
                             "invalid_client", 700027);
    /* Expired a minute ago. */
    expect_assertion_refused(cid, fx_assertion(&F, F.cert_key, F.x5t, cid, NULL, -600, -60),
                             "invalid_client", 700024);
    /* Valid for an hour: more than Entra allows. */
    expect_assertion_refused(cid, fx_assertion(&F, F.cert_key, F.x5t, cid, NULL, 0, 3600),
                             "invalid_client", 700024);
    /* Audience of another tenant's endpoint. */
    snprintf(aud, sizeof aud, "%s/other-tenant/oauth2/v2.0/token", fx_url(&F, "entra"));
    expect_assertion_refused(cid, fx_assertion(&F, F.cert_key, F.x5t, cid, aud, 0, 300),
                             "invalid_client", 700023);
    /* Issued for another client id. */
    expect_assertion_refused(
        cid, fx_assertion(&F, F.cert_key, F.x5t, fx_id(&F, "renewer", "client_id"), NULL, 0, 300),
        "invalid_client", 700021);
    /* Not a JWT at all. */
    expect_assertion_refused(cid, strdup("not.a-jwt"), "invalid_client", 50027);
    still_answers();
}

static char *admin_token(void)
{
    char *t = fx_token(&F, "admin", FX_ADMIN_SECRET, EMU_CONTROL_AUDIENCE "/.default");
    assert_non_null(t);
    return t;
}

static long with_bearer(const char *method, const char *url, const char *tok, const char *body,
                        struct clc_http_resp *resp)
{
    char h[8192];
    snprintf(h, sizeof h, "Authorization: Bearer %s", tok ? tok : "");
    const char *hdrs[] = {h, NULL};
    return fx_http(&F, method, url, tok ? hdrs : NULL, body ? "application/x-pem-file" : NULL, body,
                   body ? strlen(body) : 0, resp);
}

static void test_register_certificate(void **state)
{
    (void)state;
    char url[512];
    struct clc_http_resp resp;
    struct clc_buf b;
    char *pem = NULL;
    size_t len = 0;
    const char *cid = fx_id(&F, "regapp", "client_id");
    FILE *fp = fopen(F.other_cert_file, "r");
    assert_non_null(fp);
    pem = calloc(1, 16384);
    len = fread(pem, 1, 16383, fp);
    fclose(fp);
    assert_true(len > 100);

    /* Before registration the app has no certificate. */
    expect_assertion_refused(cid, fx_assertion(&F, F.other_key, F.other_x5t, cid, NULL, 0, 300),
                             "invalid_client", 700027);

    snprintf(url, sizeof url, "%s/%s/applications/%s/certificate", fx_url(&F, "entra"),
             fx_tenant(&F), cid);
    assert_int_equal(with_bearer("PUT", url, NULL, pem, &resp), 401);
    clc_http_resp_cleanup(&resp);
    char *renewer = fx_token(&F, "renewer", FX_RENEWER_SECRET, EMU_CONTROL_AUDIENCE "/.default");
    assert_non_null(renewer);
    assert_int_equal(with_bearer("PUT", url, renewer, pem, &resp), 403);
    clc_http_resp_cleanup(&resp);
    char *admin = admin_token();
    assert_int_equal(with_bearer("PUT", url, admin, "not a certificate", &resp), 400);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(with_bearer("PUT", url, admin, pem, &resp), 200);
    clc_http_resp_cleanup(&resp);

    char *jwt = fx_assertion(&F, F.other_key, F.other_x5t, cid, NULL, 0, 300);
    form_assertion(&b, cid, jwt);
    assert_int_equal(fx_token_post(&F, clc_buf_str(&b), &resp), 200);
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);
    free(jwt);
    free(admin);
    free(renewer);
    free(pem);
}

static char *federated_token(const char *name, long want_status)
{
    char url[512];
    struct clc_http_resp resp;
    char *admin = admin_token();
    char *out = NULL;
    snprintf(url, sizeof url, "%s/%s/federation/token?client_id=%s", fx_url(&F, "entra"),
             fx_tenant(&F), fx_id(&F, name, "client_id"));
    assert_int_equal(with_bearer("GET", url, admin, NULL, &resp), want_status);
    if (want_status == 200) {
        cJSON *j = fx_json(&resp);
        out = strdup(jstr(j, "token"));
        cJSON_Delete(j);
    }
    clc_http_resp_cleanup(&resp);
    free(admin);
    return out;
}

static void test_federated(void **state)
{
    (void)state;
    struct clc_buf b;
    struct clc_http_resp resp;
    char url[512];
    const char *cid = fx_id(&F, "renewer", "client_id");
    char *fed = federated_token("renewer", 200);
    form_assertion(&b, cid, fed);
    assert_int_equal(fx_token_post(&F, clc_buf_str(&b), &resp), 200);
    char *tok = v2_token(&resp);
    cJSON *c = fx_verify_jwks(&F, tok);
    assert_string_equal(jstr(c, "appid"), cid);
    cJSON_Delete(c);
    free(tok);
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);

    /* sync's token presented as renewer: the subject does not match. */
    expect_assertion_refused(cid, federated_token("sync", 200), "invalid_client", 700213);
    /* certapp has no federated credential. */
    free(federated_token("certapp", 400));
    /* Only admins mint federated tokens. */
    char *renewer = fx_token(&F, "renewer", FX_RENEWER_SECRET, EMU_CONTROL_AUDIENCE "/.default");
    snprintf(url, sizeof url, "%s/%s/federation/token?client_id=%s", fx_url(&F, "entra"),
             fx_tenant(&F), cid);
    assert_int_equal(with_bearer("GET", url, renewer, NULL, &resp), 403);
    clc_http_resp_cleanup(&resp);
    free(renewer);
    free(fed);
}

static void test_secret_refusals(void **state)
{
    (void)state;
    char form[1024];
    const char *cid = fx_id(&F, "renewer", "client_id");
    snprintf(form, sizeof form,
             "grant_type=client_credentials&client_id=%s&client_secret=wrong-secret-value"
             "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default",
             cid);
    expect_refusal(form, 401, "invalid_client", 7000215);
    snprintf(form, sizeof form,
             "grant_type=client_credentials&client_id=00000000-0000-0000-0000-000000000000"
             "&client_secret=x&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default");
    expect_refusal(form, 400, "unauthorized_client", 700016);
    snprintf(form, sizeof form,
             "client_id=%s&client_secret=" FX_RENEWER_SECRET
             "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default",
             cid);
    expect_refusal(form, 400, "invalid_request", 900144);
    snprintf(form, sizeof form,
             "grant_type=password&client_id=%s&client_secret=" FX_RENEWER_SECRET
             "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default",
             cid);
    expect_refusal(form, 400, "unsupported_grant_type", 70003);
    snprintf(form, sizeof form,
             "grant_type=client_credentials&client_id=%s&client_secret=" FX_RENEWER_SECRET
             "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default+"
             "https%%3A%%2F%%2Fstorage.azure.com%%2F.default",
             cid);
    expect_refusal(form, 400, "invalid_scope", 70011);
    snprintf(form, sizeof form,
             "grant_type=client_credentials&client_id=%s&client_secret=" FX_RENEWER_SECRET
             "&scope=https%%3A%%2F%%2Fvault.azure.net",
             cid);
    expect_refusal(form, 400, "invalid_scope", 70011);
    snprintf(form, sizeof form,
             "grant_type=client_credentials&client_id=%s"
             "&scope=https%%3A%%2F%%2Fvault.azure.net%%2F.default",
             cid);
    expect_refusal(form, 401, "invalid_client", 7000216);
    still_answers();
}

static void test_bad_input(void **state)
{
    (void)state;
    char url[512];
    struct clc_http_resp resp;
    static const char *const malformed[] = {
        "grant_type",                                        /* no '=' */
        "grant_type=client_credentials&client_id=%zz",       /* bad escape */
        "grant_type=client_cred%2",                          /* truncated escape */
        "grant_type=client_credentials&grant_type=password", /* repeated */
        "client_id=a%00b&grant_type=client_credentials",     /* NUL */
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        expect_refusal(malformed[i], 400, "invalid_request", 9002313);
        still_answers();
    }
    expect_refusal("", 400, "invalid_request", 900144);

    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", fx_url(&F, "entra"), fx_tenant(&F));
    const char *json = "{\"grant_type\":\"client_credentials\"}";
    assert_int_equal(fx_http(&F, "POST", url, NULL, "application/json", json, strlen(json), &resp),
                     400);
    fx_assert_entra_error(&resp, 400, "invalid_request", 900144);
    assert_non_null(strstr(clc_buf_str(&resp.body), "Content-Type"));
    clc_http_resp_cleanup(&resp);

    /* A body over the token endpoint's limit (well under the server's). */
    size_t big = 100 * 1024;
    char *body = malloc(big + 1);
    memcpy(body, "grant_type=client_credentials&pad=", 34);
    memset(body + 34, 'a', big - 34);
    body[big] = '\0';
    expect_refusal(body, 400, "invalid_request", 9002313);
    free(body);
    still_answers();

    /* The token endpoint takes POST only. */
    assert_int_equal(fx_http(&F, "GET", url, NULL, NULL, NULL, 0, &resp), 405);
    cJSON *j = fx_json(&resp);
    assert_string_equal(jstr(j, "error"), "invalid_request");
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    still_answers();
}

static long mi_get(const char *url, const char *const *hdrs, struct clc_http_resp *resp)
{
    return fx_http(&F, "GET", url, hdrs, NULL, NULL, 0, resp);
}

static void test_imds(void **state)
{
    (void)state;
    char url[1024], s[32];
    struct clc_http_resp resp;
    static const char *const md[] = {"Metadata: true", NULL};
    const char *base = fx_url(&F, "imds");
    assert_true(strncmp(base, "http://127.0.0.1:", 17) == 0);
    snprintf(url, sizeof url,
             "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=%s", base,
             "https%3A%2F%2Fvault.azure.net");
    assert_int_equal(mi_get(url, md, &resp), 200);
    cJSON *j = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    /* IMDS numbers are strings. */
    assert_string_equal(jstr(j, "expires_in"), "3599");
    assert_string_equal(jstr(j, "resource"), FX_VAULT_AUD);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_string_equal(jstr(j, "client_id"), fx_id(&F, "renewer", "client_id"));
    assert_non_null(jstr(j, "not_before"));
    cJSON *c = fx_verify_jwks(&F, jstr(j, "access_token"));
    snprintf(s, sizeof s, "%lld", (long long)jint(c, "exp"));
    assert_string_equal(jstr(j, "expires_on"), s);
    assert_string_equal(jstr(c, "aud"), FX_VAULT_AUD);
    assert_string_equal(jstr(c, "appid"), fx_id(&F, "renewer", "client_id"));
    cJSON_Delete(c);
    cJSON_Delete(j);

    /* User-assigned: by client_id, object_id, resource id. */
    const char *sel[][2] = {{"client_id", fx_id(&F, "sync", "client_id")},
                            {"object_id", fx_id(&F, "sync", "object_id")},
                            {"msi_res_id", "%2Fsubscriptions%2Fs%2FresourceGroups%2Fg%2Fproviders"
                                           "%2FMicrosoft.ManagedIdentity%2FuserAssignedIdentities"
                                           "%2Fsync"}};
    for (size_t i = 0; i < 3; i++) {
        snprintf(url, sizeof url,
                 "%s/metadata/identity/oauth2/token?api-version=2018-02-01"
                 "&resource=https%%3A%%2F%%2Fvault.azure.net&%s=%s",
                 base, sel[i][0], sel[i][1]);
        assert_int_equal(mi_get(url, md, &resp), 200);
        j = fx_json(&resp);
        assert_string_equal(jstr(j, "client_id"), fx_id(&F, "sync", "client_id"));
        cJSON_Delete(j);
        clc_http_resp_cleanup(&resp);
    }
    snprintf(
        url, sizeof url,
        "%s/metadata/identity/oauth2/token?api-version=2018-02-01"
        "&resource=https%%3A%%2F%%2Fvault.azure.net&client_id=11111111-2222-3333-4444-555555555555",
        base);
    assert_int_equal(mi_get(url, md, &resp), 400);
    j = fx_json(&resp);
    assert_string_equal(jstr(j, "error_description"), "Identity not found");
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);

    /* Without "Metadata: true". */
    snprintf(url, sizeof url, "%s/metadata/identity/oauth2/token?api-version=2018-02-01&resource=x",
             base);
    assert_int_equal(mi_get(url, NULL, &resp), 400);
    j = fx_json(&resp);
    assert_string_equal(jstr(j, "error"), "invalid_request");
    assert_string_equal(jstr(j, "error_description"), "Required metadata header not specified");
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
}

static void test_app_service(void **state)
{
    (void)state;
    char url[1024], h[200];
    struct clc_http_resp resp;
    const char *secret = emu_directory_identity_header(emu_directory_of(F.e));
    assert_true(strlen(secret) >= 32);
    snprintf(url, sizeof url,
             "%s/msi/token?api-version=2019-08-01&resource=https%%3A%%2F%%2Fvault.azure.net"
             "&client_id=%s",
             fx_url(&F, "imds"), fx_id(&F, "sync", "client_id"));
    snprintf(h, sizeof h, "X-IDENTITY-HEADER: %s", secret);
    const char *hdrs[] = {h, NULL};
    assert_int_equal(mi_get(url, hdrs, &resp), 200);
    cJSON *j = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    assert_string_equal(jstr(j, "resource"), FX_VAULT_AUD);
    assert_string_equal(jstr(j, "token_type"), "Bearer");
    assert_string_equal(jstr(j, "client_id"), fx_id(&F, "sync", "client_id"));
    cJSON *c = fx_verify_jwks(&F, jstr(j, "access_token"));
    char s[32];
    snprintf(s, sizeof s, "%lld", (long long)jint(c, "exp"));
    assert_string_equal(jstr(j, "expires_on"), s);
    assert_true(has_role(c, "Key Vault Secrets User"));
    cJSON_Delete(c);
    cJSON_Delete(j);

    static const char *const wrong[] = {"X-IDENTITY-HEADER: not-the-secret", NULL};
    assert_int_equal(mi_get(url, wrong, &resp), 401);
    j = fx_json(&resp);
    assert_non_null(jstr(j, "error"));
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(mi_get(url, NULL, &resp), 401);
    clc_http_resp_cleanup(&resp);
}

static char *realm_of(const struct clc_http_resp *resp)
{
    const char *w = clc_http_resp_header(resp, "WWW-Authenticate");
    assert_non_null(w);
    assert_true(strncmp(w, "Basic realm=", 12) == 0);
    return strdup(w + 12);
}

static void test_arc(void **state)
{
    (void)state;
    char url[1024], auth[300], key[128];
    struct clc_http_resp resp;
    struct stat st;
    static const char *const md[] = {"Metadata: true", NULL};
    snprintf(url, sizeof url,
             "%s/metadata/identity/oauth2/token?api-version=2020-06-01"
             "&resource=https%%3A%%2F%%2Fvault.azure.net",
             fx_url(&F, "arc"));

    assert_int_equal(mi_get(url, md, &resp), 401);
    char *path = realm_of(&resp);
    clc_http_resp_cleanup(&resp);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/", emu_directory_arc_key_dir(emu_directory_of(F.e)));
    assert_true(strncmp(path, dir, strlen(dir)) == 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(key, 1, sizeof key - 1, fp);
    fclose(fp);
    key[n] = '\0';
    assert_true(n >= 32);

    /* A wrong key: a new challenge. */
    static const char *const bad[] = {"Metadata: true", "Authorization: Basic 0123", NULL};
    assert_int_equal(mi_get(url, bad, &resp), 401);
    char *path2 = realm_of(&resp);
    assert_string_not_equal(path2, path);
    clc_http_resp_cleanup(&resp);

    snprintf(auth, sizeof auth, "Authorization: Basic %s", key);
    const char *good[] = {"Metadata: true", auth, NULL};
    assert_int_equal(mi_get(url, good, &resp), 200);
    cJSON *j = fx_json(&resp);
    clc_http_resp_cleanup(&resp);
    assert_string_equal(jstr(j, "expires_in"), "3599");
    cJSON *c = fx_verify_jwks(&F, jstr(j, "access_token"));
    assert_string_equal(jstr(c, "appid"), fx_id(&F, "renewer", "client_id"));
    cJSON_Delete(c);
    cJSON_Delete(j);
    /* Single use: the file is gone and the key no longer works. */
    assert_int_not_equal(stat(path, &st), 0);
    assert_int_equal(mi_get(url, good, &resp), 401);
    clc_http_resp_cleanup(&resp);
    /* Without Metadata: refused before any challenge. */
    assert_int_equal(mi_get(url, NULL, &resp), 400);
    clc_http_resp_cleanup(&resp);
    free(path);
    free(path2);
}

static void test_expiry_by_clock(void **state)
{
    (void)state;
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    char url[512];
    struct clc_http_resp resp;
    struct emu_directory *d = emu_directory_of(F.e);
    char *tok = fx_token(&F, "renewer", FX_RENEWER_SECRET, FX_VAULT_SCOPE);
    char *admin = admin_token();
    assert_int_equal(emu_directory_verify_token(d, tok, FX_VAULT_AUD, &p, &ei), CLC_OK);
    emu_clock_advance(F.e, 3599);
    assert_int_equal(emu_directory_verify_token(d, tok, FX_VAULT_AUD, &p, &ei), CLC_OK);
    emu_clock_advance(F.e, 2);
    assert_int_equal(emu_directory_verify_token(d, tok, FX_VAULT_AUD, &p, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "invalid token"));
    /* Over HTTP too: the admin route refuses the expired admin token. */
    snprintf(url, sizeof url, "%s/%s/federation/token?client_id=%s", fx_url(&F, "entra"),
             fx_tenant(&F), fx_id(&F, "renewer", "client_id"));
    assert_int_equal(with_bearer("GET", url, admin, NULL, &resp), 401);
    clc_http_resp_cleanup(&resp);
    free(tok);
    free(admin);
}

static void test_restart_keeps_directory(void **state)
{
    (void)state;
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    char tenant[40], sync_secret[128], regapp[40];
    char *tok = fx_token(&F, "renewer", FX_RENEWER_SECRET, FX_VAULT_SCOPE);
    assert_non_null(tok);
    snprintf(tenant, sizeof tenant, "%s", fx_tenant(&F));
    snprintf(sync_secret, sizeof sync_secret, "%s", fx_id(&F, "sync", "client_secret"));
    snprintf(regapp, sizeof regapp, "%s", fx_id(&F, "regapp", "client_id"));
    const char *hdr = emu_directory_identity_header(emu_directory_of(F.e));
    char header[80];
    snprintf(header, sizeof header, "%s", hdr);

    assert_int_equal(fx_restart(&F), 0);
    assert_string_equal(fx_tenant(&F), tenant);
    assert_string_equal(fx_id(&F, "sync", "client_secret"), sync_secret);
    assert_string_equal(fx_id(&F, "regapp", "client_id"), regapp);
    assert_string_equal(emu_directory_identity_header(emu_directory_of(F.e)), header);
    /* Same signing key: the old token verifies, by JWKS and by the directory. */
    cJSON *c = fx_verify_jwks(&F, tok);
    cJSON_Delete(c);
    assert_int_equal(emu_directory_verify_token(emu_directory_of(F.e), tok, FX_VAULT_AUD, &p, &ei),
                     CLC_OK);
    assert_string_equal(p.name, "renewer");
    /* The certificate registered at run time was kept too. */
    char *jwt = fx_assertion(&F, F.other_key, F.other_x5t, regapp, NULL, 0, 300);
    struct clc_buf b;
    struct clc_http_resp resp;
    form_assertion(&b, regapp, jwt);
    assert_int_equal(fx_token_post(&F, clc_buf_str(&b), &resp), 200);
    clc_http_resp_cleanup(&resp);
    clc_buf_cleanup(&b);
    free(jwt);
    /* And the sync secret still works. */
    char *t2 = fx_token(&F, "sync", sync_secret, FX_VAULT_SCOPE);
    assert_non_null(t2);
    free(t2);
    free(tok);
}

static void test_roles(void **state)
{
    (void)state;
    assert_string_equal(emu_role_name(EMU_ROLE_KV_SECRETS_USER), "Key Vault Secrets User");
    assert_int_equal(emu_role_parse("key vault certificates officer"),
                     EMU_ROLE_KV_CERTIFICATES_OFFICER);
    assert_int_equal(emu_role_parse("no such role"), 0);
    struct emu_principal admin = {.roles = EMU_ROLE_ADMIN};
    struct emu_principal reader = {.roles = EMU_ROLE_KV_READER};
    assert_true(emu_principal_has(&admin, EMU_ROLE_DNS_ZONE_CONTRIBUTOR));
    assert_true(emu_principal_has(&reader, EMU_ROLE_KV_READER | EMU_ROLE_KV_SECRETS_USER));
    assert_false(emu_principal_has(&reader, EMU_ROLE_KV_SECRETS_USER));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_client_secret),
        cmocka_unit_test(test_discovery),
        cmocka_unit_test(test_client_assertion),
        cmocka_unit_test(test_assertion_refusals),
        cmocka_unit_test(test_register_certificate),
        cmocka_unit_test(test_federated),
        cmocka_unit_test(test_secret_refusals),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_imds),
        cmocka_unit_test(test_app_service),
        cmocka_unit_test(test_arc),
        cmocka_unit_test(test_restart_keeps_directory),
        cmocka_unit_test(test_expiry_by_clock),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
