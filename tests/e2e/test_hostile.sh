#!/usr/bin/env bash
# test_hostile.sh: a hostile host between guest and vtpmd (issue 8 item 6).
# hostile_proxy.py relays vtpm-guest's connections frame by frame and, per
# case, drops, duplicates, reorders, replays, delays, shortens, cuts or
# flips one frame: in the handshake, the evidence exchange, the attach and
# the TPM data phase, in both directions. Every tampering is detected: the
# session ends with a clear error in the log of the side that detects it.
# Nothing changes: a tampered NV write that was not acknowledged leaves the
# counter and the instance's generation (its count of durable commits) as
# they were; a write vtpmd committed is never lost or applied twice. Pure
# delay within the documented timeouts does not break a session. A second
# guest, connected to vtpmd directly, is served throughout by the same
# worker.
#
# Frame numbers on a new connection of a guest with --state-dir (protocol 2):
#   g2d: 0 handshake 1 | 1 handshake 3 | 2 EVIDENCE | 3 ATTACH | 4 ATTACH_CONFIRM | 5.. commands
#   d2g: 0 handshake 2 | 1 EVIDENCE | 2 INSTANCE | 3 ATTACHED | 4.. (STATE_GEN) responses
#
# `make check` runs a quick subset (one or two cases per phase and
# direction); `make check-hostile` (HOSTILE_FULL=1) runs every case.
source "$(dirname "$0")/lib.sh"
t_init hostile
QUICK="cmd-flip cmd-dup cmd-delay gen-reorder rsp-flip rsp-delay hs1-short hs2-flip"
QUICK+=" hs3-flip ev-flip vev-flip attach-flip inst-flip confirm-flip attached-flip"
# want CASE: run this case (all of them with HOSTILE_FULL=1)
want() {
	local c
	[ -n "${HOSTILE_FULL:-}" ] && return 0
	for c in $QUICK; do [ "$c" = "$1" ] && return 0; done
	return 1
}

PLAN=$T/plan
PLOG=$T/proxy.log
start_vtpmd
HOSTILE_TRACE=1 t_bg "$PY" "$(dirname "$0")/hostile_proxy.py" "$T/proxy.sock" "$T/vtpmd.sock" "$PLAN" "$PLOG"
PROXY_PID=$BG_PID
check "hostile proxy listening" wait_for_socket "$T/proxy.sock"

# The untouched guest: straight to vtpmd.
start_guest good 02 01
check "untouched guest works" getrandom_ok good
GOOD_WORKER=$(inst_field "$(inst_name 02)" worker_pid)

# guest_via_proxy NAME HOSTBYTE LAUNCHBYTE [args]: vtpm-guest through the proxy.
guest_via_proxy() {
	local name=$1 hb=$2 lb=$3
	shift 3
	rm -f "$T/$name.sock"
	mkdir -p "$T/gs-$hb"
	"$B/vtpm-guest" --server "unix:$T/proxy.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn "$lb" 32)" --socket "$T/$name.sock" \
		--state-dir "$T/gs-$hb" "$@" >>"$T/$name.log" 2>&1 &
	GUEST_PID[$name]=$!
	T_PIDS+=($!)
}

# The guest under attack, with a short command timeout (a dropped frame in
# this lock-step protocol shows as a missing answer).
guest_via_proxy h 01 01 --command-timeout 3000
check "guest through the proxy attaches" wait_for_socket "$T/h.sock"
check "guest through the proxy works" getrandom_ok h
check "define the NV counter" nv_counter_define h
check "increment it" nv_counter_incr h
H=$(inst_name 01)

