/* The emulated directory: identities and their roles, the tenant, the token
 * signing key; minting and verifying access tokens. Persisted in the data dir
 * so that a restarted emulator keeps its tenant, secrets and key. */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include "core/b64.h"
#include "core/file.h"
#include "core/json.h"
#include "core/rand.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "emulator/directory.h"
#include "emulator/token_cache.h"
#include "emulator/identity.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define DIR_MAX_IDS 64
#define DIR_SECRET_MAX 128
#define DIR_SUBJECT_MAX 256
#define DIR_CERT_MAX (64 * 1024)
#define DIR_DOC_NAME "directory"
#define DIR_KEY_FILE "entra-token-key.pem"

struct dir_identity {
    struct emu_principal p;
    char secret[DIR_SECRET_MAX];
    char fed_subject[DIR_SUBJECT_MAX];
    char *cert_pem; /* registered certificate for client assertions, or NULL */
    char x5t[64];
    EVP_PKEY *cert_pub;
};

struct emu_directory {
    struct emu *e;
    /* Guards the identities' certificates (registered at run time) and saving;
     * our own lock rather than the store lock, because other services call
     * emu_auth_verify and may hold that one. */
    pthread_mutex_t mu;
    char tenant[40];
    char managed[64];
    char identity_header[65];
    char issuer[96];
    struct dir_identity ids[DIR_MAX_IDS];
    size_t nids;
    struct clc_signer *key;
    char kid[64];
    struct emu_arc *arc;
    struct emu_token_cache *tokens; /* verified tokens (token_cache.h) */
};

static const struct {
    unsigned bit;
    const char *name;
} role_names[] = {
    {EMU_ROLE_KV_CERTIFICATES_OFFICER, "Key Vault Certificates Officer"},
    {EMU_ROLE_KV_SECRETS_USER, "Key Vault Secrets User"},
    {EMU_ROLE_KV_READER, "Key Vault Reader"},
    {EMU_ROLE_QUEUE_DATA_CONTRIBUTOR, "Storage Queue Data Contributor"},
    {EMU_ROLE_MONITORING_METRICS_PUBLISHER, "Monitoring Metrics Publisher"},
    {EMU_ROLE_DNS_ZONE_CONTRIBUTOR, "DNS Zone Contributor"},
    {EMU_ROLE_BLOB_DATA_CONTRIBUTOR, "Storage Blob Data Contributor"},
    {EMU_ROLE_EVENTGRID_DATA_SENDER, "EventGrid Data Sender"},
    {EMU_ROLE_LOG_ANALYTICS_READER, "Log Analytics Reader"},
    {EMU_ROLE_KV_SECRETS_OFFICER, "Key Vault Secrets Officer"},
    {EMU_ROLE_ADMIN, "admin"},
};
#define NROLES (sizeof role_names / sizeof role_names[0])

const char *emu_role_name(unsigned role)
{
    for (size_t i = 0; i < NROLES; i++)
        if (role_names[i].bit == role)
            return role_names[i].name;
    return "unknown";
}

unsigned emu_role_parse(const char *name)
{
    if (!name)
        return 0;
    for (size_t i = 0; i < NROLES; i++)
        if (strcasecmp(role_names[i].name, name) == 0)
            return role_names[i].bit;
    return 0;
}

int emu_principal_has(const struct emu_principal *p, unsigned mask)
{
    if (!p)
        return 0;
    if (p->roles & EMU_ROLE_ADMIN)
        return 1;
    return (p->roles & mask) != 0;
}

/* ---- small helpers ---- */

static int copy_str(char *dst, size_t dstlen, const char *src)
{
    size_t n = strlen(src);
    if (n >= dstlen)
        return 0;
    memcpy(dst, src, n + 1);
    return 1;
}

/* Client ids, object ids, tenant ids: uuid-like text that is safe in paths. */
static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 39)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-'))
            return 0;
    }
    return 1;
}

