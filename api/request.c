/* request.c - routes and parameters of the usage API (see api.h).
 *
 * Pure functions of their input: no allocation, no I/O, every buffer
 * bounded. The path is split on '/' before percent-decoding, so an encoded
 * slash (%2F) stays inside its segment (and then fails the id rules).
 * Query strings are application/x-www-form-urlencoded: pairs split on '&',
 * name and value percent-decoded with '+' as a space. Unknown parameters,
 * repeated parameters, empty names and bad escapes are refused (400) rather
 * than ignored: a typo such as ?perid=day must not silently answer
 * something else.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "num.h"

#define MAX_SEGMENTS 6
#define MAX_PARAM 128 /* longest decoded parameter name or value */

static void fail(char *detail, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(char *detail, size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, n, fmt, ap);
	va_end(ap);
}

/* Input made safe to quote in a message: printable ASCII, no quotes or
 * backslashes, at most 40 characters. */
static void echo(const char *s, size_t len, char *out, size_t out_size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 4 < out_size; i++) {
		if (i == 40) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		unsigned char c = (unsigned char)s[i];
		out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
	}
	out[o] = '\0';
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..len) into out (NUL-terminated). 0; -1 a bad escape
 * or an encoded NUL; -2 longer than out_size - 1 once decoded. */
static int pct_decode(const char *s, size_t len, int plus_is_space, char *out, size_t out_size)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (c == '%') {
			if (i + 2 >= len)
				return -1;
			int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
			if (h < 0 || l < 0)
				return -1;
			c = (char)(h * 16 + l);
			if (c == '\0')
				return -1;
			i += 2;
		} else if (c == '+' && plus_is_space) {
			c = ' ';
		} else if (c == '\0') {
			return -1;
		}
		if (o + 1 >= out_size)
			return -2;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

int api_valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > API_ID_MAX)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._~:@+=-", *p)))
			return 0;
	return 1;
}

int api_check_date(const char *s, int with_day)
{
	return num_check_date(s, with_day, 1900);
}

/* ---- path ------------------------------------------------------------------ */

struct seg {
	const char *s;
	size_t len;
};

static int seg_is(const struct seg *g, const char *lit)
{
	return g->len == strlen(lit) && memcmp(g->s, lit, g->len) == 0;
}

/* Match the path to a route; fills out->route, template, tenant. 0, or
 * 404/400 with detail. */
static int parse_path(const char *path, struct api_req *out, char *detail, size_t dn)
{
	struct seg segs[MAX_SEGMENTS];
	int n = 0;
	if (path[0] != '/') {
		fail(detail, dn, "the path must start with '/'");
		return 400;
	}
	const char *p = path + 1;
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (n == MAX_SEGMENTS) {
			n = -1;
			break;
		}
		segs[n].s = p;
		segs[n].len = len;
		n++;
		if (!slash)
			break;
		p = slash + 1;
	}
	if (n >= 2 && seg_is(&segs[0], "v1") && seg_is(&segs[1], "plans") && n == 2) {
		out->route = API_R_PLANS;
		out->template = "/v1/plans";
		return 0;
	}
	if (n >= 4 && n <= 5 && seg_is(&segs[0], "v1") && seg_is(&segs[1], "tenants") &&
	    seg_is(&segs[3], "usage")) {
		if (n == 4) {
			out->route = API_R_USAGE;
			out->template = "/v1/tenants/{id}/usage";
		} else if (seg_is(&segs[4], "history")) {
			out->route = API_R_HISTORY;
			out->template = "/v1/tenants/{id}/usage/history";
		} else if (seg_is(&segs[4], "breakdown")) {
			out->route = API_R_BREAKDOWN;
			out->template = "/v1/tenants/{id}/usage/breakdown";
		}
	}
	if (out->route == API_R_NONE) {
		fail(detail, dn,
		     "no such endpoint (GET /v1/tenants/{id}/usage, /v1/tenants/{id}/usage/history, "
		     "/v1/tenants/{id}/usage/breakdown, /v1/plans)");
		return 404;
	}
	char shown[64];
	int rc = pct_decode(segs[2].s, segs[2].len, 0, out->tenant, sizeof(out->tenant));
	if (rc != 0 || !api_valid_id(out->tenant)) {
		echo(segs[2].s, segs[2].len, shown, sizeof(shown));
		out->tenant[0] = '\0';
		fail(detail, dn,
		     "'%s' is not a tenant id (1 to %d characters of A-Z a-z 0-9 . _ ~ : @ + = -)",
		     shown, API_ID_MAX);
		return 400;
	}
	return 0;
}

