/* The emulator's HTTP layer over civetweb: one listener per service and
 * request dispatch (decoded path, bounded body, fault injection, routing).
 * Replies and the access log are in reply.c. */
#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/emu_internal.h"
#include "emulator/request.h"
#include "emulator/state.h"

#define READ_CHUNK 16384
/* Body bytes over the limit read and dropped to answer 413 cleanly. */
#define DRAIN_MAX ((size_t)4 * 1024 * 1024)
/* How long stopping keeps waking civetweb before it just waits for it. */
#define STOP_POKE_MS 3000

/* ---- request ids ---- */

/* Request ids are random UUIDs. Drawing 16 bytes from the CSPRNG for each
 * request was ~6% of a queue request's CPU (locks and a DRBG call each
 * time), so each civetweb worker thread draws them in batches. */
#define RID_BATCH 64
static _Thread_local unsigned char rid_pool[RID_BATCH][16];
static _Thread_local size_t rid_next = RID_BATCH;

static void request_id(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char *b;
    size_t j = 0;

    if (rid_next == RID_BATCH) {
        if (clc_rand_bytes(rid_pool, sizeof rid_pool) != CLC_OK) {
            clc_rand_uuid(out);
            return;
        }
        rid_next = 0;
    }
    b = rid_pool[rid_next++];
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex[b[i] >> 4];
        out[j++] = hex[b[i] & 0xf];
    }
    out[j] = '\0';
}

/* ---- connections ---- */

/* Each accepted TCP connection gets a number no other connection of this
 * process ever gets (civetweb reuses its connection objects and the peer
 * may reuse a port), so connection-bound state (NTLM) can be keyed by it. */
static _Atomic uint64_t conn_serial;

static int on_init_connection(const struct mg_connection *conn, void **conn_data)
{
    (void)conn;
    *conn_data = (void *)(uintptr_t)(atomic_fetch_add(&conn_serial, 1) + 1);
    return 0;
}

uint64_t emu_req_conn_id(const struct emu_req *r)
{
    return (uint64_t)(uintptr_t)mg_get_user_connection_data(emu_cpriv(r)->conn);
}

/* ---- dispatch ---- */

/* Reads and drops up to limit more body bytes; 1 when the body ended. */
static int discard_body(struct emu_req_priv *pr, size_t limit)
{
    char chunk[READ_CHUNK];
    size_t total = 0;

    while (total <= limit) {
        int n = mg_read(pr->conn, chunk, sizeof chunk);
        if (n <= 0)
            return n == 0;
        total += (size_t)n;
    }
    return 0;
}

/* Reads the body into pr->body. Returns 0, 400 when the body could not be
 * read to its end, or 413 when over the limit. An
 * oversized body is never stored. A modest excess is read and dropped, so
 * that a client still sending gets the 413 rather than a reset connection;
 * a large one, or one the client holds back for "100 Continue", is not read
 * at all, and the connection closes after the reply. */
static int read_body(struct emu_req_priv *pr, size_t max)
{
    const char *te = emu_req_header(&pr->pub, "Transfer-Encoding");
    const char *expect = emu_req_header(&pr->pub, "Expect");
    int waits = expect != NULL && strcasecmp(expect, "100-continue") == 0;
    long long cl = pr->ri->content_length;
    char chunk[READ_CHUNK];

    clc_buf_init(&pr->body, max);
    if (cl >= 0 && (unsigned long long)cl > max) {
        if (waits || (unsigned long long)cl - max > DRAIN_MAX || !discard_body(pr, DRAIN_MAX))
            pr->close_after = 1;
        return 413;
    }
    /* Without Content-Length or chunking an HTTP/1.1 request has no body. */
    if (cl <= 0 && (te == NULL || strcasecmp(te, "identity") == 0))
        return 0;
    for (;;) {
        int n = mg_read(pr->conn, chunk, sizeof chunk);
        if (n < 0) {
            pr->close_after = 1;
            return 400;
        }
        if (n == 0)
            break;
        if (clc_buf_append(&pr->body, chunk, (size_t)n) != CLC_OK) {
            if (!discard_body(pr, DRAIN_MAX))
                pr->close_after = 1;
            return 413;
        }
    }
    return 0;
}

