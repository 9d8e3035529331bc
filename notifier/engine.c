/* engine.c - deliveries in flight on one libcurl multi handle, and what
 * each finished one means: delivered, retry later (when), dead, disabled.
 * The caller's loop (main.c) polls the engine together with its own
 * descriptors (the PostgreSQL socket for NOTIFY, the signal pipe), so one
 * thread drives everything without blocking on any single transfer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "job.h"
#include "log.h"
#include "notifier.h"

struct res_node {
	struct ntf_result r;
	struct res_node *next;
};

struct ntf_engine {
	const struct meter_config *cfg;
	const struct ntf_schedule *sched;
	CURLM *multi;
	struct ntf_job *jobs;
	int inflight;
	struct res_node *head, *tail;
	int nres;
	uint64_t rng;
};

enum ntf_outcome ntf_http_outcome(long status)
{
	if (status >= 200 && status <= 299)
		return NTF_DELIVERED;
	if (status == 410)
		return NTF_DISABLED;
	/* 3xx (not followed), 4xx and 5xx: retried. Standard Webhooks asks
	 * receivers to answer 2xx and treats everything but 410 as a failure
	 * to retry; a 400/401/404 is often a misdeployed endpoint or a rotated
	 * secret that the tenant fixes within the schedule's day and a half. */
	return NTF_RETRY;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned int min;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		min = 0x80;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		min = 0x800;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	unsigned int cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void ntf_snippet_clean(const char *in, size_t len, char *out)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	if (len > NTF_SNIPPET_MAX)
		len = NTF_SNIPPET_MAX;
	for (size_t i = 0; i < len;) {
		if (s[i] < 0x20 || s[i] == 0x7f) {
			out[o++] = ' ';
			i++;
			continue;
		}
		size_t l = utf8_seq(s + i, len - i);
		if (l == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, l);
		o += l;
		i += l;
	}
	out[o] = '\0';
}

static uint32_t next_rand(struct ntf_engine *e)
{
	/* xorshift64*: jitter only, nothing secret depends on it. */
	e->rng ^= e->rng >> 12;
	e->rng ^= e->rng << 25;
	e->rng ^= e->rng >> 27;
	return (uint32_t)((e->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

struct ntf_engine *ntf_engine_new(const struct meter_config *cfg,
				  const struct ntf_schedule *sched, char *errstr,
				  size_t errstr_size)
{
	struct ntf_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	e->cfg = cfg;
	e->sched = sched;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e->rng = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 40);
	if (!e->rng)
		e->rng = 88172645463325252ULL;
	e->multi = curl_multi_init();
	if (!e->multi) {
		snprintf(errstr, errstr_size, "curl_multi_init failed");
		ntf_engine_destroy(e);
		return NULL;
	}
	curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)cfg->notify_concurrency);
	return e;
}

void ntf_engine_reconfigure(struct ntf_engine *e)
{
	curl_multi_setopt(e->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)e->cfg->notify_concurrency);
}

static void job_free(struct ntf_engine *e, struct ntf_job *j)
{
	if (!j)
		return;
	if (j->easy) {
		curl_multi_remove_handle(e->multi, j->easy);
		curl_easy_cleanup(j->easy);
	}
	curl_slist_free_all(j->headers);
	curl_slist_free_all(j->rcpt);
	buf_free(&j->upload);
	buf_free(&j->resp);
	ntf_note_free(j->note);
	free(j);
}

void ntf_engine_destroy(struct ntf_engine *e)
{
	if (!e)
		return;
	while (e->jobs) {
		struct ntf_job *j = e->jobs;
		e->jobs = j->next;
		job_free(e, j);
	}
	while (e->head) {
		struct res_node *n = e->head;
		e->head = n->next;
		free(n);
	}
	if (e->multi)
		curl_multi_cleanup(e->multi);
	free(e);
}

int ntf_engine_inflight(const struct ntf_engine *e)
{
	return e->inflight;
}

