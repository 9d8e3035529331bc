/* reader.c - the background reader of the limits topic.
 *
 * Reads every partition of usage.limits from the beginning and feeds the
 * flag table (table.c) in batches; the latest value per key wins, a null
 * value (tombstone) deletes the key. No consumer group: librdkafka 2.0's
 * rd_kafka_assign() refuses to work without a group.id ("Local: Unknown
 * group"), so the partitions are started one by one onto one queue with the
 * simple consumer API (rd_kafka_consume_start_queue), which needs no group,
 * commits nothing and joins nothing. Metadata is re-read every
 * metadata_refresh_ms to start partitions added later.
 *
 * Ready: every partition known at the first successful metadata has been
 * read up to the end offset it had then (or reported end of partition), or
 * the topic does not exist.
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

struct rstate {
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

static void reader_error(meter_t *m, const char *what, const char *why)
{
	atomic_fetch_add(&m->reader_errors, 1);
	meter__set_last_error(m, "%s %s: %s", m->limits_topic, what, why);
}

/* Start partitions that metadata shows and we do not read yet. Returns 0, or
 * -1 when metadata could not be had. */
static int refresh(meter_t *m, struct rstate *st)
{
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t err;
	int cnt = 0;

	err = rd_kafka_metadata(m->cons, 0, m->cons_topic, &md, METADATA_TIMEOUT_MS);
	if (err) {
		reader_error(m, "metadata", rd_kafka_err2str(err));
		return -1;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const struct rd_kafka_metadata_topic *t = &md->topics[i];
		if (strcmp(t->topic, m->limits_topic) != 0)
			continue;
		if (t->err && t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
			reader_error(m, "metadata", rd_kafka_err2str(t->err));
			rd_kafka_metadata_destroy(md);
			return -1;
		}
		cnt = t->err ? 0 : t->partition_cnt;
	}
	rd_kafka_metadata_destroy(md);
	if (cnt > st->n) {
		struct part *p = realloc(st->parts, (size_t)cnt * sizeof(*p));
		if (!p) {
			reader_error(m, "partitions", "out of memory");
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
				err = rd_kafka_query_watermark_offsets(m->cons, m->limits_topic,
								       st->n, &lo, &hi,
								       METADATA_TIMEOUT_MS);
				if (!err) {
					pp->target = hi;
					pp->caught_up = hi <= lo;
				}
			}
			if (rd_kafka_consume_start_queue(m->cons_topic, st->n,
							 RD_KAFKA_OFFSET_BEGINNING,
							 m->cons_queue) != 0) {
				reader_error(m, "start partition",
					     rd_kafka_err2str(rd_kafka_last_error()));
				break; /* retried at the next refresh */
			}
		}
		atomic_store(&m->partitions, st->n);
	}
	if (st->n >= cnt) /* every partition there is, is being read */
		st->initialized = 1;
	return 0;
}

static void check_ready(meter_t *m, const struct rstate *st)
{
	if (atomic_load(&m->ready) || !st->initialized)
		return;
	for (int i = 0; i < st->n; i++)
		if (st->parts[i].initial && !st->parts[i].caught_up)
			return;
	set_ready(m);
}

/* Turn one batch of messages into records, then apply them. */
static void handle(meter_t *m, struct rstate *st, rd_kafka_message_t **msgs, size_t cnt,
		   struct meter_flag **recs)
{
	size_t nrec = 0, stale;
	char why[256];

	for (size_t i = 0; i < cnt; i++) {
		rd_kafka_message_t *msg = msgs[i];
		struct part *p = msg->partition >= 0 && msg->partition < st->n
					 ? &st->parts[msg->partition]
					 : NULL;
		if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			if (p) {
				p->next = msg->offset;
				p->caught_up = 1;
			}
		} else if (msg->err) {
			reader_error(m, "consume", rd_kafka_message_errstr(msg));
		} else {
			atomic_fetch_add(&m->flags_read, 1);
			if (p) {
				p->next = msg->offset + 1;
				if (p->target >= 0 && p->next >= p->target)
					p->caught_up = 1;
			}
			if (meter__parse_flag(msg->key, msg->key_len, msg->payload, msg->len,
					      msg->partition, rd_kafka_message_timestamp(msg, NULL),
					      &recs[nrec], why, sizeof(why)) == 0) {
				nrec++;
			} else {
				atomic_fetch_add(&m->flags_malformed, 1);
				meter__set_last_error(m, "%s [%d] offset %lld: malformed flag: %s",
						      m->limits_topic, (int)msg->partition,
						      (long long)msg->offset, why);
			}
		}
		rd_kafka_message_destroy(msg);
	}
	stale = meter__table_apply(m, recs, nrec);
	if (stale)
		atomic_fetch_add(&m->flags_stale, stale);
}

static void *reader_main(void *arg)
{
	meter_t *m = arg;
	struct rstate st = {0};
	rd_kafka_message_t **msgs = malloc(BATCH_MAX * sizeof(*msgs));
	struct meter_flag **recs = malloc(BATCH_MAX * sizeof(*recs));
	int64_t next_md = 0;

	if (!msgs || !recs) {
		reader_error(m, "reader", "out of memory");
		goto out;
	}
	while (!atomic_load(&m->reader_stop)) {
		int64_t now = meter__mono_ms();
		if (now >= next_md) {
			int ok = refresh(m, &st) == 0 && st.n > 0;
			int wait = ok ? m->metadata_refresh_ms : RETRY_MS;
			if (wait > m->metadata_refresh_ms)
				wait = m->metadata_refresh_ms;
			next_md = meter__mono_ms() + wait;
			check_ready(m, &st);
		}
		rd_kafka_poll(m->cons, 0); /* error callbacks */
		ssize_t cnt = rd_kafka_consume_batch_queue(m->cons_queue, 100, msgs, BATCH_MAX);
		if (cnt > 0) {
			handle(m, &st, msgs, (size_t)cnt, recs);
			check_ready(m, &st);
		}
	}
	for (int i = 0; i < st.n; i++)
		rd_kafka_consume_stop(m->cons_topic, i);
out:
	free(st.parts);
	free(msgs);
	free(recs);
	return NULL;
}

static void on_consumer_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)rk;
	(void)err;
	reader_error(opaque, "consumer", reason);
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
	if (meter__table_init(m) != 0)
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
	if ((rc = meter__apply_props(conf, o, "consumer.", "producer.", errstr, es)) != METER_OK)
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
	if (m->cons)
		rd_kafka_destroy(m->cons);
	m->cons = NULL;
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
