/* aggregator.c - see aggregator.h.
 *
 * A commit is: make sure the event-log partitions of the batch's months
 * exist (outside the transaction), then BEGIN; COPY the valid events into
 * stage_events and the rejects into stage_rejects; SELECT meter_apply_batch()
 * (sql/003_batch.sql), which fences and advances the offsets, dedupes, logs
 * the events, adds them to the rollups and stores the rejects; COMMIT.
 * Duplicates inside the batch are dropped here, before staging.
 */
#include "aggregator.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "db.h"
#include "failpoint.h"
#include "log.h"
#include "num.h"

enum item_kind { IT_EVENT, IT_REJECT, IT_DUP };

struct item {
	enum item_kind kind;
	int32_t partition;
	int64_t offset;
	struct meter_event ev; /* IT_EVENT, IT_DUP */
	struct ev_error err;   /* IT_REJECT */
	char *key;             /* IT_REJECT: copies for the table and the DLQ */
	size_t key_len;
	char *payload;
	size_t payload_len;
	size_t payload_size;
};

struct part_range {
	int32_t partition;
	int64_t first, last;
};

struct agg {
	PGconn *conn;
	char url[CFG_STR_MAX];
	char group_id[256];
	char topic[256];
	char default_plan[64];
	struct ev_limits lim;

	struct item *items;
	size_t n, cap, nrejects;

	int64_t *expected; /* indexed by partition; -1: none stored / unknown */
	int nexpected;

	int32_t *last_parts;
	int64_t *last_next;
	int nlast;

	int32_t months[32]; /* year*12+month-1 of partitions known to exist */
	int nmonths;

	struct buf copybuf;
	struct agg_stats stats;
	uint64_t last_crossings; /* limit crossings recorded by the last commit */
};

struct agg *agg_new(const struct meter_config *cfg, const char *topic)
{
	struct agg *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	snprintf(a->url, sizeof(a->url), "%s", cfg->database_url);
	snprintf(a->group_id, sizeof(a->group_id), "%s", cfg->group_id);
	snprintf(a->topic, sizeof(a->topic), "%s", topic);
	snprintf(a->default_plan, sizeof(a->default_plan), "%s", cfg->default_plan);
	agg_reconfigure(a, cfg);
	buf_init(&a->copybuf, 0);
	return a;
}

void agg_reconfigure(struct agg *a, const struct meter_config *cfg)
{
	a->lim.max_bytes = (size_t)cfg->max_event_bytes;
	a->lim.max_lateness_us = cfg->max_lateness_ms * 1000;
	a->lim.max_future_us = cfg->max_future_ms * 1000;
}

void agg_discard(struct agg *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		ev_clear(&it->ev);
		free(it->key);
		free(it->payload);
	}
	a->n = 0;
	a->nrejects = 0;
}

void agg_destroy(struct agg *a)
{
	if (!a)
		return;
	agg_discard(a);
	free(a->items);
	free(a->expected);
	free(a->last_parts);
	free(a->last_next);
	buf_free(&a->copybuf);
	if (a->conn)
		PQfinish(a->conn);
	free(a);
}

static void drop_conn(struct agg *a)
{
	if (a->conn)
		PQfinish(a->conn);
	a->conn = NULL;
}

int agg_connected(const struct agg *a)
{
	return a->conn && !db_broken(a->conn);
}

int agg_connect(struct agg *a, char *errstr, size_t errstr_size)
{
	drop_conn(a);
	/* The process id in application_name tells operators (and tests) which
	 * worker a session in pg_stat_activity belongs to. */
	char app[32];
	snprintf(app, sizeof(app), "meterd-%d", (int)getpid());
	a->conn = db_connect(a->url, app, errstr, errstr_size);
	if (!a->conn)
		return -1;
	/* A batch takes well under a second; a statement stuck for minutes means
	 * a sick server, and failing lets the consumer retry and resync. A
	 * worker frozen mid-transaction (VM pause, swapping) must not hold its
	 * rollup row locks against the worker that took its partitions over:
	 * the server ends a transaction idle for 30 s (ours never are). JIT is
	 * off: its compile time (~300 ms seen in plans) exceeds a batch's work.
	 * work_mem lets the rollup sort of a large batch stay in memory. */
	if (db_exec(a->conn,
		    "SET statement_timeout = '120s'; SET idle_in_transaction_session_timeout = '30s';"
		    " SET jit = off; SET work_mem = '64MB';"
		    " SELECT meter_stage_prepare()",
		    errstr, errstr_size) != 0) {
		drop_conn(a);
		return -1;
	}
	return 0;
}

