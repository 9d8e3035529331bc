/* test_aggregator.c - unit tests of the batch arithmetic done in C: pricing
 * (the same rule as sql/001_schema.sql), civil dates, the in-memory rollup
 * sums and their COPY rows, and the hand-written number and time formats
 * checked against snprintf. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "consumer.h"
#include "event.h"
#include "num.h"
#include "prices.h"
#include "rollup.h"
#include "rollups.h"
#include "strmap.h"
#include "workers.h"
#include "zones.h"

#define US(y, m, d) ((int64_t)zone_days(y, m, d) * 86400 * 1000000)

static struct prc *prices_fixture(void)
{
	const struct prc_row rows[] = {
		/* id, provider, model, valid_from, in, cached, out, request, units */
		{1, "openai", "gpt-4o", US(2025, 1, 1), 2500000, 1250000, 10000000, 0, "{}"},
		{2, "openai", "gpt-4o-mini", US(2025, 1, 1), 150000, 75000, 600000, 0, "{}"},
		{3, "openai", "gpt-4o", US(2026, 6, 1), 2000000, 1000000, 8000000, 0, "{}"},
		/* a longer model whose only row starts later than some events */
		{4, "openai", "gpt-4o-2024-08-06", US(2026, 9, 1), 1, 1, 1, 0, "{}"},
		{5, "openai", "dall-e-3", US(2025, 1, 1), 0, 0, 0, 0, "{\"images\": 40000000000}"},
		{6, "acme", "per-call", US(2025, 1, 1), 0, 0, 0, 5000, "{}"},
		{7, "openai", "huge", US(2025, 1, 1), 1000000000, 0, 0, 0, "{}"},
	};
	struct prc *p = prc_new();
	char err[256];
	assert_non_null(p);
	assert_int_equal(prc_set_rows(p, rows, (int)(sizeof(rows) / sizeof(rows[0])), err,
				      sizeof(err)),
			 0);
	return p;
}

