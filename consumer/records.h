/* records.h - the usage.rollups records (prefix rec_): the Kafka key and the
 * JSON value of each row of meter_rollup_rows() (sql/R_rollups.sql).
 *
 * The value is an object of the row's columns, named as they are. Four of
 * them are left NULL by the SQL and written here: "subject"
 * (tenant/<tenant> or <type>/<tenant>/<id>), "cost_usd" (cost_pusd as a
 * decimal USD string) and "starts_at" / "ends_at" (the period's bounds in
 * UTC). The bounds depend only on the zone, the period and its start: they
 * are asked of PostgreSQL (meter_period_bounds, the zone database every
 * other date uses) once per distinct triple and remembered, where computing
 * them for every record had cost 14 % of meter_rollup_rows' time.
 */
#ifndef METER_RECORDS_H
#define METER_RECORDS_H

#include <libpq-fe.h>
#include <stddef.h>

#include "buf.h"

struct records;

struct records *rec_new(void);
/* rec_free(NULL) is a no-op. */
void rec_free(struct records *rc);

/* Get ready to write the rows of res (a result of meter_rollup_rows):
 * look its columns up, and the period bounds not known yet on conn. 0, or
 * -1 with errstr (a column missing, a query failed, out of memory). */
int rec_begin(struct records *rc, PGconn *conn, const PGresult *res, char *errstr,
	      size_t errstr_size);
/* Row i's key (subject/period/start, the start as YYYY-MM for a month, as
 * meter_rollup_key() writes it) and its JSON value into json
 * (NUL-terminated). 0, or -1 when the key does not fit or out of memory. */
int rec_row(struct records *rc, const PGresult *res, int i, char *key, size_t key_size,
	    struct buf *json);

#endif
