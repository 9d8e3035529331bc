/* handlers.c - answering API requests from PostgreSQL (see api.h).
 *
 * Database connections: one per server thread, opened on the thread's first
 * request and kept in thread-specific storage (closed when the thread ends).
 * libmicrohttpd runs a fixed pool of METER_API_THREADS threads, each with
 * its own poll loop, so this gives a bounded number of connections (one per
 * thread, plus the readiness probe's) with no pool lock and no waiting for
 * a free connection: a thread answers its requests one after another, and
 * every query is short and capped by statement_timeout. A thread per
 * connection would need a pool shared between an unbounded number of
 * threads; a shared pool behind one thread would serialise everything.
 *
 * Order of checks: route (404/405, nothing to protect), then the token
 * (401), then the tenant (403: a tenant token never learns whether another
 * tenant exists), then the parameters (400), then the data (404 for an
 * unknown tenant). Every SQL statement is fixed text with $n parameters.
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "db.h"
#include "log.h"

struct api {
	char url[CFG_STR_MAX];
	pthread_key_t conn_key;
	struct mx_metric *m_auth_fail;
	struct mx_metric *m_db_errors;
};

/* Who is asking. */
struct caller {
	char tenant[API_ID_MAX + 1]; /* "" for an operator token */
};

static void conn_close(void *p)
{
	if (p)
		PQfinish(p);
}

struct api *api_new(const struct meter_config *cfg, struct mx_registry *reg, char *errstr,
		    size_t errstr_size)
{
	struct api *a = calloc(1, sizeof(*a));
	if (!a) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	snprintf(a->url, sizeof(a->url), "%s", cfg->database_url);
	if (pthread_key_create(&a->conn_key, conn_close) != 0) {
		snprintf(errstr, errstr_size, "pthread_key_create failed");
		free(a);
		return NULL;
	}
	a->m_auth_fail = mx_counter(reg, "meter_api_auth_failures_total",
				    "Requests refused by authentication or authorisation, by reason.",
				    "reason");
	static const char *const reasons[] = {"missing", "malformed", "unknown", "revoked",
					      "forbidden"};
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		mx_touch(a->m_auth_fail, MX_L(reasons[i]));
	a->m_db_errors = mx_counter(reg, "meter_db_errors_total",
				    "Database failures while answering (the request got a 503).",
				    NULL);
	return a;
}

void api_destroy(struct api *a)
{
	if (!a)
		return;
	/* The server's threads have ended and closed their connections; this
	 * thread's, if it ever had one, is closed here. */
	PGconn *c = pthread_getspecific(a->conn_key);
	if (c)
		PQfinish(c);
	pthread_setspecific(a->conn_key, NULL);
	pthread_key_delete(a->conn_key);
	free(a);
}

/* This thread's connection, connecting if needed; NULL with errstr. */
static PGconn *thread_conn(struct api *a, char *errstr, size_t errstr_size)
{
	PGconn *c = pthread_getspecific(a->conn_key);
	if (c && !db_broken(c))
		return c;
	if (c)
		PQfinish(c);
	pthread_setspecific(a->conn_key, NULL);
	c = db_connect(a->url, "meter-api", errstr, errstr_size);
	if (!c)
		return NULL;
	if (db_exec(c, "SET statement_timeout = '5s'", errstr, errstr_size) != 0) {
		PQfinish(c);
		return NULL;
	}
	pthread_setspecific(a->conn_key, c);
	return c;
}

/* Run a query on this thread's connection, once more on a fresh connection
 * if the old one turned out broken (the server restarted since). NULL with
 * resp set to a 503 problem. */
static PGresult *query(struct api *a, struct httpd_response *resp, const char *sql, int n,
		       const char *const *params)
{
	char err[1024], state[6] = "";
	for (int attempt = 0; attempt < 2; attempt++) {
		PGconn *c = thread_conn(a, err, sizeof(err));
		if (!c)
			break;
		PGresult *r = db_query(c, sql, n, params, err, sizeof(err), state);
		if (r)
			return r;
		if (!db_broken(c))
			break;
	}
	mx_add(a->m_db_errors, NULL, 1);
	log_warnx("api: %s", err);
	if (db_schema_missing(state))
		httpd_problem(resp, 503, "the database has no meterd schema, or an older one: "
					 "an operator must run meterctl migrate");
	else
		httpd_problem(resp, 503, "the database is not available; try again shortly");
	return NULL;
}

