/* mxd.h - meterd's metrics (prefix mxd_): the families it exports and the
 * few calls the consumer, the aggregator's results and the publisher make.
 * Every call is a no-op until mxd_init(), so meterctl and the unit tests,
 * which link the same code, export nothing and pay nothing.
 *
 *   meter_events_consumed_total            messages read from the events topic
 *   meter_events_counted_total             events added to the rollups
 *   meter_events_duplicate_total           duplicates recognised and not counted
 *   meter_events_rejected_total{reason}    invalid events (rejected_events, DLQ)
 *   meter_batches_total                    committed batches
 *   meter_batch_events                     messages per committed batch (histogram)
 *   meter_batch_commit_seconds             time to commit a batch (histogram)
 *   meter_limit_crossings_total            limits reached (flags queued)
 *   meter_flags_published_total{state}     flags acknowledged on usage.limits
 *   meter_dead_letters_total{outcome}      acknowledged / pending / resent (see dlq.h)
 *   meter_consumer_lag{partition}          messages behind the partition's end
 *   meter_db_errors_total                  database failures (batch dropped, retried)
 *   meter_kafka_errors_total               errors reported by librdkafka
 */
#ifndef METER_MXD_H
#define METER_MXD_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>

#include "aggregator.h"
#include "config.h"
#include "metrics.h"

/* Register meterd's families in r (NULL: stay disabled). */
void mxd_init(struct mx_registry *r, const struct meter_config *cfg);

/* One message read from the events topic (any thread; lock-free). */
void mxd_consumed(void);
/* After each committed batch: a worker's aggregator stats before and after
 * it (cumulative; the difference is what this batch did). Any thread. */
void mxd_batch_committed(const struct agg_stats *before, const struct agg_stats *after);
void mxd_db_error(void);
void mxd_kafka_error(void);
void mxd_flags_published(int blocked, int ok);
/* Rollup records acknowledged (the rollup publisher's thread). */
void mxd_rollups_published(int n);
/* n dead letters: "acknowledged" (before their batch committed), "pending"
 * (stored to be sent again) or "resent" (a pending one acknowledged). */
void mxd_dead_letters(const char *outcome, int n);
/* Ask librdkafka for statistics every few seconds (when metrics are
 * enabled): the consumer's stats callback passes them to mxd_kafka_stats().
 * 0, or -1 with errstr. */
int mxd_kafka_conf(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size);
/* librdkafka statistics (JSON) of consumer worker `worker`: the lag of the
 * partitions it has replaces what it reported before (any thread). */
void mxd_kafka_stats(int worker, const char *json, size_t json_len);

#endif
