/* The emulated CA's control API (/control/ca/..., admin token checked by the
 * core): list requests and their dispositions, approve or deny a pending
 * request, revoke an issued certificate (the CRL is re-signed), list the
 * templates; plus the reset and state-dump hooks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "emulator/ca.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/state.h"

#define CONTROL_BODY_MAX ((size_t)4096)

static int path_id(struct emu_req *r, int64_t *id)
{
    const char *s = emu_req_param(r, "id");
    char *end;
    long long v;

    if (s == NULL || s[0] < '0' || s[0] > '9' || strlen(s) > 18)
        return 0;
    v = strtoll(s, &end, 10);
    if (*end != '\0' || v < 1)
        return 0;
    *id = v;
    return 1;
}

static void reply_row(struct emu_req *r, const struct ca_request *q, int with_cert)
{
    cJSON *o = ca_request_json(q, with_cert);

    if (o == NULL)
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply_json(r, 200, o, NULL);
    cJSON_Delete(o);
}

static void h_list(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject(), *arr = doc ? cJSON_AddArrayToObject(doc, "requests") : NULL;
    int bad = arr == NULL;

    pthread_mutex_lock(&ca->mu);
    for (size_t i = 0; !bad && i < ca->nreq; i++) {
        cJSON *o = ca_request_json(&ca->req[i], 0);
        bad = o == NULL || !cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&ca->mu);
    if (bad)
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply_json(r, 200, doc, NULL);
    cJSON_Delete(doc);
}

/* Takes the lock and finds the row; answers 400/404 and returns NULL
 * (unlocked) when there is none. */
static struct ca_request *locked_row(struct emu_req *r, struct emu_ca *ca)
{
    struct ca_request *q;
    int64_t id = 0;

    if (!path_id(r, &id)) {
        emu_reply_azure_error(r, 400, "BadRequest", "the request id must be a positive integer");
        return NULL;
    }
    pthread_mutex_lock(&ca->mu);
    q = ca_store_get(ca, id);
    if (q == NULL) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 404, "NotFound", "no request %lld", (long long)id);
    }
    return q;
}

static void h_get(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct ca_request *q = locked_row(r, ca);
    cJSON *o;

    if (q == NULL)
        return;
    o = ca_request_json(q, 1);
    pthread_mutex_unlock(&ca->mu);
    if (o == NULL)
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply_json(r, 200, o, NULL);
    cJSON_Delete(o);
}

static void h_approve(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct ca_request *q = locked_row(r, ca);
    struct clc_errinfo ei = {0};
    cJSON *o = NULL;
    enum clc_err rc;

    if (q == NULL)
        return;
    if (q->disposition != CA_DISP_PENDING) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 409, "Conflict", "request %lld is %s, not pending",
                              (long long)q->id, ca_disp_name(q->disposition));
        return;
    }
    /* The officer's resubmission issues with today's date, as AD CS does. */
    rc = ca_issue_pending(ca, q, emu_now(r->emu), &ei);
    if (rc == CLC_OK)
        rc = ca_store_save(ca, &ei);
    if (rc == CLC_OK)
        o = ca_request_json(q, 1);
    pthread_mutex_unlock(&ca->mu);
    if (rc != CLC_OK)
        emu_reply_azure_error(r, rc == CLC_ERR_CONFLICT ? 409 : 500, "IssueFailed", "%s", ei.msg);
    else if (o == NULL)
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply_json(r, 200, o, NULL);
    cJSON_Delete(o);
}

static void h_deny(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct ca_request *q = locked_row(r, ca);
    struct clc_errinfo ei = {0};
    enum clc_err rc;

    if (q == NULL)
        return;
    if (q->disposition != CA_DISP_PENDING) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 409, "Conflict", "request %lld is %s, not pending",
                              (long long)q->id, ca_disp_name(q->disposition));
        return;
    }
    q->disposition = CA_DISP_DENIED;
    q->status = CA_HR_ADMIN_DENIED;
    snprintf(q->message, sizeof q->message, "Denied by Officer");
    q->resolved = emu_now(r->emu);
    rc = ca_store_save(ca, &ei);
    if (rc != CLC_OK) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 500, "SaveFailed", "%s", ei.msg);
        return;
    }
    clc_log(CLC_LOG_INFO, "emu.ca.officer_denied", CLC_LI("request_id", q->id));
    reply_row(r, q, 0);
    pthread_mutex_unlock(&ca->mu);
}

static void h_revoke(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    struct ca_request *q;
    struct clc_errinfo ei = {0};
    cJSON *body = NULL;
    int reason = 0;
    enum clc_err rc;

    if (r->body_len > 0) {
        if (clc_json_parse(r->body, r->body_len, CONTROL_BODY_MAX, &body, &ei) != CLC_OK ||
            !cJSON_IsObject(body)) {
            cJSON_Delete(body);
            emu_reply_azure_error(r, 400, "BadRequest", "the body must be a JSON object: %s",
                                  ei.msg);
            return;
        }
        reason = ca_reason_parse(cJSON_GetObjectItemCaseSensitive(body, "reason"));
        cJSON_Delete(body);
        if (reason < 0) {
            emu_reply_azure_error(r, 400, "BadRequest",
                                  "reason: an RFC 5280 CRLReason name (keyCompromise, "
                                  "superseded, ...) or number");
            return;
        }
    }
    q = locked_row(r, ca);
    if (q == NULL)
        return;
    if (q->disposition != CA_DISP_ISSUED) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 409, "Conflict", "request %lld is %s, not issued",
                              (long long)q->id, ca_disp_name(q->disposition));
        return;
    }
    q->disposition = CA_DISP_REVOKED;
    q->revoked_at = emu_now(r->emu);
    q->revocation_reason = reason;
    snprintf(q->message, sizeof q->message, "Revoked");
    /* The CRL follows at once (ca_crl_sign also saves the table). */
    rc = ca_crl_sign(ca, q->revoked_at, &ei);
    if (rc != CLC_OK) {
        pthread_mutex_unlock(&ca->mu);
        emu_reply_azure_error(r, 500, "RevokeFailed", "%s", ei.msg);
        return;
    }
    clc_log(CLC_LOG_INFO, "emu.ca.revoked", CLC_LI("request_id", q->id),
            CLC_LS("serial", q->serial), CLC_LS("reason", ca_reason_name(reason)));
    reply_row(r, q, 0);
    pthread_mutex_unlock(&ca->mu);
}

