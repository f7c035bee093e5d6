/* The emulated CA's configuration: the "ca" section's templates, accounts,
 * key type, EST and CRL settings (defaults when absent, every key checked),
 * and the accounts' generated passwords kept in the data dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/objects.h>

#include "core/json.h"
#include "core/rand.h"
#include "emulator/ca.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define ACCOUNTS_DOC "ca-accounts"
#define PASSWORD_LEN 32
#define DEFAULT_RETRY_AFTER_S 60
#define DEFAULT_CRL_PERIOD_S (7 * 86400)
/* Made-up forest part of msPKI-Cert-Template-OID, as AD generates per forest. */
#define DEFAULT_OID_BASE "1.3.6.1.4.1.311.21.8.4180931.6923421.1189365.2735119.1283741.204"

static int name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= CA_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int oid_ok(const char *s)
{
    ASN1_OBJECT *o;
    size_t n = strlen(s);

    if (n == 0 || n >= CA_OID_MAX || strspn(s, "0123456789.") != n)
        return 0;
    o = OBJ_txt2obj(s, 1);
    ASN1_OBJECT_free(o);
    return o != NULL;
}

static enum clc_err check_keys(const cJSON *o, const char *const *known, size_t n,
                               const char *where, struct clc_errinfo *ei)
{
    const cJSON *it;

    if (!cJSON_IsObject(o))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s must be an object", where);
    cJSON_ArrayForEach(it, o)
    {
        size_t i;
        for (i = 0; i < n && strcmp(it->string, known[i]) != 0; i++)
            ;
        if (i == n)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s: unknown key '%.64s'", where, it->string);
    }
    return CLC_OK;
}

static const struct {
    const char *name;
    const char *oid;
} eku_names[] = {
    {"serverAuth", "1.3.6.1.5.5.7.3.1"},
    {"clientAuth", "1.3.6.1.5.5.7.3.2"},
    {"codeSigning", "1.3.6.1.5.5.7.3.3"},
    {"emailProtection", "1.3.6.1.5.5.7.3.4"},
};

static const struct {
    const char *name;
    unsigned bit;
} ku_names[] = {
    {"digitalSignature", CA_KU_DIGITAL_SIGNATURE}, {"nonRepudiation", CA_KU_NON_REPUDIATION},
    {"keyEncipherment", CA_KU_KEY_ENCIPHERMENT},   {"dataEncipherment", CA_KU_DATA_ENCIPHERMENT},
    {"keyAgreement", CA_KU_KEY_AGREEMENT},
};

static enum clc_err parse_ekus(const cJSON *arr, struct ca_template *t, const char *where,
                               struct clc_errinfo *ei)
{
    const cJSON *it;

    t->nekus = 0;
    cJSON_ArrayForEach(it, arr)
    {
        const char *oid = NULL;
        if (!cJSON_IsString(it) || t->nekus == CA_MAX_EKUS)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s.ekus: up to %d strings", where, CA_MAX_EKUS);
        for (size_t i = 0; i < sizeof eku_names / sizeof eku_names[0]; i++)
            if (strcmp(it->valuestring, eku_names[i].name) == 0)
                oid = eku_names[i].oid;
        if (oid == NULL && oid_ok(it->valuestring))
            oid = it->valuestring;
        if (oid == NULL)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s.ekus: '%.64s' is neither serverAuth, clientAuth, codeSigning, "
                            "emailProtection nor a dotted OID",
                            where, it->valuestring);
        snprintf(t->ekus[t->nekus++], CA_OID_MAX, "%s", oid);
    }
    return CLC_OK;
}

static enum clc_err parse_ku(const cJSON *arr, struct ca_template *t, const char *where,
                             struct clc_errinfo *ei)
{
    const cJSON *it;

    t->key_usage = 0;
    cJSON_ArrayForEach(it, arr)
    {
        unsigned bit = 0;
        for (size_t i = 0; cJSON_IsString(it) && i < sizeof ku_names / sizeof ku_names[0]; i++)
            if (strcmp(it->valuestring, ku_names[i].name) == 0)
                bit = ku_names[i].bit;
        if (bit == 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "%s.key_usage: entries are digitalSignature, nonRepudiation, "
                            "keyEncipherment, dataEncipherment or keyAgreement",
                            where);
        t->key_usage |= bit;
    }
    if (t->key_usage == 0)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.key_usage: at least one usage", where);
    return CLC_OK;
}

