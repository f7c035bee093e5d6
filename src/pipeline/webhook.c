/* The webhook's HTTPS server on civetweb: loads and checks the certificate
 * and key, starts TLS (with the OpenSSL 3 compatibility library), reads
 * request bodies within the limit and hands each request to the handler. */
#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/log.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "net/civetweb_tls.h"
#include "pipeline/webhook.h"

#define CERT_FILE_MAX ((size_t)1024 * 1024)
#define READ_CHUNK 8192
/* Bytes of an oversized body read and dropped so the client still gets
 * the 413 instead of a reset connection. */
#define DRAIN_MAX ((size_t)1024 * 1024)
#define HEADERS_MAX 64

struct clc_webhook {
    struct mg_context *mg;
    struct clc_webhook_core *core;
    STACK_OF(X509) * chain; /* leaf first */
    struct clc_signer *key;
    int port;
    int lib_inited;
};

struct clc_webhook_core *clc_webhook_core_of(struct clc_webhook *w)
{
    return w->core;
}

int clc_webhook_port(const struct clc_webhook *w)
{
    return w->port;
}

/* ---- certificate and key ---- */

static enum clc_err load_tls_files(struct clc_webhook *w, const char *cert_file,
                                   const char *key_file, struct clc_errinfo *ei)
{
    char *pem = NULL;
    size_t len = 0;
    struct stat st;
    X509 *leaf;
    enum clc_err rc;

    if (cert_file == NULL || key_file == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "the webhook serves HTTPS only: set webhook.certificate_file and "
                        "webhook.key_file");
    rc = clc_file_read(cert_file, CERT_FILE_MAX, &pem, &len, ei);
    if (rc == CLC_OK)
        rc = clc_x509_parse_pem_chain(pem, len, &w->chain, ei);
    free(pem);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "webhook.certificate_file %s", cert_file);
    rc = clc_signer_load_pem(key_file, &w->key, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "webhook.key_file %s", key_file);
    leaf = sk_X509_value(w->chain, 0);
    if (X509_check_private_key(leaf, clc_signer_pkey(w->key)) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_CONFIG, "webhook.key_file %s is not the key of %s", key_file,
                        cert_file);
    }
    if (X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
        clc_log(CLC_LOG_WARN, "webhook.certificate_expired", CLC_LS("path", cert_file));
    if (stat(key_file, &st) == 0 && (st.st_mode & 077) != 0)
        clc_log(CLC_LOG_WARN, "webhook.key_file_readable_by_others", CLC_LS("path", key_file));
    return CLC_OK;
}

/* civetweb's TLS set-up hook: our certificate, chain and key instead of its
 * single cert+key PEM file (we keep the key out of any file we write). */
static int on_init_ssl(void *ssl_ctx, void *user_data)
{
    struct clc_webhook *w = user_data;
    SSL_CTX *ctx = ssl_ctx;
    int n = sk_X509_num(w->chain);

    if (SSL_CTX_use_certificate(ctx, sk_X509_value(w->chain, 0)) != 1)
        goto fail;
    for (int i = 1; i < n; i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(w->chain, i)) != 1)
            goto fail;
    if (SSL_CTX_use_PrivateKey(ctx, clc_signer_pkey(w->key)) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1 ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail;
    return 1;
fail:
    clc_log(CLC_LOG_ERROR, "webhook.tls_setup_failed",
            CLC_LS("reason", ERR_reason_error_string(ERR_peek_last_error())));
    ERR_clear_error();
    return -1;
}

/* ---- requests ---- */

/* Reads the body: 0 when whole, 1 when over max (then at most DRAIN_MAX
 * more is read and dropped; *close set when the rest is left unread), -1
 * when the connection failed. */
static int read_body(struct mg_connection *conn, const struct mg_request_info *ri, size_t max,
                     struct clc_buf *body, int *close)
{
    const char *te = mg_get_header(conn, "Transfer-Encoding");
    char chunk[READ_CHUNK];
    size_t dropped = 0;
    int over = 0, n;

