/* config.h - configuration is a table: name, type, default, where it lands,
 * description. Values come from the environment (METER_*), then from
 * command-line flags (--name value or --name=value), which override.
 * librdkafka properties pass through with METER_KAFKA_PROP_<name> (a single
 * '_' stands for '.', "__" for '_') or -X name=value. docs/CONFIG.md is
 * generated from the table (cfg_print_reference) and checked by the tests. */
#ifndef METER_CONFIG_H
#define METER_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CFG_STR_MAX 1024
#define CFG_MAX_PROPS 64

/* Which programs read an option (bit mask). */
#define CFG_METERD 0x1
#define CFG_NOTIFIER 0x2
#define CFG_CTL 0x4
#define CFG_ALL 0x7

struct meter_config {
	char kafka_brokers[CFG_STR_MAX];
	char database_url[CFG_STR_MAX];
	char group_id[256];
	char topic_events[256];
	char topic_dlq[256];
	char topic_limits[256];
	char topic_rollups[256];
	int64_t batch_max;        /* messages per batch */
	int64_t batch_wait_ms;    /* max time to fill a batch */
	int64_t max_event_bytes;  /* payload cap */
	int64_t max_lateness_ms;  /* late events beyond this are rejected */
	int64_t max_future_ms;    /* clock skew allowed for events from the future */
	char default_plan[64];    /* plan of tenants seen before being added */
	int migrate;              /* apply migrations at start */
	char http_addr[256];
	char log_format[16];      /* text | json */
	char log_level[16];
	int64_t shutdown_grace_ms;
	/* meter-notifier */
	char smtp_url[CFG_STR_MAX];      /* smtp://host:port or smtps://; empty: no email */
	char smtp_from[512];
	char smtp_user[256];
	char smtp_password[256];
	char smtp_starttls[16];          /* auto | always | never */
	int64_t smtp_timeout_ms;
	int webhook_allow_private;       /* deliver to loopback/private addresses */
	int64_t webhook_timeout_ms;
	int64_t notify_concurrency;      /* deliveries in flight */
	char notify_retry_schedule[256]; /* delays after each failed attempt */
	int64_t notify_poll_ms;          /* fallback poll when no NOTIFY arrives */
	/* librdkafka pass-through properties, in order given. */
	int nprops;
	char prop_name[CFG_MAX_PROPS][128];
	char prop_value[CFG_MAX_PROPS][CFG_STR_MAX];
};

/* Fill cfg with defaults, then the environment, then argv flags. Flags that
 * are not configuration (subcommands, positional arguments) are left in
 * argv: on return argv[0..*argc) holds the program name followed by the
 * remaining arguments in order. prog_mask selects the options this program
 * accepts. Returns 0, or -1 with a one-line message in errstr. */
int cfg_load(struct meter_config *cfg, unsigned prog_mask, int *argc, char **argv, char *errstr,
	     size_t errstr_size);

/* Set one option by its table name ("batch-max"); for tests and reloads. */
int cfg_set(struct meter_config *cfg, const char *name, const char *value, char *errstr,
	    size_t errstr_size);

/* The start of a daemon's main(): --help, --config-reference, --version,
 * then cfg_load() and no positional argument allowed. Returns -1 to go on,
 * or the exit code to return (0 after help, 2 with a one-line error). */
int cfg_daemon_args(const char *prog, const char *version, unsigned prog_mask, void (*usage)(void *),
		    struct meter_config *cfg, int argc, char **argv);

/* A value from outside (environment, flag, config) as it may appear inside
 * a one-line message: control bytes become '?', and it is cut to 64 bytes
 * followed by "...". Returns out. */
#define CFG_SHOWN_SIZE 72
const char *cfg_shown(const char *v, size_t len, char out[CFG_SHOWN_SIZE]);

/* Print the option reference (Markdown table) for the programs in mask. */
void cfg_print_reference(void *fp, unsigned prog_mask);
/* Print a short usage list of the options for the programs in mask. */
void cfg_print_usage(void *fp, unsigned prog_mask);

#endif
