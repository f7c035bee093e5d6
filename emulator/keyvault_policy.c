/* Certificate policies: validation of what clients send (types, ranges,
 * known values, with a message naming the field), defaults as Key Vault
 * fills them, partial updates over a stored policy, and the policy as the
 * service answers it. Also the attributes/tags part of request bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "emulator/keyvault.h"
#include "emulator/state.h"

#define SAN_MAX 100
#define SAN_LEN_MAX 255
#define TAGS_MAX 15
#define TAG_NAME_MAX 512
#define TAG_VALUE_MAX 256

static const char *const key_usages[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};

/* ---- accessors ---- */

static const cJSON *sect(const cJSON *pol, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(pol, name);
}

static const char *str_of(const cJSON *o, const char *k, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : dflt;
}

const char *kv_policy_issuer(const cJSON *pol)
{
    return str_of(sect(pol, "issuer"), "name", "Unknown");
}

const char *kv_policy_content_type(const cJSON *pol)
{
    return str_of(sect(pol, "secret_props"), "contentType", KV_CT_PKCS12);
}

int kv_policy_exportable(const cJSON *pol)
{
    return !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(sect(pol, "key_props"), "exportable"));
}

int kv_policy_reuse_key(const cJSON *pol)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(sect(pol, "key_props"), "reuse_key"));
}

/* ---- validation ---- */

static int printable(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int oid_ok(const char *s)
{
    int dots = 0, digits = 0;

    for (; *s; s++) {
        if (*s == '.') {
            if (digits == 0)
                return 0;
            dots++;
            digits = 0;
        } else if (*s >= '0' && *s <= '9') {
            digits++;
        } else {
            return 0;
        }
    }
    return dots >= 1 && digits > 0;
}

/* Replaces (or sets) o[k] with a copy of v. */
static int put(cJSON *o, const char *k, const cJSON *v)
{
    cJSON *d = cJSON_Duplicate(v, 1);

    if (d == NULL)
        return 0;
    if (cJSON_GetObjectItemCaseSensitive(o, k) != NULL)
        return cJSON_ReplaceItemInObjectCaseSensitive(o, k, d);
    return cJSON_AddItemToObject(o, k, d);
}

static int set_str(cJSON *o, const char *k, const char *v)
{
    cJSON *s = cJSON_CreateString(v);
    int ok = s != NULL && put(o, k, s);
    cJSON_Delete(s);
    return ok;
}

static int set_num(cJSON *o, const char *k, int64_t v)
{
    cJSON *s = cJSON_CreateNumber((double)v);
    int ok = s != NULL && put(o, k, s);
    cJSON_Delete(s);
    return ok;
}

static int set_bool(cJSON *o, const char *k, int v)
{
    cJSON *s = cJSON_CreateBool(v);
    int ok = s != NULL && put(o, k, s);
    cJSON_Delete(s);
    return ok;
}

/* The section of out named k, created empty when absent. */
static cJSON *section(cJSON *out, const char *k)
{
    cJSON *s = cJSON_GetObjectItemCaseSensitive(out, k);
    return s != NULL ? s : cJSON_AddObjectToObject(out, k);
}

/* Copies the members of in[k] (an object) over out[k]. */
static enum clc_err overlay(cJSON *out, const cJSON *in, const char *k, struct clc_errinfo *ei)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(in, k), *it;
    cJSON *dst;

    if (src == NULL || cJSON_IsNull(src))
        return CLC_OK;
    if (!cJSON_IsObject(src))
        return clc_errf(ei, CLC_ERR_INVALID, "policy.%s must be an object, not %s", k,
                        clc_json_type_name(src));
    dst = section(out, k);
    if (dst == NULL)
        return CLC_ERR_NOMEM;
    cJSON_ArrayForEach(it, src)
    {
        if (!put(dst, it->string, it))
            return CLC_ERR_NOMEM;
    }
    return CLC_OK;
}

static enum clc_err check_key_props(cJSON *kp, struct clc_errinfo *ei)
{
    const char *kty = NULL, *crv = NULL;
    int64_t size = 0;
    int b = 0;

