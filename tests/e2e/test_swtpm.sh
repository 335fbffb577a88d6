#!/usr/bin/env bash
# test_swtpm.sh: vtpm-guest --swtpm PATH, the swtpm-compatible endpoint.
# tpm2-tools through tcti-swtpm (a new data connection per command, CMD_SET_LOCALITY
# at init); every control command QEMU 7.2 and tcti-swtpm use; locality, the
# established flag (H-CRTM hash sequence) and cancel carried to vtpmd's
# worker; malformed control requests and oversized data frames answered
# with an error and changing nothing; QEMU's -tpmdev emulator with SeaBIOS
# when QEMU is installed.
. "$(dirname "$0")/lib.sh"
t_init swtpm
PY=${PY:-/usr/bin/python3}
[ -x "$PY" ] || PY=python3
CTL="$PY $TOP/tests/e2e/swtpm_ctl.py"
SW=$T/sw
ZERO64=$(hexn 00 32)

# tpm2 tools through tcti-swtpm
sw() { local tool=$1; shift; LD_PRELOAD=$TPM_PRELOAD "tpm2_$tool" -T "swtpm:path=$SW" "$@"; }
ctrl() { $CTL ctrl "$SW.ctrl" "$1"; }
sw_pcr16() { sw pcrread sha256:16 2>/dev/null | awk '/16:/ {print $2}'; }
ascii_hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }

start_vtpmd || { fail "vtpmd did not start"; t_done; exit; }
"$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --swtpm "$SW" --attestation sim --sim-host-data "$(hexn 5a 32)" \
	--sim-launch-id "$(hexn 01 32)" --command-timeout 5000 -v >>"$T/sw.log" 2>&1 &
GPID=$!
T_PIDS+=($GPID)
check "vtpm-guest --swtpm serves PATH and PATH.ctrl" \
	eval 'wait_for_socket "$SW" && wait_for_socket "$SW.ctrl"'

# ---- a raw TPM: the client's firmware (here: tpm2_startup) starts it ----
check_eq "attached without AUTO_STARTUP: the TPM awaits Startup (TPM_RC_INITIALIZE)" \
	"$($CTL getrandom "$SW")" 100
check "tpm2_startup -c through tcti-swtpm" sw startup -c
R=$(sw getrandom --hex 16 2>"$T/err")
check_eq "tpm2_getrandom (tcti-swtpm: one connection per command)" "${#R}" 32
check_eq "tpm2_pcrread: PCR 16 starts at zero" "$(sw_pcr16)" "0x$(hexn 00 32 | tr a-f A-F)"
check "tpm2_pcrextend 16" sw pcrextend "16:sha256=$(hexn 01 32)"
P16=$(sw_pcr16)
check_ne "PCR 16 changed" "$P16" "0x$(hexn 00 32 | tr a-f A-F)"
check "tpm2_createprimary (RSA)" eval 'sw createprimary -C o -c "$T/primary.ctx" >/dev/null 2>"$T/err"'
check "tpm2_nvdefine counter" eval 'sw nvdefine -C o -s 8 -a "ownerread|ownerwrite|authread|authwrite|nt=counter" $NV_COUNTER >/dev/null'
check "tpm2_nvincrement twice" eval 'sw nvincrement -C o $NV_COUNTER && sw nvincrement -C o $NV_COUNTER'
check_eq "tpm2_nvread: counter 2" "$(sw nvread -C o $NV_COUNTER 2>/dev/null | od -An -tx1 | tr -d ' \n')" 0000000000000002

# ---- control commands ----
check_eq "GET_CAPABILITY: u64 caps, no state blobs" "$(ctrl 00000001)" 0000000000007cbf
check_eq "SET_BUFFERSIZE 0 queries: {0, 4096, 2808, 4096}" "$(ctrl 0000001100000000)" \
	000000000000100000000af800001000
check_eq "SET_BUFFERSIZE while running: BAD_ORDINAL, size unchanged" "$(ctrl 0000001100000bb8)" \
	0000000a0000100000000af800001000
I=$(ctrl 0000001200000000000000030000000000000000)
case $I in
00000000*"$(ascii_hex '"TPMSpecification":{"family":"2.0"')"*) pass "GET_INFO: TPM specification and attributes (JSON)" ;;
*) fail "GET_INFO answered $I" ;;
esac
check_eq "GET_CONFIG: no file or migration key" "$(ctrl 0000000f)" 0000000000000000
check_eq "CANCEL_TPM_CMD carried to vtpmd (nothing running)" "$(ctrl 00000009)" 00000000

