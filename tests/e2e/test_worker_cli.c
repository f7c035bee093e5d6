/* certlc renew, worker, poison and deadletter through the binary, against an
 * emulator in this process: exit codes (0 all done, 2 nothing to do, 1 some
 * failed), the queue reached with the renewer's Entra token (bearer), poison
 * list/replay as text and JSON, dead-letter list on an empty container, and
 * certlc worker renewing in the background, woken by SIGUSR1 and stopped
 * cleanly by SIGTERM. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core/clock.h"
#include "core/file.h"
#include "emu/renew_fixture.h"
#include "support/proc.h"

#define CERTLC CLC_TEST_BINDIR "/src/cli/certlc"

static char cfg_bearer[400], cfg_shared[400];

static const char *ep(const char *a, const char *b, const char *c)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(R.endpoints, a);
    if (b)
        n = cJSON_GetObjectItemCaseSensitive(n, b);
    if (c)
        n = cJSON_GetObjectItemCaseSensitive(n, c);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

/* The same settings the fixture uses, as a file for the binary; queue_auth
 * "bearer" (auth.* = the renewer identity) or "shared_key". */
static int write_config(const char *path, int bearer)
{
    char secret[400], pw[400], anchors[400], key[400], text[8192];
    const char *s = ep("identities", "renewer", "client_secret");
    snprintf(secret, sizeof secret, "%s/renewer.secret", R.dir);
    snprintf(pw, sizeof pw, "%s/ca-password", R.dir);
    snprintf(anchors, sizeof anchors, "%s/root.pem", R.dir);
    snprintf(key, sizeof key, "%s/queue-key", R.dir);
    if (!s || clc_file_write_atomic(secret, s, strlen(s), 0600, NULL) != CLC_OK)
        return -1;
    snprintf(text, sizeof text,
             "{\"log\":{\"level\":\"warn\"},\"http\":{\"ca_bundle\":\"%s\"},"
             "\"auth\":{\"method\":\"client_secret\",\"authority_host\":\"%s\",\"tenant_id\":"
             "\"%s\",\"client_id\":\"%s\",\"client_secret_file\":\"%s\"},"
             "\"keyvault\":{\"vaults\":{\"%s\":\"%s\"},\"verify_challenge_resource\":false},"
             "\"ca\":{\"corp\":{\"type\":\"adcs\",\"url\":\"%s/certsrv\",\"auth\":\"basic\","
             "\"username\":\"renewer\",\"password_file\":\"%s\",\"trust_anchors\":\"%s\"}},"
             "\"renew\":{\"queue\":{\"url\":\"%s/%s\",%s},\"deadletter\":{\"url\":\"%s/%s\"},"
             "\"default_ca\":\"corp\",\"default_template\":\"WebServer\"}}",
             emu_ca_bundle(R.e), ep("services", "entra", NULL), ep("tenant", NULL, NULL),
             ep("identities", "renewer", "client_id"), secret, RF_VAULT,
             ep("services", "keyvault", RF_VAULT), emu_service_url(R.e, "ca"), pw, anchors,
             emu_service_url(R.e, "queue"), RF_ACCOUNT,
             bearer ? "\"auth\":\"bearer\""
                    : "\"auth\":\"shared_key\",\"account\":\"" RF_ACCOUNT
                      "\",\"key_file\":\"%KEY%\"",
             emu_service_url(R.e, "blob"), RF_ACCOUNT);
    /* The key file path goes in without a second format pass. */
    char *at = strstr(text, "%KEY%");
    if (at) {
        char rest[8192];
        snprintf(rest, sizeof rest, "%s", at + 5);
        snprintf(at, sizeof text - (size_t)(at - text), "%s%s", key, rest);
    }
    return clc_file_write_atomic(path, text, strlen(text), 0600, NULL) == CLC_OK ? 0 : -1;
}

static int setup(void **state)
{
    if (rf_setup(state) != 0)
        return -1;
    snprintf(cfg_bearer, sizeof cfg_bearer, "%s/bearer.json", R.dir);
    snprintf(cfg_shared, sizeof cfg_shared, "%s/shared.json", R.dir);
    return write_config(cfg_bearer, 1) || write_config(cfg_shared, 0) ? -1 : 0;
}

static struct test_proc_result res;

