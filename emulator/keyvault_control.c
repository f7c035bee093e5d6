/* The vault's events and test hooks: CertificateNewVersionCreated on each
 * completed version, the tick hook that emits CertificateNearExpiry (30 days
 * before exp) and CertificateExpired once per current version and purges
 * deleted certificates when due, the control API (seed a certificate with
 * any validity window, the test issuer CA), and reset and dump. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/emu_ext.h"
#include "emulator/events.h"
#include "emulator/keyvault.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define ISSUER_FILE "keyvault-test-issuer.pem"
#define ISSUER_MAX ((size_t)64 * 1024)
#define SEED_BODY_MAX ((size_t)1024 * 1024)
#define DUMP_NAMES_MAX 1000

/* ---- events ---- */

static void emit(struct kv_vault *v, const struct kv_cert *c, const struct kv_version *ver,
                 const char *type)
{
    struct clc_errinfo ei = {0};
    char id[KV_BASE_MAX + KV_NAME_MAX + 64];
    cJSON *d = cJSON_CreateObject();

    snprintf(id, sizeof id, "%s/certificates/%s/%s", v->base, c->name, ver->id);
    if (d == NULL || clc_json_add_str(d, "Id", id) != CLC_OK ||
        clc_json_add_str(d, "VaultName", v->name) != CLC_OK ||
        clc_json_add_str(d, "ObjectType", "Certificate") != CLC_OK ||
        clc_json_add_str(d, "ObjectName", c->name) != CLC_OK ||
        clc_json_add_str(d, "Version", ver->id) != CLC_OK ||
        clc_json_add_int(d, "NBF", ver->nbf) != CLC_OK ||
        clc_json_add_int(d, "EXP", ver->exp) != CLC_OK) {
        cJSON_Delete(d);
        clc_log(CLC_LOG_ERROR, "emu.keyvault.event_lost", CLC_LS("type", type),
                CLC_LS("certificate", c->name));
        return;
    }
    /* The log takes d; its lock nests inside the vault lock, never around it. */
    if (emu_events_publish(v->svc->e, v->topic, c->name, type, d, NULL, &ei) != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.keyvault.event_lost", CLC_LS("type", type),
                CLC_LS("certificate", c->name), CLC_LS("reason", ei.msg));
}

void kv_emit_new_version(struct kv_vault *v, const struct kv_cert *c, const struct kv_version *ver)
{
    emit(v, c, ver, "Microsoft.KeyVault.CertificateNewVersionCreated");
}

/* Only the current version counts: a renewal moves the horizon. */
static void tick_vault(struct kv_vault *v, int64_t now)
{
    pthread_mutex_lock(&v->mu);
    for (size_t i = 0; i < v->live.n; i++) {
        struct kv_cert *c = v->live.items[i];
        struct kv_version *ver = kv_cert_latest(c);
        int changed = 0;

        if (ver == NULL)
            continue;
        if (!(ver->events & KV_EV_NEAR_EXPIRY) && now >= ver->exp - KV_NEAR_EXPIRY_S) {
            ver->events |= KV_EV_NEAR_EXPIRY;
            emit(v, c, ver, "Microsoft.KeyVault.CertificateNearExpiry");
            changed = 1;
        }
        if (!(ver->events & KV_EV_EXPIRED) && now >= ver->exp) {
            ver->events |= KV_EV_EXPIRED;
            emit(v, c, ver, "Microsoft.KeyVault.CertificateExpired");
            changed = 1;
        }
        if (changed)
            kv_persist(v, c, NULL);
    }
    for (size_t i = v->deleted.n; i > 0; i--) {
        struct kv_cert *c = v->deleted.items[i - 1];
        if (now >= c->purge_date) {
            kv_table_remove(&v->deleted, c->lname);
            kv_unpersist(v, c->lname);
            kv_cert_free(c);
        }
    }
    pthread_mutex_unlock(&v->mu);
}

static void on_tick(struct emu *e, int64_t now, void *ctx)
{
    struct kv_service *s = ctx;

    (void)e;
    for (size_t i = 0; i < s->nvaults; i++)
        tick_vault(s->vaults[i], now);
}

/* ---- the test issuer CA ---- */

