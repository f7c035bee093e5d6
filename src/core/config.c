/* Configuration: a JSON file validated against a key schema, then overridden
 * from CERTLC_* environment variables parsed by each key's declared type.
 * Every refusal names the key, where the value came from and what was wrong. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/file.h"
#include "core/json.h"

/* Dotted paths and variable names are short; longer is a schema bug. */
#define CFG_PATH_MAX 256
/* cJSON keeps numbers as doubles: integers beyond 2^53 may already be off. */
#define CFG_INT_LIMIT 9007199254740992.0

struct env_origin {
    char *path;
    char *desc; /* "environment CERTLC_AUTH__METHOD" */
};

struct clc_config {
    cJSON *root;
    const struct clc_config_key *schema;
    size_t nschema;
    char *origin; /* where the file part came from: "file /etc/certlc.json" */
    struct env_origin *envs;
    size_t nenvs;
};

static const char *type_word(enum clc_config_type t)
{
    switch (t) {
    case CLC_CFG_STR:
        return "string";
    case CLC_CFG_INT:
        return "integer";
    case CLC_CFG_BOOL:
        return "boolean";
    case CLC_CFG_OBJ:
        return "object";
    case CLC_CFG_ARR:
        return "array";
    }
    return "value";
}

static int json_is_int(const cJSON *v)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    return d == d && d >= -CFG_INT_LIMIT && d <= CFG_INT_LIMIT && (double)(int64_t)d == d;
}

static int type_matches(enum clc_config_type t, const cJSON *v)
{
    switch (t) {
    case CLC_CFG_STR:
        return cJSON_IsString(v) && v->valuestring != NULL;
    case CLC_CFG_INT:
        return json_is_int(v);
    case CLC_CFG_BOOL:
        return cJSON_IsBool(v);
    case CLC_CFG_OBJ:
        return cJSON_IsObject(v);
    case CLC_CFG_ARR:
        return cJSON_IsArray(v);
    }
    return 0;
}

/* How the schema sees a dotted path. */
enum key_kind { KEY_UNKNOWN, KEY_LEAF, KEY_MAP_MEMBER, KEY_INTERMEDIATE };

static int is_map_entry(const char *p)
{
    size_t n = strlen(p);
    return n >= 2 && strcmp(p + n - 2, ".*") == 0;
}

static enum key_kind classify(const struct clc_config_key *schema, size_t nschema, const char *path,
                              enum clc_config_type *type)
{
    size_t plen = strlen(path);
    for (size_t i = 0; i < nschema; i++) {
        if (strcmp(schema[i].path, path) == 0) {
            *type = schema[i].type;
            return KEY_LEAF;
        }
    }
    for (size_t i = 0; i < nschema; i++) {
        const char *k = schema[i].path;
        if (!is_map_entry(k))
            continue;
        /* "m.*" covers "m.x" and anything below it. */
        size_t base = strlen(k) - 1; /* keeps the dot: "m." */
        if (plen > base && strncmp(path, k, base) == 0) {
            *type = schema[i].type;
            return KEY_MAP_MEMBER;
        }
    }
    for (size_t i = 0; i < nschema; i++) {
        const char *k = schema[i].path;
        if (strncmp(k, path, plen) == 0 && k[plen] == '.')
            return KEY_INTERMEDIATE;
    }
    return KEY_UNKNOWN;
}

static int join_path(char *dst, const char *prefix, const char *name)
{
    int n = prefix[0] != '\0' ? snprintf(dst, CFG_PATH_MAX, "%s.%s", prefix, name)
                              : snprintf(dst, CFG_PATH_MAX, "%s", name);
    return n > 0 && n < CFG_PATH_MAX;
}

/* If an unknown key K is the inline form of a declared secret (K_file and
 * K_env exist), say how secrets are given instead of "not a known key". */
