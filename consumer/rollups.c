/* rollups.c - see rollups.h. */
#include "rollups.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "clock.h"
#include "db.h"
#include "dlq.h"
#include "kafka.h"
#include "log.h"
#include "mxd.h"
#include "num.h"
#include "records.h"

#define LOCK_SQL "SELECT pg_try_advisory_lock(hashtext('meter_rollup_publisher'))"
#define OUTBOX_ROWS_PER_ROUND "20" /* batches per round (each names its rows) */
#define PUBLISH_IDLE_FACTOR 3      /* catching up: pause after a round, per ms it took */
#define PUBLISH_MAX_PAUSE_MS 15000 /* records at most this much behind, plus a round */
#define CLOSE_MARGIN_MS (10 * 60 * 1000) /* after end + lateness, for batches in flight */

struct rollpub {
	pthread_t thread;
	int started;
	atomic_int stop;
	rd_kafka_t *rk;
	PGconn *conn;
	int leader;
	char url[CFG_STR_MAX];
	char topic[256];
	char grace[64];   /* interval text for meter_close_periods */
	int64_t interval_ms; /* METER_ROLLUP_INTERVAL */
	int64_t next_close;
	int64_t next_resend;
	struct dlq *dlq; /* sends the dead letters left pending again */
	struct records *rec; /* writes the records */
	atomic_uint_fast64_t published;
	atomic_uint_fast64_t backlog; /* bit w: consumer worker w is catching up */
	uint64_t dr_failed;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct rollpub *r = opaque;
	if (m->err) {
		r->dr_failed++;
		log_warnx("rollup %.*s not delivered: %s", (int)m->key_len, (const char *)m->key,
			  rd_kafka_err2str(m->err));
	}
}

static void drop_conn(struct rollpub *r, const char *why)
{
	if (r->leader)
		log_warnx("rollup publisher stepping down: %s", why);
	if (r->conn)
		PQfinish(r->conn);
	r->conn = NULL;
	r->leader = 0;
}

static int become_leader(struct rollpub *r, char *errstr, size_t errstr_size)
{
	if (!r->conn) {
		r->conn = db_connect(r->url, "meterd-rollups", errstr, errstr_size);
		if (!r->conn)
			return 0;
	}
	PGresult *res = db_query(r->conn, LOCK_SQL, 0, NULL, errstr, errstr_size, NULL);
	if (!res)
		return 0;
	r->leader = PQntuples(res) == 1 && *PQgetvalue(res, 0, 0) == 't';
	PQclear(res);
	if (r->leader)
		log_info("this process is now the rollup publisher (%s)", r->topic);
	return r->leader;
}

/* Publish one round: the records of the oldest outbox rows. Returns the
 * number of records published, 0 when the outbox is empty, -1 on error. */
static int drain_round(struct rollpub *r, char *errstr, size_t errstr_size)
{
	PGresult *res = db_query(r->conn,
				 "SELECT max(id) FROM (SELECT id FROM rollup_outbox ORDER BY id"
				 " LIMIT " OUTBOX_ROWS_PER_ROUND ") x",
				 0, NULL, errstr, errstr_size, NULL);
	if (!res)
		return -1;
	char upto[32];
	snprintf(upto, sizeof(upto), "%s", PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!*upto)
		return 0;
	const char *params[1] = {upto};
	res = db_query(r->conn, "SELECT * FROM meter_rollup_rows($1)", 1, params, errstr,
		       errstr_size, NULL);
	if (!res)
		return -1;
	int n = PQntuples(res);
	uint64_t failed_before = r->dr_failed;
	if (n > 0 && rec_begin(r->rec, r->conn, res, errstr, errstr_size) != 0) {
		PQclear(res);
		return -1;
	}
	struct buf value;
	buf_init(&value, 0);
	for (int i = 0; i < n; i++) {
		char key[1024];
		if (rec_row(r->rec, res, i, key, sizeof(key), &value) != 0) {
			snprintf(errstr, errstr_size, "rollup row %d: key too long, or out of memory", i);
			buf_free(&value);
			PQclear(res);
			rd_kafka_flush(r->rk, 1000);
			return -1;
		}
		rd_kafka_resp_err_t err = kfk_produce(r->rk, r->topic, key, value.data, 10000);
		if (err) {
			snprintf(errstr, errstr_size, "cannot queue rollup %.300s: %s", key,
				 rd_kafka_err2str(err));
			buf_free(&value);
			PQclear(res);
			rd_kafka_flush(r->rk, 1000);
			return -1;
		}
	}
	buf_free(&value);
	PQclear(res);
	/* Acknowledged before the outbox forgets them (at most 30 s, less when
	 * stopping: what is not acknowledged is published again later). */
	if (kfk_wait_delivered(r->rk, 30000, &r->stop) != 0 || r->dr_failed != failed_before) {
		snprintf(errstr, errstr_size,
			 "the broker did not acknowledge %d rollup record(s); they stay in the outbox",
			 n);
		return -1;
	}
	res = db_query(r->conn, "DELETE FROM rollup_outbox WHERE id <= $1", 1, params, errstr,
		       errstr_size, NULL);
	if (!res)
		return -1; /* published, not forgotten: published again later */
	PQclear(res);
	atomic_fetch_add(&r->published, (uint64_t)n);
	mxd_rollups_published(n);
	log_debug("published %d rollup record(s) on %s", n, r->topic);
	return n ? n : 1;
}

