#!/usr/bin/env bash
# tests/fleet/test_fleet.sh: `make check-fleet` (docs/FLEET.md). A three-member
# etcd cluster and three vtpmd processes on loopback, all started and stopped
# here, one guest identity moving between them:
#   1. kill -9 the owning vtpmd during an NV-write loop: the guest reattaches
#      through another vtpmd once the lease expires and finds every
#      acknowledged write;
#   2. SIGSTOP the owner, let a third vtpmd take over, SIGCONT: the old
#      owner's pending write is refused (the guest gets an error, nothing is
#      acknowledged) and it stops serving the instance;
#   3. stop one etcd member: writes go on; stop a second: writes fail and
#      nothing acknowledged is lost once the members are back.
# Needs etcd (Debian's etcd-server). Lease TTL 3 s so the whole test takes
# about two minutes.
. "$(dirname "$0")/../e2e/lib.sh"
t_init fleet

if ! command -v etcd >/dev/null; then
	echo "fleet: etcd is not installed (apt-get install etcd-server)"
	fail "etcd available"
	t_done
	exit 1
fi

TTL=3
# ---- ports: six free ones in a row (three client, three peer) ------------
port_free() { $PY -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"; }
for try in $(seq 50); do
	BASE=$((20000 + (RANDOM % 2000) * 10))
	ok=1
	for i in 0 1 2 3 4 5; do port_free $((BASE + i)) || { ok=0; break; }; done
	[ $ok -eq 1 ] && break
done
CP=($BASE $((BASE + 1)) $((BASE + 2)))
PP=($((BASE + 3)) $((BASE + 4)) $((BASE + 5)))
CLUSTER="e0=http://127.0.0.1:${PP[0]},e1=http://127.0.0.1:${PP[1]},e2=http://127.0.0.1:${PP[2]}"
ENDPOINTS="http://127.0.0.1:${CP[0]},http://127.0.0.1:${CP[1]},http://127.0.0.1:${CP[2]}"
declare -A EPID VPID

etcd_start() {	# N
	local n=$1
	etcd --name "e$n" --data-dir "$T/etcd$n" \
		--listen-client-urls "http://127.0.0.1:${CP[$n]}" \
		--advertise-client-urls "http://127.0.0.1:${CP[$n]}" \
		--listen-peer-urls "http://127.0.0.1:${PP[$n]}" \
		--initial-advertise-peer-urls "http://127.0.0.1:${PP[$n]}" \
		--initial-cluster "$CLUSTER" --initial-cluster-state new \
		--initial-cluster-token "vtpm-fleet-$BASE" \
		--heartbeat-interval 100 --election-timeout 1000 --max-txn-ops 1024 \
		>>"$T/etcd$n.log" 2>&1 &
	EPID[$n]=$!
	T_PIDS+=($!)
}
etcd_stop() { kill -TERM "${EPID[$1]}" 2>/dev/null; wait "${EPID[$1]}" 2>/dev/null; }
# etcd_healthy N: member N answers a linearizable read (so it has a leader)
etcd_healthy() {
	curl -s -m 2 -X POST "http://127.0.0.1:${CP[$1]}/v3/kv/range" -d '{"key":"AA=="}' |
		grep -q '"revision"'
}
wait_healthy() { local i; for i in $(seq 100); do etcd_healthy "$1" && return 0; sleep 0.2; done; return 1; }
# the member that leads, by index, from /v3/maintenance/status
etcd_leader() {
	local n st
	for n in 0 1 2; do
		st=$(curl -s -m 2 -X POST "http://127.0.0.1:${CP[$n]}/v3/maintenance/status" -d '{}') || continue
		$PY -c 'import json,sys
d=json.loads(sys.argv[1])
sys.exit(0 if d.get("leader") == d["header"]["member_id"] else 1)' "$st" 2>/dev/null && { echo "$n"; return 0; }
	done
	return 1
}

vtpmd_start() {	# N
	local n=$1
	rm -f "$T/v$n.sock"
	"$B/vtpmd" --dev --state-dir "$T/state$n" --key-provider "file:$T/root.key" \
		--listen "unix:$T/v$n.sock" --admin "unix:$T/a$n.sock" \
		--store "etcd:$ENDPOINTS" --etcd-node "n$n" --etcd-lease-ttl $TTL \
		--etcd-timeout-ms 4000 --idle-timeout 600 >>"$T/v$n.log" 2>&1 &
	VPID[$n]=$!
	T_PIDS+=($!)
	wait_for_socket "$T/v$n.sock" && wait_for_socket "$T/a$n.sock"
}
vctl() { local n=$1; shift; "$B/vtpmctl" --admin "$T/a$n.sock" "$@"; }

# guest G VTPMD: vtpm-guest for our one identity through vtpmd N, local socket $T/G.sock
guest_start() {
	local g=$1 n=$2
	rm -f "$T/$g.sock"
	"$B/vtpm-guest" --server "unix:$T/v$n.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn 42 32)" \
		--sim-launch-id "$(hexn 43 32)" --socket "$T/$g.sock" >>"$T/$g.log" 2>&1 &
	GUEST_PID[$g]=$!
	T_PIDS+=($!)
}
# wait_attached G [tries of 100 ms]: guest G serves a working TPM
wait_attached() {
	local i
	for i in $(seq "${2:-300}"); do
		[ -S "$T/$1.sock" ] && tpm "$1" getrandom --hex 4 >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# incr G: one NV write through guest G; fails if not acknowledged within 30 s
# (a guest whose vtpmd is gone holds commands while it reconnects)
incr() { timeout 30 env LD_PRELOAD=$TPM_PRELOAD tpm2_nvincrement -T "vtpm:$T/$1.sock" \
	-C o $NV_COUNTER >/dev/null 2>&1; }
NAME=$(inst_name 42)

# ---- the cluster and the fleet ------------------------------------------
for n in 0 1 2; do etcd_start $n; done
check "three-member etcd cluster is up" wait_healthy 0
wait_healthy 1 && wait_healthy 2
# the backend's semantics, two store handles on the live cluster
"$B/tests/test_store_etcd" "$ENDPOINTS" >"$T/unit.log" 2>&1
grep FAIL "$T/unit.log" | head -n 20
check "test_store_etcd: $(tail -n 1 "$T/unit.log")" grep -q "store_etcd: [0-9]* passed, 0 failed" "$T/unit.log"
vtpmd_start 1
check "vtpmd 1 serves on etcd" grep -q "ready (store: .*, etcd)" "$T/v1.log"
vtpmd_start 2
vtpmd_start 3
check "three vtpmd share one root key (store accepted it)" \
	grep -q "opens the store: serving" "$T/v3.log"

guest_start g1 1
check "guest attaches through vtpmd 1" wait_attached g1
check "NV counter defined" nv_counter_define g1
owner=$(vctl 2 --json show "$NAME" 2>/dev/null |
	$PY -c 'import json,sys; print(json.load(sys.stdin)["instance"]["owner"])' 2>/dev/null)
check_eq "vtpmctl show on another vtpmd names the owner" "${owner%%/*}" "n1"
vctl 3 list >"$T/list3.txt" 2>&1
check "vtpmctl list on vtpmd 3 shows owner and lease" grep -q "n1/.* lease " "$T/list3.txt"

# a second guest with the same identity cannot attach elsewhere meanwhile
rm -f "$T/other.sock"
timeout 20 "$B/vtpm-guest" --server "unix:$T/v2.sock" --attestation sim \
	--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn 42 32)" \
	--sim-launch-id "$(hexn 43 32)" --socket "$T/other.sock" --no-retry >"$T/other.log" 2>&1
check "attach through a non-owner is refused, naming the owner" \
	grep -q "served by vtpmd n1/" "$T/other.log"

# ---- 1. kill -9 the owner during an NV-write loop ------------------------
acked=0
for i in $(seq 12); do incr g1 && acked=$((acked + 1)); done
( for i in $(seq 200); do incr g1 && echo ok >>"$T/loop-acks"; done ) &
LOOP=$!
for i in $(seq 300); do	# kill in the middle of the loop: after a few acknowledged writes
	[ "$(wc -l <"$T/loop-acks" 2>/dev/null || echo 0)" -ge 3 ] && break
	sleep 0.1
done
kill -9 "${VPID[1]}"
wait "${VPID[1]}" 2>/dev/null
sleep 0.5
kill "$LOOP" 2>/dev/null	# no new writes; the one in flight fails with its guest
kill -TERM "${GUEST_PID[g1]}" 2>/dev/null
wait $LOOP 2>/dev/null
wait "${GUEST_PID[g1]}" 2>/dev/null
acked=$((acked + $(wc -l <"$T/loop-acks" 2>/dev/null || echo 0)))
echo "    ($acked increments acknowledged before vtpmd 1 died)"
check "the loop's writes were acknowledged before the kill" test "$acked" -ge 15
guest_start g2 2
check "guest reattaches through vtpmd 2 once the lease expired" wait_attached g2 300
v=$((16#$(nv_counter_read g2)))
echo "    (counter after takeover: $v)"
check "every acknowledged write survived ($acked <= $v <= $acked + 1)" \
	test "$v" -ge "$acked" -a "$v" -le $((acked + 1))
check "vtpmd 2 logged its takeover after the lease" grep -q "attached to instance $NAME" "$T/v2.log"

# ---- 2. SIGSTOP the owner, take over, SIGCONT ----------------------------
base=$((16#$(nv_counter_read g2)))
kill -STOP "${VPID[2]}"
( incr g2; echo $? >"$T/stale-rc" ) &
STALE=$!
guest_start g3 3
check "vtpmd 3 takes over from the paused owner" wait_attached g3 300
n3=0
for i in 1 2 3; do incr g3 && n3=$((n3 + 1)); done
check_eq "writes through the new owner are acknowledged" "$n3" 3
M=$(log_mark "$T/v2.log")
kill -CONT "${VPID[2]}"
check "the old owner stops serving the instance" \
	wait_log "$T/v2.log" "$M" "ownership (lapsing or )?lost|no longer owned" 100
check "its worker is ended" wait_log "$T/v2.log" "$M" "worker [0-9]+ killed" 100
check "its queued write was not committed" \
	wait_log "$T/v2.log" "$M" "write refused|commit of [0-9]+ state blobs failed|worker [0-9]+ killed" 100
kill -TERM "${GUEST_PID[g2]}" 2>/dev/null	# it would only retry vtpmd 2, refused
wait $STALE 2>/dev/null
check_ne "the paused owner's pending write is not acknowledged" \
	"$(cat "$T/stale-rc" 2>/dev/null)" 0
v=$((16#$(nv_counter_read g3)))
check_eq "no stale write reached the store (counter = before + 3)" "$v" $((base + 3))
check "vtpmd 2 is still running (serves others)" kill -0 "${VPID[2]}"

# ---- 3. etcd members stop ------------------------------------------------
leader=$(etcd_leader) || leader=0
victim=$(( (leader + 1) % 3 ))
other=$(( (leader + 2) % 3 ))
etcd_stop $victim
before=$((16#$(nv_counter_read g3)))
n=0
for i in $(seq 5); do incr g3 && n=$((n + 1)); done
check_eq "one etcd member down: writes go on" "$n" 5
check_eq "one etcd member down: counter advanced" "$((16#$(nv_counter_read g3)))" $((before + 5))
acked=$((before + 5))
etcd_stop $other
stopped_at=$(date +%s)
n=0
for i in 1 2; do incr g3 && n=$((n + 1)); done
check_eq "two etcd members down: writes fail (not acknowledged)" "$n" 0
etcd_start $victim
etcd_start $other
check "etcd quorum is back" wait_healthy $victim
kill -TERM "${GUEST_PID[g3]}" 2>/dev/null
guest_start g4 3
check "the guest attaches again once etcd is back" wait_attached g4 400
v=$((16#$(nv_counter_read g4)))
echo "    (counter after the outage: $v, acknowledged $acked)"
check "nothing acknowledged is lost ($acked <= $v <= $acked + 2)" \
	test "$v" -ge "$acked" -a "$v" -le $((acked + 2))
check "writes work again" incr g4

# ---- release: the instance moves without an export file ------------------
kill -TERM "${GUEST_PID[g4]}" 2>/dev/null
wait "${GUEST_PID[g4]}" 2>/dev/null
check "vtpmctl release saves the state and gives up ownership" \
	quiet vctl 3 release "$NAME"
vtpmd_start 1
guest_start g5 1
check "after release the guest attaches through vtpmd 1 at once" wait_attached g5 100
check_eq "and finds its state" "$((16#$(nv_counter_read g5)))" "$((v + 1))"

# ---- backup and restore on etcd; freshness -------------------------------
vctl 2 backup "$T/fleet.vbak" >"$T/backup.out" 2>&1
check_eq "hot backup through a vtpmd that does not own the instance" "$?" 0
check "the backup verifies" quiet vctl 2 verify "$T/fleet.vbak"
check "a write after the backup" incr g5
vctl 3 restore "$T/fleet.vbak" >"$T/restore.out" 2>&1
check_eq "restoring the older backup over the store's newer state is refused" "$?" 1
check "the refusal says why" grep -q "its permanent state is older" "$T/restore.out"
check_eq "the store kept the newest state" "$((16#$(nv_counter_read g5)))" "$((v + 2))"
vctl 2 delete "$NAME" >"$T/delete.out" 2>&1
check_eq "delete through a vtpmd that does not own the instance is refused" "$?" 1
check_eq "and changes nothing" "$((16#$(nv_counter_read g5)))" "$((v + 2))"

for n in 1 2 3; do kill -TERM "${VPID[$n]}" 2>/dev/null; done
for n in 0 1 2; do etcd_stop $n; done
t_done
