/* webhook.c - the signed POST of Standard Webhooks v1
 * (https://www.standardwebhooks.com): headers webhook-id (the
 * notification's msg_id, the same on every retry), webhook-timestamp (unix
 * seconds of this attempt) and webhook-signature "v1,<base64 of
 * HMAC-SHA256(secret, id.timestamp.body)>" where the key is the base64
 * decoding of the tenant's secret after its "whsec_" prefix. The body is the
 * row's payload exactly as stored. No redirects are followed, only http and
 * https are spoken, proxies from the environment are ignored (the guard must
 * see the real peer), and the guard checks every address connected to. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "job.h"
#include "notifier.h"

#define NTF_SECRET_MAX 256

static int b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/';
}

int ntf_secret_decode(const char *secret, unsigned char *out, size_t out_size, size_t *out_len)
{
	if (!secret)
		return -1;
	const char *b64 = strncmp(secret, "whsec_", 6) == 0 ? secret + 6 : secret;
	size_t n = strlen(b64);
	if (n == 0 || n % 4 != 0 || n > 4 * (NTF_SECRET_MAX / 3))
		return -1;
	size_t pad = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)b64[i];
		if (c == '=' && i >= n - 2) {
			pad++;
			continue;
		}
		if (pad || !b64_char(c))
			return -1; /* '=' only at the end, nothing after it */
	}
	unsigned char raw[NTF_SECRET_MAX + 3];
	int len = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n);
	if (len < 0 || (size_t)len < pad)
		return -1;
	/* EVP_DecodeBlock counts '=' padding as zero bytes. */
	size_t real = (size_t)len - pad;
	if (real == 0 || real > out_size) {
		OPENSSL_cleanse(raw, sizeof(raw));
		return -1;
	}
	memcpy(out, raw, real);
	OPENSSL_cleanse(raw, sizeof(raw));
	*out_len = real;
	return 0;
}

int ntf_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body,
	     size_t body_len, char *out, size_t out_size, char *errstr, size_t errstr_size)
{
	unsigned char key[NTF_SECRET_MAX];
	size_t key_len = 0;
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0;
	EVP_MAC *hmac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	int rc = -1;
	if (out_size < 64) {
		snprintf(errstr, errstr_size, "signature buffer too small");
		return -1;
	}
	if (ntf_secret_decode(secret, key, sizeof(key), &key_len) != 0) {
		snprintf(errstr, errstr_size,
			 "the tenant's webhook secret is missing or not whsec_ + base64 (set one "
			 "with meterctl tenant set TENANT --webhook-secret)");
		return -1;
	}
	char ts[24];
	int tsl = snprintf(ts, sizeof(ts), "%" PRId64, timestamp);
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
	if (!ctx || !EVP_MAC_init(ctx, key, key_len, params) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)msg_id, strlen(msg_id)) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)ts, (size_t)tsl) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)".", 1) ||
	    !EVP_MAC_update(ctx, (const unsigned char *)body, body_len) ||
	    !EVP_MAC_final(ctx, mac, &mac_len, sizeof(mac)) || mac_len != 32) {
		snprintf(errstr, errstr_size, "HMAC-SHA256 failed in OpenSSL");
		goto out;
	}
	memcpy(out, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mac_len); /* 44 chars + NUL */
	rc = 0;
out:
	OPENSSL_cleanse(key, sizeof(key));
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(hmac);
	return rc;
}

void ntf_url_origin(const char *url, char *out, size_t out_size)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(u, CURLUPART_PORT, &port, 0) == CURLUE_OK)
			snprintf(out, out_size, "%s://%s:%s", scheme, host, port);
		else
			snprintf(out, out_size, "%s://%s", scheme, host);
	} else {
		snprintf(out, out_size, "(invalid URL)");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
}

