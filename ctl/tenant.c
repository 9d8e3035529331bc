/* tenant.c - meterctl tenant add|set|show|list. */
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "event.h"
#include "num.h"

/* Options of add and set; NULL means not given, "" or "none" means clear. */
struct tenant_opts {
	const char *plan;
	const char *tz;
	const char *webhook;
	const char *secret;
	const char *email;
	const char *expires;    /* as given; check_opts() puts what is stored in expires_utc */
	const char *thresholds; /* "80,90,100", or "plan"/"none" for the plan's */
	int json;
	char expires_utc[32];   /* "2026-12-31T23:59:59.000000Z", or "" to clear */
	int expires_past;       /* the time given has passed: the plan ends at once */
};

static const char *const tenant_usage =
	"usage: meterctl tenant add|set ID [--plan P] [--tz ZONE] [--webhook URL]\n"
	"                 [--webhook-secret whsec_...] [--email ADDR] [--plan-expires TIME|none]\n"
	"                 [--thresholds 50,80,100|plan]\n"
	"       meterctl tenant show ID [--json]\n"
	"       meterctl tenant list [--json]\n"
	"  TIME: RFC 3339 with Z or an offset (2026-12-31T23:59:59Z, ...T23:59:59-03:00),\n"
	"        or a date YYYY-MM-DD (midnight UTC); none: the plan does not expire";

static int parse_opts(int argc, char **argv, int first, struct tenant_opts *o, int allow_set)
{
	memset(o, 0, sizeof(*o));
	for (int i = first; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--json") == 0) {
			o->json = 1;
			continue;
		}
		if (allow_set) {
			if ((m = ctl_opt(argc, argv, &i, "--plan", &o->plan)) ||
			    (m = ctl_opt(argc, argv, &i, "--tz", &o->tz)) ||
			    (m = ctl_opt(argc, argv, &i, "--webhook-secret", &o->secret)) ||
			    (m = ctl_opt(argc, argv, &i, "--webhook", &o->webhook)) ||
			    (m = ctl_opt(argc, argv, &i, "--email", &o->email)) ||
			    (m = ctl_opt(argc, argv, &i, "--plan-expires", &o->expires)) ||
			    (m = ctl_opt(argc, argv, &i, "--thresholds", &o->thresholds))) {
				if (m < 0)
					return -1;
				continue;
			}
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], tenant_usage);
		return -1;
	}
	return 0;
}

static int is_clear(const char *v)
{
	return v && (*v == '\0' || strcmp(v, "none") == 0);
}

static int printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || (unsigned char)*s == 0x7f)
			return 0;
	return 1;
}

/* --plan-expires: an RFC 3339 time with Z or an offset, or a date YYYY-MM-DD
 * (midnight UTC), into o->expires_utc. Nothing is left to the database to
 * read: it would take 'yesterday', 'epoch', 'infinity' (shown as no expiry)
 * and read a time without an offset in its session's zone. 0 or -1. */
static int parse_expires(struct tenant_opts *o)
{
	const char *v = o->expires;
	char full[32];
	int64_t us;
	o->expires_utc[0] = '\0';
	if (is_clear(v))
		return 0;
	if (strlen(v) == 10 && num_check_date(v, 1, 1) == 0) {
		snprintf(full, sizeof(full), "%sT00:00:00Z", v);
		v = full;
	}
	if (ev_parse_rfc3339(v, strlen(v), &us) != 0)
		return -1;
	ev_format_time(us, o->expires_utc, sizeof(o->expires_utc));
	o->expires_past = us <= (int64_t)time(NULL) * 1000000;
	return 0;
}

