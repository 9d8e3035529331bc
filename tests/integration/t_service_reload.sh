#!/usr/bin/env bash
# SIGHUP reloads the config file (METER_CONFIG_FILE): a running meterd
# switches its log format from text to JSON and takes a new batch size, says
# what changed and which changes need a restart (keeping those), keeps
# counting; a bad file is one clear error (file and line) and changes
# nothing; the environment still overrides the file. meter-notifier reloads
# its concurrency and retry schedule the same way and refuses a bad schedule.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

CONF=$T_DIR/meterd.conf
cat >"$CONF" <<'EOF'
# as a systemd EnvironmentFile
METER_LOG_FORMAT=text
METER_BATCH_MAX=5000
METER_BATCH_WAIT="100ms"
METER_LOG_LEVEL=info   # a '#' in an unquoted value is part of it: refused
EOF
# The last line is deliberately bad: meterd must refuse to start on it.
rc=0
METER_CONFIG_FILE=$CONF "$METERD" --database-url "$T_DBURL" >"$T_DIR/bad-start.out" 2>&1 || rc=$?
check_eq "meterd refuses a bad config file at start: exit" 2 "$rc"
check "with the file and line in one line" \
	grep -q "meterd: $CONF:5: METER_LOG_LEVEL: 'info   # a '#' in an unquoted value is part of it: refused' is not one of" "$T_DIR/bad-start.out"
sed -i '$d' "$CONF"

export METER_CONFIG_FILE=$CONF
export METER_SHUTDOWN_GRACE=20s # the environment wins over the file, at start and on reload
meterd_start a
wait_schema
# count_events: tenant-day events counted so far.
SEQ=0
send() {
	local f=$T_DIR/send.$SEQ now i
	now=$(utc_now)
	: >"$f"
	for ((i = 0; i < $1; i++)); do
		SEQ=$((SEQ + 1))
		printf 'rl\t%s\n' "$(event "ev-$SEQ" rl "$now" '"operation":"chat","input_tokens":5')" >>"$f"
	done
	produce_lines "$f"
}
counted() { sql "SELECT coalesce(sum(events), 0) FROM rollups WHERE subject_type = 'tenant' AND period = 'day'"; }
send 5
wait_for "5 events counted" 60 "SELECT coalesce(sum(events), 0) = 5 FROM rollups WHERE subject_type = 'tenant' AND period = 'day'" ||
	die "meterd did not count"
check "text logs before the reload" grep -Eq '^[0-9T:.-]+Z meterd\[[0-9]+\] info: consuming ' "$T_DIR/meterd-a.log"

cat >"$CONF" <<'EOF'
METER_LOG_FORMAT=json
METER_BATCH_MAX=200
METER_BATCH_WAIT="50ms"
METER_SHUTDOWN_GRACE=5s
METER_DEFAULT_PLAN=pro
METER_NOTIFY_CONCURRENCY=4
EOF
log_mark a
meterd_kill a HUP
log_wait a '"msg":"configuration reloaded from ' 30 || die "no reload message"
RELOADED=$(tail -n +"$((MD_LINE[a] + 1))" "$T_DIR/meterd-a.log" | grep '"msg":"configuration reloaded from ' | head -n 1)
check_eq "the reload line is JSON and says what changed" \
	"info|configuration reloaded from $CONF: batch-max 5000 -> 200, batch-wait 100ms -> 50ms, log-format text -> json" \
	"$("$PY" -c 'import json,sys; r = json.loads(sys.argv[1]); print(r["level"] + "|" + r["msg"])' "$RELOADED")"
log_wait a "kept until a restart" 10 || true
check "it names what needs a restart (default-plan), not the notifier's settings" \
	test "$(log_count a '"msg":"reload: changed, but kept until a restart: default-plan"')" -eq 1
check "the environment still overrides the file (no shutdown-grace change)" \
	test "$(log_count a 'shutdown-grace')" -eq 0
send 5
wait_for "10 events counted after the reload" 60 \
	"SELECT coalesce(sum(events), 0) = 10 FROM rollups WHERE subject_type = 'tenant' AND period = 'day'" ||
	die "meterd stopped counting after the reload"
check_eq "events counted across the reload" 10 "$(counted)"
check_eq "stored offsets still under the original group" 10 \
	"$(sql "SELECT sum(next_offset) FROM consumer_offsets WHERE group_id = '$T_GROUP'")"
check "every line since the reload is JSON" "$PY" -c 'import json,sys
lines = [l for l in open(sys.argv[1]).read().splitlines()[int(sys.argv[2]):] if not l.startswith("====")]
[json.loads(l) for l in lines if "CONFWARN" not in l]
sys.exit(0 if lines else 1)' "$T_DIR/meterd-a.log" "$((MD_LINE[a] + 1))"

# A bad file: one error, nothing changes.
printf 'METER_LOG_FORMAT=text\nMETER_BATCH_MAX=ten\n' >"$CONF"
log_mark a
meterd_kill a HUP
log_wait a 'reload failed' 30 || die "no reload error"
check_eq "one error line naming the file and line" 1 \
	"$(log_count a "\"level\":\"error\".*reload failed: $CONF:2: METER_BATCH_MAX: 'ten' is not an integer.*keeping the running configuration")"
check "still JSON after the failed reload (log-format text was not applied)" \
	test "$(log_count a '^[0-9T:.-]+Z meterd')" -eq 0
check "meterd still runs" meterd_alive a
# A file that does not parse at all.
printf 'METER_LOG_FORMAT="json\n' >"$CONF"
log_mark a
meterd_kill a HUP
log_wait a 'reload failed' 30 || die "no reload error"
check_eq "an unterminated quote: one error line" 1 "$(log_count a "reload failed: $CONF:1: unterminated")"
send 3
wait_for "13 events counted" 60 \
	"SELECT coalesce(sum(events), 0) = 13 FROM rollups WHERE subject_type = 'tenant' AND period = 'day'" ||
	die "meterd stopped counting after a failed reload"
meterd_stop a 60
check_eq "meterd exit code" 0 "$MD_RC"

# ---- meter-notifier ----------------------------------------------------------
cat >"$CONF" <<'EOF'
METER_NOTIFY_CONCURRENCY=32
METER_NOTIFY_RETRY_SCHEDULE=5s,5m
EOF
notifier_start n
log_wait n 'connected to the database' 60 || die "the notifier did not start"
cat >"$CONF" <<'EOF'
METER_NOTIFY_CONCURRENCY=4
METER_NOTIFY_RETRY_SCHEDULE="1s, 10s"
METER_LOG_LEVEL=debug
METER_BATCH_MAX=7
EOF
log_mark n
meterd_kill n HUP
log_wait n 'configuration reloaded' 30 || die "the notifier did not reload"
check_eq "the notifier applies its own settings, skips meterd's" 1 \
	"$(log_count n "configuration reloaded from $CONF: log-level info -> debug, notify-concurrency 32 -> 4, notify-retry-schedule '5s,5m' -> '1s, 10s'\$")"
printf 'METER_NOTIFY_RETRY_SCHEDULE=soon\n' >"$CONF"
log_mark n
meterd_kill n HUP
log_wait n 'reload failed' 30 || die "no reload error from the notifier"
check_eq "a bad retry schedule: one error, kept" 1 \
	"$(log_count n 'reload failed: METER_NOTIFY_RETRY_SCHEDULE: .*; keeping the running configuration')"
meterd_stop n 60
check_eq "meter-notifier exit code" 0 "$MD_RC"
test_done
