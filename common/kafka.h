/* kafka.h - librdkafka configuration from our config (brokers plus any
 * pass-through property). */
#ifndef METER_KAFKA_H
#define METER_KAFKA_H

#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stddef.h>

#include "config.h"

/* Returns a new conf with bootstrap.servers set. Apply the program's own
 * settings with kfk_set, then kfk_apply_props last so that the operator's
 * pass-through properties win.
 * NULL with errstr on a bad property. */
rd_kafka_conf_t *kfk_conf_new(const struct meter_config *cfg, char *errstr, size_t errstr_size);
/* librdkafka's log lines through log.h (warnings up to level 3, the rest as
 * debug); kfk_conf_new sets it on every client. */
void kfk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);
/* Set one property; 0 or -1 with errstr. */
int kfk_set(rd_kafka_conf_t *conf, const char *name, const char *value, char *errstr,
	    size_t errstr_size);
/* Every librdkafka property of cfg (METER_KAFKA_PROP_*, -X) is a known name
 * with a valid value: 0, or -1 with errstr set. For a program's start, so
 * that a typo is a configuration error before anything connects. */
int kfk_check_props(const struct meter_config *cfg, char *errstr, size_t errstr_size);

enum kfk_role { KFK_CONSUMER, KFK_PRODUCER };
/* Apply the user's pass-through properties (so they override our defaults),
 * those of the other kind of client only left out (kfk_prop_applies). */
int kfk_apply_props(rd_kafka_conf_t *conf, const struct meter_config *cfg, enum kfk_role role,
		    char *errstr, size_t errstr_size);
/* 0 when librdkafka applies property name to the other kind of client only
 * (set on this one, librdkafka would ignore it with a CONFWARN line at
 * start: METER_KAFKA_PROP_session_timeout_ms gave one per producer); 1
 * otherwise, unknown names included (rejected by kfk_set). */
int kfk_prop_applies(const char *name, enum kfk_role role);

/* Queue one message (key and value copied) on topic, waiting up to
 * timeout_ms for room while the local queue is full (serving delivery
 * reports meanwhile). Returns librdkafka's error, NO_ERROR when queued. */
rd_kafka_resp_err_t kfk_produce(rd_kafka_t *rk, const char *topic, const char *key,
				const char *value, int timeout_ms);

/* Serve delivery reports until nothing is in flight, for up to timeout_ms,
 * or sooner once *stop (if given) is set. 0 when nothing is left. */
int kfk_wait_delivered(rd_kafka_t *rk, int timeout_ms, const atomic_int *stop);

#endif