static cJSON *templates_json(const struct emu_ca *ca)
{
    cJSON *arr = cJSON_CreateArray();

    for (size_t i = 0; arr != NULL && i < ca->ntmpl; i++) {
        const struct ca_template *t = &ca->tmpl[i];
        cJSON *o = cJSON_CreateObject(), *ekus = o ? cJSON_AddArrayToObject(o, "ekus") : NULL;
        int bad = ekus == NULL || !cJSON_AddItemToArray(arr, o);
        if (bad)
            cJSON_Delete(o);
        bad = bad || clc_json_add_str(o, "name", t->name) || clc_json_add_str(o, "oid", t->oid) ||
              clc_json_add_int(o, "major", t->major) || clc_json_add_int(o, "minor", t->minor) ||
              clc_json_add_int(o, "validity_seconds", t->validity_s) ||
              clc_json_add_bool(o, "approval", t->approval);
        for (size_t k = 0; !bad && k < t->nekus; k++)
            bad = !cJSON_AddItemToArray(ekus, cJSON_CreateString(t->ekus[k]));
        if (bad) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

static void h_templates(struct emu_req *r)
{
    struct emu_ca *ca = r->svc_ctx;
    cJSON *doc = cJSON_CreateObject(), *arr = templates_json(ca);

    if (doc == NULL || arr == NULL) {
        cJSON_Delete(doc);
        cJSON_Delete(arr);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    cJSON_AddItemToObject(doc, "templates", arr);
    emu_reply_json(r, 200, doc, NULL);
    cJSON_Delete(doc);
}

static const struct emu_route control_routes[] = {
    {"GET", "/control/ca/requests", h_list},
    {"GET", "/control/ca/requests/{id}", h_get},
    {"POST", "/control/ca/requests/{id}/approve", h_approve},
    {"POST", "/control/ca/requests/{id}/deny", h_deny},
    {"POST", "/control/ca/requests/{id}/revoke", h_revoke},
    {"GET", "/control/ca/templates", h_templates},
};

/* Reset forgets every request (ids start again at 1) but keeps the CA keys:
 * clients keep trusting the same root. */
static void ca_reset(struct emu *e, void *ctx)
{
    struct emu_ca *ca = ctx;
    struct clc_errinfo ei = {0};

    pthread_mutex_lock(&ca->mu);
    ca_store_clear(ca);
    if (ca_crl_sign(ca, emu_now(e), &ei) != CLC_OK)
        clc_log(CLC_LOG_ERROR, "emu.ca.reset_failed", CLC_LS("reason", ei.msg));
    pthread_mutex_unlock(&ca->mu);
}

static cJSON *ca_dump(struct emu *e, void *ctx)
{
    struct emu_ca *ca = ctx;
    cJSON *doc = cJSON_CreateObject(), *reqs = doc ? cJSON_AddArrayToObject(doc, "requests") : NULL;
    cJSON *accts = doc ? cJSON_AddObjectToObject(doc, "accounts") : NULL;
    cJSON *tmpl = templates_json(ca);
    int bad = reqs == NULL || accts == NULL || tmpl == NULL;

    (void)e;
    if (!bad)
        cJSON_AddItemToObject(doc, "templates", tmpl);
    else
        cJSON_Delete(tmpl);
    /* Account names and rights only: passwords are in the endpoints file. */
    for (size_t i = 0; !bad && i < ca->nacct; i++) {
        const struct ca_account *a = &ca->acct[i];
        cJSON *arr = cJSON_AddArrayToObject(accts, a->name);
        bad = arr == NULL ||
              (a->all_templates && !cJSON_AddItemToArray(arr, cJSON_CreateString("*")));
        for (size_t k = 0; !bad && k < a->ntemplates; k++)
            bad = !cJSON_AddItemToArray(arr, cJSON_CreateString(a->templates[k]));
    }
    pthread_mutex_lock(&ca->mu);
    for (size_t i = 0; !bad && i < ca->nreq; i++) {
        cJSON *o = ca_request_json(&ca->req[i], 0);
        bad = o == NULL || !cJSON_AddItemToArray(reqs, o);
    }
    bad = bad || clc_json_add_int(doc, "crl_number", ca->crl_number);
    pthread_mutex_unlock(&ca->mu);
    if (bad) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}

enum clc_err ca_control_mount(struct emu_ca *ca, struct clc_errinfo *ei)
{
    enum clc_err rc = emu_control_register(ca->e, "ca", ca_reset, ca_dump, ca);

    if (rc == CLC_OK)
        rc = emu_control_add_routes(ca->e, "ca", control_routes,
                                    sizeof control_routes / sizeof control_routes[0], ca);
    return rc == CLC_OK ? CLC_OK : clc_errf(ei, rc, "ca: control API registration failed");
}
