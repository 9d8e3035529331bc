/* rollup.c - see rollup.h. */
#include "rollup.h"

#include <stdlib.h>
#include <string.h>

#include "num.h"
#include "zones.h"

struct sums {
	int64_t events, requests, input, cached, output, reasoning;
	__int128 cost, quantity;
};

struct row {
	uint64_t hash;
	uint32_t key_off, key_len;
	struct sums s;
};

/* Rows keyed by their COPY key text. */
struct acc {
	struct buf keys;   /* all key texts, back to back */
	struct row *rows;
	size_t nrows, caprows;
	uint32_t *index;   /* row number + 1; 0 empty; cap a power of two */
	size_t capindex;
};

struct rol {
	struct acc rollups, breakdown;
	char key[1024];
	int32_t cached_day;
	char day_text[11], month_text[11];
};

static void acc_free(struct acc *a)
{
	buf_free(&a->keys);
	free(a->rows);
	free(a->index);
}

static void acc_reset(struct acc *a)
{
	buf_reset(&a->keys);
	a->nrows = 0;
	if (a->index)
		memset(a->index, 0, a->capindex * sizeof(*a->index));
}

struct rol *rol_new(void)
{
	struct rol *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	buf_init(&r->rollups.keys, 0);
	buf_init(&r->breakdown.keys, 0);
	r->cached_day = INT32_MIN;
	return r;
}

void rol_destroy(struct rol *r)
{
	if (!r)
		return;
	acc_free(&r->rollups);
	acc_free(&r->breakdown);
	free(r);
}

void rol_reset(struct rol *r)
{
	acc_reset(&r->rollups);
	acc_reset(&r->breakdown);
}

size_t rol_rows(const struct rol *r)
{
	return r->rollups.nrows;
}

size_t rol_breakdown_rows(const struct rol *r)
{
	return r->breakdown.nrows;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h ^ (h >> 32);
}

static int acc_grow_index(struct acc *a)
{
	size_t ncap = a->capindex ? a->capindex * 2 : 4096;
	uint32_t *ni = calloc(ncap, sizeof(*ni));
	if (!ni)
		return -1;
	for (size_t i = 0; i < a->nrows; i++) {
		size_t s = (size_t)a->rows[i].hash & (ncap - 1);
		while (ni[s])
			s = (s + 1) & (ncap - 1);
		ni[s] = (uint32_t)(i + 1);
	}
	free(a->index);
	a->index = ni;
	a->capindex = ncap;
	return 0;
}

/* The sums of the row with this key, created (zero) if new. */
static struct sums *acc_get(struct acc *a, const char *key, size_t len)
{
	if ((a->nrows + 1) * 2 > a->capindex && acc_grow_index(a) != 0)
		return NULL;
	uint64_t h = hash_bytes(key, len);
	size_t s = (size_t)h & (a->capindex - 1);
	for (uint32_t i; (i = a->index[s]) != 0; s = (s + 1) & (a->capindex - 1)) {
		struct row *row = &a->rows[i - 1];
		if (row->hash == h && row->key_len == len &&
		    memcmp(a->keys.data + row->key_off, key, len) == 0)
			return &row->s;
	}
	if (a->nrows == a->caprows) {
		size_t ncap = a->caprows ? a->caprows * 2 : 4096;
		struct row *nr = realloc(a->rows, ncap * sizeof(*nr));
		if (!nr)
			return NULL;
		a->rows = nr;
		a->caprows = ncap;
	}
	size_t off = a->keys.len;
	if (buf_append(&a->keys, key, len) != 0)
		return NULL;
	struct row *row = &a->rows[a->nrows];
	memset(row, 0, sizeof(*row));
	row->hash = h;
	row->key_off = (uint32_t)off;
	row->key_len = (uint32_t)len;
	a->index[s] = (uint32_t)(++a->nrows);
	return &row->s;
}

static void add_sums(struct sums *s, const struct rol_event *e, __int128 quantity)
{
	s->events++;
	s->requests += e->requests;
	s->input += e->input_tokens;
	s->cached += e->cached_input_tokens;
	s->output += e->output_tokens;
	s->reasoning += e->reasoning_tokens;
	s->cost += e->cost_pusd;
	s->quantity += quantity;
}

static char *put(char *p, const char *s)
{
	size_t n = strlen(s);
	memcpy(p, s, n);
	return p + n;
}

static void date_text(int32_t day, char *out)
{
	int y, m, d;
	zone_civil(day, &y, &m, &d);
	/* YYYY-MM-DD; years accepted by the event parser are 0001-9999. */
	out[0] = (char)('0' + y / 1000 % 10);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
}

