/* certlc sync benchmark (ci/bench.sh sync): a poll of N observed, unchanged
 * certificates — wall time and this thread's CPU time per poll (the
 * emulator runs in this process on its own threads, so the client's CPU is
 * measured per thread) — and the idle RSS of the certlc daemon binary after
 * its first pass. Targets: <= 50 ms CPU per poll of 100, RSS <= 10 MB. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "azure/keyvault.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "pipeline/sync.h"

static cJSON *endpoints;

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static double thread_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static struct clc_auth *auth_for(const char *who, const struct clc_http_opts *ho)
{
    struct clc_secret *sec = NULL;
    struct clc_auth *a = NULL;
    const char *s = ep("identities", who, "client_secret");
    if (!s || clc_secret_new(s, strlen(s), &sec) != CLC_OK)
        return NULL;
    struct clc_auth_opts ao = {.method = CLC_AUTH_CLIENT_SECRET,
                               .authority_host = ep("services", "entra", NULL),
                               .tenant_id = ep("tenant", NULL, NULL),
                               .client_id = ep("identities", who, "client_id"),
                               .client_secret = sec};
    clc_auth_new(&ao, ho, &a, NULL);
    clc_secret_free(sec);
    return a;
}

static int seed(struct clc_kv *kv, int n)
{
    for (int i = 0; i < n; i++) {
        struct clc_kv_policy p;
        struct clc_kv_operation op;
        struct clc_errinfo ei;
        char name[32], cn[64];
        clc_kv_policy_init(&p);
        snprintf(name, sizeof name, "cert-%03d", i);
        snprintf(cn, sizeof cn, "CN=%s.contoso.com", name);
        snprintf(p.kty, sizeof p.kty, "EC");
        p.subject = strdup(cn);
        p.issuer_name = strdup("Self");
        p.validity_months = 12;
        struct clc_kv_create req = {.policy = &p};
        enum clc_err e = clc_kv_create(kv, name, &req, &op, &ei);
        clc_kv_operation_cleanup(&op);
        clc_kv_policy_cleanup(&p);
        if (e != CLC_OK) {
            fprintf(stderr, "seed %s: %s\n", name, ei.msg);
            return -1;
        }
    }
    return 0;
}

static char *settings_text(const char *store, int n)
{
    cJSON *d = cJSON_CreateObject();
    cJSON *sms = cJSON_AddObjectToObject(d, "secretsManagementSettings");
    cJSON_AddStringToObject(sms, "pollingIntervalInS", "3600");
    cJSON_AddStringToObject(sms, "certificateStoreLocation", store);
    cJSON *obs = cJSON_AddArrayToObject(sms, "observedCertificates");
    for (int i = 0; i < n; i++) {
        char url[300];
        snprintf(url, sizeof url, "%s/secrets/cert-%03d", ep("services", "keyvault", "certlc"), i);
        cJSON_AddItemToArray(obs, cJSON_CreateString(url));
    }
    cJSON *own = cJSON_AddObjectToObject(d, "certlc");
    cJSON_AddBoolToObject(own, "verifyChallengeResource", 0);
    char *t = cJSON_Print(d);
    cJSON_Delete(d);
    return t;
}

/* A "Name:   123 kB" line of a /proc file, or -1. */
static long proc_kb(pid_t pid, const char *file, const char *name)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    FILE *st = fopen(path, "r");
    while (st && fgets(line, sizeof line, st))
        if (!strncmp(line, name, strlen(name)))
            v = strtol(line + strlen(name), NULL, 10);
    if (st)
        fclose(st);
    return v;
}

/* The daemon binary's VmRSS (kB) once its first pass is logged; also its
 * private (anonymous) part and PSS, since most of VmRSS is shared library
 * pages (libcrypto, libcurl and its TLS/LDAP/Kerberos dependencies). */
static long daemon_rss(const char *certlc, const char *cfg, const char *settings,
                       const char *logfile, long *anon, long *pss)
{
    pid_t pid = fork();
    if (pid == 0) {
        FILE *f = freopen(logfile, "w", stderr);
        (void)f;
        execl(certlc, certlc, "--config", cfg, "sync", "--settings", settings, (char *)NULL);
        _exit(127);
    }
    long rss = -1;
    for (int64_t end = clc_mono_ms() + 60000; clc_mono_ms() < end; clc_sleep_ms(100)) {
        char *log = NULL;
        if (clc_file_read(logfile, 1 << 24, &log, NULL, NULL) == CLC_OK &&
            strstr(log, "sync.pass")) {
            free(log);
            clc_sleep_ms(500); /* idle: sleeping until the next poll */
            rss = proc_kb(pid, "status", "VmRSS:");
            *anon = proc_kb(pid, "status", "RssAnon:");
            *pss = proc_kb(pid, "smaps_rollup", "Pss:");
            if (getenv("CERTLC_BENCH_SMAPS")) {
                char cmd[160];
                snprintf(
                    cmd, sizeof cmd,
                    "awk '/^[0-9a-f]+-/{m=$6} /^Rss:/{r[m]+=$2} END{for(k in r) print r[k], k}' "
                    "/proc/%d/smaps | sort -rn | head -25 >&2",
                    (int)pid);
                if (system(cmd) != 0)
                    fprintf(stderr, "smaps listing failed\n");
            }
            break;
        }
        free(log);
    }
    kill(pid, SIGTERM);
    int status;
    waitpid(pid, &status, 0);
    if (rss < 0) {
        char *log = NULL;
        clc_file_read(logfile, 1 << 20, &log, NULL, NULL);
        fprintf(stderr, "daemon (status %d):\n%s\n", status, log ? log : "");
        free(log);
    }
    return rss;
}

