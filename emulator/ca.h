/* The emulated enterprise CA's internal contract, shared by its files: ca.c
 * (mount, lookups, who is calling), ca_config.c (the "ca" section, accounts'
 * passwords), ca_pki.c (root and issuing CA,
 * PKCS#7, CRLs, AIA/CDP files), ca_issue.c (CSR policy and issuance),
 * ca_store.c (the request table and its persistence), ca_certsrv.c (AD CS Web
 * Enrollment pages), ca_est.c (EST), ca_mtls.c (TLS client certificates as
 * identities), ca_ntlm.c and ca_negotiate.c (Windows authentication) and
 * ca_control.c (control API). */
#ifndef EMU_CA_H
#define EMU_CA_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include "core/err.h"
#include "core/secret.h"
#include "crypto/signer.h"
#include "emulator/server.h"

struct emu;

#define CA_NAME_MAX 64
#define CA_OID_MAX 128
#define CA_MAX_TEMPLATES 32
#define CA_MAX_ACCOUNTS 32
#define CA_MAX_EKUS 8
#define CA_MAX_REQUESTS 10000
#define CA_MSG_MAX 384
/* Largest CSR accepted (text as submitted, base64 or PEM). */
#define CA_CSR_TEXT_MAX ((size_t)32 * 1024)

/* Request dispositions, as certcli.h numbers them (MS-WCCE). */
enum ca_disp {
    CA_DISP_ERROR = 1,
    CA_DISP_DENIED = 2,
    CA_DISP_ISSUED = 3,
    CA_DISP_PENDING = 5,
    CA_DISP_REVOKED = 6,
};

/* HRESULTs AD CS reports (winerror.h); texts in ca_hr_text. */
#define CA_HR_OK 0x00000000u
#define CA_HR_UNSUPPORTED_CERT_TYPE 0x80094800u
#define CA_HR_TEMPLATE_DENIED 0x80094012u
#define CA_HR_ADMIN_DENIED 0x80094014u
#define CA_HR_KEY_LENGTH 0x80094811u
#define CA_HR_BAD_SIGNATURE 0x80090006u
#define CA_HR_BAD_ALGID 0x80090008u
#define CA_HR_PROPERTY_EMPTY 0x80094004u
#define CA_HR_BAD_REQUESTSUBJECT 0x80094001u
#define CA_HR_BAD_REQUESTSTATUS 0x80094003u
#define CA_HR_ASN1_BADTAG 0x8009310bu
#define CA_HR_INVALID_DATA 0x8007000du
#define CA_HR_INVALID_PARAMETER 0x80070057u

/* "<text> 0x80094014 (-2146877420 CERTSRV_E_ADMIN_DENIED_REQUEST)" */
void ca_hr_status(uint32_t hr, char *out, size_t n);
/* The bare winerror text ("The request was denied by ..."). */
const char *ca_hr_text(uint32_t hr);

/* Key usage bits in X.509 order (digitalSignature = bit 0). */
enum ca_ku {
    CA_KU_DIGITAL_SIGNATURE = 1u << 0,
    CA_KU_NON_REPUDIATION = 1u << 1,
    CA_KU_KEY_ENCIPHERMENT = 1u << 2,
    CA_KU_DATA_ENCIPHERMENT = 1u << 3,
    CA_KU_KEY_AGREEMENT = 1u << 4,
};

struct ca_template {
    char name[CA_NAME_MAX]; /* cn, as CertificateTemplate:<name> names it */
    char oid[CA_OID_MAX];   /* msPKI-Cert-Template-OID */
    int64_t major, minor;
    int64_t validity_s;
    char ekus[CA_MAX_EKUS][CA_OID_MAX]; /* dotted OIDs */
    size_t nekus;
    unsigned key_usage; /* enum ca_ku bits */
    int64_t min_rsa_bits, min_ec_bits;
    int allow_rsa, allow_ec;
    int approval; /* CA certificate manager approval: every request pending */
};

#define CA_PRINCIPAL_MAX 256

