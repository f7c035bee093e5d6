/* The renewal pipeline end to end through the certlc binary and Event Grid:
 * a vault seeded with certificates of several kinds; the emulator clock
 * moved past exp - 30 days; the vault's NearExpiry events go through Event
 * Grid to the work queue and to certlc serve's webhook, which wakes its
 * worker; every due certificate is renewed once (one of them after an
 * officer approves it at the CA) with its policy, SANs and tags; one mail
 * per recipient; the step rows in Log Analytics. Then the webhook down until
 * Event Grid dead-letters, and certlc deadletter replay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "crypto/cert.h"
#include "pipeline_fixture.h"

#define NEAR_S (30 * PF_DAY + 600) /* NearExpiry 10 minutes from now */
#define EXPIRY_EVENT "Microsoft.KeyVault.CertificateNearExpiry"

static const char *const rsa_sans[] = {"web.contoso.test", "www.contoso.test", "api.contoso.test",
                                       NULL};
static const char *const ec_sans[] = {"ec.contoso.test", "ec2.contoso.test", NULL};
static const char *const approval_sans[] = {"pay.contoso.test", "pay-admin.contoso.test", NULL};
static const char *const plain_sans[] = {"plain.contoso.test", NULL};

enum { C_RSA, C_EC, C_APPROVAL, C_PLAIN, C_FAR_RSA, C_FAR_EC, NCERTS };

static struct pf_cert certs[NCERTS] = {
    [C_RSA] = {.name = "e2e-rsa",
               .kty = "RSA",
               .size = 2048,
               .subject = "CN=web.contoso.test, O=Contoso, C=US",
               .sans = rsa_sans,
               .tags = "{\"Recipient\":\"ops@contoso.test;web@contoso.test\","
                       "\"Owner\":\"web-team\",\"CertificateTemplate\":\"WebServer\"}",
               .left_s = NEAR_S},
    [C_EC] = {.name = "e2e-ec",
              .kty = "EC",
              .crv = "P-256",
              .sans = ec_sans,
              .tags = "{\"Recipient\":\"ec@contoso.test\",\"Env\":\"prod\","
                      "\"CertificateTemplate\":\"WebServerShort\"}",
              .content_type = "application/x-pem-file",
              .left_s = NEAR_S},
    [C_APPROVAL] = {.name = "e2e-approval",
                    .kty = "EC",
                    .crv = "P-384",
                    .subject = "CN=pay.contoso.test, O=Contoso Payments",
                    .sans = approval_sans,
                    .tags = "{\"Recipient\":\"pay@contoso.test, sec@contoso.test\","
                            "\"CertificateTemplate\":\"WebServerApproval\"}",
                    .left_s = NEAR_S},
    /* No tags at all: the default template, and nobody to mail. */
    [C_PLAIN] =
        {.name = "e2e-plain", .kty = "RSA", .size = 2048, .sans = plain_sans, .left_s = NEAR_S},
    [C_FAR_RSA] = {.name = "e2e-far-rsa",
                   .kty = "RSA",
                   .size = 2048,
                   .sans = rsa_sans,
                   .tags = "{\"Recipient\":\"far@contoso.test\"}",
                   .left_s = 200 * PF_DAY},
    [C_FAR_EC] = {.name = "e2e-far-ec",
                  .kty = "EC",
                  .crv = "P-256",
                  .sans = ec_sans,
                  .tags = "{\"Recipient\":\"far@contoso.test\","
                          "\"CertificateTemplate\":\"WebServerShort\"}",
                  .left_s = 90 * PF_DAY},
};

/* Who is mailed about each renewal, and the template it goes through. */
static const char *const recipients[NCERTS][3] = {
    [C_RSA] = {"ops@contoso.test", "web@contoso.test", NULL},
    [C_EC] = {"ec@contoso.test", NULL},
    [C_APPROVAL] = {"pay@contoso.test", "sec@contoso.test", NULL},
};
static const char *const templates[NCERTS] = {
    [C_RSA] = "WebServer",
    [C_EC] = "WebServerShort",
    [C_APPROVAL] = "WebServerApproval",
    [C_PLAIN] = "WebServer",
};
/* Messages in the mailbox: one per renewal with recipients (a message to
 * two recipients is one message, listed under each). */
