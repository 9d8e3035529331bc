/* prices.c - see prices.h. */
#include "prices.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "num.h"
#include "strmap.h"

struct unit_price {
	char name[EV_UNIT_NAME_MAX + 1];
	int64_t pusd;
};

struct price {
	int64_t id;
	char *provider;
	char *model;
	size_t model_len;
	int64_t valid_from_us;
	int64_t input, cached, output, request;
	struct unit_price *units;
	int nunits;
};

/* Candidates for one (provider, model) as seen in events: indices into
 * rows, best first (longest model, then latest valid_from). */
struct cand {
	char *key; /* provider '\x1f' model (owned; borrowed by candidx) */
	int *idx;
	int n;
};

struct prc {
	char checksum[64];
	int64_t version;
	struct price *rows;
	int nrows;
	struct cand *cands;
	size_t ncands, capcands;
	struct strmap candidx; /* key -> index into cands */
};

static void clear_rows(struct prc *p)
{
	for (int i = 0; i < p->nrows; i++) {
		free(p->rows[i].provider);
		free(p->rows[i].model);
		free(p->rows[i].units);
	}
	free(p->rows);
	p->rows = NULL;
	p->nrows = 0;
	for (size_t i = 0; i < p->ncands; i++) {
		free(p->cands[i].key);
		free(p->cands[i].idx);
	}
	free(p->cands);
	p->cands = NULL;
	p->ncands = p->capcands = 0;
	strmap_free(&p->candidx);
	p->checksum[0] = '\0';
	p->version = 0;
}

struct prc *prc_new(void)
{
	return calloc(1, sizeof(struct prc));
}

void prc_destroy(struct prc *p)
{
	if (!p)
		return;
	clear_rows(p);
	free(p);
}

int64_t prc_version(const struct prc *p)
{
	return p->version;
}

const char *prc_source_name(enum prc_source s)
{
	switch (s) {
	case PRC_EVENT:
		return "event";
	case PRC_PRICE:
		return "price";
	default:
		return "unpriced";
	}
}

static int parse_units(const char *json, struct price *pr, char *errstr, size_t errstr_size)
{
	json_error_t jerr;
	json_t *o = json_loads(json, 0, &jerr);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(errstr, errstr_size, "prices.id %lld: unit_pusd is not a JSON object",
			 (long long)pr->id);
		return -1;
	}
	size_t n = json_object_size(o);
	pr->units = n ? calloc(n, sizeof(*pr->units)) : NULL;
	if (n && !pr->units) {
		json_decref(o);
		snprintf(errstr, errstr_size, "out of memory loading prices");
		return -1;
	}
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    strlen(k) > EV_UNIT_NAME_MAX)
			continue; /* no event unit can match it */
		struct unit_price *u = &pr->units[pr->nunits++];
		snprintf(u->name, sizeof(u->name), "%s", k);
		u->pusd = (int64_t)json_integer_value(v);
	}
	json_decref(o);
	return 0;
}

int prc_set_rows(struct prc *p, const struct prc_row *rows, int n, char *errstr,
		 size_t errstr_size)
{
	clear_rows(p);
	p->rows = n ? calloc((size_t)n, sizeof(*p->rows)) : NULL;
	if (n && !p->rows)
		goto oom;
	for (int i = 0; i < n; i++) {
		struct price *pr = &p->rows[p->nrows++];
		pr->id = rows[i].id;
		pr->provider = strdup(rows[i].provider);
		pr->model = strdup(rows[i].model);
		if (!pr->provider || !pr->model)
			goto oom;
		pr->model_len = strlen(pr->model);
		pr->valid_from_us = rows[i].valid_from_us;
		pr->input = rows[i].input_pusd;
		pr->cached = rows[i].cached_input_pusd;
		pr->output = rows[i].output_pusd;
		pr->request = rows[i].request_pusd;
		if (parse_units(rows[i].unit_pusd_json, pr, errstr, errstr_size) != 0) {
			clear_rows(p);
			return -1;
		}
		if (pr->id > p->version)
			p->version = pr->id;
	}
	return 0;
oom:
	clear_rows(p);
	snprintf(errstr, errstr_size, "out of memory loading prices");
	return -1;
}

static int load(struct prc *p, PGconn *conn, const char *checksum, char *errstr,
		size_t errstr_size)
{
	clear_rows(p);
	PGresult *res = db_query(conn,
				 "SELECT id, provider, model,"
				 " (extract(epoch FROM valid_from) * 1000000)::bigint,"
				 " input_pusd, cached_input_pusd, output_pusd, request_pusd,"
				 " unit_pusd::text FROM prices ORDER BY id",
				 0, NULL, errstr, errstr_size, NULL);
	if (!res)
		return -1;
	int n = PQntuples(res);
	struct prc_row *rows = calloc((size_t)n + 1, sizeof(*rows));
	int rc = -1;
	if (!rows) {
		snprintf(errstr, errstr_size, "out of memory loading prices");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct prc_row *r = &rows[i];
		r->provider = PQgetvalue(res, i, 1);
		r->model = PQgetvalue(res, i, 2);
		r->unit_pusd_json = PQgetvalue(res, i, 8);
		if (num_parse_i64(PQgetvalue(res, i, 0), 0, INT64_MAX, &r->id) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 3), INT64_MIN, INT64_MAX, &r->valid_from_us) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 4), 0, INT64_MAX, &r->input_pusd) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 5), 0, INT64_MAX, &r->cached_input_pusd) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 6), 0, INT64_MAX, &r->output_pusd) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 7), 0, INT64_MAX, &r->request_pusd) != 0) {
			snprintf(errstr, errstr_size, "prices row %d: unexpected values", i);
			goto out;
		}
	}
	if (prc_set_rows(p, rows, n, errstr, errstr_size) != 0)
		goto out;
	snprintf(p->checksum, sizeof(p->checksum), "%s", checksum);
	rc = 0;
