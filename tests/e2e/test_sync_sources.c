/* certlc sync through the binary against the emulator, from the source's
 * side: every way the extension authenticates besides IMDS (Azure Arc's
 * challenge flow, a service principal by client secret, workload identity),
 * each as the least-privileged `sync` identity and each with its refusal;
 * and observed secrets that are plain secrets holding no usable certificate
 * (garbage, a certificate without its key, a key that is not the
 * certificate's): each a clear error naming it, the rest still synced, the
 * installed files untouched. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/file.h"
#include "sync_fixture.h"

/* Entries of store whose names contain part (0 when the store is absent). */
static int entries(const char *store, const char *part)
{
    DIR *d = opendir(store);
    struct dirent *de;
    int n = 0;
    if (!d)
        return 0;
    while ((de = readdir(d)) != NULL)
        if (strstr(de->d_name, part))
            n++;
    closedir(d);
    return n;
}

static void expect_installed(const char *store, const char *name, const char *version)
{
    char link[100], want[200], target[300];
    snprintf(link, sizeof link, "certlc.%s", name);
    snprintf(want, sizeof want, "certlc.%s.%s", name, version);
    sfx_link(store, link, target, sizeof target);
    if (strcmp(target, want) != 0)
        fail_msg("%s/%s -> '%s', expected %s; certlc said:\n%s", store, link, target, want,
                 sfx_R.err);
}

static void expect_nothing_written(const char *store)
{
    if (entries(store, "certlc.") != 0)
        fail_msg("%s has files:\n%s", store, sfx_R.err);
}

/* ---- identities ---- */

