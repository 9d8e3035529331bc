/* chaos_gen - the chaos suite's seeded generator (see tests/chaos/chaos.h).
 *
 *   chaos_gen plan    OPTIONS --out DIR      the oracle files and DIR/nemesis.tsv
 *   chaos_gen produce OPTIONS --brokers B --topic T --sent FILE [-X k=v]...
 *                                            send the stream, paced over 75 % of
 *                                            the duration; FILE gets "seq
 *                                            partition offset" per message
 *   chaos_gen selfcheck OPTIONS              every message through the worker's
 *                                            parser (schema/event.c): the bad
 *                                            ones get the reason the oracle
 *                                            expects, the valid ones parse to the
 *                                            event the oracle counts
 * OPTIONS (the same for every command of one run, or the stream differs):
 *   --seed N --events N --tenants N --partitions N --duration SECONDS
 *   --dup-rate PCT --bad-rate PCT --lateness SECONDS --max-event-bytes N
 *   --prefix S --webhook-url URL --email 0|1
 * Prints "seed N" first. Exit codes: 0 ok, 1 failure, 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "chaos.h"
#include "event.h"
#include "num.h"

#define MAX_PROPS 16

struct args {
	struct ch_opts o;
	const char *out, *brokers, *topic, *sent;
	int nprops;
	const char *prop[MAX_PROPS][2];
};

static void usage(FILE *f)
{
	fprintf(f, "usage: chaos_gen plan|produce|selfcheck [options] (see tests/chaos/chaos_gen.c)\n");
}

static int parse(int argc, char **argv, struct args *a)
{
	a->o = (struct ch_opts){.events = 5000, .tenants = 12, .partitions = 8,
				.duration_s = 60, .dup_rate = 8, .bad_rate = 4,
				.lateness_s = 100 * 86400, .max_event_bytes = 16384,
				.prefix = "chaos", .webhook_url = "", .email = 1};
	a->topic = "usage.events";
	a->brokers = getenv("METER_KAFKA_BROKERS");
	for (int i = 2; i < argc; i++) {
		const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v) {
			fprintf(stderr, "chaos_gen: %s needs a value\n", k);
			return -1;
		}
		i++;
		struct {
			const char *name;
			int64_t *dst, lo, hi;
		} nums[] = {
			{"--events", &a->o.events, 1, 100000000},
			{"--tenants", &a->o.tenants, 3, CH_MAX_TENANTS},
			{"--partitions", &a->o.partitions, 1, 1000},
			{"--duration", &a->o.duration_s, 10, 4 * 3600},
			{"--dup-rate", &a->o.dup_rate, 0, 50},
			{"--bad-rate", &a->o.bad_rate, 0, 50},
			{"--lateness", &a->o.lateness_s, 3 * 86400, 3660 * 86400},
			{"--max-event-bytes", &a->o.max_event_bytes, 256, 1000000},
		};
		int done = 0;
		for (size_t n = 0; n < sizeof(nums) / sizeof(nums[0]); n++) {
			if (strcmp(k, nums[n].name) != 0)
				continue;
			if (num_parse_i64(v, nums[n].lo, nums[n].hi, nums[n].dst) != 0) {
				fprintf(stderr, "chaos_gen: %s '%s': want %" PRId64 "..%" PRId64 "\n", k,
					v, nums[n].lo, nums[n].hi);
				return -1;
			}
			done = 1;
		}
		if (done)
			continue;
		int64_t n;
		if (!strcmp(k, "--seed")) {
			if (num_parse_i64(v, 0, INT64_MAX, &n) != 0) {
				fprintf(stderr, "chaos_gen: --seed '%s': want a number >= 0\n", v);
				return -1;
			}
			a->o.seed = (uint64_t)n;
		} else if (!strcmp(k, "--email")) {
			a->o.email = strcmp(v, "0") != 0;
		} else if (!strcmp(k, "--prefix")) {
			a->o.prefix = v;
		} else if (!strcmp(k, "--webhook-url")) {
			a->o.webhook_url = v;
		} else if (!strcmp(k, "--out")) {
			a->out = v;
		} else if (!strcmp(k, "--brokers")) {
			a->brokers = v;
		} else if (!strcmp(k, "--topic")) {
			a->topic = v;
		} else if (!strcmp(k, "--sent")) {
			a->sent = v;
		} else if (!strcmp(k, "-X")) {
			char *eq = strchr(v, '=');
			if (!eq || a->nprops == MAX_PROPS) {
				fprintf(stderr, "chaos_gen: -X '%s': want name=value\n", v);
				return -1;
			}
			*eq = '\0';
			a->prop[a->nprops][0] = v;
			a->prop[a->nprops++][1] = eq + 1;
		} else {
			fprintf(stderr, "chaos_gen: unknown option '%s'\n", k);
			return -1;
		}
	}
	return 0;
}

/* ---- plan ---------------------------------------------------------------------------- */

