/* The control API ("control", https): clock, reset, state dump, fault rules
 * and health, every route behind an admin bearer token; later services add
 * reset/dump hooks and routes of their own under /control/<component>/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/emu_ext.h"
#include "emulator/emu_internal.h"
#include "emulator/identity.h"
#include "emulator/state.h"

#define CONTROL_BODY_MAX ((size_t)64 * 1024)
/* Year 9999: enough for any certificate date a test may want to reach. */
#define CLOCK_MAX_S 253402300799LL
#define ADVANCE_MAX_S (100LL * 366 * 86400)

static int component_ok(const char *c)
{
    size_t n = 0;

    if (c == NULL)
        return 0;
    for (; c[n]; n++)
        if (!((c[n] >= 'a' && c[n] <= 'z') || (c[n] >= '0' && c[n] <= '9') || c[n] == '-'))
            return 0;
    return n > 0 && n < EMU_KEY_MAX;
}

enum clc_err emu_control_register(struct emu *e, const char *component, emu_control_reset_fn reset,
                                  emu_control_dump_fn dump, void *ctx)
{
    enum clc_err rc = CLC_OK;

    /* "clock" and "faults" are the core's own keys in the state dump. */
    if (!component_ok(component) || strcmp(component, "clock") == 0 ||
        strcmp(component, "faults") == 0)
        return CLC_ERR_INVALID;
    pthread_mutex_lock(&e->hooks_mu);
    for (size_t i = 0; i < e->nhooks; i++)
        if (strcmp(e->hooks[i].component, component) == 0)
            rc = CLC_ERR_CONFLICT;
    if (rc == CLC_OK && e->nhooks == EMU_MAX_HOOKS)
        rc = CLC_ERR_LIMIT;
    if (rc == CLC_OK) {
        struct emu_hook *h = &e->hooks[e->nhooks++];
        snprintf(h->component, sizeof h->component, "%s", component);
        h->reset = reset;
        h->dump = dump;
        h->ctx = ctx;
    }
    pthread_mutex_unlock(&e->hooks_mu);
    return rc;
}

enum clc_err emu_control_add_routes(struct emu *e, const char *component,
                                    const struct emu_route *routes, size_t nroutes, void *ctx)
{
    char prefix[EMU_KEY_MAX + 16];
    enum clc_err rc = CLC_OK;

    if (!component_ok(component) || routes == NULL || nroutes == 0)
        return CLC_ERR_INVALID;
    /* Each pattern must stay inside its component's subtree. */
    snprintf(prefix, sizeof prefix, "/control/%s/", component);
    for (size_t i = 0; i < nroutes; i++)
        if (routes[i].pattern == NULL || routes[i].method == NULL || routes[i].fn == NULL ||
            strncmp(routes[i].pattern, prefix, strlen(prefix)) != 0)
            return CLC_ERR_INVALID;
    pthread_mutex_lock(&e->hooks_mu);
    if (e->nroutesets == EMU_MAX_CONTROL_ROUTESETS) {
        rc = CLC_ERR_LIMIT;
    } else {
        struct emu_control_routeset *s = &e->routesets[e->nroutesets++];
        snprintf(s->component, sizeof s->component, "%s", component);
        s->routes = routes;
        s->nroutes = nroutes;
        s->ctx = ctx;
    }
    pthread_mutex_unlock(&e->hooks_mu);
    return rc;
}

void emu_control_reset_all(struct emu *e)
{
    struct emu_hook hooks[EMU_MAX_HOOKS];
    size_t n;

    emu_faults_clear(e->faults);
    pthread_mutex_lock(&e->hooks_mu);
    n = e->nhooks;
    memcpy(hooks, e->hooks, n * sizeof hooks[0]);
    pthread_mutex_unlock(&e->hooks_mu);
    /* Outside hooks_mu: a hook takes the store lock itself. */
    for (size_t i = 0; i < n; i++)
        if (hooks[i].reset != NULL)
            hooks[i].reset(e, hooks[i].ctx);
}

