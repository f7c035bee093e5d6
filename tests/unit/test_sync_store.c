/* certlc sync's material and store: reading PKCS#12 and PEM secrets (and
 * refusing bad ones), installing versions with the right modes and owners,
 * the symlink switch, pruning, the unsafe stores refused, the reload runner,
 * and crash safety: a child is killed at every step of an install and the
 * served files must be a complete old or complete new set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "core/b64.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "pipeline/sync_int.h"

static char root[] = "/tmp/certlc-test-sync-store.XXXXXX";
static struct clc_signer *ca_key;
static X509 *ca;

struct issued {
    struct clc_signer *key;
    X509 *leaf;
};

static struct issued issue(const char *cn)
{
    struct issued r = {0};
    int64_t now = clc_clock_now(NULL);
    struct clc_x509_spec sp = {
        .subject_cn = cn, .not_before = now - 60, .not_after = now + 86400, .server_auth = 1};
    assert_int_equal(clc_signer_generate("EC", 256, &r.key, NULL), CLC_OK);
    assert_int_equal(clc_x509_make(&sp, r.key, ca, ca_key, &r.leaf, NULL), CLC_OK);
    return r;
}

static void issued_free(struct issued *r)
{
    clc_signer_free(r->key);
    X509_free(r->leaf);
}

static struct clc_secret *bio_secret(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    struct clc_secret *s = NULL;
    assert_int_equal(clc_secret_new(p, (size_t)n, &s), CLC_OK);
    return s;
}

/* Key Vault's PEM secret: PKCS#8 key, then leaf and CA. key NULL = none. */
static struct clc_secret *pem_secret(const struct issued *r, EVP_PKEY *key, int with_ca)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (key)
        assert_true(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL));
    assert_true(PEM_write_bio_X509(b, r->leaf));
    if (with_ca)
        assert_true(PEM_write_bio_X509(b, ca));
    struct clc_secret *s = bio_secret(b);
    BIO_free(b);
    return s;
}

/* Key Vault's PKCS#12 secret: base64 of a PFX with an empty password. */
static struct clc_secret *p12_secret(const struct issued *r, const char *pw, int with_key)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    sk_X509_push(cas, ca);
    PKCS12 *p = PKCS12_create(pw, NULL, with_key ? clc_signer_pkey(r->key) : NULL, r->leaf, cas, 0,
                              0, 0, 0, 0);
    assert_non_null(p);
    unsigned char *der = NULL;
    int n = i2d_PKCS12(p, &der);
    char *b64 = NULL;
    assert_int_equal(clc_b64_encode(der, (size_t)n, &b64, NULL), CLC_OK);
    struct clc_secret *s = NULL;
    assert_int_equal(clc_secret_new(b64, strlen(b64), &s), CLC_OK);
    free(b64);
    OPENSSL_free(der);
    PKCS12_free(p);
    sk_X509_free(cas);
    return s;
}

