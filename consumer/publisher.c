/* publisher.c - see publisher.h. */
#include "publisher.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "db.h"
#include "failpoint.h"
#include "kafka.h"
#include "log.h"
#include "mxd.h"
#include "num.h"

#define PUB_LOCK_SQL "SELECT pg_try_advisory_lock(hashtext('meter_flag_publisher'))"
#define DRAIN_LIMIT 1000

struct publisher {
	PGconn *conn;
	rd_kafka_t *rk;
	char url[CFG_STR_MAX];
	char app[64];
	char topic[256];
	int leader;
	int64_t retry_at;     /* next connection or lock attempt (mono ms) */
	int64_t next_janitor; /* next period-end clearing */
	int64_t next_poll;    /* next drain without a wake-up */
	int64_t backoff_ms;
	uint64_t dr_ok, dr_failed; /* delivery reports */
	struct pub_stats stats;
	/* pub_start(): the thread that ticks, and what wakes it early. */
	pthread_t thread;
	int started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int kicked, stopping; /* under lock */
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct publisher *p = opaque;
	if (m->err) {
		p->dr_failed++;
		log_warnx("flag for %.*s not delivered: %s", (int)m->key_len, (const char *)m->key,
			  rd_kafka_err2str(m->err));
	} else {
		p->dr_ok++;
	}
}

struct publisher *pub_new(const struct meter_config *cfg, const char *app_name, char *errstr,
			  size_t errstr_size)
{
	struct publisher *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	snprintf(p->url, sizeof(p->url), "%s", cfg->database_url);
	snprintf(p->app, sizeof(p->app), "%s-publisher", app_name);
	snprintf(p->topic, sizeof(p->topic), "%s", cfg->topic_limits);
	rd_kafka_conf_t *conf = kfk_conf_new(cfg, errstr, errstr_size);
	if (!conf)
		goto fail;
	/* Flags are latency-sensitive and few: send at once. */
	if (kfk_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "linger.ms", "0", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "client.id", p->app, errstr, errstr_size) != 0 ||
	    kfk_apply_props(conf, cfg, KFK_PRODUCER, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, p);
	char err[512];
	p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!p->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the flag producer: %s", err);
		goto fail;
	}
	/* Warm up: learn the topic's partitions and leaders now, so the first
	 * flag does not wait for a metadata round (it did: ~1 s). */
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(p->rk, p->topic, NULL);
	if (rkt) {
		const struct rd_kafka_metadata *md = NULL;
		if (rd_kafka_metadata(p->rk, 0, rkt, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR)
			rd_kafka_metadata_destroy(md);
		rd_kafka_topic_destroy(rkt);
	}
	return p;
fail:
	pub_destroy(p);
	return NULL;
}