static void unauthorized(struct api *a, struct httpd_response *resp, const char *reason,
			 const char *error, const char *detail)
{
	mx_add(a->m_auth_fail, MX_L(reason), 1);
	if (error)
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
			 "Bearer realm=\"meterd\", error=\"%s\", error_description=\"%s\"", error,
			 detail);
	else
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
			 "Bearer realm=\"meterd\"");
	httpd_problem(resp, 401, "%s", detail);
}

/* 0 with *who filled, or -1 with resp set (401 or 503). */
static int authenticate(struct api *a, const struct httpd_request *req,
			struct httpd_response *resp, struct caller *who)
{
	char token[API_TOKEN_MAX + 1];
	int rc = api_bearer(httpd_header(req, "Authorization"), token, sizeof(token));
	if (rc == -1) {
		unauthorized(a, resp, "missing", NULL,
			     "send an API token: Authorization: Bearer mtk_... (meterctl token create)");
		return -1;
	}
	if (rc != 0) {
		unauthorized(a, resp, "malformed", "invalid_token",
			     "the Authorization header is not 'Bearer <token>'");
		return -1;
	}
	char hash[API_HASH_HEX];
	api_token_hash(token, hash);
	memset(token, 0, sizeof(token));
	/* Found by its hash: no byte-by-byte comparison with a secret. The last
	 * use is recorded at most once a minute per token. */
	const char *params[1] = {hash};
	PGresult *r = query(a, resp,
			    "WITH t AS (SELECT id, tenant_id, revoked_at FROM api_tokens"
			    "           WHERE token_hash = $1),"
			    " u AS (UPDATE api_tokens k SET last_used_at = now() FROM t"
			    "        WHERE k.id = t.id AND t.revoked_at IS NULL"
			    "          AND (k.last_used_at IS NULL"
			    "               OR k.last_used_at < now() - interval '1 minute')"
			    "        RETURNING 1)"
			    " SELECT id, coalesce(tenant_id, ''), revoked_at IS NOT NULL FROM t",
			    1, params);
	if (!r)
		return -1;
	if (PQntuples(r) != 1) {
		PQclear(r);
		unauthorized(a, resp, "unknown", "invalid_token", "unknown API token");
		return -1;
	}
	if (strcmp(PQgetvalue(r, 0, 2), "t") == 0) {
		PQclear(r);
		unauthorized(a, resp, "revoked", "invalid_token", "this API token was revoked");
		return -1;
	}
	snprintf(who->tenant, sizeof(who->tenant), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	return 0;
}

/* Answer with the one text value of a one-row result; 404 when no row. */
static void answer_doc(struct httpd_response *resp, PGresult *r, const char *missing)
{
	if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
		httpd_problem(resp, 404, "%s", missing);
		return;
	}
	httpd_json(resp, 200, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
}

static void get_usage(struct api *a, const struct api_req *q, struct httpd_response *resp)
{
	const char *params[5] = {q->tenant, q->subject_type, q->subject_id, q->period,
				 q->date[0] ? q->date : NULL};
	/* meter_usage() is what meterctl usage --json prints; the API adds
	 * whether the subject is blocked now (its current flag). */
	PGresult *r = query(a, resp,
			    "SELECT (d || jsonb_build_object('blocked',"
			    "          coalesce(d->'flag'->>'state' = 'blocked', false)))::text"
			    " FROM (SELECT meter_usage($1, $2, $3, $4, $5::date) AS d) s"
			    " WHERE d IS NOT NULL",
			    5, params);
	if (!r)
		return;
	char missing[200];
	snprintf(missing, sizeof(missing), "no tenant '%s'", q->tenant);
	answer_doc(resp, r, missing);
	PQclear(r);
}

static void get_history(struct api *a, const struct api_req *q, struct httpd_response *resp)
{
	char days[16];
	snprintf(days, sizeof(days), "%d", q->days);
	const char *params[2] = {q->tenant, days};
	/* Every day of the window, in the tenant's zone, ending today; days
	 * without usage come out as zeros. */
	PGresult *r = query(
		a, resp,
		"WITH t AS (SELECT id, tz FROM tenants WHERE id = $1),"
		" d AS (SELECT ((meter_now() AT TIME ZONE t.tz)::date - g)::date AS day, t.tz"
		"        FROM t, generate_series(0, $2::int - 1) g)"
		" SELECT jsonb_build_object("
		"   'tenant', $1::text, 'subject', 'tenant/' || $1::text, 'timezone', min(d.tz),"
		"   'period', 'day', 'days', $2::int, 'from', min(d.day), 'to', max(d.day),"
		"   'totals', meter_totals_json(sum(r.events)::bigint, sum(r.requests)::bigint,"
		"       sum(r.input_tokens)::bigint, sum(r.cached_input_tokens)::bigint,"
		"       sum(r.output_tokens)::bigint, sum(r.reasoning_tokens)::bigint,"
		"       sum(r.cost_pusd)),"
		"   'series', jsonb_agg(jsonb_build_object('date', d.day)"
		"       || meter_totals_json(r.events, r.requests, r.input_tokens,"
		"          r.cached_input_tokens, r.output_tokens, r.reasoning_tokens, r.cost_pusd)"
		"       ORDER BY d.day))::text"
		" FROM d LEFT JOIN rollups r ON r.tenant_id = $1 AND r.subject_type = 'tenant'"
		"   AND r.subject_id = '' AND r.period = 'day' AND r.period_start = d.day"
		" HAVING count(*) > 0",
		2, params);
	if (!r)
		return;
	char missing[200];
	snprintf(missing, sizeof(missing), "no tenant '%s'", q->tenant);
	answer_doc(resp, r, missing);
	PQclear(r);
}

#define TOTALS(p)                                                                        \
	"meter_totals_json(" p "events::bigint, " p "requests::bigint, " p               \
	"input_tokens::bigint, " p "cached_input_tokens::bigint, " p                    \
	"output_tokens::bigint, " p "reasoning_tokens::bigint, " p "cost_pusd)"

static void get_breakdown(struct api *a, const struct api_req *q, struct httpd_response *resp)
{
	const char *params[2] = {q->tenant, q->date[0] ? q->date : NULL};
	/* The tenant's breakdown for the month (meter_breakdown: the sum of its
	 * days): dim 'operation', 'model' (name = provider/model; providers have
	 * no '/'), 'unit'. Largest cost first. */
	PGresult *r = query(
		a, resp,
		"WITH t AS (SELECT id, tz FROM tenants WHERE id = $1),"
		" m AS (SELECT coalesce($2::date,"
		"         date_trunc('month', meter_now() AT TIME ZONE t.tz)::date) AS start, t.tz"
		"        FROM t),"
		" b AS (SELECT x.* FROM m, meter_breakdown($1, 'tenant', '', 'month', m.start) x)"
		" SELECT jsonb_build_object("
		"   'tenant', $1::text, 'subject', 'tenant/' || $1::text, 'timezone', m.tz,"
		"   'month', to_char(m.start, 'YYYY-MM'), 'period_start', m.start,"
		"   'period_end', (m.start + interval '1 month')::date,"
		"   'operations', (SELECT coalesce(jsonb_agg(jsonb_build_object('operation', name)"
		"        || " TOTALS("") " ORDER BY cost_pusd DESC, name), '[]')"
		"        FROM b WHERE dim = 'operation'),"
		"   'providers', (SELECT coalesce(jsonb_agg(jsonb_build_object('provider', provider)"
		"        || " TOTALS("") " ORDER BY cost_pusd DESC, provider), '[]')"
		"        FROM (SELECT split_part(name, '/', 1) AS provider, sum(events) AS events,"
		"                sum(requests) AS requests, sum(input_tokens) AS input_tokens,"
		"                sum(cached_input_tokens) AS cached_input_tokens,"
		"                sum(output_tokens) AS output_tokens,"
		"                sum(reasoning_tokens) AS reasoning_tokens, sum(cost_pusd) AS cost_pusd"
		"              FROM b WHERE dim = 'model' GROUP BY 1) p),"
		"   'models', (SELECT coalesce(jsonb_agg(jsonb_build_object("
		"          'provider', split_part(name, '/', 1),"
		"          'model', substr(name, strpos(name, '/') + 1))"
		"        || " TOTALS("") " ORDER BY cost_pusd DESC, name), '[]')"
		"        FROM b WHERE dim = 'model'),"
		"   'units', (SELECT coalesce(jsonb_object_agg(name, quantity ORDER BY name), '{}')"
		"        FROM b WHERE dim = 'unit'))::text"
		" FROM m",
		2, params);
	if (!r)
		return;
	char missing[200];
	snprintf(missing, sizeof(missing), "no tenant '%s'", q->tenant);
	answer_doc(resp, r, missing);
	PQclear(r);
}

static void get_plans(struct api *a, struct httpd_response *resp)
{
	PGresult *r = query(
		a, resp,
		"SELECT jsonb_build_object('plans', coalesce(jsonb_agg(jsonb_build_object("
		"   'id', p.id, 'name', p.name, 'price_cents', p.price_cents,"
		"   'thresholds', to_jsonb(p.thresholds),"
		"   'limits', (SELECT coalesce(jsonb_agg(jsonb_build_object("
		"        'level', l.subject_type, 'metric', l.metric, 'period', l.period,"
		"        'limit', CASE WHEN l.limit_value IS NULL THEN 'null'::jsonb"
		"                      WHEN l.metric = 'cost' THEN to_jsonb(l.limit_value::text)"
		"                      ELSE to_jsonb(l.limit_value) END)"
		"        ORDER BY l.subject_type DESC, l.period, l.metric), '[]')"
		"      FROM plan_limits l WHERE l.plan_id = p.id))"
		"   ORDER BY p.price_cents, p.id), '[]'))::text FROM plans p",
		0, NULL);
	if (!r)
		return;
	answer_doc(resp, r, "no plans");
	PQclear(r);
}

void api_handle(void *opaque, const struct httpd_request *req, struct httpd_response *resp)
{
	struct api *a = opaque;
	struct api_req q;
	char detail[512];
	int rc = api_parse(req->method, req->path, req->query, &q, detail, sizeof(detail));
	snprintf(resp->route, sizeof(resp->route), "%s", q.template);
	if (q.route == API_R_NONE) {
		httpd_problem(resp, rc ? rc : 404, "%s", detail);
		return;
	}
	if (rc == 405) {
		snprintf(resp->allow, sizeof(resp->allow), "GET, HEAD");
		httpd_problem(resp, 405, "%s", detail);
		return;
	}
	struct caller who;
	if (authenticate(a, req, resp, &who) != 0)
		return;
	/* (An id that is no id at all is a 400 below, whoever asks.) */
	if (q.route != API_R_PLANS && who.tenant[0] && q.tenant[0] &&
	    strcmp(who.tenant, q.tenant) != 0) {
		mx_add(a->m_auth_fail, MX_L("forbidden"), 1);
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate),
			 "Bearer realm=\"meterd\", error=\"insufficient_scope\"");
		httpd_problem(resp, 403, "this token reads tenant '%s' only", who.tenant);
		return;
	}
	if (rc != 0) {
		httpd_problem(resp, rc, "%s", detail);
		return;
	}
	switch (q.route) {
	case API_R_USAGE:
		get_usage(a, &q, resp);
		break;
	case API_R_HISTORY:
		get_history(a, &q, resp);
		break;
	case API_R_BREAKDOWN:
		get_breakdown(a, &q, resp);
		break;
	case API_R_PLANS:
		get_plans(a, resp);
		break;
	case API_R_NONE:
		break;
	}
}
