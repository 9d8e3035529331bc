/* test_libmeter.c - unit tests of libmeter against an in-process librdkafka
 * mock cluster (no outside services): emit produces valid events, check
 * answers from usage.limits (last value per key wins, until honoured,
 * malformed values ignored), 100,000 subjects.
 *
 * Every test uses its own topics on one shared mock cluster. Waits poll with
 * a deadline; no sleep is an assertion.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "meter.h"

#if defined(__SANITIZE_THREAD__) /* gcc */
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) /* clang */
#define TEST_TSAN 1
#endif
#endif
#ifdef TEST_TSAN
/* glibc's C11 threads (thrd_*, mtx_*, cnd_*), which librdkafka uses, call the
 * pthread internals directly, so ThreadSanitizer never hears of librdkafka's
 * threads (and crashes in them) nor of its locks (and reports races on
 * memory handed over under them). Route them through the intercepted
 * pthread functions; librdkafka's own atomics stay invisible, so reports
 * from inside it are suppressed. Only built with -fsanitize=thread. */
#include <threads.h>

const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	/* mtx_lock: librdkafka publishes some locks through its own atomics. */
	return "called_from_lib:librdkafka.so.1\nrace:^mtx_lock$\n";
}

int mtx_init(mtx_t *mtx, int type)
{
	pthread_mutexattr_t attr;
	pthread_mutexattr_init(&attr);
	if (type & mtx_recursive)
		pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	int rc = pthread_mutex_init((pthread_mutex_t *)mtx, &attr);
	pthread_mutexattr_destroy(&attr);
	return rc == 0 ? thrd_success : thrd_error;
}

int mtx_lock(mtx_t *mtx)
{
	return pthread_mutex_lock((pthread_mutex_t *)mtx) == 0 ? thrd_success : thrd_error;
}

int mtx_trylock(mtx_t *mtx)
{
	int rc = pthread_mutex_trylock((pthread_mutex_t *)mtx);
	return rc == 0 ? thrd_success : rc == EBUSY ? thrd_busy : thrd_error;
}

int mtx_unlock(mtx_t *mtx)
{
	return pthread_mutex_unlock((pthread_mutex_t *)mtx) == 0 ? thrd_success : thrd_error;
}

void mtx_destroy(mtx_t *mtx)
{
	pthread_mutex_destroy((pthread_mutex_t *)mtx);
}

int cnd_init(cnd_t *cnd)
{
	return pthread_cond_init((pthread_cond_t *)cnd, NULL) == 0 ? thrd_success : thrd_error;
}

int cnd_signal(cnd_t *cnd)
{
	return pthread_cond_signal((pthread_cond_t *)cnd) == 0 ? thrd_success : thrd_error;
}

int cnd_broadcast(cnd_t *cnd)
{
	return pthread_cond_broadcast((pthread_cond_t *)cnd) == 0 ? thrd_success : thrd_error;
}

int cnd_wait(cnd_t *cnd, mtx_t *mtx)
{
	return pthread_cond_wait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx) == 0
		       ? thrd_success
		       : thrd_error;
}

int cnd_timedwait(cnd_t *restrict cnd, mtx_t *restrict mtx, const struct timespec *restrict ts)
{
	int rc = pthread_cond_timedwait((pthread_cond_t *)cnd, (pthread_mutex_t *)mtx, ts);
	return rc == 0 ? thrd_success : rc == ETIMEDOUT ? thrd_timedout : thrd_error;
}

void cnd_destroy(cnd_t *cnd)
{
	pthread_cond_destroy((pthread_cond_t *)cnd);
}

struct thrd_trampoline {
	thrd_start_t fn;
	void *arg;
};

static void *thrd_trampoline(void *p)
{
	struct thrd_trampoline t = *(struct thrd_trampoline *)p;
	free(p);
	return (void *)(intptr_t)t.fn(t.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
	struct thrd_trampoline *t = malloc(sizeof(*t));
	if (!t)
		return thrd_nomem;
	t->fn = fn;
	t->arg = arg;
	if (pthread_create(thr, NULL, thrd_trampoline, t) != 0) {
		free(t);
		return thrd_error;
	}
	return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
	void *ret;
	if (pthread_join(thr, &ret) != 0)
		return thrd_error;
	if (res)
		*res = (int)(intptr_t)ret;
	return thrd_success;
}

int thrd_detach(thrd_t thr)
{
	return pthread_detach(thr) == 0 ? thrd_success : thrd_error;
}
#endif

#define SEC 1000000LL
#define NOW_S 1795442709LL      /* 2026-11-23T14:05:09Z */
#define UNTIL_S 1795489200LL    /* 2026-11-24T03:00:00Z */
#define UNTIL "2026-11-24T03:00:00Z"
#define WAIT_MS 15000

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static const char *bootstraps;
static rd_kafka_t *flag_prod; /* the test's own producer of flags */
static _Atomic int64_t fake_now_us = NOW_S * SEC;

static int64_t fake_clock(void *opaque)
{
	(void)opaque;
	return atomic_load(&fake_now_us);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- the cluster ------------------------------------------------------------------------ */

static int group_setup(void **state)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	(void)state;
	rd_kafka_conf_set(conf, "log_level", "2", NULL, 0);
	if (!(mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
		return -1;
	if (!(mock = rd_kafka_mock_cluster_new(mock_rk, 1)))
		return -1;
	bootstraps = rd_kafka_mock_cluster_bootstraps(mock);
	conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
	rd_kafka_conf_set(conf, "linger.ms", "1", NULL, 0);
	if (!(flag_prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))))
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	rd_kafka_destroy(flag_prod);
	rd_kafka_mock_cluster_destroy(mock);
	rd_kafka_destroy(mock_rk);
	return 0;
}

static void topic(const char *name, int partitions)
{
	const struct rd_kafka_metadata *md;
	assert_int_equal(rd_kafka_mock_topic_create(mock, name, partitions, 1),
			 RD_KAFKA_RESP_ERR_NO_ERROR);
	/* Tell the flag producer now: a topic it first hears of at produce time
	 * costs ~0.6 s of metadata back-off. */
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(flag_prod, name, NULL);
	assert_non_null(rkt);
	if (rd_kafka_metadata(flag_prod, 0, rkt, &md, WAIT_MS) == RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(rkt);
}

/* Queue one flag (value NULL: tombstone) for partition (-1: by key). */
static void put_flag(const char *topic_name, int32_t partition, const char *key, const char *value)
{
	rd_kafka_resp_err_t err;
	do {
		err = rd_kafka_producev(
			flag_prod, RD_KAFKA_V_TOPIC(topic_name),
			RD_KAFKA_V_PARTITION(partition < 0 ? RD_KAFKA_PARTITION_UA : partition),
			RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
			RD_KAFKA_V_VALUE((void *)value, value ? strlen(value) : 0),
			RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(flag_prod, 10);
	} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL);
	assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
}

static void flush_flags(void)
{
	assert_int_equal(rd_kafka_flush(flag_prod, WAIT_MS), RD_KAFKA_RESP_ERR_NO_ERROR);
}

/* A flag value in the worker's format. until/updated_at NULL: null/absent. */
static const char *blocked(char *buf, size_t size, const char *subject, const char *metric,
			   long long limit, long long used, const char *until, int manual,
			   const char *updated_at)
{
	char u[64] = "null", up[80] = "";
	if (until)
		snprintf(u, sizeof(u), "\"%s\"", until);
	if (updated_at)
		snprintf(up, sizeof(up), ",\"updated_at\":\"%s\"", updated_at);
	snprintf(buf, size,
		 "{\"subject\":\"%s\",\"state\":\"blocked\",\"metric\":\"%s\",\"period\":\"day\","
		 "\"period_start\":\"2026-11-23\",\"limit\":%lld,\"used\":%lld,\"until\":%s,"
		 "\"reason\":\"%s per day limit of %lld reached\",\"manual\":%s%s}",
		 subject, metric, limit, used, u, metric, limit, manual ? "true" : "false", up);
	return buf;
}

static const char *ok_flag(char *buf, size_t size, const char *subject, const char *updated_at)
{
	snprintf(buf, size, "{\"subject\":\"%s\",\"state\":\"ok\",\"until\":null%s%s%s}", subject,
		 updated_at ? ",\"updated_at\":\"" : "", updated_at ? updated_at : "",
		 updated_at ? "\"" : "");
	return buf;
}

static meter_t *new_meter_opts(meter_opts_t *o)
{
	char errstr[512] = "";
	meter_t *m = meter_new(bootstraps, o, errstr, sizeof(errstr));
	if (!m)
		fail_msg("meter_new: %s", errstr);
	return m;
}

static meter_t *new_checker(const char *limits_topic)
{
	meter_opts_t o;
	meter_opts_init(&o);
	o.emit = 0;
	o.limits_topic = limits_topic;
	o.clock = fake_clock;
	o.metadata_refresh_ms = 300;
	return new_meter_opts(&o);
}

/* Poll meter_check until it returns want (deadline WAIT_MS); returns the last. */
static int wait_check(meter_t *m, const char *t, const char *u, const char *k, int want,
		      meter_decision_t *d)
{
	int64_t deadline = mono_ms() + WAIT_MS;
	int rc;
	while ((rc = meter_check(m, t, u, k, d)) != want && mono_ms() < deadline)
		nap_ms(5);
	return rc;
}

/* ---- emit ------------------------------------------------------------------------------- */

/* Read topic's partitions from the beginning until a message whose value
 * contains needle; copies key and value. Returns 0 or -1 on timeout. */
static int read_back(const char *topic_name, int partitions, const char *needle, char *key,
		     size_t key_size, char **value)
{
	char errstr[256];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, NULL, 0);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	assert_non_null(rk);
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic_name, NULL);
	int found = -1;
	for (int p = 0; p < partitions; p++)
		assert_int_equal(rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q), 0);
	for (int64_t deadline = mono_ms() + WAIT_MS; found && mono_ms() < deadline;) {
		rd_kafka_message_t *msg = rd_kafka_consume_queue(q, 100);
		if (!msg)
			continue;
		char *text = !msg->err && msg->payload ? strndup(msg->payload, msg->len) : NULL;
		if (text && strstr(text, needle)) {
			snprintf(key, key_size, "%.*s", (int)msg->key_len, (const char *)msg->key);
			*value = text;
			text = NULL;
			found = 0;
		}
		free(text);
		rd_kafka_message_destroy(msg);
	}
	for (int p = 0; p < partitions; p++)
		rd_kafka_consume_stop(rkt, p);
	rd_kafka_topic_destroy(rkt);
	rd_kafka_queue_destroy(q);
	rd_kafka_destroy(rk);
	return found;
}

