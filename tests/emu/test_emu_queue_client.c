/* Test support for the Storage emulator tests (see test_emu_queue_client.h):
 * the emulator, and a deliberately plain re-statement of Azure's SharedKey
 * and SAS signing rules, so the tests check the emulator against the
 * documented rules rather than against its own code. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/b64.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/secret.h"
#include "emulator/directory.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "support/emu_admin.h"
#include "test_emu_queue_client.h"

#define VERSION "2021-12-02"
#define REQ_ID "0d5c3d7e-6f0a-4d55-9b8e-8d2b4f1c0a11"

struct qt QT;

static int64_t now_ms(void *ctx)
{
    (void)ctx;
    return emu_now_ms(QT.e);
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    size_t n = strlen(text);
    int ok;

    if (fd < 0)
        return -1;
    ok = write(fd, text, n) == (ssize_t)n;
    close(fd);
    return ok ? 0 : -1;
}

static int start(int64_t start_time)
{
    struct clc_errinfo ei = {0};
    struct emu_opts o = {
        .data_dir = QT.data_dir, .config_file = QT.config, .quiet = 1, .start_time = start_time};
    struct clc_http_opts ho = {.timeout_ms = 10000, .clock = &QT.clock};

    if (emu_start(&o, &QT.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    QT.clock.now_ms = now_ms;
    ho.ca_bundle = emu_ca_bundle(QT.e);
    clc_http_free(QT.http);
    QT.http = NULL;
    if (clc_http_new(&ho, &QT.http, &ei) != CLC_OK) {
        fprintf(stderr, "http: %s\n", ei.msg);
        return -1;
    }
    return 0;
}

int qt_setup(void)
{
    char cfg[2048];

    memset(&QT, 0, sizeof QT);
    snprintf(QT.dir, sizeof QT.dir, "/tmp/clc-storemu-XXXXXX");
    if (mkdtemp(QT.dir) == NULL)
        return -1;
    snprintf(QT.data_dir, sizeof QT.data_dir, "%s/data", QT.dir);
    snprintf(QT.config, sizeof QT.config, "%s/config.json", QT.dir);
    snprintf(cfg, sizeof cfg,
             "{\"storage\": {\"accounts\": ["
             "{\"name\": \"" QT_DEV "\", \"key\": \"" QT_DEV_KEY "\"},"
             "{\"name\": \"" QT_ACCT2 "\", \"key\": \"" QT_ACCT2_KEY
             "\", \"key2\": \"" QT_ACCT2_KEY2 "\"}]},"
             " \"identities\": ["
             "{\"name\": \"queuer\", \"roles\": [\"Storage Queue Data Contributor\"]},"
             "{\"name\": \"blobber\", \"roles\": [\"Storage Blob Data Contributor\"]},"
             "{\"name\": \"nobody\", \"roles\": [\"Key Vault Reader\"]},"
             "{\"name\": \"admin\", \"roles\": [\"admin\"]}]}");
    if (write_file(QT.config, cfg) != 0)
        return -1;
    return start(0);
}

int qt_restart(void)
{
    int64_t now = emu_now(QT.e);

    test_emu_admin_forget(QT.e);
    emu_stop(QT.e);
    QT.e = NULL;
    return start(now);
}

void qt_teardown(void)
{
    char cmd[400];

    test_emu_admin_forget(QT.e);
    emu_stop(QT.e);
    clc_http_free(QT.http);
    if (strncmp(QT.dir, "/tmp/clc-storemu-", 17) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", QT.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", QT.dir);
    }
    memset(&QT, 0, sizeof QT);
}

char *qt_token(const char *identity, const char *aud)
{
    struct emu_directory *d = emu_directory_of(QT.e);
    cJSON *ids = emu_directory_endpoints(d);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(ids, identity);
    const char *cid = NULL;
    struct emu_principal p;
    char *jwt = NULL;

    if (id != NULL && clc_json_str(id, "client_id", &cid, NULL) == CLC_OK &&
        emu_directory_find(d, cid, &p))
        emu_directory_mint(d, &p, aud ? aud : "https://storage.azure.com", &jwt, NULL, NULL, NULL);
    cJSON_Delete(ids);
    return jwt;
}

/* ---- signing, as Azure documents it ---- */

