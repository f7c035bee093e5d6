/* Test support: a throwaway MIT Kerberos realm for one test binary. Debian's
 * krb5kdc runs as the test's own child on a free 127.0.0.1 port, with its
 * database, keytabs and configuration in a temp dir; principals get random
 * keys; every step is bounded and the KDC is stopped at the end. */
#ifndef CLC_TEST_KDC_H
#define CLC_TEST_KDC_H

#include <sys/types.h>

struct test_kdc {
    char dir[128];       /* the realm's temp dir (removed by stop) */
    char realm[64];      /* "CERTLC.TEST" */
    int port;            /* TCP and UDP on 127.0.0.1 */
    pid_t pid;           /* krb5kdc, 0 when not running */
    char krb5_conf[192]; /* KRB5_CONFIG of the realm (also set in this process) */
    char kdc_conf[192];  /* KRB5_KDC_PROFILE */
};

/* 1 when krb5kdc, kdb5_util and kadmin.local are installed. */
int test_kdc_available(void);
/* Makes the realm (kdb5_util create -s, the master password on stdin) and
 * starts the KDC; sets KRB5_CONFIG in this process so GSS-API in it uses
 * the realm. 0 on success; -1 with the reason on stderr. */
int test_kdc_start(struct test_kdc *k, const char *realm);
/* Adds principal (e.g. "HTTP/127.0.0.1", "svc") with a random key and writes
 * its keys to the keytab file (absolute path). 0 on success. */
int test_kdc_add_principal(struct test_kdc *k, const char *principal, const char *keytab);
/* kinit -k -t keytab principal into ccache ("FILE:/path"). 0 on success;
 * 1 when kinit is not installed. */
int test_kdc_kinit(struct test_kdc *k, const char *principal, const char *keytab,
                   const char *ccache);
/* Stops the KDC (SIGTERM, SIGKILL after a deadline) and removes the dir. */
void test_kdc_stop(struct test_kdc *k);

#endif
