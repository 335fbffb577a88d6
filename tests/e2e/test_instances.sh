#!/usr/bin/env bash
# test_instances.sh: every guest identity gets its own TPM, and gets it back
# (issue 2: "two guests with different host data get different TPMs ...;
# after restarting vtpmd and vtpm-guest, each gets its own TPM back: an NV
# counter keeps its value; PCR 16 is reset after a new launch id and kept
# after a reconnect with the same launch id").
source "$(dirname "$0")/lib.sh"
t_init instances

NA=$(inst_name 0a)
NB=$(inst_name 0b)
ZERO=0x$(hexn 00 32)

# ek NAME FILE: EK public (default RSA template) of guest NAME into FILE
ek() {
	(cd "$T" && tpm "$1" createek -G rsa -c "$1-ek.ctx" -u "$2" >/dev/null &&
		tpm "$1" flushcontext -t >/dev/null)
}
# pcr_after HEX...: PCR value (tpm2_pcrread format) after extending zeros by each digest
pcr_after() {
	$PY -c '
import hashlib, sys
v = bytes(32)
for d in sys.argv[1:]:
    v = hashlib.sha256(v + bytes.fromhex(d)).digest()
print("0x" + v.hex().upper())' "$@"
}
# attached_how NAME: how guest NAME's last attach went, from its log
attached_how() { sed -n 's/.*attached to vtpmd instance [^ ]* (\(.*\))$/\1/p' "$T/$1.log" | tail -n 1; }

# ---- 1. two identities, two TPMs ----
start_vtpmd
check "guest A attaches" start_guest a 0a 01
check "guest B attaches" start_guest b 0b 01
check "A: tpm2_createek" ek a a-ek1.pub
check "B: tpm2_createek" ek b b-ek1.pub
check "A's EK public is an RSA-2048 key" [ "$(stat -c %s "$T/a-ek1.pub" 2>/dev/null || echo 0)" -gt 256 ]
check "A's and B's EK public keys differ" fails_ cmp -s "$T/a-ek1.pub" "$T/b-ek1.pub"

vtpmctl --json list >"$T/list.json"
check "vtpmctl --json list names A" grep -q "\"name\":\"$NA\"" "$T/list.json"
check "vtpmctl --json list names B" grep -q "\"name\":\"$NB\"" "$T/list.json"
check_eq "vtpmctl: A is attached" "$(inst_field "$NA" state)" attached
check_eq "vtpmctl: B is attached" "$(inst_field "$NB" state)" attached
check_ne "A and B have their own worker processes" "$(inst_field "$NA" worker_pid)" "$(inst_field "$NB" worker_pid)"

check "A: define NV counter" nv_counter_define a
check "B: define NV counter" nv_counter_define b
for i in 1 2 3 4 5; do nv_counter_incr a || fail "A: increment $i"; done
for i in 1 2 3; do nv_counter_incr b || fail "B: increment $i"; done
check_eq "A: counter reads 5" "$(nv_counter_read a)" 5
check_eq "B: counter reads 3 (its own NV)" "$(nv_counter_read b)" 3

DA=$(hexn a1 32)
DB=$(hexn b1 32)
check_eq "A: PCR 16 starts at zero" "$(pcr16 a)" "$ZERO"
check "A: extend PCR 16" tpm a pcrextend "16:sha256=$DA"
check "B: extend PCR 16" tpm b pcrextend "16:sha256=$DB"
PA=$(pcr_after "$DA")
PB=$(pcr_after "$DB")
check_eq "A: PCR 16 = SHA-256(0 || a1..)" "$(pcr16 a)" "$PA"
check_eq "B: PCR 16 = SHA-256(0 || b1..)" "$(pcr16 b)" "$PB"

