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

static unsigned weight(int level, unsigned char c)
{
    if (c < 0x20 || c > 0x7e)
        return 0;
    if (level == 0)
        return weight_l0[c - 0x20];
    if (level == 1)
        return c >= 'A' && c <= 'Z' ? 18 : 0;
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

struct kv {
    char *k;
    const char *v;
};

static const char *hdr(const struct emu_req *r, const char *name)
{
    const char *v = emu_req_header(r, name);
    return v ? v : "";
}

/* Appends v trimmed, with runs of blanks folded to one space. */
static enum clc_err append_folded(struct clc_buf *b, const char *v)
{
    enum clc_err rc = CLC_OK;
    int space = 0;

    while (*v == ' ' || *v == '\t')
        v++;
    for (; *v && rc == CLC_OK; v++) {
        if (*v == ' ' || *v == '\t') {
            space = 1;
            continue;
        }
        if (space)
            rc = clc_buf_append_byte(b, ' ');
        space = 0;
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(b, *v);
    }
    return rc;
}

static enum clc_err canonical_headers(const struct emu_req *r, struct clc_buf *b)
{
    const char *names[MAX_HEADERS], *values[MAX_HEADERS];
    size_t n = emu_req_headers(r, names, values, MAX_HEADERS), m = 0;
    struct kv h[MAX_HEADERS];
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n; i++) {
        if (strncasecmp(names[i], "x-ms-", 5) != 0)
            continue;
        h[m].k = strdup(names[i]);
        h[m].v = values[i];
        if (h[m].k == NULL) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
        for (char *p = h[m].k; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        m++;
    }
    /* Insertion sort: stable, so repeated headers keep their order. */
    for (size_t i = 1; i < m; i++) {
        struct kv t = h[i];
        size_t j = i;
        while (j > 0 && header_less(t.k, h[j - 1].k)) {
            h[j] = h[j - 1];
            j--;
        }
        h[j] = t;
    }
    for (size_t i = 0; i < m && rc == CLC_OK; i++) {
        if (i > 0 && strcmp(h[i].k, h[i - 1].k) == 0) {
            /* A repeated header: values comma-joined on one line. */
            b->len--; /* drop the '\n' */
            rc = clc_buf_append_byte(b, ',');
        } else {
            rc = clc_buf_append_str(b, h[i].k);
            if (rc == CLC_OK)
                rc = clc_buf_append_byte(b, ':');
        }
        if (rc == CLC_OK)
            rc = append_folded(b, h[i].v);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(b, '\n');
    }
out:
    for (size_t i = 0; i < m; i++)
        free(h[i].k);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "/account/path" + "\nname:v1,v2" per lower-cased parameter name. */
static enum clc_err canonical_resource(const char *account, const char *path,
                                       const struct emu_storage_query *q, struct clc_buf *b)
{
    char *names[EMU_STORAGE_MAX_QUERY];
    enum clc_err rc;
    size_t n = 0;

    rc = clc_buf_appendf(b, "/%s%s", account, path[0] ? path : "/");
    for (size_t i = 0; i < q->n && rc == CLC_OK; i++) {
        names[n] = strdup(q->name[i]);
        if (names[n] == NULL) {
            rc = CLC_ERR_NOMEM;
            break;
        }
        for (char *p = names[n]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        n++;
    }
    if (rc == CLC_OK)
        qsort(names, n, sizeof names[0], cmp_str);
    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        const char *vals[EMU_STORAGE_MAX_QUERY];
        size_t nv = 0;

        if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
            continue;
        for (size_t j = 0; j < q->n; j++)
            if (strcasecmp(q->name[j], names[i]) == 0)
                vals[nv++] = q->value[j];
        qsort(vals, nv, sizeof vals[0], cmp_str);
        rc = clc_buf_appendf(b, "\n%s:", names[i]);
        for (size_t j = 0; j < nv && rc == CLC_OK; j++)
            rc = clc_buf_appendf(b, "%s%s", j ? "," : "", vals[j]);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}

/* Each value followed by a newline (plain copies: one printf with a dozen
 * fields per request showed in the profile). */
static enum clc_err append_lines(struct clc_buf *b, const char *const *v, size_t n)
{
    enum clc_err rc = CLC_OK;

    for (size_t i = 0; i < n && rc == CLC_OK; i++) {
        rc = clc_buf_append_str(b, v[i]);
        if (rc == CLC_OK)
            rc = clc_buf_append_byte(b, '\n');
    }
    return rc;
}

static char *string_to_sign(const struct emu_req *r, const char *account, const char *path,
                            const struct emu_storage_query *q, int lite)
{
    struct clc_buf b;
    const char *date = emu_req_header(r, "x-ms-date") ? "" : hdr(r, "Date");
    const char *cl = hdr(r, "Content-Length");
    enum clc_err rc;

    clc_buf_init(&b, STS_MAX);
    if (lite) {
        const char *comp = emu_storage_query_get(q, "comp");
        const char *f[] = {r->method, hdr(r, "Content-MD5"), hdr(r, "Content-Type"), date};
        rc = append_lines(&b, f, sizeof f / sizeof f[0]);
        if (rc == CLC_OK)
            rc = canonical_headers(r, &b);
        if (rc == CLC_OK)
            rc = clc_buf_appendf(&b, "/%s%s", account, path[0] ? path : "/");
        if (rc == CLC_OK && comp != NULL)
            rc = clc_buf_appendf(&b, "?comp=%s", comp);
    } else {
        /* Content-Length is empty for 0 (x-ms-version 2015-02-21 and later). */
        const char *f[] = {r->method,
                           hdr(r, "Content-Encoding"),
                           hdr(r, "Content-Language"),
                           strcmp(cl, "0") == 0 ? "" : cl,
                           hdr(r, "Content-MD5"),
                           hdr(r, "Content-Type"),
                           date,
                           hdr(r, "If-Modified-Since"),
                           hdr(r, "If-Match"),
                           hdr(r, "If-None-Match"),
                           hdr(r, "If-Unmodified-Since"),
                           hdr(r, "Range")};
        rc = append_lines(&b, f, sizeof f / sizeof f[0]);
        if (rc == CLC_OK)
            rc = canonical_headers(r, &b);
        if (rc == CLC_OK)
            rc = canonical_resource(account, path, q, &b);
    }
    if (rc != CLC_OK) {
        clc_buf_cleanup(&b);
        return NULL;
    }
    return clc_buf_take(&b, NULL);
}

char *emu_storage_sharedkey_string(const struct emu_req *r, const char *account,
                                   const struct emu_storage_query *q, int lite)
{
    return string_to_sign(r, account, emu_req_raw_path(r), q, lite);
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

static int key_matches(const struct emu_storage_account *a, const char *text, const char *sig)
{
    char mac[64];
    int ok = 0;

    for (int k = 0; k < a->nkeys && !ok; k++)
        if (emu_storage_hmac_b64(a->key[k], a->keylen[k], text, mac) && strlen(mac) == strlen(sig))
            ok = CRYPTO_memcmp(mac, sig, strlen(sig)) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok;
}

static int check_shared_key(struct emu_req *r, const struct emu_storage_account *a,
                            const struct emu_storage_query *q, const char *cred, int lite,
                            const char *version)
{
    const char *colon = strchr(cred, ':');
    const char *raw = emu_req_raw_path(r), *sig;
    const char *date = emu_req_header(r, "x-ms-date");
    char *sts = NULL, *alt = NULL, detail[1024];
    size_t alen = strlen(a->name);
    int64_t t;
    int ok = 0;

    if (colon == NULL || (size_t)(colon - cred) != alen || strncmp(cred, a->name, alen) != 0) {
        auth_failed(r, version,
                    "The account in the Authorization header does not match the "
                    "account of the request URI.");
        return 0;
    }
    sig = colon + 1;
    if (date == NULL)
        date = emu_req_header(r, "Date");
    if (date == NULL || clc_time_parse_rfc1123(date, &t) != CLC_OK) {
        auth_failed(r, version,
                    date ? "The x-ms-date header is not a valid RFC 1123 date."
                         : "Request date header not specified.");
        return 0;
    }
    sts = string_to_sign(r, a->name, raw, q, lite);
    if (sts == NULL) {
        emu_storage_error(r, version, 500, "InternalError", "out of memory");
        return 0;
    }
    ok = key_matches(a, sts, sig);
    /* Path-style URLs name the account in the path, so the resource reads
     * "/acct/acct/queue"; a client that signed the production-style form
     * ("/acct/queue") is accepted too, as Azurite does. */
    if (!ok && strncmp(raw + 1, a->name, alen) == 0 && (raw[alen + 1] == '/' || !raw[alen + 1])) {
        alt = string_to_sign(r, a->name, raw + 1 + alen, q, lite);
        ok = alt != NULL && key_matches(a, alt, sig);
    }
    if (!ok) {
        snprintf(detail, sizeof detail,
                 "The MAC signature found in the HTTP request '%.100s' is not the same as any "
                 "computed signature. Server used following string to sign: '%.700s'.",
                 sig, sts);
        auth_failed(r, version, detail);
    }
    free(sts);
    free(alt);
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
    if (sts == NULL || !key_matches(a, sts, sig)) {
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
