/* Listings as an iterator: one page at a time, following nextLink verbatim
 * (only to this vault, so the token never goes elsewhere), empty pages
 * tolerated, at most max_pages pages, and a repeated link refused (a loop). */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

struct clc_kv_iter {
    struct clc_kv *kv;
    const char *op;
    char object[CLC_KV_NAME_MAX + 1];
    char next[KV_URL_MAX]; /* "" at the end */
    char prev[KV_URL_MAX];
    cJSON *page;
    const cJSON *cursor; /* next item of page */
    struct clc_kv_certificate item;
    int pages;
};

static enum clc_err iter_new(struct clc_kv *kv, const char *op, const char *object,
                             struct clc_kv_iter **out, struct clc_errinfo *ei)
{
    struct clc_kv_iter *it = calloc(1, sizeof *it);
    *out = NULL;
    if (!it)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    it->kv = kv;
    it->op = op;
    snprintf(it->object, sizeof it->object, "%s", object ? object : "");
    *out = it;
    return CLC_OK;
}

static enum clc_err check_max(const struct clc_kv *kv, int maxresults, struct clc_errinfo *ei)
{
    if (maxresults < 0 || maxresults > 25)
        return clc_errf(ei, CLC_ERR_INVALID, "key vault '%s': maxresults %d is not 1-25", kv->name,
                        maxresults);
    return CLC_OK;
}

enum clc_err clc_kv_list_certificates(struct clc_kv *kv, int maxresults, int include_pending,
                                      struct clc_kv_iter **out, struct clc_errinfo *ei)
{
    char q[64] = "";
    enum clc_err rc = check_max(kv, maxresults, ei);
    *out = NULL;
    if (rc != CLC_OK)
        return rc;
    if (maxresults)
        snprintf(q, sizeof q, "maxresults=%d", maxresults);
    if (include_pending)
        snprintf(q + strlen(q), sizeof q - strlen(q), "%sincludePending=true", q[0] ? "&" : "");
    if ((rc = iter_new(kv, "list certificates", NULL, out, ei)) != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, (*out)->next, sizeof(*out)->next, "/certificates%s%s", q[0] ? "?" : "",
                    q) != CLC_OK) {
        clc_kv_iter_free(*out);
        *out = NULL;
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    }
    return CLC_OK;
}

enum clc_err clc_kv_list_versions(struct clc_kv *kv, const char *name, int maxresults,
                                  struct clc_kv_iter **out, struct clc_errinfo *ei)
{
    char q[32] = "";
    enum clc_err rc = check_max(kv, maxresults, ei);
    *out = NULL;
    if (rc == CLC_OK)
        rc = clc_kvi_check_name(kv, "list versions", name, NULL, ei);
    if (rc != CLC_OK)
        return rc;
    if (maxresults)
        snprintf(q, sizeof q, "?maxresults=%d", maxresults);
    if ((rc = iter_new(kv, "list versions", name, out, ei)) != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, (*out)->next, sizeof(*out)->next, "/certificates/%s/versions%s", name, q) !=
        CLC_OK) {
        clc_kv_iter_free(*out);
        *out = NULL;
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    }
    return CLC_OK;
}

enum clc_err clc_kv_list_deleted(struct clc_kv *kv, int maxresults, struct clc_kv_iter **out,
                                 struct clc_errinfo *ei)
{
    char q[32] = "";
    enum clc_err rc = check_max(kv, maxresults, ei);
    *out = NULL;
    if (rc != CLC_OK)
        return rc;
    if (maxresults)
        snprintf(q, sizeof q, "?maxresults=%d", maxresults);
    if ((rc = iter_new(kv, "list deleted certificates", NULL, out, ei)) != CLC_OK)
        return rc;
    if (clc_kvi_url(kv, (*out)->next, sizeof(*out)->next, "/deletedcertificates%s", q) != CLC_OK) {
        clc_kv_iter_free(*out);
        *out = NULL;
        return clc_errf(ei, CLC_ERR_LIMIT, "URL too long");
    }
    return CLC_OK;
}

