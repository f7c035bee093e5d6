/* certlc: one binary, one subcommand per job. This file parses the global
 * options, sets up logging and the crypto library, and dispatches. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "cli/cli.h"
#include "cli/schema.h"
#include "core/log.h"

struct cmd {
    const char *name;
    int (*fn)(struct clc_cli *cli, int argc, char **argv);
    const char *summary;
};

static const struct cmd commands[] = {
    {"token", clc_cmd_token, "obtain an Entra ID access token and show its claims"},
    {"config", clc_cmd_config, "check the configuration and show where each value comes from"},
    {"kv", clc_cmd_kv, "list and show a vault's certificates, their versions and tags"},
    {"ca", clc_cmd_ca, "submit a CSR to a configured CA, fetch a pending request (docs/ca.md)"},
    {"renew", clc_cmd_renew, "drain the work queue once: renew every certificate it names"},
    {"worker", clc_cmd_worker, "keep renewing: drain on a schedule and when woken (SIGUSR1)"},
    {"poison", clc_cmd_poison, "list or replay the messages the worker gave up on"},
    {"deadletter", clc_cmd_deadletter, "list or replay the events Event Grid dead-lettered"},
    {"serve", clc_cmd_serve, "run the Event Grid webhook (HTTPS) and the worker in one process"},
    {"sync", clc_cmd_sync, "install the certificates a Key Vault extension settings file observes"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: certlc [--config FILE] [--log-level LEVEL] [--log-format text|json] "
               "COMMAND [ARGS]\n\n"
               "Renews Azure Key Vault certificates issued by CAs the vault cannot renew by "
               "itself.\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nglobal options:\n"
               "  -c, --config FILE     configuration file (default: $CERTLC_CONFIG)\n"
               "      --log-level L     debug, info, warn or error (overrides log.level)\n"
               "      --log-format F    text or json (overrides log.format)\n"
               "  -h, --help            this help; 'certlc COMMAND --help' for a command\n"
               "  -V, --version         print the version\n\n"
               "exit status: 0 done, 1 error, 2 nothing to do or nothing found\n"
               "documentation: docs/configuration.md, docs/operations.md\n");
}

/* Applies log settings: command-line flags win over the configuration. */
static int setup_logging(struct clc_cli *cli, const char *level_flag, const char *format_flag)
{
    const char *level = level_flag, *format = format_flag;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    if (cli->config_path && (!level || !format)) {
        enum clc_err e = clc_cli_load_config(cli, &ei);
        if (e != CLC_OK)
            return clc_cli_fail("configuration", e, &ei);
        if (!level && clc_config_str(cli->config, "log.level", NULL, &level, &ei) != CLC_OK)
            return clc_cli_fail("configuration", CLC_ERR_CONFIG, &ei);
        if (!format && clc_config_str(cli->config, "log.format", NULL, &format, &ei) != CLC_OK)
            return clc_cli_fail("configuration", CLC_ERR_CONFIG, &ei);
    }
    int lvl = level ? clc_log_level_parse(level) : CLC_LOG_INFO;
    int fmt = format ? clc_log_format_parse(format) : CLC_LOG_TEXT;
    if (lvl < 0) {
        fprintf(stderr, "certlc: unknown log level '%s' (debug, info, warn, error)\n", level);
        return CLC_EXIT_ERROR;
    }
    if (fmt < 0) {
        fprintf(stderr, "certlc: unknown log format '%s' (text, json)\n", format);
        return CLC_EXIT_ERROR;
    }
    clc_log_setup((enum clc_log_level)lvl, (enum clc_log_format)fmt, stderr);
    return CLC_EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"log-level", required_argument, NULL, 'L'},
        {"log-format", required_argument, NULL, 'F'}, {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
    };
    struct clc_cli cli;
    const char *level = NULL, *format = NULL;
    int rc = CLC_EXIT_ERROR, c;

    memset(&cli, 0, sizeof cli);
    /* certlc holds tokens and, for sync, private keys: no core files. */
    struct rlimit nocore = {0, 0};
    setrlimit(RLIMIT_CORE, &nocore);
    CRYPTO_secure_malloc_init(64 * 1024, 32);

    opterr = 0;
    while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            cli.config_path = optarg;
            break;
        case 'L':
            level = optarg;
            break;
        case 'F':
            format = optarg;
            break;
        case 'h':
            usage(stdout);
            rc = CLC_EXIT_OK;
            goto out;
        case 'V':
            printf("certlc %s\n", CLC_VERSION);
            rc = CLC_EXIT_OK;
            goto out;
        default:
            if (optopt)
                fprintf(stderr, "certlc: option -%c needs a value or is unknown\n", optopt);
            else
                fprintf(stderr, "certlc: unknown option '%s'\n", argv[optind - 1]);
            fprintf(stderr, "see 'certlc --help'\n");
            goto out;
        }
    }
    if (!cli.config_path) {
        const char *env = getenv("CERTLC_CONFIG");
        if (env && *env)
            cli.config_path = env;
    }
    if (optind >= argc) {
        usage(stderr);
        goto out;
    }
    rc = setup_logging(&cli, level, format);
    if (rc != CLC_EXIT_OK)
        goto out;
    rc = CLC_EXIT_ERROR;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[optind], commands[i].name) == 0) {
            optind++;
            /* Subcommands parse their own options from a fresh getopt state. */
            int sub_argc = argc - optind + 1;
            char **sub_argv = argv + optind - 1;
            optind = 0;
            rc = commands[i].fn(&cli, sub_argc, sub_argv);
            goto out;
        }
    }
    fprintf(stderr, "certlc: unknown command '%s'; see 'certlc --help'\n", argv[optind]);
out:
    clc_config_free(cli.config);
    clc_cli_schema_free();
    CRYPTO_secure_malloc_done();
    return rc;
}
