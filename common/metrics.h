/* metrics.h - a small Prometheus registry: counters, gauges and histograms
 * with fixed buckets, optional low-cardinality labels, rendered in the text
 * exposition format 0.0.4 (what /metrics serves).
 *
 * Thread-safe: one mutex per registry guards every series; updates are a
 * lock, a short linear lookup and an add, so they belong at batch or request
 * granularity, not in a per-byte loop. A process keeps its metric handles
 * in static variables; every update function accepts a NULL handle and does
 * nothing, so code shared with programs that expose no metrics (meterctl,
 * the unit tests) can call them unconditionally.
 *
 * Labels are for small fixed sets (reason, partition, channel, route,
 * status): never a tenant, user or key id. A family holds at most
 * MX_MAX_SERIES label combinations; updates beyond that are dropped and
 * counted in meter_metrics_series_dropped_total.
 */
#ifndef METER_METRICS_H
#define METER_METRICS_H

#include <stddef.h>

#define MX_MAX_LABELS 3
#define MX_MAX_SERIES 512
#define MX_MAX_BUCKETS 32

struct mx_registry;
struct mx_metric;

/* Label values in the order the family's label names were given:
 * mx_add(m, MX_L("too_late"), 1). NULL for a family without labels. */
#define MX_L(...) ((const char *const[]){__VA_ARGS__})

/* A new empty registry, or NULL when out of memory. */
struct mx_registry *mx_registry_new(void);
/* Frees the registry and every family in it; NULL is a no-op. Handles of
 * its families must not be used afterwards. */
void mx_registry_destroy(struct mx_registry *r);

/* Register a family. name: [a-zA-Z_:][a-zA-Z0-9_:]*; help: one line of text;
 * labels: NULL, or comma-separated label names ("channel" or "route,code",
 * each [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", at most
 * MX_MAX_LABELS; "le" is reserved in histograms). Histogram bounds: 1 to
 * MX_MAX_BUCKETS finite values in strictly increasing order (+Inf is
 * implied). Returns a handle owned by the registry, or NULL (invalid name,
 * labels or bounds, a name already registered, out of memory): a NULL
 * handle makes every update a no-op. A family without labels has its one
 * series from the start (value 0). */
struct mx_metric *mx_counter(struct mx_registry *r, const char *name, const char *help,
			     const char *labels);
struct mx_metric *mx_gauge(struct mx_registry *r, const char *name, const char *help,
			   const char *labels);
struct mx_metric *mx_histogram(struct mx_registry *r, const char *name, const char *help,
			       const char *labels, const double *bounds, size_t nbounds);

/* Counter or gauge: add v (a counter ignores negative and non-finite v). */
void mx_add(struct mx_metric *m, const char *const *lv, double v);
/* Gauge, or a counter mirrored from a monotonic source: set the value. */
void mx_set(struct mx_metric *m, const char *const *lv, double v);
/* Histogram: count one observation of v. */
void mx_observe(struct mx_metric *m, const char *const *lv, double v);
/* Create the series with value 0 if it does not exist, so that it is
 * exported before the first event (e.g. every rejection reason). */
void mx_touch(struct mx_metric *m, const char *const *lv);
/* Drop every series of a labelled family (a gauge rebuilt from a snapshot,
 * e.g. lag per currently assigned partition). */
void mx_clear(struct mx_metric *m);

/* Register fn(opaque) to run at the start of each mx_render (outside the
 * registry lock): it may update metrics, e.g. an uptime gauge. 0 or -1. */
int mx_on_collect(struct mx_registry *r, void (*fn)(void *opaque), void *opaque);

/* The whole registry in the text format 0.0.4: a new NUL-terminated string
 * (caller frees) and its length in *len, or NULL when out of memory. */
char *mx_render(struct mx_registry *r, size_t *len);

/* Value of a series (for tests and for the process itself); -1 when the
 * family or series does not exist. For a histogram, its count. */
double mx_value(struct mx_metric *m, const char *const *lv);

#endif
