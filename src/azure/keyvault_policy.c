/* Certificate policy JSON <-> struct clc_kv_policy. Renewals read a policy
 * and send it back whole with issuer Unknown, so every writable member of the
 * 7.5 shape is kept: key, secret, x509 (subject, SANs, EKUs, key usage,
 * validity), lifetime actions, issuer and attributes. */
#include "azure/keyvault_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

#define POLICY_LIST_MAX 1000
#define POLICY_ACTIONS_MAX 16

void clc_kv_policy_init(struct clc_kv_policy *p)
{
    memset(p, 0, sizeof *p);
    p->exportable = -1;
    p->reuse_key = -1;
    p->cert_transparency = -1;
    clc_kv_attributes_init(&p->attributes);
}

void clc_kv_policy_cleanup(struct clc_kv_policy *p)
{
    if (!p)
        return;
    free(p->id);
    free(p->content_type);
    free(p->subject);
    clc_cert_strs_cleanup(&p->ekus);
    clc_cert_strs_cleanup(&p->dns_names);
    clc_cert_strs_cleanup(&p->emails);
    clc_cert_strs_cleanup(&p->upns);
    clc_cert_strs_cleanup(&p->key_usage);
    free(p->actions);
    free(p->issuer_name);
    free(p->issuer_cty);
    clc_kv_policy_init(p);
}

/* Optional object member: NULL when absent or null. */
static enum clc_err opt_obj(const cJSON *j, const char *key, const cJSON **out,
                            struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    *out = NULL;
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (!cJSON_IsObject(v))
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected object, got %s", key,
                        clc_json_type_name(v));
    *out = v;
    return CLC_OK;
}

static enum clc_err str_list(const cJSON *j, const char *key, struct clc_cert_strs *l,
                             struct clc_errinfo *ei)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!a || cJSON_IsNull(a))
        return CLC_OK;
    if (!cJSON_IsArray(a))
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected array, got %s", key,
                        clc_json_type_name(a));
    for (const cJSON *e = a->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected strings, got %s", key,
                            clc_json_type_name(e));
        enum clc_err rc = clc_cert_strs_add(l, e->valuestring, POLICY_LIST_MAX);
        if (rc != CLC_OK)
            return clc_errf(ei, rc, "field '%s': more than %d entries or out of memory", key,
                            POLICY_LIST_MAX);
    }
    return CLC_OK;
}

static enum clc_err opt_tristate(const cJSON *j, const char *key, int *out, struct clc_errinfo *ei)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
    if (!v || cJSON_IsNull(v))
        return CLC_OK;
    if (!cJSON_IsBool(v))
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': expected boolean, got %s", key,
                        clc_json_type_name(v));
    *out = cJSON_IsTrue(v);
    return CLC_OK;
}

static enum clc_err small_int(const cJSON *j, const char *key, int *out, struct clc_errinfo *ei)
{
    int64_t v = 0;
    enum clc_err rc = clc_json_int_opt(j, key, 0, &v, ei);
    if (rc != CLC_OK)
        return rc;
    if (v < 0 || v > 100000)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': %lld is out of range", key, (long long)v);
    *out = (int)v;
    return CLC_OK;
}

static enum clc_err copy_word(const cJSON *j, const char *key, char *out, size_t n,
                              struct clc_errinfo *ei)
{
    const char *s = NULL;
    enum clc_err rc = clc_json_str_opt(j, key, "", &s, ei);
    if (rc != CLC_OK)
        return rc;
    if (strlen(s) >= n)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': '%.20s...' is too long", key, s);
    memcpy(out, s, strlen(s) + 1);
    return CLC_OK;
}

static enum clc_err read_actions(const cJSON *j, struct clc_kv_policy *p, struct clc_errinfo *ei)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "lifetime_actions");
    enum clc_err rc = CLC_OK;
    if (!a || cJSON_IsNull(a))
        return CLC_OK;
    int n = cJSON_GetArraySize(a);
    if (!cJSON_IsArray(a) || n > POLICY_ACTIONS_MAX)
        return clc_errf(ei, CLC_ERR_PARSE,
                        "field 'lifetime_actions': expected an array of at "
                        "most %d",
                        POLICY_ACTIONS_MAX);
    if (n == 0)
        return CLC_OK;
    if (!(p->actions = calloc((size_t)n, sizeof *p->actions)))
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (const cJSON *e = a->child; e; e = e->next) {
        struct clc_kv_lifetime_action *la = &p->actions[p->nactions++];
        const cJSON *trigger = NULL, *action = NULL;
        if (!cJSON_IsObject(e) || (rc = opt_obj(e, "trigger", &trigger, ei)) != CLC_OK ||
            (rc = opt_obj(e, "action", &action, ei)) != CLC_OK ||
            (rc = small_int(trigger, "lifetime_percentage", &la->lifetime_percentage, ei)) !=
                CLC_OK ||
            (rc = small_int(trigger, "days_before_expiry", &la->days_before_expiry, ei)) !=
                CLC_OK ||
            (rc = copy_word(action, "action_type", la->action_type, sizeof la->action_type, ei)) !=
                CLC_OK)
            return clc_err_wrap(ei, rc ? rc : CLC_ERR_PARSE, "lifetime_actions");
    }
    return CLC_OK;
}

