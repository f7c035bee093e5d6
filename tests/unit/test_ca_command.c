/* The command CA client with a stand-in tool (tests/ca-helpers/ca_cmd_helper)
 * for every outcome: issued (chain reordered, verified), another key, pending
 * then issued or denied, denied, a hang (timeout, process group killed),
 * garbage, temporary and permanent failures, the password on fd 3 and a clean
 * environment, output over the cap, validity against an injected clock, and
 * configuration mistakes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca-helpers/ca_test_pki.h"
#include "ca/ca.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"

static const struct clc_config_key schema[] = {{"ca.*", CLC_CFG_OBJ, "CAs"}};

static struct {
    char dir[256];
    struct pki pki;
    struct clc_signer *key;
    struct clc_ca_csr *csr;
    struct clc_config *cfg;
    struct clc_ca *ca;
    struct clc_ca_result res;
    struct clc_errinfo ei;
} T;

static int64_t clock_offset;
static int64_t offset_now_ms(void *ctx)
{
    (void)ctx;
    return clc_clock_now_ms(NULL) + clock_offset * 1000;
}

static char *pth(const char *name)
{
    static char buf[4][512];
    static int i;
    char *p = buf[i++ % 4];
    snprintf(p, 512, "%s/%s", T.dir, name);
    return p;
}

static int setup_all(void **state)
{
    char *pem = NULL;
    (void)state;
    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    snprintf(T.dir, sizeof T.dir, "/tmp/clc-ca-cmd-XXXXXX");
    if (!mkdtemp(T.dir) || pki_make(&T.pki, clc_clock_now(NULL)) != 0)
        return -1;
    X509 *inter[1] = {T.pki.inter};
    X509 *root[1] = {T.pki.root};
    char *ip = pki_pem(inter, 1), *rp = pki_pem(root, 1);
    if (pki_write(pth("inter.pem"), ip, strlen(ip), 0644) ||
        pki_write(pth("root.pem"), rp, strlen(rp), 0644) ||
        pki_write(pth("password.txt"), "s3cret-pw", 9, 0600) ||
        clc_signer_save_pem(T.pki.inter_key, pth("inter.key"), NULL) != CLC_OK)
        return -1;
    free(ip);
    free(rp);
    if (clc_signer_generate("EC", 256, &T.key, NULL) != CLC_OK)
        return -1;
    pem = pki_csr_pem(T.key, "cmd.example.test", NULL);
    if (clc_ca_csr_parse(pem, strlen(pem), &T.csr, NULL) != CLC_OK)
        return -1;
    free(pem);
    return 0;
}

static int teardown_all(void **state)
{
    char cmd[600];
    (void)state;
    clc_ca_csr_free(T.csr);
    clc_signer_free(T.key);
    pki_free(&T.pki);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int setup(void **state)
{
    (void)state;
    clc_ca_result_init(&T.res);
    clc_errinfo_clear(&T.ei);
    clock_offset = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clc_ca_result_cleanup(&T.res);
    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    T.ca = NULL;
    T.cfg = NULL;
    return 0;
}

/* Builds the CA from a config whose "cmd" member is extra + the defaults. */
static enum clc_err make_ca(const char *mode, const char *extra, const struct clc_clock *clock)
{
    char text[4096];
    enum clc_err e;

    snprintf(text, sizeof text,
             "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"%s\",\"%s\",\"%s\"],"
             "\"trust_anchors\":\"%s\",\"timeout_s\":10%s%s}}}",
             CA_CMD_HELPER, mode, T.dir, pth("root.pem"), extra ? "," : "", extra ? extra : "");
    e = clc_config_load_text(text, strlen(text), "test", NULL, schema, 1, &T.cfg, &T.ei);
    if (e != CLC_OK)
        return e;
    return clc_ca_from_config(T.cfg, "cmd", clock, NULL, &T.ca, &T.ei);
}

static enum clc_err submit(void)
{
    struct clc_ca_req req = {.csr = T.csr, .template_name = "WebServer"};
    return clc_ca_submit(T.ca, &req, &T.res, &T.ei);
}

