/* kafka.c - see kafka.h. */
#include "kafka.h"

#include "clock.h"
#include "log.h"
#include "kafka_props.h" /* libmeter's list, so that both route alike */

#include <stdio.h>
#include <string.h>

int kfk_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
	    size_t errstr_size)
{
	char err[256];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		snprintf(errstr, errstr_size, "Kafka property %s: %s", name, err);
		return -1;
	}
	return 0;
}

void kfk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 3)
		log_warnx("librdkafka %s: %s", fac, buf);
	else
		log_debug("librdkafka %s: %s", fac, buf);
}

rd_kafka_conf_t *kfk_conf_new(const struct meter_config *cfg, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* Through our logger (text or JSON lines), not librdkafka's own
	 * "%3|...|FAIL|..." lines on stderr. */
	rd_kafka_conf_set_log_cb(conf, kfk_log_cb);
	if (kfk_set(conf, "bootstrap.servers", cfg->kafka_brokers, errstr, errstr_size) != 0) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	return conf;
}

int kfk_prop_applies(const char *name, enum kfk_role role)
{
	return meter__kafka_prop_applies(name, role == KFK_PRODUCER);
}

int kfk_apply_props(rd_kafka_conf_t *conf, const struct meter_config *cfg, enum kfk_role role,
		    char *errstr, size_t errstr_size)
{
	for (int i = 0; i < cfg->nprops; i++)
		if (kfk_prop_applies(cfg->prop_name[i], role) &&
		    kfk_set(conf, cfg->prop_name[i], cfg->prop_value[i], errstr, errstr_size) != 0)
			return -1;
	return 0;
}

int kfk_check_props(const struct meter_config *cfg, char *errstr, size_t errstr_size)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = 0;
	for (int i = 0; i < cfg->nprops && rc == 0; i++) {
		const char *name = cfg->prop_name[i];
		/* libmeter's side prefixes (meterctl hands its properties on). */
		if (strncmp(name, "producer.", 9) == 0)
			name += 9;
		else if (strncmp(name, "consumer.", 9) == 0)
			name += 9;
		rc = kfk_set(conf, name, cfg->prop_value[i], errstr, errstr_size);
	}
	rd_kafka_conf_destroy(conf);
	return rc;
}

rd_kafka_resp_err_t kfk_produce(rd_kafka_t *rk, const char *topic, const char *key,
				const char *value, int timeout_ms)
{
	rd_kafka_resp_err_t err;
	int waited = 0;
	for (;;) {
		err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
					RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_KEY((void *)key, strlen(key)),
					RD_KAFKA_V_VALUE((void *)value, strlen(value)),
					RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited >= timeout_ms)
			return err;
		rd_kafka_poll(rk, 50);
		waited += 50;
	}
}

int kfk_wait_delivered(rd_kafka_t *rk, int timeout_ms, const atomic_int *stop)
{
	int64_t until = clock_mono_ms() + timeout_ms;
	while (rd_kafka_outq_len(rk) > 0 && clock_mono_ms() < until && !(stop && atomic_load(stop)))
		rd_kafka_flush(rk, 100);
	return rd_kafka_outq_len(rk) > 0 ? -1 : 0;
}
