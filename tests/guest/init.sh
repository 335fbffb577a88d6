#!/bin/busybox sh
# tests/guest/init.sh: /init of the check-guest initramfs (busybox). Reads
# its scenario from the kernel command line and reports on the serial
# console with marker lines the host script (tests/guest/run.sh) reads:
#   E2E-CHECK ok|FAIL <what>     one assertion
#   E2E-STEP <name>              asks the host to act (kill-vtpmd, restart-vtpmd)
#   E2E-RESULT PASS|FAIL         the scenario's verdict, then reboot -f
# Scenarios (e2e=):
#   proxy  path A: vtpm-guest --proxy over QEMU user networking to the host;
#          e2e.phase=1: first boot (TPM work, kill/restart of vtpmd),
#          e2e.phase=2: a new launch (NV counter kept, PCR 16 reset)
#   crb    path B: QEMU's tpm-crb backed by vtpm-guest --swtpm on the host
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /usr/sbin /sbin
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin:/sbin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo 4 >/proc/sys/kernel/printk

FAILED=0
ok() { echo "E2E-CHECK ok $*"; }
bad() { echo "E2E-CHECK FAIL $*"; FAILED=1; }
finish() {
	echo "--- tpm kernel messages"
	dmesg | grep -iE 'tpm|vtpm' | tail -n 20
	if [ -f /tmp/guest.log ]; then
		echo "--- vtpm-guest log (tail)"
		tail -n 25 /tmp/guest.log
	fi
	if [ "$FAILED" -eq 0 ]; then echo "E2E-RESULT PASS"; else echo "E2E-RESULT FAIL"; fi
	sync
	reboot -f
}

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^$1=//p" | tail -n 1; }
MODE=$(arg e2e)
PHASE=$(arg e2e.phase)
PORT=$(arg e2e.port)
LAUNCH=$(arg e2e.launch)
HOSTDATA=$(arg e2e.hostdata)
TIMEOUT_MS=$(arg e2e.timeout)
export TSS2_LOG=all+none
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
echo "E2E: scenario $MODE phase ${PHASE:-1}, uptime $(cut -d' ' -f1 /proc/uptime) s"

for m in $(cat /etc/modules.order); do
	insmod "/lib/modules/$m" || bad "insmod $m"
done

# tpm2 TOOL ARGS: a tpm2-tools command; its stderr goes to /tmp/tool.err
t2() { local tool=$1; shift; "tpm2_$tool" "$@" 2>/tmp/tool.err; }
pcr16() { t2 pcrread sha256:16 | sed -n 's/^ *16 *: *0x//p'; }
nvcount() { t2 nvread -C o 0x1500016 | od -An -tx1 | tr -d ' \n'; }
# PCR_Read(sha256:16) on the raw device: the kernel waits up to 120 s for
# this command, so the bound seen is vtpm-guest's --command-timeout
RAW_PCR16=8001000000140000017e00000001000b03000001
ZERO64=0000000000000000000000000000000000000000000000000000000000000000
ONES=0101010101010101010101010101010101010101010101010101010101010101

wait_dev() {	# PATH SECONDS
	local i=0
	while [ ! -e "$1" ] && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i + 1)); done
	[ -e "$1" ]
}

