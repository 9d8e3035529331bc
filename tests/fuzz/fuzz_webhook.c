/* fuzz_webhook.c - libFuzzer harness for what the notifier reads from the
 * outside: webhook responses, and the texts it turns into requests.
 *
 * The first byte picks what the rest is:
 *   0: the raw bytes a webhook receiver answers. A server thread of this
 *      harness (127.0.0.1, a random port) reads the notifier's signed POST
 *      and sends them back; the real delivery engine (notifier/engine.c,
 *      libcurl multi, notifier/webhook.c) turns the answer into an outcome,
 *      exactly as meter-notifier does (status, Retry-After header, body
 *      snippet, a cut answer). Checked: the outcome is one a delivery can
 *      have and agrees with the status; a retry waits what the schedule and
 *      any Retry-After allow; the stored snippet is at most 512 bytes of
 *      valid UTF-8 without control characters; errors never hold the secret.
 *   1: a Retry-After header value (ntf_retry_after_parse) for two "now"s,
 *      and an HTTP-date made from the input's bytes that must parse back to
 *      the instant it names; a snippet (ntf_snippet_clean: idempotent).
 *   2: a tenant's webhook secret, URL and email address (ntf_secret_decode,
 *      ntf_sign, ntf_url_origin: never the userinfo, path or query,
 *      ntf_mailbox_address), and the threshold email built from fields of
 *      the input (ntf_email_build: CRLF only, no bare CR or LF that could
 *      smuggle SMTP commands, and only the headers it means to write).
 * Built and run by tests/fuzz/run.sh (sources in fuzz_webhook.srcs).
 */
#define _GNU_SOURCE /* strcasestr */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "notifier.h"

#define CHECK(c)                                                                             \
	do {                                                                                 \
		if (!(c)) {                                                                  \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", #c, __FILE__,      \
				__LINE__);                                                   \
			abort();                                                             \
		}                                                                            \
	} while (0)

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SECRET_B64 "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MAX_RESPONSE 65536

/* ---- the receiver thread ---------------------------------------------------- */

static int listen_fd = -1;
static int port;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned char response[MAX_RESPONSE];
static size_t response_len;

/* Read the request: headers, then Content-Length bytes of body. */
static void read_request(int fd)
{
	char buf[8192];
	size_t have = 0;
	long body = -1;
	for (;;) {
		ssize_t r = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
		if (r <= 0)
			return;
		have += (size_t)r;
		buf[have] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (end && body < 0) {
			char *cl = strcasestr(buf, "\r\nContent-Length:");
			body = cl ? strtol(cl + 17, NULL, 10) : 0;
		}
		if (end && (size_t)(end + 4 - buf) + (size_t)body <= have)
			return;
		if (have >= sizeof(buf) - 1)
			have = 0; /* a body larger than the buffer: keep draining */
	}
}

static void *serve(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept(listen_fd, NULL, NULL);
		if (fd < 0)
			continue;
		struct timeval tv = {.tv_sec = 2};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		read_request(fd);
		pthread_mutex_lock(&mu);
		size_t off = 0;
		while (off < response_len) {
			ssize_t w = send(fd, response + off, response_len - off, MSG_NOSIGNAL);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		pthread_mutex_unlock(&mu);
		shutdown(fd, SHUT_WR);
		close(fd);
	}
	return NULL;
}

static struct meter_config cfg;
static struct ntf_schedule sched;
static struct ntf_engine *engine;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	char err[256];
	log_init("fuzz_webhook", 0, LOG_LVL_ERROR);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(listen_fd, 16) != 0 || getsockname(listen_fd, (struct sockaddr *)&a, &len) != 0) {
		perror("fuzz_webhook: listen");
		abort();
	}
	port = ntohs(a.sin_port);
	pthread_t t;
	if (pthread_create(&t, NULL, serve, NULL) != 0)
		abort();
	pthread_detach(t);
	cfg.webhook_allow_private = 1;
	cfg.webhook_timeout_ms = 3000;
	cfg.smtp_timeout_ms = 3000;
	cfg.notify_concurrency = 4;
	if (ntf_schedule_parse("1s,2s", &sched, err, sizeof(err)) != 0 ||
	    !(engine = ntf_engine_new(&cfg, &sched, err, sizeof(err)))) {
		fprintf(stderr, "fuzz_webhook: %s\n", err);
		abort();
	}
	return 0;
}

