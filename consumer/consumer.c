/* consumer.c - see consumer.h.
 *
 * One worker: one thread, one member of the consumer group. The loop polls
 * messages into the aggregator's pending batch and commits it when it holds
 * batch-max messages or batch-wait has passed.
 * Whenever the database fails, the batch is dropped (nothing of it was
 * stored), the assigned partitions are paused, and once the database answers
 * again they are re-assigned at the offsets stored in PostgreSQL: that is the
 * only place the consumer ever takes a start position from.
 */
#include "consumer.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggregator.h"
#include "clock.h"
#include "dlq.h"
#include "failpoint.h"
#include "kafka.h"
#include "log.h"
#include "mxd.h"
#include "publisher.h"
#include "rollups.h"

/* Catching up, a batch may wait ten times batch-wait, and at least this
 * long (ms): a worker fills a 100,000-message catch-up batch in 2-3 s while
 * another applies its own. */
#define CATCHUP_WAIT_MIN_MS 5000

/* A worker's reloadable settings. */
struct settings {
	struct consumer_batching batching;
	struct ev_limits limits;
};

struct consumer {
	int worker; /* 0.. (the process's workers) */
	struct consumer_shared sh;
	int assigned; /* partitions this worker has */
	rd_kafka_t *rk;
	struct agg *agg;
	struct dlq *dlq;
	char topic[256];
	struct consumer_batching batching;
	/* Messages after the last one added, per partition (from the last
	 * fetch responses), and their sum over the assignment. */
	int64_t *lag;
	int nlag;
	int64_t behind;
	int need_resync;    /* take positions from PostgreSQL before consuming */
	int fatal;
	int64_t backoff_ms; /* current database retry delay */
	int64_t retry_at;   /* monotonic ms of the next database attempt */
	int64_t batch_started; /* the pending batch's first message added (mono ms) */
	/* Since when the pending batch's first message could have been read:
	 * the start of the previous flush when it was already queued behind
	 * it, else batch_started (see consumer_batch_due). */
	int64_t batch_ready;
	int64_t flush_started; /* the last flush (mono ms) */
	int drained;           /* a poll found nothing since the last flush */
	/* Dead letters of the pending batch: how many are queued, and the
	 * producer's failure count before the first of them. */
	size_t letters_queued;
	uint64_t letters_failed_before;
	struct agg_stats reported; /* the stats of the last batch given to mxd */
	atomic_llong last_turn;    /* mono ms of the loop's last turn */
	/* consumer_reconfigure(), from another thread: applied at the next turn. */
	pthread_mutex_t reconf_lock;
	atomic_int reconf_pending;
	struct settings reconf;
};

#define mono_ms clock_mono_ms
#define wall_us clock_wall_us

/* Partition p is lag messages behind its end (lag < 0: unknown). */
static void note_lag(struct consumer *c, int32_t p, int64_t lag)
{
	if (p < 0 || lag < 0)
		return;
	if (p >= c->nlag) {
		int n = c->nlag ? c->nlag : 64;
		while (n <= p)
			n *= 2;
		int64_t *grown = realloc(c->lag, (size_t)n * sizeof(*grown));
		if (!grown)
			return; /* no backlog estimate: batches end at METER_BATCH_WAIT */
		memset(grown + c->nlag, 0, (size_t)(n - c->nlag) * sizeof(*grown));
		c->lag = grown;
		c->nlag = n;
	}
	c->behind += lag - c->lag[p];
	c->lag[p] = lag;
}

/* The assignment changed: forget the lags (they come back with fetches). */
static void forget_lags(struct consumer *c)
{
	if (c->lag)
		memset(c->lag, 0, (size_t)c->nlag * sizeof(*c->lag));
	c->behind = 0;
}

static void pause_all(struct consumer *c)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(c->rk, &parts) == RD_KAFKA_RESP_ERR_NO_ERROR && parts) {
		if (parts->cnt)
			rd_kafka_pause_partitions(c->rk, parts);
		rd_kafka_topic_partition_list_destroy(parts);
	}
}

/* Database trouble: drop the batch, stop fetching, retry later. */
static void db_trouble(struct consumer *c, const char *why)
{
	mxd_db_error();
	agg_discard(c->agg);
	if (!c->need_resync)
		pause_all(c);
	c->need_resync = 1;
	c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : 200;
	if (c->backoff_ms > 10000)
		c->backoff_ms = 10000;
	/* Jitter: a quarter of the delay, so workers do not retry in step. */
	int64_t jitter = (int64_t)(rand() % (int)(c->backoff_ms / 4 + 1));
	c->retry_at = mono_ms() + c->backoff_ms + jitter;
	log_warnx("%s; retrying in %" PRId64 "ms", why, c->backoff_ms + jitter);
}

