#!/usr/bin/env bash
# Equal-budget experiments beyond the SPEC (docs/EXPERIMENTS.md): every variant is trained
# with the same width, batch, training images, epochs, learning-rate schedule and seed, then
# measured with `ddpm eval` (the same N samples, sampling seed and reference sets).
#
#   bench/experiments.sh [--out DIR] [--data DIR] [--width D] [--batch B] [--subset N]
#                        [--epochs E] [--n N] [--threads T] [--only "name ..."]
#
# Defaults: D 32, batch 64, the first 30,000 training images, 3 epochs (lr 1e-3 -> 1e-4),
# 500 samples per column: about 80 min on 2 cores. Every step is skipped when its output
# exists and a stopped training run resumes, so the script can be run again after a stop.
# It ends by writing OUT/table.md (the tables of docs/EXPERIMENTS.md) and OUT/grids/.
# A benchmark, not a test: CI does not run it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=runs/experiments
data=${DDPM_DATA:-data/mnist}
width=32 batch=64 subset=30000 epochs=3 n=500 threads=2 only=""
usage() { sed -n '6,7p' "$0" | sed 's/^#  */usage: /; 2s/^usage: /       /' >&2; exit 2; }
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --out) out=$2 ;; --data) data=$2 ;; --width) width=$2 ;; --batch) batch=$2 ;;
        --subset) subset=$2 ;; --epochs) epochs=$2 ;; --n) n=$2 ;; --threads) threads=$2 ;;
        --only) only=$2 ;;
        *) usage ;;
    esac
    shift 2
done
ddpm=${DDPM_BIN:-./ddpm}   # DDPM_BIN: a copy of the binary that rebuilds during the run do not touch
[ -n "${DDPM_BIN:-}" ] || [ -x ./ddpm ] || make -s ddpm
[ -x "$ddpm" ] || { echo "experiments.sh: $ddpm is not an executable ddpm" >&2; exit 2; }
mkdir -p "$out/grids"
budget=(--width "$width" --batch "$batch" --subset "$subset" --epochs "$epochs" --seed 1
        --threads "$threads" --data "$data" --no-progress --figure-epochs "$epochs")

# name, model, options beyond the budget. EMA does not change training, so the "ema" run's
# raw weights (--no-ema) are the SPEC's model without EMA: one run gives both columns.
variants=(
    "ema|time|--ema 0.995"
    "class|class|--ema 0.995"
    "cosine|time|--schedule cosine"
    "sinusoidal|time|--time-embedding 32"
    "residual|time|--residual"
    "residual-attention|time|--residual --attention 7"
)
wanted() { [ -z "$only" ] || [[ " $only " == *" $1 "* ]]; }

train() { # name model options...
    local name=$1 model=$2; shift 2
    local dir=$out/$name
    if [ -f "$dir/model.safetensors" ] && [ -f "$dir/metrics.json" ]; then return; fi
    echo "== train $name ($model $*)" >&2
    if [ -f "$dir/checkpoint.safetensors" ]; then
        "$ddpm" train --resume "$dir" --threads "$threads" --data "$data" --no-progress
    else
        rm -rf "$dir"
        "$ddpm" train --model "$model" "${budget[@]}" "$@" --out "$dir"
    fi
}

evaluate() { # json-name checkpoint eval-options...
    local json=$out/eval/$1.json ckpt=$2; shift 2
    [ -f "$json" ] && return
    mkdir -p "$out/eval"
    echo "== eval $(basename "$json" .json)" >&2
    "$ddpm" eval --ckpt "$ckpt" --n "$n" --threads "$threads" --data "$data" "$@" \
        --json "$json.tmp" > "$out/eval/$(basename "$json" .json).txt"
    mv "$json.tmp" "$json"
}

grid() { # png-name checkpoint sample-options...
    local png=$out/grids/$1.png ckpt=$2; shift 2
    [ -f "$png" ] || "$ddpm" sample --ckpt "$ckpt" --threads "$threads" --seed 1 --out "$png" "$@" >/dev/null
}

