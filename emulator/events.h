/* The emulator's internal event log: services (Key Vault) append events in
 * the Event Grid schema for a topic; the Event Grid service delivers them by
 * reading the log after a sequence number. Bounded, in memory, one per emulator. */
#ifndef EMU_EVENTS_H
#define EMU_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>
#include "core/err.h"

struct emu;

/* Events kept; older ones are dropped (listing reports the oldest kept). */
#define EMU_EVENTS_RETENTION 20000
/* Most events one list call returns. */
#define EMU_EVENTS_LIST_MAX 1000

/* Creates the log and its control route (GET /control/events?after=N&max=M).
 * Mounted before every service that publishes. */
enum clc_err emu_events_mount(struct emu *e, struct clc_errinfo *ei);

/* Appends one event: {"id": uuid, "topic", "subject", "eventType",
 * "eventTime": ISO 8601 with 7 fractional digits by the emulator clock,
 * "data", "dataVersion": "1", "metadataVersion": "1"}. data is taken over
 * (freed on failure too). *seq (optional) receives its sequence number:
 * 1, 2, ... within one emulator run. */
enum clc_err emu_events_publish(struct emu *e, const char *topic, const char *subject,
                                const char *event_type, cJSON *data, int64_t *seq,
                                struct clc_errinfo *ei);

/* Events with a sequence number above `after`, oldest first, at most max
 * (0 or more than EMU_EVENTS_LIST_MAX = EMU_EVENTS_LIST_MAX): *out is a new
 * array of {"sequence": n, "event": {...}}. *last (optional) = the sequence
 * of the last event returned, or `after` when none; *oldest (optional) = the
 * oldest sequence still kept (a consumer behind it lost events). */
enum clc_err emu_events_list(struct emu *e, int64_t after, size_t max, cJSON **out, int64_t *last,
                             int64_t *oldest, struct clc_errinfo *ei);

/* Identifies this run of the log (a UUID): sequence numbers restart with a
 * new emulator, so a consumer that sees another id starts over. */
const char *emu_events_log_id(struct emu *e);

/* fn runs after each append, outside the log's lock, with the new sequence
 * (e.g. to wake a delivery thread). It may run under the publisher's own
 * lock (a vault's): it must not block or call back into services. */
typedef void (*emu_events_fn)(struct emu *e, int64_t seq, void *ctx);
enum clc_err emu_events_subscribe(struct emu *e, emu_events_fn fn, void *ctx);

#endif
