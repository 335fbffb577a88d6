#!/usr/bin/env bash
# tests/fleet/test_fleet_batches.sh: a busy group commit against etcd's
# --max-txn-ops. etcd refuses a txn with more compares or writes than that
# limit; vtpmd (--etcd-max-txn-ops, default 128 as in etcd) commits a group
# before it outgrows a fifth of it, so 16 guests writing at once against an
# etcd run with --max-txn-ops 32 are all served. The control tells vtpmd a
# larger limit than etcd has: its groups are refused, so the check can fail.
# Part of `make check-fleet`; needs etcd. About 30 s.
. "$(dirname "$0")/../e2e/lib.sh"
t_init fleet_batches

if ! command -v etcd >/dev/null; then
	echo "fleet_batches: etcd is not installed (apt-get install etcd-server)"
	fail "etcd available"
	t_done
	exit 1
fi
BENCH=$B/bench/vtpm-bench
[ -x "$BENCH" ] || { fail "$BENCH built (make check-fleet builds it)"; t_done; exit 1; }

port_free() { $PY -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"; }
for try in $(seq 50); do
	BASE=$((24000 + (RANDOM % 2000) * 2))
	port_free $BASE && port_free $((BASE + 1)) && break
done
EP="http://127.0.0.1:$BASE"
etcd --name e0 --data-dir "$T/etcd" --listen-client-urls "$EP" --advertise-client-urls "$EP" \
	--listen-peer-urls "http://127.0.0.1:$((BASE + 1))" \
	--initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 1))" \
	--initial-cluster "e0=http://127.0.0.1:$((BASE + 1))" --initial-cluster-state new \
	--max-txn-ops 32 >>"$T/etcd.log" 2>&1 &
T_PIDS+=($!)
up() { curl -s -m 2 -X POST "$EP/v3/kv/range" -d '{"key":"AA=="}' | grep -q revision; }
for i in $(seq 100); do up && break; sleep 0.2; done
check "etcd (--max-txn-ops 32) is up" up

# start_v NAME MAXOPS: a vtpmd on the etcd, told etcd's limit is MAXOPS
start_v() {
	mkdir -p "$T/$1"
	"$B/vtpmd" --dev --state-dir "$T/$1/state" --key-provider "file:$T/root.key" \
		--listen "unix:$T/$1/v.sock" --admin "unix:$T/$1/a.sock" \
		--store "etcd:$EP" --etcd-node "$1" --etcd-max-txn-ops "$2" \
		--idle-timeout 600 >>"$T/$1/vtpmd.log" 2>&1 &
	T_PIDS+=($!)
	VP=$!
	wait_for_socket "$T/$1/v.sock"
}
(umask 077 && head -c 32 /dev/urandom >"$T/root.key")

start_v right 32
V1=$VP
"$BENCH" nvmulti --server "unix:$T/right/v.sock" --vtpmd-pid "$V1" --n 16 --seconds 3 \
	--label right --base 60 --threads 4 >"$T/right.out" 2>"$T/right.err"
check_eq "16 guests writing NV at once are all served (exit status of vtpm-bench nvmulti)" "$?" 0
grep -E "guests, [0-9]+ durable" "$T/right.err" | sed 's/^/    /'
check "  and writes went through" grep -qE "^R nvmulti.right.ops [1-9]" "$T/right.out"
check "  no group commit failed" fails_ grep -q "group commit of .* failed" "$T/right/vtpmd.log"

start_v wrong 100000
V2=$VP
"$BENCH" nvmulti --server "unix:$T/wrong/v.sock" --vtpmd-pid "$V2" --n 16 \
	--seconds 3 --label wrong --base 80 --threads 4 >"$T/wrong.out" 2>"$T/wrong.err"
check_ne "control: told a larger limit than etcd has, the same load fails" "$?" 0
check "  because etcd refused a group commit" grep -q "group commit of .* failed" \
	"$T/wrong/vtpmd.log"
check "vtpmd (right limit) still runs" kill -0 "$V1"
t_done
