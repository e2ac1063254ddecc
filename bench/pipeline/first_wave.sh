#!/usr/bin/env bash
# A fresh worker's first wave (docs/benchmarks/pipeline.md): a fresh nginx
# per run (one worker pinned to CPU 0), then exactly C requests at once,
# one per connection, all connections opened first (first_wave.py,
# pinned to CPU 1): the latency of each, the worker's CPU and its page
# faults over the wave.  Two builds alternated, calib measured in the
# same round (with build B).  RUNS: calib, demo, quiet (runs.sh).
#   SO_A=base.so CONF_A=base.conf.in [SO_B=.. CONF_B=..] ROUNDS=3 \
#   RUNS="calib demo" PORT=2360 bench/pipeline/first_wave.sh 1000
# B defaults to this tree's build and template.  One line per run:
#   WAVE round=1 build=B run=demo n=1000 ok=1000 p50_ms=.. p99_ms=.. ...
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/pipeline
PORT=${PORT:-20500}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-calib demo}
NGINX=${NGINX:-/usr/sbin/nginx}
SO_B=${SO_B:-$ROOT/build/nginx/objs/ngx_http_asyncx_module.so}
CONF_B=${CONF_B:-$HERE/nginx.conf.in}
SO_A=${SO_A:?the other build: SO_A=path.so}
CONF_A=${CONF_A:-$CONF_B}
PREFIX=$ROOT/build/bench-pipeline-wave
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
        builds="A B"
        [ "$run" != calib ] || builds=B
        for build in $builds; do
            if [ $build = A ]; then so=$SO_A conf=$CONF_A
            else so=$SO_B conf=$CONF_B; fi
            start "$so" "$conf" "$edit"
            echo "WAVE round=$round build=$build run=$run" \
                 "$(taskset -c 1 python3 "$HERE/first_wave.py" \
                        --port "$PORT" --path "/$target" \
                        --worker "$WORKER" -n "$C" | sed 's/^WAVE //')" \
                 "load=$(cut -d' ' -f1 /proc/loadavg)" \
                 "errors=$(grep -cE '\[(error|alert|crit)\]' \
                          "$PREFIX/logs/error.log" || true)"
            stop
        done
    done
done
