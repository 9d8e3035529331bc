/* test_event.c - unit tests of the usage event parser (schema/event.c).
 *
 * Two tables drive most cases: field mutations of one valid, complete event
 * (each row replaces or deletes one or two fields with raw JSON text, so rows
 * can hold bytes jansson would refuse to build, like 99999999999999999999),
 * and whole payloads. Every row checks the reason and that a rejection's
 * detail names the field and is printable ASCII. Targeted tests follow for
 * parsed values, time math, costs and ownership.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "event_int.h"

/* Repeated characters for cap boundaries. */
#define A16 "aaaaaaaaaaaaaaaa"
#define A64 A16 A16 A16 A16
#define A128 A64 A64
#define A256 A128 A128
#define A512 A256 A256
#define A4096 A512 A512 A512 A512 A512 A512 A512 A512

/* A complete event using every field. Its time is given with an offset:
 * 2026-03-01T02:59:59.999-03:00 is 2026-03-01T05:59:59.999Z. */
static const char BASE_EVENT[] =
	"{\"specversion\":\"1.0\",\"id\":\"evt-0001\",\"source\":\"//api.example.com/gateway\","
	"\"type\":\"com.example.llm.usage\",\"time\":\"2026-03-01T02:59:59.999-03:00\","
	"\"subject\":\"acme\",\"datacontenttype\":\"application/json\","
	"\"data\":{\"tenant_id\":\"acme\",\"user_id\":\"u-1\",\"api_key_id\":\"k-9\","
	"\"provider\":\"openai\",\"model\":\"gpt-4o-mini\",\"operation\":\"chat\","
	"\"input_tokens\":1200,\"output_tokens\":350,\"cache_read_input_tokens\":200,"
	"\"reasoning_output_tokens\":50,\"requests\":2,"
	"\"units\":{\"video_seconds\":30,\"images\":2},\"cost\":\"0.0042\","
	"\"endpoint\":\"/v1/chat/completions\",\"method\":\"POST\",\"status_code\":200,"
	"\"latency_ms\":843,\"workflow_id\":\"wf-7\",\"execution_id\":\"ex-7:3\","
	"\"metadata\":{\"region\":\"eu-west-1\",\"temperature\":0.7,\"attempt\":1},"
	"\"unknown_field\":[1,2,3]}}";
#define BASE_TIME_US 1772344799999000LL

/* The smallest valid event. */
#define MIN_HEAD                                                                              \
	"{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"s\",\"type\":\"t\","           \
	"\"time\":\"2026-03-01T06:00:00Z\""
#define MIN_EVENT MIN_HEAD ",\"subject\":\"acme\",\"data\":{\"operation\":\"chat\"}}"
#define MIN_DATA(fields)                                                                      \
	MIN_HEAD ",\"subject\":\"acme\",\"data\":{\"operation\":\"chat\"" fields "}}"

/* The time window of rows marked W: now 2026-03-01T06:00:00Z, 35 days late,
 * 5 minutes ahead. */
#define NOW_US 1772344800000000LL
#define MINUTE_US 60000000LL
#define DAY_US 86400000000LL
static const struct ev_limits window_lim = {
	.max_bytes = 0, .now_us = NOW_US, .max_lateness_us = 35 * DAY_US,
	.max_future_us = 5 * MINUTE_US};

/* Marks where raw text goes; one per mutation, so order does not matter. */
#define RAW_MARK1 "@@raw1@@"
#define RAW_MARK2 "@@raw2@@"

/* Set (raw != NULL: to the mark) or delete one field of root given as
 * "key" or "data.key". */
static void mutate(json_t *root, const char *path, const char *raw, const char *mark)
{
	json_t *obj = root;
	const char *key = path;
	const char *dot = strchr(path, '.');
	if (dot) {
		char head[32];
		snprintf(head, sizeof(head), "%.*s", (int)(dot - path), path);
		obj = json_object_get(root, head);
		key = dot + 1;
	}
	assert_non_null(obj);
	if (raw)
		json_object_set_new(obj, key, json_string(mark));
	else
		json_object_del(obj, key);
}

/* Replace the quoted mark in s (freed) with raw. */
static char *splice(char *s, const char *mark, const char *raw)
{
	char quoted[32];
	snprintf(quoted, sizeof(quoted), "\"%s\"", mark);
	char *at = strstr(s, quoted);
	assert_non_null(at);
	size_t head = (size_t)(at - s), ph = strlen(quoted);
	size_t n = strlen(s) - ph + strlen(raw);
	char *out = malloc(n + 1);
	assert_non_null(out);
	memcpy(out, s, head);
	memcpy(out + head, raw, strlen(raw));
	strcpy(out + head + strlen(raw), at + ph);
	free(s);
	return out;
}

/* BASE_EVENT with up to two fields replaced by raw JSON text or deleted
 * (raw NULL). Returns a new malloc'd string. */
static char *build_event(const char *path, const char *raw, const char *path2, const char *raw2)
{
	json_t *root = json_loads(BASE_EVENT, 0, NULL);
	assert_non_null(root);
	if (path)
		mutate(root, path, raw, RAW_MARK1);
	if (path2)
		mutate(root, path2, raw2, RAW_MARK2);
	char *s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	assert_non_null(s);
	if (path && raw)
		s = splice(s, RAW_MARK1, raw);
	if (path2 && raw2)
		s = splice(s, RAW_MARK2, raw2);
	return s;
}

static int is_zeroed(const struct meter_event *ev)
{
	static const struct meter_event zero;
	return memcmp(ev, &zero, sizeof(zero)) == 0;
}

/* Reasons reported before any field is looked at: their detail says "event:". */
static int is_payload_reason(enum ev_reason r)
{
	return r == EV_TOO_LARGE || r == EV_MALFORMED_JSON || r == EV_INVALID_UTF8 ||
	       r == EV_NOT_OBJECT || r == EV_INTEGER_OVERFLOW || r == EV_OUT_OF_RANGE;
}

/* Check the outcome of one row; returns the number of problems (printed). */
/* The fast path (event_fast.c) against the full parser on the same bytes:
 * what the fast path accepts, the full parser accepts with an equal event;
 * what it declines leaves the event cleared. Counts the rows it accepted. */
static int fast_accepted;

static int check_fast_path(const char *name, const char *buf, size_t len,
			   const struct ev_limits *lim)
{
	struct meter_event fast, full;
	struct ev_error err;
	size_t cap = lim && lim->max_bytes ? lim->max_bytes : 65536;
	int bad = 0;
	if (len == 0 || len > cap)
		return 0; /* ev_parse refuses these before either path */
	int rc_fast = ev_parse_fast(buf, len, lim, &fast);
	int rc_full = ev_parse_full(buf, len, lim, &full, &err);
	if (rc_fast == 0) {
		fast_accepted++;
		if (rc_full != 0 || !ev_equal(&fast, &full)) {
			print_error("%s: the fast path accepted what the full parser %s\n", name,
				    rc_full ? "refuses" : "reads differently");
			bad++;
		}
	} else if (!is_zeroed(&fast)) {
		print_error("%s: the fast path declined without clearing the event\n", name);
		bad++;
	}
	ev_clear(&fast);
	ev_clear(&full);
	return bad;
}

static int check_outcome(const char *name, const char *path, int rc, enum ev_reason want,
			 const struct meter_event *ev, const struct ev_error *err)
{
	int bad = 0;
	if (err->reason != want || (rc == 0) != (want == EV_OK)) {
		print_error("%s: want %s, got rc=%d %s (%s)\n", name, ev_reason_name(want), rc,
			    ev_reason_name(err->reason), err->detail);
		return 1;
	}
	if (rc == 0)
		return 0;
	if (!is_zeroed(ev)) {
		print_error("%s: event not cleared after a rejection\n", name);
		bad++;
	}
	size_t n = strnlen(err->detail, sizeof(err->detail));
	if (n == 0 || n == sizeof(err->detail)) {
		print_error("%s: detail empty or not terminated\n", name);
		bad++;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)err->detail[i];
		if (c < 0x20 || c > 0x7e) {
			print_error("%s: detail byte 0x%02x at %zu is not printable\n", name, c, i);
			bad++;
			break;
		}
	}
	/* The detail names the field (path, or a path below it), or the whole
	 * event for payload-level reasons. */
	size_t pl = path ? strlen(path) : 0;
	int names_path = path && strncmp(err->detail, path, pl) == 0 &&
			 (err->detail[pl] == ':' || err->detail[pl] == '.');
	int names_event = strncmp(err->detail, "event: ", 7) == 0 && is_payload_reason(want);
	if (!names_path && !names_event) {
		print_error("%s: detail does not name %s: %s\n", name, path ? path : "event",
			    err->detail);
		bad++;
	}
	return bad;
}

/* ---- table 1: field mutations of BASE_EVENT ------------------------------ */

