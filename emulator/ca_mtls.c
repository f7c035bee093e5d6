/* TLS client certificates as identities on the emulated CA: reads
 * ca.client_auth, writes the bundle the "ca" listener verifies client
 * certificates with, and maps a verified certificate to a CA account. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "crypto/x509.h"
#include "emulator/ca.h"
#include "emulator/state.h"

#define BUNDLE_FILE "client-auth-cas.pem"
#define CA_FILE_MAX ((size_t)1024 * 1024)
#define MAX_EXT_CERTS 32

/* ---- setup ---- */

static X509_STORE *store_of(X509 *const *certs, size_t n)
{
    X509_STORE *st = X509_STORE_new();

    for (size_t i = 0; st != NULL && i < n; i++) {
        if (X509_STORE_add_cert(st, certs[i]) != 1) {
            X509_STORE_free(st);
            st = NULL;
        }
    }
    return st;
}

/* The configured client-auth CA: every certificate of the PEM file is
 * trusted (the root and any intermediates clients do not send). */
static enum clc_err load_ext(struct emu_ca *ca, const char *path, struct clc_errinfo *ei)
{
    STACK_OF(X509) **out = &ca->ext_certs;
    char *text = NULL;
    size_t len = 0;
    enum clc_err rc;

    *out = NULL;
    rc = clc_file_read(path, CA_FILE_MAX, &text, &len, ei);
    if (rc == CLC_OK)
        rc = clc_x509_parse_pem_chain(text, len, out, ei);
    free(text);
    if (rc != CLC_OK)
        return clc_err_wrap(ei, CLC_ERR_CONFIG, "ca.client_auth.ca_file %s", path);
    if (sk_X509_num(*out) < 1 || sk_X509_num(*out) > MAX_EXT_CERTS)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth.ca_file %s: 1 to %d certificates", path,
                        MAX_EXT_CERTS);
    ca->ext_store = X509_STORE_new();
    if (ca->ext_store == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < sk_X509_num(*out); i++)
        if (X509_STORE_add_cert(ca->ext_store, sk_X509_value(*out, i)) != 1)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "ca.client_auth.ca_file %s: certificate %d cannot be added", path,
                            i + 1);
    return CLC_OK;
}

enum clc_err ca_mtls_config(struct emu_ca *ca, const cJSON *cfg, struct clc_errinfo *ei)
{
    const cJSON *o = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, "client_auth") : NULL;
    const char *file = NULL, *account = NULL;
    const cJSON *it;

    if (o == NULL)
        return CLC_OK;
    if (!cJSON_IsObject(o))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth must be an object");
    cJSON_ArrayForEach(it, o)
    {
        if (strcmp(it->string, "ca_file") != 0 && strcmp(it->string, "account") != 0)
            return clc_errf(ei, CLC_ERR_CONFIG,
                            "ca.client_auth: unknown key '%.64s' (known: ca_file, account)",
                            it->string);
    }
    if (clc_json_str_opt(o, "ca_file", NULL, &file, ei) != CLC_OK ||
        (file != NULL && file[0] == '\0'))
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth.ca_file: a PEM file path");
    if (clc_json_str_opt(o, "account", NULL, &account, ei) != CLC_OK)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth.account: an account name");
    if (account != NULL && file == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth.account needs ca.client_auth.ca_file");
    if (account != NULL && ca_account_find(ca, account) == NULL)
        return clc_errf(ei, CLC_ERR_CONFIG, "ca.client_auth.account: '%.64s' is not an account",
                        account);
    if (account != NULL)
        snprintf(ca->ext_account, sizeof ca->ext_account, "%s", ca_account_find(ca, account)->name);
    return file != NULL ? load_ext(ca, file, ei) : CLC_OK;
}

enum clc_err ca_mtls_setup(struct emu_ca *ca, struct clc_errinfo *ei)
{
    STACK_OF(X509) *ext = ca->ext_certs;
    X509 *all[2 + MAX_EXT_CERTS];
    size_t n = 0;
    int w;
    enum clc_err rc = CLC_OK;