static enum clc_err parse_key_types(const cJSON *arr, struct ca_template *t, const char *where,
                                    struct clc_errinfo *ei)
{
    const cJSON *it;

    t->allow_rsa = t->allow_ec = 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (cJSON_IsString(it) && strcmp(it->valuestring, "RSA") == 0)
            t->allow_rsa = 1;
        else if (cJSON_IsString(it) && strcmp(it->valuestring, "EC") == 0)
            t->allow_ec = 1;
        else
            return clc_errf(ei, CLC_ERR_CONFIG, "%s.key_types: entries are \"RSA\" or \"EC\"",
                            where);
    }
    if (!t->allow_rsa && !t->allow_ec)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.key_types: at least one key type", where);
    return CLC_OK;
}

static enum clc_err parse_template(const cJSON *o, size_t idx, struct ca_template *t,
                                   struct clc_errinfo *ei)
{
    static const char *const known[] = {
        "name", "oid",       "major",        "minor",       "validity_days", "validity_seconds",
        "ekus", "key_usage", "min_key_bits", "min_ec_bits", "key_types",     "approval"};
    char where[96];
    const char *name = NULL, *oid = NULL;
    const cJSON *arr;
    int64_t days = 0, secs = 0;
    enum clc_err rc;

    snprintf(where, sizeof where, "ca.templates[%zu]", idx);
    rc = check_keys(o, known, sizeof known / sizeof known[0], where, ei);
    if (rc != CLC_OK)
        return rc;
    memset(t, 0, sizeof *t);
    if (clc_json_str(o, "name", &name, ei) != CLC_OK || !name_ok(name))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.name: 1-63 characters of [A-Za-z0-9._-]", where);
    snprintf(t->name, sizeof t->name, "%s", name);
    snprintf(where, sizeof where, "ca.templates[%.63s]", name);
    rc = clc_json_str_opt(o, "oid", NULL, &oid, ei);
    if (rc == CLC_OK && oid != NULL && !oid_ok(oid))
        rc = clc_errf(ei, CLC_ERR_CONFIG, "%s.oid: not a dotted OID", where);
    if (rc != CLC_OK)
        return rc;
    if (oid != NULL)
        snprintf(t->oid, sizeof t->oid, "%s", oid);
    else
        snprintf(t->oid, sizeof t->oid, "%s.%zu.%zu", DEFAULT_OID_BASE, idx + 1, 100 + idx);
    if (clc_json_int_opt(o, "major", 100, &t->major, ei) != CLC_OK || t->major < 0 ||
        t->major > 0x7fffffff || clc_json_int_opt(o, "minor", 1, &t->minor, ei) != CLC_OK ||
        t->minor < 0 || t->minor > 0x7fffffff)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s: major and minor are integers >= 0", where);
    if (clc_json_int_opt(o, "validity_days", 0, &days, ei) != CLC_OK ||
        clc_json_int_opt(o, "validity_seconds", 0, &secs, ei) != CLC_OK || days < 0 ||
        days > 36500 || secs < 0 || secs > 36500LL * 86400 || (days && secs))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s: give validity_days (1..36500) or validity_seconds, not both", where);
    t->validity_s = secs ? secs : days ? days * 86400 : 365 * 86400;
    t->nekus = 1;
    snprintf(t->ekus[0], CA_OID_MAX, "%s", eku_names[0].oid);
    arr = cJSON_GetObjectItemCaseSensitive(o, "ekus");
    if (arr != NULL && (!cJSON_IsArray(arr) || (rc = parse_ekus(arr, t, where, ei)) != CLC_OK))
        return rc != CLC_OK ? rc : clc_errf(ei, CLC_ERR_CONFIG, "%s.ekus: an array", where);
    t->key_usage = CA_KU_DIGITAL_SIGNATURE | CA_KU_KEY_ENCIPHERMENT;
    arr = cJSON_GetObjectItemCaseSensitive(o, "key_usage");
    if (arr != NULL && (!cJSON_IsArray(arr) || (rc = parse_ku(arr, t, where, ei)) != CLC_OK))
        return rc != CLC_OK ? rc : clc_errf(ei, CLC_ERR_CONFIG, "%s.key_usage: an array", where);
    t->allow_rsa = t->allow_ec = 1;
    arr = cJSON_GetObjectItemCaseSensitive(o, "key_types");
    if (arr != NULL && (!cJSON_IsArray(arr) || (rc = parse_key_types(arr, t, where, ei)) != CLC_OK))
        return rc != CLC_OK ? rc : clc_errf(ei, CLC_ERR_CONFIG, "%s.key_types: an array", where);
    if (clc_json_int_opt(o, "min_key_bits", 2048, &t->min_rsa_bits, ei) != CLC_OK ||
        t->min_rsa_bits < 512 || t->min_rsa_bits > 16384 ||
        clc_json_int_opt(o, "min_ec_bits", 256, &t->min_ec_bits, ei) != CLC_OK ||
        t->min_ec_bits < 160 || t->min_ec_bits > 521)
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "%s: min_key_bits is 512..16384 (RSA), min_ec_bits 160..521", where);
    if (clc_json_bool_opt(o, "approval", 0, &t->approval, ei) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.approval: a boolean", where);
    return CLC_OK;
}

