/* config.c - see config.h. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "num.h"

extern char **environ;

enum cfg_type { CFG_T_STR, CFG_T_INT, CFG_T_DURATION, CFG_T_BOOL, CFG_T_ENUM };

struct cfg_opt {
	const char *name;   /* flag: --name */
	const char *env;    /* environment variable */
	enum cfg_type type;
	const char *def;    /* default, as text */
	size_t offset;      /* where it lands in struct meter_config */
	size_t size;        /* for strings: buffer size */
	int64_t min, max;   /* for integers and durations (ms) */
	const char *choices; /* for enums: "a|b|c" */
	unsigned progs;
	const char *desc;
};

#define OFF(f) offsetof(struct meter_config, f)
#define SZ(f) sizeof(((struct meter_config *)0)->f)
#define STR(n, e, d, f, p, desc) {n, e, CFG_T_STR, d, OFF(f), SZ(f), 0, 0, NULL, p, desc}
#define INT(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_INT, d, OFF(f), 0, lo, hi, NULL, p, desc}
#define DUR(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_DURATION, d, OFF(f), 0, lo, hi, NULL, p, desc}
#define BOOL(n, e, d, f, p, desc) {n, e, CFG_T_BOOL, d, OFF(f), 0, 0, 1, NULL, p, desc}
#define ENUM(n, e, d, f, ch, p, desc) {n, e, CFG_T_ENUM, d, OFF(f), SZ(f), 0, 0, ch, p, desc}

