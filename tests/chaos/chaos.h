/* chaos.h - the chaos suite's generator (tests/chaos/chaos_gen): a seeded
 * stream of usage events with its oracle, and a seeded fault schedule.
 *
 * Everything here is a pure function of the options (seed, sizes, anchor):
 * `chaos_gen plan` and `chaos_gen produce` build the very same stream, one
 * to compute what meterd must end with, the other to send it.
 *
 * Parts, one file each:
 *   world.c    tenants (plan, zone, channels, limit overrides), time zones,
 *              the anchor (the simulated "now") and interesting instants
 *   stream.c   the messages: valid events, duplicates, bad events of every
 *              rejection reason
 *   oracle.c   expected rollups, rejects, flags and notifications
 *   nemesis.c  the fault schedule
 *   chaos_gen.c  the command line
 */
#ifndef METER_CHAOS_H
#define METER_CHAOS_H

#include <stddef.h>
#include <stdint.h>

#define US_PER_S ((int64_t)1000000)
#define US_PER_DAY (86400LL * US_PER_S)
#define PUSD_PER_USD ((int64_t)1000000000000)

#define CH_MAX_TENANTS 64
#define CH_USERS 8
#define CH_KEYS 4
#define CH_MAX_OVERRIDES 4
#define CH_MAX_BOUNDS 96
#define CH_MAX_THRESHOLDS 10

/* ---- random (splitmix64) ---------------------------------------------------- */

uint64_t ch_rand(uint64_t *s);
/* Uniform in [0, n); n > 0. */
int64_t ch_rnd(uint64_t *s, int64_t n);

/* ---- the world: options, tenants, zones ----------------------------------------- */

struct ch_opts {
	uint64_t seed;
	int64_t events;        /* messages in all */
	int64_t tenants;
	int64_t partitions;
	int64_t duration_s;    /* how long the stream and the nemesis run */
	int64_t dup_rate;      /* percent of messages that re-send a valid event */
	int64_t bad_rate;      /* percent that are invalid */
	int64_t lateness_s;    /* meterd's METER_MAX_LATENESS */
	int64_t max_event_bytes; /* meterd's METER_MAX_EVENT_BYTES */
	const char *prefix;    /* tenant and id prefix */
	const char *webhook_url; /* base URL of the receiver ("" = no webhooks) */
	int email;             /* tenants may have an email address */
};

struct ch_override {
	const char *level;     /* tenant | user | key (all users/keys of the tenant) */
	const char *metric;    /* requests | tokens | cost | op:NAME */
	const char *period;    /* day | month */
	int64_t value;         /* cost in pUSD; -1 = unlimited */
};

struct ch_tenant {
	char id[48];
	const char *tz;        /* IANA zone ("UTC" for unregistered tenants) */
	const char *plan;
	int registered;        /* added with meterctl; else auto-created on first event */
	int webhook, email;
	const char *webhook_query; /* receiver behaviour, e.g. "fail=1" */
	int thresholds[CH_MAX_THRESHOLDS];
	int nthresholds;       /* 0: the plan's (80, 90, 100) */
	struct ch_override ov[CH_MAX_OVERRIDES];
	int nov;
	int partition;         /* home partition of its events */
	/* Instants worth an event (epoch us): local midnights that start a
	 * day, month or year, DST transitions, within the lateness window. */
	int64_t bounds[CH_MAX_BOUNDS];
	int nbounds;
	int64_t today_start;   /* local midnight starting the anchor's day */
	int64_t month_start;   /* local midnight starting the anchor's month */
};

struct ch_world {
	struct ch_opts o;
	int64_t anchor_us;     /* the simulated now at the start of the run */
	int64_t window_lo_us;  /* oldest time a valid event gets */
	int ntenants;
	struct ch_tenant t[CH_MAX_TENANTS];
};

/* Build the world of the options. 0, or -1 with a message on stderr. */
int ch_world_init(struct ch_world *w, const struct ch_opts *o);

/* Local calendar of an instant in a zone: "YYYY-MM-DD" of its day and of
 * the first of its month. */
void ch_local_day(const char *tz, int64_t us, char day[16], char month[16]);
/* The local midnight starting the day of us, and the first midnight after
 * it (epoch us). */
int64_t ch_day_start(const char *tz, int64_t us);
int64_t ch_day_end(const char *tz, int64_t us);
/* The local midnight starting the month of us, and the next month's. */
int64_t ch_month_start(const char *tz, int64_t us);
int64_t ch_month_end(const char *tz, int64_t us);

/* Plan limits (DESIGN.md, sql/002): tenant level, requests and tokens per
 * day and month; -1 if the plan has none. */
int64_t ch_plan_limit(const char *plan, const char *metric, const char *period);

/* ---- the stream ------------------------------------------------------------------- */

enum ch_kind { CH_VALID, CH_DUP, CH_BAD };

/* One valid event, a pure function of (world, index). */
struct ch_event {
	int tenant, user, key;  /* user, key: -1 when absent */
	char id[64];
	int64_t time_us;
	const char *provider, *model, *operation;
	int64_t input, cached, output, reasoning, requests, cost_pusd;
	int has_cost;
};

struct ch_msg {
	enum ch_kind kind;
	int64_t seq;            /* message number, 0.. */
	int tenant;
	int partition;
	char key[64];
	char *payload;          /* owned */
	size_t len;
	const char *reason;     /* CH_BAD: the rejection reason meterd must give */
	struct ch_event ev;     /* CH_VALID, CH_DUP: the event */
	int cross_partition;    /* CH_DUP sent to another partition than the original */
};

struct ch_stream;

struct ch_stream *ch_stream_new(const struct ch_world *w);
void ch_stream_destroy(struct ch_stream *s);
/* The next message into *m (free m->payload). 1 while there is one, 0 at
 * the end, -1 on out of memory. */
int ch_stream_next(struct ch_stream *s, struct ch_msg *m);

/* All the rejection reasons the parser has (schema/event.c), in order. */
extern const char *const ch_reasons[];
extern const int ch_nreasons;

/* ---- the oracle -------------------------------------------------------------------- */

struct ch_oracle;

struct ch_oracle *ch_oracle_new(const struct ch_world *w);
void ch_oracle_destroy(struct ch_oracle *o);
/* Account one message (a CH_DUP changes nothing but the figures). */
void ch_oracle_add(struct ch_oracle *o, const struct ch_msg *m);
/* Write DIR/rollups.tsv, rejects.tsv, flags.tsv, notifications.tsv,
 * setup.tsv and figures.tsv. 0, or -1 with a message on stderr. */
int ch_oracle_write(struct ch_oracle *o, const char *dir);

/* ---- the nemesis -------------------------------------------------------------------- */

/* Write the fault schedule: one line "MS ACTION ARGS..." per step, in time
 * order, to f (a FILE *). */
int ch_nemesis_write(const struct ch_world *w, void *f);

#endif
