/* rollup.c - remaining amounts from usage.rollups (opts.follow_rollups).
 *
 * The record contract is meterd's (README "Rollups for billing"): key
 * "tenant/<t>/<period>/<start>", "user/<t>/<u>/<period>/<start>" or
 * "key/<t>/<k>/<period>/<start>", period "day" or "month"; value a JSON
 * object with "type" ("rollup" or "closed"), "starts_at", "ends_at",
 * "updated_at" and "limits": {"requests": {"limit": "500" | null, "used":
 * "12", "remaining": "488" | null}, "tokens": {...}, ...}. Only requests
 * and tokens are used here; unknown fields and other metrics are ignored.
 *
 * The table keeps one record per subject and period kind (key
 * "tenant/acme/day"): the one with the latest period start. So it follows
 * the current period, a late update of yesterday's rollup does not replace
 * today's, and its size is two records per subject, whatever the history
 * on the topic. A check then uses a record only while starts_at <= now <
 * ends_at and it is not "closed".
 *
 * Same locking as the flag table (table.c): the reader thread applies
 * chunks under every stripe's write lock; checks read under their own
 * stripe's read lock, in the same critical section as the flag lookups.
 */
#include "meter_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 256
#define APPLY_CHUNK 256
#define DIGITS_MAX 18 /* fits int64_t */
#define US 1000000LL

static const char *const metric_names[MR_METRICS] = {"requests", "tokens"};

/* ---- the table (writer side holds every write lock) ------------------------------- */

static size_t rfind(const struct meter_rtable *t, uint64_t h, const char *key, size_t len)
{
	size_t mask = t->cap - 1, i = h & mask;

	for (;;) {
		const struct meter_rslot *s = &t->slots[i];
		if (!s->r || (s->hash == h && s->r->key_len == len && !memcmp(s->r->key, key, len)))
			return i;
		i = (i + 1) & mask;
	}
}

static int rgrow(struct meter_rtable *t)
{
	size_t cap = t->cap ? t->cap * 2 : INITIAL_CAP;
	struct meter_rslot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct meter_rslot s = t->slots[i];
		if (!s.r)
			continue;
		size_t j = s.hash & (cap - 1);
		while (slots[j].r)
			j = (j + 1) & (cap - 1);
		slots[j] = s;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

int meter__rollups_init(meter_t *m)
{
	return rgrow(&m->rtable);
}

void meter__rollups_free(meter_t *m)
{
	for (size_t i = 0; i < m->rtable.cap; i++)
		free(m->rtable.slots[i].r);
	free(m->rtable.slots);
	memset(&m->rtable, 0, sizeof(m->rtable));
}

/* Put rec where its key is, if it is newer: a later period start wins; for
 * the same start the last value wins, unless the held one came from another
 * partition with a later updated_at. Returns the record to free (the old
 * one, or rec itself when it is not taken) and sets *stale. rec is stolen. */
static struct meter_rollup *rupsert(struct meter_rtable *t, uint64_t h, struct meter_rollup *rec,
				    int *stale)
{
	size_t i = rfind(t, h, rec->key, rec->key_len);
	struct meter_rollup *old = t->slots[i].r;
	int cmp;

	*stale = 0;
	if (!old) {
		if (rec->deleted) /* a tombstone for nothing held */
			return rec;
		t->slots[i].hash = h;
		t->slots[i].r = rec;
		t->count++;
		return NULL;
	}
	cmp = strcmp(rec->start, old->start); /* fixed-width dates: text order is time order */
	if (cmp < 0)
		return rec; /* a past period (a late event's update): not current */
	if (cmp == 0 && old->partition != rec->partition && rec->version_us < old->version_us) {
		*stale = 1;
		return rec;
	}
	if (cmp > 0 && rec->deleted)
		return rec; /* deleting a period that is not held */
	t->slots[i].r = rec;
	return old;
}

size_t meter__rollups_apply(meter_t *m, struct meter_rollup **recs, size_t n)
{
	struct meter_rollup *garbage[APPLY_CHUNK];
	uint64_t hashes[APPLY_CHUNK];
	size_t stale = 0;

	for (size_t base = 0; base < n; base += APPLY_CHUNK) {
		size_t cnt = n - base < APPLY_CHUNK ? n - base : APPLY_CHUNK, ng = 0;
		for (size_t i = 0; i < cnt; i++)
			hashes[i] = meter__hash(m->hash_seed, recs[base + i]->key,
						recs[base + i]->key_len);
		meter__lock_all(m);
		for (size_t i = 0; i < cnt; i++) {
			struct meter_rollup *rec = recs[base + i], *old;
			int is_stale;
			recs[base + i] = NULL;
			if ((m->rtable.count + 1) * 2 > m->rtable.cap && rgrow(&m->rtable) != 0) {
				garbage[ng++] = rec; /* out of memory: drop the update */
				meter__set_last_error(m, "rollup table: out of memory");
				continue;
			}
			if ((old = rupsert(&m->rtable, hashes[i], rec, &is_stale)))
				garbage[ng++] = old;
			stale += (size_t)is_stale;
		}
		meter__unlock_all(m);
		for (size_t i = 0; i < ng; i++)
			free(garbage[i]);
	}
	return stale;
}

/* ---- one message into a record ------------------------------------------------------- */

static int is_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return n > 0;
}

