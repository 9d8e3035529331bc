/* event.c - parse and validate one usage event (see event.h).
 *
 * ev_parse() tries the fast path first (event_fast.c, see event_int.h); this
 * file is the full parser, which decides everything the fast path declines.
 * One pass over a jansson tree: the envelope (specversion, id, source, type,
 * time, subject), then data, then the tenant rule, then the time window last,
 * so that an event refused as too late or too far ahead is otherwise valid.
 * No floating point: counts must be JSON integers and cost a decimal string.
 * Every detail starts with the field path and shows at most DETAIL_VALUE_MAX
 * bytes of the offending value, escaped to printable ASCII so it can be logged.
 */
#include "event_int.h"

#include "num.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DETAIL_VALUE_MAX 64 /* characters of an offending value shown in a detail */
#define US_PER_SEC 1000000LL
#define SEC_PER_DAY 86400LL
#define PUSD_PER_USD 1000000000000LL
/* Compact with sorted keys, so equal objects serialize to equal bytes. Reals
 * (only possible inside metadata) are printed with 15 significant digits,
 * which gives back the decimal the sender wrote ("0.7", not
 * "0.69999999999999996") for any value with at most 15 significant digits. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(15))

static const char *const reason_names[EV_REASON_COUNT] = {
	[EV_OK] = "ok",
	[EV_TOO_LARGE] = "too_large",
	[EV_MALFORMED_JSON] = "malformed_json",
	[EV_INVALID_UTF8] = "invalid_utf8",
	[EV_NOT_OBJECT] = "not_an_object",
	[EV_MISSING_FIELD] = "missing_field",
	[EV_WRONG_TYPE] = "wrong_type",
	[EV_NEGATIVE_VALUE] = "negative_value",
	[EV_OUT_OF_RANGE] = "out_of_range",
	[EV_INTEGER_OVERFLOW] = "integer_overflow",
	[EV_TOO_LONG] = "too_long",
	[EV_INVALID_VALUE] = "invalid_value",
	[EV_INVALID_TIME] = "invalid_time",
	[EV_TOO_LATE] = "too_late",
	[EV_TIME_IN_FUTURE] = "time_in_future",
	[EV_UNSUPPORTED_SPECVERSION] = "unsupported_specversion",
	[EV_TENANT_MISMATCH] = "tenant_mismatch",
	[EV_INVALID_COST] = "invalid_cost",
};

const char *ev_reason_name(enum ev_reason r)
{
	if ((unsigned)r >= EV_REASON_COUNT)
		return "unknown";
	return reason_names[r];
}

void ev_clear(struct meter_event *ev)
{
	if (!ev)
		return;
	free(ev->units_json);
	free(ev->metadata_json);
	memset(ev, 0, sizeof(*ev));
}

/* ---- details ------------------------------------------------------------ */

/* Render s[0..len) for a log line: printable ASCII stays, '"', '\\', control
 * characters and non-ASCII bytes become \xNN; output stops before exceeding
 * max_chars characters, and "..." marks a cut. out_size must be at least
 * max_chars + 4. */
