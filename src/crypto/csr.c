/* PKCS#10 requests: parse (DER or PEM) with the self-signature verified, read
 * subject, SANs, key and requested usages, compare them with a Key Vault
 * policy, and match an issued certificate's key against the request's. */
#include "crypto/csr.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define SUBJECT_MAX 4096
#define RDN_MAX 64

static enum clc_err verify_self(X509_REQ *req, struct clc_errinfo *ei)
{
    EVP_PKEY *pk = X509_REQ_get0_pubkey(req);
    int ok = pk && X509_REQ_verify(req, pk) == 1;
    ERR_clear_error();
    if (!ok)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "certificate request: signature does not verify with its own key");
    return CLC_OK;
}

enum clc_err clc_csr_from_der(const unsigned char *der, size_t len, X509_REQ **out,
                              struct clc_errinfo *ei)
{
    const unsigned char *p = der;
    *out = NULL;
    if (!der || len == 0 || len > CLC_CSR_DER_MAX)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate request: empty or over %d bytes",
                        CLC_CSR_DER_MAX);
    X509_REQ *r = d2i_X509_REQ(NULL, &p, (long)len);
    if (!r || p != der + len) {
        X509_REQ_free(r);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_PARSE, "certificate request: not a DER PKCS#10 request");
    }
    enum clc_err rc = verify_self(r, ei);
    if (rc != CLC_OK) {
        X509_REQ_free(r);
        return rc;
    }
    *out = r;
    return CLC_OK;
}

enum clc_err clc_csr_from_pem(const char *pem, size_t len, X509_REQ **out, struct clc_errinfo *ei)
{
    *out = NULL;
    if (!pem || len == 0 || len > 2 * CLC_CSR_DER_MAX)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate request: empty or too long");
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    X509_REQ *r = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!r)
        return clc_errf(ei, CLC_ERR_PARSE, "certificate request: no PEM CERTIFICATE REQUEST");
    enum clc_err rc = verify_self(r, ei);
    if (rc != CLC_OK) {
        X509_REQ_free(r);
        return rc;
    }
    *out = r;
    return CLC_OK;
}

static const char *const ku_names[] = {
    "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
    "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
};

static enum clc_err read_extensions(X509_REQ *req, struct clc_csr_info *info,
                                    struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);

    for (int i = 0; rc == CLC_OK && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        int nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
        if (nid != NID_subject_alt_name && nid != NID_ext_key_usage && nid != NID_key_usage)
            continue;
        void *v = X509V3_EXT_d2i(ext);
        if (!v) {
            rc = clc_errf(ei, CLC_ERR_PARSE, "certificate request: extension %s is malformed",
                          OBJ_nid2sn(nid));
            break;
        }
        if (nid == NID_subject_alt_name) {
            rc = clc_cert_sans_from_names(v, &info->sans, ei);
            GENERAL_NAMES_free(v);
        } else if (nid == NID_ext_key_usage) {
            for (int k = 0; rc == CLC_OK && k < sk_ASN1_OBJECT_num(v); k++) {
                char oid[128];
                int n = OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(v, k), 1);
                rc = n > 0 && n < (int)sizeof oid
                         ? clc_cert_strs_add(&info->ekus, oid, 64)
                         : clc_errf(ei, CLC_ERR_PARSE, "certificate request: bad EKU");
            }
            EXTENDED_KEY_USAGE_free(v);
        } else {
            for (int b = 0; rc == CLC_OK && b < (int)(sizeof ku_names / sizeof ku_names[0]); b++)
                if (ASN1_BIT_STRING_get_bit(v, b))
                    rc = clc_cert_strs_add(&info->key_usage, ku_names[b], 16);
            ASN1_BIT_STRING_free(v);
        }
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    if (rc == CLC_ERR_NOMEM || rc == CLC_ERR_LIMIT)
        clc_errf(ei, rc, "certificate request: extensions too large");
    return rc;
}

enum clc_err clc_csr_info_get(X509_REQ *req, struct clc_csr_info *info, struct clc_errinfo *ei)
{
    enum clc_err rc;
    memset(info, 0, sizeof *info);
    if (!req)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate request: none given");
    if ((rc = clc_cert_name_text(X509_REQ_get_subject_name(req), &info->subject, ei)) != CLC_OK)
        return rc;
    if ((rc = clc_cert_key_describe(X509_REQ_get0_pubkey(req), &info->key, ei)) != CLC_OK)
        return rc;
    return read_extensions(req, info, ei);
}

