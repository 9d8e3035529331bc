/* test_api.c - unit tests of meter-api's request side: routes, query
 * parameters and their validation (table-driven), dates, and bearer tokens
 * (format, hash, Authorization header parsing). No database, no server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"

struct route_case {
	const char *method, *path, *query;
	int status;            /* what api_parse returns */
	enum api_route route;  /* route it matched (also when status is 400) */
	const char *tenant;    /* expected tenant ("" when none) */
	const char *period;    /* usage, breakdown; NULL: not checked */
	const char *date;      /* NULL: not checked */
	const char *subject;   /* "type/id" for usage; NULL: not checked */
	int days;              /* history; 0: not checked */
	const char *detail;    /* a substring of the detail; NULL: not checked */
};

static const struct route_case cases[] = {
	/* routes */
	{"GET", "/v1/plans", "", 0, API_R_PLANS, "", NULL, NULL, NULL, 0, NULL},
	{"HEAD", "/v1/plans", "", 0, API_R_PLANS, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/plans/", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, "no such endpoint"},
	{"GET", "/v1/plans", "x=1", 400, API_R_PLANS, "", NULL, NULL, NULL, 0, "takes none"},
	{"GET", "/v1", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "", "", 400, API_R_NONE, "", NULL, NULL, NULL, 0, "start with '/'"},
	{"GET", "/v2/plans", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/other", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/history/x", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0,
	 NULL},
	{"GET", "/v1//acme/usage", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"GET", "/a/b/c/d/e/f/g/h", "", 404, API_R_NONE, "", NULL, NULL, NULL, 0, NULL},
	{"POST", "/v1/plans", "", 405, API_R_PLANS, "", NULL, NULL, NULL, 0, "GET and HEAD"},
	{"DELETE", "/v1/tenants/acme/usage", "", 405, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 NULL},
	/* usage: defaults and forms */
	{"GET", "/v1/tenants/acme/usage", "", 0, API_R_USAGE, "acme", "month", "", "tenant/", 0,
	 NULL},
	{"GET", "/v1/tenants/acme/usage", "period=day", 0, API_R_USAGE, "acme", "day", "",
	 "tenant/", 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "period=day&date=2024-02-29", 0, API_R_USAGE, "acme",
	 "day", "2024-02-29", NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "period=month&date=2026-11", 0, API_R_USAGE, "acme",
	 "month", "2026-11-01", NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "date=2026-11-23", 0, API_R_USAGE, "acme", "day",
	 "2026-11-23", NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "date=2026-11", 0, API_R_USAGE, "acme", "month",
	 "2026-11-01", NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "user=u-1", 0, API_R_USAGE, "acme", "month", "",
	 "user/u-1", 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "key=k%3A9&period=day", 0, API_R_USAGE, "acme", "day",
	 "", "key/k:9", 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "&&period=day&", 0, API_R_USAGE, "acme", "day", "", NULL,
	 0, NULL},
	{"GET", "/v1/tenants/a%63me/usage", "", 0, API_R_USAGE, "acme", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/t.x~y:z@w+q=r-s_1/usage", "", 0, API_R_USAGE, "t.x~y:z@w+q=r-s_1",
	 NULL, NULL, NULL, 0, NULL},
	/* usage: refusals */
	{"GET", "/v1/tenants/acme/usage", "period=week", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, "not day or month"},
	{"GET", "/v1/tenants/acme/usage", "period=", 400, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 "not day or month"},
	{"GET", "/v1/tenants/acme/usage", "period=day&date=2026-11", 400, API_R_USAGE, "acme",
	 NULL, NULL, NULL, 0, "not a day YYYY-MM-DD"},
	{"GET", "/v1/tenants/acme/usage", "period=month&date=2026-11-01", 400, API_R_USAGE, "acme",
	 NULL, NULL, NULL, 0, "not a month YYYY-MM"},
	{"GET", "/v1/tenants/acme/usage", "date=2025-02-29", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, "2025-02-29"},
	{"GET", "/v1/tenants/acme/usage", "date=2026-13", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "date=yesterday", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "date=0000-01", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage", "perid=day", 400, API_R_USAGE, "acme", NULL, NULL, NULL,
	 0, "unknown parameter 'perid'"},
	{"GET", "/v1/tenants/acme/usage", "period=day&period=month", 400, API_R_USAGE, "acme", NULL,
	 NULL, NULL, 0, "more than once"},
	{"GET", "/v1/tenants/acme/usage", "user=u&key=k", 400, API_R_USAGE, "acme", NULL, NULL,
	 NULL, 0, "not both"},
	{"GET", "/v1/tenants/acme/usage", "user=a%2Fb", 400, API_R_USAGE, "acme", NULL, NULL, NULL,
	 0, "not an id"},
	{"GET", "/v1/tenants/acme/usage", "user=", 400, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 "not an id"},
	{"GET", "/v1/tenants/acme/usage", "date=%zz", 400, API_R_USAGE, "acme", NULL, NULL, NULL,
	 0, "percent-encoding"},
	{"GET", "/v1/tenants/acme/usage", "date=%2", 400, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 "percent-encoding"},
	{"GET", "/v1/tenants/acme/usage", "date=%00", 400, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 "percent-encoding"},
	{"GET", "/v1/tenants/acme/usage", "=day", 400, API_R_USAGE, "acme", NULL, NULL, NULL, 0,
	 "no name"},
	{"GET", "/v1/tenants/a%2Fb/usage", "", 400, API_R_USAGE, "", NULL, NULL, NULL, 0,
	 "not a tenant id"},
	{"GET", "/v1/tenants/a%zzb/usage", "", 400, API_R_USAGE, "", NULL, NULL, NULL, 0,
	 "not a tenant id"},
	{"GET", "/v1/tenants/%C3%A9/usage", "", 400, API_R_USAGE, "", NULL, NULL, NULL, 0,
	 "'%C3%A9' is not"},
	{"GET",
	 "/v1/tenants/"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/usage",
	 "", 400, API_R_USAGE, "", NULL, NULL, NULL, 0, "..."},
	/* history */
	{"GET", "/v1/tenants/acme/usage/history", "", 0, API_R_HISTORY, "acme", NULL, NULL, NULL,
	 30, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days=1", 0, API_R_HISTORY, "acme", NULL, NULL,
	 NULL, 1, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days=90", 0, API_R_HISTORY, "acme", NULL, NULL,
	 NULL, 90, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days=0", 400, API_R_HISTORY, "acme", NULL, NULL,
	 NULL, 0, "from 1 to 90"},
	{"GET", "/v1/tenants/acme/usage/history", "days=91", 400, API_R_HISTORY, "acme", NULL,
	 NULL, NULL, 0, "from 1 to 90"},
	{"GET", "/v1/tenants/acme/usage/history", "days=abc", 400, API_R_HISTORY, "acme", NULL,
	 NULL, NULL, 0, "'abc'"},
	{"GET", "/v1/tenants/acme/usage/history", "days=-5", 400, API_R_HISTORY, "acme", NULL,
	 NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days=+5", 400, API_R_HISTORY, "acme", NULL, NULL,
	 NULL, 0, NULL}, /* '+' is a space in a query string: " 5" */
	{"GET", "/v1/tenants/acme/usage/history", "days=5.0", 400, API_R_HISTORY, "acme", NULL,
	 NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days=99999999999999999999", 400, API_R_HISTORY,
	 "acme", NULL, NULL, NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "days", 400, API_R_HISTORY, "acme", NULL, NULL,
	 NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/history", "period=day", 400, API_R_HISTORY, "acme", NULL,
	 NULL, NULL, 0, "takes days"},
	/* breakdown */
	{"GET", "/v1/tenants/acme/usage/breakdown", "", 0, API_R_BREAKDOWN, "acme", "month", "",
	 NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/breakdown", "month=2026-02", 0, API_R_BREAKDOWN, "acme",
	 "month", "2026-02-01", NULL, 0, NULL},
	{"GET", "/v1/tenants/acme/usage/breakdown", "month=2026-02-01", 400, API_R_BREAKDOWN,
	 "acme", NULL, NULL, NULL, 0, "not a month"},
	{"GET", "/v1/tenants/acme/usage/breakdown", "day=2026-02-01", 400, API_R_BREAKDOWN, "acme",
	 NULL, NULL, NULL, 0, "takes month"},
};

static void test_routes_and_parameters_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct route_case *c = &cases[i];
		struct api_req q;
		char detail[512];
		int rc = api_parse(c->method, c->path, c->query, &q, detail, sizeof(detail));
		if (rc != c->status || q.route != c->route) {
			print_error("case %zu: %s %s?%s: status %d route %d (want %d, %d): %s\n", i,
				    c->method, c->path, c->query, rc, q.route, c->status, c->route,
				    detail);
			fail();
		}
		assert_string_equal(q.tenant, c->tenant);
		if (c->status == 0) {
			assert_string_equal(detail, "");
			if (c->period)
				assert_string_equal(q.period, c->period);
			if (c->date)
				assert_string_equal(q.date, c->date);
			if (c->subject) {
				char s[300];
				snprintf(s, sizeof(s), "%s/%s", q.subject_type, q.subject_id);
				assert_string_equal(s, c->subject);
			}
			if (c->days)
				assert_int_equal(q.days, c->days);
		} else {
			assert_true(detail[0] != '\0');
			if (c->detail && !strstr(detail, c->detail)) {
				print_error("case %zu: detail '%s' lacks '%s'\n", i, detail,
					    c->detail);
				fail();
			}
		}
		/* A detail is one line of printable ASCII (safe in JSON and logs). */
		for (const char *p = detail; *p; p++)
			assert_true(*p >= 0x20 && *p < 0x7f);
		assert_non_null(q.template);
	}
}

