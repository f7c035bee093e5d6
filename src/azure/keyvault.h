/* Azure Key Vault client for certificates and the secrets behind them (data
 * plane, api-version 7.5 or 7.4): typed results, the bearer challenge
 * discovery, retries, bounded paging, and errors that name the vault, the
 * certificate and the service's error code. One client per vault; a client
 * is not thread-safe (one HTTP handle), the auth client it borrows is. */
#ifndef CLC_KEYVAULT_H
#define CLC_KEYVAULT_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include <openssl/x509.h>
#include "azure/auth.h"
#include "core/config.h"
#include "core/err.h"
#include "core/secret.h"
#include "crypto/cert.h"
#include "crypto/csr.h"
#include "net/http.h"
#include "net/retry.h"

#define CLC_KV_NAME_MAX 127 /* ^[0-9a-zA-Z-]{1,127}$ */
#define CLC_KV_TAGS_MAX 50
#define CLC_KV_RESPONSE_MAX (4 * 1024 * 1024)

struct clc_kv;

struct clc_kv_opts {
    const char *vault_url;   /* "https://myvault.vault.azure.net" (scheme and host, no path) */
    const char *vault_name;  /* for messages; NULL = first label of the host */
    const char *api_version; /* "7.5" (default) or "7.4" */
    /* The challenge's resource must be a DNS suffix of the vault host (what
     * the Azure SDKs check) unless this is set; config key
     * keyvault.verify_challenge_resource = false sets it. */
    int disable_challenge_resource_verification;
    size_t max_response_bytes;            /* 0 = CLC_KV_RESPONSE_MAX */
    int max_pages;                        /* bound on pages one listing follows; 0 = 10000 */
    const struct clc_retry_policy *retry; /* NULL = clc_retry_policy_default; copied */
};

/* auth is borrowed and must outlive the client. */
enum clc_err clc_kv_new(const struct clc_kv_opts *opts, const struct clc_http_opts *http_opts,
                        struct clc_auth *auth, struct clc_kv **out, struct clc_errinfo *ei);
void clc_kv_free(struct clc_kv *kv);
const char *clc_kv_vault_name(const struct clc_kv *kv);
const char *clc_kv_vault_url(const struct clc_kv *kv);

/* Configuration: keyvault.url, keyvault.vaults.<name> (map name -> URL),
 * keyvault.default_vault, keyvault.api_version,
 * keyvault.verify_challenge_resource. Picks the vault called `name` (NULL =
 * the default vault, else keyvault.url, else the only one configured). */
extern const struct clc_config_key clc_kv_config_keys[];
extern const size_t clc_kv_config_nkeys;
enum clc_err clc_kv_from_config(const struct clc_config *cfg, const char *name,
                                const struct clc_http_opts *http_opts, struct clc_auth *auth,
                                struct clc_kv **out, struct clc_errinfo *ei);

/* 1 when name is a valid certificate/secret name. */
int clc_kv_name_valid(const char *name);

/* ---- result types (every _cleanup accepts a zeroed or half-filled struct) */

struct clc_kv_attributes {
    int enabled;              /* 1/0; -1 = absent (not sent) */
    int64_t nbf, exp;         /* Unix seconds; 0 = absent (not sent) */
    int64_t created, updated; /* read-only */
    int64_t recoverable_days; /* read-only */
    char recovery_level[64];  /* read-only, "" when absent */
};
/* enabled -1, everything else absent. */
void clc_kv_attributes_init(struct clc_kv_attributes *a);

struct clc_kv_tag {
    char *name;
    char *value;
};
struct clc_kv_tags {
    struct clc_kv_tag *v;
    size_t n;
};
void clc_kv_tags_cleanup(struct clc_kv_tags *t);
/* Adds or replaces. Names 1-512 bytes, values up to 256 (Azure's limits). */
enum clc_err clc_kv_tags_set(struct clc_kv_tags *t, const char *name, const char *value,
                             struct clc_errinfo *ei);
const char *clc_kv_tags_get(const struct clc_kv_tags *t, const char *name);

struct clc_kv_lifetime_action {
    int lifetime_percentage; /* 1-99, or 0 */
    int days_before_expiry;  /* or this; exactly one is set */
    char action_type[32];    /* "EmailContacts" | "AutoRenew" */
};

/* A certificate policy. Absent members are left out when sent (the vault
 * applies its defaults); renewals should send the policy they read. */