#define EXPECTED_MAILS 3

static int group_setup(void **state)
{
    return pf_setup(state);
}

static int group_teardown(void **state)
{
    for (int i = 0; i < NCERTS; i++)
        pf_cert_cleanup(&certs[i]);
    return pf_teardown(state);
}

/* ---- conditions polled for ---- */

static int three_renewed_one_pending(void *arg)
{
    char id[32];
    (void)arg;
    rf_ca_pending_id(id, sizeof id);
    return rf_versions("e2e-rsa") == 2 && rf_versions("e2e-ec") == 2 &&
           rf_versions("e2e-plain") == 2 && id[0] != '\0';
}

static int approval_renewed(void *arg)
{
    (void)arg;
    return rf_versions("e2e-approval") == 2;
}

/* Nothing left in flight: both subscriptions delivered the four events
 * and the one for the new 5-day version of e2e-ec (which waits in the
 * queue as a timer until due), every mail and every notify row written. */
static int settled(void *arg)
{
    (void)arg;
    if (pf_sub_int(PF_SUB_QUEUE, "delivered") < 5 || pf_sub_int(PF_SUB_SERVE, "delivered") < 5 ||
        rf_queue_count("certlc") != 1 || pf_mails(NULL, NULL) < EXPECTED_MAILS)
        return 0;
    for (int i = C_RSA; i <= C_PLAIN; i++)
        if (pf_rows(certs[i].name, "notify", NULL) < 1)
            return 0;
    return 1;
}

/* ---- checks ---- */

/* The CA request that issued serial: its template. */
static void ca_template_of(const char *serial, char *out, size_t n)
{
    char *body = NULL;
    const cJSON *it;
    out[0] = '\0';
    assert_int_equal(rf_control("GET", "/control/ca/requests", NULL, &body), 200);
    cJSON *j = cJSON_Parse(body);
    free(body);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(j, "requests"))
    {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(it, "serial"));
        if (s && strcasecmp(s, serial) == 0)
            snprintf(out, n, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(it, "template")));
    }
    cJSON_Delete(j);
}

static void same_strs(const struct clc_cert_strs *a, const struct clc_cert_strs *b,
                      const char *what, const char *name)
{
    if (a->n != b->n || !clc_cert_strs_same_set(a, b, 1))
        fail_msg("%s: %s changed (%zu -> %zu entries)", name, what, a->n, b->n);
}

static void same_str(const char *a, const char *b, const char *what, const char *name)
{
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
        fail_msg("%s: %s changed ('%s' -> '%s')", name, what, a ? a : "(none)", b ? b : "(none)");
}

/* The new version keeps the policy, the SANs and the tags, and is what the
 * template issues, through the enterprise CA. */
