/* zones.h - local dates in tenants' time zones, computed by PostgreSQL once
 * and remembered.
 *
 * Rollups count an event in the day and month in which it occurred in its
 * tenant's zone. Every zone's UTC offset is a whole number of minutes (since
 * long before any event meterd accepts), so the local date is constant over
 * each UTC minute: the cache maps (zone, minute) to the local date, and asks
 * the server only for pairs it has not seen (a batch of live traffic needs a
 * handful). The server's zone database stays the single authority, the same
 * one meter_period_start() and the limit evaluation use.
 */
#ifndef METER_ZONES_H
#define METER_ZONES_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

struct zone;

struct zone *zone_new(void);
/* zone_destroy(NULL) is a no-op. */
void zone_destroy(struct zone *z);

/* A small integer for a zone name (interned; the name is copied). -1 on
 * allocation failure. */
int zone_id(struct zone *z, const char *tz);

/* For i in [0, n): out_day[i] = the local date (days since 1970-01-01) of
 * the UTC instant time_us[i] in zone zone_ids[i]. Looks up the missing
 * (zone, minute) pairs in one query. 0, or -1 with errstr. */
int zone_local_days(struct zone *z, PGconn *conn, const int *zone_ids, const int64_t *time_us,
		    int32_t *out_day, size_t n, char *errstr, size_t errstr_size);

/* Civil date of a day number, and the day number of a civil date. */
void zone_civil(int32_t day, int *y, int *m, int *d);
int32_t zone_days(int y, int m, int d);

#endif
