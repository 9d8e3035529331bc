/* gen_events - a seeded generator of usage events for the integration tests.
 *
 * Produces N messages to a Kafka topic (key = tenant id) with an idempotent
 * librdkafka producer, or writes them as "key<TAB>value" lines for kcat -K'\t'
 * (--out). A share of the messages are duplicates (an already sent valid event
 * sent again: same id, same bytes) and a share are bad events of several
 * kinds, each with the rejection reason meterd must give it.
 *
 * --oracle FILE writes what meterd must end up with, computed here from what
 * was generated and not from anything meterd does:
 *   "# name value" lines: seed, sent, valid_unique, duplicates, bad, and one
 *     "# bad_reason REASON COUNT" line per kind of bad event;
 *   one tab-separated line per rollup row, in the column order of
 *     SELECT tenant_id, subject_type, subject_id, period, period_start, events,
 *            requests, input_tokens, cached_input_tokens, output_tokens,
 *            reasoning_tokens, cost_pusd FROM rollups
 *     (psql -XAt -F'<TAB>'), day and month in UTC (tenants without a zone).
 * Every valid event carries an explicit data.cost, so cost is checked exactly.
 *
 * Event i is a pure function of (seed, i, start time), so a duplicate is made
 * by generating the same i again: nothing is kept but the indices.
 *
 * Exit codes: 0 all messages delivered (or written), 1 runtime failure,
 * 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "num.h"

#define MAX_PROPS 16
#define PUSD_PER_USD ((int64_t)1000000000000)

struct opts {
	uint64_t seed;
	int have_seed;
	int64_t events, tenants, users, keys, dup_rate, bad_rate, rate, spread_h;
	const char *brokers, *topic, *oracle, *out, *tenant_prefix, *id_prefix;
	int nprops;
	const char *prop[MAX_PROPS][2];
};

/* ---- random ------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. The modulo bias is irrelevant here. */
static int64_t rnd(uint64_t *s, int64_t n)
{
	return (int64_t)(splitmix64(s) % (uint64_t)n);
}

/* ---- the oracle: rollup rows in a hash table ----------------------------- */

struct row {
	char *key; /* "tenant\tsubject_type\tsubject_id\tperiod\tperiod_start" */
	int64_t events, requests, input, cached, output, reasoning, cost;
};

static struct row *rows;
static size_t nrows, rowcap;

static uint64_t str_hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* The row for key, created zeroed if new. Exits on out of memory: this is a
 * test tool, and a half-written oracle would be worse than none. */
static struct row *row_get(const char *key)
{
	if ((nrows + 1) * 2 > rowcap) {
		size_t ncap = rowcap ? rowcap * 2 : 1024;
		struct row *n = calloc(ncap, sizeof(*n));
		if (!n) {
			fprintf(stderr, "gen_events: out of memory\n");
			exit(1);
		}
		for (size_t i = 0; i < rowcap; i++) {
			if (!rows[i].key)
				continue;
			size_t s = str_hash(rows[i].key) & (ncap - 1);
			while (n[s].key)
				s = (s + 1) & (ncap - 1);
			n[s] = rows[i];
		}
		free(rows);
		rows = n;
		rowcap = ncap;
	}
	size_t s = str_hash(key) & (rowcap - 1);
	while (rows[s].key && strcmp(rows[s].key, key) != 0)
		s = (s + 1) & (rowcap - 1);
	if (!rows[s].key) {
		rows[s].key = strdup(key);
		if (!rows[s].key) {
			fprintf(stderr, "gen_events: out of memory\n");
			exit(1);
		}
		nrows++;
	}
	return &rows[s];
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (!x->key || !y->key)
		return !x->key - !y->key; /* empty slots last */
	return strcmp(x->key, y->key);
}

/* ---- events ------------------------------------------------------------- */

struct gen_event {
	char tenant[64], user[32], key[32], id[96], time[40];
	const char *provider, *model, *operation;
	int64_t time_ms, input, cached, output, reasoning, requests, cost_pusd;
	int has_user, has_key, has_requests, subject_mode; /* 0 both, 1 subject only, 2 data only */
};

