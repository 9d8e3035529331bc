/* metrics.c - see metrics.h. */
#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

enum mx_type { MX_COUNTER, MX_GAUGE, MX_HISTOGRAM };

struct mx_series {
	char *lv[MX_MAX_LABELS]; /* owned copies of the label values */
	double value;            /* counter, gauge */
	uint64_t *buckets;       /* histogram: per bound (not cumulative) */
	uint64_t count;
	double sum;
};

struct mx_metric {
	struct mx_registry *reg;
	enum mx_type type;
	char *name;
	char *help;
	int nlabels;
	char *label[MX_MAX_LABELS];
	double bounds[MX_MAX_BUCKETS];
	size_t nbounds;
	struct mx_series *series;
	size_t nseries, cap;
	struct mx_metric *next;
};

struct hook {
	void (*fn)(void *);
	void *opaque;
};

struct mx_registry {
	pthread_mutex_t lock;
	struct mx_metric *head, *tail;
	struct hook hooks[8];
	int nhooks;
	uint64_t dropped; /* updates refused: too many series, bad label values */
};

struct mx_registry *mx_registry_new(void)
{
	struct mx_registry *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (pthread_mutex_init(&r->lock, NULL) != 0) {
		free(r);
		return NULL;
	}
	return r;
}

static void series_free(struct mx_series *s)
{
	for (int i = 0; i < MX_MAX_LABELS; i++)
		free(s->lv[i]);
	free(s->buckets);
}

static void metric_free(struct mx_metric *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nseries; i++)
		series_free(&m->series[i]);
	free(m->series);
	for (int i = 0; i < m->nlabels; i++)
		free(m->label[i]);
	free(m->name);
	free(m->help);
	free(m);
}