    if (clc_json_str_opt(kp, "kty", NULL, &kty, ei) != CLC_OK ||
        clc_json_str_opt(kp, "crv", NULL, &crv, ei) != CLC_OK ||
        clc_json_int_opt(kp, "key_size", 0, &size, ei) != CLC_OK ||
        clc_json_bool_opt(kp, "exportable", 1, &b, ei) != CLC_OK ||
        !set_bool(kp, "exportable", b) || clc_json_bool_opt(kp, "reuse_key", 0, &b, ei) != CLC_OK ||
        !set_bool(kp, "reuse_key", b))
        return clc_err_wrap(ei, CLC_ERR_INVALID, "policy.key_props");
    if (kty == NULL)
        kty = crv != NULL ? "EC" : "RSA";
    if (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0) {
        if (cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(kp, "crv")))
            cJSON_DeleteItemFromObjectCaseSensitive(kp, "crv");
        if (crv != NULL)
            return clc_errf(ei, CLC_ERR_INVALID, "policy.key_props.crv is not allowed for RSA");
        if (size == 0)
            size = 2048;
        if (size != 2048 && size != 3072 && size != 4096)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.key_props.key_size %lld is not supported for RSA (2048, "
                            "3072 or 4096)",
                            (long long)size);
    } else if (strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0) {
        static const struct {
            const char *crv;
            int bits;
        } curves[] = {{"P-256", 256}, {"P-384", 384}, {"P-521", 521}};
        size_t i;
        for (i = 0; i < 3; i++)
            if ((crv != NULL && strcmp(crv, curves[i].crv) == 0) ||
                (crv == NULL && (size == curves[i].bits || (size == 0 && i == 0))))
                break;
        if (i == 3)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.key_props: curve '%.16s' / key_size %lld is not supported "
                            "(P-256, P-384 or P-521)",
                            crv ? crv : "-", (long long)size);
        if (size != 0 && size != curves[i].bits)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.key_props.key_size %lld does not match curve %s",
                            (long long)size, curves[i].crv);
        crv = curves[i].crv;
        size = curves[i].bits;
        if (!set_str(kp, "crv", crv))
            return CLC_ERR_NOMEM;
    } else {
        return clc_errf(ei, CLC_ERR_INVALID,
                        "policy.key_props.kty '%.16s' is not supported (RSA, RSA-HSM, EC, EC-HSM)",
                        kty);
    }
    if (!set_str(kp, "kty", kty) || !set_num(kp, "key_size", size))
        return CLC_ERR_NOMEM;
    return CLC_OK;
}

static enum clc_err check_str_array(const cJSON *a, const char *what, size_t max_items,
                                    size_t max_len, struct clc_errinfo *ei)
{
    const cJSON *it;
    size_t n = 0;

    if (!cJSON_IsArray(a))
        return clc_errf(ei, CLC_ERR_INVALID, "%s must be an array, not %s", what,
                        clc_json_type_name(a));
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it) || !printable(it->valuestring, max_len))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "%s[%zu] must be a non-empty string of at most %zu characters", what, n,
                            max_len);
        if (++n > max_items)
            return clc_errf(ei, CLC_ERR_INVALID, "%s: at most %zu entries", what, max_items);
    }
    return CLC_OK;
}

static enum clc_err check_x509_props(cJSON *xp, const char *kty, struct clc_errinfo *ei)
{
    static const char *const san_kinds[] = {"dns_names", "emails", "upns"};
    const char *subject = NULL;
    const cJSON *sans = cJSON_GetObjectItemCaseSensitive(xp, "sans"), *v, *it;
    cJSON *eku, *ku;
    int64_t months = 12;
    size_t nsans = 0;
    char why[160];

