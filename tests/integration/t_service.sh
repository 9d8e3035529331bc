#!/usr/bin/env bash
# systemd integration (Type=notify): with NOTIFY_SOCKET set, meterd says
# READY=1 only once its database exists, is migrated and the consumer has
# subscribed (STATUS= says it waits before that), feeds the watchdog when
# WATCHDOG_USEC is set, says RELOADING=1 then READY=1 around a SIGHUP and
# STOPPING=1 on SIGTERM (exit 0); meter-notifier does the same around its
# database connection; meterd dying of SIGSEGV writes its stack first
# (common/crash.c). The peer is tests/tools/notify_peer.py, a datagram
# socket like systemd's. The unit files in deploy/systemd pass
# systemd-analyze verify without a warning, are Type=notify with reload,
# restart and a stop timeout above the shutdown grace, and are hardened
# (systemd-analyze security exposure at most 2.5).
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

# notify_peer NAME: a socket at $T_DIR/NAME.sock logging to $T_DIR/NAME.jsonl.
notify_peer() {
	local sock=$T_DIR/$1.sock
	: >"$T_DIR/$1.jsonl"
	"$PY" "$ROOT/tests/tools/notify_peer.py" --socket "$sock" --log "$T_DIR/$1.jsonl" \
		>>"$T_DIR/$1.out" 2>&1 &
	for _ in $(seq 1 100); do [[ -S $sock ]] && return 0; sleep 0.1; done
	die "notify_peer.py did not start (see $T_DIR/$1.out)"
}
# nq LOG EXPR: a Python expression over rs (the notifications, in order).
nq() { jl "$1" "$2"; }

# ---- meterd ------------------------------------------------------------------
# Its database does not exist yet: it must wait, say so, and not be ready.
LATE_DB=${T_DB}_late
LATE_URL="postgresql://$PGUSER@$PGHOST:$PGPORT/$LATE_DB"
notify_peer md
export NOTIFY_SOCKET=$T_DIR/md.sock WATCHDOG_USEC=1000000
meterd_start a --database-url "$LATE_URL"
unset NOTIFY_SOCKET WATCHDOG_USEC
MD=${MD_PID[a]}
wait_jl "STATUS=waiting for the database" 60 "$T_DIR/md.jsonl" \
	'any("waiting for the database" in r["fields"].get("STATUS", "") for r in rs)' ||
	die "meterd did not report waiting for its database"
check_eq "READY=1 while the database is missing" False \
	"$(nq "$T_DIR/md.jsonl" 'any(r["fields"].get("READY") == "1" for r in rs)')"
# In a locale other than C (C.utf8: a libc collation every Debian has), as
# the postgres Docker image's en_US.utf8: the key columns must still sort in
# "C" (sql/009_key_collation.sql), checked after READY=1 below.
psql -XAtq -v ON_ERROR_STOP=1 -d "$METER_DATABASE_URL" \
	-c "CREATE DATABASE $LATE_DB TEMPLATE template0 LOCALE 'C.utf8'" >/dev/null
wait_jl "READY=1" 60 "$T_DIR/md.jsonl" 'any(r["fields"].get("READY") == "1" for r in rs)' ||
	die "meterd never said READY=1"
check_eq "the schema is migrated when READY=1 comes" t \
	"$(psql -XAtq -d "$LATE_URL" -c "SELECT to_regclass('public.tenants') IS NOT NULL")"
# Every text column of an index or a foreign key, outside partitions.
KEYCOLS="FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
	WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
	  AND NOT c.relispartition AND a.atttypid = 'text'::regtype
	  AND (EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND a.attnum = ANY (i.indkey))
	    OR EXISTS (SELECT 1 FROM pg_constraint k WHERE k.contype = 'f'
	                AND ((k.conrelid = c.oid AND a.attnum = ANY (k.conkey))
	                  OR (k.confrelid = c.oid AND a.attnum = ANY (k.confkey)))))"
check_eq "the key columns of a C.utf8 database sort in C (none in another collation)" "" \
	"$(psql -XAtq -d "$LATE_URL" -c "SELECT string_agg(c.relname || '.' || a.attname, ' ')
	   $KEYCOLS AND a.attcollation <> 'pg_catalog.\"C\"'::regcollation")"