/* ---- checks shared by the modes -------------------------------------------------- */

/* Valid UTF-8 without C0 controls or DEL. */
static int clean_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		size_t n = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : *p >= 0xc2 ? 2 : 0;
		if (n == 0)
			return 0;
		unsigned cp = n == 1 ? *p : *p & (0x7f >> n);
		for (size_t i = 1; i < n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n;
	}
	return 1;
}

/* ---- mode 0: a webhook answer through the engine ---------------------------------- */

/* A note as store.c makes it: strings in one allocation owned by the note. */
static struct ntf_note *make_note(void)
{
	static const char *const vals[] = {
		"msg_4c276a57", "acme", "tenant", "", "requests", "day", "2026-11-23", "90",
		"50", "46", "4", "92.00", "2026-11-24 03:00", "2026-11-24 00:00",
		"America/Argentina/Buenos_Aires"};
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook?x=1", port);
	const char *payload = "{\"type\":\"usage.threshold_reached\",\"id\":\"msg_4c276a57\"}";
	size_t total = strlen(url) + strlen(payload) + strlen(SECRET) + 3;
	for (size_t i = 0; i < 15; i++)
		total += strlen(vals[i]) + 1;
	struct ntf_note *n = calloc(1, sizeof(*n));
	char *p = n ? malloc(total) : NULL;
	if (!p) {
		free(n);
		return NULL;
	}
	n->strings = p;
	n->strings_len = total;
#define PUT(dst, s)                                                                          \
	do {                                                                                 \
		size_t l_ = strlen(s) + 1;                                                   \
		memcpy(p, s, l_);                                                            \
		dst = p;                                                                     \
		p += l_;                                                                     \
	} while (0)
	PUT(n->target, url);
	PUT(n->payload, payload);
	PUT(n->secret, SECRET);
	const char **f[] = {&n->f.msg_id,    &n->f.tenant_id,    &n->f.subject_type,
			    &n->f.subject_id, &n->f.metric,      &n->f.period,
			    &n->f.period_start, &n->f.threshold, &n->f.limit,
			    &n->f.used,      &n->f.remaining,    &n->f.percent,
			    &n->f.resets_utc, &n->f.resets_local, &n->f.tz};
	for (size_t i = 0; i < 15; i++)
		PUT(*f[i], vals[i]);
#undef PUT
	n->id = 42;
	n->attempt = 1;
	n->is_webhook = 1;
	return n;
}

static void fuzz_response(const uint8_t *data, size_t size)
{
	if (size > MAX_RESPONSE)
		size = MAX_RESPONSE;
	pthread_mutex_lock(&mu);
	memcpy(response, data, size);
	response_len = size;
	pthread_mutex_unlock(&mu);

	struct ntf_note *n = make_note();
	if (!n)
		return;
	ntf_engine_start(engine, n); /* stolen */
	for (int i = 0; i < 200 && ntf_engine_results(engine) == 0; i++)
		ntf_engine_run(engine, NULL, NULL, 0, 50);
	CHECK(ntf_engine_results(engine) == 1); /* the timeout ends every transfer */
	CHECK(ntf_engine_inflight(engine) == 0);
	const struct ntf_result *r = ntf_engine_peek_result(engine);
	CHECK(r->id == 42 && r->attempt == 1 && r->record_attempt);
	CHECK(!strcmp(r->msg_id, "msg_4c276a57"));
	CHECK(memchr(r->error, '\0', sizeof(r->error)) != NULL);
	CHECK(strstr(r->error, SECRET_B64) == NULL);
	CHECK(memchr(r->snippet, '\0', sizeof(r->snippet)) != NULL);
	CHECK(strlen(r->snippet) <= NTF_SNIPPET_MAX);
	CHECK(clean_text(r->snippet));
	CHECK(r->duration_ms >= 0);
	switch (r->outcome) {
	case NTF_DELIVERED:
		CHECK(r->status >= 200 && r->status <= 299);
		CHECK(r->error[0] == '\0');
		break;
	case NTF_DISABLED:
		CHECK(r->status == 410);
		break;
	case NTF_RETRY:
		/* First attempt of "1s,2s": 0.8 s .. 1.2 s, or a Retry-After (at
		 * most 24 h); never for a 2xx. */
		CHECK(r->retry_ms >= 800);
		CHECK(r->retry_ms <= 1200 || r->retry_ms <= NTF_RETRY_AFTER_MAX_MS);
		CHECK(r->retry_ms % 1000 == 0 || r->retry_ms <= 1200);
		CHECK(!(r->status >= 200 && r->status <= 299));
		CHECK(r->status != 410);
		CHECK(r->error[0] != '\0');
		break;
	default:
		CHECK(!"an outcome a first attempt cannot have");
	}
	ntf_engine_pop_result(engine);
}

