#!/usr/bin/env bash
# test_audit_metrics.sh: the audit log and the metrics (issue 7): attach,
# detach, enrol and delete are audited with time, instance, identity claims
# and result, `vtpmctl audit --since` filters; `vtpmctl metrics` and the
# loopback HTTP endpoint give attached and registered instances, TPM
# commands (counted by the workers, IPC_STATS), commit latency and batch
# size, and attach failures by reason, in the Prometheus text format.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ops_lib.sh"
t_init audit_metrics

start_vtpmd --metrics-listen tcp:127.0.0.1:0
PORT=$(sed -n 's|.*metrics on http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$T/vtpmd.log" | head -n 1)
check "the metrics endpoint listens on a loopback port" [ -n "$PORT" ]
metric() { vtpmctl metrics | awk -v m="$1" '$1 == m {print $2}'; }

start_guest g1 61 01
N1=$(inst_name 61)
for i in 1 2 3 4 5 6 7 8 9 10; do tpm g1 getrandom 8 >/dev/null; done
nv_counter_define g1
nv_counter_incr g1
for i in $(seq 40); do
	[ "$(metric vtpmd_tpm_commands_total)" -ge 12 ] 2>/dev/null && break
	sleep 0.1
done
check "TPM commands counted (workers report them)" [ "$(metric vtpmd_tpm_commands_total)" -ge 12 ]
check_eq "one instance registered" "$(metric vtpmd_instances_registered)" 1
check_eq "one instance attached" "$(metric vtpmd_instances_attached)" 1
check "group commits measured (latency histogram count > 0)" \
	[ "$(metric vtpmd_commit_duration_seconds_count)" -ge 1 ]
check "batch sizes measured" [ "$(metric vtpmd_commit_batch_size_sum)" -ge 1 ]
check_eq "attaches by how: new" "$(metric 'vtpmd_attaches_total{how="new"}')" 1

# a second attach of the same identity: refused (busy), counted and audited
run_guest_once dup 61 01
check_ne "a second attach while one is live is refused" "$?" 0
check_eq "attach failures by reason: busy" "$(metric 'vtpmd_attach_failures_total{reason="busy"}')" 1
vtpmctl metrics >"$T/metrics.txt"
check "metrics text is well formed (every sample: name{labels} value)" \
	awk '!/^#/ && !/^[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+]+$/ {bad=1} END {exit bad}' "$T/metrics.txt"
check "every metric has HELP and TYPE" \
	[ "$(grep -c '^# HELP' "$T/metrics.txt")" -eq "$(grep -c '^# TYPE' "$T/metrics.txt")" ]
curl -sf "http://127.0.0.1:$PORT/metrics" >"$T/http.txt"
check_eq "HTTP GET /metrics" "$?" 0
check "HTTP answer has the same metrics" grep -q '^vtpmd_instances_registered 1$' "$T/http.txt"
check_eq "HTTP: anything else is 404" "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/")" 404

# the audit log
MARK=$(log_mark "$T/vtpmd.log")
stop_guest g1
wait_log "$T/vtpmd.log" "$MARK" "instance $N1: session ended" >/dev/null
vtpmctl --json audit >"$T/audit.jsonl"
M=$(hexn 11 48)
H=$(hexn 61 32)
check "audit: enrol of $N1" grep -q "\"event\":\"enrol\",\"result\":\"ok\",.*\"instance\":\"$N1\"" "$T/audit.jsonl"
check "audit: attach with the verified identity claims" \
	grep -q "\"event\":\"attach\",\"result\":\"ok\",.*\"instance\":\"$N1\",.*\"measurement\":\"$M\",\"host_data\":\"$H\"" "$T/audit.jsonl"
check "audit: the refused attach, with claims and reason" \
	grep -q "\"event\":\"attach\",\"result\":\"busy\",.*\"instance\":\"$N1\",.*\"host_data\":\"$H\",.*second attach refused" "$T/audit.jsonl"
check "audit: detach" grep -q "\"event\":\"detach\",\"result\":\"ok\",.*\"instance\":\"$N1\"" "$T/audit.jsonl"
check "audit: every line carries a time" [ "$(grep -vc '"time_ms":1[0-9]\{12\}' "$T/audit.jsonl")" -eq 0 ]
check "audit: no secret-looking field" fails_ grep -qiE '"(key|dek|kek|secret)"' "$T/audit.jsonl"
vtpmctl delete "$N1" >/dev/null
vtpmctl --json audit --since 1h >"$T/audit-1h.jsonl"
check "audit --since 1h: includes the delete" grep -q "\"event\":\"delete\",\"result\":\"ok\",.*\"instance\":\"$N1\"" "$T/audit-1h.jsonl"
vtpmctl --json audit --since "$(($(date +%s) + 3600))" >"$T/audit-future.jsonl"
check "audit --since a future time: nothing" [ ! -s "$T/audit-future.jsonl" ]
vtpmctl --json audit --since "$(date -u +%Y-%m-%d)" >"$T/audit-today.jsonl"
check "audit --since today's date: everything" \
	[ "$(wc -l <"$T/audit-today.jsonl")" -eq "$(wc -l <"$T/audit-1h.jsonl")" ]
vtpmctl audit --since yesterday >/dev/null 2>&1
check_eq "audit --since with a bad time: usage error" "$?" 2
vtpmctl --json audit --limit 2 >"$T/audit-2.jsonl"
check_eq "audit --limit 2: the newest two" "$(wc -l <"$T/audit-2.jsonl")" 2
check "the newest is the delete" grep -q '"event":"delete"' <(tail -n 1 "$T/audit-2.jsonl")

# the audit log is durable: it survives a restart
stop_vtpmd
start_vtpmd
vtpmctl --json audit >"$T/audit-after.jsonl"
check "audit log survives a restart" grep -q "\"event\":\"delete\".*\"instance\":\"$N1\"" "$T/audit-after.jsonl"
"$B/vtpmctl" --admin "$T/nowhere.sock" metrics >/dev/null 2>&1
check_eq "vtpmctl metrics without vtpmd: exit 2" "$?" 2
t_done