static int expected_grow(struct agg *a, int32_t partition)
{
	if (partition < 0 || partition > 1000000)
		return -1;
	if (partition < a->nexpected)
		return 0;
	int n = partition + 1;
	int64_t *e = realloc(a->expected, (size_t)n * sizeof(*e));
	if (!e)
		return -1;
	for (int i = a->nexpected; i < n; i++)
		e[i] = -1;
	a->expected = e;
	a->nexpected = n;
	return 0;
}

void agg_forget_partition(struct agg *a, int32_t partition)
{
	if (partition >= 0 && partition < a->nexpected)
		a->expected[partition] = -1;
}

int agg_load_offsets(struct agg *a, const int32_t *parts, int n, int64_t *out_next,
		     char *errstr, size_t errstr_size)
{
	if (!agg_connected(a) && agg_connect(a, errstr, errstr_size) != 0)
		return -1;
	const char *params[2] = {a->group_id, a->topic};
	PGresult *res = db_query(a->conn,
				 "SELECT partition, next_offset FROM consumer_offsets"
				 " WHERE group_id = $1 AND topic = $2",
				 2, params, errstr, errstr_size, NULL);
	if (!res) {
		if (db_broken(a->conn))
			drop_conn(a);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		out_next[i] = -1;
		if (expected_grow(a, parts[i]) == 0)
			a->expected[parts[i]] = -1;
	}
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t p, off;
		if (num_parse_i64(PQgetvalue(res, r, 0), 0, INT32_MAX, &p) != 0 ||
		    num_parse_i64(PQgetvalue(res, r, 1), 0, INT64_MAX, &off) != 0)
			continue;
		for (int i = 0; i < n; i++) {
			if (parts[i] == p) {
				out_next[i] = off;
				if (expected_grow(a, parts[i]) == 0)
					a->expected[parts[i]] = off;
			}
		}
	}
	PQclear(res);
	return 0;
}

static struct item *item_new(struct agg *a)
{
	if (a->n == a->cap) {
		size_t ncap = a->cap ? a->cap * 2 : 1024;
		struct item *it = realloc(a->items, ncap * sizeof(*it));
		if (!it)
			return NULL;
		a->items = it;
		a->cap = ncap;
	}
	struct item *it = &a->items[a->n];
	memset(it, 0, sizeof(*it));
	return it;
}

static char *dup_bytes(const void *p, size_t len)
{
	char *d = malloc(len ? len : 1);
	if (d && len)
		memcpy(d, p, len);
	return d;
}

enum agg_added agg_add(struct agg *a, int32_t partition, int64_t offset, const void *key,
		       size_t key_len, const void *payload, size_t len, int64_t now_us)
{
	if (partition >= 0 && partition < a->nexpected && a->expected[partition] >= 0 &&
	    offset < a->expected[partition]) {
		a->stats.skipped++;
		return AGG_SKIPPED;
	}
	struct item *it = item_new(a);
	if (!it)
		return AGG_ADD_FAILED;
	it->partition = partition;
	it->offset = offset;
	struct ev_limits lim = a->lim;
	lim.now_us = now_us;
	if (ev_parse(payload, len, &lim, &it->ev, &it->err) == 0) {
		it->kind = IT_EVENT;
		a->n++;
		return AGG_ADDED;
	}
	it->kind = IT_REJECT;
	/* Keep what fits the cap: enough to see and replay any valid-sized event. */
	size_t keep = len < lim.max_bytes ? len : lim.max_bytes;
	it->payload = dup_bytes(payload, keep);
	if (!it->payload)
		return AGG_ADD_FAILED;
	it->payload_len = keep;
	it->payload_size = len;
	if (key) {
		it->key = dup_bytes(key, key_len);
		if (!it->key) {
			free(it->payload);
			return AGG_ADD_FAILED;
		}
		it->key_len = key_len;
	}
	/* The detail may quote input: keep it printable ASCII for the database. */
	for (char *p = it->err.detail; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
	a->n++;
	a->nrejects++;
	return AGG_ADDED_REJECT;
}

size_t agg_pending(const struct agg *a)
{
	return a->n;
}

size_t agg_pending_rejects(const struct agg *a)
{
	return a->nrejects;
}

void agg_each_reject(const struct agg *a, void (*fn)(const struct agg_reject *, void *),
		     void *opaque)
{
	for (size_t i = 0; i < a->n; i++) {
		const struct item *it = &a->items[i];
		if (it->kind != IT_REJECT)
			continue;
		struct agg_reject r = {it->partition, it->offset,    it->key,
				       it->key_len,   it->payload,   it->payload_len,
				       it->payload_size, &it->err};
		fn(&r, opaque);
	}
}

/* FNV-1a over tenant and id, for the in-batch duplicate set. */
static uint64_t ev_hash(const struct meter_event *e)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = e->tenant_id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0xff) * 1099511628211ULL;
	for (const char *p = e->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h;
}

