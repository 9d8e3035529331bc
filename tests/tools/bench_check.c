/* bench_check - how long libmeter's meter_check() takes with many subjects.
 *
 * Starts an in-process librdkafka mock cluster, publishes N flags to
 * usage.limits (a third each tenant/, user/ and key/ subjects, half of them
 * blocked, the rest "ok"), lets a meter_t read them to ready, then times
 * meter_check() calls: with a tenant only and with tenant, user and key
 * (three lookups), from one thread and from two threads at once. Each figure
 * is the median of --runs runs of --calls calls, in ns per call (per thread).
 * Queries walk the subjects in a shuffled order, so most lookups miss the
 * CPU caches as a busy service's would; half of them find nothing. A second
 * set of figures repeats 1,000 queries, so the table stays in cache and what
 * is left is the cost of the lock, the hash and the compare.
 *
 *   bench_check [--subjects N] [--calls N] [--runs N]
 *
 * Exit codes: 0 done, 1 runtime failure, 2 usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "meter.h"

#define MAX_RUNS 31

struct query {
	char tenant[24], user[24], key[24];
};

struct job {
	meter_t *m;
	const struct query *q;
	size_t nq, calls;
	int full;              /* tenant, user and key; else tenant only */
	pthread_barrier_t *start;
	double ns_per_call;
	long blocked;
};

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int parse_count(const char *s, long min, long max, long *out)
{
	char *end;
	long v;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void *run_job(void *arg)
{
	struct job *j = arg;
	meter_decision_t d;
	long blocked = 0;

	if (j->start)
		pthread_barrier_wait(j->start);
	double t0 = now_ns();
	for (size_t i = 0, k = 0; i < j->calls; i++, k = k + 1 == j->nq ? 0 : k + 1) {
		const struct query *q = &j->q[k];
		blocked += meter_check(j->m, q->tenant, j->full ? q->user : NULL,
				       j->full ? q->key : NULL, &d) == METER_BLOCKED;
	}
	j->ns_per_call = (now_ns() - t0) / (double)j->calls;
	j->blocked = blocked;
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Median ns per call over runs, with nthreads threads calling at once. */
static double measure(meter_t *m, const struct query *q, size_t nq, size_t calls, int runs,
		      int nthreads, int full)
{
	double samples[MAX_RUNS * 2];
	int ns = 0;

	for (int r = 0; r < runs; r++) {
		struct job jobs[2];
		pthread_t th[2];
		pthread_barrier_t start;
		pthread_barrier_init(&start, NULL, (unsigned)nthreads);
		for (int t = 0; t < nthreads; t++) {
			/* Each thread starts at a different place in the query list. */
			jobs[t] = (struct job){.m = m, .q = q + (size_t)t * (nq / 2) % nq,
					       .nq = nq - (size_t)t * (nq / 2) % nq, .calls = calls,
					       .full = full, .start = &start};
			pthread_create(&th[t], NULL, run_job, &jobs[t]);
		}
		for (int t = 0; t < nthreads; t++) {
			pthread_join(th[t], NULL);
			samples[ns++] = jobs[t].ns_per_call;
		}
		pthread_barrier_destroy(&start);
	}
	qsort(samples, (size_t)ns, sizeof(samples[0]), cmp_double);
	return samples[ns / 2];
}

/* Bytes of heap in use (glibc), to size the table: the mock broker lives in
 * this process too, so RSS would count its logs and buffers. */
static long heap_kib(void)
{
	struct mallinfo2 mi = mallinfo2();
	return (long)(mi.uordblks / 1024);
}

int main(int argc, char **argv)
{
	long subjects = 100000, calls = 2000000, runs = 7;
	char errstr[512], key[64], val[256];
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		long *dst = !strcmp(argv[i], "--subjects") ? &subjects
			    : !strcmp(argv[i], "--calls")  ? &calls
			    : !strcmp(argv[i], "--runs")   ? &runs
							   : NULL;
		long max = dst == &runs ? MAX_RUNS : 100000000;
		if (!dst || i + 1 >= argc || parse_count(argv[++i], 1, max, dst) != 0) {
			fprintf(stderr, "usage: bench_check [--subjects N] [--calls N] [--runs 1..%d]\n",
				MAX_RUNS);
			return 2;
		}
	}

	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
	rd_kafka_t *mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	rd_kafka_mock_cluster_t *mock = mock_rk ? rd_kafka_mock_cluster_new(mock_rk, 1) : NULL;
	if (!mock) {
		fprintf(stderr, "bench_check: cannot start the mock cluster: %s\n", errstr);
		return 1;
	}
	const char *bootstraps = rd_kafka_mock_cluster_bootstraps(mock);
	/* The mock keeps ~5 MB per partition: spread the flags out. */
	rd_kafka_mock_topic_create(mock, "usage.limits", 16, 1);

	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
	rd_kafka_t *prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	struct query *q = calloc((size_t)subjects, sizeof(*q));
	if (!prod || !q) {
		fprintf(stderr, "bench_check: %s\n", prod ? "out of memory" : errstr);
		return 1;
	}
	double t0 = now_ns();
	for (long i = 0; i < subjects; i++) {
		/* Subject i belongs to tenant t<i/3>; kind i%3; even i blocked. */
		long t = i / 3;
		switch (i % 3) {
		case 0: snprintf(key, sizeof(key), "tenant/t%ld", t); break;
		case 1: snprintf(key, sizeof(key), "user/t%ld/u%ld", t, t); break;
		default: snprintf(key, sizeof(key), "key/t%ld/k%ld", t, t); break;
		}
		if (i % 2 == 0)
			snprintf(val, sizeof(val),
				 "{\"state\":\"blocked\",\"metric\":\"requests\",\"period\":\"day\","
				 "\"limit\":50,\"used\":51,\"until\":\"9999-12-31T00:00:00Z\","
				 "\"reason\":\"requests per day limit of 50 reached\"}");
		else
			snprintf(val, sizeof(val), "{\"state\":\"ok\"}");
		rd_kafka_resp_err_t err;
		while ((err = rd_kafka_producev(prod, RD_KAFKA_V_TOPIC("usage.limits"),
						RD_KAFKA_V_KEY(key, strlen(key)),
						RD_KAFKA_V_VALUE(val, strlen(val)),
						RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
						RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(prod, 10);
		if (err) {
			fprintf(stderr, "bench_check: produce: %s\n", rd_kafka_err2str(err));
			goto out;
		}
	}
	if (rd_kafka_flush(prod, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "bench_check: flags not delivered in 60 s\n");
		goto out;
	}
	double t1 = now_ns();
	long heap0 = heap_kib();

	meter_opts_t o;
	meter_opts_init(&o);
	o.emit = 0;
	meter_t *m = meter_new(bootstraps, &o, errstr, sizeof(errstr));
	if (!m) {
		fprintf(stderr, "bench_check: meter_new: %s\n", errstr);
		goto out;
	}
	if (meter_wait_ready(m, 120000) != 1) {
		fprintf(stderr, "bench_check: not ready after 120 s\n");
		meter_destroy(m);
		goto out;
	}
	double t2 = now_ns();
	meter_stats_t st;
	meter_stats(m, &st);

	/* Queries: every tenant that has subjects, and as many that have none,
	 * in a shuffled order. */
	size_t nq = 0, tenants = (size_t)(subjects + 2) / 3;
	struct query *qs = calloc(2 * tenants, sizeof(*qs));
	if (!qs) {
		meter_destroy(m);
		goto out;
	}
	for (size_t t = 0; t < tenants; t++) {
		snprintf(qs[nq].tenant, sizeof(qs[nq].tenant), "t%zu", t);
		snprintf(qs[nq].user, sizeof(qs[nq].user), "u%zu", t);
		snprintf(qs[nq].key, sizeof(qs[nq].key), "k%zu", t);
		nq++;
		snprintf(qs[nq].tenant, sizeof(qs[nq].tenant), "none%zu", t);
		snprintf(qs[nq].user, sizeof(qs[nq].user), "u%zu", t);
		snprintf(qs[nq].key, sizeof(qs[nq].key), "k%zu", t);
		nq++;
	}
	for (size_t i = nq - 1; i > 0; i--) {
		size_t j = (size_t)(next_rand() % (i + 1));
		struct query tmp = qs[i];
		qs[i] = qs[j];
		qs[j] = tmp;
	}

	printf("subjects: %" PRIu64 " held (%" PRIu64 " blocked), %d partitions\n", st.subjects,
	       st.blocked, st.partitions);
	printf("load: produced in %.0f ms, read to ready in %.0f ms; heap +%ld KiB for the "
	       "handle, its table and its consumer\n",
	       (t1 - t0) / 1e6, (t2 - t1) / 1e6, heap_kib() - heap0);
	printf("meter_check, median of %ld runs x %ld calls (%zu distinct queries):\n", runs, calls,
	       nq);
	printf("  tenant only,            1 thread : %6.1f ns/call\n",
	       measure(m, qs, nq, (size_t)calls, (int)runs, 1, 0));
	printf("  tenant + user + key,    1 thread : %6.1f ns/call\n",
	       measure(m, qs, nq, (size_t)calls, (int)runs, 1, 1));
	printf("  tenant only,            2 threads: %6.1f ns/call per thread\n",
	       measure(m, qs, nq, (size_t)calls, (int)runs, 2, 0));
	printf("  tenant + user + key,    2 threads: %6.1f ns/call per thread\n",
	       measure(m, qs, nq, (size_t)calls, (int)runs, 2, 1));
	size_t hot = nq < 1000 ? nq : 1000;
	printf("the same with a hot set of %zu queries (table in cache; lock and hash cost):\n", hot);
	printf("  tenant only,            1 thread : %6.1f ns/call\n",
	       measure(m, qs, hot, (size_t)calls, (int)runs, 1, 0));
	printf("  tenant + user + key,    1 thread : %6.1f ns/call\n",
	       measure(m, qs, hot, (size_t)calls, (int)runs, 1, 1));
	printf("  tenant + user + key,    2 threads: %6.1f ns/call per thread\n",
	       measure(m, qs, hot, (size_t)calls, (int)runs, 2, 1));
	free(qs);
	meter_destroy(m);
	rc = 0;
out:
	free(q);
	rd_kafka_destroy(prod);
	rd_kafka_mock_cluster_destroy(mock);
	rd_kafka_destroy(mock_rk);
	return rc;
}
