/* config.c - see config.h. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
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
	int reload;         /* a reload (SIGHUP) applies a new value */
};

#define OFF(f) offsetof(struct meter_config, f)
#define SZ(f) sizeof(((struct meter_config *)0)->f)
#define STR(n, e, d, f, p, desc) {n, e, CFG_T_STR, d, OFF(f), SZ(f), 0, 0, NULL, p, desc, 0}
#define INT(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_INT, d, OFF(f), 0, lo, hi, NULL, p, desc, 0}
#define DUR(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_DURATION, d, OFF(f), 0, lo, hi, NULL, p, desc, 0}
#define BOOL(n, e, d, f, p, desc) {n, e, CFG_T_BOOL, d, OFF(f), 0, 0, 1, NULL, p, desc, 0}
#define ENUM(n, e, d, f, ch, p, desc) {n, e, CFG_T_ENUM, d, OFF(f), SZ(f), 0, 0, ch, p, desc, 0}
/* The same, for options a reload (SIGHUP) applies to a running daemon. */
#define R_STR(n, e, d, f, p, desc) {n, e, CFG_T_STR, d, OFF(f), SZ(f), 0, 0, NULL, p, desc, 1}
#define R_INT(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_INT, d, OFF(f), 0, lo, hi, NULL, p, desc, 1}
#define R_DUR(n, e, d, f, lo, hi, p, desc) {n, e, CFG_T_DURATION, d, OFF(f), 0, lo, hi, NULL, p, desc, 1}
#define R_ENUM(n, e, d, f, ch, p, desc) {n, e, CFG_T_ENUM, d, OFF(f), SZ(f), 0, 0, ch, p, desc, 1}

#define CONFIG_ENV "METER_CONFIG_FILE"
#define CONFIG_FILE_MAX (1 << 20)

