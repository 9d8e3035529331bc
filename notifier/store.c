/* store.c - the database side of the notifier: LISTEN for new rows, claim
 * due rows, record attempts and outcomes. All SQL has parameters.
 *
 * Claiming: one statement picks due pending rows with FOR UPDATE SKIP
 * LOCKED (so notifiers running side by side never wait for, or take, each
 * other's rows), counts the attempt and moves next_attempt_at forward by a
 * lease - the channel's transfer timeout plus LEASE_MARGIN_MS. A notifier
 * that dies mid-delivery records nothing; its rows fall due again when the
 * lease ends and are delivered again with the same id.
 *
 * Recording: the attempt row and the new state of the notification in one
 * statement. A failure is applied only while the row is still the one this
 * notifier claimed (same attempts count): after an expired lease another
 * notifier owns the row. A success is applied to any pending row.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "log.h"
#include "notifier.h"
#include "num.h"

/* Time between a transfer's timeout and its lease ending: the claim, the
 * transfer's start and the recording must fit in it. */
#define LEASE_MARGIN_MS 10000

/* PostgreSQL type OIDs (pg_type.h is server-side). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_INT4 23
#define OID_TEXT 25

struct ntf_store {
	const struct meter_config *cfg;
	PGconn *conn;
};

struct ntf_store *ntf_store_new(const struct meter_config *cfg)
{
	struct ntf_store *s = calloc(1, sizeof(*s));
	if (s)
		s->cfg = cfg;
	return s;
}

void ntf_store_disconnect(struct ntf_store *s)
{
	if (s && s->conn) {
		PQfinish(s->conn);
		s->conn = NULL;
	}
}

void ntf_store_destroy(struct ntf_store *s)
{
	if (!s)
		return;
	ntf_store_disconnect(s);
	free(s);
}

int ntf_store_connected(const struct ntf_store *s)
{
	return s->conn != NULL;
}

int ntf_store_socket(const struct ntf_store *s)
{
	return s->conn ? PQsocket(s->conn) : -1;
}

int ntf_store_connect(struct ntf_store *s, char *errstr, size_t errstr_size)
{
	ntf_store_disconnect(s);
	s->conn = db_connect(s->cfg->database_url, "meter-notifier", errstr, errstr_size);
	if (!s->conn)
		return -1;
	/* Never hang on a stuck server or a row lock: fail, back off, retry. */
	if (db_exec(s->conn, "SET statement_timeout = '30s'", errstr, errstr_size) != 0 ||
	    db_exec(s->conn, "SET lock_timeout = '10s'", errstr, errstr_size) != 0 ||
	    db_exec(s->conn, "LISTEN meter_notifications", errstr, errstr_size) != 0) {
		ntf_store_disconnect(s);
		return -1;
	}
	return 0;
}

/* After a failed statement: drop a broken connection so the loop reconnects. */
static void check_broken(struct ntf_store *s)
{
	if (s->conn && db_broken(s->conn))
		ntf_store_disconnect(s);
}

int ntf_store_consume(struct ntf_store *s)
{
	if (!s->conn)
		return -1;
	if (!PQconsumeInput(s->conn)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", PQerrorMessage(s->conn));
		for (char *p = msg; *p; p++)
			if (*p == '\n' || *p == '\t')
				*p = ' ';
		log_warnx("lost the database connection: %s", msg);
		ntf_store_disconnect(s);
		return -1;
	}
	int woke = 0;
	PGnotify *n;
	while ((n = PQnotifies(s->conn)) != NULL) {
		woke = 1;
		PQfreemem(n);
	}
	return woke;
}

void ntf_note_free(struct ntf_note *n)
{
	if (!n)
		return;
	if (n->strings)
		OPENSSL_cleanse(n->strings, n->strings_len);
	free(n->strings);
	free(n);
}

/* Columns of the claim, in order. */
enum {
	C_ID, C_ATTEMPTS, C_CHANNEL, C_TARGET, C_PAYLOAD, C_SECRET, C_DISABLED, C_MSG_ID,
	C_TENANT, C_STYPE, C_SID, C_METRIC, C_PERIOD, C_PSTART, C_THRESHOLD, C_LIMIT, C_USED,
	C_REMAINING, C_PERCENT, C_RESETS_UTC, C_RESETS_LOCAL, C_TZ, C_COUNT
};

