/* event_fast.c - the fast path of ev_parse() (see event_int.h).
 *
 * Why it exists: callgrind on meterd draining 60,000 bench events put
 * json_loadb() and json_delete() at about half of meterd's instructions,
 * ~100,000 per ~450-byte event (jansson reads a character at a time through
 * its stream layer and allocates every key and value). This path reads the
 * bytes once, keeps spans into the payload instead of copies, validates as it
 * goes and allocates nothing but units_json.
 *
 * It only has to be right about what it accepts. Whatever is not a valid
 * event of the common shape, it declines (returns 1) and ev_parse_full()
 * decides, with jansson's error positions and the usual details. Declined:
 * any syntax or validation error, backslash escapes, duplicate keys (checked
 * in every object), objects with more than MAX_KEYS members, nesting deeper
 * than MAX_DEPTH, integers outside int64 or written "-0", numbers with a
 * fraction or exponent where data expects an integer.
 */
#include "event_int.h"

#include "num.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16 /* nesting of objects and arrays */
#define MAX_KEYS 48  /* members of one object */

struct span {
	const char *s;
	size_t n;
};

struct rd {
	const char *p, *end;
};

enum vtype { V_NONE = 0, V_NULL, V_BOOL, V_STRING, V_INT, V_REAL, V_OBJECT, V_ARRAY };

struct val {
	enum vtype t;
	struct span s; /* V_STRING: the bytes between the quotes */
	int64_t i;     /* V_INT */
};

typedef int (*member_fn)(void *ctx, struct span key, struct rd *r, int depth);

static int value(struct rd *r, int depth, struct val *v);

static void ws(struct rd *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int eq_n(struct span k, const char *lit, size_t n)
{
	return k.n == n && memcmp(k.s, lit, n) == 0;
}

/* k equals the string literal lit. */
#define eq(k, lit) eq_n((k), "" lit, sizeof(lit) - 1)

/* Length of the UTF-8 sequence at p (its first byte >= 0x80), or -1 when it
 * is not well formed: overlong forms, surrogates and code points over
 * U+10FFFF are refused, as jansson refuses them. */
static int utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned c = p[0];
	unsigned lo = 0x80, hi = 0xbf;
	int n;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		return -1;
	}
	if (end - p < n || p[1] < lo || p[1] > hi)
		return -1;
	for (int k = 2; k < n; k++)
		if (p[k] < 0x80 || p[k] > 0xbf)
			return -1;
	return n;
}

/* A string without escapes at r->p (the opening quote). */
static int str(struct rd *r, struct span *out)
{
	const unsigned char *p = (const unsigned char *)r->p + 1;
	const unsigned char *end = (const unsigned char *)r->end;
	const unsigned char *start = p;
	for (;;) {
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			p++; /* the common run of plain ASCII */
		if (p >= end)
			return -1;
		unsigned c = *p;
		if (c == '"')
			break;
		if (c < 0x80) /* a control character or a backslash */
			return -1;
		int n = utf8_seq(p, end);
		if (n < 0)
			return -1;
		p += n;
	}
	out->s = (const char *)start;
	out->n = (size_t)(p - start);
	r->p = (const char *)p + 1;
	return 0;
}

static int digit(char c)
{
	return c >= '0' && c <= '9';
}

/* A number at r->p, by RFC 8259's grammar. An integer must fit int64 (as
 * jansson requires); a real must not overflow a double (jansson's rule). */
