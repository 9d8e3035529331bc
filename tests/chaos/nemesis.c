/* nemesis.c - the fault schedule of a chaos run, from the seed.
 *
 * One line per step, "MS ACTION ARGS...", MS from the start of the run; the
 * driver (tests/chaos/chaos.sh) carries them out in order:
 *   kill9 INST RESTART_MS        kill -9 a meterd, restart it after RESTART_MS
 *   freeze INST MS               SIGSTOP a meterd for MS (past its session
 *                                timeout), then SIGCONT
 *   failpoint INST POINT N       restart a meterd armed to kill itself at the
 *                                N-th pass of a failpoint (before_commit,
 *                                after_commit, after_crossing_commit,
 *                                after_flag_produce); restarted unarmed after
 *   join INST / leave INST       a second or third meterd joins / leaves the group
 *                                (sometimes both, so that three members share it)
 *   pg-restart fast|immediate    restart PostgreSQL (immediate: like a crash)
 *   pg-stop / pg-start           PostgreSQL down for a while
 *   pg-cut                       terminate every session of the test database
 *   broker-down ID / broker-up ID  a mock broker refuses connections for a while
 *   push-errors API ERR...       the next requests of that kind fail (cluster-wide)
 *   clear-errors API
 *   notifier-kill RESTART_MS     kill -9 meter-notifier (mid-delivery when busy)
 *   webhook MODE [ARG]           the receiver answers ok, fail STATUS, slow SECONDS
 *                                or is down (process stopped, same port after)
 *   smtp-down / smtp-up          the SMTP sink is stopped / started again
 * Each kind of fault has its own time line (no two PostgreSQL faults at
 * once, etc.); different kinds overlap. Every kind happens at least once,
 * and every failpoint at least once when the run is long enough for it.
 * Faults end by 90 % of the duration, so the run can heal.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chaos.h"

struct step {
	int64_t ms;
	size_t order; /* ties keep the order of creation */
	char text[160];
};

struct sched {
	struct step *s;
	size_t n, cap;
};

