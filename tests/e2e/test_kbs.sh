#!/usr/bin/env bash
# test_kbs.sh: vtpmd's root key from a Trustee-KBS-compatible broker
# (tests/kbs/test-kbs.py: RCAR 0.4.0, sample TEE, its own TLS CA), end to end
# with real processes: guests keep their TPM state across restarts; a broker
# that is down, denies, sends garbage or the wrong key gets nothing served
# and nothing changed on disk; rotation while a guest writes NV; kill -9
# during rotations; the RSA-OAEP-256 TEE key; TLS and http rules; no key byte
# in logs or on disk. Prints "kbs_e2e: N passed, M failed".
source "$(dirname "$0")/lib.sh"
t_init kbs_e2e

KPY=${KBS_PYTHON:-/usr/bin/python3}	# Debian's, with python3-cryptography
BROKER=$TOP/tests/kbs/test-kbs.py
K=$T/kbs
RES=vtpm/kek/root
KEY1=$(hexn 5a 32)
KEY2=$(hexn a5 32)
KBS_PID=

if ! "$KPY" -c 'import cryptography' 2>/dev/null; then
	echo "test_kbs: $KPY has no python3-cryptography (tools/setup.sh installs it)"
	fail "python3-cryptography available"
	t_done
	exit 1
fi

# start_kbs [serve args]: the broker on 127.0.0.1; sets KBS_PORT
start_kbs() {
	mkdir -p "$K"
	rm -f "$K/port"
	"$KPY" "$BROKER" serve --dir "$K" "$@" >>"$T/kbs.log" 2>&1 &
	KBS_PID=$!
	T_PIDS+=($KBS_PID)
	local i
	for i in $(seq 200); do
		[ -s "$K/port" ] && break
		sleep 0.05
	done
	KBS_PORT=$(cat "$K/port" 2>/dev/null)
	[ -n "$KBS_PORT" ]
}
stop_kbs() {
	[ -n "$KBS_PID" ] || return 0
	kill "$KBS_PID" 2>/dev/null
	wait "$KBS_PID" 2>/dev/null
	KBS_PID=
}
kbs_mode() { echo "$1" >"$K/mode"; }
# kbs_key RESOURCE VERSION HEXKEY: publish {"version":N,"key":b64} at RESOURCE
kbs_key() { "$KPY" "$BROKER" set-key --dir "$K" --resource "$1" --version "$2" --key-hex "$3"; }
kbs_rm() { rm -f "$K/resources/$1"; }
kbs_args() {
	KBS_ARGS=(--key-provider "kbs:https://127.0.0.1:$KBS_PORT" --key-resource "$RES"
		--kbs-ca-file "$K/ca.pem")
}
# status_field FIELD: one field of `vtpmctl --json status`
status_field() { vtpmctl --json status 2>/dev/null | jq -r ".status.\"$1\" // empty"; }
# wait_keys PREFIX [tries of 100 ms]: status "keys" starts with PREFIX
wait_keys() {
	local i s
	for i in $(seq "${2:-150}"); do
		s=$(status_field keys)
		case $s in "$1"*) return 0 ;; esac
		sleep 0.1
	done
	echo "    (keys: '$s', want '$1...')"
	return 1
}
# wait_status_grep ERE: vtpmctl status --json matches ERE within 15 s
wait_status_grep() {
	local i
	for i in $(seq 150); do
		"$B/vtpmctl" --admin "$T/admin.sock" --json status 2>/dev/null | grep -Eq "$1" && return 0
		sleep 0.1
	done
	echo "    (status never matched '$1': $("$B/vtpmctl" --admin "$T/admin.sock" --json status 2>&1 | tr -d '\n' | cut -c1-300))"
	return 1
}
mdb_hash() { sha256sum "$T/state/data.mdb" | cut -d' ' -f1; }
# all_key_versions: the distinct key_version values of every instance
all_key_versions() { vtpmctl --json list | jq -r '[.instances[].key_version] | unique | map(tostring) | join(",")'; }
all_key_ids() { vtpmctl --json list | jq -r '[.instances[].key_id] | unique | join(",")'; }
fails_kbs() { ! "$@"; }	# succeeds if the command fails
# Log lines after a mark: MARK=$(kbs_mark FILE); ...; kbs_wait_log FILE MARK ERE
kbs_mark() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
kbs_wait_log() {
	local i
	for i in $(seq "${4:-100}"); do
		tail -n +"$(($2 + 1))" "$1" 2>/dev/null | grep -qE -- "$3" && return 0
		sleep 0.05
	done
	echo "    (no line matching '$3' in $1 since line $2)"
	return 1
}
guest_refused() {	# NAME: its log says vtpmd refused for lack of a root key
	grep -q "root key not available" "$T/$1.log"
}

