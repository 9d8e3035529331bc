/* dlq.c - see dlq.h. */
#include "dlq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kafka.h"
#include "log.h"

struct dlq {
	rd_kafka_t *rk;
	char topic[256];
	uint64_t delivered;
	uint64_t failed;
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
	    kfk_apply_props(conf, cfg, errstr, errstr_size) != 0) {
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

void dlq_send(struct dlq *d, const char *source_topic, const struct agg_reject *r)
{
	char part[16], off[32];
	snprintf(part, sizeof(part), "%" PRId32, r->partition);
	snprintf(off, sizeof(off), "%" PRId64, r->offset);
	const char *reason = ev_reason_name(r->err->reason);
	for (int attempt = 0; attempt < 50; attempt++) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
			d->rk, RD_KAFKA_V_TOPIC(d->topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY((void *)r->key, r->key_len),
			RD_KAFKA_V_VALUE((void *)r->payload, r->payload_len),
			RD_KAFKA_V_HEADER("meter-reason", reason, -1),
			RD_KAFKA_V_HEADER("meter-detail", r->err->detail, -1),
			RD_KAFKA_V_HEADER("meter-source-topic", source_topic, -1),
			RD_KAFKA_V_HEADER("meter-source-partition", part, -1),
			RD_KAFKA_V_HEADER("meter-source-offset", off, -1), RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			d->failed++;
			log_warnx("dead letter for %s[%s]@%s not queued: %s", source_topic, part, off,
				  rd_kafka_err2str(err));
			return;
		}
		rd_kafka_poll(d->rk, 100);
	}
	d->failed++;
	log_warnx("dead letter for %s[%s]@%s not queued: queue full", source_topic, part, off);
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
