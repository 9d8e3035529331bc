/* api.h - meter-api, the usage HTTP API (prefix api_).
 *
 *   GET /v1/tenants/{id}/usage[?period=day|month][&date=YYYY-MM-DD|YYYY-MM][&user=U|&key=K]
 *   GET /v1/tenants/{id}/usage/history[?days=1..90]
 *   GET /v1/tenants/{id}/usage/breakdown[?month=YYYY-MM]
 *   GET /v1/plans
 *
 * Three parts: request.c turns a method, raw path and raw query string into
 * a validated struct api_req (pure; unit-tested and fuzzed); token.c makes,
 * hashes and reads bearer tokens (also used by meterctl token); handlers.c
 * authenticates, authorises and answers from PostgreSQL.
 */
#ifndef METER_API_H
#define METER_API_H

#include <stddef.h>

#include "config.h"
#include "httpd.h"
#include "metrics.h"

#define API_ID_MAX 128
#define API_HISTORY_MAX_DAYS 90
#define API_HISTORY_DEFAULT_DAYS 30

enum api_route {
	API_R_NONE = 0,  /* no such route */
	API_R_USAGE,     /* /v1/tenants/{id}/usage */
	API_R_HISTORY,   /* /v1/tenants/{id}/usage/history */
	API_R_BREAKDOWN, /* /v1/tenants/{id}/usage/breakdown */
	API_R_PLANS,     /* /v1/plans */
};

struct api_req {
	enum api_route route;
	const char *template;           /* "/v1/tenants/{id}/usage"; "other" for none */
	char tenant[API_ID_MAX + 1];    /* routes under /v1/tenants/ */
	char period[8];                 /* usage: "day" | "month" */
	char date[11];                  /* usage, breakdown: first day YYYY-MM-DD; "": current */
	char subject_type[8];           /* usage: "tenant" | "user" | "key" */
	char subject_id[API_ID_MAX + 1];/* usage: "" for the tenant */
	int days;                       /* history */
};

/* Parse a request. Returns 0 when the route and every parameter are valid;
 * otherwise the HTTP status of the problem (404 no such route, 405 method
 * not allowed, 400 bad path encoding or bad parameter) with a one-line
 * detail (printable ASCII; input echoed only after sanitising). out->route
 * is set as soon as the path matched a route, even when a parameter is then
 * refused (400), so the caller can authenticate before reporting it. */
int api_parse(const char *method, const char *path, const char *query, struct api_req *out,
	      char *detail, size_t detail_size);

/* "YYYY-MM-DD" (with_day) or "YYYY-MM" with a real calendar date, years
 * 1900-9999. 0 when valid. */
int api_check_date(const char *s, int with_day);
/* 1..128 characters of A-Z a-z 0-9 . _ ~ : @ + = - (the event id rules). */
int api_valid_id(const char *s);

/* ---- tokens ------------------------------------------------------------ */

#define API_TOKEN_PREFIX "mtk_"
#define API_TOKEN_LEN 47         /* "mtk_" + 43 base64url characters */
#define API_TOKEN_MAX 256        /* longest bearer credential read */
#define API_HASH_HEX 65          /* 64 hex digits + NUL */

/* A new random token (32 bytes from the OpenSSL CSPRNG) into out (at least
 * API_TOKEN_LEN + 1 bytes). 0, or -1 when no randomness was available. */
int api_token_new(char *out, size_t out_size);
/* SHA-256 of the token text as 64 lowercase hex digits (out: API_HASH_HEX). */
void api_token_hash(const char *token, char out[API_HASH_HEX]);
/* The credential of an Authorization header "Bearer <token>" (scheme
 * case-insensitive; b64token characters; at most API_TOKEN_MAX) copied into
 * out. 0; -1 when the header is absent or empty; -2 when it is malformed or
 * not Bearer. */
int api_bearer(const char *header, char *out, size_t out_size);

/* ---- the server side ------------------------------------------------------ */

struct api;

/* Borrows cfg's database URL (copied). reg may be NULL. NULL with errstr. */
struct api *api_new(const struct meter_config *cfg, struct mx_registry *reg, char *errstr,
		    size_t errstr_size);
/* After the HTTP server stopped (no request in flight). NULL: no-op. */
void api_destroy(struct api *a);
/* The httpd application handler (opaque = the struct api). */
void api_handle(void *opaque, const struct httpd_request *req, struct httpd_response *resp);

#endif