/* Set each partition's position to its offset stored in PostgreSQL
 * (beginning of the partition when none is stored). 0 or -1. */
static int load_positions(struct consumer *c, rd_kafka_topic_partition_list_t *parts)
{
	if (parts->cnt == 0)
		return 0;
	int32_t *ids = calloc((size_t)parts->cnt, sizeof(*ids));
	int64_t *next = calloc((size_t)parts->cnt, sizeof(*next));
	int rc = -1;
	char err[512];
	if (!ids || !next)
		goto out;
	for (int i = 0; i < parts->cnt; i++)
		ids[i] = parts->elems[i].partition;
	if (agg_load_offsets(c->agg, ids, parts->cnt, next, err, sizeof(err)) != 0) {
		log_warnx("cannot read stored offsets: %s", err);
		goto out;
	}
	for (int i = 0; i < parts->cnt; i++) {
		parts->elems[i].offset = next[i] >= 0 ? next[i] : RD_KAFKA_OFFSET_BEGINNING;
		if (next[i] >= 0)
			log_info("%s[%" PRId32 "] starts at stored offset %" PRId64,
				 parts->elems[i].topic, parts->elems[i].partition, next[i]);
		else
			log_info("%s[%" PRId32 "] starts at the beginning (no stored offset)",
				 parts->elems[i].topic, parts->elems[i].partition);
	}
	rc = 0;
out:
	free(ids);
	free(next);
	return rc;
}

/* Re-assign the current partitions at their stored offsets and resume. */
static int resync(struct consumer *c)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(c->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
		return -1;
	int rc = -1;
	if (load_positions(c, parts) != 0)
		goto out;
	rd_kafka_resp_err_t err = rd_kafka_assign(c->rk, parts);
	if (err) {
		log_warnx("re-assign failed: %s", rd_kafka_err2str(err));
		goto out;
	}
	if (parts->cnt)
		rd_kafka_resume_partitions(c->rk, parts);
	c->need_resync = 0;
	c->backoff_ms = 0;
	rc = 0;
out:
	rd_kafka_topic_partition_list_destroy(parts);
	return rc;
}

struct send_state {
	struct consumer *c;
	size_t seen;
};

static void send_reject(const struct agg_reject *r, void *opaque)
{
	struct send_state *st = opaque;
	if (st->seen++ < st->c->letters_queued)
		return; /* queued by an earlier attempt at this batch */
	dlq_send(st->c->dlq, st->c->topic, r);
	st->c->letters_queued++;
}

/* Queue the dead letters of the pending batch not queued yet and wait (5 s
 * at most) for the broker. The batch stores its rejects as sent only when
 * every letter is acknowledged; the others are sent again from
 * rejected_events later (dlq_resend_pending). */
static int send_dead_letters(struct consumer *c)
{
	if (agg_pending_rejects(c->agg) == 0)
		return 1;
	if (c->letters_queued == 0)
		c->letters_failed_before = dlq_failed(c->dlq);
	struct send_state st = {c, 0};
	agg_each_reject(c->agg, send_reject, &st);
	int sent = dlq_flush(c->dlq, 5000) == 0 && dlq_failed(c->dlq) == c->letters_failed_before;
	if (!sent)
		log_warnx("dead letters not all acknowledged by Kafka; stored as pending in "
			  "rejected_events, to be sent again");
	agg_set_rejects_sent(c->agg, sent);
	return sent;
}

