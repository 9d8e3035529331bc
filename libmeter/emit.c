/* emit.c - meter_emit() and meter_emit_json(): the idempotent producer
 * (acks=all), the bounded wait on a full queue, delivery reports served by a
 * background thread. The event itself is made in event.c.
 */
#include "meter_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reals (possible only inside metadata) with 15 significant digits, as the
 * worker stores them: 0.7 stays "0.7" on the wire. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* What a delivery report needs to name its event; only allocated when the
 * caller asked for reports. */
struct dctx {
	char id[METER_ID_MAX + 1];
};

/* ---- producing ------------------------------------------------------------------------ */

/* Queue one message (payload and key copied). On QUEUE_FULL, serve delivery
 * reports in steps of at most 5 ms until emit_timeout_ms is spent. ctx is
 * stolen: freed here on failure, by the delivery report otherwise. */
static int produce(meter_t *m, const char *key, const char *payload, size_t len,
		   struct dctx *ctx, char *errstr, size_t es)
{
	int64_t deadline = meter__mono_ms() + m->emit_timeout_ms;
	rd_kafka_resp_err_t err;
	char why[256];
	int rc;

	for (;;) {
		err = rd_kafka_producev(m->prod, RD_KAFKA_V_RKT(m->prod_topic),
					RD_KAFKA_V_KEY(key, strlen(key)),
					RD_KAFKA_V_VALUE((void *)payload, len),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_OPAQUE(ctx), RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			atomic_fetch_add(&m->emitted, 1);
			return METER_OK;
		}
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
			break;
		int64_t left = deadline - meter__mono_ms();
		if (left <= 0) {
			atomic_fetch_add(&m->emit_timeouts, 1);
			rc = meter__fail(errstr, es, METER_ERR_TIMEOUT,
					 "emit: the local queue is full (%d ms waited): the "
					 "brokers are unreachable or too slow; event not sent",
					 m->emit_timeout_ms);
			goto fail;
		}
		rd_kafka_poll(m->prod, left < 5 ? (int)left : 5);
	}
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(m->prod, why, sizeof(why));
		atomic_fetch_add(&m->emit_errors, 1);
		rc = meter__fail(errstr, es, METER_ERR_FATAL,
				 "emit: the producer hit a fatal error (%s): recreate the handle",
				 why);
		goto fail;
	}
	atomic_fetch_add(&m->emit_errors, 1);
	rc = meter__fail(errstr, es, METER_ERR_KAFKA, "emit: %s", rd_kafka_err2str(err));
fail:
	free(ctx);
	return rc;
}

/* Serialize root (borrowed) and produce it. */
static int produce_json(meter_t *m, const char *key, const json_t *root, struct dctx *ctx,
			char *errstr, size_t es)
{
	char stackbuf[4096], *buf = stackbuf;
	size_t len = json_dumpb(root, stackbuf, sizeof(stackbuf), DUMP_FLAGS);
	int rc;

	if (len == 0) {
		free(ctx);
		return meter__fail(errstr, es, METER_ERR_NOMEM, "emit: cannot serialize the event");
	}
	if (len > METER_EVENT_MAX_BYTES) {
		free(ctx);
		atomic_fetch_add(&m->emit_invalid, 1);
		return meter__fail(errstr, es, METER_ERR_INVALID, "event: %zu bytes, at most %d",
				   len, METER_EVENT_MAX_BYTES);
	}
	if (len > sizeof(stackbuf)) {
		if (!(buf = malloc(len))) {
			free(ctx);
			return meter__fail(errstr, es, METER_ERR_NOMEM, "out of memory");
		}
		json_dumpb(root, buf, len, DUMP_FLAGS);
	}
	rc = produce(m, key, buf, len, ctx, errstr, es);
	if (buf != stackbuf)
		free(buf);
	return rc;
}

static struct dctx *new_ctx(const meter_t *m, const char *id)
{
	struct dctx *c;

	if (!m->on_delivery)
		return NULL;
	if ((c = calloc(1, sizeof(*c))))
		snprintf(c->id, sizeof(c->id), "%s", id ? id : "");
	return c;
}

int meter_emit(meter_t *m, const meter_event_t *ev, char *id_out, size_t id_out_size,
	       char *errstr, size_t errstr_size)
{
	char id[METER_ID_MAX + 1];
	unsigned char rnd[16];
	json_t *root = NULL;
	int rc;

	if (!m || !ev)
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "emit: handle and event are required");
	if (!m->prod)
		return meter__fail(errstr, errstr_size, METER_ERR_DISABLED,
				   "emit: this handle was created without emit");
	if ((rc = meter__event_validate(ev, errstr, errstr_size)) != METER_OK) {
		atomic_fetch_add(&m->emit_invalid, 1);
		return rc;
	}
	if (ev->id && *ev->id) {
		snprintf(id, sizeof(id), "%s", ev->id);
	} else {
		if (meter__random(m, rnd, sizeof(rnd)) != 0)
			return meter__fail(errstr, errstr_size, METER_ERR_KAFKA,
					   "emit: cannot read random bytes for the event id");
		meter__uuid4(rnd, id);
	}
	if ((rc = meter__event_build(m, ev, id, &root, errstr, errstr_size)) != METER_OK) {
		if (rc == METER_ERR_INVALID)
			atomic_fetch_add(&m->emit_invalid, 1);
		return rc;
	}
	rc = produce_json(m, ev->tenant_id, root, new_ctx(m, id), errstr, errstr_size);
	json_decref(root);
	if (rc == METER_OK && id_out && id_out_size > 0)
		snprintf(id_out, id_out_size, "%s", id);
	return rc;
}