static void *run(void *arg)
{
	struct rollpub *r = arg;
	char err[1024];
	int64_t backoff = 0;
	while (!atomic_load(&r->stop)) {
		if (!r->leader && !become_leader(r, err, sizeof(err))) {
			if (!r->conn || db_broken(r->conn))
				drop_conn(r, err);
			backoff = backoff ? (backoff * 2 > 10000 ? 10000 : backoff * 2) : 500;
			for (int64_t t = 0; t < backoff && !atomic_load(&r->stop); t += 100)
				usleep(100000);
			continue;
		}
		backoff = 0;
		int64_t now = clock_mono_ms();
		if (now >= r->next_close) {
			r->next_close = now + 10000;
			const char *params[1] = {r->grace};
			PGresult *res = db_query(r->conn, "SELECT meter_close_periods($1::interval)",
						 1, params, err, sizeof(err), NULL);
			if (!res) {
				log_warnx("rollup publisher: %s", err);
				drop_conn(r, err);
				continue;
			}
			if (*PQgetvalue(res, 0, 0) != '0')
				log_info("periods ended: %s rollup(s) closed", PQgetvalue(res, 0, 0));
			PQclear(res);
		}
		if (now >= r->next_resend) {
			r->next_resend = now + 10000;
			if (dlq_resend_pending(r->dlq, r->conn, &r->stop, err, sizeof(err)) < 0) {
				log_warnx("rollup publisher: dead letters: %s", err);
				if (db_broken(r->conn)) {
					drop_conn(r, err);
					continue;
				}
			}
		}
		int n;
		int64_t t0 = clock_mono_ms();
		while ((n = drain_round(r, err, sizeof(err))) > 0 && !atomic_load(&r->stop))
			;
		if (n < 0) {
			log_warnx("rollup publisher: %s", err);
			if (db_broken(r->conn))
				drop_conn(r, err);
		}
		rd_kafka_poll(r->rk, 0);
		/* A round every METER_ROLLUP_INTERVAL (1 s), which coalesces the
		 * batches committed in between. While meterd catches up on a
		 * backlog, wait PUBLISH_IDLE_FACTOR times as long as the last
		 * round took when that is longer (at most PUBLISH_MAX_PAUSE_MS):
		 * publishing then takes a bounded share of the machine, and each
		 * round coalesces more batches (a key changed by several is
		 * published once). Not at a steady load: there, longer pauses
		 * make longer rounds, which make longer pauses, up to the maximum
		 * (measured at 1,500 events/s: rounds every ~5 s of ~30k records,
		 * and the worker's RSS grew in steps). */
		int64_t pause = rollpub_pause_ms(clock_mono_ms() - t0, atomic_load(&r->backlog) != 0,
						 r->interval_ms);
		/* (A pause cut short once the backlog is gone.) */
		for (int64_t t = 0; t < pause && !atomic_load(&r->stop) &&
				    (t < r->interval_ms || atomic_load(&r->backlog) != 0);
		     t += 100)
			usleep(100000);
	}
	return NULL;
}

struct rollpub *rollpub_start(const struct meter_config *cfg, char *errstr, size_t errstr_size)
{
	struct rollpub *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	snprintf(r->url, sizeof(r->url), "%s", cfg->database_url);
	snprintf(r->topic, sizeof(r->topic), "%s", cfg->topic_rollups);
	snprintf(r->grace, sizeof(r->grace), "%" PRId64 " milliseconds",
		 cfg->max_lateness_ms + CLOSE_MARGIN_MS);
	r->interval_ms = cfg->rollup_interval_ms;
	rd_kafka_conf_t *conf = kfk_conf_new(cfg, errstr, errstr_size);
	if (!conf)
		goto fail;
	/* Many records per round: batch them, compressed. */
	if (kfk_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "linger.ms", "20", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "compression.type", "lz4", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "client.id", "meterd-rollups", errstr, errstr_size) != 0 ||
	    kfk_apply_props(conf, cfg, KFK_PRODUCER, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, r);
	char err[512];
	r->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!r->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the rollup producer: %s", err);
		goto fail;
	}
	r->dlq = dlq_new(cfg, errstr, errstr_size);
	if (!r->dlq)
		goto fail;
	r->rec = rec_new();
	if (!r->rec) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	if (pthread_create(&r->thread, NULL, run, r) != 0) {
		snprintf(errstr, errstr_size, "cannot start the rollup publisher thread");
		goto fail;
	}
	r->started = 1;
	return r;
fail:
	rollpub_stop(r);
	return NULL;
}

void rollpub_stop(struct rollpub *r)
{
	if (!r)
		return;
	atomic_store(&r->stop, 1);
	if (r->started)
		pthread_join(r->thread, NULL);
	if (r->rk) {
		rd_kafka_flush(r->rk, 2000);
		rd_kafka_destroy(r->rk);
	}
	dlq_destroy(r->dlq);
	rec_free(r->rec);
	if (r->conn)
		PQfinish(r->conn);
	free(r);
}

int64_t rollpub_pause_ms(int64_t round_ms, int backlog, int64_t interval_ms)
{
	if (!backlog)
		return interval_ms;
	int64_t pause = round_ms * PUBLISH_IDLE_FACTOR;
	if (pause > PUBLISH_MAX_PAUSE_MS)
		pause = PUBLISH_MAX_PAUSE_MS;
	return pause < interval_ms ? interval_ms : pause;
}

void rollpub_set_backlog(struct rollpub *r, int worker, int backlog)
{
	if (!r || worker < 0 || worker >= 64)
		return;
	uint_fast64_t bit = (uint_fast64_t)1 << worker;
	if (backlog)
		atomic_fetch_or(&r->backlog, bit);
	else
		atomic_fetch_and(&r->backlog, ~bit);
}

uint64_t rollpub_published(const struct rollpub *r)
{
	return atomic_load(&((struct rollpub *)r)->published);
}
