/* meter.h - libmeter: emit usage events and check over-limit flags.
 *
 * For services that resell LLM calls. Link with -lrdkafka -ljansson -lpthread.
 *
 *   meter_t *m = meter_new("kafka:9092", NULL, errstr, sizeof(errstr));
 *   ...
 *   meter_decision_t d;
 *   if (meter_check(m, tenant, user, key, &d) == METER_BLOCKED)
 *           reply_429(d.reason, d.retry_after_seconds);   // before the model call
 *   ...call the model...
 *   meter_event_t ev = {.tenant_id = tenant, .user_id = user, .operation = "chat",
 *                       .provider = "openai", .model = "gpt-4o-mini",
 *                       .input_tokens = 1200, .output_tokens = 300};
 *   meter_emit(m, &ev, id, sizeof(id), errstr, sizeof(errstr));  // after it
 *   ...
 *   meter_destroy(m);
 *
 * emit publishes one CloudEvents 1.0 usage event to usage.events (key = the
 * tenant id) with an idempotent producer (acks=all); it never blocks the
 * caller longer than opts.emit_timeout_ms. check answers from an in-memory
 * table that a background thread fills by reading usage.limits from the
 * beginning of every partition (last value per key wins; flags past their
 * `until` are ignored), without a consumer group. With opts.follow_rollups
 * the same thread also reads usage.rollups, and meter_check_estimate()
 * answers "may this tenant spend about N tokens now?" with the remaining
 * requests and tokens of its current day and month (advisory: they lag the
 * usage by meterd's batch delay; flags stay the enforcement), and
 * meter_format_headers() turns them into X-RateLimit-* headers. See
 * libmeter/README.md.
 *
 * All functions are thread-safe except meter_destroy(), which must not race
 * with other calls on the same handle. Every public name starts with meter_
 * or METER_.
 */
#ifndef METER_H
#define METER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- return codes --------------------------------------------------------- */

#define METER_OK 0
#define METER_BLOCKED 1          /* meter_check(): the call is not allowed */
#define METER_ERR_INVALID (-1)   /* bad argument or an event the worker would reject */
#define METER_ERR_TIMEOUT (-2)   /* local queue still full after emit_timeout_ms */
#define METER_ERR_FATAL (-3)     /* the producer hit a fatal error: recreate the handle */
#define METER_ERR_DISABLED (-4)  /* emit or check was not enabled in meter_new() */
#define METER_ERR_KAFKA (-5)     /* librdkafka refused the message (see errstr) */
#define METER_ERR_NOMEM (-6)

/* ---- sizes ---------------------------------------------------------------- */

#define METER_ID_MAX 128       /* event id, tenant, user, key, workflow, execution */
#define METER_SUBJECT_MAX 262  /* "user/<tenant>/<user>" with 128-byte ids */
#define METER_PERIOD_MAX 16    /* a period name: "day", "month", "rolling30" (the
				* schema's longest, 9 bytes) */
#define METER_EVENT_MAX_BYTES 65536 /* the worker's cap on one event */

/* ---- options ---------------------------------------------------------------- */

/* One librdkafka property. A name starting with "producer." or "consumer."
 * (prefix removed) applies only to the emit producer or the flag reader;
 * any other name to both (e.g. security.protocol, sasl.*), except one that
 * librdkafka documents for one kind of client only (session.timeout.ms,
 * linger.ms, ...), which goes to that client alone. */
typedef struct meter_prop {
	const char *name;
	const char *value;
} meter_prop_t;

/* What one delivery report says (pointers borrowed for the call only). */
typedef struct meter_delivery {
	const char *id;       /* the event id ("" for meter_emit_json events) */
	const char *tenant;   /* the message key */
	int ok;               /* 1 delivered (acks=all), 0 failed */
	const char *error;    /* why it failed, "" when ok */
	int32_t partition;    /* -1 when unknown */
	int64_t offset;       /* -1 when unknown */
} meter_delivery_t;

/* Called once per emitted event, from a libmeter thread, from inside
 * meter_emit() (while it waits on a full queue) or from meter_destroy().
 * Must be thread-safe and quick, and must not call meter_destroy(). */
typedef void (meter_delivery_cb_t)(const meter_delivery_t *d, void *opaque);

/* Epoch microseconds, UTC. For tests; the default reads CLOCK_REALTIME. */
typedef int64_t (meter_clock_cb_t)(void *opaque);

