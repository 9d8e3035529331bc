/* fuzz_emit.c - libFuzzer harness for libmeter's event validation against
 * the worker's: libmeter copies the worker's rules (it ships alone), so the
 * two can drift. Whatever a service hands to meter_emit() is outside input.
 *
 * The input fills a meter_event_t: the first 72 bytes give nine 64-bit
 * numbers (time, token counts, requests, latency, status, flags, a unit
 * quantity), the rest is split at NUL bytes into the string fields (id,
 * source, type, tenant, user, key, provider, model, operation, cost,
 * endpoint, method, workflow, execution, metadata JSON, two unit names).
 * Checked: an event meter__event_validate() accepts is built
 * (meter__event_build), and the worker's parser (schema/event.c ev_parse)
 * accepts the JSON and reads back the same tenant, counts, requests, cost
 * and time. (The reverse need not hold: libmeter may be stricter.)
 * Built and run by tests/fuzz/run.sh (sources in fuzz_emit.srcs).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "meter_int.h"
#include "num.h"

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define NOW_US 1795000000123456LL

static int64_t fixed_clock(void *opaque)
{
	(void)opaque;
	return NOW_US;
}

/* A number biased to plausible values: odd raw values are taken modulo a
 * range that covers the limits on both sides, even ones as they are. */
static int64_t num(const uint8_t *p, int64_t range)
{
	uint64_t v;
	memcpy(&v, p, 8);
	if (v & 1)
		return (int64_t)((v >> 1) % (uint64_t)range);
	return (int64_t)(v >> 1) * ((v >> 2) & 1 ? -1 : 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 72)
		return 0;
	meter_event_t ev;
	meter_unit_t units[2];
	memset(&ev, 0, sizeof(ev));
	ev.time_us = num(data, 400000000000000000LL);
	ev.input_tokens = num(data + 8, 2000000000002LL);
	ev.output_tokens = num(data + 16, 2000000000002LL);
	ev.cache_read_input_tokens = num(data + 24, 2000000000002LL);
	ev.reasoning_output_tokens = num(data + 32, 2000000000002LL);
	ev.requests = num(data + 40, 2000002);
	ev.latency_ms = num(data + 48, 172800002);
	ev.status_code = (int)num(data + 56, 700);
	ev.no_request = data[64] & 1;
	units[0].quantity = num(data + 64, 2000000000002LL);
	units[1].quantity = units[0].quantity / 3;

	size_t rest = size - 72;
	char *s = malloc(rest + 1);
	if (!s)
		return 0;
	memcpy(s, data + 72, rest);
	s[rest] = '\0';
	const char *f[17] = {0};
	size_t nf = 0;
	for (char *p = s; p <= s + rest && nf < 17; p += strlen(p) + 1)
		f[nf++] = p;
	ev.id = f[0];
	ev.source = f[1];
	ev.type = f[2];
	ev.tenant_id = f[3];
	ev.user_id = f[4];
	ev.api_key_id = f[5];
	ev.provider = f[6];
	ev.model = f[7];
	ev.operation = f[8];
	ev.cost = f[9];
	ev.endpoint = f[10];
	ev.method = f[11];
	ev.workflow_id = f[12];
	ev.execution_id = f[13];
	ev.metadata_json = f[14];
	units[0].name = f[15];
	units[1].name = f[16];
	ev.units = units;
	ev.units_count = f[16] ? 2 : f[15] ? 1 : 0;

	char err[256];
	if (meter__event_validate(&ev, err, sizeof(err)) != METER_OK) {
		CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
		free(s);
		return 0;
	}
	meter_t *m = calloc(1, sizeof(*m));
	if (!m) {
		free(s);
		return 0;
	}
	m->clock = fixed_clock;
	m->source = "//fuzz/libmeter";
	json_t *j = NULL;
	char idbuf[40];
	const char *id = ev.id && *ev.id ? ev.id : (meter__uuid4(data, idbuf), idbuf);
	int rc = meter__event_build(m, &ev, id, &j, err, sizeof(err));
	if (rc == METER_OK) {
		char *text = json_dumps(j, JSON_COMPACT);
		CHECK(text != NULL);
		struct meter_event w;
		struct ev_error e;
		struct ev_limits lim = {.max_bytes = 65536};
		int prc = ev_parse(text, strlen(text), &lim, &w, &e);
		if (prc != 0)
			fprintf(stderr, "libmeter accepted, the worker refused (%s: %s):\n%s\n",
				ev_reason_name(e.reason), e.detail, text);
		CHECK(prc == 0);
		CHECK(!strcmp(w.tenant_id, ev.tenant_id));
		CHECK(!strcmp(w.id, id));
		CHECK(!strcmp(w.operation, ev.operation));
		CHECK(w.input_tokens == ev.input_tokens && w.output_tokens == ev.output_tokens);
		CHECK(w.cached_input_tokens == ev.cache_read_input_tokens);
		CHECK(w.reasoning_tokens == ev.reasoning_output_tokens);
		CHECK(w.requests == (ev.no_request ? 0 : ev.requests ? ev.requests : 1));
		CHECK(w.time_us == (ev.time_us ? ev.time_us : NOW_US) / 1000 * 1000 ||
		      w.time_us == (ev.time_us ? ev.time_us : NOW_US));
		if (ev.cost && *ev.cost) {
			int64_t pusd = -1;
			CHECK(w.has_cost);
			CHECK(num_parse_usd_pico(ev.cost, strlen(ev.cost), INT64_MAX, &pusd) == 0);
			CHECK(w.cost_pusd == pusd);
		} else {
			CHECK(!w.has_cost);
		}
		ev_clear(&w);
		free(text);
		json_decref(j);
	} else {
		/* Only an unusable metadata document (or memory) may fail here. */
		CHECK(rc == METER_ERR_INVALID || rc == METER_ERR_NOMEM);
		CHECK(ev.metadata_json && *ev.metadata_json);
	}
	free(m);
	free(s);
	return 0;
}
