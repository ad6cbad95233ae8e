#!/usr/bin/env bash
# FID against network passes (NFE) for every sampler: the table of docs/EXPERIMENTS.md.
# Each cell is one `ddpm eval --ckpt` of N samples with one sampler, step count and seed; its
# JSON goes to OUT/<label>-<sampler>-<spacing>-<nfe>-s<seed>.json and a cell already there is
# skipped, so the grid (hours on 2 cores) can be stopped and continued. At the end (and with
# --summary alone) it prints, per sampler and NFE, the FID mean and range over the seeds,
# the accuracy (class model) and the seconds per 1000 images.
#
#   bench/fid_nfe.sh --ckpt FILE --label NAME [--guidance G] [--out DIR] [--n N]
#                    [--seeds "1 2 3 4"] [--nfe "5 10 15 20 25 50 100"]
#                    [--samplers "dpmpp2m dpmpp2m-sde dpmpp3m ddim"] [--spacing logsnr]
#                    [--ddpm] [--threads T] [--summary]
#
# --ddpm adds the SPEC's sampler (all T steps) as the reference row. The environment's
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are left as they are: this measures quality, and its
# seconds are only for comparing the rows of one run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DDPM_BIN:-./ddpm}
ckpt="" label="" guidance="" out=experiments/fid-nfe n=2000 seeds="1 2 3 4"
nfes="5 10 15 20 25 50 100" samplers="dpmpp2m dpmpp2m-sde dpmpp3m ddim" spacing=logsnr
ddpm=0 threads=2 summary_only=0
while [ $# -gt 0 ]; do
    case "$1" in
        --ckpt) ckpt=$2; shift 2 ;;
        --label) label=$2; shift 2 ;;
        --guidance) guidance=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --n) n=$2; shift 2 ;;
        --seeds) seeds=$2; shift 2 ;;
        --nfe) nfes=$2; shift 2 ;;
        --samplers) samplers=$2; shift 2 ;;
        --spacing) spacing=$2; shift 2 ;;
        --ddpm) ddpm=1; shift ;;
        --threads) threads=$2; shift 2 ;;
        --summary) summary_only=1; shift ;;
        *) echo "fid_nfe.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
    esac
done
[ -n "$label" ] || { echo "fid_nfe.sh: --label is required" >&2; exit 2; }
mkdir -p "$out"

cell() { # SAMPLER SPACING NFE SEED
    local f="$out/$label-$1-$2-$3-s$4.json" args=()
    [ -e "$f" ] && return 0
    [ -n "$guidance" ] && args+=(--guidance "$guidance")
    if [ "$1" = ddpm ]; then args+=(--sampler ddpm)
    else args+=(--sampler "$1" --steps "$3" --spacing "$2"); fi
    echo "== $label $1 $2 NFE $3 seed $4 ($(date +%H:%M))"
    "$BIN" eval --ckpt "$ckpt" --n "$n" --seed "$4" --threads "$threads" "${args[@]}" \
        --json "$f" | tail -3
}

if [ "$summary_only" -eq 0 ]; then
    [ -n "$ckpt" ] || { echo "fid_nfe.sh: --ckpt is required" >&2; exit 2; }
    "$BIN" eval --judge-only >/dev/null
    for seed in $seeds; do
        for nfe in $nfes; do
            for s in $samplers; do cell "$s" "$spacing" "$nfe" "$seed"; done
        done
        [ "$ddpm" -eq 1 ] && cell ddpm all 300 "$seed"
    done
fi

# the table: one row per sampler and NFE over the seeds found
echo
echo "| sampler | spacing | NFE | FID mean | FID range | accuracy | s / 1000 images | seeds |"
echo "|---|---|---|---|---|---|---|---|"
for f in "$out/$label"-*.json; do
    [ -e "$f" ] || continue
    b=$(basename "$f" .json)
    rest=${b#"$label"-}
    jq -r --arg key "${rest%-s*}" --arg n "$n" \
        '[$key, (.results[0].fid), (.results[0].accuracy // -1), (.results[0].sampling_seconds), (.results[0].n)] | @tsv' "$f"
done | sort -t$'\t' -k1,1 | awk -F'\t' '
    { k = $1; n[k]++; s[k] += $2; if (!(k in lo) || $2 < lo[k]) lo[k] = $2; if (!(k in hi) || $2 > hi[k]) hi[k] = $2
      acc[k] += $3; sec[k] += 1000 * $4 / $5 }
    END { for (k in n) {
            m = split(k, p, "-"); nfe = p[m]; sp = p[m - 1]; name = p[1]; for (i = 2; i < m - 1; i++) name = name "-" p[i]
            printf "| %s | %s | %s | %.3f | %.3f-%.3f | %s | %.0f | %d |\n", name, sp, nfe, s[k] / n[k], lo[k], hi[k],
                   acc[k] / n[k] < 0 ? "-" : sprintf("%.2f%%", 100 * acc[k] / n[k]), sec[k] / n[k], n[k] } }' |
    sort -t'|' -k2,2 -k4,4n
