/* The renewal worker end to end against the emulator (Key Vault, AD CS-like
 * CA, Storage queue): certificates of several kinds (RSA and EC, several
 * SANs, templates chosen by tag, default and extension, tags) are renewed
 * with their policy, SANs and tags kept and the full chain merged; duplicate
 * events make one version; what must be skipped is skipped; short-lived
 * certificates wait until due instead of renewing forever. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/cert.h"
#include "renew_fixture.h"

static void check_chain_and_template(const struct clc_kv_certificate *c, const char *issuer_cn)
{
    X509 *x = NULL;
    struct clc_cert_info info;
    struct clc_errinfo ei = {0};
    memset(&info, 0, sizeof info);
    assert_non_null(c->cer);
    assert_int_equal(clc_cert_from_der(c->cer, c->cer_len, &x, &ei), CLC_OK);
    assert_int_equal(clc_cert_info_get(x, &info, &ei), CLC_OK);
    assert_non_null(strstr(info.issuer, issuer_cn));
    /* The CA's template extension is on it (what the next renewal reads). */
    assert_true(info.has_template);
    clc_cert_info_cleanup(&info);
    X509_free(x);
}

static void renews_each_kind(void **state)
{
    (void)state;
    static const char *const rsa_sans[] = {"web.contoso.test", "www.contoso.test",
                                           "api.contoso.test", NULL};
    static const char *const ec_sans[] = {"ec.contoso.test", "ec2.contoso.test", NULL};
    struct rf_seed rsa = {.kty = "RSA",
                          .sans = rsa_sans,
                          .tags = "{\"Recipient\":\"ops@contoso.test;web@contoso.test\","
                                  "\"Owner\":\"web-team\",\"CertificateTemplate\":\"WebServer\"}"};
    struct rf_seed ec = {.kty = "EC",
                         .sans = ec_sans,
                         .tags = "{\"Recipient\":\"ec@contoso.test\","
                                 "\"CertificateTemplate\":\"WebServerShort\"}"};
    struct rf_seed plain = {.kty = "EC"};
    struct rf_version v1, v2, v3;
    struct clc_kv_certificate c;
    struct clc_kv_policy pol;
    struct clc_errinfo ei = {0};

    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("kind-rsa", &rsa, &v1);
    rf_seed("kind-ec", &ec, &v2);
    rf_seed("kind-plain", &plain, &v3);
    rf_event("kind-rsa", &v1);
    rf_event("kind-ec", &v2);
    rf_event("kind-plain", &v3);

    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.messages, 3);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 3);
    assert_int_equal(rf_ca_requests() - ca0, 3);
    assert_int_equal(rf_queue_count(R.set.queue_name), 0);

    /* RSA: policy, SANs and every tag kept; the CA's chain merged. */
    assert_int_equal(rf_versions("kind-rsa"), 2);
    memset(&c, 0, sizeof c);
    rf_latest("kind-rsa", &c);
    assert_string_not_equal(c.version, v1.version);
    assert_string_equal(clc_kv_tags_get(&c.tags, "Owner"), "web-team");
    assert_string_equal(clc_kv_tags_get(&c.tags, "Recipient"), "ops@contoso.test;web@contoso.test");
    assert_string_equal(clc_kv_tags_get(&c.tags, "CertificateTemplate"), "WebServer");
    assert_null(clc_kv_tags_get(&c.tags, R.set.pending_tag));
    check_chain_and_template(&c, "certlc-ISSUING-CA");
    clc_kv_certificate_cleanup(&c);
    clc_kv_policy_init(&pol);
    assert_int_equal(clc_kv_get_policy(R.kv, "kind-rsa", &pol, &ei), CLC_OK);
    assert_string_equal(pol.kty, "RSA");
    assert_int_equal(pol.key_size, 2048);
    assert_int_equal(pol.dns_names.n, 3);
    assert_string_equal(pol.issuer_name, "Unknown");
    clc_kv_policy_cleanup(&pol);

    /* EC with the short template: a 5-day certificate now. */
    assert_int_equal(rf_versions("kind-ec"), 2);
    memset(&c, 0, sizeof c);
    rf_latest("kind-ec", &c);
    assert_string_equal(clc_kv_tags_get(&c.tags, "Recipient"), "ec@contoso.test");
    assert_true(c.attributes.exp - c.attributes.nbf <= 6 * 86400);
    check_chain_and_template(&c, "certlc-ISSUING-CA");
    clc_kv_policy_init(&pol);
    assert_int_equal(clc_kv_get_policy(R.kv, "kind-ec", &pol, &ei), CLC_OK);
    assert_string_equal(pol.kty, "EC");
    assert_string_equal(pol.crv, "P-256");
    assert_int_equal(pol.dns_names.n, 2);
    clc_kv_policy_cleanup(&pol);

    /* Its NearExpiry (the vault's 30 days cover all 5) must not renew it at
     * once: the message waits until the certificate is due. */
    struct rf_version next = {.nbf = c.attributes.nbf, .exp = c.attributes.exp};
    snprintf(next.version, sizeof next.version, "%s", c.version);
    clc_kv_certificate_cleanup(&c);
    rf_event("kind-ec", &next);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1);
    assert_int_equal(rf_versions("kind-ec"), 2);
    rf_advance(2 * 86400);
    s = rf_drain(-1);
    assert_int_equal(s.messages, 0); /* still hidden: due at 2/3 of the life */
    rf_advance(2 * 86400);
    s = rf_drain(-1);
    /* This time the template comes from the certificate's own extension. */
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(rf_versions("kind-ec"), 3);

    /* No tags at all: default template and CA; no tags appear. */
    assert_int_equal(rf_versions("kind-plain"), 2);
    memset(&c, 0, sizeof c);
    rf_latest("kind-plain", &c);
    assert_int_equal(c.tags.n, 0);
    clc_kv_certificate_cleanup(&c);
}