struct ca_account {
    char name[CA_NAME_MAX];
    struct clc_secret *password;
    int ntlm;                        /* may authenticate with NTLM (ca_ntlm.c) */
    char kerberos[CA_PRINCIPAL_MAX]; /* "user@REALM" Negotiate maps here; "" = none */
    int all_templates;               /* "templates": ["*"] */
    char templates[CA_MAX_TEMPLATES][CA_NAME_MAX];
    size_t ntemplates;
};

/* One row of the CA database. */
struct ca_request {
    int64_t id;
    char requester[CA_NAME_MAX];
    char template_name[CA_NAME_MAX]; /* as resolved, or as asked when unknown */
    char source[8];                  /* "certsrv" or "est" */
    int disposition;                 /* enum ca_disp */
    uint32_t status;                 /* HRESULT of the last status */
    char message[CA_MSG_MAX];        /* disposition message */
    unsigned char *csr;              /* DER, or NULL when it did not parse */
    size_t csr_len;
    unsigned char csr_digest[32]; /* SHA-256 of the DER */
    unsigned char *cert;          /* DER when issued */
    size_t cert_len;
    char serial[48]; /* upper-case hex */
    int64_t submitted, resolved, revoked_at;
    int revocation_reason;
    int est_delivered; /* an EST client has had the final answer */
};

struct emu_ca {
    struct emu *e;
    pthread_mutex_t mu; /* everything below that changes after mount */

    /* configuration (fixed after mount) */
    struct ca_template tmpl[CA_MAX_TEMPLATES];
    size_t ntmpl;
    struct ca_account acct[CA_MAX_ACCOUNTS];
    size_t nacct;
    char est_template[CA_NAME_MAX];
    char key_type[8]; /* "EC" or "RSA" */
    int64_t retry_after_s;
    int64_t crl_period_s;
    char dir[4096]; /* <work dir>/enterprise-ca */

    /* the CA hierarchy */
    X509 *root, *issuing;
    struct clc_signer *root_key, *issuing_key;

    /* the database */
    struct ca_request *req;
    size_t nreq, capreq;
    int64_t next_id;

    /* published CRLs (DER), re-signed on revocation and when stale */
    unsigned char *crl, *root_crl;
    size_t crl_len, root_crl_len;
    int64_t crl_this, crl_next, crl_number;

    /* TLS client certificates (ca_mtls.c; fixed after mount) */
    X509_STORE *own_store;         /* the issuing and root CA */
    X509_STORE *ext_store;         /* ca.client_auth.ca_file, or NULL */
    STACK_OF(X509) * ext_certs;    /* its certificates */
    char ext_account[CA_NAME_MAX]; /* its certificates' account; "" = their CN names it */
    char client_ca_file[4200];     /* the bundle the listener verifies with */

    /* Windows authentication (ca_ntlm.c, ca_negotiate.c); NULL = not offered */
    struct ca_ntlm *ntlm;
    struct ca_negotiate *negotiate;
};

/* ---- ca.c ---- */
/* Template by name (case-insensitive) or OID; NULL when unknown. */
const struct ca_template *ca_template_find(const struct emu_ca *ca, const char *ref);
const struct ca_account *ca_account_find(const struct emu_ca *ca, const char *name);
int ca_account_may_enroll(const struct ca_account *a, const struct ca_template *t);
/* Who is asking: the account a verified TLS client certificate stands for
 * (ca_cert_account), else HTTP Basic credentials. Returns the account, or
 * NULL after answering 401 (html = AD CS's IIS page, else a text body for
 * EST). */
const struct ca_account *ca_auth(struct emu_ca *ca, struct emu_req *r, int html);
/* The same; *cert_row is the id of this CA's request whose certificate
 * authenticated the caller, 0 when it was not one of this CA's. */
const struct ca_account *ca_auth_row(struct emu_ca *ca, struct emu_req *r, int html,
                                     int64_t *cert_row);
/* Base URL of the "ca" listener ("https://127.0.0.1:port"), "" before it listens. */
const char *ca_base_url(const struct emu_ca *ca);

/* ---- ca_config.c ---- */
/* Reads the "ca" config section (templates, accounts, key type, EST, CRL;
 * defaults when absent); an unknown key or bad value is CLC_ERR_CONFIG. */
enum clc_err ca_config_parse(struct emu_ca *ca, struct clc_errinfo *ei);
/* Gives accounts without a configured password a random one, kept in the
 * data dir so a restart does not change it. */
