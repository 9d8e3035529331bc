/* table.c - the flag table, meter_check() and meter_check_estimate() (whose
 * rollup half is in rollup.c, under the same locks).
 *
 * An open-addressing hash table (linear probing, at most half full) from
 * subject to its latest flag record. One writer, the reader thread, applies
 * updates in batches; any number of service threads look up concurrently.
 *
 * Locking: a "big reader" lock. There are METER_STRIPES reader-writer locks,
 * each on its own cache line; a looking-up thread takes only the read side
 * of its own stripe (chosen once per thread), so threads never write to a
 * shared cache line and lookups scale; the writer takes the write side of
 * every stripe, in order, for a chunk of at most APPLY_CHUNK updates, so a
 * reader waits at most one chunk. A record is never changed in place:
 * an update swaps the slot's pointer and the old record is freed after the
 * locks are released. Locks prefer writers where glibc allows, so a thread
 * that checks in a tight loop cannot starve the writer.
 */
#define _GNU_SOURCE /* PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP */
#include "meter_int.h"

#include <stdlib.h>
#include <string.h>

#define INITIAL_CAP 1024
#define APPLY_CHUNK 256

/* ---- hashing -------------------------------------------------------------------- */

static inline uint64_t fmix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* A seeded 64-bit hash, eight bytes a step. The seed is random per handle,
 * so subjects chosen by outsiders cannot be made to collide on purpose. */
uint64_t meter__hash(uint64_t seed, const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15ULL), w;

	while (n >= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdULL;
		h ^= h >> 32;
		s += 8;
		n -= 8;
	}
	if (n) {
		w = 0;
		memcpy(&w, s, n);
		h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
	}
	return fmix(h);
}

/* ---- the table (writer side; caller holds every write lock) ------------------------ */

static inline const char *fkey(const struct meter_flag *f)
{
	return f->buf;
}

/* Index of key's slot, or of the empty slot where it would go. */
static size_t find(const struct meter_table *t, uint64_t h, const char *key, size_t len)
{
	size_t mask = t->cap - 1, i = h & mask;

	for (;;) {
		const struct meter_slot *s = &t->slots[i];
		if (!s->f ||
		    (s->hash == h && s->f->key_len == len && !memcmp(fkey(s->f), key, len)))
			return i;
		i = (i + 1) & mask;
	}
}

