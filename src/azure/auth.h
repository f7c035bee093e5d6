/* Entra ID access tokens for every way certlc runs: client secret, client
 * certificate (signed assertion), Azure VM managed identity (IMDS), App
 * Service style identity endpoint, Azure Arc (HIMDS challenge), workload
 * identity (federated token file). One cache entry per scope, refreshed ahead
 * of expiry and after a 401. Thread-safe. */
#ifndef CLC_AUTH_H
#define CLC_AUTH_H

#include <stdint.h>
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/secret.h"
#include "net/http.h"

enum clc_auth_method {
    CLC_AUTH_CLIENT_SECRET = 0,
    CLC_AUTH_CLIENT_CERTIFICATE,
    CLC_AUTH_MANAGED_IDENTITY, /* Azure VM / VMSS IMDS */
    CLC_AUTH_APP_SERVICE,      /* IDENTITY_ENDPOINT + IDENTITY_HEADER */
    CLC_AUTH_ARC,              /* Azure Arc HIMDS challenge flow */
    CLC_AUTH_WORKLOAD_IDENTITY,
    CLC_AUTH__COUNT
};

/* "client_secret", "client_certificate", "managed_identity", "app_service",
 * "arc", "workload_identity". */
const char *clc_auth_method_name(enum clc_auth_method m);
int clc_auth_method_parse(const char *s); /* -1 when unknown */

struct clc_auth_opts {
    enum clc_auth_method method;
    const char *authority_host;             /* default https://login.microsoftonline.com */
    const char *tenant_id;                  /* client secret/certificate/workload */
    const char *client_id;                  /* app id; for managed identity: user-assigned id */
    const struct clc_secret *client_secret; /* copied */
    const char *certificate_file;           /* PEM certificate (client certificate) */
    const char *key_file;                   /* PEM private key (client certificate) */
    const char *imds_endpoint; /* default http://169.254.169.254/metadata/identity/oauth2/token */
    const char *identity_endpoint;            /* App Service / Arc: IDENTITY_ENDPOINT */
    const struct clc_secret *identity_header; /* App Service: IDENTITY_HEADER; copied */
    const char *arc_key_dir;                  /* default /var/opt/azcmagent/tokens */
    const char *federated_token_file;         /* workload identity; re-read on every request */
    int64_t refresh_margin_s;                 /* refresh this long before expiry; default 300 */
};

struct clc_auth;

/* http_opts configures the auth client's own HTTP handle (CA bundle, timeouts). */
enum clc_err clc_auth_new(const struct clc_auth_opts *opts, const struct clc_http_opts *http_opts,
                          struct clc_auth **out, struct clc_errinfo *ei);

/* Builds options from configuration keys under "auth." (see
 * clc_auth_config_keys) and the standard environment (AZURE_CLIENT_ID,
 * AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE, AZURE_AUTHORITY_HOST,
 * IDENTITY_ENDPOINT, IDENTITY_HEADER, IMDS_ENDPOINT). Method "auto" picks by
 * what is configured: workload identity file, client secret, client
 * certificate, Arc, App Service, then IMDS. */
enum clc_err clc_auth_from_config(const struct clc_config *cfg,
                                  const struct clc_http_opts *http_opts, struct clc_auth **out,
                                  struct clc_errinfo *ei);
extern const struct clc_config_key clc_auth_config_keys[];
extern const size_t clc_auth_config_nkeys;

enum clc_auth_method clc_auth_method_of(const struct clc_auth *a);

/* A token for scope ("https://vault.azure.net/.default"); managed identity
 * methods send the resource (scope without "/.default"). *token is a new
 * secret owned by the caller. expires_on (optional) is Unix seconds. */
enum clc_err clc_auth_token(struct clc_auth *a, const char *scope, struct clc_secret **token,
                            int64_t *expires_on, struct clc_errinfo *ei);

/* Drops the cached token for scope (after a service answered 401). */
void clc_auth_invalidate(struct clc_auth *a, const char *scope);

void clc_auth_free(struct clc_auth *a);

#endif
