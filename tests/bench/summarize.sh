#!/usr/bin/env bash
# tests/bench/summarize.sh: turns the "R key value unit" lines of one bench
# run into the Markdown summary: every figure with its reference, ratio,
# target and verdict, then the diagnostics. Called by run-bench.sh.
#   summarize.sh RESULTS MACHINE.md LOAD_AT_END ELAPSED_SECONDS
set -u
RES=$1 MACHINE=$2 LOAD_END=$3 ELAPSED=$4

# v KEY: a value, or "" when the run did not produce it
v() { awk -v k="$1" '$1 == "R" && $2 == k { x = $3 } END { if (x != "") print x }' "$RES"; }
# rounds PREFIX SUFFIX: median of PREFIX.rN.SUFFIX over the rounds
rounds() {
	awk -v p="$1" -v s="$2" '$1 == "R" && $2 ~ ("^" p "\\.r[0-9]+\\." s "$") { print $3 }' "$RES" |
		sort -g | awk '{ x[++n] = $1 } END { if (n == 0) exit;
			print (n % 2 ? x[(n + 1) / 2] : (x[n / 2] + x[n / 2 + 1]) / 2) }'
}
# calc EXPR with numbers: prints "" if any input is empty
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }" 2>/dev/null; }
num() { [ -n "$1" ] && printf "%.${2:-1}f" "$1" || printf "n/a"; }
ratio() { [ -n "$1" ] && [ -n "$2" ] && calc "$1 / $2" "${3:-2}" || printf "n/a"; }
# verdict RATIO OP TARGET: OP is le or ge
verdict() {
	[ "$1" = "n/a" ] || [ -z "$1" ] && { printf "not measured"; return; }
	awk -v r="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (op == "le") { if (r <= t) print "**met**"; else printf "**missed** (%.2fx the target)\n", r / t }
		else { if (r >= t) print "**met**"; else printf "**missed** (%.2fx short)\n", t / r } }'
}

GR_V=$(v rtt.vtpmd.getrandom.p50) GR_S=$(v rtt.swtpm.getrandom.p50) GR_I=$(v inproc.getrandom.p50)
PE_V=$(v rtt.vtpmd.pcrextend.p50) PE_S=$(v rtt.swtpm.pcrextend.p50) PE_I=$(v inproc.pcrextend.p50)
NV_V=$(v nv1.vtpmd.p50) NV_D=$(v nv1.swtpm_durable.p50) NV_P=$(v nv1.swtpm_plain.p50)
M_V=$(rounds nvmulti.vtpmd ops) M_S=$(rounds nvmulti.swtpm_durable ops) M_N=$(v nvmulti.vtpmd_nosync.ops)
MEM_KEYS=$(awk '$1 == "R" && $2 ~ /^mem\.vtpmd[0-9]+\.per_instance_pss$/ { split($2, a, "."); print substr(a[2], 6) }' "$RES" | sort -n | uniq)
A_NEW=$(v attach.new.p50) A_HOT=$(v attach.hot.p50) A_RES=$(v attach.resume.p50)
C_FR=$(v cold.swtpm_fresh.p50) C_EX=$(v cold.swtpm_existing.p50)

R_GR=$(ratio "$GR_V" "$GR_S") R_PE=$(ratio "$PE_V" "$PE_S")
R_NV=$(ratio "$NV_V" "$NV_D") R_M=$(ratio "$M_V" "$M_S" 1)