check "the key columns checked include rollups.tenant_id and event_ids.event_id" \
	test "$(psql -XAtq -d "$LATE_URL" -c "SELECT count(*) $KEYCOLS
	   AND (c.relname, a.attname) IN (('rollups', 'tenant_id'), ('event_ids', 'event_id'))")" = 2
check_eq "READY=1 comes from meterd's pid, once, with a status" "True 1 True" \
	"$(nq "$T_DIR/md.jsonl" '(lambda rd: (all(r["pid"] == '"$MD"' for r in rd), len(rd), "consuming" in rd[0]["fields"].get("STATUS", "")))([r for r in rs if r["fields"].get("READY") == "1"])' | tr -d '(),')"
check "meterd feeds the watchdog: 3 WATCHDOG=1 after READY=1 (WATCHDOG_USEC=1s)" \
	wait_jl "3 WATCHDOG=1 after READY=1" 30 "$T_DIR/md.jsonl" \
	'sum(1 for r in rs[[i for i, r in enumerate(rs) if r["fields"].get("READY") == "1"][0]:] if r["fields"].get("WATCHDOG") == "1") >= 3'

meterd_kill a HUP
check "SIGHUP: RELOADING=1 then READY=1 again" wait_jl "RELOADING=1 then READY=1" 30 "$T_DIR/md.jsonl" \
	'(lambda i: i is not None and any(r["fields"].get("READY") == "1" for r in rs[i:]))(next((i for i, r in enumerate(rs) if r["fields"].get("RELOADING") == "1"), None))'
check "RELOADING=1 carries MONOTONIC_USEC" \
	test "$(nq "$T_DIR/md.jsonl" 'all("MONOTONIC_USEC" in r["fields"] for r in rs if r["fields"].get("RELOADING"))')" = True
check "meterd is still running after SIGHUP" meterd_alive a

meterd_stop a 60
check_eq "meterd exit code after SIGTERM" 0 "$MD_RC"
check_eq "STOPPING=1 sent once, after READY=1" "1 True" \
	"$(nq "$T_DIR/md.jsonl" '(lambda s: (len(s), bool(s) and s[0] > max(i for i, r in enumerate(rs) if r["fields"].get("READY") == "1")))([i for i, r in enumerate(rs) if r["fields"].get("STOPPING") == "1"])' | tr -d '(),')"

# ---- meter-notifier --------------------------------------------------------
notify_peer nt
export NOTIFY_SOCKET=$T_DIR/nt.sock WATCHDOG_USEC=1000000
notifier_start n --database-url "$LATE_URL" --notify-poll 60s
unset NOTIFY_SOCKET WATCHDOG_USEC
wait_jl "notifier READY=1" 60 "$T_DIR/nt.jsonl" 'any(r["fields"].get("READY") == "1" for r in rs)' ||
	die "meter-notifier never said READY=1"
check "meter-notifier said READY=1 after connecting" \
	grep -q "connected to the database" "$T_DIR/meterd-n.log"
# METER_NOTIFY_POLL is 60 s: the loop must wake for the watchdog anyway
# (every 250 ms, a ping every 500 ms). The bound on the gaps is loose (a
# loaded machine), but far below the 60 s the loop would sleep without it.
check "meter-notifier feeds the watchdog: 5 WATCHDOG=1" \
	wait_jl "5 WATCHDOG=1 from the notifier" 30 "$T_DIR/nt.jsonl" \
	'sum(1 for r in rs if r["fields"].get("WATCHDOG") == "1") >= 5'
check "... at most 2.5 s apart although METER_NOTIFY_POLL is 60 s" test True = \
	"$(nq "$T_DIR/nt.jsonl" '(lambda t: max(b - a for a, b in zip(t, t[1:])) < 2.5)([r["t"] for r in rs if r["fields"].get("WATCHDOG") == "1"][:5])')"
meterd_stop n 60
check_eq "meter-notifier exit code after SIGTERM" 0 "$MD_RC"
check_eq "meter-notifier sent STOPPING=1" True \
	"$(nq "$T_DIR/nt.jsonl" 'any(r["fields"].get("STOPPING") == "1" for r in rs)')"

