/* obs.c - see obs.h. */
#include "obs.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "db.h"
#include "httpd.h"
#include "log.h"

#define PROBE_CACHE_S 1.0

static struct {
	pthread_mutex_t lock; /* state, why, and the probe */
	enum obs_state state;
	char why[256];
	const char *prog;
	char url[CFG_STR_MAX];
	char probe_sql[256];
	PGconn *probe;
	double probed_at; /* monotonic seconds; 0: never */
	int probe_ok;
	char probe_why[300];
	struct mx_registry *reg;
	struct mx_metric *m_uptime;
	struct mx_metric *m_cpu, *m_rss, *m_heap_used, *m_heap_free;
	double started_mono;
	struct httpd *http;
} obs = {.lock = PTHREAD_MUTEX_INITIALIZER};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct mx_registry *obs_metrics(void)
{
	return obs.reg;
}

void obs_set_state(enum obs_state s, const char *why)
{
	pthread_mutex_lock(&obs.lock);
	obs.state = s;
	snprintf(obs.why, sizeof(obs.why), "%s", why ? why : "");
	pthread_mutex_unlock(&obs.lock);
}

static void one_line(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n' || *p == '\r' || *p == '\t')
			*p = ' ';
	size_t n = strlen(s);
	while (n && s[n - 1] == ' ')
		s[--n] = '\0';
}

/* Run the probe query, connecting first if needed; caller holds the lock. */
static void probe_db(void)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!obs.probe || PQstatus(obs.probe) != CONNECTION_OK) {
			if (obs.probe)
				PQfinish(obs.probe);
			char app[64];
			snprintf(app, sizeof(app), "%s-probe", obs.prog);
			/* Short timeouts: a probe must answer within a probe's
			 * timeout (Kubernetes: 1 s by default, ours: a few). */
			const char *keys[] = {"application_name", "connect_timeout", "options",
					      "dbname", NULL};
			const char *vals[] = {app, "3", "-c statement_timeout=3000",
					      obs.url[0] ? obs.url : NULL, NULL};
			obs.probe = PQconnectdbParams(keys, vals, 1);
			if (!obs.probe || PQstatus(obs.probe) != CONNECTION_OK) {
				static const char pre[] = "database unreachable: ";
				memcpy(obs.probe_why, pre, sizeof(pre));
				db_connect_error(obs.url, obs.probe, obs.probe_why + sizeof(pre) - 1,
						 sizeof(obs.probe_why) - (sizeof(pre) - 1));
				one_line(obs.probe_why);
				obs.probe_ok = 0;
				return;
			}
		}
		PGresult *r = PQexec(obs.probe, obs.probe_sql);
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
			PQclear(r);
			obs.probe_ok = 1;
			obs.probe_why[0] = '\0';
			return;
		}
		db_describe(obs.probe, r, "database query failed", obs.probe_why,
			    sizeof(obs.probe_why));
		PQclear(r);
		obs.probe_ok = 0;
		if (PQstatus(obs.probe) == CONNECTION_OK)
			return; /* the server answered no: not a connection problem */
		/* The connection broke (server restarted): one fresh try. */
	}
}

int obs_ready(char *why, size_t why_size)
{
	int rc = 0;
	pthread_mutex_lock(&obs.lock);
	if (obs.state != OBS_RUNNING) {
		static const char *const names[] = {"starting", "running", "stopping", "failed"};
		snprintf(why, why_size, "%s%s%s", names[obs.state], obs.why[0] ? ": " : "",
			 obs.why);
		rc = -1;
		goto out;
	}
	double now = mono_s();
	/* Failures are cached too: while the database is down, a scraper or
	 * a probe polling fast costs one connection attempt a second. */
	if (obs.probed_at == 0 || now - obs.probed_at >= PROBE_CACHE_S) {
		probe_db();
		obs.probed_at = mono_s();
	}
	if (!obs.probe_ok) {
		snprintf(why, why_size, "%s", obs.probe_why);
		rc = -1;
	}
out:
	pthread_mutex_unlock(&obs.lock);
	return rc;
}

static int ready_cb(void *opaque, char *why, size_t why_size)
{
	(void)opaque;
	return obs_ready(why, why_size);
}

/* Resident set size in bytes from /proc/self/statm, or -1. */
static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	unsigned long size, resident;
	int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
	fclose(f);
	return ok ? (double)resident * (double)sysconf(_SC_PAGESIZE) : -1;
}

