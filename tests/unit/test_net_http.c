/* HTTP client against a civetweb server started in this binary (127.0.0.1,
 * port 0): responses and headers (repeated ones too), caps, request ids,
 * bearer and HTTP authentication rules, retries observed through an
 * injected sleep, and transport failures. Basic, NTLM, Negotiate and client
 * certificates on the wire are tested over https by the CA client tests
 * (tests/emu/test_ca_client*.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <curl/curl.h>

#include "net/http.h"
#include "support/dropper.h"

struct server {
    struct mg_context *ctx;
    int port;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int flaky_fail; /* /flaky answers 503 this many times */
    int flaky_hits;
    int stall_released;
};

static struct server srv = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

/* Writes a whole raw response: status line and headers as given, then body. */
static void send_raw(struct mg_connection *c, const char *head, const void *body, size_t n)
{
    mg_printf(c, "%sContent-Length: %zu\r\nConnection: close\r\n\r\n", head, n);
    if (n)
        mg_write(c, body, n);
}

static const char *hdr_or(const struct mg_connection *c, const char *name, const char *dflt)
{
    const char *v = mg_get_header(c, name);
    return v ? v : dflt;
}

/* Echoes what the client sent as X-Echo-* headers and the body, after an
 * unsolicited 100 Continue block whose header must not survive. */
static int h_echo(struct mg_connection *c, void *cb)
{
    char body[4096];
    int n = 0;
    int r = 0;
    char head[2048];

    (void)cb;
    while (n < (int)sizeof body && (r = mg_read(c, body + n, sizeof body - (size_t)n)) > 0)
        n += r;
    snprintf(head, sizeof head,
             "HTTP/1.1 100 Continue\r\nX-Early: yes\r\n\r\n"
             "HTTP/1.1 200 OK\r\n"
             "X-Test:   padded value  \r\n"
             "X-Echo-Method: %s\r\n"
             "X-Echo-Request-Id: %s\r\n"
             "X-Echo-Auth: %s\r\n"
             "X-Echo-Content-Type: %s\r\n"
             "X-Echo-Expect: %s\r\n",
             mg_get_request_info(c)->request_method, hdr_or(c, "x-ms-client-request-id", "none"),
             hdr_or(c, "Authorization", "none"), hdr_or(c, "Content-Type", "none"),
             hdr_or(c, "Expect", "none"));
    send_raw(c, head, body, (size_t)n);
    return 200;
}

static int h_big(struct mg_connection *c, void *cb)
{
    static char big[64 * 1024];

    (void)cb;
    memset(big, 'x', sizeof big);
    send_raw(c, "HTTP/1.1 200 OK\r\n", big, sizeof big);
    return 200;
}

static int h_many(struct mg_connection *c, void *cb)
{
    char head[8192];
    size_t off = 0;

    (void)cb;
    off += (size_t)snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100; i++)
        off += (size_t)snprintf(head + off, sizeof head - off, "X-H%d: %d\r\n", i, i);
    send_raw(c, head, "", 0);
    return 200;
}

/* A challenge as IIS sends it: one WWW-Authenticate header per scheme,
 * with another header between them. */
static int h_challenge(struct mg_connection *c, void *cb)
{
    (void)cb;
    send_raw(c,
             "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
             "WWW-Authenticate: NTLM\r\nX-Between: 1\r\n"
             "www-authenticate:  Basic realm=\"certsrv\" \r\n",
             "", 0);
    return 401;
}

static int h_teapot(struct mg_connection *c, void *cb)
{
    (void)cb;
    send_raw(c, "HTTP/1.1 418 I'm a teapot\r\nX-Kind: teapot\r\n", "short and stout", 15);
    return 418;
}

