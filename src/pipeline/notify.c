/* The e-mail notifier: configuration, and one SMTP transaction per notice
 * through libcurl with STARTTLS required unless plaintext was explicitly
 * allowed, TLS verified, AUTH from a secret, and every failure mapped to an
 * error with the server's reply code. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "pipeline/notify_int.h"

#define DEFAULT_TIMEOUT_MS 30000L
#define MAX_TIMEOUT_MS 600000L
#define CONNECT_TIMEOUT_MS 10000L
#define URL_MAX 2048

#define NOTIFY_POOL_MAX 8

struct clc_notify {
    char *url;
    char *from_display;
    char *from_addr;
    char *username;
    struct clc_secret *password;
    char *ca_bundle;
    char *login_options; /* "AUTH=PLAIN", "AUTH=LOGIN" or NULL (server's choice) */
    int allow_plaintext;
    int implicit_tls;
    long timeout_ms;
    const struct clc_clock *clock;
    /* Idle libcurl handles: each keeps its SMTP connection (TLS and AUTH
     * done) for the next message, so a run of renewals does not pay a
     * handshake per mail. Senders take one out, so threads never share. */
    pthread_mutex_t pool_mu;
    CURL *pool[NOTIFY_POOL_MAX];
    size_t npool;
};

const struct clc_config_key clc_notify_config_keys[] = {
    {"smtp.url", CLC_CFG_STR,
     "SMTP server: smtp://host:587 (STARTTLS required) or smtps://host:465; unset = no e-mail"},
    {"smtp.from", CLC_CFG_STR, "From of notices: \"certlc <certlc@example.com>\" or an address"},
    {"smtp.username", CLC_CFG_STR, "AUTH user name; unset = no AUTH"},
    {"smtp.password_file", CLC_CFG_STR, "file holding the AUTH password"},
    {"smtp.password_env", CLC_CFG_STR, "environment variable holding the AUTH password"},
    {"smtp.allow_plaintext", CLC_CFG_BOOL,
     "true = smtp:// may go on without STARTTLS when the server offers none (default false)"},
    {"smtp.auth_mechanism", CLC_CFG_STR, "auto (default), plain or login"},
    {"smtp.ca_bundle", CLC_CFG_STR, "PEM file of CAs for the SMTP server (default http.ca_bundle)"},
    {"smtp.timeout_ms", CLC_CFG_INT, "whole-transaction timeout (default 30000)"},
};
const size_t clc_notify_config_nkeys =
    sizeof clc_notify_config_keys / sizeof clc_notify_config_keys[0];

void clc_notify_free(struct clc_notify *n)
{
    if (n == NULL)
        return;
    free(n->url);
    free(n->from_display);
    free(n->from_addr);
    free(n->username);
    clc_secret_free(n->password);
    free(n->ca_bundle);
    free(n->login_options);
    for (size_t i = 0; i < n->npool; i++)
        curl_easy_cleanup(n->pool[i]);
    pthread_mutex_destroy(&n->pool_mu);
    free(n);
}

/* A handle from the pool (its connection may still be open), or a new one. */
static CURL *handle_take(struct clc_notify *n, int *reused)
{
    CURL *c = NULL;

    pthread_mutex_lock(&n->pool_mu);
    if (n->npool > 0)
        c = n->pool[--n->npool];
    pthread_mutex_unlock(&n->pool_mu);
    *reused = c != NULL;
    if (c != NULL)
        curl_easy_reset(c); /* keeps the live connection */
    else
        c = curl_easy_init();
    return c;
}

/* Back to the pool after a clean transfer; a handle whose transfer failed
 * is dropped with its connection, whatever state the session is in. */
static void handle_give(struct clc_notify *n, CURL *c, int ok)
{
    if (ok) {
        pthread_mutex_lock(&n->pool_mu);
        if (n->npool < NOTIFY_POOL_MAX) {
            n->pool[n->npool++] = c;
            c = NULL;
        }
        pthread_mutex_unlock(&n->pool_mu);
    }
    if (c != NULL)
        curl_easy_cleanup(c);
}

static int has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static enum clc_err dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return CLC_OK;
    *out = strdup(s);
    return *out ? CLC_OK : CLC_ERR_NOMEM;
}

enum clc_err clc_notify_new(const struct clc_notify_opts *opts, struct clc_notify **out,
                            struct clc_errinfo *ei)
{
    struct clc_notify *n;
    enum clc_err rc;

