/* event.h - the usage event contract: parse and validate one Kafka payload.
 *
 * The event is a CloudEvents 1.0 JSON object in structured mode (see
 * schema/usage-event.schema.json and the README). ev_parse() is strict about
 * types, ranges and sizes and lenient about unknown fields. Every rejection
 * carries a machine-readable reason and a human-readable detail naming the
 * field. It never crashes on any byte sequence.
 */
#ifndef METER_EVENT_H
#define METER_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Size caps, in bytes (not counting the NUL). */
#define EV_ID_MAX 128        /* id, tenant_id, user_id, api_key_id, workflow/execution ids */
#define EV_SOURCE_MAX 256
#define EV_TYPE_MAX 128
#define EV_NAME_MAX 64       /* provider, operation */
#define EV_MODEL_MAX 128
#define EV_ENDPOINT_MAX 512
#define EV_METHOD_MAX 16
#define EV_METADATA_MAX 4096 /* serialized size of data.metadata */
#define EV_UNITS_MAX 16      /* entries in data.units */
#define EV_UNIT_NAME_MAX 32

/* Caps on counts so that sums stay far inside int64 (see README). */
#define EV_TOKENS_MAX 1000000000000LL   /* 10^12 per event */
#define EV_REQUESTS_MAX 1000000LL
#define EV_UNITS_QTY_MAX 1000000000000LL
#define EV_COST_MAX_PUSD 1000000000000000000LL /* 1,000,000 USD in pico-USD */

enum ev_reason {
	EV_OK = 0,
	EV_TOO_LARGE,            /* payload over the size cap */
	EV_MALFORMED_JSON,       /* not parseable JSON, duplicate keys, escaped NUL; also
				  * out of memory, for want of a better reason */
	EV_INVALID_UTF8,         /* bytes that are not UTF-8 */
	EV_NOT_OBJECT,           /* top level (or data) is not an object */
	EV_MISSING_FIELD,        /* a required field is absent or null */
	EV_WRONG_TYPE,           /* a field has the wrong JSON type */
	EV_NEGATIVE_VALUE,       /* a count below zero */
	EV_OUT_OF_RANGE,         /* a number over its cap (also a real like 1e400) */
	EV_INTEGER_OVERFLOW,     /* an integer outside int64 */
	EV_TOO_LONG,             /* a string over its cap (also data.units entries,
				  * serialized data.metadata) */
	EV_INVALID_VALUE,        /* a string with characters not allowed there */
	EV_INVALID_TIME,         /* time is not RFC 3339 */
	EV_TOO_LATE,             /* time older than the lateness bound */
	EV_TIME_IN_FUTURE,       /* time further ahead than the allowed skew */
	EV_UNSUPPORTED_SPECVERSION,
	EV_TENANT_MISMATCH,      /* subject and data.tenant_id disagree */
	EV_INVALID_COST,         /* cost not an exact decimal USD amount */
	EV_REASON_COUNT
};

struct ev_error {
	enum ev_reason reason;
	char detail[256]; /* e.g. "data.input_tokens: expected an integer" */
};

struct ev_limits {
	size_t max_bytes;        /* payload cap; 0 means 65536 */
	int64_t now_us;          /* wall clock (epoch microseconds); 0 skips the window check */
	int64_t max_lateness_us; /* events older than now - this are EV_TOO_LATE */
	int64_t max_future_us;   /* events newer than now + this are EV_TIME_IN_FUTURE;
				  * with now_us set, 0 means no tolerance (both saturate) */
};

/* One validated event. Strings are NUL-terminated copies; an absent optional
 * string is "". Absent optional integers are 0 except where noted. */
struct meter_event {
	char id[EV_ID_MAX + 1];
	char source[EV_SOURCE_MAX + 1];
	char type[EV_TYPE_MAX + 1];
	char tenant_id[EV_ID_MAX + 1];
	char user_id[EV_ID_MAX + 1];
	char api_key_id[EV_ID_MAX + 1];
	char provider[EV_NAME_MAX + 1];
	char model[EV_MODEL_MAX + 1];
	char operation[EV_NAME_MAX + 1];
	int64_t time_us; /* when the call happened, epoch microseconds UTC */
	int64_t input_tokens;
	int64_t output_tokens;
	int64_t cached_input_tokens;   /* data.cache_read_input_tokens */
	int64_t reasoning_tokens;      /* data.reasoning_output_tokens */
	int64_t requests;              /* default 1 */
	int has_cost;                  /* data.cost given */
	int64_t cost_pusd;             /* pico-USD, when has_cost */
	int nunits;                    /* entries of units[], in key order of units_json */
	struct ev_unit {
		char name[EV_UNIT_NAME_MAX + 1];
		int64_t quantity;
	} units[EV_UNITS_MAX];
	char *units_json;              /* owned: compact JSON object {"images":2}, sorted
					* keys, or NULL when absent or {} */
	char endpoint[EV_ENDPOINT_MAX + 1];
	char method[EV_METHOD_MAX + 1];
	int64_t status_code;           /* -1 when absent */
	int64_t latency_ms;            /* -1 when absent */
	char workflow_id[EV_ID_MAX + 1];
	char execution_id[EV_ID_MAX + 1];
	char *metadata_json;           /* owned: compact JSON object, sorted keys, reals
					* with 15 significant digits; NULL when absent
					* or {} */
};

/* Parse and validate buf[0..len) (no NUL terminator needed). On success
 * returns 0 and fills *ev (release with ev_clear()). On rejection returns -1,
 * fills *err, and leaves *ev cleared (nothing to free). lim may be NULL for
 * defaults without a time window; err may be NULL. *ev is overwritten without
 * being freed: ev_clear() an event before reusing it. The time window is
 * checked last, so EV_TOO_LATE and EV_TIME_IN_FUTURE mean "otherwise valid".
 * Pure and thread-safe (no global state besides jansson's). */
int ev_parse(const void *buf, size_t len, const struct ev_limits *lim, struct meter_event *ev,
	     struct ev_error *err);

/* Free what ev owns and zero it. ev_clear(NULL) is a no-op. */
void ev_clear(struct meter_event *ev);

/* For an event that failed validation, what it says of itself, as far as
 * it can be trusted: its tenant (subject, the tenant it is routed as, else
 * data.tenant_id) and id, each
 * copied only when it is a valid identifier, else "". Nothing from a payload
 * over max_bytes (0: the default cap) or that is not a JSON object. */
void ev_reject_ids(const void *payload, size_t len, size_t max_bytes,
		   char tenant_id[EV_ID_MAX + 1], char id[EV_ID_MAX + 1]);

/* Stable machine-readable name of a reason, e.g. "wrong_type". */
const char *ev_reason_name(enum ev_reason r);

/* RFC 3339 date-time ("2026-11-23T10:00:00.5Z", "...-03:00"), 0-9 fraction
 * digits (truncated to microseconds), years 0001-9999, leap seconds refused.
 * Returns 0 and sets *out_us (epoch microseconds UTC), or -1. */
int ev_parse_rfc3339(const char *s, size_t len, int64_t *out_us);

/* Format epoch microseconds as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (needs 28 bytes). */
void ev_format_time(int64_t us, char *out, size_t out_size);

#endif
