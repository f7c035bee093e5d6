/* The ticker: tick hooks run after every clock change with the new time,
 * and stop hooks run once at emu_stop, in the reverse order of registration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "emulator/emu.h"
#include "emulator/services.h"

struct seen {
    pthread_mutex_t mu;
    int calls;
    int64_t last_now;
};

static void on_tick(struct emu *e, int64_t now, void *ctx)
{
    (void)e;
    struct seen *s = ctx;
    pthread_mutex_lock(&s->mu);
    s->calls++;
    s->last_now = now;
    pthread_mutex_unlock(&s->mu);
}

static char stop_order[8];
static size_t nstop;

static void on_stop(void *ctx)
{
    if (nstop < sizeof stop_order - 1)
        stop_order[nstop++] = *(const char *)ctx;
}

static void test_tick_after_clock_change(void **state)
{
    (void)state;
    struct emu_opts o = {.quiet = 1, .start_time = 1800000000};
    struct emu *e = NULL;
    struct clc_errinfo ei;
    struct seen s = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    static const char a = 'a', b = 'b';

    assert_int_equal(emu_start(&o, &e, &ei), CLC_OK);
    assert_int_equal(emu_on_tick(e, on_tick, &s), CLC_OK);
    assert_int_equal(emu_at_stop(e, on_stop, (void *)&a), CLC_OK);
    assert_int_equal(emu_at_stop(e, on_stop, (void *)&b), CLC_OK);

    /* 40 days on: the hook has run, synchronously, with the new time. */
    emu_clock_advance(e, 40 * 86400);
    pthread_mutex_lock(&s.mu);
    int calls = s.calls;
    int64_t seen = s.last_now;
    pthread_mutex_unlock(&s.mu);
    assert_true(calls >= 1);
    assert_true(seen >= 1800000000 + 40 * 86400);
    assert_true(seen < 1800000000 + 40 * 86400 + 600);

    emu_clock_set(e, 1900000000);
    pthread_mutex_lock(&s.mu);
    assert_true(s.calls >= calls + 1);
    assert_true(s.last_now >= 1900000000 && s.last_now < 1900000000 + 600);
    pthread_mutex_unlock(&s.mu);

    emu_stop(e);
    assert_string_equal(stop_order, "ba");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tick_after_clock_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