echo "# vtpmd benchmark results"
echo
echo "Produced by \`make bench\` (tests/bench/run-bench.sh) in one run of ${ELAPSED} s;"
echo "load average at the end: $LOAD_END. Units: µs unless stated. Ratios are vtpmd / reference."
echo
cat "$MACHINE"
echo
echo "## Figures, ratios and targets"
echo
echo "| # | figure | vtpmd | reference | ratio | target | verdict |"
echo "|---|---|---|---|---|---|---|"
echo "| 1 | GetRandom(32) round trip p50 (p99) | $(num "$GR_V") ($(num "$(v rtt.vtpmd.getrandom.p99)" 0)) | swtpm $(num "$GR_S") ($(num "$(v rtt.swtpm.getrandom.p99)" 0)); in-process $(num "$GR_I" 2) | $R_GR | ≤ 1.0 | $(verdict "$R_GR" le 1.0) |"
echo "| 1 | PCR_Extend round trip p50 (p99) | $(num "$PE_V") ($(num "$(v rtt.vtpmd.pcrextend.p99)" 0)) | swtpm $(num "$PE_S") ($(num "$(v rtt.swtpm.pcrextend.p99)" 0)); in-process $(num "$PE_I" 2) | $R_PE | ≤ 1.0 | $(verdict "$R_PE" le 1.0) |"
echo "| 2 | durable NV_Increment, one guest, p50 (p99) | $(num "$NV_V" 0) ($(num "$(v nv1.vtpmd.p99)" 0)) | swtpm + fsync $(num "$NV_D" 0) ($(num "$(v nv1.swtpm_durable.p99)" 0)); swtpm 0.7.1 as shipped, not durable: $(num "$NV_P" 0) | $R_NV | ≤ 0.5 | $(verdict "$R_NV" le 0.5) |"
NG=$(num "$(v nvmulti.vtpmd.r1.guests)" 0)
echo "| 3 | durable NV_Increment/s, $NG guests, aggregate | $(num "$M_V" 0)/s | $NG x swtpm + fsync $(num "$M_S" 0)/s | $R_M x | ≥ 10x | $(verdict "$R_M" ge 10) |"
for n in $MEM_KEYS; do
	PV=$(v "mem.vtpmd$n.per_instance_pss") PS=$(v "mem.swtpm$n.per_instance_pss")
	R=$(ratio "$PV" "$PS")
	echo "| 4 | PSS per attached instance, $n instances (workers + zygote + spares + parent, divided), KiB | $(num "$PV" 0) (total $(num "$(v "mem.vtpmd$n.total_pss")" 0) MiB) | swtpm $(num "$PS" 0) (total $(num "$(v "mem.swtpm$n.total_pss")" 0) MiB) | $R | ≤ 0.8 | $(verdict "$R" le 0.8) |"
done
S_EK=$(v setup.swtpm_ek_cert.p50)
if [ -n "$S_EK" ] && [ -n "$C_FR" ]; then
	S_NEW=$(awk -v a="$S_EK" -v b="$C_FR" 'BEGIN { printf "%.3f", a + b }')
	echo "| 5 | attach p50, new instance (enrol + manufacture + both EKs and their certificates), ms | $(num "$A_NEW") | swtpm_setup --createek --create-ek-cert $(num "$S_EK") + cold start $(num "$C_FR") = $(num "$S_NEW") | $(ratio "$A_NEW" "$S_NEW") | ≤ 10 ms | $(verdict "$A_NEW" le 10) |"
else
	echo "| 5 | attach p50, new instance (enrol + manufacture + both EKs and their certificates), ms | $(num "$A_NEW") | swtpm cold start, fresh state (no EK): $(num "$C_FR") | $(ratio "$A_NEW" "$C_FR") | ≤ 10 ms | $(verdict "$A_NEW" le 10) |"
fi
echo "| 5 | attach p50, hot worker (same launch), ms | $(num "$A_HOT") | – | – | (≤ 10 ms) | $(verdict "$A_HOT" le 10) |"
echo "| 5 | resume of an evicted instance p50, ms | $(num "$A_RES") | swtpm cold start, existing state: $(num "$C_EX") | $(ratio "$A_RES" "$C_EX") | ≤ 5 ms | $(verdict "$A_RES" le 5) |"
PREV_N= PREV_T=
for n in $(awk '$1 == "R" && $2 ~ /^store\.[0-9]+\.admin_list_ms$/ { split($2, a, "."); print a[2] }' "$RES" | sort -n | uniq); do
	T=$(v "store.$n.vtpmctl_list_ms") TA=$(v "store.$n.admin_list_ms") OK=$(v "store.$n.vtpmctl_list_ok")
	G="–"
	[ -n "$PREV_N" ] && G="$(calc "($TA / $PREV_T) / ($n / $PREV_N)") (time ratio / size ratio)"
	echo "| 6 | \`vtpmctl list\` with $n instances, ms | $(num "$T" 0)$(awk -v o="$OK" 'BEGIN { if (o + 0 < 1) print " **FAILED**" }') | admin op alone $(num "$TA" 0) ms = $(calc "$TA * 1000 / $n") µs/instance, $(num "$(v "store.$n.admin_list_bytes")" 0) B; a guest's NV write meanwhile: longest $(num "$(v "stall.$n.nv_max")" 0) ms (p50 $(num "$(v "stall.$n.nv_p50")" 1)); parent peak RSS $(num "$(v "store.$n.parent_peak_rss")" 0) MiB | $G | linear | $([ "$G" = "–" ] && echo "–" || awk -v g="${G%% *}" 'BEGIN { print (g <= 1.5 ? "**met**" : "**missed**") }') |"
	PREV_N=$n PREV_T=$TA
