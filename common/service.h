/* service.h - the systemd service protocol (sd_notify(3)) for daemons run
 * with Type=notify: READY=1 once the daemon really serves, STATUS= lines,
 * RELOADING=1 around a reload, STOPPING=1 when it begins to stop, and
 * WATCHDOG=1 keep-alives when the unit sets WatchdogSec=.
 *
 * Every call is a cheap no-op when NOTIFY_SOCKET is unset (not started by
 * systemd, or not Type=notify), so the daemons call them unconditionally.
 * Single-threaded use: call them from the daemon's main loop, never from a
 * signal handler.
 */
#ifndef METER_SERVICE_H
#define METER_SERVICE_H

#include <stdint.h>

/* Read the watchdog settings (WATCHDOG_USEC, WATCHDOG_PID). Call once. */
void svc_init(void);

/* READY=1 with a STATUS= line (printf format). Again after a reload. */
void svc_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STATUS=<text>: what the daemon is doing ("waiting for the database: ..."). */
void svc_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* RELOADING=1 (with MONOTONIC_USEC) before a reload; svc_ready() after it. */
void svc_reloading(void);
/* STOPPING=1 with a STATUS= line; only the first call sends. */
void svc_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* WATCHDOG=1 when the watchdog is on and half its interval has passed
 * since the last one: call it every turn of the main loop. */
void svc_watchdog(void);
/* The longest a main loop may sleep between svc_watchdog() calls (a
 * quarter of the watchdog interval), in ms; 0 when the watchdog is off. */
int64_t svc_watchdog_ms(void);

#endif