static void add(struct sched *sc, int64_t ms, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void add(struct sched *sc, int64_t ms, const char *fmt, ...)
{
	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 64;
		struct step *n = realloc(sc->s, cap * sizeof(*n));
		if (!n) {
			fprintf(stderr, "chaos_gen: out of memory\n");
			exit(1);
		}
		sc->s = n;
		sc->cap = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	sc->s[sc->n].ms = ms;
	sc->s[sc->n].order = sc->n;
	vsnprintf(sc->s[sc->n].text, sizeof(sc->s[sc->n].text), fmt, ap);
	va_end(ap);
	sc->n++;
}

static int step_cmp(const void *a, const void *b)
{
	const struct step *x = a, *y = b;
	if (x->ms != y->ms)
		return x->ms < y->ms ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

/* The kinds of fault, each on its own time line. */
enum lane { L_METERD, L_GROUP, L_PG, L_KAFKA, L_NOTIFIER, L_WEBHOOK, L_SMTP, NLANES };

/* In the order a short run meets them. */
static const char *const failpoints[] = {"before_commit", "after_commit", "after_flag_produce",
					 "after_crossing_commit"};

/* One fault of lane at ms; returns when its lane is free again. */
static int64_t fault(struct sched *sc, enum lane lane, int64_t ms, int variant, uint64_t *s)
{
	int64_t len;
	switch (lane) {
	case L_METERD:
		if (variant == 0) {
			add(sc, ms, "kill9 a %" PRId64, 200 + ch_rnd(s, 2500));
		} else if (variant == 5) {
			/* Frozen past its session: its partitions move on, and when
			 * it wakes up its commit must be refused. */
			add(sc, ms, "freeze a %" PRId64, 5000 + ch_rnd(s, 5000));
		} else {
			add(sc, ms, "failpoint a %s %" PRId64, failpoints[(variant - 1) % 4],
			    1 + ch_rnd(s, 2));
		}
		/* A member killed stays in the group until its session times out,
		 * then the group rebalances: leave meterd some time to work. */
		return ms + 12000 + ch_rnd(s, 4000);
	case L_GROUP: {
		len = 12000 + ch_rnd(s, 12000);
		if (variant % 3 == 2) {
			/* Three members at once: b joins, c joins, b leaves, c leaves. */
			add(sc, ms, "join b");
			add(sc, ms + len / 3, "join c");
			add(sc, ms + len * 2 / 3, "leave b");
			add(sc, ms + len, "leave c");
		} else {
			const char *inst = variant % 3 ? "c" : "b";
			add(sc, ms, "join %s", inst);
			add(sc, ms + len, "leave %s", inst);
		}
		return ms + len + 3000;
	}
	case L_PG:
		switch (variant % 4) {
		case 0: add(sc, ms, "pg-restart fast"); return ms + 6000;
		case 1: add(sc, ms, "pg-restart immediate"); return ms + 8000;
		case 2: add(sc, ms, "pg-cut"); return ms + 4000;
		default:
			len = 2000 + ch_rnd(s, 5000);
			add(sc, ms, "pg-stop");
			add(sc, ms + len, "pg-start");
			return ms + len + 5000;
		}
	case L_KAFKA:
		if (variant % 2 == 0) {
			/* Not broker 1: the driver pins the group coordinator there.
			 * librdkafka 2.0.2's mock cluster aborts (assertion
			 * !member->resp in rdkafka_mock_cgrp.c) when a member joins
			 * again while its JoinGroup waits on a coordinator that went
			 * down; coordinator faults come from injected errors instead. */
			int64_t id = 2 + ch_rnd(s, 2);
			len = 2000 + ch_rnd(s, 5000);
			add(sc, ms, "broker-down %" PRId64, id);
			add(sc, ms + len, "broker-up %" PRId64, id);
			return ms + len + 3000;
		} else {
			static const char *const errs[][2] = {
				{"Produce", "NOT_LEADER_FOR_PARTITION REQUEST_TIMED_OUT"},
				{"Fetch", "NOT_LEADER_FOR_PARTITION UNKNOWN_TOPIC_OR_PART"},
				{"OffsetCommit", "REBALANCE_IN_PROGRESS COORDINATOR_NOT_AVAILABLE"},
				{"JoinGroup", "COORDINATOR_NOT_AVAILABLE NOT_COORDINATOR"},
				{"Heartbeat", "NOT_COORDINATOR COORDINATOR_LOAD_IN_PROGRESS"},
				{"SyncGroup", "COORDINATOR_NOT_AVAILABLE"},
				{"FindCoordinator", "COORDINATOR_NOT_AVAILABLE COORDINATOR_LOAD_IN_PROGRESS"},
				{"InitProducerId", "COORDINATOR_NOT_AVAILABLE"},
			};
			/* Each kind of request in turn: produce, fetch, offset commit,
			 * the group coordinator's requests. */
			int k = (variant / 2) % (int)(sizeof(errs) / sizeof(errs[0]));
			add(sc, ms, "push-errors %s %s", errs[k][0], errs[k][1]);
			add(sc, ms + 4000, "clear-errors %s", errs[k][0]);
			return ms + 6000;
		}
	case L_NOTIFIER:
		if (variant % 2) {
			/* Slow answers first, so that deliveries are in flight. */
			add(sc, ms, "webhook slow 2");
			add(sc, ms + 1200, "notifier-kill %" PRId64, 300 + ch_rnd(s, 2000));
			add(sc, ms + 2500, "webhook ok");
		} else {
			add(sc, ms, "notifier-kill %" PRId64, 300 + ch_rnd(s, 3000));
		}
		return ms + 5000 + ch_rnd(s, 3000);
	case L_WEBHOOK:
		len = 2000 + ch_rnd(s, 4000);
		switch (variant % 4) {
		case 0: add(sc, ms, "webhook fail %d", ch_rnd(s, 2) ? 500 : 503); break;
		case 1: add(sc, ms, "webhook slow %" PRId64, 1 + ch_rnd(s, 2)); break;
		case 2: add(sc, ms, "webhook down"); break;
		default: add(sc, ms, "webhook fail 429"); break;
		}
		add(sc, ms + len, "webhook ok");
		return ms + len + 4000;
	case L_SMTP:
		len = 2000 + ch_rnd(s, 6000);
		add(sc, ms, "smtp-down");
		add(sc, ms + len, "smtp-up");
		return ms + len + 5000;
	default:
		return ms;
	}
}

int ch_nemesis_write(const struct ch_world *w, void *fp)
{
	FILE *f = fp;
	struct sched sc = {0};
	uint64_t s = w->o.seed ^ 0x6e656d65736973ULL;
	ch_rand(&s);
	int64_t end = w->o.duration_s * 1000 * 9 / 10;
	/* Lanes start at staggered times, then go on at random gaps. */
	for (int lane = 0; lane < NLANES; lane++) {
		int64_t at = 3000 + ch_rnd(&s, 6000);
		int variant = (int)ch_rnd(&s, 8);
		int count = 0;
		while (at < end - 9000 || count == 0) {
			/* meterd: every failpoint in turn, plain kills, freezes. */
			static const int meterd_order[] = {1, 2, 0, 3, 5, 4};
			int v = lane == L_METERD ? meterd_order[count % 6] : variant + count;
			at = fault(&sc, (enum lane)lane, at, v, &s);
			at += ch_rnd(&s, 3000 + w->o.duration_s * 40);
			count++;
		}
	}
	qsort(sc.s, sc.n, sizeof(*sc.s), step_cmp);
	for (size_t i = 0; i < sc.n; i++)
		fprintf(f, "%" PRId64 " %s\n", sc.s[i].ms, sc.s[i].text);
	free(sc.s);
	return 0;
}
