/* Renewal benchmark (ci/bench.sh renew): N certificates (EC P-256) renewed
 * end to end through the emulator, which runs in this process: NearExpiry
 * events on the work queue, then certlc renew --threads T as its own process
 * (queue -> Key Vault -> CA -> merge -> tags -> e-mail -> Log Analytics ->
 * delete), for each T. Reports renewals/s, the worker's CPU per renewal and
 * peak RSS (wait4), and the emulator's CPU per renewal (this process).
 * Targets: >= 200 renewals/s with 2 workers, worker peak RSS <= 16 MB.
 * For profiling: --no-mail, --no-la, --keep (the worker's logs stay) and
 * --wrap 'valgrind --tool=callgrind' (the worker runs under it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "azure/auth.h"
#include "azure/queue.h"
#include "azure/storage_auth.h"
#include "core/b64.h"
#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "emulator/emu.h"
#include "emulator/queue.h"
#include "net/http.h"

#define ACCOUNT "devstoreaccount1"
#define VAULT "certlc"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define TARGET_RATE 200.0
#define TARGET_RSS_KB (16 * 1024)
#define MAX_RUNS 8

static struct emu *emu;
static cJSON *endpoints;
static struct clc_http *http;
static struct clc_auth *admin;
static char dir[] = "/tmp/certlc-bench-renew.XXXXXX";
static int with_mail = 1, with_la = 1;
static const char *wrap; /* e.g. "valgrind --tool=massif" */

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

static int write_file(const char *name, const char *text, char *path, size_t n)
{
    snprintf(path, n, "%s/%s", dir, name);
    return text && clc_file_write_atomic(path, text, strlen(text), 0600, NULL) == CLC_OK ? 0 : -1;
}

/* One request with or without the admin token; the status, -1 on transport failure. */
static long call(const char *method, const char *url, const char *body, int with_token, char **out)
{
    struct clc_secret *tok = NULL;
    struct clc_http_resp resp;
    struct clc_errinfo ei = {0};
    long st = -1;

    if (with_token &&
        clc_auth_token(admin, "api://certlc-emulator/.default", &tok, NULL, &ei) != CLC_OK) {
        fprintf(stderr, "admin token: %s\n", ei.msg);
        return -1;
    }
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .body = body,
                               .body_len = body ? strlen(body) : 0,
                               .content_type = body ? "application/json" : NULL,
                               .bearer = tok};
    clc_http_resp_init(&resp);
    if (clc_http_do(http, &req, &resp, &ei) == CLC_OK) {
        st = resp.status;
        if (out)
            *out = clc_buf_take(&resp.body, NULL);
    } else {
        fprintf(stderr, "%s %s: %s\n", method, url, ei.msg);
    }
    clc_http_resp_cleanup(&resp);
    clc_secret_free(tok);
    return st;
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
    if (clc_auth_new(&ao, ho, &a, NULL) != CLC_OK)
        a = NULL;
    clc_secret_free(sec);
    return a;
}

/* The work and poison queues (Shared Key, as the worker uses them). */
static int make_queues(const struct clc_http_opts *ho)
{
    struct clc_secret *key = NULL;
    struct clc_storage_cred *cred = NULL;
    struct clc_queue *q = NULL;
    struct clc_errinfo ei = {0};
    char url[300];
    int rc = -1;

    snprintf(url, sizeof url, "%s/%s", emu_service_url(emu, "queue"), ACCOUNT);
    struct clc_storage_opts so = {.endpoint = url, .http = ho};
    if (clc_secret_new(DEV_KEY, strlen(DEV_KEY), &key) != CLC_OK ||
        clc_storage_cred_shared_key(ACCOUNT, key, &cred, &ei) != CLC_OK)
        goto out;
    so.cred = cred;
    if (clc_queue_new(&so, &q, &ei) != CLC_OK ||
        clc_queue_create(q, "certlc", NULL, NULL, &ei) != CLC_OK ||
        clc_queue_create(q, "certlc-poison", NULL, NULL, &ei) != CLC_OK)
        goto out;
    rc = 0;
out:
    if (rc)
        fprintf(stderr, "queues: %s\n", ei.msg);
    clc_queue_free(q);
    clc_storage_cred_free(cred);
    clc_secret_free(key);
    return rc;
}

