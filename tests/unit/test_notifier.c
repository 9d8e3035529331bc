/* test_notifier.c - unit tests of meter-notifier's pure parts: the Standard
 * Webhooks signature, the retry schedule and Retry-After, the SSRF address
 * classifier, the outcome of an HTTP status, response snippets and the
 * email. No network, no database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "notifier/notifier.h"

/* ---- signature ------------------------------------------------------------ */

static void test_signature_matches_standard_webhooks_vector(void **state)
{
	(void)state;
	/* The example of the Standard Webhooks specification, checked with
	 * Python's own code path:
	 *   key = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	 *   msg = b'msg_p5jXN8AQM9LWM0D4loKWxJek.1614265330.{"test": 2432232314}'
	 *   base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest())
	 *   -> g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= */
	char sig[80], err[256];
	const char *body = "{\"test\": 2432232314}";
	assert_int_equal(ntf_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
				  "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
				  sig, sizeof(sig), err, sizeof(err)),
			 0);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	/* The prefix is optional, as in the reference libraries. */
	assert_int_equal(ntf_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
				  "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
				  sig, sizeof(sig), err, sizeof(err)),
			 0);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_signature_of_a_padded_32_byte_secret(void **state)
{
	(void)state;
	/* key = bytes(range(32)); whsec_ + base64 has one '=' of padding.
	 *   msg = b'msg_0123456789abcdef.1700000000.' + body
	 *   -> K8kFUCWD15GHlLp5NLyLDuqnoGJoPLzy+Y0smMYcmj0= (Python hmac) */
	char sig[80], err[256];
	const char *body = "{\"id\": \"msg_0123456789abcdef\", \"used\": 8, \"limit\": 10}";
	assert_int_equal(ntf_sign("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
				  "msg_0123456789abcdef", 1700000000, body, strlen(body), sig,
				  sizeof(sig), err, sizeof(err)),
			 0);
	assert_string_equal(sig, "v1,K8kFUCWD15GHlLp5NLyLDuqnoGJoPLzy+Y0smMYcmj0=");
	unsigned char key[64];
	size_t len = 0;
	assert_int_equal(ntf_secret_decode("whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
					   key, sizeof(key), &len),
			 0);
	assert_int_equal((int)len, 32);
	assert_int_equal(key[31], 31);
}

static void test_signature_refuses_bad_secrets_without_echoing_them(void **state)
{
	(void)state;
	const char *bad[] = {"whsec_", "whsec_abc", "whsec_!!!!", "whsec_=AAA", "whsec_AA=A",
			     "whsec_AAAA AAAA", ""};
	char sig[80], err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ntf_sign(bad[i], "msg_x", 1, "{}", 2, sig, sizeof(sig), err,
					  sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "secret"));
		if (strlen(bad[i]) > 6)
			assert_null(strstr(err, bad[i]));
	}
	assert_int_equal(ntf_sign(NULL, "msg_x", 1, "{}", 2, sig, sizeof(sig), err, sizeof(err)),
			 -1);
}

/* ---- retry schedule and Retry-After ---------------------------------------- */