typedef struct meter_opts {
	const char *events_topic;   /* NULL: "usage.events" */
	const char *limits_topic;   /* NULL: "usage.limits" */
	int emit;                   /* start the producer (meter_emit) */
	int check;                  /* start the flag reader (meter_check) */
	const char *source;         /* default CloudEvents source; NULL: "//<hostname>/libmeter" */
	const meter_prop_t *props;  /* extra librdkafka properties (borrowed) */
	size_t props_count;
	int emit_timeout_ms;        /* most meter_emit may block on a full queue; 0: 50 */
	int flush_timeout_ms;       /* meter_destroy waits this long for deliveries;
				     * 0: 5000, < 0: do not wait (pending events fail) */
	int metadata_refresh_ms;    /* how often the reader looks for new partitions; 0: 10000 */
	meter_delivery_cb_t *on_delivery; /* optional */
	void *delivery_opaque;
	meter_clock_cb_t *clock;    /* optional: for tests */
	void *clock_opaque;
	/* Added in 0.2 (at the end, so older code that zero-fills the struct
	 * with meter_opts_init() keeps its meaning). */
	int follow_rollups;         /* also read the rollups topic (meter_check_estimate) */
	const char *rollups_topic;  /* NULL: "usage.rollups" */
} meter_opts_t;

/* Fill *opts with the defaults: both emit and check on, everything else
 * zero (= default). meter_new(..., NULL, ...) uses these. */
void meter_opts_init(meter_opts_t *opts);

/* ---- the handle ------------------------------------------------------------- */

typedef struct meter meter_t;

/* Create a handle connected to brokers (a bootstrap list "host:port,...").
 * opts is borrowed (copied); NULL means meter_opts_init() defaults. Returns a
 * new handle, or NULL with the reason in errstr. Does not wait for the
 * brokers: the reader catches up in the background (see meter_ready()). */
meter_t *meter_new(const char *brokers, const meter_opts_t *opts, char *errstr,
		   size_t errstr_size);

/* Stop the reader, wait up to opts.flush_timeout_ms for the delivery of
 * emitted events (those still pending are reported as failed), free all.
 * meter_destroy(NULL) is a no-op. */
void meter_destroy(meter_t *m);

/* ---- emit --------------------------------------------------------------------- */

typedef struct meter_unit {
	const char *name;     /* [a-z0-9_]{1,32}, e.g. "images", "video_seconds" */
	int64_t quantity;     /* 0 .. 10^12 */
} meter_unit_t;

/* One usage event. Strings are borrowed; NULL or "" means "not given".
 * Zero-initialise it and set what you know. */
typedef struct meter_usage_event {
	const char *id;          /* idempotency key; NULL: a new UUIDv4 */
	const char *source;      /* NULL: opts.source */
	const char *type;        /* NULL: "com.meterd.usage" */
	int64_t time_us;         /* when the call happened, epoch microseconds; 0: now */
	const char *tenant_id;   /* required */
	const char *user_id;
	const char *api_key_id;
	const char *provider;    /* [a-z0-9_.-]{1,64}: openai, anthropic, gemini, ... */
	const char *model;       /* [A-Za-z0-9._:@+/-]{1,128} */
	const char *operation;   /* required, [a-z0-9_.-]{1,64}: chat, embedding, ... */
	int64_t input_tokens;    /* includes cached input tokens */
	int64_t output_tokens;   /* includes reasoning tokens */
	int64_t cache_read_input_tokens;
	int64_t reasoning_output_tokens;
	int64_t requests;        /* 0: 1 (the default), unless no_request is set */
	int no_request;          /* send requests = 0 (an event that is not a call) */
	const meter_unit_t *units;
	size_t units_count;      /* at most 16 */
	const char *cost;        /* decimal USD string such as "0.0042" (max 12 decimals) */
	const char *endpoint;
	const char *method;
	int status_code;         /* 100..599; 0: not given */
	int64_t latency_ms;      /* 1..86400000; 0: not given */
	const char *workflow_id;
	const char *execution_id;
	const char *metadata_json; /* a JSON object as text, at most 4096 bytes compact */
} meter_event_t;

/* Build the event and queue it for delivery to the events topic, key =
 * tenant_id. On success returns METER_OK and copies the event id (the one
 * given or the generated UUIDv4) to id_out (if id_out_size > 0; 37 bytes fit
 * a UUID, METER_ID_MAX + 1 any id). Delivery happens later: failures are
 * reported to opts.on_delivery and counted in meter_stats(). On error returns
 * a METER_ERR_* code with a one-line reason in errstr: METER_ERR_INVALID
 * for an event the worker would reject (nothing is sent), METER_ERR_TIMEOUT
 * when the local queue stayed full for opts.emit_timeout_ms. ev is borrowed. */