static int hexv(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;

    for (size_t i = 0; o != NULL && i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
            o[k++] = (char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    if (o != NULL)
        o[k] = '\0';
    return o;
}

char *qt_enc(const char *s)
{
    struct clc_buf b;

    clc_buf_init(&b, 1 << 20);
    clc_http_urlencode(&b, s);
    return clc_buf_take(&b, NULL);
}

static char *hmac_b64(const char *key_b64, const char *text)
{
    unsigned char *key = NULL, mac[64];
    unsigned int maclen = 0;
    size_t keylen = 0;
    char *out = NULL;

    if (clc_b64_decode(key_b64, strlen(key_b64), &key, &keylen) != CLC_OK)
        return NULL;
    if (HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)text, strlen(text), mac,
             &maclen) != NULL)
        clc_b64_encode(mac, maclen, &out, NULL);
    free(key);
    return out;
}

struct pair {
    char *k, *v;
};

static int pair_cmp(const void *a, const void *b)
{
    const struct pair *x = a, *y = b;
    int c = strcmp(x->k, y->k);
    return c ? c : strcmp(x->v, y->v);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

/* "/acct/path\nk:v..." from the raw target. */
static void canon_resource(struct clc_buf *b, const char *acct, const char *target)
{
    const char *q = strchr(target, '?');
    struct pair p[32];
    size_t n = 0;

    clc_buf_appendf(b, "/%s%.*s", acct, (int)(q ? (size_t)(q - target) : strlen(target)), target);
    for (const char *s = q ? q + 1 : NULL; s != NULL && *s && n < 32;) {
        const char *amp = strchr(s, '&'), *e = amp ? amp : s + strlen(s);
        const char *eq = memchr(s, '=', (size_t)(e - s));
        p[n].k = pct_decode(s, (size_t)((eq ? eq : e) - s));
        p[n].v = eq ? pct_decode(eq + 1, (size_t)(e - eq - 1)) : strdup("");
        lower(p[n].k);
        n++;
        s = amp ? amp + 1 : NULL;
    }
    qsort(p, n, sizeof p[0], pair_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(p[i].k, p[i - 1].k) == 0)
            clc_buf_appendf(b, ",%s", p[i].v);
        else
            clc_buf_appendf(b, "\n%s:%s", p[i].k, p[i].v);
    }
    for (size_t i = 0; i < n; i++) {
        free(p[i].k);
        free(p[i].v);
    }
}

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static const char *find_hdr(const char *const *h, const char *name, const char *dflt)
{
    size_t n = strlen(name);

    for (size_t i = 0; h != NULL && h[i] != NULL; i++)
        if (strncasecmp(h[i], name, n) == 0 && h[i][n] == ':')
            return h[i] + n + 1 + (h[i][n + 1] == ' ');
    return dflt;
}

static char *sign(const char *method, const char *acct, const char *target, const char *key,
                  int lite, const char *const *all, const char *clen)
{
    struct clc_buf b;
    char *xms[40], *sig;
    size_t n = 0;
    const char *ctype = find_hdr(all, "Content-Type", "");
    const char *md5 = find_hdr(all, "Content-MD5", "");

    clc_buf_init(&b, 1 << 20);
    if (lite)
        clc_buf_appendf(&b, "%s\n%s\n%s\n\n", method, md5, ctype);
    else
        clc_buf_appendf(&b, "%s\n\n\n%s\n%s\n%s\n\n\n\n\n\n\n", method, clen, md5, ctype);
    for (size_t i = 0; all[i] != NULL && n < 40; i++) {
        if (strncasecmp(all[i], "x-ms-", 5) != 0)
            continue;
        xms[n] = strdup(all[i]);
        *strchr(xms[n], ':') = '\0';
        lower(xms[n]);
        n++;
    }
    qsort(xms, n, sizeof xms[0], hdr_cmp);
    for (size_t i = 0; i < n; i++) {
        clc_buf_appendf(&b, "%s:%s\n", xms[i], find_hdr(all, xms[i], ""));
        free(xms[i]);
    }
    if (lite) {
        const char *q = strchr(target, '?'), *comp = q ? strstr(q, "comp=") : NULL;
        clc_buf_appendf(&b, "/%s%.*s", acct, (int)(q ? (size_t)(q - target) : strlen(target)),
                        target);
        if (comp != NULL)
            clc_buf_appendf(&b, "?comp=%.*s", (int)strcspn(comp + 5, "&"), comp + 5);
    } else {
        canon_resource(&b, acct, target);
    }
    sig = hmac_b64(key, clc_buf_str(&b));
    clc_buf_cleanup(&b);
    return sig;
}

