/* aggregator.h - turn a batch of Kafka messages into one PostgreSQL
 * transaction: validate, dedupe, log events, add to rollups, store rejects,
 * and advance the stored offsets of the batch's partitions - all or nothing.
 *
 * The aggregator also owns the consumer's view of the stored offsets: the
 * offset each partition's next batch must start from. A commit only succeeds
 * if the stored offsets are still the ones this process last saw (fencing a
 * consumer that lost its partitions without noticing).
 */
#ifndef METER_AGGREGATOR_H
#define METER_AGGREGATOR_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "event.h"

struct agg;

enum agg_result {
	AGG_OK = 0,
	AGG_DB_DOWN,  /* connection lost: reconnect, reload offsets, redo */
	AGG_RETRY,    /* transient conflict (deadlock, serialization): redo */
	AGG_FENCED,   /* another consumer committed one of our partitions */
	AGG_FAILED    /* any other database error (logged with detail) */
};

struct agg_stats {
	uint64_t batches;
	uint64_t messages;
	uint64_t counted;
	uint64_t duplicates;
	uint64_t rejected;
	uint64_t rejected_by_reason[EV_REASON_COUNT];
	uint64_t skipped;      /* below the stored offset: already counted */
	uint64_t crossings;    /* limits reached (blocks recorded) */
	uint64_t db_errors;
	double last_commit_seconds;
};

/* What agg_add did with a message. */
enum agg_added {
	AGG_ADDED = 0,    /* a valid event */
	AGG_ADDED_REJECT, /* an invalid one, stored with its reason */
	AGG_SKIPPED,      /* below the stored offset: already counted */
	AGG_ADD_FAILED    /* out of memory: discard the batch and re-read */
};

/* A rejected message, for the dead-letter topic. */
struct agg_reject {
	int32_t partition;
	int64_t offset;
	const void *key;
	size_t key_len;
	const void *payload;     /* possibly truncated to the stored size */
	size_t payload_len;
	size_t payload_size;     /* original size */
	const struct ev_error *err;
};

/* Create an aggregator for topic (borrowed config values are copied).
 * Does not connect; call agg_connect(). NULL on allocation failure. */
struct agg *agg_new(const struct meter_config *cfg, const char *topic);
/* The event limits of cfg: size, lateness and future bounds (now_us 0). */
void agg_limits_from_config(struct ev_limits *out, const struct meter_config *cfg);
/* Take these limits for the messages added from now on (a reload changes
 * only the reloadable ones). lim is copied. */
void agg_reconfigure(struct agg *a, const struct ev_limits *lim);
/* agg_destroy(NULL) is a no-op; closes the connection. */
void agg_destroy(struct agg *a);

/* (Re)connect to PostgreSQL and prepare the session. 0 or -1 with errstr. */
int agg_connect(struct agg *a, char *errstr, size_t errstr_size);
int agg_connected(const struct agg *a);

/* Read the stored offsets of parts[0..n) into out_next[i] (-1: none stored)
 * and remember them as the expected offsets. 0, or -1 with errstr (the
 * connection is dropped if broken). */
int agg_load_offsets(struct agg *a, const int32_t *parts, int n, int64_t *out_next,
		     char *errstr, size_t errstr_size);
/* Forget the expected offset of a partition (on revoke). */
void agg_forget_partition(struct agg *a, int32_t partition);

/* Validate one message and add it to the pending batch. Payload and key are
 * copied. Messages below the stored offset of their partition are skipped. */
enum agg_added agg_add(struct agg *a, int32_t partition, int64_t offset, const void *key,
		       size_t key_len, const void *payload, size_t len, int64_t now_us);

size_t agg_pending(const struct agg *a);
size_t agg_pending_rejects(const struct agg *a);
/* Call fn for each rejected message of the pending batch. */
void agg_each_reject(const struct agg *a, void (*fn)(const struct agg_reject *, void *),
		     void *opaque);
/* Whether the pending batch's rejects are all on the dead-letter topic
 * (acknowledged by the broker). Stored with them as rejected_events.
 * dlq_pending, so that the rollup publisher's thread sends the others again;
 * cleared with the batch. */
void agg_set_rejects_sent(struct agg *a, int sent);
/* Drop the pending batch (nothing stored, offsets not advanced). */
void agg_discard(struct agg *a);

/* Commit the pending batch as one transaction. On AGG_OK the batch is
 * cleared and the expected offsets advance; on any other result the batch is
 * kept, nothing is stored, and errstr says why. The caller decides whether to
 * retry it or discard it. */
enum agg_result agg_commit(struct agg *a, char *errstr, size_t errstr_size);

/* Offsets to report to Kafka (for lag monitoring) after a commit: fills up to
 * max (partition, next offset) pairs of the last committed batch. */
int agg_last_committed(const struct agg *a, int32_t *parts, int64_t *next, int max);

/* Limit crossings recorded by the last committed batch (their flags are in
 * the outbox, to be published). */
uint64_t agg_last_crossings(const struct agg *a);

const struct agg_stats *agg_get_stats(const struct agg *a);

#endif