    *out = NULL;
    if (opts == NULL || opts->url == NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "smtp: no server URL");
    if (strlen(opts->url) > URL_MAX || has_ctl(opts->url))
        return clc_errf(ei, CLC_ERR_INVALID, "smtp: the server URL is malformed");
    if (strncasecmp(opts->url, "smtp://", 7) != 0 && strncasecmp(opts->url, "smtps://", 8) != 0)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "smtp: the server URL must start with smtp:// or smtps://");
    if (opts->username != NULL && (opts->username[0] == '\0' || has_ctl(opts->username)))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "smtp: the user name is empty or has control "
                        "characters");
    if (opts->username != NULL && opts->password == NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "smtp: a user name was given without a password");
    if (opts->timeout_ms < 0 || opts->timeout_ms > MAX_TIMEOUT_MS)
        return clc_errf(ei, CLC_ERR_INVALID, "smtp: timeout must be 0..%ld ms", MAX_TIMEOUT_MS);
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&n->pool_mu, NULL);
    rc = clc_notify_parse_from(opts->from, &n->from_display, &n->from_addr, ei);
    if (rc != CLC_OK)
        goto out;
    rc = dup_opt(opts->url, &n->url);
    if (rc == CLC_OK)
        rc = dup_opt(opts->username, &n->username);
    if (rc == CLC_OK)
        rc = dup_opt(opts->ca_bundle, &n->ca_bundle);
    if (rc == CLC_OK && opts->username != NULL)
        rc = clc_secret_dup(opts->password, &n->password);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "out of memory");
        goto out;
    }
    n->allow_plaintext = opts->allow_plaintext != 0;
    n->implicit_tls = strncasecmp(opts->url, "smtps://", 8) == 0;
    n->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (n->allow_plaintext && !n->implicit_tls)
        clc_log(CLC_LOG_WARN, "notify.plaintext_allowed", CLC_LS("url", n->url),
                CLC_LS("note", "mail and any AUTH may travel unencrypted"));
out:
    if (rc != CLC_OK) {
        clc_notify_free(n);
        return rc;
    }
    *out = n;
    return CLC_OK;
}

/* Chooses the SASL mechanism instead of letting libcurl pick the strongest
 * the server offers ("plain", "login"; NULL or "auto" = the server's). */
enum clc_err clc_notify_set_auth_mechanism(struct clc_notify *n, const char *mech,
                                           struct clc_errinfo *ei)
{
    const char *opt = NULL;
    char *copy = NULL;

    if (mech != NULL && strcasecmp(mech, "plain") == 0)
        opt = "AUTH=PLAIN";
    else if (mech != NULL && strcasecmp(mech, "login") == 0)
        opt = "AUTH=LOGIN";
    else if (mech != NULL && strcasecmp(mech, "auto") != 0)
        return clc_errf(ei, CLC_ERR_INVALID, "smtp: unknown AUTH mechanism (auto, plain, login)");
    if (opt != NULL && (copy = strdup(opt)) == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    free(n->login_options);
    n->login_options = copy;
    return CLC_OK;
}

/* The clock for the Date header (NULL = system): tests and the emulator's
 * time. */
void clc_notify_set_clock(struct clc_notify *n, const struct clc_clock *clock)
{
    n->clock = clock;
}

enum clc_err clc_notify_from_config(const struct clc_config *cfg,
                                    const struct clc_http_opts *http_opts, struct clc_notify **out,
                                    struct clc_errinfo *ei)
{
    static const char *const mechs[] = {"auto", "plain", "login"};
    struct clc_notify_opts o = {0};
    struct clc_secret *pw = NULL;
    const char *user = NULL, *mech_name;
    int64_t timeout = 0;
    int plain = 0, mech = 0;
    enum clc_err rc;

    *out = NULL;
    rc = clc_config_str(cfg, "smtp.url", NULL, &o.url, ei);
    if (rc != CLC_OK)
        return rc;
    if (o.url == NULL)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "e-mail is not configured (smtp.url is unset)");
    rc = clc_config_str_req(cfg, "smtp.from", &o.from, ei);
    if (rc == CLC_OK)
        rc = clc_config_str(cfg, "smtp.username", NULL, &user, ei);
    if (rc == CLC_OK)
        rc = clc_config_bool(cfg, "smtp.allow_plaintext", 0, &plain, ei);
    if (rc == CLC_OK)
        rc = clc_config_int(cfg, "smtp.timeout_ms", DEFAULT_TIMEOUT_MS, 1000, MAX_TIMEOUT_MS,
                            &timeout, ei);
    if (rc == CLC_OK)
        rc = clc_config_enum(cfg, "smtp.auth_mechanism", "auto", mechs, 3, &mech, ei);
    if (rc == CLC_OK)
        rc = clc_config_str(cfg, "smtp.ca_bundle", http_opts ? http_opts->ca_bundle : NULL,
                            &o.ca_bundle, ei);
    if (rc != CLC_OK)
        return rc;
    if (user != NULL) {
        rc = clc_config_secret(cfg, "smtp.password", &pw, ei);
        if (rc == CLC_ERR_NOT_FOUND)
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "smtp.username is set but neither smtp.password_file nor "
                          "smtp.password_env is");
        if (rc != CLC_OK)
            return rc;
    }
    o.username = user;
    o.password = pw;
    o.allow_plaintext = plain;
    o.timeout_ms = (long)timeout;
    rc = clc_notify_new(&o, out, ei);
    clc_secret_free(pw);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc == CLC_ERR_NOMEM ? rc : CLC_ERR_CONFIG, "config smtp.*");
    mech_name = mechs[mech];
    rc = clc_notify_set_auth_mechanism(*out, mech_name, ei);
    if (rc != CLC_OK) {
        clc_notify_free(*out);
        *out = NULL;
    }
    return rc;
}