static const char issuer_policy[] =
    "{\"x509_props\":{\"subject\":\"CN=certlc emulator test issuer, O=certlc\","
    "\"key_usage\":[]}}";

static enum clc_err issuer_load(struct kv_service *s, const char *pem, struct clc_errinfo *ei)
{
    BIO *b = BIO_new_mem_buf(pem, -1);

    s->issuer_cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (s->issuer_cert == NULL || kv_key_from_pem(pem, &s->issuer_key) != CLC_OK ||
        X509_check_private_key(s->issuer_cert, s->issuer_key) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_PARSE, "%s: not a certificate and its key", ISSUER_FILE);
    }
    return CLC_OK;
}

/* PEM text of the BIO's contents (malloc'd), wiping the BIO's copy. */
static char *bio_text(BIO *b)
{
    char *data = NULL, *out;
    long n = BIO_get_mem_data(b, &data);

    out = malloc((size_t)n + 1);
    if (out != NULL) {
        memcpy(out, data, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_cleanse(data, (size_t)n);
    return out;
}

/* Made once and kept: seeded chains stay verifiable across restarts. */
static enum clc_err issuer_make(struct kv_service *s, const char *path, struct clc_errinfo *ei)
{
    cJSON *pol = cJSON_Parse(issuer_policy);
    char *keypem = NULL, *text = NULL;
    BIO *b = NULL;
    enum clc_err rc;

    s->issuer_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    if (pol == NULL || s->issuer_key == NULL) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "test issuer key generation failed");
        goto out;
    }
    rc = kv_cert_make(pol, s->issuer_key, clc_time_from_utc(2000, 1, 1, 0, 0, 0),
                      clc_time_from_utc(2099, 12, 31, 23, 59, 59), NULL, NULL, 1, &s->issuer_cert,
                      ei);
    if (rc != CLC_OK)
        goto out;
    rc = kv_key_to_pem(s->issuer_key, &keypem);
    b = BIO_new(BIO_s_mem());
    if (rc != CLC_OK || b == NULL || PEM_write_bio_X509(b, s->issuer_cert) != 1 ||
        BIO_puts(b, keypem) <= 0 || (text = bio_text(b)) == NULL) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "test issuer: PEM encoding failed");
        goto out;
    }
    rc = clc_file_write_atomic(path, text, strlen(text), 0600, ei);
out:
    ERR_clear_error();
    BIO_free(b);
    if (keypem != NULL) {
        OPENSSL_cleanse(keypem, strlen(keypem));
        free(keypem);
    }
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    cJSON_Delete(pol);
    return rc;
}

static enum clc_err issuer_setup(struct kv_service *s, struct clc_errinfo *ei)
{
    const char *wd = emu_work_dir(s->e);
    char path[4096], *text = NULL;
    size_t len = 0;
    BIO *b = NULL;
    enum clc_err rc;

    if ((size_t)snprintf(path, sizeof path, "%s/%s", wd, ISSUER_FILE) >= sizeof path)
        return clc_errf(ei, CLC_ERR_LIMIT, "work dir path too long");
    if (clc_file_read(path, ISSUER_MAX, &text, &len, NULL) == CLC_OK)
        rc = issuer_load(s, text, ei);
    else
        rc = issuer_make(s, path, ei);
    if (text != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
    }
    if (rc != CLC_OK)
        return rc;
    b = BIO_new(BIO_s_mem());
    if (b == NULL || PEM_write_bio_X509(b, s->issuer_cert) != 1 ||
        (s->issuer_pem = bio_text(b)) == NULL)
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "test issuer: PEM encoding failed");
    BIO_free(b);
    ERR_clear_error();
    return rc;
}

/* ---- control routes ---- */

static struct kv_vault *vault_of(struct emu_req *r)
{
    struct kv_service *s = r->svc_ctx;
    const char *name = emu_req_param(r, "vault");

    for (size_t i = 0; name != NULL && i < s->nvaults; i++)
        if (strcmp(s->vaults[i]->name, name) == 0)
            return s->vaults[i];
    emu_reply_azure_error(r, 404, "NotFound", "no vault named '%.64s'", name ? name : "");
    return NULL;
}

