/* Helpers shared by the subcommands: loading the configuration once and
 * turning it into HTTP options, and printing errors the same way everywhere. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/schema.h"

enum clc_err clc_cli_load_config(struct clc_cli *cli, struct clc_errinfo *ei)
{
    const struct clc_config_key *schema;
    size_t nschema;
    int64_t v;
    enum clc_err e;

    if (cli->config)
        return CLC_OK;
    e = clc_cli_schema(&schema, &nschema);
    if (e != CLC_OK)
        return clc_errf(ei, e, "out of memory");
    e = clc_config_load(cli->config_path, "CERTLC_", schema, nschema, &cli->config, ei);
    if (e != CLC_OK)
        return e;

    struct clc_http_opts *h = &cli->http;
    if ((e = clc_config_str(cli->config, "http.ca_bundle", NULL, &h->ca_bundle, ei)) != CLC_OK)
        return e;
    if ((e = clc_config_str(cli->config, "http.proxy", NULL, &h->proxy, ei)) != CLC_OK)
        return e;
    if ((e = clc_config_int(cli->config, "http.connect_timeout_ms", 10000, 100, 600000, &v, ei)) !=
        CLC_OK)
        return e;
    h->connect_timeout_ms = (long)v;
    if ((e = clc_config_int(cli->config, "http.timeout_ms", 60000, 100, 3600000, &v, ei)) != CLC_OK)
        return e;
    h->timeout_ms = (long)v;
    if ((e = clc_config_int(cli->config, "http.max_response_bytes", 16 * 1024 * 1024, 1024,
                            1024 * 1024 * 1024, &v, ei)) != CLC_OK)
        return e;
    h->max_response_bytes = (size_t)v;
    return CLC_OK;
}

int clc_cli_fail(const char *what, enum clc_err e, const struct clc_errinfo *ei)
{
    if (ei && ei->msg[0])
        fprintf(stderr, "certlc: %s: %s", what, ei->msg);
    else
        fprintf(stderr, "certlc: %s: %s", what, clc_err_name(e));
    if (ei && ei->http_status)
        fprintf(stderr, " (HTTP %ld%s%s)", ei->http_status, ei->code[0] ? ", " : "", ei->code);
    if (ei && ei->request_id[0])
        fprintf(stderr, " [request id %s]", ei->request_id);
    fputc('\n', stderr);
    return CLC_EXIT_ERROR;
}

int clc_cli_parse_threads(const char *cmd, const char *arg, int max, int *out)
{
    char *end = NULL;
    long v = strtol(arg, &end, 10);

    if (end == arg || *end != '\0' || v < 1 || v > max) {
        fprintf(stderr, "certlc %s: --threads takes a whole number from 1 to %d\n", cmd, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}
