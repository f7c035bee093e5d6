/* The emulated enterprise CA ("ca", https): lookups, who is calling (TLS
 * client certificate, HTTP Basic, or Windows authentication through
 * ca_ntlm.c / ca_negotiate.c), and the mount that brings up the
 * configuration (ca_config.c), hierarchy, database and CRLs and routes
 * /certsrv, EST and /CertEnroll. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/b64.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/ca.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define AUTH_HEADER_MAX 1024

/* ---- lookups ---- */

const struct ca_template *ca_template_find(const struct emu_ca *ca, const char *ref)
{
    if (ref == NULL || ref[0] == '\0')
        return NULL;
    /* MS-WCCE maps a name to the template's cn and an OID to its OID. */
    for (size_t i = 0; i < ca->ntmpl; i++)
        if (strcasecmp(ca->tmpl[i].name, ref) == 0 || strcmp(ca->tmpl[i].oid, ref) == 0)
            return &ca->tmpl[i];
    return NULL;
}

const struct ca_account *ca_account_find(const struct emu_ca *ca, const char *name)
{
    for (size_t i = 0; i < ca->nacct; i++)
        if (strcasecmp(ca->acct[i].name, name) == 0)
            return &ca->acct[i];
    return NULL;
}

int ca_account_may_enroll(const struct ca_account *a, const struct ca_template *t)
{
    if (a->all_templates)
        return 1;
    for (size_t i = 0; i < a->ntemplates; i++)
        if (strcasecmp(a->templates[i], t->name) == 0)
            return 1;
    return 0;
}

const char *ca_base_url(const struct emu_ca *ca)
{
    const char *u = emu_service_url(ca->e, "ca");
    return u ? u : "";
}

/* ---- Basic auth ---- */

/* 401 with the schemes this CA offers on the page (IIS lists Negotiate,
 * NTLM, then Basic), or only an NTLM challenge (the handshake's second leg).
 * EST offers Basic alone, as EST servers do. */
static void reply_401(struct emu_ca *ca, struct emu_req *r, int html, const char *cert_why,
                      const char *challenge)
{
    static const char basic[] = "WWW-Authenticate: Basic realm=\"certlc-emulator CA\"";
    const char *hdrs[4];
    size_t k = 0;
    static const char page[] =
        "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\">\r\n<html><head>"
        "<title>401 - Unauthorized: Access is denied due to invalid credentials.</title>"
        "</head><body><h2>401 - Unauthorized: Access is denied due to invalid credentials."
        "</h2><h3>You do not have permission to view this directory or page using the "
        "credentials that you supplied.</h3></body></html>\r\n";
    static const char text[] =
        "401 Unauthorized: HTTP Basic credentials of a configured CA account are required\n";
    char why[512];
    int n;

    if (challenge != NULL) {
        hdrs[k++] = challenge;
    } else {
        if (html && ca->negotiate != NULL)
            hdrs[k++] = "WWW-Authenticate: Negotiate";
        if (html && ca->ntlm != NULL)
            hdrs[k++] = "WWW-Authenticate: NTLM";
        hdrs[k++] = basic;
    }
    hdrs[k] = NULL;
    if (html) {
        emu_reply(r, 401, "text/html", page, sizeof page - 1, hdrs);
    } else if (cert_why != NULL && cert_why[0] != '\0') {
        n = snprintf(why, sizeof why,
                     "401 Unauthorized: the TLS client certificate was not accepted (%.300s), "
                     "and no valid HTTP Basic credentials were given\n",
                     cert_why);
        emu_reply(r, 401, "text/plain", why, n > 0 && (size_t)n < sizeof why ? (size_t)n : 0, hdrs);
    } else {
        emu_reply(r, 401, "text/plain", text, sizeof text - 1, hdrs);
    }
}

/* The account of valid Basic credentials, or NULL. */
static const struct ca_account *basic_auth(struct emu_ca *ca, struct emu_req *r)
{
    const char *h = emu_req_header(r, "Authorization");
    const struct ca_account *a = NULL, *found;
    unsigned char *dec = NULL;
    size_t len = 0;
    char *colon, *user, *at, *bs;

    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0 || strlen(h) > AUTH_HEADER_MAX)
        goto out;
    if (clc_b64_decode(h + 6, strlen(h + 6), &dec, &len) != CLC_OK || memchr(dec, 0, len))
        goto out;
    colon = strchr((char *)dec, ':');
    if (colon == NULL)
        goto out;
    *colon = '\0';
    /* "DOMAIN\user" and "user@domain" name the same account. */
    user = (char *)dec;
    bs = strrchr(user, '\\');
    if (bs != NULL)
        user = bs + 1;
    at = strchr(user, '@');
    if (at != NULL)
        *at = '\0';
    found = ca_account_find(ca, user);
    if (found != NULL && clc_secret_equals(found->password, colon + 1, strlen(colon + 1)))
        a = found;
