/* reader.c - the background reader of the limits topic (and, with
 * opts.follow_rollups, of the rollups topic).
 *
 * Reads every partition of usage.limits from the beginning and feeds the
 * flag table (table.c) in batches; the latest value per key wins, a null
 * value (tombstone) deletes the key. usage.rollups is read the same way
 * onto the same queue, into the rollup table (rollup.c). No consumer group: librdkafka 2.0's
 * rd_kafka_assign() refuses to work without a group.id ("Local: Unknown
 * group"), so the partitions are started one by one onto one queue with the
 * simple consumer API (rd_kafka_consume_start_queue), which needs no group,
 * commits nothing and joins nothing. Metadata is re-read every
 * metadata_refresh_ms to start partitions added later.
 *
 * Ready: for each topic read, every partition known at the first successful
 * metadata has been read up to the end offset it had then (or reported end
 * of partition), or the topic does not exist.
 */
#include "meter_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX 1000
#define METADATA_TIMEOUT_MS 2000
#define RETRY_MS 1000

/* ---- the reader thread --------------------------------------------------------------- */

struct part {
	int64_t next;   /* next offset to read */
	int64_t target; /* end offset at start; -1: unknown (wait for EOF) */
	int caught_up;
	int initial;    /* counts for readiness */
};

/* One topic being read. */
struct rstate {
	const char *name;
	rd_kafka_topic_t *rkt;
	atomic_int *partitions_stat;
	int rollups;     /* the rollups topic (else the limits topic) */
	struct part *parts;
	int n;           /* partitions started: 0 .. n-1 */
	int initialized; /* metadata seen and all its partitions started */
};

static void set_ready(meter_t *m)
{
	pthread_mutex_lock(&m->ready_lock);
	atomic_store(&m->ready, 1);
	pthread_cond_broadcast(&m->ready_cond);
	pthread_mutex_unlock(&m->ready_lock);
}

static void reader_error(meter_t *m, const char *topic, const char *what, const char *why)
{
	atomic_fetch_add(&m->reader_errors, 1);
	meter__set_last_error(m, "%s %s: %s", topic, what, why);
}

/* Start partitions that metadata shows and we do not read yet. Returns 0, or
 * -1 when metadata could not be had. */
static int refresh(meter_t *m, struct rstate *st)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int cnt = 0;

	err = rd_kafka_metadata(m->cons, 0, st->rkt, &md, METADATA_TIMEOUT_MS);
	if (err) {
		reader_error(m, st->name, "metadata", rd_kafka_err2str(err));
		return -1;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (strcmp(t->topic, st->name) != 0)
			continue;
		if (t->err && t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
			reader_error(m, st->name, "metadata", rd_kafka_err2str(t->err));
			rd_kafka_metadata_destroy(md);
			return -1;
		}
		cnt = t->err ? 0 : t->partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	if (cnt > st->n) {
		struct part *p = realloc(st->parts, (size_t)cnt * sizeof(*p));
		if (!p) {
			reader_error(m, st->name, "partitions", "out of memory");
			return -1;
		}
		st->parts = p;
		for (; st->n < cnt; st->n++) {
			struct part *pp = &p[st->n];
			int64_t lo = 0, hi = 0;
			memset(pp, 0, sizeof(*pp));
			pp->target = -1;
			/* Found before the reader is ready: it must be read to be. */
			pp->initial = !atomic_load(&m->ready);
			if (pp->initial) {
				err = rd_kafka_query_watermark_offsets(m->cons, st->name,
								       st->n, &lo, &hi,
								       METADATA_TIMEOUT_MS);
				if (!err) {
					pp->target = hi;
					pp->caught_up = hi <= lo;
				}
			}
			if (rd_kafka_consume_start_queue(st->rkt, st->n,
							 RD_KAFKA_OFFSET_BEGINNING,
							 m->cons_queue) != 0) {
				reader_error(m, st->name, "start partition",
					     rd_kafka_err2str(rd_kafka_last_error()));
				break; /* retried at the next refresh */
			}
		}
		atomic_store(st->partitions_stat, st->n);
	}
	if (st->n >= cnt) /* every partition there is, is being read */
		st->initialized = 1;
	return 0;
}

static void check_ready(meter_t *m, const struct rstate *st, int nst)
{
	if (atomic_load(&m->ready))
		return;
	for (int t = 0; t < nst; t++) {
		if (!st[t].initialized)
			return;
		for (int i = 0; i < st[t].n; i++)
			if (st[t].parts[i].initial && !st[t].parts[i].caught_up)
				return;
	}
	set_ready(m);
}

/* The topic a message comes from (NULL: neither, which cannot happen). */
static struct rstate *topic_of(struct rstate *st, int nst, const rd_kafka_message_t *msg)
{
	for (int t = 0; t < nst; t++)
		if (msg->rkt == st[t].rkt)
			return &st[t];
	if (msg->rkt) {
		const char *name = rd_kafka_topic_name(msg->rkt);
		for (int t = 0; t < nst; t++)
			if (!strcmp(name, st[t].name))
				return &st[t];
	}
	return NULL;
}