static void h_issuer(struct emu_req *r)
{
    struct kv_service *s = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject();

    if (doc == NULL || clc_json_add_str(doc, "certificate_pem", s->issuer_pem) != CLC_OK) {
        cJSON_Delete(doc);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    emu_reply_json(r, 200, doc, NULL);
    cJSON_Delete(doc);
}

/* The policy of a seeded certificate: the seed's key, subject and SANs
 * ("sans" as an array of DNS names or as a policy "sans" object). */
static enum clc_err seed_policy(const cJSON *body, const char *name, cJSON **out,
                                struct clc_errinfo *ei)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(body, "key");
    const cJSON *sans = cJSON_GetObjectItemCaseSensitive(body, "sans");
    const char *subject = NULL, *ct = NULL;
    int exportable = 1;
    char dflt[KV_NAME_MAX + 8];
    cJSON *in = cJSON_CreateObject(), *xp, *sp, *kp, *is;
    enum clc_err rc = CLC_ERR_NOMEM;

    snprintf(dflt, sizeof dflt, "CN=%s", name);
    if (clc_json_str_opt(body, "subject", dflt, &subject, ei) != CLC_OK ||
        clc_json_str_opt(body, "content_type", KV_CT_PKCS12, &ct, ei) != CLC_OK ||
        clc_json_bool_opt(body, "exportable", 1, &exportable, ei) != CLC_OK ||
        (key != NULL && !cJSON_IsObject(key))) {
        cJSON_Delete(in);
        return clc_errf(ei, CLC_ERR_INVALID, "seed: %s",
                        key && !cJSON_IsObject(key) ? "'key' must be an object" : ei->msg);
    }
    if (in == NULL || (xp = cJSON_AddObjectToObject(in, "x509_props")) == NULL ||
        (sp = cJSON_AddObjectToObject(in, "secret_props")) == NULL ||
        (is = cJSON_AddObjectToObject(in, "issuer")) == NULL ||
        clc_json_add_str(xp, "subject", subject) != CLC_OK ||
        clc_json_add_str(sp, "contentType", ct) != CLC_OK ||
        clc_json_add_str(is, "name", "Unknown") != CLC_OK)
        goto out;
    kp = key ? cJSON_Duplicate(key, 1) : cJSON_Parse("{\"kty\":\"EC\",\"crv\":\"P-256\"}");
    if (kp == NULL || !cJSON_AddItemToObject(in, "key_props", kp)) {
        cJSON_Delete(kp);
        goto out;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(kp, "exportable");
    if (clc_json_add_bool(kp, "exportable", exportable) != CLC_OK)
        goto out;
    if (cJSON_IsArray(sans)) {
        cJSON *so = cJSON_AddObjectToObject(xp, "sans");
        cJSON *dup = cJSON_Duplicate(sans, 1);
        if (so == NULL || dup == NULL || !cJSON_AddItemToObject(so, "dns_names", dup)) {
            cJSON_Delete(dup);
            goto out;
        }
    } else if (sans != NULL) {
        cJSON *dup = cJSON_Duplicate(sans, 1);
        if (dup == NULL || !cJSON_AddItemToObject(xp, "sans", dup)) {
            cJSON_Delete(dup);
            goto out;
        }
    }
    rc = kv_policy_parse(in, NULL, out, ei);
    if (rc != CLC_OK)
        clc_err_wrap(ei, rc, "seed");
out:
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "out of memory");
    cJSON_Delete(in);
    return rc;
}

static enum clc_err seed_issuer(struct kv_service *s, const cJSON *body, X509 **cert,
                                EVP_PKEY **key, struct clc_errinfo *ei)
{
    const char *cpem = NULL, *kpem = NULL;
    BIO *b;

    if (clc_json_str_opt(body, "issuer_cert_pem", NULL, &cpem, ei) != CLC_OK ||
        clc_json_str_opt(body, "issuer_key_pem", NULL, &kpem, ei) != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_INVALID, "seed");
    if ((cpem == NULL) != (kpem == NULL))
        return clc_errf(ei, CLC_ERR_INVALID, "seed: give both issuer_cert_pem and issuer_key_pem");
    if (cpem == NULL) {
        X509_up_ref(s->issuer_cert);
        EVP_PKEY_up_ref(s->issuer_key);
        *cert = s->issuer_cert;
        *key = s->issuer_key;
        return CLC_OK;
    }
    b = BIO_new_mem_buf(cpem, -1);
    *cert = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    if (*cert == NULL || kv_key_from_pem(kpem, key) != CLC_OK ||
        X509_check_private_key(*cert, *key) != 1) {
        ERR_clear_error();
        X509_free(*cert);
        EVP_PKEY_free(*key);
        *cert = NULL;
        *key = NULL;
        return clc_errf(ei, CLC_ERR_INVALID,
                        "seed: issuer_cert_pem and issuer_key_pem must be a certificate and "
                        "its (unencrypted) private key");
    }
    return CLC_OK;
}