enum clc_err clc_kv_policy_from_json(const cJSON *j, struct clc_kv_policy *p,
                                     struct clc_errinfo *ei)
{
    enum clc_err rc;
    const cJSON *key = NULL, *secret = NULL, *x509 = NULL, *sans = NULL, *issuer = NULL;

    clc_kv_policy_init(p);
    if (!cJSON_IsObject(j))
        return clc_errf(ei, CLC_ERR_PARSE, "policy: expected object, got %s",
                        clc_json_type_name(j));
    if ((rc = clc_kvi_dup_opt(j, "id", &p->id, ei)) != CLC_OK ||
        (rc = opt_obj(j, "key_props", &key, ei)) != CLC_OK ||
        (rc = opt_obj(j, "secret_props", &secret, ei)) != CLC_OK ||
        (rc = opt_obj(j, "x509_props", &x509, ei)) != CLC_OK ||
        (rc = opt_obj(x509, "sans", &sans, ei)) != CLC_OK ||
        (rc = opt_obj(j, "issuer", &issuer, ei)) != CLC_OK)
        return rc;
    if ((rc = copy_word(key, "kty", p->kty, sizeof p->kty, ei)) != CLC_OK ||
        (rc = small_int(key, "key_size", &p->key_size, ei)) != CLC_OK ||
        (rc = copy_word(key, "crv", p->crv, sizeof p->crv, ei)) != CLC_OK ||
        (rc = opt_tristate(key, "exportable", &p->exportable, ei)) != CLC_OK ||
        (rc = opt_tristate(key, "reuse_key", &p->reuse_key, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "key_props");
    if ((rc = clc_kvi_dup_opt(secret, "contentType", &p->content_type, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "secret_props");
    if ((rc = clc_kvi_dup_opt(x509, "subject", &p->subject, ei)) != CLC_OK ||
        (rc = str_list(x509, "ekus", &p->ekus, ei)) != CLC_OK ||
        (rc = str_list(x509, "key_usage", &p->key_usage, ei)) != CLC_OK ||
        (rc = small_int(x509, "validity_months", &p->validity_months, ei)) != CLC_OK ||
        (rc = str_list(sans, "dns_names", &p->dns_names, ei)) != CLC_OK ||
        (rc = str_list(sans, "emails", &p->emails, ei)) != CLC_OK ||
        (rc = str_list(sans, "upns", &p->upns, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "x509_props");
    if ((rc = read_actions(j, p, ei)) != CLC_OK)
        return rc;
    if ((rc = clc_kvi_dup_opt(issuer, "name", &p->issuer_name, ei)) != CLC_OK ||
        (rc = clc_kvi_dup_opt(issuer, "cty", &p->issuer_cty, ei)) != CLC_OK ||
        (rc = opt_tristate(issuer, "cert_transparency", &p->cert_transparency, ei)) != CLC_OK)
        return clc_err_wrap(ei, rc, "issuer");
    return clc_kvi_attributes_from_json(cJSON_GetObjectItemCaseSensitive(j, "attributes"),
                                        &p->attributes, ei);
}

static enum clc_err add_list(cJSON *obj, const char *key, const struct clc_cert_strs *l)
{
    if (l->n == 0)
        return CLC_OK;
    cJSON *a = cJSON_AddArrayToObject(obj, key);
    if (!a)
        return CLC_ERR_NOMEM;
    for (size_t i = 0; i < l->n; i++) {
        cJSON *s = cJSON_CreateString(l->v[i]);
        if (!s || !cJSON_AddItemToArray(a, s)) {
            cJSON_Delete(s);
            return CLC_ERR_NOMEM;
        }
    }
    return CLC_OK;
}

static enum clc_err add_actions(cJSON *obj, const struct clc_kv_policy *p)
{
    if (p->nactions == 0)
        return CLC_OK;
    cJSON *a = cJSON_AddArrayToObject(obj, "lifetime_actions");
    if (!a)
        return CLC_ERR_NOMEM;
    for (size_t i = 0; i < p->nactions; i++) {
        const struct clc_kv_lifetime_action *la = &p->actions[i];
        cJSON *e = cJSON_CreateObject();
        if (!e || !cJSON_AddItemToArray(a, e)) {
            cJSON_Delete(e);
            return CLC_ERR_NOMEM;
        }
        cJSON *t = cJSON_AddObjectToObject(e, "trigger");
        cJSON *ac = cJSON_AddObjectToObject(e, "action");
        if (!t || !ac ||
            (la->lifetime_percentage &&
             clc_json_add_int(t, "lifetime_percentage", la->lifetime_percentage) != CLC_OK) ||
            (la->days_before_expiry &&
             clc_json_add_int(t, "days_before_expiry", la->days_before_expiry) != CLC_OK) ||
            (la->action_type[0] && clc_json_add_str(ac, "action_type", la->action_type) != CLC_OK))
            return CLC_ERR_NOMEM;
    }
    return CLC_OK;
}

static enum clc_err build(const struct clc_kv_policy *p, cJSON *j)
{
    cJSON *key = cJSON_AddObjectToObject(j, "key_props");
    if (!key || (p->kty[0] && clc_json_add_str(key, "kty", p->kty)) ||
        (p->key_size && clc_json_add_int(key, "key_size", p->key_size)) ||
        (p->crv[0] && clc_json_add_str(key, "crv", p->crv)) ||
        (p->exportable >= 0 && clc_json_add_bool(key, "exportable", p->exportable)) ||
        (p->reuse_key >= 0 && clc_json_add_bool(key, "reuse_key", p->reuse_key)))
        return CLC_ERR_NOMEM;
    if (p->content_type) {
        cJSON *sp = cJSON_AddObjectToObject(j, "secret_props");
        if (!sp || clc_json_add_str(sp, "contentType", p->content_type))
            return CLC_ERR_NOMEM;
    }
    cJSON *x = cJSON_AddObjectToObject(j, "x509_props");
    if (!x || (p->subject && clc_json_add_str(x, "subject", p->subject)) ||
        add_list(x, "ekus", &p->ekus) || add_list(x, "key_usage", &p->key_usage) ||
        (p->validity_months && clc_json_add_int(x, "validity_months", p->validity_months)))
        return CLC_ERR_NOMEM;
    if (p->dns_names.n || p->emails.n || p->upns.n) {
        cJSON *sans = cJSON_AddObjectToObject(x, "sans");
        if (!sans || add_list(sans, "dns_names", &p->dns_names) ||
            add_list(sans, "emails", &p->emails) || add_list(sans, "upns", &p->upns))
            return CLC_ERR_NOMEM;
    }
    if (add_actions(j, p))
        return CLC_ERR_NOMEM;
    if (p->issuer_name || p->issuer_cty || p->cert_transparency >= 0) {
        cJSON *is = cJSON_AddObjectToObject(j, "issuer");
        if (!is || (p->issuer_name && clc_json_add_str(is, "name", p->issuer_name)) ||
            (p->issuer_cty && clc_json_add_str(is, "cty", p->issuer_cty)) ||
            (p->cert_transparency >= 0 &&
             clc_json_add_bool(is, "cert_transparency", p->cert_transparency)))
            return CLC_ERR_NOMEM;
    }
    struct clc_kv_attributes a;
    clc_kv_attributes_init(&a);
    a.enabled = p->attributes.enabled; /* the only writable policy attribute */
    return clc_kvi_attributes_to_json(&a, j, "attributes");
}

enum clc_err clc_kv_policy_to_json(const struct clc_kv_policy *p, cJSON **out,
                                   struct clc_errinfo *ei)
{
    cJSON *j = cJSON_CreateObject();
    *out = NULL;
    if (!j || build(p, j) != CLC_OK) {
        cJSON_Delete(j);
        return clc_errf(ei, CLC_ERR_NOMEM, "policy: out of memory");
    }
    *out = j;
    return CLC_OK;
}

enum clc_err clc_kv_policy_copy(const struct clc_kv_policy *src, struct clc_kv_policy *dst,
                                struct clc_errinfo *ei)
{
    cJSON *j = NULL;
    enum clc_err rc = clc_kv_policy_to_json(src, &j, ei);
    if (rc == CLC_OK)
        rc = clc_kv_policy_from_json(j, dst, ei);
    else
        clc_kv_policy_init(dst);
    cJSON_Delete(j);
    return rc;
}

void clc_kv_policy_csr_expect(const struct clc_kv_policy *p, struct clc_csr_expect *out)
{
    memset(out, 0, sizeof *out);
    out->subject = p->subject;
    out->dns_names = &p->dns_names;
    out->emails = &p->emails;
    out->upns = &p->upns;
    out->kty = p->kty[0] ? p->kty : "RSA"; /* Key Vault's default key type */
    out->key_size = p->key_size;
    out->crv = p->crv[0] ? p->crv : NULL;
}
