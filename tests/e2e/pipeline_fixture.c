/* Test support for the pipeline end to end (see pipeline_fixture.h): set-up
 * of the emulator, the webhook certificate and certlc's configuration;
 * seeding; running the binary; Event Grid subscriptions; the mailbox and
 * Log Analytics readers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "azure/loganalytics.h"
#include "core/clock.h"
#include "core/file.h"
#include "crypto/signer.h"
#include "crypto/x509.h"
#include "emulator/emu_ext.h"
#include "pipeline_fixture.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

char pf_config[400];
struct test_proc_result pf_res;

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(R.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static int write_text(const char *path, const char *text)
{
    return text && clc_file_write_atomic(path, text, strlen(text), 0600, NULL) == CLC_OK ? 0 : -1;
}

/* certlc serve's certificate, issued by the emulator's test CA (its work
 * dir holds ca.pem and ca.key): Event Grid verifies deliveries against the
 * emulator's bundle, as Azure verifies against public roots. Valid by the
 * system clock, which is what TLS checks. */
static int make_webhook_cert(const char *cert_path, const char *key_path)
{
    static const char *const sans[] = {"IP:127.0.0.1", "DNS:localhost", NULL};
    char p[500];
    struct clc_signer *ca_key = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    struct clc_x509_spec spec = {
        .subject_cn = "certlc serve pipeline e2e", .sans = sans, .server_auth = 1};
    struct clc_errinfo ei = {0};
    int rc = -1;

    spec.not_before = (int64_t)time(NULL) - 2 * PF_DAY;
    spec.not_after = (int64_t)time(NULL) + 2 * PF_DAY;
    snprintf(p, sizeof p, "%s/ca.pem", emu_work_dir(R.e));
    if (clc_x509_load_pem_file(p, &ca, &ei) != CLC_OK)
        goto out;
    snprintf(p, sizeof p, "%s/ca.key", emu_work_dir(R.e));
    if (clc_signer_load_pem(p, &ca_key, &ei) != CLC_OK ||
        clc_signer_generate("EC", 256, &key, &ei) != CLC_OK ||
        clc_x509_make(&spec, key, ca, ca_key, &leaf, &ei) != CLC_OK ||
        clc_x509_save_pem(&leaf, 1, cert_path, 0644, &ei) != CLC_OK ||
        clc_signer_save_pem(key, key_path, &ei) != CLC_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "webhook certificate: %s\n", ei.msg);
    X509_free(leaf);
    X509_free(ca);
    clc_signer_free(key);
    clc_signer_free(ca_key);
    return rc;
}

static void add_path(cJSON *o, const char *key, const char *file)
{
    char p[400];
    snprintf(p, sizeof p, "%s/%s", R.dir, file);
    cJSON_AddStringToObject(o, key, p);
}

/* Everything certlc serve, renew and deadletter need, as an operator would
 * write it (secrets in files); the renewal fixture already wrote the CA
 * password, its root and the storage key into R.dir. */
