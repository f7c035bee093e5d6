/* Key Vault benchmark: full renewal cycles per second (create with issuer
 * Unknown -> read the pending CSR -> sign it with a test CA -> merge -> get)
 * through certlc's Key Vault client against an in-process emulator (state in
 * memory), for EC P-256 and RSA-2048, each beside the same crypto done alone
 * (key generation + CSR + CA signature, one process, no HTTP) measured in the
 * same run, interleaved round by round so machine load hits both alike.
 * Built by CMake, run by ci/bench.sh (not ctest).
 * usage: bench_keyvault [--ec-cycles N] [--rsa-cycles N] [--rounds R] [--only ec|rsa] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include "azure/auth.h"
#include "azure/keyvault.h"
#include "core/log.h"
#include "core/secret.h"
#include "crypto/csr.h"
#include "emulator/emu.h"

#define VAULT "certlc"
#define POOL 8 /* certificates renewed in turn, so each cycle adds a version */
#define EC_TARGET_RATE 500.0
#define RSA_TARGET_RATIO 0.85

enum step { S_CREATE, S_SIGN, S_MERGE, S_GET, S_N };
static const char *const step_names[S_N] = {"create", "sign", "merge", "get"};

struct kind {
    const char *label; /* "EC P-256" */
    const char *kty;   /* "EC" / "RSA" */
    const char *prefix;
    int cycles;
    /* results */
    double cycle_s, crypto_s;   /* summed seconds */
    double cycle_sq, crypto_sq; /* summed squares, for the spread */
    double step_s[S_N];
    double first_cycle_ms; /* challenge, token, TLS handshakes */
    int done, crypto_done;
};

struct bench {
    struct emu *e;
    struct clc_http_opts http;
    struct clc_auth *auth;
    struct clc_kv *kv;
    EVP_PKEY *ca_key;
    X509 *ca;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t emu_now_s(const struct bench *b)
{
    return emu_now_ms(b->e) / 1000;
}

/* ---- the test CA: the same signing for the full cycle and the crypto alone */

static int set_serial(X509 *x)
{
    unsigned char raw[16];
    BIGNUM *bn = NULL;
    int ok;

    if (RAND_bytes(raw, sizeof raw) != 1)
        return 0;
    raw[0] &= 0x7f; /* positive */
    bn = BN_bin2bn(raw, sizeof raw, NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

/* Copies the CSR's SubjectPublicKeyInfo as it is encoded. X509_set_pubkey
 * would encode the decoded key again and decode that once more through
 * OpenSSL 3.0's provider lookups (0.15-0.3 ms a call here) for the same
 * bytes: a cost of that OpenSSL release, not of issuing. */
static int copy_spki(X509 *x, X509_REQ *req)
{
    ASN1_OBJECT *alg = NULL;
    const ASN1_OBJECT *oid = NULL;
    X509_ALGOR *pa = NULL;
    const unsigned char *pk = NULL;
    const void *pval = NULL;
    void *param = NULL;
    unsigned char *penc = NULL;
    int ptype = V_ASN1_UNDEF, pklen = 0;

    if (X509_PUBKEY_get0_param(NULL, &pk, &pklen, &pa, X509_REQ_get_X509_PUBKEY(req)) != 1 ||
        pa == NULL || pklen <= 0)
        return 0;
    X509_ALGOR_get0(&oid, &ptype, &pval, pa);
    if (ptype == V_ASN1_OBJECT)
        param = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE)
        param = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        return 0;
    alg = OBJ_dup(oid);
    penc = OPENSSL_memdup(pk, (size_t)pklen);
    if (alg == NULL || penc == NULL ||
        (param == NULL && ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg, ptype, param, penc, pklen) != 1) {
        ASN1_OBJECT_free(alg);
        OPENSSL_free(penc);
        if (ptype == V_ASN1_OBJECT)
            ASN1_OBJECT_free(param);
        else
            ASN1_STRING_free(param);
        return 0;
    }
    return 1;
}

/* What a CA does with a CSR: check its signature, then issue a leaf for its
 * subject and key with the requested extensions, valid 90 days. */
static int ca_sign(const struct bench *b, X509_REQ *req, X509 **out)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    STACK_OF(X509_EXTENSION) *exts = NULL;
    X509 *x = NULL;
    time_t now = (time_t)emu_now_s(b); /* the emulator's clock judges validity */
    int ok = 0;

    *out = NULL;
    if (pub == NULL || X509_REQ_verify(req, pub) != 1)
        goto out;
    x = X509_new();
    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || !set_serial(x) ||
        X509_set_issuer_name(x, X509_get_subject_name(b->ca)) != 1 ||
        X509_set_subject_name(x, X509_REQ_get_subject_name(req)) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(x), 0, -60, &now) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 90, 0, &now) == NULL || !copy_spki(x, req))
        goto out;
    exts = X509_REQ_get_extensions(req);
    for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts); i++)
        if (X509_add_ext(x, sk_X509_EXTENSION_value(exts, i), -1) != 1)
            goto out;
    if (X509_sign(x, b->ca_key, EVP_sha256()) <= 0)
        goto out;
    *out = x;
    x = NULL;
    ok = 1;
