/* kafka_props.h - which kind of librdkafka client a property is for.
 *
 * Header-only, so that libmeter stays self-contained (it includes nothing
 * of the daemons) while meterd's common/kafka.c routes its pass-through
 * properties (METER_KAFKA_PROP_*, -X) by the same list: a consumer
 * property set on a producer (or the reverse) is ignored by librdkafka
 * with a CONFWARN line on stderr at the client's start.
 */
#ifndef METER_KAFKA_PROPS_H
#define METER_KAFKA_PROPS_H

#include <string.h>

/* The properties librdkafka 2.0.2 marks C (consumer) or P (producer) in its
 * CONFIGURATION.md, less the callbacks (not settable as text). */
static const char *const meter__consumer_only_props[] = {
	"auto.commit.enable", "auto.commit.interval.ms", "auto.offset.reset", "check.crcs",
	"consume.callback.max.messages", "coordinator.query.interval.ms", "enable.auto.commit",
	"enable.auto.offset.store", "enable.partition.eof", "fetch.error.backoff.ms",
	"fetch.max.bytes", "fetch.message.max.bytes", "fetch.min.bytes", "fetch.wait.max.ms",
	"group.id", "group.instance.id", "group.protocol.type", "heartbeat.interval.ms",
	"isolation.level", "max.partition.fetch.bytes", "max.poll.interval.ms",
	"offset.store.method", "offset.store.path", "offset.store.sync.interval.ms",
	"partition.assignment.strategy", "queued.max.messages.kbytes", "queued.min.messages",
	"session.timeout.ms", NULL};
static const char *const meter__producer_only_props[] = {
	"acks", "batch.num.messages", "batch.size", "compression.codec", "compression.level",
	"compression.type", "delivery.report.only.error", "delivery.timeout.ms",
	"enable.gapless.guarantee", "enable.idempotence", "linger.ms", "message.send.max.retries",
	"message.timeout.ms", "partitioner", "produce.offset.report",
	"queue.buffering.backpressure.threshold", "queue.buffering.max.kbytes",
	"queue.buffering.max.messages", "queue.buffering.max.ms", "queuing.strategy",
	"request.required.acks", "request.timeout.ms", "retries", "retry.backoff.ms",
	"sticky.partitioning.linger.ms", "transaction.timeout.ms", "transactional.id", NULL};

/* 0 when librdkafka applies property name to the other kind of client only
 * (producer: 1 for a producer, 0 for a consumer); 1 otherwise, unknown names
 * included, so that librdkafka still rejects a misspelt one. */
static inline int meter__kafka_prop_applies(const char *name, int producer)
{
	const char *const *other = producer ? meter__consumer_only_props : meter__producer_only_props;
	for (int i = 0; other[i]; i++)
		if (strcmp(name, other[i]) == 0)
			return 0;
	return 1;
}

#endif