# ---- 0. the broker's own JOSE code reproduces the shared vector -----------------
check "broker reproduces the kbs-rcar JWE vector (independent implementation)" \
	"$KPY" "$BROKER" self-test "$TOP/tests/vectors/kbs-rcar/kbs_v0.4.0_vectors.json"

# ---- 1. broker unreachable at start: wait, serve nothing, then recover ----------
FREE_PORT=$("$KPY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
KBS_PORT=$FREE_PORT
kbs_args
"$KPY" "$BROKER" init --dir "$K"	# its CA exists before the broker runs
start_vtpmd "${KBS_ARGS[@]}" && pass "vtpmd starts while the broker is down" ||
	fail "vtpmd starts while the broker is down"
check "status: waiting for broker" wait_keys "waiting for broker:"
check "status names the reason (connection)" \
	bash -c "'$B/vtpmctl' --admin '$T/admin.sock' --json status | grep -qi 'connect'"
"$B/vtpm-guest" --server "unix:$T/vtpmd.sock" --attestation sim \
	--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn 01 32)" \
	--sim-launch-id "$(hexn 01 32)" --socket "$T/g1.sock" >>"$T/g1.log" 2>&1 &
GUEST_PID[g1]=$!
T_PIDS+=($!)
for i in $(seq 60); do guest_refused g1 && break; sleep 0.1; done
check "an attach while waiting gets ERROR unavailable (no root key)" guest_refused g1
check "nothing served: no instance enrolled while waiting" \
	test "$(vtpmctl --json list | jq '.instances | length')" = 0
check "the log says vtpmd waits for the broker" grep -q "no root key: .*127.0.0.1:$FREE_PORT" "$T/vtpmd.log"
check "admin enroll is refused while waiting (no root key)" bash -c "'$B/vtpmctl' \
	--admin '$T/admin.sock' enroll --measurement $(hexn 22 48) --host-data $(hexn 22 32) \
	x 2>&1 | grep -q 'root key not available'"
start_kbs --port "$FREE_PORT" && pass "broker started (late)" || fail "broker started (late)"
kbs_key "$RES" 1 "$KEY1"
check "vtpmd retries and gets the key" wait_keys available 300
check "the waiting guest attaches once keyed" wait_for_socket "$T/g1.sock" 200
check "guest defines an NV counter" nv_counter_define g1
for i in 1 2 3; do nv_counter_incr g1; done
check_eq "g1 counter" "$(nv_counter_read g1)" 3
check_eq "status key_version" "$(status_field key_version)" 1
start_guest g2 02 02 && pass "second guest attaches" || fail "second guest attaches"
nv_counter_define g2
for i in 1 2 3 4 5; do nv_counter_incr g2; done
check_eq "g2 counter" "$(nv_counter_read g2)" 5

# ---- 2. restart: the key comes from the broker again; every guest finds its state
stop_vtpmd
start_vtpmd "${KBS_ARGS[@]}"
check "restart: key released again" wait_keys available
check_eq "restart: g1 finds its counter" "$(nv_counter_read g1)" 3
check_eq "restart: g2 finds its counter" "$(nv_counter_read g2)" 5
check "broker released the key at least twice" \
	test "$(jq .released "$K/stats.json")" -ge 2
check_eq "every wrapped key carries version 1" "$(all_key_versions)" 1

# ---- 3. the broker denies: nothing served, nothing changed ----------------------
stop_vtpmd
H0=$(mdb_hash)
for mode in deny deny-attest; do
	kbs_mode $mode
	MARK=$(kbs_mark "$T/vtpmd.log")
	start_vtpmd "${KBS_ARGS[@]}"
	check "$mode: status waiting for broker" wait_keys "waiting for broker:"
	# The first status may still say "connecting": wait for the broker's answer.
	check "$mode: status shows the broker's error" \
		wait_status_grep "$([ $mode = deny ] && echo PolicyDeny || echo AttestationError)"
	check "$mode: the log says why" kbs_wait_log "$T/vtpmd.log" "$MARK" \
		"no root key: .*refused by the broker .*HTTP 401"
	check "$mode: guest TPM commands fail (nothing served)" fails_kbs tpm g1 getrandom 8
	stop_vtpmd
	check_eq "$mode: data.mdb unchanged byte for byte" "$(mdb_hash)" "$H0"
done

# ---- 4. garbage from the broker: a clear error ----------------------------------
for mode in garbage bad-tag; do
	kbs_mode $mode
	MARK=$(kbs_mark "$T/vtpmd.log")
	start_vtpmd "${KBS_ARGS[@]}"
	check "$mode: status waiting for broker" wait_keys "waiting for broker:"
	want=$([ $mode = garbage ] && echo "not a JSON object" || echo "tag does not verify")
	check "$mode: the log says '$want'" kbs_wait_log "$T/vtpmd.log" "$MARK" "$want"
	stop_vtpmd
	check_eq "$mode: data.mdb unchanged" "$(mdb_hash)" "$H0"