done
[ "$(v store.backup_skipped)" = "1.000" ] &&
	echo "| 6 | backup and verify time | skipped: \`vtpmctl backup\` does not exist yet (TODO hook in run-bench.sh) | | | linear | – |"
echo
echo "## Diagnostics"
echo
echo "Disk floor on this run: 4 KiB pwrite + fdatasync p50 $(num "$(v disk.fdatasync_4k.p50)" 0) µs;"
echo "tmp write + fsync + rename + fsync(dir) p50 $(num "$(v disk.file_fsync_rename_fsyncdir.p50)" 0) µs."
echo "Channel encryption (ChaCha20-Poly1305, the four messages of one GetRandom round trip,"
echo "two on each side): $(num "$(v crypto.per_round_trip)" 2) µs."
echo "In-process libtpms NV_Increment p50 $(num "$(v inproc.nvincrement.p50)" 2) µs,"
echo "$(v inproc.nvincrement.stores_per_cmd) stores of $(num "$(v inproc.permall_bytes)" 0) bytes each."
echo
echo "64-guest run, per durable increment (median over rounds): server CPU"
echo "vtpmd $(num "$(rounds nvmulti.vtpmd server_cpu_us_per_op)" 0) µs vs swtpm $(num "$(rounds nvmulti.swtpm_durable server_cpu_us_per_op)" 0) µs;"
echo "(of which the vtpmd parent $(num "$(rounds nvmulti.vtpmd parent_cpu_us_per_op)" 0) µs);"
echo "client CPU vtpmd $(num "$(rounds nvmulti.vtpmd client_cpu_us_per_op)" 0) µs vs swtpm $(num "$(rounds nvmulti.swtpm_durable client_cpu_us_per_op)" 0) µs;"
echo "bytes written to storage vtpmd $(num "$(rounds nvmulti.vtpmd disk_bytes_per_op)" 0) vs swtpm $(num "$(rounds nvmulti.swtpm_durable disk_bytes_per_op)" 0);"
echo "latency p50 vtpmd $(num "$(rounds nvmulti.vtpmd p50)" 0) µs vs swtpm $(num "$(rounds nvmulti.swtpm_durable p50)" 0) µs."
echo "vtpmd with --unsafe-nosync (not durable; the CPU ceiling): $(num "$M_N" 0)/s, server CPU $(num "$(v nvmulti.vtpmd_nosync.server_cpu_us_per_op)" 0) µs per increment."
G_V=$(v nvmulti.vtpmd_getrandom.ops) G_S=$(v nvmulti.swtpm_getrandom.ops)
if [ -n "$G_V" ] && [ -n "$G_S" ]; then
	echo "The same $(v nvmulti.vtpmd_getrandom.guests | cut -d. -f1) guests sending GetRandom, which stores nothing (the data path's own ceiling on"
	echo "this machine): vtpmd $(num "$G_V" 0)/s (server CPU $(num "$(v nvmulti.vtpmd_getrandom.server_cpu_us_per_op)" 0) µs, client $(num "$(v nvmulti.vtpmd_getrandom.client_cpu_us_per_op)" 0) µs per command),"
	echo "swtpm $(num "$G_S" 0)/s (server $(num "$(v nvmulti.swtpm_getrandom.server_cpu_us_per_op)" 0) µs, client $(num "$(v nvmulti.swtpm_getrandom.client_cpu_us_per_op)" 0) µs); 10 x the durable swtpm figure"
	echo "would be $(num "$(awk -v a="$(rounds nvmulti.swtpm_durable ops)" 'BEGIN { printf "%.0f", 10 * a }')" 0)/s."
