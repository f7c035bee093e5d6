/* Storage plumbing shared by the queue and blob services: accounts from the
 * config, query and header access, metadata, x-ms-version echo, Azure's XML
 * error body, XML escaping and RFC 1123 times. Auth is in storage_auth.c. */
#include <unistd.h>
#include <errno.h>
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "crypto/hmac.h"
#include "core/log.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "emulator/emu.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "emulator/storage.h"

#define ERROR_BODY_MAX ((size_t)16 * 1024)
#define MAX_HEADERS 64

/* ---- accounts ---- */

static int account_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > 24)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

#define HMAC_BLOCK 64

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256; /* lives as long as the process */

static void sha256_fetch(void)
{
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 with one HMAC key pad absorbed; NULL on failure. */
static EVP_MD_CTX *padded(const unsigned char k0[HMAC_BLOCK], unsigned char x)
{
    unsigned char pad[HMAC_BLOCK];
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    int ok;

    for (size_t i = 0; i < sizeof pad; i++)
        pad[i] = (unsigned char)(k0[i] ^ x);
    ok = c != NULL && EVP_DigestInit_ex(c, sha256, NULL) && EVP_DigestUpdate(c, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
    if (!ok) {
        EVP_MD_CTX_free(c);
        return NULL;
    }
    return c;
}

/* Keying an HMAC hashes both padded keys: done once per key here rather
 * than for every signature. Both NULL on failure. */
static void key_hmac(struct emu_storage_account *a, int slot)
{
    unsigned char k0[HMAC_BLOCK];
    unsigned int len = 0;

    EVP_MD_CTX_free(a->inner[slot]);
    EVP_MD_CTX_free(a->outer[slot]);
    a->inner[slot] = a->outer[slot] = NULL;
    pthread_once(&sha256_once, sha256_fetch);
    if (sha256 == NULL)
        return;
    memset(k0, 0, sizeof k0);
    /* A key longer than the block is replaced by its digest. */
    if (a->keylen[slot] <= sizeof k0)
        memcpy(k0, a->key[slot], a->keylen[slot]);
    if (a->keylen[slot] <= sizeof k0 ||
        EVP_Digest(a->key[slot], a->keylen[slot], k0, &len, sha256, NULL)) {
        a->inner[slot] = padded(k0, 0x36);
        a->outer[slot] = padded(k0, 0x5c);
    }
    OPENSSL_cleanse(k0, sizeof k0);
    if (a->inner[slot] == NULL || a->outer[slot] == NULL) {
        EVP_MD_CTX_free(a->inner[slot]);
        EVP_MD_CTX_free(a->outer[slot]);
        a->inner[slot] = a->outer[slot] = NULL;
    }
}

enum clc_err emu_storage_account_set_key(struct emu_storage_account *a, int slot, const char *b64,
                                         struct clc_errinfo *ei)
{
    unsigned char *raw = NULL;
    size_t n = 0;
    enum clc_err rc;

    rc = clc_b64_decode(b64, strlen(b64), &raw, &n);
    if (rc != CLC_OK || n == 0 || n > EMU_STORAGE_KEY_MAX) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "storage account '%s': key%d must be base64 of 1..%d bytes", a->name,
                      slot + 1, EMU_STORAGE_KEY_MAX);
        goto out;
    }
    memcpy(a->key[slot], raw, n);
    a->keylen[slot] = n;
    key_hmac(a, slot);
    if (slot + 1 > a->nkeys)
        a->nkeys = slot + 1;
out:
    if (raw != NULL) {
        OPENSSL_cleanse(raw, n);
        free(raw);
    }
    return rc;
}

