/* event.c - the usage event: validation against the worker's rules, and
 * building the CloudEvents JSON.
 *
 * The checks mirror the worker's validator (schema/event.c, the README's
 * event section) for everything that does not depend on its configuration
 * (the lateness window does), so that an event the worker would reject is
 * refused here, where the caller can still log it. Copied rules, not shared
 * code: libmeter ships alone.
 */
#include "meter_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKENS_MAX 1000000000000LL
#define REQUESTS_MAX 1000000LL
#define UNITS_MAX 16
#define UNIT_NAME_MAX 32
#define UNIT_QTY_MAX 1000000000000LL
#define LATENCY_MS_MAX 86400000LL
#define SOURCE_MAX 256
#define TYPE_MAX 128
#define NAME_MAX_LEN 64
#define MODEL_MAX 128
#define ENDPOINT_MAX 512
#define METHOD_MAX 16
#define METADATA_MAX 4096
#define COST_MAX_USD 1000000LL
#define TIME_MAX_US 253402300799999999LL /* 9999-12-31T23:59:59.999999Z */

/* ---- validation ------------------------------------------------------------------- */

enum charset { CS_ID, CS_NAME, CS_MODEL, CS_UNIT, CS_METHOD, CS_TEXT };

static const char *const charset_desc[] = {
	[CS_ID] = "A-Z a-z 0-9 . _ ~ : @ + = -", [CS_NAME] = "a-z 0-9 _ . -",
	[CS_MODEL] = "A-Z a-z 0-9 . _ : @ + / -", [CS_UNIT] = "a-z 0-9 _",
	[CS_METHOD] = "A-Z a-z", [CS_TEXT] = "UTF-8 without control characters",
};

static int allowed(enum charset cs, unsigned char c)
{
	int lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';

	switch (cs) {
	case CS_ID: return lower || upper || digit || (c && strchr("._~:@+=-", c));
	case CS_NAME: return lower || digit || (c && strchr("_.-", c));
	case CS_MODEL: return lower || upper || digit || (c && strchr("._:@+/-", c));
	case CS_UNIT: return lower || digit || c == '_';
	case CS_METHOD: return lower || upper;
	case CS_TEXT: return c >= 0x20 && c != 0x7f;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* s (may be NULL or "" when !required) against 1..max bytes of cs. */
static int check_str(const char *field, const char *s, int required, size_t max,
		     enum charset cs, char *errstr, size_t errstr_size)
{
	size_t len;

	if (!s || !*s) {
		if (required)
			return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
					   "%s: required", field);
		return METER_OK;
	}
	len = strlen(s);
	if (len > max)
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "%s: %zu bytes, at most %zu", field, len, max);
	for (size_t i = 0; i < len;) {
		unsigned char c = (unsigned char)s[i];
		size_t step = 1;
		if (cs == CS_TEXT && c >= 0x80)
			step = utf8_seq((const unsigned char *)s + i, len - i);
		else if (!allowed(cs, c))
			step = 0;
		if (step == 0)
			return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
					   "%s: byte 0x%02x at offset %zu is not allowed (%s)",
					   field, c, i, charset_desc[cs]);
		i += step;
	}
	return METER_OK;
}

static int check_range(const char *field, int64_t v, int64_t min, int64_t max, char *errstr,
		       size_t errstr_size)
{
	if (v < min || v > max)
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "%s: %lld is outside %lld..%lld", field, (long long)v,
				   (long long)min, (long long)max);
	return METER_OK;
}

/* A decimal USD amount: 1+ digits, optionally '.' and 1..12 digits, at most
 * COST_MAX_USD. */
static int check_cost(const char *s, char *errstr, size_t errstr_size)
{
	size_t whole = strspn(s, "0123456789"), frac = 0;
	const char *p = s + whole;
	long long w = 0;

	if (*p == '.') {
		frac = strspn(p + 1, "0123456789");
		p += 1 + frac;
	}
	if (*p != '\0' || whole == 0 || (s[whole] == '.' && frac == 0) || frac > 12)
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "data.cost: \"%.40s\" is not a decimal USD amount such as "
				   "\"0.0042\" (at most 12 decimals)",
				   s);
	for (size_t i = 0; i < whole && w <= COST_MAX_USD; i++)
		w = w * 10 + (s[i] - '0');
	/* Over the cap: more whole dollars, or the cap and a non-zero fraction. */
	if (w > COST_MAX_USD ||
	    (w == COST_MAX_USD && frac > 0 && strspn(s + whole + 1, "0") != frac))
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "data.cost: more than %lld USD", COST_MAX_USD);
	return METER_OK;
}