static int num(struct rd *r, struct val *v)
{
	const char *p = r->p, *start = r->p, *end = r->end;
	int neg = 0, real = 0;
	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p >= end || !digit(*p))
		return -1;
	if (*p == '0')
		p++;
	else
		while (p < end && digit(*p))
			p++;
	const char *int_end = p;
	if (p < end && *p == '.') {
		p++;
		if (p >= end || !digit(*p))
			return -1;
		while (p < end && digit(*p))
			p++;
		real = 1;
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p >= end || !digit(*p))
			return -1;
		while (p < end && digit(*p))
			p++;
		real = 1;
	}
	r->p = p;
	if (real) {
		char buf[64];
		size_t n = (size_t)(p - start);
		if (n >= sizeof(buf))
			return -1;
		memcpy(buf, start, n);
		buf[n] = '\0';
		errno = 0;
		double d = strtod(buf, NULL);
		if (errno == ERANGE && isinf(d))
			return -1;
		v->t = V_REAL;
		return 0;
	}
	/* The grammar is checked above; num.c's helper does the range. "-0"
	 * is left to jansson, which makes it 0. */
	int64_t x;
	if (num_parse_i64n(start, (size_t)(int_end - start), INT64_MIN, INT64_MAX, &x) != 0 ||
	    (neg && x == 0))
		return -1;
	v->t = V_INT;
	v->i = x;
	return 0;
}

static int literal(struct rd *r, const char *lit, enum vtype t, struct val *v)
{
	size_t n = strlen(lit);
	if ((size_t)(r->end - r->p) < n || memcmp(r->p, lit, n) != 0)
		return -1;
	r->p += n;
	v->t = t;
	return 0;
}

/* At an opening bracket: -1 past MAX_DEPTH, 1 for an empty object or array
 * (consumed with its closing bracket), else 0 with r->p at the first item. */
static int open_bracket(struct rd *r, int depth, char close)
{
	if (depth > MAX_DEPTH)
		return -1;
	r->p++;
	ws(r);
	if (r->p < r->end && *r->p == close) {
		r->p++;
		return 1;
	}
	return 0;
}

/* After a member or element: 0 at a ',' (consumed, with the blanks after
 * it), 1 at the closing bracket (consumed), -1 otherwise. */
static int next_or_close(struct rd *r, char close)
{
	ws(r);
	if (r->p >= r->end)
		return -1;
	if (*r->p == close) {
		r->p++;
		return 1;
	}
	if (*r->p != ',')
		return -1;
	r->p++;
	ws(r);
	return 0;
}

/* The members of the object at r->p ('{'), each value consumed by fn.
 * Duplicate keys are refused, like JSON_REJECT_DUPLICATES. */
static int members(struct rd *r, int depth, member_fn fn, void *ctx)
{
	struct span keys[MAX_KEYS];
	int nk = 0, open = open_bracket(r, depth, '}');
	if (open != 0)
		return open < 0 ? -1 : 0;
	for (;;) {
		struct span k;
		if (r->p >= r->end || *r->p != '"' || str(r, &k) != 0 || nk == MAX_KEYS)
			return -1;
		for (int i = 0; i < nk; i++)
			if (keys[i].n == k.n && memcmp(keys[i].s, k.s, k.n) == 0)
				return -1;
		keys[nk++] = k;
		ws(r);
		if (r->p >= r->end || *r->p != ':')
			return -1;
		r->p++;
		ws(r);
		if (r->p >= r->end || fn(ctx, k, r, depth) != 0)
			return -1;
		int next = next_or_close(r, '}');
		if (next != 0)
			return next < 0 ? -1 : 0;
	}
}

static int skip_member(void *ctx, struct span key, struct rd *r, int depth)
{
	struct val v;
	(void)ctx;
	(void)key;
	return value(r, depth, &v);
}

static int elements(struct rd *r, int depth)
{
	int open = open_bracket(r, depth, ']');
	if (open != 0)
		return open < 0 ? -1 : 0;
	for (;;) {
		struct val v;
		if (value(r, depth, &v) != 0)
			return -1;
		int next = next_or_close(r, ']');
		if (next != 0)
			return next < 0 ? -1 : 0;
	}
}