struct mutation_case {
	const char *name;
	const char *path;  /* "id", "data.input_tokens", ... */
	const char *raw;   /* JSON text put there; NULL deletes the field */
	const char *path2; /* optional second mutation */
	const char *raw2;
	int window;        /* parse with window_lim */
	enum ev_reason want;
};

#define M(n, p, r, w) {n, p, r, NULL, NULL, 0, w}
#define M2(n, p, r, p2, r2, w) {n, p, r, p2, r2, 0, w}
#define W(n, p, r, w) {n, p, r, NULL, NULL, 1, w}
#define W2(n, p, r, p2, r2, w) {n, p, r, p2, r2, 1, w}

static const struct mutation_case mutation_cases[] = {
	M("unchanged_base_event_is_valid", NULL, NULL, EV_OK),
	M("unknown_top_level_field_is_ignored", "traceparent", "\"00-ab-cd-01\"", EV_OK),

	/* specversion */
	M("specversion_missing_is_missing_field", "specversion", NULL, EV_MISSING_FIELD),
	M("specversion_null_is_missing_field", "specversion", "null", EV_MISSING_FIELD),
	M("specversion_number_is_wrong_type", "specversion", "1.0", EV_WRONG_TYPE),
	M("specversion_0_3_is_unsupported", "specversion", "\"0.3\"", EV_UNSUPPORTED_SPECVERSION),
	M("specversion_1_0_with_space_is_unsupported", "specversion", "\"1.0 \"",
	  EV_UNSUPPORTED_SPECVERSION),
	M2("specversion_is_checked_before_other_fields", "specversion", "\"2.0\"", "id", "\"a/b\"",
	   EV_UNSUPPORTED_SPECVERSION),

	/* id */
	M("id_missing_is_missing_field", "id", NULL, EV_MISSING_FIELD),
	M("id_null_is_missing_field", "id", "null", EV_MISSING_FIELD),
	M("id_number_is_wrong_type", "id", "42", EV_WRONG_TYPE),
	M("id_empty_is_invalid", "id", "\"\"", EV_INVALID_VALUE),
	M("id_with_slash_is_invalid", "id", "\"a/b\"", EV_INVALID_VALUE),
	M("id_with_space_is_invalid", "id", "\"a b\"", EV_INVALID_VALUE),
	M("id_with_escaped_control_char_is_invalid", "id", "\"a\\u0001b\"", EV_INVALID_VALUE),
	M("id_with_non_ascii_is_invalid", "id", "\"caf\\u00e9\"", EV_INVALID_VALUE),
	M("id_with_every_allowed_punctuation_is_valid", "id", "\"aZ09._~:@+=-\"", EV_OK),
	M("id_of_128_bytes_is_valid", "id", "\"" A128 "\"", EV_OK),
	M("id_of_129_bytes_is_too_long", "id", "\"" A128 "a\"", EV_TOO_LONG),

	/* source and type */
	M("source_missing_is_missing_field", "source", NULL, EV_MISSING_FIELD),
	M("source_object_is_wrong_type", "source", "{}", EV_WRONG_TYPE),
	M("source_with_unicode_is_valid", "source", "\"//\\u00fcber.example/\\ud83d\\ude00\"",
	  EV_OK),
	M("source_with_unit_separator_is_invalid", "source", "\"a\\u001fb\"", EV_INVALID_VALUE),
	M("source_with_del_is_invalid", "source", "\"a\\u007fb\"", EV_INVALID_VALUE),
	M("source_with_newline_is_invalid", "source", "\"a\\nb\"", EV_INVALID_VALUE),
	M("source_of_256_bytes_is_valid", "source", "\"" A256 "\"", EV_OK),
	M("source_of_257_bytes_is_too_long", "source", "\"" A256 "a\"", EV_TOO_LONG),
	M("type_missing_is_missing_field", "type", NULL, EV_MISSING_FIELD),
	M("type_array_is_wrong_type", "type", "[\"t\"]", EV_WRONG_TYPE),
	M("type_empty_is_invalid", "type", "\"\"", EV_INVALID_VALUE),
	M("type_of_128_bytes_is_valid", "type", "\"" A128 "\"", EV_OK),
	M("type_of_129_bytes_is_too_long", "type", "\"" A128 "a\"", EV_TOO_LONG),

	/* time */
	M("time_missing_is_missing_field", "time", NULL, EV_MISSING_FIELD),
	M("time_number_is_wrong_type", "time", "1772344800", EV_WRONG_TYPE),
	M("time_words_are_invalid_time", "time", "\"yesterday\"", EV_INVALID_TIME),
	M("time_without_zone_is_invalid_time", "time", "\"2026-03-01T06:00:00\"",
	  EV_INVALID_TIME),
	M("time_2028_02_29_leap_day_is_valid", "time", "\"2028-02-29T00:00:00Z\"", EV_OK),
	M("time_2027_02_29_is_invalid_time", "time", "\"2027-02-29T00:00:00Z\"", EV_INVALID_TIME),
	M("time_leap_second_is_invalid_time", "time", "\"2026-12-31T23:59:60Z\"",
	  EV_INVALID_TIME),
	M("time_far_past_without_window_is_valid", "time", "\"1999-01-01T00:00:00Z\"", EV_OK),
	W("time_inside_window_is_valid", NULL, NULL, EV_OK),
	W("time_ten_years_ahead_is_in_future", "time", "\"2036-03-01T06:00:00Z\"",
	  EV_TIME_IN_FUTURE),
	W("time_ten_years_ago_is_too_late", "time", "\"2016-03-01T06:00:00Z\"", EV_TOO_LATE),
	W("time_exactly_at_future_bound_is_valid", "time", "\"2026-03-01T06:05:00Z\"", EV_OK),
	W("time_1us_past_future_bound_is_in_future", "time", "\"2026-03-01T06:05:00.000001Z\"",
	  EV_TIME_IN_FUTURE),
	W("time_exactly_at_lateness_bound_is_valid", "time", "\"2026-01-25T06:00:00Z\"", EV_OK),
	W("time_1us_before_lateness_bound_is_too_late", "time", "\"2026-01-25T05:59:59.999999Z\"",
	  EV_TOO_LATE),
	W("time_window_applies_after_offset", "time", "\"2026-03-01T03:05:00.000001-03:00\"",
	  EV_TIME_IN_FUTURE),
	W2("invalid_field_is_reported_before_the_window", "data.input_tokens", "-1", "time",
	   "\"2016-03-01T06:00:00Z\"", EV_NEGATIVE_VALUE),

	/* tenant: subject and/or data.tenant_id */
	M("subject_alone_is_enough", "data.tenant_id", NULL, EV_OK),
	M("tenant_id_alone_is_enough", "subject", NULL, EV_OK),
	M("null_subject_with_tenant_id_is_valid", "subject", "null", EV_OK),
	M2("no_subject_and_no_tenant_id_is_missing_field", "data.tenant_id", NULL, "subject", NULL,
	   EV_MISSING_FIELD),
	M2("null_subject_and_null_tenant_id_is_missing_field", "data.tenant_id", "null", "subject",
	   "null", EV_MISSING_FIELD),
	M("tenant_id_differing_from_subject_is_mismatch", "data.tenant_id", "\"globex\"",
	  EV_TENANT_MISMATCH),
	M("tenant_id_differing_only_in_case_is_mismatch", "data.tenant_id", "\"ACME\"",
	  EV_TENANT_MISMATCH),
	M("subject_with_slash_is_invalid", "subject", "\"tenant/acme\"", EV_INVALID_VALUE),
	M("subject_number_is_wrong_type", "subject", "7", EV_WRONG_TYPE),
	M("tenant_id_with_space_is_invalid", "data.tenant_id", "\"ac me\"", EV_INVALID_VALUE),
	M("tenant_id_of_129_bytes_is_too_long", "data.tenant_id", "\"" A128 "a\"", EV_TOO_LONG),

	/* data */
	M("data_missing_is_missing_field", "data", NULL, EV_MISSING_FIELD),
	M("data_null_is_missing_field", "data", "null", EV_MISSING_FIELD),
	M("data_string_is_not_an_object", "data", "\"usage\"", EV_NOT_OBJECT),
	M("data_array_is_not_an_object", "data", "[]", EV_NOT_OBJECT),

	/* names */
	M("operation_missing_is_missing_field", "data.operation", NULL, EV_MISSING_FIELD),
	M("operation_null_is_missing_field", "data.operation", "null", EV_MISSING_FIELD),
	M("operation_uppercase_is_invalid", "data.operation", "\"Chat\"", EV_INVALID_VALUE),
	M("operation_empty_is_invalid", "data.operation", "\"\"", EV_INVALID_VALUE),
	M("operation_with_dot_dash_underscore_is_valid", "data.operation", "\"llm.call-v2_x\"",
	  EV_OK),
	M("operation_of_64_bytes_is_valid", "data.operation", "\"" A64 "\"", EV_OK),
	M("operation_of_65_bytes_is_too_long", "data.operation", "\"" A64 "a\"", EV_TOO_LONG),
	M("provider_null_is_absent", "data.provider", "null", EV_OK),
	M("provider_uppercase_is_invalid", "data.provider", "\"OpenAI\"", EV_INVALID_VALUE),
	M("provider_number_is_wrong_type", "data.provider", "1", EV_WRONG_TYPE),
	M("model_with_slash_is_valid", "data.model", "\"models/gemini-1.5-pro\"", EV_OK),
	M("model_with_colon_at_plus_is_valid", "data.model", "\"ft:gpt-3.5-turbo:acme:x@1+2\"",
	  EV_OK),
	M("model_with_space_is_invalid", "data.model", "\"gpt 4\"", EV_INVALID_VALUE),
	M("model_of_128_bytes_is_valid", "data.model", "\"" A128 "\"", EV_OK),
	M("model_of_129_bytes_is_too_long", "data.model", "\"" A128 "a\"", EV_TOO_LONG),
	M("user_id_with_slash_is_invalid", "data.user_id", "\"u/1\"", EV_INVALID_VALUE),
	M("user_id_boolean_is_wrong_type", "data.user_id", "true", EV_WRONG_TYPE),
	M("api_key_id_empty_is_invalid", "data.api_key_id", "\"\"", EV_INVALID_VALUE),
	M("workflow_id_with_space_is_invalid", "data.workflow_id", "\"wf 1\"", EV_INVALID_VALUE),
	M("execution_id_of_129_bytes_is_too_long", "data.execution_id", "\"" A128 "a\"",
	  EV_TOO_LONG),

	/* token counts */
	M("input_tokens_negative_is_negative_value", "data.input_tokens", "-1", EV_NEGATIVE_VALUE),
	M("input_tokens_int64_min_is_negative_value", "data.input_tokens",
	  "-9223372036854775808", EV_NEGATIVE_VALUE),
	M("input_tokens_20_digits_is_integer_overflow", "data.input_tokens",
	  "99999999999999999999", EV_INTEGER_OVERFLOW),
	M("input_tokens_negative_20_digits_is_integer_overflow", "data.input_tokens",
	  "-99999999999999999999", EV_INTEGER_OVERFLOW),
	M("input_tokens_int64_max_is_out_of_range", "data.input_tokens", "9223372036854775807",
	  EV_OUT_OF_RANGE),
	M("input_tokens_at_cap_is_valid", "data.input_tokens", "1000000000000", EV_OK),
	M("input_tokens_cap_plus_one_is_out_of_range", "data.input_tokens", "1000000000001",
	  EV_OUT_OF_RANGE),
	M("input_tokens_equal_to_cached_is_valid", "data.input_tokens", "200", EV_OK),
	M("cached_more_than_input_is_out_of_range", "data.cache_read_input_tokens", "1201",
	  EV_OUT_OF_RANGE),
	M("reasoning_more_than_output_is_out_of_range", "data.reasoning_output_tokens", "351",
	  EV_OUT_OF_RANGE),
	M("reasoning_equal_to_output_is_valid", "data.reasoning_output_tokens", "350", EV_OK),
	M("input_tokens_real_1_0_is_wrong_type", "data.input_tokens", "1.0", EV_WRONG_TYPE),
	M("input_tokens_exponent_is_wrong_type", "data.input_tokens", "1e3", EV_WRONG_TYPE),
	M("input_tokens_real_overflow_is_out_of_range", "data.input_tokens", "1e400",
	  EV_OUT_OF_RANGE),
	M("input_tokens_string_is_wrong_type", "data.input_tokens", "\"12\"", EV_WRONG_TYPE),
	M("input_tokens_boolean_is_wrong_type", "data.input_tokens", "true", EV_WRONG_TYPE),
	M("output_tokens_negative_is_negative_value", "data.output_tokens", "-5",
	  EV_NEGATIVE_VALUE),
	M("output_tokens_cap_plus_one_is_out_of_range", "data.output_tokens", "1000000000001",
	  EV_OUT_OF_RANGE),
	M("cache_read_input_tokens_real_is_wrong_type", "data.cache_read_input_tokens", "1.5",
	  EV_WRONG_TYPE),
	M("cache_read_input_tokens_negative_is_negative_value", "data.cache_read_input_tokens",
	  "-1", EV_NEGATIVE_VALUE),
	M("reasoning_output_tokens_cap_plus_one_is_out_of_range", "data.reasoning_output_tokens",
	  "1000000000001", EV_OUT_OF_RANGE),
	M("reasoning_output_tokens_array_is_wrong_type", "data.reasoning_output_tokens", "[1]",
	  EV_WRONG_TYPE),

	/* requests, status_code, latency_ms */
	M("requests_zero_is_valid", "data.requests", "0", EV_OK),
	M("requests_at_cap_is_valid", "data.requests", "1000000", EV_OK),
	M("requests_cap_plus_one_is_out_of_range", "data.requests", "1000001", EV_OUT_OF_RANGE),
	M("requests_negative_is_negative_value", "data.requests", "-1", EV_NEGATIVE_VALUE),
	M("requests_real_is_wrong_type", "data.requests", "2.0", EV_WRONG_TYPE),
	M("status_code_100_is_valid", "data.status_code", "100", EV_OK),
	M("status_code_599_is_valid", "data.status_code", "599", EV_OK),
	M("status_code_99_is_out_of_range", "data.status_code", "99", EV_OUT_OF_RANGE),
	M("status_code_600_is_out_of_range", "data.status_code", "600", EV_OUT_OF_RANGE),
	M("status_code_negative_is_out_of_range", "data.status_code", "-1", EV_OUT_OF_RANGE),
	M("status_code_string_is_wrong_type", "data.status_code", "\"200\"", EV_WRONG_TYPE),
	M("latency_ms_one_day_is_valid", "data.latency_ms", "86400000", EV_OK),
	M("latency_ms_over_one_day_is_out_of_range", "data.latency_ms", "86400001",
	  EV_OUT_OF_RANGE),
	M("latency_ms_negative_is_negative_value", "data.latency_ms", "-1", EV_NEGATIVE_VALUE),
	M("latency_ms_real_is_wrong_type", "data.latency_ms", "12.5", EV_WRONG_TYPE),

	/* units */
	M("units_null_is_absent", "data.units", "null", EV_OK),
	M("units_empty_object_is_valid", "data.units", "{}", EV_OK),
	M("units_array_is_wrong_type", "data.units", "[]", EV_WRONG_TYPE),
	M("unit_name_uppercase_is_invalid", "data.units", "{\"Images\":1}", EV_INVALID_VALUE),
	M("unit_name_with_dash_is_invalid", "data.units", "{\"video-seconds\":1}",
	  EV_INVALID_VALUE),
	M("unit_name_empty_is_invalid", "data.units", "{\"\":1}", EV_INVALID_VALUE),
	M("unit_name_of_32_bytes_is_valid", "data.units", "{\"" A16 A16 "\":1}", EV_OK),
	M("unit_name_of_33_bytes_is_too_long", "data.units", "{\"" A16 A16 "a\":1}", EV_TOO_LONG),
	M("unit_quantity_negative_is_negative_value", "data.units", "{\"images\":-1}",
	  EV_NEGATIVE_VALUE),
	M("unit_quantity_real_is_wrong_type", "data.units", "{\"video_seconds\":1.5}",
	  EV_WRONG_TYPE),
	M("unit_quantity_string_is_wrong_type", "data.units", "{\"images\":\"2\"}", EV_WRONG_TYPE),
	M("unit_quantity_null_is_wrong_type", "data.units", "{\"images\":null}", EV_WRONG_TYPE),
	M("unit_quantity_at_cap_is_valid", "data.units", "{\"images\":1000000000000}", EV_OK),
	M("unit_quantity_cap_plus_one_is_out_of_range", "data.units",
	  "{\"images\":1000000000001}", EV_OUT_OF_RANGE),
	M("units_16_entries_are_valid", "data.units",
	  "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
	  "\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1}",
	  EV_OK),
	M("units_17_entries_are_too_long", "data.units",
	  "{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,"
	  "\"i\":1,\"j\":1,\"k\":1,\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}",
	  EV_TOO_LONG),

	/* cost (values are checked in test_cost_amounts) */
	M("cost_one_picodollar_is_valid", "data.cost", "\"0.000000000001\"", EV_OK),
	M("cost_13_fraction_digits_is_invalid_cost", "data.cost", "\"0.0000000000001\"",
	  EV_INVALID_COST),
	M("cost_json_real_is_invalid_cost", "data.cost", "0.0042", EV_INVALID_COST),
	M("cost_negative_string_is_invalid_cost", "data.cost", "\"-1\"", EV_INVALID_COST),
	M("cost_boolean_is_invalid_cost", "data.cost", "false", EV_INVALID_COST),
	M("cost_null_is_absent", "data.cost", "null", EV_OK),

	/* request details */
	M("endpoint_with_tab_is_invalid", "data.endpoint", "\"/v1\\tchat\"", EV_INVALID_VALUE),
	M("endpoint_of_512_bytes_is_valid", "data.endpoint", "\"" A512 "\"", EV_OK),
	M("endpoint_of_513_bytes_is_too_long", "data.endpoint", "\"" A512 "a\"", EV_TOO_LONG),
	M("method_lowercase_is_valid", "data.method", "\"post\"", EV_OK),
	M("method_with_space_is_invalid", "data.method", "\"PO ST\"", EV_INVALID_VALUE),
	M("method_of_17_bytes_is_too_long", "data.method", "\"" A16 "a\"", EV_TOO_LONG),

	/* metadata */
	M("metadata_null_is_absent", "data.metadata", "null", EV_OK),
	M("metadata_string_is_wrong_type", "data.metadata", "\"k=v\"", EV_WRONG_TYPE),
	M("metadata_over_4096_bytes_serialized_is_too_long", "data.metadata",
	  "{\"k\":\"" A4096 "\"}", EV_TOO_LONG),
	M("metadata_nested_is_valid", "data.metadata", "{\"a\":{\"b\":[1,\"x\",null,true]}}",
	  EV_OK),
};