static meter_t *new_emitter(const char *events_topic)
{
	meter_opts_t o;
	meter_opts_init(&o);
	o.check = 0;
	o.events_topic = events_topic;
	o.clock = fake_clock;
	o.source = "//test/svc";
	return new_meter_opts(&o);
}

static int is_uuid4(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash != (s[i] == '-'))
			return 0;
		if (!dash && !strchr("0123456789abcdef", s[i]))
			return 0;
	}
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static void test_emit_produces_valid_event_with_generated_id(void **state)
{
	(void)state;
	topic("ev.valid", 3);
	meter_t *m = new_emitter("ev.valid");
	meter_unit_t units[] = {{"images", 2}, {"video_seconds", 8}};
	meter_event_t ev = {
		.tenant_id = "acme", .user_id = "u-1842", .api_key_id = "k-prod-7",
		.provider = "openai", .model = "gpt-4o-mini", .operation = "chat",
		.input_tokens = 1200, .output_tokens = 300, .cache_read_input_tokens = 200,
		.units = units, .units_count = 2, .cost = "0.0042", .endpoint = "/v1/chat",
		.method = "POST", .status_code = 200, .latency_ms = 840, .workflow_id = "wf-12",
		.execution_id = "ex-99", .metadata_json = "{\"agent\":\"support\"}",
		.time_us = NOW_S * SEC + 481000,
	};
	char id[64] = "", errstr[256] = "", key[64] = "", *value = NULL;
	assert_int_equal(meter_emit(m, &ev, id, sizeof(id), errstr, sizeof(errstr)), METER_OK);
	assert_true(is_uuid4(id));

	char id2[64];
	assert_int_equal(meter_emit(m, &ev, id2, sizeof(id2), errstr, sizeof(errstr)), METER_OK);
	assert_string_not_equal(id, id2);

	assert_int_equal(read_back("ev.valid", 3, id, key, sizeof(key), &value), 0);
	assert_string_equal(key, "acme");
	json_error_t jerr;
	json_t *root = json_loads(value, 0, &jerr);
	assert_non_null(root);
	json_t *data = json_object_get(root, "data");
	assert_string_equal(json_string_value(json_object_get(root, "specversion")), "1.0");
	assert_string_equal(json_string_value(json_object_get(root, "id")), id);
	assert_string_equal(json_string_value(json_object_get(root, "source")), "//test/svc");
	assert_string_equal(json_string_value(json_object_get(root, "type")), "com.meterd.usage");
	assert_string_equal(json_string_value(json_object_get(root, "time")),
			    "2026-11-23T14:05:09.481000Z");
	assert_string_equal(json_string_value(json_object_get(root, "subject")), "acme");
	assert_string_equal(json_string_value(json_object_get(data, "tenant_id")), "acme");
	assert_string_equal(json_string_value(json_object_get(data, "user_id")), "u-1842");
	assert_string_equal(json_string_value(json_object_get(data, "api_key_id")), "k-prod-7");
	assert_string_equal(json_string_value(json_object_get(data, "provider")), "openai");
	assert_string_equal(json_string_value(json_object_get(data, "model")), "gpt-4o-mini");
	assert_string_equal(json_string_value(json_object_get(data, "operation")), "chat");
	assert_int_equal(json_integer_value(json_object_get(data, "input_tokens")), 1200);
	assert_int_equal(json_integer_value(json_object_get(data, "output_tokens")), 300);
	assert_int_equal(json_integer_value(json_object_get(data, "cache_read_input_tokens")), 200);
	assert_int_equal(json_integer_value(json_object_get(data, "reasoning_output_tokens")), 0);
	assert_int_equal(json_integer_value(json_object_get(data, "requests")), 1);
	json_t *u = json_object_get(data, "units");
	assert_int_equal(json_integer_value(json_object_get(u, "images")), 2);
	assert_int_equal(json_integer_value(json_object_get(u, "video_seconds")), 8);
	assert_string_equal(json_string_value(json_object_get(data, "cost")), "0.0042");
	assert_string_equal(json_string_value(json_object_get(data, "endpoint")), "/v1/chat");
	assert_string_equal(json_string_value(json_object_get(data, "method")), "POST");
	assert_int_equal(json_integer_value(json_object_get(data, "status_code")), 200);
	assert_int_equal(json_integer_value(json_object_get(data, "latency_ms")), 840);
	assert_string_equal(json_string_value(json_object_get(data, "workflow_id")), "wf-12");
	assert_string_equal(json_string_value(json_object_get(data, "execution_id")), "ex-99");
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(data, "metadata"), "agent")),
		"support");
	json_decref(root);
	free(value);

	/* Minimal event: the caller's id is kept, time defaults to the clock. */
	meter_event_t min = {.id = "call-7", .tenant_id = "globex", .operation = "embedding"};
	assert_int_equal(meter_emit(m, &min, id, sizeof(id), errstr, sizeof(errstr)), METER_OK);
	assert_string_equal(id, "call-7");
	assert_int_equal(read_back("ev.valid", 3, "\"call-7\"", key, sizeof(key), &value), 0);
	assert_string_equal(key, "globex");
	root = json_loads(value, 0, &jerr);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "time")),
			    "2026-11-23T14:05:09.000000Z");
	data = json_object_get(root, "data");
	assert_null(json_object_get(data, "user_id"));
	assert_null(json_object_get(data, "status_code"));
	assert_null(json_object_get(data, "cost"));
	json_decref(root);
	free(value);
	meter_destroy(m);
}

static void test_emit_rejects_what_the_worker_would_reject(void **state)
{
	(void)state;
	meter_t *m = new_emitter("ev.invalid"); /* never produced to */
	meter_unit_t bad_unit[] = {{"Images", 1}};
	meter_unit_t dup_unit[] = {{"images", 1}, {"images", 2}};
	char long_id[200];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	const struct {
		meter_event_t ev;
		const char *want;
	} cases[] = {
		{{.operation = "chat"}, "data.tenant_id: required"},
		{{.tenant_id = "acme"}, "data.operation: required"},
		{{.tenant_id = "ac/me", .operation = "chat"}, "data.tenant_id: byte 0x2f at offset 2"},
		{{.tenant_id = long_id, .operation = "chat"}, "data.tenant_id: 199 bytes, at most 128"},
		{{.id = "has space", .tenant_id = "a", .operation = "chat"}, "id: byte 0x20"},
		{{.tenant_id = "a", .user_id = "u\n", .operation = "chat"}, "data.user_id: byte 0x0a"},
		{{.tenant_id = "a", .operation = "Chat"}, "data.operation: byte 0x43"},
		{{.tenant_id = "a", .operation = "chat", .input_tokens = -1}, "data.input_tokens: -1"},
		{{.tenant_id = "a", .operation = "chat", .output_tokens = 1000000000001LL},
		 "data.output_tokens"},
		{{.tenant_id = "a", .operation = "chat", .input_tokens = 10,
		  .cache_read_input_tokens = 11},
		 "data.cache_read_input_tokens: 11 is outside 0..10"},
		{{.tenant_id = "a", .operation = "chat", .output_tokens = 1,
		  .reasoning_output_tokens = 2},
		 "data.reasoning_output_tokens"},
		{{.tenant_id = "a", .operation = "chat", .requests = 1000001}, "data.requests"},
		{{.tenant_id = "a", .operation = "chat", .cost = "0.1.2"}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .cost = "1e-3"}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .cost = "0.0000000000001"}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .cost = "1000000.01"}, "more than 1000000"},
		{{.tenant_id = "a", .operation = "chat", .cost = "1000001"}, "more than 1000000"},
		{{.tenant_id = "a", .operation = "chat", .cost = "1."}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .cost = ".5"}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .cost = "-1"}, "data.cost"},
		{{.tenant_id = "a", .operation = "chat", .status_code = 99}, "data.status_code"},
		{{.tenant_id = "a", .operation = "chat", .latency_ms = -5}, "data.latency_ms"},
		{{.tenant_id = "a", .operation = "chat", .method = "GET1"}, "data.method"},
		{{.tenant_id = "a", .operation = "chat", .endpoint = "/x\xff"}, "data.endpoint: byte 0xff"},
		{{.tenant_id = "a", .operation = "chat", .units = bad_unit, .units_count = 1},
		 "data.units name: byte 0x49"},
		{{.tenant_id = "a", .operation = "chat", .units = dup_unit, .units_count = 2},
		 "\"images\" given twice"},
		{{.tenant_id = "a", .operation = "chat", .metadata_json = "[1]"}, "data.metadata"},
		{{.tenant_id = "a", .operation = "chat", .metadata_json = "{bad"}, "data.metadata"},
		{{.tenant_id = "a", .operation = "chat", .time_us = -1}, "time: -1"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char errstr[256] = "", id[64] = "unchanged";
		int rc = meter_emit(m, &cases[i].ev, id, sizeof(id), errstr, sizeof(errstr));
		if (rc != METER_ERR_INVALID || !strstr(errstr, cases[i].want))
			fail_msg("case %zu: rc %d, errstr \"%s\", want \"%s\"", i, rc, errstr,
				 cases[i].want);
		assert_string_equal(id, "unchanged");
	}
	/* Costs up to exactly the maximum are fine. */
	char errstr[256];
	const char *costs[] = {"0", "0.000000000001", "12.5", "1000000", "1000000.000000000000"};
	for (size_t i = 0; i < sizeof(costs) / sizeof(costs[0]); i++) {
		meter_event_t ok = {.tenant_id = "a", .operation = "chat", .cost = costs[i]};
		if (meter_emit(m, &ok, NULL, 0, errstr, sizeof(errstr)) != METER_OK)
			fail_msg("cost %s: %s", costs[i], errstr);
	}

	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.emit_invalid, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(meter_emit(m, NULL, NULL, 0, errstr, sizeof(errstr)), METER_ERR_INVALID);
	assert_int_equal(meter_check(m, "acme", NULL, NULL, NULL), METER_ERR_DISABLED);
	assert_int_equal(meter_wait_ready(m, 0), METER_ERR_DISABLED);
	meter_destroy(m);
}

