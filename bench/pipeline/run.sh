#!/usr/bin/env bash
# Pipeline benchmark (docs/benchmarks/pipeline.md).  127.0.0.1 only,
# a private prefix under build/, port $PORT; a fresh nginx per run
# (WORKERS workers; one worker is pinned to CPU 0, several share both
# CPUs, with reuseport); wrk (one thread) pinned to CPU 1.
#   bench/pipeline/run.sh [concurrency ...]     (default: 1 100 1000 2000)
#   DUR=20 PORT=20500 RUNS="calib quiet" WORKERS=2 bench/pipeline/run.sh 10000
# WARM=8: a first wrk run of 8 s (not measured) so that the measured run
# meets a warm worker (heap and spare blocks in place); without it the
# measured run starts with a fresh worker's first wave.
# SO=/path/other.so CONF=/path/nginx.conf.in compare another build (its
# own template with the same @...@ placeholders).
# Runs per level (RUNS): calib, demo, quiet (runs.sh).
# LUA=/path/other.lua: another wrk script (default: order.lua).
# KEEP=1000: "asyncx_pipeline_blocks keep=1000" (default 0: none).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
DUR=${DUR:-20}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
CONF=${CONF:-$HERE/nginx.conf.in}
WORKERS=${WORKERS:-1}
WARM=${WARM:-0}
KEEP=${KEEP:-0}
PREFIX=$ROOT/build/bench-pipeline
B=http://127.0.0.1:$PORT
RUNS=${RUNS:-calib demo quiet}
LUA=${LUA:-$HERE/order.lua}
LEVELS=("$@")
[ ${#LEVELS[@]} -gt 0 ] || LEVELS=(1 100 1000 2000)

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

start() {
    local listen='' cpus=0
    if [ "$WORKERS" -gt 1 ]; then listen=reuseport; cpus=0,1; fi
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" \
        -e "s|@WORKERS@|$WORKERS|" -e "s|@LISTEN@|$listen|" \
        -e "s|@KEEP@|$KEEP|" -e "$1" \
        "$CONF" > "$PREFIX/conf/nginx.conf"
    taskset -c $cpus "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
        -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
    WORKERS_PIDS=$(pgrep -P "$NGINX_PID" | tr '\n' ' ')
}

# CPU time of all workers, in clock ticks
cpu_ticks() {
    local t=0 w
    for w in $WORKERS_PIDS; do
        t=$(( t + $(awk '{ print $14 + $15 }' "/proc/$w/stat") ))
    done
    echo $t
}

# orders (pipelines) or, for /calib, answered mock requests, from the
# status JSON ($1)
orders() {
    echo "$1" | python3 -c 'import sys, json
p = json.load(sys.stdin)["pipelines"]
print(p["mock"]["total"] if sys.argv[1] == "calib" else p["total"])' "$run"
}

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
grep -m1 'model name' /proc/cpuinfo || true
uptime

for c in "${LEVELS[@]}"; do
    for run in $RUNS; do
        run_kind "$run"
        start "$edit"
        if [ "$WARM" -gt 0 ]; then
            # a warm worker: one wrk run of WARM s first, then 3 s for its
            # cut-off orders to end (spare blocks are kept 10 s)
            taskset -c 1 wrk -t1 -c"$c" -d"${WARM}s" --timeout 10s \
                -s "$LUA" "$B/$target" > /dev/null
            sleep 3
        fi
        rss0=$(kb VmRSS)
        cpu0=$(cpu_ticks)
        n0=$(orders "$(curl -s "$B/asyncx/status")")
        echo
        echo "== $c concurrent, $run (/$target), $WORKERS worker(s)," \
             "wrk -t1 -c$c -d${DUR}s$([ "$WARM" -eq 0 ] || echo " after ${WARM}s of warm-up")"
        taskset -c 1 wrk -t1 -c"$c" -d"${DUR}s" --timeout 10s \
            -s "$LUA" "$B/$target" | grep RESULT
        cpu1=$(cpu_ticks)
        hwm=$(kb VmHWM)
        cpu_ms=$(( (cpu1 - cpu0) * 1000 / $(getconf CLK_TCK) ))
        sleep 1
        status=$(curl -s "$B/asyncx/status")
        n=$(( $(orders "$status") - n0 ))
        echo "MEM worker_rss_idle_kb=$rss0 worker_rss_peak_kb=$hwm" \
             "per_inflight_kb=$(( (hwm - rss0) / c ))" \
             "worker_cpu_ms=$cpu_ms orders=$n" \
             "cpu_us_per_order=$(( n ? cpu_ms * 1000 / n : 0 ))"
        echo "$status" | grep -o '"pipelines":{[^}]*}' || true
        echo "error_log_lines=$(grep -cE '\[(error|alert|crit)\]' \
                                "$PREFIX/logs/error.log" || true)"
        stop
    done
done
