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
# snap: the audit log into $T/audit.json once; q FILTER: jq on that snapshot
snap() { audit_json >"$T/audit.json"; }
q() { jq -r "$@" "$T/audit.json"; }
qe() { jq -e "$@" "$T/audit.json" >/dev/null; }
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
snap
check_eq "the 40-day-old records are gone" \
	"$(q '[.events[] | select(.detail | test("40 days old"))] | length')" 0
check_eq "the 2-day-old records stay" \
	"$(q '[.events[] | select(.detail | test("2 days old"))] | length')" 3
check "the prune record says what went and why" \
	qe '.events[] | select(.event == "audit-prune") | .detail |
		test("5 oldest audit records deleted \\(sequence 1\\.\\.5, .*5 older than 30 days")'
check "it carries no operator (vtpmd itself pruned)" \
	qe '[.events[] | select(.event == "audit-prune") | has("uid")] == [false]'
stop_vtpmd
start_vtpmd --audit-retention 30 || fail "vtpmd restarts"
sleep 1.5	# a retention check runs within a second of the first commit
snap
check_eq "after a restart: still no 40-day-old record" \
	"$(q '[.events[] | select(.detail | test("40 days old"))] | length')" 0
check_eq "after a restart: one prune record, nothing pruned again" \
	"$(q '[.events[] | select(.event == "audit-prune")] | length')" 1
check_eq "the oldest kept record is sequence 6" "$(q '.events[0].seq')" 6
stop_vtpmd

# ---- by count: the newest N stay ------------------------------------------------
start_vtpmd --audit-max-records 4 || fail "vtpmd starts with --audit-max-records 4"
snap
START=$(q '.events[-1].seq')
enrol_n 1 4
check "events beyond the limit are pruned in the commit path" \
	wait_events "(.events | length) <= 5 and ([.events[] | select(.event == \"audit-prune\" and .seq > $START)] | length) >= 1"
snap
check "the prune record gives the count limit as the reason" \
	qe '[.events[] | select(.event == "audit-prune") | .detail | test("beyond the limit of 4 records")] | any'
check_eq "the newest records are still there (enrol and delete of r4)" \
	"$(q '[.events[] | select(.instance == "r4")] | length')" 2
LAST_SEQ=$(q '.events[-1].seq')
check "sequence numbers only grow (no restart at 1)" [ "$LAST_SEQ" -gt "$START" ]
enrol_n 5 5
check "later events get higher sequence numbers and the log stays bounded" \
	wait_events "([.events[] | select(.seq > $LAST_SEQ)] | length) >= 2 and (.events | length) <= 5"
stop_vtpmd
start_vtpmd || fail "vtpmd restarts without retention"
snap
N=$(q '.events | length')
check "the pruned log is durable across a restart" [ "$N" -le 6 ]
sleep 1.5
snap
check_eq "without retention settings nothing more is pruned" "$(q '.events | length')" "$N"
stop_vtpmd
t_done
