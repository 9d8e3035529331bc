/* check.c - meterctl check and meterctl emit, through libmeter: the same
 * path a service takes, for shell scripts and services in other languages. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "meter.h"

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
			   meter_prop_t *props, struct deliveries *counts)
{
	meter_opts_t o;
	meter_opts_init(&o);
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

int ctl_check(struct ctl *c, int argc, char **argv)
{
	const char *usage = "usage: meterctl check TENANT [--user U] [--key K] [--json]\n"
			    "  exit 0: allowed, 3: blocked, 1: the limits topic could not be read";
	const char *user = NULL, *key = NULL;
	int as_json = 0;
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
		if ((m = ctl_opt(argc, argv, &i, "--user", &user)) ||
		    (m = ctl_opt(argc, argv, &i, "--key", &key))) {
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
	meter_prop_t props[CFG_MAX_PROPS];
	meter_t *m = open_meter(c, 0, 1, NULL, props, NULL);
	if (!m)
		return CTL_FAIL;
	if (meter_wait_ready(m, 15000) != 1) {
		meter_stats_t st;
		meter_stats(m, &st);
		ctl_err("could not read %s within 15 s (%s)", c->cfg.topic_limits,
			*st.last_error ? st.last_error : "no answer from the brokers");
		meter_destroy(m);
		return CTL_FAIL;
	}
	meter_decision_t d;
	int rc = meter_check(m, argv[1], user, key, &d);
	meter_destroy(m);
	if (rc < 0) {
		ctl_err("check failed (%d)", rc);
		return CTL_FAIL;
	}
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
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(o);
	} else if (d.allowed) {
		printf("allowed\n");
	} else {
		printf("blocked: %s (%s)", d.reason, d.subject);
		if (d.retry_after_seconds > 0)
			printf("; retry after %lld s", (long long)d.retry_after_seconds);
		printf("\n");
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
		ctl_err("cannot open %s", file);
		return CTL_FAIL;
	}
	meter_prop_t props[CFG_MAX_PROPS];
	struct deliveries counts = {0, 0};
	meter_t *m = open_meter(c, 1, 0, topic, props, &counts);
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