/* The SSRF guard at the socket: libcurl calls this with the address it is
 * about to connect to, after name resolution, for every address it tries. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct ntf_job *j = clientp;
	if (purpose == CURLSOCKTYPE_IPCXN && !j->allow_private) {
		enum ntf_addr_class c = ntf_addr_classify(&a->addr, a->addrlen);
		if (c != NTF_ADDR_PUBLIC) {
			char ip[INET6_ADDRSTRLEN] = "?";
			struct sockaddr_storage ss;
			memset(&ss, 0, sizeof(ss));
			memcpy(&ss, &a->addr,
			       a->addrlen < sizeof(ss) ? (size_t)a->addrlen : sizeof(ss));
			if (a->family == AF_INET)
				inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, ip,
					  sizeof(ip));
			else if (a->family == AF_INET6)
				inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, ip,
					  sizeof(ip));
			snprintf(j->refused, sizeof(j->refused),
				 "refused to connect to %s (%s address; set "
				 "METER_WEBHOOK_ALLOW_PRIVATE=1 to allow)",
				 ip, ntf_addr_class_name(c));
			return CURL_SOCKET_BAD;
		}
	}
	return socket(a->family, a->socktype, a->protocol);
}

/* Keep the first NTF_SNIPPET_MAX bytes of the answer; past them, stop the
 * transfer (the status is known by then): never an unbounded buffer. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
	struct ntf_job *j = userp;
	size_t n = size * nmemb;
	size_t room = NTF_SNIPPET_MAX > j->resp.len ? NTF_SNIPPET_MAX - j->resp.len : 0;
	if (n <= room) {
		buf_append(&j->resp, data, n);
		return n;
	}
	buf_append(&j->resp, data, room);
	j->resp_full = 1;
	return 0; /* CURLE_WRITE_ERROR: engine.c knows it was this */
}

static int id_ok(const char *s)
{
	if (!*s || strlen(s) > 60)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

int ntf_webhook_setup(struct ntf_job *j, const struct meter_config *cfg, char *errstr,
		      size_t errstr_size)
{
	const struct ntf_note *n = j->note;
	if (!id_ok(n->f.msg_id)) {
		snprintf(errstr, errstr_size, "msg_id is not a valid webhook-id");
		return -1;
	}
	if (strncmp(n->target, "https://", 8) != 0 && strncmp(n->target, "http://", 7) != 0) {
		snprintf(errstr, errstr_size, "webhook URL is not http:// or https://");
		return -1;
	}
	int64_t ts = (int64_t)time(NULL);
	char sig[80];
	size_t body_len = strlen(n->payload);
	if (ntf_sign(n->secret, n->f.msg_id, ts, n->payload, body_len, sig, sizeof(sig), errstr,
		     errstr_size) != 0)
		return -1;
	char h[160];
	struct curl_slist *l = NULL, *t;
	const char *fixed[] = {"Content-Type: application/json", ("User-Agent: meter-notifier/" METER_VERSION),
			       "Expect:"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		if (!(t = curl_slist_append(l, fixed[i])))
			goto oom;
		l = t;
	}
	snprintf(h, sizeof(h), "webhook-id: %s", n->f.msg_id);
	if (!(t = curl_slist_append(l, h)))
		goto oom;
	l = t;
	snprintf(h, sizeof(h), "webhook-timestamp: %" PRId64, ts);
	if (!(t = curl_slist_append(l, h)))
		goto oom;
	l = t;
	snprintf(h, sizeof(h), "webhook-signature: %s", sig);
	if (!(t = curl_slist_append(l, h)))
		goto oom;
	l = t;
	j->headers = l;
	l = NULL; /* now owned by the job */

	CURL *e = j->easy;
	long connect_ms = cfg->webhook_timeout_ms < 10000 ? (long)cfg->webhook_timeout_ms : 10000;
	if (curl_easy_setopt(e, CURLOPT_URL, n->target) != CURLE_OK ||
	    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK) {
		snprintf(errstr, errstr_size, "webhook URL is not usable (libcurl refused it)");
		return -1;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, n->payload);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->webhook_timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, j);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	return 0;
oom:
	curl_slist_free_all(l);
	snprintf(errstr, errstr_size, "out of memory building webhook headers");
	return -1;
}
