#!/usr/bin/env bash
# Data-parallel training under mpirun (MPI builds; `make test` runs it there): synchronised
# BatchNorm seen from every process; 2 processes x 1 thread train the model that 1 process x 2
# threads (and x 1) trains, for the three models; the TCP transport; Ctrl-C to mpirun and
# resuming with 2 processes (byte for byte) and with 1; a killed and a hung process; the
# commands that run as one process; bench. Prints cmocka's summary lines for tests/run.sh.
# Usage: tests/mpi.sh [TEST...] (DDPM_BIN, BUILD and DDPM_DATA as for the other tests).
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/check_lib.sh
DATA=$(realpath "$DATA")
tmp=$(mktemp -d)
trap 'pkill -KILL -f "$tmp/" 2>/dev/null; rm -rf "$tmp"' EXIT
MPIRUN=(mpirun --oversubscribe -np 2)
[ "$(id -u)" -eq 0 ] && MPIRUN+=(--allow-run-as-root)

# A short run: width 16, batch 32, 50 steps (1600 images), 20 diffusion steps for the figures.
train_args() { # MODEL DIR
    local a=(--model "$1" --out "$2" --data "$DATA" --width 16 --batch 32 --subset 1600
             --epochs 1 --seed 3 --no-progress)
    [ "$1" = denoiser ] && a+=(--eval-n 64 --sigma-table-n 0) || a+=(--T 20)
    echo "${a[@]}"
}

# largest relative difference of the losses of two loss.csv files, step by step
loss_diff() {
    awk -F, 'NR == FNR { if (FNR > 1) a[FNR] = $4; next }
             FNR > 1 { n++; d = $4 - a[FNR]; if (d < 0) d = -d; r = d / (a[FNR] < 0 ? -a[FNR] : a[FNR]);
                       if (r > m) m = r }
             END { if (n == 0) m = 1; printf "%.3g\n", m }' "$1" "$2"
}

# same model: 2 x 1 against 1 x 2 and 1 x 1: losses to a relative 1e-4, weights close
same_model() {
    local model=$1 d=$tmp/same-$1
    "${MPIRUN[@]}" "$BIN" train $(train_args "$model" "$d-2x1") --threads 1 >"$d-2x1.log" 2>&1 || { cat "$d-2x1.log"; return 1; }
    "$BIN" train $(train_args "$model" "$d-1x2") --threads 2 >"$d-1x2.log" 2>&1 || { cat "$d-1x2.log"; return 1; }
    "$BIN" train $(train_args "$model" "$d-1x1") --threads 1 >"$d-1x1.log" 2>&1 || { cat "$d-1x1.log"; return 1; }
    local steps r12 r11 w12
    steps=$(($(wc -l <"$d-2x1/loss.csv") - 1))
    r12=$(loss_diff "$d-2x1/loss.csv" "$d-1x2/loss.csv")
    r11=$(loss_diff "$d-2x1/loss.csv" "$d-1x1/loss.csv")
    w12=$("$BUILD/tests/st_compare" "$d-2x1/model.safetensors" "$d-1x2/model.safetensors") || return 1
    echo "    $model: $steps steps; loss rel. diff 2x1 vs 1x2 $r12, vs 1x1 $r11; weights 2x1 vs 1x2: $w12"
    # weights: those that act on the output must agree to 1e-4 relative to max(1, |w|) after
    # 50 steps (BatchNorm's running variances are large); the ones that do not (st_compare's
    # "free" ones) move up to lr = 1e-3 a step on rounding noise: at most 2 lr x 50 = 0.1 apart
    local frac rel free
    frac=$(echo "$w12" | awk '{ print $6 }')
    rel=$(echo "$w12" | awk '{ print $8 }')
    free=$(echo "$w12" | awk '{ print $11 }')
    [ "$steps" -eq 50 ] && awk -v a="$r12" -v b="$r11" -v f="$frac" -v w="$rel" -v z="$free" \
        'BEGIN { exit !(a <= 1e-4 && b <= 1e-4 && f <= 0.02 && w <= 1e-4 && z <= 0.1) }'
}