struct clc_kv_policy {
    char *id; /* read-only */
    /* key_props */
    char kty[16];   /* "RSA", "RSA-HSM", "EC", "EC-HSM"; "" = absent */
    int key_size;   /* 0 = absent */
    char crv[16];   /* "P-256", ...; "" = absent */
    int exportable; /* 1/0; -1 = absent */
    int reuse_key;  /* 1/0; -1 = absent */
    char
        *content_type; /* secret_props.contentType: application/x-pkcs12 | application/x-pem-file */
    /* x509_props */
    char *subject;
    struct clc_cert_strs ekus;
    struct clc_cert_strs dns_names, emails, upns;
    struct clc_cert_strs key_usage;
    int validity_months; /* 0 = absent */
    struct clc_kv_lifetime_action *actions;
    size_t nactions;
    /* issuer */
    char *issuer_name;     /* "Self", "Unknown", or a configured issuer */
    char *issuer_cty;      /* NULL = absent */
    int cert_transparency; /* 1/0; -1 = absent */
    struct clc_kv_attributes attributes;
};
void clc_kv_policy_init(struct clc_kv_policy *p);
void clc_kv_policy_cleanup(struct clc_kv_policy *p);
/* JSON <-> struct. from_json: unknown members are ignored, wrong types are
 * CLC_ERR_PARSE naming the member. to_json leaves out id and read-only
 * attributes. copy: the writable members (what to_json sends). */
enum clc_err clc_kv_policy_from_json(const cJSON *j, struct clc_kv_policy *p,
                                     struct clc_errinfo *ei);
enum clc_err clc_kv_policy_to_json(const struct clc_kv_policy *p, cJSON **out,
                                   struct clc_errinfo *ei);
enum clc_err clc_kv_policy_copy(const struct clc_kv_policy *src, struct clc_kv_policy *dst,
                                struct clc_errinfo *ei);
/* The CSR expectation this policy implies (pointers borrowed from p). */
void clc_kv_policy_csr_expect(const struct clc_kv_policy *p, struct clc_csr_expect *out);

/* A certificate bundle (get, update, merge, import, recover, delete) or a
 * list item (id, name, version, x5t, attributes, tags only). */
struct clc_kv_certificate {
    char *id; /* https://{vault}/certificates/{name}[/{version}] */
    char *name;
    char *version;      /* "" for versionless ids (list items) */
    char *kid, *sid;    /* NULL when absent (pending-only certificates have no sid) */
    char *x5t;          /* base64url SHA-1 of cer; NULL when absent */
    unsigned char *cer; /* DER; NULL when absent (checked against x5t) */
    size_t cer_len;
    char *content_type;
    struct clc_kv_attributes attributes;
    struct clc_kv_tags tags;
    struct clc_kv_policy *policy; /* NULL when the response carries none */
    /* deleted certificates */
    char *recovery_id;
    int64_t deleted_date, scheduled_purge_date;
};
void clc_kv_certificate_cleanup(struct clc_kv_certificate *c);

/* The pending certificate operation. */
struct clc_kv_operation {
    char *id;
    char *issuer_name;
    unsigned char *csr; /* DER; NULL when absent */
    size_t csr_len;
    int cancellation_requested;
    char *status;         /* "inProgress", "completed", "failed", "cancelled" */
    char *status_details; /* may be NULL */
    char *error_code;     /* NULL unless the operation failed */
    char *error_message;
    char *target; /* versionless certificate URL once completed */
    char *request_id;
};
void clc_kv_operation_cleanup(struct clc_kv_operation *op);

/* The secret behind a certificate version; value is the key material. */
struct clc_kv_secret_bundle {
    char *id;
    char *name;
    char *version;
    char *kid;
    char *content_type; /* application/x-pkcs12 (value = base64 PFX) | application/x-pem-file */
    struct clc_secret *value;
    struct clc_kv_attributes attributes;
    struct clc_kv_tags tags;
    int managed;
};
void clc_kv_secret_bundle_cleanup(struct clc_kv_secret_bundle *s);

/* ---- operations. Results are cleared first and filled only on CLC_OK.
 * version NULL or "" = the latest version. */

struct clc_kv_create {
    const struct clc_kv_policy *policy;         /* required: send the full policy */
    const struct clc_kv_attributes *attributes; /* NULL = none */
    const struct clc_kv_tags *tags;             /* NULL = none */
};
/* 202 with the pending operation (issuer Unknown: the CSR the vault made).
 * Not idempotent: only throttling (429) is retried. */
enum clc_err clc_kv_create(struct clc_kv *kv, const char *name, const struct clc_kv_create *req,
                           struct clc_kv_operation *out, struct clc_errinfo *ei);

enum clc_err clc_kv_get_certificate(struct clc_kv *kv, const char *name, const char *version,
                                    struct clc_kv_certificate *out, struct clc_errinfo *ei);

