/* limits.c - meterctl plan list|add|set|unset|thresholds and limit
 * set|unset|show: plan defaults and per-tenant overrides. Every change
 * re-evaluates the tenant's crossings at once (a raised limit clears a
 * flag, a lowered one may set one) and publishes the resulting flags. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "db.h"
#include "num.h"

static const char *const plan_usage =
	"usage: meterctl plan list [--json]\n"
	"       meterctl plan add PLAN [--from PLAN] [--name TEXT]   (a new plan; --from copies "
	"its limits and thresholds)\n"
	"       meterctl plan set PLAN METRIC PERIOD VALUE|unlimited [--level tenant|user|key]\n"
	"       meterctl plan unset PLAN METRIC PERIOD [--level tenant|user|key]\n"
	"       meterctl plan thresholds PLAN 80,90,100   (notification thresholds, %)\n"
	"  METRIC: requests | tokens | cost (USD, e.g. 25.50) | op:<operation> (e.g. "
	"op:video_generation)\n"
	"  PERIOD: day | month | rolling30";

static const char *const limit_usage =
	"usage: meterctl limit set TENANT METRIC PERIOD VALUE|unlimited [--user U | --key K | "
	"--users | --keys]\n"
	"       meterctl limit unset TENANT METRIC PERIOD [--user U | --key K | --users | --keys]\n"
	"       meterctl limit show TENANT [--user U | --key K] [--json]\n"
	"  --users / --keys: every user / API key of the tenant; --user U / --key K: one of them";

int ctl_thresholds_array(const char *list, char *out, size_t out_size)
{
	char copy[128], lit[96] = "{";
	int seen[101] = {0}, n = 0;
	if (strlen(list) >= sizeof(copy))
		return -1;
	snprintf(copy, sizeof(copy), "%s", list);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int64_t v;
		if (num_parse_i64(tok, 1, 100, &v) != 0 || seen[v] || n == 10)
			return -1;
		seen[v] = 1;
		n++;
	}
	if (n == 0)
		return -1;
	for (int v = 1; v <= 100; v++)
		if (seen[v])
			snprintf(lit + strlen(lit), sizeof(lit) - strlen(lit), "%s%d",
				 lit[1] ? "," : "", v);
	strcat(lit, "}");
	if (out)
		snprintf(out, out_size, "%s", lit);
	return 0;
}

int ctl_check_metric(const char *m)
{
	if (strcmp(m, "requests") == 0 || strcmp(m, "tokens") == 0 || strcmp(m, "cost") == 0)
		return 0;
	if (strncmp(m, "op:", 3) != 0 || strlen(m) < 4 || strlen(m) > 67)
		return -1;
	for (const char *p = m + 3; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("_.-", *p)))
			return -1;
	return 0;
}

int ctl_check_plan(struct ctl *c, const char *plan)
{
	const char *params[1] = {plan};
	PGresult *r = ctl_query(c, "SELECT bool_or(id = $1),"
			       " string_agg(id, ', ' ORDER BY price_cents, id) FROM plans",
			       1, params);
	if (!r)
		return CTL_FAIL;
	int rc = CTL_OK;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		ctl_err("unknown plan '%s' (plans: %s)", plan,
			PQgetisnull(r, 0, 1) ? "none" : PQgetvalue(r, 0, 1));
		rc = CTL_USAGE;
	}
	PQclear(r);
	return rc;
}

static int check_period(const char *p)
{
	return (strcmp(p, "day") == 0 || strcmp(p, "month") == 0 || strcmp(p, "rolling30") == 0)
		       ? 0
		       : -1;
}

/* METRIC and PERIOD of plan|limit set|unset: 0, or -1 after saying which is
 * wrong and what is allowed. */
static int check_metric_period(const char *metric, const char *period)
{
	if (ctl_check_metric(metric) != 0) {
		ctl_err("unknown metric '%s' (metrics: requests, tokens, cost, op:NAME with NAME "
			"1-64 of a-z 0-9 _ . -)",
			metric);
		return -1;
	}
	if (check_period(period) != 0) {
		ctl_err("unknown period '%s' (periods: day, month, rolling30)", period);
		return -1;
	}
	return 0;
}