static const struct {
	const char *provider, *model, *operation;
} models[] = {
	{"openai", "gpt-4o-mini", "chat"},
	{"openai", "gpt-4.1", "ai_agent"},
	{"openai", "text-embedding-3-small", "embedding"},
	{"anthropic", "claude-sonnet-4-5", "chat"},
	{"anthropic", "claude-haiku-4-5", "rag"},
	{"gemini", "gemini-2.5-flash", "workflow"},
	{"gemini", "gemini-2.5-pro", "script_generation"},
};

static void format_time(int64_t ms, char *out, size_t size)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char base[32];
	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, size, "%s.%03dZ", base, (int)(ms % 1000));
}

/* Event number i: a pure function of (seed, i, now_ms). */
static void gen_event(const struct opts *o, uint64_t i, int64_t now_ms, struct gen_event *e)
{
	uint64_t s = o->seed ^ (i * 0xd1342543de82ef95ULL);
	splitmix64(&s);
	memset(e, 0, sizeof(*e));
	snprintf(e->tenant, sizeof(e->tenant), "%s-%03" PRId64, o->tenant_prefix,
		 rnd(&s, o->tenants));
	e->has_user = rnd(&s, 10) != 0; /* 10 % without a user, 10 % without a key */
	e->has_key = rnd(&s, 10) != 0;
	snprintf(e->user, sizeof(e->user), "u-%02" PRId64, rnd(&s, o->users));
	snprintf(e->key, sizeof(e->key), "k-%02" PRId64, rnd(&s, o->keys));
	snprintf(e->id, sizeof(e->id), "%s-%" PRIu64, o->id_prefix, i);
	int m = (int)rnd(&s, (int64_t)(sizeof(models) / sizeof(models[0])));
	e->provider = models[m].provider;
	e->model = models[m].model;
	e->operation = models[m].operation;
	/* Spread over the last spread_h hours, or the last minute. */
	int64_t spread = o->spread_h ? o->spread_h * 3600000 : 60000;
	e->time_ms = now_ms - 1000 - rnd(&s, spread);
	format_time(e->time_ms, e->time, sizeof(e->time));
	e->input = rnd(&s, 20000);
	e->cached = rnd(&s, 3) ? 0 : rnd(&s, e->input + 1);
	e->output = rnd(&s, 4000);
	e->reasoning = rnd(&s, 3) ? 0 : rnd(&s, e->output + 1);
	e->has_requests = rnd(&s, 4) == 0;
	e->requests = e->has_requests ? 1 + rnd(&s, 5) : 1;
	/* Up to $0.05 with 12 fraction digits: exercises exact pico-USD. */
	e->cost_pusd = rnd(&s, 50000000000LL);
	e->subject_mode = (int)rnd(&s, 3);
}

/* The event as a new JSON object (caller owns the reference). */
static json_t *event_json(const struct gen_event *e)
{
	char cost[40];
	snprintf(cost, sizeof(cost), "%" PRId64 ".%012" PRId64, e->cost_pusd / PUSD_PER_USD,
		 e->cost_pusd % PUSD_PER_USD);
	json_t *data = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "provider", e->provider,
				 "model", e->model, "operation", e->operation, "input_tokens",
				 (json_int_t)e->input, "output_tokens", (json_int_t)e->output,
				 "cost", cost);
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "specversion", "1.0", "id", e->id,
			       "source", "gen-events", "type", "com.meterd.usage", "time",
			       e->time);
	if (!data || !ev) {
		fprintf(stderr, "gen_events: out of memory\n");
		exit(1);
	}
	if (e->subject_mode != 2)
		json_object_set_new(ev, "subject", json_string(e->tenant));
	if (e->subject_mode != 1)
		json_object_set_new(data, "tenant_id", json_string(e->tenant));
	if (e->has_user)
		json_object_set_new(data, "user_id", json_string(e->user));
	if (e->has_key)
		json_object_set_new(data, "api_key_id", json_string(e->key));
	if (e->cached)
		json_object_set_new(data, "cache_read_input_tokens", json_integer(e->cached));
	if (e->reasoning)
		json_object_set_new(data, "reasoning_output_tokens", json_integer(e->reasoning));
	if (e->has_requests)
		json_object_set_new(data, "requests", json_integer(e->requests));
	json_object_set_new(ev, "data", data);
	return ev;
}