int meter_emit(meter_t *m, const meter_event_t *ev, char *id_out, size_t id_out_size,
	       char *errstr, size_t errstr_size);

/* Queue a pre-built event (json[0..len), no NUL needed; copied) with key
 * tenant_key. A NULL tenant_key is taken from the event's data.tenant_id or
 * subject. The JSON is checked only for being an object of at most
 * METER_EVENT_MAX_BYTES; the worker validates the rest (and dead-letters
 * what it rejects). Returns as meter_emit(). */
int meter_emit_json(meter_t *m, const char *tenant_key, const char *json, size_t len,
		    char *errstr, size_t errstr_size);

/* ---- check ---------------------------------------------------------------------- */

typedef struct meter_decision {
	int allowed;               /* 1: go ahead; 0: blocked (the fields below say why) */
	int ready;                 /* the reader had caught up when this was answered */
	/* Only when blocked: the blocking flag. */
	char subject[METER_SUBJECT_MAX + 1];  /* "tenant/acme", "user/acme/u-1", "key/acme/k-9" */
	char subject_type[8];      /* tenant, user or key */
	char metric[65];           /* requests, tokens, cost, ... ("" for some manual flags) */
	char period[METER_PERIOD_MAX + 1]; /* day, month, rolling30 */
	char limit[40];            /* decimal digits, as published ("" when absent) */
	char used[40];             /* idem; pico-USD for metric "cost" */
	int64_t until;             /* epoch seconds when it ends; 0 = none (manual) */
	int64_t retry_after_seconds; /* until - now rounded up; 0 when there is no until */
	int manual;                /* an operator's suspension */
	char reason[256];          /* human-readable, UTF-8, may be truncated */
} meter_decision_t;

/* May this tenant (and user, and API key; either may be NULL) call a model
 * now? Looks up tenant/<tenant>, user/<tenant>/<user> and key/<tenant>/<key>.
 * Returns METER_OK (allowed) or METER_BLOCKED when one of them has state
 * "blocked" and no until, or until > now; with several, out describes the
 * one that lasts longest. Answers from what has been read so far even
 * before the reader has caught up (out->ready says so). out may be NULL.
 * Returns METER_ERR_INVALID for a missing or over-long id and
 * METER_ERR_DISABLED without check; out->allowed is then 1 (fail open is
 * the caller's decision to make, not ours). Takes well under a microsecond. */
int meter_check(meter_t *m, const char *tenant, const char *user, const char *key,
		meter_decision_t *out);

/* ---- remaining amounts and estimates (opts.follow_rollups) ------------------- */

#define METER_UNLIMITED (-1) /* no limit applies, or none is known yet */

/* The remaining amounts of a tenant, user and key in their current periods,
 * from the latest usage.rollups records. Advisory: the records follow the
 * counted usage by meterd's batch delay (100 ms by default, more under
 * load or while meterd is down), and calls in flight are not in them yet. */
typedef struct meter_remaining {
	/* The smallest remaining amount over the tenant, user and key and over
	 * their current day and month, for each metric: max(0, limit - used),
	 * or METER_UNLIMITED when no limit of that metric applies to any of them
	 * or no current-period record has been read (see known). */
	int64_t requests;
	int64_t tokens;
	int64_t requests_limit;    /* the limit that minimum comes from; -1 with it */
	int64_t tokens_limit;
	int64_t requests_reset;    /* epoch seconds when that limit's period ends; 0 with -1 */
	int64_t tokens_reset;
	int64_t reset;             /* the earlier of the two (0: neither) */
	char requests_subject[METER_SUBJECT_MAX + 1]; /* "user/acme/u-1"; "" with -1 */
	char tokens_subject[METER_SUBJECT_MAX + 1];
	/* "day" or "month" (a rollup's), or while a flag blocks that metric
	 * the flag's period, which may be "rolling30"; "" with -1. */
	char requests_period[METER_PERIOD_MAX + 1];
	char tokens_period[METER_PERIOD_MAX + 1];
	int known;                 /* current-period records found (0..6: 3 subjects x 2) */
	int64_t as_of;             /* epoch seconds of the oldest record used (0: none) */
	int64_t checked_at;        /* epoch seconds of the answer (the clock) */
	int over_estimate;         /* 1: the estimate exceeds a remaining amount */
} meter_remaining_t;