/* Check option values; the database checks plan and zone. 0 or CTL_USAGE. */
static int check_opts(struct tenant_opts *o)
{
	if (o->expires && parse_expires(o) != 0) {
		ctl_err("--plan-expires '%s' is not a time with a zone: give RFC 3339 with Z or an "
			"offset (2026-12-31T23:59:59Z, 2026-12-31T23:59:59-03:00), a date "
			"YYYY-MM-DD (midnight UTC), or none",
			o->expires);
		return CTL_USAGE;
	}
	if (o->webhook && !is_clear(o->webhook)) {
		size_t n = strlen(o->webhook);
		if (n > 2048 || !printable(o->webhook) ||
		    (strncmp(o->webhook, "https://", 8) != 0 &&
		     strncmp(o->webhook, "http://", 7) != 0)) {
			ctl_err("--webhook must be an http:// or https:// URL without spaces "
				"(at most 2048 bytes)");
			return CTL_USAGE;
		}
	}
	if (o->secret) {
		const char *b64 = o->secret + 6;
		size_t n = strlen(o->secret);
		unsigned char raw[128];
		int ok = strncmp(o->secret, "whsec_", 6) == 0 && n > 6 && n - 6 <= 172 &&
			 (n - 6) % 4 == 0;
		int len = ok ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)(n - 6)) : -1;
		if (len >= 0) {
			/* EVP_DecodeBlock counts '=' padding as zero bytes. */
			if (b64[n - 7] == '=')
				len--;
			if (b64[n - 8] == '=')
				len--;
		}
		if (len < 24 || len > 64) {
			ctl_err("--webhook-secret must be whsec_ followed by base64 of 24 to 64 "
				"random bytes (or leave it out to have one generated)");
			return CTL_USAGE;
		}
	}
	if (o->email && !is_clear(o->email)) {
		const char *at = strchr(o->email, '@'); /* exactly one, as the notifier wants */
		if (strlen(o->email) > 254 || !at || at == o->email || !at[1] || strchr(at + 1, '@') ||
		    !printable(o->email)) {
			ctl_err("--email must be an address like ops@example.com");
			return CTL_USAGE;
		}
	}
	if (o->plan && (!*o->plan || strlen(o->plan) > 64)) {
		ctl_err("--plan needs a plan name (see meterctl plan list)");
		return CTL_USAGE;
	}
	if (o->thresholds && strcmp(o->thresholds, "plan") != 0 &&
	    ctl_thresholds_array(o->thresholds, NULL, 0) != 0) {
		ctl_err("--thresholds must be 1 to 10 percentages between 1 and 100, e.g. "
			"50,80,100 (or 'plan' for the plan's)");
		return CTL_USAGE;
	}
	if (o->tz && (!*o->tz || strlen(o->tz) > 64 || !printable(o->tz))) {
		ctl_err("--tz needs an IANA zone name such as America/Argentina/Buenos_Aires");
		return CTL_USAGE;
	}
	return 0;
}

/* A new Standard Webhooks secret: whsec_ + base64 of 32 random bytes. */
static int new_secret(char out[64])
{
	unsigned char raw[32];
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	memcpy(out, "whsec_", 6);
	EVP_EncodeBlock((unsigned char *)out + 6, raw, sizeof(raw));
	return 0;
}

/* Check that plan and zone exist, with a message naming the bad one. */
static int check_refs(struct ctl *c, const struct tenant_opts *o)
{
	if (o->plan) {
		int rc = ctl_check_plan(c, o->plan);
		if (rc != CTL_OK)
			return rc;
	}
	if (o->tz) {
		const char *p[1] = {o->tz};
		PGresult *r = ctl_query(c, "SELECT 1 FROM pg_timezone_names WHERE name = $1"
				       " UNION ALL SELECT 1 WHERE $1 = 'UTC'", 1, p);
		if (!r)
			return CTL_FAIL;
		int found = PQntuples(r) >= 1;
		PQclear(r);
		if (!found) {
			ctl_err("unknown time zone '%s' (use an IANA name such as Europe/Madrid)",
				o->tz);
			return CTL_USAGE;
		}
	}
	return 0;
}

/* After a change: say that an expiry in the past ended the plan. */
static void warn_expired(const char *id, const struct tenant_opts *o)
{
	if (o->expires && o->expires_past)
		fprintf(stderr,
			"meterctl: warning: --plan-expires %s is in the past: the plan of %s has "
			"ended (the free plan applies)\n",
			o->expires, id);
}