static void test_prices_pick_longest_model_in_force(void **state)
{
	(void)state;
	struct prc *p = prices_fixture();
	static const struct ev_unit three_images[] = {{"images", 3}, {"seconds", 9}};
	const struct {
		const char *provider, *model;
		int64_t time_us, in, cached, out, requests;
		const struct ev_unit *units;
		int nunits;
		enum prc_source source;
		int64_t price_id;
		const char *cost;
	} cases[] = {
		/* exact model, first price */
		{"openai", "gpt-4o", US(2025, 6, 1), 1000, 200, 100, 1, NULL, 0, PRC_PRICE, 1,
		 "3250000000"},
		/* later valid_from wins once in force */
		{"openai", "gpt-4o", US(2026, 7, 1), 1000, 200, 100, 1, NULL, 0, PRC_PRICE, 3,
		 "2600000000"},
		/* prefix + '-' matches; longer prefix not yet in force falls back */
		{"openai", "gpt-4o-2024-08-06", US(2026, 7, 1), 10, 0, 0, 1, NULL, 0, PRC_PRICE, 3,
		 "20000000"},
		{"openai", "gpt-4o-2024-08-06", US(2026, 10, 1), 10, 0, 0, 1, NULL, 0, PRC_PRICE, 4,
		 "10"},
		/* gpt-4o-mini is its own model, not gpt-4o's */
		{"openai", "gpt-4o-mini", US(2026, 7, 1), 1000, 0, 0, 1, NULL, 0, PRC_PRICE, 2,
		 "150000000"},
		/* a prefix without '-' does not match */
		{"openai", "gpt-4ox", US(2026, 7, 1), 1000, 0, 0, 1, NULL, 0, PRC_UNPRICED, 0, "0"},
		/* other provider */
		{"anthropic", "gpt-4o", US(2026, 7, 1), 1000, 0, 0, 1, NULL, 0, PRC_UNPRICED, 0, "0"},
		/* before any price */
		{"openai", "gpt-4o", US(2024, 1, 1), 1000, 0, 0, 1, NULL, 0, PRC_UNPRICED, 0, "0"},
		/* units priced, unknown units ignored */
		{"openai", "dall-e-3", US(2026, 7, 1), 0, 0, 0, 1, three_images, 2, PRC_PRICE, 5,
		 "120000000000"},
		/* request price */
		{"acme", "per-call", US(2026, 7, 1), 0, 0, 0, 7, NULL, 0, PRC_PRICE, 6, "35000"},
		/* 10^12 tokens at 10^9 pUSD: beyond int64 */
		{"openai", "huge", US(2026, 7, 1), EV_TOKENS_MAX, 0, 0, 1, NULL, 0, PRC_PRICE, 7,
		 "1000000000000000000000"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prc_usage u = {cases[i].provider, cases[i].model, cases[i].time_us,
				      cases[i].in,       cases[i].cached, cases[i].out,
				      cases[i].requests, cases[i].units, cases[i].nunits,
				      0,                 0};
		__int128 cost;
		int64_t id;
		char text[48];
		enum prc_source src = prc_cost(p, &u, &cost, &id);
		num_format_i128(cost, text, sizeof(text));
		if (src != cases[i].source || id != cases[i].price_id ||
		    strcmp(text, cases[i].cost) != 0)
			fail_msg("case %zu (%s %s): source %d price %lld cost %s, want %d %lld %s", i,
				 cases[i].provider, cases[i].model, src, (long long)id, text,
				 cases[i].source, (long long)cases[i].price_id, cases[i].cost);
	}
	assert_int_equal(prc_version(p), 7);
	prc_destroy(p);
}

static void test_prices_event_cost_wins(void **state)
{
	(void)state;
	struct prc *p = prices_fixture();
	struct prc_usage u = {"openai", "gpt-4o", US(2025, 6, 1), 1000, 0, 0, 1, NULL, 0, 1,
			      4200000000};
	__int128 cost;
	int64_t id;
	assert_int_equal(prc_cost(p, &u, &cost, &id), PRC_EVENT);
	assert_true(cost == 4200000000);
	assert_int_equal(id, 1); /* the row in force is still named */
	prc_destroy(p);
}

static void test_civil_dates_round_trip(void **state)
{
	(void)state;
	static const struct {
		int y, m, d;
		int32_t days;
	} cases[] = {
		{1970, 1, 1, 0},         {1969, 12, 31, -1},     {2000, 2, 29, 11016},
		{2024, 2, 29, 19782},    {2024, 3, 1, 19783},    {2026, 11, 23, 20780},
		{2100, 3, 1, 47541},     {1, 1, 1, -719162},     {9999, 12, 31, 2932896},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int y, m, d;
		assert_int_equal(zone_days(cases[i].y, cases[i].m, cases[i].d), cases[i].days);
		zone_civil(cases[i].days, &y, &m, &d);
		assert_int_equal(y, cases[i].y);
		assert_int_equal(m, cases[i].m);
		assert_int_equal(d, cases[i].d);
	}
	for (int32_t day = -800000; day < 3000000; day += 997) {
		int y, m, d;
		zone_civil(day, &y, &m, &d);
		assert_int_equal(zone_days(y, m, d), day);
	}
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The COPY rows of r, sorted, joined by '|' instead of newlines. */
static char *sorted_rows(const struct rol *r, int breakdown)
{
	struct buf b;
	buf_init(&b, 0);
	if (breakdown)
		rol_copy_breakdown(r, &b);
	else
		rol_copy_rollups(r, &b);
	buf_putc(&b, '\0');
	char *lines[64];
	int n = 0;
	for (char *s = strtok(b.data, "\n"); s && n < 64; s = strtok(NULL, "\n"))
		lines[n++] = s;
	qsort(lines, (size_t)n, sizeof(lines[0]), line_cmp);
	char *out = calloc(1, b.len + 2);
	for (int i = 0; i < n; i++) {
		strcat(out, lines[i]);
		strcat(out, "|");
	}
	buf_free(&b);
	return out;
}

/* Field by field, as PostgreSQL compares the key columns under the C
 * collation: the first nkeys tab-separated fields of two COPY rows. */
static int key_fields_cmp(const char *x, const char *y, int nkeys)
{
	for (int f = 0; f < nkeys; f++) {
		size_t nx = strcspn(x, "\t\n"), ny = strcspn(y, "\t\n");
		size_t n = nx < ny ? nx : ny;
		int c = memcmp(x, y, n);
		if (c == 0)
			c = (nx > ny) - (nx < ny);
		if (c != 0)
			return c;
		x += nx + 1;
		y += ny + 1;
	}
	return 0;
}

static void test_rollup_rows_come_in_key_order(void **state)
{
	(void)state;
	struct rol *r = rol_new();
	/* Prefixes and characters on either side of the tab's byte value. */
	static const char *const tenants[] = {"ab", "a", "a-b", "b", "a.b", "A", "a"};
	static const char *const users[] = {"u2", "u1", "", "u10", "u-1", "u1", "u"};
	int32_t d1 = zone_days(2026, 11, 30), d2 = zone_days(2026, 12, 1);
	for (int i = 0; i < 7; i++) {
		struct rol_event e = {tenants[i], users[i], i % 2 ? "k" : "", "openai", "gpt-4o",
				      i % 3 ? "chat" : "embed", i % 2 ? d1 : d2, 1, 1, 0, 1, 0, 1,
				      NULL, 0};
		assert_int_equal(rol_add(r, &e), 0);
	}
	for (int breakdown = 0; breakdown < 2; breakdown++) {
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(breakdown ? rol_copy_breakdown(r, &b) : rol_copy_rollups(r, &b), 0);
		buf_putc(&b, '\0');
		size_t rows = 0;
		const char *prev = NULL;
		for (const char *line = b.data; *line; line = strchr(line, '\n') + 1) {
			if (prev)
				assert_true(key_fields_cmp(prev, line, breakdown ? 7 : 5) < 0);
			prev = line;
			rows++;
		}
		assert_int_equal(rows, breakdown ? rol_breakdown_rows(r) : rol_rows(r));
		assert_true(strncmp(b.data, "A\t", 2) == 0);
		buf_free(&b);
	}
	rol_destroy(r);
}

/* Two workers sort their own batch's rows at the same time (the qsort
 * comparator's context was once a plain global: each thread then compared
 * its rows with the other's key buffer, out of order and out of bounds). */
struct sort_job {
	struct rol *r;
	const char *want; /* the rows as one thread alone writes them */
	int rounds, mismatches;
};

static struct rol *many_rows(const char *prefix, int n)
{
	struct rol *r = rol_new();
	int32_t day = zone_days(2026, 12, 6);
	for (int i = 0; i < n; i++) {
		char tenant[32], user[32];
		/* Inserted out of key order. */
		snprintf(tenant, sizeof(tenant), "%s%05d", prefix, (i * 7919) % n);
		snprintf(user, sizeof(user), "u%d", i % 13);
		struct rol_event e = {tenant, user, "", "openai", "gpt-4o", "chat", day, 1, 1, 0, 1, 0, 1,
				      NULL, 0};
		if (rol_add(r, &e) != 0)
			return NULL;
	}
	return r;
}

static void *sort_rounds(void *opaque)
{
	struct sort_job *j = opaque;
	for (int k = 0; k < j->rounds; k++) {
		struct buf b;
		buf_init(&b, 0);
		if (rol_copy_rollups(j->r, &b) != 0 || rol_copy_breakdown(j->r, &b) != 0 ||
		    b.len != strlen(j->want) || memcmp(b.data, j->want, b.len) != 0)
			j->mismatches++;
		buf_free(&b);
	}
	return NULL;
}

static void test_rollup_rows_sorted_by_two_threads_at_once(void **state)
{
	(void)state;
	struct sort_job jobs[2];
	char *want[2];
	for (int t = 0; t < 2; t++) {
		/* Different key lengths and row counts in each. */
		jobs[t].r = many_rows(t ? "tenant-long-prefix-" : "t", t ? 3000 : 5000);
		assert_non_null(jobs[t].r);
		struct buf b;
		buf_init(&b, 0);
		assert_int_equal(rol_copy_rollups(jobs[t].r, &b), 0);
		assert_int_equal(rol_copy_breakdown(jobs[t].r, &b), 0);
		buf_putc(&b, '\0');
		want[t] = strdup(b.data);
		buf_free(&b);
		jobs[t].want = want[t];
		jobs[t].rounds = 20;
		jobs[t].mismatches = 0;
	}
	pthread_t th[2];
	for (int t = 0; t < 2; t++)
		assert_int_equal(pthread_create(&th[t], NULL, sort_rounds, &jobs[t]), 0);
	for (int t = 0; t < 2; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(jobs[t].mismatches, 0);
		rol_destroy(jobs[t].r);
		free(want[t]);
	}
}

static void test_rollup_sums_rows_per_subject_and_period(void **state)
{
	(void)state;
	struct rol *r = rol_new();
	static const struct ev_unit img[] = {{"images", 2}};
	int32_t nov23 = zone_days(2026, 11, 23), nov24 = zone_days(2026, 11, 24);
	struct rol_event a = {"acme", "u1", "k1", "openai", "gpt-4o", "chat", nov23, 1, 100, 10,
			      50, 5, 1000, NULL, 0};
	struct rol_event b = {"acme", "u2", "", "openai", "dall-e-3", "image_generation", nov24, 1,
			      0, 0, 0, 0, 7, img, 1};
	assert_int_equal(rol_add(r, &a), 0);
	assert_int_equal(rol_add(r, &a), 0);
	assert_int_equal(rol_add(r, &b), 0);
	/* tenant: 2 days + 1 month; u1: day + month; u2: day + month; k1: day + month */
	assert_int_equal(rol_rows(r), 9);
	char *rows = sorted_rows(r, 0);
	assert_string_equal(rows,
			    "acme\tkey\tk1\tday\t2026-11-23\t2\t2\t200\t20\t100\t10\t2000|"
			    "acme\tkey\tk1\tmonth\t2026-11-01\t2\t2\t200\t20\t100\t10\t2000|"
			    "acme\ttenant\t\tday\t2026-11-23\t2\t2\t200\t20\t100\t10\t2000|"
			    "acme\ttenant\t\tday\t2026-11-24\t1\t1\t0\t0\t0\t0\t7|"
			    "acme\ttenant\t\tmonth\t2026-11-01\t3\t3\t200\t20\t100\t10\t2007|"
			    "acme\tuser\tu1\tday\t2026-11-23\t2\t2\t200\t20\t100\t10\t2000|"
			    "acme\tuser\tu1\tmonth\t2026-11-01\t2\t2\t200\t20\t100\t10\t2000|"
			    "acme\tuser\tu2\tday\t2026-11-24\t1\t1\t0\t0\t0\t0\t7|"
			    "acme\tuser\tu2\tmonth\t2026-11-01\t1\t1\t0\t0\t0\t0\t7|");
	free(rows);
	rows = sorted_rows(r, 1);
	/* model and unit rows for the tenant only, and by day only */
	assert_non_null(strstr(rows, "acme\ttenant\t\tday\t2026-11-23\tmodel\topenai/gpt-4o\t2\t"));
	assert_null(strstr(rows, "\tmonth\t"));
	/* tenant: chat and gpt-4o on the 23rd, image_generation, dall-e-3 and
	 * images on the 24th; u1, u2 and k1 one operation each */
	assert_int_equal(rol_breakdown_rows(r), 8);
	assert_non_null(strstr(rows, "acme\ttenant\t\tday\t2026-11-24\tunit\timages\t1\t1\t0\t0\t0\t0\t7\t2|"));
	assert_non_null(strstr(rows, "acme\tuser\tu1\tday\t2026-11-23\toperation\tchat\t2\t"));
	assert_null(strstr(rows, "acme\tuser\tu2\tday\t2026-11-24\tunit"));
	assert_null(strstr(rows, "acme\tuser\tu1\tday\t2026-11-23\tmodel"));
	free(rows);
	rol_reset(r);
	assert_int_equal(rol_rows(r), 0);
	assert_int_equal(rol_breakdown_rows(r), 0);
	rol_destroy(r);
}

static void test_hand_formats_match_snprintf(void **state)
{
	(void)state;
	static const int64_t ints[] = {0, 1, -1, 9, 10, 1234567, -987654321, INT64_MAX, INT64_MIN};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		char want[32], got[48];
		snprintf(want, sizeof(want), "%lld", (long long)ints[i]);
		num_format_i128(ints[i], got, sizeof(got));
		assert_string_equal(got, want);
		struct buf b;
		buf_init(&b, 0);
		copy_i64(&b, ints[i]);
		buf_putc(&b, '\0');
		assert_string_equal(b.data, want);
		buf_free(&b);
	}
	char big[48];
	num_format_i128((__int128)INT64_MAX * 1000 + 7, big, sizeof(big));
	assert_string_equal(big, "9223372036854775807007");
	num_format_i128(-((__int128)INT64_MAX * 1000 + 7), big, sizeof(big));
	assert_string_equal(big, "-9223372036854775807007");

	static const int64_t times[] = {0, 1, -1, 1795420800123456, 951782400000000,
					253402300799999999, -62135596800000000};
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char got[40], want[40];
		ev_format_time(times[i], got, sizeof(got));
		int64_t us = times[i], days = us / 86400000000LL, rem = us % 86400000000LL;
		if (rem < 0) {
			days--;
			rem += 86400000000LL;
		}
		int y, m, d;
		zone_civil((int32_t)days, &y, &m, &d);
		int64_t s = rem / 1000000;
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", y, m, d,
			 (int)(s / 3600), (int)(s / 60 % 60), (int)(s % 60), (int)(rem % 1000000));
		assert_string_equal(got, want);
	}
}