/* POST /control/keyvault/{vault}/seed */
static void h_seed(struct emu_req *r)
{
    struct kv_service *s = r->svc_ctx;
    struct kv_vault *v = vault_of(r);
    struct clc_errinfo ei = {0};
    struct kv_fault f = {0};
    const char *name = NULL;
    const cJSON *tags;
    cJSON *body = NULL, *pol = NULL, *doc = NULL;
    struct kv_cert *c;
    struct kv_version *ver = NULL;
    EVP_PKEY *key = NULL, *ikey = NULL;
    X509 *cert = NULL, *icert = NULL;
    STACK_OF(X509) *chain = NULL;
    int64_t now = emu_now(r->emu), nbf, naf;
    int made = 0;

    if (v == NULL)
        return;
    if (clc_json_parse(r->body, r->body_len, SEED_BODY_MAX, &body, &ei) != CLC_OK ||
        !cJSON_IsObject(body)) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "seed: %s",
                              ei.msg[0] ? ei.msg : "the body must be a JSON object");
        goto out;
    }
    tags = cJSON_GetObjectItemCaseSensitive(body, "tags");
    if (clc_json_str(body, "name", &name, &ei) != CLC_OK ||
        clc_json_int_opt(body, "not_before", now, &nbf, &ei) != CLC_OK ||
        clc_json_int_opt(body, "not_after", now + 365 * 86400, &naf, &ei) != CLC_OK ||
        (tags != NULL && !cJSON_IsObject(tags))) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "seed: %s",
                              ei.msg[0] ? ei.msg : "'tags' must be an object");
        goto out;
    }
    if (!kv_name_ok(r, name, "certificate"))
        goto out;
    if (nbf < 0 || naf <= nbf || naf > 253402300799LL) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent",
                              "seed: not_before must be >= 0 and before not_after");
        goto out;
    }
    if (seed_policy(body, name, &pol, &ei) != CLC_OK ||
        seed_issuer(s, body, &icert, &ikey, &ei) != CLC_OK) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "%s", ei.msg);
        goto out;
    }
    chain = sk_X509_new_null();
    if (chain == NULL || kv_key_generate(pol, &key, &ei) != CLC_OK ||
        kv_cert_make(pol, key, nbf, naf, icert, ikey, 0, &cert, &ei) != CLC_OK ||
        !sk_X509_push(chain, icert) || !X509_up_ref(icert) ||
        kv_version_make(cert, chain, key, &ver, &ei) != CLC_OK) {
        emu_reply_azure_error(r, 500, "InternalError", "seed: %s", ei.msg);
        goto out;
    }
    kv_new_id(ver->id);
    ver->created = ver->updated = now;
    ver->exportable = kv_policy_exportable(pol);
    snprintf(ver->content_type, sizeof ver->content_type, "%s", kv_policy_content_type(pol));
    if (tags != NULL) {
        cJSON_Delete(ver->tags);
        ver->tags = cJSON_Duplicate(tags, 1);
        if (ver->tags == NULL)
            ver->tags = cJSON_CreateObject();
    }
    pthread_mutex_lock(&v->mu);
    c = kv_table_get(&v->live, name);
    if (kv_table_get(&v->deleted, name) != NULL) {
        kv_fault(&f, 409, "Conflict", NULL, "certificate %s is deleted (recover or purge it)",
                 name);
    } else if (c != NULL && c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS) {
        kv_fault(&f, 409, "Conflict", NULL, "certificate %s has a pending operation", name);
    } else {
        if (c == NULL && (c = kv_cert_new(name)) != NULL) {
            made = 1;
            if (kv_table_insert(&v->live, c) != CLC_OK) {
                kv_cert_free(c);
                c = NULL;
            }
        }
        if (c == NULL || kv_cert_add_version(c, ver) != CLC_OK) {
            kv_fault(&f, 500, "InternalError", NULL, "out of memory");
        } else {
            if (made)
                c->policy_created = now;
            cJSON_Delete(c->policy);
            c->policy = pol;
            c->policy_updated = now;
            pol = NULL;
            kv_persist(v, c, NULL);
            kv_emit_new_version(v, c, ver);
            doc = kv_bundle_json(v, c, ver, 1);
            ver = NULL;
        }
    }
    pthread_mutex_unlock(&v->mu);
    if (f.status) {
        emu_reply_azure_error(r, f.status, f.code, "%s", f.msg);
    } else if (doc == NULL) {
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    } else {
        emu_reply_json(r, 201, doc, NULL);
        /* Seeding may put a version past its thresholds already. */
        emu_tick(r->emu);
    }