/* Any value at r->p; objects and arrays are checked and skipped. */
static int value(struct rd *r, int depth, struct val *v)
{
	memset(v, 0, sizeof(*v));
	if (r->p >= r->end)
		return -1;
	switch (*r->p) {
	case '"':
		v->t = V_STRING;
		return str(r, &v->s);
	case '{':
		v->t = V_OBJECT;
		return members(r, depth + 1, skip_member, NULL);
	case '[':
		v->t = V_ARRAY;
		return elements(r, depth + 1);
	case 't': return literal(r, "true", V_BOOL, v);
	case 'f': return literal(r, "false", V_BOOL, v);
	case 'n': return literal(r, "null", V_NULL, v);
	default:
		if (*r->p == '-' || digit(*r->p))
			return num(r, v);
		return -1;
	}
}

/* ---- data.metadata, written as jansson writes it ------------------------ */

/* The compact text of a checked value with sorted keys: what json_dumpb()
 * gives with event.c's DUMP_FLAGS. Strings go out as they came (they hold no
 * escapes, and jansson escapes nothing else that may appear raw), integers
 * too (JSON has one way to write each, "-0" aside, which was declined), and
 * reals through jansson's format: %.15g, ".0" when that reads as an integer,
 * no '+' or leading zeros in the exponent. */
struct out {
	char *b;
	size_t n, cap;
};

struct member {
	struct span key;
	const char *val;
};

static int put(struct out *o, const char *s, size_t n)
{
	if (n > o->cap - o->n)
		return -1;
	memcpy(o->b + o->n, s, n);
	o->n += n;
	return 0;
}

static int put_real(struct out *o, const char *s, size_t n)
{
	char in[64], t[40];
	if (n >= sizeof(in))
		return -1;
	memcpy(in, s, n);
	in[n] = '\0';
	int len = snprintf(t, sizeof(t) - 2, "%.15g", strtod(in, NULL));
	if (len < 0 || (size_t)len >= sizeof(t) - 2)
		return -1;
	if (!strchr(t, '.') && !strchr(t, 'e')) {
		memcpy(t + len, ".0", 3);
		len += 2;
	}
	char *e = strchr(t, 'e');
	if (e) {
		char *from = e + 1, *to = e + 1;
		if (*from == '-')
			*to++ = *from++;
		else if (*from == '+')
			from++;
		while (*from == '0' && from[1] != '\0')
			from++;
		memmove(to, from, strlen(from) + 1);
		len = (int)strlen(t);
	}
	return put(o, t, (size_t)len);
}

static int member_cmp(const void *a, const void *b)
{
	const struct span *x = &((const struct member *)a)->key;
	const struct span *y = &((const struct member *)b)->key;
	int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
	return c ? c : (x->n > y->n) - (x->n < y->n);
}

static int emit(struct rd *r, struct out *o);

static int emit_object(struct rd *r, struct out *o)
{
	struct member m[MAX_KEYS];
	struct val v;
	int n = 0, at = open_bracket(r, 0, '}');
	while (at == 0) {
		if (n == MAX_KEYS || str(r, &m[n].key) != 0)
			return -1;
		ws(r);
		r->p++; /* ':' */
		ws(r);
		m[n++].val = r->p;
		if (value(r, 0, &v) != 0)
			return -1;
		at = next_or_close(r, '}');
	}
	if (at < 0)
		return -1;
	qsort(m, (size_t)n, sizeof(m[0]), member_cmp);
	if (put(o, "{", 1) != 0)
		return -1;
	for (int i = 0; i < n; i++) {
		struct rd sub = {m[i].val, r->end};
		if ((i && put(o, ",", 1) != 0) || put(o, m[i].key.s - 1, m[i].key.n + 2) != 0 ||
		    put(o, ":", 1) != 0 || emit(&sub, o) != 0)
			return -1;
	}
	return put(o, "}", 1);
}

