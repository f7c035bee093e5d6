/* What the emulated Storage services (queue.c, blob.c) share: accounts and
 * keys from the emulator config, request parsing Storage needs (every query
 * parameter, x-ms-* headers, metadata), the three auth schemes (SharedKey,
 * SAS, Entra bearer), Azure's XML error replies and x-ms-version echo. */
#ifndef EMU_STORAGE_H
#define EMU_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/types.h>
#include "core/buf.h"
#include "core/err.h"
#include "emulator/server.h"

struct emu;

/* Azurite's well-known development account. */
#define EMU_STORAGE_DEV_ACCOUNT "devstoreaccount1"
#define EMU_STORAGE_DEV_KEY                                                                        \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* Answered when a request names no x-ms-version (SAS without sv, bad auth). */
#define EMU_STORAGE_DEFAULT_VERSION "2021-12-02"
#define EMU_STORAGE_AUDIENCE "https://storage.azure.com"

#define EMU_STORAGE_MAX_ACCOUNTS 16
#define EMU_STORAGE_KEY_MAX 128 /* decoded key bytes */
#define EMU_STORAGE_MAX_QUERY 32
#define EMU_STORAGE_MAX_META 64
#define EMU_STORAGE_META_MAX_BYTES 8192 /* Azure's limit on names + values */
/* The time Azure answers for a message that never expires. */
#define EMU_STORAGE_NEVER INT64_MAX

struct emu_storage_account {
    char name[25]; /* 3-24 lower-case letters and digits */
    unsigned char key[2][EMU_STORAGE_KEY_MAX];
    size_t keylen[2];
    int nkeys; /* key1, and key2 when configured */
    /* HMAC-SHA256 of each key: SHA-256 with the inner and the outer key
     * pad absorbed, made once (NULL when that failed: the signature is
     * then computed from key[] directly). Only ever copied, so threads
     * share them. */
    EVP_MD_CTX *inner[2], *outer[2];
};

struct emu_storage_accounts {
    struct emu_storage_account a[EMU_STORAGE_MAX_ACCOUNTS];
    size_t n;
};

/* Reads config "storage": {"accounts": [{"name", "key" (base64), "key2"?}]};
 * without it, the development account alone. CLC_ERR_CONFIG on bad input. */
enum clc_err emu_storage_accounts_load(const struct emu *e, struct emu_storage_accounts *out,
                                       struct clc_errinfo *ei);
const struct emu_storage_account *emu_storage_account_find(const struct emu_storage_accounts *a,
                                                           const char *name);
/* Sets key slot (0 or 1) from base64 of 1..EMU_STORAGE_KEY_MAX bytes and
 * keys its HMAC; CLC_ERR_CONFIG on bad input. */
enum clc_err emu_storage_account_set_key(struct emu_storage_account *a, int slot, const char *b64,
                                         struct clc_errinfo *ei);
/* Frees the keyed digests and wipes the keys. */
void emu_storage_accounts_cleanup(struct emu_storage_accounts *a);

/* ---- request view ---- */

/* Every query parameter, names and values percent-decoded ("+" stays "+",
 * as the SDKs' signing code sees it). */
struct emu_storage_query {
    size_t n;
    char *name[EMU_STORAGE_MAX_QUERY]; /* both point into mem */
    char *value[EMU_STORAGE_MAX_QUERY];
    char *mem;
};

/* CLC_ERR_PARSE on a broken escape, CLC_ERR_LIMIT over the parameter cap. */
enum clc_err emu_storage_query_parse(const char *raw, struct emu_storage_query *q);
void emu_storage_query_cleanup(struct emu_storage_query *q);
/* First value of a parameter (name compared case-insensitively), or NULL. */
const char *emu_storage_query_get(const struct emu_storage_query *q, const char *name);

/* x-ms-meta-* metadata: names as sent (compared case-insensitively). */
struct emu_storage_meta {
    size_t n;
    char *name[EMU_STORAGE_MAX_META];
    char *value[EMU_STORAGE_MAX_META];
};

/* From the request's x-ms-meta-* headers. On bad input replies the error
 * itself (400 InvalidMetadata / MetadataTooLarge) and returns 0. */
int emu_storage_meta_from_request(struct emu_req *r, const char *version,
                                  struct emu_storage_meta *m);
