#!/usr/bin/env bash
# The usage HTTP API (meter-api, issue 6) against the real database, after a
# small stream through meterd: each endpoint's numbers equal meterctl usage
# --json and the rollup tables (usage by month, day, user; daily history
# with zero days; breakdown by operation, provider and model; plans); bearer
# tokens: operator sees both tenants, a tenant token gets 403 on the other
# tenant (even an unknown one), a revoked or unknown token 401 with
# WWW-Authenticate; bad dates, days=0/91/abc, unknown parameters, huge query
# strings and headers, unknown routes and wrong methods get RFC 9457 problem
# documents; requests are logged without tokens; /metrics counts them; a
# database without the API's table is not ready.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2
limits_init 2
[[ -x $API ]] || die "$API is missing; run 'make all' first"
# rc_of CMD...: its exit code (output dropped).
rc_of() { "$@" >/dev/null 2>&1 && echo 0 || echo $?; }

ZONE=Europe/Madrid
TODAY=$(TZ=$ZONE date +%F)
YESTERDAY=$(TZ=$ZONE date -d "$TODAY -1 day" +%F)
THREE_AGO=$(TZ=$ZONE date -d "$TODAY -3 day" +%F)
TY=$(date -u -d "TZ=\"$ZONE\" $YESTERDAY 12:00" +%Y-%m-%dT%H:%M:%SZ)
ctl tenant add api-a --tz "$ZONE" >/dev/null || die "tenant add api-a failed"
ctl tenant add api-b --plan starter >/dev/null || die "tenant add api-b failed"
ctl limit set api-a requests day 6 >/dev/null || die "limit set failed"

meterd_start md
wait_schema || die "meterd did not start"
NOW=$(utc_now)
{
	for i in 1 2 3; do
		printf 'api-a\t%s\n' "$(event "a$i" api-a "$NOW" '"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":1000,"cache_read_input_tokens":100,"output_tokens":200')"
	done
	printf 'api-a\t%s\n' "$(event a4 api-a "$NOW" '"user_id":"u-2","provider":"anthropic","model":"claude-sonnet-4-5","operation":"rag","input_tokens":50,"output_tokens":5,"cost":"0.25"')"
	printf 'api-a\t%s\n' "$(event a5 api-a "$NOW" '"user_id":"u-2","provider":"openai","model":"gpt-image-1","operation":"image_generation","units":{"images":2},"cost":"0.08"')"
	printf 'api-a\t%s\n' "$(event a6 api-a "$NOW" '"provider":"openai","model":"gpt-4o","operation":"chat","input_tokens":10,"output_tokens":10,"requests":2')"
	printf 'api-a\t%s\n' "$(event a7 api-a "$TY" '"user_id":"u-1","provider":"gemini","model":"gemini-2.5-flash","operation":"chat","input_tokens":7,"output_tokens":3,"cost":"1.5"')"
	printf 'api-b\t%s\n' "$(event b1 api-b "$NOW" '"provider":"openai","model":"gpt-4o-mini","operation":"embedding","input_tokens":500')"
} >"$T_DIR/events.kv"
produce_lines "$T_DIR/events.kv"
wait_caught_up 60 || die "meterd did not consume the events"
wait_flag tenant/api-a state blocked 30 || die "api-a is not blocked (7 requests today, limit 6)"

OP=$(ctl token create --operator --name ops) || die "token create --operator failed"
TA=$(ctl token create --tenant api-a --name dashboard) || die "token create --tenant failed"
TB=$(ctl token create --tenant api-b) || die "token create --tenant api-b failed"
TR=$(ctl token create --tenant api-a --name to-revoke) || die "token create failed"
check "tokens look like mtk_ + 43 base64url characters" \
	grep -qE '^mtk_[A-Za-z0-9_-]{43}$' <<<"$OP"$'\n'
check_eq "meterctl token create --tenant of an unknown tenant fails" 1 \
	"$(rc_of ctl token create --tenant nobody)"
check_eq "meterctl token create needs --operator or --tenant" 2 \
	"$(rc_of ctl token create)"
