/* loadgen - the benchmark's load generator (make bench).
 *
 * Produces realistic usage events to a Kafka topic: tenants drawn from a
 * Zipf distribution (s = 1.1, so a few tenants carry much of the traffic;
 * no single tenant above 0.5 % of it, since the mock broker keeps only ~5 MB
 * per partition and a tenant's events share one),
 * 1-40 users and 1-5 API keys per tenant, several providers, models and
 * operations (chat, rag, embedding, image and video generation with units),
 * a share of events carrying their own cost, --dup-rate % duplicates (an
 * earlier event sent again, same bytes) and --bad-rate per mille bad events.
 * Every event's time is the moment it is produced, so the database can tell
 * the latency from produce to commit.
 *
 * --probes N adds N tenants "probe-K" that each get exactly --probe-limit
 * valid events, spaced evenly over the run and one probe after the other,
 * so that the crossings are spread evenly over the run too (round robin
 * over the probes put all of them in its last second or so: the flag
 * latency was then that of one or two batches); the bench puts them on a
 * plan whose daily request limit is that number, so the last one crosses
 * it. A reader thread follows --flag-topic and reports, for each probe,
 * the time from producing its crossing event to seeing its "blocked" flag.
 * --probe-after N starts the probes' events at the N-th event (the bench
 * leaves the run's warm-up out of its latency figures).
 *
 * Output: one line of JSON on stdout with what was sent, produce ->
 * acknowledged by the broker (ack_p50_ms, ack_p99_ms) and the flag
 * latencies. Exit 0 when every message was delivered.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "num.h"

#define RING 4096
#define RATE_SLICE_US 1000 /* --rate: the shortest sleep between sends */

struct opts {
	const char *brokers, *topic, *flag_topic, *id_prefix;
	int64_t events, tenants, rate, dup_rate, bad_permille, probes, probe_limit, probe_after,
		seed, linger_ms;
};