/* Mark later copies of the same (tenant, id) in the batch as IT_DUP. */
static int mark_batch_duplicates(struct agg *a, uint64_t *dups)
{
	size_t cap = 16;
	while (cap < a->n * 2)
		cap *= 2;
	size_t *slots = malloc(cap * sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < cap; i++)
		slots[i] = SIZE_MAX;
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind == IT_DUP)
			it->kind = IT_EVENT; /* recomputed on every attempt */
		if (it->kind != IT_EVENT)
			continue;
		size_t s = (size_t)ev_hash(&it->ev) & (cap - 1);
		for (;;) {
			if (slots[s] == SIZE_MAX) {
				slots[s] = i;
				break;
			}
			const struct meter_event *o = &a->items[slots[s]].ev;
			if (strcmp(o->id, it->ev.id) == 0 &&
			    strcmp(o->tenant_id, it->ev.tenant_id) == 0) {
				it->kind = IT_DUP;
				(*dups)++;
				break;
			}
			s = (s + 1) & (cap - 1);
		}
	}
	free(slots);
	return 0;
}

static int month_key(int64_t us)
{
	time_t secs = (time_t)(us >= 0 ? us / 1000000 : (us - 999999) / 1000000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	return (tm.tm_year + 1900) * 12 + tm.tm_mon;
}

/* Create missing monthly partitions of the event log for this batch. */
static enum agg_result ensure_partitions(struct agg *a, char *errstr, size_t errstr_size)
{
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		int mk = month_key(it->ev.time_us);
		int known = 0;
		for (int m = 0; m < a->nmonths; m++)
			if (a->months[m] == mk)
				known = 1;
		if (known)
			continue;
		char ts[40];
		ev_format_time(it->ev.time_us, ts, sizeof(ts));
		const char *params[1] = {ts};
		char state[6];
		PGresult *res = db_query(a->conn, "SELECT meter_ensure_event_partition($1)", 1,
					 params, errstr, errstr_size, state);
		if (!res)
			return db_broken(a->conn) ? AGG_DB_DOWN : AGG_RETRY;
		PQclear(res);
		if (a->nmonths == (int)(sizeof(a->months) / sizeof(a->months[0])))
			a->nmonths = 0; /* a cache, not a registry */
		a->months[a->nmonths++] = mk;
	}
	return AGG_OK;
}

