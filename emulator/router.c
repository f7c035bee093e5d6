/* Request-side helpers of the emulator's HTTP layer: strict percent-
 * decoding, route patterns matched segment by segment on the raw path, and
 * the accessors services use (headers, path parameters, query, form). */
#include <civetweb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "emulator/request.h"

/* ---- percent-decoding ---- */

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

/* Decodes n bytes of in into out (room for n + 1). Returns the decoded
 * length, or -1 for a bad escape or an encoded NUL, which no Azure name can
 * hold and which would cut C strings short. */
static long pct_decode(const char *in, size_t n, char *out, int plus_is_space)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval(in[i + 1]);
            lo = hexval(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            out[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (c == '\0') {
            return -1;
        } else {
            out[o++] = (plus_is_space && c == '+') ? ' ' : c;
        }
    }
    out[o] = '\0';
    return (long)o;
}

char *emu_pct_decode_dup(const char *in, size_t n, int plus_is_space)
{
    char *out = malloc(n + 1);

    if (out != NULL && pct_decode(in, n, out, plus_is_space) < 0) {
        free(out);
        out = NULL;
    }
    return out;
}

/* ---- routing ---- */

void emu_req_clear_params(struct emu_req *r)
{
    for (size_t i = 0; i < r->nparams; i++) {
        free(r->param_values[i]);
        r->param_values[i] = NULL;
        r->param_names[i] = NULL;
    }
    r->nparams = 0;
}

static int add_param(struct emu_req *r, const char *name, const char *raw, size_t n)
{
    char *v;

    if (r->nparams == EMU_MAX_PARAMS)
        return 0;
    v = emu_pct_decode_dup(raw, n, 0);
    if (v == NULL)
        return 0;
    r->param_names[r->nparams] = name;
    r->param_values[r->nparams++] = v;
    return 1;
}

/* Matches a pattern against the raw path segment by segment, so that an
 * encoded "/" (%2F) stays inside one parameter value. */
static int match_pattern(const char *pat, const char *raw, struct emu_req *r,
                         struct emu_pname *names)
{
    const char *p = pat, *s = raw;
    size_t nn = 0;

    emu_req_clear_params(r);
    if (*p != '/' || *s != '/')
        return 0;
    for (;;) {
        const char *pe, *se;
        size_t plen;
        if (*p == '\0')
            return *s == '\0';
        p++; /* past '/' */
        pe = strchr(p, '/');
        if (pe == NULL)
            pe = p + strlen(p);
        plen = (size_t)(pe - p);
        if (plen >= 4 && p[0] == '{' && p[plen - 2] == '*' && p[plen - 1] == '}') {
            const char *rest = *s == '/' ? s + 1 : s;
            if (*s != '/' && *s != '\0')
                return 0;
            if (nn == EMU_MAX_PARAMS || plen - 3 >= sizeof names[0].s)
                return 0;
            memcpy(names[nn].s, p + 1, plen - 3);
            names[nn].s[plen - 3] = '\0';
            return add_param(r, names[nn].s, rest, strlen(rest));
        }
        if (*s != '/')
            return 0;
        s++;
        se = strchr(s, '/');
        if (se == NULL)
            se = s + strlen(s);
        if (plen >= 3 && p[0] == '{' && p[plen - 1] == '}') {
            if (se == s || nn == EMU_MAX_PARAMS || plen - 2 >= sizeof names[0].s)
                return 0;
            memcpy(names[nn].s, p + 1, plen - 2);
            names[nn].s[plen - 2] = '\0';
            if (!add_param(r, names[nn].s, s, (size_t)(se - s)))
                return 0;
            nn++;
        } else {
            char seg[512];
            size_t sl = (size_t)(se - s);
            long dl;
            if (sl >= sizeof seg)
                return 0;
            dl = pct_decode(s, sl, seg, 0);
            if (dl < 0 || (size_t)dl != plen || memcmp(seg, p, plen) != 0)
                return 0;
        }
        p = pe;
        s = se;
    }
}

/* The request's raw path as the pattern sees it: a trailing "/" counts only
 * when the pattern has one (or ends in a rest parameter, which keeps it). */
static const char *path_for(const char *pat, const char *raw, char *tmp, size_t tmplen)
{
    size_t pl = strlen(pat), rl = strlen(raw);

    if (rl > 1 && raw[rl - 1] == '/' && pl > 1 && pat[pl - 1] != '/' &&
        !(pl >= 2 && pat[pl - 2] == '*' && pat[pl - 1] == '}')) {
        if (rl > tmplen)
            return NULL;
        memcpy(tmp, raw, rl - 1);
        tmp[rl - 1] = '\0';
        return tmp;
    }
    return raw;
}

