/* Shared fixture of the emulator core tests: one emulator per binary with a
 * test service ("testsvc", "nested/one", "nested/two") and a test control
 * component ("testcomp") mounted, plus libcurl helpers that verify TLS
 * against the emulator's CA bundle. */
#ifndef TEST_EMU_CORE_FIXTURE_H
#define TEST_EMU_CORE_FIXTURE_H

#include <stddef.h>
#include <stdio.h>
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include "core/buf.h"
#include "emulator/emu.h"
#include "emulator/server.h"

#define MAX_BODY (64 * 1024)

struct fixture {
    struct emu *emu;
    char dir[256];
    char data_dir[300];
    char log_path[300];
    FILE *log;
    CURL *curl; /* one handle: keep-alive reuse, as real clients do */
    cJSON *endpoints;
    int resets;
};

extern struct fixture fx;
/* The test service's definition (routes /items/{id}, /echo, ...). */
extern const struct emu_service_def fx_test_def;

struct resp {
    CURLcode cc;
    long status;
    struct clc_buf body;
    struct clc_buf head;
    cJSON *json;
};

/* Status check that shows the body when it fails. */
#define expect_status(r, want)                                                                     \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            fail_msg("status %ld, expected %d: %s", (r)->status, (want), clc_buf_str(&(r)->body)); \
    } while (0)

void fx_resp_free(struct resp *r);
/* Last value of a response header (case-insensitive), copied to out. */
int fx_resp_header(const struct resp *r, const char *name, char *out, size_t outlen);
/* One request on handle c; cainfo NULL = the emulator's bundle. */
void fx_do_req(CURL *c, const char *method, const char *url, const char *const *hdrs,
               const char *body, long body_len, const char *cainfo, struct resp *r);
/* On the fixture's handle; fails the test on a transport error. */
void fx_req(const char *method, const char *url, const char *const *hdrs, const char *body,
            struct resp *r);
/* service base URL + path (one of four rotating buffers). */
char *fx_url(const char *service, const char *path);
const char *fx_err_code(const struct resp *r);
/* "Authorization: Bearer <token>" for an identity of the endpoints file. */
void fx_token(const char *identity, const char *scope, char *hdr, size_t hdrlen);
/* A control API call with a fresh admin token. */
void fx_admin(const char *method, const char *path, const char *body, struct resp *r);
int fx_start_emu(void);
int fx_load_endpoints(void);
int fx_setup(void **state);
int fx_teardown(void **state);

#endif
