/* Storage authorization as Azure does it: SharedKey / SharedKeyLite
 * signatures over the canonicalized request (with the path-style account
 * duplication), account and service SAS tokens checked against the emulator
 * clock, and Entra bearer tokens with the service's data role. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/buf.h"
#include "core/clock.h"
#include "emulator/emu.h"
#include "emulator/identity.h"
#include "emulator/state.h"
#include "emulator/storage.h"

#define STS_MAX ((size_t)64 * 1024)
#define STS_STACK 2048 /* holds the string-to-sign of ordinary requests */
#define MAX_HEADERS 64

static const char MSG_AUTH_FAILED[] =
    "Server failed to authenticate the request. Make sure the value of Authorization header is "
    "formed correctly including the signature.";
static const char MSG_PERM_MISMATCH[] =
    "This request is not authorized to perform this operation using this permission.";
static const char MSG_CHALLENGE[] =
    "Server failed to authenticate the request. Please refer to the "
    "information in the www-authenticate header.";

/* ---- header order ----
 * Azure sorts canonicalized headers with the culture-invariant collation of
 * .NET, not by bytes: '-' is ignored at the first level, so "x-ms-meta-ab"
 * and "x-ms-meta-a-b" order differently than strcmp says. These are the
 * weights of printable ASCII at the three levels the SDKs reproduce. */
static const unsigned short weight_l0[95] = {
    0,    1820, 0,    1823, 1825, 1827, 1829, 0,    0,    0,    1837, 2051, 0,    0,    1843, 0,
    3331, 3354, 3356, 3358, 3360, 3362, 3364, 3366, 3368, 3370, 0,    0,    0,    0,    0,    0,
    0,    3586, 3593, 3594, 3610, 3617, 3619, 3621, 3628, 3634, 3637, 3638, 3656, 3665, 3696, 3708,
    3710, 3721, 3722, 3729, 3737, 3743, 3746, 3748, 3750, 3751, 3753, 0,    0,    0,    1859, 1860,
    1864, 3586, 3593, 3594, 3610, 3617, 3619, 3621, 3628, 3634, 3637, 3638, 3656, 3665, 3696, 3708,
    3710, 3721, 3722, 3729, 3737, 3743, 3746, 3748, 3750, 3751, 3753, 0,    1868, 0,    1872};

/* Header names are compared lower-cased, as Azure canonicalises them. */
static unsigned weight(int level, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        c = (unsigned char)(c - 'A' + 'a');
    if (c < 0x20 || c > 0x7e)
        return 0;
    if (level == 0)
        return weight_l0[c - 0x20];
    if (level == 1)
        return 0; /* upper case would weigh 18, but names are lower-cased */
    return c == '\'' ? 32786 : c == '-' ? 33298 : 0;
}

static int header_less(const char *l, const char *r)
{
    size_t ln = strlen(l), rn = strlen(r), i = 0, j = 0;
    int level = 0;

    while (level < 3) {
        if (level == 2 && i != j)
            return i > j;
        unsigned w1 = i < ln ? weight(level, (unsigned char)l[i]) : 1;
        unsigned w2 = j < rn ? weight(level, (unsigned char)r[j]) : 1;
        if (w1 == 1 && w2 == 1) {
            i = j = 0;
            level++;
        } else if (w1 == w2) {
            i++;
            j++;
        } else if (w1 == 0) {
            i++;
        } else if (w2 == 0) {
            j++;
        } else {
            return w1 < w2;
        }
    }
    return 0;
}

/* ---- string-to-sign ---- */

/* ASCII-only case folding: the canonical forms lower-case A-Z alone. */
static int lc(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int lc_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int d = lc((unsigned char)*a) - lc((unsigned char)*b);
        if (d != 0 || *a == '\0')
            return d;
    }
}