static int certlc(const char *cfg, const char *a1, const char *a2, const char *a3, const char *a4)
{
    char *argv[] = {CERTLC,     "--config", (char *)cfg, (char *)a1,
                    (char *)a2, (char *)a3, (char *)a4,  NULL};
    assert_int_equal(test_proc_run(argv, NULL, 60000, &res), 0);
    assert_false(res.timed_out);
    return res.exit_code;
}

static void renew_exit_codes(void **state)
{
    (void)state;
    struct rf_version v1, v2;
    rf_reset();
    /* Nothing to do: 2. */
    assert_int_equal(certlc(cfg_bearer, "renew", NULL, NULL, NULL), 2);
    /* Two certificates: 0, both renewed, through the bearer-token queue. */
    rf_seed("cli-a", NULL, &v1);
    rf_seed("cli-b", NULL, &v2);
    rf_event("cli-a", &v1);
    rf_event("cli-b", &v2);
    if (certlc(cfg_bearer, "renew", "--threads", "2", NULL) != 0)
        fail_msg("renew: %s %s", res.out, res.err);
    assert_non_null(strstr(res.out, "renewed 2"));
    assert_int_equal(rf_versions("cli-a"), 2);
    assert_int_equal(rf_versions("cli-b"), 2);
    /* A malformed message: poisoned, so 1. */
    rf_put_raw("not an event", 12);
    assert_int_equal(certlc(cfg_shared, "renew", NULL, NULL, NULL), 1);
    assert_non_null(strstr(res.out, "poisoned 1"));
    /* Bad usage: 1, with the usage on stderr. */
    assert_int_equal(certlc(cfg_shared, "renew", "--threads", "0", NULL), 1);
}

static void poison_and_deadletter_commands(void **state)
{
    (void)state;
    /* (continues from the test above: one poisoned message) */
    assert_int_equal(certlc(cfg_shared, "poison", "list", NULL, NULL), 0);
    assert_non_null(strstr(res.out, "bad_base64"));
    assert_int_equal(certlc(cfg_shared, "poison", "list", "--json", NULL), 0);
    cJSON *j = cJSON_Parse(res.out);
    assert_true(cJSON_IsArray(j));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "id"));
    assert_non_null(id);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "reason")),
        "bad_base64");
    char idcopy[128];
    snprintf(idcopy, sizeof idcopy, "%s", id);
    cJSON_Delete(j);
    assert_int_equal(certlc(cfg_shared, "poison", "replay", "--id", "nope"), 2);
    assert_int_equal(certlc(cfg_shared, "poison", "replay", "--id", idcopy), 0);
    assert_non_null(strstr(res.out, "replayed 1"));
    assert_int_equal(certlc(cfg_shared, "poison", "list", NULL, NULL), 2);
    /* Back on the work queue; poisoned again by the next drain. */
    assert_int_equal(certlc(cfg_shared, "renew", NULL, NULL, NULL), 1);
    assert_int_equal(certlc(cfg_shared, "poison", "bogus", NULL, NULL), 1);
    /* No dead-letter container yet: nothing there. */
    assert_int_equal(certlc(cfg_shared, "deadletter", "list", NULL, NULL), 2);
}

static void worker_wakes_and_stops(void **state)
{
    (void)state;
    struct rf_version v;
    int status = 0;
    rf_reset();
    rf_seed("cli-worker", NULL, &v);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execl(CERTLC, CERTLC, "--config", cfg_bearer, "worker", (char *)NULL);
        _exit(127);
    }
    /* Started and idle; the event arrives; SIGUSR1 wakes it. */
    clc_sleep_ms(500);
    rf_event("cli-worker", &v);
    int renewed = 0;
    for (int i = 0; i < 300 && !renewed; i++) {
        kill(pid, SIGUSR1);
        clc_sleep_ms(50);
        renewed = rf_versions("cli-worker") == 2;
    }
    kill(pid, SIGTERM);
    int waited = 0;
    for (int i = 0; i < 200 && !waited; i++) {
        waited = waitpid(pid, &status, WNOHANG) == pid;
        if (!waited)
            clc_sleep_ms(50);
    }
    if (!waited) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    assert_true(renewed);
    assert_true(waited);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(renew_exit_codes),
        cmocka_unit_test(poison_and_deadletter_commands),
        cmocka_unit_test(worker_wakes_and_stops),
    };
    return cmocka_run_group_tests(tests, setup, rf_teardown);
}
