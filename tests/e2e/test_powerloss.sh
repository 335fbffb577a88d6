#!/usr/bin/env bash
# test_powerloss.sh: power cuts, for `make check` (about 30 s). kill -9 keeps
# the page cache, so test_torture_short.sh cannot show what a power failure
# does to writes that were never synced. Here vtpmd runs under
# tests/crashsim/wlog.so, which records every write and sync on its state
# directory; after each kill vtpm-torture --mode power replaces the directory
# by what the disk could hold had the power failed at a random earlier moment
# (tests/crashsim/crashimg.c: every unsynced 4 KiB block independently old
# or new). Every write acknowledged before that moment must be there, and
# every instance must open.
# The same run against vtpmd --unsafe-nosync must fail: that proves the
# images really drop unsynced writes and the checks can fail.
source "$(dirname "$0")/lib.sh"
t_init powerloss

DRV=$B/tests/vtpm-torture
SO=$B/tests/wlog.so
[ -x "$DRV" ] && [ -f "$SO" ] || { echo "powerloss: build $DRV and $SO first (make check builds them)"; exit 1; }
case "$B" in
*asan*) export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:verify_asan_link_order=0" ;;
esac

# run NAME ITERATIONS [vtpmd options...]
run() {
	local n=$1 it=$2
	shift 2
	mkdir -p "$T/$n"
	"$DRV" --server "unix:$T/$n/vtpmd.sock" --mode power --iterations "$it" --guests 3 \
		--max-delay 120 --quiet --state-dir "$T/$n/state" --wlog-so "$SO" \
		--vtpmd-log "$T/$n/vtpmd.log" -- \
		"$B/vtpmd" --dev --state-dir "$T/$n/state" --listen "unix:$T/$n/vtpmd.sock" \
		--admin "unix:$T/$n/admin.sock" "$@" >"$T/$n.out" 2>&1
}

run durable 25
check_eq "25 power cuts: nothing acknowledged before a cut lost, every instance opens" "$?" 0
check "writes were acknowledged and checked" grep -qE "^writes checked: [1-9]" "$T/durable.out"
check "the cuts happened (24 images built)" grep -qE "^power cuts: 24;" "$T/durable.out"
grep -E "^(writes|lost|power)" "$T/durable.out" | sed 's/^/    /'
check "no sanitizer report" \
	bash -c "! grep -qE 'AddressSanitizer|runtime error:' '$T/durable/vtpmd.log'"

# the control: no syncs at all, so the images lose acknowledged writes or
# leave a store that does not open
run nosync 25 --unsafe-nosync
check "control: vtpmd --unsafe-nosync fails the same test" \
	grep -qE "^vtpm-torture: FAILED" "$T/nosync.out"
check "control: it failed by loss or a store that does not open" \
	grep -qE "^lost = [1-9]|failed opens = [1-9]" "$T/nosync.out"
grep -E "^(lost|power)" "$T/nosync.out" | sed 's/^/    /'
t_done