    if (ri->content_length >= 0 && (unsigned long long)ri->content_length > max) {
        const char *expect = mg_get_header(conn, "Expect");
        /* A client waiting for "100 Continue" sends nothing more: answer now. */
        if ((expect != NULL && strcasecmp(expect, "100-continue") == 0) ||
            (unsigned long long)ri->content_length - max > DRAIN_MAX) {
            *close = 1;
            return 1;
        }
        over = 1;
    } else if (ri->content_length <= 0 && (te == NULL || strcasecmp(te, "identity") == 0)) {
        return 0; /* HTTP/1.1 without a length or chunking has no body */
    }
    for (;;) {
        n = mg_read(conn, chunk, sizeof chunk);
        if (n < 0) {
            *close = 1;
            return -1;
        }
        if (n == 0)
            break;
        if (!over && clc_buf_append(body, chunk, (size_t)n) != CLC_OK) {
            over = 1;
            clc_buf_reset(body);
        }
        if (over) {
            dropped += (size_t)n;
            if (dropped > DRAIN_MAX) {
                *close = 1;
                break;
            }
        }
    }
    return over;
}

static void send_resp(struct mg_connection *conn, const char *method,
                      const struct clc_webhook_resp *resp)
{
    char head[1024];
    size_t used;
    int k;

    k = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\nCache-Control: no-store\r\n", resp->status,
                 mg_get_response_code_text(conn, resp->status));
    used = k > 0 ? (size_t)k : 0;
    if (resp->content_type != NULL && used < sizeof head) {
        k = snprintf(head + used, sizeof head - used, "Content-Type: %s\r\n", resp->content_type);
        used += k > 0 ? (size_t)k : 0;
    }
    for (size_t i = 0; i < resp->nheaders && used < sizeof head; i++) {
        k = snprintf(head + used, sizeof head - used, "%s\r\n", resp->headers[i]);
        used += k > 0 ? (size_t)k : 0;
    }
    if (used < sizeof head) {
        k = snprintf(head + used, sizeof head - used, "Content-Length: %zu\r\n%s\r\n",
                     resp->body.len, resp->close ? "Connection: close\r\n" : "");
        used += k > 0 ? (size_t)k : 0;
    }
    if (used >= sizeof head) {
        /* Our own headers are short: this is a bug, not input. */
        clc_log(CLC_LOG_ERROR, "webhook.reply_head_too_large", CLC_LI("status", resp->status));
        return;
    }
    if (resp->close)
        mg_disable_keep_alive(conn);
    mg_write(conn, head, used);
    if (resp->body.len > 0 && strcmp(method, "HEAD") != 0)
        mg_write(conn, resp->body.data, resp->body.len);
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    struct clc_webhook *w = cbdata;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct clc_webhook_header hdrs[HEADERS_MAX];
    struct clc_webhook_req req;
    struct clc_webhook_resp resp;
    struct clc_buf body;
    int close = 0, over = 0, status;
    size_t nh = 0;

    clc_buf_init(&body, clc_webhook_core_max_body(w->core));
    for (int i = 0; i < ri->num_headers && nh < HEADERS_MAX; i++) {
        hdrs[nh].name = ri->http_headers[i].name;
        hdrs[nh].value = ri->http_headers[i].value;
        nh++;
    }
    /* Only deliveries have bodies worth reading; others are left unread
     * and the connection closed after the reply. */
    if (strcmp(ri->request_method, "POST") == 0) {
        over = read_body(conn, ri, clc_webhook_core_max_body(w->core), &body, &close);
        if (over < 0) {
            clc_buf_cleanup(&body);
            clc_log(CLC_LOG_WARN, "webhook.body_read_failed", CLC_LS("remote", ri->remote_addr));
            return 400;
        }
    } else if (ri->content_length > 0 || mg_get_header(conn, "Transfer-Encoding") != NULL) {
        close = 1;
    }
    memset(&req, 0, sizeof req);
    req.method = ri->request_method;
    req.path = ri->local_uri_raw ? ri->local_uri_raw : "";
    req.query = ri->query_string;
    req.headers = hdrs;
    req.nheaders = nh;
    req.body = clc_buf_str(&body);
    req.body_len = body.len;
    req.body_too_large = over;
    req.remote = ri->remote_addr;
    clc_webhook_handle(w->core, &req, &resp);
    if (close)
        resp.close = 1;
    send_resp(conn, ri->request_method, &resp);
    status = resp.status;
    clc_webhook_resp_cleanup(&resp);
    clc_buf_cleanup(&body);
    return status;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    char line[256];

    (void)conn;
    /* civetweb may quote the request line: cut before any query string. */
    snprintf(line, sizeof line, "%s", message ? message : "");
    line[strcspn(line, "?\r\n")] = '\0';
    clc_log(CLC_LOG_DEBUG, "webhook.civetweb", CLC_LS("message", line));
    return 1;
}