out:
	free(rows);
	PQclear(res);
	return rc;
}

int prc_refresh(struct prc *p, PGconn *conn, char *errstr, size_t errstr_size)
{
	/* Any insert, update or delete changes this (the table is small). */
	PGresult *res = db_query(conn,
				 "SELECT count(*) || ':' || coalesce(max(id), 0) || ':'"
				 " || coalesce(sum(hashtext(p::text)::bigint), 0) FROM prices p",
				 0, NULL, errstr, errstr_size, NULL);
	if (!res)
		return -1;
	char sum[64];
	snprintf(sum, sizeof(sum), "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
	PQclear(res);
	if (p->checksum[0] && strcmp(sum, p->checksum) == 0)
		return 0;
	return load(p, conn, sum, errstr, errstr_size);
}

static int model_matches(const struct price *pr, const char *provider, const char *model)
{
	if (strcmp(pr->provider, provider) != 0)
		return 0;
	return strncmp(pr->model, model, pr->model_len) == 0 &&
	       (model[pr->model_len] == '\0' || model[pr->model_len] == '-');
}

/* Best first: longer model name, then later valid_from. The comparator's
 * context is per thread: each consumer worker has its own price table. */
static _Thread_local const struct prc *sort_ctx;
static int cand_cmp(const void *x, const void *y)
{
	const struct price *a = &sort_ctx->rows[*(const int *)x];
	const struct price *b = &sort_ctx->rows[*(const int *)y];
	if (a->model_len != b->model_len)
		return a->model_len > b->model_len ? -1 : 1;
	if (a->valid_from_us != b->valid_from_us)
		return a->valid_from_us > b->valid_from_us ? -1 : 1;
	return 0;
}

/* The candidate rows for (provider, model), computed once per pair. NULL
 * on allocation failure. */
static const struct cand *candidates(struct prc *p, const char *provider, const char *model)
{
	char key[EV_NAME_MAX + EV_MODEL_MAX + 2];
	snprintf(key, sizeof(key), "%s\x1f%s", provider, model);
	int64_t *found = strmap_get(&p->candidx, key);
	if (found)
		return &p->cands[*found];
	if (p->ncands == p->capcands) {
		size_t ncap = p->capcands ? p->capcands * 2 : 32;
		struct cand *nc = realloc(p->cands, ncap * sizeof(*nc));
		if (!nc)
			return NULL;
		p->cands = nc;
		p->capcands = ncap;
	}
	struct cand c = {0};
	c.key = strdup(key);
	c.idx = malloc(((size_t)p->nrows + 1) * sizeof(int));
	if (!c.key || !c.idx || !strmap_put(&p->candidx, c.key, (int64_t)p->ncands, NULL)) {
		free(c.key);
		free(c.idx);
		return NULL;
	}
	for (int i = 0; i < p->nrows; i++)
		if (model_matches(&p->rows[i], provider, model))
			c.idx[c.n++] = i;
	sort_ctx = p;
	qsort(c.idx, (size_t)c.n, sizeof(int), cand_cmp);
	p->cands[p->ncands] = c;
	return &p->cands[p->ncands++];
}

enum prc_source prc_cost(struct prc *p, const struct prc_usage *u, __int128 *cost,
			 int64_t *price_id)
{
	const struct price *pr = NULL;
	const struct cand *c = candidates(p, u->provider, u->model);
	*price_id = 0;
	if (c) {
		/* The longest matching model first; among its rows the latest
		 * already in force. A longer model with no row in force yet does
		 * not hide a shorter one that is (as ORDER BY ... LIMIT 1 does). */
		for (int i = 0; i < c->n && !pr; i++)
			if (p->rows[c->idx[i]].valid_from_us <= u->time_us)
				pr = &p->rows[c->idx[i]];
	}
	if (pr)
		*price_id = pr->id;
	if (u->has_cost) {
		*cost = u->cost_pusd;
		return PRC_EVENT;
	}
	if (!pr) {
		*cost = 0;
		return PRC_UNPRICED;
	}
	__int128 v = (__int128)(u->input_tokens - u->cached_input_tokens) * pr->input +
		     (__int128)u->cached_input_tokens * pr->cached +
		     (__int128)u->output_tokens * pr->output + (__int128)u->requests * pr->request;
	for (int i = 0; i < u->nunits; i++)
		for (int j = 0; j < pr->nunits; j++)
			if (strcmp(u->units[i].name, pr->units[j].name) == 0)
				v += (__int128)u->units[i].quantity * pr->units[j].pusd;
	*cost = v;
	return PRC_PRICE;
}