static void copy_event_row(struct buf *b, const char *topic, const struct item *it)
{
	const struct meter_event *e = &it->ev;
	char ts[40];
	ev_format_time(e->time_us, ts, sizeof(ts));
	copy_text(b, ts);
	copy_sep(b);
	copy_text(b, e->tenant_id);
	copy_sep(b);
	copy_text(b, e->id);
	copy_sep(b);
	copy_text_or_null(b, e->user_id);
	copy_sep(b);
	copy_text_or_null(b, e->api_key_id);
	copy_sep(b);
	copy_text(b, e->provider);
	copy_sep(b);
	copy_text(b, e->model);
	copy_sep(b);
	copy_text(b, e->operation);
	copy_sep(b);
	copy_text(b, e->source);
	copy_sep(b);
	copy_text(b, e->type);
	copy_sep(b);
	copy_i64(b, e->input_tokens);
	copy_sep(b);
	copy_i64(b, e->cached_input_tokens);
	copy_sep(b);
	copy_i64(b, e->output_tokens);
	copy_sep(b);
	copy_i64(b, e->reasoning_tokens);
	copy_sep(b);
	copy_i64(b, e->requests);
	copy_sep(b);
	copy_text(b, e->units_json);
	copy_sep(b);
	if (e->has_cost)
		copy_i64(b, e->cost_pusd);
	else
		copy_null(b);
	copy_sep(b);
	copy_text_or_null(b, e->endpoint);
	copy_sep(b);
	copy_text_or_null(b, e->method);
	copy_sep(b);
	if (e->status_code >= 0)
		copy_i64(b, e->status_code);
	else
		copy_null(b);
	copy_sep(b);
	if (e->latency_ms >= 0)
		copy_i64(b, e->latency_ms);
	else
		copy_null(b);
	copy_sep(b);
	copy_text_or_null(b, e->workflow_id);
	copy_sep(b);
	copy_text_or_null(b, e->execution_id);
	copy_sep(b);
	copy_text(b, e->metadata_json);
	copy_sep(b);
	copy_text(b, topic);
	copy_sep(b);
	copy_i64(b, it->partition);
	copy_sep(b);
	copy_i64(b, it->offset);
	copy_eol(b);
}

static void copy_reject_row(struct buf *b, const char *topic, const struct item *it)
{
	copy_text(b, topic);
	copy_sep(b);
	copy_i64(b, it->partition);
	copy_sep(b);
	copy_i64(b, it->offset);
	copy_sep(b);
	if (it->key)
		copy_bytea(b, it->key, it->key_len);
	else
		copy_null(b);
	copy_sep(b);
	copy_text(b, ev_reason_name(it->err.reason));
	copy_sep(b);
	copy_text(b, it->err.detail);
	copy_sep(b);
	copy_null(b); /* tenant_id: unknown for a rejected event */
	copy_sep(b);
	copy_null(b); /* event_id */
	copy_sep(b);
	copy_bytea(b, it->payload, it->payload_len);
	copy_sep(b);
	copy_i64(b, (int64_t)it->payload_size);
	copy_eol(b);
}

