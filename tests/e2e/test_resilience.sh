#!/usr/bin/env bash
# test_resilience.sh: vtpm-guest when vtpmd goes away and comes back.
# A client loops TPM commands through the local socket (the TCTI plugin)
# while vtpmd is killed: every command fails within --command-timeout (the
# local socket answers "TPM unavailable", the swtpm endpoint a TPM error,
# TPM_RC_FAILURE), vtpm-guest reconnects with backoff when vtpmd returns and
# the same process keeps serving. A command that never reached vtpmd is sent
# again on a new connection; one that reached it but got no answer (a hung
# worker) fails with a TPM error and is never sent twice. A graceful vtpmd
# restart keeps PCRs (same launch, resumed); a crash resets the TPM, which
# the local socket starts again itself (AUTO_STARTUP) and a swtpm client
# must (raw TPM).
. "$(dirname "$0")/lib.sh"
t_init resilience
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
CTL="$PY $TOP/tests/e2e/swtpm_ctl.py"
BOUND=1500		# --command-timeout, ms
SLACK=1500		# process start-up and scheduling on a loaded machine
SW=$T/sw

sw() { local tool=$1; shift; LD_PRELOAD=$TPM_PRELOAD "tpm2_$tool" -T "swtpm:path=$SW" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# The client loop: "EXIT_STATUS MS" per tpm2_getrandom through g1's socket.
client_loop() {
	local t0 rc
	while [ ! -e "$T/loop.stop" ]; do
		t0=$(now_ms)
		tpm g1 getrandom --hex 8 >/dev/null 2>>"$T/loop.err"
		rc=$?
		echo "$rc $(($(now_ms) - t0))" >>"$T/loop.txt"
	done
}
loop_lines() { wc -l <"$T/loop.txt"; }
# wait_loop MARK ok|fail SECONDS: a line after MARK with that outcome
wait_loop() {
	local i
	for i in $(seq $(($3 * 10))); do
		if tail -n +"$(($1 + 1))" "$T/loop.txt" | awk -v w="$2" \
			'(w == "ok" && $1 == 0) || (w == "fail" && $1 != 0) { f = 1 } END { exit !f }'; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}
# slowest failure after MARK, in ms
slowest_fail() { tail -n +"$(($1 + 1))" "$T/loop.txt" | awk '$1 != 0 && $2 > m { m = $2 } END { print m + 0 }'; }
worker_of() {	# instance name -> pid of its current worker
	sed -n "s/.*instance $1: worker \([0-9]*\) started.*/\1/p" "$T/vtpmd.log" | tail -n 1
}

start_vtpmd || { fail "vtpmd did not start"; t_done; exit; }
check "vtpm-guest g1 (local socket)" start_guest g1 a1 01 --command-timeout $BOUND
G1=${GUEST_PID[g1]}
"$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --swtpm "$SW" --attestation sim --sim-host-data "$(hexn b1 32)" \
	--sim-launch-id "$(hexn 01 32)" --command-timeout $BOUND >>"$T/s1.log" 2>&1 &
S1=$!
T_PIDS+=($S1)
check "vtpm-guest s1 (swtpm endpoint)" wait_for_socket "$SW.ctrl"
check "s1: tpm2_startup -c" sw startup -c

: >"$T/loop.txt"
client_loop &
T_PIDS+=($!)
check "the client loop runs commands" wait_loop 0 ok 10

# ---- vtpmd killed under load ----
M=$(loop_lines)
kill9_vtpmd
check "vtpmd killed: the loop's commands fail" wait_loop "$M" fail 10
sleep 2
check_eq "... every one within the bound (slowest <= $BOUND + $SLACK ms)" \
	"$([ "$(slowest_fail "$M")" -le $((BOUND + SLACK)) ] && echo yes || slowest_fail "$M")" yes
t0=$(now_ms)
R=$($CTL getrandom "$SW")
t1=$(now_ms)
check_eq "swtpm endpoint: a command fails with TPM_RC_FAILURE" "$R" 101
check "... within the bound ($((t1 - t0)) ms)" test $((t1 - t0)) -le $((BOUND + SLACK))
sw getrandom 8 >/dev/null 2>"$T/sw.err"
check "tpm2_getrandom -T swtpm reports the TPM error 0x101" grep -q "(0x101)" "$T/sw.err"
M=$(loop_lines)
start_vtpmd
check "vtpmd back: the loop's commands succeed again" wait_loop "$M" ok 20
check "the same vtpm-guest g1 kept serving" kill -0 "$G1"
check "the same vtpm-guest s1 kept serving" kill -0 "$S1"
check "g1 logged the reconnect" grep -q "attached to vtpmd instance.*powered on" "$T/g1.log"
check_eq "after a crash s1's raw TPM was reset: TPM_RC_INITIALIZE" "$($CTL getrandom "$SW")" 100
check "s1: tpm2_startup -c, and it serves again" eval 'sw startup -c && sw getrandom 8 >/dev/null'

# ---- graceful restart: same launch resumes, PCRs kept ----
check "g1: tpm2_pcrextend 16" tpm g1 pcrextend "16:sha256=$(hexn 03 32)"
P16=$(pcr16 g1)
M=$(loop_lines)
check "vtpmd stopped (SIGTERM: state saved)" stop_vtpmd
check "... the loop's commands fail" wait_loop "$M" fail 10
M=$(loop_lines)
start_vtpmd
check "vtpmd back: the loop recovers" wait_loop "$M" ok 20
check_eq "g1 resumed: PCR 16 kept across the vtpmd restart" "$(pcr16 g1)" "$P16"
touch "$T/loop.stop"
sleep 0.5

# ---- a command that never reached vtpmd is sent again ----
kill9_vtpmd
start_vtpmd
N=$(grep -c "attached to vtpmd instance" "$T/g1.log")
R=$(tpm g1 getrandom --hex 8 2>"$T/err")
check_eq "right after a vtpmd restart the next command succeeds (not sent on the dead connection)" \
	"${#R}" 16
check "... on a new connection" test "$(grep -c "attached to vtpmd instance" "$T/g1.log")" -gt "$N"

# ---- a command that reached vtpmd but got no answer is not sent again ----
check "s1: tpm2_startup -c" sw startup -c
W=$(worker_of "guest-$(hexn b1 6)")
check "s1's worker found (pid $W)" test -n "$W"
kill -STOP "$W"
t0=$(now_ms)
R=$($CTL getrandom "$SW")
t1=$(now_ms)
check_eq "worker hung: the command fails with TPM_RC_FAILURE" "$R" 101
check "... within the bound ($((t1 - t0)) ms)" test $((t1 - t0)) -le $((BOUND + SLACK))
check "... and vtpm-guest says it may have run" grep -q "no answer within the command timeout (the command may have run)" "$T/s1.log"
kill -CONT "$W"
ok=
for i in $(seq 40); do
	R=$($CTL getrandom "$SW")
	[ "$R" = 0 ] && { ok=1; break; }
	sleep 0.25
done
check_eq "worker resumed: s1 serves again (same session state)" "$ok" 1
check "... the same worker (stopped and continued, not killed)" kill -0 "$W"
check "s1 still the same process" kill -0 "$S1"
t_done