enum clc_err emu_storage_accounts_load(const struct emu *e, struct emu_storage_accounts *out,
                                       struct clc_errinfo *ei)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(emu_config(e), "storage");
    const cJSON *list, *it;
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    if (st == NULL) {
        snprintf(out->a[0].name, sizeof out->a[0].name, "%s", EMU_STORAGE_DEV_ACCOUNT);
        out->n = 1;
        return emu_storage_account_set_key(&out->a[0], 0, EMU_STORAGE_DEV_KEY, ei);
    }
    if (!cJSON_IsObject(st))
        return clc_errf(ei, CLC_ERR_CONFIG, "'storage' must be an object");
    cJSON_ArrayForEach(it, st)
    {
        if (strcmp(it->string, "accounts") != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "storage: unknown key '%.64s' (known: accounts)",
                            it->string);
    }
    list = cJSON_GetObjectItemCaseSensitive(st, "accounts");
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) < 1 ||
        cJSON_GetArraySize(list) > EMU_STORAGE_MAX_ACCOUNTS)
        return clc_errf(ei, CLC_ERR_CONFIG, "storage.accounts must be an array of 1..%d accounts",
                        EMU_STORAGE_MAX_ACCOUNTS);
    cJSON_ArrayForEach(it, list)
    {
        struct emu_storage_account *a = &out->a[out->n];
        const char *name = NULL, *key = NULL, *key2 = NULL;
        const cJSON *f;

        cJSON_ArrayForEach(f, it)
        {
            if (strcmp(f->string, "name") != 0 && strcmp(f->string, "key") != 0 &&
                strcmp(f->string, "key2") != 0)
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "storage account: unknown key '%.64s' (known: name, key, key2)",
                                f->string);
        }
        if (!cJSON_IsObject(it) || clc_json_str(it, "name", &name, NULL) != CLC_OK ||
            clc_json_str(it, "key", &key, NULL) != CLC_OK ||
            clc_json_str_opt(it, "key2", NULL, &key2, NULL) != CLC_OK)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "storage.accounts[%zu] needs string 'name' and 'key'", out->n);
        if (!account_name_ok(name))
            return clc_errf(
                ei, CLC_ERR_CONFIG,
                "storage account name '%.32s' must be 3-24 lower-case letters or digits", name);
        if (emu_storage_account_find(out, name) != NULL)
            return clc_errf(ei, CLC_ERR_CONFIG, "storage account '%s' is listed twice", name);
        snprintf(a->name, sizeof a->name, "%s", name);
        rc = emu_storage_account_set_key(a, 0, key, ei);
        if (rc == CLC_OK && key2 != NULL)
            rc = emu_storage_account_set_key(a, 1, key2, ei);
        if (rc != CLC_OK)
            return rc;
        out->n++;
    }
    return CLC_OK;
}

const struct emu_storage_account *emu_storage_account_find(const struct emu_storage_accounts *a,
                                                           const char *name)
{
    for (size_t i = 0; name != NULL && i < a->n; i++)
        if (strcmp(a->a[i].name, name) == 0)
            return &a->a[i];
    return NULL;
}

void emu_storage_accounts_cleanup(struct emu_storage_accounts *a)
{
    /* Every slot: a load that failed half-way may have keyed one past n. */
    for (size_t i = 0; i < EMU_STORAGE_MAX_ACCOUNTS; i++)
        for (int k = 0; k < 2; k++) {
            EVP_MD_CTX_free(a->a[i].inner[k]);
            EVP_MD_CTX_free(a->a[i].outer[k]);
        }
    OPENSSL_cleanse(a, sizeof *a);
}

/* ---- query ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) to out (room for n + 1 bytes); the end of the
 * decoded string, or NULL on a broken escape or an encoded NUL. */
static char *pct_decode(const char *s, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *out++ = s[i];
            continue;
        }
        int a = i + 1 < n ? hexval(s[i + 1]) : -1;
        int b = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (a < 0 || b < 0 || (a == 0 && b == 0))
            return NULL;
        *out++ = (char)(a * 16 + b);
        i += 2;
    }
    *out = '\0';
    return out;
}

enum clc_err emu_storage_query_parse(const char *raw, struct emu_storage_query *q)
{
    const char *p = raw, *end;
    char *o;

    memset(q, 0, sizeof *q);
    if (raw == NULL)
        return CLC_OK;
    end = raw + strlen(raw);
    /* One block for every name and value: decoding never grows a string,
     * and each parameter adds at most two terminators. */
    q->mem = malloc((size_t)(end - raw) + 2 * EMU_STORAGE_MAX_QUERY + 1);
    if (q->mem == NULL)
        return CLC_ERR_PARSE;
    o = q->mem;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;

        if (pe == p) { /* "a=1&&b=2" */
            p = pe + 1;
            continue;
        }
        if (q->n == EMU_STORAGE_MAX_QUERY) {
            emu_storage_query_cleanup(q);
            return CLC_ERR_LIMIT;
        }
        q->name[q->n] = o;
        o = pct_decode(p, (size_t)(ne - p), o);
        if (o != NULL) {
            q->value[q->n] = ++o;
            o = eq ? pct_decode(eq + 1, (size_t)(pe - eq - 1), o) : memset(o, 0, 1);
        }
        if (o == NULL) {
            emu_storage_query_cleanup(q);
            return CLC_ERR_PARSE;
        }
        o++;
        q->n++;
        p = pe + 1;
    }
    return CLC_OK;
}

