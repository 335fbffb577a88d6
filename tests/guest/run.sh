#!/usr/bin/env bash
# tests/guest/run.sh: make check-guest. Boots Debian's stock 6.1 kernel under
# QEMU (TCG) with a busybox initramfs and checks the guest driver end to end:
#
#   path A  guest: vtpm-guest --proxy (vtpm_proxy -> /dev/tpm0, /dev/tpmrm0)
#           -> QEMU user networking (10.0.2.2) -> vtpm-relay (tcp) -> vtpmd (tcp);
#           boot 1: tpm2-tools work, vtpmd is killed and restarted under load;
#           boot 2 (a new launch): the NV counter is kept, PCR 16 is reset
#   path B  host: vtpm-guest --swtpm -> vtpmd; QEMU -tpmdev emulator + tpm-crb;
#           SeaBIOS measures into PCRs 0-7, the guest reads them
#
# The kernel package (the linux-image-6.1.0-*-amd64 that linux-image-amd64
# depends on) is downloaded once with apt-get download and kept, unpacked
# and depmod'ed, under $BUILD/guest/ (rerun: no download). Every QEMU run is
# bounded (timeout $QEMU_TIMEOUT); verdicts come from serial console markers
# (tests/guest/init.sh). Prints "check-guest: N passed, M failed".
#
# usage: tests/guest/run.sh    (BUILD=path/to/build; KEEP=1 keeps the scratch dir)
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$TOP/build}
G=$B/guest
QEMU_TIMEOUT=${QEMU_TIMEOUT:-300}
CMD_TIMEOUT_MS=${CMD_TIMEOUT_MS:-4000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
T0=$(date +%s.%N)
PASSED=0
FAILED=0
PIDS=()
VTPMD_PID=

elapsed() { $PY -c "import sys; print('%.1f' % (float(sys.argv[2]) - float(sys.argv[1])))" "$1" "$(date +%s.%N)"; }
say() { echo "[$(elapsed "$T0") s] $*"; }
pass() { PASSED=$((PASSED + 1)); echo "ok   - $*"; }
fail() { FAILED=$((FAILED + 1)); echo "FAIL - $*"; }
done_() {
	echo "check-guest: $PASSED passed, $FAILED failed (total $(elapsed "$T0") s)"
	[ "$FAILED" -eq 0 ]
	exit $?
}

T=$(mktemp -d /tmp/vtpm-check-guest.XXXXXX)
cleanup() {
	local p
	for p in "${PIDS[@]}" $VTPMD_PID; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$FAILED" -ne 0 ] || [ -n "${KEEP:-}" ]; then
		echo "--- logs kept in $T"
	else
		rm -rf "$T"
	fi
}
trap cleanup EXIT

for tool in qemu-system-x86_64 busybox cpio depmod apt-get dpkg-deb; do
	command -v $tool >/dev/null || { fail "$tool missing (tools/setup.sh --guest)"; done_; }
done
for f in "$B/vtpmd" "$B/vtpm-guest" "$B/vtpm-relay" "$G/rawtpm" "$B/libtss2-tcti-vtpm.so.0"; do
	[ -x "$f" ] || { fail "$f not built"; done_; }
done

# ---- the kernel: download, unpack, depmod once ----
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$KPKG" ] || { fail "apt-cache knows no linux-image-amd64 (apt-get update?)"; done_; }
KVER=${KPKG#linux-image-}
KROOT=$G/kernel-$KVER
if [ ! -f "$KROOT/.ready" ]; then
	say "fetching $KPKG"
	rm -rf "$KROOT" "$G"/linux-image-*.deb
	mkdir -p "$G"
	(cd "$G" && apt-get download -q "$KPKG" >"$T/apt.log" 2>&1) ||
		{ cat "$T/apt.log"; fail "apt-get download $KPKG"; done_; }
	dpkg-deb -x "$G/${KPKG}"_*.deb "$KROOT.tmp" && depmod -b "$KROOT.tmp" "$KVER" &&
		rm -f "$G/${KPKG}"_*.deb && mv "$KROOT.tmp" "$KROOT" && touch "$KROOT/.ready" ||
		{ fail "unpacking $KPKG"; done_; }
fi
KERNEL=$KROOT/boot/vmlinuz-$KVER
say "kernel $KVER ready"

# ---- the initramfs (rebuilt when an input changed) ----
INITRD=$G/initrd.cpio.gz
if [ ! -f "$INITRD" ] || [ -n "$(find "$B/vtpm-guest" "$G/rawtpm" "$B/libtss2-tcti-vtpm.so.0" \
	"$TOP/tests/guest/init.sh" "$TOP/tests/guest/mkinitrd.sh" "$KROOT/.ready" \
	-newer "$INITRD" 2>/dev/null)" ]; then
	bash "$TOP/tests/guest/mkinitrd.sh" "$INITRD" "$KROOT" "$KVER" "$B/vtpm-guest" \
		"$G/rawtpm" "$TOP/tests/guest/init.sh" "$B/libtss2-tcti-vtpm.so.0" ||
		{ fail "mkinitrd"; done_; }
fi
say "initramfs ready"

# ---- host side ----
read -r P_VTPMD P_RELAY < <($PY -c '
import socket
ss = [socket.socket() for _ in range(2)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])')

start_vtpmd() {
	"$B/vtpmd" --dev --state-dir "$T/state" --listen "tcp:127.0.0.1:$P_VTPMD" \
		--admin "unix:$T/admin.sock" >>"$T/vtpmd.log" 2>&1 &
	VTPMD_PID=$!
	local i
	for i in $(seq 100); do
		[ -S "$T/admin.sock" ] && grep -q "listening for guests" "$T/vtpmd.log" && return 0
		sleep 0.05
	done
	return 1
}
kill9_vtpmd() {
	kill -9 "$VTPMD_PID" 2>/dev/null
	wait "$VTPMD_PID" 2>/dev/null
	VTPMD_PID=
	rm -f "$T/admin.sock"
}

start_vtpmd || { fail "vtpmd did not start"; done_; }
"$B/vtpm-relay" --listen "tcp:127.0.0.1:$P_RELAY" --connect "tcp:127.0.0.1:$P_VTPMD" \
	>"$T/relay.log" 2>&1 &
PIDS+=($!)
say "vtpmd on 127.0.0.1:$P_VTPMD, vtpm-relay on 127.0.0.1:$P_RELAY"

hex() { printf "$1%.0s" $(seq "$2"); }

# run_guest NAME APPEND [qemu args...]: boots the guest, acting on its
# E2E-STEP markers, and scores its E2E-CHECK and E2E-RESULT lines.
run_guest() {
	local name=$1 append=$2 con=$T/$1.console t1 qpid steps_done="" line
	shift 2
	t1=$(date +%s.%N)
	timeout "$QEMU_TIMEOUT" qemu-system-x86_64 -machine q35 -accel tcg -m 512 -smp 1 \
		-nographic -no-reboot -kernel "$KERNEL" -initrd "$INITRD" \
		-device virtio-rng-pci \
		-append "console=ttyS0 panic=-1 loglevel=4 $append" "$@" \
		</dev/null >"$con" 2>&1 &
	qpid=$!
	while kill -0 "$qpid" 2>/dev/null; do
		if [[ $steps_done != *kill* ]] && grep -q "^E2E-STEP kill-vtpmd" "$con"; then
			kill9_vtpmd
			steps_done+=" kill"
			say "$name: vtpmd killed (SIGKILL)"
		fi
		if [[ $steps_done != *restart* ]] && grep -q "^E2E-STEP restart-vtpmd" "$con"; then
			start_vtpmd || fail "$name: vtpmd did not restart"
			steps_done+=" restart"
			say "$name: vtpmd restarted"
		fi
		sleep 0.1
	done
	wait "$qpid"
	local rc=$?
	tr -d '\r' <"$con" >"$con.txt"
	while IFS= read -r line; do
		case $line in
		"E2E-CHECK ok "*) pass "$name: ${line#E2E-CHECK ok }" ;;
		"E2E-CHECK FAIL "*) fail "$name: ${line#E2E-CHECK FAIL }" ;;
		esac
	done < <(grep -a '^E2E-CHECK ' "$con.txt")
	if grep -aq '^E2E-RESULT PASS' "$con.txt"; then
		pass "$name: guest verdict PASS (QEMU exit $rc, $(elapsed "$t1") s)"
	else
		fail "$name: no E2E-RESULT PASS (QEMU exit $rc, $(elapsed "$t1") s)"
		tail -n 60 "$con.txt"
	fi
}

