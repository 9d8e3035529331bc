/* db.h - PostgreSQL helpers shared by the programs: connect, run a command
 * and check it, turn errors into one line. All SQL with values goes through
 * PQexecParams or COPY; these helpers are for fixed statements. */
#ifndef METER_DB_H
#define METER_DB_H

#include <libpq-fe.h>
#include <stddef.h>

/* Connect with a libpq connection string or URI ("" uses the PG* variables).
 * Returns a new connection, or NULL with errstr set (password redacted). */
PGconn *db_connect(const char *url, const char *app_name, char *errstr, size_t errstr_size);

/* Write conninfo (a libpq connection string or URI, as db_connect takes it)
 * into out for a log line, with every secret (password, sslpassword) as
 * "***": the options libpq parses from it, as keyword=value pairs
 * ("postgresql://u:pw@db/meter" shows as "user=u password=*** dbname=meter
 * host=db"). A database name shows as it is; NULL or "" as "". Returns 0,
 * or -1 when the string does not parse: out then says so and holds nothing
 * of it (libpq's parse may have cut the password anywhere). */
int db_redact_conninfo(const char *conninfo, char *out, size_t out_size);

/* One line for a failed connection to conninfo: PQerrorMessage(conn) (conn
 * borrowed, NULL: out of memory), except that when conninfo does not parse,
 * the quoted parts of libpq's message (pieces of the string) are hidden. */
void db_connect_error(const char *conninfo, const PGconn *conn, char *out, size_t out_size);

/* Run a fixed statement (no parameters). Returns 0, or -1 with errstr set. */
int db_exec(PGconn *conn, const char *sql, char *errstr, size_t errstr_size);

/* Run a statement with text parameters; returns the result (caller PQclears)
 * when its status is COMMAND_OK or TUPLES_OK, else NULL with errstr set and
 * *sqlstate_out (if given) filled with the five-character SQLSTATE or "". */
PGresult *db_query(PGconn *conn, const char *sql, int nparams, const char *const *params,
		   char *errstr, size_t errstr_size, char sqlstate_out[6]);

/* True when the connection is broken and must be re-established. */
int db_broken(PGconn *conn);

/* True for the SQLSTATEs of a table or function that does not exist: a
 * database that was never migrated, or migrated by an older version. */
int db_schema_missing(const char *sqlstate);

/* One line describing a failed result or connection (for a missing table
 * or function: that the database needs `meterctl migrate`). */
void db_describe(PGconn *conn, const PGresult *res, const char *what, char *errstr,
		 size_t errstr_size);

#endif