static void apply_fault(struct emu_req_priv *pr, const struct emu_fault_hit *hit)
{
    struct emu_req *r = &pr->pub;
    char line[64];

    if (hit->latency_ms > 0)
        clc_sleep_ms(hit->latency_ms);
    if (hit->action == EMU_FAULT_DROP) {
        emu_req_drop(r);
    } else if (hit->action == EMU_FAULT_STATUS) {
        if (hit->retry_after_s >= 0) {
            snprintf(line, sizeof line, "Retry-After: %lld", (long long)hit->retry_after_s);
            emu_req_add_reply_header(r, line);
        }
        emu_reply_error(r, hit->status, hit->code[0] ? hit->code : "InjectedFault",
                        hit->message[0] ? hit->message : "fault injected by the emulator");
    }
}

static void dispatch(struct emu_req_priv *pr)
{
    struct emu_req *r = &pr->pub;
    struct emu_listener *l = pr->l;
    const struct emu_route *route = NULL;
    struct emu_fault_hit hit;
    char msg[160];
    int st;

    if (pr->raw_path == NULL || pr->raw_path[0] != '/') {
        emu_reply_error(r, 400, "InvalidUri", "the request target must be a path");
        return;
    }
    pr->path_buf = emu_pct_decode_dup(pr->raw_path, strlen(pr->raw_path), 0);
    if (pr->path_buf == NULL) {
        emu_reply_error(r, 400, "InvalidUri", "malformed percent-encoding in the request path");
        return;
    }
    r->path = pr->path_buf;
    st = read_body(pr, l->emu->max_body_bytes);
    /* Unread body bytes would be taken for the next request. */
    if (pr->close_after)
        mg_disable_keep_alive(pr->conn);
    if (st == 413) {
        snprintf(msg, sizeof msg, "the request body exceeds %zu bytes", l->emu->max_body_bytes);
        emu_reply_error(r, 413, "RequestBodyTooLarge", msg);
        return;
    }
    if (st == 400) {
        emu_reply_error(r, 400, "InvalidRequestContent", "the request body ended early");
        return;
    }
    r->body = clc_buf_str(&pr->body);
    r->body_len = pr->body.len;

    emu_faults_match(l->emu->faults, l->def->name, r->method, r->path, &hit);
    if (hit.action != EMU_FAULT_NONE) {
        apply_fault(pr, &hit);
        if (hit.action != EMU_FAULT_DELAY)
            return;
    }

    st = emu_route_find(r, l->def->routes, l->def->nroutes, &route);
    if (st == 404) {
        snprintf(msg, sizeof msg, "no such resource: %.120s", pr->raw_path);
        emu_reply_error(r, 404, "NotFound", msg);
        return;
    }
    if (st == 405) {
        snprintf(msg, sizeof msg, "method %.16s is not allowed here", r->method);
        emu_reply_error(r, 405, "MethodNotAllowed", msg);
        return;
    }
    route->fn(r);
    if (r->status == 0 && !pr->dropped) {
        clc_log(CLC_LOG_ERROR, "emu.reply.missing", CLC_LS("service", l->key),
                CLC_LS("request_id", r->request_id));
        emu_reply_error(r, 500, "InternalError", "the emulator's handler sent no reply");
    }
}

static int on_request(struct mg_connection *conn, void *cbdata)
{
    struct emu_listener *l = cbdata;
    struct emu_req_priv pr;
    int status;

    memset(&pr, 0, offsetof(struct emu_req_priv, core_headers));
    pr.t0 = l->emu->quiet ? 0 : clc_mono_ms(); /* for the access log alone */
    pr.l = l;
    pr.conn = conn;
    pr.ri = mg_get_request_info(conn);
    pr.raw_path = pr.ri->local_uri_raw;
    pr.pub.emu = l->emu;
    pr.pub.svc = l->def;
    pr.pub.svc_ctx = l->ctx;
    pr.pub.conn = conn;
    pr.pub.method = pr.ri->request_method;
    pr.pub.path = "";
    pr.pub.query = pr.ri->query_string;
    pr.pub.body = "";
    request_id(pr.pub.request_id);
    clc_buf_init(&pr.body, 0);

    dispatch(&pr);
    status = pr.pub.status;
    emu_req_clear_params(&pr.pub);
    free(pr.path_buf);
    clc_buf_cleanup(&pr.body);
    /* civetweb wants 1..999 for "handled"; a dropped request has no status. */
    return status > 0 ? status : 1;
}

