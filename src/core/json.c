/* cJSON helpers: a bounded parser (size, depth, strict grammar edges cJSON
 * lets through) and typed getters whose messages name the field and the type
 * found, so a peer's malformed reply is diagnosable from one log line. */
#include "core/json.h"

#include <errno.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Integers above 2^53 do not survive a trip through a double. */
#define JSON_INT_LIMIT 9007199254740992.0

/* One pass over the text before cJSON sees it: nesting depth (cJSON's own
 * limit is 1000 and recursive), raw control characters (cJSON treats every
 * byte <= 32 as whitespace and takes them inside strings) and embedded NULs
 * (which would end cJSON's view of the text early). */
static enum clc_err prescan(const char *t, size_t len, struct clc_errinfo *ei)
{
    int depth = 0;
    int in_str = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (in_str) {
            if (c == '\\') {
                i++; /* the escaped byte cannot end the string */
                if (i < len && (unsigned char)t[i] < 0x20)
                    return clc_errf(ei, CLC_ERR_PARSE,
                                    "JSON: control character in string at byte %zu", i);
            } else if (c == '"') {
                in_str = 0;
            } else if (c < 0x20) {
                return clc_errf(ei, CLC_ERR_PARSE, "JSON: control character in string at byte %zu",
                                i);
            }
            continue;
        }
        switch (c) {
        case '"':
            in_str = 1;
            break;
        case '[':
        case '{':
            if (++depth > CLC_JSON_MAX_DEPTH)
                return clc_errf(ei, CLC_ERR_LIMIT, "JSON: nesting deeper than %d at byte %zu",
                                CLC_JSON_MAX_DEPTH, i);
            break;
        case ']':
        case '}':
            depth--; /* imbalance is cJSON's to report */
            break;
        case ' ':
        case '\t':
        case '\n':
        case '\r':
            break;
        default:
            if (c < 0x20 || c == 0x7f)
                return clc_errf(ei, CLC_ERR_PARSE, "JSON: invalid character at byte %zu", i);
            break;
        }
    }
    return CLC_OK;
}

enum clc_err clc_json_parse(const char *text, size_t len, size_t max, cJSON **out,
                            struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *copy = NULL;

    *out = NULL;
    if (text == NULL) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "JSON: no input");
        goto out;
    }
    if (len > max || len == SIZE_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "JSON: %zu bytes exceeds the limit of %zu", len, max);
        goto out;
    }
    rc = prescan(text, len, ei);
    if (rc != CLC_OK)
        goto out;
    /* cJSON's "null-terminated" check needs the terminator inside the given
     * length, so the text is copied with one and the NUL is counted. */
    copy = malloc(len + 1);
    if (copy == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    const char *end = NULL;
    cJSON *v = cJSON_ParseWithLengthOpts(copy, len + 1, &end, 1);
    if (v == NULL) {
        size_t off = end != NULL && end >= copy ? (size_t)(end - copy) : 0;
        if (off > len)
            off = len;
        size_t lead = strspn(copy, " \t\r\n");
        /* cJSON sometimes stops one byte past the culprit, hence "near". */
        if (lead == len)
            rc = clc_errf(ei, CLC_ERR_PARSE, "JSON: empty document");
        else
            rc = clc_errf(ei, CLC_ERR_PARSE, "JSON: syntax error near byte %zu", off);
        goto out;
    }
    *out = v;
out:
    free(copy);
    return rc;
}

const char *clc_json_type_name(const cJSON *v)
{
    if (cJSON_IsString(v))
        return "string";
    if (cJSON_IsNumber(v))
        return "number";
    if (cJSON_IsBool(v))
        return "boolean";
    if (cJSON_IsObject(v))
        return "object";
    if (cJSON_IsArray(v))
        return "array";
    if (cJSON_IsNull(v))
        return "null";
    return "invalid";
}

static const cJSON *member(const cJSON *obj, const char *key)
{
    if (!cJSON_IsObject(obj))
        return NULL;
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static enum clc_err missing(const char *key, struct clc_errinfo *ei)
{
    return clc_errf(ei, CLC_ERR_PARSE, "field '%s': missing", key);
}

static enum clc_err wrong_type(const char *key, const char *want, const cJSON *got,
                               struct clc_errinfo *ei)
{
    return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected %s, got %s", key, want,
                    clc_json_type_name(got));
}

/* Integral doubles within ±2^53 only: cJSON keeps numbers as doubles, and
 * anything larger may already have been rounded. */
static enum clc_err number_to_int(const char *key, const cJSON *v, int64_t *out,
                                  struct clc_errinfo *ei)
{
    double d = v->valuedouble;
    if (!isfinite(d) || floor(d) != d)
        return wrong_type(key, "integer", v, ei);
    if (d > JSON_INT_LIMIT || d < -JSON_INT_LIMIT)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': integer out of range", key);
    *out = (int64_t)d;
    return CLC_OK;
}

