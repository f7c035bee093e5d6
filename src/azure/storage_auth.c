/* Azure Storage credentials: Shared Key canonicalisation and signature, SAS
 * token generation and the bearer token hand-off (see storage_auth.h). The
 * account key is held decoded, as a secret, and only ever fed to HMAC. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include "azure/storage_auth.h"
#include "crypto/hmac.h"
#include "core/b64.h"
#include "core/clock.h"
#include "net/http.h"

#define STS_MAX (64 * 1024)
#define MAX_PARAMS 64
#define MAX_SIGNED_HEADERS 64

struct clc_storage_cred {
    enum clc_storage_auth_kind kind;
    char *account;          /* shared key */
    struct clc_secret *key; /* shared key: decoded bytes */
    struct clc_secret *sas; /* SAS token without '?' */
    struct clc_auth *auth;  /* bearer, borrowed */
    char *scope;            /* bearer */
};

/* Account names: 3-24 lower-case letters and digits on Azure; the emulators
 * use devstoreaccount1. Anything else would corrupt the canonical resource. */
static int account_ok(const char *a)
{
    size_t n = strlen(a);
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)a[i]) && a[i] != '-')
            return 0;
    return 1;
}

enum clc_err clc_storage_cred_shared_key(const char *account, const struct clc_secret *key_b64,
                                         struct clc_storage_cred **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_storage_cred *c = NULL;
    unsigned char *raw = NULL;
    size_t rawlen = 0;

    *out = NULL;
    if (!account || !account_ok(account))
        return clc_errf(ei, CLC_ERR_INVALID, "storage: account name missing or invalid");
    if (!key_b64 || clc_secret_len(key_b64) == 0)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: account key missing");
    if (clc_b64_decode(clc_secret_reveal(key_b64), clc_secret_len(key_b64), &raw, &rawlen) !=
            CLC_OK ||
        rawlen == 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "storage: account key for '%s' is not base64", account);
        goto out;
    }
    c = calloc(1, sizeof *c);
    if (!c) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    c->kind = CLC_STORAGE_SHARED_KEY;
    c->account = strdup(account);
    if (!c->account || clc_secret_new(raw, rawlen, &c->key) != CLC_OK) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    *out = c;
    c = NULL;
out:
    if (raw) {
        OPENSSL_cleanse(raw, rawlen);
        free(raw);
    }
    clc_storage_cred_free(c);
    return rc;
}

enum clc_err clc_storage_cred_sas(const struct clc_secret *sas, struct clc_storage_cred **out,
                                  struct clc_errinfo *ei)
{
    struct clc_storage_cred *c = NULL;
    const char *t = NULL;
    size_t n = 0;

    *out = NULL;
    if (!sas)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: SAS token missing");
    t = clc_secret_reveal(sas);
    n = clc_secret_len(sas);
    if (n > 0 && t[0] == '?') {
        t++;
        n--;
    }
    if (n == 0 || !strstr(t, "sig="))
        return clc_errf(ei, CLC_ERR_INVALID, "storage: SAS token has no 'sig' parameter");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)t[i] <= ' ' || t[i] == '#' || (unsigned char)t[i] >= 0x7f)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "storage: SAS token contains a character "
                            "that cannot go in a query string");
    c = calloc(1, sizeof *c);
    if (!c)
        return CLC_ERR_NOMEM;
    c->kind = CLC_STORAGE_SAS;
    if (clc_secret_new(t, n, &c->sas) != CLC_OK) {
        free(c);
        return CLC_ERR_NOMEM;
    }
    *out = c;
    return CLC_OK;
}

enum clc_err clc_storage_cred_bearer(struct clc_auth *auth, const char *scope,
                                     struct clc_storage_cred **out, struct clc_errinfo *ei)
{
    struct clc_storage_cred *c = NULL;

    *out = NULL;
    if (!auth)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: bearer credential without an auth client");
    c = calloc(1, sizeof *c);
    if (!c)
        return CLC_ERR_NOMEM;
    c->kind = CLC_STORAGE_BEARER;
    c->auth = auth;
    c->scope = strdup(scope && *scope ? scope : CLC_STORAGE_SCOPE);
    if (!c->scope) {
        free(c);
        return CLC_ERR_NOMEM;
    }
    *out = c;
    return CLC_OK;
}