/* ---- sending ---- */

struct reader {
    const char *p;
    size_t left;
};

static size_t read_cb(char *dst, size_t size, size_t nitems, void *ud)
{
    struct reader *r = ud;
    size_t n = size * nitems;

    if (n > r->left)
        n = r->left;
    memcpy(dst, r->p, n);
    r->p += n;
    r->left -= n;
    return n;
}

/* The transport failure or the server's refusal, as an error value. The
 * reply code is kept in ei->http_status and ei->code ("smtp 535"). */
static enum clc_err from_code(long code)
{
    /* The server said no: 4xx is transient, 5xx permanent. */
    if (code == 530 || code == 534 || code == 535 || code == 538)
        return CLC_ERR_AUTH;
    if (code == 552)
        return CLC_ERR_LIMIT;
    if (code >= 400 && code < 500)
        return CLC_ERR_UNAVAILABLE;
    return CLC_ERR_HTTP;
}

static enum clc_err map_error(CURLcode cc, long code, const char *detail, struct clc_errinfo *ei)
{
    enum clc_err e;
    char codestr[32];

    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
        e = CLC_ERR_NET;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        e = CLC_ERR_TIMEOUT;
        break;
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
        e = CLC_ERR_TLS;
        break;
    case CURLE_LOGIN_DENIED:
        e = CLC_ERR_AUTH;
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        e = CLC_ERR_CONFIG;
        break;
    case CURLE_WEIRD_SERVER_REPLY:
        /* libcurl's name for a refusal where it expected a greeting or a
         * go-ahead ("421 Service not available"): the code says more. */
        e = code >= 400 && code < 600 ? from_code(code) : CLC_ERR_PARSE;
        break;
    default:
        e = from_code(code);
        break;
    }
    if (code > 0) {
        snprintf(codestr, sizeof codestr, "smtp %ld", code);
        clc_errinfo_set_http(ei, code, codestr);
    }
    if (cc == CURLE_USE_SSL_FAILED)
        return clc_errf(ei, e,
                        "smtp: the server does not offer STARTTLS and plaintext is not allowed "
                        "(smtp.allow_plaintext)");
    if (code > 0)
        return clc_errf(ei, e, "smtp: %s%s%s (reply %ld)", curl_easy_strerror(cc),
                        detail[0] ? ": " : "", detail, code);
    return clc_errf(ei, e, "smtp: %s%s%s", curl_easy_strerror(cc), detail[0] ? ": " : "", detail);
}

static void strip_eol(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

static enum clc_err transfer_once(struct clc_notify *n, CURL *c, const char *const *to, size_t nto,
                                  const struct clc_buf *msg, struct clc_errinfo *ei)
{
    char errbuf[CURL_ERROR_SIZE] = "", from[CLC_NOTIFY_ADDR_MAX + 3];
    struct curl_slist *rcpt = NULL, *it;
    struct reader rd = {msg->data, msg->len};
    long code = 0;
    CURLcode cc;
    enum clc_err rc = CLC_OK;

    if (c == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "smtp: cannot create a libcurl handle");
    for (size_t i = 0; i < nto; i++) {
        char a[CLC_NOTIFY_ADDR_MAX + 3];
        snprintf(a, sizeof a, "<%s>", to[i]);
        it = curl_slist_append(rcpt, a);
        if (it == NULL) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
        rcpt = it;
    }
    snprintf(from, sizeof from, "<%s>", n->from_addr);
    curl_easy_setopt(c, CURLOPT_URL, n->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, n->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     n->timeout_ms < CONNECT_TIMEOUT_MS ? n->timeout_ms : CONNECT_TIMEOUT_MS);
    /* No proxy: an SMTP relay is reached directly, and the environment's
     * proxy variables are meant for HTTPS. */
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    /* STARTTLS is required unless plaintext was explicitly allowed; then it
     * is still used whenever the server offers it. */
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     n->implicit_tls || !n->allow_plaintext ? (long)CURLUSESSL_ALL
                                                            : (long)CURLUSESSL_TRY);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (n->ca_bundle != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, n->ca_bundle);
    if (n->username != NULL) {
        curl_easy_setopt(c, CURLOPT_USERNAME, n->username);
        curl_easy_setopt(c, CURLOPT_PASSWORD, clc_secret_reveal(n->password));
        if (n->login_options != NULL)
            curl_easy_setopt(c, CURLOPT_LOGIN_OPTIONS, n->login_options);
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    /* A recipient the server refuses does not stop the others. */
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &rd);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)msg->len);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK) {
        strip_eol(errbuf);
        rc = map_error(cc, code, errbuf, ei);
    }
