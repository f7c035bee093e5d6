/* Fault injection rules, checked by the server before a request reaches its
 * handler: the next N requests matching (service, method, path glob) get a
 * given status (with Retry-After and an error code), a delay, or a dropped
 * connection. Managed through the control API. */
#include <fnmatch.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "emulator/emu_internal.h"

#define MAX_RULES 64
#define MAX_COUNT 1000000
#define MAX_LATENCY_MS 60000
#define MAX_RETRY_AFTER_S 86400

struct rule {
    int64_t id;
    char service[64];
    char method[16];
    char path[256];
    int64_t remaining; /* < 0 = every matching request until deleted */
    int64_t hits;
    int status; /* 0 = none */
    int64_t retry_after_s;
    char code[64];
    char message[160];
    int64_t latency_ms;
    int drop;
};

struct emu_faults {
    pthread_mutex_t mu;
    struct rule rules[MAX_RULES];
    size_t n;
    int64_t next_id;
};

enum clc_err emu_faults_new(struct emu_faults **out)
{
    struct emu_faults *f = calloc(1, sizeof *f);

    *out = NULL;
    if (f == NULL)
        return CLC_ERR_NOMEM;
    pthread_mutex_init(&f->mu, NULL);
    f->next_id = 1;
    *out = f;
    return CLC_OK;
}

void emu_faults_free(struct emu_faults *f)
{
    if (f == NULL)
        return;
    pthread_mutex_destroy(&f->mu);
    free(f);
}

void emu_faults_clear(struct emu_faults *f)
{
    pthread_mutex_lock(&f->mu);
    f->n = 0;
    pthread_mutex_unlock(&f->mu);
}

static enum clc_err copy_str(const cJSON *rule, const char *key, const char *dflt, char *dst,
                             size_t size, struct clc_errinfo *ei)
{
    const char *v = NULL;
    enum clc_err rc = clc_json_str_opt(rule, key, dflt, &v, ei);

    if (rc != CLC_OK)
        return rc;
    if (strlen(v) >= size)
        return clc_errf(ei, CLC_ERR_LIMIT, "field '%s': longer than %zu characters", key, size - 1);
    memcpy(dst, v, strlen(v) + 1);
    return CLC_OK;
}

static enum clc_err int_in(const cJSON *rule, const char *key, int64_t dflt, int64_t min,
                           int64_t max, int64_t *out, struct clc_errinfo *ei)
{
    enum clc_err rc = clc_json_int_opt(rule, key, dflt, out, ei);

    if (rc != CLC_OK)
        return rc;
    if (*out < min || *out > max)
        return clc_errf(ei, CLC_ERR_INVALID, "field '%s': %lld is outside %lld..%lld", key,
                        (long long)*out, (long long)min, (long long)max);
    return CLC_OK;
}

static enum clc_err parse_rule(const cJSON *j, struct rule *r, struct clc_errinfo *ei)
{
    static const char *const known[] = {"service",     "method", "path",    "count",      "status",
                                        "retry_after", "code",   "message", "latency_ms", "drop"};
    const cJSON *it;
    int64_t count = 1, status = 0;
    enum clc_err rc;

    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_INVALID, "a fault rule must be a JSON object");
    cJSON_ArrayForEach(it, j)
    {
        size_t i;
        for (i = 0; i < sizeof known / sizeof known[0]; i++)
            if (strcmp(it->string, known[i]) == 0)
                break;
        if (i == sizeof known / sizeof known[0])
            return clc_errf(ei, CLC_ERR_INVALID, "unknown fault rule field '%s'", it->string);
    }
    if (cJSON_GetObjectItemCaseSensitive(j, "service") == NULL)
        return clc_errf(ei, CLC_ERR_INVALID, "field 'service': required");
    if ((rc = copy_str(j, "service", NULL, r->service, sizeof r->service, ei)) != CLC_OK ||
        (rc = copy_str(j, "method", "*", r->method, sizeof r->method, ei)) != CLC_OK ||
        (rc = copy_str(j, "path", "*", r->path, sizeof r->path, ei)) != CLC_OK ||
        (rc = copy_str(j, "code", "", r->code, sizeof r->code, ei)) != CLC_OK ||
        (rc = copy_str(j, "message", "", r->message, sizeof r->message, ei)) != CLC_OK)
        return rc;
    if ((rc = int_in(j, "count", 1, 0, MAX_COUNT, &count, ei)) != CLC_OK ||
        (rc = int_in(j, "status", 0, 0, 599, &status, ei)) != CLC_OK ||
        (rc = int_in(j, "retry_after", -1, -1, MAX_RETRY_AFTER_S, &r->retry_after_s, ei)) !=
            CLC_OK ||
        (rc = int_in(j, "latency_ms", 0, 0, MAX_LATENCY_MS, &r->latency_ms, ei)) != CLC_OK ||
        (rc = clc_json_bool_opt(j, "drop", 0, &r->drop, ei)) != CLC_OK)
        return rc;
    if (status != 0 && status < 100)
        return clc_errf(ei, CLC_ERR_INVALID, "field 'status': %lld is not an HTTP status",
                        (long long)status);
    if (r->service[0] == '\0' || r->path[0] == '\0' || r->method[0] == '\0')
        return clc_errf(ei, CLC_ERR_INVALID,
                        "fields 'service', 'method', 'path' must not be empty");
    if (status != 0 && r->drop)
        return clc_errf(ei, CLC_ERR_INVALID, "a rule either replies ('status') or drops");
    if (status == 0 && !r->drop && r->latency_ms == 0)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "a rule needs 'status', 'drop' or 'latency_ms' to do anything");
    r->status = (int)status;
    r->remaining = count == 0 ? -1 : count;
    return CLC_OK;
}