    if (clc_json_str_opt(xp, "subject", "", &subject, ei) != CLC_OK ||
        clc_json_int_opt(xp, "validity_months", 12, &months, ei) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_INVALID, "policy.x509_props");
    if (months < 1 || months > 1200)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "policy.x509_props.validity_months must be 1 to 1200, not %lld",
                        (long long)months);
    if (!set_num(xp, "validity_months", months))
        return CLC_ERR_NOMEM;
    if (sans != NULL && !cJSON_IsNull(sans)) {
        if (!cJSON_IsObject(sans))
            return clc_errf(ei, CLC_ERR_INVALID, "policy.x509_props.sans must be an object");
        cJSON_ArrayForEach(it, sans)
        {
            size_t k;
            for (k = 0; k < 3; k++)
                if (strcmp(it->string, san_kinds[k]) == 0)
                    break;
            if (k == 3)
                return clc_errf(ei, CLC_ERR_INVALID,
                                "policy.x509_props.sans.%.32s is unknown (dns_names, emails, "
                                "upns)",
                                it->string);
            snprintf(why, sizeof why, "policy.x509_props.sans.%s", san_kinds[k]);
            if (check_str_array(it, why, SAN_MAX, SAN_LEN_MAX, ei) != CLC_OK)
                return CLC_ERR_INVALID;
            nsans += (size_t)cJSON_GetArraySize(it);
        }
    }
    if (subject[0] == '\0' && nsans == 0)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "policy.x509_props needs a subject or at least one subject "
                        "alternative name");
    if (subject[0] != '\0' && !kv_dn_check(subject, why, sizeof why))
        return clc_errf(ei, CLC_ERR_INVALID, "policy.x509_props.subject: %s", why);
    eku = cJSON_GetObjectItemCaseSensitive(xp, "ekus");
    if (eku == NULL || cJSON_IsNull(eku)) {
        cJSON *d = cJSON_CreateArray();
        if (d == NULL || !cJSON_AddItemToArray(d, cJSON_CreateString("1.3.6.1.5.5.7.3.1")) ||
            !cJSON_AddItemToArray(d, cJSON_CreateString("1.3.6.1.5.5.7.3.2")) ||
            !put(xp, "ekus", d)) {
            cJSON_Delete(d);
            return CLC_ERR_NOMEM;
        }
        cJSON_Delete(d);
    } else {
        if (check_str_array(eku, "policy.x509_props.ekus", 32, 128, ei) != CLC_OK)
            return CLC_ERR_INVALID;
        cJSON_ArrayForEach(v, eku)
        {
            if (!oid_ok(v->valuestring))
                return clc_errf(ei, CLC_ERR_INVALID,
                                "policy.x509_props.ekus: '%.64s' is not a dotted OID",
                                v->valuestring);
        }
    }
    ku = cJSON_GetObjectItemCaseSensitive(xp, "key_usage");
    if (ku == NULL || cJSON_IsNull(ku)) {
        int ec = strncmp(kty, "EC", 2) == 0;
        cJSON *d = cJSON_CreateArray();
        if (d == NULL || !cJSON_AddItemToArray(d, cJSON_CreateString("digitalSignature")) ||
            !cJSON_AddItemToArray(d, cJSON_CreateString(ec ? "keyAgreement" : "keyEncipherment")) ||
            !put(xp, "key_usage", d)) {
            cJSON_Delete(d);
            return CLC_ERR_NOMEM;
        }
        cJSON_Delete(d);
    } else {
        if (check_str_array(ku, "policy.x509_props.key_usage", 9, 32, ei) != CLC_OK)
            return CLC_ERR_INVALID;
        cJSON_ArrayForEach(v, ku)
        {
            size_t k;
            for (k = 0; k < sizeof key_usages / sizeof key_usages[0]; k++)
                if (strcmp(v->valuestring, key_usages[k]) == 0)
                    break;
            if (k == sizeof key_usages / sizeof key_usages[0])
                return clc_errf(ei, CLC_ERR_INVALID,
                                "policy.x509_props.key_usage: '%.32s' is unknown", v->valuestring);
        }
    }
    return set_str(xp, "subject", subject) ? CLC_OK : CLC_ERR_NOMEM;
}

static enum clc_err check_lifetime(const cJSON *la, int64_t months, struct clc_errinfo *ei)
{
    const cJSON *it;
    size_t i = 0;

    if (!cJSON_IsArray(la))
        return clc_errf(ei, CLC_ERR_INVALID, "policy.lifetime_actions must be an array");
    cJSON_ArrayForEach(it, la)
    {
        const cJSON *trig = cJSON_GetObjectItemCaseSensitive(it, "trigger");
        const cJSON *act = cJSON_GetObjectItemCaseSensitive(it, "action");
        const cJSON *pct = cJSON_GetObjectItemCaseSensitive(trig, "lifetime_percentage");
        const cJSON *days = cJSON_GetObjectItemCaseSensitive(trig, "days_before_expiry");
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(act, "action_type");

        if (!cJSON_IsObject(it) || !cJSON_IsObject(trig) || !cJSON_IsObject(act))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.lifetime_actions[%zu] needs a trigger and an action", i);
        if ((pct != NULL) == (days != NULL))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.lifetime_actions[%zu].trigger: give exactly one of "
                            "lifetime_percentage and days_before_expiry",
                            i);
        if (pct != NULL && (!cJSON_IsNumber(pct) || pct->valuedouble != (int)pct->valuedouble ||
                            pct->valueint < 1 || pct->valueint > 99))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.lifetime_actions[%zu].trigger.lifetime_percentage must be "
                            "an integer 1 to 99",
                            i);
        if (days != NULL && (!cJSON_IsNumber(days) || days->valuedouble != (int)days->valuedouble ||
                             days->valueint < 1 || days->valueint > months * 27))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.lifetime_actions[%zu].trigger.days_before_expiry must be an "
                            "integer 1 to %lld",
                            i, (long long)months * 27);
        if (!cJSON_IsString(type) || (strcasecmp(type->valuestring, "EmailContacts") != 0 &&
                                      strcasecmp(type->valuestring, "AutoRenew") != 0))
            return clc_errf(ei, CLC_ERR_INVALID,
                            "policy.lifetime_actions[%zu].action.action_type must be "
                            "EmailContacts or AutoRenew",
                            i);
        i++;
    }
    return CLC_OK;
}

