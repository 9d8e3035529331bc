/* publisher.h - the suspension publisher: drains the flag outbox onto the
 * limits topic (key = subject, value = the subject's current flag) and clears
 * crossings whose period has ended.
 *
 * One publisher at a time holds a PostgreSQL advisory lock; the others stand
 * by and take over if it goes away. The outbox only names subjects: the flag
 * published is computed when draining, so whatever order transactions
 * committed in, the last record per key on the topic is the current state.
 * Rows are marked sent only after the broker acknowledged (idempotent
 * producer, acks=all), so a crash between commit and publish re-publishes.
 */
#ifndef METER_PUBLISHER_H
#define METER_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct publisher;

struct pub_stats {
	uint64_t published;   /* flags acknowledged by the broker */
	uint64_t failed;      /* flags the broker did not take (retried later) */
	uint64_t cleared;     /* subjects re-flagged by period-end clearing */
	int leader;           /* this process holds the publisher lock */
};

/* app_name names the PostgreSQL session. NULL with errstr on bad config. */
struct publisher *pub_new(const struct meter_config *cfg, const char *app_name, char *errstr,
			  size_t errstr_size);
/* Stops the thread (pub_start), flushes what is queued (bounded) and
 * releases the lock. NULL is a no-op. */
void pub_destroy(struct publisher *p);

/* meterd: run pub_tick() on a thread of its own, every 100 ms and at once
 * when pub_kick() is called, until pub_destroy(). 0, or -1 with errstr. */
int pub_start(struct publisher *p, char *errstr, size_t errstr_size);
/* A batch just recorded crossings: get their flags out now, not at the
 * next tick. Any thread; a no-op unless pub_start() ran. */
void pub_kick(struct publisher *p);

/* One turn (what the thread of pub_start() does every 100 ms): keeps the
 * database session, tries to become the publisher, clears expired crossings
 * once a second, and drains the outbox when woken (LISTEN), when kick != 0
 * or once a second. Bounded: never blocks for long. */
void pub_tick(struct publisher *p, int kick);

/* For meterctl: if no other publisher holds the lock, take it, publish every
 * pending flag, and let it go. Returns the number published, -2 when another
 * publisher is active (it will publish them), or -1 with errstr. */
int pub_drain_once(struct publisher *p, char *errstr, size_t errstr_size);

const struct pub_stats *pub_get_stats(const struct publisher *p);

#endif
