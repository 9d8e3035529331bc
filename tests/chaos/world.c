/* world.c - the chaos run's world: tenants with their plans, zones,
 * channels and limit overrides; the anchor (the simulated "now" meterd is
 * started with, through METER_TEST_CLOCK_OFFSET); and per tenant the
 * instants worth an event: local midnights starting a day, a month or the
 * year, and daylight-saving changes, within the lateness window.
 *
 * The anchor is 2 January of a year picked by the seed, 10:30-10:40 UTC: the
 * year, month and day boundaries of every zone lie in the last hours or
 * days, the autumn DST changes of New York, Madrid and St John's within the
 * 100-day lateness window, and no zone reaches a local midnight for the
 * next 7 hours (the next is Kathmandu's, 18:15 UTC), so the current day and
 * month of every tenant stay put for the whole run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

uint64_t ch_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

int64_t ch_rnd(uint64_t *s, int64_t n)
{
	return (int64_t)(ch_rand(s) % (uint64_t)n);
}

/* ---- time zones -------------------------------------------------------------- */

/* Make tz the zone of localtime_r/mktime (tzset reloads only on change). */
static void use_tz(const char *tz)
{
	static char cur[64];
	if (strcmp(cur, tz) != 0) {
		setenv("TZ", tz, 1);
		tzset();
		snprintf(cur, sizeof(cur), "%s", tz);
	}
}

static struct tm local_tm(const char *tz, int64_t us)
{
	struct tm tm;
	time_t s = (time_t)(us / US_PER_S);
	use_tz(tz);
	localtime_r(&s, &tm);
	return tm;
}

static int64_t from_local(struct tm *tm)
{
	tm->tm_isdst = -1;
	return (int64_t)mktime(tm) * US_PER_S;
}

void ch_local_day(const char *tz, int64_t us, char day[16], char month[16])
{
	struct tm tm = local_tm(tz, us);
	strftime(day, 16, "%Y-%m-%d", &tm);
	strftime(month, 16, "%Y-%m-01", &tm);
}

int64_t ch_day_start(const char *tz, int64_t us)
{
	struct tm tm = local_tm(tz, us);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return from_local(&tm);
}

int64_t ch_day_end(const char *tz, int64_t us)
{
	struct tm tm = local_tm(tz, us);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday++;
	return from_local(&tm);
}

int64_t ch_month_start(const char *tz, int64_t us)
{
	struct tm tm = local_tm(tz, us);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday = 1;
	return from_local(&tm);
}

int64_t ch_month_end(const char *tz, int64_t us)
{
	struct tm tm = local_tm(tz, us);
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mday = 1;
	tm.tm_mon++;
	return from_local(&tm);
}

/* UTC offset of tz at us, in seconds. */
static long gmtoff(const char *tz, int64_t us)
{
	struct tm tm = local_tm(tz, us);
	return tm.tm_gmtoff;
}

/* ---- plans --------------------------------------------------------------------- */

int64_t ch_plan_limit(const char *plan, const char *metric, const char *period)
{
	static const struct {
		const char *plan;
		int64_t req_day, tok_day, req_month, tok_month;
	} plans[] = {
		{"free", 50, 100000, 500, 1000000},
		{"starter", 500, 1000000, 10000, 20000000},
		{"pro", 5000, 10000000, 100000, 200000000},
		{"enterprise", 50000, 100000000, 1000000, 2000000000},
	};
	for (size_t i = 0; i < sizeof(plans) / sizeof(plans[0]); i++) {
		if (strcmp(plans[i].plan, plan) != 0)
			continue;
		int day = strcmp(period, "day") == 0;
		if (strcmp(metric, "requests") == 0)
			return day ? plans[i].req_day : plans[i].req_month;
		if (strcmp(metric, "tokens") == 0)
			return day ? plans[i].tok_day : plans[i].tok_month;
	}
	return -1;
}

/* ---- tenants -------------------------------------------------------------------- */

/* Kathmandu: +05:45. New York, Madrid, St John's (-03:30/-02:30) and
 * Chatham (+12:45/+13:45): daylight saving. */
static const char *const zones[] = {"Asia/Kathmandu", "America/New_York", "Europe/Madrid",
				    "America/St_Johns", "Pacific/Chatham", "UTC"};
#define NZONES ((int)(sizeof(zones) / sizeof(zones[0])))

static void add_bound(struct ch_tenant *t, int64_t us, int64_t lo, int64_t hi)
{
	if (us < lo || us > hi || t->nbounds == CH_MAX_BOUNDS)
		return;
	for (int i = 0; i < t->nbounds; i++)
		if (t->bounds[i] == us)
			return;
	t->bounds[t->nbounds++] = us;
}