enum clc_err ca_config_passwords(struct emu_ca *ca, struct clc_errinfo *ei);

/* ---- ca_pki.c ---- */
/* Loads the hierarchy from ca->dir, or makes and saves it (keys 0600). */
enum clc_err ca_pki_init(struct emu_ca *ca, int64_t now, struct clc_errinfo *ei);
void ca_pki_cleanup(struct emu_ca *ca);
/* Re-signs both CRLs from the revoked rows (call under ca->mu). */
enum clc_err ca_crl_sign(struct emu_ca *ca, int64_t now, struct clc_errinfo *ei);
/* Re-signs when the CRL has passed nextUpdate or lies in the future. */
void ca_crl_refresh(struct emu_ca *ca, int64_t now);
/* PKCS#7 certs-only DER of certs (leaf first by convention; the SET has
 * no order on the wire). */
enum clc_err ca_pkcs7(X509 *const *certs, size_t n, unsigned char **der, size_t *len);
/* Base64 of der with CRLF line breaks every 64 characters; armour label
 * ("CERTIFICATE", "X509 CRL") or NULL for none. malloc'd. */
char *ca_b64_lines(const unsigned char *der, size_t len, const char *label);
/* GET /CertEnroll/{file}: the CA certificates and CRLs (no auth). */
void ca_h_certenroll(struct emu_req *r);
#define CA_FILE_ISSUING_CRT "certlc-issuing-ca.crt"
#define CA_FILE_ISSUING_CRL "certlc-issuing-ca.crl"
#define CA_FILE_ROOT_CRT "certlc-root-ca.crt"
#define CA_FILE_ROOT_CRL "certlc-root-ca.crl"

/* ---- ca_issue.c ---- */
/* What a submission came to, copied out of the table (no locks held). */
struct ca_result {
    int64_t id;
    int disposition;
    uint32_t status;
    char message[CA_MSG_MAX];
    unsigned char *cert; /* DER when issued (or revoked) */
    size_t cert_len;
};
void ca_result_cleanup(struct ca_result *res);

/* Where a submission came from and what it asked for. */
struct ca_submit {
    const struct ca_account *account;
    const char *template_ref; /* name or OID; NULL or "" = none given */
    const char *csr_text;     /* base64 DER, or PEM */
    size_t csr_len;
    const char *source; /* "certsrv" / "est" */
    int est_retry;      /* EST: answer a repeat of a pending request */
    int est_reenroll;   /* EST simplereenroll: subject/SAN must match a cert */
    int64_t renew_row;  /* re-enrollment: only this request's certificate (0 = any) */
};
/* Applies the template's policy and issues, holds or denies; records the
 * row and persists it. CLC_ERR_LIMIT when the table is full; other errors
 * are internal. res is filled on CLC_OK. */
enum clc_err ca_submit(struct emu_ca *ca, const struct ca_submit *s, struct ca_result *res,
                       struct clc_errinfo *ei);
/* Issues a pending request now (manager approval). Under ca->mu. */
enum clc_err ca_issue_pending(struct emu_ca *ca, struct ca_request *q, int64_t now,
                              struct clc_errinfo *ei);

/* ---- ca_mtls.c ---- */
/* Reads ca.client_auth (cfg = the "ca" section or NULL; after the accounts). */
enum clc_err ca_mtls_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei);
/* Writes the client CA bundle and trust stores (after ca_pki_init). */
enum clc_err ca_mtls_setup(struct emu_ca *ca, struct clc_errinfo *ei);
void ca_mtls_cleanup(struct emu_ca *ca);
/* client_ca_file hook of the listener: ca->client_ca_file. */
const char *ca_mtls_ca_file(void *ctx);
/* The account a TLS client certificate stands for, or NULL with the reason
 * in why. *row as for ca_auth_row. */
const struct ca_account *ca_cert_account(struct emu_ca *ca, X509 *cert, int64_t *row, char *why,
                                         size_t wn);

