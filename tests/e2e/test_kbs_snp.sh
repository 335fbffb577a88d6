#!/usr/bin/env bash
# test_kbs_snp.sh: vtpmd attests to the key broker as Trustee's tee "snp"
# (issue 5): with --attestation sim it sends a real-format SEV-SNP report,
# signed by the TEST chain, as Trustee's SnpEvidence JSON; the test broker
# (tests/kbs/test-kbs.py, an independent Python implementation) rebuilds
# the report from the JSON, checks REPORT_DATA = SHA-384(JCS(runtime-data))
# || 0*16 and the chain VCEK -> ASK -> pinned ARK and the signature, and
# releases the root key. A genuine report replayed from another session
# (binding wrong, signature right) is denied and nothing is served or
# changed; tampered evidence is refused offline. Prints
# "kbs_snp: N passed, M failed".
source "$(dirname "$0")/lib.sh"
t_init kbs_snp
source "$(dirname "$0")/kbs_lib.sh"
RES=vtpm/kek/root
NVIDX=0x1500031
not() { ! "$@"; }

kbs_have_crypto || { fail "python3-cryptography available"; t_done; exit 1; }
start_kbs --snp-ark "$TEST_ARK" || fail "the broker starts"
kbs_key "$RES" 1 "$(hexn 3c 32)"
kbs_url_args "$RES"

# ---- what vtpmd accepts for --kbs-tee -----------------------------------------
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" "${KBS_ARGS[@]}" \
	--kbs-tee tdx -n >"$T/n-tdx.out" 2>&1
check_ne "-n: --kbs-tee tdx with the sim backend is refused" "$?" 0
check "it says the backend makes snp evidence" grep -q "makes snp evidence" "$T/n-tdx.out"
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" "${KBS_ARGS[@]}" \
	--kbs-tee snp -n >"$T/n-snp.out" 2>&1
check_eq "-n: --kbs-tee snp with the sim backend is accepted" "$?" 0
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" --kbs-tee snp \
	-n >"$T/n-file.out" 2>&1
check_ne "-n: --kbs-tee without a kbs: provider is refused" "$?" 0

# ---- accept: tee snp end to end -------------------------------------------------
start_vtpmd "${KBS_ARGS[@]}" --kbs-tee snp || fail "vtpmd starts"
check "the root key opens the store after snp attestation" wait_admin_keys "$T/admin.sock" available
check "vtpmd says it attests as tee snp" grep -q 'attesting to the key broker as tee "snp"' "$T/vtpmd.log"
check "the broker verified snp evidence (signature, chain, binding)" [ "$(kbs_stat snp)" -ge 1 ]
NAME=$(inst_name 61)
start_guest g 61 01
printf 'snp-evidence-ok!' >"$T/nvdata"
tpm g nvdefine -C o -s 16 -a "ownerread|ownerwrite|authread|authwrite" $NVIDX >/dev/null
tpm g nvwrite -C o -i "$T/nvdata" $NVIDX
check_eq "a guest writes NV" "$?" 0
stop_guest g
stop_vtpmd
check "the evidence JSON has Trustee's SnpEvidence members" \
	jq -e '.evidence | (keys == ["attestation_report","cert_chain"]) and
		(.attestation_report.version == 3) and (.attestation_report.report_data | length == 64) and
		([.cert_chain[].cert_type] == ["VCEK","ASK","ARK"])' "$K/last-snp.json" >/dev/null
check "REPORT_DATA = the runtime-data digest || 16 zero bytes" \
	jq -e '(.evidence.attestation_report.report_data | map(.) ) as $r |
		([$r[] | . as $b | "0123456789abcdef"[($b/16|floor):($b/16|floor)+1] +
		"0123456789abcdef"[($b%16):($b%16)+1]] | join("")) == (.digest + "00000000000000000000000000000000")' \
	"$K/last-snp.json" >/dev/null

