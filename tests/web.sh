#!/usr/bin/env bash
# The sampler's web page (make web) in a real browser. web/ is served from 127.0.0.1 by
# Python's static server and opened in headless Chromium (tests/web_browser.js, over the
# DevTools protocol) at a laptop and at a phone width with number=2026, guidance 2 and a
# fixed seed; the page must draw, not scroll sideways and keep its console (and its
# worker's) silent. The canvas, read back, is written as IDX and `ddpm eval` must judge at
# least 3 of the 4 digits as requested. The same draw by the native CLI (`ddpm sample
# --text 2026`, same seed, one thread) gives the time to compare with the page's and must
# give the same images up to rounding. A negative control (a missing weights file) must be
# caught by the same console check. Screenshots are kept in WORKDIR.
#
#   tests/web.sh [WORKDIR]   (DDPM_BIN, DDPM_DATA as for the other tests; DDPM_WEB_MODEL:
#                             the weights when web/model.safetensors is absent; WEB_SGEMM:
#                             the GEMM test built by make test-web, run first)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DDPM_BIN:-./ddpm}
export DDPM_DATA=${DDPM_DATA:-../shared/data/mnist}
WORK=${1:-$(mktemp -d /tmp/ddpm-web-XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
source tests/browser_lib.sh
NUMBER=2026
GUIDANCE=2
SEED=7
REPEAT=3 # ddpm eval takes 10 images or more: the 4 are written 3 times (same share right)

[ -e web/ddpm_web.js ] || { echo "web: web/ddpm_web.js is missing: run make web"; exit 1; }
# The GEMM that stands in for OpenBLAS, first (make test-web builds it).
if [ -n "${WEB_SGEMM:-}" ]; then
    node "$WEB_SGEMM" && r=yes || r=no
    expect "web GEMM matches a double-precision loop" "$r" yes
fi
# The site: web/ itself when it has its model, else a copy of it with DDPM_WEB_MODEL.
MODEL=web/model.safetensors
SITE=web
if [ ! -e "$MODEL" ]; then
    MODEL=${DDPM_WEB_MODEL:-../shared/models/class-d64-e20-pytorch-reference.safetensors}
    [ -e "$MODEL" ] || { echo "web: no weights (web/model.safetensors or DDPM_WEB_MODEL)"; exit 1; }
    rm -rf "$WORK/site"
    cp -r web "$WORK/site"
    cp "$MODEL" "$WORK/site/model.safetensors"
    SITE=$WORK/site
fi
echo "web: serving $SITE with the weights $MODEL"

python3 -u -m http.server --bind 127.0.0.1 --directory "$SITE" 0 > "$WORK/server.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true' EXIT
PORT=
for _ in $(seq 100); do
    PORT=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
    [ -n "$PORT" ] && break
    sleep 0.1
done
[ -n "$PORT" ] || { cat "$WORK/server.log"; echo "FAIL: the static server did not start"; exit 1; }
URL="http://127.0.0.1:$PORT/index.html"

drive() { # drive URL WIDTHS OUTDIR -> the driver's lines
    mkdir -p "$3"
    node tests/web_browser.js "$CHROME" "$1" "$3" "$2" "$REPEAT" \
        -- "${CHROME_FLAGS[@]}"
}

# Negative control: weights that are not there must show up as console errors.
bad=$(drive "$URL?model=missing.safetensors&autodraw=1" 390 "$WORK/bad" || true)
n_bad=$(sed -n 's/.*errors=\([0-9]*\).*/\1/p' <<< "$bad")
[ "${n_bad:-0}" -gt 0 ] && r=yes || r="errors=${n_bad:-?}"
expect "negative control (missing weights) is caught" "$r" yes

# The page, at both widths.
out=$(drive "$URL?number=$NUMBER&guidance=$GUIDANCE&seed=$SEED&autodraw=1" 1280,390 "$WORK")
echo "$out"
for w in 1280 390; do
    line=$(grep "^width=$w " <<< "$out" || true)
    expect "width $w: drawn, no sideways scrolling, no console errors" \
        "$(sed 's/ seconds_per_image.*//' <<< "$line")" "width=$w drawn=1 overflow=0 errors=0"
    size=$(stat -c %s "$WORK/web-$w.png" 2>/dev/null || echo 0)
    [ "$size" -gt 10000 ] && r=yes || r="size $size"
    expect "screenshot $WORK/web-$w.png" "$r" yes
done
console=$(grep -c 'CONSOLE' "$WORK/console.log" || true)
expect "browser log has no console lines" "$console" 0

# The digits judged.
if "$BIN" eval --samples "$WORK/page-images.idx" --labels "$WORK/page-labels.idx" \
        --json "$WORK/eval.json" > "$WORK/eval.log" 2>&1; then
    right=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['results'][0]; \
print(round(r['accuracy'] * 4))" "$WORK/eval.json")
    [ "$right" -ge 3 ] && r=yes || r="$right of 4"
    expect "ddpm eval judges at least 3 of the 4 digits of $NUMBER as requested ($right)" "$r" yes
else
    tail -3 "$WORK/eval.log"
    expect "ddpm eval of the page's digits" failed ok
fi

# The native CLI on the same draw: its time, and the same images up to rounding.
t0=$(date +%s.%N)
"$BIN" sample --ckpt "$MODEL" --text "$NUMBER" --guidance "$GUIDANCE" --seed "$SEED" \
    --sampler dpmpp2m-sde --steps 20 --threads 1 --out "$WORK/native.png" --idx "$WORK/native.idx" \
    > "$WORK/native.log" 2>&1
t1=$(date +%s.%N)
diff=$(python3 -c "import sys; a=open(sys.argv[1],'rb').read()[16:]; b=open(sys.argv[2],'rb').read()[16:16+len(a)]; \
d=[abs(x-y) for x,y in zip(a,b)]; print('%d %.3f' % (max(d), sum(d)/len(d)))" "$WORK/native.idx" "$WORK/page-images.idx")
read -r dmax dmean <<< "$diff"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 1 else 1)" "$dmean" && r=yes || r="mean $dmean"
expect "page and native CLI draw the same images (largest byte difference $dmax, mean $dmean)" "$r" yes
page_s=$(python3 -c "import json,sys; print('%.3f' % json.load(open(sys.argv[1]))['secondsPerImage'])" "$WORK/page.json")
native_s=$(python3 -c "import sys; print('%.3f' % ((float(sys.argv[2]) - float(sys.argv[1])) / int(sys.argv[3])))" "$t0" "$t1" "${#NUMBER}")
echo "time per image: page ${page_s} s (WebAssembly, one thread, without the model's loading);" \
    "native CLI ${native_s} s (one thread, with its start and loading)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
