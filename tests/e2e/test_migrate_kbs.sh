#!/usr/bin/env bash
# test_migrate_kbs.sh: moving an instance between two vtpmds whose keys all
# come from one key broker (issue 7 acceptance, with issue 5's provider):
# two state directories, two root keys (two broker resources), and the
# migration key as a third resource (--migration-key-resource), released
# to each vtpmd only after attestation. The guest attaches to the second
# vtpmd and finds its NV data and EK; the source refuses to attach it; a
# second import of the same file is refused. Also: a broker that denies the
# migration key makes the export fail with nothing changed (not fenced); a
# vtpmd given another migration resource cannot import; no development key
# file is made and no key byte is logged. Prints "migrate_kbs: N passed, M failed".
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ops_lib.sh"
t_init migrate_kbs
source "$(dirname "$0")/kbs_lib.sh"
NVIDX=0x1500021
MIG=vtpm/migration/fleet
not() { ! "$@"; }

kbs_have_crypto || { fail "python3-cryptography available"; t_done; exit 1; }
start_kbs || fail "the broker starts"
kbs_key vtpm/kek/hostA 1 "$(hexn a1 32)"
kbs_key vtpm/kek/hostB 1 "$(hexn b2 32)"
kbs_key vtpm/kek/hostC 1 "$(hexn c3 32)"
kbs_key "$MIG" 1 "$(hexn 4d 32)"
kbs_key vtpm/migration/other 1 "$(hexn 5e 32)"

# vtpmd_as TAG ROOT_RESOURCE MIGRATION_RESOURCE: a vtpmd keyed by the broker
vtpmd_as() {
	local tag=$1
	kbs_url_args "$2"
	"$B/vtpmd" --dev --state-dir "$T/$tag" --listen "unix:$T/$tag.sock" \
		--admin "unix:$T/$tag-admin.sock" "${KBS_ARGS[@]}" \
		--migration-key-resource "$3" >>"$T/vtpmd-$tag.log" 2>&1 &
	T_PIDS+=($!)
	wait_for_socket "$T/$tag.sock" && wait_for_socket "$T/$tag-admin.sock" &&
		wait_admin_keys "$T/$tag-admin.sock" available
}
ctl() { local tag=$1; shift; "$B/vtpmctl" --admin "$T/$tag-admin.sock" "$@"; }
guest_on() {
	local tag=$1 name=$2 hb=$3 lb=$4
	rm -f "$T/$name.sock"
	"$B/vtpm-guest" --server "unix:$T/$tag.sock" --attestation sim \
		--sim-measurement "$(hexn 11 48)" --sim-host-data "$(hexn "$hb" 32)" \
		--sim-launch-id "$(hexn "$lb" 32)" --socket "$T/$name.sock" >>"$T/$name.log" 2>&1 &
	GUEST_PID[$name]=$!
	T_PIDS+=($!)
	wait_for_socket "$T/$name.sock"
}
state_of() { ctl "$1" --json show "$2" 2>/dev/null | sed -n 's/^ *"state": *"\([a-z]*\)".*/\1/p'; }

"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" \
	--migration-key-resource "$MIG" -n >"$T/n.out" 2>&1
check_ne "-n: --migration-key-resource without a kbs: provider is refused" "$?" 0
kbs_url_args vtpm/kek/hostA
"$B/vtpmd" --dev --state-dir "$T/n" --listen "unix:$T/n.sock" "${KBS_ARGS[@]}" \
	--migration-key-resource "not/a/resource/path" -n >"$T/n2.out" 2>&1
check_ne "-n: a malformed migration resource is refused" "$?" 0

check "vtpmd A gets its root key (vtpm/kek/hostA) from the broker" vtpmd_as A vtpm/kek/hostA "$MIG"
check "vtpmd B gets its root key (vtpm/kek/hostB) from the broker" vtpmd_as B vtpm/kek/hostB "$MIG"
check "vtpmd C (another migration resource) starts" vtpmd_as C vtpm/kek/hostC vtpm/migration/other
check_ne "A and B have different root keys" "$(ctl A --json status | jq -r .status.key_id)" \
	"$(ctl B --json status | jq -r .status.key_id)"
check "the migration key is not fetched at start-up" not grep -q "released $MIG" "$T/kbs.log"

