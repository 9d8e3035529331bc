/* notifier.h - meter-notifier: drains the notifications outbox that meterd
 * fills (sql/006_notifications.sql) and delivers each row once or more:
 * Standard Webhooks v1 POSTs and SMTP emails, with retries.
 *
 * The parts, one file each:
 *   store.c    PostgreSQL: LISTEN, claim due rows, record every attempt
 *   engine.c   concurrent deliveries on a libcurl multi handle, outcomes
 *   webhook.c  the signed POST (HMAC-SHA256 with the tenant's whsec_ secret)
 *   email.c    the multipart email and its SMTP transfer
 *   guard.c    the SSRF guard: which connected addresses are refused
 *   retry.c    the retry schedule, jitter and Retry-After
 *   main.c     configuration, signals and the loop tying them together
 *
 * Delivery is at least once: a row is claimed by moving its next_attempt_at
 * forward by a lease (the transfer timeout plus a margin) and counting the
 * attempt in the same statement, so a notifier killed mid-delivery leaves
 * rows that fall due again when the lease ends; a repeat carries the same
 * webhook-id / Message-ID.
 */
#ifndef METER_NOTIFIER_H
#define METER_NOTIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "buf.h"
#include "config.h"

/* ---- retry.c ------------------------------------------------------------- */

#define NTF_SCHEDULE_MAX 20
/* A Retry-After longer than this is cut to it. */
#define NTF_RETRY_AFTER_MAX_MS (24LL * 3600 * 1000)

/* Delays before the 2nd, 3rd, ... attempt. n == 0: a single attempt. */
struct ntf_schedule {
	int n;
	int64_t delay_ms[NTF_SCHEDULE_MAX];
};

/* Parse "5s,5m,30m,2h" (durations as num_parse_duration_ms takes them,
 * each at most 7 days; "" for none). 0, or -1 with errstr set. */
int ntf_schedule_parse(const char *text, struct ntf_schedule *out, char *errstr,
		       size_t errstr_size);

/* After attempt number `attempt` (1-based) failed: 0 with *delay_ms the wait
 * before the next one, or -1 when that was the last attempt (dead). The
 * schedule's delay gets a jitter of +-20 % from rnd (uniform over 32 bits);
 * retry_after_ms >= 0 (the receiver's Retry-After, -1 if none) is honoured
 * as a minimum, cut to NTF_RETRY_AFTER_MAX_MS. */
int ntf_retry_delay(const struct ntf_schedule *s, int attempt, int64_t retry_after_ms,
		    uint32_t rnd, int64_t *delay_ms);

/* A Retry-After header value: delta-seconds ("120") or an HTTP-date in any
 * of RFC 9110's three forms ("Sun, 06 Nov 1994 08:49:37 GMT", "Sunday,
 * 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"), relative to now.
 * A date in the past means 0. 0 and *delay_ms, or -1 if unparsable. */
int ntf_retry_after_parse(const char *value, time_t now, int64_t *delay_ms);

/* ---- guard.c ------------------------------------------------------------- */

enum ntf_addr_class {
	NTF_ADDR_PUBLIC = 0,
	NTF_ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
	NTF_ADDR_LOOPBACK,    /* 127/8, ::1 */
	NTF_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fec0::/10 */
	NTF_ADDR_SHARED,      /* 100.64/10 (carrier-grade NAT) */
	NTF_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
	NTF_ADDR_METADATA,    /* 169.254.169.254, 169.254.170.2, 100.100.100.200 */
	NTF_ADDR_UNIQUE_LOCAL, /* fc00::/7 */
	NTF_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
	NTF_ADDR_RESERVED,    /* documentation, benchmarking, 240/4, broadcast... */
};

/* Class of an IPv4 or IPv6 socket address; IPv4-mapped, -compatible, NAT64
 * (64:ff9b::/96) and 6to4 (2002::/16) IPv6 addresses are judged by the
 * IPv4 address they carry. Unknown families are NTF_ADDR_RESERVED. */
enum ntf_addr_class ntf_addr_classify(const struct sockaddr *sa, socklen_t len);
/* The same for a numeric address in text; -1 if it is not one. */
int ntf_addr_classify_text(const char *ip, enum ntf_addr_class *out);
/* "loopback", "private", ... for messages. */
const char *ntf_addr_class_name(enum ntf_addr_class c);

