/* The emulated CA's policy module and issuer: decodes and verifies a CSR,
 * applies the template (enroll right, key type and size, names, manager
 * approval), and issues certificates as AD CS does (random 128-bit serials,
 * AKI/SKI, KU/EKU, SANs from the request, template extension, AIA, CDP). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/log.h"
#include "core/rand.h"
#include "crypto/x509.h"
#include "emulator/ca.h"
#include "emulator/state.h"

/* AD CS: the CA backdates notBefore by its clock skew allowance (10 min). */
#define BACKDATE_S 600
#define OID_TEMPLATE_INFO "1.3.6.1.4.1.311.21.7"
#define OID_APP_POLICIES "1.3.6.1.4.1.311.21.10"
#define DER_MAX 1024

/* ---- HRESULT texts ---- */

static const struct {
    uint32_t hr;
    const char *text;
    const char *tail; /* what the status line shows in parentheses after the number */
} hr_table[] = {
    {CA_HR_OK, "The operation completed successfully.", "WIN32: 0"},
    {CA_HR_UNSUPPORTED_CERT_TYPE, "The requested certificate template is not supported by this CA.",
     "CERTSRV_E_UNSUPPORTED_CERT_TYPE"},
    {CA_HR_TEMPLATE_DENIED,
     "The permissions on the certificate template do not allow the current user to enroll for "
     "this type of certificate.",
     "CERTSRV_E_TEMPLATE_DENIED"},
    {CA_HR_ADMIN_DENIED, "The request was denied by a certificate manager or CA administrator.",
     "CERTSRV_E_ADMIN_DENIED_REQUEST"},
    {CA_HR_KEY_LENGTH,
     "The public key does not meet the minimum size required by the specified certificate "
     "template.",
     "CERTSRV_E_KEY_LENGTH"},
    {CA_HR_BAD_SIGNATURE, "Invalid Signature.", "NTE_BAD_SIGNATURE"},
    {CA_HR_BAD_ALGID, "Invalid algorithm specified.", "NTE_BAD_ALGID"},
    {CA_HR_PROPERTY_EMPTY, "The requested property value is empty.", "CERTSRV_E_PROPERTY_EMPTY"},
    {CA_HR_BAD_REQUESTSUBJECT, "The request subject name is invalid or too long.",
     "CERTSRV_E_BAD_REQUESTSUBJECT"},
    {CA_HR_BAD_REQUESTSTATUS, "The request's current status does not allow this operation.",
     "CERTSRV_E_BAD_REQUESTSTATUS"},
    {CA_HR_ASN1_BADTAG, "ASN1 bad tag value met.", "ASN: 267 CRYPT_E_ASN1_BADTAG"},
    {CA_HR_INVALID_DATA, "The data is invalid.", "WIN32: 13 ERROR_INVALID_DATA"},
    {CA_HR_INVALID_PARAMETER, "The parameter is incorrect.", "WIN32: 87 ERROR_INVALID_PARAMETER"},
};

static size_t hr_index(uint32_t hr)
{
    for (size_t i = 0; i < sizeof hr_table / sizeof hr_table[0]; i++)
        if (hr_table[i].hr == hr)
            return i;
    return 0;
}

const char *ca_hr_text(uint32_t hr)
{
    return hr_table[hr_index(hr)].text;
}

void ca_hr_status(uint32_t hr, char *out, size_t n)
{
    size_t i = hr_index(hr);
    const char *tail = hr_table[i].tail;

    /* Win32 and ASN.1 codes show their facility number; CA codes the
     * signed decimal value ("0x80094014 (-2146877420 CERTSRV_E_...)"). */
    if (strncmp(tail, "WIN32:", 6) == 0 || strncmp(tail, "ASN:", 4) == 0)
        snprintf(out, n, "%s 0x%x (%s)", hr_table[i].text, hr, tail);
    else
        snprintf(out, n, "%s 0x%x (%d %s)", hr_table[i].text, hr, (int)(int32_t)hr, tail);
}

/* ---- CSR decoding ---- */

static const char *find(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return hay + i;
    return NULL;
}

