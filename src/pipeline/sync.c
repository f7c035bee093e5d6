/* One sync pass: for every observed certificate, fetch the secret behind it,
 * and when its version differs from the installed one, check it and install
 * it; then run each distinct reload command once for what changed (or what
 * a failed or interrupted reload left marked). A failure stays with its
 * certificate: the others are still synced, the old files stay served. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/keyvault.h"
#include "core/log.h"
#include "pipeline/sync.h"
#include "pipeline/sync_int.h"

struct vault {
    const char *url; /* borrowed from the settings */
    struct clc_kv *kv;
};

struct clc_sync {
    const struct clc_sync_settings *s;
    struct clc_auth *auth;
    struct vault *vaults;
    size_t nvaults;
};

void clc_sync_free(struct clc_sync *sy)
{
    if (!sy)
        return;
    for (size_t i = 0; i < sy->nvaults; i++)
        clc_kv_free(sy->vaults[i].kv);
    free(sy->vaults);
    free(sy);
}

enum clc_err clc_sync_new(const struct clc_sync_settings *s, struct clc_auth *auth,
                          const struct clc_http_opts *http_opts, struct clc_sync **out,
                          struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct clc_sync *sy = calloc(1, sizeof *sy);
    struct clc_retry_policy retry;

    *out = NULL;
    if (!sy || !(sy->vaults = calloc(s->ncerts ? s->ncerts : 1, sizeof *sy->vaults))) {
        free(sy);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    sy->s = s;
    sy->auth = auth;
    /* The next poll is the real retry: keep each pass short. */
    clc_retry_policy_default(&retry);
    retry.max_attempts = 3;
    retry.max_total_ms = 30000;
    for (size_t i = 0; i < s->ncerts; i++) {
        const struct clc_sync_cert *c = &s->certs[i];
        size_t j = 0;
        while (j < sy->nvaults && strcmp(sy->vaults[j].url, c->vault_url) != 0)
            j++;
        if (j < sy->nvaults)
            continue;
        struct clc_kv_opts ko = {.vault_url = c->vault_url,
                                 .vault_name = c->vault_name,
                                 .disable_challenge_resource_verification =
                                     !s->verify_challenge_resource,
                                 .retry = &retry};
        if ((rc = clc_kv_new(&ko, http_opts, auth, &sy->vaults[j].kv, ei)) != CLC_OK)
            goto out;
        sy->vaults[j].url = c->vault_url;
        sy->nvaults++;
    }
    *out = sy;
    sy = NULL;
out:
    clc_sync_free(sy);
    return rc;
}

const struct clc_sync_settings *clc_sync_settings_of(const struct clc_sync *sy)
{
    return sy->s;
}

static struct clc_kv *vault_of(struct clc_sync *sy, const struct clc_sync_cert *c)
{
    for (size_t i = 0; i < sy->nvaults; i++)
        if (!strcmp(sy->vaults[i].url, c->vault_url))
            return sy->vaults[i].kv;
    return NULL;
}

/* Stores opened for one pass (each locked while the pass runs). */
struct stores {
    struct clc_sync_store **v;
    size_t n;
};

static enum clc_err store_for(struct clc_sync *sy, struct stores *ss, const char *path,
                              struct clc_sync_store **out, struct clc_errinfo *ei)
{
    for (size_t i = 0; i < ss->n; i++)
        if (ss->v[i] && !strcmp(clc_sync_store_path(ss->v[i]), path)) {
            *out = ss->v[i];
            return CLC_OK;
        }
    const struct clc_sync_settings *s = sy->s;
    struct clc_sync_store_opts o = {.path = path,
                                    .dir_mode = s->dir_mode,
                                    .key_mode = s->key_mode,
                                    .cert_mode = s->cert_mode,
                                    .has_owner = s->has_owner,
                                    .has_group = s->has_group,
                                    .owner = s->owner,
                                    .group = s->group};
    enum clc_err rc = clc_sync_store_open(&o, out, ei);
    if (rc == CLC_OK)
        ss->v[ss->n++] = *out;
    return rc;
}

static void log_failure(const struct clc_sync_cert *c, const char *what, enum clc_err e,
                        const struct clc_errinfo *ei)
{
    clc_log(CLC_LOG_ERROR, "sync.failed", CLC_LS("vault", c->vault_name),
            CLC_LS("certificate", c->name), CLC_LS("step", what), CLC_LS("error", clc_err_name(e)),
            CLC_LS("detail", ei->msg));
}

/* Syncs one certificate; *changed when a new version was installed. */
static enum clc_err sync_one(struct clc_sync *sy, struct stores *ss, const struct clc_sync_cert *c,
                             int *changed, struct clc_errinfo *ei)
{
    enum clc_err rc;
    struct clc_sync_store *st = NULL;
    struct clc_sync_installed inst;
    struct clc_kv_secret_bundle sec;
    struct clc_sync_material m;
    struct clc_secret *pw = NULL;
    char prefix[300], old_sha[65] = "";
    const char *step = "store";

    memset(&sec, 0, sizeof sec);
    memset(&m, 0, sizeof m);
    *changed = 0;
    snprintf(prefix, sizeof prefix, "%s.%s", c->vault_name, c->name);
    if ((rc = store_for(sy, ss, c->store, &st, ei)) != CLC_OK ||
        (rc = clc_sync_store_installed(st, c->link, prefix, c->out.layout, &inst, ei)) != CLC_OK)
        goto out;
    step = "fetch";
    rc = clc_kv_get_secret(vault_of(sy, c), c->name, NULL, &sec, ei);
    if (rc == CLC_ERR_FORBIDDEN)
        clc_err_wrap(ei, rc,
                     "the identity may read secrets of vault %s only with the role Key Vault "
                     "Secrets User",
                     c->vault_name);
    if (rc != CLC_OK)
        goto out;
    if (inst.version[0] && !strcmp(inst.version, sec.version)) {
        clc_log(CLC_LOG_DEBUG, "sync.unchanged", CLC_LS("vault", c->vault_name),
                CLC_LS("certificate", c->name), CLC_LS("version", sec.version));
        goto out;
    }
    step = "parse";
    if ((rc = clc_sync_material_parse(sec.content_type, sec.value, &m, ei)) != CLC_OK) {
        clc_err_wrap(ei, rc, "secret %s/%s version %s", c->vault_name, c->name, sec.version);
        goto out;
    }
    if (inst.entry[0]) {
        struct clc_errinfo tmp;
        clc_errinfo_clear(&tmp);
        if (clc_sync_store_installed_sha256(st, &inst, c->out.layout, &c->out.files, old_sha,
                                            &tmp) != CLC_OK)
            old_sha[0] = '\0';
    }
    if (old_sha[0] && !strcmp(old_sha, m.sha256_hex))
        clc_log(CLC_LOG_INFO, "sync.same_certificate", CLC_LS("vault", c->vault_name),
                CLC_LS("certificate", c->name), CLC_LS("version", sec.version),
                CLC_LS("previous_version", inst.version));
    step = "install";
    if (c->out.pkcs12 && c->out.pkcs12_pw_file &&
        (rc = clc_secret_from_file(c->out.pkcs12_pw_file, &pw, ei)) != CLC_OK)
        goto out;
    struct clc_sync_install in = {.link = c->link,
                                  .prefix = prefix,
                                  .version = sec.version,
                                  .out = &c->out,
                                  .m = &m,
                                  .pkcs12_pw = pw,
                                  .mark_reload = c->out.reload.argv[0] != NULL,
                                  .keep = sy->s->keep_versions};
    if ((rc = clc_sync_store_install(st, &in, ei)) != CLC_OK)
        goto out;
    *changed = 1;
    clc_log(CLC_LOG_INFO, "sync.installed", CLC_LS("vault", c->vault_name),
            CLC_LS("certificate", c->name), CLC_LS("version", sec.version),
            CLC_LS("sha256", m.sha256_hex), CLC_LS("previous_version", inst.version),
            CLC_LS("previous_sha256", old_sha), CLC_LS("store", c->store), CLC_LS("link", c->link));
out:
    if (rc != CLC_OK)
        log_failure(c, step, rc, ei);
    clc_secret_free(pw);
    clc_sync_material_cleanup(&m);
    clc_kv_secret_bundle_cleanup(&sec);
    return rc;
}

static int same_argv(char *const a[], char *const b[])
{
    int i = 0;
    for (; a[i] && b[i]; i++)
        if (strcmp(a[i], b[i]) != 0)
            return 0;
    return !a[i] && !b[i];
}

/* Runs each distinct reload command whose certificates are marked, once. */
static enum clc_err run_reloads(struct clc_sync *sy, struct stores *ss, struct clc_sync_result *res,
                                struct clc_errinfo *ei)
{
    const struct clc_sync_settings *s = sy->s;
    enum clc_err first = CLC_OK;
    /* outcome[i]: 0 not run, 1 ok, -1 failed, for the command of cert i. */
    signed char *outcome = calloc(s->ncerts, 1);
    if (!outcome)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->ncerts; i++) {
        const struct clc_sync_cert *c = &s->certs[i];
        struct clc_sync_store *st = NULL;
        struct clc_errinfo tmp;
        clc_errinfo_clear(&tmp);
        if (!c->out.reload.argv[0] || store_for(sy, ss, c->store, &st, &tmp) != CLC_OK ||
            !clc_sync_store_reload_pending(st, c->link))
            continue;
        int done = 0;
        for (size_t j = 0; j < i && !done; j++)
            if (outcome[j] && same_argv(s->certs[j].out.reload.argv, c->out.reload.argv)) {
                outcome[i] = outcome[j];
                done = 1;
            }
        if (!done) {
            int64_t t0 = clc_mono_ms();
            enum clc_err e = clc_sync_run(c->out.reload.argv, c->out.reload.timeout_s, &tmp);
            outcome[i] = e == CLC_OK ? 1 : -1;
            if (e == CLC_OK) {
                res->reloads_ok++;
                clc_log(CLC_LOG_INFO, "sync.reloaded", CLC_LS("command", c->out.reload.argv[0]),
                        CLC_LI("ms", clc_mono_ms() - t0));
            } else {
                res->reloads_failed++;
                clc_log(CLC_LOG_ERROR, "sync.reload_failed",
                        CLC_LS("command", c->out.reload.argv[0]), CLC_LS("detail", tmp.msg),
                        CLC_LS("retry", "next pass"));
                if (first == CLC_OK) {
                    first = e;
                    clc_errf(ei, e, "reload command failed (retried next pass): %s", tmp.msg);
                }
            }
        }
        if (outcome[i] == 1 && clc_sync_store_reload_done(st, c->link, &tmp) != CLC_OK &&
            first == CLC_OK)
            first = clc_errf(ei, CLC_ERR_IO, "%s", tmp.msg);
    }
    free(outcome);
    return first;
}

