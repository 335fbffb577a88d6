#!/usr/bin/env bash
# tests/bench/ops_bench.sh: operator operations at scale (issue 7): restore,
# backup, offline verify and verify with keys of N instances, with times and
# the backup file size. Timing lives in the benchmark, never in `make check`.
#
# usage: tests/bench/ops_bench.sh [N] [BLOB_BYTES]
#   N           instances (default 10000)
#   BLOB_BYTES  plaintext size of each instance's permanent state (default 4096)
# environment: BUILD (default ./build: needs vtpmd and vtpmctl built),
#   OPS_BENCH_DIR (scratch directory; default a new one under /tmp, removed),
#   OPS_BENCH_NOSYNC=1 to run vtpmd with --unsafe-nosync (not durable).
# output: a Markdown table on stdout and, last, one line
#   ops_bench: {"instances":N,"blob_bytes":..,"restore_s":..,"backup_s":..,
#               "backup_bytes":..,"verify_offline_s":..,"verify_keys_s":..,
#               "backup_under_load_s":..}
# exit status 0 when every step succeeded.
#
# The N instances come from tests/bench/gen_backup.py: a backup written from
# docs/BACKUP-FORMAT.md by a second implementation, sealed with vtpmd's dev
# root key, so the first figure is a restore of N new instances (one
# transaction) and the format is cross-checked at scale. "under load" is the
# backup taken again while 3 instances' guests run an NV write loop.
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$TOP/build}
N=${1:-10000}
BLOB=${2:-4096}
PY=${PY:-python3}
[ -x /usr/bin/python3 ] && PY=/usr/bin/python3
export LD_LIBRARY_PATH="$B${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" TSS2_LOG=all+none
for p in vtpmd vtpmctl vtpm-guest; do
	[ -x "$B/$p" ] || { echo "ops_bench: $B/$p not built (make)" >&2; exit 2; }
done
if [ -n "${OPS_BENCH_DIR:-}" ]; then
	D=$OPS_BENCH_DIR
	mkdir -p "$D"
else
	D=$(mktemp -d /tmp/ops-bench.XXXXXX)
	trap 'kill $VPID $GPIDS 2>/dev/null; wait 2>/dev/null; rm -rf "$D"' EXIT
fi
VPID=
GPIDS=
fail() { echo "ops_bench: FAILED: $*" >&2; tail -n 20 "$D/vtpmd.log" >&2; exit 1; }
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | sed 's/^\./0./; s/\(\.[0-9][0-9][0-9]\).*/\1/'; }
ctl() { "$B/vtpmctl" --admin "$D/admin.sock" --json "$@"; }
hexn() { printf "$1%.0s" $(seq "$2"); }

mkdir -m 700 -p "$D/state"
head -c 32 /dev/urandom >"$D/state/dev-root.key"
chmod 600 "$D/state/dev-root.key"
"$B/vtpmd" --dev --state-dir "$D/state" --listen "unix:$D/vtpmd.sock" \
	--admin "unix:$D/admin.sock" --store-map-size 4096 --idle-timeout 5 \
	${OPS_BENCH_NOSYNC:+--unsafe-nosync} >"$D/vtpmd.log" 2>&1 &
VPID=$!
for i in $(seq 100); do [ -S "$D/admin.sock" ] && break; sleep 0.05; done

echo "generating $N instances ($BLOB-byte states) ..." >&2
$PY "$TOP/tests/bench/gen_backup.py" "$D/state/dev-root.key" "$D/seed.vbak" "$N" "$BLOB" ||
	fail "gen_backup.py"

t0=$(now)
ctl restore "$D/seed.vbak" >"$D/restore.out" 2>&1 || fail "restore: $(tail -n 1 "$D/restore.out")"
t1=$(now)
grep -q "\"new\":$N," "$D/restore.out" || fail "restore did not create $N instances"
RESTORE=$(secs "$t0" "$t1")

t0=$(now)
ctl backup "$D/b.vbak" >"$D/backup.out" 2>&1 || fail "backup: $(tail -n 1 "$D/backup.out")"
t1=$(now)
BACKUP=$(secs "$t0" "$t1")
BYTES=$(stat -c %s "$D/b.vbak")

t0=$(now)
ctl verify "$D/b.vbak" >"$D/verify.out" 2>&1 || fail "offline verify"
t1=$(now)
VOFF=$(secs "$t0" "$t1")

t0=$(now)
ctl verify --with-keys "$D/b.vbak" >"$D/verifyk.out" 2>&1 || fail "verify --with-keys"
t1=$(now)
VKEYS=$(secs "$t0" "$t1")

# the same backup while guests write
for g in 1 2 3; do
	"$B/vtpm-guest" --server "unix:$D/vtpmd.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "7$g" 32)" \
		--sim-launch-id "$(hexn 01 32)" --socket "$D/g$g.sock" >"$D/g$g.log" 2>&1 &
	GPIDS="$GPIDS $!"
done
sleep 1.5
for g in 1 2 3; do
	tpm2_nvdefine -T "vtpm:$D/g$g.sock" -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" 0x1500016 >/dev/null 2>&1
	( while [ ! -e "$D/stop" ]; do tpm2_nvincrement -T "vtpm:$D/g$g.sock" -C o 0x1500016 2>/dev/null; done ) &
	GPIDS="$GPIDS $!"
done
sleep 1
t0=$(now)
ctl backup "$D/b2.vbak" >"$D/backup2.out" 2>&1 || fail "backup under load"
t1=$(now)
touch "$D/stop"
LOAD=$(secs "$t0" "$t1")

cat <<EOF
| operation ($N instances, $BLOB-byte states) | time |
|---|---|
| restore into an empty store (one transaction) | ${RESTORE} s |
| backup (hot snapshot, written through vtpmctl) | ${BACKUP} s |
| backup file size | $BYTES bytes ($((BYTES / N)) per instance) |
| verify offline (checksums, structure) | ${VOFF} s |
| verify with keys (MAC, every data key and blob) | ${VKEYS} s |
| backup while 3 guests write NV | ${LOAD} s |
EOF
echo "ops_bench: {\"instances\":$N,\"blob_bytes\":$BLOB,\"restore_s\":$RESTORE,\"backup_s\":$BACKUP,\"backup_bytes\":$BYTES,\"verify_offline_s\":$VOFF,\"verify_keys_s\":$VKEYS,\"backup_under_load_s\":$LOAD}"
