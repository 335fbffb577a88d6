#!/usr/bin/env bash
# test_attestation.sh: attestation end to end with `sim` (real-format SEV-SNP
# reports signed by the public TEST chain): a policy maps guests to
# instances (an enrolled one, an auto-enrolled one), refuses a measurement
# it does not allow with a log line naming the claim, evidence relayed into
# another session is refused, a guest pinned to another vtpmd measurement
# refuses to talk, `vtpmd -n` checks the policy, vtpmd without a TEE refuses
# to start, and `vtpmctl verify-evidence` verifies the shared vectors.
# Prints "attestation: N passed, M failed".
. "$(dirname "$0")/lib.sh"
t_init attestation

M11=$(hexn 11 48)
VTPMD_MEAS=$(hexn 55 48)
VEC=$TOP/tests/vectors

cat >"$T/policy" <<EOF
vtpmd-policy 1
# sim evidence chains to the TEST ARK: this test allows it explicitly
[defaults]
test-root = allow
min-tcb = bootloader=9 snp=23 microcode=212

[instance web-01]
tee = snp
measurement = $M11
host-data = $(hexn a1 32)

[enrol auto-{host-data:8}]
measurement = $M11
EOF

# ---- 1. -n checks the policy ------------------------------------------------
check "vtpmd -n accepts the policy" \
	quiet "$B/vtpmd" --dev --state-dir "$T/state-n" -n --policy "$T/policy"
printf 'vtpmd-policy 1\n[instance x]\nmeasurement = %s\nvmpl = 7\n' "$M11" >"$T/bad-policy"
out=$("$B/vtpmd" --dev --state-dir "$T/state-n" -n --policy "$T/bad-policy" 2>&1)
check "vtpmd -n refuses a bad policy naming the line" \
	grep -q "bad-policy:4: vmpl: '7' is not 0..3" <<<"$out"
out=$("$B/vtpmd" --state-dir "$T/state-x" --listen "unix:$T/x.sock" \
	--key-provider "file:$T/k" --allow-key-file --attestation auto 2>&1)
check "vtpmd --attestation auto without a TEE does not start, and says why" \
	grep -q "attestation provider: no SEV-SNP or TDX attestation interface here" <<<"$out"

# ---- 2. guests the policy allows ---------------------------------------------
start_vtpmd --policy "$T/policy" --sim-measurement "$VTPMD_MEAS"
check "policy loaded" grep -q "policy $T/policy: 2 rules" "$T/vtpmd.log"
check "enroll web-01" quiet vtpmctl enroll --measurement "$M11" --host-data "$(hexn a1 32)" web-01
start_guest g1 a1 01
check "instance rule: g1 attaches to web-01" grep -q "attached to vtpmd instance web-01" "$T/g1.log"
check "g1: TPM works" getrandom_ok g1
start_guest g2 b2 02
check "enrol rule: g2 attaches to auto-b2b2b2b2" \
	grep -q "attached to vtpmd instance auto-b2b2b2b2" "$T/g2.log"
check "enrol rule: the instance was created" grep -q "policy: enrolling instance auto-b2b2b2b2" \
	"$T/vtpmd.log"
check "g2: TPM works" getrandom_ok g2
stop_guest g1
start_guest g1 a1 01
check "same launch id: web-01 resumes" grep -q "instance web-01 (resumed" "$T/g1.log"

# ---- 3. a measurement the policy does not allow --------------------------------
MARK=$(log_mark "$T/vtpmd.log")
run_guest_once g3 c3 03 --sim-measurement "$(hexn 99 48)"
check_ne "unknown measurement: the guest is refused" "$?" 124
check "unknown measurement: vtpmd logs the claim" wait_log "$T/vtpmd.log" "$MARK" \
	"policy refuses the guest: claim measurement=$(hexn 99 48) is not allowed by any rule"
check "unknown measurement: the guest hears code 8 (policy)" \
	grep -q "vtpmd refused (code 8): policy refuses the guest: claim measurement=" "$T/g3.log"
check "unknown measurement: no instance was made for it" \
	fails_ grep -q "auto-c3c3c3c3" "$T/vtpmd.log"