static int is_inline_secret(const struct clc_config_key *schema, size_t nschema, const char *path)
{
    char k[CFG_PATH_MAX];
    enum clc_config_type t;
    if (snprintf(k, sizeof k, "%s_file", path) >= (int)sizeof k)
        return 0;
    return classify(schema, nschema, k, &t) == KEY_LEAF;
}

static enum clc_err type_error(const char *path, enum clc_config_type want, const cJSON *v,
                               const char *origin, struct clc_errinfo *ei)
{
    /* A fraction (or an integer past 2^53) reads "expected integer, got
     * number", as in the JSON getters. */
    return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': expected %s, got %s (%s)", path,
                    type_word(want), clc_json_type_name(v), origin);
}

/* Walks the file's tree following the schema: every member must be a declared
 * key of the declared type, a member of a declared map, or an object leading
 * to declared keys. Free-form subtrees (OBJ/ARR leaves, map members) are not
 * entered. */
static enum clc_err validate(const struct clc_config *c, const cJSON *obj, const char *prefix,
                             int in_map, struct clc_errinfo *ei)
{
    for (const cJSON *m = obj->child; m != NULL; m = m->next) {
        char path[CFG_PATH_MAX];
        const char *name = m->string != NULL ? m->string : "";
        if (!join_path(path, prefix, name))
            return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s.%.40s...': path too long (%s)",
                            prefix, name, c->origin);
        /* Duplicates would make the value depend on which one a getter meets
         * first. Outside maps the members are known names, so this loop stops
         * within the schema's size; map members are left unchecked. */
        if (!in_map) {
            for (const cJSON *e = obj->child; e != m; e = e->next) {
                if (e->string != NULL && strcmp(e->string, name) == 0)
                    return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s' appears twice (%s)", path,
                                    c->origin);
            }
        }
        enum clc_config_type t = CLC_CFG_STR;
        switch (classify(c->schema, c->nschema, path, &t)) {
        case KEY_LEAF:
        case KEY_MAP_MEMBER:
            if (!type_matches(t, m))
                return type_error(path, t, m, c->origin, ei);
            break;
        case KEY_INTERMEDIATE: {
            if (!cJSON_IsObject(m))
                return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': expected object, got %s (%s)",
                                path, clc_json_type_name(m), c->origin);
            /* An intermediate that is itself a map ("m" for "m.*"). */
            char star[CFG_PATH_MAX];
            enum clc_config_type st;
            int map = snprintf(star, sizeof star, "%s.*", path) < (int)sizeof star &&
                      classify(c->schema, c->nschema, star, &st) == KEY_LEAF;
            enum clc_err rc = validate(c, m, path, map, ei);
            if (rc != CLC_OK)
                return rc;
            break;
        }
        case KEY_UNKNOWN:
            if (is_inline_secret(c->schema, c->nschema, path))
                return clc_errf(ei, CLC_ERR_CONFIG,
                                "config key '%s': secrets are not accepted inline; set '%s_file' "
                                "or '%s_env' (%s)",
                                path, path, path, c->origin);
            return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s' is not a known key (%s)", path,
                            c->origin);
        }
    }
    return CLC_OK;
}

/* CERTLC_ + path upper-cased, "." as "__". */
static int env_name(const char *prefix, const char *path, char *out, size_t size)
{
    size_t n = 0;
    for (const char *p = prefix; *p != '\0'; p++) {
        if (n + 1 >= size)
            return 0;
        out[n++] = *p;
    }
    for (const char *p = path; *p != '\0'; p++) {
        if (*p == '.') {
            if (n + 2 >= size)
                return 0;
            out[n++] = '_';
            out[n++] = '_';
        } else {
            if (n + 1 >= size)
                return 0;
            out[n++] = (char)toupper((unsigned char)*p);
        }
    }
    out[n] = '\0';
    return 1;
}

/* Strict decimal: optional '-', digits, nothing else; within ±2^53 because
 * the value is stored in the cJSON tree as a double. */
