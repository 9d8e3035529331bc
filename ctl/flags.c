/* flags.c - meterctl suspend, reactivate and reset, and the publication of
 * the flags that any meterctl change produces. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "db.h"
#include "num.h"
#include "publisher.h"

int ctl_publish_flags(struct ctl *c, const char *tenant)
{
	char err[1024];
	struct publisher *p = pub_new(&c->cfg, "meterctl", err, sizeof(err));
	if (!p) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	int n = pub_drain_once(p, err, sizeof(err));
	pub_destroy(p);
	if (n >= 0) {
		if (n)
			printf("published %d flag%s on %s\n", n, n == 1 ? "" : "s",
			       c->cfg.topic_limits);
		return CTL_OK;
	}
	if (n == -1) {
		fprintf(stderr,
			"meterctl: warning: flags not published yet (%s); they stay queued and "
			"meterd publishes them\n",
			err);
		return CTL_OK;
	}
	/* A running meterd is the publisher: wait for it to take them. */
	const char *params[1] = {tenant};
	for (int i = 0; i < 100; i++) {
		PGresult *r = db_query(
			ctl_db(c),
			"SELECT count(*) FROM flag_outbox WHERE sent_at IS NULL"
			" AND ($1::text IS NULL OR tenant_id = $1)",
			1, params, err, sizeof(err), NULL);
		if (!r) {
			ctl_err("%s", err);
			return CTL_FAIL;
		}
		int pending = strcmp(PQgetvalue(r, 0, 0), "0") != 0;
		PQclear(r);
		if (!pending) {
			printf("flags published by the running meterd\n");
			return CTL_OK;
		}
		struct timespec ts = {0, 100 * 1000000L};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "meterctl: warning: flags still queued after 10 s; the running meterd "
			"publishes them when Kafka is reachable\n");
	return CTL_OK;
}

static const char *actor_name(const char *given)
{
	if (given)
		return given;
	const char *u = getenv("SUDO_USER");
	if (!u || !*u)
		u = getenv("USER");
	return (u && *u) ? u : "meterctl";
}

/* Run a statement; *rows (if given) gets the number of rows returned. */
static int one_row(struct ctl *c, const char *sql, int np, const char *const *params, int *rows)
{
	PGresult *r = ctl_query(c, sql, np, params);
	if (!r)
		return CTL_FAIL;
	if (rows)
		*rows = PQntuples(r);
	PQclear(r);
	return CTL_OK;
}

