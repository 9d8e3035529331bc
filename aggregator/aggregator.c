/* aggregator.c - see aggregator.h.
 *
 * A commit is: drop duplicates inside the batch; make sure the event-log
 * partitions of the batch's months exist (outside the transaction); then
 * BEGIN;
 *   look up (or create) the batch's tenants and their zones, refresh the
 *   price table if it changed, and compute each event's local date and cost
 *   here in C (zones.c, prices.c);
 *   COPY the (tenant, id) pairs into stage_ids and insert them into
 *   event_ids: the ones that conflict are duplicates of events counted
 *   before (meter_dedupe());
 *   COPY the new events straight into the event log (binary format, sorted
 *   by tenant and time like the log's index), add them up in memory
 *   per rollup row (rollup.c) and COPY those rows into stage_rollups and
 *   stage_breakdown, and the rejects into stage_rejects;
 *   SELECT meter_apply_batch() (sql/R_batch.sql): fence and advance the
 *   offsets, upsert the rollups, evaluate limits, store the rejects;
 * COMMIT. The database does one upsert per distinct rollup row, whatever the
 * number of events behind it.
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
#include "prices.h"
#include "rollup.h"
#include "strmap.h"
#include "zones.h"

enum item_kind { IT_EVENT, IT_REJECT, IT_DUP };

/* A message of the pending batch. Event strings live in the batch arena
 * (a parsed struct meter_event is ~3 KB; this keeps a 100,000-event batch in
 * tens of megabytes). */
struct item {
	enum item_kind kind;
	int32_t partition;
	int64_t offset;
	/* IT_EVENT, IT_DUP (id and tenant_id also IT_REJECT, when it names
	 * valid ones; else NULL) */
	const char *id, *tenant_id, *user_id, *api_key_id, *provider, *model, *operation,
		*source, *type, *endpoint, *method, *workflow_id, *execution_id, *units_json,
		*metadata_json;
	const struct ev_unit *units;
	int nunits;
	int has_cost;
	int64_t time_us, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,
		requests, cost_pusd, status_code, latency_ms;
	/* Filled at commit. */
	int zone;
	int32_t day;
	enum prc_source cost_source;
	int64_t price_id;
	__int128 cost;
	/* IT_REJECT: copies for the table and the DLQ */
	struct ev_error *err;
	char *key;
	size_t key_len;
	char *payload;
	size_t payload_len;
	size_t payload_size;
};

struct part_range {
	int32_t partition;
	int64_t first, last;
};

/* Bump allocator for a batch's strings; reset when the batch is done. */
struct chunk {
	struct chunk *next;
	size_t used, cap;
	char data[];
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
	const struct item **order; /* the batch's events in event-log order (stage()) */
	size_t order_cap;
	int rejects_sent; /* the batch's dead letters are acknowledged */
	struct chunk *arena;
	struct meter_event scratch; /* parse target, copied into the arena */

	int64_t *expected; /* indexed by partition; -1: none stored / unknown */
	int nexpected;

	int32_t *last_parts;
	int64_t *last_next;
	int nlast;

	int32_t months[32]; /* year*12+month-1 of partitions known to exist */
	int nmonths;

	struct prc *prices;
	struct zone *zones;
	struct rol *rol;
	struct strmap tenants; /* tenant id -> zone id, per batch */
	struct buf copybuf;
	char state[6]; /* SQLSTATE of the last failed statement of a commit */
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
	agg_limits_from_config(&a->lim, cfg);
	buf_init(&a->copybuf, 0);
	strmap_init(&a->tenants);
	a->prices = prc_new();
	a->zones = zone_new();
	a->rol = rol_new();
	if (!a->prices || !a->zones || !a->rol) {
		agg_destroy(a);
		return NULL;
	}
	return a;
}

