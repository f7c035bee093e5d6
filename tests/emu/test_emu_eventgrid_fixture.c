/* Event Grid test fixture (see test_emu_eventgrid_fixture.h): a recording
 * webhook receiver, the emulator, control and publish API helpers, Storage
 * clients for the queue and the dead-letter container. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/secret.h"
#include "emulator/services.h"
#include "emulator/state.h"
#include "emulator/storage.h"
#include "test_emu_eventgrid_fixture.h"

#define MAX_RECS 512
#define MAX_MODES 32
#define REQ_MAX (2 * 1024 * 1024)

struct egfx eg;

/* ---- the receiver ---- */

struct mode {
    char name[32];
    enum egfx_validate v;
    int status;
};

static struct {
    pthread_mutex_t mu;
    pthread_t thread;
    int fd, stop, running;
    struct egfx_rec recs[MAX_RECS];
    size_t nrecs;
    struct mode modes[MAX_MODES];
    size_t nmodes;
} rx = {.mu = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

void egfx_hook_mode(const char *name, enum egfx_validate v, int status)
{
    size_t i;

    pthread_mutex_lock(&rx.mu);
    for (i = 0; i < rx.nmodes && strcmp(rx.modes[i].name, name) != 0; i++)
        ;
    if (i == rx.nmodes && rx.nmodes < MAX_MODES)
        rx.nmodes++;
    if (i < MAX_MODES) {
        snprintf(rx.modes[i].name, sizeof rx.modes[i].name, "%s", name);
        rx.modes[i].v = v;
        rx.modes[i].status = status;
    }
    pthread_mutex_unlock(&rx.mu);
}

static void mode_of(const char *path, struct mode *out)
{
    const char *name = strncmp(path, "/hook/", 6) == 0 ? path + 6 : path;

    out->v = EGFX_VALIDATE_CODE;
    out->status = 200;
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.nmodes; i++)
        if (strcmp(rx.modes[i].name, name) == 0)
            *out = rx.modes[i];
    pthread_mutex_unlock(&rx.mu);
}

/* The value of header name in the raw header block, copied to out. */
static void header(const char *head, const char *name, char *out, size_t n)
{
    size_t len = strlen(name);
    const char *p = strstr(head, "\r\n");

    out[0] = '\0';
    while (p != NULL && p[2] != '\r' && p[2] != '\0') {
        const char *line = p + 2, *end = strstr(line, "\r\n");
        if (end == NULL)
            return;
        if ((size_t)(end - line) > len && strncasecmp(line, name, len) == 0 && line[len] == ':') {
            const char *v = line + len + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(end - v), v);
            return;
        }
        p = end;
    }
}

static void reply(int fd, int status, const char *body)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     status, strlen(body), body);
    if (n > 0 && write(fd, buf, (size_t)n) < 0)
        fprintf(stderr, "receiver: write failed\n");
}

static void handle(int fd)
{
    struct timeval tv = {.tv_sec = 3};
    char *buf = malloc(REQ_MAX + 1), *hend = NULL, cl[32], count[16];
    size_t got = 0, need = 0;
    struct egfx_rec rec;
    struct mode m;

    if (buf == NULL)
        return;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got < REQ_MAX) {
        ssize_t k = read(fd, buf + got, REQ_MAX - got);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
        if (hend == NULL && (hend = strstr(buf, "\r\n\r\n")) != NULL) {
            *hend = '\0';
            header(buf, "Content-Length", cl, sizeof cl);
            need = (size_t)(hend - buf) + 4 + (size_t)strtoul(cl, NULL, 10);
        }
        if (hend != NULL && got >= need)
            break;
    }
    if (hend == NULL) {
        free(buf);
        return;
    }
    memset(&rec, 0, sizeof rec);
    sscanf(buf, "%*s %127s", rec.path);
    header(buf, "aeg-event-type", rec.event_type, sizeof rec.event_type);
    header(buf, "aeg-subscription-name", rec.sub_name, sizeof rec.sub_name);
    header(buf, "aeg-data-version", rec.data_version, sizeof rec.data_version);
    header(buf, "aeg-metadata-version", rec.metadata_version, sizeof rec.metadata_version);
    header(buf, "Content-Type", rec.content_type, sizeof rec.content_type);
    header(buf, "x-certlc-webhook-secret", rec.secret, sizeof rec.secret);
    header(buf, "aeg-delivery-count", count, sizeof count);
    rec.delivery_count = count[0] ? atoi(count) : -1;
    rec.body = strdup(hend + 4);
    mode_of(rec.path, &m);
    if (strcmp(rec.event_type, "SubscriptionValidation") == 0) {
        cJSON *j = cJSON_Parse(rec.body);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(j, 0), "data"), "validationCode");
        char answer[160];
        snprintf(answer, sizeof answer, "{\"validationResponse\":\"%s\"}",
                 m.v == EGFX_VALIDATE_WRONG ? "00000000-0000-0000-0000-000000000000"
                 : cJSON_IsString(code)     ? code->valuestring
                                            : "");
        if (m.v == EGFX_VALIDATE_FAIL)
            reply(fd, 500, "");
        else if (m.v == EGFX_VALIDATE_MANUAL)
            reply(fd, 200, "");
        else
            reply(fd, 200, answer);
        cJSON_Delete(j);
    } else {
        reply(fd, m.status, "");
    }
    pthread_mutex_lock(&rx.mu);
    if (rx.nrecs < MAX_RECS)
        rx.recs[rx.nrecs++] = rec;
    else
        free(rec.body);
    pthread_mutex_unlock(&rx.mu);
    free(buf);
}