# ---- locality: SET_LOCALITY, then every command carries it to the worker ----
check_eq "SET_LOCALITY 0 (tcti-swtpm's 1-byte form)" "$(ctrl 0000000500)" 00000000
check_eq "PCR_Extend(21) at locality 0: TPM_RC_LOCALITY" "$($CTL pcr-extend "$SW" 21)" 907
check_eq "SET_LOCALITY 2 (QEMU's 4-byte form)" "$(ctrl 0000000502000000)" 00000000
check_eq "PCR_Extend(21) at locality 2 succeeds" "$($CTL pcr-extend "$SW" 21)" 0
check_ne "PCR 21 extended" "$($CTL pcr-read "$SW" 21)" "$ZERO64"

# ---- malformed control requests: an error answer, nothing changed ----
check_eq "SET_LOCALITY 7: BAD_LOCALITY" "$(ctrl 0000000507)" 0000003d
check_eq "... and locality 2 still applies" "$($CTL pcr-extend "$SW" 21)" 0
check_eq "SET_LOCALITY with a 2-byte body: BAD_PARAMETER" "$(ctrl 000000050200)" 00000003
check_eq "unknown command 0x77: BAD_ORDINAL" "$(ctrl 00000077)" 0000000a
check_eq "STORE_VOLATILE (not supported): BAD_ORDINAL" "$(ctrl 0000000a)" 0000000a
check_eq "GET_CAPABILITY with a trailing byte: BAD_PARAMETER" "$(ctrl 0000000100)" 00000003
check_eq "INIT cut short (2 of 4 bytes): BAD_PARAMETER after 1 s" "$(ctrl 000000020000)" 00000003
check_eq "INIT padded to 8 bytes: BAD_PARAMETER" "$(ctrl 000000020000000000000000)" 00000003
check_eq "HASH_DATA announcing 5000 bytes: BAD_PARAMETER" "$(ctrl 0000000700001388)" 00000003
BIG=00000002$(hexn 00 5000)
check_eq "a 5004-byte control request: BAD_PARAMETER" "$(ctrl "$BIG")" 00000003
check_eq "SET_DATAFD without a descriptor: BAD_PARAMETER" "$(ctrl 00000010)" 00000003
check_eq "after all that the TPM was not power-cycled (PCR 16 kept)" "$(sw_pcr16)" "$P16"
check_eq "SET_LOCALITY 0" "$(ctrl 0000000500)" 00000000

# ---- malformed data frames: an error response, nothing run ----
check_eq "data frame announcing 64 KiB: TPM_RC_COMMAND_SIZE, connection closed" \
	"$($CTL hangs-up "$SW" 8001000100000000017b)" "80010000000a00000142 closed"
check_eq "data frame announcing 5 bytes: TPM_RC_COMMAND_SIZE, connection closed" \
	"$($CTL hangs-up "$SW" 8001000000050000017b)" "80010000000a00000142 closed"
check_eq "data frame of 4097 bytes: TPM_RC_COMMAND_SIZE" \
	"$($CTL hangs-up "$SW" 8001000010010000017b$(hexn 00 4087))" "80010000000a00000142 closed"
check_eq "after them PCR 16 and the NV counter are unchanged" \
	"$(sw_pcr16) $(sw nvread -C o $NV_COUNTER 2>/dev/null | od -An -tx1 | tr -d ' \n')" \
	"$P16 0000000000000002"