check_eq "stored: the SHA-256 of the token and its first 8 characters, never the token" \
	"$(printf %s "$OP" | sha256sum | cut -d' ' -f1) ${OP:0:8} 0" \
	"$(sql "SELECT token_hash || ' ' || prefix || ' ' || (SELECT count(*) FROM api_tokens WHERE
	          token_hash = '$OP' OR prefix = '$OP' OR name = '$OP') FROM api_tokens WHERE name = 'ops'")"

METER_HTTP_ADDR=127.0.0.1:0 METER_API_THREADS=3 api_start api
A=http://$(http_addr api) || die "meter-api did not say where it serves"
say "meter-api serves $A"
check_eq "/livez" 200 "$(hget "$A/livez")"
check_eq "/readyz" 200 "$(hget "$A/readyz")"
auth() { printf 'Authorization: Bearer %s' "$1"; }


# same_as_meterctl "what" API_PATH CTL_ARGS...: the API document is meterctl
# usage --json's plus "blocked" (the time the flag was computed aside).
same_as_meterctl() {
	local what=$1 path=$2
	shift 2
	local code
	code=$(hget "$A$path" -H "$(auth "$TA")")
	ctl usage "$@" --json >"$T_DIR/ctl.json" || { check_eq "$what: meterctl" 0 1; return; }
	check_eq "$what: status" 200 "$code"
	check_eq "$what: equals meterctl usage $* --json" "same" "$("$PY" - "$T_DIR/http.body" "$T_DIR/ctl.json" <<'EOF'
import json, sys
api, ctl = (json.load(open(f)) for f in sys.argv[1:3])
blocked = api.pop("blocked")
for d in (api, ctl):
    d["flag"].pop("updated_at", None)
ok = api == ctl and blocked == (ctl["flag"]["state"] == "blocked")
print("same" if ok else "differ:\napi  %s\nctl  %s" % (json.dumps(api, sort_keys=True), json.dumps(ctl, sort_keys=True)))
EOF
)"
}
same_as_meterctl "usage (default: this month)" "/v1/tenants/api-a/usage" api-a
same_as_meterctl "usage ?period=day (today in $ZONE)" "/v1/tenants/api-a/usage?period=day" \
	api-a --day "$TODAY"
same_as_meterctl "usage ?date=yesterday" "/v1/tenants/api-a/usage?date=$YESTERDAY" \
	api-a --day "$YESTERDAY"
same_as_meterctl "usage ?period=month&date=YYYY-MM" \
	"/v1/tenants/api-a/usage?period=month&date=${TODAY:0:7}" api-a --month "${TODAY:0:7}"
same_as_meterctl "usage of a user ?user=u-1&period=day" "/v1/tenants/api-a/usage?user=u-1&period=day" \
	api-a --user u-1 --day "$TODAY"
same_as_meterctl "usage of a key ?key=k-1" "/v1/tenants/api-a/usage?key=k-1" api-a --key k-1

hget "$A/v1/tenants/api-a/usage?period=day" -H "$(auth "$TA")" >/dev/null
check_eq "api-a today: requests, tokens, blocked, requests limit/used/remaining/percent" \
	"7 3675 True 6 7 0 116.67" \
	"$(body_json '" ".join(str(x) for x in [d["usage"]["requests"], d["usage"]["total_tokens"], d["blocked"]] + [[l["limit"], l["used"], l["remaining"], l["percent"]] for l in d["limits"] if l["metric"] == "requests" and l["period"] == "day"][0])')"
check_eq "api-a today: resets at the next midnight in $ZONE" \
	"$(date -u -d "TZ=\"$ZONE\" $(TZ=$ZONE date -d "$TODAY +1 day" +%F) 00:00" +%Y-%m-%dT%H:%M:%SZ)" \
	"$(body_json 'd["resets_at"]')"
hget "$A/v1/tenants/api-b/usage" -H "$(auth "$OP")" >/dev/null
check_eq "api-b this month (operator token): requests, tokens, blocked, plan" "1 500 False starter" \
	"$(body_json '" ".join(str(x) for x in [d["usage"]["requests"], d["usage"]["total_tokens"], d["blocked"], d["plan"]])')"

# --- history ---------------------------------------------------------------------
check_eq "history ?days=4" 200 "$(hget "$A/v1/tenants/api-a/usage/history?days=4" -H "$(auth "$TA")")"
check_eq "history: 4 days ending today in $ZONE, oldest first" "$THREE_AGO .. $TODAY: 4" \
	"$(body_json 'd["from"] + " .. " + d["to"] + ": " + str(len(d["series"]))')"
