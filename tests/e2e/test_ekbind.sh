#!/usr/bin/env bash
# EK binding (docs/ENDORSEMENT.md section 4): `vtpm-guest bind-ek` writes the
# guest's evidence with report data = SHA-512("vtpmd-ek-bind-v1" || RSA EK
# SPKI || ECC EK SPKI); `vtpmctl verify-evidence --ek` accepts it with the
# EKs from tpm2_createek, from the EK certificates and from `vtpmctl show
# --json`, and refuses another guest's EK and a tampered file. show --json
# gives the certificates' fingerprints, equal to those read in the guest.
source "$(dirname "$0")/lib.sh"
t_init ekbind
cd "$T" || exit 1
start_vtpmd
start_guest a aa 01
start_guest b bb 01

bind() {	# GUEST HOSTBYTE OUT [args]
	local g=$1 hb=$2 out=$3
	shift 3
	"$B/vtpm-guest" bind-ek --out "$out" --socket "$T/$g.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn 01 32)" "$@" 2>>"$T/bind.log"
}
verify() { "$B/vtpmctl" verify-evidence --trust-test-ark "$@" >/dev/null; }
spki_sha256() { openssl pkey -pubin -in "$1" -outform der | sha256sum | cut -d' ' -f1; }

rd_a=$(bind a aa a.ev --pem a-bound.pem)
check "bind-ek writes evidence" test -s a.ev
bind b bb b.ev >/dev/null

# The EKs as a verifier gets them from inside the guest.
for g in a b; do
	tpm $g createek -G rsa -c $g-ekr.ctx -u $g-ekr.pem -f pem >/dev/null
	tpm $g flushcontext -t >/dev/null 2>&1
	tpm $g createek -G ecc -c $g-eke.ctx -u $g-eke.pem -f pem >/dev/null
	tpm $g flushcontext -t >/dev/null 2>&1
	cat $g-ekr.pem $g-eke.pem >$g-ek.pem
done
want=$( { printf 'vtpmd-ek-bind-v1'; openssl pkey -pubin -in a-ekr.pem -outform der
	openssl pkey -pubin -in a-eke.pem -outform der; } | sha512sum | cut -d' ' -f1)
check_eq "bind-ek's report data is the documented hash of both EKs" "$rd_a" "$want"
check_eq "bind-ek --pem writes the keys it bound" "$(cat a-bound.pem)" "$(cat a-ek.pem)"
check "verify-evidence --ek accepts the EKs from tpm2_createek" verify --evidence a.ev --ek a-ek.pem
check "verify-evidence --ek accepts them as two files" \
	verify --evidence a.ev --ek a-ekr.pem --ek a-eke.pem
check "verify-evidence --ek with --report-data equal to the hash also holds" \
	verify --evidence a.ev --report-data "$want"
"$B/vtpmctl" verify-evidence --trust-test-ark --evidence a.ev --ek a-ek.pem >a-verified.json
check_eq "the verified claims name the guest's launch" \
	"$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["host_data"])' a-verified.json)" \
	"$(hexn aa 32)"

# From the EK certificates (DER as tpm2_getekcertificate and tpm2_nvread give them).
tpm a getekcertificate -o a-rsa.der -o a-ecc.der >/dev/null 2>&1
check "verify-evidence --ek accepts the DER EK certificates" \
	verify --evidence a.ev --ek a-rsa.der --ek a-ecc.der
cat a-rsa.der a-ecc.der >a-certs.der
check "verify-evidence --ek accepts DER certificates back to back" \
	verify --evidence a.ev --ek a-certs.der
{ openssl x509 -inform der -in a-rsa.der; openssl x509 -inform der -in a-ecc.der; } >a-certs.pem
check "verify-evidence --ek accepts PEM EK certificates" verify --evidence a.ev --ek a-certs.pem

# Refusals, each with a clear reason.
verify --evidence a.ev --ek b-ek.pem 2>err.txt
check_eq "another guest's EK is refused" "$?" 1
check "the refusal says the EK binding does not hold" grep -q "EK binding does not hold" err.txt
check "only the RSA EK is not enough when both were bound" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence a.ev --ek a-ekr.pem 2>/dev/null"
check "b's evidence with b's EK verifies" verify --evidence b.ev --ek b-ek.pem
check "b's evidence with a's EK is refused" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence b.ev --ek a-ek.pem 2>/dev/null"
cp a.ev tampered.ev
printf '\x5a' | dd of=tampered.ev bs=1 seek=$((16 + 0x50)) conv=notrunc 2>/dev/null
check "a tampered evidence file is refused" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence tampered.ev --ek a-ek.pem 2>/dev/null"
head -c 200 a.ev >short.ev
check "a truncated evidence file is refused" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence short.ev --ek a-ek.pem 2>/dev/null"
cat a-ekr.pem b-ekr.pem >two-rsa.pem
"$B/vtpmctl" verify-evidence --trust-test-ark --evidence a.ev --ek two-rsa.pem 2>err.txt >/dev/null
check "two different RSA keys in --ek are refused with a reason" grep -q "two different RSA" err.txt
echo "not a key" >junk.pem
check "an --ek file that holds no key is refused" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence a.ev --ek junk.pem 2>/dev/null"

