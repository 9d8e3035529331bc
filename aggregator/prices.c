/* prices.c - see prices.h. */
#include "prices.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "num.h"

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
	char *key; /* provider '\x1f' model */
	uint64_t hash;
	int *idx;
	int n;
};

struct prc {
	char checksum[64];
	int64_t version;
	struct price *rows;
	int nrows;
	struct cand *cands; /* open addressing, cap a power of two */
	size_t ncands, capcands;
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
	for (size_t i = 0; i < p->capcands; i++) {
		free(p->cands[i].key);
		free(p->cands[i].idx);
	}
	free(p->cands);
	p->cands = NULL;
	p->ncands = p->capcands = 0;
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
	p->rows = n ? calloc((size_t)n, sizeof(*p->rows)) : NULL;
	if (n && !p->rows)
		goto oom;
	for (int i = 0; i < n; i++) {
		struct price *pr = &p->rows[p->nrows++];
		pr->provider = strdup(PQgetvalue(res, i, 1));
		pr->model = strdup(PQgetvalue(res, i, 2));
		if (!pr->provider || !pr->model)
			goto oom;
		pr->model_len = strlen(pr->model);
		if (num_parse_i64(PQgetvalue(res, i, 0), 0, INT64_MAX, &pr->id) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 3), INT64_MIN, INT64_MAX, &pr->valid_from_us) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 4), 0, INT64_MAX, &pr->input) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 5), 0, INT64_MAX, &pr->cached) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 6), 0, INT64_MAX, &pr->output) != 0 ||
		    num_parse_i64(PQgetvalue(res, i, 7), 0, INT64_MAX, &pr->request) != 0) {
			snprintf(errstr, errstr_size, "prices row %d: unexpected values", i);
			PQclear(res);
			clear_rows(p);
			return -1;
		}
		if (parse_units(PQgetvalue(res, i, 8), pr, errstr, errstr_size) != 0) {
			PQclear(res);
			clear_rows(p);
			return -1;
		}
		if (pr->id > p->version)
			p->version = pr->id;
	}
	PQclear(res);
	snprintf(p->checksum, sizeof(p->checksum), "%s", checksum);
	return 0;
oom:
	PQclear(res);
	clear_rows(p);
	snprintf(errstr, errstr_size, "out of memory loading prices");
	return -1;
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

static uint64_t hash2(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *s = a; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h = (h ^ 0x1f) * 1099511628211ULL;
	for (const char *s = b; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static int model_matches(const struct price *pr, const char *provider, const char *model)
{
	if (strcmp(pr->provider, provider) != 0)
		return 0;
	return strncmp(pr->model, model, pr->model_len) == 0 &&
	       (model[pr->model_len] == '\0' || model[pr->model_len] == '-');
}

/* Best first: longer model name, then later valid_from. */
static const struct prc *sort_ctx;
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

static int cands_grow(struct prc *p)
{
	size_t ncap = p->capcands ? p->capcands * 2 : 64;
	struct cand *c = calloc(ncap, sizeof(*c));
	if (!c)
		return -1;
	for (size_t i = 0; i < p->capcands; i++) {
		if (!p->cands[i].key)
			continue;
		size_t s = (size_t)p->cands[i].hash & (ncap - 1);
		while (c[s].key)
			s = (s + 1) & (ncap - 1);
		c[s] = p->cands[i];
	}
	free(p->cands);
	p->cands = c;
	p->capcands = ncap;
	return 0;
}

/* The candidate rows for (provider, model), computed once per pair. NULL
 * on allocation failure. */
static const struct cand *candidates(struct prc *p, const char *provider, const char *model)
{
	if ((p->ncands + 1) * 2 > p->capcands && cands_grow(p) != 0)
		return NULL;
	uint64_t h = hash2(provider, model);
	size_t plen = strlen(provider), mlen = strlen(model);
	size_t s = (size_t)h & (p->capcands - 1);
	while (p->cands[s].key) {
		const char *k = p->cands[s].key;
		if (p->cands[s].hash == h && strncmp(k, provider, plen) == 0 && k[plen] == 0x1f &&
		    strcmp(k + plen + 1, model) == 0)
			return &p->cands[s];
		s = (s + 1) & (p->capcands - 1);
	}
	struct cand c = {0};
	c.hash = h;
	c.key = malloc(plen + mlen + 2);
	c.idx = malloc(((size_t)p->nrows + 1) * sizeof(int));
	if (!c.key || !c.idx) {
		free(c.key);
		free(c.idx);
		return NULL;
	}
	memcpy(c.key, provider, plen);
	c.key[plen] = 0x1f;
	memcpy(c.key + plen + 1, model, mlen + 1);
	for (int i = 0; i < p->nrows; i++)
		if (model_matches(&p->rows[i], provider, model))
			c.idx[c.n++] = i;
	sort_ctx = p;
	qsort(c.idx, (size_t)c.n, sizeof(int), cand_cmp);
	p->cands[s] = c;
	p->ncands++;
	return &p->cands[s];
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
