#!/usr/bin/env bash
# The COMMANDS section of ddpm.1 for help2man's --include: one subsection per command of
# `ddpm --help`, made from that command's --help (usage, description, every option).
# Usage: tools/man_commands.sh BUILD/ddpm >commands.h2m
set -eu
bin=$1
# roff-safe text: backslashes doubled, hyphens escaped, a leading . or ' protected
esc() { sed -e 's/\\/\\e/g' -e 's/-/\\-/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

echo "[COMMANDS]"
cmds=$("$bin" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF { print $1 }')
[ -n "$cmds" ] || { echo "$0: no commands in '$bin --help'" >&2; exit 1; }
for c in $cmds; do
    help=$("$bin" "$c" --help)
    echo ".SS \"ddpm $c\""
    # the usage lines as they are, then the description as a paragraph
    printf '%s\n' "$help" | awk '/^$/ { exit } { print }' | esc | sed '1i .nf' | sed '$a .fi'
    printf '%s\n' "$help" | awk 'seen == 1 && /^$/ { exit } seen == 1 { print } /^$/ && !seen { seen = 1 }' |
        esc | sed '1i .PP'
    # "  --name ARG   text": a tagged paragraph per option
    printf '%s\n' "$help" | sed -n '/^Options:/,$p' | tail -n +2 | esc |
        sed -E -e 's/^  (\\-\\-[A-Za-z0-9\\-]+) ([A-Z]) +(.*)$/.TP\n\\fB\1\\fR \\fI\2\\fR\n\3/' \
               -e 's/^  (\\-\\-[A-Za-z0-9\\-]+) +(.*)$/.TP\n\\fB\1\\fR\n\2/'
done
