#!/usr/bin/env bash
# test_rm.sh: the local socket's resource manager (guest-driver/rm.c,
# docs/GUEST-DRIVER.md section 5): many tpm2-tools clients at once through
# -T vtpm:... without tpm2-abrmd, isolation between clients, nothing left
# loaded after a client exits or is killed, and the raw switch.
# Long-lived clients are tests/e2e/rmclient.py (the local protocol by hand).
. "$(dirname "$0")/lib.sh"
t_init rm

RMC="$TOP/tests/e2e/rmclient.py"
rmc() { $PY "$RMC" "$@"; }
# raw NAME TOOL ARGS...: tpm2-tools on the raw TPM (raw=1 in the TCTI conf)
raw() { local name=$1 tool=$2; shift 2; LD_PRELOAD=$TPM_PRELOAD "tpm2_$tool" -T "vtpm:path=$T/$name.sock,raw=1" "$@"; }
# handles NAME KIND: what the raw TPM lists (tpm2_getcap handles-KIND), on one line
handles() { raw "$1" getcap "handles-$2" 2>&1 | tr -d '\n '; }

start_vtpmd || { fail "vtpmd did not start"; t_done; exit; }
check "vtpm-guest (local socket)" start_guest g1 c4 01

# --- 20 concurrent tpm2-tools clients, each with its own keys ---
worker() {	# N: primary, child key, load, sign, verify; objects never flushed
	local d=$T/w$1
	mkdir -p "$d" && echo "message $1" >"$d/msg" &&
	tpm g1 createprimary -C o -G ecc -c "$d/p.ctx" >/dev/null &&
	tpm g1 create -C "$d/p.ctx" -G ecc -u "$d/k.pub" -r "$d/k.priv" >/dev/null &&
	tpm g1 load -C "$d/p.ctx" -u "$d/k.pub" -r "$d/k.priv" -c "$d/k.ctx" >/dev/null &&
	tpm g1 sign -c "$d/k.ctx" -g sha256 -o "$d/sig" "$d/msg" &&
	tpm g1 verifysignature -c "$d/k.ctx" -g sha256 -m "$d/msg" -s "$d/sig" &&
	touch "$d/ok"
}
pids=()
for i in $(seq 20); do
	worker "$i" >"$T/w$i.out" 2>&1 &
	pids+=($!)
done
wait "${pids[@]}"
n=0
for i in $(seq 20); do [ -e "$T/w$i/ok" ] && n=$((n + 1)); done
check_eq "20 concurrent clients: createprimary, create, load, sign, verify all succeed" "$n" 20
for i in $(seq 20); do [ -e "$T/w$i/ok" ] || { echo "    client $i:"; tail -n 3 "$T/w$i.out"; }; done
check_eq "no client saw TPM_RC_OBJECT_MEMORY (0x902)" \
	"$(cat "$T"/w*.out | grep -ci '0x902\|object_memory')" 0
check_eq "afterwards the raw TPM holds no transient object" "$(handles g1 transient)" ""
check_eq "... no loaded session" "$(handles g1 loaded-session)" ""
check_eq "... no saved session" "$(handles g1 saved-session)" ""
check_eq "tpm2_getcap handles-transient through the RM: none" \
	"$(tpm g1 getcap handles-transient 2>&1 | tr -d '\n ')" ""

# tpm2-tools' own context files still work across processes
check "tpm2_evictcontrol of a transient key (context file) makes it persistent" \
	quiet tpm g1 evictcontrol -C o -c "$T/w1/k.ctx" 0x81000010
check "the persistent key signs" quiet tpm g1 sign -c 0x81000010 -g sha256 -o "$T/sig2" "$T/w1/msg"
check "tpm2_evictcontrol removes it" quiet tpm g1 evictcontrol -C o -c 0x81000010
check "a session saved to a file by one process is used by the next ones" eval '
	tpm g1 startauthsession --policy-session -S "$T/s.ctx" &&
	tpm g1 policypcr -S "$T/s.ctx" -l sha256:0 >/dev/null &&
	tpm g1 flushcontext "$T/s.ctx"'
check_eq "... and flushed, it is gone" "$(handles g1 saved-session)$(handles g1 loaded-session)" ""

# --- isolation: client A holds objects and a session, client B tries them ---
rmc "$T/g1.sock" hello 0 primary p hashseq q session s touch "$T/a.ready" \
	waitfile "$T/a.go" readpublic '$p' expect 0 seqauth '$q' '$s' expect 0 \
	getcap 80000000 flush '$p' expect 0 flush '$q' expect 0 getcap 80000000 \
	>"$T/a.out" 2>&1 &
A=$!
T_PIDS+=($A)
for i in $(seq 200); do [ -e "$T/a.ready" ] && break; sleep 0.05; done
check_eq "client A: primary 0x80000000, sequence 0x80000001, session 0x02000000" \
	"$(grep -E '^[pqs]=' "$T/a.out" | tr '\n' ' ')" "p=0x80000000 q=0x80000001 s=0x02000000 "
rmc "$T/g1.sock" readpublic 0x80000001 flush 0x80000001 flush 0x02000000 \
	restart 0x02000000 getcap 80000000 getcap 02000000 primary p getcap 80000000 \
	>"$T/b.out" 2>&1
cat "$T/b.out" | sed 's/^/    B: /'
check "client B: ReadPublic(A's 0x80000001) is TPM_RC_HANDLE, handle 1 (0x18b)" \
	grep -q "readpublic 0x80000001 rc=0x18b" "$T/b.out"
check "client B: FlushContext(A's 0x80000001) is TPM_RC_HANDLE, parameter 1 (0x1cb)" \
	grep -q "flush 0x80000001 rc=0x1cb" "$T/b.out"