check_eq "history: requests per day (a day without usage is 0)" "0 0 1 7" \
	"$(body_json '" ".join(str(s["requests"]) for s in d["series"])')"
check_eq "history: each day equals the day rollup" \
	"$(for day in "$THREE_AGO" "$(TZ=$ZONE date -d "$TODAY -2 day" +%F)" "$YESTERDAY" "$TODAY"; do
		sql "SELECT coalesce((SELECT events || ' ' || requests || ' ' || input_tokens + output_tokens || ' ' || cost_pusd
		       FROM rollups WHERE tenant_id = 'api-a' AND subject_type = 'tenant' AND period = 'day'
		       AND period_start = '$day'), '0 0 0 0')"
	done | tr '\n' ';')" \
	"$(body_json '"".join("%d %d %d %s;" % (s["events"], s["requests"], s["total_tokens"], s["cost_pusd"]) for s in d["series"])')"
check_eq "history: dates are consecutive" "True" \
	"$(body_json '__import__("datetime").date.fromisoformat(d["series"][-1]["date"]) - __import__("datetime").date.fromisoformat(d["series"][0]["date"]) == __import__("datetime").timedelta(days=3) and len({s["date"] for s in d["series"]}) == 4')"
check_eq "history: totals are the sum of the days" "8 True" \
	"$(body_json 'str(d["totals"]["requests"]) + " " + str(d["totals"]["total_tokens"] == sum(s["total_tokens"] for s in d["series"]))')"
check_eq "history (default 30 days)" "200 30" \
	"$(hget "$A/v1/tenants/api-a/usage/history" -H "$(auth "$TA")") $(body_json 'len(d["series"])')"
check_eq "history ?days=90" "200 90" \
	"$(hget "$A/v1/tenants/api-a/usage/history?days=90" -H "$(auth "$OP")") $(body_json 'len(d["series"])')"

# --- breakdown -------------------------------------------------------------------
check_eq "breakdown" 200 "$(hget "$A/v1/tenants/api-a/usage/breakdown" -H "$(auth "$TA")")"
ctl usage api-a --json >"$T_DIR/ctl.json"
check_eq "breakdown: operations and models equal meterctl usage's" "same" "$("$PY" - "$T_DIR/http.body" "$T_DIR/ctl.json" <<'EOF'
import json, sys
api, ctl = (json.load(open(f)) for f in sys.argv[1:3])
ops = {o.pop("operation"): o for o in api["operations"]}
models = {m.pop("provider") + "/" + m.pop("model"): m for m in api["models"]}
ok = ops == ctl["operations"] and models == ctl["models"] and api["units"] == ctl["units"]
print("same" if ok else "differ: %s %s" % (json.dumps(api), json.dumps(ctl)))
EOF
)"
check_eq "breakdown: providers by cost (requests, tokens, cost USD)" \
	"$(sql "SELECT string_agg(p, '; ' ORDER BY c DESC, p) FROM (SELECT split_part(name, '/', 1) || ' ' || sum(requests) || ' ' || sum(input_tokens + output_tokens) || ' ' || meter_pusd_to_usd(sum(cost_pusd)) AS p, sum(cost_pusd) c
	        FROM rollup_breakdown WHERE tenant_id = 'api-a' AND subject_type = 'tenant' AND period = 'day'
	          AND period_start >= date_trunc('month', '$TODAY'::date)
	          AND period_start < date_trunc('month', '$TODAY'::date) + interval '1 month'
	          AND dim = 'model' GROUP BY split_part(name, '/', 1)) x")" \
	"$(body_json '"; ".join("%s %d %d %s" % (p["provider"], p["requests"], p["total_tokens"], p["cost_usd"]) for p in d["providers"])')"
check_eq "breakdown: models sorted by cost, largest first" "True" \
	"$(body_json 'all(int(a["cost_pusd"]) >= int(b["cost_pusd"]) for a, b in zip(d["models"], d["models"][1:]))')"
check_eq "breakdown: month, period, units" "${TODAY:0:7} ${TODAY:0:7}-01 {'images': 2}" \
	"$(body_json 'd["month"] + " " + d["period_start"] + " " + str(d["units"])')"
