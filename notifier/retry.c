/* retry.c - the retry schedule, its jitter, and Retry-After. See notifier.h. */
#include <stdio.h>
#include <string.h>

#include "notifier.h"
#include "num.h"

#define NTF_DELAY_MAX_MS (7LL * 86400 * 1000)

int ntf_schedule_parse(const char *text, struct ntf_schedule *out, char *errstr,
		       size_t errstr_size)
{
	memset(out, 0, sizeof(*out));
	const char *p = text;
	while (*p == ' ')
		p++;
	if (*p == '\0')
		return 0;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char item[32];
		while (len && p[len - 1] == ' ')
			len--;
		if (out->n == NTF_SCHEDULE_MAX) {
			snprintf(errstr, errstr_size, "retry schedule: more than %d delays",
				 NTF_SCHEDULE_MAX);
			return -1;
		}
		int64_t ms;
		char shown[CFG_SHOWN_SIZE];
		if (len == 0 || len >= sizeof(item)) {
			snprintf(errstr, errstr_size,
				 "retry schedule: empty or overlong item in '%s' (use e.g. "
				 "5s,5m,30m,2h)",
				 cfg_shown(text, strlen(text), shown));
			return -1;
		}
		memcpy(item, p, len);
		item[len] = '\0';
		if (num_parse_duration_ms(item, &ms) != 0 || ms > NTF_DELAY_MAX_MS) {
			snprintf(errstr, errstr_size,
				 "retry schedule: '%s' is not a duration up to 7d (use a unit: "
				 "500ms, 5s, 5m, 2h, 1d)",
				 cfg_shown(item, len, shown));
			return -1;
		}
		out->delay_ms[out->n++] = ms;
		if (!end)
			break;
		p = end + 1;
		while (*p == ' ')
			p++;
	}
	return 0;
}

int ntf_retry_delay(const struct ntf_schedule *s, int attempt, int64_t retry_after_ms,
		    uint32_t rnd, int64_t *delay_ms)
{
	if (attempt < 1)
		attempt = 1;
	if (attempt > s->n)
		return -1;
	int64_t base = s->delay_ms[attempt - 1];
	/* base * (0.8 + 0.4 * rnd / 2^32), in integers: a spread of 40 % of
	 * base, offset by -20 %. base <= 7 days in ms (< 2^30), so the product
	 * with a 32-bit value fits in 64 bits. */
	int64_t spread = base * 2 / 5;
	int64_t d = base - base / 5 + (int64_t)(((uint64_t)spread * rnd) >> 32);
	if (retry_after_ms >= 0) {
		int64_t ra = retry_after_ms > NTF_RETRY_AFTER_MAX_MS ? NTF_RETRY_AFTER_MAX_MS
								     : retry_after_ms;
		if (ra > d)
			d = ra;
	}
	*delay_ms = d;
	return 0;
}

/* ---- Retry-After ---------------------------------------------------------- */

static const char *const wkday[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char *const weekday[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
				      "Thursday", "Friday", "Saturday"};
static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
				     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

/* A fixed-width run of digits at *p, advancing it. */
static int digits(const char **p, int n, int64_t *out)
{
	for (int i = 0; i < n; i++)
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
	if (num_parse_i64n(*p, (size_t)n, 0, 9999, out) != 0)
		return -1;
	*p += n;
	return 0;
}

static int lit(const char **p, const char *s)
{
	size_t n = strlen(s);
	if (strncmp(*p, s, n) != 0)
		return -1;
	*p += n;
	return 0;
}

static int word(const char **p, const char *const *names, int count, int *out)
{
	for (int i = 0; i < count; i++) {
		size_t n = strlen(names[i]);
		if (strncmp(*p, names[i], n) == 0) {
			*out = i;
			*p += n;
			return 0;
		}
	}
	return -1;
}

/* "HH:MM:SS" */
static int hms(const char **p, struct tm *tm)
{
	int64_t h, m, s;
	if (digits(p, 2, &h) || lit(p, ":") || digits(p, 2, &m) || lit(p, ":") ||
	    digits(p, 2, &s) || h > 23 || m > 59 || s > 60)
		return -1;
	tm->tm_hour = (int)h;
	tm->tm_min = (int)m;
	tm->tm_sec = (int)s;
	return 0;
}

/* Parse an HTTP-date (RFC 9110 section 5.6.7) into a UTC struct tm. */
static int http_date(const char *p, struct tm *tm)
{
	int wd, mon;
	int64_t day, year;
	const char *start = p;
	memset(tm, 0, sizeof(*tm));
	if (word(&p, weekday, 7, &wd) == 0 && lit(&p, ", ") == 0) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT (two-digit year: a year
		 * that looks more than 50 years ahead is in the past century). */
		if (digits(&p, 2, &day) || lit(&p, "-") || word(&p, months, 12, &mon) ||
		    lit(&p, "-") || digits(&p, 2, &year) || lit(&p, " ") || hms(&p, tm) ||
		    lit(&p, " GMT") || *p)
			return -1;
		year += year < 70 ? 2000 : 1900;
	} else if ((p = start, word(&p, wkday, 7, &wd) == 0 && lit(&p, ", ") == 0)) {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
		if (digits(&p, 2, &day) || lit(&p, " ") || word(&p, months, 12, &mon) ||
		    lit(&p, " ") || digits(&p, 4, &year) || lit(&p, " ") || hms(&p, tm) ||
		    lit(&p, " GMT") || *p)
			return -1;
	} else if ((p = start, word(&p, wkday, 7, &wd) == 0 && lit(&p, " ") == 0)) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		if (word(&p, months, 12, &mon) || lit(&p, " "))
			return -1;
		if (*p == ' ') {
			p++;
			if (digits(&p, 1, &day))
				return -1;
		} else if (digits(&p, 2, &day)) {
			return -1;
		}
		if (lit(&p, " ") || hms(&p, tm) || lit(&p, " ") || digits(&p, 4, &year) || *p)
			return -1;
	} else {
		return -1;
	}
	static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (day < 1 || day > mdays[mon] || year < 1970)
		return -1;
	tm->tm_mday = (int)day;
	tm->tm_mon = mon;
	tm->tm_year = (int)year - 1900;
	return 0;
}

int ntf_retry_after_parse(const char *value, time_t now, int64_t *delay_ms)
{
	if (!value)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	size_t len = strlen(value);
	while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' || value[len - 1] == '\r' ||
		       value[len - 1] == '\n'))
		len--;
	if (len == 0 || len > 64)
		return -1;
	char v[65];
	memcpy(v, value, len);
	v[len] = '\0';
	int64_t secs;
	if (v[0] >= '0' && v[0] <= '9') {
		/* delta-seconds: cap absurd values instead of refusing them. */
		size_t nd = strspn(v, "0123456789");
		if (nd != len)
			return -1;
		if (nd > 12)
			secs = 999999999999LL;
		else if (num_parse_i64(v, 0, INT64_MAX, &secs) != 0)
			return -1;
		if (secs > NTF_RETRY_AFTER_MAX_MS / 1000)
			secs = NTF_RETRY_AFTER_MAX_MS / 1000;
		*delay_ms = secs * 1000;
		return 0;
	}
	struct tm tm;
	if (http_date(v, &tm) != 0)
		return -1;
	time_t at = timegm(&tm);
	if (at == (time_t)-1)
		return -1;
	int64_t d = (int64_t)at - (int64_t)now;
	if (d < 0)
		d = 0;
	if (d > NTF_RETRY_AFTER_MAX_MS / 1000)
		d = NTF_RETRY_AFTER_MAX_MS / 1000;
	*delay_ms = d * 1000;
	return 0;
}
