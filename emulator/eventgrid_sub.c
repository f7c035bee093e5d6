/* Event Grid subscriptions and custom topics as configured: parsing the
 * definitions (config "eventgrid" and the control API share one shape),
 * filters (event types, subject prefix/suffix), topic matching, and the
 * JSON view the control API shows (secrets masked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/json.h"
#include "emulator/eventgrid.h"

static const char *const sub_keys[] = {"name",   "topic",        "destination",
                                       "filter", "retry_policy", "dead_letter"};
static const char *const webhook_keys[] = {"type", "url", "shared_secret", "shared_secret_header"};
static const char *const queue_keys[] = {"type", "account", "queue", "message_ttl_seconds"};
static const char *const filter_keys[] = {"included_event_types", "subject_begins_with",
                                          "subject_ends_with", "is_subject_case_sensitive"};
static const char *const retry_keys[] = {"max_delivery_attempts", "event_ttl_minutes"};
static const char *const dl_keys[] = {"account", "container"};

#define NKEYS(a) (sizeof(a) / sizeof(a)[0])

int eg_name_ok(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '-'))
            return 0;
    return n >= 3 && n <= EG_NAME_MAX;
}

static int storage_name_ok(const char *s, size_t min, size_t max, int dashes)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= '0' && s[n] <= '9') ||
              (dashes && s[n] == '-')))
            return 0;
    return n >= min && n <= max;
}

/* Every key of o must be one of keys: a typo is an error, not a default. */
static enum clc_err only_keys(const cJSON *o, const char *what, const char *const *keys, size_t n,
                              struct clc_errinfo *ei)
{
    const cJSON *it;

    if (!cJSON_IsObject(o))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s must be an object", what);
    cJSON_ArrayForEach(it, o)
    {
        size_t i;
        for (i = 0; i < n && strcmp(it->string, keys[i]) != 0; i++)
            ;
        if (i == n)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: unknown key '%.64s'", what, it->string);
    }
    return CLC_OK;
}

/* Copies an optional string member into out (size n); too long is an error. */
static enum clc_err get_str(const cJSON *o, const char *key, int required, char *out, size_t n,
                            const char *what, struct clc_errinfo *ei)
{
    const char *v = NULL;

    if (clc_json_str_opt(o, key, NULL, &v, ei) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "%s", what);
    if (v == NULL) {
        if (required)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: '%s' is required", what, key);
        out[0] = '\0';
        return CLC_OK;
    }
    if (strlen(v) >= n)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: '%s' is longer than %zu characters", what, key,
                        n - 1);
    memcpy(out, v, strlen(v) + 1);
    return CLC_OK;
}

static enum clc_err parse_dest(struct eg_sub *s, const cJSON *d, struct clc_errinfo *ei)
{
    char type[32];
    enum clc_err rc;

    if (!cJSON_IsObject(d))
        return clc_errf(ei, CLC_ERR_CONFIG, "subscription %s: 'destination' is required", s->name);
    rc = get_str(d, "type", 1, type, sizeof type, "destination", ei);
    if (rc != CLC_OK)
        return rc;
    if (strcmp(type, "webhook") == 0) {
        s->dest = EG_DEST_WEBHOOK;
        rc = only_keys(d, "destination", webhook_keys, NKEYS(webhook_keys), ei);
        if (rc == CLC_OK)
            rc = get_str(d, "url", 1, s->url, sizeof s->url, "destination", ei);
        if (rc == CLC_OK)
            rc = get_str(d, "shared_secret", 0, s->secret, sizeof s->secret, "destination", ei);
        if (rc == CLC_OK)
            rc = get_str(d, "shared_secret_header", 0, s->secret_header, sizeof s->secret_header,
                         "destination", ei);
        if (rc != CLC_OK)
            return rc;
        if (strncmp(s->url, "https://", 8) != 0 && strncmp(s->url, "http://", 7) != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "subscription %s: the webhook url must be http(s)",
                            s->name);
        if (s->secret_header[0] == '\0')
            snprintf(s->secret_header, sizeof s->secret_header, "%s", "x-certlc-webhook-secret");
        for (const char *p = s->secret_header; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '-'))
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "subscription %s: shared_secret_header is not a header name",
                                s->name);
        for (const char *p = s->secret; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "subscription %s: shared_secret has control characters", s->name);
        return CLC_OK;
    }
    if (strcmp(type, "storagequeue") == 0) {
        s->dest = EG_DEST_QUEUE;
        rc = only_keys(d, "destination", queue_keys, NKEYS(queue_keys), ei);
        if (rc == CLC_OK)
            rc = get_str(d, "account", 1, s->account, sizeof s->account, "destination", ei);
        if (rc == CLC_OK)
            rc = get_str(d, "queue", 1, s->queue, sizeof s->queue, "destination", ei);
        if (rc == CLC_OK && clc_json_int_opt(d, "message_ttl_seconds", 0, &s->queue_ttl, ei))
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "destination");
        if (rc != CLC_OK)
            return rc;
        if (!storage_name_ok(s->account, 3, 24, 0) || !storage_name_ok(s->queue, 3, 63, 1))
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "subscription %s: bad storage account or queue name", s->name);
        if (s->queue_ttl < -1 || s->queue_ttl > 7 * 86400)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "subscription %s: message_ttl_seconds must be -1, 0 (default) or "
                            "1..604800",
                            s->name);
        return CLC_OK;
    }
    return clc_errf(ei, CLC_ERR_CONFIG,
                    "subscription %s: destination type must be \"webhook\" or \"storagequeue\"",
                    s->name);
}