/* Base64 with or without PEM armour to DER; the text may span lines. */
static int csr_decode(const char *text, size_t len, unsigned char **der, size_t *dlen)
{
    const char *begin, *end, *body = text;
    size_t blen = len;

    *der = NULL;
    begin = find(text, len, "-----BEGIN ");
    if (begin != NULL) {
        body = memchr(begin + 11, '\n', len - (size_t)(begin + 11 - text));
        end = find(text, len, "-----END ");
        if (body == NULL || end == NULL || end < body)
            return 0;
        body++;
        blen = (size_t)(end - body);
    }
    return clc_b64_decode(body, blen, der, dlen) == CLC_OK && *dlen > 0;
}

static X509_REQ *csr_parse(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);

    /* Trailing bytes after the request are as bad as a broken one. */
    if (req != NULL && p != der + len) {
        X509_REQ_free(req);
        req = NULL;
    }
    ERR_clear_error();
    return req;
}

/* ---- names ---- */

/* DNS names compare case-insensitively; the certificate carries them lower-cased. */
static int lower_dns(ASN1_IA5STRING *s)
{
    int n = ASN1_STRING_length(s);
    unsigned char buf[256];

    if (n < 0 || (size_t)n > sizeof buf)
        return 0;
    memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
    for (int k = 0; k < n; k++)
        buf[k] = (unsigned char)tolower(buf[k]);
    return ASN1_STRING_set(s, buf, n) == 1;
}

/* DNS and IP names of the CSR's extensionRequest, DNS names lower-cased and
 * duplicates dropped; other name types are not copied (the template supplies
 * nothing else). Returns a new (possibly empty) stack, NULL on error. */
static GENERAL_NAMES *csr_sans(X509_REQ *req)
{
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    GENERAL_NAMES *in = NULL, *out = sk_GENERAL_NAME_new_null();
    int ok = out != NULL;

    for (int i = 0; ok && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) == NID_subject_alt_name) {
            in = X509V3_EXT_d2i(ext);
            ok = in != NULL;
            break;
        }
    }
    for (int i = 0; ok && in != NULL && i < sk_GENERAL_NAME_num(in); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(in, i), *copy;
        int dup = 0;
        if (g->type != GEN_DNS && g->type != GEN_IPADD)
            continue;
        copy = GENERAL_NAME_dup(g);
        if (copy == NULL) {
            ok = 0;
            break;
        }
        if (copy->type == GEN_DNS && !lower_dns(copy->d.dNSName)) {
            GENERAL_NAME_free(copy);
            ok = 0;
            break;
        }
        for (int k = 0; k < sk_GENERAL_NAME_num(out) && !dup; k++)
            dup = GENERAL_NAME_cmp(sk_GENERAL_NAME_value(out, k), copy) == 0;
        if (dup || !sk_GENERAL_NAME_push(out, copy)) {
            GENERAL_NAME_free(copy);
            ok = ok && dup;
        }
    }
    GENERAL_NAMES_free(in);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    if (!ok) {
        GENERAL_NAMES_free(out);
        return NULL;
    }
    return out;
}

static int same_names(GENERAL_NAMES *a, GENERAL_NAMES *b)
{
    int na = a ? sk_GENERAL_NAME_num(a) : 0, nb = b ? sk_GENERAL_NAME_num(b) : 0;

    if (na != nb)
        return 0;
    for (int i = 0; i < na; i++) {
        int found = 0;
        for (int k = 0; k < nb && !found; k++)
            found = GENERAL_NAME_cmp(sk_GENERAL_NAME_value(a, i), sk_GENERAL_NAME_value(b, k)) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* ---- DER for the Microsoft extensions ---- */

static size_t der_len(unsigned char *p, size_t n)
{
    if (n < 0x80) {
        p[0] = (unsigned char)n;
        return 1;
    }
    if (n < 0x100) {
        p[0] = 0x81;
        p[1] = (unsigned char)n;
        return 2;
    }
    p[0] = 0x82;
    p[1] = (unsigned char)(n >> 8);
    p[2] = (unsigned char)n;
    return 3;
}

/* Wraps content in a SEQUENCE; 0 when it does not fit. */
static size_t der_seq(const unsigned char *content, size_t n, unsigned char *out, size_t cap)
{
    unsigned char hdr[4];
    size_t h;

    hdr[0] = 0x30;
    h = 1 + der_len(hdr + 1, n);
    if (n > 0xffff || h + n > cap)
        return 0;
    memcpy(out, hdr, h);
    memmove(out + h, content, n);
    return h + n;
}

static size_t der_oid(const char *oid, unsigned char *out, size_t cap)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    int n = o ? i2d_ASN1_OBJECT(o, NULL) : -1;
    unsigned char *p = out;

    if (n <= 0 || (size_t)n > cap) {
        ASN1_OBJECT_free(o);
        return 0;
    }
    i2d_ASN1_OBJECT(o, &p);
    ASN1_OBJECT_free(o);
    return (size_t)n;
}

static size_t der_int(int64_t v, unsigned char *out, size_t cap)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    int n = ai && ASN1_INTEGER_set_int64(ai, v) == 1 ? i2d_ASN1_INTEGER(ai, NULL) : -1;
    unsigned char *p = out;

    if (n > 0 && (size_t)n <= cap)
        i2d_ASN1_INTEGER(ai, &p);
    ASN1_INTEGER_free(ai);
    return n > 0 && (size_t)n <= cap ? (size_t)n : 0;
}