static void check_renewed(const struct pf_cert *c, const char *tmpl)
{
    struct clc_kv_certificate now;
    struct clc_kv_policy pol;
    struct clc_cert_info info;
    struct clc_errinfo ei = {0};
    X509 *x = NULL;
    char got_tmpl[64];

    assert_int_equal(rf_versions(c->name), 2);
    memset(&now, 0, sizeof now);
    rf_latest(c->name, &now);
    assert_string_not_equal(now.version, c->version);

    /* Tags: the same names and values, nothing added (no pending marker). */
    if (now.tags.n != c->tags_before.n)
        fail_msg("%s: %zu tags, had %zu", c->name, now.tags.n, c->tags_before.n);
    for (size_t i = 0; i < c->tags_before.n; i++)
        same_str(c->tags_before.v[i].value, clc_kv_tags_get(&now.tags, c->tags_before.v[i].name),
                 c->tags_before.v[i].name, c->name);

    /* The policy, member by member. */
    clc_kv_policy_init(&pol);
    if (clc_kv_get_policy(R.kv, c->name, &pol, &ei) != CLC_OK)
        fail_msg("policy of %s: %s", c->name, ei.msg);
    same_str(c->policy.kty, pol.kty, "kty", c->name);
    assert_int_equal(pol.key_size, c->policy.key_size);
    same_str(c->policy.crv, pol.crv, "crv", c->name);
    assert_int_equal(pol.exportable, c->policy.exportable);
    assert_int_equal(pol.reuse_key, c->policy.reuse_key);
    same_str(c->policy.content_type, pol.content_type, "content type", c->name);
    same_str(c->policy.subject, pol.subject, "subject", c->name);
    same_strs(&c->policy.dns_names, &pol.dns_names, "DNS names", c->name);
    same_strs(&c->policy.emails, &pol.emails, "e-mail SANs", c->name);
    same_strs(&c->policy.upns, &pol.upns, "UPNs", c->name);
    same_strs(&c->policy.ekus, &pol.ekus, "EKUs", c->name);
    same_strs(&c->policy.key_usage, &pol.key_usage, "key usage", c->name);
    same_str("Unknown", pol.issuer_name, "issuer", c->name);

    /* The certificate itself: its SANs are the policy's, its key what the
     * policy says, issued by the enterprise CA under the template. */
    memset(&info, 0, sizeof info);
    assert_non_null(now.cer);
    assert_int_equal(clc_cert_from_der(now.cer, now.cer_len, &x, &ei), CLC_OK);
    assert_int_equal(clc_cert_info_get(x, &info, &ei), CLC_OK);
    same_strs(&pol.dns_names, &info.sans.dns, "certificate SANs", c->name);
    assert_non_null(strstr(info.issuer, "CN=certlc-ISSUING-CA"));
    assert_string_equal(info.key.kty, c->kty);
    if (c->crv)
        assert_string_equal(info.key.crv, c->crv);
    else
        assert_int_equal(info.key.bits, c->size);
    assert_true(info.has_template);
    ca_template_of(info.serial_hex, got_tmpl, sizeof got_tmpl);
    assert_string_equal(got_tmpl, tmpl);
    if (strcmp(tmpl, "WebServerShort") == 0)
        assert_true(info.not_after - info.not_before <= 5 * PF_DAY + 900);
    else
        assert_true(info.not_after - info.not_before >= 364 * PF_DAY);
    clc_cert_info_cleanup(&info);
    X509_free(x);
    clc_kv_policy_cleanup(&pol);
    clc_kv_certificate_cleanup(&now);
}

static void check_untouched(const struct pf_cert *c)
{
    struct clc_kv_certificate now;
    assert_int_equal(rf_versions(c->name), 1);
    memset(&now, 0, sizeof now);
    rf_latest(c->name, &now);
    assert_string_equal(now.version, c->version);
    clc_kv_certificate_cleanup(&now);
    assert_int_equal(pf_rows(c->name, NULL, NULL), 0);
}

static void check_mail(int i)
{
    char *subjects = NULL, want[200];
    snprintf(want, sizeof want, "Certificate %s renewed (Key Vault %s)\n", certs[i].name, RF_VAULT);
    for (int r = 0; recipients[i][r]; r++) {
        int n = pf_mails(recipients[i][r], &subjects);
        if (n != 1 || strcmp(subjects, want) != 0)
            fail_msg("%s: %d mails (%s), expected one: %s", recipients[i][r], n, subjects, want);
        free(subjects);
    }
}

