/* The emulated Entra ID token service ("entra", HTTPS): the v2 token endpoint
 * (client secret, client certificate assertion, federated workload token),
 * OpenID discovery and keys for MSAL-based SDKs, and two admin-only routes
 * for tests: mint a federated token, register an app certificate. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include "core/clock.h"
#include "core/json.h"
#include "core/rand.h"
#include "crypto/jwt.h"
#include "emulator/directory.h"
#include "emulator/emu.h"
#include "emulator/identity.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define FORM_MAX_BYTES (64 * 1024)
#define FORM_MAX_FIELDS 32
#define BASE_MAX 300
#define ASSERTION_TYPE_JWT "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
/* Entra refuses assertions valid for longer than this. */
#define ASSERTION_MAX_LIFETIME_S 600
#define CLOCK_SKEW_S 60

/* ---- Entra's error shape ---- */

static void entra_error_v(struct emu_req *r, int status, const char *error, long code,
                          const char *fmt, va_list ap)
{
    char msg[512], desc[900], trace[37], corr[37], ts[CLC_TIME_STR_MAX], uri[96];
    vsnprintf(msg, sizeof msg, fmt, ap);
    const char *cid = emu_req_header(r, "client-request-id");
    if (!cid)
        cid = emu_req_header(r, "x-ms-client-request-id");
    clc_rand_uuid(corr);
    if (cid && strlen(cid) == 36)
        memcpy(corr, cid, 37);
    if (strlen(r->request_id) == 36)
        memcpy(trace, r->request_id, 37);
    else
        clc_rand_uuid(trace);
    /* Entra writes "2016-01-09 02:02:12Z". */
    if (clc_time_fmt_iso8601(emu_now(r->emu), ts) == CLC_OK && strlen(ts) > 10)
        ts[10] = ' ';
    snprintf(desc, sizeof desc, "AADSTS%ld: %s Trace ID: %s Correlation ID: %s Timestamp: %s", code,
             msg, trace, corr, ts);
    snprintf(uri, sizeof uri, "https://login.microsoftonline.com/error?code=%ld", code);

    cJSON *b = cJSON_CreateObject();
    cJSON *codes = b ? cJSON_AddArrayToObject(b, "error_codes") : NULL;
    if (!codes || !cJSON_AddItemToArray(codes, cJSON_CreateNumber((double)code)) ||
        clc_json_add_str(b, "error", error) || clc_json_add_str(b, "error_description", desc) ||
        clc_json_add_str(b, "timestamp", ts) || clc_json_add_str(b, "trace_id", trace) ||
        clc_json_add_str(b, "correlation_id", corr) || clc_json_add_str(b, "error_uri", uri)) {
        cJSON_Delete(b);
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
        return;
    }
    static const char *const hdrs[] = {"Cache-Control: no-store, no-cache", "Pragma: no-cache",
                                       NULL};
    emu_reply_json(r, status, b, hdrs);
    cJSON_Delete(b);
}

static void entra_error(struct emu_req *r, int status, const char *error, long code,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void entra_error(struct emu_req *r, int status, const char *error, long code,
                        const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    entra_error_v(r, status, error, code, fmt, ap);
    va_end(ap);
}

/* Unknown routes, wrong methods, oversized bodies (server.c calls this). */
static void entra_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    (void)code;
    if (status == 405)
        entra_error(r, 405, "invalid_request", 900561,
                    "The endpoint only accepts POST, OPTIONS requests. Received a %s request.",
                    r->method ? r->method : "?");
    else if (status == 413)
        entra_error(r, 413, "invalid_request", 9002313,
                    "Invalid request. Request is malformed or invalid: the body is too large.");
    else
        entra_error(r, status, "invalid_request", 9002313,
                    "Invalid request. Request is malformed or invalid: %s",
                    message ? message : "unknown endpoint");
}

/* ---- strict form parsing ---- */

struct form {
    char *name[FORM_MAX_FIELDS];
    char *value[FORM_MAX_FIELDS];
    size_t n;
};