struct clc_kv_update {
    const struct clc_kv_attributes *attributes; /* NULL = unchanged */
    const struct clc_kv_tags *tags;             /* NULL = unchanged; else replaces all tags */
    const struct clc_kv_policy *policy;         /* NULL = unchanged */
};
enum clc_err clc_kv_update_certificate(struct clc_kv *kv, const char *name, const char *version,
                                       const struct clc_kv_update *u,
                                       struct clc_kv_certificate *out, struct clc_errinfo *ei);

enum clc_err clc_kv_get_policy(struct clc_kv *kv, const char *name, struct clc_kv_policy *out,
                               struct clc_errinfo *ei);
enum clc_err clc_kv_update_policy(struct clc_kv *kv, const char *name,
                                  const struct clc_kv_policy *policy, struct clc_kv_policy *out,
                                  struct clc_errinfo *ei);

enum clc_err clc_kv_get_operation(struct clc_kv *kv, const char *name, struct clc_kv_operation *out,
                                  struct clc_errinfo *ei);
enum clc_err clc_kv_cancel_operation(struct clc_kv *kv, const char *name,
                                     struct clc_kv_operation *out, struct clc_errinfo *ei);
enum clc_err clc_kv_delete_operation(struct clc_kv *kv, const char *name,
                                     struct clc_kv_operation *out, struct clc_errinfo *ei);

/* Merges the issued chain into the pending version. The certificates may
 * come in any order; they are sent leaf first (x5c). attributes/tags of u
 * are sent along (policy is ignored). Not idempotent: only 429 is retried. */
enum clc_err clc_kv_merge(struct clc_kv *kv, const char *name, STACK_OF(X509) * chain,
                          const struct clc_kv_update *u, struct clc_kv_certificate *out,
                          struct clc_errinfo *ei);

struct clc_kv_import {
    /* PKCS#12: the PFX bytes; PEM: the text (PKCS#8 key and certificates). */
    const struct clc_secret *value;
    const struct clc_secret *password;  /* PKCS#12 only; NULL = none */
    int pem;                            /* 1 = application/x-pem-file */
    const struct clc_kv_policy *policy; /* NULL = the vault's defaults (content type set) */
    const struct clc_kv_attributes *attributes;
    const struct clc_kv_tags *tags;
};
enum clc_err clc_kv_import(struct clc_kv *kv, const char *name, const struct clc_kv_import *imp,
                           struct clc_kv_certificate *out, struct clc_errinfo *ei);

/* Soft delete: out is the deleted bundle (recovery_id, dates). */
enum clc_err clc_kv_delete_certificate(struct clc_kv *kv, const char *name,
                                       struct clc_kv_certificate *out, struct clc_errinfo *ei);
enum clc_err clc_kv_get_deleted(struct clc_kv *kv, const char *name, struct clc_kv_certificate *out,
                                struct clc_errinfo *ei);
enum clc_err clc_kv_recover_deleted(struct clc_kv *kv, const char *name,
                                    struct clc_kv_certificate *out, struct clc_errinfo *ei);
enum clc_err clc_kv_purge_deleted(struct clc_kv *kv, const char *name, struct clc_errinfo *ei);

/* The only call that fetches key material. */
enum clc_err clc_kv_get_secret(struct clc_kv *kv, const char *name, const char *version,
                               struct clc_kv_secret_bundle *out, struct clc_errinfo *ei);

/* ---- listings: an iterator that follows nextLink (same vault only) for at
 * most opts.max_pages pages, tolerating empty pages. */
struct clc_kv_iter;
/* maxresults 1-25, 0 = the service default. */
enum clc_err clc_kv_list_certificates(struct clc_kv *kv, int maxresults, int include_pending,
                                      struct clc_kv_iter **out, struct clc_errinfo *ei);
enum clc_err clc_kv_list_versions(struct clc_kv *kv, const char *name, int maxresults,
                                  struct clc_kv_iter **out, struct clc_errinfo *ei);
enum clc_err clc_kv_list_deleted(struct clc_kv *kv, int maxresults, struct clc_kv_iter **out,
                                 struct clc_errinfo *ei);
/* Next item (borrowed until the next call), or *item = NULL at the end. */
enum clc_err clc_kv_iter_next(struct clc_kv_iter *it, const struct clc_kv_certificate **item,
                              struct clc_errinfo *ei);
/* Pages fetched so far. */
int clc_kv_iter_pages(const struct clc_kv_iter *it);
void clc_kv_iter_free(struct clc_kv_iter *it);

#endif
