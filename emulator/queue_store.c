/* The queue store: queues and their messages in memory, visibility and
 * time to live by the emulator clock, and with a data dir one file per queue
 * and one per message, so a put, get or delete writes only what it touched. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/b64.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "core/rand.h"
#include "emulator/queue.h"
#include "emulator/state.h"

#define FILE_MAX ((size_t)256 * 1024)
#define MSG_SUFFIX ".msg"

/* ---- files ---- */

/* Writes a temporary file and renames it over path: a reader (or a restart
 * after the process dies) sees the old document or the new one. Unlike
 * clc_file_write_atomic it does not fsync: messages change several times a
 * second under load, an emulator need not survive power loss, and two
 * fsyncs per change would cap the queue at about a hundred operations a
 * second. */
static enum clc_err write_replace(const char *path, const char *text, struct clc_errinfo *ei)
{
    size_t n = strlen(path) + 8, len = strlen(text), off = 0;
    char *tmp = malloc(n);
    enum clc_err rc = CLC_OK;
    int fd;

    if (tmp == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(tmp, n, "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = clc_errf(ei, CLC_ERR_IO, "creating %s: %s", tmp, strerror(errno));
        goto out;
    }
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = clc_errf(ei, CLC_ERR_IO, "writing %s: %s", tmp, strerror(errno));
            break;
        }
        off += (size_t)w;
    }
    if (close(fd) != 0 && rc == CLC_OK)
        rc = clc_errf(ei, CLC_ERR_IO, "closing %s: %s", tmp, strerror(errno));
    if (rc == CLC_OK && rename(tmp, path) != 0)
        rc = clc_errf(ei, CLC_ERR_IO, "renaming %s: %s", tmp, strerror(errno));
    if (rc != CLC_OK)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

static enum clc_err write_json(const char *dir, const char *file, const cJSON *doc,
                               struct clc_errinfo *ei)
{
    char *path = emu_storage_path_join(dir, file), *text = clc_json_print(doc);
    enum clc_err rc;

    if (path == NULL || text == NULL)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "queue store: out of memory");
    else
        rc = write_replace(path, text, ei);
    free(path);
    free(text);
    return rc;
}

static enum clc_err save_queue(const struct emu_queue *q, struct clc_errinfo *ei)
{
    cJSON *doc, *meta;
    enum clc_err rc = CLC_ERR_NOMEM;

    if (q->dir == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    meta = doc ? cJSON_AddObjectToObject(doc, "metadata") : NULL;
    if (meta == NULL || clc_json_add_str(doc, "name", q->name) != CLC_OK)
        goto out;
    for (size_t i = 0; i < q->meta.n; i++)
        if (clc_json_add_str(meta, q->meta.name[i], q->meta.value[i]) != CLC_OK)
            goto out;
    rc = write_json(q->dir, "queue.json", doc, ei);
out:
    cJSON_Delete(doc);
    return rc == CLC_ERR_NOMEM ? clc_errf(ei, rc, "queue %s: out of memory", q->name) : rc;
}

static enum clc_err save_msg(const struct emu_queue *q, const struct emu_qmsg *m,
                             struct clc_errinfo *ei)
{
    char file[64], *b64 = NULL;
    cJSON *doc;
    enum clc_err rc = CLC_ERR_NOMEM;

    if (q->dir == NULL)
        return CLC_OK;
    doc = cJSON_CreateObject();
    if (doc == NULL || clc_b64_encode(m->text, m->len, &b64, NULL) != CLC_OK ||
        clc_json_add_str(doc, "id", m->id) || clc_json_add_str(doc, "pop", m->pop) ||
        clc_json_add_int(doc, "seq", (int64_t)m->seq) ||
        clc_json_add_int(doc, "inserted", m->inserted) ||
        clc_json_add_int(doc, "expires", m->expires == EMU_STORAGE_NEVER ? -1 : m->expires) ||
        clc_json_add_int(doc, "visible_at", m->visible_at) ||
        clc_json_add_int(doc, "dequeue_count", m->dequeue_count) ||
        clc_json_add_str(doc, "text", b64))
        goto out;
    snprintf(file, sizeof file, "%s" MSG_SUFFIX, m->id);
    rc = write_json(q->dir, file, doc, ei);
out:
    free(b64);
    cJSON_Delete(doc);
    return rc == CLC_ERR_NOMEM ? clc_errf(ei, rc, "message: out of memory") : rc;
}

static enum clc_err unlink_msg(const struct emu_queue *q, const struct emu_qmsg *m,
                               struct clc_errinfo *ei)
{
    char file[64], *path;
    enum clc_err rc = CLC_OK;