# Only the RSA EK bound: verifies with the RSA EK alone.
bind a aa a-rsa.ev --ek rsa >/dev/null
check "bind-ek --ek rsa verifies with the RSA EK alone" verify --evidence a-rsa.ev --ek a-ekr.pem
check "bind-ek --ek rsa does not verify with both EKs" \
	bash -c "! '$B/vtpmctl' verify-evidence --trust-test-ark --evidence a-rsa.ev --ek a-ek.pem 2>/dev/null"
# vtpmctl show --json: the EKs and the certificates' fingerprints, durably.
endo() {	# HOSTBYTE KEY
	vtpmctl --json show "guest-$(hexn "$1" 6)" |
		python3 -c 'import json,sys; e=json.load(sys.stdin)["instance"]["endorsement"]; print(e.get(sys.argv[1]) or "")' "$2"
}
check_eq "show: the endorsement is recorded" "$(endo aa recorded)" "True"
endo aa ek_rsa_pem >show-rsa.pem
endo aa ek_ecc_pem >show-ecc.pem
check_eq "show: the RSA EK equals tpm2_createek's" "$(spki_sha256 show-rsa.pem)" "$(spki_sha256 a-ekr.pem)"
check_eq "show: the ECC EK equals tpm2_createek's" "$(spki_sha256 show-ecc.pem)" "$(spki_sha256 a-eke.pem)"
check "verify-evidence --ek accepts the EKs from vtpmctl show" \
	verify --evidence a.ev --ek show-rsa.pem --ek show-ecc.pem
check_eq "show: the binding report data is bind-ek's" "$(endo aa ek_bind_report_data)" "$rd_a"
tpm a nvread 0x01c0000a -o a-ecc-nv.der 2>/dev/null
check_eq "show: RSA certificate fingerprint = SHA-256 of tpm2_getekcertificate's" \
	"$(endo aa ek_rsa_cert_sha256)" "$(sha256sum <a-rsa.der | cut -d' ' -f1)"
check_eq "show: ECC certificate fingerprint = SHA-256 of tpm2_nvread 0x01c0000a" \
	"$(endo aa ek_ecc_cert_sha256)" "$(sha256sum <a-ecc-nv.der | cut -d' ' -f1)"
check_ne "show: two guests, two RSA EKs" "$(endo aa ek_rsa_spki_sha256)" "$(endo bb ek_rsa_spki_sha256)"
stop_guest a
stop_guest b
stop_vtpmd
start_vtpmd
check_eq "show after a vtpmd restart: the record is still there" \
	"$(endo aa ek_rsa_cert_sha256)" "$(sha256sum <a-rsa.der | cut -d' ' -f1)"
# Backup and restore, export and import carry the endorsement record.
NA="guest-$(hexn aa 6)"
NB="guest-$(hexn bb 6)"
fp_a=$(endo aa ek_rsa_cert_sha256)
fp_b=$(endo bb ek_ecc_cert_sha256)
vtpmctl backup "$T/e.vbak" >/dev/null 2>&1
check "backup" [ -s "$T/e.vbak" ]
check "the backup opens with keys (its endorsement records too)" \
	bash -c "'$B/vtpmctl' --admin '$T/admin.sock' verify --with-keys '$T/e.vbak' >/dev/null"
vtpmctl delete "$NA" >/dev/null
vtpmctl restore "$T/e.vbak" >/dev/null 2>&1
check_eq "restore brings the endorsement record back" "$(endo aa ek_rsa_cert_sha256)" "$fp_a"
stop_vtpmd
start_vtpmd --migration-key-provider "file:$T/mig.key"
vtpmctl export "$NB" "$T/b.vexp" >/dev/null 2>&1
check "export" [ -s "$T/b.vexp" ]
stop_vtpmd
mv "$T/state" "$T/state-1"
start_vtpmd --migration-key-provider "file:$T/mig.key"	# another host: a new root key
vtpmctl import "$T/b.vexp" >/dev/null 2>&1
check_eq "import brings the endorsement record along" "$(endo bb ek_ecc_cert_sha256)" "$fp_b"
vtpmctl enroll plain --measurement "$(hexn 22 48)" --host-data "$(hexn cc 32)" >/dev/null
check "show: an instance not manufactured yet says why it has no record" \
	bash -c "'$B/vtpmctl' --admin '$T/admin.sock' --json show plain | grep -q 'not manufactured yet'"
t_done
