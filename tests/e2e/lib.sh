# tests/e2e/lib.sh: shared helpers for the end-to-end tests. Source it.
# Each test runs real processes (vtpmd, vtpm-guest, tpm2-tools through the
# vtpm TCTI) in a scratch directory, asserts real outcomes (bytes the TPM
# returned, state after restarts) and ends with "NAME: N passed, M failed".

set -u
TOP=${TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
B=${BUILD:-$TOP/build}
export LD_LIBRARY_PATH="$B${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export TSS2_LOG=${TSS2_LOG:-all+none}
# Under the sanitizer build the TCTI plugin needs the ASan runtime loaded
# first in the (uninstrumented) tpm2-tools; leaks at exit are not checked
# for the daemons in these process-level tests (unit tests check them).
TPM_PRELOAD=
case $B in
*asan*)
	# tpm2-tools load the uninstrumented plugin (build/asan/plain): preloading
	# the ASan runtime into them deadlocks in libp11-kit at exit.
	export LD_LIBRARY_PATH="$B/plain:$LD_LIBRARY_PATH"
	export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0}
	export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
	;;
esac
T_PASS=0
T_FAIL=0
T_PIDS=()
VTPMD_PID=

t_init() {
	T_NAME=$1
	T=$(mktemp -d "/tmp/vtpm-e2e-$T_NAME.XXXXXX")
	trap t_cleanup EXIT
}