/* Entra client secrets are 40 characters from this alphabet. */
static void gen_secret(char *out, size_t n)
{
    static const char alpha[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
    for (size_t i = 0; i < n; i++)
        out[i] = alpha[clc_rand_below(sizeof alpha - 1)];
    out[n] = '\0';
}

static enum clc_err ident_set_cert(struct dir_identity *id, const char *pem, size_t len,
                                   struct clc_errinfo *ei)
{
    enum clc_err err;
    STACK_OF(X509) *chain = NULL;
    char *x5t = NULL;
    char *copy = NULL;
    EVP_PKEY *pub = NULL;

    if (len == 0 || len > DIR_CERT_MAX) {
        err = clc_errf(ei, CLC_ERR_PARSE, "certificate of '%s': empty or over %d bytes", id->p.name,
                       DIR_CERT_MAX);
        goto out;
    }
    err = clc_x509_parse_pem_chain(pem, len, &chain, ei);
    if (err)
        goto out;
    if (sk_X509_num(chain) < 1) {
        err = clc_errf(ei, CLC_ERR_PARSE, "certificate of '%s': no PEM certificate", id->p.name);
        goto out;
    }
    X509 *leaf = sk_X509_value(chain, 0);
    err = clc_x509_x5t(leaf, &x5t);
    if (err)
        goto out;
    pub = X509_get_pubkey(leaf);
    copy = malloc(len + 1);
    if (!pub || !copy || strlen(x5t) >= sizeof id->x5t) {
        err = clc_errf(ei, pub && copy ? CLC_ERR_INTERNAL : CLC_ERR_NOMEM,
                       "certificate of '%s': cannot keep it", id->p.name);
        goto out;
    }
    memcpy(copy, pem, len);
    copy[len] = '\0';
    free(id->cert_pem);
    EVP_PKEY_free(id->cert_pub);
    id->cert_pem = copy;
    id->cert_pub = pub;
    copy = NULL;
    pub = NULL;
    memcpy(id->x5t, x5t, strlen(x5t) + 1);
out:
    sk_X509_pop_free(chain, X509_free);
    free(x5t);
    free(copy);
    EVP_PKEY_free(pub);
    return err;
}

static const char *json_str_or(const cJSON *obj, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : dflt;
}

/* One identity from a config entry or the saved document. Fields: name,
 * client_id, client_secret, object_id, roles[], certificate (PEM text),
 * certificate_file (PEM path, config only), federated_subject. Absent ids
 * and secrets are generated. */
static enum clc_err ident_parse(struct emu_directory *d, const cJSON *obj, const char *name,
                                struct clc_errinfo *ei)
{
    enum clc_err err = CLC_OK;
    char *pem = NULL;
    size_t pemlen = 0;

    if (!cJSON_IsObject(obj))
        return clc_errf(ei, CLC_ERR_CONFIG, "identities: each entry must be an object");
    if (d->nids >= DIR_MAX_IDS)
        return clc_errf(ei, CLC_ERR_LIMIT, "identities: more than %d", DIR_MAX_IDS);
    struct dir_identity *id = &d->ids[d->nids];
    memset(id, 0, sizeof *id);
    if (!name)
        name = json_str_or(obj, "name", NULL);
    if (!name || !*name || !copy_str(id->p.name, sizeof id->p.name, name))
        return clc_errf(ei, CLC_ERR_CONFIG, "identities: 'name' missing or over %zu chars",
                        sizeof id->p.name - 1);
    for (size_t i = 0; i < d->nids; i++)
        if (strcmp(d->ids[i].p.name, name) == 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "identities: '%s' given twice", name);

    const char *cid = json_str_or(obj, "client_id", NULL);
    const char *oid = json_str_or(obj, "object_id", NULL);
    const char *sec = json_str_or(obj, "client_secret", NULL);
    const char *sub = json_str_or(obj, "federated_subject", NULL);
    if (cid && (!id_ok(cid) || !copy_str(id->p.client_id, sizeof id->p.client_id, cid)))
        return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': client_id is not an id", name);
    if (!cid)
        clc_rand_uuid(id->p.client_id);
    if (oid && (!id_ok(oid) || !copy_str(id->p.object_id, sizeof id->p.object_id, oid)))
        return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': object_id is not an id", name);
    if (!oid)
        clc_rand_uuid(id->p.object_id);
    if (sec && (strlen(sec) < 16 || !copy_str(id->secret, sizeof id->secret, sec)))
        return clc_errf(ei, CLC_ERR_CONFIG,
                        "identity '%s': client_secret must have 16 to %zu characters", name,
                        sizeof id->secret - 1);
    if (!sec)
        gen_secret(id->secret, 40);
    if (sub && !copy_str(id->fed_subject, sizeof id->fed_subject, sub))
        return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': federated_subject too long", name);

    const cJSON *roles = cJSON_GetObjectItemCaseSensitive(obj, "roles");
    const cJSON *r;
    if (roles && !cJSON_IsArray(roles))
        return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': roles must be an array", name);
    cJSON_ArrayForEach(r, roles)
    {
        unsigned bit = cJSON_IsString(r) ? emu_role_parse(r->valuestring) : 0;
        if (!bit)
            return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': unknown role '%s'", name,
                            cJSON_IsString(r) ? r->valuestring : "(not a string)");
        id->p.roles |= bit;
    }
    for (size_t i = 0; i < d->nids; i++)
        if (strcmp(d->ids[i].p.client_id, id->p.client_id) == 0)
            return clc_errf(ei, CLC_ERR_CONFIG, "identity '%s': client_id used twice", name);

    const char *cert = json_str_or(obj, "certificate", NULL);
    const char *cert_file = json_str_or(obj, "certificate_file", NULL);
    /* The identity counts from here on, so that its certificate is freed. */
    d->nids++;
    if (cert) {
        err = ident_set_cert(id, cert, strlen(cert), ei);
    } else if (cert_file) {
        err = clc_file_read(cert_file, DIR_CERT_MAX, &pem, &pemlen, ei);
        if (!err)
            err = ident_set_cert(id, pem, pemlen, ei);
    }
    if (err)
        clc_err_wrap(ei, CLC_ERR_CONFIG, "identity '%s'", name);
    free(pem);
    return err ? CLC_ERR_CONFIG : CLC_OK;
}

