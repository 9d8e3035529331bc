/* fuzz_config.c - libFuzzer harness for configuration values: the option
 * table (common/config.c: environment, --flags, -X properties), the checked
 * number parsers behind it (common/num.c) and the notifier's retry schedule
 * (notifier/retry.c, METER_NOTIFY_RETRY_SCHEDULE).
 *
 * The first byte picks what the rest is:
 *   0: a command line: NUL-separated words given to cfg_load (words of the
 *      form "ENV:NAME=VALUE" are set in the environment instead, and unset
 *      afterwards);
 *   1: one value tried with every parser in num.h, each checked against a
 *      slow reference implementation written here (differential);
 *   2: a retry schedule.
 * Invariants: no crash, no leak; a failure leaves one line in errstr; a
 * success leaves argv well formed and every string NUL-terminated within its
 * buffer; every number parser agrees with its reference; a parsed pico-USD
 * amount formats and parses back to itself.
 * Built and run by tests/fuzz/run.sh (sources in fuzz_config.srcs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "notifier.h"
#include "num.h"

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define MAX_WORDS 32
#define MAX_ENV 8

static void check_errstr(const char *e, size_t size)
{
	CHECK(memchr(e, '\0', size) != NULL);
	CHECK(e[0] != '\0');
	CHECK(strchr(e, '\n') == NULL);
}

static void check_cstr(const char *s, size_t size)
{
	CHECK(memchr(s, '\0', size) != NULL);
}

/* ---- mode 0: cfg_load --------------------------------------------------- */

static void fuzz_cfg(const char *data, size_t size)
{
	char *copy = malloc(size + 1);
	char *argv[MAX_WORDS + 2];
	char *envs[MAX_ENV];
	int argc = 1, nenv = 0;
	if (!copy || size == 0) {
		free(copy);
		return;
	}
	memcpy(copy, data, size);
	copy[size] = '\0';
	argv[0] = "meterd";
	for (char *p = copy; p <= copy + size && argc <= MAX_WORDS;) {
		size_t n = strlen(p);
		if (strncmp(p, "ENV:", 4) == 0 && strchr(p + 4, '=') && nenv < MAX_ENV) {
			/* Only our own variables: never PATH, LD_*, ASAN_OPTIONS... */
			char *eq = strchr(p + 4, '=');
			*eq = '\0';
			if (strncmp(p + 4, "METER_", 6) == 0 && setenv(p + 4, eq + 1, 1) == 0)
				envs[nenv++] = p + 4;
		} else {
			argv[argc++] = p;
		}
		p += n + 1;
	}
	argv[argc] = NULL;
	int orig = argc;

	struct meter_config *cfg = malloc(sizeof(*cfg));
	char err[512];
	if (cfg) {
		unsigned masks[] = {CFG_METERD, CFG_NOTIFIER, CFG_CTL, CFG_ALL};
		unsigned mask = masks[(unsigned char)data[0] % 4];
		char *av[MAX_WORDS + 2];
		memcpy(av, argv, sizeof(argv));
		int ac = orig;
		memset(err, 'x', sizeof(err));
		err[sizeof(err) - 1] = '\0';
		if (cfg_load(cfg, mask, &ac, av, err, sizeof(err)) == 0) {
			CHECK(ac >= 1 && ac <= orig);
			CHECK(av[ac] == NULL);
			CHECK(av[0] == argv[0]);
			check_cstr(cfg->kafka_brokers, sizeof(cfg->kafka_brokers));
			check_cstr(cfg->database_url, sizeof(cfg->database_url));
			check_cstr(cfg->group_id, sizeof(cfg->group_id));
			check_cstr(cfg->topic_events, sizeof(cfg->topic_events));
			check_cstr(cfg->smtp_url, sizeof(cfg->smtp_url));
			check_cstr(cfg->notify_retry_schedule, sizeof(cfg->notify_retry_schedule));
			CHECK(!strcmp(cfg->log_format, "text") || !strcmp(cfg->log_format, "json"));
			CHECK(cfg->batch_max >= 1 && cfg->batch_max <= 1000000);
			CHECK(cfg->batch_wait_ms >= 1);
			CHECK(cfg->max_lateness_ms >= 0 && cfg->max_future_ms >= 0);
			CHECK(cfg->migrate == 0 || cfg->migrate == 1);
			CHECK(cfg->nprops >= 0 && cfg->nprops <= CFG_MAX_PROPS);
			for (int i = 0; i < cfg->nprops; i++) {
				check_cstr(cfg->prop_name[i], sizeof(cfg->prop_name[i]));
				check_cstr(cfg->prop_value[i], sizeof(cfg->prop_value[i]));
				CHECK(cfg->prop_name[i][0] != '\0');
				for (int j = 0; j < i; j++) /* a later setting replaces */
					CHECK(strcmp(cfg->prop_name[i], cfg->prop_name[j]) != 0);
			}
			/* What cfg_load accepted, cfg_set accepts again. */
			char v[32];
			snprintf(v, sizeof(v), "%" PRId64, cfg->batch_max);
			CHECK(cfg_set(cfg, "batch-max", v, err, sizeof(err)) == 0);
			/* The schedule the notifier would parse at start. */
			struct ntf_schedule s;
			if (ntf_schedule_parse(cfg->notify_retry_schedule, &s, err, sizeof(err)) != 0)
				check_errstr(err, sizeof(err));
		} else {
			check_errstr(err, sizeof(err));
		}
		/* cfg_set by name with the first word as the value. */
		static const char *names[] = {"batch-max", "batch-wait", "max-lateness",
					      "log-format", "migrate", "group-id", "nope"};
		const char *name = names[(unsigned char)data[0] / 4 % 7];
		if (orig > 1 && cfg_set(cfg, name, argv[1], err, sizeof(err)) != 0)
			check_errstr(err, sizeof(err));
	}
	free(cfg);
	for (int i = 0; i < nenv; i++)
		unsetenv(envs[i]);
	free(copy);
}