static const struct cfg_opt opts[] = {
	STR("kafka-brokers", "METER_KAFKA_BROKERS", "localhost:9092", kafka_brokers,
	    CFG_METERD | CFG_CTL, "Kafka bootstrap servers (host:port,...)."),
	STR("database-url", "METER_DATABASE_URL", "", database_url, CFG_ALL,
	    "PostgreSQL connection string or URI; empty uses libpq's PG* variables."),
	STR("group-id", "METER_GROUP_ID", "meterd", group_id, CFG_METERD,
	    "Kafka consumer group; also the key of the offsets stored in PostgreSQL."),
	STR("topic-events", "METER_TOPIC_EVENTS", "usage.events", topic_events,
	    CFG_METERD | CFG_CTL, "Topic of usage events (key = tenant id)."),
	STR("topic-dlq", "METER_TOPIC_DLQ", "usage.events.dlq", topic_dlq, CFG_METERD,
	    "Dead-letter topic for rejected events (reason in headers)."),
	STR("topic-limits", "METER_TOPIC_LIMITS", "usage.limits", topic_limits,
	    CFG_METERD | CFG_CTL, "Topic of over-limit flags (key = subject)."),
	STR("topic-rollups", "METER_TOPIC_ROLLUPS", "usage.rollups", topic_rollups, CFG_METERD,
	    "Topic of rollups for billing (key = subject and period)."),
	INT("batch-max", "METER_BATCH_MAX", "5000", batch_max, 1, 1000000, CFG_METERD,
	    "Most messages in one batch (one database transaction)."),
	DUR("batch-wait", "METER_BATCH_WAIT", "100ms", batch_wait_ms, 1, 600000, CFG_METERD,
	    "Longest time to wait while filling a batch."),
	INT("max-event-bytes", "METER_MAX_EVENT_BYTES", "65536", max_event_bytes, 256, 16777216,
	    CFG_METERD, "Events larger than this are rejected (too_large)."),
	DUR("max-lateness", "METER_MAX_LATENESS", "72h", max_lateness_ms, 0, 366LL * 86400000 * 20,
	    CFG_METERD, "Events older than this are rejected (too_late)."),
	DUR("max-future", "METER_MAX_FUTURE", "5m", max_future_ms, 0, 86400000LL * 7, CFG_METERD,
	    "Events this far ahead of the clock are rejected (time_in_future)."),
	STR("default-plan", "METER_DEFAULT_PLAN", "free", default_plan, CFG_METERD | CFG_CTL,
	    "Plan given to tenants whose events arrive before they are added."),
	BOOL("migrate", "METER_MIGRATE", "true", migrate, CFG_METERD,
	     "Apply database migrations at start (idempotent)."),
	STR("http-addr", "METER_HTTP_ADDR", "", http_addr, CFG_METERD | CFG_NOTIFIER,
	    "Reserved for /metrics, /livez, /readyz (not served yet: see the issues)."),
	ENUM("log-format", "METER_LOG_FORMAT", "text", log_format, "text|json", CFG_ALL,
	     "Log record format on stderr."),
	ENUM("log-level", "METER_LOG_LEVEL", "info", log_level, "debug|info|warn|error", CFG_ALL,
	     "Least severe level logged."),
	DUR("shutdown-grace", "METER_SHUTDOWN_GRACE", "30s", shutdown_grace_ms, 0, 3600000,
	    CFG_METERD | CFG_NOTIFIER, "On SIGTERM, time allowed to finish the batch and flush."),
	STR("smtp-url", "METER_SMTP_URL", "", smtp_url, CFG_NOTIFIER,
	    "SMTP server for email notifications: smtp://host:port or smtps://host:port; "
	    "empty: emails stay pending until a notifier with SMTP runs."),
	STR("smtp-from", "METER_SMTP_FROM", "", smtp_from, CFG_NOTIFIER,
	    "From of notification emails: addr@example.com or Name <addr@example.com> "
	    "(required with METER_SMTP_URL)."),
	STR("smtp-user", "METER_SMTP_USER", "", smtp_user, CFG_NOTIFIER,
	    "SMTP AUTH user name; empty: no authentication."),
	STR("smtp-password", "METER_SMTP_PASSWORD", "", smtp_password, CFG_NOTIFIER,
	    "SMTP AUTH password (never logged)."),
	ENUM("smtp-starttls", "METER_SMTP_STARTTLS", "auto", smtp_starttls, "auto|always|never",
	     CFG_NOTIFIER,
	     "STARTTLS on smtp://: use it when offered, require it, or never (smtps:// is TLS "
	     "from the start)."),
	DUR("smtp-timeout", "METER_SMTP_TIMEOUT", "30s", smtp_timeout_ms, 100, 600000,
	    CFG_NOTIFIER, "Longest time for one email delivery."),
	BOOL("webhook-allow-private", "METER_WEBHOOK_ALLOW_PRIVATE", "false",
	     webhook_allow_private, CFG_NOTIFIER,
	     "Allow webhooks to loopback, private, link-local and metadata addresses (the "
	     "connected IP is checked; off: refused)."),
	DUR("webhook-timeout", "METER_WEBHOOK_TIMEOUT", "15s", webhook_timeout_ms, 100, 300000,
	    CFG_NOTIFIER, "Longest time for one webhook delivery (connect to last byte)."),
	INT("notify-concurrency", "METER_NOTIFY_CONCURRENCY", "32", notify_concurrency, 1, 1000,
	    CFG_NOTIFIER, "Deliveries in flight at once per notifier."),
	STR("notify-retry-schedule", "METER_NOTIFY_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,24h",
	    notify_retry_schedule, CFG_NOTIFIER,
	    "Delays before each retry (+-20 % jitter, at least a Retry-After); after the last, "
	    "dead. Empty: no retries."),
	DUR("notify-poll", "METER_NOTIFY_POLL", "5s", notify_poll_ms, 100, 600000, CFG_NOTIFIER,
	    "Look for due notifications at least this often (NOTIFY wakes the notifier sooner)."),
};
#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static const char *type_name(enum cfg_type t)
{
	switch (t) {
	case CFG_T_STR: return "string";
	case CFG_T_INT: return "integer";
	case CFG_T_DURATION: return "duration";
	case CFG_T_BOOL: return "boolean";
	case CFG_T_ENUM: return "enum";
	}
	return "?";
}

static int choice_ok(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	const char *p = choices;
	while (*p) {
		const char *bar = strchr(p, '|');
		size_t l = bar ? (size_t)(bar - p) : strlen(p);
		if (l == vl && strncmp(p, v, l) == 0)
			return 1;
		if (!bar)
			break;
		p = bar + 1;
	}
	return 0;
}