fi
echo
echo "Attach phases p50 (ms, from the client): handshake done / evidence verified / instance ready (ATTACHED after evidence):"
for ph in new hot resume; do
	echo "- $ph: $(num "$(v "attach.$ph.handshake_p50")" 2) / $(num "$(v "attach.$ph.evidence_p50")" 2) / +$(num "$(v "attach.$ph.ready_p50")" 2)"
done
echo "- attestation alone (in one process, p50 wall / CPU): producing sim evidence $(num "$(v crypto.evidence_get.p50)" 2) / $(num "$(v crypto.evidence_get.cpu_p50)" 2) ms,"
echo "  verifying it $(num "$(v crypto.evidence_verify.p50)" 2) / $(num "$(v crypto.evidence_verify.cpu_p50)" 2) ms ($(num "$(v crypto.evidence_bytes)" 0)-byte envelope); an attach does each twice in sequence"
echo "- process start floors: fork+exec of /bin/true $(num "$(v spawn.bin_true.p50)" 2) ms; of \`vtpmd --worker\` until it exits $(num "$(v spawn.vtpmd_worker.p50)" 2) ms"
echo
echo "Syscalls per command (strace -c; vtpmd_all = parent and a worker traced from its fork, including"
echo "the worker's start-up and the attach, spread over the commands; calls below 0.05 per command left out):"
echo
echo "| process, command | total | by call |"
echo "|---|---|---|"
for k in vtpmd_all.getrandom swtpm.getrandom vtpmd_all.nvincrement parent.nvincrement swtpm_durable.nvincrement swtpm_plain.nvincrement; do
	tot=$(v "diag.$k.total")
	[ -n "$tot" ] || continue
	by=$(awk -v k="diag.$k." '$1 == "R" && index($2, k) == 1 && $2 != k "total" && $3 >= 0.05 { printf "%s %.2f, ", substr($2, length(k) + 1), $3 }' "$RES")
	echo "| $k | $tot | ${by%, } |"
done
echo
echo "Memory: private dirty KiB of one worker / one swtpm by mapping (largest first):"
echo
for n in $MEM_KEYS; do
	echo "- vtpmd worker ($n): $(awk -v k="mem.vtpmd$n.pd." '$1 == "R" && index($2, k) == 1 { printf "%s %d, ", substr($2, length(k) + 1), $3 }' "$RES" | sed 's/, $//')"
	echo "  worker PSS $(num "$(v "mem.vtpmd$n.worker_pss")" 0), RSS $(num "$(v "mem.vtpmd$n.worker_rss")" 0), private dirty $(num "$(v "mem.vtpmd$n.worker_priv_dirty")" 0); parent PSS $(num "$(v "mem.vtpmd$n.parent_pss")" 0); zygote and $(num "$(v "mem.vtpmd$n.spares")" 0) idle spare workers PSS $(num "$(v "mem.vtpmd$n.helpers_pss")" 0) (a spare $(num "$(v "mem.vtpmd$n.spare_pss")" 0)); all attached in $(num "$(v "mem.vtpmd$n.attach_all_s")" 1) s"
	echo "- swtpm ($n): $(awk -v k="mem.swtpm$n.pd." '$1 == "R" && index($2, k) == 1 { printf "%s %d, ", substr($2, length(k) + 1), $3 }' "$RES" | sed 's/, $//')"
	echo "  swtpm RSS $(num "$(v "mem.swtpm$n.rss")" 0), private dirty $(num "$(v "mem.swtpm$n.priv_dirty")" 0); all answering in $(num "$(v "mem.swtpm$n.start_all_s")" 1) s"
