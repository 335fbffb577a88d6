#!/usr/bin/env bash
# test_garbage.sh: hostile bytes on every socket (issue 2: "random bytes,
# oversized lengths and truncated frames on every socket: the session is
# closed, a log line says why, and vtpmd keeps serving the others").
# Sockets: vtpmd's guest listener (handshake phase; the transport phase and
# the worker's side are attacked by test_channel.sh), vtpmd's admin socket,
# vtpm-guest's local socket. After every case a good guest's tpm2_getrandom
# must succeed and both daemons must still run.
source "$(dirname "$0")/lib.sh"
t_init garbage

RAW="$PY $(dirname "$0")/rawsock.py"
# local requests: u32 op | u32 len | body; OP_TPM_COMMAND (1) body = u8
# locality | TPM command. This one is TPM2_GetRandom(16) at locality 0.
getrandom_req=000000010000000d0080010000000c0000017b0010

start_vtpmd
start_guest good 01 01
check "good guest works" getrandom_ok good

# both_alive: vtpmd and vtpm-guest still run and serve
both_alive() {
	getrandom_ok good && vtpmd_alive && kill -0 "${GUEST_PID[good]}" 2>/dev/null
}
# attack NAME SOCKET LOGFILE LOG_ERE ACTIONS...: one hostile connection; its
# rawsock actions must all succeed (they assert the close or the error
# reply), LOGFILE must get a line matching LOG_ERE (none if "-"), and
# everything must still work afterwards
attack() {
	local name=$1 sock=$2 logf=$3 ere=$4 mark
	shift 4
	mark=$(log_mark "$logf")
	if $RAW "$sock" "$@" >"$T/raw-$name.out" 2>&1; then
		pass "$name: connection handled ($(tail -n 1 "$T/raw-$name.out"))"
	else
		fail "$name: $(tr '\n' ' ' <"$T/raw-$name.out")"
	fi
	[ "$ere" = - ] || check "$name: log says why" wait_log "$logf" "$mark" "$ere"
	check "$name: good guest and both daemons still work" both_alive
}

# An idle connection that never speaks: vtpmd must drop it after its 10 s
# handshake deadline while serving everyone else meanwhile.
IDLE_MARK=$(log_mark "$T/vtpmd.log")
t_bg $RAW "$T/vtpmd.sock" closed 20 >"$T/raw-idle.out" 2>&1
IDLE_PID=$BG_PID
IDLE_START=$SECONDS

# ---- vtpmd's guest listener, handshake phase ----
L=$T/vtpmd.sock
V=$T/vtpmd.log
attack listen-64-random-bytes "$L" "$V" 'session [0-9]+ closed: bad handshake message 1' \
	send 0040 rand 64 closed 5
attack listen-4k-random-then-eof "$L" "$V" 'session [0-9]+ closed: ' \
	rand 4096 shut closed 5
attack listen-zero-length "$L" "$V" 'session [0-9]+ closed: zero-length frame' \
	send 0000 closed 5
attack listen-65535-short-body-eof "$L" "$V" 'session [0-9]+ closed: truncated frame' \
	send ffff rand 10 shut closed 5
attack listen-65535-random-body "$L" "$V" 'session [0-9]+ closed: bad handshake message 1' \
	send ffff rand 65535 closed 5
attack listen-1-byte-then-eof "$L" "$V" 'session [0-9]+ closed: truncated frame' \
	send 00 shut closed 5
attack listen-low-order-key "$L" "$V" 'session [0-9]+ closed: bad handshake message 1' \
	send 0020 fill 32 00 closed 5
attack listen-random-msg3 "$L" "$V" 'session [0-9]+ closed: bad handshake message 3' \
	send 0020 rand 32 recv 98 5 send 0040 rand 64 closed 5
attack listen-65535-msg3 "$L" "$V" 'session [0-9]+ closed: bad handshake message 3' \
	send 0020 rand 32 recv 98 5 send ffff rand 65535 closed 5
attack listen-truncated-msg3 "$L" "$V" 'session [0-9]+ closed: truncated frame' \
	send 0020 rand 32 recv 98 5 send 0040 rand 20 shut closed 5

# ---- vtpmd's admin socket: one JSON line in, one out ----
A=$T/admin.sock
attack admin-not-json "$A" "$V" 'admin: malformed request' \
	text 'hello, vtpmd\n' line-has 'malformed JSON request' 5 closed 5
attack admin-huge-u32 "$A" "$V" 'admin: malformed request' \
	send ffffffff0a line-has '"ok":false' 5 closed 5
