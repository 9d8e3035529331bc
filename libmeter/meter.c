/* meter.c - the libmeter handle: options, meter_new/meter_destroy, stats,
 * and the small helpers the other files share (errors, clocks, random bytes,
 * RFC 3339 times, librdkafka properties).
 */
#include "meter_int.h"
#include "kafka_props.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define US_PER_SEC 1000000LL
#define SEC_PER_DAY 86400LL

/* ---- errors ------------------------------------------------------------------- */

int meter__fail(char *errstr, size_t errstr_size, int code, const char *fmt, ...)
{
	va_list ap;

	if (errstr && errstr_size > 0) {
		va_start(ap, fmt);
		vsnprintf(errstr, errstr_size, fmt, ap);
		va_end(ap);
	}
	return code;
}

void meter__set_last_error(meter_t *m, const char *fmt, ...)
{
	va_list ap;

	if (!m->err_lock_ok)
		return;
	pthread_mutex_lock(&m->err_lock);
	va_start(ap, fmt);
	vsnprintf(m->last_error, sizeof(m->last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->err_lock);
}

/* ---- clocks and random bytes ----------------------------------------------------- */

static int64_t wall_clock_us(void *opaque)
{
	struct timespec ts;

	(void)opaque;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t meter__now_us(const meter_t *m)
{
	return m->clock(m->clock_opaque);
}

int64_t meter__mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Fill out[0..n) from the kernel's CSPRNG: getrandom(), or /dev/urandom where
 * the system call is missing. Returns 0 or -1. */
static int os_random(void *out, size_t n)
{
	unsigned char *p = out;
	size_t got = 0;
	int fd;

	while (got < n) {
		ssize_t r = getrandom(p + got, n - got, 0);
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno != ENOSYS)
			return -1;
		break;
	}
	if (got == n)
		return 0;
	fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			close(fd);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	return 0;
}

/* n bytes (at most sizeof(m->rnd)) from a pool refilled by os_random(), so
 * that one emit does not cost one system call. */
int meter__random(meter_t *m, void *out, size_t n)
{
	int rc = 0;

	if (n > sizeof(m->rnd))
		return os_random(out, n);
	pthread_mutex_lock(&m->rnd_lock);
	if (sizeof(m->rnd) - m->rnd_used < n) {
		if (os_random(m->rnd, sizeof(m->rnd)) != 0) {
			rc = -1;
			goto out;
		}
		m->rnd_used = 0;
	}
	memcpy(out, m->rnd + m->rnd_used, n);
	memset(m->rnd + m->rnd_used, 0, n); /* hand each byte out once */
	m->rnd_used += n;
out:
	pthread_mutex_unlock(&m->rnd_lock);
	return rc;
}

/* ---- RFC 3339 --------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned mo, unsigned d)
{
	y -= mo <= 2;
	const int64_t era = (y >= 0 ? y : y - 399) / 400;
	const unsigned yoe = (unsigned)(y - era * 400);
	const unsigned doy = (153 * (mo > 2 ? mo - 3 : mo + 9) + 2) / 5 + d - 1;
	const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *mo, unsigned *d)
{
	z += 719468;
	const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	const unsigned doe = (unsigned)(z - era * 146097);
	const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	const unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*mo = mp < 10 ? mp + 3 : mp - 9;
	*y = (int64_t)yoe + era * 400 + (*mo <= 2);
}

static int digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)"; the fraction is truncated
 * to microseconds. Returns 0 and sets *out_us, or -1. */
int meter__parse_rfc3339(const char *s, size_t len, int64_t *out_us)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0, leap, dim;
	int64_t frac = 0, scale = 100000;
	size_t i = 19, nd = 0;

	if (len < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
	    s[7] != '-' || digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
	    digits(s + 17, 2, &sec))
		return -1;
	if (s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++) {
			if (nd < 6) {
				frac += (s[i] - '0') * scale;
				scale /= 10;
			}
		}
		if (nd == 0 || nd > 9)
			return -1;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		if (len - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
		    digits(s + i + 4, 2, &om))
			return -1;
		i += 6;
	} else {
		return -1;
	}
	if (i != len || y < 1 || mo < 1 || mo > 12)
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	dim = mo == 2 && leap ? 29 : mdays[mo - 1];
	if (d < 1 || d > dim || h > 23 || mi > 59 || sec > 59 || oh > 23 || om > 59)
		return -1;
	*out_us = (days_from_civil(y, (unsigned)mo, (unsigned)d) * SEC_PER_DAY + h * 3600LL +
		   mi * 60LL + sec - sign * (oh * 3600LL + om * 60LL)) *
			  US_PER_SEC +
		  frac;
	return 0;
}

