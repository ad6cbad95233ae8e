#!/usr/bin/env bash
# The package: `make install` into a temporary DESTDIR (PREFIX=/usr) puts exactly the expected
# files there; libddpm.so exports the header's functions and nothing else; examples/digits.c
# builds through pkg-config against the installed files, shared and (--static) against
# libddpm.a, and writes digits that `ddpm eval` judges as requested (>= 99% with a full class
# model); the man page lists every command and option and renders without warnings;
# `make uninstall` removes every file. Prints cmocka's summary lines for tests/run.sh.
# The class model: $DDPM_TEST_CLASS_MODEL, else ../shared/models/class-d64-e20-pytorch-
# reference.safetensors; the test fails without one. The judge is eval's default (cached in
# ~/.cache/ddpm, trained there on first use).
# Usage: tests/install.sh [TEST...] (DDPM_BIN, BUILD and DDPM_DATA as for the other tests).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/check_lib.sh
MODEL=${DDPM_TEST_CLASS_MODEL:-../shared/models/class-d64-e20-pytorch-reference.safetensors}
VERSION=$(sed -n 's/^#define DDPM_VERSION_STRING "\(.*\)"/\1/p' include/ddpm.h)
MAJOR=${VERSION%%.*}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ROOT=$tmp/root
LIB=$ROOT/usr/lib
DIGITS=01234567890123456789

mk() { make --no-print-directory -s BUILD="$BUILD" PREFIX=/usr DESTDIR="$ROOT" "$@"; }
files_in_root() { (cd "$ROOT" && find . \( -type f -o -type l \) | sort); }
# pkg-config as an embedder sees the installed package
pc() { PKG_CONFIG_SYSROOT_DIR=$ROOT PKG_CONFIG_LIBDIR=$LIB/pkgconfig pkg-config "$@" ddpm; }

install_files() {
    mk install >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; return 1; }
    local want got
    want=$(printf '%s\n' ./usr/bin/ddpm ./usr/include/ddpm.h ./usr/lib/libddpm.a \
        ./usr/lib/libddpm.so ./usr/lib/libddpm.so."$MAJOR" ./usr/lib/libddpm.so."$VERSION" \
        ./usr/lib/pkgconfig/ddpm.pc ./usr/share/man/man1/ddpm.1 | sort)
    got=$(files_in_root)
    [ "$got" = "$want" ] || { echo "    installed:"; echo "$got"; echo "    expected:"; echo "$want"; return 1; }
    [ -f "$LIB/libddpm.so.$VERSION" ] && [ ! -L "$LIB/libddpm.so.$VERSION" ] &&
        [ "$(readlink "$LIB/libddpm.so.$MAJOR")" = "libddpm.so.$VERSION" ] &&
        [ "$(readlink "$LIB/libddpm.so")" = "libddpm.so.$MAJOR" ] &&
        readelf -d "$LIB/libddpm.so.$VERSION" | grep -q "SONAME.*\[libddpm.so.$MAJOR\]" &&
        [ "$("$ROOT/usr/bin/ddpm" --version)" = "ddpm $VERSION" ] &&
        [ "$("$BIN" --version)" = "ddpm $VERSION" ] &&
        [ "$(pc --modversion)" = "$VERSION" ] && grep -qx 'prefix=/usr' "$LIB/pkgconfig/ddpm.pc" || { echo "    links, SONAME, --version or pkg-config version wrong"; return 1; }
    echo "    $(echo "$got" | wc -l) files; SONAME libddpm.so.$MAJOR; ddpm --version: $VERSION"
}

# every dynamic symbol the library defines starts with ddpm_, and each function of the header is one
exports() {
    local api exported missing other
    api=$(sed -n 's/^DDPM_API [^(]*[ *]\(ddpm_[a-z0-9_]*\)(.*/\1/p' include/ddpm.h | sort)
    exported=$(nm -D --defined-only "$LIB/libddpm.so.$VERSION" | awk '{ print $NF }' | sort)
    missing=$(comm -23 <(echo "$api") <(echo "$exported"))
    other=$(echo "$exported" | grep -v '^ddpm_')
    echo "    $(echo "$api" | wc -w) functions in include/ddpm.h, $(echo "$exported" | wc -w) exported"
    [ -n "$missing" ] && echo "    not exported: $(echo "$missing" | tr "\n" " ")"
    [ -n "$other" ] && echo "    exported but not ddpm_*: $(echo "$other" | head -20 | tr '\n' ' ')"
    [ "$(echo "$api" | wc -w)" -ge 10 ] && [ -z "$missing" ] && [ -z "$other" ]
}