int meter_emit_json(meter_t *m, const char *tenant_key, const char *json, size_t len,
		    char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *root = NULL, *data;
	const char *key = tenant_key, *id;
	int rc;

	if (!m || !json)
		return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				   "emit: handle and event are required");
	if (!m->prod)
		return meter__fail(errstr, errstr_size, METER_ERR_DISABLED,
				   "emit: this handle was created without emit");
	if (len == 0 || len > METER_EVENT_MAX_BYTES) {
		rc = meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				 "event: %zu bytes, expected 1 to %d", len, METER_EVENT_MAX_BYTES);
		goto invalid;
	}
	root = json_loadb(json, len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = meter__fail(errstr, errstr_size, METER_ERR_INVALID,
				 "event: not a JSON object (%s)", root ? "another type" : jerr.text);
		goto invalid;
	}
	if (!key || !*key) {
		data = json_object_get(root, "data");
		key = json_string_value(json_object_get(data, "tenant_id"));
		if (!key)
			key = json_string_value(json_object_get(root, "subject"));
	}
	if ((rc = meter__check_id("tenant key", key, errstr, errstr_size)))
		goto invalid;
	id = json_string_value(json_object_get(root, "id"));
	rc = produce(m, key, json, len, new_ctx(m, id), errstr, errstr_size);
	json_decref(root);
	return rc;
invalid:
	atomic_fetch_add(&m->emit_invalid, 1);
	json_decref(root);
	return rc;
}

/* ---- the producer's life ------------------------------------------------------------- */

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
	meter_t *m = opaque;
	struct dctx *c = msg->_private;
	char tenant[METER_ID_MAX + 1] = "";

	(void)rk;
	if (msg->err) {
		atomic_fetch_add(&m->delivery_failed, 1);
		meter__set_last_error(m, "delivery to %s failed: %s", m->events_topic,
				      rd_kafka_err2str(msg->err));
	} else {
		atomic_fetch_add(&m->delivered, 1);
	}
	if (m->on_delivery) {
		size_t kl = msg->key_len < sizeof(tenant) - 1 ? msg->key_len : sizeof(tenant) - 1;
		if (msg->key)
			memcpy(tenant, msg->key, kl);
		tenant[msg->key ? kl : 0] = '\0';
		meter_delivery_t d = {
			.id = c ? c->id : "",
			.tenant = tenant,
			.ok = msg->err == RD_KAFKA_RESP_ERR_NO_ERROR,
			.error = msg->err ? rd_kafka_err2str(msg->err) : "",
			.partition = msg->err ? -1 : msg->partition,
			.offset = msg->err ? -1 : msg->offset,
		};
		m->on_delivery(&d, m->delivery_opaque);
	}
	free(c);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	meter_t *m = opaque;
	char why[256];

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		rd_kafka_fatal_error(rk, why, sizeof(why));
		meter__set_last_error(m, "producer fatal error: %s", why);
		return;
	}
	meter__set_last_error(m, "producer: %s", reason);
}

static void *poller_main(void *arg)
{
	meter_t *m = arg;

	while (!atomic_load(&m->poller_stop))
		rd_kafka_poll(m->prod, 100);
	return NULL;
}

int meter__emit_start(meter_t *m, const char *brokers, const meter_opts_t *o, char *errstr,
		      size_t es)
{
	static const char *const defaults[][2] = {
		{"client.id", "libmeter"},
		{"enable.idempotence", "true"},
		{"acks", "all"},
		{"linger.ms", "5"},
	};
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	char why[512];
	int rc;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, why, sizeof(why))) {
		rc = meter__fail(errstr, es, METER_ERR_INVALID, "brokers: %s", why);
		goto fail;
	}
	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], NULL, 0);
	if ((rc = meter__apply_props(conf, o, 1, errstr, es)) != METER_OK)
		goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_opaque(conf, m);
	if (!(m->prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, why, sizeof(why)))) {
		rc = meter__fail(errstr, es, METER_ERR_KAFKA, "producer: %s", why);
		goto fail;
	}
	conf = NULL; /* now owned by m->prod */
	if (!(m->prod_topic = rd_kafka_topic_new(m->prod, m->events_topic, NULL)))
		return meter__fail(errstr, es, METER_ERR_KAFKA, "topic %s: %s", m->events_topic,
				   rd_kafka_err2str(rd_kafka_last_error()));
	if (pthread_create(&m->poller, NULL, poller_main, m) != 0)
		return meter__fail(errstr, es, METER_ERR_NOMEM, "cannot start the producer thread");
	m->poller_started = 1;
	return METER_OK;
fail:
	if (conf)
		rd_kafka_conf_destroy(conf);
	return rc;
}

void meter__emit_stop(meter_t *m)
{
	if (m->poller_started) {
		atomic_store(&m->poller_stop, 1);
		rd_kafka_yield(m->prod);
		pthread_join(m->poller, NULL);
		m->poller_started = 0;
	}
	if (m->prod) {
		if (m->flush_timeout_ms > 0)
			rd_kafka_flush(m->prod, m->flush_timeout_ms);
		/* What is left fails now, with a delivery report each (which
		 * also frees its context). */
		rd_kafka_purge(m->prod, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		for (int i = 0; i < 100 && rd_kafka_outq_len(m->prod) > 0; i++)
			rd_kafka_poll(m->prod, 10);
	}
	if (m->prod_topic)
		rd_kafka_topic_destroy(m->prod_topic);
	m->prod_topic = NULL;
	if (m->prod)
		rd_kafka_destroy(m->prod);
	m->prod = NULL;
}
