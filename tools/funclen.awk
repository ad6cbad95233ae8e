# Prints "LINES FILE:LINE NAME" for every function definition longer than LIMIT lines (default
# 120), counted from the first line of its signature to its closing brace. Assumes the house
# layout: a definition starts in column 0, its body's opening brace ends the signature's last
# line (or stands alone in column 0) and its closing brace is alone in column 0. One-line
# definitions, declarations, macros and initialised tables are not functions.
BEGIN { if (LIMIT == "") LIMIT = 120 }
FNR == 1 { sig = 0; body = 0; cont = 0 }
# a macro's continuation lines are never signatures
cont { cont = /\\[ \t]*$/; next }
/^[ \t]*#/ { cont = /\\[ \t]*$/; next }
!body && !sig && /^[A-Za-z_]/ && /\(/ && !/^(typedef|struct|enum|union)[ \t]/ && !/=/ {
    sig = 1; start = FNR; name = $0
}
# the whole definition on one line: { ... } balanced on it
sig && /\{.*\}[ \t]*$/ { sig = 0; next }
sig && (/\{[ \t]*$/ || /^\{/) { body = 1; sig = 0; next }
sig && /;[ \t]*$/ { sig = 0 }
body && /^}/ {
    n = FNR - start + 1
    if (n > LIMIT) {
        sub(/[ \t]*\(.*/, "", name)
        printf "%d %s:%d %s\n", n, FILENAME, start, name
    }
    body = 0
}