/* The instants of t's zone worth an event in [lo, hi]. */
static void find_bounds(struct ch_tenant *t, int64_t lo, int64_t hi)
{
	/* The last days' midnights, and the first of every month and year. */
	int64_t d = ch_day_start(t->tz, hi);
	for (int i = 0; i < 4; i++) {
		add_bound(t, d, lo, hi);
		d = ch_day_start(t->tz, d - 1);
	}
	for (int64_t m = ch_month_start(t->tz, hi); m >= lo; m = ch_month_start(t->tz, m - 1))
		add_bound(t, m, lo, hi);
	/* DST changes: hour by hour, then to the second. */
	long prev = gmtoff(t->tz, lo);
	for (int64_t h = lo + 3600 * US_PER_S; h <= hi; h += 3600 * US_PER_S) {
		long off = gmtoff(t->tz, h);
		if (off == prev)
			continue;
		int64_t a = h - 3600 * US_PER_S, b = h; /* offset changes in (a, b] */
		while (b - a > US_PER_S) {
			int64_t mid = a + (b - a) / 2 / US_PER_S * US_PER_S;
			if (mid == a)
				mid = a + US_PER_S;
			if (gmtoff(t->tz, mid) == prev)
				a = mid;
			else
				b = mid;
		}
		add_bound(t, b, lo, hi);                        /* the change itself */
		add_bound(t, ch_day_start(t->tz, b), lo, hi);   /* its day, 23 or 25 h */
		add_bound(t, ch_day_end(t->tz, b), lo, hi);
		prev = off;
	}
}

static const char *pick_plan(uint64_t *s)
{
	int64_t r = ch_rnd(s, 100);
	return r < 40 ? "free" : r < 75 ? "starter" : r < 90 ? "pro" : "enterprise";
}

static void add_override(struct ch_tenant *t, const char *level, const char *metric,
			 const char *period, int64_t value)
{
	if (t->nov < CH_MAX_OVERRIDES)
		t->ov[t->nov++] = (struct ch_override){level, metric, period, value};
}

int ch_world_init(struct ch_world *w, const struct ch_opts *o)
{
	memset(w, 0, sizeof(*w));
	w->o = *o;
	if (o->tenants < 3 || o->tenants > CH_MAX_TENANTS) {
		fprintf(stderr, "chaos_gen: --tenants must be 3..%d\n", CH_MAX_TENANTS);
		return -1;
	}
	uint64_t s = o->seed ^ 0x77071d;
	ch_rand(&s);
	/* 2 January of 2025..2028, 10:30 UTC plus up to 10 minutes. */
	struct tm tm = {.tm_year = 125 + (int)(o->seed % 4), .tm_mon = 0, .tm_mday = 2,
			.tm_hour = 10, .tm_min = 30};
	w->anchor_us = (int64_t)timegm(&tm) * US_PER_S + ch_rnd(&s, 600) * US_PER_S +
		       ch_rnd(&s, 1000) * 1000;
	/* Valid events stay this far inside the lateness bound, which moves
	 * with the clock for as long as the run lasts. */
	int64_t margin = (2 * o->duration_s + 3600) * US_PER_S;
	w->window_lo_us = w->anchor_us - o->lateness_s * US_PER_S + margin;
	if (w->window_lo_us >= w->anchor_us - US_PER_DAY) {
		fprintf(stderr, "chaos_gen: the lateness bound is too short for the duration\n");
		return -1;
	}
	w->ntenants = (int)o->tenants;
	for (int i = 0; i < w->ntenants; i++) {
		struct ch_tenant *t = &w->t[i];
		t->registered = i >= 2; /* two tenants are never added: auto-created */
		if (t->registered) {
			snprintf(t->id, sizeof(t->id), "%s-t%02d", o->prefix, i);
			t->tz = zones[(i - 2) % NZONES];
			t->plan = pick_plan(&s);
			t->webhook = o->webhook_url[0] && ch_rnd(&s, 10) < 7;
			t->email = o->email && ch_rnd(&s, 10) < 6;
			/* Some receivers fail every first attempt (fail=1): retries. */
			t->webhook_query = ch_rnd(&s, 3) == 0 ? "fail=1" : "";
			if (ch_rnd(&s, 7) == 0) {
				static const int custom[][3] = {{50, 75, 100}, {60, 100, 0}};
				int k = (int)ch_rnd(&s, 2);
				for (int j = 0; j < 3 && custom[k][j]; j++)
					t->thresholds[t->nthresholds++] = custom[k][j];
			}
			if (ch_rnd(&s, 100) < 35)
				add_override(t, "user", "requests", "day", 5 + ch_rnd(&s, 20));
			if (ch_rnd(&s, 100) < 25)
				add_override(t, "key", "tokens", "month", 50000 + ch_rnd(&s, 350000));
			if (ch_rnd(&s, 100) < 20) /* USD 0.10 .. 0.60, in whole cents */
				add_override(t, "tenant", "cost", "month",
					     (10 + ch_rnd(&s, 50)) * (PUSD_PER_USD / 100));
			if (ch_rnd(&s, 100) < 15)
				add_override(t, "tenant", "op:chat", "day", 5 + ch_rnd(&s, 25));
			if (ch_rnd(&s, 100) < 10)
				add_override(t, "tenant", "requests", "day", -1); /* unlimited */
		} else {
			snprintf(t->id, sizeof(t->id), "%s-anon%d", o->prefix, i);
			t->tz = "UTC";
			t->plan = "free";
			t->webhook_query = "";
		}
		t->partition = (int)((i * 5 + 1) % o->partitions);
		find_bounds(t, w->window_lo_us, w->anchor_us - 60 * US_PER_S);
		t->today_start = ch_day_start(t->tz, w->anchor_us);
		t->month_start = ch_month_start(t->tz, w->anchor_us);
		/* The current day and month must last well past the run. */
		if (ch_day_end(t->tz, w->anchor_us) - w->anchor_us <
		    (o->duration_s * 2 + 1800) * US_PER_S) {
			fprintf(stderr, "chaos_gen: tenant %s (%s) reaches midnight during the run; "
					"use a shorter --duration\n",
				t->id, t->tz);
			return -1;
		}
	}
	return 0;
}
