/* fuzz_event.c - libFuzzer harness for the usage event parser.
 *
 * Feeds every input to ev_parse() with three limit sets and to
 * ev_parse_rfc3339(), and checks what the contract in event.h promises:
 * no crash or leak on any bytes; an accepted event has every field within its
 * cap and its owned JSON reparses; a rejection has a known reason, a
 * printable detail and a cleared event; the time window only ever adds
 * EV_TOO_LATE / EV_TIME_IN_FUTURE to an otherwise identical outcome; and a
 * parsed time formats and parses back to the same instant. It also compares
 * the two paths inside ev_parse(): whatever the fast path accepts, the full
 * (jansson) parser accepts with an equal event.
 * Built and run by tests/fuzz/run.sh (sources in fuzz_event.srcs).
 */
#include "event.h"
#include "event_int.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define DAY_US 86400000000LL
#define NOW_US 1772344800000000LL /* 2026-03-01T06:00:00Z */

/* s holds a NUL within its array of cap + 1 bytes; nonempty when required. */
static void check_str(const char *s, size_t cap, int required)
{
	CHECK(memchr(s, '\0', cap + 1) != NULL);
	if (required)
		CHECK(s[0] != '\0');
}

static int is_zeroed(const struct meter_event *ev)
{
	static const struct meter_event zero;
	return memcmp(ev, &zero, sizeof(zero)) == 0;
}

static void check_json_object(const char *s, size_t max_len, size_t max_entries)
{
	json_error_t jerr;
	CHECK(strlen(s) <= max_len);
	json_t *j = json_loads(s, JSON_REJECT_DUPLICATES, &jerr);
	CHECK(j != NULL);
	CHECK(json_is_object(j));
	CHECK(json_object_size(j) > 0 && json_object_size(j) <= max_entries);
	json_decref(j);
}

static void check_time_round_trip(int64_t us)
{
	char s[32];
	int64_t back;
	ev_format_time(us, s, sizeof(s));
	/* Offsets can move a 0001 or 9999 date out of the printable range. */
	if (ev_parse_rfc3339(s, strlen(s), &back) == 0)
		CHECK(back == us);
	else
		CHECK(us < -62135596800000000LL || us > 253402300799999999LL);
}

static void check_accepted(const struct meter_event *ev)
{
	check_str(ev->id, EV_ID_MAX, 1);
	check_str(ev->source, EV_SOURCE_MAX, 1);
	check_str(ev->type, EV_TYPE_MAX, 1);
	check_str(ev->tenant_id, EV_ID_MAX, 1);
	check_str(ev->user_id, EV_ID_MAX, 0);
	check_str(ev->api_key_id, EV_ID_MAX, 0);
	check_str(ev->provider, EV_NAME_MAX, 0);
	check_str(ev->model, EV_MODEL_MAX, 0);
	check_str(ev->operation, EV_NAME_MAX, 1);
	check_str(ev->endpoint, EV_ENDPOINT_MAX, 0);
	check_str(ev->method, EV_METHOD_MAX, 0);
	check_str(ev->workflow_id, EV_ID_MAX, 0);
	check_str(ev->execution_id, EV_ID_MAX, 0);
	CHECK(strchr(ev->id, '/') == NULL && strchr(ev->tenant_id, '/') == NULL);
	CHECK(ev->input_tokens >= 0 && ev->input_tokens <= EV_TOKENS_MAX);
	CHECK(ev->output_tokens >= 0 && ev->output_tokens <= EV_TOKENS_MAX);
	CHECK(ev->cached_input_tokens >= 0 && ev->cached_input_tokens <= EV_TOKENS_MAX);
	CHECK(ev->reasoning_tokens >= 0 && ev->reasoning_tokens <= EV_TOKENS_MAX);
	CHECK(ev->requests >= 0 && ev->requests <= EV_REQUESTS_MAX);
	CHECK(ev->status_code == -1 || (ev->status_code >= 100 && ev->status_code <= 599));
	CHECK(ev->latency_ms >= -1 && ev->latency_ms <= 86400000);
	CHECK(ev->has_cost == 0 || ev->has_cost == 1);
	CHECK(ev->cost_pusd >= 0 && ev->cost_pusd <= EV_COST_MAX_PUSD);
	CHECK(ev->has_cost || ev->cost_pusd == 0);
	if (ev->units_json)
		check_json_object(ev->units_json, (size_t)-1, EV_UNITS_MAX);
	if (ev->metadata_json)
		check_json_object(ev->metadata_json, EV_METADATA_MAX, (size_t)-1);
	check_time_round_trip(ev->time_us);
}