static void test_mutation_table(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(mutation_cases) / sizeof(mutation_cases[0]); i++) {
		const struct mutation_case *c = &mutation_cases[i];
		struct meter_event ev;
		struct ev_error err;
		char *json = build_event(c->path, c->raw, c->path2, c->raw2);
		int rc = ev_parse(json, strlen(json), c->window ? &window_lim : NULL, &ev, &err);
		bad += check_outcome(c->name, c->path ? c->path : "event", rc, c->want, &ev, &err);
		bad += check_fast_path(c->name, json, strlen(json), c->window ? &window_lim : NULL);
		ev_clear(&ev);
		free(json);
	}
	assert_int_equal(bad, 0);
}

/* ---- table 2: whole payloads -------------------------------------------- */

struct raw_case {
	const char *name;
	const char *bytes;
	size_t len;
	size_t max_bytes;  /* 0: default cap */
	const char *path;  /* field the detail must name; NULL: "event" */
	enum ev_reason want;
};

#define R(n, lit, w) {n, lit, sizeof(lit) - 1, 0, NULL, w}
#define RP(n, lit, p, w) {n, lit, sizeof(lit) - 1, 0, p, w}
#define RCAP(n, lit, cap, w) {n, lit, sizeof(lit) - 1, cap, NULL, w}

