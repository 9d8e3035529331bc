/* test_common.c - unit tests of the shared plumbing: checked number parsing,
 * the configuration table, COPY encoding, URL and connection-string
 * redaction, Kafka properties by client. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "buf.h"
#include "config.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "num.h"

static void test_parse_i64_accepts_range_and_rejects_garbage(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t min, max;
		int ok;
		int64_t want;
	} cases[] = {
		{"0", 0, 10, 1, 0},
		{"10", 0, 10, 1, 10},
		{"11", 0, 10, 0, 0},
		{"-1", 0, 10, 0, 0},
		{"-5", -10, 10, 1, -5},
		{"+7", 0, 10, 1, 7},
		{"", 0, 10, 0, 0},
		{"-", -10, 10, 0, 0},
		{"12a", 0, 100, 0, 0},
		{" 1", 0, 10, 0, 0},
		{"9223372036854775807", 0, INT64_MAX, 1, INT64_MAX},
		{"9223372036854775808", 0, INT64_MAX, 0, 0},
		{"-9223372036854775808", INT64_MIN, 0, 1, INT64_MIN},
		{"-9223372036854775809", INT64_MIN, 0, 0, 0},
		{"99999999999999999999999", 0, INT64_MAX, 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = 42;
		int rc = num_parse_i64(cases[i].in, cases[i].min, cases[i].max, &v);
		if (cases[i].ok) {
			assert_int_equal(rc, 0);
			assert_true(v == cases[i].want);
		} else {
			assert_int_equal(rc, -1);
			assert_true(v == 42); /* untouched on failure */
		}
	}
	int64_t v;
	assert_int_equal(num_parse_i64(NULL, 0, 1, &v), -1);
}

static void test_parse_duration_units(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(num_parse_duration_ms("250ms", &ms), 0);
	assert_true(ms == 250);
	assert_int_equal(num_parse_duration_ms("5s", &ms), 0);
	assert_true(ms == 5000);
	assert_int_equal(num_parse_duration_ms("10m", &ms), 0);
	assert_true(ms == 600000);
	assert_int_equal(num_parse_duration_ms("72h", &ms), 0);
	assert_true(ms == 72LL * 3600000);
	assert_int_equal(num_parse_duration_ms("7d", &ms), 0);
	assert_true(ms == 7LL * 86400000);
	assert_int_equal(num_parse_duration_ms("1500", &ms), 0);
	assert_true(ms == 1500);
	assert_int_equal(num_parse_duration_ms("5x", &ms), -1);
	assert_int_equal(num_parse_duration_ms("-5s", &ms), -1);
	assert_int_equal(num_parse_duration_ms("s", &ms), -1);
	assert_int_equal(num_parse_duration_ms("", &ms), -1);
	assert_int_equal(num_parse_duration_ms("99999999999999999d", &ms), -1);
}

static void test_parse_usd_pico_is_exact(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int ok;
		int64_t want;
	} cases[] = {
		{"0", 1, 0},
		{"1", 1, 1000000000000LL},
		{"0.000000000001", 1, 1},
		{"1.5", 1, 1500000000000LL},
		{"0.0042", 1, 4200000000LL},
		{"0.0000000000001", 0, 0}, /* 13 fraction digits */
		{"1.", 0, 0},
		{".5", 0, 0},
		{"-1", 0, 0},
		{"1e3", 0, 0},
		{"1,5", 0, 0},
		{"1000000", 1, 1000000000000000000LL},
		{"1000000.000000000001", 0, 0}, /* over the cap below */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t v = -1;
		int rc = num_parse_usd_pico(cases[i].in, strlen(cases[i].in),
					    1000000000000000000LL, &v);
		assert_int_equal(rc, cases[i].ok ? 0 : -1);
		if (cases[i].ok)
			assert_true(v == cases[i].want);
	}
}

static void test_format_pusd(void **state)
{
	(void)state;
	char out[64];
	num_format_pusd("1035000000", 12, out, sizeof(out));
	assert_string_equal(out, "0.001035000000");
	num_format_pusd("3200000000000", 2, out, sizeof(out));
	assert_string_equal(out, "3.20");
	num_format_pusd("123456789012345678901234567890", 4, out, sizeof(out));
	assert_string_equal(out, "123456789012345678.9012");
	num_format_pusd("0", 0, out, sizeof(out));
	assert_string_equal(out, "0");
}

/* Calendar checks (the API and meterctl share them): the year bound is the
 * caller's. */
static void test_check_date_year_bound(void **state)
{
	(void)state;
	assert_int_equal(num_check_date("0001-01-01", 1, 1), 0);
	assert_int_equal(num_check_date("0000-12-31", 1, 1), -1);
	assert_int_equal(num_check_date("1899-12", 0, 1900), -1);
	assert_int_equal(num_check_date("1900-01", 0, 1900), 0);
	assert_int_equal(num_check_date("2024-02-29", 1, 1), 0);
	assert_int_equal(num_check_date("2100-02-29", 1, 1), -1);
	assert_int_equal(num_check_date("2026-11-23", 0, 1), -1);
}

