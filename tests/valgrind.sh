#!/usr/bin/env bash
# Short training runs of the given ddpm binary under valgrind memcheck: a run that an injected
# NaN stops after its first checkpoint, then its resumption to the end. Both must exit as
# expected with no memcheck error (invalid access, uninitialised value, definite or indirect
# leak). Usage: tests/valgrind.sh BIN   (MNIST from $DDPM_DATA, else ../shared/data/mnist)
set -u
bin=$1
data=${DDPM_DATA:-../shared/data/mnist}
dir=$(mktemp -d /tmp/ddpm-valgrind-XXXXXX)
trap 'rm -rf "$dir"' EXIT
vg=(valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes --num-callers=30
    --suppressions=tests/valgrind.supp)
args=(--model time --width 4 --subset 32 --batch 16 --T 5 --epochs 2 --threads 2 --no-progress
      --data "$data" --out "$dir/run")
status=0
run() { # expected-status description command...
    local want=$1 what=$2
    shift 2
    echo "=== valgrind: $what"
    "${vg[@]}" "$@" >"$dir/log" 2>&1
    local rc=$?
    grep -E "ERROR SUMMARY|definitely lost|indirectly lost|ddpm train:" "$dir/log"
    if [ "$rc" -ne "$want" ]; then
        tail -60 "$dir/log"
        echo "valgrind: $what: exit $rc, expected $want"
        status=1
    fi
}
run 1 "training until a NaN at step 3 (after the epoch-1 checkpoint)" "$bin" train "${args[@]}" --fault-nan-at 3
run 0 "resuming it to the end" "$bin" train --resume "$dir/run"
if [ "$status" -eq 0 ]; then echo "valgrind: clean"; fi
exit $status
