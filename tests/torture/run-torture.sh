#!/usr/bin/env bash
# run-torture.sh: the crash torture behind `make torture` (issue 8, item 4).
# Two runs of tests/torture/vtpm-torture, each with GUESTS guests (default 4)
# writing NV in loops (NV_Write of a sequence number, NV_Increment):
#   daemon  ITERATIONS kill -9 of vtpmd at random moments (one in ten again
#           during its start-up); the driver restarts it each time
#   worker  ITERATIONS kill -9 of a random worker
# After every kill each guest reattaches and reads both indices back: each
# must hold the last acknowledged value or the one in flight. Prints the
# counts of each run; exits non-zero if anything was lost or corrupt, an
# instance did not open, or a sanitizer reported an error.
# Environment: BUILD (build dir, absolute), ITERATIONS (1000), GUESTS (4),
# MAX_DELAY (ms between reattach and kill, 150), SEED, KEEP=1 keeps the logs.
set -u
B=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
N=${ITERATIONS:-1000}
T=$(mktemp -d /tmp/vtpm-torture.XXXXXX)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for mode in daemon worker; do
	d=$T/$mode
	mkdir -p "$d"
	echo "== torture: kill -9 of $([ $mode = daemon ] && echo vtpmd || echo a random worker), $N times"
	"$B/tests/vtpm-torture" --server "unix:$d/vtpmd.sock" --mode "$mode" \
		--iterations "$N" --guests "${GUESTS:-4}" --max-delay "${MAX_DELAY:-150}" \
		${SEED:+--seed "$SEED"} --vtpmd-log "$d/vtpmd.log" -- \
		"$B/vtpmd" --dev --state-dir "$d/state" --listen "unix:$d/vtpmd.sock" \
		--admin "unix:$d/admin.sock" || status=1
	if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:" "$d/vtpmd.log"; then
		echo "torture $mode: sanitizer report in $d/vtpmd.log:"
		grep -m 5 -E "AddressSanitizer|runtime error:" "$d/vtpmd.log"
		status=1
	fi
	if grep -q "Segmentation fault\|SIGSEGV" "$d/vtpmd.log"; then
		echo "torture $mode: vtpmd crashed"
		status=1
	fi
done
if [ $status -eq 0 ]; then
	echo "torture: PASSED"
	[ -n "${KEEP:-}" ] || rm -rf "$T"
else
	echo "torture: FAILED (logs in $T)"
fi
exit $status