# ---- offline: the broker's verifier refuses tampered evidence -------------------
jq '.evidence' "$K/last-snp.json" >"$T/ev.json"
DIGEST=$(jq -r .digest "$K/last-snp.json")
check "offline: the captured evidence verifies" \
	"$KPY" "$BROKER" verify-snp --ark "$TEST_ARK" "$T/ev.json" "$DIGEST" >/dev/null
OTHER=$(printf '%s' "$DIGEST" | sed 's/^./f/; t; s/^/f/')
[ "$OTHER" != "$DIGEST" ] || OTHER=$(printf '%s' "$DIGEST" | sed 's/^./0/')
"$KPY" "$BROKER" verify-snp --ark "$TEST_ARK" "$T/ev.json" "$OTHER" >"$T/v1.out"
check_ne "offline: another session's digest is refused" "$?" 0
check "  ... for its REPORT_DATA" grep -q "REPORT_DATA" "$T/v1.out"
jq '.attestation_report.measurement[0] |= (if . == 0 then 1 else 0 end)' "$T/ev.json" >"$T/ev-m.json"
"$KPY" "$BROKER" verify-snp --ark "$TEST_ARK" "$T/ev-m.json" "$DIGEST" >"$T/v2.out"
check_ne "offline: a changed measurement is refused" "$?" 0
check "  ... by the report signature" grep -q "signature does not verify" "$T/v2.out"
jq '.attestation_report.report_data[0] |= (if . == 0 then 1 else 0 end)' "$T/ev.json" >"$T/ev-r.json"
"$KPY" "$BROKER" verify-snp --ark "$TEST_ARK" "$T/ev-r.json" "$DIGEST" >"$T/v3.out"
check_ne "offline: a changed REPORT_DATA is refused" "$?" 0
"$KPY" "$BROKER" verify-snp --ark "$TOP/tests/vectors/snp-amd-roots/gosevguest_ask_ark_milan_vlek.pem" \
	"$T/ev.json" "$DIGEST" >"$T/v4.out"
check_ne "offline: the TEST chain is refused under another pinned ARK" "$?" 0

# ---- deny: a genuine report from another session (binding wrong) ---------------
H0=$(sha256sum "$T/state/data.mdb" | cut -d' ' -f1)
kbs_mode replay
REFUSED0=$(kbs_stat binding-refused)
start_vtpmd "${KBS_ARGS[@]}" --kbs-tee snp || fail "vtpmd starts (replay)"
check "with replayed evidence vtpmd waits for the broker" \
	wait_admin_keys "$T/admin.sock" "waiting for broker:"
check "the broker refused it for its binding" \
	wait_log "$T/kbs.log" 0 "snp evidence refused: REPORT_DATA is different" 100
check "status shows the broker's error" \
	wait_admin_keys "$T/admin.sock" \
	"waiting for broker: attest: refused by the broker (HTTP 401: AttestationError: snp evidence refused: REPORT_DATA" 50
check "the broker counted a binding refusal" [ "$(kbs_stat binding-refused)" -gt "$REFUSED0" ]
run_guest_once g2 61 02
check_ne "no guest is served meanwhile" "$?" 0
check "the guest is told the root key is not available" grep -q "root key not available" "$T/g2.log"
stop_vtpmd
check_eq "the store is unchanged byte for byte" "$(sha256sum "$T/state/data.mdb" | cut -d' ' -f1)" "$H0"

# ---- and back to honest evidence: the guest finds its state ----------------------
kbs_mode normal
start_vtpmd "${KBS_ARGS[@]}" --kbs-tee snp || fail "vtpmd starts (normal)"
check "honest evidence: the key opens the store again" wait_admin_keys "$T/admin.sock" available
start_guest g3 61 03
tpm g3 nvread -C o -s 16 $NVIDX >"$T/nvread" 2>/dev/null
check "after restarts the guest finds its NV data" cmp -s "$T/nvdata" "$T/nvread"
stop_guest g3
stop_vtpmd
check "no key byte in vtpmd's log" not grep -qi "3c3c3c3c3c3c3c3c" "$T/vtpmd.log"
t_done
