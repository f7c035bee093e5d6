/* A stand-in CA tool for the command CA client tests. Called as
 *   ca_cmd_helper MODE DIR OP [ARG]
 * where DIR holds inter.pem/inter.key (the issuing CA) and password.txt, and
 * OP/ARG are what certlc appends ("submit" TEMPLATE, "fetch" ID). MODE picks
 * the behaviour: issue, other-key, pending, pending-deny, deny, hang, garbage,
 * tempfail, fail, checkpw, bigout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

extern char **environ;

static char *read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t got;

    while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 >= cap)
            b = realloc(b, cap *= 2);
    }
    b[n] = '\0';
    *len = n;
    return b;
}

static char *path_in(const char *dir, const char *name)
{
    static char buf[4][1024];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 1024, "%s/%s", dir, name);
    return p;
}

/* Issues a leaf for pub from the issuing CA in dir; prints the issuing CA
 * first and the leaf second (the client must order them). */
static int issue(const char *dir, EVP_PKEY *pub, X509_NAME *subj)
{
    FILE *f = fopen(path_in(dir, "inter.pem"), "r");
    X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    f = fopen(path_in(dir, "inter.key"), "r");
    EVP_PKEY *cakey = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    if (!ca || !cakey) {
        fprintf(stderr, "helper: cannot load the issuing CA from %s\n", dir);
        return 1;
    }
    X509 *x = X509_new();
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    BN_free(bn);
    X509_set_version(x, 2);
    X509_set_subject_name(x, subj);
    X509_set_issuer_name(x, X509_get_subject_name(ca));
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 30);
    X509_set_pubkey(x, pub);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    X509_EXTENSION *e =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "DNS:cmd.example.test");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    e = X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    if (e) {
        X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
    }
    X509_sign(x, cakey, EVP_sha256());
    PEM_write_X509(stdout, ca);
    PEM_write_X509(stdout, x);
    X509_free(x);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    return 0;
}

static int issue_for_csr(const char *dir, const char *csr_pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(csr_pem, (int)len);
    X509_REQ *r = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
    int rc = 1;

    BIO_free(b);
    if (!r) {
        fprintf(stderr, "helper: no CSR on stdin\n");
        return 1;
    }
    rc = issue(dir, X509_REQ_get0_pubkey(r), X509_REQ_get_subject_name(r));
    X509_REQ_free(r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ca_cmd_helper MODE DIR OP [ARG]\n");
        return 64;
    }
    const char *mode = argv[1], *dir = argv[2], *op = argv[3];
    const char *arg = argc > 4 ? argv[4] : "";
    size_t len = 0;
    char *csr = read_all(stdin, &len);
    int rc = 1;

    if (strcmp(mode, "issue") == 0) {
        rc = issue_for_csr(dir, csr, len);
    } else if (strcmp(mode, "other-key") == 0) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509_NAME *n = X509_NAME_new();
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"other", -1, -1,
                                   0);
        rc = issue(dir, k, n);
        X509_NAME_free(n);
        EVP_PKEY_free(k);
    } else if (strcmp(mode, "pending") == 0 || strcmp(mode, "pending-deny") == 0) {
        if (strcmp(op, "submit") == 0) {
            printf("REQ-17\nretry-after: 60\n");
            rc = 3;
        } else if (strcmp(op, "fetch") == 0 && strcmp(arg, "REQ-17") == 0) {
            if (strcmp(mode, "pending-deny") == 0) {
                printf("denied by the CA officer\n");
                rc = 2;
            } else {
                rc = issue_for_csr(dir, csr, len);
            }
        } else {
            fprintf(stderr, "helper: unknown request %s\n", arg);
            rc = 1;
        }
    } else if (strcmp(mode, "deny") == 0) {
        printf("key too small: 1024 < 2048\n");
        fprintf(stderr, "helper: denying\n");
        rc = 2;
    } else if (strcmp(mode, "hang") == 0) {
        pid_t g = fork();
        if (g == 0) {
            sleep(60);
            _exit(0);
        }
        FILE *f = fopen(path_in(dir, "grandchild.pid"), "w");
        if (f) {
            fprintf(f, "%d\n", (int)g);
            fclose(f);
        }
        signal(SIGTERM, SIG_IGN); /* only SIGKILL ends it */
        sleep(60);
        rc = 0;
    } else if (strcmp(mode, "garbage") == 0) {
        printf("hello, this is not a certificate\n");
        rc = 0;
    } else if (strcmp(mode, "tempfail") == 0) {
        fprintf(stderr, "CA busy, try later\n");
        rc = 75;
    } else if (strcmp(mode, "fail") == 0) {
        fprintf(stderr, "boom\n");
        rc = 9;
    } else if (strcmp(mode, "checkpw") == 0) {
        FILE *pf = fdopen(3, "r");
        FILE *ef = fopen(path_in(dir, "password.txt"), "r");
        size_t pl = 0, el = 0;
        char *pw = pf ? read_all(pf, &pl) : NULL;
        char *want = ef ? read_all(ef, &el) : NULL;
        const char *fdv = getenv("CERTLC_PASSWORD_FD");
        rc = 0;
        if (!pw || !want || strcmp(pw, want) != 0) {
            fprintf(stderr, "helper: fd 3 does not hold the password\n");
            rc = 1;
        }
        for (char **e = environ; rc == 0 && *e; e++)
            if (want && *want && strstr(*e, want)) {
                fprintf(stderr, "helper: the password is in my environment\n");
                rc = 1;
            }
        if (rc == 0 && (!fdv || strcmp(fdv, "3") != 0)) {
            fprintf(stderr, "helper: CERTLC_PASSWORD_FD is not 3\n");
            rc = 1;
        }
        if (rc == 0 && getenv("CA_TEST_UNLISTED")) {
            fprintf(stderr, "helper: an unlisted variable reached me\n");
            rc = 1;
        }
        if (rc == 0 && (!getenv("CA_TEST_LISTED") || !getenv("CERTLC_CA_TEMPLATE"))) {
            fprintf(stderr, "helper: pass_env or CERTLC_CA_TEMPLATE missing\n");
            rc = 1;
        }
        if (rc == 0)
            rc = issue_for_csr(dir, csr, len);
        free(pw);
        free(want);
        if (pf)
            fclose(pf);
        if (ef)
            fclose(ef);
    } else if (strcmp(mode, "bigout") == 0) {
        for (int i = 0; i < 2 * 1024; i++)
            for (int j = 0; j < 1024; j++)
                putchar('A');
        rc = 0;
    } else {
        fprintf(stderr, "helper: unknown mode %s\n", mode);
        rc = 64;
    }
    free(csr);
    fflush(stdout);
    return rc;
}