/* ---- webhook.c ----------------------------------------------------------- */

/* Decode a Standard Webhooks secret ("whsec_" + base64; the prefix is
 * optional) into out. 0 and *out_len, or -1 if it is not valid base64 of 1
 * to out_size bytes. */
int ntf_secret_decode(const char *secret, unsigned char *out, size_t out_size,
		      size_t *out_len);

/* The webhook-signature header value "v1,<base64 HMAC-SHA256(secret,
 * msg_id.timestamp.body)>" into out (at least 64 bytes). 0, or -1 with
 * errstr set (never containing the secret). */
int ntf_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
	     size_t body_len, char *out, size_t out_size, char *errstr, size_t errstr_size);

/* scheme://host[:port] of a URL (no user info, path or query: those can
 * hold tokens) for logs; "(invalid URL)" if it does not parse. */
void ntf_url_origin(const char *url, char *out, size_t out_size);

/* ---- email.c ------------------------------------------------------------- */

/* What a notification says, as text from the outbox row (all borrowed). */
struct ntf_facts {
	const char *msg_id;
	const char *tenant_id;
	const char *subject_type; /* tenant | user | key */
	const char *subject_id;
	const char *metric;       /* requests | tokens | cost (pUSD) | op:NAME */
	const char *period;       /* day | month | rolling30 */
	const char *period_start; /* YYYY-MM-DD */
	const char *threshold;    /* percent, e.g. "80" */
	const char *limit;        /* decimal integers (cost in pUSD) */
	const char *used;
	const char *remaining;
	const char *percent;      /* e.g. "80.00" */
	const char *resets_utc;   /* "YYYY-MM-DD HH:MM", or "" when unknown */
	const char *resets_local; /* the same in tz, or "" */
	const char *tz;           /* IANA zone, or "" */
};

/* The email as it goes on the wire (CRLF lines, multipart/alternative with
 * a text/plain and a text/html part), appended to out. from is the From
 * header as configured, to the recipient address, date the Date header.
 * 0, or -1 with errstr set (an address with control characters, ...). */
int ntf_email_build(const struct ntf_facts *f, const char *from, const char *to, time_t date,
		    struct buf *out, char *errstr, size_t errstr_size);

/* The bare address of "Name <addr>" or "addr" into out; 0, or -1 if there
 * is none (no '@', control characters, too long). */
int ntf_mailbox_address(const char *mailbox, char *out, size_t out_size);

/* ---- store.c ------------------------------------------------------------- */

/* One claimed notification (a new object owned by the caller). */
struct ntf_note {
	int64_t id;
	int attempt;           /* this attempt's number (attempts after the claim) */
	int is_webhook;        /* else email */
	int tenant_disabled;   /* the tenant's webhook was disabled (410) */
	char *target;          /* URL or address */
	char *payload;         /* the webhook body, exactly as stored */
	char *secret;          /* the tenant's whsec_ secret, or NULL */
	struct ntf_facts f;    /* strings owned by the note */
	char *strings;         /* one allocation holding all the strings above */
	size_t strings_len;    /* (wiped on free: it holds the secret) */
};
void ntf_note_free(struct ntf_note *n);

enum ntf_outcome {
	NTF_DELIVERED,   /* 2xx, or the SMTP server accepted the message */
	NTF_RETRY,       /* failed; try again after retry_ms */
	NTF_DEAD,        /* failed on the last attempt */
	NTF_DISABLED,    /* 410 Gone: the endpoint is disabled */
	NTF_INTERRUPTED, /* the notifier stopped mid-delivery: due again now */
};

#define NTF_SNIPPET_MAX 512

/* The outcome of one attempt, to record. */
struct ntf_result {
	int64_t id;
	int attempt;            /* the attempt's number, as claimed */
	char msg_id[64];
	enum ntf_outcome outcome;
	int64_t retry_ms;       /* NTF_RETRY: wait before the next attempt */
	int64_t started_us;     /* wall clock, epoch microseconds */
	int64_t duration_ms;
	long status;            /* HTTP status or SMTP reply code; 0: none */
	int record_attempt;     /* write a notification_attempts row */
	char error[512];        /* "" when delivered */
	char snippet[NTF_SNIPPET_MAX + 1];
};

struct ntf_store;

