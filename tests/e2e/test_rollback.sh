#!/usr/bin/env bash
# test_rollback.sh: rolling vtpmd's store back to an older copy while vtpmd
# is stopped (issue 8 item 6). A guest with a freshness record (vtpm-guest
# --state-dir) detects it at attach and refuses; without the swap there is
# no false alarm across vtpmd restarts (clean and kill -9), resumes and new
# launches; --accept-rollback takes an older store knowingly. A guest
# without a record, and the version-1 test client, attach as before: the
# limit docs/THREAT-MODEL.md states.
source "$(dirname "$0")/lib.sh"
t_init rollback

GS=$T/guest-state
mkdir -p "$GS"
NAME=$(inst_name 01)
# record: the generation in the guest's freshness record (one instance here)
record() { awk '{print $3}' "$GS"/freshness-* 2>/dev/null; }
no_alarm() { ! grep -q "rollback detected" "$T/g.log"; }

start_vtpmd
start_guest g 01 01 --state-dir "$GS"
check "guest with --state-dir attaches and works" getrandom_ok g
check_eq "one freshness record, named by the instance UUID" \
	"$(ls "$GS" | grep -c '^freshness-[0-9a-f]\{32\}$')" 1
check_eq "the record holds the instance's generation at attach" \
	"$(record)" "$(inst_field "$NAME" generation)"
check "define an NV counter" nv_counter_define g
check "increment it" nv_counter_incr g
GEN1=$(inst_field "$NAME" generation)
check_eq "the record follows every acknowledged NV write (STATE_GEN)" "$(record)" "$GEN1"

# No false alarm: vtpmd restarts (resume), a kill -9, a new launch.
stop_vtpmd
start_vtpmd
check "after a vtpmd restart the guest resumes" nv_counter_incr g
check_eq "counter 2 after the restart" "$(nv_counter_read g)" 2
kill9_vtpmd
start_vtpmd
check "after kill -9 of vtpmd the guest attaches again" nv_counter_incr g
check_eq "counter 3" "$(nv_counter_read g)" 3
stop_guest g
start_guest g 01 02 --state-dir "$GS"
check "a new launch (power cycle) attaches" nv_counter_incr g
check_eq "counter 4" "$(nv_counter_read g)" 4
check "no rollback alarm without a swap" no_alarm
check_eq "the record still equals vtpmd's generation" "$(record)" "$(inst_field "$NAME" generation)"

# The attack: copy the store while vtpmd is stopped, write on, put it back.
stop_vtpmd
cp -a "$T/state" "$T/state.old"
start_vtpmd
check "increment after the copy (5)" nv_counter_incr g
check "increment after the copy (6)" nv_counter_incr g
check_eq "counter 6" "$(nv_counter_read g)" 6
NEWGEN=$(inst_field "$NAME" generation)
check_eq "record = generation after the writes" "$(record)" "$NEWGEN"
stop_vtpmd
rm -rf "$T/state"
mv "$T/state.old" "$T/state"
start_vtpmd
OLDGEN=$(inst_field "$NAME" generation)
check "the swapped-in store is older (generation $OLDGEN < $NEWGEN)" test "$OLDGEN" -lt "$NEWGEN"
mark=$(log_mark "$T/g.log")
check "the running guest refuses the old store: nvread fails" fails_ nv_counter_incr g
check "the guest says rollback detected" wait_log "$T/g.log" "$mark" \
	"rollback detected: vtpmd presents generation $OLDGEN of instance [0-9a-f]{32}, but this guest has seen generation $NEWGEN"
check_eq "the record is not lowered by the refusal" "$(record)" "$NEWGEN"
stop_guest g
run_guest_once g2 01 03 --state-dir "$GS"
check_eq "a restarted agent (new launch) refuses too (exit 1)" "$?" 1
check "its log says rollback detected" grep -q "rollback detected" "$T/g2.log"
check "vtpmd keeps running" vtpmd_alive
check_eq "the refused attaches changed nothing (generation still $OLDGEN)" \
	"$(inst_field "$NAME" generation)" "$OLDGEN"

# Knowingly accepting the restored store, then normal service again.
start_guest acc 01 05 --state-dir "$GS" --accept-rollback
check_eq "--accept-rollback attaches to the old store (counter 4)" "$(nv_counter_read acc)" 4
check "it says so in its log" grep -q "accept-rollback: accepting generation $OLDGEN" "$T/acc.log"
check_eq "the record was lowered to the store's generation" "$(record)" \
	"$(inst_field "$NAME" generation)"
stop_guest acc
start_guest g3 01 06 --state-dir "$GS"
check "afterwards a guest without the flag works again" nv_counter_incr g3
check_eq "counter 5 (from the accepted store)" "$(nv_counter_read g3)" 5
check "and raises the record again" test "$(record)" -gt "$OLDGEN"
stop_guest g3

# What is not detected without a record (docs/THREAT-MODEL.md).
start_guest norec 01 04
check_eq "a guest without --state-dir attaches to the store and sees counter 5" \
	"$(nv_counter_read norec)" 5
stop_guest norec
testclient --host-byte 70 --expect ok >"$T/tc.out" 2>&1
check_eq "vtpm-testclient (protocol version 1) still attaches" "$?" 0

# A damaged record refuses the attach with a clear error.
for f in "$GS"/freshness-*; do echo garbage >"$f"; done
run_guest_once g4 01 07 --state-dir "$GS"
check_eq "a damaged record refuses the attach (exit 1)" "$?" 1
check "its log names the record" grep -q "not a freshness record for this instance" "$T/g4.log"

check "vtpmd stops cleanly" stop_vtpmd
t_done