static void test_strmap_put_get_grow(void **state)
{
	(void)state;
	struct strmap m;
	char keys[2000][16];
	strmap_init(&m);
	for (int i = 0; i < 2000; i++) {
		int added;
		snprintf(keys[i], sizeof(keys[i]), "k%d", i);
		int64_t *v = strmap_put(&m, keys[i], i, &added);
		assert_non_null(v);
		assert_int_equal(added, 1);
	}
	for (int i = 0; i < 2000; i++) {
		int added;
		assert_int_equal(*strmap_get(&m, keys[i]), i);
		assert_int_equal(*strmap_put(&m, keys[i], -1, &added), i);
		assert_int_equal(added, 0);
	}
	assert_null(strmap_get(&m, "absent"));
	strmap_reset(&m);
	assert_null(strmap_get(&m, "k1"));
	strmap_free(&m);
}

/* The rollup publisher's pause: a round every METER_ROLLUP_INTERVAL (1 s) at
 * a steady load, whatever the round took (longer pauses there feed on
 * themselves); spaced out only while catching up, up to 15 s. */
static void test_rollup_publisher_pause(void **state)
{
	(void)state;
	assert_int_equal(rollpub_pause_ms(0, 0, 1000), 1000);
	assert_int_equal(rollpub_pause_ms(900, 0, 1000), 1000);
	assert_int_equal(rollpub_pause_ms(60000, 0, 1000), 1000);
	assert_int_equal(rollpub_pause_ms(100, 1, 1000), 1000);
	assert_int_equal(rollpub_pause_ms(2000, 1, 1000), 6000);
	assert_int_equal(rollpub_pause_ms(60000, 1, 1000), 15000);
	/* METER_ROLLUP_INTERVAL: steady rounds that far apart, and never
	 * closer while catching up. */
	assert_int_equal(rollpub_pause_ms(900, 0, 5000), 5000);
	assert_int_equal(rollpub_pause_ms(1000, 1, 5000), 5000);
	assert_int_equal(rollpub_pause_ms(2000, 1, 5000), 6000);
	assert_int_equal(rollpub_pause_ms(60000, 1, 5000), 15000);
	assert_int_equal(rollpub_pause_ms(60000, 1, 30000), 30000);
}