/* s with the first needle replaced by repl (len bytes); a new string. */
static char *replace(const char *s, const char *needle, const char *repl, size_t len)
{
	const char *at = strstr(s, needle);
	size_t n = strlen(s), nl = strlen(needle);
	char *r = malloc(n + len + 1);
	if (!r || !at) {
		fprintf(stderr, "gen_events: internal error building a bad event\n");
		exit(1);
	}
	size_t pre = (size_t)(at - s);
	memcpy(r, s, pre);
	memcpy(r + pre, repl, len);
	memcpy(r + pre + len, at + nl, n - pre - nl + 1);
	return r;
}

/* The bad kinds and the reason meterd must give each. */
static const char *const bad_reasons[] = {
	"malformed_json", "wrong_type",	   "negative_value", "integer_overflow",
	"missing_field",  "missing_field", "invalid_utf8",   "invalid_time",
	"time_in_future", "too_late",	   "tenant_mismatch", "invalid_cost",
	"unsupported_specversion", "not_an_object", "out_of_range",
};
#define NBAD ((int)(sizeof(bad_reasons) / sizeof(bad_reasons[0])))

/* A bad message of the given kind derived from a valid event: a new string. */
static char *bad_payload(const struct gen_event *e, int kind, int64_t now_ms)
{
	json_t *ev = event_json(e);
	json_t *data = json_object_get(ev, "data");
	char when[40];
	char *text = NULL, *r = NULL;
	switch (kind) {
	case 1: json_object_set_new(data, "input_tokens", json_string("12")); break;
	case 2: json_object_set_new(data, "output_tokens", json_integer(-5)); break;
	case 3: json_object_set_new(data, "input_tokens", json_integer(4242424242424242)); break;
	case 4: json_object_del(ev, "id"); break;
	case 5:
		json_object_del(ev, "subject");
		json_object_del(data, "tenant_id");
		break;
	case 6: json_object_set_new(ev, "source", json_string("BADUTF8")); break;
	case 7: json_object_set_new(ev, "time", json_string("yesterday at noon")); break;
	case 8:
	case 9: /* ten years ahead, ten years back */
		format_time(now_ms + (kind == 8 ? 1 : -1) * 3653LL * 86400000, when, sizeof(when));
		json_object_set_new(ev, "time", json_string(when));
		break;
	case 10:
		json_object_set_new(ev, "subject", json_string("someone-else"));
		json_object_set_new(data, "tenant_id", json_string(e->tenant));
		break;
	case 11: json_object_set_new(data, "cost", json_real(0.5)); break;
	case 12: json_object_set_new(ev, "specversion", json_string("0.3")); break;
	case 14: json_object_set_new(data, "requests", json_integer(2000000)); break;
	}
	text = json_dumps(ev, JSON_COMPACT);
	json_decref(ev);
	if (!text) {
		fprintf(stderr, "gen_events: out of memory\n");
		exit(1);
	}
	switch (kind) {
	case 0: /* cut in the middle */
		r = strdup(text);
		if (r)
			r[strlen(r) / 2] = '\0';
		break;
	case 3: r = replace(text, "4242424242424242", "99999999999999999999", 20); break;
	case 6: r = replace(text, "BADUTF8", "bad\xc3\x28utf8", 9); break;
	case 13: r = strdup("[1,2,3]"); break;
	default: r = text; text = NULL; break;
	}
	free(text);
	if (!r) {
		fprintf(stderr, "gen_events: out of memory\n");
		exit(1);
	}
	return r;
}

static void add_row(const char *tenant, const char *stype, const char *sid, const char *period,
		    const char *start, const struct gen_event *e)
{
	char key[256];
	snprintf(key, sizeof(key), "%s\t%s\t%s\t%s\t%s", tenant, stype, sid, period, start);
	struct row *r = row_get(key);
	r->events++;
	r->requests += e->requests;
	r->input += e->input;
	r->cached += e->cached;
	r->output += e->output;
	r->reasoning += e->reasoning;
	r->cost += e->cost_pusd;
}

