/* strmap.c - see strmap.h. */
#include "strmap.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ^ (h >> 32);
}

void strmap_init(struct strmap *m)
{
	memset(m, 0, sizeof(*m));
}

void strmap_free(struct strmap *m)
{
	free(m->slots);
	strmap_init(m);
}

void strmap_reset(struct strmap *m)
{
	if (m->slots)
		memset(m->slots, 0, m->cap * sizeof(*m->slots));
	m->n = 0;
}

static int grow(struct strmap *m)
{
	size_t ncap = m->cap ? m->cap * 2 : 256;
	struct strmap_slot *ns = calloc(ncap, sizeof(*ns));
	if (!ns)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].key)
			continue;
		size_t s = (size_t)m->slots[i].hash & (ncap - 1);
		while (ns[s].key)
			s = (s + 1) & (ncap - 1);
		ns[s] = m->slots[i];
	}
	free(m->slots);
	m->slots = ns;
	m->cap = ncap;
	return 0;
}

int64_t *strmap_get(const struct strmap *m, const char *key)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash_str(key);
	for (size_t s = (size_t)h & (m->cap - 1); m->slots[s].key; s = (s + 1) & (m->cap - 1))
		if (m->slots[s].hash == h && strcmp(m->slots[s].key, key) == 0)
			return &m->slots[s].value;
	return NULL;
}

int64_t *strmap_put(struct strmap *m, const char *key, int64_t init, int *added)
{
	if ((m->n + 1) * 2 > m->cap && grow(m) != 0)
		return NULL;
	uint64_t h = hash_str(key);
	size_t s = (size_t)h & (m->cap - 1);
	for (; m->slots[s].key; s = (s + 1) & (m->cap - 1)) {
		if (m->slots[s].hash == h && strcmp(m->slots[s].key, key) == 0) {
			if (added)
				*added = 0;
			return &m->slots[s].value;
		}
	}
	m->slots[s] = (struct strmap_slot){key, h, init};
	m->n++;
	if (added)
		*added = 1;
	return &m->slots[s].value;
}