static enum clc_err dir_defaults(struct emu_directory *d, struct clc_errinfo *ei)
{
    static const struct {
        const char *name;
        const char *roles[6];
    } defs[] = {
        /* The worker's roles (docs/operations.md), dead-letter blobs included. */
        {"renewer",
         {"Key Vault Certificates Officer", "Storage Queue Data Contributor",
          "Storage Blob Data Contributor", "Monitoring Metrics Publisher", "DNS Zone Contributor",
          NULL}},
        {"sync", {"Key Vault Secrets User", NULL}},
        {"reader", {"Key Vault Reader", NULL}},
        {"admin", {"admin", NULL}},
    };
    enum clc_err err = CLC_OK;
    for (size_t i = 0; i < sizeof defs / sizeof defs[0] && !err; i++) {
        cJSON *obj = cJSON_CreateObject();
        cJSON *roles = cJSON_AddArrayToObject(obj, "roles");
        char sub[128];
        snprintf(sub, sizeof sub, "system:serviceaccount:certlc:%s", defs[i].name);
        if (!obj || !roles || clc_json_add_str(obj, "federated_subject", sub)) {
            cJSON_Delete(obj);
            return clc_errf(ei, CLC_ERR_NOMEM, "default identities");
        }
        for (size_t j = 0; defs[i].roles[j]; j++)
            cJSON_AddItemToArray(roles, cJSON_CreateString(defs[i].roles[j]));
        err = ident_parse(d, obj, defs[i].name, ei);
        cJSON_Delete(obj);
    }
    return err;
}

/* Fills tenant, identities and the default managed identity from a
 * document: the saved one (saved = 1) or the emulator config. */
static enum clc_err dir_from_doc(struct emu_directory *d, const cJSON *doc, int saved,
                                 struct clc_errinfo *ei)
{
    enum clc_err err = CLC_OK;
    const char *tenant = json_str_or(doc, "tenant", NULL);
    const char *managed = json_str_or(doc, "managed_identity", NULL);
    const char *hdr = saved ? json_str_or(doc, "identity_header", NULL) : NULL;
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(doc, "identities");

    if (tenant && (!id_ok(tenant) || !copy_str(d->tenant, sizeof d->tenant, tenant)))
        return clc_errf(ei, CLC_ERR_CONFIG, "tenant: '%s' is not an id", tenant);
    if (!tenant)
        clc_rand_uuid(d->tenant);
    if (!copy_str(d->managed, sizeof d->managed, managed ? managed : "renewer"))
        return clc_errf(ei, CLC_ERR_CONFIG, "managed_identity: name too long");
    if (hdr && strlen(hdr) == 64)
        memcpy(d->identity_header, hdr, 65);
    else
        clc_rand_hex(d->identity_header, 32);

