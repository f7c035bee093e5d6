/* The auth client (src/azure/auth) against the emulated Entra ID: every
 * method obtains a token, the cache follows the (emulated) clock, invalidate
 * forces a fetch, Arc realm validation, Entra errors in errinfo, the
 * configuration path, and IMDS retries against a scripted local server. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "azure/auth.h"
#include "azure/auth_int.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/jwt.h"
#include "emulator/directory.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "entra_fixture.h"

static struct fx F;

/* The emulator clock runs: allow the second it may tick during a request. */
#define assert_near(got, want) assert_in_range((got), (want)-2, (want) + 1)

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

static struct clc_http_opts http_opts(void)
{
    struct clc_http_opts o = {
        .ca_bundle = emu_ca_bundle(F.e), .timeout_ms = 10000, .clock = &F.clock};
    return o;
}

static struct clc_auth *new_auth(const struct clc_auth_opts *o, enum clc_err want,
                                 struct clc_errinfo *ei)
{
    struct clc_auth *a = NULL;
    struct clc_http_opts ho = http_opts();
    enum clc_err err = clc_auth_new(o, &ho, &a, ei);
    if (err != want)
        fail_msg("clc_auth_new: %s (%s), wanted %s", clc_err_name(err), ei->msg,
                 clc_err_name(want));
    return a;
}

static struct clc_auth_opts v2_opts(enum clc_auth_method m, const char *name)
{
    struct clc_auth_opts o = {
        .method = m,
        .authority_host = fx_url(&F, "entra"),
        .tenant_id = fx_tenant(&F),
        .client_id = fx_id(&F, name, "client_id"),
    };
    return o;
}

/* Token for scope, checked by the directory; returns the principal name. */
static char *get_token(struct clc_auth *a, const char *scope, const char *aud, int64_t *exp,
                       char *who, size_t wholen)
{
    struct clc_secret *tok = NULL;
    struct clc_errinfo ei = {0};
    struct emu_principal p;
    enum clc_err err = clc_auth_token(a, scope, &tok, exp, &ei);
    if (err)
        fail_msg("clc_auth_token(%s): %s: %s", scope, clc_err_name(err), ei.msg);
    assert_int_equal(
        emu_directory_verify_token(emu_directory_of(F.e), clc_secret_reveal(tok), aud, &p, &ei),
        CLC_OK);
    if (who)
        snprintf(who, wholen, "%s", p.name);
    char *s = strdup(clc_secret_reveal(tok));
    clc_secret_free(tok);
    return s;
}

static void test_client_secret_and_cache(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_secret *sec = NULL;
    char who[64];
    int64_t exp = 0, exp2 = 0;
    assert_int_equal(clc_secret_new(FX_RENEWER_SECRET, strlen(FX_RENEWER_SECRET), &sec), CLC_OK);
    struct clc_auth_opts o = v2_opts(CLC_AUTH_CLIENT_SECRET, "renewer");
    o.client_secret = sec;
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    clc_secret_free(sec); /* the client keeps its own copy */
    assert_int_equal(clc_auth_method_of(a), CLC_AUTH_CLIENT_SECRET);

    char *t1 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, &exp, who, sizeof who);
    assert_string_equal(who, "renewer");
    assert_near(exp, emu_now(F.e) + 3599);

    /* Cached until refresh_margin (300 s) before expiry. */
    char *t2 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, &exp2, NULL, 0);
    assert_string_equal(t1, t2);
    assert_int_equal(exp2, exp);
    free(t2);
    emu_clock_advance(F.e, 3599 - 300 - 5);
    t2 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, NULL, 0);
    assert_string_equal(t1, t2);
    free(t2);
    /* Another scope is another entry. */
    char *ts = get_token(a, "https://storage.azure.com/.default", "https://storage.azure.com", NULL,
                         NULL, 0);
    assert_string_not_equal(ts, t1);
    free(ts);
    emu_clock_advance(F.e, 10);
    t2 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, &exp2, NULL, 0);
    assert_string_not_equal(t1, t2);
    assert_near(exp2, emu_now(F.e) + 3599);

    /* invalidate forces a new fetch. */
    clc_auth_invalidate(a, FX_VAULT_SCOPE);
    char *t3 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, NULL, 0);
    assert_string_not_equal(t3, t2);
    char *t4 = get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, NULL, 0);
    assert_string_equal(t3, t4);

    /* One scope per request. */
    struct clc_secret *tok = NULL;
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE " openid", &tok, NULL, &ei), CLC_ERR_INVALID);
    assert_null(tok);
    free(t1);
    free(t2);
    free(t3);
    free(t4);
    clc_auth_free(a);
}

