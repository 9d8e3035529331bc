#!/usr/bin/env bash
# t_dedupe_race: another transaction inserts the same new (tenant, id) into
# event_ids while meterd's batch does (a producer keyed copies of an event
# by something other than its tenant, so they sit on two partitions read by
# two workers or processes). meterd's insert waits for the other and, once
# it commits, finds the pair taken: the copy is a duplicate. The event counts
# once, the batch's other events count, nothing stalls. Then two creators of
# a new month's event-log partition at once.
source "$(dirname "$0")/lib.sh"
test_init --partitions 2

meterd_start a
wait_schema
log_wait a "$(held_re 2)" 60 || die "meterd did not get its partitions"

# Another session takes (race, r-1) first and holds it uncommitted.
hold_begin "INSERT INTO event_ids (tenant_id, event_id, occurred_at) VALUES ('race', 'r-1', now());"
wait_for "the other session to hold (race, r-1)" 20 \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = '$T_DB' AND state LIKE 'idle in transaction%'" ||
	die "the holding session did not start"

NOW=$(utc_now)
D='"user_id":"u-1","api_key_id":"k-1","provider":"openai","model":"gpt-4o-mini","operation":"chat","input_tokens":100,"output_tokens":10'
printf 'race\t%s\n' "$(event r-1 race "$NOW" "$D")" "$(event r-2 race "$NOW" "$D")" >"$T_DIR/events"
produce_lines "$T_DIR/events"
wait_for "meterd's batch to wait for the held pair" 30 \
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = '$T_DB' AND application_name LIKE 'meterd-%' AND wait_event_type = 'Lock'" ||
	die "meterd's batch never waited for the held pair"
hold_end COMMIT

wait_for "both messages stored" 30 \
	"SELECT coalesce(sum(next_offset), 0) = 2 FROM consumer_offsets WHERE group_id = '$T_GROUP'" ||
	die "meterd did not store the batch"
check_eq "r-1 not counted by meterd (the other session's)" 0 "$(sql "SELECT count(*) FROM events WHERE event_id = 'r-1'")"
check_eq "r-2 counted" 1 "$(sql "SELECT count(*) FROM events WHERE event_id = 'r-2'")"
check_eq "the tenant's day rollup holds r-2 alone" "1 1" \
	"$(sql "SELECT events, requests FROM rollups WHERE tenant_id = 'race' AND subject_type = 'tenant' AND period = 'day'" | tr '|' ' ')"
check_eq "one (race, r-1) in event_ids" 1 "$(sql "SELECT count(*) FROM event_ids WHERE tenant_id = 'race' AND event_id = 'r-1'")"

# Two workers meet a month with no event-log partition yet: one creates it
# and holds the creators' lock until it commits; the other, waiting on that
# lock, must then find the partition rather than fail creating it again
# (seen as "relation events_YYYY_MM already exists" and a batch retried).
hold_begin "SELECT meter_ensure_event_partition('2031-01-15T00:00:00Z');"
wait_for "the first creator to hold the lock" 20 \
	"SELECT count(*) = 1 FROM pg_stat_activity WHERE datname = '$T_DB' AND state LIKE 'idle in transaction%'" ||
	die "the first creator did not start"
psql -XAtq -v ON_ERROR_STOP=1 -d "$T_DBURL" \
	-c "SELECT meter_ensure_event_partition('2031-01-20T00:00:00Z')" >"$T_DIR/second.out" 2>&1 &
second_pid=$!
wait_for "the second creator to wait for the lock" 20 \
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE datname = '$T_DB' AND application_name = 'psql' AND wait_event_type = 'Lock'" ||
	die "the second creator never waited"
hold_end COMMIT
second_rc=0
wait "$second_pid" || second_rc=$?
check_eq "the second creator succeeds once the first commits" "0 events_2031_01" \
	"$second_rc $(cat "$T_DIR/second.out")"
check_eq "one partition for January 2031" 1 \
	"$(sql "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass AND inhrelid = 'events_2031_01'::regclass")"
meterd_stop a
check_eq "meterd exit code on SIGTERM" 0 "$MD_RC"
test_done