static const struct raw_case raw_cases[] = {
	R("minimal_event_is_valid", MIN_EVENT, EV_OK),
	R("whitespace_around_event_is_valid", " \r\n\t" MIN_EVENT "\n", EV_OK),
	RCAP("payload_exactly_at_cap_is_valid", MIN_EVENT, sizeof(MIN_EVENT) - 1, EV_OK),
	RCAP("payload_one_byte_over_cap_is_too_large", MIN_EVENT, sizeof(MIN_EVENT) - 2,
	     EV_TOO_LARGE),
	RCAP("garbage_over_cap_is_too_large_before_parsing", "\xff\xff{{{{{{{{", 4, EV_TOO_LARGE),
	R("empty_payload_is_malformed", "", EV_MALFORMED_JSON),
	R("truncated_object_is_malformed", "{\"specversion\":\"1.0\"", EV_MALFORMED_JSON),
	R("trailing_garbage_is_malformed", MIN_EVENT " x", EV_MALFORMED_JSON),
	R("two_events_back_to_back_are_malformed", MIN_EVENT MIN_EVENT, EV_MALFORMED_JSON),
	R("trailing_nul_byte_is_malformed", MIN_EVENT "\0", EV_MALFORMED_JSON),
	R("single_quotes_are_malformed", "{'id':'e1'}", EV_MALFORMED_JSON),
	R("utf8_bom_is_malformed", "\xef\xbb\xbf" MIN_EVENT, EV_MALFORMED_JSON),
	R("bad_token_with_control_byte_is_malformed", "{\"a\":tru\x01}", EV_MALFORMED_JSON),
	R("duplicate_top_level_key_is_malformed",
	  MIN_HEAD ",\"id\":\"e2\",\"subject\":\"acme\",\"data\":{\"operation\":\"chat\"}}",
	  EV_MALFORMED_JSON),
	R("duplicate_key_in_data_is_malformed", MIN_DATA(",\"operation\":\"rag\""),
	  EV_MALFORMED_JSON),
	R("duplicate_key_in_metadata_is_malformed", MIN_DATA(",\"metadata\":{\"a\":1,\"a\":1}"),
	  EV_MALFORMED_JSON),
	R("escaped_nul_in_string_is_malformed", MIN_DATA(",\"user_id\":\"u\\u0000\""),
	  EV_MALFORMED_JSON),
	R("raw_nul_in_string_is_malformed", MIN_DATA(",\"user_id\":\"u\0x\""), EV_MALFORMED_JSON),
	R("raw_control_char_in_string_is_malformed", MIN_DATA(",\"user_id\":\"u\x01\""),
	  EV_MALFORMED_JSON),
	R("lone_surrogate_escape_is_malformed", MIN_DATA(",\"endpoint\":\"\\ud800\""),
	  EV_MALFORMED_JSON),
	R("invalid_utf8_byte_ff_is_invalid_utf8", MIN_DATA(",\"endpoint\":\"/\xff\""),
	  EV_INVALID_UTF8),
	R("latin1_byte_is_invalid_utf8", MIN_DATA(",\"endpoint\":\"/caf\xe9\""), EV_INVALID_UTF8),
	R("overlong_slash_is_invalid_utf8", MIN_DATA(",\"endpoint\":\"\xc0\xaf\""),
	  EV_INVALID_UTF8),
	R("utf8_encoded_surrogate_is_invalid_utf8", MIN_DATA(",\"endpoint\":\"\xed\xa0\x80\""),
	  EV_INVALID_UTF8),
	R("truncated_utf8_sequence_is_invalid_utf8", MIN_DATA(",\"endpoint\":\"\xe2\x82\""),
	  EV_INVALID_UTF8),
	R("invalid_utf8_in_key_is_invalid_utf8", MIN_DATA(",\"x\xfe\":1"), EV_INVALID_UTF8),
	R("invalid_utf8_outside_strings_is_invalid_utf8", MIN_EVENT "\x80", EV_INVALID_UTF8),
	RP("four_byte_utf8_in_source_is_valid",
	   "{\"specversion\":\"1.0\",\"id\":\"e1\",\"source\":\"\xf0\x9f\x98\x80\",\"type\":\"t\","
	   "\"time\":\"2026-03-01T06:00:00Z\",\"subject\":\"acme\",\"data\":{\"operation\":\"x\"}}",
	   "source", EV_OK),
	R("top_level_integer_is_not_an_object", "42", EV_NOT_OBJECT),
	R("top_level_array_is_not_an_object", "[" MIN_EVENT "]", EV_NOT_OBJECT),
	R("top_level_null_is_not_an_object", "null", EV_NOT_OBJECT),
	R("top_level_string_is_not_an_object", "\"event\"", EV_NOT_OBJECT),
	RP("empty_object_is_missing_field", "{}", "specversion", EV_MISSING_FIELD),
	RP("optional_fields_all_null_are_valid",
	   MIN_DATA(",\"tenant_id\":null,\"user_id\":null,\"api_key_id\":null,\"provider\":null,"
		    "\"model\":null,\"input_tokens\":null,\"output_tokens\":null,"
		    "\"cache_read_input_tokens\":null,\"reasoning_output_tokens\":null,"
		    "\"requests\":null,\"units\":null,\"cost\":null,\"endpoint\":null,"
		    "\"method\":null,\"status_code\":null,\"latency_ms\":null,"
		    "\"workflow_id\":null,\"execution_id\":null,\"metadata\":null"),
	   "data", EV_OK),
};

static void test_raw_payload_table(void **state)
{
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		const struct raw_case *c = &raw_cases[i];
		struct ev_limits lim = {.max_bytes = c->max_bytes};
		struct meter_event ev;
		struct ev_error err;
		/* An exact-size copy, so ASan catches any read past len. */
		char *buf = malloc(c->len ? c->len : 1);
		assert_non_null(buf);
		memcpy(buf, c->bytes, c->len);
		int rc = ev_parse(buf, c->len, &lim, &ev, &err);
		bad += check_outcome(c->name, c->path, rc, c->want, &ev, &err);
		bad += check_fast_path(c->name, buf, c->len, &lim);
		ev_clear(&ev);
		free(buf);
	}
	assert_int_equal(bad, 0);
}