static void test_client_errors(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_secret *sec = NULL, *tok = NULL;
    assert_int_equal(clc_secret_new("not-the-secret-0123456789", 25, &sec), CLC_OK);
    struct clc_auth_opts o = v2_opts(CLC_AUTH_CLIENT_SECRET, "renewer");
    o.client_secret = sec;
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_null(tok);
    assert_string_equal(ei.code, "invalid_client");
    assert_int_equal(ei.http_status, 401);
    assert_non_null(strstr(ei.msg, "AADSTS7000215"));
    assert_null(strstr(ei.msg, "not-the-secret"));
    assert_true(ei.request_id[0] != '\0');
    clc_auth_free(a);

    o.client_id = "00000000-0000-0000-0000-000000000000";
    a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_string_equal(ei.code, "unauthorized_client");
    assert_int_equal(ei.http_status, 400);
    assert_non_null(strstr(ei.msg, "AADSTS700016"));
    clc_auth_free(a);
    clc_secret_free(sec);

    /* Options refused up front. */
    struct clc_auth_opts bad = v2_opts(CLC_AUTH_CLIENT_SECRET, "renewer");
    new_auth(&bad, CLC_ERR_CONFIG, &ei); /* no secret */
    assert_non_null(strstr(ei.msg, "secret"));
    bad = v2_opts(CLC_AUTH_CLIENT_CERTIFICATE, "certapp");
    bad.certificate_file = F.cert_file;
    bad.key_file = F.other_key_file;
    new_auth(&bad, CLC_ERR_CONFIG, &ei);
    assert_non_null(strstr(ei.msg, "does not match"));
    bad = v2_opts(CLC_AUTH_CLIENT_SECRET, "renewer");
    bad.tenant_id = "../evil";
    new_auth(&bad, CLC_ERR_CONFIG, &ei);
    bad = v2_opts(CLC_AUTH_WORKLOAD_IDENTITY, "renewer");
    bad.authority_host = "http://login.example";
    bad.federated_token_file = "/nonexistent";
    new_auth(&bad, CLC_ERR_CONFIG, &ei);
    assert_non_null(strstr(ei.msg, "https"));
}

static void test_client_certificate(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    char who[64];
    struct clc_auth_opts o = v2_opts(CLC_AUTH_CLIENT_CERTIFICATE, "certapp");
    o.certificate_file = F.cert_file;
    o.key_file = F.key_file;
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "certapp");
    clc_auth_free(a);
}

/* The federated token as an admin fetches it from the emulator's issuer. */
static void write_federated(const char *name, const char *path)
{
    char url[512], h[8192];
    struct clc_http_resp resp;
    char *admin = fx_token(&F, "admin", FX_ADMIN_SECRET, EMU_CONTROL_AUDIENCE "/.default");
    assert_non_null(admin);
    snprintf(url, sizeof url, "%s/%s/federation/token?client_id=%s", fx_url(&F, "entra"),
             fx_tenant(&F), fx_id(&F, name, "client_id"));
    snprintf(h, sizeof h, "Authorization: Bearer %s", admin);
    const char *hdrs[] = {h, NULL};
    assert_int_equal(fx_http(&F, "GET", url, hdrs, NULL, NULL, 0, &resp), 200);
    cJSON *j = fx_json(&resp);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "token");
    assert_true(cJSON_IsString(t));
    assert_int_equal(fx_write(path, t->valuestring), 0);
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    free(admin);
}

