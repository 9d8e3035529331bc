/* zones.c - see zones.h. */
#include "zones.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "db.h"
#include "num.h"

#define CACHE_MAX (1u << 20) /* entries kept before the cache starts over */

struct slot {
	int64_t minute;
	int32_t zone; /* -1: empty */
	int32_t day;
};

struct zone {
	char **names;
	int nnames, capnames;
	struct slot *slots; /* open addressing, cap a power of two */
	size_t nslots, cap;
};

struct zone *zone_new(void)
{
	return calloc(1, sizeof(struct zone));
}

void zone_destroy(struct zone *z)
{
	if (!z)
		return;
	for (int i = 0; i < z->nnames; i++)
		free(z->names[i]);
	free(z->names);
	free(z->slots);
	free(z);
}

int zone_id(struct zone *z, const char *tz)
{
	for (int i = 0; i < z->nnames; i++)
		if (strcmp(z->names[i], tz) == 0)
			return i;
	if (z->nnames == z->capnames) {
		int ncap = z->capnames ? z->capnames * 2 : 16;
		char **n = realloc(z->names, (size_t)ncap * sizeof(*n));
		if (!n)
			return -1;
		z->names = n;
		z->capnames = ncap;
	}
	char *copy = strdup(tz);
	if (!copy)
		return -1;
	z->names[z->nnames] = copy;
	return z->nnames++;
}

/* Days since 1970-01-01 of a civil date, and back (Howard Hinnant's
 * algorithms, proleptic Gregorian). */
int32_t zone_days(int y, int m, int d)
{
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	int yoe = y - era * 400;
	int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return (int32_t)(era * 146097 + doe - 719468);
}

void zone_civil(int32_t day, int *y, int *m, int *d)
{
	int z = day + 719468;
	int era = (z >= 0 ? z : z - 146096) / 146097;
	int doe = z - era * 146097;
	int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp + (mp < 10 ? 3 : -9);
	*y = yoe + era * 400 + (*m <= 2);
}

static uint64_t slot_hash(int32_t zone, int64_t minute)
{
	uint64_t h = (uint64_t)minute * 0x9e3779b97f4a7c15ULL ^ (uint64_t)zone * 0xc2b2ae3d27d4eb4fULL;
	return h ^ (h >> 29);
}

static struct slot *find(struct zone *z, int32_t zone, int64_t minute)
{
	if (!z->cap)
		return NULL;
	size_t s = (size_t)slot_hash(zone, minute) & (z->cap - 1);
	while (z->slots[s].zone >= 0) {
		if (z->slots[s].zone == zone && z->slots[s].minute == minute)
			return &z->slots[s];
		s = (s + 1) & (z->cap - 1);
	}
	return NULL;
}

static int reserve(struct zone *z, size_t more)
{
	if (z->nslots + more > CACHE_MAX) {
		z->nslots = 0; /* start over: a cache, not a registry */
		for (size_t i = 0; i < z->cap; i++)
			z->slots[i].zone = -1;
	}
	if ((z->nslots + more) * 2 <= z->cap)
		return 0;
	size_t ncap = z->cap ? z->cap : 1024;
	while ((z->nslots + more) * 2 > ncap)
		ncap *= 2;
	struct slot *ns = malloc(ncap * sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < ncap; i++)
		ns[i].zone = -1;
	for (size_t i = 0; i < z->cap; i++) {
		if (z->slots[i].zone < 0)
			continue;
		size_t s = (size_t)slot_hash(z->slots[i].zone, z->slots[i].minute) & (ncap - 1);
		while (ns[s].zone >= 0)
			s = (s + 1) & (ncap - 1);
		ns[s] = z->slots[i];
	}
	free(z->slots);
	z->slots = ns;
	z->cap = ncap;
	return 0;
}

static void insert(struct zone *z, int32_t zone, int64_t minute, int32_t day)
{
	size_t s = (size_t)slot_hash(zone, minute) & (z->cap - 1);
	while (z->slots[s].zone >= 0) {
		if (z->slots[s].zone == zone && z->slots[s].minute == minute) {
			z->slots[s].day = day;
			return;
		}
		s = (s + 1) & (z->cap - 1);
	}
	z->slots[s] = (struct slot){minute, zone, day};
	z->nslots++;
}

