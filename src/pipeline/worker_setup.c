/* A worker from the configuration alone, as the commands build it: the
 * renew.* settings, the Entra ID client, the queue credential (bearer,
 * Shared Key or SAS), and e-mail and Log Analytics when configured (both
 * optional: a renewal never waits on them). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "ca/ca.h"
#include "pipeline/worker_int.h"

static enum clc_err make_cred(const struct clc_config *cfg, const struct clc_renew_settings *set,
                              struct clc_auth *auth, struct clc_storage_cred **out,
                              struct clc_errinfo *ei)
{
    struct clc_secret *sec = NULL;
    enum clc_err rc;

    switch (set->queue_auth) {
    case CLC_RENEW_QAUTH_SHARED_KEY:
        rc = clc_config_secret(cfg, "renew.queue.key", &sec, ei);
        if (rc == CLC_ERR_NOT_FOUND)
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "renew.queue.auth shared_key needs renew.queue.key_file or _env");
        if (rc == CLC_OK)
            rc = clc_storage_cred_shared_key(set->account, sec, out, ei);
        break;
    case CLC_RENEW_QAUTH_SAS:
        rc = clc_config_secret(cfg, "renew.queue.sas", &sec, ei);
        if (rc == CLC_ERR_NOT_FOUND)
            rc = clc_errf(ei, CLC_ERR_CONFIG,
                          "renew.queue.auth sas needs renew.queue.sas_file or _env");
        if (rc == CLC_OK)
            rc = clc_storage_cred_sas(sec, out, ei);
        break;
    default:
        rc = clc_storage_cred_bearer(auth, NULL, out, ei);
        break;
    }
    clc_secret_free(sec);
    return rc;
}

enum clc_err clc_worker_from_config(const struct clc_config *cfg, const struct clc_http_opts *http,
                                    int threads, struct clc_worker **out, struct clc_errinfo *ei)
{
    struct clc_renew_settings set;
    struct clc_auth *auth = NULL;
    struct clc_storage_cred *cred = NULL;
    struct clc_notify *notify = NULL;
    struct clc_la *la = NULL;
    struct clc_worker *w = NULL;
    enum clc_err rc;

    *out = NULL;
    memset(&set, 0, sizeof set);
    if ((rc = clc_renew_settings_from_config(cfg, &set, ei)) != CLC_OK)
        return rc;
    /* Before the lanes' threads exist: they make their CA clients later. */
    if ((rc = clc_ca_kerberos_env(cfg, ei)) != CLC_OK)
        goto out;
    if ((rc = clc_auth_from_config(cfg, http, &auth, ei)) != CLC_OK ||
        (rc = make_cred(cfg, &set, auth, &cred, ei)) != CLC_OK)
        goto out;
    rc = clc_notify_from_config(cfg, http, &notify, ei);
    if (rc == CLC_ERR_NOT_FOUND)
        clc_log(CLC_LOG_INFO, "renew.no_email", CLC_LS("why", "smtp.* is not configured"));
    else if (rc != CLC_OK)
        goto out;
    rc = clc_la_from_config(cfg, http, auth, &la, ei);
    if (rc == CLC_ERR_NOT_FOUND)
        clc_log(CLC_LOG_INFO, "renew.no_log_analytics",
                CLC_LS("why", "loganalytics.* is not configured"));
    else if (rc != CLC_OK)
        goto out;
    clc_errinfo_clear(ei);

    struct clc_worker_opts o = {.cfg = cfg,
                                .set = &set,
                                .http = http,
                                .auth = auth,
                                .cred = cred,
                                .notify = notify,
                                .la = la,
                                .threads = threads,
                                .abort_after = -1};
    if ((rc = clc_worker_new(&o, &w, ei)) != CLC_OK)
        goto out;
    /* The settings move into the worker (nothing kept a pointer to the
     * local copy beyond clc_worker_new's own use of w->o.set). */
    w->own_set = set;
    w->o.set = &w->own_set;
    memset(&set, 0, sizeof set);
    w->owns = 1;
    w->own_auth = auth;
    w->own_cred = cred;
    w->own_notify = notify;
    w->own_la = la;
    *out = w;
    return CLC_OK;
out:
    clc_la_free(la);
    clc_notify_free(notify);
    clc_storage_cred_free(cred);
    clc_auth_free(auth);
    clc_renew_settings_cleanup(&set);
    return rc;
}
