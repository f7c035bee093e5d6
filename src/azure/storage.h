/* The request pipeline the Storage queue and blob clients share: URL
 * building (production host-style or emulator path-style endpoints), the
 * x-ms-* headers, authentication (Shared Key, SAS, bearer), retries of
 * idempotent calls, and Storage errors turned into clc_err with the service's
 * x-ms-error-code. One client per thread. */
#ifndef CLC_STORAGE_H
#define CLC_STORAGE_H

#include <stddef.h>
#include "azure/storage_auth.h"
#include "core/clock.h"
#include "core/err.h"
#include "net/http.h"
#include "net/retry.h"

struct clc_storage_opts {
    /* Service URL: "https://{account}.queue.core.windows.net", or path-style
     * "http://127.0.0.1:10001/devstoreaccount1" (Azurite, the emulator). */
    const char *endpoint;
    const struct clc_storage_cred *cred;  /* borrowed; must outlive the client */
    const struct clc_http_opts *http;     /* NULL = defaults */
    const struct clc_retry_policy *retry; /* NULL = clc_retry_policy_default */
    const char *api_version;              /* NULL = CLC_STORAGE_API_VERSION */
    const struct clc_clock *clock;        /* x-ms-date; NULL = system clock */
};

struct clc_storage;

enum clc_err clc_storage_new(const struct clc_storage_opts *o, struct clc_storage **out,
                             struct clc_errinfo *ei);
void clc_storage_free(struct clc_storage *s);

struct clc_storage_call {
    const char *method;
    const char *path;                      /* after the endpoint, percent-encoded: "/q/messages" */
    const struct clc_storage_param *query; /* decoded values; encoded here */
    size_t nquery;
    const char *const *headers; /* extra "Name: value" lines, NULL-terminated */
    const char *body;
    size_t body_len;
    const char *content_type; /* with a body */
    int idempotent;           /* 1 = may be retried */
};

/* Sends one call. CLC_OK only for a 2xx answer; otherwise the error
 * matching the status (403 AuthenticationFailed gives CLC_ERR_AUTH, 400
 * MessageTooLarge and 413 give CLC_ERR_LIMIT) with ei->http_status,
 * ei->code (x-ms-error-code, else the XML <Code>), ei->request_id and the
 * service's message. resp holds the last answer either way. */
enum clc_err clc_storage_send(struct clc_storage *s, const struct clc_storage_call *c,
                              struct clc_http_resp *resp, struct clc_errinfo *ei);

/* 1 when s is a valid queue or container name (3-63 of a-z 0-9 '-',
 * starting with a letter or digit, no "--", not ending in '-'). */
int clc_storage_name_ok(const char *s);

#endif