# ---- the established flag and the H-CRTM/DRTM hash sequence ----
# vtpmd itself runs an H-CRTM sequence at power-on (the launch event in PCR 0,
# docs/ENDORSEMENT.md), which sets the flag: clear it first.
E=$(ctrl 00000004)
check "GET_TPMESTABLISHED answers {0, bit} ($E)" eval '[[ $E == 000000000[01]000000 ]]'
check_eq "RESET_TPMESTABLISHED from locality 3 (QEMU's 4-byte form)" "$(ctrl 0000000b03000000)" 00000000
check_eq "GET_TPMESTABLISHED: clear" "$(ctrl 00000004)" 0000000000000000
check_eq "HASH_START" "$(ctrl 00000006)" 00000000
check_eq "HASH_DATA 'abc'" "$(ctrl 0000000700000003$(ascii_hex abc))" 00000000
check_eq "HASH_END" "$(ctrl 00000008)" 00000000
check_eq "GET_TPMESTABLISHED: set by the hash sequence" "$(ctrl 00000004)" 0000000001000000
P17=$($CTL pcr-read "$SW" 17)
check_ne "PCR 17 holds the DRTM measurement" "$P17" "$(hexn ff 32)"
check_eq "RESET_TPMESTABLISHED from locality 0: BAD_LOCALITY" "$(ctrl 0000000b00)" 0000003d
check_eq "... flag still set" "$(ctrl 00000004)" 0000000001000000
check_eq "RESET_TPMESTABLISHED from locality 3 (tcti-style 1 byte)" "$(ctrl 0000000b03)" 00000000
check_eq "GET_TPMESTABLISHED: clear again" "$(ctrl 00000004)" 0000000000000000

# ---- INIT is a power cycle; STOP stops the TPM until INIT ----
check_eq "INIT (power cycle)" "$(ctrl 0000000200000000)" 00000000
check_eq "after INIT the TPM awaits Startup" "$($CTL getrandom "$SW")" 100
check "tpm2_startup -c" sw startup -c
check_eq "PCR 16 reset by the power cycle" "$(sw_pcr16)" "0x$(hexn 00 32 | tr a-f A-F)"
check_eq "NV counter kept by the power cycle" \
	"$(sw nvread -C o $NV_COUNTER 2>/dev/null | od -An -tx1 | tr -d ' \n')" 0000000000000002
check_eq "STOP" "$(ctrl 0000000e)" 00000000
check_eq "a command while stopped: TPM_RC_FAILURE" "$($CTL getrandom "$SW")" 101
check_eq "SET_BUFFERSIZE 3000 while stopped" "$(ctrl 0000001100000bb8)" \
	0000000000000bb800000af800001000
check_eq "a 3500-byte command with buffer size 3000: TPM_RC_COMMAND_SIZE" \
	"$($CTL hangs-up "$SW" 800100000dac0000017b$(hexn 00 3490))" "80010000000a00000142 closed"
check_eq "SET_BUFFERSIZE 9000 while stopped: clamped to 4096" "$(ctrl 0000001100002328)" \
	000000000000100000000af800001000
check_eq "INIT" "$(ctrl 0000000200000001)" 00000000
check "tpm2_startup -c" sw startup -c

# ---- SHUTDOWN detaches; the next command resumes the same session state ----
check "tpm2_pcrextend 16" sw pcrextend "16:sha256=$(hexn 02 32)"
P16=$(sw_pcr16)
check_eq "SHUTDOWN" "$(ctrl 00000003)" 00000000
check "... vtpm-guest detached from vtpmd" grep -q "detached from vtpmd instance" "$T/sw.log"
check_eq "the next command re-attaches; PCR 16 kept (same launch)" "$(sw_pcr16)" "$P16"
check "vtpm-guest still running" kill -0 $GPID

# ---- QEMU 7.2 -tpmdev emulator (SeaBIOS only: no kernel needed) ----
if command -v qemu-system-x86_64 >/dev/null; then
	timeout 6 qemu-system-x86_64 -machine q35 -accel tcg -m 128 -nographic -no-reboot -nic none \
		-chardev "socket,id=chrtpm,path=$SW.ctrl" -tpmdev emulator,id=tpm0,chardev=chrtpm \
		-device tpm-crb,tpmdev=tpm0 </dev/null >"$T/qemu.log" 2>&1
	check "QEMU ran SeaBIOS against the endpoint" grep -q SeaBIOS "$T/qemu.log"
	check "QEMU's start-up sequence: SET_DATAFD, INIT" \
		eval 'grep -q "data channel handed over" "$T/sw.log" && grep -q "INIT (power cycle): result 0" "$T/sw.log"'
	n=0
	for i in 0 1 2 3 4 5 6 7; do
		P=$($CTL pcr-read "$SW" $i)
		[ "$P" != "$ZERO64" ] && [ ${#P} -eq 64 ] && n=$((n + 1))
	done
	check_eq "SeaBIOS measured PCRs 0-7 into the vTPM" "$n" 8
else
	echo "skip - QEMU tests (qemu-system-x86_64 not installed: tools/setup.sh --guest)"
fi
check "vtpm-guest still running at the end" kill -0 $GPID
t_done