static void *rx_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd p = {.fd = rx.fd, .events = POLLIN};
        int stop, fd;

        pthread_mutex_lock(&rx.mu);
        stop = rx.stop;
        pthread_mutex_unlock(&rx.mu);
        if (stop)
            break;
        if (poll(&p, 1, 100) <= 0)
            continue;
        fd = accept(rx.fd, NULL, NULL);
        if (fd < 0)
            continue;
        handle(fd);
        close(fd);
    }
    return NULL;
}

static int rx_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t len = sizeof a;

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    rx.fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rx.fd < 0 || bind(rx.fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(rx.fd, 16) != 0 ||
        getsockname(rx.fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    eg.port = ntohs(a.sin_port);
    snprintf(eg.hook, sizeof eg.hook, "http://127.0.0.1:%d/hook", eg.port);
    rx.stop = 0;
    if (pthread_create(&rx.thread, NULL, rx_main, NULL) != 0)
        return -1;
    rx.running = 1;
    return 0;
}

static void rx_stop(void)
{
    if (rx.running) {
        pthread_mutex_lock(&rx.mu);
        rx.stop = 1;
        pthread_mutex_unlock(&rx.mu);
        pthread_join(rx.thread, NULL);
        rx.running = 0;
    }
    if (rx.fd >= 0)
        close(rx.fd);
    rx.fd = -1;
    for (size_t i = 0; i < rx.nrecs; i++)
        free(rx.recs[i].body);
    rx.nrecs = 0;
    rx.nmodes = 0;
}

static int rec_matches(const struct egfx_rec *r, const char *name, const char *type)
{
    return strncmp(r->path, "/hook/", 6) == 0 && strcmp(r->path + 6, name) == 0 &&
           (type == NULL || strcmp(r->event_type, type) == 0);
}

size_t egfx_count(const char *name, const char *type)
{
    size_t n = 0;

    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.nrecs; i++)
        n += (size_t)rec_matches(&rx.recs[i], name, type);
    pthread_mutex_unlock(&rx.mu);
    return n;
}

void egfx_wait(const char *name, const char *type, size_t want)
{
    int64_t until = clc_mono_ms() + EGFX_WAIT_MS;
    size_t n;

    while ((n = egfx_count(name, type)) < want && clc_mono_ms() < until)
        clc_sleep_ms(5);
    if (n != want)
        fail_msg("/hook/%s: %zu %s requests, expected %zu", name, n, type ? type : "", want);
}

void egfx_get(const char *name, const char *type, size_t idx, struct egfx_rec *out)
{
    size_t n = 0;
    int found = 0;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&rx.mu);
    for (size_t i = 0; i < rx.nrecs && !found; i++) {
        if (rec_matches(&rx.recs[i], name, type) && n++ == idx) {
            *out = rx.recs[i];
            out->body = strdup(rx.recs[i].body ? rx.recs[i].body : "");
            found = 1;
        }
    }
    pthread_mutex_unlock(&rx.mu);
    if (!found)
        fail_msg("/hook/%s: no request #%zu", name, idx);
}

