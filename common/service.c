/* service.c - see service.h. libsystemd's sd_notify() does the protocol
 * (a datagram on the AF_UNIX socket in NOTIFY_SOCKET, abstract or not). */
#include "service.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "log.h"

static int64_t watchdog_us;  /* 0: off */
static int64_t last_ping_us; /* monotonic */
static int stopping_sent;

static int64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int enabled(void)
{
	const char *s = getenv("NOTIFY_SOCKET");
	return s && *s;
}

/* Send "<head>STATUS=<formatted>" (head may be ""). */
static void send_status(const char *head, const char *fmt, va_list ap)
{
	char status[512];
	int rc;
	vsnprintf(status, sizeof(status), fmt, ap);
	/* One line: a newline would start another assignment. */
	for (char *p = status; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	rc = sd_notifyf(0, "%sSTATUS=%s", head, status);
	if (rc < 0)
		log_debug("sd_notify: error %d", -rc);
}

void svc_init(void)
{
	uint64_t usec = 0;
	watchdog_us = 0;
	if (enabled() && sd_watchdog_enabled(0, &usec) > 0 && usec > 0)
		watchdog_us = (int64_t)usec;
	last_ping_us = 0;
	stopping_sent = 0;
}

void svc_ready(const char *fmt, ...)
{
	va_list ap;
	if (!enabled())
		return;
	va_start(ap, fmt);
	send_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void svc_status(const char *fmt, ...)
{
	va_list ap;
	if (!enabled())
		return;
	va_start(ap, fmt);
	send_status("", fmt, ap);
	va_end(ap);
}

void svc_reloading(void)
{
	if (!enabled())
		return;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading the configuration",
		   (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
}

void svc_stopping(const char *fmt, ...)
{
	va_list ap;
	if (!enabled() || stopping_sent)
		return;
	stopping_sent = 1;
	va_start(ap, fmt);
	send_status("STOPPING=1\n", fmt, ap);
	va_end(ap);
}

void svc_watchdog(void)
{
	if (!watchdog_us)
		return;
	int64_t now = mono_us();
	if (last_ping_us && now - last_ping_us < watchdog_us / 2)
		return;
	last_ping_us = now;
	sd_notify(0, "WATCHDOG=1");
}

int64_t svc_watchdog_ms(void)
{
	/* A quarter: a ping is due after half the interval, so the longest gap
	 * between two is three quarters of it. */
	return watchdog_us ? (watchdog_us / 4 + 999) / 1000 : 0;
}