    all[n++] = ca->issuing;
    all[n++] = ca->root;
    ca->own_store = store_of(all, n);
    if (ca->own_store == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; ext != NULL && i < sk_X509_num(ext); i++)
        all[n++] = sk_X509_value(ext, i);
    w = snprintf(ca->client_ca_file, sizeof ca->client_ca_file, "%s/%s", ca->dir, BUNDLE_FILE);
    if (w < 0 || (size_t)w >= sizeof ca->client_ca_file) {
        rc = clc_errf(ei, CLC_ERR_CONFIG, "ca: work directory path too long");
        goto out;
    }
    /* Written at every start: the configured CA file may have changed. */
    rc = clc_x509_save_pem(all, n, ca->client_ca_file, 0644, ei);
out:
    ERR_clear_error();
    return rc;
}

void ca_mtls_cleanup(struct emu_ca *ca)
{
    X509_STORE_free(ca->own_store);
    X509_STORE_free(ca->ext_store);
    sk_X509_pop_free(ca->ext_certs, X509_free);
    ca->own_store = ca->ext_store = NULL;
    ca->ext_certs = NULL;
}

const char *ca_mtls_ca_file(void *ctx)
{
    const struct emu_ca *ca = ctx;

    return ca->client_ca_file[0] ? ca->client_ca_file : NULL;
}

/* ---- identities ---- */

/* Verifies cert for TLS client use against store by the emulator clock (the
 * handshake checked it by the system clock). 0 = verified, else the
 * X509_V_ERR code. */
static int verify(X509_STORE *store, X509 *cert, int64_t now)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int err = X509_V_ERR_OUT_OF_MEM;

    if (ctx != NULL && X509_STORE_CTX_init(ctx, store, cert, NULL) == 1 &&
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) == 1) {
        X509_STORE_CTX_set_time(ctx, 0, (time_t)now);
        int ok = X509_verify_cert(ctx) == 1;
        err = ok ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
        if (!ok && err == X509_V_OK)
            err = X509_V_ERR_UNSPECIFIED;
    }
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

/* One of this CA's certificates stands for whoever requested it, while it
 * is neither revoked nor forgotten (control reset). */
static const struct ca_account *own_account(struct emu_ca *ca, X509 *cert, int64_t *row, char *why,
                                            size_t wn)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    const struct ca_account *a = NULL;
    const struct ca_request *q = NULL;

    if (len <= 0) {
        snprintf(why, wn, "the certificate cannot be encoded");
        return NULL;
    }
    pthread_mutex_lock(&ca->mu);
    for (size_t i = 0; i < ca->nreq && q == NULL; i++)
        if (ca->req[i].cert != NULL && ca->req[i].cert_len == (size_t)len &&
            memcmp(ca->req[i].cert, der, (size_t)len) == 0)
            q = &ca->req[i];
    if (q == NULL)
        snprintf(why, wn, "this CA has no record of the certificate");
    else if (q->disposition != CA_DISP_ISSUED)
        snprintf(why, wn, "the certificate of request %lld is %s", (long long)q->id,
                 ca_disp_name(q->disposition));
    else if ((a = ca_account_find(ca, q->requester)) == NULL)
        snprintf(why, wn, "the certificate's requester '%s' is no longer an account", q->requester);
    else
        *row = q->id;
    pthread_mutex_unlock(&ca->mu);
    OPENSSL_free(der);
    return a;
}

/* A certificate of the configured client-auth CA: the configured account,
 * or the account its subject CN names. */
static const struct ca_account *ext_account(struct emu_ca *ca, X509 *cert, char *why, size_t wn)
{
    char cn[CA_NAME_MAX + 1] = "";
    const struct ca_account *a;
    int n;

    if (ca->ext_account[0])
        return ca_account_find(ca, ca->ext_account);
    n = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn);
    a = n > 0 && (size_t)n < sizeof cn - 1 ? ca_account_find(ca, cn) : NULL;
    if (a == NULL)
        snprintf(why, wn, "no account is named by the certificate's CN '%.64s'", n > 0 ? cn : "");
    return a;
}

const struct ca_account *ca_cert_account(struct emu_ca *ca, X509 *cert, int64_t *row, char *why,
                                         size_t wn)
{
    int64_t now = emu_now(ca->e);
    int err;

    *row = 0;
    why[0] = '\0';
    err = verify(ca->own_store, cert, now);
    if (err == X509_V_OK)
        return own_account(ca, cert, row, why, wn);
    if (ca->ext_store != NULL && verify(ca->ext_store, cert, now) == X509_V_OK)
        return ext_account(ca, cert, why, wn);
    snprintf(why, wn, "the certificate does not verify for client authentication: %s",
             X509_verify_cert_error_string(err));
    return NULL;
}