/* certlc's configuration: Shared Key queue, the AD CS-like CA (Basic),
 * e-mail over SMTPS and the renewal log, as in production. */
static int write_config(char *cfg, size_t n)
{
    char pw[400], root[400], key[400], smtp[400], sec[400], url[400];
    char *rootpem = NULL;
    const cJSON *dcrs =
        cJSON_GetObjectItem(cJSON_GetObjectItem(endpoints, "log_analytics"), "dcrs");
    int rc = -1;

    snprintf(url, sizeof url, "%s/CertEnroll/certlc-root-ca.crt?Enc=b64",
             emu_service_url(emu, "ca"));
    if (call("GET", url, NULL, 0, &rootpem) != 200 ||
        write_file("root.pem", rootpem, root, sizeof root) ||
        write_file("ca-password", ep("ca_accounts", "renewer", NULL), pw, sizeof pw) ||
        write_file("queue-key", DEV_KEY, key, sizeof key) ||
        write_file("smtp.password", ep("smtp_accounts", "certlc", NULL), smtp, sizeof smtp) ||
        write_file("renewer.secret", ep("identities", "renewer", "client_secret"), sec, sizeof sec))
        goto out;
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "log"), "level", "info");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(c, "http"), "ca_bundle", emu_ca_bundle(emu));
    cJSON *auth = cJSON_AddObjectToObject(c, "auth");
    cJSON_AddStringToObject(auth, "method", "client_secret");
    cJSON_AddStringToObject(auth, "authority_host", ep("services", "entra", NULL));
    cJSON_AddStringToObject(auth, "tenant_id", ep("tenant", NULL, NULL));
    cJSON_AddStringToObject(auth, "client_id", ep("identities", "renewer", "client_id"));
    cJSON_AddStringToObject(auth, "client_secret_file", sec);
    cJSON *kv = cJSON_AddObjectToObject(c, "keyvault");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(kv, "vaults"), VAULT,
                            ep("services", "keyvault", VAULT));
    cJSON_AddBoolToObject(kv, "verify_challenge_resource", 0);
    cJSON *corp = cJSON_AddObjectToObject(cJSON_AddObjectToObject(c, "ca"), "corp");
    snprintf(url, sizeof url, "%s/certsrv", emu_service_url(emu, "ca"));
    cJSON_AddStringToObject(corp, "type", "adcs");
    cJSON_AddStringToObject(corp, "url", url);
    cJSON_AddStringToObject(corp, "auth", "basic");
    cJSON_AddStringToObject(corp, "username", "renewer");
    cJSON_AddStringToObject(corp, "password_file", pw);
    cJSON_AddStringToObject(corp, "trust_anchors", root);
    cJSON *renew = cJSON_AddObjectToObject(c, "renew");
    cJSON *q = cJSON_AddObjectToObject(renew, "queue");
    snprintf(url, sizeof url, "%s/%s", emu_service_url(emu, "queue"), ACCOUNT);
    cJSON_AddStringToObject(q, "url", url);
    cJSON_AddStringToObject(q, "auth", "shared_key");
    cJSON_AddStringToObject(q, "account", ACCOUNT);
    cJSON_AddStringToObject(q, "key_file", key);
    cJSON_AddStringToObject(renew, "default_ca", "corp");
    cJSON_AddStringToObject(renew, "default_template", "WebServer");
    if (with_mail) {
        cJSON *sm = cJSON_AddObjectToObject(c, "smtp");
        cJSON_AddStringToObject(sm, "url", ep("smtp", "smtps_url", NULL));
        cJSON_AddStringToObject(sm, "from", "certlc <certlc@certlc.test>");
        cJSON_AddStringToObject(sm, "username", "certlc");
        cJSON_AddStringToObject(sm, "password_file", smtp);
    }
    if (with_la) {
        cJSON *la = cJSON_AddObjectToObject(c, "loganalytics");
        cJSON_AddStringToObject(la, "endpoint", emu_service_url(emu, "loganalytics"));
        cJSON_AddStringToObject(
            la, "dcr_id",
            cJSON_GetStringValue(cJSON_GetObjectItem(dcrs, "Custom-CertlcRenewal_CL")));
    }
    char *text = cJSON_Print(c);
    cJSON_Delete(c);
    rc = write_file("certlc.json", text, cfg, n);
    free(text);