/* A negative number where VALUE goes ("-5"): taken as the value, to be
 * refused for its sign rather than as an unknown option. */
static int negative_number(const char *s)
{
	return s[0] == '-' && ((s[1] >= '0' && s[1] <= '9') || s[1] == '.');
}

/* VALUE as stored: NULL for unlimited, digits otherwise (cost given in USD
 * is turned into pico-USD). 0, or -1 after printing why. */
static int parse_value(const char *metric, const char *v, char *out, size_t out_size,
		       const char **stored)
{
	if (strcmp(v, "unlimited") == 0) {
		*stored = NULL;
		return 0;
	}
	int64_t n;
	if (v[0] == '-') {
		ctl_err("limit '%s' is negative: give a value >= 0 or 'unlimited'", v);
		return -1;
	}
	if (strcmp(metric, "cost") == 0) {
		if (num_parse_usd_pico(v, strlen(v), INT64_MAX, &n) != 0) {
			ctl_err("cost limit '%s' is not a USD amount (e.g. 25 or 25.50, at most 12 "
				"decimals)",
				v);
			return -1;
		}
	} else if (num_parse_i64(v, 0, INT64_MAX, &n) != 0) {
		ctl_err("limit '%s' is not a non-negative integer or 'unlimited'", v);
		return -1;
	}
	snprintf(out, out_size, "%lld", (long long)n);
	*stored = out;
	return 0;
}

/* A limit for text output: the metric ("cost (USD)" for cost) and its value
 * ("unlimited" for NULL, USD for cost). */
static void limit_text(const char *metric, const char *value, char *m_out, size_t m_size,
		       char *v_out, size_t v_size)
{
	int cost = strcmp(metric, "cost") == 0;
	snprintf(m_out, m_size, "%s%s", metric, cost ? " (USD)" : "");
	if (!value)
		snprintf(v_out, v_size, "unlimited");
	else if (cost)
		ctl_format_usd(value, v_out, v_size);
	else
		snprintf(v_out, v_size, "%s", value);
}