/* ---- mode 1: Retry-After and snippets -------------------------------------------------- */

static void fuzz_retry_after(const uint8_t *data, size_t size)
{
	char *v = malloc(size + 1);
	if (!v)
		return;
	memcpy(v, data, size);
	v[size] = '\0';
	static const time_t nows[] = {1795000000, 0};
	for (size_t k = 0; k < 2; k++) {
		int64_t d = -7;
		if (ntf_retry_after_parse(v, nows[k], &d) == 0) {
			CHECK(d >= 0 && d <= NTF_RETRY_AFTER_MAX_MS && d % 1000 == 0);
		} else {
			CHECK(d == -7); /* untouched */
		}
	}
	/* delta-seconds: digits (with spaces around) mean that many seconds. */
	size_t lead = strspn(v, " \t"), nd = strspn(v + lead, "0123456789");
	if (nd > 0 && nd <= 9 && v[lead + nd + strspn(v + lead + nd, " \t\r\n")] == '\0') {
		int64_t d = -1;
		CHECK(ntf_retry_after_parse(v, nows[0], &d) == 0);
		int64_t secs = 0;
		for (size_t i = 0; i < nd; i++)
			secs = secs * 10 + (v[lead + i] - '0');
		CHECK(d == (secs > 86400 ? 86400 : secs) * 1000);
	}
	/* An IMF-fixdate of an instant from the input: parses to that instant. */
	if (size >= 4) {
		uint32_t u;
		memcpy(&u, data, 4);
		time_t at = (time_t)(u % 4102444800u); /* 1970 .. 2100 */
		struct tm tm;
		char date[64];
		gmtime_r(&at, &tm);
		strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
		int64_t d = -1, want = (int64_t)at - (int64_t)nows[0];
		if (want < 0)
			want = 0;
		if (want > 86400)
			want = 86400;
		CHECK(ntf_retry_after_parse(date, nows[0], &d) == 0);
		CHECK(d == want * 1000);
	}
	/* Snippets: clean, bounded, and cleaning twice changes nothing. */
	char out[NTF_SNIPPET_MAX + 1], again[NTF_SNIPPET_MAX + 1];
	ntf_snippet_clean((const char *)data, size, out);
	CHECK(strlen(out) <= (size < NTF_SNIPPET_MAX ? size : NTF_SNIPPET_MAX));
	CHECK(clean_text(out));
	ntf_snippet_clean(out, strlen(out), again);
	CHECK(!strcmp(out, again));
	free(v);
}

/* ---- mode 2: secrets, URLs, addresses, the email ---------------------------------------- */

/* Up to n NUL-separated strings from the input into s[] (pointing into copy). */
static size_t split(char *copy, size_t size, const char **s, size_t n)
{
	size_t k = 0;
	for (char *p = copy; p <= copy + size && k < n; p += strlen(p) + 1)
		s[k++] = p;
	return k;
}