/* Fetches the page at it->next and sets up the next link. */
static enum clc_err fetch_page(struct clc_kv_iter *it, struct clc_errinfo *ei)
{
    struct clc_kv *kv = it->kv;
    struct kv_call c = {.op = it->op,
                        .object = it->object[0] ? it->object : NULL,
                        .method = "GET",
                        .url = it->next,
                        .idempotent = 1,
                        .expect = 200};
    const cJSON *value, *link;
    enum clc_err rc;

    if (it->pages >= kv->max_pages)
        return clc_errf(ei, CLC_ERR_LIMIT, "key vault '%s': %s: more than %d pages", kv->name,
                        it->op, kv->max_pages);
    cJSON_Delete(it->page);
    it->page = NULL;
    it->cursor = NULL;
    if ((rc = clc_kvi_call(kv, &c, &it->page, ei)) != CLC_OK)
        return rc;
    it->pages++;
    snprintf(it->prev, sizeof it->prev, "%s", it->next);
    it->next[0] = '\0';
    if (!it->page || (rc = clc_json_arr(it->page, "value", &value, ei)) != CLC_OK)
        return clc_errf(ei, CLC_ERR_PARSE, "key vault '%s': %s: page %d has no 'value' array",
                        kv->name, it->op, it->pages);
    it->cursor = value->child;
    link = cJSON_GetObjectItemCaseSensitive(it->page, "nextLink");
    if (link && !cJSON_IsNull(link)) {
        if (!cJSON_IsString(link))
            return clc_errf(ei, CLC_ERR_PARSE, "key vault '%s': %s: 'nextLink' is not a string",
                            kv->name, it->op);
        if (!link->valuestring[0])
            return CLC_OK; /* some services send "" for "no more" */
        if (strlen(link->valuestring) >= sizeof it->next)
            return clc_errf(ei, CLC_ERR_LIMIT, "key vault '%s': %s: 'nextLink' too long", kv->name,
                            it->op);
        if (!clc_kvi_same_vault(kv, link->valuestring))
            return clc_errf(ei, CLC_ERR_PARSE,
                            "key vault '%s': %s: 'nextLink' points outside the vault", kv->name,
                            it->op);
        if (strcmp(link->valuestring, it->prev) == 0)
            return clc_errf(ei, CLC_ERR_PARSE,
                            "key vault '%s': %s: 'nextLink' repeats the page just read", kv->name,
                            it->op);
        snprintf(it->next, sizeof it->next, "%s", link->valuestring);
    }
    return CLC_OK;
}

enum clc_err clc_kv_iter_next(struct clc_kv_iter *it, const struct clc_kv_certificate **item,
                              struct clc_errinfo *ei)
{
    enum clc_err rc;

    *item = NULL;
    clc_kv_certificate_cleanup(&it->item);
    /* Pages may be empty yet have a next link: keep going (bounded by
     * max_pages). */
    while (!it->cursor) {
        if (!it->next[0])
            return CLC_OK;
        if ((rc = fetch_page(it, ei)) != CLC_OK) {
            it->next[0] = '\0';
            return rc;
        }
    }
    rc = clc_kvi_certificate_from_json(it->cursor, &it->item, ei);
    it->cursor = it->cursor->next;
    if (rc != CLC_OK) {
        clc_kv_certificate_cleanup(&it->item);
        return clc_err_wrap(ei, rc, "key vault '%s': %s: page %d", it->kv->name, it->op, it->pages);
    }
    *item = &it->item;
    return CLC_OK;
}

int clc_kv_iter_pages(const struct clc_kv_iter *it)
{
    return it ? it->pages : 0;
}

void clc_kv_iter_free(struct clc_kv_iter *it)
{
    if (!it)
        return;
    cJSON_Delete(it->page);
    clc_kv_certificate_cleanup(&it->item);
    free(it);
}
