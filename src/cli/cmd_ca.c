/* certlc ca: try a configured CA from the shell. submit a CSR, fetch a pending
 * request, or show the CA's own certificates; print the disposition and the
 * issued certificate's subject, SANs, serial and validity (text or JSON).
 * Exit: 0 issued, 2 pending, 1 denied or error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/x509v3.h>

#include "ca/ca.h"
#include "cli/cli.h"
#include "core/clock.h"
#include "core/json.h"
#include "crypto/x509.h"

struct ca_args {
    const char *ca;
    const char *tmpl;
    const char *csr;
    const char *id;
    const char *out;
    int renew;
    int json;
};

static void ca_usage(FILE *f)
{
    fprintf(f, "usage: certlc ca submit --ca NAME --template T --csr FILE [--renew] [--out FILE] "
               "[--json]\n"
               "       certlc ca fetch --ca NAME --request-id ID [--csr FILE] [--template T] "
               "[--out FILE] [--json]\n"
               "       certlc ca cacerts --ca NAME [--out FILE]\n\n"
               "Talks to the CA configured under ca.NAME (docs/ca.md). An issued certificate is\n"
               "shown only after it was verified: its key is the CSR's, its chain verifies to\n"
               "ca.NAME.trust_anchors, its validity is sane.\n\n"
               "  --ca NAME          the CA's name in the configuration\n"
               "  --template T       AD CS template (name or OID), EST label, or command argument\n"
               "  --csr FILE         PKCS#10 request, PEM or DER (fetch: to check the key; EST "
               "needs it)\n"
               "  --request-id ID    a pending request's id\n"
               "  --renew            EST: simplereenroll instead of simpleenroll\n"
               "  --out FILE         write the chain (leaf first) as PEM, atomically\n"
               "  --json             print one JSON object\n\n"
               "exit status: 0 issued, 2 pending, 1 denied or error\n");
}

static void name_str(X509_NAME *n, char *buf, size_t len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int w = 0;

    buf[0] = '\0';
    if (!b)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        w = BIO_read(b, buf, (int)len - 1);
        buf[w > 0 ? w : 0] = '\0';
    }
    BIO_free(b);
}

static void time_str(const ASN1_TIME *t, char out[CLC_TIME_STR_MAX])
{
    struct tm tm;

    snprintf(out, CLC_TIME_STR_MAX, "?");
    memset(&tm, 0, sizeof tm);
    if (t && ASN1_TIME_to_tm(t, &tm) == 1)
        clc_time_fmt_iso8601(clc_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                                               tm.tm_hour, tm.tm_min, tm.tm_sec),
                             out);
}

/* SANs as "DNS:x", "IP:1.2.3.4", ... into arr (a cJSON array). */
static void sans_of(X509 *x, cJSON *arr)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);

    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char buf[300] = "";
        if (g->type == GEN_DNS || g->type == GEN_URI || g->type == GEN_EMAIL) {
            const char *pfx = g->type == GEN_DNS ? "DNS" : g->type == GEN_URI ? "URI" : "email";
            const ASN1_IA5STRING *s = g->d.ia5;
            snprintf(buf, sizeof buf, "%s:%.*s", pfx, ASN1_STRING_length(s),
                     (const char *)ASN1_STRING_get0_data(s));
        } else if (g->type == GEN_IPADD) {
            const unsigned char *p = ASN1_STRING_get0_data(g->d.ip);
            int n = ASN1_STRING_length(g->d.ip);
            if (n == 4) {
                snprintf(buf, sizeof buf, "IP:%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
            } else {
                size_t o = (size_t)snprintf(buf, sizeof buf, "IP:");
                for (int j = 0; j + 1 < n && o + 6 < sizeof buf; j += 2)
                    o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%x", j ? ":" : "",
                                          (unsigned)(p[j] << 8 | p[j + 1]));
            }
        } else {
            snprintf(buf, sizeof buf, "other:%d", g->type);
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(buf));
    }
    GENERAL_NAMES_free(gens);
}

static cJSON *describe_cert(X509 *x)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *sans = cJSON_CreateArray();
    char buf[1024];
    char t[CLC_TIME_STR_MAX];
    BIGNUM *bn = NULL;
    char *hex = NULL;

    if (!o || !sans) {
        cJSON_Delete(o);
        cJSON_Delete(sans);
        return NULL;
    }
    name_str(X509_get_subject_name(x), buf, sizeof buf);
    cJSON_AddStringToObject(o, "subject", buf);
    sans_of(x, sans);
    cJSON_AddItemToObject(o, "sans", sans);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    hex = bn ? BN_bn2hex(bn) : NULL;
    cJSON_AddStringToObject(o, "serial", hex ? hex : "?");
    time_str(X509_get0_notBefore(x), t);
    cJSON_AddStringToObject(o, "not_before", t);
    time_str(X509_get0_notAfter(x), t);
    cJSON_AddStringToObject(o, "not_after", t);
    name_str(X509_get_issuer_name(x), buf, sizeof buf);
    cJSON_AddStringToObject(o, "issuer", buf);
    OPENSSL_free(hex);
    BN_free(bn);
    return o;
}

