/* records.c - see records.h. */
#include "records.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "num.h"
#include "strmap.h"

/* PostgreSQL type oids of meter_rollup_rows' columns (pg_type.dat). */
#define OID_BOOL 16
#define OID_INT8 20

/* Period bounds remembered across results at most: a result that finds
 * more starts the cache over (the rows of the result being written point
 * into it, so never in the middle of one). Building with -DBOUNDS_MAX=2
 * and SANITIZE=address,undefined, t_rollups exercises the start-over. */
#ifndef BOUNDS_MAX
#define BOUNDS_MAX 4096
#endif

/* How a column goes into the JSON. */
enum col_kind {
	COL_STRING,
	COL_NUMBER,
	COL_BOOL,
	COL_LIMITS, /* JSON text; {} when NULL */
	COL_SUBJECT,
	COL_USD,
	COL_STARTS,
	COL_ENDS,
};

struct bound {
	char key[160]; /* tz, period, start, separated by \x1f */
	char starts_at[32], ends_at[32];
};

struct records {
	/* the bounds known, by key (the keys live in the bounds) */
	struct strmap map;
	struct bound **bounds;
	size_t nbounds, cap;
	/* the current result's layout */
	int n;
	enum col_kind *kind;
	struct buf names; /* "name": of every column, back to back */
	size_t *name_end; /* end of column c's name in names */
	int tenant, type, id, tz, period, start, cost;
	struct buf subject; /* rec_row's */
	/* each row's bounds (rec_begin) */
	const struct bound **row_bound;
	size_t row_cap;
};

struct records *rec_new(void)
{
	struct records *rc = calloc(1, sizeof(*rc));
	if (!rc)
		return NULL;
	strmap_init(&rc->map);
	buf_init(&rc->names, 0);
	buf_init(&rc->subject, 0);
	return rc;
}

static void forget_bounds(struct records *rc)
{
	for (size_t i = 0; i < rc->nbounds; i++)
		free(rc->bounds[i]);
	rc->nbounds = 0;
	strmap_reset(&rc->map);
}

static void forget_layout(struct records *rc)
{
	free(rc->kind);
	free(rc->name_end);
	rc->kind = NULL;
	rc->name_end = NULL;
	rc->n = 0;
	buf_reset(&rc->names);
}

void rec_free(struct records *rc)
{
	if (!rc)
		return;
	forget_bounds(rc);
	free(rc->bounds);
	strmap_free(&rc->map);
	forget_layout(rc);
	buf_free(&rc->names);
	buf_free(&rc->subject);
	free(rc->row_bound);
	free(rc);
}

static enum col_kind kind_of(const PGresult *res, int c)
{
	static const struct {
		const char *name;
		enum col_kind kind;
	} named[] = {
		{"limits", COL_LIMITS},   {"subject", COL_SUBJECT}, {"cost_usd", COL_USD},
		{"starts_at", COL_STARTS}, {"ends_at", COL_ENDS},
	};
	const char *name = PQfname(res, c);
	for (size_t i = 0; i < sizeof(named) / sizeof(named[0]); i++)
		if (strcmp(name, named[i].name) == 0)
			return named[i].kind;
	if (PQftype(res, c) == OID_BOOL)
		return COL_BOOL;
	if (PQftype(res, c) == OID_INT8)
		return COL_NUMBER;
	return COL_STRING;
}

