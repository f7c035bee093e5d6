/* Log Analytics query API client: POST {endpoint}/v1/workspaces/{id}/query
 * with {"query": ...} and a bearer token for api.loganalytics.io; returns the
 * primary result table, or the service's error (with the innermost detail,
 * e.g. a syntax error's position) as a message. */
#include "azure/loganalytics.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/json.h"

#define QUERY_SCOPE "https://api.loganalytics.io/.default"
#define QUERY_RESP_MAX ((size_t)64 * 1024 * 1024)

static void clean(char *out, size_t n, const char *in)
{
    size_t i = 0;
    for (; in && *in && i + 1 < n; in++)
        out[i++] = (*in >= 0x20 && *in < 0x7f) ? *in : '?';
    out[i] = '\0';
}

static enum clc_err query_error(const struct clc_http_resp *resp, struct clc_errinfo *ei)
{
    enum clc_err e = clc_err_from_http(resp->status);
    char code[96] = "", msg[300] = "", detail[320] = "";
    cJSON *j = NULL;

    if (e == CLC_OK)
        e = CLC_ERR_HTTP;
    if (resp->status == 400)
        e = CLC_ERR_INVALID;
    if (resp->body.len > 0 &&
        clc_json_parse(resp->body.data, resp->body.len, 64 * 1024, &j, NULL) == CLC_OK) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error"), *in = err, *v;
        v = cJSON_GetObjectItemCaseSensitive(err, "code");
        if (cJSON_IsString(v))
            clean(code, sizeof code, v->valuestring);
        v = cJSON_GetObjectItemCaseSensitive(err, "message");
        if (cJSON_IsString(v))
            clean(msg, sizeof msg, v->valuestring);
        /* The innermost error says what was wrong and where. */
        for (int depth = 0; depth < 8 && cJSON_GetObjectItemCaseSensitive(in, "innererror");
             depth++)
            in = cJSON_GetObjectItemCaseSensitive(in, "innererror");
        if (in != err) {
            const cJSON *m = cJSON_GetObjectItemCaseSensitive(in, "message");
            const cJSON *line = cJSON_GetObjectItemCaseSensitive(in, "line");
            const cJSON *pos = cJSON_GetObjectItemCaseSensitive(in, "pos");
            char where[64] = "";
            if (cJSON_IsNumber(line) && cJSON_IsNumber(pos))
                snprintf(where, sizeof where, " (line %d, position %d)", line->valueint,
                         pos->valueint);
            if (cJSON_IsString(m)) {
                char text[240];
                clean(text, sizeof text, m->valuestring);
                snprintf(detail, sizeof detail, "%s%s", text, where);
            }
        }
    }
    cJSON_Delete(j);
    clc_errf(ei, e, "log analytics query: HTTP %ld%s%s%s%s%s%s", resp->status, code[0] ? " " : "",
             code, msg[0] ? ": " : "", msg, detail[0] ? ": " : "", detail);
    clc_errinfo_set_http(ei, resp->status, code[0] ? code : NULL);
    return e;
}

enum clc_err clc_la_query(const char *endpoint, const char *workspace_id, const char *query,
                          const struct clc_http_opts *http_opts, struct clc_auth *auth,
                          cJSON **table, struct clc_errinfo *ei)
{
    struct clc_http *http = NULL;
    struct clc_http_resp resp;
    struct clc_secret *token = NULL;
    struct clc_http_opts ho = {0};
    cJSON *body = NULL, *doc = NULL;
    char url[1024], *text = NULL;
    enum clc_err rc;
    size_t elen;

    *table = NULL;
    clc_http_resp_init(&resp);
    if (endpoint == NULL)
        endpoint = "https://api.loganalytics.io";
    elen = strlen(endpoint);
    while (elen > 0 && endpoint[elen - 1] == '/')
        elen--;
    if (strncasecmp(endpoint, "https://", 8) != 0 || elen > 512 || workspace_id == NULL ||
        workspace_id[0] == '\0' || strlen(workspace_id) > 64 ||
        strspn(workspace_id, "0123456789abcdefABCDEF-") != strlen(workspace_id) || query == NULL ||
        auth == NULL) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "log analytics query: an https endpoint, a workspace id (GUID), a query "
                      "and credentials are needed");
        goto out;
    }
    snprintf(url, sizeof url, "%.*s/v1/workspaces/%s/query", (int)elen, endpoint, workspace_id);
    body = cJSON_CreateObject();
    if (body == NULL || clc_json_add_str(body, "query", query) != CLC_OK ||
        (text = clc_json_print(body)) == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    if (http_opts != NULL)
        ho = *http_opts;
    if (ho.max_response_bytes == 0)
        ho.max_response_bytes = QUERY_RESP_MAX;
    if ((rc = clc_http_new(&ho, &http, ei)) != CLC_OK)
        goto out;
    for (int round = 0; round < 2; round++) {
        static const char *const headers[] = {"Accept: application/json", NULL};
        struct clc_http_req req = {.method = "POST",
                                   .url = url,
                                   .headers = headers,
                                   .body = text,
                                   .body_len = strlen(text),
                                   .content_type = "application/json",
                                   .idempotent = 1};
        clc_secret_free(token);
        token = NULL;
        if ((rc = clc_auth_token(auth, QUERY_SCOPE, &token, NULL, ei)) != CLC_OK) {
            clc_err_wrap(ei, rc, "log analytics query: token for %s", QUERY_SCOPE);
            goto out;
        }
        req.bearer = token;
        if ((rc = clc_http_send(http, &req, NULL, &resp, ei)) != CLC_OK) {
            clc_err_wrap(ei, rc, "log analytics query");
            goto out;
        }
        if (resp.status != 401)
            break;
        clc_auth_invalidate(auth, QUERY_SCOPE);
    }
    if (resp.status != 200) {
        rc = query_error(&resp, ei);
        goto out;
    }
    if ((rc = clc_json_parse(resp.body.data, resp.body.len, QUERY_RESP_MAX, &doc, ei)) != CLC_OK) {
        clc_err_wrap(ei, rc, "log analytics query: response");
        goto out;
    }
    cJSON *tables = cJSON_GetObjectItemCaseSensitive(doc, "tables");
    cJSON *first = cJSON_GetArrayItem(tables, 0);
    if (!cJSON_IsArray(tables) || !cJSON_IsObject(first) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(first, "columns")) ||
        !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(first, "rows"))) {
        rc = clc_errf(ei, CLC_ERR_PARSE,
                      "log analytics query: the response has no table with columns and rows");
        goto out;
    }
    *table = cJSON_DetachItemFromArray(tables, 0);
out:
    cJSON_Delete(doc);
    cJSON_Delete(body);
    free(text);
    clc_secret_free(token);
    clc_http_resp_cleanup(&resp);
    clc_http_free(http);
    return rc;
}
