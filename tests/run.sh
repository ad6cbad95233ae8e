#!/usr/bin/env bash
# Runs each test program given as an argument, adds up cmocka's per-program counts and
# prints one closing line "N passed, N failed". A program that crashes or exits non-zero
# without a cmocka summary counts as one failure.
set -u
passed=0
failed=0
for t in "$@"; do
    echo "=== $t"
    log=$(mktemp)
    "$t" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
    f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$log" | tail -1 | grep -oE '[0-9]+' | head -1)
    p=${p:-0}
    f=${f:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "!!! $t exited with status $rc"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    rm -f "$log"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
