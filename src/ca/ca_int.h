/* Inside the CA clients: the parsed configuration, the per-type operations
 * table, and the shared pieces (the CA layer over clc_http with the CA auth
 * methods, result verification, PKCS#7 and chain ordering, AD CS page
 * parsing). */
#ifndef CLC_CA_INT_H
#define CLC_CA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "ca/ca.h"
#include "core/buf.h"
#include "core/secret.h"

enum clc_ca_auth {
    CLC_CA_AUTH_NONE = 0,
    CLC_CA_AUTH_BASIC,
    CLC_CA_AUTH_NEGOTIATE,
    CLC_CA_AUTH_NTLM,
    CLC_CA_AUTH_CERT
};

#define CLC_CA_MAX_ARGV 32
#define CLC_CA_MAX_PASS_ENV 16

/* Everything a client needs, owned (strings malloc'd). */
struct clc_ca_conf {
    char *name;
    enum clc_ca_type type;
    char *url; /* adcs: .../certsrv; est: .../.well-known/est */
    enum clc_ca_auth auth;
    char *username;
    struct clc_secret *password;
    char *client_cert; /* PEM files for TLS client authentication */
    char *client_key;
    char *keytab;        /* Kerberos: KRB5_CLIENT_KTNAME for the process */
    char *ccache;        /* Kerberos: KRB5CCNAME for the process */
    char *trust_anchors; /* PEM roots the issued chain must verify to */
    char *tls_ca_bundle; /* PEM roots for the HTTPS connection; NULL = system */
    char *proxy;
    char *user_agent;
    char *argv[CLC_CA_MAX_ARGV + 1]; /* command; NULL-terminated */
    size_t argc;
    char *pass_env[CLC_CA_MAX_PASS_ENV + 1];
    size_t npass_env;
    long connect_timeout_ms;
    long timeout_ms;         /* one HTTP exchange, or the whole command run */
    int64_t poll_interval_s; /* suggested wait for pending AD CS / command requests */
    int64_t max_skew_s;      /* notBefore may be this far in the future */
    size_t max_response;
};

void clc_ca_conf_cleanup(struct clc_ca_conf *c);

struct clc_ca_ops {
    enum clc_err (*submit)(struct clc_ca *ca, const struct clc_ca_req *req,
                           struct clc_ca_result *res, struct clc_errinfo *ei);
    enum clc_err (*fetch)(struct clc_ca *ca, const struct clc_ca_req *req, const char *id,
                          struct clc_ca_result *res, struct clc_errinfo *ei);
    enum clc_err (*cacerts)(struct clc_ca *ca, STACK_OF(X509) * *out, struct clc_errinfo *ei);
};

struct clc_ca_http;

/* CA certificates already parsed, keyed by their exact DER (adcs.c). */
#define CLC_CA_CERT_CACHE 8
struct clc_ca_cert_cache {
    unsigned char *der;
    size_t len;
    X509 *x; /* the cache's reference */
};

/* A client is used by one thread at a time (its HTTP handle is too), so
 * nothing in it is locked. */
struct clc_ca {
    struct clc_ca_conf conf;
    const struct clc_ca_ops *ops;
    X509_STORE *anchors;                   /* NULL: submit/fetch refused (cacerts still works) */
    char anchors_err[CLC_ERRINFO_MSG_MAX]; /* why they did not load, if configured */
    struct clc_clock clock;
    int has_clock;
    struct clc_ca_http *http; /* adcs, est */
    struct clc_ca_cert_cache cert_cache[CLC_CA_CERT_CACHE];
    size_t cert_cache_next; /* the slot the next new entry takes (the oldest) */
};

extern const struct clc_ca_ops clc_ca_adcs_ops;
extern const struct clc_ca_ops clc_ca_est_ops;
extern const struct clc_ca_ops clc_ca_command_ops;

int64_t clc_ca_now(const struct clc_ca *ca);

/* Frees the cached CA certificates (clc_ca_free). */
void clc_ca_cert_cache_cleanup(struct clc_ca *ca);

/* ---- the CA layer over clc_http (transport.c) ---- */

/* How the auth method maps onto clc_http's HTTP authentication (libcurl's
 * CURLAUTH_* bits and flags, passed on as they are); computed separately so
 * a unit test can check the wiring of the methods the emulator cannot
 * exercise. */
struct clc_ca_auth_plan {
    long httpauth;     /* CURLAUTH_* bits; 0 = no HTTP authentication */
    int force_http11;  /* NTLM is connection-based: no HTTP/2 */
    int empty_userpwd; /* Negotiate: ":" so libcurl uses the ticket cache */
    int send_password; /* Basic/NTLM: username and password set */
    int client_cert;   /* the client certificate and key given to clc_http */
};
enum clc_err clc_ca_auth_plan(const struct clc_ca_conf *conf, struct clc_ca_auth_plan *out,
                              struct clc_errinfo *ei);

