/* Shared fixture of the Key Vault emulator tests: one emulator per binary
 * (two vaults, default identities, a data dir), raw HTTPS requests with
 * verification through src/net/http.h, tokens per identity, the control
 * API, and a test CA that signs the vault's CSRs. */
#ifndef TEST_EMU_KEYVAULT_FIXTURE_H
#define TEST_EMU_KEYVAULT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "emulator/emu.h"
#include "net/http.h"

#define KV_API "7.5"
/* Small, so that the oversized-body test is cheap. */
#define KVFX_MAX_BODY (256 * 1024)

struct kvfx {
    char dir[256];
    char data_dir[300];
    char config[300];
    struct emu *e;
    struct clc_http *http;
    struct clc_clock clock;
    cJSON *ids;
    EVP_PKEY *ca_key; /* the test's own CA */
    X509 *ca_cert;
    struct {
        char name[32];
        char scope[64];
        char *token;
        int64_t at;
    } toks[16];
    size_t ntoks;
};

extern struct kvfx kv;
/* More members of the emulator configuration (",\"identities\": ..."), set
 * before kvfx_setup; NULL = none. */
extern const char *kvfx_config_extra;

int kvfx_setup(void **state);
int kvfx_teardown(void **state);
/* Stops and starts the emulator on the same data dir at the same time. */
int kvfx_restart(void);

/* Base URL of a vault ("certlc", "second"). */
const char *kvfx_vault(const char *name);
/* A token for identity (renewer, sync, reader, admin) and scope; cached. */
const char *kvfx_token(const char *identity, const char *scope);

struct kvr {
    long status;
    cJSON *json; /* parsed body or NULL */
    struct clc_http_resp resp;
};
void kvr_free(struct kvr *r);

/* A request to the "certlc" vault as `who` (NULL = no token). path is
 * relative to the vault; "?api-version=7.5" is added unless the path has a
 * query. Fails the test on a transport error. */
void kv_call(const char *who, const char *method, const char *path, const char *body,
             struct kvr *r);
/* The same to any URL (a nextLink, another vault). */
void kv_call_url(const char *who, const char *method, const char *url, const char *body,
                 struct kvr *r);
/* The control API as admin. */
void kv_admin(const char *method, const char *path, const char *body, struct kvr *r);

/* error.code of an error body, or "" */
const char *kv_errcode(const struct kvr *r);
/* Status check that shows the body. */
#define kv_expect(r, want)                                                                         \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("%s:%d: status %ld, expected %d: %s", __FILE__, __LINE__, (r)->status,        \
                     (int)(want), clc_buf_str(&(r)->resp.body));                                   \
    } while (0)

/* JSON string member (nested with "a.b"), or NULL. */
const char *kv_str(const cJSON *o, const char *path);
int64_t kv_int(const cJSON *o, const char *path);

/* Signs a base64 DER CSR with the test CA (or key/cert given), valid
 * nbf..naf: base64 DER of the leaf (malloc'd). */
char *kv_sign_csr(const char *csr_b64, int64_t nbf, int64_t naf, EVP_PKEY *ca_key, X509 *ca_cert);
/* base64 DER of a certificate (malloc'd). */
char *kv_b64_der(X509 *x);
/* A self-signed CA with a fresh EC key. */
void kv_make_ca(const char *cn, EVP_PKEY **key, X509 **cert);
/* Creates name with issuer Unknown (EC P-256), signs the CSR with the test
 * CA and merges leaf + CA; returns the new version id (malloc'd). */
char *kv_issue(const char *name, const char *extra_policy_json);
/* Number of certificates the list shows (following nextLink). */
int kv_count(const char *who, const char *query);

#endif