void clc_storage_cred_free(struct clc_storage_cred *c)
{
    if (!c)
        return;
    free(c->account);
    clc_secret_free(c->key);
    clc_secret_free(c->sas);
    free(c->scope);
    free(c);
}

enum clc_storage_auth_kind clc_storage_cred_kind(const struct clc_storage_cred *c)
{
    return c->kind;
}

const char *clc_storage_cred_account(const struct clc_storage_cred *c)
{
    return c && c->kind == CLC_STORAGE_SHARED_KEY ? c->account : NULL;
}

const struct clc_secret *clc_storage_cred_sas_token(const struct clc_storage_cred *c)
{
    return c && c->kind == CLC_STORAGE_SAS ? c->sas : NULL;
}

enum clc_err clc_storage_cred_token(const struct clc_storage_cred *c, int invalidate,
                                    struct clc_secret **token, struct clc_errinfo *ei)
{
    *token = NULL;
    if (!c || c->kind != CLC_STORAGE_BEARER)
        return clc_errf(ei, CLC_ERR_INTERNAL, "storage: not a bearer credential");
    if (invalidate)
        clc_auth_invalidate(c->auth, c->scope);
    return clc_auth_token(c->auth, c->scope, token, NULL, ei);
}

/* ---- Shared Key string-to-sign ---- */

/* Value of a header line "Name: value" when its name is `name`, else NULL. */
static const char *header_value(const char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

static const char *find_header(const char *const *headers, const char *name)
{
    for (size_t i = 0; headers && headers[i]; i++) {
        const char *v = header_value(headers[i], name);
        if (v)
            return v;
    }
    return NULL;
}

/* Appends v with surrounding whitespace removed and inner runs of
 * whitespace folded to one space, as the canonical header form asks. */
static enum clc_err append_folded(struct clc_buf *b, const char *v)
{
    enum clc_err rc = CLC_OK;
    int pending_space = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    while (*v && rc == CLC_OK) {
        /* Copy a run of non-blanks in one append. */
        size_t n = strcspn(v, " \t");
        if (n == 0) {
            pending_space = 1;
            v++;
            continue;
        }
        if (pending_space)
            rc = clc_buf_append_byte(b, ' ');
        pending_space = 0;
        if (rc == CLC_OK)
            rc = clc_buf_append(b, v, n);
        v += n;
    }
    return rc;
}

struct hdr_ref {
    char name[128]; /* lower-cased */
    const char *value;
};

static int hdr_cmp(const void *a, const void *b)
{
    return strcmp(((const struct hdr_ref *)a)->name, ((const struct hdr_ref *)b)->name);
}

static enum clc_err canon_headers(const char *const *headers, struct clc_buf *out,
                                  struct clc_errinfo *ei)
{
    struct hdr_ref refs[MAX_SIGNED_HEADERS];
    size_t n = 0;
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; headers && headers[i]; i++) {
        const char *line = headers[i];
        const char *colon = strchr(line, ':');
        size_t nl = colon ? (size_t)(colon - line) : 0;
        if (strncasecmp(line, "x-ms-", 5) != 0)
            continue;
        if (!colon || nl >= sizeof refs[0].name)
            return clc_errf(ei, CLC_ERR_INVALID, "storage: malformed x-ms header");
        if (n == MAX_SIGNED_HEADERS)
            return clc_errf(ei, CLC_ERR_LIMIT, "storage: too many x-ms headers");
        for (size_t k = 0; k < nl; k++)
            refs[n].name[k] = (char)tolower((unsigned char)line[k]);
        /* Names end at the colon; trailing blanks before it are not part. */
        while (nl > 0 && (refs[n].name[nl - 1] == ' ' || refs[n].name[nl - 1] == '\t'))
            nl--;
        refs[n].name[nl] = '\0';
        refs[n].value = colon + 1;
        n++;
    }
    qsort(refs, n, sizeof refs[0], hdr_cmp);
    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        /* A repeated header signs once, its values joined by commas. */
        if (i > 0 && strcmp(refs[i].name, refs[i - 1].name) == 0) {
            if (out->len > 0)
                out->len--; /* drop the "\n" of the previous value */
            rc = clc_buf_append_byte(out, ',');
        } else {
            rc = clc_buf_append_str(out, refs[i].name);
            if (rc == CLC_OK)
                rc = clc_buf_append_byte(out, ':');
        }
        if (rc == CLC_OK)
            rc = append_folded(out, refs[i].value);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(out, '\n');
    }
    if (out->data)
        out->data[out->len] = '\0';
    return rc;
}