static int plan_list(struct ctl *c, int as_json)
{
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	PGresult *r = ctl_query(c, "SELECT p.id, p.name, p.price_cents, l.subject_type, l.metric, l.period,"
		" l.limit_value::text FROM plans p LEFT JOIN plan_limits l ON l.plan_id = p.id"
		" ORDER BY p.price_cents, p.id, l.subject_type DESC, l.period, l.metric",
		0, NULL);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	if (as_json) {
		json_t *plans = json_array(), *cur = NULL;
		const char *cur_id = "";
		for (int i = 0; i < n; i++) {
			if (strcmp(cur_id, PQgetvalue(r, i, 0)) != 0) {
				int64_t cents = 0;
				num_parse_i64(PQgetvalue(r, i, 2), 0, INT64_MAX, &cents);
				cur = json_pack("{s:s, s:s, s:I, s:[]}", "id", PQgetvalue(r, i, 0),
						"name", PQgetvalue(r, i, 1), "price_cents",
						(json_int_t)cents, "limits");
				json_array_append_new(plans, cur);
				cur_id = PQgetvalue(r, i, 0);
			}
			if (PQgetisnull(r, i, 3))
				continue;
			json_t *l = json_pack("{s:s, s:s, s:s}", "level", PQgetvalue(r, i, 3), "metric",
					      PQgetvalue(r, i, 4), "period", PQgetvalue(r, i, 5));
			json_object_set_new(l, "limit",
					    PQgetisnull(r, i, 6) ? json_null()
								 : json_string(PQgetvalue(r, i, 6)));
			json_array_append_new(json_object_get(cur, "limits"), l);
		}
		char *s = json_dumps(plans, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(plans);
	} else {
		printf("%-12s %-8s %-18s %-10s %20s\n", "PLAN", "LEVEL", "METRIC", "PERIOD", "LIMIT");
		for (int i = 0; i < n; i++) {
			if (PQgetisnull(r, i, 3)) {
				printf("%-12s (no limits)\n", PQgetvalue(r, i, 0));
				continue;
			}
			char metric[80], lim[48];
			limit_text(PQgetvalue(r, i, 4), PQgetisnull(r, i, 6) ? NULL : PQgetvalue(r, i, 6),
				   metric, sizeof(metric), lim, sizeof(lim));
			printf("%-12s %-8s %-18s %-10s %20s\n", PQgetvalue(r, i, 0),
			       PQgetvalue(r, i, 3), metric, PQgetvalue(r, i, 5), lim);
		}
	}
	PQclear(r);
	return CTL_OK;
}

/* Re-evaluate every tenant on a plan after its limits changed. */
static int reevaluate_plan(struct ctl *c, const char *plan)
{
	const char *params[1] = {plan};
	PGresult *r = ctl_query(c, "SELECT count(meter_reevaluate_tenant(id, 'limit_raised'))"
			       " FROM tenants WHERE meter_effective_plan(plan_id, plan_expires_at) = $1", 1, params);
	if (!r)
		return CTL_FAIL;
	PQclear(r);
	return ctl_publish_flags(c, NULL);
}

static int plan_set(struct ctl *c, int argc, char **argv, int unset)
{
	const char *level = "tenant";
	int pos = 0;
	const char *args[4] = {NULL, NULL, NULL, NULL};
	for (int i = 2; i < argc; i++) {
		int m = ctl_opt(argc, argv, &i, "--level", &level);
		if (m < 0)
			return CTL_USAGE;
		if (m)
			continue;
		if ((argv[i][0] == '-' && !(pos == 3 && negative_number(argv[i]))) || pos == 4) {
			ctl_err("unexpected argument '%s'\n%s", argv[i], plan_usage);
			return CTL_USAGE;
		}
		args[pos++] = argv[i];
	}
	if (pos != (unset ? 3 : 4)) {
		ctl_err("plan %s needs PLAN METRIC PERIOD%s\n%s", unset ? "unset" : "set",
			unset ? "" : " VALUE", plan_usage);
		return CTL_USAGE;
	}
	if (strcmp(level, "tenant") && strcmp(level, "user") && strcmp(level, "key")) {
		ctl_err("--level must be tenant, user or key");
		return CTL_USAGE;
	}
	if (strlen(args[0]) > 64 || !ctl_valid_id(args[0])) {
		ctl_err("'%s' is not a valid plan name", args[0]);
		return CTL_USAGE;
	}
	if (check_metric_period(args[1], args[2]) != 0)
		return CTL_USAGE;
	char vbuf[32];
	const char *value = NULL;
	if (!unset && parse_value(args[1], args[3], vbuf, sizeof(vbuf), &value) != 0)
		return CTL_USAGE;
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	/* plan set changes a plan's limits; it never creates a plan (a typo
	 * would make one that tenants could then be put on): plan add does. */
	int rc = ctl_check_plan(c, args[0]);
	if (rc != CTL_OK)
		return rc;
	const char *params[5] = {args[0], level, args[1], args[2], value};
	PGresult *r;
	if (unset) {
		r = ctl_query(c, "DELETE FROM plan_limits WHERE plan_id = $1 AND subject_type = $2"
			     " AND metric = $3 AND period = $4 RETURNING 1",
			     4, params);
	} else {
		r = ctl_query(c, "INSERT INTO plan_limits (plan_id, subject_type, metric, period, limit_value)"
			     " VALUES ($1, $2, $3, $4, $5::numeric) ON CONFLICT"
			     " (plan_id, subject_type, metric, period) DO UPDATE"
			     " SET limit_value = EXCLUDED.limit_value RETURNING 1",
			     5, params);
	}
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	PQclear(r);
	if (unset && n == 0) {
		ctl_err("plan %s has no %s %s limit for %s", args[0], args[1], args[2], level);
		return CTL_FAIL;
	}
	printf("plan %s: %s %s limit for each %s %s\n", args[0], args[1], args[2], level,
	       unset ? "removed" : (value ? "set" : "set to unlimited"));
	return reevaluate_plan(c, args[0]);
}

/* plan add PLAN [--from PLAN] [--name TEXT]: a new plan, with no limits
 * (nothing limits its tenants until plan set gives it some) or with a copy of
 * another plan's limits and thresholds. */
static int plan_add(struct ctl *c, int argc, char **argv)
{
	const char *from = NULL, *name = NULL, *id = NULL;
	for (int i = 2; i < argc; i++) {
		int m = ctl_opt(argc, argv, &i, "--from", &from);
		if (m == 0)
			m = ctl_opt(argc, argv, &i, "--name", &name);
		if (m < 0)
			return CTL_USAGE;
		if (m)
			continue;
		if (argv[i][0] == '-' || id) {
			ctl_err("unexpected argument '%s'\n%s", argv[i], plan_usage);
			return CTL_USAGE;
		}
		id = argv[i];
	}
	if (!id) {
		ctl_err("plan add needs PLAN\n%s", plan_usage);
		return CTL_USAGE;
	}
	if (strlen(id) > 64 || strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(id)) {
		ctl_err("'%s' is not a valid plan name: 1-64 of a-z 0-9 _ -", id);
		return CTL_USAGE;
	}
	if (name && (!*name || strlen(name) > 200)) {
		ctl_err("--name must be 1-200 characters");
		return CTL_USAGE;
	}
	if (from) {
		int rc = ctl_check_plan(c, from);
		if (rc != CTL_OK)
			return rc;
	}
	/* One statement: the plan and its copied limits, or neither. */
	const char *params[3] = {id, name, from};
	PGresult *r = ctl_query(c,
				"WITH p AS (INSERT INTO plans (id, name, price_cents, thresholds)"
				" SELECT $1, coalesce($2, $1), coalesce(f.price_cents, 0),"
				"        coalesce(f.thresholds, '{80,90,100}')"
				"   FROM (SELECT 1) one LEFT JOIN plans f ON f.id = $3"
				" ON CONFLICT (id) DO NOTHING RETURNING id),"
				" l AS (INSERT INTO plan_limits (plan_id, subject_type, metric, period,"
				"                                limit_value)"
				" SELECT p.id, pl.subject_type, pl.metric, pl.period, pl.limit_value"
				"   FROM p JOIN plan_limits pl ON pl.plan_id = $3 RETURNING 1)"
				" SELECT (SELECT count(*) FROM p), (SELECT count(*) FROM l)",
				3, params);
	if (!r)
		return CTL_FAIL;
	int added = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	char limits[24];
	snprintf(limits, sizeof(limits), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (!added) {
		ctl_err("plan '%s' exists already: change its limits with meterctl plan set", id);
		return CTL_FAIL;
	}
	if (from)
		printf("plan %s added, with %s limit%s and the thresholds of %s\n", id, limits,
		       strcmp(limits, "1") ? "s" : "", from);
	else
		printf("plan %s added, with no limits yet (meterctl plan set %s ...)\n", id, id);
	return CTL_OK;
}

int ctl_plan(struct ctl *c, int argc, char **argv)
{
	if (argc < 2) {
		ctl_err("plan needs a subcommand\n%s", plan_usage);
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "list") == 0) {
		int as_json = 0;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--json") == 0) {
				as_json = 1;
				continue;
			}
			ctl_err("unexpected argument '%s'\n%s", argv[i], plan_usage);
			return CTL_USAGE;
		}
		return plan_list(c, as_json);
	}
	if (strcmp(argv[1], "add") == 0)
		return plan_add(c, argc, argv);
	if (strcmp(argv[1], "set") == 0)
		return plan_set(c, argc, argv, 0);
	if (strcmp(argv[1], "unset") == 0)
		return plan_set(c, argc, argv, 1);
	if (strcmp(argv[1], "thresholds") == 0) {
		char lit[96];
		if (argc != 4 || ctl_thresholds_array(argv[3], lit, sizeof(lit)) != 0) {
			ctl_err("plan thresholds needs PLAN and 1 to 10 percentages (1-100), e.g. "
				"80,90,100\n%s",
				plan_usage);
			return CTL_USAGE;
		}
		int rc = ctl_check_plan(c, argv[2]);
		if (rc != CTL_OK)
			return rc;
		const char *params[2] = {argv[2], lit};
		PGresult *r = ctl_query(c,
					"UPDATE plans SET thresholds = $2::int[] WHERE id = $1"
					" RETURNING 1",
					2, params);
		if (!r)
			return CTL_FAIL;
		int n = PQntuples(r);
		PQclear(r);
		if (n != 1) { /* deleted since ctl_check_plan() looked */
			ctl_err("no plan '%s' (see meterctl plan list)", argv[2]);
			return CTL_FAIL;
		}
		printf("plan %s: notifications at %s %%\n", argv[2], argv[3]);
		return CTL_OK;
	}
	ctl_err("unknown plan subcommand '%s'\n%s", argv[1], plan_usage);
	return CTL_USAGE;
}

