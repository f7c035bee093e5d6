/* Test support: the emulator's control API as its admin (see emu_admin.h).
 * The token comes over the wire from the emulated Entra ID, as any client's
 * would; it is cached so that a test's many control calls cost one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/secret.h"
#include "support/emu_admin.h"

/* Tokens are checked against the emulator's clock, which tests move: one is
 * fetched again this long before the emulator would refuse it. */
#define REFRESH_MARGIN_S 300
#define MAX_EMUS 8

static struct cached {
    const struct emu *e; /* NULL = free slot */
    struct clc_secret *token;
    int64_t at_s;       /* emulator time just before it was asked for */
    int64_t lifetime_s; /* expires_in of the answer */
} cache[MAX_EMUS];

static void drop(struct cached *c)
{
    clc_secret_free(c->token);
    memset(c, 0, sizeof *c);
}

void test_emu_admin_forget(const struct emu *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < MAX_EMUS; i++)
        if (cache[i].e == e)
            drop(&cache[i]);
}

/* The admin identity's client id and secret (copies into cid/sec). */
static void admin_identity(const struct emu *e, char *cid, size_t cidsz, char *sec, size_t secsz)
{
    struct clc_errinfo ei = {0};
    char *text = NULL;
    cJSON *doc = NULL;
    const cJSON *admin;
    const char *c, *s;
    int ok;

    if (emu_endpoints_json(e, &text, &ei) != CLC_OK)
        fail_msg("endpoints document: %s", ei.msg);
    doc = cJSON_Parse(text);
    free(text);
    admin = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(doc, "identities"),
                                             "admin");
    c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(admin, "client_id"));
    s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(admin, "client_secret"));
    ok = c != NULL && s != NULL && (size_t)snprintf(cid, cidsz, "%s", c) < cidsz &&
         (size_t)snprintf(sec, secsz, "%s", s) < secsz;
    cJSON_Delete(doc);
    if (!ok)
        fail_msg("no usable \"admin\" identity in the endpoints document");
}

/* A client credentials token for the admin; fails the test without one. */
static struct clc_secret *fetch_token(const struct emu *e, struct clc_http *http,
                                      int64_t *lifetime_s)
{
    struct clc_errinfo ei = {0};
    struct clc_http_resp resp;
    struct clc_secret *tok = NULL;
    struct clc_buf form;
    char cid[256], sec[512], url[512];
    cJSON *doc = NULL;
    const cJSON *exp;
    const char *at;
    enum clc_err rc;

    admin_identity(e, cid, sizeof cid, sec, sizeof sec);
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", emu_service_url(e, "entra"),
             emu_tenant(e));
    clc_buf_init(&form, 8192);
    rc = clc_buf_append_str(&form, "grant_type=client_credentials&client_id=");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(&form, cid);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&form, "&client_secret=");
    if (rc == CLC_OK)
        rc = clc_http_urlencode(&form, sec);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&form, "&scope=api%3A%2F%2Fcertlc-emulator%2F.default");
    struct clc_http_req req = {.method = "POST",
                               .url = url,
                               .body = form.data,
                               .body_len = form.len,
                               .content_type = "application/x-www-form-urlencoded"};
    clc_http_resp_init(&resp);
    if (rc == CLC_OK)
        rc = clc_http_do(http, &req, &resp, &ei);
    clc_buf_cleanup(&form);
    if (rc == CLC_OK && resp.status == 200)
        rc = clc_json_parse(clc_buf_str(&resp.body), resp.body.len, 1 << 20, &doc, &ei);
    else if (rc == CLC_OK)
        fprintf(stderr, "admin token: %ld %s\n", resp.status, clc_buf_str(&resp.body));
    at = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(doc, "access_token"));
    exp = cJSON_GetObjectItemCaseSensitive(doc, "expires_in");
    *lifetime_s = cJSON_IsNumber(exp) ? (int64_t)exp->valuedouble : 3600;
    if (at != NULL && clc_secret_new(at, strlen(at), &tok) != CLC_OK)
        tok = NULL;
    cJSON_Delete(doc);
    clc_http_resp_cleanup(&resp);
    if (tok == NULL)
        fail_msg("no admin token from the emulated Entra ID: %s", ei.msg);
    return tok;
}

static const struct clc_secret *admin_token(const struct emu *e, struct clc_http *http)
{
    int64_t now = emu_now_ms(e) / 1000;
    struct cached *slot = NULL;

    for (size_t i = 0; i < MAX_EMUS; i++) {
        if (cache[i].e == e) {
            int64_t age = now - cache[i].at_s;
            if (age >= 0 && age < cache[i].lifetime_s - REFRESH_MARGIN_S)
                return cache[i].token;
            drop(&cache[i]);
        }
        if (cache[i].e == NULL && slot == NULL)
            slot = &cache[i];
    }
    if (slot == NULL)
        fail_msg("admin tokens for more than %d emulators: forget stopped ones", MAX_EMUS);
    slot->token = fetch_token(e, http, &slot->lifetime_s);
    slot->at_s = now;
    slot->e = e;
    return slot->token;
}

long test_emu_admin_call(struct emu *e, struct clc_http *http, const char *method, const char *path,
                         const char *body, struct clc_http_resp *resp)
{
    struct clc_errinfo ei = {0};
    struct clc_http_resp local;
    struct clc_http_resp *r = resp != NULL ? resp : &local;
    struct clc_http *own = NULL;
    char url[1024];
    enum clc_err rc;
    long st;

    clc_http_resp_init(r);
    if ((size_t)snprintf(url, sizeof url, "%s%s", emu_service_url(e, "control"), path) >=
        sizeof url)
        fail_msg("control path too long: %s", path);
    if (http == NULL) {
        struct clc_http_opts o = {.ca_bundle = emu_ca_bundle(e), .timeout_ms = 10000};
        if (clc_http_new(&o, &own, &ei) != CLC_OK)
            fail_msg("http client: %s", ei.msg);
        http = own;
    }
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .body = body,
                               .body_len = body != NULL ? strlen(body) : 0,
                               .content_type = body != NULL ? "application/json" : NULL,
                               .bearer = admin_token(e, http)};
    rc = clc_http_do(http, &req, r, &ei);
    clc_http_free(own);
    st = r->status;
    if (rc == CLC_OK && st >= 300)
        fprintf(stderr, "control %s %s: %ld %s\n", method, path, st, clc_buf_str(&r->body));
    if (r == &local)
        clc_http_resp_cleanup(&local);
    if (rc != CLC_OK)
        fail_msg("control %s %s: %s", method, path, ei.msg);
    return st;
}