    if (!ids) {
        err = dir_defaults(d, ei);
    } else if (cJSON_IsArray(ids)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, ids)
        {
            if ((err = ident_parse(d, it, NULL, ei)))
                break;
        }
    } else if (cJSON_IsObject(ids)) {
        const cJSON *it;
        cJSON_ArrayForEach(it, ids)
        {
            if ((err = ident_parse(d, it, it->string, ei)))
                break;
        }
    } else {
        err = clc_errf(ei, CLC_ERR_CONFIG, "identities: expected an array or object");
    }
    if (err)
        return err;
    struct emu_principal p;
    if (d->nids > 0 && !emu_directory_find_mi(d, NULL, NULL, NULL, &p)) {
        if (managed)
            return clc_errf(ei, CLC_ERR_CONFIG, "managed_identity: no identity named '%s'",
                            managed);
        /* No "renewer" among configured identities: the first one serves. */
        memcpy(d->managed, d->ids[0].p.name, sizeof d->managed);
    }
    return CLC_OK;
}

/* The saved document holds secrets: the data dir is private (0700). */
static cJSON *dir_to_doc(struct emu_directory *d)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *ids = cJSON_AddArrayToObject(doc, "identities");
    if (!doc || !ids || clc_json_add_str(doc, "tenant", d->tenant) ||
        clc_json_add_str(doc, "managed_identity", d->managed) ||
        clc_json_add_str(doc, "identity_header", d->identity_header))
        goto fail;
    for (size_t i = 0; i < d->nids; i++) {
        const struct dir_identity *id = &d->ids[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            goto fail;
        cJSON_AddItemToArray(ids, o);
        cJSON *roles = cJSON_AddArrayToObject(o, "roles");
        if (!roles || clc_json_add_str(o, "name", id->p.name) ||
            clc_json_add_str(o, "client_id", id->p.client_id) ||
            clc_json_add_str(o, "object_id", id->p.object_id) ||
            clc_json_add_str(o, "client_secret", id->secret))
            goto fail;
        if (id->fed_subject[0] && clc_json_add_str(o, "federated_subject", id->fed_subject))
            goto fail;
        if (id->cert_pem && clc_json_add_str(o, "certificate", id->cert_pem))
            goto fail;
        for (size_t j = 0; j < NROLES; j++)
            if ((id->p.roles & role_names[j].bit) &&
                !cJSON_AddItemToArray(roles, cJSON_CreateString(role_names[j].name)))
                goto fail;
    }
    return doc;
fail:
    cJSON_Delete(doc);
    return NULL;
}

/* Caller holds d->mu (or is the only thread, at start). */
static enum clc_err dir_save(struct emu_directory *d, struct clc_errinfo *ei)
{
    cJSON *doc = dir_to_doc(d);
    if (!doc)
        return clc_errf(ei, CLC_ERR_NOMEM, "saving the directory");
    enum clc_err err = emu_store_save(d->e, DIR_DOC_NAME, doc, ei);
    cJSON_Delete(doc);
    return err;
}

static enum clc_err dir_key(struct emu_directory *d, struct clc_errinfo *ei)
{
    enum clc_err err;
    char path[4096];
    const char *dir = emu_data_dir(d->e);
    cJSON *jwk = NULL;
    char *txt = NULL;
    char *kid = NULL;
    struct stat st;

    if (dir) {
        if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, DIR_KEY_FILE) >= sizeof path)
            return clc_errf(ei, CLC_ERR_LIMIT, "data dir path too long");
        if (stat(path, &st) == 0) {
            err = clc_signer_load_pem(path, &d->key, ei);
        } else {
            err = clc_signer_generate("RSA", 2048, &d->key, ei);
            if (!err)
                err = clc_signer_save_pem(d->key, path, ei);
        }
    } else {
        err = clc_signer_generate("RSA", 2048, &d->key, ei);
    }
    if (err)
        goto out;
    if (strcmp(clc_signer_alg(d->key), "RS256") != 0) {
        err = clc_errf(ei, CLC_ERR_CONFIG, "token signing key %s is not RSA", path);
        goto out;
    }
    /* kid = the key's RFC 7638 thumbprint. */
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    err = clc_signer_public_jwk(d->key, &jwk, ei);
    if (err)
        goto out;
    txt = clc_json_print(jwk);
    if (!txt || !EVP_Digest(txt, strlen(txt), md, &mdlen, EVP_sha256(), NULL) ||
        clc_b64url_encode(md, mdlen, &kid, NULL) || strlen(kid) >= sizeof d->kid) {
        err = clc_errf(ei, CLC_ERR_CRYPTO, "token signing key thumbprint");
        goto out;
    }
    memcpy(d->kid, kid, strlen(kid) + 1);
