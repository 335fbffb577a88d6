#!/usr/bin/env bash
# test_audit_retention.sh: the audit log does not grow forever (issue 7):
# --audit-retention DAYS deletes records older than that, --audit-max-records
# N keeps the newest N; both in the ordinary group commit, with an
# "audit-prune" record saying what went; sequence numbers keep growing; the
# result survives a restart; the vtpmd.conf keys work and bad values are
# refused. Prints "audit_retention: N passed, M failed".
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ops_lib.sh"
t_init audit_retention
ST="$B/tests/vtpm-storetool"

audit_json() { vtpmctl --json audit --limit 100000 | jq -s '{events: .}'; }
n_events() { audit_json | jq '.events | length'; }
n_event() { audit_json | jq --arg e "$1" '[.events[] | select(.event == $e)] | length'; }
# wait_events JQ_FILTER [tries of 100 ms]: the audit reply matches the filter
wait_events() {
	local i
	for i in $(seq "${2:-50}"); do
		audit_json | jq -e "$1" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "    (audit never matched $1: $(audit_json | jq -c '[.events[] | [.seq, .event]]' | cut -c1-300))"
	return 1
}
enrol_n() {	# FROM TO: enrol and delete instances: two events each
	local i
	for i in $(seq "$1" "$2"); do
		vtpmctl enroll "r$i" --measurement "$(hexn 11 48)" \
			--host-data "$(printf '%02x' "$i")$(hexn 00 31)" >/dev/null || return 1
		vtpmctl delete "r$i" >/dev/null || return 1
	done
}

# ---- bad values are refused --------------------------------------------------
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" --audit-retention -1 -n >"$T/n1.out" 2>&1
check_ne "--audit-retention -1 is refused" "$?" 0
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" --audit-max-records x -n >"$T/n2.out" 2>&1
check_ne "--audit-max-records x is refused" "$?" 0
printf 'audit-retention = 30\naudit-max-records = 1000\n' >"$T/ok.conf"
"$B/vtpmd" --config "$T/ok.conf" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" -n >"$T/n3.out" 2>&1
check_eq "vtpmd.conf: audit-retention and audit-max-records are accepted keys" "$?" 0

# ---- by age: records older than the retention go, the rest stay --------------
"$ST" audit-add "$T/state" 40 5 && "$ST" audit-add "$T/state" 2 3
check_eq "the store holds 8 old records before vtpmd starts" "$?" 0
start_vtpmd --audit-retention 30 || fail "vtpmd starts"
check "an audit-prune record appears" wait_events '[.events[] | select(.event == "audit-prune")] | length == 1'
check_eq "the 40-day-old records are gone" \
	"$(audit_json | jq '[.events[] | select(.detail | test("40 days old"))] | length')" 0
check_eq "the 2-day-old records stay" \
	"$(audit_json | jq '[.events[] | select(.detail | test("2 days old"))] | length')" 3
check "the prune record says what went and why" \
	wait_events '.events[] | select(.event == "audit-prune") | .detail |
		test("5 oldest audit records deleted \\(sequence 1\\.\\.5, .*5 older than 30 days")'
check "it carries no operator (vtpmd itself pruned)" \
	wait_events '[.events[] | select(.event == "audit-prune") | has("uid")] == [false]'
stop_vtpmd
start_vtpmd --audit-retention 30 || fail "vtpmd restarts"
check_eq "after a restart: still no 40-day-old record" \
	"$(audit_json | jq '[.events[] | select(.detail | test("40 days old"))] | length')" 0
check_eq "after a restart: one prune record, nothing pruned again" "$(n_event audit-prune)" 1
FIRST=$(audit_json | jq '.events[0].seq')
check_eq "the oldest kept record is sequence 6" "$FIRST" 6
stop_vtpmd

# ---- by count: the newest N stay ------------------------------------------------
start_vtpmd --audit-max-records 10 || fail "vtpmd starts with --audit-max-records 10"
START=$(audit_json | jq '.events[-1].seq')
enrol_n 1 12
check "events beyond the limit are pruned in the commit path" \
	wait_events "(.events | length) <= 11 and ([.events[] | select(.event == \"audit-prune\" and .seq > $START)] | length) >= 1"
check "the prune record gives the count limit as the reason" \
	wait_events '[.events[] | select(.event == "audit-prune") | .detail | test("beyond the limit of 10 records")] | any'
LAST_SEQ=$(audit_json | jq '.events[-1].seq')
check "the newest record is still there (enrol/delete of r12)" \
	wait_events '[.events[] | select(.instance == "r12")] | length == 2'
check "sequence numbers only grow (no restart at 1)" [ "$LAST_SEQ" -gt 24 ]
check "no record older than the prune survives beyond the limit" [ "$(n_events)" -le 11 ]
enrol_n 13 13
check "a later event gets a higher sequence number" \
	wait_events "[.events[] | select(.seq > $LAST_SEQ)] | length >= 2"
check "the log stays bounded (pruned again at the next commit check)" \
	wait_events '(.events | length) <= 11'
stop_vtpmd
start_vtpmd || fail "vtpmd restarts without retention"
check "the pruned log is durable across a restart" [ "$(n_events)" -le 12 ]
check_eq "without retention settings nothing more is pruned" \
	"$(audit_json | jq '[.events[] | select(.event == "audit-prune")] | length')" \
	"$(sleep 1.5; audit_json | jq '[.events[] | select(.event == "audit-prune")] | length')"
stop_vtpmd
t_done
