#!/usr/bin/env bash
# test_spares.sh: spare workers (--worker-spares N, zygote.h). The zygote
# keeps N workers forked and sandboxed ahead of need; an attach takes one.
# Checks: an evicted instance resumes on a spare with its NV and volatile
# state (PCR 16); every spare serves one instance only, and a second
# instance never sees the first one's data; a killed spare is replaced and
# never handed out; the pool holds exactly N (0 turns it off); a spare is
# as confined as any worker (not root, seccomp filter, not dumpable).
source "$(dirname "$0")/lib.sh"
t_init spares

NA=$(inst_name 0a)
NB=$(inst_name 0b)
DA=$(hexn a1 32)

zygote_pid() { pgrep -P "$VTPMD_PID" -f -- '--worker-zygote' | head -n 1; }
# the zygote's children: spares and running workers, one pid a line, sorted
zygote_kids() { pgrep -P "$(zygote_pid)" | sort -n; }
status_num() {
	vtpmctl --json status | sed -n 's/^ *"'"$1"'": *\([0-9]*\),\{0,1\} *$/\1/p' | head -n 1
}
# wait_spares N: until vtpmd counts N spares and the zygote has N idle children
wait_spares() {
	local i want=$1
	for i in $(seq 100); do
		if [ "$(status_num spare_workers)" = "$want" ] &&
		    [ "$(zygote_kids | wc -l)" -eq $((want + $(status_num workers))) ]; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}
worker_pid() { inst_field "$1" worker_pid; }
in_list() { grep -qx -- "$1" <<<"$2"; }
attached_how() { sed -n 's/.*attached to vtpmd instance [^ ]* (\(.*\))$/\1/p' "$T/$1.log" | tail -n 1; }
# nv_counter_present NAME: guest NAME's TPM has the counter index (it reads)
nv_counter_present() { tpm "$1" nvread -C o $NV_COUNTER >/dev/null 2>&1; }
proc_status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# ---- 1. the pool: exactly N, and as confined as a worker ----
start_vtpmd --worker-spares 3 --idle-timeout 0
check "3 spares are ready" wait_spares 3
SP=$(zygote_kids)
check_eq "the zygote has 3 children, all spares" "$(wc -l <<<"$SP")" 3
s1=$(head -n 1 <<<"$SP")
check_ne "a spare does not run as root" "$(stat -c %u "/proc/$s1")" 0
check_eq "a spare runs under its seccomp filter" "$(proc_status "$s1" Seccomp)" 2
check_eq "a spare has no-new-privs" "$(proc_status "$s1" NoNewPrivs)" 1
check_eq "a spare is named like any worker" "$(cat "/proc/$s1/comm")" vtpmd-worker
check_eq "a spare holds fds 0-3 only (no store file, no guest connection)" \
	"$(ls "/proc/$s1/fd" 2>/dev/null | sort -n | tr '\n' ' ')" "0 1 2 3 "
check_eq "so does the zygote (3: its socket, 4: its signalfd)" \
	"$(ls "/proc/$(zygote_pid)/fd" 2>/dev/null | sort -n | tr '\n' ' ')" "0 1 2 3 4 "

# ---- 2. the first attach runs on a spare; the pool is refilled ----
check "A attaches" start_guest a 0a 01
PA=$(worker_pid "$NA")
check "A's worker was a spare forked before the attach" in_list "$PA" "$SP"
check "the pool is back to 3 after A's attach" wait_spares 3
check "A: define an NV counter" nv_counter_define a
check "A: increment it" nv_counter_incr a
check "A: extend PCR 16" tpm a pcrextend "16:sha256=$DA"
P16=$(pcr16 a)

# ---- 3. evicted (--idle-timeout 0), then resumed on another spare ----
stop_guest a
check "A's worker is evicted after the detach" wait_inst_state "$NA" stored 200
check_eq "A's volatile state was saved" "$(inst_field "$NA" has_volatile_state)" true
check "A's old worker is gone" proc_gone "$PA"
SP=$(zygote_kids)
check "A attaches again (same launch)" start_guest a 0a 01
PA2=$(worker_pid "$NA")
check "A resumed on a spare forked before this attach" in_list "$PA2" "$SP"
check_ne "A's new worker is not its old one" "$PA2" "$PA"
check_eq "A: resumed (volatile state loaded)" "$(attached_how a)" "resumed: PCRs and sessions kept"
check_eq "A: PCR 16 kept (volatile state)" "$(pcr16 a)" "$P16"
check_eq "A: NV counter kept (1)" "$(nv_counter_read a)" 1

# ---- 4. a killed spare is replaced and never handed out ----
check "the pool is back to 3" wait_spares 3
victim=$(comm -23 <(zygote_kids) <(echo "$PA2"; true) | head -n 1)
kill -KILL "$victim"
check "the killed spare is reaped" proc_gone "$victim"
check "a replacement spare is forked" wait_spares 3
check "the replacement has a new pid" fails_ in_list "$victim" "$(zygote_kids)"
check "B attaches" start_guest b 0b 01
PB=$(worker_pid "$NB")
check_ne "B's worker is not the killed spare" "$PB" "$victim"
check_ne "B's worker is not A's" "$PB" "$PA2"
check "B is a new TPM" grep -q "new TPM" <<<"$(attached_how b)"
check "B's TPM has no NV counter (A's is not visible)" fails_ nv_counter_present b
check_ne "B's PCR 16 is not A's" "$(pcr16 b)" "$P16"
check "A still serves (counter 1)" [ "$(nv_counter_read a)" = 1 ]
check_eq "two workers and 3 spares: 5 children of the zygote" "$(zygote_kids | wc -l)" 5
check "vtpmd logged the lost spare" grep -q "spare worker $victim exited" "$T/vtpmd.log"
stop_guest a
stop_guest b
Z=$(zygote_pid)
KIDS=$(zygote_kids)
check "vtpmd stops cleanly with spares" stop_vtpmd
check "the zygote is gone" proc_gone "$Z"
for k in $KIDS; do
	proc_gone "$k" || fail "process $k of the zygote outlived vtpmd"
done

# ---- 5. --worker-spares 0: no pool, attaches still work ----
start_vtpmd --worker-spares 0
sleep 0.2
check_eq "no spare with --worker-spares 0" "$(status_num spare_workers)" 0
check_eq "the zygote has no child" "$(zygote_kids | wc -l)" 0
check "A attaches without a spare" start_guest a 0a 02
check_eq "A: NV counter kept without spares (1)" "$(nv_counter_read a)" 1
check_eq "still no spare afterwards" "$(status_num spare_workers)" 0
stop_guest a
check "vtpmd stops cleanly" stop_vtpmd
check "--worker-spares above the limit is refused" fails_ "$B/vtpmd" --dev -n \
	--state-dir "$T/state" --worker-spares 17
t_done