static void test_emit_json_takes_the_key_from_the_event(void **state)
{
	(void)state;
	topic("ev.json", 2);
	meter_t *m = new_emitter("ev.json");
	const char *ev = "{\"specversion\":\"1.0\",\"id\":\"pre-1\",\"source\":\"s\",\"type\":\"t\","
			 "\"time\":\"2026-11-23T14:05:09Z\",\"data\":{\"tenant_id\":\"initech\","
			 "\"operation\":\"chat\"}}";
	char errstr[256], key[64], *value = NULL;
	assert_int_equal(meter_emit_json(m, NULL, ev, strlen(ev), errstr, sizeof(errstr)), METER_OK);
	assert_int_equal(read_back("ev.json", 2, "pre-1", key, sizeof(key), &value), 0);
	assert_string_equal(key, "initech");
	assert_string_equal(value, ev);
	free(value);
	assert_int_equal(meter_emit_json(m, NULL, "[]", 2, errstr, sizeof(errstr)),
			 METER_ERR_INVALID);
	assert_non_null(strstr(errstr, "not a JSON object"));
	assert_int_equal(meter_emit_json(m, NULL, "{}", 2, errstr, sizeof(errstr)),
			 METER_ERR_INVALID);
	assert_non_null(strstr(errstr, "tenant key: required"));
	assert_int_equal(meter_emit_json(m, "bad key", "{}", 2, errstr, sizeof(errstr)),
			 METER_ERR_INVALID);
	meter_destroy(m);
}

struct reports {
	pthread_mutex_t lock;
	int ok, failed;
	char ids[8][64];
};

static void on_report(const meter_delivery_t *d, void *opaque)
{
	struct reports *r = opaque;
	pthread_mutex_lock(&r->lock);
	if (d->ok && r->ok < 8)
		snprintf(r->ids[r->ok], sizeof(r->ids[0]), "%s", d->id);
	if (d->ok)
		r->ok++;
	else
		r->failed++;
	pthread_mutex_unlock(&r->lock);
}

static int reports_ok(struct reports *r)
{
	pthread_mutex_lock(&r->lock);
	int n = r->ok;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void test_delivery_reports_name_the_event(void **state)
{
	(void)state;
	topic("ev.reports", 1);
	struct reports r = {.lock = PTHREAD_MUTEX_INITIALIZER};
	meter_opts_t o;
	meter_opts_init(&o);
	o.check = 0;
	o.events_topic = "ev.reports";
	o.on_delivery = on_report;
	o.delivery_opaque = &r;
	meter_t *m = new_meter_opts(&o);
	char ids[3][64], errstr[256];
	meter_event_t ev = {.tenant_id = "acme", .operation = "chat"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(meter_emit(m, &ev, ids[i], sizeof(ids[i]), errstr, sizeof(errstr)),
				 METER_OK);
	for (int64_t deadline = mono_ms() + WAIT_MS; reports_ok(&r) < 3 && mono_ms() < deadline;)
		nap_ms(5);
	assert_int_equal(reports_ok(&r), 3);
	for (int i = 0; i < 3; i++) /* one partition: delivered in order */
		assert_string_equal(r.ids[i], ids[i]);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.emitted, 3);
	assert_int_equal(st.delivered, 3);
	assert_int_equal(st.delivery_failed, 0);
	meter_destroy(m);
	assert_int_equal(r.failed, 0);
}

static void test_emit_on_a_full_queue_fails_within_the_bound(void **state)
{
	(void)state;
	struct reports r = {.lock = PTHREAD_MUTEX_INITIALIZER};
	meter_prop_t props[] = {{"producer.queue.buffering.max.messages", "1"}};
	meter_opts_t o;
	meter_opts_init(&o);
	o.check = 0;
	o.props = props;
	o.props_count = 1;
	o.flush_timeout_ms = -1;
	o.on_delivery = on_report;
	o.delivery_opaque = &r;
	char errstr[256] = "";
	/* Nothing listens there: the first event stays queued. */
	meter_t *m = meter_new("127.0.0.1:1", &o, errstr, sizeof(errstr));
	assert_non_null(m);
	meter_event_t ev = {.tenant_id = "acme", .operation = "chat"};
	assert_int_equal(meter_emit(m, &ev, NULL, 0, errstr, sizeof(errstr)), METER_OK);
	int64_t t0 = mono_ms();
	assert_int_equal(meter_emit(m, &ev, NULL, 0, errstr, sizeof(errstr)), METER_ERR_TIMEOUT);
	int64_t took = mono_ms() - t0;
	assert_non_null(strstr(errstr, "queue is full"));
	assert_true(took >= 40);
	assert_true(took < 1000); /* 50 ms, with room for valgrind */
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.emit_timeouts, 1);
	meter_destroy(m); /* no flush: the queued event fails and is reported */
	assert_int_equal(r.failed, 1);
	assert_int_equal(r.ok, 0);
}

static void test_meter_new_rejects_bad_options(void **state)
{
	(void)state;
	char errstr[256];
	meter_opts_t o;
	meter_destroy(NULL);
	assert_null(meter_new(NULL, NULL, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "brokers"));
	meter_opts_init(&o);
	o.emit = o.check = 0;
	assert_null(meter_new("127.0.0.1:1", &o, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "enable emit, check or both"));
	meter_prop_t props[] = {{"no.such.property", "1"}};
	meter_opts_init(&o);
	o.props = props;
	o.props_count = 1;
	assert_null(meter_new("127.0.0.1:1", &o, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "no.such.property"));
	props[0].name = "consumer.no.such.property";
	o.emit = 0;
	assert_null(meter_new("127.0.0.1:1", &o, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "consumer.no.such.property"));
	o.emit = 1;
	o.check = 0; /* a consumer-only property is not given to the producer */
	meter_t *m = meter_new("127.0.0.1:1", &o, errstr, sizeof(errstr));
	assert_non_null(m);
	meter_destroy(m);
}

/* What meter_new(brokers, o) prints on stderr (librdkafka's log lines) into
 * out; returns the handle (NULL with errstr set). */
static meter_t *meter_new_stderr(const meter_opts_t *o, char *errstr, size_t es, char *out,
				 size_t out_size)
{
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	meter_t *m = meter_new(bootstraps, o, errstr, es);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(out, 1, out_size - 1, tmp);
	out[n] = '\0';
	fclose(tmp);
	return m;
}

/* A property librdkafka documents for one kind of client goes to that one
 * alone (meterctl passes dev/env.sh's METER_KAFKA_PROP_session_timeout_ms:
 * the producer printed a CONFWARN line for it at every emit); unknown names
 * still go to both, so a typo fails. */
static void test_props_go_only_to_the_clients_they_are_for(void **state)
{
	(void)state;
	char errstr[256], printed[4096];
	meter_opts_t o;
	meter_prop_t props[] = {{"session.timeout.ms", "6000"},
				{"heartbeat.interval.ms", "2000"},
				{"linger.ms", "5"},
				{"socket.keepalive.enable", "true"}}; /* both */
	topic("lim.props", 1);
	meter_opts_init(&o);
	o.limits_topic = "lim.props";
	o.props = props;
	o.props_count = sizeof(props) / sizeof(props[0]);
	meter_t *m = meter_new_stderr(&o, errstr, sizeof(errstr), printed, sizeof(printed));
	if (!m)
		fail_msg("meter_new: %s", errstr);
	assert_null(strstr(printed, "CONFWARN"));
	meter_destroy(m);

	/* A bad value still fails the client it is for. */
	props[0].value = "soon";
	assert_null(meter_new(bootstraps, &o, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "session.timeout.ms"));
	/* A misspelt name goes to both, and fails. */
	props[0].name = "sesion.timeout.ms";
	o.check = 0;
	assert_null(meter_new(bootstraps, &o, errstr, sizeof(errstr)));
	assert_non_null(strstr(errstr, "sesion.timeout.ms"));
	/* An explicit prefix is still obeyed, even against the list. */
	props[0].name = "producer.session.timeout.ms";
	props[0].value = "6000";
	m = meter_new_stderr(&o, errstr, sizeof(errstr), printed, sizeof(printed));
	assert_non_null(m);
	assert_non_null(strstr(printed, "session.timeout.ms is a consumer property"));
	meter_destroy(m);
}

/* ---- check ---------------------------------------------------------------------------------- */

static void test_check_without_flags_allows(void **state)
{
	(void)state;
	topic("lim.empty", 3);
	meter_t *m = new_checker("lim.empty");
	meter_decision_t d;
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	assert_int_equal(meter_check(m, "acme", "u-1", "k-1", &d), METER_OK);
	assert_int_equal(d.allowed, 1);
	assert_int_equal(d.ready, 1);
	assert_int_equal(meter_check(m, NULL, NULL, NULL, &d), METER_ERR_INVALID);
	assert_int_equal(d.allowed, 1);
	assert_int_equal(meter_check(m, "", NULL, NULL, &d), METER_ERR_INVALID);
	char long_id[200];
	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	assert_int_equal(meter_check(m, "acme", long_id, NULL, &d), METER_ERR_INVALID);
	assert_int_equal(meter_emit(m, &(meter_event_t){.tenant_id = "a", .operation = "chat"},
				    NULL, 0, NULL, 0),
			 METER_ERR_DISABLED);
	meter_destroy(m);
}