static void default_templates(struct emu_ca *ca)
{
    static const struct {
        const char *name;
        int64_t days;
        int approval;
    } d[] = {{"WebServer", 365, 0}, {"WebServerShort", 5, 0}, {"WebServerApproval", 365, 1}};

    for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
        struct ca_template *t = &ca->tmpl[i];
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", d[i].name);
        snprintf(t->oid, sizeof t->oid, "%s.%zu.%zu", DEFAULT_OID_BASE, i + 1, 100 + i);
        t->major = 100;
        t->minor = 4;
        t->validity_s = d[i].days * 86400;
        t->nekus = 1;
        snprintf(t->ekus[0], CA_OID_MAX, "%s", eku_names[0].oid);
        t->key_usage = CA_KU_DIGITAL_SIGNATURE | CA_KU_KEY_ENCIPHERMENT;
        t->min_rsa_bits = 2048;
        t->min_ec_bits = 256;
        t->allow_rsa = t->allow_ec = 1;
        t->approval = d[i].approval;
    }
    ca->ntmpl = sizeof d / sizeof d[0];
}

static enum clc_err parse_account(struct emu_ca *ca, const cJSON *o, size_t idx,
                                  struct ca_account *a, struct clc_errinfo *ei)
{
    static const char *const known[] = {"name", "password", "templates", "ntlm", "kerberos"};
    char where[96];
    const char *name = NULL, *pw = NULL;
    const cJSON *arr, *it;
    enum clc_err rc;

    snprintf(where, sizeof where, "ca.accounts[%zu]", idx);
    rc = check_keys(o, known, sizeof known / sizeof known[0], where, ei);
    if (rc != CLC_OK)
        return rc;
    if (clc_json_str(o, "name", &name, ei) != CLC_OK || !name_ok(name))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.name: 1-63 characters of [A-Za-z0-9._-]", where);
    snprintf(a->name, sizeof a->name, "%s", name);
    if (clc_json_str_opt(o, "password", NULL, &pw, ei) != CLC_OK ||
        (pw != NULL && (strlen(pw) < 8 || strlen(pw) > 256)))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.password: a string of 8..256 characters", where);
    if (pw != NULL && clc_secret_new(pw, strlen(pw), &a->password) != CLC_OK)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (clc_json_bool_opt(o, "ntlm", 0, &a->ntlm, ei) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.ntlm: true or false", where);
    pw = NULL;
    if (clc_json_str_opt(o, "kerberos", NULL, &pw, ei) != CLC_OK ||
        (pw != NULL && (strchr(pw, '@') == NULL || pw[0] == '@' || strlen(pw) >= CA_PRINCIPAL_MAX)))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.kerberos: a principal name \"user@REALM\"", where);
    if (pw != NULL)
        snprintf(a->kerberos, sizeof a->kerberos, "%s", pw);
    arr = cJSON_GetObjectItemCaseSensitive(o, "templates");
    if (arr == NULL) {
        a->all_templates = 1;
        return CLC_OK;
    }
    if (!cJSON_IsArray(arr))
        return clc_errf(ei, CLC_ERR_CONFIG, "%s.templates: an array of template names", where);
    cJSON_ArrayForEach(it, arr)
    {
        if (!cJSON_IsString(it))
            return clc_errf(ei, CLC_ERR_CONFIG, "%s.templates: strings", where);
        if (strcmp(it->valuestring, "*") == 0) {
            a->all_templates = 1;
            continue;
        }
        if (ca_template_find(ca, it->valuestring) == NULL || a->ntemplates == CA_MAX_TEMPLATES)
            return clc_errf(ei, CLC_ERR_CONFIG, "%s.templates: '%.64s' is not a template", where,
                            it->valuestring);
        snprintf(a->templates[a->ntemplates++], CA_NAME_MAX, "%s",
                 ca_template_find(ca, it->valuestring)->name);
    }
    return CLC_OK;
}

