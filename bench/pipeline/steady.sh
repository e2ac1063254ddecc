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

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
WARM=${WARM:-3}
CYCLES=${CYCLES:-5}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-demo quiet}
NGINX=${NGINX:-/usr/sbin/nginx}
SO_B=${SO_B:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
CONF_B=${CONF_B:-$HERE/nginx.conf.in}
SO_A=${SO_A:?the other build: SO_A=path.so}
CONF_A=${CONF_A:-$CONF_B}
PREFIX=$ROOT/build/bench-pipeline-steady
B=http://127.0.0.1:$PORT
C=${1:-1000}
SO=$SO_B

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

start() {
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$1|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|1|" \
        -e "s|@LISTEN@||" -e "$3" "$2" > "$PREFIX/conf/nginx.conf"
    taskset -c 0 "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
        -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
}

echo "== $(date -u) nproc=$(nproc) $(uptime)"

for round in $(seq "$ROUNDS"); do
    for run in $RUNS; do
        run_kind "$run"
        for build in A B; do
            if [ $build = A ]; then so=$SO_A conf=$CONF_A
            else so=$SO_B conf=$CONF_B; fi
            start "$so" "$conf" "$edit"
            taskset -c 1 wrk -t1 -c"$C" -d"$(( WARM + 3 * CYCLES + 4 ))s" \
                --timeout 10s -s "$HERE/order.lua" "$B/$target" \
                > "$PREFIX/wrk.out" &
            wrk_pid=$!
            sleep "$WARM"
            # whole cycles: at lock-step the orders start in waves of C,
            # so the window runs from one wave's end to CYCLES waves later
            read -r n t < <(taskset -c 1 python3 "$HERE/cycles.py" \
                                    "$PORT" "$WORKER" \
                                    "$C" "$CYCLES" "$run")
            wait $wrk_pid
            echo "STEADY round=$round build=$build run=$run c=$C" \
                 "orders=$n cpu_ms=$(( t / 1000000 ))" \
                 "cpu_us_per_order=$(( n ? t / 1000 / n : 0 ))" \
                 "load=$(cut -d' ' -f1 /proc/loadavg)" \
                 "$(grep -o 'p99_ms=[0-9.]*\|err_[a-z]*=[1-9][0-9]*' \
                    "$PREFIX/wrk.out" | tr '\n' ' ')" \
                 "errors=$(grep -cE '\[(error|alert|crit)\]' \
                          "$PREFIX/logs/error.log" || true)"
            stop
        done
    done
done
