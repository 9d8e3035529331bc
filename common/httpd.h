/* httpd.h - the HTTP endpoints of the daemons (libmicrohttpd).
 *
 * Serves /metrics (Prometheus text format 0.0.4 from a registry), /livez
 * (200 while the process runs) and /readyz (a readiness callback: 200, or
 * 503 with a JSON reason), and hands every other path to an optional
 * application handler (meter-api's routes).
 *
 * Requests are bounded before any handler sees them: only GET and HEAD
 * (405 otherwise), the request target at most HTTPD_MAX_URI bytes (414),
 * at most HTTPD_MAX_HEADERS headers and HTTPD_MAX_HEADER_BYTES bytes of
 * them (431), no request body (400); every error is an RFC 9457 problem
 * document (application/problem+json). libmicrohttpd itself refuses what
 * does not fit in its per-connection memory (64 KiB) with its own short
 * answer. Connections are limited in number and time out when idle.
 *
 * One line per request is logged when it completes: method, path (without
 * the query string), status, route and duration; never headers (so never a
 * bearer token). /metrics, /livez and /readyz log at debug level unless
 * they fail, other routes at info.
 */
#ifndef METER_HTTPD_H
#define METER_HTTPD_H

#include <stddef.h>

#include "buf.h"
#include "metrics.h"

#define HTTPD_MAX_URI 2048
#define HTTPD_MAX_HEADERS 64
#define HTTPD_MAX_HEADER_BYTES 8192
#define HTTPD_MAX_BODY (4u << 20) /* an application answer larger than this is a 500 */

struct httpd;

/* A request as the application handler sees it (all borrowed, valid during
 * the call). */
struct httpd_request {
	const char *method; /* "GET" or "HEAD" */
	const char *path;   /* raw (still percent-encoded) path, without the query */
	const char *query;  /* raw query string after '?', "" when none */
	void *conn;         /* for httpd_header() */
};

/* The answer the handler fills in. httpd sets status 500 and an empty body
 * before the call; the handler sets status, body and content_type (or
 * calls httpd_json / httpd_problem). */
struct httpd_response {
	int status;
	const char *content_type; /* a static string */
	struct buf body;          /* capped at HTTPD_MAX_BODY */
	char route[64];           /* route template for the log and metrics ("other") */
	char www_authenticate[256];
	char allow[32];
	const char *instance;     /* the request path, for problem documents */
};

/* 0 when ready, else -1 with a short reason in why (shown in the 503). */
typedef int (*httpd_ready_fn)(void *opaque, char *why, size_t why_size);
typedef void (*httpd_handler_fn)(void *opaque, const struct httpd_request *req,
				 struct httpd_response *resp);

struct httpd_config {
	const char *addr;            /* "host:port", ":port", "[::1]:port"; port 0 = any free */
	struct mx_registry *metrics; /* served at /metrics (borrowed); NULL: 404 */
	httpd_ready_fn ready;        /* NULL: always ready */
	void *ready_opaque;
	httpd_handler_fn app;        /* NULL: other paths are 404 */
	void *app_opaque;
	unsigned threads;            /* 0 or 1: one thread; more: a pool of that many */
	unsigned max_connections;    /* 0: 64 */
	unsigned idle_timeout_s;     /* 0: 15 */
};

/* Bind and start serving in background threads (which never receive the
 * process's SIGTERM/SIGINT/SIGHUP). Logs "serving http://ADDR ..." with the
 * bound address (the port chosen when 0 was asked). The config is copied;
 * the registry and opaques are borrowed and must outlive the server.
 * Returns a new server, or NULL with errstr set. */
struct httpd *httpd_start(const struct httpd_config *cfg, char *errstr, size_t errstr_size);
/* Stop accepting, close the connections, join the threads. NULL: no-op. */
void httpd_destroy(struct httpd *h);
/* The bound address, "127.0.0.1:43121" or "[::1]:8080". */
const char *httpd_bound(const struct httpd *h);

/* A request header (case-insensitive name), or NULL. */
const char *httpd_header(const struct httpd_request *req, const char *name);

/* Set a JSON answer: status and a copy of json[0..len). */
void httpd_json(struct httpd_response *resp, int status, const char *json, size_t len);
/* Set an RFC 9457 problem document: type about:blank, title the status
 * phrase, detail from the format, instance the request path. */
void httpd_problem(struct httpd_response *resp, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The reason phrase of a status code ("Not Found"). */
const char *httpd_status_phrase(int status);

/* Split "host:port" into a socket address (numeric hosts and names; empty
 * host or "*" = every IPv4 address). 0, or -1 with errstr set. For tests. */
struct sockaddr_storage;
int httpd_parse_addr(const char *addr, struct sockaddr_storage *out, unsigned *out_len,
		     char *errstr, size_t errstr_size);

#endif
