/* test_common.c - unit tests of the shared plumbing: checked number parsing,
 * the configuration table, COPY encoding and log redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
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

static void test_redact_hides_passwords(void **state)
{
	(void)state;
	char out[256];
	log_redact_url("postgresql://meter:s3cret@db:5432/meter?sslmode=require", out, sizeof(out));
	assert_null(strstr(out, "s3cret"));
	assert_non_null(strstr(out, "meter:***@db"));
	log_redact_url("host=db user=meter password=s3cret dbname=meter", out, sizeof(out));
	assert_null(strstr(out, "s3cret"));
	assert_non_null(strstr(out, "password=***"));
	log_redact_url("postgresql://db/meter?password=s3cret&x=1", out, sizeof(out));
	assert_null(strstr(out, "s3cret"));
	log_redact_url("postgresql://meter@db/meter", out, sizeof(out));
	assert_string_equal(out, "postgresql://meter@db/meter");
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
		cmocka_unit_test(test_config_reference_lists_every_variable),
		cmocka_unit_test(test_copy_text_escapes_specials_and_nulls),
		cmocka_unit_test(test_buf_cap_sets_toobig),
		cmocka_unit_test(test_redact_hides_passwords),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
