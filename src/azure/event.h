/* Key Vault certificate events as they reach certlc: an Event Grid schema
 * event (object or one-element array) or a CloudEvents 1.0 event, as raw JSON
 * or as a Storage queue message (base64 of the JSON, or the JSON itself),
 * with the data fields in PascalCase or camelCase. Everything else is
 * rejected with a precise reason. */
#ifndef CLC_EVENT_H
#define CLC_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include "core/err.h"

#define CLC_EVENT_DEFAULT_MAX (64 * 1024)

enum clc_event_schema { CLC_EVENT_SCHEMA_EVENTGRID = 0, CLC_EVENT_SCHEMA_CLOUDEVENTS };

enum clc_event_reason {
    CLC_EVENT_OK = 0,
    CLC_EVENT_TOO_LARGE,         /* input over the configured limit */
    CLC_EVENT_BAD_BASE64,        /* a queue message that is neither JSON nor base64 */
    CLC_EVENT_NOT_JSON,          /* not (or not only) one JSON value */
    CLC_EVENT_BAD_ENVELOPE,      /* neither schema, a batch of several, or a missing or
                                    mistyped envelope field (id, type, data, ...) */
    CLC_EVENT_WRONG_TYPE,        /* an event type outside the accepted set */
    CLC_EVENT_WRONG_OBJECT,      /* data.ObjectType is not "Certificate" */
    CLC_EVENT_MISSING_VAULT,     /* no data.VaultName */
    CLC_EVENT_MISSING_NAME,      /* no data.ObjectName */
    CLC_EVENT_BAD_FIELD,         /* a data field of the wrong type or an invalid name */
    CLC_EVENT_VAULT_NOT_ALLOWED, /* a vault not in the configured list */
    CLC_EVENT__COUNT
};

/* Stable lower-case name ("wrong_type"). */
const char *clc_event_reason_name(enum clc_event_reason r);

struct clc_event_filter {
    /* Accepted event types; NULL = the three certificate events
     * (CertificateNearExpiry, CertificateExpired, CertificateNewVersionCreated). */
    const char *const *types;
    size_t ntypes;
    /* Vault names (case-insensitive); NULL or empty = any vault. */
    const char *const *vaults;
    size_t nvaults;
    size_t max_bytes; /* 0 = CLC_EVENT_DEFAULT_MAX */
};

struct clc_event {
    enum clc_event_schema schema;
    char id[128];
    char type[128]; /* "Microsoft.KeyVault.CertificateNearExpiry" */
    char subject[256];
    char source[512];     /* topic (Event Grid) or source (CloudEvents); may be empty */
    int64_t time;         /* eventTime / time, Unix seconds; 0 when absent */
    char vault[64];       /* data.VaultName */
    char name[128];       /* data.ObjectName */
    char object_type[32]; /* data.ObjectType, or empty */
    char version[64];     /* data.Version, or empty */
    char object_id[512];  /* data.Id (the versioned URL), or empty */
    int64_t nbf, exp;     /* data.NBF, data.EXP (Unix seconds) */
    int has_nbf, has_exp;
};

/* Parses one event given as JSON text. On rejection returns CLC_ERR_PARSE
 * (malformed input), CLC_ERR_LIMIT (too large) or CLC_ERR_INVALID (a valid
 * event certlc must not act on), sets *reason (optional) and says why in ei. */
enum clc_err clc_event_parse(const char *text, size_t len, const struct clc_event_filter *f,
                             struct clc_event *out, enum clc_event_reason *reason,
                             struct clc_errinfo *ei);

/* Parses a queue message's text: base64 of the JSON (what Event Grid
 * writes), or the JSON itself (older writers, tools). */
enum clc_err clc_event_parse_queue_message(const char *text, size_t len,
                                           const struct clc_event_filter *f, struct clc_event *out,
                                           enum clc_event_reason *reason, struct clc_errinfo *ei);

#endif
