/* stream.c - the chaos run's messages, in the order they are produced.
 *
 * Message n is valid (a new event), a duplicate (an event already sent,
 * sent again byte for byte, now and then to another partition than its
 * tenant's, either soon after or long after the first copy), or bad (one
 * change to a valid event that the parser must reject, every reason of
 * schema/event.c in turn, then at random). Valid event i is a pure
 * function of (world, i), so a duplicate regenerates it from its number.
 *
 * Event times: the tenant's current local day (these drive the limits),
 * earlier in its current month, instants next to its day, month and year
 * boundaries and DST changes (a microsecond or a millisecond either side),
 * anywhere in the lateness window, a minute or two in the future (within
 * the allowed skew); written in UTC or with a numeric offset, with 0, 3, 6
 * or 9 fraction digits (the parser keeps microseconds).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

const char *const ch_reasons[] = {
	"too_large",	   "malformed_json",  "invalid_utf8",	"not_an_object",
	"missing_field",   "wrong_type",      "negative_value", "out_of_range",
	"integer_overflow", "too_long",	      "invalid_value",	"invalid_time",
	"too_late",	   "time_in_future",  "unsupported_specversion", "tenant_mismatch",
	"invalid_cost",
};
const int ch_nreasons = (int)(sizeof(ch_reasons) / sizeof(ch_reasons[0]));

static const struct {
	const char *provider, *model, *operation;
	int priced; /* 0: no price row and no cost: counted with cost 0 */
} models[] = {
	{"openai", "gpt-4o-mini", "chat", 1},
	{"openai", "gpt-4.1", "ai_agent", 1},
	{"openai", "text-embedding-3-small", "embedding", 1},
	{"anthropic", "claude-sonnet-4-5", "chat", 1},
	{"anthropic", "claude-haiku-4-5", "rag", 1},
	{"gemini", "gemini-2.5-flash", "workflow", 1},
	{"gemini", "gemini-2.5-pro", "script_generation", 1},
	{"heygen", "avatar-iv", "video_generation", 1},
	{"acme-ai", "unpriced-1", "chat", 0},
};
#define NMODELS ((int)(sizeof(models) / sizeof(models[0])))

struct ch_stream {
	const struct ch_world *w;
	uint64_t rs;          /* choices between messages */
	int64_t n;            /* messages made */
	int64_t nbad;
	int64_t *valid;       /* indices of valid events sent */
	int64_t nvalid, capvalid;
};

static void oom(void)
{
	fprintf(stderr, "chaos_gen: out of memory\n");
	exit(1);
}

struct ch_stream *ch_stream_new(const struct ch_world *w)
{
	struct ch_stream *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->w = w;
	s->rs = w->o.seed ^ 0x5eed5eed5eedULL;
	return s;
}

void ch_stream_destroy(struct ch_stream *s)
{
	if (!s)
		return;
	free(s->valid);
	free(s);
}

/* ---- times -------------------------------------------------------------------- */

/* us as RFC 3339 in a numeric offset (minutes; 0 with z=1 writes "Z") with
 * `digits` fraction digits (0, 3, 6, or 9 = 6 plus extra nanoseconds, which
 * the parser truncates). The caller makes sure digits can hold us exactly. */
