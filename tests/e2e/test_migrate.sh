#!/usr/bin/env bash
# test_migrate.sh: moving an instance between two vtpmds (issue 7,
# acceptance): two state directories, two root keys, one shared migration
# key. The guest attaches to the second vtpmd and finds its NV data and the
# same EK public key (tpm2_createek); the source refuses to attach it; a
# second import of the same file is refused. Also: a third vtpmd with
# another migration key cannot import, an export whose identity was
# rewritten (checksums recomputed) is refused by the MAC, and the instance
# can come back to its first vtpmd.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ops_lib.sh"
t_init migrate
BK="$PY $(dirname "$0")/bkfile.py"
NVIDX=0x1500020

# vtpmd_as TAG [args]: a vtpmd with state $T/TAG, guests on $T/TAG.sock, admin $T/TAG-admin.sock
vtpmd_as() {
	local tag=$1
	shift
	"$B/vtpmd" --dev --state-dir "$T/$tag" --listen "unix:$T/$tag.sock" \
		--admin "unix:$T/$tag-admin.sock" "$@" >>"$T/vtpmd-$tag.log" 2>&1 &
	T_PIDS+=($!)
	wait_for_socket "$T/$tag.sock" && wait_for_socket "$T/$tag-admin.sock"
}
ctl() { local tag=$1; shift; "$B/vtpmctl" --admin "$T/$tag-admin.sock" "$@"; }
# guest_on TAG NAME HOSTBYTE LAUNCHBYTE: a guest agent attached to vtpmd TAG
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

vtpmd_as A --migration-key-provider "file:$T/mig.key"
check "the migration key is read on first use, not at start-up" [ ! -e "$T/mig.key" ]
vtpmd_as B --migration-key-provider "file:$T/mig.key"
vtpmd_as C --migration-key-provider "file:$T/mig-other.key"
check_ne "A and B have different root keys" "$(cat "$T/A/dev-root.key" | od -An -tx1)" \
	"$(cat "$T/B/dev-root.key" | od -An -tx1)"

NAME=$(inst_name 51)
guest_on A g 51 01
printf 'migrate-me-12345' >"$T/nvdata"
tpm g nvdefine -C o -s 16 -a "ownerread|ownerwrite|authread|authwrite" $NVIDX >/dev/null
tpm g nvwrite -C o -i "$T/nvdata" $NVIDX
check_eq "guest wrote its NV data on A" "$?" 0
tpm g createek -c "$T/ekA.ctx" -G rsa -u "$T/ekA.pub" >/dev/null
check "guest created its EK on A" [ -s "$T/ekA.pub" ]

# ---- export while the guest is attached: its worker saves and stops --------
MARK=$(log_mark "$T/vtpmd-A.log")
ctl A export "$NAME" "$T/g.vexp" >"$T/export.out" 2>&1
check_eq "export from A" "$?" 0
check "A created the shared development migration key (mode 0600)" \
	[ "$(stat -c %a "$T/mig.key" 2>/dev/null)" = 600 ]
check "export reply names the instance and an export id" \
	grep -q "\"export\":{\"id\":\"[0-9a-f]\{32\}\",\"name\":\"$NAME\"" "$T/export.out"
check "A stopped the live worker in order first" \
	wait_log "$T/vtpmd-A.log" "$MARK" "asking its worker to save its state and stop"
check "no temporary file left" [ -z "$(ls -A "$T" | grep '^\.g\.vexp')" ]
check_eq "A shows the instance fenced" "$(state_of A "$NAME")" fenced
check "the guest's reconnects to A are refused: fenced" \
	wait_log "$T/vtpmd-A.log" "$MARK" "instance $NAME is fenced \(exported\)" 100
stop_guest g
run_guest_once g2 51 02 --server "unix:$T/A.sock"
check_ne "a new attach to A is refused" "$?" 0
check "the refusal says fenced" grep -q "fenced" "$T/g2.log"
ctl A export "$NAME" "$T/again.vexp" >/dev/null 2>&1
check_eq "a second export of a fenced instance is refused" "$?" 1
check "the refused export left no file" [ ! -e "$T/again.vexp" ] && [ -z "$(ls -A "$T" | grep '^\.again')" ]

