/* mxd.c - see mxd.h. */
#include "mxd.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "log.h"

static struct {
	int on;
	char topic[256];
	struct mx_metric *consumed, *counted, *duplicate, *rejected, *batches, *batch_events,
		*commit_seconds, *crossings, *flags, *rollups, *dead_letters, *lag, *db_errors, *kafka_errors;
} mxd;

/* The lag of every partition, each reported by the consumer worker that has
 * it: a worker's report replaces its earlier one, so partitions it gave up
 * leave the gauge. */
struct lag_entry {
	int worker;
	char partition[16];
	int64_t lag;
};
static struct {
	pthread_mutex_t lock;
	struct lag_entry *e;
	size_t n, cap;
} lags = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0};

/* Read from the consumer's hot path without the registry lock; mirrored
 * into the counter when /metrics is rendered. */
static atomic_uint_fast64_t consumed_n;

static const double batch_bounds[] = {1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000,
				      50000, 100000};
static const double commit_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				       0.5,   1,    2.5,   5,    10,  30};

static void collect(void *opaque)
{
	(void)opaque;
	mx_set(mxd.consumed, NULL, (double)atomic_load(&consumed_n));
}

void mxd_init(struct mx_registry *r, const struct meter_config *cfg)
{
	if (!r)
		return;
	snprintf(mxd.topic, sizeof(mxd.topic), "%s", cfg->topic_events);
	mxd.consumed = mx_counter(r, "meter_events_consumed_total",
				  "Messages read from the events topic.", NULL);
	mxd.counted = mx_counter(r, "meter_events_counted_total",
				 "Valid events added to the rollups (committed).", NULL);
	mxd.duplicate = mx_counter(r, "meter_events_duplicate_total",
				   "Events recognised as duplicates (same tenant and id) and not "
				   "counted again.",
				   NULL);
	mxd.rejected = mx_counter(r, "meter_events_rejected_total",
				  "Invalid events, stored in rejected_events and sent to the "
				  "dead-letter topic, by reason.",
				  "reason");
	for (int i = 1; i < EV_REASON_COUNT; i++)
		mx_touch(mxd.rejected, MX_L(ev_reason_name((enum ev_reason)i)));
	mxd.batches = mx_counter(r, "meter_batches_total",
				 "Batches committed (one database transaction each).", NULL);
	mxd.batch_events = mx_histogram(r, "meter_batch_events",
					"Messages per committed batch.", NULL, batch_bounds,
					sizeof(batch_bounds) / sizeof(batch_bounds[0]));
	mxd.commit_seconds = mx_histogram(r, "meter_batch_commit_seconds",
					  "Time to commit one batch to PostgreSQL, in seconds.",
					  NULL, commit_bounds,
					  sizeof(commit_bounds) / sizeof(commit_bounds[0]));
	mxd.crossings = mx_counter(r, "meter_limit_crossings_total",
				   "Limits reached (a crossing recorded and its flag queued).", NULL);
	mxd.flags = mx_counter(r, "meter_flags_published_total",
			       "Flags acknowledged by the broker on the limits topic, by state.",
			       "state");
	mxd.rollups = mx_counter(r, "meter_rollups_published_total",
				 "Rollup records acknowledged by the broker on the rollups topic.", NULL);
	mx_touch(mxd.rollups, NULL);
	mxd.dead_letters = mx_counter(
		r, "meter_dead_letters_total",
		"Rejected events and their dead letters: acknowledged before their batch "
		"committed, stored pending (not acknowledged in time), or resent (a pending one "
		"acknowledged later).",
		"outcome");
	mx_touch(mxd.dead_letters, MX_L("acknowledged"));
	mx_touch(mxd.dead_letters, MX_L("pending"));
	mx_touch(mxd.dead_letters, MX_L("resent"));
	mx_touch(mxd.flags, MX_L("blocked"));
	mx_touch(mxd.flags, MX_L("ok"));
	mxd.lag = mx_gauge(r, "meter_consumer_lag",
			   "Messages of an assigned partition not yet committed: the partition's "
			   "end offset minus meterd's committed offset (librdkafka statistics, "
			   "every 5 s).",
			   "partition");
	mxd.db_errors = mx_counter(r, "meter_db_errors_total",
				   "Database failures of the consumer (the batch is dropped and "
				   "consumed again from the stored offsets).",
				   NULL);
	mxd.kafka_errors = mx_counter(r, "meter_kafka_errors_total",
				      "Errors reported by librdkafka (most are retried by it).",
				      NULL);
	mx_on_collect(r, collect, NULL);
	mxd.on = 1;
}

void mxd_consumed(void)
{
	atomic_fetch_add_explicit(&consumed_n, 1, memory_order_relaxed);
}