static int add_raw_ext(X509 *x, const char *oid, const unsigned char *der, size_t n)
{
    ASN1_OBJECT *o = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    int ok = o && os && ASN1_OCTET_STRING_set(os, der, (int)n) == 1 &&
             (ext = X509_EXTENSION_create_by_OBJ(NULL, o, 0, os)) != NULL &&
             X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(o);
    return ok;
}

/* 1.3.6.1.4.1.311.21.7: SEQUENCE { templateID OID, major INTEGER, minor INTEGER }. */
static int add_template_ext(X509 *x, const struct ca_template *t)
{
    unsigned char buf[DER_MAX], seq[DER_MAX];
    size_t n = 0, k;

    n += k = der_oid(t->oid, buf, sizeof buf);
    if (k == 0)
        return 0;
    n += k = der_int(t->major, buf + n, sizeof buf - n);
    if (k == 0)
        return 0;
    n += k = der_int(t->minor, buf + n, sizeof buf - n);
    if (k == 0 || (k = der_seq(buf, n, seq, sizeof seq)) == 0)
        return 0;
    return add_raw_ext(x, OID_TEMPLATE_INFO, seq, k);
}

/* 1.3.6.1.4.1.311.21.10 (Application Policies): SEQUENCE OF SEQUENCE { OID },
 * mirroring the EKUs as AD CS writes it. */
static int add_app_policies(X509 *x, const struct ca_template *t)
{
    unsigned char buf[DER_MAX], one[CA_OID_MAX + 8], oid[CA_OID_MAX + 8], seq[DER_MAX];
    size_t n = 0, k;

    for (size_t i = 0; i < t->nekus; i++) {
        k = der_oid(t->ekus[i], oid, sizeof oid);
        if (k == 0 || (k = der_seq(oid, k, one, sizeof one)) == 0 || n + k > sizeof buf)
            return 0;
        memcpy(buf + n, one, k);
        n += k;
    }
    k = der_seq(buf, n, seq, sizeof seq);
    return k != 0 && add_raw_ext(x, OID_APP_POLICIES, seq, k);
}

/* ---- issuing ---- */

static int add_conf(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

    X509_EXTENSION_free(ext);
    return ok;
}

