/* httpd.c - see httpd.h.
 *
 * libmicrohttpd runs its own thread(s) with an internal poll/epoll loop:
 * one thread for meterd and meter-notifier (a scrape or a probe every few
 * seconds), a pool for meter-api (see api/main.c). A request is answered in
 * full on the first call of the access handler (we accept no bodies), so
 * there is no per-request state machine: the per-request context made by the
 * URI log callback only carries the raw request target, the start time and
 * what the log line and the metrics need.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "num.h"

struct httpd {
	struct MHD_Daemon *d;
	struct httpd_config cfg;
	char bound[128];
	char last_error[256]; /* libmicrohttpd's last message while starting */
	atomic_int starting;
	struct mx_metric *m_requests;
	struct mx_metric *m_duration;
};

/* One request. */
struct req_ctx {
	char *uri;          /* raw request target as received */
	double started;     /* monotonic seconds */
	char method[16];
	char route[64];
	int builtin;        /* /metrics, /livez, /readyz: logged at debug level */
	int answered;
};

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *httpd_status_phrase(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Error";
	}
}

void httpd_json(struct httpd_response *resp, int status, const char *json, size_t len)
{
	buf_reset(&resp->body);
	resp->status = status;
	resp->content_type = "application/json";
	if (buf_append(&resp->body, json, len) != 0) {
		buf_reset(&resp->body);
		resp->status = 500;
	}
}

void httpd_problem(struct httpd_response *resp, int status, const char *fmt, ...)
{
	char detail[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	json_t *doc = json_pack("{s:s, s:s, s:i, s:s}", "type", "about:blank", "title",
				httpd_status_phrase(status), "status", status, "detail", detail);
	/* The path is raw client input: jansson refuses invalid UTF-8, so leave
	 * instance out rather than fail the whole answer. */
	if (doc && resp->instance)
		json_object_set_new(doc, "instance", json_string(resp->instance));
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	buf_reset(&resp->body);
	resp->status = status;
	resp->content_type = "application/problem+json";
	if (!text || buf_append(&resp->body, text, strlen(text)) != 0) {
		buf_reset(&resp->body);
		buf_appendf(&resp->body, "{\"type\":\"about:blank\",\"status\":%d}", status);
	}
	free(text);
}

const char *httpd_header(const struct httpd_request *req, const char *name)
{
	return MHD_lookup_connection_value((struct MHD_Connection *)req->conn, MHD_HEADER_KIND,
					   name);
}

/* ---- address ---------------------------------------------------------------- */

int httpd_parse_addr(const char *addr, struct sockaddr_storage *out, unsigned *out_len,
		     char *errstr, size_t errstr_size)
{
	char host[256];
	const char *colon = strrchr(addr, ':');
	int64_t port;
	memset(out, 0, sizeof(*out));
	if (!colon || num_parse_i64(colon + 1, 0, 65535, &port) != 0) {
		snprintf(errstr, errstr_size,
			 "'%s' is not host:port (e.g. 127.0.0.1:9464, :9464, [::1]:9464; port "
			 "0 picks a free one)",
			 addr);
		return -1;
	}
	size_t hl = (size_t)(colon - addr);
	if (hl >= sizeof(host)) {
		snprintf(errstr, errstr_size, "host name in '%s' is too long", addr);
		return -1;
	}
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
		memmove(host, host + 1, hl - 2);
		host[hl - 2] = '\0';
	} else if (strchr(host, ':')) {
		snprintf(errstr, errstr_size, "put an IPv6 address in brackets: [%s]:%lld", host,
			 (long long)port);
		return -1;
	}
	if (host[0] == '\0' || strcmp(host, "*") == 0) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_ANY);
		sin->sin_port = htons((uint16_t)port);
		*out_len = sizeof(*sin);
		return 0;
	}
	struct addrinfo hints, *res = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc != 0 || !res) {
		snprintf(errstr, errstr_size, "cannot resolve '%s': %s", host,
			 rc ? gai_strerror(rc) : "no address");
		if (res)
			freeaddrinfo(res);
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*out_len = (unsigned)res->ai_addrlen;
	freeaddrinfo(res);
	if (out->ss_family == AF_INET)
		((struct sockaddr_in *)out)->sin_port = htons((uint16_t)port);
	else if (out->ss_family == AF_INET6)
		((struct sockaddr_in6 *)out)->sin6_port = htons((uint16_t)port);
	else {
		snprintf(errstr, errstr_size, "'%s' is not an IP address", host);
		return -1;
	}
	return 0;
}

