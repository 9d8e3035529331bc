/* check.c - meterctl check and meterctl emit, through libmeter: the same
 * path a service takes, for shell scripts and services in other languages. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "meter.h"
#include "num.h"

/* check's exit code when the call is not allowed. */
#define CTL_BLOCKED 3

struct deliveries {
	long ok, failed;
};

/* Delivery reports come from a libmeter thread; meterctl reads the counts
 * only after meter_destroy() has joined it. */
static void on_delivery(const meter_delivery_t *d, void *opaque)
{
	struct deliveries *n = opaque;
	if (d->ok) {
		n->ok++;
	} else {
		n->failed++;
		fprintf(stderr, "meterctl: event for %s not delivered: %s\n", d->tenant, d->error);
	}
}

static meter_t *open_meter(struct ctl *c, int emit, int check, const char *topic,
			   meter_prop_t *props, struct deliveries *counts, int rollups)
{
	meter_opts_t o;
	meter_opts_init(&o);
	o.follow_rollups = rollups;
	o.rollups_topic = c->cfg.topic_rollups;
	if (counts) {
		o.on_delivery = on_delivery;
		o.delivery_opaque = counts;
	}
	o.emit = emit;
	o.check = check;
	o.events_topic = topic ? topic : c->cfg.topic_events;
	o.limits_topic = c->cfg.topic_limits;
	o.source = "//meterctl";
	for (int i = 0; i < c->cfg.nprops; i++) {
		props[i].name = c->cfg.prop_name[i];
		props[i].value = c->cfg.prop_value[i];
	}
	o.props = props;
	o.props_count = (size_t)c->cfg.nprops;
	o.flush_timeout_ms = 30000;
	char err[512];
	meter_t *m = meter_new(c->cfg.kafka_brokers, &o, err, sizeof(err));
	if (!m)
		ctl_err("%s", err);
	return m;
}

static void rfc3339(int64_t epoch_s, char *out, size_t size)
{
	time_t t = (time_t)epoch_s;
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, size, "%lld", (long long)epoch_s);
}

/* One metric of the remaining amounts, as JSON (null: no limit known). */
static json_t *remaining_json(int64_t left, int64_t limit, int64_t reset, const char *subject,
			      const char *period)
{
	char when[32];
	if (left < 0)
		return json_null();
	rfc3339(reset, when, sizeof(when));
	return json_pack("{s:I, s:o, s:s, s:s, s:s}", "remaining", (json_int_t)left, "limit",
			 limit >= 0 ? json_integer(limit) : json_null(), "resets_at", when,
			 "subject", subject, "period", period);
}

static void remaining_text(const char *metric, int64_t left, int64_t limit, int64_t reset,
			   const char *subject, const char *period)
{
	char when[32];
	if (left < 0) {
		printf("  %-9s no limit known\n", metric);
		return;
	}
	rfc3339(reset, when, sizeof(when));
	printf("  %-9s %lld remaining", metric, (long long)left);
	if (limit >= 0)
		printf(" of %lld", (long long)limit);
	printf(" (%s, %s, resets %s)\n", subject, period, when);
}

