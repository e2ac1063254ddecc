#!/usr/bin/env bash
# SSE benchmark (docs/benchmarks/sse.md).  127.0.0.1 only, a private
# prefix under build/, port $PORT; nginx (1 worker, thread_pool cpu
# threads=2) in the foreground, stopped by PID; a fresh nginx per part so
# the worker's VmHWM belongs to that part.  Nothing is pinned (the batch
# threads, the worker and the client share the 2 cores).
#   bench/sse/run.sh                          (after `make build`)
#   PORT=25200 STREAMS="200 1000" bench/sse/run.sh
# 1. one stream of /stream/search?keyword=python&data_size=10^4, 10^6, 10^7
#    (REPEAT times each): time to the first "data:" line, items/s; worker
#    VmRSS polled every 10 ms and VmHWM;
# 2. the same search as a plain C loop (plain_search.c, built like the unit
#    tests) over 10^6 and 10^7 records, in the same run;
# 3. STREAMS streams of data_size=10^4 opened at once on the one worker.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/bench/sse
PORT=${PORT:-25200}
REPEAT=${REPEAT:-3}
STREAMS=${STREAMS:-200 1000}
NGINX=${NGINX:-/usr/sbin/nginx}
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
NB=$ROOT/build/nginx
PREFIX=$ROOT/build/bench-sse
B=http://127.0.0.1:$PORT
Q="/stream/search?keyword=python&data_size"

POLL_PID=
poll_stop_all() {
    [ -n "$POLL_PID" ] || return 0
    kill "$POLL_PID" 2>/dev/null || true
    wait "$POLL_PID" 2>/dev/null || true
    POLL_PID=
}
STOP_HOOK=poll_stop_all
. "$HERE/../lib.sh"

start() {
    rm -rf "$PREFIX/conf" "$PREFIX/logs" "$PREFIX/temp"
    mkdir -p "$PREFIX"/{conf,logs,temp}
    sed -e "s|@MODULE_SO@|$SO|" -e "s|@PORT@|$PORT|" \
        "$HERE/nginx.conf.in" > "$PREFIX/conf/nginx.conf"
    "$NGINX" -p "$PREFIX/" -c "$PREFIX/conf/nginx.conf" -g 'daemon off;' &
    NGINX_PID=$!
    wait_up
}

poll_start() {
    "$HERE/rsspoll.pl" "$WORKER" > "$PREFIX/rss" &
    POLL_PID=$!
    until grep -q ready "$PREFIX/rss" 2>/dev/null; do sleep 0.01; done
}
poll_stop() {
    kill "$POLL_PID"; wait "$POLL_PID" || true; POLL_PID=
    grep rss_ "$PREFIX/rss"
}

streams_status() {
    curl -s "$B/asyncx/status" | tr -d ' \n' | grep -o '"streams":{[^}]*}' || true
    echo "error_log warn+ lines: $(grep -c . "$PREFIX/logs/error.log" || true)"
}

echo "== machine"
date
echo "nproc=$(nproc) kernel=$(uname -r)"
grep -m1 'model name' /proc/cpuinfo || true
uptime

# the baseline, built like the unit tests (Makefile UNIT_CFLAGS -I flags)
mkdir -p "$PREFIX"
cc -O2 -Wall -Wextra -Wno-unused-parameter \
   -I"$NB/src/core" -I"$NB/src/event" -I"$NB/src/event/modules" \
   -I"$NB/src/os/unix" -I"$NB/src/http" -I"$NB/src/http/modules" \
   -I"$NB/src/http/v2" -I"$NB/objs" -I"$ROOT/src" -I"$ROOT/src/demo" \
   -o "$PREFIX/plain_search" "$HERE/plain_search.c" \
   "$ROOT/src/demo/ngx_http_asyncx_dataset.c" "$ROOT/src/ngx_http_asyncx_util.c"

for n in 10000 1000000 10000000; do
    echo
    echo "== 1. one stream, data_size=$n ($REPEAT runs, fresh nginx)"
    start
    echo "worker idle VmRSS_kb=$(kb VmRSS)"
    poll_start
    for _ in $(seq "$REPEAT"); do
        "$HERE/client.pl" one "$PORT" "$Q=$n" |
            awk -v n="$n" '{ print; split($4, t, "=")
                             printf "  items_per_s=%.0f\n", n / t[2] }'
    done
    poll_stop
    echo "worker VmHWM_kb=$(kb VmHWM)"
    streams_status
    stop
    if [ "$n" = 1000000 ]; then
        echo
        echo "== 2. plain C loop, same search, same run"
        "$PREFIX/plain_search" 1000000 "$REPEAT"
        "$PREFIX/plain_search" 10000000 1
    fi
done

for c in $STREAMS; do
    echo
    echo "== 3. $c concurrent streams of data_size=10000 on one worker"
    start
    echo "worker idle VmRSS_kb=$(kb VmRSS)"
    poll_start
    "$HERE/client.pl" many "$PORT" "$Q=10000" "$c"
    poll_stop
    echo "worker VmHWM_kb=$(kb VmHWM)"
    streams_status
    stop
done