const char *cfg_shown(const char *v, size_t len, char out[CFG_SHOWN_SIZE])
{
	size_t o = 0;
	for (size_t i = 0; i < len && o < 64; i++) {
		unsigned char c = (unsigned char)v[i];
		out[o++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
	}
	if (o < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}

static int opt_apply(struct meter_config *cfg, const struct cfg_opt *o, const char *v,
		     const char *origin, char *errstr, size_t errstr_size)
{
	char *base = (char *)cfg + o->offset;
	char vs[CFG_SHOWN_SIZE];
	int64_t n;
	int b;
	switch (o->type) {
	case CFG_T_STR:
	case CFG_T_ENUM:
		if (strlen(v) >= o->size) {
			snprintf(errstr, errstr_size, "%s: value too long (max %zu bytes)", origin,
				 o->size - 1);
			return -1;
		}
		if (o->type == CFG_T_ENUM && !choice_ok(o->choices, v)) {
			snprintf(errstr, errstr_size, "%s: '%s' is not one of %s", origin,
				 cfg_shown(v, strlen(v), vs), o->choices);
			return -1;
		}
		memcpy(base, v, strlen(v) + 1);
		return 0;
	case CFG_T_INT:
		if (num_parse_i64(v, o->min, o->max, &n) != 0) {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not an integer between %lld and %lld", origin,
				 cfg_shown(v, strlen(v), vs),
				 (long long)o->min, (long long)o->max);
			return -1;
		}
		*(int64_t *)(void *)base = n;
		return 0;
	case CFG_T_DURATION:
		if (num_parse_duration_ms(v, &n) != 0 || n < o->min || n > o->max) {
			snprintf(errstr, errstr_size,
				 "%s: '%s' is not a duration between %lldms and %lldms "
				 "(use a unit: 250ms, 5s, 10m, 72h, 7d)",
				 origin, cfg_shown(v, strlen(v), vs), (long long)o->min,
				 (long long)o->max);
			return -1;
		}
		*(int64_t *)(void *)base = n;
		return 0;
	case CFG_T_BOOL:
		if (num_parse_bool(v, &b) != 0) {
			snprintf(errstr, errstr_size, "%s: '%s' is not a boolean (true/false)",
				 origin, cfg_shown(v, strlen(v), vs));
			return -1;
		}
		*(int *)(void *)base = b;
		return 0;
	}
	return -1;
}

static const struct cfg_opt *opt_find(const char *name, size_t len)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
			return &opts[i];
	return NULL;
}

int cfg_set(struct meter_config *cfg, const char *name, const char *value, char *errstr,
	    size_t errstr_size)
{
	const struct cfg_opt *o = opt_find(name, strlen(name));
	if (!o) {
		char ns[CFG_SHOWN_SIZE];
		snprintf(errstr, errstr_size, "unknown option '%s'",
			 cfg_shown(name, strlen(name), ns));
		return -1;
	}
	return opt_apply(cfg, o, value, name, errstr, errstr_size);
}

static int prop_add(struct meter_config *cfg, const char *name, size_t nlen, const char *value,
		    char *errstr, size_t errstr_size)
{
	if (nlen == 0 || nlen >= sizeof(cfg->prop_name[0]) ||
	    strlen(value) >= sizeof(cfg->prop_value[0])) {
		char ns[CFG_SHOWN_SIZE];
		snprintf(errstr, errstr_size, "Kafka property '%s': name or value too long",
			 cfg_shown(name, nlen, ns));
		return -1;
	}
	/* A later setting of the same property replaces the earlier one. */
	int slot = cfg->nprops;
	for (int i = 0; i < cfg->nprops; i++)
		if (strlen(cfg->prop_name[i]) == nlen && strncmp(cfg->prop_name[i], name, nlen) == 0)
			slot = i;
	if (slot == CFG_MAX_PROPS) {
		snprintf(errstr, errstr_size, "too many Kafka properties (max %d)", CFG_MAX_PROPS);
		return -1;
	}
	memcpy(cfg->prop_name[slot], name, nlen);
	cfg->prop_name[slot][nlen] = '\0';
	snprintf(cfg->prop_value[slot], sizeof(cfg->prop_value[slot]), "%s", value);
	if (slot == cfg->nprops)
		cfg->nprops++;
	return 0;
}