enum clc_err emu_faults_add(struct emu_faults *f, const cJSON *rule, int64_t *id,
                            struct clc_errinfo *ei)
{
    struct rule r;
    enum clc_err rc;

    *id = 0;
    memset(&r, 0, sizeof r);
    rc = parse_rule(rule, &r, ei);
    if (rc != CLC_OK)
        return rc;
    pthread_mutex_lock(&f->mu);
    if (f->n == MAX_RULES) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "at most %d fault rules", MAX_RULES);
    } else {
        r.id = f->next_id++;
        f->rules[f->n++] = r;
        *id = r.id;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

static void remove_at(struct emu_faults *f, size_t i)
{
    memmove(&f->rules[i], &f->rules[i + 1], (f->n - i - 1) * sizeof f->rules[0]);
    f->n--;
}

int emu_faults_delete(struct emu_faults *f, int64_t id)
{
    int found = 0;

    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n; i++) {
        if (f->rules[i].id == id) {
            remove_at(f, i);
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

static cJSON *rule_json(const struct rule *r)
{
    cJSON *o = cJSON_CreateObject();

    if (o == NULL)
        return NULL;
    if (clc_json_add_int(o, "id", r->id) != CLC_OK ||
        clc_json_add_str(o, "service", r->service) != CLC_OK ||
        clc_json_add_str(o, "method", r->method) != CLC_OK ||
        clc_json_add_str(o, "path", r->path) != CLC_OK ||
        clc_json_add_int(o, "remaining", r->remaining) != CLC_OK ||
        clc_json_add_int(o, "hits", r->hits) != CLC_OK ||
        (r->status && clc_json_add_int(o, "status", r->status) != CLC_OK) ||
        (r->retry_after_s >= 0 && clc_json_add_int(o, "retry_after", r->retry_after_s) != CLC_OK) ||
        (r->code[0] && clc_json_add_str(o, "code", r->code) != CLC_OK) ||
        (r->message[0] && clc_json_add_str(o, "message", r->message) != CLC_OK) ||
        (r->latency_ms && clc_json_add_int(o, "latency_ms", r->latency_ms) != CLC_OK) ||
        clc_json_add_bool(o, "drop", r->drop) != CLC_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *emu_faults_dump(struct emu_faults *f)
{
    cJSON *arr = cJSON_CreateArray();

    if (arr == NULL)
        return NULL;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n; i++) {
        cJSON *o = rule_json(&f->rules[i]);
        if (o == NULL || !cJSON_AddItemToArray(arr, o)) {
            cJSON_Delete(o);
            cJSON_Delete(arr);
            arr = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return arr;
}

static int rule_matches(const struct rule *r, const char *service, const char *method,
                        const char *path)
{
    /* "*" never reaches the control API: a rule there could lock the
     * operator out of the very API that removes it. */
    if (strcmp(r->service, "*") == 0 ? strcmp(service, "control") == 0
                                     : strcmp(r->service, service) != 0)
        return 0;
    if (strcmp(r->method, "*") != 0 && strcmp(r->method, method) != 0)
        return 0;
    /* No FNM_PATHNAME: a star spans segments, so "/keys/x" style globs
     * reach nested paths too. */
    return fnmatch(r->path, path, 0) == 0;
}

void emu_faults_match(struct emu_faults *f, const char *service, const char *method,
                      const char *path, struct emu_fault_hit *hit)
{
    memset(hit, 0, sizeof *hit);
    hit->retry_after_s = -1;
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < f->n; i++) {
        struct rule *r = &f->rules[i];
        if (!rule_matches(r, service, method, path))
            continue;
        hit->action = r->drop ? EMU_FAULT_DROP : r->status ? EMU_FAULT_STATUS : EMU_FAULT_DELAY;
        hit->status = r->status;
        hit->retry_after_s = r->retry_after_s;
        hit->latency_ms = r->latency_ms;
        snprintf(hit->code, sizeof hit->code, "%s", r->code);
        snprintf(hit->message, sizeof hit->message, "%s", r->message);
        r->hits++;
        if (r->remaining > 0 && --r->remaining == 0)
            remove_at(f, i);
        break;
    }
    pthread_mutex_unlock(&f->mu);
}
