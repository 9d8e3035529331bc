/* fuzz_flag.c - libFuzzer harness for libmeter's reading of the limits
 * topic: what any producer (or an attacker with write access to the topic)
 * can put there reaches every service that links libmeter.
 *
 * The input is a sequence of messages, each
 *   [partition: 1 byte][timestamp: 2 bytes][key length: 1 byte][key]
 *   [value length: 2 bytes, 0xffff = null (a tombstone)][value]
 * Each goes through meter__parse_flag (libmeter/flag.c) and, when accepted,
 * into the flag table (libmeter/table.c) exactly as the reader thread does.
 * Then meter_check() is asked about every subject the keys name, and its
 * answer is compared with a plain model of the table written here (last
 * record per key, unless an older one from another partition; blocked
 * while until is unset or in the future; the longest block wins).
 * Checked besides: no crash or leak; a refused message gives a reason and
 * no record; an accepted record keeps its key; a decision is well formed.
 * Built and run by tests/fuzz/run.sh (sources in fuzz_flag.srcs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter_int.h"

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define NOW_US 1795000000000000LL /* 2026-11-18T...Z */
#define MAX_MSGS 64

static int64_t fixed_clock(void *opaque)
{
	(void)opaque;
	return NOW_US;
}

/* The model: what the table should hold per key. */
struct model {
	char key[METER_KEY_MAX + 1];
	size_t key_len;
	int state; /* enum meter_flag_state */
	int64_t until_us, version_us;
	int32_t partition;
};

static struct model models[MAX_MSGS];
static size_t nmodels;

static void model_apply(const struct meter_flag *f)
{
	size_t i = 0;
	for (; i < nmodels; i++)
		if (models[i].key_len == f->key_len && !memcmp(models[i].key, f->buf, f->key_len))
			break;
	if (i < nmodels && models[i].partition != f->partition &&
	    f->version_us < models[i].version_us)
		return; /* stale */
	if (i == nmodels) {
		nmodels++;
		memcpy(models[i].key, f->buf, f->key_len);
		models[i].key[f->key_len] = '\0';
		models[i].key_len = f->key_len;
	}
	models[i].state = f->state;
	models[i].until_us = f->until_us;
	models[i].version_us = f->version_us;
	models[i].partition = f->partition;
}

static const struct model *model_get(const char *key)
{
	for (size_t i = 0; i < nmodels; i++)
		if (!strcmp(models[i].key, key))
			return &models[i];
	return NULL;
}

static int model_blocks(const struct model *m)
{
	return m && m->state == MF_BLOCKED && (m->until_us == 0 || m->until_us > NOW_US);
}

/* Ask meter_check about (tenant, user, key) and compare with the model. */
static void check_subjects(meter_t *m, const char *tenant, const char *user, const char *key)
{
	meter_decision_t d;
	int rc = meter_check(m, tenant, user, key, &d);
	size_t tl = strlen(tenant), ul = user ? strlen(user) : 0, kl = key ? strlen(key) : 0;
	if (tl == 0 || tl > METER_ID_MAX || ul > METER_ID_MAX || kl > METER_ID_MAX) {
		CHECK(rc == METER_ERR_INVALID);
		return;
	}
	char subj[3][METER_SUBJECT_MAX + 16];
	int n = 0;
	snprintf(subj[n++], sizeof(subj[0]), "tenant/%s", tenant);
	if (ul)
		snprintf(subj[n++], sizeof(subj[0]), "user/%s/%s", tenant, user);
	if (kl)
		snprintf(subj[n++], sizeof(subj[0]), "key/%s/%s", tenant, key);
	const struct model *best = NULL;
	for (int i = 0; i < n; i++) {
		const struct model *x = model_get(subj[i]);
		if (!model_blocks(x))
			continue;
		if (!best || (best->until_us && (!x->until_us || x->until_us > best->until_us)))
			best = x;
	}
	CHECK(rc == (best ? METER_BLOCKED : METER_OK));
	CHECK(d.allowed == !best);
	CHECK(memchr(d.reason, '\0', sizeof(d.reason)) != NULL);
	CHECK(memchr(d.subject, '\0', sizeof(d.subject)) != NULL);
	if (!best) {
		CHECK(d.subject[0] == '\0' && d.until == 0 && d.retry_after_seconds == 0);
		return;
	}
	/* The subject named is a blocking one that lasts as long as the best. */
	const struct model *named = model_get(d.subject);
	CHECK(model_blocks(named));
	CHECK(named->until_us == best->until_us);
	CHECK(d.until == (best->until_us ? (best->until_us + 999999) / 1000000 : 0) ||
	      d.until == best->until_us / 1000000);
	CHECK(d.retry_after_seconds >= 0);
	CHECK(!strcmp(d.subject_type, "tenant") || !strcmp(d.subject_type, "user") ||
	      !strcmp(d.subject_type, "key") || d.subject_type[0] == '\0' ||
	      strlen(d.subject_type) <= 7);
}