int main(int argc, char **argv)
{
    int n = 100, polls = 20, rc = 1;
    const char *certlc = NULL;
    char dir[] = "/tmp/certlc-bench-sync.XXXXXX", store[300], path[300], cfg[300], secf[300];
    char *text = NULL;
    struct emu *e = NULL;
    struct clc_auth *renewer = NULL, *syncer = NULL;
    struct clc_kv *kv = NULL;
    struct clc_sync *sy = NULL;
    struct clc_sync_settings s;
    struct clc_errinfo ei;

    memset(&s, 0, sizeof s);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--certs"))
            n = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--polls"))
            polls = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--certlc"))
            certlc = argv[i + 1];
    }
    if (n < 1 || n > 1000 || polls < 1 || polls > 1000 || !mkdtemp(dir))
        return 2;
    clc_log_setup(CLC_LOG_WARN, CLC_LOG_TEXT, stderr);
    struct emu_opts o = {.quiet = 1};
    if (emu_start(&o, &e, &ei) != CLC_OK || emu_endpoints_json(e, &text, &ei) != CLC_OK) {
        fprintf(stderr, "emulator: %s\n", ei.msg);
        goto out;
    }
    endpoints = cJSON_Parse(text);
    free(text);
    text = NULL;
    struct clc_http_opts ho = {.ca_bundle = ep("ca_bundle", NULL, NULL)};
    struct clc_kv_opts ko = {.vault_url = ep("services", "keyvault", "certlc"),
                             .disable_challenge_resource_verification = 1};
    if (!(renewer = auth_for("renewer", &ho)) || !(syncer = auth_for("sync", &ho)) ||
        clc_kv_new(&ko, &ho, renewer, &kv, &ei) != CLC_OK || seed(kv, n) != 0)
        goto out;
    snprintf(store, sizeof store, "%s/store", dir);
    snprintf(path, sizeof path, "%s/settings.json", dir);
    text = settings_text(store, n);
    if (!text || clc_file_write_atomic(path, text, strlen(text), 0600, NULL) != CLC_OK ||
        clc_sync_settings_load(path, &s, &ei) != CLC_OK ||
        clc_sync_new(&s, syncer, &ho, &sy, &ei) != CLC_OK) {
        fprintf(stderr, "settings: %s\n", ei.msg);
        goto out;
    }
    struct clc_sync_result res;
    int64_t t0 = clc_mono_ms();
    double c0 = thread_cpu_ms();
    if (clc_sync_pass(sy, &res, &ei) != CLC_OK || res.changed != n) {
        fprintf(stderr, "first pass: %s (changed %d)\n", ei.msg, res.changed);
        goto out;
    }
    printf("first pass (install %d): wall %.1f ms, cpu %.1f ms\n", n, (double)(clc_mono_ms() - t0),
           thread_cpu_ms() - c0);
    double wall = 0, cpu = 0, cpu_max = 0;
    for (int i = 0; i < polls; i++) {
        int64_t w0 = clc_mono_ms();
        double k0 = thread_cpu_ms();
        if (clc_sync_pass(sy, &res, &ei) != CLC_OK || res.unchanged != n) {
            fprintf(stderr, "poll: %s\n", ei.msg);
            goto out;
        }
        double k = thread_cpu_ms() - k0;
        wall += (double)(clc_mono_ms() - w0);
        cpu += k;
        if (k > cpu_max)
            cpu_max = k;
    }
    printf("poll of %d unchanged certificates (%d polls): wall %.1f ms, cpu %.1f ms (max %.1f) "
           "per poll; target cpu <= 50 ms: %s\n",
           n, polls, wall / polls, cpu / polls, cpu_max, cpu / polls <= 50.0 ? "MET" : "SHORT");
    if (certlc) {
        const char *sec = ep("identities", "sync", "client_secret");
        snprintf(secf, sizeof secf, "%s/sync.secret", dir);
        snprintf(cfg, sizeof cfg, "%s/certlc.json", dir);
        char body[1500];
        snprintf(body, sizeof body,
                 "{\"http\": {\"ca_bundle\": \"%s\"}, \"auth\": {\"method\": \"client_secret\","
                 " \"authority_host\": \"%s\", \"tenant_id\": \"%s\", \"client_id\": \"%s\","
                 " \"client_secret_file\": \"%s\"}}",
                 ep("ca_bundle", NULL, NULL), ep("services", "entra", NULL),
                 ep("tenant", NULL, NULL), ep("identities", "sync", "client_id"), secf);
        char logf[300];
        snprintf(logf, sizeof logf, "%s/daemon.log", dir);
        if (clc_file_write_atomic(secf, sec, strlen(sec), 0600, NULL) != CLC_OK ||
            clc_file_write_atomic(cfg, body, strlen(body), 0600, NULL) != CLC_OK)
            goto out;
        long anon = -1, pss = -1;
        long rss = daemon_rss(certlc, cfg, path, logf, &anon, &pss);
        printf("daemon idle RSS after a pass of %d: %.1f MB (private/anonymous %.1f MB, PSS "
               "%.1f MB); target <= 10 MB: %s\n",
               n, rss / 1024.0, anon / 1024.0, pss / 1024.0,
               rss > 0 && rss <= 10 * 1024 ? "MET" : "SHORT");
    }
    rc = 0;
out:
    free(text);
    clc_sync_free(sy);
    clc_sync_settings_cleanup(&s);
    clc_kv_free(kv);
    clc_auth_free(renewer);
    clc_auth_free(syncer);
    cJSON_Delete(endpoints);
    emu_stop(e);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
