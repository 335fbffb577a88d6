# tests/e2e/ops_lib.sh: helpers the operator tests (test_backup.sh,
# test_migrate.sh, test_audit_metrics.sh) use, each defined here only if
# lib.sh does not define it already. Source after lib.sh.

if [ -z "${PY:-}" ]; then
	if [ -x /usr/bin/python3 ]; then PY=/usr/bin/python3; else PY=python3; fi
fi
declare -F log_mark >/dev/null ||
	log_mark() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
declare -F log_since >/dev/null ||
	log_since() { tail -n +"$(($2 + 1))" "$1" 2>/dev/null; }
# wait_log FILE MARK ERE [tries of 50 ms]: a line matching ERE appears after MARK
declare -F wait_log >/dev/null || wait_log() {
	local i
	for i in $(seq "${4:-60}"); do
		log_since "$1" "$2" | grep -qE -- "$3" && return 0
		sleep 0.05
	done
	echo "    (no line matching '$3' in $1 since line $2)"
	return 1
}
# inst_name HOSTBYTE: the name --dev auto-enrolment gives
declare -F inst_name >/dev/null || inst_name() { echo "guest-$(hexn "$1" 6)"; }
# run_guest_once NAME HOSTBYTE LAUNCHBYTE [extra args]: vtpm-guest --no-retry in
# the foreground (for attaches that must fail); its exit status
declare -F run_guest_once >/dev/null || run_guest_once() {
	local name=$1 hb=$2 lb=$3
	shift 3
	rm -f "$T/$name.sock"
	timeout 10 "$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn "$lb" 32)" --socket "$T/$name.sock" --no-retry "$@" \
		>>"$T/$name.log" 2>&1
}
declare -F vtpmd_alive >/dev/null ||
	vtpmd_alive() { [ -n "$VTPMD_PID" ] && kill -0 "$VTPMD_PID" 2>/dev/null; }
declare -F fails_ >/dev/null || fails_() { ! "$@"; }
true