static int64_t minute_of(int64_t us)
{
	return us >= 0 ? us / 60000000 : -((-us + 59999999) / 60000000);
}

/* Ask the server for the local dates of the pairs in the arrays. */
static int resolve(struct zone *z, PGconn *conn, const int32_t *zones, const int64_t *minutes,
		   size_t n, char *errstr, size_t errstr_size)
{
	struct buf tzs, mins;
	int rc = -1;
	buf_init(&tzs, 0);
	buf_init(&mins, 0);
	buf_putc(&tzs, '{');
	buf_putc(&mins, '{');
	for (size_t i = 0; i < n; i++) {
		if (i) {
			buf_putc(&tzs, ',');
			buf_putc(&mins, ',');
		}
		/* Zone names come from tenants.tz, checked by the table's
		 * constraint; quote them for the array literal all the same. */
		buf_putc(&tzs, '"');
		for (const char *p = z->names[zones[i]]; *p; p++) {
			if (*p == '"' || *p == '\\')
				buf_putc(&tzs, '\\');
			buf_putc(&tzs, *p);
		}
		buf_putc(&tzs, '"');
		buf_appendf(&mins, "%lld", (long long)minutes[i]);
	}
	buf_putc(&tzs, '}');
	buf_putc(&mins, '}');
	buf_putc(&tzs, '\0');
	buf_putc(&mins, '\0');
	if (tzs.oom || mins.oom) {
		snprintf(errstr, errstr_size, "out of memory resolving time zones");
		goto out;
	}
	const char *params[2] = {tzs.data, mins.data};
	PGresult *res = db_query(conn,
				 "SELECT ((to_timestamp(u.m * 60) AT TIME ZONE u.tz)::date"
				 " - date '1970-01-01') FROM unnest($1::text[], $2::bigint[])"
				 " WITH ORDINALITY AS u(tz, m, i) ORDER BY u.i",
				 2, params, errstr, errstr_size, NULL);
	if (!res)
		goto out;
	if ((size_t)PQntuples(res) != n) {
		snprintf(errstr, errstr_size, "time zone lookup returned %d rows for %zu",
			 PQntuples(res), n);
		PQclear(res);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int64_t day;
		if (num_parse_i64(PQgetvalue(res, (int)i, 0), INT32_MIN, INT32_MAX, &day) != 0) {
			snprintf(errstr, errstr_size, "time zone lookup: bad day '%s'",
				 PQgetvalue(res, (int)i, 0));
			PQclear(res);
			goto out;
		}
		insert(z, zones[i], minutes[i], (int32_t)day);
	}
	PQclear(res);
	rc = 0;
out:
	buf_free(&tzs);
	buf_free(&mins);
	return rc;
}

int zone_local_days(struct zone *z, PGconn *conn, const int *zone_ids, const int64_t *time_us,
		    int32_t *out_day, size_t n, char *errstr, size_t errstr_size)
{
	int32_t *mz = NULL;
	int64_t *mm = NULL;
	size_t nm = 0;
	int rc = -1;
	if (reserve(z, n) != 0)
		goto oom;
	/* Missing pairs, each once (marked in the cache with day INT32_MIN
	 * until resolved). */
	for (size_t i = 0; i < n; i++) {
		int64_t minute = minute_of(time_us[i]);
		if (find(z, zone_ids[i], minute))
			continue;
		if (!mz) {
			mz = malloc(n * sizeof(*mz));
			mm = malloc(n * sizeof(*mm));
			if (!mz || !mm)
				goto oom;
		}
		insert(z, zone_ids[i], minute, INT32_MIN);
		mz[nm] = zone_ids[i];
		mm[nm] = minute;
		nm++;
	}
	if (nm && resolve(z, conn, mz, mm, nm, errstr, errstr_size) != 0) {
		/* Forget the placeholders: the next attempt asks again. */
		z->nslots = 0;
		for (size_t i = 0; i < z->cap; i++)
			z->slots[i].zone = -1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		out_day[i] = find(z, zone_ids[i], minute_of(time_us[i]))->day;
	rc = 0;
	goto out;
oom:
	snprintf(errstr, errstr_size, "out of memory resolving time zones");
out:
	free(mz);
	free(mm);
	return rc;
}