static const char *val_or_null(const char *v)
{
	return is_clear(v) ? NULL : v;
}

static int tenant_add(struct ctl *c, const char *id, const struct tenant_opts *o)
{
	char secret[64];
	const char *sec = o->secret;
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	int rc = check_refs(c, o);
	if (rc)
		return rc;
	if (!sec && o->webhook && !is_clear(o->webhook)) {
		if (new_secret(secret) != 0) {
			ctl_err("cannot generate a webhook secret (no randomness)");
			return CTL_FAIL;
		}
		sec = secret;
	}
	char thrbuf[96];
	const char *thr = NULL;
	if (o->thresholds && strcmp(o->thresholds, "plan") != 0) {
		ctl_thresholds_array(o->thresholds, thrbuf, sizeof(thrbuf));
		thr = thrbuf;
	}
	const char *params[8] = {id,
				 o->plan ? o->plan : c->cfg.default_plan,
				 o->tz ? o->tz : "UTC",
				 val_or_null(o->webhook),
				 sec,
				 val_or_null(o->email),
				 o->expires_utc[0] ? o->expires_utc : NULL,
				 thr};
	/* A tenant counted before it was added (auto_created) is taken over. */
	PGresult *r = ctl_query(c, "INSERT INTO tenants (id, plan_id, tz, webhook_url, webhook_secret, email,"
		" plan_expires_at, thresholds)"
		" VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::int[])"
		" ON CONFLICT (id) DO UPDATE SET plan_id = EXCLUDED.plan_id, tz = EXCLUDED.tz,"
		" webhook_url = EXCLUDED.webhook_url, webhook_secret = EXCLUDED.webhook_secret,"
		" email = EXCLUDED.email, plan_expires_at = EXCLUDED.plan_expires_at,"
		" thresholds = EXCLUDED.thresholds,"
		" auto_created = false, updated_at = now()"
		" WHERE tenants.auto_created RETURNING id",
		8, params);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	PQclear(r);
	if (n != 1) {
		ctl_err("tenant '%s' already exists (use 'meterctl tenant set %s ...')", id, id);
		return CTL_FAIL;
	}
	printf("tenant %s added (plan %s, zone %s)\n", id, params[1], params[2]);
	warn_expired(id, o);
	return CTL_OK;
}

/* The UPDATE of tenant_set's undelivered notifications of one channel
 * after the tenant's COLUMN changed (t: the updated tenant). */
#define RETARGET(channel, column, what)                                                            \
	"UPDATE notifications n"                                                                   \
	"   SET target = coalesce(t." column ", n.target),"                                       \
	"       status = CASE WHEN t." column " IS NULL AND n.status = 'pending'"                 \
	"                     THEN 'disabled' ELSE n.status END,"                                  \
	"       last_error = CASE WHEN t." column " IS NULL AND n.status = 'pending'"             \
	"                         THEN 'the tenant''s " what " was removed' ELSE n.last_error END," \
	"       next_attempt_at = CASE WHEN n.status = 'pending'"                                  \
	"                              THEN least(n.next_attempt_at, now())"                       \
	"                              ELSE n.next_attempt_at END"                                 \
	"  FROM t WHERE n.tenant_id = t.id AND n.channel = '" channel "'"                        \
	"   AND n.status IN ('pending', 'dead') AND n.target IS DISTINCT FROM t." column          \
	"   AND (t." column " IS NOT NULL OR n.status = 'pending') RETURNING 1"

int ctl_tenant_exists(struct ctl *c, const char *tenant)
{
	const char *params[1] = {tenant};
	PGresult *r = ctl_query(c, "SELECT 1 FROM tenants WHERE id = $1", 1, params);
	if (!r)
		return -1;
	int found = PQntuples(r) == 1;
	PQclear(r);
	return found;
}