static const struct cfg_opt opts[] = {
	STR("config", CONFIG_ENV, "", config_file, CFG_ALL,
	    "File of METER_*=VALUE lines (systemd EnvironmentFile syntax) read first: the "
	    "environment and flags override it. SIGHUP makes meterd and meter-notifier read it "
	    "again."),
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
	STR("topic-rollups", "METER_TOPIC_ROLLUPS", "usage.rollups", topic_rollups,
	    CFG_METERD | CFG_CTL,
	    "Topic of rollups for billing (key = subject and period)."),
	R_INT("batch-max", "METER_BATCH_MAX", "50000", batch_max, 1, 1000000, CFG_METERD,
	    "Most messages in one batch (one database transaction)."),
	R_DUR("batch-wait", "METER_BATCH_WAIT", "100ms", batch_wait_ms, 1, 600000, CFG_METERD,
	    "Longest time a batch's first message waits, counted from when it could be"
	    " read (after a commit longer than this, the next batch goes once the queue"
	    " is drained); ten times longer, at least 5s, while catching up on a"
	    " backlog."),
	R_INT("catchup-batch-max", "METER_CATCHUP_BATCH_MAX", "100000", catchup_batch_max, 1,
	    1000000, CFG_METERD,
	    "Most messages in one batch while catching up: when a worker's batch and the"
	    " messages its partitions hold beyond it reach this many, the batch waits for"
	    " them; bigger batches add more events into each rollup row, so catching up"
	    " costs less per event (METER_BATCH_MAX when larger)."),
	DUR("rollup-interval", "METER_ROLLUP_INTERVAL", "1s", rollup_interval_ms, 100, 3600000,
	    CFG_METERD,
	    "Time between the rollup publisher's rounds under a steady load. A round publishes"
	    " once every rollup changed since the last, so longer rounds publish fewer records"
	    " (less CPU for PostgreSQL and for billing's consumer) and later, in bigger rounds."
	    " While catching up the pause is three times the last round's time when that is"
	    " longer (at most 15s)."),
	INT("workers", "METER_WORKERS", "2", workers, 1, 64, CFG_METERD,
	    "Consumers in this process, each a member of the group with its own thread and"
	    " database connection: one applies its batch while another parses and applies its"
	    " own. More help with more cores (here and in PostgreSQL) and partitions."),
	R_INT("max-event-bytes", "METER_MAX_EVENT_BYTES", "65536", max_event_bytes, 256, 16777216,
	    CFG_METERD, "Events larger than this are rejected (too_large)."),
	/* Not reloadable: the rollup publisher closes a period at its end plus
	 * this bound; a larger bound at run time would count events into
	 * periods already closed for billing. */
	DUR("max-lateness", "METER_MAX_LATENESS", "72h", max_lateness_ms, 0, 366LL * 86400000 * 20,
	    CFG_METERD, "Events older than this are rejected (too_late)."),
	R_DUR("max-future", "METER_MAX_FUTURE", "5m", max_future_ms, 0, 86400000LL * 7, CFG_METERD,
	    "Events this far ahead of the clock are rejected (time_in_future)."),
	STR("default-plan", "METER_DEFAULT_PLAN", "free", default_plan, CFG_METERD | CFG_CTL,
	    "Plan given to tenants whose events arrive before they are added."),
	BOOL("migrate", "METER_MIGRATE", "true", migrate, CFG_METERD,
	     "Apply database migrations at start (idempotent)."),
	STR("http-addr", "METER_HTTP_ADDR", "", http_addr, CFG_METERD | CFG_NOTIFIER | CFG_API,
	    "Where to serve /metrics, /livez and /readyz (and meter-api's routes): host:port, "
	    ":port (every IPv4 address) or [::1]:port; port 0 picks a free port. The bound "
	    "address is logged as 'serving http://ADDR'. Empty: meterd and meter-notifier serve "
	    "nothing; meter-api serves on 127.0.0.1:8080."),
	INT("api-threads", "METER_API_THREADS", "4", api_threads, 1, 64, CFG_API,
	    "meter-api: threads answering requests, each with its own database connection."),
	R_ENUM("log-format", "METER_LOG_FORMAT", "text", log_format, "text|json", CFG_ALL,
	     "Log record format on stderr."),
	R_ENUM("log-level", "METER_LOG_LEVEL", "info", log_level, "debug|info|warn|error", CFG_ALL,
	     "Least severe level logged."),
	R_DUR("shutdown-grace", "METER_SHUTDOWN_GRACE", "30s", shutdown_grace_ms, 0, 3600000,
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
	R_DUR("smtp-timeout", "METER_SMTP_TIMEOUT", "30s", smtp_timeout_ms, 100, 600000,
	    CFG_NOTIFIER, "Longest time for one email delivery."),
	BOOL("webhook-allow-private", "METER_WEBHOOK_ALLOW_PRIVATE", "false",
	     webhook_allow_private, CFG_NOTIFIER,
	     "Allow webhooks to loopback, private, link-local and metadata addresses (the "
	     "connected IP is checked; off: refused)."),
	R_DUR("webhook-timeout", "METER_WEBHOOK_TIMEOUT", "15s", webhook_timeout_ms, 100, 300000,
	    CFG_NOTIFIER, "Longest time for one webhook delivery (connect to last byte)."),
	R_INT("notify-concurrency", "METER_NOTIFY_CONCURRENCY", "32", notify_concurrency, 1, 1000,
	    CFG_NOTIFIER, "Deliveries in flight at once per notifier."),
	R_STR("notify-retry-schedule", "METER_NOTIFY_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,24h",
	    notify_retry_schedule, CFG_NOTIFIER,
	    "Delays before each retry (+-20 % jitter, at least a Retry-After); after the last, "
	    "dead. Empty: no retries."),
	R_DUR("notify-poll", "METER_NOTIFY_POLL", "5s", notify_poll_ms, 100, 600000, CFG_NOTIFIER,
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

static const char *shown_upto(const char *v, size_t len, char *out, size_t max)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o < max; i++) {
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

const char *cfg_shown(const char *v, size_t len, char out[CFG_SHOWN_SIZE])
{
	return shown_upto(v, len, out, CFG_SHOWN_SIZE - 8);
}

const char *cfg_shown_path(const char *path, char out[CFG_SHOWN_PATH_SIZE])
{
	return shown_upto(path, strlen(path), out, CFG_SHOWN_PATH_SIZE - 8);
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
		if (o->type == CFG_T_ENUM && !choice_ok(o->choices, v)) {
			snprintf(errstr, errstr_size, "%s: '%s' is not one of %s", origin,
				 cfg_shown(v, strlen(v), vs), o->choices);
			return -1;
		}
		if (strlen(v) >= o->size) {
			snprintf(errstr, errstr_size, "%s: value too long (max %zu bytes)", origin,
				 o->size - 1);
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

/* METER_KAFKA_PROP_<name> to a property name: '_' is '.', "__" is '_'. */
static size_t prop_from_env(const char *name, size_t len, char *out, size_t out_size)
{
	size_t o = 0;
	for (size_t i = 0; i < len && o + 1 < out_size; i++) {
		if (name[i] == '_' && i + 1 < len && name[i + 1] == '_') {
			out[o++] = '_';
			i++;
		} else {
			out[o++] = name[i] == '_' ? '.' : name[i];
		}
	}
	out[o] = '\0';
	return o;
}

static const char prop_prefix[] = "METER_KAFKA_PROP_";

static const struct cfg_opt *opt_by_env(const char *env)
{
	for (size_t i = 0; i < NOPTS; i++)
		if (strcmp(opts[i].env, env) == 0)
			return &opts[i];
	return NULL;
}

/* ---- config files (their syntax: envfile.c) --------------------------------------- */

static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(char *errstr, size_t errstr_size, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errstr, errstr_size, fmt, ap);
	va_end(ap);
	return -1;
}

struct file_ctx {
	struct meter_config *cfg;
	unsigned mask;
};

/* One assignment of a config file: an option of the table (those of other
 * programs are skipped, so one file can serve all), or a Kafka property. */
static int file_assign(void *opaque, const char *key, const char *value, char *errstr,
		       size_t errstr_size)
{
	struct file_ctx *fc = opaque;
	const struct cfg_opt *o;

	if (strncmp(key, prop_prefix, sizeof(prop_prefix) - 1) == 0) {
		char pname[128];
		size_t n = prop_from_env(key + sizeof(prop_prefix) - 1,
					 strlen(key) - (sizeof(prop_prefix) - 1), pname,
					 sizeof(pname));
		return prop_add(fc->cfg, pname, n, value, errstr, errstr_size);
	}
	if (!(o = opt_by_env(key)))
		return fail(errstr, errstr_size,
			    strncmp(key, "METER_", 6) == 0
				    ? "%s is not a setting (see --config-reference)"
				    : "%s: only METER_* settings are read from a config file (put "
				      "other variables in the environment)",
			    key);
	if (o->offset == OFF(config_file))
		return fail(errstr, errstr_size, "%s cannot be set inside a config file", key);
	if (!(o->progs & fc->mask))
		return 0;
	return opt_apply(fc->cfg, o, value, key, errstr, errstr_size);
}

static int load_file(struct meter_config *cfg, unsigned mask, const char *path, char *errstr,
		     size_t errstr_size)
{
	struct file_ctx fc = {cfg, mask};
	char *text = NULL;
	size_t len = 0;
	int rc = -1;
	/* The path comes from outside (--config, METER_CONFIG_FILE): shown
	 * without control bytes, as every outside value in a message. */
	char shown[CFG_SHOWN_PATH_SIZE];
	cfg_shown_path(path, shown);
	FILE *f = fopen(path, "r");

	if (!f)
		return fail(errstr, errstr_size, "config file %s: %s", shown, strerror(errno));
	if (!(text = malloc(CONFIG_FILE_MAX + 1))) {
		fail(errstr, errstr_size, "config file %s: out of memory", shown);
		goto out;
	}
	len = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		fail(errstr, errstr_size, "config file %s: %s", shown, strerror(errno));
		goto out;
	}
	if (len > CONFIG_FILE_MAX) {
		fail(errstr, errstr_size, "config file %s: larger than %d bytes", shown,
		     CONFIG_FILE_MAX);
		goto out;
	}
	rc = cfg_parse_env_text(text, len, shown, file_assign, &fc, errstr, errstr_size);
out:
	free(text);
	fclose(f);
	return rc;
}

/* The config file named on the command line (--config FILE, --config=FILE),
 * else in the environment; NULL for none. */
static const char *config_path(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-X") == 0) {
			i++;
			continue;
		}
		if (strncmp(argv[i], "--config=", 9) == 0)
			return argv[i] + 9;
		if (strcmp(argv[i], "--config") == 0)
			return i + 1 < argc ? argv[i + 1] : NULL; /* the flags loop says it lacks a value */
	}
	const char *env = getenv(CONFIG_ENV);
	return env && *env ? env : NULL;
}

int cfg_load(struct meter_config *cfg, unsigned prog_mask, int *argc, char **argv, char *errstr,
	     size_t errstr_size)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NOPTS; i++)
		if (opt_apply(cfg, &opts[i], opts[i].def, opts[i].name, errstr, errstr_size) != 0)
			return -1;

	const char *file = config_path(*argc, argv);
	if (file && load_file(cfg, prog_mask, file, errstr, errstr_size) != 0)
		return -1;

	for (size_t i = 0; i < NOPTS; i++) {
		if (!(opts[i].progs & prog_mask))
			continue;
		const char *v = getenv(opts[i].env);
		if (v && opt_apply(cfg, &opts[i], v, opts[i].env, errstr, errstr_size) != 0)
			return -1;
	}
	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, prop_prefix, sizeof(prop_prefix) - 1) != 0)
			continue;
		const char *name = *e + sizeof(prop_prefix) - 1;
		const char *eq = strchr(name, '=');
		if (!eq)
			continue;
		char pname[128];
		size_t o = prop_from_env(name, (size_t)(eq - name), pname, sizeof(pname));
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
	/* config_file names the file actually read (the flag wins over the
	 * environment, as config_path() chose). */
	snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", file ? file : "");
	return 0;
}