static void check_rows(int i)
{
    const char *name = certs[i].name;
    assert_int_equal(pf_rows(name, "create", "ok"), 1);
    assert_int_equal(pf_rows(name, "submit", "issued"), 1);
    assert_int_equal(pf_rows(name, "submit", "pending"), i == C_APPROVAL ? 1 : 0);
    assert_int_equal(pf_rows(name, "merge", "ok"), 1);
    assert_int_equal(pf_rows(name, "tags", NULL), 1);
    assert_int_equal(pf_rows(name, "notify", recipients[i][0] ? "ok" : "none"), 1);
    assert_int_equal(pf_rows(name, "merge", "poisoned"), 0);
}

static void check_metrics(struct pf_child *sv)
{
    char *text = NULL;
    assert_int_equal(pf_serve_get(sv, "/metrics", &text), 200);
    if (pf_metric(text, "certlc_renewals_total{outcome=\"renewed\"}") != 4 ||
        pf_metric(text, "certlc_webhook_deliveries_total{result=\"validation\"}") != 1 ||
        pf_metric(text, "certlc_webhook_deliveries_total{result=\"accepted\"}") != 5 ||
        pf_metric(text, "certlc_renewals_total{outcome=\"poisoned\"}") > 0)
        fail_msg("metrics:\n%s", text);
    free(text);
}

/* ---- the tests ---- */

static void renewed_through_event_grid(void **state)
{
    (void)state;
    char id[32], path[100];

    rf_reset();
    for (int i = 0; i < NCERTS; i++)
        pf_seed(&certs[i]);
    int ca0 = rf_ca_requests();

    /* serve first (its start-up drain finds nothing), then the vault's
     * subscriptions: the work queue, and serve's webhook, which Event Grid
     * validates with a handshake serve must answer. */
    struct pf_child *sv = pf_serve_start();
    pf_sub_queue();
    pf_sub_webhook(PF_SUB_SERVE, pf_serve_port(sv), NULL);
    assert_int_equal(pf_mails(NULL, NULL), 0);

    /* Past exp - 30 days of the near ones: four NearExpiry events. The
     * schedule is an hour away, so only the webhook's wake explains a
     * renewal now. */
    rf_advance(11 * 60);
    if (!pf_wait(three_renewed_one_pending, NULL)) {
        fprintf(stderr, "%s\n", pf_serve_log(sv));
        fail_msg("not renewed in time (certlc serve's log above)");
    }

    /* The approval template holds its request: an officer approves it; the
     * message comes back after renew.pending_poll_s (60 s of emulator
     * time), and a drain (SIGUSR1; in production the schedule) fetches it. */
    assert_int_equal(rf_versions("e2e-approval"), 1);
    rf_ca_pending_id(id, sizeof id);
    snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
    assert_int_equal(rf_control("POST", path, NULL, NULL), 200);
    rf_advance(61);
    pf_serve_wake(sv);
    if (!pf_wait(approval_renewed, NULL)) {
        fprintf(stderr, "%s\n", pf_serve_log(sv));
        fail_msg("approved request not fetched (certlc serve's log above)");
    }
    if (!pf_wait(settled, NULL)) {
        fprintf(stderr, "%s\n", pf_serve_log(sv));
        fail_msg("pipeline did not settle (queue %d, mails %d; certlc serve's log above)",
                 rf_queue_count("certlc"), pf_mails(NULL, NULL));
    }

    /* Each due certificate renewed once, through the CA once. */
    assert_int_equal(rf_ca_requests() - ca0, 4);
    for (int i = C_RSA; i <= C_PLAIN; i++) {
        check_renewed(&certs[i], templates[i]);
        check_rows(i);
        if (recipients[i][0])
            check_mail(i);
    }
    check_untouched(&certs[C_FAR_RSA]);
    check_untouched(&certs[C_FAR_EC]);
    /* One mail per renewal, to each of its recipients; none for the
     * untagged one or the untouched ones. */
    assert_int_equal(pf_mails(NULL, NULL), EXPECTED_MAILS);
    assert_int_equal(pf_mails("far@contoso.test", NULL), 0);
    assert_int_equal(pf_sub_int(PF_SUB_SERVE, "dead_lettered"), 0);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
    check_metrics(sv);

    const char *log = pf_serve_log(sv);
    assert_null(strstr(log, PF_SECRET));
    assert_int_equal(pf_serve_stop(sv), 0);
}