static int setup(void **state)
{
    (void)state;
    int64_t now = clc_clock_now(NULL);
    struct clc_x509_spec sp = {.subject_cn = "certlc sync test CA",
                               .not_before = now - 60,
                               .not_after = now + 86400 * 10,
                               .is_ca = 1};
    if (!mkdtemp(root) || clc_signer_generate("EC", 256, &ca_key, NULL) != CLC_OK ||
        clc_x509_make(&sp, ca_key, NULL, ca_key, &ca, NULL) != CLC_OK)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    clc_signer_free(ca_key);
    X509_free(ca);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_material_pkcs12_and_pem(void **state)
{
    (void)state;
    struct issued r = issue("web.contoso.com");
    struct clc_sync_material m;
    struct clc_errinfo ei;
    unsigned char md[64];
    size_t mdlen;
    char want[65];
    assert_int_equal(clc_x509_digest(r.leaf, "SHA256", md, &mdlen), CLC_OK);
    for (size_t i = 0; i < 32; i++)
        snprintf(want + 2 * i, 3, "%02X", md[i]);

    struct clc_secret *p12 = p12_secret(&r, "", 1);
    assert_int_equal(clc_sync_material_parse("application/x-pkcs12", p12, &m, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(m.chain), 2);
    assert_int_equal(X509_cmp(sk_X509_value(m.chain, 0), r.leaf), 0);
    assert_string_equal(m.sha256_hex, want);
    clc_sync_material_cleanup(&m);
    /* Without a content type it is sniffed. */
    assert_int_equal(clc_sync_material_parse(NULL, p12, &m, &ei), CLC_OK);
    clc_sync_material_cleanup(&m);
    clc_secret_free(p12);

    struct clc_secret *pem = pem_secret(&r, clc_signer_pkey(r.key), 1);
    assert_int_equal(clc_sync_material_parse("application/x-pem-file", pem, &m, &ei), CLC_OK);
    assert_int_equal(sk_X509_num(m.chain), 2);
    assert_string_equal(m.sha256_hex, want);
    clc_sync_material_cleanup(&m);
    /* base64 of the PEM text, as older SDKs stored it. */
    char *b64 = NULL;
    struct clc_secret *pem64 = NULL;
    assert_int_equal(clc_b64_encode(clc_secret_reveal(pem), clc_secret_len(pem), &b64, NULL),
                     CLC_OK);
    assert_int_equal(clc_secret_new(b64, strlen(b64), &pem64), CLC_OK);
    assert_int_equal(clc_sync_material_parse("application/x-pem-file", pem64, &m, &ei), CLC_OK);
    clc_sync_material_cleanup(&m);
    free(b64);
    clc_secret_free(pem64);
    clc_secret_free(pem);
    issued_free(&r);
}

static void expect_refused(const char *ct, struct clc_secret *s, enum clc_err want, const char *msg)
{
    struct clc_sync_material m;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_sync_material_parse(ct, s, &m, &ei), want);
    if (!strstr(ei.msg, msg))
        fail_msg("message '%s' lacks '%s'", ei.msg, msg);
    assert_null(m.key);
    assert_null(m.chain);
    clc_secret_free(s);
}

static void test_material_refused(void **state)
{
    (void)state;
    struct issued r = issue("web.contoso.com"), other = issue("other.contoso.com");
    struct clc_secret *s = NULL;

    /* A key that is not the certificate's. */
    expect_refused("application/x-pem-file", pem_secret(&r, clc_signer_pkey(other.key), 1),
                   CLC_ERR_INVALID, "does not match");
    /* No key, two keys, garbage, a password, a PFX without a key. */
    expect_refused("application/x-pem-file", pem_secret(&r, NULL, 1), CLC_ERR_PARSE,
                   "0 private keys");
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, clc_signer_pkey(r.key), NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_PrivateKey(b, clc_signer_pkey(other.key), NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_X509(b, r.leaf);
    expect_refused("application/x-pem-file", bio_secret(b), CLC_ERR_PARSE, "2 private keys");
    BIO_free(b);
    assert_int_equal(clc_secret_new("not a secret at all!", 20, &s), CLC_OK);
    expect_refused("application/x-pkcs12", s, CLC_ERR_PARSE, "neither PEM nor base64");
    assert_int_equal(clc_secret_new("aGVsbG8gd29ybGQ=", 16, &s), CLC_OK);
    expect_refused("application/x-pkcs12", s, CLC_ERR_PARSE, "not a PKCS#12");
    expect_refused("application/x-pkcs12", p12_secret(&r, "s3cret", 1), CLC_ERR_PARSE, "password");
    expect_refused("application/x-pkcs12", p12_secret(&r, "", 0), CLC_ERR_PARSE, "no private key");
    assert_int_equal(clc_secret_new("", 0, &s), CLC_OK);
    expect_refused(NULL, s, CLC_ERR_PARSE, "empty");
    issued_free(&r);
    issued_free(&other);
}

/* ---- store */

static void material_of(const struct issued *r, struct clc_sync_material *m)
{
    struct clc_secret *s = pem_secret(r, clc_signer_pkey(r->key), 1);
    assert_int_equal(clc_sync_material_parse("application/x-pem-file", s, m, NULL), CLC_OK);
    clc_secret_free(s);
}

static void store_path(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", root, name);
}

static struct clc_sync_store *open_store(const char *path, int group)
{
    struct clc_sync_store *st = NULL;
    struct clc_errinfo ei;
    struct clc_sync_store_opts o = {.path = path,
                                    .dir_mode = group ? 0750 : 0700,
                                    .key_mode = group ? 0640 : 0600,
                                    .cert_mode = 0644,
                                    .has_group = group,
                                    .group = 12345};
    clc_errinfo_clear(&ei);
    if (clc_sync_store_open(&o, &st, &ei) != CLC_OK)
        fail_msg("open %s: %s", path, ei.msg);
    return st;
}

static void install(struct clc_sync_store *st, const struct clc_sync_output *out,
                    const char *version, const struct clc_sync_material *m, int keep)
{
    struct clc_errinfo ei;
    struct clc_sync_install in = {.link = "kv.web",
                                  .prefix = "kv.web",
                                  .version = version,
                                  .out = out,
                                  .m = m,
                                  .mark_reload = 1,
                                  .keep = keep};
    clc_errinfo_clear(&ei);
    if (clc_sync_store_install(st, &in, &ei) != CLC_OK)
        fail_msg("install %s: %s", version, ei.msg);
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(lstat(path, &sb), 0);
    return sb.st_mode & 07777;
}

static int exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static const char *V1 = "0123456789abcdef0123456789abcdef";
static const char *V2 = "fedcba9876543210fedcba9876543210";
static const char *V3 = "00000000000000000000000000000003";

static void test_store_extension_layout(void **state)
{
    (void)state;
    char dir[300], p[600], target[300];
    struct issued r1 = issue("v1"), r2 = issue("v2"), r3 = issue("v3");
    struct clc_sync_material m1, m2, m3;
    struct clc_sync_output out = {.layout = CLC_SYNC_LAYOUT_EXTENSION};
    struct clc_sync_installed in;
    material_of(&r1, &m1);
    material_of(&r2, &m2);
    material_of(&r3, &m3);
    store_path(dir, sizeof dir, "parent/ext");
    struct clc_sync_store *st = open_store(dir, 0);
    assert_int_equal(mode_of(dir), 0700);

    assert_int_equal(clc_sync_store_installed(st, "kv.web", "kv.web", out.layout, &in, NULL),
                     CLC_OK);
    assert_string_equal(in.version, "");
    install(st, &out, V1, &m1, 2);
    snprintf(p, sizeof p, "%s/kv.web.%s", dir, V1);
    assert_int_equal(mode_of(p), 0600);
    snprintf(p, sizeof p, "%s/kv.web", dir);
    ssize_t n = readlink(p, target, sizeof target - 1);
    assert_true(n > 0);
    target[n] = '\0';
    char want[100];
    snprintf(want, sizeof want, "kv.web.%s", V1);
    assert_string_equal(target, want);
    assert_int_equal(clc_sync_store_installed(st, "kv.web", "kv.web", out.layout, &in, NULL),
                     CLC_OK);
    assert_string_equal(in.version, V1);
    /* The single file: leaf, chain, then the key, and they match. */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(clc_file_read(p, 1 << 20, &text, &len, NULL), CLC_OK);
    char *c1 = strstr(text, "BEGIN CERTIFICATE"), *k = strstr(text, "BEGIN PRIVATE KEY");
    assert_non_null(c1);
    assert_non_null(strstr(c1 + 1, "BEGIN CERTIFICATE"));
    assert_true(k > strstr(c1 + 1, "BEGIN CERTIFICATE"));
    struct clc_secret *sec = NULL;
    struct clc_sync_material back;
    assert_int_equal(clc_secret_new(text, len, &sec), CLC_OK);
    assert_int_equal(clc_sync_material_parse(NULL, sec, &back, NULL), CLC_OK);
    assert_string_equal(back.sha256_hex, m1.sha256_hex);
    clc_sync_material_cleanup(&back);
    clc_secret_free(sec);
    free(text);
    char sha[65];
    assert_int_equal(clc_sync_store_installed_sha256(st, &in, out.layout, &out.files, sha, NULL),
                     CLC_OK);
    assert_string_equal(sha, m1.sha256_hex);
    assert_true(clc_sync_store_reload_pending(st, "kv.web"));
    assert_int_equal(clc_sync_store_reload_done(st, "kv.web", NULL), CLC_OK);
    assert_false(clc_sync_store_reload_pending(st, "kv.web"));

    /* Renewals: the link follows, keep = 2 prunes the oldest. */
    install(st, &out, V2, &m2, 2);
    assert_int_equal(clc_sync_store_installed(st, "kv.web", "kv.web", out.layout, &in, NULL),
                     CLC_OK);
    assert_string_equal(in.version, V2);
    snprintf(p, sizeof p, "%s/kv.web.%s", dir, V1);
    assert_true(exists(p));
    install(st, &out, V3, &m3, 2);
    assert_false(exists(p));
    snprintf(p, sizeof p, "%s/kv.web.%s", dir, V2);
    assert_true(exists(p));
    /* With PKCS#12: <entry>.pfx and <link>.pfx too. */
    out.pkcs12 = 1;
    install(st, &out, V1, &m1, 2);
    snprintf(p, sizeof p, "%s/kv.web.pfx", dir);
    assert_true(exists(p));
    snprintf(p, sizeof p, "%s/kv.web.%s.pfx", dir, V1);
    assert_int_equal(mode_of(p), 0600);
    clc_sync_store_close(st);
    clc_sync_material_cleanup(&m1);
    clc_sync_material_cleanup(&m2);
    clc_sync_material_cleanup(&m3);
    issued_free(&r1);
    issued_free(&r2);
    issued_free(&r3);
}

static void test_store_separate_layout_group(void **state)
{
    (void)state;
    char dir[300], p[600];
    struct issued r1 = issue("v1");
    struct clc_sync_material m1;
    struct clc_sync_output out = {.layout = CLC_SYNC_LAYOUT_SEPARATE, .pkcs12 = 1};
    snprintf(out.files.cert, sizeof out.files.cert, "cert.pem");
    snprintf(out.files.chain, sizeof out.files.chain, "chain.pem");
    snprintf(out.files.key, sizeof out.files.key, "key.pem");
    snprintf(out.files.pkcs12, sizeof out.files.pkcs12, "cert.pfx");
    material_of(&r1, &m1);
    store_path(dir, sizeof dir, "sep");
    struct clc_sync_store *st = open_store(dir, 1);
    install(st, &out, V1, &m1, 3);
    struct stat sb;
    assert_int_equal(stat(dir, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0750);
    assert_int_equal(sb.st_gid, 12345);
    snprintf(p, sizeof p, "%s/kv.web/key.pem", dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);
    assert_int_equal(sb.st_gid, 12345);
    snprintf(p, sizeof p, "%s/kv.web/cert.pem", dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0644);
    snprintf(p, sizeof p, "%s/kv.web/cert.pfx", dir);
    assert_int_equal(stat(p, &sb), 0);
    assert_int_equal(sb.st_mode & 07777, 0640);
    snprintf(p, sizeof p, "%s/kv.web/fullchain.pem", dir);
    assert_false(exists(p)); /* not configured */
    snprintf(p, sizeof p, "%s/kv.web/chain.pem", dir);
    char *text = NULL;
    assert_int_equal(clc_file_read(p, 1 << 20, &text, NULL, NULL), CLC_OK);
    assert_non_null(strstr(text, "BEGIN CERTIFICATE"));
    assert_null(strstr(strstr(text, "BEGIN CERTIFICATE") + 1, "BEGIN CERTIFICATE"));
    free(text);
    struct clc_sync_installed in;
    char sha[65];
    assert_int_equal(clc_sync_store_installed(st, "kv.web", "kv.web", out.layout, &in, NULL),
                     CLC_OK);
    assert_string_equal(in.version, V1);
    assert_int_equal(clc_sync_store_installed_sha256(st, &in, out.layout, &out.files, sha, NULL),
                     CLC_OK);
    assert_string_equal(sha, m1.sha256_hex);
    clc_sync_store_close(st);
    clc_sync_material_cleanup(&m1);
    issued_free(&r1);
}

static void expect_open_refused(const char *path, const char *msg)
{
    struct clc_sync_store *st = NULL;
    struct clc_errinfo ei;
    struct clc_sync_store_opts o = {
        .path = path, .dir_mode = 0700, .key_mode = 0600, .cert_mode = 0644};
    clc_errinfo_clear(&ei);
    assert_int_equal(clc_sync_store_open(&o, &st, &ei), CLC_ERR_INVALID);
    assert_null(st);
    if (!strstr(ei.msg, msg))
        fail_msg("message '%s' lacks '%s'", ei.msg, msg);
}

static void test_store_refusals(void **state)
{
    (void)state;
    char real[300], link[300], ww[300], foreign[300], file[300], p[600];
    store_path(real, sizeof real, "real");
    store_path(link, sizeof link, "linked");
    store_path(ww, sizeof ww, "world");
    store_path(foreign, sizeof foreign, "foreign");
    store_path(file, sizeof file, "plainfile");
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, link), 0);
    expect_open_refused(link, "is a symbolic link");
    assert_int_equal(mkdir(ww, 0700), 0);
    assert_int_equal(chmod(ww, 0777), 0);
    expect_open_refused(ww, "world-writable");
    assert_int_equal(mkdir(foreign, 0700), 0);
    assert_int_equal(chown(foreign, 12345, 12345), 0);
    expect_open_refused(foreign, "belongs to uid 12345");
    assert_int_equal(clc_file_write_atomic(file, "x", 1, 0600, NULL), CLC_OK);
    expect_open_refused(file, "not a directory");

    /* A link name held by a regular file is not ours to replace. */
    struct clc_sync_store *st = open_store(real, 0);
    struct clc_sync_installed in;
    struct clc_errinfo ei;
    snprintf(p, sizeof p, "%s/kv.web", real);
    assert_int_equal(clc_file_write_atomic(p, "mine", 4, 0600, NULL), CLC_OK);
    assert_int_equal(
        clc_sync_store_installed(st, "kv.web", "kv.web", CLC_SYNC_LAYOUT_EXTENSION, &in, &ei),
        CLC_ERR_INVALID);
    assert_non_null(strstr(ei.msg, "not a symbolic link"));
    /* A version that is not a plain name is refused before any write. */
    struct issued r = issue("x");
    struct clc_sync_material m;
    struct clc_sync_output out = {.layout = CLC_SYNC_LAYOUT_EXTENSION};
    material_of(&r, &m);
    struct clc_sync_install bad = {.link = "kv.other",
                                   .prefix = "kv.other",
                                   .version = "../x",
                                   .out = &out,
                                   .m = &m,
                                   .keep = 2};
    assert_int_equal(clc_sync_store_install(st, &bad, &ei), CLC_ERR_INVALID);
    clc_sync_store_close(st);
    clc_sync_material_cleanup(&m);
    issued_free(&r);
}

/* ---- crash safety */

static const char *kill_at;

static void kill_hook(const char *name)
{
    if (kill_at && !strcmp(name, kill_at))
        raise(SIGKILL);
}

/* The served set through the link: complete and matching; returns the
 * thumbprint of what is served. */
static void served(const char *dir, int separate, char sha[65])
{
    char p[600], *cert = NULL, *key = NULL;
    size_t cl = 0, kl = 0;
    struct clc_secret *s = NULL;
    struct clc_sync_material m;
    struct clc_errinfo ei;
    clc_errinfo_clear(&ei);
    snprintf(p, sizeof p, separate ? "%s/kv.web/cert.pem" : "%s/kv.web", dir);
    assert_int_equal(clc_file_read(p, 1 << 20, &cert, &cl, NULL), CLC_OK);
    if (separate) {
        snprintf(p, sizeof p, "%s/kv.web/key.pem", dir);
        assert_int_equal(clc_file_read(p, 1 << 20, &key, &kl, NULL), CLC_OK);
        char *both = malloc(cl + kl + 1);
        memcpy(both, key, kl);
        memcpy(both + kl, cert, cl + 1);
        assert_int_equal(clc_secret_new(both, cl + kl, &s), CLC_OK);
        free(both);
    } else {
        assert_int_equal(clc_secret_new(cert, cl, &s), CLC_OK);
    }
    if (clc_sync_material_parse("application/x-pem-file", s, &m, &ei) != CLC_OK)
        fail_msg("served set is not complete: %s", ei.msg);
    snprintf(sha, 65, "%s", m.sha256_hex);
    clc_sync_material_cleanup(&m);
    clc_secret_free(s);
    free(cert);
    free(key);
}

static void crash_at_each_step(int separate)
{
    static const char *steps[] = {"temp_written", "entry_renamed", "marker_written",
                                  "link_temp",    "link_switched", "pruned"};
    struct issued r1 = issue("old"), r2 = issue("new");
    struct clc_sync_material m1, m2;
    struct clc_sync_output out = {.layout = separate ? CLC_SYNC_LAYOUT_SEPARATE
                                                     : CLC_SYNC_LAYOUT_EXTENSION};
    snprintf(out.files.cert, sizeof out.files.cert, "cert.pem");
    snprintf(out.files.fullchain, sizeof out.files.fullchain, "fullchain.pem");
    snprintf(out.files.key, sizeof out.files.key, "key.pem");
    material_of(&r1, &m1);
    material_of(&r2, &m2);
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        char dir[300], name[64], sha[65];
        snprintf(name, sizeof name, "crash-%d-%zu", separate, i);
        store_path(dir, sizeof dir, name);
        struct clc_sync_store *st = open_store(dir, 0);
        install(st, &out, V1, &m1, 1);
        clc_sync_store_close(st);

        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            kill_at = steps[i];
            clc_sync_store_hook = kill_hook;
            struct clc_sync_store *cst = NULL;
            struct clc_sync_store_opts o = {
                .path = dir, .dir_mode = 0700, .key_mode = 0600, .cert_mode = 0644};
            struct clc_sync_install in = {.link = "kv.web",
                                          .prefix = "kv.web",
                                          .version = V2,
                                          .out = &out,
                                          .m = &m2,
                                          .mark_reload = 1,
                                          .keep = 1};
            if (clc_sync_store_open(&o, &cst, NULL) != CLC_OK ||
                clc_sync_store_install(cst, &in, NULL) != CLC_OK)
                _exit(3);
            _exit(0); /* the hook did not fire: a test bug */
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("step %s: child was not killed there (status %d)", steps[i], status);
        served(dir, separate, sha);
        int switched = i >= 4;
        assert_string_equal(sha, switched ? m2.sha256_hex : m1.sha256_hex);

        /* Recovery: a rerun installs the new version and clears leftovers;
         * the reload marker survives a crash after it was written. */
        st = open_store(dir, 0);
        struct clc_sync_installed inst;
        assert_int_equal(clc_sync_store_installed(st, "kv.web", "kv.web", out.layout, &inst, NULL),
                         CLC_OK);
        if (i >= 2)
            assert_true(clc_sync_store_reload_pending(st, "kv.web"));
        if (strcmp(inst.version, V2) != 0)
            install(st, &out, V2, &m2, 1);
        else
            install(st, &out, V3, &m2, 1); /* prune runs; leftovers go */
        clc_sync_store_close(st);
        served(dir, separate, sha);
        assert_string_equal(sha, m2.sha256_hex);
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls -A '%s' | grep -c tmp", dir);
        FILE *f = popen(cmd, "r");
        int leftovers = -1;
        assert_int_equal(fscanf(f, "%d", &leftovers), 1);
        pclose(f);
        assert_int_equal(leftovers, 0);
    }
    clc_sync_material_cleanup(&m1);
    clc_sync_material_cleanup(&m2);
    issued_free(&r1);
    issued_free(&r2);
}

