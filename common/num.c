/* num.c - see num.h. */
#include "num.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int num_parse_i64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	int neg = 0;
	if (!s || len == 0)
		return -1;
	if (s[0] == '-') {
		neg = 1;
		i = 1;
	} else if (s[0] == '+') {
		i = 1;
	}
	if (i == len)
		return -1;
	/* Accumulate as a negative number so INT64_MIN is reachable. */
	int64_t acc = 0;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		int d = s[i] - '0';
		if (acc < (INT64_MIN + d) / 10)
			return -1;
		acc = acc * 10 - d;
	}
	if (!neg) {
		if (acc == INT64_MIN)
			return -1;
		acc = -acc;
	}
	if (acc < min || acc > max)
		return -1;
	*out = acc;
	return 0;
}

int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s)
		return -1;
	return num_parse_i64n(s, strlen(s), min, max, out);
}

int num_parse_duration_ms(const char *s, int64_t *out_ms)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	if (!s)
		return -1;
	size_t len = strlen(s);
	size_t digits = 0;
	while (digits < len && isdigit((unsigned char)s[digits]))
		digits++;
	if (digits == 0)
		return -1;
	int64_t mult = 0;
	if (digits == len) {
		mult = 1;
	} else {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(s + digits, units[i].suffix) == 0)
				mult = units[i].ms;
	}
	if (mult == 0)
		return -1;
	int64_t v;
	if (num_parse_i64n(s, digits, 0, INT64_MAX / mult, &v) != 0)
		return -1;
	*out_ms = v * mult;
	return 0;
}

int num_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};
	if (!s)
		return -1;
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

int num_parse_usd_pico(const char *s, size_t len, int64_t max_pusd, int64_t *out)
{
	size_t i = 0;
	int64_t whole = 0, frac = 0;
	int frac_digits = 0, int_digits = 0;
	if (!s || len == 0)
		return -1;
	for (; i < len && s[i] != '.'; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (whole > (INT64_MAX - 9) / 10)
			return -1;
		whole = whole * 10 + (s[i] - '0');
		int_digits++;
	}
	if (i < len) {
		i++; /* '.' */
		if (i == len)
			return -1; /* "1." */
		for (; i < len; i++) {
			if (s[i] < '0' || s[i] > '9')
				return -1;
			if (frac_digits == 12)
				return -1;
			frac = frac * 10 + (s[i] - '0');
			frac_digits++;
		}
	}
	if (int_digits == 0)
		return -1; /* ".5" */
	for (; frac_digits < 12; frac_digits++)
		frac *= 10;
	const int64_t scale = 1000000000000LL;
	if (whole > (max_pusd - frac) / scale)
		return -1;
	int64_t v = whole * scale + frac;
	if (v > max_pusd)
		return -1;
	*out = v;
	return 0;
}

void num_format_pusd(const char *pusd_digits, int frac_digits, char *out, size_t out_size)
{
	const char *d = pusd_digits ? pusd_digits : "0";
	int neg = 0;
	if (*d == '-') {
		neg = 1;
		d++;
	}
	while (*d == '0' && d[1])
		d++;
	size_t n = strlen(d);
	char whole[64], frac[16];
	if (n > 12) {
		snprintf(whole, sizeof(whole), "%.*s", (int)(n - 12), d);
		snprintf(frac, sizeof(frac), "%s", d + n - 12);
	} else {
		snprintf(whole, sizeof(whole), "0");
		snprintf(frac, sizeof(frac), "%.*s%s", (int)(12 - n), "000000000000", d);
	}
	if (frac_digits < 0)
		frac_digits = 0;
	if (frac_digits > 12)
		frac_digits = 12;
	frac[frac_digits] = '\0';
	snprintf(out, out_size, "%s%s%s%s", neg ? "-" : "", whole, frac_digits ? "." : "", frac);
}

size_t num_format_i128(__int128 v, char *out, size_t out_size)
{
	char tmp[48];
	size_t n = 0;
	int neg = v < 0;
	if (v >= INT64_MIN && v <= INT64_MAX) { /* the common case, in 64 bits */
		int64_t s = (int64_t)v;
		uint64_t u = neg ? -(uint64_t)s : (uint64_t)s;
		do {
			tmp[n++] = (char)('0' + (int)(u % 10));
			u /= 10;
		} while (u);
		goto done;
	}
	unsigned __int128 u = neg ? -(unsigned __int128)v : (unsigned __int128)v;
	do {
		tmp[n++] = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
done:
	if (neg)
		tmp[n++] = '-';
	if (out_size == 0)
		return 0;
	size_t len = n < out_size - 1 ? n : out_size - 1;
	for (size_t i = 0; i < len; i++)
		out[i] = tmp[n - 1 - i];
	out[len] = '\0';
	return len;
}

int num_check_date(const char *s, int with_day, int min_year)
{
	size_t want = with_day ? 10 : 7;
	if (strlen(s) != want)
		return -1;
	for (size_t i = 0; i < want; i++) {
		if (i == 4 || i == 7) {
			if (s[i] != '-')
				return -1;
		} else if (s[i] < '0' || s[i] > '9') {
			return -1;
		}
	}
	int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	int m = (s[5] - '0') * 10 + (s[6] - '0');
	if (y < min_year || m < 1 || m > 12)
		return -1;
	if (with_day) {
		static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
		int d = (s[8] - '0') * 10 + (s[9] - '0');
		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
		if (d < 1 || d > mdays[m - 1] + (m == 2 && leap))
			return -1;
	}
	return 0;
}