static enum clc_err parse_filter(struct eg_sub *s, const cJSON *f, struct clc_errinfo *ei)
{
    const cJSON *types, *it;
    int cs = 0;
    enum clc_err rc;

    if (f == NULL)
        return CLC_OK;
    rc = only_keys(f, "filter", filter_keys, NKEYS(filter_keys), ei);
    if (rc == CLC_OK)
        rc = get_str(f, "subject_begins_with", 0, s->begins, sizeof s->begins, "filter", ei);
    if (rc == CLC_OK)
        rc = get_str(f, "subject_ends_with", 0, s->ends, sizeof s->ends, "filter", ei);
    if (rc == CLC_OK && clc_json_bool_opt(f, "is_subject_case_sensitive", 0, &cs, ei) != CLC_OK)
        rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "filter");
    if (rc != CLC_OK)
        return rc;
    s->case_sensitive = cs;
    types = cJSON_GetObjectItemCaseSensitive(f, "included_event_types");
    if (types == NULL || cJSON_IsNull(types))
        return CLC_OK;
    if (!cJSON_IsArray(types) || cJSON_GetArraySize(types) > EG_MAX_TYPES)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "filter: 'included_event_types' must be an array of at most %d strings",
                        EG_MAX_TYPES);
    cJSON_ArrayForEach(it, types)
    {
        if (!cJSON_IsString(it) || it->valuestring[0] == '\0' ||
            strlen(it->valuestring) > EG_FILTER_MAX)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "filter: 'included_event_types' entries must be non-empty strings");
        s->types[s->ntypes] = strdup(it->valuestring);
        if (s->types[s->ntypes] == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        s->ntypes++;
    }
    return CLC_OK;
}

static enum clc_err parse_policies(struct eg_sub *s, const cJSON *def, struct clc_errinfo *ei)
{
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(def, "retry_policy");
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(def, "dead_letter");
    enum clc_err rc = CLC_OK;

    s->max_attempts = EG_DEFAULT_ATTEMPTS;
    s->ttl_min = EG_DEFAULT_TTL_MIN;
    if (rp != NULL) {
        rc = only_keys(rp, "retry_policy", retry_keys, NKEYS(retry_keys), ei);
        if (rc == CLC_OK && (clc_json_int_opt(rp, "max_delivery_attempts", EG_DEFAULT_ATTEMPTS,
                                              &s->max_attempts, ei) != CLC_OK ||
                             clc_json_int_opt(rp, "event_ttl_minutes", EG_DEFAULT_TTL_MIN,
                                              &s->ttl_min, ei) != CLC_OK))
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "retry_policy");
        if (rc != CLC_OK)
            return rc;
        /* Azure's own bounds. */
        if (s->max_attempts < 1 || s->max_attempts > 30 || s->ttl_min < 1 || s->ttl_min > 1440)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "subscription %s: max_delivery_attempts must be 1..30 and "
                            "event_ttl_minutes 1..1440",
                            s->name);
    }
    if (dl != NULL) {
        rc = only_keys(dl, "dead_letter", dl_keys, NKEYS(dl_keys), ei);
        if (rc == CLC_OK)
            rc = get_str(dl, "account", 1, s->dl_account, sizeof s->dl_account, "dead_letter", ei);
        if (rc == CLC_OK)
            rc = get_str(dl, "container", 1, s->dl_container, sizeof s->dl_container, "dead_letter",
                         ei);
        if (rc == CLC_OK && (!storage_name_ok(s->dl_account, 3, 24, 0) ||
                             !storage_name_ok(s->dl_container, 3, 63, 1)))
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "subscription %s: bad dead-letter account or container name", s->name);
    }
    return rc;
}

