/* meter_int.h - libmeter internals shared by its files; not installed.
 *
 * Files: meter.c (handle, options, stats, time and random helpers), event.c
 * (event validation and building), emit.c (the producer), table.c (the flag
 * table and meter_check), flag.c (one flag value into a record), rollup.c
 * (rollup values, the rollup table, remaining amounts and estimates, the
 * rate-limit headers), reader.c (the background reader of the limits and
 * rollups topics and readiness).
 * Private functions shared between files are named meter__*.
 */
#ifndef METER_INT_H
#define METER_INT_H

#include "meter.h"

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#define METER_DEFAULT_EVENTS_TOPIC "usage.events"
#define METER_DEFAULT_LIMITS_TOPIC "usage.limits"
#define METER_DEFAULT_ROLLUPS_TOPIC "usage.rollups"
#define METER_DEFAULT_TYPE "com.meterd.usage"
#define METER_DEFAULT_EMIT_TIMEOUT_MS 50
#define METER_DEFAULT_FLUSH_TIMEOUT_MS 5000
#define METER_DEFAULT_METADATA_REFRESH_MS 10000
#define METER_KEY_MAX 512 /* longest flag key kept; longer ones are malformed */

/* ---- the flag table (table.c) -------------------------------------------- */

enum meter_flag_state { MF_DELETED = 0, MF_OK = 1, MF_BLOCKED = 2 };

/* One flag, immutable once in the table (an update replaces the record).
 * buf holds the NUL-terminated key and, for MF_BLOCKED, the strings at the
 * given offsets into buf (0 = ""). */
struct meter_flag {
	int64_t version_us;   /* updated_at, or the message timestamp */
	int64_t until_us;     /* 0: no until */
	int32_t partition;
	uint8_t state;        /* enum meter_flag_state */
	uint8_t manual;
	uint16_t key_len;
	uint16_t off_type, off_metric, off_period, off_limit, off_used, off_reason;
	char buf[];
};

struct meter_slot {
	uint64_t hash;
	struct meter_flag *f; /* NULL: empty */
};

struct meter_table {
	struct meter_slot *slots;
	size_t cap;           /* power of two */
	size_t count;         /* keys held */
	size_t blocked;       /* of which MF_BLOCKED */
};

/* A reader-writer lock per stripe; a reader takes only its thread's stripe,
 * the single writer (the reader thread) takes them all. */
struct meter_stripe {
	_Alignas(64) pthread_rwlock_t lock;
};
#define METER_STRIPES 64

/* ---- the rollup table (rollup.c) ------------------------------------------- */

/* What a rollup says about one metric. */
#define MR_UNLIMITED (-1) /* "limit": null */
#define MR_ABSENT (-2)    /* no entry: no limit of that metric applies */
enum meter_rollup_metric { MR_REQUESTS = 0, MR_TOKENS = 1, MR_METRICS = 2 };

/* The latest rollup of one subject and period kind ("tenant/acme/day"),
 * immutable once in the table. start is the period start from the record
 * key ("2026-11-23", "2026-11"): a later start replaces an earlier one, so
 * the slot follows the current period and late records of past periods are
 * not taken. A tombstone is kept as a record with deleted set. */
struct meter_rollup {
	int64_t version_us;        /* updated_at, or the message timestamp */
	int64_t starts_us, ends_us;
	int64_t limit[MR_METRICS];  /* >= 0, MR_UNLIMITED or MR_ABSENT */
	int64_t left[MR_METRICS];   /* remaining (>= 0) when limit >= 0 */
	int32_t partition;
	uint8_t closed;
	uint8_t deleted;
	uint16_t key_len;          /* of key: "<subject>/<period>" */
	uint16_t subject_len;      /* of the "<subject>" part of key */
	char start[11];            /* "YYYY-MM-DD" or "YYYY-MM" */
	char key[];
};

struct meter_rslot {
	uint64_t hash;
	struct meter_rollup *r; /* NULL: empty */
};

struct meter_rtable {
	struct meter_rslot *slots;
	size_t cap;   /* power of two */
	size_t count; /* keys held */
};

/* ---- the handle ------------------------------------------------------------ */

struct meter {
	char *events_topic, *limits_topic, *rollups_topic, *source;
	int follow_rollups;
	int emit_timeout_ms, flush_timeout_ms, metadata_refresh_ms;
	meter_delivery_cb_t *on_delivery;
	void *delivery_opaque;
	meter_clock_cb_t *clock;
	void *clock_opaque;
	uint64_t hash_seed;

	/* random bytes for UUIDs */
	pthread_mutex_t rnd_lock;
	int rnd_lock_ok;
	unsigned char rnd[512];
	size_t rnd_used;

	/* emit */
	rd_kafka_t *prod;
	rd_kafka_topic_t *prod_topic;
	pthread_t poller;
	int poller_started;
	atomic_int poller_stop;