/* ---- ca_ntlm.c, ca_negotiate.c: Windows authentication (IIS's providers) ---- */
/* What an Authorization header came to. */
enum ca_winauth {
    CA_WINAUTH_OK = 0,    /* *account authenticated */
    CA_WINAUTH_CHALLENGE, /* answer 401 with the challenge line (NTLM leg 2) */
    CA_WINAUTH_REFUSED,   /* well-formed, but not a valid credential: 401 */
    CA_WINAUTH_MALFORMED, /* not a message of the scheme: 400 */
};
#define CA_WINAUTH_LINE_MAX 1024

/* Reads ca.ntlm (cfg = the "ca" section or NULL, after the accounts); NTLM
 * is offered when an account has "ntlm": true. */
enum clc_err ca_ntlm_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei);
void ca_ntlm_cleanup(struct emu_ca *ca);
/* One leg of the handshake for "Authorization: NTLM <token>" (token = what
 * follows the scheme). CHALLENGE fills line ("WWW-Authenticate: NTLM ...");
 * REFUSED/MALFORMED put the reason (no secrets) in line. */
enum ca_winauth ca_ntlm_step(struct emu_ca *ca, struct emu_req *r, const char *token,
                             const struct ca_account **account, char *line, size_t n);
/* The account an earlier handshake authenticated this TCP connection as,
 * or NULL: NTLM authenticates connections, not requests. */
const struct ca_account *ca_ntlm_conn_account(struct emu_ca *ca, struct emu_req *r);
/* The primitives, for tests against MS-NLMP 4.2.4 and RFC 1320 A.5. */
void ca_ntlm_md4(const void *data, size_t len, unsigned char out[16]);
/* NTOWFv2 from a UTF-8 password, an ASCII user and the domain as
 * UTF-16LE bytes (as the AUTHENTICATE message carries it). 0 on success. */
int ca_ntlm_ntowfv2(const char *password, const char *user, const unsigned char *dom16,
                    size_t dom16_len, unsigned char out[16]);
/* NTProofStr = HMAC-MD5(key, server challenge || temp). 0 on success. */
int ca_ntlm_proof(const unsigned char key[16], const unsigned char challenge[8],
                  const unsigned char *temp, size_t temp_len, unsigned char out[16]);

/* Reads ca.kerberos (keytab, service); without it Negotiate is not offered. */
enum clc_err ca_negotiate_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei);
void ca_negotiate_cleanup(struct emu_ca *ca);
/* "Authorization: Negotiate <token>": accepts the GSS-API (SPNEGO/Kerberos)
 * token with the configured keytab and maps the client principal to an
 * account; on OK the mutual-authentication token is already added to the
 * reply. */
enum ca_winauth ca_negotiate_step(struct emu_ca *ca, struct emu_req *r, const char *token,
                                  const struct ca_account **account, char *why, size_t n);

/* ---- ca_store.c ---- */
enum clc_err ca_store_load(struct emu_ca *ca, struct clc_errinfo *ei);
/* Writes the table (a no-op without a data dir). Under ca->mu. */
enum clc_err ca_store_save(struct emu_ca *ca, struct clc_errinfo *ei);
/* New row with the next id, or NULL when full. Under ca->mu. */
struct ca_request *ca_store_add(struct emu_ca *ca);
struct ca_request *ca_store_get(struct emu_ca *ca, int64_t id);
void ca_store_clear(struct emu_ca *ca);
/* Copies a row's outcome into res (cert duplicated). */
enum clc_err ca_result_from(const struct ca_request *q, struct ca_result *res);
/* "issued", "pending", ... */
const char *ca_disp_name(int disposition);
/* RFC 5280 CRLReason: name or number to code, -1 when unknown. */
int ca_reason_parse(const cJSON *v);
const char *ca_reason_name(int code);
cJSON *ca_request_json(const struct ca_request *q, int with_cert);

/* ---- services ---- */
/* Route tables of ca_certsrv.c and ca_est.c, merged by ca.c into the one
 * "ca" listener; handlers get the struct emu_ca as r->svc_ctx. */
enum clc_err ca_certsrv_routes(const struct emu_route **routes, size_t *n);
enum clc_err ca_est_routes(const struct emu_route **routes, size_t *n);
enum clc_err ca_control_mount(struct emu_ca *ca, struct clc_errinfo *ei);
/* Escapes &<>"' for HTML into out (truncating). */
void ca_html_escape(const char *in, char *out, size_t n);

#endif
