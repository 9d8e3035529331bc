/* job.h - one delivery in flight: shared by engine.c (which owns the multi
 * handle and the job list) and the channel files that set a job's easy
 * handle up (webhook.c, email.c). Internal to notifier/. */
#ifndef METER_NOTIFIER_JOB_H
#define METER_NOTIFIER_JOB_H

#include <curl/curl.h>

#include "notifier.h"

struct ntf_job {
	struct ntf_note *note;        /* owned */
	CURL *easy;
	struct curl_slist *headers;   /* webhook request headers */
	struct curl_slist *rcpt;      /* email recipients */
	struct buf upload;            /* email message */
	size_t upload_off;            /* bytes of upload already read by libcurl */
	struct buf resp;              /* the first bytes of the answer (capped) */
	int resp_full;                /* the cap was reached: the transfer was cut */
	int allow_private;            /* METER_WEBHOOK_ALLOW_PRIVATE */
	char refused[200];            /* set when the guard refused an address */
	char errbuf[CURL_ERROR_SIZE];
	int64_t started_us;           /* wall clock */
	int64_t started_ms;           /* monotonic */
	struct ntf_job *next;
};

/* Set up j->easy (already created) for the note's channel: URL, headers or
 * envelope, body, timeouts, callbacks. 0, or -1 with errstr set: the
 * attempt fails without a transfer. */
int ntf_webhook_setup(struct ntf_job *j, const struct meter_config *cfg, char *errstr,
		      size_t errstr_size);
int ntf_email_setup(struct ntf_job *j, const struct meter_config *cfg, char *errstr,
		    size_t errstr_size);

#endif
