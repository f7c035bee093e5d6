/* The queue message as the renewal sees it: the event Event Grid wrote
 * (base64 or raw JSON), or certlc's envelope around it that carries the
 * renewal's state between attempts ({"certlc": {...}, "event": {...}}, in
 * base64 like Event Grid's own messages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "azure/queue.h"
#include "core/b64.h"
#include "core/json.h"
#include "pipeline/renew.h"

#define ENVELOPE_MAX CLC_QUEUE_MAX_TEXT

/* The JSON a message holds (base64 first, as Event Grid writes, then raw),
 * or NULL when it is neither. */
static cJSON *message_json(const char *text, size_t len)
{
    unsigned char *raw = NULL;
    size_t rlen = 0;
    cJSON *j = NULL;

    if (len > ENVELOPE_MAX)
        return NULL;
    if (clc_b64_decode(text, len, &raw, &rlen) == CLC_OK)
        (void)clc_json_parse((const char *)raw, rlen, ENVELOPE_MAX, &j, NULL);
    free(raw);
    if (!j)
        (void)clc_json_parse(text, len, ENVELOPE_MAX, &j, NULL);
    return j;
}

static int is_envelope(const cJSON *j)
{
    return cJSON_IsObject(j) && cJSON_GetObjectItemCaseSensitive(j, "certlc") != NULL;
}

static enum clc_err get_str(const cJSON *o, const char *key, char *dst, size_t n,
                            struct clc_errinfo *ei)
{
    const char *v = NULL;
    enum clc_err rc = clc_json_str_opt(o, key, "", &v, ei);
    if (rc != CLC_OK)
        return rc;
    if (strlen(v) >= n)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': longer than %zu bytes", key, n - 1);
    memcpy(dst, v, strlen(v) + 1);
    return CLC_OK;
}

/* A hex field: empty or exactly size - 1 lower-case hex digits. */
static enum clc_err get_hex(const cJSON *o, const char *key, char *dst, size_t size,
                            struct clc_errinfo *ei)
{
    enum clc_err rc = get_str(o, key, dst, size, ei);
    if (rc != CLC_OK)
        return rc;
    if (*dst && (strlen(dst) != size - 1 || strspn(dst, "0123456789abcdef") != size - 1))
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': not %zu hex digits", key, size - 1);
    return CLC_OK;
}

/* A hash field: empty or a SHA-256 in hex. */
static enum clc_err get_hash(const cJSON *o, const char *key, char *dst, struct clc_errinfo *ei)
{
    return get_hex(o, key, dst, CLC_RENEW_HASH_HEX, ei);
}

static enum clc_err state_from_json(const cJSON *o, struct clc_renew_state *st,
                                    struct clc_errinfo *ei)
{
    enum clc_err rc;
    int64_t v = 0;
    int64_t waits = 0, since = 0, adopted = 0, notice = 0;

