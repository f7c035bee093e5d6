/* The URL side of the HTTP client: URLs as messages may show them, which
 * credential may go to which URL (bearer tokens over https or to managed
 * identity endpoints, libcurl's HTTP authentication over https only), and
 * percent-encoding. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "net/http.h"
#include "net/http_int.h"

void clc_http_safe_url(const char *url, char *out, size_t outsz)
{
    CURLU *u = NULL;
    char *s = NULL;
    size_t n = 0;

    if (outsz == 0)
        return;
    out[0] = '\0';
    if (!url)
        return;
    u = curl_url();
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_QUERY, NULL, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK) {
        snprintf(out, outsz, "%s", s);
    } else {
        /* Unparseable: keep only what precedes any query, and no user info
         * can be told apart, so show nothing past the scheme. */
        n = strcspn(url, ":?#@");
        snprintf(out, outsz, "%.*s:(unparseable url)", (int)n, url);
    }
    curl_free(s);
    curl_url_cleanup(u);
}

/* Host part of url into out (empty when unparseable); returns the scheme
 * class: 2 https, 1 http, 0 other or unparseable. */
static int url_scheme_host(const char *url, char *out, size_t outsz)
{
    CURLU *u = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    int kind = 0;

    if (outsz)
        out[0] = '\0';
    if (!u || !url || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        goto out;
    if (outsz)
        snprintf(out, outsz, "%s", host);
    if (strcasecmp(scheme, "https") == 0)
        kind = 2;
    else if (strcasecmp(scheme, "http") == 0)
        kind = 1;
out:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return kind;
}

/* The rule behind clc_http_bearer_allowed, on an already parsed URL. */
static int kind_host_allowed(int kind, const char *host)
{
    if (kind == 2)
        return 1;
    /* Managed identity endpoints are plain http by design and link-local or
     * loopback, so the token never crosses a network. Exact names only. */
    return kind == 1 && (strcmp(host, "169.254.169.254") == 0 || strcmp(host, "localhost") == 0 ||
                         strcmp(host, "127.0.0.1") == 0);
}

int clc_http_bearer_allowed(const char *url)
{
    char host[256];
    int kind = url_scheme_host(url, host, sizeof host);

    return kind_host_allowed(kind, host);
}

/* The rules for libcurl's HTTP authentication: a scheme, either a user
 * with a password or GSS-API's own credentials, nothing NUL-cut, and https
 * only (no managed identity exception: those endpoints take no password). */
static enum clc_err check_auth(const struct clc_http_req *req, int kind, const char *host,
                               struct clc_errinfo *ei)
{
    const struct clc_http_auth *a = req->auth;
    enum clc_err rc = CLC_OK;

    if (req->bearer || req->authorization)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "http: HTTP authentication and a bearer token or authorization value "
                        "given");
    if (a->schemes == 0)
        return clc_errf(ei, CLC_ERR_INVALID, "http: HTTP authentication without a scheme");
    if (a->default_creds ? (a->username || a->password) : (!a->username || !a->password))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "http: HTTP authentication needs a user name and password, or the "
                        "default credentials, not both");
    /* libcurl takes C strings: a NUL inside would cut the credential short. */
    if (a->password && strlen(clc_secret_reveal(a->password)) != clc_secret_len(a->password))
        return clc_errf(ei, CLC_ERR_INVALID, "http: the password contains a NUL byte");
    if (kind == 0)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "refusing to send credentials to a url that is not http(s)");
    if (kind != 2)
        return clc_errf(ei, CLC_ERR_INVALID, "refusing to send credentials over plain http to %s",
                        host);
    if ((rc = clc_http_auth_available(a->schemes, ei)) != CLC_OK)
        return rc;
    return CLC_OK;
}

enum clc_err clc_http_check_credentials(const struct clc_http_req *req, int *plain,
                                        struct clc_errinfo *ei)
{
    char host[256];
    int kind = 0;

    *plain = 0;
    if (req->bearer && req->authorization)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "http: both a bearer token and an authorization "
                        "value given");
    if (!req->bearer && !req->authorization && !req->auth)
        return CLC_OK;
    kind = url_scheme_host(req->url, host, sizeof host);
    if (req->auth)
        return check_auth(req, kind, host, ei);
    if (kind == 0)
        return clc_errf(ei, CLC_ERR_INVALID, "refusing to send %s to a url that is not http(s)",
                        req->bearer ? "a bearer token" : "an authorization header");
    if (!kind_host_allowed(kind, host))
        return clc_errf(ei, CLC_ERR_INVALID, "refusing to send %s over plain http to %s",
                        req->bearer ? "a bearer token" : "an authorization header", host);
    *plain = kind == 1;
    return CLC_OK;
}

enum clc_err clc_http_urlencode(struct clc_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    enum clc_err rc = CLC_OK;

    for (const unsigned char *p = (const unsigned char *)s; *p && rc == CLC_OK; p++) {
        unsigned char c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            rc = clc_buf_append_byte(b, (char)c);
        } else {
            char enc[3] = {'%', hex[c >> 4], hex[c & 0x0f]};
            rc = clc_buf_append(b, enc, sizeof enc);
        }
    }
    return rc;
}