void emu_storage_query_cleanup(struct emu_storage_query *q)
{
    free(q->mem);
    memset(q, 0, sizeof *q);
}

const char *emu_storage_query_get(const struct emu_storage_query *q, const char *name)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcasecmp(q->name[i], name) == 0)
            return q->value[i];
    return NULL;
}

/* ---- metadata ---- */

/* Metadata names must be C# identifiers. */
static int meta_name_ok(const char *s)
{
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_'))
            return 0;
    return 1;
}

int emu_storage_meta_from_request(struct emu_req *r, const char *version,
                                  struct emu_storage_meta *m)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t n = emu_req_headers(r, names, values, MAX_HEADERS), total = 0;

    memset(m, 0, sizeof *m);
    for (size_t i = 0; i < n; i++) {
        const char *k;

        if (strncasecmp(names[i], "x-ms-meta-", 10) != 0)
            continue;
        k = names[i] + 10;
        if (!meta_name_ok(k)) {
            emu_storage_meta_cleanup(m);
            emu_storage_error(r, version, 400, "InvalidMetadata",
                              "The metadata specified is invalid. It has characters that are not "
                              "permitted.");
            return 0;
        }
        total += strlen(k) + strlen(values[i]);
        if (m->n == EMU_STORAGE_MAX_META || total > EMU_STORAGE_META_MAX_BYTES) {
            emu_storage_meta_cleanup(m);
            emu_storage_error(r, version, 400, "MetadataTooLarge",
                              "The size of the specified metadata exceeds the maximum size "
                              "permitted.");
            return 0;
        }
        m->name[m->n] = strdup(k);
        m->value[m->n] = strdup(values[i]);
        m->n++;
        if (m->name[m->n - 1] == NULL || m->value[m->n - 1] == NULL) {
            emu_storage_meta_cleanup(m);
            emu_storage_error(r, version, 500, "InternalError", "out of memory");
            return 0;
        }
    }
    return 1;
}

void emu_storage_meta_cleanup(struct emu_storage_meta *m)
{
    for (size_t i = 0; i < m->n; i++) {
        free(m->name[i]);
        free(m->value[i]);
    }
    memset(m, 0, sizeof *m);
}

int emu_storage_meta_equal(const struct emu_storage_meta *a, const struct emu_storage_meta *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        size_t j;
        for (j = 0; j < b->n; j++)
            if (strcasecmp(a->name[i], b->name[j]) == 0)
                break;
        if (j == b->n || strcmp(a->value[i], b->value[j]) != 0)
            return 0;
    }
    return 1;
}

void emu_storage_meta_move(struct emu_storage_meta *a, struct emu_storage_meta *b)
{
    emu_storage_meta_cleanup(a);
    *a = *b;
    memset(b, 0, sizeof *b);
}

enum clc_err emu_storage_meta_copy(struct emu_storage_meta *dst, const struct emu_storage_meta *src)
{
    memset(dst, 0, sizeof *dst);
    for (size_t i = 0; i < src->n; i++) {
        dst->name[i] = strdup(src->name[i]);
        dst->value[i] = strdup(src->value[i]);
        dst->n = i + 1;
        if (dst->name[i] == NULL || dst->value[i] == NULL) {
            emu_storage_meta_cleanup(dst);
            return CLC_ERR_NOMEM;
        }
    }
    return CLC_OK;
}

char **emu_storage_meta_headers(const struct emu_storage_meta *m)
{
    char **v = calloc(m->n + 1, sizeof *v);

    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        size_t len = strlen(m->name[i]) + strlen(m->value[i]) + 16;
        v[i] = malloc(len);
        if (v[i] == NULL) {
            emu_storage_strv_free(v);
            return NULL;
        }
        snprintf(v[i], len, "x-ms-meta-%s: %s", m->name[i], m->value[i]);
    }
    return v;
}

void emu_storage_strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* ---- replies ---- */