/* Retries by the emulator clock (10 s, then 30 s) until the subscription's
 * three attempts are spent; waits for the dead-letter blob. */
static void until_dead_lettered(const char *sub, int64_t dead_before)
{
    int64_t a = pf_sub_wait_int(sub, "attempts", 1);
    rf_advance(10);
    a = pf_sub_wait_int(sub, "attempts", a + 1);
    rf_advance(30);
    pf_sub_wait_int(sub, "attempts", a + 1);
    pf_sub_wait_int(sub, "dead_lettered", dead_before + 1);
}

static void dead_lettered_then_replayed(void **state)
{
    (void)state;
    static const char *const sans[] = {"dl.contoso.test", NULL};
    struct pf_cert a = {.name = "dl-a",
                        .kty = "EC",
                        .crv = "P-256",
                        .sans = sans,
                        .tags = "{\"Recipient\":\"dl-a@contoso.test\"}",
                        .left_s = NEAR_S};
    struct pf_cert b = a;
    b.name = "dl-b";
    b.tags = "{\"Recipient\":\"dl-b@contoso.test\"}";

    rf_reset();
    pf_sub_delete(PF_SUB_QUEUE);
    pf_sub_delete(PF_SUB_SERVE);
    /* A webhook subscription validated by a running certlc serve, with a
     * dead-letter destination and three attempts; then serve stops, and
     * nothing listens on its port any more. */
    struct pf_child *sv = pf_serve_start();
    pf_sub_webhook("certlc-hook", pf_serve_port(sv),
                   "\"retry_policy\":{\"max_delivery_attempts\":3,\"event_ttl_minutes\":1440},"
                   "\"dead_letter\":{\"account\":\"" RF_ACCOUNT
                   "\",\"container\":\"" PF_DL_CONTAINER "\"}");
    assert_int_equal(pf_serve_stop(sv), 0);
    assert_int_equal(pf_certlc("deadletter", "list", NULL), 2);
    int ca0 = rf_ca_requests();

    /* dl-a: the webhook is its only route, so only the replay can renew it. */
    pf_seed(&a);
    rf_advance(11 * 60);
    until_dead_lettered("certlc-hook", 0);
    assert_int_equal(rf_queue_count("certlc"), 0);

    /* dl-b: the queue subscription is back too, so its event is both on
     * the queue and dead-lettered; the replay is then a duplicate. */
    pf_sub_queue();
    pf_seed(&b);
    rf_advance(11 * 60);
    pf_sub_wait_int(PF_SUB_QUEUE, "delivered", 1);
    until_dead_lettered("certlc-hook", 1);

    assert_int_equal(pf_certlc("deadletter", "list", "--json"), 0);
    cJSON *j = cJSON_Parse(pf_res.out), *it;
    assert_int_equal(cJSON_GetArraySize(j), 2);
    int seen_a = 0, seen_b = 0;
    cJSON_ArrayForEach(it, j)
    {
        const char *cert = cJSON_GetStringValue(cJSON_GetObjectItem(it, "certificate"));
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(it, "reason")),
                            "MaxDeliveryAttemptsExceeded");
        assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "attempts")), 3);
        seen_a += cert && strcmp(cert, "dl-a") == 0;
        seen_b += cert && strcmp(cert, "dl-b") == 0;
    }
    cJSON_Delete(j);
    assert_int_equal(seen_a, 1);
    assert_int_equal(seen_b, 1);

    /* The queue renews dl-b; dl-a waits for the replay. */
    if (pf_certlc("renew", NULL, NULL) != 0)
        fail_msg("renew: %s\n%s", pf_res.out, pf_res.err);
    assert_non_null(strstr(pf_res.out, "renewed 1"));
    assert_int_equal(rf_versions("dl-a"), 1);
    assert_int_equal(rf_versions("dl-b"), 2);

    assert_int_equal(pf_certlc("deadletter", "replay", NULL), 0);
    assert_non_null(strstr(pf_res.out, "replayed 2"));
    assert_int_equal(pf_certlc("deadletter", "list", NULL), 2);
    assert_int_equal(rf_queue_count("certlc"), 2);
    if (pf_certlc("renew", NULL, NULL) != 0)
        fail_msg("renew after replay: %s\n%s", pf_res.out, pf_res.err);
    assert_non_null(strstr(pf_res.out, "renewed 1, skipped 1"));
    assert_int_equal(pf_certlc("renew", NULL, NULL), 2);

    /* Exactly one new version each, one CA request each, one mail each. */
    assert_int_equal(rf_versions("dl-a"), 2);
    assert_int_equal(rf_versions("dl-b"), 2);
    assert_int_equal(rf_ca_requests() - ca0, 2);
    assert_int_equal(pf_mails("dl-a@contoso.test", NULL), 1);
    assert_int_equal(pf_mails("dl-b@contoso.test", NULL), 1);
    assert_int_equal(pf_rows("dl-a", "merge", "ok"), 1);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
    pf_cert_cleanup(&a);
    pf_cert_cleanup(&b);
}