    if (!cJSON_IsObject(o))
        return clc_errf(ei, CLC_ERR_PARSE, "member 'certlc' must be an object");
    if ((rc = clc_json_int(o, "v", &v, ei)) != CLC_OK)
        return rc;
    if (v != 1)
        return clc_errf(ei, CLC_ERR_PARSE, "state version %lld is not supported", (long long)v);
    if ((rc = get_str(o, "ca", st->ca, sizeof st->ca, ei)) != CLC_OK ||
        (rc = get_str(o, "template", st->template_name, sizeof st->template_name, ei)) != CLC_OK ||
        (rc = get_hash(o, "csr", st->csr_hash, ei)) != CLC_OK ||
        (rc = get_hash(o, "key", st->key_hash, ei)) != CLC_OK ||
        (rc = get_str(o, "old", st->old_version, sizeof st->old_version, ei)) != CLC_OK ||
        (rc = get_str(o, "req", st->request_id, sizeof st->request_id, ei)) != CLC_OK ||
        (rc = get_str(o, "merged", st->merged_version, sizeof st->merged_version, ei)) != CLC_OK ||
        (rc = get_hex(o, "token", st->token, sizeof st->token, ei)) != CLC_OK ||
        (rc = get_hash(o, "fhash", st->foreign_hash, ei)) != CLC_OK ||
        (rc = get_str(o, "err", st->last_error, sizeof st->last_error, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(o, "adopted", 0, &adopted, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(o, "notice", 0, &notice, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(o, "waits", 0, &waits, ei)) != CLC_OK ||
        (rc = clc_json_int_opt(o, "fsince", 0, &since, ei)) != CLC_OK)
        return rc;
    if (waits < 0 || waits > 1000000 || since < 0 || adopted < 0 || adopted > 1 || notice < 0 ||
        notice > 1)
        return clc_errf(ei, CLC_ERR_PARSE, "a counter or flag is out of range");
    if (st->request_id[0] && !st->csr_hash[0])
        return clc_errf(ei, CLC_ERR_PARSE, "a CA request id without the CSR it belongs to");
    st->waits = waits;
    st->foreign_since = since;
    st->adopted = (int)adopted;
    st->notice_pending = (int)notice;
    return CLC_OK;
}

static enum clc_err state_to_json(const struct clc_renew_state *st, cJSON *o)
{
    struct {
        const char *k, *v;
    } strs[] = {{"ca", st->ca},
                {"template", st->template_name},
                {"csr", st->csr_hash},
                {"key", st->key_hash},
                {"old", st->old_version},
                {"req", st->request_id},
                {"merged", st->merged_version},
                {"token", st->token},
                {"fhash", st->foreign_hash},
                {"err", st->last_error}};
    if (clc_json_add_int(o, "v", 1) != CLC_OK)
        return CLC_ERR_NOMEM;
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        if (strs[i].v[0] && clc_json_add_str(o, strs[i].k, strs[i].v) != CLC_OK)
            return CLC_ERR_NOMEM;
    if ((st->adopted && clc_json_add_int(o, "adopted", 1) != CLC_OK) ||
        (st->notice_pending && clc_json_add_int(o, "notice", 1) != CLC_OK) ||
        (st->waits && clc_json_add_int(o, "waits", st->waits) != CLC_OK) ||
        (st->foreign_since && clc_json_add_int(o, "fsince", st->foreign_since) != CLC_OK))
        return CLC_ERR_NOMEM;
    return CLC_OK;
}

static void set_reason(char *reason, size_t n, const char *word)
{
    if (reason && n)
        snprintf(reason, n, "%s", word);
}

enum clc_err clc_renew_msg_parse(const char *text, size_t len, const struct clc_event_filter *f,
                                 struct clc_event *ev, struct clc_renew_state *st, char *reason,
                                 size_t reason_len, struct clc_errinfo *ei)
{
    enum clc_event_reason why = CLC_EVENT_OK;
    enum clc_err rc;
    cJSON *j = NULL;
    char *printed = NULL;

    memset(st, 0, sizeof *st);
    memset(ev, 0, sizeof *ev);
    set_reason(reason, reason_len, "ok");
    if (len == 0) {
        set_reason(reason, reason_len, "empty");
        return clc_errf(ei, CLC_ERR_PARSE, "the message is empty");
    }
    j = message_json(text, len);
    if (!is_envelope(j)) {
        rc = clc_event_parse_queue_message(text, len, f, ev, &why, ei);
        if (rc != CLC_OK)
            set_reason(reason, reason_len, clc_event_reason_name(why));
        goto out;
    }
    const cJSON *event = cJSON_GetObjectItemCaseSensitive(j, "event");
    if ((rc = state_from_json(cJSON_GetObjectItemCaseSensitive(j, "certlc"), st, ei)) != CLC_OK) {
        memset(st, 0, sizeof *st);
        set_reason(reason, reason_len, "bad_state");
        clc_err_wrap(ei, rc, "certlc state in the message");
        goto out;
    }
    if (!event || !(printed = clc_json_print(event))) {
        set_reason(reason, reason_len, "bad_state");
        rc = clc_errf(ei, CLC_ERR_PARSE, "certlc envelope without its event");
        goto out;
    }
    rc = clc_event_parse(printed, strlen(printed), f, ev, &why, ei);
    if (rc != CLC_OK)
        set_reason(reason, reason_len, clc_event_reason_name(why));
out:
    free(printed);
    cJSON_Delete(j);
    return rc;
}

enum clc_err clc_renew_msg_build(const char *text, size_t len, const struct clc_renew_state *st,
                                 char **out, size_t *out_len, struct clc_errinfo *ei)
{
    cJSON *j = message_json(text, len), *env = NULL, *state = NULL;
    cJSON *event = NULL;
    char *printed = NULL;
    enum clc_err rc = CLC_ERR_NOMEM;

    *out = NULL;
    if (!j) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "the message holds no JSON to carry state with");
        goto out;
    }
    if (is_envelope(j))
        event = cJSON_DetachItemFromObjectCaseSensitive(j, "event");
    else {
        event = j;
        j = NULL;
    }
    if (!event) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certlc envelope without its event");
        goto out;
    }
    if (!(env = cJSON_CreateObject()) || !(state = cJSON_CreateObject()))
        goto out;
    cJSON_AddItemToObject(env, "certlc", state);
    if (state_to_json(st, state) != CLC_OK)
        goto out;
    cJSON_AddItemToObject(env, "event", event);
    event = NULL;
    if (!(printed = clc_json_print(env)))
        goto out;
    size_t n = 0;
    if ((rc = clc_b64_encode(printed, strlen(printed), out, &n)) != CLC_OK)
        goto out;
    if (out_len)
        *out_len = n;
    if (n > CLC_QUEUE_MAX_TEXT) {
        free(*out);
        *out = NULL;
        rc = clc_errf(ei, CLC_ERR_LIMIT, "the message with its state exceeds %d bytes",
                      CLC_QUEUE_MAX_TEXT);
    }
out:
    cJSON_Delete(env);
    cJSON_Delete(event);
    cJSON_Delete(j);
    free(printed);
    return rc;
}
