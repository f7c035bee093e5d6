/* Shared emulator state: one lock, the controllable clock, the data
 * directory (atomic JSON documents per component), and fault rules. */
#ifndef EMU_STATE_H
#define EMU_STATE_H

#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

struct emu;

/* The store lock: every service takes it around reads and writes of shared
 * state. Not recursive; never held across network I/O. */
void emu_lock(struct emu *e);
void emu_unlock(struct emu *e);

/* Emulator time (Unix). Advancing is instant; nothing waits on wall time. */
int64_t emu_now(const struct emu *e);

/* Persistence: documents named "identities", "clock", "keyvault-<vault>", ...
 * are kept as <data_dir>/<name>.json, written atomically. Without a data dir
 * save is a no-op and load finds nothing (CLC_ERR_NOT_FOUND). */
enum clc_err emu_store_save(struct emu *e, const char *name, const cJSON *doc,
                            struct clc_errinfo *ei);
enum clc_err emu_store_load(struct emu *e, const char *name, cJSON **doc, struct clc_errinfo *ei);
/* <data_dir>/<name>, or NULL without a data dir (for PEM files and keys). */
const char *emu_data_dir(const struct emu *e);

#endif