static void test_route_templates_never_contain_the_tenant(void **state)
{
	(void)state;
	struct api_req q;
	char detail[256];
	assert_int_equal(api_parse("GET", "/v1/tenants/secret-co/usage/history", "", &q, detail,
				   sizeof(detail)),
			 0);
	assert_string_equal(q.template, "/v1/tenants/{id}/usage/history");
	assert_int_equal(api_parse("GET", "/nope", "", &q, detail, sizeof(detail)), 404);
	assert_string_equal(q.template, "other");
}

static void test_echoed_input_is_sanitised_and_bounded(void **state)
{
	(void)state;
	struct api_req q;
	char detail[512];
	int rc = api_parse("GET", "/v1/tenants/acme/usage", "period=%22%0A%5C%FFxxxxxxxxxxxxxxxxxxxx"
			   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			   &q, detail, sizeof(detail));
	assert_int_equal(rc, 400);
	assert_null(strchr(detail, '"'));
	assert_null(strchr(detail, '\\'));
	assert_null(strchr(detail, '\n'));
	assert_non_null(strstr(detail, "..."));
	/* A tiny detail buffer truncates instead of overflowing. */
	char small[8];
	rc = api_parse("GET", "/v1/tenants/acme/usage", "bogus=1", &q, small, sizeof(small));
	assert_int_equal(rc, 400);
	assert_true(strlen(small) < sizeof(small));
}