static void safe_value(const char *s, size_t len, size_t max_chars, char *out, size_t out_size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;
	if (out_size == 0)
		return;
	if (max_chars + 4 > out_size)
		max_chars = out_size > 4 ? out_size - 4 : 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		int plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
		size_t need = plain ? 1 : 4;
		if (o + need > max_chars) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (plain) {
			out[o++] = (char)c;
		} else {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
}

static int fail(struct ev_error *err, enum ev_reason r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Record a rejection; always returns -1 so callers can `return fail(...)`. */
static int fail(struct ev_error *err, enum ev_reason r, const char *fmt, ...)
{
	va_list ap;
	err->reason = r;
	va_start(ap, fmt);
	vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
	va_end(ap);
	return -1;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "an unknown type";
}

/* Map a jansson load error to a reason. Positions are jansson's: 1-based line
 * and column, 0-based byte offset. */
static int load_error(const json_error_t *je, size_t len, struct ev_error *err)
{
	char text[DETAIL_VALUE_MAX * 2 + 4];
	size_t n = 0;
	/* The last byte of je->text holds the error code (json_error_code()). */
	while (n < sizeof(je->text) - 1 && je->text[n])
		n++;
	safe_value(je->text, n, DETAIL_VALUE_MAX * 2, text, sizeof(text));
	switch (json_error_code(je)) {
	case json_error_invalid_utf8:
		return fail(err, EV_INVALID_UTF8, "event: invalid UTF-8 at byte %d", je->position);
	case json_error_numeric_overflow:
		if (strstr(je->text, "real"))
			return fail(err, EV_OUT_OF_RANGE,
				    "event: %s (line %d, column %d, byte %d); numbers must be "
				    "integers that fit in 64 bits",
				    text, je->line, je->column, je->position);
		return fail(err, EV_INTEGER_OVERFLOW,
			    "event: %s (line %d, column %d, byte %d); integers must fit in 64 bits",
			    text, je->line, je->column, je->position);
	case json_error_out_of_memory:
		/* No reason fits a transient failure; see event.h. */
		return fail(err, EV_MALFORMED_JSON, "event: out of memory parsing %zu bytes", len);
	default:
		return fail(err, EV_MALFORMED_JSON, "event: %s (line %d, column %d, byte %d)", text,
			    je->line, je->column, je->position);
	}
}

/* ---- strings ------------------------------------------------------------ */


static const char *const charset_desc[] = {
	[CS_ID] = "A-Z a-z 0-9 . _ ~ : @ + = -",
	[CS_NAME] = "a-z 0-9 _ . -",
	[CS_MODEL] = "A-Z a-z 0-9 . _ : @ + / -",
	[CS_UNIT] = "a-z 0-9 _",
	[CS_METHOD] = "A-Z a-z",
	[CS_TEXT] = "no control characters",
};

static int in_set(unsigned char c, const char *set)
{
	return c != '\0' && strchr(set, c) != NULL;
}

int ev_char_allowed(enum ev_charset cs, unsigned char c)
{
	int lower = c >= 'a' && c <= 'z';
	int upper = c >= 'A' && c <= 'Z';
	int digit = c >= '0' && c <= '9';
	switch (cs) {
	case CS_ID: return lower || upper || digit || in_set(c, "._~:@+=-");
	case CS_NAME: return lower || digit || in_set(c, "_.-");
	case CS_MODEL: return lower || upper || digit || in_set(c, "._:@+/-");
	case CS_UNIT: return lower || digit || c == '_';
	case CS_METHOD: return lower || upper;
	case CS_TEXT: return c >= 0x20 && c != 0x7f;
	}
	return 0;
}

int ev_check_string(const char *path, const char *s, size_t len, size_t max, enum ev_charset cs,
		    struct ev_error *err)
{
	char shown[DETAIL_VALUE_MAX + 4];
	if (len == 0)
		return fail(err, EV_INVALID_VALUE, "%s: must not be empty (omit the field instead)",
			    path);
	if (len > max)
		return fail(err, EV_TOO_LONG, "%s: %zu bytes, at most %zu", path, len, max);
	for (size_t i = 0; i < len; i++) {
		if (!ev_char_allowed(cs, (unsigned char)s[i])) {
			safe_value(s, len, DETAIL_VALUE_MAX, shown, sizeof(shown));
			return fail(err, EV_INVALID_VALUE,
				    "%s: byte 0x%02x at offset %zu not allowed (%s) in \"%s\"", path,
				    (unsigned char)s[i], i, charset_desc[cs], shown);
		}
	}
	return 0;
}

/* Look up key in obj (borrowed) and copy a valid string into dst, which has
 * room for max bytes and a NUL. Returns 1 if present, 0 if absent or null
 * (dst is left as ""), -1 on a rejection (absent counts when required). */
static int get_string(const json_t *obj, const char *key, const char *path, int required,
		      size_t max, enum ev_charset cs, char *dst, struct ev_error *err)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v)) {
		if (required)
			return fail(err, EV_MISSING_FIELD, "%s: required", path);
		return 0;
	}
	if (!json_is_string(v))
		return fail(err, EV_WRONG_TYPE, "%s: expected a string, got %s", path, type_name(v));
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (ev_check_string(path, s, len, max, cs, err) != 0)
		return -1;
	memcpy(dst, s, len);
	dst[len] = '\0';
	return 1;
}

