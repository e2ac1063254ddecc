#!/usr/bin/env bash
# Where the client's tail is: the same warm run as run.sh (WARM s, then
# DUR s measured, one worker on CPU 0, wrk on CPU 1), with an access log
# of nginx's own times, so the client's p99 (wrk) can be set against
# nginx's $request_time (from the moment nginx made the request, by its
# cached clock) and the module's $asyncx_pipeline_time (the pipeline's
# own microsecond clock): what lies between them was spent before nginx
# read the request or after it wrote the answer.  Also the answers per
# event-loop pass (answers logged with the same $msec), the size of the
# bursts an order's answer waits behind, and over how long nginx read
# the first requests of the connections (the first wave).  WARM=0: no
# warm-up, the measured run meets a fresh worker (as run.sh's cold runs).
# docs/benchmarks/pipeline.md.
#   [SO=other.so] [KEEP=0] [WARM=8] [PORT=20500] [RUNS="calib demo"] \
#   bench/pipeline/inside.sh [rounds]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
DUR=${DUR:-15}
WARM=${WARM:-8}
KEEP=${KEEP:-0}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=${SO:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
RUNS=${RUNS:-calib demo}
ROUNDS=${1:-3}
PREFIX=$ROOT/build/bench-pipeline-inside
B=http://127.0.0.1:$PORT
LUA=$HERE/order.lua

. "$HERE/../lib.sh"
. "$HERE/runs.sh"

# the template's "access_log off;" becomes a log of nginx's times
log='log_format inside "$msec $request_time $asyncx_pipeline_time $connection_requests";\
    access_log logs/inside.log inside buffer=256k flush=1s;'

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
uptime

for round in $(seq "$ROUNDS"); do
    for run in $RUNS; do
        run_kind "$run"
        rm -rf "$PREFIX"
        mkdir -p "$PREFIX"/{conf,logs,temp}
        sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" -e "s|@WORKERS@|1|" \
            -e "s|@LISTEN@||" -e "s|@KEEP@|$KEEP|" -e "$edit" \
            -e "s|^    access_log off;|    $log|" \
            "$HERE/nginx.conf.in" > "$PREFIX/conf/nginx.conf"
        taskset -c 0 "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" \
            -g 'daemon off;' &
        NGINX_PID=$!
        wait_up
        if [ "$WARM" -gt 0 ]; then
            taskset -c 1 wrk -t1 -c1000 -d"${WARM}s" --timeout 10s \
                -s "$LUA" "$B/$target" > /dev/null
        fi
        # the log is flushed every second: what is in it is not measured
        sleep 3
        wc -l < "$PREFIX/logs/inside.log" > "$PREFIX/skip"
        echo
        echo "== round $round, 1000 concurrent, $run (/$target)," \
             "wrk -t1 -c1000 -d${DUR}s after ${WARM}s of warm-up"
        taskset -c 1 wrk -t1 -c1000 -d"${DUR}s" --timeout 10s \
            -s "$LUA" "$B/$target" | grep RESULT
        stop
        python3 "$HERE/inside.py" "$(cat "$PREFIX/skip")" \
            "$PREFIX/logs/inside.log"
    done
done
