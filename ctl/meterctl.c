/* meterctl.c - the operator's tool: migrate the database, manage tenants,
 * read usage. Subcommands live in their own files (tenant.c, usage.c). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "db.h"
#include "kafka.h"
#include "log.h"
#include "migrations.h"
#include "num.h"

void ctl_err(const char *fmt, ...)
{
	va_list ap;
	fputs("meterctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

PGconn *ctl_db(struct ctl *c)
{
	if (c->conn)
		return c->conn;
	char err[1024];
	c->conn = db_connect(c->cfg.database_url, "meterctl", err, sizeof(err));
	if (!c->conn)
		ctl_err("%s (set METER_DATABASE_URL)", err);
	return c->conn;
}

PGresult *ctl_query(struct ctl *c, const char *sql, int nparams, const char *const *params)
{
	PGconn *conn = ctl_db(c);
	if (!conn)
		return NULL;
	char err[1024];
	PGresult *r = db_query(conn, sql, nparams, params, err, sizeof(err), NULL);
	if (!r)
		ctl_err("%s", err);
	return r;
}

int ctl_reevaluate(struct ctl *c, const char *tenant)
{
	const char *params[1] = {tenant};
	PGresult *r = ctl_query(c, "SELECT meter_reevaluate_tenant($1, 'limit_raised')", 1, params);
	if (!r)
		return CTL_FAIL;
	PQclear(r);
	return ctl_publish_flags(c, tenant);
}

int ctl_opt(int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n) != 0)
		return 0;
	if (a[n] == '=') {
		*val = a + n + 1;
		return 1;
	}
	if (a[n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		ctl_err("%s needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

void ctl_format_usd(const char *pusd_digits, char *out, size_t out_size)
{
	num_format_pusd(pusd_digits, 12, out, out_size);
	char *dot = strchr(out, '.');
	if (!dot)
		return;
	size_t n = strlen(out);
	while (n > 0 && out[n - 1] == '0')
		out[--n] = '\0';
	if (out + n - 1 == dot)
		*dot = '\0';
}

int ctl_valid_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 128)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("._~:@+=-", *p)))
			return 0;
	return 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: meterctl [options] COMMAND ...\n"
		"\n"
		"  migrate                          bring the database to the current schema\n"
		"  tenant add ID [--plan P] [--tz ZONE] [--webhook URL] [--webhook-secret S]\n"
		"             [--email ADDR] [--plan-expires RFC3339|YYYY-MM-DD|none]\n"
		"             [--thresholds 50,80,100|plan]\n"
		"  tenant set ID [same options]     change a tenant\n"
		"  tenant show ID [--json]          show a tenant (--json includes the webhook secret)\n"
		"  tenant list [--json]             list tenants with month-to-date usage\n"
		"  usage TENANT [--day YYYY-MM-DD | --month YYYY-MM] [--user U | --key K] [--json]\n"
		"                                   usage of a period with limits, remaining, percent\n"
		"  plan list [--json]               plans and their default limits\n"
		"  plan add PLAN [--from PLAN] [--name TEXT]\n"
		"                                   a new plan (--from: a copy of another's limits)\n"
		"  plan set|unset PLAN METRIC PERIOD [VALUE|unlimited] [--level tenant|user|key]\n"
		"  plan thresholds PLAN 80,90,100   notification thresholds (%%) of the plan's tenants\n"
		"  limit set|unset TENANT METRIC PERIOD [VALUE|unlimited] [--user U|--key K|--users|--keys]\n"
		"  limit show TENANT [--user U | --key K] [--json]\n"
		"                                   METRIC: requests, tokens, cost (USD), op:NAME;\n"
		"                                   PERIOD: day, month, rolling30\n"
		"  suspend TENANT --reason TEXT [--actor NAME]\n"
		"                                   block the tenant until reactivated (no 'until')\n"
		"  reactivate TENANT [--reason TEXT] [--actor NAME]\n"
		"                                   lift a suspension\n"
		"  reset TENANT [--user U | --key K] --period day|month --reason TEXT [--actor NAME]\n"
		"                                   restart a subject's current period for limits (audited)\n"
		"  check TENANT [--user U] [--key K] [--estimate-requests N] [--estimate-tokens N]\n"
		"        [--remaining] [--json]\n"
		"                                   may it call a model now? (from usage.limits; with\n"
		"                                   an estimate, also what remains of its current day\n"
		"                                   and month in usage.rollups; exit 0 allowed, 3 blocked)\n"
		"  emit --file FILE.jsonl|- [--topic T]\n"
		"                                   publish usage events, one JSON object per line\n"
		"  notifications list [TENANT] [--status S] [--channel C] [--limit N] [--json]\n"
		"  notifications retry ID | --dead [TENANT]\n"
		"                                   threshold webhooks and emails, and re-queueing\n"
		"  token create --operator | --tenant ID [--name NAME] [--json]\n"
		"                                   a bearer token for meter-api (printed once)\n"
		"  token list [--tenant ID] [--json]   tokens (never their secrets)\n"
		"  token revoke ID                  withdraw a token at once\n"
		"\n"
		"Options (each also an environment variable):\n");
	cfg_print_usage(f, CFG_CTL);
	fprintf(f, "  --config-reference   print the configuration reference (Markdown)\n"
		   "  --version            print the version\n");
	fprintf(f, "\nExit codes: 0 success, 1 failure, 2 usage error (check: 3 blocked).\n");
}

static int cmd_migrate(struct ctl *c, int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		ctl_err("migrate takes no arguments");
		return CTL_USAGE;
	}
	PGconn *conn = ctl_db(c);
	if (!conn)
		return CTL_FAIL;
	char err[1024];
	int n = migrate_run(conn, err, sizeof(err));
	if (n < 0) {
		ctl_err("%s", err);
		return CTL_FAIL;
	}
	printf("database schema is current (%d migration%s applied now)\n", n, n == 1 ? "" : "s");
	return CTL_OK;
}

int main(int argc, char **argv)
{
	struct ctl c;
	char err[1024];
	memset(&c, 0, sizeof(c));
	/* Before the configuration is read, as the daemons do (cfg_daemon_args):
	 * a config error points to --config-reference, which must then work. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "help") == 0) {
			usage(stdout);
			return CTL_OK;
		}
		if (strcmp(argv[i], "--config-reference") == 0) {
			cfg_print_reference(stdout, CFG_ALL);
			return CTL_OK;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("meterctl %s\n", METER_VERSION);
			return CTL_OK;
		}
	}
	if (cfg_load(&c.cfg, CFG_CTL, &argc, argv, err, sizeof(err)) != 0 ||
	    kfk_check_props(&c.cfg, err, sizeof(err)) != 0) {
		ctl_err("%s", err);
		return CTL_USAGE;
	}
	enum log_level lvl = LOG_LVL_WARN;
	log_init("meterctl", strcmp(c.cfg.log_format, "json") == 0, lvl);
	if (argc < 2) {
		usage(stderr);
		return CTL_USAGE;
	}
	const char *cmd = argv[1];
	int rc;
	if (cmd[0] == '-') {
		/* cfg_load() took the options it knows; what is left is not one. */
		ctl_err("unknown option '%s' (see meterctl --help)", cmd);
		rc = CTL_USAGE;
	} else if (strcmp(cmd, "migrate") == 0)
		rc = cmd_migrate(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "tenant") == 0)
		rc = ctl_tenant(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "usage") == 0)
		rc = ctl_usage(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "plan") == 0)
		rc = ctl_plan(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "limit") == 0)
		rc = ctl_limit(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "suspend") == 0)
		rc = ctl_suspend(&c, argc - 1, argv + 1, 1);
	else if (strcmp(cmd, "reactivate") == 0)
		rc = ctl_suspend(&c, argc - 1, argv + 1, 0);
	else if (strcmp(cmd, "reset") == 0)
		rc = ctl_reset(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "check") == 0)
		rc = ctl_check(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "emit") == 0)
		rc = ctl_emit(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "notifications") == 0)
		rc = ctl_notifications(&c, argc - 1, argv + 1);
	else if (strcmp(cmd, "token") == 0)
		rc = ctl_token(&c, argc - 1, argv + 1);
	else {
		ctl_err("unknown command '%s' (see meterctl --help)", cmd);
		rc = CTL_USAGE;
	}
	if (c.conn)
		PQfinish(c.conn);
	return rc;
}
