/* obs.h - what every daemon exposes for operations: a process-wide metrics
 * registry (with build info, start time, uptime, CPU time, RSS and the C
 * heap's allocated and free bytes), a lifecycle state, a
 * database probe, and the HTTP server that serves them (/metrics, /livez,
 * /readyz, and meter-api's routes) on METER_HTTP_ADDR.
 *
 * Readiness (/readyz) is: the state is running (not starting, stopping or
 * failed) and the database answers a probe query (cached for one second,
 * with short connect and statement timeouts, on a connection of its own).
 *
 * Process-wide like the logger: obs_start() once in main(), obs_stop() at
 * the end. Before obs_start(), obs_metrics() is NULL and every metric
 * update is a no-op.
 */
#ifndef METER_OBS_H
#define METER_OBS_H

#include <stddef.h>

#include "config.h"
#include "httpd.h"
#include "metrics.h"

enum obs_state { OBS_STARTING = 0, OBS_RUNNING, OBS_STOPPING, OBS_FAILED };

struct obs_app {
	httpd_handler_fn handler; /* routes other than /metrics /livez /readyz */
	void *opaque;
	unsigned threads;          /* server threads (a pool when > 1) */
	unsigned max_connections;
	const char *probe_sql;     /* readiness query; NULL: SELECT 1 */
};

/* Create the registry and the process metrics for prog (a string literal);
 * the probe uses cfg's database URL. 0, or -1 with errstr (out of memory). */
int obs_start(const struct meter_config *cfg, const char *prog, char *errstr,
	      size_t errstr_size);
/* Serve HTTP on addr (nothing when addr is empty); app may be NULL. 0, or -1
 * with errstr set (bad address, port taken). */
int obs_serve(const char *addr, const struct obs_app *app, char *errstr, size_t errstr_size);
/* A daemon's METER_HTTP_ADDR checked before it starts: 0 when empty or a
 * host:port, else 2 (a configuration error) after one line on stderr. */
int obs_check_addr(const char *prog, const char *addr);
/* Stop serving and free everything. Safe to call without obs_start. */
void obs_stop(void);

/* The registry, or NULL before obs_start. */
struct mx_registry *obs_metrics(void);

/* Set the lifecycle state; why (copied) says what /readyz reports while not
 * running ("starting: waiting for the database"). Thread-safe. */
void obs_set_state(enum obs_state s, const char *why);

/* The readiness check /readyz runs: 0 ready, else -1 with why set. */
int obs_ready(char *why, size_t why_size);

#endif