static int parse_env_int(const char *s, int64_t *out)
{
    const char *p = s[0] == '-' ? s + 1 : s;
    if (*p == '\0')
        return 0;
    for (const char *q = p; *q != '\0'; q++)
        if (*q < '0' || *q > '9')
            return 0;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno == ERANGE || v > 9007199254740992LL || v < -9007199254740992LL)
        return 0;
    *out = v;
    return 1;
}

static int parse_env_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 1;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

/* Puts v at the dotted path, creating the objects on the way and replacing
 * what was there. Takes ownership of v in every case. */
static enum clc_err tree_set(cJSON *root, const char *path, cJSON *v)
{
    enum clc_err rc = CLC_OK;
    char buf[CFG_PATH_MAX];
    cJSON *node = root;
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) {
        rc = CLC_ERR_INTERNAL;
        goto out;
    }
    char *seg = buf;
    for (char *dot = strchr(seg, '.'); dot != NULL; dot = strchr(seg, '.')) {
        *dot = '\0';
        cJSON *next = cJSON_GetObjectItemCaseSensitive(node, seg);
        if (next == NULL) {
            next = cJSON_CreateObject();
            if (next == NULL || !cJSON_AddItemToObject(node, seg, next)) {
                cJSON_Delete(next);
                rc = CLC_ERR_NOMEM;
                goto out;
            }
        } else if (!cJSON_IsObject(next)) {
            rc = CLC_ERR_CONFIG;
            goto out;
        }
        node = next;
        seg = dot + 1;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(node, seg);
    if (!cJSON_AddItemToObject(node, seg, v)) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    v = NULL;
out:
    cJSON_Delete(v);
    return rc;
}

static enum clc_err add_env_origin(struct clc_config *c, const char *path, const char *var)
{
    struct env_origin *n = realloc(c->envs, (c->nenvs + 1) * sizeof *n);
    if (n == NULL)
        return CLC_ERR_NOMEM;
    c->envs = n;
    size_t dlen = strlen("environment ") + strlen(var) + 1;
    char *p = strdup(path);
    char *d = malloc(dlen);
    if (p == NULL || d == NULL) {
        free(p);
        free(d);
        return CLC_ERR_NOMEM;
    }
    snprintf(d, dlen, "environment %s", var);
    c->envs[c->nenvs].path = p;
    c->envs[c->nenvs].desc = d;
    c->nenvs++;
    return CLC_OK;
}

/* One override. Values are never echoed in messages: a variable meant for
 * one key may hold something sensitive. */
static enum clc_err apply_env(struct clc_config *c, const struct clc_config_key *k, const char *var,
                              const char *val, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    cJSON *v = NULL;

    switch (k->type) {
    case CLC_CFG_STR:
        v = cJSON_CreateString(val);
        break;
    case CLC_CFG_INT: {
        int64_t n = 0;
        if (!parse_env_int(val, &n)) {
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "config key '%s': expected integer (decimal, within +-2^53) "
                          "(environment %s)",
                          k->path, var);
            goto out;
        }
        v = cJSON_CreateNumber((double)n);
        break;
    }
    case CLC_CFG_BOOL: {
        int b = 0;
        if (!parse_env_bool(val, &b)) {
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "config key '%s': expected boolean (true/false/1/0/yes/no) "
                          "(environment %s)",
                          k->path, var);
            goto out;
        }
        v = cJSON_CreateBool(b);
        break;
    }
    case CLC_CFG_OBJ:
    case CLC_CFG_ARR: {
        struct clc_errinfo jei;
        clc_errinfo_clear(&jei);
        rc = clc_json_parse(val, strlen(val), CLC_CONFIG_MAX_BYTES, &v, &jei);
        if (rc == CLC_ERR_NOMEM)
            goto out;
        if (rc != CLC_OK) {
            rc = clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': %s (environment %s)", k->path,
                          jei.msg, var);
            goto out;
        }
        if (!type_matches(k->type, v)) {
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "config key '%s': expected %s, got %s (environment %s)", k->path,
                          type_word(k->type), clc_json_type_name(v), var);
            goto out;
        }
        break;
    }
    }
    if (v == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    rc = tree_set(c->root, k->path, v);
    v = NULL;
    if (rc == CLC_ERR_CONFIG) {
        rc = clc_errf(ei, rc, "config key '%s': a parent of it is not an object (environment %s)",
                      k->path, var);
        goto out;
    }
    if (rc != CLC_OK)
        goto out;
    rc = add_env_origin(c, k->path, var);
out:
    cJSON_Delete(v);
    return rc;
}

