#!/usr/bin/env bash
# test_load_smoke.sh: a short variant of `make load` (issue 8 item 7): 20
# concurrent guests send a mix of commands (GetRandom, PCR_Extend, PCR_Read,
# NV_Increment, CreatePrimary + FlushContext) for 5 s. Asserts zero errors and
# that every kind of command ran; latency is printed, never asserted.
source "$(dirname "$0")/lib.sh"
t_init load_smoke
BENCH=$B/bench/vtpm-bench
if [ ! -x "$BENCH" ]; then
	fail "vtpm-bench not built ($BENCH; make check builds it)"
	t_done
	exit
fi
start_vtpmd
"$BENCH" load --server "unix:$T/vtpmd.sock" --vtpmd-pid "$VTPMD_PID" --n 20 \
	--seconds 5 --label smoke --threads 4 >"$T/load.out" 2>&1
check_eq "vtpm-bench load exits 0" "$?" 0
val() { awk -v k="load.smoke.$1" '$2 == k {printf "%d", $3}' "$T/load.out"; }
check_eq "20 guests" "$(val guests)" 20
check_eq "zero errors" "$(val errors)" 0
for c in GetRandom PCR_Extend PCR_Read NV_Increment CreatePrimary FlushContext; do
	check "$c ran" test "$(val "$c.count")" -gt 0
done
echo "    $(grep 'smoke:' "$T/load.out" | sed 's/^ *//')"
check "vtpmd still running" vtpmd_alive
check "vtpmd stops cleanly" stop_vtpmd
t_done