out:
    free(rootpem);
    return rc;
}

/* Seeds n due certificates prefix-0000.. (EC P-256, 10 days left of a
 * year, one recipient) and puts a NearExpiry event for each on the queue,
 * base64 as Event Grid writes it. */
static int seed(const char *prefix, int n)
{
    char url[400], name[64], body[512], json[2048];
    int64_t now = emu_now_ms(emu) / 1000;
    struct clc_errinfo ei = {0};

    snprintf(url, sizeof url, "%s/control/keyvault/%s/seed", ep("services", "control", NULL),
             VAULT);
    for (int i = 0; i < n; i++) {
        char *resp = NULL, *b64 = NULL;
        size_t len = 0;
        snprintf(name, sizeof name, "%s-%04d", prefix, i);
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"sans\":[\"%s.contoso.test\"],\"key\":{\"kty\":\"EC\","
                 "\"crv\":\"P-256\"},\"not_before\":%lld,\"not_after\":%lld,"
                 "\"tags\":{\"Recipient\":\"owner-%d@contoso.test\"}}",
                 name, name, (long long)(now - 355 * 86400), (long long)(now + 10 * 86400), i);
        if (call("POST", url, body, 1, &resp) != 201) {
            fprintf(stderr, "seed %s: %s\n", name, resp ? resp : "");
            free(resp);
            return -1;
        }
        cJSON *j = cJSON_Parse(resp);
        free(resp);
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "id"));
        const cJSON *at = cJSON_GetObjectItem(j, "attributes");
        const char *ver = id ? strrchr(id, '/') : NULL;
        if (!ver) {
            cJSON_Delete(j);
            return -1;
        }
        snprintf(json, sizeof json,
                 "{\"id\":\"%s-ev-%d\",\"topic\":\"/subscriptions/0/resourceGroups/rg/providers/"
                 "Microsoft.KeyVault/vaults/%s\",\"subject\":\"%s\","
                 "\"eventType\":\"Microsoft.KeyVault.CertificateNearExpiry\","
                 "\"eventTime\":\"2026-01-01T00:00:00Z\",\"data\":{\"Id\":\"%s\","
                 "\"VaultName\":\"%s\",\"ObjectType\":\"Certificate\",\"ObjectName\":\"%s\","
                 "\"Version\":\"%s\",\"NBF\":%lld,\"EXP\":%lld},\"dataVersion\":\"1\","
                 "\"metadataVersion\":\"1\"}",
                 prefix, i, VAULT, name, id, VAULT, name, ver + 1,
                 (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(at, "nbf")),
                 (long long)cJSON_GetNumberValue(cJSON_GetObjectItem(at, "exp")));
        cJSON_Delete(j);
        int bad = clc_b64_encode(json, strlen(json), &b64, &len) != CLC_OK ||
                  emu_queue_put_message(emu, ACCOUNT, "certlc", b64, len, -1, &ei) != CLC_OK;
        free(b64);
        if (bad) {
            fprintf(stderr, "event %s: %s\n", name, ei.msg);
            return -1;
        }
    }
    return 0;
}

static double cpu_ms(const struct rusage *r)
{
    return (double)(r->ru_utime.tv_sec + r->ru_stime.tv_sec) * 1000.0 +
           (double)(r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1000.0;
}

/* RssAnon of a live process (kB), -1 when gone. */
static long rss_anon_kb(pid_t pid)
{
    char path[64], line[256];
    long v = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "RssAnon:", 8))
            v = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

struct run {
    int threads, renewed;
    double wall_s, worker_cpu_ms, emu_cpu_ms;
    long maxrss_kb, anon_peak_kb;
};

/* The launcher (bench_renew --spawn FILE CMD...): a fresh, small process
 * that runs CMD, samples its private memory every 20 ms and writes its
 * rusage to FILE. Why not fork the worker from here: Linux carries a
 * process's peak RSS across exec, so a worker forked from this program
 * (the emulator with thousands of certificates) would report this
 * program's memory as its own. */