void clc_csr_info_cleanup(struct clc_csr_info *info)
{
    if (!info)
        return;
    free(info->subject);
    clc_cert_sans_cleanup(&info->sans);
    clc_cert_strs_cleanup(&info->ekus);
    clc_cert_strs_cleanup(&info->key_usage);
    memset(info, 0, sizeof *info);
}

/* One attribute of a distinguished name, as (NID, UTF-8 value). */
struct rdn {
    int nid;
    char *value;
    int matched;
};

static int attr_nid(const char *name)
{
    static const struct {
        const char *alias;
        int nid;
    } aliases[] = {
        {"CN", NID_commonName},
        {"O", NID_organizationName},
        {"OU", NID_organizationalUnitName},
        {"L", NID_localityName},
        {"S", NID_stateOrProvinceName},
        {"ST", NID_stateOrProvinceName},
        {"C", NID_countryName},
        {"E", NID_pkcs9_emailAddress},
        {"EMAIL", NID_pkcs9_emailAddress},
        {"EMAILADDRESS", NID_pkcs9_emailAddress},
        {"DC", NID_domainComponent},
        {"STREET", NID_streetAddress},
        {"SERIALNUMBER", NID_serialNumber},
        {"T", NID_title},
        {"TITLE", NID_title},
        {"G", NID_givenName},
        {"GN", NID_givenName},
        {"SN", NID_surname},
        {"UID", NID_userId},
        {"POSTALCODE", NID_postalCode},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcasecmp(name, aliases[i].alias) == 0)
            return aliases[i].nid;
    return OBJ_txt2nid(name); /* dotted OIDs and other OpenSSL names */
}

static void rdns_free(struct rdn *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(r[i].value);
}

/* Parses "CN=a, O=\"b, c\", OU=d\,e" (',', ';' or '+' between attributes,
 * values quoted or with backslash escapes, spaces around trimmed). */
static enum clc_err parse_subject(const char *s, struct rdn *out, size_t *n, struct clc_errinfo *ei)
{
    char name[64], value[SUBJECT_MAX];
    size_t cnt = 0;
    const char *p = s;

    *n = 0;
    if (strlen(s) >= SUBJECT_MAX)
        return clc_errf(ei, CLC_ERR_INVALID, "policy subject: longer than %d bytes", SUBJECT_MAX);
    while (*p) {
        size_t nl = 0, vl = 0, last_nonspace = 0;
        while (*p == ' ')
            p++;
        while (*p && *p != '=' && nl + 1 < sizeof name)
            name[nl++] = *p++;
        while (nl > 0 && name[nl - 1] == ' ')
            nl--;
        name[nl] = '\0';
        if (*p != '=' || nl == 0)
            goto bad;
        p++;
        while (*p == ' ')
            p++;
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                value[vl++] = *p;
            }
            if (*p != '"')
                goto bad;
            p++;
            last_nonspace = vl;
            while (*p == ' ')
                p++;
        } else {
            for (; *p && *p != ',' && *p != ';' && *p != '+'; p++) {
                if (*p == '\\' && p[1])
                    p++;
                value[vl++] = *p;
                if (*p != ' ' || p[-1] == '\\')
                    last_nonspace = vl;
            }
        }
        vl = last_nonspace;
        value[vl] = '\0';
        if (*p && *p != ',' && *p != ';' && *p != '+')
            goto bad;
        if (*p)
            p++;
        int nid = attr_nid(name);
        if (nid == NID_undef) {
            rdns_free(out, cnt);
            return clc_errf(ei, CLC_ERR_INVALID, "policy subject: unknown attribute '%s'", name);
        }
        if (cnt >= RDN_MAX) {
            rdns_free(out, cnt);
            return clc_errf(ei, CLC_ERR_LIMIT, "policy subject: more than %d attributes", RDN_MAX);
        }
        out[cnt].nid = nid;
        out[cnt].matched = 0;
        if (!(out[cnt].value = strdup(value))) {
            rdns_free(out, cnt);
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        }
        cnt++;
    }
    *n = cnt;
    return CLC_OK;
bad:
    rdns_free(out, cnt);
    return clc_errf(ei, CLC_ERR_INVALID, "policy subject '%.200s': not NAME=value pairs", s);
}

/* The request's subject must hold exactly the policy's attributes (in any
 * order: LDAP strings list RDNs most-specific first, DER the other way). */
