/* migrate.c - apply the embedded migrations (see migrations.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "migrations.h"
#include "num.h"

static uint64_t fnv64(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* 1 if the repeatable migration name was last applied with checksum sum,
 * 0 if not, -1 on error. */
static int repeatable_current(PGconn *conn, const char *name, const char *sum, char *errstr,
			      size_t errstr_size)
{
	const char *params[] = {name, sum};
	PGresult *r = db_query(conn,
			       "SELECT 1 FROM schema_repeatables WHERE name = $1 AND checksum = $2",
			       2, params, errstr, errstr_size, NULL);
	if (!r)
		return -1;
	int n = PQntuples(r);
	PQclear(r);
	return n == 1;
}

int migrate_run(PGconn *conn, char *errstr, size_t errstr_size)
{
	int applied = 0;
	int locked = 0;
	PGresult *res = NULL;
	char *done = NULL;

	/* Session lock: several processes starting together migrate once. */
	if (db_exec(conn, "SELECT pg_advisory_lock(hashtext('meter_migrations'))", errstr,
		    errstr_size) != 0)
		goto fail;
	locked = 1;
	if (db_exec(conn,
		    "SET client_min_messages = warning;"
		    "CREATE TABLE IF NOT EXISTS schema_migrations ("
		    " version int PRIMARY KEY, name text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now());"
		    "CREATE TABLE IF NOT EXISTS schema_repeatables ("
		    " name text PRIMARY KEY, checksum text NOT NULL,"
		    " applied_at timestamptz NOT NULL DEFAULT now());"
		    "RESET client_min_messages",
		    errstr, errstr_size) != 0)
		goto fail;

	int maxv = 0;
	for (int i = 0; i < migrations_count; i++)
		if (migrations[i].version > maxv)
			maxv = migrations[i].version;
	done = calloc((size_t)maxv + 1, 1);
	if (!done) {
		snprintf(errstr, errstr_size, "out of memory");
		goto fail;
	}
	res = db_query(conn, "SELECT version FROM schema_migrations", 0, NULL, errstr,
		       errstr_size, NULL);
	if (!res)
		goto fail;
	for (int r = 0; r < PQntuples(res); r++) {
		int64_t v;
		if (num_parse_i64(PQgetvalue(res, r, 0), 0, 1000000, &v) != 0)
			continue;
		if (v > maxv) {
			snprintf(errstr, errstr_size,
				 "database schema version %d is newer than this program knows (%d): "
				 "upgrade meterd",
				 (int)v, maxv);
			goto fail;
		}
		done[v] = 1;
	}
	PQclear(res);
	res = NULL;

	for (int i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		char what[160];
		char sum[24];
		if (m->version == 0) {
			snprintf(sum, sizeof(sum), "%016llx", (unsigned long long)fnv64(m->sql));
			int cur = repeatable_current(conn, m->name, sum, errstr, errstr_size);
			if (cur < 0)
				goto fail;
			if (cur)
				continue;
			snprintf(what, sizeof(what), "repeatable migration R_%s", m->name);
		} else {
			if (done[m->version])
				continue;
			snprintf(what, sizeof(what), "migration %03d_%s", m->version, m->name);
		}
		/* Repeatables may refer to each other in any order (pg_dump does
		 * the same): bodies are checked when called, not when created. */
		if (db_exec(conn, m->version ? "BEGIN" : "BEGIN; SET LOCAL check_function_bodies = off",
			    errstr, errstr_size) != 0)
			goto fail;
		PGresult *r = PQexec(conn, m->sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
			db_describe(conn, r, what, errstr, errstr_size);
			PQclear(r);
			char ignore[64];
			db_exec(conn, "ROLLBACK", ignore, sizeof(ignore));
			goto fail;
		}
		PQclear(r);
		char vbuf[16];
		snprintf(vbuf, sizeof(vbuf), "%d", m->version);
		const char *params[] = {vbuf, m->name};
		const char *rparams[] = {m->name, sum};
		if (m->version == 0)
			r = db_query(conn,
				     "INSERT INTO schema_repeatables (name, checksum) VALUES ($1, $2)"
				     " ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum,"
				     " applied_at = now()",
				     2, rparams, errstr, errstr_size, NULL);
		else
			r = db_query(conn,
				     "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
				     params, errstr, errstr_size, NULL);
		if (!r) {
			char ignore[64];
			db_exec(conn, "ROLLBACK", ignore, sizeof(ignore));
			goto fail;
		}
		PQclear(r);
		if (db_exec(conn, "COMMIT", errstr, errstr_size) != 0)
			goto fail;
		log_info("applied %s", what);
		applied++;
	}
	free(done);
	{
		char ignore[64];
		db_exec(conn, "SELECT pg_advisory_unlock(hashtext('meter_migrations'))", ignore,
			sizeof(ignore));
	}
	return applied;
fail:
	PQclear(res);
	free(done);
	if (locked && !db_broken(conn)) {
		char ignore[64];
		db_exec(conn, "SELECT pg_advisory_unlock(hashtext('meter_migrations'))", ignore,
			sizeof(ignore));
	}
	return -1;
}
