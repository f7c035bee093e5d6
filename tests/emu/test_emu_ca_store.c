/* The emulated CA's defaults, persistence and robustness: the default
 * templates and accounts, a restart from the data dir (same keys, same
 * requests, ids go on), malformed forms from fixtures/ca/forms, oversized
 * and unknown requests, and refused configurations and data dirs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "core/file.h"
#include "emulator/state.h"
#include "test_emu_ca_fixture.h"

static EVP_PKEY *key;

static int setup(void **state)
{
    (void)state;
    key = cafx_ec();
    return key ? cafx_setup(NULL) : -1;
}

static int teardown(void **state)
{
    (void)state;
    cafx_teardown();
    EVP_PKEY_free(key);
    return 0;
}

static void test_defaults(void **state)
{
    struct clc_http_resp resp;
    cJSON *j, *it;
    int seen = 0;

    (void)state;
    /* Default accounts with generated passwords in the endpoints document. */
    assert_non_null(cafx_password("renewer"));
    assert_non_null(cafx_password("limited"));
    assert_true(strlen(cafx_password("renewer")) >= 16);
    assert_int_equal(cafx_admin("GET", "/control/ca/templates", NULL, &resp), 200);
    j = cafx_json(&resp);
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(j, "templates"))
    {
        const char *name = cJSON_GetObjectItemCaseSensitive(it, "name")->valuestring;
        double v = cJSON_GetObjectItemCaseSensitive(it, "validity_seconds")->valuedouble;
        int approval = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "approval"));
        const char *oid = cJSON_GetObjectItemCaseSensitive(it, "oid")->valuestring;
        assert_memory_equal(oid, "1.3.6.1.4.1.311.21.8.", 21);
        if (strcmp(name, "WebServer") == 0)
            seen += v == 365 * 86400.0 && !approval;
        else if (strcmp(name, "WebServerShort") == 0)
            seen += v == 5 * 86400.0 && !approval;
        else if (strcmp(name, "WebServerApproval") == 0)
            seen += approval;
    }
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(seen, 3);
}

static int64_t submit(const char *tmpl, int pending)
{
    struct clc_http_resp resp;
    char *csr = cafx_csr(key, "keep.example.test", NULL, 0);
    int64_t id;

    assert_int_equal(cafx_submit("renewer", csr, tmpl, &resp), 200);
    free(csr);
    id = pending ? cafx_page_request_id(resp.body.data) : cafx_page_cert_id(resp.body.data);
    clc_http_resp_cleanup(&resp);
    assert_true(id > 0);
    return id;
}

static unsigned char *root_der(size_t *len)
{
    struct clc_http_resp resp;
    unsigned char *d;

    assert_int_equal(
        cafx_req("GET", "/CertEnroll/certlc-root-ca.crt", NULL, NULL, NULL, NULL, 0, &resp), 200);
    *len = resp.body.len;
    d = malloc(*len);
    assert_non_null(d);
    memcpy(d, resp.body.data, *len);
    clc_http_resp_cleanup(&resp);
    return d;
}

