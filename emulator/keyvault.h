/* The emulated Key Vault's inside, shared by keyvault*.c: the data model of a
 * vault (certificates, their versions and pending operation, soft-deleted
 * certificates), the request context every handler gets, and the functions
 * the parts call on each other. Not for other services. */
#ifndef EMU_KEYVAULT_H
#define EMU_KEYVAULT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include "core/err.h"
#include "emulator/identity.h"
#include "emulator/server.h"

struct emu;

#define KV_AUDIENCE "https://vault.azure.net"
#define KV_NAME_MAX 127
#define KV_VAULT_NAME_MAX 24
#define KV_MAX_VAULTS 16
#define KV_VERSION_LEN 32
#define KV_RECOVERABLE_DAYS 90
#define KV_RECOVERY_LEVEL "Recoverable+Purgeable"
#define KV_NEAR_EXPIRY_S (30 * 86400)
#define KV_PAGE_MAX 25
#define KV_BASE_MAX 64
#define KV_CT_PKCS12 "application/x-pkcs12"
#define KV_CT_PEM "application/x-pem-file"

/* Event flags of a version (once each). */
#define KV_EV_NEAR_EXPIRY 1u
#define KV_EV_EXPIRED 2u

/* One completed certificate version: certificate, key and secret share its id. */
struct kv_version {
    char id[KV_VERSION_LEN + 1];
    X509 *cert;
    STACK_OF(X509) * chain; /* issuers merged or imported after the leaf; may be NULL */
    EVP_PKEY *key;
    char *cer; /* base64 DER of cert */
    char x5t[40];
    int enabled;
    int64_t nbf, exp, created, updated;
    cJSON *tags;           /* object of strings */
    char content_type[32]; /* of the secret */
    int exportable;
    unsigned events; /* KV_EV_* already emitted */
};

enum kv_op_status { KV_OP_IN_PROGRESS = 0, KV_OP_COMPLETED, KV_OP_CANCELLED };

/* The certificate operation (create): in progress until merge for issuer
 * Unknown; kept as completed or cancelled until deleted or replaced. */
struct kv_pending {
    char version[KV_VERSION_LEN + 1]; /* id the merged version will get */
    char request_id[KV_VERSION_LEN + 1];
    char issuer[64];
    enum kv_op_status status;
    int cancellation_requested;
    EVP_PKEY *key; /* while in progress */
    char *csr;     /* base64 DER */
    cJSON *tags;   /* from create, for the merged version */
    int enabled;   /* attributes.enabled from create */
    int64_t created;
};

struct kv_cert {
    char name[KV_NAME_MAX + 1];  /* as first given */
    char lname[KV_NAME_MAX + 1]; /* lower case: names are case-insensitive */
    cJSON *policy;               /* normalised (kv_policy_parse), without id/attributes */
    int64_t policy_created, policy_updated;
    struct kv_version **vers; /* completed versions, oldest first */
    size_t nvers, capvers;
    struct kv_pending *pending;
    int64_t deleted_date, purge_date; /* when soft-deleted */
};

struct kv_table {
    struct kv_cert **items; /* sorted by lname */
    size_t n, cap;
};

struct kv_service;

struct kv_vault {
    struct kv_service *svc;
    char name[KV_VAULT_NAME_MAX + 1];
    char base[KV_BASE_MAX]; /* https://127.0.0.1:PORT */
    char topic[256];        /* resource id used as the event topic */
    char *dir;              /* <data dir>/keyvault/<name>, NULL in memory */
    pthread_mutex_t mu;     /* this vault's state; never held across network I/O */
    struct kv_table live, deleted;
    struct kv_plain *plain; /* plain secrets (keyvault_plainsecret.c); NULL = none */
};

/* CA certificates seen in merge requests, parsed once: every merge of a
 * renewal carries the same intermediate and root, and an OpenSSL 3 parse
 * costs ~0.1 ms. Keyed by the exact DER; the oldest entry makes room. */