enum clc_err kv_policy_parse(const cJSON *in, const cJSON *base, cJSON **out,
                             struct clc_errinfo *ei)
{
    static const char *const sections[] = {"key_props", "secret_props", "x509_props", "issuer"};
    cJSON *p = base ? cJSON_Duplicate(base, 1) : cJSON_CreateObject();
    cJSON *kp, *sp, *xp, *iss;
    const cJSON *la;
    const char *ct = NULL, *name = NULL, *cty = NULL;
    char issuer[72];
    int64_t months = 12;
    int b = 0;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (p == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (!cJSON_IsObject(in)) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "policy must be an object, not %s",
                      clc_json_type_name(in));
        goto out;
    }
    /* A new key type drops the stored size and curve it did not restate. */
    kp = cJSON_GetObjectItemCaseSensitive(in, "key_props");
    if (cJSON_IsObject(kp) && cJSON_GetObjectItemCaseSensitive(kp, "kty") != NULL) {
        cJSON *bk = cJSON_GetObjectItemCaseSensitive(p, "key_props");
        if (cJSON_GetObjectItemCaseSensitive(kp, "key_size") == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(bk, "key_size");
        if (cJSON_GetObjectItemCaseSensitive(kp, "crv") == NULL)
            cJSON_DeleteItemFromObjectCaseSensitive(bk, "crv");
    }
    /* Members replace stored members whole (a given "sans" replaces all SANs). */
    for (size_t i = 0; i < 4 && rc == CLC_OK; i++)
        rc = overlay(p, in, sections[i], ei);
    if (rc != CLC_OK)
        goto out;
    la = cJSON_GetObjectItemCaseSensitive(in, "lifetime_actions");
    if (la != NULL && !cJSON_IsNull(la) && !put(p, "lifetime_actions", la)) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    kp = section(p, "key_props");
    sp = section(p, "secret_props");
    xp = section(p, "x509_props");
    iss = section(p, "issuer");
    if (kp == NULL || sp == NULL || xp == NULL || iss == NULL) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    rc = check_key_props(kp, ei);
    if (rc == CLC_OK)
        rc = check_x509_props(xp, str_of(kp, "kty", "RSA"), ei);
    if (rc != CLC_OK)
        goto out;
    if (clc_json_str_opt(sp, "contentType", KV_CT_PKCS12, &ct, ei) != CLC_OK ||
        (strcmp(ct, KV_CT_PKCS12) != 0 && strcmp(ct, KV_CT_PEM) != 0)) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "policy.secret_props.contentType must be " KV_CT_PKCS12 " or " KV_CT_PEM);
        goto out;
    }
    if (!set_str(sp, "contentType", ct)) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    if (clc_json_str_opt(iss, "name", "Unknown", &name, ei) != CLC_OK ||
        clc_json_str_opt(iss, "cty", NULL, &cty, ei) != CLC_OK ||
        clc_json_bool_opt(iss, "cert_transparency", 0, &b, ei) != CLC_OK) {
        rc = clc_err_wrap(ei, CLC_ERR_INVALID, "policy.issuer");
        goto out;
    }
    if (!printable(name, 64)) {
        rc = clc_errf(ei, CLC_ERR_INVALID, "policy.issuer.name must be 1 to 64 characters");
        goto out;
    }
    /* Key Vault's two built-in issuer names are case-insensitive. The
     * name is copied: replacing the member frees the string it points to. */
    snprintf(issuer, sizeof issuer, "%s",
             strcasecmp(name, "self") == 0      ? "Self"
             : strcasecmp(name, "unknown") == 0 ? "Unknown"
                                                : name);
    name = issuer;
    if (!set_str(iss, "name", name)) {
        rc = CLC_ERR_NOMEM;
        goto out;
    }
    clc_json_int_opt(xp, "validity_months", 12, &months, NULL);
    la = cJSON_GetObjectItemCaseSensitive(p, "lifetime_actions");
    if (la == NULL) {
        /* Key Vault's default: act at 80 % of the lifetime. */
        cJSON *d = cJSON_Parse(strcmp(name, "Self") == 0
                                   ? "[{\"trigger\":{\"lifetime_percentage\":80},"
                                     "\"action\":{\"action_type\":\"AutoRenew\"}}]"
                                   : "[{\"trigger\":{\"lifetime_percentage\":80},"
                                     "\"action\":{\"action_type\":\"EmailContacts\"}}]");
        if (d == NULL || !cJSON_AddItemToObject(p, "lifetime_actions", d)) {
            cJSON_Delete(d);
            rc = CLC_ERR_NOMEM;
            goto out;
        }
    } else {
        rc = check_lifetime(la, months, ei);
        if (rc != CLC_OK)
            goto out;
    }
    *out = p;
    p = NULL;
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "policy: out of memory");
    cJSON_Delete(p);
    return rc;
}