static void test_config_env_then_flags_override(void **state)
{
	(void)state;
	struct meter_config *cfg = malloc(sizeof(*cfg));
	char err[256];
	setenv("METER_BATCH_MAX", "123", 1);
	setenv("METER_KAFKA_PROP_socket_keepalive_enable", "true", 1);
	setenv("METER_KAFKA_PROP_ssl__key", "x", 1);
	char a0[] = "meterd", a1[] = "--batch-max", a2[] = "77", a3[] = "--batch-wait=2s",
	     a4[] = "-X", a5[] = "linger.ms=5", a6[] = "positional";
	char *argv[] = {a0, a1, a2, a3, a4, a5, a6, NULL};
	int argc = 7;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv, err, sizeof(err)), 0);
	assert_true(cfg->batch_max == 77);
	assert_true(cfg->batch_wait_ms == 2000);
	assert_string_equal(cfg->topic_events, "usage.events");
	assert_int_equal(argc, 2);
	assert_string_equal(argv[1], "positional");
	int found_keepalive = 0, found_linger = 0, found_underscore = 0;
	for (int i = 0; i < cfg->nprops; i++) {
		if (strcmp(cfg->prop_name[i], "socket.keepalive.enable") == 0)
			found_keepalive = 1;
		if (strcmp(cfg->prop_name[i], "linger.ms") == 0 &&
		    strcmp(cfg->prop_value[i], "5") == 0)
			found_linger = 1;
		if (strcmp(cfg->prop_name[i], "ssl_key") == 0)
			found_underscore = 1;
	}
	assert_true(found_keepalive && found_linger && found_underscore);
	unsetenv("METER_BATCH_MAX");
	unsetenv("METER_KAFKA_PROP_socket_keepalive_enable");
	unsetenv("METER_KAFKA_PROP_ssl__key");
	free(cfg);
}

static void test_config_rejects_bad_values_with_one_line(void **state)
{
	(void)state;
	struct meter_config *cfg = malloc(sizeof(*cfg));
	char err[256];
	static const char *const bad[][2] = {
		{"--batch-max", "0"},          {"--batch-max", "ten"},
		{"--batch-wait", "5 seconds"}, {"--log-format", "xml"},
		{"--migrate", "maybe"},        {"--max-lateness", "-1h"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char a0[] = "meterd";
		char *argv[] = {a0, (char *)bad[i][0], (char *)bad[i][1], NULL};
		int argc = 3;
		err[0] = '\0';
		assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv, err, sizeof(err)), -1);
		assert_non_null(strstr(err, bad[i][0]));
		assert_null(strchr(err, '\n'));
	}
	char a0[] = "meterd", a1[] = "--batch-max";
	char *argv[] = {a0, a1, NULL};
	int argc = 2;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs a value"));
	/* Found by fuzz_config: a value with a newline (or a very long one)
	 * was echoed as is, so the error spanned several lines. */
	static const char *const multi[][2] = {
		{"--batch-max", "12\nmeterd: forged line"},
		{"--log-format", "x\r\ny"},
		{"--batch-wait", "1111111111111111111111111111111111111111111111111111111111111111111111h"},
	};
	for (size_t i = 0; i < sizeof(multi) / sizeof(multi[0]); i++) {
		char m0[] = "meterd";
		char *margv[] = {m0, (char *)multi[i][0], (char *)multi[i][1], NULL};
		argc = 3;
		assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, margv,
					  err, sizeof(err)), -1);
		assert_null(strchr(err, '\n'));
		assert_null(strchr(err, '\r'));
		assert_true(strlen(err) < 200);
	}
	char u[] = "--nope\nx";
	assert_int_equal(cfg_set(cfg, u + 2, "1", err, sizeof(err)), -1);
	assert_null(strchr(err, '\n'));
	setenv("METER_BATCH_WAIT", "soon", 1);
	char b0[] = "meterd";
	char *argv2[] = {b0, NULL};
	argc = 1;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "METER_BATCH_WAIT"));
	unsetenv("METER_BATCH_WAIT");
	free(cfg);
}


/* Collects the assignments of cfg_parse_env_text as "KEY=VALUE;" text. */
static int collect(void *opaque, const char *key, const char *value, char *errstr,
		   size_t errstr_size)
{
	char *out = opaque;
	(void)errstr;
	(void)errstr_size;
	snprintf(out + strlen(out), 512 - strlen(out), "%s=%s;", key, value);
	return 0;
}

