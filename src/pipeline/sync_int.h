/* Pieces of certlc sync shared between its files and its unit tests: the
 * certificate material read from a secret, the safe store writer, and the
 * reload runner. Not a public interface. */
#ifndef CLC_SYNC_INT_H
#define CLC_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/err.h"
#include "core/secret.h"
#include "pipeline/sync.h"

/* ---- material (sync_material.c) */

/* A certificate with its key, as the secret behind it holds them. */
struct clc_sync_material {
    EVP_PKEY *key;
    STACK_OF(X509) * chain; /* leaf first */
    char sha256_hex[65];    /* of the leaf */
};
void clc_sync_material_cleanup(struct clc_sync_material *m);
/* Reads a secret's value: application/x-pkcs12 (base64 PFX, empty password)
 * or application/x-pem-file (PKCS#8 key and certificates; base64 of that
 * also accepted); no or another content type: sniffed. Refuses a value with
 * no key, no or several leaves, or a key that is not the leaf's. */
enum clc_err clc_sync_material_parse(const char *content_type, const struct clc_secret *value,
                                     struct clc_sync_material *out, struct clc_errinfo *ei);

/* Serialisations (secrets: key bytes). */
enum clc_err clc_sync_pem_certs(STACK_OF(X509) * chain, int from, int to, char **out, size_t *len,
                                struct clc_errinfo *ei);
enum clc_err clc_sync_pem_key(EVP_PKEY *key, struct clc_secret **out, struct clc_errinfo *ei);
/* PEM leaf, chain, then the key: the extension's single file. */
enum clc_err clc_sync_pem_bundle(const struct clc_sync_material *m, struct clc_secret **out,
                                 struct clc_errinfo *ei);
/* PKCS#12 (AES-256 / SHA-256); pw NULL = no password. */
enum clc_err clc_sync_pkcs12(const struct clc_sync_material *m, const struct clc_secret *pw,
                             struct clc_secret **out, struct clc_errinfo *ei);
/* SHA-256 thumbprint of the first certificate of a PEM text. */
enum clc_err clc_sync_pem_leaf_sha256(const char *pem, size_t len, char out[65],
                                      struct clc_errinfo *ei);

/* ---- names (sync_settings.c) */

/* 1 when s is a safe single file name: 1..max bytes of [A-Za-z0-9._-],
 * not starting with '.', no "..". */
int clc_sync_name_safe(const char *s, size_t max);

/* ---- store (sync_store.c) */

/* Test hook: called at each step of an install with the step's name
 * ("temp_written", "entry_renamed", "marker_written", "link_temp",
 * "link_switched", "pruned"). The crash-safety test kills the process there. */
extern void (*clc_sync_store_hook)(const char *step);

struct clc_sync_store;
struct clc_sync_store_opts {
    const char *path;
    mode_t dir_mode, key_mode, cert_mode;
    int has_owner, has_group;
    uid_t owner;
    gid_t group;
};
/* Opens (creating it, parents 0755, itself dir_mode) the store directory and
 * checks it: not a symlink, a directory, not world-writable, owned by us or
 * root; takes an exclusive lock on it for the handle's life. */
enum clc_err clc_sync_store_open(const struct clc_sync_store_opts *o, struct clc_sync_store **out,
                                 struct clc_errinfo *ei);
void clc_sync_store_close(struct clc_sync_store *st);
const char *clc_sync_store_path(const struct clc_sync_store *st);

/* What link points at: the entry name and the version after "<prefix>.";
 * both "" when the link does not exist. An entry that is missing or
 * incomplete counts as not installed (version ""). */
struct clc_sync_installed {
    char entry[300];
    char version[128];
};
enum clc_err clc_sync_store_installed(struct clc_sync_store *st, const char *link,
                                      const char *prefix, enum clc_sync_layout layout,
                                      struct clc_sync_installed *out, struct clc_errinfo *ei);
/* SHA-256 of the installed leaf (for logs and the change check). */
enum clc_err clc_sync_store_installed_sha256(struct clc_sync_store *st,
                                             const struct clc_sync_installed *in,
                                             enum clc_sync_layout layout,
                                             const struct clc_sync_files *files, char out[65],
                                             struct clc_errinfo *ei);

/* One version to install: entry = <prefix>.<version>. */
struct clc_sync_install {
    const char *link;
    const char *prefix;
    const char *version;
    const struct clc_sync_output *out;
    const struct clc_sync_material *m;
    const struct clc_secret *pkcs12_pw; /* NULL = none */
    int mark_reload;                    /* write the reload marker before the switch */
    int keep;                           /* versions kept, the new one included */
};
/* Writes the entry completely, syncs it, (marks the reload,) switches the
 * link atomically, syncs the directory, prunes old versions. A failure
 * before the switch leaves the served files as they were. */
enum clc_err clc_sync_store_install(struct clc_sync_store *st, const struct clc_sync_install *in,
                                    struct clc_errinfo *ei);

/* The reload marker ".<link>.reload-pending": set before a switch, cleared
 * after the reload succeeded, so a crash or failed reload is retried. */
int clc_sync_store_reload_pending(struct clc_sync_store *st, const char *link);
enum clc_err clc_sync_store_reload_done(struct clc_sync_store *st, const char *link,
                                        struct clc_errinfo *ei);

/* ---- reload (sync_reload.c) */

/* Runs argv with a minimal environment (PATH only), stdin /dev/null, its
 * output to our stderr, killed after timeout_s. CLC_OK on exit status 0;
 * the message says how it ended. */
enum clc_err clc_sync_run(char *const argv[], int timeout_s, struct clc_errinfo *ei);

#endif
