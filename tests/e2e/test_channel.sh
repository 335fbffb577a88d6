#!/usr/bin/env bash
# test_channel.sh: the authenticated channel under attack (issue 2: "the
# handshake fails with ... bad evidence; a flipped ciphertext byte, a
# replayed frame and a dropped frame each end the session").
# vtpm-testclient plays a guest and breaks one thing per run; each run must
# end its session the expected way, leave a log line in vtpmd saying why, and
# leave a normal guest attached the whole time working.
source "$(dirname "$0")/lib.sh"
t_init channel

start_vtpmd
start_guest good 01 01
check "good guest attached and answers GetRandom" getrandom_ok good
GOOD_WORKER=$(inst_field "$(inst_name 01)" worker_pid)

# The tool itself: a clean run works, and it can report a mismatch.
testclient --host-byte 20 --expect ok >"$T/tc-clean.out"
check_eq "testclient: clean session attaches (exit 0)" "$?" 0
check_eq "testclient: clean session ran 3 GetRandom" \
	"$(grep -c 'outcome: ok (3 GetRandom' "$T/tc-clean.out")" 1
testclient --host-byte 21 --expect closed >/dev/null
check_eq "testclient: reports a mismatch (clean session, expect closed)" "$?" 1
testclient --host-byte 22 --flip-frame 3 --expect ok >/dev/null
check_eq "testclient: reports a mismatch (flipped frame, expect ok)" "$?" 1

# fault NAME EXPECT LOG_ERE CLIENT_ARGS...: one attack on a fresh identity.
HB=30
fault() {
	local name=$1 expect=$2 ere=$3 mark
	shift 3
	HB=$((HB + 1))
	mark=$(log_mark "$T/vtpmd.log")
	if testclient --host-byte "$HB" --expect "$expect" "$@" >"$T/tc-$name.out" 2>&1; then
		pass "$name: session ended as expected ($expect): $(grep outcome: "$T/tc-$name.out")"
	else
		fail "$name: $(tr '\n' ' ' <"$T/tc-$name.out")"
	fi
	check "$name: vtpmd log says why" wait_log "$T/vtpmd.log" "$mark" "$ere"
	check "$name: good guest still works" getrandom_ok good
}

PARENT_AUTH='vtpmd\[[0-9]+\]: .*session [0-9]+ closed: frame failed authentication'
WORKER_AUTH='vtpmd-worker\[[0-9]+\] guest-[0-9a-f]+: .*session ended: frame failed authentication'

# Transport frames: 1 EVIDENCE and 2 ATTACH are read by the parent,
# 3.. TPM commands by the instance's worker.
fault flip-evidence   closed "$PARENT_AUTH" --flip-frame 1
fault flip-attach     closed "$PARENT_AUTH" --flip-frame 2
fault flip-command    closed "$WORKER_AUTH" --flip-frame 3
fault flip-command-2  closed "$WORKER_AUTH" --flip-frame 4
fault replay-evidence closed "$PARENT_AUTH" --replay-frame 1
fault replay-attach   closed "$WORKER_AUTH" --replay-frame 2
fault replay-command  closed "$WORKER_AUTH" --replay-frame 3
fault drop-evidence   closed "$PARENT_AUTH" --drop-frame 1
fault drop-attach     closed "$PARENT_AUTH" --drop-frame 2
fault drop-command    closed "$WORKER_AUTH" --drop-frame 3
fault garbage-evidence closed "$PARENT_AUTH" --garbage-frame 1
fault garbage-command closed "$WORKER_AUTH" --garbage-frame 3
fault zero-evidence   closed 'session [0-9]+ closed: zero-length frame' --zero-frame 1
fault zero-command    closed 'vtpmd-worker.*session read: malformed message' --zero-frame 3
fault truncate-evidence closed 'session [0-9]+ closed: truncated frame' --truncate=1
fault truncate-command closed 'vtpmd-worker.*session read: message truncated' --truncate=3
fault tamper-hs       closed 'session [0-9]+ closed: bad handshake message 3' --tamper-hs
fault evidence-for-other-session refused \
	'guest evidence refused: report data does not match this session' \
	--bad-evidence binding --expect-error "report data does not match this session"
fault evidence-bad-signature refused \
	'guest evidence refused: .*signature does not verify' \
	--bad-evidence signature --expect-error "signature does not verify"
fault relayed-evidence refused \
	'guest evidence refused: report data does not match this session' \
	--relay-evidence --expect-error "report data does not match this session"
check "relayed-evidence: the same evidence works in its own session" \
	grep -q 'session A (its own evidence): ok' "$T/tc-relayed-evidence.out"
fault attach-before-evidence refused 'session [0-9]+ closed: unexpected message' \
	--skip-evidence --expect-error "unexpected message"
fault command-before-attach refused 'session [0-9]+ closed: unexpected message' \
	--skip-attach --expect-error "unexpected message"
fault attach-bad-version refused 'session [0-9]+ closed: unsupported protocol version' \
	--attach-version 9 --expect-error "unsupported protocol version"

# Sessions that failed before ATTACH never reached a TPM: no instance was
# enrolled for their identities (host bytes as numbered by fault above);
# those that failed after it have one.
no_inst=
for hb in 31 32 35 38 39 41 43 45 47 48 49 51 52 53; do
	[ -z "$(inst_field "$(inst_name "$hb")" name)" ] || no_inst="$no_inst $hb"
done
check_eq "no instance for identities refused before ATTACH" "$no_inst" ""
with_inst=
for hb in 33 34 36 37 40 42 44 46 50; do
	[ -n "$(inst_field "$(inst_name "$hb")" name)" ] || with_inst="$with_inst $hb"
done
check_eq "an instance for identities that attached" "$with_inst" ""

# The guest side checks vtpmd's evidence too: a pinned measurement that is
# not vtpmd's is refused, vtpmd's own is accepted.
VTPMD_MEAS=$(python3 -c 'import hashlib; print(hashlib.blake2b(b"vtpmd-sim-measurement", digest_size=48).hexdigest())')
run_guest_once pinwrong 60 01 --vtpmd-measurement "$(hexn 22 48)"
check_eq "vtpm-guest refuses vtpmd whose measurement is not pinned (exit 1)" "$?" 1
check "vtpm-guest log says why" grep -q "vtpmd's evidence refused: measurement $VTPMD_MEAS is not pinned" "$T/pinwrong.log"
start_guest pinright 61 01 --vtpmd-measurement "$VTPMD_MEAS"
check "vtpm-guest with vtpmd's measurement pinned attaches and works" getrandom_ok pinright

check "good guest works at the end" getrandom_ok good
check_eq "good guest kept its worker through every fault" \
	"$(inst_field "$(inst_name 01)" worker_pid)" "$GOOD_WORKER"
check "vtpmd still running" vtpmd_alive
check "vtpmd stops cleanly on SIGTERM" stop_vtpmd
t_done
