#!/usr/bin/env bash
# The vtpmd EK CA survives a root-key rotation (docs/ENDORSEMENT.md section
# 2): with the root key from a KBS-compatible broker (tests/kbs/test-kbs.py),
# `vtpmctl rotate-key` keeps the CA key, so EK certificates issued before
# still verify against `vtpmctl ca show`, also after a vtpmd restart, and new
# ones chain to the same CA. Prints "ekca: N passed, M failed".
source "$(dirname "$0")/lib.sh"
t_init ekca
cd "$T" || exit 1

KPY=${KBS_PYTHON:-/usr/bin/python3}	# Debian's, with python3-cryptography
BROKER=$TOP/tests/kbs/test-kbs.py
K=$T/kbs
RES=vtpm/kek/root
if ! "$KPY" -c 'import cryptography' 2>/dev/null; then
	fail "python3-cryptography available (tools/setup.sh installs it)"
	t_done
	exit 1
fi
kbs_key() { "$KPY" "$BROKER" set-key --dir "$K" --resource "$1" --version "$2" --key-hex "$3"; }
"$KPY" "$BROKER" init --dir "$K"
"$KPY" "$BROKER" serve --dir "$K" >>"$T/kbs.log" 2>&1 &
T_PIDS+=($!)
for i in $(seq 200); do [ -s "$K/port" ] && break; sleep 0.05; done
KBS_ARGS=(--key-provider "kbs:https://127.0.0.1:$(cat "$K/port")" --key-resource "$RES"
	--kbs-ca-file "$K/ca.pem")
kbs_key "$RES" 1 "$(hexn 5a 32)"
keyed() {
	local i
	for i in $(seq 150); do
		vtpmctl --json status 2>/dev/null | grep -q '"keys": *"available' && return 0
		sleep 0.1
	done
	return 1
}
vfy() { openssl verify -CAfile "$1" "$2" >/dev/null; }
spki() { openssl x509 -in "$1" -noout -pubkey | openssl pkey -pubin -outform der | sha256sum; }
ekcert() {	# GUEST OUT.pem
	tpm "$1" nvread 0x01c00002 -o "$2.der" 2>/dev/null
	openssl x509 -inform der -in "$2.der" -out "$2"
}

start_vtpmd "${KBS_ARGS[@]}"
check "vtpmd keyed by the broker (root key version 1)" keyed
start_guest a aa 01
vtpmctl ca show >ca1.pem
ekcert a a-ek.pem
check "a's EK certificate verifies against the CA" vfy ca1.pem a-ek.pem

kbs_key "$RES.v1" 1 "$(hexn 5a 32)"
kbs_key "$RES" 2 "$(hexn a5 32)"
vtpmctl rotate-key >rotate.out 2>&1
check "rotate-key to version 2" grep -q "from version 1 to 2" rotate.out
vtpmctl ca show >ca2.pem
check_eq "after the rotation: the same CA key" "$(spki ca2.pem)" "$(spki ca1.pem)"
check "a's EK certificate verifies against the CA after the rotation" \
	vfy ca2.pem a-ek.pem

stop_guest a
stop_vtpmd
start_vtpmd "${KBS_ARGS[@]}"
check "vtpmd restarts on root key version 2" keyed
vtpmctl ca show >ca3.pem
check_eq "after a restart: still the same CA key" "$(spki ca3.pem)" "$(spki ca1.pem)"
check "a's old EK certificate verifies against it" vfy ca3.pem a-ek.pem
start_guest b bb 01
ekcert b b-ek.pem
check "a new instance's certificate verifies against the first CA certificate" \
	vfy ca1.pem b-ek.pem
want_rd=$( { printf 'vtpmd-ek-ca-v1'; openssl x509 -in ca1.pem -noout -pubkey |
	openssl pkey -pubin -outform der; } | sha512sum | cut -d' ' -f1)
check_eq "ca evidence still binds the same CA key" \
	"$(vtpmctl --json ca evidence | python3 -c 'import json,sys; print(json.load(sys.stdin)["report_data"])')" \
	"$want_rd"
t_done