/* The key's parts: "<subject>/<period>/<start>" with subject "tenant/T",
 * "user/T/U" or "key/T/K" (ids non-empty, no '/'), period "day" (start
 * YYYY-MM-DD) or "month" (start YYYY-MM). Sets the length of
 * "<subject>/<period>" and of "<subject>", and start. 0 or -1. */
static int parse_key(const char *key, size_t len, size_t *slot_len, size_t *subject_len,
		     char start[11])
{
	const char *part[6];
	size_t plen[6], np = 0, at = 0;

	while (at <= len && np < 6) {
		const char *slash = memchr(key + at, '/', len - at);
		size_t end = slash ? (size_t)(slash - key) : len;
		part[np] = key + at;
		plen[np] = end - at;
		if (plen[np] == 0)
			return -1;
		np++;
		at = end + 1;
		if (!slash)
			break;
	}
	if (at <= len) /* more than 6 parts */
		return -1;
	if (!(np == 4 && plen[0] == 6 && !memcmp(part[0], "tenant", 6)) &&
	    !(np == 5 && ((plen[0] == 4 && !memcmp(part[0], "user", 4)) ||
			  (plen[0] == 3 && !memcmp(part[0], "key", 3)))))
		return -1;
	const char *period = part[np - 2], *s = part[np - 1];
	size_t pl = plen[np - 2], sl = plen[np - 1];
	if (pl == 3 && !memcmp(period, "day", 3)) {
		if (sl != 10 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2) ||
		    s[7] != '-' || !is_digits(s + 8, 2))
			return -1;
	} else if (pl == 5 && !memcmp(period, "month", 5)) {
		if (sl != 7 || !is_digits(s, 4) || s[4] != '-' || !is_digits(s + 5, 2))
			return -1;
	} else {
		return -1;
	}
	memcpy(start, s, sl);
	start[sl] = '\0';
	*slot_len = (size_t)(s - 1 - key);
	*subject_len = (size_t)(period - 1 - key);
	return 0;
}

/* s[0..n): 1..18 decimal digits. 0 or -1. */
static int digits(const char *s, size_t n, int64_t *out)
{
	int64_t x = 0;

	if (n == 0 || n > DIGITS_MAX || !is_digits(s, n))
		return -1;
	for (size_t i = 0; i < n; i++)
		x = x * 10 + (s[i] - '0');
	*out = x;
	return 0;
}

/* A count: a JSON integer >= 0 or a string of 1..18 digits. 0 or -1. */
static int count(const json_t *v, int64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (int64_t)json_integer_value(v);
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	return digits(json_string_value(v), json_string_length(v), out);
}