long qt_req(const char *service, const char *method, const char *target, const char *auth,
            const char *const *headers, const char *body, size_t len, struct clc_http_resp *resp)
{
    char url[4096], date[64], acct[64], clen[24] = "", datehdr[80], authv[512];
    const char *all[48], *signed_hdrs[50];
    const char *key = NULL;
    struct clc_secret *sec = NULL;
    struct clc_errinfo ei = {0};
    int has_ct = find_hdr(headers, "Content-Type", NULL) != NULL, lite = 0;
    size_t k = 0;
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .headers = all,
                               .body = body,
                               .body_len = len,
                               .client_request_id = REQ_ID};

    clc_http_resp_init(resp);
    snprintf(url, sizeof url, "%s%s", emu_service_url(QT.e, service), target);
    snprintf(acct, sizeof acct, "%.*s", (int)strcspn(target + 1, "/?"), target + 1);
    clc_time_fmt_rfc1123(emu_now(QT.e), date);
    snprintf(datehdr, sizeof datehdr, "x-ms-date: %s", date);
    if (find_hdr(headers, "x-ms-version", NULL) == NULL)
        all[k++] = "x-ms-version: " VERSION;
    all[k++] = datehdr;
    if (body != NULL && !has_ct)
        all[k++] = "Content-Type: application/xml";
    for (size_t i = 0; headers != NULL && headers[i] != NULL && k < 40; i++)
        all[k++] = headers[i];
    all[k] = NULL;
    /* clc_http sends the request id itself; it is signed like any x-ms-*. */
    for (size_t i = 0; i <= k; i++)
        signed_hdrs[i] = all[i];
    signed_hdrs[k] = "x-ms-client-request-id: " REQ_ID;
    signed_hdrs[k + 1] = NULL;
    /* curl sends Content-Length for every POST and PUT; 0 signs as "". */
    if (body != NULL && len > 0)
        snprintf(clen, sizeof clen, "%zu", len);
    if (strcmp(auth, "key") == 0 || strcmp(auth, "lite") == 0)
        key = strcmp(acct, QT_ACCT2) == 0 ? QT_ACCT2_KEY : QT_DEV_KEY;
    else if (strcmp(auth, "key2") == 0)
        key = QT_ACCT2_KEY2;
    else if (strncmp(auth, "key:", 4) == 0)
        key = auth + 4;
    lite = strcmp(auth, "lite") == 0;
    if (key != NULL) {
        char *sig = sign(method, acct, target, key, lite, signed_hdrs, clen);
        snprintf(authv, sizeof authv, "%s %s:%s", lite ? "SharedKeyLite" : "SharedKey", acct,
                 sig ? sig : "");
        free(sig);
        clc_secret_new(authv, strlen(authv), &sec);
    } else if (strncmp(auth, "bearer:", 7) == 0) {
        struct clc_buf bb;
        clc_buf_init(&bb, 1 << 16);
        clc_buf_appendf(&bb, "Bearer %s", auth + 7);
        clc_secret_new(clc_buf_str(&bb), bb.len, &sec);
        clc_buf_cleanup(&bb);
    }
    req.authorization = sec;
    if (clc_http_do(QT.http, &req, resp, &ei) != CLC_OK) {
        fprintf(stderr, "%s %s: %s\n", method, url, ei.msg);
        clc_secret_free(sec);
        return 0;
    }
    clc_secret_free(sec);
    return resp->status;
}

long qt_key(const char *service, const char *method, const char *target, const char *body,
            struct clc_http_resp *resp)
{
    return qt_req(service, method, target, "key", NULL, body, body ? strlen(body) : 0, resp);
}

char *qt_msg_body(const char *text)
{
    struct clc_buf b;

    clc_buf_init(&b, 1 << 22);
    clc_buf_appendf(&b, "<QueueMessage><MessageText>%s</MessageText></QueueMessage>", text);
    return clc_buf_take(&b, NULL);
}

char *qt_xml(const struct clc_http_resp *resp, const char *name)
{
    char open[128], close[128];
    const char *body = clc_buf_str(&resp->body), *s, *e;

    snprintf(open, sizeof open, "<%s>", name);
    snprintf(close, sizeof close, "</%s>", name);
    s = strstr(body, open);
    if (s == NULL)
        return NULL;
    s += strlen(open);
    e = strstr(s, close);
    return e ? strndup(s, (size_t)(e - s)) : NULL;
}