static void test_crash_extension(void **state)
{
    (void)state;
    crash_at_each_step(0);
}

static void test_crash_separate(void **state)
{
    (void)state;
    crash_at_each_step(1);
}

/* ---- reload runner */

static void test_reload_runner(void **state)
{
    (void)state;
    struct clc_errinfo ei;
    char *ok[] = {"/bin/true", NULL};
    char *fails[] = {"/bin/sh", "-c", "exit 3", NULL};
    char *slow[] = {"/bin/sleep", "10", NULL};
    char *missing[] = {"/nonexistent/reload", NULL};
    /* Our environment (which may hold credentials) does not reach it. */
    char *env[] = {"/bin/sh", "-c", "test -z \"$CERTLC_TEST_SECRET\" && test -n \"$PATH\"", NULL};
    setenv("CERTLC_TEST_SECRET", "hunter2", 1);
    assert_int_equal(clc_sync_run(ok, 5, &ei), CLC_OK);
    assert_int_equal(clc_sync_run(env, 5, &ei), CLC_OK);
    assert_int_equal(clc_sync_run(fails, 5, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, "exit status 3"));
    int64_t t0 = clc_mono_ms();
    assert_int_equal(clc_sync_run(slow, 1, &ei), CLC_ERR_TIMEOUT);
    assert_true(clc_mono_ms() - t0 < 5000);
    assert_non_null(strstr(ei.msg, "killed after 1 s"));
    assert_int_equal(clc_sync_run(missing, 5, &ei), CLC_ERR_IO);
    assert_non_null(strstr(ei.msg, "127"));
    unsetenv("CERTLC_TEST_SECRET");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_material_pkcs12_and_pem),
        cmocka_unit_test(test_material_refused),
        cmocka_unit_test(test_store_extension_layout),
        cmocka_unit_test(test_store_separate_layout_group),
        cmocka_unit_test(test_store_refusals),
        cmocka_unit_test(test_crash_extension),
        cmocka_unit_test(test_crash_separate),
        cmocka_unit_test(test_reload_runner),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
