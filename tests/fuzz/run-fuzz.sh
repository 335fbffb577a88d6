#!/usr/bin/env bash
# tests/fuzz/run-fuzz.sh SECONDS BIN...: fuzzes each harness for SECONDS
# from a scratch copy of its seed corpus (the committed corpus is not
# changed), prints executions per harness; a crash fails the run and its
# input is kept in build/fuzz/crashes/ (copy it to tests/fuzz/regress/NAME/).
set -u
secs=$1
shift
TOP=$(cd "$(dirname "$0")/../.." && pwd)
pass=0
fail=0
mkdir -p "$TOP/build/fuzz/crashes"
for bin in "$@"; do
	n=$(basename "$bin")
	short=${n#fuzz_}
	work=$(mktemp -d)
	cp -r "$TOP/tests/fuzz/corpus/$short/." "$work/" 2>/dev/null
	[ -d "$TOP/tests/fuzz/regress/$short" ] && cp -r "$TOP/tests/fuzz/regress/$short/." "$work/"
	log=$TOP/build/fuzz/$n.log
	if "$bin" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 \
		-artifact_prefix="$TOP/build/fuzz/crashes/$n-" "$work" >"$log" 2>&1; then
		execs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
		echo "ok   - $n: ${execs:-?} executions in ${secs}s, corpus $(ls "$work" | wc -l) inputs"
		pass=$((pass + 1))
	else
		echo "FAIL - $n: crash or error, see $log and build/fuzz/crashes/"
		tail -n 30 "$log"
		fail=$((fail + 1))
	fi
	rm -rf "$work"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