/* ---- life cycle ---- */

enum clc_err clc_webhook_start(const struct clc_webhook_opts *o, const struct clc_webhook_hooks *h,
                               struct clc_webhook **out, struct clc_errinfo *ei)
{
    struct clc_webhook *w;
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data err;
    struct mg_server_port sp[4];
    char ports[128], threads[16], errtext[256] = "";
    unsigned errcode = 0;
    const char *listen = o->listen ? o->listen : "0.0.0.0";
    const char *opts[32];
    size_t k = 0;
    enum clc_err rc;

    *out = NULL;
    if (o->port < 0 || o->port > 65535)
        return clc_errf(ei, CLC_ERR_CONFIG, "webhook.port %d is out of range", o->port);
    if (strlen(listen) > 64 || strpbrk(listen, ",[]/ ") != NULL)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "webhook.listen must be one IPv4 or IPv6 address (e.g. 0.0.0.0, ::)");
    w = calloc(1, sizeof *w);
    if (w == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = clc_webhook_core_new(o->secret, o->max_body_bytes, o->filter, h, &w->core, ei);
    if (rc == CLC_OK)
        rc = load_tls_files(w, o->cert_file, o->key_file, ei);
    if (rc == CLC_OK)
        rc = clc_civetweb_tls_init(o->compat_lib, ei);
    if (rc != CLC_OK)
        goto fail;
    w->lib_inited = 1;

    snprintf(ports, sizeof ports, strchr(listen, ':') ? "[%s]:%ds" : "%s:%ds", listen, o->port);
    snprintf(threads, sizeof threads, "%d", o->threads > 0 ? o->threads : 4);
    opts[k++] = "listening_ports";
    opts[k++] = ports;
    opts[k++] = "num_threads";
    opts[k++] = threads;
    opts[k++] = "ssl_protocol_version";
    opts[k++] = "4"; /* TLS 1.2 and later */
    opts[k++] = "tcp_nodelay";
    opts[k++] = "1";
    opts[k++] = "enable_keep_alive";
    opts[k++] = "yes";
    opts[k++] = "keep_alive_timeout_ms";
    opts[k++] = "5000";
    /* Event Grid waits 30 s for an answer; a client slower than that to
     * send its request is not Event Grid. */
    opts[k++] = "request_timeout_ms";
    opts[k++] = "30000";
    opts[k++] = "decode_url";
    opts[k++] = "no";
    opts[k++] = NULL;

    memset(&cb, 0, sizeof cb);
    cb.init_ssl = on_init_ssl;
    cb.log_message = on_log_message;
    memset(&init, 0, sizeof init);
    init.callbacks = &cb;
    init.user_data = w;
    init.configuration_options = opts;
    memset(&err, 0, sizeof err);
    err.code = &errcode;
    err.text = errtext;
    err.text_buffer_size = sizeof errtext;
    w->mg = mg_start2(&init, &err);
    if (w->mg == NULL) {
        rc = clc_errf(ei, CLC_ERR_NET, "the webhook cannot listen on %s port %d: %s", listen,
                      o->port, errtext[0] ? errtext : "civetweb refused to start");
        goto fail;
    }
    mg_set_request_handler(w->mg, "/", on_request, w);
    if (mg_get_server_ports(w->mg, 4, sp) < 1 || sp[0].port <= 0) {
        rc = clc_errf(ei, CLC_ERR_INTERNAL, "the webhook has no listening port");
        goto fail;
    }
    w->port = sp[0].port;
    clc_log(CLC_LOG_INFO, "webhook.listening", CLC_LS("address", listen), CLC_LI("port", w->port),
            CLC_LS("path", CLC_WEBHOOK_PATH));
    *out = w;
    return CLC_OK;
fail:
    clc_webhook_stop(w);
    return rc;
}

void clc_webhook_stop(struct clc_webhook *w)
{
    if (w == NULL)
        return;
    if (w->mg != NULL)
        mg_stop(w->mg);
    if (w->lib_inited)
        clc_civetweb_tls_exit();
    clc_webhook_core_free(w->core);
    sk_X509_pop_free(w->chain, X509_free);
    clc_signer_free(w->key);
    free(w);
}
