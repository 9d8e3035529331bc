/* main.c - meterd: consume usage events, keep exact rollups in PostgreSQL.
 *
 * Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 usage
 * error. Errors go to stderr in one line saying what was wrong. SIGHUP
 * reloads the configuration (see reload()). Under systemd (Type=notify)
 * it says READY=1 once the database is migrated and the consumer has
 * subscribed, STOPPING=1 when a stop begins, and keeps the watchdog fed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "crash.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "migrations.h"
#include "mxd.h"
#include "obs.h"
#include "publisher.h"
#include "rollups.h"
#include "service.h"
#include "workers.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

/* METER_SHUTDOWN_GRACE in whole seconds (0: none), for the signal handler. */
static volatile sig_atomic_t grace_s;

static void on_signal(int sig)
{
	(void)sig;
	/* The grace starts with the first signal: past it, the process ends
	 * even mid-batch (an uncommitted batch is simply consumed again). */
	if (!stop_flag && grace_s > 0)
		alarm((unsigned)grace_s);
	stop_flag = 1;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "meterd: shutdown grace (METER_SHUTDOWN_GRACE) exceeded; exiting"
				  " without finishing (nothing uncommitted is lost)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	_exit(1);
}

static void set_grace(const struct meter_config *cfg)
{
	int64_t s = (cfg->shutdown_grace_ms + 999) / 1000;
	grace_s = (sig_atomic_t)(s > 86400 ? 86400 : s);
}

static void on_hup(int sig)
{
	(void)sig;
	reload_flag = 1;
}

static void apply_log_config(const struct meter_config *cfg)
{
	enum log_level lvl = LOG_LVL_INFO;
	log_level_parse(cfg->log_level, &lvl);
	log_init("meterd", strcmp(cfg->log_format, "json") == 0, lvl);
}

struct running {
	struct meter_config *cfg;
	struct workers *w;
};

/* SIGHUP: read the config file, environment and flags again; apply the
 * reloadable options (log format and level, batch size and wait, event
 * size, future bound, shutdown grace), log what changed and what needs a
 * restart. A bad file changes nothing. */
static void reload(struct running *r)
{
	char err[1024], changed[2048], restart[1024];
	struct meter_config *next = malloc(sizeof(*next));

	svc_reloading();
	if (!next) {
		log_errorx("reload: out of memory; keeping the running configuration");
	} else if (cfg_reload(next, err, sizeof(err)) != 0) {
		log_errorx("reload failed: %s; keeping the running configuration", err);
	} else {
		int n = cfg_apply_reload(r->cfg, next, CFG_METERD, changed, sizeof(changed), restart,
					 sizeof(restart));
		apply_log_config(r->cfg);
		set_grace(r->cfg);
		wrk_reconfigure(r->w, r->cfg);
		log_info("configuration reloaded from %s: %s",
			 r->cfg->config_file[0] ? r->cfg->config_file : "the environment and flags",
			 n ? changed : "nothing changed");
		if (restart[0])
			log_warnx("reload: changed, but kept until a restart: %s", restart);
	}
	free(next);
	svc_ready("consuming %s (group %s)", r->cfg->topic_events, r->cfg->group_id);
}

/* Every 100 ms on the main thread while the workers run. The watchdog is
 * fed only while every worker's loop turns. */
static void tick(void *opaque)
{
	struct running *r = opaque;
	if (wrk_alive(r->w))
		svc_watchdog();
	if (stop_flag)
		svc_stopping("stopping: finishing the current batch");
	if (reload_flag && !stop_flag) {
		reload_flag = 0;
		reload(r);
	}
}

static void usage(void *fp)
{
	FILE *f = fp;
	fprintf(f, "usage: meterd [options]\n"
		   "Consume usage events from Kafka and keep exact rollups in PostgreSQL.\n"
		   "Options (each also an environment variable):\n");
	cfg_print_usage(f, CFG_METERD);
	fprintf(f, "  --config-reference   print the configuration reference (Markdown)\n"
		   "  --version            print the version\n");
}

/* Connect, wait for the database with backoff, migrate, check the default
 * plan. Returns 0, or 1 on a non-transient failure or stop. */