attack admin-random-line "$A" "$V" 'admin: malformed request' \
	rand 1000 text '\n' line-has '"ok":false' 5 closed 5
attack admin-over-64k "$A" "$V" 'admin: request not read \(too long' \
	fill 70000 41 text '\n' closed 5
attack admin-deep-nesting "$A" "$V" 'admin: malformed request' \
	fill 20000 5b fill 20000 5d text '\n' line-has 'malformed JSON request' 5 closed 5
attack admin-u32-then-eof "$A" "$V" 'admin: request not read' \
	send ffffffff shut line-has '"ok":false' 5 closed 5
attack admin-no-op "$A" "$V" - \
	text '{"op":5}\n' line-has 'request has no \"op\"' 5 closed 5
attack admin-bad-name "$A" "$V" - \
	text '{"op":"show","name":"../../etc/passwd"}\n' line-has '"ok":false' 5 closed 5
# No newline, then silence: vtpmd gives up after its read deadline. Guests
# are served meanwhile (their workers answer without the parent).
MARK=$(log_mark "$V")
t_bg $RAW "$A" text '{"op":"list"' line-has 'at most 64 KiB' 10 closed 5 >"$T/raw-admin-slow.out" 2>&1
SLOW=$BG_PID
sleep 0.3
check "admin-no-newline: guests are served while the admin client stalls" getrandom_ok good
wait "$SLOW"
check_eq "admin-no-newline: vtpmd answers with an error and closes" "$?" 0
check "admin-no-newline: log says why" wait_log "$V" "$MARK" 'admin: request not read'
check "admin socket still works (vtpmctl list)" quiet vtpmctl --json list
check "admin socket is mode 0600" [ "$(stat -c %a "$A")" = 600 ]

# ---- vtpm-guest's local socket ----
G=$T/good.sock
GL=$T/good.log
attack local-oversized-request "$G" "$GL" 'local client .*(oversized|[0-9]+-byte) request' \
	send 00000001000186a0 expect 0000000200000000 5 closed 5
attack local-max-u32-length "$G" "$GL" 'local client .*(oversized|[0-9]+-byte) request' \
	send 00000001ffffffff rand 100 expect 0000000200000000 5 closed 5
# Well framed but wrong inside: an error reply, and the connection still serves.
attack local-bad-tpm-size "$G" "$GL" - \
	send 000000010000000d008001000000990000017b0010 expect 0000000200000000 5 \
	send "$getrandom_req" expect 000000000000001c 5 recv 28 5 open 0.2
attack local-bad-locality "$G" "$GL" - \
	send 000000010000000d0580010000000c0000017b0010 expect 0000000200000000 5 open 0.2
attack local-short-tpm-command "$G" "$GL" - \
	send 00000001000000050080010000 expect 0000000200000000 5 open 0.2
attack local-over-4096-command "$G" "$GL" - \
	send 000000010000100200800100001001 fill 4091 00 expect 0000000200000000 5 open 0.2
attack local-unknown-op "$G" "$GL" - \
	send 7f7f7f7f00002000 rand 8192 expect 0000000200000000 5 open 0.2
attack local-random-after-hello "$G" "$GL" - \
	send 00000003000000080000000100000000 expect 00000000000000080000000100000000 5 \
	rand 5000 shut closed 5
attack local-truncated-request "$G" "$GL" - \
	send 0000000100000064 rand 50 shut closed 5
attack local-truncated-then-silence "$G" "$GL" - \
	send 0000000100000064 rand 50 open 0.5
# Garbage TPM commands go through to the TPM, which answers with an error code.
attack local-garbage-tpm-command "$G" "$GL" - \
	send 000000010000006f0080010000006edeadbeef rand 100 expect 00000000 5 recv 4 5 recv 10 5 open 0.2
check "the TPM answered the garbage command with an error" \
	$PY -c 'import sys; r = open(sys.argv[1]).read().split("recv: ")[2][:20]; sys.exit(0 if r[12:20] != "00000000" else 1)' "$T/raw-local-garbage-tpm-command.out"

# ---- the idle connection ----
wait "$IDLE_PID"
check_eq "idle connection: vtpmd closed it" "$?" 0
check "idle connection: closed at the handshake deadline (about 10 s)" [ $((SECONDS - IDLE_START)) -ge 9 ]
check "idle connection: log says why" wait_log "$V" "$IDLE_MARK" 'session [0-9]+ closed: handshake timed out'

check "good guest works at the end" getrandom_ok good
check "vtpmd still running" vtpmd_alive
stop_guest good
check "vtpmd stops cleanly" stop_vtpmd
t_done
