/* Test support for the Log Analytics tests: one emulator per binary with a
 * data dir (so a restart keeps rows) and identities for each role (renewer:
 * Monitoring Metrics Publisher; dashboard: Log Analytics Reader; reader: Key
 * Vault Reader only; admin), an HTTPS client trusting its CA, raw requests,
 * queries and fault rules. */
#ifndef TEST_EMU_LOGANALYTICS_FIXTURE_H
#define TEST_EMU_LOGANALYTICS_FIXTURE_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include "azure/auth.h"
#include "emulator/emu.h"
#include "net/http.h"

#define LAF_RENEWAL_DCR "dcr-c371c0000000000000000000000000a1"
#define LAF_RENEWAL_STREAM "Custom-CertlcRenewal_CL"
#define LAF_WORKSPACE "c3e71c00-0000-4000-8000-00000000c371"
#define LAF_MONITOR_SCOPE "https://monitor.azure.com/.default"
#define LAF_QUERY_SCOPE "https://api.loganalytics.io/.default"

struct laf {
    char dir[256];
    char data_dir[300];
    char config[300];
    struct emu *e;
    cJSON *endpoints;
    struct clc_http_opts http_opts;
    struct clc_http *http;
    struct clc_auth *renewer, *dashboard, *reader, *admin;
};

extern struct laf LF;

/* Starts the emulator; extra is more top-level config members (without the
 * braces, e.g. "\"loganalytics\": {...}") or NULL. 0 on success. */
int laf_setup(const char *extra);
/* Stops and starts the emulator on the same data dir; 0 on success. */
int laf_restart(void);
void laf_teardown(void);

/* endpoints["a"]["b"] (b may be NULL). */
const char *laf_ep(const char *a, const char *b);
struct clc_auth *laf_auth(const char *identity);

/* One raw request: token for scope from identity (NULL = no token);
 * headers NULL-terminated or NULL. Returns the status; resp is initialised
 * here and cleaned by the caller. */
long laf_request(const char *method, const char *url, const char *identity, const char *scope,
                 const char *const *headers, const char *content_type, const void *body, size_t len,
                 struct clc_http_resp *resp);
/* The ingestion URL for dcr and stream on the emulator. */
const char *laf_ingest_url(const char *dcr, const char *stream);
/* POSTs a JSON body to the renewal stream as renewer; returns the status. */
long laf_ingest(const char *dcr, const char *stream, const char *body, struct clc_http_resp *resp);

/* Runs a query as identity and returns the table (fails the test on error). */
cJSON *laf_query(const char *identity, const char *query);
/* The rows of a query as compact JSON (caller frees). */
char *laf_query_rows(const char *identity, const char *query);
/* Integer in the first cell of a query's single row ("T | count"). */
long laf_query_count(const char *query);

/* A control API call as admin; returns the status. */
long laf_control(const char *method, const char *path, const char *body);
/* A fault rule for service ("loganalytics") and path glob: count requests
 * (-1 = until removed) get status, with Retry-After when retry_after > 0. */
void laf_fault(const char *service, const char *path, int count, int status, int retry_after);
void laf_faults_clear(void);

/* The error body's error.code (static buffer; "" when absent). */
const char *laf_err_code(const struct clc_http_resp *resp);

#endif