cJSON *kv_policy_json(const struct kv_vault *v, const struct kv_cert *c)
{
    cJSON *p = cJSON_Duplicate(c->policy, 1);
    cJSON *attrs;
    char id[KV_BASE_MAX + KV_NAME_MAX + 32];

    snprintf(id, sizeof id, "%s/certificates/%s/policy", v->base, c->name);
    if (p == NULL || !set_str(p, "id", id) ||
        (attrs = cJSON_AddObjectToObject(p, "attributes")) == NULL ||
        clc_json_add_bool(attrs, "enabled", 1) != CLC_OK ||
        clc_json_add_int(attrs, "created", c->policy_created) != CLC_OK ||
        clc_json_add_int(attrs, "updated", c->policy_updated) != CLC_OK) {
        cJSON_Delete(p);
        return NULL;
    }
    return p;
}

/* ---- attributes and tags of request bodies ---- */

int kv_parse_attrs(struct emu_req *r, const cJSON *body, struct kv_attrs *out)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "attributes");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "tags"), *it;
    struct clc_errinfo ei = {0};
    int en = -1;
    size_t n = 0;

    out->enabled = -1;
    out->nbf = -1;
    out->exp = -1;
    out->tags = NULL;
    if (a != NULL && !cJSON_IsNull(a)) {
        if (!cJSON_IsObject(a)) {
            kv_bad(r, "Property 'attributes' must be an object, not %s.", clc_json_type_name(a));
            return 0;
        }
        if (clc_json_bool_opt(a, "enabled", -1, &en, &ei) != CLC_OK ||
            clc_json_int_opt(a, "nbf", -1, &out->nbf, &ei) != CLC_OK ||
            clc_json_int_opt(a, "exp", -1, &out->exp, &ei) != CLC_OK) {
            kv_bad(r, "Property 'attributes' is invalid: %s", ei.msg);
            return 0;
        }
        out->enabled = en;
        if ((cJSON_GetObjectItemCaseSensitive(a, "nbf") != NULL && out->nbf < 0) ||
            (cJSON_GetObjectItemCaseSensitive(a, "exp") != NULL && out->exp < 0)) {
            kv_bad(r, "Properties 'attributes.nbf' and 'attributes.exp' are Unix seconds >= 0.");
            return 0;
        }
    }
    if (t != NULL && !cJSON_IsNull(t)) {
        if (!cJSON_IsObject(t)) {
            kv_bad(r, "Property 'tags' must be an object of strings, not %s.",
                   clc_json_type_name(t));
            return 0;
        }
        cJSON_ArrayForEach(it, t)
        {
            char shown[80];
            kv_sanitize(it->string, shown, sizeof shown);
            if (!cJSON_IsString(it)) {
                kv_bad(r, "Tag '%s' must have a string value, not %s.", shown,
                       clc_json_type_name(it));
                return 0;
            }
            if (!printable(it->string, TAG_NAME_MAX) || strlen(it->valuestring) > TAG_VALUE_MAX) {
                kv_bad(r, "Tag '%s' is invalid: names are 1 to %d characters, values at most %d.",
                       shown, TAG_NAME_MAX, TAG_VALUE_MAX);
                return 0;
            }
            if (++n > TAGS_MAX) {
                kv_bad(r, "At most %d tags are allowed.", TAGS_MAX);
                return 0;
            }
        }
        out->tags = t;
    }
    return 1;
}