done

# ---- 5. the wrong key: refuse to serve, change nothing ---------------------------
kbs_mode wrong-key
MARK=$(kbs_mark "$T/vtpmd.log")
start_vtpmd "${KBS_ARGS[@]}"
check "wrong key: status refused" wait_keys "refused:"
check "wrong key: the log says the key does not open the store" kbs_wait_log "$T/vtpmd.log" \
	"$MARK" "does not open this store.*nothing was changed"
check "wrong key: guest TPM commands fail" fails_kbs tpm g2 getrandom 8
check "wrong key: vtpmd stays up (retrying)" kill -0 "$VTPMD_PID"
stop_vtpmd
check_eq "wrong key: data.mdb unchanged" "$(mdb_hash)" "$H0"
kbs_mode normal

# ---- 6. TLS: an unrelated CA is refused; plain http only when allowed -------------
start_vtpmd --key-provider "kbs:https://127.0.0.1:$KBS_PORT" --key-resource "$RES" \
	--kbs-ca-file "$K/other-ca.pem"
check "other CA: waiting for broker" wait_keys "waiting for broker:"
check "other CA: the reason is the certificate" \
	bash -c "'$B/vtpmctl' --admin '$T/admin.sock' --json status | grep -qi 'certificate'"
stop_vtpmd
check_eq "other CA: data.mdb unchanged" "$(mdb_hash)" "$H0"
# vtpmd_n ARGS...: vtpmd -n (check the configuration only), output to a log
vtpmd_n() { "$B/vtpmd" --dev --state-dir "$T/state" "$@" -n >>"$T/vtpmd-n.log" 2>&1; }
check "kbs:http:// is refused without --kbs-allow-http" fails_kbs vtpmd_n \
	--key-provider "kbs:http://127.0.0.1:$KBS_PORT" --key-resource "$RES"
check "kbs:http:// with --kbs-allow-http passes -n" vtpmd_n \
	--key-provider "kbs:http://127.0.0.1:1" --key-resource "$RES" --kbs-allow-http
check "kbs: without --key-resource is refused" fails_kbs vtpmd_n \
	--key-provider "kbs:https://127.0.0.1:1"
check "-n: a missing --kbs-ca-file is refused" fails_kbs vtpmd_n \
	--key-provider "kbs:https://127.0.0.1:1" --key-resource "$RES" \
	--kbs-ca-file "$T/no-such-ca.pem"
check "-n: a bad resource path is refused" fails_kbs vtpmd_n \
	--key-provider "kbs:https://127.0.0.1:1" --key-resource "vtpm/kek"
check "-n: --key-resource without kbs: is refused" fails_kbs vtpmd_n \
	--key-resource "$RES"
HK=$T/kbs-http
mkdir -p "$HK"
"$KPY" "$BROKER" serve --dir "$HK" --http >>"$T/kbs-http.log" 2>&1 &
T_PIDS+=($!)
for i in $(seq 200); do [ -s "$HK/port" ] && break; sleep 0.05; done
cp -r "$K/resources" "$HK/"
start_vtpmd --key-provider "kbs:http://127.0.0.1:$(cat "$HK/port")" --key-resource "$RES" \
	--kbs-allow-http
check "plain http broker with --kbs-allow-http: keyed" wait_keys available
check_eq "http: g1 finds its counter" "$(nv_counter_read g1)" 3
stop_vtpmd

# ---- 7. RSA-OAEP-256 TEE key --------------------------------------------------------
start_vtpmd "${KBS_ARGS[@]}" --kbs-tee-key rsa
check "RSA-OAEP-256: keyed" wait_keys available
check "RSA-OAEP-256: the broker encrypted to an RSA key" grep -q "RSA-OAEP-256" "$T/kbs.log"
check_eq "RSA-OAEP-256: g2 finds its counter" "$(nv_counter_read g2)" 5
stop_vtpmd