static void form_cleanup(struct form *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->name[i]);
        if (f->value[i]) {
            OPENSSL_cleanse(f->value[i], strlen(f->value[i]));
            free(f->value[i]);
        }
    }
    f->n = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) ("+" is space); NULL when a %-escape is broken or decodes
 * to NUL, which no legitimate field carries. */
static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t o = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%') {
            int a = i + 1 < n ? hexval(s[i + 1]) : -1;
            int b = i + 2 < n ? hexval(s[i + 2]) : -1;
            if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                free(out);
                return NULL;
            }
            out[o++] = (char)(a * 16 + b);
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}

/* 0 and a reason in why on malformed input: a pair without "=", a broken
 * escape, a repeated field, too many fields. */
static int form_parse(const char *body, size_t len, struct form *f, const char **why)
{
    size_t i = 0;
    memset(f, 0, sizeof *f);
    while (i < len) {
        size_t j = i;
        while (j < len && body[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(body + i, '=', j - i);
            if (!eq) {
                *why = "a field has no '='";
                goto bad;
            }
            if (f->n >= FORM_MAX_FIELDS) {
                *why = "too many fields";
                goto bad;
            }
            char *name = form_decode(body + i, (size_t)(eq - (body + i)));
            char *value = name ? form_decode(eq + 1, (size_t)(body + j - eq - 1)) : NULL;
            if (!name || !value) {
                free(name);
                free(value);
                *why = "a field has a broken %-escape";
                goto bad;
            }
            for (size_t k = 0; k < f->n; k++) {
                if (strcmp(f->name[k], name) == 0) {
                    free(name);
                    OPENSSL_cleanse(value, strlen(value));
                    free(value);
                    *why = "a field is repeated";
                    goto bad;
                }
            }
            f->name[f->n] = name;
            f->value[f->n] = value;
            f->n++;
        }
        i = j + 1;
    }
    return 1;
bad:
    form_cleanup(f);
    return 0;
}

static const char *form_get(const struct form *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->name[i], name) == 0)
            return f->value[i];
    return NULL;
}

/* ---- URLs ---- */

/* "https://<Host>" as the client addressed us (discovery documents must name
 * the host the client uses), else the service's own URL. */
static void base_url(struct emu_req *r, char out[BASE_MAX])
{
    const char *host = emu_req_header(r, "Host");
    int ok = host && *host && strlen(host) < BASE_MAX - 16;
    for (const char *p = host; ok && *p; p++)
        ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']';
    if (ok) {
        snprintf(out, BASE_MAX, "https://%s", host);
        return;
    }
    const char *svc = emu_service_url(r->emu, "entra");
    snprintf(out, BASE_MAX, "%s", svc ? svc : "https://127.0.0.1");
}

static int url_is(const char *got, const char *base, const char *tenant, const char *suffix)
{
    char want[BASE_MAX + 200];
    if (!base)
        return 0;
    snprintf(want, sizeof want, "%s/%s%s", base, tenant, suffix);
    size_t n = strlen(want), m = strlen(got);
    if (m == n + 1 && got[n] == '/')
        m = n;
    return m == n && strncasecmp(got, want, n) == 0;
}

/* The tenant in the path: the directory's tenant id (or the aliases MSAL
 * may use for discovery). Replies and returns 0 otherwise. */
static int tenant_ok(struct emu_req *r, struct emu_directory *d, int allow_alias)
{
    const char *t = emu_req_param(r, "tenant");
    if (t && strcasecmp(t, emu_directory_tenant(d)) == 0)
        return 1;
    if (t && allow_alias && (strcasecmp(t, "common") == 0 || strcasecmp(t, "organizations") == 0))
        return 1;
    entra_error(r, 400, "invalid_request", 90002,
                "Tenant '%.64s' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud.",
                t ? t : "");
    return 0;
}

/* ---- token endpoint ---- */