int meter__check_id(const char *field, const char *s, char *errstr, size_t errstr_size)
{
	return check_str(field, s, 1, METER_ID_MAX, CS_ID, errstr, errstr_size);
}

int meter__event_validate(const meter_event_t *ev, char *errstr, size_t es)
{
	int rc;

	if ((rc = check_str("id", ev->id, 0, METER_ID_MAX, CS_ID, errstr, es)) ||
	    (rc = check_str("source", ev->source, 0, SOURCE_MAX, CS_TEXT, errstr, es)) ||
	    (rc = check_str("type", ev->type, 0, TYPE_MAX, CS_TEXT, errstr, es)) ||
	    (rc = check_range("time", ev->time_us, 0, TIME_MAX_US, errstr, es)) ||
	    (rc = check_str("data.tenant_id", ev->tenant_id, 1, METER_ID_MAX, CS_ID, errstr, es)) ||
	    (rc = check_str("data.user_id", ev->user_id, 0, METER_ID_MAX, CS_ID, errstr, es)) ||
	    (rc = check_str("data.api_key_id", ev->api_key_id, 0, METER_ID_MAX, CS_ID, errstr,
			    es)) ||
	    (rc = check_str("data.provider", ev->provider, 0, NAME_MAX_LEN, CS_NAME, errstr, es)) ||
	    (rc = check_str("data.model", ev->model, 0, MODEL_MAX, CS_MODEL, errstr, es)) ||
	    (rc = check_str("data.operation", ev->operation, 1, NAME_MAX_LEN, CS_NAME, errstr,
			    es)) ||
	    (rc = check_range("data.input_tokens", ev->input_tokens, 0, TOKENS_MAX, errstr, es)) ||
	    (rc = check_range("data.output_tokens", ev->output_tokens, 0, TOKENS_MAX, errstr,
			      es)) ||
	    (rc = check_range("data.cache_read_input_tokens", ev->cache_read_input_tokens, 0,
			      ev->input_tokens, errstr, es)) ||
	    (rc = check_range("data.reasoning_output_tokens", ev->reasoning_output_tokens, 0,
			      ev->output_tokens, errstr, es)) ||
	    (rc = check_range("data.requests", ev->requests, 0, ev->no_request ? 0 : REQUESTS_MAX,
			      errstr, es)) ||
	    (rc = check_str("data.endpoint", ev->endpoint, 0, ENDPOINT_MAX, CS_TEXT, errstr, es)) ||
	    (rc = check_str("data.method", ev->method, 0, METHOD_MAX, CS_METHOD, errstr, es)) ||
	    (ev->status_code &&
	     (rc = check_range("data.status_code", ev->status_code, 100, 599, errstr, es))) ||
	    (rc = check_range("data.latency_ms", ev->latency_ms, 0, LATENCY_MS_MAX, errstr, es)) ||
	    (rc = check_str("data.workflow_id", ev->workflow_id, 0, METER_ID_MAX, CS_ID, errstr,
			    es)) ||
	    (rc = check_str("data.execution_id", ev->execution_id, 0, METER_ID_MAX, CS_ID, errstr,
			    es)) ||
	    (ev->cost && *ev->cost && (rc = check_cost(ev->cost, errstr, es))))
		return rc;
	if (ev->units_count > UNITS_MAX || (ev->units_count && !ev->units))
		return meter__fail(errstr, es, METER_ERR_INVALID, "data.units: %zu entries, at most %d",
				   ev->units_count, UNITS_MAX);
	for (size_t i = 0; i < ev->units_count; i++) {
		const meter_unit_t *u = &ev->units[i];
		if ((rc = check_str("data.units name", u->name, 1, UNIT_NAME_MAX, CS_UNIT, errstr,
				    es)) ||
		    (rc = check_range("data.units quantity", u->quantity, 0, UNIT_QTY_MAX, errstr,
				      es)))
			return rc;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(ev->units[j].name, u->name))
				return meter__fail(errstr, es, METER_ERR_INVALID,
						   "data.units: \"%s\" given twice", u->name);
	}
	return METER_OK;
}

/* ---- building ---------------------------------------------------------------------- */