static int add_usages(X509 *x, const struct ca_template *t, int is_rsa)
{
    ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    unsigned bits = t->key_usage;
    int ok = ku != NULL && eku != NULL;

    /* Encipherment means nothing for an EC key; AD CS leaves it out too. */
    if (!is_rsa)
        bits &= ~(unsigned)(CA_KU_KEY_ENCIPHERMENT | CA_KU_DATA_ENCIPHERMENT);
    if (bits == 0)
        bits = CA_KU_DIGITAL_SIGNATURE;
    for (int b = 0; ok && b < 5; b++)
        if (bits & (1u << b))
            ok = ASN1_BIT_STRING_set_bit(ku, b, 1) == 1;
    ok = ok && X509_add1_ext_i2d(x, NID_key_usage, ku, 1, X509V3_ADD_DEFAULT) == 1;
    for (size_t i = 0; ok && i < t->nekus; i++) {
        ASN1_OBJECT *o = OBJ_txt2obj(t->ekus[i], 1);
        ok = o != NULL && sk_ASN1_OBJECT_push(eku, o) > 0;
        if (!ok)
            ASN1_OBJECT_free(o);
    }
    ok = ok && X509_add1_ext_i2d(x, NID_ext_key_usage, eku, 0, X509V3_ADD_DEFAULT) == 1;
    ASN1_BIT_STRING_free(ku);
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

static int set_serial(X509 *x, char *hex, size_t n)
{
    unsigned char b[16];
    BIGNUM *bn = NULL;
    ASN1_INTEGER *ai = NULL;
    char *h = NULL;
    int ok;

    if (clc_rand_bytes(b, sizeof b) != CLC_OK)
        return 0;
    /* Positive and always 16 octets: top bit clear, next bit set. */
    b[0] = (unsigned char)((b[0] & 0x7f) | 0x40);
    bn = BN_bin2bn(b, sizeof b, NULL);
    ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    h = bn ? BN_bn2hex(bn) : NULL;
    ok = ai && h && strlen(h) < n && X509_set_serialNumber(x, ai) == 1;
    if (ok)
        snprintf(hex, n, "%s", h);
    OPENSSL_free(h);
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok;
}

/* The certificate gets the request's SubjectPublicKeyInfo as it came (the
 * key was decoded and the signature verified by decide): copying its fields
 * skips OpenSSL 3's encoder (clc_x509_pubkey_set from the key, ~0.1 ms). */
static int spki_copy(X509_PUBKEY *dst, X509_PUBKEY *src)
{
    ASN1_OBJECT *alg_obj = NULL;
    const ASN1_OBJECT *o = NULL;
    const unsigned char *pk = NULL;
    const void *pval = NULL;
    X509_ALGOR *alg = NULL;
    void *param = NULL;
    unsigned char *enc = NULL;
    int pklen = 0, ptype = V_ASN1_UNDEF;

    if (dst == NULL || src == NULL || X509_PUBKEY_get0_param(NULL, &pk, &pklen, &alg, src) != 1 ||
        alg == NULL || pklen <= 0)
        return 0;
    X509_ALGOR_get0(&o, &ptype, &pval, alg);
    if (ptype == V_ASN1_OBJECT)
        param = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        param = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        return 0;
    alg_obj = OBJ_dup(o);
    enc = OPENSSL_memdup(pk, (size_t)pklen);
    if (alg_obj != NULL && enc != NULL && (param != NULL || pval == NULL || ptype == V_ASN1_NULL) &&
        X509_PUBKEY_set0_param(dst, alg_obj, ptype, param, enc, pklen) == 1)
        return 1;
    ASN1_OBJECT_free(alg_obj);
    OPENSSL_free(enc);
    if (ptype == V_ASN1_OBJECT)
        ASN1_OBJECT_free(param);
    else
        ASN1_STRING_free(param);
    return 0;
}

/* Builds and signs the certificate for req under template t. */
static enum clc_err issue(struct emu_ca *ca, const struct ca_template *t, X509_REQ *req,
                          int64_t now, struct ca_request *q, struct clc_errinfo *ei)
{
    X509 *x = X509_new();
    GENERAL_NAMES *sans = csr_sans(req);
    const X509_NAME *subj = X509_REQ_get_subject_name(req);
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    int64_t na = now + t->validity_s;
    const ASN1_TIME *ca_end = X509_get0_notAfter(ca->issuing);
    char url[512];
    X509V3_CTX ctx;
    unsigned char *der = NULL;
    int ok, dl = 0, empty_subject = X509_NAME_entry_count(subj) == 0;

    /* Never beyond the issuing CA's own end, as AD CS caps it. */
    ok = x != NULL && sans != NULL && pub != NULL && X509_set_version(x, X509_VERSION_3) == 1 &&
         set_serial(x, q->serial, sizeof q->serial) && X509_set_subject_name(x, subj) == 1 &&
         X509_set_issuer_name(x, X509_get_subject_name(ca->issuing)) == 1 &&
         ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(now - BACKDATE_S)) != NULL &&
         ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) != NULL &&
         spki_copy(X509_get_X509_PUBKEY(x), X509_REQ_get_X509_PUBKEY(req));
    if (ok && X509_cmp_time(ca_end, &(time_t){(time_t)na}) < 0)
        ok = X509_set1_notAfter(x, ca_end) == 1;
    if (ok) {
        X509V3_set_ctx(&ctx, ca->issuing, x, NULL, NULL, 0);
        ok = add_conf(x, &ctx, NID_subject_key_identifier, "hash") &&
             add_conf(x, &ctx, NID_authority_key_identifier, "keyid:always") &&
             add_conf(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") &&
             add_usages(x, t, EVP_PKEY_is_a(pub, "RSA")) &&
             /* An empty subject makes the SAN the only name: critical (RFC 5280). */
             (sk_GENERAL_NAME_num(sans) == 0 ||
              X509_add1_ext_i2d(x, NID_subject_alt_name, sans, empty_subject, 0) == 1) &&
             add_template_ext(x, t) && add_app_policies(x, t);
    }
    if (ok) {
        snprintf(url, sizeof url, "URI:%s/CertEnroll/%s", ca_base_url(ca), CA_FILE_ISSUING_CRL);
        ok = add_conf(x, &ctx, NID_crl_distribution_points, url);
        snprintf(url, sizeof url, "caIssuers;URI:%s/CertEnroll/%s", ca_base_url(ca),
                 CA_FILE_ISSUING_CRT);
        ok = ok && add_conf(x, &ctx, NID_info_access, url) &&
             X509_sign(x, clc_signer_pkey(ca->issuing_key), EVP_sha256()) > 0;
    }
    if (ok) {
        dl = i2d_X509(x, &der);
        ok = dl > 0;
    }
    GENERAL_NAMES_free(sans);
    X509_free(x);
    ERR_clear_error();
    if (!ok)
        return clc_errf(ei, CLC_ERR_CRYPTO, "issuing the certificate failed");
    free(q->cert);
    q->cert = malloc((size_t)dl);
    if (q->cert == NULL) {
        OPENSSL_free(der);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    memcpy(q->cert, der, (size_t)dl);
    OPENSSL_free(der);
    q->cert_len = (size_t)dl;
    q->disposition = CA_DISP_ISSUED;
    q->status = CA_HR_OK;
    snprintf(q->message, sizeof q->message, "Issued");
    q->resolved = now;
    clc_log(CLC_LOG_INFO, "emu.ca.issued", CLC_LI("request_id", q->id), CLC_LS("template", t->name),
            CLC_LS("serial", q->serial));
    return CLC_OK;
}

enum clc_err ca_issue_pending(struct emu_ca *ca, struct ca_request *q, int64_t now,
                              struct clc_errinfo *ei)
{
    const struct ca_template *t = ca_template_find(ca, q->template_name);
    X509_REQ *req = q->csr ? csr_parse(q->csr, q->csr_len) : NULL;
    enum clc_err rc;

    if (t == NULL || req == NULL) {
        X509_REQ_free(req);
        return clc_errf(ei, CLC_ERR_CONFLICT,
                        "request %lld can no longer be issued (its template or CSR is gone)",
                        (long long)q->id);
    }
    rc = issue(ca, t, req, now, q, ei);
    X509_REQ_free(req);
    return rc;
}

/* ---- policy ---- */

static void deny(struct ca_request *q, uint32_t hr, const char *message, int64_t now)
{
    q->disposition = CA_DISP_DENIED;
    q->status = hr;
    snprintf(q->message, sizeof q->message, "%s", message);
    q->resolved = now;
}

/* "Denied by Policy Module  0x80094811, <text>": the policy module's shape. */
static void deny_policy(struct ca_request *q, uint32_t hr, const char *extra, int64_t now)
{
    char msg[CA_MSG_MAX];

    snprintf(msg, sizeof msg, "Denied by Policy Module  0x%x, %s%s", hr, ca_hr_text(hr),
             extra ? extra : "");
    deny(q, hr, msg, now);
}

/* AD CS's message for an unsupported template ends with its name. */
static void deny_template(struct ca_request *q, const char *ref, int64_t now)
{
    char msg[CA_MSG_MAX], extra[CA_NAME_MAX + 8];

    snprintf(extra, sizeof extra, ": %s.", ref ? ref : "");
    snprintf(msg, sizeof msg,
             "Denied by Policy Module  0x%x, The request was for a certificate template that is "
             "not supported by the Active Directory Certificate Services policy%s",
             CA_HR_UNSUPPORTED_CERT_TYPE, ref && ref[0] ? extra : ".");
    deny(q, CA_HR_UNSUPPORTED_CERT_TYPE, msg, now);
}

/* "Error Parsing Request  <status line>": AD CS's shape for requests it
 * cannot read. */
static void deny_error(struct ca_request *q, const char *what, uint32_t hr, int64_t now)
{
    char st[256], msg[CA_MSG_MAX];

    ca_hr_status(hr, st, sizeof st);
    snprintf(msg, sizeof msg, "%s  %s", what, st);
    deny(q, hr, msg, now);
}

/* Template names from the wire go into pages and quotes: keep them tame. */
static void safe_name(const char *in, char *out, size_t n)
{
    size_t k = 0;

    for (; in != NULL && *in && k + 1 < n; in++)
        out[k++] = (*in >= 0x20 && *in < 0x7f && *in != '"') ? *in : '?';
    out[k] = '\0';
}

/* The EST retry of a pending (or since decided) request, if any. */
static struct ca_request *find_retry(struct emu_ca *ca, const struct ca_submit *s,
                                     const unsigned char digest[32])
{
    for (size_t i = ca->nreq; i-- > 0;) {
        struct ca_request *q = &ca->req[i];
        if (strcmp(q->source, "est") == 0 && !q->est_delivered && q->csr != NULL &&
            strcmp(q->requester, s->account->name) == 0 && memcmp(q->csr_digest, digest, 32) == 0)
            return q;
    }
    return NULL;
}

/* RFC 7030 4.2.2: a re-enrollment names exactly what an earlier certificate
 * of this requester named (the one that authenticated it, when one did);
 * its template is that certificate's. */
static const struct ca_request *find_renewed(struct emu_ca *ca, const struct ca_submit *s,
                                             X509_REQ *req)
{
    GENERAL_NAMES *want = csr_sans(req);
    const struct ca_request *hit = NULL;

    for (size_t i = ca->nreq; want != NULL && hit == NULL && i-- > 0;) {
        const struct ca_request *q = &ca->req[i];
        const unsigned char *p = q->cert;
        X509 *c;
        GENERAL_NAMES *have;
        if (q->disposition != CA_DISP_ISSUED || strcmp(q->requester, s->account->name) != 0 ||
            (s->renew_row != 0 && q->id != s->renew_row) ||
            (c = d2i_X509(NULL, &p, (long)q->cert_len)) == NULL)
            continue;
        have = X509_get_ext_d2i(c, NID_subject_alt_name, NULL, NULL);
        if (X509_NAME_cmp(X509_get_subject_name(c), X509_REQ_get_subject_name(req)) == 0 &&
            same_names(have, want))
            hit = q;
        GENERAL_NAMES_free(have);
        X509_free(c);
    }
    GENERAL_NAMES_free(want);
    ERR_clear_error();
    return hit;
}

/* 1 when the CSR's signature verifies with its own key. Checked before the
 * CA's lock is taken: it needs nothing of the CA's state. */
static int csr_signature_ok(X509_REQ *req)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    int ok = pub != NULL && X509_REQ_verify(req, pub) == 1;
    ERR_clear_error();
    return ok;
}