static enum clc_err check_subject(X509_REQ *req, const char *want, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    struct rdn rdns[RDN_MAX];
    size_t n = 0;
    const X509_NAME *name = X509_REQ_get_subject_name(req);
    char *have = NULL;

    if ((rc = parse_subject(want, rdns, &n, ei)) != CLC_OK)
        return rc;
    int count = X509_NAME_entry_count(name);
    int ok = count == (int)n;
    for (int i = 0; ok && i < count; i++) {
        const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        unsigned char *u = NULL;
        int ul = ASN1_STRING_to_UTF8(&u, X509_NAME_ENTRY_get_data(e));
        int found = 0;
        for (size_t k = 0; ul >= 0 && !found && k < n; k++) {
            if (!rdns[k].matched && rdns[k].nid == nid && strlen(rdns[k].value) == (size_t)ul &&
                memcmp(rdns[k].value, u, (size_t)ul) == 0)
                rdns[k].matched = found = 1;
        }
        OPENSSL_free(u);
        ok = found;
    }
    ERR_clear_error();
    if (!ok) {
        clc_cert_name_text(name, &have, NULL);
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "certificate request subject '%.200s' does not match policy subject "
                      "'%.200s'",
                      have ? have : "?", want);
    }
    free(have);
    rdns_free(rdns, n);
    return rc;
}

static enum clc_err check_names(const char *kind, const struct clc_cert_strs *have,
                                const struct clc_cert_strs *want, int nocase,
                                struct clc_errinfo *ei)
{
    static const struct clc_cert_strs none = {0};
    if (clc_cert_strs_same_set(have, want ? want : &none, nocase))
        return CLC_OK;
    return clc_errf(ei, CLC_ERR_INVALID,
                    "certificate request %s names (%zu, first '%.100s') differ from the "
                    "policy's (%zu, first '%.100s')",
                    kind, have->n, have->n ? have->v[0] : "", want ? want->n : 0,
                    want && want->n ? want->v[0] : "");
}

static enum clc_err check_key(const struct clc_cert_key *k, const struct clc_csr_expect *w,
                              struct clc_errinfo *ei)
{
    if (!w->kty)
        return CLC_OK;
    if (strcmp(w->kty, "RSA") == 0 || strcmp(w->kty, "RSA-HSM") == 0) {
        int bits = w->key_size ? w->key_size : 2048;
        if (strcmp(k->kty, "RSA") != 0 || k->bits != bits)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate request key is %s %d bits; the policy asks for RSA %d",
                            k->kty, k->bits, bits);
        return CLC_OK;
    }
    if (strcmp(w->kty, "EC") == 0 || strcmp(w->kty, "EC-HSM") == 0) {
        const char *crv = w->crv && *w->crv ? w->crv : "P-256";
        if (strcmp(k->kty, "EC") != 0 || strcmp(k->crv, crv) != 0)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate request key is %s %s; the policy asks for EC %s", k->kty,
                            k->crv[0] ? k->crv : "", crv);
        return CLC_OK;
    }
    return clc_errf(ei, CLC_ERR_UNSUPPORTED, "policy key type '%.20s' is not RSA or EC", w->kty);
}

enum clc_err clc_csr_check(X509_REQ *req, const struct clc_csr_expect *want, struct clc_errinfo *ei)
{
    enum clc_err rc;
    struct clc_csr_info info;

    if (!req || !want)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate request check: nothing to check");
    if ((rc = clc_csr_info_get(req, &info, ei)) != CLC_OK)
        goto out;
    if (want->subject && (rc = check_subject(req, want->subject, ei)) != CLC_OK)
        goto out;
    if ((rc = check_names("DNS", &info.sans.dns, want->dns_names, 1, ei)) != CLC_OK ||
        (rc = check_names("e-mail", &info.sans.emails, want->emails, 1, ei)) != CLC_OK ||
        (rc = check_names("UPN", &info.sans.upns, want->upns, 0, ei)) != CLC_OK)
        goto out;
    rc = check_key(&info.key, want, ei);
out:
    clc_csr_info_cleanup(&info);
    return rc;
}

enum clc_err clc_csr_check_leaf(X509_REQ *req, X509 *leaf, struct clc_errinfo *ei)
{
    if (!req || !leaf)
        return clc_errf(ei, CLC_ERR_INVALID, "key match: request or certificate missing");
    EVP_PKEY *a = X509_REQ_get0_pubkey(req);
    EVP_PKEY *b = X509_get0_pubkey(leaf);
    int eq = a && b && EVP_PKEY_eq(a, b) == 1;
    ERR_clear_error();
    if (!eq)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "the certificate's public key is not the certificate request's key "
                        "(a chain for another key)");
    return CLC_OK;
}
