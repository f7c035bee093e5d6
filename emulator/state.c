/* Shared emulator state: the store lock, the controllable clock (system time
 * plus an offset, or frozen) persisted as the "clock" document, and the data
 * directory where components keep atomic JSON documents. */
/* nftw is an XSI interface. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/json.h"
#include "core/log.h"
#include "emulator/emu_ext.h"
#include "emulator/emu_internal.h"
#include "emulator/state.h"

/* Documents hold whole service states (many certificates), so the bound is
 * generous; it exists so a corrupt file cannot exhaust memory. */
#define STORE_MAX_BYTES ((size_t)256 * 1024 * 1024)
#define STORE_NAME_MAX 64

void emu_lock(struct emu *e)
{
    pthread_mutex_lock(&e->lock);
}

void emu_unlock(struct emu *e)
{
    pthread_mutex_unlock(&e->lock);
}

const char *emu_data_dir(const struct emu *e)
{
    return e->data_dir;
}

const char *emu_work_dir(const struct emu *e)
{
    return e->work_dir;
}

int emu_store_name_ok(const char *name)
{
    size_t n = 0;

    if (name == NULL)
        return 0;
    for (; name[n] != '\0'; n++) {
        char c = name[n];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return n > 0 && n <= STORE_NAME_MAX;
}

char *emu_work_path(const struct emu *e, const char *name)
{
    size_t n = strlen(e->work_dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", e->work_dir, name);
    return p;
}

static int64_t system_ms(void)
{
    return clc_clock_now_ms(NULL);
}

static int64_t clock_now_locked(const struct emu_clock_state *c)
{
    return c->frozen ? c->frozen_at_ms : system_ms() + c->offset_ms;
}

int64_t emu_now_ms(const struct emu *e)
{
    /* The mutex is logically part of the clock, not of the const view. */
    struct emu *me = (struct emu *)e;
    int64_t now;

    pthread_mutex_lock(&me->clock_mu);
    now = clock_now_locked(&me->clock);
    pthread_mutex_unlock(&me->clock_mu);
    return now;
}

int64_t emu_now(const struct emu *e)
{
    int64_t ms = emu_now_ms(e);
    return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

void emu_clock_get(const struct emu *e, struct emu_clock_state *out, int64_t *now_ms)
{
    struct emu *me = (struct emu *)e;

    pthread_mutex_lock(&me->clock_mu);
    *out = me->clock;
    if (now_ms != NULL)
        *now_ms = clock_now_locked(&me->clock);
    pthread_mutex_unlock(&me->clock_mu);
}

static void persist_or_warn(struct emu *e)
{
    struct clc_errinfo ei = {0};

    if (emu_clock_persist(e, &ei) != CLC_OK)
        clc_log(CLC_LOG_WARN, "emu.clock.save_failed", CLC_LS("reason", ei.msg));
}

void emu_clock_set(struct emu *e, int64_t unix_s)
{
    pthread_mutex_lock(&e->clock_mu);
    if (e->clock.frozen)
        e->clock.frozen_at_ms = unix_s * 1000;
    else
        e->clock.offset_ms = unix_s * 1000 - system_ms();
    pthread_mutex_unlock(&e->clock_mu);
    persist_or_warn(e);
    emu_tick(e);
}

void emu_clock_advance(struct emu *e, int64_t seconds)
{
    pthread_mutex_lock(&e->clock_mu);
    if (e->clock.frozen)
        e->clock.frozen_at_ms += seconds * 1000;
    else
        e->clock.offset_ms += seconds * 1000;
    pthread_mutex_unlock(&e->clock_mu);
    persist_or_warn(e);
    emu_tick(e);
}

void emu_clock_freeze(struct emu *e, int frozen)
{
    pthread_mutex_lock(&e->clock_mu);
    if (frozen && !e->clock.frozen) {
        e->clock.frozen_at_ms = system_ms() + e->clock.offset_ms;
        e->clock.frozen = 1;
    } else if (!frozen && e->clock.frozen) {
        /* Time runs on from where it stood, not from where it would be. */
        e->clock.offset_ms = e->clock.frozen_at_ms - system_ms();
        e->clock.frozen = 0;
    }
    pthread_mutex_unlock(&e->clock_mu);
    persist_or_warn(e);
    emu_tick(e);
}

enum clc_err emu_clock_persist(struct emu *e, struct clc_errinfo *ei)
{
    struct emu_clock_state c;
    cJSON *doc = NULL;
    enum clc_err rc;

    if (e->data_dir == NULL)
        return CLC_OK;
    /* Serialised so that two changes reach the disk in the order made. */
    pthread_mutex_lock(&e->clock_save_mu);
    emu_clock_get(e, &c, NULL);
    doc = cJSON_CreateObject();
    rc = doc == NULL ? CLC_ERR_NOMEM : CLC_OK;
    if (rc == CLC_OK)
        rc = clc_json_add_int(doc, "offset_ms", c.offset_ms);
    if (rc == CLC_OK)
        rc = clc_json_add_bool(doc, "frozen", c.frozen);
    if (rc == CLC_OK)
        rc = clc_json_add_int(doc, "frozen_at_ms", c.frozen_at_ms);
    if (rc != CLC_OK) {
        rc = clc_errf(ei, rc, "clock document: out of memory");
        goto out;
    }
    rc = emu_store_save(e, "clock", doc, ei);
out:
    pthread_mutex_unlock(&e->clock_save_mu);
    cJSON_Delete(doc);
    return rc;
}

static enum clc_err clock_load(struct emu *e, int64_t start_time, struct clc_errinfo *ei)
{
    cJSON *doc = NULL;
    int64_t offset = 0, at = 0;
    int frozen = 0;
    enum clc_err rc;

    rc = emu_store_load(e, "clock", &doc, ei);
    if (rc == CLC_ERR_NOT_FOUND) {
        /* start_time only sets a new clock; a saved one wins on restart. */
        if (start_time != 0)
            e->clock.offset_ms = start_time * 1000 - system_ms();
        if (ei != NULL)
            clc_errinfo_clear(ei);
        return emu_clock_persist(e, ei);
    }
    if (rc != CLC_OK)
        return rc;
    rc = clc_json_int(doc, "offset_ms", &offset, ei);
    if (rc == CLC_OK)
        rc = clc_json_bool(doc, "frozen", &frozen, ei);
    if (rc == CLC_OK)
        rc = clc_json_int(doc, "frozen_at_ms", &at, ei);
    if (rc != CLC_OK) {
        rc = clc_err_wrap(ei, rc, "clock document in %s", e->data_dir);
        goto out;
    }
    e->clock.offset_ms = offset;
    e->clock.frozen = frozen;
    e->clock.frozen_at_ms = at;
out:
    cJSON_Delete(doc);
    return rc;
}

enum clc_err emu_store_save(struct emu *e, const char *name, const cJSON *doc,
                            struct clc_errinfo *ei)
{
    char *path = NULL, *text = NULL;
    enum clc_err rc = CLC_OK;
    size_t n;

    if (!emu_store_name_ok(name))
        return clc_errf(ei, CLC_ERR_INVALID, "store document name '%s' is not [a-z0-9-]{1,64}",
                        name ? name : "(null)");
    if (e->data_dir == NULL)
        return CLC_OK;
    text = clc_json_print(doc);
    if (text == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "store %s: out of memory", name);
        goto out;
    }
    n = strlen(e->data_dir) + strlen(name) + 8;
    path = malloc(n);
    if (path == NULL) {
        rc = clc_errf(ei, CLC_ERR_NOMEM, "store %s: out of memory", name);
        goto out;
    }
    snprintf(path, n, "%s/%s.json", e->data_dir, name);
    rc = clc_file_write_atomic(path, text, strlen(text), 0600, ei);
out:
    free(path);
    free(text);
    return rc;
}

enum clc_err emu_store_load(struct emu *e, const char *name, cJSON **doc, struct clc_errinfo *ei)
{
    char *path = NULL, *text = NULL;
    size_t len = 0, n;
    enum clc_err rc;

    *doc = NULL;
    if (!emu_store_name_ok(name))
        return clc_errf(ei, CLC_ERR_INVALID, "store document name '%s' is not [a-z0-9-]{1,64}",
                        name ? name : "(null)");
    if (e->data_dir == NULL)
        return clc_errf(ei, CLC_ERR_NOT_FOUND, "store %s: no data dir", name);
    n = strlen(e->data_dir) + strlen(name) + 8;
    path = malloc(n);
    if (path == NULL)
        return clc_errf(ei, CLC_ERR_NOMEM, "store %s: out of memory", name);
    snprintf(path, n, "%s/%s.json", e->data_dir, name);
    rc = clc_file_read(path, STORE_MAX_BYTES, &text, &len, ei);
    if (rc != CLC_OK)
        goto out;
    rc = clc_json_parse(text, len, STORE_MAX_BYTES, doc, ei);
    if (rc != CLC_OK)
        rc = clc_err_wrap(ei, rc, "%s", path);
out:
    free(text);
    free(path);
    return rc;
}

static enum clc_err make_temp_dir(struct emu *e, struct clc_errinfo *ei)
{
    const char *tmp = getenv("TMPDIR");
    char tmpl[PATH_MAX];
    int n;

    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    n = snprintf(tmpl, sizeof tmpl, "%s/certlc-emu-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof tmpl)
        return clc_errf(ei, CLC_ERR_LIMIT, "TMPDIR path too long");
    if (mkdtemp(tmpl) == NULL)
        return clc_errf(ei, CLC_ERR_IO, "creating a private directory in %s: %s", tmp,
                        strerror(errno));
    e->work_dir = strdup(tmpl);
    if (e->work_dir == NULL) {
        rmdir(tmpl);
        return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    }
    e->work_dir_is_temp = 1;
    return CLC_OK;
}

enum clc_err emu_state_init(struct emu *e, const struct emu_opts *opts, struct clc_errinfo *ei)
{
    enum clc_err rc;

    if (opts->data_dir != NULL) {
        char real[PATH_MAX];

        rc = clc_file_mkdirs(opts->data_dir, 0700, ei);
        if (rc != CLC_OK)
            return clc_err_wrap(ei, rc, "data dir");
        /* Absolute, so the endpoints document names files clients can open
         * from any working directory. */
        if (realpath(opts->data_dir, real) == NULL)
            return clc_errf(ei, CLC_ERR_IO, "data dir %s: %s", opts->data_dir, strerror(errno));
        e->data_dir = strdup(real);
        e->work_dir = strdup(real);
        if (e->data_dir == NULL || e->work_dir == NULL)
            return clc_errf(ei, CLC_ERR_NOMEM, "out of memory");
    } else {
        rc = make_temp_dir(e, ei);
        if (rc != CLC_OK)
            return rc;
    }
    return clock_load(e, opts->start_time, ei);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        clc_log(CLC_LOG_WARN, "emu.cleanup.remove_failed", CLC_LS("path", path),
                CLC_LS("reason", strerror(errno)));
    return 0;
}

void emu_state_cleanup(struct emu *e)
{
    if (e->work_dir != NULL && e->work_dir_is_temp)
        /* FTW_PHYS: never follow a link out of our own directory. */
        nftw(e->work_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(e->work_dir);
    free(e->data_dir);
    e->work_dir = NULL;
    e->data_dir = NULL;
}