enum clc_err eg_sub_parse(const cJSON *def, const char *name, struct eg_sub **out,
                          struct clc_errinfo *ei)
{
    struct eg_sub *s;
    char given[EG_NAME_MAX + 2];
    enum clc_err rc;

    *out = NULL;
    rc = only_keys(def, "subscription", sub_keys, NKEYS(sub_keys), ei);
    if (rc != CLC_OK)
        return rc;
    s = calloc(1, sizeof *s);
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = get_str(def, "name", name == NULL, given, sizeof given, "subscription", ei);
    if (rc != CLC_OK)
        goto out;
    if (name != NULL && given[0] != '\0' && strcmp(given, name) != 0) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "subscription: 'name' differs from the path");
        goto out;
    }
    if (name == NULL)
        name = given;
    if (!eg_name_ok(name)) {
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "subscription name '%.80s' must be 3-64 characters of A-Z, a-z, 0-9 and '-'",
                      name);
        goto out;
    }
    snprintf(s->name, sizeof s->name, "%.64s", name);
    rc = get_str(def, "topic", 1, s->topic, sizeof s->topic, "subscription", ei);
    if (rc == CLC_OK && !eg_name_ok(s->topic))
        rc = clc_errf(ei, CLC_ERR_CONFIG,
                      "subscription %s: 'topic' must be a vault or custom topic name", s->name);
    if (rc == CLC_OK)
        rc = parse_dest(s, cJSON_GetObjectItemCaseSensitive(def, "destination"), ei);
    if (rc == CLC_OK)
        rc = parse_filter(s, cJSON_GetObjectItemCaseSensitive(def, "filter"), ei);
    if (rc == CLC_OK)
        rc = parse_policies(s, def, ei);
    if (rc != CLC_OK)
        goto out;
    s->def = cJSON_Duplicate(def, 1);
    if (s->def == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    /* The stored definition always names itself. */
    cJSON_DeleteItemFromObjectCaseSensitive(s->def, "name");
    if (clc_json_add_str(s->def, "name", s->name) != CLC_OK) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    *out = s;
    s = NULL;
out:
    eg_sub_free(s);
    return rc;
}

void eg_sub_free(struct eg_sub *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->ntypes; i++)
        free(s->types[i]);
    for (size_t i = 0; i < EG_SEEN_MAX; i++)
        free(s->seen[i]);
    OPENSSL_cleanse(s->secret, sizeof s->secret);
    if (s->def != NULL) {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(s->def, "destination");
        cJSON *sec = cJSON_GetObjectItemCaseSensitive(d, "shared_secret");
        if (cJSON_IsString(sec))
            OPENSSL_cleanse(sec->valuestring, strlen(sec->valuestring));
        cJSON_Delete(s->def);
    }
    free(s);
}

static int prefix_ok(const char *subject, const char *p, int cs)
{
    size_t n = strlen(p);
    return cs ? strncmp(subject, p, n) == 0 : strncasecmp(subject, p, n) == 0;
}

static int suffix_ok(const char *subject, const char *p, int cs)
{
    size_t n = strlen(p), m = strlen(subject);
    if (n > m)
        return 0;
    return cs ? strcmp(subject + m - n, p) == 0 : strcasecmp(subject + m - n, p) == 0;
}

