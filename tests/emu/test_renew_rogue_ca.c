/* A CA that answers with a valid chain from a trusted CA, but for another
 * key than the vault's CSR (a mix-up, or a hostile CA): nothing is merged,
 * the message goes to the poison queue saying why, and no new version
 * appears. The CA is a command that prints a chain prepared by the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/file.h"
#include "renew_fixture.h"

static char dir[] = "/tmp/certlc-rogue-XXXXXX";
static char chain_path[128], anchors_path[128], extra[1024];

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    snprintf(chain_path, sizeof chain_path, "%s/chain.pem", dir);
    snprintf(anchors_path, sizeof anchors_path, "%s/root.pem", dir);
    /* The stand-in CA tool prints the prepared chain whatever it is asked
     * (certlc appends "submit TEMPLATE" as $1 $2) and exits 0: "issued". */
    snprintf(extra, sizeof extra,
             "\"rogue\":{\"type\":\"command\",\"command\":[\"/bin/sh\",\"-c\","
             "\"cat %s\",\"rogue-ca\"],"
             "\"trust_anchors\":\"%s\",\"timeout_s\":10}",
             chain_path, anchors_path);
    rf_extra_ca = extra;
    return rf_setup(state);
}

static int teardown(void **state)
{
    char cmd[128];
    int rc = rf_teardown(state);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? rc : -1;
}

/* GET a CA file the emulator publishes without auth, as PEM text. */
static char *ca_file(const char *name)
{
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    char url[512];
    snprintf(url, sizeof url, "%s/CertEnroll/%s?Enc=b64", emu_service_url(R.e, "ca"), name);
    struct clc_http_req req = {.method = "GET", .url = url};
    clc_http_resp_init(&resp);
    assert_int_equal(clc_http_do(R.admin_http, &req, &resp, &ei), CLC_OK);
    assert_int_equal(resp.status, 200);
    char *pem = clc_buf_take(&resp.body, NULL);
    clc_http_resp_cleanup(&resp);
    assert_non_null(pem);
    return pem;
}

static void chain_for_another_key(void **state)
{
    (void)state;
    struct rf_version donor_v, victim_v;
    struct clc_kv_certificate donor;
    struct rf_seed rogue = {.tags = "{\"CertificateAuthority\":\"rogue\"}"};
    struct clc_errinfo ei = {0};

    rf_reset();
    /* A certificate the trusted CA really issued, for the donor's key. */
    rf_seed("donor", NULL, &donor_v);
    rf_event("donor", &donor_v);
    assert_int_equal(rf_drain(-1).outcomes[CLC_RENEW_RENEWED], 1);
    memset(&donor, 0, sizeof donor);
    rf_latest("donor", &donor);
    assert_non_null(donor.cer);
    const unsigned char *p = donor.cer;
    X509 *leaf = d2i_X509(NULL, &p, (long)donor.cer_len);
    assert_non_null(leaf);
    BIO *b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(b, leaf), 1);
    char *issuing = ca_file("certlc-issuing-ca.crt");
    BIO_write(b, issuing, (int)strlen(issuing));
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    assert_int_equal(clc_file_write_atomic(chain_path, data, (size_t)n, 0600, &ei), CLC_OK);
    char *root = ca_file("certlc-root-ca.crt");
    assert_int_equal(clc_file_write_atomic(anchors_path, root, strlen(root), 0600, &ei), CLC_OK);
    free(root);
    free(issuing);
    BIO_free(b);
    X509_free(leaf);
    clc_kv_certificate_cleanup(&donor);

    /* The victim's renewal goes to the rogue CA, which answers the donor's chain. */
    rf_seed("victim", &rogue, &victim_v);
    rf_event("victim", &victim_v);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 0);
    assert_int_equal(rf_versions("victim"), 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 1);

    struct clc_worker *w = rf_worker(1, -1);
    struct clc_poison_list l;
    assert_int_equal(clc_poison_list(w, &l, &ei), CLC_OK);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].certificate, "victim");
    /* The reason says what was wrong: the key. */
    if (strstr(l.v[0].detail, "key") == NULL)
        fail_msg("poison detail does not name the key: %s (reason %s)", l.v[0].detail,
                 l.v[0].reason);
    clc_poison_list_cleanup(&l);
    clc_worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_for_another_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
