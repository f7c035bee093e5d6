/* certlc token: obtain an access token with the configured identity and show
 * what it says (header and claims, never the signature or the token itself),
 * so an operator can check identity, audience, roles and expiry. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/auth.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/json.h"
#include "crypto/jwt.h"

static void token_usage(FILE *f)
{
    fprintf(f, "usage: certlc token [--scope SCOPE] [--json]\n\n"
               "Obtains an access token with the identity configured under auth.* and prints\n"
               "its decoded header and claims. The token itself is never printed.\n\n"
               "  -s, --scope SCOPE   default https://vault.azure.net/.default\n"
               "      --json          print {\"header\":..,\"claims\":..,\"expires_on\":..}\n");
}

static void print_pretty(const char *title, const cJSON *v)
{
    char *s = cJSON_Print(v);
    printf("%s:\n%s\n", title, s ? s : "(unprintable)");
    free(s);
}

int clc_cmd_token(struct clc_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"scope", required_argument, NULL, 's'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *scope = "https://vault.azure.net/.default";
    int json = 0, c, rc = CLC_EXIT_ERROR;
    struct clc_errinfo ei;
    struct clc_auth *auth = NULL;
    struct clc_secret *token = NULL;
    cJSON *header = NULL, *claims = NULL, *doc = NULL;
    int64_t expires_on = 0;
    enum clc_err e;

    clc_errinfo_clear(&ei);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            scope = optarg;
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            token_usage(stdout);
            return CLC_EXIT_OK;
        default:
            fprintf(stderr, "certlc token: unknown option or missing value\n");
            token_usage(stderr);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "certlc token: unexpected argument '%s'\n", argv[optind]);
        return CLC_EXIT_ERROR;
    }
    if (!*scope || strchr(scope, ' ')) {
        fprintf(stderr, "certlc token: --scope takes one scope, e.g. "
                        "https://vault.azure.net/.default\n");
        return CLC_EXIT_ERROR;
    }

    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if ((e = clc_auth_from_config(cli->config, &cli->http, &auth, &ei)) != CLC_OK)
        return clc_cli_fail("authentication setup", e, &ei);
    if ((e = clc_auth_token(auth, scope, &token, &expires_on, &ei)) != CLC_OK) {
        rc = clc_cli_fail("token", e, &ei);
        goto out;
    }
    if ((e = clc_jwt_decode(clc_secret_reveal(token), &header, &claims, &ei)) != CLC_OK) {
        /* Tokens are opaque to clients; Entra's happen to be JWTs. */
        printf("token obtained (%zu bytes, not a JWT: %s); expires %lld\n", clc_secret_len(token),
               ei.msg, (long long)expires_on);
        rc = CLC_EXIT_OK;
        goto out;
    }
    if (json) {
        doc = cJSON_CreateObject();
        if (!doc || clc_json_add_int(doc, "expires_on", expires_on) != CLC_OK ||
            clc_json_add_str(doc, "method", clc_auth_method_name(clc_auth_method_of(auth))) !=
                CLC_OK) {
            rc = clc_cli_fail("token", CLC_ERR_NOMEM, NULL);
            goto out;
        }
        cJSON_AddItemToObject(doc, "header", header);
        cJSON_AddItemToObject(doc, "claims", claims);
        header = claims = NULL;
        char *s = cJSON_Print(doc);
        if (!s) {
            rc = clc_cli_fail("token", CLC_ERR_NOMEM, NULL);
            goto out;
        }
        printf("%s\n", s);
        free(s);
    } else {
        char when[CLC_TIME_STR_MAX] = "?";
        clc_time_fmt_iso8601(expires_on, when);
        printf("method: %s\nscope: %s\nexpires: %s\n",
               clc_auth_method_name(clc_auth_method_of(auth)), scope, when);
        print_pretty("header", header);
        print_pretty("claims", claims);
    }
    rc = CLC_EXIT_OK;
out:
    cJSON_Delete(doc);
    cJSON_Delete(header);
    cJSON_Delete(claims);
    clc_secret_free(token);
    clc_auth_free(auth);
    return rc;
}