for v in "${variants[@]}"; do
    IFS='|' read -r name model opts <<< "$v"
    wanted "$name" || continue
    # shellcheck disable=SC2086
    train "$name" "$model" $opts
    ck=$out/$name/model.safetensors
    case $name in
    ema)
        evaluate spec "$ck" --no-ema
        evaluate ema "$ck"
        evaluate spec-ddim50 "$ck" --no-ema --sampler ddim --steps 50
        evaluate spec-ddim50-eta1 "$ck" --no-ema --sampler ddim --steps 50 --eta 1
        evaluate spec-ddim20 "$ck" --no-ema --sampler ddim --steps 20
        evaluate ema-ddim50 "$ck" --sampler ddim --steps 50
        evaluate ema-ddim50-eta1 "$ck" --sampler ddim --steps 50 --eta 1
        evaluate ema-ddim20 "$ck" --sampler ddim --steps 20
        grid spec "$ck" --no-ema --n 40
        grid ema "$ck" --n 40
        grid ema-ddim50 "$ck" --n 40 --sampler ddim --steps 50 ;;
    class)
        evaluate class-spec-g5 "$ck" --no-ema --guidance 5
        evaluate class-ema "$ck" --guidance 0,1,2,3,5
        evaluate class-ema-g2-ddim50 "$ck" --guidance 2 --sampler ddim --steps 50 --eta 1
        grid class-spec-g5 "$ck" --no-ema --guidance 5
        grid class-ema-g2 "$ck" --guidance 2 ;;
    *)
        evaluate "$name" "$ck"
        grid "$name" "$ck" --n 40 ;;
    esac
done

# The tables: one row per evaluated column, from the eval JSON and the runs' metrics.json.
python3 - "$out" "$width" "$batch" "$subset" "$epochs" "$n" > "$out/table.md" <<'EOF'
import json, os, sys
out, width, batch, subset, epochs, n = sys.argv[1:]
def load(p):
    return json.load(open(p)) if os.path.exists(p) else None
metrics = {}
def run_metrics(run):  # (last-100 loss of the last epoch, training seconds), read once per run
    if run not in metrics:
        m = load(os.path.join(out, run, "metrics.json"))
        metrics[run] = (m["epochs"][-1]["mean_loss_last100"], m["train_seconds"]) if m else (None, None)
    return metrics[run]
def fmt(x, f):
    return "" if x is None else f % x
print(f"Budget: D {width}, batch {batch}, first {subset} training images, {epochs} epochs, seed 1; "
      f"{n} samples per row (FID against the 10,000 test images).\n")
print("| variant | run | sampler | weights | guidance | FID | precision | recall | accuracy "
      "| last-100 loss | train s | sampling s |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
rows = [("SPEC UNet (linear, scalar t)", "ema", "spec"), ("SPEC UNet + EMA 0.995", "ema", "ema"),
        ("DDIM 50, eta 0", "ema", "spec-ddim50"), ("DDIM 50, eta 1", "ema", "spec-ddim50-eta1"),
        ("DDIM 20, eta 0", "ema", "spec-ddim20"),
        ("EMA + DDIM 50, eta 0", "ema", "ema-ddim50"), ("EMA + DDIM 50, eta 1", "ema", "ema-ddim50-eta1"),
        ("EMA + DDIM 20, eta 0", "ema", "ema-ddim20"),
        ("cosine schedule", "cosine", "cosine"), ("sinusoidal t, E 32", "sinusoidal", "sinusoidal"),
        ("residual blocks", "residual", "residual"),
        ("residual + attention 7x7", "residual-attention", "residual-attention"),
        ("class, SPEC (no EMA)", "class", "class-spec-g5"), ("class + EMA 0.995", "class", "class-ema"),
        ("class + EMA, DDIM 50, eta 1", "class", "class-ema-g2-ddim50")]
for label, run, ev in rows:
    d = load(os.path.join(out, "eval", ev + ".json"))
    if not d:
        continue
    for r in d["results"]:
        g = r.get("guidance")
        print(f"| {label} | {run} | {d.get('sampler_description', d['sampler'])} | {'EMA' if d['ema_weights'] else 'raw'} "
              f"| {fmt(g, '%g')} | {r['fid']:.1f} | {r['precision']:.3f} | {r['recall']:.3f} "
              f"| {'' if r['accuracy'] is None else '%.1f%%' % (100 * r['accuracy'])} "
              f"| {fmt(run_metrics(run)[0], '%.4f')} | {fmt(run_metrics(run)[1], '%.0f')} | {r['sampling_seconds']:.1f} |")
floor = load(os.path.join(out, "eval", "spec.json"))
if floor:
    f = floor["real_floor"]
    print(f"\nReal-data floor ({f['n']} training images): FID {f['fid']:.1f}, precision "
          f"{f['precision']:.3f}, recall {f['recall']:.3f}.")
EOF
echo "wrote $out/table.md" >&2