static void test_absent_topic_is_ready_and_new_partitions_are_read(void **state)
{
	(void)state;
	char v[512];
	/* The 2.0 mock creates any topic a client asks about, so "absent" is
	 * played by a topic whose metadata says UNKNOWN_TOPIC_OR_PART; clearing
	 * the error makes its partitions appear to the next metadata refresh. */
	rd_kafka_mock_topic_set_error(mock, "lim.later", RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART);
	meter_t *m = new_checker("lim.later");
	meter_decision_t d;
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	assert_int_equal(meter_check(m, "acme", NULL, NULL, &d), METER_OK);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.partitions, 0);
	rd_kafka_mock_topic_set_error(mock, "lim.later", RD_KAFKA_RESP_ERR_NO_ERROR);
	put_flag("lim.later", -1, "tenant/acme",
		 blocked(v, sizeof(v), "tenant/acme", "requests", 50, 51, UNTIL, 0, NULL));
	flush_flags();
	assert_int_equal(wait_check(m, "acme", NULL, NULL, METER_BLOCKED, &d), METER_BLOCKED);
	meter_stats(m, &st);
	assert_true(st.partitions > 0);
	meter_destroy(m);
}

static void test_blocked_tenant_flag_blocks_tenant_user_and_key(void **state)
{
	(void)state;
	char v[512];
	topic("lim.tenant", 3);
	meter_t *m = new_checker("lim.tenant");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	put_flag("lim.tenant", -1, "tenant/acme",
		 blocked(v, sizeof(v), "tenant/acme", "requests", 50, 51, UNTIL, 0,
			 "2026-11-23T14:05:09Z"));
	flush_flags();
	meter_decision_t d;
	assert_int_equal(wait_check(m, "acme", NULL, NULL, METER_BLOCKED, &d), METER_BLOCKED);
	const char *users[] = {NULL, "u-1", NULL, "u-2"}, *keys[] = {NULL, NULL, "k-9", "k-9"};
	for (int i = 0; i < 4; i++) {
		memset(&d, 0x55, sizeof(d));
		assert_int_equal(meter_check(m, "acme", users[i], keys[i], &d), METER_BLOCKED);
		assert_int_equal(d.allowed, 0);
		assert_int_equal(d.ready, 1);
		assert_string_equal(d.subject, "tenant/acme");
		assert_string_equal(d.subject_type, "tenant");
		assert_string_equal(d.metric, "requests");
		assert_string_equal(d.period, "day");
		assert_string_equal(d.limit, "50");
		assert_string_equal(d.used, "51");
		assert_string_equal(d.reason, "requests per day limit of 50 reached");
		assert_true(d.until == UNTIL_S);
		assert_true(d.retry_after_seconds == UNTIL_S - NOW_S);
		assert_int_equal(d.manual, 0);
	}
	/* Other tenants, and prefixes of this one, are not affected. */
	assert_int_equal(meter_check(m, "acm", "u-1", NULL, &d), METER_OK);
	assert_int_equal(meter_check(m, "acme2", NULL, NULL, &d), METER_OK);
	assert_int_equal(meter_check(m, "globex", NULL, "k-9", NULL), METER_OK);
	/* Half a second before the end, Retry-After rounds up to 1. */
	atomic_store(&fake_now_us, UNTIL_S * SEC - SEC / 2);
	assert_int_equal(meter_check(m, "acme", NULL, NULL, &d), METER_BLOCKED);
	assert_true(d.retry_after_seconds == 1);
	atomic_store(&fake_now_us, NOW_S * SEC);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.subjects, 1);
	assert_int_equal(st.blocked, 1);
	meter_destroy(m);
}

static void test_ok_flag_later_unblocks(void **state)
{
	(void)state;
	char v[512];
	topic("lim.clear", 3);
	meter_t *m = new_checker("lim.clear");
	put_flag("lim.clear", -1, "tenant/acme",
		 blocked(v, sizeof(v), "tenant/acme", "tokens", 100000, 100250, UNTIL, 0, NULL));
	flush_flags();
	assert_int_equal(wait_check(m, "acme", NULL, NULL, METER_BLOCKED, NULL), METER_BLOCKED);
	put_flag("lim.clear", -1, "tenant/acme", ok_flag(v, sizeof(v), "tenant/acme", NULL));
	flush_flags();
	meter_decision_t d;
	assert_int_equal(wait_check(m, "acme", "u-1", NULL, METER_OK, &d), METER_OK);
	assert_int_equal(d.allowed, 1);
	/* Blocked again, then deleted by a tombstone. */
	put_flag("lim.clear", -1, "tenant/acme",
		 blocked(v, sizeof(v), "tenant/acme", "tokens", 100000, 100250, UNTIL, 0, NULL));
	flush_flags();
	assert_int_equal(wait_check(m, "acme", NULL, NULL, METER_BLOCKED, NULL), METER_BLOCKED);
	put_flag("lim.clear", -1, "tenant/acme", NULL);
	flush_flags();
	assert_int_equal(wait_check(m, "acme", NULL, NULL, METER_OK, NULL), METER_OK);
	meter_destroy(m);
}

static void test_last_value_wins_across_partitions(void **state)
{
	(void)state;
	char v[512];
	const char *early = "2026-11-23T14:00:00Z", *late = "2026-11-23T15:00:00Z";
	topic("lim.order", 3);
	/* The same key on two partitions (as after a partition-count change):
	 * updated_at orders them, whichever partition is read first. */
	put_flag("lim.order", 0, "tenant/a", blocked(v, sizeof(v), "tenant/a", "requests", 5, 5, UNTIL, 0, early));
	put_flag("lim.order", 1, "tenant/a", ok_flag(v, sizeof(v), "tenant/a", late));
	put_flag("lim.order", 0, "tenant/b", ok_flag(v, sizeof(v), "tenant/b", early));
	put_flag("lim.order", 1, "tenant/b", blocked(v, sizeof(v), "tenant/b", "requests", 5, 5, UNTIL, 0, late));
	put_flag("lim.order", 1, "tenant/c", blocked(v, sizeof(v), "tenant/c", "requests", 5, 5, UNTIL, 0, early));
	put_flag("lim.order", 0, "tenant/c", ok_flag(v, sizeof(v), "tenant/c", late));
	put_flag("lim.order", 1, "tenant/d", ok_flag(v, sizeof(v), "tenant/d", early));
	put_flag("lim.order", 0, "tenant/d", blocked(v, sizeof(v), "tenant/d", "requests", 5, 5, UNTIL, 0, late));
	/* Within one partition the offset order wins, whatever updated_at says. */
	put_flag("lim.order", 2, "tenant/e", blocked(v, sizeof(v), "tenant/e", "requests", 5, 5, UNTIL, 0, late));
	put_flag("lim.order", 2, "tenant/e", ok_flag(v, sizeof(v), "tenant/e", early));
	put_flag("lim.order", 2, "tenant/f", ok_flag(v, sizeof(v), "tenant/f", late));
	put_flag("lim.order", 2, "tenant/f", blocked(v, sizeof(v), "tenant/f", "requests", 5, 5, UNTIL, 0, early));
	flush_flags();
	meter_t *m = new_checker("lim.order");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1); /* everything above is read */
	assert_int_equal(meter_check(m, "a", NULL, NULL, NULL), METER_OK);
	assert_int_equal(meter_check(m, "b", NULL, NULL, NULL), METER_BLOCKED);
	assert_int_equal(meter_check(m, "c", NULL, NULL, NULL), METER_OK);
	assert_int_equal(meter_check(m, "d", NULL, NULL, NULL), METER_BLOCKED);
	assert_int_equal(meter_check(m, "e", NULL, NULL, NULL), METER_OK);
	assert_int_equal(meter_check(m, "f", NULL, NULL, NULL), METER_BLOCKED);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.flags_read, 12);
	assert_int_equal(st.subjects, 6);
	assert_int_equal(st.blocked, 3);
	meter_destroy(m);
}

static void test_until_in_the_past_allows(void **state)
{
	(void)state;
	char v[512];
	topic("lim.until", 1);
	put_flag("lim.until", 0, "tenant/acme",
		 blocked(v, sizeof(v), "tenant/acme", "requests", 50, 50, UNTIL, 0, NULL));
	flush_flags();
	meter_t *m = new_checker("lim.until");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	meter_decision_t d;
	atomic_store(&fake_now_us, UNTIL_S * SEC - 1);
	assert_int_equal(meter_check(m, "acme", NULL, NULL, &d), METER_BLOCKED);
	assert_true(d.retry_after_seconds == 1);
	atomic_store(&fake_now_us, UNTIL_S * SEC); /* the period has ended: no clear needed */
	assert_int_equal(meter_check(m, "acme", NULL, NULL, &d), METER_OK);
	assert_int_equal(d.allowed, 1);
	atomic_store(&fake_now_us, UNTIL_S * SEC + 3600 * SEC);
	assert_int_equal(meter_check(m, "acme", "u", "k", &d), METER_OK);
	atomic_store(&fake_now_us, NOW_S * SEC);
	meter_destroy(m);
}

static void test_manual_flag_blocks_with_retry_after_zero(void **state)
{
	(void)state;
	topic("lim.manual", 2);
	put_flag("lim.manual", -1, "tenant/acme",
		 "{\"subject\":\"tenant/acme\",\"tenant\":\"acme\",\"subject_type\":\"tenant\","
		 "\"subject_id\":null,\"state\":\"blocked\",\"metric\":null,\"period\":null,"
		 "\"limit\":null,\"used\":null,\"until\":null,\"reason\":\"unpaid invoice\","
		 "\"manual\":true,\"updated_at\":\"2026-11-23T14:05:09Z\"}");
	flush_flags();
	meter_t *m = new_checker("lim.manual");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	meter_decision_t d;
	atomic_store(&fake_now_us, (NOW_S + 10LL * 365 * 86400) * SEC); /* years later */
	assert_int_equal(meter_check(m, "acme", "u-1", NULL, &d), METER_BLOCKED);
	atomic_store(&fake_now_us, NOW_S * SEC);
	assert_string_equal(d.subject, "tenant/acme");
	assert_string_equal(d.reason, "unpaid invoice");
	assert_int_equal(d.manual, 1);
	assert_true(d.until == 0);
	assert_true(d.retry_after_seconds == 0);
	assert_string_equal(d.limit, "");
	assert_string_equal(d.metric, "");
	meter_destroy(m);
}