bn_sync() {
    "${MPIRUN[@]}" "$BUILD/tests/mpi_bn"
}

# the TCP transport (the path between machines) gives the shared-memory run's losses, bit for
# bit (the same reduction order), within 1e-4 of one process's
tcp() {
    local d=$tmp/tcp
    "${MPIRUN[@]}" --mca btl tcp,self "$BIN" train $(train_args time "$d") --threads 1 >"$d.log" 2>&1 || { cat "$d.log"; return 1; }
    local r
    r=$(loss_diff "$d/loss.csv" "$tmp/same-time-1x2/loss.csv")
    echo "    tcp: loss rel. diff vs 1x2 $r; loss.csv identical to shared memory's: $(cmp -s "$d/loss.csv" "$tmp/same-time-2x1/loss.csv" && echo yes || echo no)"
    awk -v a="$r" 'BEGIN { exit !(a <= 1e-4) }' && cmp -s "$d/loss.csv" "$tmp/same-time-2x1/loss.csv"
}

# the ddpm processes of a run (by its directory), and the one of a rank
run_pids() { pgrep -f -- "ddpm train .*--out $1( |$)"; }
rank_pid() { # DIR RANK
    local p
    for p in $(run_pids "$1"); do
        grep -qz "^OMPI_COMM_WORLD_RANK=$2$" "/proc/$p/environ" 2>/dev/null && { echo "$p"; return; }
    done
}
wait_stopped() { # DIR: until both ranks are stopped (state T), at most 60 s
    local i p n
    for i in $(seq 600); do
        n=0
        for p in $(run_pids "$1"); do
            [ "$(awk '{ print $3 }' "/proc/$p/stat" 2>/dev/null)" = T ] && n=$((n + 1))
        done
        [ "$n" -eq 2 ] && return 0
        sleep 0.1
    done
    return 1
}
wait_file() { local i; for i in $(seq 600); do [ -e "$1" ] && return 0; sleep 0.1; done; return 1; }

# Ctrl-C to mpirun once both ranks are past step 30 (each stops itself there): mpirun sends
# SIGCONT, then SIGTERM a second later (odls_base_sigkill_timeout), then SIGKILL after one more;
# the ranks save at the same step and exit. Resumed with 2 processes: the same bytes as an
# uninterrupted 2-process run; a copy resumed with 1 process runs to the end.
resume() {
    local d=$tmp/resume args
    args="--model time --data $DATA --width 16 --batch 32 --subset 12800 --epochs 1 --seed 5 --T 20 --no-progress --threads 1"
    "${MPIRUN[@]}" "$BIN" train $args --out "$d-whole" >"$d-whole.log" 2>&1 || { cat "$d-whole.log"; return 1; }
    # (a script's background job starts with SIGINT ignored; env gives it back)
    env --default-signal=INT "${MPIRUN[@]}" "$BIN" train $args --out "$d" --fault-stop-at 30 >"$d.log" 2>&1 &
    local mp=$!
    wait_stopped "$d" || { echo "    the ranks did not stop at step 30"; kill -KILL $mp; return 1; }
    kill -INT $mp
    local rc=0
    wait $mp || rc=$?
    grep -v '^$' "$d.log" | sed 's/^/    | /'
    [ "$rc" -ne 0 ] && grep -qE "interrupted by SIGTERM after step [0-9]+ \(epoch 1, step [0-9]+ of 400\)" "$d.log" || return 1
    cp -r "$d" "$d-one"
    "${MPIRUN[@]}" "$BIN" train --resume "$d" >"$d-2.log" 2>&1 || { cat "$d-2.log"; return 1; }
    cmp "$d/loss.csv" "$d-whole/loss.csv" && cmp "$d/model.safetensors" "$d-whole/model.safetensors" || return 1
    "$BIN" train --resume "$d-one" --threads 2 >"$d-1.log" 2>&1 || { cat "$d-1.log"; return 1; }
    grep -q "saved by 2 processes and continues on 1" "$d-1.log" &&
        [ "$(wc -l <"$d-one/loss.csv")" -eq 401 ] &&
        echo "    resumed on 2 processes: loss.csv and model.safetensors identical to the uninterrupted run's; on 1 process: loss rel. diff $(loss_diff "$d-one/loss.csv" "$d-whole/loss.csv")"
}