static void format_sockaddr(const struct sockaddr *sa, char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(sin->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(sin6->sin6_port));
	} else {
		snprintf(out, n, "?");
	}
}

/* ---- requests --------------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	(void)cls;
	(void)conn;
	struct req_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->uri = strdup(uri ? uri : "");
	if (!ctx->uri) {
		free(ctx);
		return NULL;
	}
	ctx->started = mono_s();
	snprintf(ctx->route, sizeof(ctx->route), "other");
	return ctx;
}

struct hdr_count {
	unsigned n;
	size_t bytes;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
				    const char *value)
{
	(void)kind;
	struct hdr_count *c = cls;
	c->n++;
	c->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
	return MHD_YES;
}

static enum MHD_Result send_response(struct MHD_Connection *conn, struct httpd_response *resp)
{
	if (resp->body.oom || resp->body.toobig) {
		buf_reset(&resp->body);
		httpd_problem(resp, 500, "the answer could not be built (too large or out of memory)");
	}
	struct MHD_Response *r = MHD_create_response_from_buffer(
		resp->body.len, resp->body.len ? resp->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				resp->content_type ? resp->content_type : "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (resp->www_authenticate[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, resp->www_authenticate);
	if (resp->allow[0])
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, resp->allow);
	enum MHD_Result ok = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ok;
}

static void serve_metrics(struct httpd *h, struct httpd_response *resp)
{
	size_t len = 0;
	char *text = h->cfg.metrics ? mx_render(h->cfg.metrics, &len) : NULL;
	if (!h->cfg.metrics) {
		httpd_problem(resp, 404, "this program exports no metrics");
		return;
	}
	if (!text) {
		httpd_problem(resp, 500, "out of memory rendering the metrics");
		return;
	}
	buf_reset(&resp->body);
	buf_append(&resp->body, text, len);
	free(text);
	resp->status = 200;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void serve_readyz(struct httpd *h, struct httpd_response *resp)
{
	char why[512] = "";
	if (!h->cfg.ready || h->cfg.ready(h->cfg.ready_opaque, why, sizeof(why)) == 0) {
		static const char ok[] = "{\"status\":\"ready\"}";
		httpd_json(resp, 200, ok, sizeof(ok) - 1);
		return;
	}
	json_t *doc = json_pack("{s:s, s:s}", "status", "not ready", "reason",
				why[0] ? why : "not ready");
	char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	if (text)
		httpd_json(resp, 503, text, strlen(text));
	else
		httpd_json(resp, 503, "{\"status\":\"not ready\"}", 22);
	free(text);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **con_cls)
{
	(void)url;
	(void)version;
	(void)upload_data;
	struct httpd *h = cls;
	struct req_ctx *ctx = *con_cls;
	if (!ctx)
		return MHD_NO; /* out of memory at the start: drop the connection */
	if (ctx->answered) {
		/* Answered already; the client sent a body anyway: discard it. */
		*upload_data_size = 0;
		return MHD_YES;
	}

	snprintf(ctx->method, sizeof(ctx->method), "%s", method);
	for (char *p = ctx->method; *p; p++)
		if (*p < 'A' || *p > 'Z')
			*p = '?';

	struct httpd_response resp;
	memset(&resp, 0, sizeof(resp));
	buf_init(&resp.body, HTTPD_MAX_BODY);
	resp.status = 500;
	snprintf(resp.route, sizeof(resp.route), "other");

	/* The path without the query, for problem documents and the app. */
	char *path = strdup(ctx->uri);
	if (!path) {
		buf_free(&resp.body);
		return MHD_NO;
	}
	char *q = strchr(path, '?');
	const char *query = "";
	if (q) {
		*q = '\0';
		query = q + 1;
	}
	resp.instance = path;

	struct hdr_count hc = {0, 0};
	MHD_get_connection_values(conn, MHD_HEADER_KIND, count_header, &hc);
	const char *clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
	const char *tenc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding");
	int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (!is_get) {
		snprintf(resp.allow, sizeof(resp.allow), "GET, HEAD");
		httpd_problem(&resp, 405, "method %.16s is not allowed: every endpoint is read-only "
				  "(GET, HEAD)", method);
	} else if (strlen(ctx->uri) > HTTPD_MAX_URI) {
		resp.instance = NULL; /* too long to echo */
		httpd_problem(&resp, 414, "the request target is longer than %d bytes",
			      HTTPD_MAX_URI);
	} else if (hc.n > HTTPD_MAX_HEADERS || hc.bytes > HTTPD_MAX_HEADER_BYTES) {
		httpd_problem(&resp, 431, "at most %d headers and %d bytes of them are accepted",
			      HTTPD_MAX_HEADERS, HTTPD_MAX_HEADER_BYTES);
	} else if ((clen && strcmp(clen, "0") != 0) || tenc) {
		httpd_problem(&resp, 400, "a %s request carries no body", method);
	} else if (strcmp(path, "/metrics") == 0) {
		ctx->builtin = 1;
		snprintf(resp.route, sizeof(resp.route), "/metrics");
		serve_metrics(h, &resp);
	} else if (strcmp(path, "/livez") == 0) {
		ctx->builtin = 1;
		snprintf(resp.route, sizeof(resp.route), "/livez");
		httpd_json(&resp, 200, "{\"status\":\"alive\"}", 18);
	} else if (strcmp(path, "/readyz") == 0) {
		ctx->builtin = 1;
		snprintf(resp.route, sizeof(resp.route), "/readyz");
		serve_readyz(h, &resp);
	} else if (h->cfg.app) {
		struct httpd_request req = {method, path, query, conn};
		h->cfg.app(h->cfg.app_opaque, &req, &resp);
	} else {
		httpd_problem(&resp, 404, "no such endpoint (this program serves /metrics, /livez "
				  "and /readyz)");
	}
	snprintf(ctx->route, sizeof(ctx->route), "%s", resp.route);
	enum MHD_Result ok = send_response(conn, &resp);
	ctx->answered = 1;
	buf_free(&resp.body);
	free(path);
	*upload_data_size = 0;
	return ok;
}