static const char claim_sql[] =
	"WITH due AS ("
	"  SELECT id FROM notifications"
	"   WHERE status = 'pending' AND next_attempt_at <= now()"
	"     AND (channel = 'webhook' OR $2::boolean)"
	"   ORDER BY next_attempt_at, id"
	"   LIMIT $1"
	"   FOR UPDATE SKIP LOCKED"
	"), claimed AS ("
	"  UPDATE notifications n"
	"     SET attempts = n.attempts + 1,"
	"         next_attempt_at = now() + CASE WHEN n.channel = 'webhook' THEN $3::bigint"
	"                                        ELSE $4::bigint END * interval '1 millisecond'"
	"    FROM due WHERE n.id = due.id"
	"  RETURNING n.*"
	")"
	" SELECT c.id, c.attempts, c.channel, c.target, c.payload::text, t.webhook_secret,"
	"        t.webhook_disabled_at IS NOT NULL, c.msg_id, c.tenant_id, c.subject_type,"
	"        c.subject_id, c.metric, c.period, c.period_start::text, c.threshold::text,"
	"        c.limit_value::text, c.used::text,"
	"        coalesce(c.payload->>'remaining', greatest(c.limit_value - c.used, 0)::text),"
	"        coalesce(c.payload->>'percent', CASE WHEN c.limit_value = 0 THEN '100.00'"
	"                 ELSE round(c.used * 100.0 / c.limit_value, 2)::text END),"
	"        coalesce(to_char(c.resets_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI'), ''),"
	"        coalesce(to_char(c.resets_at AT TIME ZONE t.tz, 'YYYY-MM-DD HH24:MI'), ''),"
	"        coalesce(t.tz, '')"
	"   FROM claimed c LEFT JOIN tenants t ON t.id = c.tenant_id"
	"  ORDER BY c.id";

static struct ntf_note *note_from_row(const PGresult *r, int row)
{
	size_t total = 0;
	for (int c = 0; c < C_COUNT; c++)
		total += (size_t)PQgetlength(r, row, c) + 1;
	struct ntf_note *n = calloc(1, sizeof(*n));
	char *p = n ? malloc(total) : NULL;
	if (!p) {
		free(n);
		return NULL;
	}
	n->strings = p;
	n->strings_len = total;
	const char *col[C_COUNT];
	for (int c = 0; c < C_COUNT; c++) {
		size_t l = (size_t)PQgetlength(r, row, c);
		memcpy(p, PQgetvalue(r, row, c), l);
		p[l] = '\0';
		col[c] = PQgetisnull(r, row, c) ? NULL : p;
		p += l + 1;
	}
	int64_t v;
	n->id = num_parse_i64(col[C_ID], 1, INT64_MAX, &v) == 0 ? v : 0;
	n->attempt = num_parse_i64(col[C_ATTEMPTS], 0, 1000000, &v) == 0 ? (int)v : 1;
	n->is_webhook = col[C_CHANNEL] && strcmp(col[C_CHANNEL], "webhook") == 0;
	n->tenant_disabled = col[C_DISABLED] && col[C_DISABLED][0] == 't';
	n->target = (char *)(col[C_TARGET] ? col[C_TARGET] : "");
	n->payload = (char *)(col[C_PAYLOAD] ? col[C_PAYLOAD] : "");
	n->secret = (char *)col[C_SECRET];
#define S(c) (col[c] ? col[c] : "")
	n->f.msg_id = S(C_MSG_ID);
	n->f.tenant_id = S(C_TENANT);
	n->f.subject_type = S(C_STYPE);
	n->f.subject_id = S(C_SID);
	n->f.metric = S(C_METRIC);
	n->f.period = S(C_PERIOD);
	n->f.period_start = S(C_PSTART);
	n->f.threshold = S(C_THRESHOLD);
	n->f.limit = S(C_LIMIT);
	n->f.used = S(C_USED);
	n->f.remaining = S(C_REMAINING);
	n->f.percent = S(C_PERCENT);
	n->f.resets_utc = S(C_RESETS_UTC);
	n->f.resets_local = S(C_RESETS_LOCAL);
	n->f.tz = S(C_TZ);
#undef S
	return n;
}