static int emit(struct rd *r, struct out *o)
{
	const char *start = r->p;
	struct val v;
	if (*r->p == '{')
		return emit_object(r, o);
	if (*r->p == '[') {
		int at = open_bracket(r, 0, ']');
		if (put(o, "[", 1) != 0)
			return -1;
		for (int i = 0; at == 0; i++) {
			if ((i && put(o, ",", 1) != 0) || emit(r, o) != 0)
				return -1;
			at = next_or_close(r, ']');
		}
		return at < 0 ? -1 : put(o, "]", 1);
	}
	if (value(r, 0, &v) != 0)
		return -1;
	if (v.t == V_REAL)
		return put_real(o, start, (size_t)(r->p - start));
	return put(o, start, (size_t)(r->p - start));
}

/* data.metadata at r->p: checked, then written out unless it is {}. */
static int take_metadata(struct rd *r, int depth, struct meter_event *ev)
{
	char buf[EV_METADATA_MAX];
	struct out o = {buf, 0, sizeof(buf)};
	struct rd again = *r;
	struct val v;
	if (value(r, depth, &v) != 0)
		return -1;
	if (v.t == V_NULL)
		return 0;
	if (v.t != V_OBJECT || emit(&again, &o) != 0)
		return -1; /* not an object, or over EV_METADATA_MAX serialized */
	if (o.n == 2)
		return 0;
	ev->metadata_json = malloc(o.n + 1);
	if (!ev->metadata_json)
		return -1;
	memcpy(ev->metadata_json, buf, o.n);
	ev->metadata_json[o.n] = '\0';
	return 0;
}

/* ---- fields ------------------------------------------------------------- */

/* A string field: null leaves dst at "", a string must pass its check. */
static int take_string(const struct val *v, const char *path, size_t max, enum ev_charset cs,
		       char *dst)
{
	struct ev_error scratch;
	if (v->t == V_NULL || v->t == V_NONE)
		return 0;
	if (v->t != V_STRING || ev_check_string(path, v->s.s, v->s.n, max, cs, &scratch) != 0)
		return -1;
	memcpy(dst, v->s.s, v->s.n);
	dst[v->s.n] = '\0';
	return 0;
}

/* An integer field: null leaves the default. */
static int take_int(const struct val *v, int64_t min, int64_t max, int64_t *dst)
{
	if (v->t == V_NULL)
		return 0;
	if (v->t != V_INT || v->i < min || v->i > max)
		return -1;
	*dst = v->i;
	return 0;
}

static int unit_member(void *ctx, struct span k, struct rd *r, int depth)
{
	struct meter_event *ev = ctx;
	struct val v;
	if (k.n == 0 || k.n > EV_UNIT_NAME_MAX || ev->nunits == EV_UNITS_MAX)
		return -1;
	for (size_t i = 0; i < k.n; i++)
		if (!ev_char_allowed(CS_UNIT, (unsigned char)k.s[i]))
			return -1;
	if (value(r, depth, &v) != 0 || v.t != V_INT || v.i < 0 || v.i > EV_UNITS_QTY_MAX)
		return -1;
	struct ev_unit *u = &ev->units[ev->nunits++];
	memcpy(u->name, k.s, k.n);
	u->name[k.n] = '\0';
	u->quantity = v.i;
	return 0;
}

static int unit_cmp(const void *a, const void *b)
{
	return strcmp(((const struct ev_unit *)a)->name, ((const struct ev_unit *)b)->name);
}

/* units[] in name order, and units_json: the compact object with sorted keys
 * that jansson's dump gives. */
static int finish_units(struct meter_event *ev)
{
	char buf[EV_UNITS_MAX * (EV_UNIT_NAME_MAX + 26) + 3];
	size_t o = 0;
	if (ev->nunits == 0)
		return 0;
	qsort(ev->units, (size_t)ev->nunits, sizeof(ev->units[0]), unit_cmp);
	buf[o++] = '{';
	for (int i = 0; i < ev->nunits; i++)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\"%s\":%lld", i ? "," : "",
				      ev->units[i].name, (long long)ev->units[i].quantity);
	buf[o++] = '}';
	buf[o] = '\0';
	ev->units_json = strdup(buf);
	return ev->units_json ? 0 : -1;
}