static int run_tx(PGconn *conn, const char *what)
{
	char err[1024];
	if (db_exec(conn, what, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	return CTL_OK;
}

/* After a reactivation: the limits the tenant is still blocked by, with
 * how to lift them ("still" when a suspension was just lifted). */
static void print_blocks(PGconn *conn, const char *tenant, const char *still)
{
	char err[1024];
	const char *params[1] = {tenant};
	PGresult *r = db_query(conn,
			       "SELECT metric, period, to_char(until AT TIME ZONE 'UTC',"
			       " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM blocks"
			       " WHERE tenant_id = $1 AND subject_type = 'tenant'"
			       " AND cleared_at IS NULL AND until > meter_now()",
			       1, params, err, sizeof(err), NULL);
	if (!r)
		return;
	for (int i = 0; i < PQntuples(r); i++)
		printf("note: %sover its %s %s limit until %s (raise the limit or "
		       "'meterctl reset %s --period %s')\n",
		       still, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), tenant,
		       PQgetvalue(r, i, 1));
	PQclear(r);
}

int ctl_suspend(struct ctl *c, int argc, char **argv, int suspend)
{
	const char *reason = NULL, *actor = NULL;
	const char *usage = suspend ? "usage: meterctl suspend TENANT --reason TEXT [--actor NAME]"
				    : "usage: meterctl reactivate TENANT [--reason TEXT] [--actor NAME]";
	if (argc < 2 || argv[1][0] == '-') {
		ctl_err("%s needs a tenant\n%s", argv[0], usage);
		return CTL_USAGE;
	}
	const char *tenant = argv[1];
	for (int i = 2; i < argc; i++) {
		int m;
		if ((m = ctl_opt(argc, argv, &i, "--reason", &reason)) ||
		    (m = ctl_opt(argc, argv, &i, "--actor", &actor))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], usage);
		return CTL_USAGE;
	}
	if (!ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	if (suspend && (!reason || !*reason)) {
		ctl_err("suspend needs --reason (it is shown to the tenant's services)\n%s", usage);
		return CTL_USAGE;
	}
	if (reason && strlen(reason) > 500) {
		ctl_err("--reason is limited to 500 characters");
		return CTL_USAGE;
	}
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	const char *params[4] = {tenant, suspend ? "t" : "f", reason, actor_name(actor)};
	int rows = 0, was_suspended = 0;
	int rc = run_tx(conn, "BEGIN");
	if (rc == CTL_OK) {
		PGresult *r = ctl_query(c, "SELECT suspended FROM tenants WHERE id = $1 FOR UPDATE",
					1, params);
		if (!r) {
			rc = CTL_FAIL;
		} else {
			rows = PQntuples(r);
			was_suspended = rows == 1 && *PQgetvalue(r, 0, 0) == 't';
			PQclear(r);
		}
	}
	if (rc == CTL_OK && rows == 1 && !suspend && !was_suspended) {
		/* Nothing to lift: no change, no audit row, no flag. */
		char ignore[64];
		db_exec(conn, "ROLLBACK", ignore, sizeof(ignore));
		printf("tenant %s was not suspended: nothing to reactivate\n", tenant);
		print_blocks(conn, tenant, "");
		return CTL_OK;
	}
	if (rc == CTL_OK && rows == 1)
		rc = one_row(c,
			     "UPDATE tenants SET suspended = $2::boolean,"
			     " suspension_reason = CASE WHEN $2::boolean THEN $3 END,"
			     " updated_at = now() WHERE id = $1 RETURNING 1",
			     3, params, &rows);
	if (rc == CTL_OK && rows == 1)
		rc = one_row(c,
			     "INSERT INTO suspension_log (tenant_id, action, reason, actor)"
			     " VALUES ($1, CASE WHEN $2::boolean THEN 'suspend' ELSE 'reactivate' END,"
			     " $3, $4)",
			     4, params, NULL);
	if (rc == CTL_OK && rows == 1)
		rc = one_row(c, "SELECT meter_flag_dirty($1, 'tenant', '')", 1, params, NULL);
	if (rc != CTL_OK || rows != 1) {
		char ignore[64];
		db_exec(conn, "ROLLBACK", ignore, sizeof(ignore));
		if (rc == CTL_OK)
			ctl_err("no tenant '%s'", tenant);
		return CTL_FAIL;
	}
	if (run_tx(conn, "COMMIT") != CTL_OK)
		return CTL_FAIL;
	printf("tenant %s %s\n", tenant, suspend ? "suspended" : "reactivated");
	rc = ctl_publish_flags(c, tenant);
	if (!suspend && rc == CTL_OK)
		print_blocks(conn, tenant, "still ");
	return rc;
}

int ctl_reset(struct ctl *c, int argc, char **argv)
{
	const char *usage = "usage: meterctl reset TENANT [--user U | --key K] --period day|month "
			    "--reason TEXT [--actor NAME]";
	const char *period = NULL, *reason = NULL, *actor = NULL, *user = NULL, *key = NULL;
	if (argc < 2 || argv[1][0] == '-') {
		ctl_err("reset needs a tenant\n%s", usage);
		return CTL_USAGE;
	}
	const char *tenant = argv[1];
	for (int i = 2; i < argc; i++) {
		int m;
		if ((m = ctl_opt(argc, argv, &i, "--period", &period)) ||
		    (m = ctl_opt(argc, argv, &i, "--reason", &reason)) ||
		    (m = ctl_opt(argc, argv, &i, "--actor", &actor)) ||
		    (m = ctl_opt(argc, argv, &i, "--user", &user)) ||
		    (m = ctl_opt(argc, argv, &i, "--key", &key))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], usage);
		return CTL_USAGE;
	}
	if (!ctl_valid_id(tenant) || (user && !ctl_valid_id(user)) || (key && !ctl_valid_id(key)) ||
	    (user && key)) {
		ctl_err("bad tenant, user or key (give at most one of --user, --key)\n%s", usage);
		return CTL_USAGE;
	}
	if (!period || (strcmp(period, "day") && strcmp(period, "month"))) {
		ctl_err("reset needs --period day or --period month\n%s", usage);
		return CTL_USAGE;
	}
	if (!reason || !*reason || strlen(reason) > 500) {
		ctl_err("reset needs --reason (1-500 characters; it is kept for audit)\n%s", usage);
		return CTL_USAGE;
	}
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	const char *type = user ? "user" : key ? "key" : "tenant";
	const char *id = user ? user : key ? key : "";
	const char *params[6] = {tenant, type, id, period, reason, actor_name(actor)};
	int rows = 0;
	int rc = run_tx(conn, "BEGIN");
	/* The baseline is the usage of the current period now: limits count from
	 * it, while rollups (and billing) keep every event. */
	if (rc == CTL_OK)
		rc = one_row(
			c,
			"WITH t AS (SELECT id, tz FROM tenants WHERE id = $1),"
			" p AS (SELECT t.id, meter_period_start(t.tz, $4, meter_now()) AS start FROM t)"
			" INSERT INTO usage_resets (tenant_id, subject_type, subject_id, period,"
			" period_start, requests, tokens, cost_pusd, operations, reason, actor)"
			" SELECT p.id, $2, $3, $4, p.start,"
			" coalesce(r.requests, 0), coalesce(r.input_tokens + r.output_tokens, 0),"
			" coalesce(r.cost_pusd, 0),"
			" coalesce((SELECT jsonb_object_agg(b.name, b.requests)"
			"  FROM meter_breakdown(p.id, $2, $3, $4, p.start) b WHERE b.dim = 'operation'),"
			"  '{}'), $5, $6"
			" FROM p LEFT JOIN rollups r ON r.tenant_id = p.id AND r.subject_type = $2"
			" AND r.subject_id = $3 AND r.period = $4 AND r.period_start = p.start"
			" RETURNING 1",
			6, params, &rows);
	if (rc == CTL_OK && rows == 1)
		rc = one_row(c, "SELECT meter_reevaluate_tenant($1, 'reset')", 1, params, NULL);
	if (rc != CTL_OK || rows != 1) {
		char ignore[64];
		db_exec(conn, "ROLLBACK", ignore, sizeof(ignore));
		if (rc == CTL_OK)
			ctl_err("no tenant '%s'", tenant);
		return CTL_FAIL;
	}
	if (run_tx(conn, "COMMIT") != CTL_OK)
		return CTL_FAIL;
	printf("%s usage of %s reset for limits (recorded for audit; rollups and billing keep "
	       "every event)\n",
	       period, type[0] == 't' ? tenant : id);
	return ctl_publish_flags(c, tenant);
}