static cJSON *result_json(const struct clc_ca_result *r)
{
    cJSON *o = cJSON_CreateObject();

    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "disposition", clc_ca_disposition_name(r->disposition));
    if (r->request_id[0])
        cJSON_AddStringToObject(o, "request_id", r->request_id);
    switch (r->disposition) {
    case CLC_CA_ISSUED: {
        cJSON *c = describe_cert(sk_X509_value(r->chain, 0));
        if (c)
            cJSON_AddItemToObject(o, "certificate", c);
        cJSON_AddNumberToObject(o, "chain_length", sk_X509_num(r->chain));
        cJSON_AddBoolToObject(o, "key_checked", r->key_checked);
        break;
    }
    case CLC_CA_PENDING:
        cJSON_AddNumberToObject(o, "retry_after_s", (double)r->retry_after_s);
        break;
    case CLC_CA_DENIED:
        cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddStringToObject(o, "code", r->code);
        break;
    case CLC_CA_ERROR:
        cJSON_AddStringToObject(o, "error", clc_err_name(r->err));
        cJSON_AddStringToObject(o, "reason", r->reason);
        cJSON_AddBoolToObject(o, "retryable", r->retryable);
        break;
    }
    return o;
}

static void print_text(const struct clc_ca_result *r)
{
    printf("disposition: %s\n", clc_ca_disposition_name(r->disposition));
    if (r->request_id[0])
        printf("request id: %s\n", r->request_id);
    if (r->disposition == CLC_CA_PENDING)
        printf("ask again in: %lld s\n", (long long)r->retry_after_s);
    if (r->disposition == CLC_CA_DENIED)
        printf("reason: %s\ncode: %s\n", r->reason, r->code[0] ? r->code : "-");
    if (r->disposition != CLC_CA_ISSUED)
        return;
    cJSON *c = describe_cert(sk_X509_value(r->chain, 0));
    if (!c)
        return;
    printf("subject: %s\n", cJSON_GetObjectItem(c, "subject")->valuestring);
    printf("sans:");
    const cJSON *s = NULL;
    int first = 1;
    cJSON_ArrayForEach(s, cJSON_GetObjectItem(c, "sans"))
    {
        printf("%s %s", first ? "" : ",", s->valuestring);
        first = 0;
    }
    printf("%s\n", first ? " (none)" : "");
    printf("serial: %s\n", cJSON_GetObjectItem(c, "serial")->valuestring);
    printf("not before: %s\n", cJSON_GetObjectItem(c, "not_before")->valuestring);
    printf("not after: %s\n", cJSON_GetObjectItem(c, "not_after")->valuestring);
    printf("issuer: %s\n", cJSON_GetObjectItem(c, "issuer")->valuestring);
    printf("chain: %d certificate%s, leaf first\n", sk_X509_num(r->chain),
           sk_X509_num(r->chain) == 1 ? "" : "s");
    printf("key matches the CSR: %s\n", r->key_checked ? "yes" : "not checked (no --csr)");
    cJSON_Delete(c);
}

static int save_chain(const char *path, STACK_OF(X509) * chain)
{
    struct clc_errinfo ei;
    X509 *certs[32];
    int n = sk_X509_num(chain);
    enum clc_err e;

    clc_errinfo_clear(&ei);
    if (n > 32)
        n = 32;
    for (int i = 0; i < n; i++)
        certs[i] = sk_X509_value(chain, i);
    e = clc_x509_save_pem(certs, (size_t)n, path, 0644, &ei);
    if (e != CLC_OK)
        return clc_cli_fail("writing the chain", e, &ei);
    return CLC_EXIT_OK;
}

static int parse_args(int argc, char **argv, struct ca_args *a)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'a'},
        {"template", required_argument, NULL, 't'},
        {"csr", required_argument, NULL, 'r'},
        {"request-id", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"renew", no_argument, NULL, 'R'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            a->ca = optarg;
            break;
        case 't':
            a->tmpl = optarg;
            break;
        case 'r':
            a->csr = optarg;
            break;
        case 'i':
            a->id = optarg;
            break;
        case 'o':
            a->out = optarg;
            break;
        case 'R':
            a->renew = 1;
            break;
        case 'j':
            a->json = 1;
            break;
        case 'h':
            ca_usage(stdout);
            return CLC_EXIT_OK;
        default:
            fprintf(stderr, "certlc ca: unknown option or missing value\n");
            ca_usage(stderr);
            return CLC_EXIT_ERROR;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "certlc ca: unexpected argument '%s'\n", argv[optind]);
        return CLC_EXIT_ERROR;
    }
    if (!a->ca) {
        fprintf(stderr, "certlc ca: --ca NAME is required\n");
        return CLC_EXIT_ERROR;
    }
    return -1;
}