static void send_token(struct emu_req *r, struct emu_directory *d, const struct emu_principal *p,
                       const char *resource)
{
    char *jwt = NULL;
    struct clc_errinfo ei = {0};
    if (emu_directory_mint(d, p, resource, &jwt, NULL, NULL, &ei)) {
        entra_error(r, 500, "temporarily_unavailable", 90033, "Token signing failed: %s", ei.msg);
        return;
    }
    cJSON *b = cJSON_CreateObject();
    if (!b || clc_json_add_str(b, "token_type", "Bearer") ||
        clc_json_add_int(b, "expires_in", EMU_TOKEN_LIFETIME_S - 1) ||
        clc_json_add_int(b, "ext_expires_in", EMU_TOKEN_LIFETIME_S - 1) ||
        clc_json_add_str(b, "access_token", jwt)) {
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    } else {
        static const char *const hdrs[] = {"Cache-Control: no-store, no-cache", "Pragma: no-cache",
                                           NULL};
        emu_reply_json(r, 200, b, hdrs);
    }
    cJSON_Delete(b);
    free(jwt);
}

/* The one resource of a v2 scope list; OIDC scopes MSAL may add are ignored. */
static int scope_resource(const char *scope, char *out, size_t outlen)
{
    static const char dflt[] = "/.default";
    int found = 0;
    const char *p = scope;
    while (*p) {
        while (*p == ' ')
            p++;
        const char *q = p;
        while (*q && *q != ' ')
            q++;
        size_t n = (size_t)(q - p);
        if (n == 0)
            break;
        if (!((n == 6 && !strncmp(p, "openid", 6)) || (n == 7 && !strncmp(p, "profile", 7)) ||
              (n == 14 && !strncmp(p, "offline_access", 14)))) {
            size_t dl = sizeof dflt - 1;
            if (found || n <= dl || n - dl >= outlen || strncmp(q - dl, dflt, dl) != 0)
                return 0;
            memcpy(out, p, n - dl);
            out[n - dl] = '\0';
            found = 1;
        }
        p = q;
    }
    return found;
}