out:
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_free(x);
    ERR_clear_error();
    return ok;
}

static int make_ca(struct bench *b)
{
    X509_NAME *n = NULL;
    X509V3_CTX ctx;
    X509_EXTENSION *bc = NULL, *ku = NULL;
    int ok = 0;

    b->ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    b->ca = X509_new();
    n = X509_NAME_new();
    if (!b->ca_key || !b->ca || !n ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                   (const unsigned char *)"certlc bench issuing CA", -1, -1,
                                   0) != 1 ||
        X509_set_version(b->ca, X509_VERSION_3) != 1 || !set_serial(b->ca) ||
        X509_set_subject_name(b->ca, n) != 1 || X509_set_issuer_name(b->ca, n) != 1 ||
        X509_time_adj_ex(X509_getm_notBefore(b->ca), -1, 0, NULL) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(b->ca), 3650, 0, NULL) == NULL ||
        X509_set_pubkey(b->ca, b->ca_key) != 1)
        goto out;
    X509V3_set_ctx(&ctx, b->ca, b->ca, NULL, NULL, 0);
    bc = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
    ku = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
    ok = bc && ku && X509_add_ext(b->ca, bc, -1) == 1 && X509_add_ext(b->ca, ku, -1) == 1 &&
         X509_sign(b->ca, b->ca_key, EVP_sha256()) > 0;
out:
    X509_EXTENSION_free(bc);
    X509_EXTENSION_free(ku);
    X509_NAME_free(n);
    ERR_clear_error();
    return ok;
}

/* ---- the crypto alone: what the vault and the CA compute in one cycle */

static int add_req_ext(STACK_OF(X509_EXTENSION) * *sk, int nid, const char *value)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL, nid, value);
    if (ext == NULL || X509v3_add_ext(sk, ext, -1) == NULL) {
        X509_EXTENSION_free(ext);
        return 0;
    }
    X509_EXTENSION_free(ext);
    return 1;
}

/* Key generation + a CSR like the vault's (subject, SANs, EKU, key usage),
 * DER-encoded as it travels, then parsed and signed by the CA. */
static int crypto_once(const struct bench *b, const struct kind *k, int i)
{
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL, *back = NULL;
    X509_NAME *n = NULL;
    STACK_OF(X509_EXTENSION) *exts = NULL;
    unsigned char *der = NULL;
    const unsigned char *p;
    X509 *leaf = NULL;
    char cn[64], san[160];
    int len, ok = 0;
    int ec = strcmp(k->kty, "EC") == 0;

    snprintf(cn, sizeof cn, "%s-%d.contoso.com", k->prefix, i % POOL);
    snprintf(san, sizeof san, "DNS:%s, DNS:www.%s", cn, cn);
    key = ec ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
             : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    req = X509_REQ_new();
    n = X509_NAME_new();
    if (!key || !req || !n ||
        X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) !=
            1 ||
        X509_NAME_add_entry_by_txt(n, "O", MBSTRING_UTF8, (const unsigned char *)"Contoso", -1, -1,
                                   0) != 1 ||
        !add_req_ext(&exts, NID_subject_alt_name, san) ||
        !add_req_ext(&exts, NID_ext_key_usage, "serverAuth") ||
        !add_req_ext(&exts, NID_key_usage,
                     ec ? "critical,digitalSignature,keyAgreement"
                        : "critical,digitalSignature,keyEncipherment") ||
        X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_REQ_set_subject_name(req, n) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
        (len = i2d_X509_REQ(req, &der)) <= 0)
        goto out;
    p = der;
    back = d2i_X509_REQ(NULL, &p, len);
    ok = back != NULL && ca_sign(b, back, &leaf);
out:
    OPENSSL_free(der);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(n);
    X509_REQ_free(req);
    X509_REQ_free(back);
    X509_free(leaf);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return ok;
}

/* ---- the full cycle through the client */

