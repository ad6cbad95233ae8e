#!/usr/bin/env bash
# Side-by-side training (and sampling) throughput: ddpm against the PyTorch reference
# (tools/torch_bench.py, Debian's python3-torch), same model, width, batch and threads,
# run alternately REPS times each; prints every figure, the medians and the ratio.
#
#   bench/compare.sh [--reps R] [--threads N] [--models "denoiser time class"] [--sample]
#
# Installs python3-torch if it is missing (not done by CI: this is a benchmark, not a test).
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are unset here so OpenBLAS picks its own kernel
# for this CPU; the kernel that ran is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
reps=3
threads=2
models="denoiser time class"
sample=0
while [ $# -gt 0 ]; do
    case "$1" in
        --reps) reps=$2; shift 2 ;;
        --threads) threads=$2; shift 2 ;;
        --models) models=$2; shift 2 ;;
        --sample) sample=1; shift ;;
        *) echo "usage: $0 [--reps R] [--threads N] [--models \"denoiser time class\"] [--sample]" >&2; exit 2 ;;
    esac
done
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
    $sudo_cmd apt-get install -y -qq python3-torch >/dev/null
fi
[ -x ./ddpm ] || make -s ddpm

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
./ddpm bench --model time --width 4 --batch 2 --steps 1 --warmup 0 | grep '^BLAS'
/usr/bin/python3 -c 'import torch; print("PyTorch", torch.__version__, "oneDNN", torch.backends.mkldnn.is_available())'
printf '%-9s %-6s %-5s %-6s %-22s %-22s %-7s %s\n' model width batch mode "ddpm img/s (median)" "PyTorch img/s (median)" ratio "peak RSS ddpm / PyTorch (MiB)"
for model in $models; do
    if [ "$model" = denoiser ]; then width=128; batch=256; steps=3; else width=64; batch=128; steps=5; fi
    for mode in train $([ $sample = 1 ] && [ $model != denoiser ] && echo sample); do
        extra=""; [ "$mode" = sample ] && extra="--sample --sample-steps 10" && steps=3
        ours=(); theirs=(); rss_o=0; rss_t=0
        for r in $(seq "$reps"); do
            # ddpm counts the repeats of --sample with --repeats (its --steps is the sampler's K)
            reps_o="--steps $steps"; [ "$mode" = sample ] && reps_o="--repeats $steps"
            out_o=$(./ddpm bench --model "$model" --width $width --batch $batch --threads "$threads" $reps_o --warmup 1 $extra)
            out_t=$(/usr/bin/python3 tools/torch_bench.py --model "$model" --width $width --batch $batch --threads "$threads" --steps $steps --warmup 1 $extra)
            o=$(tail -1 <<< "$out_o" | awk '{print $1}')
            t=$(tail -1 <<< "$out_t" | awk '{print $1}')
            rss_o=$(grep -o 'peak RSS [0-9]*' <<< "$out_o" | tail -1 | awk '{print $3}')
            rss_t=$(grep -o 'peak RSS [0-9]*' <<< "$out_t" | tail -1 | awk '{print $3}')
            echo "  $model $mode rep $r: ddpm $o img/s, PyTorch $t img/s" >&2
            ours+=("$o"); theirs+=("$t")
        done
        mo=$(printf '%s\n' "${ours[@]}" | median)
        mt=$(printf '%s\n' "${theirs[@]}" | median)
        ratio=$(awk -v a="$mo" -v b="$mt" 'BEGIN {printf "%.2fx", a / b}')
        printf '%-9s %-6s %-5s %-6s %-22s %-22s %-7s %s\n' "$model" $width $batch $mode "$mo" "$mt" "$ratio" "$rss_o / $rss_t"
    done
done