/* ---- integers ----------------------------------------------------------- */

/* Check an integer value (borrowed) against [min, max]. Below zero is
 * EV_NEGATIVE_VALUE for fields whose range starts at 0, EV_OUT_OF_RANGE
 * otherwise. */
static int check_int(const json_t *v, const char *path, int64_t min, int64_t max, int64_t *out,
		     struct ev_error *err)
{
	if (!json_is_integer(v))
		return fail(err, EV_WRONG_TYPE, "%s: expected an integer, got %s", path,
			    type_name(v));
	long long x = json_integer_value(v);
	if (x < min && min == 0)
		return fail(err, EV_NEGATIVE_VALUE, "%s: must be >= 0, got %lld", path, x);
	if (x < min || x > max)
		return fail(err, EV_OUT_OF_RANGE, "%s: must be between %lld and %lld, got %lld",
			    path, (long long)min, (long long)max, x);
	*out = x;
	return 0;
}

/* Optional integer: absent or null leaves *out at its default. */
static int get_int(const json_t *obj, const char *key, const char *path, int64_t min,
		   int64_t max, int64_t *out, struct ev_error *err)
{
	const json_t *v = json_object_get(obj, key);
	if (!v || json_is_null(v))
		return 0;
	return check_int(v, path, min, max, out, err);
}

/* ---- objects ------------------------------------------------------------ */

/* Serialize obj (borrowed) with DUMP_FLAGS into a new malloc'd string owned by
 * the caller; NULL for an empty object. Refuses more than cap bytes. */
static int dump_object(const json_t *obj, const char *path, size_t cap, char **out,
		       struct ev_error *err)
{
	*out = NULL;
	if (json_object_size(obj) == 0)
		return 0;
	size_t need = json_dumpb(obj, NULL, 0, DUMP_FLAGS);
	if (need == 0)
		return fail(err, EV_MALFORMED_JSON, "%s: cannot be serialized (out of memory)",
			    path);
	if (need > cap)
		return fail(err, EV_TOO_LONG, "%s: %zu bytes serialized, at most %zu", path, need,
			    cap);
	char *s = malloc(need + 1);
	if (!s)
		return fail(err, EV_MALFORMED_JSON, "%s: out of memory", path);
	if (json_dumpb(obj, s, need, DUMP_FLAGS) != need) {
		free(s);
		return fail(err, EV_MALFORMED_JSON, "%s: cannot be serialized", path);
	}
	s[need] = '\0';
	*out = s;
	return 0;
}

static int unit_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ev_unit *)a)->name, ((const struct ev_unit *)b)->name);
}