/* The workers' loop trims the allocator's free memory every 10 s, but not
 * within 10 s of a worker catching up. */
static void test_trim_due(void **state)
{
	(void)state;
	const int64_t e = WRK_TRIM_EVERY_MS;
	assert_true(wrk_trim_due(100 * e, 0, 0));             /* never trimmed, never behind */
	assert_false(wrk_trim_due(100 * e, 100 * e - 1, 0));  /* trimmed just now */
	assert_true(wrk_trim_due(100 * e, 99 * e, 0));        /* trimmed 10 s ago */
	assert_false(wrk_trim_due(100 * e, 0, 100 * e));      /* catching up now */
	assert_false(wrk_trim_due(100 * e, 0, 100 * e - 1)); /* caught up 1 ms ago */
	assert_true(wrk_trim_due(100 * e, 0, 99 * e));        /* caught up 10 s ago */
}

/* When a batch is due: one case per rule (batch-max 1000, catch-up batch-max
 * 4000). */
static void test_batch_due(void **state)
{
	(void)state;
	static const struct {
		size_t pending;
		int64_t wait, age, ready_age;
		int queue_empty;
		int64_t behind;
		int due;
		const char *what;
	} cases[] = {
		{0, 100, 500, 500, 1, 0, 0, "nothing pending"},
		{1000, 100, 0, 0, 0, 0, 1, "full"},
		/* The first message arrived while the consumer waited: batch-wait
		 * from then, queue drained or not. */
		{10, 100, 99, 99, 1, 0, 0, "waited 99 ms"},
		{10, 100, 100, 100, 0, 0, 1, "waited 100 ms"},
		/* Queued behind a 300 ms flush: due once the queue is drained,
		 * not batch-wait later; while more are queued, it takes them. */
		{10, 100, 2, 300, 0, 0, 0, "behind a long flush, more queued"},
		{10, 100, 2, 300, 1, 0, 1, "behind a long flush, drained"},
		/* Behind a 40 ms flush: still 100 ms from that flush's start. */
		{10, 100, 50, 90, 1, 0, 0, "behind a short flush, 90 ms"},
		{10, 100, 60, 100, 1, 0, 1, "behind a short flush, 100 ms"},
		/* Catching up (the batch and what is behind fill a catch-up
		 * batch): batches grow to the catch-up batch-max, or wait ten
		 * times batch-wait from the first message added, at least 5 s. */
		{1000, 100, 0, 0, 0, 3000, 0, "batch-max, catching up"},
		{3999, 100, 0, 0, 0, 1, 0, "catching up, one short of full"},
		{4000, 100, 0, 0, 0, 1, 1, "full, catching up"},
		{4000, 100, 0, 0, 0, 0, 1, "full, nothing behind"},
		{10, 100, 4999, 5000, 1, 3990, 0, "catching up, 4999 ms"},
		{10, 100, 5000, 5000, 0, 3990, 1, "catching up, 5 s"},
		{10, 50, 4999, 4999, 1, 3990, 0, "catching up, wait 50 ms, 4999 ms"},
		{10, 50, 5000, 5000, 1, 3990, 1, "catching up, wait 50 ms, 5 s"},
		{10, 1000, 9999, 9999, 1, 3990, 0, "catching up, wait 1 s, 9999 ms"},
		{10, 1000, 10000, 10000, 1, 3990, 1, "catching up, wait 1 s, 10 s"},
		/* Behind, but not by a catch-up batch: the usual rules (waiting
		 * longer would only add latency). */
		{1000, 100, 0, 0, 0, 2999, 1, "batch-max, a short backlog"},
		{10, 100, 99, 99, 1, 3989, 0, "a short backlog, 99 ms"},
		{10, 100, 100, 100, 0, 3989, 1, "a short backlog, 100 ms"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct consumer_batching b = {1000, 4000, cases[i].wait};
		int due = consumer_batch_due(&b, cases[i].pending, cases[i].age, cases[i].ready_age,
					     cases[i].queue_empty, cases[i].behind);
		if (due != cases[i].due)
			fail_msg("%s: due %d, expected %d", cases[i].what, due, cases[i].due);
	}
	/* A catch-up batch-max below batch-max: batch-max holds. */
	struct consumer_batching small = {1000, 500, 100};
	assert_int_equal(consumer_batch_due(&small, 999, 0, 0, 0, 1), 0);
	assert_int_equal(consumer_batch_due(&small, 1000, 0, 0, 0, 1), 1);
	assert_false(consumer_catching_up(&small, 998, 1));
	assert_true(consumer_catching_up(&small, 999, 1));
	/* Nothing behind: not catching up, however full. */
	struct consumer_batching b = {1000, 4000, 100};
	assert_false(consumer_catching_up(&b, 5000, 0));
	assert_true(consumer_catching_up(&b, 0, 4000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prices_pick_longest_model_in_force),
		cmocka_unit_test(test_prices_event_cost_wins),
		cmocka_unit_test(test_civil_dates_round_trip),
		cmocka_unit_test(test_rollup_sums_rows_per_subject_and_period),
		cmocka_unit_test(test_rollup_rows_come_in_key_order),
		cmocka_unit_test(test_rollup_rows_sorted_by_two_threads_at_once),
		cmocka_unit_test(test_hand_formats_match_snprintf),
		cmocka_unit_test(test_strmap_put_get_grow),
		cmocka_unit_test(test_rollup_publisher_pause),
		cmocka_unit_test(test_trim_due),
		cmocka_unit_test(test_batch_due),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
