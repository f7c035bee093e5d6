/* certlc kv: look at the certificates of a configured vault (list, show,
 * versions) and read or set their tags, as a table for people or JSON for
 * scripts. Exit 0 done, 1 error, 2 nothing found (empty list, unknown name). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/auth.h"
#include "azure/keyvault.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/json.h"
#include "crypto/cert.h"

#define KV_SET_MAX 50

struct kv_args {
    const char *vault;
    int json;
    int include_pending;
    const char *version;
    const char *sets[KV_SET_MAX];
    int nsets;
};

static void kv_usage(FILE *f)
{
    fprintf(f,
            "usage: certlc kv [--vault NAME] [--json] COMMAND\n\n"
            "Looks at the certificates of a vault configured under keyvault.* (see\n"
            "docs/configuration.md). Never reads private keys.\n\n"
            "commands:\n"
            "  list [--include-pending]        certificates with their expiry and tags\n"
            "  show NAME [--version V]         one certificate: X.509 details, policy, tags\n"
            "  versions NAME                   every version of a certificate\n"
            "  tags NAME [--set KEY=VALUE ...] show tags, or set some (others are kept)\n\n"
            "options:\n"
            "      --vault NAME   a vault under keyvault.vaults (default: keyvault.default_vault\n"
            "                     or keyvault.url)\n"
            "      --json         machine-readable output on stdout\n\n"
            "exit status: 0 done, 1 error, 2 nothing found (empty list or unknown certificate)\n");
}

static const char *date_of(int64_t t, char buf[CLC_TIME_STR_MAX])
{
    if (!t || clc_time_fmt_iso8601(t, buf) != CLC_OK)
        snprintf(buf, CLC_TIME_STR_MAX, "-");
    return buf;
}

/* An error of the vault: NOT_FOUND is "nothing found" (2), the rest 1. */
static int kv_fail(const char *what, enum clc_err e, const struct clc_errinfo *ei)
{
    clc_cli_fail(what, e, ei);
    return e == CLC_ERR_NOT_FOUND ? CLC_EXIT_NOTHING : CLC_EXIT_ERROR;
}

static cJSON *tags_json(const struct clc_kv_tags *t)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; o && i < t->n; i++)
        cJSON_AddStringToObject(o, t->v[i].name, t->v[i].value);
    return o;
}

