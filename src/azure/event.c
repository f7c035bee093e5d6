/* Key Vault event parser (see event.h): unwraps a queue message, tells the
 * Event Grid schema from CloudEvents, checks the envelope, then the data
 * fields (case-insensitive names, numbers or numeric strings for NBF/EXP),
 * and finally the caller's filter. Each rejection names its reason. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "azure/event.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"

static const char *const reason_names[CLC_EVENT__COUNT] = {
    "ok",           "too_large",     "bad_base64",   "not_json",  "bad_envelope",      "wrong_type",
    "wrong_object", "missing_vault", "missing_name", "bad_field", "vault_not_allowed",
};

static const char *const default_types[] = {
    "Microsoft.KeyVault.CertificateNearExpiry",
    "Microsoft.KeyVault.CertificateExpired",
    "Microsoft.KeyVault.CertificateNewVersionCreated",
};

const char *clc_event_reason_name(enum clc_event_reason r)
{
    return (unsigned)r < CLC_EVENT__COUNT ? reason_names[r] : "unknown";
}

struct ctx {
    enum clc_event_reason *reason;
    struct clc_errinfo *ei;
};

/* Records the reason and the message; returns the error class of reason. */
__attribute__((format(printf, 3, 4))) static enum clc_err
reject(struct ctx *c, enum clc_event_reason r, const char *fmt, ...)
{
    char msg[CLC_ERRINFO_MSG_MAX];
    va_list ap;
    enum clc_err e = CLC_ERR_PARSE;

    if (r == CLC_EVENT_TOO_LARGE)
        e = CLC_ERR_LIMIT;
    else if (r == CLC_EVENT_WRONG_TYPE || r == CLC_EVENT_WRONG_OBJECT ||
             r == CLC_EVENT_VAULT_NOT_ALLOWED)
        e = CLC_ERR_INVALID;
    if (c->reason)
        *c->reason = r;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return clc_errf(c->ei, e, "event rejected (%s): %s", reason_names[r], msg);
}

static size_t limit_of(const struct clc_event_filter *f)
{
    return f && f->max_bytes ? f->max_bytes : CLC_EVENT_DEFAULT_MAX;
}

/* Copies a string into a fixed field; 0 when it does not fit. */
static int put(char *dst, size_t dstlen, const char *s)
{
    size_t n = strlen(s);
    if (n >= dstlen)
        return 0;
    memcpy(dst, s, n + 1);
    return 1;
}

/* Envelope string field: required (or optional), string, fits. */
static enum clc_err env_str(struct ctx *c, const cJSON *o, const char *key, int required, char *dst,
                            size_t dstlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        if (required)
            return reject(c, CLC_EVENT_BAD_ENVELOPE, "field '%s' is missing", key);
        dst[0] = '\0';
        return CLC_OK;
    }
    if (!cJSON_IsString(v))
        return reject(c, CLC_EVENT_BAD_ENVELOPE, "field '%s' is a %s, expected a string", key,
                      clc_json_type_name(v));
    if (!put(dst, dstlen, v->valuestring))
        return reject(c, CLC_EVENT_BAD_ENVELOPE, "field '%s' is longer than %zu bytes", key,
                      dstlen - 1);
    return CLC_OK;
}

/* A data member by name, ignoring case and surrounding blanks (the docs'
 * own sample has "ObjectName "). */
static const cJSON *data_item(const cJSON *data, const char *name)
{
    const cJSON *it = NULL;
    size_t n = strlen(name);
    cJSON_ArrayForEach(it, data)
    {
        const char *k = it->string;
        size_t kl = 0;
        if (!k)
            continue;
        while (*k == ' ' || *k == '\t')
            k++;
        kl = strlen(k);
        while (kl > 0 && (k[kl - 1] == ' ' || k[kl - 1] == '\t'))
            kl--;
        if (kl == n && strncasecmp(k, name, n) == 0)
            return it;
    }
    return NULL;
}