/* units[] in name order, the order of units_json's sorted keys. */
static int parse_units(const json_t *data, struct meter_event *ev, struct ev_error *err)
{
	json_t *units = json_object_get(data, "units");
	const char *name;
	json_t *v;
	if (!units || json_is_null(units))
		return 0;
	if (!json_is_object(units))
		return fail(err, EV_WRONG_TYPE, "data.units: expected an object, got %s",
			    type_name(units));
	if (json_object_size(units) > EV_UNITS_MAX)
		return fail(err, EV_TOO_LONG, "data.units: %zu entries, at most %d",
			    json_object_size(units), EV_UNITS_MAX);
	json_object_foreach(units, name, v) {
		char path[sizeof("data.units.") + EV_UNIT_NAME_MAX];
		char shown[DETAIL_VALUE_MAX + 4];
		size_t nlen = strlen(name); /* no NUL inside keys without JSON_ALLOW_NUL */
		int64_t qty;
		safe_value(name, nlen, DETAIL_VALUE_MAX, shown, sizeof(shown));
		if (nlen == 0)
			return fail(err, EV_INVALID_VALUE, "data.units: empty unit name");
		if (nlen > EV_UNIT_NAME_MAX)
			return fail(err, EV_TOO_LONG, "data.units: unit name \"%s\" is %zu bytes, at most %d",
				    shown, nlen, EV_UNIT_NAME_MAX);
		for (size_t i = 0; i < nlen; i++)
			if (!ev_char_allowed(CS_UNIT, (unsigned char)name[i]))
				return fail(err, EV_INVALID_VALUE,
					    "data.units: unit name \"%s\" has a character outside %s",
					    shown, charset_desc[CS_UNIT]);
		snprintf(path, sizeof(path), "data.units.%s", name);
		if (check_int(v, path, 0, EV_UNITS_QTY_MAX, &qty, err) != 0)
			return -1;
		if (ev->nunits < EV_UNITS_MAX) {
			struct ev_unit *u = &ev->units[ev->nunits++];
			memcpy(u->name, name, nlen + 1);
			u->quantity = qty;
		}
	}
	qsort(ev->units, (size_t)ev->nunits, sizeof(ev->units[0]), unit_cmp);
	return dump_object(units, "data.units", SIZE_MAX, &ev->units_json, err);
}

static int parse_cost(const json_t *data, struct meter_event *ev, struct ev_error *err)
{
	const json_t *v = json_object_get(data, "cost");
	char text[32];
	const char *s;
	size_t len;
	int64_t pusd;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		s = json_string_value(v);
		len = json_string_length(v);
	} else if (json_is_integer(v)) {
		/* Whole USD; a negative number fails the parse below. */
		int n = snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
		s = text;
		len = (size_t)n;
	} else if (json_is_real(v)) {
		return fail(err, EV_INVALID_COST,
			    "data.cost: send the amount as a decimal string such as \"0.0042\", "
			    "not a JSON number with a fraction or exponent");
	} else {
		return fail(err, EV_INVALID_COST,
			    "data.cost: expected a decimal string such as \"0.0042\", got %s",
			    type_name(v));
	}
	if (num_parse_usd_pico(s, len, EV_COST_MAX_PUSD, &pusd) != 0) {
		char shown[DETAIL_VALUE_MAX + 4];
		safe_value(s, len, DETAIL_VALUE_MAX, shown, sizeof(shown));
		return fail(err, EV_INVALID_COST,
			    "data.cost: \"%s\" is not a USD amount from 0 to %lld with at most 12 "
			    "fraction digits",
			    shown, EV_COST_MAX_PUSD / PUSD_PER_USD);
	}
	ev->has_cost = 1;
	ev->cost_pusd = pusd;
	return 0;
}

static int parse_metadata(const json_t *data, struct meter_event *ev, struct ev_error *err)
{
	const json_t *v = json_object_get(data, "metadata");
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return fail(err, EV_WRONG_TYPE, "data.metadata: expected an object, got %s",
			    type_name(v));
	return dump_object(v, "data.metadata", EV_METADATA_MAX, &ev->metadata_json, err);
}