done
echo
echo "One process with libtpms and OpenSSL initialised and a TPM manufactured and started:"
echo "heap private dirty $(num "$(v inproc.mem.heap_private_dirty)" 0) KiB, libcrypto private dirty $(num "$(v inproc.mem.libcrypto_private_dirty)" 0) KiB."
echo "Zygote experiment (vtpm-bench-inproc --zygote): $(num "$(v inproc.zygote.children)" 0) children forked from such a"
echo "process (TPM terminated), each manufacturing and starting its own TPM: PSS $(num "$(v inproc.zygote.child_pss)" 0) KiB"
echo "per child, $(num "$(v inproc.zygote.per_instance_pss)" 0) KiB with the parent's share (no channel or IPC buffers)."
echo
echo "Shutdown (SIGTERM until exit, every instance saving its volatile state): $(for k in $(awk '$1 == "R" && $2 ~ /^stop\./ { print $2 }' "$RES"); do printf "%s %s s; " "${k#stop.}" "$(v "$k")"; done)"
echo
cat <<'EOF'
## Methods

- **Clients.** `vtpm-bench` speaks the whole vtpmd channel as a guest: Noise
  XX initiator, simulated evidence bound to the handshake hash, vtpmd's
  evidence verified, ATTACH with AUTO_STARTUP, then one MSG_TPM_CMD /
  MSG_TPM_RSP per command, each encrypted and authenticated; to swtpm it
  writes the raw command to the unix data socket and reads the response.
  Commands are hand-marshalled (GetRandom(32); PCR_Extend(16, sha256) and
  NV commands with an empty password session); every response code is checked.
- **Round trips (1).** One connection each, CLOCK_MONOTONIC around every
  command, n/20 warm-up, rounds interleaved vtpmd / swtpm; p50 and p99 are
  medians of the per-round values. In-process: `TPMLIB_Process` in a loop.
- **Durable NV write (2).** NV_Increment of an 8-byte ordinary (not ORDERLY)
  counter defined with owner auth; every increment stores the whole permanent
  state. vtpmd: default durable store (LMDB commit per group-commit round).
  swtpm 0.7.1 does not fsync, so it runs with `swtpm-fsync.so`
  (LD_PRELOAD), which turns its `rename(tmp, state)` into upstream swtpm's
  durable pattern: fsync(tmp), rename, fsync(dir); strace counts above show
  2 fsyncs and 1 rename per increment. The unmodified swtpm is shown too.
- **64 guests (3).** One connection per guest, one outstanding NV_Increment
  each, driven by one epoll loop; 1 s warm-up, then a fixed window; rounds
  interleaved vtpmd / 64 durable swtpm processes. CPU per op is utime+stime
  of the server processes over the window; bytes are /proc/PID/io write_bytes.
- **Memory (4).** After every guest is attached and has run one command:
  PSS from /proc/PID/smaps_rollup of every worker plus the parent, divided by
  the number of instances; swtpm: one process per instance, one connection
  open each. Breakdown by mapping from /proc/PID/smaps.
- **Attach (5).** From connect() until ATTACHED arrives (handshake, evidence
  both ways, instance ready), then one GetRandom, then DETACH. New: fresh
  identities (auto-enrolment, manufacture, worker start). Hot: the same
  identities again, workers still running. Resume: vtpmd with
  `--idle-timeout 0`; the client waits (admin status) until every worker was
  evicted (volatile state saved), then attaches each again (same launch:
  RESUMED from the store). swtpm cold start: fork/exec until the first
  GetRandom is answered (connect polled every 100 µs). A new swtpm instance
  also needs `swtpm_setup --tpm2 --createek --create-ek-cert` (Debian's
  swtpm-localca) before its first start, as a new vtpmd instance gets both
  EKs and their certificates at enrolment: the new-instance reference is the
  sum of the two medians.
- **Store (6).** `vtpm-bench-store` enrols instances straight into a stopped
  vtpmd's store through storage/store.h (what `vtpmctl enroll` would write:
  record, wrapped data key, identity index; 1,000 per batch); vtpmd is then
  started and `vtpmctl list` timed (median of 3), and the admin `list` op
  alone with an unbounded reader.
- **Noise.** The host is shared; medians are robust, tails and disk figures
  are not (compare only within one run). No timing is asserted anywhere.
EOF
