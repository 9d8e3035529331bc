/* usage.c - meterctl usage: one subject's usage in one period, with its
 * limits, remaining amounts and percentages. The document comes from the
 * database function meter_usage() (sql/004_usage.sql); --json prints it as
 * is (stable for scripts), otherwise it is rendered as text. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "db.h"
#include "num.h"

static const char *const usage_usage =
	"usage: meterctl usage TENANT [--day YYYY-MM-DD | --month YYYY-MM] [--user U | --key K]"
	" [--json]";

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "-";
}

static long long jint(json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

/* A value of the document for text; cost amounts (strings of pico-USD
 * digits) in USD. */
static void print_value(json_t *v, int cost, char *out, size_t n)
{
	if (json_is_null(v) || !v)
		snprintf(out, n, "unlimited");
	else if (cost && json_is_string(v))
		ctl_format_usd(json_string_value(v), out, n);
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%.2f", json_real_value(v));
	else if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else
		snprintf(out, n, "?");
}

/* The subject's flag when it is blocked now (whatever period is shown): a
 * suspension, or the limit it reached and until when. */
static void print_blocked(json_t *flag)
{
	if (json_is_true(json_object_get(flag, "manual"))) {
		printf("  BLOCKED now: %s (until 'meterctl reactivate %s')\n", jstr(flag, "reason"),
		       jstr(flag, "tenant"));
		return;
	}
	int cost = strcmp(jstr(flag, "metric"), "cost") == 0;
	char used[48], lim[48];
	print_value(json_object_get(flag, "used"), cost, used, sizeof(used));
	print_value(json_object_get(flag, "limit"), cost, lim, sizeof(lim));
	printf("  BLOCKED now: %s%s %s limit of %s reached (used %s) until %s\n",
	       jstr(flag, "metric"), cost ? " (USD)" : "", jstr(flag, "period"), lim, used,
	       jstr(flag, "until"));
}

static void render_text(json_t *doc)
{
	json_t *u = json_object_get(doc, "usage");
	printf("%s  %s %s (%s .. %s, %s; resets %s)  plan %s\n", jstr(doc, "subject"),
	       jstr(doc, "period"), jstr(doc, "period_start"), jstr(doc, "period_start"),
	       jstr(doc, "period_end"), jstr(doc, "timezone"), jstr(doc, "resets_at"),
	       jstr(doc, "plan"));
	printf("  events %lld  requests %lld  tokens %lld (input %lld, cached %lld, output %lld, "
	       "reasoning %lld)  cost $%s\n",
	       jint(u, "events"), jint(u, "requests"), jint(u, "total_tokens"),
	       jint(u, "input_tokens"), jint(u, "cached_input_tokens"), jint(u, "output_tokens"),
	       jint(u, "reasoning_tokens"), jstr(u, "cost_usd"));
	json_t *flag = json_object_get(doc, "flag");
	if (strcmp(jstr(flag, "state"), "blocked") == 0)
		print_blocked(flag);
	json_t *limits = json_object_get(doc, "limits");
	if (json_array_size(limits)) {
		printf("  %-24s %-10s %16s %16s %16s %8s\n", "METRIC", "PERIOD", "USED", "LIMIT",
		       "REMAINING", "%");
		size_t i;
		json_t *l;
		json_array_foreach(limits, i, l)
		{
			char used[48], lim[48], rem[48], pct[24], metric[80];
			int cost = strcmp(jstr(l, "metric"), "cost") == 0;
			snprintf(metric, sizeof(metric), "%s%s", jstr(l, "metric"), cost ? " (USD)" : "");
			print_value(json_object_get(l, "used"), cost, used, sizeof(used));
			print_value(json_object_get(l, "limit"), cost, lim, sizeof(lim));
			print_value(json_object_get(l, "remaining"), cost, rem, sizeof(rem));
			print_value(json_object_get(l, "percent"), 0, pct, sizeof(pct));
			printf("  %-24s %-10s %16s %16s %16s %8s\n", metric, jstr(l, "period"), used,
			       lim, rem,
			       json_is_null(json_object_get(l, "percent")) ? "-" : pct);
		}
	}
	const char *sections[] = {"operations", "models"};
	for (size_t s = 0; s < 2; s++) {
		json_t *m = json_object_get(doc, sections[s]);
		if (!json_object_size(m))
			continue;
		printf("  %-32s %10s %14s %22s\n", s == 0 ? "OPERATION" : "MODEL", "REQUESTS",
		       "TOKENS", "COST USD");
		const char *k;
		json_t *v;
		json_object_foreach(m, k, v)
		{
			printf("  %-32s %10lld %14lld %22s\n", k, jint(v, "requests"),
			       jint(v, "total_tokens"), jstr(v, "cost_usd"));
		}
	}
	json_t *units = json_object_get(doc, "units");
	if (json_object_size(units)) {
		const char *k;
		json_t *v;
		printf("  units:");
		json_object_foreach(units, k, v)
		{
			char q[48];
			print_value(v, 0, q, sizeof(q));
			printf(" %s=%s", k, q);
		}
		printf("\n");
	}
}

