/* Azure Monitor Logs Ingestion API client (data collection endpoint + rule
 * immutable id + stream, bearer token for https://monitor.azure.com): rows
 * are buffered and sent as JSON arrays in batches of at most 1 MB (gzip
 * optional), with retries. The HTTP Data Collector API is retired and not
 * supported. Also a small client of the Log Analytics query API for tests. */
#ifndef CLC_LOGANALYTICS_H
#define CLC_LOGANALYTICS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "azure/auth.h"
#include "core/config.h"
#include "core/err.h"
#include "net/http.h"

#define CLC_LA_BATCH_MAX_BYTES (1024 * 1024)

struct clc_la;

struct clc_la_opts {
    const char *endpoint;     /* data collection endpoint, https://... */
    const char *dcr_id;       /* data collection rule immutable id (dcr-...) */
    const char *stream;       /* e.g. "Custom-CertlcRenewal_CL" */
    const char *api_version;  /* NULL = "2023-01-01" */
    size_t max_buffered_rows; /* rows kept while the service is down; 0 = 10000 */
};

/* auth is borrowed and must outlive the client. */
enum clc_err clc_la_new(const struct clc_la_opts *opts, const struct clc_http_opts *http_opts,
                        struct clc_auth *auth, struct clc_la **out, struct clc_errinfo *ei);
/* From config keys "loganalytics.*" (see clc_la_config_keys); CLC_ERR_NOT_FOUND
 * when Log Analytics is not configured (it is optional). */
enum clc_err clc_la_from_config(const struct clc_config *cfg, const struct clc_http_opts *http_opts,
                                struct clc_auth *auth, struct clc_la **out, struct clc_errinfo *ei);
extern const struct clc_config_key clc_la_config_keys[];
extern const size_t clc_la_config_nkeys;

/* Queues one row (an object; taken over, freed on failure too). Rows beyond
 * max_buffered_rows are dropped with a warning, oldest first. */
enum clc_err clc_la_add(struct clc_la *la, cJSON *row, struct clc_errinfo *ei);
/* Sends every buffered row in batches of at most CLC_LA_BATCH_MAX_BYTES.
 * Rows the service refused as invalid (400) are dropped and reported; on a
 * transport error or 5xx the unsent rows stay buffered for the next flush. */
enum clc_err clc_la_flush(struct clc_la *la, struct clc_errinfo *ei);
size_t clc_la_buffered(const struct clc_la *la);

void clc_la_free(struct clc_la *la);

/* Additions to the contract above. */

/* Retry policy for each call (NULL = clc_retry_policy_default); tests
 * inject their sleep. Copied. */
void clc_la_set_retry(struct clc_la *la, const struct clc_retry_policy *p);
/* gzip each call (default on, like the Azure SDKs); 1 MB is measured
 * before compression. */
void clc_la_set_gzip(struct clc_la *la, int on);

struct clc_la_stats {
    uint64_t sent;    /* rows the service accepted */
    uint64_t batches; /* successful calls */
    uint64_t dropped; /* rows dropped because the buffer was full */
    uint64_t refused; /* rows the service refused (400/413) and that were dropped */
};
void clc_la_get_stats(struct clc_la *la, struct clc_la_stats *out);

/* Query API client (dashboards, tests, the demo): runs query against the
 * workspace with a token for https://api.loganalytics.io/.default and
 * returns the first result table {"name","columns":[{"name","type"}],
 * "rows":[[...]]} (caller frees). endpoint NULL = https://api.loganalytics.io.
 * A refused query is CLC_ERR_INVALID with the service's message (and, for
 * syntax errors, line and position). */
enum clc_err clc_la_query(const char *endpoint, const char *workspace_id, const char *query,
                          const struct clc_http_opts *http_opts, struct clc_auth *auth,
                          cJSON **table, struct clc_errinfo *ei);

#endif