/* ---- handlers ---- */

static cJSON *clock_json(struct emu *e)
{
    struct emu_clock_state c;
    char iso[CLC_TIME_STR_MAX];
    int64_t now_ms, now;
    cJSON *o = cJSON_CreateObject();

    emu_clock_get(e, &c, &now_ms);
    now = now_ms >= 0 ? now_ms / 1000 : -((-now_ms + 999) / 1000);
    if (clc_time_fmt_iso8601(now, iso) != CLC_OK)
        snprintf(iso, sizeof iso, "?");
    if (o == NULL || clc_json_add_int(o, "now", now) != CLC_OK ||
        clc_json_add_int(o, "now_ms", now_ms) != CLC_OK ||
        clc_json_add_str(o, "now_iso", iso) != CLC_OK ||
        clc_json_add_bool(o, "frozen", c.frozen) != CLC_OK ||
        clc_json_add_int(o, "offset_seconds", c.frozen ? 0 : c.offset_ms / 1000) != CLC_OK) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static void reply_doc(struct emu_req *r, int status, cJSON *doc)
{
    if (doc == NULL) {
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    emu_reply_json(r, status, doc, NULL);
    cJSON_Delete(doc);
}

static void h_clock_get(struct emu_req *r)
{
    reply_doc(r, 200, clock_json(r->emu));
}

/* Parses the body as a JSON object; replies 400 itself when it is not. */
static cJSON *body_object(struct emu_req *r)
{
    struct clc_errinfo ei = {0};
    cJSON *doc = NULL;

    if (clc_json_parse(r->body, r->body_len, CONTROL_BODY_MAX, &doc, &ei) != CLC_OK) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "request body: %s", ei.msg);
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "request body: expected an object");
        return NULL;
    }
    return doc;
}

static void h_clock_put(struct emu_req *r)
{
    struct clc_errinfo ei = {0};
    const cJSON *it;
    int64_t now = 0, adv = 0;
    int frozen = 0, has_now, has_adv, has_frozen;
    cJSON *doc = body_object(r);

    if (doc == NULL)
        return;
    cJSON_ArrayForEach(it, doc)
    {
        if (strcmp(it->string, "now") != 0 && strcmp(it->string, "advance_seconds") != 0 &&
            strcmp(it->string, "frozen") != 0) {
            emu_reply_azure_error(r, 400, "InvalidRequestContent",
                                  "unknown field '%.64s' (known: now, advance_seconds, frozen)",
                                  it->string);
            goto out;
        }
    }
    has_now = cJSON_GetObjectItemCaseSensitive(doc, "now") != NULL;
    has_adv = cJSON_GetObjectItemCaseSensitive(doc, "advance_seconds") != NULL;
    has_frozen = cJSON_GetObjectItemCaseSensitive(doc, "frozen") != NULL;
    if ((has_now && clc_json_int(doc, "now", &now, &ei) != CLC_OK) ||
        (has_adv && clc_json_int(doc, "advance_seconds", &adv, &ei) != CLC_OK) ||
        (has_frozen && clc_json_bool(doc, "frozen", &frozen, &ei) != CLC_OK)) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "%s", ei.msg);
        goto out;
    }
    if (!has_now && !has_adv && !has_frozen) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent",
                              "give 'now', 'advance_seconds' or 'frozen'");
        goto out;
    }
    if ((has_now && (now < 0 || now > CLOCK_MAX_S)) ||
        (has_adv && (adv < -ADVANCE_MAX_S || adv > ADVANCE_MAX_S))) {
        emu_reply_azure_error(r, 400, "InvalidRequestContent", "time out of range");
        goto out;
    }
    /* Freezing first: {"now": t, "frozen": true} stops the clock at t. */
    if (has_frozen)
        emu_clock_freeze(r->emu, frozen);
    if (has_now)
        emu_clock_set(r->emu, now);
    if (has_adv)
        emu_clock_advance(r->emu, adv);
    clc_log(CLC_LOG_INFO, "emu.clock.changed", CLC_LI("now", emu_now(r->emu)));
    reply_doc(r, 200, clock_json(r->emu));