static int take_cost(const struct val *v, struct meter_event *ev)
{
	char text[32];
	const char *s;
	size_t len;
	if (v->t == V_NULL)
		return 0;
	if (v->t == V_STRING) {
		s = v->s.s;
		len = v->s.n;
	} else if (v->t == V_INT) {
		len = (size_t)snprintf(text, sizeof(text), "%lld", (long long)v->i);
		s = text;
	} else {
		return -1;
	}
	if (num_parse_usd_pico(s, len, EV_COST_MAX_PUSD, &ev->cost_pusd) != 0)
		return -1;
	ev->has_cost = 1;
	return 0;
}

struct str_field {
	const char *name;
	size_t len;
	const char *path;
	size_t max;
	enum ev_charset cs;
	size_t off; /* of the char array in struct meter_event */
};

struct int_field {
	const char *name;
	size_t len;
	int64_t min, max;
	size_t off; /* of the int64_t in struct meter_event */
};

#define EVOFF(f) offsetof(struct meter_event, f)

static const struct str_field data_strings[] = {
	{"tenant_id", 9, "data.tenant_id", EV_ID_MAX, CS_ID, EVOFF(tenant_id)},
	{"user_id", 7, "data.user_id", EV_ID_MAX, CS_ID, EVOFF(user_id)},
	{"api_key_id", 10, "data.api_key_id", EV_ID_MAX, CS_ID, EVOFF(api_key_id)},
	{"provider", 8, "data.provider", EV_NAME_MAX, CS_NAME, EVOFF(provider)},
	{"model", 5, "data.model", EV_MODEL_MAX, CS_MODEL, EVOFF(model)},
	{"operation", 9, "data.operation", EV_NAME_MAX, CS_NAME, EVOFF(operation)},
	{"endpoint", 8, "data.endpoint", EV_ENDPOINT_MAX, CS_TEXT, EVOFF(endpoint)},
	{"method", 6, "data.method", EV_METHOD_MAX, CS_METHOD, EVOFF(method)},
	{"workflow_id", 11, "data.workflow_id", EV_ID_MAX, CS_ID, EVOFF(workflow_id)},
	{"execution_id", 12, "data.execution_id", EV_ID_MAX, CS_ID, EVOFF(execution_id)},
};