/* One metric of "limits" into rec. 0 or -1 with why. */
static int parse_metric(const json_t *limits, int k, struct meter_rollup *rec, char *why,
			size_t why_size)
{
	const json_t *e = limits ? json_object_get(limits, metric_names[k]) : NULL, *lim, *rem;
	int64_t used = 0, left;

	rec->limit[k] = MR_ABSENT;
	rec->left[k] = 0;
	if (!e || json_is_null(e))
		return 0;
	if (!json_is_object(e) || !(lim = json_object_get(e, "limit")))
		return meter__fail(why, why_size, -1, "limits.%s: expected an object with a limit",
				   metric_names[k]);
	if (json_is_null(lim)) {
		rec->limit[k] = MR_UNLIMITED;
		return 0;
	}
	if (count(lim, &rec->limit[k]) != 0 || count(json_object_get(e, "used"), &used) != 0)
		return meter__fail(why, why_size, -1,
				   "limits.%s: limit and used must be strings of digits",
				   metric_names[k]);
	left = rec->limit[k] > used ? rec->limit[k] - used : 0;
	rem = json_object_get(e, "remaining");
	if (rem && !json_is_null(rem) && count(rem, &left) != 0)
		return meter__fail(why, why_size, -1,
				   "limits.%s.remaining: expected a string of digits or null",
				   metric_names[k]);
	rec->left[k] = left;
	return 0;
}

static int req_time(const json_t *obj, const char *k, int64_t *us)
{
	const json_t *v = json_object_get(obj, k);
	return json_is_string(v)
		       ? meter__parse_rfc3339(json_string_value(v), json_string_length(v), us)
		       : -1;
}

int meter__parse_rollup(const char *key, size_t key_len, const void *val, size_t val_len,
			int32_t partition, int64_t msg_ts_ms, struct meter_rollup **out, char *why,
			size_t why_size)
{
	struct meter_rollup *rec = NULL;
	size_t slot_len, subject_len;
	char start[11];
	json_error_t jerr;
	json_t *root = NULL, *v;
	const char *type;
	int rc = -1;

	*out = NULL;
	if (!key || key_len == 0 || key_len > METER_KEY_MAX || memchr(key, '\0', key_len) ||
	    parse_key(key, key_len, &slot_len, &subject_len, start) != 0)
		return meter__fail(why, why_size, -1,
				   "key: expected <tenant|user|key>/.../<day|month>/<start>");
	if (!(rec = calloc(1, sizeof(*rec) + slot_len + 1)))
		return meter__fail(why, why_size, -1, "out of memory");
	memcpy(rec->key, key, slot_len);
	rec->key_len = (uint16_t)slot_len;
	rec->subject_len = (uint16_t)subject_len;
	memcpy(rec->start, start, sizeof(start));
	rec->partition = partition;
	rec->version_us = msg_ts_ms > 0 ? msg_ts_ms * 1000 : 0;
	if (!val) { /* tombstone */
		rec->deleted = 1;
		goto done;
	}
	root = json_loadb(val, val_len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		meter__fail(why, why_size, -1, "value: not a JSON object (%s)",
			    root ? "another type" : jerr.text);
		goto out;
	}
	v = json_object_get(root, "type");
	type = json_is_string(v) ? json_string_value(v) : "";
	if (strcmp(type, "rollup") != 0 && strcmp(type, "closed") != 0) {
		meter__fail(why, why_size, -1, "type: expected \"rollup\" or \"closed\"");
		goto out;
	}
	rec->closed = type[0] == 'c';
	if (req_time(root, "starts_at", &rec->starts_us) != 0 ||
	    req_time(root, "ends_at", &rec->ends_us) != 0 || rec->ends_us <= rec->starts_us) {
		meter__fail(why, why_size, -1,
			    "starts_at, ends_at: expected RFC 3339 times, the end after the start");
		goto out;
	}
	v = json_object_get(root, "updated_at");
	if (v && !json_is_null(v) && req_time(root, "updated_at", &rec->version_us) != 0) {
		meter__fail(why, why_size, -1, "updated_at: not an RFC 3339 time");
		goto out;
	}
	v = json_object_get(root, "limits");
	if (v && !json_is_null(v) && !json_is_object(v)) {
		meter__fail(why, why_size, -1, "limits: not an object");
		goto out;
	}
	for (int k = 0; k < MR_METRICS; k++)
		if (parse_metric(json_is_object(v) ? v : NULL, k, rec, why, why_size) != 0)
			goto out;
done:
	*out = rec;
	rec = NULL;
	rc = 0;
out:
	free(rec);
	json_decref(root);
	return rc;
}