/* Checks a client assertion; 0 and an Entra error sent when refused. */
static int assertion_ok(struct emu_req *r, struct emu_directory *d, const struct emu_principal *p,
                        const char *jwt)
{
    int ok = 0;
    cJSON *hdr = NULL, *claims = NULL;
    EVP_PKEY *key = NULL;
    struct clc_errinfo ei = {0};
    const char *iss = NULL, *sub = NULL, *aud = NULL, *x5t = NULL;
    const char *tenant = emu_directory_tenant(d);
    int64_t now = emu_now(r->emu), exp = 0, nbf = 0;
    char base[BASE_MAX];
    base_url(r, base);
    const char *svc = emu_service_url(r->emu, "entra");

    if (strlen(jwt) > CLC_JWT_MAX_BYTES || clc_jwt_decode(jwt, &hdr, &claims, &ei) ||
        clc_json_str(claims, "iss", &iss, NULL) || clc_json_str(claims, "sub", &sub, NULL) ||
        clc_json_int(claims, "exp", &exp, NULL) || clc_json_int_opt(claims, "nbf", 0, &nbf, NULL)) {
        entra_error(r, 401, "invalid_client", 50027,
                    "JWT token is invalid or malformed (need iss, sub, exp).");
        goto out;
    }
    clc_json_str_opt(claims, "aud", NULL, &aud, NULL);
    int federated =
        url_is(iss, svc, tenant, "/federation") || url_is(iss, base, tenant, "/federation");
    if (federated) {
        char want[256];
        cJSON *vh = NULL, *vc = NULL;
        int sig = emu_directory_verify_sig(d, jwt, &vh, &vc, &ei) == CLC_OK;
        cJSON_Delete(vh);
        cJSON_Delete(vc);
        if (!sig) {
            entra_error(r, 401, "invalid_client", 700027,
                        "Client assertion failed signature validation.");
            goto out;
        }
        if (!emu_directory_fed_subject(d, p->client_id, want, sizeof want)) {
            entra_error(r, 401, "invalid_client", 70021,
                        "No matching federated identity record found for presented assertion. "
                        "Application '%s' has no federated credential.",
                        p->client_id);
            goto out;
        }
        if (!aud || strcmp(aud, EMU_FEDERATION_AUDIENCE) != 0) {
            entra_error(r, 401, "invalid_client", 700212,
                        "No matching federated identity record found for presented assertion "
                        "audience '%.100s'.",
                        aud ? aud : "");
            goto out;
        }
        if (strcmp(sub, want) != 0) {
            entra_error(r, 401, "invalid_client", 700213,
                        "No matching federated identity record found for presented assertion "
                        "subject '%.100s'.",
                        sub);
            goto out;
        }
    } else {
        int registered = 0;
        clc_json_str_opt(hdr, "x5t", NULL, &x5t, NULL);
        key = emu_directory_cert_key(d, p->client_id, x5t, &registered);
        if (!key) {
            entra_error(r, 401, "invalid_client", 700027,
                        "Client assertion contains an invalid signature. [Reason - The key was not "
                        "found.%s]",
                        registered ? "" : " No certificate is registered.");
            goto out;
        }
        cJSON *vh = NULL, *vc = NULL;
        int sig = clc_jwt_verify(jwt, key, "RS256", &vh, &vc, &ei) == CLC_OK;
        cJSON_Delete(vh);
        cJSON_Delete(vc);
        if (!sig) {
            entra_error(r, 401, "invalid_client", 700027,
                        "Client assertion failed signature validation.");
            goto out;
        }
        if (strcmp(iss, p->client_id) != 0 || strcmp(sub, p->client_id) != 0) {
            entra_error(r, 401, "invalid_client", 700021,
                        "Client assertion application identifier doesn't match 'client_id' "
                        "parameter.");
            goto out;
        }
        if (!aud || !(url_is(aud, svc, tenant, "/oauth2/v2.0/token") ||
                      url_is(aud, base, tenant, "/oauth2/v2.0/token"))) {
            entra_error(r, 401, "invalid_client", 700023,
                        "Client assertion audience claim does not match Realm issuer: expected "
                        "%s/%s/oauth2/v2.0/token.",
                        base, tenant);
            goto out;
        }
        if (exp > now + ASSERTION_MAX_LIFETIME_S + CLOCK_SKEW_S) {
            entra_error(r, 401, "invalid_client", 700024,
                        "Client assertion is not within its valid time range: it is valid for "
                        "more than %d seconds.",
                        ASSERTION_MAX_LIFETIME_S);
            goto out;
        }
    }
    if (exp <= now || nbf > now + CLOCK_SKEW_S) {
        entra_error(r, 401, "invalid_client", 700024,
                    "Client assertion is not within its valid time range. Current time: %lld, "
                    "assertion valid from %lld, expiry time of assertion %lld.",
                    (long long)now, (long long)nbf, (long long)exp);
        goto out;
    }
    ok = 1;
out:
    EVP_PKEY_free(key);
    cJSON_Delete(hdr);
    cJSON_Delete(claims);
    return ok;
}