int eg_sub_matches(const struct eg_sub *s, const cJSON *ev, enum eg_schema schema)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(
        ev, schema == EG_SCHEMA_CLOUDEVENTS ? "type" : "eventType");
    const cJSON *subj = cJSON_GetObjectItemCaseSensitive(ev, "subject");
    const char *subject = cJSON_IsString(subj) ? subj->valuestring : "";

    if (!cJSON_IsString(type))
        return 0;
    if (s->ntypes > 0) {
        size_t i;
        /* Event type names compare case-insensitively, as Azure does. */
        for (i = 0; i < s->ntypes && strcasecmp(s->types[i], type->valuestring) != 0; i++)
            ;
        if (i == s->ntypes)
            return 0;
    }
    return prefix_ok(subject, s->begins, s->case_sensitive) &&
           suffix_ok(subject, s->ends, s->case_sensitive);
}

void eg_topic_resource(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s%s", EG_SUB_RESOURCE, name);
}

static int ends_with_ci(const char *s, const char *tail1, const char *tail2)
{
    size_t n1 = strlen(tail1), n2 = strlen(tail2), m = strlen(s);

    return m >= n1 + n2 && strncasecmp(s + m - n1 - n2, tail1, n1) == 0 &&
           strcasecmp(s + m - n2, tail2) == 0;
}

int eg_topic_matches(const struct eg_sub *s, const char *topic_id)
{
    if (topic_id == NULL)
        return 0;
    /* Resource ids compare case-insensitively in Azure. */
    return ends_with_ci(topic_id, "/providers/Microsoft.KeyVault/vaults/", s->topic) ||
           ends_with_ci(topic_id, "/providers/Microsoft.EventGrid/topics/", s->topic);
}

const char *eg_state_name(enum eg_state st)
{
    switch (st) {
    case EG_SUB_CREATING:
        return "Creating";
    case EG_SUB_AWAITING_MANUAL:
        return "AwaitingManualAction";
    case EG_SUB_ACTIVE:
        return "Succeeded";
    case EG_SUB_FAILED:
        return "Failed";
    }
    return "Unknown";
}

static cJSON *hist_json(const struct eg_sub *s)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < s->hn; i++) {
        const struct eg_hist *h = &s->hist[(s->hhead + EG_HIST_MAX - s->hn + i) % EG_HIST_MAX];
        cJSON *o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            return NULL;
        }
        if (clc_json_add_int(o, "time", h->time) != CLC_OK ||
            clc_json_add_str(o, "kind", h->kind) != CLC_OK ||
            clc_json_add_str(o, "event_id", h->event_id) != CLC_OK ||
            clc_json_add_int(o, "attempt", h->attempt) != CLC_OK ||
            clc_json_add_int(o, "status", h->status) != CLC_OK ||
            clc_json_add_str(o, "outcome", h->outcome) != CLC_OK) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