# ---- a fault -------------------------------------------------------------------
# meterd dying of SIGSEGV writes the signal and its stack to stderr, then dies
# of the signal as before (common/crash.c). It waits for a database that
# does not answer meanwhile. Not in a sanitized build, which keeps the
# sanitizer's handler.
if ! nm "$METERD" 2>/dev/null | grep -q __asan_init; then
	METER_DATABASE_URL="postgresql://$PGUSER@127.0.0.1:1/none" "$METERD" \
		>"$T_DIR/crash.out" 2>&1 &
	CRASH_PID=$!
	for _ in $(seq 1 100); do grep -q "retrying in" "$T_DIR/crash.out" && break; sleep 0.1; done
	check "meterd waits for its database" grep -q "retrying in" "$T_DIR/crash.out"
	kill -SEGV "$CRASH_PID"
	rc=0
	wait "$CRASH_PID" || rc=$?
	check_eq "meterd's exit status after SIGSEGV (128 + 11)" 139 "$rc"
	check "meterd wrote the signal and its thread" \
		grep -q "^meterd: fatal signal SEGV at address 0x[0-9a-f]* in thread meterd; stack:$" "$T_DIR/crash.out"
	check "... and its stack, a frame in meterd itself" grep -qE "/meterd\(.*\)\[0x[0-9a-f]+\]$" "$T_DIR/crash.out"
	check "the test's resolver names crash.c's handler" grep -q "on_fault at .*crash.c" \
		<(crash_stack "$T_DIR/crash.out")
fi

# ---- the unit files -----------------------------------------------------------
UNITS=$ROOT/deploy/systemd
# unit_value FILE KEY: the last value of KEY.
unit_value() { awk -F= -v k="$2" '$1 == k {v = substr($0, length(k) + 2)} END {print v}' "$1"; }
# seconds "60s" / "2min" / "5min" -> seconds
secs() { case $1 in *min) echo $((${1%min} * 60)) ;; *s) echo "${1%s}" ;; *) echo "$1" ;; esac; }
GRACE_S=$(($("$METERD" --config-reference | awk -F'|' '$2 ~ /METER_SHUTDOWN_GRACE/ {gsub(/[ `s]/, "", $5); print $5}')))
check "the default shutdown grace is known ($GRACE_S s)" test "$GRACE_S" -gt 0
VERIFY=$T_DIR/units
mkdir -p "$VERIFY"
for u in meterd meter-notifier meter-api; do
	f=$UNITS/$u.service
	check "$u.service exists" test -f "$f" || continue
	check_eq "$u: Type" notify "$(unit_value "$f" Type)"
	check_eq "$u: ExecStart" "/usr/local/bin/$u" "$(unit_value "$f" ExecStart)"
	check_eq "$u: Restart" on-failure "$(unit_value "$f" Restart)"
	check_eq "$u: EnvironmentFile" "-/etc/meterd/meterd.env" "$(unit_value "$f" EnvironmentFile)"
	check_eq "$u: config file" "METER_CONFIG_FILE=/etc/meterd/meterd.conf" "$(unit_value "$f" Environment)"
	stop=$(secs "$(unit_value "$f" TimeoutStopSec)")
	check "$u: TimeoutStopSec ($stop s) leaves room after the shutdown grace ($GRACE_S s)" \
		test "$stop" -ge $((GRACE_S + 10))
	for k in NoNewPrivileges ProtectSystem DynamicUser; do
		check "$u: $k set" test -n "$(unit_value "$f" "$k")"
	done
	# systemd-analyze needs the binary to exist: verify a copy that runs /bin/true.
	sed "s|^ExecStart=.*|ExecStart=/bin/true|" "$f" >"$VERIFY/$u.service"
	out=$(systemd-analyze verify "$VERIFY/$u.service" 2>&1) || true
	check_eq "$u: systemd-analyze verify says nothing" "" "$out"
	exposure=$(systemd-analyze security --offline=true "$VERIFY/$u.service" 2>&1 |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
	check "$u: systemd-analyze security exposure ${exposure:-?} <= 2.5" \
		awk -v e="${exposure:-99}" 'BEGIN {exit !(e <= 2.5)}'
done
for u in meterd meter-notifier; do
	check "$u: WatchdogSec set" test -n "$(unit_value "$UNITS/$u.service" WatchdogSec)"
	check_eq "$u: ExecReload (SIGHUP reloads)" '/bin/kill -HUP $MAINPID' \
		"$(unit_value "$UNITS/$u.service" ExecReload)"
done
test_done