/* Every reason except EV_OK is expected by at least one table row. */
static void test_every_reason_has_a_table_case(void **state)
{
	(void)state;
	int seen[EV_REASON_COUNT] = {0};
	for (size_t i = 0; i < sizeof(mutation_cases) / sizeof(mutation_cases[0]); i++)
		seen[mutation_cases[i].want] = 1;
	for (size_t i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++)
		seen[raw_cases[i].want] = 1;
	for (int r = 0; r < EV_REASON_COUNT; r++) {
		if (!seen[r])
			print_error("no table case expects %s\n", ev_reason_name((enum ev_reason)r));
		assert_true(seen[r]);
	}
}

/* ---- parsed values ------------------------------------------------------ */

static void test_full_event_fills_every_field(void **state)
{
	(void)state;
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(BASE_EVENT, strlen(BASE_EVENT), NULL, &ev, &err), 0);
	assert_int_equal(err.reason, EV_OK);
	assert_string_equal(ev.id, "evt-0001");
	assert_string_equal(ev.source, "//api.example.com/gateway");
	assert_string_equal(ev.type, "com.example.llm.usage");
	assert_string_equal(ev.tenant_id, "acme");
	assert_string_equal(ev.user_id, "u-1");
	assert_string_equal(ev.api_key_id, "k-9");
	assert_string_equal(ev.provider, "openai");
	assert_string_equal(ev.model, "gpt-4o-mini");
	assert_string_equal(ev.operation, "chat");
	assert_true(ev.time_us == BASE_TIME_US);
	assert_true(ev.input_tokens == 1200);
	assert_true(ev.output_tokens == 350);
	assert_true(ev.cached_input_tokens == 200);
	assert_true(ev.reasoning_tokens == 50);
	assert_true(ev.requests == 2);
	assert_int_equal(ev.has_cost, 1);
	assert_true(ev.cost_pusd == 4200000000LL);
	assert_string_equal(ev.units_json, "{\"images\":2,\"video_seconds\":30}");
	assert_string_equal(ev.endpoint, "/v1/chat/completions");
	assert_string_equal(ev.method, "POST");
	assert_true(ev.status_code == 200);
	assert_true(ev.latency_ms == 843);
	assert_string_equal(ev.workflow_id, "wf-7");
	assert_string_equal(ev.execution_id, "ex-7:3");
	/* Sorted, compact, and the real keeps the decimal the sender wrote. */
	assert_string_equal(ev.metadata_json,
			    "{\"attempt\":1,\"region\":\"eu-west-1\",\"temperature\":0.7}");
	ev_clear(&ev);
	assert_true(is_zeroed(&ev));
}

static void test_absent_optional_fields_take_defaults(void **state)
{
	(void)state;
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(MIN_EVENT, strlen(MIN_EVENT), NULL, &ev, &err), 0);
	assert_string_equal(ev.tenant_id, "acme"); /* from subject */
	assert_string_equal(ev.user_id, "");
	assert_string_equal(ev.api_key_id, "");
	assert_string_equal(ev.provider, "");
	assert_string_equal(ev.model, "");
	assert_string_equal(ev.endpoint, "");
	assert_string_equal(ev.method, "");
	assert_string_equal(ev.workflow_id, "");
	assert_string_equal(ev.execution_id, "");
	assert_true(ev.input_tokens == 0 && ev.output_tokens == 0);
	assert_true(ev.cached_input_tokens == 0 && ev.reasoning_tokens == 0);
	assert_true(ev.requests == 1);
	assert_int_equal(ev.has_cost, 0);
	assert_true(ev.cost_pusd == 0);
	assert_true(ev.status_code == -1);
	assert_true(ev.latency_ms == -1);
	assert_null(ev.units_json);
	assert_null(ev.metadata_json);
	assert_true(ev.time_us == NOW_US);
	ev_clear(&ev);
}

static void test_tenant_id_alone_sets_tenant(void **state)
{
	(void)state;
	static const char json[] =
		MIN_HEAD ",\"data\":{\"operation\":\"chat\",\"tenant_id\":\"globex\"}}";
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(json, strlen(json), NULL, &ev, &err), 0);
	assert_string_equal(ev.tenant_id, "globex");
	ev_clear(&ev);
}

static void test_empty_units_and_metadata_are_stored_as_null(void **state)
{
	(void)state;
	static const char json[] = MIN_DATA(",\"units\":{},\"metadata\":{}");
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(json, strlen(json), NULL, &ev, &err), 0);
	assert_null(ev.units_json);
	assert_null(ev.metadata_json);
	ev_clear(&ev);
}

static void test_units_json_is_compact_and_sorted(void **state)
{
	(void)state;
	static const char json[] =
		MIN_DATA(",\"units\":{ \"video_seconds\" : 1000000000000 ,\"images\": 0 ,"
			 "\"a_1\":7}");
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(json, strlen(json), NULL, &ev, &err), 0);
	assert_string_equal(ev.units_json,
			    "{\"a_1\":7,\"images\":0,\"video_seconds\":1000000000000}");
	ev_clear(&ev);
}

struct cost_case {
	const char *raw;
	int ok;
	int64_t pusd;
};

static void test_cost_amounts(void **state)
{
	(void)state;
	static const struct cost_case cases[] = {
		{"\"0.000000000001\"", 1, 1},
		{"\"1.5\"", 1, 1500000000000LL},
		{"\"0.0042\"", 1, 4200000000LL},
		{"\"12\"", 1, 12000000000000LL},
		{"\"0\"", 1, 0},
		{"0", 1, 0},
		{"3", 1, 3000000000000LL},
		{"\"999999.999999999999\"", 1, 999999999999999999LL},
		{"\"1000000\"", 1, EV_COST_MAX_PUSD},
		{"1000000", 1, EV_COST_MAX_PUSD},
		{"\"007.10\"", 1, 7100000000000LL},
		{"\"0.0000000000001\"", 0, 0},
		{"\"1000000.000000000001\"", 0, 0},
		{"1000001", 0, 0},
		{"9223372036854775807", 0, 0},
		{"-1", 0, 0},
		{"\"-0.5\"", 0, 0},
		{"\"+1\"", 0, 0},
		{"0.5", 0, 0},
		{"1e3", 0, 0},
		{"\"1e3\"", 0, 0},
		{"\" 1\"", 0, 0},
		{"\"1 \"", 0, 0},
		{"\".5\"", 0, 0},
		{"\"1.\"", 0, 0},
		{"\"\"", 0, 0},
		{"\"1,5\"", 0, 0},
		{"\"0x10\"", 0, 0},
		{"\"NaN\"", 0, 0},
		{"true", 0, 0},
		{"{}", 0, 0},
		{"[\"1\"]", 0, 0},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_event ev;
		struct ev_error err;
		char *json = build_event("data.cost", cases[i].raw, NULL, NULL);
		int rc = ev_parse(json, strlen(json), NULL, &ev, &err);
		if (cases[i].ok && (rc != 0 || !ev.has_cost || ev.cost_pusd != cases[i].pusd)) {
			print_error("cost %s: want %lld pUSD, got rc=%d %lld (%s)\n", cases[i].raw,
				    (long long)cases[i].pusd, rc, (long long)ev.cost_pusd,
				    err.detail);
			bad++;
		}
		if (!cases[i].ok && (rc == 0 || err.reason != EV_INVALID_COST ||
				     strncmp(err.detail, "data.cost: ", 11) != 0)) {
			print_error("cost %s: want invalid_cost, got %s (%s)\n", cases[i].raw,
				    ev_reason_name(err.reason), err.detail);
			bad++;
		}
		ev_clear(&ev);
		free(json);
	}
	assert_int_equal(bad, 0);
}

/* ---- details ------------------------------------------------------------ */

struct detail_case {
	const char *path;
	const char *raw;
	const char *want; /* substring of the detail */
};

static void test_details_say_what_is_wrong(void **state)
{
	(void)state;
	static const struct detail_case cases[] = {
		{"data.input_tokens", "-1", "data.input_tokens: must be >= 0, got -1"},
		{"data.input_tokens", "1.0", "data.input_tokens: expected an integer"},
		{"data.input_tokens", "1000000000001",
		 "data.input_tokens: must be between 0 and 1000000000000"},
		{"data.units", "{\"images\":-1}", "data.units.images: must be >= 0"},
		{"data.cost", "0.5", "data.cost: send the amount as a decimal string"},
		{"data.cost", "\"1.0000000000001\"", "at most 12 fraction digits"},
		{"id", NULL, "id: required"},
		{"id", "\"a/b\"", "id: byte 0x2f at offset 1 not allowed"},
		{"data.model", "\"gpt 4\"", "\"gpt 4\""},
		{"data.operation", "\"" A64 "a\"", "data.operation: 65 bytes, at most 64"},
		{"data.tenant_id", "\"globex\"", "data.tenant_id: \"globex\" differs from subject \"acme\""},
		{"specversion", "\"0.3\"", "specversion: \"0.3\" is not supported"},
		{"time", "\"2027-02-29T00:00:00Z\"", "time: \"2027-02-29T00:00:00Z\" is not an RFC 3339"},
		{"data.input_tokens", "99999999999999999999", "too big integer"},
		{"data", "7", "data: expected an object, got an integer"},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_event ev;
		struct ev_error err;
		char *json = build_event(cases[i].path, cases[i].raw, NULL, NULL);
		if (ev_parse(json, strlen(json), NULL, &ev, &err) == 0 ||
		    !strstr(err.detail, cases[i].want)) {
			print_error("%s=%s: want detail with '%s', got '%s'\n", cases[i].path,
				    cases[i].raw ? cases[i].raw : "(deleted)", cases[i].want,
				    err.detail);
			bad++;
		}
		free(json);
	}
	assert_int_equal(bad, 0);
}