static int tenant_set(struct ctl *c, const char *id, const struct tenant_opts *o)
{
	char secret[64];
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	int rc = check_refs(c, o);
	if (rc)
		return rc;
	char thrbuf[96];
	const char *thr = NULL;
	if (o->thresholds && strcmp(o->thresholds, "plan") != 0) {
		ctl_thresholds_array(o->thresholds, thrbuf, sizeof(thrbuf));
		thr = thrbuf;
	}
	/* Column names come from this table, values only through parameters. */
	struct {
		const char *given;
		const char *value;
		const char *assign;
	} cols[] = {
		{o->plan, o->plan, "plan_id = $%d"},
		{o->tz, o->tz, "tz = $%d"},
		{o->webhook, val_or_null(o->webhook),
		 "webhook_url = $%d, webhook_disabled_at = NULL"},
		{o->secret, o->secret, "webhook_secret = $%d"},
		{o->email, val_or_null(o->email), "email = $%d"},
		{o->expires, o->expires_utc[0] ? o->expires_utc : NULL,
		 "plan_expires_at = $%d::timestamptz"},
		{o->thresholds, thr, "thresholds = $%d::int[]"},
	};
	char sql[4096] = "WITH t AS (UPDATE tenants SET updated_at = now(), auto_created = false";
	const char *params[10] = {id};
	int np = 1, changes = 0;
	for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
		if (!cols[k].given)
			continue;
		char part[96];
		snprintf(part, sizeof(part), cols[k].assign, np + 1);
		strcat(sql, ", ");
		strcat(sql, part);
		params[np++] = cols[k].value;
		changes++;
	}
	if (o->webhook && !is_clear(o->webhook) && !o->secret) {
		/* A webhook needs a secret: keep the existing one or make one. */
		if (new_secret(secret) != 0) {
			ctl_err("cannot generate a webhook secret (no randomness)");
			return CTL_FAIL;
		}
		char part[96];
		snprintf(part, sizeof(part), "webhook_secret = coalesce(webhook_secret, $%d)",
			 np + 1);
		strcat(sql, ", ");
		strcat(sql, part);
		params[np++] = secret;
	}
	if (!changes) {
		ctl_err("nothing to change\n%s", tenant_usage);
		return CTL_USAGE;
	}
	strcat(sql, " WHERE id = $1 RETURNING id, webhook_url, email)");
	/* A new webhook URL or address takes the tenant's undelivered
	 * notifications with it (pending ones due now, dead ones for `retry
	 * --dead`); one removed disables the pending ones that had it. */
	static const char *const retarget[2] = {
		", w AS (" RETARGET("webhook", "webhook_url", "webhook") ")",
		", e AS (" RETARGET("email", "email", "email address") ")",
	};
	strcat(sql, o->webhook ? retarget[0] : ", w AS (SELECT 1 WHERE false)");
	strcat(sql, o->email ? retarget[1] : ", e AS (SELECT 1 WHERE false)");
	strcat(sql, " SELECT id, (SELECT count(*) FROM w) + (SELECT count(*) FROM e) FROM t");
	PGresult *r = ctl_query(c, sql, np, params);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	char moved[24] = "0";
	if (n == 1)
		snprintf(moved, sizeof(moved), "%s", PQgetvalue(r, 0, 1));
	PQclear(r);
	if (n != 1) {
		ctl_err("no tenant '%s' (add it with 'meterctl tenant add %s')", id, id);
		return CTL_FAIL;
	}
	if (strcmp(moved, "0") != 0)
		printf("tenant %s updated (%s undelivered notification%s follow%s the change)\n", id,
		       moved, strcmp(moved, "1") ? "s" : "", strcmp(moved, "1") ? "" : "s");
	else
		printf("tenant %s updated\n", id);
	warn_expired(id, o);
	/* A new plan or expiry changes limits: clear or set flags at once. */
	return ctl_reevaluate(c, id);
}

static json_t *nullable(PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? json_null() : json_string(PQgetvalue(r, row, col));
}