static void test_check_date_calendar(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int with_day, ok;
	} d[] = {
		{"2024-02-29", 1, 1}, {"2023-02-29", 1, 0}, {"2000-02-29", 1, 1},
		{"1900-02-29", 1, 0}, {"2026-04-31", 1, 0}, {"2026-12-31", 1, 1},
		{"2026-00-10", 1, 0}, {"2026-1-01", 1, 0},  {"2026/01/01", 1, 0},
		{"2026-01-01 ", 1, 0}, {"1899-12-31", 1, 0}, {"9999-12-31", 1, 1},
		{"2026-11", 0, 1},    {"2026-13", 0, 0},    {"2026-11-01", 0, 0},
		{"", 0, 0},           {"abcd-ef", 0, 0},
	};
	for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		assert_int_equal(api_check_date(d[i].s, d[i].with_day) == 0, d[i].ok);
}

static void test_token_format_and_uniqueness(void **state)
{
	(void)state;
	char a[API_TOKEN_LEN + 1], b[API_TOKEN_LEN + 1];
	assert_int_equal(api_token_new(a, sizeof(a)), 0);
	assert_int_equal(api_token_new(b, sizeof(b)), 0);
	assert_int_equal(strlen(a), API_TOKEN_LEN);
	assert_int_equal(strncmp(a, "mtk_", 4), 0);
	for (const char *p = a + 4; *p; p++)
		assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
				       *p));
	assert_string_not_equal(a, b);
	char tiny[10];
	assert_int_equal(api_token_new(tiny, sizeof(tiny)), -1);
	/* A token passes the header parser unchanged. */
	char hdr[100], out[API_TOKEN_MAX + 1];
	snprintf(hdr, sizeof(hdr), "Bearer %s", a);
	assert_int_equal(api_bearer(hdr, out, sizeof(out)), 0);
	assert_string_equal(out, a);
}