static int spawn_main(const char *file, char **argv)
{
    struct rusage ru;
    int status = 0;
    long anon = 0;
    pid_t pid = fork();

    if (pid < 0)
        return 127;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* the benchmark gave up: so do we */
        execvp(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        pid_t got = wait4(pid, &status, WNOHANG, &ru);
        if (got == pid)
            break;
        if (got < 0)
            return 127;
        long a = rss_anon_kb(pid);
        if (a > anon)
            anon = a;
        clc_sleep_ms(20);
    }
    FILE *f = fopen(file, "w");
    if (!f)
        return 127;
    fprintf(f, "%ld %.3f %ld\n", ru.ru_maxrss, cpu_ms(&ru), anon);
    fclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 127;
}

/* certlc renew --threads T in its own process (through the launcher):
 * wall time, its CPU time and peak RSS, its private memory. */
static int run_worker(const char *certlc, const char *cfg, int threads, int n, struct run *r)
{
    char out[400], log[400], usage[400], arg[16], *text = NULL;
    struct rusage self0, self1;
    int status = 0;

    snprintf(out, sizeof out, "%s/renew-%d.out", dir, threads);
    snprintf(log, sizeof log, "%s/renew-%d.log", dir, threads);
    snprintf(usage, sizeof usage, "%s/renew-%d.rusage", dir, threads);
    snprintf(arg, sizeof arg, "%d", threads);
    memset(r, 0, sizeof *r);
    r->threads = threads;
    getrusage(RUSAGE_SELF, &self0);
    int64_t t0 = clc_mono_ms();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (!freopen(out, "w", stdout) || !freopen(log, "w", stderr))
            _exit(127);
        /* --wrap runs the worker under a profiler (words split on blanks). */
        char *argv[40], wbuf[512];
        int k = 0;
        argv[k++] = "/proc/self/exe";
        argv[k++] = "--spawn";
        argv[k++] = usage;
        snprintf(wbuf, sizeof wbuf, "%s", wrap ? wrap : "");
        for (char *t = strtok(wbuf, " "); t && k < 28; t = strtok(NULL, " "))
            argv[k++] = t;
        argv[k++] = (char *)certlc;
        argv[k++] = "--config";
        argv[k++] = (char *)cfg;
        argv[k++] = "renew";
        argv[k++] = "--threads";
        argv[k++] = arg;
        argv[k] = NULL;
        execv(argv[0], argv);
        _exit(127);
    }
    for (;;) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        if (clc_mono_ms() - t0 > 600000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "certlc renew --threads %d: killed after 10 minutes\n", threads);
            return -1;
        }
        clc_sleep_ms(5);
    }
    r->wall_s = (double)(clc_mono_ms() - t0) / 1000.0;
    getrusage(RUSAGE_SELF, &self1);
    r->emu_cpu_ms = cpu_ms(&self1) - cpu_ms(&self0);
    if (clc_file_read(usage, 1024, &text, NULL, NULL) == CLC_OK)
        sscanf(text, "%ld %lf %ld", &r->maxrss_kb, &r->worker_cpu_ms, &r->anon_peak_kb);
    free(text);
    text = NULL;
    if (clc_file_read(out, 1 << 16, &text, NULL, NULL) == CLC_OK) {
        const char *p = strstr(text, "renewed ");
        r->renewed = p ? atoi(p + 8) : 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || r->renewed != n) {
        char *l = NULL;
        clc_file_read(log, 1 << 20, &l, NULL, NULL);
        fprintf(stderr, "certlc renew --threads %d: status %d, %s\n%.4000s\n", threads, status,
                text ? text : "(no output)", l ? l : "");
        free(l);
        free(text);
        return -1;
    }
    free(text);
    return 0;
}

