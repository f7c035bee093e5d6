/* Key and certificate containers: the secret behind a version (a PFX with
 * an empty password, or PEM with the PKCS#8 key first), parsing imported
 * PFX and PEM input, and a policy that describes an existing certificate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#include "core/b64.h"
#include "core/json.h"
#include "emulator/keyvault.h"

#define UPN_OID "1.3.6.1.4.1.311.20.2.3"

/* ---- the secret ---- */

static enum clc_err bio_take(BIO *b, char **out)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);

    *out = malloc((size_t)n + 1);
    if (*out == NULL)
        return CLC_ERR_NOMEM;
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    OPENSSL_cleanse(data, (size_t)n);
    return CLC_OK;
}

enum clc_err kv_secret_value(const struct kv_version *v, char **out, struct clc_errinfo *ei)
{
    BIO *b = NULL;
    PKCS12 *p12 = NULL;
    unsigned char *der = NULL;
    int len;
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (strcmp(v->content_type, KV_CT_PEM) == 0) {
        b = BIO_new(BIO_s_mem());
        if (b == NULL || PEM_write_bio_PrivateKey(b, v->key, NULL, NULL, 0, NULL, NULL) != 1 ||
            PEM_write_bio_X509(b, v->cert) != 1) {
            rc = clc_errf(ei, CLC_ERR_CRYPTO, "PEM encoding failed");
            goto out;
        }
        for (int i = 0; v->chain != NULL && i < sk_X509_num(v->chain); i++)
            if (PEM_write_bio_X509(b, sk_X509_value(v->chain, i)) != 1) {
                rc = clc_errf(ei, CLC_ERR_CRYPTO, "PEM encoding failed");
                goto out;
            }
        rc = bio_take(b, out);
    } else {
        /* An empty password, as Key Vault hands PFX secrets out. */
        p12 = PKCS12_create("", NULL, v->key, v->cert, v->chain, 0, 0, 0, 0, 0);
        if (p12 == NULL || (len = i2d_PKCS12(p12, &der)) <= 0) {
            rc = clc_errf(ei, CLC_ERR_CRYPTO, "PKCS#12 encoding failed");
            goto out;
        }
        rc = clc_b64_encode(der, (size_t)len, out, NULL);
        OPENSSL_cleanse(der, (size_t)len);
    }
    if (rc == CLC_ERR_NOMEM)
        clc_errf(ei, rc, "out of memory");
out:
    ERR_clear_error();
    OPENSSL_free(der);
    PKCS12_free(p12);
    BIO_free(b);
    return rc;
}

/* ---- import ---- */

static enum clc_err parse_pem(const char *text, size_t len, const char *pwd, EVP_PKEY **key,
                              X509 **cert, STACK_OF(X509) * *chain, struct clc_errinfo *ei)
{
    BIO *b = NULL;
    STACK_OF(X509) *all = NULL;
    X509 *x;
    enum clc_err rc = CLC_OK;

    if (strstr(text, "-----BEGIN PRIVATE KEY-----") == NULL &&
        strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") == NULL)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "The specified PEM X.509 certificate content has no private key in "
                        "PKCS#8 format (-----BEGIN PRIVATE KEY-----); Key Vault only accepts "
                        "PKCS#8 keys. Use merge for a certificate without its key.");
    b = BIO_new_mem_buf(text, (int)len);
    *key = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)(pwd ? pwd : "")) : NULL;
    BIO_free(b);
    if (*key == NULL) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "The private key in the PEM content cannot be read (wrong password or "
                      "malformed key).");
        goto out;
    }
    b = BIO_new_mem_buf(text, (int)len);
    all = sk_X509_new_null();
    if (b == NULL || all == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (!sk_X509_push(all, x)) {
            X509_free(x);
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    /* The leaf is the certificate of the key; the rest is its chain. */
    for (int i = 0; i < sk_X509_num(all) && *cert == NULL; i++)
        if (X509_check_private_key(sk_X509_value(all, i), *key) == 1)
            *cert = sk_X509_delete(all, i);
    if (*cert == NULL) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      sk_X509_num(all) == 0
                          ? "The PEM content has no certificate."
                          : "No certificate in the PEM content matches its private key.");
        goto out;
    }
    *chain = all;
    all = NULL;
out:
    ERR_clear_error();
    BIO_free(b);
    sk_X509_pop_free(all, X509_free);
    return rc;
}