static int h_flaky(struct mg_connection *c, void *cb)
{
    int fail = 0;

    (void)cb;
    pthread_mutex_lock(&srv.lock);
    fail = srv.flaky_hits < srv.flaky_fail;
    srv.flaky_hits++;
    pthread_mutex_unlock(&srv.lock);
    if (fail) {
        send_raw(c, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n", "busy", 4);
        return 503;
    }
    send_raw(c, "HTTP/1.1 200 OK\r\n", "ok", 2);
    return 200;
}

/* 429 whose millisecond hint must win over its Retry-After. */
static int h_throttle(struct mg_connection *c, void *cb)
{
    (void)cb;
    pthread_mutex_lock(&srv.lock);
    srv.flaky_hits++;
    pthread_mutex_unlock(&srv.lock);
    send_raw(c, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 10\r\nx-ms-retry-after-ms: 5\r\n",
             "", 0);
    return 429;
}

/* Holds the request until the test releases it (bounded at 3 s). */
static int h_stall(struct mg_connection *c, void *cb)
{
    struct timespec until;

    (void)cb;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    pthread_mutex_lock(&srv.lock);
    while (!srv.stall_released)
        if (pthread_cond_timedwait(&srv.cond, &srv.lock, &until) != 0)
            break;
    pthread_mutex_unlock(&srv.lock);
    send_raw(c, "HTTP/1.1 200 OK\r\n", "late", 4);
    return 200;
}

static int group_setup(void **state)
{
    const char *opts[] = {"listening_ports", "127.0.0.1:0", "tcp_nodelay", "1",
                          "num_threads",     "4",           NULL};
    struct mg_callbacks cbs;
    struct mg_server_port ports[2];

    (void)state;
    memset(&cbs, 0, sizeof cbs);
    mg_init_library(0);
    srv.ctx = mg_start(&cbs, NULL, opts);
    if (!srv.ctx)
        return -1;
    mg_set_request_handler(srv.ctx, "/echo", h_echo, NULL);
    mg_set_request_handler(srv.ctx, "/big", h_big, NULL);
    mg_set_request_handler(srv.ctx, "/many", h_many, NULL);
    mg_set_request_handler(srv.ctx, "/teapot", h_teapot, NULL);
    mg_set_request_handler(srv.ctx, "/challenge", h_challenge, NULL);
    mg_set_request_handler(srv.ctx, "/flaky", h_flaky, NULL);
    mg_set_request_handler(srv.ctx, "/throttle", h_throttle, NULL);
    mg_set_request_handler(srv.ctx, "/stall", h_stall, NULL);
    if (mg_get_server_ports(srv.ctx, 2, ports) < 1)
        return -1;
    srv.port = ports[0].port;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    pthread_mutex_lock(&srv.lock);
    srv.stall_released = 1;
    pthread_cond_broadcast(&srv.cond);
    pthread_mutex_unlock(&srv.lock);
    if (srv.ctx)
        mg_stop(srv.ctx);
    mg_exit_library();
    return 0;
}

static void reset_flaky(int fail)
{
    pthread_mutex_lock(&srv.lock);
    srv.flaky_fail = fail;
    srv.flaky_hits = 0;
    pthread_mutex_unlock(&srv.lock);
}

static int flaky_hits(void)
{
    pthread_mutex_lock(&srv.lock);
    int n = srv.flaky_hits;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

static void url_for(char *out, size_t n, const char *host, const char *path)
{
    snprintf(out, n, "http://%s:%d%s", host, srv.port, path);
}

static struct clc_http *client(size_t max_resp, long timeout_ms)
{
    struct clc_http_opts o;
    struct clc_http *h = NULL;
    struct clc_errinfo ei;

    memset(&o, 0, sizeof o);
    o.max_response_bytes = max_resp;
    o.timeout_ms = timeout_ms;
    o.connect_timeout_ms = 2000;
    assert_int_equal(clc_http_new(&o, &h, &ei), CLC_OK);
    assert_non_null(h);
    return h;
}

/* Sleep recorder: proves the waits without waiting. */
struct sleeps {
    int n;
    int64_t ms[16];
};

static void rec_sleep(int64_t ms, void *ctx)
{
    struct sleeps *s = ctx;

    if (s->n < 16)
        s->ms[s->n] = ms;
    s->n++;
}

static uint64_t max_rand(uint64_t bound, void *ctx)
{
    (void)ctx;
    return bound - 1;
}

static void policy_rec(struct clc_retry_policy *p, struct sleeps *s, int attempts)
{
    clc_retry_policy_default(p);
    p->max_attempts = attempts;
    p->sleep_ms = rec_sleep;
    p->rand_below = max_rand;
    p->ctx = s;
}

static void test_status_headers_and_body(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/teapot");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 418);
    assert_string_equal(clc_buf_str(&r.body), "short and stout");
    assert_string_equal(clc_http_resp_header(&r, "x-kind"), "teapot");
    assert_string_equal(clc_http_resp_header(&r, "X-KIND"), "teapot");
    assert_null(clc_http_resp_header(&r, "X-Absent"));
    assert_int_equal(r.attempts, 1);

    /* Second request on the same handle: earlier state is gone. */
    url_for(url, sizeof url, "127.0.0.1", "/echo");
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 200);
    assert_null(clc_http_resp_header(&r, "X-Kind"));
    assert_string_equal(clc_http_resp_header(&r, "X-Test"), "padded value");
    /* Only the final response's headers are kept. */
    assert_null(clc_http_resp_header(&r, "X-Early"));
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Method"), "GET");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Auth"), "none");
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_post_body_and_request_id(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    const char *const extra[] = {"X-Custom: 1", NULL};
    struct clc_http_req q = {.method = "POST",
                             .body = "a=1&b=2",
                             .body_len = 7,
                             .content_type = "application/x-www-form-urlencoded",
                             .headers = extra};
    char url[128];

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/echo");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), "a=1&b=2");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Method"), "POST");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Content-Type"),
                        "application/x-www-form-urlencoded");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Expect"), "none");
    /* A fresh UUID was sent and reported back. */
    assert_int_equal(strlen(r.client_request_id), 36);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Request-Id"), r.client_request_id);

    q.client_request_id = "caller-chosen-id-42";
    q.method = "PUT";
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Request-Id"), "caller-chosen-id-42");
    assert_string_equal(r.client_request_id, "caller-chosen-id-42");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Method"), "PUT");

    /* No content type given: none sent (not curl's form default). */
    q.content_type = NULL;
    q.method = "POST";
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Content-Type"), "none");
    assert_string_equal(clc_buf_str(&r.body), "a=1&b=2");

    q.client_request_id = "bad\r\nX-Injected: 1";
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_body_cap(void **state)
{
    struct clc_http *h = client(1024, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/big");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_LIMIT);
    assert_non_null(strstr(ei.msg, "response larger than 1024 bytes"));
    assert_true(r.body.len <= 1024);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_header_count_cap(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/many");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_int_equal(r.nheaders, CLC_HTTP_MAX_HEADERS);
    assert_string_equal(clc_http_resp_header(&r, "X-H0"), "0");
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_bearer_rules(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_secret *tok = NULL;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    assert_int_equal(clc_secret_new("tok-123-SECRET", 14, &tok), CLC_OK);
    q.bearer = tok;
    clc_http_resp_init(&r);
    /* Nothing listens on 127.0.0.2: INVALID (not NET) proves no connection. */
    url_for(url, sizeof url, "127.0.0.2", "/echo");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    assert_string_equal(ei.msg, "refusing to send a bearer token over plain http to 127.0.0.2");
    assert_int_equal(r.status, 0);

    url_for(url, sizeof url, "127.0.0.1", "/echo");
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Auth"), "Bearer tok-123-SECRET");

    q.authorization = tok;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    assert_null(strstr(ei.msg, "SECRET"));
    clc_http_resp_cleanup(&r);
    clc_secret_free(tok);
    clc_http_free(h);
}

static int closed_port(void);

static void test_repeated_headers(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];
    size_t pos = 0;

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/challenge");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 401);
    assert_string_equal(clc_http_resp_header(&r, "WWW-Authenticate"), "Negotiate");
    assert_string_equal(clc_http_resp_header_next(&r, "WWW-Authenticate", &pos), "Negotiate");
    assert_string_equal(clc_http_resp_header_next(&r, "WWW-Authenticate", &pos), "NTLM");
    assert_string_equal(clc_http_resp_header_next(&r, "WWW-Authenticate", &pos),
                        "Basic realm=\"certsrv\"");
    assert_null(clc_http_resp_header_next(&r, "WWW-Authenticate", &pos));
    assert_null(clc_http_resp_header_next(&r, "WWW-Authenticate", &pos));
    pos = 0;
    assert_string_equal(clc_http_resp_header_next(&r, "x-between", &pos), "1");
    assert_null(clc_http_resp_header_next(&r, "x-between", &pos));
    pos = 0;
    assert_null(clc_http_resp_header_next(&r, "X-Absent", &pos));
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

/* libcurl's HTTP authentication: https only (no managed identity
 * exception), never beside a bearer token, well-formed credentials; every
 * refusal comes before a connection (INVALID, status 0) and never quotes
 * the password. */
static void test_auth_rules(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_secret *pw = NULL, *nul = NULL, *tok = NULL;
    struct clc_http_auth a = {.schemes = (long)CURLAUTH_BASIC, .username = "svc"};
    struct clc_http_req q = {.method = "GET", .auth = &a};
    char url[128];
    int port = 0;

    (void)state;
    assert_int_equal(clc_secret_new("pw-SECRET", 9, &pw), CLC_OK);
    assert_int_equal(clc_secret_new("pw\0tail", 7, &nul), CLC_OK);
    assert_int_equal(clc_secret_new("tok", 3, &tok), CLC_OK);
    a.password = pw;
    clc_http_resp_init(&r);
    /* The echo server would answer 200: loopback http is still refused. */
    url_for(url, sizeof url, "127.0.0.1", "/echo");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    assert_string_equal(ei.msg, "refusing to send credentials over plain http to 127.0.0.1");
    assert_int_equal(r.status, 0);
    a.schemes = (long)CURLAUTH_NTLM;
    a.http11 = 1;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    assert_int_equal(r.status, 0);
    q.url = "ftp://127.0.0.1/x";
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);

    q.url = "https://127.0.0.2:1/x";
    q.bearer = tok;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    q.bearer = NULL;
    q.authorization = tok;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    q.authorization = NULL;
    a.schemes = 0;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    a.schemes = (long)CURLAUTH_BASIC;
    a.password = NULL;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    a.password = pw;
    a.default_creds = 1;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    a.default_creds = 0;
    a.password = nul;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    assert_string_equal(ei.msg, "http: the password contains a NUL byte");
    assert_null(strstr(ei.msg, "tail"));
    a.password = pw;
    assert_null(strstr(ei.msg, "SECRET"));

    /* Well-formed over https: the rules pass and a connection is tried. */
    port = closed_port();
    assert_true(port > 0);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/x", port);
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_NET);
    assert_null(strstr(ei.msg, "SECRET"));
    clc_http_resp_cleanup(&r);
    clc_secret_free(pw);
    clc_secret_free(nul);
    clc_secret_free(tok);
    clc_http_free(h);
}

/* What this libcurl was built with decides; the answer must agree. */
static void test_auth_available(void **state)
{
    const curl_version_info_data *v = NULL;
    struct clc_errinfo ei;

    (void)state;
    assert_int_equal(clc_http_auth_available((long)CURLAUTH_BASIC, &ei), CLC_OK);
    v = curl_version_info(CURLVERSION_NOW);
    assert_int_equal(clc_http_auth_available((long)CURLAUTH_NTLM, &ei),
                     (v->features & CURL_VERSION_NTLM) ? CLC_OK : CLC_ERR_UNSUPPORTED);
    assert_int_equal(
        clc_http_auth_available((long)CURLAUTH_NEGOTIATE, &ei),
        (v->features & (CURL_VERSION_SPNEGO | CURL_VERSION_GSSAPI)) ? CLC_OK : CLC_ERR_UNSUPPORTED);
}

/* A peer that is not Azure gets no Azure request id, unless one is given. */
static void test_no_request_id(void **state)
{
    struct clc_http_opts o;
    struct clc_http *h = NULL;
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    memset(&o, 0, sizeof o);
    o.no_request_id = 1;
    assert_int_equal(clc_http_new(&o, &h, &ei), CLC_OK);
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/echo");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Request-Id"), "none");
    assert_string_equal(r.client_request_id, "");
    q.client_request_id = "given-7";
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_OK);
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Request-Id"), "given-7");
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_safe_url(void **state)
{
    char out[64];
    char tiny[8];

    (void)state;
    clc_http_safe_url("https://user:pw@ca.example:8443/certsrv/certnew.cer?ReqID=4#f", out,
                      sizeof out);
    assert_string_equal(out, "https://ca.example:8443/certsrv/certnew.cer");
    clc_http_safe_url("not a url?code=SECRET", out, sizeof out);
    assert_null(strstr(out, "SECRET"));
    clc_http_safe_url("https://ca.example/a/long/path", tiny, sizeof tiny);
    assert_string_equal(tiny, "https:/");
    clc_http_safe_url(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

static void test_bearer_allowed_table(void **state)
{
    (void)state;
    assert_true(clc_http_bearer_allowed("https://vault.example/x"));
    assert_true(clc_http_bearer_allowed("HTTPS://vault.example/x"));
    assert_true(clc_http_bearer_allowed("http://169.254.169.254/metadata/identity/oauth2/token"));
    assert_true(clc_http_bearer_allowed("http://localhost:40342/x"));
    assert_true(clc_http_bearer_allowed("http://127.0.0.1:8080/x"));
    assert_false(clc_http_bearer_allowed("http://127.0.0.2/x"));
    assert_false(clc_http_bearer_allowed("http://vault.example/x"));
    assert_false(clc_http_bearer_allowed("http://127.0.0.1.evil.example/x"));
    assert_false(clc_http_bearer_allowed("http://127.0.0.1@evil.example/x"));
    assert_false(clc_http_bearer_allowed("http://169.254.169.254.nip.io/x"));
    assert_false(clc_http_bearer_allowed("ftp://127.0.0.1/x"));
    assert_false(clc_http_bearer_allowed("not a url"));
    assert_false(clc_http_bearer_allowed(""));
}

static void test_urlencode(void **state)
{
    struct clc_buf b;

    (void)state;
    clc_buf_init(&b, 256);
    assert_int_equal(clc_http_urlencode(&b, "AZaz09-._~"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "AZaz09-._~");
    clc_buf_reset(&b);
    assert_int_equal(clc_http_urlencode(&b, "a b+c/d?e=f&g%h\xc3\xa9"), CLC_OK);
    assert_string_equal(clc_buf_str(&b), "a%20b%2Bc%2Fd%3Fe%3Df%26g%25h%C3%A9");
    clc_buf_cleanup(&b);
    clc_buf_init(&b, 4);
    assert_int_equal(clc_http_urlencode(&b, "    "), CLC_ERR_LIMIT);
    clc_buf_cleanup(&b);
}

static void test_retry_after_503(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_retry_policy p;
    struct sleeps s = {0};
    struct clc_http_req q = {.method = "GET", .idempotent = 1};
    char url[128];

    (void)state;
    policy_rec(&p, &s, 4);
    reset_flaky(1);
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/flaky");
    q.url = url;
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), "ok");
    assert_int_equal(r.attempts, 2);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ms[0], 1000);
    assert_int_equal(flaky_hits(), 2);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_no_retry_when_not_idempotent(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_retry_policy p;
    struct sleeps s = {0};
    struct clc_http_req q = {.method = "POST", .idempotent = 0};
    char url[128];

    (void)state;
    policy_rec(&p, &s, 4);
    reset_flaky(100);
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/flaky");
    q.url = url;
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 503);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(s.n, 0);
    assert_int_equal(flaky_hits(), 1);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_gives_up_after_max_attempts(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_retry_policy p;
    struct sleeps s = {0};
    struct clc_http_req q = {.method = "GET", .idempotent = 1};
    char url[128];

    (void)state;
    policy_rec(&p, &s, 3);
    reset_flaky(100);
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/flaky");
    q.url = url;
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 503);
    assert_string_equal(clc_buf_str(&r.body), "busy");
    assert_int_equal(r.attempts, 3);
    assert_int_equal(s.n, 2);
    assert_int_equal(flaky_hits(), 3);

    /* The total budget stops earlier: a second 1 s wait would pass 1.5 s. */
    s.n = 0;
    reset_flaky(100);
    p.max_attempts = 10;
    p.max_total_ms = 1500;
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_OK);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(s.n, 1);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_ms_hint_wins(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_retry_policy p;
    struct sleeps s = {0};
    struct clc_http_req q = {.method = "GET", .idempotent = 1};
    char url[128];

    (void)state;
    policy_rec(&p, &s, 2);
    reset_flaky(0);
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/throttle");
    q.url = url;
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 429);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ms[0], 5);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