static void test_user_and_key_flags_block_only_that_user_or_key(void **state)
{
	(void)state;
	char v[512];
	topic("lim.userkey", 3);
	put_flag("lim.userkey", -1, "user/acme/u-1",
		 blocked(v, sizeof(v), "user/acme/u-1", "tokens", 1000, 1200, UNTIL, 0, NULL));
	put_flag("lim.userkey", -1, "key/acme/k-9",
		 "{\"subject\":\"key/acme/k-9\",\"subject_type\":\"key\",\"state\":\"blocked\","
		 "\"metric\":\"cost\",\"period\":\"month\",\"limit\":\"5000000000000\","
		 "\"used\":\"5000000000001\",\"until\":\"2026-12-01T00:00:00Z\","
		 "\"reason\":\"cost per month limit of $5 reached\",\"manual\":false}");
	flush_flags();
	meter_t *m = new_checker("lim.userkey");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	meter_decision_t d;
	assert_int_equal(meter_check(m, "acme", NULL, NULL, &d), METER_OK);
	assert_int_equal(meter_check(m, "acme", "u-2", "k-1", &d), METER_OK);
	assert_int_equal(meter_check(m, "globex", "u-1", "k-9", &d), METER_OK);
	assert_int_equal(meter_check(m, "acme", "u-1", NULL, &d), METER_BLOCKED);
	assert_string_equal(d.subject, "user/acme/u-1");
	assert_string_equal(d.subject_type, "user");
	assert_string_equal(d.limit, "1000");
	assert_string_equal(d.used, "1200");
	assert_int_equal(meter_check(m, "acme", "u-2", "k-9", &d), METER_BLOCKED);
	assert_string_equal(d.subject, "key/acme/k-9");
	assert_string_equal(d.subject_type, "key");
	assert_string_equal(d.metric, "cost");
	assert_string_equal(d.period, "month");
	assert_string_equal(d.limit, "5000000000000");
	assert_string_equal(d.used, "5000000000001");
	assert_true(d.until == 1796083200LL); /* 2026-12-01T00:00:00Z */
	/* Both blocked: the longer block (the month's key limit) is reported. */
	assert_int_equal(meter_check(m, "acme", "u-1", "k-9", &d), METER_BLOCKED);
	assert_string_equal(d.subject, "key/acme/k-9");
	assert_true(d.retry_after_seconds == 1796083200LL - NOW_S);
	meter_destroy(m);
}

static void test_malformed_flag_values_are_ignored(void **state)
{
	(void)state;
	char v[512];
	topic("lim.bad", 1);
	put_flag("lim.bad", 0, "tenant/keep",
		 blocked(v, sizeof(v), "tenant/keep", "requests", 50, 51, UNTIL, 0, NULL));
	const char *bad[] = {
		"not json",
		"[1,2,3]",
		"{\"state\":\"maybe\"}",
		"{\"until\":\"" UNTIL "\"}",
		"{\"state\":\"blocked\",\"until\":\"tomorrow\"}",
		"{\"state\":\"blocked\",\"until\":12345}",
		"{\"state\":\"blocked\",\"limit\":1.5}",
		"{\"state\":\"blocked\",\"used\":-3}",
		"{\"state\":\"blocked\",\"used\":\"12a\"}",
		"{\"state\":\"blocked\",\"metric\":7}",
		"{\"state\":\"ok\",\"updated_at\":\"yesterday\"}",
		"{\"state\":\"blocked\",\"until\":null,\"reason\":\"a\\u0000b\"}",
		"{\"state\":\"blocked\",\"until\":null",
	};
	size_t nbad = sizeof(bad) / sizeof(bad[0]);
	for (size_t i = 0; i < nbad; i++) {
		put_flag("lim.bad", 0, "tenant/keep", bad[i]); /* does not clear keep */
		put_flag("lim.bad", 0, "tenant/other", bad[i]); /* does not block other */
	}
	put_flag("lim.bad", 0, NULL, "{\"state\":\"blocked\"}"); /* no key */
	flush_flags();
	meter_t *m = new_checker("lim.bad");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	meter_decision_t d;
	assert_int_equal(meter_check(m, "keep", NULL, NULL, &d), METER_BLOCKED);
	assert_string_equal(d.reason, "requests per day limit of 50 reached");
	assert_int_equal(meter_check(m, "other", NULL, NULL, &d), METER_OK);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.flags_read, 2 * nbad + 2);
	assert_int_equal(st.flags_malformed, 2 * nbad + 1);
	assert_int_equal(st.subjects, 1);
	assert_non_null(strstr(st.last_error, "malformed flag"));
	meter_destroy(m);
}

struct checker {
	meter_t *m;
	atomic_int *stop;
	long answers, wrong;
};

/* Check in a loop; every answer must be allowed or the one flag there is. */
static void *check_loop(void *arg)
{
	struct checker *c = arg;
	meter_decision_t d;
	while (!atomic_load(c->stop)) {
		int rc = meter_check(c->m, "race", "u-1", NULL, &d);
		if (++c->answers % 64 == 0)
			sched_yield(); /* leave the reader some CPU on small machines */
		if (!(rc == METER_OK && d.allowed) &&
		    !(rc == METER_BLOCKED && !d.allowed && !strcmp(d.subject, "tenant/race") &&
		      !strcmp(d.reason, "requests per day limit of 50 reached")))
			c->wrong++;
	}
	return NULL;
}

static void test_concurrent_checks_while_flags_change(void **state)
{
	(void)state;
	char v[512];
	topic("lim.race", 2);
	meter_t *m = new_checker("lim.race");
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	atomic_int stop = 0;
	struct checker c[3];
	pthread_t th[3];
	for (int i = 0; i < 3; i++) {
		c[i] = (struct checker){.m = m, .stop = &stop};
		assert_int_equal(pthread_create(&th[i], NULL, check_loop, &c[i]), 0);
	}
	for (int round = 0; round < 3; round++) {
		put_flag("lim.race", -1, "tenant/race",
			 blocked(v, sizeof(v), "tenant/race", "requests", 50, 51, UNTIL, 0, NULL));
		for (int i = 0; i < 200; i++) { /* other keys: growth of the table */
			char k[48];
			snprintf(k, sizeof(k), "user/race/r%d-%d", round, i);
			put_flag("lim.race", -1, k, ok_flag(v, sizeof(v), k, NULL));
		}
		flush_flags();
		assert_int_equal(wait_check(m, "race", NULL, NULL, METER_BLOCKED, NULL), METER_BLOCKED);
		put_flag("lim.race", -1, "tenant/race", ok_flag(v, sizeof(v), "tenant/race", NULL));
		flush_flags();
		assert_int_equal(wait_check(m, "race", NULL, NULL, METER_OK, NULL), METER_OK);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_true(c[i].answers > 0);
		assert_int_equal(c[i].wrong, 0);
	}
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.subjects, 601);
	meter_destroy(m);
}

#define MANY 100000

static void test_100k_subjects_answer_correctly(void **state)
{
	(void)state;
	char key[64], v[256];
	int64_t t0 = mono_ms();
	topic("lim.many", 8);
	/* i % 3: tenant, user or key subject; even i blocked, odd i ok. Users
	 * and keys belong to tenants of their own, which have no flag. */
	for (int i = 0; i < MANY; i++) {
		switch (i % 3) {
		case 0: snprintf(key, sizeof(key), "tenant/t%d", i); break;
		case 1: snprintf(key, sizeof(key), "user/ut%d/u%d", i, i); break;
		default: snprintf(key, sizeof(key), "key/kt%d/k%d", i, i); break;
		}
		if (i % 2 == 0)
			snprintf(v, sizeof(v),
				 "{\"state\":\"blocked\",\"metric\":\"requests\",\"period\":\"day\","
				 "\"limit\":%d,\"used\":%d,\"until\":\"" UNTIL "\",\"reason\":\"r%d\"}",
				 i, i + 1, i);
		else
			snprintf(v, sizeof(v), "{\"state\":\"ok\"}");
		put_flag("lim.many", -1, key, v);
	}
	flush_flags();
	int64_t t1 = mono_ms();
	meter_t *m = new_checker("lim.many");
	assert_int_equal(meter_wait_ready(m, 60000), 1);
	int64_t t2 = mono_ms();
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.subjects, MANY);
	assert_int_equal(st.blocked, MANY / 2);
	assert_int_equal(st.flags_malformed, 0);
	meter_decision_t d;
	char t[32], x[32];
	for (int i = 0; i < MANY; i++) {
		int rc, want = i % 2 == 0 ? METER_BLOCKED : METER_OK;
		switch (i % 3) {
		case 0:
			snprintf(t, sizeof(t), "t%d", i);
			rc = meter_check(m, t, NULL, NULL, &d);
			break;
		case 1:
			snprintf(t, sizeof(t), "ut%d", i);
			snprintf(x, sizeof(x), "u%d", i);
			rc = meter_check(m, t, x, NULL, &d);
			if (rc == METER_OK) /* the tenant itself is not blocked */
				assert_int_equal(meter_check(m, t, NULL, NULL, NULL), METER_OK);
			break;
		default:
			snprintf(t, sizeof(t), "kt%d", i);
			snprintf(x, sizeof(x), "k%d", i);
			rc = meter_check(m, t, "someone", x, &d);
			break;
		}
		if (rc != want)
			fail_msg("subject %d: got %d, want %d", i, rc, want);
		if (rc == METER_BLOCKED) {
			char r[16];
			snprintf(r, sizeof(r), "r%d", i);
			assert_string_equal(d.reason, r);
			assert_int_equal(atoi(d.limit), i);
		}
		snprintf(t, sizeof(t), "nobody%d", i);
		assert_int_equal(meter_check(m, t, "u", "k", NULL), METER_OK);
	}
	print_message("      100k flags: produced in %lld ms, read to ready in %lld ms\n",
		      (long long)(t1 - t0), (long long)(t2 - t1));
	meter_destroy(m);
}