static void test_detail_escapes_and_truncates_the_value(void **state)
{
	(void)state;
	/* 1 control character then 100 two-byte characters: 201 bytes, under the
	 * source cap, refused for the control character. */
	char raw[1024] = "\"\\u0001";
	for (int i = 0; i < 100; i++)
		strcat(raw, "\\u00e9");
	strcat(raw, "\"");
	char *json = build_event("source", raw, NULL, NULL);
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(json, strlen(json), NULL, &ev, &err), -1);
	assert_int_equal(err.reason, EV_INVALID_VALUE);
	assert_non_null(strstr(err.detail, "source: byte 0x01 at offset 0"));
	const char *shown = strstr(err.detail, "in \"");
	assert_non_null(shown);
	shown += 4;
	assert_true(strncmp(shown, "\\x01\\xc3\\xa9", 12) == 0);
	/* At most 64 characters of the value, then "...". */
	const char *end = strstr(shown, "...\"");
	assert_non_null(end);
	assert_true(end - shown <= 64);
	for (const char *p = err.detail; *p; p++)
		assert_true(*p >= 0x20 && *p < 0x7f);
	free(json);
}

/* ---- sizes and nesting -------------------------------------------------- */

static char *event_with_metadata_blob(size_t total)
{
	static const char head[] = MIN_DATA(",\"metadata\":{\"blob\":\"");
	static const char tail[] = "\"}}}";
	/* MIN_DATA ends with "}}": drop them, the tail closes everything. */
	size_t hl = sizeof(head) - 1 - 2, tl = sizeof(tail) - 1;
	assert_true(total > hl + tl);
	char *buf = malloc(total);
	assert_non_null(buf);
	memcpy(buf, head, hl);
	memset(buf + hl, 'x', total - hl - tl);
	memcpy(buf + total - tl, tail, tl);
	return buf;
}

static void test_ten_megabytes_are_too_large_before_parsing(void **state)
{
	(void)state;
	const size_t n = 10u * 1024 * 1024;
	char *buf = event_with_metadata_blob(n);
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse(buf, n, NULL, &ev, &err), -1);
	assert_int_equal(err.reason, EV_TOO_LARGE);
	assert_string_equal(err.detail, "event: 10485760 bytes, at most 65536");
	assert_true(is_zeroed(&ev));

	/* With a cap that lets it through, the metadata cap refuses it. */
	struct ev_limits lim = {.max_bytes = 16u * 1024 * 1024};
	assert_int_equal(ev_parse(buf, n, &lim, &ev, &err), -1);
	assert_int_equal(err.reason, EV_TOO_LONG);
	assert_non_null(strstr(err.detail, "data.metadata: "));
	assert_true(is_zeroed(&ev));
	free(buf);
}

static void test_metadata_at_cap_is_valid_and_one_over_is_too_long(void **state)
{
	(void)state;
	/* {"blob":"x..."} serialized: 11 bytes of syntax plus the blob. */
	static const char pre[] = MIN_DATA(",\"metadata\":{\"blob\":\"");
	const size_t pre_len = sizeof(pre) - 1 - 2;
	for (size_t blob = EV_METADATA_MAX - 11; blob <= EV_METADATA_MAX - 10; blob++) {
		size_t total = pre_len + blob + 4;
		char *buf = event_with_metadata_blob(total);
		struct meter_event ev;
		struct ev_error err;
		int rc = ev_parse(buf, total, NULL, &ev, &err);
		if (blob == EV_METADATA_MAX - 11) {
			assert_int_equal(rc, 0);
			assert_int_equal(strlen(ev.metadata_json), EV_METADATA_MAX);
		} else {
			assert_int_equal(rc, -1);
			assert_int_equal(err.reason, EV_TOO_LONG);
			assert_string_equal(err.detail,
					    "data.metadata: 4097 bytes serialized, at most 4096");
		}
		ev_clear(&ev);
		free(buf);
	}
}

/* An event whose metadata holds depth nested arrays around a 0. */
static char *nested_metadata(size_t depth, size_t *len)
{
	static const char head[] = MIN_DATA(",\"metadata\":{\"x\":");
	size_t hl = sizeof(head) - 1 - 2; /* without MIN_DATA's closing "}}" */
	size_t n = hl + depth + 1 + depth + 3;
	char *buf = malloc(n);
	assert_non_null(buf);
	memcpy(buf, head, hl);
	memset(buf + hl, '[', depth);
	buf[hl + depth] = '0';
	memset(buf + hl + depth + 1, ']', depth);
	memcpy(buf + n - 3, "}}}", 3);
	*len = n;
	return buf;
}

static void test_deep_nesting_is_refused_without_crashing(void **state)
{
	(void)state;
	struct meter_event ev;
	struct ev_error err;
	size_t len;
	char *ok = nested_metadata(1000, &len);
	assert_int_equal(ev_parse(ok, len, NULL, &ev, &err), 0);
	ev_clear(&ev);
	free(ok);
	char *deep = nested_metadata(30000, &len);
	assert_int_equal(ev_parse(deep, len, NULL, &ev, &err), -1);
	assert_int_equal(err.reason, EV_MALFORMED_JSON);
	free(deep);
}

/* ---- ownership ---------------------------------------------------------- */

static void test_rejection_after_allocations_leaves_event_cleared(void **state)
{
	(void)state;
	struct meter_event ev;
	struct ev_error err;
	/* units and metadata are serialized before the tenant rule fails. */
	char *json = build_event("data.tenant_id", "\"globex\"", NULL, NULL);
	assert_int_equal(ev_parse(json, strlen(json), NULL, &ev, &err), -1);
	assert_int_equal(err.reason, EV_TENANT_MISMATCH);
	assert_true(is_zeroed(&ev));
	free(json);
	/* ...and before the time window. */
	json = build_event("time", "\"2036-03-01T06:00:00Z\"", NULL, NULL);
	assert_int_equal(ev_parse(json, strlen(json), &window_lim, &ev, &err), -1);
	assert_int_equal(err.reason, EV_TIME_IN_FUTURE);
	assert_true(is_zeroed(&ev));
	free(json);
}

static void test_err_may_be_null(void **state)
{
	(void)state;
	struct meter_event ev;
	assert_int_equal(ev_parse("{", 1, NULL, &ev, NULL), -1);
	assert_true(is_zeroed(&ev));
	assert_int_equal(ev_parse(MIN_EVENT, strlen(MIN_EVENT), NULL, &ev, NULL), 0);
	ev_clear(&ev);
}

static void test_ev_clear_null_and_twice_are_safe(void **state)
{
	(void)state;
	struct meter_event ev;
	struct ev_error err;
	ev_clear(NULL);
	assert_int_equal(ev_parse(BASE_EVENT, strlen(BASE_EVENT), NULL, &ev, &err), 0);
	ev_clear(&ev);
	ev_clear(&ev);
	assert_true(is_zeroed(&ev));
}

static void test_reason_names_are_stable(void **state)
{
	(void)state;
	static const char *const want[EV_REASON_COUNT] = {
		"ok", "too_large", "malformed_json", "invalid_utf8", "not_an_object",
		"missing_field", "wrong_type", "negative_value", "out_of_range",
		"integer_overflow", "too_long", "invalid_value", "invalid_time", "too_late",
		"time_in_future", "unsupported_specversion", "tenant_mismatch", "invalid_cost"};
	for (int r = 0; r < EV_REASON_COUNT; r++)
		assert_string_equal(ev_reason_name((enum ev_reason)r), want[r]);
	assert_string_equal(ev_reason_name(EV_REASON_COUNT), "unknown");
	assert_string_equal(ev_reason_name((enum ev_reason)-1), "unknown");
	assert_string_equal(ev_reason_name((enum ev_reason)999), "unknown");
}

/* ---- time --------------------------------------------------------------- */

struct time_case {
	const char *s;
	int ok;
	int64_t us;
};

