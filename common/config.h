/* config.h - configuration is a table: name, type, default, where it lands,
 * whether a reload applies it, description. Values come from a config file
 * (METER_CONFIG_FILE or --config: METER_*=VALUE lines, the syntax of a
 * systemd EnvironmentFile), then the environment (METER_*), then
 * command-line flags (--name value or --name=value): each overrides the one
 * before. librdkafka properties pass through with METER_KAFKA_PROP_<name>
 * (a single '_' stands for '.', "__" for '_') or -X name=value. On SIGHUP
 * the daemons read all three again (cfg_reload) and apply the options
 * marked reloadable (cfg_apply_reload). docs/CONFIG.md is generated from
 * the table (cfg_print_reference) and checked by the tests. */
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
#define CFG_API 0x8
#define CFG_ALL 0xf

struct meter_config {
	char config_file[CFG_STR_MAX];   /* where the file options came from; "" none */
	char kafka_brokers[CFG_STR_MAX];
	char database_url[CFG_STR_MAX];
	char group_id[256];
	char topic_events[256];
	char topic_dlq[256];
	char topic_limits[256];
	char topic_rollups[256];
	int64_t batch_max;        /* messages per batch */
	int64_t catchup_batch_max; /* messages per batch while catching up */
	int64_t batch_wait_ms;    /* max time to fill a batch */
	int64_t rollup_interval_ms; /* between rollup publisher rounds */
	int64_t workers;          /* meterd: consumers (group members) per process */
	int64_t max_event_bytes;  /* payload cap */
	int64_t max_lateness_ms;  /* late events beyond this are rejected */
	int64_t max_future_ms;    /* clock skew allowed for events from the future */
	char default_plan[64];    /* plan of tenants seen before being added */
	int migrate;              /* apply migrations at start */
	char http_addr[256];      /* /metrics /livez /readyz (and meter-api's routes) */
	int64_t api_threads;      /* meter-api: server threads, one connection each */
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

/* Parse the text of a KEY=VALUE file (text[0..len), no NUL needed) and
 * call fn for each assignment in order. The syntax is a subset of a
 * systemd EnvironmentFile: blank lines and lines starting with '#' or ';'
 * are skipped; KEY is [A-Za-z_][A-Za-z0-9_]*; blanks around KEY, '=' and
 * an unquoted VALUE are dropped; a VALUE in double quotes takes \" \\ \n
 * \t (and \ before any other character gives that character), in single
 * quotes is literal, and may be followed only by blanks or a '#' comment;
 * an unquoted VALUE is literal to the end of the line ('#' included). A
 * quote must close on its line. Returns 0, or -1 with "origin:LINE: why"
 * in errstr (fn's own errors get the same prefix). */
typedef int(cfg_assign_fn)(void *opaque, const char *key, const char *value, char *errstr,
			   size_t errstr_size);
int cfg_parse_env_text(const char *text, size_t len, const char *origin, cfg_assign_fn *fn,
		       void *opaque, char *errstr, size_t errstr_size);

/* Set one option by its table name ("batch-max"); for tests and reloads. */
int cfg_set(struct meter_config *cfg, const char *name, const char *value, char *errstr,
	    size_t errstr_size);

/* The start of a daemon's main(): --help, --config-reference, --version,
 * then cfg_load() and no positional argument allowed. Returns -1 to go on,
 * or the exit code to return (0 after help, 2 with a one-line error). */
int cfg_daemon_args(const char *prog, const char *version, unsigned prog_mask, void (*usage)(void *),
		    struct meter_config *cfg, int argc, char **argv);

/* Read the configuration again as cfg_daemon_args() read it at start (the
 * file named then, the environment, the same flags) into *next. Returns 0,
 * or -1 with a one-line error (next is then undefined). */
int cfg_reload(struct meter_config *next, char *errstr, size_t errstr_size);

/* A reload: for each option of the programs in prog_mask whose value
 * differs between live and next, copy it into live if it is reloadable,
 * and list it in changed ("batch-max 5000 -> 200, log-format text -> json")
 * or, if not, in restart ("database-url, group-id"; values not shown).
 * Either may be NULL. Returns the number of options applied. */
int cfg_apply_reload(struct meter_config *live, const struct meter_config *next,
		     unsigned prog_mask, char *changed, size_t changed_size, char *restart,
		     size_t restart_size);

/* A value from outside (environment, flag, config) as it may appear inside
 * a one-line message: control bytes become '?', and it is cut to 64 bytes
 * followed by "...". Returns out. */
#define CFG_SHOWN_SIZE 72
const char *cfg_shown(const char *v, size_t len, char out[CFG_SHOWN_SIZE]);

/* The same for a file path: control bytes become '?', cut only past 400
 * bytes (a path is read whole to be of use). Returns out. */
#define CFG_SHOWN_PATH_SIZE 408
const char *cfg_shown_path(const char *path, char out[CFG_SHOWN_PATH_SIZE]);

/* Print the option reference (Markdown table) for the programs in mask. */
void cfg_print_reference(void *fp, unsigned prog_mask);
/* Print a short usage list of the options for the programs in mask. */
void cfg_print_usage(void *fp, unsigned prog_mask);

#endif