int main(int argc, char **argv)
{
    int n = 1000, nruns = 0, rc = 1, threads[MAX_RUNS], keep = 0, bad = 0;
    const char *certlc = NULL, *tlist = "1,2,4";
    char cfg[400], *text = NULL;
    struct clc_errinfo ei = {0};
    struct run runs[MAX_RUNS];

    if (argc >= 4 && !strcmp(argv[1], "--spawn"))
        return spawn_main(argv[2], argv + 3);

    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--keep"))
            keep = 1; /* the worker's logs stay in the work dir, for profiling */
        else if (!strcmp(argv[i], "--certs") && v)
            n = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && v)
            tlist = argv[++i];
        else if (!strcmp(argv[i], "--certlc") && v)
            certlc = argv[++i];
        else if (!strcmp(argv[i], "--no-mail"))
            with_mail = 0; /* for profiling: what the e-mail costs */
        else if (!strcmp(argv[i], "--no-la"))
            with_la = 0;
        else if (!strcmp(argv[i], "--wrap") && v)
            wrap = argv[++i];
        else
            bad = 1;
    }
    for (const char *p = tlist; *p && nruns < MAX_RUNS; p += strcspn(p, ","), p += *p == ',') {
        threads[nruns] = atoi(p);
        if (threads[nruns] < 1 || threads[nruns] > 64)
            return 2;
        nruns++;
    }
    if (bad || n < 1 || n > 5000 || !certlc || nruns == 0 || !mkdtemp(dir)) {
        fprintf(stderr, "usage: bench_renew --certlc PATH [--certs N] [--threads 1,2,4] [--keep] "
                        "[--no-mail] [--no-la] [--wrap 'PROFILER ARGS']\n");
        return 2;
    }
    clc_log_setup(CLC_LOG_WARN, CLC_LOG_TEXT, stderr);
    struct emu_opts o = {.quiet = 1};
    if (emu_start(&o, &emu, &ei) != CLC_OK || emu_endpoints_json(emu, &text, &ei) != CLC_OK) {
        fprintf(stderr, "emulator: %s\n", ei.msg);
        goto out;
    }
    endpoints = cJSON_Parse(text);
    struct clc_http_opts ho = {.ca_bundle = emu_ca_bundle(emu), .timeout_ms = 30000};
    if (!endpoints || !(admin = auth_for("admin", &ho)) ||
        clc_http_new(&ho, &http, &ei) != CLC_OK || make_queues(&ho) != 0 ||
        write_config(cfg, sizeof cfg) != 0) {
        fprintf(stderr, "set-up failed %s\n", ei.msg);
        goto out;
    }
    printf("renew benchmark: %d certificates (EC P-256) per run, certlc renew as its own "
           "process, emulator in the benchmark process; e-mail %s, Log Analytics %s\n",
           n, with_mail ? "on" : "OFF", with_la ? "on" : "OFF");
    for (int i = 0; i < nruns; i++) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "w%d", threads[i]);
        int64_t s0 = clc_mono_ms();
        if (seed(prefix, n) != 0)
            goto out;
        printf("  seeded %d certificates and events in %.1f s\n", n,
               (double)(clc_mono_ms() - s0) / 1000.0);
        fflush(stdout);
        if (run_worker(certlc, cfg, threads[i], n, &runs[i]) != 0)
            goto out;
    }
    printf("%-8s %9s %8s %12s %16s %16s %14s %15s\n", "workers", "renewed", "wall s", "renewals/s",
           "worker cpu ms/r", "emu cpu ms/r", "worker RSS MB", "private MB");
    double rate2 = -1;
    long rss_max = 0;
    for (int i = 0; i < nruns; i++) {
        const struct run *r = &runs[i];
        double rate = r->renewed / r->wall_s;
        if (r->threads == 2)
            rate2 = rate;
        if (r->maxrss_kb > rss_max)
            rss_max = r->maxrss_kb;
        printf("%-8d %9d %8.2f %12.1f %16.2f %16.2f %14.1f %15.1f\n", r->threads, r->renewed,
               r->wall_s, rate, r->worker_cpu_ms / r->renewed, r->emu_cpu_ms / r->renewed,
               r->maxrss_kb / 1024.0, r->anon_peak_kb / 1024.0);
    }
    if (rate2 >= 0)
        printf("target >= %.0f renewals/s with 2 workers: %.1f %s\n", TARGET_RATE, rate2,
               rate2 >= TARGET_RATE ? "PASS" : "SHORT");
    printf("target worker peak RSS <= %d MB: %.1f MB %s\n", TARGET_RSS_KB / 1024, rss_max / 1024.0,
           rss_max <= TARGET_RSS_KB ? "PASS" : "SHORT");
    rc = 0;
out:
    free(text);
    clc_http_free(http);
    clc_auth_free(admin);
    cJSON_Delete(endpoints);
    emu_stop(emu);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (keep)
        printf("work dir kept: %s\n", dir);
    else if (system(cmd) != 0)
        rc = 1;
    return rc;
}
