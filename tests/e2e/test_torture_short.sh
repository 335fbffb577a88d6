#!/usr/bin/env bash
# test_torture_short.sh: the crash torture of `make torture`, 20 iterations
# of each kind, for `make check` (about 20 s): kill -9 of vtpmd, then of
# random workers, while four guests write NV; after every kill every
# acknowledged write must be present and every instance must open.
source "$(dirname "$0")/lib.sh"
t_init torture_short

DRV=$B/tests/vtpm-torture
[ -x "$DRV" ] || { echo "torture_short: build $DRV first (make check builds it)"; exit 1; }
for mode in daemon worker; do
	mkdir -p "$T/$mode"
	"$DRV" --server "unix:$T/$mode/vtpmd.sock" --mode "$mode" --iterations 20 --guests 4 --max-delay 100 \
		--quiet --vtpmd-log "$T/$mode/vtpmd.log" -- \
		"$B/vtpmd" --dev --state-dir "$T/$mode/state" --listen "unix:$T/$mode/vtpmd.sock" \
		--admin "unix:$T/$mode/admin.sock" >"$T/$mode.out" 2>&1
	check_eq "$mode: 20 kills, nothing acknowledged lost, every instance opens" "$?" 0
	check "$mode: writes were acknowledged and checked" \
		grep -qE "^writes checked: [1-9]" "$T/$mode.out"
	grep -E "^(iterations|writes|lost)" "$T/$mode.out" | sed 's/^/    /'
	check "$mode: no sanitizer report" \
		bash -c "! grep -qE 'AddressSanitizer|runtime error:' '$T/$mode/vtpmd.log'"
done
t_done