/* ---- reloads ---------------------------------------------------------------------- */

/* What cfg_daemon_args() was given, to read the same sources again. */
static unsigned saved_mask;
static int saved_argc;
static char **saved_argv; /* the pointers; the strings are main()'s */

int cfg_reload(struct meter_config *next, char *errstr, size_t errstr_size)
{
	char **argv;
	int argc = saved_argc, rc;

	if (!saved_argv)
		return fail(errstr, errstr_size, "no configuration was loaded at start");
	if (!(argv = calloc((size_t)argc + 1, sizeof(*argv))))
		return fail(errstr, errstr_size, "out of memory");
	memcpy(argv, saved_argv, (size_t)argc * sizeof(*argv));
	rc = cfg_load(next, saved_mask, &argc, argv, errstr, errstr_size);
	free(argv);
	return rc;
}

static void append(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len;
	va_list ap;

	if (!buf || size == 0)
		return;
	len = strnlen(buf, size);
	if (len + 3 >= size)
		return;
	if (len > 0) {
		memcpy(buf + len, ", ", 3);
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

static void value_text(const struct cfg_opt *o, const struct meter_config *cfg, char *out,
		       size_t size)
{
	const char *base = (const char *)cfg + o->offset;
	switch (o->type) {
	case CFG_T_STR:
		snprintf(out, size, "'%s'", base);
		break;
	case CFG_T_ENUM:
		snprintf(out, size, "%s", base);
		break;
	case CFG_T_INT:
		snprintf(out, size, "%lld", (long long)*(const int64_t *)(const void *)base);
		break;
	case CFG_T_DURATION:
		snprintf(out, size, "%lldms", (long long)*(const int64_t *)(const void *)base);
		break;
	case CFG_T_BOOL:
		snprintf(out, size, "%s", *(const int *)(const void *)base ? "true" : "false");
		break;
	}
}

static int opt_equal(const struct cfg_opt *o, const struct meter_config *a,
		     const struct meter_config *b)
{
	const char *x = (const char *)a + o->offset, *y = (const char *)b + o->offset;
	switch (o->type) {
	case CFG_T_STR:
	case CFG_T_ENUM:
		return strcmp(x, y) == 0;
	case CFG_T_INT:
	case CFG_T_DURATION:
		return *(const int64_t *)(const void *)x == *(const int64_t *)(const void *)y;
	case CFG_T_BOOL:
		return *(const int *)(const void *)x == *(const int *)(const void *)y;
	}
	return 1;
}

int cfg_apply_reload(struct meter_config *live, const struct meter_config *next,
		     unsigned prog_mask, char *changed, size_t changed_size, char *restart,
		     size_t restart_size)
{
	int applied = 0;

	if (changed && changed_size)
		changed[0] = '\0';
	if (restart && restart_size)
		restart[0] = '\0';
	for (size_t i = 0; i < NOPTS; i++) {
		const struct cfg_opt *o = &opts[i];
		if (!(o->progs & prog_mask) || opt_equal(o, live, next))
			continue;
		if (!o->reload) {
			append(restart, restart_size, "%s", o->name);
			continue;
		}
		char before[96], after[96];
		value_text(o, live, before, sizeof(before));
		value_text(o, next, after, sizeof(after));
		append(changed, changed_size, "%s %s -> %s", o->name, before, after);
		memcpy((char *)live + o->offset, (const char *)next + o->offset,
		       o->size ? o->size
			       : o->type == CFG_T_BOOL ? sizeof(int) : sizeof(int64_t));
		applied++;
	}
	/* Kafka properties: only programs that talk to Kafka read them. */
	int props_differ = (prog_mask & (CFG_METERD | CFG_CTL)) && live->nprops != next->nprops;
	for (int i = 0; (prog_mask & (CFG_METERD | CFG_CTL)) && !props_differ && i < live->nprops; i++)
		props_differ = strcmp(live->prop_name[i], next->prop_name[i]) != 0 ||
			       strcmp(live->prop_value[i], next->prop_value[i]) != 0;
	if (props_differ)
		append(restart, restart_size, "Kafka properties (METER_KAFKA_PROP_*, -X)");
	return applied;
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
	fprintf(f,
		"# Configuration reference\n"
		"\n"
		"Generated from the option table in `common/config.c` (`make docs`, or\n"
		"`meterd --config-reference`); `tests/unit/test_common.c` checks that this file\n"
		"matches it.\n"
		"\n"
		"Every option is an environment variable and a flag. They are read, each\n"
		"overriding the one before, from:\n"
		"\n"
		"1. the defaults below;\n"
		"2. the config file named by `--config FILE` or `METER_CONFIG_FILE`, if any;\n"
		"3. the environment;\n"
		"4. the command line (`--name value` or `--name=value`).\n"
		"\n"
		"Any librdkafka property passes through as `METER_KAFKA_PROP_<name>` (`_` for\n"
		"`.`, `__` for `_`; in the environment or the file) or `-X name=value`, to the\n"
		"clients it is for: one librdkafka documents as a consumer's (`C`) is not set\n"
		"on the producers of meterd, meterctl and libmeter, nor a producer's (`P`) on\n"
		"their consumers.\n"
		"\n"
		"**The config file** holds `METER_*=VALUE` lines, the syntax of a systemd\n"
		"`EnvironmentFile` (a subset of it): blank lines and lines starting with `#` or\n"
		"`;` are skipped; blanks around the name, the `=` and an unquoted value are\n"
		"dropped; a value in double quotes takes the escapes `\\\"` `\\\\` `\\n`\n"
		"`\\t`, one in single quotes is literal, and either may be followed by a `#`\n"
		"comment; an unquoted value runs to the end of the line (a `#` in it is part of\n"
		"it); a quote must close on its line. One file can serve every program: a\n"
		"setting of another program is skipped, a name that is not in the table is an\n"
		"error (with the file and line). Settings the daemon should not read itself\n"
		"(libpq's `PG*` variables, secrets kept readable only by root) belong in the\n"
		"environment (for systemd, an `EnvironmentFile=`).\n"
		"\n"
		"**Reload.** On SIGHUP (`systemctl reload`), `meterd` and `meter-notifier`\n"
		"read the file, the environment and their flags again. Options marked *yes* in\n"
		"the reload column take effect at once; the others keep their running value,\n"
		"and the log says which changed and need a restart. A file that does not parse, or a value out of range, is\n"
		"one error in the log and changes nothing. Because the environment overrides\n"
		"the file, a reload cannot change what an environment variable sets.\n"
		"\n");
	fprintf(f, "| variable | flag | type | default | programs | reload | description |\n");
	fprintf(f, "|---|---|---|---|---|---|---|\n");
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
		if (o->progs & CFG_API)
			strcat(progs, "meter-api ");
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
		fprintf(f, "| `%s` | `--%s` | %s | %s | %s | %s | %s |\n", o->env, o->name, esc, def,
			progs, o->reload ? "yes" : "restart", o->desc);
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
		fprintf(f, "  --%-18s %s (%s, default %s%s)\n", o->name, o->desc, o->env, def,
			o->reload ? "; reloadable" : "");
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
	free(saved_argv);
	if ((saved_argv = calloc((size_t)argc + 1, sizeof(*saved_argv)))) {
		memcpy(saved_argv, argv, (size_t)argc * sizeof(*argv));
		saved_argc = argc;
		saved_mask = prog_mask;
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