out:
    cJSON_Delete(jwk);
    free(txt);
    free(kid);
    return err;
}

enum clc_err emu_directory_new(struct emu *e, struct emu_directory **out, struct clc_errinfo *ei)
{
    enum clc_err err;
    cJSON *saved = NULL;
    *out = NULL;

    struct emu_directory *d = calloc(1, sizeof *d);
    if (!d)
        return clc_errf(ei, CLC_ERR_NOMEM, "directory");
    d->e = e;
    pthread_mutex_init(&d->mu, NULL);
    d->tokens = emu_token_cache_new();
    if (!d->tokens) {
        pthread_mutex_destroy(&d->mu);
        free(d);
        return clc_errf(ei, CLC_ERR_NOMEM, "directory");
    }

    struct clc_errinfo lei = {0};
    err = emu_store_load(e, DIR_DOC_NAME, &saved, &lei);
    if (err == CLC_OK) {
        err = dir_from_doc(d, saved, 1, ei);
        if (err)
            clc_err_wrap(ei, err, "saved directory");
    } else if (err == CLC_ERR_NOT_FOUND) {
        const cJSON *cfg = emu_config(e);
        cJSON *empty = cfg ? NULL : cJSON_CreateObject();
        err = dir_from_doc(d, cfg ? cfg : empty, 0, ei);
        cJSON_Delete(empty);
        if (!err)
            err = dir_save(d, ei);
    } else {
        if (ei)
            *ei = lei;
    }
    if (err)
        goto out;
    snprintf(d->issuer, sizeof d->issuer, "https://sts.windows.net/%s/", d->tenant);
    err = dir_key(d, ei);
    if (err)
        goto out;
    err = emu_arc_new(e, &d->arc, ei);
    if (err)
        goto out;
    *out = d;
    d = NULL;
out:
    cJSON_Delete(saved);
    emu_directory_free(d);
    return err;
}

void emu_directory_free(struct emu_directory *d)
{
    if (!d)
        return;
    for (size_t i = 0; i < d->nids; i++) {
        free(d->ids[i].cert_pem);
        EVP_PKEY_free(d->ids[i].cert_pub);
    }
    OPENSSL_cleanse(d->ids, sizeof d->ids);
    OPENSSL_cleanse(d->identity_header, sizeof d->identity_header);
    clc_signer_free(d->key);
    emu_arc_free(d->arc);
    emu_token_cache_free(d->tokens);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

const char *emu_directory_tenant(const struct emu_directory *d)
{
    return d ? d->tenant : NULL;
}

const char *emu_directory_identity_header(const struct emu_directory *d)
{
    return d ? d->identity_header : NULL;
}

struct emu *emu_directory_emu(const struct emu_directory *d)
{
    return d ? d->e : NULL;
}

struct emu_arc *emu_directory_arc(struct emu_directory *d)
{
    return d ? d->arc : NULL;
}

const char *emu_directory_arc_key_dir(const struct emu_directory *d)
{
    return d ? emu_arc_key_dir(d->arc) : NULL;
}

cJSON *emu_directory_endpoints(const struct emu_directory *d)
{
    cJSON *all = cJSON_CreateObject();
    if (!all || !d)
        return all;
    for (size_t i = 0; i < d->nids; i++) {
        const struct dir_identity *id = &d->ids[i];
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToObject(all, id->p.name, o) ||
            clc_json_add_str(o, "client_id", id->p.client_id) ||
            clc_json_add_str(o, "client_secret", id->secret) ||
            clc_json_add_str(o, "object_id", id->p.object_id) ||
            (id->fed_subject[0] && clc_json_add_str(o, "federated_subject", id->fed_subject))) {
            cJSON_Delete(all);
            return NULL;
        }
    }
    return all;
}

/* ---- lookups ---- */