int qt_count(const struct clc_http_resp *resp, const char *name)
{
    char open[128];
    int n = 0;

    snprintf(open, sizeof open, "<%s>", name);
    for (const char *s = clc_buf_str(&resp->body); (s = strstr(s, open)) != NULL; s++)
        n++;
    return n;
}

void qt_assert_error(const struct clc_http_resp *resp, long status, const char *code)
{
    const char *h = clc_http_resp_header(resp, "x-ms-error-code");
    char *c = qt_xml(resp, "Code");

    if (resp->status != status || h == NULL || strcmp(h, code) != 0 || c == NULL ||
        strcmp(c, code) != 0) {
        free(c);
        fail_msg("expected %ld %s, got %ld %s: %s", status, code, resp->status, h ? h : "(none)",
                 clc_buf_str(&resp->body));
    }
    free(c);
    assert_string_equal(clc_http_resp_header(resp, "Content-Type"), "application/xml");
    assert_non_null(strstr(clc_buf_str(&resp->body), "RequestId:"));
}

/* ---- SAS ---- */

static char *sas_query(struct clc_buf *sts, const char *key, const char *fields)
{
    char *sig = hmac_b64(key, clc_buf_str(sts)), *esig = sig ? qt_enc(sig) : NULL;
    struct clc_buf q;

    clc_buf_init(&q, 1 << 16);
    clc_buf_appendf(&q, "%s&sig=%s", fields, esig ? esig : "");
    free(sig);
    free(esig);
    clc_buf_cleanup(sts);
    return clc_buf_take(&q, NULL);
}

char *qt_account_sas(const char *acct, const char *key_b64, const char *ss, const char *srt,
                     const char *sp, int64_t st, int64_t se)
{
    char tst[40] = "", tse[40], fields[512];
    struct clc_buf b;

    if (st != 0)
        clc_time_fmt_iso8601(st, tst);
    clc_time_fmt_iso8601(se, tse);
    clc_buf_init(&b, 4096);
    /* 2020-12-06 and later add the encryption scope line. */
    clc_buf_appendf(&b, "%s\n%s\n%s\n%s\n%s\n%s\n\nhttps\n" VERSION "\n\n", acct, sp, ss, srt, tst,
                    tse);
    snprintf(fields, sizeof fields, "sv=" VERSION "&ss=%s&srt=%s&sp=%s%s%s&se=%s&spr=https", ss,
             srt, sp, st ? "&st=" : "", tst, tse);
    return sas_query(&b, key_b64, fields);
}

char *qt_queue_sas(const char *acct, const char *key_b64, const char *queue, const char *sp,
                   int64_t st, int64_t se)
{
    char tst[40] = "", tse[40], fields[512];
    struct clc_buf b;

    if (st != 0)
        clc_time_fmt_iso8601(st, tst);
    clc_time_fmt_iso8601(se, tse);
    clc_buf_init(&b, 4096);
    clc_buf_appendf(&b, "%s\n%s\n%s\n/queue/%s/%s\n\n\nhttps\n" VERSION, sp, tst, tse, acct, queue);
    snprintf(fields, sizeof fields, "sv=" VERSION "&sp=%s%s%s&se=%s&spr=https", sp,
             st ? "&st=" : "", tst, tse);
    return sas_query(&b, key_b64, fields);
}

char *qt_blob_sas(const char *acct, const char *key_b64, const char *container, const char *blob,
                  const char *sp, int64_t se)
{
    char tse[40], fields[512];
    struct clc_buf b;
    const char *sr = blob ? "b" : "c";

    clc_time_fmt_iso8601(se, tse);
    clc_buf_init(&b, 4096);
    /* sr, snapshot time, encryption scope, then the five rsc* overrides. */
    clc_buf_appendf(&b, "%s\n\n%s\n/blob/%s/%s%s%s\n\n\nhttps\n" VERSION "\n%s\n\n\n\n\n\n\n", sp,
                    tse, acct, container, blob ? "/" : "", blob ? blob : "", sr);
    snprintf(fields, sizeof fields, "sv=" VERSION "&sr=%s&sp=%s&se=%s&spr=https", sr, sp, tse);
    return sas_query(&b, key_b64, fields);
}
