/* Configuration: one JSON file plus environment overrides. Keys are dotted
 * paths ("auth.method"); the override for a key is CERTLC_ + the path upper-
 * cased with "." as "__" (CERTLC_AUTH__METHOD). Every error names the key,
 * where its value came from (file or variable) and why it was refused. */
#ifndef CLC_CONFIG_H
#define CLC_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"
#include "core/secret.h"

#define CLC_CONFIG_MAX_BYTES (1024 * 1024)

struct clc_config;

/* The key schema: getters only accept declared keys, and the loader refuses
 * undeclared keys in the file (a typo is an error, not a silent default).
 * A key ending in ".*" declares a map whose members are free-form. */
enum clc_config_type { CLC_CFG_STR, CLC_CFG_INT, CLC_CFG_BOOL, CLC_CFG_OBJ, CLC_CFG_ARR };
struct clc_config_key {
    const char *path;
    enum clc_config_type type;
    const char *help; /* one line, for docs and --help */
};

/* path may be NULL (environment only). env_prefix is normally "CERTLC_";
 * NULL disables overrides. The schema array is borrowed for the config's life. */
enum clc_err clc_config_load(const char *path, const char *env_prefix,
                             const struct clc_config_key *schema, size_t nschema,
                             struct clc_config **out, struct clc_errinfo *ei);
/* Same, from text already in memory (tests, embedded defaults). */
enum clc_err clc_config_load_text(const char *text, size_t len, const char *origin,
                                  const char *env_prefix, const struct clc_config_key *schema,
                                  size_t nschema, struct clc_config **out, struct clc_errinfo *ei);
void clc_config_free(struct clc_config *c);

/* Getters: absent gives dflt and CLC_OK; wrong type or out of range is
 * CLC_ERR_CONFIG with the key named. Borrowed strings live as long as c. */
enum clc_err clc_config_str(const struct clc_config *c, const char *path, const char *dflt,
                            const char **out, struct clc_errinfo *ei);
enum clc_err clc_config_int(const struct clc_config *c, const char *path, int64_t dflt, int64_t min,
                            int64_t max, int64_t *out, struct clc_errinfo *ei);
enum clc_err clc_config_bool(const struct clc_config *c, const char *path, int dflt, int *out,
                             struct clc_errinfo *ei);
/* Required string: CLC_ERR_CONFIG "config key 'x' is required" when absent. */
enum clc_err clc_config_str_req(const struct clc_config *c, const char *path, const char **out,
                                struct clc_errinfo *ei);
/* One of a fixed set of words; returns its index. */
enum clc_err clc_config_enum(const struct clc_config *c, const char *path, const char *dflt,
                             const char *const *choices, size_t nchoices, int *out,
                             struct clc_errinfo *ei);
/* Subtree (objects/arrays) as cJSON, borrowed; NULL when absent. */
const cJSON *clc_config_node(const struct clc_config *c, const char *path);

/* A secret named by key K is read from the file at K + "_file" or, failing
 * that, from the environment variable named by K + "_env". Secrets are never
 * accepted inline in the file or from argv. CLC_ERR_NOT_FOUND if neither key
 * is set. */
enum clc_err clc_config_secret(const struct clc_config *c, const char *path,
                               struct clc_secret **out, struct clc_errinfo *ei);

/* Where a key's value came from, for messages: "file /etc/certlc.json",
 * "environment CERTLC_AUTH__METHOD" or "default". */
const char *clc_config_origin(const struct clc_config *c, const char *path);

#endif