/* ---- two messages, one pending request: who merges mails ---- */

enum merge_case { ADOPTER_FIRST, ORIGINAL_FIRST, ADOPTER_KILLED, ORIGINAL_KILLED, NCASES };
static const char *const case_names[NCASES] = {"adopter-first", "original-first", "adopter-killed",
                                               "original-killed"};

/* Takes both messages of a certificate off the queue and tells them apart
 * by their state: the one that submitted the CSR and the one that adopted
 * the shared request. */
static void take_both(struct clc_queue_lease *orig, struct clc_queue_lease *adopter)
{
    struct clc_errinfo ei = {0};
    memset(orig, 0, sizeof *orig);
    memset(adopter, 0, sizeof *adopter);
    for (int i = 0; i < 2; i++) {
        struct clc_queue_lease l;
        struct clc_event ev;
        struct clc_renew_state st;
        int got = 0;
        memset(&l, 0, sizeof l);
        assert_int_equal(clc_queue_lease_take(R.q, R.set.queue_name, 30, &l, &got, &ei), CLC_OK);
        assert_true(got);
        assert_int_equal(
            clc_renew_msg_parse(l.msg.text, l.msg.text_len, NULL, &ev, &st, NULL, 0, &ei), CLC_OK);
        assert_true(st.request_id[0] && st.token[0]);
        struct clc_queue_lease *dst = st.adopted ? adopter : orig;
        int twice = dst->msg.id[0] != '\0';
        if (twice)
            clc_queue_lease_cleanup(&l);
        else
            *dst = l;
        if (twice)
            fail_msg("both messages %s the request", st.adopted ? "adopted" : "submitted");
    }
}

static void release(struct clc_queue_lease *l, int64_t delay_s)
{
    struct clc_errinfo ei = {0};
    assert_int_equal(clc_queue_lease_release(R.q, l, delay_s, &ei), CLC_OK);
    clc_queue_lease_cleanup(l);
}

static void renew_says(const char *want)
{
    if (pf_certlc("renew", NULL, NULL) != 0 || !strstr(pf_res.out, want))
        fail_msg("renew: expected '%s': %s\n%s", want, pf_res.out, pf_res.err);
}

/* A certificate whose CA request is pending has two messages (the event
 * twice): the original submitted the CSR, the duplicate adopted the shared
 * request. After the approval, whichever merges first sends the one
 * success mail and writes the one "notify ok" row; the other finishes as a
 * duplicate, quietly. Also when the merging worker dies right after the
 * merge: the other message stays quiet, and the merger's redelivery mails. */