static enum clc_err parse_pfx(const unsigned char *der, size_t len, const char *pwd, EVP_PKEY **key,
                              X509 **cert, STACK_OF(X509) * *chain, struct clc_errinfo *ei)
{
    const unsigned char *p = der;
    PKCS12 *p12 = d2i_PKCS12(NULL, &p, (long)len);
    int ok = 0;

    if (p12 == NULL || p != der + len) {
        PKCS12_free(p12);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID,
                        "The specified value is neither a PKCS#12 (PFX) file nor PEM text.");
    }
    if (PKCS12_mac_present(p12) && !PKCS12_verify_mac(p12, pwd ? pwd : "", -1) &&
        !(pwd == NULL && PKCS12_verify_mac(p12, NULL, 0))) {
        PKCS12_free(p12);
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID,
                        "The PFX could not be decrypted: the specified password is wrong.");
    }
    ok = PKCS12_parse(p12, pwd ? pwd : "", key, cert, chain) == 1;
    if (!ok && pwd == NULL)
        ok = PKCS12_parse(p12, NULL, key, cert, chain) == 1;
    PKCS12_free(p12);
    ERR_clear_error();
    if (!ok)
        return clc_errf(ei, CLC_ERR_INVALID, "The PFX could not be read (wrong password?).");
    if (*key == NULL || *cert == NULL)
        return clc_errf(ei, CLC_ERR_INVALID,
                        "The PFX must hold a private key and its certificate; use merge for a "
                        "certificate without its key.");
    if (X509_check_private_key(*cert, *key) != 1) {
        ERR_clear_error();
        return clc_errf(ei, CLC_ERR_INVALID, "The PFX's certificate does not match its key.");
    }
    return CLC_OK;
}

enum clc_err kv_import_parse(const char *value, const char *pwd, const char *content_type,
                             EVP_PKEY **key, X509 **cert, STACK_OF(X509) * *chain, int *was_pem,
                             struct clc_errinfo *ei)
{
    unsigned char *raw = NULL;
    size_t len = 0;
    enum clc_err rc;

    *key = NULL;
    *cert = NULL;
    *chain = NULL;
    *was_pem = 0;
    if (strstr(value, "-----BEGIN") != NULL) {
        /* Raw PEM text, as the Azure CLI sends it. */
        *was_pem = 1;
        rc = parse_pem(value, strlen(value), pwd, key, cert, chain, ei);
        goto out;
    }
    if (clc_b64_decode(value, strlen(value), &raw, &len) != CLC_OK || len == 0) {
        rc = clc_errf(ei, CLC_ERR_INVALID,
                      "Property 'value' is neither PEM text nor valid base64%s.",
                      content_type && strcmp(content_type, KV_CT_PEM) == 0 ? "" : " of a PFX");
        goto out;
    }
    if (len > 10 && memcmp(raw, "-----BEGIN", 10) == 0) {
        *was_pem = 1;
        rc = parse_pem((const char *)raw, len, pwd, key, cert, chain, ei);
    } else {
        rc = parse_pfx(raw, len, pwd, key, cert, chain, ei);
    }
out:
    if (raw != NULL) {
        OPENSSL_cleanse(raw, len);
        free(raw);
    }
    if (rc != CLC_OK) {
        EVP_PKEY_free(*key);
        X509_free(*cert);
        sk_X509_pop_free(*chain, X509_free);
        *key = NULL;
        *cert = NULL;
        *chain = NULL;
    }
    return rc;
}

/* ---- a policy for an existing certificate ---- */

static int add_strs(cJSON *o, const char *k, cJSON **arr)
{
    *arr = cJSON_AddArrayToObject(o, k);
    return *arr != NULL;
}

static int subject_text(X509_NAME *n, char *out, size_t outlen)
{
    size_t o = 0;

    out[0] = '\0';
    for (int i = 0; i < X509_NAME_entry_count(n); i++) {
        X509_NAME_ENTRY *e = X509_NAME_get_entry(n, i);
        int nid = OBJ_obj2nid(X509_NAME_ENTRY_get_object(e));
        const char *sn = nid == NID_pkcs9_emailAddress ? "E" : OBJ_nid2sn(nid);
        unsigned char *utf8 = NULL;
        int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
        int w;

        if (len < 0 || sn == NULL || nid == NID_undef) {
            OPENSSL_free(utf8);
            continue;
        }
        w = snprintf(out + o, outlen - o, "%s%s=", o ? ", " : "", sn);
        if (w < 0 || (size_t)w >= outlen - o) {
            OPENSSL_free(utf8);
            return 0;
        }
        o += (size_t)w;
        for (int j = 0; j < len; j++) {
            char c = (char)utf8[j];
            if (o + 3 >= outlen) {
                OPENSSL_free(utf8);
                return 0;
            }
            if (c == ',' || c == ';' || c == '"' || c == '\\')
                out[o++] = '\\';
            out[o++] = c;
        }
        out[o] = '\0';
        OPENSSL_free(utf8);
    }
    return 1;
}