static const struct int_field data_ints[] = {
	{"input_tokens", 12, 0, EV_TOKENS_MAX, EVOFF(input_tokens)},
	{"output_tokens", 13, 0, EV_TOKENS_MAX, EVOFF(output_tokens)},
	{"cache_read_input_tokens", 23, 0, EV_TOKENS_MAX, EVOFF(cached_input_tokens)},
	{"reasoning_output_tokens", 23, 0, EV_TOKENS_MAX, EVOFF(reasoning_tokens)},
	{"requests", 8, 0, EV_REQUESTS_MAX, EVOFF(requests)},
	{"status_code", 11, EV_STATUS_MIN, EV_STATUS_MAX, EVOFF(status_code)},
	{"latency_ms", 10, 0, EV_LATENCY_MS_MAX, EVOFF(latency_ms)},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int data_member(void *ctx, struct span k, struct rd *r, int depth)
{
	struct meter_event *ev = ctx;
	struct val v;
	if (eq(k, "metadata"))
		return take_metadata(r, depth, ev);
	if (eq(k, "units")) {
		if (*r->p == '{')
			return members(r, depth + 1, unit_member, ev);
		return value(r, depth, &v) != 0 || v.t != V_NULL ? -1 : 0;
	}
	if (value(r, depth, &v) != 0)
		return -1;
	for (size_t i = 0; i < NELEMS(data_strings); i++) {
		const struct str_field *f = &data_strings[i];
		if (eq_n(k, f->name, f->len))
			return take_string(&v, f->path, f->max, f->cs, (char *)ev + f->off);
	}
	for (size_t i = 0; i < NELEMS(data_ints); i++) {
		const struct int_field *f = &data_ints[i];
		if (eq_n(k, f->name, f->len))
			return take_int(&v, f->min, f->max, (int64_t *)((char *)ev + f->off));
	}
	if (eq(k, "cost"))
		return take_cost(&v, ev);
	return 0; /* unknown: checked, ignored */
}

/* The envelope's fields, kept as found and checked once data is read. */
struct envelope {
	struct meter_event *ev;
	struct val specversion, id, source, type, time, subject;
	int has_data;
};

static int top_member(void *ctx, struct span k, struct rd *r, int depth)
{
	struct envelope *e = ctx;
	struct val v, *slot = NULL;
	if (eq(k, "data")) {
		if (*r->p != '{')
			return -1;
		e->has_data = 1;
		return members(r, depth + 1, data_member, e->ev);
	}
	if (eq(k, "specversion"))
		slot = &e->specversion;
	else if (eq(k, "id"))
		slot = &e->id;
	else if (eq(k, "source"))
		slot = &e->source;
	else if (eq(k, "type"))
		slot = &e->type;
	else if (eq(k, "time"))
		slot = &e->time;
	else if (eq(k, "subject"))
		slot = &e->subject;
	if (value(r, depth, &v) != 0)
		return -1;
	if (slot)
		*slot = v;
	return 0;
}

static int required_string(const struct val *v, const char *path, size_t max,
			   enum ev_charset cs, char *dst)
{
	if (v->t != V_STRING)
		return -1;
	return take_string(v, path, max, cs, dst);
}

static int check_event(struct envelope *e, const struct ev_limits *lim)
{
	struct meter_event *ev = e->ev;
	char subject[EV_ID_MAX + 1] = "";
	struct ev_error scratch;
	if (e->specversion.t != V_STRING || !eq(e->specversion.s, "1.0") || !e->has_data)
		return -1;
	if (required_string(&e->id, "id", EV_ID_MAX, CS_ID, ev->id) != 0 ||
	    required_string(&e->source, "source", EV_SOURCE_MAX, CS_TEXT, ev->source) != 0 ||
	    required_string(&e->type, "type", EV_TYPE_MAX, CS_TEXT, ev->type) != 0 ||
	    take_string(&e->subject, "subject", EV_ID_MAX, CS_ID, subject) != 0)
		return -1;
	if (e->time.t != V_STRING || ev_parse_rfc3339(e->time.s.s, e->time.s.n, &ev->time_us) != 0)
		return -1;
	if (ev->operation[0] == '\0' || ev->cached_input_tokens > ev->input_tokens ||
	    ev->reasoning_tokens > ev->output_tokens)
		return -1;
	/* The tenant: subject and/or data.tenant_id, equal when both are given. */
	if (ev->tenant_id[0] == '\0') {
		if (subject[0] == '\0')
			return -1;
		memcpy(ev->tenant_id, subject, sizeof(ev->tenant_id));
	} else if (subject[0] != '\0' && strcmp(subject, ev->tenant_id) != 0) {
		return -1;
	}
	if (finish_units(ev) != 0)
		return -1;
	return ev_check_window(lim, ev, &scratch);
}

int ev_parse_fast(const char *buf, size_t len, const struct ev_limits *lim,
		  struct meter_event *ev)
{
	struct envelope e;
	struct rd r = {buf, buf + len};
	memset(&e, 0, sizeof(e));
	ev_init(ev);
	e.ev = ev;
	ws(&r);
	if (r.p < r.end && *r.p == '{' && members(&r, 0, top_member, &e) == 0) {
		ws(&r);
		if (r.p == r.end && check_event(&e, lim) == 0)
			return 0;
	}
	ev_clear(ev);
	return 1;
}