/* Turn one batch of messages into records, then apply them. */
static void handle(meter_t *m, struct rstate *st, int nst, rd_kafka_message_t **msgs, size_t cnt,
		   struct meter_flag **recs, struct meter_rollup **rrecs)
{
	size_t nrec = 0, nroll = 0, stale;
	char why[256];

	for (size_t i = 0; i < cnt; i++) {
		rd_kafka_message_t *msg = msgs[i];
		struct rstate *t = topic_of(st, nst, msg);
		struct part *p = t && msg->partition >= 0 && msg->partition < t->n
					 ? &t->parts[msg->partition]
					 : NULL;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p) {
				p->next = msg->offset;
				p->caught_up = 1;
			}
		} else if (msg->err || !t) {
			reader_error(m, t ? t->name : "?", "consume",
				     msg->err ? rd_kafka_message_errstr(msg) : "unknown topic");
		} else {
			int64_t ts = rd_kafka_message_timestamp(msg, NULL);
			int bad;
			if (p) {
				p->next = msg->offset + 1;
				if (p->target >= 0 && p->next >= p->target)
					p->caught_up = 1;
			}
			if (t->rollups) {
				atomic_fetch_add(&m->rollups_read, 1);
				bad = meter__parse_rollup(msg->key, msg->key_len, msg->payload,
							  msg->len, msg->partition, ts,
							  &rrecs[nroll], why, sizeof(why));
				if (!bad)
					nroll++;
				else
					atomic_fetch_add(&m->rollups_malformed, 1);
			} else {
				atomic_fetch_add(&m->flags_read, 1);
				bad = meter__parse_flag(msg->key, msg->key_len, msg->payload,
							msg->len, msg->partition, ts, &recs[nrec],
							why, sizeof(why));
				if (!bad)
					nrec++;
				else
					atomic_fetch_add(&m->flags_malformed, 1);
			}
			if (bad)
				meter__set_last_error(m, "%s [%d] offset %lld: malformed %s: %s",
						      t->name, (int)msg->partition,
						      (long long)msg->offset,
						      t->rollups ? "rollup" : "flag", why);
		}
		rd_kafka_message_destroy(msg);
	}
	stale = meter__table_apply(m, recs, nrec);
	if (stale)
		atomic_fetch_add(&m->flags_stale, stale);
	if (nroll && (stale = meter__rollups_apply(m, rrecs, nroll)))
		atomic_fetch_add(&m->rollups_stale, stale);
}

static void *reader_main(void *arg)
{
	meter_t *m = arg;
	struct rstate st[2] = {
		{.name = m->limits_topic, .rkt = m->cons_topic, .partitions_stat = &m->partitions},
		{.name = m->rollups_topic, .rkt = m->roll_topic,
		 .partitions_stat = &m->rollup_partitions, .rollups = 1},
	};
	int nst = m->roll_topic ? 2 : 1;
	rd_kafka_message_t **msgs = malloc(BATCH_MAX * sizeof(*msgs));
	struct meter_flag **recs = malloc(BATCH_MAX * sizeof(*recs));
	struct meter_rollup **rrecs = malloc(BATCH_MAX * sizeof(*rrecs));
	int64_t next_md = 0;

	if (!msgs || !recs || !rrecs) {
		reader_error(m, m->limits_topic, "reader", "out of memory");
		goto out;
	}
	while (!atomic_load(&m->reader_stop)) {
		int64_t now = meter__mono_ms();
		if (now >= next_md) {
			int ok = 1;
			for (int t = 0; t < nst; t++)
				ok &= refresh(m, &st[t]) == 0 && st[t].n > 0;
			int wait = ok ? m->metadata_refresh_ms : RETRY_MS;
			if (wait > m->metadata_refresh_ms)
				wait = m->metadata_refresh_ms;
			next_md = meter__mono_ms() + wait;
			check_ready(m, st, nst);
		}
		rd_kafka_poll(m->cons, 0); /* error callbacks */
		ssize_t cnt = rd_kafka_consume_batch_queue(m->cons_queue, 100, msgs, BATCH_MAX);
		if (cnt > 0) {
			handle(m, st, nst, msgs, (size_t)cnt, recs, rrecs);
			check_ready(m, st, nst);
		}
	}
	for (int t = 0; t < nst; t++)
		for (int i = 0; i < st[t].n; i++)
			rd_kafka_consume_stop(st[t].rkt, i);
out:
	for (int t = 0; t < 2; t++)
		free(st[t].parts);
	free(msgs);
	free(recs);
	free(rrecs);
	return NULL;
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	meter_t *m = opaque;
	(void)rk;
	(void)err;
	reader_error(m, m->limits_topic, "consumer", reason);
}

