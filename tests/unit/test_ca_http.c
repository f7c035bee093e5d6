/* The AD CS and EST clients against a small local server that answers what
 * the emulated CA never would: garbage pages and bodies, a certificate for
 * another key, chains in root-first order with CRLF PEM, a denial whose code
 * is only on the status page, EST 202 with Retry-After and a leaf-only answer
 * completed from cacerts, a 401 listing schemes in one header each. Plain
 * http with auth none (credentials would be refused over http). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <civetweb.h>

#include "ca-helpers/ca_test_pki.h"
#include "ca/ca.h"
#include "core/b64.h"
#include "core/config.h"
#include "core/file.h"
#include "core/log.h"
#include "ca/ca_int.h"
#include "support/dropper.h"

static const struct clc_config_key schema[] = {{"ca.*", CLC_CFG_OBJ, "CAs"}};

static struct {
    struct mg_context *ctx;
    int port;
    char dir[256];
    char anchors[300];
    struct pki pki;
    struct clc_signer *key, *other;
    struct clc_ca_csr *csr;
    char *leaf_pem;      /* for key, CRLF line ends */
    char *other_pem;     /* for another key */
    char *p7_root_first; /* base64 armoured as CERTIFICATE, [root, inter, leaf] */
    char *p7_leaf_only;  /* bare base64 */
    char *p7_other;      /* bare base64, other key's leaf + inter */
    char *p7_cas;        /* bare base64, [root, inter] */
    struct clc_config *cfg;
    struct clc_ca *ca;
    struct clc_ca_result res;
    struct clc_errinfo ei;
    int saw_azure_request_id; /* any request carried x-ms-client-request-id */
} T;

static void reply(struct mg_connection *c, int status, const char *ctype, const char *extra,
                  const char *body)
{
    size_t n = strlen(body);
    mg_printf(c,
              "HTTP/1.1 %d X\r\nContent-Type: %s\r\n%sContent-Length: %zu\r\n"
              "Connection: close\r\n\r\n",
              status, ctype, extra ? extra : "", n);
    mg_write(c, body, n);
}

static char *fixture(const char *name)
{
    char path[512];
    char *s = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "%s/ca-client/%s", CLC_FIXTURES, name);
    return clc_file_read(path, 1 << 20, &s, &len, NULL) == CLC_OK ? s : strdup("");
}