int cfg_load(struct meter_config *cfg, unsigned prog_mask, int *argc, char **argv, char *errstr,
	     size_t errstr_size)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTS; i++)
		if (opt_apply(cfg, &opts[i], opts[i].def, opts[i].name, errstr, errstr_size) != 0)
			return -1;

	for (size_t i = 0; i < NOPTS; i++) {
		if (!(opts[i].progs & prog_mask))
			continue;
		const char *v = getenv(opts[i].env);
		if (v && opt_apply(cfg, &opts[i], v, opts[i].env, errstr, errstr_size) != 0)
			return -1;
	}
	static const char prefix[] = "METER_KAFKA_PROP_";
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, prefix, sizeof(prefix) - 1) != 0)
			continue;
		const char *name = *e + sizeof(prefix) - 1;
		const char *eq = strchr(name, '=');
		if (!eq)
			continue;
		char pname[128];
		size_t o = 0;
		for (const char *p = name; p < eq && o + 1 < sizeof(pname); p++) {
			if (*p == '_' && p + 1 < eq && p[1] == '_') {
				pname[o++] = '_';
				p++;
			} else {
				pname[o++] = *p == '_' ? '.' : *p;
			}
		}
		if (prop_add(cfg, pname, o, eq + 1, errstr, errstr_size) != 0)
			return -1;
	}

	int out = 1;
	int n = *argc;
	for (int i = 1; i < n; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-X") == 0 || strncmp(a, "-X", 2) == 0) {
			const char *kv = a[2] ? a + 2 : (i + 1 < n ? argv[++i] : NULL);
			const char *eq = kv ? strchr(kv, '=') : NULL;
			if (!eq) {
				snprintf(errstr, errstr_size,
					 "-X needs name=value (a librdkafka property)");
				return -1;
			}
			if (prop_add(cfg, kv, (size_t)(eq - kv), eq + 1, errstr, errstr_size) != 0)
				return -1;
			continue;
		}
		if (strncmp(a, "--", 2) == 0 && a[2]) {
			const char *name = a + 2;
			const char *eq = strchr(name, '=');
			size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
			const struct cfg_opt *o = opt_find(name, nlen);
			if (o && (o->progs & prog_mask)) {
				const char *v = eq ? eq + 1 : NULL;
				if (!v) {
					if (i + 1 >= n) {
						snprintf(errstr, errstr_size, "--%s needs a value",
							 o->name);
						return -1;
					}
					v = argv[++i];
				}
				char origin[80];
				snprintf(origin, sizeof(origin), "--%s", o->name);
				if (opt_apply(cfg, o, v, origin, errstr, errstr_size) != 0)
					return -1;
				continue;
			}
		}
		argv[out++] = argv[i];
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

static void default_text(const struct cfg_opt *o, char *buf, size_t sz)
{
	if (o->def[0] == '\0')
		snprintf(buf, sz, "(empty)");
	else
		snprintf(buf, sz, "`%s`", o->def);
}

void cfg_print_reference(void *fp, unsigned prog_mask)
{
	FILE *f = fp;
	fprintf(f, "| variable | flag | type | default | programs | description |\n");
	fprintf(f, "|---|---|---|---|---|---|\n");
	for (size_t i = 0; i < NOPTS; i++) {
		const struct cfg_opt *o = &opts[i];
		if (!(o->progs & prog_mask))
			continue;
		char def[128];
		default_text(o, def, sizeof(def));
		char progs[64] = "";
		if (o->progs & CFG_METERD)
			strcat(progs, "meterd ");
		if (o->progs & CFG_NOTIFIER)
			strcat(progs, "meter-notifier ");
		if (o->progs & CFG_CTL)
			strcat(progs, "meterctl ");
		progs[strlen(progs) - 1] = '\0';
		char type[96];
		if (o->type == CFG_T_ENUM)
			snprintf(type, sizeof(type), "%s", o->choices);
		else
			snprintf(type, sizeof(type), "%s", type_name(o->type));
		/* A '|' inside a Markdown table cell must be escaped. */
		char esc[128];
		size_t k = 0;
		for (const char *p = type; *p && k + 2 < sizeof(esc); p++) {
			if (*p == '|')
				esc[k++] = '\\';
			esc[k++] = *p;
		}
		esc[k] = '\0';
		fprintf(f, "| `%s` | `--%s` | %s | %s | %s | %s |\n", o->env, o->name, esc, def,
			progs, o->desc);
	}
}

void cfg_print_usage(void *fp, unsigned prog_mask)
{
	FILE *f = fp;
	for (size_t i = 0; i < NOPTS; i++) {
		const struct cfg_opt *o = &opts[i];
		if (!(o->progs & prog_mask))
			continue;
		char def[128];
		default_text(o, def, sizeof(def));
		fprintf(f, "  --%-18s %s (%s, default %s)\n", o->name, o->desc, o->env, def);
	}
	if (prog_mask & (CFG_METERD | CFG_CTL))
		fprintf(f, "  -X name=value        any librdkafka property (or METER_KAFKA_PROP_name)\n");
}

int cfg_daemon_args(const char *prog, const char *version, unsigned prog_mask, void (*usage)(void *),
		    struct meter_config *cfg, int argc, char **argv)
{
	char err[1024];
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(argv[i], "--config-reference") == 0) {
			cfg_print_reference(stdout, CFG_ALL);
			return 0;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("%s %s\n", prog, version);
			return 0;
		}
	}
	if (cfg_load(cfg, prog_mask, &argc, argv, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s (see %s --help)\n", prog, err, prog);
		return 2;
	}
	if (argc > 1) {
		char as[CFG_SHOWN_SIZE];
		fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", prog,
			cfg_shown(argv[1], strlen(argv[1]), as), prog);
		return 2;
	}
	return -1;
}