static int write_config(void)
{
    char url[400];
    const cJSON *dcrs =
        cJSON_GetObjectItem(cJSON_GetObjectItem(R.endpoints, "log_analytics"), "dcrs");
    cJSON *c = cJSON_CreateObject();
    int rc = -1;

    snprintf(url, sizeof url, "%s/renewer.secret", R.dir);
    if (write_text(url, ep("identities", "renewer", "client_secret")) != 0)
        goto out;
    snprintf(url, sizeof url, "%s/webhook.secret", R.dir);
    if (write_text(url, PF_SECRET "\n") != 0)
        goto out;
    snprintf(url, sizeof url, "%s/smtp.password", R.dir);
    if (write_text(url, ep("smtp_accounts", "certlc", NULL)) != 0)
        goto out;

    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "log"), "level", "info");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "http"), "ca_bundle", emu_ca_bundle(R.e));
    cJSON *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON_AddStringToObject(auth, "method", "client_secret");
    cJSON_AddStringToObject(auth, "authority_host", ep("services", "entra", NULL));
    cJSON_AddStringToObject(auth, "tenant_id", ep("tenant", NULL, NULL));
    cJSON_AddStringToObject(auth, "client_id", ep("identities", "renewer", "client_id"));
    add_path(auth, "client_secret_file", "renewer.secret");
    cJSON *kv = cJSON_AddObjectToObject(c, "keyvault");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(kv, "vaults"), RF_VAULT,
                            ep("services", "keyvault", RF_VAULT));
    cJSON_AddBoolToObject(kv, "verify_challenge_resource", 0);
    cJSON *corp = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "ca"), "corp");
    snprintf(url, sizeof url, "%s/certsrv", emu_service_url(R.e, "ca"));
    cJSON_AddStringToObject(corp, "type", "adcs");
    cJSON_AddStringToObject(corp, "url", url);
    cJSON_AddStringToObject(corp, "auth", "basic");
    cJSON_AddStringToObject(corp, "username", "renewer");
    add_path(corp, "password_file", "ca-password");
    add_path(corp, "trust_anchors", "root.pem");
    cJSON *renew = cJSON_AddObjectToObject(c, "renew");
    cJSON *q = cJSON_AddObjectToObject(renew, "queue");
    snprintf(url, sizeof url, "%s/%s", emu_service_url(R.e, "queue"), RF_ACCOUNT);
    cJSON_AddStringToObject(q, "url", url);
    cJSON_AddStringToObject(q, "auth", "shared_key");
    cJSON_AddStringToObject(q, "account", RF_ACCOUNT);
    add_path(q, "key_file", "queue-key");
    snprintf(url, sizeof url, "%s/%s", emu_service_url(R.e, "blob"), RF_ACCOUNT);
    cJSON_AddStringToObject(cJSON_AddObjectToObject(renew, "deadletter"), "url", url);
    cJSON_AddStringToObject(renew, "default_ca", "corp");
    cJSON_AddStringToObject(renew, "default_template", "WebServer");
    /* Only a wake (the webhook, SIGUSR1) can make serve drain in a test. */
    cJSON_AddNumberToObject(renew, "schedule_s", 3600);
    cJSON_AddNumberToObject(renew, "pending_poll_s", 60);
    cJSON *wh = cJSON_AddObjectToObject(c, "webhook");
    cJSON_AddStringToObject(wh, "listen", "127.0.0.1");
    cJSON_AddNumberToObject(wh, "port", 0);
    add_path(wh, "certificate_file", "webhook.pem");
    add_path(wh, "key_file", "webhook.key");
    add_path(wh, "secret_file", "webhook.secret");
    cJSON *smtp = cJSON_AddObjectToObject(c, "smtp");
    cJSON_AddStringToObject(smtp, "url", ep("smtp", "smtps_url", NULL));
    cJSON_AddStringToObject(smtp, "from", "certlc <certlc@certlc.test>");
    cJSON_AddStringToObject(smtp, "username", "certlc");
    add_path(smtp, "password_file", "smtp.password");
    cJSON *la = cJSON_AddObjectToObject(c, "loganalytics");
    cJSON_AddStringToObject(la, "endpoint", emu_service_url(R.e, "loganalytics"));
    cJSON_AddStringToObject(
        la, "dcr_id", cJSON_GetStringValue(cJSON_GetObjectItem(dcrs, "Custom-CertlcRenewal_CL")));
    cJSON_AddStringToObject(la, "stream", "Custom-CertlcRenewal_CL");

    char *text = cJSON_Print(c);
    snprintf(pf_config, sizeof pf_config, "%s/certlc.json", R.dir);
    rc = write_text(pf_config, text);
    free(text);
out:
    cJSON_Delete(c);
    return rc;
}

int pf_setup(void **state)
{
    char cert[400], key[400];
    struct clc_errinfo ei = {0};

    if (rf_setup(state) != 0)
        return -1;
    /* certlc decides whether a certificate is due by the system clock, the
     * vault and Event Grid by the emulator's. Running the emulator half a
     * day behind keeps every "advance the clock" in the tests (minutes)
     * from putting the vault ahead of certlc, as it never is in Azure: a
     * NearExpiry event then finds the certificate due by certlc's clock
     * too. The emulator's CA certificates are backdated a day, so they stay
     * valid at the earlier time. */
    emu_clock_set(R.e, (int64_t)time(NULL) - PF_LAG_S);
    snprintf(cert, sizeof cert, "%s/webhook.pem", R.dir);
    snprintf(key, sizeof key, "%s/webhook.key", R.dir);
    if (make_webhook_cert(cert, key) != 0 || write_config() != 0)
        return -1;
    if (clc_blob_create_container(R.blob, PF_DL_CONTAINER, NULL, &ei) != CLC_OK) {
        fprintf(stderr, "dead-letter container: %s\n", ei.msg);
        return -1;
    }
    return 0;
}

int pf_teardown(void **state)
{
    pf_serve_stop_all();
    return rf_teardown(state);
}

