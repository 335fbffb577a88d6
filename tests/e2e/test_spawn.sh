#!/usr/bin/env bash
# Both ways of starting workers: from the zygote (default; workers share
# its initialised pages) and by fork+exec of vtpmd --worker per instance
# (--worker-spawn exec). Each serves a TPM whose NV survives a restart, and
# a worker never runs as root.
source "$(dirname "$0")/lib.sh"
t_init spawn
for mode in zygote exec; do
	VTPMD_ARGS=(--worker-spawn "$mode")
	rm -rf "$T/state"
	start_vtpmd
	start_guest g aa 01
	nv_counter_define g
	nv_counter_incr g && nv_counter_incr g
	check_eq "$mode: counter after two increments" "$(nv_counter_read g)" 2
	pid=$(vtpmctl --json show guest-aaaaaaaaaaaa | python3 -c 'import json,sys; print(json.load(sys.stdin)["instance"]["worker_pid"])')
	check "$mode: the worker is a live process" test -d "/proc/$pid"
	check_ne "$mode: the worker does not run as root" "$(stat -c %u /proc/$pid)" 0
	check "$mode: the worker holds no fd of the store" \
		fails_ grep -q "$T/state" <<<"$(ls -l /proc/$pid/fd/ 2>&1)"
	check_eq "$mode: the worker holds fds 0-3 and its guest's connection only" \
		"$(ls /proc/$pid/fd | sort -n | tr '\n' ' ')" "0 1 2 3 4 "
	cmd=$(tr '\0' ' ' </proc/$pid/cmdline)
	if [ "$mode" = exec ]; then
		check "$mode: the worker was exec'd as vtpmd --worker" grep -q -- '--worker ' <<<"$cmd"
	else
		check "$mode: the worker was forked from the zygote" grep -q -- '--worker-zygote' <<<"$cmd"
	fi
	stop_guest g
	stop_vtpmd
	start_vtpmd
	start_guest g aa 02
	check_eq "$mode: counter after a restart" "$(nv_counter_read g)" 2
	stop_guest g
	check "$mode: vtpmd stops cleanly" stop_vtpmd
done
t_done