/* The services authenticate requests themselves. Without an auth handler
 * civetweb looks for a per-directory ".htpasswd" under its (unset) document
 * root on every request: a stat("/.htpasswd") each time, and Digest auth
 * demanded of every client should such a file ever exist. */
static int on_authorize(struct mg_connection *conn, void *cbdata)
{
    (void)conn;
    (void)cbdata;
    return 1;
}

static int on_log_message(const struct mg_connection *conn, const char *message)
{
    char line[256];
    size_t n;

    (void)conn;
    /* civetweb's messages can quote request lines; cut at the query. */
    snprintf(line, sizeof line, "%s", message ? message : "");
    n = strcspn(line, "?\r\n");
    line[n] = '\0';
    clc_log(CLC_LOG_DEBUG, "emu.civetweb", CLC_LS("message", line));
    return 1;
}

/* ---- listeners ---- */

static int key_ok(const char *key)
{
    size_t n = 0, slashes = 0;

    for (; key[n] != '\0'; n++) {
        char c = key[n];
        if (c == '/') {
            if (n == 0 || key[n + 1] == '\0' || ++slashes > 1)
                return 0;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
            return 0;
        }
    }
    return n > 0 && n < EMU_KEY_MAX;
}

/* Equal keys clash, and so do "a" and "a/b": the endpoints document could
 * not hold both a URL and an object under "a". */
static int keys_clash(const char *a, const char *b)
{
    size_t na = strcspn(a, "/"), nb = strcspn(b, "/");

    if (strcmp(a, b) == 0)
        return 1;
    if ((a[na] == '\0') == (b[nb] == '\0'))
        return 0; /* both plain (and different) or both nested */
    return na == nb && strncmp(a, b, na) == 0;
}

static enum clc_err start_listener(struct emu *e, struct emu_listener *l, int port,
                                   struct clc_errinfo *ei)
{
    char ports[32], errtext[256] = "";
    unsigned errcode = 0;
    struct mg_callbacks cb;
    struct mg_init_data init;
    struct mg_error_data err;
    struct mg_server_port sp[2];
    int https = !l->def->plain_http;
    const char *opts[32];
    size_t k = 0;
    int n;

    snprintf(ports, sizeof ports, "127.0.0.1:%d%s", port, https ? "s" : "");
    opts[k++] = "listening_ports";
    opts[k++] = ports;
    if (https) {
        opts[k++] = "ssl_certificate";
        opts[k++] = e->server_pem;
        opts[k++] = "ssl_protocol_version";
        opts[k++] = "4"; /* TLS 1.2 and later */
    }
    if (https && l->def->client_cert) {
        /* "optional": requested, not required; what is sent must verify.
         * Only the service's bundle is trusted, never the system store. */
        opts[k++] = "ssl_verify_peer";
        opts[k++] = "optional";
        opts[k++] = "ssl_ca_file";
        opts[k++] = l->def->client_ca_file(l->ctx);
        opts[k++] = "ssl_default_verify_paths";
        opts[k++] = "no";
    }
    /* Without TCP_NODELAY each keep-alive response waits ~44 ms (Nagle
     * against delayed ACK). */
    opts[k++] = "tcp_nodelay";
    opts[k++] = "1";
    /* civetweb holds a worker per keep-alive connection. */
    opts[k++] = "num_threads";
    opts[k++] = "16";
    opts[k++] = "enable_keep_alive";
    opts[k++] = "yes";
    opts[k++] = "keep_alive_timeout_ms";
    opts[k++] = "2000";
    opts[k++] = "request_timeout_ms";
    opts[k++] = "30000";
    /* We decode the path ourselves, strictly, and route on raw segments. */
    opts[k++] = "decode_url";
    opts[k++] = "no";
    opts[k++] = NULL;