/* ---- remaining amounts and estimates (usage.rollups) ---------------------------------- */

#define DAY_START "2026-11-23T00:00:00Z"
#define DAY_END "2026-11-24T00:00:00Z"
#define DAY_END_S 1795478400LL
#define MONTH_START "2026-11-01T00:00:00Z"
#define MONTH_END "2026-12-01T00:00:00Z"
#define MONTH_END_S 1796083200LL

/* One metric of "limits": lim NULL = no entry, "null" = unlimited. */
static void limit_entry(char *buf, size_t size, const char *name, const char *lim, long long used)
{
	long long l;
	if (!lim) {
		buf[0] = '\0';
		return;
	}
	if (!strcmp(lim, "null")) {
		snprintf(buf, size, "\"%s\":{\"limit\":null,\"used\":\"%lld\",\"remaining\":null}", name,
			 used);
		return;
	}
	l = atoll(lim);
	snprintf(buf, size, "\"%s\":{\"limit\":\"%s\",\"used\":\"%lld\",\"remaining\":\"%lld\"}", name,
		 lim, used, l > used ? l - used : 0);
}

/* A rollup value in the contract's format (README "Rollups for billing"). */
static const char *rollup(char *buf, size_t size, const char *type, const char *subject,
			  const char *period, const char *starts, const char *ends,
			  const char *req_lim, long long req_used, const char *tok_lim,
			  long long tok_used)
{
	char req[160], tok[160];
	limit_entry(req, sizeof(req), "requests", req_lim, req_used);
	limit_entry(tok, sizeof(tok), "tokens", tok_lim, tok_used);
	snprintf(buf, size,
		 "{\"type\":\"%s\",\"subject\":\"%s\",\"tenant_id\":\"x\",\"period\":\"%s\","
		 "\"period_start\":\"2026-11-23\",\"tz\":\"UTC\",\"starts_at\":\"%s\",\"ends_at\":\"%s\","
		 "\"events\":%lld,\"requests\":%lld,\"tokens\":%lld,\"cost_pusd\":\"0\","
		 "\"limits\":{%s%s%s,\"cost\":{\"limit\":\"100\",\"used\":\"1\",\"remaining\":\"99\"}},"
		 "\"blocked\":false,\"price_version\":1,\"updated_at\":\"2026-11-23T14:00:00Z\"}",
		 type, subject, period, starts, ends, req_used, req_used, tok_used, req, *req && *tok ? "," : "",
		 tok);
	if (!*req && !*tok) /* "limits":{,"cost":...}: drop the comma */
		memmove(strstr(buf, "{,\"cost\"") + 1, strstr(buf, "{,\"cost\"") + 2,
			strlen(strstr(buf, "{,\"cost\"") + 2) + 1);
	return buf;
}

static void put_day(const char *topic_name, const char *subject, const char *req_lim, long long req_used,
		    const char *tok_lim, long long tok_used)
{
	char key[300], v[1024];
	snprintf(key, sizeof(key), "%s/day/2026-11-23", subject);
	put_flag(topic_name, -1, key,
		 rollup(v, sizeof(v), "rollup", subject, "day", DAY_START, DAY_END, req_lim, req_used,
			tok_lim, tok_used));
}

static void put_month(const char *topic_name, const char *subject, const char *req_lim,
		      long long req_used, const char *tok_lim, long long tok_used)
{
	char key[300], v[1024];
	snprintf(key, sizeof(key), "%s/month/2026-11", subject);
	put_flag(topic_name, -1, key,
		 rollup(v, sizeof(v), "rollup", subject, "month", MONTH_START, MONTH_END, req_lim,
			req_used, tok_lim, tok_used));
}

static meter_t *new_estimator(const char *limits_topic, const char *rollups_topic)
{
	meter_opts_t o;
	meter_opts_init(&o);
	o.emit = 0;
	o.limits_topic = limits_topic;
	o.rollups_topic = rollups_topic;
	o.follow_rollups = 1;
	o.clock = fake_clock;
	o.metadata_refresh_ms = 300;
	meter_t *m = new_meter_opts(&o);
	assert_int_equal(meter_wait_ready(m, WAIT_MS), 1);
	return m;
}

/* Wait until the reader has read n rollup messages in all. */
static void wait_rollups_read(meter_t *m, uint64_t n)
{
	meter_stats_t st;
	int64_t deadline = mono_ms() + WAIT_MS;
	do {
		meter_stats(m, &st);
		if (st.rollups_read >= n)
			return;
		nap_ms(5);
	} while (mono_ms() < deadline);
	fail_msg("read %llu rollup messages, want %llu", (unsigned long long)st.rollups_read,
		 (unsigned long long)n);
}

static void test_estimate_remaining_is_the_minimum_over_subjects_and_periods(void **state)
{
	(void)state;
	topic("roll.min", 3);
	/* Tenant: 3 requests left today, 20 this month; tokens 1500 today,
	 * 10000 this month. User: tokens 200 today. Key: requests unlimited,
	 * tokens 100 this month (the month is tighter than its day). */
	put_day("roll.min", "tenant/acme", "50", 47, "100000", 98500);
	put_month("roll.min", "tenant/acme", "500", 480, "1000000", 990000);
	put_day("roll.min", "user/acme/u-1", "null", 9, "5000", 4800);
	put_day("roll.min", "key/acme/k-9", "null", 9, "100000", 50);
	put_month("roll.min", "key/acme/k-9", "null", 9, "300", 200);
	flush_flags();
	meter_t *m = new_estimator("lim.roll.min", "roll.min");
	meter_decision_t d;
	meter_remaining_t r;

	/* Tenant alone: requests from its day, tokens from its day. */
	assert_int_equal(meter_check_estimate(m, "acme", NULL, NULL, 0, 0, &d, &r), METER_OK);
	assert_true(d.allowed);
	assert_int_equal(r.known, 2);
	assert_int_equal(r.requests, 3);
	assert_int_equal(r.requests_limit, 50);
	assert_int_equal(r.requests_reset, DAY_END_S);
	assert_string_equal(r.requests_subject, "tenant/acme");
	assert_string_equal(r.requests_period, "day");
	assert_int_equal(r.tokens, 1500);
	assert_int_equal(r.tokens_limit, 100000);
	assert_int_equal(r.reset, DAY_END_S);
	assert_int_equal(r.checked_at, NOW_S);
	assert_int_equal(r.as_of, NOW_S - 309); /* updated_at 14:00:00 */
	assert_int_equal(r.over_estimate, 0);

	/* With the user: its day's 200 tokens are the tightest. */
	assert_int_equal(meter_check_estimate(m, "acme", "u-1", NULL, 1, 200, &d, &r), METER_OK);
	assert_int_equal(r.known, 3);
	assert_int_equal(r.tokens, 200);
	assert_string_equal(r.tokens_subject, "user/acme/u-1");
	assert_string_equal(r.tokens_period, "day");
	assert_int_equal(r.requests, 3); /* the user's requests are unlimited */

	/* 201 tokens exceed them: blocked, described like a flag. */
	assert_int_equal(meter_check_estimate(m, "acme", "u-1", NULL, 1, 201, &d, &r), METER_BLOCKED);
	assert_false(d.allowed);
	assert_int_equal(r.over_estimate, 1);
	assert_string_equal(d.subject, "user/acme/u-1");
	assert_string_equal(d.subject_type, "user");
	assert_string_equal(d.metric, "tokens");
	assert_string_equal(d.period, "day");
	assert_string_equal(d.limit, "5000");
	assert_string_equal(d.used, "4800");
	assert_int_equal(d.until, DAY_END_S);
	assert_int_equal(d.retry_after_seconds, DAY_END_S - NOW_S);
	assert_int_equal(d.manual, 0);
	assert_non_null(strstr(d.reason, "estimate of 201 tokens exceeds the 200 remaining"));

	/* Requests: 3 left, so an estimate of 3 passes and 4 does not. */
	assert_int_equal(meter_check_estimate(m, "acme", NULL, NULL, 3, 0, &d, &r), METER_OK);
	assert_int_equal(meter_check_estimate(m, "acme", NULL, NULL, 4, 0, &d, &r), METER_BLOCKED);
	assert_string_equal(d.metric, "requests");
	assert_string_equal(d.subject, "tenant/acme");

	/* With the key: its month (100 tokens left) is below every day. */
	assert_int_equal(meter_check_estimate(m, "acme", "u-1", "k-9", 0, 0, &d, &r), METER_OK);
	assert_int_equal(r.known, 5);
	assert_int_equal(r.tokens, 100);
	assert_string_equal(r.tokens_subject, "key/acme/k-9");
	assert_string_equal(r.tokens_period, "month");
	assert_int_equal(r.tokens_reset, MONTH_END_S);
	assert_int_equal(r.reset, DAY_END_S); /* the earlier of the two metrics */
	/* Exceeding the day of the tenant and the month of the key: the longest
	 * (the month) is reported, as with flags. */
	assert_int_equal(meter_check_estimate(m, "acme", "u-1", "k-9", 0, 1600, &d, &r), METER_BLOCKED);
	assert_string_equal(d.subject, "key/acme/k-9");
	assert_string_equal(d.period, "month");
	assert_int_equal(d.until, MONTH_END_S);

	/* meter_check() itself is not affected by estimates. */
	assert_int_equal(meter_check(m, "acme", "u-1", "k-9", &d), METER_OK);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.rollups_read, 5);
	assert_int_equal(st.rollup_slots, 5);
	assert_int_equal(st.rollups_malformed, 0);
	assert_int_equal(st.rollup_partitions, 3);
	meter_destroy(m);
}

