/* oracle.c - what meterd must end with, from the generated stream alone.
 *
 * Files written by ch_oracle_write (tab-separated, one record a line):
 *   rollups.tsv        tenant_id subject_type subject_id period period_start events
 *                      requests input_tokens cached_input_tokens output_tokens
 *                      reasoning_tokens cost_pusd (the columns of the rollups table)
 *   rejects.tsv        seq reason: every bad message by its number in the stream
 *   flags.tsv          subject metric period limit until: every limit the subject
 *                      reaches in its current period (used >= limit); a subject
 *                      not listed must not be blocked
 *   notifications.tsv  channel subject metric period period_start threshold limit
 *                      resets_at: every threshold reached (used * 100 >= t * limit)
 *   setup.tsv          what the driver sets up with meterctl before the run:
 *                      "tenant ID PLAN TZ WEBHOOK EMAIL THRESHOLDS" ('-' for none)
 *                      and "limit ID METRIC PERIOD VALUE SCOPE" (VALUE: an integer,
 *                      USD for cost, or unlimited; SCOPE: --users, --keys or -)
 *   figures.tsv        "name value": seed, anchor, counts of the stream
 * Limits as DESIGN.md and sql/002 give them: plan limits for the tenant
 * (requests and tokens, per day and month), tenant overrides for the tenant,
 * all its users or all its keys; usage counts the subject's events whose
 * local day (month) is the anchor's; tokens = input + output; cost in pUSD;
 * op:NAME counts the requests of that operation.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chaos.h"

/* ---- rollup rows in a hash table ------------------------------------------------ */

struct row {
	char *key; /* "tenant\tsubject_type\tsubject_id\tperiod\tperiod_start" */
	int64_t events, requests, input, cached, output, reasoning, cost;
	/* Usage against limits in the current period (only rows of it). */
	int64_t chat_requests;
};

struct ch_oracle {
	const struct ch_world *w;
	struct row *rows;
	size_t nrows, cap;
	int64_t sent, valid, dups, cross_dups, bad, reason_count[32];
	FILE *rejects;     /* seq reason, written as messages come */
	char *rejects_buf;
	size_t rejects_len;
};

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static void oom(void)
{
	fprintf(stderr, "chaos_gen: out of memory\n");
	exit(1);
}

static struct row *row_get(struct ch_oracle *o, const char *key, int create)
{
	if (create && (o->nrows + 1) * 2 > o->cap) {
		size_t ncap = o->cap ? o->cap * 2 : 4096;
		struct row *n = calloc(ncap, sizeof(*n));
		if (!n)
			oom();
		for (size_t i = 0; i < o->cap; i++) {
			if (!o->rows[i].key)
				continue;
			size_t s = hash(o->rows[i].key) & (ncap - 1);
			while (n[s].key)
				s = (s + 1) & (ncap - 1);
			n[s] = o->rows[i];
		}
		free(o->rows);
		o->rows = n;
		o->cap = ncap;
	}
	if (!o->cap)
		return NULL;
	size_t s = hash(key) & (o->cap - 1);
	while (o->rows[s].key && strcmp(o->rows[s].key, key) != 0)
		s = (s + 1) & (o->cap - 1);
	if (!o->rows[s].key) {
		if (!create)
			return NULL;
		if (!(o->rows[s].key = strdup(key)))
			oom();
		o->nrows++;
	}
	return &o->rows[s];
}

struct ch_oracle *ch_oracle_new(const struct ch_world *w)
{
	struct ch_oracle *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->w = w;
	o->rejects = open_memstream(&o->rejects_buf, &o->rejects_len);
	if (!o->rejects) {
		free(o);
		return NULL;
	}
	return o;
}

void ch_oracle_destroy(struct ch_oracle *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->cap; i++)
		free(o->rows[i].key);
	free(o->rows);
	if (o->rejects)
		fclose(o->rejects);
	free(o->rejects_buf);
	free(o);
}

