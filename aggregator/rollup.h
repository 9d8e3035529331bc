/* rollup.h - a batch's rollups added up in memory before they reach
 * PostgreSQL: one row per (subject, period) and per breakdown entry however
 * many events of the batch touch it, so the database does one upsert per
 * distinct row instead of one per event.
 *
 * Rows are kept as the COPY text of their key columns (identifiers are
 * restricted to characters COPY never escapes) plus the sums; rol_copy_*
 * writes the staging rows for sql/R_batch.sql.
 */
#ifndef METER_ROLLUP_H
#define METER_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "event.h"

struct rol;

/* One counted event, as the rollups see it (strings borrowed). */
struct rol_event {
	const char *tenant_id;
	const char *user_id;     /* "" when absent */
	const char *api_key_id;  /* "" when absent */
	const char *provider;
	const char *model;
	const char *operation;
	int32_t day;             /* local date, days since 1970-01-01 */
	int64_t requests, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens;
	__int128 cost_pusd;
	const struct ev_unit *units;
	int nunits;
};

struct rol *rol_new(void);
/* rol_destroy(NULL) is a no-op. */
void rol_destroy(struct rol *r);
/* Forget all rows (memory is kept for the next batch). */
void rol_reset(struct rol *r);

/* Add one event to the tenant, user and key rows of its day and month, and
 * to the breakdowns of its day (operation for every subject; model and units
 * for the tenant; a month's breakdown is the sum of its days). 0, or -1 when
 * out of memory. */
int rol_add(struct rol *r, const struct rol_event *e);

size_t rol_rows(const struct rol *r);
size_t rol_breakdown_rows(const struct rol *r);

/* COPY text rows for stage_rollups: tenant_id, subject_type, subject_id,
 * period, period_start, events, requests, input_tokens, cached_input_tokens,
 * output_tokens, reasoning_tokens, cost_pusd; in key order (the order of
 * the key columns under the C collation). Returns 0, or -1 out of memory. */
int rol_copy_rollups(const struct rol *r, struct buf *b);
/* For stage_breakdown: the same key columns, dim, name, the same sums and
 * quantity; in key order. */
int rol_copy_breakdown(const struct rol *r, struct buf *b);

#endif
