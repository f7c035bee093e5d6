/* Clocks and time formats. Calendar arithmetic is done here on plain integers
 * (proleptic Gregorian, UTC) so that no result depends on TZ or the C
 * library's locale-aware time functions. */
#include "core/clock.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int64_t clc_clock_now_ms(const struct clc_clock *c)
{
    if (c != NULL && c->now_ms != NULL)
        return c->now_ms(c->ctx);
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

int64_t clc_clock_now(const struct clc_clock *c)
{
    return floor_div(clc_clock_now_ms(c), 1000);
}

int64_t clc_mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void clc_sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec req = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    struct timespec rem;
    /* nanosleep reports what is left when a signal interrupts it; resuming
     * with that keeps the total bounded by ms. */
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Leap days in years 1..y (y may be zero or negative). */
static int64_t leaps_through(int64_t y)
{
    return floor_div(y, 4) - floor_div(y, 100) + floor_div(y, 400);
}

/* Days from 1970-01-01 to the first of January of year y. */
static int64_t days_to_year(int64_t y)
{
    return 365 * (y - 1970) + leaps_through(y - 1) - leaps_through(1969);
}

int64_t clc_time_from_utc(int year, int mon, int day, int hour, int min, int sec)
{
    /* Months outside 1..12 carry into the year rather than index past the
     * table: callers doing "month + 1" arithmetic get the expected date. */
    int64_t y = (int64_t)year + floor_div((int64_t)mon - 1, 12);
    int m = (int)((int64_t)mon - 1 - 12 * floor_div((int64_t)mon - 1, 12)) + 1;
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = days_to_year(y) + before[m - 1] + (m > 2 && is_leap(y) ? 1 : 0) + day - 1;
    return days * 86400 + (int64_t)hour * 3600 + (int64_t)min * 60 + sec;
}

struct civil {
    int64_t year;
    int mon, day, hour, min, sec, wday; /* wday: 0 = Sunday */
};

static void civil_from_time(int64_t t, struct civil *c)
{
    int64_t days = floor_div(t, 86400);
    int64_t secs = t % 86400; /* not t - days * 86400, which overflows near INT64_MIN */
    if (secs < 0)
        secs += 86400;
    c->hour = (int)(secs / 3600);
    c->min = (int)(secs / 60 % 60);
    c->sec = (int)(secs % 60);
    c->wday = (int)(days + 4 - 7 * floor_div(days + 4, 7)); /* 1970-01-01 was a Thursday */

    /* Peel off whole Gregorian cycles counted from 0001-01-01: 400 years are
     * 146097 days, a century 36524, four years 1461, a year 365. The last
     * century and year of a cycle are a day longer, hence the clamps. */
    int64_t d = days + 719162;
    int64_t q400 = floor_div(d, 146097);
    d -= q400 * 146097;
    int64_t q100 = d / 36524;
    if (q100 == 4)
        q100 = 3;
    d -= q100 * 36524;
    int64_t q4 = d / 1461;
    d -= q4 * 1461;
    int64_t q1 = d / 365;
    if (q1 == 4)
        q1 = 3;
    d -= q1 * 365;
    c->year = q400 * 400 + q100 * 100 + q4 * 4 + q1 + 1;
    int m = 1;
    while (m < 12 && d >= days_in_month(c->year, m)) {
        d -= days_in_month(c->year, m);
        m++;
    }
    c->mon = m;
    c->day = (int)d + 1;
}

static const char *const wday_names[7] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const wday_long[7] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                         "Thursday", "Friday", "Saturday"};
static const char *const mon_names[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* Writes v as exactly `width` decimal digits (v fits: callers check the
 * year and the rest are calendar fields); returns the end. */
static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Both formats are fixed-width, written field by field: the Date and
 * x-ms-date headers of every Storage request and reply go through here. */
enum clc_err clc_time_fmt_rfc1123(int64_t t, char out[CLC_TIME_STR_MAX])
{
    struct civil c;
    char *p = out;

    out[0] = '\0';
    civil_from_time(t, &c);
    if (c.year < 0 || c.year > 9999)
        return CLC_ERR_INVALID;
    p = put_str(p, wday_names[c.wday]);
    p = put_str(p, ", ");
    p = put_digits(p, c.day, 2);
    *p++ = ' ';
    p = put_str(p, mon_names[c.mon - 1]);
    *p++ = ' ';
    p = put_digits(p, (int)c.year, 4);
    *p++ = ' ';
    p = put_digits(p, c.hour, 2);
    *p++ = ':';
    p = put_digits(p, c.min, 2);
    *p++ = ':';
    p = put_digits(p, c.sec, 2);
    p = put_str(p, " GMT");
    *p = '\0';
    return CLC_OK;
}

enum clc_err clc_time_fmt_iso8601(int64_t t, char out[CLC_TIME_STR_MAX])
{
    struct civil c;
    char *p = out;

    out[0] = '\0';
    civil_from_time(t, &c);
    if (c.year < 0 || c.year > 9999)
        return CLC_ERR_INVALID;
    p = put_digits(p, (int)c.year, 4);
    *p++ = '-';
    p = put_digits(p, c.mon, 2);
    *p++ = '-';
    p = put_digits(p, c.day, 2);
    *p++ = 'T';
    p = put_digits(p, c.hour, 2);
    *p++ = ':';
    p = put_digits(p, c.min, 2);
    *p++ = ':';
    p = put_digits(p, c.sec, 2);
    *p++ = 'Z';
    *p = '\0';
    return CLC_OK;
}

/* A tiny cursor parser: each step consumes exactly what it expects or fails,
 * so there is no sscanf leniency (signs, spaces, widths) to reason about. */
struct cur {
    const char *p;
};

static int take_lit(struct cur *c, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(c->p, lit, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int take_digits(struct cur *c, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char ch = c->p[i];
        if (ch < '0' || ch > '9')
            return 0;
        v = v * 10 + (ch - '0');
    }
    c->p += n;
    *out = v;
    return 1;
}

/* Index of the name in table that the cursor starts with, consumed. */
static int take_name(struct cur *c, const char *const *table, int n)
{
    for (int i = 0; i < n; i++) {
        if (take_lit(c, table[i]))
            return i;
    }
    return -1;
}

static int valid_fields(int year, int mon, int day, int hour, int min, int sec)
{
    if (year < 0 || year > 9999 || mon < 1 || mon > 12)
        return 0;
    if (day < 1 || day > days_in_month(year, mon))
        return 0;
    /* 60 is a leap second (RFC 3339 §5.7); it reads as the next second. */
    return hour >= 0 && hour <= 23 && min >= 0 && min <= 59 && sec >= 0 && sec <= 60;
}

/* "08:49:37" */
static int take_hms(struct cur *c, int *h, int *m, int *s)
{
    return take_digits(c, 2, h) && take_lit(c, ":") && take_digits(c, 2, m) && take_lit(c, ":") &&
           take_digits(c, 2, s);
}

/* Sun, 06 Nov 1994 08:49:37 GMT */
static int parse_imf(struct cur *c, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int m;
    if (take_name(c, wday_names, 7) < 0 || !take_lit(c, ", ") || !take_digits(c, 2, d) ||
        !take_lit(c, " ") || (m = take_name(c, mon_names, 12)) < 0 || !take_lit(c, " ") ||
        !take_digits(c, 4, y) || !take_lit(c, " ") || !take_hms(c, h, mi, s) ||
        !take_lit(c, " GMT"))
        return 0;
    *mo = m + 1;
    return 1;
}

/* Sunday, 06-Nov-94 08:49:37 GMT. RFC 9110 §5.6.7: a two-digit year that
 * would be more than 50 years in the future is the most recent past year
 * with those digits. */
static int parse_rfc850(struct cur *c, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int m, yy;
    if (take_name(c, wday_long, 7) < 0 || !take_lit(c, ", ") || !take_digits(c, 2, d) ||
        !take_lit(c, "-") || (m = take_name(c, mon_names, 12)) < 0 || !take_lit(c, "-") ||
        !take_digits(c, 2, &yy) || !take_lit(c, " ") || !take_hms(c, h, mi, s) ||
        !take_lit(c, " GMT"))
        return 0;
    struct civil now;
    civil_from_time(clc_clock_now(NULL), &now);
    int64_t year = now.year - now.year % 100 + yy;
    if (year > now.year + 50)
        year -= 100;
    *y = (int)year;
    *mo = m + 1;
    return 1;
}

/* Sun Nov  6 08:49:37 1994 (the day is space-padded, or two digits) */
static int parse_asctime(struct cur *c, int *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int m;
    if (take_name(c, wday_names, 7) < 0 || !take_lit(c, " ") ||
        (m = take_name(c, mon_names, 12)) < 0 || !take_lit(c, " "))
        return 0;
    if (c->p[0] == ' ') {
        c->p++;
        if (!take_digits(c, 1, d))
            return 0;
    } else if (!take_digits(c, 2, d)) {
        return 0;
    }
    if (!take_lit(c, " ") || !take_hms(c, h, mi, s) || !take_lit(c, " ") || !take_digits(c, 4, y))
        return 0;
    *mo = m + 1;
    return 1;
}

enum clc_err clc_time_parse_rfc1123(const char *s, int64_t *out)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    *out = 0;
    if (s == NULL)
        return CLC_ERR_PARSE;
    /* The weekday's length tells the forms apart: "Sun," is IMF-fixdate,
     * "Sunday," RFC 850, "Sun " asctime. */
    struct cur c = {s};
    int ok = parse_imf(&c, &y, &mo, &d, &h, &mi, &sec);
    if (!ok) {
        c.p = s;
        ok = parse_rfc850(&c, &y, &mo, &d, &h, &mi, &sec);
    }
    if (!ok) {
        c.p = s;
        ok = parse_asctime(&c, &y, &mo, &d, &h, &mi, &sec);
    }
    if (!ok || *c.p != '\0' || !valid_fields(y, mo, d, h, mi, sec))
        return CLC_ERR_PARSE;
    *out = clc_time_from_utc(y, mo, d, h, mi, sec);
    return CLC_OK;
}

/* At most this many fraction digits: enough for .NET's seven (Azure) and
 * nanoseconds, short enough to refuse a runaway string. */
#define ISO_FRAC_MAX 12

enum clc_err clc_time_parse_iso8601(const char *s, int64_t *out)
{
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0;
    *out = 0;
    if (s == NULL)
        return CLC_ERR_PARSE;
    struct cur c = {s};
    if (!take_digits(&c, 4, &y) || !take_lit(&c, "-") || !take_digits(&c, 2, &mo) ||
        !take_lit(&c, "-") || !take_digits(&c, 2, &d))
        return CLC_ERR_PARSE;
    if (*c.p != 'T' && *c.p != 't')
        return CLC_ERR_PARSE;
    c.p++;
    if (!take_hms(&c, &h, &mi, &sec))
        return CLC_ERR_PARSE;
    if (*c.p == '.') {
        c.p++;
        int nd = 0;
        while (*c.p >= '0' && *c.p <= '9') {
            if (++nd > ISO_FRAC_MAX)
                return CLC_ERR_PARSE;
            c.p++;
        }
        if (nd == 0)
            return CLC_ERR_PARSE;
    }
    int64_t offset = 0;
    if (*c.p == 'Z' || *c.p == 'z') {
        c.p++;
    } else if (*c.p == '+' || *c.p == '-') {
        int sign = *c.p == '-' ? -1 : 1;
        int oh = 0, om = 0;
        c.p++;
        if (!take_digits(&c, 2, &oh) || !take_lit(&c, ":") || !take_digits(&c, 2, &om))
            return CLC_ERR_PARSE;
        if (oh > 23 || om > 59)
            return CLC_ERR_PARSE;
        offset = sign * ((int64_t)oh * 3600 + (int64_t)om * 60);
    } else {
        return CLC_ERR_PARSE; /* a local time without offset is ambiguous */
    }
    if (*c.p != '\0' || !valid_fields(y, mo, d, h, mi, sec))
        return CLC_ERR_PARSE;
    /* Local time minus its offset from UTC is UTC. */
    *out = clc_time_from_utc(y, mo, d, h, mi, sec) - offset;
    return CLC_OK;
}