static int version_ok(const char *v)
{
    size_t n = v != NULL ? strnlen(v, 16) : 0;

    /* YYYY-MM-DD, optionally with a suffix such as "-preview". */
    if (n < 10 || n > 15)
        return 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (v[i] != '-')
                return 0;
        } else if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
    }
    return v[10] == '\0' || v[10] == '-';
}

void emu_storage_version(const struct emu_req *r, const struct emu_storage_query *q, char out[16],
                         int *bad)
{
    const char *h = emu_req_header(r, "x-ms-version");
    const char *sv = q ? emu_storage_query_get(q, "sv") : NULL;

    const char *v;

    *bad = h != NULL && !version_ok(h);
    v = h != NULL && !*bad ? h : sv != NULL && version_ok(sv) ? sv : EMU_STORAGE_DEFAULT_VERSION;
    /* Every choice is at most 15 characters (version_ok). */
    memcpy(out, v, strlen(v) + 1);
}

void emu_storage_time(int64_t t, char out[40])
{
    if (t == EMU_STORAGE_NEVER || clc_time_fmt_rfc1123(t, out) != CLC_OK)
        snprintf(out, 40, "Fri, 31 Dec 9999 23:59:59 GMT");
}

enum clc_err emu_storage_xml_escape(struct clc_buf *b, const char *s, size_t n)
{
    /* A table lookup per byte: every message text of a get goes through. */
    static const char *const rep[256] = {
        ['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['"'] = "&quot;", ['\''] = "&apos;"};
    size_t start = 0;
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        const char *r = rep[(unsigned char)s[i]];
        if (r == NULL)
            continue;
        rc = clc_buf_append(b, s + start, i - start);
        if (rc == CLC_OK)
            rc = clc_buf_append_str(b, r);
        start = i + 1;
    }
    if (rc == CLC_OK)
        rc = clc_buf_append(b, s + start, n - start);
    return rc;
}

void emu_storage_reply(struct emu_req *r, const char *version, int status, const char *body,
                       size_t len, const char *const *headers)
{
    static const char prefix[] = "x-ms-version: ";
    const char *h[24];
    char vline[48];
    size_t k = 0, vlen = strnlen(version, sizeof vline - sizeof prefix);

    memcpy(vline, prefix, sizeof prefix - 1);
    memcpy(vline + sizeof prefix - 1, version, vlen);
    vline[sizeof prefix - 1 + vlen] = '\0';
    h[k++] = vline;
    for (size_t i = 0; headers != NULL && headers[i] != NULL && k < 23; i++)
        h[k++] = headers[i];
    h[k] = NULL;
    emu_reply(r, status, body ? "application/xml" : NULL, body ? body : "", body ? len : 0, h);
}

void emu_storage_error_ex(struct emu_req *r, const char *version, int status, const char *code,
                          const char *message, const char *const *details,
                          const char *const *headers)
{
    struct clc_buf b;
    char ts[CLC_TIME_STR_MAX], codeh[128];
    const char *h[16];
    int64_t ms = emu_now_ms(r->emu);
    enum clc_err rc;
    size_t k = 0;

    /* Azure writes seven fractional digits: 2023-11-23T15:53:16.1234567Z. */
    if (clc_time_fmt_iso8601(ms / 1000, ts) != CLC_OK || strlen(ts) != 20)
        snprintf(ts, sizeof ts, "1970-01-01T00:00:00Z");
    ts[19] = '\0';
    clc_buf_init(&b, ERROR_BODY_MAX);
    rc = clc_buf_appendf(&b,
                         "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code>"
                         "<Message>",
                         code);
    if (rc == CLC_OK)
        rc = emu_storage_xml_escape(&b, message, strlen(message));
    if (rc == CLC_OK)
        rc = clc_buf_appendf(&b, "\nRequestId:%s\nTime:%s.%03lld0000Z</Message>", r->request_id, ts,
                             (long long)(ms % 1000));
    for (size_t i = 0; rc == CLC_OK && details != NULL && details[i] && details[i + 1]; i += 2) {
        rc = clc_buf_appendf(&b, "<%s>", details[i]);
        if (rc == CLC_OK)
            rc = emu_storage_xml_escape(&b, details[i + 1], strlen(details[i + 1]));
        if (rc == CLC_OK)
            rc = clc_buf_appendf(&b, "</%s>", details[i]);
    }
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&b, "</Error>");
    if (rc != CLC_OK) {
        clc_buf_cleanup(&b);
        emu_reply(r, 500, "text/plain", "error body too large\n", 21, NULL);
        return;
    }
    snprintf(codeh, sizeof codeh, "x-ms-error-code: %s", code);
    h[k++] = codeh;
    for (size_t i = 0; headers != NULL && headers[i] != NULL && k < 15; i++)
        h[k++] = headers[i];
    h[k] = NULL;
    emu_storage_reply(r, version, status, clc_buf_str(&b), b.len, h);
    clc_buf_cleanup(&b);
}