/* A port that was just open and is now closed: nothing listens there. */
static int closed_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = 0;

    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &n) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void test_connection_refused(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_retry_policy p;
    struct sleeps s = {0};
    struct clc_http_req q = {.method = "GET", .idempotent = 1};
    char url[128];
    int port = closed_port();

    (void)state;
    assert_true(port > 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x?sig=SAS-SECRET", port);
    q.url = url;
    clc_http_resp_init(&r);
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_NET);
    assert_non_null(strstr(ei.msg, "/x"));
    assert_null(strstr(ei.msg, "SAS-SECRET"));

    /* Retryable: full attempts with backoff waits (2^n * base at max draw). */
    policy_rec(&p, &s, 3);
    assert_int_equal(clc_http_send(h, &q, &p, &r, &ei), CLC_ERR_NET);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ms[0], 500);
    assert_int_equal(s.ms[1], 1000);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

static void test_timeout(void **state)
{
    struct clc_http *h = client(0, 300);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_http_req q = {.method = "GET"};
    char url[128];

    (void)state;
    clc_http_resp_init(&r);
    url_for(url, sizeof url, "127.0.0.1", "/stall?code=SECRET-CODE");
    q.url = url;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_TIMEOUT);
    assert_non_null(strstr(ei.msg, "/stall"));
    assert_null(strstr(ei.msg, "SECRET-CODE"));
    pthread_mutex_lock(&srv.lock);
    srv.stall_released = 1;
    pthread_cond_broadcast(&srv.cond);
    pthread_mutex_unlock(&srv.lock);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