static void check_email(const char *m, size_t len)
{
	static const char *const allowed[] = {
		"From:", "To:", "Subject:", "Date:", "Message-ID:", "MIME-Version:",
		"Auto-Submitted:", "X-Meter-Notification-Id:", "X-Meter-Tenant:", "Content-Type:"};
	/* Every LF ends a CRLF, every CR starts one: no bare line ends. */
	for (size_t i = 0; i < len; i++) {
		if (m[i] == '\n')
			CHECK(i > 0 && m[i - 1] == '\r');
		if (m[i] == '\r')
			CHECK(i + 1 < len && m[i + 1] == '\n');
		CHECK(m[i] != '\0');
	}
	/* The header block: only the headers the notifier writes, each once. */
	int seen[sizeof(allowed) / sizeof(allowed[0])] = {0};
	const char *p = m, *end = m + len;
	while (p < end) {
		const char *eol = strstr(p, "\r\n");
		CHECK(eol != NULL);
		if (eol == p)
			break; /* the blank line */
		size_t k = 0;
		for (; k < sizeof(allowed) / sizeof(allowed[0]); k++)
			if (!strncmp(p, allowed[k], strlen(allowed[k])))
				break;
		CHECK(k < sizeof(allowed) / sizeof(allowed[0]));
		CHECK(seen[k]++ == 0);
		p = eol + 2;
	}
	CHECK(seen[0] && seen[1] && seen[2] && seen[4]);
}

static void fuzz_texts(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 1);
	if (!copy)
		return;
	memcpy(copy, data, size);
	copy[size] = '\0';
	const char *s[20] = {0};
	size_t n = split(copy, size, s, 20);
	static const char *const dflt[] = {
		"msg_1", "acme", "tenant", "", "requests", "day", "2026-11-23", "80", "50", "40",
		"10", "80.00", "", "", "UTC", "Meter <meter@example.com>", "ops@example.com"};
	for (size_t i = n; i < 17; i++)
		s[i] = dflt[i];

	/* The secret: decodes to 1..256 bytes, signs, and re-encoding the key
	 * decodes to the same bytes. */
	unsigned char key[300];
	size_t key_len = 0;
	char sig[128], err[512];
	if (ntf_secret_decode(s[0], key, sizeof(key), &key_len) == 0) {
		CHECK(key_len >= 1 && key_len <= 256);
		CHECK(ntf_sign(s[0], "msg_1", 1795000000, s[1], strlen(s[1]), sig, sizeof(sig), err,
			       sizeof(err)) == 0);
		CHECK(!strncmp(sig, "v1,", 3) && strlen(sig) == 47);
	} else {
		CHECK(ntf_sign(s[0], "msg_1", 1, "x", 1, sig, sizeof(sig), err, sizeof(err)) != 0);
		/* The message never quotes the secret (unless the "secret" is
		 * a piece of the message itself). */
		static const char msg[] = "the tenant's webhook secret is missing or not whsec_ + "
					  "base64 (set one with meterctl tenant set TENANT "
					  "--webhook-secret)";
		CHECK(strstr(err, s[0]) == NULL || strstr(msg, s[0]) != NULL);
	}

	/* A URL's origin for logs: scheme://host[:port], nothing that can
	 * hold a token. */
	char origin[300];
	ntf_url_origin(s[1], origin, sizeof(origin));
	CHECK(memchr(origin, '\0', sizeof(origin)) != NULL);
	if (strcmp(origin, "(invalid URL)") != 0) {
		const char *h = strstr(origin, "://");
		CHECK(h != NULL);
		CHECK(strpbrk(h + 3, "/?#@") == NULL);
		for (const char *q = origin; *q; q++)
			CHECK((unsigned char)*q > 0x20 && *q != 0x7f);
	}

	/* An address: at most 254 bytes, one '@' inside, no spaces or brackets. */
	char addr[300];
	if (ntf_mailbox_address(s[2], addr, sizeof(addr)) == 0) {
		size_t l = strlen(addr);
		CHECK(l >= 3 && l <= 254);
		CHECK(strchr(addr, '@') && addr[0] != '@' && addr[l - 1] != '@');
		CHECK(strpbrk(addr, " <>\r\n") == NULL);
	}

	/* The email from fields of the input. */
	struct ntf_facts f = {s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7],
			      s[8], s[9], s[10], s[11], s[12], s[13], s[14]};
	struct buf out;
	buf_init(&out, 0);
	if (ntf_email_build(&f, s[15], s[16], (time_t)1795000000, &out, err, sizeof(err)) == 0) {
		CHECK(!out.oom && out.len > 0);
		check_email(out.data, out.len);
	} else {
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	}
	buf_free(&out);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0: fuzz_response(data + 1, size - 1); break;
	case 1: fuzz_retry_after(data + 1, size - 1); break;
	case 2: fuzz_texts(data + 1, size - 1); break;
	}
	return 0;
}