/* Report committed positions to Kafka, for lag monitoring only. */
static void commit_to_kafka(struct consumer *c)
{
	int32_t parts[256];
	int64_t next[256];
	int n = agg_last_committed(c->agg, parts, next, 256);
	if (n == 0)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
	for (int i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(l, c->topic, parts[i])->offset = next[i];
	rd_kafka_commit(c->rk, l, 1);
	rd_kafka_topic_partition_list_destroy(l);
}

/* Commit the pending batch. Returns 0 when it is stored (or empty). */
static int flush_batch(struct consumer *c)
{
	if (agg_pending(c->agg) == 0)
		return 0;
	c->flush_started = mono_ms();
	c->drained = 0;
	size_t letters = agg_pending_rejects(c->agg);
	int letters_sent = send_dead_letters(c);
	char err[1024];
	for (int attempt = 1;; attempt++) {
		enum agg_result r = agg_commit(c->agg, err, sizeof(err));
		switch (r) {
		case AGG_OK:
			mxd_batch_committed(&c->reported, agg_get_stats(c->agg));
			c->reported = *agg_get_stats(c->agg);
			if (letters)
				mxd_dead_letters(letters_sent ? "acknowledged" : "pending",
						 (int)letters);
			failpoint("after_commit");
			if (agg_last_crossings(c->agg))
				failpoint("after_crossing_commit");
			c->backoff_ms = 0;
			commit_to_kafka(c);
			/* New crossings: get their flags out now, not at the next tick. */
			if (agg_last_crossings(c->agg))
				pub_kick(c->sh.pub);
			return 0;
		case AGG_RETRY:
			if (attempt < 5) {
				log_info("batch conflict, retrying: %s", err);
				continue;
			}
			db_trouble(c, err);
			return -1;
		case AGG_FENCED:
			log_warnx("%s; re-reading stored offsets", err);
			agg_discard(c->agg);
			if (!c->need_resync)
				pause_all(c);
			c->need_resync = 1;
			c->retry_at = mono_ms();
			return -1;
		case AGG_DB_DOWN:
		case AGG_FAILED:
			db_trouble(c, err);
			return -1;
		}
	}
}

/* This worker now has n partitions: keep the process's count. */
static void note_assigned(struct consumer *c, int n)
{
	if (c->sh.assigned)
		atomic_fetch_add(c->sh.assigned, n - c->assigned);
	c->assigned = n;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct consumer *c = opaque;
	switch (err) {
	case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
		note_assigned(c, parts->cnt);
		if (c->sh.workers > 1 && c->sh.assigned)
			log_info("assigned %d partition(s) (%d in this process)", parts->cnt,
				 atomic_load(c->sh.assigned));
		else
			log_info("assigned %d partition(s)", parts->cnt);
		forget_lags(c);
		if (load_positions(c, parts) == 0) {
			rd_kafka_assign(rk, parts);
			/* A pause from an earlier database failure sticks to the
			 * partition across unassign/assign in librdkafka: lift it. */
			rd_kafka_resume_partitions(rk, parts);
			c->need_resync = 0;
			c->backoff_ms = 0;
		} else {
			/* Positions unknown: assign paused, take them from the
			 * database as soon as it answers. */
			for (int i = 0; i < parts->cnt; i++)
				parts->elems[i].offset = RD_KAFKA_OFFSET_INVALID;
			rd_kafka_assign(rk, parts);
			rd_kafka_pause_partitions(rk, parts);
			c->need_resync = 1;
			c->retry_at = mono_ms() + 500;
		}
		break;
	case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
		log_info("revoked %d partition(s)", parts->cnt);
		if (rd_kafka_assignment_lost(rk) || c->need_resync)
			agg_discard(c->agg);
		else if (flush_batch(c) != 0)
			agg_discard(c->agg);
		for (int i = 0; i < parts->cnt; i++)
			agg_forget_partition(c->agg, parts->elems[i].partition);
		forget_lags(c);
		rd_kafka_assign(rk, NULL);
		note_assigned(c, 0);
		break;
	default:
		log_warnx("rebalance error: %s", rd_kafka_err2str(err));
		agg_discard(c->agg);
		rd_kafka_assign(rk, NULL);
		note_assigned(c, 0);
		break;
	}
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct consumer *c = opaque;
	mxd_kafka_error();
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk, why, sizeof(why));
		log_errorx("fatal Kafka error: %s", why);
		c->fatal = 1;
		return;
	}
	/* Everything else is informational: librdkafka retries by itself. */
	log_warnx("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static int stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
	(void)rk;
	struct consumer *c = opaque;
	mxd_kafka_stats(c->worker, json, json_len);
	return 0; /* librdkafka frees json */
}