static int parse_data(const json_t *data, struct meter_event *ev, struct ev_error *err)
{
	if (get_string(data, "tenant_id", "data.tenant_id", 0, EV_ID_MAX, CS_ID, ev->tenant_id,
		       err) < 0 ||
	    get_string(data, "user_id", "data.user_id", 0, EV_ID_MAX, CS_ID, ev->user_id, err) < 0 ||
	    get_string(data, "api_key_id", "data.api_key_id", 0, EV_ID_MAX, CS_ID, ev->api_key_id,
		       err) < 0 ||
	    get_string(data, "provider", "data.provider", 0, EV_NAME_MAX, CS_NAME, ev->provider,
		       err) < 0 ||
	    get_string(data, "model", "data.model", 0, EV_MODEL_MAX, CS_MODEL, ev->model, err) < 0 ||
	    get_string(data, "operation", "data.operation", 1, EV_NAME_MAX, CS_NAME,
		       ev->operation, err) < 0)
		return -1;

	if (get_int(data, "input_tokens", "data.input_tokens", 0, EV_TOKENS_MAX,
		    &ev->input_tokens, err) != 0 ||
	    get_int(data, "output_tokens", "data.output_tokens", 0, EV_TOKENS_MAX,
		    &ev->output_tokens, err) != 0 ||
	    get_int(data, "cache_read_input_tokens", "data.cache_read_input_tokens", 0,
		    EV_TOKENS_MAX, &ev->cached_input_tokens, err) != 0 ||
	    get_int(data, "reasoning_output_tokens", "data.reasoning_output_tokens", 0,
		    EV_TOKENS_MAX, &ev->reasoning_tokens, err) != 0 ||
	    get_int(data, "requests", "data.requests", 0, EV_REQUESTS_MAX, &ev->requests, err) !=
		    0)
		return -1;

	/* input_tokens includes the cached ones and output_tokens the reasoning
	 * ones (OpenAI usage, OpenTelemetry GenAI): a part larger than its whole
	 * would bill negative uncached input, so it is refused. */
	if (ev->cached_input_tokens > ev->input_tokens)
		return fail(err, EV_OUT_OF_RANGE,
			    "data.cache_read_input_tokens: %lld is more than data.input_tokens "
			    "(%lld), which must include cached tokens",
			    (long long)ev->cached_input_tokens, (long long)ev->input_tokens);
	if (ev->reasoning_tokens > ev->output_tokens)
		return fail(err, EV_OUT_OF_RANGE,
			    "data.reasoning_output_tokens: %lld is more than data.output_tokens "
			    "(%lld), which must include reasoning tokens",
			    (long long)ev->reasoning_tokens, (long long)ev->output_tokens);

	if (parse_units(data, ev, err) != 0 || parse_cost(data, ev, err) != 0)
		return -1;

	if (get_string(data, "endpoint", "data.endpoint", 0, EV_ENDPOINT_MAX, CS_TEXT,
		       ev->endpoint, err) < 0 ||
	    get_string(data, "method", "data.method", 0, EV_METHOD_MAX, CS_METHOD, ev->method,
		       err) < 0 ||
	    get_int(data, "status_code", "data.status_code", EV_STATUS_MIN, EV_STATUS_MAX,
		    &ev->status_code, err) != 0 ||
	    get_int(data, "latency_ms", "data.latency_ms", 0, EV_LATENCY_MS_MAX, &ev->latency_ms,
		    err) != 0 ||
	    get_string(data, "workflow_id", "data.workflow_id", 0, EV_ID_MAX, CS_ID,
		       ev->workflow_id, err) < 0 ||
	    get_string(data, "execution_id", "data.execution_id", 0, EV_ID_MAX, CS_ID,
		       ev->execution_id, err) < 0)
		return -1;

	return parse_metadata(data, ev, err);
}

/* ---- time --------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil); pure integer math, valid for any int64 year we produce. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static int is_leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/* n decimal digits at s. */
static int read_digits(const char *s, size_t n, int *out)
{
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

int ev_parse_rfc3339(const char *s, size_t len, int64_t *out_us)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac_us = 0;
	size_t i;
	/* "YYYY-MM-DDTHH:MM:SS" then [.frac] then Z or +HH:MM. */
	if (!s || !out_us || len < 20)
		return -1;
	if (read_digits(s, 4, &y) || s[4] != '-' || read_digits(s + 5, 2, &mo) || s[7] != '-' ||
	    read_digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    read_digits(s + 11, 2, &h) || s[13] != ':' || read_digits(s + 14, 2, &mi) ||
	    s[16] != ':' || read_digits(s + 17, 2, &sec))
		return -1;
	i = 19;
	if (s[i] == '.') {
		size_t nd = 0;
		int64_t scale = 100000;
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
			if (nd == 9)
				return -1;
			if (nd < 6) { /* truncate to microseconds */
				frac_us += (s[i] - '0') * scale;
				scale /= 10;
			}
		}
		if (nd == 0)
			return -1;
	}
	if (i >= len)
		return -1;
	if (s[i] == 'Z' || s[i] == 'z') {
		i++;
	} else if (s[i] == '+' || s[i] == '-') {
		sign = s[i] == '-' ? -1 : 1;
		if (len - i < 6 || read_digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    read_digits(s + i + 4, 2, &om))
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != len)
		return -1;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
	    mi > 59 || sec > 59 || oh > 23 || om > 59)
		return -1;
	int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * SEC_PER_DAY + h * 3600LL +
		       mi * 60LL + sec - sign * (oh * 3600LL + om * 60LL);
	*out_us = secs * US_PER_SEC + frac_us;
	return 0;
}

