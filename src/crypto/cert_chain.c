/* Certificate chains: read them from PEM, put them leaf first (CAs and
 * people hand them over in any order; Key Vault's merge wants leaf first),
 * and check each link's signature and each certificate's validity window. */
#include "crypto/cert.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/clock.h"
#include "crypto/x509.h"

void clc_cert_chain_free(STACK_OF(X509) * chain)
{
    sk_X509_pop_free(chain, X509_free);
}

/* Subject for messages, truncated. */
static const char *subject_of(X509 *x, char *buf, size_t n)
{
    char *s = NULL;
    if (clc_cert_name_text(X509_get_subject_name(x), &s, NULL) != CLC_OK) {
        snprintf(buf, n, "?");
        return buf;
    }
    snprintf(buf, n, "%s", s);
    free(s);
    return buf;
}

enum clc_err clc_cert_chain_from_pem(const char *pem, size_t len, STACK_OF(X509) * *out,
                                     struct clc_errinfo *ei)
{
    enum clc_err rc = clc_x509_parse_pem_chain(pem, len, out, ei);
    if (rc == CLC_OK && sk_X509_num(*out) > CLC_CERT_CHAIN_MAX) {
        clc_cert_chain_free(*out);
        *out = NULL;
        rc = clc_errf(ei, CLC_ERR_LIMIT, "certificate chain: more than %d certificates",
                      CLC_CERT_CHAIN_MAX);
    }
    return rc;
}

/* 1 when a issued b (names and key identifiers agree), a != b. */
static int issued(X509 *a, X509 *b)
{
    int r = a != b && X509_check_issued(a, b) == X509_V_OK;
    ERR_clear_error();
    return r;
}

enum clc_err clc_cert_chain_order(STACK_OF(X509) * certs, STACK_OF(X509) * *out,
                                  struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;
    STACK_OF(X509) *res = NULL;
    int used[CLC_CERT_CHAIN_MAX] = {0};
    int n = certs ? sk_X509_num(certs) : 0;
    int leaf = -1;
    char subj[160];

    *out = NULL;
    if (n <= 0)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate chain: empty");
    if (n > CLC_CERT_CHAIN_MAX)
        return clc_errf(ei, CLC_ERR_LIMIT, "certificate chain: more than %d certificates",
                        CLC_CERT_CHAIN_MAX);
    /* The leaf is the one certificate that issued none of the others. */
    for (int i = 0; i < n; i++) {
        int issuer_of_some = 0;
        for (int j = 0; j < n && !issuer_of_some; j++)
            issuer_of_some = issued(sk_X509_value(certs, i), sk_X509_value(certs, j));
        if (issuer_of_some)
            continue;
        if (leaf >= 0)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: two end certificates (%d and %d, e.g. '%s'); "
                            "give one certificate with its issuers",
                            leaf + 1, i + 1,
                            subject_of(sk_X509_value(certs, i), subj, sizeof subj));
        leaf = i;
    }
    if (leaf < 0)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate chain: no end certificate (a loop)");
    res = sk_X509_new_null();
    if (!res)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    for (int cur = leaf; cur >= 0;) {
        X509 *x = sk_X509_value(certs, cur);
        used[cur] = 1;
        if (!X509_up_ref(x) || !sk_X509_push(res, x)) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
        int next = -1;
        for (int j = 0; j < n && next < 0; j++)
            if (!used[j] && issued(sk_X509_value(certs, j), x))
                next = j;
        cur = next;
    }
    for (int i = 0; i < n; i++) {
        if (!used[i]) {
            rc = clc_errf(ei, CLC_ERR_INVALID,
                          "certificate chain: certificate %d ('%s') is not an issuer in the chain "
                          "of '%s'",
                          i + 1, subject_of(sk_X509_value(certs, i), subj, sizeof subj),
                          subject_of(sk_X509_value(certs, leaf), subj + 80, 80));
            goto out;
        }
    }
    *out = res;
    res = NULL;
out:
    clc_cert_chain_free(res);
    return rc;
}

static int64_t unix_of(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return INT64_MIN;
    return clc_time_from_utc(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                             tm.tm_sec);
}

enum clc_err clc_cert_chain_check(STACK_OF(X509) * chain, int64_t now, struct clc_errinfo *ei)
{
    int n = chain ? sk_X509_num(chain) : 0;
    char subj[160];

    if (n <= 0)
        return clc_errf(ei, CLC_ERR_INVALID, "certificate chain: empty");
    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(chain, i);
        int64_t nb = unix_of(X509_get0_notBefore(x)), na = unix_of(X509_get0_notAfter(x));
        if (nb == INT64_MIN || na == INT64_MIN)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: certificate %d ('%s') has unreadable dates", i + 1,
                            subject_of(x, subj, sizeof subj));
        if (now < nb)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: certificate %d ('%s') is not valid yet", i + 1,
                            subject_of(x, subj, sizeof subj));
        if (now > na)
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: certificate %d ('%s') has expired", i + 1,
                            subject_of(x, subj, sizeof subj));
        X509 *signer = i + 1 < n ? sk_X509_value(chain, i + 1) : NULL;
        if (!signer) {
            /* The top may be a root (check its self-signature) or an
             * intermediate whose issuer the caller did not include. */
            if (X509_check_issued(x, x) != X509_V_OK) {
                ERR_clear_error();
                break;
            }
            signer = x;
        } else if (X509_check_issued(signer, x) != X509_V_OK) {
            ERR_clear_error();
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: certificate %d ('%s') is not issued by the next "
                            "one (order is leaf first)",
                            i + 1, subject_of(x, subj, sizeof subj));
        }
        if (X509_verify(x, X509_get0_pubkey(signer)) != 1) {
            ERR_clear_error();
            return clc_errf(ei, CLC_ERR_INVALID,
                            "certificate chain: signature of certificate %d ('%s') does not "
                            "verify",
                            i + 1, subject_of(x, subj, sizeof subj));
        }
    }
    return CLC_OK;
}