static int grow(struct meter_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : INITIAL_CAP;
	struct meter_slot *slots = calloc(cap, sizeof(*slots));

	if (!slots)
		return -1;
	for (size_t i = 0; i < t->cap; i++) {
		struct meter_slot s = t->slots[i];
		if (!s.f)
			continue;
		size_t j = s.hash & (cap - 1);
		while (slots[j].f)
			j = (j + 1) & (cap - 1);
		slots[j] = s;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return 0;
}

int meter__table_init(meter_t *m)
{
	pthread_rwlockattr_t attr;

	m->stripes = aligned_alloc(64, METER_STRIPES * sizeof(struct meter_stripe));
	if (!m->stripes || grow(&m->table) != 0)
		return -1;
	pthread_rwlockattr_init(&attr);
#ifdef PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
#endif
	for (; m->stripes_init < METER_STRIPES; m->stripes_init++)
		if (pthread_rwlock_init(&m->stripes[m->stripes_init].lock, &attr) != 0)
			break;
	pthread_rwlockattr_destroy(&attr);
	return m->stripes_init == METER_STRIPES ? 0 : -1;
}

void meter__table_free(meter_t *m)
{
	for (size_t i = 0; i < m->table.cap; i++)
		free(m->table.slots[i].f);
	free(m->table.slots);
	memset(&m->table, 0, sizeof(m->table));
	for (int i = 0; i < m->stripes_init; i++)
		pthread_rwlock_destroy(&m->stripes[i].lock);
	m->stripes_init = 0;
	free(m->stripes);
	m->stripes = NULL;
}

void meter__lock_all(meter_t *m)
{
	for (int i = 0; i < METER_STRIPES; i++)
		pthread_rwlock_wrlock(&m->stripes[i].lock);
}

void meter__unlock_all(meter_t *m)
{
	for (int i = METER_STRIPES - 1; i >= 0; i--)
		pthread_rwlock_unlock(&m->stripes[i].lock);
}

/* Put rec in place of what key holds, unless what it holds came from another
 * partition with a newer version (a key moves between partitions only when
 * the partition count or the producer's partitioner changes; then updated_at
 * orders the values). Returns the record to free (the old one, or rec itself
 * when stale), and sets *stale. rec is stolen. */
static struct meter_flag *upsert(struct meter_table *t, uint64_t h, struct meter_flag *rec,
				 int *stale)
{
	size_t i = find(t, h, fkey(rec), rec->key_len);
	struct meter_flag *old = t->slots[i].f;

	*stale = 0;
	if (!old) {
		t->slots[i].hash = h;
		t->slots[i].f = rec;
		t->count++;
		t->blocked += rec->state == MF_BLOCKED;
		return NULL;
	}
	if (old->partition != rec->partition && rec->version_us < old->version_us) {
		*stale = 1;
		return rec;
	}
	t->blocked -= old->state == MF_BLOCKED;
	t->blocked += rec->state == MF_BLOCKED;
	t->slots[i].f = rec;
	return old;
}

size_t meter__table_apply(meter_t *m, struct meter_flag **recs, size_t n)
{
	struct meter_flag *garbage[APPLY_CHUNK];
	uint64_t hashes[APPLY_CHUNK];
	size_t stale = 0;

	for (size_t base = 0; base < n; base += APPLY_CHUNK) {
		size_t cnt = n - base < APPLY_CHUNK ? n - base : APPLY_CHUNK, ng = 0;
		for (size_t i = 0; i < cnt; i++)
			hashes[i] = meter__hash(m->hash_seed, fkey(recs[base + i]),
						recs[base + i]->key_len);
		meter__lock_all(m);
		for (size_t i = 0; i < cnt; i++) {
			struct meter_flag *rec = recs[base + i], *old;
			int is_stale;
			recs[base + i] = NULL;
			if ((m->table.count + 1) * 2 > m->table.cap && grow(&m->table) != 0) {
				garbage[ng++] = rec; /* out of memory: drop the update */
				meter__set_last_error(m, "flag table: out of memory");
				continue;
			}
			if ((old = upsert(&m->table, hashes[i], rec, &is_stale)))
				garbage[ng++] = old;
			stale += (size_t)is_stale;
		}
		meter__unlock_all(m);
		for (size_t i = 0; i < ng; i++)
			free(garbage[i]);
	}
	return stale;
}

/* ---- lookups (any thread) ------------------------------------------------------------- */

static _Thread_local unsigned tls_stripe; /* this thread's stripe + 1; 0: not chosen yet */
static atomic_uint next_stripe;

static inline pthread_rwlock_t *my_lock(meter_t *m)
{
	unsigned s = tls_stripe;

	if (!s)
		tls_stripe = s =
			atomic_fetch_add_explicit(&next_stripe, 1, memory_order_relaxed) %
				METER_STRIPES +
			1;
	return &m->stripes[s - 1].lock;
}

/* Caller holds a read lock. */
static const struct meter_flag *lookup(const struct meter_table *t, uint64_t h, const char *key,
				       size_t len)
{
	const struct meter_slot *s = &t->slots[find(t, h, key, len)];
	return s->f;
}

/* "<prefix><a>[/<b>]" into out (room for METER_SUBJECT_MAX + 1). */
static size_t subject(char *out, const char *prefix, size_t plen, const char *a, size_t alen,
		      const char *b, size_t blen)
{
	size_t n = plen;

	memcpy(out, prefix, plen);
	memcpy(out + n, a, alen);
	n += alen;
	if (b) {
		out[n++] = '/';
		memcpy(out + n, b, blen);
		n += blen;
	}
	out[n] = '\0';
	return n;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strlen(src);

	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void describe(const struct meter_flag *f, int64_t now_us, meter_decision_t *out)
{
	out->allowed = 0;
	copy_str(out->subject, sizeof(out->subject), fkey(f));
	copy_str(out->subject_type, sizeof(out->subject_type), f->buf + f->off_type);
	copy_str(out->metric, sizeof(out->metric), f->buf + f->off_metric);
	copy_str(out->period, sizeof(out->period), f->buf + f->off_period);
	copy_str(out->limit, sizeof(out->limit), f->buf + f->off_limit);
	copy_str(out->used, sizeof(out->used), f->buf + f->off_used);
	copy_str(out->reason, sizeof(out->reason), f->buf + f->off_reason);
	out->manual = f->manual;
	out->until = f->until_us ? (f->until_us + 999999) / 1000000 : 0;
	out->retry_after_seconds = f->until_us ? (f->until_us - now_us + 999999) / 1000000 : 0;
}

static size_t id_len(const char *s)
{
	return s ? strnlen(s, METER_ID_MAX + 1) : 0;
}

int meter__check(meter_t *m, const char *tenant, const char *user, const char *key,
		 const struct meter_estimate *est, meter_decision_t *out, meter_remaining_t *rem)
{
	char subj[3][METER_SUBJECT_MAX + 1];
	size_t len[3], n = 0, tl = id_len(tenant), ul = id_len(user), kl = id_len(key);
	uint64_t h[3];
	const struct meter_flag *best = NULL;
	int64_t now = 0;
	int have_now = 0;
	meter_decision_t scratch;

	if (!out)
		out = &scratch;
	out->allowed = 1;
	out->subject[0] = out->subject_type[0] = out->metric[0] = out->period[0] = '\0';
	out->limit[0] = out->used[0] = out->reason[0] = '\0';
	out->until = out->retry_after_seconds = 0;
	out->manual = 0;
	out->ready = m ? atomic_load_explicit(&m->ready, memory_order_relaxed) : 0;
	if (!m || !m->stripes || (est && !m->follow_rollups))
		return METER_ERR_DISABLED;
	if (tl == 0 || tl > METER_ID_MAX || ul > METER_ID_MAX || kl > METER_ID_MAX)
		return METER_ERR_INVALID;

	len[n] = subject(subj[n], "tenant/", 7, tenant, tl, NULL, 0);
	n++;
	if (ul) {
		len[n] = subject(subj[n], "user/", 5, tenant, tl, user, ul);
		n++;
	}
	if (kl) {
		len[n] = subject(subj[n], "key/", 4, tenant, tl, key, kl);
		n++;
	}
	for (size_t i = 0; i < n; i++)
		h[i] = meter__hash(m->hash_seed, subj[i], len[i]);

	pthread_rwlock_t *lock = my_lock(m);
	pthread_rwlock_rdlock(lock);
#if defined(__GNUC__)
	/* Start the (likely) cache misses of all lookups at once. */
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(&m->table.slots[h[i] & (m->table.cap - 1)]);
#endif
	for (size_t i = 0; i < n; i++) {
		const struct meter_flag *f = lookup(&m->table, h[i], subj[i], len[i]);
		if (!f || f->state != MF_BLOCKED)
			continue;
		if (f->until_us) {
			if (!have_now) {
				now = meter__now_us(m);
				have_now = 1;
			}
			if (f->until_us <= now)
				continue; /* past its until: the clear may not have arrived yet */
		}
		/* The longest block decides when the call may go ahead. */
		if (!best || (best->until_us && (!f->until_us || f->until_us > best->until_us)))
			best = f;
	}
	if (best) {
		if (!have_now && est) {
			now = meter__now_us(m);
			have_now = 1;
		}
		describe(best, now, out);
	}
	if (est) {
		if (!have_now)
			now = meter__now_us(m);
		meter__rollups_eval(m, subj, len, n, est, now, out, rem);
	}
	pthread_rwlock_unlock(lock);
	return out->allowed ? METER_OK : METER_BLOCKED;
}

int meter_check(meter_t *m, const char *tenant, const char *user, const char *key,
		meter_decision_t *out)
{
	return meter__check(m, tenant, user, key, NULL, out, NULL);
}

int meter_check_estimate(meter_t *m, const char *tenant, const char *user, const char *key,
			 int64_t est_requests, int64_t est_tokens, meter_decision_t *out,
			 meter_remaining_t *rem)
{
	struct meter_estimate est = {est_requests, est_tokens};
	meter_remaining_t scratch;

	if (!rem)
		rem = &scratch;
	memset(rem, 0, sizeof(*rem));
	rem->requests = rem->tokens = rem->requests_limit = rem->tokens_limit = METER_UNLIMITED;
	if (est_requests < 0 || est_tokens < 0) {
		if (out) /* fill out as any refused call does */
			meter__check(m, NULL, NULL, NULL, NULL, out, NULL);
		return METER_ERR_INVALID;
	}
	return meter__check(m, tenant, user, key, &est, out, rem);
}
