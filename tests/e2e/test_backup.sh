#!/usr/bin/env bash
# test_backup.sh: backup, verify and restore (issue 7, acceptance):
#  - a backup taken during a live NV-write loop from several guests restores
#    to a state in which every instance equals some point of its own history
#    at or after the last write acknowledged before the backup began;
#  - `vtpmctl verify` finds a single flipped byte anywhere in the file (a
#    sample of positions: header, every manifest entry, inside every
#    instance's record and blobs, the trailer) and names the instance;
#  - restoring an older backup over newer state is refused without --force,
#    and with it the audit log says so; a refused restore changes nothing
#    (all or nothing, even for instances it would have created).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ops_lib.sh"
t_init backup
BK="$PY $(dirname "$0")/bkfile.py"

hexval() { [ -n "$1" ] && echo $((16#$1)) || echo -1; }

# nv_loop NAME: increments the guest's NV counter until $T/stop exists and
# logs the counter's value after every acknowledged increment (one TPM
# command per step: the value is the one read at the start plus the
# increments acknowledged since; a failed increment changes nothing).
nv_loop() {
	local name=$1 v
	v=$(hexval "$(nv_counter_read "$name")")
	while [ ! -e "$T/stop" ]; do
		if nv_counter_incr "$name"; then
			v=$((v + 1))
			echo "$v" >>"$T/$name.acked"
		fi
	done
}

start_vtpmd
GUESTS="g1 g2 g3"
HB=([1]=41 [2]=42 [3]=43)
for i in 1 2 3; do
	start_guest "g$i" "${HB[$i]}" 01
	nv_counter_define "g$i"
	nv_counter_incr "g$i"
done
check "three guests attached, counters defined" [ "$(nv_counter_read g1)" != "" ]

# ---- a hot backup during the write loop ----------------------------------
LOOPS=()
for g in $GUESTS; do
	: >"$T/$g.acked"
	nv_loop "$g" &
	LOOPS+=($!)
	T_PIDS+=($!)
done
sleep 3
declare -A LOW HIGH NOW
for g in $GUESTS; do LOW[$g]=$(tail -n 1 "$T/$g.acked"); done
vtpmctl backup "$T/live.vbak" >"$T/backup.out" 2>&1
check_eq "backup during the write loop succeeds" "$?" 0
sleep 1
touch "$T/stop"
wait "${LOOPS[@]}" 2>/dev/null
for g in $GUESTS; do
	HIGH[$g]=$(hexval "$(nv_counter_read "$g")")
	check "$g: the loop wrote before and after the backup (${LOW[$g]:-none} .. ${HIGH[$g]})" \
		[ -n "${LOW[$g]}" ] && [ "${HIGH[$g]}" -gt "${LOW[$g]}" ]
done
check "backup output: only JSON lines when stdout is not a terminal" \
	$PY -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' "$T/backup.out"
check "backup progress lines: phase, done, total, rate, eta" \
	grep -q '"op":"backup","phase":"write","done":3,"total":3,"rate":' "$T/backup.out"
check "no temporary file left beside the backup" [ -z "$(ls -A "$T" | grep '^\.live')" ]
check "backup file is mode 0600" [ "$(stat -c %a "$T/live.vbak")" = 600 ]
vtpmctl verify "$T/live.vbak" >"$T/verify.out" 2>&1
check_eq "vtpmctl verify (offline): intact" "$?" 0
check "offline verify names 3 instances" grep -q '"instances":3' "$T/verify.out"
vtpmctl verify --with-keys "$T/live.vbak" >"$T/verify-keys.out" 2>&1
check_eq "vtpmctl verify --with-keys: every blob opens" "$?" 0

# ---- verify finds a flipped byte anywhere, and names the instance ----------
vtpmctl --json verify --layout "$T/live.vbak" >"$T/layout.jsonl"
$BK positions "$T/layout.jsonl" "$(stat -c %s "$T/live.vbak")" 25 >"$T/positions"
tested=0 missed=0 misnamed=0
while read -r off name; do
	tested=$((tested + 1))
	$BK flip "$T/live.vbak" "$T/flip.vbak" "$off"
	if "$B/vtpmctl" --json verify "$T/flip.vbak" >"$T/flip.out" 2>&1; then
		missed=$((missed + 1))
		echo "    (flip at $off not detected)"
	elif [ "$name" != "-" ] && ! grep -q "\"instance\":\"$name\"" "$T/flip.out"; then
		misnamed=$((misnamed + 1))
		echo "    (flip at $off in $name: $(head -c 300 "$T/flip.out"))"
	elif [ "$name" = "-" ] && ! grep -q '"damaged":"\(header\|trailer\|layout\)"' "$T/flip.out"; then
		misnamed=$((misnamed + 1))
		echo "    (flip at $off outside instances: $(head -c 300 "$T/flip.out"))"
	fi
done <"$T/positions"
check "verify detects every one of $tested single flipped bytes" [ "$missed" -eq 0 ]
check "verify names the instance (or the part) for every flipped byte" [ "$misnamed" -eq 0 ]
check "sample covers every instance's entry and data" \
	[ "$(awk '$2 != "-"' "$T/positions" | wc -l)" -ge 42 ]
# on a terminal: a progress bar and plain words (script(1) provides the tty)
script -qec "$B/vtpmctl verify $T/flip.vbak" /dev/null >"$T/flip-tty.out" 2>&1
check "on a terminal, verify says DAMAGED and names the instance" \
	grep -q "DAMAGED instance $(awk '$2 != "-" {n=$2} END {print n}' "$T/positions")" "$T/flip-tty.out"
$BK flip "$T/live.vbak" "$T/flip.vbak" 5
script -qec "$B/vtpmctl verify $T/flip.vbak" /dev/null >"$T/flip-tty2.out" 2>&1
check "a flipped header byte names the header, no instance" \
	grep -q "DAMAGED header (bytes 0..120, no instance)" "$T/flip-tty2.out"
script -qec "$B/vtpmctl --admin $T/admin.sock backup $T/tty.vbak" /dev/null >"$T/tty.out" 2>&1
check "on a terminal, backup draws a progress bar (done/total, rate)" \
	grep -qE 'backup +write +\[#+\] 3/3 +[0-9]+/s' "$T/tty.out"
check "on a terminal, no JSON lines" fails_ grep -q '^{"op"' "$T/tty.out"
vtpmctl restore "$T/flip.vbak" >"$T/restore-flip.out" 2>&1
check_eq "restore of a damaged file is refused before vtpmd reads it" "$?" 1

# ---- restore into a fresh vtpmd with the same root key ----------------------
for g in $GUESTS; do stop_guest "$g"; done
stop_vtpmd
mv "$T/state" "$T/state-orig"
mkdir -m 700 "$T/state"
cp -p "$T/state-orig/dev-root.key" "$T/state/dev-root.key"
start_vtpmd
vtpmctl restore "$T/live.vbak" >"$T/restore1.out" 2>&1
check_eq "restore into an empty store" "$?" 0
check "restore created 3 instances" grep -q '"new":3,"replaced":0' "$T/restore1.out"
for i in 1 2 3; do start_guest "g$i" "${HB[$i]}" 02; done
for g in $GUESTS; do
	NOW[$g]=$(hexval "$(nv_counter_read "$g")")
	check "$g: restored counter ${NOW[$g]} is a point of its history at or after the last write acknowledged before the backup (${LOW[$g]} .. ${HIGH[$g]})" \
		[ "${NOW[$g]}" -ge "${LOW[$g]}" ] && [ "${NOW[$g]}" -le "${HIGH[$g]}" ]
done

# ---- older over newer: refused, then --force, and the audit log says so ----
N1=$(inst_name 41)
nv_counter_incr g1; nv_counter_incr g1
AFTER=$(hexval "$(nv_counter_read g1)")
check "g1 moved past the backup (${NOW[g1]} -> $AFTER)" [ "$AFTER" -gt "${NOW[g1]}" ]
vtpmctl restore "$T/live.vbak" >"$T/restore2.out" 2>&1
check_eq "restore of an older backup over newer state: refused" "$?" 1
check "the refusal names $N1 and says why" \
	grep -q "{\"instance\":\"$N1\",\"why\":\"its permanent state is older" "$T/restore2.out"
check_eq "g1's newer state is untouched" "$(hexval "$(nv_counter_read g1)")" "$AFTER"
vtpmctl --json audit >"$T/audit1.jsonl"
check "audit: the refused restore is recorded" \
	grep -q '"event":"restore","result":"stale state (rollback detected)"' "$T/audit1.jsonl"
MARK=$(log_mark "$T/vtpmd.log")
vtpmctl restore --force "$T/live.vbak" >"$T/restore3.out" 2>&1
check_eq "restore --force" "$?" 0
check "vtpmd's log warns about the forced restore" wait_log "$T/vtpmd.log" "$MARK" "restore --force: instance $N1"
vtpmctl --json audit >"$T/audit2.jsonl"
check "audit: a forced restore record names $N1" \
	grep -q "\"event\":\"restore\",\"result\":\"ok\",\"forced\":true,\"uid\":[0-9]*,\"instance\":\"$N1\"" "$T/audit2.jsonl"
check "audit: the forced restore says FORCED" grep -q 'FORCED by the operator' "$T/audit2.jsonl"
script -qec "$B/vtpmctl --admin $T/admin.sock audit --since 10m" /dev/null >"$T/audit2.txt"
check "audit table (on a terminal) marks it [FORCED]" grep -q "restore .*$N1 .*\[FORCED\]" "$T/audit2.txt"
sleep 0.5	# the guest agent reconnects to the restored instance
check_eq "g1 is back at its backed-up state" "$(hexval "$(nv_counter_read g1)")" "${NOW[g1]}"

# ---- all or nothing: a refused restore creates nothing either ---------------
N3=$(inst_name 43)
stop_guest g3
vtpmctl delete "$N3" >/dev/null
nv_counter_incr g1
vtpmctl restore "$T/live.vbak" >"$T/restore4.out" 2>&1
check_eq "restore with one newer instance and one missing: refused" "$?" 1
check "the missing instance was not created (nothing half-restored)" fails_ vtpmctl show "$N3"

# ---- a backup of another root key is refused with keys ----------------------
stop_vtpmd
mv "$T/state" "$T/state-2"
start_vtpmd			# a fresh dev root key
vtpmctl verify --with-keys "$T/live.vbak" >"$T/foreign.out" 2>&1
check_eq "verify --with-keys under another root key: refused" "$?" 1
check "it says which root key the backup needs" grep -q "wrapped by root key" "$T/foreign.out"
vtpmctl restore "$T/live.vbak" >/dev/null 2>&1
check_eq "restore under another root key: refused" "$?" 1
check "vtpmd still running" vtpmd_alive
t_done