static void test_restart_keeps_state(void **state)
{
    struct clc_http_resp resp;
    char pw[128], path[400], keypath[400];
    int64_t issued = submit("WebServer", 0), held = submit("WebServerApproval", 1), next;
    size_t l1, l2;
    unsigned char *r1 = root_der(&l1), *r2;
    X509 *before = cafx_fetch_cert("renewer", issued), *after;
    struct stat st;

    (void)state;
    assert_non_null(before);
    snprintf(pw, sizeof pw, "%s", cafx_password("renewer"));
    assert_int_equal(cafx_restart(), 0);

    /* Same CA, same password, same certificate under the same id. */
    r2 = root_der(&l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(r1, r2, l1);
    assert_string_equal(pw, cafx_password("renewer"));
    after = cafx_fetch_cert("renewer", issued);
    assert_non_null(after);
    assert_int_equal(X509_cmp(before, after), 0);
    /* The key files are the owner's only. */
    for (int i = 0; i < 2; i++) {
        snprintf(keypath, sizeof keypath, "%s/enterprise-ca/%s", cafx.data_dir,
                 i ? "issuing.key" : "root.key");
        assert_int_equal(stat(keypath, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    /* The pending request survived and can be approved; ids go on. */
    snprintf(path, sizeof path, "/control/ca/requests/%lld/approve", (long long)held);
    assert_int_equal(cafx_admin("POST", path, NULL, &resp), 200);
    clc_http_resp_cleanup(&resp);
    X509_free(after);
    after = cafx_fetch_cert("renewer", held);
    assert_non_null(after);
    assert_true(cafx_same_key(after, key));
    next = submit("WebServer", 0);
    assert_int_equal(next, held + 1);
    X509_free(before);
    X509_free(after);
    free(r1);
    free(r2);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcmp(s + a - b, suf) == 0;
}

static void run_form(const char *path)
{
    struct clc_http_resp resp;
    char *text = NULL, *nl, *body, *sp;
    size_t len = 0;
    long want;

    assert_int_equal(clc_file_read(path, 65536, &text, &len, NULL), CLC_OK);
    assert_memory_equal(text, "# expect: ", 10);
    nl = strchr(text, '\n');
    assert_non_null(nl);
    *nl = '\0';
    body = nl + 1;
    body[strcspn(body, "\n")] = '\0';
    want = strtol(text + 10, &sp, 10);
    assert_true(*sp == ' ');
    sp++;
    if (cafx_req("POST", "/certsrv/certfnsh.asp", "renewer", NULL,
                 "application/x-www-form-urlencoded", body, strlen(body), &resp) != want ||
        strstr(resp.body.data ? resp.body.data : "", sp) == NULL)
        fail_msg("%s: got %ld, wanted %ld with '%s': %s", path, resp.status, want, sp,
                 resp.body.data ? resp.body.data : "");
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "text/html");
    clc_http_resp_cleanup(&resp);
    free(text);
    /* And the CA is still up. */
    assert_int_equal(cafx_req("GET", "/certsrv/", "renewer", NULL, NULL, NULL, 0, &resp), 200);
    clc_http_resp_cleanup(&resp);
}

static void test_malformed_forms(void **state)
{
    char dir[512], path[1024];
    DIR *d;
    struct dirent *de;
    int n = 0;

    (void)state;
    snprintf(dir, sizeof dir, "%s/ca/forms", CLC_FIXTURES);
    d = opendir(dir);
    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        if (!has_suffix(de->d_name, ".form"))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        run_form(path);
        n++;
    }
    closedir(d);
    assert_true(n >= 8);
}

static void test_bad_requests(void **state)
{
    struct clc_http_resp resp;
    char line[256];
    size_t big = 40 * 1024;
    char *form = malloc(big + 64);

    (void)state;
    assert_non_null(form);
    /* An oversized CSR field. */
    snprintf(form, 64, "Mode=newreq&CertRequest=");
    memset(form + strlen(form), 'A', big);
    form[24 + big] = '\0';
    assert_int_equal(cafx_req("POST", "/certsrv/certfnsh.asp", "renewer", NULL,
                              "application/x-www-form-urlencoded", form, strlen(form), &resp),
                     413);
    clc_http_resp_cleanup(&resp);
    free(form);
    /* Not a form at all. */
    assert_int_equal(cafx_req("POST", "/certsrv/certfnsh.asp", "renewer", NULL, "application/json",
                              "{}", 2, &resp),
                     415);
    clc_http_resp_cleanup(&resp);
    /* Unknown, foreign and malformed request ids: AD CS's error page. */
    assert_int_equal(cafx_req("GET", "/certsrv/certnew.cer?ReqID=987654&Enc=b64", "renewer", NULL,
                              NULL, NULL, 0, &resp),
                     200);
    assert_string_equal(clc_http_resp_header(&resp, "Content-Type"), "text/html");
    assert_true(cafx_page_line(resp.body.data, "LastStatus:", line, sizeof line));
    assert_string_equal(line, "The requested property value is empty. 0x80094004 (-2146877436 "
                              "CERTSRV_E_PROPERTY_EMPTY)");
    clc_http_resp_cleanup(&resp);
    assert_int_equal(
        cafx_req("GET", "/certsrv/certnew.p7b?ReqID=abc", "renewer", NULL, NULL, NULL, 0, &resp),
        200);
    assert_non_null(strstr(resp.body.data, "0x80094004"));
    clc_http_resp_cleanup(&resp);
    assert_int_equal(cafx_req("GET", "/certsrv/certnew.cer", "renewer", NULL, NULL, NULL, 0, &resp),
                     200);
    assert_non_null(strstr(resp.body.data, "0x80070057"));
    clc_http_resp_cleanup(&resp);
    /* Unknown paths and methods. */
    assert_int_equal(cafx_req("GET", "/certsrv/nothing.asp", "renewer", NULL, NULL, NULL, 0, &resp),
                     404);
    clc_http_resp_cleanup(&resp);
    assert_int_equal(
        cafx_req("DELETE", "/certsrv/certfnsh.asp", "renewer", NULL, NULL, NULL, 0, &resp), 405);
    clc_http_resp_cleanup(&resp);
    /* Still up. */
    assert_int_equal(cafx_req("GET", "/certsrv/", "renewer", NULL, NULL, NULL, 0, &resp), 200);
    clc_http_resp_cleanup(&resp);
}

/* emu_start must refuse with CLC_ERR_CONFIG and a message naming the problem. */
static void refused(const char *config_json, const char *data_dir, const char *needle)
{
    char cfg[400];
    struct emu_opts o = {.quiet = 1, .data_dir = data_dir};
    struct clc_errinfo ei = {0};
    struct emu *e = NULL;
    FILE *f;

    if (config_json != NULL) {
        snprintf(cfg, sizeof cfg, "%s/bad.json", cafx.dir);
        f = fopen(cfg, "w");
        assert_non_null(f);
        fputs(config_json, f);
        fclose(f);
        o.config_file = cfg;
    }
    assert_int_not_equal(emu_start(&o, &e, &ei), CLC_OK);
    assert_null(e);
    if (strstr(ei.msg, needle) == NULL)
        fail_msg("expected '%s' in: %s", needle, ei.msg);
}

static void test_refused_configs(void **state)
{
    char dd[400], p[500];
    FILE *f;

    (void)state;
    refused("{\"ca\": {\"colour\": 1}}", NULL, "unknown key 'colour'");
    refused("{\"ca\": {\"templates\": [{\"name\": \"A\", \"key_types\": [\"DSA\"]}]}}", NULL,
            "key_types");
    refused("{\"ca\": {\"templates\": [{\"name\": \"A\"}, {\"name\": \"a\"}]}}", NULL, "repeats");
    refused("{\"ca\": {\"templates\": [{\"name\": \"A\", \"oid\": \"x.y\"}]}}", NULL, "oid");
    refused("{\"ca\": {\"accounts\": [{\"name\": \"u\", \"templates\": [\"Nope\"]}]}}", NULL,
            "'Nope' is not a template");
    refused("{\"ca\": {\"accounts\": [{\"name\": \"u\", \"password\": \"short\"}]}}", NULL,
            "password");
    refused("{\"ca\": {\"key_type\": \"DSA\"}}", NULL, "key_type");
    refused("{\"ca\": {\"est_template\": \"Nope\"}}", NULL, "est_template");
    /* A damaged database is an error, not a silent fresh start. */
    snprintf(dd, sizeof dd, "%s/broken", cafx.dir);
    assert_int_equal(mkdir(dd, 0700), 0);
    snprintf(p, sizeof p, "%s/ca-requests.json", dd);
    f = fopen(p, "w");
    assert_non_null(f);
    fputs("{\"next_id\": 1, \"crl_number\": 1, \"requests\": [{\"id\": \"x\"}]}", f);
    fclose(f);
    refused(NULL, dd, "ca-requests");
    /* Half a CA: never replace a key silently. */
    snprintf(dd, sizeof dd, "%s/half", cafx.dir);
    assert_int_equal(mkdir(dd, 0700), 0);
    snprintf(p, sizeof p, "%s/enterprise-ca", dd);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/enterprise-ca/root.key", dd);
    f = fopen(p, "w");
    assert_non_null(f);
    fclose(f);
    refused(NULL, dd, "refusing to replace a CA key");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),        cmocka_unit_test(test_restart_keeps_state),
        cmocka_unit_test(test_malformed_forms), cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_refused_configs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