static void test_workload_identity(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_secret *tok = NULL;
    char path[400], who[64];
    snprintf(path, sizeof path, "%s/projected-token", F.dir);
    write_federated("renewer", path);
    struct clc_auth_opts o = v2_opts(CLC_AUTH_WORKLOAD_IDENTITY, "renewer");
    o.federated_token_file = path;
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "renewer");

    /* The file is read on every request: a rotated (here broken) token is used. */
    assert_int_equal(fx_write(path, "garbage\n"), 0);
    clc_auth_invalidate(a, FX_VAULT_SCOPE);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "AADSTS50027"));
    /* Someone else's projected token. */
    write_federated("sync", path);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "AADSTS700213"));
    write_federated("renewer", path);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_int_equal(unlink(path), 0);
    clc_auth_invalidate(a, FX_VAULT_SCOPE);
    assert_int_not_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_OK);
    assert_non_null(strstr(ei.msg, "federated token file"));
    clc_auth_free(a);
}

static void test_imds(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    char url[300], who[64];
    struct clc_secret *tok = NULL;
    snprintf(url, sizeof url, "%s/metadata/identity/oauth2/token", fx_url(&F, "imds"));
    struct clc_auth_opts o = {.method = CLC_AUTH_MANAGED_IDENTITY, .imds_endpoint = url};
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    int64_t exp = 0;
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, &exp, who, sizeof who));
    assert_string_equal(who, "renewer");
    assert_near(exp, emu_now(F.e) + 3599);
    clc_auth_free(a);

    o.client_id = fx_id(&F, "sync", "client_id");
    a = new_auth(&o, CLC_OK, &ei);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "sync");
    clc_auth_free(a);

    o.client_id = "11111111-2222-3333-4444-555555555555";
    a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "Identity not found"));
    assert_int_equal(ei.http_status, 400);
    clc_auth_free(a);
}

static void test_app_service(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    char url[300], who[64];
    struct clc_secret *hdr = NULL, *bad = NULL, *tok = NULL;
    const char *h = emu_directory_identity_header(emu_directory_of(F.e));
    assert_int_equal(clc_secret_new(h, strlen(h), &hdr), CLC_OK);
    snprintf(url, sizeof url, "%s/msi/token", fx_url(&F, "imds"));
    struct clc_auth_opts o = {
        .method = CLC_AUTH_APP_SERVICE, .identity_endpoint = url, .identity_header = hdr};
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    int64_t exp = 0;
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, &exp, who, sizeof who));
    assert_string_equal(who, "renewer");
    /* expires_on only: taken as is. */
    assert_near(exp, emu_now(F.e) + 3600);
    clc_auth_free(a);

    assert_int_equal(clc_secret_new("wrong", 5, &bad), CLC_OK);
    o.identity_header = bad;
    a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_int_equal(ei.http_status, 401);
    assert_null(strstr(ei.msg, "wrong"));
    clc_auth_free(a);
    clc_secret_free(hdr);
    clc_secret_free(bad);
}

static void test_arc(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    char url[300], who[64], other[400], link[400];
    struct clc_secret *tok = NULL;
    snprintf(url, sizeof url, "%s/metadata/identity/oauth2/token", fx_url(&F, "arc"));
    const char *dir = emu_directory_arc_key_dir(emu_directory_of(F.e));
    struct clc_auth_opts o = {.method = CLC_AUTH_ARC, .identity_endpoint = url, .arc_key_dir = dir};
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "renewer");
    clc_auth_free(a);

    /* A realm outside the configured key directory is never read. */
    snprintf(other, sizeof other, "%s/other-keys", F.dir);
    assert_int_equal(mkdir(other, 0700), 0);
    o.arc_key_dir = other;
    a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_AUTH);
    assert_non_null(strstr(ei.msg, "is not a file in"));
    clc_auth_free(a);

    /* A directory that resolves to the key directory is the same directory. */
    snprintf(link, sizeof link, "%s/keys-link", F.dir);
    assert_int_equal(symlink(dir, link), 0);
    o.arc_key_dir = link;
    a = new_auth(&o, CLC_OK, &ei);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, NULL, 0));
    clc_auth_free(a);

    /* Directory that does not exist. */
    o.arc_key_dir = "/nonexistent/certlc-arc";
    a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_CONFIG);
    clc_auth_free(a);
}