check "client B: FlushContext(A's session) is 0x1cb" grep -q "flush 0x02000000 rc=0x1cb" "$T/b.out"
check "client B: PolicyRestart(A's session) is 0x18b" grep -q "restart 0x02000000 rc=0x18b" "$T/b.out"
check_eq "client B sees no transient object and no session of A's" \
	"$(grep '^handles=' "$T/b.out" | head -n 2 | tr '\n' ' ')" "handles= handles= "
check_eq "client B's own first object is 0x80000000 too, and it sees only that one" \
	"$(tail -n 2 "$T/b.out" | tr '\n' ' ')" "p=0x80000000 handles=0x80000000 "
rmc "$T/g1.sock" hashseq q seqauth '$q' 0x02000000 >"$T/b2.out" 2>&1
check "client B: A's session in its authorization area is TPM_RC_HANDLE, session 1 (0x98b)" \
	grep -q "rc=0x98b" "$T/b2.out"
touch "$T/a.go"
wait $A
check "client A still uses and flushes its own objects and session afterwards" test $? -eq 0
check_eq "client A, after flushing both: none left" "$(tail -n 1 "$T/a.out")" "handles="
check_eq "nothing left in the TPM" "$(handles g1 transient)$(handles g1 saved-session)" ""

# --- bad input gets a TPM error, the connection stays ---
rmc "$T/g1.sock" \
	send 80010000000e0000016100000000 \
	send 8001000000200000016100000000000000018000000040000001000400000000 \
	send 80010000000e0000014b80000000 \
	send 8001000000120000abcd0000000000000000 \
	send 80030000000c0000017b0008 \
	send 80020000000f0000015c80000000ff \
	send 80010000000c0000017b0008 \
	>"$T/bad.out" 2>&1
sed 's/^/    /' "$T/bad.out"
check_eq "truncated handle area, unknown code, bad tag, bad auth size: 0x9a 0x143 0x1e 0x144; GetRandom after them works" \
	"$(sed -n '3,7p' "$T/bad.out" | tr '\n' ' ')" "rc=0x9a rc=0x143 rc=0x1e rc=0x144 rc=0x0 "
check "a truncated and a forged context blob: the TPM's errors (ContextLoad refused)" \
	eval '[ "$(head -n 2 "$T/bad.out" | grep -c "^rc=0x[1-9a-f]")" = 2 ]'

# --- a client killed mid-sequence leaves nothing loaded ---
# (python itself in the background, not a subshell running it: kill -9 must hit it)
$PY "$RMC" "$T/g1.sock" primary p hashseq q session s half touch "$T/k.ready" waitfile "$T/never" \
	>"$T/k.out" 2>&1 &
K=$!
T_PIDS+=($K)
for i in $(seq 200); do [ -e "$T/k.ready" ] && break; sleep 0.05; done
check "while a client has sent half a command, others are served" getrandom_ok g1
check_eq "... and the raw TPM holds its session, saved, not loaded" \
	"$(handles g1 saved-session)" "-0x2000000"
kill -9 $K
wait $K 2>/dev/null
for i in $(seq 100); do [ -z "$(handles g1 saved-session)" ] && break; sleep 0.05; done
check_eq "killed: no transient object left" "$(handles g1 transient)" ""
check_eq "killed: no saved session left" "$(handles g1 saved-session)" ""
check_eq "killed: no loaded session left" "$(handles g1 loaded-session)" ""

# --- the raw switch ---
check "raw=1: tpm2_createprimary on the raw TPM" quiet raw g1 createprimary -C o -G ecc -c "$T/raw.ctx"
check_eq "raw: its object stays loaded, visible on the raw TPM" "$(handles g1 transient)" "-0x80000000"
check_eq "... and invisible to a resource-managed client" \
	"$(tpm g1 getcap handles-transient 2>&1 | tr -d '\n ')" ""
# what the resource manager prevents: on the raw TPM, tools that exit
# without flushing fill its 3 object slots
raw g1 createprimary -C o -G ecc -c "$T/raw2.ctx" >/dev/null 2>&1
raw g1 createprimary -C o -G ecc -c "$T/raw3.ctx" >/dev/null 2>&1
check "raw: with 3 objects left over, the next createprimary fails with TPM_RC_OBJECT_MEMORY" \
	eval '! raw g1 createprimary -C o -G ecc -c "$T/raw4.ctx" >/dev/null 2>"$T/raw4.err" && grep -qi "0x902\|object_memory" "$T/raw4.err"'
check "... and so does a resource-managed client's: raw clients' objects take the slots the RM needs too" \
	eval '! tpm g1 createprimary -C o -G ecc -c "$T/rm4.ctx" >/dev/null 2>"$T/rm4.err" && grep -qi "0x902\|object_memory" "$T/rm4.err"'
check "raw: tpm2_flushcontext -t flushes them" raw g1 flushcontext -t
check "then the resource-managed client creates, loads and signs again" worker 21
check_eq "raw: gone" "$(handles g1 transient)" ""
check "vtpm-guest --no-raw" start_guest g2 c5 01 --no-raw
check_eq "--no-raw: HELLO asking RAW is answered without it" \
	"$(rmc "$T/g2.sock" hello 1 2>&1)" "hello status=0 granted=00000000"
check "--no-raw: so a TCTI asking raw=1 fails to initialise" eval '! raw g2 getrandom 8 >/dev/null 2>&1'
check "--no-raw: the resource-managed TCTI works" getrandom_ok g2
check "vtpm-guest g1 still running" kill -0 "${GUEST_PID[g1]}"
t_done