static int prepare_database(const struct meter_config *cfg)
{
	char err[1024];
	int delay_ms = 200;
	PGconn *conn = NULL;
	while (!stop_flag) {
		conn = db_connect(cfg->database_url, "meterd", err, sizeof(err));
		if (conn)
			break;
		log_warnx("%s; retrying in %dms", err, delay_ms);
		svc_status("waiting for the database: %s", err);
		struct timespec ts = {delay_ms / 1000, (long)(delay_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
		delay_ms = delay_ms < 5000 ? delay_ms * 2 : 10000;
	}
	if (!conn)
		return 1;
	int rc = 1;
	if (cfg->migrate) {
		int n = migrate_run(conn, err, sizeof(err));
		if (n < 0) {
			log_errorx("%s", err);
			goto out;
		}
		if (n > 0)
			log_info("database schema brought up to date (%d migration(s))", n);
	}
	const char *params[1] = {cfg->default_plan};
	PGresult *res = db_query(conn, "SELECT 1 FROM plans WHERE id = $1", 1, params, err,
				 sizeof(err), NULL);
	if (!res) {
		log_errorx("%s (run 'meterctl migrate' first?)", err);
		goto out;
	}
	int found = PQntuples(res) == 1;
	PQclear(res);
	if (!found) {
		log_errorx("default plan '%s' does not exist: set METER_DEFAULT_PLAN to one of "
			   "'meterctl plan list'",
			   cfg->default_plan);
		goto out;
	}
	rc = 0;
out:
	PQfinish(conn);
	return rc;
}

int main(int argc, char **argv)
{
	struct meter_config cfg;
	char err[1024];
	int early = cfg_daemon_args("meterd", METER_VERSION, CFG_METERD, usage, &cfg, argc, argv);
	if (early >= 0)
		return early;
	if (obs_check_addr("meterd", cfg.http_addr) != 0)
		return 2;
	if (kfk_check_props(&cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "meterd: %s (METER_KAFKA_PROP_*, -X)\n", err);
		return 2;
	}
	apply_log_config(&cfg);
	svc_init();
	crash_report_install("meterd");

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup; /* applied once the consumer runs */
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	set_grace(&cfg);
	signal(SIGPIPE, SIG_IGN);

	char red[512];
	db_redact_conninfo(cfg.database_url, red, sizeof(red));
	log_info("meterd %s starting: brokers %s, database %s, group %s, topic %s", METER_VERSION,
		 cfg.kafka_brokers, *red ? red : "(PG* defaults)", cfg.group_id, cfg.topic_events);

	/* HTTP first, so /livez answers while the database is awaited. */
	obs_set_state(OBS_STARTING, "waiting for the database and migrations");
	if (obs_start(&cfg, "meterd", err, sizeof(err)) != 0 ||
	    obs_serve(cfg.http_addr, NULL, err, sizeof(err)) != 0) {
		log_errorx("%s (METER_HTTP_ADDR)", err);
		return 1;
	}
	mxd_init(obs_metrics(), &cfg);
	int rc = 1;
	struct publisher *pub = NULL;
	struct rollpub *rollpub = NULL;
	struct workers *w = NULL;
	svc_status("connecting to the database");
	if (prepare_database(&cfg) != 0) {
		svc_stopping("stopped before the database was ready");
		rc = stop_flag ? 0 : 1;
		goto out;
	}
	if (stop_flag) {
		svc_stopping("stopped");
		rc = 0;
		goto out;
	}
	pub = pub_new(&cfg, "meterd", err, sizeof(err));
	if (!pub || pub_start(pub, err, sizeof(err)) != 0 ||
	    !(rollpub = rollpub_start(&cfg, err, sizeof(err))) ||
	    !(w = wrk_new(&cfg, pub, rollpub, err, sizeof(err)))) {
		log_errorx("%s", err);
		goto out;
	}
	struct running running = {&cfg, w};
	obs_set_state(OBS_RUNNING, NULL);
	svc_ready("consuming %s (group %s)", cfg.topic_events, cfg.group_id);
	rc = wrk_run(w, &stop_flag, tick, &running) == 0 ? 0 : 1;
	svc_stopping("stopping");
	obs_set_state(rc == 0 ? OBS_STOPPING : OBS_FAILED, rc == 0 ? "shutting down"
								   : "fatal Kafka error");
out:
	/* The workers first: a batch finishing now may still kick the flag
	 * publisher. */
	wrk_destroy(w);
	rollpub_stop(rollpub);
	pub_destroy(pub);
	obs_stop();
	return rc;
}