static int tenant_show(struct ctl *c, const char *id, int as_json)
{
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	const char *params[1] = {id};
	PGresult *r = ctl_query(c, "SELECT t.id, t.plan_id, meter_effective_plan(t.plan_id, t.plan_expires_at), t.tz,"
		" t.webhook_url, t.webhook_secret, t.email,"
		" to_char(t.plan_expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		" t.suspended, t.suspension_reason, t.auto_created,"
		" to_char(t.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		" coalesce(t.thresholds, p.thresholds)::text, t.webhook_disabled_at IS NOT NULL"
		" FROM tenants t JOIN plans p"
		" ON p.id = meter_effective_plan(t.plan_id, t.plan_expires_at) WHERE t.id = $1",
		1, params);
	if (!r)
		return CTL_FAIL;
	if (PQntuples(r) != 1) {
		PQclear(r);
		ctl_err("no tenant '%s'", id);
		return CTL_FAIL;
	}
	if (as_json) {
		json_t *o = json_object();
		json_object_set_new(o, "id", nullable(r, 0, 0));
		json_object_set_new(o, "plan", nullable(r, 0, 1));
		json_object_set_new(o, "effective_plan", nullable(r, 0, 2));
		json_object_set_new(o, "timezone", nullable(r, 0, 3));
		json_object_set_new(o, "webhook_url", nullable(r, 0, 4));
		json_object_set_new(o, "webhook_secret", nullable(r, 0, 5));
		json_object_set_new(o, "email", nullable(r, 0, 6));
		json_object_set_new(o, "plan_expires_at", nullable(r, 0, 7));
		json_object_set_new(o, "suspended", json_boolean(*PQgetvalue(r, 0, 8) == 't'));
		json_object_set_new(o, "suspension_reason", nullable(r, 0, 9));
		json_object_set_new(o, "auto_created", json_boolean(*PQgetvalue(r, 0, 10) == 't'));
		json_object_set_new(o, "created_at", nullable(r, 0, 11));
		json_object_set_new(o, "notification_thresholds", nullable(r, 0, 12));
		json_object_set_new(o, "webhook_disabled", json_boolean(*PQgetvalue(r, 0, 13) == 't'));
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("tenant:       %s\n", PQgetvalue(r, 0, 0));
		printf("plan:         %s", PQgetvalue(r, 0, 1));
		if (strcmp(PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2)) != 0)
			printf(" (expired; %s applies)", PQgetvalue(r, 0, 2));
		printf("\n");
		if (!PQgetisnull(r, 0, 7))
			printf("plan expires: %s\n", PQgetvalue(r, 0, 7));
		printf("time zone:    %s\n", PQgetvalue(r, 0, 3));
		printf("webhook:      %s%s\n", PQgetisnull(r, 0, 4) ? "-" : PQgetvalue(r, 0, 4),
		       *PQgetvalue(r, 0, 13) == 't' ? " (disabled after a 410; set it again to enable)"
						     : "");
		printf("thresholds:   %s %%\n", PQgetvalue(r, 0, 12));
		printf("secret:       %s\n",
		       PQgetisnull(r, 0, 5) ? "-" : "(set; shown by 'tenant show ID --json')");
		printf("email:        %s\n", PQgetisnull(r, 0, 6) ? "-" : PQgetvalue(r, 0, 6));
		printf("suspended:    %s%s%s\n", *PQgetvalue(r, 0, 8) == 't' ? "yes" : "no",
		       PQgetisnull(r, 0, 9) ? "" : " - ", PQgetvalue(r, 0, 9));
		printf("created:      %s%s\n", PQgetvalue(r, 0, 11),
		       *PQgetvalue(r, 0, 10) == 't' ? " (from its first event)" : "");
	}
	PQclear(r);
	return CTL_OK;
}

