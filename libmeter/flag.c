/* flag.c - one value of the limits topic (the flag contract, DESIGN.md and
 * libmeter/README.md) into an immutable table record. Strict about what it
 * uses (state, until, updated_at, limit, used, ...), lenient about unknown
 * fields; anything malformed is refused with a reason and never crashes.
 */
#include "meter_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRIC_MAX 64
#define TYPE_MAX_LEN 7
#define NUMBER_MAX 39
#define REASON_MAX 255

/* An optional string member: 0 with *out set ("" when absent or null), or -1. */
static int opt_str(const json_t *obj, const char *k, const char **out, size_t *len)
{
	const json_t *v = json_object_get(obj, k);

	*out = "";
	*len = 0;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	*out = json_string_value(v);
	*len = json_string_length(v);
	return 0;
}

/* limit/used: a non-negative integer or a string of digits, as digits. */
static int opt_number(const json_t *obj, const char *k, char *out, size_t size)
{
	const json_t *v = json_object_get(obj, k);
	size_t len;

	out[0] = '\0';
	if (!v || json_is_null(v))
		return 0;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return -1;
		snprintf(out, size, "%lld", (long long)json_integer_value(v));
		return 0;
	}
	if (!json_is_string(v))
		return -1;
	len = json_string_length(v);
	if (len == 0 || len >= size || strspn(json_string_value(v), "0123456789") != len)
		return -1;
	memcpy(out, json_string_value(v), len + 1);
	return 0;
}

/* An optional RFC 3339 time: 0 with *us (left alone when absent), or -1. */
static int opt_time(const json_t *obj, const char *k, int64_t *us)
{
	const json_t *v = json_object_get(obj, k);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return -1;
	return meter__parse_rfc3339(json_string_value(v), json_string_length(v), us);
}

/* Longest prefix of s[0..len) of at most max bytes that does not cut a UTF-8
 * sequence (jansson has checked the encoding). */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
	if (len <= max)
		return len;
	while (max > 0 && ((unsigned char)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

/* A new record with the key and strs[0..n) in buf; offsets[i] receives the
 * offset of strs[i]. */
static struct meter_flag *new_rec(const char *key, size_t key_len, const char *const *strs,
				  const size_t *lens, uint16_t *offsets, size_t n)
{
	size_t size = sizeof(struct meter_flag) + key_len + 1, at;
	struct meter_flag *f;

	for (size_t i = 0; i < n; i++)
		size += lens[i] + 1;
	if (!(f = calloc(1, size)))
		return NULL;
	memcpy(f->buf, key, key_len);
	f->key_len = (uint16_t)key_len;
	at = key_len + 1;
	for (size_t i = 0; i < n; i++) {
		offsets[i] = (uint16_t)at;
		memcpy(f->buf + at, strs[i], lens[i]);
		at += lens[i] + 1;
	}
	return f;
}

int meter__parse_flag(const char *key, size_t key_len, const void *val, size_t val_len,
		      int32_t partition, int64_t msg_ts_ms, struct meter_flag **out, char *why,
		      size_t why_size)
{
	const char *state, *type, *metric, *period, *reason;
	size_t state_len, type_len, metric_len, period_len, reason_len;
	char limit[NUMBER_MAX + 1], used[NUMBER_MAX + 1];
	int64_t version = msg_ts_ms > 0 ? msg_ts_ms * 1000 : 0, until = 0;
	struct meter_flag *f = NULL;
	json_error_t jerr;
	json_t *root = NULL;
	int rc = -1;

	*out = NULL;
	if (!key || key_len == 0 || key_len > METER_KEY_MAX || memchr(key, '\0', key_len))
		return meter__fail(why, why_size, -1, "key: missing, longer than %d bytes or "
				   "with a NUL byte", METER_KEY_MAX);
	if (!val) { /* tombstone */
		if (!(f = new_rec(key, key_len, NULL, NULL, NULL, 0)))
			return meter__fail(why, why_size, -1, "out of memory");
		f->state = MF_DELETED;
		goto done;
	}
	root = json_loadb(val, val_len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		meter__fail(why, why_size, -1, "value: not a JSON object (%s)",
			    root ? "another type" : jerr.text);
		goto out;
	}
	if (opt_str(root, "state", &state, &state_len) != 0 ||
	    (strcmp(state, "blocked") != 0 && strcmp(state, "ok") != 0)) {
		meter__fail(why, why_size, -1, "state: expected \"blocked\" or \"ok\"");
		goto out;
	}
	if (opt_time(root, "updated_at", &version) != 0) {
		meter__fail(why, why_size, -1, "updated_at: not an RFC 3339 time");
		goto out;
	}
	if (!strcmp(state, "ok")) {
		if (!(f = new_rec(key, key_len, NULL, NULL, NULL, 0)))
			goto oom;
		f->state = MF_OK;
		goto done;
	}
	if (opt_time(root, "until", &until) != 0) {
		meter__fail(why, why_size, -1, "until: not an RFC 3339 time or null");
		goto out;
	}
	if (opt_str(root, "subject_type", &type, &type_len) != 0 || type_len > TYPE_MAX_LEN ||
	    opt_str(root, "metric", &metric, &metric_len) != 0 || metric_len > METRIC_MAX ||
	    opt_str(root, "period", &period, &period_len) != 0 || period_len > METER_PERIOD_MAX ||
	    opt_str(root, "reason", &reason, &reason_len) != 0) {
		meter__fail(why, why_size, -1,
			    "subject_type, metric, period or reason: not a string, or too long");
		goto out;
	}
	if (opt_number(root, "limit", limit, sizeof(limit)) != 0 ||
	    opt_number(root, "used", used, sizeof(used)) != 0) {
		meter__fail(why, why_size, -1,
			    "limit or used: expected an integer >= 0 or a string of digits");
		goto out;
	}
	if (type_len == 0) { /* derive it from the key: tenant/..., user/..., key/... */
		const char *slash = memchr(key, '/', key_len);
		type = key;
		type_len = slash && (size_t)(slash - key) <= TYPE_MAX_LEN ? (size_t)(slash - key) : 0;
	}
	{
		const char *strs[] = {type, metric, period, limit, used, reason};
		size_t lens[] = {type_len, metric_len, period_len, strlen(limit), strlen(used),
				 utf8_cut(reason, reason_len, REASON_MAX)};
		uint16_t off[6];
		if (!(f = new_rec(key, key_len, strs, lens, off, 6)))
			goto oom;
		f->off_type = off[0];
		f->off_metric = off[1];
		f->off_period = off[2];
		f->off_limit = off[3];
		f->off_used = off[4];
		f->off_reason = off[5];
	}
	f->state = MF_BLOCKED;
	f->manual = json_is_true(json_object_get(root, "manual"));
	f->until_us = until > 0 ? until : until < 0 ? 1 : 0; /* before 1970: long past */
done:
	f->partition = partition;
	f->version_us = version;
	*out = f;
	rc = 0;
	goto out;
oom:
	meter__fail(why, why_size, -1, "out of memory");
out:
	json_decref(root);
	return rc;
}
