#!/usr/bin/env bash
# Data-parallel throughput on this machine, and a projection to clusters.
#   1. The time model (D 64, global batch 128): 2 processes x 1 thread under mpirun against
#      1 process x 2 threads, alternately REPS times each; medians, their ratio, and the
#      communication the MPI runs measured (gradients, small sums) per step.
#   2. One process x 2 threads for each of the three models (SPEC width and batch): the step
#      time and gradient volume, from which a ring all-reduce over P machines on 10 and
#      100 Gbit/s links is projected (docs/DISTRIBUTED.md explains the model).
#
#   bench/distributed.sh [--reps R]
#
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset here so OpenBLAS picks its own kernel for this
# CPU; the kernel that ran is printed. Needs an MPI build (mpirun).
set -euo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
reps=3
[ "${1:-}" = --reps ] && reps=$2
BIN=${DDPM_BIN:-./ddpm}
MPIRUN=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "== throughput: time model, D 64, global batch 128, 5 timed steps per run, $reps runs each"
for r in $(seq "$reps"); do
    "$BIN" bench --model time --threads 2 --steps 5 >"$tmp/one-$r.log" 2>&1
    "${MPIRUN[@]}" "$BIN" bench --model time --threads 1 --steps 5 >"$tmp/two-$r.log" 2>&1
    printf "run %d: 1 x 2 threads %s | 2 processes x 1 thread %s\n" "$r" \
        "$(tail -1 "$tmp/one-$r.log")" "$(tail -1 "$tmp/two-$r.log")"
    grep '^communication' "$tmp/two-$r.log" | sed 's/^/       /'
done
grep '^BLAS' "$tmp/one-1.log"
one=$(for r in $(seq "$reps"); do tail -1 "$tmp/one-$r.log" | awk '{ print $1 }'; done | median)
two=$(for r in $(seq "$reps"); do tail -1 "$tmp/two-$r.log" | awk '{ print $1 }'; done | median)
calls=$(grep -h '^communication' "$tmp"/two-*.log | head -1 | sed 's/.* in \([0-9]*\) small sums.*/\1/')
awk -v a="$one" -v b="$two" 'BEGIN { printf "median: 1 x 2 threads %.1f img/s, 2 x 1 thread %.1f img/s: ratio %.3f\n", a, b, b / a }'

echo
echo "== per-step compute and gradient volume, 1 process x 2 threads"
for m in denoiser time class; do
    "$BIN" bench --model "$m" --threads 2 --steps 3 >"$tmp/$m.log" 2>&1
    params=$(grep -o '[0-9]* parameters' "$tmp/$m.log" | awk '{ print $1 }')
    step=$(grep -o 'median step [0-9.]*' "$tmp/$m.log" | awk '{ print $3 }')
    batch=$(grep -o 'batch [0-9]*' "$tmp/$m.log" | head -1 | awk '{ print $2 }')
    echo "$m $params $step $batch" >>"$tmp/models"
    printf "%-8s %9d parameters (%.2f MB of float32 gradients), batch %d, %.3f s per step\n" \
        "$m" "$params" "$(echo "$params * 4 / 1000000" | bc -l)" "$batch" "$step"
done

echo
echo "== projection: ring all-reduce of the gradients (2 (P-1)/P x bytes / link), one message"
echo "   latency a = 20 us per hop, plus $calls small sums per step by recursive doubling"
echo "   (log2 P hops each); each machine computes the step as measured above"
echo
printf "| model | machines | link | all-reduce ms | small sums ms | same batch per machine: efficiency, speed-up | SPEC batch split: speed-up |\n"
printf "|---|---|---|---|---|---|---|\n"
while read -r m params step batch; do
    for P in 2 8 64; do
        for G in 10 100; do
            awk -v m="$m" -v n="$params" -v t="$step" -v P="$P" -v G="$G" -v c="$calls" 'BEGIN {
                a = 20e-6; bytes = 4 * n; bw = G * 1e9 / 8; lg = log(P) / log(2)
                ring = 2 * (P - 1) / P * bytes / bw + 2 * (P - 1) * a
                small = c * lg * a
                comm = ring + small
                eff = t / (t + comm)
                strong = t / (t / P + comm)
                printf "| %s | %d | %d Gbit/s | %.1f | %.1f | %.0f%%, %.1fx | %.1fx |\n", m, P, G, 1e3 * ring, 1e3 * small, 100 * eff, P * eff, strong
            }'
        done
    done
done <"$tmp/models"