static void h_token(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    struct form f = {0};
    const char *why = "";
    char resource[512];
    struct emu_principal p;

    if (!tenant_ok(r, d, 0))
        return;
    const char *ct = emu_req_header(r, "Content-Type");
    static const char form_type[] = "application/x-www-form-urlencoded";
    if (!ct || strncasecmp(ct, form_type, sizeof form_type - 1) != 0 ||
        (ct[sizeof form_type - 1] && ct[sizeof form_type - 1] != ';' &&
         ct[sizeof form_type - 1] != ' ')) {
        entra_error(r, 400, "invalid_request", 900144,
                    "The request body must contain the following parameter: 'grant_type'. "
                    "(Content-Type is '%.60s', not %s.)",
                    ct ? ct : "", form_type);
        return;
    }
    if (r->body_len > FORM_MAX_BYTES) {
        entra_error(r, 400, "invalid_request", 9002313,
                    "Invalid request. Request is malformed or invalid: body over %d bytes.",
                    FORM_MAX_BYTES);
        return;
    }
    if (!form_parse(r->body, r->body_len, &f, &why)) {
        entra_error(r, 400, "invalid_request", 9002313,
                    "Invalid request. Request is malformed or invalid: %s.", why);
        return;
    }
    const char *grant = form_get(&f, "grant_type");
    const char *cid = form_get(&f, "client_id");
    const char *scope = form_get(&f, "scope");
    const char *secret = form_get(&f, "client_secret");
    const char *atype = form_get(&f, "client_assertion_type");
    const char *assertion = form_get(&f, "client_assertion");
    const char *missing = !grant ? "grant_type" : !cid ? "client_id" : !scope ? "scope" : NULL;

    if (grant && strcmp(grant, "client_credentials") != 0) {
        entra_error(r, 400, "unsupported_grant_type", 70003,
                    "The app requested an unsupported grant type '%.40s'.", grant);
    } else if (missing) {
        entra_error(r, 400, "invalid_request", 900144,
                    "The request body must contain the following parameter: '%s'.", missing);
    } else if (!emu_directory_find(d, cid, &p)) {
        entra_error(r, 400, "unauthorized_client", 700016,
                    "Application with identifier '%.40s' was not found in the directory '%s'. "
                    "This can happen if the application has not been installed by the "
                    "administrator of the tenant.",
                    cid, emu_directory_tenant(d));
    } else if (!scope_resource(scope, resource, sizeof resource)) {
        entra_error(r, 400, "invalid_scope", 70011,
                    "The provided request must include a 'scope' input parameter. The provided "
                    "value for the input parameter 'scope' is not valid: it must name one "
                    "resource with the /.default suffix.");
    } else if (secret && (atype || assertion)) {
        entra_error(r, 400, "invalid_request", 9002313,
                    "Invalid request. Request is malformed or invalid: both client_secret and "
                    "client_assertion given.");
    } else if (secret) {
        if (emu_directory_secret_ok(d, cid, secret, strlen(secret)))
            send_token(r, d, &p, resource);
        else
            entra_error(r, 401, "invalid_client", 7000215,
                        "Invalid client secret provided. Ensure the secret being sent in the "
                        "request is the client secret value, not the client secret ID, for a "
                        "secret added to app '%s'.",
                        cid);
    } else if (assertion || atype) {
        if (!atype || strcmp(atype, ASSERTION_TYPE_JWT) != 0)
            entra_error(r, 400, "invalid_request", 9002313,
                        "Invalid request. client_assertion_type must be %s.", ASSERTION_TYPE_JWT);
        else if (!assertion || !*assertion)
            entra_error(r, 400, "invalid_request", 900144,
                        "The request body must contain the following parameter: "
                        "'client_assertion'.");
        else if (assertion_ok(r, d, &p, assertion))
            send_token(r, d, &p, resource);
    } else {
        entra_error(r, 401, "invalid_client", 7000216,
                    "'client_assertion', 'client_secret' or 'request' is required for the "
                    "'client_credentials' grant type.");
    }
    form_cleanup(&f);
}

/* ---- discovery ---- */

static int add_strs(cJSON *o, const char *key, const char *const *vals)
{
    cJSON *a = cJSON_AddArrayToObject(o, key);
    if (!a)
        return -1;
    for (size_t i = 0; vals[i]; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateString(vals[i])))
            return -1;
    return 0;
}

