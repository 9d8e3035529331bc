/* notifications.c - meterctl notifications list|retry: the threshold
 * notifications that meter-notifier delivers, with their last attempt, and
 * re-queueing the ones that failed. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "num.h"

static const char *const notif_usage =
	"usage: meterctl notifications list [TENANT] [--status pending|delivered|dead|disabled]\n"
	"                                   [--channel webhook|email] [--limit N] [--json]\n"
	"       meterctl notifications retry ID | --dead [TENANT]\n"
	"  retry puts a notification (or every dead one) back in the queue, due now;\n"
	"  its attempt count is kept, so a row that failed its last attempt gets one more.";

enum {
	L_ID, L_MSG_ID, L_TENANT, L_STYPE, L_SID, L_METRIC, L_PERIOD, L_PSTART, L_THRESHOLD,
	L_CHANNEL, L_TARGET, L_STATUS, L_ATTEMPTS, L_CREATED, L_NEXT, L_DELIVERED, L_LAST_ERROR,
	L_A_AT, L_A_STATUS, L_A_ERROR, L_A_DURATION, L_A_SNIPPET, L_LIMIT, L_USED
};

static const char list_sql[] =
	"SELECT n.id, n.msg_id, n.tenant_id, n.subject_type, n.subject_id, n.metric, n.period,"
	"       n.period_start::text, n.threshold, n.channel, n.target, n.status, n.attempts,"
	"       to_char(n.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	"       CASE WHEN n.status = 'pending' THEN to_char(n.next_attempt_at AT TIME ZONE 'UTC',"
	"                                 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') END,"
	"       to_char(n.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	"       n.last_error,"
	"       to_char(a.attempted_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
	"       a.http_status, a.error, a.duration_ms, a.response_snippet,"
	"       n.limit_value::text, n.used::text"
	"  FROM notifications n"
	"  LEFT JOIN LATERAL (SELECT * FROM notification_attempts x"
	"                      WHERE x.notification_id = n.id ORDER BY x.id DESC LIMIT 1) a"
	"    ON true"
	" WHERE ($1::text IS NULL OR n.tenant_id = $1)"
	"   AND ($2::text IS NULL OR n.status = $2)"
	"   AND ($3::text IS NULL OR n.channel = $3)"
	" ORDER BY n.id DESC"
	" LIMIT $4::int";

/* For a tenant whose list came back empty: CTL_OK if it exists, else
 * CTL_FAIL after saying so (notifications keep no reference to tenants, so
 * the list is not refused while it has rows). */
static int tenant_known(struct ctl *c, const char *tenant)
{
	int found = ctl_tenant_exists(c, tenant);
	if (found < 0)
		return CTL_FAIL;
	if (!found) {
		ctl_err("no tenant '%s' (see meterctl tenant list)", tenant);
		return CTL_FAIL;
	}
	return CTL_OK;
}

static json_t *str_or_null(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static json_t *int_or_null(const PGresult *r, int row, int col)
{
	int64_t v;
	if (PQgetisnull(r, row, col) ||
	    num_parse_i64(PQgetvalue(r, row, col), INT64_MIN, INT64_MAX, &v) != 0)
		return json_null();
	return json_integer((json_int_t)v);
}

static void print_json(const PGresult *r)
{
	json_t *a = json_array();
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *o = json_object();
		json_object_set_new(o, "id", int_or_null(r, i, L_ID));
		json_object_set_new(o, "msg_id", str_or_null(r, i, L_MSG_ID));
		json_object_set_new(o, "tenant", str_or_null(r, i, L_TENANT));
		json_object_set_new(o, "subject_type", str_or_null(r, i, L_STYPE));
		json_object_set_new(o, "subject_id", str_or_null(r, i, L_SID));
		json_object_set_new(o, "metric", str_or_null(r, i, L_METRIC));
		json_object_set_new(o, "period", str_or_null(r, i, L_PERIOD));
		json_object_set_new(o, "period_start", str_or_null(r, i, L_PSTART));
		json_object_set_new(o, "threshold", int_or_null(r, i, L_THRESHOLD));
		json_object_set_new(o, "limit", str_or_null(r, i, L_LIMIT));
		json_object_set_new(o, "used", str_or_null(r, i, L_USED));
		json_object_set_new(o, "channel", str_or_null(r, i, L_CHANNEL));
		json_object_set_new(o, "target", str_or_null(r, i, L_TARGET));
		json_object_set_new(o, "status", str_or_null(r, i, L_STATUS));
		json_object_set_new(o, "attempts", int_or_null(r, i, L_ATTEMPTS));
		json_object_set_new(o, "created_at", str_or_null(r, i, L_CREATED));
		json_object_set_new(o, "next_attempt_at", str_or_null(r, i, L_NEXT));
		json_object_set_new(o, "delivered_at", str_or_null(r, i, L_DELIVERED));
		json_object_set_new(o, "last_error", str_or_null(r, i, L_LAST_ERROR));
		json_t *la = json_null();
		if (!PQgetisnull(r, i, L_A_AT)) {
			la = json_object();
			json_object_set_new(la, "at", str_or_null(r, i, L_A_AT));
			json_object_set_new(la, "status", int_or_null(r, i, L_A_STATUS));
			json_object_set_new(la, "error", str_or_null(r, i, L_A_ERROR));
			json_object_set_new(la, "duration_ms", int_or_null(r, i, L_A_DURATION));
			json_object_set_new(la, "response_snippet", str_or_null(r, i, L_A_SNIPPET));
		}
		json_object_set_new(o, "last_attempt", la);
		json_array_append_new(a, o);
	}
	char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (s)
		puts(s);
	free(s);
	json_decref(a);
}