/* Each request after the first meets a dead reused connection and is
 * retried by libcurl; that must keep working over a handle's whole life
 * (libcurl 7.88 counts those retries per handle unless reset). */
static void test_dead_reused_connections(void **state)
{
    struct test_dropper d;
    char url[128];

    (void)state;
    assert_int_equal(test_dropper_start(&d), 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x", d.port);
    struct clc_http *h = client(0, 10000);
    struct clc_http_req q = {.method = "GET", .url = url, .idempotent = 1};
    struct clc_http_resp r;
    struct clc_errinfo ei;
    clc_http_resp_init(&r);
    for (int i = 0; i < 12; i++) {
        if (clc_http_do(h, &q, &r, &ei) != CLC_OK)
            fail_msg("request %d: %s", i + 1, ei.msg);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 2);
    }
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
    test_dropper_stop(&d);
    assert_int_equal(d.accepted, 12); /* one new connection per request */
}

static void test_bad_input(void **state)
{
    struct clc_http *h = client(0, 5000);
    struct clc_http_resp r;
    struct clc_errinfo ei;
    const char *const bad_hdr[] = {"X-A: 1\r\nX-B: 2", NULL};
    struct clc_http_req q = {.method = "get", .url = "http://127.0.0.1:1/"};
    struct clc_http_opts o;
    struct clc_http *h2 = NULL;

    (void)state;
    clc_http_resp_init(&r);
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    q.method = "GET";
    q.headers = bad_hdr;
    assert_int_equal(clc_http_do(h, &q, &r, &ei), CLC_ERR_INVALID);
    memset(&o, 0, sizeof o);
    o.ca_bundle = "/nonexistent/ca.pem";
    assert_int_equal(clc_http_new(&o, &h2, &ei), CLC_ERR_CONFIG);
    assert_null(h2);
    memset(&o, 0, sizeof o);
    o.client_key = "/etc/certlc/client.key";
    assert_int_equal(clc_http_new(&o, &h2, &ei), CLC_ERR_INVALID);
    assert_null(h2);
    clc_http_resp_cleanup(&r);
    clc_http_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_headers_and_body),
        cmocka_unit_test(test_post_body_and_request_id),
        cmocka_unit_test(test_body_cap),
        cmocka_unit_test(test_header_count_cap),
        cmocka_unit_test(test_bearer_rules),
        cmocka_unit_test(test_repeated_headers),
        cmocka_unit_test(test_auth_rules),
        cmocka_unit_test(test_auth_available),
        cmocka_unit_test(test_no_request_id),
        cmocka_unit_test(test_safe_url),
        cmocka_unit_test(test_bearer_allowed_table),
        cmocka_unit_test(test_urlencode),
        cmocka_unit_test(test_retry_after_503),
        cmocka_unit_test(test_no_retry_when_not_idempotent),
        cmocka_unit_test(test_gives_up_after_max_attempts),
        cmocka_unit_test(test_ms_hint_wins),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_dead_reused_connections),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