static void test_config_file_syntax(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *want; /* the assignments, or NULL for an error */
		const char *err;  /* part of the error: with the line number */
	} cases[] = {
		{"A=1", "A=1;", NULL},
		{"  A = 1  \n", "A=1;", NULL},
		{"\tA\t=\t1\t", "A=1;", NULL},
		{"# comment\n; another\n\n   \nA=1\n", "A=1;", NULL},
		{"A=1\r\nB=two words\r\n", "A=1;B=two words;", NULL},
		{"A=", "A=;", NULL},
		{"A=1\nA=2", "A=1;A=2;", NULL},
		{"lower_case9=x", "lower_case9=x;", NULL},
		{"A=1 # not a comment", "A=1 # not a comment;", NULL},
		{"A=\"x y\"", "A=x y;", NULL},
		{"A=\"x\" # a comment", "A=x;", NULL},
		{"A=\"a\\\"b\\\\c\\nd\\te\\$f\"", "A=a\"b\\c\nd\te$f;", NULL},
		{"A='x \"y\" \\n'", "A=x \"y\" \\n;", NULL},
		{"A=''", "A=;", NULL},
		{"A=\"=#;\"", "A==#;;", NULL},
		{"A=x=y", "A=x=y;", NULL},
		{"", "", NULL},
		{"A=1\nB", NULL, "t:2: expected KEY=VALUE"},
		{"=1", NULL, "t:1: expected KEY=VALUE"},
		{"1A=1", NULL, "t:1: expected KEY=VALUE"},
		{"A-B=1", NULL, "t:1: expected KEY=VALUE"},
		{"export A=1", NULL, "t:1: expected KEY=VALUE"},
		{"\n\n# c\nA=\"open", NULL, "t:4: unterminated \""},
		{"A='open\nB=1'", NULL, "t:1: unterminated '"},
		{"A=\"x\" junk", NULL, "t:1: unexpected text after the closing quote"},
		{"A='x'y", NULL, "t:1: unexpected text after the closing quote"},
		{"A=\"x\\\"", NULL, "t:1: unterminated \""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char got[512] = "", err[256] = "";
		int rc = cfg_parse_env_text(cases[i].text, strlen(cases[i].text), "t", collect, got,
					    err, sizeof(err));
		if (cases[i].want && (rc != 0 || strcmp(got, cases[i].want) != 0))
			fail_msg("case %zu (%s): rc %d, got \"%s\", want \"%s\" (%s)", i,
				 cases[i].text, rc, got, cases[i].want, err);
		if (!cases[i].want && (rc != -1 || !strstr(err, cases[i].err)))
			fail_msg("case %zu (%s): rc %d, error \"%s\", want \"%s\"", i, cases[i].text,
				 rc, err, cases[i].err);
	}
	/* A NUL byte: not a text file. */
	char got[512] = "", err[256];
	assert_int_equal(cfg_parse_env_text("A=1\0B=2", 7, "t", collect, got, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "NUL"));
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_config_file_then_env_then_flags(void **state)
{
	(void)state;
	struct meter_config *cfg = malloc(sizeof(*cfg));
	char path[] = "/tmp/meter-test-config.XXXXXX", err[512];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	/* Only what this test sets comes from the environment. */
	static const char *const vars[] = {"METER_BATCH_MAX", "METER_LOG_FORMAT", "METER_GROUP_ID",
					   "METER_SMTP_URL"};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	write_file(path, "# meterd settings\n"
			 "METER_BATCH_MAX=10\n"
			 "METER_BATCH_WAIT=\"250ms\"\n"
			 "METER_LOG_FORMAT=json\n"
			 "METER_GROUP_ID='from-file'\n"
			 "METER_SMTP_URL=smtp://mail:25   # the notifier's: skipped by meterd\n"
			 "METER_KAFKA_PROP_socket_keepalive_enable=true\n");
	setenv("METER_CONFIG_FILE", path, 1);
	setenv("METER_BATCH_WAIT", "1s", 1); /* the environment beats the file */
	char a0[] = "meterd", a1[] = "--group-id=from-flag";
	char *argv[] = {a0, a1, NULL};
	int argc = 2;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv, err, sizeof(err)), 0);
	assert_string_equal(cfg->config_file, path);
	assert_true(cfg->batch_max == 10);      /* file */
	assert_true(cfg->batch_wait_ms == 1000); /* environment */
	assert_string_equal(cfg->group_id, "from-flag"); /* flag */
	assert_string_equal(cfg->log_format, "json");
	assert_string_equal(cfg->smtp_url, "");
	int found = 0;
	for (int i = 0; i < cfg->nprops; i++)
		found |= !strcmp(cfg->prop_name[i], "socket.keepalive.enable") &&
			 !strcmp(cfg->prop_value[i], "true");
	assert_true(found);
	unsetenv("METER_BATCH_WAIT");

	/* --config beats METER_CONFIG_FILE. */
	char other[] = "/tmp/meter-test-config2.XXXXXX";
	fd = mkstemp(other);
	assert_true(fd >= 0);
	close(fd);
	write_file(other, "METER_BATCH_MAX=20\n");
	char b0[] = "meterd", b1[] = "--config", *b2 = other;
	char *argv2[] = {b0, b1, b2, NULL};
	argc = 3;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv2, err, sizeof(err)), 0);
	assert_true(cfg->batch_max == 20);
	assert_string_equal(cfg->config_file, other);
	assert_int_equal(argc, 1);

	/* Errors name the file and line. */
	static const struct {
		const char *text, *want;
	} bad[] = {
		{"METER_BATCH_MAX=5\nMETER_BATCH_MAX=ten\n", ":2: METER_BATCH_MAX: 'ten' is not an integer"},
		{"\nMETER_NO_SUCH=1\n", ":2: METER_NO_SUCH is not a setting"},
		{"PGPASSWORD=x\n", ":1: PGPASSWORD: only METER_* settings"},
		{"METER_CONFIG_FILE=/etc/x\n", ":1: METER_CONFIG_FILE cannot be set inside"},
		{"METER_LOG_FORMAT=xml\n", ":1: METER_LOG_FORMAT: 'xml' is not one of text|json"},
		{"METER_BATCH_MAX 5\n", ":1: expected KEY=VALUE"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_file(path, bad[i].text);
		char c0[] = "meterd";
		char *argv3[] = {c0, NULL};
		argc = 1;
		err[0] = '\0';
		assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv3, err, sizeof(err)), -1);
		if (!strstr(err, path) || !strstr(err, bad[i].want))
			fail_msg("bad file %zu: \"%s\", want \"%s%s\"", i, err, path, bad[i].want);
		assert_null(strchr(err, '\n'));
	}
	unlink(path);
	char c0[] = "meterd";
	char *argv4[] = {c0, NULL};
	argc = 1;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv4, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "No such file"));
	/* A path with control bytes (found by fuzz_config) is shown without
	 * them: the message stays one line. */
	char d0[] = "meterd", d1[] = "--config", d2[] = "/tmp/no\nsuch\x1b[2J";
	char *argv5[] = {d0, d1, d2, NULL};
	argc = 3;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv5, err, sizeof(err)), -1);
	assert_null(strchr(err, '\n'));
	assert_null(strchr(err, '\x1b'));
	assert_non_null(strstr(err, "/tmp/no?such?[2J"));
	/* ... and a long one whole (a path cut short is of no use). */
	char d3[200];
	snprintf(d3, sizeof(d3), "/tmp/%0150d/meterd.conf", 0);
	char *argv6[] = {d0, d1, d3, NULL};
	argc = 3;
	assert_int_equal(cfg_load(cfg, CFG_METERD, &argc, argv6, err, sizeof(err)), -1);
	assert_non_null(strstr(err, d3));
	unsetenv("METER_CONFIG_FILE");
	unlink(other);
	free(cfg);
}