static void test_estimate_unlimited_and_unknown(void **state)
{
	(void)state;
	topic("roll.unl", 2);
	put_day("roll.unl", "tenant/big", "null", 1000000, "null", 5000000000LL);
	put_month("roll.unl", "tenant/big", NULL, 0, NULL, 0); /* no limits at all */
	put_day("roll.unl", "tenant/half", "10", 4, NULL, 0);   /* no token limit */
	flush_flags();
	meter_t *m = new_estimator("lim.roll.unl", "roll.unl");
	meter_decision_t d;
	meter_remaining_t r;

	assert_int_equal(meter_check_estimate(m, "big", NULL, NULL, 1000, 100000000, &d, &r), METER_OK);
	assert_int_equal(r.known, 2);
	assert_int_equal(r.requests, METER_UNLIMITED);
	assert_int_equal(r.tokens, METER_UNLIMITED);
	assert_int_equal(r.requests_limit, METER_UNLIMITED);
	assert_int_equal(r.reset, 0);
	assert_string_equal(r.requests_subject, "");

	/* Nothing read for this tenant: unknown, allowed. */
	assert_int_equal(meter_check_estimate(m, "nobody", "u", "k", 5, 5, &d, &r), METER_OK);
	assert_int_equal(r.known, 0);
	assert_int_equal(r.requests, METER_UNLIMITED);
	assert_int_equal(r.as_of, 0);

	assert_int_equal(meter_check_estimate(m, "half", NULL, NULL, 6, 1000000, &d, &r), METER_OK);
	assert_int_equal(r.requests, 6);
	assert_int_equal(r.tokens, METER_UNLIMITED);
	assert_int_equal(meter_check_estimate(m, "half", NULL, NULL, 7, 0, &d, &r), METER_BLOCKED);

	/* Bad arguments, and a handle that does not follow the rollups. */
	assert_int_equal(meter_check_estimate(m, "half", NULL, NULL, -1, 0, &d, &r), METER_ERR_INVALID);
	assert_true(d.allowed);
	assert_int_equal(meter_check_estimate(m, "", NULL, NULL, 0, 0, &d, &r), METER_ERR_INVALID);
	meter_destroy(m);
	m = new_checker("lim.roll.unl");
	assert_int_equal(meter_check_estimate(m, "half", NULL, NULL, 0, 0, &d, &r), METER_ERR_DISABLED);
	assert_true(d.allowed);
	assert_int_equal(r.requests, METER_UNLIMITED);
	meter_destroy(m);
}