int ctl_usage(struct ctl *c, int argc, char **argv)
{
	const char *day = NULL, *month = NULL, *user = NULL, *key = NULL;
	int as_json = 0;
	if (argc < 2 || argv[1][0] == '-') {
		ctl_err("usage needs a tenant id\n%s", usage_usage);
		return CTL_USAGE;
	}
	const char *tenant = argv[1];
	for (int i = 2; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if ((m = ctl_opt(argc, argv, &i, "--day", &day)) ||
		    (m = ctl_opt(argc, argv, &i, "--month", &month)) ||
		    (m = ctl_opt(argc, argv, &i, "--user", &user)) ||
		    (m = ctl_opt(argc, argv, &i, "--key", &key))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], usage_usage);
		return CTL_USAGE;
	}
	if (!ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	if (day && month) {
		ctl_err("give --day or --month, not both");
		return CTL_USAGE;
	}
	if (user && key) {
		ctl_err("give --user or --key, not both");
		return CTL_USAGE;
	}
	if (day && num_check_date(day, 1, 1) != 0) {
		ctl_err("--day '%s' is not a date YYYY-MM-DD", day);
		return CTL_USAGE;
	}
	if (month && num_check_date(month, 0, 1) != 0) {
		ctl_err("--month '%s' is not a month YYYY-MM", month);
		return CTL_USAGE;
	}
	if ((user && !ctl_valid_id(user)) || (key && !ctl_valid_id(key))) {
		ctl_err("'%s' is not a valid id", user ? user : key);
		return CTL_USAGE;
	}
	char date[16] = "";
	if (day)
		snprintf(date, sizeof(date), "%s", day);
	else if (month)
		snprintf(date, sizeof(date), "%s-01", month);
	const char *params[5] = {tenant, user ? "user" : key ? "key" : "tenant",
				 user ? user : key ? key : "", day ? "day" : "month",
				 *date ? date : NULL};
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	PGresult *r = ctl_query(c, "SELECT jsonb_pretty(meter_usage($1, $2, $3, $4, $5::date))", 5, params);
	if (!r)
		return CTL_FAIL;
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		PQclear(r);
		ctl_err("no tenant '%s' (it appears with its first event, or 'meterctl tenant add')",
			tenant);
		return CTL_FAIL;
	}
	const char *text = PQgetvalue(r, 0, 0);
	int rc = CTL_OK;
	if (as_json) {
		puts(text);
	} else {
		json_error_t jerr;
		json_t *doc = json_loads(text, 0, &jerr);
		if (!doc) {
			ctl_err("cannot read the usage document: %s", jerr.text);
			rc = CTL_FAIL;
		} else {
			render_text(doc);
			json_decref(doc);
		}
	}
	PQclear(r);
	return rc;
}