check_eq "breakdown of a month without usage" "200 0" \
	"$(hget "$A/v1/tenants/api-a/usage/breakdown?month=2001-01" -H "$(auth "$TA")") $(body_json 'len(d["operations"])')"

# --- plans -------------------------------------------------------------------------
check_eq "plans (tenant token)" 200 "$(hget "$A/v1/plans" -H "$(auth "$TB")")"
check_eq "plans equal meterctl plan list --json (ids, levels, metrics, periods, limits)" "same" \
	"$(ctl plan list --json | "$PY" -c '
import json, sys
ctl = json.load(sys.stdin)
api = json.load(open(sys.argv[1]))["plans"]
norm = lambda ls: sorted((l["level"], l["metric"], l["period"], None if l["limit"] is None else str(l["limit"])) for l in ls)
ok = [p["id"] for p in api] == [p["id"] for p in ctl] and all(norm(a["limits"]) == norm(c["limits"]) for a, c in zip(api, ctl))
print("same" if ok else "differ")' "$T_DIR/http.body")"
check_eq "the free plan allows 50 requests a day" 50 \
	"$(body_json '[l["limit"] for p in d["plans"] if p["id"] == "free" for l in p["limits"] if l["metric"] == "requests" and l["period"] == "day" and l["level"] == "tenant"][0]')"

# --- tokens ------------------------------------------------------------------------
problem() { # problem STATUS: the last body is a problem document with that status
	[[ $(grep -i '^content-type:' "$T_DIR/http.headers" | tr -d '\r' | sed 's/^[^:]*: //') == application/problem+json ]] &&
		[[ $(body_json 'd["status"] == '"$1"' and d["type"] == "about:blank" and bool(d["title"]) and bool(d["detail"])') == True ]]
}
hdr() { grep -i "^$1:" "$T_DIR/http.headers" | tr -d '\r' | sed 's/^[^:]*: //'; }
check_eq "tenant A's token on tenant B's usage" 403 "$(hget "$A/v1/tenants/api-b/usage" -H "$(auth "$TA")")"
check "... as a problem document" problem 403
check_eq "tenant B's token on tenant A's history" 403 "$(hget "$A/v1/tenants/api-a/usage/history" -H "$(auth "$TB")")"
check_eq "tenant A's token on tenant B's breakdown" 403 "$(hget "$A/v1/tenants/api-b/usage/breakdown" -H "$(auth "$TA")")"
check_eq "tenant A's token on an unknown tenant: 403, not 404 (no existence leak)" 403 \
	"$(hget "$A/v1/tenants/nobody/usage" -H "$(auth "$TA")")"
check_eq "tenant A's token on B with a bad parameter: 403 before 400" 403 \
	"$(hget "$A/v1/tenants/api-b/usage?days=1" -H "$(auth "$TA")")"
check_eq "operator token on tenant A and B" "200 200" \
	"$(hget "$A/v1/tenants/api-a/usage" -H "$(auth "$OP")") $(hget "$A/v1/tenants/api-b/usage/history" -H "$(auth "$OP")")"
check_eq "operator token on an unknown tenant" 404 "$(hget "$A/v1/tenants/nobody/usage" -H "$(auth "$OP")")"
check "... as a problem document" problem 404
check_eq "no token" 401 "$(hget "$A/v1/tenants/api-a/usage")"
check "... as a problem document" problem 401
check_eq "... with WWW-Authenticate" 'Bearer realm="meterd"' "$(hdr WWW-Authenticate)"
check_eq "an unknown token" 401 "$(hget "$A/v1/plans" -H "$(auth mtk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA)")"
check "... WWW-Authenticate says invalid_token" grep -q 'error="invalid_token"' <<<"$(hdr WWW-Authenticate)"
check_eq "Basic credentials" 401 "$(hget "$A/v1/plans" -H 'Authorization: Basic YTpi')"
check_eq "a token before revocation" 200 "$(hget "$A/v1/tenants/api-a/usage" -H "$(auth "$TR")")"
RID=$(sql "SELECT id FROM api_tokens WHERE name = 'to-revoke'")
check "meterctl token revoke" ctl token revoke "$RID"
check_eq "the revoked token" 401 "$(hget "$A/v1/tenants/api-a/usage" -H "$(auth "$TR")")"
check "... problem detail says revoked" grep -q 'revoked' "$T_DIR/http.body"
check_eq "revoking again says so" "token $RID was already revoked" "$(ctl token revoke "$RID")"
check_eq "revoking an unknown id fails" 1 "$(rc_of ctl token revoke 999999)"
ctl token list >"$T_DIR/tokens.txt"
ctl token list --json >"$T_DIR/tokens.json"
SHOWN=$(cat "$T_DIR/tokens.txt" "$T_DIR/tokens.json" | grep -cF -e "$OP" -e "$TA" -e "$TB" -e "$TR" || true)
check_eq "token list: 4 tokens, the revoked one marked, no secret shown" "4 1 0" \
	"$("$PY" -c 'import json,sys; t = json.load(open(sys.argv[1])); print(len(t), sum(1 for x in t if x["revoked_at"]))' "$T_DIR/tokens.json") $SHOWN"
