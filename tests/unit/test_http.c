/* test_http.c - unit tests of the metrics registry (exact text exposition,
 * escaping, histograms, limits, concurrent updates) and of the HTTP server
 * (built-in endpoints, readiness, request bounds) on a loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpd.h"
#include "metrics.h"

/* The registry's own trailer, after the families. */
#define TRAILER                                                                              \
	"# HELP meter_metrics_series_dropped_total Metric updates dropped (too many label "  \
	"combinations or a missing label value).\n"                                          \
	"# TYPE meter_metrics_series_dropped_total counter\n"                                \
	"meter_metrics_series_dropped_total %d\n"

static char *render(struct mx_registry *r)
{
	size_t len = 0;
	char *s = mx_render(r, &len);
	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_counters_and_gauges_render_exactly(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	struct mx_metric *c = mx_counter(r, "t_events_total", "Events seen.", NULL);
	struct mx_metric *l = mx_counter(r, "t_rejected_total", "Rejected, by reason.", "reason");
	struct mx_metric *g = mx_gauge(r, "t_lag", "Lag.", "partition");
	mx_add(c, NULL, 3);
	mx_add(c, NULL, 2);
	mx_add(c, NULL, -1); /* a counter never goes down */
	mx_touch(l, MX_L("too_late"));
	mx_add(l, MX_L("malformed_json"), 1);
	mx_add(l, MX_L("too_late"), 4);
	mx_set(g, MX_L("0"), 7);
	mx_set(g, MX_L("1"), 0.25);
	mx_add(g, MX_L("1"), -1);
	char *s = render(r);
	char want[2048];
	snprintf(want, sizeof(want),
		 "# HELP t_events_total Events seen.\n"
		 "# TYPE t_events_total counter\n"
		 "t_events_total 5\n"
		 "# HELP t_rejected_total Rejected, by reason.\n"
		 "# TYPE t_rejected_total counter\n"
		 "t_rejected_total{reason=\"too_late\"} 4\n"
		 "t_rejected_total{reason=\"malformed_json\"} 1\n"
		 "# HELP t_lag Lag.\n"
		 "# TYPE t_lag gauge\n"
		 "t_lag{partition=\"0\"} 7\n"
		 "t_lag{partition=\"1\"} -0.75\n" TRAILER,
		 0);
	assert_string_equal(s, want);
	free(s);
	assert_true(mx_value(l, MX_L("too_late")) == 4);
	assert_true(mx_value(l, MX_L("absent")) == -1);
	mx_clear(g);
	s = render(r);
	assert_null(strstr(s, "t_lag{"));
	assert_non_null(strstr(s, "# TYPE t_lag gauge\n"));
	free(s);
	mx_registry_destroy(r);
}

static void test_histogram_buckets_are_cumulative_and_end_in_inf(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	static const double b[] = {0.005, 0.1, 1, 2.5};
	struct mx_metric *h = mx_histogram(r, "t_seconds", "Time.", "route", b, 4);
	assert_non_null(h);
	const double obs[] = {0.00390625, 0.00390625, 0.0625, 0.5, 3, 100}; /* exact in binary */
	for (size_t i = 0; i < sizeof(obs) / sizeof(obs[0]); i++)
		mx_observe(h, MX_L("/x"), obs[i]);
	mx_observe(h, MX_L("/x"), NAN); /* ignored */
	char *s = render(r);
	char want[2048];
	/* _sum and _count carry the series' labels too. */
	snprintf(want, sizeof(want),
		 "# HELP t_seconds Time.\n"
		 "# TYPE t_seconds histogram\n"
		 "t_seconds_bucket{route=\"/x\",le=\"0.005\"} 2\n"
		 "t_seconds_bucket{route=\"/x\",le=\"0.1\"} 3\n"
		 "t_seconds_bucket{route=\"/x\",le=\"1\"} 4\n"
		 "t_seconds_bucket{route=\"/x\",le=\"2.5\"} 4\n"
		 "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 6\n"
		 "t_seconds_sum 103.556\n"
		 "t_seconds_count 6\n" TRAILER,
		 0);
	/* _sum and _count carry the series' labels too. */
	char *fixed = strstr(want, "t_seconds_sum");
	assert_non_null(fixed);
	snprintf(want, sizeof(want),
		 "# HELP t_seconds Time.\n"
		 "# TYPE t_seconds histogram\n"
		 "t_seconds_bucket{route=\"/x\",le=\"0.005\"} 2\n"
		 "t_seconds_bucket{route=\"/x\",le=\"0.1\"} 3\n"
		 "t_seconds_bucket{route=\"/x\",le=\"1\"} 4\n"
		 "t_seconds_bucket{route=\"/x\",le=\"2.5\"} 4\n"
		 "t_seconds_bucket{route=\"/x\",le=\"+Inf\"} 6\n"
		 "t_seconds_sum{route=\"/x\"} 103.5703125\n"
		 "t_seconds_count{route=\"/x\"} 6\n" TRAILER,
		 0);
	assert_string_equal(s, want);
	free(s);
	assert_true(mx_value(h, MX_L("/x")) == 6);
	mx_registry_destroy(r);
}

static void test_help_and_label_values_are_escaped(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	struct mx_metric *c = mx_counter(r, "t_x", "Line one\nback\\slash \"quoted\".", "v");
	mx_add(c, MX_L("a\"b\\c\nd"), 1);
	char *s = render(r);
	assert_non_null(strstr(s, "# HELP t_x Line one\\nback\\\\slash \"quoted\".\n"));
	assert_non_null(strstr(s, "t_x{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
	free(s);
	mx_registry_destroy(r);
}

static void test_bad_names_labels_and_bounds_are_refused(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	static const double ok[] = {1, 2}, unsorted[] = {2, 1}, dup[] = {1, 1};
	static const double inf[] = {1, INFINITY};
	assert_null(mx_counter(r, "", "h", NULL));
	assert_null(mx_counter(r, "9lives", "h", NULL));
	assert_null(mx_counter(r, "has-dash", "h", NULL));
	assert_null(mx_counter(r, "t_a", "h", "bad-label"));
	assert_null(mx_counter(r, "t_b", "h", "__reserved"));
	assert_null(mx_counter(r, "t_c", "h", "a,a"));
	assert_null(mx_counter(r, "t_d", "h", "a,b,c,d"));
	assert_null(mx_counter(r, "t_e", "h", "a,"));
	assert_null(mx_histogram(r, "t_f", "h", "le", ok, 2));
	assert_null(mx_histogram(r, "t_g", "h", NULL, unsorted, 2));
	assert_null(mx_histogram(r, "t_h", "h", NULL, dup, 2));
	assert_null(mx_histogram(r, "t_i", "h", NULL, inf, 2));
	assert_null(mx_histogram(r, "t_j", "h", NULL, ok, 0));
	assert_non_null(mx_counter(r, "ns:t_ok", "h", "a,b,c"));
	assert_null(mx_gauge(r, "ns:t_ok", "h", NULL)); /* registered twice */
	/* NULL handles and missing label values do nothing (and crash nothing). */
	mx_add(NULL, NULL, 1);
	mx_set(NULL, MX_L("x"), 1);
	mx_observe(NULL, NULL, 1);
	mx_clear(NULL);
	struct mx_metric *l = mx_counter(r, "t_l", "h", "reason");
	mx_add(l, NULL, 1);
	const char *const nulls[] = {NULL};
	mx_add(l, nulls, 1);
	char *s = render(r);
	assert_non_null(strstr(s, "meter_metrics_series_dropped_total 2\n"));
	free(s);
	mx_registry_destroy(r);
	mx_registry_destroy(NULL);
}

static void test_series_per_family_are_capped(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	struct mx_metric *c = mx_counter(r, "t_many", "h", "id");
	for (int i = 0; i < MX_MAX_SERIES + 10; i++) {
		char v[16];
		snprintf(v, sizeof(v), "%d", i);
		mx_add(c, MX_L(v), 1);
	}
	char *s = render(r);
	assert_non_null(strstr(s, "t_many{id=\"511\"} 1\n"));
	assert_null(strstr(s, "t_many{id=\"512\"}"));
	assert_non_null(strstr(s, "meter_metrics_series_dropped_total 10\n"));
	free(s);
	mx_registry_destroy(r);
}

static void test_values_render_in_shortest_exact_form(void **state)
{
	(void)state;
	static const struct {
		double v;
		const char *text;
	} c[] = {{0, "0"},          {1, "1"},         {0.1, "0.1"},     {2.5, "2.5"},
		 {1e-9, "1e-09"},   {123456789, "123456789"}, {1e20, "1e+20"},
		 {-3, "-3"},        {INFINITY, "+Inf"}, {-INFINITY, "-Inf"}, {NAN, "NaN"}};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct mx_registry *r = mx_registry_new();
		struct mx_metric *g = mx_gauge(r, "t_v", "h", NULL);
		mx_set(g, NULL, c[i].v);
		char *s = render(r);
		char want[64];
		snprintf(want, sizeof(want), "\nt_v %s\n", c[i].text);
		if (!strstr(s, want)) {
			print_error("value %zu: want '%s' in:\n%s", i, c[i].text, s);
			fail();
		}
		free(s);
		mx_registry_destroy(r);
	}
}

struct adder {
	struct mx_metric *c, *h;
};

static void *add_many(void *arg)
{
	struct adder *a = arg;
	for (int i = 0; i < 50000; i++) {
		mx_add(a->c, MX_L(i % 2 ? "odd" : "even"), 1);
		mx_observe(a->h, NULL, 1);
	}
	return NULL;
}

static void test_concurrent_updates_are_not_lost(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	static const double b[] = {1};
	struct adder a = {mx_counter(r, "t_n", "h", "k"), mx_histogram(r, "t_h", "h", NULL, b, 1)};
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, add_many, &a), 0);
	for (int i = 0; i < 20; i++)
		free(mx_render(r, NULL)); /* scrapes while the others write */
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(mx_value(a.c, MX_L("odd")) == 100000);
	assert_true(mx_value(a.c, MX_L("even")) == 100000);
	assert_true(mx_value(a.h, NULL) == 200000);
	mx_registry_destroy(r);
}