void agg_limits_from_config(struct ev_limits *out, const struct meter_config *cfg)
{
	memset(out, 0, sizeof(*out));
	out->max_bytes = (size_t)cfg->max_event_bytes;
	out->max_lateness_us = cfg->max_lateness_ms * 1000;
	out->max_future_us = cfg->max_future_ms * 1000;
}

void agg_reconfigure(struct agg *a, const struct ev_limits *lim)
{
	a->lim = *lim;
}

/* ---- the batch arena -------------------------------------------------------- */

static void *arena_alloc(struct agg *a, size_t len)
{
	len = (len + 15) & ~(size_t)15;
	struct chunk *c = a->arena;
	if (!c || c->cap - c->used < len) {
		size_t cap = len > (1u << 20) ? len : (1u << 20);
		/* Reuse the next chunk of the list if it fits (kept from earlier
		 * batches), else add one in front. */
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->arena;
		a->arena = c;
	}
	void *p = c->data + c->used;
	c->used += len;
	return p;
}

static void arena_reset(struct agg *a)
{
	/* Keep one chunk for the next batch. */
	struct chunk *c = a->arena;
	while (c && c->next) {
		struct chunk *next = c->next;
		free(c);
		c = next;
	}
	a->arena = c;
	if (c)
		c->used = 0;
}

static void arena_free(struct agg *a)
{
	while (a->arena) {
		struct chunk *next = a->arena->next;
		free(a->arena);
		a->arena = next;
	}
}

static char *arena_dup(struct agg *a, const void *p, size_t len)
{
	char *d = arena_alloc(a, len + 1);
	if (d) {
		if (len) /* p may be NULL then (a message without a key) */
			memcpy(d, p, len);
		d[len] = '\0';
	}
	return d;
}

/* "" for an absent optional string, so the NULL checks stay in one place. */
static const char *arena_str(struct agg *a, const char *s, int *oom)
{
	if (!s || !*s)
		return "";
	char *d = arena_dup(a, s, strlen(s));
	if (!d)
		*oom = 1;
	return d ? d : "";
}

void agg_discard(struct agg *a)
{
	a->n = 0;
	a->nrejects = 0;
	a->rejects_sent = 0;
	arena_reset(a);
}

