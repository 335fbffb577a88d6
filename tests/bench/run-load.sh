#!/usr/bin/env bash
# run-load.sh: `make load` (issue 8 item 7). N concurrent guests (default
# 200) send a mix of commands (GetRandom, PCR_Extend, PCR_Read,
# NV_Increment, now and then CreatePrimary + FlushContext) to one vtpmd for
# a bounded time; prints the commands run, errors (must be 0), p50/p99
# latency overall and per command, vtpmd's fd limit and descriptors in use,
# and the memory of vtpmd and its workers. Exit status 1 if any command
# failed. A benchmark: timing is reported, never asserted.
#   LOAD_GUESTS=200 LOAD_SECONDS=120 BUILD=... tests/bench/run-load.sh
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$TOP/build}
N=${LOAD_GUESTS:-200}
SECS=${LOAD_SECONDS:-120}
LABEL=${LOAD_LABEL:-load$N}
W=$(mktemp -d /tmp/vtpm-load.XXXXXX)
VPID=
cleanup() {
	[ -n "$VPID" ] && kill -TERM "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	[ -n "${KEEP:-}" ] || rm -rf "$W"
}
trap cleanup EXIT

for f in "$B/vtpmd" "$B/bench/vtpm-bench"; do
	[ -x "$f" ] || { echo "run-load: $f not built (make bench-build)" >&2; exit 2; }
done
"$B/vtpmd" --dev --state-dir "$W/state" --listen "unix:$W/vtpmd.sock" \
	--admin "unix:$W/admin.sock" --max-handshakes 1024 >"$W/vtpmd.log" 2>&1 &
VPID=$!
for _ in $(seq 200); do [ -S "$W/admin.sock" ] && break; sleep 0.05; done
echo "load: $N guests for $SECS s against vtpmd $VPID (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "load: vtpmd $(grep 'Max open files' /proc/$VPID/limits | tr -s ' ')"

# fds of vtpmd (parent) and of all its descendants, sampled while the run goes on
fds_sample() {
	local p kids n=0 k
	kids=$(ps -o pid= --ppid "$VPID" 2>/dev/null)
	for k in $kids; do kids="$kids $(ps -o pid= --ppid "$k" 2>/dev/null)"; done
	for p in $VPID $kids; do
		n=$((n + $(ls /proc/$p/fd 2>/dev/null | wc -l)))
	done
	echo "$(ls /proc/$VPID/fd 2>/dev/null | wc -l) $n $(echo $kids | wc -w)"
}
(
	sleep $((SECS / 2 + 5))
	read -r pf tf np < <(fds_sample)
	echo "load: mid-run: vtpmd parent $pf fds; parent + $np children $tf fds"
) &
SAMPLER=$!
"$B/bench/vtpm-bench" load --server "unix:$W/vtpmd.sock" --vtpmd-pid "$VPID" \
	--n "$N" --seconds "$SECS" --label "$LABEL" --threads 4 | tee "$W/out"
RC=${PIPESTATUS[0]}
wait "$SAMPLER" 2>/dev/null
ERRS=$(awk '$2 ~ /\.errors$/ {printf "%d", $3}' "$W/out")
# anything vtpmd warned about beyond the --dev banner
if grep -E 'warning|error' "$W/vtpmd.log" | grep -vqE 'check_security|keyprov_file_create'; then
	echo "load: vtpmd logged warnings:"
	grep -E 'warning|error' "$W/vtpmd.log" | grep -vE 'check_security|keyprov_file_create' | head -n 20
fi
echo "load: errors ${ERRS:-?} (exit $RC)"
kill -TERM "$VPID" 2>/dev/null
wait "$VPID"
echo "load: vtpmd stopped with status $?"
VPID=
[ "$RC" -eq 0 ] && [ "${ERRS:-1}" = 0 ]
