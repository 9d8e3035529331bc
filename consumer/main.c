/* main.c - meterd: consume usage events, keep exact rollups in PostgreSQL.
 *
 * Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 usage
 * error. Errors go to stderr in one line saying what was wrong.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "consumer.h"
#include "db.h"
#include "log.h"
#include "migrations.h"
#include "mxd.h"
#include "obs.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
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
	enum log_level lvl = LOG_LVL_INFO;
	log_level_parse(cfg.log_level, &lvl);
	log_init("meterd", strcmp(cfg.log_format, "json") == 0, lvl);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char red[512];
	log_redact_url(cfg.database_url, red, sizeof(red));
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
	struct consumer *c = NULL;
	if (prepare_database(&cfg) != 0) {
		rc = stop_flag ? 0 : 1;
		goto out;
	}
	if (stop_flag) {
		rc = 0;
		goto out;
	}
	c = consumer_new(&cfg, err, sizeof(err));
	if (!c) {
		log_errorx("%s", err);
		goto out;
	}
	obs_set_state(OBS_RUNNING, NULL);
	rc = consumer_run(c, &stop_flag) == 0 ? 0 : 1;
	obs_set_state(rc == 0 ? OBS_STOPPING : OBS_FAILED, rc == 0 ? "shutting down"
								   : "fatal Kafka error");
out:
	consumer_destroy(c);
	obs_stop();
	return rc;
}