static int do_cacerts(struct clc_ca *ca, const struct ca_args *a)
{
    struct clc_errinfo ei;
    STACK_OF(X509) *certs = NULL;
    enum clc_err e;
    int rc = CLC_EXIT_OK;

    clc_errinfo_clear(&ei);
    if ((e = clc_ca_cacerts(ca, &certs, &ei)) != CLC_OK)
        return clc_cli_fail("ca cacerts", e, &ei);
    for (int i = 0; i < sk_X509_num(certs); i++) {
        cJSON *c = describe_cert(sk_X509_value(certs, i));
        char *s = c ? clc_json_print(c) : NULL;
        printf("%s\n", s ? s : "?");
        free(s);
        cJSON_Delete(c);
    }
    if (a->out)
        rc = save_chain(a->out, certs);
    sk_X509_pop_free(certs, X509_free);
    return rc;
}

int clc_cmd_ca(struct clc_cli *cli, int argc, char **argv)
{
    struct ca_args a;
    struct clc_errinfo ei;
    struct clc_ca *ca = NULL;
    struct clc_ca_csr *csr = NULL;
    struct clc_ca_result res;
    struct clc_ca_req req;
    const char *sub = NULL;
    enum clc_err e;
    int rc = CLC_EXIT_ERROR;

    memset(&a, 0, sizeof a);
    clc_errinfo_clear(&ei);
    clc_ca_result_init(&res);
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        ca_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLC_EXIT_ERROR : CLC_EXIT_OK;
    }
    sub = argv[1];
    if (strcmp(sub, "submit") != 0 && strcmp(sub, "fetch") != 0 && strcmp(sub, "cacerts") != 0) {
        fprintf(stderr, "certlc ca: unknown subcommand '%s' (submit, fetch, cacerts)\n", sub);
        return CLC_EXIT_ERROR;
    }
    rc = parse_args(argc - 1, argv + 1, &a);
    if (rc >= 0)
        return rc;
    rc = CLC_EXIT_ERROR;
    if (strcmp(sub, "submit") == 0 && !a.csr) {
        fprintf(stderr, "certlc ca submit: --csr FILE is required\n");
        return CLC_EXIT_ERROR;
    }
    if (strcmp(sub, "fetch") == 0 && !a.id) {
        fprintf(stderr, "certlc ca fetch: --request-id ID is required\n");
        return CLC_EXIT_ERROR;
    }
    /* Bad input is reported before any configuration or network work. */
    if (a.csr && (e = clc_ca_csr_from_file(a.csr, &csr, &ei)) != CLC_OK)
        return clc_cli_fail("reading the CSR", e, &ei);
    if ((e = clc_cli_load_config(cli, &ei)) != CLC_OK) {
        rc = clc_cli_fail("configuration", e, &ei);
        goto out;
    }
    if ((e = clc_ca_from_config(cli->config, a.ca, NULL, &cli->http, &ca, &ei)) != CLC_OK) {
        rc = clc_cli_fail("CA setup", e, &ei);
        goto out;
    }
    if (strcmp(sub, "cacerts") == 0) {
        rc = do_cacerts(ca, &a);
        goto out;
    }
    req = (struct clc_ca_req){.csr = csr, .template_name = a.tmpl, .renewal = a.renew};
    if (strcmp(sub, "submit") == 0)
        e = clc_ca_submit(ca, &req, &res, &ei);
    else
        e = clc_ca_fetch(ca, &req, a.id, &res, &ei);
    if (a.json) {
        cJSON *o = result_json(&res);
        char *s = o ? cJSON_Print(o) : NULL;
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else if (e == CLC_OK) {
        print_text(&res);
    }
    if (e != CLC_OK) {
        clc_cli_fail(strcmp(sub, "submit") == 0 ? "ca submit" : "ca fetch", e, &ei);
        fprintf(stderr, "certlc: %s\n",
                res.retryable ? "this error is temporary: try again later"
                              : "this error will not go away by itself");
        rc = CLC_EXIT_ERROR;
        goto out;
    }
    switch (res.disposition) {
    case CLC_CA_ISSUED:
        rc = a.out ? save_chain(a.out, res.chain) : CLC_EXIT_OK;
        break;
    case CLC_CA_PENDING:
        rc = CLC_EXIT_NOTHING;
        break;
    default:
        rc = CLC_EXIT_ERROR;
        break;
    }
out:
    clc_ca_result_cleanup(&res);
    clc_ca_csr_free(csr);
    clc_ca_free(ca);
    return rc;
}