/* Everything the policy module checks, in AD CS's order (sig_ok: the CSR's
 * signature, verified by the caller); issues when allowed. */
static enum clc_err decide(struct emu_ca *ca, const struct ca_submit *s, X509_REQ *req, int sig_ok,
                           struct ca_request *q, int64_t now, struct clc_errinfo *ei)
{
    const struct ca_template *t;
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    GENERAL_NAMES *sans;
    int bits, nsans;

    if (pub == NULL || !sig_ok) {
        deny_error(q, "Error Verifying Request Signature or Signing Certificate",
                   CA_HR_BAD_SIGNATURE, now);
        return CLC_OK;
    }
    t = ca_template_find(ca, s->template_ref);
    if (s->est_reenroll) {
        const struct ca_request *old = find_renewed(ca, s, req);
        if (old == NULL) {
            deny_policy(q, CA_HR_BAD_REQUESTSUBJECT,
                        s->renew_row ? " The subject and subjectAltName differ from those of "
                                       "the certificate that authenticated the request."
                                     : " No certificate of this requester has the same subject "
                                       "and subjectAltName to renew.",
                        now);
            return CLC_OK;
        }
        if (s->template_ref == NULL || s->template_ref[0] == '\0')
            t = ca_template_find(ca, old->template_name);
    }
    if (t == NULL) {
        deny_template(q, q->template_name, now);
        return CLC_OK;
    }
    snprintf(q->template_name, sizeof q->template_name, "%s", t->name);
    if (!ca_account_may_enroll(s->account, t)) {
        /* AD CS shows only this on the page; the code is on certnew.cer. */
        deny(q, CA_HR_TEMPLATE_DENIED, "Denied by Policy Module", now);
        return CLC_OK;
    }
    bits = EVP_PKEY_get_bits(pub);
    if (EVP_PKEY_is_a(pub, "RSA") ? !t->allow_rsa : EVP_PKEY_is_a(pub, "EC") ? !t->allow_ec : 1) {
        deny_policy(q, CA_HR_BAD_ALGID, NULL, now);
        return CLC_OK;
    }
    if (bits < (EVP_PKEY_is_a(pub, "RSA") ? t->min_rsa_bits : t->min_ec_bits)) {
        deny_policy(q, CA_HR_KEY_LENGTH, NULL, now);
        return CLC_OK;
    }
    sans = csr_sans(req);
    if (sans == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    nsans = sk_GENERAL_NAME_num(sans);
    GENERAL_NAMES_free(sans);
    if (X509_NAME_entry_count(X509_REQ_get_subject_name(req)) == 0 && nsans == 0) {
        deny_policy(q, CA_HR_BAD_REQUESTSUBJECT, NULL, now);
        return CLC_OK;
    }
    if (t->approval) {
        q->disposition = CA_DISP_PENDING;
        q->status = CA_HR_OK;
        snprintf(q->message, sizeof q->message, "Taken Under Submission");
        return CLC_OK;
    }
    return issue(ca, t, req, now, q, ei);
}

enum clc_err ca_submit(struct emu_ca *ca, const struct ca_submit *s, struct ca_result *res,
                       struct clc_errinfo *ei)
{
    unsigned char *der = NULL, digest[32];
    size_t dlen = 0;
    X509_REQ *req = NULL;
    struct ca_request *q = NULL;
    int64_t now = emu_now(ca->e);
    enum clc_err rc = CLC_OK;
    int sig_ok = 0;