static void test_issued_chain_ordered(void **state)
{
    (void)state;
    assert_int_equal(make_ca("issue", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_ISSUED);
    assert_int_equal(sk_X509_num(T.res.chain), 2);
    /* The tool printed the CA first; the result is leaf first. */
    X509 *leaf = sk_X509_value(T.res.chain, 0);
    assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(leaf), clc_signer_pkey(T.key)), 1);
    assert_int_equal(X509_cmp(sk_X509_value(T.res.chain, 1), T.pki.inter), 0);
    assert_true(T.res.key_checked);
}

static void test_other_key_refused(void **state)
{
    (void)state;
    assert_int_equal(make_ca("other-key", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_CRYPTO);
    assert_int_equal(T.res.disposition, CLC_CA_ERROR);
    assert_null(T.res.chain);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "public key is not the CSR's"));
}

static void test_pending_then_issued(void **state)
{
    struct clc_ca_req req = {.csr = T.csr};
    (void)state;
    assert_int_equal(make_ca("pending", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    assert_string_equal(T.res.request_id, "REQ-17");
    assert_int_equal(T.res.retry_after_s, 60);
    assert_int_equal(clc_ca_fetch(T.ca, &req, "REQ-17", &T.res, &T.ei), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_ISSUED);
    assert_string_equal(T.res.request_id, "REQ-17");
    /* An id the tool does not know is its error (exit 1). */
    assert_int_equal(clc_ca_fetch(T.ca, &req, "REQ-99", &T.res, &T.ei), CLC_ERR_IO);
    assert_non_null(strstr(T.ei.msg, "unknown request REQ-99"));
    /* Ids that could pass for options are refused before running anything. */
    assert_int_equal(clc_ca_fetch(T.ca, &req, "-rf", &T.res, &T.ei), CLC_ERR_INVALID);
}

static void test_pending_then_denied(void **state)
{
    (void)state;
    assert_int_equal(make_ca("pending-deny", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_PENDING);
    /* Fetch without the CSR: allowed for a command CA. */
    assert_int_equal(clc_ca_fetch(T.ca, NULL, "REQ-17", &T.res, &T.ei), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.reason, "denied by the CA officer");
    assert_string_equal(T.res.code, "exit 2");
}

static void test_denied(void **state)
{
    (void)state;
    assert_int_equal(make_ca("deny", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_OK);
    assert_int_equal(T.res.disposition, CLC_CA_DENIED);
    assert_string_equal(T.res.reason, "key too small: 1024 < 2048");
}

static void test_hang_times_out_and_group_killed(void **state)
{
    char text[64] = "";
    FILE *f = NULL;
    int64_t t0 = clc_mono_ms();
    pid_t g = 0;
    (void)state;
    unlink(pth("grandchild.pid"));
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"%s\",\"hang\",\"%s\"],"
             "\"trust_anchors\":\"%s\",\"timeout_s\":1}}}",
             CA_CMD_HELPER, T.dir, pth("root.pem"));
    assert_int_equal(clc_config_load_text(cfg, strlen(cfg), "t", NULL, schema, 1, &T.cfg, &T.ei),
                     CLC_OK);
    assert_int_equal(clc_ca_from_config(T.cfg, "cmd", NULL, NULL, &T.ca, &T.ei), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_TIMEOUT);
    assert_true(T.res.retryable);
    assert_true(clc_mono_ms() - t0 < 5000);
    assert_non_null(strstr(T.ei.msg, "did not finish within 1 s"));
    f = fopen(pth("grandchild.pid"), "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    g = (pid_t)atoi(text);
    assert_true(g > 1);
    /* The grandchild was in the group; once init reaps it, it is gone. */
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        if (kill(g, 0) != 0 && errno == ESRCH)
            gone = 1;
        else
            usleep(10000);
    }
    assert_true(gone);
}

static void test_garbage(void **state)
{
    (void)state;
    assert_int_equal(make_ca("garbage", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_PARSE);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.res.reason, "not a PEM certificate chain"));
}

static void test_tempfail_and_fail(void **state)
{
    (void)state;
    assert_int_equal(make_ca("tempfail", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_UNAVAILABLE);
    assert_true(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "exited 75: CA busy, try later"));
    clc_ca_free(T.ca);
    clc_config_free(T.cfg);
    T.ca = NULL;
    T.cfg = NULL;
    assert_int_equal(make_ca("fail", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_IO);
    assert_false(T.res.retryable);
    assert_non_null(strstr(T.ei.msg, "exited 9: boom"));
}

static void test_password_on_fd3_clean_env(void **state)
{
    (void)state;
    setenv("CA_TEST_PW", "s3cret-pw", 1);
    setenv("CA_TEST_UNLISTED", "x", 1);
    setenv("CA_TEST_LISTED", "y", 1);
    assert_int_equal(make_ca("checkpw",
                             "\"password_env\":\"CA_TEST_PW\","
                             "\"pass_env\":[\"CA_TEST_LISTED\"]",
                             NULL),
                     CLC_OK);
    assert_int_equal(submit(), CLC_OK);
    if (T.res.disposition != CLC_CA_ISSUED)
        fail_msg("not issued: %s", T.res.reason);
    unsetenv("CA_TEST_PW");
    unsetenv("CA_TEST_UNLISTED");
    unsetenv("CA_TEST_LISTED");
}

static void test_output_capped(void **state)
{
    (void)state;
    assert_int_equal(make_ca("bigout", NULL, NULL), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_LIMIT);
}

static void test_validity_against_clock(void **state)
{
    struct clc_clock c = {.now_ms = offset_now_ms};
    (void)state;
    clock_offset = 365 * 86400; /* the 30-day certificate has expired by then */
    assert_int_equal(make_ca("issue", NULL, &c), CLC_OK);
    assert_int_equal(submit(), CLC_ERR_CRYPTO);
    assert_non_null(strstr(T.ei.msg, "expired at notAfter"));
    clock_offset = -86400 / 2; /* issued "in the future" for this clock */
    assert_int_equal(submit(), CLC_ERR_CRYPTO);
    assert_non_null(strstr(T.ei.msg, "is in the future"));
}

static void test_config_mistakes(void **state)
{
    static const char *const bad[] = {
        /* inline secret */
        "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"/bin/true\"],\"password\":\"x\"}}}",
        /* typo */
        "{\"ca\":{\"cmd\":{\"type\":\"command\",\"comand\":[\"/bin/true\"]}}}",
        /* no command */
        "{\"ca\":{\"cmd\":{\"type\":\"command\"}}}",
        /* a secret-looking variable passed through */
        "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"/bin/true\"],"
        "\"pass_env\":[\"AZURE_CLIENT_SECRET\"]}}}",
        /* unknown type */
        "{\"ca\":{\"cmd\":{\"type\":\"scep\"}}}",
        /* not executable */
        "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"/etc/hostname\"]}}}",
    };
    struct clc_ca_req req = {.csr = T.csr};
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        enum clc_err e =
            clc_config_load_text(bad[i], strlen(bad[i]), "t", NULL, schema, 1, &T.cfg, &T.ei);
        if (e == CLC_OK) {
            e = clc_ca_from_config(T.cfg, "cmd", NULL, NULL, &T.ca, &T.ei);
            if (e == CLC_OK)
                e = clc_ca_submit(T.ca, &req, &T.res, &T.ei);
        }
        if (e != CLC_ERR_CONFIG)
            fail_msg("case %zu: %s (%s)", i, clc_err_name(e), T.ei.msg);
        clc_ca_free(T.ca);
        clc_config_free(T.cfg);
        T.ca = NULL;
        T.cfg = NULL;
    }
    /* No trust anchors: refused before the tool runs. */
    const char *na = "{\"ca\":{\"cmd\":{\"type\":\"command\",\"command\":[\"/bin/true\"]}}}";
    assert_int_equal(clc_config_load_text(na, strlen(na), "t", NULL, schema, 1, &T.cfg, &T.ei),
                     CLC_OK);
    assert_int_equal(clc_ca_from_config(T.cfg, "cmd", NULL, NULL, &T.ca, &T.ei), CLC_OK);
    assert_int_equal(clc_ca_submit(T.ca, &req, &T.res, &T.ei), CLC_ERR_CONFIG);
    assert_non_null(strstr(T.ei.msg, "trust_anchors is required"));
    /* Unknown CA name. */
    struct clc_ca *other = NULL;
    assert_int_equal(clc_ca_from_config(T.cfg, "nope", NULL, NULL, &other, &T.ei), CLC_ERR_CONFIG);
    assert_int_equal(clc_ca_from_config(T.cfg, "../x", NULL, NULL, &other, &T.ei), CLC_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_issued_chain_ordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_then_issued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_then_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_times_out_and_group_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tempfail_and_fail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_password_on_fd3_clean_env, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validity_against_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_mistakes, setup, teardown),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
