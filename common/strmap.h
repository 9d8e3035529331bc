/* strmap.h - a string-keyed hash map of int64 values (open addressing),
 * for per-batch lookups such as tenant -> zone. Keys are borrowed: they
 * must outlive the map's use (or strmap_reset). */
#ifndef METER_STRMAP_H
#define METER_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap {
	struct strmap_slot {
		const char *key;
		uint64_t hash;
		int64_t value;
	} *slots;
	size_t n, cap; /* cap: a power of two, or 0 */
};

void strmap_init(struct strmap *m);
void strmap_free(struct strmap *m);
/* Remove every key (memory is kept). */
void strmap_reset(struct strmap *m);
/* The value slot of key, added with value `init` when absent (*added set
 * to 1 then, else 0). NULL when out of memory. */
int64_t *strmap_put(struct strmap *m, const char *key, int64_t init, int *added);
/* The value slot of key, or NULL when absent. */
int64_t *strmap_get(const struct strmap *m, const char *key);

#endif
