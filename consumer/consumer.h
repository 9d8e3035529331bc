/* consumer.h - the Kafka side of meterd: one worker, a member of the
 * consumer group on the events topic, batching by size and time, rebalances
 * handled by loading the stored offsets from PostgreSQL, dead letters for
 * rejects. A process runs several (workers.h), each on its own thread with
 * its own database connection.
 *
 * Exactly-once counting rests on two things: the offsets stored in
 * PostgreSQL with the rollups (read on every assignment and after every
 * database failure), and the (tenant, id) dedupe. Kafka offset commits are
 * made after each batch for lag monitoring only.
 */
#ifndef METER_CONSUMER_H
#define METER_CONSUMER_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "aggregator.h"
#include "config.h"
#include "publisher.h"
#include "rollups.h"

struct consumer;

/* When a batch goes (consumer_batch_due). */
struct consumer_batching {
	int64_t max;         /* METER_BATCH_MAX */
	int64_t catchup_max; /* METER_CATCHUP_BATCH_MAX: with a backlog */
	int64_t wait_ms;     /* METER_BATCH_WAIT */
};

/* What a process's workers share (borrowed; any member may be NULL). */
struct consumer_shared {
	struct publisher *pub;   /* kicked when a batch records crossings */
	struct rollpub *rollpub; /* told when a worker catches up */
	atomic_int *assigned;    /* partitions the process's workers have */
	atomic_llong *catchup_at; /* monotonic ms a worker was last catching up */
	int workers;             /* how many workers the process runs */
};

/* Create worker number `worker` (0..63): the group member, its dead-letter
 * producer and aggregator, and subscribe. sh is copied. Does not wait for
 * the database. NULL with errstr. */
struct consumer *consumer_new(const struct meter_config *cfg, int worker,
			      const struct consumer_shared *sh, char *errstr, size_t errstr_size);
/* Run on the calling thread until *stop becomes non-zero (then finish or
 * drop the batch, close the consumer so the group rebalances at once, flush
 * dead letters) or a fatal Kafka error. Returns 0 on a clean stop, -1 on a
 * fatal error. */
int consumer_run(struct consumer *c, volatile sig_atomic_t *stop);
/* Monotonic ms of the last turn of consumer_run()'s loop (at least every
 * 100 ms while no batch is being committed). Any thread. */
int64_t consumer_last_turn(const struct consumer *c);
/* The worker's cumulative counts (read them once it has stopped). */
const struct agg_stats *consumer_stats(const struct consumer *c);
/* Apply the reloadable options of cfg (batch size and wait, event size,
 * future bound) from the worker's next turn on. Any thread; cfg is
 * borrowed. */
void consumer_reconfigure(struct consumer *c, const struct meter_config *cfg);
/* The batching options of cfg. */
void consumer_batching_from_config(struct consumer_batching *b, const struct meter_config *cfg);
/* Whether a worker is catching up: the messages in its batch and those its
 * partitions hold beyond it (behind, from the last fetch responses) fill a
 * catch-up batch (METER_CATCHUP_BATCH_MAX, or METER_BATCH_MAX when larger).
 * Waiting for them then makes a bigger batch at once; with less, waiting
 * longer only adds latency. */
int consumer_catching_up(const struct consumer_batching *b, size_t pending, int64_t behind);
/* Whether the pending batch is due (pending messages; the batch's age
 * since its first message was added and since that message could have
 * been read; queue_empty: the last poll found nothing queued; behind: the
 * messages the worker's partitions hold beyond those read).
 * A batch is due at batch-max messages, or when its first message has
 * waited batch-wait. That wait counts from when the message could have
 * been read: a message queued behind the previous flush has been waiting
 * since that flush began, so the batch after a flush longer than
 * batch-wait goes as soon as the queue is drained, instead of waiting
 * batch-wait again (group commit: the batches' size follows the load, and
 * a batch starts at most once per batch-wait). While catching up
 * (consumer_catching_up), the batch grows to the catch-up batch-max, or
 * waits ten times batch-wait (at least 5 s) from the first message added:
 * bigger batches mean fewer upserts per event. */
int consumer_batch_due(const struct consumer_batching *b, size_t pending, int64_t age_ms,
		       int64_t ready_age_ms, int queue_empty, int64_t behind);
/* consumer_destroy(NULL) is a no-op. */
void consumer_destroy(struct consumer *c);

#endif
