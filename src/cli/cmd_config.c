/* certlc config: "check" loads and validates the configuration (including
 * the auth settings) without contacting anything; "show" prints each key's
 * value and origin; "keys" lists every key the binary understands. */
#include <stdio.h>
#include <string.h>

#include "azure/auth.h"
#include "cli/cli.h"
#include "cli/schema.h"

static void config_usage(FILE *f)
{
    fprintf(f, "usage: certlc config check|show|keys\n\n"
               "  check   validate the configuration file and environment overrides\n"
               "  show    print every set key, its value and where it came from\n"
               "  keys    list every configuration key with a one-line description\n");
}

static const char *type_name(enum clc_config_type t)
{
    switch (t) {
    case CLC_CFG_STR:
        return "string";
    case CLC_CFG_INT:
        return "integer";
    case CLC_CFG_BOOL:
        return "boolean";
    case CLC_CFG_OBJ:
        return "object";
    case CLC_CFG_ARR:
        return "array";
    }
    return "?";
}

static int show(const struct clc_cli *cli, const struct clc_config_key *schema, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const cJSON *v = clc_config_node(cli->config, schema[i].path);
        if (!v)
            continue;
        char *text = cJSON_PrintUnformatted(v);
        printf("%-32s %-40s (%s)\n", schema[i].path, text ? text : "?",
               clc_config_origin(cli->config, schema[i].path));
        cJSON_free(text);
    }
    return CLC_EXIT_OK;
}

int clc_cmd_config(struct clc_cli *cli, int argc, char **argv)
{
    const struct clc_config_key *schema;
    size_t n;
    struct clc_errinfo ei;
    struct clc_auth *auth = NULL;
    enum clc_err e;

    clc_errinfo_clear(&ei);
    if (argc != 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        config_usage(argc == 2 ? stdout : stderr);
        return argc == 2 ? CLC_EXIT_OK : CLC_EXIT_ERROR;
    }
    if (clc_cli_schema(&schema, &n) != CLC_OK)
        return clc_cli_fail("config", CLC_ERR_NOMEM, NULL);
    if (strcmp(argv[1], "keys") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%-32s %-8s %s\n", schema[i].path, type_name(schema[i].type), schema[i].help);
        return CLC_EXIT_OK;
    }
    if (strcmp(argv[1], "check") != 0 && strcmp(argv[1], "show") != 0) {
        fprintf(stderr, "certlc config: unknown action '%s'\n", argv[1]);
        config_usage(stderr);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK)
        return clc_cli_fail("configuration", e, &ei);
    if (strcmp(argv[1], "show") == 0)
        return show(cli, schema, n);
    /* Building the credential validates method, ids, files and secrets. */
    e = clc_auth_from_config(cli->config, &cli->http, &auth, &ei);
    if (e != CLC_OK)
        return clc_cli_fail("auth configuration", e, &ei);
    printf("configuration ok (%s; auth method %s)\n",
           cli->config_path ? cli->config_path : "environment only",
           clc_auth_method_name(clc_auth_method_of(auth)));
    clc_auth_free(auth);
    return CLC_EXIT_OK;
}
