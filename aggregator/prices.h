/* prices.h - the price table in memory, and the cost of one event.
 *
 * The batch transaction calls prc_refresh() first: it compares a checksum of
 * the prices table (a few dozen rows) with the loaded copy and reloads it
 * when anything changed, so every batch is priced with the table as of its
 * own transaction. Pricing is then pure C, with the same rule as the table's
 * comment in sql/001_schema.sql: the row in force for an event is the one
 * with the longest matching model name (exact, or a prefix followed by '-')
 * and the latest valid_from <= the event's time, and
 *   cost = (input - cached) * input_pusd + cached * cached_input_pusd
 *        + output * output_pusd + requests * request_pusd
 *        + sum(units * unit_pusd[unit])
 * in integer pico-USD (128-bit: 10^12 tokens at 10^9 pUSD each fits).
 */
#ifndef METER_PRICES_H
#define METER_PRICES_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "event.h"

struct prc;

enum prc_source { PRC_EVENT = 0, PRC_PRICE, PRC_UNPRICED };

struct prc *prc_new(void);
/* prc_destroy(NULL) is a no-op. */
void prc_destroy(struct prc *p);

/* Reload the table if it changed since the last call. Run it inside the
 * batch transaction. 0, or -1 with errstr (the cache is left empty, so a
 * later call reloads). */
int prc_refresh(struct prc *p, PGconn *conn, char *errstr, size_t errstr_size);

/* The version of the loaded table: the highest prices.id (0: empty). */
int64_t prc_version(const struct prc *p);

/* What pricing needs of an event (strings and units borrowed). */
struct prc_usage {
	const char *provider;
	const char *model;
	int64_t time_us;
	int64_t input_tokens, cached_input_tokens, output_tokens, requests;
	const struct ev_unit *units;
	int nunits;
	int has_cost;       /* the event carries its own cost ... */
	int64_t cost_pusd;  /* ... this one */
};

/* Price one event. Sets *cost (pUSD) and *price_id (the row in force, 0
 * when none) and returns where the cost came from: the event's own cost,
 * the price table, or nowhere (cost 0). */
enum prc_source prc_cost(struct prc *p, const struct prc_usage *u, __int128 *cost,
			 int64_t *price_id);

const char *prc_source_name(enum prc_source s);

#endif