static enum clc_err policy_for(const struct kind *k, const char *cn, struct clc_kv_policy *p,
                               struct clc_errinfo *ei)
{
    char buf[160];
    enum clc_err rc;
    int ec = strcmp(k->kty, "EC") == 0;

    clc_kv_policy_init(p);
    snprintf(p->kty, sizeof p->kty, "%s", k->kty);
    if (ec)
        snprintf(p->crv, sizeof p->crv, "P-256");
    else
        p->key_size = 2048;
    p->exportable = 1;
    p->reuse_key = 0;
    p->validity_months = 12;
    snprintf(buf, sizeof buf, "CN=%s, O=Contoso", cn);
    p->content_type = strdup("application/x-pkcs12");
    p->subject = strdup(buf);
    p->issuer_name = strdup("Unknown");
    if (!p->content_type || !p->subject || !p->issuer_name)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(buf, sizeof buf, "www.%s", cn);
    if ((rc = clc_cert_strs_add(&p->dns_names, cn, 100)) != CLC_OK ||
        (rc = clc_cert_strs_add(&p->dns_names, buf, 100)) != CLC_OK ||
        (rc = clc_cert_strs_add(&p->ekus, "1.3.6.1.5.5.7.3.1", 100)) != CLC_OK ||
        (rc = clc_cert_strs_add(&p->key_usage, "digitalSignature", 100)) != CLC_OK ||
        (rc = clc_cert_strs_add(&p->key_usage, ec ? "keyAgreement" : "keyEncipherment", 100)) !=
            CLC_OK)
        return clc_errf(ei, rc, "building the policy failed");
    return CLC_OK;
}

/* One renewal; adds each step's time to t[]. */
static enum clc_err cycle_once(struct bench *b, const struct kind *k, int i, double t[S_N],
                               struct clc_errinfo *ei)
{
    struct clc_kv_policy pol;
    struct clc_kv_operation op = {0};
    struct clc_kv_certificate merged = {0}, got = {0};
    X509_REQ *req = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    char name[64], cn[96];
    enum clc_err rc;
    double t0, t1;

    snprintf(name, sizeof name, "%s-%d", k->prefix, i % POOL);
    snprintf(cn, sizeof cn, "%s.contoso.com", name);
    if ((rc = policy_for(k, cn, &pol, ei)) != CLC_OK)
        goto out;
    struct clc_kv_create cr = {.policy = &pol};

    t0 = now_s();
    if ((rc = clc_kv_create(b->kv, name, &cr, &op, ei)) != CLC_OK)
        goto out;
    t1 = now_s();
    t[S_CREATE] += t1 - t0;
    /* The create answer carries the pending operation and its CSR: the
     * cycle the issue measures is create -> CSR -> sign -> merge -> get. */
    t0 = t1;
    if (op.csr == NULL || strcmp(op.status, "inProgress") != 0) {
        rc = clc_errf(ei, CLC_ERR_PARSE, "%s: operation %s without a CSR", name, op.status);
        goto out;
    }
    if ((rc = clc_csr_from_der(op.csr, op.csr_len, &req, ei)) != CLC_OK)
        goto out;
    chain = sk_X509_new_null();
    if (!ca_sign(b, req, &leaf) || chain == NULL || !sk_X509_push(chain, leaf)) {
        rc = clc_errf(ei, CLC_ERR_CRYPTO, "%s: signing the CSR failed", name);
        goto out;
    }
    leaf = NULL;
    if (X509_up_ref(b->ca) != 1 || !sk_X509_push(chain, b->ca)) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        goto out;
    }
    t1 = now_s();
    t[S_SIGN] += t1 - t0;
    if ((rc = clc_kv_merge(b->kv, name, chain, NULL, &merged, ei)) != CLC_OK)
        goto out;
    t0 = now_s();
    t[S_MERGE] += t0 - t1;
    if ((rc = clc_kv_get_certificate(b->kv, name, NULL, &got, ei)) != CLC_OK)
        goto out;
    t1 = now_s();
    t[S_GET] += t1 - t0;
    if (strcmp(got.version, merged.version) != 0 || got.cer_len != merged.cer_len)
        rc = clc_errf(ei, CLC_ERR_INTERNAL, "%s: get returned version %s, merged %s", name,
                      got.version, merged.version);
out:
    clc_kv_policy_cleanup(&pol);
    clc_kv_operation_cleanup(&op);
    clc_kv_certificate_cleanup(&merged);
    clc_kv_certificate_cleanup(&got);
    X509_REQ_free(req);
    X509_free(leaf);
    sk_X509_pop_free(chain, X509_free);
    return rc;
}

