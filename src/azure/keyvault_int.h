/* Inside the Key Vault client: the client struct, the one request path every
 * operation goes through (keyvault_http.c), and the JSON readers and writers
 * the operation files share (keyvault_json.c, keyvault_policy.c). */
#ifndef CLC_KEYVAULT_INT_H
#define CLC_KEYVAULT_INT_H

#include "azure/keyvault.h"
#include "core/buf.h"

#define KV_URL_MAX 2048
#define KV_SCOPE_MAX 512
#define KV_DEFAULT_PAGES 10000

struct clc_kv {
    char *url;      /* vault base, no trailing slash */
    char *name;     /* for messages */
    char host[256]; /* lower-case, no port */
    long port;      /* explicit or 443 */
    char api_version[16];
    int verify_resource;
    size_t max_resp;
    int max_pages;
    struct clc_retry_policy retry;
    struct clc_http *http;
    struct clc_auth *auth;        /* borrowed */
    char scope[KV_SCOPE_MAX];     /* from the challenge; "" until the first one */
    char authority[KV_SCOPE_MAX]; /* idem, for messages */
};

/* One operation's request. */
struct kv_call {
    const char *op;     /* "get certificate", for messages */
    const char *object; /* certificate name, or NULL */
    const char *method;
    const char *url;  /* absolute (clc_kvi_url) */
    const char *body; /* JSON or NULL */
    size_t body_len;
    int idempotent;      /* 0: only 429 is retried */
    long expect;         /* the success status; 0 = any 2xx */
    int secret_response; /* wipe the response body after use */
};

/* "{vault}{path}?api-version=V" (or "&api-version" when path has a query);
 * path is already safe (validated names). Returns CLC_ERR_LIMIT if long. */
enum clc_err clc_kvi_url(const struct clc_kv *kv, char *out, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends c (challenge, token, retries) and returns the parsed JSON body of a
 * successful answer in *json (NULL when json is NULL or the body is empty);
 * any other answer becomes an error naming vault, object, status and code. */
enum clc_err clc_kvi_call(struct clc_kv *kv, const struct kv_call *c, cJSON **json,
                          struct clc_errinfo *ei);

/* 1 when url points at this vault (scheme https, same host and port). */
int clc_kvi_same_vault(const struct clc_kv *kv, const char *url);

/* Checks a certificate name (CLC_ERR_INVALID naming it) and an optional
 * version (letters and digits, at most 64). */
enum clc_err clc_kvi_check_name(const struct clc_kv *kv, const char *op, const char *name,
                                const char *version, struct clc_errinfo *ei);

/* Readers: clear the output first; CLC_ERR_PARSE naming the member. */
enum clc_err clc_kvi_attributes_from_json(const cJSON *j, struct clc_kv_attributes *a,
                                          struct clc_errinfo *ei);
enum clc_err clc_kvi_tags_from_json(const cJSON *j, struct clc_kv_tags *t, struct clc_errinfo *ei);
enum clc_err clc_kvi_certificate_from_json(const cJSON *j, struct clc_kv_certificate *c,
                                           struct clc_errinfo *ei);
enum clc_err clc_kvi_operation_from_json(const cJSON *j, struct clc_kv_operation *op,
                                         struct clc_errinfo *ei);
/* Writers: add the member to obj only when there is something to send. */
enum clc_err clc_kvi_attributes_to_json(const struct clc_kv_attributes *a, cJSON *obj,
                                        const char *key);
enum clc_err clc_kvi_tags_to_json(const struct clc_kv_tags *t, cJSON *obj);
/* malloc'd copy of a JSON string member (NULL member: *out NULL). */
enum clc_err clc_kvi_dup_opt(const cJSON *j, const char *key, char **out, struct clc_errinfo *ei);
/* Splits an object id ".../{collection}/{name}[/{version}]". */
enum clc_err clc_kvi_split_id(const char *id, char **name, char **version, struct clc_errinfo *ei);

/* Serialises obj into a body and runs the call. */
enum clc_err clc_kvi_call_json(struct clc_kv *kv, struct kv_call *c, const cJSON *body,
                               cJSON **json, struct clc_errinfo *ei);

#endif