/* Data string field; *present = 0 when absent or null. */
static enum clc_err data_str(struct ctx *c, const cJSON *data, const char *key, char *dst,
                             size_t dstlen, int *present)
{
    const cJSON *v = data_item(data, key);
    *present = 0;
    dst[0] = '\0';
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (!cJSON_IsString(v))
        return reject(c, CLC_EVENT_BAD_FIELD, "data.%s is a %s, expected a string", key,
                      clc_json_type_name(v));
    if (!put(dst, dstlen, v->valuestring))
        return reject(c, CLC_EVENT_BAD_FIELD, "data.%s is longer than %zu bytes", key, dstlen - 1);
    *present = dst[0] != '\0';
    return CLC_OK;
}

/* NBF/EXP: integer number, decimal string, or null/absent. */
static enum clc_err data_time(struct ctx *c, const cJSON *data, const char *key, int64_t *out,
                              int *has)
{
    const cJSON *v = data_item(data, key);
    *has = 0;
    *out = 0;
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d != (double)(int64_t)d || d < 0 || d > 253402300799.0)
            return reject(c, CLC_EVENT_BAD_FIELD, "data.%s is not a Unix time", key);
        *out = (int64_t)d;
    } else if (cJSON_IsString(v)) {
        char *end = NULL;
        const char *s = v->valuestring;
        errno = 0;
        long long n = strtoll(s, &end, 10);
        if (!isdigit((unsigned char)s[0]) || errno || *end || n > 253402300799LL)
            return reject(c, CLC_EVENT_BAD_FIELD, "data.%s is not a Unix time", key);
        *out = n;
    } else {
        return reject(c, CLC_EVENT_BAD_FIELD, "data.%s is a %s, expected a number", key,
                      clc_json_type_name(v));
    }
    *has = 1;
    return CLC_OK;
}

static int chars_ok(const char *s, size_t min, size_t max, int allow_underscore)
{
    size_t n = strlen(s);
    if (n < min || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && !(allow_underscore && s[i] == '_'))
            return 0;
    return 1;
}

static enum clc_err check_type(struct ctx *c, const struct clc_event_filter *f, const char *type)
{
    const char *const *types = f && f->types ? f->types : default_types;
    size_t n = f && f->types ? f->ntypes : sizeof default_types / sizeof default_types[0];
    for (size_t i = 0; i < n; i++)
        if (types[i] && strcasecmp(types[i], type) == 0)
            return CLC_OK;
    return reject(c, CLC_EVENT_WRONG_TYPE, "event type '%.128s' is not one certlc acts on", type);
}

static enum clc_err parse_data(struct ctx *c, const cJSON *data, const struct clc_event_filter *f,
                               struct clc_event *ev)
{
    int present = 0;
    enum clc_err rc = CLC_OK;

    if (!cJSON_IsObject(data))
        return reject(c, CLC_EVENT_BAD_ENVELOPE, "'data' is a %s, expected an object",
                      clc_json_type_name(data));
    rc = data_str(c, data, "ObjectType", ev->object_type, sizeof ev->object_type, &present);
    if (rc != CLC_OK)
        return rc;
    if (present && strcasecmp(ev->object_type, "Certificate") != 0)
        return reject(c, CLC_EVENT_WRONG_OBJECT, "data.ObjectType is '%s', not 'Certificate'",
                      ev->object_type);
    rc = data_str(c, data, "VaultName", ev->vault, sizeof ev->vault, &present);
    if (rc != CLC_OK)
        return rc;
    if (!present)
        return reject(c, CLC_EVENT_MISSING_VAULT, "data.VaultName is missing or empty");
    if (!chars_ok(ev->vault, 3, 24, 0))
        return reject(c, CLC_EVENT_BAD_FIELD, "data.VaultName '%s' is not a vault name", ev->vault);
    rc = data_str(c, data, "ObjectName", ev->name, sizeof ev->name, &present);
    if (rc != CLC_OK)
        return rc;
    if (!present)
        return reject(c, CLC_EVENT_MISSING_NAME, "data.ObjectName is missing or empty");
    if (!chars_ok(ev->name, 1, 127, 0))
        return reject(c, CLC_EVENT_BAD_FIELD, "data.ObjectName '%s' is not a certificate name",
                      ev->name);
    rc = data_str(c, data, "Version", ev->version, sizeof ev->version, &present);
    if (rc == CLC_OK && present && !chars_ok(ev->version, 1, 63, 0))
        return reject(c, CLC_EVENT_BAD_FIELD, "data.Version is not a version id");
    if (rc == CLC_OK)
        rc = data_str(c, data, "Id", ev->object_id, sizeof ev->object_id, &present);
    if (rc == CLC_OK)
        rc = data_time(c, data, "NBF", &ev->nbf, &ev->has_nbf);
    if (rc == CLC_OK)
        rc = data_time(c, data, "EXP", &ev->exp, &ev->has_exp);
    if (rc != CLC_OK)
        return rc;
    if (f && f->vaults && f->nvaults > 0) {
        for (size_t i = 0; i < f->nvaults; i++)
            if (f->vaults[i] && strcasecmp(f->vaults[i], ev->vault) == 0)
                return CLC_OK;
        return reject(c, CLC_EVENT_VAULT_NOT_ALLOWED, "vault '%s' is not in the configured list",
                      ev->vault);
    }
    return CLC_OK;
}

