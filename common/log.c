/* log.c - see log.h. */
#define _GNU_SOURCE
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *log_prog = "meter";
/* Atomic: a reload (SIGHUP) changes them while librdkafka's threads log. */
static atomic_int log_json;
static atomic_int log_min = LOG_LVL_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* The calling thread's context (log_set_context), borrowed. */
static _Thread_local const char *log_ctx;

void log_set_context(const char *ctx)
{
	log_ctx = ctx && *ctx ? ctx : NULL;
}

void log_init(const char *prog, int json, enum log_level min_level)
{
	log_prog = prog;
	atomic_store(&log_json, json);
	atomic_store(&log_min, (int)min_level);
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Append s to out as the body of a JSON string (escaped). */
static size_t json_escape(char *out, size_t cap, size_t pos, const char *s)
{
	for (; *s && pos + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			out[pos++] = '\\';
			out[pos++] = (char)c;
		} else if (c < 0x20) {
			pos += (size_t)snprintf(out + pos, cap - pos, "\\u%04x", c);
		} else {
			out[pos++] = (char)c;
		}
	}
	out[pos] = '\0';
	return pos;
}

static void log_emit(enum log_level lvl, int with_errno, const char *fmt, va_list ap)
{
	int saved = errno;
	if ((int)lvl < atomic_load(&log_min))
		return;

	char msg[2048];
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	if (n < 0)
		return;
	if (with_errno && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(saved));
	/* One record, one line: never let a newline from data split it. */
	for (char *p = msg; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);
	char when[96];
	snprintf(when, sizeof(when), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 ts.tv_nsec / 1000000);

	char line[4800];
	const char *ctx = log_ctx;
	if (atomic_load(&log_json)) {
		size_t pos = (size_t)snprintf(line, sizeof(line),
					      "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\","
					      "\"pid\":%d,",
					      when, level_names[lvl], log_prog, (int)getpid());
		if (ctx) {
			pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"ctx\":\"");
			pos = json_escape(line, sizeof(line) - 4, pos, ctx);
			pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\",");
		}
		pos += (size_t)snprintf(line + pos, sizeof(line) - pos, "\"msg\":\"");
		pos = json_escape(line, sizeof(line) - 4, pos, msg);
		snprintf(line + pos, sizeof(line) - pos, "\"}\n");
	} else {
		snprintf(line, sizeof(line), "%s %s[%d] %s: %s%s%s\n", when, log_prog, (int)getpid(),
			 level_names[lvl], ctx ? ctx : "", ctx ? ": " : "", msg);
	}
	/* One write per record so concurrent writers do not interleave. */
	ssize_t w = write(STDERR_FILENO, line, strlen(line));
	(void)w;
	errno = saved;
}

#define LOG_FN(name, lvl, err)                                                                     \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		log_emit(lvl, err, fmt, ap);                                                       \
		va_end(ap);                                                                        \
	}

LOG_FN(log_debug, LOG_LVL_DEBUG, 0)
LOG_FN(log_info, LOG_LVL_INFO, 0)
LOG_FN(log_warnx, LOG_LVL_WARN, 0)
LOG_FN(log_warn, LOG_LVL_WARN, 1)
LOG_FN(log_errorx, LOG_LVL_ERROR, 0)

void log_redact_url(const char *url, char *out, size_t out_size)
{
	if (out_size == 0)
		return;
	out[0] = '\0';
	if (!url)
		return;
	size_t o = 0;
	const char *scheme = strstr(url, "://");
	if (scheme) {
		/* URI: postgresql://user:secret@host/db?password=x */
		const char *auth = scheme + 3;
		const char *at = strchr(auth, '@');
		const char *slash = strchr(auth, '/');
		const char *colon = strchr(auth, ':');
		for (const char *p = url; *p && o + 4 < out_size; p++) {
			if (at && colon && colon < at && (!slash || at < slash) && p == colon + 1) {
				memcpy(out + o, "***", 3);
				o += 3;
				p = at - 1;
				continue;
			}
			out[o++] = *p;
		}
		out[o] = '\0';
	} else {
		snprintf(out, out_size, "%s", url);
	}
	/* key=value form (and URI query): password=... up to the next space or & */
	char *p = out;
	while ((p = strstr(p, "password=")) != NULL) {
		char *v = p + strlen("password=");
		char *end = v;
		while (*end && *end != ' ' && *end != '&')
			end++;
		size_t tail = strlen(end);
		if ((size_t)(v - out) + 3 + tail + 1 > out_size)
			break;
		memmove(v + 3, end, tail + 1);
		memcpy(v, "***", 3);
		p = v + 3;
	}
}