case $MODE in
proxy)
	ip link set lo up
	ip link set eth0 up
	ip addr add 10.0.2.15/24 dev eth0
	ip route add default via 10.0.2.2
	[ -e /dev/vtpmx ] && ok "/dev/vtpmx present" || bad "/dev/vtpmx missing"
	# boot 2 also serves the local socket at its default path, for -T vtpm
	LOCAL=
	if [ "${PHASE:-1}" = 2 ]; then mkdir -p /run/vtpm; LOCAL="--socket /run/vtpm/tpm.sock"; fi
	# shellcheck disable=SC2086
	vtpm-guest --proxy $LOCAL --server "tcp:10.0.2.2:$PORT" --allow-remote --attestation sim \
		--sim-host-data "$HOSTDATA" --sim-launch-id "$LAUNCH" \
		--command-timeout "$TIMEOUT_MS" >/tmp/guest.out 2>/tmp/guest.log &
	GPID=$!
	if wait_dev /dev/tpmrm0 60; then
		ok "/dev/tpm0 and /dev/tpmrm0 appeared ($(cat /tmp/guest.out))"
	else
		bad "no /dev/tpmrm0 within 60 s"
		finish
	fi
	[ "$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)" = 2 ] &&
		ok "tpm0 is a TPM 2.0" || bad "tpm0 version"
	if [ "${PHASE:-1}" = 1 ]; then
		t2 createprimary -C o -G ecc -c /tmp/primary.ctx >/dev/null &&
			ok "tpm2_createprimary through /dev/tpmrm0" ||
			bad "tpm2_createprimary: $(cat /tmp/tool.err)"
		t2 pcrextend 16:sha256=$ONES && ok "tpm2_pcrextend 16" || bad "pcrextend: $(cat /tmp/tool.err)"
		P=$(pcr16)
		[ -n "$P" ] && [ "$P" != "$ZERO64" ] && ok "PCR 16 extended: $P" || bad "PCR 16 is '$P'"
		t2 nvdefine -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" 0x1500016 >/dev/null &&
			ok "tpm2_nvdefine counter" || bad "nvdefine: $(cat /tmp/tool.err)"
		t2 nvincrement -C o 0x1500016 && t2 nvincrement -C o 0x1500016 &&
			ok "tpm2_nvincrement twice" || bad "nvincrement: $(cat /tmp/tool.err)"
		C=$(nvcount)
		[ "$C" = 0000000000000002 ] && ok "NV counter reads 2" || bad "NV counter reads '$C'"
		R=$(rawtpm /dev/tpm0 "$RAW_PCR16")
		case $R in rc=0x0\ *) ok "raw PCR_Read on /dev/tpm0";; *) bad "raw PCR_Read: $R";; esac

		# vtpmd goes away while the device is in use, then comes back
		echo "E2E-STEP kill-vtpmd"
		i=0
		while [ $i -lt 60 ]; do
			R=$(rawtpm /dev/tpm0 "$RAW_PCR16")
			case $R in rc=0x0\ *) sleep 0.2; i=$((i + 1));; *) break;; esac
		done
		MS=$(echo "$R" | sed -n 's/.*ms=\([0-9]*\).*/\1/p')
		case $R in
		rc=0x101\ *) ok "with vtpmd gone a command fails with TPM_RC_FAILURE ($R)";;
		*) bad "with vtpmd gone: $R";;
		esac
		[ -n "$MS" ] && [ "$MS" -le $((TIMEOUT_MS + 3000)) ] &&
			ok "... within the bound (${MS} ms, --command-timeout $TIMEOUT_MS)" ||
			bad "failure took '${MS}' ms (bound $TIMEOUT_MS)"
		R=$(rawtpm /dev/tpm0 "$RAW_PCR16")
		case $R in rc=0x101\ *) ok "the next command fails the same way";; *) bad "next command: $R";; esac
		echo "E2E-STEP restart-vtpmd"
		i=0
		while [ $i -lt 120 ]; do
			R=$(rawtpm /dev/tpm0 "$RAW_PCR16")
			case $R in rc=0x0\ *) break;; *) sleep 0.5; i=$((i + 1));; esac
		done
		case $R in
		rc=0x0\ *) ok "after vtpmd returned, /dev/tpm0 works again (${i} retries)";;
		*) bad "/dev/tpm0 after vtpmd returned: $R";;
		esac
		kill -0 $GPID 2>/dev/null && ok "the same vtpm-guest (pid $GPID) kept serving" ||
			bad "vtpm-guest exited"
		[ -e /dev/tpmrm0 ] && ok "/dev/tpmrm0 stayed" || bad "/dev/tpmrm0 gone"
		R=$(t2 getrandom --hex 16) && [ ${#R} -eq 32 ] &&
			ok "tpm2_getrandom through /dev/tpmrm0 after the restart" ||
			bad "getrandom after restart: $(cat /tmp/tool.err)"
		t2 pcrextend 16:sha256=$ONES && P=$(pcr16) && [ -n "$P" ] && [ "$P" != "$ZERO64" ] &&
			ok "PCR 16 extended again before the reboot" || bad "pcrextend after restart: $(cat /tmp/tool.err)"
		C=$(nvcount)
		[ "$C" = 0000000000000002 ] && ok "NV counter still 2 after the vtpmd restart" ||
			bad "NV counter after the restart: '$C'"
	else
		C=$(nvcount)
		[ "$C" = 0000000000000002 ] && ok "new launch: NV counter kept (2)" ||
			bad "new launch: NV counter reads '$C' $(cat /tmp/tool.err)"
		t2 nvincrement -C o 0x1500016 && [ "$(nvcount)" = 0000000000000003 ] &&
			ok "new launch: NV counter increments to 3" || bad "nvincrement: $(cat /tmp/tool.err)"
		P=$(pcr16)
		[ "$P" = "$ZERO64" ] && ok "new launch: PCR 16 reset" || bad "new launch: PCR 16 is '$P'"
		# the TCTI plugin's default: -T vtpm alone means /run/vtpm/tpm.sock
		R=$(tpm2_getrandom -T vtpm --hex 16 2>/tmp/tool.err) && [ ${#R} -eq 32 ] &&
			ok "tpm2_getrandom -T vtpm (default socket /run/vtpm/tpm.sock)" ||
			bad "-T vtpm: $(cat /tmp/tool.err)"
		t2 pcrextend 16:sha256=$ONES
		P=$(TPM2TOOLS_TCTI=vtpm tpm2_pcrread sha256:16 2>/tmp/tool.err | sed -n 's/^ *16 *: *0x//p')
		[ -n "$P" ] && [ "$P" = "$(pcr16)" ] &&
			ok "the local socket and /dev/tpmrm0 are the same TPM (PCR 16 $P)" ||
			bad "PCR 16 via -T vtpm: '$P' $(cat /tmp/tool.err)"
	fi
	;;
crb)
	if wait_dev /dev/tpmrm0 10; then ok "tpm_crb brought up /dev/tpmrm0"; else bad "no /dev/tpmrm0"; finish; fi
	dmesg | grep -q 'MSFT0101' && ok "kernel found the ACPI TPM2 device" || bad "no MSFT0101 in dmesg"
	t2 pcrread sha256:0,1,2,3,4,5,6,7 >/tmp/pcrs || bad "pcrread: $(cat /tmp/tool.err)"
	cat /tmp/pcrs
	for i in 0 1 2 3 4 5 6 7; do
		P=$(sed -n "s/^ *$i *: *0x//p" /tmp/pcrs)
		[ -n "$P" ] && [ "$P" != "$ZERO64" ] && ok "PCR $i non-zero (SeaBIOS measured)" ||
			bad "PCR $i is '$P'"
	done
	R=$(t2 getrandom --hex 16) && [ ${#R} -eq 32 ] && ok "tpm2_getrandom" ||
		bad "getrandom: $(cat /tmp/tool.err)"
	;;
*)
	bad "unknown scenario '$MODE'"
	;;
esac
finish