int ntf_store_claim(struct ntf_store *s, int limit, int with_email, struct ntf_note ***out,
		    char *errstr, size_t errstr_size)
{
	*out = NULL;
	if (!s->conn) {
		snprintf(errstr, errstr_size, "not connected to the database");
		return -1;
	}
	char lim[16], wl[24], el[24];
	snprintf(lim, sizeof(lim), "%d", limit);
	snprintf(wl, sizeof(wl), "%lld", (long long)(s->cfg->webhook_timeout_ms + LEASE_MARGIN_MS));
	snprintf(el, sizeof(el), "%lld", (long long)(s->cfg->smtp_timeout_ms + LEASE_MARGIN_MS));
	const char *params[4] = {lim, with_email ? "t" : "f", wl, el};
	PGresult *r = db_query(s->conn, claim_sql, 4, params, errstr, errstr_size, NULL);
	if (!r) {
		check_broken(s);
		return -1;
	}
	int rows = PQntuples(r);
	struct ntf_note **notes = rows ? calloc((size_t)rows, sizeof(*notes)) : NULL;
	int n = 0;
	for (int i = 0; i < rows && notes; i++) {
		struct ntf_note *note = note_from_row(r, i);
		if (note)
			notes[n++] = note;
		/* A row we could not copy (no memory) is not lost: its lease ends. */
	}
	PQclear(r);
	*out = notes;
	return n;
}

int64_t ntf_store_next_due_ms(struct ntf_store *s, int with_email, char *errstr,
			      size_t errstr_size)
{
	if (!s->conn) {
		snprintf(errstr, errstr_size, "not connected to the database");
		return -2;
	}
	const char *params[1] = {with_email ? "t" : "f"};
	PGresult *r = db_query(s->conn,
			       "SELECT greatest(0, ceil(extract(epoch FROM min(next_attempt_at)"
			       " - clock_timestamp()) * 1000))::bigint"
			       "  FROM notifications WHERE status = 'pending'"
			       "   AND (channel = 'webhook' OR $1::boolean)"
			       /* None pending: no row (greatest(0, NULL) would be 0,
				* "due now", and an idle notifier would poll 5 times a
				* second instead of every METER_NOTIFY_POLL). */
			       " HAVING min(next_attempt_at) IS NOT NULL",
			       1, params, errstr, errstr_size, NULL);
	if (!r) {
		check_broken(s);
		return -2;
	}
	int64_t ms = -1;
	if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) &&
	    num_parse_i64(PQgetvalue(r, 0, 0), 0, INT64_MAX, &ms) != 0)
		ms = -1;
	PQclear(r);
	return ms;
}

/* The attempt row; every statement below starts with it. $9 says whether
 * to write it; the notification may have been deleted meanwhile. */
#define ATTEMPT_CTE                                                                              \
	"WITH a AS ("                                                                            \
	"  INSERT INTO notification_attempts (notification_id, attempted_at, duration_ms,"      \
	"                                     http_status, error, response_snippet)"            \
	"  SELECT $1, timestamptz 'epoch' + $2 * interval '1 microsecond', $3, $4, $5, $6"       \
	"   WHERE $9 AND EXISTS (SELECT 1 FROM notifications WHERE id = $1)"                   \
	") "

static const char rec_delivered[] =
	ATTEMPT_CTE "UPDATE notifications SET status = 'delivered', delivered_at = now()"
		    " WHERE id = $1 AND status = 'pending'";

static const char rec_retry[] =
	ATTEMPT_CTE "UPDATE notifications"
		    "   SET next_attempt_at = now() + $8 * interval '1 millisecond',"
		    "       last_error = $5"
		    " WHERE id = $1 AND status = 'pending' AND attempts = $7";