/* "2026-11-23T14:05:09Z" -> "2026-11-23 14:05:09" */
static void short_time(const char *iso, char *out, size_t out_size)
{
	snprintf(out, out_size, "%.19s", iso);
	if (strlen(out) > 10 && out[10] == 'T')
		out[10] = ' ';
}

static void print_table(const PGresult *r)
{
	printf("%-6s %-19s %-16s %-18s %-20s %-4s %-7s %-9s %5s  %s\n", "ID", "CREATED (UTC)",
	       "TENANT", "SUBJECT", "LIMIT", "AT", "CHANNEL", "STATUS", "TRIES",
	       "LAST ATTEMPT (UTC)");
	for (int i = 0; i < PQntuples(r); i++) {
		char created[24], subj[160], lim[96], at[8], last[400];
		short_time(PQgetvalue(r, i, L_CREATED), created, sizeof(created));
		if (strcmp(PQgetvalue(r, i, L_STYPE), "tenant") == 0)
			snprintf(subj, sizeof(subj), "tenant");
		else
			snprintf(subj, sizeof(subj), "%s/%s", PQgetvalue(r, i, L_STYPE),
				 PQgetvalue(r, i, L_SID));
		snprintf(lim, sizeof(lim), "%s/%s", PQgetvalue(r, i, L_METRIC),
			 PQgetvalue(r, i, L_PERIOD));
		snprintf(at, sizeof(at), "%s%%", PQgetvalue(r, i, L_THRESHOLD));
		if (PQgetisnull(r, i, L_A_AT)) {
			snprintf(last, sizeof(last), "-");
		} else {
			char when[24], what[300];
			short_time(PQgetvalue(r, i, L_A_AT), when, sizeof(when));
			const char *err = PQgetvalue(r, i, L_A_ERROR);
			if (!PQgetisnull(r, i, L_A_ERROR))
				snprintf(what, sizeof(what), "%.120s", err);
			else if (!PQgetisnull(r, i, L_A_STATUS))
				snprintf(what, sizeof(what), "%s %s",
					 strcmp(PQgetvalue(r, i, L_CHANNEL), "email") == 0 ? "SMTP"
											   : "HTTP",
					 PQgetvalue(r, i, L_A_STATUS));
			else
				snprintf(what, sizeof(what), "ok");
			snprintf(last, sizeof(last), "%s %s", when, what);
		}
		printf("%-6s %-19s %-16s %-18s %-20s %-4s %-7s %-9s %5s  %s\n",
		       PQgetvalue(r, i, L_ID), created, PQgetvalue(r, i, L_TENANT), subj, lim, at,
		       PQgetvalue(r, i, L_CHANNEL), PQgetvalue(r, i, L_STATUS),
		       PQgetvalue(r, i, L_ATTEMPTS), last);
	}
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
	const char *tenant = NULL, *status = NULL, *channel = NULL, *limit = "50";
	int json = 0;
	for (int i = 1; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
			continue;
		}
		if ((m = ctl_opt(argc, argv, &i, "--status", &status)) ||
		    (m = ctl_opt(argc, argv, &i, "--channel", &channel)) ||
		    (m = ctl_opt(argc, argv, &i, "--limit", &limit))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		if (argv[i][0] != '-' && !tenant) {
			tenant = argv[i];
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], notif_usage);
		return CTL_USAGE;
	}
	if (tenant && !ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	if (status && strcmp(status, "pending") != 0 && strcmp(status, "delivered") != 0 &&
	    strcmp(status, "dead") != 0 && strcmp(status, "disabled") != 0) {
		ctl_err("--status must be pending, delivered, dead or disabled");
		return CTL_USAGE;
	}
	if (channel && strcmp(channel, "webhook") != 0 && strcmp(channel, "email") != 0) {
		ctl_err("--channel must be webhook or email");
		return CTL_USAGE;
	}
	int64_t n;
	if (num_parse_i64(limit, 1, 100000, &n) != 0) {
		ctl_err("--limit must be an integer from 1 to 100000");
		return CTL_USAGE;
	}
	char lim[24];
	snprintf(lim, sizeof(lim), "%lld", (long long)n);
	const char *params[4] = {tenant, status, channel, lim};
	PGresult *r = ctl_query(c, list_sql, 4, params);
	if (!r)
		return CTL_FAIL;
	if (tenant && PQntuples(r) == 0 && tenant_known(c, tenant) != CTL_OK) {
		PQclear(r);
		return CTL_FAIL;
	}
	if (json)
		print_json(r);
	else
		print_table(r);
	PQclear(r);
	return CTL_OK;
}

