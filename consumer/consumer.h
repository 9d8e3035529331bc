/* consumer.h - the Kafka side of meterd: a consumer group on the events
 * topic, batching by size and time, rebalances handled by loading the stored
 * offsets from PostgreSQL, dead letters for rejects.
 *
 * Exactly-once counting rests on two things: the offsets stored in
 * PostgreSQL with the rollups (read on every assignment and after every
 * database failure), and the (tenant, id) dedupe. Kafka offset commits are
 * made after each batch for lag monitoring only.
 */
#ifndef METER_CONSUMER_H
#define METER_CONSUMER_H

#include <signal.h>
#include <stddef.h>

#include "config.h"

struct consumer;

/* Create the consumer, its dead-letter producer and aggregator, and
 * subscribe. Does not wait for the database. NULL with errstr. */
struct consumer *consumer_new(const struct meter_config *cfg, char *errstr, size_t errstr_size);
/* Run until *stop becomes non-zero (then finish or drop the batch, close
 * the consumer so the group rebalances at once, flush dead letters) or a
 * fatal Kafka error. Returns 0 on a clean stop, -1 on a fatal error. */
int consumer_run(struct consumer *c, volatile sig_atomic_t *stop);
/* Call fn(opaque) once per turn of consumer_run()'s loop (at least every
 * 100 ms while no batch is being committed), e.g. for watchdog pings and
 * reloads; it runs on the consumer's thread. */
void consumer_set_tick(struct consumer *c, void (*fn)(void *opaque), void *opaque);
/* Apply the reloadable options of cfg (batch size and wait, event size,
 * future bound) from the next batch on. cfg is borrowed. */
void consumer_reconfigure(struct consumer *c, const struct meter_config *cfg);
/* Whether the pending batch is due (pending messages, METER_BATCH_MAX,
 * METER_BATCH_WAIT; the batch's age since its first message was added and
 * since that message could have been read; queue_empty: the last poll
 * found nothing queued; backlog: the partitions are far behind their ends).
 * A batch is due at batch-max messages, or when its first message has
 * waited batch-wait. That wait counts from when the message could have
 * been read: a message queued behind the previous flush has been waiting
 * since that flush began, so the batch after a flush longer than
 * batch-wait goes as soon as the queue is drained, instead of waiting
 * batch-wait again (group commit: the batches' size follows the load, and
 * a batch starts at most once per batch-wait). With a backlog, the wait
 * stretches to ten times batch-wait (at least 1 s) from the first message
 * added: bigger batches mean fewer upserts per event while catching up. */
int consumer_batch_due(size_t pending, int64_t max, int64_t wait_ms, int64_t age_ms,
		       int64_t ready_age_ms, int queue_empty, int backlog);
/* consumer_destroy(NULL) is a no-op. */
void consumer_destroy(struct consumer *c);

#endif