int meter__reader_start(meter_t *m, const char *brokers, const meter_opts_t *o, char *errstr,
			size_t es)
{
	static const char *const defaults[][2] = {
		{"client.id", "libmeter-flags"},
		{"enable.partition.eof", "true"},
		{"auto.offset.reset", "earliest"}, /* if the log start moves under us */
		{"fetch.wait.max.ms", "100"},      /* flags are small and urgent */
		{"queued.max.messages.kbytes", "8192"}, /* not 64 MB of prefetch */
	};
	rd_kafka_conf_t *conf = NULL;
	char why[512];
	int rc;

	if (pthread_mutex_init(&m->ready_lock, NULL) != 0)
		return meter__fail(errstr, es, METER_ERR_NOMEM, "cannot create a mutex");
	pthread_condattr_t cattr;
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC); /* waits immune to clock steps */
	rc = pthread_cond_init(&m->ready_cond, &cattr);
	pthread_condattr_destroy(&cattr);
	if (rc != 0) {
		pthread_mutex_destroy(&m->ready_lock);
		return meter__fail(errstr, es, METER_ERR_NOMEM, "cannot create a condition");
	}
	m->ready_sync_ok = 1;
	if (meter__table_init(m) != 0 || (m->follow_rollups && meter__rollups_init(m) != 0))
		return meter__fail(errstr, es, METER_ERR_NOMEM, "flag table: out of memory");
	conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof(why))) {
		rc = meter__fail(errstr, es, METER_ERR_INVALID, "brokers: %s", why);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], why, sizeof(why))) {
			rc = meter__fail(errstr, es, METER_ERR_KAFKA, "consumer %s: %s",
					 defaults[i][0], why);
			goto fail;
		}
	if ((rc = meter__apply_props(conf, o, 0, errstr, es)) != METER_OK)
		goto fail;
	rd_kafka_conf_set_error_cb(conf, on_consumer_error);
	rd_kafka_conf_set_opaque(conf, m);
	if (!(m->cons = rd_kafka_new(RD_KAFKA_CONSUMER, conf, why, sizeof(why)))) {
		rc = meter__fail(errstr, es, METER_ERR_KAFKA, "consumer: %s", why);
		goto fail;
	}
	conf = NULL; /* now owned by m->cons */
	if (!(m->cons_queue = rd_kafka_queue_new(m->cons)) ||
	    !(m->cons_topic = rd_kafka_topic_new(m->cons, m->limits_topic, NULL)))
		return meter__fail(errstr, es, METER_ERR_KAFKA, "topic %s: %s", m->limits_topic,
				   rd_kafka_err2str(rd_kafka_last_error()));
	if (m->follow_rollups && !(m->roll_topic = rd_kafka_topic_new(m->cons, m->rollups_topic,
								       NULL)))
		return meter__fail(errstr, es, METER_ERR_KAFKA, "topic %s: %s", m->rollups_topic,
				   rd_kafka_err2str(rd_kafka_last_error()));
	if (pthread_create(&m->reader, NULL, reader_main, m) != 0)
		return meter__fail(errstr, es, METER_ERR_NOMEM, "cannot start the reader thread");
	m->reader_started = 1;
	return METER_OK;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	return rc;
}

void meter__reader_stop(meter_t *m)
{
	if (m->reader_started) {
		atomic_store(&m->reader_stop, 1);
		rd_kafka_queue_yield(m->cons_queue);
		pthread_join(m->reader, NULL);
		m->reader_started = 0;
	}
	if (m->cons_queue)
		rd_kafka_queue_destroy(m->cons_queue);
	m->cons_queue = NULL;
	if (m->cons_topic)
		rd_kafka_topic_destroy(m->cons_topic);
	m->cons_topic = NULL;
	if (m->roll_topic)
		rd_kafka_topic_destroy(m->roll_topic);
	m->roll_topic = NULL;
	if (m->cons)
		rd_kafka_destroy(m->cons);
	m->cons = NULL;
	meter__rollups_free(m);
	if (m->stripes)
		meter__table_free(m);
	if (m->ready_sync_ok) {
		pthread_cond_destroy(&m->ready_cond);
		pthread_mutex_destroy(&m->ready_lock);
		m->ready_sync_ok = 0;
	}
}

/* ---- readiness ---------------------------------------------------------------------------- */

int meter_ready(meter_t *m)
{
	return m && m->cons ? atomic_load(&m->ready) : 0;
}

int meter_wait_ready(meter_t *m, int timeout_ms)
{
	struct timespec ts;
	int ready;

	if (!m || !m->cons)
		return METER_ERR_DISABLED;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (timeout_ms >= 0) {
		ts.tv_sec += timeout_ms / 1000;
		ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&m->ready_lock);
	while (!(ready = atomic_load(&m->ready))) {
		if (timeout_ms < 0)
			pthread_cond_wait(&m->ready_cond, &m->ready_lock);
		else if (pthread_cond_timedwait(&m->ready_cond, &m->ready_lock, &ts) != 0)
			break;
	}
	ready = atomic_load(&m->ready);
	pthread_mutex_unlock(&m->ready_lock);
	return ready;
}