void ev_format_time(int64_t us, char *out, size_t out_size)
{
	const int64_t us_per_day = SEC_PER_DAY * US_PER_SEC;
	int64_t days = us / us_per_day, rem = us % us_per_day, y;
	unsigned m, d;
	if (!out || out_size == 0)
		return;
	if (rem < 0) { /* floor, so times before 1970 count back from midnight */
		days--;
		rem += us_per_day;
	}
	civil_from_days(days, &y, &m, &d);
	int64_t secs = rem / US_PER_SEC;
	if (y < 0 || y > 9999 || out_size < 28) {
		snprintf(out, out_size, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, m,
			 d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
			 (unsigned)(secs % 60), (unsigned)(rem % US_PER_SEC));
		return;
	}
	/* By hand (every event is formatted twice per batch): the same text
	 * as the snprintf above. */
	unsigned f[7] = {(unsigned)y, m, d, (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60),
			 (unsigned)(secs % 60), (unsigned)(rem % US_PER_SEC)};
	static const char seps[] = "--T::.";
	static const int widths[7] = {4, 2, 2, 2, 2, 2, 6};
	char *p = out;
	for (int i = 0; i < 7; i++) {
		for (int w = widths[i] - 1; w >= 0; w--) {
			p[w] = (char)('0' + f[i] % 10);
			f[i] /= 10;
		}
		p += widths[i];
		if (i < 6)
			*p++ = seps[i];
	}
	*p++ = 'Z';
	*p = '\0';
}

static int64_t sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
	if (b > 0 && a < INT64_MIN + b)
		return INT64_MIN;
	if (b < 0 && a > INT64_MAX + b)
		return INT64_MAX;
	return a - b;
}

static int parse_time(const json_t *root, struct meter_event *ev, struct ev_error *err)
{
	const json_t *v = json_object_get(root, "time");
	if (!v || json_is_null(v))
		return fail(err, EV_MISSING_FIELD, "time: required");
	if (!json_is_string(v))
		return fail(err, EV_WRONG_TYPE, "time: expected a string, got %s", type_name(v));
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (ev_parse_rfc3339(s, len, &ev->time_us) != 0) {
		char shown[DETAIL_VALUE_MAX + 4];
		safe_value(s, len, DETAIL_VALUE_MAX, shown, sizeof(shown));
		return fail(err, EV_INVALID_TIME,
			    "time: \"%s\" is not an RFC 3339 date-time such as "
			    "\"2026-11-23T10:00:00.5Z\"",
			    shown);
	}
	return 0;
}

int ev_check_window(const struct ev_limits *lim, const struct meter_event *ev,
		    struct ev_error *err)
{
	char t[32], bound[32];
	if (!lim || lim->now_us == 0)
		return 0;
	int64_t oldest = sat_sub(lim->now_us, lim->max_lateness_us);
	int64_t newest = sat_add(lim->now_us, lim->max_future_us);
	ev_format_time(ev->time_us, t, sizeof(t));
	if (ev->time_us < oldest) {
		ev_format_time(oldest, bound, sizeof(bound));
		return fail(err, EV_TOO_LATE, "time: %s is before the oldest accepted time %s", t,
			    bound);
	}
	if (ev->time_us > newest) {
		ev_format_time(newest, bound, sizeof(bound));
		return fail(err, EV_TIME_IN_FUTURE,
			    "time: %s is after the newest accepted time %s", t, bound);
	}
	return 0;
}