static const char rec_dead[] =
	ATTEMPT_CTE "UPDATE notifications SET status = 'dead', last_error = $5"
		    " WHERE id = $1 AND status = 'pending' AND attempts = $7";

/* Interrupted by our own shutdown: due again at once, and the attempt is
 * given back (it may or may not have reached the receiver). */
static const char rec_interrupted[] =
	ATTEMPT_CTE "UPDATE notifications"
		    "   SET next_attempt_at = now(), attempts = attempts - 1, last_error = $5"
		    " WHERE id = $1 AND status = 'pending' AND attempts = $7";

/* 410 Gone: this row is disabled; so is the tenant's webhook when its URL
 * is still the one that answered, with every other pending webhook of the
 * tenant to that URL (the rows that meterd creates skip disabled tenants). */
static const char rec_disabled[] =
	ATTEMPT_CTE ", u AS ("
		    "  UPDATE notifications SET status = 'disabled', last_error = $5"
		    "   WHERE id = $1 AND status = 'pending' RETURNING tenant_id, target"
		    "), t AS ("
		    "  UPDATE tenants t SET webhook_disabled_at = now()"
		    "    FROM u WHERE t.id = u.tenant_id AND t.webhook_url = u.target"
		    "     AND t.webhook_disabled_at IS NULL AND $10::text IS NOT NULL"
		    "  RETURNING t.id, t.webhook_url"
		    ")"
		    " UPDATE notifications n"
		    "    SET status = 'disabled', last_error = $10"
		    "   FROM t"
		    "  WHERE n.tenant_id = t.id AND n.channel = 'webhook' AND n.status = 'pending'"
		    "    AND n.target = t.webhook_url AND n.id <> $1";

int ntf_store_record(struct ntf_store *s, const struct ntf_result *r, char *errstr,
		     size_t errstr_size)
{
	if (!s->conn) {
		snprintf(errstr, errstr_size, "not connected to the database");
		return -1;
	}
	const char *sql = rec_retry;
	switch (r->outcome) {
	case NTF_DELIVERED: sql = rec_delivered; break;
	case NTF_RETRY: sql = rec_retry; break;
	case NTF_DEAD: sql = rec_dead; break;
	case NTF_DISABLED: sql = rec_disabled; break;
	case NTF_INTERRUPTED: sql = rec_interrupted; break;
	}
	char id[24], started[24], dur[24], status[24], attempt[16], retry[24];
	char others[200];
	snprintf(id, sizeof(id), "%lld", (long long)r->id);
	snprintf(started, sizeof(started), "%lld", (long long)r->started_us);
	snprintf(dur, sizeof(dur), "%lld",
		 (long long)(r->duration_ms > 2000000000 ? 2000000000 : r->duration_ms));
	snprintf(status, sizeof(status), "%ld", r->status);
	snprintf(attempt, sizeof(attempt), "%d", r->attempt);
	snprintf(retry, sizeof(retry), "%lld", (long long)r->retry_ms);
	/* For a 410 that disables the tenant's webhook: why the others stop. */
	snprintf(others, sizeof(others),
		 "not sent: the endpoint answered 410 Gone to %s; the tenant's webhook is "
		 "disabled",
		 r->msg_id);
	const char *params[10] = {
		id,
		started,
		dur,
		r->status > 0 ? status : NULL,
		r->error[0] ? r->error : NULL,
		r->snippet[0] ? r->snippet : NULL,
		attempt,
		retry,
		r->record_attempt ? "t" : "f",
		r->outcome == NTF_DISABLED && r->status == 410 ? others : NULL,
	};
	static const Oid types[10] = {OID_INT8, OID_INT8, OID_INT4, OID_INT4, OID_TEXT,
				      OID_TEXT, OID_INT4, OID_INT8, OID_BOOL, OID_TEXT};
	PGresult *res = PQexecParams(s->conn, sql, 10, types, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		db_describe(s->conn, res, "recording a delivery attempt failed", errstr,
			    errstr_size);
		PQclear(res);
		check_broken(s);
		return -1;
	}
	PQclear(res);
	return 0;
}