/* ---- mode 1: number parsers against references -------------------------- */

/* Reference for num_parse_i64n: [+-]?[0-9]+, exact, within [min, max]. */
static int ref_i64(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (len == 0)
		return -1;
	if (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return -1;
	__int128 v = 0;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > (__int128)INT64_MAX + 1)
			return -1;
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -1;
	*out = (int64_t)v;
	return 0;
}

/* Reference for num_parse_duration_ms: digits, then nothing (ms) or one of
 * ms s m h d; the result must fit in int64. */
static int ref_duration(const char *s, int64_t *out)
{
	size_t d = strspn(s, "0123456789");
	static const struct {
		const char *u;
		int64_t ms;
	} units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	if (d == 0)
		return -1;
	for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++) {
		if (strcmp(s + d, units[k].u) != 0)
			continue;
		__int128 v = 0;
		for (size_t i = 0; i < d; i++) {
			v = v * 10 + (s[i] - '0');
			if (v > INT64_MAX)
				return -1;
		}
		v *= units[k].ms;
		if (v > INT64_MAX)
			return -1;
		*out = (int64_t)v;
		return 0;
	}
	return -1;
}

/* Reference for num_parse_usd_pico: digits, optionally '.' and 1..12
 * digits; at most max_pusd. */
static int ref_usd(const char *s, size_t len, int64_t max_pusd, int64_t *out)
{
	size_t i = 0, w = 0, f = 0;
	__int128 v = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (s[i++] - '0');
		w++;
		if (v > INT64_MAX)
			return -1;
	}
	if (w == 0)
		return -1;
	v *= 1000000000000LL;
	if (i < len) {
		if (s[i++] != '.')
			return -1;
		__int128 frac = 0;
		while (i < len && s[i] >= '0' && s[i] <= '9' && f < 12) {
			frac = frac * 10 + (s[i++] - '0');
			f++;
		}
		if (f == 0 || i != len)
			return -1;
		for (size_t k = f; k < 12; k++)
			frac *= 10;
		v += frac;
	}
	if (v > max_pusd)
		return -1;
	*out = (int64_t)v;
	return 0;
}