/* Count a new valid event in every rollup it belongs to (UTC periods). */
static void oracle_add(const struct gen_event *e)
{
	time_t secs = (time_t)(e->time_ms / 1000);
	struct tm tm;
	char day[16], month[16];
	gmtime_r(&secs, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	strftime(month, sizeof(month), "%Y-%m-01", &tm);
	for (int p = 0; p < 2; p++) {
		const char *period = p ? "month" : "day", *start = p ? month : day;
		add_row(e->tenant, "tenant", "", period, start, e);
		if (e->has_user)
			add_row(e->tenant, "user", e->user, period, start, e);
		if (e->has_key)
			add_row(e->tenant, "key", e->key, period, start, e);
	}
}

/* ---- output ------------------------------------------------------------- */

static int64_t delivered, failed;

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		if (failed++ < 5)
			fprintf(stderr, "gen_events: delivery failed: %s\n",
				rd_kafka_err2str(m->err));
	} else {
		delivered++;
	}
}

static rd_kafka_t *producer_new(const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *set[][2] = {
		{"bootstrap.servers", o->brokers}, {"enable.idempotence", "true"},
		{"linger.ms", "10"},		   {"queue.buffering.max.messages", "200000"},
		{"client.id", "gen_events"},
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (rd_kafka_conf_set(conf, set[i][0], set[i][1], err, sizeof(err)) != 0)
			goto fail;
	for (int i = 0; i < o->nprops; i++)
		if (rd_kafka_conf_set(conf, o->prop[i][0], o->prop[i][1], err, sizeof(err)) != 0)
			goto fail;
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		goto fail;
	return rk; /* conf now owned by rk */
fail:
	fprintf(stderr, "gen_events: %s\n", err);
	rd_kafka_conf_destroy(conf);
	return NULL;
}

/* Queue one message; on a full queue serve delivery reports and retry. */
static int produce(rd_kafka_t *rk, const char *topic, const char *key, const char *val,
		   size_t len)
{
	for (;;) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
			rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
			RD_KAFKA_V_KEY(key, strlen(key)), RD_KAFKA_V_VALUE((void *)val, len),
			RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
			break;
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			fprintf(stderr, "gen_events: produce: %s\n", rd_kafka_err2str(err));
			return -1;
		}
		rd_kafka_poll(rk, 100);
	}
	rd_kafka_poll(rk, 0);
	return 0;
}

