/* Test support: the emulator's control API as its admin. A client
 * credentials token for the endpoints document's "admin" identity (scope
 * api://certlc-emulator/.default) from the emulated Entra ID, kept per
 * emulator while it is fresh in emulator time, and one call with it. */
#ifndef CLC_TEST_EMU_ADMIN_H
#define CLC_TEST_EMU_ADMIN_H

#include "emulator/emu.h"
#include "net/http.h"

/* One control API request as the admin. path is appended to the "control"
 * service URL ("/control/..."); body is JSON or NULL. http NULL = a client
 * made for this call that trusts the emulator's CA. resp NULL = the answer
 * is dropped; else it is initialised here and the caller cleans it up.
 * Returns the status; a status >= 300 is printed to stderr with its body.
 * No token or no answer fails the running cmocka test. Not thread-safe. */
long test_emu_admin_call(struct emu *e, struct clc_http *http, const char *method, const char *path,
                         const char *body, struct clc_http_resp *resp);

/* Drops e's cached token. Call before emu_stop(e): a later emulator may be
 * given the same address. */
void test_emu_admin_forget(const struct emu *e);

#endif
