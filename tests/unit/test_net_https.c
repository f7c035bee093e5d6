/* HTTPS: the client verifies the server against the given CA bundle, and
 * refuses an unknown CA, a name the certificate does not cover, and the
 * system store for a private CA. Server: civetweb with TLS (via the OpenSSL 3
 * compatibility library) on 127.0.0.1, certificates from the x509 factory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <civetweb.h>
#include <openssl/pem.h>

#include "core/file.h"
#include "crypto/x509.h"
#include "net/http.h"

static struct mg_context *ctx;
static int port;
static char dir[64];
static char ca_path[128];
static char other_ca_path[128];
static char server_pem[128];

static int h_hello(struct mg_connection *c, void *cb)
{
    const char *auth = mg_get_header(c, "Authorization");
    char head[512];

    (void)cb;
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nX-Echo-Auth: %s\r\n", auth ? auth : "none");
    mg_printf(c, "%sContent-Length: 5\r\nConnection: close\r\n\r\nhello", head);
    return 200;
}

/* A CA (written to path) and, with with_server, a server certificate
 * for IP 127.0.0.1 written with its key to server_pem. */
static int make_pki(const char *path, int with_server)
{
    const char *const sans[] = {"IP:127.0.0.1", NULL};
    int64_t now = (int64_t)time(NULL);
    struct clc_x509_spec cs = {.subject_cn = "https test CA",
                               .not_before = now - 3600,
                               .not_after = now + 86400,
                               .is_ca = 1};
    struct clc_x509_spec ss = {.subject_cn = "127.0.0.1",
                               .sans = sans,
                               .not_before = now - 3600,
                               .not_after = now + 86400,
                               .server_auth = 1};
    struct clc_signer *ca_key = NULL;
    struct clc_signer *srv_key = NULL;
    X509 *ca = NULL;
    X509 *srv = NULL;
    BIO *bio = NULL;
    char *data = NULL;
    long len = 0;
    struct clc_errinfo ei;
    int rc = -1;

    if (clc_signer_generate("EC", 256, &ca_key, &ei) != CLC_OK ||
        clc_x509_make(&cs, ca_key, NULL, NULL, &ca, &ei) != CLC_OK ||
        clc_x509_save_pem(&ca, 1, path, 0644, &ei) != CLC_OK)
        goto out;
    if (with_server) {
        bio = BIO_new(BIO_s_mem());
        if (clc_signer_generate("EC", 256, &srv_key, &ei) != CLC_OK ||
            clc_x509_make(&ss, srv_key, ca, ca_key, &srv, &ei) != CLC_OK ||
            PEM_write_bio_X509(bio, srv) != 1 ||
            PEM_write_bio_PrivateKey(bio, clc_signer_pkey(srv_key), NULL, NULL, 0, NULL, NULL) != 1)
            goto out;
        len = BIO_get_mem_data(bio, &data);
        if (clc_file_write_atomic(server_pem, data, (size_t)len, 0600, &ei) != CLC_OK)
            goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        fprintf(stderr, "make_pki: %s\n", ei.msg);
    BIO_free(bio);
    X509_free(ca);
    X509_free(srv);
    clc_signer_free(ca_key);
    clc_signer_free(srv_key);
    return rc;
}

static int group_setup(void **state)
{
    const char *opts[] = {
        "listening_ports", "127.0.0.1:0s", "ssl_certificate", server_pem, "num_threads", "2", NULL};
    struct mg_callbacks cbs;
    struct mg_server_port ports[2];

    (void)state;
    snprintf(dir, sizeof dir, "/tmp/clc-https-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(ca_path, sizeof ca_path, "%s/ca.pem", dir);
    snprintf(other_ca_path, sizeof other_ca_path, "%s/other-ca.pem", dir);
    snprintf(server_pem, sizeof server_pem, "%s/server.pem", dir);
    if (make_pki(ca_path, 1) != 0 || make_pki(other_ca_path, 0) != 0)
        return -1;
    /* civetweb dlopens "libssl.so" by its 1.1 symbol names; the compat
     * library must be loaded first (DESIGN.md §4). */
    if (!dlopen(CLC_TEST_BINDIR "/emulator/compat/libssl.so", RTLD_NOW | RTLD_GLOBAL)) {
        fprintf(stderr, "compat library: %s\n", dlerror());
        return -1;
    }
    if (!(mg_init_library(MG_FEATURES_TLS) & MG_FEATURES_TLS))
        return -1;
    memset(&cbs, 0, sizeof cbs);
    ctx = mg_start(&cbs, NULL, opts);
    if (!ctx)
        return -1;
    mg_set_request_handler(ctx, "/hello", h_hello, NULL);
    if (mg_get_server_ports(ctx, 2, ports) < 1)
        return -1;
    port = ports[0].port;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    if (ctx)
        mg_stop(ctx);
    mg_exit_library();
    unlink(ca_path);
    unlink(other_ca_path);
    unlink(server_pem);
    rmdir(dir);
    return 0;
}

static enum clc_err get(const char *ca, const char *host, const struct clc_secret *bearer,
                        struct clc_http_resp *r, struct clc_errinfo *ei)
{
    struct clc_http_opts o = {.ca_bundle = ca, .timeout_ms = 5000};
    struct clc_http *h = NULL;
    struct clc_http_req q = {.method = "GET", .bearer = bearer};
    char url[128];
    enum clc_err rc = clc_http_new(&o, &h, ei);

    if (rc != CLC_OK)
        return rc;
    snprintf(url, sizeof url, "https://%s:%d/hello?sig=QUERY-SECRET", host, port);
    q.url = url;
    rc = clc_http_do(h, &q, r, ei);
    clc_http_free(h);
    return rc;
}

static void test_verified_with_bundle(void **state)
{
    struct clc_http_resp r;
    struct clc_errinfo ei;
    struct clc_secret *tok = NULL;

    (void)state;
    assert_int_equal(clc_secret_new("tls-token", 9, &tok), CLC_OK);
    clc_http_resp_init(&r);
    assert_int_equal(get(ca_path, "127.0.0.1", tok, &r, &ei), CLC_OK);
    assert_int_equal(r.status, 200);
    assert_string_equal(clc_buf_str(&r.body), "hello");
    assert_string_equal(clc_http_resp_header(&r, "X-Echo-Auth"), "Bearer tls-token");
    clc_http_resp_cleanup(&r);
    clc_secret_free(tok);
}

static void test_unknown_ca_refused(void **state)
{
    struct clc_http_resp r;
    struct clc_errinfo ei;

    (void)state;
    clc_http_resp_init(&r);
    assert_int_equal(get(other_ca_path, "127.0.0.1", NULL, &r, &ei), CLC_ERR_TLS);
    assert_non_null(strstr(ei.msg, "https://127.0.0.1:"));
    assert_null(strstr(ei.msg, "QUERY-SECRET"));
    assert_int_equal(r.status, 0);
    /* The system store does not know the private CA either. */
    assert_int_equal(get(NULL, "127.0.0.1", NULL, &r, &ei), CLC_ERR_TLS);
    clc_http_resp_cleanup(&r);
}

static void test_name_mismatch_refused(void **state)
{
    struct clc_http_resp r;
    struct clc_errinfo ei;

    (void)state;
    clc_http_resp_init(&r);
    /* Same server, trusted CA, but the certificate covers 127.0.0.1 only. */
    assert_int_equal(get(ca_path, "localhost", NULL, &r, &ei), CLC_ERR_TLS);
    clc_http_resp_cleanup(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verified_with_bundle),
        cmocka_unit_test(test_unknown_ca_refused),
        cmocka_unit_test(test_name_mismatch_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
