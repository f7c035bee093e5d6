/* The emulated CA's database: request rows (requester, template, CSR,
 * disposition, certificate, revocation), kept as the "ca-requests" document
 * in the data dir so request ids and certificates survive a restart. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/json.h"
#include "emulator/ca.h"
#include "emulator/state.h"

#define REQUESTS_DOC "ca-requests"

static void row_free(struct ca_request *q)
{
    free(q->csr);
    free(q->cert);
    memset(q, 0, sizeof *q);
}

void ca_store_clear(struct emu_ca *ca)
{
    for (size_t i = 0; i < ca->nreq; i++)
        row_free(&ca->req[i]);
    ca->nreq = 0;
    ca->next_id = 1;
}

struct ca_request *ca_store_add(struct emu_ca *ca)
{
    struct ca_request *q;

    if (ca->nreq >= CA_MAX_REQUESTS)
        return NULL;
    if (ca->nreq == ca->capreq) {
        size_t cap = ca->capreq ? ca->capreq * 2 : 64;
        struct ca_request *n;
        if (cap > CA_MAX_REQUESTS)
            cap = CA_MAX_REQUESTS;
        n = realloc(ca->req, cap * sizeof *n);
        if (n == NULL)
            return NULL;
        ca->req = n;
        ca->capreq = cap;
    }
    q = &ca->req[ca->nreq++];
    memset(q, 0, sizeof *q);
    if (ca->next_id < 1)
        ca->next_id = 1;
    q->id = ca->next_id++;
    return q;
}

struct ca_request *ca_store_get(struct emu_ca *ca, int64_t id)
{
    /* Ids grow with the index; a linear scan is fine at this size. */
    for (size_t i = 0; i < ca->nreq; i++)
        if (ca->req[i].id == id)
            return &ca->req[i];
    return NULL;
}

enum clc_err ca_result_from(const struct ca_request *q, struct ca_result *res)
{
    memset(res, 0, sizeof *res);
    res->id = q->id;
    res->disposition = q->disposition;
    res->status = q->status;
    snprintf(res->message, sizeof res->message, "%s", q->message);
    if (q->cert != NULL) {
        res->cert = malloc(q->cert_len);
        if (res->cert == NULL)
            return CLC_ERR_NOMEM;
        memcpy(res->cert, q->cert, q->cert_len);
        res->cert_len = q->cert_len;
    }
    return CLC_OK;
}

const char *ca_disp_name(int d)
{
    switch (d) {
    case CA_DISP_ERROR:
        return "error";
    case CA_DISP_DENIED:
        return "denied";
    case CA_DISP_ISSUED:
        return "issued";
    case CA_DISP_PENDING:
        return "pending";
    case CA_DISP_REVOKED:
        return "revoked";
    default:
        return "unknown";
    }
}

/* RFC 5280 5.3.1 CRLReason; 7 is unused. */
static const char *const reasons[] = {
    "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
    "superseded",    "cessationOfOperation", "certificateHold", NULL,
    "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
};

const char *ca_reason_name(int code)
{
    if (code < 0 || code >= (int)(sizeof reasons / sizeof reasons[0]) || reasons[code] == NULL)
        return "unknown";
    return reasons[code];
}

int ca_reason_parse(const cJSON *v)
{
    int n = (int)(sizeof reasons / sizeof reasons[0]);

    if (v == NULL)
        return 0;
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d < 0 || d >= n || d != (double)(int)d || reasons[(int)d] == NULL)
            return -1;
        /* removeFromCRL only undoes a hold (delta CRLs); not a revocation. */
        return (int)d == 8 ? -1 : (int)d;
    }
    if (cJSON_IsString(v))
        for (int i = 0; i < n; i++)
            if (reasons[i] != NULL && i != 8 && strcasecmp(reasons[i], v->valuestring) == 0)
                return i;
    return -1;
}

/* ---- JSON ---- */

static enum clc_err add_b64(cJSON *o, const char *key, const unsigned char *der, size_t len)
{
    char *s = NULL;
    enum clc_err rc;

    if (der == NULL)
        return CLC_OK;
    if (clc_b64_encode(der, len, &s, NULL) != CLC_OK)
        return CLC_ERR_NOMEM;
    rc = clc_json_add_str(o, key, s);
    free(s);
    return rc;
}

static enum clc_err add_time(cJSON *o, const char *key, int64_t t)
{
    char s[CLC_TIME_STR_MAX];

