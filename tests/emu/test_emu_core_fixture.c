/* The emulator core tests' shared fixture: the test service and control
 * component, the emulator's start and stop, and libcurl helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "emulator/emu_ext.h"
#include "emulator/server.h"
#include "emulator/services.h"
#include "test_emu_core_fixture.h"

struct fixture fx;

/* ---- the test service mounted next to the real ones ---- */

static void reply_obj(struct emu_req *r, int status, cJSON *o)
{
    emu_reply_json(r, status, o, NULL);
    cJSON_Delete(o);
}

static void h_item(struct emu_req *r)
{
    char v[64];
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", emu_req_param(r, "id"));
    cJSON_AddStringToObject(o, "path", r->path);
    if (emu_req_query(r, "api-version", v, sizeof v))
        cJSON_AddStringToObject(o, "api_version", v);
    reply_obj(r, 200, o);
}

static void h_item_rest(struct emu_req *r)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddStringToObject(o, "id", emu_req_param(r, "id"));
    cJSON_AddStringToObject(o, "rest", emu_req_param(r, "rest"));
    reply_obj(r, 200, o);
}

static void h_echo(struct emu_req *r)
{
    char a[64];
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "len", (double)r->body_len);
    cJSON_AddBoolToObject(o, "nul_terminated", r->body[r->body_len] == '\0');
    if (emu_req_form(r, "a", a, sizeof a))
        cJSON_AddStringToObject(o, "a", a);
    reply_obj(r, 200, o);
}

static void h_slash(struct emu_req *r)
{
    emu_reply(r, 200, "text/plain", "slash", 5, NULL);
}

static void h_noreply(struct emu_req *r)
{
    (void)r;
}

static const struct emu_route test_routes[] = {
    {"GET", "/items/{id}", h_item}, {"GET", "/items/{id}/sub/{rest*}", h_item_rest},
    {"POST", "/echo", h_echo},      {"GET", "/slash/", h_slash},
    {"GET", "/noreply", h_noreply},
};

const struct emu_service_def fx_test_def = {
    .name = "testsvc",
    .routes = test_routes,
    .nroutes = sizeof test_routes / sizeof test_routes[0],
};

static const struct emu_service_def test_plain_def = {
    .name = "testplain",
    .routes = test_routes,
    .nroutes = sizeof test_routes / sizeof test_routes[0],
    .plain_http = 1,
};

static void comp_reset(struct emu *e, void *ctx)
{
    (void)e;
    ((struct fixture *)ctx)->resets++;
}

static cJSON *comp_dump(struct emu *e, void *ctx)
{
    cJSON *o = cJSON_CreateObject();
    (void)e;
    cJSON_AddNumberToObject(o, "resets", ((struct fixture *)ctx)->resets);
    return o;
}

static void h_comp_ping(struct emu_req *r)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "ctx_ok", r->svc_ctx == &fx);
    reply_obj(r, 200, o);
}

static const struct emu_route comp_routes[] = {
    {"GET", "/control/testcomp/ping", h_comp_ping},
};

/* ---- HTTP helpers (libcurl) ---- */

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    return clc_buf_append(ud, p, sz * n) == CLC_OK ? sz * n : 0;
}

void fx_resp_free(struct resp *r)
{
    clc_buf_cleanup(&r->body);
    clc_buf_cleanup(&r->head);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* Last value of a response header (case-insensitive), copied to out. */
int fx_resp_header(const struct resp *r, const char *name, char *out, size_t outlen)
{
    const char *p = clc_buf_str(&r->head);
    size_t nl = strlen(name);
    int found = 0;

    while (*p) {
        const char *eol = strstr(p, "\r\n");
        size_t ll = eol ? (size_t)(eol - p) : strlen(p);
        if (ll > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, outlen, "%.*s", (int)(ll - (size_t)(v - p)), v);
            found = 1;
        }
        p += ll + (eol ? 2 : 0);
    }
    return found;
}

void fx_do_req(CURL *c, const char *method, const char *url, const char *const *hdrs,
               const char *body, long body_len, const char *cainfo, struct resp *r)
{
    struct curl_slist *sl = NULL;

    memset(r, 0, sizeof *r);
    clc_buf_init(&r->body, 4 * 1024 * 1024);
    clc_buf_init(&r->head, 64 * 1024);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_CAINFO, cainfo ? cainfo : emu_ca_bundle(fx.emu));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->head);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (body != NULL) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, body_len);
    }
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    r->cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(sl);
    if (r->body.len > 0)
        r->json = cJSON_ParseWithLength(r->body.data, r->body.len);
}

void fx_req(const char *method, const char *url, const char *const *hdrs, const char *body,
            struct resp *r)
{
    fx_do_req(fx.curl, method, url, hdrs, body, body ? (long)strlen(body) : 0, NULL, r);
    if (r->cc != CURLE_OK)
        fail_msg("%s %s: %s", method, url, curl_easy_strerror(r->cc));
}