/* --user U | --key K | --users | --keys into (type, id); for show, the
 * plural forms are refused. 0 or CTL_USAGE. */
static int parse_subject(int argc, char **argv, int *i, const char **type, const char **id,
			 int allow_all, int *matched)
{
	const char *v;
	int m;
	*matched = 1;
	if ((m = ctl_opt(argc, argv, i, "--user", &v)) != 0) {
		if (m < 0)
			return CTL_USAGE;
		*type = "user";
		*id = v;
	} else if ((m = ctl_opt(argc, argv, i, "--key", &v)) != 0) {
		if (m < 0)
			return CTL_USAGE;
		*type = "key";
		*id = v;
	} else if (allow_all && strcmp(argv[*i], "--users") == 0) {
		*type = "user";
		*id = "";
	} else if (allow_all && strcmp(argv[*i], "--keys") == 0) {
		*type = "key";
		*id = "";
	} else {
		*matched = 0;
		return 0;
	}
	if (**id && !ctl_valid_id(*id)) {
		ctl_err("'%s' is not a valid id", *id);
		return CTL_USAGE;
	}
	return 0;
}

static int limit_show(struct ctl *c, const char *tenant, const char *type, const char *id,
		      int as_json)
{
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	const char *params[3] = {tenant, type, id};
	int found = ctl_tenant_exists(c, tenant);
	if (found < 0)
		return CTL_FAIL;
	if (!found) {
		ctl_err("no tenant '%s'", tenant);
		return CTL_FAIL;
	}
	PGresult *r = ctl_query(c, "SELECT metric, period, limit_value::text, source"
		     " FROM meter_effective_limits($1, $2, $3) ORDER BY period, metric", 3, params);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	if (as_json) {
		json_t *a = json_array();
		for (int i = 0; i < n; i++) {
			json_t *l = json_pack("{s:s, s:s, s:s}", "metric", PQgetvalue(r, i, 0),
					      "period", PQgetvalue(r, i, 1), "source",
					      PQgetvalue(r, i, 3));
			json_object_set_new(l, "limit",
					    PQgetisnull(r, i, 2) ? json_null()
								 : json_string(PQgetvalue(r, i, 2)));
			json_array_append_new(a, l);
		}
		char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(a);
	} else {
		printf("limits of %s%s%s%s%s\n", strcmp(type, "tenant") ? type : "tenant ",
		       strcmp(type, "tenant") ? " " : "", strcmp(type, "tenant") ? id : tenant,
		       strcmp(type, "tenant") ? " of tenant " : "",
		       strcmp(type, "tenant") ? tenant : "");
		printf("  %-24s %-10s %24s  %s\n", "METRIC", "PERIOD", "LIMIT", "FROM");
		for (int i = 0; i < n; i++) {
			char metric[80], lim[48];
			limit_text(PQgetvalue(r, i, 0), PQgetisnull(r, i, 2) ? NULL : PQgetvalue(r, i, 2),
				   metric, sizeof(metric), lim, sizeof(lim));
			printf("  %-24s %-10s %24s  %s\n", metric, PQgetvalue(r, i, 1), lim,
			       PQgetvalue(r, i, 3));
		}
		if (n == 0)
			printf("  (none: unlimited)\n");
	}
	PQclear(r);
	return CTL_OK;
}