void meter__uuid4(const unsigned char b[16], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (int i = 0; i < 16; i++) {
		unsigned char c = b[i];
		if (i == 6)
			c = (c & 0x0f) | 0x40; /* version 4 */
		if (i == 8)
			c = (c & 0x3f) | 0x80; /* RFC 4122 variant */
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[c >> 4];
		out[o++] = hex[c & 15];
	}
	out[o] = '\0';
}

static void set_str(json_t *obj, const char *k, const char *v, int *bad)
{
	if (v && *v && json_object_set_new(obj, k, json_string(v)) != 0)
		*bad = 1;
}

static void set_int(json_t *obj, const char *k, int64_t v, int *bad)
{
	if (json_object_set_new(obj, k, json_integer((json_int_t)v)) != 0)
		*bad = 1;
}

int meter__event_build(meter_t *m, const meter_event_t *ev, const char *id, json_t **out,
		       char *errstr, size_t es)
{
	json_t *root = json_object(), *data = json_object(), *units = NULL, *meta = NULL;
	char t[32];
	int bad = !root || !data;
	int64_t requests = ev->no_request ? 0 : ev->requests ? ev->requests : 1;

	if (ev->metadata_json && *ev->metadata_json) {
		json_error_t jerr;
		meta = json_loads(ev->metadata_json, JSON_REJECT_DUPLICATES, &jerr);
		if (!meta || !json_is_object(meta)) {
			json_decref(meta);
			json_decref(root);
			json_decref(data);
			return meter__fail(errstr, es, METER_ERR_INVALID,
					   "data.metadata: not a JSON object (%s)",
					   meta ? "another type" : jerr.text);
		}
		size_t need = json_dumpb(meta, NULL, 0,
					 JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15));
		if (need > METADATA_MAX) {
			json_decref(meta);
			json_decref(root);
			json_decref(data);
			return meter__fail(errstr, es, METER_ERR_INVALID,
					   "data.metadata: %zu bytes, at most %d", need,
					   METADATA_MAX);
		}
	}
	meter__format_time(ev->time_us ? ev->time_us : meter__now_us(m), t, sizeof(t));
	set_str(root, "specversion", "1.0", &bad);
	set_str(root, "id", id, &bad);
	set_str(root, "source", ev->source && *ev->source ? ev->source : m->source, &bad);
	set_str(root, "type", ev->type && *ev->type ? ev->type : METER_DEFAULT_TYPE, &bad);
	set_str(root, "time", t, &bad);
	set_str(root, "subject", ev->tenant_id, &bad);
	set_str(data, "tenant_id", ev->tenant_id, &bad);
	set_str(data, "user_id", ev->user_id, &bad);
	set_str(data, "api_key_id", ev->api_key_id, &bad);
	set_str(data, "provider", ev->provider, &bad);
	set_str(data, "model", ev->model, &bad);
	set_str(data, "operation", ev->operation, &bad);
	set_int(data, "input_tokens", ev->input_tokens, &bad);
	set_int(data, "output_tokens", ev->output_tokens, &bad);
	set_int(data, "cache_read_input_tokens", ev->cache_read_input_tokens, &bad);
	set_int(data, "reasoning_output_tokens", ev->reasoning_output_tokens, &bad);
	set_int(data, "requests", requests, &bad);
	if (ev->units_count) {
		units = json_object();
		for (size_t i = 0; units && i < ev->units_count; i++)
			set_int(units, ev->units[i].name, ev->units[i].quantity, &bad);
		if (json_object_set_new(data, "units", units) != 0)
			bad = 1;
	}
	set_str(data, "cost", ev->cost, &bad);
	set_str(data, "endpoint", ev->endpoint, &bad);
	set_str(data, "method", ev->method, &bad);
	if (ev->status_code)
		set_int(data, "status_code", ev->status_code, &bad);
	if (ev->latency_ms)
		set_int(data, "latency_ms", ev->latency_ms, &bad);
	set_str(data, "workflow_id", ev->workflow_id, &bad);
	set_str(data, "execution_id", ev->execution_id, &bad);
	if (meta && json_object_set_new(data, "metadata", meta) != 0)
		bad = 1;
	meta = NULL; /* now owned by data */
	if (json_object_set_new(root, "data", data) != 0)
		bad = 1;
	data = NULL; /* now owned by root */
	if (bad) {
		json_decref(root);
		return meter__fail(errstr, es, METER_ERR_NOMEM, "out of memory building the event");
	}
	*out = root;
	return METER_OK;
}
