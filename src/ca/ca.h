/* One interface over every CA certlc can ask for a certificate: AD CS Web
 * Enrollment, EST (RFC 7030) and an external command. Submit a CSR with a
 * template/profile, get issued (verified chain, leaf first) | pending | denied
 * | error; fetch a pending request later by its id. */
#ifndef CLC_CA_H
#define CLC_CA_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/x509.h>
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "net/http.h"

struct clc_ca;     /* one configured CA; not thread-safe: one per thread */
struct clc_ca_csr; /* a parsed PKCS#10 request whose self-signature verified */

enum clc_ca_type { CLC_CA_ADCS = 0, CLC_CA_EST, CLC_CA_COMMAND };

enum clc_ca_disposition {
    CLC_CA_ISSUED = 0, /* chain holds the verified certificate, leaf first */
    CLC_CA_PENDING,    /* request_id (and retry_after_s) say how to ask again */
    CLC_CA_DENIED,     /* reason and code from the CA; do not retry as is */
    CLC_CA_ERROR       /* err, reason and retryable say what went wrong */
};

#define CLC_CA_ID_MAX 80
#define CLC_CA_REASON_MAX 512
#define CLC_CA_CODE_MAX 64

struct clc_ca_result {
    enum clc_ca_disposition disposition;
    STACK_OF(X509) * chain;         /* ISSUED: owned; leaf first, each next issues the previous */
    char request_id[CLC_CA_ID_MAX]; /* the CA's id when it gave one (any disposition) */
    int64_t retry_after_s;          /* PENDING: ask again after this many seconds */
    char reason[CLC_CA_REASON_MAX]; /* DENIED: the CA's message; ERROR: our message */
    char code[CLC_CA_CODE_MAX];     /* DENIED: the CA's code ("0x80094012", "HTTP 403", "exit 2") */
    enum clc_err err;               /* ERROR: the error class (CLC_OK otherwise) */
    int retryable;                  /* ERROR: 1 when the same call may succeed later */
    int key_checked;                /* ISSUED: 1 when the leaf was matched to a CSR */
};

void clc_ca_result_init(struct clc_ca_result *r);
void clc_ca_result_cleanup(struct clc_ca_result *r);
/* "issued", "pending", "denied", "error". */
const char *clc_ca_disposition_name(enum clc_ca_disposition d);

/* A CSR from PEM ("-----BEGIN CERTIFICATE REQUEST-----", also the "NEW"
 * variant) or DER. Refuses anything else, and CSRs whose signature does not
 * verify, with a message saying which. */
enum clc_err clc_ca_csr_parse(const void *data, size_t len, struct clc_ca_csr **out,
                              struct clc_errinfo *ei);
enum clc_err clc_ca_csr_from_file(const char *path, struct clc_ca_csr **out,
                                  struct clc_errinfo *ei);
void clc_ca_csr_free(struct clc_ca_csr *c);
/* Borrowed views. */
X509_REQ *clc_ca_csr_req(const struct clc_ca_csr *c);
const unsigned char *clc_ca_csr_der(const struct clc_ca_csr *c, size_t *len);
const char *clc_ca_csr_pem(const struct clc_ca_csr *c);

/* What to ask for. template is the AD CS template (cn or OID), the EST CA
 * label (NULL/"" = none), or an argument for the command; renewal selects
 * EST simplereenroll (ignored elsewhere). */
struct clc_ca_req {
    const struct clc_ca_csr *csr;
    const char *template_name;
    int renewal;
};

/* Config keys: "ca.<name>.<key>" (see docs/ca.md). The CLI schema declares
 * the map; members are checked here, so a typo is still an error. */
extern const struct clc_config_key clc_ca_config_keys[];
extern const size_t clc_ca_config_nkeys;

/* Builds the client for CA `name` from the configuration. clock NULL = the
 * system clock (validity is checked against it); http gives defaults for
 * TLS trust, proxy and timeouts (may be NULL). Both are borrowed. */
enum clc_err clc_ca_from_config(const struct clc_config *cfg, const char *name,
                                const struct clc_clock *clock, const struct clc_http_opts *http,
                                struct clc_ca **out, struct clc_errinfo *ei);
void clc_ca_free(struct clc_ca *ca);
/* Sets the process environment GSS-API reads (KRB5_CLIENT_KTNAME,
 * KRB5CCNAME) for every Negotiate CA in the configuration; CLC_ERR_CONFIG
 * when two name different keytabs or caches. Call it before starting
 * threads: clc_ca_from_config then finds the environment in place instead of
 * changing it while other threads may read it. */
enum clc_err clc_ca_kerberos_env(const struct clc_config *cfg, struct clc_errinfo *ei);
enum clc_ca_type clc_ca_get_type(const struct clc_ca *ca);
const char *clc_ca_name(const struct clc_ca *ca);

/* Submits. Returns CLC_OK when the CA gave a disposition (issued, pending or
 * denied, in res); otherwise the error, with res->disposition CLC_CA_ERROR,
 * res->retryable, and the message in ei and res->reason. An issued chain is
 * returned only after it was verified (key = CSR's, chain to the trust
 * anchors, validity); a failed check is an error, never ISSUED. */
enum clc_err clc_ca_submit(struct clc_ca *ca, const struct clc_ca_req *req,
                           struct clc_ca_result *res, struct clc_errinfo *ei);
/* Asks again about a pending request. req->csr may be NULL for AD CS and the
 * command (then the key match is not checked: res->key_checked = 0); EST needs
 * it, as EST polls by sending the same request again. */
enum clc_err clc_ca_fetch(struct clc_ca *ca, const struct clc_ca_req *req, const char *request_id,
                          struct clc_ca_result *res, struct clc_errinfo *ei);
/* The CA's own certificates (EST cacerts, AD CS certnew.p7b?ReqID=CACert),
 * unverified: for bootstrapping trust anchors after checking them by hand. */
enum clc_err clc_ca_cacerts(struct clc_ca *ca, STACK_OF(X509) * *out, struct clc_errinfo *ei);

#endif