check_eq "token list shows who used them" "True" \
	"$("$PY" -c 'import json,sys; t = {x["name"]: x for x in json.load(open(sys.argv[1]))}; print(t["dashboard"]["last_used_at"] is not None and t["dashboard"]["tenant"] == "api-a" and t["ops"]["tenant"] is None)' "$T_DIR/tokens.json")"

# --- bad requests --------------------------------------------------------------------
bad() { # bad "what" STATUS PATH [CURL ARGS...]
	local what=$1 want=$2 path=$3
	shift 3
	check_eq "$what" "$want" "$(hget "$A$path" -H "$(auth "$TA")" "$@")"
	check "... as a problem document" problem "$want"
}
bad "date=2026-02-30" 400 "/v1/tenants/api-a/usage?date=2026-02-30"
bad "period=day with a month" 400 "/v1/tenants/api-a/usage?period=day&date=2026-11"
bad "period=year" 400 "/v1/tenants/api-a/usage?period=year"
bad "date=tomorrow" 400 "/v1/tenants/api-a/usage?date=tomorrow"
bad "breakdown month=2026-13" 400 "/v1/tenants/api-a/usage/breakdown?month=2026-13"
bad "days=0" 400 "/v1/tenants/api-a/usage/history?days=0"
bad "days=91" 400 "/v1/tenants/api-a/usage/history?days=91"
bad "days=abc" 400 "/v1/tenants/api-a/usage/history?days=abc"
check "... the detail says the range" grep -q 'from 1 to 90' "$T_DIR/http.body"
bad "an unknown parameter" 400 "/v1/tenants/api-a/usage?perod=day"
bad "a parameter twice" 400 "/v1/tenants/api-a/usage?period=day&period=day"
bad "user and key together" 400 "/v1/tenants/api-a/usage?user=u-1&key=k-1"
bad "a bad percent escape" 400 "/v1/tenants/api-a/usage?date=%GG"
bad "a tenant id with an encoded slash" 400 "/v1/tenants/api%2Fa/usage"
bad "an unknown route" 404 "/v1/tenants/api-a/invoices"
bad "an unknown version" 404 "/v2/plans"
bad "POST" 405 "/v1/plans" -X POST
check_eq "... with Allow" "GET, HEAD" "$(hdr Allow)"
bad "DELETE" 405 "/v1/tenants/api-a/usage" -X DELETE
bad "a GET with a body" 400 "/v1/plans" --data-binary hello -X GET
LONG=$(head -c 5000 /dev/zero | tr '\0' x)
bad "a 5,000-byte query string" 414 "/v1/tenants/api-a/usage?period=$LONG"
bad "a 9,000-byte header" 431 "/v1/plans" -H "X-Padding: $(head -c 9000 /dev/zero | tr '\0' y)"
check "a 100,000-byte query string is refused (by libmicrohttpd)" \
	test "$(hget "$A/v1/plans?x=$(head -c 100000 /dev/zero | tr '\0' z)" -H "$(auth "$TA")")" -ge 400
check_eq "HEAD" 200 "$(curl -s -m 10 -I -o /dev/null -w '%{http_code}' -H "$(auth "$TA")" "$A/v1/plans")"
check_eq "still alive after all that" 200 "$(hget "$A/livez")"

