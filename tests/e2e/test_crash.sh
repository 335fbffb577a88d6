#!/usr/bin/env bash
# test_crash.sh: crashes lose nothing that was acknowledged (issue 2:
# "kill -9 of a worker mid-command: that guest gets an error, reattaches,
# and finds its last acknowledged NV write; the other guests see nothing" and
# "kill -9 of vtpmd during a loop of NV_Increment: after restart the counter
# equals the last value acknowledged to the client, or one more").
# Acknowledged = tpm2_nvincrement exited 0; loops count those from a counter
# value read before they start. Last, the worker zygote is killed.
source "$(dirname "$0")/lib.sh"
t_init crash

NA=$(inst_name 0a)
NB=$(inst_name 0b)

# incr_loop NAME DIR: increments NAME's counter until DIR/stop exists,
# keeping "acknowledged failed" in DIR/count after every attempt
incr_loop() {
	local ok=0 bad=0
	while [ ! -e "$2/stop" ]; do
		if nv_counter_incr "$1"; then ok=$((ok + 1)); else bad=$((bad + 1)); sleep 0.05; fi
		echo "$ok $bad" >"$2/count.tmp" && mv "$2/count.tmp" "$2/count"
	done
}
loop_start() {	# NAME: starts a loop; its pid in LOOP_PID[NAME]
	rm -rf "$T/loop-$1"
	mkdir -p "$T/loop-$1"
	echo "0 0" >"$T/loop-$1/count"
	t_bg incr_loop "$1" "$T/loop-$1"
	LOOP_PID[$1]=$BG_PID
}
loop_stop() {	# NAME: stops the loop, sets OK and BAD
	touch "$T/loop-$1/stop"
	wait "${LOOP_PID[$1]}"
	read -r OK BAD <"$T/loop-$1/count"
}
loop_ok() { local ok bad; read -r ok bad <"$T/loop-$1/count"; echo "$ok"; }
# wait_loop_ok NAME N [tries of 50 ms]: the loop has N acknowledged increments
wait_loop_ok() {
	local i
	for i in $(seq "${3:-200}"); do
		[ "$(loop_ok "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
declare -A LOOP_PID
hex2dec() { echo $((16#$1)); }
counter() { hex2dec "$(nv_counter_read "$1")"; }

start_vtpmd
start_guest a 0a 01
start_guest b 0b 01
nv_counter_define a && nv_counter_define b
nv_counter_incr a && nv_counter_incr b
A0=$(counter a)
B0=$(counter b)
check_eq "counters start at 1" "$A0 $B0" "1 1"

# A increments all through sections 1 and 2: it must never see an error.
WA=$(inst_field "$NA" worker_pid)
loop_start a
check "A's loop makes progress" wait_loop_ok a 3

# ---- 1. a worker killed while its guest's command is inside it ----
# Freeze B's worker, send an increment (it cannot run), kill the worker.
WB=$(inst_field "$NB" worker_pid)
check "B has a worker process" [ "${WB:-0}" -gt 0 ]
kill -STOP "$WB"
t_bg nv_counter_incr b
INFLIGHT=$BG_PID
sleep 0.5
check "B's increment is in flight (waiting on the frozen worker)" kill -0 "$INFLIGHT"
MARK=$(log_mark "$T/vtpmd.log")
kill -KILL "$WB"
wait "$INFLIGHT"
check_ne "B's in-flight increment fails" "$?" 0
check "vtpmd logs the worker's death" \
	wait_log "$T/vtpmd.log" "$MARK" "instance $NB: worker [0-9]+ (died on signal 9|killed: worker exited)"
check "B's vtpm-guest notices the lost connection" grep -q "connection to vtpmd lost" "$T/b.log"
check_eq "B reattaches; the unexecuted increment left no trace" "$(counter b)" "$B0"
check "B increments again" nv_counter_incr b
check_eq "B's counter moves on" "$(counter b)" $((B0 + 1))
check_ne "B runs in a new worker" "$(inst_field "$NB" worker_pid)" "$WB"
check_eq "A kept its worker" "$(inst_field "$NA" worker_pid)" "$WA"
B0=$(counter b)

# ---- 2. a worker killed at a random point of an increment loop ----
loop_start b
check "B's loop makes progress" wait_loop_ok b 5
AOK=$(loop_ok a)
check "A's loop still makes progress" wait_loop_ok a $((AOK + 3))
WB=$(inst_field "$NB" worker_pid)
MARK=$(log_mark "$T/vtpmd.log")
kill -KILL "$WB"
BOK=$(loop_ok b)
check "B's loop goes on after the crash (reattached)" wait_loop_ok b $((BOK + 5))
loop_stop b
BOK=$OK
BBAD=$BAD
loop_stop a
AOK=$OK
ABAD=$BAD
check "vtpmd logs B's worker's death" \
	wait_log "$T/vtpmd.log" "$MARK" "instance $NB: worker [0-9]+ (died on signal 9|killed: worker exited)"
B1=$(counter b)
echo "    B: $BOK acknowledged, $BBAD failed, counter $B0 -> $B1"
check "B's counter >= last acknowledged value ($((B0 + BOK)))" [ "$B1" -ge $((B0 + BOK)) ]
check "B's counter <= last acknowledged value + 1" [ "$B1" -le $((B0 + BOK + 1)) ]
A1=$(counter a)
echo "    A: $AOK acknowledged, $ABAD failed, counter $A0 -> $A1"
check_eq "A saw no error while B's worker died (twice)" "$ABAD" 0
check_eq "A's counter is exactly its acknowledged increments" "$A1" $((A0 + AOK))
check_eq "A kept its worker through B's crash" "$(inst_field "$NA" worker_pid)" "$WA"
check "vtpmd still running" vtpmd_alive

# ---- 3. vtpmd killed (-9) during an increment loop ----
A0=$(counter a)
WA=$(inst_field "$NA" worker_pid)
loop_start a
check "A's loop makes progress" wait_loop_ok a 5
kill9_vtpmd
check "A's worker exits with vtpmd (no orphan holding the TPM)" proc_gone "$WA"
AOK=$(loop_ok a)
sleep 0.3
loop_stop a
check_eq "no increment is acknowledged while vtpmd is down" "$OK" "$AOK"
check "vtpmd restarts on the same store" start_vtpmd
check "A's vtpm-guest reattaches by itself (backoff)" wait_inst_state "$NA" attached 300
A1=$(counter a)
echo "    A: $OK acknowledged before the kill, counter $A0 -> $A1"
check "A's counter >= last acknowledged value ($((A0 + OK)))" [ "$A1" -ge $((A0 + OK)) ]
check "A's counter <= last acknowledged value + 1" [ "$A1" -le $((A0 + OK + 1)) ]
check "A increments after the restart" nv_counter_incr a
check_eq "A's counter moves on" "$(counter a)" $((A1 + 1))
check "B works after the restart" nv_counter_incr b

# ---- 4. the worker zygote (vtpmd's fork server) killed: its workers end
# with it; vtpmd survives, starts a new one, and both guests get their TPMs back.
A1=$(counter a)
B1=$(counter b)
ZYG=$(pgrep -P "$VTPMD_PID" -f -- --worker-zygote | head -n 1)
if [ -n "$ZYG" ]; then
	MARK=$(log_mark "$T/vtpmd.log")
	kill -KILL "$ZYG"
	check "vtpmd logs the zygote's loss" wait_log "$T/vtpmd.log" "$MARK" "zygote .*lost"
	check "vtpmd survives its zygote" vtpmd_alive
	check "A gets its TPM back (counter intact)" [ "$(counter a)" = "$A1" ]
	check "B gets its TPM back (counter intact)" [ "$(counter b)" = "$B1" ]
	check "A increments with a worker of the new zygote" nv_counter_incr a
	check_ne "a new zygote runs" "$(pgrep -P "$VTPMD_PID" -f -- --worker-zygote | head -n 1)" "$ZYG"
else
	echo "    (no worker zygote in this build: section 4 skipped)"
fi
stop_guest a
stop_guest b
check "vtpmd stops cleanly" stop_vtpmd
t_done
