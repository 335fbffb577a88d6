#!/usr/bin/env bash
# tests/fuzz/replay.sh: runs every harness's replay build over its seeds and
# saved regressions (part of `make check`). Prints "fuzz-replay: N passed, M failed".
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$TOP/build}
pass=0
fail=0
for h in "$TOP"/tests/fuzz/fuzz_*.c; do
	n=$(basename "$h" .c)
	short=${n#fuzz_}
	bin=$B/fuzz-replay/$n
	if [ ! -x "$bin" ]; then
		echo "FAIL - $n: replay binary missing"
		fail=$((fail + 1))
		continue
	fi
	if out=$("$bin" "$TOP/tests/fuzz/corpus/$short" "$TOP/tests/fuzz/regress/$short" 2>&1); then
		echo "ok   - $out"
		pass=$((pass + 1))
	else
		echo "FAIL - $n: $out" | tail -n 20
		fail=$((fail + 1))
	fi
done
echo "fuzz-replay: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
