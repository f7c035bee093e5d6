/* certlc sync: keep a server's certificates in step with Key Vault, from the
 * Key Vault VM extension's own settings file. --once: one pass (exit 0
 * changed, 2 nothing to do, 1 error); otherwise a daemon that polls until
 * SIGTERM, telling systemd (Type=notify) when the first pass is done. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "azure/auth.h"
#include "cli/cli.h"
#include "core/log.h"
#include "pipeline/sync.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void sync_usage(FILE *f)
{
    fprintf(f, "usage: certlc sync --settings FILE [--once | --check]\n\n"
               "Fetches the certificates a Key Vault VM extension settings file observes and\n"
               "installs them (crash-safe, versioned files and a stable symlink), running the\n"
               "reload command when one changed. See docs/sync.md.\n\n"
               "  -s, --settings FILE  the extension's settings JSON (plus its \"certlc\" member)\n"
               "      --once           one pass, then exit\n"
               "      --check          check the settings and print what would be synced\n\n"
               "Authentication: authenticationSettings (managed identity through IMDS, or Azure\n"
               "Arc), unless the certlc configuration sets auth.method (service principal,\n"
               "workload identity, ...). http.ca_bundle and the rest come from --config.\n\n"
               "exit status (--once): 0 something changed, 2 nothing to do, 1 error;\n"
               "daemon: 0 stopped by SIGTERM/SIGINT, 1 error (requireInitialSync not met)\n");
}

/* systemd's readiness protocol: one datagram to $NOTIFY_SOCKET. */
static void notify_ready(void *ctx)
{
    (void)ctx;
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t n = path ? strlen(path) : 0;
    if (n == 0 || n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@'))
        return;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* abstract namespace */
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    static const char msg[] = "READY=1";
    if (sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&sa,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0)
        clc_log(CLC_LOG_WARN, "sync.notify_failed", CLC_LS("detail", strerror(errno)));
    close(fd);
}

/* The extension's authenticationSettings, unless the configuration names a
 * method; the configuration can still give auth.arc_key_dir. */
static enum clc_err make_auth(struct clc_cli *cli, const struct clc_sync_settings *s,
                              struct clc_auth **out, struct clc_errinfo *ei)
{
    char endpoint[1200];
    struct clc_auth_opts ao;
    const char *method = NULL, *keydir = NULL;
    enum clc_err e;

    if ((e = clc_config_str(cli->config, "auth.method", NULL, &method, ei)) != CLC_OK ||
        (e = clc_config_str(cli->config, "auth.arc_key_dir", NULL, &keydir, ei)) != CLC_OK)
        return e;
    if (!method || !strcmp(method, "auto")) {
        e = clc_sync_auth_opts(s, endpoint, sizeof endpoint, &ao, ei);
        if (e == CLC_OK) {
            ao.arc_key_dir = keydir;
            clc_log(CLC_LOG_INFO, "sync.auth", CLC_LS("method", clc_auth_method_name(ao.method)),
                    CLC_LS("endpoint", endpoint), CLC_LS("client_id", ao.client_id));
            return clc_auth_new(&ao, &cli->http, out, ei);
        }
        if (e != CLC_ERR_NOT_FOUND)
            return e;
    } else if (s->msi_endpoint || s->msi_client_id) {
        clc_log(CLC_LOG_INFO, "sync.auth_override", CLC_LS("method", method),
                CLC_LS("ignored", "authenticationSettings"));
    }
    return clc_auth_from_config(cli->config, &cli->http, out, ei);
}

static int check(const struct clc_sync_settings *s)
{
    printf("polling every %lld s, requireInitialSync %s, keep %d versions\n",
           (long long)s->polling_interval_s, s->require_initial_sync ? "yes" : "no",
           s->keep_versions);
    for (size_t i = 0; i < s->ncerts; i++) {
        const struct clc_sync_cert *c = &s->certs[i];
        printf("%s -> %s/%s (%s layout, vault %s)%s%s\n", c->url, c->store, c->link,
               c->out.layout == CLC_SYNC_LAYOUT_SEPARATE ? "separate" : "extension", c->vault_name,
               c->out.reload.argv[0] ? ", reload: " : "",
               c->out.reload.argv[0] ? c->out.reload.argv[0] : "");
    }
    return CLC_EXIT_OK;
}

int clc_cmd_sync(struct clc_cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"settings", required_argument, NULL, 's'},
        {"once", no_argument, NULL, 'o'},
        {"check", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *settings = NULL;
    int once = 0, only_check = 0, c, rc = CLC_EXIT_ERROR;
    struct clc_errinfo ei;
    struct clc_sync_settings s;
    struct clc_auth *auth = NULL;
    struct clc_sync *sy = NULL;
    enum clc_err e;

    memset(&s, 0, sizeof s);
    clc_errinfo_clear(&ei);
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            settings = optarg;
            break;
        case 'o':
            once = 1;
            break;
        case 'k':
            only_check = 1;
            break;
        case 'h':
            sync_usage(stdout);
            return CLC_EXIT_OK;
        default:
            fprintf(stderr, "certlc sync: unknown option or missing value\n");
            sync_usage(stderr);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind < argc || !settings) {
        fprintf(stderr, "certlc sync: %s\n",
                settings ? "unexpected argument" : "--settings FILE is required");
        sync_usage(stderr);
        return CLC_EXIT_ERROR;
    }
    if ((e = clc_sync_settings_load(settings, &s, &ei)) != CLC_OK)
        return clc_cli_fail("settings", e, &ei);
    if (only_check) {
        rc = check(&s);
        goto out;
    }
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK) {
        rc = clc_cli_fail("configuration", e, &ei);
        goto out;
    }
    if ((e = make_auth(cli, &s, &auth, &ei)) != CLC_OK) {
        rc = clc_cli_fail("authentication setup", e, &ei);
        goto out;
    }
    if ((e = clc_sync_new(&s, auth, &cli->http, &sy, &ei)) != CLC_OK) {
        rc = clc_cli_fail("sync", e, &ei);
        goto out;
    }
    if (once) {
        struct clc_sync_result res;
        e = clc_sync_pass(sy, &res, &ei);
        if (e != CLC_OK)
            rc = clc_cli_fail("sync", e, &ei);
        else
            rc = res.changed || res.reloads_ok ? CLC_EXIT_OK : CLC_EXIT_NOTHING;
        goto out;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: sleeps end early */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct clc_sync_daemon_opts d = {
        .stop = &stop_flag, .on_ready = notify_ready, .isolate_passes = 1};
    e = clc_sync_daemon(sy, &d, &ei);
    rc = e == CLC_OK ? CLC_EXIT_OK : clc_cli_fail("sync", e, &ei);
out:
    clc_sync_free(sy);
    clc_auth_free(auth);
    clc_sync_settings_cleanup(&s);
    return rc;
}
