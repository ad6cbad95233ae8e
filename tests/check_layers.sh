#!/usr/bin/env bash
# The layering of src/, checked from the sources and the built objects:
#   includes  the include graph at module level (a module is a .c with its .h; an edge for
#             every #include "dir/name.h" of another module, and to api/ddpm for the public
#             header "ddpm.h") has no cycle;
#   folders   the same at the level of src/'s folders (core, io, data, ops, ...): the layers
#             of README.md's Layout, each using only the ones below it;
#   calls     the object-level call graph (A -> B when an undefined symbol of A.o is defined in
#             B.o, from nm) has no cycle;
#   sizes     no function in src/ is over 120 lines (tools/funclen.awk), no file over 900.
# Each finding is printed; the verdict comes as cmocka's summary lines, which tests/run.sh
# adds to the suite's "N passed, N failed". Usage: tests/check_layers.sh [BUILD]
# (the objects' directory, default $BUILD or build).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${1:-${BUILD:-build}}
FUNC_MAX=120
FILE_MAX=900
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
failed_names=()

# verdict NAME FINDINGS_FILE: a check passes when it found nothing.
verdict() {
    local name=$1 findings=$2
    if [ ! -s "$findings" ]; then
        echo "[       OK ] $name"
        passed=$((passed + 1))
    else
        sed 's/^/    /' "$findings"
        echo "[  FAILED  ] $name"
        failed=$((failed + 1))
        failed_names+=("$name")
    fi
}

# cycles EDGES_FILE OUT: every cycle tsort meets in the graph "a b" (a -> b), one per line.
cycles() {
    tsort "$1" 2>&1 >/dev/null | awk '
        /input contains a loop/ { if (c != "") print c; c = ""; next }
        { sub(/^tsort: /, ""); c = c == "" ? $0 : c " -> " $0 }
        END { if (c != "") print c }' | awk '{ split($0, n, " -> "); print "cycle: " $0 " -> " n[1] }' >"$2"
}

# ---- includes -------------------------------------------------------------------------------
echo "[ RUN      ] includes"
: >"$tmp/inc"
for f in $(find src -name '*.[ch]' | sort); do
    from=${f#src/}
    from=${from%.*}
    sed -n 's/^[ \t]*#[ \t]*include[ \t]*"\([^"]*\)\.h".*/\1/p' "$f" | while read -r to; do
        # the public header include/ddpm.h is the api folder's (src/api implements it)
        if [ "$to" = ddpm ] && [ -e include/ddpm.h ]; then
            echo "$from api/ddpm"
            continue
        fi
        # an include relative to the file's own folder ("common.h" in src/core)
        [ -e "src/$to.h" ] || to=$(dirname "$from")/$to
        [ -e "src/$to.h" ] && [ "$to" != "$from" ] && echo "$from $to"
    done
done | sort -u >"$tmp/inc"
cycles "$tmp/inc" "$tmp/inc.found"
verdict includes "$tmp/inc.found"

# ---- folders --------------------------------------------------------------------------------
echo "[ RUN      ] folders"
awk '{ split($1, a, "/"); split($2, b, "/"); if (a[1] != b[1]) print a[1], b[1] }' "$tmp/inc" |
    sort -u >"$tmp/dirs"
cycles "$tmp/dirs" "$tmp/dirs.found"
verdict folders "$tmp/dirs.found"

# ---- calls ----------------------------------------------------------------------------------
echo "[ RUN      ] calls"
# the objects of today's sources only: a stale object of a removed file would add edges
objs=$(for c in $(find src -name '*.c' | sort); do o="$BUILD/${c%.c}.o"; [ -e "$o" ] && echo "$o"; done)
if [ -z "$objs" ]; then
    echo "no objects under $BUILD/src: build first" >"$tmp/calls.found"
else
    for o in $objs; do
        m=${o#"$BUILD"/src/}
        m=${m%.o}
        nm "$o" | awk -v m="$m" '$1 == "U" { print "U", $2, m; next }
                                 NF == 3 && $2 ~ /^[A-TV-Z]$/ { print "D", $3, m }'
    done >"$tmp/syms"
    awk '$1 == "D" { def[$2] = $3; next } { use[NR] = $2 " " $3 }
         END { for (i in use) { split(use[i], u, " "); if ((u[1] in def) && def[u[1]] != u[2])
                   print u[2], def[u[1]] } }' "$tmp/syms" | sort -u >"$tmp/calls"
    cycles "$tmp/calls" "$tmp/calls.found"
fi
verdict calls "$tmp/calls.found"

# ---- sizes ----------------------------------------------------------------------------------
echo "[ RUN      ] sizes"
files=$(find src -name '*.[ch]' | sort)
{
    awk -v LIMIT="$FUNC_MAX" -f tools/funclen.awk $files | sort -rn |
        awk -v max="$FUNC_MAX" '{ n = $1; at = $2; $1 = $2 = ""; sub(/^ +/, "")
                                  printf "function of %d lines (over %d): %s %s\n", n, max, at, $0 }'
    wc -l $files | awk -v max="$FILE_MAX" '$2 != "total" && $1 > max {
        printf "file of %d lines (over %d): %s\n", $1, max, $2 }'
} >"$tmp/sizes.found"
verdict sizes "$tmp/sizes.found"

echo "[==========] $((passed + failed)) test(s) run."
echo "[  PASSED  ] $passed test(s)."
if [ "$failed" -gt 0 ]; then
    echo "[  FAILED  ] $failed test(s), listed below:"
    for n in "${failed_names[@]}"; do echo "[  FAILED  ] $n"; done
    exit 1
fi
exit 0