static void format_time(int64_t us, int off_min, int z, int digits, int extra_ns, char *out,
			size_t size)
{
	time_t secs = (time_t)(us / US_PER_S) + off_min * 60;
	int64_t frac = us % US_PER_S;
	struct tm tm;
	char base[32], f[16] = "", zone[16];
	gmtime_r(&secs, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	if (digits == 3)
		snprintf(f, sizeof(f), ".%03d", (int)(frac / 1000));
	else if (digits == 6)
		snprintf(f, sizeof(f), ".%06d", (int)frac);
	else if (digits == 9)
		snprintf(f, sizeof(f), ".%06d%03d", (int)frac, extra_ns);
	if (z)
		snprintf(zone, sizeof(zone), "Z");
	else
		snprintf(zone, sizeof(zone), "%c%02d:%02d", off_min < 0 ? '-' : '+',
			 abs(off_min) / 60, abs(off_min) % 60);
	snprintf(out, size, "%s%s%s", base, f, zone);
}

static void render_time(uint64_t *s, int64_t us, char *out, size_t size)
{
	static const int offsets[] = {345, -210, 825, -300, 60, 0, -720, 840};
	int digits, z = ch_rnd(s, 3) != 0;
	int off = z ? 0 : offsets[ch_rnd(s, (int64_t)(sizeof(offsets) / sizeof(offsets[0])))];
	if (us % US_PER_S == 0 && ch_rnd(s, 2))
		digits = 0;
	else if (us % 1000 == 0 && ch_rnd(s, 2))
		digits = 3;
	else
		digits = ch_rnd(s, 3) ? 6 : 9;
	format_time(us, off, z, digits, (int)ch_rnd(s, 1000), out, size);
}

/* A time for an event of tenant t. */
static int64_t pick_time(const struct ch_world *w, const struct ch_tenant *t, uint64_t *s)
{
	int64_t now = w->anchor_us, r = ch_rnd(s, 100);
	int64_t hi = now - 60 * US_PER_S;
	if (r < 35 && hi > t->today_start) /* the current local day */
		return t->today_start + ch_rnd(s, hi - t->today_start);
	if (r < 45 && hi > t->month_start) /* the current month */
		return t->month_start + ch_rnd(s, hi - t->month_start);
	if (r < 70 && t->nbounds > 0) { /* next to a boundary */
		static const int64_t deltas[] = {-1000000, -1000, -1, 0, 0, 1, 1000, 999999};
		int64_t b = t->bounds[ch_rnd(s, t->nbounds)];
		int64_t at = b + deltas[ch_rnd(s, (int64_t)(sizeof(deltas) / sizeof(deltas[0])))];
		if (at >= w->window_lo_us && at <= hi)
			return at;
	}
	if (r < 71) /* within the allowed skew of 5 minutes */
		return now + 60 * US_PER_S + ch_rnd(s, 60 * US_PER_S);
	return w->window_lo_us + ch_rnd(s, hi - w->window_lo_us);
}

/* ---- valid events -------------------------------------------------------------- */

/* Valid event i; *s is left as the stream of choices for its JSON text. */
static void make_event(const struct ch_world *w, int64_t i, struct ch_event *e, uint64_t *s)
{
	*s = w->o.seed ^ ((uint64_t)i * 0xd1342543de82ef95ULL);
	ch_rand(s);
	memset(e, 0, sizeof(*e));
	/* The first tenants get more events: some cross their limits early. */
	e->tenant = (int)(ch_rnd(s, 3) == 0 ? ch_rnd(s, (w->ntenants + 1) / 2)
					    : ch_rnd(s, w->ntenants));
	e->user = ch_rnd(s, 8) ? (int)ch_rnd(s, CH_USERS) : -1;
	e->key = ch_rnd(s, 8) ? (int)ch_rnd(s, CH_KEYS) : -1;
	int m = (int)ch_rnd(s, NMODELS);
	e->provider = models[m].provider;
	e->model = models[m].model;
	e->operation = models[m].operation;
	/* Ids use the whole alphabet of ids, now and then. */
	if (ch_rnd(s, 10) == 0)
		snprintf(e->id, sizeof(e->id), "%s~e.%" PRId64 ":x@y+z=_", w->o.prefix, i);
	else
		snprintf(e->id, sizeof(e->id), "%s-e%" PRId64, w->o.prefix, i);
	e->time_us = pick_time(w, &w->t[e->tenant], s);
	e->input = ch_rnd(s, 12000);
	e->cached = ch_rnd(s, 3) ? 0 : ch_rnd(s, e->input + 1);
	e->output = ch_rnd(s, 3000);
	e->reasoning = ch_rnd(s, 3) ? 0 : ch_rnd(s, e->output + 1);
	int64_t r = ch_rnd(s, 100);
	e->requests = r < 2 ? 0 : r < 25 ? 1 + ch_rnd(s, 5) : 1;
	e->has_cost = models[m].priced;
	e->cost_pusd = e->has_cost ? ch_rnd(s, 40000000000LL) : 0; /* up to $0.04 */
}

static void need(void *p)
{
	if (!p)
		oom();
}

/* The event as JSON text (a new string): exactly the same bytes every time
 * it is made from the same (world, i). */
static char *event_text(const struct ch_world *w, const struct ch_event *e, uint64_t *s,
			json_t **out_obj)
{
	const struct ch_tenant *t = &w->t[e->tenant];
	char when[64], buf[64];
	render_time(s, e->time_us, when, sizeof(when));
	json_t *data = json_object(), *ev = json_object();
	need(data);
	need(ev);
	json_object_set_new(ev, "specversion", json_string("1.0"));
	json_object_set_new(ev, "id", json_string(e->id));
	json_object_set_new(ev, "source", json_string(ch_rnd(s, 2) ? "//chaos/gateway" : "//chaos/wörker"));
	json_object_set_new(ev, "type", json_string("com.meterd.usage"));
	json_object_set_new(ev, "time", json_string(when));
	int mode = (int)ch_rnd(s, 3); /* 0 both, 1 subject only, 2 data only */
	if (mode != 2)
		json_object_set_new(ev, "subject", json_string(t->id));
	if (mode != 1)
		json_object_set_new(data, "tenant_id", json_string(t->id));
	if (e->user >= 0) {
		snprintf(buf, sizeof(buf), "u-%d", e->user);
		json_object_set_new(data, "user_id", json_string(buf));
	} else if (ch_rnd(s, 2)) {
		json_object_set_new(data, "user_id", json_null()); /* null = absent */
	}
	if (e->key >= 0) {
		snprintf(buf, sizeof(buf), "k-%d", e->key);
		json_object_set_new(data, "api_key_id", json_string(buf));
	}
	json_object_set_new(data, "provider", json_string(e->provider));
	json_object_set_new(data, "model", json_string(e->model));
	json_object_set_new(data, "operation", json_string(e->operation));
	json_object_set_new(data, "input_tokens", json_integer(e->input));
	json_object_set_new(data, "output_tokens", json_integer(e->output));
	if (e->cached || ch_rnd(s, 2))
		json_object_set_new(data, "cache_read_input_tokens", json_integer(e->cached));
	if (e->reasoning || ch_rnd(s, 2))
		json_object_set_new(data, "reasoning_output_tokens", json_integer(e->reasoning));
	if (e->requests != 1 || ch_rnd(s, 4) == 0)
		json_object_set_new(data, "requests", json_integer(e->requests));
	if (e->has_cost) {
		char cost[40];
		snprintf(cost, sizeof(cost), "%" PRId64 ".%012" PRId64, e->cost_pusd / PUSD_PER_USD,
			 e->cost_pusd % PUSD_PER_USD);
		/* Trailing zeros are optional: "0.012300000000" == "0.0123". */
		if (ch_rnd(s, 2)) {
			size_t l = strlen(cost);
			while (cost[l - 1] == '0' && cost[l - 2] != '.')
				cost[--l] = '\0';
		}
		json_object_set_new(data, "cost", json_string(cost));
	}
	if (ch_rnd(s, 4) == 0)
		json_object_set_new(data, "units", json_pack("{s:I}", "images", ch_rnd(s, 4)));
	if (ch_rnd(s, 3) == 0) {
		json_object_set_new(data, "endpoint", json_string("/v1/chat"));
		json_object_set_new(data, "status_code", json_integer(200));
		json_object_set_new(data, "latency_ms", json_integer(1 + ch_rnd(s, 5000)));
	}
	if (ch_rnd(s, 5) == 0)
		json_object_set_new(data, "metadata", json_pack("{s:s,s:[i,b,n]}", "agent", "support",
								"tags", 1, 1));
	if (ch_rnd(s, 6) == 0) /* unknown fields are ignored */
		json_object_set_new(ev, "x-chaos", json_pack("{s:i}", "n", (int)ch_rnd(s, 100)));
	json_object_set_new(ev, "data", data);
	char *text = json_dumps(ev, JSON_COMPACT);
	need(text);
	if (out_obj)
		*out_obj = ev;
	else
		json_decref(ev);
	return text;
}

/* ---- bad events ----------------------------------------------------------------- */

/* text with the first `needle` replaced by repl (a new string). */
static char *replace(const char *text, const char *needle, const char *repl)
{
	const char *at = strstr(text, needle);
	size_t n = strlen(text), nl = strlen(needle), repl_len = strlen(repl);
	if (!at) {
		fprintf(stderr, "chaos_gen: internal error: '%s' not in an event\n", needle);
		exit(1);
	}
	char *r = malloc(n - nl + repl_len + 1);
	need(r);
	memcpy(r, text, (size_t)(at - text));
	memcpy(r + (at - text), repl, repl_len);
	memcpy(r + (at - text) + repl_len, at + nl, n - (size_t)(at - text) - nl + 1);
	return r;
}

static char *dumps(json_t *ev)
{
	char *t = json_dumps(ev, JSON_COMPACT);
	need(t);
	return t;
}

/* A bad message for reason r, made from valid event e (its JSON in ev,
 * which this may change). Returns a new string; *len its length. */
static char *bad_payload(const struct ch_world *w, const char *r, const struct ch_event *e,
			 json_t *ev, uint64_t *s, size_t *len)
{
	json_t *data = json_object_get(ev, "data");
	int v = (int)ch_rnd(s, 4);
	char *t = NULL, when[64];
	if (!strcmp(r, "too_large")) {
		size_t pad = (size_t)w->o.max_event_bytes + 64 + (size_t)ch_rnd(s, 512);
		char *p = malloc(pad + 1);
		need(p);
		memset(p, 'x', pad);
		p[pad] = '\0';
		json_object_set_new(data, "metadata", json_pack("{s:s}", "pad", p));
		free(p);
		t = dumps(ev);
	} else if (!strcmp(r, "malformed_json")) {
		char *full = dumps(ev);
		if (v == 0) { /* cut short */
			full[strlen(full) * (1 + ch_rnd(s, 3)) / 4] = '\0';
			t = full;
		} else if (v == 1) { /* a key given twice */
			t = replace(full, "{", "{\"id\":\"twice\",");
			free(full);
		} else if (v == 2) { /* an escaped NUL in a string */
			t = replace(full, "\"type\":\"com.meterd.usage\"",
				    "\"type\":\"com.meterd\\u0000usage\"");
			free(full);
		} else { /* trailing garbage */
			t = replace(full, "}}", "}} x");
			free(full);
		}
	} else if (!strcmp(r, "invalid_utf8")) {
		json_object_set_new(ev, "source", json_string("BADUTF8"));
		char *full = dumps(ev);
		t = replace(full, "BADUTF8", v < 2 ? "bad\xc3\x28utf8" : "bad\xed\xa0\x80");
		free(full);
	} else if (!strcmp(r, "not_an_object")) {
		if (v == 0) {
			t = strdup("[1,2,3]");
		} else if (v == 1) {
			t = strdup("\"usage\"");
		} else {
			json_object_set_new(ev, "data", json_pack("[i]", 1));
			t = dumps(ev);
		}
	} else if (!strcmp(r, "missing_field")) {
		if (v == 0) {
			json_object_del(ev, "id");
		} else if (v == 1) {
			json_object_del(ev, "time");
		} else if (v == 2) {
			json_object_del(data, "operation");
		} else {
			json_object_del(ev, "subject");
			json_object_del(data, "tenant_id");
		}
		t = dumps(ev);
	} else if (!strcmp(r, "wrong_type")) {
		if (v == 0)
			json_object_set_new(data, "input_tokens", json_string("12"));
		else if (v == 1)
			json_object_set_new(ev, "time", json_integer(1767225600));
		else
			json_object_set_new(data, "user_id", json_integer(42));
		t = dumps(ev);
	} else if (!strcmp(r, "negative_value")) {
		json_object_set_new(data, v < 2 ? "output_tokens" : "requests", json_integer(-5));
		t = dumps(ev);
	} else if (!strcmp(r, "out_of_range")) {
		if (v == 0)
			json_object_set_new(data, "requests", json_integer(2000000));
		else if (v == 1)
			json_object_set_new(data, "input_tokens", json_integer(10000000000000LL));
		else
			json_object_set_new(data, "cache_read_input_tokens",
					    json_integer(e->input + 1 + ch_rnd(s, 100)));
		t = dumps(ev);
	} else if (!strcmp(r, "integer_overflow")) {
		json_object_set_new(data, "input_tokens", json_integer(4242424242424242LL));
		char *full = dumps(ev);
		t = replace(full, "4242424242424242", "99999999999999999999");
		free(full);
	} else if (!strcmp(r, "too_long")) {
		char big[400];
		memset(big, 'a', sizeof(big) - 1);
		big[v < 2 ? 200 : 300] = '\0';
		json_object_set_new(ev, v < 2 ? "id" : "source", json_string(big));
		t = dumps(ev);
	} else if (!strcmp(r, "invalid_value")) {
		if (v == 0)
			json_object_set_new(ev, "id", json_string("bad id!"));
		else if (v == 1)
			json_object_set_new(data, "operation", json_string("Chat Completion"));
		else
			json_object_set_new(data, "user_id", json_string(""));
		t = dumps(ev);
	} else if (!strcmp(r, "invalid_time")) {
		static const char *const bad[] = {"yesterday at noon", "2026-13-01T00:00:00Z",
						  "2026-06-30T23:59:60Z", "2026-02-30T10:00:00Z"};
		json_object_set_new(ev, "time", json_string(bad[v]));
		t = dumps(ev);
	} else if (!strcmp(r, "too_late")) {
		/* A day to 40 days beyond the lateness bound. */
		int64_t at = w->anchor_us - w->o.lateness_s * US_PER_S - US_PER_DAY -
			     ch_rnd(s, 39 * US_PER_DAY);
		render_time(s, at, when, sizeof(when));
		json_object_set_new(ev, "time", json_string(when));
		t = dumps(ev);
	} else if (!strcmp(r, "time_in_future")) {
		int64_t at = w->anchor_us + (v < 2 ? US_PER_DAY + ch_rnd(s, 30 * US_PER_DAY)
						   : 3653 * US_PER_DAY);
		render_time(s, at, when, sizeof(when));
		json_object_set_new(ev, "time", json_string(when));
		t = dumps(ev);
	} else if (!strcmp(r, "unsupported_specversion")) {
		json_object_set_new(ev, "specversion", json_string(v < 2 ? "0.3" : "2.0"));
		t = dumps(ev);
	} else if (!strcmp(r, "tenant_mismatch")) {
		json_object_set_new(ev, "subject", json_string("someone-else"));
		json_object_set_new(data, "tenant_id", json_string(w->t[e->tenant].id));
		t = dumps(ev);
	} else if (!strcmp(r, "invalid_cost")) {
		if (v == 0)
			json_object_set_new(data, "cost", json_real(0.5));
		else if (v == 1)
			json_object_set_new(data, "cost", json_string("1.0000000000001"));
		else if (v == 2)
			json_object_set_new(data, "cost", json_string("-1"));
		else
			json_object_set_new(data, "cost", json_string("1e-3"));
		t = dumps(ev);
	} else {
		fprintf(stderr, "chaos_gen: internal error: no bad event for %s\n", r);
		exit(1);
	}
	need(t);
	*len = strlen(t);
	return t;
}

/* ---- the stream ------------------------------------------------------------------- */

int ch_stream_next(struct ch_stream *s, struct ch_msg *m)
{
	const struct ch_world *w = s->w;
	if (s->n >= w->o.events)
		return 0;
	memset(m, 0, sizeof(*m));
	m->seq = s->n++;
	int64_t roll = ch_rnd(&s->rs, 100);
	uint64_t es;
	if (roll < w->o.dup_rate && s->nvalid > 0) {
		/* Half re-send a recent event (likely the same batch), half any. */
		int64_t back = ch_rnd(&s->rs, 2) ? ch_rnd(&s->rs, s->nvalid < 50 ? s->nvalid : 50)
						 : ch_rnd(&s->rs, s->nvalid);
		int64_t idx = s->valid[s->nvalid - 1 - back];
		make_event(w, idx, &m->ev, &es);
		m->payload = event_text(w, &m->ev, &es, NULL);
		m->kind = CH_DUP;
		m->tenant = m->ev.tenant;
		m->partition = w->t[m->tenant].partition;
		if (w->o.partitions > 1 && ch_rnd(&s->rs, 10) < 4) {
			m->partition = (int)((m->partition + 1 + ch_rnd(&s->rs, w->o.partitions - 1)) %
					     w->o.partitions);
			m->cross_partition = 1;
		}
	} else if (roll < w->o.dup_rate + w->o.bad_rate) {
		/* Every reason once, in order, then at random. */
		const char *r = ch_reasons[s->nbad < ch_nreasons ? s->nbad
								 : ch_rnd(&s->rs, ch_nreasons)];
		s->nbad++;
		json_t *ev = NULL;
		make_event(w, m->seq, &m->ev, &es);
		free(event_text(w, &m->ev, &es, &ev));
		m->payload = bad_payload(w, r, &m->ev, ev, &es, &m->len);
		json_decref(ev);
		m->kind = CH_BAD;
		m->reason = r;
		m->tenant = m->ev.tenant;
		m->partition = w->t[m->tenant].partition;
	} else {
		make_event(w, m->seq, &m->ev, &es);
		m->payload = event_text(w, &m->ev, &es, NULL);
		m->kind = CH_VALID;
		m->tenant = m->ev.tenant;
		m->partition = w->t[m->tenant].partition;
		if (s->nvalid == s->capvalid) {
			int64_t cap = s->capvalid ? s->capvalid * 2 : 1024;
			int64_t *nv = realloc(s->valid, (size_t)cap * sizeof(*nv));
			if (!nv)
				return -1;
			s->valid = nv;
			s->capvalid = cap;
		}
		s->valid[s->nvalid++] = m->seq;
	}
	if (!m->len)
		m->len = strlen(m->payload);
	snprintf(m->key, sizeof(m->key), "%s", w->t[m->tenant].id);
	return 1;
}