static void tags_text(const struct clc_kv_tags *t, char *out, size_t n)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < t->n && used < n; i++) {
        int k =
            snprintf(out + used, n - used, "%s%s=%s", i ? "," : "", t->v[i].name, t->v[i].value);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

/* The list/versions item as JSON. */
static cJSON *item_json(const struct clc_kv_certificate *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", c->name);
    cJSON_AddStringToObject(o, "id", c->id);
    if (c->version[0])
        cJSON_AddStringToObject(o, "version", c->version);
    if (c->x5t)
        cJSON_AddStringToObject(o, "x5t", c->x5t);
    if (c->attributes.enabled >= 0)
        cJSON_AddBoolToObject(o, "enabled", c->attributes.enabled);
    cJSON_AddNumberToObject(o, "nbf", (double)c->attributes.nbf);
    cJSON_AddNumberToObject(o, "exp", (double)c->attributes.exp);
    cJSON_AddNumberToObject(o, "created", (double)c->attributes.created);
    cJSON_AddNumberToObject(o, "updated", (double)c->attributes.updated);
    cJSON_AddItemToObject(o, "tags", tags_json(&c->tags));
    return o;
}

static int print_json(cJSON *doc)
{
    char *s = doc ? cJSON_Print(doc) : NULL;
    if (!s)
        return clc_cli_fail("output", CLC_ERR_NOMEM, NULL);
    printf("%s\n", s);
    free(s);
    return CLC_EXIT_OK;
}

/* list and versions share everything but the iterator. */
static int run_listing(struct clc_kv *kv, const char *name, const struct kv_args *a)
{
    struct clc_kv_iter *it = NULL;
    struct clc_errinfo ei;
    enum clc_err e;
    cJSON *arr = cJSON_CreateArray();
    int count = 0, rc = CLC_EXIT_ERROR;
    int64_t now = clc_clock_now(NULL);

    clc_errinfo_clear(&ei);
    e = name ? clc_kv_list_versions(kv, name, 25, &it, &ei)
             : clc_kv_list_certificates(kv, 25, a->include_pending, &it, &ei);
    if (e != CLC_OK || !arr) {
        rc = kv_fail(name ? "versions" : "list", e ? e : CLC_ERR_NOMEM, &ei);
        goto out;
    }
    if (!a->json)
        printf("%-34s %-7s %-20s %-20s %5s  %s\n", name ? "VERSION" : "NAME", "ENABLED",
               "NOT BEFORE", "EXPIRES", "DAYS", "TAGS");
    for (;;) {
        const struct clc_kv_certificate *c = NULL;
        char nb[CLC_TIME_STR_MAX], ex[CLC_TIME_STR_MAX], tags[512];
        if ((e = clc_kv_iter_next(it, &c, &ei)) != CLC_OK) {
            rc = kv_fail(name ? "versions" : "list", e, &ei);
            goto out;
        }
        if (!c)
            break;
        count++;
        if (a->json) {
            cJSON_AddItemToArray(arr, item_json(c));
            continue;
        }
        tags_text(&c->tags, tags, sizeof tags);
        long days = c->attributes.exp ? (long)((c->attributes.exp - now) / 86400) : 0;
        printf("%-34s %-7s %-20s %-20s %5ld  %s\n", name ? c->version : c->name,
               c->attributes.enabled == 0 ? "no" : "yes", date_of(c->attributes.nbf, nb),
               date_of(c->attributes.exp, ex), days, tags);
    }
    if (a->json)
        print_json(arr);
    rc = count ? CLC_EXIT_OK : CLC_EXIT_NOTHING;
    if (!count && !a->json)
        fprintf(stderr, "certlc kv: no %s\n", name ? "versions" : "certificates");
out:
    cJSON_Delete(arr);
    clc_kv_iter_free(it);
    return rc;
}

static void add_names(cJSON *o, const char *key, const struct clc_cert_strs *l)
{
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    for (size_t i = 0; arr && i < l->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(l->v[i]));
}

/* The X.509 details of cer, as JSON (also the source of the table view). */
static cJSON *x509_json(const struct clc_kv_certificate *c, struct clc_errinfo *ei)
{
    X509 *x = NULL;
    struct clc_cert_info ci;
    cJSON *o = NULL;

    memset(&ci, 0, sizeof ci);
    if (!c->cer || clc_cert_from_der(c->cer, c->cer_len, &x, ei) != CLC_OK ||
        clc_cert_info_get(x, &ci, ei) != CLC_OK)
        goto out;
    o = cJSON_CreateObject();
    if (!o)
        goto out;
    cJSON_AddStringToObject(o, "subject", ci.subject);
    cJSON_AddStringToObject(o, "issuer", ci.issuer);
    cJSON_AddStringToObject(o, "serial", ci.serial_hex);
    cJSON_AddNumberToObject(o, "not_before", (double)ci.not_before);
    cJSON_AddNumberToObject(o, "not_after", (double)ci.not_after);
    cJSON_AddStringToObject(o, "key_type", ci.key.kty);
    cJSON_AddNumberToObject(o, "key_bits", ci.key.bits);
    if (ci.key.crv[0])
        cJSON_AddStringToObject(o, "curve", ci.key.crv);
    add_names(o, "dns_names", &ci.sans.dns);
    add_names(o, "emails", &ci.sans.emails);
    add_names(o, "upns", &ci.sans.upns);
    add_names(o, "ips", &ci.sans.ips);
    add_names(o, "ekus", &ci.ekus);
    cJSON_AddStringToObject(o, "sha1", ci.sha1_hex);
    cJSON_AddStringToObject(o, "sha256", ci.sha256_hex);
    if (ci.ski_hex)
        cJSON_AddStringToObject(o, "ski", ci.ski_hex);
    if (ci.aki_hex)
        cJSON_AddStringToObject(o, "aki", ci.aki_hex);
    if (ci.has_template) {
        cJSON *t = cJSON_AddObjectToObject(o, "template");
        cJSON_AddStringToObject(t, "oid", ci.template_oid);
        cJSON_AddNumberToObject(t, "major", ci.template_major);
        if (ci.template_minor >= 0)
            cJSON_AddNumberToObject(t, "minor", ci.template_minor);
    }
    if (ci.template_name)
        cJSON_AddStringToObject(o, "template_name", ci.template_name);
out:
    clc_cert_info_cleanup(&ci);
    X509_free(x);
    return o;
}

static void print_show_text(const cJSON *doc)
{
    static const char *const order[] = {"name", "version", "id",  "enabled",
                                        "nbf",  "exp",     "x5t", "content_type"};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, order[i]);
        char t[CLC_TIME_STR_MAX];
        if (cJSON_IsString(v))
            printf("%-14s %s\n", order[i], v->valuestring);
        else if (cJSON_IsBool(v))
            printf("%-14s %s\n", order[i], cJSON_IsTrue(v) ? "yes" : "no");
        else if (cJSON_IsNumber(v))
            printf("%-14s %s\n", order[i], date_of((int64_t)v->valuedouble, t));
    }
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, "x509");
    for (const cJSON *m = x ? x->child : NULL; m; m = m->next) {
        char t[CLC_TIME_STR_MAX];
        if (strncmp(m->string, "not_", 4) == 0 && cJSON_IsNumber(m)) {
            printf("%-14s %s\n", m->string, date_of((int64_t)m->valuedouble, t));
            continue;
        }
        char *s = cJSON_IsString(m) ? NULL : cJSON_PrintUnformatted(m);
        printf("%-14s %s\n", m->string, s ? s : m->valuestring);
        free(s);
    }
    const cJSON *tags = cJSON_GetObjectItemCaseSensitive(doc, "tags");
    for (const cJSON *m = tags ? tags->child : NULL; m; m = m->next)
        printf("tag            %s=%s\n", m->string, m->valuestring);
    const cJSON *pol = cJSON_GetObjectItemCaseSensitive(doc, "policy");
    if (pol) {
        char *s = cJSON_PrintUnformatted(pol);
        printf("%-14s %s\n", "policy", s ? s : "?");
        free(s);
    }
}