struct param_ref {
    char name[128]; /* lower-cased */
    const char *value;
};

static int param_cmp(const void *a, const void *b)
{
    const struct param_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : strcmp(x->value, y->value);
}

static enum clc_err canon_resource(const char *account, const struct clc_storage_sign_input *in,
                                   struct clc_buf *out, struct clc_errinfo *ei)
{
    struct param_ref refs[MAX_PARAMS];
    enum clc_err rc = CLC_OK;

    if (!in->path || in->path[0] != '/')
        return clc_errf(ei, CLC_ERR_INVALID, "storage: request path must start with '/'");
    if (in->nquery > MAX_PARAMS)
        return clc_errf(ei, CLC_ERR_LIMIT, "storage: too many query parameters");
    /* The path is the full URI path: a path-style endpoint (emulators)
     * already carries the account, which therefore appears twice. */
    rc = clc_buf_append_byte(out, '/');
    if (rc == CLC_OK)
        rc = clc_buf_append_str(out, account);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(out, in->path);
    for (size_t i = 0; i < in->nquery && rc == CLC_OK; i++) {
        size_t nl = strlen(in->query[i].name);
        if (nl == 0 || nl >= sizeof refs[i].name || !in->query[i].value)
            return clc_errf(ei, CLC_ERR_INVALID, "storage: malformed query parameter");
        for (size_t k = 0; k <= nl; k++)
            refs[i].name[k] = (char)tolower((unsigned char)in->query[i].name[k]);
        refs[i].value = in->query[i].value;
    }
    qsort(refs, in->nquery, sizeof refs[0], param_cmp);
    for (size_t i = 0; i < in->nquery && rc == CLC_OK; i++) {
        if (i > 0 && strcmp(refs[i].name, refs[i - 1].name) == 0) {
            rc = clc_buf_append_byte(out, ',');
        } else {
            rc = clc_buf_append_byte(out, '\n');
            if (rc == CLC_OK)
                rc = clc_buf_append_str(out, refs[i].name);
            if (rc == CLC_OK)
                rc = clc_buf_append_byte(out, ':');
        }
        if (rc == CLC_OK)
            rc = clc_buf_append_str(out, refs[i].value);
    }
    return rc;
}

enum clc_err clc_storage_string_to_sign(const char *account,
                                        const struct clc_storage_sign_input *in,
                                        struct clc_buf *out, struct clc_errinfo *ei)
{
    /* Order fixed by the spec; Date is left empty when x-ms-date is sent. */
    static const char *const std[] = {"Content-Encoding",
                                      "Content-Language",
                                      NULL,
                                      "Content-MD5",
                                      "Content-Type",
                                      "Date",
                                      "If-Modified-Since",
                                      "If-Match",
                                      "If-None-Match",
                                      "If-Unmodified-Since",
                                      "Range"};
    enum clc_err rc = CLC_OK;
    int has_xms_date = find_header(in->headers, "x-ms-date") != NULL;

    if (!account || !account_ok(account) || !in->method || !*in->method)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: account or method missing");
    rc = clc_buf_append_str(out, in->method);
    if (rc == CLC_OK)
        rc = clc_buf_append_byte(out, '\n');
    for (size_t i = 0; i < sizeof std / sizeof std[0] && rc == CLC_OK; i++) {
        const char *v = NULL;
        if (!std[i]) {
            if (in->content_length > 0)
                rc = clc_buf_appendf(out, "%zu", in->content_length);
        } else if (!(strcmp(std[i], "Date") == 0 && has_xms_date)) {
            v = find_header(in->headers, std[i]);
            if (v)
                rc = clc_buf_append_str(out, v);
        }
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(out, '\n');
    }
    if (rc == CLC_OK)
        rc = canon_headers(in->headers, out, ei);
    if (rc == CLC_OK)
        rc = canon_resource(account, in, out, ei);
    if (rc == CLC_ERR_LIMIT && ei && !ei->msg[0])
        clc_errf(ei, rc, "storage: string-to-sign over %d bytes", STS_MAX);
    return rc;
}