static void test_from_config(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_config *cfg = NULL;
    struct clc_auth *a = NULL;
    char text[2048], secret_file[400], hdr_file[400], imds[300], ident[300], who[64];
    struct clc_http_opts ho = http_opts();

    snprintf(secret_file, sizeof secret_file, "%s/secret", F.dir);
    assert_int_equal(fx_write(secret_file, FX_RENEWER_SECRET "\n"), 0);
    snprintf(text, sizeof text,
             "{\"auth\": {\"authority_host\": \"%s\", \"tenant_id\": \"%s\", \"client_id\": \"%s\","
             " \"client_secret_file\": \"%s\", \"refresh_margin_s\": 60}}",
             fx_url(&F, "entra"), fx_tenant(&F), fx_id(&F, "renewer", "client_id"), secret_file);
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_auth_config_keys,
                                          clc_auth_config_nkeys, &cfg, &ei),
                     CLC_OK);
    if (clc_auth_from_config(cfg, &ho, &a, &ei))
        fail_msg("from_config: %s", ei.msg);
    assert_int_equal(clc_auth_method_of(a), CLC_AUTH_CLIENT_SECRET);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "renewer");
    clc_auth_free(a);
    clc_config_free(cfg);

    /* auto with an identity endpoint and header: App Service. */
    const char *h = emu_directory_identity_header(emu_directory_of(F.e));
    snprintf(hdr_file, sizeof hdr_file, "%s/identity-header", F.dir);
    assert_int_equal(fx_write(hdr_file, h), 0);
    snprintf(ident, sizeof ident, "%s/msi/token", fx_url(&F, "imds"));
    snprintf(text, sizeof text,
             "{\"auth\": {\"method\": \"auto\", \"identity_endpoint\": \"%s\","
             " \"identity_header_file\": \"%s\"}}",
             ident, hdr_file);
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_auth_config_keys,
                                          clc_auth_config_nkeys, &cfg, &ei),
                     CLC_OK);
    if (clc_auth_from_config(cfg, &ho, &a, &ei))
        fail_msg("from_config: %s", ei.msg);
    assert_int_equal(clc_auth_method_of(a), CLC_AUTH_APP_SERVICE);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, NULL, 0));
    clc_auth_free(a);
    clc_config_free(cfg);

    /* Explicit method and the IMDS endpoint. */
    snprintf(imds, sizeof imds, "%s/metadata/identity/oauth2/token", fx_url(&F, "imds"));
    snprintf(text, sizeof text,
             "{\"auth\": {\"method\": \"managed_identity\", \"imds_endpoint\": \"%s\","
             " \"client_id\": \"%s\"}}",
             imds, fx_id(&F, "sync", "client_id"));
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_auth_config_keys,
                                          clc_auth_config_nkeys, &cfg, &ei),
                     CLC_OK);
    if (clc_auth_from_config(cfg, &ho, &a, &ei))
        fail_msg("from_config: %s", ei.msg);
    assert_int_equal(clc_auth_method_of(a), CLC_AUTH_MANAGED_IDENTITY);
    free(get_token(a, FX_VAULT_SCOPE, FX_VAULT_AUD, NULL, who, sizeof who));
    assert_string_equal(who, "sync");
    clc_auth_free(a);
    clc_config_free(cfg);

    /* A method that does not exist is a configuration error. */
    snprintf(text, sizeof text, "{\"auth\": {\"method\": \"kerberos\"}}");
    assert_int_equal(clc_config_load_text(text, strlen(text), "test", NULL, clc_auth_config_keys,
                                          clc_auth_config_nkeys, &cfg, &ei),
                     CLC_OK);
    assert_int_equal(clc_auth_from_config(cfg, &ho, &a, &ei), CLC_ERR_CONFIG);
    assert_null(a);
    clc_config_free(cfg);

    assert_string_equal(clc_auth_method_name(CLC_AUTH_ARC), "arc");
    assert_int_equal(clc_auth_method_parse("workload_identity"), CLC_AUTH_WORKLOAD_IDENTITY);
    assert_int_equal(clc_auth_method_parse("auto"), -1);
}

/* ---- IMDS retries against a scripted server ---- */

struct script {
    int fd;
    int port;
    const char *const *replies; /* one per connection */
    int served;
    pthread_t th;
};