# tpm2_nvincrement sends several commands (an HMAC session around the
# write). Find the NV_Increment frame itself from the proxy's trace of one
# run: the guest's frame just before vtpmd's STATE_GEN (1 + 8 + 16 = 25
# bytes), which vtpmd sends only when a write became durable; the response
# is vtpmd's frame right after it.
mark=$(log_mark "$PLOG")
check "calibration increment" nv_counter_incr h
read -r CMD_LEN RSP_LEN < <(log_since "$PLOG" "$mark" | awk '
	$1 == "frame" && $3 == "g2d" { last = $6 }
	$1 == "frame" && $3 == "d2g" && seen { print last, $6; exit }
	$1 == "frame" && $3 == "d2g" && $6 == 25 { seen = 1 }')
check "found the NV_Increment frame ($CMD_LEN bytes) and its response ($RSP_LEN)" \
	test -n "$CMD_LEN" -a -n "$RSP_LEN"

# ctr: h's counter in decimal (nv_counter_read prints hex); empty if unreadable
ctr() { local v; v=$(nv_counter_read h); [ -n "$v" ] && echo $((16#$v)); }
fired() { grep -c '^fired' "$PLOG" 2>/dev/null; }
# arm PLAN-LINE: writes the plan; remembers how many plans fired so far
arm() { NFIRED=$(fired); echo "$*" >"$PLAN"; }
did_fire() {
	local i
	for i in $(seq 100); do
		[ "$(fired)" -gt "$NFIRED" ] && return 0
		sleep 0.05
	done
	return 1
}
good_ok() {
	getrandom_ok good &&
		[ "$(inst_field "$(inst_name 02)" worker_pid)" = "$GOOD_WORKER" ]
}

# ---- data phase: the next frame of the running session ----
# data NAME DIR ACTION[ARG] EXPECT SIDE_LOG ERE: one NV_Increment through h
# with the next frame in DIR tampered. EXPECT: unchanged (the write did not
# run: counter and generation as before), applied (it ran once and is
# durable), ok (the session survives and the write succeeded).
data() {
	local name=$1 dir=$2 action=$3 expect=$4 log=$5 ere=$6
	local c0 g0 c1 g1 rc mark
	want "$name" || return 0
	c0=$(ctr)
	g0=$(inst_field "$H" generation)
	mark=$(log_mark "$T/$log.log")
	arm "$dir $action"
	nv_counter_incr h
	rc=$?
	check "$name: the tampering happened" did_fire
	# the tool's HMAC session stays loaded in the TPM when its connection
	# breaks (a resumed TPM keeps its sessions): flush it, as a resource
	# manager would, or the TPM runs out of session slots
	tpm h flushcontext -l >/dev/null 2>&1
	c1=$(ctr)
	g1=$(inst_field "$H" generation)
	case $expect in
	unchanged)
		check_ne "$name: the client got an error" "$rc" 0
		check_eq "$name: counter unchanged" "$c1" "$c0"
		check_eq "$name: generation unchanged (nothing committed)" "$g1" "$g0"
		;;
	applied)
		check_ne "$name: the client got an error (the answer was lost)" "$rc" 0
		check_eq "$name: the write ran exactly once" "$c1" "$((c0 + 1))"
		check "$name: and is durable (generation advanced)" test "$g1" -gt "$g0"
		;;
	applied-once)
		check_eq "$name: the write ran exactly once" "$c1" "$((c0 + 1))"
		check "$name: and is durable (generation advanced)" test "$g1" -gt "$g0"
		;;
	ok)
		check_eq "$name: the command succeeded" "$rc" 0
		check_eq "$name: counter advanced by one" "$c1" "$((c0 + 1))"
		;;
	esac
	[ -n "$ere" ] && check "$name: $log says why" wait_log "$T/$log.log" "$mark" "$ere"
	check "$name: untouched guest still served by the same worker" good_ok
}

WAUTH='vtpmd-worker\[[0-9]+\] guest-[0-9a-f]+: .*session ended: frame failed authentication'
GLOST='vtpm-guest\[[0-9]+\]: warning: .*connection to vtpmd lost: '

C="next:$CMD_LEN"	# the NV_Increment command
R="next:$RSP_LEN"	# its response
S="next:25"		# the STATE_GEN ahead of the response
data cmd-flip      g2d "$C flip"    unchanged vtpmd "$WAUTH"
data cmd-short     g2d "$C short"   unchanged vtpmd "$WAUTH"
data cmd-cut       g2d "$C cut"     unchanged vtpmd 'vtpmd-worker.*session (read|ended): .*(truncated|closed)'
data cmd-replay    g2d "$C replay"  unchanged vtpmd "$WAUTH"
data cmd-drop      g2d "$C drop"    unchanged h "${GLOST}no answer within the command timeout"
data cmd-dup       g2d "$C dup"     applied-once vtpmd "$WAUTH"
data cmd-delay     g2d "$C delay 500" ok "" ""
data gen-flip      d2g "$S flip"    applied h "${GLOST}.*authentication"
data gen-drop      d2g "$S drop"    applied h "${GLOST}.*authentication"
data gen-reorder   d2g "$S reorder" applied h "${GLOST}.*authentication"
data rsp-flip      d2g "$R flip"    applied h "${GLOST}.*authentication"
data rsp-short     d2g "$R short"   applied h "${GLOST}.*authentication"
data rsp-cut       d2g "$R cut"     applied h "${GLOST}"
data rsp-dup       d2g "$R dup"     applied-once h "${GLOST}"
data rsp-delay     d2g "$R delay 500" ok "" ""
data rsp-late      d2g "$R delay 4000" applied h "${GLOST}no answer within the command timeout"

check "after every data-phase case the guest still reads the counter" \
	test -n "$(nv_counter_read h)"