static void test_config_reload_applies_only_reloadable_options(void **state)
{
	(void)state;
	struct meter_config *live = malloc(sizeof(*live)), *next = malloc(sizeof(*next));
	char err[256], changed[512], restart[512];
	char a0[] = "meterd";
	char *argv[] = {a0, NULL};
	int argc = 1;
	assert_int_equal(cfg_load(live, CFG_ALL, &argc, argv, err, sizeof(err)), 0);
	/* Known values, whatever the environment of the test says. */
	static const char *const known[][2] = {
		{"batch-max", "5000"}, {"log-format", "text"}, {"group-id", "meterd"},
		{"database-url", ""},  {"notify-poll", "5s"},
	};
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		assert_int_equal(cfg_set(live, known[i][0], known[i][1], err, sizeof(err)), 0);
	live->nprops = 0;
	memcpy(next, live, sizeof(*next));
	/* Nothing changed: nothing to say. */
	assert_int_equal(cfg_apply_reload(live, next, CFG_METERD, changed, sizeof(changed), restart,
					  sizeof(restart)),
			 0);
	assert_string_equal(changed, "");
	assert_string_equal(restart, "");
	assert_int_equal(cfg_set(next, "batch-max", "200", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(next, "log-format", "json", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(next, "group-id", "other", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(next, "database-url", "postgresql://u:secret@db/x", err, sizeof(err)), 0);
	assert_int_equal(cfg_set(next, "notify-poll", "1s", err, sizeof(err)), 0); /* the notifier's */
	next->nprops = 1;
	snprintf(next->prop_name[0], sizeof(next->prop_name[0]), "linger.ms");
	snprintf(next->prop_value[0], sizeof(next->prop_value[0]), "5");
	assert_int_equal(cfg_apply_reload(live, next, CFG_METERD, changed, sizeof(changed), restart,
					  sizeof(restart)),
			 2);
	assert_string_equal(changed, "batch-max 5000 -> 200, log-format text -> json");
	assert_string_equal(restart,
			    "database-url, group-id, Kafka properties (METER_KAFKA_PROP_*, -X)");
	assert_null(strstr(restart, "secret"));
	assert_true(live->batch_max == 200);
	assert_string_equal(live->log_format, "json");
	assert_string_equal(live->group_id, "meterd");      /* kept */
	assert_string_equal(live->database_url, "");        /* kept */
	assert_true(live->notify_poll_ms == 5000);           /* not meterd's */
	assert_int_equal(live->nprops, 0);
	/* The notifier's view of the same change. */
	assert_int_equal(cfg_apply_reload(live, next, CFG_NOTIFIER, changed, sizeof(changed), restart,
					  sizeof(restart)),
			 1);
	assert_string_equal(changed, "notify-poll 5000ms -> 1000ms");
	assert_string_equal(restart, "database-url");
	/* cfg_reload without cfg_daemon_args: an error, not a crash. */
	assert_int_equal(cfg_reload(next, err, sizeof(err)), -1);
	free(live);
	free(next);
}

static void test_config_reference_lists_every_variable(void **state)
{
	(void)state;
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	cfg_print_reference(f, CFG_ALL);
	fclose(f);
	assert_non_null(strstr(text, "`METER_KAFKA_BROKERS`"));
	assert_non_null(strstr(text, "`METER_DATABASE_URL`"));
	assert_non_null(strstr(text, "`METER_BATCH_MAX`"));
	assert_non_null(strstr(text, "text\\|json"));
	/* Which options a reload applies is part of the reference. */
	assert_non_null(strstr(text, "| `METER_BATCH_MAX` | `--batch-max` | integer | `50000` | meterd | yes |"));
	assert_non_null(strstr(text, "| `METER_GROUP_ID` | `--group-id` | string | `meterd` | meterd | restart |"));
	/* docs/CONFIG.md is generated from the same table: it must match. */
	FILE *doc = fopen("docs/CONFIG.md", "r");
	if (doc) {
		char *want = calloc(1, 1 << 16);
		size_t n = fread(want, 1, (1 << 16) - 1, doc);
		fclose(doc);
		want[n] = '\0';
		assert_non_null(strstr(want, text));
		free(want);
	}
	free(text);
}

static void test_copy_text_escapes_specials_and_nulls(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	copy_text(&b, "a\tb\\c\nd\re");
	copy_sep(&b);
	copy_text(&b, NULL);
	copy_sep(&b);
	copy_text_or_null(&b, "");
	copy_sep(&b);
	copy_i64(&b, -42);
	copy_sep(&b);
	copy_bytea(&b, "\x01\xff", 2);
	copy_eol(&b);
	assert_string_equal(b.data, "a\\tb\\\\c\\nd\\re\t\\N\t\\N\t-42\t\\\\x01ff\n");
	buf_free(&b);
}

/* The bytes of one binary COPY field, as hex: its length (or -1) then the
 * value. */
static char *field_hex(const struct buf *b)
{
	static char out[256];
	size_t n = 0;
	for (size_t i = 0; i < b->len && n + 3 < sizeof(out); i++)
		n += (size_t)snprintf(out + n, sizeof(out) - n, "%02x", (unsigned char)b->data[i]);
	out[n] = '\0';
	return out;
}

/* Each expected value is PostgreSQL 15's own send function's output
 * (numeric_send(), timestamptz_send(), ...) after a 4-byte length. */
static void test_copy_binary_fields_match_postgres_send(void **state)
{
	(void)state;
	static const struct {
		const char *digits;
		const char *want;
	} nums[] = {
		{"0", "000000080000000000000000"},
		{"1", "0000000a00010000000000000001"},
		{"9999", "0000000a0001000000000000270f"},
		{"10000", "0000000a00010001000000000001"},
		{"12345678", "0000000c000200010000000004d2162e"},
		{"4200000000", "0000000a0001000200000000002a"},
		{"100000000", "0000000a00010002000000000001"},
		{"-5", "0000000a00010000400000000005"},
		{"170141183460469231731687303715884105727",
		 "0000001c000a00090000000000aa0583209a01d5090d0c601c871bf620da165f"},
		{"-170141183460469231731687303715884105728",
		 "0000001c000a00094000000000aa0583209a01d5090d0c601c871bf620da1660"},
	};
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		__int128 v = 0;
		const char *d = nums[i].digits;
		int neg = *d == '-';
		for (d += neg; *d; d++)
			v = v * 10 - (*d - '0'); /* negative, so that the minimum fits */
		buf_reset(&b);
		copyb_numeric(&b, neg ? v : -v);
		assert_string_equal(field_hex(&b), nums[i].want);
	}
	buf_reset(&b);
	copyb_timestamptz(&b, 1718454896789000); /* 2024-06-15T12:34:56.789Z */
	assert_string_equal(field_hex(&b), "000000080002bdebba77a608");
	buf_reset(&b);
	copyb_timestamptz(&b, 0);
	assert_string_equal(field_hex(&b), "00000008fffca2fec4c82000");
	buf_reset(&b);
	copyb_jsonb(&b, "{\"a\": 1}");
	assert_string_equal(field_hex(&b), "00000009017b2261223a20317d");
	buf_reset(&b);
	copyb_i32(&b, -2);
	copyb_i64(&b, 1);
	assert_string_equal(field_hex(&b), "00000004fffffffe000000080000000000000001");
	/* NULLs and the empty string. */
	buf_reset(&b);
	copyb_text(&b, NULL);
	copyb_text_or_null(&b, "");
	copyb_jsonb(&b, "");
	copyb_text(&b, "");
	copyb_text(&b, "a\tb");
	assert_string_equal(field_hex(&b), "ffffffffffffffffffffffff0000000000000003610962");
	/* A whole file: header, a row of one field, trailer. */
	buf_reset(&b);
	copyb_header(&b);
	copyb_row(&b, 1);
	copyb_null(&b);
	copyb_trailer(&b);
	assert_string_equal(field_hex(&b),
			    "5047434f50590aff0d0a00" "00000000" "00000000" "0001" "ffffffff" "ffff");
	buf_free(&b);
}

static void test_buf_cap_sets_toobig(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 8);
	assert_int_equal(buf_append(&b, "12345678", 8), 0);
	assert_int_equal(buf_append(&b, "9", 1), -1);
	assert_true(b.toobig);
	assert_int_equal((int)b.len, 8);
	buf_free(&b);
}

/* json_textn writes a JSON string that parses back to the same bytes:
 * quotes, backslashes, every control byte, UTF-8 and an embedded NUL. */
static void test_json_text_round_trips(void **state)
{
	(void)state;
	char in[64];
	size_t n = 0;
	for (int c = 0; c < 0x20; c++)
		in[n++] = (char)c;
	memcpy(in + n, "\"\\/\x7f\xc3\xb1\xe2\x82\xac x", 12);
	n += 12;
	struct buf b;
	buf_init(&b, 0);
	json_textn(&b, in, n);
	buf_putc(&b, '\0');
	assert_null(memchr(b.data, '\n', b.len - 1));
	json_error_t err;
	json_t *j = json_loads(b.data, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
	assert_non_null(j);
	assert_true(json_is_string(j));
	assert_int_equal((int)json_string_length(j), (int)n);
	assert_memory_equal(json_string_value(j), in, n);
	json_decref(j);
	buf_reset(&b);
	json_textn(&b, "plain", 5);
	assert_int_equal((int)b.len, 7);
	assert_memory_equal(b.data, "\"plain\"", 7);
	buf_free(&b);
}

static void test_redact_url_hides_passwords(void **state)
{
	(void)state;
	char out[256];
	log_redact_url("smtp://alerts:s3cret@mail:587", out, sizeof(out));
	assert_string_equal(out, "smtp://alerts:***@mail:587");
	log_redact_url("smtps://mail:465/?password=s3cret&x=1", out, sizeof(out));
	assert_null(strstr(out, "s3cret"));
	log_redact_url("smtp://alerts@mail:587", out, sizeof(out));
	assert_string_equal(out, "smtp://alerts@mail:587");
}

/* Every option of in that libpq parses comes back from shown with the same
 * value, but the secret ones (dispchar "*"), which read "***": the display
 * is a connection string libpq reads as the original, password aside. */
static void assert_same_options(const char *in, const char *shown)
{
	PQconninfoOption *a = PQconninfoParse(in, NULL);
	PQconninfoOption *b = PQconninfoParse(shown, NULL);
	assert_non_null(a);
	assert_non_null(b);
	for (int i = 0; a[i].keyword; i++) {
		assert_string_equal(a[i].keyword, b[i].keyword);
		if (!a[i].val) {
			assert_null(b[i].val);
			continue;
		}
		assert_non_null(b[i].val);
		if (strchr(a[i].dispchar, '*'))
			assert_string_equal(b[i].val, "***");
		else
			assert_string_equal(b[i].val, a[i].val);
	}
	PQconninfoFree(a);
	PQconninfoFree(b);
}

/* db_redact_conninfo reads a connection string as libpq does: every form of
 * a password libpq accepts is hidden; a string that does not parse shows
 * nothing of itself (libpq would have cut it anywhere: "password=S3 cretPW"
 * is the password S3 then a keyword cretPW). */
static void test_redact_conninfo_hides_every_password_form(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int rc;            /* 0: parsed, -1: not shown */
		const char *secret[3]; /* none may appear */
		const char *want[3];   /* each must appear */
	} cases[] = {
		/* keyword/value, as before */
		{"host=db user=meter password=s3cret dbname=meter", 0, {"s3cret"},
		 {"password=***", "user=meter", "dbname=meter"}},
		/* spaces around '=' */
		{"host=127.0.0.1 port=1 password = S3cretPW", 0, {"S3cretPW"},
		 {"password=***", "host=127.0.0.1", "port=1"}},
		/* quoted, with a space, an escaped quote and an escaped backslash */
		{"host=db password='S3 cret\\'P\\\\W' dbname=meter", 0, {"S3", "cret", "P\\"},
		 {"password=***", "dbname=meter", "host=db"}},
		/* the password is empty */
		{"host=db password=''", 0, {"''"}, {"password=***"}},
		/* sslpassword is a secret too */
		{"host=db sslpassword=S3cretPW", 0, {"S3cretPW"}, {"sslpassword=***"}},
		/* URI userinfo */
		{"postgresql://meter:s3cret@db:5432/meter?sslmode=require", 0, {"s3cret"},
		 {"user=meter", "password=***", "sslmode=require"}},
		/* URI query (it overrides the userinfo's) */
		{"postgres://meter:s3cret@db/meter?password=0ther&application_name=a", 0,
		 {"s3cret", "0ther"}, {"password=***", "application_name=a"}},
		/* percent-encoding: user us@er, password p@ss w0rd, a value with a space */
		{"postgresql://us%40er:p%40ss%20w0rd@db/meter?application_name=a%20b", 0,
		 {"p%40ss", "p@ss", "w0rd"}, {"user=us@er", "password=***", "application_name='a b'"}},
		/* no password at all */
		{"postgresql://meter@db/meter", 0, {"***"}, {"user=meter", "dbname=meter", "host=db"}},
		/* a database name (no '='): libpq takes it as one */
		{"meter", 0, {"***"}, {"meter"}},
		/* unquoted space in the password: does not parse */
		{"host=db password=S3 cretPW", -1, {"S3", "cretPW", "host"}, {"not shown"}},
		/* unterminated quote */
		{"host=db password='S3 cretPW", -1, {"S3", "cretPW"}, {"not shown"}},
		/* a bad percent-encoding in the userinfo */
		{"postgresql://u:S3cret%zzPW@db/meter", -1, {"S3cret", "PW"}, {"not shown"}},
		/* an unknown query parameter */
		{"postgresql://db/meter?password=s3cret&x=1", -1, {"s3cret"}, {"not shown"}},
		/* '=' forgotten after password: no '=' at all, yet not a database name */
		{"password S3cretPW", -1, {"S3cretPW"}, {"not shown"}},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char out[512];
		int rc = db_redact_conninfo(cases[i].in, out, sizeof(out));
		print_message("%s -> %s\n", cases[i].in, out);
		assert_int_equal(rc, cases[i].rc);
		for (int k = 0; k < 3 && cases[i].secret[k]; k++)
			assert_null(strstr(out, cases[i].secret[k]));
		for (int k = 0; k < 3 && cases[i].want[k]; k++)
			assert_non_null(strstr(out, cases[i].want[k]));
		if (rc == 0 && strchr(cases[i].in, '='))
			assert_same_options(cases[i].in, out);
	}

	char out[16];
	assert_int_equal(db_redact_conninfo("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(db_redact_conninfo(NULL, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* Cut short, still terminated. */
	db_redact_conninfo("password=S3cretPW host=a-very-long-host-name", out, sizeof(out));
	assert_int_equal((int)strlen(out), (int)sizeof(out) - 1);
	assert_null(strstr(out, "S3c"));
}

/* libpq's own message for a string it cannot parse quotes a piece of it,
 * which can be the password: db_connect_error hides the quoted span, even
 * when the piece has quotes of its own. (No connection is attempted: libpq
 * stops at the parse.) */
static void test_connect_error_hides_what_libpq_quotes(void **state)
{
	(void)state;
	static const struct {
		const char *in, *libpq_says, *secret;
	} cases[] = {
		{"host=db password=S3 cretPW", "missing \"=\" after \"cretPW\"", "cretPW"},
		{"host=db password=S3\"cr et\"PW", "missing \"=\" after \"et\"PW\"", "et\"PW"},
		{"host=db password=S3 cretPW=1", "invalid connection option \"cretPW\"", "cretPW"},
		{"postgresql://u:S3cret%zzPW@db/meter", "invalid percent-encoded token", "S3cret"},
		{"postgresql://u:S3cretPW@[::1/meter", "IPv6", "S3cretPW"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		PGconn *conn = PQconnectdb(cases[i].in);
		assert_non_null(conn);
		assert_int_equal(PQstatus(conn), CONNECTION_BAD);
		/* The leak this guards against. */
		assert_non_null(strstr(PQerrorMessage(conn), cases[i].libpq_says));
		assert_non_null(strstr(PQerrorMessage(conn), cases[i].secret));
		char out[300];
		db_connect_error(cases[i].in, conn, out, sizeof(out));
		print_message("%s -> %s\n", cases[i].in, out);
		assert_null(strstr(out, cases[i].secret));
		assert_non_null(strstr(out, "\"***\""));
		assert_null(strchr(out, '\n'));
		PQfinish(conn);
	}
	/* A string that parses: libpq's message as it is, on one line. */
	PGconn *conn = PQconnectdb("host=db port=99999 password=S3cretPW");
	assert_int_equal(PQstatus(conn), CONNECTION_BAD);
	char out[300];
	db_connect_error("host=db port=99999 password=S3cretPW", conn, out, sizeof(out));
	assert_non_null(strstr(out, "invalid port number: \"99999\""));
	assert_null(strchr(out, '\n'));
	PQfinish(conn);
}

/* A property's value as librdkafka holds it (a static buffer). */
static const char *conf_value(const rd_kafka_conf_t *conf, const char *name)
{
	static char v[256];
	size_t n = sizeof(v);
	assert_int_equal(rd_kafka_conf_get(conf, name, v, &n), RD_KAFKA_CONF_OK);
	return v;
}

/* A pass-through property reaches only the clients it is for: a consumer's
 * session.timeout.ms on a producer made librdkafka print a CONFWARN line
 * per producer at every start. Unknown names go to both (kfk_set rejects
 * them). */
static void test_kafka_props_by_role(void **state)
{
	(void)state;
	assert_int_equal(kfk_prop_applies("session.timeout.ms", KFK_CONSUMER), 1);
	assert_int_equal(kfk_prop_applies("session.timeout.ms", KFK_PRODUCER), 0);
	assert_int_equal(kfk_prop_applies("linger.ms", KFK_CONSUMER), 0);
	assert_int_equal(kfk_prop_applies("linger.ms", KFK_PRODUCER), 1);
	assert_int_equal(kfk_prop_applies("security.protocol", KFK_CONSUMER), 1);
	assert_int_equal(kfk_prop_applies("security.protocol", KFK_PRODUCER), 1);
	assert_int_equal(kfk_prop_applies("no.such.property", KFK_PRODUCER), 1);

	static struct meter_config cfg;
	const char *props[][2] = {
		{"session.timeout.ms", "6000"}, {"linger.ms", "7"}, {"client.id", "both"}};
	cfg.nprops = 3;
	for (int i = 0; i < cfg.nprops; i++) {
		snprintf(cfg.prop_name[i], sizeof(cfg.prop_name[i]), "%s", props[i][0]);
		snprintf(cfg.prop_value[i], sizeof(cfg.prop_value[i]), "%s", props[i][1]);
	}
	char err[256];
	rd_kafka_conf_t *c = rd_kafka_conf_new(), *p = rd_kafka_conf_new();
	assert_int_equal(kfk_apply_props(c, &cfg, KFK_CONSUMER, err, sizeof(err)), 0);
	assert_int_equal(kfk_apply_props(p, &cfg, KFK_PRODUCER, err, sizeof(err)), 0);
	assert_string_equal(conf_value(c, "session.timeout.ms"), "6000");
	assert_string_not_equal(conf_value(p, "session.timeout.ms"), "6000");
	assert_string_equal(conf_value(p, "linger.ms"), "7");
	assert_string_not_equal(conf_value(c, "linger.ms"), "7");
	assert_string_equal(conf_value(c, "client.id"), "both");
	assert_string_equal(conf_value(p, "client.id"), "both");
	rd_kafka_conf_destroy(c);
	rd_kafka_conf_destroy(p);

	/* A bad value still fails the client it is for. */
	snprintf(cfg.prop_value[0], sizeof(cfg.prop_value[0]), "soon");
	c = rd_kafka_conf_new();
	assert_int_equal(kfk_apply_props(c, &cfg, KFK_CONSUMER, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "session.timeout.ms"));
	rd_kafka_conf_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_i64_accepts_range_and_rejects_garbage),
		cmocka_unit_test(test_parse_duration_units),
		cmocka_unit_test(test_parse_usd_pico_is_exact),
		cmocka_unit_test(test_format_pusd),
		cmocka_unit_test(test_config_env_then_flags_override),
		cmocka_unit_test(test_config_rejects_bad_values_with_one_line),
		cmocka_unit_test(test_config_file_syntax),
		cmocka_unit_test(test_config_file_then_env_then_flags),
		cmocka_unit_test(test_config_reload_applies_only_reloadable_options),
		cmocka_unit_test(test_config_reference_lists_every_variable),
		cmocka_unit_test(test_copy_text_escapes_specials_and_nulls),
		cmocka_unit_test(test_copy_binary_fields_match_postgres_send),
		cmocka_unit_test(test_buf_cap_sets_toobig),
		cmocka_unit_test(test_check_date_year_bound),
		cmocka_unit_test(test_json_text_round_trips),
		cmocka_unit_test(test_redact_url_hides_passwords),
		cmocka_unit_test(test_redact_conninfo_hides_every_password_form),
		cmocka_unit_test(test_connect_error_hides_what_libpq_quotes),
		cmocka_unit_test(test_kafka_props_by_role),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