static int cmd_plan(const struct args *a, const struct ch_world *w)
{
	if (!a->out) {
		fprintf(stderr, "chaos_gen: plan needs --out DIR\n");
		return 2;
	}
	mkdir(a->out, 0755);
	struct ch_stream *s = ch_stream_new(w);
	struct ch_oracle *o = ch_oracle_new(w);
	struct ch_msg m;
	int rc = 0, r;
	if (!s || !o) {
		fprintf(stderr, "chaos_gen: out of memory\n");
		return 1;
	}
	while ((r = ch_stream_next(s, &m)) == 1) {
		ch_oracle_add(o, &m);
		free(m.payload);
	}
	if (r < 0 || ch_oracle_write(o, a->out) != 0)
		rc = 1;
	char path[4096];
	snprintf(path, sizeof(path), "%s/nemesis.tsv", a->out);
	FILE *f = fopen(path, "w");
	if (!f || ch_nemesis_write(w, f) != 0 || fclose(f) != 0) {
		fprintf(stderr, "chaos_gen: %s: %s\n", path, strerror(errno));
		rc = 1;
	}
	ch_oracle_destroy(o);
	ch_stream_destroy(s);
	return rc;
}

/* ---- produce --------------------------------------------------------------------------- */

static FILE *sent_file;
static int64_t delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	int64_t seq = (int64_t)(intptr_t)m->_private;
	if (m->err) {
		if (failed++ < 5)
			fprintf(stderr, "chaos_gen: message %" PRId64 " not delivered: %s\n", seq,
				rd_kafka_err2str(m->err));
		return;
	}
	delivered++;
	fprintf(sent_file, "%" PRId64 "\t%" PRId32 "\t%" PRId64 "\n", seq, m->partition, m->offset);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int cmd_produce(const struct args *a, const struct ch_world *w)
{
	char err[512];
	if (!a->brokers || !a->sent) {
		fprintf(stderr, "chaos_gen: produce needs --brokers (or METER_KAFKA_BROKERS) and --sent\n");
		return 2;
	}
	if (!(sent_file = fopen(a->sent, "w"))) {
		fprintf(stderr, "chaos_gen: %s: %s\n", a->sent, strerror(errno));
		return 1;
	}
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *set[][2] = {
		{"bootstrap.servers", a->brokers}, {"enable.idempotence", "true"},
		{"linger.ms", "5"},		    {"compression.codec", "lz4"},
		{"client.id", "chaos_gen"},	    {"message.timeout.ms", "600000"},
	};
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		if (rd_kafka_conf_set(conf, set[i][0], set[i][1], err, sizeof(err)) != 0)
			goto conf_fail;
	for (int i = 0; i < a->nprops; i++)
		if (rd_kafka_conf_set(conf, a->prop[i][0], a->prop[i][1], err, sizeof(err)) != 0)
			goto conf_fail;
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk)
		goto conf_fail;
	conf = NULL; /* now owned by rk */

	struct ch_stream *s = ch_stream_new(w);
	struct ch_msg m;
	int r, rc = 0;
	int64_t t0 = mono_ms(), span = w->o.duration_s * 750; /* 75 % of the run */
	while (s && (r = ch_stream_next(s, &m)) == 1) {
		for (;;) {
			rd_kafka_resp_err_t e = rd_kafka_producev(
				rk, RD_KAFKA_V_TOPIC(a->topic), RD_KAFKA_V_PARTITION(m.partition),
				RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
				RD_KAFKA_V_KEY(m.key, strlen(m.key)),
				RD_KAFKA_V_VALUE(m.payload, m.len),
				RD_KAFKA_V_OPAQUE((void *)(intptr_t)m.seq), RD_KAFKA_V_END);
			if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
				break;
			if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
				fprintf(stderr, "chaos_gen: produce: %s\n", rd_kafka_err2str(e));
				rc = 1;
				break;
			}
			rd_kafka_poll(rk, 100);
		}
		free(m.payload);
		if (rc)
			break;
		int64_t due = t0 + (m.seq + 1) * span / w->o.events, wait;
		rd_kafka_poll(rk, 0);
		while ((wait = due - mono_ms()) > 0)
			rd_kafka_poll(rk, (int)wait);
	}
	if (!s || r < 0) {
		fprintf(stderr, "chaos_gen: out of memory\n");
		rc = 1;
	}
	if (rd_kafka_flush(rk, 300000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "chaos_gen: %d messages not delivered within 300 s\n",
			rd_kafka_outq_len(rk));
		rc = 1;
	}
	rd_kafka_destroy(rk);
	ch_stream_destroy(s);
	if (fclose(sent_file) != 0)
		rc = 1;
	printf("produced %" PRId64 " messages (%" PRId64 " failed) in %.1fs\n", delivered, failed,
	       (double)(mono_ms() - t0) / 1000);
	return rc || failed ? 1 : 0;