static void test_rfc3339_parsing(void **state)
{
	(void)state;
	static const struct time_case cases[] = {
		{"1970-01-01T00:00:00Z", 1, 0},
		{"1970-01-01T00:00:00.000001Z", 1, 1},
		{"1969-12-31T23:59:59.999999Z", 1, -1},
		{"2026-03-01T05:59:59.999Z", 1, BASE_TIME_US},
		{"2026-03-01T02:59:59.999-03:00", 1, BASE_TIME_US},
		{"2026-03-01T08:29:59.999+02:30", 1, BASE_TIME_US},
		{"2026-03-01t05:59:59.999z", 1, BASE_TIME_US},
		{"2026-03-01T05:59:59.999+00:00", 1, BASE_TIME_US},
		{"2026-03-01T05:59:59.999-00:00", 1, BASE_TIME_US},
		{"2026-03-01T05:59:59.5Z", 1, 1772344799500000LL},
		{"2026-03-01T05:59:59.999999999Z", 1, 1772344799999999LL},
		{"2026-03-01T05:59:59+23:59", 1, 1772258459000000LL},
		{"2028-02-29T00:00:00Z", 1, 1835395200000000LL},
		{"2000-02-29T00:00:00Z", 1, 951782400000000LL},
		{"0001-01-01T00:00:00Z", 1, -62135596800000000LL},
		{"0001-01-01T00:00:00+00:01", 1, -62135596860000000LL},
		{"9999-12-31T23:59:59.999999Z", 1, 253402300799999999LL},
		{"2026-03-01T06:00:00Z", 1, NOW_US},
		{"2027-02-29T00:00:00Z", 0, 0},
		{"1900-02-29T00:00:00Z", 0, 0},
		{"2026-04-31T00:00:00Z", 0, 0},
		{"2026-13-01T00:00:00Z", 0, 0},
		{"2026-00-10T00:00:00Z", 0, 0},
		{"2026-01-00T00:00:00Z", 0, 0},
		{"0000-12-31T00:00:00Z", 0, 0},
		{"2026-03-01T24:00:00Z", 0, 0},
		{"2026-03-01T23:60:00Z", 0, 0},
		{"2026-03-01T23:59:60Z", 0, 0},
		{"2026-03-01T05:59:59+24:00", 0, 0},
		{"2026-03-01T05:59:59+23:60", 0, 0},
		{"2026-03-01T05:59:59.9999999999Z", 0, 0},
		{"2026-03-01T05:59:59.Z", 0, 0},
		{"2026-03-01 05:59:59Z", 0, 0},
		{"2026-03-01T05:59:59", 0, 0},
		{"2026-03-01T05:59:59+0300", 0, 0},
		{"2026-03-01T05:59:59+03", 0, 0},
		{"2026-03-01T05:59:59+03:00:00", 0, 0},
		{"2026-03-01T05:59:59ZZ", 0, 0},
		{"2026-03-01T05:59:59Z ", 0, 0},
		{" 2026-03-01T05:59:59Z", 0, 0},
		{"+2026-03-01T05:59:59Z", 0, 0},
		{"12026-03-01T05:59:59Z", 0, 0},
		{"2026-3-01T05:59:59Z", 0, 0},
		{"2026-03-01T5:59:59Z", 0, 0},
		{"2026-03-01", 0, 0},
		{"2026/03/01T05:59:59Z", 0, 0},
		{"", 0, 0},
	};
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t us = 42;
		size_t len = strlen(cases[i].s);
		/* Exact-size copy without a NUL: no reading past len. */
		char *buf = malloc(len ? len : 1);
		assert_non_null(buf);
		memcpy(buf, cases[i].s, len);
		int rc = ev_parse_rfc3339(buf, len, &us);
		if (cases[i].ok ? (rc != 0 || us != cases[i].us) : (rc != -1 || us != 42)) {
			print_error("'%s': want %s %lld, got rc=%d %lld\n", cases[i].s,
				    cases[i].ok ? "ok" : "refused", (long long)cases[i].us, rc,
				    (long long)us);
			bad++;
		}
		free(buf);
	}
	assert_int_equal(bad, 0);
}

static void test_rfc3339_stops_at_len(void **state)
{
	(void)state;
	int64_t us;
	static const char s[] = "2026-03-01T06:00:00Z trailing";
	assert_int_equal(ev_parse_rfc3339(s, 20, &us), 0);
	assert_true(us == NOW_US);
	assert_int_equal(ev_parse_rfc3339(s, 19, &us), -1);
	assert_int_equal(ev_parse_rfc3339("2026-03-01T06:00:00Z\0", 21, &us), -1);
	assert_int_equal(ev_parse_rfc3339(NULL, 20, &us), -1);
}

struct format_case {
	int64_t us;
	const char *s;
};

static void test_format_time(void **state)
{
	(void)state;
	static const struct format_case cases[] = {
		{0, "1970-01-01T00:00:00.000000Z"},
		{1, "1970-01-01T00:00:00.000001Z"},
		{-1, "1969-12-31T23:59:59.999999Z"},
		{-DAY_US, "1969-12-31T00:00:00.000000Z"},
		{-DAY_US - 1, "1969-12-30T23:59:59.999999Z"},
		{BASE_TIME_US, "2026-03-01T05:59:59.999000Z"},
		{951782400000000LL, "2000-02-29T00:00:00.000000Z"},
		{1835395200000000LL, "2028-02-29T00:00:00.000000Z"},
		{-62135596800000000LL, "0001-01-01T00:00:00.000000Z"},
		{253402300799999999LL, "9999-12-31T23:59:59.999999Z"},
		{-2208988800000000LL, "1900-01-01T00:00:00.000000Z"},
	};
	char out[28];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ev_format_time(cases[i].us, out, sizeof(out));
		assert_string_equal(out, cases[i].s);
	}
	/* Extremes do not crash and stay terminated; short buffers truncate. */
	ev_format_time(INT64_MIN, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	ev_format_time(INT64_MAX, out, sizeof(out));
	assert_true(strlen(out) < sizeof(out));
	char small[5];
	ev_format_time(0, small, sizeof(small));
	assert_string_equal(small, "1970");
	ev_format_time(0, NULL, 0);
}

/* The hand-written calendar agrees with the C library's gmtime_r, and format
 * then parse gives back the same instant, for every year 0001-9999. */