/* meter_check() plus an estimate: may this tenant (user, key) make a call
 * of about est_requests requests and est_tokens tokens now? Blocked
 * (METER_BLOCKED, out->allowed = 0) when a flag blocks, exactly as
 * meter_check(), or when the estimate exceeds the remaining requests or
 * tokens of a current-period limit of the tenant, the user or the key (a
 * limit of 50 requests with 49 used allows an estimate of 1, not of 2).
 * When the estimate blocks, out describes that limit as a flag would
 * (subject, metric, period, limit, used, until = the end of its period,
 * retry_after_seconds, reason; manual 0), and rem->over_estimate is 1; with
 * several, the one that lasts longest. A flag takes precedence in out.
 * An estimate of 0 never blocks: pass 0, 0 to read the remaining amounts.
 * rem (may be NULL) receives the remaining amounts; a flag on requests or
 * tokens sets that metric's remaining to 0. Periods are taken from the
 * records themselves (starts_at <= now < ends_at, now from opts.clock):
 * records of past periods and "closed" records are ignored, so on a new
 * day the day's amounts are unknown until its first usage is counted.
 * Returns as meter_check(), METER_ERR_INVALID for a negative estimate,
 * and METER_ERR_DISABLED without opts.follow_rollups (out->allowed is 1).
 * Thread-safe; no network: meter_check() plus up to six more lookups. */
int meter_check_estimate(meter_t *m, const char *tenant, const char *user, const char *key,
			 int64_t est_requests, int64_t est_tokens, meter_decision_t *out,
			 meter_remaining_t *rem);

/* Format the rate-limit headers of an answer into buf as "Name: value\r\n"
 * lines (d and rem from one meter_check_estimate() call; d may be NULL):
 *
 *   X-RateLimit-Limit-Requests: 50          for each metric with a limit
 *   X-RateLimit-Remaining-Requests: 3
 *   X-RateLimit-Reset-Requests: 35091       seconds until its period ends
 *   X-RateLimit-Limit-Tokens: 100000
 *   X-RateLimit-Remaining-Tokens: 1500
 *   X-RateLimit-Reset-Tokens: 35091
 *   X-RateLimit-Reset: 35091                blocked: retry_after_seconds;
 *                                           else the earlier metric reset
 *   Retry-After: 35091                      only when blocked with an until
 *
 * Metrics with METER_UNLIMITED are left out (no header: no known limit).
 * Returns the length written (without the NUL), 0 when there is nothing
 * to say, or METER_ERR_INVALID when buf is too small (buf is then "");
 * 512 bytes always suffice. */
int meter_format_headers(const meter_decision_t *d, const meter_remaining_t *rem, char *buf,
			 size_t size);

/* ---- readiness ------------------------------------------------------------------ */

/* 1 once the reader has read every partition of the limits topic (and of
 * the rollups topic with opts.follow_rollups) up to the end offsets it saw
 * when it started (or found the topic absent), else 0. */
int meter_ready(meter_t *m);

/* Wait up to timeout_ms (< 0: forever) for meter_ready(). Returns 1 when
 * ready, 0 on timeout, METER_ERR_DISABLED without check. */
int meter_wait_ready(meter_t *m, int timeout_ms);

/* ---- stats ---------------------------------------------------------------------- */

typedef struct meter_stats {
	uint64_t emitted;          /* events queued by meter_emit/meter_emit_json */
	uint64_t delivered;        /* acknowledged by the brokers */
	uint64_t delivery_failed;  /* given up (reported to on_delivery) */
	uint64_t emit_invalid;     /* refused by local validation */
	uint64_t emit_timeouts;    /* refused because the queue stayed full */
	uint64_t emit_errors;      /* other produce errors */
	uint64_t flags_read;       /* messages read from the limits topic */
	uint64_t flags_malformed;  /* values ignored as malformed */
	uint64_t flags_stale;      /* values ignored as older than one from another partition */
	uint64_t subjects;         /* keys held (any state) */
	uint64_t blocked;          /* keys whose latest state is blocked (until not considered) */
	uint64_t reader_errors;    /* consumer and metadata errors (see last_error) */
	int32_t partitions;        /* partitions of the limits topic being read */
	int ready;
	char last_error[256];      /* the latest error of either side, "" if none */
	/* Added in 0.2: the rollups topic (opts.follow_rollups). */
	uint64_t rollups_read;      /* messages read from the rollups topic */
	uint64_t rollups_malformed; /* keys or values ignored as malformed */
	uint64_t rollups_stale;     /* values ignored as older than one from another partition */
	uint64_t rollup_slots;      /* subject-period pairs held ("tenant/acme/day") */
	int32_t rollup_partitions;  /* partitions of the rollups topic being read */
} meter_stats_t;

/* Snapshot of the counters (each one exact, not all taken at one instant). */
void meter_stats(meter_t *m, meter_stats_t *out);

#ifdef __cplusplus
}
#endif

#endif