static void collect(void *opaque)
{
	(void)opaque;
	mx_set(obs.m_uptime, NULL, mono_s() - obs.started_mono);
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		mx_set(obs.m_cpu, NULL,
		       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
			       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	double rss = rss_bytes();
	if (rss >= 0)
		mx_set(obs.m_rss, NULL, rss);
#ifdef __GLIBC__
	/* The allocator's view: what the process holds allocated, and what it
	 * keeps free without returning it to the system. An RSS that grows
	 * while the first stays flat is the allocator's, not a leak. */
	struct mallinfo2 mi = mallinfo2();
	mx_set(obs.m_heap_used, NULL, (double)(mi.uordblks + mi.hblkhd));
	mx_set(obs.m_heap_free, NULL, (double)mi.fordblks);
#endif
}

int obs_start(const struct meter_config *cfg, const char *prog, char *errstr,
	      size_t errstr_size)
{
	obs.prog = prog;
	obs.started_mono = mono_s();
	snprintf(obs.url, sizeof(obs.url), "%s", cfg->database_url);
	snprintf(obs.probe_sql, sizeof(obs.probe_sql), "SELECT 1");
	obs.reg = mx_registry_new();
	if (!obs.reg) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	struct mx_metric *info = mx_gauge(obs.reg, "meter_build_info",
					  "Always 1; the labels say which program and version runs.",
					  "program,version");
	mx_set(info, MX_L(prog, METER_VERSION), 1);
	struct mx_metric *start = mx_gauge(obs.reg, "meter_start_time_seconds",
					   "When the process started, in seconds since the epoch.",
					   NULL);
	mx_set(start, NULL, (double)time(NULL));
	obs.m_uptime = mx_gauge(obs.reg, "meter_uptime_seconds",
				"Seconds since the process started.", NULL);
	obs.m_cpu = mx_counter(obs.reg, "process_cpu_seconds_total",
			       "User and system CPU time of the process, in seconds.", NULL);
	obs.m_rss = mx_gauge(obs.reg, "process_resident_memory_bytes",
			     "Resident set size of the process, in bytes.", NULL);
#ifdef __GLIBC__
	obs.m_heap_used = mx_gauge(obs.reg, "meter_heap_in_use_bytes",
				   "Bytes the process has allocated from the C heap (glibc"
				   " mallinfo2: arenas and mmapped chunks).",
				   NULL);
	obs.m_heap_free = mx_gauge(obs.reg, "meter_heap_free_bytes",
				   "Free bytes the C heap holds without returning them to the"
				   " system (glibc mallinfo2).",
				   NULL);
#endif
	mx_on_collect(obs.reg, collect, NULL);
	return 0;
}

int obs_serve(const char *addr, const struct obs_app *app, char *errstr, size_t errstr_size)
{
	if (!addr || !addr[0])
		return 0;
	if (app && app->probe_sql) {
		pthread_mutex_lock(&obs.lock);
		snprintf(obs.probe_sql, sizeof(obs.probe_sql), "%s", app->probe_sql);
		pthread_mutex_unlock(&obs.lock);
	}
	struct httpd_config hc;
	memset(&hc, 0, sizeof(hc));
	hc.addr = addr;
	hc.metrics = obs.reg;
	hc.ready = ready_cb;
	if (app) {
		hc.app = app->handler;
		hc.app_opaque = app->opaque;
		hc.threads = app->threads;
		hc.max_connections = app->max_connections;
	}
	obs.http = httpd_start(&hc, errstr, errstr_size);
	return obs.http ? 0 : -1;
}

int obs_check_addr(const char *prog, const char *addr)
{
	struct sockaddr_storage sa;
	unsigned len;
	char err[512];
	if (!addr[0] || httpd_parse_addr(addr, &sa, &len, err, sizeof(err)) == 0)
		return 0;
	fprintf(stderr, "%s: %s (METER_HTTP_ADDR, --http-addr)\n", prog, err);
	return 2;
}

void obs_stop(void)
{
	httpd_destroy(obs.http);
	obs.http = NULL;
	pthread_mutex_lock(&obs.lock);
	if (obs.probe)
		PQfinish(obs.probe);
	obs.probe = NULL;
	pthread_mutex_unlock(&obs.lock);
	mx_registry_destroy(obs.reg);
	obs.reg = NULL;
	obs.m_uptime = NULL;
	obs.m_cpu = obs.m_rss = obs.m_heap_used = obs.m_heap_free = NULL;
}