void egfx_rec_free(struct egfx_rec *r)
{
    free(r->body);
    r->body = NULL;
}

/* ---- the emulator ---- */

static int64_t fx_now_ms(void *ctx)
{
    (void)ctx;
    return emu_now_ms(eg.e);
}

static void drop_tokens(void)
{
    for (size_t i = 0; i < eg.ntoks; i++) {
        free(eg.toks[i][0]);
        free(eg.toks[i][1]);
    }
    eg.ntoks = 0;
}

static int start(int64_t at)
{
    struct clc_errinfo ei = {0};
    struct emu_opts o = {
        .data_dir = eg.data_dir, .config_file = eg.config, .quiet = 1, .start_time = at};
    struct clc_http_opts ho = {.timeout_ms = 20000, .clock = &eg.clock};
    struct clc_storage_opts so = {0};
    struct clc_secret *key = NULL;
    char ep[256];

    if (emu_start(&o, &eg.e, &ei) != CLC_OK) {
        fprintf(stderr, "emu_start: %s\n", ei.msg);
        return -1;
    }
    cJSON_Delete(eg.ids);
    eg.ids = emu_directory_endpoints(emu_directory_of(eg.e));
    eg.clock.now_ms = fx_now_ms;
    ho.ca_bundle = emu_ca_bundle(eg.e);
    clc_http_free(eg.http);
    clc_queue_free(eg.queue);
    clc_blob_free(eg.blob);
    clc_storage_cred_free(eg.cred);
    eg.http = NULL;
    eg.queue = NULL;
    eg.blob = NULL;
    eg.cred = NULL;
    drop_tokens();
    if (clc_http_new(&ho, &eg.http, &ei) != CLC_OK ||
        clc_secret_new(EMU_STORAGE_DEV_KEY, strlen(EMU_STORAGE_DEV_KEY), &key) != CLC_OK ||
        clc_storage_cred_shared_key(EGFX_ACCOUNT, key, &eg.cred, &ei) != CLC_OK) {
        clc_secret_free(key);
        fprintf(stderr, "clients: %s\n", ei.msg);
        return -1;
    }
    clc_secret_free(key);
    so.cred = eg.cred;
    so.http = &ho;
    so.clock = &eg.clock;
    so.endpoint = ep;
    snprintf(ep, sizeof ep, "%s/%s", emu_service_url(eg.e, "queue"), EGFX_ACCOUNT);
    if (clc_queue_new(&so, &eg.queue, &ei) != CLC_OK)
        return -1;
    snprintf(ep, sizeof ep, "%s/%s", emu_service_url(eg.e, "blob"), EGFX_ACCOUNT);
    if (clc_blob_new(&so, &eg.blob, &ei) != CLC_OK)
        return -1;
    return 0;
}

static int write_config(const char *json)
{
    struct clc_buf b;
    const char *p = json, *hit;
    FILE *f;
    int ok;

    clc_buf_init(&b, 1 << 20);
    while ((hit = strstr(p, "HOOK")) != NULL) {
        clc_buf_append(&b, p, (size_t)(hit - p));
        clc_buf_append_str(&b, eg.hook);
        p = hit + 4;
    }
    clc_buf_append_str(&b, p);
    f = fopen(eg.config, "w");
    ok = f != NULL && fputs(clc_buf_str(&b), f) >= 0;
    if (f != NULL && fclose(f) != 0)
        ok = 0;
    clc_buf_cleanup(&b);
    return ok ? 0 : -1;
}

int egfx_setup(const char *config_json)
{
    memset(&eg, 0, sizeof eg);
    snprintf(eg.dir, sizeof eg.dir, "/tmp/clc-egemu-XXXXXX");
    if (mkdtemp(eg.dir) == NULL)
        return -1;
    snprintf(eg.data_dir, sizeof eg.data_dir, "%s/data", eg.dir);
    snprintf(eg.config, sizeof eg.config, "%s/config.json", eg.dir);
    if (mkdir(eg.data_dir, 0700) != 0 || rx_start() != 0 || write_config(config_json) != 0)
        return -1;
    return start(0);
}

int egfx_restart(void)
{
    int64_t now = emu_now(eg.e);

    emu_stop(eg.e);
    eg.e = NULL;
    return start(now);
}

