/* main.c - meter-api: the usage HTTP API (JSON), with /metrics, /livez and
 * /readyz on the same address (METER_HTTP_ADDR, default 127.0.0.1:8080).
 *
 * Read-only but for api_tokens.last_used_at; it never migrates the schema
 * (meterd or meterctl migrate do): until api_tokens exists, /readyz says so.
 *
 * Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 usage
 * error. On SIGTERM /readyz turns 503 at once, requests in flight finish,
 * then the server stops.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "crash.h"
#include "db.h"
#include "log.h"
#include "obs.h"
#include "service.h"

#define API_DEFAULT_ADDR "127.0.0.1:8080"
#define API_MAX_CONNECTIONS 256

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(void *fp)
{
	FILE *f = fp;
	fprintf(f, "usage: meter-api [options]\n"
		   "Serve the usage HTTP API (JSON) from PostgreSQL, with /metrics, /livez and\n"
		   "/readyz. Clients authenticate with tokens from 'meterctl token create'.\n"
		   "Options (each also an environment variable):\n");
	cfg_print_usage(f, CFG_API);
	fprintf(f, "  --config-reference   print the configuration reference (Markdown)\n"
		   "  --version            print the version\n");
}

int main(int argc, char **argv)
{
	struct meter_config cfg;
	char err[1024];
	int early = cfg_daemon_args("meter-api", METER_VERSION, CFG_API, usage, &cfg, argc, argv);
	if (early >= 0)
		return early;
	if (obs_check_addr("meter-api", cfg.http_addr) != 0)
		return 2;
	enum log_level lvl = LOG_LVL_INFO;
	log_level_parse(cfg.log_level, &lvl);
	log_init("meter-api", strcmp(cfg.log_format, "json") == 0, lvl);
	if (!cfg.http_addr[0])
		snprintf(cfg.http_addr, sizeof(cfg.http_addr), "%s", API_DEFAULT_ADDR);

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Nothing of meter-api reloads; systemctl reload must not kill it. */
	signal(SIGHUP, SIG_IGN);
	svc_init();
	crash_report_install("meter-api");
	/* Held until sigsuspend, so a signal cannot slip in between the test of
	 * stop_flag and the wait. */
	sigset_t stops, waitmask;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigprocmask(SIG_BLOCK, &stops, &waitmask);
	sigdelset(&waitmask, SIGTERM);
	sigdelset(&waitmask, SIGINT);

	char red[512];
	db_redact_conninfo(cfg.database_url, red, sizeof(red));
	log_info("meter-api %s starting: database %s, %lld threads", METER_VERSION,
		 *red ? red : "(PG* defaults)", (long long)cfg.api_threads);

	/* The registry first (the API registers its metrics there), then the
	 * API, then the server that hands requests to it. */
	struct api *api = NULL;
	struct obs_app app = {
		.handler = api_handle,
		.opaque = NULL,
		.threads = (unsigned)cfg.api_threads,
		.max_connections = API_MAX_CONNECTIONS,
		/* Ready = the database answers and has the API's table. */
		.probe_sql = "SELECT 1 FROM api_tokens LIMIT 1",
	};
	int rc = 1;
	if (obs_start(&cfg, "meter-api", err, sizeof(err)) != 0) {
		log_errorx("%s", err);
		goto out;
	}
	api = api_new(&cfg, obs_metrics(), err, sizeof(err));
	if (!api) {
		log_errorx("%s", err);
		goto out;
	}
	app.opaque = api;
	obs_set_state(OBS_RUNNING, NULL);
	if (obs_serve(cfg.http_addr, &app, err, sizeof(err)) != 0) {
		log_errorx("%s (METER_HTTP_ADDR)", err);
		goto out;
	}
	svc_ready("serving on %s", cfg.http_addr);
	while (!stop_flag)
		sigsuspend(&waitmask);
	svc_stopping("stopping: finishing the requests in flight");
	log_info("stopping: finishing the requests in flight");
	obs_set_state(OBS_STOPPING, "shutting down");
	rc = 0;
out:
	obs_stop();
	api_destroy(api);
	if (rc == 0)
		log_info("stopped");
	return rc;
}
