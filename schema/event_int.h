/* event_int.h - what event.c and event_fast.c share; not for other parts.
 *
 * ev_parse() (event.h) first tries ev_parse_fast(), a single pass over the
 * bytes that handles the common shape of a valid event without building a
 * tree. Anything it does not accept goes to ev_parse_full(), the jansson
 * parser, which alone decides rejections and writes their details. The fast
 * path therefore only has to be right about what it accepts: the same events
 * with the same fields as ev_parse_full(). fuzz_event checks exactly that.
 */
#ifndef METER_EVENT_INT_H
#define METER_EVENT_INT_H

#include "event.h"

#define EV_DEFAULT_MAX_BYTES 65536
#define EV_LATENCY_MS_MAX 86400000LL
#define EV_STATUS_MIN 100
#define EV_STATUS_MAX 599

enum ev_charset {
	CS_ID,     /* [A-Za-z0-9._~:@+=-]: safe inside Kafka keys like tenant/acme/... */
	CS_NAME,   /* [a-z0-9_.-]: provider, operation */
	CS_MODEL,  /* [A-Za-z0-9._:@+/-]: "models/gemini-1.5-pro" */
	CS_UNIT,   /* [a-z0-9_] */
	CS_METHOD, /* [A-Za-z] */
	CS_TEXT,   /* any UTF-8 except control characters (< 0x20, 0x7f) */
};

/* 1 if byte c may appear in a string of charset cs. */
int ev_char_allowed(enum ev_charset cs, unsigned char c);

/* Check s[0..len) against 1..max bytes of charset cs: 0, or -1 with *err
 * naming path. */
int ev_check_string(const char *path, const char *s, size_t len, size_t max,
		    enum ev_charset cs, struct ev_error *err);

/* The lateness and future bounds of lim (none when lim or lim->now_us is 0):
 * 0, or -1 with *err. */
int ev_check_window(const struct ev_limits *lim, const struct meter_event *ev,
		    struct ev_error *err);

/* Zero *ev and set the defaults of absent fields (requests 1, status and
 * latency -1). */
void ev_init(struct meter_event *ev);

/* The fast path: 0 with *ev filled (release with ev_clear()), or 1 when
 * ev_parse_full() must decide, with *ev cleared. len is within the size cap.
 * It declines whatever it does not handle itself: any invalid input, escapes
 * in strings, "-0", nesting deeper than a few levels and objects with many
 * keys. */
int ev_parse_fast(const char *buf, size_t len, const struct ev_limits *lim,
		  struct meter_event *ev);

/* The jansson parser: ev_parse() without the fast path. Same contract. */
int ev_parse_full(const void *buf, size_t len, const struct ev_limits *lim,
		  struct meter_event *ev, struct ev_error *err);

/* 1 if a and b hold the same event, field by field (for the tests and
 * fuzz_event, which compare the two paths). */
int ev_equal(const struct meter_event *a, const struct meter_event *b);

#endif