out:
    cJSON_Delete(doc);
}

static void h_reset(struct emu_req *r)
{
    emu_control_reset_all(r->emu);
    clc_log0(CLC_LOG_INFO, "emu.reset");
    emu_reply_json(r, 204, NULL, NULL);
}

static void h_state(struct emu_req *r)
{
    struct emu *e = r->emu;
    struct emu_hook hooks[EMU_MAX_HOOKS];
    size_t n;
    cJSON *doc = cJSON_CreateObject(), *c = clock_json(e), *f = emu_faults_dump(e->faults);

    if (doc == NULL || c == NULL || f == NULL) {
        cJSON_Delete(c);
        cJSON_Delete(f);
        cJSON_Delete(doc);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    cJSON_AddItemToObject(doc, "clock", c);
    cJSON_AddItemToObject(doc, "faults", f);
    pthread_mutex_lock(&e->hooks_mu);
    n = e->nhooks;
    memcpy(hooks, e->hooks, n * sizeof hooks[0]);
    pthread_mutex_unlock(&e->hooks_mu);
    for (size_t i = 0; i < n; i++) {
        cJSON *d = hooks[i].dump ? hooks[i].dump(e, hooks[i].ctx) : NULL;
        if (d != NULL)
            cJSON_AddItemToObject(doc, hooks[i].component, d);
    }
    reply_doc(r, 200, doc);
}

static void h_faults_get(struct emu_req *r)
{
    cJSON *doc = cJSON_CreateObject(), *f = emu_faults_dump(r->emu->faults);

    if (doc == NULL || f == NULL) {
        cJSON_Delete(doc);
        cJSON_Delete(f);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    cJSON_AddItemToObject(doc, "faults", f);
    reply_doc(r, 200, doc);
}

static void h_faults_post(struct emu_req *r)
{
    struct clc_errinfo ei = {0};
    int64_t id = 0;
    cJSON *doc = body_object(r), *resp = NULL;

    if (doc == NULL)
        return;
    if (emu_faults_add(r->emu->faults, doc, &id, &ei) != CLC_OK) {
        emu_reply_azure_error(r, 400, "InvalidFaultRule", "%s", ei.msg);
        goto out;
    }
    resp = cJSON_CreateObject();
    if (resp != NULL && clc_json_add_int(resp, "id", id) != CLC_OK) {
        cJSON_Delete(resp);
        resp = NULL;
    }
    clc_log(CLC_LOG_INFO, "emu.fault.added", CLC_LI("id", id));
    reply_doc(r, 201, resp);
out:
    cJSON_Delete(doc);
}

static void h_faults_delete_all(struct emu_req *r)
{
    emu_faults_clear(r->emu->faults);
    emu_reply_json(r, 204, NULL, NULL);
}

static void h_fault_delete(struct emu_req *r)
{
    const char *s = emu_req_param(r, "id");
    char *end = NULL;
    long long id = strtoll(s, &end, 10);

    if (end == s || *end != '\0' || id <= 0) {
        emu_reply_azure_error(r, 400, "InvalidRequest", "fault id must be a positive integer");
        return;
    }
    if (!emu_faults_delete(r->emu->faults, id)) {
        emu_reply_azure_error(r, 404, "NotFound", "no fault rule %lld", id);
        return;
    }
    emu_reply_json(r, 204, NULL, NULL);
}

static void h_health(struct emu_req *r)
{
    cJSON *doc = cJSON_CreateObject(), *svc = emu_services_json(r->emu);

    if (doc == NULL || svc == NULL || clc_json_add_str(doc, "status", "ok") != CLC_OK ||
        clc_json_add_int(doc, "now", emu_now(r->emu)) != CLC_OK) {
        cJSON_Delete(doc);
        cJSON_Delete(svc);
        emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        return;
    }
    cJSON_AddItemToObject(doc, "services", svc);
    reply_doc(r, 200, doc);
}

static const struct emu_route core_routes[] = {
    {"GET", "/control/clock", h_clock_get},
    {"PUT", "/control/clock", h_clock_put},
    {"POST", "/control/reset", h_reset},
    {"GET", "/control/state", h_state},
    {"GET", "/control/faults", h_faults_get},
    {"POST", "/control/faults", h_faults_post},
    {"DELETE", "/control/faults", h_faults_delete_all},
    {"DELETE", "/control/faults/{id}", h_fault_delete},
    {"GET", "/control/health", h_health},
};

/* Every request to the control listener comes here: the token is checked
 * before anything else, so that an anonymous caller learns nothing, not even
 * which routes exist. */
static void control_entry(struct emu_req *r)
{
    struct emu *e = r->emu;
    struct emu_principal p;
    struct clc_errinfo ei = {0};
    struct emu_control_routeset sets[EMU_MAX_CONTROL_ROUTESETS];
    const struct emu_route *route = NULL;
    size_t n;
    int st, saw405 = 0;

    memset(&p, 0, sizeof p);
    if (emu_auth_verify(e, r, EMU_CONTROL_AUDIENCE, &p, &ei) != CLC_OK) {
        static const char *const hdrs[] = {"WWW-Authenticate: Bearer realm=\"certlc-emulator\"",
                                           NULL};
        cJSON *doc = cJSON_CreateObject();
        cJSON *err = doc ? cJSON_AddObjectToObject(doc, "error") : NULL;
        if (err != NULL && clc_json_add_str(err, "code", "Unauthorized") == CLC_OK &&
            clc_json_add_str(err, "message", ei.msg[0] ? ei.msg : "a bearer token is required") ==
                CLC_OK)
            emu_reply_json(r, 401, doc, hdrs);
        else
            emu_reply_azure_error(r, 500, "InternalError", "out of memory");
        cJSON_Delete(doc);
        return;
    }
    if (!emu_principal_has(&p, EMU_ROLE_ADMIN)) {
        emu_reply_azure_error(r, 403, "Forbidden",
                              "identity '%s' does not hold the emulator admin role", p.name);
        return;
    }
    st = emu_route_find(r, core_routes, sizeof core_routes / sizeof core_routes[0], &route);
    if (st == 200) {
        route->fn(r);
        return;
    }
    saw405 = st == 405;
    pthread_mutex_lock(&e->hooks_mu);
    n = e->nroutesets;
    memcpy(sets, e->routesets, n * sizeof sets[0]);
    pthread_mutex_unlock(&e->hooks_mu);
    for (size_t i = 0; i < n; i++) {
        st = emu_route_find(r, sets[i].routes, sets[i].nroutes, &route);
        if (st == 200) {
            r->svc_ctx = sets[i].ctx;
            route->fn(r);
            return;
        }
        saw405 |= st == 405;
    }
    if (saw405)
        emu_reply_azure_error(r, 405, "MethodNotAllowed", "method %.16s is not allowed here",
                              r->method);
    else
        emu_reply_azure_error(r, 404, "NotFound", "no such control resource");
}

static const struct emu_route control_routes[] = {
    {"*", "/{rest*}", control_entry},
};

static const struct emu_service_def control_def = {
    .name = "control",
    .routes = control_routes,
    .nroutes = sizeof control_routes / sizeof control_routes[0],
    .plain_http = 0,
    .error = NULL,
};

enum clc_err emu_control_mount(struct emu *e, struct clc_errinfo *ei)
{
    return emu_service_add(e, "control", &control_def, emu_config_port(e, "control"), NULL, ei);
}
