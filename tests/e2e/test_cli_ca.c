/* certlc ca through the binary, against the emulated CA (AD CS Web
 * Enrollment, Basic auth): submit issued / pending / denied with their exit
 * codes (0, 2, 1), text and JSON output, --out, fetch of a pending request, cacerts,
 * and bad input (missing, unreadable and non-CSR files; unknown CA). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "ca-helpers/ca_test_pki.h"
#include "core/file.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

static struct {
    char dir[256];
    char cfg[300], csr[300], notcsr[300], unreadable[300], out[300], anchors[300];
    struct emu *e;
    cJSON *endpoints;
    struct test_proc_result r;
} T;

static char *pth(const char *n)
{
    static char b[8][400];
    static int i;
    char *p = b[i++ % 8];
    snprintf(p, 400, "%s/%s", T.dir, n);
    return p;
}

static int certlc(const char *const *args)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = CERTLC;
    argv[n++] = "--config";
    argv[n++] = T.cfg;
    argv[n++] = "--log-level";
    argv[n++] = "error";
    for (size_t i = 0; args[i] && n < 31; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
    assert_int_equal(test_proc_run(argv, NULL, 30000, &T.r), 0);
    return T.r.exit_code;
}

static int setup_all(void **state)
{
    /* The default accounts, with NTLM allowed for renewer (as IIS's Windows
     * authentication would be on a real CA). */
    static const char emu_cfg[] = "{\"ca\":{\"accounts\":[{\"name\":\"renewer\",\"ntlm\":true},"
                                  "{\"name\":\"limited\",\"templates\":[\"WebServer\","
                                  "\"WebServerShort\"]}]}}";
    struct emu_opts o = {.quiet = 1};
    struct clc_errinfo ei = {0};
    struct clc_signer *k = NULL;
    char *text = NULL;
    (void)state;

    clc_log_setup(CLC_LOG_ERROR, CLC_LOG_TEXT, stderr);
    snprintf(T.dir, sizeof T.dir, "/tmp/clc-cli-ca-XXXXXX");
    if (!mkdtemp(T.dir) || pki_write(pth("emu.json"), emu_cfg, strlen(emu_cfg), 0600) != 0)
        return -1;
    o.config_file = pth("emu.json");
    if (emu_start(&o, &T.e, &ei) != CLC_OK || emu_endpoints_json(T.e, &text, &ei) != CLC_OK)
        return -1;
    T.endpoints = cJSON_Parse(text);
    free(text);
    const char *pw = cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(T.endpoints, "ca_accounts"), "renewer"));
    if (!pw || pki_write(pth("pw"), pw, strlen(pw), 0600) != 0)
        return -1;
    snprintf(T.cfg, sizeof T.cfg, "%s", pth("certlc.json"));
    snprintf(T.csr, sizeof T.csr, "%s", pth("req.csr"));
    snprintf(T.notcsr, sizeof T.notcsr, "%s", pth("not.csr"));
    snprintf(T.unreadable, sizeof T.unreadable, "%s", pth("secret.csr"));
    snprintf(T.out, sizeof T.out, "%s", pth("chain.pem"));
    snprintf(T.anchors, sizeof T.anchors, "%s", pth("anchors.pem"));
    if (clc_signer_generate("EC", 256, &k, NULL) != CLC_OK)
        return -1;
    static const char *const sans[] = {"www.example.test", "api.example.test", NULL};
    char *csr = pki_csr_pem(k, "www.example.test", sans);
    pki_write(T.csr, csr, strlen(csr), 0644);
    pki_write(T.unreadable, csr, strlen(csr), 0000);
    pki_write(T.notcsr, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", 58, 0644);
    free(csr);
    clc_signer_free(k);
    /* The CA's root via the emulator's CertEnroll copy is what an operator
     * would check by hand; here certlc ca cacerts --out writes the chain. */
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"http\":{\"ca_bundle\":\"%s\"},\"ca\":{\"corp\":{\"type\":\"adcs\","
             "\"url\":\"%s/certsrv\",\"auth\":\"basic\",\"username\":\"renewer\","
             "\"password_file\":\"%s\",\"trust_anchors\":\"%s\"},"
             "\"corp-ntlm\":{\"type\":\"adcs\",\"url\":\"%s/certsrv\",\"auth\":\"ntlm\","
             "\"username\":\"CERTLC\\\\renewer\",\"password_file\":\"%s\","
             "\"trust_anchors\":\"%s\"}}}",
             emu_ca_bundle(T.e), emu_service_url(T.e, "ca"), pth("pw"), T.anchors,
             emu_service_url(T.e, "ca"), pth("pw"), T.anchors);
    return pki_write(T.cfg, cfg, strlen(cfg), 0600);
}