/* The standard headers a string-to-sign names, in its order. */
enum sk_field {
    F_CONTENT_ENCODING,
    F_CONTENT_LANGUAGE,
    F_CONTENT_LENGTH,
    F_CONTENT_MD5,
    F_CONTENT_TYPE,
    F_DATE,
    F_IF_MODIFIED_SINCE,
    F_IF_MATCH,
    F_IF_NONE_MATCH,
    F_IF_UNMODIFIED_SINCE,
    F_RANGE,
    F_STD,               /* the x-ms-* ones follow */
    F_X_MS_DATE = F_STD, /* not a field of its own: it empties Date */
    F_N
};

static const struct {
    const char *name;
    size_t len;
} std_fields[F_STD] = {
    {"content-encoding", 16},
    {"content-language", 16},
    {"content-length", 14},
    {"content-md5", 11},
    {"content-type", 12},
    {"date", 4},
    {"if-modified-since", 17},
    {"if-match", 8},
    {"if-none-match", 13},
    {"if-unmodified-since", 19},
    {"range", 5},
};

/* The request's headers as signing needs them, found in one pass (a lookup
 * by name scans every header, and signing needs a dozen). */
struct sk_view {
    const char *f[F_N];                            /* first value of each; NULL when absent */
    const char *xk[MAX_HEADERS], *xv[MAX_HEADERS]; /* x-ms-* as sent, sorted */
    size_t nx;
};

static void sk_view_init(const struct emu_req *r, struct sk_view *v)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t n = emu_req_headers(r, names, values, MAX_HEADERS);

    memset(v->f, 0, sizeof v->f);
    v->nx = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (strncasecmp(names[i], "x-ms-", 5) == 0) {
            size_t j = v->nx++;
            if (v->f[F_X_MS_DATE] == NULL && len == 9 && lc_cmp(names[i] + 5, "date") == 0)
                v->f[F_X_MS_DATE] = values[i];
            /* Insertion sort: stable, so repeated headers keep their order. */
            while (j > 0 && header_less(names[i], v->xk[j - 1])) {
                v->xk[j] = v->xk[j - 1];
                v->xv[j] = v->xv[j - 1];
                j--;
            }
            v->xk[j] = names[i];
            v->xv[j] = values[i];
            continue;
        }
        for (int k = 0; k < F_STD; k++) {
            if (std_fields[k].len == len && v->f[k] == NULL &&
                lc_cmp(names[i], std_fields[k].name) == 0) {
                v->f[k] = values[i];
                break;
            }
        }
    }
}

static const char *field(const struct sk_view *v, enum sk_field k)
{
    return v->f[k] ? v->f[k] : "";
}

/* A string-to-sign is written into a fixed buffer: on the stack for
 * ordinary requests, STS_MAX on the heap for one with large headers or
 * query. Writes past the end set full instead. */
struct sts {
    char *p;
    size_t len, cap; /* cap counts the terminator */
    int full;
};

static void put(struct sts *s, const char *v, size_t n)
{
    if (s->full || n >= s->cap - s->len) {
        s->full = 1;
        return;
    }
    memcpy(s->p + s->len, v, n);
    s->len += n;
}

static void put_str(struct sts *s, const char *v)
{
    put(s, v, strlen(v));
}

/* v trimmed, with runs of blanks folded to one space. */
static void put_folded(struct sts *s, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    while (*v != '\0') {
        size_t run = strcspn(v, " \t"), blanks = strspn(v + run, " \t");
        put(s, v, run);
        v += run + blanks;
        if (blanks > 0 && *v != '\0')
            put(s, " ", 1);
    }
}

/* v lower-cased. */
static void put_lower(struct sts *s, const char *v)
{
    size_t at = s->len;

    put_str(s, v);
    for (size_t i = at; !s->full && i < s->len; i++)
        s->p[i] = (char)lc((unsigned char)s->p[i]);
}

