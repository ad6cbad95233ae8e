# The shell tests' harness (sourced by tests/mpi.sh and tests/install.sh from the repository
# root): BIN, BUILD and DATA as for the C tests (DDPM_BIN, BUILD, DDPM_DATA, else ./data/mnist,
# else ../shared/data/mnist); `check NAME COMMAND...` runs one test and prints cmocka's lines
# for it; `check_summary` prints cmocka's summary, which tests/run.sh adds to the suite's
# "N passed, N failed", and returns the verdict.
BIN=$(realpath "${DDPM_BIN:-build/ddpm}")
BUILD=${BUILD:-build}
if [ -n "${DDPM_DATA:-}" ]; then DATA=$DDPM_DATA
elif [ -e data/mnist/train-images-idx3-ubyte.gz ]; then DATA=data/mnist
else DATA=../shared/data/mnist; fi
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