static int retry_one(struct ctl *c, const char *id_text)
{
	int64_t id;
	if (num_parse_i64(id_text, 1, INT64_MAX, &id) != 0) {
		ctl_err("'%s' is not a notification id (see meterctl notifications list)", id_text);
		return CTL_USAGE;
	}
	char idb[24];
	snprintf(idb, sizeof(idb), "%lld", (long long)id);
	const char *params[1] = {idb};
	/* Look first, so that the refusal says why. */
	PGresult *r = ctl_query(
		c,
		"SELECT n.status, n.channel, t.webhook_disabled_at IS NOT NULL,"
		"       to_char(n.delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'),"
		"       n.tenant_id"
		"  FROM notifications n LEFT JOIN tenants t ON t.id = n.tenant_id WHERE n.id = $1",
		1, params);
	if (!r)
		return CTL_FAIL;
	if (PQntuples(r) == 0) {
		PQclear(r);
		ctl_err("no notification %s (see meterctl notifications list)", idb);
		return CTL_FAIL;
	}
	int delivered = strcmp(PQgetvalue(r, 0, 0), "delivered") == 0;
	int hook_off = strcmp(PQgetvalue(r, 0, 1), "webhook") == 0 &&
		       strcmp(PQgetvalue(r, 0, 2), "t") == 0;
	char when[40], tenant[140];
	snprintf(when, sizeof(when), "%s", PQgetvalue(r, 0, 3));
	snprintf(tenant, sizeof(tenant), "%s", PQgetvalue(r, 0, 4));
	PQclear(r);
	if (delivered) {
		ctl_err("notification %s was delivered at %s UTC; there is nothing to retry", idb,
			when);
		return CTL_FAIL;
	}
	if (hook_off) {
		ctl_err("the webhook of tenant %s is disabled (its endpoint answered 410 Gone); "
			"set the URL again with 'meterctl tenant set %s --webhook URL' first",
			tenant, tenant);
		return CTL_FAIL;
	}
	r = ctl_query(c,
		      "WITH u AS (UPDATE notifications SET status = 'pending',"
		      "                  next_attempt_at = now()"
		      "            WHERE id = $1 AND status <> 'delivered' RETURNING id)"
		      " SELECT (SELECT count(*) FROM u), pg_notify('meter_notifications', '')",
		      1, params);
	if (!r)
		return CTL_FAIL;
	int done = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	PQclear(r);
	if (!done) {
		ctl_err("notification %s changed meanwhile; look again with meterctl "
			"notifications list",
			idb);
		return CTL_FAIL;
	}
	printf("notification %s queued again (due now)\n", idb);
	return CTL_OK;
}

static int retry_dead(struct ctl *c, const char *tenant)
{
	if (tenant && !ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	const char *params[1] = {tenant};
	PGresult *r = ctl_query(
		c,
		"WITH u AS (UPDATE notifications SET status = 'pending', next_attempt_at = now()"
		"            WHERE status = 'dead' AND ($1::text IS NULL OR tenant_id = $1)"
		"            RETURNING id)"
		" SELECT (SELECT count(*) FROM u), pg_notify('meter_notifications', '')",
		1, params);
	if (!r)
		return CTL_FAIL;
	if (tenant && strcmp(PQgetvalue(r, 0, 0), "0") == 0 && tenant_known(c, tenant) != CTL_OK) {
		PQclear(r);
		return CTL_FAIL;
	}
	printf("%s dead notification(s)%s%s queued again (due now)\n", PQgetvalue(r, 0, 0),
	       tenant ? " of " : "", tenant ? tenant : "");
	PQclear(r);
	return CTL_OK;
}

static int cmd_retry(struct ctl *c, int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--dead") != 0 && argv[1][0] != '-')
		return retry_one(c, argv[1]);
	if ((argc == 2 || argc == 3) && strcmp(argv[1], "--dead") == 0 &&
	    (argc == 2 || argv[2][0] != '-'))
		return retry_dead(c, argc == 3 ? argv[2] : NULL);
	ctl_err("retry needs a notification id or --dead [TENANT]\n%s", notif_usage);
	return CTL_USAGE;
}

int ctl_notifications(struct ctl *c, int argc, char **argv)
{
	if (argc < 2) {
		ctl_err("notifications needs list or retry\n%s", notif_usage);
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "retry") == 0)
		return cmd_retry(c, argc - 1, argv + 1);
	ctl_err("unknown notifications command '%s'\n%s", argv[1], notif_usage);
	return CTL_USAGE;
}
