/* The emulator's TLS: loads the OpenSSL 3 compatibility library civetweb
 * needs (DESIGN.md §4), keeps a test root CA and a server certificate for
 * localhost/127.0.0.1 in the data dir, and proves one verified handshake. */
#include <arpa/inet.h>
#include <civetweb.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/log.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "emulator/emu_internal.h"
#include "net/civetweb_tls.h"

#define CA_DAYS (10 * 365)
#define SERVER_DAYS 365
/* A server certificate this close to its end is made anew at start. */
#define RENEW_MARGIN_S (30 * 86400)
#define SELFCHECK_TIMEOUT_S 5
#define PEM_MAX ((size_t)64 * 1024)

/* ---- the compatibility library ---- */

/* The loading and its checks are shared with certlc's own servers. */
enum clc_err emu_tls_init_library(struct emu *e, const char *compat_lib, struct clc_errinfo *ei)
{
    enum clc_err rc = clc_civetweb_tls_init(compat_lib, ei);

    if (rc == CLC_OK)
        e->mg_inited = 1;
    return rc;
}

void emu_tls_exit_library(struct emu *e)
{
    if (e->mg_inited)
        clc_civetweb_tls_exit();
    e->mg_inited = 0;
}

/* ---- certificates ---- */

static enum clc_err pkey_pem(EVP_PKEY *k, char **out, size_t *len, struct clc_errinfo *ei)
{
    BIO *b = BIO_new(BIO_s_secmem());
    BUF_MEM *m = NULL;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (b == NULL || PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "encoding the server key failed");
        goto out;
    }
    BIO_get_mem_ptr(b, &m);
    *out = malloc(m->length + 1);
    if (*out == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, m->data, m->length);
    (*out)[m->length] = '\0';
    *len = m->length;
out:
    BIO_free(b);
    return rc;
}

/* server.pem holds certificate then key, as civetweb's ssl_certificate wants. */
static enum clc_err write_server_pem(const char *path, X509 *cert, const struct clc_signer *key,
                                     struct clc_errinfo *ei)
{
    char *cert_pem = NULL, *key_pem = NULL, *all = NULL;
    size_t key_len = 0, cert_len, n;
    enum clc_err rc;

