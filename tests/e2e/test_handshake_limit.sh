#!/usr/bin/env bash
# test_handshake_limit.sh: --max-handshakes bounds the connections that hold
# a handshake slot (accepted, not yet attached), so a flood of silent
# connections from the host cannot exhaust the parent; the handshake timeout
# (10 s) frees the slots of connections that never speak. An attached guest
# is served throughout: its session left the handshake table when it
# attached.
source "$(dirname "$0")/lib.sh"
t_init handshake_limit

RAW="python3 $(dirname "$0")/rawsock.py"
start_vtpmd --max-handshakes 3
start_guest a 0d 01
check "guest a attached and served" getrandom_ok a

# three silent connections hold all three slots
for i in 1 2 3; do
	t_bg $RAW "$T/vtpmd.sock" open 30 >"$T/hold$i.out" 2>&1
	HOLD[$i]=$BG_PID
done
sleep 0.5
M=$(log_mark "$T/vtpmd.log")
check "a fourth connection is closed at once" $RAW "$T/vtpmd.sock" closed 2
check "the log says why" wait_log "$T/vtpmd.log" "$M" "too many handshakes in progress"
check "a new guest cannot attach while the slots are full" \
	fails_ run_guest_once b 0e 01
check "  it failed in the handshake (the connection was closed)" \
	grep -q "handshake with vtpmd failed" "$T/b.log"
check "guest a is still served while the slots are full" getrandom_ok a

# the silent connections are dropped at the handshake timeout, freeing the slots
M=$(log_mark "$T/vtpmd.log")
sleep 11
for i in 1 2 3; do
	check "silent connection $i was closed by vtpmd after the handshake timeout (rawsock: open 30 failed)" \
		fails_ wait "${HOLD[$i]}"
done
start_guest b 0e 01
check "after the timeout a new guest attaches and is served" getrandom_ok b
check "guest a still served" getrandom_ok a
check "vtpmd is alive" vtpmd_alive
t_done
