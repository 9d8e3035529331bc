/* num.h - the one checked way to turn text into numbers.
 * Every function rejects empty strings, trailing garbage and out-of-range
 * values, and never touches *out on failure. Never use atoi/atol/strtod. */
#ifndef METER_NUM_H
#define METER_NUM_H

#include <stddef.h>
#include <stdint.h>

/* Decimal integer (optional leading '-') within [min, max]. 0 ok, -1 bad. */
int num_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Same, for a buffer that is not NUL-terminated. */
int num_parse_i64n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);

/* Duration: an integer with a unit suffix ms, s, m, h or d ("250ms", "72h").
 * A bare integer is taken as milliseconds. Result in milliseconds, >= 0. */
int num_parse_duration_ms(const char *s, int64_t *out_ms);

/* A calendar date YYYY-MM-DD (with_day) or month YYYY-MM, with real values
 * (no 2023-02-29), year at least min_year. 0 when valid, -1 otherwise. */
int num_check_date(const char *s, int with_day, int min_year);

/* Boolean: 1/0, true/false, yes/no, on/off (case-insensitive). */
int num_parse_bool(const char *s, int *out);

/* A non-negative decimal USD amount ("0.0042", "12", "3.5") with at most 12
 * fractional digits, to pico-USD (1 USD = 10^12 pUSD), at most max_pusd. */
int num_parse_usd_pico(const char *s, size_t len, int64_t max_pusd, int64_t *out);

/* Format pico-USD (which may exceed int64 in rollups: pass as a decimal string
 * of digits) as USD with the given number of fractional digits, truncating.
 * pusd_digits is a string of decimal digits, optionally with a leading '-'. */
void num_format_pusd(const char *pusd_digits, int frac_digits, char *out, size_t out_size);

/* Decimal digits of a 128-bit integer (sums of pico-USD); out needs 41
 * bytes. Returns the length written. */
size_t num_format_i128(__int128 v, char *out, size_t out_size);

#endif