void mxd_batch_committed(const struct agg_stats *l, const struct agg_stats *s)
{
	if (!mxd.on)
		return;
	mx_add(mxd.counted, NULL, (double)(s->counted - l->counted));
	mx_add(mxd.duplicate, NULL, (double)(s->duplicates - l->duplicates));
	for (int i = 1; i < EV_REASON_COUNT; i++)
		if (s->rejected_by_reason[i] != l->rejected_by_reason[i])
			mx_add(mxd.rejected, MX_L(ev_reason_name((enum ev_reason)i)),
			       (double)(s->rejected_by_reason[i] - l->rejected_by_reason[i]));
	if (s->batches != l->batches) {
		mx_add(mxd.batches, NULL, (double)(s->batches - l->batches));
		mx_observe(mxd.batch_events, NULL, (double)(s->messages - l->messages));
		mx_observe(mxd.commit_seconds, NULL, s->last_commit_seconds);
	}
	mx_add(mxd.crossings, NULL, (double)(s->crossings - l->crossings));
}

void mxd_db_error(void)
{
	mx_add(mxd.db_errors, NULL, 1);
}

void mxd_kafka_error(void)
{
	mx_add(mxd.kafka_errors, NULL, 1);
}

void mxd_flags_published(int blocked, int ok)
{
	mx_add(mxd.flags, MX_L("blocked"), blocked);
	mx_add(mxd.flags, MX_L("ok"), ok);
}

void mxd_rollups_published(int n)
{
	mx_add(mxd.rollups, NULL, n);
}

void mxd_dead_letters(const char *outcome, int n)
{
	mx_add(mxd.dead_letters, MX_L(outcome), n);
}

static int64_t jint(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

/* Keep lag for (worker, partition); 0, or -1 when out of memory. */
static int lag_put(int worker, const char *partition, int64_t lag)
{
	if (lags.n == lags.cap) {
		size_t cap = lags.cap ? lags.cap * 2 : 64;
		struct lag_entry *e = realloc(lags.e, cap * sizeof(*e));
		if (!e)
			return -1;
		lags.e = e;
		lags.cap = cap;
	}
	struct lag_entry *e = &lags.e[lags.n++];
	e->worker = worker;
	snprintf(e->partition, sizeof(e->partition), "%s", partition);
	e->lag = lag;
	return 0;
}

/* librdkafka statistics (JSON, every statistics.interval.ms, on the
 * worker's poll thread): the lag of the events topic's partitions assigned
 * to that worker. Lag is librdkafka's consumer_lag (end offset minus the
 * committed offset, which meterd commits after each batch); before the
 * first commit of an assignment it is unknown there, and the end offset
 * minus the fetch position stands in. */
void mxd_kafka_stats(int worker, const char *json, size_t json_len)
{
	if (!mxd.on)
		return;
	json_error_t err;
	json_t *doc = json_loadb(json, json_len, 0, &err);
	if (!doc)
		return;
	json_t *topic = json_object_get(json_object_get(doc, "topics"), mxd.topic);
	json_t *partitions = json_object_get(topic, "partitions");
	pthread_mutex_lock(&lags.lock);
	size_t kept = 0;
	for (size_t i = 0; i < lags.n; i++)
		if (lags.e[i].worker != worker)
			lags.e[kept++] = lags.e[i];
	lags.n = kept;
	const char *key;
	json_t *p;
	json_object_foreach(partitions, key, p)
	{
		if (strcmp(key, "-1") == 0)
			continue; /* librdkafka's internal unassigned partition */
		const char *state = json_string_value(json_object_get(p, "fetch_state"));
		if (!state || strcmp(state, "none") == 0 || strcmp(state, "stopped") == 0 ||
		    strcmp(state, "stopping") == 0)
			continue; /* not assigned to this worker */
		int64_t lag = jint(p, "consumer_lag");
		if (lag < 0) {
			int64_t hi = jint(p, "hi_offset"), next = jint(p, "next_offset");
			if (hi < 0 || next < 0)
				continue;
			lag = hi > next ? hi - next : 0;
		}
		if (lag_put(worker, key, lag) != 0)
			break;
	}
	mx_clear(mxd.lag);
	for (size_t i = 0; i < lags.n; i++)
		mx_set(mxd.lag, MX_L(lags.e[i].partition), (double)lags.e[i].lag);
	pthread_mutex_unlock(&lags.lock);
	json_decref(doc);
}

int mxd_kafka_conf(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
	if (!mxd.on)
		return 0;
	if (rd_kafka_conf_set(conf, "statistics.interval.ms", "5000", errstr, errstr_size) !=
	    RD_KAFKA_CONF_OK)
		return -1;
	return 0;
}