	/* check */
	struct meter_stripe *stripes;
	int stripes_init;            /* how many locks were initialised */
	struct meter_table table;
	rd_kafka_t *cons;
	rd_kafka_topic_t *cons_topic;
	rd_kafka_topic_t *roll_topic; /* with follow_rollups */
	struct meter_rtable rtable;    /* idem; under the same stripe locks */
	rd_kafka_queue_t *cons_queue;
	pthread_t reader;
	int reader_started;
	atomic_int reader_stop;
	atomic_int ready;
	pthread_mutex_t ready_lock;
	pthread_cond_t ready_cond;
	int ready_sync_ok;

	/* stats */
	atomic_uint_fast64_t emitted, delivered, delivery_failed, emit_invalid, emit_timeouts,
		emit_errors, flags_read, flags_malformed, flags_stale, reader_errors, rollups_read,
		rollups_malformed, rollups_stale;
	atomic_int partitions, rollup_partitions;
	pthread_mutex_t err_lock;
	int err_lock_ok;
	char last_error[256];
};

/* meter.c */
int meter__fail(char *errstr, size_t errstr_size, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void meter__set_last_error(meter_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int64_t meter__now_us(const meter_t *m);
int64_t meter__mono_ms(void);
int meter__random(meter_t *m, void *out, size_t n);
int meter__parse_rfc3339(const char *s, size_t len, int64_t *out_us);
void meter__format_time(int64_t us, char *out, size_t out_size);
int meter__apply_props(rd_kafka_conf_t *conf, const meter_opts_t *o, int producer,
		       char *errstr, size_t errstr_size);

/* event.c */
int meter__event_validate(const meter_event_t *ev, char *errstr, size_t errstr_size);
/* s against the id rules ([A-Za-z0-9._~:@+=-]{1,128}); field names it. */
int meter__check_id(const char *field, const char *s, char *errstr, size_t errstr_size);
void meter__uuid4(const unsigned char b[16], char out[37]);
/* The event as a new jansson object (caller owns it) with id as its id;
 * ev must have passed meter__event_validate(). */
int meter__event_build(meter_t *m, const meter_event_t *ev, const char *id, json_t **out,
		       char *errstr, size_t errstr_size);

/* emit.c */
int meter__emit_start(meter_t *m, const char *brokers, const meter_opts_t *o, char *errstr,
		      size_t errstr_size);
void meter__emit_stop(meter_t *m);

/* table.c */
int meter__table_init(meter_t *m);
void meter__table_free(meter_t *m);
uint64_t meter__hash(uint64_t seed, const void *p, size_t n);
/* Apply n records (stolen: each is put in the table or freed; set to NULL)
 * under the write locks. Returns how many were stale (ignored). */
size_t meter__table_apply(meter_t *m, struct meter_flag **recs, size_t n);
/* The writer's side of the stripe locks (the flag and rollup tables share them). */
void meter__lock_all(meter_t *m);
void meter__unlock_all(meter_t *m);

/* The flag and estimate checks behind meter_check() and meter_check_estimate():
 * est NULL checks flags only (rem is then not touched). */
struct meter_estimate {
	int64_t requests, tokens;
};
int meter__check(meter_t *m, const char *tenant, const char *user, const char *key,
		 const struct meter_estimate *est, meter_decision_t *out, meter_remaining_t *rem);

/* rollup.c */
int meter__rollups_init(meter_t *m);
void meter__rollups_free(meter_t *m);
/* Parse one message of the rollups topic into a new record (caller owns it).
 * Returns 0, or -1 with why when the key or value is malformed. */
int meter__parse_rollup(const char *key, size_t key_len, const void *val, size_t val_len,
			int32_t partition, int64_t msg_ts_ms, struct meter_rollup **out, char *why,
			size_t why_size);
/* Apply n records (stolen, set to NULL) under the write locks. Returns how
 * many were stale (an older value from another partition). */
size_t meter__rollups_apply(meter_t *m, struct meter_rollup **recs, size_t n);
/* With the caller's read lock held: the remaining amounts of the subjects
 * subj[0..n) at now_us into rem, and, when out is still allowed, whether
 * the estimate exceeds them (then out describes the tightest limit). */
void meter__rollups_eval(meter_t *m, char subj[][METER_SUBJECT_MAX + 1], const size_t *len,
			 size_t n, const struct meter_estimate *est, int64_t now_us,
			 meter_decision_t *out, meter_remaining_t *rem);

/* reader.c */
int meter__reader_start(meter_t *m, const char *brokers, const meter_opts_t *o, char *errstr,
			size_t errstr_size);
void meter__reader_stop(meter_t *m);

/* flag.c */
/* Parse one message of the limits topic into a new record (caller owns it).
 * Returns 0, or -1 with why when the value is malformed. */
int meter__parse_flag(const char *key, size_t key_len, const void *val, size_t val_len,
		      int32_t partition, int64_t msg_ts_ms, struct meter_flag **out, char *why,
		      size_t why_size);

#endif
