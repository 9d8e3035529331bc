/* ctl.h - shared pieces of meterctl's subcommands. */
#ifndef METER_CTL_H
#define METER_CTL_H

#include <libpq-fe.h>

#include "config.h"

/* Exit codes (DESIGN.md): 0 success, 1 runtime failure, 2 usage error. */
#define CTL_OK 0
#define CTL_FAIL 1
#define CTL_USAGE 2

struct ctl {
	struct meter_config cfg;
	PGconn *conn; /* opened on first use by ctl_db() */
};

/* Print "meterctl: <message>" on stderr (one line). */
void ctl_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The database connection, connecting on first use; NULL after printing why. */
PGconn *ctl_db(struct ctl *c);

/* Run a statement with text parameters on the database; on failure print
 * the one-line error and return NULL. The caller PQclears the result. */
PGresult *ctl_query(struct ctl *c, const char *sql, int nparams, const char *const *params);

/* After a change to a tenant's limits or plan: re-evaluate its crossings
 * and publish the resulting flags. Returns an exit code. */
int ctl_reevaluate(struct ctl *c, const char *tenant);

/* Option scanner: if argv[*i] is --name (value in next arg) or --name=value,
 * store the value and advance *i; returns 1 if matched, 0 if not, -1 when the
 * value is missing (message printed). */
int ctl_opt(int argc, char **argv, int *i, const char *name, const char **val);

/* A cost amount for text output: pico-USD digits ("5250000000000") as USD
 * without trailing zeros ("5.25"), as limits are given. --json keeps the
 * pico-USD digits. */
void ctl_format_usd(const char *pusd_digits, char *out, size_t out_size);

/* Identifiers as in events: 1..128 of [A-Za-z0-9._~:@+=-]. */
int ctl_valid_id(const char *s);

/* Parse "80,90,100" (1-10 distinct integers in 1..100) into a PostgreSQL
 * array literal "{80,90,100}" in out (may be NULL to only check). 0 or -1. */
int ctl_thresholds_array(const char *list, char *out, size_t out_size);

/* Check that a plan exists: CTL_OK; CTL_USAGE after printing "unknown plan
 * 'x' (plans: free, starter, ...)"; CTL_FAIL on a database error. */
int ctl_check_plan(struct ctl *c, const char *plan);

/* 1 if the tenant exists, 0 if not, -1 after a database error (said);
 * callers say what to do about a missing one. */
int ctl_tenant_exists(struct ctl *c, const char *tenant);

/* metric: requests | tokens | cost | op:<operation>. 0 when valid. */
int ctl_check_metric(const char *m);

/* Publish the flags queued by a change (tenant may be NULL for all): take
 * the publisher's place if no meterd holds it, else wait for meterd. */
int ctl_publish_flags(struct ctl *c, const char *tenant);

int ctl_tenant(struct ctl *c, int argc, char **argv);
int ctl_usage(struct ctl *c, int argc, char **argv);
int ctl_plan(struct ctl *c, int argc, char **argv);
int ctl_limit(struct ctl *c, int argc, char **argv);
int ctl_suspend(struct ctl *c, int argc, char **argv, int suspend);
int ctl_reset(struct ctl *c, int argc, char **argv);
int ctl_check(struct ctl *c, int argc, char **argv);
int ctl_emit(struct ctl *c, int argc, char **argv);
int ctl_notifications(struct ctl *c, int argc, char **argv);
int ctl_token(struct ctl *c, int argc, char **argv);

#endif