static enum clc_err event_time(struct ctx *c, const cJSON *o, const char *key, int64_t *out)
{
    char t[64];
    enum clc_err rc = env_str(c, o, key, 0, t, sizeof t);
    *out = 0;
    if (rc == CLC_OK && t[0] && clc_time_parse_iso8601(t, out) != CLC_OK)
        rc = reject(c, CLC_EVENT_BAD_ENVELOPE, "field '%s' is not an ISO 8601 time", key);
    return rc;
}

/* CloudEvents may carry the data as data_base64 (binary mode). */
static enum clc_err cloudevent_data(struct ctx *c, const cJSON *o, size_t max, cJSON **owned,
                                    const cJSON **data)
{
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "data_base64");
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    enum clc_err rc = CLC_OK;

    *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (*data || !b)
        return *data ? CLC_OK : reject(c, CLC_EVENT_BAD_ENVELOPE, "field 'data' is missing");
    if (!cJSON_IsString(b) ||
        clc_b64_decode(b->valuestring, strlen(b->valuestring), &raw, &rawlen) != CLC_OK)
        return reject(c, CLC_EVENT_BAD_ENVELOPE, "field 'data_base64' is not base64");
    if (clc_json_parse((const char *)raw, rawlen, max, owned, NULL) != CLC_OK)
        rc = reject(c, CLC_EVENT_BAD_ENVELOPE, "field 'data_base64' does not hold JSON");
    else
        *data = *owned;
    free(raw);
    return rc;
}

static enum clc_err parse_envelope(struct ctx *c, const cJSON *o, const struct clc_event_filter *f,
                                   struct clc_event *ev)
{
    const cJSON *data = NULL;
    cJSON *owned = NULL;
    enum clc_err rc = CLC_OK;

    if (!cJSON_IsObject(o))
        return reject(c, CLC_EVENT_BAD_ENVELOPE, "the event is a %s, expected an object",
                      clc_json_type_name(o));
    if (cJSON_GetObjectItemCaseSensitive(o, "specversion")) {
        const cJSON *sv = cJSON_GetObjectItemCaseSensitive(o, "specversion");
        ev->schema = CLC_EVENT_SCHEMA_CLOUDEVENTS;
        if (!cJSON_IsString(sv) || strcmp(sv->valuestring, "1.0") != 0)
            return reject(c, CLC_EVENT_BAD_ENVELOPE, "CloudEvents specversion is not \"1.0\"");
        rc = env_str(c, o, "id", 1, ev->id, sizeof ev->id);
        if (rc == CLC_OK)
            rc = env_str(c, o, "type", 1, ev->type, sizeof ev->type);
        if (rc == CLC_OK)
            rc = env_str(c, o, "source", 1, ev->source, sizeof ev->source);
        if (rc == CLC_OK)
            rc = env_str(c, o, "subject", 0, ev->subject, sizeof ev->subject);
        if (rc == CLC_OK)
            rc = event_time(c, o, "time", &ev->time);
        if (rc == CLC_OK)
            rc = check_type(c, f, ev->type);
        if (rc == CLC_OK)
            rc = cloudevent_data(c, o, limit_of(f), &owned, &data);
    } else if (cJSON_GetObjectItemCaseSensitive(o, "eventType")) {
        ev->schema = CLC_EVENT_SCHEMA_EVENTGRID;
        rc = env_str(c, o, "id", 1, ev->id, sizeof ev->id);
        if (rc == CLC_OK)
            rc = env_str(c, o, "eventType", 1, ev->type, sizeof ev->type);
        if (rc == CLC_OK)
            rc = env_str(c, o, "subject", 1, ev->subject, sizeof ev->subject);
        if (rc == CLC_OK)
            rc = env_str(c, o, "topic", 0, ev->source, sizeof ev->source);
        if (rc == CLC_OK && !cJSON_GetObjectItemCaseSensitive(o, "eventTime"))
            rc = reject(c, CLC_EVENT_BAD_ENVELOPE, "field 'eventTime' is missing");
        if (rc == CLC_OK)
            rc = event_time(c, o, "eventTime", &ev->time);
        if (rc == CLC_OK)
            rc = check_type(c, f, ev->type);
        if (rc == CLC_OK) {
            data = cJSON_GetObjectItemCaseSensitive(o, "data");
            if (!data)
                rc = reject(c, CLC_EVENT_BAD_ENVELOPE, "field 'data' is missing");
        }
    } else {
        return reject(c, CLC_EVENT_BAD_ENVELOPE,
                      "neither an Event Grid event ('eventType') nor "
                      "a CloudEvent ('specversion')");
    }
    if (rc == CLC_OK)
        rc = parse_data(c, data, f, ev);
    cJSON_Delete(owned);
    return rc;
}

