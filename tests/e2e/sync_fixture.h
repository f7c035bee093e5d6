/* Shared by the certlc sync end-to-end tests: one emulator per binary (whose
 * managed identity, through IMDS and Arc alike, is the least-privileged
 * `sync` identity), the renewer's Key Vault client, extension settings and
 * certlc configuration files, runs of the certlc binary, and admin requests
 * (plain secrets, federated tokens). */
#ifndef TEST_SYNC_FIXTURE_H
#define TEST_SYNC_FIXTURE_H

#include <stddef.h>
#include <sys/types.h>
#include <cjson/cJSON.h>

#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

extern struct emu *sfx_emu;
extern cJSON *sfx_endpoints;
extern char sfx_dir[];                /* the test's temporary directory */
extern char sfx_cfg[];                /* certlc configuration: only the CA bundle */
extern char sfx_script[];             /* reload command: counts its runs in sfx_counter */
extern char sfx_counter[];            /* (and fails while sfx_counter.fail exists) */
extern char sfx_arc_keys[];           /* the emulated Arc agent's key directory */
extern struct test_proc_result sfx_R; /* the last certlc run */

/* cmocka group setup and teardown. */
int sfx_setup(void **state);
int sfx_teardown(void **state);

/* A member of the endpoints document ("services", "keyvault", "certlc"). */
const char *sfx_ep(const char *a, const char *b, const char *c);
const char *sfx_vault(void);

/* A new version of name (issuer Self: completed at once); pem = PEM secret. */
void sfx_renew(const char *name, int pem);
void sfx_version(const char *name, char *out, size_t n);

struct sfx_opts {
    const char *store;
    const char *identity;     /* msiClientId of: sync (default), reader */
    const char *vault_url;    /* default: the emulator's vault */
    const char *extra_sms;    /* more secretsManagementSettings members (",..." JSON) */
    const char *extra_own;    /* more certlc members */
    const char *extra_obs;    /* more observedCertificates (",..." JSON) */
    const char *msi_endpoint; /* default: the emulator's IMDS */
    int no_client_id;         /* no msiClientId (Arc: system-assigned only) */
    int api;                  /* also observe "api" (separate layout, group) */
};
/* Writes an extension settings file observing web (and more); returns its
 * path (a static buffer). */
const char *sfx_settings(const char *name, const struct sfx_opts *o);
/* Writes a certlc configuration with the CA bundle and auth_json (",\"auth\":
 * {...}" or ""); returns its path (static buffer). */
const char *sfx_config(const char *name, const char *auth_json);

/* certlc [--config config] sync --settings path --once: the exit code. */
int sfx_sync(const char *settings_path);
int sfx_sync_cfg(const char *config, const char *settings_path);

int sfx_reloads(void);
void sfx_reset_counter(void);
/* Where store/link points ("" when it is not a link). */
void sfx_link(const char *store, const char *link, char *out, size_t n);
mode_t sfx_mode(const char *path);

/* Set Secret as admin (Key Vault Secrets Officer holds it too): the new
 * version's id (malloc'd). content_type may be NULL. */
char *sfx_set_secret(const char *name, const char *value, const char *content_type);
/* The federated token the emulator's issuer gives identity, written to path
 * (what Kubernetes projects into a pod). */
void sfx_write_federated(const char *identity, const char *path);

#endif
