/* workers.h - meterd's consumers (prefix wrk_): METER_WORKERS of them, each
 * a member of the consumer group on a thread of its own, with its own
 * database connection (consumer.h).
 *
 * Tenants are the message key, so a tenant's events stay on one partition
 * and one worker: workers never add into the same rollup rows, and each
 * commits its own partitions' offsets with its own batches. While one
 * worker's batch is being applied by PostgreSQL, another parses and applies
 * its own: the database's work on two batches overlaps, and so does parsing
 * with applying. It is the same as running that many meterd processes,
 * without their cost (one flag publisher, one rollup publisher, one HTTP
 * server).
 */
#ifndef METER_WORKERS_H
#define METER_WORKERS_H

#include <signal.h>
#include <stdint.h>

#include "config.h"
#include "publisher.h"
#include "rollups.h"

struct workers;

/* Create cfg->workers consumers and subscribe them; pub and rollpub are
 * borrowed (shared by all). NULL with errstr. */
struct workers *wrk_new(const struct meter_config *cfg, struct publisher *pub,
			struct rollpub *rollpub, char *errstr, size_t errstr_size);
/* Start the workers' threads, then call tick(opaque) on the calling thread
 * every 100 ms until *stop becomes non-zero or a worker fails; then stop
 * every worker (each finishes or drops its batch) and log the totals.
 * Returns 0 on a clean stop, -1 when a worker failed (a fatal Kafka error)
 * or could not be started. */
int wrk_run(struct workers *w, volatile sig_atomic_t *stop, void (*tick)(void *opaque),
	    void *opaque);
/* 1 when every worker has turned its loop since the previous call that
 * returned 1 (a worker committing a batch does not turn): for the
 * watchdog. */
int wrk_alive(struct workers *w);
/* Pass the reloadable options of cfg to every worker (borrowed). */
void wrk_reconfigure(struct workers *w, const struct meter_config *cfg);
/* Whether the workers' loop hands the allocator's free memory back to the
 * system (malloc_trim) at monotonic ms `now`: at most every
 * WRK_TRIM_EVERY_MS, and not within WRK_TRIM_EVERY_MS of a worker catching
 * up (trimming after every batch cost a 1M-event catch-up a third of its
 * rate: the next batch faults the pages in again). */
#define WRK_TRIM_EVERY_MS 10000
int wrk_trim_due(int64_t now, int64_t trimmed_at, int64_t catchup_at);
/* wrk_destroy(NULL) is a no-op. */
void wrk_destroy(struct workers *w);

#endif