int egfx_teardown(void)
{
    char cmd[400];

    emu_stop(eg.e);
    rx_stop();
    clc_http_free(eg.http);
    clc_queue_free(eg.queue);
    clc_blob_free(eg.blob);
    clc_storage_cred_free(eg.cred);
    cJSON_Delete(eg.ids);
    drop_tokens();
    if (strncmp(eg.dir, "/tmp/clc-egemu-", 15) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", eg.dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", eg.dir);
    }
    memset(&eg, 0, sizeof eg);
    return 0;
}

/* ---- requests ---- */

void egr_free(struct egr *r)
{
    cJSON_Delete(r->json);
    r->json = NULL;
    clc_http_resp_cleanup(&r->resp);
}

void egfx_call(const char *method, const char *url, const char *const *headers, const char *ctype,
               const char *body, size_t len, const char *bearer, struct egr *r)
{
    struct clc_errinfo ei = {0};
    struct clc_secret *s = NULL;
    struct clc_http_req req = {.method = method,
                               .url = url,
                               .headers = headers,
                               .body = body,
                               .body_len = len,
                               .content_type = ctype};

    memset(r, 0, sizeof *r);
    if (bearer != NULL) {
        assert_int_equal(clc_secret_new(bearer, strlen(bearer), &s), CLC_OK);
        req.bearer = s;
    }
    clc_http_resp_init(&r->resp);
    if (clc_http_do(eg.http, &req, &r->resp, &ei) != CLC_OK) {
        clc_secret_free(s);
        fail_msg("%s %s: %s", method, url, ei.msg);
    }
    clc_secret_free(s);
    r->status = r->resp.status;
    if (r->resp.body.len > 0)
        clc_json_parse(clc_buf_str(&r->resp.body), r->resp.body.len, 64 << 20, &r->json, NULL);
}

static const char *id_field(const char *name, const char *field)
{
    const cJSON *v =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(eg.ids, name), field);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

const char *egfx_token(const char *identity, const char *scope)
{
    char key[160], url[512];
    struct clc_buf b;
    struct egr r;
    const char *t;

    snprintf(key, sizeof key, "%s %s", identity, scope);
    for (size_t i = 0; i < eg.ntoks; i++)
        if (strcmp(eg.toks[i][0], key) == 0) {
            /* Tokens live an hour of emulator time, which tests advance. */
            int64_t age = emu_now(eg.e) - eg.tok_at[i];
            if (age >= 0 && age < 3000)
                return eg.toks[i][1];
            free(eg.toks[i][0]);
            free(eg.toks[i][1]);
            eg.toks[i][0] = eg.toks[eg.ntoks - 1][0];
            eg.toks[i][1] = eg.toks[eg.ntoks - 1][1];
            eg.tok_at[i] = eg.tok_at[eg.ntoks - 1];
            eg.ntoks--;
            break;
        }
    assert_true(eg.ntoks < sizeof eg.toks / sizeof eg.toks[0]);
    clc_buf_init(&b, 8192);
    clc_buf_appendf(&b, "grant_type=client_credentials&client_id=%s&client_secret=",
                    id_field(identity, "client_id"));
    clc_http_urlencode(&b, id_field(identity, "client_secret"));
    clc_buf_append_str(&b, "&scope=");
    clc_http_urlencode(&b, scope);
    snprintf(url, sizeof url, "%s/%s/oauth2/v2.0/token", emu_service_url(eg.e, "entra"),
             emu_tenant(eg.e));
    egfx_call("POST", url, NULL, "application/x-www-form-urlencoded", clc_buf_str(&b), b.len, NULL,
              &r);
    clc_buf_cleanup(&b);
    eg_expect(&r, 200);
    t = egfx_str(r.json, "access_token");
    assert_non_null(t);
    eg.toks[eg.ntoks][0] = strdup(key);
    eg.toks[eg.ntoks][1] = strdup(t);
    eg.tok_at[eg.ntoks] = emu_now(eg.e);
    egr_free(&r);
    return eg.toks[eg.ntoks++][1];
}

void egfx_admin(const char *method, const char *path, const char *body, struct egr *r)
{
    char url[512];

    snprintf(url, sizeof url, "%s%s", emu_service_url(eg.e, "control"), path);
    egfx_call(method, url, NULL, body ? "application/json" : NULL, body, body ? strlen(body) : 0,
              egfx_token("admin", "api://certlc-emulator/.default"), r);
}