static void add_row(struct ch_oracle *o, const char *tenant, const char *stype, const char *sid,
		    const char *period, const char *start, const struct ch_event *e)
{
	char key[256];
	snprintf(key, sizeof(key), "%s\t%s\t%s\t%s\t%s", tenant, stype, sid, period, start);
	struct row *r = row_get(o, key, 1);
	r->events++;
	r->requests += e->requests;
	r->input += e->input;
	r->cached += e->cached;
	r->output += e->output;
	r->reasoning += e->reasoning;
	r->cost += e->cost_pusd;
	if (!strcmp(e->operation, "chat"))
		r->chat_requests += e->requests;
}

void ch_oracle_add(struct ch_oracle *o, const struct ch_msg *m)
{
	o->sent++;
	if (m->kind == CH_DUP) {
		o->dups++;
		o->cross_dups += m->cross_partition;
		return;
	}
	if (m->kind == CH_BAD) {
		o->bad++;
		for (int i = 0; i < ch_nreasons; i++)
			if (!strcmp(ch_reasons[i], m->reason))
				o->reason_count[i]++;
		fprintf(o->rejects, "%" PRId64 "\t%s\n", m->seq, m->reason);
		return;
	}
	o->valid++;
	const struct ch_event *e = &m->ev;
	const struct ch_tenant *t = &o->w->t[e->tenant];
	char day[16], month[16], u[16], k[16];
	ch_local_day(t->tz, e->time_us, day, month);
	snprintf(u, sizeof(u), "u-%d", e->user);
	snprintf(k, sizeof(k), "k-%d", e->key);
	for (int p = 0; p < 2; p++) {
		const char *period = p ? "month" : "day", *start = p ? month : day;
		add_row(o, t->id, "tenant", "", period, start, e);
		if (e->user >= 0)
			add_row(o, t->id, "user", u, period, start, e);
		if (e->key >= 0)
			add_row(o, t->id, "key", k, period, start, e);
	}
}

static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (!x->key || !y->key)
		return !x->key - !y->key; /* empty slots last */
	return strcmp(x->key, y->key);
}

/* ---- limits ----------------------------------------------------------------------- */

/* The limit of (metric, period) for a subject of t at level: a tenant
 * override for that level beats the plan (which limits tenants only).
 * -1: no limit (or unlimited). */
static int64_t limit_of(const struct ch_tenant *t, const char *level, const char *metric,
			const char *period)
{
	for (int i = 0; i < t->nov; i++)
		if (!strcmp(t->ov[i].level, level) && !strcmp(t->ov[i].metric, metric) &&
		    !strcmp(t->ov[i].period, period))
			return t->ov[i].value;
	return strcmp(level, "tenant") == 0 ? ch_plan_limit(t->plan, metric, period) : -1;
}

static int64_t used_of(const struct row *r, const char *metric)
{
	if (!r)
		return 0;
	if (!strcmp(metric, "requests"))
		return r->requests;
	if (!strcmp(metric, "tokens"))
		return r->input + r->output;
	if (!strcmp(metric, "cost"))
		return r->cost;
	return r->chat_requests; /* op:chat, the only operation limited here */
}