static void *script_run(void *arg)
{
    struct script *s = arg;
    char buf[8192];
    for (int i = 0; s->replies[i]; i++) {
        struct pollfd p = {.fd = s->fd, .events = POLLIN};
        if (poll(&p, 1, 5000) != 1)
            break;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        /* Read the request head (bounded), then answer and close. */
        size_t got = 0;
        while (got < sizeof buf - 1) {
            struct pollfd q = {.fd = c, .events = POLLIN};
            if (poll(&q, 1, 5000) != 1)
                break;
            ssize_t n = read(c, buf + got, sizeof buf - 1 - got);
            if (n <= 0)
                break;
            got += (size_t)n;
            buf[got] = '\0';
            if (strstr(buf, "\r\n\r\n"))
                break;
        }
        if (write(c, s->replies[i], strlen(s->replies[i])) < 0)
            break;
        close(c);
        s->served++;
    }
    return NULL;
}

static void script_start(struct script *s, const char *const *replies)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    memset(s, 0, sizeof *s);
    s->replies = replies;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(s->fd, 8), 0);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, script_run, s), 0);
}

static void script_stop(struct script *s)
{
    pthread_join(s->th, NULL);
    close(s->fd);
}

static int64_t slept_ms[16];
static int nslept;

static void fake_sleep(int64_t ms, void *ctx)
{
    (void)ctx;
    if (nslept < 16)
        slept_ms[nslept++] = ms;
}

static void test_imds_retries(void **state)
{
    (void)state;
    static const char body[] = "{\"access_token\":\"eyJ0.eyJ0.c2ln\",\"expires_in\":\"3599\","
                               "\"expires_on\":\"1\",\"token_type\":\"Bearer\"}";
    char ok[512];
    snprintf(ok, sizeof ok,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
             "Content-Length: %zu\r\n\r\n%s",
             strlen(body), body);
    const char *const replies[] = {
        "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 410 Gone\r\nConnection: close\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        ok,
        NULL,
    };
    struct script s;
    struct clc_errinfo ei = {0};
    struct clc_secret *tok = NULL;
    char url[200];
    int64_t exp = 0;
    script_start(&s, replies);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metadata/identity/oauth2/token", s.port);
    struct clc_auth_opts o = {.method = CLC_AUTH_MANAGED_IDENTITY, .imds_endpoint = url};
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    struct clc_retry_policy p;
    clc_retry_policy_default(&p);
    p.max_attempts = 5;
    p.sleep_ms = fake_sleep;
    nslept = 0;
    clc_auth_set_retry_policy(a, &p);
    if (clc_auth_token(a, FX_VAULT_SCOPE, &tok, &exp, &ei))
        fail_msg("IMDS with retries: %s", ei.msg);
    assert_string_equal(clc_secret_reveal(tok), "eyJ0.eyJ0.c2ln");
    assert_near(exp, emu_now(F.e) + 3599);
    assert_int_equal(nslept, 3);
    assert_int_equal(slept_ms[1], 2000); /* Retry-After: 2 */
    clc_secret_free(tok);
    clc_auth_free(a);
    script_stop(&s);
    assert_int_equal(s.served, 4);

    /* Bounded: a server that keeps failing gives up after max_attempts. */
    static const char *const failing[] = {
        "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        NULL,
    };
    script_start(&s, failing);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metadata/identity/oauth2/token", s.port);
    a = new_auth(&o, CLC_OK, &ei);
    p.max_attempts = 2;
    nslept = 0;
    clc_auth_set_retry_policy(a, &p);
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_UNAVAILABLE);
    assert_int_equal(ei.http_status, 500);
    assert_int_equal(nslept, 1);
    clc_auth_free(a);
    script_stop(&s);
    assert_int_equal(s.served, 2);
}