static struct dir_identity *find_by(struct emu_directory *d, size_t off, const char *value)
{
    if (!value)
        return NULL;
    for (size_t i = 0; i < d->nids; i++) {
        const char *field = (const char *)&d->ids[i] + off;
        if (strcasecmp(field, value) == 0)
            return &d->ids[i];
    }
    return NULL;
}

#define BY_CLIENT_ID offsetof(struct dir_identity, p.client_id)
#define BY_OBJECT_ID offsetof(struct dir_identity, p.object_id)
#define BY_NAME offsetof(struct dir_identity, p.name)

int emu_directory_find(struct emu_directory *d, const char *client_id, struct emu_principal *out)
{
    memset(out, 0, sizeof *out);
    struct dir_identity *id = find_by(d, BY_CLIENT_ID, client_id);
    if (!id)
        return 0;
    *out = id->p;
    return 1;
}

int emu_directory_find_mi(struct emu_directory *d, const char *client_id, const char *object_id,
                          const char *msi_res_id, struct emu_principal *out)
{
    struct dir_identity *id = NULL;
    memset(out, 0, sizeof *out);
    if (client_id) {
        id = find_by(d, BY_CLIENT_ID, client_id);
    } else if (object_id) {
        id = find_by(d, BY_OBJECT_ID, object_id);
    } else if (msi_res_id) {
        /* .../providers/Microsoft.ManagedIdentity/userAssignedIdentities/<name> */
        static const char seg[] = "/userAssignedIdentities/";
        const char *slash = strrchr(msi_res_id, '/');
        size_t at = slash ? (size_t)(slash - msi_res_id) + 1 : 0;
        if (at >= sizeof seg - 1 &&
            strncasecmp(msi_res_id + at - (sizeof seg - 1), seg, sizeof seg - 1) == 0)
            id = find_by(d, BY_NAME, slash + 1);
    } else {
        id = find_by(d, BY_NAME, d->managed);
    }
    if (!id)
        return 0;
    *out = id->p;
    return 1;
}

int emu_directory_secret_ok(struct emu_directory *d, const char *client_id, const char *secret,
                            size_t len)
{
    struct dir_identity *id = find_by(d, BY_CLIENT_ID, client_id);
    if (!id || !secret)
        return 0;
    size_t n = strlen(id->secret);
    return n == len && CRYPTO_memcmp(id->secret, secret, n) == 0;
}

EVP_PKEY *emu_directory_cert_key(struct emu_directory *d, const char *client_id, const char *x5t,
                                 int *registered)
{
    EVP_PKEY *k = NULL;
    *registered = 0;
    pthread_mutex_lock(&d->mu);
    struct dir_identity *id = find_by(d, BY_CLIENT_ID, client_id);
    if (id && id->cert_pub) {
        *registered = 1;
        if (x5t && strcmp(id->x5t, x5t) == 0 && EVP_PKEY_up_ref(id->cert_pub))
            k = id->cert_pub;
    }
    pthread_mutex_unlock(&d->mu);
    return k;
}

int emu_directory_fed_subject(struct emu_directory *d, const char *client_id, char *out,
                              size_t outlen)
{
    struct dir_identity *id = find_by(d, BY_CLIENT_ID, client_id);
    if (!id || !id->fed_subject[0] || !copy_str(out, outlen, id->fed_subject))
        return 0;
    return 1;
}

enum clc_err emu_directory_register_cert(struct emu_directory *d, const char *client_id,
                                         const char *pem, size_t len, struct clc_errinfo *ei)
{
    enum clc_err err;
    pthread_mutex_lock(&d->mu);
    struct dir_identity *id = find_by(d, BY_CLIENT_ID, client_id);
    if (!id) {
        err = clc_errf(ei, CLC_ERR_NOT_FOUND, "no application with client id '%s'", client_id);
        goto out;
    }
    err = ident_set_cert(id, pem, len, ei);
    if (!err)
        err = dir_save(d, ei);
out:
    pthread_mutex_unlock(&d->mu);
    return err;
}

const struct clc_signer *emu_directory_key(const struct emu_directory *d)
{
    return d->key;
}

const char *emu_directory_kid(const struct emu_directory *d)
{
    return d->kid;
}

const char *emu_directory_issuer(const struct emu_directory *d)
{
    return d->issuer;
}

struct emu_token_cache *emu_directory_token_cache(struct emu_directory *d)
{
    return d->tokens;
}
