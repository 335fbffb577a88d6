#!/usr/bin/env bash
# test_busy.sh: one live session per instance (issue 2: "a second attach of
# a live identity is refused"). A clone (same measurement and host data) is
# refused while the first guest is attached, with a reason in its log; the
# first keeps its TPM; once the first is gone the second attaches to the
# same TPM.
source "$(dirname "$0")/lib.sh"
t_init busy

N1=$(inst_name 0c)

start_vtpmd
start_guest first 0c 01
nv_counter_define first
nv_counter_incr first && nv_counter_incr first
check_eq "first: counter 2" "$(nv_counter_read first)" 2
W1=$(inst_field "$N1" worker_pid)

# A clone in a new launch, and one claiming the same launch: both refused.
for lb in 02 01; do
	MARK=$(log_mark "$T/vtpmd.log")
	GMARK=$(log_mark "$T/second.log")
	run_guest_once second 0c $lb
	check_eq "clone (launch $lb) is refused: vtpm-guest --no-retry exits 1" "$?" 1
	check "clone (launch $lb): its log says the instance has a live session" \
		wait_log "$T/second.log" "$GMARK" "vtpmd refused \\(code 5\\): instance $N1 already has a live session"
	check "clone (launch $lb): vtpmd's log says why" \
		wait_log "$T/vtpmd.log" "$MARK" "closed: instance $N1 already has a live session"
	check "clone (launch $lb): no local socket was served" [ ! -e "$T/second.sock" ]
	check "first still works" nv_counter_incr first
done
check_eq "first: counter 4 (the clones changed nothing)" "$(nv_counter_read first)" 4
check_eq "first kept its worker" "$(inst_field "$N1" worker_pid)" "$W1"
check_eq "first is still the attached session" "$(inst_field "$N1" state)" attached
check_eq "still exactly one instance" "$(vtpmctl --json list | grep -c '"name":')" 1

# A clone that keeps retrying (no --no-retry) is refused until the first
# goes away, then gets in by itself.
GMARK=$(log_mark "$T/second.log")
rm -f "$T/second.sock"
t_bg "$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --attestation sim \
	--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn 0c 32)" \
	--sim-launch-id "$(hexn 02 32)" --socket "$T/second.sock" >>"$T/second.log" 2>&1
GUEST_PID[second]=$BG_PID
check "retrying clone is refused while the first is attached" \
	wait_log "$T/second.log" "$GMARK" "vtpmd refused \\(code 5\\)"
check "first still works" getrandom_ok first
MARK=$(log_mark "$T/vtpmd.log")
stop_guest first
check "the first session ends when its guest stops" \
	wait_log "$T/vtpmd.log" "$MARK" "instance $N1: session ended"
check "the retrying clone attaches once the first is gone" wait_for_socket "$T/second.sock" 400
check_eq "second sees the same TPM (counter 4)" "$(nv_counter_read second)" 4
check "second increments" nv_counter_incr second
check_eq "second: counter 5" "$(nv_counter_read second)" 5

# And now the first is the clone.
run_guest_once first 0c 01
check_eq "first, back while second is attached, is refused" "$?" 1
check "second still works" getrandom_ok second
stop_guest second
check "vtpmd stops cleanly" stop_vtpmd
t_done
