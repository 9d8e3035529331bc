/* main.c - meter-notifier: deliver the threshold notifications that meterd
 * queues (webhooks and email), at least once, with retries.
 *
 * One thread, one loop: wait on the libcurl transfers, the PostgreSQL
 * socket (LISTEN meter_notifications wakes us when meterd commits new rows)
 * and a signal pipe; record finished attempts; claim due rows while there
 * are free delivery slots; poll every METER_NOTIFY_POLL in case a NOTIFY
 * was missed (e.g. across a reconnect). Several notifiers can run against
 * one database: claims skip each other's rows.
 *
 * Exit codes: 0 clean stop (SIGTERM/SIGINT), 1 runtime failure, 2 usage
 * error. SIGTERM stops claiming and lets deliveries in flight finish for up
 * to METER_SHUTDOWN_GRACE; a second signal stops at once. Deliveries cut
 * short are recorded as interrupted and fall due again immediately. SIGHUP
 * reloads the configuration (see reload()). Under systemd (Type=notify) it
 * says READY=1 once connected to the database, STOPPING=1 when a stop
 * begins, and keeps the watchdog fed.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "crash.h"
#include "db.h"
#include "log.h"
#include "notifier.h"
#include "obs.h"
#include "service.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;
static int sig_pipe[2] = {-1, -1};

static void on_hup(int sig)
{
	(void)sig;
	int saved = errno;
	reload_flag = 1;
	if (sig_pipe[1] >= 0) {
		ssize_t w = write(sig_pipe[1], "x", 1);
		(void)w;
	}
	errno = saved;
}

static void on_signal(int sig)
{
	(void)sig;
	int saved = errno;
	if (stop_flag < 2)
		stop_flag++;
	if (sig_pipe[1] >= 0) {
		ssize_t w = write(sig_pipe[1], "x", 1);
		(void)w;
	}
	errno = saved;
}

static void usage(void *fp)
{
	FILE *f = fp;
	fprintf(f, "usage: meter-notifier [options]\n"
		   "Deliver threshold notifications (signed webhooks, email) from the outbox in\n"
		   "PostgreSQL that meterd fills.\n"
		   "Options (each also an environment variable):\n");
	cfg_print_usage(f, CFG_NOTIFIER);
	fprintf(f, "  --config-reference   print the configuration reference (Markdown)\n"
		   "  --version            print the version\n");
}

/* Checks that cfg_load cannot make. 0, or -1 with errstr set. */
static int check_config(const struct meter_config *cfg, struct ntf_schedule *sched,
			char *errstr, size_t errstr_size)
{
	char why[300];
	if (ntf_schedule_parse(cfg->notify_retry_schedule, sched, why, sizeof(why)) != 0) {
		snprintf(errstr, errstr_size, "METER_NOTIFY_RETRY_SCHEDULE: %s", why);
		return -1;
	}
	if (cfg->smtp_url[0]) {
		char addr[256];
		if (strncmp(cfg->smtp_url, "smtp://", 7) != 0 &&
		    strncmp(cfg->smtp_url, "smtps://", 8) != 0) {
			snprintf(errstr, errstr_size,
				 "METER_SMTP_URL must start with smtp:// or smtps://");
			return -1;
		}
		if (ntf_mailbox_address(cfg->smtp_from, addr, sizeof(addr)) != 0) {
			snprintf(errstr, errstr_size,
				 "METER_SMTP_FROM must be an address (alerts@example.com or "
				 "Name <alerts@example.com>) when METER_SMTP_URL is set");
			return -1;
		}
	}
	return 0;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

struct loop {
	const struct meter_config *cfg;
	struct ntf_store *store;
	struct ntf_engine *engine;
	int with_email;
	int wake;                 /* a NOTIFY (or a reconnect) asks for a claim now */
	int64_t next_claim_at;    /* monotonic ms */
	int64_t reconnect_at;
	int64_t reconnect_delay;
	int64_t claim_fail_delay;
	int64_t record_retry_at;
};

static void db_connect_step(struct loop *l, int64_t now)
{
	char err[1024];
	if (ntf_store_connected(l->store) || now < l->reconnect_at)
		return;
	if (ntf_store_connect(l->store, err, sizeof(err)) == 0) {
		log_info("connected to the database; listening on meter_notifications");
		svc_ready("delivering notifications");
		l->reconnect_delay = 200;
		l->wake = 1;
		return;
	}
	ntf_metrics_db_error();
	log_warnx("%s; retrying in %lld ms", err, (long long)l->reconnect_delay);
	svc_status("waiting for the database: %s", err);
	l->reconnect_at = now + l->reconnect_delay;
	l->reconnect_delay = min64(l->reconnect_delay * 2, 10000);
}

/* Record finished attempts, oldest first; stop at the first failure. */
static void record_step(struct loop *l, int64_t now)
{
	char err[1024];
	const struct ntf_result *r;
	if (now < l->record_retry_at)
		return;
	while (ntf_store_connected(l->store) && (r = ntf_engine_peek_result(l->engine))) {
		if (ntf_store_record(l->store, r, err, sizeof(err)) != 0) {
			ntf_metrics_db_error();
			if (ntf_store_connected(l->store)) {
				/* The database answered no (a lock timeout, ...): do not
				 * let one result hold up the others. The row falls due
				 * again when its lease ends. */
				log_errorx("%s (notification %lld: not recorded; attempted again "
					   "when its lease ends)",
					   err, (long long)r->id);
				ntf_engine_pop_result(l->engine);
				continue;
			}
			log_warnx("%s (notification %lld; recorded once reconnected)", err,
				  (long long)r->id);
			l->record_retry_at = now + 1000;
			l->reconnect_at = now;
			return;
		}
		if (r->outcome == NTF_RETRY || r->outcome == NTF_INTERRUPTED)
			l->next_claim_at = min64(l->next_claim_at, now + r->retry_ms);
		/* A slot is free again: rows left due by a full claim can go. */
		l->next_claim_at = min64(l->next_claim_at, now + 20);
		ntf_engine_pop_result(l->engine);
	}
}

static void claim_step(struct loop *l, int64_t now)
{
	char err[1024];
	int slots = ntf_engine_free_slots(l->engine);
	if (!ntf_store_connected(l->store) || slots == 0 || (!l->wake && now < l->next_claim_at))
		return;
	l->wake = 0;
	struct ntf_note **notes = NULL;
	int n = ntf_store_claim(l->store, slots, l->with_email, &notes, err, sizeof(err));
	if (n < 0) {
		ntf_metrics_db_error();
		log_warnx("claiming notifications: %s%s; trying again in %lld ms", err,
			  strstr(err, "does not exist") ? " (run meterctl migrate)" : "",
			  (long long)l->claim_fail_delay);
		l->next_claim_at = now + l->claim_fail_delay;
		l->claim_fail_delay = min64(l->claim_fail_delay * 2, 30000);
		if (!ntf_store_connected(l->store))
			l->reconnect_at = now;
		return;
	}
	l->claim_fail_delay = 500;
	for (int i = 0; i < n; i++) {
		ntf_engine_start(l->engine, notes[i]);
		notes[i] = NULL; /* now owned by the engine */
	}
	free(notes);
	if (n > 0)
		log_debug("claimed %d notification(s)", n);
	int64_t d = ntf_store_next_due_ms(l->store, l->with_email, err, sizeof(err));
	int64_t delay = d < 0 ? l->cfg->notify_poll_ms : min64(d, l->cfg->notify_poll_ms);
	/* Rows due but not ours (another notifier holds them): look again soon,
	 * without spinning. */
	if (n == 0 && delay < 200)
		delay = 200;
	l->next_claim_at = now + delay;
}

static void apply_log_config(const struct meter_config *cfg)
{
	enum log_level lvl = LOG_LVL_INFO;
	log_level_parse(cfg->log_level, &lvl);
	log_init("meter-notifier", strcmp(cfg->log_format, "json") == 0, lvl);
}

/* SIGHUP: read the config file, environment and flags again; apply the
 * reloadable options (log format and level, concurrency, poll, retry
 * schedule, timeouts, shutdown grace) in place (the engine and store read
 * cfg and sched through their pointers), log what changed and what needs a
 * restart. A bad file or value changes nothing. */
static void reload(struct meter_config *cfg, struct ntf_schedule *sched, struct ntf_engine *engine)
{
	char err[1024], changed[2048], restart[1024];
	struct meter_config *next = malloc(sizeof(*next));
	struct ntf_schedule nsched;

	svc_reloading();
	if (!next) {
		log_errorx("reload: out of memory; keeping the running configuration");
	} else if (cfg_reload(next, err, sizeof(err)) != 0 ||
		   check_config(next, &nsched, err, sizeof(err)) != 0) {
		log_errorx("reload failed: %s; keeping the running configuration", err);
	} else {
		int n = cfg_apply_reload(cfg, next, CFG_NOTIFIER, changed, sizeof(changed), restart,
					 sizeof(restart));
		*sched = nsched; /* parsed from the schedule now in cfg */
		apply_log_config(cfg);
		ntf_engine_reconfigure(engine);
		log_info("configuration reloaded from %s: %s",
			 cfg->config_file[0] ? cfg->config_file : "the environment and flags",
			 n ? changed : "nothing changed");
		if (restart[0])
			log_warnx("reload: changed, but kept until a restart: %s", restart);
	}
	free(next);
	svc_ready("delivering notifications");
}

static int run(struct meter_config *cfg, struct ntf_schedule *sched)
{
	char err[1024];
	int rc = 1;
	struct loop l;
	memset(&l, 0, sizeof(l));
	l.cfg = cfg;
	l.with_email = cfg->smtp_url[0] != '\0';
	l.reconnect_delay = 200;
	l.claim_fail_delay = 500;
	l.store = ntf_store_new(cfg);
	l.engine = ntf_engine_new(cfg, sched, err, sizeof(err));
	if (!l.store || !l.engine) {
		log_errorx("%s", l.engine ? "out of memory" : err);
		goto out;
	}
	int64_t grace_end = -1;
	for (;;) {
		int64_t now = clock_mono_ms();
		int stopping = stop_flag != 0;
		svc_watchdog();
		if (reload_flag && !stopping) {
			reload_flag = 0;
			reload(cfg, sched, l.engine);
		}
		if (stopping)
			svc_stopping("stopping: %d deliveries in flight", ntf_engine_inflight(l.engine));
		if (stopping && grace_end < 0) {
			grace_end = now + cfg->shutdown_grace_ms;
			obs_set_state(OBS_STOPPING, "shutting down");
			log_info("stopping: no new claims; %d deliveries in flight (grace %lld ms)",
				 ntf_engine_inflight(l.engine), (long long)cfg->shutdown_grace_ms);
		}
		int hard = stopping && (stop_flag > 1 || now >= grace_end);
		if (hard && ntf_engine_inflight(l.engine) > 0) {
			log_warnx("stopping now: interrupting %d deliveries in flight",
				  ntf_engine_inflight(l.engine));
			ntf_engine_abort_all(l.engine);
		}
		db_connect_step(&l, now);
		record_step(&l, now);
		if (stopping && ntf_engine_inflight(l.engine) == 0) {
			if (ntf_engine_results(l.engine) == 0)
				break;
			if (hard) {
				log_warnx("%d attempt(s) not recorded (database unreachable): those "
					  "notifications are delivered again when their lease ends, "
					  "with the same id",
					  ntf_engine_results(l.engine));
				break;
			}
		}
		if (!stopping)
			claim_step(&l, now);

		now = clock_mono_ms();
		/* NOTIFYs read along with a query's answer are already buffered. */
		if (ntf_store_connected(l.store)) {
			int woke = ntf_store_consume(l.store);
			if (woke > 0)
				l.wake = 1;
			else if (woke < 0)
				l.reconnect_at = now;
		}
		int64_t timeout = cfg->notify_poll_ms;
		if (!stopping && ntf_store_connected(l.store))
			timeout = min64(timeout, l.next_claim_at - now);
		if (!ntf_store_connected(l.store))
			timeout = min64(timeout, l.reconnect_at - now);
		if (ntf_engine_results(l.engine) > 0 && ntf_store_connected(l.store))
			timeout = min64(timeout, l.record_retry_at - now);
		if (stopping)
			timeout = min64(timeout, grace_end - now);
		if (svc_watchdog_ms() > 0)
			timeout = min64(timeout, svc_watchdog_ms());
		if (l.wake && ntf_engine_free_slots(l.engine) > 0 && !stopping)
			timeout = 0;
		if (timeout < 0)
			timeout = 0;
		int fds[2] = {sig_pipe[0], ntf_store_socket(l.store)};
		int ready[2] = {0, 0};
		ntf_engine_run(l.engine, fds, ready, 2, (int)timeout);
		if (ready[0]) {
			char drain[64];
			while (read(sig_pipe[0], drain, sizeof(drain)) > 0)
				;
		}
		if (ready[1]) {
			int woke = ntf_store_consume(l.store);
			if (woke > 0)
				l.wake = 1;
			else if (woke < 0)
				l.reconnect_at = clock_mono_ms();
		}
	}
	log_info("stopped");
	rc = 0;
out:
	ntf_engine_destroy(l.engine);
	ntf_store_destroy(l.store);
	return rc;
}

int main(int argc, char **argv)
{
	struct meter_config cfg;
	struct ntf_schedule sched;
	char err[1024];
	int early = cfg_daemon_args("meter-notifier", METER_VERSION, CFG_NOTIFIER, usage, &cfg, argc, argv);
	if (early >= 0)
		return early;
	if (obs_check_addr("meter-notifier", cfg.http_addr) != 0)
		return 2;
	if (check_config(&cfg, &sched, err, sizeof(err)) != 0) {
		fprintf(stderr, "meter-notifier: %s\n", err);
		return 2;
	}
	apply_log_config(&cfg);
	svc_init();
	crash_report_install("meter-notifier");

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_errorx("curl_global_init failed");
		return 1;
	}
	if (pipe(sig_pipe) != 0) {
		log_warn("pipe");
		curl_global_cleanup();
		return 1;
	}
	for (int i = 0; i < 2; i++) {
		fcntl(sig_pipe[i], F_SETFL, fcntl(sig_pipe[i], F_GETFL) | O_NONBLOCK);
		fcntl(sig_pipe[i], F_SETFD, FD_CLOEXEC);
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = on_hup;
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	char db[512], smtp[CFG_STR_MAX + 8];
	db_redact_conninfo(cfg.database_url, db, sizeof(db));
	log_redact_url(cfg.smtp_url, smtp, sizeof(smtp));
	log_info("meter-notifier %s starting: database %s, smtp %s, %lld deliveries at once, "
		 "webhook timeout %lld ms, retries after %s",
		 METER_VERSION, *db ? db : "(PG* defaults)", *smtp ? smtp : "(none)",
		 (long long)cfg.notify_concurrency, (long long)cfg.webhook_timeout_ms,
		 cfg.notify_retry_schedule[0] ? cfg.notify_retry_schedule : "(no retries)");
	if (!cfg.smtp_url[0])
		log_warnx("METER_SMTP_URL is not set: email notifications stay pending until a "
			  "notifier with SMTP runs");
	if (cfg.webhook_allow_private)
		log_warnx("METER_WEBHOOK_ALLOW_PRIVATE is on: webhooks may reach loopback, "
			  "private and metadata addresses");

	int rc = 1;
	if (obs_start(&cfg, "meter-notifier", err, sizeof(err)) != 0 ||
	    obs_serve(cfg.http_addr, NULL, err, sizeof(err)) != 0) {
		log_errorx("%s (METER_HTTP_ADDR)", err);
	} else {
		ntf_metrics_init(obs_metrics());
		obs_set_state(OBS_RUNNING, NULL);
		svc_status("connecting to the database");
		rc = run(&cfg, &sched);
		svc_stopping("stopped");
	}
	obs_stop();
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	curl_global_cleanup();
	return rc;
}