/* Map entries ("m.*") have no fixed variable name and are not overridden;
 * the whole map can still come from the file. */
static enum clc_err apply_env_all(struct clc_config *c, const char *env_prefix,
                                  struct clc_errinfo *ei)
{
    for (size_t i = 0; i < c->nschema; i++) {
        const struct clc_config_key *k = &c->schema[i];
        if (is_map_entry(k->path))
            continue;
        char var[CFG_PATH_MAX];
        if (!env_name(env_prefix, k->path, var, sizeof var))
            return clc_errf(ei, CLC_ERR_INTERNAL, "config key '%s': name too long", k->path);
        const char *val = getenv(var);
        /* Empty counts as unset, as `VAR=` in a unit file or compose file is
         * the usual way of leaving a setting alone. */
        if (val == NULL || val[0] == '\0')
            continue;
        enum clc_err rc = apply_env(c, k, var, val, ei);
        if (rc != CLC_OK)
            return rc;
    }
    return CLC_OK;
}

enum clc_err clc_config_load_text(const char *text, size_t len, const char *origin,
                                  const char *env_prefix, const struct clc_config_key *schema,
                                  size_t nschema, struct clc_config **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_config *c = NULL;

    *out = NULL;
    c = calloc(1, sizeof *c);
    if (c == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    c->schema = schema;
    c->nschema = nschema;
    c->origin = strdup(origin != NULL ? origin : "configuration text");
    if (c->origin == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < nschema; i++) {
        if (schema[i].path == NULL || strlen(schema[i].path) >= CFG_PATH_MAX) {
            rc = clc_errf(ei, CLC_ERR_INTERNAL, "config schema entry %zu is invalid", i);
            goto out;
        }
    }
    if (text != NULL) {
        rc = clc_json_parse(text, len, CLC_CONFIG_MAX_BYTES, &c->root, ei);
        if (rc == CLC_ERR_NOMEM)
            goto out;
        if (rc != CLC_OK) {
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "config (%s)", c->origin);
            goto out;
        }
        if (!cJSON_IsObject(c->root)) {
            rc = clc_errf(ei, CLC_ERR_CONFIG, "config (%s): expected a JSON object, got %s",
                          c->origin, clc_json_type_name(c->root));
            goto out;
        }
        rc = validate(c, c->root, "", 0, ei);
        if (rc != CLC_OK)
            goto out;
    } else {
        c->root = cJSON_CreateObject();
        if (c->root == NULL) {
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    }
    if (env_prefix != NULL) {
        rc = apply_env_all(c, env_prefix, ei);
        if (rc != CLC_OK)
            goto out;
    }
    *out = c;
    c = NULL;
out:
    clc_config_free(c);
    return rc;
}

enum clc_err clc_config_load(const char *path, const char *env_prefix,
                             const struct clc_config_key *schema, size_t nschema,
                             struct clc_config **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char *text = NULL;
    char *origin = NULL;
    size_t len = 0;

    *out = NULL;
    if (path == NULL)
        return clc_config_load_text(NULL, 0, "no file", env_prefix, schema, nschema, out, ei);
    rc = clc_file_read(path, CLC_CONFIG_MAX_BYTES, &text, &len, ei);
    if (rc == CLC_ERR_NOMEM)
        goto out;
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "config");
        goto out;
    }
    size_t olen = strlen("file ") + strlen(path) + 1;
    origin = malloc(olen);
    if (origin == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    snprintf(origin, olen, "file %s", path);
    rc = clc_config_load_text(text, len, origin, env_prefix, schema, nschema, out, ei);
out:
    free(text);
    free(origin);
    return rc;
}