# the example, built as the README says, on the class model; its PNG judged by ddpm eval
example() {
    [ -f "$MODEL" ] || { echo "    no class model at $MODEL (set DDPM_TEST_CLASS_MODEL)"; return 1; }
    # shellcheck disable=SC2046
    cc -std=c11 -Wall -Wextra -Werror -o "$tmp/digits" examples/digits.c $(pc --cflags --libs) || return 1
    LD_LIBRARY_PATH=$LIB ldd "$tmp/digits" | grep -q "$LIB/libddpm.so.$MAJOR" || { ldd "$tmp/digits"; return 1; }
    local t0=$SECONDS
    LD_LIBRARY_PATH=$LIB "$tmp/digits" "$MODEL" "$DIGITS" "$tmp/out.png" || return 1
    echo "    digits $DIGITS: $((SECONDS - t0)) s"
    # the requested digits as an IDX label file: magic 0x00000801, the count, one byte each
    {
        printf '\0\0\10\1'
        printf "\\$(printf %03o $((${#DIGITS} >> 24 & 255)))\\$(printf %03o $((${#DIGITS} >> 16 & 255)))"
        printf "\\$(printf %03o $((${#DIGITS} >> 8 & 255)))\\$(printf %03o $((${#DIGITS} & 255)))"
        local i
        for ((i = 0; i < ${#DIGITS}; i++)); do printf "\\$(printf %03o "${DIGITS:i:1}")"; done
    } >"$tmp/labels.idx"
    "$BIN" eval --samples "$tmp/out.png" --labels "$tmp/labels.idx" --data "$DATA" \
        --n-test 1000 --n-train 1000 --json "$tmp/eval.json" >"$tmp/eval.log" 2>&1 || { cat "$tmp/eval.log"; return 1; }
    local acc
    acc=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["results"][0]["accuracy"])' "$tmp/eval.json") || return 1
    echo "    judged as requested: $acc"
    grep -E "accuracy|judged" "$tmp/eval.log" | sed 's/^/    | /'
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.99) }'
}

# the same program linked against libddpm.a (pkg-config --static names what it needs)
static_link() {
    local libs
    libs=$(pc --static --libs | sed 's/-lddpm/-Wl,-Bstatic -lddpm -Wl,-Bdynamic/')
    # shellcheck disable=SC2086
    cc -std=c11 -o "$tmp/digits-static" examples/digits.c $(pc --cflags) $libs || return 1
    readelf -d "$tmp/digits-static" | grep -q 'libddpm' && { echo "    still needs libddpm.so"; return 1; }
    "$tmp/digits-static" "$MODEL" 7 "$tmp/seven.png" || return 1
    # one 28x28 cell: the PNG's IHDR width and height
    [ "$(od -An -tu1 -j16 -N8 "$tmp/seven.png" | tr -s ' ')" = " 0 0 0 28 0 0 0 28" ]
}

# every command of `ddpm --help` and every option of its --help is in the page, and so is
# every command of main.c's table; no warnings
man_page() {
    local page=$ROOT/usr/share/man/man1/ddpm.1 c o missing=0 warn
    for c in $(grep -oE '\{"[a-z-]+", cmd_' src/cli/main.c | cut -d'"' -f2); do
        grep -qF ".SS \"ddpm $c\"" "$page" || { echo "    command $c of main.c missing"; missing=1; }
    done
    for c in $("$BIN" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }'); do
        grep -qF ".SS \"ddpm $c\"" "$page" || { echo "    command $c missing"; missing=1; }
        for o in $("$BIN" "$c" --help | sed -n '/^Options:/,$p' | awk '$1 ~ /^--/ { print $1 }'); do
            grep -qF "\\fB${o//-/\\-}\\fR" "$page" || { echo "    $c $o missing"; missing=1; }
        done
    done
    warn=$(groff -man -ww -z "$page" 2>&1)
    if command -v man >/dev/null; then warn+=$(MANWIDTH=80 man -l "$page" 2>&1 >/dev/null); fi
    [ -n "$warn" ] && echo "$warn" | sed 's/^/    | /'
    echo "    $(grep -c "^\.SS \"ddpm " "$page") commands, $(grep -c '^\.TP' "$page") options"
    [ "$missing" -eq 0 ] && [ -z "$warn" ]
}

uninstall_files() {
    mk uninstall >"$tmp/uninstall.log" 2>&1 || { cat "$tmp/uninstall.log"; return 1; }
    local left
    left=$(files_in_root)
    [ -z "$left" ] || { echo "    left behind: $left"; return 1; }
}

names=("$@")
[ $# -eq 0 ] && names=(install_files exports example static_link man_page uninstall_files)
for t in "${names[@]}"; do check "$t" "$t"; done

check_summary