static uint64_t rng_state;
static uint64_t rnd64(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}
static int64_t rnd(int64_t n)
{
	return (int64_t)(rnd64() % (uint64_t)n);
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double *zipf_cdf;
static int64_t zipf_pick(int64_t n)
{
	double u = (double)(rnd64() >> 11) / 9007199254740992.0;
	int64_t lo = 0, hi = n - 1;
	while (lo < hi) {
		int64_t mid = (lo + hi) / 2;
		if (zipf_cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct model {
	const char *provider, *model, *operation, *unit;
} models[] = {
	{"openai", "gpt-4o-mini", "chat", NULL},
	{"openai", "gpt-4o", "chat", NULL},
	{"openai", "gpt-4o-mini", "rag", NULL},
	{"anthropic", "claude-sonnet-4", "chat", NULL},
	{"anthropic", "claude-haiku-3.5", "script_generation", NULL},
	{"gemini", "gemini-2.5-flash", "chat", NULL},
	{"gemini", "gemini-2.0-flash", "ai_agent", NULL},
	{"openai", "text-embedding-3-small", "embedding", NULL},
	{"openai", "dall-e-3", "image_generation", "images"},
	{"gemini", "veo-3-fast", "video_generation", "video_seconds"},
};
#define NMODELS (sizeof(models) / sizeof(models[0]))

static void fmt_time(int64_t us, char *out, size_t size)
{
	time_t s = (time_t)(us / 1000000);
	struct tm tm;
	gmtime_r(&s, &tm);
	size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, size - n, ".%06uZ", (unsigned)(us % 1000000));
}

/* One valid event of tenant `tenant` (name already formatted). A probe's
 * event carries few tokens (under 150): its tenant must cross the request
 * limit with the last one, not the token limit earlier. */
static int make_event(char *out, size_t size, const char *prefix, int64_t seq, const char *tenant,
		      int64_t tix, int64_t t_us, int probe)
{
	char ts[40];
	fmt_time(t_us, ts, sizeof(ts));
	int64_t nusers = 1 + (tix * 7919) % 40, nkeys = 1 + (tix * 104729) % 5;
	const struct model *m = &models[rnd(NMODELS)];
	int64_t in = m->unit ? 0 : probe ? 10 + rnd(90) : 50 + rnd(4000);
	int64_t out_t = m->unit ? 0 : probe ? 5 + rnd(45) : 20 + rnd(1500);
	int64_t cached = in ? rnd(in / 2 + 1) : 0;
	char units[64] = "";
	if (m->unit)
		snprintf(units, sizeof(units), ",\"units\":{\"%s\":%" PRId64 "}", m->unit,
			 1 + rnd(8));
	char cost[48] = "";
	if (rnd(10) == 0)
		snprintf(cost, sizeof(cost), ",\"cost\":\"0.%06" PRId64 "\"", 1 + rnd(999999));
	return snprintf(out, size,
			"{\"specversion\":\"1.0\",\"id\":\"%s-%" PRId64 "\",\"source\":\"//bench/gw\","
			"\"type\":\"com.example.llm.usage\",\"time\":\"%s\",\"subject\":\"%s\","
			"\"data\":{\"tenant_id\":\"%s\",\"user_id\":\"u-%" PRId64 "\","
			"\"api_key_id\":\"k-%" PRId64 "\",\"provider\":\"%s\",\"model\":\"%s\","
			"\"operation\":\"%s\",\"input_tokens\":%" PRId64 ","
			"\"cache_read_input_tokens\":%" PRId64 ",\"output_tokens\":%" PRId64
			",\"requests\":1%s%s,\"endpoint\":\"/v1/chat\",\"method\":\"POST\","
			"\"status_code\":200,\"latency_ms\":%" PRId64 "}}",
			prefix, seq, ts, tenant, tenant, rnd(nusers), rnd(nkeys), m->provider, m->model,
			m->operation, in, cached, out_t, units, cost, 100 + rnd(5000));
}

/* ---- flag reader ------------------------------------------------------------ */

static int64_t *cross_us, *flag_us; /* per probe */
static volatile int reader_stop;
static rd_kafka_t *reader;

static void *read_flags(void *arg)
{
	(void)arg;
	while (!reader_stop) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(reader, 100);
		if (!m)
			continue;
		if (!m->err && m->key && m->payload && m->key_len > 13 &&
		    memcmp(m->key, "tenant/probe-", 13) == 0) {
			int64_t k;
			int64_t t = now_us();
			if (num_parse_i64n((const char *)m->key + 13, m->key_len - 13, 0, 1000000, &k) == 0 &&
			    memmem(m->payload, m->len, "\"blocked\"", 9) && !flag_us[k])
				flag_us[k] = t;
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static int start_reader(const struct opts *o)
{
	char err[512];
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	rd_kafka_conf_set(c, "bootstrap.servers", o->brokers, err, sizeof(err));
	rd_kafka_conf_set(c, "group.id", "loadgen-flags", err, sizeof(err));
	rd_kafka_conf_set(c, "fetch.wait.max.ms", "10", err, sizeof(err));
	reader = rd_kafka_new(RD_KAFKA_CONSUMER, c, err, sizeof(err));
	if (!reader) {
		fprintf(stderr, "loadgen: %s\n", err);
		return -1;
	}
	const struct rd_kafka_metadata *md;
	rd_kafka_topic_t *t = rd_kafka_topic_new(reader, o->flag_topic, NULL);
	if (rd_kafka_metadata(reader, 0, t, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
	    md->topic_cnt != 1 || md->topics[0].partition_cnt == 0) {
		fprintf(stderr, "loadgen: no metadata for %s\n", o->flag_topic);
		return -1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(16);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(l, o->flag_topic, i)->offset = RD_KAFKA_OFFSET_END;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	rd_kafka_assign(reader, l);
	rd_kafka_topic_partition_list_destroy(l);
	return 0;
}

/* ---- producer --------------------------------------------------------------- */

static int64_t delivered, failed;
/* Produce -> acknowledged by the broker, per message, in 1-ms buckets: the
 * generator's own part of produce -> committed (its linger.ms batching and
 * the broker's append), reported so that it can be told apart from meterd's. */
#define ACK_BUCKETS 60000
static int64_t ack_hist[ACK_BUCKETS];

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		failed++;
		return;
	}
	delivered++;
	int64_t ms = (now_us() - (int64_t)(intptr_t)m->_private) / 1000;
	ack_hist[ms < 0 ? 0 : ms >= ACK_BUCKETS ? ACK_BUCKETS - 1 : ms]++;
}

/* The q-quantile of the acknowledgement times, in ms (-1 when none). */
static double ack_quantile(double q)
{
	int64_t n = 0, seen = 0;
	for (int i = 0; i < ACK_BUCKETS; i++)
		n += ack_hist[i];
	if (n == 0)
		return -1;
	int64_t want = (int64_t)(q * (double)(n - 1)) + 1;
	for (int i = 0; i < ACK_BUCKETS; i++)
		if ((seen += ack_hist[i]) >= want)
			return i;
	return ACK_BUCKETS - 1;
}

static void produce(rd_kafka_t *rk, const char *topic, const char *key, const char *val,
		    size_t len)
{
	void *t = (void *)(intptr_t)now_us();
	for (;;) {
		if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_OPAQUE(t),
				      RD_KAFKA_V_KEY(key, strlen(key)),
				      RD_KAFKA_V_VALUE((void *)val, len),
				      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				      RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR_NO_ERROR)
			return;
		rd_kafka_poll(rk, 10);
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){.topic = "usage.events", .flag_topic = "usage.limits",
			   .id_prefix = "ev", .events = 100000, .tenants = 10000, .dup_rate = 2,
			   .bad_permille = 1, .probe_limit = 50, .seed = 1, .linger_ms = -1};
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int64_t *num = NULL;
		if (!v) {
			fprintf(stderr, "loadgen: %s needs a value\n", a);
			return -1;
		}
		if (!strcmp(a, "--brokers"))
			o->brokers = v;
		else if (!strcmp(a, "--topic"))
			o->topic = v;
		else if (!strcmp(a, "--flag-topic"))
			o->flag_topic = v;
		else if (!strcmp(a, "--id-prefix"))
			o->id_prefix = v;
		else if (!strcmp(a, "--events"))
			num = &o->events;
		else if (!strcmp(a, "--tenants"))
			num = &o->tenants;
		else if (!strcmp(a, "--rate"))
			num = &o->rate;
		else if (!strcmp(a, "--dup-rate"))
			num = &o->dup_rate;
		else if (!strcmp(a, "--bad-permille"))
			num = &o->bad_permille;
		else if (!strcmp(a, "--probes"))
			num = &o->probes;
		else if (!strcmp(a, "--probe-limit"))
			num = &o->probe_limit;
		else if (!strcmp(a, "--probe-after"))
			num = &o->probe_after;
		else if (!strcmp(a, "--seed"))
			num = &o->seed;
		else if (!strcmp(a, "--linger-ms"))
			num = &o->linger_ms;
		else {
			fprintf(stderr, "loadgen: unknown option %s\n", a);
			return -1;
		}
		if (num && num_parse_i64(v, 0, INT64_MAX / 4, num) != 0) {
			fprintf(stderr, "loadgen: %s: '%s' is not a number\n", a, v);
			return -1;
		}
		i++;
	}
	if (!o->brokers || o->tenants < 1 || o->probes > 10000 || o->probe_after > o->events) {
		fprintf(stderr, "usage: loadgen --brokers B [--topic T] [--events N] [--rate R/s]"
				" [--tenants N] [--dup-rate PCT] [--bad-permille N] [--probes N"
				" --probe-limit N --flag-topic T [--probe-after N]] [--seed S]"
				" [--id-prefix P] [--linger-ms MS]\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_args(argc, argv, &o) != 0)
		return 2;
	rng_state = (uint64_t)o.seed * 0x2545F4914F6CDD1DULL + 1;
	zipf_cdf = malloc((size_t)o.tenants * sizeof(double));
	/* Zipf weights, the top ones capped at 0.5 % of the total (the cap is
	 * applied until it holds: capping raises the others' share). */
	double *w = malloc((size_t)o.tenants * sizeof(double));
	for (int64_t i = 0; i < o.tenants; i++)
		w[i] = 1.0 / pow((double)(i + 1), 1.1);
	for (int round = 0; round < 50; round++) {
		double sum = 0, cap;
		for (int64_t i = 0; i < o.tenants; i++)
			sum += w[i];
		cap = sum * 0.005;
		int changed = 0;
		for (int64_t i = 0; i < o.tenants; i++)
			if (w[i] > cap * 1.0001) {
				w[i] = cap;
				changed = 1;
			}
		if (!changed)
			break;
	}
	double sum = 0, acc = 0;
	for (int64_t i = 0; i < o.tenants; i++)
		sum += w[i];
	for (int64_t i = 0; i < o.tenants; i++) {
		acc += w[i] / sum;
		zipf_cdf[i] = acc;
	}
	free(w);
	cross_us = calloc((size_t)o.probes + 1, sizeof(int64_t));
	flag_us = calloc((size_t)o.probes + 1, sizeof(int64_t));
	pthread_t th;
	if (o.probes) {
		if (start_reader(&o) != 0)
			return 1;
		pthread_create(&th, NULL, read_flags, NULL);
	}

	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", o.brokers, err, sizeof(err));
	rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err));
	rd_kafka_conf_set(conf, "compression.type", "lz4", err, sizeof(err));
	/* The mock broker finds a fetch's offset by walking the partition's
	 * message sets from the oldest, and keeps ~5 MB of them: one message
	 * per set (a 5-ms linger at 1,500 events/s on 8 partitions) made it
	 * walk thousands per fetch, its CPU growing for minutes (25 -> 87 % of
	 * a core over 84 s alone with one consumer; 20 ms: 9 -> 26 %). The
	 * generator's own part of the latency is reported (ack_p50_ms). */
	char linger[24];
	snprintf(linger, sizeof(linger), "%" PRId64,
		 o.linger_ms >= 0 ? o.linger_ms : o.rate ? 20 : 50);
	rd_kafka_conf_set(conf, "linger.ms", linger, err, sizeof(err));
	rd_kafka_conf_set(conf, "batch.size", "1000000", err, sizeof(err));
	rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err, sizeof(err));
	rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "loadgen: %s\n", err);
		return 1;
	}

	static char ring[RING][1024];
	static size_t ring_len[RING];
	static char ring_key[RING][32];
	int64_t nring = 0, dups = 0, bad = 0, valid = 0, probe_sent = 0;
	int64_t probe_every =
		o.probes ? (o.events - o.probe_after) / (o.probes * o.probe_limit + 1) : 0;
	int64_t *probe_count = calloc((size_t)o.probes + 1, sizeof(int64_t));
	int64_t t0 = now_us();
	char buf[1024], tenant[32];
	for (int64_t i = 0; i < o.events; i++) {
		if (o.rate) {
			/* Sleep only when a slice ahead, then send what is due within
			 * it: at most 1,000 wake-ups a second, not one per event
			 * (alone on 128 partitions, CPU per 10 s at 1,500 / 3,000 /
			 * 6,400 events/s went 2.7 -> 2.0, 5.0 -> 4.1, 8.4 -> 6.5 s,
			 * one run each: CPU the latency phase takes from meterd). */
			int64_t due = t0 + i * 1000000 / o.rate;
			int64_t now = now_us();
			if (due - now >= RATE_SLICE_US) {
				rd_kafka_poll(rk, 0);
				usleep((useconds_t)(due - now));
			}
		}
		if (probe_every && i >= o.probe_after && (i - o.probe_after) % probe_every == 0 &&
		    probe_sent < o.probes * o.probe_limit) {
			int64_t k = probe_sent / o.probe_limit;
			snprintf(tenant, sizeof(tenant), "probe-%" PRId64, k);
			int64_t t = now_us();
			int n = make_event(buf, sizeof(buf), o.id_prefix, -(probe_sent + 1), tenant,
					   k, t, 1);
			/* ids of probes: "<prefix>--<n>" (negative sequence) */
			produce(rk, o.topic, tenant, buf, (size_t)n);
			if (++probe_count[k] == o.probe_limit)
				cross_us[k] = t;
			probe_sent++;
			valid++;
		}
		int64_t r = rnd(1000);
		if (nring && r < o.dup_rate * 10) {
			int64_t j = rnd(nring < RING ? nring : RING);
			produce(rk, o.topic, ring_key[j], ring[j], ring_len[j]);
			dups++;
			continue;
		}
		int64_t tix = zipf_pick(o.tenants);
		snprintf(tenant, sizeof(tenant), "t%05" PRId64, tix);
		if (r >= 1000 - o.bad_permille) {
			int n = snprintf(buf, sizeof(buf),
					 rnd(2) ? "{\"specversion\":\"1.0\",\"id\":\"bad-%" PRId64 "\""
						: "{\"specversion\":\"1.0\",\"id\":\"bad-%" PRId64
						  "\",\"source\":\"x\",\"type\":\"t\",\"time\":\"now\"}",
					 i);
			produce(rk, o.topic, tenant, buf, (size_t)n);
			bad++;
			continue;
		}
		int n = make_event(buf, sizeof(buf), o.id_prefix, i, tenant, tix, now_us(), 0);
		produce(rk, o.topic, tenant, buf, (size_t)n);
		int64_t slot = nring++ % RING;
		memcpy(ring[slot], buf, (size_t)n);
		ring_len[slot] = (size_t)n;
		snprintf(ring_key[slot], sizeof(ring_key[slot]), "%s", tenant);
		valid++;
		if (i % 1000 == 0)
			rd_kafka_poll(rk, 0);
	}
	while (rd_kafka_outq_len(rk) > 0)
		rd_kafka_poll(rk, 50);
	double secs = (double)(now_us() - t0) / 1e6;

	/* Flags: wait up to 20 s for the last ones. */
	int64_t lat[10000];
	int nlat = 0, missing = 0;
	if (o.probes) {
		int64_t deadline = now_us() + 20000000;
		for (;;) {
			int all = 1;
			for (int64_t k = 0; k < o.probes; k++)
				if (cross_us[k] && !flag_us[k])
					all = 0;
			if (all || now_us() > deadline)
				break;
			usleep(50000);
		}
		reader_stop = 1;
		pthread_join(th, NULL);
		for (int64_t k = 0; k < o.probes; k++) {
			if (!cross_us[k])
				continue;
			if (flag_us[k])
				lat[nlat++] = flag_us[k] - cross_us[k];
			else
				missing++;
		}
		qsort(lat, (size_t)nlat, sizeof(lat[0]), cmp64);
		rd_kafka_consumer_close(reader);
		rd_kafka_destroy(reader);
	}
	printf("{\"sent\":%" PRId64 ",\"valid\":%" PRId64 ",\"duplicates\":%" PRId64
	       ",\"bad\":%" PRId64 ",\"delivered\":%" PRId64 ",\"failed\":%" PRId64
	       ",\"produce_seconds\":%.3f,\"flags\":%d,\"flags_missing\":%d,"
	       "\"flag_p50_ms\":%.1f,\"flag_p99_ms\":%.1f,\"ack_p50_ms\":%.0f,\"ack_p99_ms\":%.0f}\n",
	       valid + dups + bad, valid, dups, bad, delivered, failed, secs, nlat, missing,
	       nlat ? (double)lat[nlat / 2] / 1000.0 : -1.0,
	       nlat ? (double)lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1000.0
		    : -1.0,
	       ack_quantile(0.5), ack_quantile(0.99));
	rd_kafka_destroy(rk);
	free(zipf_cdf);
	free(cross_us);
	free(flag_us);
	free(probe_count);
	return failed ? 1 : 0;
}
