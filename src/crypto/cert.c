/* Reading one certificate into struct clc_cert_info (names, key, extensions
 * including the Microsoft template ones, thumbprints) and the string-list
 * and SAN helpers the CSR code shares. Chains are in cert_chain.c. */
#include "crypto/cert.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include "core/clock.h"

#define OID_TEMPLATE_INFO "1.3.6.1.4.1.311.21.7"
#define OID_TEMPLATE_NAME "1.3.6.1.4.1.311.20.2"
#define OID_UPN "1.3.6.1.4.1.311.20.2.3"
#define CERT_STR_MAX 4096 /* longest name or SAN we keep */

void clc_cert_strs_cleanup(struct clc_cert_strs *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

enum clc_err clc_cert_strs_add(struct clc_cert_strs *l, const char *s, size_t max)
{
    if (l->n >= max)
        return CLC_ERR_LIMIT;
    char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
    if (!nv)
        return CLC_ERR_NOMEM;
    l->v = nv;
    nv[l->n] = strdup(s);
    if (!nv[l->n])
        return CLC_ERR_NOMEM;
    l->n++;
    return CLC_OK;
}

static int strs_has(const struct clc_cert_strs *l, const char *s, int nocase)
{
    for (size_t i = 0; l && i < l->n; i++)
        if ((nocase ? strcasecmp(l->v[i], s) : strcmp(l->v[i], s)) == 0)
            return 1;
    return 0;
}

int clc_cert_strs_same_set(const struct clc_cert_strs *a, const struct clc_cert_strs *b, int nocase)
{
    for (size_t i = 0; a && i < a->n; i++)
        if (!strs_has(b, a->v[i], nocase))
            return 0;
    for (size_t i = 0; b && i < b->n; i++)
        if (!strs_has(a, b->v[i], nocase))
            return 0;
    return 1;
}

void clc_cert_sans_cleanup(struct clc_cert_sans *s)
{
    if (!s)
        return;
    clc_cert_strs_cleanup(&s->dns);
    clc_cert_strs_cleanup(&s->emails);
    clc_cert_strs_cleanup(&s->upns);
    clc_cert_strs_cleanup(&s->ips);
    clc_cert_strs_cleanup(&s->uris);
}

/* ASN.1 string as UTF-8 text without embedded NULs; malloc'd or NULL. */
static char *asn1_utf8(const ASN1_STRING *s)
{
    unsigned char *u = NULL;
    int n = ASN1_STRING_to_UTF8(&u, s);
    if (n < 0 || n > CERT_STR_MAX || memchr(u, '\0', (size_t)n)) {
        OPENSSL_free(u);
        ERR_clear_error();
        return NULL;
    }
    char *r = malloc((size_t)n + 1);
    if (r) {
        memcpy(r, u, (size_t)n);
        r[n] = '\0';
    }
    OPENSSL_free(u);
    return r;
}

static enum clc_err add_owned(struct clc_cert_strs *l, char *s, const char *kind,
                              struct clc_errinfo *ei)
{
    enum clc_err rc;
    if (!s)
        return clc_errf(ei, CLC_ERR_PARSE, "subject alternative name (%s): not valid text", kind);
    rc = clc_cert_strs_add(l, s, CLC_CERT_SANS_MAX);
    free(s);
    if (rc == CLC_ERR_LIMIT)
        return clc_errf(ei, rc, "more than %d subject alternative names", CLC_CERT_SANS_MAX);
    if (rc != CLC_OK)
        return clc_errf(ei, rc, "out of memory");
    return CLC_OK;
}

static char *ip_text(const ASN1_OCTET_STRING *ip)
{
    char buf[INET6_ADDRSTRLEN];
    int len = ASN1_STRING_length(ip);
    const unsigned char *d = ASN1_STRING_get0_data(ip);
    if ((len != 4 && len != 16) || !inet_ntop(len == 4 ? AF_INET : AF_INET6, d, buf, sizeof buf))
        return NULL;
    return strdup(buf);
}

enum clc_err clc_cert_sans_from_names(const GENERAL_NAMES *names, struct clc_cert_sans *s,
                                      struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    ASN1_OBJECT *upn = OBJ_txt2obj(OID_UPN, 1);

    if (!upn)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (int i = 0; rc == CLC_OK && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        switch (g->type) {
        case GEN_DNS:
            rc = add_owned(&s->dns, asn1_utf8(g->d.dNSName), "DNS", ei);
            break;
        case GEN_EMAIL:
            rc = add_owned(&s->emails, asn1_utf8(g->d.rfc822Name), "e-mail", ei);
            break;
        case GEN_URI:
            rc = add_owned(&s->uris, asn1_utf8(g->d.uniformResourceIdentifier), "URI", ei);
            break;
        case GEN_IPADD:
            rc = add_owned(&s->ips, ip_text(g->d.iPAddress), "IP", ei);
            break;
        case GEN_OTHERNAME:
            if (OBJ_cmp(g->d.otherName->type_id, upn) != 0)
                break;
            if (!g->d.otherName->value || g->d.otherName->value->type != V_ASN1_UTF8STRING) {
                rc = clc_errf(ei, CLC_ERR_PARSE, "subject alternative name (UPN): not UTF8String");
                break;
            }
            rc = add_owned(&s->upns, asn1_utf8(g->d.otherName->value->value.utf8string), "UPN", ei);
            break;
        default:
            break; /* directory names, registered ids: not part of a Key Vault policy */
        }
    }
    ASN1_OBJECT_free(upn);
    return rc;
}

enum clc_err clc_cert_key_describe(const EVP_PKEY *pkey, struct clc_cert_key *out,
                                   struct clc_errinfo *ei)
{
    static const struct {
        const char *ossl, *kv;
    } curves[] = {{"prime256v1", "P-256"}, {"P-256", "P-256"},     {"secp384r1", "P-384"},
                  {"P-384", "P-384"},      {"secp521r1", "P-521"}, {"P-521", "P-521"},
                  {"secp256k1", "P-256K"}};
    char group[64] = "";
    size_t glen = 0;

    memset(out, 0, sizeof *out);
    if (!pkey)
        return clc_errf(ei, CLC_ERR_PARSE, "no public key");
    out->bits = EVP_PKEY_get_bits(pkey);
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        snprintf(out->kty, sizeof out->kty, "RSA");
        return CLC_OK;
    }
    if (!EVP_PKEY_is_a(pkey, "EC")) {
        const char *n = EVP_PKEY_get0_type_name(pkey);
        snprintf(out->kty, sizeof out->kty, "%s", n ? n : "unknown");
        return CLC_OK;
    }
    snprintf(out->kty, sizeof out->kty, "EC");
    if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                        &glen)) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_UNSUPPORTED, "EC key without a named curve");
    }
    for (size_t i = 0; i < sizeof curves / sizeof curves[0]; i++)
        if (strcmp(group, curves[i].ossl) == 0)
            snprintf(out->crv, sizeof out->crv, "%s", curves[i].kv);
    if (!out->crv[0])
        snprintf(out->crv, sizeof out->crv, "%.15s", group);
    return CLC_OK;
}

