#!/usr/bin/env bash
# SSE benchmark: items/s and time to first event for 10^4, 10^6, 10^7
# records; worker memory while streaming 10^7 vs 10^4; many concurrent
# streams on one worker; the streaming path against a plain C loop.
# Results: docs/benchmarks/sse.md.
#
#   bench/sse/run.sh          (after `make build`; needs curl, taskset)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SO=$ROOT/build/nginx/objs/ngx_http_asyncx_module.so
PORT=${PORT:-25200}
STREAMS=${STREAMS:-500}
DIR=$ROOT/build/bench-sse
NGINX=${NGINX:-/usr/sbin/nginx}
N=$ROOT/build/nginx

rm -rf "$DIR" && mkdir -p "$DIR/logs" "$DIR/temp"

cc -O2 -I"$N/src/core" -I"$N/src/event" -I"$N/src/event/modules" \
   -I"$N/src/os/unix" -I"$N/objs" -I"$ROOT/src" \
   -o "$DIR/plain_search" "$ROOT/bench/sse/plain_search.c" \
   "$ROOT/src/ngx_http_asyncx_dataset.c"

cat > "$DIR/nginx.conf" <<CONF
daemon on;
worker_processes 1;
error_log $DIR/logs/error.log warn;
pid $DIR/logs/nginx.pid;
load_module $SO;
thread_pool sse_cpu threads=1;
events { worker_connections 8192; }
http {
    client_body_temp_path $DIR/temp; proxy_temp_path $DIR/temp;
    fastcgi_temp_path $DIR/temp; uwsgi_temp_path $DIR/temp; scgi_temp_path $DIR/temp;
    access_log off;
    asyncx_thread_pools io=sse_cpu cpu=sse_cpu;
    server {
        listen 127.0.0.1:$PORT;
        location = /stream/search { asyncx_sse search; }
    }
}
CONF

echo "# $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"

# nginx (worker + its one thread) on CPU 0, clients on CPU 1
taskset -c 0 env -u NGINX "$NGINX" -p "$DIR/" -c "$DIR/nginx.conf"
sleep 0.5
WORKER=$(pgrep -P "$(cat "$DIR/logs/nginx.pid")")

hwm() { awk '/VmHWM/ { print $2 }' "/proc/$WORKER/status"; }
rss() { awk '/VmRSS/ { print $2 }' "/proc/$WORKER/status"; }

echo "## one stream, keyword=python"
for n in 10000 1000000 10000000; do
    taskset -c 1 curl -sN -o "$DIR/out" \
        -w "%{time_starttransfer} %{time_total}\n" \
        "http://127.0.0.1:$PORT/stream/search?keyword=python&data_size=$n" \
        > "$DIR/t"
    read -r first total < "$DIR/t"
    m=$(grep -o '"total_matches": [0-9]*' "$DIR/out")
    awk -v n="$n" -v f="$first" -v t="$total" -v m="$m" -v h="$(hwm)" -v r="$(rss)" \
        'BEGIN { printf "data_size %9d: first event %.2f ms, total %.3f s, %.0f items/s, %s, worker RSS %d kB (peak %d kB)\n", n, f * 1000, t, n / t, m, r, h }'
done

echo "## plain C loop, same search"
taskset -c 0 "$DIR/plain_search" 1000000
taskset -c 0 "$DIR/plain_search" 10000000

echo "## $STREAMS concurrent streams of 10^4 records"
before=$(rss)
start=$(date +%s.%N)
seq "$STREAMS" | taskset -c 1 xargs -P "$STREAMS" -I{} \
    curl -sN "http://127.0.0.1:$PORT/stream/search?keyword=python&data_size=10000" \
    -o "$DIR/c{}.out"
end=$(date +%s.%N)
done_n=$(grep -l '"type": "complete", "total_matches": 72' "$DIR"/c*.out | wc -l)
awk -v s="$start" -v e="$end" -v d="$done_n" -v n="$STREAMS" -v h="$(hwm)" -v b="$before" \
    'BEGIN { printf "%d of %d streams complete with 72 matches in %.2f s; worker peak RSS %d kB (before %d kB)\n", d, n, e - s, h, b }'
grep -c '\[alert\]\|\[error\]' "$DIR/logs/error.log" | sed 's/^/error.log alert|error lines: /' || true

kill -QUIT "$(cat "$DIR/logs/nginx.pid")"
