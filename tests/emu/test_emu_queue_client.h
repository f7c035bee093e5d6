/* Test support for the Storage queue and blob emulator tests: one emulator
 * with a data dir and known accounts and identities, raw HTTPS requests with
 * SharedKey signatures and SAS tokens computed here, independently of the
 * emulator's code, and bearer tokens minted by the emulated directory. */
#ifndef TEST_EMU_QUEUE_CLIENT_H
#define TEST_EMU_QUEUE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "emulator/emu.h"
#include "net/http.h"

#define QT_DEV "devstoreaccount1"
#define QT_DEV_KEY                                                                                 \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
/* A second account with two keys (base64 of 32 bytes each). */
#define QT_ACCT2 "certlcstore"
#define QT_ACCT2_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define QT_ACCT2_KEY2 "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
#define QT_WRONG_KEY "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktMDA="

struct qt {
    char dir[256];
    char data_dir[300];
    char config[300];
    struct emu *e;
    struct clc_http *http;
    struct clc_clock clock; /* follows the emulator's */
};

extern struct qt QT;

/* Identities of the test config: "queuer" (Storage Queue Data Contributor),
 * "blobber" (Storage Blob Data Contributor), "nobody" (Key Vault Reader),
 * "admin". A fresh token for one of them and audience aud (NULL =
 * https://storage.azure.com), valid an hour from the emulator's now;
 * malloc'd. */
char *qt_token(const char *identity, const char *aud);

/* Starts the emulator on a fresh temp dir (data dir kept on restart). */
int qt_setup(void);
/* Stops and starts it again on the same data dir and clock. */
int qt_restart(void);
void qt_teardown(void);

/* A request to service ("queue" or "blob") at target (path and raw query,
 * e.g. "/devstoreaccount1/q1/messages?numofmessages=2"). auth:
 *   "key"          SharedKey with the path account's first key
 *   "key2"         ... its second key ("certlcstore" only)
 *   "key:<b64>"    SharedKey with that key
 *   "lite"         SharedKeyLite with the first key
 *   "bearer:<tok>" a bearer token
 *   "none"         no Authorization (SAS goes in the target's query)
 * headers: extra "Name: value" lines (x-ms-* ones are signed). Returns the
 * status, 0 on a transport error; resp is initialised here. */
long qt_req(const char *service, const char *method, const char *target, const char *auth,
            const char *const *headers, const char *body, size_t len, struct clc_http_resp *resp);
/* Shorthand: SharedKey, no extra headers; body NULL = none. */
long qt_key(const char *service, const char *method, const char *target, const char *body,
            struct clc_http_resp *resp);

/* "<QueueMessage><MessageText>text</MessageText></QueueMessage>" (text as given). */
char *qt_msg_body(const char *text);
/* Text of the first <name>...</name> in the body (malloc'd), NULL when absent. */
char *qt_xml(const struct clc_http_resp *resp, const char *name);
/* Number of occurrences of <name> in the body. */
int qt_count(const struct clc_http_resp *resp, const char *name);
/* Percent-encodes for a query value (malloc'd). */
char *qt_enc(const char *s);
/* Asserts an Azure Storage error: status, x-ms-error-code and <Code>. */
void qt_assert_error(const struct clc_http_resp *resp, long status, const char *code);

/* Account SAS query ("sv=...&sig=...") for acct/key with services ss,
 * resource types srt, permissions sp, valid from st to se (Unix seconds;
 * st 0 = none). */
char *qt_account_sas(const char *acct, const char *key_b64, const char *ss, const char *srt,
                     const char *sp, int64_t st, int64_t se);
/* Service SAS for a queue, or a blob container (blob NULL) / blob. */
char *qt_queue_sas(const char *acct, const char *key_b64, const char *queue, const char *sp,
                   int64_t st, int64_t se);
char *qt_blob_sas(const char *acct, const char *key_b64, const char *container, const char *blob,
                  const char *sp, int64_t se);

#endif
