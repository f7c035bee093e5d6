/* Azure Storage credentials and request signing: Shared Key (the
 * string-to-sign of the Storage REST spec, path-style emulator URLs included),
 * SAS tokens (appended to the query; account and queue SAS generated from a
 * key), and Entra bearer tokens through clc_auth. */
#ifndef CLC_STORAGE_AUTH_H
#define CLC_STORAGE_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "azure/auth.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/secret.h"

#define CLC_STORAGE_API_VERSION "2021-12-02"
#define CLC_STORAGE_SCOPE "https://storage.azure.com/.default"

enum clc_storage_auth_kind { CLC_STORAGE_SHARED_KEY = 0, CLC_STORAGE_SAS, CLC_STORAGE_BEARER };

/* Immutable once made (the bearer kind borrows a thread-safe clc_auth), so
 * one credential may serve several clients on several threads. */
struct clc_storage_cred;

/* key_b64 is the account key as the portal shows it (base64). */
enum clc_err clc_storage_cred_shared_key(const char *account, const struct clc_secret *key_b64,
                                         struct clc_storage_cred **out, struct clc_errinfo *ei);
/* A SAS token ("sv=...&sig=..."; a leading '?' is dropped), copied. */
enum clc_err clc_storage_cred_sas(const struct clc_secret *sas, struct clc_storage_cred **out,
                                  struct clc_errinfo *ei);
/* auth is borrowed and must outlive the credential; scope NULL =
 * CLC_STORAGE_SCOPE. */
enum clc_err clc_storage_cred_bearer(struct clc_auth *auth, const char *scope,
                                     struct clc_storage_cred **out, struct clc_errinfo *ei);
void clc_storage_cred_free(struct clc_storage_cred *c);

enum clc_storage_auth_kind clc_storage_cred_kind(const struct clc_storage_cred *c);
/* Account name of a Shared Key credential; NULL for the other kinds. */
const char *clc_storage_cred_account(const struct clc_storage_cred *c);
/* The SAS token of a SAS credential; NULL for the other kinds. */
const struct clc_secret *clc_storage_cred_sas_token(const struct clc_storage_cred *c);

/* Bearer kind: a token for the credential's scope (caller frees). After a
 * 401, call with invalidate = 1 to drop the cached one first. */
enum clc_err clc_storage_cred_token(const struct clc_storage_cred *c, int invalidate,
                                    struct clc_secret **token, struct clc_errinfo *ei);

/* One query parameter, decoded (the signature is over decoded values). */
struct clc_storage_param {
    const char *name;
    const char *value;
};

/* What Shared Key signs about one request. */
struct clc_storage_sign_input {
    const char *method;
    const char *path;                      /* URI path as sent (percent-encoded), "/..." */
    const struct clc_storage_param *query; /* in any order */
    size_t nquery;
    const char *const *headers; /* every "Name: value" line sent, NULL-terminated */
    size_t content_length;      /* body bytes; 0 signs as "" */
};

/* The Shared Key string-to-sign for account (x-ms-version >= 2015-02-21).
 * Appends to out. CLC_ERR_INVALID on malformed headers or parameters. */
enum clc_err clc_storage_string_to_sign(const char *account,
                                        const struct clc_storage_sign_input *in,
                                        struct clc_buf *out, struct clc_errinfo *ei);

/* The Authorization value "SharedKey {account}:{signature}" for a Shared Key
 * credential, as a new secret (it authorises a replay for 15 minutes). */
enum clc_err clc_storage_shared_key_auth(const struct clc_storage_cred *c,
                                         const struct clc_storage_sign_input *in,
                                         struct clc_secret **authorization, struct clc_errinfo *ei);

/* SAS generation with a Shared Key credential. Times are Unix seconds
 * (start 0 = omitted); optional strings NULL = omitted. */
struct clc_storage_sas_opts {
    const char *permissions; /* account: "rwdlacup" subset; queue: "raup" subset */
    int64_t start;
    int64_t expiry;             /* required */
    const char *ip;             /* "1.2.3.4" or "1.2.3.4-1.2.3.9" */
    const char *protocol;       /* "https" or "https,http" */
    const char *version;        /* NULL = CLC_STORAGE_API_VERSION */
    const char *services;       /* account SAS: "q", "b", "bq", ... */
    const char *resource_types; /* account SAS: "s", "c", "o" subset, "sco" */
    const char *identifier;     /* queue SAS: stored access policy id */
};

/* Account SAS token ("sv=...&ss=...&sig=..."), a new secret. */
enum clc_err clc_storage_sas_account(const struct clc_storage_cred *key,
                                     const struct clc_storage_sas_opts *o,
                                     struct clc_secret **token, struct clc_errinfo *ei);
/* Service SAS for one queue. */
enum clc_err clc_storage_sas_queue(const struct clc_storage_cred *key, const char *queue,
                                   const struct clc_storage_sas_opts *o, struct clc_secret **token,
                                   struct clc_errinfo *ei);

#endif