static int teardown_all(void **state)
{
    char cmd[400];
    (void)state;
    cJSON_Delete(T.endpoints);
    emu_stop(T.e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_cacerts_then_submit(void **state)
{
    (void)state;
    /* Trust anchors do not exist yet: cacerts still works (bootstrap). */
    const char *cac[] = {"ca", "cacerts", "--ca", "corp", "--out", T.anchors, NULL};
    if (certlc(cac) != 0)
        fail_msg("cacerts: %s", T.r.err);
    assert_non_null(strstr(T.r.out, "\"subject\""));
    assert_int_equal(access(T.anchors, R_OK), 0);

    const char *sub[] = {"ca",    "submit", "--ca",  "corp", "--template", "WebServer",
                         "--csr", T.csr,    "--out", T.out,  NULL};
    if (certlc(sub) != 0)
        fail_msg("submit: %s%s", T.r.out, T.r.err);
    assert_non_null(strstr(T.r.out, "disposition: issued"));
    assert_non_null(strstr(T.r.out, "subject: CN=www.example.test"));
    assert_non_null(strstr(T.r.out, "DNS:api.example.test"));
    assert_non_null(strstr(T.r.out, "serial: "));
    assert_non_null(strstr(T.r.out, "not after: "));
    assert_non_null(strstr(T.r.out, "key matches the CSR: yes"));
    char *pem = NULL;
    size_t len = 0;
    assert_int_equal(clc_file_read(T.out, 1 << 20, &pem, &len, NULL), CLC_OK);
    assert_true(strstr(pem, "BEGIN CERTIFICATE") != NULL);
    free(pem);
}

/* The same through NTLM (after test_cacerts_then_submit wrote the anchors). */
static void test_submit_ntlm(void **state)
{
    (void)state;
    const char *sub[] = {"ca",        "submit", "--ca", "corp-ntlm", "--template",
                         "WebServer", "--csr",  T.csr,  NULL};
    if (certlc(sub) != 0)
        fail_msg("submit over NTLM: %s%s", T.r.out, T.r.err);
    assert_non_null(strstr(T.r.out, "disposition: issued"));
    assert_non_null(strstr(T.r.out, "key matches the CSR: yes"));
}

static void test_pending_denied_json(void **state)
{
    (void)state;
    const char *pend[] = {"ca",    "submit", "--ca",   "corp", "--template", "WebServerApproval",
                          "--csr", T.csr,    "--json", NULL};
    assert_int_equal(certlc(pend), 2);
    cJSON *j = cJSON_Parse(T.r.out);
    assert_non_null(j);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "disposition")), "pending");
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "request_id"));
    assert_non_null(id);
    char idc[32];
    snprintf(idc, sizeof idc, "%s", id);
    cJSON_Delete(j);

    const char *f[] = {"ca", "fetch", "--ca", "corp", "--request-id", idc, NULL};
    assert_int_equal(certlc(f), 2);
    assert_non_null(strstr(T.r.out, "disposition: pending"));

    const char *den[] = {"ca",    "submit", "--ca", "corp", "--template", "NoSuchTemplate",
                         "--csr", T.csr,    NULL};
    assert_int_equal(certlc(den), 1);
    assert_non_null(strstr(T.r.out, "disposition: denied"));
    assert_non_null(strstr(T.r.out, "code: 0x80094800"));
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *missing[] = {"ca",         "submit",    "--ca",  "corp",
                             "--template", "WebServer", "--csr", "/nonexistent/x.csr",
                             NULL};
    assert_int_equal(certlc(missing), 1);
    assert_non_null(strstr(T.r.err, "/nonexistent/x.csr"));
    if (geteuid() != 0) { /* root reads mode 000 files */
        const char *unr[] = {"ca",        "submit", "--ca",       "corp", "--template",
                             "WebServer", "--csr",  T.unreadable, NULL};
        assert_int_equal(certlc(unr), 1);
        assert_non_null(strstr(T.r.err, "reading the CSR"));
    }
    const char *notcsr[] = {"ca",        "submit", "--ca",   "corp", "--template",
                            "WebServer", "--csr",  T.notcsr, NULL};
    assert_int_equal(certlc(notcsr), 1);
    assert_non_null(strstr(T.r.err, "not a certificate request"));
    const char *noca[] = {"ca",        "submit", "--ca", "nope", "--template",
                          "WebServer", "--csr",  T.csr,  NULL};
    assert_int_equal(certlc(noca), 1);
    assert_non_null(strstr(T.r.err, "no CA named 'nope'"));
    const char *noid[] = {"ca", "fetch", "--ca", "corp", NULL};
    assert_int_equal(certlc(noid), 1);
    const char *badsub[] = {"ca", "frob", NULL};
    assert_int_equal(certlc(badsub), 1);
    const char *help[] = {"ca", "--help", NULL};
    assert_int_equal(certlc(help), 0);
    assert_non_null(strstr(T.r.out, "exit status: 0 issued, 2 pending"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacerts_then_submit),
        cmocka_unit_test(test_submit_ntlm),
        cmocka_unit_test(test_pending_denied_json),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