/* base64(HMAC-SHA256(key, msg)) into out (NUL-terminated). */
static enum clc_err hmac_b64(const struct clc_secret *key, const char *msg, size_t len, char **out)
{
    unsigned char mac[CLC_HMAC_SHA256_LEN];
    enum clc_err rc;

    *out = NULL;
    rc = clc_hmac_sha256(clc_secret_reveal(key), clc_secret_len(key), msg, len, mac);
    if (rc == CLC_OK)
        rc = clc_b64_encode(mac, sizeof mac, out, NULL);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

enum clc_err clc_storage_shared_key_auth(const struct clc_storage_cred *c,
                                         const struct clc_storage_sign_input *in,
                                         struct clc_secret **authorization, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_buf sts, val;
    char *sig = NULL;

    *authorization = NULL;
    clc_buf_init(&sts, STS_MAX);
    clc_buf_init(&val, 512);
    if (!c || c->kind != CLC_STORAGE_SHARED_KEY) {
        rc = clc_errf(ei, CLC_ERR_INTERNAL, "storage: not a shared key credential");
        goto out;
    }
    rc = clc_storage_string_to_sign(c->account, in, &sts, ei);
    if (rc != CLC_OK)
        goto out;
    rc = hmac_b64(c->key, clc_buf_str(&sts), sts.len, &sig);
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&val, "SharedKey ");
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&val, c->account);
    if (rc == CLC_OK)
        rc = clc_buf_append_byte(&val, ':');
    if (rc == CLC_OK)
        rc = clc_buf_append_str(&val, sig);
    if (rc == CLC_OK)
        rc = clc_secret_new(val.data, val.len, authorization);
out:
    free(sig);
    clc_buf_cleanup(&sts);
    clc_buf_cleanse(&val);
    return rc;
}

/* ---- SAS ---- */

static int sas_field_ok(const char *s)
{
    for (; s && *s; s++)
        if (*s == '\n' || *s == '&' || *s == '=' || *s == '#')
            return 0;
    return 1;
}

static enum clc_err add_param(struct clc_buf *q, const char *name, const char *value)
{
    enum clc_err rc = CLC_OK;
    if (!value || !*value)
        return CLC_OK;
    if (q->len > 0)
        rc = clc_buf_append_byte(q, '&');
    if (rc == CLC_OK)
        rc = clc_buf_appendf(q, "%s=", name);
    if (rc == CLC_OK)
        rc = clc_http_urlencode(q, value);
    return rc;
}

struct sas_common {
    char st[CLC_TIME_STR_MAX];
    char se[CLC_TIME_STR_MAX];
    const char *sv;
};

static enum clc_err sas_check(const struct clc_storage_cred *key,
                              const struct clc_storage_sas_opts *o, struct sas_common *sc,
                              struct clc_errinfo *ei)
{
    if (!key || key->kind != CLC_STORAGE_SHARED_KEY)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: a SAS is signed with an account key");
    if (!o || o->expiry <= 0 || !o->permissions || !*o->permissions)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: SAS needs permissions and an expiry");
    if (!sas_field_ok(o->permissions) || !sas_field_ok(o->ip) || !sas_field_ok(o->protocol) ||
        !sas_field_ok(o->version) || !sas_field_ok(o->services) ||
        !sas_field_ok(o->resource_types) || !sas_field_ok(o->identifier))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "storage: SAS field contains '&', '=', '#' or a "
                        "line break");
    sc->st[0] = '\0';
    if (o->start > 0 && clc_time_fmt_iso8601(o->start, sc->st) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: SAS start time out of range");
    if (clc_time_fmt_iso8601(o->expiry, sc->se) != CLC_OK)
        return clc_errf(ei, CLC_ERR_INVALID, "storage: SAS expiry out of range");
    sc->sv = o->version && *o->version ? o->version : CLC_STORAGE_API_VERSION;
    return CLC_OK;
}

static const char *nz(const char *s)
{
    return s ? s : "";
}

/* Signs sts and appends "&sig=..." to q, then hands q out as a secret. */
static enum clc_err sas_finish(const struct clc_storage_cred *key, struct clc_buf *sts,
                               struct clc_buf *q, struct clc_secret **token)
{
    char *sig = NULL;
    enum clc_err rc = hmac_b64(key->key, clc_buf_str(sts), sts->len, &sig);

