#!/usr/bin/env bash
# test_fastpath.sh: the worker's data path (issue 9). A durable response
# leaves through the parent after the commit (ipc.h, IPC_STORE_RSP), and an
# idle worker sleeps in read() on its guest's socket:
#  - a guest that pipelines (NV_Increment and NV_Read sent back to back)
#    gets both answers, in order, with the state right, and so does one that
#    does not, on the same TPM;
#  - releasing, stopping (SIGTERM) and deleting an instance whose guest is
#    attached and idle -- its worker asleep in read() -- ends the session at
#    once, and the guest attaches again.
# Failed commits (the guest gets 0x923, never the success) are in
# test_faults.sh.
source "$(dirname "$0")/lib.sh"
t_init fastpath

start_vtpmd

# step_ok FILE STEP INC READ: the line "step STEP: increment INC read READ ..."
step_line() { grep "^step $2: " "$1"; }
step_value() { step_line "$1" "$2" | awk '{ print $NF }'; }
# consecutive FILE FIRST LAST: every step FIRST..LAST succeeded, values +1 each
consecutive() {
	local f=$1 i prev cur
	prev=$(step_value "$f" "$2")
	for i in $(seq $(($2 + 1)) "$3"); do
		step_line "$f" "$i" | grep -q "increment 0x0 read 0x0 " || return 1
		cur=$(step_value "$f" "$i")
		[ "$cur" = $((prev + 1)) ] || return 1
		prev=$cur
	done
}

# ---- pipelining -------------------------------------------------------------
testclient --host-byte 50 --nv-steps 20 --pipeline --expect ok >"$T/pipe1.out" 2>&1
check_eq "pipelined guest: every answer arrived, in order, well-formed" "$?" 0
check "pipelined guest: step 1 succeeded" grep -q "^step 1: increment 0x0 read 0x0 " "$T/pipe1.out"
check "pipelined guest: each NV_Read saw its NV_Increment" consecutive "$T/pipe1.out" 1 20
V20=$(step_value "$T/pipe1.out" 20)

testclient --host-byte 50 --nv-steps 5 --expect ok >"$T/plain.out" 2>&1
check_eq "the same TPM, one command at a time: answered" "$?" 0
check_eq "... the counter went on from the pipelined writes" \
	"$(step_value "$T/plain.out" 1)" $((V20 + 1))
check "... and counts on" consecutive "$T/plain.out" 1 5

testclient --host-byte 50 --nv-steps 5 --pipeline --expect ok >"$T/pipe2.out" 2>&1
check_eq "pipelined again after a reattach: answered" "$?" 0
check_eq "... from the durable value" "$(step_value "$T/pipe2.out" 1)" \
	$(($(step_value "$T/plain.out" 5) + 1))

# Four pipelining guests at once: their stores share group commits.
for hb in 51 52 53 54; do
	t_bg testclient --host-byte "$hb" --nv-steps 50 --pipeline --expect ok
	eval "PIPE_$hb=\$BG_PID"
done >"$T/pipe4.out" 2>&1
ok4=0
for hb in 51 52 53 54; do
	eval "p=\$PIPE_$hb"
	wait "$p" && ok4=$((ok4 + 1))
done
check_eq "four pipelining guests at once: all answered in order" "$ok4" 4
check_eq "... 200 steps, every one right" \
	"$(grep -c "increment 0x0 read 0x0 " "$T/pipe4.out")" 200

# ---- a worker asleep in read() is woken by its parent -------------------------
# attached_idle NAME HB: guest NAME attached and idle; sets WPID (its worker)
attached_idle() {
	start_guest "$1" "$2" 01
	getrandom_ok "$1" || return 1
	WPID=$(inst_field "$(inst_name "$2")" worker_pid)
	[ -n "$WPID" ] && [ "$WPID" -gt 0 ] && sleep 1.2	# past the stats second
}

check "release: a guest attached, idle" attached_idle rel 60
MARK=$(log_mark "$T/vtpmd.log")
T0=$EPOCHREALTIME
vtpmctl release "$(inst_name 60)" >/dev/null
check "release: the idle worker saves its state and exits at once" proc_gone "$WPID" 40
check "release: its session ended by vtpmd, not by the guest" \
	wait_log "$T/vtpmd.log" "$MARK" "$(inst_name 60): session ended \(reason 4\)"
check "release: the volatile state was saved" \
	wait_log "$T/vtpmd.log" "$MARK" "$(inst_name 60): stopped \(volatile state saved\)"
echo "    (release to worker exit: $(awk -v a="$T0" -v b="$EPOCHREALTIME" \
	'BEGIN { printf "%.0f ms", (b - a) * 1000 }'))"
check "release: the guest attaches again and works" getrandom_ok rel
stop_guest rel

check "delete: a guest attached, idle" attached_idle del 61
vtpmctl delete "$(inst_name 61)" >/dev/null
check "delete: its worker is gone at once" proc_gone "$WPID" 40
stop_guest del

check "stop: a guest attached, idle" attached_idle stp 62
T0=$EPOCHREALTIME
stop_vtpmd
check_eq "stop: vtpmd exits cleanly" "$?" 0
check "stop: within 3 s" awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a < 3) }'
check "stop: the worker is gone" proc_gone "$WPID" 40
start_vtpmd
check "stop: after a restart the guest attaches again and works" getrandom_ok stp
check "stop: it resumed its saved state" \
	grep -q "attached to instance $(inst_name 62) (resumed)" "$T/vtpmd.log"
stop_guest stp

# ---- a guest that does not read: the parent never blocks on it -----------------
# 1000 NV_Increment in one write, then nothing read for a second: the
# answers fill the socket, the parent's non-blocking send falls short and
# the worker writes the rest itself (-v logs it), in order.
# (--unsafe-nosync: commits are quick, so the socket surely fills.)
stop_vtpmd
start_vtpmd -v --unsafe-nosync
start_guest other 64 01
MARK=$(log_mark "$T/vtpmd.log")
t_bg testclient --host-byte 63 --nv-steps 1 --burst 1000 --timeout 30000 --expect ok \
	>"$T/burst.out" 2>&1
BURST=$BG_PID
sleep 0.5
check "burst: another guest is served while this one does not read" getrandom_ok other
wait "$BURST"
check_eq "burst: every answer arrived, in order" "$?" 0
check "burst: 1000 increments answered, none failed, all of them counted" \
	grep -q "^burst: 1000 answered, 0 failed, value 1000$" "$T/burst.out"
check "burst: and the next command works" \
	grep -q "^step 1: increment 0x0 read 0x0 value 1001$" "$T/burst.out"
check "burst: the parent left a response to the worker instead of blocking" \
	wait_log "$T/vtpmd.log" "$MARK" "response bytes left to the worker"
stop_guest other

t_done