/* Borrows cfg (must outlive the store). Never fails but for memory. */
struct ntf_store *ntf_store_new(const struct meter_config *cfg);
void ntf_store_destroy(struct ntf_store *s);

/* Connect and LISTEN meter_notifications. 0, or -1 with errstr set. */
int ntf_store_connect(struct ntf_store *s, char *errstr, size_t errstr_size);
void ntf_store_disconnect(struct ntf_store *s);
int ntf_store_connected(const struct ntf_store *s);
/* The connection's socket (to poll for NOTIFY), -1 when disconnected. */
int ntf_store_socket(const struct ntf_store *s);
/* Read what arrived on the socket: 1 if a wake-up was notified, 0 if not,
 * -1 if the connection broke (it is closed then). */
int ntf_store_consume(struct ntf_store *s);

/* Claim up to limit due rows of the given channels (email only when
 * with_email). *out gets a new array of new notes (free each with
 * ntf_note_free, then the array with free). Returns the number claimed, or
 * -1 with errstr set. */
int ntf_store_claim(struct ntf_store *s, int limit, int with_email, struct ntf_note ***out,
		    char *errstr, size_t errstr_size);

/* Milliseconds until the earliest pending row falls due (0 if one is due
 * now), or -1 if none is pending; -2 on error (errstr set). */
int64_t ntf_store_next_due_ms(struct ntf_store *s, int with_email, char *errstr,
			      size_t errstr_size);

/* Record an attempt and the row's new state in one statement. 0, or -1
 * with errstr set (the result can be recorded again later). */
int ntf_store_record(struct ntf_store *s, const struct ntf_result *r, char *errstr,
		     size_t errstr_size);

/* ---- engine.c ------------------------------------------------------------ */

/* 2xx: delivered; 410: disabled; anything else (3xx not followed, 4xx,
 * 429, 5xx): retried. */
enum ntf_outcome ntf_http_outcome(long status);

/* Copy at most NTF_SNIPPET_MAX bytes of a response into out (size at least
 * NTF_SNIPPET_MAX + 1) as valid UTF-8 text without control characters
 * (replaced by ' ' or '?'), so it can be stored as text. */
void ntf_snippet_clean(const char *in, size_t len, char *out);

struct ntf_engine;

/* Borrows cfg and sched. Returns a new engine, or NULL with errstr set. */
struct ntf_engine *ntf_engine_new(const struct meter_config *cfg,
				  const struct ntf_schedule *sched, char *errstr,
				  size_t errstr_size);
void ntf_engine_destroy(struct ntf_engine *e);
/* After a reload changed cfg (read through the engine's pointer): apply
 * what the engine copied at creation (the connection cap = concurrency). */
void ntf_engine_reconfigure(struct ntf_engine *e);

int ntf_engine_inflight(const struct ntf_engine *e);
/* Deliveries that can start now (concurrency minus in flight). */
int ntf_engine_free_slots(const struct ntf_engine *e);

/* Start delivering a note; steals it. A note that cannot even start (bad
 * secret, bad address) produces its result at once. */
void ntf_engine_start(struct ntf_engine *e, struct ntf_note *note);

/* Wait up to timeout_ms for transfer activity or for one of the extra
 * descriptors (fds[i] >= 0) to become readable (ready[i] set to 1), then
 * move the transfers on. Finished deliveries become results. */
void ntf_engine_run(struct ntf_engine *e, const int *fds, int *ready, int nfds, int timeout_ms);

/* Stop every transfer in flight: each becomes an NTF_INTERRUPTED result. */
void ntf_engine_abort_all(struct ntf_engine *e);

/* The oldest result not yet recorded (borrowed), or NULL; pop it once it
 * is recorded. */
const struct ntf_result *ntf_engine_peek_result(const struct ntf_engine *e);
void ntf_engine_pop_result(struct ntf_engine *e);
int ntf_engine_results(const struct ntf_engine *e);

/* Metrics (stats.c): no-ops until ntf_metrics_init(r) registers them.
 * meter_notifications_{sent,failed,dead,disabled}_total{channel}: failed
 * counts every failed attempt, including the last one of a dead
 * notification; meter_db_errors_total. */
struct mx_registry;
void ntf_metrics_init(struct mx_registry *r);
void ntf_metrics_outcome(int is_webhook, enum ntf_outcome o);
void ntf_metrics_db_error(void);

#endif