/* Arc realms that must be refused before anything is read or sent. */
static void test_arc_realm_validation(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_secret *tok = NULL;
    char dir[400], path[500], url[200], big[5000];
    static char replies_buf[8][700];
    static const char *const cases[][2] = {
        {"evil.txt", "is not a .key file"},  {"link.key", "is not a file in"},
        {"big.key", "over 4096 bytes"},      {"ctl.key", "control characters"},
        {"sub.key", "not a regular file"},   {"../escape.key", "is not a file in"},
        {"missing.key", "is not a file in"},
    };
    const size_t ncases = sizeof cases / sizeof cases[0];
    const char *replies[9];

    snprintf(dir, sizeof dir, "%s/arc-validate", F.dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/evil.txt", dir);
    assert_int_equal(fx_write(path, "secret"), 0);
    snprintf(path, sizeof path, "%s/link.key", dir);
    assert_int_equal(symlink(F.key_file, path), 0);
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    snprintf(path, sizeof path, "%s/big.key", dir);
    assert_int_equal(fx_write(path, big), 0);
    snprintf(path, sizeof path, "%s/ctl.key", dir);
    assert_int_equal(fx_write(path, "abc\r\nX-Evil: 1"), 0);
    snprintf(path, sizeof path, "%s/sub.key", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/escape.key", F.dir);
    assert_int_equal(fx_write(path, "abc"), 0);

    for (size_t i = 0; i < ncases; i++) {
        snprintf(replies_buf[i], sizeof replies_buf[i],
                 "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n"
                 "WWW-Authenticate: Basic realm=%s/%s\r\nContent-Length: 0\r\n\r\n",
                 dir, cases[i][0]);
        replies[i] = replies_buf[i];
    }
    replies[ncases] = "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n"
                      "Content-Length: 0\r\n\r\n";
    replies[ncases + 1] = NULL;

    struct script s;
    script_start(&s, replies);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metadata/identity/oauth2/token", s.port);
    struct clc_auth_opts o = {.method = CLC_AUTH_ARC, .identity_endpoint = url, .arc_key_dir = dir};
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    for (size_t i = 0; i < ncases; i++) {
        enum clc_err err = clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei);
        assert_int_equal(err, CLC_ERR_AUTH);
        if (!strstr(ei.msg, cases[i][1]))
            fail_msg("realm %s: '%s' lacks '%s'", cases[i][0], ei.msg, cases[i][1]);
        assert_null(tok);
    }
    assert_int_equal(clc_auth_token(a, FX_VAULT_SCOPE, &tok, NULL, &ei), CLC_ERR_PARSE);
    assert_non_null(strstr(ei.msg, "realm"));
    clc_auth_free(a);
    script_stop(&s);
    /* One request each: nothing was ever sent with a key. */
    assert_int_equal(s.served, (int)ncases + 1);
}

/* Token acquisition is logged at debug with a fingerprint, never the token
 * or the client secret. */
static void test_log_redaction(void **state)
{
    (void)state;
    struct clc_errinfo ei = {0};
    struct clc_secret *sec = NULL, *tok = NULL;
    char *logbuf = NULL;
    size_t loglen = 0;
    FILE *mem = open_memstream(&logbuf, &loglen);
    assert_non_null(mem);
    clc_log_setup(CLC_LOG_DEBUG, CLC_LOG_TEXT, mem);
    assert_int_equal(clc_secret_new(FX_RENEWER_SECRET, strlen(FX_RENEWER_SECRET), &sec), CLC_OK);
    struct clc_auth_opts o = v2_opts(CLC_AUTH_CLIENT_SECRET, "renewer");
    o.client_secret = sec;
    struct clc_auth *a = new_auth(&o, CLC_OK, &ei);
    assert_int_equal(clc_auth_token(a, "https://monitor.azure.com/.default", &tok, NULL, &ei),
                     CLC_OK);
    clc_log_setup(CLC_LOG_INFO, CLC_LOG_TEXT, stderr);
    fclose(mem);
    assert_non_null(strstr(logbuf, "auth.token_acquired"));
    assert_non_null(strstr(logbuf, "https://monitor.azure.com/.default"));
    assert_non_null(strstr(logbuf, "client_secret"));
    assert_null(strstr(logbuf, clc_secret_reveal(tok)));
    /* Not even a prefix of the JWT, nor the secret. */
    assert_null(strstr(logbuf, "eyJ"));
    assert_null(strstr(logbuf, FX_RENEWER_SECRET));
    free(logbuf);
    clc_secret_free(tok);
    clc_secret_free(sec);
    clc_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_secret_and_cache),
        cmocka_unit_test(test_client_errors),
        cmocka_unit_test(test_client_certificate),
        cmocka_unit_test(test_workload_identity),
        cmocka_unit_test(test_imds),
        cmocka_unit_test(test_app_service),
        cmocka_unit_test(test_arc),
        cmocka_unit_test(test_from_config),
        cmocka_unit_test(test_imds_retries),
        cmocka_unit_test(test_arc_realm_validation),
        cmocka_unit_test(test_log_redaction),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