static void h_openid(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    char base[BASE_MAX], u[BASE_MAX + 128];
    const char *t = emu_directory_tenant(d);
    static const char *const rtypes[] = {"code", "id_token", "code id_token", "id_token token",
                                         NULL};
    static const char *const rmodes[] = {"query", "fragment", "form_post", NULL};
    static const char *const scopes[] = {"openid", "profile", "email", "offline_access", NULL};
    static const char *const auth[] = {"client_secret_post", "private_key_jwt",
                                       "client_secret_basic", NULL};
    static const char *const algs[] = {"RS256", NULL};
    static const char *const subj[] = {"pairwise", NULL};
    static const char *const claims[] = {"sub", "iss", "aud", "exp", "iat",
                                         "nbf", "tid", "oid", NULL};
    if (!tenant_ok(r, d, 1))
        return;
    base_url(r, base);
    cJSON *b = cJSON_CreateObject();
    int bad = !b;
#define ADDURL(key, fmt)                                                                           \
    do {                                                                                           \
        snprintf(u, sizeof u, fmt, base, t);                                                       \
        bad = bad || clc_json_add_str(b, key, u);                                                  \
    } while (0)
    ADDURL("token_endpoint", "%s/%s/oauth2/v2.0/token");
    ADDURL("jwks_uri", "%s/%s/discovery/v2.0/keys");
    ADDURL("issuer", "%s/%s/v2.0");
    ADDURL("authorization_endpoint", "%s/%s/oauth2/v2.0/authorize");
    ADDURL("device_authorization_endpoint", "%s/%s/oauth2/v2.0/devicecode");
    ADDURL("end_session_endpoint", "%s/%s/oauth2/v2.0/logout");
    ADDURL("kerberos_endpoint", "%s/%s/kerberos");
#undef ADDURL
    bad = bad || add_strs(b, "token_endpoint_auth_methods_supported", auth) ||
          add_strs(b, "response_types_supported", rtypes) ||
          add_strs(b, "response_modes_supported", rmodes) ||
          add_strs(b, "scopes_supported", scopes) ||
          add_strs(b, "id_token_signing_alg_values_supported", algs) ||
          add_strs(b, "subject_types_supported", subj) || add_strs(b, "claims_supported", claims) ||
          clc_json_add_bool(b, "request_uri_parameter_supported", 0) ||
          clc_json_add_bool(b, "http_logout_supported", 1) ||
          clc_json_add_bool(b, "frontchannel_logout_supported", 1) ||
          clc_json_add_str(b, "cloud_instance_name", "microsoftonline.com") ||
          clc_json_add_str(b, "cloud_graph_host_name", "graph.windows.net") ||
          clc_json_add_str(b, "msgraph_host", "graph.microsoft.com") ||
          clc_json_add_str(b, "tenant_region_scope", "WW");
    if (bad)
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
}

static void h_keys(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    if (!tenant_ok(r, d, 1))
        return;
    cJSON *b = emu_directory_jwks(d);
    if (!b)
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
}

/* MSAL's instance discovery, for clients that do not disable it. */
static void h_instance(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    char base[BASE_MAX], u[BASE_MAX + 100];
    base_url(r, base);
    const char *host = base + strlen("https://");
    snprintf(u, sizeof u, "%s/%s/v2.0/.well-known/openid-configuration", base,
             emu_directory_tenant(d));
    cJSON *b = cJSON_CreateObject();
    cJSON *md = b ? cJSON_AddArrayToObject(b, "metadata") : NULL;
    cJSON *m = md ? cJSON_CreateObject() : NULL;
    cJSON *aliases = m ? cJSON_AddArrayToObject(m, "aliases") : NULL;
    if (m)
        cJSON_AddItemToArray(md, m);
    if (!aliases || clc_json_add_str(b, "tenant_discovery_endpoint", u) ||
        clc_json_add_str(b, "api-version", "1.1") ||
        clc_json_add_str(m, "preferred_network", host) ||
        clc_json_add_str(m, "preferred_cache", host) ||
        !cJSON_AddItemToArray(aliases, cJSON_CreateString(host)))
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
}

/* ---- admin routes ---- */

