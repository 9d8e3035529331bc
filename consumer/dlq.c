/* dlq.c - see dlq.h. */
#include "dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "mxd.h"

/* Rows per resend round. */
#define RESEND_ROUND 500
#define RESEND_ROUND_S "500"

struct dlq {
	rd_kafka_t *rk;
	char topic[256];
	uint64_t delivered;
	uint64_t failed;
	/* Of the current resend round, by place: acknowledged. A round starts
	 * only once nothing is in flight, so no late report lands here. */
	unsigned char acked[RESEND_ROUND];
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	struct dlq *d = opaque;
	if (m->err) {
		d->failed++;
		log_warnx("dead letter to %s not delivered: %s", d->topic,
			  rd_kafka_err2str(m->err));
	} else {
		d->delivered++;
		intptr_t at = (intptr_t)m->_private;
		if (at > 0 && at <= RESEND_ROUND)
			d->acked[at - 1] = 1;
	}
}

struct dlq *dlq_new(const struct meter_config *cfg, char *errstr, size_t errstr_size)
{
	struct dlq *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	snprintf(d->topic, sizeof(d->topic), "%s", cfg->topic_dlq);
	rd_kafka_conf_t *conf = kfk_conf_new(cfg, errstr, errstr_size);
	if (!conf)
		goto fail;
	if (kfk_set(conf, "enable.idempotence", "true", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "linger.ms", "5", errstr, errstr_size) != 0 ||
	    kfk_set(conf, "client.id", "meterd-dlq", errstr, errstr_size) != 0 ||
	    kfk_apply_props(conf, cfg, KFK_PRODUCER, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(conf);
		goto fail;
	}
	/* Consumer-only pass-through properties make the producer warn; harmless. */
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_conf_set_opaque(conf, d);
	char err[512];
	d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!d->rk) {
		rd_kafka_conf_destroy(conf);
		snprintf(errstr, errstr_size, "cannot create the DLQ producer: %s", err);
		goto fail;
	}
	return d;
fail:
	dlq_destroy(d);
	return NULL;
}