enum clc_err clc_json_str(const cJSON *obj, const char *key, const char **out,
                          struct clc_errinfo *ei)
{
    *out = NULL;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return wrong_type(key, "string", v, ei);
    *out = v->valuestring;
    return CLC_OK;
}

enum clc_err clc_json_int(const cJSON *obj, const char *key, int64_t *out, struct clc_errinfo *ei)
{
    *out = 0;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (!cJSON_IsNumber(v))
        return wrong_type(key, "integer", v, ei);
    return number_to_int(key, v, out, ei);
}

enum clc_err clc_json_bool(const cJSON *obj, const char *key, int *out, struct clc_errinfo *ei)
{
    *out = 0;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (!cJSON_IsBool(v))
        return wrong_type(key, "boolean", v, ei);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return CLC_OK;
}

enum clc_err clc_json_obj(const cJSON *obj, const char *key, const cJSON **out,
                          struct clc_errinfo *ei)
{
    *out = NULL;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (!cJSON_IsObject(v))
        return wrong_type(key, "object", v, ei);
    *out = v;
    return CLC_OK;
}

enum clc_err clc_json_arr(const cJSON *obj, const char *key, const cJSON **out,
                          struct clc_errinfo *ei)
{
    *out = NULL;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (!cJSON_IsArray(v))
        return wrong_type(key, "array", v, ei);
    *out = v;
    return CLC_OK;
}

/* Optional getters treat JSON null as absent: Azure sends "field": null for
 * unset properties as often as it omits them. */
static int absent(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v);
}

enum clc_err clc_json_str_opt(const cJSON *obj, const char *key, const char *dflt, const char **out,
                              struct clc_errinfo *ei)
{
    *out = dflt;
    if (absent(member(obj, key)))
        return CLC_OK;
    enum clc_err rc = clc_json_str(obj, key, out, ei);
    if (rc != CLC_OK)
        *out = dflt;
    return rc;
}

enum clc_err clc_json_int_opt(const cJSON *obj, const char *key, int64_t dflt, int64_t *out,
                              struct clc_errinfo *ei)
{
    *out = dflt;
    if (absent(member(obj, key)))
        return CLC_OK;
    enum clc_err rc = clc_json_int(obj, key, out, ei);
    if (rc != CLC_OK)
        *out = dflt;
    return rc;
}

enum clc_err clc_json_bool_opt(const cJSON *obj, const char *key, int dflt, int *out,
                               struct clc_errinfo *ei)
{
    *out = dflt;
    if (absent(member(obj, key)))
        return CLC_OK;
    enum clc_err rc = clc_json_bool(obj, key, out, ei);
    if (rc != CLC_OK)
        *out = dflt;
    return rc;
}

/* Decimal only: optional '-', then digits; no sign '+', spaces, hex or
 * exponents, which strtoll alone would partly accept. */
static int parse_decimal(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '\0')
        return -1;
    for (const char *q = p; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    if (end == NULL || *end != '\0')
        return -1;
    *out = (int64_t)v;
    return 0;
}

enum clc_err clc_json_int_lenient(const cJSON *obj, const char *key, int64_t *out,
                                  struct clc_errinfo *ei)
{
    *out = 0;
    const cJSON *v = member(obj, key);
    if (v == NULL)
        return missing(key, ei);
    if (cJSON_IsNumber(v))
        return number_to_int(key, v, out, ei);
    if (!cJSON_IsString(v) || v->valuestring == NULL)
        return wrong_type(key, "integer", v, ei);
    int64_t n = 0;
    int r = parse_decimal(v->valuestring, &n);
    if (r == -2)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': integer out of range", key);
    if (r != 0)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected integer, got string", key);
    *out = n;
    return CLC_OK;
}

char *clc_json_print(const cJSON *v)
{
    if (v == NULL)
        return NULL;
    return cJSON_PrintUnformatted(v);
}

enum clc_err clc_json_add_str(cJSON *obj, const char *key, const char *val)
{
    if (!cJSON_IsObject(obj) || key == NULL || val == NULL)
        return CLC_ERR_INVALID;
    return cJSON_AddStringToObject(obj, key, val) != NULL ? CLC_OK : CLC_ERR_NOMEM;
}

enum clc_err clc_json_add_int(cJSON *obj, const char *key, int64_t val)
{
    if (!cJSON_IsObject(obj) || key == NULL)
        return CLC_ERR_INVALID;
    /* Refused rather than silently rounded by the double cJSON stores. */
    if ((double)val > JSON_INT_LIMIT || (double)val < -JSON_INT_LIMIT)
        return CLC_ERR_LIMIT;
    return cJSON_AddNumberToObject(obj, key, (double)val) != NULL ? CLC_OK : CLC_ERR_NOMEM;
}

enum clc_err clc_json_add_bool(cJSON *obj, const char *key, int val)
{
    if (!cJSON_IsObject(obj) || key == NULL)
        return CLC_ERR_INVALID;
    return cJSON_AddBoolToObject(obj, key, val ? 1 : 0) != NULL ? CLC_OK : CLC_ERR_NOMEM;
}