/* ---- query ----------------------------------------------------------------- */

struct param {
	const char *name;
	char value[MAX_PARAM + 1];
	int given;
};

/* Read the query into the route's parameters (params[0..np) by name). 0, or
 * 400 with detail. */
static int parse_query(const char *query, struct param *params, int np, const char *allowed,
		       char *detail, size_t dn)
{
	const char *p = query;
	while (*p) {
		const char *amp = strchr(p, '&');
		size_t len = amp ? (size_t)(amp - p) : strlen(p);
		const char *next = amp ? amp + 1 : p + len;
		if (len == 0) {
			p = next;
			continue; /* "a=1&&b=2", a trailing '&' */
		}
		const char *eq = memchr(p, '=', len);
		size_t nlen = eq ? (size_t)(eq - p) : len;
		char name[MAX_PARAM + 1], value[MAX_PARAM + 1], shown[64];
		int rc = pct_decode(p, nlen, 1, name, sizeof(name));
		if (rc != 0 || name[0] == '\0') {
			echo(p, nlen, shown, sizeof(shown));
			fail(detail, dn,
			     rc == -1 ? "parameter name '%s' has a bad percent-encoding"
			     : rc == -2 ? "parameter name '%s' is too long"
					: "a parameter has no name%s",
			     shown);
			return 400;
		}
		struct param *hit = NULL;
		for (int i = 0; i < np; i++)
			if (strcmp(params[i].name, name) == 0)
				hit = &params[i];
		if (!hit) {
			echo(name, strlen(name), shown, sizeof(shown));
			if (np == 0)
				fail(detail, dn, "unknown parameter '%s' (this endpoint takes none)",
				     shown);
			else
				fail(detail, dn, "unknown parameter '%s' (this endpoint takes %s)",
				     shown, allowed);
			return 400;
		}
		if (hit->given) {
			fail(detail, dn, "parameter '%s' is given more than once", hit->name);
			return 400;
		}
		const char *v = eq ? eq + 1 : p + len;
		size_t vlen = eq ? len - nlen - 1 : 0;
		rc = pct_decode(v, vlen, 1, value, sizeof(value));
		if (rc != 0) {
			fail(detail, dn,
			     rc == -1 ? "parameter '%s' has a bad percent-encoding"
				      : "parameter '%s' is too long",
			     hit->name);
			return 400;
		}
		memcpy(hit->value, value, strlen(value) + 1);
		hit->given = 1;
		p = next;
	}
	return 0;
}