cJSON *eg_sub_json(const struct eg_svc *svc, const struct eg_sub *s, int with_history)
{
    cJSON *o = cJSON_Duplicate(s->def, 1);
    cJSON *d = o ? cJSON_GetObjectItemCaseSensitive(o, "destination") : NULL;
    cJSON *h;

    if (o == NULL)
        return NULL;
    if (cJSON_GetObjectItemCaseSensitive(d, "shared_secret") != NULL)
        cJSON_ReplaceItemInObjectCaseSensitive(d, "shared_secret", cJSON_CreateString("***"));
    if (clc_json_add_str(o, "provisioning_state", eg_state_name(s->state)) != CLC_OK ||
        clc_json_add_bool(o, "from_config", s->from_config) != CLC_OK ||
        clc_json_add_int(o, "max_delivery_attempts", s->max_attempts) != CLC_OK ||
        clc_json_add_int(o, "event_ttl_minutes", s->ttl_min) != CLC_OK ||
        clc_json_add_int(o, "delivered", s->delivered) != CLC_OK ||
        clc_json_add_int(o, "dead_lettered", s->dead_lettered) != CLC_OK ||
        clc_json_add_int(o, "dropped", s->dropped) != CLC_OK ||
        clc_json_add_int(o, "attempts", s->attempts) != CLC_OK ||
        clc_json_add_int(o, "pending", (int64_t)eg_items_count(svc, s->name)) != CLC_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    if (with_history) {
        h = hist_json(s);
        if (h == NULL || !cJSON_AddItemToObject(o, "history", h)) {
            cJSON_Delete(h);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}

enum clc_err eg_topic_parse(const cJSON *def, const char *name, struct eg_topic *out,
                            struct clc_errinfo *ei)
{
    static const char *const keys[] = {"name", "key"};
    char given[EG_NAME_MAX + 2];
    enum clc_err rc;

    memset(out, 0, sizeof *out);
    rc = only_keys(def, "topic", keys, NKEYS(keys), ei);
    if (rc == CLC_OK)
        rc = get_str(def, "name", name == NULL, given, sizeof given, "topic", ei);
    if (rc == CLC_OK)
        rc = get_str(def, "key", 1, out->key, sizeof out->key, "topic", ei);
    if (rc != CLC_OK)
        return rc;
    if (name != NULL && given[0] != '\0' && strcmp(given, name) != 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "topic: 'name' differs from the path");
    if (name == NULL)
        name = given;
    if (!eg_name_ok(name))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "topic name '%.80s' must be 3-64 characters of A-Z, a-z, 0-9 and '-'",
                        name);
    if (strlen(out->key) < 8) {
        OPENSSL_cleanse(out->key, sizeof out->key);
        return clc_errf(ei, CLC_ERR_CONFIG, "topic %s: 'key' must have at least 8 characters",
                        name);
    }
    snprintf(out->name, sizeof out->name, "%.64s", name);
    return CLC_OK;
}

struct eg_sub *eg_sub_find(struct eg_svc *svc, const char *name)
{
    for (size_t i = 0; i < svc->nsubs; i++)
        if (strcmp(svc->subs[i]->name, name) == 0)
            return svc->subs[i];
    return NULL;
}

struct eg_topic *eg_topic_find(struct eg_svc *svc, const char *name)
{
    for (size_t i = 0; i < svc->ntopics; i++)
        if (strcasecmp(svc->topics[i].name, name) == 0)
            return &svc->topics[i];
    return NULL;
}

enum clc_err eg_config_load(struct eg_svc *svc, const cJSON *cfg, struct clc_errinfo *ei)
{
    static const char *const keys[] = {"subscriptions", "topics"};
    const cJSON *eg = cJSON_GetObjectItemCaseSensitive(cfg, "eventgrid"), *arr, *it;
    enum clc_err rc;

    if (eg == NULL)
        return CLC_OK;
    rc = only_keys(eg, "eventgrid", keys, NKEYS(keys), ei);
    if (rc != CLC_OK)
        return rc;
    arr = cJSON_GetObjectItemCaseSensitive(eg, "topics");
    if (arr != NULL && !cJSON_IsArray(arr))
        return clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: 'topics' must be an array");
    cJSON_ArrayForEach(it, arr)
    {
        struct eg_topic t;
        if (svc->ntopics == EG_MAX_TOPICS)
            return clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: at most %d topics", EG_MAX_TOPICS);
        rc = eg_topic_parse(it, NULL, &t, ei);
        if (rc == CLC_OK && eg_topic_find(svc, t.name) != NULL)
            rc = clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: topic '%s' given twice", t.name);
        if (rc != CLC_OK) {
            OPENSSL_cleanse(&t, sizeof t);
            return clc_err_wrap(ei, CLC_ERR_CONFIG, "eventgrid");
        }
        t.from_config = 1;
        svc->topics[svc->ntopics++] = t;
        OPENSSL_cleanse(&t, sizeof t);
    }
    arr = cJSON_GetObjectItemCaseSensitive(eg, "subscriptions");
    if (arr != NULL && !cJSON_IsArray(arr))
        return clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: 'subscriptions' must be an array");
    cJSON_ArrayForEach(it, arr)
    {
        struct eg_sub *s = NULL;
        if (svc->nsubs == EG_MAX_SUBS)
            return clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: at most %d subscriptions", EG_MAX_SUBS);
        rc = eg_sub_parse(it, NULL, &s, ei);
        if (rc == CLC_OK && eg_sub_find(svc, s->name) != NULL)
            rc = clc_errf(ei, CLC_ERR_CONFIG, "eventgrid: subscription '%s' given twice", s->name);
        if (rc != CLC_OK) {
            eg_sub_free(s);
            return clc_err_wrap(ei, CLC_ERR_CONFIG, "eventgrid");
        }
        s->from_config = 1;
        svc->subs[svc->nsubs++] = s;
    }
    return CLC_OK;
}