static void duplicate_events_one_version(void **state)
{
    (void)state;
    struct rf_version v;
    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("dup", NULL, &v);
    for (int i = 0; i < 3; i++)
        rf_event("dup", &v);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.messages, 3);
    assert_int_equal(s.outcomes[CLC_RENEW_RENEWED], 1);
    assert_int_equal(s.outcomes[CLC_RENEW_SKIPPED], 2);
    assert_int_equal(rf_versions("dup"), 2);
    assert_int_equal(rf_ca_requests() - ca0, 1);
    /* And later, the same event again: still nothing. */
    rf_event("dup", &v);
    s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_SKIPPED], 1);
    assert_int_equal(rf_versions("dup"), 2);
}

static void skips_what_it_must(void **state)
{
    (void)state;
    struct rf_version v1, v2, v3, v4;
    struct clc_errinfo ei = {0};
    struct clc_kv_certificate out;
    struct rf_seed alone = {.tags = "{\"CertlcSkip\":\"true\"}"};
    struct rf_seed far = {.left_s = 200 * 86400};

    rf_reset();
    int ca0 = rf_ca_requests();
    rf_seed("skip-alone", &alone, &v1);
    rf_seed("skip-disabled", NULL, &v2);
    rf_seed("skip-far", &far, &v3);
    struct clc_kv_attributes a;
    clc_kv_attributes_init(&a);
    a.enabled = 0;
    struct clc_kv_update u = {.attributes = &a};
    memset(&out, 0, sizeof out);
    assert_int_equal(clc_kv_update_certificate(R.kv, "skip-disabled", v2.version, &u, &out, &ei),
                     CLC_OK);
    clc_kv_certificate_cleanup(&out);
    rf_event("skip-alone", &v1);
    rf_event("skip-disabled", &v2);
    rf_event("skip-far", &v3);
    /* A certificate that no longer exists. */
    v4 = v1;
    rf_event("skip-ghost", &v4);
    struct clc_worker_summary s = rf_drain(-1);
    assert_int_equal(s.outcomes[CLC_RENEW_SKIPPED], 3);
    assert_int_equal(s.outcomes[CLC_RENEW_WAITING], 1); /* far: kept until due */
    assert_int_equal(rf_ca_requests(), ca0);
    assert_int_equal(rf_versions("skip-alone"), 1);
    assert_int_equal(rf_versions("skip-disabled"), 1);
    assert_int_equal(rf_versions("skip-far"), 1);
    assert_int_equal(rf_queue_count(R.set.queue_name), 1);
    assert_int_equal(rf_queue_count(R.set.poison_queue), 0);
}

static void est_and_worker_thread(void **state)
{
    (void)state;
    struct rf_version v;
    struct rf_seed est = {.tags = "{\"CertificateAuthority\":\"est\"}"};
    struct clc_errinfo ei = {0};
    struct clc_metrics_snapshot m;

    rf_reset();
    rf_seed("via-est", &est, &v);
    /* The background worker: drains at start, then sleeps until woken. */
    struct clc_worker *w = rf_worker(2, -1);
    assert_int_equal(clc_worker_start(w, &ei), CLC_OK);
    for (int i = 0; i < 400 && clc_worker_passes(w) < 2; i++)
        clc_sleep_ms(10);
    assert_true(clc_worker_passes(w) >= 2);
    uint64_t before = clc_worker_passes(w);
    rf_event("via-est", &v);
    clc_worker_wake(w);
    for (int i = 0; i < 1000 && rf_versions("via-est") < 2; i++)
        clc_sleep_ms(10);
    assert_int_equal(rf_versions("via-est"), 2);
    for (int i = 0; i < 500 && clc_worker_passes(w) < before + 2; i++)
        clc_sleep_ms(10);
    clc_worker_get_metrics(w, &m);
    assert_int_equal(m.worker_ok, 1);
    assert_true(m.last_success > 0);
    assert_int_equal(m.ca_seconds.count, 1);
    uint64_t renewed = 0;
    for (size_t i = 0; i < m.nrenewals; i++)
        if (strcmp(m.renewals[i].label, "renewed") == 0)
            renewed = m.renewals[i].value;
    assert_int_equal(renewed, 1);
    clc_worker_stop(w);
    clc_worker_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renews_each_kind),
        cmocka_unit_test(duplicate_events_one_version),
        cmocka_unit_test(skips_what_it_must),
        cmocka_unit_test(est_and_worker_thread),
    };
    return cmocka_run_group_tests(tests, rf_setup, rf_teardown);
}