static void test_retry_schedule_parses_the_default_and_rejects_garbage(void **state)
{
	(void)state;
	struct ntf_schedule s;
	char err[256];
	assert_int_equal(ntf_schedule_parse("5s,5m,30m,2h,5h,10h,24h", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 7);
	const int64_t want[] = {5000, 300000, 1800000, 7200000, 18000000, 36000000, 86400000};
	for (int i = 0; i < 7; i++)
		assert_true(s.delay_ms[i] == want[i]);
	assert_int_equal(ntf_schedule_parse(" 1s, 1s ,2s", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.delay_ms[2] == 2000);
	assert_int_equal(ntf_schedule_parse("", &s, err, sizeof(err)), 0);
	assert_int_equal(s.n, 0);
	/* The last three found by fuzz_config: the bad item was echoed with its
	 * newline, so the error spanned several lines. */
	const char *bad[] = {"5x", "1s,,2s", "8d", "1s,", "-1s", "1s;2s",
			     "\xff\xff\n\xff", "1s,\n,2s", "1s,2s\r\nX-Forged: yes"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(ntf_schedule_parse(bad[i], &s, err, sizeof(err)), -1);
		assert_null(strchr(err, '\n'));
		assert_null(strchr(err, '\r'));
	}
	char many[256] = "";
	for (int i = 0; i < NTF_SCHEDULE_MAX + 1; i++)
		strcat(many, i ? ",1s" : "1s");
	assert_int_equal(ntf_schedule_parse(many, &s, err, sizeof(err)), -1);
}

static void test_retry_delay_has_bounded_jitter_and_ends(void **state)
{
	(void)state;
	struct ntf_schedule s;
	char err[256];
	int64_t d;
	assert_int_equal(ntf_schedule_parse("5s,5m,30m,2h,5h,10h,24h", &s, err, sizeof(err)), 0);
	/* Jitter: rnd 0 -> -20 %, rnd max -> just under +20 %, middle -> 0. */
	assert_int_equal(ntf_retry_delay(&s, 1, -1, 0, &d), 0);
	assert_true(d == 4000);
	assert_int_equal(ntf_retry_delay(&s, 1, -1, UINT32_MAX, &d), 0);
	assert_true(d >= 5999 && d <= 6000);
	assert_int_equal(ntf_retry_delay(&s, 1, -1, 0x80000000u, &d), 0);
	assert_true(d == 5000);
	assert_int_equal(ntf_retry_delay(&s, 2, -1, 0x80000000u, &d), 0);
	assert_true(d == 300000);
	for (uint32_t r = 0; r < 4000000000u; r += 123456789u) {
		assert_int_equal(ntf_retry_delay(&s, 7, -1, r, &d), 0);
		assert_true(d >= 86400000LL * 4 / 5 && d <= 86400000LL * 6 / 5);
	}
	/* Seven retries: the eighth attempt is the last one. */
	assert_int_equal(ntf_retry_delay(&s, 8, -1, 0, &d), -1);
	assert_int_equal(ntf_retry_delay(&s, 100, -1, 0, &d), -1);
	/* No retries at all. */
	assert_int_equal(ntf_schedule_parse("", &s, err, sizeof(err)), 0);
	assert_int_equal(ntf_retry_delay(&s, 1, -1, 0, &d), -1);
}

static void test_retry_after_is_a_minimum_and_capped(void **state)
{
	(void)state;
	struct ntf_schedule s;
	char err[256];
	int64_t d;
	assert_int_equal(ntf_schedule_parse("5s,5m", &s, err, sizeof(err)), 0);
	assert_int_equal(ntf_retry_delay(&s, 1, 600000, 0x80000000u, &d), 0);
	assert_true(d == 600000); /* 10 min asked on a 5 s slot */
	assert_int_equal(ntf_retry_delay(&s, 2, 1000, 0x80000000u, &d), 0);
	assert_true(d == 300000); /* 1 s asked on a 5 min slot: the schedule wins */
	assert_int_equal(ntf_retry_delay(&s, 1, 3LL * 86400000, 0, &d), 0);
	assert_true(d == NTF_RETRY_AFTER_MAX_MS);
	/* The last attempt stays the last, whatever the receiver asks. */
	assert_int_equal(ntf_retry_delay(&s, 3, 1000, 0, &d), -1);
}

static void test_retry_after_parses_seconds_and_http_dates(void **state)
{
	(void)state;
	const time_t now = 784111740; /* 1994-11-06 08:49:00 UTC */
	static const struct {
		const char *in;
		int ok;
		int64_t ms;
	} cases[] = {
		{"120", 1, 120000},
		{"0", 1, 0},
		{" 5 ", 1, 5000},
		{"5\r\n", 1, 5000},
		{"99999999999999999999", 1, NTF_RETRY_AFTER_MAX_MS},
		{"Sun, 06 Nov 1994 08:49:37 GMT", 1, 37000},   /* IMF-fixdate */
		{"Sunday, 06-Nov-94 08:49:37 GMT", 1, 37000},  /* RFC 850 */
		{"Sun Nov  6 08:49:37 1994", 1, 37000},        /* asctime */
		{"Sun, 06 Nov 1994 09:49:00 GMT", 1, 3600000},
		{"Sat, 05 Nov 1994 08:49:37 GMT", 1, 0},       /* in the past */
		{"Fri, 06 Nov 2099 08:49:37 GMT", 1, NTF_RETRY_AFTER_MAX_MS},
		{"", 0, 0},
		{"-1", 0, 0},
		{"1.5", 0, 0},
		{"soon", 0, 0},
		{"12abc", 0, 0},
		{"Sun, 06 Nov 1994 08:49:37 PST", 0, 0},
		{"Sun, 32 Nov 1994 08:49:37 GMT", 0, 0},
		{"Sun, 06 Foo 1994 08:49:37 GMT", 0, 0},
		{"Sun, 06 Nov 1994 25:49:37 GMT", 0, 0},
		{"Sun, 06 Nov 1994 08:49:37 GMT extra", 0, 0},
		{"Sun, 6 Nov 1994 08:49:37 GMT", 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t ms = -42;
		int rc = ntf_retry_after_parse(cases[i].in, now, &ms);
		if (cases[i].ok) {
			if (rc != 0 || ms != cases[i].ms)
				fail_msg("'%s': rc %d, %lld ms (want %lld)", cases[i].in, rc,
					 (long long)ms, (long long)cases[i].ms);
		} else if (rc != -1) {
			fail_msg("'%s' should be refused", cases[i].in);
		}
	}
	int64_t ms;
	assert_int_equal(ntf_retry_after_parse(NULL, now, &ms), -1);
}

/* ---- SSRF guard ------------------------------------------------------------ */

static void test_address_classifier_table(void **state)
{
	(void)state;
	static const struct {
		const char *ip;
		enum ntf_addr_class want;
	} cases[] = {
		{"8.8.8.8", NTF_ADDR_PUBLIC},
		{"1.1.1.1", NTF_ADDR_PUBLIC},
		{"93.184.216.34", NTF_ADDR_PUBLIC},
		{"127.0.0.1", NTF_ADDR_LOOPBACK},
		{"127.255.255.254", NTF_ADDR_LOOPBACK},
		{"10.0.0.1", NTF_ADDR_PRIVATE},
		{"10.255.255.255", NTF_ADDR_PRIVATE},
		{"172.16.0.1", NTF_ADDR_PRIVATE},
		{"172.31.255.255", NTF_ADDR_PRIVATE},
		{"172.32.0.1", NTF_ADDR_PUBLIC},
		{"172.15.255.255", NTF_ADDR_PUBLIC},
		{"192.168.1.1", NTF_ADDR_PRIVATE},
		{"192.169.0.1", NTF_ADDR_PUBLIC},
		{"100.64.0.1", NTF_ADDR_SHARED},
		{"100.127.255.255", NTF_ADDR_SHARED},
		{"100.128.0.1", NTF_ADDR_PUBLIC},
		{"169.254.169.254", NTF_ADDR_METADATA},
		{"169.254.170.2", NTF_ADDR_METADATA},
		{"100.100.100.200", NTF_ADDR_METADATA},
		{"169.254.1.1", NTF_ADDR_LINK_LOCAL},
		{"0.0.0.0", NTF_ADDR_UNSPECIFIED},
		{"0.1.2.3", NTF_ADDR_UNSPECIFIED},
		{"224.0.0.1", NTF_ADDR_MULTICAST},
		{"239.255.255.250", NTF_ADDR_MULTICAST},
		{"255.255.255.255", NTF_ADDR_RESERVED},
		{"240.0.0.1", NTF_ADDR_RESERVED},
		{"192.0.2.1", NTF_ADDR_RESERVED},
		{"198.18.0.1", NTF_ADDR_RESERVED},
		{"192.0.0.192", NTF_ADDR_RESERVED},
		{"::", NTF_ADDR_UNSPECIFIED},
		{"::1", NTF_ADDR_LOOPBACK},
		{"fe80::1", NTF_ADDR_LINK_LOCAL},
		{"febf::1", NTF_ADDR_LINK_LOCAL},
		{"fec0::1", NTF_ADDR_PRIVATE},
		{"fc00::1", NTF_ADDR_UNIQUE_LOCAL},
		{"fd12:3456::1", NTF_ADDR_UNIQUE_LOCAL},
		{"fd00:ec2::254", NTF_ADDR_UNIQUE_LOCAL}, /* AWS IMDS over IPv6 */
		{"ff02::1", NTF_ADDR_MULTICAST},
		{"::ffff:127.0.0.1", NTF_ADDR_LOOPBACK},
		{"::ffff:7f00:1", NTF_ADDR_LOOPBACK},
		{"::ffff:169.254.169.254", NTF_ADDR_METADATA},
		{"::ffff:10.0.0.1", NTF_ADDR_PRIVATE},
		{"::ffff:0.0.0.0", NTF_ADDR_UNSPECIFIED},
		{"::ffff:8.8.8.8", NTF_ADDR_PUBLIC},
		{"::127.0.0.1", NTF_ADDR_LOOPBACK}, /* IPv4-compatible */
		{"64:ff9b::a9fe:a9fe", NTF_ADDR_METADATA}, /* NAT64 of 169.254.169.254 */
		{"64:ff9b::808:808", NTF_ADDR_PUBLIC},
		{"2002:7f00:1::", NTF_ADDR_LOOPBACK}, /* 6to4 of 127.0.0.1 */
		{"2002:c0a8:101::1", NTF_ADDR_PRIVATE},
		{"2001:db8::1", NTF_ADDR_RESERVED},
		{"100::1", NTF_ADDR_RESERVED},
		{"2606:4700:4700::1111", NTF_ADDR_PUBLIC},
		{"2001:4860:4860::8888", NTF_ADDR_PUBLIC},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum ntf_addr_class c = NTF_ADDR_PUBLIC;
		if (ntf_addr_classify_text(cases[i].ip, &c) != 0)
			fail_msg("'%s' did not parse", cases[i].ip);
		if (c != cases[i].want)
			fail_msg("%s: %s, want %s", cases[i].ip, ntf_addr_class_name(c),
				 ntf_addr_class_name(cases[i].want));
	}
	enum ntf_addr_class c;
	assert_int_equal(ntf_addr_classify_text("localhost", &c), -1);
	assert_int_equal(ntf_addr_classify_text("", &c), -1);
	assert_int_equal(ntf_addr_classify_text("1.2.3", &c), -1);
	/* Other socket families are never public. */
	struct sockaddr_un un;
	memset(&un, 0, sizeof(un));
	un.sun_family = AF_UNIX;
	assert_int_equal(ntf_addr_classify((struct sockaddr *)&un, sizeof(un)), NTF_ADDR_RESERVED);
	assert_int_equal(ntf_addr_classify(NULL, 0), NTF_ADDR_RESERVED);
	assert_string_equal(ntf_addr_class_name(NTF_ADDR_METADATA), "cloud metadata");
}

/* ---- outcomes and snippets ------------------------------------------------- */

static void test_http_status_outcomes(void **state)
{
	(void)state;
	assert_int_equal(ntf_http_outcome(200), NTF_DELIVERED);
	assert_int_equal(ntf_http_outcome(204), NTF_DELIVERED);
	assert_int_equal(ntf_http_outcome(299), NTF_DELIVERED);
	assert_int_equal(ntf_http_outcome(410), NTF_DISABLED);
	const long retried[] = {100, 301, 302, 307, 400, 401, 404, 408, 429, 500, 502, 503, 504};
	for (size_t i = 0; i < sizeof(retried) / sizeof(retried[0]); i++)
		assert_int_equal(ntf_http_outcome(retried[i]), NTF_RETRY);
}

static void test_snippet_is_capped_valid_utf8_text(void **state)
{
	(void)state;
	char out[NTF_SNIPPET_MAX + 1];
	ntf_snippet_clean("ok\r\n\tdone\x00x", 11, out);
	assert_string_equal(out, "ok   done x");
	ntf_snippet_clean("caf\xc3\xa9 \xff\xfe \xe2\x82", 11, out);
	assert_string_equal(out, "caf\xc3\xa9 ?? ??");
	ntf_snippet_clean("\xed\xa0\x80", 3, out); /* a UTF-16 surrogate */
	assert_string_equal(out, "???");
	char big[2000];
	memset(big, 'a', sizeof(big));
	ntf_snippet_clean(big, sizeof(big), out);
	assert_int_equal((int)strlen(out), NTF_SNIPPET_MAX);
	/* A multibyte character cut by the cap is not kept half. */
	memset(big, 'a', sizeof(big));
	memcpy(big + NTF_SNIPPET_MAX - 1, "\xc3\xa9", 2);
	ntf_snippet_clean(big, sizeof(big), out);
	assert_int_equal((int)strlen(out), NTF_SNIPPET_MAX);
	assert_int_equal(out[NTF_SNIPPET_MAX - 1], '?');
}

static void test_url_origin_drops_credentials_path_and_query(void **state)
{
	(void)state;
	char out[256];
	ntf_url_origin("https://user:pw@hooks.example.com:8443/in/T0/B0/XyZ?token=abc", out,
		       sizeof(out));
	assert_string_equal(out, "https://hooks.example.com:8443");
	ntf_url_origin("http://127.0.0.1/hook", out, sizeof(out));
	assert_string_equal(out, "http://127.0.0.1");
	ntf_url_origin("not a url", out, sizeof(out));
	assert_string_equal(out, "(invalid URL)");
}

/* ---- email ----------------------------------------------------------------- */

static struct ntf_facts facts_80(void)
{
	struct ntf_facts f = {
		.msg_id = "msg_0123456789abcdef0123456789abcdef",
		.tenant_id = "acme",
		.subject_type = "tenant",
		.subject_id = "",
		.metric = "requests",
		.period = "day",
		.period_start = "2026-11-23",
		.threshold = "80",
		.limit = "10",
		.used = "8",
		.remaining = "2",
		.percent = "80.00",
		.resets_utc = "2026-11-24 03:00",
		.resets_local = "2026-11-24 00:00",
		.tz = "America/Argentina/Buenos_Aires",
	};
	return f;
}

static char *build(const struct ntf_facts *f, const char *from, const char *to)
{
	struct buf b;
	char err[256];
	buf_init(&b, 0);
	if (ntf_email_build(f, from, to, 1795442709 /* Mon 2026-11-23 14:05:09 UTC */, &b, err,
			    sizeof(err)) != 0) {
		buf_free(&b);
		return NULL;
	}
	buf_putc(&b, '\0');
	return b.data;
}

static void test_email_says_what_was_reached_with_crlf_lines(void **state)
{
	(void)state;
	struct ntf_facts f = facts_80();
	char *m = build(&f, "meterd alerts <alerts@meter.example>", "ops@acme.example");
	assert_non_null(m);
	/* Every line ends in CRLF. */
	for (char *p = m; *p; p++)
		if (*p == '\n')
			assert_true(p > m && p[-1] == '\r');
	assert_non_null(strstr(m, "From: meterd alerts <alerts@meter.example>\r\n"));
	assert_non_null(strstr(m, "To: <ops@acme.example>\r\n"));
	assert_non_null(strstr(m, "Subject: [meterd] acme reached 80% of its daily requests limit\r\n"));
	assert_non_null(strstr(m, "Date: Mon, 23 Nov 2026 14:05:09 +0000\r\n"));
	assert_non_null(strstr(m, "Message-ID: <msg_0123456789abcdef0123456789abcdef@meterd>\r\n"));
	assert_non_null(strstr(m, "Content-Type: multipart/alternative; boundary="));
	assert_non_null(strstr(m, "Content-Type: text/plain; charset=utf-8"));
	assert_non_null(strstr(m, "Content-Type: text/html; charset=utf-8"));
	assert_non_null(strstr(m, "acme has used 80.00% of its daily requests limit"));
	assert_non_null(strstr(m, "Used:       8 requests of 10 requests (80.00%)"));
	assert_non_null(strstr(m, "past the 80% threshold"));
	assert_non_null(strstr(m, "Remaining:  2 requests"));
	assert_non_null(strstr(m, "Period:     daily, from 2026-11-23"));
	assert_non_null(strstr(m, "Resets at:  2026-11-24 03:00 UTC (2026-11-24 00:00 "
				  "America/Argentina/Buenos_Aires)"));
	assert_non_null(strstr(m, "<td>2 requests</td>"));
	assert_non_null(strstr(m, "--=_meterd_msg_0123456789abcdef0123456789abcdef--\r\n"));
	/* Headers end at the first empty line, before any body text. */
	char *blank = strstr(m, "\r\n\r\n");
	assert_non_null(blank);
	assert_true(blank < strstr(m, "Used:"));
	free(m);
}

static void test_email_formats_costs_tokens_users_and_full_limits(void **state)
{
	(void)state;
	struct ntf_facts f = facts_80();
	f.metric = "cost";
	f.limit = "50000000000000";   /* $50 in pUSD */
	f.used = "40000000000000";
	f.remaining = "10000000000000";
	f.subject_type = "user";
	f.subject_id = "u-1";
	f.tz = "UTC";
	char *m = build(&f, "alerts@meter.example", "ops@acme.example");
	assert_non_null(m);
	assert_non_null(strstr(m, "user u-1 of acme has used 80.00% of its daily cost limit"));
	assert_non_null(strstr(m, "Used:       $40.00 of $50.00 (80.00%)"));
	assert_non_null(strstr(m, "Remaining:  $10.00"));
	/* UTC tenants get the time once. */
	assert_non_null(strstr(m, "Resets at:  2026-11-24 03:00 UTC\r\n"));
	free(m);

	f = facts_80();
	f.metric = "tokens";
	f.period = "month";
	f.threshold = "100";
	f.percent = "100.00";
	f.limit = "1000000";
	f.used = "1000250";
	f.remaining = "1";
	f.subject_type = "key";
	f.subject_id = "k<9>";
	m = build(&f, "alerts@meter.example", "ops@acme.example");
	assert_non_null(m);
	assert_non_null(strstr(m, "Subject: [meterd] API key k<9> of acme reached its monthly "
				  "tokens limit\r\n"));
	assert_non_null(strstr(m, "1,000,250 tokens of 1,000,000 tokens (100.00%)"));
	assert_non_null(strstr(m, "Remaining:  1 token\r\n"));
	assert_non_null(strstr(m, "API key k&lt;9&gt; of acme has reached"));
	free(m);

	f = facts_80();
	f.metric = "op:video_generation";
	f.resets_utc = "";
	m = build(&f, "alerts@meter.example", "ops@acme.example");
	assert_non_null(m);
	assert_non_null(strstr(m, "8 video_generation requests of 10 video_generation requests"));
	assert_null(strstr(m, "Resets at"));
	free(m);
}

static void test_email_refuses_header_injection(void **state)
{
	(void)state;
	struct ntf_facts f = facts_80();
	assert_null(build(&f, "alerts@meter.example", "ops@acme.example\r\nBcc: x@evil.example"));
	assert_null(build(&f, "alerts@meter.example\r\nBcc: x@evil.example", "ops@acme.example"));
	assert_null(build(&f, "nobody", "ops@acme.example"));
	f.tenant_id = "acme\nBcc: x@evil.example";
	assert_null(build(&f, "alerts@meter.example", "ops@acme.example"));
	f = facts_80();
	f.used = NULL;
	assert_null(build(&f, "alerts@meter.example", "ops@acme.example"));
}

static void test_mailbox_address_extracts_the_address(void **state)
{
	(void)state;
	char out[256];
	assert_int_equal(ntf_mailbox_address("Alerts <alerts@x.example>", out, sizeof(out)), 0);
	assert_string_equal(out, "alerts@x.example");
	assert_int_equal(ntf_mailbox_address(" a@b ", out, sizeof(out)), 0);
	assert_string_equal(out, "a@b");
	assert_int_equal(ntf_mailbox_address("nobody", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("@b", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("a@", out, sizeof(out)), -1);
	/* Found by fuzz_webhook: a second '@' at the end was taken for a domain. */
	assert_int_equal(ntf_mailbox_address("a@b@", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("Ops <a@b@>", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("@a@b", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("<a@b> trailing", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("a b@c", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address("a@b\r\nBcc: c@d", out, sizeof(out)), -1);
	assert_int_equal(ntf_mailbox_address(NULL, out, sizeof(out)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signature_matches_standard_webhooks_vector),
		cmocka_unit_test(test_signature_of_a_padded_32_byte_secret),
		cmocka_unit_test(test_signature_refuses_bad_secrets_without_echoing_them),
		cmocka_unit_test(test_retry_schedule_parses_the_default_and_rejects_garbage),
		cmocka_unit_test(test_retry_delay_has_bounded_jitter_and_ends),
		cmocka_unit_test(test_retry_after_is_a_minimum_and_capped),
		cmocka_unit_test(test_retry_after_parses_seconds_and_http_dates),
		cmocka_unit_test(test_address_classifier_table),
		cmocka_unit_test(test_http_status_outcomes),
		cmocka_unit_test(test_snippet_is_capped_valid_utf8_text),
		cmocka_unit_test(test_url_origin_drops_credentials_path_and_query),
		cmocka_unit_test(test_email_says_what_was_reached_with_crlf_lines),
		cmocka_unit_test(test_email_formats_costs_tokens_users_and_full_limits),
		cmocka_unit_test(test_email_refuses_header_injection),
		cmocka_unit_test(test_mailbox_address_extracts_the_address),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