NAME=$(inst_name 52)
guest_on A g 52 01
printf 'kbs-migration-ok' >"$T/nvdata"
tpm g nvdefine -C o -s 16 -a "ownerread|ownerwrite|authread|authwrite" $NVIDX >/dev/null
tpm g nvwrite -C o -i "$T/nvdata" $NVIDX
check_eq "guest wrote its NV data on A" "$?" 0
tpm g createek -c "$T/ekA.ctx" -G rsa -u "$T/ekA.pub" >/dev/null
check "guest created its EK on A" [ -s "$T/ekA.pub" ]

# ---- the broker denies the migration key: nothing changes --------------------
kbs_mode deny
MARK=$(log_mark "$T/vtpmd-A.log")
ctl A export "$NAME" "$T/denied.vexp" >"$T/export-denied.out" 2>&1
check_eq "export while the broker denies the migration key fails" "$?" 1
check "it names the broker's refusal" grep -q "PolicyDeny" "$T/export-denied.out"
check "it left no file" [ ! -e "$T/denied.vexp" ]
check_ne "the instance is not fenced" "$(state_of A "$NAME")" fenced
check "the guest's worker was not stopped for it (the key comes first)" \
	not grep -q "asking its worker to save its state and stop" <(log_since "$T/vtpmd-A.log" "$MARK")
kbs_mode normal
stop_guest g
guest_on A g1 52 02
tpm g1 nvread -C o -s 16 $NVIDX >"$T/nvread0" 2>/dev/null
check "A still serves the guest after the refused export" cmp -s "$T/nvdata" "$T/nvread0"
stop_guest g1

# ---- export with the broker's migration key ------------------------------------
MARK=$(log_mark "$T/vtpmd-A.log")
ctl A export "$NAME" "$T/g.vexp" >"$T/export.out" 2>&1
check_eq "export from A" "$?" 0
check "A fetched the migration key from the broker" \
	wait_log "$T/vtpmd-A.log" "$MARK" "kbs: key version 1 released by .* \(resource $MIG\)" 1
check "the broker released it to an attested session" grep -q "released $MIG" "$T/kbs.log"
check_eq "A shows the instance fenced" "$(state_of A "$NAME")" fenced
run_guest_once g2 52 03 --server "unix:$T/A.sock"
check_ne "the source refuses to attach it" "$?" 0
check "the refusal says fenced" grep -q "fenced" "$T/g2.log"

# ---- imports ---------------------------------------------------------------------
ctl C import "$T/g.vexp" >"$T/import-c.out" 2>&1
check_eq "C (another migration resource) cannot import" "$?" 1
check "C says the migration key differs" grep -q "wrapped by migration key" "$T/import-c.out"
ctl B import "$T/g.vexp" >"$T/import.out" 2>&1
check_eq "B imports the export" "$?" 0
ctl B import "$T/g.vexp" >"$T/import2.out" 2>&1
check_eq "a second import of the same file is refused" "$?" 1
check "it says the export was imported already" grep -q "imported here already" "$T/import2.out"
guest_on B gb 52 04
tpm gb nvread -C o -s 16 $NVIDX >"$T/nvread" 2>/dev/null
check "on B the guest finds its NV data" cmp -s "$T/nvdata" "$T/nvread"
tpm gb createek -c "$T/ekB.ctx" -G rsa -u "$T/ekB.pub" >/dev/null
check "on B the guest's EK public key is the same" cmp -s "$T/ekA.pub" "$T/ekB.pub"
stop_guest gb

check "no development migration key file was made" \
	test ! -e "$T/A/dev-migration.key" -a ! -e "$T/B/dev-migration.key"
check "no development root key file was made" \
	test ! -e "$T/A/dev-root.key" -a ! -e "$T/B/dev-root.key"
check "no migration key byte in any vtpmd log" not grep -qi "4d4d4d4d4d4d4d4d\|TU1NTU1NTU1N" "$T"/vtpmd-*.log
check "no migration key byte in the export file" not grep -qa "MMMMMMMM" "$T/g.vexp"
ctl A --json audit >"$T/audit-A.jsonl"
check "A's audit log: the export" grep -q "\"event\":\"export\",\"result\":\"ok\",.*\"instance\":\"$NAME\"" "$T/audit-A.jsonl"
t_done