int rol_add(struct rol *r, const struct rol_event *e)
{
	if (e->day != r->cached_day) {
		int y, m, d;
		zone_civil(e->day, &y, &m, &d);
		date_text(e->day, r->day_text);
		date_text(zone_days(y, m, 1), r->month_text);
		r->cached_day = e->day;
	}
	static const char *const types[3] = {"tenant", "user", "key"};
	static const char *const periods[2] = {"day", "month"};
	const char *ids[3] = {"", e->user_id, e->api_key_id};
	const char *starts[2] = {r->day_text, r->month_text};
	for (int t = 0; t < 3; t++) {
		if (t > 0 && !*ids[t])
			continue;
		for (int p = 0; p < 2; p++) {
			/* tenant \t type \t id \t period \t start */
			char *k = r->key;
			k = put(k, e->tenant_id);
			*k++ = '\t';
			k = put(k, types[t]);
			*k++ = '\t';
			k = put(k, ids[t]);
			*k++ = '\t';
			k = put(k, periods[p]);
			*k++ = '\t';
			k = put(k, starts[p]);
			size_t base = (size_t)(k - r->key);
			struct sums *s = acc_get(&r->rollups, r->key, base);
			if (!s)
				return -1;
			add_sums(s, e, 0);
			/* Breakdowns by day only: a month's is the sum of its days
			 * (meter_breakdown() in sql/R_breakdown.sql), which halves
			 * the breakdown rows a batch upserts. */
			if (p != 0)
				continue;

			k = r->key + base;
			k = put(k, "\toperation\t");
			k = put(k, e->operation);
			if (!(s = acc_get(&r->breakdown, r->key, (size_t)(k - r->key))))
				return -1;
			add_sums(s, e, 0);
			if (t != 0)
				continue;
			/* By model and by unit for the tenant only (billing and the
			 * usage API); users and keys get operations, which
			 * per-operation limits need. */
			k = r->key + base;
			k = put(k, "\tmodel\t");
			k = put(k, *e->provider ? e->provider : "unknown");
			*k++ = '/';
			k = put(k, *e->model ? e->model : "unknown");
			if (!(s = acc_get(&r->breakdown, r->key, (size_t)(k - r->key))))
				return -1;
			add_sums(s, e, 0);
			for (int u = 0; u < e->nunits; u++) {
				k = r->key + base;
				k = put(k, "\tunit\t");
				k = put(k, e->units[u].name);
				if (!(s = acc_get(&r->breakdown, r->key, (size_t)(k - r->key))))
					return -1;
				add_sums(s, e, e->units[u].quantity);
			}
		}
	}
	return 0;
}

static void copy_sums(struct buf *b, const struct sums *s, int with_quantity)
{
	char num[48];
	copy_sep(b);
	copy_i64(b, s->events);
	copy_sep(b);
	copy_i64(b, s->requests);
	copy_sep(b);
	copy_i64(b, s->input);
	copy_sep(b);
	copy_i64(b, s->cached);
	copy_sep(b);
	copy_i64(b, s->output);
	copy_sep(b);
	copy_i64(b, s->reasoning);
	copy_sep(b);
	buf_append(b, num, num_format_i128(s->cost, num, sizeof(num)));
	if (with_quantity) {
		copy_sep(b);
		buf_append(b, num, num_format_i128(s->quantity, num, sizeof(num)));
	}
	copy_eol(b);
}

/* qsort has no context argument in C11; per thread, as every consumer
 * worker sorts its own batch's rows at the same time. */
static _Thread_local const char *sort_keys;

static int row_cmp(const void *x, const void *y)
{
	const struct row *a = *(const struct row *const *)x, *b = *(const struct row *const *)y;
	size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
	int c = memcmp(sort_keys + a->key_off, sort_keys + b->key_off, n);
	return c ? c : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

/* The rows in key order: the byte order of "tenant\ttype\tid\tperiod\tstart..."
 * is the order of the columns under PostgreSQL's C collation (ids hold no
 * byte below the tab; dates are YYYY-MM-DD), so the upserts' ORDER BY finds
 * its input already sorted, and PostgreSQL's sort checks that in one pass
 * instead of sorting 100,000 text keys (~300 ms a batch measured). */
static int copy_acc(const struct acc *a, struct buf *b, int with_quantity)
{
	const struct row **order = malloc((a->nrows ? a->nrows : 1) * sizeof(*order));
	if (!order)
		return -1;
	for (size_t i = 0; i < a->nrows; i++)
		order[i] = &a->rows[i];
	sort_keys = a->keys.data;
	qsort(order, a->nrows, sizeof(*order), row_cmp);
	for (size_t i = 0; i < a->nrows; i++) {
		buf_append(b, a->keys.data + order[i]->key_off, order[i]->key_len);
		copy_sums(b, &order[i]->s, with_quantity);
	}
	free(order);
	return 0;
}

int rol_copy_rollups(const struct rol *r, struct buf *b)
{
	return copy_acc(&r->rollups, b, 0);
}

int rol_copy_breakdown(const struct rol *r, struct buf *b)
{
	return copy_acc(&r->breakdown, b, 1);
}