enum clc_err clc_cert_name_text(const X509_NAME *name, char **out, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    BIO *bio = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;

    *out = NULL;
    /* RFC 2253 escaping, but UTF-8 kept as such rather than \XX escapes. */
    if (!bio || X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) < 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "name: cannot be printed");
        goto out;
    }
    len = BIO_get_mem_data(bio, &data);
    if (len < 0 || len > CERT_STR_MAX) {
        rc = clc_errf(ei, CLC_ERR_LIMIT, "name: longer than %d bytes", CERT_STR_MAX);
        goto out;
    }
    *out = malloc((size_t)len + 1);
    if (!*out) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, data ? data : "", (size_t)len);
    (*out)[len] = '\0';
out:
    ERR_clear_error();
    BIO_free(bio);
    return rc;
}

static int asn1_time_unix(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return 0;
    *out = clc_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec);
    return 1;
}

static char *hex_upper(const unsigned char *p, size_t n)
{
    char *s = malloc(n * 2 + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++)
        snprintf(s + 2 * i, 3, "%02X", p[i]);
    s[n * 2] = '\0';
    return s;
}

enum clc_err clc_cert_from_der(const unsigned char *der, size_t len, X509 **out,
                               struct clc_errinfo *ei)
{
    const unsigned char *p = der;
    *out = NULL;
    if (!der || len == 0 || len > CLC_CERT_DER_MAX)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate: empty or over %d bytes", CLC_CERT_DER_MAX);
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (!x || p != der + len) {
        X509_free(x);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_PARSE, "certificate: not a DER X.509 certificate");
    }
    *out = x;
    return CLC_OK;
}