out:
    cJSON_Delete(doc);
    kv_version_free(ver);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ikey);
    X509_free(cert);
    X509_free(icert);
    sk_X509_pop_free(chain, X509_free);
    cJSON_Delete(pol);
    cJSON_Delete(body);
}

static const struct emu_route control_routes[] = {
    {"GET", "/control/keyvault/issuer", h_issuer},
    {"POST", "/control/keyvault/{vault}/seed", h_seed},
};

static void reset_vaults(struct emu *e, void *ctx)
{
    struct kv_service *s = ctx;

    (void)e;
    for (size_t i = 0; i < s->nvaults; i++) {
        struct kv_vault *v = s->vaults[i];
        pthread_mutex_lock(&v->mu);
        for (size_t j = 0; j < v->live.n; j++)
            kv_unpersist(v, v->live.items[j]->lname);
        for (size_t j = 0; j < v->deleted.n; j++)
            kv_unpersist(v, v->deleted.items[j]->lname);
        kv_table_clear(&v->live);
        kv_table_clear(&v->deleted);
        pthread_mutex_unlock(&v->mu);
    }
}

static cJSON *dump_vaults(struct emu *e, void *ctx)
{
    struct kv_service *s = ctx;
    cJSON *all = cJSON_CreateObject();

    (void)e;
    for (size_t i = 0; all != NULL && i < s->nvaults; i++) {
        struct kv_vault *v = s->vaults[i];
        cJSON *o = cJSON_AddObjectToObject(all, v->name);
        cJSON *names = o ? cJSON_AddArrayToObject(o, "certificates") : NULL;
        int ok = names != NULL && clc_json_add_str(o, "url", v->base) == CLC_OK;
        pthread_mutex_lock(&v->mu);
        ok = ok && clc_json_add_int(o, "count", (int64_t)v->live.n) == CLC_OK &&
             clc_json_add_int(o, "deleted", (int64_t)v->deleted.n) == CLC_OK;
        for (size_t j = 0; ok && j < v->live.n && j < DUMP_NAMES_MAX; j++) {
            const struct kv_cert *c = v->live.items[j];
            cJSON *it = cJSON_CreateObject();
            ok = it != NULL && cJSON_AddItemToArray(names, it) &&
                 clc_json_add_str(it, "name", c->name) == CLC_OK &&
                 clc_json_add_int(it, "versions", (int64_t)c->nvers) == CLC_OK &&
                 clc_json_add_bool(it, "pending",
                                   c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS) ==
                     CLC_OK;
        }
        pthread_mutex_unlock(&v->mu);
        if (!ok) {
            cJSON_Delete(all);
            all = NULL;
        }
    }
    return all;
}

enum clc_err kv_control_mount(struct kv_service *s, struct clc_errinfo *ei)
{
    enum clc_err rc = issuer_setup(s, ei);

    if (rc != CLC_OK)
        return clc_err_wrap(ei, rc, "test issuer");
    rc = emu_control_add_routes(s->e, "keyvault", control_routes,
                                sizeof control_routes / sizeof control_routes[0], s);
    if (rc == CLC_OK)
        rc = emu_control_register(s->e, "keyvault", reset_vaults, dump_vaults, s);
    if (rc == CLC_OK)
        rc = emu_on_tick(s->e, on_tick, s);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "cannot register the control routes and hooks");
    return CLC_OK;
}