out:
    /* The handle may go back to the pool: it must keep no pointer to this
     * frame or to the list freed here. */
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, NULL);
    curl_easy_setopt(c, CURLOPT_READDATA, NULL);
    curl_slist_free_all(rcpt);
    return rc;
}

static enum clc_err transfer(struct clc_notify *n, const char *const *to, size_t nto,
                             const struct clc_buf *msg, struct clc_errinfo *ei)
{
    int reused = 0;
    CURL *c = handle_take(n, &reused);
    enum clc_err rc;

    if (c == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "smtp: cannot create a libcurl handle");
    rc = transfer_once(n, c, to, nto, msg, ei);
    if (rc != CLC_OK && reused &&
        (rc == CLC_ERR_NET || rc == CLC_ERR_TIMEOUT || rc == CLC_ERR_UNAVAILABLE)) {
        /* The server may have closed the idle connection (its timeout or a
         * 421): once more on a fresh one. */
        handle_give(n, c, 0);
        c = curl_easy_init();
        if (c == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "smtp: cannot create a libcurl handle");
        if (ei)
            clc_errinfo_clear(ei);
        rc = transfer_once(n, c, to, nto, msg, ei);
    }
    handle_give(n, c, rc == CLC_OK);
    return rc;
}

enum clc_err clc_notify_send_renewal(struct clc_notify *n, const char *const *to, size_t nto,
                                     const struct clc_notify_renewal *r, struct clc_errinfo *ei)
{
    const char **ok = NULL;
    size_t nok = 0;
    struct clc_buf msg;
    struct clc_notify_compose_in in = {0};
    enum clc_err rc;

    clc_buf_init(&msg, CLC_NOTIFY_MSG_MAX);
    if (n == NULL || r == NULL || (to == NULL && nto > 0))
        return clc_errf(ei, CLC_ERR_INVALID, "notify: missing argument");
    if (nto > CLC_NOTIFY_MAX_RCPT)
        return clc_errf(ei, CLC_ERR_LIMIT, "notify: more than %d recipients", CLC_NOTIFY_MAX_RCPT);
    ok = calloc(nto ? nto : 1, sizeof *ok);
    if (ok == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    /* Checked again here: this is the last point before a header, whoever
     * built the list. */
    for (size_t i = 0; i < nto; i++) {
        const char *why = to[i] ? clc_notify_addr_problem(to[i], strlen(to[i])) : "missing";
        if (why != NULL) {
            clc_log(CLC_LOG_WARN, "notify.recipient_refused", CLC_LS("reason", why),
                    CLC_LI("index", (long long)i));
            continue;
        }
        ok[nok++] = to[i];
    }
    if (nok == 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "notify: no valid recipient");
        goto out;
    }
    in.from_display = n->from_display;
    in.from_addr = n->from_addr;
    in.to = ok;
    in.nto = nok;
    in.date = clc_clock_now(n->clock);
    rc = clc_notify_compose(&in, r, &msg, ei);
    if (rc == CLC_OK)
        rc = transfer(n, ok, nok, &msg, ei);
    if (rc == CLC_OK)
        clc_log(CLC_LOG_INFO, "notify.sent", CLC_LS("certificate", r->certificate),
                CLC_LS("vault", r->vault), CLC_LS("kind", r->success ? "renewed" : "failed"),
                CLC_LI("recipients", (long long)nok), CLC_LI("bytes", (long long)msg.len));
    else
        clc_log(CLC_LOG_WARN, "notify.failed", CLC_LS("certificate", r->certificate),
                CLC_LS("error", clc_err_name(rc)), CLC_LS("detail", ei ? ei->msg : ""));
out:
    clc_buf_cleanup(&msg);
    free(ok);
    return rc;
}