int ctl_check(struct ctl *c, int argc, char **argv)
{
	const char *usage =
		"usage: meterctl check TENANT [--user U] [--key K] [--estimate-requests N]\n"
		"                     [--estimate-tokens N] [--remaining] [--json]\n"
		"  exit 0: allowed, 3: blocked, 1: the topics could not be read\n"
		"  --estimate-*: also blocked when the estimate exceeds what remains of a\n"
		"  current day or month limit (from usage.rollups, advisory); they and\n"
		"  --remaining print the remaining requests and tokens";
	const char *user = NULL, *key = NULL, *est_req = NULL, *est_tok = NULL;
	int64_t n_req = 0, n_tok = 0;
	int as_json = 0, with_rollups = 0;
	if (argc < 2 || argv[1][0] == '-') {
		ctl_err("check needs a tenant\n%s", usage);
		return CTL_USAGE;
	}
	for (int i = 2; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if (strcmp(argv[i], "--remaining") == 0) {
			with_rollups = 1;
			continue;
		}
		if ((m = ctl_opt(argc, argv, &i, "--user", &user)) ||
		    (m = ctl_opt(argc, argv, &i, "--key", &key)) ||
		    (m = ctl_opt(argc, argv, &i, "--estimate-requests", &est_req)) ||
		    (m = ctl_opt(argc, argv, &i, "--estimate-tokens", &est_tok))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], usage);
		return CTL_USAGE;
	}
	if (!ctl_valid_id(argv[1]) || (user && !ctl_valid_id(user)) ||
	    (key && !ctl_valid_id(key))) {
		ctl_err("bad tenant, user or key id\n%s", usage);
		return CTL_USAGE;
	}
	if ((est_req && num_parse_i64(est_req, 0, INT64_MAX, &n_req) != 0) ||
	    (est_tok && num_parse_i64(est_tok, 0, INT64_MAX, &n_tok) != 0)) {
		ctl_err("--estimate-requests and --estimate-tokens take an integer >= 0\n%s", usage);
		return CTL_USAGE;
	}
	with_rollups |= est_req || est_tok;
	meter_prop_t props[CFG_MAX_PROPS];
	meter_t *m = open_meter(c, 0, 1, NULL, props, NULL, with_rollups);
	if (!m)
		return CTL_FAIL;
	if (meter_wait_ready(m, 15000) != 1) {
		meter_stats_t st;
		meter_stats(m, &st);
		ctl_err("could not read %s%s%s within 15 s (%s)", c->cfg.topic_limits,
			with_rollups ? " and " : "", with_rollups ? c->cfg.topic_rollups : "",
			*st.last_error ? st.last_error : "no answer from the brokers");
		meter_destroy(m);
		return CTL_FAIL;
	}
	meter_decision_t d;
	meter_remaining_t r;
	char headers[512] = "";
	int rc = with_rollups ? meter_check_estimate(m, argv[1], user, key, n_req, n_tok, &d, &r)
			      : meter_check(m, argv[1], user, key, &d);
	meter_destroy(m);
	if (rc < 0) {
		ctl_err("check failed (%d)", rc);
		return CTL_FAIL;
	}
	if (with_rollups)
		meter_format_headers(&d, &r, headers, sizeof(headers));
	if (as_json) {
		json_t *o = json_pack("{s:s, s:b}", "tenant", argv[1], "allowed", d.allowed);
		if (!d.allowed) {
			json_object_set_new(o, "subject", json_string(d.subject));
			json_object_set_new(o, "metric", json_string(d.metric));
			json_object_set_new(o, "period", json_string(d.period));
			json_object_set_new(o, "limit", json_string(d.limit));
			json_object_set_new(o, "used", json_string(d.used));
			json_object_set_new(o, "until", d.until ? json_integer(d.until) : json_null());
			json_object_set_new(o, "retry_after_seconds",
					    json_integer(d.retry_after_seconds));
			json_object_set_new(o, "manual", json_boolean(d.manual));
			json_object_set_new(o, "reason", json_string(d.reason));
		}
		if (with_rollups) {
			json_t *h = json_object();
			/* "Name: value\r\n" lines into an object. */
			for (char *line = headers, *eol; (eol = strstr(line, "\r\n")); line = eol + 2) {
				char *colon = strstr(line, ": ");
				*eol = '\0';
				if (colon && colon < eol) {
					*colon = '\0';
					json_object_set_new(h, line, json_string(colon + 2));
				}
			}
			json_object_set_new(o, "estimate",
					    json_pack("{s:I, s:I, s:b}", "requests", (json_int_t)n_req,
						      "tokens", (json_int_t)n_tok, "exceeds",
						      r.over_estimate));
			json_object_set_new(o, "remaining",
					    json_pack("{s:o, s:o, s:i, s:o}", "requests",
						      remaining_json(r.requests, r.requests_limit,
								     r.requests_reset,
								     r.requests_subject,
								     r.requests_period),
						      "tokens",
						      remaining_json(r.tokens, r.tokens_limit,
								     r.tokens_reset, r.tokens_subject,
								     r.tokens_period),
						      "records", r.known, "as_of",
						      r.as_of ? json_integer(r.as_of) : json_null()));
			json_object_set_new(o, "headers", h);
		}
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else {
		if (d.allowed) {
			printf("allowed\n");
		} else {
			printf("blocked: %s (%s)", d.reason, d.subject);
			if (d.retry_after_seconds > 0)
				printf("; retry after %lld s", (long long)d.retry_after_seconds);
			printf("\n");
		}
		if (with_rollups) {
			char when[32] = "";
			if (r.as_of)
				rfc3339(r.as_of, when, sizeof(when));
			printf("remaining (advisory: usage counted up to %s):\n",
			       r.as_of ? when : "nothing counted this period yet");
			remaining_text("requests", r.requests, r.requests_limit, r.requests_reset,
				       r.requests_subject, r.requests_period);
			remaining_text("tokens", r.tokens, r.tokens_limit, r.tokens_reset,
				       r.tokens_subject, r.tokens_period);
		}
	}
	return d.allowed ? CTL_OK : CTL_BLOCKED;
}

int ctl_emit(struct ctl *c, int argc, char **argv)
{
	const char *usage = "usage: meterctl emit --file FILE.jsonl|- [--topic T]\n"
			    "  one usage event (JSON) per line, keyed by its tenant";
	const char *file = NULL, *topic = NULL;
	for (int i = 1; i < argc; i++) {
		int m;
		if ((m = ctl_opt(argc, argv, &i, "--file", &file)) ||
		    (m = ctl_opt(argc, argv, &i, "--topic", &topic))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], usage);
		return CTL_USAGE;
	}
	if (!file) {
		ctl_err("emit needs --file\n%s", usage);
		return CTL_USAGE;
	}
	FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "r");
	if (!f) {
		ctl_err("cannot open %s: %s", file, strerror(errno));
		return CTL_FAIL;
	}
	meter_prop_t props[CFG_MAX_PROPS];
	struct deliveries counts = {0, 0};
	meter_t *m = open_meter(c, 1, 0, topic, props, &counts, 0);
	if (!m) {
		if (f != stdin)
			fclose(f);
		return CTL_FAIL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	long lineno = 0, sent = 0, bad = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		char err[512];
		int rc = meter_emit_json(m, NULL, line, (size_t)n, err, sizeof(err));
		if (rc == METER_OK) {
			sent++;
		} else {
			bad++;
			fprintf(stderr, "meterctl: %s:%ld: %s\n", file, lineno, err);
		}
	}
	free(line);
	if (f != stdin)
		fclose(f);
	meter_destroy(m); /* waits (bounded) for the deliveries */
	printf("%ld event%s delivered, %ld not delivered, %ld refused\n", counts.ok,
	       counts.ok == 1 ? "" : "s", sent - counts.ok, bad);
	return (bad || counts.ok != sent) ? CTL_FAIL : CTL_OK;
}
