/* certlc-emulator: starts the emulator library, writes the endpoints
 * document once every listener is up, and runs until SIGINT or SIGTERM. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <openssl/crypto.h>

#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/emu_ext.h"

#ifndef CLC_VERSION
#define CLC_VERSION "0"
#endif

/* The secure heap holds the emulator's CA and token keys. */
#define SECURE_HEAP_BYTES (1 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: certlc-emulator [--data-dir DIR] [--config FILE] [--endpoints-file PATH]\n"
               "                       [--quiet] [--log-format text|json] [--help] [--version]\n"
               "\n"
               "  --data-dir DIR         keep state, keys and the test CA in DIR (default: a\n"
               "                         private temporary directory removed at exit)\n"
               "  --config FILE          emulator config JSON (ports, identities, tenant, ...)\n"
               "  --endpoints-file PATH  where to write the endpoints document (mode 0600;\n"
               "                         default: endpoints.json in the data directory)\n"
               "  --quiet                no access log\n"
               "  --log-format FMT       text (default) or json\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"endpoints-file", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {"log-format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct emu_opts opts;
    struct clc_errinfo ei = {0};
    struct rlimit no_core = {0, 0};
    const char *endpoints = NULL;
    char *default_endpoints = NULL;
    struct emu *e = NULL;
    sigset_t sigs;
    int fmt = CLC_LOG_TEXT, c, sig = 0, status = 1;

    memset(&opts, 0, sizeof opts);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            opts.data_dir = optarg;
            break;
        case 'c':
            opts.config_file = optarg;
            break;
        case 'e':
            endpoints = optarg;
            break;
        case 'q':
            opts.quiet = 1;
            break;
        case 'f':
            fmt = clc_log_format_parse(optarg);
            if (fmt < 0) {
                fprintf(stderr, "certlc-emulator: --log-format must be text or json\n");
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("certlc-emulator %s\n", CLC_VERSION);
            return 0;
        default:
            fprintf(stderr, "certlc-emulator: unknown or incomplete option '%s'\n",
                    argv[optind - 1]);
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "certlc-emulator: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    clc_log_setup(CLC_LOG_INFO, (enum clc_log_format)fmt, stderr);

    /* It holds private keys: no core files, keys on the secure heap. */
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        clc_log0(CLC_LOG_WARN, "emu.rlimit_core_failed");
    if (CRYPTO_secure_malloc_init(SECURE_HEAP_BYTES, 16) == 0)
        clc_log0(CLC_LOG_WARN, "emu.secure_heap_unavailable");

    /* Blocked before any thread starts, so every civetweb thread inherits
     * the mask and sigwait below is the only receiver. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (emu_start(&opts, &e, &ei) != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.start_failed", CLC_LS("reason", ei.msg));
        goto out;
    }
    if (endpoints == NULL) {
        size_t n = strlen(emu_work_dir(e)) + sizeof "/endpoints.json";
        default_endpoints = malloc(n);
        if (default_endpoints == NULL)
            goto out;
        snprintf(default_endpoints, n, "%s/endpoints.json", emu_work_dir(e));
        endpoints = default_endpoints;
    }
    if (emu_write_endpoints(e, endpoints, &ei) != CLC_OK) {
        clc_log(CLC_LOG_ERROR, "emu.endpoints_failed", CLC_LS("reason", ei.msg));
        goto out;
    }
    clc_log(CLC_LOG_INFO, "emu.ready", CLC_LS("endpoints", endpoints),
            CLC_LS("ca_bundle", emu_ca_bundle(e)), CLC_LS("control", emu_service_url(e, "control")),
            CLC_LS("entra", emu_service_url(e, "entra")), CLC_LS("tenant", emu_tenant(e)));
    if (sigwait(&sigs, &sig) != 0)
        goto out;
    clc_log(CLC_LOG_INFO, "emu.stopping", CLC_LS("signal", sig == SIGINT ? "SIGINT" : "SIGTERM"));
    status = 0;
out:
    emu_stop(e);
    free(default_endpoints);
    if (CRYPTO_secure_malloc_initialized())
        CRYPTO_secure_malloc_done();
    return status;
}