static void utc_text(int64_t us, char out[32])
{
	time_t s = (time_t)(us / US_PER_S);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The metrics a subject of t at level may be limited on, per period. */
static const char *const metrics[] = {"requests", "tokens", "cost", "op:chat"};
static const char *const periods[] = {"day", "month"};

/* Flags and notifications of one subject. */
static void judge_subject(struct ch_oracle *o, const struct ch_tenant *t,
			  const char *stype, const char *sid, FILE *flags, FILE *notes,
			  int64_t *nflags, int64_t *nnotes)
{
	char subject[160];
	if (!strcmp(stype, "tenant"))
		snprintf(subject, sizeof(subject), "tenant/%s", t->id);
	else
		snprintf(subject, sizeof(subject), "%s/%s/%s", stype, t->id, sid);
	static const int dflt[] = {80, 90, 100};
	const int *th = t->nthresholds ? t->thresholds : dflt;
	int nth = t->nthresholds ? t->nthresholds : 3;
	for (size_t p = 0; p < 2; p++) {
		const char *period = periods[p];
		char day[16], month[16], key[256], until[32];
		ch_local_day(t->tz, o->w->anchor_us, day, month);
		const char *start = p ? month : day;
		snprintf(key, sizeof(key), "%s\t%s\t%s\t%s\t%s", t->id, stype, sid, period, start);
		const struct row *r = row_get(o, key, 0);
		int64_t end = p ? ch_month_end(t->tz, o->w->anchor_us)
				: ch_day_end(t->tz, o->w->anchor_us);
		utc_text(end, until);
		for (size_t m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
			int64_t lim = limit_of(t, stype, metrics[m], period);
			if (lim <= 0)
				continue;
			int64_t used = used_of(r, metrics[m]);
			if (used >= lim) {
				fprintf(flags, "%s\t%s\t%s\t%" PRId64 "\t%s\n", subject, metrics[m],
					period, lim, until);
				(*nflags)++;
			}
			for (int i = 0; i < nth; i++) {
				/* numeric in SQL: no overflow; here used < 2^40, lim < 2^50. */
				if ((__int128)used * 100 < (__int128)th[i] * lim)
					continue;
				for (int ch = 0; ch < 2; ch++) {
					if (!(ch ? t->email : t->webhook))
						continue;
					fprintf(notes, "%s\t%s\t%s\t%s\t%s\t%d\t%" PRId64 "\t%s\n",
						ch ? "email" : "webhook", subject, metrics[m], period,
						start, th[i], lim, until);
					(*nnotes)++;
				}
			}
		}
	}
}

/* ---- output ----------------------------------------------------------------------- */

static FILE *open_out(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		fprintf(stderr, "chaos_gen: %s: %s\n", path, strerror(errno));
	return f;
}

static int close_out(FILE *f, const char *name)
{
	if (fclose(f) != 0) {
		fprintf(stderr, "chaos_gen: writing %s: %s\n", name, strerror(errno));
		return -1;
	}
	return 0;
}

static void write_setup(const struct ch_world *w, FILE *f)
{
	for (int i = 0; i < w->ntenants; i++) {
		const struct ch_tenant *t = &w->t[i];
		if (!t->registered)
			continue;
		char th[64] = "-", url[512] = "-", email[128] = "-";
		if (t->nthresholds) {
			size_t n = 0;
			for (int j = 0; j < t->nthresholds; j++)
				n += (size_t)snprintf(th + n, sizeof(th) - n, "%s%d", j ? "," : "",
						      t->thresholds[j]);
		}
		if (t->webhook)
			snprintf(url, sizeof(url), "%s/%s%s%s", w->o.webhook_url, t->id,
				 t->webhook_query[0] ? "?" : "", t->webhook_query);
		if (t->email)
			snprintf(email, sizeof(email), "ops+%s@chaos.example", t->id);
		fprintf(f, "tenant\t%s\t%s\t%s\t%s\t%s\t%s\n", t->id, t->plan, t->tz, url, email, th);
		for (int j = 0; j < t->nov; j++) {
			const struct ch_override *ov = &t->ov[j];
			char value[48];
			if (ov->value < 0)
				snprintf(value, sizeof(value), "unlimited");
			else if (!strcmp(ov->metric, "cost"))
				snprintf(value, sizeof(value), "%" PRId64 ".%012" PRId64,
					 ov->value / PUSD_PER_USD, ov->value % PUSD_PER_USD);
			else
				snprintf(value, sizeof(value), "%" PRId64, ov->value);
			fprintf(f, "limit\t%s\t%s\t%s\t%s\t%s\n", t->id, ov->metric, ov->period, value,
				!strcmp(ov->level, "user") ? "--users"
				: !strcmp(ov->level, "key") ? "--keys" : "-");
		}
	}
}

int ch_oracle_write(struct ch_oracle *o, const char *dir)
{
	const struct ch_world *w = o->w;
	int rc = 0;
	FILE *f;

	/* Flags and notifications need the current-period rows, before the
	 * table is sorted (which breaks its hashing). */
	FILE *flags = open_out(dir, "flags.tsv"), *notes = open_out(dir, "notifications.tsv");
	if (!flags || !notes)
		return -1;
	int64_t nflags = 0, nnotes = 0;
	for (int i = 0; i < w->ntenants; i++) {
		const struct ch_tenant *t = &w->t[i];
		char sid[16];
		judge_subject(o, t, "tenant", "", flags, notes, &nflags, &nnotes);
		for (int u = 0; u < CH_USERS; u++) {
			snprintf(sid, sizeof(sid), "u-%d", u);
			judge_subject(o, t, "user", sid, flags, notes, &nflags, &nnotes);
		}
		for (int k = 0; k < CH_KEYS; k++) {
			snprintf(sid, sizeof(sid), "k-%d", k);
			judge_subject(o, t, "key", sid, flags, notes, &nflags, &nnotes);
		}
	}
	rc |= close_out(flags, "flags.tsv");
	rc |= close_out(notes, "notifications.tsv");

	if (!(f = open_out(dir, "rollups.tsv")))
		return -1;
	qsort(o->rows, o->cap, sizeof(*o->rows), row_cmp);
	for (size_t i = 0; i < o->nrows; i++) {
		const struct row *r = &o->rows[i];
		fprintf(f, "%s\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64 "\t%" PRId64
			   "\t%" PRId64 "\t%" PRId64 "\n",
			r->key, r->events, r->requests, r->input, r->cached, r->output, r->reasoning,
			r->cost);
	}
	/* Sorted rows cannot be looked up again: empty the table. */
	for (size_t i = 0; i < o->cap; i++)
		free(o->rows[i].key);
	memset(o->rows, 0, o->cap * sizeof(*o->rows));
	o->nrows = 0;
	rc |= close_out(f, "rollups.tsv");

	if (!(f = open_out(dir, "rejects.tsv")))
		return -1;
	fflush(o->rejects);
	fwrite(o->rejects_buf, 1, o->rejects_len, f);
	rc |= close_out(f, "rejects.tsv");

	if (!(f = open_out(dir, "setup.tsv")))
		return -1;
	write_setup(w, f);
	rc |= close_out(f, "setup.tsv");

	if (!(f = open_out(dir, "figures.tsv")))
		return -1;
	char anchor[32];
	utc_text(w->anchor_us, anchor);
	fprintf(f, "seed\t%" PRIu64 "\nanchor\t%s\nanchor_s\t%" PRId64 "\nlateness_s\t%" PRId64
		   "\nevents\t%" PRId64 "\nvalid\t%" PRId64 "\nduplicates\t%" PRId64
		   "\ncross_partition_duplicates\t%" PRId64 "\nbad\t%" PRId64 "\ntenants\t%d"
		   "\nflags_expected\t%" PRId64 "\nnotifications_expected\t%" PRId64 "\n",
		w->o.seed, anchor, w->anchor_us / US_PER_S, w->o.lateness_s, o->sent, o->valid,
		o->dups, o->cross_dups, o->bad, w->ntenants, nflags, nnotes);
	for (int i = 0; i < ch_nreasons; i++)
		fprintf(f, "reason:%s\t%" PRId64 "\n", ch_reasons[i], o->reason_count[i]);
	for (int i = 0; i < w->ntenants; i++) {
		const struct ch_tenant *t = &w->t[i];
		fprintf(f, "tenant:%s\t%s %s bounds=%d\n", t->id, t->tz, t->plan, t->nbounds);
	}
	rc |= close_out(f, "figures.tsv");
	return rc ? -1 : 0;
}
