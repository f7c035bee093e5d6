/* The configuration schema of the certlc binary: certlc's own keys plus the
 * keys each module declares (auth.*). Built once, used by every command. */
#include <stdlib.h>
#include <string.h>

#include "azure/auth.h"
#include "azure/keyvault.h"
#include "azure/loganalytics.h"
#include "cli/schema.h"
#include "pipeline/notify.h"
#include "pipeline/renew.h"

static const struct clc_config_key cli_keys[] = {
    {"log.level", CLC_CFG_STR, "debug, info, warn or error (default info)"},
    {"log.format", CLC_CFG_STR, "text (key=value) or json (one object per line); default text"},
    {"http.ca_bundle", CLC_CFG_STR, "PEM file of CAs to trust instead of the system store"},
    {"http.connect_timeout_ms", CLC_CFG_INT, "TCP+TLS connect timeout (default 10000)"},
    {"http.timeout_ms", CLC_CFG_INT, "whole-request timeout (default 60000)"},
    {"http.max_response_bytes", CLC_CFG_INT, "largest response body accepted (default 16 MiB)"},
    {"http.proxy", CLC_CFG_STR, "proxy URL; default: HTTPS_PROXY/NO_PROXY from the environment"},
    {"ca.*", CLC_CFG_OBJ, "CA clients by name: type, url, auth, trust_anchors, ... (docs/ca.md)"},
    /* certlc serve: the Event Grid webhook (docs/configuration.md "webhook") */
    {"webhook.listen", CLC_CFG_STR, "address the webhook listens on (default 0.0.0.0)"},
    {"webhook.port", CLC_CFG_INT, "HTTPS port (default 8443; 0 = any free port)"},
    {"webhook.certificate_file", CLC_CFG_STR, "PEM: the webhook's certificate, then its chain"},
    {"webhook.key_file", CLC_CFG_STR, "PEM: the webhook's private key (unencrypted, mode 0600)"},
    {"webhook.secret_file", CLC_CFG_STR, "file holding the shared secret Event Grid sends"},
    {"webhook.secret_env", CLC_CFG_STR, "variable holding the shared secret (if no secret_file)"},
    {"webhook.max_body_bytes", CLC_CFG_INT, "largest delivery accepted (default 1048576)"},
    {"webhook.threads", CLC_CFG_INT, "request threads (default 4)"},
    {"webhook.tls_compat_library", CLC_CFG_STR,
     "path of civetweb's OpenSSL 3 compatibility libssl.so (default: searched)"},
};

static struct clc_config_key *schema;
static size_t nschema;

enum clc_err clc_cli_schema(const struct clc_config_key **out, size_t *n)
{
    if (!schema) {
        size_t ncli = sizeof cli_keys / sizeof cli_keys[0];
        size_t nmod = clc_auth_config_nkeys + clc_kv_config_nkeys + clc_renew_config_nkeys +
                      clc_la_config_nkeys + clc_notify_config_nkeys;
        struct clc_config_key *s = calloc(ncli + nmod, sizeof *s);
        if (!s)
            return CLC_ERR_NOMEM;
        memcpy(s, cli_keys, sizeof cli_keys);
        memcpy(s + ncli, clc_auth_config_keys, clc_auth_config_nkeys * sizeof *s);
        memcpy(s + ncli + clc_auth_config_nkeys, clc_kv_config_keys,
               clc_kv_config_nkeys * sizeof *s);
        memcpy(s + ncli + clc_auth_config_nkeys + clc_kv_config_nkeys, clc_renew_config_keys,
               clc_renew_config_nkeys * sizeof *s);
        memcpy(s + ncli + nmod - clc_la_config_nkeys - clc_notify_config_nkeys, clc_la_config_keys,
               clc_la_config_nkeys * sizeof *s);
        memcpy(s + ncli + nmod - clc_notify_config_nkeys, clc_notify_config_keys,
               clc_notify_config_nkeys * sizeof *s);
        schema = s;
        nschema = ncli + nmod;
    }
    *out = schema;
    *n = nschema;
    return CLC_OK;
}

void clc_cli_schema_free(void)
{
    free(schema);
    schema = NULL;
    nschema = 0;
}