enum clc_err clc_sync_pass(struct clc_sync *sy, struct clc_sync_result *res, struct clc_errinfo *ei)
{
    const struct clc_sync_settings *s = sy->s;
    enum clc_err first = CLC_OK;
    struct stores ss = {calloc(s->ncerts ? s->ncerts : 1, sizeof *ss.v), 0};
    int64_t t0 = clc_mono_ms();

    memset(res, 0, sizeof *res);
    if (!ss.v)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < s->ncerts; i++) {
        struct clc_errinfo one;
        int changed = 0;
        clc_errinfo_clear(&one);
        enum clc_err e = sync_one(sy, &ss, &s->certs[i], &changed, &one);
        if (e != CLC_OK) {
            res->failed++;
            if (first == CLC_OK) {
                first = e;
                if (ei)
                    *ei = one;
            }
        } else if (changed) {
            res->changed++;
        } else {
            res->unchanged++;
        }
    }
    struct clc_errinfo rei;
    clc_errinfo_clear(&rei);
    enum clc_err re = run_reloads(sy, &ss, res, &rei);
    if (re != CLC_OK && first == CLC_OK) {
        first = re;
        if (ei)
            *ei = rei;
    }
    for (size_t i = 0; i < ss.n; i++)
        clc_sync_store_close(ss.v[i]);
    free(ss.v);
    clc_log(first == CLC_OK ? CLC_LOG_INFO : CLC_LOG_WARN, "sync.pass",
            CLC_LI("certificates", s->ncerts), CLC_LI("changed", res->changed),
            CLC_LI("unchanged", res->unchanged), CLC_LI("failed", res->failed),
            CLC_LI("reloads_ok", res->reloads_ok), CLC_LI("reloads_failed", res->reloads_failed),
            CLC_LI("ms", clc_mono_ms() - t0));
    return first;
}