/* "YYYY-MM-DDTHH:MM:SS.ffffffZ" (28 bytes with the NUL). */
void meter__format_time(int64_t us, char *out, size_t out_size)
{
	const int64_t us_per_day = SEC_PER_DAY * US_PER_SEC;
	int64_t days = us / us_per_day, rem = us % us_per_day, y;
	unsigned mo, d;

	if (rem < 0) {
		days--;
		rem += us_per_day;
	}
	civil_from_days(days, &y, &mo, &d);
	int64_t secs = rem / US_PER_SEC;
	snprintf(out, out_size, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", (long long)y, mo, d,
		 (unsigned)(secs / 3600), (unsigned)(secs / 60 % 60), (unsigned)(secs % 60),
		 (unsigned)(rem % US_PER_SEC));
}

/* ---- options --------------------------------------------------------------------- */

void meter_opts_init(meter_opts_t *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->emit = 1;
	opts->check = 1;
}

/* Set the caller's properties on the conf of the producer (producer 1) or
 * of the reader's consumer (0): those named "producer.x" or "consumer.x"
 * as x on that client only; any other on both, unless librdkafka documents
 * it for the other kind of client only (kafka_props.h: it would ignore it
 * with a CONFWARN line). */
int meter__apply_props(rd_kafka_conf_t *conf, const meter_opts_t *o, int producer,
		       char *errstr, size_t errstr_size)
{
	const char *only_prefix = producer ? "producer." : "consumer.";
	const char *skip_prefix = producer ? "consumer." : "producer.";
	char why[256];

	for (size_t i = 0; i < o->props_count; i++) {
		const char *name = o->props[i].name, *value = o->props[i].value;
		if (!name || !value)
			return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
					   "librdkafka property %zu: name and value are required",
					   i);
		if (!strncmp(name, skip_prefix, strlen(skip_prefix)))
			continue;
		if (!strncmp(name, only_prefix, strlen(only_prefix)))
			name += strlen(only_prefix);
		else if (!meter__kafka_prop_applies(name, producer))
			continue;
		if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) != RD_KAFKA_CONF_OK)
			return meter__fail(errstr, errstr_size, METER_ERR_INVALID,
					   "librdkafka property %s: %s", o->props[i].name, why);
	}
	return METER_OK;
}

static char *dup_or(const char *s, const char *dflt)
{
	return strdup(s && *s ? s : dflt);
}

/* ---- the handle -------------------------------------------------------------------- */