out:
    if (dec != NULL) {
        OPENSSL_cleanse(dec, len);
        free(dec);
    }
    return a;
}

/* Web Enrollment with Windows authentication on, as IIS does it: an NTLM or
 * Negotiate header runs that scheme; without a header, a connection NTLM
 * authenticated earlier keeps its account; Basic as always. A malformed
 * token is a 400, a refused one a 401 with the offers again. */
static const struct ca_account *windows_auth(struct emu_ca *ca, struct emu_req *r,
                                             const char *cert_why)
{
    const char *h = emu_req_header(r, "Authorization");
    const struct ca_account *a = NULL;
    char line[CA_WINAUTH_LINE_MAX] = "", page[CA_WINAUTH_LINE_MAX + 256];
    enum ca_winauth v;
    int n;

    if (h != NULL && strncasecmp(h, "NTLM ", 5) == 0 && ca->ntlm != NULL)
        v = ca_ntlm_step(ca, r, h + 5, &a, line, sizeof line);
    else if (h != NULL && strncasecmp(h, "Negotiate ", 10) == 0 && ca->negotiate != NULL)
        v = ca_negotiate_step(ca, r, h + 10, &a, line, sizeof line);
    else if (h == NULL && (a = ca_ntlm_conn_account(ca, r)) != NULL)
        return a;
    else if ((a = basic_auth(ca, r)) != NULL)
        return a;
    else
        v = CA_WINAUTH_REFUSED;
    switch (v) {
    case CA_WINAUTH_OK:
        return a;
    case CA_WINAUTH_CHALLENGE:
        reply_401(ca, r, 1, cert_why, line);
        return NULL;
    case CA_WINAUTH_MALFORMED:
        clc_log(CLC_LOG_INFO, "emu.ca.auth_malformed", CLC_LS("request_id", r->request_id),
                CLC_LS("reason", line));
        n = snprintf(page, sizeof page,
                     "<html><head><title>400 - Bad Request</title></head><body><h2>400 - Bad "
                     "Request: %s</h2></body></html>\r\n",
                     line);
        emu_reply(r, 400, "text/html", page, n > 0 && (size_t)n < sizeof page ? (size_t)n : 0,
                  NULL);
        return NULL;
    case CA_WINAUTH_REFUSED:
        break;
    }
    if (line[0] != '\0')
        clc_log(CLC_LOG_INFO, "emu.ca.auth_refused", CLC_LS("request_id", r->request_id),
                CLC_LS("reason", line));
    reply_401(ca, r, 1, cert_why, NULL);
    return NULL;
}

/* A certificate that maps to an account wins; one that does not leaves the
 * decision to Basic credentials (RFC 7030 3.2.3 allows both), and the 401
 * says why it was not taken. */
const struct ca_account *ca_auth_row(struct emu_ca *ca, struct emu_req *r, int html,
                                     int64_t *cert_row)
{
    X509 *peer = emu_req_peer_cert(r);
    const struct ca_account *a = NULL;
    char why[384] = "";

    *cert_row = 0;
    if (peer != NULL) {
        a = ca_cert_account(ca, peer, cert_row, why, sizeof why);
        if (a != NULL)
            return a;
        clc_log(CLC_LOG_INFO, "emu.ca.cert_refused", CLC_LS("request_id", r->request_id),
                CLC_LS("reason", why));
    }
    if (html && (ca->ntlm != NULL || ca->negotiate != NULL))
        return windows_auth(ca, r, why);
    a = basic_auth(ca, r);
    if (a == NULL)
        reply_401(ca, r, html, why, NULL);
    return a;
}

const struct ca_account *ca_auth(struct emu_ca *ca, struct emu_req *r, int html)
{
    int64_t row;

    return ca_auth_row(ca, r, html, &row);
}

/* ---- endpoints document ---- */

/* The accounts' Basic auth passwords, for the endpoints document (0600). */
static cJSON *ca_endpoints(const struct emu *e, void *ctx)
{
    const struct emu_ca *ca = ctx;
    cJSON *o = cJSON_CreateObject();

    (void)e;
    for (size_t k = 0; o != NULL && k < ca->nacct; k++) {
        const struct ca_account *a = &ca->acct[k];
        if (clc_json_add_str(o, a->name, clc_secret_reveal(a->password)) != CLC_OK) {
            cJSON_Delete(o);
            o = NULL;
        }
    }
    return o;
}

/* ---- mount ---- */

static void ca_free(void *ctx)
{
    struct emu_ca *ca = ctx;

    if (ca == NULL)
        return;
    ca_store_clear(ca);
    free(ca->req);
    ca_pki_cleanup(ca);
    ca_mtls_cleanup(ca);
    ca_ntlm_cleanup(ca);
    ca_negotiate_cleanup(ca);
    for (size_t i = 0; i < ca->nacct; i++)
        clc_secret_free(ca->acct[i].password);
    pthread_mutex_destroy(&ca->mu);
    free(ca);
}

