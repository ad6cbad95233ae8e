#!/usr/bin/env bash
# Runs each libFuzzer harness BUILD/fuzz/fuzz_NAME on its seed corpus fuzz/corpus/NAME (with
# the dictionary fuzz/NAME.dict where there is one), one after another in this process, for
# $FUZZ_SECONDS seconds each, or for $FUZZ_RUNS inputs when that is set above 0. New
# interesting inputs go to BUILD/corpus/NAME (not committed); a crash, leak or sanitizer
# error leaves its input in BUILD/ and fails the run. Prints the executions of each harness.
# Usage: fuzz/run.sh BUILD NAME...
set -euo pipefail
build=$1
shift
seconds=${FUZZ_SECONDS:-60}
runs=${FUZZ_RUNS:-0}
status=0
for name in "$@"; do
    work="$build/corpus/$name"
    mkdir -p "$work"
    log="$build/fuzz_$name.log"
    if [ "$runs" -gt 0 ]; then limit="-runs=$runs"; else limit="-max_total_time=$seconds"; fi
    dict=()
    if [ -f "fuzz/$name.dict" ]; then dict=("-dict=fuzz/$name.dict"); fi
    echo "=== fuzz_$name ($limit)"
    rc=0
    "$build/fuzz/fuzz_$name" "$work" "fuzz/corpus/$name" "$limit" "${dict[@]}" -max_len=4096 \
        -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$build/crash-$name-" \
        >"$log" 2>&1 || rc=$?
    execs=$(grep -E '^stat::number_of_executed_units' "$log" | grep -oE '[0-9]+$' || echo "?")
    if [ "$rc" -ne 0 ]; then
        tail -40 "$log"
        echo "fuzz_$name: FAILED after $execs executions (exit $rc); see $log"
        status=1
    else
        echo "fuzz_$name: $execs executions, no crash, leak or sanitizer error"
    fi
done
exit $status