/* ---- the event ---------------------------------------------------------- */

static int parse_event(const json_t *root, const struct ev_limits *lim, struct meter_event *ev,
		       struct ev_error *err)
{
	char subject[EV_ID_MAX + 1] = "";
	const json_t *sv, *data;
	int has_subject, has_tenant;

	/* specversion first: another version may have another shape. */
	sv = json_object_get(root, "specversion");
	if (!sv || json_is_null(sv))
		return fail(err, EV_MISSING_FIELD, "specversion: required");
	if (!json_is_string(sv))
		return fail(err, EV_WRONG_TYPE, "specversion: expected a string, got %s",
			    type_name(sv));
	if (strcmp(json_string_value(sv), "1.0") != 0) {
		char shown[DETAIL_VALUE_MAX + 4];
		safe_value(json_string_value(sv), json_string_length(sv), DETAIL_VALUE_MAX, shown,
			   sizeof(shown));
		return fail(err, EV_UNSUPPORTED_SPECVERSION,
			    "specversion: \"%s\" is not supported, expected \"1.0\"", shown);
	}

	if (get_string(root, "id", "id", 1, EV_ID_MAX, CS_ID, ev->id, err) < 0 ||
	    get_string(root, "source", "source", 1, EV_SOURCE_MAX, CS_TEXT, ev->source, err) < 0 ||
	    get_string(root, "type", "type", 1, EV_TYPE_MAX, CS_TEXT, ev->type, err) < 0 ||
	    parse_time(root, ev, err) != 0)
		return -1;
	has_subject = get_string(root, "subject", "subject", 0, EV_ID_MAX, CS_ID, subject, err);
	if (has_subject < 0)
		return -1;

	data = json_object_get(root, "data");
	if (!data || json_is_null(data))
		return fail(err, EV_MISSING_FIELD, "data: required");
	if (!json_is_object(data))
		return fail(err, EV_NOT_OBJECT, "data: expected an object, got %s",
			    type_name(data));
	if (parse_data(data, ev, err) != 0)
		return -1;

	/* The tenant: subject and/or data.tenant_id, equal when both are given. */
	has_tenant = ev->tenant_id[0] != '\0';
	if (!has_subject && !has_tenant)
		return fail(err, EV_MISSING_FIELD, "data.tenant_id: required (or set subject)");
	if (has_subject && has_tenant && strcmp(subject, ev->tenant_id) != 0) {
		char a[DETAIL_VALUE_MAX + 4], b[DETAIL_VALUE_MAX + 4];
		safe_value(subject, strlen(subject), DETAIL_VALUE_MAX / 2, a, sizeof(a));
		safe_value(ev->tenant_id, strlen(ev->tenant_id), DETAIL_VALUE_MAX / 2, b,
			   sizeof(b));
		return fail(err, EV_TENANT_MISMATCH,
			    "data.tenant_id: \"%s\" differs from subject \"%s\"", b, a);
	}
	if (!has_tenant)
		memcpy(ev->tenant_id, subject, sizeof(ev->tenant_id));

	return ev_check_window(lim, ev, err);
}

void ev_init(struct meter_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->requests = 1;
	ev->status_code = -1;
	ev->latency_ms = -1;
}

int ev_parse(const void *buf, size_t len, const struct ev_limits *lim, struct meter_event *ev,
	     struct ev_error *err)
{
	size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : EV_DEFAULT_MAX_BYTES;
	if (buf && len > 0 && len <= max_bytes && ev_parse_fast(buf, len, lim, ev) == 0) {
		if (err) {
			err->reason = EV_OK;
			err->detail[0] = '\0';
		}
		return 0;
	}
	return ev_parse_full(buf, len, lim, ev, err);
}

int ev_parse_full(const void *buf, size_t len, const struct ev_limits *lim,
		  struct meter_event *ev, struct ev_error *err)
{
	struct ev_error scratch;
	json_error_t jerr;
	json_t *root = NULL;
	size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : EV_DEFAULT_MAX_BYTES;
	int rc = -1;