void egfx_publish(const char *topic, const char *key, const char *ctype, const char *body,
                  struct egr *r)
{
    char url[512], h[300];
    const char *headers[] = {h, NULL};

    snprintf(url, sizeof url, "%s/topics/%s/api/events?api-version=2018-01-01",
             emu_service_url(eg.e, "eventgrid"), topic);
    snprintf(h, sizeof h, "aeg-sas-key: %s", key ? key : "");
    egfx_call("POST", url, key ? headers : NULL, ctype, body, strlen(body), NULL, r);
}

void egfx_freeze(void)
{
    struct egr r;

    egfx_admin("PUT", "/control/clock", "{\"frozen\": true}", &r);
    eg_expect(&r, 200);
    egr_free(&r);
}

void egfx_advance(int64_t seconds)
{
    struct egr r;
    char body[64];

    snprintf(body, sizeof body, "{\"advance_seconds\": %lld}", (long long)seconds);
    egfx_admin("PUT", "/control/clock", body, &r);
    eg_expect(&r, 200);
    egr_free(&r);
}

cJSON *egfx_sub(const char *name)
{
    char path[160];
    struct egr r;
    cJSON *out;

    snprintf(path, sizeof path, "/control/eventgrid/subscriptions/%s", name);
    egfx_admin("GET", path, NULL, &r);
    eg_expect(&r, 200);
    out = r.json;
    r.json = NULL;
    egr_free(&r);
    return out;
}

void egfx_wait_state(const char *name, const char *state)
{
    int64_t until = clc_mono_ms() + EGFX_WAIT_MS;
    char got[40] = "";

    do {
        cJSON *s = egfx_sub(name);
        snprintf(got, sizeof got, "%s", egfx_str(s, "provisioning_state"));
        cJSON_Delete(s);
        if (strcmp(got, state) == 0)
            return;
        clc_sleep_ms(10);
    } while (clc_mono_ms() < until);
    fail_msg("subscription %s: state %s, expected %s", name, got, state);
}

void egfx_wait_settled(const char *name, int64_t want)
{
    int64_t until = clc_mono_ms() + EGFX_WAIT_MS, done = 0, pending = 0;

    do {
        cJSON *s = egfx_sub(name);
        done = egfx_int(s, "delivered") + egfx_int(s, "dead_lettered") + egfx_int(s, "dropped");
        pending = egfx_int(s, "pending");
        cJSON_Delete(s);
        if (done >= want && pending == 0)
            break;
        clc_sleep_ms(10);
    } while (clc_mono_ms() < until);
    if (done != want || pending != 0)
        fail_msg("subscription %s: %lld settled, %lld pending; expected %lld settled", name,
                 (long long)done, (long long)pending, (long long)want);
}

static const cJSON *walk(const cJSON *o, const char *path)
{
    char part[64];

    while (o != NULL && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = cJSON_IsArray(o) ? cJSON_GetArrayItem(o, atoi(part))
                             : cJSON_GetObjectItemCaseSensitive(o, part);
        path += n + (path[n] == '.');
    }
    return o;
}

const char *egfx_str(const cJSON *o, const char *path)
{
    const cJSON *v = walk(o, path);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t egfx_int(const cJSON *o, const char *path)
{
    const cJSON *v = walk(o, path);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", path);
    return (int64_t)v->valuedouble;
}

const char *egfx_errdetail(const struct egr *r)
{
    const char *c = egfx_str(r->json, "error.details.0.code");
    return c ? c : "";
}

void egfx_blobs(const char *container, const char *prefix, struct clc_blob_list *out)
{
    struct clc_errinfo ei = {0};

    memset(out, 0, sizeof *out);
    if (clc_blob_list(eg.blob, container, prefix, NULL, 0, out, &ei) != CLC_OK)
        fail_msg("list %s/%s: %s", container, prefix, ei.msg);
}

void egfx_wait_blobs(const char *container, const char *prefix, size_t n)
{
    int64_t until = clc_mono_ms() + EGFX_WAIT_MS;
    size_t got = 0;

    do {
        struct clc_blob_list l;
        egfx_blobs(container, prefix, &l);
        got = l.n;
        clc_blob_list_cleanup(&l);
        if (got == n)
            return;
        clc_sleep_ms(10);
    } while (clc_mono_ms() < until);
    fail_msg("%s/%s: %zu blobs, expected %zu", container, prefix, got, n);
}