static int layout(struct records *rc, const PGresult *res, char *errstr, size_t errstr_size)
{
	forget_layout(rc);
	struct {
		int *at;
		const char *name;
	} need[] = {
		{&rc->tenant, "tenant_id"}, {&rc->type, "subject_type"}, {&rc->id, "subject_id"},
		{&rc->tz, "tz"},           {&rc->period, "period"},     {&rc->start, "period_start"},
		{&rc->cost, "cost_pusd"},
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		*need[i].at = PQfnumber(res, need[i].name);
		if (*need[i].at < 0) {
			snprintf(errstr, errstr_size, "meter_rollup_rows: no column %s", need[i].name);
			return -1;
		}
	}
	rc->n = PQnfields(res);
	rc->kind = calloc((size_t)rc->n, sizeof(*rc->kind));
	rc->name_end = calloc((size_t)rc->n, sizeof(*rc->name_end));
	for (int c = 0; rc->kind && rc->name_end && c < rc->n; c++) {
		const char *name = PQfname(res, c);
		rc->kind[c] = kind_of(res, c);
		json_textn(&rc->names, name, strlen(name));
		buf_putc(&rc->names, ':');
		rc->name_end[c] = rc->names.len;
	}
	if (!rc->kind || !rc->name_end || rc->names.oom) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	return 0;
}

/* The bounds of row i: remembered, or asked of PostgreSQL. NULL with
 * errstr. */
