# The shell tests' harness (sourced by tests/mpi.sh and tests/install.sh): `check NAME
# COMMAND...` runs one test and prints cmocka's lines for it, `check_summary` prints cmocka's
# summary, which tests/run.sh adds to the suite's "N passed, N failed", and returns the
# verdict.
passed=0
failed=0

check() { # NAME COMMAND...: passes when the command succeeds
    local name=$1
    shift
    echo "[ RUN      ] $name"
    if "$@"; then
        echo "[       OK ] $name"
        passed=$((passed + 1))
    else
        echo "[  FAILED  ] $name"
        failed=$((failed + 1))
    fi
}

check_summary() {
    echo "[==========] $((passed + failed)) test(s) run."
    echo "[  PASSED  ] $passed test(s)."
    [ "$failed" -gt 0 ] && echo "[  FAILED  ] $failed test(s)."
    [ "$failed" -eq 0 ]
}