void pub_destroy(struct publisher *p)
{
	if (!p)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stopping = 1;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		pthread_cond_destroy(&p->wake);
		pthread_mutex_destroy(&p->lock);
	}
	if (p->rk) {
		if (rd_kafka_flush(p->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warnx("%d flags still queued at exit; they stay in the outbox and are "
				  "published again",
				  rd_kafka_outq_len(p->rk));
		rd_kafka_destroy(p->rk);
	}
	if (p->conn)
		PQfinish(p->conn); /* releases the publisher lock */
	free(p);
}

static void lose_conn(struct publisher *p, const char *why)
{
	if (p->leader)
		log_warnx("flag publisher stepping down: %s", why);
	if (p->conn)
		PQfinish(p->conn);
	p->conn = NULL;
	p->leader = 0;
	p->stats.leader = 0;
	p->backoff_ms = p->backoff_ms ? (p->backoff_ms * 2 > 10000 ? 10000 : p->backoff_ms * 2)
				      : 250;
	p->retry_at = clock_mono_ms() + p->backoff_ms;
}

/* Connect if needed and try to take the lock. 1 if leader. */
static int become_leader(struct publisher *p, char *errstr, size_t errstr_size)
{
	if (p->leader)
		return 1;
	if (!p->conn) {
		p->conn = db_connect(p->url, p->app, errstr, errstr_size);
		if (!p->conn)
			return 0;
	}
	PGresult *r = db_query(p->conn, PUB_LOCK_SQL, 0, NULL, errstr, errstr_size, NULL);
	if (!r)
		return 0;
	int got = PQntuples(r) == 1 && *PQgetvalue(r, 0, 0) == 't';
	PQclear(r);
	if (!got)
		return 0;
	if (db_exec(p->conn, "LISTEN meter_flags", errstr, errstr_size) != 0)
		return 0;
	p->leader = 1;
	p->stats.leader = 1;
	p->backoff_ms = 0;
	return 1;
}

/* Publish one round of pending flags (at most DRAIN_LIMIT subjects). Returns
 * the number published, 0 when nothing is pending, -1 on failure. */
static int drain_round(struct publisher *p, char *errstr, size_t errstr_size)
{
	PGresult *r = db_query(
		p->conn,
		"SELECT o.tenant_id, o.subject_type, o.subject_id, o.max_id,"
		" meter_subject(o.subject_type, o.tenant_id, o.subject_id),"
		" meter_current_flag(o.tenant_id, o.subject_type, o.subject_id)::text"
		" FROM (SELECT tenant_id, subject_type, subject_id, max(id) AS max_id,"
		"       min(id) AS min_id FROM flag_outbox WHERE sent_at IS NULL"
		"       GROUP BY 1, 2, 3 ORDER BY min(id) LIMIT " "1000" ") o ORDER BY o.min_id",
		0, NULL, errstr, errstr_size, NULL);
	if (!r)
		return -1;
	int n = PQntuples(r);
	if (n == 0) {
		PQclear(r);
		return 0;
	}
	uint64_t failed_before = p->dr_failed;
	int queued = 0;
	for (int i = 0; i < n; i++) {
		const char *subject = PQgetvalue(r, i, 4);
		const char *flag = PQgetvalue(r, i, 5);
		rd_kafka_resp_err_t err = kfk_produce(p->rk, p->topic, subject, flag, 5000);
		if (err) {
			snprintf(errstr, errstr_size, "cannot queue flag for %s: %s", subject,
				 rd_kafka_err2str(err));
			PQclear(r);
			rd_kafka_flush(p->rk, 1000);
			return -1;
		}
		queued++;
	}
	/* Wait for the acknowledgements before marking anything sent. */
	rd_kafka_flush(p->rk, 10000);
	if (rd_kafka_outq_len(p->rk) > 0 || p->dr_failed != failed_before) {
		p->stats.failed += (uint64_t)queued;
		snprintf(errstr, errstr_size,
			 "the broker did not acknowledge %d flag(s); they stay in the outbox",
			 queued);
		PQclear(r);
		return -1;
	}

	failpoint("after_flag_produce");
	int blocked = 0;
	json_t *done = json_array();
	for (int i = 0; i < n; i++) {
		int64_t max_id = 0;
		num_parse_i64(PQgetvalue(r, i, 3), 0, INT64_MAX, &max_id);
		json_error_t jerr;
		json_t *flag = json_loads(PQgetvalue(r, i, 5), 0, &jerr);
		json_array_append_new(done, json_pack("{s:s, s:s, s:s, s:I, s:o*}", "tenant",
						      PQgetvalue(r, i, 0), "subject_type",
						      PQgetvalue(r, i, 1), "subject_id",
						      PQgetvalue(r, i, 2), "max_id",
						      (json_int_t)max_id, "flag", flag));
		int is_blocked = strstr(PQgetvalue(r, i, 5), "\"state\": \"blocked\"") != NULL;
		blocked += is_blocked;
		log_debug("flag %s: %s", PQgetvalue(r, i, 4), is_blocked ? "blocked" : "ok");
	}
	PQclear(r);
	char *text = json_dumps(done, JSON_COMPACT);
	json_decref(done);
	if (!text) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	const char *params[1] = {text};
	r = db_query(p->conn, "SELECT meter_flags_published($1::jsonb)", 1, params, errstr,
		     errstr_size, NULL);
	free(text);
	if (!r)
		return -1; /* published but not marked: published again later, harmless */
	PQclear(r);
	p->stats.published += (uint64_t)n;
	log_info("published %d flag(s) on %s: %d blocked, %d ok", n, p->topic, blocked,
		 n - blocked);
	mxd_flags_published(blocked, n - blocked);
	return n;
}

static int drain_all(struct publisher *p, char *errstr, size_t errstr_size)
{
	int total = 0;
	for (int round = 0; round < 100; round++) {
		int n = drain_round(p, errstr, errstr_size);
		if (n < 0)
			return -1;
		total += n;
		if (n < DRAIN_LIMIT)
			break;
	}
	return total;
}

void pub_tick(struct publisher *p, int kick)
{
	char err[1024];
	int64_t now = clock_mono_ms();
	rd_kafka_poll(p->rk, 0);
	if (!p->leader) {
		if (now < p->retry_at)
			return;
		if (!become_leader(p, err, sizeof(err))) {
			if (!p->conn || db_broken(p->conn)) {
				lose_conn(p, err);
			} else {
				/* Someone else publishes; look again in a while. */
				p->retry_at = now + 2000;
			}
			return;
		}
		log_info("this process is now the flag publisher");
		kick = 1;
		p->next_janitor = now;
	}

	int woken = 0;
	if (!PQconsumeInput(p->conn)) {
		lose_conn(p, PQerrorMessage(p->conn));
		return;
	}
	PGnotify *nf;
	while ((nf = PQnotifies(p->conn)) != NULL) {
		woken = 1;
		PQfreemem(nf);
	}
	if (now >= p->next_janitor) {
		p->next_janitor = now + 1000;
		PGresult *r = db_query(p->conn, "SELECT meter_clear_expired()", 0, NULL, err,
				       sizeof(err), NULL);
		if (!r) {
			lose_conn(p, err);
			return;
		}
		int64_t cleared = 0;
		num_parse_i64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &cleared);
		PQclear(r);
		if (cleared > 0) {
			p->stats.cleared += (uint64_t)cleared;
			log_info("period ended for %" PRId64 " subject(s): clearing their flags",
				 cleared);
			woken = 1;
		}
	}
	if (!kick && !woken && now < p->next_poll)
		return;
	p->next_poll = now + 1000;
	if (drain_all(p, err, sizeof(err)) < 0) {
		log_warnx("flag publisher: %s", err);
		if (db_broken(p->conn))
			lose_conn(p, err);
	}
}