static int admin_ok(struct emu_req *r)
{
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    if (emu_auth_verify(r->emu, r, EMU_CONTROL_AUDIENCE, &p, &ei) != CLC_OK) {
        static const char *const hdrs[] = {"WWW-Authenticate: Bearer realm=\"certlc-emulator\"",
                                           NULL};
        cJSON *b = cJSON_CreateObject();
        clc_json_add_str(b, "error", "invalid_token");
        clc_json_add_str(b, "error_description", ei.msg);
        emu_reply_json(r, 401, b, hdrs);
        cJSON_Delete(b);
        return 0;
    }
    if (!emu_principal_has(&p, EMU_ROLE_ADMIN)) {
        entra_error(r, 403, "access_denied", 50105,
                    "The signed in user '%s' is not assigned to a role for the application.",
                    p.name);
        return 0;
    }
    return 1;
}

/* GET /{tenant}/federation/token?client_id=..: the token a Kubernetes
 * cluster would project into the workload's pod. */
static void h_fed_token(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    char cid[64], iss[BASE_MAX + 64];
    struct emu_principal p;
    char *jwt = NULL;
    struct clc_errinfo ei = {0};
    if (!tenant_ok(r, d, 0) || !admin_ok(r))
        return;
    if (!emu_req_query(r, "client_id", cid, sizeof cid) || !emu_directory_find(d, cid, &p)) {
        entra_error(r, 400, "invalid_request", 700016,
                    "Application with identifier given in 'client_id' was not found.");
        return;
    }
    const char *svc = emu_service_url(r->emu, "entra");
    snprintf(iss, sizeof iss, "%s/%s/federation", svc ? svc : "", emu_directory_tenant(d));
    if (emu_directory_mint_federated(d, &p, iss, &jwt, &ei)) {
        entra_error(r, 400, "invalid_request", 70021, "%s", ei.msg);
        return;
    }
    cJSON *b = cJSON_CreateObject();
    if (!b || clc_json_add_str(b, "token", jwt) || clc_json_add_str(b, "issuer", iss) ||
        clc_json_add_str(b, "audience", EMU_FEDERATION_AUDIENCE))
        emu_reply(r, 500, "text/plain", "out of memory", 13, NULL);
    else
        emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
    free(jwt);
}

/* PUT /{tenant}/applications/{client_id}/certificate, PEM body. */
static void h_register_cert(struct emu_req *r)
{
    struct emu_directory *d = r->svc_ctx;
    struct clc_errinfo ei = {0};
    const char *cid = emu_req_param(r, "client_id");
    if (!tenant_ok(r, d, 0) || !admin_ok(r))
        return;
    enum clc_err err = emu_directory_register_cert(d, cid, r->body, r->body_len, &ei);
    if (err == CLC_ERR_NOT_FOUND) {
        entra_error(r, 404, "invalid_request", 700016, "%s", ei.msg);
        return;
    }
    if (err) {
        entra_error(r, 400, "invalid_request", 9002313, "Certificate refused: %s", ei.msg);
        return;
    }
    cJSON *b = cJSON_CreateObject();
    clc_json_add_str(b, "client_id", cid);
    emu_reply_json(r, 200, b, NULL);
    cJSON_Delete(b);
}

static const struct emu_route entra_routes[] = {
    {"GET", "/common/discovery/instance", h_instance},
    {"POST", "/{tenant}/oauth2/v2.0/token", h_token},
    {"GET", "/{tenant}/v2.0/.well-known/openid-configuration", h_openid},
    {"GET", "/{tenant}/discovery/v2.0/keys", h_keys},
    {"GET", "/{tenant}/federation/token", h_fed_token},
    {"PUT", "/{tenant}/applications/{client_id}/certificate", h_register_cert},
};

static const struct emu_service_def entra_def = {
    .name = "entra",
    .routes = entra_routes,
    .nroutes = sizeof entra_routes / sizeof entra_routes[0],
    .plain_http = 0,
    .error = entra_route_error,
};

enum clc_err emu_entra_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_directory *d = emu_directory_of(e);
    if (!d)
        return clc_errf(ei, CLC_ERR_INTERNAL, "entra: the directory is not set up");
    enum clc_err err = emu_service_add(e, "entra", &entra_def, emu_config_port(e, "entra"), d, ei);
    if (err)
        return err;
    return emu_entra_mi_mount(e, d, ei);
}
