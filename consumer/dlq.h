/* dlq.h - the producer of dead letters: rejected events go to the DLQ topic
 * with the reason and their origin in headers. Idempotent producer, acks=all.
 * The rejected_events table is the durable record; the topic copy is sent
 * before the batch commits and flushed with a bounded wait, so it is
 * at-least-once unless the broker stays unreachable past that wait. */
#ifndef METER_DLQ_H
#define METER_DLQ_H

#include "aggregator.h"
#include "config.h"

struct dlq;

/* NULL with errstr on a bad configuration. */
struct dlq *dlq_new(const struct meter_config *cfg, char *errstr, size_t errstr_size);
void dlq_destroy(struct dlq *d); /* flushes for up to 5 s first; NULL ok */

/* Queue one reject (from agg_each_reject). source_topic is borrowed. */
void dlq_send(struct dlq *d, const char *source_topic, const struct agg_reject *r);
/* Wait up to timeout_ms for queued messages. 0 if all were delivered. */
int dlq_flush(struct dlq *d, int timeout_ms);
/* Serve delivery reports without blocking. */
void dlq_poll(struct dlq *d);

uint64_t dlq_delivered(const struct dlq *d);
uint64_t dlq_failed(const struct dlq *d);

#endif