static void canonical_headers(const struct sk_view *v, struct sts *s)
{
    for (size_t i = 0; i < v->nx; i++) {
        if (i > 0 && lc_cmp(v->xk[i], v->xk[i - 1]) == 0 && !s->full) {
            /* A repeated header: values comma-joined on one line. */
            s->len--; /* drop the '\n' */
            put(s, ",", 1);
        } else {
            put_lower(s, v->xk[i]);
            put(s, ":", 1);
        }
        put_folded(s, v->xv[i]);
        put(s, "\n", 1);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_lc(const void *a, const void *b)
{
    return lc_cmp(*(char *const *)a, *(char *const *)b);
}

/* "/account" + path. */
static void put_resource(struct sts *s, const char *account, const char *path)
{
    put(s, "/", 1);
    put_str(s, account);
    put_str(s, path[0] ? path : "/");
}

/* "/account/path" + "\nname:v1,v2" per lower-cased parameter name. */
static void canonical_resource(const char *account, const char *path,
                               const struct emu_storage_query *q, struct sts *s)
{
    const char *names[EMU_STORAGE_MAX_QUERY];
    size_t n = q->n;

    put_resource(s, account, path);
    memcpy(names, q->name, n * sizeof names[0]);
    qsort(names, n, sizeof names[0], cmp_lc);
    for (size_t i = 0; i < n; i++) {
        const char *vals[EMU_STORAGE_MAX_QUERY];
        size_t nv = 0;

        if (i > 0 && lc_cmp(names[i], names[i - 1]) == 0)
            continue;
        for (size_t j = 0; j < q->n; j++)
            if (lc_cmp(q->name[j], names[i]) == 0)
                vals[nv++] = q->value[j];
        qsort(vals, nv, sizeof vals[0], cmp_str);
        put(s, "\n", 1);
        put_lower(s, names[i]);
        put(s, ":", 1);
        for (size_t j = 0; j < nv; j++) {
            if (j > 0)
                put(s, ",", 1);
            put_str(s, vals[j]);
        }
    }
}

/* Each value followed by a newline. */
static void put_lines(struct sts *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        put_str(s, v[i]);
        put(s, "\n", 1);
    }
}

static void string_to_sign(const struct emu_req *r, const struct sk_view *v, const char *account,
                           const char *path, const struct emu_storage_query *q, int lite,
                           struct sts *s)
{
    const char *date = v->f[F_X_MS_DATE] ? "" : field(v, F_DATE);
    const char *cl = field(v, F_CONTENT_LENGTH);

    if (lite) {
        const char *comp = emu_storage_query_get(q, "comp");
        const char *f[] = {r->method, field(v, F_CONTENT_MD5), field(v, F_CONTENT_TYPE), date};
        put_lines(s, f, sizeof f / sizeof f[0]);
        canonical_headers(v, s);
        put_resource(s, account, path);
        if (comp != NULL) {
            put_str(s, "?comp=");
            put_str(s, comp);
        }
    } else {
        /* Content-Length is empty for 0 (x-ms-version 2015-02-21 and later). */
        const char *f[] = {r->method,
                           field(v, F_CONTENT_ENCODING),
                           field(v, F_CONTENT_LANGUAGE),
                           strcmp(cl, "0") == 0 ? "" : cl,
                           field(v, F_CONTENT_MD5),
                           field(v, F_CONTENT_TYPE),
                           date,
                           field(v, F_IF_MODIFIED_SINCE),
                           field(v, F_IF_MATCH),
                           field(v, F_IF_NONE_MATCH),
                           field(v, F_IF_UNMODIFIED_SINCE),
                           field(v, F_RANGE)};
        put_lines(s, f, sizeof f / sizeof f[0]);
        canonical_headers(v, s);
        canonical_resource(account, path, q, s);
    }
}

/* The string-to-sign in stack[0..n) when it fits, else in a heap buffer
 * (*heap, for the caller to free). NULL when not even STS_MAX holds it, or
 * without memory. */
static const char *sts_build(const struct emu_req *r, const struct sk_view *v, const char *account,
                             const char *path, const struct emu_storage_query *q, int lite,
                             char *stack, size_t n, char **heap, size_t *len)
{
    struct sts s = {stack, 0, n, 0};

    *heap = NULL;
    string_to_sign(r, v, account, path, q, lite, &s);
    if (s.full) {
        *heap = malloc(STS_MAX + 1);
        if (*heap == NULL)
            return NULL;
        s = (struct sts){*heap, 0, STS_MAX + 1, 0};
        string_to_sign(r, v, account, path, q, lite, &s);
        if (s.full)
            return NULL;
    }
    s.p[s.len] = '\0';
    *len = s.len;
    return s.p;
}

char *emu_storage_sharedkey_string(const struct emu_req *r, const char *account,
                                   const struct emu_storage_query *q, int lite)
{
    struct sk_view v;
    char *heap = NULL;
    const char *sts;
    size_t len = 0;

    sk_view_init(r, &v);
    sts = sts_build(r, &v, account, emu_req_raw_path(r), q, lite, NULL, 0, &heap, &len);
    if (sts == NULL)
        free(heap);
    return sts != NULL ? heap : NULL;
}

/* ---- errors ---- */

static void auth_failed(struct emu_req *r, const char *version, const char *detail)
{
    const char *d[] = {"AuthenticationErrorDetail", detail, NULL};
    emu_storage_error_ex(r, version, 403, "AuthenticationFailed", MSG_AUTH_FAILED, d, NULL);
}

static void challenge(struct emu_req *r, const char *version, int status, const char *code,
                      const char *detail)
{
    const char *entra = emu_service_url(r->emu, "entra");
    const char *tenant = emu_tenant(r->emu);
    char www[512];
    const char *h[] = {www, NULL};
    const char *d[] = {"AuthenticationErrorDetail", detail, NULL};

    snprintf(www, sizeof www,
             "WWW-Authenticate: Bearer authorization_uri=%s/%s/oauth2/authorize "
             "resource_id=" EMU_STORAGE_AUDIENCE,
             entra ? entra : "https://login.microsoftonline.com", tenant ? tenant : "common");
    emu_storage_error_ex(r, version, status, code, MSG_CHALLENGE, detail ? d : NULL, h);
}

/* ---- SharedKey ---- */

static int key_matches(const struct emu_storage_account *a, const char *text, size_t len,
                       const char *sig)
{
    char mac[64];
    size_t slen = strlen(sig);
    int ok = 0;

    for (int k = 0; k < a->nkeys && !ok; k++)
        if (emu_storage_account_mac_b64(a, k, text, len, mac) && strlen(mac) == slen)
            ok = CRYPTO_memcmp(mac, sig, slen) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

static int check_shared_key(struct emu_req *r, const struct emu_storage_account *a,
                            const struct emu_storage_query *q, const char *cred, int lite,
                            const char *version)
{
    const char *colon = strchr(cred, ':');
    const char *raw = emu_req_raw_path(r), *sig, *date;
    char detail[1024], first[STS_STACK], second[STS_STACK], *heap1 = NULL, *heap2 = NULL;
    const char *sts, *alt;
    size_t alen = strlen(a->name), len = 0;
    struct sk_view v;
    int64_t t;
    int ok = 0;

    if (colon == NULL || (size_t)(colon - cred) != alen || strncmp(cred, a->name, alen) != 0) {
        auth_failed(r, version,
                    "The account in the Authorization header does not match the "
                    "account of the request URI.");
        return 0;
    }
    sig = colon + 1;
    sk_view_init(r, &v);
    date = v.f[F_X_MS_DATE] ? v.f[F_X_MS_DATE] : v.f[F_DATE];
    if (date == NULL || clc_time_parse_rfc1123(date, &t) != CLC_OK) {
        auth_failed(r, version,
                    date ? "The x-ms-date header is not a valid RFC 1123 date."
                         : "Request date header not specified.");
        return 0;
    }
    sts = sts_build(r, &v, a->name, raw, q, lite, first, sizeof first, &heap1, &len);
    if (sts == NULL) {
        free(heap1);
        emu_storage_error(r, version, 500, "InternalError", "out of memory");
        return 0;
    }
    ok = key_matches(a, sts, len, sig);
    /* Path-style URLs name the account in the path, so the resource reads
     * "/acct/acct/queue"; a client that signed the production-style form
     * ("/acct/queue") is accepted too, as Azurite does. */
    if (!ok && strncmp(raw + 1, a->name, alen) == 0 && (raw[alen + 1] == '/' || !raw[alen + 1])) {
        alt =
            sts_build(r, &v, a->name, raw + 1 + alen, q, lite, second, sizeof second, &heap2, &len);
        ok = alt != NULL && key_matches(a, alt, len, sig);
    }
    if (!ok) {
        snprintf(detail, sizeof detail,
                 "The MAC signature found in the HTTP request '%.100s' is not the same as any "
                 "computed signature. Server used following string to sign: '%.700s'.",
                 sig, sts);
        auth_failed(r, version, detail);
    }
    free(heap1);
    free(heap2);
    return ok;
}

/* ---- SAS ---- */

static const char *qv(const struct emu_storage_query *q, const char *name)
{
    const char *v = emu_storage_query_get(q, name);
    return v ? v : "";
}

static int ip_in_range(const char *remote, const char *range)
{
    char lo[64], hi[64];
    const char *dash = strchr(range, '-');
    struct in_addr a, l, h;

    if (dash == NULL) {
        snprintf(lo, sizeof lo, "%s", range);
        snprintf(hi, sizeof hi, "%s", range);
    } else {
        snprintf(lo, sizeof lo, "%.*s", (int)(dash - range), range);
        snprintf(hi, sizeof hi, "%s", dash + 1);
    }
    if (remote == NULL || inet_pton(AF_INET, remote, &a) != 1 || inet_pton(AF_INET, lo, &l) != 1 ||
        inet_pton(AF_INET, hi, &h) != 1)
        return 0;
    return ntohl(a.s_addr) >= ntohl(l.s_addr) && ntohl(a.s_addr) <= ntohl(h.s_addr);
}

static int has_any(const char *set, const char *wanted)
{
    for (; wanted && *wanted; wanted++)
        if (strchr(set, *wanted) != NULL)
            return 1;
    return 0;
}

/* The checks every SAS shares: times by the emulator clock, protocol, IP. */
static int sas_common(struct emu_req *r, const struct emu_storage_query *q, const char *version)
{
    const char *st = emu_storage_query_get(q, "st"), *se = emu_storage_query_get(q, "se");
    const char *spr = emu_storage_query_get(q, "spr"), *sip = emu_storage_query_get(q, "sip");
    int64_t now = emu_now(r->emu), tst = 0, tse = 0;
    char detail[256], cur[CLC_TIME_STR_MAX];

    if (se == NULL || clc_time_parse_iso8601(se, &tse) != CLC_OK ||
        (st != NULL && clc_time_parse_iso8601(st, &tst) != CLC_OK)) {
        auth_failed(r, version,
                    se ? "Signed start or expiry time is not a valid ISO 8601 time."
                       : "Signed expiry time [se] must be specified.");
        return 0;
    }
    if ((st != NULL && now < tst) || now >= tse) {
        if (clc_time_fmt_iso8601(now, cur) != CLC_OK)
            cur[0] = '\0';
        snprintf(detail, sizeof detail,
                 "Signature not valid in the specified time frame: Start [%.40s] - Expiry [%.40s] "
                 "- Current [%s]",
                 st ? st : "", se, cur);
        auth_failed(r, version, detail);
        return 0;
    }
    /* "https" admits only the HTTPS listener, "https,http" both. */
    if (spr != NULL && strcmp(spr, "https,http") != 0 &&
        (strcmp(spr, "https") != 0 || r->svc->plain_http)) {
        emu_storage_error(r, version, 403, "AuthorizationProtocolMismatch",
                          "This request is not authorized to perform this operation using this "
                          "protocol.");
        return 0;
    }
    if (sip != NULL && !ip_in_range(emu_req_remote(r), sip)) {
        emu_storage_error(r, version, 403, "AuthorizationSourceIPMismatch",
                          "This request is not authorized to perform this operation using this "
                          "source IP.");
        return 0;
    }
    return 1;
}

static int check_sas(struct emu_req *r, const struct emu_storage_account *a,
                     const struct emu_storage_query *q, const struct emu_storage_op *op,
                     const char *version)
{
    const char *sv = qv(q, "sv"), *sp = qv(q, "sp"), *sig = qv(q, "sig");
    char *sts = NULL, detail[1024];
    struct clc_buf b;
    enum clc_err rc;
    int account_sas = emu_storage_query_get(q, "ss") != NULL, ok = 0;

    if (strlen(sv) < 10 || strcmp(sv, "2015-04-05") < 0) {
        auth_failed(r, version, "The signed version [sv] is missing or older than 2015-04-05.");
        return 0;
    }
    if (emu_storage_query_get(q, "si") != NULL) {
        auth_failed(r, version, "Stored access policies (si) are not supported by the emulator.");
        return 0;
    }
    clc_buf_init(&b, STS_MAX);
    if (account_sas) {
        rc =
            clc_buf_appendf(&b, "%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n", a->name, sp, qv(q, "ss"),
                            qv(q, "srt"), qv(q, "st"), qv(q, "se"), qv(q, "sip"), qv(q, "spr"), sv);
        if (rc == CLC_OK && strcmp(sv, "2020-12-06") >= 0)
            rc = clc_buf_appendf(&b, "%s\n", qv(q, "ses"));
    } else if (op->service == 'q') {
        rc = clc_buf_appendf(&b, "%s\n%s\n%s\n/queue/%s/%s\n%s\n%s\n%s\n%s", sp, qv(q, "st"),
                             qv(q, "se"), a->name, op->container ? op->container : "", "",
                             qv(q, "sip"), qv(q, "spr"), sv);
    } else {
        const char *sr = qv(q, "sr");
        rc = clc_buf_appendf(
            &b, "%s\n%s\n%s\n/blob/%s/%s%s%s\n\n%s\n%s\n%s", sp, qv(q, "st"), qv(q, "se"), a->name,
            op->container ? op->container : "", strcmp(sr, "b") == 0 ? "/" : "",
            strcmp(sr, "b") == 0 && op->blob ? op->blob : "", qv(q, "sip"), qv(q, "spr"), sv);
        /* 2018-11-09 added the resource and snapshot time, 2020-12-06 the
         * encryption scope; the response header overrides always end it. */
        if (rc == CLC_OK && strcmp(sv, "2018-11-09") >= 0)
            rc = clc_buf_appendf(&b, "\n%s\n%s", sr, qv(q, "snapshot"));
        if (rc == CLC_OK && strcmp(sv, "2020-12-06") >= 0)
            rc = clc_buf_appendf(&b, "\n%s", qv(q, "ses"));
        if (rc == CLC_OK)
            rc = clc_buf_appendf(&b, "\n%s\n%s\n%s\n%s\n%s", qv(q, "rscc"), qv(q, "rscd"),
                                 qv(q, "rsce"), qv(q, "rscl"), qv(q, "rsct"));
    }
    if (rc != CLC_OK) {
        clc_buf_cleanup(&b);
        emu_storage_error(r, version, 500, "InternalError", "out of memory");
        return 0;
    }
    sts = clc_buf_take(&b, NULL);
    if (sts == NULL || !key_matches(a, sts, strlen(sts), sig)) {
        snprintf(detail, sizeof detail, "Signature did not match. String to sign used was %.700s",
                 sts ? sts : "");
        auth_failed(r, version, detail);
        goto out;
    }
    if (!sas_common(r, q, version))
        goto out;
    if (account_sas) {
        char svc[2] = {op->service, '\0'}, rt[2] = {op->rtype, '\0'};
        if (!has_any(qv(q, "ss"), svc)) {
            emu_storage_error(r, version, 403, "AuthorizationServiceMismatch",
                              "This request is not authorized to perform this operation using "
                              "this service.");
            goto out;
        }
        if (!has_any(qv(q, "srt"), rt)) {
            emu_storage_error(r, version, 403, "AuthorizationResourceTypeMismatch",
                              "This request is not authorized to perform this operation using "
                              "this resource type.");
            goto out;
        }
        if (!has_any(sp, op->account_perms)) {
            emu_storage_error(r, version, 403, "AuthorizationPermissionMismatch",
                              MSG_PERM_MISMATCH);
            goto out;
        }
    } else {
        const char *sr = qv(q, "sr");
        int wrong_type = op->container == NULL || (op->service == 'b' && strcmp(sr, "c") != 0 &&
                                                   (strcmp(sr, "b") != 0 || op->blob == NULL));
        if (wrong_type) {
            emu_storage_error(r, version, 403, "AuthorizationResourceTypeMismatch",
                              "This request is not authorized to perform this operation using "
                              "this resource type.");
            goto out;
        }
        if (op->service_perms == NULL || !has_any(sp, op->service_perms)) {
            emu_storage_error(r, version, 403, "AuthorizationPermissionMismatch",
                              MSG_PERM_MISMATCH);
            goto out;
        }
    }
    ok = 1;
out:
    free(sts);
    return ok;
}

/* ---- bearer ---- */

static int check_bearer(struct emu_req *r, const struct emu_storage_account *a,
                        const struct emu_storage_op *op, const char *version)
{
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    char aud[96];
    unsigned role =
        op->service == 'q' ? EMU_ROLE_QUEUE_DATA_CONTRIBUTOR : EMU_ROLE_BLOB_DATA_CONTRIBUTOR;

    if (r->svc->plain_http) {
        auth_failed(r, version, "Authentication scheme Bearer is not allowed with HTTP.");
        return 0;
    }
    if (strcmp(version, "2017-11-09") < 0) {
        auth_failed(r, version, "Authentication scheme Bearer is not supported in this version.");
        return 0;
    }
    if (emu_auth_verify(r->emu, r, EMU_STORAGE_AUDIENCE, &p, &ei) != CLC_OK) {
        struct clc_errinfo ei2 = {0};
        snprintf(aud, sizeof aud, "https://%s.%s.core.windows.net", a->name,
                 op->service == 'q' ? "queue" : "blob");
        if (emu_auth_verify(r->emu, r, aud, &p, &ei2) != CLC_OK) {
            challenge(r, version, 401, "InvalidAuthenticationInfo", ei.msg);
            return 0;
        }
    }
    if (!emu_principal_has(&p, role)) {
        emu_storage_error(r, version, 403, "AuthorizationPermissionMismatch", MSG_PERM_MISMATCH);
        return 0;
    }
    return 1;
}

int emu_storage_authorize(struct emu_req *r, const struct emu_storage_account *acct,
                          const struct emu_storage_query *q, const struct emu_storage_op *op,
                          const char *version)
{
    const char *auth = emu_req_header(r, "Authorization");

    if (auth != NULL) {
        if (strncmp(auth, "SharedKey ", 10) == 0)
            return check_shared_key(r, acct, q, auth + 10, 0, version);
        if (strncmp(auth, "SharedKeyLite ", 14) == 0)
            return check_shared_key(r, acct, q, auth + 14, 1, version);
        if (strncasecmp(auth, "Bearer ", 7) == 0)
            return check_bearer(r, acct, op, version);
        emu_storage_error(r, version, 400, "InvalidAuthenticationInfo",
                          "Authentication information is not given in the correct format. Check "
                          "the value of Authorization header.");
        return 0;
    }
    if (emu_storage_query_get(q, "sig") != NULL)
        return check_sas(r, acct, q, op, version);
    challenge(r, version, 401, "NoAuthenticationInformation", NULL);
    return 0;
}
