/* fuzz_http.c - libFuzzer harness for what meter-api and the metrics
 * endpoint read from the network: the route and query-string parser
 * (api_parse), the Authorization header parser (api_bearer), dates, and
 * the escaping of label values in the text exposition.
 *
 * Input: byte 0 picks the method; the rest is "path\nquery\nheader" (any
 * part may be missing; a NUL ends the input, as it would a C string from
 * libmicrohttpd). Checks what api.h promises: a status of 0, 400, 404 or
 * 405 only; on 0, every field valid for its route (ids by the id rules,
 * day|month, a real calendar date, 1..90 days, a subject); a detail that is
 * one line of printable ASCII whenever a request is refused; the same
 * answer twice; a bearer credential of b64token characters that reads back
 * the same; and a /metrics text whose every line is a comment or a sample,
 * whatever bytes a label value holds.
 * Built and run by tests/fuzz/run.sh (sources in fuzz_http.srcs).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "metrics.h"

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

static void check_printable(const char *s, size_t cap)
{
	CHECK(memchr(s, '\0', cap) != NULL);
	for (const char *p = s; *p; p++)
		CHECK(*p >= 0x20 && *p < 0x7f);
}

static int b64token_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("-._~+/=", c));
}

static void check_parse(const char *method, const char *path, const char *query)
{
	struct api_req q, q2;
	char detail[512], detail2[512];
	int rc = api_parse(method, path, query, &q, detail, sizeof(detail));
	CHECK(rc == 0 || rc == 400 || rc == 404 || rc == 405);
	CHECK(q.template != NULL);
	check_printable(detail, sizeof(detail));
	if (q.route == API_R_NONE)
		CHECK(rc == 400 || rc == 404);
	if (rc != 0) {
		CHECK(detail[0] != '\0');
	} else {
		CHECK(detail[0] == '\0');
		CHECK(strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0);
		CHECK(q.route != API_R_NONE);
		if (q.route != API_R_PLANS)
			CHECK(api_valid_id(q.tenant));
		if (q.route == API_R_USAGE || q.route == API_R_BREAKDOWN) {
			int day = strcmp(q.period, "day") == 0;
			CHECK(day || strcmp(q.period, "month") == 0);
			if (q.date[0]) {
				CHECK(api_check_date(q.date, 1) == 0);
				if (!day)
					CHECK(strcmp(q.date + 8, "01") == 0);
			}
		}
		if (q.route == API_R_USAGE) {
			if (strcmp(q.subject_type, "tenant") == 0)
				CHECK(q.subject_id[0] == '\0');
			else
				CHECK((strcmp(q.subject_type, "user") == 0 ||
				       strcmp(q.subject_type, "key") == 0) &&
				      api_valid_id(q.subject_id));
		}
		if (q.route == API_R_HISTORY)
			CHECK(q.days >= 1 && q.days <= API_HISTORY_MAX_DAYS);
	}
	/* Pure: the same input gives the same answer. */
	int rc2 = api_parse(method, path, query, &q2, detail2, sizeof(detail2));
	CHECK(rc2 == rc && q2.route == q.route && strcmp(detail, detail2) == 0);
	CHECK(memcmp(q.tenant, q2.tenant, sizeof(q.tenant)) == 0);
	/* A tiny detail buffer is never overrun. */
	char tiny[4];
	CHECK(api_parse(method, path, query, &q2, tiny, sizeof(tiny)) == rc);
	CHECK(memchr(tiny, '\0', sizeof(tiny)) != NULL);
}

static void check_bearer(const char *header)
{
	char tok[API_TOKEN_MAX + 1];
	int rc = api_bearer(header, tok, sizeof(tok));
	CHECK(rc == 0 || rc == -1 || rc == -2);
	if (rc != 0) {
		CHECK(tok[0] == '\0');
		return;
	}
	size_t n = strlen(tok);
	CHECK(n >= 1 && n <= API_TOKEN_MAX);
	for (size_t i = 0; i < n; i++)
		CHECK(b64token_char(tok[i]));
	char again[API_TOKEN_MAX + 16], tok2[API_TOKEN_MAX + 1];
	snprintf(again, sizeof(again), "Bearer %s", tok);
	CHECK(api_bearer(again, tok2, sizeof(tok2)) == 0 && strcmp(tok, tok2) == 0);
	char h[API_HASH_HEX];
	api_token_hash(tok, h);
	CHECK(strlen(h) == 64 && strspn(h, "0123456789abcdef") == 64);
}

/* Every line of the exposition is "# ..." or starts with a metric name. */
static void check_exposition(const char *value)
{
	struct mx_registry *r = mx_registry_new();
	CHECK(r != NULL);
	struct mx_metric *c = mx_counter(r, "f_total", "Fuzzed label values.", "v");
	static const double b[] = {1};
	struct mx_metric *h = mx_histogram(r, "f_seconds", "h", "v", b, 1);
	mx_add(c, MX_L(value), 1);
	mx_observe(h, MX_L(value), 0.5);
	size_t len = 0;
	char *text = mx_render(r, &len);
	CHECK(text != NULL && strlen(text) == len && len > 0 && text[len - 1] == '\n');
	int samples = 0;
	for (char *line = text; *line;) {
		char *nl = strchr(line, '\n');
		CHECK(nl != NULL);
		CHECK(line[0] == '#' || strncmp(line, "f_", 2) == 0 ||
		      strncmp(line, "meter_", 6) == 0);
		if (line[0] != '#')
			samples++;
		line = nl + 1;
	}
	/* A value over 256 bytes is refused (dropped, counted): only the
	 * registry's own counter then. */
	CHECK(samples == (strlen(value) <= 256 ? 1 + 4 + 1 : 1));
	free(text);
	mx_registry_destroy(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE"};
	if (size == 0)
		return 0;
	const char *method = methods[data[0] % 4];
	char *buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0'; /* libmicrohttpd hands over C strings */
	char *path = buf, *query = "", *header = NULL;
	char *nl = strchr(path, '\n');
	if (nl) {
		*nl = '\0';
		query = nl + 1;
		nl = strchr(query, '\n');
		if (nl) {
			*nl = '\0';
			header = nl + 1;
		}
	}
	check_parse(method, path, query);
	check_bearer(header ? header : path);
	check_exposition(header ? header : query);
	for (int with_day = 0; with_day < 2; with_day++)
		if (api_check_date(path, with_day) == 0)
			CHECK(strlen(path) == (with_day ? 10u : 7u));
	free(buf);
	return 0;
}