# ---- 2. vtpm-guest restarts, vtpmd keeps running (hot worker) ----
stop_guest a
check "A: reattach with the same launch id" start_guest a 0a 01
check_eq "A: vtpm-guest reports the TPM resumed" "$(attached_how a)" "resumed: PCRs and sessions kept"
check_eq "A: PCR 16 kept (same launch)" "$(pcr16 a)" "$PA"
check_eq "A: counter still 5" "$(nv_counter_read a)" 5

stop_guest b
check "B: reattach with a new launch id" start_guest b 0b 02
check_eq "B: vtpm-guest reports a power-on" "$(attached_how b)" "powered on: PCRs reset"
check_eq "B: PCR 16 reset (new launch)" "$(pcr16 b)" "$ZERO"
check_eq "B: counter still 3" "$(nv_counter_read b)" 3
check "B: extend PCR 16 in launch 02" tpm b pcrextend "16:sha256=$DB"

# ---- 3. everything stops (SIGTERM) and restarts with the same launches ----
stop_guest a
stop_guest b
check "vtpmd stops cleanly on SIGTERM" stop_vtpmd
check "vtpmd restarts on the same state directory" start_vtpmd
check_eq "A's volatile state was saved at the stop" "$(inst_field "$NA" has_volatile_state)" true
check_eq "B's volatile state was saved at the stop" "$(inst_field "$NB" has_volatile_state)" true
check "A: attaches after the restart (launch 01)" start_guest a 0a 01
check "B: attaches after the restart (launch 02)" start_guest b 0b 02
check_eq "A: same instance name" "$(grep -o 'instance [^ ]*' "$T/a.log" | tail -n 1)" "instance $NA"
check_eq "A: resumed from saved volatile state" "$(attached_how a)" "resumed: PCRs and sessions kept"
check_eq "A: PCR 16 kept across the vtpmd restart" "$(pcr16 a)" "$PA"
check_eq "B: PCR 16 kept across the vtpmd restart" "$(pcr16 b)" "$PB"
check_eq "A: counter kept (5)" "$(nv_counter_read a)" 5
check_eq "B: counter kept (3)" "$(nv_counter_read b)" 3
check "A: tpm2_createek after the restart" ek a a-ek2.pub
check "B: tpm2_createek after the restart" ek b b-ek2.pub
check "A: same EK as before" cmp -s "$T/a-ek1.pub" "$T/a-ek2.pub"
check "B: same EK as before" cmp -s "$T/b-ek1.pub" "$T/b-ek2.pub"
check "A: increment after the restart" nv_counter_incr a
check_eq "A: counter 6" "$(nv_counter_read a)" 6

# ---- 4. everything restarts with new launches: PCRs reset, NV kept ----
stop_guest a
stop_guest b
check "vtpmd stops cleanly again" stop_vtpmd
check "vtpmd restarts" start_vtpmd
check "A: attaches with a new launch id (03)" start_guest a 0a 03
check "B: attaches with a new launch id (03)" start_guest b 0b 03
check_eq "A: powered on" "$(attached_how a)" "powered on: PCRs reset"
check_eq "A: PCR 16 reset (new launch)" "$(pcr16 a)" "$ZERO"
check_eq "B: PCR 16 reset (new launch)" "$(pcr16 b)" "$ZERO"
check_eq "A: counter kept (6)" "$(nv_counter_read a)" 6
check_eq "B: counter kept (3)" "$(nv_counter_read b)" 3
check "A: tpm2_createek in the new launch" ek a a-ek3.pub
check "A: same EK in the new launch" cmp -s "$T/a-ek1.pub" "$T/a-ek3.pub"
vtpmctl --json list >"$T/list2.json"
check_eq "vtpmctl --json list: still exactly two instances" \
	"$(grep -c '"name":' "$T/list2.json")" 2
check "vtpmctl --json list names both after the restarts" \
	grep -q "\"name\":\"$NB\"" "$T/list2.json"

stop_guest a
stop_guest b
check "vtpmd stops cleanly at the end" stop_vtpmd
t_done
