/* rollups.h - the rollup publisher: drains the rollup outbox onto
 * usage.rollups (key = subject and period, value = the row's current totals,
 * limits and price version) for billing, and queues the final "closed"
 * record of every rollup once its period can no longer change (its end plus
 * the lateness bound plus a margin).
 *
 * It runs in its own thread with its own PostgreSQL session and producer, so
 * that publishing tens of thousands of records never stalls consumption.
 * One process at a time publishes (advisory lock); the others stand by.
 * Records are produced, acknowledged by the broker (idempotent producer,
 * acks=all), and only then removed from the outbox: at least once. Every
 * record carries the totals as read when publishing, and totals only grow,
 * so a later record for a key never shows less than an earlier one.
 *
 * The same thread, as leader, also sends again the dead letters that the
 * consumer could not get acknowledged (rejected_events.dlq_pending; see
 * dlq.h), every 10 s.
 */
#ifndef METER_ROLLUPS_H
#define METER_ROLLUPS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct rollpub;

/* Start the thread. NULL with errstr on bad configuration. */
struct rollpub *rollpub_start(const struct meter_config *cfg, char *errstr, size_t errstr_size);
/* Stop the thread (finishing the round in progress, bounded) and free all.
 * NULL is a no-op. */
void rollpub_stop(struct rollpub *r);

/* Whether consumer worker `worker` (0..63) is catching up on a backlog:
 * while any is, rounds are spaced out (three times their duration, at most
 * 15 s) to coalesce more batches; otherwise there is a round every
 * METER_ROLLUP_INTERVAL. Any thread; NULL is a no-op. */
void rollpub_set_backlog(struct rollpub *r, int worker, int backlog);

/* The pause after a round that took round_ms: interval_ms, or while
 * catching up three times the round (at most 15 s) when that is longer. */
int64_t rollpub_pause_ms(int64_t round_ms, int backlog, int64_t interval_ms);

/* Records acknowledged by the broker so far. */
uint64_t rollpub_published(const struct rollpub *r);

#endif
