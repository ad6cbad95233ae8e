# What the browser tests share (sourced by tests/report_browser.sh and tests/web.sh): the
# headless Chromium binary and the flags that keep a run quiet and self-contained (no
# network of its own, no first-run pages) while the page's console reaches stderr, where the
# tests count its lines (CONSOLE); and the verdict helper with its counters.
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "chromium is not installed (apt-get install chromium)"; exit 1; }
CHROME_FLAGS=(--headless --no-sandbox --disable-gpu --disable-background-networking
    --disable-extensions --disable-sync --disable-default-apps --no-first-run
    --disable-component-update --enable-logging=stderr --v=0)

pass=0
fail=0
expect() { # expect WHAT GOT WANT
    if [ "$2" = "$3" ]; then echo "ok: $1: $2"; pass=$((pass + 1));
    else echo "FAIL: $1: got '$2', want '$3'"; fail=$((fail + 1)); fi
}
