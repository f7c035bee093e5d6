/* Shared pieces of the certlc command line: the global options, the
 * configuration schema every subcommand understands, and the exit codes
 * (0 done/changed, 1 error, 2 nothing to do or nothing found). */
#ifndef CLC_CLI_H
#define CLC_CLI_H

#include "core/config.h"
#include "core/err.h"
#include "net/http.h"

enum clc_exit { CLC_EXIT_OK = 0, CLC_EXIT_ERROR = 1, CLC_EXIT_NOTHING = 2 };

struct clc_cli {
    const char *config_path;   /* --config, $CERTLC_CONFIG, or NULL */
    struct clc_config *config; /* loaded on first use */
    struct clc_http_opts http; /* from config "http.*" */
};

/* Loads the configuration (once) and fills cli->http. Prints nothing. */
enum clc_err clc_cli_load_config(struct clc_cli *cli, struct clc_errinfo *ei);

/* Parses a --threads value (1..max); prints "certlc <cmd>: ..." and
 * returns -1 when it is not a whole number in range. */
int clc_cli_parse_threads(const char *cmd, const char *arg, int max, int *out);

/* Prints "certlc: <what>: <detail>" to stderr and returns CLC_EXIT_ERROR. */
int clc_cli_fail(const char *what, enum clc_err e, const struct clc_errinfo *ei);

/* Subcommands: argv[0] is the subcommand name. */
int clc_cmd_token(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_config(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_kv(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_ca(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_renew(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_worker(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_poison(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_deadletter(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_serve(struct clc_cli *cli, int argc, char **argv);
int clc_cmd_sync(struct clc_cli *cli, int argc, char **argv);

#endif