static void test_parse_addr_forms(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		int ok, family, port;
	} c[] = {
		{"127.0.0.1:8080", 1, AF_INET, 8080}, {":9464", 1, AF_INET, 9464},
		{"*:0", 1, AF_INET, 0},               {"[::1]:8080", 1, AF_INET6, 8080},
		{"localhost:1", 1, 0, 1},             {"127.0.0.1", 0, 0, 0},
		{"127.0.0.1:", 0, 0, 0},              {"127.0.0.1:65536", 0, 0, 0},
		{"127.0.0.1:-1", 0, 0, 0},            {"127.0.0.1:80x", 0, 0, 0},
		{"::1:8080", 0, 0, 0},                {"no-such-host.invalid:80", 0, 0, 0},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct sockaddr_storage ss;
		unsigned len;
		char err[256] = "";
		int rc = httpd_parse_addr(c[i].addr, &ss, &len, err, sizeof(err));
		if ((rc == 0) != c[i].ok) {
			print_error("%s: rc %d (%s)\n", c[i].addr, rc, err);
			fail();
		}
		if (!c[i].ok) {
			assert_true(err[0] != '\0');
			continue;
		}
		if (c[i].family)
			assert_int_equal(ss.ss_family, c[i].family);
		int port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
						   : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		assert_int_equal(port, c[i].port);
	}
}