void emu_storage_error(struct emu_req *r, const char *version, int status, const char *code,
                       const char *message)
{
    emu_storage_error_ex(r, version, status, code, message, NULL, NULL);
}

void emu_storage_bad_query(struct emu_req *r, const char *version, const char *name,
                           const char *value, const char *reason)
{
    const char *d[] = {
        "QueryParameterName", name, "QueryParameterValue", value, "Reason", reason, NULL};

    emu_storage_error_ex(r, version, 400, "InvalidQueryParameterValue",
                         "Value for one of the query parameters specified in the request URI is "
                         "invalid.",
                         d, NULL);
}

void emu_storage_out_of_range(struct emu_req *r, const char *version, const char *name,
                              const char *value, long long min, long long max)
{
    char smin[24], smax[24];
    const char *d[] = {"QueryParameterName",
                       name,
                       "QueryParameterValue",
                       value,
                       "MinimumAllowed",
                       smin,
                       "MaximumAllowed",
                       smax,
                       NULL};

    snprintf(smin, sizeof smin, "%lld", min);
    snprintf(smax, sizeof smax, "%lld", max);
    emu_storage_error_ex(r, version, 400, "OutOfRangeQueryParameterValue",
                         "One of the query parameters specified in the request URI is outside "
                         "the permissible range.",
                         d, NULL);
}

/* ---- names, HMAC ---- */

int emu_storage_name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return 0;
        if (s[i] == '-' && s[i + 1] == '-')
            return 0;
    }
    return 1;
}

int emu_storage_hmac_b64(const unsigned char *key, size_t keylen, const char *text, char out[64])
{
    unsigned char mac[CLC_HMAC_SHA256_LEN];

    if (clc_hmac_sha256(key, keylen, text, strlen(text), mac) != CLC_OK)
        return 0;
    /* 32 bytes give 44 characters with padding, as clc_b64_encode writes. */
    EVP_EncodeBlock((unsigned char *)out, mac, sizeof mac);
    OPENSSL_cleanse(mac, sizeof mac);
    return 1;
}

int emu_storage_account_mac_b64(const struct emu_storage_account *a, int k, const char *text,
                                size_t len, char out[64])
{
    unsigned char inner[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
    unsigned int n = 0, m = 0;
    EVP_MD_CTX *c;
    int ok;

    if (k < 0 || k >= a->nkeys)
        return 0;
    if (a->inner[k] == NULL)
        return emu_storage_hmac_b64(a->key[k], a->keylen[k], text, out);
    /* H((K0 ^ opad) || H((K0 ^ ipad) || text)) from the absorbed pads. */
    c = EVP_MD_CTX_new();
    ok = c != NULL && EVP_MD_CTX_copy_ex(c, a->inner[k]) && EVP_DigestUpdate(c, text, len) &&
         EVP_DigestFinal_ex(c, inner, &n) && n == CLC_HMAC_SHA256_LEN &&
         EVP_MD_CTX_copy_ex(c, a->outer[k]) && EVP_DigestUpdate(c, inner, n) &&
         EVP_DigestFinal_ex(c, mac, &m) && m == CLC_HMAC_SHA256_LEN;
    EVP_MD_CTX_free(c);
    if (ok)
        EVP_EncodeBlock((unsigned char *)out, mac, (int)m);
    OPENSSL_cleanse(inner, sizeof inner);
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

/* ---- files of the queue and blob stores ---- */

char *emu_storage_path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

void emu_storage_remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char *p;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        p = emu_storage_path_join(dir, de->d_name);
        if (p != NULL && unlink(p) != 0)
            clc_log(CLC_LOG_WARN, "emu.storage.unlink_failed", CLC_LS("path", p),
                    CLC_LS("reason", strerror(errno)));
        free(p);
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT)
        clc_log(CLC_LOG_WARN, "emu.storage.rmdir_failed", CLC_LS("path", dir),
                CLC_LS("reason", strerror(errno)));
}