meter_t *meter_new(const char *brokers, const meter_opts_t *opts, char *errstr,
		   size_t errstr_size)
{
	meter_opts_t dflt;
	char host[128], src[160];
	meter_t *m;

	if (!opts) {
		meter_opts_init(&dflt);
		opts = &dflt;
	}
	if (!brokers || !*brokers) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "brokers: a bootstrap list such as \"localhost:9092\" is required");
		return NULL;
	}
	if (!opts->emit && !opts->check) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "options: enable emit, check or both");
		return NULL;
	}
	if (opts->follow_rollups && !opts->check) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "options: follow_rollups needs check (the same reader reads both topics)");
		return NULL;
	}
	if (opts->follow_rollups &&
	    !strcmp(opts->rollups_topic && *opts->rollups_topic ? opts->rollups_topic
								 : METER_DEFAULT_ROLLUPS_TOPIC,
		    opts->limits_topic && *opts->limits_topic ? opts->limits_topic
							      : METER_DEFAULT_LIMITS_TOPIC)) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "options: the rollups and limits topics must differ");
		return NULL;
	}
	if (opts->emit_timeout_ms < 0 || opts->metadata_refresh_ms < 0) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "options: emit_timeout_ms and metadata_refresh_ms must be >= 0");
		return NULL;
	}
	if (!(m = calloc(1, sizeof(*m)))) {
		meter__fail(errstr, errstr_size, METER_ERR_NOMEM, "out of memory");
		return NULL;
	}
	if (gethostname(host, sizeof(host)) != 0 || !host[0])
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(src, sizeof(src), "//%s/libmeter", host);
	m->events_topic = dup_or(opts->events_topic, METER_DEFAULT_EVENTS_TOPIC);
	m->limits_topic = dup_or(opts->limits_topic, METER_DEFAULT_LIMITS_TOPIC);
	m->rollups_topic = dup_or(opts->rollups_topic, METER_DEFAULT_ROLLUPS_TOPIC);
	m->follow_rollups = opts->follow_rollups != 0;
	m->source = dup_or(opts->source, src);
	m->emit_timeout_ms = opts->emit_timeout_ms ? opts->emit_timeout_ms
						   : METER_DEFAULT_EMIT_TIMEOUT_MS;
	m->flush_timeout_ms = opts->flush_timeout_ms ? opts->flush_timeout_ms
						     : METER_DEFAULT_FLUSH_TIMEOUT_MS;
	m->metadata_refresh_ms = opts->metadata_refresh_ms ? opts->metadata_refresh_ms
							   : METER_DEFAULT_METADATA_REFRESH_MS;
	m->on_delivery = opts->on_delivery;
	m->delivery_opaque = opts->delivery_opaque;
	m->clock = opts->clock ? opts->clock : wall_clock_us;
	m->clock_opaque = opts->clock_opaque;
	if (!m->events_topic || !m->limits_topic || !m->rollups_topic || !m->source) {
		meter__fail(errstr, errstr_size, METER_ERR_NOMEM, "out of memory");
		goto fail;
	}
	if (pthread_mutex_init(&m->rnd_lock, NULL) != 0)
		goto fail_mutex;
	m->rnd_lock_ok = 1;
	if (pthread_mutex_init(&m->err_lock, NULL) != 0)
		goto fail_mutex;
	m->err_lock_ok = 1;
	m->rnd_used = sizeof(m->rnd); /* empty: filled on first use */
	if (meter__random(m, &m->hash_seed, sizeof(m->hash_seed)) != 0) {
		meter__fail(errstr, errstr_size, METER_ERR_INVALID,
			    "cannot read random bytes from the kernel: %s", strerror(errno));
		goto fail;
	}
	if (opts->emit && meter__emit_start(m, brokers, opts, errstr, errstr_size) != METER_OK)
		goto fail;
	if (opts->check && meter__reader_start(m, brokers, opts, errstr, errstr_size) != METER_OK)
		goto fail;
	return m;
fail_mutex:
	meter__fail(errstr, errstr_size, METER_ERR_NOMEM, "cannot create a mutex");
fail:
	meter_destroy(m);
	return NULL;
}

void meter_destroy(meter_t *m)
{
	if (!m)
		return;
	meter__reader_stop(m);
	meter__emit_stop(m);
	if (m->rnd_lock_ok)
		pthread_mutex_destroy(&m->rnd_lock);
	if (m->err_lock_ok)
		pthread_mutex_destroy(&m->err_lock);
	free(m->events_topic);
	free(m->limits_topic);
	free(m->rollups_topic);
	free(m->source);
	free(m);
}

void meter_stats(meter_t *m, meter_stats_t *out)
{
	memset(out, 0, sizeof(*out));
	if (!m)
		return;
	out->emitted = atomic_load(&m->emitted);
	out->delivered = atomic_load(&m->delivered);
	out->delivery_failed = atomic_load(&m->delivery_failed);
	out->emit_invalid = atomic_load(&m->emit_invalid);
	out->emit_timeouts = atomic_load(&m->emit_timeouts);
	out->emit_errors = atomic_load(&m->emit_errors);
	out->flags_read = atomic_load(&m->flags_read);
	out->flags_malformed = atomic_load(&m->flags_malformed);
	out->flags_stale = atomic_load(&m->flags_stale);
	out->reader_errors = atomic_load(&m->reader_errors);
	out->partitions = atomic_load(&m->partitions);
	out->rollups_read = atomic_load(&m->rollups_read);
	out->rollups_malformed = atomic_load(&m->rollups_malformed);
	out->rollups_stale = atomic_load(&m->rollups_stale);
	out->rollup_partitions = atomic_load(&m->rollup_partitions);
	out->ready = atomic_load(&m->ready);
	if (m->stripes) {
		/* The counts belong to the table: read them under one stripe's lock,
		 * which the writer must also hold to change them. */
		pthread_rwlock_rdlock(&m->stripes[0].lock);
		out->subjects = m->table.count;
		out->blocked = m->table.blocked;
		out->rollup_slots = m->rtable.count;
		pthread_rwlock_unlock(&m->stripes[0].lock);
	}
	pthread_mutex_lock(&m->err_lock);
	memcpy(out->last_error, m->last_error, sizeof(out->last_error));
	pthread_mutex_unlock(&m->err_lock);
}