conf_fail:
	fprintf(stderr, "chaos_gen: %s\n", err);
	rd_kafka_conf_destroy(conf);
	fclose(sent_file);
	return 1;
}

/* ---- selfcheck ----------------------------------------------------------------------- */

static int cmd_selfcheck(const struct ch_world *w)
{
	struct ch_stream *s = ch_stream_new(w);
	struct ch_msg m;
	struct ev_limits lim = {.max_bytes = (size_t)w->o.max_event_bytes,
				.now_us = w->anchor_us,
				.max_lateness_us = w->o.lateness_s * US_PER_S,
				.max_future_us = 300 * US_PER_S};
	int64_t n = 0, bad = 0;
	int r;
	while (s && (r = ch_stream_next(s, &m)) == 1) {
		struct meter_event ev;
		struct ev_error e;
		int rc = ev_parse(m.payload, m.len, &lim, &ev, &e);
		const char *got = rc == 0 ? "ok" : ev_reason_name(e.reason);
		const char *want = m.kind == CH_BAD ? m.reason : "ok";
		int same = !strcmp(got, want);
		if (same && rc == 0) {
			same = !strcmp(ev.id, m.ev.id) && !strcmp(ev.tenant_id, m.key) &&
			       ev.time_us == m.ev.time_us && ev.input_tokens == m.ev.input &&
			       ev.cached_input_tokens == m.ev.cached &&
			       ev.output_tokens == m.ev.output &&
			       ev.reasoning_tokens == m.ev.reasoning && ev.requests == m.ev.requests &&
			       ev.has_cost == m.ev.has_cost &&
			       (!ev.has_cost || ev.cost_pusd == m.ev.cost_pusd);
			if (!same)
				e.detail[0] = '\0';
		}
		if (!same && bad++ < 20)
			fprintf(stderr, "message %" PRId64 ": expected %s, the parser says %s (%s): %.300s\n",
				m.seq, want, got, rc ? e.detail : "fields differ", m.payload);
		if (rc == 0)
			ev_clear(&ev);
		free(m.payload);
		n++;
	}
	ch_stream_destroy(s);
	printf("selfcheck: %" PRId64 " messages, %" PRId64 " differ from the oracle's view\n", n, bad);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct args a;
	memset(&a, 0, sizeof(a));
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (parse(argc, argv, &a) != 0)
		return 2;
	printf("seed %" PRIu64 "\n", a.o.seed);
	fflush(stdout);
	static struct ch_world w; /* large: not on the stack */
	if (ch_world_init(&w, &a.o) != 0)
		return 2;
	if (!strcmp(argv[1], "plan"))
		return cmd_plan(&a, &w);
	if (!strcmp(argv[1], "produce"))
		return cmd_produce(&a, &w);
	if (!strcmp(argv[1], "selfcheck"))
		return cmd_selfcheck(&w);
	usage(stderr);
	return 2;
}