/* Split "tenant/T", "user/T/U" or "key/T/K" into check arguments. */
static void check_key(meter_t *m, const char *k)
{
	char buf[METER_KEY_MAX + 1];
	snprintf(buf, sizeof(buf), "%s", k);
	if (!strncmp(buf, "tenant/", 7)) {
		check_subjects(m, buf + 7, NULL, NULL);
		return;
	}
	int is_user = !strncmp(buf, "user/", 5), is_key = !strncmp(buf, "key/", 4);
	if (!is_user && !is_key)
		return;
	char *t = buf + (is_user ? 5 : 4), *slash = strchr(t, '/');
	if (!slash)
		return;
	*slash = '\0';
	check_subjects(m, t, is_user ? slash + 1 : NULL, is_key ? slash + 1 : NULL);
	check_subjects(m, t, is_user ? slash + 1 : "k", is_key ? slash + 1 : "u");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	meter_t *m = calloc(1, sizeof(*m));
	struct meter_flag *recs[MAX_MSGS];
	char keys[MAX_MSGS][METER_KEY_MAX + 1];
	size_t nrecs = 0, nkeys = 0, off = 0;
	if (!m)
		return 0;
	m->clock = fixed_clock;
	m->hash_seed = 0x5eed;
	CHECK(meter__table_init(m) == 0);
	nmodels = 0;
	while (off + 6 <= size && nkeys < MAX_MSGS) {
		int32_t part = data[off] % 4;
		int64_t ts = (int64_t)(data[off + 1] | data[off + 2] << 8) * 1000 + 1700000000000LL;
		size_t kl = data[off + 3];
		off += 4;
		if (off + kl + 2 > size)
			break;
		const char *key = (const char *)data + off;
		off += kl;
		size_t vl = (size_t)(data[off] | data[off + 1] << 8);
		off += 2;
		const void *val = NULL;
		if (vl != 0xffff) {
			if (off + vl > size)
				vl = size - off;
			val = data + off;
			off += vl;
		} else {
			vl = 0;
		}
		struct meter_flag *f = (struct meter_flag *)(uintptr_t)1;
		char why[256];
		why[0] = '\0';
		if (meter__parse_flag(key, kl, val, vl, part, ts, &f, why, sizeof(why)) != 0) {
			CHECK(f == NULL);
			CHECK(why[0] != '\0' && memchr(why, '\0', sizeof(why)));
			continue;
		}
		CHECK(f != NULL);
		CHECK(f->key_len == kl && !memcmp(f->buf, key, kl) && f->buf[kl] == '\0');
		CHECK(f->state == MF_DELETED || f->state == MF_OK || f->state == MF_BLOCKED);
		CHECK(f->partition == part);
		CHECK(val != NULL || f->state == MF_DELETED);
		if (f->state == MF_BLOCKED) {
			/* Every string is readable up to its NUL (ASan checks the bounds). */
			uint16_t offs[] = {f->off_type, f->off_metric, f->off_period,
					   f->off_limit, f->off_used, f->off_reason};
			for (size_t i = 0; i < 6; i++)
				CHECK(strlen(f->buf + offs[i]) < 512);
			CHECK(strspn(f->buf + f->off_limit, "0123456789") ==
			      strlen(f->buf + f->off_limit));
		}
		model_apply(f);
		memcpy(keys[nkeys], f->buf, kl + 1);
		nkeys++;
		recs[nrecs++] = f;
		/* Apply in twos, as the reader applies in batches. */
		if (nrecs == 2) {
			meter__table_apply(m, recs, nrecs);
			for (size_t i = 0; i < nrecs; i++)
				CHECK(recs[i] == NULL); /* stolen */
			nrecs = 0;
		}
	}
	meter__table_apply(m, recs, nrecs);
	for (size_t i = 0; i < nkeys; i++)
		check_key(m, keys[i]);
	meter__table_free(m);
	free(m);
	return 0;
}
