#!/usr/bin/env bash
# Endorsement: EK certificates in NV chain to the vtpmd EK CA and match the
# EKs the default templates give; PCR 0 starts from the documented H-CRTM
# launch event; a quote over PCR 0 by an AK under the EK verifies; a new
# launch changes PCR 0; two guests get different EKs and serial numbers.
source "$(dirname "$0")/lib.sh"
t_init endorsement
cd "$T" || exit 1
start_vtpmd
start_guest a aa 01
start_guest b bb 01

vtpmctl ca show >ca.pem
check "vtpmctl ca show prints a CA certificate" openssl x509 -in ca.pem -noout

for g in a b; do
	tpm $g nvread 0x01c00002 -o $g-rsa.der 2>/dev/null
	tpm $g nvread 0x01c0000a -o $g-ecc.der 2>/dev/null
	openssl x509 -inform der -in $g-rsa.der -out $g-rsa.pem 2>/dev/null
	openssl x509 -inform der -in $g-ecc.der -out $g-ecc.pem 2>/dev/null
	check "$g: RSA EK certificate verifies against the CA" \
		openssl verify -CAfile ca.pem $g-rsa.pem
	check "$g: ECC EK certificate verifies against the CA" \
		openssl verify -CAfile ca.pem $g-ecc.pem
	tpm $g createek -G rsa -c $g-ekr.ctx -u $g-ekr.pub -f pem >/dev/null
	tpm $g createek -G ecc -c $g-eke.ctx -u $g-eke.pub -f pem >/dev/null
	tpm $g flushcontext -t >/dev/null 2>&1
	check_eq "$g: RSA EK from tpm2_createek equals the certificate's key" \
		"$(openssl pkey -pubin -in $g-ekr.pub -outform der | sha256sum)" \
		"$(openssl x509 -in $g-rsa.pem -noout -pubkey | openssl pkey -pubin -outform der | sha256sum)"
	check_eq "$g: ECC EK from tpm2_createek equals the certificate's key" \
		"$(openssl pkey -pubin -in $g-eke.pub -outform der | sha256sum)" \
		"$(openssl x509 -in $g-ecc.pem -noout -pubkey | openssl pkey -pubin -outform der | sha256sum)"
	check "$g: certificate carries the TCG EK EKU" \
		bash -c "openssl x509 -in $g-rsa.pem -noout -ext extendedKeyUsage | grep -q 2.23.133.8.1"
done
check_ne "two guests: different RSA EKs" "$(sha256sum <a-ekr.pub)" "$(sha256sum <b-ekr.pub)"
check_ne "two guests: different EK certificate serials" \
	"$(openssl x509 -in a-rsa.pem -noout -serial)" "$(openssl x509 -in b-rsa.pem -noout -serial)"
check "tpm2_getekcertificate reads both certificates from NV" \
	tpm a getekcertificate -o get-rsa.der -o get-ecc.der
check "tpm2_getekcertificate's RSA certificate is the NV one" cmp get-rsa.der a-rsa.der

# PCR 0 = SHA-256(0^31 || 04 || SHA-256(event)); the event (docs/ENDORSEMENT.md)
# is "vtpmd-launch-v1" | tee | measurement | host data | launch id, and
# vtpmctl show --json gives it for a live instance so a verifier can replay it.
pcr0_expect() {	# host-byte launch-byte tee
	python3 - "$1" "$2" "$3" <<'PY'
import hashlib, sys
h, l, tee = bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), int(sys.argv[3])
ev = b"vtpmd-launch-v1" + bytes([tee]) + bytes([0x11]) * 48 + h * 32 + l * 32
print("0x" + hashlib.sha256(bytes(31) + b"\x04" + hashlib.sha256(ev).digest()).hexdigest().upper())
PY
}
pcr0() { tpm "$1" pcrread sha256:0 2>/dev/null | awk '/ 0 :/ {print $3}'; }
event_of() { vtpmctl --json show "guest-$(hexn "$1" 6)" | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance"]["launch_event"])'; }
ev_a=$(event_of aa)
TEE=$((16#${ev_a:30:2}))
check_eq "a: launch event is the documented encoding of its claims" "$ev_a" \
	"$(printf 'vtpmd-launch-v1' | xxd -p | tr -d '\n')$(printf '%02x' $TEE)$(hexn 11 48)$(hexn aa 32)$(hexn 01 32)"
check_eq "a: PCR 0 equals the documented H-CRTM computation" "$(pcr0 a)" "$(pcr0_expect aa 01 $TEE)"
check_eq "b: PCR 0 equals the documented H-CRTM computation" "$(pcr0 b)" "$(pcr0_expect bb 01 $TEE)"

# A quote over PCR 0 by an AK under the EK verifies.
tpm a createak -C a-ekr.ctx -c ak.ctx -G rsa -g sha256 -s rsassa -u ak.pub -n ak.name >/dev/null 2>&1
echo 0123456789abcdef >nonce
tpm a quote -c ak.ctx -l sha256:0 -q "$(xxd -p nonce | tr -d '\n')" -m quote.msg -s quote.sig \
	-o quote.pcrs -g sha256 >/dev/null 2>&1
check "quote over PCR 0 by an AK under the EK verifies (tpm2_checkquote)" \
	tpm2_checkquote -u ak.pub -m quote.msg -s quote.sig -f quote.pcrs -g sha256 \
	-q "$(xxd -p nonce | tr -d '\n')"

# A new launch of the same guest gives another PCR 0.
stop_guest a
start_guest a aa 02
check_eq "new launch: PCR 0 follows the new launch id" "$(pcr0 a)" "$(pcr0_expect aa 02 $TEE)"
check_ne "new launch: PCR 0 differs from the old launch" "$(pcr0 a)" "$(pcr0_expect aa 01 $TEE)"

# vtpmd's evidence binds the CA key: report data = SHA-512("vtpmd-ek-ca-v1" || CA SPKI DER)
want_rd=$( { printf 'vtpmd-ek-ca-v1'; openssl x509 -in ca.pem -noout -pubkey | openssl pkey -pubin -outform der; } | sha512sum | cut -d' ' -f1)
got_rd=$(vtpmctl --json ca evidence | python3 -c 'import json,sys; print(json.load(sys.stdin)["report_data"])')
check_eq "ca evidence: report data is the documented hash of the CA key" "$got_rd" "$want_rd"
vtpmctl ca evidence | base64 -d >ca-evidence.bin
check "ca evidence verifies with vtpmctl verify-evidence, bound to the CA key" \
	"$B/vtpmctl" verify-evidence --evidence ca-evidence.bin --report-data "$want_rd" --trust-test-ark
check "ca evidence does not verify for another key's report data" \
	bash -c "! '$B/vtpmctl' verify-evidence --evidence ca-evidence.bin --report-data $(hexn 00 64) --trust-test-ark"
t_done