    memset(&cb, 0, sizeof cb);
    cb.log_message = on_log_message;
    cb.init_connection = on_init_connection;
    init.callbacks = &cb;
    init.user_data = l;
    init.configuration_options = opts;
    err.code = &errcode;
    err.text = errtext;
    err.text_buffer_size = sizeof errtext;
    l->mg = mg_start2(&init, &err);
    if (l->mg == NULL)
        return clc_errf(ei, CLC_ERR_NET, "service %s: cannot listen on %s: %s", l->key, ports,
                        errtext[0] ? errtext : "civetweb refused to start");
    mg_set_auth_handler(l->mg, "/", on_authorize, NULL);
    mg_set_request_handler(l->mg, "/", on_request, l);
    n = mg_get_server_ports(l->mg, 2, sp);
    if (n < 1 || sp[0].port <= 0)
        return clc_errf(ei, CLC_ERR_INTERNAL, "service %s: no listening port", l->key);
    l->port = sp[0].port;
    snprintf(l->url, sizeof l->url, "%s://127.0.0.1:%d", https ? "https" : "http", l->port);
    return CLC_OK;
}

enum clc_err emu_service_add(struct emu *e, const char *key, const struct emu_service_def *def,
                             int port, void *ctx, struct clc_errinfo *ei)
{
    struct emu_listener *l = NULL;
    enum clc_err rc;

    if (key == NULL || !key_ok(key))
        return clc_errf(ei, CLC_ERR_INVALID, "service key '%s' is not [a-z0-9-] with one '/'",
                        key ? key : "(null)");
    if (def == NULL || def->name == NULL || (def->nroutes > 0 && def->routes == NULL))
        return clc_errf(ei, CLC_ERR_INVALID, "service %s: incomplete definition", key);
    if (port < 0 || port > 65535)
        return clc_errf(ei, CLC_ERR_INVALID, "service %s: port %d out of range", key, port);
    if (!def->plain_http && e->server_pem == NULL)
        return clc_errf(ei, CLC_ERR_INTERNAL, "service %s: TLS is not set up", key);
    if (def->client_cert != 0 &&
        (def->client_cert != 1 || def->plain_http || def->client_ca_file == NULL ||
         def->client_ca_file(ctx) == NULL || access(def->client_ca_file(ctx), R_OK) != 0))
        return clc_errf(ei, CLC_ERR_INVALID,
                        "service %s: client certificates need https and a readable CA file", key);

    pthread_mutex_lock(&e->listeners_mu);
    for (size_t i = 0; i < e->nlisteners; i++) {
        if (keys_clash(e->listeners[i]->key, key)) {
            pthread_mutex_unlock(&e->listeners_mu);
            return clc_errf(ei, CLC_ERR_CONFLICT, "service %s clashes with running service %s", key,
                            e->listeners[i]->key);
        }
    }
    if (e->nlisteners == EMU_MAX_LISTENERS) {
        pthread_mutex_unlock(&e->listeners_mu);
        return clc_errf(ei, CLC_ERR_LIMIT, "at most %d services", EMU_MAX_LISTENERS);
    }
    /* The slot is taken before civetweb starts so a concurrent add of the
     * same key cannot slip in; its URL stays empty until it listens. */
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        pthread_mutex_unlock(&e->listeners_mu);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    l->emu = e;
    l->def = def;
    l->ctx = ctx;
    snprintf(l->key, sizeof l->key, "%s", key);
    e->listeners[e->nlisteners++] = l;
    pthread_mutex_unlock(&e->listeners_mu);

    rc = start_listener(e, l, port, ei);
    if (rc != CLC_OK) {
        pthread_mutex_lock(&e->listeners_mu);
        for (size_t i = 0; i < e->nlisteners; i++) {
            if (e->listeners[i] == l) {
                memmove(&e->listeners[i], &e->listeners[i + 1],
                        (e->nlisteners - i - 1) * sizeof e->listeners[0]);
                e->nlisteners--;
                break;
            }
        }
        pthread_mutex_unlock(&e->listeners_mu);
        if (l->mg != NULL)
            mg_stop(l->mg);
        free(l);
        return rc;
    }
    clc_log(CLC_LOG_DEBUG, "emu.listen", CLC_LS("service", key), CLC_LS("url", l->url));
    return CLC_OK;
}

