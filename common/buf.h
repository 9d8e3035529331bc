/* buf.h - a growable byte buffer with an optional size cap, and the COPY
 * encoders (text and binary format) used to stage rows in PostgreSQL. */
#ifndef METER_BUF_H
#define METER_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;  /* 0: unbounded; otherwise appends beyond it fail */
	int toobig;  /* set once an append was refused for the cap */
	int oom;     /* set once an allocation failed */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
/* Each returns 0, or -1 (and sets toobig/oom) if the data did not fit. */
int buf_append(struct buf *b, const void *data, size_t len);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_putc(struct buf *b, char c);

/* COPY text format: fields separated by '\t', rows ended by '\n', NULL as \N.
 * copy_text escapes backslash, tab, newline and CR; s == NULL writes \N. */
void copy_text(struct buf *b, const char *s);
void copy_textn(struct buf *b, const char *s, size_t len);
/* Empty string as NULL (for optional ids). */
void copy_text_or_null(struct buf *b, const char *s);
void copy_i64(struct buf *b, int64_t v);
void copy_null(struct buf *b);
/* bytea in hex form (\\x...), escaped for COPY. */
void copy_bytea(struct buf *b, const void *data, size_t len);
void copy_sep(struct buf *b);
void copy_eol(struct buf *b);

/* COPY binary format (FORMAT binary): a header, then per row its field
 * count and per field its length (-1: NULL) and the value in the type's
 * binary (send/receive) form, big-endian; then a trailer. The server parses
 * no text: a timestamptz is 8 bytes instead of ~27 characters to parse, a
 * number needs no digits. Text goes as it is (no escapes); PostgreSQL still
 * checks it is valid UTF-8. */
void copyb_header(struct buf *b);
void copyb_trailer(struct buf *b);
void copyb_row(struct buf *b, int nfields);
void copyb_null(struct buf *b);
/* s == NULL writes NULL; copyb_text_or_null also takes "" as NULL. */
void copyb_text(struct buf *b, const char *s);
void copyb_text_or_null(struct buf *b, const char *s);
void copyb_i32(struct buf *b, int32_t v);
void copyb_i64(struct buf *b, int64_t v);
/* us: microseconds since 1970-01-01 00:00:00 UTC. */
void copyb_timestamptz(struct buf *b, int64_t us);
/* An integer numeric (scale 0). */
void copyb_numeric(struct buf *b, __int128 v);
/* JSON text as jsonb (the server parses it, as it does in text format);
 * NULL or "" writes NULL. */
void copyb_jsonb(struct buf *b, const char *json);

/* A JSON string: s (UTF-8, as PostgreSQL's text is) in quotes, with '"',
 * backslash and control bytes escaped. */
void json_textn(struct buf *b, const char *s, size_t len);

#endif
