/* New certificate versions: create (issuer Self completes at once; Unknown
 * leaves an operation whose CSR the vault made, its key kept inside), the
 * pending operation (get, cancel, delete), merge of the CA's chain, and
 * import of PKCS#12 or PEM. Keys are made outside the vault lock; the state
 * is re-checked when the result is installed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/rand.h"
#include "emulator/keyvault.h"
#include "emulator/state.h"

#define X5C_MAX 10

/* ---- helpers ---- */

/* t plus whole calendar months (day clamped to the month's end). */
static int64_t add_months(int64_t t, int64_t months)
{
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    /* civil date from days since 1970-01-01 (Howard Hinnant's algorithm) */
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp < 10 ? mp + 3 : mp - 9;
    int64_t total, dim;

    y += m <= 2;
    total = y * 12 + (m - 1) + months;
    y = total / 12;
    m = total % 12 + 1;
    dim = mdays[m - 1] + (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
    if (d > dim)
        d = dim;
    return clc_time_from_utc((int)y, (int)m, (int)d, (int)(secs / 3600), (int)(secs / 60 % 60),
                             (int)(secs % 60));
}

static const char *status_name(enum kv_op_status s)
{
    return s == KV_OP_COMPLETED ? "completed" : s == KV_OP_CANCELLED ? "cancelled" : "inProgress";
}

cJSON *kv_operation_json(const struct kv_vault *v, const struct kv_cert *c)
{
    const struct kv_pending *p = c->pending;
    cJSON *o = cJSON_CreateObject(), *iss;
    char u[KV_BASE_MAX + KV_NAME_MAX + 32];
    const char *details = p->status == KV_OP_COMPLETED   ? ""
                          : p->status == KV_OP_CANCELLED ? "Pending certificate cancelled."
                                                         : "Pending certificate created. Please "
                                                           "Perform Merge to complete the "
                                                           "request.";
    int ok;

    snprintf(u, sizeof u, "%s/certificates/%s/pending", v->base, c->name);
    ok = o != NULL && clc_json_add_str(o, "id", u) == CLC_OK &&
         (iss = cJSON_AddObjectToObject(o, "issuer")) != NULL &&
         clc_json_add_str(iss, "name", p->issuer) == CLC_OK &&
         clc_json_add_str(o, "csr", p->csr) == CLC_OK &&
         clc_json_add_bool(o, "cancellation_requested", p->cancellation_requested) == CLC_OK &&
         clc_json_add_str(o, "status", status_name(p->status)) == CLC_OK &&
         clc_json_add_str(o, "status_details", details) == CLC_OK &&
         clc_json_add_str(o, "request_id", p->request_id) == CLC_OK &&
         cJSON_AddItemToObject(o, "error", cJSON_CreateNull());
    if (ok && p->status == KV_OP_COMPLETED) {
        snprintf(u, sizeof u, "%s/certificates/%s", v->base, c->name);
        ok = clc_json_add_str(o, "target", u) == CLC_OK;
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void conflict_deleted(struct kv_fault *f, const char *name)
{
    kv_fault(f, 409, "Conflict", NULL,
             "Certificate %s is currently in a deleted but recoverable state, and its name "
             "cannot be reused; in this state, the certificate can only be recovered or purged.",
             name);
}

static void conflict_pending(struct kv_fault *f, const char *name)
{
    kv_fault(f, 409, "Conflict", NULL,
             "There is a pending operation on certificate %s: merge it, or cancel and delete "
             "it, before starting another.",
             name);
}

/* Gets or makes the live certificate for name; NULL on out of memory. */
static struct kv_cert *cert_for(struct kv_vault *v, const char *name, int *created)
{
    struct kv_cert *c = kv_table_get(&v->live, name);

    *created = 0;
    if (c != NULL)
        return c;
    c = kv_cert_new(name);
    if (c == NULL || kv_table_insert(&v->live, c) != CLC_OK) {
        kv_cert_free(c);
        return NULL;
    }
    *created = 1;
    return c;
}

/* A cert made by cert_for that ended up with nothing in it goes again. */
static void drop_if_empty(struct kv_vault *v, struct kv_cert *c)
{
    if (c->nvers == 0 && c->pending == NULL && c->policy == NULL)
        kv_cert_free(kv_table_remove(&v->live, c->lname));
}

static void set_version_meta(struct kv_version *ver, const cJSON *pol, const char *id, int enabled,
                             int64_t now)
{
    memcpy(ver->id, id, KV_VERSION_LEN + 1);
    ver->enabled = enabled;
    ver->created = now;
    ver->updated = now;
    ver->exportable = kv_policy_exportable(pol);
    snprintf(ver->content_type, sizeof ver->content_type, "%s", kv_policy_content_type(pol));
}

/* ---- create ---- */

void kv_h_create(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    const cJSON *pin;
    struct clc_errinfo ei = {0};
    struct kv_attrs at;
    struct kv_fault f = {0};
    struct kv_cert *c;
    struct kv_pending *p = NULL;
    struct kv_version *ver = NULL;
    cJSON *body, *pol = NULL, *doc = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    int self, made = 0;
    int64_t now;
    char loc[KV_BASE_MAX + KV_NAME_MAX + 80];

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    if (!kv_parse_attrs(k->r, body, &at))
        goto out;
    pin = cJSON_GetObjectItemCaseSensitive(body, "policy");
    if (pin != NULL && !cJSON_IsNull(pin) && kv_policy_parse(pin, NULL, &pol, &ei) != CLC_OK) {
        kv_bad(k->r, "Property 'policy' is invalid: %s", ei.msg);
        goto out;
    }
    /* Checks that need the state, before the (slow) key generation. */
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (kv_table_get(&k->v->deleted, name) != NULL) {
        conflict_deleted(&f, name);
    } else if (c != NULL && c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS) {
        conflict_pending(&f, name);
    } else if (pol == NULL && c == NULL) {
        kv_fault(&f, 400, "BadParameter", NULL,
                 "Property 'policy' is required to create a new certificate.");
    } else if (pol == NULL && (pol = cJSON_Duplicate(c->policy, 1)) == NULL) {
        kv_fault(&f, 500, "InternalError", NULL, "out of memory");
    } else if (kv_policy_reuse_key(pol) && c != NULL && kv_cert_latest(c) != NULL &&
               kv_cert_latest(c)->key != NULL && kv_key_matches(pol, kv_cert_latest(c)->key)) {
        key = kv_cert_latest(c)->key;
        EVP_PKEY_up_ref(key);
    }
    pthread_mutex_unlock(&k->v->mu);
    if (f.status) {
        kv_fault_send(k->r, &f);
        goto out;
    }
    self = strcmp(kv_policy_issuer(pol), "Self") == 0;
    if (!self && strcmp(kv_policy_issuer(pol), "Unknown") != 0) {
        char shown[80];
        kv_sanitize(kv_policy_issuer(pol), shown, sizeof shown);
        kv_bad(k->r,
               "Issuer '%s' is not configured in this vault: use 'Self' or 'Unknown' (a CA "
               "outside Key Vault).",
               shown);
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL ||
        (p->tags = at.tags ? cJSON_Duplicate(at.tags, 1) : cJSON_CreateObject()) == NULL) {
        kv_reply(k->r, 500, NULL);
        goto out;
    }
    if ((key == NULL && kv_key_generate(pol, &key, &ei) != CLC_OK) ||
        kv_csr_make(pol, key, &p->csr, &ei) != CLC_OK) {
        kv_error(k->r, 500, "InternalError", NULL, "%s", ei.msg);
        goto out;
    }
    now = emu_now(k->r->emu);
    if (self) {
        int64_t months = 12;
        clc_json_int_opt(cJSON_GetObjectItemCaseSensitive(pol, "x509_props"), "validity_months", 12,
                         &months, NULL);
        if (kv_cert_make(pol, key, now, add_months(now, months), NULL, NULL, 0, &cert, &ei) !=
                CLC_OK ||
            kv_version_make(cert, NULL, key, &ver, &ei) != CLC_OK) {
            kv_error(k->r, 500, "InternalError", NULL, "%s", ei.msg);
            goto out;
        }
    }
    kv_new_id(p->version);
    kv_new_id(p->request_id);
    snprintf(p->issuer, sizeof p->issuer, "%s", kv_policy_issuer(pol));
    p->enabled = at.enabled != 0;
    p->created = now;
    p->status = self ? KV_OP_COMPLETED : KV_OP_IN_PROGRESS;

    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (kv_table_get(&k->v->deleted, name) != NULL) {
        conflict_deleted(&f, name);
    } else if (c != NULL && c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS) {
        conflict_pending(&f, name); /* another create won the race */
    } else if ((c = cert_for(k->v, name, &made)) == NULL ||
               (self && kv_cert_add_version(c, ver) != CLC_OK)) {
        kv_fault(&f, 500, "InternalError", NULL, "out of memory");
        if (c != NULL && made)
            drop_if_empty(k->v, c);
    } else {
        if (made)
            c->policy_created = now;
        cJSON_Delete(c->policy);
        c->policy = pol;
        c->policy_updated = now;
        pol = NULL;
        if (self) {
            set_version_meta(ver, c->policy, p->version, p->enabled, now);
            cJSON_Delete(ver->tags);
            ver->tags = cJSON_Duplicate(p->tags, 1);
            if (ver->tags == NULL)
                ver->tags = cJSON_CreateObject();
            kv_emit_new_version(k->v, c, ver);
            ver = NULL;
        } else {
            p->key = key;
            key = NULL;
        }
        kv_pending_free(c->pending);
        c->pending = p;
        p = NULL;
        kv_persist(k->v, c, NULL);
        doc = kv_operation_json(k->v, c);
        snprintf(loc, sizeof loc, "Location: %s/certificates/%s/pending?api-version=%s", k->v->base,
                 c->name, k->api_version);
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 202, doc, loc);
out:
    kv_version_free(ver);
    X509_free(cert);
    EVP_PKEY_free(key);
    kv_pending_free(p);
    cJSON_Delete(pol);
    cJSON_Delete(body);
}

/* ---- the pending operation ---- */

static void pending_nf(struct kv_fault *f, const char *name)
{
    char shown[140];

    kv_sanitize(name, shown, sizeof shown);
    kv_fault(f, 404, "PendingCertificateNotFound", NULL, "Pending certificate not found: %s",
             shown);
}

void kv_h_pending_get(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL || c->pending == NULL)
        pending_nf(&f, name);
    else
        doc = kv_operation_json(k->v, c);
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

void kv_h_pending_update(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct clc_errinfo ei = {0};
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *body, *doc = NULL;
    int cancel = 0;

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    if (clc_json_bool(body, "cancellation_requested", &cancel, &ei) != CLC_OK) {
        cJSON_Delete(body);
        kv_bad(k->r, "Property 'cancellation_requested' is required: %s", ei.msg);
        return;
    }
    cJSON_Delete(body);
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL || c->pending == NULL) {
        pending_nf(&f, name);
    } else if (c->pending->status != KV_OP_IN_PROGRESS) {
        kv_fault(&f, 403, "Forbidden", NULL, "Pending status must be in progress to allow update.");
    } else {
        if (cancel) {
            /* The pending version and its key are gone for good. */
            c->pending->cancellation_requested = 1;
            c->pending->status = KV_OP_CANCELLED;
            EVP_PKEY_free(c->pending->key);
            c->pending->key = NULL;
            kv_persist(k->v, c, NULL);
        }
        doc = kv_operation_json(k->v, c);
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

void kv_h_pending_delete(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct kv_fault f = {0};
    struct kv_cert *c;
    cJSON *doc = NULL;

    if (!kv_name_ok(k->r, name, "certificate"))
        return;
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL || c->pending == NULL) {
        pending_nf(&f, name);
    } else if ((doc = kv_operation_json(k->v, c)) == NULL) {
        kv_fault(&f, 500, "InternalError", NULL, "out of memory");
    } else {
        kv_pending_free(c->pending);
        c->pending = NULL;
        if (c->nvers == 0) {
            /* Never completed: nothing is left of the certificate. */
            kv_table_remove(&k->v->live, c->lname);
            kv_unpersist(k->v, c->lname);
            kv_cert_free(c);
        } else {
            kv_persist(k->v, c, NULL);
        }
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
}

/* ---- merge ---- */

X509 *kv_x5c_parse(struct kv_x5c_cache *c, const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509 *x = NULL;
    size_t i;

    pthread_mutex_lock(&c->mu);
    for (i = 0; i < KV_X5C_CACHE; i++)
        if (c->e[i].x != NULL && c->e[i].len == len && memcmp(c->e[i].der, der, len) == 0) {
            x = X509_up_ref(c->e[i].x) ? c->e[i].x : NULL;
            pthread_mutex_unlock(&c->mu);
            return x;
        }
    pthread_mutex_unlock(&c->mu);
    /* Parsed outside the lock: a miss costs the same as without a cache. */
    x = d2i_X509(NULL, &p, (long)len);
    ERR_clear_error();
    if (x == NULL || p != der + len) {
        X509_free(x);
        return NULL;
    }
    unsigned char *copy = malloc(len);
    if (copy == NULL || !X509_up_ref(x)) {
        free(copy);
        return x;
    }
    memcpy(copy, der, len);
    pthread_mutex_lock(&c->mu);
    i = c->next;
    c->next = (c->next + 1) % KV_X5C_CACHE;
    free(c->e[i].der);
    X509_free(c->e[i].x);
    c->e[i].der = copy;
    c->e[i].len = len;
    c->e[i].x = x; /* the cache's reference */
    pthread_mutex_unlock(&c->mu);
    return x;
}

void kv_x5c_cache_cleanup(struct kv_x5c_cache *c)
{
    for (size_t i = 0; i < KV_X5C_CACHE; i++) {
        free(c->e[i].der);
        X509_free(c->e[i].x);
    }
    pthread_mutex_destroy(&c->mu);
    memset(c, 0, sizeof *c);
}

/* x5c: leaf first, standard base64 DER each. Replies 400 itself. The
 * certificates after the leaf (the CA chain, the same in every merge) go
 * through the vault service's parse cache. */
static STACK_OF(X509) *
    parse_x5c(struct emu_req *r, struct kv_x5c_cache *cache, const cJSON *body, int64_t now)
{
    const cJSON *x5c = cJSON_GetObjectItemCaseSensitive(body, "x5c"), *it;
    STACK_OF(X509) *sk = NULL;
    int i = 0;

    if (!cJSON_IsArray(x5c) || cJSON_GetArraySize(x5c) == 0 || cJSON_GetArraySize(x5c) > X5C_MAX) {
        kv_bad(r,
               "Property 'x5c' is required: an array of 1 to %d base64 DER certificates, "
               "leaf first.",
               X5C_MAX);
        return NULL;
    }
    sk = sk_X509_new_null();
    if (sk == NULL) {
        kv_reply(r, 500, NULL);
        return NULL;
    }
    cJSON_ArrayForEach(it, x5c)
    {
        unsigned char *der = NULL;
        const unsigned char *pp;
        size_t len = 0;
        X509 *x = NULL;
        int64_t nbf = 0, exp = 0;

        if (!cJSON_IsString(it)) {
            kv_bad(r, "Property 'x5c' has an invalid value: element %d is %s, not a string.", i,
                   clc_json_type_name(it));
            goto fail;
        }
        if (clc_b64_decode(it->valuestring, strlen(it->valuestring), &der, &len) != CLC_OK ||
            len == 0) {
            kv_bad(r, "Property 'x5c' has an invalid value: element %d is not valid base64.", i);
            goto fail;
        }
        if (i > 0) {
            x = kv_x5c_parse(cache, der, len);
        } else {
            pp = der;
            x = d2i_X509(NULL, &pp, (long)len);
            ERR_clear_error();
            if (x != NULL && pp != der + len) {
                X509_free(x);
                x = NULL;
            }
        }
        if (x == NULL) {
            free(der);
            kv_bad(r,
                   "Property 'x5c' has an invalid value: element %d is not a DER X.509 "
                   "certificate.",
                   i);
            goto fail;
        }
        free(der);
        if (!sk_X509_push(sk, x)) {
            X509_free(x);
            kv_reply(r, 500, NULL);
            goto fail;
        }
        if (kv_cert_times(x, &nbf, &exp) != CLC_OK || now < nbf || now > exp) {
            char a[CLC_TIME_STR_MAX] = "?", b[CLC_TIME_STR_MAX] = "?", c[CLC_TIME_STR_MAX] = "?";
            clc_time_fmt_iso8601(nbf, a);
            clc_time_fmt_iso8601(exp, b);
            clc_time_fmt_iso8601(now, c);
            kv_bad(r,
                   "The x509 certificate in x5c[%d] is %s: valid from %s to %s, the time is "
                   "%s.",
                   i, now < nbf ? "not yet valid" : "expired", a, b, c);
            goto fail;
        }
        i++;
    }
    return sk;
fail:
    sk_X509_pop_free(sk, X509_free);
    return NULL;
}

void kv_h_merge(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    struct clc_errinfo ei = {0};
    struct kv_attrs at;
    struct kv_fault f = {0};
    struct kv_cert *c;
    struct kv_version *ver = NULL;
    STACK_OF(X509) *sk = NULL;
    X509 *leaf = NULL;
    cJSON *body, *tags = NULL, *doc = NULL;
    int64_t now = emu_now(k->r->emu);

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    if (!kv_parse_attrs(k->r, body, &at) ||
        (sk = parse_x5c(k->r, &k->v->svc->x5c, body, now)) == NULL)
        goto out;
    leaf = sk_X509_shift(sk);
    if (at.tags != NULL && (tags = cJSON_Duplicate(at.tags, 1)) == NULL) {
        kv_reply(k->r, 500, NULL);
        goto out;
    }
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (c == NULL || c->pending == NULL) {
        pending_nf(&f, name);
    } else if (c->pending->status != KV_OP_IN_PROGRESS) {
        kv_fault(&f, 403, "Forbidden", NULL,
                 "Pending status must be in progress to allow merge: the operation is %s.",
                 status_name(c->pending->status));
    } else if (EVP_PKEY_eq(X509_get0_pubkey(leaf), c->pending->key) != 1) {
        ERR_clear_error();
        kv_fault(&f, 400, "BadParameter", NULL,
                 "Public key from x509 certificate and key of this instance doesn't match");
    } else if (kv_version_make(leaf, sk_X509_num(sk) > 0 ? sk : NULL, c->pending->key, &ver, &ei) !=
                   CLC_OK ||
               kv_cert_add_version(c, ver) != CLC_OK) {
        kv_fault(&f, 500, "InternalError", NULL, "%s", ei.msg[0] ? ei.msg : "out of memory");
    } else {
        struct kv_pending *p = c->pending;
        set_version_meta(ver, c->policy, p->version, at.enabled >= 0 ? at.enabled : p->enabled,
                         now);
        cJSON_Delete(ver->tags);
        ver->tags = tags ? tags : cJSON_Duplicate(p->tags, 1);
        tags = NULL;
        if (ver->tags == NULL)
            ver->tags = cJSON_CreateObject();
        p->status = KV_OP_COMPLETED;
        EVP_PKEY_free(p->key);
        p->key = NULL;
        kv_persist(k->v, c, NULL);
        kv_emit_new_version(k->v, c, ver);
        doc = kv_bundle_json(k->v, c, ver, 1);
        ver = NULL;
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 201, doc, NULL);
out:
    kv_version_free(ver);
    X509_free(leaf);
    sk_X509_pop_free(sk, X509_free);
    cJSON_Delete(tags);
    cJSON_Delete(body);
}

/* ---- import ---- */

void kv_h_import(struct kv_ctx *k)
{
    const char *name = emu_req_param(k->r, "name");
    const char *value = NULL, *pwd = NULL, *ct = NULL;
    const cJSON *pin, *sp;
    struct clc_errinfo ei = {0};
    struct kv_attrs at;
    struct kv_fault f = {0};
    struct kv_cert *c;
    struct kv_version *ver = NULL;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    cJSON *body, *derived = NULL, *pol = NULL, *doc = NULL;
    int was_pem = 0, exportable = 1, made = 0;
    int64_t now = emu_now(k->r->emu);

    if (!kv_name_ok(k->r, name, "certificate") || (body = kv_body(k->r)) == NULL)
        return;
    if (!kv_parse_attrs(k->r, body, &at))
        goto out;
    pin = cJSON_GetObjectItemCaseSensitive(body, "policy");
    if (pin != NULL && !cJSON_IsNull(pin) && !cJSON_IsObject(pin)) {
        kv_bad(k->r, "Property 'policy' must be an object.");
        goto out;
    }
    sp = cJSON_GetObjectItemCaseSensitive(pin, "secret_props");
    if (clc_json_str(body, "value", &value, &ei) != CLC_OK ||
        clc_json_str_opt(body, "pwd", NULL, &pwd, &ei) != CLC_OK ||
        (sp != NULL && clc_json_str_opt(sp, "contentType", NULL, &ct, &ei) != CLC_OK) ||
        clc_json_bool_opt(cJSON_GetObjectItemCaseSensitive(pin, "key_props"), "exportable", 1,
                          &exportable, &ei) != CLC_OK) {
        kv_bad(k->r, "The import request is invalid: %s", ei.msg);
        goto out;
    }
    if (kv_import_parse(value, pwd, ct, &key, &cert, &chain, &was_pem, &ei) != CLC_OK) {
        kv_bad(k->r, "%s", ei.msg);
        goto out;
    }
    if (ct == NULL)
        ct = was_pem ? KV_CT_PEM : KV_CT_PKCS12;
    if (kv_policy_from_cert(cert, key, ct, exportable, "Unknown", &derived, &ei) != CLC_OK ||
        kv_policy_parse(pin ? pin : derived, derived, &pol, &ei) != CLC_OK) {
        kv_bad(k->r, "The policy for the imported certificate is invalid: %s", ei.msg);
        goto out;
    }
    if (!kv_key_matches(pol, key)) {
        kv_bad(k->r, "The policy's key properties do not match the imported key.");
        goto out;
    }
    if (kv_version_make(cert, sk_X509_num(chain) > 0 ? chain : NULL, key, &ver, &ei) != CLC_OK) {
        kv_error(k->r, 500, "InternalError", NULL, "%s", ei.msg);
        goto out;
    }
    kv_new_id(ver->id);
    set_version_meta(ver, pol, ver->id, at.enabled != 0, now);
    if (at.tags != NULL) {
        cJSON_Delete(ver->tags);
        if ((ver->tags = cJSON_Duplicate(at.tags, 1)) == NULL) {
            kv_reply(k->r, 500, NULL);
            goto out;
        }
    }
    pthread_mutex_lock(&k->v->mu);
    c = kv_table_get(&k->v->live, name);
    if (kv_table_get(&k->v->deleted, name) != NULL) {
        conflict_deleted(&f, name);
    } else if (c != NULL && c->pending != NULL && c->pending->status == KV_OP_IN_PROGRESS) {
        conflict_pending(&f, name);
    } else if ((c = cert_for(k->v, name, &made)) == NULL || kv_cert_add_version(c, ver) != CLC_OK) {
        kv_fault(&f, 500, "InternalError", NULL, "out of memory");
        if (c != NULL && made)
            drop_if_empty(k->v, c);
    } else {
        if (made)
            c->policy_created = now;
        cJSON_Delete(c->policy);
        c->policy = pol;
        c->policy_updated = now;
        pol = NULL;
        kv_persist(k->v, c, NULL);
        kv_emit_new_version(k->v, c, ver);
        doc = kv_bundle_json(k->v, c, ver, 1);
        ver = NULL;
    }
    pthread_mutex_unlock(&k->v->mu);
    kv_finish(k->r, &f, 200, doc, NULL);
out:
    kv_version_free(ver);
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(chain, X509_free);
    cJSON_Delete(derived);
    cJSON_Delete(pol);
    cJSON_Delete(body);
}
