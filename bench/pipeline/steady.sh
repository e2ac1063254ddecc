#!/usr/bin/env bash
# Worker CPU per order in steady state, two builds alternated
# (docs/benchmarks/pipeline.md): a fresh nginx per run (one worker pinned
# to CPU 0, wrk -t1 pinned to CPU 1), WARM seconds of orders, then the
# worker's CPU time from /proc/<pid>/schedstat (ns) over CYCLES whole
# waves of orders counted by the status endpoint (pipelines.total, or
# for calib pipelines.mock.total; cycles.py), all inside one wrk run.
#   SO_A=base.so CONF_A=base.conf.in [SO_B=.. CONF_B=..] ROUNDS=3 \
#   RUNS="demo quiet" PORT=2360 bench/pipeline/steady.sh 1000
# B defaults to this tree's build and template.  One line per run:
#   STEADY round=1 build=A run=demo cpu_us_per_order=.. orders=..
set -euo pipefail

WARM=${WARM:-3}
CYCLES=${CYCLES:-5}
RUNS=${RUNS:-demo quiet}
C=${1:-1000}

. "$(dirname "$0")/ab.sh"
PREFIX=$ROOT/build/bench-pipeline-steady

# one run: WARM s of orders, then CYCLES whole waves measured
steady_run() {
    local wrk_pid n t
    taskset -c 1 wrk -t1 -c"$C" -d"$(( WARM + 3 * CYCLES + 4 ))s" \
        --timeout 10s -s "$HERE/order.lua" "$B/$target" \
        > "$PREFIX/wrk.out" &
    wrk_pid=$!
    sleep "$WARM"
    # whole cycles: at lock-step the orders start in waves of C,
    # so the window runs from one wave's end to CYCLES waves later
    read -r n t < <(taskset -c 1 python3 "$HERE/cycles.py" \
                            "$PORT" "$WORKER" "$C" "$CYCLES" "$2")
    wait $wrk_pid
    echo "STEADY round=$1 build=$3 run=$2 c=$C" \
         "orders=$n cpu_ms=$(( t / 1000000 ))" \
         "cpu_us_per_order=$(( n ? t / 1000 / n : 0 ))" \
         "load=$(cut -d' ' -f1 /proc/loadavg)" \
         "$(grep -o 'p99_ms=[0-9.]*\|err_[a-z]*=[1-9][0-9]*' \
            "$PREFIX/wrk.out" | tr '\n' ' ')" \
         "errors=$(grep -cE '\[(error|alert|crit)\]' \
                  "$PREFIX/logs/error.log" || true)"
}

ab_rounds steady_run