/* ---- certificates ---- */

void pf_seed(struct pf_cert *c)
{
    cJSON *b = cJSON_CreateObject(), *sans = cJSON_CreateArray();
    int64_t now = emu_now_ms(R.e) / 1000;
    struct clc_kv_certificate cur;
    struct clc_errinfo ei = {0};
    char path[200], *resp = NULL;

    cJSON_AddStringToObject(b, "name", c->name);
    if (c->subject)
        cJSON_AddStringToObject(b, "subject", c->subject);
    for (size_t i = 0; c->sans && c->sans[i]; i++)
        cJSON_AddItemToArray(sans, cJSON_CreateString(c->sans[i]));
    cJSON_AddItemToObject(b, "sans", sans);
    cJSON *key = cJSON_AddObjectToObject(b, "key");
    cJSON_AddStringToObject(key, "kty", c->kty);
    if (strcmp(c->kty, "RSA") == 0)
        cJSON_AddNumberToObject(key, "key_size", c->size);
    else
        cJSON_AddStringToObject(key, "crv", c->crv);
    cJSON_AddNumberToObject(b, "not_after", (double)(now + c->left_s));
    cJSON_AddNumberToObject(b, "not_before", (double)(now + c->left_s - 365 * PF_DAY));
    if (c->tags)
        cJSON_AddItemToObject(b, "tags", cJSON_Parse(c->tags));
    if (c->content_type)
        cJSON_AddStringToObject(b, "content_type", c->content_type);
    char *body = cJSON_PrintUnformatted(b);
    snprintf(path, sizeof path, "/control/keyvault/%s/seed", RF_VAULT);
    assert_int_equal(rf_control("POST", path, body, &resp), 201);
    free(body);
    free(resp);
    cJSON_Delete(b);

    memset(&cur, 0, sizeof cur);
    rf_latest(c->name, &cur);
    snprintf(c->version, sizeof c->version, "%s", cur.version);
    memset(&c->tags_before, 0, sizeof c->tags_before);
    for (size_t i = 0; i < cur.tags.n; i++)
        assert_int_equal(
            clc_kv_tags_set(&c->tags_before, cur.tags.v[i].name, cur.tags.v[i].value, &ei), CLC_OK);
    clc_kv_certificate_cleanup(&cur);
    clc_kv_policy_init(&c->policy);
    if (clc_kv_get_policy(R.kv, c->name, &c->policy, &ei) != CLC_OK)
        fail_msg("policy of %s: %s", c->name, ei.msg);
}

void pf_cert_cleanup(struct pf_cert *c)
{
    clc_kv_policy_cleanup(&c->policy);
    clc_kv_tags_cleanup(&c->tags_before);
}

/* ---- the binary ---- */

int pf_certlc(const char *a1, const char *a2, const char *a3)
{
    char *argv[] = {CERTLC, "--config", pf_config, (char *)a1, (char *)a2, (char *)a3, NULL};
    assert_int_equal(test_proc_run(argv, NULL, 60000, &pf_res), 0);
    assert_false(pf_res.timed_out);
    return pf_res.exit_code;
}

/* ---- Event Grid ---- */

void pf_sub_put(const char *name, const char *json)
{
    char path[200];
    snprintf(path, sizeof path, "/control/eventgrid/subscriptions/%s", name);
    long st = rf_control("PUT", path, json, NULL);
    if (st != 200 && st != 201)
        fail_msg("PUT subscription %s: %ld", name, st);
}

void pf_sub_delete(const char *name)
{
    char path[200];
    snprintf(path, sizeof path, "/control/eventgrid/subscriptions/%s", name);
    long st = rf_control("DELETE", path, NULL, NULL);
    if (st >= 300 && st != 404)
        fail_msg("DELETE subscription %s: %ld", name, st);
}

