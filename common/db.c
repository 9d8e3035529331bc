/* db.c - see db.h. */
#include "db.h"

#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "log.h"

static void quiet_notices(void *arg, const char *message)
{
	(void)arg;
	size_t n = strlen(message);
	log_debug("postgres: %.*s", (int)(n && message[n - 1] == '\n' ? n - 1 : n), message);
}

PGconn *db_connect(const char *url, const char *app_name, char *errstr, size_t errstr_size)
{
	/* Our defaults come first so that anything in the user's URL (dbname is
	 * expanded in place) overrides them. Keepalives notice a dead server
	 * within about a minute instead of the kernel's two hours. */
	const char *keys[] = {"application_name", "connect_timeout", "keepalives",
			      "keepalives_idle", "keepalives_interval", "keepalives_count",
			      "dbname", NULL};
	const char *vals[] = {app_name, "10", "1", "30", "10", "3",
			      (url && *url) ? url : NULL, NULL};
	PGconn *conn = PQconnectdbParams(keys, vals, 1);
	if (!conn) {
		snprintf(errstr, errstr_size, "out of memory connecting to PostgreSQL");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		char red[512];
		log_redact_url(url, red, sizeof(red));
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(conn));
		for (char *p = msg; *p; p++)
			if (*p == '\n')
				*p = ' ';
		snprintf(errstr, errstr_size, "cannot connect to PostgreSQL (%s): %s",
			 *red ? red : "PG* defaults", msg);
		PQfinish(conn);
		return NULL;
	}
	PQsetNoticeProcessor(conn, quiet_notices, NULL);
	if (clock_offset_s() != 0) {
		/* Test-only clock shift (see clock.h), seen by meter_now() in SQL. */
		char sql[96];
		snprintf(sql, sizeof(sql), "SET meter.clock_offset_s = '%lld'",
			 (long long)clock_offset_s());
		if (db_exec(conn, sql, errstr, errstr_size) != 0) {
			PQfinish(conn);
			return NULL;
		}
	}
	return conn;
}

int db_schema_missing(const char *sqlstate)
{
	return sqlstate && (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "42883") == 0);
}

void db_describe(PGconn *conn, const PGresult *res, const char *what, char *errstr,
		 size_t errstr_size)
{
	if (res && db_schema_missing(PQresultErrorField(res, PG_DIAG_SQLSTATE))) {
		const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		snprintf(errstr, errstr_size,
			 "%s: %s: the database has no meterd schema, or an older one "
			 "(run meterctl migrate)",
			 what, primary ? primary : "undefined table or function");
		return;
	}
	const char *msg = res ? PQresultErrorMessage(res) : "";
	if (!msg || !*msg)
		msg = conn ? PQerrorMessage(conn) : "no connection";
	char line[600];
	snprintf(line, sizeof(line), "%s", msg);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	size_t n = strlen(line);
	while (n && line[n - 1] == ' ')
		line[--n] = '\0';
	snprintf(errstr, errstr_size, "%s: %s", what, line);
}

int db_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size)
{
	PGresult *res = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		db_describe(conn, res, "database command failed", errstr, errstr_size);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	return 0;
}

PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   char *errstr, size_t errstr_size, char sqlstate_out[6])
{
	if (sqlstate_out)
		sqlstate_out[0] = '\0';
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	db_describe(conn, res, "database query failed", errstr, errstr_size);
	if (sqlstate_out) {
		const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		snprintf(sqlstate_out, 6, "%s", s ? s : "");
	}
	PQclear(res);
	return NULL;
}

int db_broken(PGconn *conn)
{
	return !conn || PQstatus(conn) != CONNECTION_OK;
}