    if (rc == CLC_OK)
        rc = add_param(q, "sig", sig);
    if (rc == CLC_OK)
        rc = clc_secret_new(q->data, q->len, token);
    free(sig);
    return rc;
}

enum clc_err clc_storage_sas_account(const struct clc_storage_cred *key,
                                     const struct clc_storage_sas_opts *o,
                                     struct clc_secret **token, struct clc_errinfo *ei)
{
    struct sas_common sc;
    struct clc_buf sts, q;
    enum clc_err rc = CLC_OK;

    *token = NULL;
    clc_buf_init(&sts, 4096);
    clc_buf_init(&q, 4096);
    rc = sas_check(key, o, &sc, ei);
    if (rc != CLC_OK)
        goto out;
    if (!o->services || !*o->services || !o->resource_types || !*o->resource_types) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "storage: account SAS needs services and resource "
                      "types");
        goto out;
    }
    rc = clc_buf_appendf(&sts, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", key->account, o->permissions,
                         o->services, o->resource_types, sc.st, sc.se, nz(o->ip), nz(o->protocol),
                         sc.sv);
    /* From 2020-12-06 the encryption scope (unused here: empty) is signed. */
    if (rc == CLC_OK && strcmp(sc.sv, "2020-12-06") >= 0)
        rc = clc_buf_append_byte(&sts, '\n');
    if (rc == CLC_OK)
        rc = add_param(&q, "sv", sc.sv);
    if (rc == CLC_OK)
        rc = add_param(&q, "ss", o->services);
    if (rc == CLC_OK)
        rc = add_param(&q, "srt", o->resource_types);
    if (rc == CLC_OK)
        rc = add_param(&q, "sp", o->permissions);
    if (rc == CLC_OK)
        rc = add_param(&q, "st", sc.st);
    if (rc == CLC_OK)
        rc = add_param(&q, "se", sc.se);
    if (rc == CLC_OK)
        rc = add_param(&q, "sip", o->ip);
    if (rc == CLC_OK)
        rc = add_param(&q, "spr", o->protocol);
    if (rc == CLC_OK)
        rc = sas_finish(key, &sts, &q, token);
out:
    clc_buf_cleanup(&sts);
    clc_buf_cleanse(&q);
    return rc;
}

enum clc_err clc_storage_sas_queue(const struct clc_storage_cred *key, const char *queue,
                                   const struct clc_storage_sas_opts *o, struct clc_secret **token,
                                   struct clc_errinfo *ei)
{
    struct sas_common sc;
    struct clc_buf sts, q;
    enum clc_err rc = CLC_OK;

    *token = NULL;
    clc_buf_init(&sts, 4096);
    clc_buf_init(&q, 4096);
    rc = sas_check(key, o, &sc, ei);
    if (rc != CLC_OK)
        goto out;
    if (!queue || !*queue || !sas_field_ok(queue) || strchr(queue, '/')) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "storage: queue SAS needs a queue name");
        goto out;
    }
    rc = clc_buf_appendf(&sts, "%s\n%s\n%s\n/queue/%s/%s\n%s\n%s\n%s\n%s", o->permissions, sc.st,
                         sc.se, key->account, queue, nz(o->identifier), nz(o->ip), nz(o->protocol),
                         sc.sv);
    if (rc == CLC_OK)
        rc = add_param(&q, "sv", sc.sv);
    if (rc == CLC_OK)
        rc = add_param(&q, "st", sc.st);
    if (rc == CLC_OK)
        rc = add_param(&q, "se", sc.se);
    if (rc == CLC_OK)
        rc = add_param(&q, "sp", o->permissions);
    if (rc == CLC_OK)
        rc = add_param(&q, "sip", o->ip);
    if (rc == CLC_OK)
        rc = add_param(&q, "spr", o->protocol);
    if (rc == CLC_OK)
        rc = add_param(&q, "si", o->identifier);
    if (rc == CLC_OK)
        rc = sas_finish(key, &sts, &q, token);
out:
    clc_buf_cleanup(&sts);
    clc_buf_cleanse(&q);
    return rc;
}