static cJSON *sub_get(const char *name)
{
    char path[200], *body = NULL;
    snprintf(path, sizeof path, "/control/eventgrid/subscriptions/%s", name);
    assert_int_equal(rf_control("GET", path, NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    free(body);
    assert_non_null(j);
    return j;
}

int64_t pf_sub_int(const char *name, const char *field)
{
    cJSON *j = sub_get(name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, field);
    int64_t n = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
    cJSON_Delete(j);
    return n;
}

void pf_sub_wait_state(const char *name, const char *state)
{
    int64_t t0 = clc_mono_ms();
    char got[64] = "";

    do {
        cJSON *j = sub_get(name);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(j, "provisioning_state"));
        snprintf(got, sizeof got, "%s", s ? s : "");
        cJSON_Delete(j);
        if (strcmp(got, state) == 0)
            return;
        clc_sleep_ms(20);
    } while (clc_mono_ms() - t0 < PF_WAIT_MS);
    fail_msg("subscription %s is %s, not %s", name, got, state);
}

int64_t pf_sub_wait_int(const char *name, const char *field, int64_t want)
{
    int64_t t0 = clc_mono_ms(), v;

    do {
        v = pf_sub_int(name, field);
        if (v >= want)
            return v;
        clc_sleep_ms(20);
    } while (clc_mono_ms() - t0 < PF_WAIT_MS);
    fail_msg("subscription %s: %s is %lld, expected %lld", name, field, (long long)v,
             (long long)want);
    return v;
}

void pf_sub_queue(void)
{
    pf_sub_put(PF_SUB_QUEUE,
               "{\"topic\":\"" RF_VAULT "\",\"destination\":{\"type\":\"storagequeue\","
               "\"account\":\"" RF_ACCOUNT "\",\"queue\":\"certlc\"},"
               "\"filter\":{\"included_event_types\":"
               "[\"Microsoft.KeyVault.CertificateNearExpiry\"]}}");
}

void pf_sub_webhook(const char *name, int port, const char *extra)
{
    char body[1024];
    snprintf(body, sizeof body,
             "{\"topic\":\"" RF_VAULT "\",\"destination\":{\"type\":\"webhook\","
             "\"url\":\"https://127.0.0.1:%d/api/events\",\"shared_secret\":\"" PF_SECRET "\","
             "\"shared_secret_header\":\"x-certlc-webhook-secret\"},"
             "\"filter\":{\"included_event_types\":"
             "[\"Microsoft.KeyVault.CertificateNearExpiry\"]}%s%s}",
             port, extra ? "," : "", extra ? extra : "");
    pf_sub_put(name, body);
    /* The validation handshake went to certlc serve, which answered it. */
    pf_sub_wait_state(name, "Succeeded");
}

/* ---- the mailbox and Log Analytics ---- */

int pf_mails(const char *addr, char **subjects)
{
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    struct clc_buf all;
    char url[512];

    snprintf(url, sizeof url, "%s/messages%s%s", emu_service_url(R.e, "mailbox"),
             addr ? "?to=" : "", addr ? addr : "");
    struct clc_http_req req = {.method = "GET", .url = url};
    clc_http_resp_init(&resp);
    if (clc_http_do(R.admin_http, &req, &resp, &ei) != CLC_OK)
        fail_msg("mailbox: %s", ei.msg);
    assert_int_equal(resp.status, 200);
    cJSON *j = cJSON_Parse(clc_buf_str(&resp.body));
    const cJSON *msgs = cJSON_GetObjectItem(j, "messages"), *m;
    int n = cJSON_GetArraySize(msgs);
    if (subjects) {
        clc_buf_init(&all, 1 << 20);
        cJSON_ArrayForEach(m, msgs)
        {
            const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(m, "subject"));
            assert_int_equal(clc_buf_appendf(&all, "%s\n", s ? s : ""), CLC_OK);
        }
        *subjects = clc_buf_take(&all, NULL);
        assert_non_null(*subjects);
    }
    cJSON_Delete(j);
    clc_http_resp_cleanup(&resp);
    return n;
}

int pf_rows(const char *cert, const char *step, const char *outcome)
{
    char q[512];
    int len;
    cJSON *table = NULL;
    struct clc_errinfo ei = {0};

    len = snprintf(q, sizeof q, "CertlcRenewal_CL | where Certificate == '%s'", cert);
    if (step)
        len += snprintf(q + len, sizeof q - (size_t)len, " | where Step == '%s'", step);
    if (outcome)
        snprintf(q + len, sizeof q - (size_t)len, " | where Outcome == '%s'", outcome);
    if (clc_la_query(emu_service_url(R.e, "logquery"), ep("log_analytics", "workspace_id", NULL), q,
                     &R.http, R.admin, &table, &ei) != CLC_OK)
        fail_msg("query %s: %s", q, ei.msg);
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(table, "rows"));
    cJSON_Delete(table);
    return n;
}

int pf_wait(int (*fn)(void *arg), void *arg)
{
    int64_t t0 = clc_mono_ms();
    int v;

    while (!(v = fn(arg)) && clc_mono_ms() - t0 < PF_WAIT_MS)
        clc_sleep_ms(20);
    return v;
}
