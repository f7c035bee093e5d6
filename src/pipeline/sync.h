/* certlc sync: the Key Vault VM extension's job for any Linux server. Reads
 * the extension's settings (plus certlc's own), fetches each observed
 * certificate's secret, installs it crash-safely and runs a reload command
 * when it changed; once, or as a polling daemon. */
#ifndef CLC_SYNC_H
#define CLC_SYNC_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "azure/auth.h"
#include "core/err.h"
#include "net/http.h"

#define CLC_SYNC_SETTINGS_MAX (256 * 1024)
#define CLC_SYNC_CERTS_MAX 1000
#define CLC_SYNC_ARGV_MAX 32
#define CLC_SYNC_NAME_MAX 200 /* a file name we make, before suffixes */
#define CLC_SYNC_DEFAULT_STORE "/var/lib/waagent/Microsoft.Azure.KeyVault.Store"

enum clc_sync_layout {
    CLC_SYNC_LAYOUT_EXTENSION = 0, /* one PEM (leaf, chain, key) per version + symlink */
    CLC_SYNC_LAYOUT_SEPARATE, /* a directory of cert/chain/fullchain/key per version + symlink */
};

/* A command run after a change: argv only, never a shell. */
struct clc_sync_reload {
    char *argv[CLC_SYNC_ARGV_MAX + 1]; /* NULL-terminated; argv[0] NULL = no command */
    int timeout_s;
};

/* Separate-layout file names inside each version directory ("" = not written). */
struct clc_sync_files {
    char cert[128], chain[128], fullchain[128], key[128], pkcs12[128];
};

/* How one certificate is written (global defaults, per-certificate overrides). */
struct clc_sync_output {
    enum clc_sync_layout layout;
    struct clc_sync_files files;
    int pkcs12;           /* extension layout: also <entry>.pfx + <link>.pfx */
    char *pkcs12_pw_file; /* NULL = PKCS#12 without a password (as Key Vault's) */
    struct clc_sync_reload reload;
};

struct clc_sync_cert {
    char *url;        /* as configured (versionless secret URL) */
    char *vault_url;  /* https://host[:port] */
    char *vault_name; /* for file names */
    char *name;       /* certificate (= secret) name */
    char *store;      /* directory */
    char *link;       /* stable symlink name: customSymbolicLinkName or <vault>.<name> */
    struct clc_sync_output out;
};

struct clc_sync_settings {
    struct clc_sync_cert *certs;
    size_t ncerts;
    int64_t polling_interval_s; /* pollingIntervalInS, default 3600 */
    int require_initial_sync;
    char *msi_endpoint;  /* authenticationSettings; NULL when absent */
    char *msi_client_id; /* NULL when absent */
    /* certlc's own */
    int has_owner, has_group;
    uid_t owner;
    gid_t group;
    mode_t dir_mode, key_mode, cert_mode;
    int keep_versions;             /* versions kept per certificate, the current included */
    int verify_challenge_resource; /* default 1 */
    char *auth_method;             /* NULL = from authenticationSettings, else "arc", ... */
    int64_t initial_sync_timeout_s;
    int initial_sync_attempts; /* 25, as the extension */
    int64_t max_backoff_s;
    int jitter_percent;
    int64_t pass_timeout_s; /* daemon: a pass still running then is killed */
};

/* Parses settings text: the extension's settings object, or an ARM extension
 * resource ({"properties":{"settings":…}}) or {"settings":…} around it.
 * vault_names (optional, borrowed) maps vault base URLs to names. Errors say
 * which member and why; unknown members are refused (a typo is an error). */
enum clc_err clc_sync_settings_parse(const char *text, size_t len, const char *origin,
                                     struct clc_sync_settings *out, struct clc_errinfo *ei);
enum clc_err clc_sync_settings_load(const char *path, struct clc_sync_settings *out,
                                    struct clc_errinfo *ei);
void clc_sync_settings_cleanup(struct clc_sync_settings *s);

/* Auth options the extension's authenticationSettings imply (managed identity
 * through IMDS, or Arc when the endpoint is HIMDS's port 40342 or certlc's
 * authMethod says "arc"). Strings point into s and buf. CLC_ERR_NOT_FOUND
 * when the settings name no endpoint or client id. */
enum clc_err clc_sync_auth_opts(const struct clc_sync_settings *s, char *buf, size_t bufsize,
                                struct clc_auth_opts *out, struct clc_errinfo *ei);

/* One pass over every observed certificate. */
struct clc_sync_result {
    int changed, unchanged, failed;
    int reloads_ok, reloads_failed;
};

struct clc_sync;
/* auth and http_opts are borrowed and must outlive the handle. */
enum clc_err clc_sync_new(const struct clc_sync_settings *s, struct clc_auth *auth,
                          const struct clc_http_opts *http_opts, struct clc_sync **out,
                          struct clc_errinfo *ei);
void clc_sync_free(struct clc_sync *sy);
const struct clc_sync_settings *clc_sync_settings_of(const struct clc_sync *sy);
/* CLC_OK when every certificate and reload succeeded; else the first error
 * (each failure is also logged with its certificate). */
enum clc_err clc_sync_pass(struct clc_sync *sy, struct clc_sync_result *res,
                           struct clc_errinfo *ei);

/* clc_sync_pass in a child process, killed after timeout_ms (or, once *stop
 * is set, told to end): the daemon's idle memory stays what it was before the
 * first pass, and a hung pass cannot stall later polls. The handle's caches
 * (tokens, connections) do not outlive the child. */
enum clc_err clc_sync_pass_isolated(struct clc_sync *sy, int64_t timeout_ms,
                                    volatile sig_atomic_t *stop, struct clc_sync_result *res,
                                    struct clc_errinfo *ei);

/* The daemon: a pass, then sleep the interval ± jitter, with exponential
 * backoff after failures; requireInitialSync makes the first pass retry
 * (bounded) and fail the daemon if it never succeeds. */
struct clc_sync_daemon_opts {
    volatile sig_atomic_t *stop; /* set by a signal handler */
    /* Tests replace the sleep; it returns early when *stop is set. */
    void (*sleep_ms)(void *ctx, int64_t ms);
    void *sleep_ctx;
    int max_passes;              /* 0 = until stopped */
    void (*on_ready)(void *ctx); /* after the first successful pass (sd_notify) */
    void *ready_ctx;
    /* Each pass in a child process (clc_sync_pass_isolated), as the daemon
     * binary runs; tests of the schedule alone leave it 0. */
    int isolate_passes;
};
/* CLC_OK when stopped; an error when the initial sync was required and
 * never succeeded. */
enum clc_err clc_sync_daemon(struct clc_sync *sy, const struct clc_sync_daemon_opts *o,
                             struct clc_errinfo *ei);
/* Milliseconds before the next pass: interval ± jitter after a success,
 * min(maxBackoffS (default: the interval), 30 s · 2^(failures-1)) ± jitter
 * after failures. */
int64_t clc_sync_next_delay_ms(const struct clc_sync_settings *s, int failures);

#endif
