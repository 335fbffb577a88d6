#!/usr/bin/env bash
# run-torture.sh: the crash torture behind `make torture` (issue 8, item 4).
# Two runs of tests/torture/vtpm-torture, each with GUESTS guests (default 4)
# writing NV in loops (NV_Write of a sequence number, NV_Increment):
#   daemon  ITERATIONS kill -9 of vtpmd at random moments (one in ten again
#           during its start-up); the driver restarts it each time
#   worker  ITERATIONS kill -9 of a random worker
#   power   POWER_ITERATIONS (300) power cuts: vtpmd runs under
#           tests/crashsim/wlog.so and after each kill its state directory is
#           replaced by what the disk could hold had the power failed at a
#           random earlier moment (unsynced 4 KiB blocks old or new)
# After every kill each guest reattaches and reads both indices back: each
# must hold the last acknowledged value or the one in flight (power: every
# value acknowledged before the cut, at most what was sent). Prints the
# counts of each run; exits non-zero if anything was lost or corrupt, an
# instance did not open, or a sanitizer reported an error.
# Environment: BUILD (build dir, absolute), ITERATIONS (1000), POWER_ITERATIONS
# (300), GUESTS (4),
# MAX_DELAY (ms between reattach and kill, 150), SEED, KEEP=1 keeps the logs.
set -u
B=${BUILD:-$(cd "$(dirname "$0")/../.." && pwd)/build}
N=${ITERATIONS:-1000}
T=$(mktemp -d /tmp/vtpm-torture.XXXXXX)
# verify_asan_link_order=0: the power run preloads wlog.so into vtpmd
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:verify_asan_link_order=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for mode in daemon worker power; do
	d=$T/$mode
	mkdir -p "$d"
	n=$N
	case $mode in
	daemon)	echo "== torture: kill -9 of vtpmd, $n times" ;;
	worker)	echo "== torture: kill -9 of a random worker, $n times" ;;
	power)	n=${POWER_ITERATIONS:-300}
		echo "== torture: power cuts (kill -9 of vtpmd, then its disk as a power failure leaves it), $n times" ;;
	esac
	"$B/tests/vtpm-torture" --server "unix:$d/vtpmd.sock" --mode "$mode" \
		--iterations "$n" --guests "${GUESTS:-4}" --max-delay "${MAX_DELAY:-150}" \
		--state-dir "$d/state" --wlog-so "$B/tests/wlog.so" \
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