	if (!err)
		err = &scratch;
	err->reason = EV_OK;
	err->detail[0] = '\0';
	ev_init(ev);

	if (len > max_bytes) {
		fail(err, EV_TOO_LARGE, "event: %zu bytes, at most %zu", len, max_bytes);
		goto out;
	}
	if (len == 0 || !buf) {
		fail(err, EV_MALFORMED_JSON, "event: empty payload");
		goto out;
	}
	/* Not STYLE's flags 0: duplicate keys are refused because they are
	 * ambiguous (which "input_tokens" counts?), and JSON_DECODE_ANY makes
	 * "42" EV_NOT_OBJECT rather than a syntax error. */
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (!root) {
		load_error(&jerr, len, err);
		goto out;
	}
	if (!json_is_object(root)) {
		fail(err, EV_NOT_OBJECT, "event: expected an object at the top level, got %s",
		     type_name(root));
		goto out;
	}
	if (parse_event(root, lim, ev, err) != 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	if (rc != 0)
		ev_clear(ev);
	return rc;
}

int ev_equal(const struct meter_event *a, const struct meter_event *b)
{
#define SAME_STR(f) (strcmp(a->f, b->f) == 0)
#define SAME_OWNED(f) ((!a->f && !b->f) || (a->f && b->f && strcmp(a->f, b->f) == 0))
	if (!SAME_STR(id) || !SAME_STR(source) || !SAME_STR(type) || !SAME_STR(tenant_id) ||
	    !SAME_STR(user_id) || !SAME_STR(api_key_id) || !SAME_STR(provider) ||
	    !SAME_STR(model) || !SAME_STR(operation) || !SAME_STR(endpoint) ||
	    !SAME_STR(method) || !SAME_STR(workflow_id) || !SAME_STR(execution_id) ||
	    !SAME_OWNED(units_json) || !SAME_OWNED(metadata_json))
		return 0;
	if (a->time_us != b->time_us || a->input_tokens != b->input_tokens ||
	    a->output_tokens != b->output_tokens ||
	    a->cached_input_tokens != b->cached_input_tokens ||
	    a->reasoning_tokens != b->reasoning_tokens || a->requests != b->requests ||
	    a->has_cost != b->has_cost || a->cost_pusd != b->cost_pusd ||
	    a->status_code != b->status_code || a->latency_ms != b->latency_ms ||
	    a->nunits != b->nunits)
		return 0;
	for (int i = 0; i < a->nunits; i++)
		if (strcmp(a->units[i].name, b->units[i].name) != 0 ||
		    a->units[i].quantity != b->units[i].quantity)
			return 0;
	return 1;
#undef SAME_STR
#undef SAME_OWNED
}

/* s when it is a string that is a valid identifier, else NULL. */
static const char *id_or_null(const json_t *v)
{
	const char *s = json_string_value(v);
	if (!s)
		return NULL;
	size_t n = json_string_length(v);
	if (n == 0 || n > EV_ID_MAX)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!ev_char_allowed(CS_ID, (unsigned char)s[i]))
			return NULL;
	return s;
}

void ev_reject_ids(const void *payload, size_t len, size_t max_bytes,
		   char tenant_id[EV_ID_MAX + 1], char id[EV_ID_MAX + 1])
{
	tenant_id[0] = id[0] = '\0';
	if (len > (max_bytes ? max_bytes : EV_DEFAULT_MAX_BYTES))
		return;
	json_t *root = json_loadb(payload, len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(root)) {
		json_decref(root);
		return;
	}
	const char *t = id_or_null(json_object_get(root, "subject"));
	if (!t)
		t = id_or_null(json_object_get(json_object_get(root, "data"), "tenant_id"));
	const char *i = id_or_null(json_object_get(root, "id"));
	if (t)
		snprintf(tenant_id, EV_ID_MAX + 1, "%s", t);
	if (i)
		snprintf(id, EV_ID_MAX + 1, "%s", i);
	json_decref(root);
}