static int copy_in(struct agg *a, const char *sql, const struct buf *b, char *errstr,
		   size_t errstr_size)
{
	PGresult *res = PQexec(a->conn, sql);
	if (PQresultStatus(res) != PGRES_COPY_IN) {
		db_describe(a->conn, res, "COPY", errstr, errstr_size);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	int ok = 1;
	const size_t chunk = 1 << 20;
	for (size_t off = 0; off < b->len && ok; off += chunk) {
		size_t n = b->len - off < chunk ? b->len - off : chunk;
		if (PQputCopyData(a->conn, b->data + off, (int)n) != 1)
			ok = 0;
	}
	if (PQputCopyEnd(a->conn, ok ? NULL : "client error") != 1)
		ok = 0;
	int failed = !ok;
	while ((res = PQgetResult(a->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !failed) {
			db_describe(a->conn, res, "COPY", errstr, errstr_size);
			failed = 1;
		}
		PQclear(res);
	}
	if (failed && !*errstr)
		db_describe(a->conn, NULL, "COPY", errstr, errstr_size);
	return failed ? -1 : 0;
}

static int find_range(struct part_range *r, int nr, int32_t p)
{
	for (int i = 0; i < nr; i++)
		if (r[i].partition == p)
			return i;
	return -1;
}

/* Append "{a,b,c}" for an int64 array parameter. */
static void array_param(struct buf *b, const int64_t *v, int n)
{
	buf_reset(b);
	buf_putc(b, '{');
	for (int i = 0; i < n; i++)
		buf_appendf(b, "%s%" PRId64, i ? "," : "", v[i]);
	buf_putc(b, '}');
}

static enum agg_result classify(struct agg *a, const char *state)
{
	if (db_broken(a->conn))
		return AGG_DB_DOWN;
	if (strcmp(state, "MT001") == 0)
		return AGG_FENCED;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return AGG_RETRY;
	/* Class 08 (connection), 57P (shutdown, e.g. admin_shutdown), 53 (resources). */
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0 ||
	    strncmp(state, "53", 2) == 0)
		return AGG_DB_DOWN;
	return AGG_FAILED;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

enum agg_result agg_commit(struct agg *a, char *errstr, size_t errstr_size)
{
	enum agg_result rc = AGG_OK;
	struct part_range *ranges = NULL;
	int64_t *pv = NULL, *ev = NULL, *nv = NULL;
	struct buf pbuf, ebuf, nbuf;
	int in_tx = 0;
	uint64_t batch_dups = 0;
	double t0 = now_seconds();
	errstr[0] = '\0';
	buf_init(&pbuf, 0);
	buf_init(&ebuf, 0);
	buf_init(&nbuf, 0);

	if (a->n == 0)
		goto out;
	if (!agg_connected(a) && agg_connect(a, errstr, errstr_size) != 0) {
		rc = AGG_DB_DOWN;
		goto out;
	}

	/* Partitions in the batch and the offset after each one's last message. */
	ranges = calloc(a->n, sizeof(*ranges));
	if (!ranges) {
		snprintf(errstr, errstr_size, "out of memory");
		rc = AGG_FAILED;
		goto out;
	}
	int nr = 0;
	for (size_t i = 0; i < a->n; i++) {
		const struct item *it = &a->items[i];
		int r = find_range(ranges, nr, it->partition);
		if (r < 0) {
			r = nr++;
			ranges[r].partition = it->partition;
			ranges[r].first = it->offset;
		} else if (it->offset <= ranges[r].last) {
			/* A partition's messages arrive in offset order; anything else
			 * means positions were changed under us. Re-read from the
			 * stored offsets rather than guess. */
			snprintf(errstr, errstr_size,
				 "%s[%d]: offset %lld arrived after %lld in one batch", a->topic,
				 (int)it->partition, (long long)it->offset,
				 (long long)ranges[r].last);
			rc = AGG_FENCED;
			goto out;
		}
		ranges[r].last = it->offset;
	}
	if (mark_batch_duplicates(a, &batch_dups) != 0) {
		snprintf(errstr, errstr_size, "out of memory");
		rc = AGG_FAILED;
		goto out;
	}
	rc = ensure_partitions(a, errstr, errstr_size);
	if (rc != AGG_OK)
		goto out;

	if (db_exec(a->conn, "BEGIN", errstr, errstr_size) != 0) {
		rc = db_broken(a->conn) ? AGG_DB_DOWN : AGG_FAILED;
		goto out;
	}
	in_tx = 1;

	struct buf *b = &a->copybuf;
	buf_reset(b);
	for (size_t i = 0; i < a->n; i++)
		if (a->items[i].kind == IT_EVENT)
			copy_event_row(b, a->topic, &a->items[i]);
	if (b->oom) {
		snprintf(errstr, errstr_size, "out of memory staging the batch");
		rc = AGG_FAILED;
		goto out;
	}
	if (b->len && copy_in(a, "COPY stage_events FROM STDIN", b, errstr, errstr_size) != 0) {
		rc = classify(a, "");
		goto out;
	}
	if (a->nrejects) {
		buf_reset(b);
		for (size_t i = 0; i < a->n; i++)
			if (a->items[i].kind == IT_REJECT)
				copy_reject_row(b, a->topic, &a->items[i]);
		if (b->oom) {
			snprintf(errstr, errstr_size, "out of memory staging the rejects");
			rc = AGG_FAILED;
			goto out;
		}
		if (copy_in(a, "COPY stage_rejects FROM STDIN", b, errstr, errstr_size) != 0) {
			rc = classify(a, "");
			goto out;
		}
	}

	pv = calloc((size_t)nr, sizeof(*pv));
	ev = calloc((size_t)nr, sizeof(*ev));
	nv = calloc((size_t)nr, sizeof(*nv));
	if (!pv || !ev || !nv) {
		snprintf(errstr, errstr_size, "out of memory");
		rc = AGG_FAILED;
		goto out;
	}
	for (int r = 0; r < nr; r++) {
		int32_t p = ranges[r].partition;
		pv[r] = p;
		ev[r] = (p >= 0 && p < a->nexpected) ? a->expected[p] : -1;
		nv[r] = ranges[r].last + 1;
	}
	array_param(&pbuf, pv, nr);
	array_param(&ebuf, ev, nr);
	array_param(&nbuf, nv, nr);
	const char *params[6] = {a->group_id, a->topic, pbuf.data, ebuf.data, nbuf.data,
				 a->default_plan};
	char state[6];
	PGresult *res = db_query(a->conn,
				 "SELECT counted, duplicates, rejected, crossings FROM meter_apply_batch("
				 "$1, $2, $3::int[], $4::bigint[], $5::bigint[], $6)",
				 6, params, errstr, errstr_size, state);
	if (!res) {
		rc = classify(a, state);
		goto out;
	}
	int64_t counted = 0, dups = 0, rejected = 0, crossings = 0;
	if (PQntuples(res) == 1) {
		num_parse_i64(PQgetvalue(res, 0, 3), 0, INT64_MAX, &crossings);
		num_parse_i64(PQgetvalue(res, 0, 0), 0, INT64_MAX, &counted);
		num_parse_i64(PQgetvalue(res, 0, 1), 0, INT64_MAX, &dups);
		num_parse_i64(PQgetvalue(res, 0, 2), 0, INT64_MAX, &rejected);
	}
	PQclear(res);

	failpoint("before_commit");
	res = PQexec(a->conn, "COMMIT");
	in_tx = 0;
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		db_describe(a->conn, res, "COMMIT", errstr, errstr_size);
		snprintf(state, sizeof(state), "%s", s ? s : "");
		PQclear(res);
		/* A lost connection during COMMIT leaves the outcome unknown; the
		 * caller reloads the stored offsets, which tell. */
		rc = classify(a, state);
		goto out;
	}
	PQclear(res);

	for (int r = 0; r < nr; r++) {
		if (expected_grow(a, ranges[r].partition) == 0)
			a->expected[ranges[r].partition] = nv[r];
	}
	int32_t *lp = realloc(a->last_parts, (size_t)nr * sizeof(*lp));
	if (lp)
		a->last_parts = lp;
	int64_t *ln = realloc(a->last_next, (size_t)nr * sizeof(*ln));
	if (ln)
		a->last_next = ln;
	a->nlast = 0;
	if (lp && ln) {
		for (int r = 0; r < nr; r++) {
			a->last_parts[r] = ranges[r].partition;
			a->last_next[r] = nv[r];
		}
		a->nlast = nr;
	}

	a->stats.batches++;
	a->stats.messages += a->n;
	a->stats.counted += (uint64_t)counted;
	a->stats.duplicates += (uint64_t)dups + batch_dups;
	a->stats.rejected += (uint64_t)rejected;
	a->stats.crossings += (uint64_t)crossings;
	a->last_crossings = (uint64_t)crossings;
	for (size_t i = 0; i < a->n; i++)
		if (a->items[i].kind == IT_REJECT && a->items[i].err.reason < EV_REASON_COUNT)
			a->stats.rejected_by_reason[a->items[i].err.reason]++;
	a->stats.last_commit_seconds = now_seconds() - t0;
	log_debug("batch committed: %zu messages, %" PRId64 " counted, %" PRIu64
		  " duplicates, %" PRId64 " rejected in %.3fs",
		  a->n, counted, (uint64_t)dups + batch_dups, rejected, a->stats.last_commit_seconds);
	agg_discard(a);

out:
	if (rc != AGG_OK) {
		a->stats.db_errors++;
		if (in_tx && !db_broken(a->conn)) {
			PGresult *r = PQexec(a->conn, "ROLLBACK");
			PQclear(r);
		}
		if (a->conn && db_broken(a->conn))
			rc = AGG_DB_DOWN;
		if (rc == AGG_DB_DOWN)
			drop_conn(a);
	}
	free(ranges);
	free(pv);
	free(ev);
	free(nv);
	buf_free(&pbuf);
	buf_free(&ebuf);
	buf_free(&nbuf);
	return rc;
}

int agg_last_committed(const struct agg *a, int32_t *parts, int64_t *next, int max)
{
	int n = a->nlast < max ? a->nlast : max;
	for (int i = 0; i < n; i++) {
		parts[i] = a->last_parts[i];
		next[i] = a->last_next[i];
	}
	return n;
}

uint64_t agg_last_crossings(const struct agg *a)
{
	return a->last_crossings;
}

const struct agg_stats *agg_get_stats(const struct agg *a)
{
	return &a->stats;
}