const char *emu_service_url(const struct emu *e, const char *service)
{
    struct emu *me = (struct emu *)e;
    const char *url = NULL;

    if (service == NULL)
        return NULL;
    pthread_mutex_lock(&me->listeners_mu);
    for (size_t i = 0; i < me->nlisteners; i++) {
        if (strcmp(me->listeners[i]->key, service) == 0 && me->listeners[i]->url[0] != '\0') {
            url = me->listeners[i]->url;
            break;
        }
    }
    pthread_mutex_unlock(&me->listeners_mu);
    return url;
}

struct stopper {
    struct mg_context *mg;
    int port;
    pthread_t th;
    int started;
    atomic_int done;
};

static void *stop_thread(void *arg)
{
    struct stopper *s = arg;

    mg_stop(s->mg);
    atomic_store(&s->done, 1);
    return NULL;
}

/* A connection to the listener: wakes civetweb's idle workers, which
 * otherwise notice the stop only ~2 s later. */
static void poke(int port)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)connect(fd, (struct sockaddr *)&sa, sizeof sa);
    close(fd);
}

/* Shuts down every accepted connection of the listeners on ports[]: a
 * worker waiting on an idle keep-alive connection otherwise holds mg_stop
 * for the whole keep-alive timeout. civetweb has no API for this, so the
 * sockets are found by address (local 127.0.0.1:port, connected); shutdown
 * wakes the worker, which then closes the socket itself. */
static void cut_connections(const int *ports, size_t n)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *de;

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        struct sockaddr_in local, peer;
        socklen_t ll = sizeof local, pl = sizeof peer;
        char *end = NULL;
        long fd = strtol(de->d_name, &end, 10);

        if (end == de->d_name || *end != '\0' || fd < 0 || fd == dirfd(d))
            continue;
        if (getsockname((int)fd, (struct sockaddr *)&local, &ll) != 0 ||
            local.sin_family != AF_INET || ll != sizeof local ||
            getpeername((int)fd, (struct sockaddr *)&peer, &pl) != 0)
            continue;
        for (size_t i = 0; i < n; i++) {
            if (ports[i] > 0 && ntohs(local.sin_port) == ports[i]) {
                shutdown((int)fd, SHUT_RDWR);
                break;
            }
        }
    }
    closedir(d);
}

void emu_listeners_stop(struct emu *e)
{
    int ports[EMU_MAX_LISTENERS];
    struct emu_listener *all[EMU_MAX_LISTENERS];
    struct stopper st[EMU_MAX_LISTENERS];
    int64_t deadline;
    size_t n;

    pthread_mutex_lock(&e->listeners_mu);
    n = e->nlisteners;
    memcpy(all, e->listeners, n * sizeof all[0]);
    e->nlisteners = 0;
    pthread_mutex_unlock(&e->listeners_mu);

    /* All listeners stop in parallel, each woken by pokes, so stopping
     * takes milliseconds rather than ~2 s per listener that served. */
    memset(st, 0, sizeof st);
    for (size_t i = 0; i < n; i++) {
        st[i].mg = all[i]->mg;
        st[i].port = all[i]->port;
        ports[i] = all[i]->port;
        atomic_init(&st[i].done, 0);
        if (st[i].mg == NULL)
            continue;
        if (pthread_create(&st[i].th, NULL, stop_thread, &st[i]) == 0)
            st[i].started = 1;
        else
            stop_thread(&st[i]);
    }
    deadline = clc_mono_ms() + STOP_POKE_MS;
    for (;;) {
        int pending = 0;
        for (size_t i = 0; i < n; i++) {
            if (st[i].started && !atomic_load(&st[i].done)) {
                pending = 1;
                poke(st[i].port);
            }
        }
        if (!pending || clc_mono_ms() >= deadline)
            break;
        cut_connections(ports, n);
        clc_sleep_ms(10);
    }
    for (size_t i = 0; i < n; i++) {
        if (st[i].started)
            pthread_join(st[i].th, NULL);
        free(all[i]);
    }
}