/* Routes on "/<case>/..." so each test has its own CA. */
static int handler(struct mg_connection *c, void *cb)
{
    const struct mg_request_info *ri = mg_get_request_info(c);
    const char *u = ri->local_uri;
    char buf[4096];
    (void)cb;
    while (mg_read(c, buf, sizeof buf) > 0) {
    }
    if (mg_get_header(c, "x-ms-client-request-id"))
        T.saw_azure_request_id = 1;
    char *page = NULL;
    if (strcmp(u, "/a1/certsrv/certfnsh.asp") == 0) {
        reply(c, 401, "text/html",
              "WWW-Authenticate: Negotiate\r\nWWW-Authenticate: NTLM\r\n"
              "WWW-Authenticate: Basic realm=\"x\"\r\n",
              "<html>401</html>");
    } else if (strcmp(u, "/g1/certsrv/certfnsh.asp") == 0) {
        reply(c, 200, "text/html", NULL, page = fixture("garbage-login.html"));
    } else if (strstr(u, "/certfnsh.asp") &&
               (strncmp(u, "/g2/", 4) == 0 || strncmp(u, "/g3/", 4) == 0 ||
                strncmp(u, "/g4/", 4) == 0)) {
        reply(c, 200, "text/html", NULL, page = fixture("submit-issued.html"));
    } else if (strcmp(u, "/g2/certsrv/certnew.cer") == 0) {
        reply(c, 200, "application/pkix-cert", NULL, "this is not a certificate");
    } else if (strcmp(u, "/g3/certsrv/certnew.cer") == 0) {
        reply(c, 200, "application/pkix-cert", NULL, T.other_pem);
    } else if (strcmp(u, "/g4/certsrv/certnew.cer") == 0) {
        reply(c, 200, "application/pkix-cert", NULL, T.leaf_pem);
    } else if (strstr(u, "/certnew.p7b") &&
               (strncmp(u, "/g3/", 4) == 0 || strncmp(u, "/g4/", 4) == 0)) {
        reply(c, 200, "application/x-pkcs7-certificates", NULL, T.p7_root_first);
    } else if (strcmp(u, "/g5/certsrv/certfnsh.asp") == 0) {
        reply(c, 200, "text/html", NULL, page = fixture("submit-denied-enroll.html"));
    } else if (strcmp(u, "/g5/certsrv/certnew.cer") == 0) {
        reply(c, 200, "text/html", NULL, page = fixture("status-denied-enroll.html"));
    } else if (strcmp(u, "/g6/certsrv/certfnsh.asp") == 0) {
        reply(c, 200, "application/octet-stream", NULL, "\x01\x02garbage");
    } else if (strcmp(u, "/e1/est/simpleenroll") == 0) {
        reply(c, 200, "application/pkcs7-mime", NULL, "bm90IGEgcGtjczc=");
    } else if (strcmp(u, "/e2/est/simpleenroll") == 0) {
        reply(c, 200, "application/pkcs7-mime", NULL, T.p7_other);
    } else if (strcmp(u, "/e3/est/simpleenroll") == 0) {
        reply(c, 202, "text/plain", "Retry-After: 120\r\n", "pending\n");
    } else if (strcmp(u, "/e4/est/simpleenroll") == 0) {
        reply(c, 200, "application/pkcs7-mime; smime-type=certs-only",
              "Content-Transfer-Encoding: base64\r\n", T.p7_leaf_only);
    } else if (strcmp(u, "/e4/est/cacerts") == 0) {
        reply(c, 200, "application/pkcs7-mime", NULL, T.p7_cas);
    } else if (strcmp(u, "/e5/est/simpleenroll") == 0) {
        reply(c, 400, "text/plain", NULL, "subject not allowed\n");
    } else if (strcmp(u, "/e6/est/simpleenroll") == 0) {
        reply(c, 503, "text/plain", "Retry-After: 30\r\n", "busy\n");
    } else {
        reply(c, 404, "text/plain", NULL, "no such thing\n");
    }
    free(page);
    return 1;
}

static char *b64_of(X509 *const *certs, size_t n)
{
    size_t len = 0;
    unsigned char *der = pki_p7(certs, n, &len);
    char *s = NULL;
    clc_b64_encode(der, len, &s, NULL);
    free(der);
    return s;
}

static int setup_all(void **state)
{
    const char *opts[] = {"listening_ports", "127.0.0.1:0", "num_threads", "2", NULL};
    struct mg_callbacks cbs;
    struct mg_server_port ports[2];
    (void)state;

    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    snprintf(T.dir, sizeof T.dir, "/tmp/clc-ca-http-XXXXXX");
    if (!mkdtemp(T.dir) || pki_make(&T.pki, clc_clock_now(NULL)) != 0 ||
        clc_signer_generate("EC", 256, &T.key, NULL) != CLC_OK ||
        clc_signer_generate("EC", 256, &T.other, NULL) != CLC_OK)
        return -1;
    char *pem = pki_csr_pem(T.key, "www.example.test", NULL);
    if (clc_ca_csr_parse(pem, strlen(pem), &T.csr, NULL) != CLC_OK)
        return -1;
    free(pem);
    X509 *leaf = pki_leaf(&T.pki, T.key, "www.example.test", T.pki.now - 60, T.pki.now + 86400);
    X509 *oleaf = pki_leaf(&T.pki, T.other, "other", T.pki.now - 60, T.pki.now + 86400);
    /* CRLF, as AD CS's Enc=b64 answers. */
    char *lf = pki_pem(&leaf, 1);
    T.leaf_pem = calloc(1, strlen(lf) * 2 + 1);
    for (size_t i = 0, o = 0; lf[i]; i++) {
        if (lf[i] == '\n')
            T.leaf_pem[o++] = '\r';
        T.leaf_pem[o++] = lf[i];
    }
    free(lf);
    T.other_pem = pki_pem(&oleaf, 1);
    X509 *rf[3] = {T.pki.root, T.pki.inter, leaf};
    char *b = b64_of(rf, 3);
    T.p7_root_first = calloc(1, strlen(b) + 80);
    sprintf(T.p7_root_first, "-----BEGIN CERTIFICATE-----\r\n%s\r\n-----END CERTIFICATE-----\r\n",
            b);
    free(b);
    T.p7_leaf_only = b64_of(&leaf, 1);
    X509 *oc[2] = {oleaf, T.pki.inter};
    T.p7_other = b64_of(oc, 2);
    X509 *cas[2] = {T.pki.root, T.pki.inter};
    T.p7_cas = b64_of(cas, 2);
    X509_free(leaf);
    X509_free(oleaf);
    snprintf(T.anchors, sizeof T.anchors, "%s/root.pem", T.dir);
    char *rp = pki_pem(&T.pki.root, 1);
    pki_write(T.anchors, rp, strlen(rp), 0644);
    free(rp);

    memset(&cbs, 0, sizeof cbs);
    T.ctx = mg_start(&cbs, NULL, opts);
    if (!T.ctx)
        return -1;
    mg_set_request_handler(T.ctx, "/", handler, NULL);
    if (mg_get_server_ports(T.ctx, 2, ports) < 1)
        return -1;
    T.port = ports[0].port;
    clc_ca_result_init(&T.res);
    return 0;
}

