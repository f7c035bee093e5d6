/* Test PKI for the CA client tests (see ca_test_pki.h). */
#include "ca-helpers/ca_test_pki.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/x509v3.h>

#include "crypto/x509.h"

int pki_make(struct pki *p, int64_t now)
{
    struct clc_x509_spec root = {.subject_cn = "certlc test root",
                                 .not_before = now - 86400,
                                 .not_after = now + 3650 * 86400LL,
                                 .is_ca = 1};
    struct clc_x509_spec inter = root;

    memset(p, 0, sizeof *p);
    p->now = now;
    inter.subject_cn = "certlc test issuing CA";
    if (clc_signer_generate("EC", 256, &p->root_key, NULL) != CLC_OK ||
        clc_signer_generate("EC", 256, &p->inter_key, NULL) != CLC_OK ||
        clc_x509_make(&root, p->root_key, NULL, p->root_key, &p->root, NULL) != CLC_OK ||
        clc_x509_make(&inter, p->inter_key, p->root, p->root_key, &p->inter, NULL) != CLC_OK)
        return -1;
    return 0;
}

void pki_free(struct pki *p)
{
    X509_free(p->root);
    X509_free(p->inter);
    clc_signer_free(p->root_key);
    clc_signer_free(p->inter_key);
    memset(p, 0, sizeof *p);
}

/* A BIO's memory is not NUL-terminated: copy it into a string. */
static char *mem_text(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static X509_REQ *make_req_pkey(EVP_PKEY *pk, const char *cn, const char *const *sans)
{
    X509_REQ *r = X509_REQ_new();
    X509_NAME *n = X509_NAME_new();

    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_subject_name(r, n);
    X509_NAME_free(n);
    X509_REQ_set_pubkey(r, pk);
    if (sans && sans[0]) {
        char list[1024] = "";
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        for (size_t i = 0; sans[i]; i++) {
            strcat(list, i ? ",DNS:" : "DNS:");
            strcat(list, sans[i]);
        }
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, list);
        sk_X509_EXTENSION_push(exts, e);
        X509_REQ_add_extensions(r, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    X509_REQ_sign(r, pk, EVP_sha256());
    return r;
}

static X509_REQ *make_req(const struct clc_signer *key, const char *cn, const char *const *sans)
{
    return make_req_pkey(clc_signer_pkey(key), cn, sans);
}

char *pki_csr_pem_pkey(EVP_PKEY *pk, const char *cn, const char *const *sans)
{
    X509_REQ *r = make_req_pkey(pk, cn, sans);
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    char *s = NULL;

    PEM_write_bio_X509_REQ(b, r);
    BIO_get_mem_ptr(b, &bm);
    s = mem_text(bm->data, bm->length);
    BIO_free(b);
    X509_REQ_free(r);
    return s;
}

char *pki_csr_pem(const struct clc_signer *key, const char *cn, const char *const *sans)
{
    X509_REQ *r = make_req(key, cn, sans);
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    char *s = NULL;

    PEM_write_bio_X509_REQ(b, r);
    BIO_get_mem_ptr(b, &bm);
    s = mem_text(bm->data, bm->length);
    BIO_free(b);
    X509_REQ_free(r);
    return s;
}

unsigned char *pki_csr_der(const struct clc_signer *key, const char *cn, size_t *len)
{
    X509_REQ *r = make_req(key, cn, NULL);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(r, &der);
    unsigned char *copy = malloc((size_t)n);

    memcpy(copy, der, (size_t)n);
    *len = (size_t)n;
    OPENSSL_free(der);
    X509_REQ_free(r);
    return copy;
}

X509 *pki_leaf(struct pki *p, const struct clc_signer *key, const char *cn, int64_t nb, int64_t na)
{
    static const char *const sans[] = {"DNS:www.example.test", NULL};
    struct clc_x509_spec s = {
        .subject_cn = cn, .sans = sans, .not_before = nb, .not_after = na, .server_auth = 1};
    X509 *x = NULL;

    if (clc_x509_make(&s, key, p->inter, p->inter_key, &x, NULL) != CLC_OK)
        return NULL;
    return x;
}

unsigned char *pki_p7(X509 *const *certs, size_t n, size_t *len)
{
    PKCS7 *p7 = PKCS7_new();
    unsigned char *der = NULL;
    unsigned char *copy = NULL;
    int l = 0;

    PKCS7_set_type(p7, NID_pkcs7_signed);
    PKCS7_content_new(p7, NID_pkcs7_data);
    for (size_t i = 0; i < n; i++)
        PKCS7_add_certificate(p7, certs[i]);
    l = i2d_PKCS7(p7, &der);
    copy = malloc((size_t)l);
    memcpy(copy, der, (size_t)l);
    *len = (size_t)l;
    OPENSSL_free(der);
    PKCS7_free(p7);
    return copy;
}

char *pki_pem(X509 *const *certs, size_t n)
{
    BIO *b = BIO_new(BIO_s_mem());
    BUF_MEM *bm = NULL;
    char *s = NULL;

    for (size_t i = 0; i < n; i++)
        PEM_write_bio_X509(b, certs[i]);
    BIO_get_mem_ptr(b, &bm);
    s = mem_text(bm->data, bm->length);
    BIO_free(b);
    return s;
}

int pki_write(const char *path, const void *data, size_t len, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ssize_t w = 0;

    if (fd < 0)
        return -1;
    w = write(fd, data, len);
    close(fd);
    return w == (ssize_t)len ? 0 : -1;
}