static int setup(struct bench *b)
{
    struct emu_opts eo = {.quiet = 1};
    struct clc_errinfo ei = {0};
    struct clc_secret *sec = NULL;
    char *text = NULL;
    cJSON *doc = NULL;
    int ok = 0;

    if (emu_start(&eo, &b->e, &ei) != CLC_OK || emu_endpoints_json(b->e, &text, &ei) != CLC_OK) {
        fprintf(stderr, "emulator: %s\n", ei.msg);
        goto out;
    }
    doc = cJSON_Parse(text);
    const cJSON *svc = cJSON_GetObjectItemCaseSensitive(doc, "services");
    const cJSON *url =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(svc, "keyvault"), VAULT);
    const cJSON *entra = cJSON_GetObjectItemCaseSensitive(svc, "entra");
    const cJSON *tenant = cJSON_GetObjectItemCaseSensitive(doc, "tenant");
    const cJSON *who = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(doc, "identities"), "renewer");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(who, "client_id");
    const cJSON *secret = cJSON_GetObjectItemCaseSensitive(who, "client_secret");
    if (!cJSON_IsString(url) || !cJSON_IsString(entra) || !cJSON_IsString(tenant) ||
        !cJSON_IsString(id) || !cJSON_IsString(secret)) {
        fprintf(stderr, "the endpoints document lacks vault '%s' or the renewer\n", VAULT);
        goto out;
    }
    b->http.ca_bundle = emu_ca_bundle(b->e);
    b->http.timeout_ms = 60000;
    if (clc_secret_new(secret->valuestring, strlen(secret->valuestring), &sec) != CLC_OK)
        goto out;
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = entra->valuestring,
                               .tenant_id = tenant->valuestring,
                               .client_id = id->valuestring,
                               .client_secret = sec};
    /* 127.0.0.1 is not a DNS suffix of vault.azure.net, as with the SDKs'
     * disableChallengeResourceVerification. */
    struct clc_kv_opts ko = {.vault_url = url->valuestring,
                             .vault_name = VAULT,
                             .disable_challenge_resource_verification = 1};
    if (clc_auth_new(&ao, &b->http, &b->auth, &ei) != CLC_OK ||
        clc_kv_new(&ko, &b->http, b->auth, &b->kv, &ei) != CLC_OK) {
        fprintf(stderr, "client: %s\n", ei.msg);
        goto out;
    }
    if (!make_ca(b)) {
        fprintf(stderr, "making the test CA failed\n");
        goto out;
    }
    ok = 1;
out:
    clc_secret_free(sec);
    cJSON_Delete(doc);
    free(text);
    return ok;
}

static void teardown(struct bench *b)
{
    clc_kv_free(b->kv);
    clc_auth_free(b->auth);
    X509_free(b->ca);
    EVP_PKEY_free(b->ca_key);
    emu_stop(b->e);
}

/* Warm-up: one untimed cycle per pooled name (the first pays for the
 * challenge, the token and the TLS handshakes; each creates its
 * certificate), then `rounds` rounds of crypto alone and full cycles. */
static int run_kind(struct bench *b, struct kind *k, int rounds)
{
    struct clc_errinfo ei = {0};
    double t[S_N] = {0}, t0;

    for (int i = 0; i < POOL; i++) {
        t0 = now_s();
        if (cycle_once(b, k, i, t, &ei) != CLC_OK) {
            fprintf(stderr, "%s warm-up: %s\n", k->label, ei.msg);
            return 0;
        }
        if (i == 0)
            k->first_cycle_ms = (now_s() - t0) * 1000;
    }
    for (int r = 0; r < rounds; r++) {
        int from = k->cycles * r / rounds, to = k->cycles * (r + 1) / rounds;
        for (int i = from; i < to; i++) {
            t0 = now_s();
            if (!crypto_once(b, k, i)) {
                fprintf(stderr, "%s: crypto alone failed\n", k->label);
                return 0;
            }
            double d = now_s() - t0;
            k->crypto_s += d;
            k->crypto_sq += d * d;
            k->crypto_done++;
        }
        for (int i = from; i < to; i++) {
            t0 = now_s();
            if (cycle_once(b, k, i, k->step_s, &ei) != CLC_OK) {
                fprintf(stderr, "%s cycle %d: %s\n", k->label, i, ei.msg);
                return 0;
            }
            double d = now_s() - t0;
            k->cycle_s += d;
            k->cycle_sq += d * d;
            k->done++;
        }
    }
    return 1;
}