/* ---- the server ------------------------------------------------------------ */

static int ready_flag = 1;
static int app_calls;
static char app_path[256], app_query[256];

static int ready(void *opaque, char *why, size_t n)
{
	(void)opaque;
	if (__atomic_load_n(&ready_flag, __ATOMIC_SEQ_CST))
		return 0;
	snprintf(why, n, "database unreachable: test");
	return -1;
}

static void app(void *opaque, const struct httpd_request *req, struct httpd_response *resp)
{
	(void)opaque;
	__atomic_add_fetch(&app_calls, 1, __ATOMIC_SEQ_CST);
	snprintf(app_path, sizeof(app_path), "%s", req->path);
	snprintf(app_query, sizeof(app_query), "%s", req->query);
	snprintf(resp->route, sizeof(resp->route), "/app");
	if (strcmp(req->path, "/problem") == 0) {
		httpd_problem(resp, 404, "no \"%s\" here", "x");
		return;
	}
	const char *h = httpd_header(req, "X-Test");
	char body[300];
	snprintf(body, sizeof(body), "{\"x\":\"%s\"}", h ? h : "");
	httpd_json(resp, 200, body, strlen(body));
}

/* Send a raw request, read the whole answer; status code, body in out. */
static int http_raw(int port, const char *request, size_t len, char *out, size_t out_size)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	struct sockaddr_in sin;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	size_t sent = 0;
	while (sent < len) {
		ssize_t w = send(fd, request + sent, len - sent, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the server may answer and close before reading it all */
		sent += (size_t)w;
	}
	shutdown(fd, SHUT_WR);
	static char buf[1 << 16];
	size_t got = 0;
	ssize_t n;
	while (got + 1 < sizeof(buf) && (n = recv(fd, buf + got, sizeof(buf) - 1 - got, 0)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(fd);
	int status = 0;
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		status = -1;
	const char *body = strstr(buf, "\r\n\r\n");
	snprintf(out, out_size, "%s", body ? body + 4 : "");
	/* Keep the headers reachable for checks on them. */
	const char *hdr_end = body ? body : buf + got;
	size_t hl = (size_t)(hdr_end - buf);
	if (out_size > 0 && hl + 1 < out_size && strlen(out) + hl + 2 < out_size) {
		memmove(out + hl + 1, out, strlen(out) + 1);
		memcpy(out, buf, hl);
		out[hl] = '\n';
	}
	return status;
}

static int get(int port, const char *target, const char *extra_headers, char *out, size_t n)
{
	char req[16384];
	int len = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n",
			   target, extra_headers ? extra_headers : "");
	assert_true(len > 0 && (size_t)len < sizeof(req));
	return http_raw(port, req, (size_t)len, out, n);
}

static void test_server_endpoints_and_bounds(void **state)
{
	(void)state;
	struct mx_registry *r = mx_registry_new();
	struct mx_metric *c = mx_counter(r, "t_up_total", "h", NULL);
	mx_add(c, NULL, 1);
	struct httpd_config cfg = {.addr = "127.0.0.1:0", .metrics = r, .ready = ready,
				   .app = app, .threads = 2};
	char err[256];
	struct httpd *h = httpd_start(&cfg, err, sizeof(err));
	assert_non_null(h);
	const char *bound = httpd_bound(h);
	assert_int_equal(strncmp(bound, "127.0.0.1:", 10), 0);
	int port = (int)strtol(bound + 10, NULL, 10);
	assert_true(port > 0);
	static char out[1 << 16];

	assert_int_equal(get(port, "/livez", NULL, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "{\"status\":\"alive\"}"));
	assert_int_equal(get(port, "/readyz", NULL, out, sizeof(out)), 200);
	__atomic_store_n(&ready_flag, 0, __ATOMIC_SEQ_CST);
	assert_int_equal(get(port, "/readyz", NULL, out, sizeof(out)), 503);
	assert_non_null(strstr(out, "\"reason\":\"database unreachable: test\""));
	__atomic_store_n(&ready_flag, 1, __ATOMIC_SEQ_CST);
	assert_int_equal(get(port, "/readyz", NULL, out, sizeof(out)), 200);

	assert_int_equal(get(port, "/metrics", NULL, out, sizeof(out)), 200);
	assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4; charset=utf-8"));
	assert_non_null(strstr(out, "\nt_up_total 1\n"));
	/* The requests above are counted by route and code. */
	assert_non_null(strstr(out, "meter_http_requests_total{route=\"/readyz\",code=\"503\"} 1\n"));

	/* The application gets the raw path and query, and headers. */
	assert_int_equal(get(port, "/v1/x%2Fy?a=1&b=%20", "X-Test: hi\r\n", out, sizeof(out)), 200);
	assert_string_equal(app_path, "/v1/x%2Fy");
	assert_string_equal(app_query, "a=1&b=%20");
	assert_non_null(strstr(out, "{\"x\":\"hi\"}"));
	assert_int_equal(get(port, "/problem", NULL, out, sizeof(out)), 404);
	assert_non_null(strstr(out, "Content-Type: application/problem+json"));
	assert_non_null(strstr(out, "\"detail\":\"no \\\"x\\\" here\""));
	assert_non_null(strstr(out, "\"instance\":\"/problem\""));
	int calls = app_calls;

	/* Bounds, answered before the application sees anything. */
	char req[20000];
	int len = snprintf(req, sizeof(req), "POST /v1/x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n"
					    "Connection: close\r\n\r\nhi");
	assert_int_equal(http_raw(port, req, (size_t)len, out, sizeof(out)), 405);
	assert_non_null(strstr(out, "Allow: GET, HEAD"));
	char target[HTTPD_MAX_URI + 100];
	memset(target, 'a', sizeof(target));
	target[0] = '/';
	target[HTTPD_MAX_URI + 1] = '\0';
	assert_int_equal(get(port, target, NULL, out, sizeof(out)), 414);
	target[HTTPD_MAX_URI] = '\0'; /* exactly the limit: passes */
	assert_int_equal(get(port, target, NULL, out, sizeof(out)), 200);
	calls++;
	char many[HTTPD_MAX_HEADERS * 12 + 10];
	size_t o = 0;
	for (int i = 0; i < HTTPD_MAX_HEADERS; i++)
		o += (size_t)snprintf(many + o, sizeof(many) - o, "X-%d: v\r\n", i);
	assert_int_equal(get(port, "/v1/x", many, out, sizeof(out)), 431);
	char big[HTTPD_MAX_HEADER_BYTES + 64];
	memcpy(big, "X-Big: ", 7);
	memset(big + 7, 'b', HTTPD_MAX_HEADER_BYTES);
	memcpy(big + 7 + HTTPD_MAX_HEADER_BYTES, "\r\n", 3);
	assert_int_equal(get(port, "/v1/x", big, out, sizeof(out)), 431);
	len = snprintf(req, sizeof(req), "GET /v1/x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
					 "Connection: close\r\n\r\nhello");
	assert_int_equal(http_raw(port, req, (size_t)len, out, sizeof(out)), 400);
	assert_non_null(strstr(out, "carries no body"));
	assert_int_equal(app_calls, calls);
	/* Garbage is refused by libmicrohttpd itself. */
	static const char junk[] = "\x01\x02 nonsense\r\n\r\n";
	assert_true(http_raw(port, junk, sizeof(junk) - 1, out, sizeof(out)) != 200);
	assert_int_equal(get(port, "/livez", NULL, out, sizeof(out)), 200);

	/* A second server on the same port cannot start, and says why. */
	char addr[64];
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	struct httpd_config cfg2 = {.addr = addr};
	assert_null(httpd_start(&cfg2, err, sizeof(err)));
	assert_non_null(strstr(err, addr));
	httpd_destroy(h);
	httpd_destroy(NULL);
	mx_registry_destroy(r);
}

static void test_server_without_metrics_or_app(void **state)
{
	(void)state;
	struct httpd_config cfg = {.addr = "127.0.0.1:0"};
	char err[256];
	struct httpd *h = httpd_start(&cfg, err, sizeof(err));
	assert_non_null(h);
	int port = (int)strtol(httpd_bound(h) + 10, NULL, 10);
	static char out[4096];
	assert_int_equal(get(port, "/metrics", NULL, out, sizeof(out)), 404);
	assert_int_equal(get(port, "/readyz", NULL, out, sizeof(out)), 200);
	assert_int_equal(get(port, "/v1/plans", NULL, out, sizeof(out)), 404);
	httpd_destroy(h);
	struct httpd_config bad = {.addr = "nonsense"};
	assert_null(httpd_start(&bad, err, sizeof(err)));
	assert_non_null(strstr(err, "host:port"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters_and_gauges_render_exactly),
		cmocka_unit_test(test_histogram_buckets_are_cumulative_and_end_in_inf),
		cmocka_unit_test(test_help_and_label_values_are_escaped),
		cmocka_unit_test(test_bad_names_labels_and_bounds_are_refused),
		cmocka_unit_test(test_series_per_family_are_capped),
		cmocka_unit_test(test_values_render_in_shortest_exact_form),
		cmocka_unit_test(test_concurrent_updates_are_not_lost),
		cmocka_unit_test(test_parse_addr_forms),
		cmocka_unit_test(test_server_endpoints_and_bounds),
		cmocka_unit_test(test_server_without_metrics_or_app),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