static void test_token_hash_is_sha256_hex(void **state)
{
	(void)state;
	char h[API_HASH_HEX];
	api_token_hash("abc", h);
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	api_token_hash("", h);
	assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static void test_bearer_header_parsing(void **state)
{
	(void)state;
	static const struct {
		const char *header;
		int rc;
		const char *token;
	} c[] = {
		{NULL, -1, ""},
		{"", -1, ""},
		{"   ", -1, ""},
		{"Bearer mtk_abc", 0, "mtk_abc"},
		{"bearer mtk_abc", 0, "mtk_abc"},
		{"BEARER   mtk_abc  ", 0, "mtk_abc"},
		{"Bearer\tmtk_a.b~c+d/e==", 0, "mtk_a.b~c+d/e=="},
		{"Bearer", -2, ""},
		{"Bearer ", -2, ""},
		{"Bearermtk_abc", -2, ""},
		{"Basic Zm9vOmJhcg==", -2, ""},
		{"Bearer mtk abc", -2, ""},
		{"Bearer mtk_abc,other", -2, ""},
		{"Bearer \"mtk_abc\"", -2, ""},
		{"Bearer ==", -2, ""},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		char out[API_TOKEN_MAX + 1];
		int rc = api_bearer(c[i].header, out, sizeof(out));
		if (rc != c[i].rc) {
			print_error("case %zu '%s': %d (want %d)\n", i,
				    c[i].header ? c[i].header : "(null)", rc, c[i].rc);
			fail();
		}
		assert_string_equal(out, c[i].token);
	}
	/* Longer than API_TOKEN_MAX: refused, not truncated. */
	char big[API_TOKEN_MAX + 20], out[API_TOKEN_MAX + 1];
	memcpy(big, "Bearer ", 7);
	memset(big + 7, 'a', API_TOKEN_MAX + 5);
	big[7 + API_TOKEN_MAX + 5] = '\0';
	assert_int_equal(api_bearer(big, out, sizeof(out)), -2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes_and_parameters_table),
		cmocka_unit_test(test_route_templates_never_contain_the_tenant),
		cmocka_unit_test(test_echoed_input_is_sanitised_and_bounded),
		cmocka_unit_test(test_check_date_calendar),
		cmocka_unit_test(test_token_format_and_uniqueness),
		cmocka_unit_test(test_token_hash_is_sha256_hex),
		cmocka_unit_test(test_bearer_header_parsing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