static int teardown_all(void **state)
{
    char cmd[400];
    (void)state;
    mg_stop(T.ctx);
    clc_ca_result_cleanup(&T.res);
    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    clc_ca_csr_free(T.csr);
    clc_signer_free(T.key);
    clc_signer_free(T.other);
    pki_free(&T.pki);
    free(T.leaf_pem);
    free(T.other_pem);
    free(T.p7_root_first);
    free(T.p7_leaf_only);
    free(T.p7_other);
    free(T.p7_cas);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static enum clc_err run(const char *type, const char *path, const char *tmpl)
{
    char text[2048];
    struct clc_ca_req req = {.csr = T.csr, .template_name = tmpl};
    enum clc_err e;

    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    T.ca = NULL;
    T.cfg = NULL;
    snprintf(text, sizeof text,
             "{\"ca\":{\"t\":{\"type\":\"%s\",\"url\":\"http://127.0.0.1:%d%s\",\"auth\":\"none\","
             "\"trust_anchors\":\"%s\",\"timeout_s\":10}}}",
             type, T.port, path, T.anchors);
    e = clc_config_load_text(text, strlen(text), "t", NULL, schema, 1, &T.cfg, &T.ei);
    if (e == CLC_OK)
        e = clc_ca_from_config(T.cfg, "t", NULL, NULL, &T.ca, &T.ei);
    if (e == CLC_OK)
        e = clc_ca_submit(T.ca, &req, &T.res, &T.ei);
    return e;
}

static void test_adcs_garbage_and_wrong_key(void **state)
{
    (void)state;
    assert_int_equal(run("adcs", "/g1/certsrv", "WebServer"), CLC_ERR_PARSE);
    assert_non_null(strstr(T.ei.msg, "title 'Sign in'"));
    assert_false(T.res.retryable);
    assert_int_equal(run("adcs", "/g2/certsrv", "WebServer"), CLC_ERR_PARSE);
    assert_non_null(strstr(T.ei.msg, "certnew.cer for request 42"));
    assert_int_equal(run("adcs", "/g3/certsrv", "WebServer"), CLC_ERR_CRYPTO);
    assert_non_null(strstr(T.ei.msg, "public key is not the CSR's"));
    assert_null(T.res.chain);
    assert_int_equal(run("adcs", "/g6/certsrv", "WebServer"), CLC_ERR_PARSE);
    /* Wrong path: 404 is a configuration error. */
    assert_int_equal(run("adcs", "/nothing/certsrv", "WebServer"), CLC_ERR_CONFIG);
    /* No template. */
    assert_int_equal(run("adcs", "/g4/certsrv", NULL), CLC_ERR_INVALID);
}

static void test_adcs_root_first_chain(void **state)
{
    (void)state;
    assert_int_equal(run("adcs", "/g4/certsrv", "WebServer"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_ISSUED);
    assert_string_equal(T.res.request_id, "42");
    assert_int_equal(sk_X509_num(T.res.chain), 3);
    assert_int_equal(
        EVP_PKEY_eq(X509_get0_pubkey(sk_X509_value(T.res.chain, 0)), clc_signer_pkey(T.key)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(T.res.chain, 1), T.pki.inter), 0);
    assert_int_equal(X509_cmp(sk_X509_value(T.res.chain, 2), T.pki.root), 0);
}

static void test_adcs_denied_code_from_status_page(void **state)
{
    (void)state;
    assert_int_equal(run("adcs", "/g5/certsrv", "WebServer"), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.request_id, "45");
    assert_string_equal(T.res.reason, "Denied by Policy Module");
    assert_string_equal(T.res.code, "0x80094012");
}

/* The schemes of every WWW-Authenticate header reach the message; a CA is
 * sent no Azure request id. */
static void test_adcs_401_lists_schemes(void **state)
{
    (void)state;
    assert_int_equal(run("adcs", "/a1/certsrv", "WebServer"), CLC_ERR_AUTH);
    assert_non_null(
        strstr(T.ei.msg, "credentials refused (HTTP 401; server offers Negotiate, NTLM, Basic)"));
    assert_int_equal(T.ei.http_status, 401);
    assert_false(T.saw_azure_request_id);
}

static void test_est_answers(void **state)
{
    (void)state;
    assert_int_equal(run("est", "/e1/est", NULL), CLC_ERR_PARSE);
    assert_int_equal(run("est", "/e2/est", NULL), CLC_ERR_CRYPTO);
    assert_null(T.res.chain);
    assert_int_equal(run("est", "/e3/est", NULL), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    assert_int_equal(T.res.retry_after_s, 120);
    assert_int_equal(strncmp(T.res.request_id, "est-", 4), 0);
    assert_int_equal(run("est", "/e4/est", NULL), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_ISSUED);
    assert_int_equal(sk_X509_num(T.res.chain), 3); /* leaf + cacerts, ordered */
    assert_int_equal(run("est", "/e5/est", NULL), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.reason, "subject not allowed");
    assert_string_equal(T.res.code, "HTTP 400");
    assert_int_equal(run("est", "/e6/est", NULL), CLC_ERR_UNAVAILABLE);
    assert_true(T.res.retryable);
    /* A label that could change the path is refused. */
    assert_int_equal(run("est", "/e4/est", "../x"), CLC_ERR_INVALID);
}

/* The transport keeps working over a handle's whole life when each request
 * meets a dead reused connection (libcurl 7.88 counts those retries per
 * handle unless reset; the sixth used to fail). */
static void test_transport_dead_reused_connections(void **state)
{
    struct test_dropper d;
    struct clc_ca_http *h = NULL;
    struct clc_ca_http_resp r;
    struct clc_errinfo ei;
    char base[64], url[96];

    (void)state;
    assert_int_equal(test_dropper_start(&d), 0);
    snprintf(base, sizeof base, "http://127.0.0.1:%d/certsrv", d.port);
    snprintf(url, sizeof url, "%s/x", base);
    struct clc_ca_conf c = {.name = "dropper",
                            .type = CLC_CA_ADCS,
                            .url = base,
                            .auth = CLC_CA_AUTH_NONE,
                            .user_agent = "certlc-test",
                            .connect_timeout_ms = 5000,
                            .timeout_ms = 10000,
                            .max_response = 4096};
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_ca_http_new(&c, &h, &ei), CLC_OK);
    clc_ca_http_resp_init(&r);
    for (int i = 0; i < 12; i++) {
        if (clc_ca_http_do(h, "GET", url, NULL, NULL, 0, &r, &ei) != CLC_OK)
            fail_msg("request %d: %s", i + 1, ei.msg);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body.len, 2);
    }
    clc_ca_http_resp_cleanup(&r);
    clc_ca_http_free(h);
    test_dropper_stop(&d);
    assert_int_equal(d.accepted, 12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adcs_garbage_and_wrong_key),
        cmocka_unit_test(test_adcs_root_first_chain),
        cmocka_unit_test(test_adcs_denied_code_from_status_page),
        cmocka_unit_test(test_adcs_401_lists_schemes),
        cmocka_unit_test(test_est_answers),
        cmocka_unit_test(test_transport_dead_reused_connections),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