/* Half width of the 95% confidence interval of the mean, relative to it. */
static double ci95(double sum, double sq, int n)
{
    double mean = sum / n, var = n > 1 ? (sq - n * mean * mean) / (n - 1) : 0;
    return var > 0 ? 1.96 * sqrt(var / n) / mean : 0;
}

static void report(const struct kind *k, int is_ec)
{
    double rate = k->done / k->cycle_s, crate = k->crypto_done / k->crypto_s;
    double ratio = rate / crate;
    int pass = is_ec ? rate >= EC_TARGET_RATE : ratio >= RSA_TARGET_RATIO;
    char target[48];

    if (is_ec)
        snprintf(target, sizeof target, ">= %.0f cycles/s", EC_TARGET_RATE);
    else
        snprintf(target, sizeof target, ">= %.0f%% of crypto", RSA_TARGET_RATIO * 100);
    printf("%-9s %6d %10.1f %9.3f %12.1f %10.3f %6.1f%%  %-20s %s\n", k->label, k->done, rate,
           1000 * k->cycle_s / k->done, crate, 1000 * k->crypto_s / k->crypto_done, 100 * ratio,
           target, pass ? "PASS" : "SHORT");
}

static void report_spread(const struct kind *k)
{
    printf("%-9s cycle +-%.1f%%, crypto alone +-%.1f%%\n", k->label,
           100 * ci95(k->cycle_s, k->cycle_sq, k->done),
           100 * ci95(k->crypto_s, k->crypto_sq, k->crypto_done));
}

static void report_steps(const struct kind *k)
{
    double sum = 0;
    printf("%-9s", k->label);
    for (int s = 0; s < S_N; s++) {
        printf(" %s %.3f", step_names[s], 1000 * k->step_s[s] / k->done);
        sum += k->step_s[s];
    }
    printf(" | other %.3f | first cycle %.1f ms\n", 1000 * (k->cycle_s - sum) / k->done,
           k->first_cycle_ms);
}

int main(int argc, char **argv)
{
    struct kind kinds[2] = {
        {.label = "EC P-256", .kty = "EC", .prefix = "bench-ec", .cycles = 1000},
        {.label = "RSA-2048", .kty = "RSA", .prefix = "bench-rsa", .cycles = 100}};
    int rounds = 10, want[2] = {1, 1};
    struct bench b = {0};
    int rc = 1;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ec-cycles") == 0)
            kinds[0].cycles = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rsa-cycles") == 0)
            kinds[1].cycles = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--only") == 0) {
            want[0] = strcmp(argv[i + 1], "ec") == 0;
            want[1] = strcmp(argv[i + 1], "rsa") == 0;
        } else {
            argc = -1;
            break;
        }
    }
    if (argc < 0 || (argc - 1) % 2 != 0 || rounds < 1 || kinds[0].cycles < rounds ||
        kinds[1].cycles < rounds || kinds[0].cycles > 1000000 || kinds[1].cycles > 1000000 ||
        (!want[0] && !want[1])) {
        fprintf(stderr, "usage: bench_keyvault [--ec-cycles N] [--rsa-cycles N] [--rounds R] "
                        "[--only ec|rsa]   (N >= R >= 1)\n");
        return 2;
    }
    /* The emulator's start-up notes would clutter the table; warnings stay. */
    clc_log_setup(CLC_LOG_WARN, CLC_LOG_TEXT, stderr);
    if (!setup(&b))
        goto out;
    printf("keyvault benchmark: renewal cycles (create issuer Unknown -> get pending CSR -> sign "
           "with a test CA -> merge -> get)\nthrough certlc's Key Vault client against the "
           "in-process emulator (memory), one client, in sequence;\ncrypto alone = key "
           "generation + CSR + CA signature in one process, interleaved in %d rounds\n\n",
           rounds);
    for (int i = 0; i < 2; i++)
        if (want[i] && !run_kind(&b, &kinds[i], rounds))
            goto out;
    printf("%-9s %6s %10s %9s %12s %10s %7s  %-20s %s\n", "kind", "cycles", "cycles/s", "ms/cycle",
           "crypto/s", "crypto ms", "ratio", "target", "result");
    for (int i = 0; i < 2; i++)
        if (want[i])
            report(&kinds[i], i == 0);
    printf("\n95%% confidence interval of each mean time (RSA key generation times spread "
           "widely):\n");
    for (int i = 0; i < 2; i++)
        if (want[i])
            report_spread(&kinds[i]);
    printf("\nmean ms per step of a cycle (client wall time, emulator work included):\n");
    for (int i = 0; i < 2; i++)
        if (want[i])
            report_steps(&kinds[i]);
    rc = 0;
out:
    teardown(&b);
    return rc;
}