void mx_registry_destroy(struct mx_registry *r)
{
	if (!r)
		return;
	struct mx_metric *m = r->head;
	while (m) {
		struct mx_metric *next = m->next;
		metric_free(m);
		m = next;
	}
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static int name_ok(const char *s, int metric_name)
{
	if (!s || !*s)
		return 0;
	for (const char *p = s; *p; p++) {
		char c = *p;
		int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			    (metric_name && c == ':');
		int digit = c >= '0' && c <= '9';
		if (!(alpha || (digit && p != s)))
			return 0;
	}
	if (!metric_name && s[0] == '_' && s[1] == '_')
		return 0;
	return 1;
}

/* Split "a,b" into m->label[]; 0 or -1. */
static int parse_labels(struct mx_metric *m, const char *labels)
{
	if (!labels || !*labels)
		return 0;
	const char *p = labels;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (m->nlabels == MX_MAX_LABELS || n == 0 || n > 64)
			return -1;
		char *l = strndup(p, n);
		if (!l)
			return -1;
		m->label[m->nlabels++] = l;
		if (!name_ok(l, 0))
			return -1;
		if (m->type == MX_HISTOGRAM && strcmp(l, "le") == 0)
			return -1;
		for (int i = 0; i + 1 < m->nlabels; i++)
			if (strcmp(m->label[i], l) == 0)
				return -1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* Find or create the series of lv; caller holds the lock. NULL when the
 * family is full or memory is short (the update is dropped). */
static struct mx_series *series_get(struct mx_metric *m, const char *const *lv)
{
	for (size_t i = 0; i < m->nseries; i++) {
		struct mx_series *s = &m->series[i];
		int same = 1;
		for (int k = 0; k < m->nlabels && same; k++)
			same = strcmp(s->lv[k], lv[k]) == 0;
		if (same)
			return s;
	}
	if (m->nseries == MX_MAX_SERIES)
		return NULL;
	if (m->nseries == m->cap) {
		size_t ncap = m->cap ? m->cap * 2 : 4;
		struct mx_series *ns = realloc(m->series, ncap * sizeof(*ns));
		if (!ns)
			return NULL;
		m->series = ns;
		m->cap = ncap;
	}
	struct mx_series *s = &m->series[m->nseries];
	memset(s, 0, sizeof(*s));
	for (int k = 0; k < m->nlabels; k++) {
		s->lv[k] = strdup(lv[k]);
		if (!s->lv[k]) {
			series_free(s);
			return NULL;
		}
	}
	if (m->type == MX_HISTOGRAM) {
		s->buckets = calloc(m->nbounds, sizeof(*s->buckets));
		if (!s->buckets) {
			series_free(s);
			return NULL;
		}
	}
	m->nseries++;
	return s;
}

static struct mx_metric *family_new(struct mx_registry *r, enum mx_type type, const char *name,
				    const char *help, const char *labels, const double *bounds,
				    size_t nbounds)
{
	if (!r || !name_ok(name, 1) || !help)
		return NULL;
	if (type == MX_HISTOGRAM) {
		if (!bounds || nbounds == 0 || nbounds > MX_MAX_BUCKETS)
			return NULL;
		for (size_t i = 0; i < nbounds; i++)
			if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
				return NULL;
	}
	struct mx_metric *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->reg = r;
	m->type = type;
	m->name = strdup(name);
	m->help = strdup(help);
	if (!m->name || !m->help || parse_labels(m, labels) != 0)
		goto fail;
	if (type == MX_HISTOGRAM) {
		memcpy(m->bounds, bounds, nbounds * sizeof(*bounds));
		m->nbounds = nbounds;
	}
	pthread_mutex_lock(&r->lock);
	for (struct mx_metric *o = r->head; o; o = o->next) {
		if (strcmp(o->name, name) == 0) {
			pthread_mutex_unlock(&r->lock);
			goto fail;
		}
	}
	if (m->nlabels == 0 && !series_get(m, NULL)) {
		pthread_mutex_unlock(&r->lock);
		goto fail;
	}
	if (r->tail)
		r->tail->next = m;
	else
		r->head = m;
	r->tail = m;
	pthread_mutex_unlock(&r->lock);
	return m;
fail:
	metric_free(m);
	return NULL;
}

struct mx_metric *mx_counter(struct mx_registry *r, const char *name, const char *help,
			     const char *labels)
{
	return family_new(r, MX_COUNTER, name, help, labels, NULL, 0);
}

struct mx_metric *mx_gauge(struct mx_registry *r, const char *name, const char *help,
			   const char *labels)
{
	return family_new(r, MX_GAUGE, name, help, labels, NULL, 0);
}

struct mx_metric *mx_histogram(struct mx_registry *r, const char *name, const char *help,
			       const char *labels, const double *bounds, size_t nbounds)
{
	return family_new(r, MX_HISTOGRAM, name, help, labels, bounds, nbounds);
}

static int labels_given(const struct mx_metric *m, const char *const *lv)
{
	if (m->nlabels == 0)
		return 1;
	if (!lv)
		return 0;
	for (int k = 0; k < m->nlabels; k++)
		if (!lv[k] || strlen(lv[k]) > 256)
			return 0;
	return 1;
}

/* Lock and find the series; NULL (unlocked, update dropped) if impossible. */
static struct mx_series *begin(struct mx_metric *m, const char *const *lv)
{
	if (!m)
		return NULL;
	pthread_mutex_lock(&m->reg->lock);
	struct mx_series *s = labels_given(m, lv) ? series_get(m, lv) : NULL;
	if (!s) {
		m->reg->dropped++;
		pthread_mutex_unlock(&m->reg->lock);
	}
	return s;
}

static void end(struct mx_metric *m)
{
	pthread_mutex_unlock(&m->reg->lock);
}

void mx_add(struct mx_metric *m, const char *const *lv, double v)
{
	if (!m || m->type == MX_HISTOGRAM)
		return;
	if (m->type == MX_COUNTER && !(v >= 0 && isfinite(v)))
		return;
	struct mx_series *s = begin(m, lv);
	if (!s)
		return;
	s->value += v;
	end(m);
}

void mx_set(struct mx_metric *m, const char *const *lv, double v)
{
	if (!m || m->type == MX_HISTOGRAM)
		return;
	struct mx_series *s = begin(m, lv);
	if (!s)
		return;
	s->value = v;
	end(m);
}

void mx_observe(struct mx_metric *m, const char *const *lv, double v)
{
	if (!m || m->type != MX_HISTOGRAM || isnan(v))
		return;
	struct mx_series *s = begin(m, lv);
	if (!s)
		return;
	for (size_t i = 0; i < m->nbounds; i++) {
		if (v <= m->bounds[i]) {
			s->buckets[i]++;
			break;
		}
	}
	s->count++;
	s->sum += v;
	end(m);
}

void mx_touch(struct mx_metric *m, const char *const *lv)
{
	struct mx_series *s = begin(m, lv);
	if (s)
		end(m);
}

void mx_clear(struct mx_metric *m)
{
	if (!m || m->nlabels == 0)
		return;
	pthread_mutex_lock(&m->reg->lock);
	for (size_t i = 0; i < m->nseries; i++)
		series_free(&m->series[i]);
	m->nseries = 0;
	pthread_mutex_unlock(&m->reg->lock);
}

double mx_value(struct mx_metric *m, const char *const *lv)
{
	if (!m || !labels_given(m, lv))
		return -1;
	double v = -1;
	pthread_mutex_lock(&m->reg->lock);
	for (size_t i = 0; i < m->nseries; i++) {
		struct mx_series *s = &m->series[i];
		int same = 1;
		for (int k = 0; k < m->nlabels && same; k++)
			same = strcmp(s->lv[k], lv[k]) == 0;
		if (same) {
			v = m->type == MX_HISTOGRAM ? (double)s->count : s->value;
			break;
		}
	}
	pthread_mutex_unlock(&m->reg->lock);
	return v;
}

int mx_on_collect(struct mx_registry *r, void (*fn)(void *opaque), void *opaque)
{
	if (!r || !fn)
		return -1;
	pthread_mutex_lock(&r->lock);
	int rc = -1;
	if (r->nhooks < (int)(sizeof(r->hooks) / sizeof(r->hooks[0]))) {
		r->hooks[r->nhooks].fn = fn;
		r->hooks[r->nhooks].opaque = opaque;
		r->nhooks++;
		rc = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return rc;
}

/* ---- exposition ------------------------------------------------------------ */

/* The shortest decimal text that reads back as v; +Inf, -Inf, NaN. */
static void fmt_value(char *out, size_t n, double v)
{
	if (isnan(v)) {
		snprintf(out, n, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(out, n, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, n, "%.0f", v);
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, n, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			return;
	}
}

/* HELP text: backslash and newline escaped. Label values: also '"'. */
static void put_escaped(struct buf *b, const char *s, int quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			buf_append(b, "\\\\", 2);
		else if (*s == '\n')
			buf_append(b, "\\n", 2);
		else if (quote && *s == '"')
			buf_append(b, "\\\"", 2);
		else
			buf_putc(b, *s);
	}
}

/* name{l1="v1",...,extra_name="extra"} - extra for the histogram's le. */
static void put_series_name(struct buf *b, const struct mx_metric *m, const char *suffix,
			    const struct mx_series *s, const char *extra_name, const char *extra)
{
	buf_appendf(b, "%s%s", m->name, suffix);
	if (m->nlabels == 0 && !extra_name)
		return;
	buf_putc(b, '{');
	for (int k = 0; k < m->nlabels; k++) {
		buf_appendf(b, "%s%s=\"", k ? "," : "", m->label[k]);
		put_escaped(b, s->lv[k], 1);
		buf_putc(b, '"');
	}
	if (extra_name)
		buf_appendf(b, "%s%s=\"%s\"", m->nlabels ? "," : "", extra_name, extra);
	buf_putc(b, '}');
}

static void render_family(struct buf *b, const struct mx_metric *m)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	char v[64];
	buf_appendf(b, "# HELP %s ", m->name);
	put_escaped(b, m->help, 0);
	buf_appendf(b, "\n# TYPE %s %s\n", m->name, types[m->type]);
	for (size_t i = 0; i < m->nseries; i++) {
		const struct mx_series *s = &m->series[i];
		if (m->type != MX_HISTOGRAM) {
			put_series_name(b, m, "", s, NULL, NULL);
			fmt_value(v, sizeof(v), s->value);
			buf_appendf(b, " %s\n", v);
			continue;
		}
		uint64_t cum = 0;
		for (size_t k = 0; k < m->nbounds; k++) {
			char le[64];
			cum += s->buckets[k];
			fmt_value(le, sizeof(le), m->bounds[k]);
			put_series_name(b, m, "_bucket", s, "le", le);
			buf_appendf(b, " %llu\n", (unsigned long long)cum);
		}
		put_series_name(b, m, "_bucket", s, "le", "+Inf");
		buf_appendf(b, " %llu\n", (unsigned long long)s->count);
		put_series_name(b, m, "_sum", s, NULL, NULL);
		fmt_value(v, sizeof(v), s->sum);
		buf_appendf(b, " %s\n", v);
		put_series_name(b, m, "_count", s, NULL, NULL);
		buf_appendf(b, " %llu\n", (unsigned long long)s->count);
	}
}

char *mx_render(struct mx_registry *r, size_t *len)
{
	if (!r)
		return NULL;
	struct hook hooks[8];
	pthread_mutex_lock(&r->lock);
	int nhooks = r->nhooks;
	memcpy(hooks, r->hooks, sizeof(hooks));
	pthread_mutex_unlock(&r->lock);
	for (int i = 0; i < nhooks; i++)
		hooks[i].fn(hooks[i].opaque);

	struct buf b;
	buf_init(&b, 0);
	pthread_mutex_lock(&r->lock);
	for (const struct mx_metric *m = r->head; m; m = m->next)
		render_family(&b, m);
	buf_appendf(&b,
		    "# HELP meter_metrics_series_dropped_total Metric updates dropped (too many "
		    "label combinations or a missing label value).\n"
		    "# TYPE meter_metrics_series_dropped_total counter\n"
		    "meter_metrics_series_dropped_total %llu\n",
		    (unsigned long long)r->dropped);
	pthread_mutex_unlock(&r->lock);
	if (b.oom || !b.data) {
		buf_free(&b);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.data;
}