static void test_arc(void **state)
{
    (void)state;
    char store[400], bad_store[400], arc[300], other[400], auth[900], version[64];
    snprintf(store, sizeof store, "%s/store-arc", sfx_dir);
    snprintf(bad_store, sizeof bad_store, "%s/store-arc-bad", sfx_dir);
    snprintf(arc, sizeof arc, "%s/metadata/identity", sfx_ep("services", "arc", NULL));
    /* HIMDS is not on localhost:40342 here, so the method is named. Arc
     * machines have only their system-assigned identity: no msiClientId. */
    struct sfx_opts o = {.store = bad_store,
                         .msi_endpoint = arc,
                         .no_client_id = 1,
                         .extra_own = ", \"authMethod\": \"arc\""};

    /* The challenge names a key file outside the configured directory: the
     * file is not read, nothing is fetched or written. */
    snprintf(other, sizeof other, "%s/other-keys", sfx_dir);
    assert_int_equal(mkdir(other, 0700), 0);
    snprintf(auth, sizeof auth, ", \"auth\": {\"arc_key_dir\": \"%s\"}", other);
    assert_int_equal(sfx_sync_cfg(sfx_config("arc-other", auth), sfx_settings("arc-bad", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "method=arc"));
    assert_non_null(strstr(sfx_R.err, "is not a file in"));
    assert_non_null(strstr(sfx_R.err, "sync.failed"));
    expect_nothing_written(bad_store);

    snprintf(auth, sizeof auth, ", \"auth\": {\"arc_key_dir\": \"%s\"}", sfx_arc_keys);
    o.store = store;
    sfx_reset_counter();
    int keys = entries(sfx_arc_keys, ".key"); /* the refused run's is still there */
    assert_int_equal(sfx_sync_cfg(sfx_config("arc", auth), sfx_settings("arc", &o)), 0);
    assert_non_null(strstr(sfx_R.err, "method=arc"));
    sfx_version("web", version, sizeof version);
    expect_installed(store, "web", version);
    assert_int_equal(sfx_reloads(), 1);
    /* The one-time key file of this run was consumed. */
    assert_int_equal(entries(sfx_arc_keys, ".key"), keys);
}

static void test_service_principal(void **state)
{
    (void)state;
    char store[400], bad_store[400], secret_file[400], auth[1500], version[64];
    const char *secret = sfx_ep("identities", "sync", "client_secret");
    snprintf(store, sizeof store, "%s/store-sp", sfx_dir);
    snprintf(bad_store, sizeof bad_store, "%s/store-sp-bad", sfx_dir);
    snprintf(secret_file, sizeof secret_file, "%s/sync-client-secret", sfx_dir);
    snprintf(auth, sizeof auth,
             ", \"auth\": {\"method\": \"client_secret\", \"authority_host\": \"%s\","
             " \"tenant_id\": \"%s\", \"client_id\": \"%s\", \"client_secret_file\": \"%s\"}",
             sfx_ep("services", "entra", NULL), sfx_ep("tenant", NULL, NULL),
             sfx_ep("identities", "sync", "client_id"), secret_file);
    const char *cfg = sfx_config("sp", auth);
    /* authenticationSettings name `reader`, which would be refused (403):
     * the configuration's auth.method wins over them. */
    struct sfx_opts o = {.store = bad_store, .identity = "reader"};

    const char *wrong = "not-the-secret-0123456789abcdef\n";
    assert_int_equal(clc_file_write_atomic(secret_file, wrong, strlen(wrong), 0600, NULL), CLC_OK);
    assert_int_equal(sfx_sync_cfg(cfg, sfx_settings("sp-bad", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "AADSTS7000215"));
    assert_null(strstr(sfx_R.err, "not-the-secret"));
    expect_nothing_written(bad_store);

    char text[200];
    snprintf(text, sizeof text, "%s\n", secret);
    assert_int_equal(clc_file_write_atomic(secret_file, text, strlen(text), 0600, NULL), CLC_OK);
    o.store = store;
    assert_int_equal(sfx_sync_cfg(cfg, sfx_settings("sp", &o)), 0);
    assert_non_null(strstr(sfx_R.err, "sync.auth_override"));
    assert_null(strstr(sfx_R.err, secret));
    sfx_version("web", version, sizeof version);
    expect_installed(store, "web", version);
    assert_int_equal(sfx_sync_cfg(cfg, sfx_settings("sp", &o)), 2);
}

static void test_workload_identity(void **state)
{
    (void)state;
    char store[400], bad_store[400], token[400], auth[1500], version[64];
    snprintf(store, sizeof store, "%s/store-wi", sfx_dir);
    snprintf(bad_store, sizeof bad_store, "%s/store-wi-bad", sfx_dir);
    snprintf(token, sizeof token, "%s/projected-token", sfx_dir);
    snprintf(auth, sizeof auth,
             ", \"auth\": {\"method\": \"workload_identity\", \"authority_host\": \"%s\","
             " \"tenant_id\": \"%s\", \"client_id\": \"%s\", \"federated_token_file\": \"%s\"}",
             sfx_ep("services", "entra", NULL), sfx_ep("tenant", NULL, NULL),
             sfx_ep("identities", "sync", "client_id"), token);
    const char *cfg = sfx_config("wi", auth);
    struct sfx_opts o = {.store = bad_store};

    /* Another workload's token (the renewer's, with broader roles) is not
     * accepted for the sync identity. */
    sfx_write_federated("renewer", token);
    assert_int_equal(sfx_sync_cfg(cfg, sfx_settings("wi-bad", &o)), 1);
    assert_non_null(strstr(sfx_R.err, "AADSTS700213"));
    expect_nothing_written(bad_store);

    sfx_write_federated("sync", token);
    o.store = store;
    assert_int_equal(sfx_sync_cfg(cfg, sfx_settings("wi", &o)), 0);
    assert_non_null(strstr(sfx_R.err, "method=workload_identity"));
    sfx_version("web", version, sizeof version);
    expect_installed(store, "web", version);
}

/* ---- plain secrets ---- */

static EVP_PKEY *new_key(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");
    assert_non_null(k);
    return k;
}

/* PEM of a self-signed certificate for key (cert = 1) and/or of the key. */
static char *pem_of(EVP_PKEY *cert_key, EVP_PKEY *key, const char *cn)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *p = NULL, *out;
    assert_non_null(b);
    if (cert_key) {
        X509 *x = X509_new();
        assert_non_null(x);
        X509_set_version(x, 2);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), -60);
        X509_gmtime_adj(X509_getm_notAfter(x), 30L * 86400);
        X509_set_pubkey(x, cert_key);
        X509_NAME *n = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, n);
        assert_true(X509_sign(x, cert_key, EVP_sha256()) > 0);
        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        X509_free(x);
    }
    if (key)
        assert_int_equal(PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL), 1);
    long n = BIO_get_mem_data(b, &p);
    /* The BIO's data is not NUL-terminated: copied by length. */
    out = malloc((size_t)n + 1);
    assert_non_null(out);
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    BIO_free(b);
    return out;
}

#define NPLAIN 3
static const char *const plain[NPLAIN] = {"plain-garbage", "plain-certonly", "plain-mismatch"};