# ---- 8. rotation while a guest writes NV in a loop ---------------------------------
start_vtpmd "${KBS_ARGS[@]}"
wait_keys available >/dev/null
kbs_key "$RES.v1" 1 "$KEY1"		# the old version stays fetchable
kbs_key "$RES.v2" 2 "$KEY2"
kbs_key "$RES" 2 "$KEY2"		# the broker's current key is now version 2
BEFORE=$(nv_counter_read g1)
rm -f "$T/loop.err" "$T/loop.done"
(
	for i in $(seq 30); do
		nv_counter_incr g1 || echo "increment $i failed" >>"$T/loop.err"
	done
	touch "$T/loop.done"
) &
LOOP=$!
sleep 0.7
vtpmctl rotate-key >"$T/rotate.out" 2>&1
ROT=$?
[ -e "$T/loop.done" ] && LOOP_DONE_EARLY=1 || LOOP_DONE_EARLY=0
wait $LOOP
check_eq "rotate-key succeeded" "$ROT" 0
check "rotate-key says 1 -> 2" grep -q "from version 1 to 2" "$T/rotate.out"
check_eq "the rotation happened while the guest was writing" "$LOOP_DONE_EARLY" 0
check "no error seen by the guest during rotation" test ! -e "$T/loop.err"
EXPECT1=$(printf '%x' $((16#$BEFORE + 30)))
EXPECT2=5
check_eq "every increment counted" "$(nv_counter_read g1)" "$EXPECT1"
check_eq "status key_version 2" "$(status_field key_version)" 2
check_eq "every wrapped key carries version 2" "$(all_key_versions)" 2
check_eq "every wrapped key carries the new key id" "$(all_key_ids)" "$(status_field key_id)"
check "rotate-key again: already current" bash -c \
	"'$B/vtpmctl' --admin '$T/admin.sock' rotate-key | grep -q 'already at'"
kbs_key "$RES" 1 "$KEY1"
check "rotate-key to an older version is refused" fails_kbs vtpmctl rotate-key
kbs_key "$RES" 2 "$KEY2"
stop_vtpmd

# only the new version opens the store now
kbs_key "$RES" 1 "$KEY1"
kbs_rm "$RES.v2"
H1=$(mdb_hash)
start_vtpmd "${KBS_ARGS[@]}"
check "after rotation, version 1 no longer opens the store" wait_keys "refused:"
stop_vtpmd
check_eq "... and nothing changed" "$(mdb_hash)" "$H1"
kbs_key "$RES.v2" 2 "$KEY2"
kbs_key "$RES" 2 "$KEY2"

# ---- 9. kill -9 during rotations: everything opens after restart --------------------
cur=2
for delay in slow 0.03 0.3; do
	next=$((cur + 1))
	key=$(printf '%02x' $((next * 16 + 3)))
	kbs_key "$RES.v$next" "$next" "$(hexn "$key" 32)"
	kbs_key "$RES" "$next" "$(hexn "$key" 32)"
	start_vtpmd "${KBS_ARGS[@]}"
	wait_keys available >/dev/null
	if [ "$delay" = slow ]; then
		kbs_mode slow		# the broker takes 2 s per request: kill mid-fetch
		delay=1.5
	fi
	vtpmctl rotate-key >/dev/null 2>&1 &
	RPID=$!
	sleep "$delay"
	kill9_vtpmd
	wait "$RPID" 2>/dev/null
	kbs_mode normal
	start_vtpmd "${KBS_ARGS[@]}"
	check "kill -9 after ${delay}s of rotation $cur->$next: keyed again" wait_keys available
	v=$(status_field key_version)
	check "kill -9 at ${delay}s: at version $cur or $next (got $v)" test "$v" = "$cur" -o "$v" = "$next"
	check_eq "kill -9 at ${delay}s: all wrapped keys agree with the key check" \
		"$(all_key_versions)" "$v"
	check_eq "kill -9 at ${delay}s: g1 opens" "$(nv_counter_read g1)" "$EXPECT1"
	check_eq "kill -9 at ${delay}s: g2 opens" "$(nv_counter_read g2)" "$EXPECT2"
	vtpmctl rotate-key >/dev/null 2>&1
	check_eq "kill -9 at ${delay}s: rotation completes afterwards" "$(status_field key_version)" "$next"
	stop_vtpmd
	cur=$next
done

# ---- 10. key hygiene: no key byte in logs or on disk ---------------------------------
"$KPY" - "$T" <<'EOF' >"$T/hygiene.out" 2>&1
import base64, os, sys
t = sys.argv[1]
keys = [bytes([0x5a]) * 32, bytes([0xa5]) * 32] + [bytes([v * 16 + 3]) * 32 for v in range(3, 8)]
needles = []
for k in keys:
    needles += [k, k.hex().encode(), base64.b64encode(k), base64.b64encode(k).rstrip(b"=")]
bad = []
for root in (os.path.join(t, "state"), t):
    for dirpath, dirs, files in os.walk(root):
        if os.path.abspath(dirpath).startswith(os.path.join(t, "kbs")):
            continue	# the broker's own resource files
        for f in files:
            p = os.path.join(dirpath, f)
            try:
                data = open(p, "rb").read()
            except OSError:
                continue
            for n in needles:
                if n in data:
                    bad.append(p)
print("\n".join(sorted(set(bad))) or "clean")
sys.exit(1 if bad else 0)
EOF
HYG=$?
[ $HYG -eq 0 ] || cat "$T/hygiene.out"
check_eq "no root key byte in any log, the store or other files" "$HYG" 0

stop_kbs
t_done