static const struct bound *bound_of(struct records *rc, PGconn *conn, const PGresult *res, int i,
				    char *errstr, size_t errstr_size)
{
	const char *tz = PQgetvalue(res, i, rc->tz), *period = PQgetvalue(res, i, rc->period),
		   *start = PQgetvalue(res, i, rc->start);
	char key[sizeof(((struct bound *)0)->key)];
	int n = snprintf(key, sizeof(key), "%s\x1f%s\x1f%s", tz, period, start);
	if (n < 0 || (size_t)n >= sizeof(key)) {
		snprintf(errstr, errstr_size, "zone name too long: %.100s", tz);
		return NULL;
	}
	int64_t *at = strmap_get(&rc->map, key);
	if (at)
		return rc->bounds[*at];

	const char *params[3] = {tz, period, start};
	PGresult *b = db_query(conn, "SELECT starts_at, ends_at FROM meter_period_bounds($1, $2, $3)",
			       3, params, errstr, errstr_size, NULL);
	if (!b)
		return NULL;
	struct bound *nb = calloc(1, sizeof(*nb));
	if (!nb || PQntuples(b) != 1 || PQgetisnull(b, 0, 0) || PQgetisnull(b, 0, 1)) {
		snprintf(errstr, errstr_size, nb ? "no bounds for %s %s in %s" : "out of memory",
			 period, start, tz);
		free(nb);
		PQclear(b);
		return NULL;
	}
	memcpy(nb->key, key, (size_t)n + 1);
	snprintf(nb->starts_at, sizeof(nb->starts_at), "%s", PQgetvalue(b, 0, 0));
	snprintf(nb->ends_at, sizeof(nb->ends_at), "%s", PQgetvalue(b, 0, 1));
	PQclear(b);

	if (rc->nbounds == rc->cap) {
		size_t cap = rc->cap ? rc->cap * 2 : 64;
		struct bound **nbs = realloc(rc->bounds, cap * sizeof(*nbs));
		if (!nbs) {
			free(nb);
			snprintf(errstr, errstr_size, "out of memory");
			return NULL;
		}
		rc->bounds = nbs;
		rc->cap = cap;
	}
	int added;
	at = strmap_put(&rc->map, nb->key, (int64_t)rc->nbounds, &added);
	if (!at) {
		free(nb);
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	rc->bounds[rc->nbounds++] = nb;
	return nb;
}

/* Whether column c of row i (> 0) equals the row before's. */
static int same(const PGresult *res, int i, int c)
{
	return strcmp(PQgetvalue(res, i, c), PQgetvalue(res, i - 1, c)) == 0;
}

int rec_begin(struct records *rc, PGconn *conn, const PGresult *res, char *errstr,
	      size_t errstr_size)
{
	if (layout(rc, res, errstr, errstr_size) != 0)
		return -1;
	if (rc->nbounds >= BOUNDS_MAX)
		forget_bounds(rc);
	size_t rows = (size_t)PQntuples(res);
	if (rows > rc->row_cap) {
		const struct bound **rb = realloc(rc->row_bound, rows * sizeof(*rb));
		if (!rb) {
			snprintf(errstr, errstr_size, "out of memory");
			return -1;
		}
		rc->row_bound = rb;
		rc->row_cap = rows;
	}
	for (size_t i = 0; i < rows; i++) {
		/* Rows come in key order, a tenant's together: most share the
		 * zone, period and start of the row before. */
		if (i > 0 && same(res, (int)i, rc->start) && same(res, (int)i, rc->period) &&
		    same(res, (int)i, rc->tz)) {
			rc->row_bound[i] = rc->row_bound[i - 1];
			continue;
		}
		rc->row_bound[i] = bound_of(rc, conn, res, (int)i, errstr, errstr_size);
		if (!rc->row_bound[i])
			return -1;
	}
	return 0;
}

/* tenant/<tenant>, or <type>/<tenant>/<id>, as meter_subject() writes it. */
static void subject_of(const struct records *rc, const PGresult *res, int i, struct buf *out)
{
	const char *type = PQgetvalue(res, i, rc->type);
	buf_reset(out);
	if (strcmp(type, "tenant") == 0)
		buf_appendf(out, "tenant/%s", PQgetvalue(res, i, rc->tenant));
	else
		buf_appendf(out, "%s/%s/%s", type, PQgetvalue(res, i, rc->tenant),
			    PQgetvalue(res, i, rc->id));
	buf_putc(out, '\0');
}

/* The value: bigint and boolean columns as JSON numbers and literals
 * (PostgreSQL's text of them is), limits as the JSON text it holds ({}
 * when NULL), other NULLs as null, the rest as strings. Written directly:
 * jansson's object tree cost ~10 us per record, more than PostgreSQL saved
 * by not building the JSON. */
int rec_row(struct records *rc, const PGresult *res, int i, char *key, size_t key_size,
	    struct buf *json)
{
	subject_of(rc, res, i, &rc->subject);
	const char *p = PQgetvalue(res, i, rc->period);
	int n = rc->subject.oom ? -1
				: snprintf(key, key_size, "%s/%s/%.*s", rc->subject.data, p,
					   strcmp(p, "month") == 0 ? 7 : 10,
					   PQgetvalue(res, i, rc->start));
	if (n < 0 || (size_t)n >= key_size)
		return -1;
	const struct bound *b = rc->row_bound[i];
	char usd[64];
	buf_reset(json);
	buf_putc(json, '{');
	for (int c = 0; c < rc->n; c++) {
		const char *v = PQgetvalue(res, i, c);
		size_t vlen = (size_t)PQgetlength(res, i, c);
		size_t from = c > 0 ? rc->name_end[c - 1] : 0;
		int isnull = PQgetisnull(res, i, c);
		if (c > 0)
			buf_putc(json, ',');
		buf_append(json, rc->names.data + from, rc->name_end[c] - from);
		const char *mine = NULL; /* a column written here */
		switch (rc->kind[c]) {
		case COL_SUBJECT:
			mine = rc->subject.data;
			break;
		case COL_USD:
			num_format_pusd(PQgetvalue(res, i, rc->cost), 12, usd, sizeof(usd));
			mine = usd;
			break;
		case COL_STARTS:
			mine = b->starts_at;
			break;
		case COL_ENDS:
			mine = b->ends_at;
			break;
		default:
			break;
		}
		if (mine) {
			v = mine;
			vlen = strlen(mine);
			isnull = 0;
		}
		if (isnull)
			buf_append(json, rc->kind[c] == COL_LIMITS ? "{}" : "null",
				   rc->kind[c] == COL_LIMITS ? 2 : 4);
		else if (rc->kind[c] == COL_BOOL)
			buf_append(json, *v == 't' ? "true" : "false", *v == 't' ? 4 : 5);
		else if (rc->kind[c] == COL_NUMBER || rc->kind[c] == COL_LIMITS)
			buf_append(json, v, vlen);
		else
			json_textn(json, v, vlen);
	}
	buf_putc(json, '}');
	buf_putc(json, '\0');
	return json->oom ? -1 : 0;
}
