/* email.c - the threshold email: a multipart/alternative message (plain
 * text and HTML) saying what was reached, how much is left and when it
 * resets, with a Message-ID derived from the notification's msg_id (so a
 * repeat after a crash is recognisable), sent through libcurl's SMTP to the
 * address the row names, from METER_SMTP_FROM via METER_SMTP_URL. */
#include <stdio.h>
#include <string.h>

#include "job.h"
#include "notifier.h"
#include "num.h"

static int has_ctl(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

int ntf_mailbox_address(const char *mailbox, char *out, size_t out_size)
{
	if (!mailbox || has_ctl(mailbox))
		return -1;
	const char *lt = strrchr(mailbox, '<');
	const char *a = mailbox;
	size_t n;
	if (lt) {
		const char *gt = strchr(lt, '>');
		if (!gt || gt[1] != '\0')
			return -1;
		a = lt + 1;
		n = (size_t)(gt - a);
	} else {
		while (*a == ' ')
			a++;
		n = strlen(a);
		while (n && a[n - 1] == ' ')
			n--;
	}
	if (n == 0 || n >= out_size || n > 254)
		return -1;
	/* Exactly one '@' with something on both sides ("a@b@" and "@a@b" are
	 * not addresses; quoted local parts holding an '@' are not taken). */
	const char *at = memchr(a, '@', n);
	if (!at || memchr(at + 1, '@', n - (size_t)(at + 1 - a)) || at == a || at == a + n - 1 || memchr(a, ' ', n) || memchr(a, '<', n) ||
	    memchr(a, '>', n))
		return -1;
	memcpy(out, a, n);
	out[n] = '\0';
	return 0;
}

/* "1234567" -> "1,234,567" (digits only; anything else is copied as is). */
static void group_digits(const char *d, char *out, size_t out_size)
{
	size_t n = strlen(d), o = 0;
	if (n == 0 || strspn(d, "0123456789") != n) {
		snprintf(out, out_size, "%s", d);
		return;
	}
	for (size_t i = 0; i < n && o + 2 < out_size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			out[o++] = ',';
		out[o++] = d[i];
	}
	out[o] = '\0';
}

/* An amount of the metric for people: "$12.50", "1,000,000 tokens". */
static void amount(const char *metric, const char *value, char *out, size_t out_size)
{
	char g[96];
	if (strcmp(metric, "cost") == 0) {
		/* pUSD to USD with 6 decimals, trailing zeros trimmed to 2. */
		char usd[80];
		num_format_pusd(value, 6, usd, sizeof(usd));
		size_t l = strlen(usd);
		const char *dot = strchr(usd, '.');
		while (dot && l > (size_t)(dot - usd) + 3 && usd[l - 1] == '0')
			usd[--l] = '\0';
		char whole[80];
		snprintf(whole, sizeof(whole), "%.*s", dot ? (int)(dot - usd) : (int)l, usd);
		group_digits(whole, g, sizeof(g));
		snprintf(out, out_size, "$%s%s", g, dot ? dot : "");
		return;
	}
	group_digits(value, g, sizeof(g));
	int one = strcmp(value, "1") == 0;
	if (strncmp(metric, "op:", 3) == 0)
		snprintf(out, out_size, "%s %s request%s", g, metric + 3, one ? "" : "s");
	else if (strcmp(metric, "requests") == 0 || strcmp(metric, "tokens") == 0)
		snprintf(out, out_size, "%s %.*s", g, (int)strlen(metric) - one, metric);
	else
		snprintf(out, out_size, "%s %s", g, metric);
}

static const char *period_word(const char *p)
{
	if (strcmp(p, "day") == 0)
		return "daily";
	if (strcmp(p, "month") == 0)
		return "monthly";
	if (strcmp(p, "rolling30") == 0)
		return "rolling 30-day";
	return p;
}

static const char *metric_word(const char *m)
{
	return strncmp(m, "op:", 3) == 0 ? m + 3 : m;
}

static void who(const struct ntf_facts *f, char *out, size_t out_size)
{
	if (strcmp(f->subject_type, "user") == 0)
		snprintf(out, out_size, "user %s of %s", f->subject_id, f->tenant_id);
	else if (strcmp(f->subject_type, "key") == 0)
		snprintf(out, out_size, "API key %s of %s", f->subject_id, f->tenant_id);
	else
		snprintf(out, out_size, "%s", f->tenant_id);
}

/* Append s HTML-escaped. */
static void html(struct buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': buf_append(b, "&lt;", 4); break;
		case '>': buf_append(b, "&gt;", 4); break;
		case '&': buf_append(b, "&amp;", 5); break;
		case '"': buf_append(b, "&quot;", 6); break;
		case '\'': buf_append(b, "&#39;", 5); break;
		default: buf_putc(b, *s);
		}
	}
}

