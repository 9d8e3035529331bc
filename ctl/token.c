/* token.c - meterctl token create|list|revoke: bearer tokens of the usage
 * API (meter-api). A token is printed once, when it is created; only its
 * SHA-256 is stored (sql/007_api_tokens.sql), so list never shows secrets. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "ctl.h"
#include "num.h"

static const char *const token_usage =
	"usage: meterctl token create --operator | --tenant ID [--name NAME] [--json]\n"
	"       meterctl token list [--tenant ID] [--json]\n"
	"       meterctl token revoke ID";

#define PREFIX_SHOWN 8 /* "mtk_" and 4 characters: enough to tell tokens apart */

static int token_create(struct ctl *c, int argc, char **argv)
{
	const char *tenant = NULL, *name = "";
	int operator = 0, as_json = 0;
	for (int i = 1; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--operator") == 0) {
			operator = 1;
			continue;
		}
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if ((m = ctl_opt(argc, argv, &i, "--tenant", &tenant)) ||
		    (m = ctl_opt(argc, argv, &i, "--name", &name))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], token_usage);
		return CTL_USAGE;
	}
	if (operator == (tenant != NULL)) {
		ctl_err("give --operator (every tenant) or --tenant ID (that tenant only)\n%s",
			token_usage);
		return CTL_USAGE;
	}
	if (tenant && !ctl_valid_id(tenant)) {
		ctl_err("'%s' is not a valid tenant id", tenant);
		return CTL_USAGE;
	}
	if (strlen(name) > 200) {
		ctl_err("--name is longer than 200 characters");
		return CTL_USAGE;
	}
	if (!ctl_db(c))
		return CTL_FAIL;
	if (tenant) {
		int found = ctl_tenant_exists(c, tenant);
		if (found < 0)
			return CTL_FAIL;
		if (!found) {
			ctl_err("no tenant '%s' (meterctl tenant add %s)", tenant, tenant);
			return CTL_FAIL;
		}
	}
	char token[API_TOKEN_LEN + 1], hash[API_HASH_HEX], prefix[PREFIX_SHOWN + 1];
	if (api_token_new(token, sizeof(token)) != 0) {
		ctl_err("no random bytes available from OpenSSL; token not created");
		return CTL_FAIL;
	}
	api_token_hash(token, hash);
	memcpy(prefix, token, PREFIX_SHOWN);
	prefix[PREFIX_SHOWN] = '\0';
	const char *params[4] = {hash, prefix, tenant, name};
	PGresult *r = ctl_query(c,
				"INSERT INTO api_tokens (token_hash, prefix, tenant_id, name)"
				" VALUES ($1, $2, $3, $4) RETURNING id",
				4, params);
	if (!r) {
		memset(token, 0, sizeof(token));
		return CTL_FAIL;
	}
	const char *id = PQgetvalue(r, 0, 0);
	if (as_json) {
		json_t *doc = json_pack("{s:s, s:s, s:s?, s:s}", "id", id, "token", token,
					"tenant", tenant, "name", name);
		char *s = doc ? json_dumps(doc, JSON_PRESERVE_ORDER) : NULL;
		if (s)
			puts(s);
		free(s);
		json_decref(doc);
	} else {
		puts(token);
		fprintf(stderr,
			"meterctl: token %s created for %s%s; it is shown only now: store it "
			"(meterctl token revoke %s withdraws it)\n",
			id, tenant ? "tenant " : "every tenant (operator token)",
			tenant ? tenant : "", id);
	}
	PQclear(r);
	memset(token, 0, sizeof(token));
	return CTL_OK;
}