# ---- 4. evidence from another session ---------------------------------------------
MARK=$(log_mark "$T/vtpmd.log")
if [ -x "$B/tests/vtpm-testclient" ]; then
	check "relayed evidence is refused" \
		quiet testclient --measurement "$M11" --host-byte d4 --relay-evidence \
		--expect refused --expect-error "report data does not match this session"
	check "relayed evidence: vtpmd logs the binding failure" wait_log "$T/vtpmd.log" "$MARK" \
		"guest evidence refused: report data does not match this session"
	check "evidence for another session is refused" \
		quiet testclient --measurement "$M11" --host-byte d5 --bad-evidence binding \
		--expect refused --expect-error "report data does not match this session"
else
	fail "tests/tools/vtpm-testclient not built: relay not tested"
fi

# ---- 5. the guest checks vtpmd ------------------------------------------------------
run_guest_once g4 a1 04 --vtpmd-measurement "$(hexn 77 48)"
check_ne "pinned to another vtpmd: no attach" "$?" 124
check "pinned to another vtpmd: the guest says why" \
	grep -q "vtpmd's evidence refused: measurement $VTPMD_MEAS is not pinned" "$T/g4.log"
start_guest g5 a5 05 --vtpmd-measurement "$(hexn 77 48)" --vtpmd-measurement "$VTPMD_MEAS"
check "pinned to this vtpmd (one of two pins): attaches" grep -q "attached to vtpmd instance" \
	"$T/g5.log"
stop_guest g5
stop_guest g1
stop_guest g2
stop_vtpmd

# ---- 6. without a policy: enrolment by identity, as before --------------------------
start_vtpmd
start_guest g6 a6 06
check "no policy: auto-enrol by host data" grep -q "attached to vtpmd instance guest-a6a6" \
	"$T/g6.log"
stop_guest g6
stop_vtpmd

# ---- 7. vtpmctl verify-evidence ----------------------------------------------------
VE() { "$B/vtpmctl" verify-evidence "$@"; }
check "verify-evidence: Trustee v2 Milan report with its VCEK" \
	quiet VE --report "$VEC/snp-trustee/test-report.bin" --vcek "$VEC/snp-trustee/test-vcek.der"
out=$(VE --report "$VEC/snp-virtee-sev/report_milan.hex" --vcek "$VEC/snp-virtee-sev/vcek_milan.der" \
	--chain "$VEC/snp-virtee-sev/cert_chain_milan")
check "verify-evidence: virtee report (hex) with --chain, JSON claims" \
	grep -q '"root":"ARK-Milan"' <<<"$(tr -d ' \n' <<<"$out")"
out=$(VE --report "$VEC/snp-trustee/test-vlek-report.bin" --vcek "$VEC/snp-trustee/test-vlek.der" \
	--vmpl any 2>&1)
check "verify-evidence: expired VLEK fails its time check" \
	grep -q "VLEK 'SEV-VLEK' expired on 2025-12-10" <<<"$out"
check "verify-evidence: ... and passes with --no-time-check" \
	quiet VE --report "$VEC/snp-trustee/test-vlek-report.bin" \
	--vcek "$VEC/snp-trustee/test-vlek.der" --vmpl any --no-time-check
out=$(VE --report "$VEC/snp-trustee/test-report.bin" --vcek "$VEC/snp-virtee-sev/vcek_milan.der" 2>&1)
check "verify-evidence: another chip's VCEK is refused" grep -q "another chip" <<<"$out"
check "verify-evidence: TDX quote v5" quiet VE --quote "$VEC/tdx-trustee/tdx_quote_5.dat"
out=$(VE --quote "$VEC/tdx-trustee/tdx_quote_4.dat" 2>&1)
check "verify-evidence: the v4 quote is a DEBUG TD" grep -q "DEBUG set" <<<"$out"
check "verify-evidence: ... shown with --allow-debug" \
	quiet VE --quote "$VEC/tdx-trustee/tdx_quote_4.dat" --allow-debug
VE --report "$VEC/snp-trustee/test-report.bin" --vcek "$VEC/snp-trustee/test-vcek.der" \
	--report-data "$(hexn 00 64)" >/dev/null 2>"$T/rd.err"
check_eq "verify-evidence: wrong --report-data exits 1" "$?" 1
check "verify-evidence: ... and says so" grep -q "does not match --report-data" "$T/rd.err"

t_done