/* Printable copy of the path (no query), bounded, for the log. */
static void log_path(const char *uri, char *out, size_t n)
{
	size_t o = 0;
	for (const char *p = uri; *p && *p != '?' && o + 4 < n; p++) {
		unsigned char c = (unsigned char)*p;
		out[o++] = (c < 0x20 || c >= 0x7f || c == '"') ? '?' : (char)c;
	}
	if (uri[o] && uri[o] != '?' && o + 4 >= n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct httpd *h = cls;
	struct req_ctx *ctx = *con_cls;
	if (!ctx)
		return;
	*con_cls = NULL;
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
	unsigned status = ci ? ci->http_status : 0;
	const union MHD_ConnectionInfo *ca =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	char peer[80] = "?";
	if (ca && ca->client_addr)
		format_sockaddr(ca->client_addr, peer, sizeof(peer));
	double took = mono_s() - ctx->started;
	char path[240], code[8];
	log_path(ctx->uri, path, sizeof(path));
	snprintf(code, sizeof(code), "%u", status);
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || status) {
		mx_add(h->m_requests, MX_L(ctx->route, code), 1);
		mx_observe(h->m_duration, MX_L(ctx->route), took);
	}
	const char *end = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? ""
			  : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? " (timed out)"
			  : toe == MHD_REQUEST_TERMINATED_CLIENT_ABORT   ? " (client went away)"
									 : " (not completed)";
	if (ctx->builtin && status < 500)
		log_debug("http %s %s %s %u %.1fms route=%s%s", peer,
			  ctx->method[0] ? ctx->method : "-", path, status, took * 1000, ctx->route,
			  end);
	else
		log_info("http %s %s %s %u %.1fms route=%s%s", peer,
			 ctx->method[0] ? ctx->method : "-", path, status, took * 1000, ctx->route,
			 end);
	free(ctx->uri);
	free(ctx);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct httpd *h = cls;
	char msg[256];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	if (atomic_load(&h->starting))
		snprintf(h->last_error, sizeof(h->last_error), "%s", msg);
	log_debug("libmicrohttpd: %s", msg);
}