static int sans_of(X509 *cert, cJSON *xp)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    cJSON *sans = cJSON_AddObjectToObject(xp, "sans"), *dns, *emails, *upns;
    int ok = sans != NULL && add_strs(sans, "dns_names", &dns) &&
             add_strs(sans, "emails", &emails) && add_strs(sans, "upns", &upns);

    for (int i = 0; ok && gens != NULL && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, i);
        unsigned char *utf8 = NULL;
        cJSON *to = NULL;
        int len = -1;

        if (gn->type == GEN_DNS) {
            len = ASN1_STRING_to_UTF8(&utf8, gn->d.dNSName);
            to = dns;
        } else if (gn->type == GEN_EMAIL) {
            len = ASN1_STRING_to_UTF8(&utf8, gn->d.rfc822Name);
            to = emails;
        } else if (gn->type == GEN_OTHERNAME &&
                   OBJ_obj2nid(gn->d.otherName->type_id) == NID_ms_upn &&
                   gn->d.otherName->value->type == V_ASN1_UTF8STRING) {
            len = ASN1_STRING_to_UTF8(&utf8, gn->d.otherName->value->value.utf8string);
            to = upns;
        }
        if (to != NULL && len > 0) {
            char *s = malloc((size_t)len + 1);
            if (s != NULL) {
                memcpy(s, utf8, (size_t)len);
                s[len] = '\0';
                ok = cJSON_AddItemToArray(to, cJSON_CreateString(s));
            }
            free(s);
        }
        OPENSSL_free(utf8);
    }
    GENERAL_NAMES_free(gens);
    return ok;
}

static int ekus_of(X509 *cert, cJSON *xp)
{
    EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    cJSON *arr;
    int ok = 1;

    if (eku == NULL)
        return 1; /* the policy default applies */
    ok = add_strs(xp, "ekus", &arr);
    for (int i = 0; ok && i < sk_ASN1_OBJECT_num(eku); i++) {
        char oid[128];
        if (OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1) > 0)
            ok = cJSON_AddItemToArray(arr, cJSON_CreateString(oid));
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return ok;
}

static int ku_of(X509 *cert, cJSON *xp)
{
    static const char *const names[] = {
        "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
        "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly",
    };
    ASN1_BIT_STRING *ku = X509_get_ext_d2i(cert, NID_key_usage, NULL, NULL);
    cJSON *arr;
    int ok;

    if (ku == NULL)
        return 1;
    ok = add_strs(xp, "key_usage", &arr);
    for (int b = 0; ok && b < 9; b++)
        if (ASN1_BIT_STRING_get_bit(ku, b))
            ok = cJSON_AddItemToArray(arr, cJSON_CreateString(names[b]));
    ASN1_BIT_STRING_free(ku);
    return ok;
}

enum clc_err kv_policy_from_cert(X509 *cert, EVP_PKEY *key, const char *content_type,
                                 int exportable, const char *issuer, cJSON **out,
                                 struct clc_errinfo *ei)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *kp = p ? cJSON_AddObjectToObject(p, "key_props") : NULL;
    cJSON *sp = p ? cJSON_AddObjectToObject(p, "secret_props") : NULL;
    cJSON *xp = p ? cJSON_AddObjectToObject(p, "x509_props") : NULL;
    cJSON *is = p ? cJSON_AddObjectToObject(p, "issuer") : NULL;
    char subject[1024], group[64] = "";
    size_t gl = 0;
    int64_t nbf = 0, exp = 0, months;
    int ok = kp && sp && xp && is;

    *out = NULL;
    if (ok && EVP_PKEY_is_a(key, "EC")) {
        ok = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                            &gl) &&
             clc_json_add_str(kp, "kty", "EC") == CLC_OK &&
             clc_json_add_str(kp, "crv",
                              strcmp(group, "secp384r1") == 0    ? "P-384"
                              : strcmp(group, "secp521r1") == 0  ? "P-521"
                              : strcmp(group, "prime256v1") == 0 ? "P-256"
                                                                 : group) == CLC_OK;
    } else if (ok) {
        ok = clc_json_add_str(kp, "kty", "RSA") == CLC_OK &&
             clc_json_add_int(kp, "key_size", EVP_PKEY_get_bits(key)) == CLC_OK;
    }
    ERR_clear_error();
    if (kv_cert_times(cert, &nbf, &exp) != CLC_OK)
        ok = 0;
    months = (exp - nbf + 15 * 86400) / (30 * 86400);
    months = months < 1 ? 1 : months > 1200 ? 1200 : months;
    ok = ok && clc_json_add_bool(kp, "exportable", exportable) == CLC_OK &&
         clc_json_add_bool(kp, "reuse_key", 0) == CLC_OK &&
         clc_json_add_str(sp, "contentType", content_type) == CLC_OK &&
         subject_text(X509_get_subject_name(cert), subject, sizeof subject) &&
         clc_json_add_str(xp, "subject", subject) == CLC_OK && sans_of(cert, xp) &&
         ekus_of(cert, xp) && ku_of(cert, xp) &&
         clc_json_add_int(xp, "validity_months", months) == CLC_OK &&
         clc_json_add_str(is, "name", issuer) == CLC_OK;
    if (!ok) {
        cJSON_Delete(p);
        return clc_errf(ei, CLC_ERR_INVALID,
                        "The certificate's key type, subject or extensions cannot be described "
                        "by a Key Vault policy.");
    }
    *out = p;
    return CLC_OK;
}