int emu_route_find(struct emu_req *r, const struct emu_route *routes, size_t n,
                   const struct emu_route **out)
{
    struct emu_req_priv *pr = emu_priv(r);
    int path_matched = 0;
    char tmp[8192];

    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *raw = path_for(routes[i].pattern, pr->raw_path, tmp, sizeof tmp);
        if (raw == NULL || !match_pattern(routes[i].pattern, raw, r, pr->names))
            continue;
        if (strcmp(routes[i].method, "*") == 0 || strcmp(routes[i].method, r->method) == 0) {
            *out = &routes[i];
            return 200;
        }
        path_matched = 1;
    }
    emu_req_clear_params(r);
    return path_matched ? 405 : 404;
}

/* ---- request accessors ---- */

/* As mg_get_header (the first header of that name, case-insensitively),
 * with libc's comparison: civetweb's goes a character at a time through
 * tolower, and a Storage request looks up half a dozen headers. */
const char *emu_req_header(const struct emu_req *r, const char *name)
{
    const struct mg_request_info *ri = emu_cpriv(r)->ri;

    for (int i = 0; i < ri->num_headers; i++)
        if (ri->http_headers[i].name != NULL && strcasecmp(ri->http_headers[i].name, name) == 0)
            return ri->http_headers[i].value;
    return NULL;
}

const char *emu_req_param(const struct emu_req *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (strcmp(r->param_names[i], name) == 0)
            return r->param_values[i];
    return NULL;
}

/* Looks name up in an x-www-form-urlencoded list; names are compared after
 * decoding, as the Azure SDKs send "api%2Dversion". */
static int form_lookup(const char *data, size_t len, const char *name, char *out, size_t outlen)
{
    const char *p = data, *end = data + len;

    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(pe - p));
        const char *ne = eq ? eq : pe;
        char nbuf[256];
        long nl;

        if ((size_t)(ne - p) < sizeof nbuf) {
            nl = pct_decode(p, (size_t)(ne - p), nbuf, 1);
            if (nl >= 0 && strcmp(nbuf, name) == 0) {
                const char *v = eq ? eq + 1 : pe;
                size_t vl = (size_t)(pe - v);
                char *dec = emu_pct_decode_dup(v, vl, 1);
                int ok = 0;
                if (dec != NULL && strlen(dec) < outlen) {
                    memcpy(out, dec, strlen(dec) + 1);
                    ok = 1;
                }
                free(dec);
                return ok;
            }
        }
        p = pe + 1;
    }
    return 0;
}

int emu_req_query(const struct emu_req *r, const char *name, char *out, size_t outlen)
{
    if (outlen > 0)
        out[0] = '\0';
    if (r->query == NULL || outlen == 0)
        return 0;
    return form_lookup(r->query, strlen(r->query), name, out, outlen);
}

int emu_req_form(const struct emu_req *r, const char *name, char *out, size_t outlen)
{
    if (outlen > 0)
        out[0] = '\0';
    if (outlen == 0)
        return 0;
    return form_lookup(r->body, r->body_len, name, out, outlen);
}

const char *emu_req_remote(const struct emu_req *r)
{
    return emu_cpriv(r)->ri->remote_addr;
}

size_t emu_req_headers(const struct emu_req *r, const char **names, const char **values, size_t max)
{
    const struct mg_request_info *ri = emu_cpriv(r)->ri;
    size_t n = 0;

    for (int i = 0; i < ri->num_headers && n < max; i++, n++) {
        names[n] = ri->http_headers[i].name;
        values[n] = ri->http_headers[i].value ? ri->http_headers[i].value : "";
    }
    return n;
}

const char *emu_req_raw_path(const struct emu_req *r)
{
    const struct mg_request_info *ri = emu_cpriv(r)->ri;

    return ri->local_uri_raw != NULL ? ri->local_uri_raw : r->path;
}

X509 *emu_req_peer_cert(const struct emu_req *r)
{
    const struct emu_req_priv *pr = emu_cpriv(r);

    /* Only a listener that asked for certificates had them verified. */
    if (!pr->l->def->client_cert || pr->ri->client_cert == NULL)
        return NULL;
    return pr->ri->client_cert->peer_cert;
}