int ctl_limit(struct ctl *c, int argc, char **argv)
{
	if (argc < 3 || argv[2][0] == '-') {
		ctl_err("limit needs a subcommand and a tenant\n%s", limit_usage);
		return CTL_USAGE;
	}
	const char *sub = argv[1], *tenant = argv[2];
	int is_set = strcmp(sub, "set") == 0, is_unset = strcmp(sub, "unset") == 0;
	int is_show = strcmp(sub, "show") == 0;
	if (!is_set && !is_unset && !is_show) {
		ctl_err("unknown limit subcommand '%s'\n%s", sub, limit_usage);
		return CTL_USAGE;
	}
	if (!ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	const char *type = "tenant", *id = "";
	const char *args[3] = {NULL, NULL, NULL};
	int pos = 0, as_json = 0, subjects = 0;
	for (int i = 3; i < argc; i++) {
		int matched;
		if (parse_subject(argc, argv, &i, &type, &id, !is_show, &matched) != 0)
			return CTL_USAGE;
		if (matched) {
			subjects++;
			continue;
		}
		if (is_show && strcmp(argv[i], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if ((argv[i][0] == '-' && !(is_set && pos == 2 && negative_number(argv[i]))) ||
		    pos == 3 || is_show) {
			ctl_err("unexpected argument '%s'\n%s", argv[i], limit_usage);
			return CTL_USAGE;
		}
		args[pos++] = argv[i];
	}
	if (subjects > 1) {
		ctl_err("give at most one of --user, --key, --users, --keys");
		return CTL_USAGE;
	}
	if (is_show)
		return limit_show(c, tenant, type, id, as_json);
	if (pos != (is_set ? 3 : 2)) {
		ctl_err("limit %s needs METRIC PERIOD%s\n%s", sub, is_set ? " VALUE" : "",
			limit_usage);
		return CTL_USAGE;
	}
	if (check_metric_period(args[0], args[1]) != 0)
		return CTL_USAGE;
	char vbuf[32];
	const char *value = NULL;
	if (is_set && parse_value(args[0], args[2], vbuf, sizeof(vbuf), &value) != 0)
		return CTL_USAGE;
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	const char *params[6] = {tenant, type, id, args[0], args[1], value};
	PGresult *r;
	if (is_set)
		r = ctl_query(c, "INSERT INTO tenant_limits (tenant_id, subject_type, subject_id, metric,"
			     " period, limit_value) SELECT $1, $2, $3, $4, $5, $6::numeric"
			     " WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $1)"
			     " ON CONFLICT (tenant_id, subject_type, subject_id, metric, period)"
			     " DO UPDATE SET limit_value = EXCLUDED.limit_value, updated_at = now()"
			     " RETURNING 1",
			     6, params);
	else
		r = ctl_query(c, "DELETE FROM tenant_limits WHERE tenant_id = $1 AND subject_type = $2"
			     " AND subject_id = $3 AND metric = $4 AND period = $5 RETURNING 1", 5, params);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	PQclear(r);
	if (n == 0) {
		if (is_set)
			ctl_err("no tenant '%s' (add it with 'meterctl tenant add %s')", tenant,
				tenant);
		else
			ctl_err("no such override for %s (see 'meterctl limit show %s')", tenant,
				tenant);
		return CTL_FAIL;
	}
	printf("%s: %s %s limit %s\n", tenant, args[0], args[1],
	       is_unset ? "override removed (plan default applies)"
			: (value ? "set" : "set to unlimited"));
	return ctl_reevaluate(c, tenant);
}