# A rank killed (SIGKILL) mid-run: mpirun ends the job within 30 s, saying which; the last
# checkpoint loads and the run continues from it.
killed() {
    local d=$tmp/killed
    "${MPIRUN[@]}" "$BIN" train --model time --data "$DATA" --width 16 --batch 32 --subset 19200 \
        --epochs 1 --seed 5 --T 20 --no-progress --threads 1 --checkpoint-every 20 --out "$d" >"$d.log" 2>&1 &
    local mp=$! t0
    wait_file "$d/checkpoint.safetensors" || { kill -KILL $mp; return 1; }
    kill -KILL "$(rank_pid "$d" 1)"
    t0=$(date +%s)
    local i
    for i in $(seq 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
    kill -0 $mp 2>/dev/null && { echo "    mpirun still running after 30 s"; kill -KILL $mp; return 1; }
    wait $mp && return 1
    echo "    the job ended $(($(date +%s) - t0)) s after the kill; its message:"
    grep -E "exited on signal|no answer" "$d.log" | sed 's/^ */    | /'
    grep -qE "rank 1 .*exited on signal 9|no answer from the other processes" "$d.log" || { cat "$d.log"; return 1; }
    "$BIN" train --resume "$d" --threads 2 >"$d-r.log" 2>&1 || { cat "$d-r.log"; return 1; }
    grep -q "ddpm: done" "$d-r.log"
}

# A rank that hangs (SIGSTOP): the other says so after DDPM_COMM_TIMEOUT and the job ends.
hung() {
    local d=$tmp/hung
    "${MPIRUN[@]}" -x DDPM_COMM_TIMEOUT=3 "$BIN" train --model time --data "$DATA" --width 16 --batch 32 \
        --subset 19200 --epochs 1 --seed 5 --T 20 --no-progress --threads 1 --checkpoint-every 20 \
        --out "$d" >"$d.log" 2>&1 &
    local mp=$! i
    wait_file "$d/checkpoint.safetensors" || { kill -KILL $mp; return 1; }
    kill -STOP "$(rank_pid "$d" 1)"
    for i in $(seq 300); do kill -0 $mp 2>/dev/null || break; sleep 0.1; done
    kill -0 $mp 2>/dev/null && { echo "    mpirun still running after 30 s"; pkill -KILL -f -- "--out $d "; kill -KILL $mp; return 1; }
    wait $mp && return 1
    grep "no answer" "$d.log" | sed 's/^/    | /'
    grep -q "ddpm: rank 0: no answer from the other processes for [3-9] s" "$d.log"
}

one_process() {
    local out rc=0
    out=$("${MPIRUN[@]}" "$BIN" sample --model "$tmp/none.safetensors" 2>&1) || rc=$?
    echo "$out" | sed 's/^/    | /'
    [ "$rc" -ne 0 ] && [ "$(echo "$out" | grep -c "runs as one process")" -eq 1 ]
}

bench() {
    local out
    out=$("${MPIRUN[@]}" "$BIN" bench --model time --width 16 --batch 32 --steps 2 --threads 1 2>&1) || { echo "$out"; return 1; }
    echo "$out" | grep -E "processes|communication|img/s$" | sed 's/^/    | /'
    echo "$out" | grep -q "2 processes x 1 threads" && echo "$out" | grep -q "^communication: median" &&
        echo "$out" | tail -1 | grep -qE "^[0-9.]+ img/s$"
}

# all of them, or those named as arguments (bn_sync same_model_time resume ...)
names=("$@")
[ $# -eq 0 ] && names=(bn_sync same_model_denoiser same_model_time same_model_class tcp resume
                       killed_rank hung_rank one_process_commands bench)
for t in "${names[@]}"; do
    case $t in
        same_model_*) check "$t" same_model "${t#same_model_}" ;;
        killed_rank) check "$t" killed ;;
        hung_rank) check "$t" hung ;;
        one_process_commands) check "$t" one_process ;;
        *) check "$t" "$t" ;;
    esac
done

check_summary