t_cleanup() {
	local p
	exec 2>/dev/null	# no "Killed" job notices for the processes below
	for p in "${T_PIDS[@]}" $VTPMD_PID; do
		kill -9 "$p" 2>/dev/null
	done
	wait 2>/dev/null
	if [ "$T_FAIL" -ne 0 ] && [ -z "${KEEP:-}" ]; then
		echo "--- logs of failed test $T_NAME ---"
		tail -n 40 "$T"/*.log 2>/dev/null
	fi
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}

pass() { T_PASS=$((T_PASS + 1)); echo "ok   - $*"; }
fail() { T_FAIL=$((T_FAIL + 1)); echo "FAIL - $*"; }
# check DESC COMMAND...: passes if the command succeeds
check() { local d=$1; shift; if "$@"; then pass "$d"; else fail "$d"; fi; }
# check_eq DESC GOT WANT
check_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1 (got '$2', want '$3')"; fi
}
check_ne() {
	if [ "$2" != "$3" ]; then pass "$1"; else fail "$1 (both '$2')"; fi
}

t_done() {
	echo "$T_NAME: $T_PASS passed, $T_FAIL failed"
	[ "$T_FAIL" -eq 0 ]
}

wait_for_socket() {	# PATH [tries of 50 ms]
	local i
	for i in $(seq "${2:-400}"); do
		[ -S "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# hexN BYTE COUNT: COUNT copies of the hex byte
hexn() { printf "$1%.0s" $(seq "$2"); }

VTPMD_ARGS=()
start_vtpmd() {	# [extra args]
	rm -f "$T/vtpmd.sock"
	"$B/vtpmd" --dev --state-dir "$T/state" --listen "unix:$T/vtpmd.sock" \
		--admin "unix:$T/admin.sock" "${VTPMD_ARGS[@]}" "$@" >>"$T/vtpmd.log" 2>&1 &
	VTPMD_PID=$!
	wait_for_socket "$T/vtpmd.sock" && wait_for_socket "$T/admin.sock"
}

stop_vtpmd() {
	[ -n "$VTPMD_PID" ] || return 0
	kill -TERM "$VTPMD_PID" 2>/dev/null
	wait "$VTPMD_PID" 2>/dev/null
	local rc=$?
	VTPMD_PID=
	return $rc
}

kill9_vtpmd() {
	[ -n "$VTPMD_PID" ] || return 0
	kill -9 "$VTPMD_PID" 2>/dev/null
	wait "$VTPMD_PID" 2>/dev/null
	VTPMD_PID=
	return 0
}

declare -A GUEST_PID
# start_guest NAME HOSTDATA_BYTE LAUNCH_BYTE [extra args]
# Simulated claims: measurement 11..11, host data and launch id from the bytes.
start_guest() {
	local name=$1 hb=$2 lb=$3
	shift 3
	rm -f "$T/$name.sock"
	"$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn "$lb" 32)" --socket "$T/$name.sock" "$@" \
		>>"$T/$name.log" 2>&1 &
	GUEST_PID[$name]=$!
	T_PIDS+=($!)
	wait_for_socket "$T/$name.sock"
}

stop_guest() {
	local p=${GUEST_PID[$1]:-}
	[ -n "$p" ] || return 0
	kill -TERM "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	GUEST_PID[$1]=
	return 0
}

# tpm NAME TOOL ARGS...: runs tpm2_TOOL against guest NAME's socket
tpm() {
	local name=$1 tool=$2
	shift 2
	LD_PRELOAD=$TPM_PRELOAD "tpm2_$tool" -T "vtpm:$T/$name.sock" "$@"
}

vtpmctl() { "$B/vtpmctl" --admin "$T/admin.sock" "$@"; }

NV_COUNTER=0x1500016
nv_counter_define() { tpm "$1" nvdefine -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" $NV_COUNTER >/dev/null; }
nv_counter_incr() { tpm "$1" nvincrement -C o $NV_COUNTER >/dev/null 2>&1; }
nv_counter_read() { tpm "$1" nvread -C o $NV_COUNTER 2>/dev/null | od -An -tx1 | tr -d ' \n' | sed 's/^0*//; s/^$/0/'; }
pcr16() { tpm "$1" pcrread sha256:16 2>/dev/null | awk '/16:/ {print $2}'; }

# ---- helpers for the issue-2 acceptance tests ----

# python3 for raw socket work; the system one starts fastest (pyenv shims are slow).
if [ -z "${PY:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi

# t_bg COMMAND...: runs COMMAND in the background; t_cleanup kills it. Sets BG_PID.
t_bg() { "$@" & BG_PID=$!; T_PIDS+=($BG_PID); }

# Log lines written after a mark: MARK=$(log_mark FILE); ...; log_since FILE MARK
log_mark() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
log_since() { tail -n +"$(($2 + 1))" "$1" 2>/dev/null; }
# wait_log FILE MARK ERE [tries of 50 ms]: a line matching ERE appears after MARK
wait_log() {
	local i
	for i in $(seq "${4:-200}"); do
		log_since "$1" "$2" | grep -qE -- "$3" && return 0
		sleep 0.05
	done
	echo "    (no line matching '$3' in $1 since line $2)"
	return 1
}

# inst_field NAME FIELD: one scalar field of `vtpmctl --json show NAME`
# (json-c's pretty output: one "key":value per line); empty if no such instance
inst_field() {
	vtpmctl --json show "$1" 2>/dev/null |
		sed -n 's/^ *"'"$2"'": *"\{0,1\}\([^",]*\)"\{0,1\},\{0,1\} *$/\1/p' | head -n 1
}
# inst_name HOSTBYTE: the name --dev auto-enrolment gives (guest-<6 bytes of host data>)
inst_name() { echo "guest-$(hexn "$1" 6)"; }
# wait_inst_state NAME STATE [tries of 50 ms]
wait_inst_state() {
	local i
	for i in $(seq "${3:-100}"); do
		[ "$(inst_field "$1" state)" = "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# run_guest_once NAME HOSTBYTE LAUNCHBYTE [extra args]: vtpm-guest --no-retry in
# the foreground, for attaches that must fail; its exit status (124: it attached
# and was still running after 20 s).
run_guest_once() {
	local name=$1 hb=$2 lb=$3
	shift 3
	rm -f "$T/$name.sock"
	timeout 20 "$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn "$lb" 32)" --socket "$T/$name.sock" --no-retry "$@" \
		>>"$T/$name.log" 2>&1
}

# getrandom_ok NAME: tpm2_getrandom through guest NAME returns 16 bytes
getrandom_ok() {
	local r
	if r=$(tpm "$1" getrandom --hex 16 2>"$T/getrandom.err") && [ ${#r} -eq 32 ]; then
		return 0
	fi
	echo "    (tpm2_getrandom through $1: '$r' $(tr '\n' ' ' <"$T/getrandom.err"))"
	return 1
}

# proc_gone PID [tries of 50 ms]: PID exits (gone, or a zombie nobody reaped)
proc_gone() {
	local i
	for i in $(seq "${2:-40}"); do
		[ -e "/proc/$1" ] || return 0
		grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# vtpmd_alive: the vtpmd started by start_vtpmd is still running
vtpmd_alive() { [ -n "$VTPMD_PID" ] && kill -0 "$VTPMD_PID" 2>/dev/null; }

# testclient ARGS...: the channel-level test client against this vtpmd
testclient() { "$B/tests/vtpm-testclient" --server "unix:$T/vtpmd.sock" "$@"; }
# fails_ COMMAND...: succeeds if COMMAND fails (for check)
fails_() { ! "$@"; }
# quiet COMMAND...: COMMAND with its standard output dropped (for check)
quiet() { "$@" >/dev/null; }