static int tenant_list(struct ctl *c, int as_json)
{
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	PGresult *r = ctl_query(c, "SELECT t.id, meter_effective_plan(t.plan_id, t.plan_expires_at), t.tz,"
		" t.auto_created, coalesce(r.requests, 0), coalesce(r.input_tokens, 0)"
		" + coalesce(r.output_tokens, 0), meter_pusd_to_usd(coalesce(r.cost_pusd, 0)),"
		" coalesce(r.events, 0), coalesce(f.state, 'ok')"
		" FROM tenants t LEFT JOIN flags f ON f.subject = 'tenant/' || t.id"
		" LEFT JOIN rollups r ON r.tenant_id = t.id"
		" AND r.subject_type = 'tenant' AND r.subject_id = '' AND r.period = 'month'"
		" AND r.period_start = date_trunc('month', now() AT TIME ZONE t.tz)::date"
		" ORDER BY t.id",
		0, NULL);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	if (as_json) {
		json_t *a = json_array();
		for (int i = 0; i < n; i++) {
			int64_t req = 0, tok = 0, evs = 0;
			num_parse_i64(PQgetvalue(r, i, 4), 0, INT64_MAX, &req);
			num_parse_i64(PQgetvalue(r, i, 5), 0, INT64_MAX, &tok);
			num_parse_i64(PQgetvalue(r, i, 7), 0, INT64_MAX, &evs);
			json_array_append_new(
				a, json_pack("{s:s, s:s, s:s, s:b, s:s, s:{s:I, s:I, s:I, s:s}}", "id",
					     PQgetvalue(r, i, 0), "plan", PQgetvalue(r, i, 1),
					     "timezone", PQgetvalue(r, i, 2), "auto_created",
					     *PQgetvalue(r, i, 3) == 't', "flag", PQgetvalue(r, i, 8),
					     "month_to_date", "events", (json_int_t)evs, "requests",
					     (json_int_t)req, "tokens", (json_int_t)tok, "cost_usd",
					     PQgetvalue(r, i, 6)));
		}
		char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(a);
	} else {
		printf("%-24s %-11s %-32s %12s %14s %20s  %s\n", "TENANT", "PLAN", "ZONE",
		       "REQUESTS", "TOKENS", "COST USD (MTD)", "FLAG");
		for (int i = 0; i < n; i++)
			printf("%-24s %-11s %-32s %12s %14s %20.*s  %s%s\n", PQgetvalue(r, i, 0),
			       PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 4),
			       PQgetvalue(r, i, 5), (int)(strlen(PQgetvalue(r, i, 6)) - 6),
			       PQgetvalue(r, i, 6), PQgetvalue(r, i, 8),
			       *PQgetvalue(r, i, 3) == 't' ? " *" : "");
		if (n == 0)
			printf("(no tenants)\n");
	}
	PQclear(r);
	return CTL_OK;
}

int ctl_tenant(struct ctl *c, int argc, char **argv)
{
	struct tenant_opts o;
	if (argc < 2) {
		ctl_err("tenant needs a subcommand\n%s", tenant_usage);
		return CTL_USAGE;
	}
	const char *sub = argv[1];
	if (strcmp(sub, "list") == 0) {
		if (parse_opts(argc, argv, 2, &o, 0) != 0)
			return CTL_USAGE;
		return tenant_list(c, o.json);
	}
	int is_add = strcmp(sub, "add") == 0, is_set = strcmp(sub, "set") == 0;
	int is_show = strcmp(sub, "show") == 0;
	if (!is_add && !is_set && !is_show) {
		ctl_err("unknown tenant subcommand '%s'\n%s", sub, tenant_usage);
		return CTL_USAGE;
	}
	if (argc < 3 || argv[2][0] == '-') {
		ctl_err("tenant %s needs a tenant id\n%s", sub, tenant_usage);
		return CTL_USAGE;
	}
	const char *id = argv[2];
	if (!ctl_valid_id(id)) {
		ctl_err("'%s' is not a valid tenant id (1-128 of A-Z a-z 0-9 . _ ~ : @ + = -)", id);
		return CTL_USAGE;
	}
	if (parse_opts(argc, argv, 3, &o, !is_show) != 0)
		return CTL_USAGE;
	if (is_show)
		return tenant_show(c, id, o.json);
	int rc = check_opts(&o);
	if (rc)
		return rc;
	return is_add ? tenant_add(c, id, &o) : tenant_set(c, id, &o);
}