int ntf_engine_free_slots(const struct ntf_engine *e)
{
	int64_t free_slots = e->cfg->notify_concurrency - e->inflight;
	return free_slots > 0 ? (int)free_slots : 0;
}

int ntf_engine_results(const struct ntf_engine *e)
{
	return e->nres;
}

const struct ntf_result *ntf_engine_peek_result(const struct ntf_engine *e)
{
	return e->head ? &e->head->r : NULL;
}

void ntf_engine_pop_result(struct ntf_engine *e)
{
	struct res_node *n = e->head;
	if (!n)
		return;
	e->head = n->next;
	if (!e->head)
		e->tail = NULL;
	e->nres--;
	free(n);
}

static int64_t wall_us(void)
{
	/* The real time (not the test clock of clock.h): attempts happen now. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Replace every occurrence of secret in s by "***". */
static void scrub(char *s, const char *secret)
{
	size_t n = secret ? strlen(secret) : 0;
	if (n < 4)
		return;
	char *p;
	while ((p = strstr(s, secret)) != NULL) {
		memmove(p + 3, p + n, strlen(p + n) + 1);
		memcpy(p, "***", 3);
	}
}

static void fmt_delay(int64_t ms, char *out, size_t out_size)
{
	if (ms < 10000)
		snprintf(out, out_size, "%.1fs", (double)ms / 1000);
	else if (ms < 3600000)
		snprintf(out, out_size, "%lldm%02llds", (long long)(ms / 60000),
			 (long long)(ms / 1000 % 60));
	else
		snprintf(out, out_size, "%lldh%02lldm", (long long)(ms / 3600000),
			 (long long)(ms / 60000 % 60));
}

/* Where a note goes, for logs: the webhook's origin only (paths and
 * queries can hold tokens), the email's domain only. */
static void where(const struct ntf_note *n, char *out, size_t out_size)
{
	if (n->is_webhook) {
		ntf_url_origin(n->target, out, out_size);
	} else {
		const char *at = strrchr(n->target, '@');
		snprintf(out, out_size, "*@%s", at ? at + 1 : "?");
	}
}

/* Turn a failed or finished attempt into a result and queue it. retry_after
 * is the receiver's wish in ms (-1: none). */
static void complete(struct ntf_engine *e, const struct ntf_note *n, int64_t started_us,
		     int64_t started_ms, enum ntf_outcome outcome, long status,
		     int64_t retry_after, const char *error, const char *snippet, size_t snip_len)
{
	struct res_node *node = calloc(1, sizeof(*node));
	if (!node) {
		/* Not recorded: the lease ends and the row is delivered again. */
		log_errorx("out of memory recording the outcome of notification %lld",
			   (long long)n->id);
		return;
	}
	struct ntf_result *r = &node->r;
	r->id = n->id;
	r->attempt = n->attempt;
	snprintf(r->msg_id, sizeof(r->msg_id), "%s", n->f.msg_id);
	r->started_us = started_us;
	r->duration_ms = clock_mono_ms() - started_ms;
	r->status = status;
	r->record_attempt = 1;
	r->outcome = outcome;
	snprintf(r->error, sizeof(r->error), "%s", error ? error : "");
	scrub(r->error, n->secret);
	scrub(r->error, e->cfg->smtp_password);
	if (snippet && snip_len)
		ntf_snippet_clean(snippet, snip_len, r->snippet);

	char dest[300], delay[32];
	where(n, dest, sizeof(dest));
	const char *ch = n->is_webhook ? "webhook" : "email";
	int total = e->sched->n + 1;
	char which[64];
	if (n->attempt <= total)
		snprintf(which, sizeof(which), "attempt %d of %d", n->attempt, total);
	else /* an operator re-queued a dead row */
		snprintf(which, sizeof(which), "attempt %d, an operator's retry", n->attempt);
	if (outcome == NTF_RETRY) {
		int64_t d;
		if (ntf_retry_delay(e->sched, n->attempt, retry_after, next_rand(e), &d) == 0) {
			r->retry_ms = d;
		} else {
			r->outcome = NTF_DEAD;
		}
	}
	ntf_metrics_outcome(n->is_webhook, r->outcome);
	switch (r->outcome) {
	case NTF_DELIVERED:
		log_info("%s %s delivered to %s (tenant %s, %s %s %s%%) in %lld ms, attempt %d%s",
			 ch, n->f.msg_id, dest, n->f.tenant_id, n->f.metric, n->f.period,
			 n->f.threshold, (long long)r->duration_ms, n->attempt,
			 n->is_webhook ? "" : " (accepted by the SMTP server)");
		break;
	case NTF_RETRY:
		fmt_delay(r->retry_ms, delay, sizeof(delay));
		log_warnx("%s %s to %s (tenant %s) failed, %s: %s; next attempt in %s", ch,
			  n->f.msg_id, dest, n->f.tenant_id, which, r->error, delay);
		break;
	case NTF_DEAD:
		log_errorx("%s %s to %s (tenant %s) failed on its last attempt (%s): %s; marked "
			   "dead (meterctl notifications retry %lld)",
			   ch, n->f.msg_id, dest, n->f.tenant_id, which, r->error, (long long)n->id);
		break;
	case NTF_DISABLED:
		log_warnx("%s %s to %s (tenant %s) not delivered: %s", ch, n->f.msg_id, dest,
			  n->f.tenant_id, r->error);
		break;
	case NTF_INTERRUPTED:
		log_warnx("%s %s to %s (tenant %s) interrupted by shutdown; due again now", ch,
			  n->f.msg_id, dest, n->f.tenant_id);
		break;
	}
	if (e->tail)
		e->tail->next = node;
	else
		e->head = node;
	e->tail = node;
	e->nres++;
}

void ntf_engine_start(struct ntf_engine *e, struct ntf_note *note)
{
	char err[512];
	int64_t started_us = wall_us(), started_ms = clock_mono_ms();
	if (note->is_webhook && note->tenant_disabled) {
		complete(e, note, started_us, started_ms, NTF_DISABLED, 0, -1,
			 "not sent: the tenant's webhook is disabled (its endpoint answered 410 "
			 "Gone); set the URL again with meterctl tenant set",
			 NULL, 0);
		ntf_note_free(note);
		return;
	}
	struct ntf_job *j = calloc(1, sizeof(*j));
	if (!j) {
		complete(e, note, started_us, started_ms, NTF_RETRY, 0, -1, "out of memory", NULL,
			 0);
		ntf_note_free(note);
		return;
	}
	j->note = note;
	note = NULL; /* now owned by the job */
	j->allow_private = e->cfg->webhook_allow_private;
	j->started_us = started_us;
	j->started_ms = started_ms;
	buf_init(&j->upload, 0);
	buf_init(&j->resp, NTF_SNIPPET_MAX);
	j->easy = curl_easy_init();
	if (!j->easy) {
		snprintf(err, sizeof(err), "curl_easy_init failed");
		goto fail;
	}
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
	int rc = j->note->is_webhook ? ntf_webhook_setup(j, e->cfg, err, sizeof(err))
				     : ntf_email_setup(j, e->cfg, err, sizeof(err));
	if (rc != 0)
		goto fail;
	if (curl_multi_add_handle(e->multi, j->easy) != CURLM_OK) {
		snprintf(err, sizeof(err), "curl_multi_add_handle failed");
		goto fail;
	}
	j->next = e->jobs;
	e->jobs = j;
	e->inflight++;
	return;
fail:
	complete(e, j->note, started_us, started_ms, NTF_RETRY, 0, -1, err, NULL, 0);
	if (j->easy) {
		curl_easy_cleanup(j->easy);
		j->easy = NULL;
	}
	job_free(e, j);
}

/* A transfer ended with rc: what it means. */
static void finish(struct ntf_engine *e, struct ntf_job *j, CURLcode rc)
{
	const struct ntf_note *n = j->note;
	long code = 0;
	char err[512] = "";
	int64_t retry_after = -1;
	enum ntf_outcome out = NTF_RETRY;
	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	if (n->is_webhook) {
		int answered = code > 0 && (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && j->resp_full));
		if (answered) {
			out = ntf_http_outcome(code);
			if (out == NTF_DISABLED)
				snprintf(err, sizeof(err), "HTTP 410 Gone: the endpoint is disabled");
			else if (out == NTF_RETRY)
				snprintf(err, sizeof(err), "HTTP %ld%s", code,
					 code >= 300 && code < 400 ? " (redirects are not followed)"
								   : "");
			struct curl_header *h = NULL;
			if (out == NTF_RETRY &&
			    curl_easy_header(j->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) ==
				    CURLHE_OK &&
			    h && ntf_retry_after_parse(h->value, time(NULL), &retry_after) != 0)
				retry_after = -1;
		} else if (j->refused[0] && (rc == CURLE_COULDNT_CONNECT ||
					     rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_OPERATION_TIMEDOUT)) {
			snprintf(err, sizeof(err), "%s", j->refused);
			code = 0;
		} else if (rc == CURLE_OPERATION_TIMEDOUT) {
			snprintf(err, sizeof(err), "timed out after %lld ms: %s",
				 (long long)e->cfg->webhook_timeout_ms,
				 j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
			code = 0;
		} else {
			snprintf(err, sizeof(err), "%s: %s", curl_easy_strerror(rc),
				 j->errbuf[0] ? j->errbuf : "no detail");
			code = 0;
		}
	} else {
		if (rc == CURLE_OK) {
			out = NTF_DELIVERED;
		} else {
			if (code > 0)
				snprintf(err, sizeof(err), "SMTP reply %ld: %s%s%s", code,
					 curl_easy_strerror(rc), j->errbuf[0] ? ": " : "", j->errbuf);
			else
				snprintf(err, sizeof(err), "SMTP: %s%s%s", curl_easy_strerror(rc),
					 j->errbuf[0] ? ": " : "", j->errbuf);
		}
	}
	complete(e, n, j->started_us, j->started_ms, out, code, retry_after, err, j->resp.data,
		 j->resp.len);
}

static void unlink_job(struct ntf_engine *e, struct ntf_job *j)
{
	for (struct ntf_job **p = &e->jobs; *p; p = &(*p)->next) {
		if (*p == j) {
			*p = j->next;
			e->inflight--;
			return;
		}
	}
}

void ntf_engine_run(struct ntf_engine *e, const int *fds, int *ready, int nfds, int timeout_ms)
{
	struct curl_waitfd w[8];
	int map[8];
	unsigned int nw = 0;
	for (int i = 0; i < nfds && i < 8; i++) {
		ready[i] = 0;
		if (fds[i] < 0)
			continue;
		w[nw].fd = fds[i];
		w[nw].events = CURL_WAIT_POLLIN;
		w[nw].revents = 0;
		map[nw++] = i;
	}
	int numfds = 0;
	if (timeout_ms < 0)
		timeout_ms = 0;
	curl_multi_poll(e->multi, w, nw, timeout_ms, &numfds);
	for (unsigned int k = 0; k < nw; k++)
		if (w[k].revents & (CURL_WAIT_POLLIN | CURL_WAIT_POLLPRI))
			ready[map[k]] = 1;
	int running = 0;
	curl_multi_perform(e->multi, &running);
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(e->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
		struct ntf_job *j = (struct ntf_job *)(void *)priv;
		CURLcode rc = m->data.result; /* m is invalid after remove_handle */
		if (!j)
			continue;
		finish(e, j, rc);
		unlink_job(e, j);
		job_free(e, j);
	}
}

void ntf_engine_abort_all(struct ntf_engine *e)
{
	while (e->jobs) {
		struct ntf_job *j = e->jobs;
		complete(e, j->note, j->started_us, j->started_ms, NTF_INTERRUPTED, 0, -1,
			 "interrupted: the notifier stopped before the answer", NULL, 0);
		unlink_job(e, j);
		job_free(e, j);
	}
}