static void ca_tick(struct emu *e, int64_t now, void *ctx)
{
    struct emu_ca *ca = ctx;

    (void)e;
    pthread_mutex_lock(&ca->mu);
    ca_crl_refresh(ca, now);
    pthread_mutex_unlock(&ca->mu);
}

/* 404/405/413 in the shape of the interface the path belongs to. */
static void ca_route_error(struct emu_req *r, int status, const char *code, const char *message)
{
    char esc[512], page[1024];
    int n;

    (void)code;
    if (strncmp(r->path, "/.well-known/est", 16) == 0) {
        n = snprintf(page, sizeof page, "%s\n", message ? message : "request refused");
        emu_reply(r, status, "text/plain", page, (size_t)n < sizeof page ? (size_t)n : 0, NULL);
        return;
    }
    ca_html_escape(message ? message : "request refused", esc, sizeof esc);
    n = snprintf(page, sizeof page,
                 "<html><head><title>%d</title></head><body><h2>%d - %s</h2></body></html>\r\n",
                 status, status, esc);
    emu_reply(r, status, "text/html", page, (size_t)n < sizeof page ? (size_t)n : 0, NULL);
}

static struct emu_route ca_routes[64];
static struct emu_service_def ca_def = {
    .name = "ca",
    .routes = ca_routes,
    .error = ca_route_error,
    /* As IIS set to "Accept" client certificates and EST servers do. */
    .client_cert = 1,
    .client_ca_file = ca_mtls_ca_file,
};
static pthread_once_t routes_once = PTHREAD_ONCE_INIT;

/* One listener serves Web Enrollment, EST and the AIA/CDP files. */
static void build_routes(void)
{
    const struct emu_route *part;
    size_t n = 0, k;

    ca_routes[n++] = (struct emu_route){"GET", "/CertEnroll/{file}", ca_h_certenroll};
    if (ca_certsrv_routes(&part, &k) == CLC_OK)
        for (size_t i = 0; i < k && n < 64; i++)
            ca_routes[n++] = part[i];
    if (ca_est_routes(&part, &k) == CLC_OK)
        for (size_t i = 0; i < k && n < 64; i++)
            ca_routes[n++] = part[i];
    ca_def.nroutes = n;
}

enum clc_err emu_ca_mount(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_ca *ca = calloc(1, sizeof *ca);
    const char *wd = emu_work_dir(e);
    enum clc_err rc;
    int n;

    if (ca == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    ca->e = e;
    pthread_mutex_init(&ca->mu, NULL);
    /* From here on the stop hook frees ca, also when mounting fails. */
    rc = emu_at_stop(e, ca_free, ca);
    if (rc != CLC_OK) {
        ca_free(ca);
        return clc_errf(ei, rc, "ca: cannot register the stop hook");
    }
    rc = ca_config_parse(ca, ei);
    if (rc == CLC_OK)
        rc = ca_mtls_config(ca, cJSON_GetObjectItemCaseSensitive(emu_config(e), "ca"), ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "emulator config");
    n = snprintf(ca->dir, sizeof ca->dir, "%s/enterprise-ca", wd ? wd : ".");
    if (wd == NULL || n < 0 || (size_t)n >= sizeof ca->dir)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca: no usable work directory");
    rc = clc_file_mkdirs(ca->dir, 0700, ei);
    if (rc == CLC_OK)
        rc = ca_ntlm_config(ca, cJSON_GetObjectItemCaseSensitive(emu_config(e), "ca"), ei);
    if (rc == CLC_OK) /* after the directory: the replay cache lives there */
        rc = ca_negotiate_config(ca, cJSON_GetObjectItemCaseSensitive(emu_config(e), "ca"), ei);
    if (rc == CLC_OK)
        rc = ca_config_passwords(ca, ei);
    if (rc == CLC_OK)
        rc = ca_store_load(ca, ei);
    if (rc == CLC_OK)
        rc = ca_pki_init(ca, emu_now(e), ei);
    if (rc == CLC_OK)
        rc = ca_crl_sign(ca, emu_now(e), ei);
    if (rc == CLC_OK)
        rc = ca_mtls_setup(ca, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "ca");
    rc = emu_endpoints_add(e, "ca_accounts", ca_endpoints, ca);
    if (rc == CLC_OK)
        rc = emu_on_tick(e, ca_tick, ca);
    if (rc == CLC_OK)
        rc = ca_control_mount(ca, ei);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "ca: control hooks");
    pthread_once(&routes_once, build_routes);
    return emu_service_add(e, "ca", &ca_def, emu_config_port(e, "ca"), ca, ei);
}