enum clc_err clc_event_parse(const char *text, size_t len, const struct clc_event_filter *f,
                             struct clc_event *out, enum clc_event_reason *reason,
                             struct clc_errinfo *ei)
{
    struct ctx c = {.reason = reason, .ei = ei};
    struct clc_errinfo jei;
    cJSON *root = NULL;
    const cJSON *ev = NULL;
    size_t max = limit_of(f);
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    if (reason)
        *reason = CLC_EVENT_OK;
    if (!text)
        return reject(&c, CLC_EVENT_NOT_JSON, "no input");
    if (len > max)
        return reject(&c, CLC_EVENT_TOO_LARGE, "%zu bytes, over the %zu byte limit", len, max);
    clc_errinfo_clear(&jei);
    if (clc_json_parse(text, len, max, &root, &jei) != CLC_OK)
        return reject(&c, CLC_EVENT_NOT_JSON, "%s", jei.msg);
    ev = root;
    if (cJSON_IsArray(root)) {
        int n = cJSON_GetArraySize(root);
        if (n != 1) {
            rc = reject(&c, CLC_EVENT_BAD_ENVELOPE, "an array of %d events; expected exactly one",
                        n);
            goto out;
        }
        ev = cJSON_GetArrayItem(root, 0);
    }
    rc = parse_envelope(&c, ev, f, out);
out:
    if (rc != CLC_OK)
        memset(out, 0, sizeof *out);
    cJSON_Delete(root);
    return rc;
}

enum clc_err clc_event_parse_queue_message(const char *text, size_t len,
                                           const struct clc_event_filter *f, struct clc_event *out,
                                           enum clc_event_reason *reason, struct clc_errinfo *ei)
{
    struct ctx c = {.reason = reason, .ei = ei};
    size_t max = limit_of(f), i = 0;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    enum clc_err rc = CLC_OK;

    memset(out, 0, sizeof *out);
    if (reason)
        *reason = CLC_EVENT_OK;
    if (!text)
        return reject(&c, CLC_EVENT_NOT_JSON, "no input");
    /* base64 is 4/3 of the JSON: bound it before decoding anything. */
    if (len > max / 3 * 4 + 8)
        return reject(&c, CLC_EVENT_TOO_LARGE,
                      "message of %zu bytes, over the limit for a "
                      "%zu byte event",
                      len, max);
    while (i < len && isspace((unsigned char)text[i]))
        i++;
    if (i < len && (text[i] == '{' || text[i] == '['))
        return clc_event_parse(text, len, f, out, reason, ei);
    if (i == len)
        return reject(&c, CLC_EVENT_NOT_JSON, "empty message");
    if (clc_b64_decode(text, len, &raw, &rawlen) != CLC_OK)
        return reject(&c, CLC_EVENT_BAD_BASE64, "the message is neither JSON nor valid base64");
    rc = clc_event_parse((const char *)raw, rawlen, f, out, reason, ei);
    free(raw);
    return rc;
}