static int run_show(struct clc_kv *kv, const char *name, const struct kv_args *a)
{
    struct clc_kv_certificate c;
    struct clc_errinfo ei;
    enum clc_err e;
    cJSON *doc = NULL, *pol = NULL;
    int rc;

    clc_errinfo_clear(&ei);
    if ((e = clc_kv_get_certificate(kv, name, a->version, &c, &ei)) != CLC_OK)
        return kv_fail("show", e, &ei);
    doc = item_json(&c);
    if (!doc) {
        rc = clc_cli_fail("show", CLC_ERR_NOMEM, NULL);
        goto out;
    }
    if (c.content_type)
        cJSON_AddStringToObject(doc, "content_type", c.content_type);
    if (c.cer) {
        cJSON *x = x509_json(&c, &ei);
        if (!x) {
            rc = clc_cli_fail("show: certificate", CLC_ERR_PARSE, &ei);
            goto out;
        }
        cJSON_AddItemToObject(doc, "x509", x);
    }
    if (c.policy && clc_kv_policy_to_json(c.policy, &pol, &ei) == CLC_OK)
        cJSON_AddItemToObject(doc, "policy", pol);
    if (a->json)
        rc = print_json(doc);
    else {
        print_show_text(doc);
        rc = CLC_EXIT_OK;
    }
out:
    cJSON_Delete(doc);
    clc_kv_certificate_cleanup(&c);
    return rc;
}

static int run_tags(struct clc_kv *kv, const char *name, const struct kv_args *a)
{
    struct clc_kv_certificate c, upd;
    struct clc_kv_tags tags = {0};
    struct clc_errinfo ei;
    enum clc_err e;
    int rc = CLC_EXIT_ERROR;

    memset(&upd, 0, sizeof upd);
    clc_errinfo_clear(&ei);
    if ((e = clc_kv_get_certificate(kv, name, NULL, &c, &ei)) != CLC_OK)
        return kv_fail("tags", e, &ei);
    const struct clc_kv_tags *shown = &c.tags;
    if (a->nsets > 0) {
        /* Key Vault replaces the whole map: start from the current tags. */
        for (size_t i = 0; i < c.tags.n; i++)
            if ((e = clc_kv_tags_set(&tags, c.tags.v[i].name, c.tags.v[i].value, &ei)) != CLC_OK)
                goto fail;
        for (int i = 0; i < a->nsets; i++) {
            const char *eq = strchr(a->sets[i], '=');
            char key[513];
            if (!eq || eq == a->sets[i] || (size_t)(eq - a->sets[i]) >= sizeof key) {
                fprintf(stderr, "certlc kv tags: --set takes KEY=VALUE, not '%s'\n", a->sets[i]);
                goto out;
            }
            memcpy(key, a->sets[i], (size_t)(eq - a->sets[i]));
            key[eq - a->sets[i]] = '\0';
            if ((e = clc_kv_tags_set(&tags, key, eq + 1, &ei)) != CLC_OK)
                goto fail;
        }
        struct clc_kv_update u = {.tags = &tags};
        if ((e = clc_kv_update_certificate(kv, name, NULL, &u, &upd, &ei)) != CLC_OK)
            goto fail;
        shown = &upd.tags;
    }
    if (a->json) {
        cJSON *doc = cJSON_CreateObject();
        if (doc) {
            cJSON_AddStringToObject(doc, "name", name);
            cJSON_AddItemToObject(doc, "tags", tags_json(shown));
        }
        rc = print_json(doc);
        cJSON_Delete(doc);
    } else {
        for (size_t i = 0; i < shown->n; i++)
            printf("%s=%s\n", shown->v[i].name, shown->v[i].value);
        rc = CLC_EXIT_OK;
    }
    goto out;
fail:
    rc = kv_fail("tags", e, &ei);
out:
    clc_kv_tags_cleanup(&tags);
    clc_kv_certificate_cleanup(&c);
    clc_kv_certificate_cleanup(&upd);
    return rc;
}

