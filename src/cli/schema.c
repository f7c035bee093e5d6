/* The configuration schema of the certlc binary: certlc's own keys plus the
 * keys each module declares (auth.*). Built once, used by every command. */
#include <stdlib.h>
#include <string.h>

#include "azure/auth.h"
#include "azure/keyvault.h"
#include "cli/schema.h"

static const struct clc_config_key cli_keys[] = {
    {"log.level", CLC_CFG_STR, "debug, info, warn or error (default info)"},
    {"log.format", CLC_CFG_STR, "text (key=value) or json (one object per line); default text"},
    {"http.ca_bundle", CLC_CFG_STR, "PEM file of CAs to trust instead of the system store"},
    {"http.connect_timeout_ms", CLC_CFG_INT, "TCP+TLS connect timeout (default 10000)"},
    {"http.timeout_ms", CLC_CFG_INT, "whole-request timeout (default 60000)"},
    {"http.max_response_bytes", CLC_CFG_INT, "largest response body accepted (default 16 MiB)"},
    {"http.proxy", CLC_CFG_STR, "proxy URL; default: HTTPS_PROXY/NO_PROXY from the environment"},
    {"ca.*", CLC_CFG_OBJ, "CA clients by name: type, url, auth, trust_anchors, ... (docs/ca.md)"},
};

static struct clc_config_key *schema;
static size_t nschema;

enum clc_err clc_cli_schema(const struct clc_config_key **out, size_t *n)
{
    if (!schema) {
        size_t ncli = sizeof cli_keys / sizeof cli_keys[0];
        size_t nmod = clc_auth_config_nkeys + clc_kv_config_nkeys;
        struct clc_config_key *s = calloc(ncli + nmod, sizeof *s);
        if (!s)
            return CLC_ERR_NOMEM;
        memcpy(s, cli_keys, sizeof cli_keys);
        memcpy(s + ncli, clc_auth_config_keys, clc_auth_config_nkeys * sizeof *s);
        memcpy(s + ncli + clc_auth_config_nkeys, clc_kv_config_keys,
               clc_kv_config_nkeys * sizeof *s);
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