static int64_t now_ms(int clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_oracle(const struct opts *o, int64_t sent, int64_t uniq, int64_t dups,
			int64_t bad, const int64_t *bad_count)
{
	FILE *f = fopen(o->oracle, "w");
	if (!f) {
		fprintf(stderr, "gen_events: %s: %s\n", o->oracle, strerror(errno));
		return -1;
	}
	fprintf(f, "# seed %" PRIu64 "\n# sent %" PRId64 "\n# valid_unique %" PRId64
		   "\n# duplicates %" PRId64 "\n# bad %" PRId64 "\n",
		o->seed, sent, uniq, dups, bad);
	for (int k = 0; k < NBAD; k++) {
		int64_t n = bad_count[k];
		if (n == 0 || (k > 0 && strcmp(bad_reasons[k], bad_reasons[k - 1]) == 0))
			continue; /* merged into the previous kind's line below */
		for (int j = k + 1; j < NBAD && strcmp(bad_reasons[j], bad_reasons[k]) == 0; j++)
			n += bad_count[j];
		fprintf(f, "# bad_reason %s %" PRId64 "\n", bad_reasons[k], n);
	}
	qsort(rows, rowcap, sizeof(*rows), row_cmp);
	for (size_t i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		fprintf(f, "%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
			   "\t%" PRId64 "\t%" PRId64 "\n",
			r->key, r->events, r->requests, r->input, r->cached, r->output,
			r->reasoning, r->cost);
	}
	if (fclose(f) != 0) {
		fprintf(stderr, "gen_events: %s: %s\n", o->oracle, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gen_events [options]\n"
		"  --seed N           random seed (default: from the clock); printed first\n"
		"  --events N         messages to send in all, duplicates and bad ones included (1000)\n"
		"  --tenants N        tenants PREFIX-000... (5); --users N, --keys N per tenant (8, 4)\n"
		"  --tenant-prefix S  tenant id prefix (tenant)\n"
		"  --id-prefix S      event id prefix (evt-SEED)\n"
		"  --dup-rate PCT     percent of messages that re-send an already sent event (0)\n"
		"  --bad-rate PCT     percent of messages that are invalid, of %d kinds (0)\n"
		"  --time-spread H    event times spread over the last H hours (0: last minute)\n"
		"  --rate N[/s]       messages per second, 0 = as fast as possible (0)\n"
		"  --brokers B        bootstrap servers ($METER_KAFKA_BROKERS)\n"
		"  --topic T          topic (usage.events)\n"
		"  -X name=value      librdkafka producer property\n"
		"  --oracle FILE      write the expected rollups and counts to FILE\n"
		"  --out FILE         write key<TAB>value lines to FILE (for kcat) instead\n",
		NBAD);
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t n;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			exit(0);
		}
		if (!v) {
			fprintf(stderr, "gen_events: %s needs a value (see --help)\n", a);
			return -1;
		}
		i++;
		struct {
			const char *name;
			int64_t *dst, min, max;
		} nums[] = {
			{"--events", &o->events, 0, 100000000},
			{"--tenants", &o->tenants, 1, 100000},
			{"--users", &o->users, 1, 100000},
			{"--keys", &o->keys, 1, 100000},
			{"--dup-rate", &o->dup_rate, 0, 100},
			{"--bad-rate", &o->bad_rate, 0, 100},
			{"--time-spread", &o->spread_h, 0, 71},
		};
		int done = 0;
		for (size_t k = 0; k < sizeof(nums) / sizeof(nums[0]); k++) {
			if (strcmp(a, nums[k].name) != 0)
				continue;
			if (num_parse_i64(v, nums[k].min, nums[k].max, nums[k].dst) != 0) {
				fprintf(stderr, "gen_events: %s '%s': want %" PRId64 "..%" PRId64 "\n",
					a, v, nums[k].min, nums[k].max);
				return -1;
			}
			done = 1;
		}
		if (done)
			continue;
		if (!strcmp(a, "--seed")) {
			if (num_parse_i64(v, 0, INT64_MAX, &n) != 0) {
				fprintf(stderr, "gen_events: --seed '%s': want a number >= 0\n", v);
				return -1;
			}
			o->seed = (uint64_t)n;
			o->have_seed = 1;
		} else if (!strcmp(a, "--rate")) {
			size_t len = strlen(v);
			if (len > 2 && !strcmp(v + len - 2, "/s"))
				len -= 2;
			if (num_parse_i64n(v, len, 0, 10000000, &o->rate) != 0) {
				fprintf(stderr, "gen_events: --rate '%s': want N or N/s\n", v);
				return -1;
			}
		} else if (!strcmp(a, "-X")) {
			char *eq = strchr(v, '=');
			if (!eq || eq == v || o->nprops == MAX_PROPS) {
				fprintf(stderr, "gen_events: -X '%s': want name=value\n", v);
				return -1;
			}
			*eq = '\0';
			o->prop[o->nprops][0] = v;
			o->prop[o->nprops++][1] = eq + 1;
		} else if (!strcmp(a, "--brokers")) {
			o->brokers = v;
		} else if (!strcmp(a, "--topic")) {
			o->topic = v;
		} else if (!strcmp(a, "--oracle")) {
			o->oracle = v;
		} else if (!strcmp(a, "--out")) {
			o->out = v;
		} else if (!strcmp(a, "--tenant-prefix")) {
			o->tenant_prefix = v;
		} else if (!strcmp(a, "--id-prefix")) {
			o->id_prefix = v;
		} else {
			fprintf(stderr, "gen_events: unknown option '%s' (see --help)\n", a);
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = {.events = 1000, .tenants = 5, .users = 8, .keys = 4,
			 .topic = "usage.events", .tenant_prefix = "tenant"};
	static char idp[64];
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	if (!o.have_seed)
		o.seed = (uint64_t)now_ms(CLOCK_REALTIME) ^ ((uint64_t)getpid() << 20);
	o.seed &= INT64_MAX; /* printable as a number --seed accepts */
	if (!o.id_prefix) {
		snprintf(idp, sizeof(idp), "evt-%" PRIu64, o.seed);
		o.id_prefix = idp;
	}
	if (!o.brokers)
		o.brokers = getenv("METER_KAFKA_BROKERS");
	if (!o.out && (!o.brokers || !*o.brokers)) {
		fprintf(stderr, "gen_events: no brokers: give --brokers or METER_KAFKA_BROKERS\n");
		return 2;
	}
	printf("seed %" PRIu64 "\n", o.seed);
	fflush(stdout);

	FILE *out = NULL;
	rd_kafka_t *rk = NULL;
	if (o.out) {
		if (!(out = fopen(o.out, "w"))) {
			fprintf(stderr, "gen_events: %s: %s\n", o.out, strerror(errno));
			return 1;
		}
	} else if (!(rk = producer_new(&o))) {
		return 1;
	}

	uint64_t rs = o.seed ^ 0x5eed5eed5eedULL; /* choices between messages */
	int64_t *valid = malloc((size_t)(o.events ? o.events : 1) * sizeof(*valid));
	int64_t nvalid = 0, dups = 0, bad = 0, bad_count[NBAD] = {0};
	int64_t t0 = now_ms(CLOCK_MONOTONIC), wall0 = now_ms(CLOCK_REALTIME);
	int rc = 0;
	if (!valid) {
		fprintf(stderr, "gen_events: out of memory\n");
		return 1;
	}
	for (int64_t i = 0; i < o.events && rc == 0; i++) {
		struct gen_event e;
		char *payload = NULL;
		int64_t roll = rnd(&rs, 100);
		int is_dup = roll < o.dup_rate, is_bad = !is_dup && roll < o.dup_rate + o.bad_rate;
		if (is_dup && nvalid > 0) {
			/* Half of the duplicates re-send a recent event (same batch
			 * likely), half any event sent before (long counted). */
			int64_t back = rnd(&rs, 2) ? rnd(&rs, nvalid < 50 ? nvalid : 50) : rnd(&rs, nvalid);
			gen_event(&o, (uint64_t)valid[nvalid - 1 - back], wall0, &e);
			dups++;
		} else if (is_bad) {
			int kind = (int)rnd(&rs, NBAD);
			gen_event(&o, (uint64_t)i, wall0, &e);
			payload = bad_payload(&e, kind, wall0);
			bad_count[kind]++;
			bad++;
		} else {
			gen_event(&o, (uint64_t)i, wall0, &e);
			valid[nvalid++] = i;
			oracle_add(&e);
		}
		if (!payload) {
			json_t *j = event_json(&e);
			payload = json_dumps(j, JSON_COMPACT);
			json_decref(j);
			if (!payload) {
				fprintf(stderr, "gen_events: out of memory\n");
				rc = 1;
				break;
			}
		}
		if (out) {
			if (fprintf(out, "%s\t%s\n", e.tenant, payload) < 0)
				rc = 1;
		} else if (produce(rk, o.topic, e.tenant, payload, strlen(payload)) != 0) {
			rc = 1;
		}
		free(payload);
		if (rk && o.rate > 0) {
			/* Pace: message i is due at t0 + i/rate seconds. */
			int64_t due = t0 + (i + 1) * 1000 / o.rate;
			int64_t wait;
			while ((wait = due - now_ms(CLOCK_MONOTONIC)) > 0)
				rd_kafka_poll(rk, (int)wait);
		}
	}
	int64_t sent = nvalid + dups + bad;
	if (rk) {
		if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "gen_events: %d messages not delivered within 120 s\n",
				rd_kafka_outq_len(rk));
			rc = 1;
		}
		if (failed) {
			fprintf(stderr, "gen_events: %" PRId64 " messages failed delivery\n", failed);
			rc = 1;
		}
		rd_kafka_destroy(rk);
	}
	if (out && fclose(out) != 0) {
		fprintf(stderr, "gen_events: %s: %s\n", o.out, strerror(errno));
		rc = 1;
	}
	if (o.oracle && write_oracle(&o, sent, nvalid, dups, bad, bad_count) != 0)
		rc = 1;
	double secs = (double)(now_ms(CLOCK_MONOTONIC) - t0) / 1000.0;
	printf("sent %" PRId64 " (valid %" PRId64 ", duplicates %" PRId64 ", bad %" PRId64
	       ") in %.1fs, %.0f/s%s\n",
	       sent, nvalid, dups, bad, secs, secs > 0 ? (double)sent / secs : 0.0,
	       rc ? " - FAILED" : "");
	for (size_t i = 0; i < rowcap; i++)
		free(rows[i].key);
	free(rows);
	free(valid);
	return rc;
}
