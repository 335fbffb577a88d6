#!/usr/bin/env bash
# tests/run-tests.sh: runs test programs and scripts, each of which ends its
# output with "NAME: N passed, M failed"; prints the totals in the same form
# and fails if any test failed or any program crashed.
set -u
total_pass=0
total_fail=0
broken=()
for t in "$@"; do
	echo "=== $t"
	out=$(mktemp)
	if [[ $t == *.sh ]]; then
		timeout "${TEST_TIMEOUT:-300}" bash "$t" 2>&1 | tee "$out"
	else
		timeout "${TEST_TIMEOUT:-300}" "$t" 2>&1 | tee "$out"
	fi
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	rm -f "$out"
	if [ -z "$line" ]; then
		echo "!!! $t printed no result line (exit $rc)"
		broken+=("$t")
		total_fail=$((total_fail + 1))
		continue
	fi
	p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\1/')
	f=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed, ([0-9]+) failed.*/\2/')
	total_pass=$((total_pass + p))
	total_fail=$((total_fail + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "!!! $t exited $rc"
		broken+=("$t")
		total_fail=$((total_fail + 1))
	fi
done
[ ${#broken[@]} -eq 0 ] || echo "broken: ${broken[*]}"
echo "total: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