    rc = clc_x509_to_pem(cert, &cert_pem, ei);
    if (rc != CLC_OK)
        goto out;
    rc = pkey_pem(clc_signer_pkey(key), &key_pem, &key_len, ei);
    if (rc != CLC_OK)
        goto out;
    cert_len = strlen(cert_pem);
    n = cert_len + key_len;
    all = malloc(n + 1);
    if (all == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(all, cert_pem, cert_len);
    memcpy(all + cert_len, key_pem, key_len);
    all[n] = '\0';
    rc = clc_file_write_atomic(path, all, n, 0600, ei);
out:
    if (key_pem != NULL)
        OPENSSL_cleanse(key_pem, key_len);
    if (all != NULL)
        OPENSSL_cleanse(all, n);
    free(key_pem);
    free(all);
    free(cert_pem);
    return rc;
}

/* 1 when the certificate is still valid margin_s from now (system time:
 * clients check certificates by their own clock, not the emulator's). */
static int valid_for(X509 *c, int64_t margin_s)
{
    time_t t = time(NULL) + (time_t)margin_s;
    return X509_cmp_time(X509_get0_notAfter(c), &t) > 0 &&
           X509_cmp_current_time(X509_get0_notBefore(c)) < 0;
}

/* Keeps the existing server.pem when it is signed by ca, holds its key and
 * is not near its end. */
static int server_pem_reusable(const char *path, X509 *ca)
{
    X509 *cert = NULL;
    EVP_PKEY *key = NULL, *ca_pub = X509_get0_pubkey(ca);
    FILE *f;
    int ok = 0;

    f = fopen(path, "r");
    if (f == NULL)
        return 0;
    cert = PEM_read_X509(f, NULL, NULL, NULL);
    key = cert ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    fclose(f);
    if (cert != NULL && key != NULL && ca_pub != NULL && X509_verify(cert, ca_pub) == 1 &&
        X509_check_private_key(cert, key) == 1 && valid_for(cert, RENEW_MARGIN_S) &&
        X509_check_host(cert, "localhost", 0, 0, NULL) == 1 &&
        X509_check_ip_asc(cert, "127.0.0.1", 0) == 1)
        ok = 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

static enum clc_err make_ca(const char *cert_path, const char *key_path, X509 **ca,
                            struct clc_signer **ca_key, struct clc_errinfo *ei)
{
    struct clc_x509_spec spec;
    int64_t now = (int64_t)time(NULL);
    enum clc_err rc;

    rc = clc_signer_generate("EC", 256, ca_key, ei);
    if (rc != CLC_OK)
        return rc;
    memset(&spec, 0, sizeof spec);
    spec.subject_cn = "certlc emulator test root CA";
    spec.not_before = now - 3600;
    spec.not_after = now + (int64_t)CA_DAYS * 86400;
    spec.is_ca = 1;
    rc = clc_x509_make(&spec, *ca_key, NULL, *ca_key, ca, ei);
    if (rc != CLC_OK)
        return rc;
    /* Key first: a certificate without its key on disk is useless. */
    rc = clc_signer_save_pem(*ca_key, key_path, ei);
    if (rc != CLC_OK)
        return rc;
    rc = clc_x509_save_pem(ca, 1, cert_path, 0644, ei);
    if (rc == CLC_OK)
        clc_log(CLC_LOG_INFO, "emu.tls.ca_created", CLC_LS("path", cert_path));
    return rc;
}

static enum clc_err make_server(const char *path, X509 *ca, const struct clc_signer *ca_key,
                                struct clc_errinfo *ei)
{
    static const char *const sans[] = {"DNS:localhost", "IP:127.0.0.1", NULL};
    struct clc_signer *key = NULL;
    struct clc_x509_spec spec;
    X509 *cert = NULL;
    int64_t now = (int64_t)time(NULL);
    enum clc_err rc;

    rc = clc_signer_generate("EC", 256, &key, ei);
    if (rc != CLC_OK)
        goto out;
    memset(&spec, 0, sizeof spec);
    spec.subject_cn = "localhost";
    spec.sans = sans;
    spec.not_before = now - 3600;
    spec.not_after = now + (int64_t)SERVER_DAYS * 86400;
    spec.server_auth = 1;
    rc = clc_x509_make(&spec, key, ca, ca_key, &cert, ei);
    if (rc != CLC_OK)
        goto out;
    rc = write_server_pem(path, cert, key, ei);
out:
    X509_free(cert);
    clc_signer_free(key);
    return rc;
}

enum clc_err emu_tls_setup(struct emu *e, struct clc_errinfo *ei)
{
    char *ca_path = emu_work_path(e, "ca.pem"), *key_path = emu_work_path(e, "ca.key");
    char *server_path = emu_work_path(e, "server.pem"),
         *bundle_path = emu_work_path(e, "ca-bundle.pem");
    struct clc_signer *ca_key = NULL;
    X509 *ca = NULL;
    int fresh_ca = 0;
    enum clc_err rc;

    if (!ca_path || !key_path || !server_path || !bundle_path) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (access(ca_path, F_OK) == 0 && access(key_path, F_OK) == 0) {
        rc = clc_x509_load_pem_file(ca_path, &ca, ei);
        if (rc == CLC_OK)
            rc = clc_signer_load_pem(key_path, &ca_key, ei);
        if (rc != CLC_OK) {
            rc = clc_err_wrap(ei, rc,
                              "the emulator's test CA in %s (remove ca.pem and ca.key "
                              "to make a new one)",
                              e->work_dir);
            goto out;
        }
        if (X509_check_private_key(ca, clc_signer_pkey(ca_key)) != 1) {
            ERR_clear_error();
            rc = clc_errf(ei, CLC_ERR_CRYPTO, "%s does not belong to %s", key_path, ca_path);
            goto out;
        }
        if (!valid_for(ca, RENEW_MARGIN_S)) {
            clc_log(CLC_LOG_WARN, "emu.tls.ca_expiring", CLC_LS("path", ca_path));
            X509_free(ca);
            clc_signer_free(ca_key);
            ca = NULL;
            ca_key = NULL;
        }
    }
    if (ca == NULL) {
        rc = make_ca(ca_path, key_path, &ca, &ca_key, ei);
        if (rc != CLC_OK)
            goto out;
        fresh_ca = 1;
    }
    if (fresh_ca || !server_pem_reusable(server_path, ca)) {
        rc = make_server(server_path, ca, ca_key, ei);
        if (rc != CLC_OK)
            goto out;
    }
    rc = clc_x509_save_pem(&ca, 1, bundle_path, 0644, ei);
    if (rc != CLC_OK)
        goto out;
    e->ca_bundle = bundle_path;
    e->server_pem = server_path;
    bundle_path = NULL;
    server_path = NULL;
out:
    X509_free(ca);
    clc_signer_free(ca_key);
    free(ca_path);
    free(key_path);
    free(server_path);
    free(bundle_path);
    return rc;
}

/* ---- the self-check ---- */

static void ssl_reason(char *out, size_t n)
{
    unsigned long code = ERR_get_error();

    if (code == 0)
        snprintf(out, n, "no OpenSSL error recorded");
    else
        ERR_error_string_n(code, out, n);
    ERR_clear_error();
}

enum clc_err emu_tls_selfcheck(const char *ca_bundle, int port, struct clc_errinfo *ei)
{
    struct timeval tv = {SELFCHECK_TIMEOUT_S, 0};
    struct sockaddr_in sa;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    char reason[256], resp[16];
    int fd, n;
    enum clc_err rc = CLC_OK;
    static const char req[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return clc_errf(ei, CLC_ERR_NET, "TLS self-check: socket: %s", strerror(errno));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        rc = clc_errf(ei, CLC_ERR_NET, "TLS self-check: connecting to 127.0.0.1:%d: %s", port,
                      strerror(errno));
        goto out;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_load_verify_locations(ctx, ca_bundle, NULL) != 1) {
        ssl_reason(reason, sizeof reason);
        rc = clc_errf(ei, CLC_ERR_TLS, "TLS self-check: loading %s: %s", ca_bundle, reason);
        goto out;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), "127.0.0.1") != 1) {
        ssl_reason(reason, sizeof reason);
        rc = clc_errf(ei, CLC_ERR_TLS, "TLS self-check: %s", reason);
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        long vr = SSL_get_verify_result(ssl);
        ssl_reason(reason, sizeof reason);
        rc = clc_errf(ei, CLC_ERR_TLS,
                      "TLS self-check: handshake with 127.0.0.1:%d failed: %s (verify: %s)", port,
                      reason, X509_verify_cert_error_string(vr));
        goto out;
    }
    /* A request too, so civetweb's whole TLS path (where the missing 1.1
     * symbol used to crash it) has run once. */
    if (SSL_write(ssl, req, (int)sizeof req - 1) != (int)sizeof req - 1 ||
        (n = SSL_read(ssl, resp, (int)sizeof resp - 1)) < 9 || memcmp(resp, "HTTP/1.", 7) != 0) {
        ssl_reason(reason, sizeof reason);
        rc = clc_errf(ei, CLC_ERR_TLS, "TLS self-check: no HTTP answer over TLS from port %d: %s",
                      port, reason);
        goto out;
    }
    SSL_shutdown(ssl);
out:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();
    return rc;
}