void clc_config_free(struct clc_config *c)
{
    if (c == NULL)
        return;
    cJSON_Delete(c->root);
    free(c->origin);
    for (size_t i = 0; i < c->nenvs; i++) {
        free(c->envs[i].path);
        free(c->envs[i].desc);
    }
    free(c->envs);
    free(c);
}

/* Follows a dotted path through objects; NULL when any step is missing. */
static const cJSON *tree_get(const cJSON *root, const char *path)
{
    char buf[CFG_PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return NULL;
    const cJSON *node = root;
    char *seg = buf;
    for (;;) {
        char *dot = strchr(seg, '.');
        if (dot != NULL)
            *dot = '\0';
        if (!cJSON_IsObject(node))
            return NULL;
        node = cJSON_GetObjectItemCaseSensitive(node, seg);
        if (node == NULL || dot == NULL)
            return node;
        seg = dot + 1;
    }
}

const char *clc_config_origin(const struct clc_config *c, const char *path)
{
    if (c == NULL || path == NULL)
        return "default";
    /* The most recent override of the key or of an object above it wins. */
    for (size_t i = c->nenvs; i-- > 0;) {
        size_t n = strlen(c->envs[i].path);
        if (strncmp(path, c->envs[i].path, n) == 0 && (path[n] == '\0' || path[n] == '.'))
            return c->envs[i].desc;
    }
    return tree_get(c->root, path) != NULL ? c->origin : "default";
}

/* Finds the key for a getter. A path outside the schema, or a getter of the
 * wrong type for a declared key, is a bug in the caller. */
static enum clc_err lookup(const struct clc_config *c, const char *path, enum clc_config_type want,
                           const cJSON **out, struct clc_errinfo *ei)
{
    *out = NULL;
    if (c == NULL || path == NULL)
        return clc_errf(ei, CLC_ERR_INTERNAL, "config: no configuration or key");
    enum clc_config_type t = CLC_CFG_STR;
    enum key_kind kind = classify(c->schema, c->nschema, path, &t);
    if (kind == KEY_UNKNOWN || kind == KEY_INTERMEDIATE)
        return clc_errf(ei, CLC_ERR_INTERNAL, "config key '%s' is not in the schema", path);
    if (kind == KEY_LEAF && t != want)
        return clc_errf(ei, CLC_ERR_INTERNAL, "config key '%s' is declared %s, read as %s", path,
                        type_word(t), type_word(want));
    const cJSON *v = tree_get(c->root, path);
    if (v != NULL && !type_matches(want, v))
        return type_error(path, want, v, clc_config_origin(c, path), ei);
    *out = v;
    return CLC_OK;
}

enum clc_err clc_config_str(const struct clc_config *c, const char *path, const char *dflt,
                            const char **out, struct clc_errinfo *ei)
{
    const cJSON *v = NULL;
    *out = NULL;
    enum clc_err rc = lookup(c, path, CLC_CFG_STR, &v, ei);
    if (rc != CLC_OK)
        return rc;
    *out = v != NULL ? v->valuestring : dflt;
    return CLC_OK;
}

enum clc_err clc_config_int(const struct clc_config *c, const char *path, int64_t dflt, int64_t min,
                            int64_t max, int64_t *out, struct clc_errinfo *ei)
{
    const cJSON *v = NULL;
    *out = 0;
    enum clc_err rc = lookup(c, path, CLC_CFG_INT, &v, ei);
    if (rc != CLC_OK)
        return rc;
    if (v == NULL) {
        *out = dflt;
        return CLC_OK;
    }
    int64_t n = (int64_t)v->valuedouble;
    if (n < min || n > max)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "config key '%s': %lld is out of range [%lld, %lld] (%s)", path,
                        (long long)n, (long long)min, (long long)max, clc_config_origin(c, path));
    *out = n;
    return CLC_OK;
}

