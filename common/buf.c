/* buf.c - see buf.h. */
#include "buf.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(struct buf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void buf_free(struct buf *b)
{
	if (!b)
		return;
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	b->toobig = 0;
	b->oom = 0;
	if (b->data)
		b->data[0] = '\0';
}

static int buf_reserve(struct buf *b, size_t extra)
{
	if (b->max && b->len + extra > b->max) {
		b->toobig = 1;
		return -1;
	}
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t ncap = b->cap ? b->cap : 256;
	while (ncap < b->len + extra + 1)
		ncap *= 2;
	char *n = realloc(b->data, ncap);
	if (!n) {
		b->oom = 1;
		return -1;
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

int buf_append(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) != 0)
		return -1;
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return 0;
}

int buf_putc(struct buf *b, char c)
{
	return buf_append(b, &c, 1);
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	char small[256];
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -1;
	if ((size_t)n < sizeof(small))
		return buf_append(b, small, (size_t)n);
	if (buf_reserve(b, (size_t)n) != 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void copy_textn(struct buf *b, const char *s, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		const char *esc = NULL;
		switch (s[i]) {
		case '\\': esc = "\\\\"; break;
		case '\t': esc = "\\t"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		default: continue;
		}
		buf_append(b, s + start, i - start);
		buf_append(b, esc, 2);
		start = i + 1;
	}
	buf_append(b, s + start, len - start);
}

void copy_text(struct buf *b, const char *s)
{
	if (!s) {
		copy_null(b);
		return;
	}
	copy_textn(b, s, strlen(s));
}

void copy_text_or_null(struct buf *b, const char *s)
{
	copy_text(b, (s && *s) ? s : NULL);
}

void copy_i64(struct buf *b, int64_t v)
{
	/* By hand: snprintf was a fifth of a batch's client time. */
	char tmp[24];
	size_t n = 0;
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;
	do {
		tmp[sizeof(tmp) - 1 - n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		tmp[sizeof(tmp) - 1 - n++] = '-';
	buf_append(b, tmp + sizeof(tmp) - n, n);
}

void copy_null(struct buf *b)
{
	buf_append(b, "\\N", 2);
}

void copy_bytea(struct buf *b, const void *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = data;
	/* In COPY text, the bytea hex prefix \x needs its backslash doubled. */
	buf_append(b, "\\\\x", 3);
	if (buf_reserve(b, len * 2) != 0)
		return;
	for (size_t i = 0; i < len; i++) {
		b->data[b->len++] = hex[p[i] >> 4];
		b->data[b->len++] = hex[p[i] & 15];
	}
	b->data[b->len] = '\0';
}

void copy_sep(struct buf *b)
{
	buf_putc(b, '\t');
}

void copy_eol(struct buf *b)
{
	buf_putc(b, '\n');
}

/* Days and microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
#define PG_EPOCH_DAYS 10957
#define PG_EPOCH_US ((int64_t)PG_EPOCH_DAYS * 86400 * 1000000)

static void put_be(struct buf *b, uint64_t v, int bytes)
{
	char tmp[8];
	for (int i = 0; i < bytes; i++)
		tmp[i] = (char)(v >> (8 * (bytes - 1 - i)));
	buf_append(b, tmp, (size_t)bytes);
}

void copyb_header(struct buf *b)
{
	/* Signature, flags (no OIDs), header extension length. */
	buf_append(b, "PGCOPY\n\377\r\n\0", 11);
	put_be(b, 0, 4);
	put_be(b, 0, 4);
}

void copyb_trailer(struct buf *b)
{
	put_be(b, 0xffff, 2);
}

void copyb_row(struct buf *b, int nfields)
{
	put_be(b, (uint64_t)nfields, 2);
}

void copyb_null(struct buf *b)
{
	put_be(b, 0xffffffff, 4);
}

void copyb_text(struct buf *b, const char *s)
{
	if (!s) {
		copyb_null(b);
		return;
	}
	size_t len = strlen(s);
	put_be(b, len, 4);
	buf_append(b, s, len);
}

void copyb_text_or_null(struct buf *b, const char *s)
{
	copyb_text(b, (s && *s) ? s : NULL);
}

void copyb_i32(struct buf *b, int32_t v)
{
	put_be(b, 4, 4);
	put_be(b, (uint32_t)v, 4);
}

void copyb_i64(struct buf *b, int64_t v)
{
	put_be(b, 8, 4);
	put_be(b, (uint64_t)v, 8);
}

void copyb_timestamptz(struct buf *b, int64_t us)
{
	copyb_i64(b, us - PG_EPOCH_US);
}

void copyb_numeric(struct buf *b, __int128 v)
{
	/* Base-10000 digits, most significant first, weight = the first
	 * digit's power of 10000; trailing zero digits left out. */
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
	uint16_t digits[12];
	int n = 0;
	while (u) {
		digits[n++] = (uint16_t)(u % 10000);
		u /= 10000;
	}
	int weight = n - 1, lo = 0;
	while (lo < n && digits[lo] == 0)
		lo++;
	int ndigits = n - lo;
	put_be(b, (uint64_t)(8 + 2 * ndigits), 4);
	put_be(b, (uint64_t)ndigits, 2);
	put_be(b, (uint16_t)(n ? weight : 0), 2);
	put_be(b, v < 0 ? 0x4000 : 0, 2);
	put_be(b, 0, 2); /* display scale */
	for (int i = n - 1; i >= lo; i--)
		put_be(b, digits[i], 2);
}

void copyb_jsonb(struct buf *b, const char *json)
{
	if (!json || !*json) {
		copyb_null(b);
		return;
	}
	size_t len = strlen(json);
	put_be(b, len + 1, 4);
	buf_putc(b, 1); /* jsonb's binary format version */
	buf_append(b, json, len);
}

void json_textn(struct buf *b, const char *s, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	buf_putc(b, '"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		char esc[6] = {'\\', 0};
		size_t n = 2;
		if (c == '"' || c == '\\')
			esc[1] = (char)c;
		else if (c == '\n')
			esc[1] = 'n';
		else if (c == '\t')
			esc[1] = 't';
		else if (c == '\r')
			esc[1] = 'r';
		else if (c < 0x20) {
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			n = 6;
		} else {
			continue;
		}
		buf_append(b, s + start, i - start);
		buf_append(b, esc, n);
		start = i + 1;
	}
	buf_append(b, s + start, len - start);
	buf_putc(b, '"');
}