    if (t == 0)
        return CLC_OK;
    if (clc_time_fmt_iso8601(t, s) != CLC_OK)
        return CLC_ERR_INVALID;
    return clc_json_add_str(o, key, s);
}

cJSON *ca_request_json(const struct ca_request *q, int with_cert)
{
    cJSON *o = cJSON_CreateObject();
    char code[16], *pem = NULL;
    int bad;

    if (o == NULL)
        return NULL;
    snprintf(code, sizeof code, "0x%08x", q->status);
    bad = clc_json_add_int(o, "id", q->id) || clc_json_add_str(o, "requester", q->requester) ||
          clc_json_add_str(o, "template", q->template_name) ||
          clc_json_add_str(o, "source", q->source) ||
          clc_json_add_int(o, "disposition", q->disposition) ||
          clc_json_add_str(o, "status", ca_disp_name(q->disposition)) ||
          clc_json_add_str(o, "status_code", code) || clc_json_add_str(o, "message", q->message) ||
          add_time(o, "submitted", q->submitted) || add_time(o, "resolved", q->resolved);
    if (!bad && q->serial[0])
        bad = clc_json_add_str(o, "serial", q->serial) != CLC_OK;
    if (!bad && q->disposition == CA_DISP_REVOKED)
        bad = add_time(o, "revoked_at", q->revoked_at) ||
              clc_json_add_str(o, "revocation_reason", ca_reason_name(q->revocation_reason));
    if (!bad && with_cert && q->cert != NULL) {
        pem = ca_b64_lines(q->cert, q->cert_len, "CERTIFICATE");
        bad = pem == NULL || clc_json_add_str(o, "certificate", pem) != CLC_OK;
    }
    free(pem);
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static cJSON *row_doc(const struct ca_request *q)
{
    cJSON *o = cJSON_CreateObject();
    int bad = o == NULL || clc_json_add_int(o, "id", q->id) ||
              clc_json_add_str(o, "requester", q->requester) ||
              clc_json_add_str(o, "template", q->template_name) ||
              clc_json_add_str(o, "source", q->source) ||
              clc_json_add_int(o, "disposition", q->disposition) ||
              clc_json_add_int(o, "status", q->status) ||
              clc_json_add_str(o, "message", q->message) ||
              clc_json_add_str(o, "serial", q->serial) ||
              clc_json_add_int(o, "submitted", q->submitted) ||
              clc_json_add_int(o, "resolved", q->resolved) ||
              clc_json_add_int(o, "revoked_at", q->revoked_at) ||
              clc_json_add_int(o, "reason", q->revocation_reason) ||
              clc_json_add_bool(o, "est_delivered", q->est_delivered) ||
              add_b64(o, "csr", q->csr, q->csr_len) || add_b64(o, "cert", q->cert, q->cert_len);

    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

enum clc_err ca_store_save(struct emu_ca *ca, struct clc_errinfo *ei)
{
    cJSON *doc, *arr;
    enum clc_err rc;

    if (emu_data_dir(ca->e) == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    arr = doc ? cJSON_AddArrayToObject(doc, "requests") : NULL;
    if (arr == NULL || clc_json_add_int(doc, "next_id", ca->next_id) ||
        clc_json_add_int(doc, "crl_number", ca->crl_number)) {
        cJSON_Delete(doc);
        return clc_errf(ei, CLC_ERR_NOMEM, "ca: out of memory");
    }
    for (size_t i = 0; i < ca->nreq; i++) {
        cJSON *o = row_doc(&ca->req[i]);
        if (o == NULL) {
            cJSON_Delete(doc);
            return clc_errf(ei, CLC_ERR_NOMEM, "ca: out of memory");
        }
        cJSON_AddItemToArray(arr, o);
    }
    rc = emu_store_save(ca->e, REQUESTS_DOC, doc, ei);
    cJSON_Delete(doc);
    return rc;
}

static enum clc_err get_b64(const cJSON *o, const char *key, unsigned char **out, size_t *len,
                            struct clc_errinfo *ei)
{
    const char *s = NULL;

    *out = NULL;
    *len = 0;
    if (clc_json_str_opt(o, key, NULL, &s, ei) != CLC_OK)
        return CLC_ERR_PARSE;
    if (s == NULL)
        return CLC_OK;
    if (clc_b64_decode(s, strlen(s), out, len) != CLC_OK || *len == 0)
        return clc_errf(ei, CLC_ERR_PARSE, "field '%s': not base64", key);
    return CLC_OK;
}

static enum clc_err load_row(const cJSON *o, struct ca_request *q, struct clc_errinfo *ei)
{
    const char *req = NULL, *tmpl = NULL, *src = NULL, *msg = NULL, *serial = NULL;
    int64_t disp = 0, status = 0;
    enum clc_err rc;

    rc = clc_json_int(o, "id", &q->id, ei);
    if (rc == CLC_OK)
        rc = clc_json_str(o, "requester", &req, ei);
    if (rc == CLC_OK)
        rc = clc_json_str(o, "template", &tmpl, ei);
    if (rc == CLC_OK)
        rc = clc_json_str(o, "source", &src, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(o, "disposition", &disp, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(o, "status", &status, ei);
    if (rc == CLC_OK)
        rc = clc_json_str(o, "message", &msg, ei);
    if (rc == CLC_OK)
        rc = clc_json_str(o, "serial", &serial, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(o, "submitted", &q->submitted, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(o, "resolved", &q->resolved, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(o, "revoked_at", &q->revoked_at, ei);
    if (rc == CLC_OK) {
        int64_t reason = 0;
        rc = clc_json_int(o, "reason", &reason, ei);
        q->revocation_reason = (int)reason;
    }
    if (rc == CLC_OK)
        rc = clc_json_bool(o, "est_delivered", &q->est_delivered, ei);
    if (rc == CLC_OK)
        rc = get_b64(o, "csr", &q->csr, &q->csr_len, ei);
    if (rc == CLC_OK)
        rc = get_b64(o, "cert", &q->cert, &q->cert_len, ei);
    if (rc != CLC_OK)
        return rc;
    if (q->id < 1 || disp < 1 || disp > 6 || status < 0 || status > 0xffffffffLL ||
        strlen(serial) >= sizeof q->serial ||
        ((disp == CA_DISP_ISSUED || disp == CA_DISP_REVOKED) && q->cert == NULL))
        return clc_errf(ei, CLC_ERR_PARSE, "request %lld: inconsistent row", (long long)q->id);
    q->disposition = (int)disp;
    q->status = (uint32_t)status;
    snprintf(q->requester, sizeof q->requester, "%s", req);
    snprintf(q->template_name, sizeof q->template_name, "%s", tmpl);
    snprintf(q->source, sizeof q->source, "%s", src);
    snprintf(q->message, sizeof q->message, "%s", msg);
    snprintf(q->serial, sizeof q->serial, "%s", serial);
    if (q->csr != NULL &&
        EVP_Digest(q->csr, q->csr_len, q->csr_digest, NULL, EVP_sha256(), NULL) != 1)
        return clc_errf(ei, CLC_ERR_CRYPTO, "hashing a stored CSR failed");
    return CLC_OK;
}

enum clc_err ca_store_load(struct emu_ca *ca, struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    const cJSON *arr = NULL, *it;
    int64_t next = 1, crln = 0;
    enum clc_err rc;

    ca->next_id = 1;
    rc = emu_store_load(ca->e, REQUESTS_DOC, &doc, ei);
    if (rc == CLC_ERR_NOT_FOUND) {
        if (ei != NULL)
            clc_errinfo_clear(ei);
        return CLC_OK;
    }
    if (rc == CLC_OK)
        rc = clc_json_int(doc, "next_id", &next, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(doc, "crl_number", &crln, ei);
    if (rc == CLC_OK)
        rc = clc_json_arr(doc, "requests", &arr, ei);
    if (rc == CLC_OK && cJSON_GetArraySize(arr) > CA_MAX_REQUESTS)
        rc = clc_errf(ei, CLC_ERR_LIMIT, "more than %d requests", CA_MAX_REQUESTS);
    for (it = rc == CLC_OK ? arr->child : NULL; it != NULL; it = it->next) {
        struct ca_request *q = ca_store_add(ca);
        if (q == NULL) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            break;
        }
        rc = load_row(it, q, ei);
        if (rc != CLC_OK)
            break;
        if (q->id >= next)
            next = q->id + 1;
    }
    cJSON_Delete(doc);
    if (rc != CLC_OK) {
        ca_store_clear(ca);
        return clc_err_wrap(ei, rc, "the CA database (%s.json in the data dir)", REQUESTS_DOC);
    }
    ca->next_id = next;
    ca->crl_number = crln;
    return CLC_OK;
}