static void default_accounts(struct emu_ca *ca)
{
    struct ca_account *a;

    /* "renewer" may enroll for everything; "limited" for all but approval ones. */
    a = &ca->acct[ca->nacct++];
    snprintf(a->name, sizeof a->name, "renewer");
    a->all_templates = 1;
    a = &ca->acct[ca->nacct++];
    snprintf(a->name, sizeof a->name, "limited");
    for (size_t i = 0; i < ca->ntmpl; i++)
        if (!ca->tmpl[i].approval)
            snprintf(a->templates[a->ntemplates++], CA_NAME_MAX, "%s", ca->tmpl[i].name);
}

enum clc_err ca_config_parse(struct emu_ca *ca, struct clc_errinfo *ei)
{
    static const char *const known[] = {
        "templates",        "accounts",    "key_type", "est_template", "est_retry_after",
        "crl_period_hours", "client_auth", "ntlm",     "kerberos"};
    const cJSON *cfg = cJSON_GetObjectItemCaseSensitive(emu_config(ca->e), "ca");
    const cJSON *arr, *it;
    const char *s = NULL;
    int64_t v = 0;
    size_t i = 0;
    enum clc_err rc;

    snprintf(ca->key_type, sizeof ca->key_type, "EC");
    ca->retry_after_s = DEFAULT_RETRY_AFTER_S;
    ca->crl_period_s = DEFAULT_CRL_PERIOD_S;
    if (cfg != NULL && (rc = check_keys(cfg, known, sizeof known / sizeof known[0], "ca", ei)))
        return rc;
    arr = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "templates") : NULL;
    if (arr == NULL) {
        default_templates(ca);
    } else {
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) < 1 ||
            cJSON_GetArraySize(arr) > CA_MAX_TEMPLATES)
            return clc_errf(ei, CLC_ERR_CONFIG, "ca.templates: an array of 1..%d templates",
                            CA_MAX_TEMPLATES);
        cJSON_ArrayForEach(it, arr)
        {
            rc = parse_template(it, i, &ca->tmpl[i], ei);
            if (rc != CLC_OK)
                return rc;
            for (size_t j = 0; j < i; j++)
                if (strcasecmp(ca->tmpl[j].name, ca->tmpl[i].name) == 0 ||
                    strcmp(ca->tmpl[j].oid, ca->tmpl[i].oid) == 0)
                    return clc_errf(ei, CLC_ERR_CONFIG, "ca.templates: '%s' repeats a name or OID",
                                    ca->tmpl[i].name);
            ca->ntmpl = ++i;
        }
    }
    arr = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "accounts") : NULL;
    if (arr == NULL) {
        default_accounts(ca);
    } else {
        if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) > CA_MAX_ACCOUNTS)
            return clc_errf(ei, CLC_ERR_CONFIG, "ca.accounts: an array of up to %d accounts",
                            CA_MAX_ACCOUNTS);
        i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            rc = parse_account(ca, it, i, &ca->acct[i], ei);
            ca->nacct = ++i; /* counted even on failure, so the password is freed */
            if (rc != CLC_OK)
                return rc;
            for (size_t j = 0; j + 1 < i; j++)
                if (strcasecmp(ca->acct[j].name, ca->acct[i - 1].name) == 0)
                    return clc_errf(ei, CLC_ERR_CONFIG, "ca.accounts: '%s' appears twice",
                                    ca->acct[i - 1].name);
        }
    }
    if (cfg != NULL && (rc = clc_json_str_opt(cfg, "key_type", "EC", &s, ei)) == CLC_OK) {
        if (strcmp(s, "EC") != 0 && strcmp(s, "RSA") != 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "ca.key_type: \"EC\" (P-256) or \"RSA\" (2048)");
        snprintf(ca->key_type, sizeof ca->key_type, "%s", s);
    }
    if (cfg != NULL && rc != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "ca.key_type");
    s = NULL;
    if (cfg != NULL && (clc_json_str_opt(cfg, "est_template", NULL, &s, ei) != CLC_OK ||
                        (s != NULL && ca_template_find(ca, s) == NULL)))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.est_template: the name of a configured template");
    snprintf(ca->est_template, sizeof ca->est_template, "%s",
             s ? ca_template_find(ca, s)->name : ca->tmpl[0].name);
    if (cfg != NULL &&
        (clc_json_int_opt(cfg, "est_retry_after", DEFAULT_RETRY_AFTER_S, &v, ei) != CLC_OK ||
         v < 1 || v > 86400))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.est_retry_after: seconds in 1..86400");
    ca->retry_after_s = cfg ? v : DEFAULT_RETRY_AFTER_S;
    if (cfg != NULL &&
        (clc_json_int_opt(cfg, "crl_period_hours", DEFAULT_CRL_PERIOD_S / 3600, &v, ei) != CLC_OK ||
         v < 1 || v > 24 * 366))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.crl_period_hours: hours in 1..8784");
    ca->crl_period_s = cfg ? v * 3600 : DEFAULT_CRL_PERIOD_S;
    return CLC_OK;
}