#define TICK_MS 100

static void *pub_thread(void *opaque)
{
	struct publisher *p = opaque;
	pthread_mutex_lock(&p->lock);
	while (!p->stopping) {
		if (!p->kicked) {
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += TICK_MS * 1000000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&p->wake, &p->lock, &until);
			if (p->stopping)
				break;
		}
		int kick = p->kicked;
		p->kicked = 0;
		pthread_mutex_unlock(&p->lock);
		pub_tick(p, kick);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int pub_start(struct publisher *p, char *errstr, size_t errstr_size)
{
	pthread_condattr_t ca;
	if (pthread_condattr_init(&ca) != 0) {
		snprintf(errstr, errstr_size, "cannot start the flag publisher: out of memory");
		return -1;
	}
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int rc = pthread_mutex_init(&p->lock, NULL);
	if (rc == 0) {
		rc = pthread_cond_init(&p->wake, &ca);
		if (rc != 0)
			pthread_mutex_destroy(&p->lock);
	}
	pthread_condattr_destroy(&ca);
	if (rc == 0) {
		rc = pthread_create(&p->thread, NULL, pub_thread, p);
		if (rc != 0) {
			pthread_cond_destroy(&p->wake);
			pthread_mutex_destroy(&p->lock);
		}
	}
	if (rc != 0) {
		snprintf(errstr, errstr_size, "cannot start the flag publisher: %s", strerror(rc));
		return -1;
	}
	p->started = 1;
	return 0;
}

void pub_kick(struct publisher *p)
{
	if (!p || !p->started)
		return;
	pthread_mutex_lock(&p->lock);
	p->kicked = 1;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

int pub_drain_once(struct publisher *p, char *errstr, size_t errstr_size)
{
	errstr[0] = '\0';
	if (!become_leader(p, errstr, errstr_size)) {
		if (*errstr)
			return -1;
		return -2;
	}
	int n = drain_all(p, errstr, errstr_size);
	/* Let the lock go at once: meterd's publisher takes it back. */
	PQfinish(p->conn);
	p->conn = NULL;
	p->leader = 0;
	p->stats.leader = 0;
	return n;
}

const struct pub_stats *pub_get_stats(const struct publisher *p)
{
	return &p->stats;
}
