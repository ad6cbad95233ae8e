#!/usr/bin/env bash
# Writes tests/data/golden/*.csv: the loss.csv of the first steps of the SPEC's three models
# (and one run with every architecture option) at 2 threads, the runs that tests/test_golden.c
# repeats and compares byte for byte. Run it only on a commit whose results are the reference
# (it was run on 5f41742, before the redesign of issue 23): a change that alters these files
# changes what training computes.
#   tools/make_golden.sh [BIN]     (default ./ddpm; MNIST from $DDPM_DATA or ../shared/data/mnist)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-./ddpm}
data=${DDPM_DATA:-../shared/data/mnist}
out=tests/data/golden
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
while read -r name args; do
    # shellcheck disable=SC2086
    "$bin" train $args --epochs 1 --figure-epochs 9 --threads 2 --seed 1 --no-progress \
        --data "$data" --out "$tmp/$name" >/dev/null
    cp "$tmp/$name/loss.csv" "$out/$name.csv"
    echo "$out/$name.csv: $(($(wc -l <"$out/$name.csv") - 1)) steps"
done < tests/data/golden/runs.txt

# A training state of the old format (attention tensors attn7.* / attn14.*, EMA, Adam moments)
# stopped after step 5 of 8, and the loss.csv of the same run uninterrupted: tests/test_golden.c
# resumes the state with today's binary and expects that loss.csv, byte for byte.
args=(--model class --width 4 --batch 8 --subset 32 --epochs 2 --T 20 --threads 1 --no-progress
      --attention 7,14 --ema 0.9 --data "$data")
"$bin" train "${args[@]}" --out "$tmp/full" >/dev/null
"$bin" train "${args[@]}" --out "$tmp/cut" --fault-stop-at 5 >/dev/null 2>&1 &
pid=$!
while [ "$(ps -o stat= -p "$pid" | cut -c1)" != T ]; do sleep 0.1; done
kill -TERM "$pid"
kill -CONT "$pid"
wait "$pid" || true
cp "$tmp/cut/checkpoint.safetensors" "$out/old-state.safetensors"
cp "$tmp/full/loss.csv" "$out/old-state-full.csv"
echo "$out/old-state.safetensors: stopped after step 5 of $(($(wc -l <"$out/old-state-full.csv") - 1))"