void agg_destroy(struct agg *a)
{
	if (!a)
		return;
	agg_discard(a);
	arena_free(a);
	ev_clear(&a->scratch);
	free(a->items);
	free(a->order);
	free(a->expected);
	free(a->last_parts);
	free(a->last_next);
	buf_free(&a->copybuf);
	strmap_free(&a->tenants);
	prc_destroy(a->prices);
	zone_destroy(a->zones);
	rol_destroy(a->rol);
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
	/* A batch takes about a second at most; a statement stuck for minutes
	 * means a sick server, and failing lets the consumer retry and resync. A
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

/* ---- adding messages -------------------------------------------------------- */

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

/* Copy the parsed event into the item (strings into the arena). */
static int keep_event(struct agg *a, struct item *it, const struct meter_event *e)
{
	int oom = 0;
	it->id = arena_str(a, e->id, &oom);
	it->tenant_id = arena_str(a, e->tenant_id, &oom);
	it->user_id = arena_str(a, e->user_id, &oom);
	it->api_key_id = arena_str(a, e->api_key_id, &oom);
	it->provider = arena_str(a, e->provider, &oom);
	it->model = arena_str(a, e->model, &oom);
	it->operation = arena_str(a, e->operation, &oom);
	it->source = arena_str(a, e->source, &oom);
	it->type = arena_str(a, e->type, &oom);
	it->endpoint = arena_str(a, e->endpoint, &oom);
	it->method = arena_str(a, e->method, &oom);
	it->workflow_id = arena_str(a, e->workflow_id, &oom);
	it->execution_id = arena_str(a, e->execution_id, &oom);
	it->units_json = arena_str(a, e->units_json, &oom);
	it->metadata_json = arena_str(a, e->metadata_json, &oom);
	if (e->nunits) {
		struct ev_unit *u = arena_alloc(a, (size_t)e->nunits * sizeof(*u));
		if (u)
			memcpy(u, e->units, (size_t)e->nunits * sizeof(*u));
		else
			oom = 1;
		it->units = u;
		it->nunits = u ? e->nunits : 0;
	}
	it->has_cost = e->has_cost;
	it->time_us = e->time_us;
	it->input_tokens = e->input_tokens;
	it->cached_input_tokens = e->cached_input_tokens;
	it->output_tokens = e->output_tokens;
	it->reasoning_tokens = e->reasoning_tokens;
	it->requests = e->requests;
	it->cost_pusd = e->cost_pusd;
	it->status_code = e->status_code;
	it->latency_ms = e->latency_ms;
	return oom ? -1 : 0;
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
	struct ev_error err;
	if (ev_parse(payload, len, &lim, &a->scratch, &err) == 0) {
		int rc = keep_event(a, it, &a->scratch);
		ev_clear(&a->scratch);
		if (rc != 0)
			return AGG_ADD_FAILED;
		it->kind = IT_EVENT;
		a->n++;
		return AGG_ADDED;
	}
	it->kind = IT_REJECT;
	/* Keep what fits the cap: enough to see and replay any valid-sized event. */
	size_t keep = len < lim.max_bytes ? len : lim.max_bytes;
	it->payload = arena_dup(a, payload, keep);
	it->err = arena_alloc(a, sizeof(*it->err));
	if (!it->payload || !it->err)
		return AGG_ADD_FAILED;
	*it->err = err;
	it->payload_len = keep;
	it->payload_size = len;
	if (key) {
		it->key = arena_dup(a, key, key_len);
		if (!it->key)
			return AGG_ADD_FAILED;
		it->key_len = key_len;
	}
	/* Its tenant and id when it names them validly: operators look a
	 * tenant's rejects up by them. */
	char tenant_id[EV_ID_MAX + 1], id[EV_ID_MAX + 1];
	ev_reject_ids(payload, len, lim.max_bytes, tenant_id, id);
	if ((tenant_id[0] && !(it->tenant_id = arena_dup(a, tenant_id, strlen(tenant_id)))) ||
	    (id[0] && !(it->id = arena_dup(a, id, strlen(id)))))
		return AGG_ADD_FAILED;
	/* The detail may quote input: keep it printable ASCII for the database. */
	for (char *p = it->err->detail; *p; p++)
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

void agg_set_rejects_sent(struct agg *a, int sent)
{
	a->rejects_sent = sent != 0;
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
				       it->payload_size, it->err};
		fn(&r, opaque);
	}
}

/* ---- commit ------------------------------------------------------------------- */