static void test_plain_secrets(void **state)
{
    (void)state;
    char store[400], obs[1200], p[600], entry[200], web_new[64];
    char *good[NPLAIN], *bad[NPLAIN], *value;
    struct stat before[NPLAIN], after;
    EVP_PKEY *keys[NPLAIN], *other = new_key();
    snprintf(store, sizeof store, "%s/store-plain", sfx_dir);
    int k = 0;
    for (int i = 0; i < NPLAIN; i++)
        k +=
            snprintf(obs + k, sizeof obs - (size_t)k, ", \"%s/secrets/%s\"", sfx_vault(), plain[i]);
    struct sfx_opts o = {.store = store, .extra_obs = obs};
    const char *sp = sfx_settings("plain", &o);

    /* First each holds a certificate and its key (someone imported them as
     * plain secrets): installed like any other. */
    for (int i = 0; i < NPLAIN; i++) {
        keys[i] = new_key();
        value = pem_of(keys[i], keys[i], plain[i]);
        good[i] = sfx_set_secret(plain[i], value, "application/x-pem-file");
        free(value);
    }
    assert_int_equal(sfx_sync(sp), 0);
    for (int i = 0; i < NPLAIN; i++) {
        expect_installed(store, plain[i], good[i]);
        snprintf(p, sizeof p, "%s/certlc.%s.%s", store, plain[i], good[i]);
        assert_int_equal(stat(p, &before[i]), 0);
    }

    /* Then new versions that hold no usable certificate, and a renewal. */
    sfx_renew("web", 0);
    sfx_version("web", web_new, sizeof web_new);
    bad[0] = sfx_set_secret(plain[0], "this is not a certificate", "text/plain");
    value = pem_of(keys[1], NULL, plain[1]);
    bad[1] = sfx_set_secret(plain[1], value, "application/x-pem-file");
    free(value);
    value = pem_of(keys[2], other, plain[2]);
    bad[2] = sfx_set_secret(plain[2], value, "application/x-pem-file");
    free(value);
    sfx_reset_counter();
    assert_int_equal(sfx_sync(sp), 1);

    /* Each refusal names its secret and version and says what is wrong. */
    static const char *const why[NPLAIN] = {"is neither PEM nor base64", "holds 0 private keys",
                                            "private key in the secret does not match"};
    for (int i = 0; i < NPLAIN; i++) {
        char named[300];
        snprintf(named, sizeof named, "secret certlc/%s version %s: ", plain[i], bad[i]);
        const char *at = strstr(sfx_R.err, named);
        if (!at || !strstr(at, why[i]))
            fail_msg("no '%s...%s' in:\n%s", named, why[i], sfx_R.err);
    }
    assert_non_null(strstr(sfx_R.err, "changed=1 unchanged=0 failed=3"));
    /* The others are still synced (and reloaded for). */
    expect_installed(store, "web", web_new);
    assert_int_equal(sfx_reloads(), 1);
    /* The installed files are untouched; nothing of the bad versions is left. */
    for (int i = 0; i < NPLAIN; i++) {
        expect_installed(store, plain[i], good[i]);
        snprintf(p, sizeof p, "%s/certlc.%s.%s", store, plain[i], good[i]);
        assert_int_equal(stat(p, &after), 0);
        assert_int_equal(after.st_ino, before[i].st_ino);
        assert_int_equal(after.st_mtim.tv_nsec, before[i].st_mtim.tv_nsec);
        assert_int_equal(after.st_size, before[i].st_size);
        snprintf(entry, sizeof entry, "%s.%s", plain[i], bad[i]);
        assert_int_equal(entries(store, entry), 0);
    }
    assert_int_equal(entries(store, ".tmp."), 0);
    /* Still refused on the next pass, still untouched. */
    assert_int_equal(sfx_sync(sp), 1);
    assert_non_null(strstr(sfx_R.err, "changed=0 unchanged=1 failed=3"));

    for (int i = 0; i < NPLAIN; i++) {
        EVP_PKEY_free(keys[i]);
        free(good[i]);
        free(bad[i]);
    }
    EVP_PKEY_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arc),
        cmocka_unit_test(test_service_principal),
        cmocka_unit_test(test_workload_identity),
        cmocka_unit_test(test_plain_secrets),
    };
    return cmocka_run_group_tests(tests, sfx_setup, sfx_teardown);
}