static int token_list(struct ctl *c, int argc, char **argv)
{
	const char *tenant = NULL;
	int as_json = 0;
	for (int i = 1; i < argc; i++) {
		int m;
		if (strcmp(argv[i], "--json") == 0) {
			as_json = 1;
			continue;
		}
		if ((m = ctl_opt(argc, argv, &i, "--tenant", &tenant))) {
			if (m < 0)
				return CTL_USAGE;
			continue;
		}
		ctl_err("unexpected argument '%s'\n%s", argv[i], token_usage);
		return CTL_USAGE;
	}
	const char *params[1] = {tenant};
	PGresult *r = ctl_query(
		c,
		"SELECT id, prefix, coalesce(tenant_id, ''), name,"
		" to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
		" coalesce(to_char(last_used_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
		" coalesce(to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '')"
		" FROM api_tokens WHERE $1::text IS NULL OR tenant_id = $1 ORDER BY id",
		1, params);
	if (!r)
		return CTL_FAIL;
	int n = PQntuples(r);
	if (as_json) {
		json_t *a = json_array();
		for (int i = 0; i < n; i++) {
			int64_t id = 0;
			num_parse_i64(PQgetvalue(r, i, 0), 0, INT64_MAX, &id);
			const char *t = PQgetvalue(r, i, 2), *used = PQgetvalue(r, i, 5),
				   *rev = PQgetvalue(r, i, 6);
			json_array_append_new(
				a, json_pack("{s:I, s:s, s:s?, s:s, s:s, s:s?, s:s?}", "id",
					     (json_int_t)id, "prefix", PQgetvalue(r, i, 1), "tenant",
					     *t ? t : NULL, "name", PQgetvalue(r, i, 3), "created_at",
					     PQgetvalue(r, i, 4), "last_used_at", *used ? used : NULL,
					     "revoked_at", *rev ? rev : NULL));
		}
		char *s = json_dumps(a, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			puts(s);
		free(s);
		json_decref(a);
	} else {
		printf("%-6s %-10s %-24s %-20s %-21s %-21s %s\n", "ID", "PREFIX", "TENANT", "NAME",
		       "CREATED", "LAST USED", "REVOKED");
		for (int i = 0; i < n; i++) {
			const char *t = PQgetvalue(r, i, 2), *used = PQgetvalue(r, i, 5),
				   *rev = PQgetvalue(r, i, 6);
			printf("%-6s %-10s %-24s %-20s %-21s %-21s %s\n", PQgetvalue(r, i, 0),
			       PQgetvalue(r, i, 1), *t ? t : "(operator)", PQgetvalue(r, i, 3),
			       PQgetvalue(r, i, 4), *used ? used : "-", *rev ? rev : "-");
		}
	}
	PQclear(r);
	return CTL_OK;
}

static int token_revoke(struct ctl *c, int argc, char **argv)
{
	int64_t id;
	if (argc != 2 || num_parse_i64(argv[1], 1, INT64_MAX, &id) != 0) {
		ctl_err("token revoke needs one token id (see meterctl token list)\n%s",
			token_usage);
		return CTL_USAGE;
	}
	const char *params[1] = {argv[1]};
	PGresult *r = ctl_query(c,
				"WITH u AS (UPDATE api_tokens SET revoked_at = now()"
				"           WHERE id = $1 AND revoked_at IS NULL RETURNING id)"
				" SELECT (SELECT count(*) FROM u),"
				"        (SELECT count(*) FROM api_tokens WHERE id = $1)",
				1, params);
	if (!r)
		return CTL_FAIL;
	int revoked = strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	int exists = strcmp(PQgetvalue(r, 0, 1), "1") == 0;
	PQclear(r);
	if (!exists) {
		ctl_err("no token %s (see meterctl token list)", argv[1]);
		return CTL_FAIL;
	}
	printf(revoked ? "token %s revoked\n" : "token %s was already revoked\n", argv[1]);
	return CTL_OK;
}

int ctl_token(struct ctl *c, int argc, char **argv)
{
	if (argc < 2) {
		ctl_err("token needs a command\n%s", token_usage);
		return CTL_USAGE;
	}
	if (strcmp(argv[1], "create") == 0)
		return token_create(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return token_list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return token_revoke(c, argc - 1, argv + 1);
	ctl_err("unknown token command '%s'\n%s", argv[1], token_usage);
	return CTL_USAGE;
}