HD_A=$(hex a1 32)
NET="-netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile="
COMMON_A="e2e=proxy e2e.port=$P_RELAY e2e.hostdata=$HD_A e2e.timeout=$CMD_TIMEOUT_MS"
say "path A, boot 1 (launch 01...)"
# shellcheck disable=SC2086
run_guest pathA-boot1 "$COMMON_A e2e.phase=1 e2e.launch=$(hex 01 32)" $NET
say "path A, boot 2 (a new launch: 02...)"
# shellcheck disable=SC2086
run_guest pathA-boot2 "$COMMON_A e2e.phase=2 e2e.launch=$(hex 02 32)" $NET

n=$(grep -c "conn_new: conn .*: open from tcp:127.0.0.1" "$T/relay.log")
[ "$n" -ge 3 ] && pass "path A went through vtpm-relay ($n connections relayed)" ||
	fail "path A: vtpm-relay relayed $n connections"

say "path B: QEMU tpm-crb backed by vtpm-guest --swtpm"
"$B/vtpm-guest" --server "tcp:127.0.0.1:$P_VTPMD" --swtpm "$T/swtpm" --attestation sim \
	--sim-host-data "$(hex b2 32)" --command-timeout 10000 >"$T/swtpm-guest.log" 2>&1 &
PIDS+=($!)
for i in $(seq 100); do [ -S "$T/swtpm.ctrl" ] && break; sleep 0.05; done
if [ -S "$T/swtpm.ctrl" ]; then
	run_guest pathB-crb "e2e=crb" -nic none \
		-chardev "socket,id=chrtpm,path=$T/swtpm.ctrl" \
		-tpmdev emulator,id=tpm0,chardev=chrtpm -device tpm-crb,tpmdev=tpm0
	grep -q "INIT (power cycle): result 0" "$T/swtpm-guest.log" &&
		pass "pathB-crb: QEMU's CMD_INIT reached vtpmd as a power cycle" ||
		fail "pathB-crb: no successful INIT in the vtpm-guest log"
else
	fail "vtpm-guest --swtpm did not start"
	cat "$T/swtpm-guest.log"
fi
done_