static void test_calendar_agrees_with_gmtime_and_round_trips(void **state)
{
	(void)state;
	const int64_t first = -62135596800000000LL, last = 253402300799999999LL;
	/* A step that is not a whole number of days walks through all hours. */
	const int64_t step = 17 * DAY_US + 3723000123LL;
	int bad = 0;
	for (int64_t us = first; us <= last && bad < 5; us += step) {
		char s[28];
		int64_t back;
		ev_format_time(us, s, sizeof(s));
		if (ev_parse_rfc3339(s, strlen(s), &back) != 0 || back != us) {
			print_error("%lld -> %s -> %lld\n", (long long)us, s, (long long)back);
			bad++;
		}
		time_t t = (time_t)(us >= 0 ? us / 1000000 : -((-us + 999999) / 1000000));
		struct tm tm;
		char want[80];
		if (!gmtime_r(&t, &tm))
			continue;
		snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		if (strncmp(s, want, 19) != 0) {
			print_error("%lld: ours %s, gmtime %s\n", (long long)us, s, want);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- the fast path ------------------------------------------------------ */

/* The shapes services send go through the fast path (event_fast.c), and it
 * gives the full parser's event. */
static void test_fast_path_takes_common_events(void **state)
{
	static const char *const events[] = {
		MIN_EVENT,
		" \r\n\t" MIN_EVENT "\n",
		/* the shape of make bench's events */
		"{\"specversion\":\"1.0\",\"id\":\"b-1\",\"source\":\"//bench/gw\","
		"\"type\":\"com.example.llm.usage\",\"time\":\"2026-03-01T05:59:59.123456Z\","
		"\"subject\":\"t00042\",\"data\":{\"tenant_id\":\"t00042\",\"user_id\":\"u-3\","
		"\"api_key_id\":\"k-1\",\"provider\":\"openai\",\"model\":\"gpt-4o\","
		"\"operation\":\"chat\",\"input_tokens\":1200,\"cache_read_input_tokens\":100,"
		"\"output_tokens\":300,\"requests\":1,\"cost\":\"0.000420\",\"endpoint\":\"/v1/chat\","
		"\"method\":\"POST\",\"status_code\":200,\"latency_ms\":843}}",
		MIN_DATA(",\"units\":{\"video_seconds\":30,\"images\":2,\"a_1\":0}"),
		MIN_DATA(",\"units\":{},\"cost\":3"),
		MIN_DATA(",\"units\":null,\"cost\":null,\"metadata\":null,\"user_id\":null"),
		MIN_DATA(",\"metadata\":{}"),
		MIN_DATA(",\"metadata\":{\"z\":{\"b\":[2,{\"y\":1,\"x\":null}],\"a\":true},"
			 "\"r\":[0.7,1e300,1E+5,-0.0,1.5e-7,123456789012345678.0,0.1e1,2.5e-300],"
			 "\"s\":\"caf\xc3\xa9 \x7f\",\"i\":-42,\"\":0}"),
		MIN_DATA(",\"requests\":0,\"input_tokens\":1000000000000,"
			 "\"cache_read_input_tokens\":1000000000000"),
		MIN_HEAD ",\"data\":{\"tenant_id\":\"acme\",\"operation\":\"chat\"}}",
		MIN_HEAD ",\"subject\":\"acme\",\"data\":{\"tenant_id\":\"acme\",\"operation\":\"chat\"}}",
		MIN_HEAD ",\"subject\":\"acme\",\"x\":{\"a\":[1,-2,3.5e-3,true,false,null,"
			 "{\"b\":\"\xc3\xa9\"}],\"c\":-9223372036854775808,\"d\":[]},"
			 "\"data\":{\"operation\":\"chat\",\"extra\":1e300,"
			 "\"endpoint\":\"/v1/\xc3\xa9/\xe2\x9c\x93/\xf0\x9d\x84\x9e\"}}",
	};
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		struct meter_event ev;
		if (ev_parse_fast(events[i], strlen(events[i]), NULL, &ev) != 0) {
			print_error("events[%zu]: declined by the fast path\n", i);
			bad++;
		}
		ev_clear(&ev);
		char name[32];
		snprintf(name, sizeof(name), "events[%zu]", i);
		bad += check_fast_path(name, events[i], strlen(events[i]), NULL);
	}
	assert_int_equal(bad, 0);
}

/* What the fast path does not handle, it leaves to the full parser, which
 * gives the usual outcome. */
static void test_fast_path_declines_to_the_full_parser(void **state)
{
	static const struct {
		const char *bytes;
		enum ev_reason want;
		const char *path; /* the detail names it; NULL: "event" */
	} cases[] = {
		{MIN_DATA(",\"endpoint\":\"/v1\\/chat\""), EV_OK, NULL}, /* an escape */
		{MIN_DATA(",\"metadata\":{\"a\":\"\\u00e9\"}"), EV_OK, NULL},
		{MIN_DATA(",\"x\":-0"), EV_OK, NULL},
		{MIN_DATA(",\"x\":[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]"), EV_OK, NULL},
		{MIN_DATA(",\"x\":1e400"), EV_OUT_OF_RANGE, NULL},
		{MIN_DATA(",\"x\":9223372036854775808"), EV_INTEGER_OVERFLOW, NULL},
		{MIN_DATA(",\"x\":{\"a\":1,\"a\":2}"), EV_MALFORMED_JSON, NULL},
		{MIN_DATA(",\"units\":{\"a\":1,\"a\":2}"), EV_MALFORMED_JSON, NULL},
		{MIN_DATA(",\"endpoint\":\"\xc0\x80\""), EV_INVALID_UTF8, NULL},
		{MIN_DATA(",\"endpoint\":\"\xed\xa0\x80\""), EV_INVALID_UTF8, NULL},
		{MIN_DATA(",\"endpoint\":\"\xf4\x90\x80\x80\""), EV_INVALID_UTF8, NULL},
		{MIN_DATA(",\"input_tokens\":1.0"), EV_WRONG_TYPE, "data.input_tokens"},
		{MIN_DATA(",\"input_tokens\":-1"), EV_NEGATIVE_VALUE, "data.input_tokens"},
		{MIN_DATA(",\"cost\":0.5"), EV_INVALID_COST, "data.cost"},
		{MIN_EVENT " x", EV_MALFORMED_JSON, NULL},
	};
	(void)state;
	int bad = 0;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct meter_event ev;
		struct ev_error err;
		char name[32];
		snprintf(name, sizeof(name), "cases[%zu]", i);
		if (ev_parse_fast(cases[i].bytes, strlen(cases[i].bytes), NULL, &ev) != 1 ||
		    !is_zeroed(&ev)) {
			print_error("%s: not declined by the fast path\n", name);
			bad++;
		}
		int rc = ev_parse(cases[i].bytes, strlen(cases[i].bytes), NULL, &ev, &err);
		bad += check_outcome(name, cases[i].path, rc, cases[i].want, &ev, &err);
		ev_clear(&ev);
	}

	/* More members in one object than it checks for duplicates. */
	char many[2048] = MIN_HEAD ",\"subject\":\"acme\",\"data\":{\"operation\":\"chat\"";
	for (int k = 0; k < 60; k++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), ",\"f%d\":%d", k, k);
	strcat(many, "}}");
	struct meter_event ev;
	struct ev_error err;
	assert_int_equal(ev_parse_fast(many, strlen(many), NULL, &ev), 1);
	assert_int_equal(ev_parse(many, strlen(many), NULL, &ev, &err), 0);
	ev_clear(&ev);
	assert_int_equal(bad, 0);
}

/* The tables above ran every row through both paths; most valid rows must
 * have been taken by the fast path, or it is dead code. */
static void test_fast_path_took_table_rows(void **state)
{
	(void)state;
	assert_true(fast_accepted >= 20);
}

/* A rejected event's own tenant and id, only when valid identifiers. */
static void test_reject_ids(void **state)
{
	(void)state;
	static const struct {
		const char *payload, *tenant, *id;
	} cases[] = {
		{"{\"id\":\"e-1\",\"subject\":\"acme\",\"data\":{\"tenant_id\":\"evil\"}}", "acme",
		 "e-1"},
		{"{\"id\":\"e-2\",\"data\":{\"tenant_id\":\"beta\"}}", "beta", "e-2"},
		{"{\"id\":\"e 3\",\"subject\":\"ac me\",\"data\":{\"tenant_id\":\"gamma\"}}", "gamma",
		 ""},
		{"{\"id\":7,\"subject\":[\"acme\"],\"data\":\"x\"}", "", ""},
		{"{\"id\":\"\",\"subject\":\"\"}", "", ""},
		{"[{\"id\":\"e-4\"}]", "", ""},
		{"not json {\"id\":\"e-5\"}", "", ""},
		{"{\"id\":\"e-6\",\"id\":\"e-7\",\"subject\":\"acme\"}", "", ""},
		{"", "", ""},
	};
	char tenant[EV_ID_MAX + 1], id[EV_ID_MAX + 1];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ev_reject_ids(cases[i].payload, strlen(cases[i].payload), 0, tenant, id);
		assert_string_equal(tenant, cases[i].tenant);
		assert_string_equal(id, cases[i].id);
	}
	/* 129 bytes is one too many for an identifier. */
	char doc[256];
	snprintf(doc, sizeof(doc), "{\"id\":\"%0129d\",\"subject\":\"acme\"}", 0);
	ev_reject_ids(doc, strlen(doc), 0, tenant, id);
	assert_string_equal(tenant, "acme");
	assert_string_equal(id, "");
	/* Nothing from a payload over the cap. */
	snprintf(doc, sizeof(doc), "{\"id\":\"e-8\",\"subject\":\"acme\"}");
	ev_reject_ids(doc, strlen(doc), 10, tenant, id);
	assert_string_equal(tenant, "");
	assert_string_equal(id, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutation_table),
		cmocka_unit_test(test_raw_payload_table),
		cmocka_unit_test(test_every_reason_has_a_table_case),
		cmocka_unit_test(test_full_event_fills_every_field),
		cmocka_unit_test(test_absent_optional_fields_take_defaults),
		cmocka_unit_test(test_tenant_id_alone_sets_tenant),
		cmocka_unit_test(test_empty_units_and_metadata_are_stored_as_null),
		cmocka_unit_test(test_units_json_is_compact_and_sorted),
		cmocka_unit_test(test_cost_amounts),
		cmocka_unit_test(test_details_say_what_is_wrong),
		cmocka_unit_test(test_detail_escapes_and_truncates_the_value),
		cmocka_unit_test(test_ten_megabytes_are_too_large_before_parsing),
		cmocka_unit_test(test_metadata_at_cap_is_valid_and_one_over_is_too_long),
		cmocka_unit_test(test_deep_nesting_is_refused_without_crashing),
		cmocka_unit_test(test_rejection_after_allocations_leaves_event_cleared),
		cmocka_unit_test(test_err_may_be_null),
		cmocka_unit_test(test_ev_clear_null_and_twice_are_safe),
		cmocka_unit_test(test_reason_names_are_stable),
		cmocka_unit_test(test_rfc3339_parsing),
		cmocka_unit_test(test_rfc3339_stops_at_len),
		cmocka_unit_test(test_format_time),
		cmocka_unit_test(test_calendar_agrees_with_gmtime_and_round_trips),
		cmocka_unit_test(test_fast_path_takes_common_events),
		cmocka_unit_test(test_fast_path_declines_to_the_full_parser),
		cmocka_unit_test(test_fast_path_took_table_rows),
		cmocka_unit_test(test_reject_ids),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