static int usage_params(const char *query, struct api_req *out, char *detail, size_t dn)
{
	struct param ps[4] = {{"period", "", 0}, {"date", "", 0}, {"user", "", 0}, {"key", "", 0}};
	int rc = parse_query(query, ps, 4, "period, date, user, key", detail, dn);
	if (rc)
		return rc;
	const char *period = ps[0].value, *date = ps[1].value;
	char shown[64];
	if (ps[0].given && strcmp(period, "day") != 0 && strcmp(period, "month") != 0) {
		echo(period, strlen(period), shown, sizeof(shown));
		fail(detail, dn, "period '%s' is not day or month", shown);
		return 400;
	}
	/* Without a period, the date's form says which one. */
	int is_day = ps[0].given ? strcmp(period, "day") == 0 : (ps[1].given && strlen(date) == 10);
	snprintf(out->period, sizeof(out->period), "%s", is_day ? "day" : "month");
	if (ps[1].given) {
		if (api_check_date(date, is_day) != 0) {
			echo(date, strlen(date), shown, sizeof(shown));
			fail(detail, dn, "date '%s' is not a %s", shown,
			     is_day ? "day YYYY-MM-DD" : "month YYYY-MM");
			return 400;
		}
		snprintf(out->date, sizeof(out->date), "%s%s", date, is_day ? "" : "-01");
	}
	if (ps[2].given && ps[3].given) {
		fail(detail, dn, "give user or key, not both");
		return 400;
	}
	snprintf(out->subject_type, sizeof(out->subject_type), "tenant");
	for (int i = 2; i < 4; i++) {
		if (!ps[i].given)
			continue;
		if (!api_valid_id(ps[i].value)) {
			echo(ps[i].value, strlen(ps[i].value), shown, sizeof(shown));
			fail(detail, dn, "%s '%s' is not an id (1 to %d characters of A-Z a-z 0-9 "
			     ". _ ~ : @ + = -)", ps[i].name, shown, API_ID_MAX);
			return 400;
		}
		snprintf(out->subject_type, sizeof(out->subject_type), "%s", ps[i].name);
		memcpy(out->subject_id, ps[i].value, strlen(ps[i].value) + 1);
	}
	return 0;
}

static int history_params(const char *query, struct api_req *out, char *detail, size_t dn)
{
	struct param ps[1] = {{"days", "", 0}};
	int rc = parse_query(query, ps, 1, "days", detail, dn);
	if (rc)
		return rc;
	out->days = API_HISTORY_DEFAULT_DAYS;
	if (ps[0].given) {
		int64_t d;
		if (num_parse_i64(ps[0].value, 1, API_HISTORY_MAX_DAYS, &d) != 0) {
			char shown[64];
			echo(ps[0].value, strlen(ps[0].value), shown, sizeof(shown));
			fail(detail, dn, "days '%s' is not a whole number from 1 to %d", shown,
			     API_HISTORY_MAX_DAYS);
			return 400;
		}
		out->days = (int)d;
	}
	return 0;
}

static int breakdown_params(const char *query, struct api_req *out, char *detail, size_t dn)
{
	struct param ps[1] = {{"month", "", 0}};
	int rc = parse_query(query, ps, 1, "month", detail, dn);
	if (rc)
		return rc;
	if (ps[0].given) {
		if (api_check_date(ps[0].value, 0) != 0) {
			char shown[64];
			echo(ps[0].value, strlen(ps[0].value), shown, sizeof(shown));
			fail(detail, dn, "month '%s' is not a month YYYY-MM", shown);
			return 400;
		}
		snprintf(out->date, sizeof(out->date), "%s-01", ps[0].value);
	}
	snprintf(out->period, sizeof(out->period), "month");
	return 0;
}

int api_parse(const char *method, const char *path, const char *query, struct api_req *out,
	      char *detail, size_t detail_size)
{
	memset(out, 0, sizeof(*out));
	out->template = "other";
	if (detail_size)
		detail[0] = '\0';
	if (!query)
		query = "";
	int rc = parse_path(path, out, detail, detail_size);
	if (rc)
		return rc;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		fail(detail, detail_size, "only GET and HEAD are allowed here");
		return 405;
	}
	switch (out->route) {
	case API_R_USAGE:
		return usage_params(query, out, detail, detail_size);
	case API_R_HISTORY:
		return history_params(query, out, detail, detail_size);
	case API_R_BREAKDOWN:
		return breakdown_params(query, out, detail, detail_size);
	case API_R_PLANS:
		return parse_query(query, NULL, 0, "", detail, detail_size);
	case API_R_NONE:
		break;
	}
	return 404;
}