/* Accounts without a configured password get a random one, kept in the
 * data dir so a restart does not change it. */
enum clc_err ca_config_passwords(struct emu_ca *ca, struct clc_errinfo *ei)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    cJSON *saved = NULL, *doc = cJSON_CreateObject();
    struct clc_errinfo lei = {0};
    enum clc_err rc = CLC_OK;
    char pw[PASSWORD_LEN + 1];

    if (doc == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = emu_store_load(ca->e, ACCOUNTS_DOC, &saved, &lei);
    if (rc == CLC_ERR_NOT_FOUND) {
        rc = CLC_OK; /* first start, or no data dir */
    } else if (rc != CLC_OK || !cJSON_IsObject(saved)) {
        /* Anything but a missing file must not silently change every password. */
        rc = clc_errf(ei, rc != CLC_OK ? rc : CLC_ERR_PARSE, "CA accounts document: %s",
                      rc != CLC_OK ? lei.msg : "not a JSON object");
        goto out;
    }
    for (size_t i = 0; i < ca->nacct; i++) {
        struct ca_account *a = &ca->acct[i];
        const cJSON *old = saved ? cJSON_GetObjectItemCaseSensitive(saved, a->name) : NULL;
        if (a->password == NULL) {
            if (cJSON_IsString(old) && strlen(old->valuestring) >= 8) {
                rc = clc_secret_new(old->valuestring, strlen(old->valuestring), &a->password);
            } else {
                for (size_t k = 0; k < PASSWORD_LEN; k++)
                    pw[k] = alpha[clc_rand_below(sizeof alpha - 1)];
                pw[PASSWORD_LEN] = '\0';
                rc = clc_secret_new(pw, PASSWORD_LEN, &a->password);
            }
            if (rc != CLC_OK) {
                rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
                goto out;
            }
        }
        if (clc_json_add_str(doc, a->name, clc_secret_reveal(a->password)) != CLC_OK) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    rc = emu_store_save(ca->e, ACCOUNTS_DOC, doc, ei);
out:
    OPENSSL_cleanse(pw, sizeof pw);
    cJSON_Delete(saved);
    cJSON_Delete(doc);
    return rc;
}