static void fuzz_numbers(const char *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	size_t len = strlen(s); /* up to the first NUL: what a C string holds */
	int64_t a = 7, b = 7;
	static const int64_t bounds[][2] = {
		{INT64_MIN, INT64_MAX}, {0, INT64_MAX}, {1, 1000000}, {-5, 5}, {0, 0}};
	for (size_t k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++) {
		int ra = num_parse_i64(s, bounds[k][0], bounds[k][1], &a);
		int rb = ref_i64(s, len, bounds[k][0], bounds[k][1], &b);
		CHECK(ra == rb);
		if (ra == 0)
			CHECK(a == b);
		/* Length-bounded form on the raw bytes, NULs included. */
		ra = num_parse_i64n(data, size, bounds[k][0], bounds[k][1], &a);
		rb = memchr(data, '\0', size) ? -1
					      : ref_i64(data, size, bounds[k][0], bounds[k][1], &b);
		CHECK(ra == rb);
		if (ra == 0)
			CHECK(a == b);
	}
	int ra = num_parse_duration_ms(s, &a), rb = ref_duration(s, &b);
	CHECK(ra == rb);
	if (ra == 0)
		CHECK(a == b && a >= 0);

	int flag = 5;
	if (num_parse_bool(s, &flag) == 0) {
		static const char *const words[] = {"1", "true", "yes", "on", "0", "false", "no", "off"};
		int found = -1;
		for (int i = 0; i < 8; i++)
			if (strcasecmp(s, words[i]) == 0)
				found = i < 4;
		CHECK(found == flag);
	} else {
		CHECK(flag == 5); /* untouched on failure */
	}

	static const int64_t maxes[] = {INT64_MAX, 1000000000000000LL, 0};
	for (size_t k = 0; k < 3; k++) {
		ra = num_parse_usd_pico(data, size, maxes[k], &a);
		rb = ref_usd(data, size, maxes[k], &b);
		CHECK(ra == rb);
		if (ra != 0)
			continue;
		CHECK(a == b && a >= 0);
		/* Format with 12 decimals and parse back: the same amount. */
		char digits[32], usd[64];
		int64_t back = -1;
		snprintf(digits, sizeof(digits), "%" PRId64, a);
		num_format_pusd(digits, 12, usd, sizeof(usd));
		CHECK(num_parse_usd_pico(usd, strlen(usd), INT64_MAX, &back) == 0);
		CHECK(back == a);
	}
	/* num_format_pusd on anything digit-like never overflows its buffer. */
	char out[48];
	memset(out, 'x', sizeof(out));
	if (len < 40 && strspn(s + (s[0] == '-'), "0123456789") == len - (s[0] == '-') && len) {
		num_format_pusd(s, (int)(size % 16) - 2, out, sizeof(out));
		check_cstr(out, sizeof(out));
	}
	free(s);
}

/* ---- mode 2: retry schedule ---------------------------------------------- */

static void fuzz_schedule(const char *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	struct ntf_schedule sch;
	char err[256];
	if (ntf_schedule_parse(s, &sch, err, sizeof(err)) == 0) {
		CHECK(sch.n >= 0 && sch.n <= NTF_SCHEDULE_MAX);
		for (int i = 0; i < sch.n; i++)
			CHECK(sch.delay_ms[i] >= 0 && sch.delay_ms[i] <= 7LL * 86400 * 1000);
		/* Every delay with any jitter and Retry-After stays in bounds. */
		for (int att = 0; att <= sch.n + 1; att++) {
			int64_t d = -1;
			uint32_t rnd = (uint32_t)(size * 2654435761u);
			int rc = ntf_retry_delay(&sch, att, att % 2 ? -1 : (int64_t)size * 1000, rnd, &d);
			int last = att > sch.n || (att < 1 && sch.n == 0);
			CHECK(rc == (last ? -1 : 0));
			if (rc == 0) {
				int64_t base = sch.delay_ms[(att < 1 ? 1 : att) - 1];
				CHECK(d >= base - base / 5);
				CHECK(d <= base + base / 5 + 1 || d <= NTF_RETRY_AFTER_MAX_MS);
			}
		}
	} else {
		check_errstr(err, sizeof(err));
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 4096)
		return 0;
	const char *rest = (const char *)data + 1;
	switch (data[0] % 3) {
	case 0: fuzz_cfg(rest, size - 1); break;
	case 1: fuzz_numbers(rest, size - 1); break;
	case 2: fuzz_schedule(rest, size - 1); break;
	}
	return 0;
}
