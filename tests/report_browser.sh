#!/usr/bin/env bash
# The report page in a real browser. A tiny reproduction is opened in headless Chromium at a
# laptop and at a phone width; a script added to a copy of the page reports what the browser
# saw: every image must have loaded (decoded, non-zero size), the page must not scroll
# sideways, and the browser's console must stay silent. A negative control page (a broken
# image and a console error) must be caught by the same checks. Screenshots are kept.
#
#   tests/report_browser.sh [WORKDIR]      (DDPM_BIN, DDPM_DATA as for the other tests)
set -euo pipefail
BIN=${DDPM_BIN:-./ddpm}
DATA=${DDPM_DATA:-../shared/data/mnist}
WORK=${1:-$(mktemp -d /tmp/ddpm-browser-XXXXXX)}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd) # file:// URLs need an absolute path
rm -rf "$WORK/r" # a finished reproduction would be skipped, not redone
source "$(dirname "$0")/browser_lib.sh"

browser() { # browser WIDTH HEIGHT OUTPUT-OPTION FILE -> stderr of the browser in $WORK/console.log
    "$CHROME" "${CHROME_FLAGS[@]}" --window-size="$1,$2" --virtual-time-budget=10000 "$3" "file://$4" 2>"$WORK/console.log"
}

# The page's own view of itself, written into the DOM that --dump-dom prints.
CHECK='<script>window.addEventListener("load", function () {
  var im = document.images, broken = 0;
  for (var i = 0; i < im.length; i++) if (!im[i].complete || im[i].naturalWidth === 0) broken++;
  var wide = document.documentElement.scrollWidth > window.innerWidth + 1 ? 1 : 0;
  document.body.setAttribute("data-check", "images=" + im.length + " broken=" + broken + " overflow=" + wide);
});</script>'

# check PAGE WIDTH -> prints "images=N broken=B overflow=O console=C"
check() {
    local page=$1 width=$2 html
    html=$(cat "$page")
    printf '%s' "${html%</body>*}$CHECK</body></html>" > "$WORK/check.html"
    browser "$width" 900 --dump-dom "$WORK/check.html" > "$WORK/dom.html"
    local seen console
    seen=$(grep -o 'data-check="[^"]*"' "$WORK/dom.html" | sed 's/data-check="//; s/"$//' || true)
    console=$(grep -c 'CONSOLE' "$WORK/console.log" || true)
    [ -n "$seen" ] || seen="images=? broken=? overflow=?"
    echo "$seen console=$console"
}

# Negative control: the checks must see a broken image, a console error and a too-wide page.
cat > "$WORK/bad.html" <<'EOF'
<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"></head>
<body><img src="data:image/png;base64,AAAA" alt="broken"><div style="width:3000px">wide</div>
<script>console.error("deliberate error");</script></body></html>
EOF
expect "negative control is caught" "$(check "$WORK/bad.html" 390)" "images=1 broken=1 overflow=1 console=1"

# The real thing: a tiny reproduction.
"$BIN" reproduce --profile tiny --out "$WORK/r" --data "$DATA" --threads 2 --no-progress \
    > "$WORK/reproduce.log" 2>&1 || { tail -5 "$WORK/reproduce.log"; echo "FAIL: reproduce"; exit 1; }
n_img=$(grep -o '<img' "$WORK/r/index.html" | wc -l)
[ "$n_img" -ge 15 ] && expect "report embeds at least 15 images" yes yes || expect "report embeds at least 15 images" "$n_img" ">= 15"
expect "laptop width" "$(check "$WORK/r/index.html" 1280)" "images=$n_img broken=0 overflow=0 console=0"
expect "phone width" "$(check "$WORK/r/index.html" 390)" "images=$n_img broken=0 overflow=0 console=0"

for shot in laptop:1280:2400 phone:390:2400; do
    IFS=: read -r name w h <<< "$shot"
    rm -f "$WORK/report-$name.png"
    (cd "$WORK" && browser "$w" "$h" --screenshot="$WORK/report-$name.png" "$WORK/r/index.html" > /dev/null)
    size=$(stat -c %s "$WORK/report-$name.png" 2>/dev/null || echo 0)
    magic=$(head -c 4 "$WORK/report-$name.png" 2>/dev/null | od -An -c | tr -d ' ')
    [ "$size" -gt 20000 ] && [ "$magic" = "211PNG" ] && r=yes || r="size $size, magic $magic"
    expect "screenshot $WORK/report-$name.png" "$r" yes
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