check "no false rollback alarm after all this" fails_ grep -q "rollback detected" "$T/h.log"
check_eq "the guest's freshness record never exceeds vtpmd's generation" \
	"$(awk -v g="$(inst_field "$H" generation)" '{print ($3 <= g)}' "$T"/gs-01/freshness-*)" 1

# ---- connection phases: a fresh one-shot guest (identity 05) per case ----
# conn NAME PLAN-LINE SIDE_LOG ERE: the attach must fail, SIDE_LOG saying why.
G5=$(inst_name 05)
conn() {
	local name=$1 plan=$2 log=$3 ere=$4 mark rc
	want "$name" || return 0
	mark=$(log_mark "$T/$log.log")
	arm "$plan"
	rm -f "$T/c5.sock"
	mkdir -p "$T/gs-05"
	timeout 30 "$B/vtpm-guest" --server "unix:$T/proxy.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn 05 32)" \
		--sim-launch-id "$(hexn 05 32)" --socket "$T/c5.sock" --state-dir "$T/gs-05" \
		--no-retry >>"$T/c5.log" 2>&1
	rc=$?
	check "$name: the tampering happened" did_fire
	check_eq "$name: the attach fails (exit 1)" "$rc" 1
	check "$name: $log says why" wait_log "$T/$log.log" "$mark" "$ere"
	check "$name: untouched guest still served" good_ok
}
PAUTH='vtpmd\[[0-9]+\]: .*session [0-9]+ closed: frame failed authentication'
GFAIL='vtpm-guest\[[0-9]+\]: warning: guest_try_connect: '

conn hs1-flip      "g2d 0 flip"    c5    "${GFAIL}handshake with vtpmd failed"
conn hs1-short     "g2d 0 short"   vtpmd 'session [0-9]+ closed: bad handshake message 1'
conn hs2-flip      "d2g 0 flip"    c5    "${GFAIL}handshake with vtpmd failed"
conn hs2-cut       "d2g 0 cut"     c5    "${GFAIL}handshake with vtpmd failed"
conn hs3-flip      "g2d 1 flip"    vtpmd 'session [0-9]+ closed: bad handshake message 3'
conn hs3-dup       "g2d 1 dup"     vtpmd "$PAUTH"
conn ev-flip       "g2d 2 flip"    vtpmd "$PAUTH"
conn ev-short      "g2d 2 short"   vtpmd "$PAUTH"
conn ev-dup        "g2d 2 dup"     vtpmd "$PAUTH"
conn ev-cut        "g2d 2 cut"     vtpmd 'session [0-9]+ closed: truncated frame'
conn vev-flip      "d2g 1 flip"    c5    "${GFAIL}no evidence from vtpmd: .*authentication"
conn vev-dup       "d2g 1 dup"     c5    "${GFAIL}attach failed: .*authentication"
conn attach-flip   "g2d 3 flip"    vtpmd "$PAUTH"
conn attach-replay "g2d 3 replay"  vtpmd "$PAUTH"
conn attach-drop   "g2d 3 drop"    vtpmd 'session [0-9]+ closed: .*(timed out|timeout)'
conn inst-flip     "d2g 2 flip"    c5    "${GFAIL}attach failed: .*authentication"
# From ATTACH on, identity 05 has an instance; until the guest confirms the
# generation, its worker changes nothing (docs/PROTOCOL.md section 8).
G5GEN=$(inst_field "$G5" generation)
check "identity 05 has an instance now" test -n "$G5GEN"
conn confirm-flip  "g2d 4 flip"    vtpmd "$WAUTH"
conn confirm-drop  "g2d 4 drop"    vtpmd 'vtpmd-worker.*session ended: no ATTACH_CONFIRM within 10 s'
check_eq "unconfirmed attaches committed nothing (generation of 05 unchanged)" \
	"$(inst_field "$G5" generation)" "$G5GEN"
conn attached-flip "d2g 3 flip"    c5    "${GFAIL}attach failed: .*authentication"
conn hs-too-slow   "g2d 2 delay 11000" vtpmd 'session [0-9]+ closed: .*(timed out|timeout)'

# ---- pure delay: a whole session with every frame 100 ms late works ----
arm "g2d 0 delayall 100"
guest_via_proxy slow 06 01
check "delayed session: attaches" wait_for_socket "$T/slow.sock" 600
check "delayed session: GetRandom works" getrandom_ok slow
check "delayed session: NV define and increment work" nv_counter_define slow
check "delayed session: increment" nv_counter_incr slow
check_eq "delayed session: counter 1" "$(nv_counter_read slow)" 1
rm -f "$PLAN"
stop_guest slow

check "the attacked guest works at the end" nv_counter_incr h
check "untouched guest works at the end, same worker" good_ok
check "vtpmd still running" vtpmd_alive
kill "$PROXY_PID" 2>/dev/null
check "vtpmd stops cleanly" stop_vtpmd
t_done
