#!/usr/bin/env bash
# tests/bench/run-bench-fleet.sh: `make bench-fleet` (docs/FLEET.md). Durable
# NV_Increment latency (one guest) and aggregate throughput (64 guests, one
# outstanding command each: the workload of `make bench`'s nvmulti) on the
# etcd backend beside LMDB, on this machine: vtpmd on LMDB in /var/tmp, and
# vtpmd on a three-member etcd cluster on loopback (data in /var/tmp, etcd's
# default fsync per commit). Prints the figures; asserts nothing.
#   BENCH_QUICK=1: 8 guests, 2 s; KEEP=1 keeps the scratch directory.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${BUILD:-$TOP/build}
BB=$B/bench
W=$(mktemp -d /var/tmp/vtpm-bench-fleet.XXXXXX)
if [ -n "${BENCH_QUICK:-}" ]; then GUESTS=8 SECONDS_=2; else GUESTS=64 SECONDS_=6; fi
PY=/usr/bin/python3
MAINPID=$BASHPID
cleanup() {
	local p
	[ "$BASHPID" = "$MAINPID" ] || return 0
	for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null; done
	sleep 0.5
	for p in $(jobs -p); do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ -n "${KEEP:-}" ]; then echo "scratch directory kept: $W"; else rm -rf "$W"; fi
}
trap cleanup EXIT
command -v etcd >/dev/null || { echo "bench-fleet: etcd is not installed"; exit 1; }

wait_sock() { local i; for i in $(seq 400); do [ -S "$1" ] && return 0; sleep 0.05; done; return 1; }
port_free() { $PY -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError: sys.exit(1)' "$1"; }
for try in $(seq 50); do
	BASE=$((30000 + (RANDOM % 2000) * 10)); ok=1
	for i in 0 1 2 3 4 5; do port_free $((BASE + i)) || { ok=0; break; }; done
	[ $ok -eq 1 ] && break
done
CLUSTER="e0=http://127.0.0.1:$((BASE + 3)),e1=http://127.0.0.1:$((BASE + 4)),e2=http://127.0.0.1:$((BASE + 5))"
EPS="http://127.0.0.1:$BASE,http://127.0.0.1:$((BASE + 1)),http://127.0.0.1:$((BASE + 2))"
for n in 0 1 2; do
	etcd --name "e$n" --data-dir "$W/etcd$n" \
		--listen-client-urls "http://127.0.0.1:$((BASE + n))" \
		--advertise-client-urls "http://127.0.0.1:$((BASE + n))" \
		--listen-peer-urls "http://127.0.0.1:$((BASE + 3 + n))" \
		--initial-advertise-peer-urls "http://127.0.0.1:$((BASE + 3 + n))" \
		--initial-cluster "$CLUSTER" --initial-cluster-state new \
		--initial-cluster-token "vtpm-bench-$BASE" --max-txn-ops 1024 \
		>>"$W/etcd$n.log" 2>&1 &
done
for i in $(seq 100); do
	curl -s -m 2 -X POST "http://127.0.0.1:$BASE/v3/kv/range" -d '{"key":"AA=="}' |
		grep -q revision && break
	sleep 0.2
done

start() {	# NAME [args]
	local n=$1; shift
	mkdir -p "$W/$n"
	"$B/vtpmd" --dev --state-dir "$W/$n/state" --listen "unix:$W/$n/v.sock" \
		--admin "unix:$W/$n/a.sock" --idle-timeout 3600 "$@" >>"$W/$n/vtpmd.log" 2>&1 &
	VP=$!
	wait_sock "$W/$n/v.sock" || { echo "vtpmd $n did not start"; tail "$W/$n/vtpmd.log"; exit 1; }
}
echo "== bench-fleet: durable NV_Increment, LMDB vs etcd (3 members, loopback), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)"
start lmdb
VL=$VP
start etcd --store "etcd:$EPS" --etcd-node bench --etcd-max-txn-ops 1024
VE=$VP
for s in lmdb etcd; do
	v=$VL; [ $s = etcd ] && v=$VE
	"$BB/vtpm-bench" nvmulti --server "unix:$W/$s/v.sock" --vtpmd-pid "$v" \
		--n 1 --seconds "$SECONDS_" --label "$s.1" --base 40
	"$BB/vtpm-bench" nvmulti --server "unix:$W/$s/v.sock" --vtpmd-pid "$v" \
		--n "$GUESTS" --seconds "$SECONDS_" --label "$s.$GUESTS" --base 50
done 2>&1 | grep -E '^R |: [0-9]+ guests'
