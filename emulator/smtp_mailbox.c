/* The lab's mail viewer: an HTTPS API ("mailbox") over the messages the SMTP
 * sink accepted (list with a recipient filter, one message parsed, the raw
 * message, delete), and the control route that takes the sink down. No
 * token: it is a local test viewer and holds only what tests sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "emulator/emu_ext.h"
#include "emulator/services.h"
#include "emulator/smtp.h"
#include "emulator/smtp_int.h"

#define ADDR_QUERY_MAX 320

static int has_rcpt(const struct smtp_msg *m, const char *to)
{
    for (size_t i = 0; i < m->nrcpt; i++)
        if (strcasecmp(m->rcpt[i], to) == 0)
            return 1;
    return 0;
}

/* The index of message id, or -1; call under s->mu. */
static long find(const struct emu_smtp *s, const char *idstr)
{
    char *end = NULL;
    unsigned long long id;

    if (idstr == NULL || idstr[0] < '0' || idstr[0] > '9')
        return -1;
    id = strtoull(idstr, &end, 10);
    if (*end != '\0')
        return -1;
    for (size_t i = 0; i < s->nmsgs; i++)
        if (s->msgs[i]->id == id)
            return (long)i;
    return -1;
}

static void reply_owned(struct emu_req *r, int status, cJSON *o)
{
    if (o == NULL) {
        emu_reply_error(r, 500, "InternalError", "out of memory");
        return;
    }
    emu_reply_json(r, status, o, NULL);
    cJSON_Delete(o);
}

static void h_list(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    char to[ADDR_QUERY_MAX] = "";
    int filter = emu_req_query(r, "to", to, sizeof to);
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    size_t count = 0;
    int ok = o != NULL && arr != NULL;

    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; ok && i < s->nmsgs; i++) {
        if (filter && !has_rcpt(s->msgs[i], to))
            continue;
        cJSON *m = smtp_msg_summary(s->msgs[i]);
        ok = m != NULL && cJSON_AddItemToArray(arr, m);
        count++;
    }
    pthread_mutex_unlock(&s->mu);
    ok = ok && clc_json_add_int(o, "count", (int64_t)count) == CLC_OK &&
         cJSON_AddItemToObject(o, "messages", arr);
    if (ok)
        arr = NULL;
    cJSON_Delete(arr);
    if (!ok) {
        cJSON_Delete(o);
        o = NULL;
    }
    reply_owned(r, 200, o);
}

static void h_get(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    cJSON *o = NULL;
    long i;

    pthread_mutex_lock(&s->mu);
    i = find(s, emu_req_param(r, "id"));
    if (i >= 0)
        o = smtp_msg_detail(s->msgs[i]);
    pthread_mutex_unlock(&s->mu);
    if (i < 0) {
        emu_reply_error(r, 404, "MessageNotFound", "no message with that id");
        return;
    }
    reply_owned(r, 200, o);
}

static void h_raw(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    char *copy = NULL;
    size_t len = 0;
    long i;

    pthread_mutex_lock(&s->mu);
    i = find(s, emu_req_param(r, "id"));
    if (i >= 0 && (copy = malloc(s->msgs[i]->len + 1)) != NULL) {
        len = s->msgs[i]->len;
        memcpy(copy, s->msgs[i]->data, len);
    }
    pthread_mutex_unlock(&s->mu);
    if (i < 0)
        emu_reply_error(r, 404, "MessageNotFound", "no message with that id");
    else if (copy == NULL)
        emu_reply_error(r, 500, "InternalError", "out of memory");
    else
        emu_reply(r, 200, "message/rfc822", copy, len, NULL);
    free(copy);
}

static void h_delete_one(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    long i;

    pthread_mutex_lock(&s->mu);
    i = find(s, emu_req_param(r, "id"));
    if (i >= 0) {
        smtp_msg_free(s->msgs[i]);
        memmove(s->msgs + i, s->msgs + i + 1, (s->nmsgs - (size_t)i - 1) * sizeof s->msgs[0]);
        s->nmsgs--;
    }
    pthread_mutex_unlock(&s->mu);
    if (i < 0)
        emu_reply_error(r, 404, "MessageNotFound", "no message with that id");
    else
        emu_reply(r, 204, NULL, NULL, 0, NULL);
}

static void h_delete_all(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    cJSON *o = cJSON_CreateObject();
    size_t n;

    pthread_mutex_lock(&s->mu);
    n = s->nmsgs;
    for (size_t i = 0; i < n; i++)
        smtp_msg_free(s->msgs[i]);
    s->nmsgs = 0;
    pthread_mutex_unlock(&s->mu);
    if (o != NULL && clc_json_add_int(o, "deleted", (int64_t)n) != CLC_OK) {
        cJSON_Delete(o);
        o = NULL;
    }
    reply_owned(r, 200, o);
}

/* PUT /control/smtp/down {"down": true|false} */
static void h_down(struct emu_req *r)
{
    struct emu_smtp *s = r->svc_ctx;
    cJSON *body = NULL, *o;
    struct clc_errinfo ei = {0};
    int down = 0;

    if (clc_json_parse(r->body, r->body_len, 4096, &body, &ei) != CLC_OK ||
        clc_json_bool(body, "down", &down, &ei) != CLC_OK) {
        cJSON_Delete(body);
        emu_reply_error(r, 400, "InvalidRequest", "expected {\"down\": true|false}");
        return;
    }
    cJSON_Delete(body);
    emu_smtp_set_down(s->e, down);
    o = cJSON_CreateObject();
    if (o != NULL && clc_json_add_bool(o, "down", down) != CLC_OK) {
        cJSON_Delete(o);
        o = NULL;
    }
    reply_owned(r, 200, o);
}

static const struct emu_route mailbox_routes[] = {
    {"GET", "/messages", h_list},         {"DELETE", "/messages", h_delete_all},
    {"GET", "/messages/{id}", h_get},     {"DELETE", "/messages/{id}", h_delete_one},
    {"GET", "/messages/{id}/raw", h_raw},
};

static const struct emu_service_def mailbox_def = {
    .name = "mailbox",
    .routes = mailbox_routes,
    .nroutes = sizeof mailbox_routes / sizeof mailbox_routes[0],
};

static const struct emu_route control_routes[] = {
    {"PUT", "/control/smtp/down", h_down},
};

enum clc_err smtp_mailbox_mount(struct emu_smtp *s, struct clc_errinfo *ei)
{
    enum clc_err rc = emu_control_add_routes(s->e, "smtp", control_routes,
                                             sizeof control_routes / sizeof control_routes[0], s);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "smtp: cannot add the control routes");
    return emu_service_add(s->e, "mailbox", &mailbox_def, emu_config_port(s->e, "mailbox"), s, ei);
}
