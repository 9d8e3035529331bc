/* db.c - see db.h. */
#define _GNU_SOURCE /* strcasestr */
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

/* Append n bytes of s at *pos in out (cap bytes), truncating; out stays
 * NUL-terminated. */
static void put(char *out, size_t cap, size_t *pos, const char *s, size_t n)
{
	if (*pos + 1 >= cap)
		return;
	if (n > cap - 1 - *pos)
		n = cap - 1 - *pos;
	memcpy(out + *pos, s, n);
	*pos += n;
	out[*pos] = '\0';
}

static void put_str(char *out, size_t cap, size_t *pos, const char *s)
{
	put(out, cap, pos, s, strlen(s));
}

/* A value as libpq's key=value syntax reads it back: bare when it can be,
 * else in single quotes with ' and \ escaped. */
static void put_value(char *out, size_t cap, size_t *pos, const char *v)
{
	int bare = *v != '\0';
	for (const char *p = v; *p && bare; p++)
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f' ||
		    *p == '\v' || *p == '\'' || *p == '\\')
			bare = 0;
	if (bare) {
		put_str(out, cap, pos, v);
		return;
	}
	put(out, cap, pos, "'", 1);
	for (const char *p = v; *p; p++) {
		if (*p == '\'' || *p == '\\')
			put(out, cap, pos, "\\", 1);
		put(out, cap, pos, p, 1);
	}
	put(out, cap, pos, "'", 1);
}

#define NOT_SHOWN "(a connection string that does not parse, not shown)"

/* How db_connect's libpq reads conninfo: a URI or a string with '=' is a
 * connection string (PQconnectdbParams' expand_dbname), anything else a
 * database name. */
static int is_conninfo(const char *s)
{
	return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0 ||
	       strchr(s, '=') != NULL;
}

int db_redact_conninfo(const char *conninfo, char *out, size_t out_size)
{
	if (out_size == 0)
		return -1;
	out[0] = '\0';
	if (!conninfo || !*conninfo)
		return 0;
	size_t pos = 0;
	if (!is_conninfo(conninfo)) {
		/* A database name, shown as it is; unless it names a password:
		 * then it is a connection string with a typo ("password S3cret"),
		 * and the rest of it may be the password. */
		if (strcasestr(conninfo, "password")) {
			put_str(out, out_size, &pos, NOT_SHOWN);
			return -1;
		}
		put_str(out, out_size, &pos, conninfo);
		return 0;
	}
	/* libpq's own parser, so that every form it accepts is understood:
	 * "password = x", quoted values with \' and \\, URIs with userinfo,
	 * query parameters and percent-encoding. */
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(conninfo, &perr);
	PQfreemem(perr); /* may quote any part of the string, the password too */
	if (!opts) {
		put_str(out, out_size, &pos, NOT_SHOWN);
		return -1;
	}
	for (const PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (pos)
			put(out, out_size, &pos, " ", 1);
		put_str(out, out_size, &pos, o->keyword);
		put(out, out_size, &pos, "=", 1);
		/* dispchar "*": libpq's mark for a secret (password, sslpassword). */
		if (o->dispchar && strchr(o->dispchar, '*'))
			put_str(out, out_size, &pos, "***");
		else
			put_value(out, out_size, &pos, o->val);
	}
	PQconninfoFree(opts);
	return 0;
}

void db_connect_error(const char *conninfo, const PGconn *conn, char *out, size_t out_size)
{
	if (out_size == 0)
		return;
	char shown[8];
	int valid = db_redact_conninfo(conninfo, shown, sizeof(shown)) == 0;
	const char *msg = conn ? PQerrorMessage(conn) : "out of memory";
	/* libpq's parse errors quote what they stumbled on, which may be (part
	 * of) the password: "password=S3 cret" fails with missing "=" after
	 * "cret". Every piece of the string they show is between the message's
	 * first and last double quote (even a piece with quotes of its own), so
	 * that span goes. */
	int n = (int)strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	const char *first = valid ? NULL : memchr(msg, '"', (size_t)n);
	const char *last = first ? strrchr(msg, '"') : NULL;
	if (!first)
		snprintf(out, out_size, "%.*s", n, msg);
	else if (last > first)
		snprintf(out, out_size, "%.*s***%.*s (quoted parts hidden)", (int)(first + 1 - msg),
			 msg, n - (int)(last - msg), last);
	else /* a lone quote: keep only what precedes it */
		snprintf(out, out_size, "%.*s(the rest hidden)", (int)(first - msg), msg);
	/* One line: libpq's messages have a line per attempted host, and tabs. */
	for (char *p = out; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
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
		char red[512], msg[600];
		int parsed = db_redact_conninfo(url, red, sizeof(red)) == 0;
		db_connect_error(url, conn, msg, sizeof(msg));
		if (parsed)
			snprintf(errstr, errstr_size, "cannot connect to PostgreSQL (%s): %s",
				 *red ? red : "PG* defaults", msg);
		else
			snprintf(errstr, errstr_size,
				 "cannot connect to PostgreSQL: the connection string does not "
				 "parse (not shown): %s",
				 msg);
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