/* FNV-1a over tenant and id, for the in-batch duplicate set. */
static uint64_t ev_hash(const struct item *e)
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
		size_t s = (size_t)ev_hash(it) & (cap - 1);
		for (;;) {
			if (slots[s] == SIZE_MAX) {
				slots[s] = i;
				break;
			}
			const struct item *o = &a->items[slots[s]];
			if (strcmp(o->id, it->id) == 0 && strcmp(o->tenant_id, it->tenant_id) == 0) {
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
	int last = -1;
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		int mk = month_key(it->time_us);
		if (mk == last)
			continue;
		last = mk;
		int known = 0;
		for (int m = 0; m < a->nmonths; m++)
			if (a->months[m] == mk)
				known = 1;
		if (known)
			continue;
		char ts[40];
		ev_format_time(it->time_us, ts, sizeof(ts));
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

static void copy_str(struct buf *b, const char *s)
{
	copy_text_or_null(b, s);
	copy_sep(b);
}

static void copy_num(struct buf *b, int64_t v)
{
	copy_i64(b, v);
	copy_sep(b);
}

/* A row of the event log (columns of EVENT_COLUMNS), in COPY binary format:
 * the server parses no timestamp, number or escape (195,000 events from a
 * file: 0.84 against 1.33 s in text). Streamed while meterd writes the next
 * rows, the COPY's time in a 500,000-event catch-up fell by ~10 %, and
 * stage_ids' (timestamps) by half; binary staging rows of rollups and
 * breakdowns, mostly short text and small numbers, gained nothing. */
#define EVENT_COLUMNS                                                                          \
	"occurred_at, tenant_id, event_id, user_id, api_key_id, provider, model, operation,"  \
	" source, type, input_tokens, cached_input_tokens, output_tokens, reasoning_tokens,"  \
	" requests, units, cost_pusd, cost_source, price_id, endpoint, method, status_code,"  \
	" latency_ms, workflow_id, execution_id, metadata, kafka_topic, kafka_partition,"     \
	" kafka_offset"
#define EVENT_NCOLUMNS 29

static void copy_event_row(struct buf *b, const char *topic, const struct item *it)
{
	copyb_timestamptz(b, it->time_us);
	copyb_text_or_null(b, it->tenant_id);
	copyb_text_or_null(b, it->id);
	copyb_text_or_null(b, it->user_id);
	copyb_text_or_null(b, it->api_key_id);
	copyb_text(b, it->provider); /* '' rather than NULL: NOT NULL columns */
	copyb_text(b, it->model);
	copyb_text_or_null(b, it->operation);
	copyb_text_or_null(b, it->source);
	copyb_text_or_null(b, it->type);
	copyb_i64(b, it->input_tokens);
	copyb_i64(b, it->cached_input_tokens);
	copyb_i64(b, it->output_tokens);
	copyb_i64(b, it->reasoning_tokens);
	copyb_i64(b, it->requests);
	copyb_jsonb(b, it->units_json);
	copyb_numeric(b, it->cost);
	copyb_text(b, prc_source_name(it->cost_source));
	if (it->price_id)
		copyb_i64(b, it->price_id);
	else
		copyb_null(b);
	copyb_text_or_null(b, it->endpoint);
	copyb_text_or_null(b, it->method);
	if (it->status_code >= 0)
		copyb_i32(b, (int32_t)it->status_code);
	else
		copyb_null(b);
	if (it->latency_ms >= 0)
		copyb_i64(b, it->latency_ms);
	else
		copyb_null(b);
	copyb_text_or_null(b, it->workflow_id);
	copyb_text_or_null(b, it->execution_id);
	copyb_jsonb(b, it->metadata_json);
	copyb_text(b, topic);
	copyb_i32(b, it->partition);
	copyb_i64(b, it->offset);
}

static void copy_reject_row(struct buf *b, const char *topic, const struct item *it,
			    int sent)
{
	copy_str(b, topic);
	copy_num(b, it->partition);
	copy_num(b, it->offset);
	if (it->key)
		copy_bytea(b, it->key, it->key_len);
	else
		copy_null(b);
	copy_sep(b);
	copy_str(b, ev_reason_name(it->err->reason));
	copy_str(b, it->err->detail);
	copy_str(b, it->tenant_id); /* NULL when it named none, or no valid one */
	copy_str(b, it->id);
	copy_bytea(b, it->payload, it->payload_len);
	copy_sep(b);
	copy_num(b, (int64_t)it->payload_size);
	buf_append(b, sent ? "f" : "t", 1); /* dlq_pending */
	copy_eol(b);
}

static void keep_state(struct agg *a, const PGresult *res)
{
	const char *s = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	snprintf(a->state, sizeof(a->state), "%s", s ? s : "");
}

/* A COPY ... FROM STDIN is streamed: rows are formatted into a->copybuf and
 * sent whenever it holds COPY_CHUNK bytes, so the server parses them while
 * the next ones are formatted, and the buffer stays small whatever the
 * batch's size (a 100,000-event batch's event log is ~40 MB of text). */
#define COPY_CHUNK (256 * 1024)

struct copy {
	struct agg *a;
	const char *sql;
	int started, failed;
	int64_t rows; /* FORMAT binary rows begun with copy_row(); a trailer ends them */
};

/* Begin a binary row of nfields (the header first, before the first row,
 * so that a COPY of no rows is never started). */
static void copy_row(struct copy *c, int nfields)
{
	if (c->rows++ == 0)
		copyb_header(&c->a->copybuf);
	copyb_row(&c->a->copybuf, nfields);
}

static int copy_fail(struct copy *c, PGresult *res, char *errstr, size_t errstr_size)
{
	if (res)
		keep_state(c->a, res);
	db_describe(c->a->conn, res, "COPY", errstr, errstr_size);
	c->failed = 1;
	return -1;
}

/* Send what a->copybuf holds if it is at least `least` bytes (starting the
 * COPY first); 0 or -1 with errstr. */
static int copy_send(struct copy *c, size_t least, char *errstr, size_t errstr_size)
{
	struct buf *b = &c->a->copybuf;
	if (c->failed)
		return -1;
	if (b->oom) {
		snprintf(errstr, errstr_size, "out of memory staging the batch");
		c->failed = 1;
		return -1;
	}
	if (b->len == 0 || b->len < least)
		return 0;
	if (!c->started) {
		PGresult *res = PQexec(c->a->conn, c->sql);
		int rc = PQresultStatus(res) == PGRES_COPY_IN ? 0
							      : copy_fail(c, res, errstr, errstr_size);
		PQclear(res);
		if (rc != 0)
			return -1;
		c->started = 1;
	}
	/* In pieces: libpq copies what it is given into its own output buffer,
	 * which grows to the size of one call's data and stays that size (a
	 * batch's rollup rows are copied in one go: tens of megabytes). */
	for (size_t off = 0; off < b->len; off += COPY_CHUNK) {
		size_t n = b->len - off < COPY_CHUNK ? b->len - off : COPY_CHUNK;
		if (PQputCopyData(c->a->conn, b->data + off, (int)n) != 1)
			return copy_fail(c, NULL, errstr, errstr_size);
	}
	buf_reset(b);
	return 0;
}

/* Send the rest and end the COPY (or abort it after a failure). */
static int copy_end(struct copy *c, char *errstr, size_t errstr_size)
{
	if (c->rows > 0 && !c->failed)
		copyb_trailer(&c->a->copybuf);
	copy_send(c, 0, errstr, errstr_size);
	if (!c->started)
		return c->failed ? -1 : 0;
	int failed = c->failed;
	if (PQputCopyEnd(c->a->conn, failed ? "client error" : NULL) != 1 && !failed)
		failed = copy_fail(c, NULL, errstr, errstr_size) != 0;
	PGresult *res;
	while ((res = PQgetResult(c->a->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && !failed)
			failed = copy_fail(c, res, errstr, errstr_size) != 0;
		PQclear(res);
	}
	return failed ? -1 : 0;
}

/* COPY what a->copybuf holds, in one go. */
static int copy_in(struct agg *a, const char *sql, char *errstr, size_t errstr_size)
{
	struct copy c = {.a = a, .sql = sql};
	return copy_end(&c, errstr, errstr_size);
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
	buf_putc(b, '\0');
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

/* Look up the batch's tenants (creating the unknown ones on the default
 * plan) and set every event's zone. */
static int resolve_tenants(struct agg *a, char *errstr, size_t errstr_size)
{
	struct buf *b = &a->copybuf;
	strmap_reset(&a->tenants);
	buf_reset(b);
	buf_putc(b, '{');
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		int added;
		if (!strmap_put(&a->tenants, it->tenant_id, -1, &added))
			goto oom;
		if (!added)
			continue;
		/* Tenant ids are [A-Za-z0-9._~:@+=-]: quoting suffices. */
		if (b->len > 1)
			buf_putc(b, ',');
		buf_putc(b, '"');
		buf_append(b, it->tenant_id, strlen(it->tenant_id));
		buf_putc(b, '"');
	}
	buf_putc(b, '}');
	buf_putc(b, '\0');
	if (b->oom)
		goto oom;
	const char *params[2] = {b->data, a->default_plan};
	PGresult *res = db_query(a->conn, "SELECT id, tz FROM meter_batch_tenants($1::text[], $2)",
				 2, params, errstr, errstr_size, a->state);
	if (!res)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t *v = strmap_get(&a->tenants, PQgetvalue(res, r, 0));
		int z = zone_id(a->zones, PQgetvalue(res, r, 1));
		if (z < 0) {
			PQclear(res);
			goto oom;
		}
		if (v)
			*v = z;
	}
	PQclear(res);
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		int64_t *v = strmap_get(&a->tenants, it->tenant_id);
		if (!v || *v < 0) {
			snprintf(errstr, errstr_size, "tenant %s missing after meter_batch_tenants",
				 it->tenant_id);
			return -1;
		}
		it->zone = (int)*v;
	}
	return 0;
oom:
	snprintf(errstr, errstr_size, "out of memory resolving tenants");
	return -1;
}

/* Local dates and costs of the batch's events. */
static int date_and_price(struct agg *a, char *errstr, size_t errstr_size)
{
	size_t n = 0;
	int *zones = malloc(a->n * sizeof(*zones));
	int64_t *times = malloc(a->n * sizeof(*times));
	int32_t *days = malloc(a->n * sizeof(*days));
	int rc = -1;
	if (!zones || !times || !days) {
		snprintf(errstr, errstr_size, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < a->n; i++) {
		if (a->items[i].kind != IT_EVENT)
			continue;
		zones[n] = a->items[i].zone;
		times[n] = a->items[i].time_us;
		n++;
	}
	if (zone_local_days(a->zones, a->conn, zones, times, days, n, errstr, errstr_size) != 0)
		goto out;
	if (prc_refresh(a->prices, a->conn, errstr, errstr_size) != 0)
		goto out;
	n = 0;
	for (size_t i = 0; i < a->n; i++) {
		struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		it->day = days[n++];
		struct prc_usage u = {it->provider,
				      it->model,
				      it->time_us,
				      it->input_tokens,
				      it->cached_input_tokens,
				      it->output_tokens,
				      it->requests,
				      it->units,
				      it->nunits,
				      it->has_cost,
				      it->cost_pusd};
		it->cost_source = prc_cost(a->prices, &u, &it->cost, &it->price_id);
	}
	rc = 0;
out:
	free(zones);
	free(times);
	free(days);
	return rc;
}

/* Insert the batch's (tenant, id) pairs into event_ids; mark the events
 * whose pair was already there (counted before) as IT_DUP. */
static int dedupe(struct agg *a, uint64_t *dups, char *errstr, size_t errstr_size)
{
	struct buf *b = &a->copybuf;
	struct copy c = {.a = a, .sql = "COPY stage_ids FROM STDIN (FORMAT binary)"};
	buf_reset(b);
	for (size_t i = 0; i < a->n; i++) {
		const struct item *it = &a->items[i];
		if (it->kind != IT_EVENT)
			continue;
		copy_row(&c, 4);
		copyb_i32(b, (int32_t)i);
		copyb_text_or_null(b, it->tenant_id);
		copyb_text_or_null(b, it->id);
		copyb_timestamptz(b, it->time_us);
		if (copy_send(&c, COPY_CHUNK, errstr, errstr_size) != 0)
			break;
	}
	if (copy_end(&c, errstr, errstr_size) != 0)
		return -1;
	if (!c.started)
		return 0;
	PGresult *res = db_query(a->conn, "SELECT idx FROM meter_dedupe()", 0, NULL, errstr,
				 errstr_size, a->state);
	if (!res)
		return -1;
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t idx;
		if (num_parse_i64(PQgetvalue(res, r, 0), 0, (int64_t)a->n - 1, &idx) == 0 &&
		    a->items[idx].kind == IT_EVENT) {
			a->items[idx].kind = IT_DUP;
			(*dups)++;
		}
	}
	PQclear(res);
	return 0;
}

static int event_log_cmp(const void *x, const void *y)
{
	const struct item *a = *(const struct item *const *)x, *b = *(const struct item *const *)y;
	int c = strcmp(a->tenant_id, b->tenant_id);
	return c ? c : (a->time_us > b->time_us) - (a->time_us < b->time_us);
}

/* The batch's new events sorted by tenant and time, in a->order; their
 * number, or -1 when out of memory. The event log's index on (tenant_id,
 * occurred_at) then takes each tenant's new entries side by side rather
 * than one leaf page per event: 45,000 events COPYed into a log of
 * 195,000 took 160 ms in this order against 290 ms in arrival order. */
static ssize_t events_in_log_order(struct agg *a)
{
	if (a->n > a->order_cap) {
		const struct item **o = realloc(a->order, a->n * sizeof(*o));
		if (!o)
			return -1;
		a->order = o;
		a->order_cap = a->n;
	}
	size_t n = 0;
	for (size_t i = 0; i < a->n; i++)
		if (a->items[i].kind == IT_EVENT)
			a->order[n++] = &a->items[i];
	qsort(a->order, n, sizeof(*a->order), event_log_cmp);
	return (ssize_t)n;
}

/* Stage the new events, the rollup rows and the rejects. */
static int stage(struct agg *a, int64_t *counted, char *errstr, size_t errstr_size)
{
	struct buf *b = &a->copybuf;
	struct copy c = {.a = a, .sql = "COPY events (" EVENT_COLUMNS ") FROM STDIN (FORMAT binary)"};
	buf_reset(b);
	rol_reset(a->rol);
	*counted = 0;
	ssize_t nevents = events_in_log_order(a);
	if (nevents < 0) {
		snprintf(errstr, errstr_size, "out of memory sorting the batch's events");
		return -1;
	}
	for (ssize_t i = 0; i < nevents; i++) {
		const struct item *it = a->order[i];
		copy_row(&c, EVENT_NCOLUMNS);
		copy_event_row(b, a->topic, it);
		if (copy_send(&c, COPY_CHUNK, errstr, errstr_size) != 0)
			break;
		struct rol_event re = {it->tenant_id,   it->user_id,
				       it->api_key_id,  it->provider,
				       it->model,       it->operation,
				       it->day,         it->requests,
				       it->input_tokens, it->cached_input_tokens,
				       it->output_tokens, it->reasoning_tokens,
				       it->cost,        it->units,
				       it->nunits};
		if (rol_add(a->rol, &re) != 0) {
			snprintf(errstr, errstr_size, "out of memory adding up the batch");
			c.failed = 1;
			break;
		}
		(*counted)++;
	}
	if (copy_end(&c, errstr, errstr_size) != 0)
		return -1;
	if (rol_rows(a->rol)) {
		buf_reset(b);
		if (rol_copy_rollups(a->rol, b) != 0) {
			snprintf(errstr, errstr_size, "out of memory sorting the batch's rollups");
			return -1;
		}
		if (copy_in(a, "COPY stage_rollups FROM STDIN", errstr, errstr_size) != 0)
			return -1;
		buf_reset(b);
		if (rol_copy_breakdown(a->rol, b) != 0) {
			snprintf(errstr, errstr_size, "out of memory sorting the batch's rollups");
			return -1;
		}
		if (copy_in(a, "COPY stage_breakdown FROM STDIN", errstr, errstr_size) != 0)
			return -1;
	}
	if (a->nrejects) {
		buf_reset(b);
		for (size_t i = 0; i < a->n; i++)
			if (a->items[i].kind == IT_REJECT)
				copy_reject_row(b, a->topic, &a->items[i], a->rejects_sent);
		if (copy_in(a, "COPY stage_rejects FROM STDIN", errstr, errstr_size) != 0)
			return -1;
	}
	return 0;
}

enum agg_result agg_commit(struct agg *a, char *errstr, size_t errstr_size)
{
	enum agg_result rc = AGG_OK;
	struct part_range *ranges = NULL;
	int64_t *pv = NULL, *ev = NULL, *nv = NULL;
	struct buf pbuf, ebuf, nbuf;
	int in_tx = 0;
	uint64_t batch_dups = 0, db_dups = 0;
	int64_t counted = 0;
	char state[6] = "";
	a->state[0] = '\0';
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

	/* Phase times, for the debug log (where a batch's time goes). */
	double tp[5];
	tp[0] = now_seconds();
	if (a->n > a->nrejects &&
	    (resolve_tenants(a, errstr, errstr_size) != 0 ||
	     date_and_price(a, errstr, errstr_size) != 0)) {
		rc = AGG_FAILED;
		goto out;
	}
	tp[1] = now_seconds();
	if (a->n > a->nrejects && dedupe(a, &db_dups, errstr, errstr_size) != 0) {
		rc = AGG_FAILED;
		goto out;
	}
	tp[2] = now_seconds();
	if (stage(a, &counted, errstr, errstr_size) != 0) {
		rc = AGG_FAILED;
		goto out;
	}
	tp[3] = now_seconds();

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
	const char *params[5] = {a->group_id, a->topic, pbuf.data, ebuf.data, nbuf.data};
	PGresult *res = db_query(a->conn,
				 "SELECT rejected, crossings FROM meter_apply_batch("
				 "$1, $2, $3::int[], $4::bigint[], $5::bigint[])",
				 5, params, errstr, errstr_size, state);
	if (!res) {
		rc = AGG_FAILED;
		goto out;
	}
	int64_t rejected = 0, crossings = 0;
	if (PQntuples(res) == 1) {
		num_parse_i64(PQgetvalue(res, 0, 0), 0, INT64_MAX, &rejected);
		num_parse_i64(PQgetvalue(res, 0, 1), 0, INT64_MAX, &crossings);
	}
	PQclear(res);
	tp[4] = now_seconds();

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
	a->stats.duplicates += db_dups + batch_dups;
	a->stats.rejected += (uint64_t)rejected;
	a->stats.crossings += (uint64_t)crossings;
	a->last_crossings = (uint64_t)crossings;
	for (size_t i = 0; i < a->n; i++)
		if (a->items[i].kind == IT_REJECT && a->items[i].err->reason < EV_REASON_COUNT)
			a->stats.rejected_by_reason[a->items[i].err->reason]++;
	a->stats.last_commit_seconds = now_seconds() - t0;
	log_debug("batch committed: %zu messages, %" PRId64 " counted, %" PRIu64
		  " duplicates, %" PRId64 " rejected, %zu rollup rows in %.3fs (tenants+prices"
		  " %.0f ms, dedupe %.0f ms, stage %.0f ms, apply %.0f ms, commit %.0f ms)",
		  a->n, counted, db_dups + batch_dups, rejected, rol_rows(a->rol),
		  a->stats.last_commit_seconds, (tp[1] - tp[0]) * 1e3, (tp[2] - tp[1]) * 1e3,
		  (tp[3] - tp[2]) * 1e3, (tp[4] - tp[3]) * 1e3, (now_seconds() - tp[4]) * 1e3);
	agg_discard(a);

out:
	if (rc != AGG_OK) {
		/* Statement errors: the SQLSTATE decides (fenced, retry, down). */
		if (rc == AGG_FAILED && a->conn) {
			enum agg_result c = classify(a, state[0] ? state : a->state);
			if (c != AGG_FAILED)
				rc = c;
		}
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
