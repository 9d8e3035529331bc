/* log.h - one line per record, human-readable or JSON (METER_LOG_FORMAT=json).
 *
 * log_warn() appends strerror(errno); log_warnx() does not (OpenSMTPD style).
 * Never pass secrets (passwords, webhook secrets, tokens) to these functions:
 * use log_redact_url() for URLs, db_redact_conninfo() (db.h) for libpq
 * connection strings.
 */
#ifndef METER_LOG_H
#define METER_LOG_H

#include <stddef.h>

enum log_level { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Configure the process-wide logger. prog is borrowed and must outlive the
 * logger (a string literal). json != 0 selects one JSON object per line.
 * May be called again (a reload) while other threads log. */
void log_init(const char *prog, int json, enum log_level min_level);
/* Name what the calling thread logs from now on ("worker 2"): text lines
 * read "info: worker 2: message", JSON records get "ctx". ctx is borrowed
 * and must outlive the thread's logging; NULL or "" removes it. */
void log_set_context(const char *ctx);
/* Parse "debug|info|warn|error"; returns 0 on success, -1 on garbage. */
int log_level_parse(const char *s, enum log_level *out);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_errorx(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Copy a URL (smtp://user:secret@host:587) into out with the password of
 * its userinfo and any password= query parameter replaced by "***", so it
 * can be logged. Not for libpq connection strings, which have forms of
 * their own: db_redact_conninfo() (db.h) parses them with libpq. */
void log_redact_url(const char *url, char *out, size_t out_size);

#endif