    if (q->dir == NULL)
        return CLC_OK;
    snprintf(file, sizeof file, "%s" MSG_SUFFIX, m->id);
    path = emu_storage_path_join(q->dir, file);
    if (path == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (unlink(path) != 0 && errno != ENOENT)
        rc = clc_errf(ei, CLC_ERR_IO, "removing %s: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* ---- in memory ---- */

static void msg_free(struct emu_qmsg *m)
{
    if (m != NULL)
        free(m->text);
    free(m);
}

static void unlink_list(struct emu_queue *q, struct emu_qmsg *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        q->head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        q->tail = m->prev;
    q->count--;
}

/* Appends keeping seq order (loading reads files in any order). */
static void insert_sorted(struct emu_queue *q, struct emu_qmsg *m)
{
    struct emu_qmsg *at = q->tail;

    while (at != NULL && at->seq > m->seq)
        at = at->prev;
    m->prev = at;
    m->next = at ? at->next : q->head;
    if (m->next)
        m->next->prev = m;
    else
        q->tail = m;
    if (at)
        at->next = m;
    else
        q->head = m;
    q->count++;
    if (m->expires < q->min_expiry)
        q->min_expiry = m->expires;
}

static void queue_free(struct emu_queue *q)
{
    struct emu_qmsg *m, *next;

    if (q == NULL)
        return;
    for (m = q->head; m != NULL; m = next) {
        next = m->next;
        msg_free(m);
    }
    emu_storage_meta_cleanup(&q->meta);
    free(q->dir);
    free(q);
}

/* Pop receipts and message ids come from a per-thread batch of CSPRNG
 * bytes: one getrandom per 32 instead of one each (with the request ids it
 * was ~8% of a queue request's CPU, and a put made the call holding the
 * store's lock). Bytes handed out are wiped from the batch. */
#define POP_RAW 16
#define POP_BATCH 32
static _Thread_local unsigned char pop_pool[POP_BATCH][POP_RAW];
static _Thread_local size_t pop_next = POP_BATCH;

static int pop_raw(unsigned char out[POP_RAW])
{
    if (pop_next == POP_BATCH) {
        if (clc_rand_bytes(pop_pool, sizeof pop_pool) != CLC_OK)
            return 0;
        pop_next = 0;
    }
    memcpy(out, pop_pool[pop_next], POP_RAW);
    OPENSSL_cleanse(pop_pool[pop_next], POP_RAW);
    pop_next++;
    return 1;
}

static void new_pop(char out[32])
{
    unsigned char raw[POP_RAW];

    /* Base64 with "+/=", as Azure's are: clients must URL-encode them.
     * 16 bytes give 24 characters. */
    if (pop_raw(raw))
        EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
    else
        clc_rand_hex(out, 15);
    OPENSSL_cleanse(raw, sizeof raw);
}

/* A random (version 4) UUID, as clc_rand_uuid writes it. */
static void new_id(char out[37])
{
    unsigned char b[POP_RAW];

    if (!pop_raw(b)) {
        clc_rand_uuid(out);
        return;
    }
    clc_uuid_from_bytes(b, out);
    OPENSSL_cleanse(b, sizeof b);
}

static int queue_cmp(const struct emu_queue *q, const char *account, const char *name)
{
    int c = strcmp(q->account, account);
    return c != 0 ? c : strcmp(q->name, name);
}

struct emu_queue *emu_queue_find(struct emu_queue_store *s, const char *account, const char *name)
{
    for (struct emu_queue *q = s->queues; q != NULL; q = q->next)
        if (queue_cmp(q, account, name) == 0)
            return q;
    return NULL;
}

static enum clc_err queue_new(struct emu_queue_store *s, const char *account, const char *name,
                              struct emu_queue **out, struct clc_errinfo *ei)
{
    struct emu_queue *q = calloc(1, sizeof *q), **pp;
    char rel[128];

    *out = NULL;
    if (q == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    snprintf(q->account, sizeof q->account, "%s", account);
    snprintf(q->name, sizeof q->name, "%s", name);
    q->min_expiry = EMU_STORAGE_NEVER;
    if (s->dir != NULL) {
        snprintf(rel, sizeof rel, "%s/%s", account, name);
        q->dir = emu_storage_path_join(s->dir, rel);
        if (q->dir == NULL) {
            free(q);
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        }
    }
    for (pp = &s->queues; *pp != NULL && queue_cmp(*pp, account, name) < 0; pp = &(*pp)->next)
        ;
    q->next = *pp;
    *pp = q;
    *out = q;
    return CLC_OK;
}

static void queue_unlink(struct emu_queue_store *s, struct emu_queue *q)
{
    for (struct emu_queue **pp = &s->queues; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == q) {
            *pp = q->next;
            return;
        }
    }
}

enum clc_err emu_queue_create(struct emu_queue_store *s, const char *account, const char *name,
                              struct emu_storage_meta *meta, struct emu_queue **out,
                              struct clc_errinfo *ei)
{
    struct emu_queue *q;
    enum clc_err rc;

    *out = NULL;
    if (emu_queue_find(s, account, name) != NULL)
        return clc_errf(ei, CLC_ERR_CONFLICT, "queue %s exists", name);
    rc = queue_new(s, account, name, &q, ei);
    if (rc != CLC_OK)
        return rc;
    emu_storage_meta_move(&q->meta, meta);
    if (q->dir != NULL) {
        rc = clc_file_mkdirs(q->dir, 0700, ei);
        if (rc == CLC_OK)
            rc = save_queue(q, ei);
        if (rc != CLC_OK) {
            queue_unlink(s, q);
            emu_storage_remove_dir(q->dir);
            queue_free(q);
            return rc;
        }
    }
    *out = q;
    return CLC_OK;
}

enum clc_err emu_queue_delete(struct emu_queue_store *s, struct emu_queue *q,
                              struct clc_errinfo *ei)
{
    (void)ei;
    queue_unlink(s, q);
    if (q->dir != NULL)
        emu_storage_remove_dir(q->dir);
    queue_free(q);
    return CLC_OK;
}

enum clc_err emu_queue_set_meta(struct emu_queue_store *s, struct emu_queue *q,
                                struct emu_storage_meta *meta, struct clc_errinfo *ei)
{
    (void)s;
    emu_storage_meta_move(&q->meta, meta);
    return save_queue(q, ei);
}

void emu_queue_purge(struct emu_queue_store *s, struct emu_queue *q, int64_t now)
{
    struct emu_qmsg *m, *next;
    int64_t min = EMU_STORAGE_NEVER;

    (void)s;
    if (now < q->min_expiry)
        return;
    for (m = q->head; m != NULL; m = next) {
        next = m->next;
        if (m->expires <= now) {
            struct clc_errinfo ei = {0};
            unlink_list(q, m);
            if (unlink_msg(q, m, &ei) != CLC_OK)
                clc_log(CLC_LOG_WARN, "emu.queue.expire_unlink_failed", CLC_LS("reason", ei.msg));
            msg_free(m);
        } else if (m->expires < min) {
            min = m->expires;
        }
    }
    q->min_expiry = min;
}

enum clc_err emu_queue_put(struct emu_queue_store *s, struct emu_queue *q, const char *text,
                           size_t len, int64_t visibility, int64_t ttl, int64_t now,
                           struct emu_qmsg **out, struct clc_errinfo *ei)
{
    char *copy = malloc(len + 1);
    enum clc_err rc;

    *out = NULL;
    if (copy == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    memcpy(copy, text, len);
    copy[len] = '\0';
    rc = emu_queue_put_owned(s, q, &copy, len, visibility, ttl, now, out, ei);
    free(copy);
    return rc;
}

enum clc_err emu_queue_put_owned(struct emu_queue_store *s, struct emu_queue *q, char **text,
                                 size_t len, int64_t visibility, int64_t ttl, int64_t now,
                                 struct emu_qmsg **out, struct clc_errinfo *ei)
{
    struct emu_qmsg *m = calloc(1, sizeof *m);
    enum clc_err rc;

    *out = NULL;
    if (m == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    m->text = *text;
    m->len = len;
    m->seq = ++s->next_seq;
    new_id(m->id);
    new_pop(m->pop);
    m->inserted = now;
    m->expires = ttl < 0 ? EMU_STORAGE_NEVER : now + ttl;
    m->visible_at = now + visibility;
    rc = save_msg(q, m, ei);
    if (rc != CLC_OK) {
        m->text = NULL; /* still the caller's */
        msg_free(m);
        return rc;
    }
    *text = NULL;
    insert_sorted(q, m);
    *out = m;
    return CLC_OK;
}

size_t emu_queue_dequeue(struct emu_queue_store *s, struct emu_queue *q, size_t n,
                         int64_t visibility, int64_t now, struct emu_qmsg **out)
{
    size_t k = 0;

    emu_queue_purge(s, q, now);
    for (struct emu_qmsg *m = q->head; m != NULL && k < n; m = m->next) {
        struct clc_errinfo ei = {0};
        if (m->visible_at > now)
            continue;
        m->dequeue_count++;
        m->visible_at = now + visibility;
        new_pop(m->pop);
        /* The message is handed out either way; a failed write only means a
         * restart would show the previous lease. */
        if (save_msg(q, m, &ei) != CLC_OK)
            clc_log(CLC_LOG_WARN, "emu.queue.save_failed", CLC_LS("reason", ei.msg));
        out[k++] = m;
    }
    return k;
}

struct emu_qmsg *emu_queue_msg_find(struct emu_queue *q, const char *id, const char *pop)
{
    for (struct emu_qmsg *m = q->head; m != NULL; m = m->next)
        if (strcmp(m->id, id) == 0)
            return strcmp(m->pop, pop) == 0 ? m : NULL;
    return NULL;
}

enum clc_err emu_queue_msg_delete(struct emu_queue_store *s, struct emu_queue *q,
                                  struct emu_qmsg *m, struct clc_errinfo *ei)
{
    enum clc_err rc;

    (void)s;
    unlink_list(q, m);
    rc = unlink_msg(q, m, ei);
    msg_free(m);
    return rc;
}

enum clc_err emu_queue_msg_update(struct emu_queue_store *s, struct emu_queue *q,
                                  struct emu_qmsg *m, const char *text, size_t len,
                                  int64_t visibility, int64_t now, struct clc_errinfo *ei)
{
    (void)s;
    if (text != NULL) {
        char *t = malloc(len + 1);
        if (t == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        memcpy(t, text, len);
        t[len] = '\0';
        free(m->text);
        m->text = t;
        m->len = len;
    }
    m->visible_at = now + visibility;
    new_pop(m->pop);
    return save_msg(q, m, ei);
}

enum clc_err emu_queue_clear(struct emu_queue_store *s, struct emu_queue *q, struct clc_errinfo *ei)
{
    enum clc_err rc = CLC_OK;

    while (q->head != NULL) {
        struct emu_qmsg *m = q->head;
        enum clc_err r1 = emu_queue_msg_delete(s, q, m, ei);
        if (rc == CLC_OK)
            rc = r1;
    }
    q->min_expiry = EMU_STORAGE_NEVER;
    return rc;
}

/* ---- loading ---- */

static enum clc_err load_msg(struct emu_queue_store *s, struct emu_queue *q, const char *path,
                             struct clc_errinfo *ei)
{
    char *text = NULL;
    size_t len = 0;
    cJSON *doc = NULL;
    const char *id, *pop, *b64;
    int64_t seq, ins, exp, vis, dq;
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    struct emu_qmsg *m = NULL;
    enum clc_err rc;

    rc = clc_file_read(path, FILE_MAX, &text, &len, ei);
    if (rc == CLC_OK)
        rc = clc_json_parse(text, len, FILE_MAX, &doc, ei);
    if (rc == CLC_OK &&
        (clc_json_str(doc, "id", &id, ei) || clc_json_str(doc, "pop", &pop, ei) ||
         clc_json_int(doc, "seq", &seq, ei) || clc_json_int(doc, "inserted", &ins, ei) ||
         clc_json_int(doc, "expires", &exp, ei) || clc_json_int(doc, "visible_at", &vis, ei) ||
         clc_json_int(doc, "dequeue_count", &dq, ei) || clc_json_str(doc, "text", &b64, ei)))
        rc = CLC_ERR_PARSE;
    if (rc == CLC_OK &&
        (strlen(id) != 36 || strlen(pop) >= sizeof m->pop || seq < 0 ||
         clc_b64_decode(b64, strlen(b64), &raw, &rawlen) != CLC_OK || rawlen > EMU_QUEUE_MAX_TEXT))
        rc = clc_errf(ei, CLC_ERR_PARSE, "malformed message fields");
    if (rc == CLC_OK && (m = calloc(1, sizeof *m)) == NULL)
        rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    if (rc == CLC_OK) {
        memcpy(m->id, id, 37);
        snprintf(m->pop, sizeof m->pop, "%s", pop);
        m->seq = (uint64_t)seq;
        m->inserted = ins;
        m->expires = exp < 0 ? EMU_STORAGE_NEVER : exp;
        m->visible_at = vis;
        m->dequeue_count = dq;
        m->text = (char *)raw;
        m->len = rawlen;
        raw = NULL;
        if (m->seq > s->next_seq)
            s->next_seq = m->seq;
        insert_sorted(q, m);
    }
    if (rc != CLC_OK)
        rc = clc_err_wrap(ei, rc, "%s", path);
    free(raw);
    free(text);
    cJSON_Delete(doc);
    return rc;
}

static enum clc_err load_queue(struct emu_queue_store *s, const char *account, const char *name,
                               struct clc_errinfo *ei)
{
    struct emu_queue *q;
    char *qpath = NULL, *text = NULL;
    size_t len = 0;
    cJSON *doc = NULL;
    const cJSON *meta, *it;
    DIR *d = NULL;
    struct dirent *de;
    enum clc_err rc;

    rc = queue_new(s, account, name, &q, ei);
    if (rc != CLC_OK)
        return rc;
    qpath = emu_storage_path_join(q->dir, "queue.json");
    if (qpath == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    rc = clc_file_read(qpath, FILE_MAX, &text, &len, ei);
    if (rc == CLC_OK)
        rc = clc_json_parse(text, len, FILE_MAX, &doc, ei);
    if (rc != CLC_OK)
        goto out;
    meta = cJSON_GetObjectItemCaseSensitive(doc, "metadata");
    cJSON_ArrayForEach(it, meta)
    {
        if (!cJSON_IsString(it) || q->meta.n == EMU_STORAGE_MAX_META) {
            rc = clc_errf(ei, CLC_ERR_PARSE, "%s: bad metadata", qpath);
            goto out;
        }
        q->meta.name[q->meta.n] = strdup(it->string);
        q->meta.value[q->meta.n] = strdup(it->valuestring);
        q->meta.n++;
        if (!q->meta.name[q->meta.n - 1] || !q->meta.value[q->meta.n - 1]) {
            rc = clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    d = opendir(q->dir);
    if (d == NULL) {
        rc = clc_errf(ei, CLC_ERR_IO, "%s: %s", q->dir, strerror(errno));
        goto out;
    }
    while (rc == CLC_OK && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char *p;
        if (n <= strlen(MSG_SUFFIX) || strcmp(de->d_name + n - strlen(MSG_SUFFIX), MSG_SUFFIX))
            continue;
        p = emu_storage_path_join(q->dir, de->d_name);
        rc = p ? load_msg(s, q, p, ei) : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        free(p);
    }
out:
    if (d != NULL)
        closedir(d);
    cJSON_Delete(doc);
    free(text);
    free(qpath);
    return rc;
}

static enum clc_err load_all(struct emu_queue_store *s, struct clc_errinfo *ei)
{
    DIR *top = opendir(s->dir), *acct;
    struct dirent *a, *qd;
    enum clc_err rc = CLC_OK;

    if (top == NULL)
        return errno == ENOENT ? CLC_OK
                               : clc_errf(ei, CLC_ERR_IO, "%s: %s", s->dir, strerror(errno));
    while (rc == CLC_OK && (a = readdir(top)) != NULL) {
        char *ap;
        if (a->d_name[0] == '.')
            continue;
        ap = emu_storage_path_join(s->dir, a->d_name);
        acct = ap ? opendir(ap) : NULL;
        while (rc == CLC_OK && acct != NULL && (qd = readdir(acct)) != NULL)
            if (qd->d_name[0] != '.' && strlen(a->d_name) < 25 && emu_storage_name_ok(qd->d_name))
                rc = load_queue(s, a->d_name, qd->d_name, ei);
        if (acct != NULL)
            closedir(acct);
        free(ap);
    }
    closedir(top);
    return rc;
}

enum clc_err emu_queue_store_open(struct emu *e, struct emu_queue_store **out,
                                  struct clc_errinfo *ei)
{
    struct emu_queue_store *s = calloc(1, sizeof *s);
    const char *data = emu_data_dir(e);
    enum clc_err rc = CLC_OK;

    *out = NULL;
    if (s == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->e = e;
    if (data != NULL) {
        s->dir = emu_storage_path_join(data, "storage/queue");
        rc = s->dir ? clc_file_mkdirs(s->dir, 0700, ei)
                    : clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
        if (rc == CLC_OK)
            rc = load_all(s, ei);
    }
    if (rc != CLC_OK) {
        emu_queue_store_free(s);
        return clc_err_wrap(ei, rc, "queue store");
    }
    *out = s;
    return CLC_OK;
}

void emu_queue_store_free(struct emu_queue_store *s)
{
    if (s == NULL)
        return;
    while (s->queues != NULL) {
        struct emu_queue *q = s->queues;
        s->queues = q->next;
        queue_free(q);
    }
    free(s->dir);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

void emu_queue_store_reset(struct emu_queue_store *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->queues != NULL) {
        struct emu_queue *q = s->queues;
        emu_queue_delete(s, q, NULL);
    }
    pthread_mutex_unlock(&s->mu);
}

cJSON *emu_queue_store_dump(struct emu_queue_store *s)
{
    cJSON *doc = cJSON_CreateObject();
    int64_t now = emu_now(s->e);
    int ok = doc != NULL;

    pthread_mutex_lock(&s->mu);
    for (struct emu_queue *q = s->queues; ok && q != NULL; q = q->next) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, q->account), *item;
        int64_t visible = 0;

        emu_queue_purge(s, q, now);
        for (struct emu_qmsg *m = q->head; m != NULL; m = m->next)
            visible += m->visible_at <= now;
        if (list == NULL)
            list = cJSON_AddArrayToObject(doc, q->account);
        item = cJSON_CreateObject();
        ok = list != NULL && item != NULL && cJSON_AddItemToArray(list, item) &&
             clc_json_add_str(item, "name", q->name) == CLC_OK &&
             clc_json_add_int(item, "messages", (int64_t)q->count) == CLC_OK &&
             clc_json_add_int(item, "visible", visible) == CLC_OK;
    }
    pthread_mutex_unlock(&s->mu);
    if (!ok) {
        cJSON_Delete(doc);
        return NULL;
    }
    return doc;
}
