/* dlq.h - the producer of dead letters: rejected events go to the DLQ topic
 * with the reason and their origin in headers. Idempotent producer, acks=all.
 * The rejected_events table is the durable record. The consumer sends a
 * batch's letters before it commits the batch and waits a bounded time for
 * the broker; the rows of letters not acknowledged by then are stored with
 * dlq_pending set, and dlq_resend_pending (run by the rollup publisher's
 * thread, one process at a time) sends those again until acknowledged. So
 * every reject reaches the topic at least once. */
#ifndef METER_DLQ_H
#define METER_DLQ_H

#include <libpq-fe.h>
#include <stdatomic.h>

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
/* Send the rejected_events rows marked dlq_pending again, oldest first, and
 * clear the mark of those the broker acknowledged. Returns how many were
 * sent and cleared, or -1 with errstr (the rest stay pending: call again
 * later). Gives up early once *stop is set. Not with dlq_send on one dlq. */
int dlq_resend_pending(struct dlq *d, PGconn *conn, const atomic_int *stop, char *errstr,
		       size_t errstr_size);
/* Serve delivery reports without blocking. */
void dlq_poll(struct dlq *d);

uint64_t dlq_delivered(const struct dlq *d);
uint64_t dlq_failed(const struct dlq *d);

#endif