enum clc_err clc_cert_to_der(X509 *cert, unsigned char **out, size_t *len, struct clc_errinfo *ei)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    *out = NULL;
    *len = 0;
    if (n <= 0) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_CRYPTO, "certificate: DER encoding failed");
    }
    /* Hand out malloc'd memory so callers free() it like everything else. */
    *out = malloc((size_t)n);
    if (!*out) {
        OPENSSL_free(der);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    memcpy(*out, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    return CLC_OK;
}

/* Decoded extension by NID: CLC_OK with *out NULL when absent; a malformed
 * or repeated extension is CLC_ERR_PARSE. */
static enum clc_err ext_d2i(X509 *x, int nid, void **out, struct clc_errinfo *ei)
{
    int crit = 0;
    *out = X509_get_ext_d2i(x, nid, &crit, NULL);
    if (*out || crit == -1)
        return CLC_OK;
    ERR_clear_error();
    return clc_errf(ei, CLC_ERR_PARSE, "certificate: extension %s is %s", OBJ_nid2sn(nid),
                    crit == -2 ? "present twice" : "malformed");
}

/* Raw value of an extension named by dotted OID; NULL when absent. */
static const ASN1_OCTET_STRING *ext_by_oid(X509 *x, const char *oid, int *twice)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    const ASN1_OCTET_STRING *v = NULL;
    *twice = 0;
    if (!obj)
        return NULL;
    int idx = X509_get_ext_by_OBJ(x, obj, -1);
    if (idx >= 0) {
        v = X509_EXTENSION_get_data(X509_get_ext(x, idx));
        *twice = X509_get_ext_by_OBJ(x, obj, idx) >= 0;
    }
    ASN1_OBJECT_free(obj);
    return v;
}

/* CertificateTemplate ::= SEQUENCE { templateID OBJECT IDENTIFIER,
 *   templateMajorVersion INTEGER, templateMinorVersion INTEGER OPTIONAL } */
static enum clc_err parse_template_info(X509 *x, struct clc_cert_info *info, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    int twice = 0;
    const ASN1_OCTET_STRING *v = ext_by_oid(x, OID_TEMPLATE_INFO, &twice);
    STACK_OF(ASN1_TYPE) *seq = NULL;
    int64_t major = 0, minor = -1;

    if (!v)
        return CLC_OK;
    const unsigned char *p = ASN1_STRING_get0_data(v);
    const unsigned char *end = p + ASN1_STRING_length(v);
    seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)(end - p));
    int n = seq ? sk_ASN1_TYPE_num(seq) : 0;
    if (twice || !seq || p != end || n < 2 || n > 3) {
        rc = CLC_ERR_PARSE;
        goto out;
    }
    const ASN1_TYPE *oid = sk_ASN1_TYPE_value(seq, 0);
    const ASN1_TYPE *maj = sk_ASN1_TYPE_value(seq, 1);
    const ASN1_TYPE *min = n == 3 ? sk_ASN1_TYPE_value(seq, 2) : NULL;
    if (oid->type != V_ASN1_OBJECT || maj->type != V_ASN1_INTEGER ||
        (min && min->type != V_ASN1_INTEGER) ||
        OBJ_obj2txt(info->template_oid, sizeof info->template_oid, oid->value.object, 1) <= 0 ||
        strlen(info->template_oid) >= sizeof info->template_oid - 1 ||
        ASN1_INTEGER_get_int64(&major, maj->value.integer) != 1 || major < 0 ||
        major > 0x7fffffff ||
        (min && (ASN1_INTEGER_get_int64(&minor, min->value.integer) != 1 || minor < 0 ||
                 minor > 0x7fffffff))) {
        rc = CLC_ERR_PARSE;
        goto out;
    }
    info->has_template = 1;
    info->template_major = (long)major;
    info->template_minor = (long)minor;
out:
    if (rc != CLC_OK) {
        info->template_oid[0] = '\0';
        clc_errf(ei, rc, "certificate: template information extension (%s) is malformed",
                 OID_TEMPLATE_INFO);
    }
    sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
    ERR_clear_error();
    return rc;
}

/* The V1 template name: a BMPString in practice; other string types seen in
 * the wild are accepted too. */
static enum clc_err parse_template_name(X509 *x, struct clc_cert_info *info, struct clc_errinfo *ei)
{
    int twice = 0;
    const ASN1_OCTET_STRING *v = ext_by_oid(x, OID_TEMPLATE_NAME, &twice);
    ASN1_TYPE *t = NULL;

    if (!v)
        return CLC_OK;
    const unsigned char *p = ASN1_STRING_get0_data(v);
    const unsigned char *end = p + ASN1_STRING_length(v);
    t = d2i_ASN1_TYPE(NULL, &p, (long)(end - p));
    if (!twice && t && p == end &&
        (t->type == V_ASN1_BMPSTRING || t->type == V_ASN1_UTF8STRING ||
         t->type == V_ASN1_PRINTABLESTRING || t->type == V_ASN1_IA5STRING))
        info->template_name = asn1_utf8(t->value.asn1_string);
    ASN1_TYPE_free(t);
    ERR_clear_error();
    if (!info->template_name)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate: template name extension (%s) is malformed",
                        OID_TEMPLATE_NAME);
    return CLC_OK;
}

