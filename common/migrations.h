/* migrations.h - the numbered SQL migrations embedded from sql/ (see
 * sql/embed.sh) and the runner that applies them. */
#ifndef METER_MIGRATIONS_H
#define METER_MIGRATIONS_H

#include <libpq-fe.h>
#include <stddef.h>

/* version > 0: a numbered migration (sql/NNN_name.sql), applied once.
 * version 0: a repeatable one (sql/R_name.sql: functions and views written
 * with CREATE OR REPLACE), applied after the numbered ones whenever its text
 * differs from what was last applied. */
struct migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const int migrations_count;

/* Bring the database to the current schema. Idempotent and safe to run from
 * several processes at once (serialised by an advisory lock); each migration
 * runs in its own transaction and is recorded in schema_migrations (numbered)
 * or schema_repeatables (name and checksum). Returns the number applied
 * (>= 0), or -1 with errstr set. */
int migrate_run(PGconn *conn, char *errstr, size_t errstr_size);

#endif
