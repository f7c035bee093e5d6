/* The SMTP sink tests' fixture (see smtp_fixture.h). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/buf.h"
#include "emulator/emu.h"
#include "emulator/smtp.h"
#include "smtp_fixture.h"
#include "support/emu_admin.h"

struct smtpfx sfx;

#define IO_TIMEOUT_S 5

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    return clc_buf_append(ud, p, sz * n) == CLC_OK ? sz * n : 0;
}

static long http(const char *method, const char *url, const char *const *hdrs, const char *body,
                 struct clc_buf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *sl = NULL;
    long status = 0;

    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_CAINFO, emu_ca_bundle(sfx.emu));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
        sl = curl_slist_append(sl, hdrs[i]);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, sl);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(sl);
    curl_easy_cleanup(c);
    return status;
}

cJSON *sfx_mailbox(const char *method, const char *path, long *status)
{
    char url[512];
    struct clc_buf b;
    cJSON *j;

    snprintf(url, sizeof url, "%s%s", emu_service_url(sfx.emu, "mailbox"), path);
    clc_buf_init(&b, 8 * 1024 * 1024);
    *status = http(method, url, NULL, NULL, &b);
    j = b.len ? cJSON_Parse(b.data) : NULL;
    clc_buf_cleanup(&b);
    return j;
}

int sfx_count(const char *to)
{
    char path[512];
    long st = 0;
    cJSON *j;
    int n;

    if (to != NULL) {
        char *esc = curl_easy_escape(NULL, to, 0);
        snprintf(path, sizeof path, "/messages?to=%s", esc);
        curl_free(esc);
    } else {
        snprintf(path, sizeof path, "/messages");
    }
    j = sfx_mailbox("GET", path, &st);
    assert_int_equal(st, 200);
    n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "count"));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "messages")), n);
    cJSON_Delete(j);
    return n;
}

long sfx_control(const char *method, const char *path, const char *body)
{
    return test_emu_admin_call(sfx.emu, NULL, method, path, body, NULL);
}

int sfx_start(const char *config_json)
{
    struct emu_opts o = {.quiet = 1};
    struct clc_errinfo ei = {0};
    char *text = NULL;
    FILE *f;

    memset(&sfx, 0, sizeof sfx);
    snprintf(sfx.dir, sizeof sfx.dir, "/tmp/clc-smtp-test-XXXXXX");
    if (mkdtemp(sfx.dir) == NULL)
        return -1;
    if (config_json != NULL) {
        snprintf(sfx.config, sizeof sfx.config, "%s/config.json", sfx.dir);
        f = fopen(sfx.config, "w");
        if (f == NULL)
            return -1;
        fputs(config_json, f);
        fclose(f);
        o.config_file = sfx.config;
    }
    if (emu_start(&o, &sfx.emu, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    if (emu_endpoints_json(sfx.emu, &text, &ei) != CLC_OK)
        return -1;
    sfx.endpoints = cJSON_Parse(text);
    free(text);
    sfx.password = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(sfx.endpoints, "smtp_accounts"), "certlc"));
    return sfx.endpoints != NULL ? 0 : -1;
}

void sfx_stop(void)
{
    test_emu_admin_forget(sfx.emu);
    emu_stop(sfx.emu);
    cJSON_Delete(sfx.endpoints);
    if (sfx.config[0] != '\0')
        unlink(sfx.config);
    rmdir(sfx.dir);
    memset(&sfx, 0, sizeof sfx);
}

int sfx_port(const char *kind)
{
    const char *url = emu_smtp_url(sfx.emu, kind);
    const char *colon = url ? strrchr(url, ':') : NULL;

    return colon ? atoi(colon + 1) : 0;
}

/* ---- raw client ---- */

int rawc_connect(struct rawc *c, int port)
{
    struct sockaddr_in sa = {0};
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};

    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)port);
    return connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
}

void rawc_close(struct rawc *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    if (c->fd >= 0)
        close(c->fd);
    c->ssl = NULL;
    c->ctx = NULL;
    c->fd = -1;
}

int rawc_tls(struct rawc *c)
{
    c->ctx = SSL_CTX_new(TLS_client_method());
    if (c->ctx == NULL || SSL_CTX_load_verify_locations(c->ctx, emu_ca_bundle(sfx.emu), NULL) != 1)
        return -1;
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1") != 1)
        return -1;
    c->len = 0;
    if (SSL_connect(c->ssl) != 1) {
        ERR_clear_error();
        return -1;
    }
    return 0;
}

int rawc_send(struct rawc *c, const char *data, size_t n)
{
    while (n > 0) {
        int w = c->ssl ? SSL_write(c->ssl, data, (int)n) : (int)send(c->fd, data, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fill(struct rawc *c)
{
    int n;

    if (c->len >= sizeof c->buf)
        return -1;
    n = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
               : (int)recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0) {
        ERR_clear_error();
        return -1;
    }
    c->len += (size_t)n;
    return 0;
}

int rawc_reply(struct rawc *c)
{
    size_t out = 0;

    c->last[0] = '\0';
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        size_t ll;
        if (nl == NULL) {
            if (fill(c) != 0)
                return -1;
            continue;
        }
        ll = (size_t)(nl - c->buf) + 1;
        if (out + ll < sizeof c->last) {
            memcpy(c->last + out, c->buf, ll);
            out += ll;
            c->last[out] = '\0';
        }
        memmove(c->buf, c->buf + ll, c->len - ll);
        c->len -= ll;
        /* "250-..." continues, "250 ..." ends the reply. */
        if (ll >= 4 && c->last[out - ll + 3] != '-')
            return atoi(c->last + out - ll);
    }
}

int rawc_cmd(struct rawc *c, const char *line)
{
    char buf[4096];

    snprintf(buf, sizeof buf, "%s\r\n", line);
    if (rawc_send(c, buf, strlen(buf)) != 0)
        return -1;
    return rawc_reply(c);
}

int rawc_closed(struct rawc *c)
{
    char b[256];
    int n;

    for (int i = 0; i < 100; i++) {
        n = c->ssl ? SSL_read(c->ssl, b, sizeof b) : (int)recv(c->fd, b, sizeof b, 0);
        if (n <= 0) {
            ERR_clear_error();
            return n == 0 || c->ssl != NULL || errno != EAGAIN;
        }
    }
    return 0;
}

void rawc_plain(const char *user, const char *pass, char *out, size_t outlen)
{
    char raw[512];
    size_t n = 0;
    char *b64 = NULL;

    raw[n++] = '\0';
    memcpy(raw + n, user, strlen(user));
    n += strlen(user);
    raw[n++] = '\0';
    memcpy(raw + n, pass, strlen(pass));
    n += strlen(pass);
    assert_int_equal(clc_b64_encode(raw, n, &b64, NULL), CLC_OK);
    snprintf(out, outlen, "%s", b64);
    free(b64);
}

int rawc_login(struct rawc *c, int port)
{
    char cmd[600], b64[512];

    if (rawc_connect(c, port) != 0 || rawc_reply(c) != 220 || rawc_cmd(c, "EHLO test") != 250 ||
        rawc_cmd(c, "STARTTLS") != 220 || rawc_tls(c) != 0 || rawc_cmd(c, "EHLO test") != 250)
        return 0;
    rawc_plain("certlc", sfx.password, b64, sizeof b64);
    snprintf(cmd, sizeof cmd, "AUTH PLAIN %s", b64);
    return rawc_cmd(c, cmd) == 235;
}