static const double duration_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
					 0.1,   0.25,   0.5,   1,    2.5,   5};

struct httpd *httpd_start(const struct httpd_config *cfg, char *errstr, size_t errstr_size)
{
	struct httpd *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(errstr, errstr_size, "out of memory");
		return NULL;
	}
	h->cfg = *cfg;
	h->cfg.addr = NULL; /* not kept */
	struct sockaddr_storage sa;
	unsigned salen = 0;
	if (httpd_parse_addr(cfg->addr, &sa, &salen, errstr, errstr_size) != 0) {
		free(h);
		return NULL;
	}
	(void)salen;
	if (cfg->metrics) {
		h->m_requests = mx_counter(cfg->metrics, "meter_http_requests_total",
					   "HTTP requests answered, by route template and status code.",
					   "route,code");
		h->m_duration = mx_histogram(cfg->metrics, "meter_http_request_duration_seconds",
					     "Time from request line to answer sent, by route.",
					     "route", duration_bounds,
					     sizeof(duration_bounds) / sizeof(duration_bounds[0]));
	}
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	unsigned threads = cfg->threads > 1 ? cfg->threads : 1;
	unsigned maxconn = cfg->max_connections ? cfg->max_connections : 64;
	unsigned timeout = cfg->idle_timeout_s ? cfg->idle_timeout_s : 15;

	/* The server's threads inherit this thread's signal mask: keep the
	 * signals the daemons act on (stop, reload) for the main thread. */
	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGQUIT);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	struct MHD_OptionItem opts[] = {
		{MHD_OPTION_SOCK_ADDR, 0, &sa},
		{MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, h},
		{MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, h},
		{MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, h},
		{MHD_OPTION_CONNECTION_LIMIT, (intptr_t)maxconn, NULL},
		{MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)timeout, NULL},
		{MHD_OPTION_CONNECTION_MEMORY_LIMIT, 65536, NULL},
		{MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL},
		/* Only with a pool: the option present at all means one. */
		{threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads,
		 NULL},
		{MHD_OPTION_END, 0, NULL},
	};
	atomic_store(&h->starting, 1);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	atomic_store(&h->starting, 0);
	if (!h->d) {
		/* libmicrohttpd names port 0 (the argument it ignores for a
		 * socket address): say what happened in our words. */
		const char *why = h->last_error[0] ? h->last_error : "libmicrohttpd failed to start";
		if (strstr(h->last_error, "in use"))
			why = "the address is already in use (another process listens there)";
		else if (strstr(h->last_error, "ermission denied"))
			why = "permission denied (ports below 1024 need privileges)";
		snprintf(errstr, errstr_size, "cannot serve HTTP on %s: %s", cfg->addr, why);
		free(h);
		return NULL;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_LISTEN_FD);
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	if (di && getsockname(di->listen_fd, (struct sockaddr *)&bound, &blen) == 0)
		format_sockaddr((struct sockaddr *)&bound, h->bound, sizeof(h->bound));
	else
		snprintf(h->bound, sizeof(h->bound), "%s", cfg->addr);
	log_info("serving http://%s (/metrics /livez /readyz%s; %u thread%s, at most %u "
		 "connections)",
		 h->bound, cfg->app ? " and the API" : "", threads, threads == 1 ? "" : "s",
		 maxconn);
	return h;
}

void httpd_destroy(struct httpd *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	free(h);
}

const char *httpd_bound(const struct httpd *h)
{
	return h ? h->bound : "";
}