struct consumer *consumer_new(const struct meter_config *cfg, int worker,
			      const struct consumer_shared *sh, char *errstr, size_t errstr_size)
{
	struct consumer *c = calloc(1, sizeof(*c));
	rd_kafka_conf_t *conf = NULL;
	if (!c) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	if (pthread_mutex_init(&c->reconf_lock, NULL) != 0) {
		free(c);
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	c->worker = worker;
	c->sh = *sh;
	atomic_store(&c->last_turn, mono_ms());
	snprintf(c->topic, sizeof(c->topic), "%s", cfg->topic_events);
	consumer_batching_from_config(&c->batching, cfg);
	c->drained = 1; /* the first batch waits from its first message */
	c->agg = agg_new(cfg, cfg->topic_events);
	if (!c->agg) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	c->dlq = dlq_new(cfg, errstr, errstr_size);
	if (!c->dlq)
		goto fail;

	conf = kfk_conf_new(cfg, errstr, errstr_size);
	if (!conf)
		goto fail;
	if (kfk_set(conf, "group.id", cfg->group_id, errstr, errstr_size) != 0 ||
	    kfk_set(conf, "enable.auto.commit", "false", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "enable.auto.offset.store", "false", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "auto.offset.reset", "earliest", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "client.id", "meterd", errstr, errstr_size) != 0 ||
	    /* Flags must follow usage quickly: do not let an idle fetch sit on
	     * the broker for librdkafka's default 500 ms (brokers that answer
	     * as soon as data arrives are not slowed by this). */
	    kfk_set(conf, "fetch.wait.max.ms", "50", errstr, errstr_size) != 0 ||
	    mxd_kafka_conf(conf, errstr, errstr_size) != 0 ||
	    kfk_apply_props(conf, cfg, KFK_CONSUMER, errstr, errstr_size) != 0)
		goto fail;
	char pstrat[128];
	size_t psz = sizeof(pstrat);
	if (rd_kafka_conf_get(conf, "partition.assignment.strategy", pstrat, &psz) ==
		    RD_KAFKA_CONF_OK &&
	    strstr(pstrat, "cooperative")) {
		snprintf(errstr, errstr_size,
			 "partition.assignment.strategy=%s is not supported: meterd uses the eager "
			 "protocol (range or roundrobin)",
			 pstrat);
		goto fail;
	}
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_opaque(conf, c);

	char err[512];
	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!c->rk) {
		snprintf(errstr, errstr_size, "cannot create the Kafka consumer: %s", err);
		goto fail;
	}
	conf = NULL; /* now owned by rk */
	rd_kafka_poll_set_consumer(c->rk);

	rd_kafka_topic_partition_list_t *sub = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(sub, c->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(c->rk, sub);
	rd_kafka_topic_partition_list_destroy(sub);
	if (e) {
		snprintf(errstr, errstr_size, "cannot subscribe to %s: %s", c->topic,
			 rd_kafka_err2str(e));
		goto fail;
	}
	return c;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	consumer_destroy(c);
	return NULL;
}

void consumer_destroy(struct consumer *c)
{
	if (!c)
		return;
	if (c->rk)
		rd_kafka_destroy(c->rk);
	dlq_destroy(c->dlq);
	agg_destroy(c->agg);
	free(c->lag);
	pthread_mutex_destroy(&c->reconf_lock);
	free(c);
}

static void handle_message(struct consumer *c, rd_kafka_message_t *m)
{
	if (m->err) {
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			log_warnx("consume error: %s", rd_kafka_message_errstr(m));
		return;
	}
	mxd_consumed();
	if (c->need_resync)
		return; /* fetched before the pause; re-read from the stored offset */
	if (agg_pending(c->agg) == 0) {
		c->batch_started = mono_ms();
		c->batch_ready = c->drained ? c->batch_started : c->flush_started;
		c->letters_queued = 0;
	}
	/* How far behind this partition is (from the last fetch response; no
	 * request): catching up, the batch grows (consumer_catching_up). */
	int64_t lo, hi;
	if (rd_kafka_get_watermark_offsets(c->rk, c->topic, m->partition, &lo, &hi) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		note_lag(c, m->partition, hi - (m->offset + 1));
	enum agg_added r = agg_add(c->agg, m->partition, m->offset, m->key, m->key_len,
				   m->payload, m->len, wall_us());
	if (r == AGG_ADD_FAILED)
		db_trouble(c, "out of memory adding a message to the batch");
}

static int64_t catchup_wait_ms(int64_t wait_ms)
{
	return 10 * wait_ms > CATCHUP_WAIT_MIN_MS ? 10 * wait_ms : CATCHUP_WAIT_MIN_MS;
}

/* Take the settings of consumer_reconfigure(), if any. */
static void apply_reconfigure(struct consumer *c)
{
	if (!atomic_exchange(&c->reconf_pending, 0))
		return;
	pthread_mutex_lock(&c->reconf_lock);
	struct settings st = c->reconf;
	pthread_mutex_unlock(&c->reconf_lock);
	c->batching = st.batching;
	agg_reconfigure(c->agg, &st.limits);
}

int consumer_run(struct consumer *c, volatile sig_atomic_t *stop)
{
	log_debug("consuming %s", c->topic);
	while (!*stop && !c->fatal) {
		atomic_store(&c->last_turn, mono_ms());
		apply_reconfigure(c);
		if (c->need_resync && mono_ms() >= c->retry_at) {
			char err[512];
			if (agg_connected(c->agg) || agg_connect(c->agg, err, sizeof(err)) == 0) {
				if (resync(c) == 0)
					log_info("database available again; resumed from stored offsets");
				else
					db_trouble(c, "could not re-read stored offsets");
			} else {
				db_trouble(c, err);
			}
		}
		/* When the batch is due: see consumer_batch_due. */
		int timeout = 100;
		if (agg_pending(c->agg)) {
			int64_t due = consumer_catching_up(&c->batching, agg_pending(c->agg), c->behind)
					      ? c->batch_started + catchup_wait_ms(c->batching.wait_ms)
					      : c->batch_ready + c->batching.wait_ms;
			int64_t left = due - mono_ms();
			timeout = left < 0 ? 0 : (left < 100 ? (int)left : 100);
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout);
		int queue_empty = m == NULL;
		if (m) {
			handle_message(c, m);
			rd_kafka_message_destroy(m);
		} else {
			c->drained = 1;
		}
		dlq_poll(c->dlq);
		int catching_up = consumer_catching_up(&c->batching, agg_pending(c->agg), c->behind);
		rollpub_set_backlog(c->sh.rollpub, c->worker, catching_up);
		int64_t now = mono_ms();
		if (catching_up && c->sh.catchup_at)
			atomic_store(c->sh.catchup_at, now);
		if (consumer_batch_due(&c->batching, agg_pending(c->agg), now - c->batch_started,
				       now - c->batch_ready, queue_empty, c->behind))
			flush_batch(c);
	}
	rollpub_set_backlog(c->sh.rollpub, c->worker, 0);

	if (c->fatal) {
		agg_discard(c->agg);
		return -1;
	}
	log_info("stopping: finishing the current batch");
	if (!c->need_resync && flush_batch(c) != 0)
		log_warnx("last batch not stored; it will be consumed again after restart");
	agg_discard(c->agg);
	rd_kafka_resp_err_t err = rd_kafka_consumer_close(c->rk);
	if (err)
		log_warnx("consumer close: %s", rd_kafka_err2str(err));
	if (dlq_flush(c->dlq, 5000) != 0)
		log_warnx("some dead letters were not acknowledged before exit");
	return 0;
}

void consumer_batching_from_config(struct consumer_batching *b, const struct meter_config *cfg)
{
	b->max = cfg->batch_max;
	b->catchup_max = cfg->catchup_batch_max;
	b->wait_ms = cfg->batch_wait_ms;
}

static int64_t catchup_max(const struct consumer_batching *b)
{
	return b->catchup_max > b->max ? b->catchup_max : b->max;
}

int consumer_catching_up(const struct consumer_batching *b, size_t pending, int64_t behind)
{
	return behind > 0 && (int64_t)pending + behind >= catchup_max(b);
}

int consumer_batch_due(const struct consumer_batching *b, size_t pending, int64_t age_ms,
		       int64_t ready_age_ms, int queue_empty, int64_t behind)
{
	if (pending == 0)
		return 0;
	if ((int64_t)pending >= catchup_max(b))
		return 1;
	if (consumer_catching_up(b, pending, behind))
		return age_ms >= catchup_wait_ms(b->wait_ms);
	if ((int64_t)pending >= b->max)
		return 1;
	return age_ms >= b->wait_ms || (ready_age_ms >= b->wait_ms && queue_empty);
}

int64_t consumer_last_turn(const struct consumer *c)
{
	return atomic_load(&((struct consumer *)c)->last_turn);
}

const struct agg_stats *consumer_stats(const struct consumer *c)
{
	return agg_get_stats(c->agg);
}

void consumer_reconfigure(struct consumer *c, const struct meter_config *cfg)
{
	pthread_mutex_lock(&c->reconf_lock);
	consumer_batching_from_config(&c->reconf.batching, cfg);
	agg_limits_from_config(&c->reconf.limits, cfg);
	pthread_mutex_unlock(&c->reconf_lock);
	atomic_store(&c->reconf_pending, 1);
}