#define KV_X5C_CACHE 8
struct kv_x5c_cache {
    pthread_mutex_t mu;
    struct {
        unsigned char *der;
        size_t len;
        X509 *x;
    } e[KV_X5C_CACHE];
    size_t next;
};
/* d2i_X509 of der through the cache (a new reference), NULL when not a
 * certificate; trailing bytes are refused as by d2i itself. */
X509 *kv_x5c_parse(struct kv_x5c_cache *c, const unsigned char *der, size_t len);
void kv_x5c_cache_cleanup(struct kv_x5c_cache *c);

struct kv_service {
    struct emu *e;
    struct kv_vault *vaults[KV_MAX_VAULTS];
    size_t nvaults;
    struct kv_x5c_cache x5c;
    /* the test issuer CA for seeded certificates */
    X509 *issuer_cert;
    EVP_PKEY *issuer_key;
    char *issuer_pem;
};

/* What a handler gets: the vault, the request, the caller. */
struct kv_ctx {
    struct kv_vault *v;
    struct emu_req *r;
    struct emu_principal who;
    char api_version[32];
};

/* ---- keyvault.c: replies ---- */
/* Azure's error shape; inner may be NULL. */
void kv_error(struct emu_req *r, int status, const char *code, const char *inner, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
/* 400 BadParameter */
void kv_bad(struct emu_req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends doc (freed) with the Key Vault headers; NULL doc = 500. */
void kv_reply(struct emu_req *r, int status, cJSON *doc);
void kv_reply_hdrs(struct emu_req *r, int status, cJSON *doc, const char *extra);
/* Name check ^[0-9a-zA-Z-]{1,127}$; replies 400 itself and returns 0. */
int kv_name_ok(struct emu_req *r, const char *name, const char *what);
/* Parses the body as a JSON object (bounded, strict); replies 400 and returns NULL. */
cJSON *kv_body(struct emu_req *r);
/* s made safe to echo in a message (printable ASCII, bounded). */
void kv_sanitize(const char *s, char *out, size_t outlen);
/* An error decided under the vault lock and sent after it is released
 * (replies never go out under the lock). status 0 = none. */
struct kv_fault {
    int status;
    const char *code; /* static strings */
    const char *inner;
    char msg[700];
};
void kv_fault(struct kv_fault *f, int status, const char *code, const char *inner, const char *fmt,
              ...) __attribute__((format(printf, 5, 6)));
/* 404 CertificateNotFound for name (and version). */
void kv_fault_nf(struct kv_fault *f, const char *name, const char *version);
void kv_fault_send(struct emu_req *r, const struct kv_fault *f);
/* A handler's last step: the fault if one was decided (doc is freed), else
 * doc with status and the extra header line (may be NULL). */
void kv_finish(struct emu_req *r, const struct kv_fault *f, int status, cJSON *doc,
               const char *extra);

/* ---- keyvault_store.c: data model and persistence ---- */
struct kv_cert *kv_cert_new(const char *name);
void kv_cert_free(struct kv_cert *c);
void kv_version_free(struct kv_version *v);
void kv_pending_free(struct kv_pending *p);
/* Index of name in t (case-insensitive) or -(insertion point) - 1. */
long kv_table_find(const struct kv_table *t, const char *name);
struct kv_cert *kv_table_get(const struct kv_table *t, const char *name);
enum clc_err kv_table_insert(struct kv_table *t, struct kv_cert *c);
/* Removes and returns the entry (not freed). */
struct kv_cert *kv_table_remove(struct kv_table *t, const char *name);
void kv_table_clear(struct kv_table *t);
/* Latest completed version, or NULL. */
struct kv_version *kv_cert_latest(const struct kv_cert *c);
struct kv_version *kv_cert_version(const struct kv_cert *c, const char *id);
enum clc_err kv_cert_add_version(struct kv_cert *c, struct kv_version *v);
/* A version from a certificate and key (references taken on success):
 * fills cer, x5t, nbf, exp; id and timestamps set by the caller. */
enum clc_err kv_version_make(X509 *cert, STACK_OF(X509) * chain, EVP_PKEY *key,
                             struct kv_version **out, struct clc_errinfo *ei);
/* 32 lower-case hex characters. */
void kv_new_id(char out[KV_VERSION_LEN + 1]);
/* Writes (or removes, when gone) the certificate's document; logs failures. */
enum clc_err kv_persist(struct kv_vault *v, const struct kv_cert *c, struct clc_errinfo *ei);
void kv_unpersist(struct kv_vault *v, const char *lname);
/* Loads every certificate of the vault's directory. */
enum clc_err kv_load(struct kv_vault *v, struct clc_errinfo *ei);

/* ---- keyvault_policy.c ---- */
/* Validates a request policy and fills defaults; *out is normalised. base
 * (optional) is the stored policy a partial update applies to. */
enum clc_err kv_policy_parse(const cJSON *in, const cJSON *base, cJSON **out,
                             struct clc_errinfo *ei);
/* The policy as Key Vault answers it (id, attributes added). */
cJSON *kv_policy_json(const struct kv_vault *v, const struct kv_cert *c);
/* Accessors on a normalised policy. */
const char *kv_policy_issuer(const cJSON *pol);
const char *kv_policy_content_type(const cJSON *pol);
int kv_policy_exportable(const cJSON *pol);
int kv_policy_reuse_key(const cJSON *pol);
/* Attributes and tags of a request body: enabled (-1 absent), nbf/exp (-1
 * absent), tags (borrowed; NULL absent). Replies 400 and returns 0. */
struct kv_attrs {
    int enabled;
    int64_t nbf, exp;
    const cJSON *tags;
};
int kv_parse_attrs(struct emu_req *r, const cJSON *body, struct kv_attrs *out);

/* ---- keyvault_crypto.c ---- */
/* 1 when subject is a distinguished name we can encode ("CN=a, O=b");
 * else 0 with the reason in why. */
int kv_dn_check(const char *subject, char *why, size_t whylen);
/* A fresh key for the policy's key_props. */
enum clc_err kv_key_generate(const cJSON *pol, EVP_PKEY **out, struct clc_errinfo *ei);
/* 1 when key fits the policy's key_props (kty and size or curve). */
int kv_key_matches(const cJSON *pol, EVP_PKEY *key);
/* CSR for the policy (subject, SANs, EKUs, key usage) signed by key: base64 DER. */
enum clc_err kv_csr_make(const cJSON *pol, EVP_PKEY *key, char **b64, struct clc_errinfo *ei);
/* Certificate for the policy's subject and extensions, valid not_before..
 * not_after, signed by issuer (NULL = self-signed by key). */
enum clc_err kv_cert_make(const cJSON *pol, EVP_PKEY *key, int64_t not_before, int64_t not_after,
                          X509 *issuer, EVP_PKEY *issuer_key, int is_ca, X509 **out,
                          struct clc_errinfo *ei);
/* notBefore/notAfter as Unix seconds. */
enum clc_err kv_cert_times(X509 *cert, int64_t *nbf, int64_t *exp);
/* The secret value of a version: base64 PFX (empty password) or PEM text. */
enum clc_err kv_secret_value(const struct kv_version *v, char **out, struct clc_errinfo *ei);
/* Parses import input: PFX (base64, pwd may be NULL) or PEM (raw or base64).
 * *chain may be NULL. */
enum clc_err kv_import_parse(const char *value, const char *pwd, const char *content_type,
                             EVP_PKEY **key, X509 **cert, STACK_OF(X509) * *chain, int *was_pem,
                             struct clc_errinfo *ei);
/* A policy describing an existing certificate and key (import, seed). */
enum clc_err kv_policy_from_cert(X509 *cert, EVP_PKEY *key, const char *content_type,
                                 int exportable, const char *issuer, cJSON **out,
                                 struct clc_errinfo *ei);
/* Key PEM (PKCS#8) and back, for persistence. */
enum clc_err kv_key_to_pem(EVP_PKEY *key, char **out);
enum clc_err kv_key_from_pem(const char *pem, EVP_PKEY **out);
enum clc_err kv_x509_from_b64(const char *b64, X509 **out);

/* ---- keyvault_certs.c: certificate reads and writes ---- */
cJSON *kv_bundle_json(const struct kv_vault *v, const struct kv_cert *c,
                      const struct kv_version *ver, int with_policy);
cJSON *kv_deleted_json(const struct kv_vault *v, const struct kv_cert *c, int item);
void kv_h_list(struct kv_ctx *k);
void kv_h_get(struct kv_ctx *k);
void kv_h_update(struct kv_ctx *k);
void kv_h_delete(struct kv_ctx *k);
void kv_h_versions(struct kv_ctx *k);
void kv_h_policy_get(struct kv_ctx *k);
void kv_h_policy_update(struct kv_ctx *k);
void kv_h_deleted_list(struct kv_ctx *k);
void kv_h_deleted_get(struct kv_ctx *k);
void kv_h_deleted_purge(struct kv_ctx *k);
void kv_h_deleted_recover(struct kv_ctx *k);
/* Reads maxresults and $skiptoken; replies 400 and returns 0. */
int kv_page_args(struct kv_ctx *k, int *max, char *skip, size_t skiplen);
/* {"value": items, "nextLink": url or null}; items taken. */
cJSON *kv_page_json(struct kv_ctx *k, const char *path, cJSON *items, const char *next_token,
                    int max, const char *extra_query);

/* ---- keyvault_ops.c: create, pending operation, merge, import ---- */
cJSON *kv_operation_json(const struct kv_vault *v, const struct kv_cert *c);
void kv_h_create(struct kv_ctx *k);
void kv_h_pending_get(struct kv_ctx *k);
void kv_h_pending_update(struct kv_ctx *k);
void kv_h_pending_delete(struct kv_ctx *k);
void kv_h_merge(struct kv_ctx *k);
void kv_h_import(struct kv_ctx *k);

/* ---- keyvault_secrets.c ---- */
void kv_h_secret_get(struct kv_ctx *k);
void kv_h_secret_set(struct kv_ctx *k);

/* ---- keyvault_plainsecret.c: plain secrets (Set Secret); callers hold v->mu ---- */
#define KV_SECRET_VALUE_MAX 25600 /* Azure: 25 KB */
#define KV_CONTENT_TYPE_MAX 255
struct kv_plain_version {
    char id[KV_VERSION_LEN + 1];
    char *value;        /* wiped on free */
    char *content_type; /* NULL = none */
    cJSON *tags;        /* object of strings; NULL = none */
    int enabled;
    int64_t nbf, exp; /* -1 = absent */
    int64_t created, updated;
};
void kv_plain_version_free(struct kv_plain_version *p);
/* The version (NULL = latest) of plain secret name, and its name as first
 * given in *stored; NULL when there is none. */
const struct kv_plain_version *kv_plain_get(const struct kv_vault *v, const char *name,
                                            const char *version, const char **stored);
/* Adds ver (taken on success) as the newest version of name and saves the
 * secret; CLC_ERR_LIMIT beyond the emulator's bounds. */
enum clc_err kv_plain_add(struct kv_vault *v, const char *name, struct kv_plain_version *ver,
                          const char **stored, struct clc_errinfo *ei);
/* At mount: loads <vault dir>/secrets/; frees them at stop. */
enum clc_err kv_plain_load(struct kv_vault *v, struct clc_errinfo *ei);
void kv_plain_free(struct kv_vault *v);
/* Registers the reset and state dump hooks ("keyvault-secrets"). */
enum clc_err kv_plain_mount(struct kv_service *s, struct clc_errinfo *ei);

/* ---- keyvault_control.c: events, control API, test issuer ---- */
/* Emits CertificateNewVersionCreated for ver (caller holds v->mu). */
void kv_emit_new_version(struct kv_vault *v, const struct kv_cert *c, const struct kv_version *ver);
enum clc_err kv_control_mount(struct kv_service *s, struct clc_errinfo *ei);

#endif
