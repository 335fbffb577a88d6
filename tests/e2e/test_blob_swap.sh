#!/usr/bin/env bash
# test_blob_swap.sh: sealed state cannot be moved, damaged or rolled back
# unnoticed (issue 2: "a blob copied from instance A over instance B in LMDB
# is rejected when B loads, with a clear error; A and the other instances
# keep working. A corrupted blob is rejected the same way").
# vtpm-storetool edits the stopped vtpmd's LMDB store as an attacker with
# the disk could (no keys); each time B's attach must fail naming B and the
# reason, while A and C keep their TPMs.
source "$(dirname "$0")/lib.sh"
t_init blob_swap

ST=$B/tests/vtpm-storetool
NA=$(inst_name 0a)
NB=$(inst_name 0b)
NC=$(inst_name 0c)

start_all() {
	start_vtpmd && start_guest a 0a 01 && start_guest c 0c 01
}
stop_all() {
	stop_guest a
	stop_guest b
	stop_guest c
	stop_vtpmd
}
# others_ok WHEN: A and C attach and still read their own counters
others_ok() {
	check_eq "$1: A's counter intact" "$(nv_counter_read a)" 2
	check_eq "$1: C's counter intact" "$(nv_counter_read c)" 4
	check "$1: A answers GetRandom" getrandom_ok a
}
# b_refused WHEN ERE: B's attach fails; vtpm-guest and vtpmd both say why
b_refused() {
	local mark gmark
	mark=$(log_mark "$T/vtpmd.log")
	gmark=$(log_mark "$T/b.log")
	run_guest_once b 0b 01
	check_eq "$1: B's vtpm-guest is refused (exit 1)" "$?" 1
	check "$1: vtpmd log names B and the reason" \
		wait_log "$T/vtpmd.log" "$mark" "instance $NB: permanent state of $NB failed to open: $2"
	check "$1: B's vtpm-guest log has vtpmd's reason" \
		wait_log "$T/b.log" "$gmark" "vtpmd refused \\(code 6\\): permanent state of $NB failed to open: $2"
	check "$1: vtpmd still running" vtpmd_alive
}

# ---- three instances with known NV state ----
start_all
start_guest b 0b 01
nv_counter_define a && nv_counter_define b && nv_counter_define c
for i in 1 2; do nv_counter_incr a; done
for i in 1 2 3; do nv_counter_incr b; done
for i in 1 2 3 4; do nv_counter_incr c; done
check_eq "A's counter 2" "$(nv_counter_read a)" 2
check_eq "B's counter 3" "$(nv_counter_read b)" 3
check_eq "C's counter 4" "$(nv_counter_read c)" 4
"$ST" show "$T/state" "$NB" >/dev/null 2>"$T/st-busy.err"
check_eq "storetool cannot open the store while vtpmd holds it" "$?" 1
check "storetool says the store is busy" grep -q busy "$T/st-busy.err"
stop_all

check "save B's own permanent blob" "$ST" save-blob "$T/state" "$NB" "$T/b-perm-gen1.bin"

# ---- 1. A's blob copied over B's ----
check "copy A's sealed permanent blob over B's" quiet "$ST" copy-blob "$T/state" "$NA" "$NB"
start_all
b_refused "swapped blob" "authentication failed"
others_ok "swapped blob"
check_eq "swapped blob: B has no worker" "$(inst_field "$NB" worker_pid)" 0
stop_all

# B's own blob back: the refusal lost nothing.
check "put B's own blob back" "$ST" restore-blob "$T/state" "$NB" "$T/b-perm-gen1.bin"
start_all
check "B attaches with its own blob" start_guest b 0b 01
check_eq "B's counter intact (3)" "$(nv_counter_read b)" 3
check "B: one more increment (a newer generation)" nv_counter_incr b
check_eq "B's counter 4" "$(nv_counter_read b)" 4
stop_all

# ---- 2. a corrupted blob: one bit of ciphertext ----
check "save B's current blob" "$ST" save-blob "$T/state" "$NB" "$T/b-perm-gen2.bin"
check "flip a bit in B's sealed blob" quiet "$ST" corrupt-blob "$T/state" "$NB" 1000
start_all
b_refused "corrupted blob" "authentication failed"
others_ok "corrupted blob"
stop_all

# ---- 3. B's own older blob (a rollback) ----
check "replace B's blob with its own older one" "$ST" restore-blob "$T/state" "$NB" "$T/b-perm-gen1.bin"
start_all
b_refused "old blob" "stale state \\(rollback detected\\)"
others_ok "old blob"
stop_all

# ---- and the current one restores B ----
check "put B's current blob back" "$ST" restore-blob "$T/state" "$NB" "$T/b-perm-gen2.bin"
start_all
check "B attaches again" start_guest b 0b 01
check_eq "B's counter is its last value (4)" "$(nv_counter_read b)" 4
others_ok "at the end"
stop_all
t_done