static enum clc_err parse_extensions(X509 *x, struct clc_cert_info *info, struct clc_errinfo *ei)
{
    enum clc_err rc;
    void *v = NULL;

    if ((rc = ext_d2i(x, NID_subject_alt_name, &v, ei)) != CLC_OK)
        return rc;
    if (v) {
        rc = clc_cert_sans_from_names(v, &info->sans, ei);
        GENERAL_NAMES_free(v);
        if (rc != CLC_OK)
            return rc;
    }
    if ((rc = ext_d2i(x, NID_ext_key_usage, &v, ei)) != CLC_OK)
        return rc;
    if (v) {
        EXTENDED_KEY_USAGE *eku = v;
        for (int i = 0; rc == CLC_OK && i < sk_ASN1_OBJECT_num(eku); i++) {
            char oid[128];
            int n = OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1);
            rc = n > 0 && n < (int)sizeof oid ? clc_cert_strs_add(&info->ekus, oid, 64)
                                              : CLC_ERR_PARSE;
        }
        EXTENDED_KEY_USAGE_free(eku);
        if (rc != CLC_OK)
            return clc_errf(ei, rc, "certificate: extended key usage unreadable or too long");
    }
    if ((rc = ext_d2i(x, NID_basic_constraints, &v, ei)) != CLC_OK)
        return rc;
    if (v) {
        info->is_ca = ((BASIC_CONSTRAINTS *)v)->ca != 0;
        BASIC_CONSTRAINTS_free(v);
    }
    if ((rc = ext_d2i(x, NID_subject_key_identifier, &v, ei)) != CLC_OK)
        return rc;
    if (v) {
        info->ski_hex = hex_upper(ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v));
        ASN1_OCTET_STRING_free(v);
        if (!info->ski_hex)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    if ((rc = ext_d2i(x, NID_authority_key_identifier, &v, ei)) != CLC_OK)
        return rc;
    if (v) {
        AUTHORITY_KEYID *aki = v;
        if (aki->keyid)
            info->aki_hex = hex_upper(ASN1_STRING_get0_data(aki->keyid),
                                      (size_t)ASN1_STRING_length(aki->keyid));
        int nomem = aki->keyid && !info->aki_hex;
        AUTHORITY_KEYID_free(aki);
        if (nomem)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    if ((rc = parse_template_info(x, info, ei)) != CLC_OK)
        return rc;
    return parse_template_name(x, info, ei);
}

enum clc_err clc_cert_info_get(X509 *cert, struct clc_cert_info *info, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    BIGNUM *bn = NULL;
    char *hex = NULL;
    unsigned int n = 0;

    memset(info, 0, sizeof *info);
    info->template_minor = -1;
    if (!cert)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate: none given");
    if ((rc = clc_cert_name_text(X509_get_subject_name(cert), &info->subject, ei)) != CLC_OK ||
        (rc = clc_cert_name_text(X509_get_issuer_name(cert), &info->issuer, ei)) != CLC_OK)
        goto out;
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    if (!hex || !(info->serial_hex = strdup(hex))) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificate: serial number unreadable");
        goto out;
    }
    if (!asn1_time_unix(X509_get0_notBefore(cert), &info->not_before) ||
        !asn1_time_unix(X509_get0_notAfter(cert), &info->not_after)) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "certificate: validity dates unreadable");
        goto out;
    }
    if ((rc = clc_cert_key_describe(X509_get0_pubkey(cert), &info->key, ei)) != CLC_OK)
        goto out;
    if ((rc = parse_extensions(cert, info, ei)) != CLC_OK)
        goto out;
    if (X509_digest(cert, EVP_sha1(), info->sha1, &n) != 1 || n != sizeof info->sha1 ||
        X509_digest(cert, EVP_sha256(), info->sha256, &n) != 1 || n != sizeof info->sha256) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "certificate: digest failed");
        goto out;
    }
    for (size_t i = 0; i < sizeof info->sha1; i++)
        snprintf(info->sha1_hex + 2 * i, 3, "%02X", info->sha1[i]);
    for (size_t i = 0; i < sizeof info->sha256; i++)
        snprintf(info->sha256_hex + 2 * i, 3, "%02X", info->sha256[i]);
out:
    OPENSSL_free(hex);
    BN_free(bn);
    ERR_clear_error();
    return rc;
}

void clc_cert_info_cleanup(struct clc_cert_info *info)
{
    if (!info)
        return;
    free(info->subject);
    free(info->issuer);
    free(info->serial_hex);
    free(info->ski_hex);
    free(info->aki_hex);
    free(info->template_name);
    clc_cert_sans_cleanup(&info->sans);
    clc_cert_strs_cleanup(&info->ekus);
    memset(info, 0, sizeof *info);
}
