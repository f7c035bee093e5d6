/* Test support for the emulated CA: one emulator per binary (data dir and
 * config of the caller's choosing), raw HTTPS through src/net/http.h with
 * Basic auth as a CA account, CSR making, page scraping, and admin calls. */
#ifndef TEST_EMU_CA_FIXTURE_H
#define TEST_EMU_CA_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "emulator/emu.h"
#include "net/http.h"

struct cafx {
    char dir[256];
    char data_dir[300];
    char config[300];
    struct emu *e;
    struct clc_http *http;
    cJSON *endpoints;
};

extern struct cafx cafx;

/* Makes a temp dir (data/ inside) and starts the emulator; config_json NULL
 * = no config file. 0 on success. */
int cafx_setup(const char *config_json);
/* Stops and starts again on the same data dir, at the same emulator time. */
int cafx_restart(void);
void cafx_teardown(void);

const char *cafx_url(void); /* the "ca" service */
/* Password of a CA account from the endpoints document. */
const char *cafx_password(const char *account);

/* One request to the CA. account NULL = no Authorization; password NULL =
 * the account's own. path is appended to the CA URL. Returns the status (0
 * on transport error); resp is initialised here, the caller cleans it up. */
long cafx_req(const char *method, const char *path, const char *account, const char *password,
              const char *content_type, const char *body, size_t len, struct clc_http_resp *resp);
/* The control API with an admin token; body may be NULL. */
long cafx_admin(const char *method, const char *path, const char *body, struct clc_http_resp *resp);
cJSON *cafx_json(const struct clc_http_resp *resp);

/* Keys and CSRs. sans: NULL-terminated "DNS:x" / "IP:a.b.c.d" list or NULL. */
EVP_PKEY *cafx_rsa(int bits);
EVP_PKEY *cafx_ec(void);
/* PEM CSR (malloc'd); bad_sig flips a signature bit. cn NULL = empty subject. */
char *cafx_csr(EVP_PKEY *key, const char *cn, const char *const *sans, int bad_sig);
/* The same request as base64 DER without armour (EST bodies). */
char *cafx_csr_b64(EVP_PKEY *key, const char *cn, const char *const *sans);

/* POST certfnsh.asp Mode=newreq as account. Returns the status. */
long cafx_submit(const char *account, const char *csr_pem, const char *tmpl,
                 struct clc_http_resp *resp);
/* Scraping, as Web Enrollment clients do: the ReqID of the certnew.cer link
 * (issued), "Your Request Id is N." (pending/denied), the quoted disposition
 * message (copied to out), the value after the two tabs of a status line. */
int64_t cafx_page_cert_id(const char *page);
int64_t cafx_page_request_id(const char *page);
int cafx_page_disposition(const char *page, char *out, size_t n);
int cafx_page_line(const char *page, const char *label, char *out, size_t n);
/* GET certnew.cer?ReqID=id&Enc=bin as account; NULL when not a certificate. */
X509 *cafx_fetch_cert(const char *account, int64_t id);
/* Parses a PKCS#7 certs-only (DER, or base64 with or without armour). */
STACK_OF(X509) * cafx_p7_certs(const char *data, size_t len);
/* 1 when the public keys match. */
int cafx_same_key(X509 *c, EVP_PKEY *k);

#endif