enum clc_err clc_config_bool(const struct clc_config *c, const char *path, int dflt, int *out,
                             struct clc_errinfo *ei)
{
    const cJSON *v = NULL;
    *out = 0;
    enum clc_err rc = lookup(c, path, CLC_CFG_BOOL, &v, ei);
    if (rc != CLC_OK)
        return rc;
    *out = v != NULL ? cJSON_IsTrue(v) : (dflt != 0);
    return CLC_OK;
}

enum clc_err clc_config_str_req(const struct clc_config *c, const char *path, const char **out,
                                struct clc_errinfo *ei)
{
    enum clc_err rc = clc_config_str(c, path, NULL, out, ei);
    if (rc != CLC_OK)
        return rc;
    if (*out == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s' is required", path);
    return CLC_OK;
}

enum clc_err clc_config_enum(const struct clc_config *c, const char *path, const char *dflt,
                             const char *const *choices, size_t nchoices, int *out,
                             struct clc_errinfo *ei)
{
    const char *s = NULL;
    *out = -1;
    enum clc_err rc = clc_config_str(c, path, dflt, &s, ei);
    if (rc != CLC_OK)
        return rc;
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s' is required", path);
    for (size_t i = 0; i < nchoices; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = (int)i;
            return CLC_OK;
        }
    }
    if (tree_get(c->root, path) == NULL)
        return clc_errf(ei, CLC_ERR_INTERNAL, "config key '%s': default '%s' is not a choice", path,
                        s);
    /* The list of choices is what the user needs to fix it. */
    char list[256];
    size_t n = 0;
    list[0] = '\0';
    for (size_t i = 0; i < nchoices && n < sizeof list; i++) {
        int w = snprintf(list + n, sizeof list - n, "%s%s", i > 0 ? ", " : "", choices[i]);
        if (w < 0)
            break;
        n += (size_t)w;
    }
    return clc_errf(ei, CLC_ERR_CONFIG, "config key '%s': '%.64s' is not one of: %s (%s)", path, s,
                    list, clc_config_origin(c, path));
}

const cJSON *clc_config_node(const struct clc_config *c, const char *path)
{
    if (c == NULL || path == NULL)
        return NULL;
    enum clc_config_type t;
    if (classify(c->schema, c->nschema, path, &t) == KEY_UNKNOWN)
        return NULL;
    return tree_get(c->root, path);
}

enum clc_err clc_config_secret(const struct clc_config *c, const char *path,
                               struct clc_secret **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    char kfile[CFG_PATH_MAX];
    char kenv[CFG_PATH_MAX];
    const char *file = NULL;
    const char *var = NULL;

    *out = NULL;
    if (c == NULL || path == NULL ||
        snprintf(kfile, sizeof kfile, "%s_file", path) >= (int)sizeof kfile ||
        snprintf(kenv, sizeof kenv, "%s_env", path) >= (int)sizeof kenv) {
        rc = clc_errf(ei, CLC_ERR_INTERNAL, "config: bad secret key");
        goto out;
    }
    rc = clc_config_str(c, kfile, NULL, &file, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_config_str(c, kenv, NULL, &var, ei);
    if (rc != CLC_OK)
        goto out;
    if (file != NULL && file[0] != '\0') {
        rc = clc_secret_from_file(file, out, ei);
        if (rc != CLC_OK && rc != CLC_ERR_NOMEM)
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "config key '%s' (%s)", kfile,
                              clc_config_origin(c, kfile));
        goto out;
    }
    if (var != NULL && var[0] != '\0') {
        rc = clc_secret_from_env(var, out, ei);
        if (rc != CLC_OK && rc != CLC_ERR_NOMEM)
            rc = clc_err_wrap(ei, CLC_ERR_CONFIG, "config key '%s' (%s)", kenv,
                              clc_config_origin(c, kenv));
        goto out;
    }
    rc = clc_errf(ei, CLC_ERR_NOT_FOUND, "config: neither '%s' nor '%s' is set", kfile, kenv);
out:
    return rc;
}