static void html_row(struct buf *b, const char *k, const char *v)
{
	buf_appendf(b, "<tr><td style=\"padding:2px 12px 2px 0;color:#555\">%s</td><td>", k);
	html(b, v);
	buf_appendf(b, "</td></tr>\n");
}

static void rfc5322_date(time_t t, char *out, size_t out_size)
{
	static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
	static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
					 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	struct tm tm;
	gmtime_r(&t, &tm);
	snprintf(out, out_size, "%s, %02d %s %04d %02d:%02d:%02d +0000", wd[tm.tm_wday],
		 tm.tm_mday, mo[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int ntf_email_build(const struct ntf_facts *f, const char *from, const char *to, time_t date,
		    struct buf *out, char *errstr, size_t errstr_size)
{
	char to_addr[256], from_addr[256];
	const char *fields[] = {f->msg_id,    f->tenant_id, f->subject_type, f->subject_id,
				f->metric,    f->period,    f->period_start, f->threshold,
				f->limit,     f->used,      f->remaining,    f->percent,
				f->resets_utc, f->resets_local, f->tz};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		if (!fields[i] || has_ctl(fields[i]) || strlen(fields[i]) > 200) {
			snprintf(errstr, errstr_size,
				 "notification has a missing or unprintable field (%zu)", i);
			return -1;
		}
	}
	if (ntf_mailbox_address(to, to_addr, sizeof(to_addr)) != 0) {
		snprintf(errstr, errstr_size, "email target is not a plain address");
		return -1;
	}
	if (ntf_mailbox_address(from, from_addr, sizeof(from_addr)) != 0) {
		snprintf(errstr, errstr_size,
			 "METER_SMTP_FROM is not an address (addr@example.com or Name <addr@...>)");
		return -1;
	}

	char subj[300], lim[128], used[128], rem[128], resets[320], datehdr[64];
	who(f, subj, sizeof(subj));
	amount(f->metric, f->limit, lim, sizeof(lim));
	amount(f->metric, f->used, used, sizeof(used));
	amount(f->metric, f->remaining, rem, sizeof(rem));
	int full = strcmp(f->threshold, "100") == 0;
	resets[0] = '\0';
	if (*f->resets_utc) {
		if (*f->resets_local && *f->tz && strcmp(f->tz, "UTC") != 0)
			snprintf(resets, sizeof(resets), "%s UTC (%s %s)", f->resets_utc,
				 f->resets_local, f->tz);
		else
			snprintf(resets, sizeof(resets), "%s UTC", f->resets_utc);
	}
	char headline[600];
	if (full)
		snprintf(headline, sizeof(headline), "%s has reached its %s %s limit (%s%%).", subj,
			 period_word(f->period), metric_word(f->metric), f->percent);
	else
		snprintf(headline, sizeof(headline),
			 "%s has used %s%% of its %s %s limit, past the %s%% threshold.", subj,
			 f->percent, period_word(f->period), metric_word(f->metric), f->threshold);
	const char *advice = full ? "Calls over the limit may be refused until it resets."
				  : "At 100% calls over the limit may be refused until it resets.";
	char used_of[300], period_txt[120];
	snprintf(used_of, sizeof(used_of), "%s of %s (%s%%)", used, lim, f->percent);
	snprintf(period_txt, sizeof(period_txt), "%s, from %s", period_word(f->period),
		 f->period_start);
	rfc5322_date(date, datehdr, sizeof(datehdr));

	/* Composed with LF, turned into CRLF below. */
	struct buf m;
	buf_init(&m, 0);
	buf_appendf(&m, "From: %s\n", from);
	buf_appendf(&m, "To: <%s>\n", to_addr);
	if (full)
		buf_appendf(&m, "Subject: [meterd] %s reached its %s %s limit\n", subj,
			    period_word(f->period), metric_word(f->metric));
	else
		buf_appendf(&m, "Subject: [meterd] %s reached %s%% of its %s %s limit\n", subj,
			    f->threshold, period_word(f->period), metric_word(f->metric));
	buf_appendf(&m, "Date: %s\n", datehdr);
	buf_appendf(&m, "Message-ID: <%s@meterd>\n", f->msg_id);
	buf_appendf(&m, "MIME-Version: 1.0\n");
	buf_appendf(&m, "Auto-Submitted: auto-generated\n");
	buf_appendf(&m, "X-Meter-Notification-Id: %s\n", f->msg_id);
	buf_appendf(&m, "X-Meter-Tenant: %s\n", f->tenant_id);
	buf_appendf(&m, "Content-Type: multipart/alternative; boundary=\"=_meterd_%s\"\n",
		    f->msg_id);
	buf_appendf(&m, "\nThis is a MIME message.\n\n--=_meterd_%s\n", f->msg_id);
	buf_appendf(&m, "Content-Type: text/plain; charset=utf-8\n"
			"Content-Transfer-Encoding: 8bit\n\n");
	buf_appendf(&m, "%s\n\n", headline);
	buf_appendf(&m, "  Used:       %s\n", used_of);
	buf_appendf(&m, "  Remaining:  %s\n", rem);
	buf_appendf(&m, "  Period:     %s\n", period_txt);
	if (*resets)
		buf_appendf(&m, "  Resets at:  %s\n", resets);
	buf_appendf(&m, "\n%s\n\n-- \nmeterd usage notification %s (tenant %s)\n", advice,
		    f->msg_id, f->tenant_id);

	buf_appendf(&m, "\n--=_meterd_%s\n", f->msg_id);
	buf_appendf(&m, "Content-Type: text/html; charset=utf-8\n"
			"Content-Transfer-Encoding: 8bit\n\n");
	buf_appendf(&m, "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>");
	html(&m, headline);
	buf_appendf(&m, "</p>\n<table>\n");
	html_row(&m, "Used", used_of);
	html_row(&m, "Remaining", rem);
	html_row(&m, "Period", period_txt);
	if (*resets)
		html_row(&m, "Resets at", resets);
	buf_appendf(&m, "</table>\n<p>");
	html(&m, advice);
	buf_appendf(&m, "</p>\n<p style=\"color:#888;font-size:small\">meterd usage notification ");
	html(&m, f->msg_id);
	buf_appendf(&m, " (tenant ");
	html(&m, f->tenant_id);
	buf_appendf(&m, ")</p>\n</body></html>\n");
	buf_appendf(&m, "\n--=_meterd_%s--\n", f->msg_id);

	int rc = 0;
	if (m.oom) {
		snprintf(errstr, errstr_size, "out of memory building the email");
		rc = -1;
	}
	for (size_t i = 0; rc == 0 && i < m.len; i++) {
		if (m.data[i] == '\n')
			buf_putc(out, '\r');
		buf_putc(out, m.data[i]);
	}
	if (rc == 0 && (out->oom || out->toobig)) {
		snprintf(errstr, errstr_size, "out of memory building the email");
		rc = -1;
	}
	buf_free(&m);
	return rc;
}

/* libcurl reads the message to upload from here. */
static size_t on_read(char *dst, size_t size, size_t nmemb, void *userp)
{
	struct ntf_job *j = userp;
	size_t room = size * nmemb;
	size_t left = j->upload.len - j->upload_off;
	size_t n = left < room ? left : room;
	memcpy(dst, j->upload.data + j->upload_off, n);
	j->upload_off += n;
	return n;
}

int ntf_email_setup(struct ntf_job *j, const struct meter_config *cfg, char *errstr,
		    size_t errstr_size)
{
	const struct ntf_note *n = j->note;
	char from_addr[256], to_addr[256];
	if (ntf_email_build(&n->f, cfg->smtp_from, n->target, time(NULL), &j->upload, errstr,
			    errstr_size) != 0)
		return -1;
	if (ntf_mailbox_address(cfg->smtp_from, from_addr, sizeof(from_addr)) != 0 ||
	    ntf_mailbox_address(n->target, to_addr, sizeof(to_addr)) != 0) {
		snprintf(errstr, errstr_size, "bad sender or recipient address");
		return -1;
	}
	char bracketed[260];
	snprintf(bracketed, sizeof(bracketed), "<%s>", to_addr);
	j->rcpt = curl_slist_append(NULL, bracketed);
	if (!j->rcpt) {
		snprintf(errstr, errstr_size, "out of memory");
		return -1;
	}
	snprintf(bracketed, sizeof(bracketed), "<%s>", from_addr);
	CURL *e = j->easy;
	if (curl_easy_setopt(e, CURLOPT_URL, cfg->smtp_url) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps") != CURLE_OK) {
		snprintf(errstr, errstr_size, "METER_SMTP_URL is not usable (libcurl refused it)");
		return -1;
	}
	long ssl = CURLUSESSL_TRY;
	if (strcmp(cfg->smtp_starttls, "always") == 0)
		ssl = CURLUSESSL_ALL;
	else if (strcmp(cfg->smtp_starttls, "never") == 0)
		ssl = CURLUSESSL_NONE;
	curl_easy_setopt(e, CURLOPT_USE_SSL, ssl);
	curl_easy_setopt(e, CURLOPT_MAIL_FROM, bracketed);
	curl_easy_setopt(e, CURLOPT_MAIL_RCPT, j->rcpt);
	if (cfg->smtp_user[0]) {
		curl_easy_setopt(e, CURLOPT_USERNAME, cfg->smtp_user);
		curl_easy_setopt(e, CURLOPT_PASSWORD, cfg->smtp_password);
	}
	curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(e, CURLOPT_READDATA, j);
	curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)j->upload.len);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->smtp_timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
			 cfg->smtp_timeout_ms < 10000 ? (long)cfg->smtp_timeout_ms : 10000L);
	return 0;
}