static void test_estimate_ignores_past_periods_and_closed_records(void **state)
{
	(void)state;
	char v[1024];
	topic("roll.stale", 1);
	/* Yesterday's day, then today's; then a late update of yesterday (a late
	 * event) that must not replace today's. */
	put_flag("roll.stale", 0, "tenant/t1/day/2026-11-22",
		 rollup(v, sizeof(v), "rollup", "tenant/t1", "day", "2026-11-22T00:00:00Z",
			DAY_START, "50", 1, NULL, 0));
	put_day("roll.stale", "tenant/t1", "50", 10, NULL, 0);
	put_flag("roll.stale", 0, "tenant/t1/day/2026-11-22",
		 rollup(v, sizeof(v), "rollup", "tenant/t1", "day", "2026-11-22T00:00:00Z",
			DAY_START, "50", 49, NULL, 0));
	/* t2: only yesterday's day (its period has ended). */
	put_flag("roll.stale", 0, "tenant/t2/day/2026-11-22",
		 rollup(v, sizeof(v), "rollup", "tenant/t2", "day", "2026-11-22T00:00:00Z",
			DAY_START, "50", 1, NULL, 0));
	/* t3: today's day, then its closed record. */
	put_day("roll.stale", "tenant/t3", "50", 10, NULL, 0);
	put_flag("roll.stale", 0, "tenant/t3/day/2026-11-23",
		 rollup(v, sizeof(v), "closed", "tenant/t3", "day", DAY_START, DAY_END, "50", 12,
			NULL, 0));
	/* t4: today's day, then a tombstone of it. */
	put_day("roll.stale", "tenant/t4", "50", 10, NULL, 0);
	put_flag("roll.stale", 0, "tenant/t4/day/2026-11-23", NULL);
	/* t5: tomorrow's day already (a clock ahead of ours): not current. */
	put_flag("roll.stale", 0, "tenant/t5/day/2026-11-24",
		 rollup(v, sizeof(v), "rollup", "tenant/t5", "day", DAY_END, "2026-11-25T00:00:00Z",
			"50", 1, NULL, 0));
	flush_flags();
	meter_t *m = new_estimator("lim.roll.stale", "roll.stale");
	meter_remaining_t r;
	const struct {
		const char *tenant;
		int64_t requests;
		int known;
	} cases[] = {{"t1", 40, 1}, {"t2", METER_UNLIMITED, 0}, {"t3", METER_UNLIMITED, 0},
		     {"t4", METER_UNLIMITED, 0}, {"t5", METER_UNLIMITED, 0}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(meter_check_estimate(m, cases[i].tenant, NULL, NULL, 1000, 0, NULL, &r),
				 cases[i].known ? METER_BLOCKED : METER_OK);
		if (r.requests != cases[i].requests || r.known != cases[i].known)
			fail_msg("%s: remaining %lld known %d, want %lld and %d", cases[i].tenant,
				 (long long)r.requests, r.known, (long long)cases[i].requests,
				 cases[i].known);
	}
	/* When the day ends (on our clock), today's record stops counting. */
	atomic_store(&fake_now_us, DAY_END_S * SEC);
	assert_int_equal(meter_check_estimate(m, "t1", NULL, NULL, 1000, 0, NULL, &r), METER_OK);
	assert_int_equal(r.known, 0);
	assert_int_equal(r.requests, METER_UNLIMITED);
	/* ... and t5's becomes current. */
	assert_int_equal(meter_check_estimate(m, "t5", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.requests, 49);
	atomic_store(&fake_now_us, NOW_S * SEC);
	meter_destroy(m);
}

static void test_estimate_with_a_blocking_flag_says_nothing_remains(void **state)
{
	(void)state;
	char v[512];
	topic("roll.flag", 1);
	topic("lim.roll.flag", 1);
	put_day("roll.flag", "tenant/f1", "50", 48, "1000", 10); /* lags: 2 requests left */
	put_flag("lim.roll.flag", 0, "tenant/f1",
		 blocked(v, sizeof(v), "tenant/f1", "requests", 50, 50, UNTIL, 0, NULL));
	flush_flags();
	meter_t *m = new_estimator("lim.roll.flag", "roll.flag");
	meter_decision_t d;
	meter_remaining_t r;
	assert_int_equal(meter_check_estimate(m, "f1", NULL, NULL, 1, 5000, &d, &r), METER_BLOCKED);
	/* The flag decides what out says; the estimate is noted. */
	assert_string_equal(d.subject, "tenant/f1");
	assert_string_equal(d.metric, "requests");
	assert_int_equal(d.until, UNTIL_S);
	assert_int_equal(r.over_estimate, 1);
	assert_int_equal(r.requests, 0);
	assert_int_equal(r.requests_limit, 50);
	assert_int_equal(r.requests_reset, UNTIL_S);
	assert_int_equal(r.tokens, 0);
	assert_int_equal(r.tokens_limit, 1000);
	meter_destroy(m);
}

/* "rolling30" (9 bytes, the schema's longest period) comes back whole in
 * the decision and in the remaining amounts: the latter's period fields
 * held 8 bytes and said "rolling". */
static void test_rolling30_period_comes_back_whole(void **state)
{
	(void)state;
	topic("roll.r30", 1);
	topic("lim.roll.r30", 1);
	put_day("roll.r30", "tenant/r30", "50", 10, "5000", 1200);
	put_flag("lim.roll.r30", 0, "tenant/r30",
		 "{\"subject\":\"tenant/r30\",\"state\":\"blocked\",\"subject_type\":\"tenant\","
		 "\"metric\":\"tokens\",\"period\":\"rolling30\",\"period_start\":\"2026-10-25\","
		 "\"limit\":1000,\"used\":1200,\"until\":\"" UNTIL "\","
		 "\"reason\":\"tokens per rolling30 limit of 1000 reached\",\"manual\":false}");
	flush_flags();
	meter_t *m = new_estimator("lim.roll.r30", "roll.r30");
	meter_decision_t d;
	meter_remaining_t r;
	assert_int_equal(meter_check(m, "r30", NULL, NULL, &d), METER_BLOCKED);
	assert_string_equal(d.period, "rolling30");
	assert_int_equal(meter_check_estimate(m, "r30", NULL, NULL, 0, 0, &d, &r), METER_BLOCKED);
	assert_string_equal(d.period, "rolling30");
	assert_string_equal(r.tokens_period, "rolling30");
	assert_int_equal(r.tokens, 0);
	assert_int_equal(r.tokens_limit, 1000);
	assert_int_equal(r.tokens_reset, UNTIL_S);
	assert_string_equal(r.requests_period, "day"); /* from the day's rollup */
	/* The longest name a flag may carry fits as well. */
	assert_int_equal((int)sizeof(r.requests_period), METER_PERIOD_MAX + 1);
	assert_int_equal((int)sizeof(r.tokens_period), (int)sizeof(d.period));
	meter_destroy(m);
}

static void test_malformed_rollups_are_ignored(void **state)
{
	(void)state;
	char v[1024], big[2048];
	topic("roll.bad", 2);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	const char *good = rollup(v, sizeof(v), "rollup", "tenant/ok", "day", DAY_START, DAY_END, "50",
				  5, "1000", 10);
	const struct {
		const char *key, *value;
	} bad[] = {
		{NULL, good},                                /* no key */
		{"", good},
		{"tenant/ok", good},                         /* no period */
		{"tenant/ok/day", good},                     /* no start */
		{"tenant/ok/week/2026-11-23", good},
		{"tenant/ok/day/2026-11", good},             /* a month's start for a day */
		{"tenant/ok/month/2026-11-23", good},
		{"tenant/ok/day/2026-11-2x", good},
		{"tenant//day/2026-11-23", good},            /* empty id */
		{"user/ok/day/2026-11-23", good},            /* a user without its id */
		{"tenant/ok/u/day/2026-11-23", good},        /* a tenant with too many parts */
		{"group/ok/day/2026-11-23", good},
		{"tenant/ok/day/2026-11-23/", good},
		{big, good},
		{"tenant/ok/day/2026-11-23", "not json"},
		{"tenant/ok/day/2026-11-23", "[1,2]"},
		{"tenant/ok/day/2026-11-23", "{}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"other\",\"starts_at\":\"" DAY_START
					     "\",\"ends_at\":\"" DAY_END "\"}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\"}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_END
					     "\",\"ends_at\":\"" DAY_START "\"}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"yesterday\","
					     "\"ends_at\":\"" DAY_END "\"}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START
					     "\",\"ends_at\":\"" DAY_END "\",\"updated_at\":5}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START
					     "\",\"ends_at\":\"" DAY_END "\",\"limits\":[]}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START
					     "\",\"ends_at\":\"" DAY_END "\",\"limits\":{\"requests\":5}}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START
					     "\",\"ends_at\":\"" DAY_END "\",\"limits\":{\"requests\":{}}}"},
		{"tenant/ok/day/2026-11-23",
		 "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\",\"ends_at\":\"" DAY_END
		 "\",\"limits\":{\"tokens\":{\"limit\":\"-5\",\"used\":\"1\"}}}"},
		{"tenant/ok/day/2026-11-23",
		 "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\",\"ends_at\":\"" DAY_END
		 "\",\"limits\":{\"tokens\":{\"limit\":\"5\",\"used\":1.5}}}"},
		{"tenant/ok/day/2026-11-23",
		 "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\",\"ends_at\":\"" DAY_END
		 "\",\"limits\":{\"tokens\":{\"limit\":\"5\"}}}"},
		{"tenant/ok/day/2026-11-23",
		 "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\",\"ends_at\":\"" DAY_END
		 "\",\"limits\":{\"tokens\":{\"limit\":\"1234567890123456789\",\"used\":\"1\"}}}"},
		{"tenant/ok/day/2026-11-23",
		 "{\"type\":\"rollup\",\"starts_at\":\"" DAY_START "\",\"ends_at\":\"" DAY_END
		 "\",\"limits\":{\"tokens\":{\"limit\":\"5\",\"used\":\"1\",\"remaining\":\"x\"}}}"},
		{"tenant/ok/day/2026-11-23", "{\"type\":\"rollup\"\xff}"},
	};
	size_t nbad = sizeof(bad) / sizeof(bad[0]);
	for (size_t i = 0; i < nbad; i++)
		put_flag("roll.bad", (int32_t)(i % 2), bad[i].key, bad[i].value);
	/* A valid record after them all is still read. */
	put_flag("roll.bad", 1, "tenant/ok/day/2026-11-23", good);
	flush_flags();
	meter_t *m = new_estimator("lim.roll.bad", "roll.bad");
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.rollups_read, nbad + 1);
	assert_int_equal(st.rollups_malformed, nbad);
	assert_non_null(strstr(st.last_error, "malformed rollup"));
	meter_remaining_t r;
	assert_int_equal(meter_check_estimate(m, "ok", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.requests, 45);
	assert_int_equal(r.tokens, 990);
	meter_destroy(m);
}

static void test_rollups_follow_updates_and_later_periods(void **state)
{
	(void)state;
	char v[1024];
	topic("roll.live", 2);
	meter_t *m = new_estimator("lim.roll.live", "roll.live");
	meter_remaining_t r;
	put_day("roll.live", "tenant/live", "50", 10, NULL, 0);
	flush_flags();
	wait_rollups_read(m, 1);
	assert_int_equal(meter_check_estimate(m, "live", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.requests, 40);
	put_day("roll.live", "tenant/live", "50", 30, NULL, 0);
	flush_flags();
	wait_rollups_read(m, 2);
	assert_int_equal(meter_check_estimate(m, "live", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.requests, 20);
	/* The next day's first record replaces the slot; before the clock gets
	 * there, nothing is current. */
	put_flag("roll.live", -1, "tenant/live/day/2026-11-24",
		 rollup(v, sizeof(v), "rollup", "tenant/live", "day", DAY_END, "2026-11-25T00:00:00Z",
			"50", 1, NULL, 0));
	flush_flags();
	wait_rollups_read(m, 3);
	assert_int_equal(meter_check_estimate(m, "live", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.known, 0);
	atomic_store(&fake_now_us, (DAY_END_S + 60) * SEC);
	assert_int_equal(meter_check_estimate(m, "live", NULL, NULL, 0, 0, NULL, &r), METER_OK);
	assert_int_equal(r.requests, 49);
	atomic_store(&fake_now_us, NOW_S * SEC);
	meter_stats_t st;
	meter_stats(m, &st);
	assert_int_equal(st.rollup_slots, 1);
	meter_destroy(m);
}

static void test_format_headers(void **state)
{
	(void)state;
	meter_remaining_t both = {.requests = 3, .tokens = 1500, .requests_limit = 50,
				  .tokens_limit = 100000, .requests_reset = 1000 + 3600,
				  .tokens_reset = 1000 + 86400, .reset = 1000 + 3600,
				  .checked_at = 1000};
	meter_remaining_t tokens_only = {.requests = METER_UNLIMITED, .tokens = 0,
					 .requests_limit = METER_UNLIMITED, .tokens_limit = 7,
					 .tokens_reset = 1010, .reset = 1010, .checked_at = 1000};
	meter_remaining_t none = {.requests = METER_UNLIMITED, .tokens = METER_UNLIMITED,
				  .requests_limit = METER_UNLIMITED, .tokens_limit = METER_UNLIMITED,
				  .checked_at = 1000};
	meter_decision_t ok = {.allowed = 1};
	meter_decision_t blk = {.allowed = 0, .until = 1010, .retry_after_seconds = 10};
	meter_decision_t manual = {.allowed = 0, .manual = 1};
	const struct {
		const meter_decision_t *d;
		const meter_remaining_t *r;
		const char *want;
	} cases[] = {
		{&ok, &both,
		 "X-RateLimit-Limit-Requests: 50\r\nX-RateLimit-Remaining-Requests: 3\r\n"
		 "X-RateLimit-Reset-Requests: 3600\r\nX-RateLimit-Limit-Tokens: 100000\r\n"
		 "X-RateLimit-Remaining-Tokens: 1500\r\nX-RateLimit-Reset-Tokens: 86400\r\n"
		 "X-RateLimit-Reset: 3600\r\n"},
		{NULL, &tokens_only,
		 "X-RateLimit-Limit-Tokens: 7\r\nX-RateLimit-Remaining-Tokens: 0\r\n"
		 "X-RateLimit-Reset-Tokens: 10\r\nX-RateLimit-Reset: 10\r\n"},
		{&blk, &tokens_only,
		 "X-RateLimit-Limit-Tokens: 7\r\nX-RateLimit-Remaining-Tokens: 0\r\n"
		 "X-RateLimit-Reset-Tokens: 10\r\nX-RateLimit-Reset: 10\r\nRetry-After: 10\r\n"},
		{&ok, &none, ""},
		{&manual, &none, ""},
		{&blk, NULL, "X-RateLimit-Reset: 10\r\nRetry-After: 10\r\n"},
	};
	char buf[512];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = meter_format_headers(cases[i].d, cases[i].r, buf, sizeof(buf));
		if (n != (int)strlen(cases[i].want) || strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got %d \"%s\", want \"%s\"", i, n, buf, cases[i].want);
	}
	/* Too small: nothing, and an error. */
	char small[40] = "junk";
	assert_int_equal(meter_format_headers(&ok, &both, small, sizeof(small)), METER_ERR_INVALID);
	assert_string_equal(small, "");
	assert_int_equal(meter_format_headers(&ok, &both, NULL, 0), METER_ERR_INVALID);
	/* The largest possible output fits in 512 bytes. */
	meter_remaining_t max = {.requests = INT64_MAX, .tokens = INT64_MAX,
				 .requests_limit = INT64_MAX, .tokens_limit = INT64_MAX,
				 .requests_reset = INT64_MAX, .tokens_reset = INT64_MAX,
				 .reset = INT64_MAX, .checked_at = INT64_MIN + 1};
	meter_decision_t maxd = {.allowed = 0, .retry_after_seconds = INT64_MAX};
	assert_true(meter_format_headers(&maxd, &max, buf, sizeof(buf)) > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_emit_produces_valid_event_with_generated_id),
		cmocka_unit_test(test_emit_rejects_what_the_worker_would_reject),
		cmocka_unit_test(test_emit_json_takes_the_key_from_the_event),
		cmocka_unit_test(test_delivery_reports_name_the_event),
		cmocka_unit_test(test_emit_on_a_full_queue_fails_within_the_bound),
		cmocka_unit_test(test_meter_new_rejects_bad_options),
		cmocka_unit_test(test_props_go_only_to_the_clients_they_are_for),
		cmocka_unit_test(test_check_without_flags_allows),
		cmocka_unit_test(test_absent_topic_is_ready_and_new_partitions_are_read),
		cmocka_unit_test(test_blocked_tenant_flag_blocks_tenant_user_and_key),
		cmocka_unit_test(test_ok_flag_later_unblocks),
		cmocka_unit_test(test_last_value_wins_across_partitions),
		cmocka_unit_test(test_until_in_the_past_allows),
		cmocka_unit_test(test_manual_flag_blocks_with_retry_after_zero),
		cmocka_unit_test(test_user_and_key_flags_block_only_that_user_or_key),
		cmocka_unit_test(test_malformed_flag_values_are_ignored),
		cmocka_unit_test(test_concurrent_checks_while_flags_change),
		cmocka_unit_test(test_100k_subjects_answer_correctly),
		cmocka_unit_test(test_estimate_remaining_is_the_minimum_over_subjects_and_periods),
		cmocka_unit_test(test_estimate_unlimited_and_unknown),
		cmocka_unit_test(test_estimate_ignores_past_periods_and_closed_records),
		cmocka_unit_test(test_estimate_with_a_blocking_flag_says_nothing_remains),
		cmocka_unit_test(test_rolling30_period_comes_back_whole),
		cmocka_unit_test(test_malformed_rollups_are_ignored),
		cmocka_unit_test(test_rollups_follow_updates_and_later_periods),
		cmocka_unit_test(test_format_headers),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