    memset(res, 0, sizeof *res);
    if (csr_decode(s->csr_text, s->csr_len, &der, &dlen))
        req = csr_parse(der, dlen);
    if (req != NULL && EVP_Digest(der, dlen, digest, NULL, EVP_sha256(), NULL) != 1) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "hashing the CSR failed");
        goto out;
    }
    sig_ok = req != NULL && csr_signature_ok(req);
    pthread_mutex_lock(&ca->mu);
    if (req != NULL && s->est_retry && (q = find_retry(ca, s, digest)) != NULL) {
        /* The client repeats its POST until the request is decided. */
        if (q->disposition != CA_DISP_PENDING)
            q->est_delivered = 1;
        rc = ca_result_from(q, res);
        if (rc == CLC_OK && q->est_delivered)
            rc = ca_store_save(ca, ei);
        pthread_mutex_unlock(&ca->mu);
        goto out;
    }
    q = ca_store_add(ca);
    if (q == NULL) {
        pthread_mutex_unlock(&ca->mu);
        rc = clc_errf(ei, CLC_ERR_LIMIT, "the CA database is full (%d requests)", CA_MAX_REQUESTS);
        goto out;
    }
    snprintf(q->requester, sizeof q->requester, "%s", s->account->name);
    safe_name(s->template_ref, q->template_name, sizeof q->template_name);
    snprintf(q->source, sizeof q->source, "%s", s->source);
    q->submitted = now;
    if (req == NULL) {
        deny_error(q, "Error Parsing Request", der ? CA_HR_ASN1_BADTAG : CA_HR_INVALID_DATA, now);
    } else {
        q->csr = der;
        q->csr_len = dlen;
        der = NULL;
        memcpy(q->csr_digest, digest, sizeof digest);
        rc = decide(ca, s, req, sig_ok, q, now, ei);
    }
    if (rc == CLC_OK && s->est_retry && q->disposition != CA_DISP_PENDING)
        q->est_delivered = 1;
    if (rc == CLC_OK)
        rc = ca_result_from(q, res);
    if (rc == CLC_OK)
        rc = ca_store_save(ca, ei);
    pthread_mutex_unlock(&ca->mu);
    if (rc == CLC_OK && res->disposition == CA_DISP_DENIED)
        clc_log(CLC_LOG_INFO, "emu.ca.denied", CLC_LI("request_id", res->id),
                CLC_LS("message", res->message));
out:
    X509_REQ_free(req);
    free(der);
    if (rc != CLC_OK)
        ca_result_cleanup(res);
    return rc;
}

void ca_result_cleanup(struct ca_result *res)
{
    free(res->cert);
    memset(res, 0, sizeof *res);
}