static void check_rejected(int rc, const struct meter_event *ev, const struct ev_error *err)
{
	CHECK(rc == -1);
	CHECK(err->reason > EV_OK && err->reason < EV_REASON_COUNT);
	CHECK(is_zeroed(ev));
	size_t n = strnlen(err->detail, sizeof(err->detail));
	CHECK(n > 0 && n < sizeof(err->detail));
	for (size_t i = 0; i < n; i++)
		CHECK(err->detail[i] >= 0x20 && err->detail[i] < 0x7f);
}

/* The fast path agrees with the full parser on what it accepts. */
static void check_paths_agree(const uint8_t *data, size_t size, const struct ev_limits *lim)
{
	struct meter_event fast, full;
	struct ev_error err;
	if (size == 0 || size > 65536)
		return;
	if (ev_parse_fast((const char *)data, size, lim, &fast) == 0) {
		CHECK(ev_parse_full(data, size, lim, &full, &err) == 0);
		CHECK(ev_equal(&fast, &full));
		ev_clear(&full);
	} else {
		CHECK(is_zeroed(&fast));
	}
	ev_clear(&fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct ev_limits window = {
		.now_us = NOW_US, .max_lateness_us = 35 * DAY_US, .max_future_us = 300000000LL};
	static const struct ev_limits tiny = {.max_bytes = 64};
	struct meter_event ev;
	struct ev_error err;
	int64_t us;

	/* Defaults, no window. */
	int rc = ev_parse(data, size, NULL, &ev, &err);
	enum ev_reason plain = err.reason;
	if (rc == 0) {
		CHECK(err.reason == EV_OK);
		check_accepted(&ev);
	} else {
		check_rejected(rc, &ev, &err);
	}
	ev_clear(&ev);

	/* The window is checked last: same outcome, or a window reason. */
	rc = ev_parse(data, size, &window, &ev, &err);
	if (plain != EV_OK)
		CHECK(rc == -1 && err.reason == plain);
	else if (rc != 0)
		CHECK(err.reason == EV_TOO_LATE || err.reason == EV_TIME_IN_FUTURE);
	if (rc != 0)
		check_rejected(rc, &ev, &err);
	ev_clear(&ev);

	/* A small cap refuses before parsing. */
	rc = ev_parse(data, size, &tiny, &ev, &err);
	if (size > tiny.max_bytes)
		CHECK(rc == -1 && err.reason == EV_TOO_LARGE);
	else
		CHECK(err.reason == plain);
	ev_clear(&ev);

	check_paths_agree(data, size, NULL);
	check_paths_agree(data, size, &window);

	/* A reject's own tenant and id: identifiers or nothing, whatever the bytes. */
	char tenant[EV_ID_MAX + 1], id[EV_ID_MAX + 1];
	ev_reject_ids(data, size, 0, tenant, id);
	for (const char *f = tenant; f; f = f == tenant ? id : NULL)
		for (const char *p = f; *p; p++)
			CHECK(strchr("._~:@+=-", *p) || (*p >= 'a' && *p <= 'z') ||
			      (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9'));

	/* The time parser on its own, without a NUL terminator. */
	if (ev_parse_rfc3339((const char *)data, size, &us) == 0)
		check_time_round_trip(us);
	return 0;
}