void dlq_destroy(struct dlq *d)
{
	if (!d)
		return;
	if (d->rk) {
		if (rd_kafka_flush(d->rk, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
			log_warnx("%d dead letters still queued at exit",
				  rd_kafka_outq_len(d->rk));
		rd_kafka_destroy(d->rk);
	}
	free(d);
}

/* A dead letter: the rejected message with its reason and origin. */
struct letter {
	const void *key;
	size_t key_len;
	const void *payload;
	size_t payload_len;
	const char *reason, *detail, *source_topic;
	int32_t partition;
	int64_t offset;
	int round_index; /* 1 + place in a resend round, 0 for a live letter */
};

/* Queue one letter, waiting (bounded) while the queue is full. 0, or -1
 * (counted as failed, logged) when it could not be queued. */
static int produce(struct dlq *d, const struct letter *l)
{
	char part[16], off[32];
	snprintf(part, sizeof(part), "%" PRId32, l->partition);
	snprintf(off, sizeof(off), "%" PRId64, l->offset);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__QUEUE_FULL;
	for (int attempt = 0; attempt < 50 && err == RD_KAFKA_RESP_ERR__QUEUE_FULL; attempt++) {
		if (attempt)
			rd_kafka_poll(d->rk, 100);
		err = rd_kafka_producev(
			d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY((void *)l->key, l->key_len),
			RD_KAFKA_V_VALUE((void *)l->payload, l->payload_len),
			RD_KAFKA_V_HEADER("meter-reason", l->reason, -1),
			RD_KAFKA_V_HEADER("meter-detail", l->detail, -1),
			RD_KAFKA_V_HEADER("meter-source-topic", l->source_topic, -1),
			RD_KAFKA_V_HEADER("meter-source-partition", part, -1),
			RD_KAFKA_V_HEADER("meter-source-offset", off, -1),
			RD_KAFKA_V_OPAQUE((void *)(intptr_t)l->round_index), RD_KAFKA_V_END);
	}
	if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
		return 0;
	d->failed++;
	log_warnx("dead letter for %s[%s]@%s not queued: %s", l->source_topic, part, off,
		  rd_kafka_err2str(err));
	return -1;
}

void dlq_send(struct dlq *d, const char *source_topic, const struct agg_reject *r)
{
	struct letter l = {r->key,
			   r->key_len,
			   r->payload,
			   r->payload_len,
			   ev_reason_name(r->err->reason),
			   r->err->detail,
			   source_topic,
			   r->partition,
			   r->offset,
			   0};
	produce(d, &l);
}

#define PENDING_SQL                                                                          \
	"SELECT id, kafka_topic, kafka_partition, kafka_offset, kafka_key, reason, detail,"  \
	" payload FROM rejected_events WHERE dlq_pending AND id > $1 ORDER BY id LIMIT "      \
	RESEND_ROUND_S

/* Send the pending rows after id *from (at most RESEND_ROUND), move *from
 * past them, wait for the broker and clear the mark of the rows it
 * acknowledged. The number of rows cleared (0 when none was pending), or -1
 * with errstr when any was not acknowledged (those stay pending). */
static int resend_round(struct dlq *d, PGconn *conn, char *from, size_t from_size,
			const atomic_int *stop, char *errstr, size_t errstr_size)
{
	const char *params[1] = {from};
	PGresult *res = db_query(conn, PENDING_SQL, 1, params, errstr, errstr_size, NULL);
	if (!res)
		return -1;
	int n = PQntuples(res), queued = 0;
	memset(d->acked, 0, sizeof(d->acked));
	for (; queued < n; queued++) {
		int i = queued;
		size_t klen = 0, plen = 0;
		unsigned char *key = NULL, *payload;
		if (!PQgetisnull(res, i, 4))
			key = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 4), &klen);
		payload = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 7), &plen);
		struct letter l = {key,
				   klen,
				   payload,
				   plen,
				   PQgetvalue(res, i, 5),
				   PQgetvalue(res, i, 6),
				   PQgetvalue(res, i, 1),
				   (int32_t)strtol(PQgetvalue(res, i, 2), NULL, 10),
				   strtoll(PQgetvalue(res, i, 3), NULL, 10),
				   i + 1};
		int ok = payload && (key || PQgetisnull(res, i, 4)) && produce(d, &l) == 0;
		PQfreemem(key);
		PQfreemem(payload);
		if (!ok)
			break; /* this one and the rest: next call */
		snprintf(from, from_size, "%s", PQgetvalue(res, i, 0));
	}
	int timely = kfk_wait_delivered(d->rk, 30000, stop) == 0;
	struct buf ids;
	buf_init(&ids, 0);
	buf_putc(&ids, '{');
	int nacked = 0;
	for (int i = 0; i < queued; i++) {
		if (!d->acked[i])
			continue;
		if (nacked++)
			buf_putc(&ids, ',');
		buf_append(&ids, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
	}
	buf_putc(&ids, '}');
	buf_putc(&ids, '\0');
	PQclear(res);
	int rc = nacked, oom = ids.oom;
	if (nacked && !oom) {
		params[0] = ids.data;
		res = db_query(conn,
			       "UPDATE rejected_events SET dlq_pending = false"
			       " WHERE id = ANY($1::bigint[])",
			       1, params, errstr, errstr_size, NULL);
		if (!res)
			rc = -1;
		else
			mxd_dead_letters("resent", nacked);
		PQclear(res);
	}
	buf_free(&ids);
	if (rc < 0)
		return -1;
	if (oom || queued < n || nacked < queued) {
		const char *why = oom ? " (out of memory marking them)"
				      : !timely ? " (the broker did not answer within 30 s)" : "";
		snprintf(errstr, errstr_size,
			 "%d of %d pending dead letter(s) sent again and acknowledged%s; "
			 "the rest stay pending",
			 nacked, n, why);
		return -1;
	}
	return nacked;
}

int dlq_resend_pending(struct dlq *d, PGconn *conn, const atomic_int *stop, char *errstr,
		       size_t errstr_size)
{
	/* Letters still in flight from an earlier call: wait for them rather
	 * than queue the same rows again. */
	if (kfk_wait_delivered(d->rk, 10000, stop) != 0) {
		snprintf(errstr, errstr_size, "%d dead letter(s) still not acknowledged",
			 rd_kafka_outq_len(d->rk));
		return -1;
	}
	char from[32] = "0";
	int total = 0, n = 0;
	/* Rounds until none is pending; a failed one ends the call. */
	while (!atomic_load(stop) &&
	       (n = resend_round(d, conn, from, sizeof(from), stop, errstr, errstr_size)) > 0)
		total += n;
	if (n < 0)
		return -1;
	if (total)
		log_info("%d dead letter(s) the broker had not acknowledged sent again to %s",
			 total, d->topic);
	return total;
}

int dlq_flush(struct dlq *d, int timeout_ms)
{
	return rd_kafka_flush(d->rk, timeout_ms) == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

void dlq_poll(struct dlq *d)
{
	rd_kafka_poll(d->rk, 0);
}

uint64_t dlq_delivered(const struct dlq *d)
{
	return d->delivered;
}

uint64_t dlq_failed(const struct dlq *d)
{
	return d->failed;
}