void emu_storage_meta_cleanup(struct emu_storage_meta *m);
int emu_storage_meta_equal(const struct emu_storage_meta *a, const struct emu_storage_meta *b);
/* Moves b's contents into a (a's old contents freed); b is left empty. */
void emu_storage_meta_move(struct emu_storage_meta *a, struct emu_storage_meta *b);
enum clc_err emu_storage_meta_copy(struct emu_storage_meta *dst,
                                   const struct emu_storage_meta *src);
/* "x-ms-meta-name: value" lines (malloc'd, NULL-terminated array of
 * malloc'd strings) for a reply; NULL on allocation failure. */
char **emu_storage_meta_headers(const struct emu_storage_meta *m);
void emu_storage_strv_free(char **v);

/* ---- replies ---- */

/* x-ms-version to echo: the request's when it is a valid date-like
 * version, else sv of a SAS, else the default. Sets *bad when the header is
 * present but malformed (the caller answers 400 InvalidHeaderValue). */
void emu_storage_version(const struct emu_req *r, const struct emu_storage_query *q, char out[16],
                         int *bad);

/* Storage's XML error: x-ms-error-code header, <Error><Code/><Message>text
 * \nRequestId:..\nTime:..</Message> + extra child elements given as
 * name/value pairs (NULL-terminated), extra reply headers likewise. */
void emu_storage_error_ex(struct emu_req *r, const char *version, int status, const char *code,
                          const char *message, const char *const *details,
                          const char *const *headers);
void emu_storage_error(struct emu_req *r, const char *version, int status, const char *code,
                       const char *message);
/* The common query parameter errors. */
void emu_storage_bad_query(struct emu_req *r, const char *version, const char *name,
                           const char *value, const char *reason);
void emu_storage_out_of_range(struct emu_req *r, const char *version, const char *name,
                              const char *value, long long min, long long max);
/* A success reply with x-ms-version (+ extra headers); body NULL = none,
 * otherwise application/xml. */
void emu_storage_reply(struct emu_req *r, const char *version, int status, const char *body,
                       size_t len, const char *const *headers);

/* ---- XML text ---- */

/* Appends s[0..n) with & < > " ' escaped. */
enum clc_err emu_storage_xml_escape(struct clc_buf *b, const char *s, size_t n);
/* "Thu, 23 Nov 2023 15:53:16 GMT"; EMU_STORAGE_NEVER gives year 9999. */
void emu_storage_time(int64_t t, char out[40]);

/* ---- names ---- */

/* Queue and container names: 3-63 of [a-z0-9-], starting and ending with a
 * letter or digit, no "--". */
int emu_storage_name_ok(const char *s);

/* "a/b", malloc'd; NULL on allocation failure. */
char *emu_storage_path_join(const char *a, const char *b);
/* Removes a directory of plain files (one level); failures are logged. */
void emu_storage_remove_dir(const char *dir);

/* ---- auth ---- */

/* What an operation needs, for each scheme. */
struct emu_storage_op {
    char service;              /* 'q' queue, 'b' blob */
    char rtype;                /* account SAS srt: 's' service, 'c' container/queue, 'o' object */
    const char *account_perms; /* any one of these letters in an account SAS "sp" */
    const char *service_perms; /* any one in a service SAS "sp"; NULL = not by service SAS */
    const char *container;     /* queue or container the request addresses; NULL at service level */
    const char *blob;          /* blob name when the request addresses one */
};

/* Checks the request's credentials: SharedKey (or SharedKeyLite) with
 * either key, an account or service SAS in the query, or an Entra bearer
 * token (audience https://storage.azure.com or the account's own endpoint)
 * of an identity holding the service's data role. Returns 1 when allowed;
 * otherwise the error reply (401/403/400) has been sent and it returns 0. */
int emu_storage_authorize(struct emu_req *r, const struct emu_storage_account *acct,
                          const struct emu_storage_query *q, const struct emu_storage_op *op,
                          const char *version);

/* The SharedKey string-to-sign of a request (exposed for tests and for the
 * error detail Azure gives); malloc'd, NULL on failure. */
char *emu_storage_sharedkey_string(const struct emu_req *r, const char *account,
                                   const struct emu_storage_query *q, int lite);

/* Shared-key signatures: base64(HMAC-SHA256(key, text)), written to out. */
int emu_storage_hmac_b64(const unsigned char *key, size_t keylen, const char *text, char out[64]);
/* The same with the account's key k (0 or 1), text[0..len). */
int emu_storage_account_mac_b64(const struct emu_storage_account *a, int k, const char *text,
                                size_t len, char out[64]);

#endif