ctl A verify "$T/g.vexp" >/dev/null
check_eq "the export verifies offline" "$?" 0
ctl B verify --with-keys "$T/g.vexp" >/dev/null
check_eq "B opens every blob of the export with the migration key" "$?" 0

# ---- imports that must fail --------------------------------------------------
ctl C import "$T/g.vexp" >"$T/import-c.out" 2>&1
check_eq "C (another migration key) cannot import" "$?" 1
check "C says the migration key differs" grep -q "wrapped by migration key" "$T/import-c.out"
$BK forge-identity "$T/g.vexp" "$T/forged.vexp" 66
ctl B verify "$T/forged.vexp" >/dev/null
check_eq "forged identity, checksums recomputed: offline verify cannot tell" "$?" 0
ctl B import "$T/forged.vexp" >"$T/import-forged.out" 2>&1
check_eq "B refuses the forged export" "$?" 1
check "the MAC caught it" grep -q "MAC does not verify" "$T/import-forged.out"
check "B holds no instance after the refusals" [ "$(ctl B --json list | grep -c '"name"')" -eq 0 ]

# ---- the import, once -------------------------------------------------------
ctl B import "$T/g.vexp" >"$T/import.out" 2>&1
check_eq "B imports the export" "$?" 0
ctl B import "$T/g.vexp" >"$T/import2.out" 2>&1
check_eq "a second import of the same file is refused" "$?" 1
check "it says the export was imported already" grep -q "imported here already" "$T/import2.out"
check_eq "B shows the instance stored (not fenced)" "$(state_of B "$NAME")" stored

guest_on B gb 51 03
tpm gb nvread -C o -s 16 $NVIDX >"$T/nvread" 2>/dev/null
check "on B the guest finds its NV data" cmp -s "$T/nvdata" "$T/nvread"
tpm gb createek -c "$T/ekB.ctx" -G rsa -u "$T/ekB.pub" >/dev/null
check "on B the guest's EK public key is the same" cmp -s "$T/ekA.pub" "$T/ekB.pub"

ctl A --json audit >"$T/audit-A.jsonl"
check "A's audit log: export" grep -q "\"event\":\"export\",\"result\":\"ok\",.*\"instance\":\"$NAME\"" "$T/audit-A.jsonl"
ctl B --json audit >"$T/audit-B.jsonl"
check "B's audit log: import" grep -q "\"event\":\"import\",\"result\":\"ok\",.*\"instance\":\"$NAME\"" "$T/audit-B.jsonl"
check "B's audit log: the refused second import" \
	grep -q '"event":"import","result":"already exists".*imported here already' "$T/audit-B.jsonl"
check "B's audit log: the forged export refused (MAC)" \
	grep -q '"event":"import","result":"[^"]*".*MAC does not verify' "$T/audit-B.jsonl"

# ---- and back home: B exports, A imports over its fenced copy ---------------
tpm gb nvwrite -C o -i "$T/nvdata" $NVIDX	# a write on B: newer than A's copy
ctl B export "$NAME" "$T/back.vexp" >/dev/null 2>&1
check_eq "B exports it again" "$?" 0
stop_guest gb
ctl A import "$T/back.vexp" >"$T/import-back.out" 2>&1
check_eq "A imports it back over its fenced copy" "$?" 0
check_eq "A shows it stored again" "$(state_of A "$NAME")" stored
guest_on A ga 51 04
tpm ga nvread -C o -s 16 $NVIDX >"$T/nvread2" 2>/dev/null
check "back on A the guest finds its NV data" cmp -s "$T/nvdata" "$T/nvread2"
ctl A import "$T/g.vexp" >/dev/null 2>&1
check_eq "the first export cannot be replayed on A either" "$?" 1
t_done
