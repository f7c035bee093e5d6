/* cJSON helpers: bounded parsing and typed getters whose errors name the
 * field and say what was wrong ("field 'expires_in': expected integer, got
 * string"). Getters return borrowed pointers into the cJSON tree. */
#ifndef CLC_JSON_H
#define CLC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

#define CLC_JSON_MAX_DEPTH 64

/* Parses exactly one JSON value (trailing non-space is an error). text need
 * not be NUL-terminated. Refuses more than max bytes or nesting deeper than
 * CLC_JSON_MAX_DEPTH. The message says where parsing stopped (byte offset). */
enum clc_err clc_json_parse(const char *text, size_t len, size_t max, cJSON **out,
                            struct clc_errinfo *ei);

/* Required getters: CLC_ERR_PARSE if missing or of the wrong type. */
enum clc_err clc_json_str(const cJSON *obj, const char *key, const char **out,
                          struct clc_errinfo *ei);
enum clc_err clc_json_int(const cJSON *obj, const char *key, int64_t *out, struct clc_errinfo *ei);
enum clc_err clc_json_bool(const cJSON *obj, const char *key, int *out, struct clc_errinfo *ei);
enum clc_err clc_json_obj(const cJSON *obj, const char *key, const cJSON **out,
                          struct clc_errinfo *ei);
enum clc_err clc_json_arr(const cJSON *obj, const char *key, const cJSON **out,
                          struct clc_errinfo *ei);

/* Optional getters: absent (or JSON null) gives the default and CLC_OK; a
 * present value of the wrong type is still CLC_ERR_PARSE. */
enum clc_err clc_json_str_opt(const cJSON *obj, const char *key, const char *dflt, const char **out,
                              struct clc_errinfo *ei);
enum clc_err clc_json_int_opt(const cJSON *obj, const char *key, int64_t dflt, int64_t *out,
                              struct clc_errinfo *ei);
enum clc_err clc_json_bool_opt(const cJSON *obj, const char *key, int dflt, int *out,
                               struct clc_errinfo *ei);

/* Integer that may arrive as a JSON number or a decimal string (Azure IMDS
 * sends "3599"); anything else, fractions and overflow included, is an error. */
enum clc_err clc_json_int_lenient(const cJSON *obj, const char *key, int64_t *out,
                                  struct clc_errinfo *ei);

/* "string", "number", "boolean", "object", "array", "null" or "invalid". */
const char *clc_json_type_name(const cJSON *v);

/* Compact serialisation; malloc'd; NULL on allocation failure. */
char *clc_json_print(const cJSON *v);

/* Adders that report allocation failure (cJSON's own return NULL silently). */
enum clc_err clc_json_add_str(cJSON *obj, const char *key, const char *val);
enum clc_err clc_json_add_int(cJSON *obj, const char *key, int64_t val);
enum clc_err clc_json_add_bool(cJSON *obj, const char *key, int val);

#endif