char *fx_url(const char *service, const char *path)
{
    static char buf[4][512];
    static int k;
    const char *base = emu_service_url(fx.emu, service);

    assert_non_null(base);
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s%s", base, path);
    return buf[k];
}

const char *fx_err_code(const struct resp *r)
{
    const cJSON *e = cJSON_GetObjectItem(r->json, "error");
    const cJSON *c = cJSON_GetObjectItem(e, "code");
    return cJSON_IsString(c) ? c->valuestring : "";
}

/* A fresh token from the emulated Entra ID (tokens follow the emulator
 * clock, so one is fetched after every clock change). */
void fx_token(const char *identity, const char *scope, char *hdr, size_t hdrlen)
{
    const cJSON *ids = cJSON_GetObjectItem(fx.endpoints, "identities");
    const cJSON *id = cJSON_GetObjectItem(ids, identity);
    const char *cid = cJSON_GetStringValue(cJSON_GetObjectItem(id, "client_id"));
    const char *sec = cJSON_GetStringValue(cJSON_GetObjectItem(id, "client_secret"));
    struct clc_buf form;
    char path[128];
    struct resp r;
    char *esc;
    const cJSON *tok;

    assert_non_null(cid);
    assert_non_null(sec);
    clc_buf_init(&form, 8192);
    esc = curl_easy_escape(fx.curl, sec, 0);
    assert_int_equal(clc_buf_appendf(&form,
                                     "grant_type=client_credentials&client_id=%s"
                                     "&client_secret=%s&scope=%s",
                                     cid, esc, scope),
                     CLC_OK);
    curl_free(esc);
    snprintf(path, sizeof path, "/%s/oauth2/v2.0/token", emu_tenant(fx.emu));
    fx_req("POST", fx_url("entra", path), NULL, clc_buf_str(&form), &r);
    clc_buf_cleanup(&form);
    expect_status(&r, 200);
    tok = cJSON_GetObjectItem(r.json, "access_token");
    assert_true(cJSON_IsString(tok));
    snprintf(hdr, hdrlen, "Authorization: Bearer %s", tok->valuestring);
    fx_resp_free(&r);
}

void fx_admin(const char *method, const char *path, const char *body, struct resp *r)
{
    char auth[8192];
    const char *hdrs[] = {auth, "Content-Type: application/json", NULL};

    fx_token("admin", "api://certlc-emulator/.default", auth, sizeof auth);
    fx_req(method, fx_url("control", path), hdrs, body, r);
}

/* ---- fixture ---- */

int fx_start_emu(void)
{
    struct emu_opts o = {0};
    struct clc_errinfo ei = {0};

    o.data_dir = fx.data_dir;
    o.max_body_bytes = MAX_BODY;
    if (emu_start(&o, &fx.emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_service_add(fx.emu, "testsvc", &fx_test_def, 0, &fx, &ei) != CLC_OK ||
        emu_service_add(fx.emu, "nested/one", &fx_test_def, 0, &fx, &ei) != CLC_OK ||
        emu_service_add(fx.emu, "nested/two", &test_plain_def, 0, &fx, &ei) != CLC_OK) {
        fprintf(stderr, "emu_service_add: %s\n", ei.msg);
        return -1;
    }
    if (emu_control_register(fx.emu, "testcomp", comp_reset, comp_dump, &fx) != CLC_OK ||
        emu_control_add_routes(fx.emu, "testcomp", comp_routes, 1, &fx) != CLC_OK)
        return -1;
    return 0;
}

int fx_load_endpoints(void)
{
    char *text = NULL;
    struct clc_errinfo ei = {0};

    cJSON_Delete(fx.endpoints);
    fx.endpoints = NULL;
    if (emu_endpoints_json(fx.emu, &text, &ei) != CLC_OK)
        return -1;
    fx.endpoints = cJSON_Parse(text);
    free(text);
    return fx.endpoints ? 0 : -1;
}

int fx_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/emu-core-test-XXXXXX");
    if (mkdtemp(fx.dir) == NULL)
        return -1;
    snprintf(fx.data_dir, sizeof fx.data_dir, "%s/data", fx.dir);
    snprintf(fx.log_path, sizeof fx.log_path, "%s/emu.log", fx.dir);
    fx.log = fopen(fx.log_path, "w");
    if (fx.log == NULL)
        return -1;
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, fx.log);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    fx.curl = curl_easy_init();
    if (fx.curl == NULL || fx_start_emu() != 0)
        return -1;
    return fx_load_endpoints();
}

int fx_teardown(void **state)
{
    char cmd[300];
    (void)state;
    emu_stop(fx.emu);
    cJSON_Delete(fx.endpoints);
    curl_easy_cleanup(fx.curl);
    curl_global_cleanup();
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, stderr);
    fclose(fx.log);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx.dir);
    return system(cmd) == 0 ? 0 : -1;
}