struct clc_ca_http_resp {
    long status;
    char content_type[128]; /* media type only, lower-cased, no parameters */
    char retry_after[64];
    char www_authenticate[128]; /* the schemes offered, "Negotiate, NTLM" */
    struct clc_buf body;        /* capped at the CA's max_response */
};
void clc_ca_http_resp_init(struct clc_ca_http_resp *r);
void clc_ca_http_resp_cleanup(struct clc_ca_http_resp *r);

enum clc_err clc_ca_http_new(const struct clc_ca_conf *conf, struct clc_ca_http **out,
                             struct clc_errinfo *ei);
void clc_ca_http_free(struct clc_ca_http *h);
/* One exchange (clc_http_do, no retries); CLC_OK when any response arrived.
 * Transport failures are CLC_ERR_NET/_TLS/_TIMEOUT/_LIMIT with a message
 * naming the URL (without its query); a url curl cannot use is _CONFIG. */
enum clc_err clc_ca_http_do(struct clc_ca_http *h, const char *method, const char *url,
                            const char *content_type, const void *body, size_t len,
                            struct clc_ca_http_resp *resp, struct clc_errinfo *ei);

/* The error for a status the protocol did not expect: 401 auth (naming the
 * methods the server offers), 403 forbidden, 404 config (wrong url), 408/429/
 * 5xx retryable, others CLC_ERR_HTTP; the body's first words in the message. */
enum clc_err clc_ca_http_status_error(const struct clc_ca_conf *conf,
                                      const struct clc_ca_http_resp *resp, const char *what,
                                      struct clc_errinfo *ei);

/* ---- chains and verification (chain.c, verify.c) ---- */

/* Certificates of a PKCS#7 (certs-only SignedData) in DER, base64, or PEM
 * armour of either "PKCS7" or (AD CS) "CERTIFICATE" type. New stack. */
enum clc_err clc_ca_p7_parse(const void *data, size_t len, STACK_OF(X509) * *out,
                             struct clc_errinfo *ei);
/* One certificate in PEM (CRLF tolerated) or DER. */
enum clc_err clc_ca_cert_parse(const void *data, size_t len, X509 **out, struct clc_errinfo *ei);
/* Orders certificates leaf first: the leaf is `leaf` when given, else the one
 * whose key is key (when given), else the only certificate that issues none of
 * the others. Then each next certificate is the issuer of the previous,
 * taken from set, until a self-signed one or no issuer. Certificates not on
 * the path are dropped. *out is a new stack holding new references. */
enum clc_err clc_ca_chain_order(X509 *leaf, STACK_OF(X509) * set, EVP_PKEY *key,
                                STACK_OF(X509) * *out, struct clc_errinfo *ei);
/* Loads the trust anchors file into a new store. */
enum clc_err clc_ca_anchors_load(const char *path, X509_STORE **out, struct clc_errinfo *ei);
/* The checks every issued result passes: leaf key = CSR key (when csr is
 * given), chain verifies to anchors at the CA's clock, every certificate on
 * the path is within its validity (notBefore up to max_skew_s ahead). */
enum clc_err clc_ca_verify(struct clc_ca *ca, const struct clc_ca_csr *csr, STACK_OF(X509) * chain,
                           struct clc_errinfo *ei);
/* Result helpers: takes chain (even on failure), verifies, sets ISSUED. */
enum clc_err clc_ca_finish_issued(struct clc_ca *ca, const struct clc_ca_req *req,
                                  STACK_OF(X509) * chain, struct clc_ca_result *res,
                                  struct clc_errinfo *ei);
void clc_ca_set_text(char *dst, size_t dstsz, const char *src, size_t n);

/* ---- AD CS pages (adcs_parse.c) ---- */

enum clc_adcs_page {
    CLC_ADCS_PAGE_UNKNOWN = 0,
    CLC_ADCS_PAGE_ISSUED,
    CLC_ADCS_PAGE_PENDING,
    CLC_ADCS_PAGE_DENIED,
    CLC_ADCS_PAGE_NOT_FOUND, /* certnew.cer: no such request */
    CLC_ADCS_PAGE_ERROR      /* an error page we recognise (e.g. Error Parsing Request) */
};
struct clc_adcs_disp {
    enum clc_adcs_page page;
    char request_id[CLC_CA_ID_MAX];
    char message[CLC_CA_REASON_MAX]; /* disposition message, entities decoded */
    char code[CLC_CA_CODE_MAX];      /* first 0x8... HRESULT seen, if any */
    char title[128];                 /* for messages about pages we do not know */
};
/* Classifies a certfnsh.asp answer (issued / pending / denied pages). */
void clc_adcs_parse_submit_page(const char *html, size_t len, struct clc_adcs_disp *d);
/* Classifies a certnew.cer?ReqID=n answer that was HTML (pending, denied,
 * unknown request). */
void clc_adcs_parse_status_page(const char *html, size_t len, struct clc_adcs_disp *d);

#endif