# --- concurrency: one connection per server thread ---------------------------------------
PIDS=()
for i in $(seq 1 24); do
	curl -s -m 20 -o /dev/null -w '%{http_code}\n' -H "$(auth "$OP")" \
		"$A/v1/tenants/api-a/usage/history?days=90" >>"$T_DIR/parallel.codes" &
	PIDS+=($!)
done
wait "${PIDS[@]}" || true
check_eq "24 parallel requests all answered 200" 24 "$(grep -c '^200$' "$T_DIR/parallel.codes")"
check "meter-api holds at most one connection per thread plus the probe's (3 + 1)" \
	test "$(sql "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'meter-api%' AND datname = current_database()")" -le 4

# --- metrics and logs ---------------------------------------------------------------------
curl -s -m 10 "$A/metrics" >"$T_DIR/api.prom"
check "meter-api's /metrics passes the strict format check, without tenant ids" \
	"$PY" "$PROM_CHECK" "$T_DIR/api.prom" --forbid api-a --forbid api-b --forbid nobody
val() { "$PY" "$PROM_CHECK" "$T_DIR/api.prom" --value "$1"; }
check_eq "auth failures: revoked" 1 "$(val 'meter_api_auth_failures_total{reason="revoked"}')"
check_eq "auth failures: forbidden" 5 "$(val 'meter_api_auth_failures_total{reason="forbidden"}')"
check_eq "auth failures: missing" 1 "$(val 'meter_api_auth_failures_total{reason="missing"}')"
check "requests counted by route template and code" \
	test "$(val 'meter_http_requests_total{route="/v1/tenants/{id}/usage/history",code="200"}')" -ge 27
check_eq "meter_build_info names meter-api" 1 "$(val 'meter_build_info{program="meter-api",version="0.1.0"}')"
LOG=$T_DIR/meterd-api.log
check "one log line per request: method, path, status, route" \
	grep -q 'GET /v1/tenants/api-a/usage/history 200 .*route=/v1/tenants/{id}/usage/history' "$LOG"
check_eq "no query string in the request log" 0 "$(grep -c 'http .*/usage?' "$LOG" || true)"
check_eq "no token in any log" "" "$(grep -hF -e "$OP" -e "$TA" -e "$TB" -e "$TR" -e Bearer "$T_DIR"/meterd-*.log || true)"

# --- not ready without the API's table ---------------------------------------------------
psql -XAtq -d "$METER_DATABASE_URL" -c "CREATE DATABASE ${T_DB}_empty" >/dev/null
at_exit "psql -XAtq -d \"$METER_DATABASE_URL\" -c 'DROP DATABASE IF EXISTS ${T_DB}_empty' >/dev/null"
T_DBURL_SAVED=$T_DBURL
T_DBURL=${T_DBURL}_empty METER_HTTP_ADDR=127.0.0.1:0 api_start empty
T_DBURL=$T_DBURL_SAVED
E=http://$(http_addr empty) || die "the second meter-api did not start"
check_eq "meter-api on a database without api_tokens: /readyz" 503 "$(hget "$E/readyz")"
check "... the reason names the missing table" grep -q 'api_tokens' "$T_DIR/http.body"
check "... and says what to do" grep -q 'run meterctl migrate' "$T_DIR/http.body"
check_eq "... without the SQL's position lines" 0 "$(grep -c 'LINE 1' "$T_DIR/http.body" || true)"
check_eq "a usage request there: 503" 503 "$(hget "$E/v1/tenants/api-a/usage" -H "$(auth "$TA")")"
check "... saying that an operator must migrate" grep -q 'must run meterctl migrate' "$T_DIR/http.body"
T_DBURL=${T_DBURL}_empty ctl tenant list >"$T_DIR/out" 2>"$T_DIR/err" && die "tenant list on an empty database succeeded"
check_eq "meterctl on it: one line on stderr, saying to migrate" "1 1" \
	"$(wc -l <"$T_DIR/err") $(grep -c 'run meterctl migrate' "$T_DIR/err")"
check_eq "... /livez" 200 "$(hget "$E/livez")"
meterd_stop empty
check_eq "meter-api exit code on SIGTERM" 0 "$MD_RC"
meterd_stop api
check_eq "meter-api exit code on SIGTERM" 0 "$MD_RC"
check "it said it stopped" grep -q 'stopped' "$LOG"
meterd_stop md
test_done