/* ---- remaining amounts and estimates (a reader's lock held) ---------------------------- */

static int64_t ceil_s(int64_t us)
{
	return us > 0 ? (us + US - 1) / US : us / US;
}

static void copy_n(char *dst, size_t size, const char *src, size_t n)
{
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* Describe the limit an estimate exceeds, as a flag would. */
static void describe_limit(const struct meter_rollup *r, int k, int64_t est, int64_t now_us,
			   meter_decision_t *out)
{
	const char *period = r->key + r->subject_len + 1;
	const char *slash = memchr(r->key, '/', r->subject_len);

	out->allowed = 0;
	copy_n(out->subject, sizeof(out->subject), r->key, r->subject_len);
	copy_n(out->subject_type, sizeof(out->subject_type), r->key,
	       slash ? (size_t)(slash - r->key) : 0);
	snprintf(out->metric, sizeof(out->metric), "%s", metric_names[k]);
	copy_n(out->period, sizeof(out->period), period,
	       (size_t)(r->key_len - r->subject_len - 1));
	snprintf(out->limit, sizeof(out->limit), "%lld", (long long)r->limit[k]);
	snprintf(out->used, sizeof(out->used), "%lld",
		 (long long)(r->limit[k] - r->left[k] > 0 ? r->limit[k] - r->left[k] : 0));
	out->until = ceil_s(r->ends_us);
	out->retry_after_seconds = ceil_s(r->ends_us - now_us);
	out->manual = 0;
	snprintf(out->reason, sizeof(out->reason),
		 "an estimate of %lld %s exceeds the %lld remaining of the %s per %s limit of "
		 "%lld (%.64s)",
		 (long long)est, metric_names[k], (long long)r->left[k], metric_names[k],
		 out->period, (long long)r->limit[k], out->subject);
}

void meter__rollups_eval(meter_t *m, char subj[][METER_SUBJECT_MAX + 1], const size_t *len,
			 size_t n, const struct meter_estimate *est, int64_t now_us,
			 meter_decision_t *out, meter_remaining_t *rem)
{
	static const char *const periods[2] = {"/day", "/month"};
	const int64_t want[MR_METRICS] = {est->requests, est->tokens};
	int64_t *left_out[MR_METRICS] = {&rem->requests, &rem->tokens};
	int64_t *limit_out[MR_METRICS] = {&rem->requests_limit, &rem->tokens_limit};
	int64_t *reset_out[MR_METRICS] = {&rem->requests_reset, &rem->tokens_reset};
	char *subj_out[MR_METRICS] = {rem->requests_subject, rem->tokens_subject};
	char *period_out[MR_METRICS] = {rem->requests_period, rem->tokens_period};
	const struct meter_rollup *over = NULL;
	int over_k = 0, flag_blocked = !out->allowed;
	int64_t oldest = 0;
	char key[METER_SUBJECT_MAX + 8];

	rem->checked_at = now_us / US;
	for (size_t i = 0; i < n; i++) {
		for (int p = 0; p < 2; p++) {
			size_t plen = strlen(periods[p]), klen = len[i] + plen;
			memcpy(key, subj[i], len[i]);
			memcpy(key + len[i], periods[p], plen + 1);
			uint64_t h = meter__hash(m->hash_seed, key, klen);
			const struct meter_rollup *r = m->rtable.slots[rfind(&m->rtable, h, key, klen)].r;
			if (!r || r->deleted || r->closed || now_us < r->starts_us ||
			    now_us >= r->ends_us)
				continue; /* none, or not of the current period */
			rem->known++;
			if (!oldest || r->version_us < oldest)
				oldest = r->version_us;
			for (int k = 0; k < MR_METRICS; k++) {
				if (r->limit[k] < 0)
					continue; /* unlimited, or no limit of this metric */
				if (*left_out[k] == METER_UNLIMITED || r->left[k] < *left_out[k] ||
				    (r->left[k] == *left_out[k] &&
				     ceil_s(r->ends_us) > *reset_out[k])) {
					*left_out[k] = r->left[k];
					*limit_out[k] = r->limit[k];
					*reset_out[k] = ceil_s(r->ends_us);
					copy_n(subj_out[k], METER_SUBJECT_MAX + 1, r->key,
					       r->subject_len);
					snprintf(period_out[k], sizeof(rem->requests_period), "%s",
						 periods[p] + 1);
				}
				/* The longest of the limits exceeded decides, as with flags. */
				if (want[k] > r->left[k] &&
				    (!over || r->ends_us > over->ends_us)) {
					over = r;
					over_k = k;
				}
			}
		}
	}
	rem->as_of = oldest / US;
	if (over) {
		rem->over_estimate = 1;
		if (!flag_blocked)
			describe_limit(over, over_k, want[over_k], now_us, out);
	}
	if (flag_blocked) {
		/* Nothing can be spent while a flag blocks: say 0, with the flag's
		 * limit and end for its own metric. */
		for (int k = 0; k < MR_METRICS; k++) {
			*left_out[k] = 0;
			if (strcmp(out->metric, metric_names[k]) != 0)
				continue;
			int64_t lim;
			if (digits(out->limit, strlen(out->limit), &lim) == 0)
				*limit_out[k] = lim;
			*reset_out[k] = out->until;
			snprintf(subj_out[k], METER_SUBJECT_MAX + 1, "%s", out->subject);
			copy_n(period_out[k], sizeof(rem->requests_period), out->period,
			       strlen(out->period));
		}
	}
	rem->reset = rem->requests_reset;
	if (rem->tokens_reset && (!rem->reset || rem->tokens_reset < rem->reset))
		rem->reset = rem->tokens_reset;
}

/* ---- headers ------------------------------------------------------------------------------ */

struct out {
	char *buf;
	size_t size, len;
	int full;
};

static void add(struct out *o, const char *name, long long v)
{
	int n;

	if (o->full)
		return;
	n = snprintf(o->buf + o->len, o->size - o->len, "%s: %lld\r\n", name, v);
	if (n < 0 || (size_t)n >= o->size - o->len)
		o->full = 1;
	else
		o->len += (size_t)n;
}

/* Seconds from now to at, at least 0, without overflowing. */
static int64_t until(int64_t at, int64_t now)
{
	if (at <= now)
		return 0;
	if (now < 0 && at > INT64_MAX + now)
		return INT64_MAX;
	return at - now;
}

int meter_format_headers(const meter_decision_t *d, const meter_remaining_t *rem, char *buf,
			 size_t size)
{
	static const char *const hname[MR_METRICS][3] = {
		{"X-RateLimit-Limit-Requests", "X-RateLimit-Remaining-Requests",
		 "X-RateLimit-Reset-Requests"},
		{"X-RateLimit-Limit-Tokens", "X-RateLimit-Remaining-Tokens",
		 "X-RateLimit-Reset-Tokens"},
	};
	struct out o = {buf, size, 0, 0};
	int blocked = d && !d->allowed;

	if (!buf || size == 0)
		return METER_ERR_INVALID;
	buf[0] = '\0';
	if (rem) {
		const int64_t left[MR_METRICS] = {rem->requests, rem->tokens};
		const int64_t limit[MR_METRICS] = {rem->requests_limit, rem->tokens_limit};
		const int64_t reset[MR_METRICS] = {rem->requests_reset, rem->tokens_reset};
		for (int k = 0; k < MR_METRICS; k++) {
			if (left[k] < 0)
				continue;
			if (limit[k] >= 0)
				add(&o, hname[k][0], limit[k]);
			add(&o, hname[k][1], left[k]);
			if (reset[k] > 0)
				add(&o, hname[k][2], until(reset[k], rem->checked_at));
		}
		if (!blocked && rem->reset > 0)
			add(&o, "X-RateLimit-Reset", until(rem->reset, rem->checked_at));
	}
	if (blocked && d->retry_after_seconds > 0) {
		add(&o, "X-RateLimit-Reset", d->retry_after_seconds);
		add(&o, "Retry-After", d->retry_after_seconds);
	}
	if (o.full) {
		buf[0] = '\0';
		return METER_ERR_INVALID;
	}
	return (int)o.len;
}