static void one_mail_whoever_merges(void **state)
{
    (void)state;
    rf_reset();
    pf_sub_delete(PF_SUB_QUEUE);
    pf_sub_delete(PF_SUB_SERVE);
    pf_sub_delete("certlc-hook");
    for (int k = 0; k < NCASES; k++) {
        char name[64], rcpt[96], tags[256];
        struct rf_version v;
        struct clc_queue_lease orig, adopter;
        int killed = k == ADOPTER_KILLED || k == ORIGINAL_KILLED;
        int adopter_merges = k == ADOPTER_FIRST || k == ADOPTER_KILLED;

        snprintf(name, sizeof name, "dup-merge-%s", case_names[k]);
        snprintf(rcpt, sizeof rcpt, "%s@contoso.test", name);
        snprintf(tags, sizeof tags,
                 "{\"Recipient\":\"%s\",\"CertificateTemplate\":\"WebServerApproval\"}", rcpt);
        struct rf_seed s0 = {.tags = tags};
        int ca0 = rf_ca_requests();
        rf_seed(name, &s0, &v);

        /* The original submits (pending); the duplicate adopts its request. */
        rf_event(name, &v);
        renew_says("waiting 1");
        rf_event(name, &v);
        renew_says("waiting 1");
        assert_int_equal(rf_ca_requests() - ca0, 1);
        char id[32], path[128];
        rf_ca_pending_id(id, sizeof id);
        snprintf(path, sizeof path, "/control/ca/requests/%s/approve", id);
        assert_int_equal(rf_control("POST", path, NULL, NULL), 200);
        rf_advance(61);

        /* Both due again; only the one chosen to merge first is visible. */
        take_both(&orig, &adopter);
        release(adopter_merges ? &adopter : &orig, 0);
        release(adopter_merges ? &orig : &adopter, 100);
        if (killed) {
            struct clc_worker_summary s = rf_drain(CLC_RENEW_STEP_MERGE);
            assert_int_equal(s.outcomes[CLC_RENEW_ABORTED], 1);
        } else {
            renew_says("renewed 1, skipped 0");
        }
        assert_int_equal(rf_versions(name), 2);
        assert_int_equal(pf_mails(rcpt, NULL), killed ? 0 : 1);

        /* The other message: a duplicate, whatever its role. */
        rf_advance(101);
        renew_says("messages 1: renewed 0, skipped 1");
        assert_int_equal(pf_mails(rcpt, NULL), killed ? 0 : 1);
        if (killed) {
            /* The merger's lease runs out; it finds its own marker. */
            rf_advance(R.set.visibility_s);
            renew_says("messages 1: renewed 1, skipped 0");
        }

        assert_int_equal(rf_versions(name), 2);
        assert_int_equal(rf_ca_requests() - ca0, 1);
        assert_int_equal(rf_queue_count(R.set.queue_name), 0);
        assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
        if (pf_mails(rcpt, NULL) != 1 || pf_rows(name, "notify", "ok") != 1 ||
            pf_rows(name, "merge", "duplicate") != 1)
            fail_msg("%s: %d mails, %d notify rows, %d duplicate rows", name, pf_mails(rcpt, NULL),
                     pf_rows(name, "notify", "ok"), pf_rows(name, "merge", "duplicate"));
        /* The marker is gone once the mail is out; the tags are the old ones. */
        struct clc_kv_certificate c;
        memset(&c, 0, sizeof c);
        rf_latest(name, &c);
        assert_string_not_equal(c.version, v.version);
        assert_null(clc_kv_tags_get(&c.tags, R.set.pending_tag));
        assert_int_equal(c.tags.n, 2);
        assert_string_equal(clc_kv_tags_get(&c.tags, "Recipient"), rcpt);
        clc_kv_certificate_cleanup(&c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renewed_through_event_grid),
        cmocka_unit_test(dead_lettered_then_replayed),
        /* last: it mails, and the first test counts every mail */
        cmocka_unit_test(one_mail_whoever_merges),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