/* Options may come before or after the command and its name. */
static int parse_args(int argc, char **argv, struct kv_args *a, const char **cmd, const char **name)
{
    static const struct option opts[] = {
        {"vault", required_argument, NULL, 'v'},
        {"json", no_argument, NULL, 'j'},
        {"version", required_argument, NULL, 'V'},
        {"set", required_argument, NULL, 's'},
        {"include-pending", no_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            a->vault = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'V':
            a->version = optarg;
            break;
        case 'p':
            a->include_pending = 1;
            break;
        case 's':
            if (a->nsets >= KV_SET_MAX) {
                fprintf(stderr, "certlc kv: at most %d --set\n", KV_SET_MAX);
                return -1;
            }
            a->sets[a->nsets++] = optarg;
            break;
        case 'h':
            kv_usage(stdout);
            return 1;
        default:
            fprintf(stderr, "certlc kv: unknown option or missing value\n");
            kv_usage(stderr);
            return -1;
        }
    }
    *cmd = optind < argc ? argv[optind++] : NULL;
    *name = optind < argc ? argv[optind++] : NULL;
    if (optind < argc) {
        fprintf(stderr, "certlc kv: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}

int clc_cmd_kv(struct clc_cli *cli, int argc, char **argv)
{
    struct kv_args a;
    const char *cmd = NULL, *name = NULL;
    struct clc_errinfo ei;
    struct clc_auth *auth = NULL;
    struct clc_kv *kv = NULL;
    enum clc_err e;
    int rc = CLC_EXIT_ERROR;

    memset(&a, 0, sizeof a);
    clc_errinfo_clear(&ei);
    int p = parse_args(argc, argv, &a, &cmd, &name);
    if (p != 0)
        return p > 0 ? CLC_EXIT_OK : CLC_EXIT_ERROR;
    int needs_name = cmd && strcmp(cmd, "list") != 0;
    if (!cmd || (strcmp(cmd, "list") != 0 && strcmp(cmd, "show") != 0 &&
                 strcmp(cmd, "versions") != 0 && strcmp(cmd, "tags") != 0)) {
        fprintf(stderr, "certlc kv: %s%s%s\n", cmd ? "unknown command '" : "a command is needed",
                cmd ? cmd : "", cmd ? "'" : "");
        kv_usage(stderr);
        return CLC_EXIT_ERROR;
    }
    if (needs_name != (name != NULL)) {
        fprintf(stderr, "certlc kv %s: %s\n", cmd,
                needs_name ? "a certificate name is needed" : "takes no name");
        return CLC_EXIT_ERROR;
    }
    if ((a.nsets && strcmp(cmd, "tags") != 0) || (a.version && strcmp(cmd, "show") != 0) ||
        (a.include_pending && strcmp(cmd, "list") != 0)) {
        fprintf(stderr, "certlc kv %s: option not valid for this command\n", cmd);
        return CLC_EXIT_ERROR;
    }
    if (name && !clc_kv_name_valid(name)) {
        fprintf(stderr,
                "certlc kv %s: '%.60s' is not a certificate name (1-127 letters, "
                "digits, '-')\n",
                cmd, name);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if ((e = clc_auth_from_config(cli->config, &cli->http, &auth, &ei)) != CLC_OK)
        return clc_cli_fail("authentication setup", e, &ei);
    if ((e = clc_kv_from_config(cli->config, a.vault, &cli->http, auth, &kv, &ei)) != CLC_OK) {
        rc = clc_cli_fail("key vault", e, &ei);
        goto out;
    }
    if (strcmp(cmd, "list") == 0)
        rc = run_listing(kv, NULL, &a);
    else if (strcmp(cmd, "versions") == 0)
        rc = run_listing(kv, name, &a);
    else if (strcmp(cmd, "show") == 0)
        rc = run_show(kv, name, &a);
    else
        rc = run_tags(kv, name, &a);
out:
    clc_kv_free(kv);
    clc_auth_free(auth);
    return rc;
}
